/**
 * Turns stored values into bytes and back. The default is JSON; a codec may transform by key
 * (the security issue's encryption at rest wraps it for secrets), so plaintext never needs to
 * reach NATS.
 */
export interface Codec {
  /** Bytes to store for `value` under `key`. */
  encode(key: string, value: unknown): Uint8Array;
  /**
   * The value stored under `key` at `revision` (a codec may record the revision in the value, as
   * the API server's sets `metadata.resourceVersion`). May throw on corrupt or undecryptable data.
   */
  decode(key: string, bytes: Uint8Array, revision: number): unknown;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** JSON, UTF-8. */
export const jsonCodec: Codec = {
  encode: (_key, value) => encoder.encode(JSON.stringify(value)),
  decode: (_key, bytes) => JSON.parse(decoder.decode(bytes)) as unknown,
};

/** Freezes `value` and everything it holds, so values shared from the cache cannot be mutated. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
