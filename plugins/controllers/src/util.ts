/**
 * Small helpers the controllers share: canonical JSON (objects with sorted keys, so equal values
 * serialise equally) and the short hashes Kubernetes names ReplicaSets and ControllerRevisions by.
 *
 * @module
 */

/** Nested fields of an API object, read defensively (controllers see whatever the API holds). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Fields = Record<string, any>;

/** An RFC 3339 time with second precision, as Kubernetes writes metav1.Time (`now` by default). */
export const formatTime = (ms: number = Date.now()): string => `${new Date(Math.floor(ms)).toISOString().slice(0, 19)}Z`;

/** `o` with every object's keys sorted, recursively (for comparisons that ignore key order). */
export function canonical(o: unknown): unknown {
  if (Array.isArray(o)) return o.map(canonical);
  if (typeof o !== 'object' || o === null) return o;
  return Object.fromEntries(Object.keys(o).sort().map((k) => [k, canonical((o as Record<string, unknown>)[k])]));
}

/** The JSON text of {@link canonical}. */
export const canonicalJson = (o: unknown): string => JSON.stringify(canonical(o));

/** Kubernetes' alphabet for generated names: no vowels (no words), no look-alike digits. */
export const SAFE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/**
 * A short, name-safe hash of `text`: FNV-1a (32 bit), its decimal digits mapped through
 * {@link SAFE_ALPHABET}, as Kubernetes encodes pod-template-hash and revision names.
 */
export function safeHash(text: string): string {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  let out = '';
  for (const ch of String(h)) out += SAFE_ALPHABET[ch.charCodeAt(0) % SAFE_ALPHABET.length];
  return out;
}
