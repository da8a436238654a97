/**
 * The Pod garbage collector (Kubernetes' `pod-garbage-collector`, pkg/controller/podgc): a
 * periodic pass over every pod that
 *
 * 1. deletes the oldest terminated pods (phase `Succeeded` or `Failed`) beyond
 *    `terminatedPodGCThreshold`, evicted pods (`Failed` with reason `Evicted`) first, then by
 *    creation time, then by name (a threshold of 0 turns this off);
 * 2. force-deletes terminating pods (deletion timestamp set) on nodes that are not Ready and carry
 *    the `node.kubernetes.io/out-of-service` taint (non-graceful node shutdown);
 * 3. force-deletes pods bound to nodes that no longer exist: a node name missing from the node
 *    cache is quarantined first (40 s by default) and only then checked with a live GET, so a
 *    cache that has not yet seen a new node never costs its pods; such pods get the
 *    `DisruptionTarget` condition (reason `DeletionByPodGC`) and phase `Failed` before they go;
 * 4. force-deletes terminating pods that were never scheduled (no node will ever finish them).
 *
 * "Force-delete" is Kubernetes' `markFailedAndDeletePod`: a pod not yet in a terminal phase is
 * moved to `Failed` first (an orphaned pod has no kubelet left to do it), then deleted with
 * `gracePeriodSeconds: 0`. Deletes carry the pod's uid as a precondition, so a pod recreated
 * under the same name in the meantime (a StatefulSet's) is never hit.
 *
 * @module
 */
import {
  definePlugin,
  delay,
  isConflict,
  isNotFound,
  runWhileLeading,
  LEADER_ELECTION_SCHEMA,
  type ApiClient,
  type Informer,
  type KubeObject,
  type LeaderElectionConfig,
  type Logger,
  type Metrics,
} from '@kubernel/sdk';
import { type Fields, formatTime } from './util.js';

/** The plugin id. */
export const POD_GC_CONTROLLER_ID = 'pod-gc-controller';
/** The taint an administrator puts on a node that is shut down for good (non-graceful shutdown). */
export const TAINT_NODE_OUT_OF_SERVICE = 'node.kubernetes.io/out-of-service';
/** The pod condition saying a pod is about to be disrupted, and why. */
export const DISRUPTION_TARGET_CONDITION = 'DisruptionTarget';
/** The `DisruptionTarget` reason of pods the Pod GC deletes because their node is gone. */
export const DELETION_BY_POD_GC_REASON = 'DeletionByPodGC';
/** The reason label values of the `pod_gc_collector_*` metrics, as Kubernetes names them. */
export const POD_GC_REASONS = { terminated: 'terminated', outOfService: 'out-of-service', orphaned: 'orphaned', unscheduled: 'unscheduled' } as const;
/** Deletes in flight at once within one pass. */
const DELETE_CONCURRENCY = 16;

/** The plugin's configuration (after defaults). */
export interface PodGcConfig {
  /** Terminated pods kept before the oldest are deleted; 0 turns the terminated-pod pass off. */
  readonly terminatedPodGCThreshold: number;
  /** Seconds between passes. */
  readonly gcPeriodSeconds: number;
  /** Seconds a node name missing from the cache waits before a live GET decides it is gone. */
  readonly orphanQuarantineSeconds: number;
  readonly leaderElection: LeaderElectionConfig;
}

/** The JSON Schema of {@link PodGcConfig}, with Kubernetes' defaults. */
export const POD_GC_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    terminatedPodGCThreshold: { type: 'integer', minimum: 0, default: 12500, description: 'Terminated pods (Succeeded or Failed) kept before the oldest are deleted; 0 disables this (Kubernetes --terminated-pod-gc-threshold).' },
    gcPeriodSeconds: { type: 'number', exclusiveMinimum: 0, default: 20, description: 'Seconds between garbage-collection passes.' },
    orphanQuarantineSeconds: { type: 'number', minimum: 0, default: 40, description: 'Seconds a node missing from the cache is quarantined before a live GET decides that its pods are orphans.' },
    leaderElection: LEADER_ELECTION_SCHEMA,
  },
} as const;

