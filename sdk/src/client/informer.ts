import type { ApiClient, KubeObject, WatchEvent } from './api-client.js';

/** Callbacks of an informer subscriber. */
export interface InformerHandlers<T> {
  add?(object: T): void;
  update?(object: T, old: T): void;
  delete?(object: T): void;
  /** Called after every change (any of the above), e.g. to re-evaluate derived state. */
  changed?(): void;
}

/** The cache key of an object: `namespace/name`, or `name` for cluster-scoped ones. */
export const keyOf = (o: KubeObject): string => (o.metadata?.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : String(o.metadata?.name));

const isGoneEvent = (e: WatchEvent): boolean => e.type === 'ERROR' && (e.object as { code?: number }).code === 410;

/** An index function: the index values an object is filed under (client-go's `IndexFunc`). */
export type IndexFunc<T> = (object: T) => readonly string[];

/** The index every informer has: objects by namespace (`''` for cluster-scoped ones). */
export const NAMESPACE_INDEX = 'namespace';

/** Options of {@link Informer.subscribe}. */
export interface SubscribeOptions {
  /**
   * Every `resyncMs` the subscriber gets `update(o, o)` for every cached object (client-go's
   * resync period), so level-triggered controllers revisit everything; off when absent or 0.
   */
  readonly resyncMs?: number;
}

/**
 * A list+watch cache of one API path (client-go's shared informer, reduced): it lists (in pages
 * of 500), then watches from the list's resourceVersion, resumes the watch from the last seen
 * resourceVersion when the stream ends, relists on 410 Gone, and retries with back-off (0.5 s
 * doubling to 30 s) when the server is unreachable. Subscribers get the current objects as `add`
 * when they join. Indexers file objects under computed values for {@link byIndex} (the lister).
 */
export class Informer<T extends KubeObject = KubeObject> {
  private readonly items = new Map<string, T>();
  private readonly subscribers = new Set<InformerHandlers<T>>();
  private readonly indexers = new Map<string, { fn: IndexFunc<T>; index: Map<string, Set<string>> }>();
  private controller?: AbortController;
  private resourceVersion = '';
  private syncedFlag = false;
  private readonly syncWaiters: Array<() => void> = [];
  /** The last error of the list/watch loop, for logs and health. */
  lastError?: string;

  constructor(
    private readonly client: ApiClient,
    readonly path: string,
  ) {
    this.addIndexer(NAMESPACE_INDEX, (o) => [String(o.metadata?.namespace ?? '')]);
  }

  /**
   * Adds an index (idempotent per name: a second call with the same name keeps the first). Objects
   * already cached are indexed at once.
   */
  addIndexer(name: string, fn: IndexFunc<T>): void {
    if (this.indexers.has(name)) return;
    const index = new Map<string, Set<string>>();
    this.indexers.set(name, { fn, index });
    for (const [key, o] of this.items) this.fileUnder(index, fn, key, o);
  }

  /** The cached objects filed under `value` in index `name` (a namespace's objects: `byIndex('namespace', ns)`). */
  byIndex(name: string, value: string): T[] {
    const indexer = this.indexers.get(name);
    if (!indexer) throw new Error(`${this.path}: no index "${name}"`);
    const out: T[] = [];
    for (const key of indexer.index.get(value) ?? []) {
      const o = this.items.get(key);
      if (o) out.push(o);
    }
    return out;
  }

  private fileUnder(index: Map<string, Set<string>>, fn: IndexFunc<T>, key: string, o: T): void {
    for (const v of fn(o)) {
      let keys = index.get(v);
      if (!keys) index.set(v, (keys = new Set()));
      keys.add(key);
    }
  }

  private store(key: string, o: T | undefined, old: T | undefined): void {
    for (const { fn, index } of this.indexers.values()) {
      if (old) {
        for (const v of fn(old)) {
          const keys = index.get(v);
          keys?.delete(key);
          if (keys?.size === 0) index.delete(v);
        }
      }
      if (o) this.fileUnder(index, fn, key, o);
    }
    if (o) this.items.set(key, o);
    else this.items.delete(key);
  }

  /** Starts the list/watch loop once (later calls are no-ops). */
  run(): void {
    if (this.controller) return;
    this.controller = new AbortController();
    void this.loop(this.controller.signal);
  }

