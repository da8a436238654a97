/**
 * The scheduler loop (kube-scheduler's `scheduleOne`): pop the next pod, snapshot the cache, run
 * the profile's PreFilter and Filter over the nodes (stopping once `percentageOfNodesToScore` of
 * them fit, starting where the last cycle stopped), PostFilter (preemption) when none fits,
 * PreScore and Score over the feasible ones, pick the best (ties broken at random), assume the
 * pod there, Reserve and Permit; then bind in the background while the next pod is scheduled.
 * Failures requeue the pod, set `PodScheduled=False` with Kubernetes' message ("0/5 nodes are
 * available: 3 Insufficient cpu, 2 node(s) had untolerated taint {...}.") and record a
 * `FailedScheduling` event.
 *
 * @module
 */
import {
  CycleState,
  type EventRecorder,
  PodInfo,
  Status,
  type ApiClient,
  type Counter,
  type Gauge,
  type Histogram,
  type Informer,
  type KubeObject,
  type Logger,
  type NodeInfo,
  type PodNominator,
} from '@kubernel/sdk';
import { CacheSnapshot, SchedulerCache } from './cache.js';
import { SchedulingQueue, type QueueEntry, type QueueEvent } from './queue.js';
import type { ProfileFramework } from './runtime.js';

type Obj = Record<string, unknown>;

/** Kubernetes' minFeasibleNodesToFind. */
export const MIN_FEASIBLE_NODES_TO_FIND = 100;
/** Kubernetes' minFeasibleNodesPercentageToFind. */
export const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5;

/**
 * How many feasible nodes to look for before scoring (Kubernetes' numFeasibleNodesToFind): every
 * node below 100; else `percentage` of them (adaptive when 0: 50% minus 1% per 125 nodes, at
 * least 5%), at least 100.
 */
export function numFeasibleNodesToFind(percentage: number, numAllNodes: number): number {
  if (numAllNodes < MIN_FEASIBLE_NODES_TO_FIND || percentage >= 100) return numAllNodes;
  let adaptive = percentage;
  if (adaptive <= 0) {
    adaptive = 50 - Math.floor(numAllNodes / 125);
    if (adaptive < MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND) adaptive = MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND;
  }
  const n = Math.floor((numAllNodes * adaptive) / 100);
  return n < MIN_FEASIBLE_NODES_TO_FIND ? MIN_FEASIBLE_NODES_TO_FIND : n;
}

/**
 * The FitError message: reasons counted over the nodes, sorted, e.g. `0/5 nodes are available:
 * 3 Insufficient cpu, 2 node(s) had untolerated taint {a: b}.`, then the PostFilter's message.
 */
export function fitErrorMessage(numAllNodes: number, statuses: ReadonlyMap<string, Status>, postFilterMessage?: string): string {
  const counts = new Map<string, number>();
  for (const s of statuses.values()) for (const r of s.reasons) counts.set(r, (counts.get(r) ?? 0) + 1);
  const reasons = [...counts].map(([r, n]) => `${n} ${r}`).sort();
  let msg = `0/${numAllNodes} nodes are available: ${reasons.join(', ')}.`;
  if (postFilterMessage) msg += ` ${postFilterMessage}`;
  return msg;
}

/** The scheduler's metrics. */
export interface SchedulerMetrics {
  readonly attempts: Counter<'result' | 'profile'>;
  readonly attemptDuration: Histogram<'result' | 'profile'>;
  readonly pending: Gauge<'queue'>;
  readonly bindings: Histogram<'result'>;
}

/** What the {@link Scheduler} runs with. */
export interface SchedulerOptions {
  readonly api: ApiClient;
  readonly logger: Logger;
  readonly frameworks: ReadonlyMap<string, ProfileFramework>;
  readonly pods: Informer;
  readonly nodes: Informer;
  readonly namespaces: Informer;
  readonly metrics?: SchedulerMetrics;
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** Events about pods (Scheduled, FailedScheduling); none when absent. */
  readonly recorder?: EventRecorder;
}

