/**
 * DefaultPreemption (Kubernetes v1.30's `defaultpreemption` plugin with the `preemption`
 * evaluator): the PostFilter that runs when no node fits a pod. It looks for nodes where removing
 * pods of lower priority lets the pod fit (a dry run on copies of the node and of the cycle
 * state), keeps on each such node the fewest victims it can (reprieving the most important pods
 * first, PodDisruptionBudget-protected ones before the others), picks the node whose eviction
 * hurts least, marks the victims with a `DisruptionTarget` condition, deletes them, and nominates
 * the node for the pod.
 *
 * The pure steps (eligibility, candidate counting, victim selection, PDB accounting, candidate
 * choice, the "0/N nodes are available" message) are exported for tests and for other preemption
 * plugins.
 *
 * @module
 */
import {
  ApiStatusError,
  Status,
  defineSchedulerPlugin,
  isNotFound,
  labelSelectorMatches,
  podPriority,
  PodInfo,
  type ApiClient,
  type CycleState,
  type FrameworkHandle,
  type FrameworkPlugin,
  type KubeObject,
  type LabelSelector,
  type NodeInfo,
  type NodeSnapshot,
  type PostFilterResult,
  type SchedulerPluginFactory,
} from '@kubernel/sdk';

type Obj = Record<string, unknown>;

/** The plugin's name in scheduler profiles. */
export const DEFAULT_PREEMPTION_NAME = 'DefaultPreemption';

/** The API path of the PodDisruptionBudgets the plugin watches (all namespaces). */
export const PDB_PATH = '/apis/policy/v1/poddisruptionbudgets';

/** How long a PostFilter waits for the PDB informer's first list before it fails (and is retried). */
export const PDB_SYNC_TIMEOUT_MS = 10_000;

/** The reason of a node without any pod of lower priority than the preemptor. */
export const NO_VICTIMS_MESSAGE = 'No preemption victims found for incoming pod';

/** The reason given for nodes whose Filter rejection preemption cannot resolve. */
export const NOT_HELPFUL_MESSAGE = 'Preemption is not helpful for scheduling';

/** The reason of the `DisruptionTarget` condition set on the victims (Kubernetes' `PodReasonPreemptionByScheduler`). */
export const PREEMPTION_BY_SCHEDULER = 'PreemptionByScheduler';

/** `DefaultPreemptionArgs`: how many nodes the dry run must find candidates on before it stops. */
export interface DefaultPreemptionArgs {
  /** At least this percentage of the potential nodes (0-100) are turned into candidates; default 10. */
  readonly minCandidateNodesPercentage: number;
  /** At least this many nodes (>= 0) are turned into candidates; default 100. */
  readonly minCandidateNodesAbsolute: number;
}

/** The args' defaults (Kubernetes' `SetDefaults_DefaultPreemptionArgs`). */
export const DEFAULT_PREEMPTION_ARGS: DefaultPreemptionArgs = Object.freeze({ minCandidateNodesPercentage: 10, minCandidateNodesAbsolute: 100 });

/** JSON Schema of the plugin's args (`pluginConfig[].args` of `DefaultPreemption`), with the defaults. */
export const DEFAULT_PREEMPTION_ARGS_SCHEMA: Readonly<Record<string, unknown>> = Object.freeze({
  type: 'object',
  additionalProperties: false,
  properties: {
    apiVersion: { type: 'string' },
    kind: { type: 'string' },
    minCandidateNodesPercentage: {
      type: 'integer',
      minimum: 0,
      maximum: 100,
      default: DEFAULT_PREEMPTION_ARGS.minCandidateNodesPercentage,
      description: 'The minimum number of candidates to shortlist, as a percentage of the number of nodes.',
    },
    minCandidateNodesAbsolute: {
      type: 'integer',
      minimum: 0,
      default: DEFAULT_PREEMPTION_ARGS.minCandidateNodesAbsolute,
      description: 'The minimum absolute number of candidates to shortlist.',
    },
  },
});

/**
 * The args with their defaults applied, validated as Kubernetes does
 * (`ValidateDefaultPreemptionArgs`).
 *
 * @throws {Error} when a value is out of range, not an integer, or both are zero.
 */
