/**
 * The scheduling framework's contract (Kubernetes' kube-scheduler framework): the extension
 * points a {@link FrameworkPlugin} may implement, with Kubernetes' meaning, the
 * {@link FrameworkHandle} a scheduler gives plugins, the cluster events that can make an
 * unschedulable pod schedulable, and the provider contract of kind `scheduler-plugin`
 * ({@link SchedulerPluginFactory}).
 *
 * A scheduling cycle runs, for one pod: PreFilter, Filter (per node), PostFilter (when no node
 * fits: preemption), PreScore, Score (per feasible node), NormalizeScore, then Reserve and Permit;
 * the binding cycle (PreBind, Bind, PostBind) runs concurrently with the next pod's scheduling
 * cycle. A failure after Reserve runs every Unreserve in reverse order.
 *
 * @module
 */
import type { ApiClient, KubeObject } from '../client/api-client.js';
import type { Logger } from '../plugin/handle.js';
import type { NodeInfo, NodeSnapshot, PodInfo } from './nodeinfo.js';
import type { Status } from './status.js';

/**
 * Data shared by the plugins of one scheduling cycle (written at PreFilter/PreScore, read at
 * Filter/Score). Values that implement `clone()` are cloned by {@link CycleState.clone}
 * (preemption simulates removals on a copy).
 */
export class CycleState {
  private readonly data = new Map<string, unknown>();
  /** Plugins whose Filter is skipped this cycle (their PreFilter returned Skip). */
  readonly skipFilterPlugins = new Set<string>();
  /** Plugins whose Score is skipped this cycle (their PreScore returned Skip). */
  readonly skipScorePlugins = new Set<string>();

  read<T>(key: string): T | undefined {
    return this.data.get(key) as T | undefined;
  }
  write(key: string, value: unknown): void {
    this.data.set(key, value);
  }
  delete(key: string): void {
    this.data.delete(key);
  }
  clone(): CycleState {
    const c = new CycleState();
    for (const [k, v] of this.data) c.data.set(k, v !== null && typeof v === 'object' && typeof (v as { clone?: unknown }).clone === 'function' ? (v as { clone(): unknown }).clone() : v);
    for (const p of this.skipFilterPlugins) c.skipFilterPlugins.add(p);
    for (const p of this.skipScorePlugins) c.skipScorePlugins.add(p);
    return c;
  }
}

/** A pod waiting in the scheduling queue. */
export interface QueuedPodInfo {
  readonly podInfo: PodInfo;
  /** When it was (last) added to the queue, ms since the epoch. */
  readonly timestamp: number;
  /** Scheduling attempts so far. */
  readonly attempts: number;
  /** When it was first added, ms since the epoch. */
  readonly initialAttemptTimestamp: number;
}

/** What a PreFilter may narrow the candidate nodes to (undefined: every node). */
export interface PreFilterResult {
  readonly nodeNames?: ReadonlySet<string>;
}

/** Incremental updates of a PreFilter's state when a pod is added to or removed from a node (preemption, nominated pods). */
export interface PreFilterExtensions {
  addPod(state: CycleState, podToSchedule: KubeObject, podInfoToAdd: PodInfo, nodeInfo: NodeInfo): Status | undefined;
  removePod(state: CycleState, podToSchedule: KubeObject, podInfoToRemove: PodInfo, nodeInfo: NodeInfo): Status | undefined;
}

/** One node's score. */
export interface NodeScore {
  readonly name: string;
  score: number;
}

/** The answer of a PostFilter (preemption): the node where the pod may fit once victims are gone. */
export interface PostFilterResult {
  readonly nominatedNodeName?: string;
}

/** A Permit verdict: allow, reject, or wait up to `timeoutMs` to be allowed. */
export interface PermitResult {
  readonly status?: Status;
  readonly timeoutMs?: number;
}

/** The kinds of objects whose changes can make a pod schedulable. */
export type EventResource = 'Pod' | 'AssignedPod' | 'UnscheduledPod' | 'Node' | 'PersistentVolume' | 'PersistentVolumeClaim' | 'StorageClass' | 'CSINode' | 'Namespace' | 'PriorityClass' | '*';

