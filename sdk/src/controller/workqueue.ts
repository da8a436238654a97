/**
 * The controller work queue: client-go's `util/workqueue` (the plain, delaying and rate-limiting
 * queues folded into one typed class) plus its rate limiters and its Prometheus metrics.
 *
 * A controller's event handlers `add()` object keys (`namespace/name`); its workers loop on
 * `get()` → reconcile → `forget()` on success or `addRateLimited()` on failure → `done()`. The queue
 * guarantees what makes that loop level-based and safe with several workers:
 *
 * - a key queued several times is handed out once (deduplication);
 * - a key is never handed to two workers at once: adding a key that is being processed marks it
 *   dirty, and `done()` queues it again;
 * - otherwise keys come out first in, first out.
 *
 * @module
 */
import type { Metrics } from '../plugin/metrics.js';

/**
 * The time source and timer of a {@link WorkQueue} and a {@link BucketRateLimiter}. Injectable so
 * tests can drive time by hand; the default reads `performance.now()` (monotonic) and uses the
 * global `setTimeout`.
 */
export interface WorkQueueClock {
  /** The current time in milliseconds, monotonic (only differences are used). */
  now(): number;
  /** Calls `callback` once after `ms` milliseconds; returns a handle for {@link clearTimeout}. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a timer made by {@link setTimeout}; a handle already fired or cleared is ignored. */
  clearTimeout(handle: unknown): void;
}

/** The default clock: `performance.now()` and the global timers (not unref'd; see {@link WorkQueue}). */
const systemClock: WorkQueueClock = {
  now: () => performance.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Node fires a timer longer than 2^31-1 ms at once (with a warning); longer waits are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

// ---------------------------------------------------------------------------------------------
// Rate limiters
// ---------------------------------------------------------------------------------------------

/**
 * Decides how long a key waits before it is queued again (client-go's `workqueue.RateLimiter`).
 * {@link WorkQueue.addRateLimited} asks {@link when}; a worker that succeeded calls
 * {@link WorkQueue.forget}, which ends the limiter's tracking of that key.
 */
export interface RateLimiter<K extends string = string> {
  /** The delay in milliseconds before `key` may be processed again; counts one more failure for it. */
  when(key: K): number;
  /** Stops tracking `key` (its failure count goes back to zero), whether it succeeded or was given up on. */
  forget(key: K): void;
  /** How many times `key` has been requeued through this limiter since it was last forgotten. */
  numRequeues(key: K): number;
}

function requireNonNegative(what: string, value: number): void {
  if (!(value >= 0)) throw new RangeError(`${what} must be a number >= 0, got ${value}`);
}

/**
 * Per-key exponential back-off (client-go's `ItemExponentialFailureRateLimiter`): the n-th failure
 * of a key (counting from 0) waits `base * 2^n` ms, capped at `max`. With the defaults: 5 ms,
 * 10 ms, 20 ms, … reaching the 1000 s cap after 18 failures. {@link forget} restarts at `base`.
 */
export class ItemExponentialFailureRateLimiter<K extends string = string> implements RateLimiter<K> {
  private readonly failures = new Map<K, number>();

  /**
   * @param baseMs the first delay, in milliseconds (default 5 ms, as client-go's controller default).
   * @param maxMs the cap on any delay, in milliseconds (default 1000 s).
   * @throws RangeError when a figure is negative or not a number.
   */
  constructor(
    readonly baseMs = 5,
    readonly maxMs = 1_000_000,
  ) {
    requireNonNegative('ItemExponentialFailureRateLimiter base', baseMs);
    requireNonNegative('ItemExponentialFailureRateLimiter max', maxMs);
  }

  /** `base * 2^failures` ms (capped at `max`), then counts one more failure for `key`. */
  when(key: K): number {
    const exp = this.failures.get(key) ?? 0;
    this.failures.set(key, exp + 1);
    const backoff = this.baseMs * 2 ** exp;
    // 2 ** exp overflows to Infinity long before the failure count does; the cap covers it.
    return backoff > this.maxMs || !Number.isFinite(backoff) ? this.maxMs : backoff;
  }

  /** Resets the failure count of `key`. */
  forget(key: K): void {
    this.failures.delete(key);
  }

  /** The failures counted for `key` since it was last forgotten. */
  numRequeues(key: K): number {
    return this.failures.get(key) ?? 0;
  }
}

/**
 * An overall token bucket shared by all keys (client-go's `BucketRateLimiter` over
 * `golang.org/x/time/rate`): the bucket holds `burst` tokens, refills at `qps` tokens a second,
 * and every {@link when} takes one. While tokens remain the delay is 0; beyond them a request
 * reserves a future token, so at 10 qps the 101st request of a burst waits 100 ms, the 102nd
 * 200 ms, and so on. It protects the API server from a controller retrying many keys at once.
 * It tracks no keys: {@link forget} does nothing and {@link numRequeues} is 0.
 */
export class BucketRateLimiter<K extends string = string> implements RateLimiter<K> {
  private tokens: number;
  private last: number;

  /**
   * @param qps tokens added per second (default 10); `Infinity` means no limit.
   * @param burst the bucket's size and initial fill (default 100).
   * @param clock the time source (tests inject a fake one).
   * @throws RangeError when `qps` is not > 0 or `burst` is not an integer >= 1.
   */
  constructor(
    readonly qps = 10,
    readonly burst = 100,
    private readonly clock: Pick<WorkQueueClock, 'now'> = systemClock,
  ) {
    if (!(qps > 0)) throw new RangeError(`BucketRateLimiter qps must be > 0, got ${qps}`);
    if (!Number.isInteger(burst) || burst < 1) throw new RangeError(`BucketRateLimiter burst must be an integer >= 1, got ${burst}`);
    this.tokens = burst;
    this.last = clock.now();
  }

  /** Takes one token: 0 while the bucket has one, otherwise the wait (ms) until the reserved token exists. */
  when(_key: K): number {
    if (this.qps === Infinity) return 0;
    const now = this.clock.now();
    const elapsed = Math.max(0, now - this.last);
    this.last = Math.max(this.last, now);
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.qps) / 1000);
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens * 1000) / this.qps;
  }

  /** Does nothing: the bucket is shared, not per key. */
  forget(_key: K): void {}

  /** Always 0: the bucket does not count per key. */
  numRequeues(_key: K): number {
    return 0;
  }
}