export function parseDefaultPreemptionArgs(args: unknown): DefaultPreemptionArgs {
  const a = (args ?? {}) as Partial<Record<keyof DefaultPreemptionArgs, unknown>>;
  if (typeof a !== 'object' || Array.isArray(a)) throw new Error('DefaultPreemption args must be an object');
  const pct = a.minCandidateNodesPercentage ?? DEFAULT_PREEMPTION_ARGS.minCandidateNodesPercentage;
  const abs = a.minCandidateNodesAbsolute ?? DEFAULT_PREEMPTION_ARGS.minCandidateNodesAbsolute;
  if (typeof pct !== 'number' || !Number.isInteger(pct) || pct < 0 || pct > 100) throw new Error(`minCandidateNodesPercentage: Invalid value: ${JSON.stringify(pct)}: not in valid range [0, 100]`);
  if (typeof abs !== 'number' || !Number.isInteger(abs) || abs < 0) throw new Error(`minCandidateNodesAbsolute: Invalid value: ${JSON.stringify(abs)}: not in valid range [0, inf)`);
  if (pct === 0 && abs === 0) throw new Error('minCandidateNodesPercentage and minCandidateNodesAbsolute: Invalid value: both cannot be zero');
  return { minCandidateNodesPercentage: pct, minCandidateNodesAbsolute: abs };
}

/**
 * How many candidates the dry run must find among `numNodes` potential nodes: the percentage of
 * them (rounded down), at least the absolute minimum, at most `numNodes`.
 */
export function calculateNumCandidates(numNodes: number, args: DefaultPreemptionArgs): number {
  let n = Math.floor((numNodes * args.minCandidateNodesPercentage) / 100);
  if (n < args.minCandidateNodesAbsolute) n = args.minCandidateNodesAbsolute;
  if (n > numNodes) n = numNodes;
  return n;
}

/**
 * A random offset into the `numNodes` potential nodes (where the dry run starts, so that
 * preemption spreads over the cluster) and the number of candidates to find.
 */
export function getOffsetAndNumCandidates(numNodes: number, args: DefaultPreemptionArgs, random: () => number = Math.random): { offset: number; numCandidates: number } {
  const offset = numNodes > 0 ? Math.min(numNodes - 1, Math.max(0, Math.floor(random() * numNodes))) : 0;
  return { offset, numCandidates: calculateNumCandidates(numNodes, args) };
}

/** The pods to evict on one node, most important first, and how many of them violate a PDB. */
export interface Victims {
  readonly pods: readonly KubeObject[];
  readonly numPDBViolations: number;
}

/** A node where the preemptor fits once `victims` are gone. */
export interface Candidate {
  /** The node's name. */
  readonly name: string;
  readonly victims: Victims;
}

/** A pod's start time (`status.startTime`) in ms since the epoch, or `now` when it has none (assumed or not yet started). */
export function podStartTime(pod: KubeObject, now: number): number {
  const t = (pod.status as Obj | undefined)?.startTime;
  const ms = typeof t === 'string' ? Date.parse(t) : NaN;
  return Number.isFinite(ms) ? ms : now;
}

/**
 * Whether `a` is more important than `b` (Kubernetes' `MoreImportantPod`): a higher priority, or
 * the same priority and an earlier start time.
 */
export function moreImportantPod(a: KubeObject, b: KubeObject, now: number = Date.now()): boolean {
  const pa = podPriority(a);
  const pb = podPriority(b);
  if (pa !== pb) return pa > pb;
  return podStartTime(a, now) < podStartTime(b, now);
}

/** The earliest start time among the highest-priority pods of `pods`, or undefined when there are none. */
export function earliestPodStartTime(pods: readonly KubeObject[], now: number = Date.now()): number | undefined {
  if (pods.length === 0) return undefined;
  let earliest = podStartTime(pods[0]!, now);
  let maxPriority = podPriority(pods[0]!);
  for (const p of pods) {
    const prio = podPriority(p);
    if (prio === maxPriority) {
      earliest = Math.min(earliest, podStartTime(p, now));
    } else if (prio > maxPriority) {
      maxPriority = prio;
      earliest = podStartTime(p, now);
    }
  }
  return earliest;
}

/** Int32 offset making every priority >= 0 before summing (as Kubernetes adds MaxInt32+1). */
const PRIORITY_OFFSET = 2 ** 31;