const NONE: readonly PodInfo[] = Object.freeze([]);
const uidOf = (p: KubeObject): string => String(p.metadata?.uid ?? '');
const specOf = (p: KubeObject): Obj => (p.spec ?? {}) as Obj;
const nodeNameOf = (p: KubeObject): string => String(specOf(p).nodeName ?? '');
const isTerminal = (p: KubeObject): boolean => ['Succeeded', 'Failed'].includes(String((p.status as Obj | undefined)?.phase));

/** The scheduler. */
export class Scheduler implements PodNominator {
  readonly cache = new SchedulerCache();
  readonly queue: SchedulingQueue;
  private readonly snapshot = new CacheSnapshot();
  private readonly log: Logger;
  private nextStartNodeIndex = 0;
  /** Nominated pods by node (pods waiting for their preemption victims to go). */
  private readonly nominated = new Map<string, Map<string, PodInfo>>();
  private readonly nominatedNodeOf = new Map<string, string>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly unsubscribes: Array<() => void> = [];

  constructor(private readonly options: SchedulerOptions) {
    this.log = options.logger;
    const first = [...options.frameworks.values()][0];
    if (!first) throw new Error('the scheduler needs at least one profile');
    this.queue = new SchedulingQueue({
      less: first.less,
      preEnqueue: (pod) => this.frameworkFor(pod)?.runPreEnqueue(pod),
      eventsOf: (plugin) => {
        for (const fw of options.frameworks.values()) {
          const events = fw.eventsOf(plugin);
          if (events.length) return events;
        }
        return [];
      },
      ...(options.initialBackoffMs !== undefined ? { initialBackoffMs: options.initialBackoffMs } : {}),
      ...(options.maxBackoffMs !== undefined ? { maxBackoffMs: options.maxBackoffMs } : {}),
    });
  }

  private frameworkFor(pod: KubeObject): ProfileFramework | undefined {
    return this.options.frameworks.get(String(specOf(pod).schedulerName ?? 'default-scheduler'));
  }

  /** The snapshot of the current cycle (what plugins' handles read). */
  currentSnapshot(): CacheSnapshot {
    return this.snapshot;
  }

  // ---- PodNominator ----------------------------------------------------------------------

  nominatedPodsForNode(nodeName: string): readonly PodInfo[] {
    const m = this.nominated.get(nodeName);
    return m ? [...m.values()] : NONE;
  }

  private nominate(podInfo: PodInfo, node: string | undefined): void {
    const uid = podInfo.uid;
    const before = this.nominatedNodeOf.get(uid);
    if (before) {
      this.nominated.get(before)?.delete(uid);
      if (this.nominated.get(before)?.size === 0) this.nominated.delete(before);
      this.nominatedNodeOf.delete(uid);
    }
    if (!node) return;
    let m = this.nominated.get(node);
    if (!m) this.nominated.set(node, (m = new Map()));
    m.set(uid, podInfo);
    this.nominatedNodeOf.set(uid, node);
  }

  // ---- informers -------------------------------------------------------------------------

  private responsible(pod: KubeObject): boolean {
    return this.frameworkFor(pod) !== undefined;
  }

  private onPod(type: 'add' | 'update' | 'delete', pod: KubeObject, old?: KubeObject): void {
    const assigned = nodeNameOf(pod) !== '';
    const wasAssigned = old ? nodeNameOf(old) !== '' : false;
    if (type === 'delete') {
      if (assigned) {
        this.cache.removePod(pod);
        this.queue.moveOnEvent({ resource: 'Pod', action: 'Delete' }, pod, undefined);
      } else {
        this.queue.delete(pod);
        const fw = this.frameworkFor(pod);
        fw?.rejectWaitingPod(uidOf(pod), '', 'pod deleted');
      }
      this.nominate(new PodInfo(pod), undefined);
      return;
    }
    if (assigned) {
      if (!wasAssigned && old) this.queue.delete(pod);
      if (isTerminal(pod)) {
        // A finished pod frees its node's resources.
        this.cache.removePod(pod);
        this.queue.moveOnEvent({ resource: 'Pod', action: 'Delete' }, old, pod);
      } else {
        this.cache.addPod(pod);
        const action = !old || !wasAssigned ? 'Add' : labelsChanged(old, pod) ? 'UpdatePodLabel' : 'Update';
        this.queue.moveOnEvent({ resource: 'Pod', action }, old, pod);
      }
      this.nominate(new PodInfo(pod), undefined);
      return;
    }
    if (!this.responsible(pod) || isTerminal(pod)) return;
    if (pod.metadata?.deletionTimestamp) {
      this.queue.delete(pod);
      return;
    }
    const nominatedNode = String((pod.status as Obj | undefined)?.nominatedNodeName ?? '');
    this.nominate(new PodInfo(pod), nominatedNode || undefined);
    if (this.cache.isAssumed(pod)) return;
    if (type === 'add') this.queue.add(pod);
    else this.queue.update(old ?? pod, pod);
  }

