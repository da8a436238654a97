/** The store: NATS JetStream KV with etcd's semantics, a watch cache, and the embedded nats-server. */
export { Store, STORE_DEFAULTS } from './store.js';
export type { StoreOptions, DeleteOptions, ReadOptions } from './store.js';
export { openStore } from './embedded.js';
export type { StoreSetup, OpenedStore } from './embedded.js';
export { NatsServer, freePort } from './nats-server.js';
export type { NatsServerOptions, SyncMode } from './nats-server.js';
export { findNatsServer, natsServerVersion, supportsSyncAlways, BUNDLED_NATS_SERVER } from './nats-binary.js';
export * from './errors.js';
export { InvalidKeyError, toSubjectKey, fromSubjectKey, toSubjectFilter } from './keys.js';
export { jsonCodec, deepFreeze } from './codec.js';
export type { Codec } from './codec.js';
export type { StoreEntry, WatchEvent, WatchEventType, Watch } from './watcher.js';
export { WatchClosedError } from './watcher.js';
export type { ListOptions, ListResult, WatchOptions, WatchCacheOptions } from './watch-cache.js';
