/**
 * Logical store keys are '/'-separated paths, like etcd's (`/registry/pods/default/nginx`).
 * In NATS they become subject tokens joined by '.', each token escaped so that any name (dots,
 * colons, slashes, unicode) maps to a distinct, valid KV key:
 * - `[A-Za-z0-9_-]` stand for themselves;
 * - every other byte of the UTF-8 encoding becomes `=XX` (upper-case hex), '=' included;
 * - an empty segment becomes a lone `=` (never produced otherwise).
 * The mapping is injective and reversible, and prefixes of whole segments map to subject filters.
 */

const PLAIN = /^[A-Za-z0-9_-]$/;
const ALL_PLAIN = /^[A-Za-z0-9_-]+$/;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Thrown for a key or prefix the store cannot represent; `reason` says why. */
export class InvalidKeyError extends Error {
  override readonly name = 'InvalidKeyError';
  constructor(
    readonly key: string,
    readonly reason: string,
  ) {
    super(`invalid store key ${JSON.stringify(key)}: ${reason}`);
  }
}

function encodeSegment(segment: string): string {
  if (segment === '') return '=';
  if (ALL_PLAIN.test(segment)) return segment;
  let out = '';
  for (const ch of segment) {
    if (PLAIN.test(ch)) {
      out += ch;
    } else {
      for (const byte of encoder.encode(ch)) out += `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return out;
}

function decodeSegment(token: string): string {
  if (token === '=') return '';
  if (!token.includes('=')) return token;
  const bytes: number[] = [];
  for (let i = 0; i < token.length; ) {
    if (token[i] === '=') {
      bytes.push(parseInt(token.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      bytes.push(token.charCodeAt(i));
      i += 1;
    }
  }
  return decoder.decode(new Uint8Array(bytes));
}

function segments(key: string, what: string): string[] {
  if (!key.startsWith('/')) throw new InvalidKeyError(key, `a ${what} starts with '/'`);
  if (key.length > 4096) throw new InvalidKeyError(key, `a ${what} is at most 4096 characters`);
  return key.slice(1).split('/');
}

/** The NATS KV key of a logical key (`/a/b` -> `a.b`). @throws {InvalidKeyError} */
export function toSubjectKey(key: string): string {
  const parts = segments(key, 'key');
  if (key.endsWith('/')) throw new InvalidKeyError(key, 'a key does not end with \'/\'');
  return parts.map(encodeSegment).join('.');
}

/** The logical key of a NATS KV key; the inverse of {@link toSubjectKey}. */
export function fromSubjectKey(subjectKey: string): string {
  return '/' + subjectKey.split('.').map(decodeSegment).join('/');
}

/**
 * The NATS subject filter matching every key under `prefix`. A prefix names whole segments and
 * ends with '/' (`/registry/pods/` or `/registry/pods/default/`); `/` alone matches everything.
 * @throws {InvalidKeyError}
 */
export function toSubjectFilter(prefix: string): string {
  if (!prefix.endsWith('/')) throw new InvalidKeyError(prefix, 'a prefix ends with \'/\'');
  if (prefix === '/') return '>';
  const parts = segments(prefix.slice(0, -1), 'prefix');
  return `${parts.map(encodeSegment).join('.')}.>`;
}

/** Checks a prefix without converting it. @throws {InvalidKeyError} */
export function checkPrefix(prefix: string): void {
  toSubjectFilter(prefix);
}