/**
 * Combines limiters (client-go's `MaxOfRateLimiter`): {@link when} asks every one (each counts the
 * request) and returns the longest delay; {@link numRequeues} is the largest count; {@link forget}
 * forgets in all of them. With no limiters the delay is 0.
 */
export class MaxOfRateLimiter<K extends string = string> implements RateLimiter<K> {
  private readonly limiters: readonly RateLimiter<K>[];

  /** @param limiters the limiters to combine. */
  constructor(...limiters: RateLimiter<K>[]) {
    this.limiters = limiters;
  }

  /** The longest delay any limiter asks for (all are asked, so all count the request). */
  when(key: K): number {
    let delay = 0;
    for (const limiter of this.limiters) delay = Math.max(delay, limiter.when(key));
    return delay;
  }

  /** Forgets `key` in every limiter. */
  forget(key: K): void {
    for (const limiter of this.limiters) limiter.forget(key);
  }

  /** The largest requeue count any limiter reports for `key`. */
  numRequeues(key: K): number {
    let n = 0;
    for (const limiter of this.limiters) n = Math.max(n, limiter.numRequeues(key));
    return n;
  }
}

/**
 * The rate limiter Kubernetes controllers use by default (client-go's
 * `DefaultControllerRateLimiter`, also controller-runtime's default): the larger of a per-key
 * exponential back-off from 5 ms to 1000 s and an overall 10 qps bucket with a burst of 100.
 *
 * @param clock the time source of the bucket (tests inject a fake one).
 */