// ---------------------------------------------------------------------------------------------
// Pure helpers
// ---------------------------------------------------------------------------------------------

const phaseOf = (p: KubeObject): string => String((p.status as Fields | undefined)?.phase ?? '');
const nodeNameOf = (p: KubeObject): string => String((p.spec as Fields | undefined)?.nodeName ?? '');
const createdAt = (p: KubeObject): number => Date.parse(String(p.metadata?.creationTimestamp ?? '')) || 0;

/** True when the pod is in a terminal phase (`Succeeded` or `Failed`). */
export const isPodTerminated = (p: KubeObject): boolean => phaseOf(p) === 'Succeeded' || phaseOf(p) === 'Failed';

/** True when the pod is being deleted (it has a deletion timestamp). */
export const isPodTerminating = (p: KubeObject): boolean => Boolean(p.metadata?.deletionTimestamp);

/** True when the kubelet evicted the pod (phase `Failed`, reason `Evicted`). */
export const isPodEvicted = (p: KubeObject): boolean => phaseOf(p) === 'Failed' && (p.status as Fields | undefined)?.reason === 'Evicted';

/** Kubernetes' `byEvictionAndCreationTimestamp`: evicted pods first, then older first, then by name. */
export function byEvictionAndCreation(a: KubeObject, b: KubeObject): number {
  const ea = isPodEvicted(a);
  const eb = isPodEvicted(b);
  if (ea !== eb) return ea ? -1 : 1;
  const ta = createdAt(a);
  const tb = createdAt(b);
  if (ta !== tb) return ta - tb;
  const na = String(a.metadata?.name ?? '');
  const nb = String(b.metadata?.name ?? '');
  return na < nb ? -1 : na > nb ? 1 : 0;
}

/**
 * The terminated pods to delete so that at most `threshold` remain, in deletion order (evicted,
 * then oldest). A threshold of 0 (or less) deletes nothing: the pass is off.
 */
export function terminatedPodsToDelete(pods: readonly KubeObject[], threshold: number): KubeObject[] {
  if (threshold <= 0) return [];
  const terminated = pods.filter(isPodTerminated);
  const excess = terminated.length - threshold;
  if (excess <= 0) return [];
  return terminated.sort(byEvictionAndCreation).slice(0, excess);
}

/** True when the node's `Ready` condition is `True`. */
export function isNodeReady(node: KubeObject): boolean {
  const conditions = ((node.status as Fields | undefined)?.conditions ?? []) as Fields[];
  return conditions.some((c) => c?.type === 'Ready' && c?.status === 'True');
}

/** True when the node carries a taint with `key` (any value and effect). */
export function nodeHasTaint(node: KubeObject, key: string): boolean {
  return (((node.spec as Fields | undefined)?.taints ?? []) as Fields[]).some((t) => t?.key === key);
}

/**
 * Terminating pods on nodes that are not Ready and tainted `node.kubernetes.io/out-of-service`, in
 * deletion order. `nodeOf` reads the node cache; pods whose node is not there are left alone (the
 * orphan pass handles them).
 */
export function terminatingPodsOnOutOfServiceNodes(pods: readonly KubeObject[], nodeOf: (name: string) => KubeObject | undefined): KubeObject[] {
  return pods
    .filter((p) => {
      if (!isPodTerminating(p) || !nodeNameOf(p)) return false;
      const node = nodeOf(nodeNameOf(p));
      return node !== undefined && !isNodeReady(node) && nodeHasTaint(node, TAINT_NODE_OUT_OF_SERVICE);
    })
    .sort(byEvictionAndCreation);
}

/** Terminating pods never bound to a node: nothing but the Pod GC will ever finish them. */
export const unscheduledTerminatingPods = (pods: readonly KubeObject[]): KubeObject[] => pods.filter((p) => isPodTerminating(p) && !nodeNameOf(p));