/** What happened to an object (Kubernetes' ActionType; `Update*` refine updates of nodes and pods). */
export type ActionType =
  | 'Add'
  | 'Delete'
  | 'Update'
  | 'UpdateNodeAllocatable'
  | 'UpdateNodeLabel'
  | 'UpdateNodeTaint'
  | 'UpdateNodeCondition'
  | 'UpdateNodeAnnotation'
  | 'UpdatePodLabel'
  | 'UpdatePodScaleDown'
  | 'All';

/** A kind of cluster change. */
export interface ClusterEvent {
  readonly resource: EventResource;
  readonly actions: readonly ActionType[];
}

/** Whether a cluster event may make a rejected pod schedulable (Kubernetes' QueueingHint). */
export type QueueingHint = 'Queue' | 'QueueSkip';

/** A cluster event a plugin's rejections depend on, with an optional finer check. */
export interface ClusterEventWithHint {
  readonly event: ClusterEvent;
  /** Given the rejected pod and the changed object (old and new), whether to retry the pod; absent: always `Queue`. */
  hint?(pod: KubeObject, oldObject: KubeObject | undefined, newObject: KubeObject | undefined): QueueingHint;
}

/**
 * A scheduling framework plugin. Every method is optional: implementing one enables the plugin at
 * that extension point (a profile still decides whether it runs there). Synchronous methods run
 * on the hot path and should not allocate per node; returning `undefined` means success.
 * Throwing is an `Error` status.
 */
export interface FrameworkPlugin {
  /** The plugin's name in profiles (`NodeResourcesFit`). */
  readonly name: string;
  /** Before the pod enters the active queue: `Pending`/`Unschedulable` keeps it out (e.g. scheduling gates). */
  preEnqueue?(pod: KubeObject): Status | undefined;
  /** QueueSort: true when `a` should be scheduled before `b`. Exactly one per profile. */
  less?(a: QueuedPodInfo, b: QueuedPodInfo): boolean;
  /** Once per cycle, before Filter: compute state, reject early, or narrow the nodes. `Skip` skips this plugin's Filter. */
  preFilter?(state: CycleState, pod: KubeObject, podInfo: PodInfo): { result?: PreFilterResult; status?: Status } | undefined;
  /** Keeps the PreFilter state right when pods are added or removed in simulations. */
  preFilterExtensions?(): PreFilterExtensions | undefined;
  /** Whether the pod fits on the node: undefined (yes), Unschedulable or UnschedulableAndUnresolvable (no). */
  filter?(state: CycleState, pod: KubeObject, podInfo: PodInfo, nodeInfo: NodeInfo): Status | undefined;
  /** When no node fits (preemption): may nominate a node. */
  postFilter?(state: CycleState, pod: KubeObject, filteredNodeStatus: ReadonlyMap<string, Status>): Promise<{ result?: PostFilterResult; status?: Status }>;
  /** Once per cycle, before Score, with the feasible nodes. `Skip` skips this plugin's Score. */
  preScore?(state: CycleState, pod: KubeObject, podInfo: PodInfo, nodes: readonly NodeInfo[]): Status | undefined;
  /** A node's score (any range before NormalizeScore, 0-100 after). */
  score?(state: CycleState, pod: KubeObject, podInfo: PodInfo, nodeInfo: NodeInfo): number;
  /** Rescales this plugin's scores (in place) to 0-{@link MAX_NODE_SCORE}. */
  normalizeScore?(state: CycleState, pod: KubeObject, scores: NodeScore[]): Status | undefined;
  /** The pod is assumed on `nodeName`: reserve what the plugin tracks. */
  reserve?(state: CycleState, pod: KubeObject, nodeName: string): Status | undefined | Promise<Status | undefined>;
  /** Undo {@link FrameworkPlugin.reserve} (must be idempotent, must not fail). */
  unreserve?(state: CycleState, pod: KubeObject, nodeName: string): void | Promise<void>;
  /** Allow, reject or delay the binding. */
  permit?(state: CycleState, pod: KubeObject, nodeName: string): PermitResult | undefined;
  /** Before Bind (e.g. provision volumes). */
  preBind?(state: CycleState, pod: KubeObject, nodeName: string): Promise<Status | undefined>;
  /** Binds the pod; `Skip` passes to the next binder. */
  bind?(state: CycleState, pod: KubeObject, nodeName: string): Promise<Status | undefined>;
  /** After a successful bind (informational). */
  postBind?(state: CycleState, pod: KubeObject, nodeName: string): void;
  /** The cluster events that may make a pod this plugin rejected schedulable. */
  eventsToRegister?(): readonly ClusterEventWithHint[];
}