  private onNode(type: 'add' | 'update' | 'delete', node: KubeObject, old?: KubeObject): void {
    if (type === 'delete') {
      this.cache.removeNode(node);
      this.queue.moveOnEvent({ resource: 'Node', action: 'Delete' }, node, undefined);
      return;
    }
    this.cache.addNode(node);
    if (type === 'add' || !old) this.queue.moveOnEvent({ resource: 'Node', action: 'Add' }, undefined, node);
    else for (const action of nodeUpdateActions(old, node)) this.queue.moveOnEvent({ resource: 'Node', action }, old, node);
  }

  // ---- the loop --------------------------------------------------------------------------

  /** Schedules pods until `signal` aborts, then waits for bindings in flight. */
  async run(signal: AbortSignal): Promise<void> {
    const { pods, nodes } = this.options;
    this.unsubscribes.push(
      nodes.subscribe({ add: (n) => this.onNode('add', n), update: (n, o) => this.onNode('update', n, o), delete: (n) => this.onNode('delete', n) }),
      pods.subscribe({ add: (p) => this.onPod('add', p), update: (p, o) => this.onPod('update', p, o), delete: (p) => this.onPod('delete', p) }),
    );
    this.queue.run();
    const gauges = this.options.metrics ? setInterval(() => this.reportPending(), 1_000) : undefined;
    gauges?.unref();
    try {
      for (;;) {
        const entry = await this.queue.pop(signal);
        if (!entry) break;
        try {
          await this.scheduleOne(entry, signal);
        } catch (err) {
          this.log.error({ pod: `${entry.podInfo.namespace}/${entry.podInfo.name}`, err: String(err) }, 'scheduling cycle failed');
          this.queue.addUnschedulable(entry, this.queue.schedulingCycle, new Set(), true);
        }
      }
    } finally {
      clearInterval(gauges);
      for (const u of this.unsubscribes.splice(0)) u();
      this.queue.close();
      for (const fw of this.options.frameworks.values()) fw.rejectAllWaiting('the scheduler is stopping');
      await Promise.allSettled([...this.inFlight]);
    }
  }

  private reportPending(): void {
    const c = this.queue.counts();
    const g = this.options.metrics!.pending;
    g.set({ queue: 'active' }, c.active);
    g.set({ queue: 'backoff' }, c.backoff);
    g.set({ queue: 'unschedulable' }, c.unschedulable);
    g.set({ queue: 'gated' }, c.gated);
  }

