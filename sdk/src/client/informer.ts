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

/**
 * A list+watch cache of one API path (client-go's shared informer, reduced): it lists, then
 * watches from the list's resourceVersion, resumes the watch from the last seen resourceVersion
 * when the stream ends, relists on 410 Gone, and retries with back-off (0.5 s doubling to 30 s)
 * when the server is unreachable. Subscribers get the current objects as `add` when they join.
 */
export class Informer<T extends KubeObject = KubeObject> {
  private readonly items = new Map<string, T>();
  private readonly subscribers = new Set<InformerHandlers<T>>();
  private controller?: AbortController;
  private resourceVersion = '';
  private syncedFlag = false;
  private readonly syncWaiters: Array<() => void> = [];
  /** The last error of the list/watch loop, for logs and health. */
  lastError?: string;

  constructor(
    private readonly client: ApiClient,
    readonly path: string,
  ) {}

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
  subscribe(handlers: InformerHandlers<T>): () => void {
    this.subscribers.add(handlers);
    for (const o of this.items.values()) handlers.add?.(o);
    if (this.items.size > 0) handlers.changed?.();
    return () => void this.subscribers.delete(handlers);
  }

  private emit(fn: (h: InformerHandlers<T>) => void): void {
    for (const h of this.subscribers) {
      fn(h);
      h.changed?.();
    }
  }

  private async relist(): Promise<void> {
    const list = await this.client.list<T>(this.path);
    const fresh = new Map(list.items.map((o) => [keyOf(o), o] as const));
    for (const [key, old] of this.items) if (!fresh.has(key)) {
      this.items.delete(key);
      this.emit((h) => h.delete?.(old));
    }
    for (const [key, o] of fresh) {
      const old = this.items.get(key);
      this.items.set(key, o);
      if (!old) this.emit((h) => h.add?.(o));
      else if (old.metadata?.resourceVersion !== o.metadata?.resourceVersion) this.emit((h) => h.update?.(o, old));
    }
    this.resourceVersion = list.metadata.resourceVersion ?? '';
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
      this.items.delete(key);
      if (old) this.emit((h) => h.delete?.(o));
    } else {
      this.items.set(key, o);
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