/**
 * The best candidate (Kubernetes' `pickOneNodeForPreemption`), comparing by, in order:
 * 1. the fewest PDB violations;
 * 2. the lowest priority of the most important victim;
 * 3. the smallest sum of the victims' priorities;
 * 4. the fewest victims;
 * 5. the latest start time of the most important victims;
 * then the first of those still tied. Victims must be ordered most important first.
 */
export function pickOneNodeForPreemption(candidates: readonly Candidate[], now: number = Date.now()): Candidate | undefined {
  if (candidates.length <= 1) return candidates[0];
  const scoreFuncs: Array<(c: Candidate) => number> = [
    (c) => -c.victims.numPDBViolations,
    (c) => (c.victims.pods.length > 0 ? -podPriority(c.victims.pods[0]!) : Number.POSITIVE_INFINITY),
    (c) => -c.victims.pods.reduce((sum, p) => sum + podPriority(p) + PRIORITY_OFFSET, 0),
    (c) => -c.victims.pods.length,
    (c) => earliestPodStartTime(c.victims.pods, now) ?? Number.NEGATIVE_INFINITY,
  ];
  let remaining: readonly Candidate[] = candidates;
  for (const f of scoreFuncs) {
    let best = Number.NEGATIVE_INFINITY;
    let selected: Candidate[] = [];
    for (const c of remaining) {
      const score = f(c);
      if (score > best) {
        best = score;
        selected = [];
      }
      if (score === best) selected.push(c);
    }
    if (selected.length === 1) return selected[0];
    if (selected.length > 0) remaining = selected;
  }
  return remaining[0];
}

/** A PDB's selector when it selects anything: a missing or empty selector selects nothing, as in Kubernetes. */
function pdbSelector(pdb: KubeObject): LabelSelector | undefined {
  const sel = (pdb.spec as Obj | undefined)?.selector as LabelSelector | null | undefined;
  if (!sel || typeof sel !== 'object') return undefined;
  if (Object.keys(sel.matchLabels ?? {}).length === 0 && (sel.matchExpressions ?? []).length === 0) return undefined;
  return sel;
}

/**
 * Splits `podInfos` into those whose eviction would violate a PodDisruptionBudget and the others
 * (Kubernetes' `filterPodsWithPDBViolation`), keeping their order. A pod counts against every PDB
 * of its namespace whose selector matches its labels (unless the PDB already lists it in
 * `status.disruptedPods`); each such PDB's `status.disruptionsAllowed` is counted down pod by
 * pod, and a pod violates when any of its PDBs goes below zero.
 */
export function filterPodsWithPDBViolation<T extends { readonly pod: KubeObject }>(podInfos: readonly T[], pdbs: readonly KubeObject[]): { violating: T[]; nonViolating: T[] } {
  const allowed = pdbs.map((pdb) => Number((pdb.status as Obj | undefined)?.disruptionsAllowed ?? 0));
  const selectors = pdbs.map(pdbSelector);
  const violating: T[] = [];
  const nonViolating: T[] = [];
  for (const pi of podInfos) {
    const labels = pi.pod.metadata?.labels ?? {};
    const ns = String(pi.pod.metadata?.namespace ?? '');
    const name = String(pi.pod.metadata?.name ?? '');
    let violated = false;
    if (Object.keys(labels).length > 0) {
      pdbs.forEach((pdb, i) => {
        if (String(pdb.metadata?.namespace ?? '') !== ns) return;
        const sel = selectors[i];
        if (!sel || !labelSelectorMatches(sel, labels)) return;
        const disrupted = ((pdb.status as Obj | undefined)?.disruptedPods ?? {}) as Obj;
        if (Object.prototype.hasOwnProperty.call(disrupted, name)) return;
        allowed[i]!--;
        if (allowed[i]! < 0) violated = true;
      });
    }
    (violated ? violating : nonViolating).push(pi);
  }
  return { violating, nonViolating };
}

/** Whether the pod is being deleted by a scheduler's preemption (deletionTimestamp set and a true `DisruptionTarget` condition with reason `PreemptionByScheduler`). */
export function podTerminatingByPreemption(pod: KubeObject): boolean {
  if (!pod.metadata?.deletionTimestamp) return false;
  for (const c of (((pod.status as Obj | undefined)?.conditions ?? []) as Obj[])) {
    if (c?.type === 'DisruptionTarget') return c.status === 'True' && c.reason === PREEMPTION_BY_SCHEDULER;
  }
  return false;
}

