/**
 * PrioritySort (Kubernetes `pkg/scheduler/framework/plugins/queuesort`): the default QueueSort
 * plugin. Pods with a higher `spec.priority` are scheduled first; among pods of equal priority,
 * the one queued earlier goes first.
 *
 * @module
 */
import { defineSchedulerPlugin, podPriority, type FrameworkPlugin, type QueuedPodInfo, type SchedulerPluginFactory } from '@kubernel/sdk';

/** The plugin's name in profiles. */
const NAME = 'PrioritySort';

/**
 * Kubernetes' `PrioritySort.Less`: true when `a` goes before `b`, i.e. `a` has the higher
 * priority, or the same priority and an earlier queue timestamp.
 */
export function prioritySortLess(a: QueuedPodInfo, b: QueuedPodInfo): boolean {
  const p1 = podPriority(a.podInfo.pod);
  const p2 = podPriority(b.podInfo.pod);
  return p1 > p2 || (p1 === p2 && a.timestamp < b.timestamp);
}

/** The PrioritySort factory (QueueSort; takes no args). */
export const prioritySortFactory: SchedulerPluginFactory = {
  name: NAME,
  create(): FrameworkPlugin {
    return { name: NAME, less: prioritySortLess };
  },
};

/** The PrioritySort plugin (id `scheduler-priority-sort`). */
export const prioritySortPlugin = defineSchedulerPlugin({
  id: 'scheduler-priority-sort',
  version: '0.1.0',
  description: 'PrioritySort: orders the scheduling queue by pod priority, then by queue time.',
  factory: prioritySortFactory,
});