  /** One scheduling cycle; the binding cycle continues in the background. */
  async scheduleOne(entry: QueueEntry, signal?: AbortSignal): Promise<void> {
    const pod = entry.podInfo.pod;
    const fw = this.frameworkFor(pod);
    if (!fw) return;
    const current = this.options.pods.get(`${pod.metadata?.namespace}/${pod.metadata?.name}`);
    if (!current || uidOf(current) !== uidOf(pod) || nodeNameOf(current) !== '' || current.metadata?.deletionTimestamp) return;
    if (this.cache.isAssumed(pod)) return;
    const started = process.hrtime.bigint();
    const cycle = this.queue.schedulingCycle;
    this.cache.updateSnapshot(this.snapshot);
    const state = new CycleState();
    const result = await this.schedulePod(fw, state, entry.podInfo);
    const seconds = (): number => Number(process.hrtime.bigint() - started) / 1e9;
    if ('failure' in result) {
      const { status, statuses, nominatedNodeName } = result.failure;
      const rejectors = new Set<string>();
      for (const s of statuses.values()) if (s.plugin) rejectors.add(s.plugin);
      if (status.plugin) rejectors.add(status.plugin);
      const isError = status.code === 'Error';
      this.observe(fw, isError ? 'error' : 'unschedulable', seconds());
      this.queue.addUnschedulable(entry, cycle, rejectors, isError);
      if (nominatedNodeName !== undefined) this.nominate(entry.podInfo, nominatedNodeName || undefined);
      void this.reportFailure(pod, status, isError ? 'SchedulerError' : 'Unschedulable', nominatedNodeName);
      return;
    }
    const node = result.node;
    // Assume: the next cycles count the pod on its node before the binding is confirmed.
    this.cache.assume(entry.podInfo, node);
    const reserve = await fw.runReserve(state, pod, node);
    if (reserve) {
      await this.undo(fw, state, entry, node, cycle, reserve);
      this.observe(fw, 'error', seconds());
      return;
    }
    const permit = fw.runPermit(state, pod, node);
    if (permit.status) {
      await this.undo(fw, state, entry, node, cycle, permit.status);
      this.observe(fw, permit.status.code === 'Error' ? 'error' : 'unschedulable', seconds());
      return;
    }
    this.nominate(entry.podInfo, undefined);
    this.observe(fw, 'scheduled', seconds());
    const binding = this.bindingCycle(fw, state, entry, node, cycle, permit.wait, signal);
    this.inFlight.add(binding);
    void binding.finally(() => this.inFlight.delete(binding));
  }

  private observe(fw: ProfileFramework, result: 'scheduled' | 'unschedulable' | 'error', seconds: number): void {
    const m = this.options.metrics;
    if (!m) return;
    m.attempts.inc({ result, profile: fw.schedulerName });
    m.attemptDuration.observe({ result, profile: fw.schedulerName }, seconds);
  }

  private async bindingCycle(fw: ProfileFramework, state: CycleState, entry: QueueEntry, node: string, cycle: number, wait: { plugins: Set<string>; timeoutMs: number } | undefined, signal?: AbortSignal): Promise<void> {
    const pod = entry.podInfo.pod;
    const started = process.hrtime.bigint();
    let status: Status | undefined;
    if (wait) status = await fw.waitOnPermit(pod, wait);
    if (!status && signal?.aborted) status = Status.error(new Error('the scheduler is stopping'));
    status ??= await fw.runPreBind(state, pod, node);
    status ??= await fw.runBind(state, pod, node);
    this.options.metrics?.bindings.observe({ result: status ? 'error' : 'success' }, Number(process.hrtime.bigint() - started) / 1e9);
    if (status) {
      await this.undo(fw, state, entry, node, cycle, status);
      return;
    }
    fw.runPostBind(state, pod, node);
    this.options.recorder?.event({ ...pod, apiVersion: 'v1', kind: 'Pod' }, 'Normal', 'Scheduled', `Successfully assigned ${entry.podInfo.namespace}/${entry.podInfo.name} to ${node}`);
  }

  /** After Reserve: Unreserve, forget the assumed pod, requeue, and report. */
  private async undo(fw: ProfileFramework, state: CycleState, entry: QueueEntry, node: string, cycle: number, status: Status): Promise<void> {
    const pod = entry.podInfo.pod;
    await fw.runUnreserve(state, pod, node);
    this.cache.forget(pod);
    // The freed room may let other pods fit.
    this.queue.moveOnEvent({ resource: 'AssignedPod', action: 'Delete' }, pod, undefined);
    const isError = status.code === 'Error';
    const current = this.options.pods.get(`${pod.metadata?.namespace}/${pod.metadata?.name}`);
    if (current && uidOf(current) === uidOf(pod) && nodeNameOf(current) === '') {
      this.queue.addUnschedulable(entry, cycle, new Set(status.plugin ? [status.plugin] : []), isError);
      void this.reportFailure(pod, status, isError ? 'SchedulerError' : 'Unschedulable');
    }
    this.log.info({ pod: `${entry.podInfo.namespace}/${entry.podInfo.name}`, node, plugin: status.plugin, reason: status.message() }, 'scheduling the pod failed after it was assumed; requeued');
  }