/**
 * Whether `pod` may preempt others (Kubernetes' `PodEligibleToPreemptOthers`): not with
 * `preemptionPolicy: Never`, nor while a lower-priority pod on its nominated node is still being
 * deleted by an earlier preemption (unless the filters found that node unresolvable). Returns the
 * reason when it may not.
 */
export function podEligibleToPreemptOthers(pod: KubeObject, snapshot: NodeSnapshot, nominatedNodeStatus: Status | undefined): { eligible: boolean; reason?: string } {
  const spec = (pod.spec ?? {}) as Obj;
  if (spec.preemptionPolicy === 'Never') return { eligible: false, reason: 'not eligible due to preemptionPolicy=Never.' };
  const nominated = String((pod.status as Obj | undefined)?.nominatedNodeName ?? '');
  if (nominated !== '') {
    if (nominatedNodeStatus?.code === 'UnschedulableAndUnresolvable') return { eligible: true };
    const nodeInfo = snapshot.get(nominated);
    if (nodeInfo) {
      const prio = podPriority(pod);
      for (const p of nodeInfo.pods) {
        if (podPriority(p.pod) < prio && podTerminatingByPreemption(p.pod)) return { eligible: false, reason: 'not eligible due to a terminating pod on the nominated node.' };
      }
    }
  }
  return { eligible: true };
}

/**
 * The nodes where preemption might help (their Filter status is `Unschedulable`), and for every
 * other node the `UnschedulableAndUnresolvable` status "Preemption is not helpful for scheduling"
 * (nodes absent from `filteredNodeStatus` included).
 */
export function nodesWherePreemptionMightHelp(nodes: readonly NodeInfo[], filteredNodeStatus: ReadonlyMap<string, Status>): { potentialNodes: NodeInfo[]; statuses: Map<string, Status> } {
  const potentialNodes: NodeInfo[] = [];
  const statuses = new Map<string, Status>();
  const unresolvable = Status.unresolvable(NOT_HELPFUL_MESSAGE);
  for (const n of nodes) {
    if (filteredNodeStatus.get(n.name)?.code === 'Unschedulable') potentialNodes.push(n);
    else statuses.set(n.name, unresolvable);
  }
  return { potentialNodes, statuses };
}

/**
 * Kubernetes' `FitError` message: `0/<numAllNodes> nodes are available: <count> <reason>, ...`
 * with the reasons of `statuses` counted over nodes and sorted as strings.
 */
export function fitErrorMessage(numAllNodes: number, statuses: ReadonlyMap<string, Status>): string {
  const counts = new Map<string, number>();
  for (const s of statuses.values()) for (const r of s.reasons) counts.set(r, (counts.get(r) ?? 0) + 1);
  const histogram = [...counts].map(([reason, n]) => `${n} ${reason}`).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  let msg = `0/${numAllNodes} nodes are available:`;
  if (histogram.length > 0) msg += ` ${histogram.join(', ')}.`;
  return msg;
}

/** An `Error` status carrying `s`'s reasons. */
function asError(s: Status): Status {
  return new Status('Error', s.reasons, s.plugin, s.error ?? new Error(s.message()));
}

/** True for a status other than `undefined` or `Success`. */
function failed(s: Status | undefined): s is Status {
  return s !== undefined && s.code !== 'Success';
}

/**
 * Runs the Filter plugins as Kubernetes' `RunFilterPluginsWithNominatedPods` does: first with the
 * pods nominated to the node with at least the pod's priority added (on copies of the node and
 * the state), then, if any were added and the pod fit, again without them (the nominated pods
 * may never come, and filters such as inter-pod affinity must not count on them).
 */