/** The node names pods are bound to that the node cache does not know (orphan candidates). */
export function unknownNodeNames(pods: readonly KubeObject[], known: (name: string) => boolean): Set<string> {
  const out = new Set<string>();
  for (const p of pods) {
    const n = nodeNameOf(p);
    if (n && !known(n)) out.add(n);
  }
  return out;
}

/** The pods bound to one of `deletedNodes`. */
export const podsOnNodes = (pods: readonly KubeObject[], deletedNodes: ReadonlySet<string>): KubeObject[] => pods.filter((p) => deletedNodes.has(nodeNameOf(p)));

/**
 * Node names waiting out their quarantine (Kubernetes' delaying `nodeQueue`): a name is added with
 * the time it was first seen missing (a later sighting does not postpone it), and is due once the
 * quarantine has passed; taking due names removes them, so a node still missing later starts a
 * fresh quarantine, as upstream re-adds it on the next pass.
 */
export class OrphanQuarantine {
  private readonly since = new Map<string, number>();

  constructor(private readonly quarantineMs: number) {}

  /** Starts the quarantine of each name not already in it. */
  observe(names: Iterable<string>, now: number): void {
    for (const n of names) if (!this.since.has(n)) this.since.set(n, now);
  }

  /** Removes and returns the names whose quarantine is over at `now`. */
  takeDue(now: number): string[] {
    const due: string[] = [];
    for (const [n, t] of this.since) {
      if (now - t >= this.quarantineMs) {
        due.push(n);
        this.since.delete(n);
      }
    }
    return due;
  }

  /** The names in quarantine (for tests and logs). */
  get size(): number {
    return this.since.size;
  }
}

/** A pod condition. */
export interface PodCondition {
  readonly type: string;
  readonly status: string;
  readonly reason?: string;
  readonly message?: string;
  readonly lastTransitionTime?: string;
  readonly lastProbeTime?: string | null;
}

/**
 * Kubernetes' `UpdatePodCondition`: `condition` replaces the pod's condition of its type (or is
 * added); `lastTransitionTime` moves to `now` only when the status changes.
 */
export function withPodCondition(conditions: readonly PodCondition[], condition: PodCondition, now: number): PodCondition[] {
  const existing = conditions.find((c) => c.type === condition.type);
  const lastTransitionTime = existing && existing.status === condition.status && existing.lastTransitionTime ? existing.lastTransitionTime : formatTime(now);
  const next: PodCondition = { ...condition, lastTransitionTime };
  return existing ? conditions.map((c) => (c.type === condition.type ? next : c)) : [...conditions, next];
}

/**
 * The status a pod gets before the Pod GC deletes it: phase `Failed` (plus `condition`, if any);
 * `undefined` when the pod is already terminal and keeps its status.
 */
export function failedStatus(pod: KubeObject, condition: PodCondition | undefined, now: number): Fields | undefined {
  if (isPodTerminated(pod)) return undefined;
  const status: Fields = { ...((pod.status ?? {}) as Fields), phase: 'Failed' };
  if (condition) status.conditions = withPodCondition((status.conditions ?? []) as PodCondition[], condition, now);
  return status;
}

/** The `DisruptionTarget` condition of a pod whose node no longer exists. */
export const ORPHANED_POD_CONDITION: PodCondition = { type: DISRUPTION_TARGET_CONDITION, status: 'True', reason: DELETION_BY_POD_GC_REASON, message: 'PodGC: node no longer exists' };

// ---------------------------------------------------------------------------------------------
// The collector
// ---------------------------------------------------------------------------------------------

const podPath = (p: KubeObject): string => `/api/v1/namespaces/${encodeURIComponent(String(p.metadata?.namespace))}/pods/${encodeURIComponent(String(p.metadata?.name))}`;

