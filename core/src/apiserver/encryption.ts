import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { parse as parseYaml } from 'yaml';
import { ConflictError, NotFoundError, type Codec, type Store } from '../store/index.js';

/**
 * Encryption at rest, configured as Kubernetes' `EncryptionConfiguration`
 * (apiserver.config.k8s.io/v1): per resource, an ordered list of providers; the first encrypts
 * writes, every one can decrypt reads. Providers: `aesgcm` (AES-256-GCM, or 128/192 by key
 * length, a random 12-byte nonce per write, the store key as additional authenticated data) and
 * `identity` (plaintext). Stored bytes are `k8s:enc:aesgcm:v1:<key name>:<nonce><ciphertext><tag>`,
 * the layout Kubernetes uses, so plaintext never reaches NATS.
 */
export interface EncryptionConfig {
  /** Store key prefixes (`/registry/core/secrets/`) and their providers, first one writing. */
  readonly rules: ReadonlyArray<{ readonly prefix: string; readonly providers: readonly Provider[] }>;
}

type Provider = { readonly type: 'identity' } | { readonly type: 'aesgcm'; readonly keys: ReadonlyArray<{ readonly name: string; readonly secret: Buffer }> };

const PREFIX = 'k8s:enc:aesgcm:v1:';

/** Where a resource's objects live in the store (`secrets` -> core; `foo.example.com` -> that group). */
function prefixOf(resource: string): string {
  const dot = resource.indexOf('.');
  if (dot < 0) return `/registry/core/${resource}/`;
  return `/registry/${resource.slice(dot + 1)}/${resource.slice(0, dot)}/`;
}

/**
 * Parses an EncryptionConfiguration (YAML or JSON).
 * @throws {Error} naming the bad field
 */
export function parseEncryptionConfig(text: string): EncryptionConfig {
  const doc = parseYaml(text) as { apiVersion?: string; kind?: string; resources?: Array<{ resources?: string[]; providers?: Array<Record<string, unknown>> }> };
  if (!doc || typeof doc !== 'object') throw new Error('not a YAML or JSON object');
  if (doc.kind !== 'EncryptionConfiguration') throw new Error(`kind: expected EncryptionConfiguration, got ${JSON.stringify(doc.kind)}`);
  if (!Array.isArray(doc.resources) || doc.resources.length === 0) throw new Error('resources: at least one entry is required');
  const rules: Array<{ prefix: string; providers: Provider[] }> = [];
  doc.resources.forEach((entry, i) => {
    if (!Array.isArray(entry.resources) || entry.resources.length === 0) throw new Error(`resources[${i}].resources: at least one resource is required`);
    if (!Array.isArray(entry.providers) || entry.providers.length === 0) throw new Error(`resources[${i}].providers: at least one provider is required`);
    const providers: Provider[] = entry.providers.map((p, j) => {
      const where = `resources[${i}].providers[${j}]`;
      if (p.identity !== undefined) return { type: 'identity' };
      const aes = p.aesgcm as { keys?: Array<{ name?: string; secret?: string }> } | undefined;
      if (!aes) throw new Error(`${where}: supported providers are aesgcm and identity, got ${Object.keys(p).join(', ') || 'nothing'}`);
      if (!Array.isArray(aes.keys) || aes.keys.length === 0) throw new Error(`${where}.aesgcm.keys: at least one key is required`);
      const names = new Set<string>();
      return {
        type: 'aesgcm',
        keys: aes.keys.map((k, n) => {
          if (!k.name || /[:\s]/.test(k.name)) throw new Error(`${where}.aesgcm.keys[${n}].name: a non-empty name without ':' or spaces is required`);
          if (names.has(k.name)) throw new Error(`${where}.aesgcm.keys[${n}].name: duplicate key name "${k.name}"`);
          names.add(k.name);
          const secret = Buffer.from(String(k.secret ?? ''), 'base64');
          if (![16, 24, 32].includes(secret.length)) throw new Error(`${where}.aesgcm.keys[${n}].secret: must be 16, 24 or 32 bytes, base64-encoded (got ${secret.length} bytes)`);
          return { name: k.name, secret };
        }),
      };
    });
    for (const resource of entry.resources) rules.push({ prefix: prefixOf(resource), providers });
  });
  return { rules };
}