export function runFilterPluginsWithNominatedPods(handle: FrameworkHandle, state: CycleState, pod: KubeObject, podInfo: PodInfo, nodeInfo: NodeInfo): Status | undefined {
  const prio = podPriority(pod);
  const uid = podInfo.uid;
  const present = new Set(nodeInfo.pods.map((p) => p.uid));
  const nominated = nodeInfo.node ? handle.nominator.nominatedPodsForNode(nodeInfo.name).filter((pi) => podPriority(pi.pod) >= prio && pi.uid !== uid && !present.has(pi.uid)) : [];
  let stateToUse = state;
  let nodeToUse = nodeInfo;
  if (nominated.length > 0) {
    stateToUse = state.clone();
    nodeToUse = nodeInfo.clone();
    for (const pi of nominated) {
      nodeToUse.addPod(pi);
      const s = handle.runPreFilterExtension('add', stateToUse, pod, pi, nodeToUse);
      if (failed(s)) return asError(s);
    }
  }
  const first = handle.runFilterPlugins(stateToUse, pod, podInfo, nodeToUse);
  if (failed(first)) return first;
  if (nominated.length === 0) return undefined;
  const second = handle.runFilterPlugins(state, pod, podInfo, nodeInfo);
  return failed(second) ? second : undefined;
}

/** What {@link selectVictimsOnNode} found. */
export interface VictimSelection {
  /** The victims, most important first (empty when `status` is set). */
  readonly victims: KubeObject[];
  readonly numPDBViolations: number;
  /** Why the node is no candidate (undefined: it is one). */
  readonly status?: Status;
}

/**
 * The fewest pods to evict from `nodeInfo` for `pod` to fit (Kubernetes' `SelectVictimsOnNode`).
 * `nodeInfo` and `state` must be copies: every pod of lower priority is removed from them (with
 * the PreFilter extensions told), the Filter plugins must then pass, and the victims are reprieved
 * one by one, most important first, PDB-violating ones before the others: each is added back and
 * stays when the pod still fits.
 */
export function selectVictimsOnNode(handle: FrameworkHandle, state: CycleState, pod: KubeObject, podInfo: PodInfo, nodeInfo: NodeInfo, pdbs: readonly KubeObject[], now: number = Date.now()): VictimSelection {
  const prio = podPriority(pod);
  const removePod = (pi: PodInfo): Status | undefined => {
    nodeInfo.removePod(pi.uid);
    const s = handle.runPreFilterExtension('remove', state, pod, pi, nodeInfo);
    return failed(s) ? asError(s) : undefined;
  };
  const addPod = (pi: PodInfo): Status | undefined => {
    nodeInfo.addPod(pi);
    const s = handle.runPreFilterExtension('add', state, pod, pi, nodeInfo);
    return failed(s) ? asError(s) : undefined;
  };
  const potential = nodeInfo.pods.filter((pi) => podPriority(pi.pod) < prio);
  for (const pi of potential) {
    const s = removePod(pi);
    if (s) return { victims: [], numPDBViolations: 0, status: s };
  }
  if (potential.length === 0) return { victims: [], numPDBViolations: 0, status: Status.unresolvable(NO_VICTIMS_MESSAGE) };
  const fits = runFilterPluginsWithNominatedPods(handle, state, pod, podInfo, nodeInfo);
  if (failed(fits)) return { victims: [], numPDBViolations: 0, status: fits };

  potential.sort((a, b) => (moreImportantPod(a.pod, b.pod, now) ? -1 : moreImportantPod(b.pod, a.pod, now) ? 1 : 0));
  const { violating, nonViolating } = filterPodsWithPDBViolation(potential, pdbs);
  const victims: PodInfo[] = [];
  const reprieve = (pi: PodInfo): { fits: boolean; error?: Status } => {
    const added = addPod(pi);
    if (added) return { fits: false, error: added };
    const fit = !failed(runFilterPluginsWithNominatedPods(handle, state, pod, podInfo, nodeInfo));
    if (!fit) {
      const removed = removePod(pi);
      if (removed) return { fits: false, error: removed };
      victims.push(pi);
    }
    return { fits: fit };
  };
  let numPDBViolations = 0;
  for (const pi of violating) {
    const r = reprieve(pi);
    if (r.error) return { victims: [], numPDBViolations: 0, status: r.error };
    if (!r.fits) numPDBViolations++;
  }
  for (const pi of nonViolating) {
    const r = reprieve(pi);
    if (r.error) return { victims: [], numPDBViolations: 0, status: r.error };
  }
  if (violating.length > 0 && nonViolating.length > 0) victims.sort((a, b) => (moreImportantPod(a.pod, b.pod, now) ? -1 : moreImportantPod(b.pod, a.pod, now) ? 1 : 0));
  return { victims: victims.map((v) => v.pod), numPDBViolations };
}

