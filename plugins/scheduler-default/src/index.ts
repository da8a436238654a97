/**
 * `@kubernel/plugin-scheduler-default`: the default scheduler (kind `scheduler`, id
 * `default-scheduler`) and the scheduling framework plugins (kind `scheduler-plugin`) its default
 * profile is built from, each its own plugin so a distribution can drop, replace or add to them:
 *
 * `SchedulingGates`, `PrioritySort`, `NodeUnschedulable`, `NodeName`, `TaintToleration`,
 * `NodeAffinity`, `NodePorts`, `NodeResourcesFit`, `PodTopologySpread`, `InterPodAffinity`,
 * `DefaultPreemption`, `NodeResourcesBalancedAllocation`, `ImageLocality`, `DefaultBinder`.
 *
 * @packageDocumentation
 */
import type { PluginDefinition } from '@kubernel/sdk';
import { schedulerPlugin } from './scheduler/plugin.js';
import { schedulingGatesPlugin } from './plugins/scheduling-gates.js';
import { prioritySortPlugin } from './plugins/priority-sort.js';
import { nodeUnschedulablePlugin } from './plugins/node-unschedulable.js';
import { nodeNamePlugin } from './plugins/node-name.js';
import { taintTolerationPlugin } from './plugins/taint-toleration.js';
import { nodeAffinityPlugin } from './plugins/node-affinity.js';
import { nodePortsPlugin } from './plugins/node-ports.js';
import { nodeResourcesFitPlugin } from './plugins/node-resources-fit.js';
import { podTopologySpreadPlugin } from './plugins/pod-topology-spread.js';
import { interPodAffinityPlugin } from './plugins/inter-pod-affinity.js';
import { defaultPreemptionPlugin } from './plugins/default-preemption.js';
import { balancedAllocationPlugin } from './plugins/balanced-allocation.js';
import { imageLocalityPlugin } from './plugins/image-locality.js';
import { defaultBinderPlugin } from './plugins/default-binder.js';

export { schedulerPlugin, SCHEDULER_CONFIG_SCHEMA, SCHEDULER_ID } from './scheduler/plugin.js';
export type { SchedulerConfig } from './scheduler/plugin.js';
export {
  schedulingGatesPlugin,
  prioritySortPlugin,
  nodeUnschedulablePlugin,
  nodeNamePlugin,
  taintTolerationPlugin,
  nodeAffinityPlugin,
  nodePortsPlugin,
  nodeResourcesFitPlugin,
  podTopologySpreadPlugin,
  interPodAffinityPlugin,
  defaultPreemptionPlugin,
  balancedAllocationPlugin,
  imageLocalityPlugin,
  defaultBinderPlugin,
};

/** Every plugin of the package: the framework plugins in the default profile's order, then the scheduler. */
const plugins: PluginDefinition[] = [
  schedulingGatesPlugin,
  prioritySortPlugin,
  nodeUnschedulablePlugin,
  nodeNamePlugin,
  taintTolerationPlugin,
  nodeAffinityPlugin,
  nodePortsPlugin,
  nodeResourcesFitPlugin,
  podTopologySpreadPlugin,
  interPodAffinityPlugin,
  defaultPreemptionPlugin,
  balancedAllocationPlugin,
  imageLocalityPlugin,
  defaultBinderPlugin,
  schedulerPlugin,
] as PluginDefinition[];
export default plugins;
