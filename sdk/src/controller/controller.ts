/**
 * The reconciler contract and the loop that drives it (controller-runtime's `Reconciler` and
 * controller, reduced): informers map events to object keys, a {@link WorkQueue} deduplicates
 * them, workers call `reconcile` with a key never processed twice at once; a thrown error retries
 * the key with per-key exponential back-off, a {@link TerminalError} does not, and a result's
 * `requeueAfter` revisits it later.
 *
 * @module
 */
import type { Informer } from '../client/informer.js';
import type { KubeObject } from '../client/api-client.js';
import type { Logger } from '../plugin/handle.js';
import type { Metrics } from '../plugin/metrics.js';
import { WorkQueue, defaultControllerRateLimiter, type RateLimiter } from './workqueue.js';

/** The object a reconcile is about. `namespace` is `''` for cluster-scoped objects. */
export interface ObjectKey {
  readonly namespace: string;
  readonly name: string;
}

/** What a reconcile asks for next. Nothing: done until the next event. */
export interface ReconcileResult {
  /** Revisit the key after this many milliseconds (a timed check, e.g. a progress deadline). */
  readonly requeueAfter?: number;
  /** Revisit the key soon, through the rate limiter (without counting as a failure). */
  readonly requeue?: boolean;
}

/** What a reconcile gets besides its key. */
export interface ReconcileContext {
  /** Aborted when the controller stops: long work should give up. */
  readonly signal: AbortSignal;
  readonly log: Logger;
}

/**
 * A reconciler: brings the world in line with the object at `key` (which may no longer exist).
 * It must be idempotent and level-triggered: it reads current state, not the event that caused
 * the call. Throw to retry with back-off; throw a {@link TerminalError} to give up on this key.
 */
export interface Reconciler {
  reconcile(key: ObjectKey, context: ReconcileContext): Promise<ReconcileResult | void>;
}

/** An error retrying cannot fix (invalid spec, ...): logged, not retried until the key's next event. */
export class TerminalError extends Error {
  override readonly name = 'TerminalError';
}

/** `namespace/name`, or `name` for cluster-scoped objects (the cache key of informers). */
export const keyString = (k: ObjectKey): string => (k.namespace ? `${k.namespace}/${k.name}` : k.name);