  /** PreFilter, Filter, PostFilter, PreScore, Score, selection: a node, or why none. */
  private async schedulePod(fw: ProfileFramework, state: CycleState, podInfo: PodInfo): Promise<{ node: string } | { failure: { status: Status; statuses: Map<string, Status>; nominatedNodeName?: string } }> {
    const pod = podInfo.pod;
    const all = this.snapshot.list();
    if (all.length === 0) return { failure: { status: new Status('Unschedulable', ['no nodes available to schedule pods']), statuses: new Map() } };
    const statuses = new Map<string, Status>();
    const pre = fw.runPreFilter(state, pod, podInfo);
    if (pre.status && !pre.status.isSuccess()) {
      if (pre.status.code === 'Error') return { failure: { status: pre.status, statuses } };
      for (const n of all) statuses.set(n.name, pre.status);
      return this.postFilter(fw, state, pod, all.length, statuses, pre.status);
    }
    // A pod nominated by an earlier preemption tries its node first.
    const nominatedNode = String((pod.status as Obj | undefined)?.nominatedNodeName ?? '');
    if (nominatedNode) {
      const n = this.snapshot.get(nominatedNode);
      if (n && (!pre.nodeNames || pre.nodeNames.has(nominatedNode)) && !fw.runFilterWithNominatedPods(state, pod, podInfo, n)) return { node: nominatedNode };
    }
    const candidates: readonly NodeInfo[] = pre.nodeNames ? all.filter((n) => pre.nodeNames!.has(n.name)) : all;
    if (pre.nodeNames) for (const n of all) if (!pre.nodeNames.has(n.name)) statuses.set(n.name, new Status('UnschedulableAndUnresolvable', ['node(s) didn\'t satisfy plugin(s) PreFilter'], ''));
    const want = numFeasibleNodesToFind(fw.percentageOfNodesToScore, candidates.length);
    const feasible: NodeInfo[] = [];
    const count = candidates.length;
    const start = this.nextStartNodeIndex % Math.max(1, count);
    let examined = 0;
    for (let k = 0; k < count && feasible.length < want; k++) {
      const n = candidates[(start + k) % count]!;
      examined++;
      const s = fw.runFilterWithNominatedPods(state, pod, podInfo, n);
      if (!s) feasible.push(n);
      else if (s.code === 'Error') return { failure: { status: s, statuses } };
      else statuses.set(n.name, s);
    }
    this.nextStartNodeIndex = (start + examined) % Math.max(1, count);
    if (feasible.length === 0) return this.postFilter(fw, state, pod, all.length, statuses);
    if (feasible.length === 1) return { node: feasible[0]!.name };
    const ps = fw.runPreScore(state, pod, podInfo, feasible);
    if (ps) return { failure: { status: ps, statuses } };
    const { totals, status } = fw.runScore(state, pod, podInfo, feasible);
    if (status) return { failure: { status, statuses } };
    // The highest total; ties broken uniformly at random (reservoir sampling, as Kubernetes).
    let best = 0;
    let ties = 1;
    for (let i = 1; i < totals.length; i++) {
      if (totals[i]! > totals[best]!) {
        best = i;
        ties = 1;
      } else if (totals[i] === totals[best]) {
        ties++;
        if (Math.random() * ties < 1) best = i;
      }
    }
    return { node: feasible[best]!.name };
  }