/** What {@link dryRunPreemption} found. */
export interface DryRunResult {
  /** Candidates without PDB violations first, then those with. */
  readonly candidates: Candidate[];
  /** Why each examined node that is no candidate is not. */
  readonly nodeStatuses: Map<string, Status>;
  /** Internal errors met on the way. */
  readonly errors: Error[];
}

/**
 * Simulates preemption on `potentialNodes` from `offset` on (wrapping around), each on a copy of
 * its NodeInfo and of `state` (Kubernetes' `DryRunPreemption`, sequentially): it stops once it has
 * at least one candidate without PDB violations and `numCandidates` candidates in all. At most
 * `numCandidates` candidates of each kind are kept.
 */
export function dryRunPreemption(handle: FrameworkHandle, state: CycleState, pod: KubeObject, potentialNodes: readonly NodeInfo[], pdbs: readonly KubeObject[], offset: number, numCandidates: number, now: number = Date.now()): DryRunResult {
  const podInfo = new PodInfo(pod);
  const nonViolating: Candidate[] = [];
  const violating: Candidate[] = [];
  const nodeStatuses = new Map<string, Status>();
  const errors: Error[] = [];
  const n = potentialNodes.length;
  for (let i = 0; i < n; i++) {
    const nodeInfo = potentialNodes[(offset + i) % n]!.clone();
    const sel = selectVictimsOnNode(handle, state.clone(), pod, podInfo, nodeInfo, pdbs, now);
    let status = sel.status;
    if (!status && sel.victims.length > 0) {
      const c: Candidate = { name: nodeInfo.name, victims: { pods: sel.victims, numPDBViolations: sel.numPDBViolations } };
      const list = sel.numPDBViolations === 0 ? nonViolating : violating;
      if (list.length < numCandidates) list.push(c);
      if (nonViolating.length > 0 && nonViolating.length + violating.length >= numCandidates) break;
      continue;
    }
    if (!status) status = Status.error(new Error(`expected at least one victim pod on node "${nodeInfo.name}"`));
    if (status.code === 'Error') errors.push(status.error ?? new Error(status.message()));
    nodeStatuses.set(nodeInfo.name, status);
  }
  return { candidates: [...nonViolating, ...violating], nodeStatuses, errors };
}

/** A pod's API path. */
function podPath(pod: KubeObject): string {
  return `/api/v1/namespaces/${encodeURIComponent(String(pod.metadata?.namespace ?? ''))}/pods/${encodeURIComponent(String(pod.metadata?.name ?? ''))}`;
}