/** The inverse of {@link keyString}. */
export function parseKey(key: string): ObjectKey {
  const slash = key.indexOf('/');
  return slash < 0 ? { namespace: '', name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** The key of an object. */
export const objectKey = (o: KubeObject): ObjectKey => ({ namespace: String(o.metadata?.namespace ?? ''), name: String(o.metadata?.name ?? '') });

/** Maps an object event to the keys to reconcile. */
export type EventMapper<T extends KubeObject = KubeObject> = (object: T) => readonly ObjectKey[];

/** The object itself (for a controller's primary resource). */
export const mapToSelf: EventMapper = (o) => [objectKey(o)];

/** An owner reference as the API carries it. */
export interface OwnerReference {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly uid: string;
  readonly controller?: boolean;
  readonly blockOwnerDeletion?: boolean;
}

/** The controlling owner reference of an object (`controller: true`), if any. */
export function controllerOf(o: KubeObject): OwnerReference | undefined {
  const refs = (o.metadata as { ownerReferences?: OwnerReference[] } | undefined)?.ownerReferences;
  return Array.isArray(refs) ? refs.find((r) => r?.controller === true) : undefined;
}

/**
 * Maps a dependent to its controlling owner of `kind` (in `apiGroup`), in the dependent's
 * namespace: a ReplicaSet controller reconciles the ReplicaSet when one of its pods changes.
 */
export function mapToOwner(kind: string, apiGroup = ''): EventMapper {
  return (o) => {
    const ref = controllerOf(o);
    if (!ref || ref.kind !== kind) return [];
    const group = ref.apiVersion.includes('/') ? ref.apiVersion.slice(0, ref.apiVersion.indexOf('/')) : '';
    return group === apiGroup ? [{ namespace: String(o.metadata?.namespace ?? ''), name: ref.name }] : [];
  };
}

/**
 * Maps an object to every object of `owners` (in its namespace) whose label selector, read by
 * `selectorOf`, matches the object's labels: a Service's endpoints follow the pods it selects.
 */
export function mapBySelector<O extends KubeObject>(owners: Informer<O>, selectorOf: (owner: O) => ((labels: Record<string, string>) => boolean) | undefined): EventMapper {
  return (o) => {
    const labels = o.metadata?.labels ?? {};
    const out: ObjectKey[] = [];
    for (const owner of owners.byIndex('namespace', String(o.metadata?.namespace ?? ''))) {
      const matches = selectorOf(owner);
      if (matches && matches(labels)) out.push(objectKey(owner));
    }
    return out;
  };
}

/** Options of a {@link Controller}. */
export interface ControllerOptions {
  /** Names the queue, logs and metrics (`deployment`, `replicaset`, ...). */
  readonly name: string;
  readonly reconciler: Reconciler;
  /** Concurrent workers (distinct keys only); 1 by default. */
  readonly workers?: number;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  /** Default: {@link defaultControllerRateLimiter} (5 ms to 1000 s per key, 10 qps overall). */
  readonly rateLimiter?: RateLimiter;
}

/**
 * Runs a {@link Reconciler}: `watch` informers (mapping their events to keys), then `run` until
 * the signal aborts. Metrics (with `controller` = name): `controller_runtime_reconcile_total`
 * by `result` (success, error, requeue, requeue_after, terminal),
 * `controller_runtime_reconcile_errors_total`, `controller_runtime_reconcile_time_seconds`, and
 * the work queue's own.
 */
export class Controller {
  readonly queue: WorkQueue;
  private readonly unsubscribes: Array<() => void> = [];
  private readonly total?: ReturnType<Metrics['counter']>;
  private readonly errors?: ReturnType<Metrics['counter']>;
  private readonly time?: ReturnType<Metrics['histogram']>;

  constructor(private readonly options: ControllerOptions) {
    this.queue = new WorkQueue({ name: options.name, rateLimiter: options.rateLimiter ?? defaultControllerRateLimiter(), ...(options.metrics ? { metrics: options.metrics } : {}) });
    if (options.metrics) {
      this.total = options.metrics.counter({ name: 'controller_runtime_reconcile_total', help: 'Reconciliations per controller and result.', labelNames: ['controller', 'result'], shared: true });
      this.errors = options.metrics.counter({ name: 'controller_runtime_reconcile_errors_total', help: 'Reconciliations that failed.', labelNames: ['controller'], shared: true });
      this.time = options.metrics.histogram({ name: 'controller_runtime_reconcile_time_seconds', help: 'Time per reconciliation.', labelNames: ['controller'], shared: true });
    }
  }

  /** Queues a key now. */
  enqueue(key: ObjectKey): void {
    this.queue.add(keyString(key));
  }

  /** Queues a key after `ms`. */
  enqueueAfter(key: ObjectKey, ms: number): void {
    this.queue.addAfter(keyString(key), ms);
  }

  /**
   * Maps every add, update and delete of `informer` to keys (the object itself by default). With
   * `resyncMs`, every cached object is revisited that often.
   */
  watch<T extends KubeObject>(informer: Informer<T>, mapper: EventMapper<T> = mapToSelf as EventMapper<T>, options: { resyncMs?: number; predicate?: (o: T, old?: T) => boolean } = {}): void {
    const on = (o: T, old?: T): void => {
      if (options.predicate && !options.predicate(o, old)) return;
      for (const k of mapper(o)) this.enqueue(k);
    };
    this.unsubscribes.push(
      informer.subscribe(
        {
          add: (o) => on(o),
          update: (o, old) => {
            on(o, old);
            // A dependent whose owner changed also concerns its old owner.
            if (old !== o) for (const k of mapper(old)) this.enqueue(k);
          },
          delete: (o) => on(o),
        },
        options.resyncMs ? { resyncMs: options.resyncMs } : {},
      ),
    );
  }

  /** Runs the workers until `signal` aborts, then lets in-flight reconciles finish. */
  async run(signal: AbortSignal): Promise<void> {
    const workers = Math.max(1, this.options.workers ?? 1);
    const stop = (): void => this.queue.shutDown();
    signal.addEventListener('abort', stop, { once: true });
    try {
      await Promise.all(Array.from({ length: workers }, () => this.worker(signal)));
    } finally {
      signal.removeEventListener('abort', stop);
      for (const u of this.unsubscribes.splice(0)) u();
      this.queue.shutDown();
    }
  }

  private async worker(signal: AbortSignal): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const started = process.hrtime.bigint();
      let result = 'success';
      try {
        const r = (await this.options.reconciler.reconcile(parseKey(key), { signal, log: this.options.logger })) ?? {};
        if (r.requeueAfter !== undefined && r.requeueAfter > 0) {
          this.queue.forget(key);
          this.queue.addAfter(key, r.requeueAfter);
          result = 'requeue_after';
        } else if (r.requeue) {
          this.queue.addRateLimited(key);
          result = 'requeue';
        } else {
          this.queue.forget(key);
        }
      } catch (err) {
        if (err instanceof TerminalError) {
          this.queue.forget(key);
          result = 'terminal';
          this.options.logger.error({ controller: this.options.name, key, err: err.message }, 'reconcile failed terminally; not retrying');
        } else {
          result = 'error';
          this.errors?.inc({ controller: this.options.name });
          if (!signal.aborted) {
            this.options.logger.warn({ controller: this.options.name, key, err: (err as Error)?.message ?? String(err), retries: this.queue.numRequeues(key) }, 'reconcile failed; retrying with back-off');
            this.queue.addRateLimited(key);
          }
        }
      } finally {
        this.queue.done(key);
        this.total?.inc({ controller: this.options.name, result });
        this.time?.observe({ controller: this.options.name }, Number(process.hrtime.bigint() - started) / 1e9);
      }
    }
  }
}