export function defaultControllerRateLimiter<K extends string = string>(clock: Pick<WorkQueueClock, 'now'> = systemClock): RateLimiter<K> {
  return new MaxOfRateLimiter<K>(new ItemExponentialFailureRateLimiter<K>(5, 1_000_000), new BucketRateLimiter<K>(10, 100, clock));
}

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

/** Buckets of the duration histograms: 10 ns to 1000 s by powers of ten (controller-runtime's). */
const DURATION_BUCKETS = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100, 1000] as const;

/** How often the in-flight gauges are refreshed between gets and dones (client-go's period). */
const UNFINISHED_WORK_UPDATE_MS = 500;

/** The labelled children a queue writes to; created once per queue. */
function queueMetrics(metrics: Metrics, name: string) {
  const labelNames = ['name'] as const;
  return {
    depth: metrics.gauge({ name: 'workqueue_depth', help: 'Current depth of workqueue', labelNames, shared: true }).labels(name),
    adds: metrics.counter({ name: 'workqueue_adds_total', help: 'Total number of adds handled by workqueue', labelNames, shared: true }).labels(name),
    latency: metrics
      .histogram({
        name: 'workqueue_queue_duration_seconds',
        help: 'How long in seconds an item stays in workqueue before being requested',
        labelNames,
        shared: true,
        buckets: DURATION_BUCKETS,
      })
      .labels(name),
    workDuration: metrics
      .histogram({
        name: 'workqueue_work_duration_seconds',
        help: 'How long in seconds processing an item from workqueue takes',
        labelNames,
        shared: true,
        buckets: DURATION_BUCKETS,
      })
      .labels(name),
    unfinished: metrics
      .gauge({
        name: 'workqueue_unfinished_work_seconds',
        help:
          "How many seconds of work has been done that is in progress and hasn't been observed by work_duration. " +
          'Large values indicate stuck threads. One can deduce the number of stuck threads by observing the rate at which this increases.',
        labelNames,
        shared: true,
      })
      .labels(name),
    longest: metrics
      .gauge({ name: 'workqueue_longest_running_processor_seconds', help: 'How many seconds has the longest running processor for workqueue been running', labelNames, shared: true })
      .labels(name),
    retries: metrics.counter({ name: 'workqueue_retries_total', help: 'Total number of retries handled by workqueue', labelNames, shared: true }).labels(name),
  };
}

// ---------------------------------------------------------------------------------------------
// The queue
// ---------------------------------------------------------------------------------------------

/** Options of a {@link WorkQueue}. */
export interface WorkQueueOptions<K extends string = string> {
  /**
   * The queue's name: the `name` label of its metrics (by convention the controller's name, e.g.
   * `deployment`). Required when {@link metrics} is given.
   */
  readonly name?: string;
  /** The limiter behind {@link WorkQueue.addRateLimited}; {@link defaultControllerRateLimiter} when absent. */
  readonly rateLimiter?: RateLimiter<K>;
  /**
   * Where to publish the client-go workqueue metrics (`workqueue_depth`, `workqueue_adds_total`,
   * `workqueue_queue_duration_seconds`, `workqueue_work_duration_seconds`,
   * `workqueue_unfinished_work_seconds`, `workqueue_longest_running_processor_seconds`,
   * `workqueue_retries_total`), labelled `name`. No metrics when absent.
   */
  readonly metrics?: Metrics;
  /** The time source and timer (tests inject a fake one); also the default rate limiter's clock. */
  readonly clock?: WorkQueueClock;
}

/** One delayed add in the min-heap: due time, then insertion order, decide who comes first. */
interface Waiting<K> {
  readonly key: K;
  due: number;
  seq: number;
  index: number;
}

interface Getter<K> {
  resolve(key: K | undefined): void;
}

