import { describeError, type Logger, type Registry } from '@kubernel/sdk';
import { deepFreeze, jsonCodec, type Codec } from './codec.js';
import { ConflictError, KeyExistsError, NotFoundError, StoreUnavailableError } from './errors.js';
import { checkPrefix, toSubjectKey } from './keys.js';
import { BackendUnavailableError, NatsBackend, WrongRevisionError, type BackendOptions } from './nats-backend.js';
import { StoreMetrics } from './store-metrics.js';
import { WatchCache, type ListOptions, type ListResult, type WatchCacheOptions, type WatchOptions } from './watch-cache.js';
import type { StoreEntry, Watch } from './watcher.js';

/** Settings of a {@link Store}. */
export interface StoreOptions extends Omit<BackendOptions, 'logger' | 'bucket' | 'replicas' | 'history' | 'onConnectionState'> {
  /** KV bucket; `kubernel` by default. */
  readonly bucket?: string;
  /** Bucket replicas: 1 (default), 3 or 5 on a NATS cluster. */
  readonly replicas?: number;
  /** Revisions NATS keeps per key (1..64); 8 by default. See the retention policy in the README. */
  readonly history?: number;
  /** Watch cache settings. */
  readonly cache?: Partial<WatchCacheOptions>;
  /** Value encoding; JSON by default. */
  readonly codec?: Codec;
  /** How long a read waits for the watch cache to reach the revision it needs; 10 s by default. */
  readonly readTimeoutMs?: number;
  readonly logger: Logger;
  readonly registry: Registry;
}

/** The retention defaults, documented in the README's store section. */
export const STORE_DEFAULTS = {
  bucket: 'kubernel',
  replicas: 1,
  history: 8,
  readTimeoutMs: 10_000,
  cache: {
    windowSize: 20_000,
    watcherCapacity: 10_000,
    bookmarkIntervalMs: 60_000,
    snapshotTtlMs: 5 * 60_000,
    compactionMinAgeMs: 5 * 60_000,
    compactionIntervalMs: 5 * 60_000,
    stallCheckIntervalMs: 1000,
  } satisfies WatchCacheOptions,
} as const;

/** Options of {@link Store.delete}. */
export interface DeleteOptions {
  /** The key must be at this revision. */
  readonly expectedRevision?: number;
  /** Called with the current value before deleting; throw to refuse (e.g. a uid precondition). */
  readonly precondition?: (current: StoreEntry) => void;
}

/** Options of reads. */
export interface ReadOptions {
  /**
   * `true` (default): reflect every write acknowledged before the call, by any server (the cache
   * first catches up with the bucket's current revision). `false`: whatever the local cache holds.
   */
  readonly consistent?: boolean;
  /** Reflect at least this revision. */
  readonly minRevision?: number;
}

/**
 * The cluster's source of truth with etcd's semantics, on NATS JetStream KV:
 * - `resourceVersion` is the entry's revision, the stream sequence: global and monotonic;
 * - create fails on an existing key; update and delete compare-and-swap on the revision;
 * - reads, lists and watches come from one watch cache per process; a consistent read first waits
 *   for the cache to reach the bucket's current revision, so it sees every acknowledged write
 *   (read-your-writes, across API servers);
 * - lists are paged from one snapshot; watches resume from any revision still in the cache's
 *   window, and older ones fail with TooOldError (HTTP 410).
 */
export class Store {
  private closed = false;
  /** The revision request in flight, and the one that waiting callers share next. */
  private inflight?: Promise<number>;
  private nextBarrier?: Promise<number>;
  /** Latency histogram children bound to their labels once. */
  private readonly latency = new Map<string, { observe(v: number): void }>();

  private constructor(
    private readonly backend: NatsBackend,
    private readonly cache: WatchCache,
    private readonly codec: Codec,
    private readonly metrics: StoreMetrics,
    private readonly readTimeoutMs: number,
    private readonly log: Logger,
  ) {}

  /** Connects to NATS, creates or binds the bucket and fills the watch cache. */
  static async open(options: StoreOptions): Promise<Store> {
    const log = options.logger.child({ component: 'store' });
    const metrics = new StoreMetrics(options.registry);
    const replicas = options.replicas ?? STORE_DEFAULTS.replicas;
    const backend = await NatsBackend.connect({
      ...options,
      bucket: options.bucket ?? STORE_DEFAULTS.bucket,
      replicas,
      history: options.history ?? STORE_DEFAULTS.history,
      logger: log,
      onConnectionState: (up) => metrics.connected.set(up ? 1 : 0),
    });
    const codec = options.codec ?? jsonCodec;
    const cache = new WatchCache(backend, codec, { ...STORE_DEFAULTS.cache, ...options.cache }, log, metrics);
    try {
      await cache.start();
    } catch (err) {
      cache.stop();
      await backend.close();
      throw err;
    }
    log.info(
      { bucket: options.bucket ?? STORE_DEFAULTS.bucket, replicas, revision: cache.revision, objects: cache.size },
      replicas > 1 ? `store ready; an acknowledged write is on a quorum of ${replicas} replicas` : 'store ready',
    );
    return new Store(backend, cache, codec, metrics, options.readTimeoutMs ?? STORE_DEFAULTS.readTimeoutMs, log);
  }

