/**
 * NodePorts (Kubernetes `pkg/scheduler/framework/plugins/nodeports`): PreFilter collects the host
 * ports the pod asks for (Skip when none); Filter rejects a node where one of them is already in
 * use (same protocol and port, on the same IP or either side on `0.0.0.0`) with Unschedulable
 * `node(s) didn't have free ports for the requested pod ports`.
 *
 * @module
 */
import { defineSchedulerPlugin, podHostPorts, Status, type ClusterEventWithHint, type FrameworkPlugin, type HostPort, type KubeObject, type NodeInfo, type SchedulerPluginFactory } from '@kubernel/sdk';

/** The plugin's name in profiles. */
const NAME = 'NodePorts';
const PRE_FILTER_KEY = 'PreFilter' + NAME;

/** Kubernetes' nodeports.ErrReason. */
export const ERR_REASON = "node(s) didn't have free ports for the requested pod ports";

const CONFLICT = new Status('Unschedulable', [ERR_REASON], NAME);

/** Kubernetes' `fitsPorts`: whether none of `wanted` conflicts with a host port in use on the node. */
export function fitsPorts(wanted: readonly HostPort[], nodeInfo: NodeInfo): boolean {
  if (nodeInfo.usedPorts.size === 0) return true;
  for (let i = 0; i < wanted.length; i++) if (nodeInfo.portConflicts(wanted[i]!)) return false;
  return true;
}

/** Whether two host ports conflict (same protocol and port, same IP or either on 0.0.0.0). */
function portsConflict(a: HostPort, b: HostPort): boolean {
  return a.protocol === b.protocol && a.port === b.port && (a.ip === b.ip || a.ip === '0.0.0.0' || b.ip === '0.0.0.0');
}

/**
 * Deleting a scheduled pod that used a conflicting host port may free the node (Kubernetes'
 * isSchedulableAfterPodDeleted); a node added or updated is always worth a retry.
 */
const EVENTS: readonly ClusterEventWithHint[] = [
  {
    event: { resource: 'Pod', actions: ['Delete'] },
    hint: (pod, deleted: KubeObject | undefined) => {
      if (!deleted) return 'Queue';
      if (!(deleted.spec as { nodeName?: string } | undefined)?.nodeName) return 'QueueSkip';
      const freed = podHostPorts(deleted);
      const wanted = podHostPorts(pod);
      return wanted.some((w) => freed.some((f) => portsConflict(w, f))) ? 'Queue' : 'QueueSkip';
    },
  },
  { event: { resource: 'Node', actions: ['Add', 'Update'] } },
];

/** The NodePorts factory (PreFilter, Filter; takes no args). */
export const nodePortsFactory: SchedulerPluginFactory = {
  name: NAME,
  create(): FrameworkPlugin {
    return {
      name: NAME,
      preFilter(state, pod) {
        const ports = podHostPorts(pod);
        if (ports.length === 0) return { status: Status.skip() };
        state.write(PRE_FILTER_KEY, ports);
        return undefined;
      },
      filter(state, pod, _podInfo, nodeInfo) {
        const ports = state.read<HostPort[]>(PRE_FILTER_KEY) ?? podHostPorts(pod);
        return fitsPorts(ports, nodeInfo) ? undefined : CONFLICT;
      },
      eventsToRegister: () => EVENTS,
    };
  },
};

/** The NodePorts plugin (id `scheduler-node-ports`). */
export const nodePortsPlugin = defineSchedulerPlugin({
  id: 'scheduler-node-ports',
  version: '0.1.0',
  description: 'NodePorts: filters out nodes where a host port the pod asks for is already in use.',
  factory: nodePortsFactory,
});