/** The extension points, in the order of the cycles. */
export const EXTENSION_POINTS = ['preEnqueue', 'queueSort', 'preFilter', 'filter', 'postFilter', 'preScore', 'score', 'reserve', 'permit', 'preBind', 'bind', 'postBind'] as const;
/** One of {@link EXTENSION_POINTS}. */
export type ExtensionPoint = (typeof EXTENSION_POINTS)[number];

/** The method that makes a plugin take part in an extension point. */
export const EXTENSION_METHOD: Readonly<Record<ExtensionPoint, keyof FrameworkPlugin>> = {
  preEnqueue: 'preEnqueue',
  queueSort: 'less',
  preFilter: 'preFilter',
  filter: 'filter',
  postFilter: 'postFilter',
  preScore: 'preScore',
  score: 'score',
  reserve: 'reserve',
  permit: 'permit',
  preBind: 'preBind',
  bind: 'bind',
  postBind: 'postBind',
};

/** True when `plugin` implements `point`. */
export function implementsPoint(plugin: FrameworkPlugin, point: ExtensionPoint): boolean {
  return typeof plugin[EXTENSION_METHOD[point]] === 'function';
}

/** Pods nominated to run on nodes (preempting pods waiting for their victims to go). */
export interface PodNominator {
  /** The pods nominated to `nodeName`. */
  nominatedPodsForNode(nodeName: string): readonly PodInfo[];
}

/** What a scheduler offers its framework plugins. */
export interface FrameworkHandle {
  /** The snapshot of the current scheduling cycle. */
  snapshot(): NodeSnapshot;
  /** The API client (informers for PDBs, namespaces, PriorityClasses; bindings; evictions). */
  readonly api: ApiClient;
  readonly logger: Logger;
  /** The labels of namespace `name` (for `namespaceSelector`), undefined when unknown. */
  namespaceLabels(name: string): Readonly<Record<string, string>> | undefined;
  /** Pods nominated to nodes. */
  readonly nominator: PodNominator;
  /**
   * Runs the profile's Filter plugins for `pod` on `nodeInfo` (preemption's what-if): the first
   * rejection, or undefined. Pods nominated to the node are not added; callers that want them
   * counted add them (and run the PreFilter extensions) first.
   */
  runFilterPlugins(state: CycleState, pod: KubeObject, podInfo: PodInfo, nodeInfo: NodeInfo): Status | undefined;
  /** Runs the profile's PreFilter extensions' addPod/removePod (preemption's what-if). */
  runPreFilterExtension(op: 'add' | 'remove', state: CycleState, pod: KubeObject, target: PodInfo, nodeInfo: NodeInfo): Status | undefined;
  /** The profile's `percentageOfNodesToScore` (0: adaptive). */
  readonly percentageOfNodesToScore: number;
  /** Records an event about `object` (the scheduler's event recorder). */
  event(object: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): void;
  /** Lets a pod held by `plugin`'s Permit `Wait` go on (once every waiting plugin allowed it, it binds). */
  allowWaitingPod(uid: string, plugin: string): void;
  /** Rejects a pod held at Permit: its binding cycle fails with `reason`. */
  rejectWaitingPod(uid: string, plugin: string, reason: string): void;
}

/**
 * The contract of a `scheduler-plugin` provider: a factory the scheduler calls once per profile
 * that enables the plugin, with that profile's args (validated against `argsSchema` with
 * defaults applied).
 */
export interface SchedulerPluginFactory {
  /** The framework name used in profiles, e.g. `NodeResourcesFit` (unique per scheduler). */
  readonly name: string;
  /** JSON Schema of the plugin's args (`pluginConfig[].args`), with defaults. */
  readonly argsSchema?: Readonly<Record<string, unknown>>;
  /** Makes the plugin for one profile. */
  create(args: unknown, handle: FrameworkHandle): FrameworkPlugin | Promise<FrameworkPlugin>;
}

/** True when `value` looks like a {@link SchedulerPluginFactory}. */
export function isSchedulerPluginFactory(value: unknown): value is SchedulerPluginFactory {
  const v = value as Partial<SchedulerPluginFactory> | null;
  return typeof v === 'object' && v !== null && typeof v.name === 'string' && v.name !== '' && typeof v.create === 'function';
}
