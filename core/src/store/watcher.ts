import { StoreError } from './errors.js';

/** The kinds of watch events, as Kubernetes names them. */
export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';

/** One stored object: its logical key, decoded value and modification revision. */
export interface StoreEntry {
  readonly key: string;
  /** The decoded value, deep-frozen: shared with the cache, never mutate it. */
  readonly value: unknown;
  /** The revision of the write that produced this value (its resourceVersion). */
  readonly revision: number;
}

/**
 * A change seen by a watch. For DELETED, `value` is the object's last state and `revision` the
 * revision of the delete. A BOOKMARK carries only `revision`: the watch has seen everything up to it.
 */
export interface WatchEvent {
  readonly type: WatchEventType;
  readonly key: string;
  readonly value: unknown;
  readonly revision: number;
}

/** Why a watch ended on the store's side. */
export class WatchClosedError extends StoreError {
  override readonly name = 'WatchClosedError';
}

/**
 * Where a watch can push its events instead of being iterated: `write` returns false when the
 * consumer wants no more until it calls {@link Watch.resume}; `end` is called once.
 */
export interface WatchSink {
  write(event: WatchEvent): boolean;
  end(error: Error | undefined): void;
}

/**
 * A watch: an async iterable of events, or (with {@link Watch.attach}) a push source; `stop()`
 * ends it.
 */
export interface Watch extends AsyncIterable<WatchEvent> {
  /**
   * Delivers events to `sink` as they come (queued ones first), with no promise per event: the
   * cheap path for serving many watchers. Use either this or async iteration, not both.
   */
  attach(sink: WatchSink): void;
  /** After `sink.write` returned false: deliver the queued events again. */
  resume(): void;
  /** Ends the watch; pending events are dropped. Idempotent. */
  stop(): void;
  /** Resolves when the watch has ended, with the error that ended it (undefined when stopped). */
  readonly closed: Promise<Error | undefined>;
}

/**
 * The store side of one watch: a bounded queue the cache pushes into, consumed by one async
 * iterator. A consumer that falls `capacity` events behind is closed with an error (like
 * Kubernetes closing a slow watcher); the client re-watches from its last revision.
 */
export class Watcher implements Watch {
  private queue: WatchEvent[] = [];
  private head = 0;
  private wake?: () => void;
  private error?: Error;
  private ended = false;
  private resolveClosed!: (err: Error | undefined) => void;
  private sink?: WatchSink;
  private paused = false;
  /** The revision of the last event or bookmark queued. */
  lastRevision: number;
  readonly closed: Promise<Error | undefined>;

  constructor(
    readonly prefix: string,
    readonly bookmarks: boolean,
    readonly filter: ((value: unknown) => boolean) | undefined,
    startRevision: number,
    private readonly capacity: number,
    private readonly onEnd: (w: Watcher) => void,
  ) {
    this.lastRevision = startRevision;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
  }

  /** True once the watch has ended. */
  get isEnded(): boolean {
    return this.ended;
  }

  /**
   * Offers a change to this watcher: applies its prefix, and its filter with Kubernetes
   * semantics (an object that stops matching is DELETED for this watcher; one that starts is ADDED).
   */
  offer(type: 'ADDED' | 'MODIFIED' | 'DELETED', key: string, value: unknown, prev: unknown, revision: number): void {
    if (this.ended || !key.startsWith(this.prefix)) return;
    if (!this.filter) return this.push({ type, key, value, revision });
    const now = type !== 'DELETED' && this.filter(value);
    const before = prev !== undefined && this.filter(prev);
    if (type === 'DELETED') {
      if (before) this.push({ type, key, value: prev, revision });
    } else if (now && before) {
      this.push({ type: 'MODIFIED', key, value, revision });
    } else if (now) {
      this.push({ type: 'ADDED', key, value, revision });
    } else if (before) {
      this.push({ type: 'DELETED', key, value, revision });
    }
  }

  /** Queues an event (or ends the watch when it is over capacity). */
  push(event: WatchEvent): void {
    if (this.ended) return;
    if (this.sink && !this.paused && this.head === this.queue.length) {
      this.lastRevision = event.revision;
      if (!this.sink.write(event)) this.paused = true;
      return;
    }
    if (this.queue.length - this.head >= this.capacity) {
      this.end(new WatchClosedError(`watch closed: the client fell more than ${this.capacity} events behind`));
      return;
    }
    this.queue.push(event);
    this.lastRevision = event.revision;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  attach(sink: WatchSink): void {
    this.sink = sink;
    if (this.ended) {
      sink.end(this.error);
      return;
    }
    this.resume();
  }

  resume(): void {
    this.paused = false;
    const sink = this.sink;
    if (!sink) return;
    while (!this.paused && !this.ended && this.head < this.queue.length) {
      if (!sink.write(this.queue[this.head++]!)) this.paused = true;
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    }
  }

  /** Ends the watch with `error` (the iterator throws it after draining nothing more). */
  end(error?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    this.queue = [];
    this.head = 0;
    this.onEnd(this);
    this.resolveClosed(error);
    this.sink?.end(error);
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  stop(): void {
    this.end();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WatchEvent> {
    try {
      for (;;) {
        if (this.head < this.queue.length) {
          const event = this.queue[this.head++]!;
          if (this.head > 1024 && this.head * 2 > this.queue.length) {
            this.queue = this.queue.slice(this.head);
            this.head = 0;
          }
          yield event;
          continue;
        }
        if (this.ended) {
          if (this.error) throw this.error;
          return;
        }
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } finally {
      this.end();
    }
  }
}
