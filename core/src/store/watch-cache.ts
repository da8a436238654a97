import { delay, describeError, type Logger } from '@kubernel/sdk';
import sortedBtree from 'sorted-btree';
import { deepFreeze, type Codec } from './codec.js';
import { ExpiredError, InvalidContinueError, StoreUnavailableError, TooLargeRevisionError, TooOldError } from './errors.js';
import { fromSubjectKey, toSubjectKey as subjectKeyOf } from './keys.js';
import type { NatsBackend, Tail, TailRecord } from './nats-backend.js';
import type { StoreMetrics } from './store-metrics.js';
import { Watcher, type StoreEntry, type Watch } from './watcher.js';

/** Settings of the watch cache. */
export interface WatchCacheOptions {
  /** Events kept in memory for watches that resume from a past revision. */
  readonly windowSize: number;
  /** Events a watcher may lag behind before it is closed. */
  readonly watcherCapacity: number;
  /** How often watchers that asked for bookmarks get one. */
  readonly bookmarkIntervalMs: number;
  /** How long a paginated list's snapshot stays usable by its continue token. */
  readonly snapshotTtlMs: number;
  /** How long a deleted key's tombstone stays in NATS before compaction removes its history. */
  readonly compactionMinAgeMs: number;
  /** How often compaction runs; 0 disables it. */
  readonly compactionIntervalMs: number;
  /**
   * How often the cache checks that it keeps up with the bucket. Two checks in a row without
   * progress while the bucket is ahead restart its consumer from the next revision (a consumer
   * lost with a failed cluster node can take the client long to notice).
   */
  readonly stallCheckIntervalMs: number;
}

/** What the cache needs from NATS (the {@link NatsBackend} methods it uses; tests pass a fake). */
export type CacheBackend = Pick<NatsBackend, 'tail' | 'streamState' | 'purgeBefore'>;

/** A change as the cache records it in its window. */
interface CacheEvent {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly key: string;
  readonly value: unknown;
  readonly prev: unknown;
  readonly revision: number;
}

/** Options of a list. */
export interface ListOptions {
  /** At most this many items; all when absent. */
  readonly limit?: number;
  /** A continue token from a previous page. */
  readonly continue?: string;
  /** Only entries whose value passes. */
  readonly filter?: (value: unknown) => boolean;
  /**
   * List exactly at this revision: the current one, or one a paginated list still holds a
   * snapshot of; anything else fails with TooOldError.
   */
  readonly atRevision?: number;
}

/** One page of a list: a consistent snapshot at `revision`. */
export interface ListResult {
  readonly items: StoreEntry[];
  readonly revision: number;
  /** Present when more items match: pass it to get the next page of the same snapshot. */
  readonly continue?: string;
}

/** Options of a watch. */
export interface WatchOptions {
  /** Deliver the events after this revision (it must still be in the window). */
  readonly fromRevision?: number;
  /** Start with ADDED events for every current entry, then follow changes. */
  readonly initialState?: boolean;
  /** Send BOOKMARK events now and then, carrying the current revision. */
  readonly bookmarks?: boolean;
  /** Only entries whose value passes (with Kubernetes semantics on match changes). */
  readonly filter?: (value: unknown) => boolean;
}

// sorted-btree is CommonJS with `exports.default`: under NodeNext the class is `.default`.
const BTree = sortedBtree.default;
type Index = InstanceType<typeof BTree<string, StoreEntry>>;

/**
 * The in-memory view of the whole bucket that serves reads, lists and watches: one NATS ordered
 * consumer per process, however many clients watch.
 *
 * - On start it reads each key's latest entry, then follows every new one. Once caught up, the
 *   revisions it sees must be contiguous; a gap (entries gone before it saw them) means it cannot
 *   vouch for its state: it relists from NATS and ends every watch with {@link TooOldError}.
 * - It keeps the last `windowSize` changes, so a watch can resume from any revision since then;
 *   older revisions get TooOldError (HTTP 410), and the client relists.
 * - Lists take an O(1) copy-on-write snapshot of the index (B+ tree), so the pages of one list
 *   come from one revision.
 */
export class WatchCache {
  private index: Index = new BTree<string, StoreEntry>();
  private window: CacheEvent[] = [];
  private windowHead = 0;
  /** A watch from a revision >= this is served from the window. */
  private oldestWatchable = 0;
  private live = false;
  private tail?: Tail;
  private stopped = false;
  private generation = 0;
  private readonly watchers = new Set<Watcher>();
  private readonly waiters: Array<{ revision: number; resolve: () => void }> = [];
  private readonly snapshots = new Map<number, { tree: Index; expires: number }>();
  private readonly tombstones = new Map<string, { revision: number; seenAt: number }>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readyWaiters: Array<() => void> = [];
  private stalledAt?: number;
  /** The revision of the last entry applied. */
  revision = 0;

