/**
 * The event recorder of controllers: writes `core/v1` Events about objects (what `kubectl describe`
 * shows), with client-go's correlation (`tools/record`: `EventCorrelator` in events_cache.go,
 * `recordToSink` in event.go) so that a controller in a hot loop cannot flood the API:
 *
 * - **De-duplication.** An event identical to an earlier one (same source, involved object, type,
 *   reason and message) does not create a new Event: the existing one's `count` and
 *   `lastTimestamp` are patched, its name kept.
 * - **Aggregation.** Similar events (same source, object, type and reason; any message), each less
 *   than {@link EVENT_AGGREGATE_WINDOW_MS} after the previous one: from the
 *   {@link EVENT_AGGREGATE_MAX_SIMILAR}th distinct message on (client-go's threshold), they go to ONE
 *   Event whose message is the latest message prefixed `(combined from similar events): ` and whose
 *   count grows. (As in client-go, the set of messages is capped at 9 once aggregating, so a repeat
 *   of one of the most recent messages is de-duplicated on its own Event instead.)
 * - **Spam filter.** A token bucket per source and object (burst {@link EVENT_SPAM_BURST}, one token
 *   back every {@link EVENT_SPAM_REFILL_MS}) drops the excess silently; dropped occurrences of a
 *   de-duplicated event still count, as in client-go.
 *
 * Writes are queued and sent one at a time in order (a patch never overtakes the create it
 * patches), off the caller's path: {@link EventRecorder.event} never throws and never waits.
 *
 * @module
 */
import { ApiStatusError, isAlreadyExists, isNotFound, type ApiClient, type KubeObject } from '../client/api-client.js';
import { clockDelay, systemWallClock, type WallClock, type WarnLogger } from './leader-election.js';

/** Distinct messages of similar events (same source, object, type, reason) before aggregation: 10, as client-go. */
export const EVENT_AGGREGATE_MAX_SIMILAR = 10;
/** A similar event after this long (10 minutes) since the previous one starts a fresh aggregation window. */
export const EVENT_AGGREGATE_WINDOW_MS = 600_000;
/** The message prefix of an aggregated event. */
export const EVENT_AGGREGATE_PREFIX = '(combined from similar events): ';
/** Events a source may write about one object in a burst: 25, as client-go. */
export const EVENT_SPAM_BURST = 25;
/** The spam filter gives a source one more event per object every 5 minutes. */
export const EVENT_SPAM_REFILL_MS = 300_000;
/** Entries kept by each correlation cache (least recently used evicted), as client-go. */
export const EVENT_CACHE_ENTRIES = 4096;

/** The `type` of an event. */
export type EventType = 'Normal' | 'Warning';

/** A `core/v1` ObjectReference: the object an event is about. */
export interface ObjectReference {
  apiVersion?: string;
  kind?: string;
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  fieldPath?: string;
}

/** A `core/v1` EventSource. */
export interface EventSource {
  component: string;
  host?: string;
}

/** A `core/v1` Event as the recorder writes it. */
export interface CoreEvent {
  apiVersion: 'v1';
  kind: 'Event';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  involvedObject: ObjectReference;
  reason: string;
  message: string;
  source: EventSource;
  /** RFC 3339, whole seconds. */
  firstTimestamp: string;
  /** RFC 3339, whole seconds. */
  lastTimestamp: string;
  count: number;
  type: EventType;
  reportingComponent: string;
  reportingInstance: string;
}

/** What {@link EventCorrelator.correlate} decided. */
export type CorrelationResult =
  /** Dropped by the spam filter. */
  | { readonly skip: true }
  /** Write `event`: patch its `count`, `lastTimestamp` and `message` if `patch`, else create it. */
  | { readonly skip: false; readonly event: CoreEvent; readonly patch: boolean };

/** Tunables of an {@link EventCorrelator}; the defaults are client-go's. */
export interface EventCorrelatorOptions {
  /** Distinct messages of similar events that trigger aggregation (default {@link EVENT_AGGREGATE_MAX_SIMILAR}). */
  readonly maxSimilar?: number;
  /** Quiet time after which similar events start a fresh window (default {@link EVENT_AGGREGATE_WINDOW_MS}). */
  readonly similarWindowMs?: number;
  /** Token bucket size per source and object (default {@link EVENT_SPAM_BURST}). */
  readonly spamBurst?: number;
  /** Milliseconds per token refilled (default {@link EVENT_SPAM_REFILL_MS}). */
  readonly spamRefillMs?: number;
  /** Entries per correlation cache (default {@link EVENT_CACHE_ENTRIES}). */
  readonly cacheEntries?: number;
}