/** What a {@link PodGarbageCollector} works with. */
export interface PodGarbageCollectorOptions {
  readonly api: Pick<ApiClient, 'get' | 'update' | 'request'>;
  readonly pods: Pick<Informer, 'list'>;
  readonly nodes: Pick<Informer, 'get'>;
  readonly terminatedPodGCThreshold: number;
  readonly orphanQuarantineMs: number;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  /** Milliseconds since the epoch; `Date.now` by default. */
  readonly now?: () => number;
}

/** One pass's outcome, by reason: the pods deleted (`namespace/name`). */
export type PassResult = Record<keyof typeof POD_GC_REASONS, string[]>;

/**
 * The collector: {@link PodGarbageCollector.pass} runs the four passes once over the pod cache
 * (the plugin runs it every `gcPeriodSeconds` while it leads). Failures are logged and counted;
 * a pass never throws for one pod.
 */
export class PodGarbageCollector {
  private readonly quarantine: OrphanQuarantine;
  private readonly now: () => number;
  private readonly deleted?: ReturnType<Metrics['counter']>;
  private readonly errors?: ReturnType<Metrics['counter']>;

  constructor(private readonly options: PodGarbageCollectorOptions) {
    this.quarantine = new OrphanQuarantine(options.orphanQuarantineMs);
    this.now = options.now ?? Date.now;
    if (options.metrics) {
      this.deleted = options.metrics.counter({ name: 'pod_gc_collector_force_delete_pods_total', help: 'Number of pods that are being forcefully deleted since the Pod GC Controller started.', labelNames: ['namespace', 'reason'] });
      this.errors = options.metrics.counter({ name: 'pod_gc_collector_force_delete_pod_errors_total', help: 'Number of errors encountered when forcefully deleting the pods since the Pod GC Controller started.', labelNames: ['namespace', 'reason'] });
    }
  }

  /** Node names waiting out their quarantine. */
  get quarantined(): number {
    return this.quarantine.size;
  }

  /** Runs the four passes in Kubernetes' order: terminated, out-of-service, orphaned, unscheduled. */
  async pass(): Promise<PassResult> {
    const pods = this.options.pods.list();
    const result: PassResult = { terminated: [], outOfService: [], orphaned: [], unscheduled: [] };
    const done = new Set<string>();
    const run = async (reason: keyof typeof POD_GC_REASONS, victims: readonly KubeObject[], condition?: PodCondition): Promise<void> => {
      const todo = victims.filter((p) => !done.has(String(p.metadata?.uid)));
      for (const p of todo) done.add(String(p.metadata?.uid));
      await eachLimited(todo, DELETE_CONCURRENCY, async (p) => {
        const ns = String(p.metadata?.namespace);
        this.deleted?.inc({ namespace: ns, reason: POD_GC_REASONS[reason] });
        try {
          if (await this.markFailedAndDelete(p, condition)) result[reason].push(`${ns}/${p.metadata?.name}`);
        } catch (err) {
          this.errors?.inc({ namespace: ns, reason: POD_GC_REASONS[reason] });
          this.options.logger.warn({ pod: `${ns}/${p.metadata?.name}`, reason: POD_GC_REASONS[reason], err: (err as Error)?.message ?? String(err) }, 'pod GC could not delete a pod');
        }
      });
    };
    const terminated = terminatedPodsToDelete(pods, this.options.terminatedPodGCThreshold);
    if (terminated.length > 0) this.options.logger.info({ count: terminated.length, threshold: this.options.terminatedPodGCThreshold }, 'garbage collecting terminated pods');
    await run('terminated', terminated);
    await run('outOfService', terminatingPodsOnOutOfServiceNodes(pods, (n) => this.options.nodes.get(n)));
    const gone = await this.deletedNodes(pods);
    if (gone.size > 0) this.options.logger.info({ nodes: [...gone] }, 'nodes are gone: deleting their pods');
    await run('orphaned', podsOnNodes(pods, gone), ORPHANED_POD_CONDITION);
    await run('unscheduled', unscheduledTerminatingPods(pods));
    return result;
  }