const cipherOf = (secret: Buffer): 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm' => (secret.length === 16 ? 'aes-128-gcm' : secret.length === 24 ? 'aes-192-gcm' : 'aes-256-gcm');

/** A codec that encrypts the configured resources around `inner`, and says which key each stored value used. */
export class EncryptingCodec implements Codec {
  /** The key name (or 'identity') each decoded value was stored with. */
  private readonly storedWith = new WeakMap<object, string>();

  constructor(
    private readonly inner: Codec,
    private readonly config: EncryptionConfig,
  ) {}

  private providersFor(key: string): readonly Provider[] | undefined {
    return this.config.rules.find((r) => key.startsWith(r.prefix))?.providers;
  }

  /** The name of the key writes of `key` are encrypted with ('identity' for plaintext); undefined when not configured. */
  writeKey(key: string): string | undefined {
    const first = this.providersFor(key)?.[0];
    if (!first) return undefined;
    return first.type === 'identity' ? 'identity' : first.keys[0]!.name;
  }

  /** The key name (or 'identity') `value` was stored with, when it was decoded by this codec. */
  keyOf(value: unknown): string | undefined {
    return typeof value === 'object' && value !== null ? this.storedWith.get(value) : undefined;
  }

  /** The prefixes of the encrypted resources. */
  get prefixes(): string[] {
    return this.config.rules.map((r) => r.prefix);
  }

  encode(key: string, value: unknown): Uint8Array {
    const plain = this.inner.encode(key, value);
    const first = this.providersFor(key)?.[0];
    if (!first || first.type === 'identity') return plain;
    const { name, secret } = first.keys[0]!;
    const nonce = randomBytes(12);
    const cipher = createCipheriv(cipherOf(secret), secret, nonce);
    cipher.setAAD(Buffer.from(key));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return Buffer.concat([Buffer.from(`${PREFIX}${name}:`), nonce, body, cipher.getAuthTag()]);
  }

  decode(key: string, bytes: Uint8Array, revision: number): unknown {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (!buf.subarray(0, PREFIX.length).equals(Buffer.from(PREFIX))) {
      const value = this.inner.decode(key, bytes, revision);
      if (typeof value === 'object' && value !== null) this.storedWith.set(value, 'identity');
      return value;
    }
    const end = buf.indexOf(0x3a, PREFIX.length);
    const name = buf.toString('utf8', PREFIX.length, end);
    const secret = this.providersFor(key)?.flatMap((p) => (p.type === 'aesgcm' ? p.keys : [])).find((k) => k.name === name)?.secret;
    if (!secret) throw new Error(`${key} is encrypted with key "${name}", which the encryption configuration does not list`);
    const nonce = buf.subarray(end + 1, end + 13);
    const tag = buf.subarray(buf.length - 16);
    const decipher = createDecipheriv(cipherOf(secret), secret, nonce);
    decipher.setAAD(Buffer.from(key));
    decipher.setAuthTag(tag);
    const plain = Buffer.concat([decipher.update(buf.subarray(end + 13, buf.length - 16)), decipher.final()]);
    const value = this.inner.decode(key, new Uint8Array(plain.buffer, plain.byteOffset, plain.byteLength), revision);
    if (typeof value === 'object' && value !== null) this.storedWith.set(value, name);
    return value;
  }
}


/**
 * Rewrites every object of the encrypted resources that is not stored with the current write key
 * (after a key rotation, or when encryption is turned on), so that old keys can be retired.
 * Resolves to the number of objects rewritten.
 */
export async function reencrypt(store: Store, codec: EncryptingCodec): Promise<number> {
  let rewritten = 0;
  for (const prefix of codec.prefixes) {
    let token: string | undefined;
    do {
      const page = await store.list(prefix, { limit: 500, ...(token ? { continue: token } : {}) });
      for (const entry of page.items) {
        if (codec.keyOf(entry.value) === codec.writeKey(entry.key)) continue;
        try {
          await store.update(entry.key, entry.value, entry.revision);
          rewritten++;
        } catch (err) {
          if (!(err instanceof ConflictError) && !(err instanceof NotFoundError)) throw err;
        }
      }
      token = page.continue;
    } while (token);
  }
  return rewritten;
}