  constructor(
    private readonly backend: CacheBackend,
    private readonly codec: Codec,
    private readonly options: WatchCacheOptions,
    private readonly log: Logger,
    private readonly metrics: StoreMetrics,
  ) {}

  /** True once the cache has caught up with the bucket. */
  get ready(): boolean {
    return this.live;
  }

  /** The number of keys held. */
  get size(): number {
    return this.index.size;
  }

  /** The number of open watches. */
  get watcherCount(): number {
    return this.watchers.size;
  }

  /** Starts following the bucket; resolves once caught up. */
  async start(): Promise<void> {
    await this.begin();
    this.timers.push(setInterval(() => this.sendBookmarks(), this.options.bookmarkIntervalMs));
    this.timers.push(setInterval(() => this.expireSnapshots(), Math.min(this.options.snapshotTtlMs, 60_000)));
    if (this.options.compactionIntervalMs > 0) {
      this.timers.push(setInterval(() => void this.compact(), this.options.compactionIntervalMs));
    }
    this.timers.push(setInterval(() => void this.checkStall(), this.options.stallCheckIntervalMs));
    await this.untilReady();
  }

  /** Stops following; ends every watch and fails every waiter. */
  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.tail?.stop();
    for (const w of [...this.watchers]) w.end(new StoreUnavailableError('the store is stopping'));
    for (const w of this.waiters.splice(0)) w.resolve();
    for (const r of this.readyWaiters.splice(0)) r();
  }

  private untilReady(): Promise<void> {
    if (this.live || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /** (Re)starts the tail: latest entry per key, then everything new. */
  private async begin(): Promise<void> {
    const generation = ++this.generation;
    this.live = false;
    this.index = new BTree();
    this.window = [];
    this.windowHead = 0;
    this.tombstones.clear();
    this.snapshots.clear();
    const state = await this.backend.streamState();
    this.revision = 0;
    let sawAny = false;
    await this.follow(generation, 'latest-per-key', () => (sawAny = true));
    // An empty bucket delivers nothing: the cache is caught up at the stream's last revision.
    if (state.messages === 0 && !sawAny) this.goLive(state.lastRevision);
  }

  /** Starts the NATS consumer for this generation of the cache. */
  private async follow(generation: number, from: 'latest-per-key' | number, onAny?: () => void): Promise<void> {
    this.tail = await this.backend.tail('>', from, (record) => {
      if (generation !== this.generation) return;
      onAny?.();
      this.onRecord(record);
    });
    void this.tail.done.then(
      () => undefined,
      (err: unknown) => {
        if (!this.stopped && generation === this.generation) this.relist(`the NATS consumer failed: ${describeError(err)}`);
      },
    );
  }

  /** Restarts the consumer from the next revision when the cache has stopped progressing. */
  private async checkStall(): Promise<void> {
    if (!this.live || this.stopped) return;
    const seen = this.revision;
    let last: number;
    try {
      last = (await this.backend.streamState()).lastRevision;
    } catch {
      return;
    }
    if (last <= this.revision || seen !== this.revision) {
      this.stalledAt = undefined;
      return;
    }
    if (this.stalledAt !== seen) {
      this.stalledAt = seen;
      return;
    }
    this.stalledAt = undefined;
    this.log.warn({ revision: seen, bucket: last }, `watch cache stalled at revision ${seen} while the bucket is at ${last}; restarting its consumer`);
    this.metrics.resumes.inc();
    this.tail?.stop();
    const generation = ++this.generation;
    try {
      await this.follow(generation, seen + 1);
    } catch (err) {
      this.log.warn({ err }, 'restarting the watch cache consumer failed; will retry');
    }
  }

  private onRecord(record: TailRecord): void {
    if (record.revision <= this.revision) return; // replayed after a consumer reset
    if (this.live && record.revision !== this.revision + 1) {
      this.relist(`revisions ${this.revision + 1}..${record.revision - 1} were gone before this server saw them`);
      return;
    }
    this.apply(record);
    if (this.live) {
      this.metrics.watchDelivery.observe(Math.max(0, Date.now() - record.storedAtMs) / 1000);
    } else if (record.pending === 0) {
      this.goLive(this.revision);
    }
  }

  private goLive(revision: number): void {
    if (this.live) return;
    this.revision = Math.max(this.revision, revision);
    this.oldestWatchable = this.revision;
    this.live = true;
    this.metrics.cacheRevision.set(this.revision);
    this.metrics.cacheObjects.set(this.index.size);
    this.log.info({ revision: this.revision, objects: this.index.size }, 'watch cache caught up');
    for (const r of this.readyWaiters.splice(0)) r();
    this.resolveWaiters();
  }

  private apply(record: TailRecord): void {
    const key = fromSubjectKey(record.key);
    const prev = this.index.get(key);
    this.revision = record.revision;
    let event: CacheEvent | undefined;
    if (record.op === 'PUT') {
      let value: unknown;
      try {
        value = deepFreeze(this.codec.decode(key, record.data, record.revision));
      } catch (err) {
        this.log.error({ key, revision: record.revision, err }, `cannot decode ${key} at revision ${record.revision}; keeping it out of the cache`);
        value = undefined;
      }
      if (value !== undefined) {
        const entry: StoreEntry = { key, value, revision: record.revision };
        this.index.set(key, entry);
        this.tombstones.delete(key);
        event = { type: prev ? 'MODIFIED' : 'ADDED', key, value, prev: prev?.value, revision: record.revision };
      } else if (prev) {
        this.index.delete(key);
        event = { type: 'DELETED', key, value: prev.value, prev: prev.value, revision: record.revision };
      }
    } else {
      this.tombstones.set(key, { revision: record.revision, seenAt: Date.now() });
      if (prev) {
        this.index.delete(key);
        event = { type: 'DELETED', key, value: prev.value, prev: prev.value, revision: record.revision };
      }
    }
    if (!this.live) return;
    if (event) {
      this.window.push(event);
      if (this.window.length - this.windowHead > this.options.windowSize) {
        this.oldestWatchable = this.window[this.windowHead]!.revision;
        this.windowHead++;
        if (this.windowHead > 4096 && this.windowHead * 2 > this.window.length) {
          this.window = this.window.slice(this.windowHead);
          this.windowHead = 0;
        }
      }
      for (const w of this.watchers) w.offer(event.type, event.key, event.value, event.prev, event.revision);
    }
    this.metrics.cacheRevision.set(this.revision);
    this.metrics.cacheObjects.set(this.index.size);
    this.resolveWaiters();
  }

  /** Drops everything and reads the bucket again; every watch ends with TooOldError. */
  private relist(reason: string): void {
    if (this.stopped) return;
    this.log.warn({ revision: this.revision }, `watch cache relists: ${reason}`);
    this.metrics.relists.inc();
    this.tail?.stop();
    const ended = new TooOldError(this.revision, this.revision);
    for (const w of [...this.watchers]) w.end(ended);
    this.live = false;
    void (async () => {
      for (let attempt = 1; !this.stopped; attempt++) {
        try {
          await this.begin();
          return;
        } catch (err) {
          this.log.error({ err, attempt }, 'watch cache relist failed; retrying');
          await delay(Math.min(100 * 2 ** attempt, 5000));
        }
      }
    })();
  }

  private resolveWaiters(): void {
    if (this.waiters.length === 0 || !this.live) return;
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      if (this.waiters[i]!.revision <= this.revision) this.waiters.splice(i, 1)[0]!.resolve();
    }
  }

  /**
   * Resolves once the cache is caught up and has applied `revision`.
   * @throws {TooLargeRevisionError} when it has not within `timeoutMs`
   * @throws {StoreUnavailableError} when the cache stops
   */
  async waitFor(revision: number, timeoutMs: number): Promise<void> {
    if (this.stopped) throw new StoreUnavailableError('the store is stopping');
    if (this.live && this.revision >= revision) return;
    let timer: NodeJS.Timeout | undefined;
    let waiter: { revision: number; resolve: () => void } | undefined;
    const reached = new Promise<boolean>((resolve) => {
      waiter = { revision, resolve: () => resolve(true) };
      this.waiters.push(waiter);
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const ok = await reached;
    clearTimeout(timer);
    if (!ok) {
      const i = this.waiters.indexOf(waiter!);
      if (i >= 0) this.waiters.splice(i, 1);
      throw new TooLargeRevisionError(revision, this.revision);
    }
    if (this.stopped) throw new StoreUnavailableError('the store is stopping');
  }

  /** The entry under `key`, if any. */
  get(key: string): StoreEntry | undefined {
    return this.index.get(key);
  }

  /** A page of the entries under `prefix`, from one snapshot. */
  list(prefix: string, options: ListOptions = {}): ListResult {
    let tree: Index;
    let revision: number;
    let after: string | undefined;
    if (options.continue !== undefined) {
      const token = decodeContinue(options.continue);
      if (!token.key.startsWith(prefix)) throw new InvalidContinueError();
      revision = token.rev;
      after = token.key;
      const snapshot = this.snapshots.get(revision);
      if (snapshot) tree = snapshot.tree;
      else if (revision === this.revision) tree = this.index;
      else throw new ExpiredError(revision);
    } else if (options.atRevision !== undefined && options.atRevision !== this.revision) {
      const snapshot = this.snapshots.get(options.atRevision);
      if (!snapshot) throw new TooOldError(options.atRevision, this.revision);
      tree = snapshot.tree;
      revision = options.atRevision;
    } else {
      tree = this.index;
      revision = this.revision;
    }
    const limit = options.limit && options.limit > 0 ? options.limit : Infinity;
    const items: StoreEntry[] = [];
    let more = false;
    for (const [key, entry] of tree.entries(after ?? prefix)) {
      if (!key.startsWith(prefix)) break;
      if (key === after) continue;
      if (options.filter && !options.filter(entry.value)) continue;
      if (items.length === limit) {
        more = true;
        break;
      }
      items.push(entry);
    }
    if (!more) return { items, revision };
    if (tree === this.index && !this.snapshots.has(revision)) {
      this.snapshots.set(revision, { tree: this.index.clone(), expires: Date.now() + this.options.snapshotTtlMs });
    }
    return { items, revision, continue: encodeContinue(revision, items[items.length - 1]!.key) };
  }

  /**
   * Starts a watch of the keys under `prefix`.
   * @throws {TooOldError} when `fromRevision` is older than the window
   */
  watch(prefix: string, options: WatchOptions = {}): Watch {
    const from = options.fromRevision;
    if (from !== undefined && from < this.oldestWatchable) throw new TooOldError(from, this.oldestWatchable);
    const start = from ?? this.revision;
    const watcher = new Watcher(prefix, options.bookmarks ?? false, options.filter, start, this.options.watcherCapacity, (w) => {
      this.watchers.delete(w);
      this.metrics.watchers.set(this.watchers.size);
    });
    if (options.initialState) {
      for (const [key, entry] of this.index.entries(prefix)) {
        if (!key.startsWith(prefix)) break;
        if (options.filter && !options.filter(entry.value)) continue;
        watcher.push({ type: 'ADDED', key, value: entry.value, revision: entry.revision });
      }
      watcher.lastRevision = this.revision;
    } else if (from !== undefined && from < this.revision) {
      for (let i = this.firstEventAfter(from); i < this.window.length; i++) {
        const e = this.window[i]!;
        watcher.offer(e.type, e.key, e.value, e.prev, e.revision);
      }
      watcher.lastRevision = this.revision;
    }
    this.watchers.add(watcher);
    this.metrics.watchers.set(this.watchers.size);
    return watcher;
  }

  /** Index in the window of the first event with revision > `revision` (binary search). */
  private firstEventAfter(revision: number): number {
    let lo = this.windowHead;
    let hi = this.window.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.window[mid]!.revision <= revision) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Sends a bookmark at the current revision to every watcher that asked and is behind it. */
  sendBookmarks(): void {
    if (!this.live) return;
    for (const w of this.watchers) {
      if (w.bookmarks && w.lastRevision < this.revision) w.push({ type: 'BOOKMARK', key: '', value: undefined, revision: this.revision });
    }
  }

  private expireSnapshots(): void {
    const now = Date.now();
    for (const [rev, s] of this.snapshots) if (s.expires <= now) this.snapshots.delete(rev);
  }

  /**
   * Removes from NATS the history of keys deleted at least `compactionMinAgeMs` ago (their
   * tombstones included). Later writes to the same key are never touched. Returns how many
   * entries were purged.
   */
  async compact(): Promise<number> {
    if (!this.live) return 0;
    const cutoff = Date.now() - this.options.compactionMinAgeMs;
    let purged = 0;
    for (const [key, t] of [...this.tombstones]) {
      if (t.seenAt > cutoff || this.stopped) continue;
      try {
        purged += await this.backend.purgeBefore(subjectKeyOf(key), t.revision + 1);
        if (this.tombstones.get(key) === t) this.tombstones.delete(key);
      } catch (err) {
        this.log.warn({ key, err }, 'compaction of a deleted key failed; will retry');
      }
    }
    if (purged > 0) this.log.debug({ purged }, 'compacted deleted keys');
    return purged;
  }
}

function encodeContinue(rev: number, key: string): string {
  return Buffer.from(JSON.stringify({ v: 1, rev, key })).toString('base64url');
}

function decodeContinue(token: string): { rev: number; key: string } {
  try {
    const t = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { v?: unknown; rev?: unknown; key?: unknown };
    if (t.v === 1 && typeof t.rev === 'number' && Number.isSafeInteger(t.rev) && typeof t.key === 'string') return { rev: t.rev, key: t.key };
  } catch {
    // fall through
  }
  throw new InvalidContinueError();
}