/**
 * A deduplicating, delaying, rate-limiting work queue of keys (client-go's
 * `TypedRateLimitingInterface`, the queue behind every Kubernetes controller).
 *
 * Contract:
 * - {@link add} marks a key as needing processing. A key already waiting is not queued twice; a
 *   key being processed (handed out by {@link get}, not yet {@link done}) is remembered as dirty
 *   and queued again by {@link done}, so one key is never processed by two workers at once.
 *   Otherwise keys come out in the order they were added.
 * - {@link addAfter} adds a key once a delay has passed; while waiting, a second `addAfter` for the
 *   same key keeps the earlier due time. All delayed keys share one timer, armed for the soonest.
 * - {@link addRateLimited} is `addAfter(key, rateLimiter.when(key))`; {@link forget} and
 *   {@link numRequeues} go to the rate limiter.
 * - {@link shutDown} stops accepting adds, drops the delayed ones and clears the timer (a stopped
 *   queue keeps no process alive), and resolves waiting getters with `undefined`. Keys already
 *   queued are still handed out; `get()` returns `undefined` once the queue is empty.
 *
 * Each worker must call {@link done} for every key {@link get} gave it, success or not.
 */
export class WorkQueue<K extends string = string> {
  /** Keys waiting to be handed out, oldest first; `head` is the index of the oldest. */
  private items: K[] = [];
  private head = 0;
  /** Keys that need processing: queued ones, and processing ones added again. */
  private readonly dirty = new Set<K>();
  /** Keys handed out by get() and not yet done(). */
  private readonly processing = new Set<K>();
  private readonly getters: Getter<K>[] = [];
  private stopping = false;
  private drain = false;
  private drainWaiters: Array<() => void> = [];

  /** Delayed adds: a binary min-heap by (due, seq), with an index by key. */
  private readonly heap: Waiting<K>[] = [];
  private readonly waitingByKey = new Map<K, Waiting<K>>();
  private seq = 0;
  private timer: unknown = undefined;
  private timerDue = Infinity;

  private readonly clock: WorkQueueClock;
  private readonly rateLimiter: RateLimiter<K>;
  /** The queue's name (the `name` label of its metrics); '' when unnamed. */
  readonly name: string;
  private readonly metrics?: ReturnType<typeof queueMetrics>;
  private readonly addedAt = new Map<K, number>();
  private readonly startedAt = new Map<K, number>();
  private metricsTicker?: ReturnType<typeof setInterval>;

  /**
   * @throws TypeError when `metrics` is given without a `name`; Error when the metrics registry
   *   refuses a workqueue metric (for example, one registered by another owner or with another type).
   */
  constructor(options: WorkQueueOptions<K> = {}) {
    this.clock = options.clock ?? systemClock;
    this.rateLimiter = options.rateLimiter ?? defaultControllerRateLimiter<K>(this.clock);
    this.name = options.name ?? '';
    if (options.metrics) {
      if (!this.name) throw new TypeError('WorkQueue: option "name" is required with "metrics" (it is the metrics\' name label)');
      this.metrics = queueMetrics(options.metrics, this.name);
      this.metrics.depth.set(0);
      // The in-flight gauges change with time alone; refresh them like client-go does. The ticker
      // is unref'd (metrics never keep a process alive) and stopped by shutDown().
      this.metricsTicker = setInterval(() => this.updateUnfinishedWork(), UNFINISHED_WORK_UPDATE_MS);
      this.metricsTicker.unref();
    }
  }

  /**
   * Marks `key` as needing processing. Does nothing when it is already waiting or the queue is
   * shutting down; when `key` is being processed it is queued again on {@link done}.
   */
  add(key: K): void {
    if (this.stopping || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.metrics) {
      this.metrics.adds.inc();
      if (!this.addedAt.has(key)) this.addedAt.set(key, this.clock.now());
      this.metrics.depth.set(this.dirty.size);
    }
    if (this.processing.has(key)) return;
    this.push(key);
  }