  private observe(operation: string, result: string, started: number): void {
    const key = `${operation}\u0000${result}`;
    let child = this.latency.get(key);
    if (!child) {
      child = this.metrics.requests.labels({ operation, result });
      this.latency.set(key, child);
    }
    child.observe((performance.now() - started) / 1000);
  }

  private async timed<T>(operation: string, run: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreUnavailableError('the store is closed');
    const started = performance.now();
    try {
      const result = await run();
      this.observe(operation, 'ok', started);
      return result;
    } catch (err) {
      this.observe(operation, (err as Error).name ?? 'error', started);
      if (err instanceof BackendUnavailableError) throw new StoreUnavailableError(err.message, { cause: err });
      throw err;
    }
  }

  /**
   * Stores `value` under a new key.
   * @throws {KeyExistsError} when the key exists
   */
  create(key: string, value: unknown): Promise<StoreEntry> {
    return this.timed('create', async () => {
      const subject = toSubjectKey(key);
      const data = this.codec.encode(key, value);
      for (let attempt = 0; ; attempt++) {
        try {
          return { key, value, revision: await this.backend.put(subject, data, 0) };
        } catch (err) {
          if (!(err instanceof WrongRevisionError)) throw err;
        }
        // The key has an entry: a tombstone may be replaced, anything else is a conflict.
        const last = await this.backend.last(subject);
        if (last && last.op === 'PUT') throw new KeyExistsError(key, last.revision);
        try {
          return { key, value, revision: await this.backend.put(subject, data, last?.revision ?? 0) };
        } catch (err) {
          if (!(err instanceof WrongRevisionError) || attempt >= 3) throw err instanceof WrongRevisionError ? new KeyExistsError(key, 0) : err;
        }
      }
    });
  }

  /**
   * Replaces the value of an existing key if it is still at `expectedRevision`.
   * @throws {NotFoundError} when the key does not exist
   * @throws {ConflictError} when it is at another revision
   */
  update(key: string, value: unknown, expectedRevision: number): Promise<StoreEntry> {
    return this.timed('update', async () => {
      const subject = toSubjectKey(key);
      // The compare-and-swap below cannot tell a value from a tombstone at the expected revision:
      // unless the cache holds a value at that revision, ask the leader what it is.
      if (this.cache.get(key)?.revision !== expectedRevision) {
        const last = await this.backend.last(subject);
        if (!last || last.op === 'DEL') throw new NotFoundError(key);
        if (last.revision !== expectedRevision) throw new ConflictError(key, expectedRevision, last.revision);
      }
      try {
        return { key, value, revision: await this.backend.put(subject, this.codec.encode(key, value), expectedRevision) };
      } catch (err) {
        if (!(err instanceof WrongRevisionError)) throw err;
        const last = await this.backend.last(subject);
        if (!last || last.op === 'DEL') throw new NotFoundError(key);
        throw new ConflictError(key, expectedRevision, last.revision);
      }
    });
  }

  /**
   * Reads the current value, computes the next with `tryUpdate` and stores it, retrying on
   * conflicts with a fresh read (the Kubernetes "guaranteed update"). The first attempt uses the
   * cached value; `tryUpdate` may run more than once and may throw to abort.
   * @throws {NotFoundError} when the key does not exist
   */
  guaranteedUpdate(key: string, tryUpdate: (current: StoreEntry) => unknown | Promise<unknown>): Promise<StoreEntry> {
    return this.timed('guaranteedUpdate', async () => {
      const subject = toSubjectKey(key);
      let current = this.cache.get(key);
      for (let attempt = 0; ; attempt++) {
        if (!current) {
          const last = await this.backend.last(subject);
          if (!last || last.op === 'DEL') throw new NotFoundError(key);
          current = { key, value: deepFreeze(this.codec.decode(key, last.data, last.revision)), revision: last.revision };
        }
        const next = await tryUpdate(current);
        try {
          return { key, value: next, revision: await this.backend.put(subject, this.codec.encode(key, next), current.revision) };
        } catch (err) {
          if (!(err instanceof WrongRevisionError) || attempt >= 100) throw err;
          current = undefined;
          // Under contention, writers whose requests leave together would retry in lockstep and
          // the same one would keep winning: a little jitter after repeated conflicts breaks it.
          if (attempt >= 2) await new Promise((r) => setTimeout(r, Math.random() * Math.min(attempt, 20)));
        }
      }
    });
  }