/** RFC 3339 with seconds, as Kubernetes' `metav1.Time`. */
function formatTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}Z`;
}

/**
 * The `DisruptionTarget` condition the scheduler sets on a victim before deleting it, or undefined
 * when the victim already has it with the same status, reason and message (Kubernetes'
 * `UpdatePodCondition`: the transition time is kept when the status does not change).
 */
export function disruptionTargetCondition(victim: KubeObject, schedulerName: string, now: number = Date.now()): Obj | undefined {
  const condition: Obj = { type: 'DisruptionTarget', status: 'True', reason: PREEMPTION_BY_SCHEDULER, message: `${schedulerName}: preempting to accommodate a higher priority pod`, lastTransitionTime: formatTime(now) };
  const old = (((victim.status as Obj | undefined)?.conditions ?? []) as Obj[]).find((c) => c?.type === 'DisruptionTarget');
  if (!old) return condition;
  if (old.status === condition.status) {
    if (old.reason === condition.reason && old.message === condition.message) return undefined;
    if (old.lastTransitionTime !== undefined) condition.lastTransitionTime = old.lastTransitionTime;
  }
  return condition;
}

/** Options of {@link DefaultPreemption} beyond its args (for tests and embedding). */
export interface DefaultPreemptionOptions {
  /** A source of numbers in [0, 1) for the dry run's starting offset; `Math.random` by default. */
  readonly random?: () => number;
  /** The PodDisruptionBudgets to respect; by default those of the shared informer of `handle.api` (none when the handle has no API client). */
  readonly pdbs?: () => readonly KubeObject[] | Promise<readonly KubeObject[]>;
  /** The clock, ms since the epoch (start times of pods that have none, condition times). */
  readonly now?: () => number;
}

/**
 * The DefaultPreemption PostFilter plugin. One per profile; it keeps no state across scheduling
 * cycles other than the lazily started PDB informer.
 */
export class DefaultPreemption implements FrameworkPlugin {
  readonly name = DEFAULT_PREEMPTION_NAME;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly pdbSource: () => Promise<readonly KubeObject[]>;

  constructor(
    readonly args: DefaultPreemptionArgs,
    private readonly handle: FrameworkHandle,
    options: DefaultPreemptionOptions = {},
  ) {
    this.random = options.random ?? Math.random;
    this.now = options.now ?? Date.now;
    const custom = options.pdbs;
    this.pdbSource = custom ? async () => custom() : () => this.informerPdbs();
  }

  /** The PDBs of the shared informer, started on first use; none when the handle has no API client. */
  private async informerPdbs(): Promise<readonly KubeObject[]> {
    let api: ApiClient;
    try {
      api = this.handle.api;
    } catch {
      return [];
    }
    const informer = api.informer(PDB_PATH);
    informer.run();
    if (!informer.synced) await informer.waitForSync(AbortSignal.timeout(PDB_SYNC_TIMEOUT_MS));
    return informer.list();
  }

  /** PostFilter: preempt lower-priority pods on the best node and nominate it, or say why not. */
  async postFilter(state: CycleState, pod: KubeObject, filteredNodeStatus: ReadonlyMap<string, Status>): Promise<{ result?: PostFilterResult; status?: Status }> {
    const { result, status } = await this.preempt(state, pod, filteredNodeStatus);
    if (status && status.reasons.length > 0 && status.message() !== '') {
      const prefixed = new Status(status.code, [`preemption: ${status.message()}`], status.plugin, status.error);
      return { ...(result ? { result } : {}), status: prefixed };
    }
    return { ...(result ? { result } : {}), ...(status ? { status } : {}) };
  }

  /** Kubernetes' `Evaluator.Preempt` (without extenders). */
  private async preempt(state: CycleState, pod: KubeObject, filteredNodeStatus: ReadonlyMap<string, Status>): Promise<{ result?: PostFilterResult; status?: Status }> {
    const now = this.now();
    const snapshot = this.handle.snapshot();
    // 1) Is the preemptor eligible?
    const nominatedNode = String((pod.status as Obj | undefined)?.nominatedNodeName ?? '');
    const eligible = podEligibleToPreemptOthers(pod, snapshot, nominatedNode ? filteredNodeStatus.get(nominatedNode) : undefined);
    if (!eligible.eligible) {
      this.handle.logger.debug({ pod: podKey(pod), reason: eligible.reason }, 'pod is not eligible for preemption');
      return { status: Status.unschedulable(eligible.reason ?? '') };
    }
    // 2) Find the candidates.
    const allNodes = snapshot.list();
    if (allNodes.length === 0) return { status: Status.error(new Error('no nodes available')) };
    const { potentialNodes, statuses } = nodesWherePreemptionMightHelp(allNodes, filteredNodeStatus);
    if (potentialNodes.length === 0) {
      this.handle.logger.debug({ pod: podKey(pod) }, 'preemption will not help schedule the pod on any node');
      await this.clearNominatedNodeName([pod]);
      return { result: { nominatedNodeName: '' }, status: Status.unschedulable(fitErrorMessage(allNodes.length, statuses)) };
    }
    let pdbs: readonly KubeObject[];
    try {
      pdbs = await this.pdbSource();
    } catch (err) {
      return { status: Status.error(err) };
    }
    const { offset, numCandidates } = getOffsetAndNumCandidates(potentialNodes.length, this.args, this.random);
    const dry = dryRunPreemption(this.handle, state, pod, potentialNodes, pdbs, offset, numCandidates, now);
    for (const [node, s] of dry.nodeStatuses) statuses.set(node, s);
    if (dry.candidates.length === 0) {
      if (dry.errors.length > 0) return { status: Status.error(dry.errors.length === 1 ? dry.errors[0] : new AggregateError(dry.errors, dry.errors.map((e) => e.message).join(', '))) };
      return { result: { nominatedNodeName: '' }, status: Status.unschedulable(fitErrorMessage(allNodes.length, statuses)) };
    }
    // 4) The best candidate.
    const best = pickOneNodeForPreemption(dry.candidates, now);
    if (!best || best.name === '') return { status: Status.unschedulable('no candidate node for preemption') };
    // 5) Evict its victims.
    const prepared = await this.prepareCandidate(best, pod, now);
    if (prepared) return { status: prepared };
    return { result: { nominatedNodeName: best.name } };
  }

  /**
   * Kubernetes' `prepareCandidate`: each victim gets the `DisruptionTarget` condition, is deleted
   * and gets a `Preempted` event; then lower-priority pods nominated to the node lose their
   * nomination. The first failure is returned (a victim already gone is no failure).
   */
  private async prepareCandidate(c: Candidate, pod: KubeObject, now: number): Promise<Status | undefined> {
    let api: ApiClient;
    try {
      api = this.handle.api;
    } catch (err) {
      return Status.error(err);
    }
    const schedulerName = String((pod.spec as Obj | undefined)?.schedulerName ?? 'default-scheduler');
    const errors: Error[] = [];
    await Promise.all(
      c.victims.pods.map(async (victim) => {
        const path = podPath(victim);
        try {
          const condition = disruptionTargetCondition(victim, schedulerName, now);
          if (condition) {
            try {
              await api.patch(`${path}/status`, { status: { conditions: [condition] } }, 'application/strategic-merge-patch+json');
            } catch (err) {
              if (!isNotFound(err)) throw err;
            }
          }
          try {
            await api.delete(path);
          } catch (err) {
            if (!isNotFound(err)) throw err;
          }
          this.handle.logger.info({ preemptor: podKey(pod), victim: podKey(victim), node: c.name }, 'preemptor pod preempted victim pod');
          this.handle.event(victim, 'Normal', 'Preempted', `Preempted by pod ${String(pod.metadata?.uid ?? '')} on node ${c.name}`);
        } catch (err) {
          this.handle.logger.error({ err: errorText(err), victim: podKey(victim), preemptor: podKey(pod) }, 'could not preempt pod');
          errors.push(err instanceof Error ? err : new Error(String(err)));
        }
      }),
    );
    if (errors.length > 0) return Status.error(errors[0]);
    const prio = podPriority(pod);
    const lower = this.handle.nominator.nominatedPodsForNode(c.name).filter((pi) => podPriority(pi.pod) < prio).map((pi) => pi.pod);
    await this.clearNominatedNodeName(lower);
    return undefined;
  }

  /** Clears `status.nominatedNodeName` of the pods that have one (best effort: failures are logged). */
  private async clearNominatedNodeName(pods: readonly KubeObject[]): Promise<void> {
    const nominated = pods.filter((p) => String((p.status as Obj | undefined)?.nominatedNodeName ?? '') !== '');
    if (nominated.length === 0) return;
    let api: ApiClient;
    try {
      api = this.handle.api;
    } catch {
      return;
    }
    await Promise.all(
      nominated.map(async (p) => {
        try {
          await api.patch(`${podPath(p)}/status`, { status: { nominatedNodeName: null } });
        } catch (err) {
          if (!isNotFound(err)) this.handle.logger.warn({ err: errorText(err), pod: podKey(p) }, 'could not clear the nominatedNodeName field of pod');
        }
      }),
    );
  }
}

function podKey(pod: KubeObject): string {
  return `${String(pod.metadata?.namespace ?? '')}/${String(pod.metadata?.name ?? '')}`;
}

function errorText(err: unknown): string {
  if (err instanceof ApiStatusError) return `${err.code} ${err.reason}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

/** The `scheduler-plugin` factory of DefaultPreemption (args: {@link DefaultPreemptionArgs}). */
export const defaultPreemptionFactory: SchedulerPluginFactory = {
  name: DEFAULT_PREEMPTION_NAME,
  argsSchema: DEFAULT_PREEMPTION_ARGS_SCHEMA,
  create(args: unknown, handle: FrameworkHandle): FrameworkPlugin {
    return new DefaultPreemption(parseDefaultPreemptionArgs(args), handle);
  },
};

/** The kernel plugin providing {@link defaultPreemptionFactory}. */
export const defaultPreemptionPlugin = defineSchedulerPlugin({
  id: 'scheduler-default-preemption',
  version: '0.1.0',
  description: 'DefaultPreemption: the PostFilter that evicts lower-priority pods so that an unschedulable pod fits (Kubernetes v1.30 semantics).',
  factory: defaultPreemptionFactory,
});