  /**
   * Adds `key` after `ms` milliseconds (at once when `ms <= 0`). A key already waiting for a later
   * time is moved to the earlier one; a later request for a key already due sooner changes
   * nothing. Ignored while shutting down. Counts a retry (`workqueue_retries_total`), as
   * client-go's delaying queue does.
   *
   * @throws RangeError when `ms` is NaN (nothing changes).
   */
  addAfter(key: K, ms: number): void {
    if (Number.isNaN(ms)) throw new RangeError(`WorkQueue.addAfter: delay of "${key}" is NaN`);
    if (this.stopping) return;
    this.metrics?.retries.inc();
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const due = this.clock.now() + ms;
    const existing = this.waitingByKey.get(key);
    if (existing) {
      if (due < existing.due) {
        existing.due = due;
        existing.seq = this.seq++;
        this.siftUp(existing.index);
      }
    } else {
      const entry: Waiting<K> = { key, due, seq: this.seq++, index: this.heap.length };
      this.heap.push(entry);
      this.waitingByKey.set(key, entry);
      this.siftUp(entry.index);
    }
    this.arm();
  }

  /**
   * Adds `key` when its rate limiter allows (client-go's `AddRateLimited`): after
   * `rateLimiter.when(key)` ms, which also counts one more failure for it. Ignored while shutting down.
   */
  addRateLimited(key: K): void {
    if (this.stopping) return;
    this.addAfter(key, this.rateLimiter.when(key));
  }

  /**
   * Ends the rate limiter's tracking of `key` (its back-off restarts from the base delay). Call it
   * when a key succeeded or was given up on; it does not replace {@link done}.
   */
  forget(key: K): void {
    this.rateLimiter.forget(key);
  }

  /** How many times `key` was requeued through {@link addRateLimited} since it was last forgotten. */
  numRequeues(key: K): number {
    return this.rateLimiter.numRequeues(key);
  }