  /**
   * Deletes a key; resolves to the delete's revision and the last value.
   * @throws {NotFoundError} when the key does not exist
   * @throws {ConflictError} when `expectedRevision` does not match
   */
  delete(key: string, options: DeleteOptions = {}): Promise<{ revision: number; deleted: StoreEntry }> {
    return this.timed('delete', async () => {
      const subject = toSubjectKey(key);
      for (;;) {
        const last = await this.backend.last(subject);
        if (!last || last.op === 'DEL') throw new NotFoundError(key);
        if (options.expectedRevision !== undefined && last.revision !== options.expectedRevision) {
          throw new ConflictError(key, options.expectedRevision, last.revision);
        }
        const deleted: StoreEntry = { key, value: deepFreeze(this.codec.decode(key, last.data, last.revision)), revision: last.revision };
        options.precondition?.(deleted);
        try {
          return { revision: await this.backend.tombstone(subject, last.revision), deleted };
        } catch (err) {
          if (!(err instanceof WrongRevisionError)) throw err;
          if (options.expectedRevision !== undefined) throw new ConflictError(key, options.expectedRevision, -1, `key ${key} changed while deleting`);
        }
      }
    });
  }

  /** The entry under `key`, or undefined. */
  get(key: string, options: ReadOptions = {}): Promise<StoreEntry | undefined> {
    return this.timed('get', async () => {
      toSubjectKey(key);
      await this.syncFor(options);
      return this.cache.get(key);
    });
  }

  /**
   * A page of the entries under `prefix` (a whole-segment prefix ending in '/'), in key order,
   * from one snapshot; pass `continue` from the previous page for the next one.
   * @throws {ExpiredError} when the continue token's snapshot is gone
   * @throws {TooOldError} when `atRevision` is neither current nor a retained snapshot
   */
  list(prefix: string, options: ListOptions & ReadOptions = {}): Promise<ListResult> {
    return this.timed('list', async () => {
      checkPrefix(prefix);
      if (options.atRevision !== undefined) await this.cache.waitFor(options.atRevision, Math.min(this.readTimeoutMs, 3000));
      else if (options.continue === undefined) await this.syncFor(options);
      return this.cache.list(prefix, options);
    });
  }

  /**
   * Watches the keys under `prefix`. With `fromRevision`, delivers exactly the changes after it;
   * with `initialState`, first every current entry as ADDED.
   * @throws {TooOldError} when `fromRevision` is older than the cache's window (HTTP 410: relist)
   * @throws {TooLargeRevisionError} when `fromRevision` is not reached in time
   */
  watch(prefix: string, options: WatchOptions & ReadOptions = {}): Promise<Watch> {
    return this.timed('watch', async () => {
      checkPrefix(prefix);
      if (options.fromRevision !== undefined) await this.cache.waitFor(options.fromRevision, Math.min(this.readTimeoutMs, 3000));
      else if (options.initialState) await this.syncFor(options);
      return this.cache.watch(prefix, options);
    });
  }

  /**
   * The bucket's current revision, from the stream leader. Concurrent callers share requests: a
   * caller waits for a request sent after it arrived, so the answer covers every write
   * acknowledged before the call.
   */
  currentRevision(): Promise<number> {
    if (!this.inflight) return this.sendBarrier();
    this.nextBarrier ??= this.inflight.then(
      () => this.sendBarrier(),
      () => this.sendBarrier(),
    );
    return this.nextBarrier;
  }

  private sendBarrier(): Promise<number> {
    this.nextBarrier = undefined;
    const request: Promise<number> = this.backend.lastRevision().finally(() => {
      if (this.inflight === request) this.inflight = undefined;
    });
    this.inflight = request;
    return request;
  }

  private async syncFor(options: ReadOptions): Promise<void> {
    let revision = options.minRevision ?? 0;
    if (options.consistent !== false) revision = Math.max(revision, await this.currentRevision());
    await this.cache.waitFor(revision, this.readTimeoutMs);
  }

  /** Removes the history of keys deleted long enough ago; see the retention policy. */
  compact(): Promise<number> {
    return this.cache.compact();
  }

  /** The revision the local cache has applied (not a consistent read). */
  get cachedRevision(): number {
    return this.cache.revision;
  }

  /** State for health checks. */
  health(): { connected: boolean; cacheReady: boolean; revision: number; objects: number; watchers: number } {
    return {
      connected: this.backend.isConnected(),
      cacheReady: this.cache.ready,
      revision: this.cache.revision,
      objects: this.cache.size,
      watchers: this.cache.watcherCount,
    };
  }

  /** Ends every watch, stops the cache and closes the connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cache.stop();
    try {
      await this.backend.close();
    } catch (err) {
      this.log.warn(`closing the NATS connection failed: ${describeError(err)}`);
    }
  }
}