/** A map that forgets its least recently used entry beyond `max` entries. */
class Lru<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}

  get(key: string): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
  }
}

const key = (...parts: (string | undefined)[]): string => JSON.stringify(parts.map((p) => p ?? ''));
const objectKeyOf = (e: CoreEvent): (string | undefined)[] => [e.source.component, e.source.host, e.involvedObject.kind, e.involvedObject.namespace, e.involvedObject.name, e.involvedObject.uid, e.involvedObject.apiVersion];

/**
 * client-go's `EventCorrelator`: decides, for each new event, whether to drop it, create it, or
 * patch an earlier one (aggregation, then de-duplication, then the spam filter). Pure bookkeeping:
 * it never calls the API. Keyed caches are bounded (LRU).
 */
export class EventCorrelator {
  private readonly maxSimilar: number;
  private readonly similarWindowMs: number;
  private readonly spamBurst: number;
  private readonly spamRefillMs: number;
  private readonly aggregates: Lru<{ messages: Set<string>; last: number }>;
  private readonly observations: Lru<{ count: number; firstTimestamp: string; name: string }>;
  private readonly buckets: Lru<{ tokens: number; last: number }>;

  constructor(options: EventCorrelatorOptions = {}) {
    this.maxSimilar = options.maxSimilar ?? EVENT_AGGREGATE_MAX_SIMILAR;
    this.similarWindowMs = options.similarWindowMs ?? EVENT_AGGREGATE_WINDOW_MS;
    this.spamBurst = options.spamBurst ?? EVENT_SPAM_BURST;
    this.spamRefillMs = options.spamRefillMs ?? EVENT_SPAM_REFILL_MS;
    const entries = options.cacheEntries ?? EVENT_CACHE_ENTRIES;
    this.aggregates = new Lru(entries);
    this.observations = new Lru(entries);
    this.buckets = new Lru(entries);
  }

  /**
   * Correlates a freshly made event (count 1, both timestamps now) observed at `now` (ms since the
   * epoch). The returned event is a new object; the input is not modified.
   */
  correlate(input: CoreEvent, now: number): CorrelationResult {
    // 1. Aggregation of similar events (same everything but the message).
    const similarKey = key(...objectKeyOf(input), input.type, input.reason, input.reportingComponent, input.reportingInstance);
    let aggregate = this.aggregates.get(similarKey);
    if (!aggregate || now - aggregate.last > this.similarWindowMs) aggregate = { messages: new Set(), last: now };
    aggregate.messages.add(input.message);
    aggregate.last = now;
    this.aggregates.set(similarKey, aggregate);
    let event: CoreEvent = { ...input, metadata: { ...input.metadata } };
    let cacheKey = key(...objectKeyOf(input), input.involvedObject.fieldPath, input.type, input.reason, input.message);
    if (aggregate.messages.size >= this.maxSimilar) {
      // Keep the set from growing (client-go pops an arbitrary member; here the oldest).
      aggregate.messages.delete(aggregate.messages.values().next().value as string);
      event = { ...event, message: EVENT_AGGREGATE_PREFIX + input.message, count: 1, firstTimestamp: input.lastTimestamp };
      cacheKey = similarKey;
    }

    // 2. De-duplication: a repeat patches the first occurrence's Event.
    const seen = this.observations.get(cacheKey);
    const patch = !!seen && seen.count > 0;
    if (seen && patch) event = { ...event, metadata: { name: seen.name, namespace: event.metadata.namespace }, firstTimestamp: seen.firstTimestamp, count: seen.count + 1 };
    this.observations.set(cacheKey, { count: event.count, firstTimestamp: event.firstTimestamp, name: event.metadata.name });

    // 3. The spam filter, per source and object.
    const spamKey = key(...objectKeyOf(event));
    const bucket = this.buckets.get(spamKey) ?? { tokens: this.spamBurst, last: now };
    bucket.tokens = Math.min(this.spamBurst, bucket.tokens + Math.max(0, now - bucket.last) / this.spamRefillMs);
    bucket.last = now;
    const accepted = bucket.tokens >= 1;
    if (accepted) bucket.tokens -= 1;
    this.buckets.set(spamKey, bucket);
    return accepted ? { skip: false, event, patch } : { skip: true };
  }
}