  private async postFilter(fw: ProfileFramework, state: CycleState, pod: KubeObject, numAllNodes: number, statuses: Map<string, Status>, preFilterStatus?: Status): Promise<{ failure: { status: Status; statuses: Map<string, Status>; nominatedNodeName?: string } }> {
    let postMessage: string | undefined;
    let nominatedNodeName: string | undefined;
    if (fw.hasPostFilter) {
      const r = await fw.runPostFilter(state, pod, statuses);
      if (r.nominatedNodeName !== undefined) nominatedNodeName = r.nominatedNodeName;
      if (r.nominatedNodeName) {
        // Victims are on their way out: the pod waits for them.
      } else if (r.status && r.status.code !== 'Error') postMessage = r.status.message();
      else if (r.status?.code === 'Error') this.log.warn({ pod: `${pod.metadata?.namespace}/${pod.metadata?.name}`, err: r.status.message() }, 'preemption failed');
    }
    const message = statuses.size > 0 ? fitErrorMessage(numAllNodes, statuses, postMessage) : (preFilterStatus?.message() ?? 'no nodes available to schedule pods');
    const status = new Status('Unschedulable', [message], preFilterStatus?.plugin ?? '');
    return { failure: { status, statuses, ...(nominatedNodeName !== undefined ? { nominatedNodeName } : {}) } };
  }

  /** `PodScheduled=False` (when it changed) with the nominated node, and a FailedScheduling event. */
  private async reportFailure(pod: KubeObject, status: Status, reason: 'Unschedulable' | 'SchedulerError', nominatedNodeName?: string): Promise<void> {
    const message = status.message();
    this.options.recorder?.event({ ...pod, apiVersion: 'v1', kind: 'Pod' }, 'Warning', 'FailedScheduling', message);
    const current = this.options.pods.get(`${pod.metadata?.namespace}/${pod.metadata?.name}`) ?? pod;
    const conditions = (((current.status as Obj | undefined)?.conditions ?? []) as Obj[]);
    const before = conditions.find((c) => c.type === 'PodScheduled');
    const nominatedBefore = String((current.status as Obj | undefined)?.nominatedNodeName ?? '');
    const conditionSame = before?.status === 'False' && before.reason === reason && before.message === message;
    const nominationSame = nominatedNodeName === undefined || nominatedNodeName === nominatedBefore;
    if (conditionSame && nominationSame) return;
    const condition = { type: 'PodScheduled', status: 'False', reason, message, lastProbeTime: null, lastTransitionTime: before?.status === 'False' && typeof before.lastTransitionTime === 'string' ? before.lastTransitionTime : new Date().toISOString().replace(/\.\d+Z$/, 'Z') };
    const patch: Obj = { status: { conditions: [condition], ...(nominatedNodeName !== undefined ? { nominatedNodeName: nominatedNodeName || null } : {}) } };
    try {
      await this.options.api.patch(`/api/v1/namespaces/${encodeURIComponent(String(pod.metadata?.namespace))}/pods/${encodeURIComponent(String(pod.metadata?.name))}/status`, patch, 'application/strategic-merge-patch+json');
    } catch (err) {
      this.log.debug({ pod: `${pod.metadata?.namespace}/${pod.metadata?.name}`, err: String(err) }, 'could not update the PodScheduled condition');
    }
  }
}

function labelsChanged(a: KubeObject, b: KubeObject): boolean {
  return JSON.stringify(a.metadata?.labels ?? {}) !== JSON.stringify(b.metadata?.labels ?? {});
}

/** The refined update actions of a node change (what the queue's event registrations match). */
export function nodeUpdateActions(old: KubeObject, node: KubeObject): QueueEvent['action'][] {
  const out: QueueEvent['action'][] = [];
  const j = (v: unknown): string => JSON.stringify(v ?? null);
  const s = (n: KubeObject): Obj => (n.status ?? {}) as Obj;
  if (j(old.metadata?.labels) !== j(node.metadata?.labels)) out.push('UpdateNodeLabel');
  if (j(specOf(old).taints) !== j(specOf(node).taints) || specOf(old).unschedulable !== specOf(node).unschedulable) out.push('UpdateNodeTaint');
  if (j(s(old).allocatable) !== j(s(node).allocatable)) out.push('UpdateNodeAllocatable');
  const conds = (n: KubeObject): string => j(((s(n).conditions ?? []) as Obj[]).map((c) => [c.type, c.status]));
  if (conds(old) !== conds(node)) out.push('UpdateNodeCondition');
  if (j(old.metadata?.annotations) !== j(node.metadata?.annotations)) out.push('UpdateNodeAnnotation');
  return out;
}

