/**
 * Scheduling profiles (KubeSchedulerConfiguration's `profiles[]`): which framework plugins run at
 * which extension point, with which score weights and args, per `schedulerName`; and how a
 * profile is merged onto the default one, with Kubernetes' rules.
 *
 * @module
 */
import { EXTENSION_POINTS, implementsPoint, type ExtensionPoint, type FrameworkPlugin } from './framework.js';

/** A plugin enabled in a profile, with its score weight. */
export interface PluginRef {
  readonly name: string;
  /** Score weight (>= 1; 1 when left out). */
  readonly weight?: number;
}

/** Plugins enabled and disabled at one extension point; `{name: "*"}` in `disabled` disables every default. */
export interface PluginSet {
  readonly enabled?: readonly PluginRef[];
  readonly disabled?: readonly { readonly name: string }[];
}

/** Per extension point, plus `multiPoint`: plugins enabled at every point they implement. */
export type ProfilePlugins = Partial<Record<ExtensionPoint | 'multiPoint', PluginSet>>;

/** One profile. */
export interface SchedulerProfile {
  /** Pods with this `spec.schedulerName` use the profile. */
  readonly schedulerName: string;
  readonly plugins?: ProfilePlugins;
  /** Args per plugin name. */
  readonly pluginConfig?: readonly { readonly name: string; readonly args?: unknown }[];
  /** Overrides the scheduler's `percentageOfNodesToScore` (0-100; 0: adaptive). */
  readonly percentageOfNodesToScore?: number;
}

/**
 * Kubernetes' default profile (v1.30): every default plugin through `multiPoint`, with the default
 * score weights. Volume plugins are listed by the scheduler that implements them.
 */
export const DEFAULT_MULTI_POINT: readonly PluginRef[] = [
  { name: 'SchedulingGates' },
  { name: 'PrioritySort' },
  { name: 'NodeUnschedulable' },
  { name: 'NodeName' },
  { name: 'TaintToleration', weight: 3 },
  { name: 'NodeAffinity', weight: 2 },
  { name: 'NodePorts' },
  { name: 'NodeResourcesFit', weight: 1 },
  { name: 'PodTopologySpread', weight: 2 },
  { name: 'InterPodAffinity', weight: 2 },
  { name: 'DefaultPreemption' },
  { name: 'NodeResourcesBalancedAllocation', weight: 1 },
  { name: 'ImageLocality', weight: 1 },
  { name: 'DefaultBinder' },
];

/** The default scheduler name. */
export const DEFAULT_SCHEDULER_NAME = 'default-scheduler';

/**
 * Merges a custom plugin set onto a default one, as Kubernetes does: defaults keep their order
 * unless disabled (by name, or all with `*`); a custom entry naming a default replaces it in
 * place (its weight wins); the other custom entries follow, in their order.
 */
export function mergePluginSet(defaults: PluginSet | undefined, custom: PluginSet | undefined): PluginSet {
  const disabled = new Set((custom?.disabled ?? []).map((d) => d.name));
  const customEnabled = new Map((custom?.enabled ?? []).map((p) => [p.name, p]));
  const replaced = new Set<string>();
  const enabled: PluginRef[] = [];
  for (const p of defaults?.enabled ?? []) {
    if (disabled.has('*') || disabled.has(p.name)) continue;
    const c = customEnabled.get(p.name);
    if (c) {
      enabled.push(c);
      replaced.add(p.name);
    } else enabled.push(p);
  }
  for (const p of custom?.enabled ?? []) if (!replaced.has(p.name)) enabled.push(p);
  return { enabled, disabled: custom?.disabled ?? [] };
}

/** The default profile for `schedulerName`. */
export function defaultProfile(schedulerName = DEFAULT_SCHEDULER_NAME): SchedulerProfile {
  return { schedulerName, plugins: { multiPoint: { enabled: DEFAULT_MULTI_POINT } } };
}

/** A profile merged onto the default plugins (every extension point and multiPoint). */
export function mergeProfile(custom: SchedulerProfile, defaults: SchedulerProfile = defaultProfile(custom.schedulerName)): SchedulerProfile {
  const plugins: ProfilePlugins = {};
  for (const point of [...EXTENSION_POINTS, 'multiPoint'] as const) {
    const merged = mergePluginSet(defaults.plugins?.[point], custom.plugins?.[point]);
    if ((merged.enabled?.length ?? 0) > 0 || (merged.disabled?.length ?? 0) > 0) plugins[point] = merged;
  }
  return { ...custom, plugins };
}

/** The plugins of one extension point, in run order, with their weights (score). */
export interface PointPlugins<P = FrameworkPlugin> {
  readonly plugins: readonly P[];
  /** Score weight by plugin name. */
  readonly weights: ReadonlyMap<string, number>;
}

/**
 * Which plugin runs at which extension point for a (merged) profile, given the plugins made for
 * it: the point's own `enabled` entries first, then the `multiPoint` plugins that implement the
 * point and are neither listed nor disabled there.
 *
 * @throws {Error} naming a plugin the profile enables at a point it does not implement, or a
 * profile with other than exactly one QueueSort or with no Bind plugin.
 */
export function pluginsByPoint(profile: SchedulerProfile, made: ReadonlyMap<string, FrameworkPlugin>): Record<ExtensionPoint, PointPlugins> {
  const out = {} as Record<ExtensionPoint, PointPlugins>;
  const multi = profile.plugins?.multiPoint?.enabled ?? [];
  const multiDisabled = new Set((profile.plugins?.multiPoint?.disabled ?? []).map((d) => d.name));
  for (const point of EXTENSION_POINTS) {
    const set = profile.plugins?.[point];
    const disabled = new Set((set?.disabled ?? []).map((d) => d.name));
    const plugins: FrameworkPlugin[] = [];
    const weights = new Map<string, number>();
    const seen = new Set<string>();
    for (const ref of set?.enabled ?? []) {
      const p = made.get(ref.name);
      if (!p) throw new Error(`profile ${profile.schedulerName}: plugin ${ref.name} (enabled at ${point}) is not available`);
      if (!implementsPoint(p, point)) throw new Error(`profile ${profile.schedulerName}: plugin ${ref.name} does not implement ${point}`);
      if (seen.has(ref.name)) continue;
      seen.add(ref.name);
      plugins.push(p);
      weights.set(ref.name, Math.max(1, ref.weight ?? 1));
    }
    if (!disabled.has('*')) {
      for (const ref of multi) {
        if (seen.has(ref.name) || disabled.has(ref.name) || multiDisabled.has(ref.name)) continue;
        const p = made.get(ref.name);
        if (!p || !implementsPoint(p, point)) continue;
        seen.add(ref.name);
        plugins.push(p);
        weights.set(ref.name, Math.max(1, ref.weight ?? 1));
      }
    }
    out[point] = { plugins, weights };
  }
  if (out.queueSort.plugins.length !== 1) throw new Error(`profile ${profile.schedulerName}: exactly one QueueSort plugin must be enabled, not ${out.queueSort.plugins.length} (${out.queueSort.plugins.map((p) => p.name).join(', ') || 'none'})`);
  if (out.bind.plugins.length === 0) throw new Error(`profile ${profile.schedulerName}: at least one Bind plugin must be enabled`);
  return out;
}

/** Every plugin name a (merged) profile enables anywhere. */
export function enabledPluginNames(profile: SchedulerProfile): string[] {
  const names = new Set<string>();
  for (const set of Object.values(profile.plugins ?? {})) for (const p of set?.enabled ?? []) names.add(p.name);
  return [...names];
}