/** Options of an {@link EventRecorder}. */
export interface EventRecorderOptions {
  /** The API client (only `create` and `patch` are used, so a fake needs only those). */
  readonly api: Pick<ApiClient, 'create' | 'patch'>;
  /** `source.component` and `reportingComponent`: who reports (e.g. `deployment-controller`). */
  readonly component: string;
  /** `source.host` and `reportingInstance`: where it runs (e.g. the node name); optional. */
  readonly host?: string;
  /** Time source and timers (default: `Date.now()` and the global timers). */
  readonly clock?: WallClock;
  /** Where failed writes and dropped events are reported (default: nowhere). */
  readonly logger?: WarnLogger;
  /** Attempts per write before it is given up (default 5). */
  readonly maxTries?: number;
  /** Wait between attempts (default 10 000 ms as client-go; the first wait is randomized in [0, this)). */
  readonly retryDelayMs?: number;
  /** Writes waiting at most; beyond, new events are dropped with a warning (default 1000). */
  readonly maxQueued?: number;
  /** The correlation tunables (default: client-go's). */
  readonly correlator?: EventCorrelatorOptions;
  /**
   * Stops the recorder when aborted (pass the plugin's stop signal): events recorded afterwards
   * and writes not yet sent are dropped, a write waiting to retry gives up, so a stopped plugin
   * keeps no timer alive.
   */
  readonly signal?: AbortSignal;
}

interface Write {
  readonly event: CoreEvent;
  readonly patch: boolean;
}

const EVENT_TYPES: readonly string[] = ['Normal', 'Warning'];

/** RFC 3339 in UTC with whole seconds, as a `metav1.Time`. */
const formatTime = (ms: number): string => `${new Date(Math.floor(ms)).toISOString().slice(0, 19)}Z`;

/**
 * Records `core/v1` Events on behalf of one component (client-go's `EventRecorder` with an
 * `EventBroadcaster` recording to the API). Events go to the involved object's namespace, or to
 * `default` for cluster-scoped objects, as Kubernetes does.
 *
 * Writes are asynchronous and serial. A write failing for a transient reason (no answer, 429, 5xx)
 * is retried up to `maxTries` times; one the server rejects (other 4xx) is logged and dropped, an
 * `AlreadyExists` silently. A patch of an Event that no longer exists creates it again.
 *
 * @throws {TypeError} from the constructor when `component` is not a non-empty string.
 */
export class EventRecorder {
  private readonly api: Pick<ApiClient, 'create' | 'patch'>;
  private readonly clock: WallClock;
  private readonly source: EventSource;
  private readonly correlator: EventCorrelator;
  private readonly maxTries: number;
  private readonly retryDelayMs: number;
  private readonly maxQueued: number;
  private readonly signal?: AbortSignal;
  private tail: Promise<void> = Promise.resolve();
  private queued = 0;
  private dropped = 0;
  private lastDropWarning = -Infinity;
  private lastStamp = 0n;

  constructor(private readonly options: EventRecorderOptions) {
    if (typeof options.component !== 'string' || options.component === '') throw new TypeError('event recorder: component must be a non-empty string');
    this.api = options.api;
    this.clock = options.clock ?? systemWallClock;
    this.source = options.host ? { component: options.component, host: options.host } : { component: options.component };
    this.correlator = new EventCorrelator(options.correlator);
    this.maxTries = Math.max(1, options.maxTries ?? 5);
    this.retryDelayMs = Math.max(0, options.retryDelayMs ?? 10_000);
    this.maxQueued = Math.max(1, options.maxQueued ?? 1000);
    this.signal = options.signal;
  }

  /**
   * Records that `type` `reason` happened to `object` (which needs `metadata.name`; `apiVersion`,
   * `kind`, `metadata.namespace`, `uid` and `resourceVersion` are referenced when present).
   * Returns at once; the write happens later (see {@link EventRecorder.flush}). Never throws: an
   * unusable object or type is logged and ignored.
   */
  event(object: KubeObject, type: EventType, reason: string, message: string): void {
    if (this.signal?.aborted) return;
    try {
      const name = object?.metadata?.name;
      if (typeof name !== 'string' || name === '') {
        this.warn({ kind: object?.kind, reason }, 'event recorder: the object has no metadata.name; event not recorded');
        return;
      }
      if (!EVENT_TYPES.includes(type)) {
        this.warn({ type, reason }, 'event recorder: unsupported event type (Normal or Warning); event not recorded');
        return;
      }
      const now = this.clock.now();
      const result = this.correlator.correlate(this.makeEvent(object, name, type, reason, String(message), now), now);
      if (result.skip) return;
      this.enqueue(result);
    } catch (err) {
      this.warn({ err, reason }, 'event recorder: event not recorded');
    }
  }

