/**
 * SchedulingGates (Kubernetes `pkg/scheduler/framework/plugins/schedulinggates`): a PreEnqueue
 * plugin that keeps a pod out of the active queue while its `spec.schedulingGates` is not empty.
 *
 * @module
 */
import { defineSchedulerPlugin, Status, type ClusterEventWithHint, type FrameworkPlugin, type KubeObject, type SchedulerPluginFactory } from '@kubernel/sdk';

/** The plugin's name in profiles. */
const NAME = 'SchedulingGates';

type Obj = Record<string, unknown>;

function gatesOf(pod: KubeObject | undefined): ReadonlyArray<{ name?: unknown }> {
  const gates = (pod?.spec as Obj | undefined)?.schedulingGates;
  return Array.isArray(gates) ? (gates as Array<{ name?: unknown }>) : [];
}

/**
 * Kubernetes' `SchedulingGates.PreEnqueue`: undefined when the pod has no scheduling gate, else
 * `UnschedulableAndUnresolvable` with `waiting for scheduling gates: [a b]` (Go's `%v` of the
 * gate names).
 */
export function schedulingGatesPreEnqueue(pod: KubeObject): Status | undefined {
  const gates = gatesOf(pod);
  if (gates.length === 0) return undefined;
  const names = gates.map((g) => String(g?.name ?? ''));
  return new Status('UnschedulableAndUnresolvable', [`waiting for scheduling gates: [${names.join(' ')}]`], NAME);
}

/** The gated pod is retried when it is updated and has no gate left (its gates were removed). */
const EVENTS: readonly ClusterEventWithHint[] = [
  {
    event: { resource: 'Pod', actions: ['Update'] },
    hint: (pod, _old, updated) => {
      if (!updated) return 'QueueSkip';
      const same = updated.metadata?.uid !== undefined ? updated.metadata.uid === pod.metadata?.uid : updated.metadata?.name === pod.metadata?.name && updated.metadata?.namespace === pod.metadata?.namespace;
      return same && gatesOf(updated).length === 0 ? 'Queue' : 'QueueSkip';
    },
  },
];

/** The SchedulingGates factory (PreEnqueue; takes no args). */
export const schedulingGatesFactory: SchedulerPluginFactory = {
  name: NAME,
  create(): FrameworkPlugin {
    return { name: NAME, preEnqueue: schedulingGatesPreEnqueue, eventsToRegister: () => EVENTS };
  },
};

/** The SchedulingGates plugin (id `scheduler-scheduling-gates`). */
export const schedulingGatesPlugin = defineSchedulerPlugin({
  id: 'scheduler-scheduling-gates',
  version: '0.1.0',
  description: 'SchedulingGates: keeps pods with spec.schedulingGates out of the scheduling queue.',
  factory: schedulingGatesFactory,
});