  /** The names of nodes pods are bound to that are gone: out of quarantine, not cached, and 404 on a live GET. */
  private async deletedNodes(pods: readonly KubeObject[]): Promise<Set<string>> {
    const known = (n: string): boolean => this.options.nodes.get(n) !== undefined;
    const now = this.now();
    this.quarantine.observe(unknownNodeNames(pods, known), now);
    const gone = new Set<string>();
    for (const name of this.quarantine.takeDue(now)) {
      if (known(name)) continue;
      try {
        await this.options.api.get(`/api/v1/nodes/${encodeURIComponent(name)}`);
      } catch (err) {
        if (isNotFound(err)) gone.add(name);
        // Any other error: the name comes back into quarantine on the next pass if still needed.
        else this.options.logger.warn({ node: name, err: (err as Error)?.message ?? String(err) }, 'pod GC could not check whether a node exists');
      }
    }
    return gone;
  }

  /**
   * Kubernetes' `markFailedAndDeletePodWithCondition`: a pod not yet terminal goes to `Failed`
   * (with `condition`) through its status, then it is deleted with grace 0 and its uid as a
   * precondition. Resolves false when the pod was already gone (or replaced by a namesake).
   */
  private async markFailedAndDelete(cached: KubeObject, condition: PodCondition | undefined): Promise<boolean> {
    const uid = String(cached.metadata?.uid ?? '');
    let pod = cached;
    for (let attempt = 0; ; attempt++) {
      const status = failedStatus(pod, condition, this.now());
      if (!status) break;
      try {
        await this.options.api.update(`${podPath(pod)}/status`, { ...pod, status });
        break;
      } catch (err) {
        if (isNotFound(err)) return false;
        if (!isConflict(err) || attempt >= 2) throw err;
      }
      // The cache was stale: read the pod again (and stop if it is another pod by now).
      try {
        pod = await this.options.api.get(podPath(cached));
      } catch (err) {
        if (isNotFound(err)) return false;
        throw err;
      }
      if (String(pod.metadata?.uid) !== uid) return false;
    }
    this.options.logger.info({ pod: `${cached.metadata?.namespace}/${cached.metadata?.name}` }, 'pod GC is force deleting a pod');
    try {
      await this.options.api.request('DELETE', podPath(cached), { body: { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0, ...(uid ? { preconditions: { uid } } : {}) } });
      return true;
    } catch (err) {
      // Gone already, or a namesake with another uid (the precondition failed): nothing to do.
      if (isNotFound(err) || isConflict(err)) return false;
      throw err;
    }
  }
}

/** Runs `fn` over `items` with at most `limit` at once. */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** The Pod GC controller plugin. */
export const podGcControllerPlugin = definePlugin({
  id: POD_GC_CONTROLLER_ID,
  kind: 'controller',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'Pod garbage collector: deletes terminated pods beyond a threshold (oldest first), pods of deleted nodes (after a quarantine), terminating pods never scheduled, and terminating pods on out-of-service nodes.',
  configSchema: POD_GC_CONFIG_SCHEMA,
  async start(handle, config: PodGcConfig, signal) {
    const pods = handle.api.informer('/api/v1/pods');
    const nodes = handle.api.informer('/api/v1/nodes');
    pods.run();
    nodes.run();
    await Promise.all([pods.waitForSync(signal), nodes.waitForSync(signal)]);
    handle.ready();
    await runWhileLeading(handle.api, config.leaderElection, handle.logger, signal, async (leading) => {
      const gc = new PodGarbageCollector({
        api: handle.api,
        pods,
        nodes,
        terminatedPodGCThreshold: config.terminatedPodGCThreshold,
        orphanQuarantineMs: config.orphanQuarantineSeconds * 1000,
        logger: handle.logger,
        metrics: handle.metrics,
      });
      do {
        try {
          await gc.pass();
        } catch (err) {
          handle.logger.error({ err: (err as Error)?.message ?? String(err) }, 'pod GC pass failed');
        }
      } while (await delay(config.gcPeriodSeconds * 1000, leading));
    });
  },
});

export { formatTime } from './util.js';