  /** Stops the loop; the cache keeps its last state. */
  stop(): void {
    this.controller?.abort();
  }

  /** True once the first list has been applied. */
  get synced(): boolean {
    return this.syncedFlag;
  }

  /** Resolves once synced, or rejects when `signal` aborts first. */
  waitForSync(signal?: AbortSignal): Promise<void> {
    if (this.syncedFlag) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(new Error(`${this.path}: informer not synced before abort${this.lastError ? ` (${this.lastError})` : ''}`));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.syncWaiters.push(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  /** Every cached object. */
  list(): T[] {
    return [...this.items.values()];
  }

  /** The cached object under `key` (`namespace/name` or `name`). */
  get(key: string): T | undefined {
    return this.items.get(key);
  }

  /** Subscribes; returns the unsubscribe function. Current objects arrive as `add` at once. */
  subscribe(handlers: InformerHandlers<T>, options: SubscribeOptions = {}): () => void {
    this.subscribers.add(handlers);
    for (const o of this.items.values()) handlers.add?.(o);
    if (this.items.size > 0) handlers.changed?.();
    const resync = options.resyncMs
      ? setInterval(() => {
          if (!this.subscribers.has(handlers)) return;
          for (const o of this.items.values()) handlers.update?.(o, o);
          if (this.items.size > 0) handlers.changed?.();
        }, options.resyncMs)
      : undefined;
    return () => {
      clearInterval(resync);
      this.subscribers.delete(handlers);
    };
  }

  private emit(fn: (h: InformerHandlers<T>) => void): void {
    for (const h of this.subscribers) {
      fn(h);
      h.changed?.();
    }
  }

  private async relist(): Promise<void> {
    // Paged, so a large collection never needs one huge response; the pages form one snapshot.
    const items: T[] = [];
    let cont = '';
    let revision = '';
    const sep = this.path.includes('?') ? '&' : '?';
    do {
      const page = await this.client.list<T>(`${this.path}${sep}limit=500${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`);
      items.push(...(page.items ?? []));
      cont = page.metadata?.continue ?? '';
      revision = page.metadata?.resourceVersion ?? revision;
    } while (cont);
    const fresh = new Map(items.map((o) => [keyOf(o), o] as const));
    for (const [key, old] of this.items) if (!fresh.has(key)) {
      this.store(key, undefined, old);
      this.emit((h) => h.delete?.(old));
    }
    for (const [key, o] of fresh) {
      const old = this.items.get(key);
      this.store(key, o, old);
      if (!old) this.emit((h) => h.add?.(o));
      else if (old.metadata?.resourceVersion !== o.metadata?.resourceVersion) this.emit((h) => h.update?.(o, old));
    }
    this.resourceVersion = revision;
    if (!this.syncedFlag) {
      this.syncedFlag = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
  }

  private apply(e: WatchEvent): void {
    const o = e.object as T;
    if (e.type === 'BOOKMARK') {
      this.resourceVersion = o.metadata?.resourceVersion ?? this.resourceVersion;
      return;
    }
    const key = keyOf(o);
    const old = this.items.get(key);
    if (e.type === 'DELETED') {
      this.store(key, undefined, old);
      if (old) this.emit((h) => h.delete?.(o));
    } else {
      this.store(key, o, old);
      if (old) this.emit((h) => h.update?.(o, old));
      else this.emit((h) => h.add?.(o));
    }
    this.resourceVersion = o.metadata?.resourceVersion ?? this.resourceVersion;
  }

  private async loop(signal: AbortSignal): Promise<void> {
    let backoff = 500;
    let needList = true;
    while (!signal.aborted) {
      try {
        if (needList) await this.relist();
        needList = false;
        let gone = false;
        await this.client.watch(this.path, this.resourceVersion, (e) => {
          if (isGoneEvent(e)) gone = true;
          else if (e.type !== 'ERROR') this.apply(e);
        }, signal);
        if (gone) needList = true;
        backoff = 500;
        this.lastError = undefined;
      } catch (err) {
        if (signal.aborted) return;
        this.lastError = (err as Error).message;
        needList = (err as { code?: number }).code === 410 || needList;
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, backoff);
          signal.addEventListener('abort', () => {
            clearTimeout(t);
            resolve();
          }, { once: true });
        });
        backoff = Math.min(backoff * 2, 30_000);
      }
    }
  }
}
