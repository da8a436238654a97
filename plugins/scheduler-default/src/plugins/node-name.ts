/**
 * NodeName (Kubernetes `pkg/scheduler/framework/plugins/nodename`): a Filter plugin that, for a
 * pod with `spec.nodeName` set, rejects every node but that one.
 *
 * @module
 */
import { defineSchedulerPlugin, Status, type ClusterEventWithHint, type FrameworkPlugin, type KubeObject, type NodeInfo, type SchedulerPluginFactory } from '@kubernel/sdk';

/** The plugin's name in profiles. */
const NAME = 'NodeName';

/** Kubernetes' nodename.ErrReason. */
export const ERR_REASON = "node(s) didn't match the requested node name";

type Obj = Record<string, unknown>;

const MISMATCH = new Status('UnschedulableAndUnresolvable', [ERR_REASON], NAME);

function requestedNodeName(pod: KubeObject): string {
  const n = (pod.spec as Obj | undefined)?.nodeName;
  return typeof n === 'string' ? n : '';
}

/** Kubernetes' `nodename.Fits`: the pod names no node, or names this one. */
export function nodeNameFits(pod: KubeObject, nodeInfo: NodeInfo): boolean {
  const wanted = requestedNodeName(pod);
  return wanted === '' || wanted === nodeInfo.name;
}

/** A node being added (or updated) may be the one the pod names. */
const EVENTS: readonly ClusterEventWithHint[] = [
  {
    event: { resource: 'Node', actions: ['Add', 'Update'] },
    hint: (pod, _old, updated) => {
      const wanted = requestedNodeName(pod);
      return wanted === '' || !updated || updated.metadata?.name === wanted ? 'Queue' : 'QueueSkip';
    },
  },
];

/** The NodeName factory (Filter; takes no args). */
export const nodeNameFactory: SchedulerPluginFactory = {
  name: NAME,
  create(): FrameworkPlugin {
    return {
      name: NAME,
      filter: (_state, pod, _podInfo, nodeInfo) => (nodeNameFits(pod, nodeInfo) ? undefined : MISMATCH),
      eventsToRegister: () => EVENTS,
    };
  },
};

/** The NodeName plugin (id `scheduler-node-name`). */
export const nodeNamePlugin = defineSchedulerPlugin({
  id: 'scheduler-node-name',
  version: '0.1.0',
  description: 'NodeName: a pod with spec.nodeName fits only the node it names.',
  factory: nodeNameFactory,
});