  /**
   * The next key to process, waiting while the queue is empty. The key is then being processed
   * until {@link done}. Resolves with `undefined` once the queue is shut down and empty, or when
   * `signal` aborts (at once if it already has; no key is taken then).
   */
  get(signal?: AbortSignal): Promise<K | undefined> {
    if (signal?.aborted) return Promise.resolve(undefined);
    if (this.items.length > this.head) return Promise.resolve(this.take());
    if (this.stopping) return Promise.resolve(undefined);
    return new Promise<K | undefined>((resolve) => {
      const onAbort = (): void => {
        const i = this.getters.indexOf(getter);
        if (i >= 0) this.getters.splice(i, 1);
        resolve(undefined);
      };
      const getter: Getter<K> = {
        resolve: (key) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(key);
        },
      };
      this.getters.push(getter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Marks `key` as processed. If it was added again meanwhile, it is queued again. A key that is
   * not being processed is ignored.
   */
  done(key: K): void {
    if (!this.processing.delete(key)) return;
    if (this.metrics) {
      const started = this.startedAt.get(key);
      this.startedAt.delete(key);
      if (started !== undefined) this.metrics.workDuration.observe(Math.max(0, this.clock.now() - started) / 1000);
      this.updateUnfinishedWork();
    }
    if (this.dirty.has(key)) this.push(key);
    else if (this.processing.size === 0) this.settleDrain();
  }

  /** How many keys wait to be handed out (excluding delayed keys and processing keys added again). */
  len(): number {
    return this.items.length - this.head;
  }

  /** True once {@link shutDown} or {@link shutDownWithDrain} was called. */
  get shuttingDown(): boolean {
    return this.stopping;
  }

  /**
   * Stops the queue: later adds are ignored, delayed adds are dropped and their timer cleared,
   * waiting getters resolve with `undefined`, and a pending {@link shutDownWithDrain} resolves at
   * once. Keys already queued can still be taken with {@link get}. Idempotent.
   */
  shutDown(): void {
    this.drain = false;
    this.stop();
    this.settleDrain();
  }

  /**
   * Stops the queue like {@link shutDown}, then resolves once every key being processed is
   * {@link done} (client-go's `ShutDownWithDrain`). Workers must keep calling `done`, or this never
   * resolves; a later {@link shutDown} resolves it at once.
   */
  shutDownWithDrain(): Promise<void> {
    this.drain = true;
    this.stop();
    if (this.processing.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.drainWaiters.push(resolve));
  }

  // -- internals --------------------------------------------------------------------------------

  private stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = Infinity;
    this.heap.length = 0;
    this.waitingByKey.clear();
    if (this.metricsTicker) clearInterval(this.metricsTicker);
    this.metricsTicker = undefined;
    // Getters wait only while the queue is empty, so none of them can be served now.
    for (const getter of this.getters.splice(0)) getter.resolve(undefined);
  }

  private settleDrain(): void {
    if (this.drain && this.processing.size > 0) return;
    for (const resolve of this.drainWaiters.splice(0)) resolve();
  }

  /** Appends a key to the FIFO and serves a waiting getter with it. */
  private push(key: K): void {
    this.items.push(key);
    const getter = this.getters.shift();
    if (getter) getter.resolve(this.take());
  }

  /** Takes the oldest key: it leaves the queue and the dirty set and is being processed. */
  private take(): K {
    const key = this.items[this.head++]!;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    this.dirty.delete(key);
    this.processing.add(key);
    if (this.metrics) {
      const now = this.clock.now();
      const added = this.addedAt.get(key);
      this.addedAt.delete(key);
      if (added !== undefined) this.metrics.latency.observe(Math.max(0, now - added) / 1000);
      this.startedAt.set(key, now);
      this.metrics.depth.set(this.dirty.size);
      this.updateUnfinishedWork();
    }
    return key;
  }

  private updateUnfinishedWork(): void {
    if (!this.metrics) return;
    const now = this.clock.now();
    let total = 0;
    let longest = 0;
    for (const started of this.startedAt.values()) {
      const seconds = Math.max(0, now - started) / 1000;
      total += seconds;
      longest = Math.max(longest, seconds);
    }
    this.metrics.unfinished.set(total);
    this.metrics.longest.set(longest);
  }

  /** (Re)arms the single timer for the soonest delayed add, if it is not armed for it already. */
  private arm(): void {
    const first = this.heap[0];
    if (!first) {
      if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
      this.timer = undefined;
      this.timerDue = Infinity;
      return;
    }
    if (this.timer !== undefined && this.timerDue <= first.due) return;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    const wait = Math.min(MAX_TIMER_MS, Math.max(1, Math.ceil(first.due - this.clock.now())));
    this.timerDue = first.due;
    this.timer = this.clock.setTimeout(() => this.fire(), wait);
  }

  /** The timer fired: adds every delayed key now due, then re-arms for the next one. */
  private fire(): void {
    this.timer = undefined;
    this.timerDue = Infinity;
    if (this.stopping) return;
    const now = this.clock.now();
    while (this.heap.length > 0 && this.heap[0]!.due <= now) {
      const entry = this.popHeap();
      this.waitingByKey.delete(entry.key);
      this.add(entry.key);
    }
    this.arm();
  }

  private less(a: Waiting<K>, b: Waiting<K>): boolean {
    return a.due < b.due || (a.due === b.due && a.seq < b.seq);
  }

  private swap(i: number, j: number): void {
    const a = this.heap[i]!;
    const b = this.heap[j]!;
    this.heap[i] = b;
    this.heap[j] = a;
    a.index = j;
    b.index = i;
  }

  private siftUp(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(this.heap[i]!, this.heap[parent]!)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private siftDown(i: number): void {
    const n = this.heap.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let smallest = i;
      if (l < n && this.less(this.heap[l]!, this.heap[smallest]!)) smallest = l;
      if (r < n && this.less(this.heap[r]!, this.heap[smallest]!)) smallest = r;
      if (smallest === i) return;
      this.swap(i, smallest);
      i = smallest;
    }
  }

  private popHeap(): Waiting<K> {
    const top = this.heap[0]!;
    const last = this.heap.pop()!;
    if (last !== top) {
      this.heap[0] = last;
      last.index = 0;
      this.siftDown(0);
    }
    return top;
  }
}