  /** Resolves when every write queued so far (and any queued meanwhile) is done or given up. Never rejects. */
  async flush(): Promise<void> {
    let tail: Promise<void>;
    do {
      tail = this.tail;
      await tail;
    } while (tail !== this.tail);
  }

  private makeEvent(object: KubeObject, name: string, type: EventType, reason: string, message: string, now: number): CoreEvent {
    const meta = object.metadata ?? {};
    const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
    const ref: ObjectReference = { name };
    for (const [field, value] of [
      ['apiVersion', str(object.apiVersion)],
      ['kind', str(object.kind)],
      ['namespace', str(meta.namespace)],
      ['uid', str(meta.uid)],
      ['resourceVersion', str(meta.resourceVersion)],
    ] as const) {
      if (value !== undefined) ref[field] = value;
    }
    const time = formatTime(now);
    return {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${name}.${this.stamp(now).toString(16)}`, namespace: ref.namespace ?? 'default' },
      involvedObject: ref,
      reason,
      message,
      source: { ...this.source },
      firstTimestamp: time,
      lastTimestamp: time,
      count: 1,
      type,
      reportingComponent: this.source.component,
      reportingInstance: this.source.host ?? '',
    };
  }

  /** Nanoseconds since the epoch, strictly increasing per recorder (Kubernetes' unique name suffix). */
  private stamp(now: number): bigint {
    const whole = Math.floor(now);
    let nanos = BigInt(whole) * 1_000_000n + BigInt(Math.floor((now - whole) * 1e6));
    if (nanos <= this.lastStamp) nanos = this.lastStamp + 1n;
    this.lastStamp = nanos;
    return nanos;
  }

  private enqueue(write: Write): void {
    if (this.queued >= this.maxQueued) {
      // Under sustained overload, one warning per 10 s with the count, not one per event.
      this.dropped++;
      const now = this.clock.now();
      if (now - this.lastDropWarning >= 10_000) {
        this.warn({ ...describe(write.event), dropped: this.dropped }, `event recorder: ${this.queued} writes already queued; ${this.dropped} event(s) dropped since the last warning`);
        this.dropped = 0;
        this.lastDropWarning = now;
      }
      return;
    }
    this.queued++;
    this.tail = this.tail
      .then(() => this.write(write))
      .catch((err: unknown) => this.warn({ err, ...describe(write.event) }, 'event recorder: event not recorded'))
      .finally(() => {
        this.queued--;
      });
  }

  private async write(write: Write): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if (this.signal?.aborted) return;
      try {
        await this.send(write);
        return;
      } catch (err) {
        if (isAlreadyExists(err) || this.signal?.aborted) return;
        const retry = !(err instanceof ApiStatusError) || err.code === 429 || err.code >= 500;
        if (!retry) {
          this.warn({ err, ...describe(write.event) }, 'event recorder: the server rejected the event (will not retry)');
          return;
        }
        if (attempt >= this.maxTries) {
          this.warn({ err, ...describe(write.event), attempts: attempt }, 'event recorder: could not write the event (retry limit reached; dropped)');
          return;
        }
        this.warn({ err, ...describe(write.event), attempt }, 'event recorder: could not write the event (will retry)');
      }
      // The first wait is randomized so that recorders do not all retry in step after an outage.
      if (!(await clockDelay(this.clock, attempt === 1 ? this.retryDelayMs * Math.random() : this.retryDelayMs, this.signal))) return;
    }
  }

  private async send({ event, patch }: Write): Promise<void> {
    const collection = `/api/v1/namespaces/${encodeURIComponent(event.metadata.namespace)}/events`;
    if (patch) {
      try {
        await this.api.patch(`${collection}/${encodeURIComponent(event.metadata.name)}`, { count: event.count, lastTimestamp: event.lastTimestamp, message: event.message });
        return;
      } catch (err) {
        // The Event may have been deleted (or never written): create it, with the count so far.
        if (!isNotFound(err)) throw err;
      }
    }
    await this.api.create(collection, { ...event, metadata: { name: event.metadata.name, namespace: event.metadata.namespace } });
  }

  private warn(obj: object, msg: string): void {
    this.options.logger?.warn({ component: this.source.component, ...obj }, msg);
  }
}

function describe(event: CoreEvent): Record<string, unknown> {
  const o = event.involvedObject;
  return { event: `${event.metadata.namespace}/${event.metadata.name}`, object: `${o.kind ?? ''}/${o.namespace ? `${o.namespace}/` : ''}${o.name}`, reason: event.reason, count: event.count };
}
