import type { Codec } from '../store/index.js';
import type { Obj } from './resource.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * How the API server stores objects: JSON without `metadata.resourceVersion` (the store's
 * revision is the resourceVersion); decoding puts the revision back, so cached objects are ready
 * to serve.
 */
export const apiCodec: Codec = {
  encode(_key, value) {
    const o = value as Obj;
    const copy = o.metadata ? { ...o, metadata: { ...o.metadata, resourceVersion: undefined } } : o;
    return encoder.encode(JSON.stringify(copy));
  },
  decode(_key, bytes, revision) {
    const o = JSON.parse(decoder.decode(bytes)) as Obj;
    if (o && typeof o === 'object' && o.metadata) o.metadata.resourceVersion = String(revision);
    return o;
  },
};
