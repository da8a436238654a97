/**
 * NodeUnschedulable (Kubernetes `pkg/scheduler/framework/plugins/nodeunschedulable`): a Filter
 * plugin that rejects cordoned nodes (`spec.unschedulable: true`) unless the pod tolerates the
 * `node.kubernetes.io/unschedulable:NoSchedule` taint.
 *
 * @module
 */
import { defineSchedulerPlugin, Status, toleratesTaint, type ClusterEventWithHint, type FrameworkPlugin, type KubeObject, type NodeInfo, type SchedulerPluginFactory, type Taint, type Toleration } from '@kubernel/sdk';

/** The plugin's name in profiles. */
const NAME = 'NodeUnschedulable';

/** Kubernetes' ErrReasonUnschedulable. */
export const ERR_REASON_UNSCHEDULABLE = "node(s) were unschedulable";
/** Kubernetes' ErrReasonUnknownCondition (a NodeInfo without a node). */
export const ERR_REASON_UNKNOWN_CONDITION = 'node(s) had unknown conditions';

/** The taint a cordoned node carries (`node.kubernetes.io/unschedulable:NoSchedule`). */
const UNSCHEDULABLE_TAINT: Taint = { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' };

type Obj = Record<string, unknown>;

const UNSCHEDULABLE = new Status('UnschedulableAndUnresolvable', [ERR_REASON_UNSCHEDULABLE], NAME);
const UNKNOWN_CONDITION = new Status('UnschedulableAndUnresolvable', [ERR_REASON_UNKNOWN_CONDITION], NAME);

/** Whether the pod tolerates the `node.kubernetes.io/unschedulable:NoSchedule` taint. */
export function toleratesUnschedulable(pod: KubeObject): boolean {
  const tolerations = (pod.spec as Obj | undefined)?.tolerations as readonly Toleration[] | undefined;
  if (!tolerations) return false;
  for (let i = 0; i < tolerations.length; i++) if (toleratesTaint(tolerations[i]!, UNSCHEDULABLE_TAINT)) return true;
  return false;
}

function isUnschedulable(node: KubeObject | undefined): boolean {
  return (node?.spec as Obj | undefined)?.unschedulable === true;
}

/** Kubernetes' `NodeUnschedulable.Filter`. */
export function nodeUnschedulableFilter(pod: KubeObject, nodeInfo: NodeInfo): Status | undefined {
  const node = nodeInfo.node;
  if (!node) return UNKNOWN_CONDITION;
  if (!isUnschedulable(node)) return undefined;
  return toleratesUnschedulable(pod) ? undefined : UNSCHEDULABLE;
}

/** A node added or updated as schedulable may make the pod schedulable (Kubernetes' isSchedulableAfterNodeChange). */
const EVENTS: readonly ClusterEventWithHint[] = [
  {
    event: { resource: 'Node', actions: ['Add', 'UpdateNodeTaint'] },
    hint: (_pod, _old, updated) => (updated && !isUnschedulable(updated) ? 'Queue' : 'QueueSkip'),
  },
];

/** The NodeUnschedulable factory (Filter; takes no args). */
export const nodeUnschedulableFactory: SchedulerPluginFactory = {
  name: NAME,
  create(): FrameworkPlugin {
    return {
      name: NAME,
      filter: (_state, pod, _podInfo, nodeInfo) => nodeUnschedulableFilter(pod, nodeInfo),
      eventsToRegister: () => EVENTS,
    };
  },
};

/** The NodeUnschedulable plugin (id `scheduler-node-unschedulable`). */
export const nodeUnschedulablePlugin = defineSchedulerPlugin({
  id: 'scheduler-node-unschedulable',
  version: '0.1.0',
  description: 'NodeUnschedulable: filters out cordoned nodes unless the pod tolerates node.kubernetes.io/unschedulable.',
  factory: nodeUnschedulableFactory,
});
