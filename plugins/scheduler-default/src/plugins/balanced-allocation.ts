/**
 * NodeResourcesBalancedAllocation (Kubernetes `pkg/scheduler/framework/plugins/noderesources`,
 * balanced_allocation.go): a Score plugin that favours nodes whose resource utilizations, with
 * the pod placed, are close to each other. For each configured resource the node allocates, the
 * fraction requested/allocatable (capped at 1) is taken, with the node's and the pod's actual
 * requests (not the "non-zero" scoring defaults); the score is `(1 - std) * 100` truncated, where
 * std is the fractions' standard deviation (`|f1 - f2| / 2` for two resources).
 *
 * @module
 */
import { isScalarResourceName, defineSchedulerPlugin, MAX_NODE_SCORE, type FrameworkPlugin, type NodeInfo, type Resource, type SchedulerPluginFactory } from '@kubernel/sdk';

/** The plugin's name in profiles. */
const NAME = 'NodeResourcesBalancedAllocation';
const PRE_SCORE_KEY = 'PreScore' + NAME;

/** A resource taken into account (weights are accepted but, as in Kubernetes, do not change the score). */
export interface BalancedResourceSpec {
  readonly name: string;
  readonly weight?: number;
}

/** Args of NodeResourcesBalancedAllocation (Kubernetes' NodeResourcesBalancedAllocationArgs). */
export interface BalancedAllocationArgs {
  /** Default: cpu and memory, weight 1 each. */
  readonly resources?: readonly BalancedResourceSpec[];
}

const DEFAULT_RESOURCES: readonly BalancedResourceSpec[] = [
  { name: 'cpu', weight: 1 },
  { name: 'memory', weight: 1 },
];

/** JSON Schema of {@link BalancedAllocationArgs}, with Kubernetes' defaults. */
export const BALANCED_ALLOCATION_ARGS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    resources: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: { name: { type: 'string', minLength: 1 }, weight: { type: 'integer', minimum: 0, maximum: 100, default: 1 } },
      },
      default: DEFAULT_RESOURCES.map((r) => ({ ...r })),
    },
  },
} as const;

const enum Kind {
  Cpu,
  Memory,
  Ephemeral,
  Scalar,
}

interface ScoredResource {
  readonly name: string;
  readonly kind: Kind;
  /** Kubernetes' IsScalarResourceName. */
  readonly scalar: boolean;
}

/** The configured resources with Kubernetes' defaults applied; throws on invalid args. */
function resolveResources(args: BalancedAllocationArgs | undefined): ScoredResource[] {
  const listed = args?.resources && args.resources.length > 0 ? args.resources : DEFAULT_RESOURCES;
  const seen = new Set<string>();
  return listed.map((r, i) => {
    const weight = r.weight === undefined || r.weight === 0 ? 1 : r.weight;
    if (typeof r.name !== 'string' || r.name === '') throw new Error(`resources[${i}].name: Required value`);
    if (!Number.isInteger(weight) || weight < 1 || weight > 100) throw new Error(`resources[${i}].weight: Invalid value: ${weight}: resource weight of ${r.name} should be in the range [1, 100]`);
    if (seen.has(r.name)) throw new Error(`resources[${i}].name: Duplicate value: ${JSON.stringify(r.name)}`);
    seen.add(r.name);
    const kind = r.name === 'cpu' ? Kind.Cpu : r.name === 'memory' ? Kind.Memory : r.name === 'ephemeral-storage' ? Kind.Ephemeral : Kind.Scalar;
    return { name: r.name, kind, scalar: isScalarResourceName(r.name) };
  });
}

function podRequestList(resources: readonly ScoredResource[], req: Resource): Float64Array {
  const out = new Float64Array(resources.length);
  resources.forEach((r, i) => {
    out[i] = r.kind === Kind.Cpu ? req.milliCPU : r.kind === Kind.Memory ? req.memory : r.kind === Kind.Ephemeral ? req.ephemeralStorage : (req.scalar[r.name] ?? 0);
  });
  return out;
}

/**
 * Kubernetes' balancedResourceScorer over the fractions in `fractions[0..n)`: `(1 - std) * 100`
 * truncated; std is 0 for fewer than two fractions.
 */
export function balancedScore(fractions: ArrayLike<number>, n: number): number {
  let std = 0;
  if (n === 2) std = Math.abs((fractions[0]! - fractions[1]!) / 2);
  else if (n > 2) {
    let total = 0;
    for (let i = 0; i < n; i++) total += fractions[i]!;
    const mean = total / n;
    let sum = 0;
    for (let i = 0; i < n; i++) sum = sum + (fractions[i]! - mean) * (fractions[i]! - mean);
    std = Math.sqrt(sum / n);
  }
  return Math.trunc((1 - std) * MAX_NODE_SCORE);
}

/** A node's score for the pod's requests `podReq` (one per resource), with `scratch` for the fractions. */
function scoreNode(resources: readonly ScoredResource[], podReq: Float64Array, nodeInfo: NodeInfo, scratch: Float64Array): number {
  const alloc = nodeInfo.allocatable;
  const used = nodeInfo.requested;
  let n = 0;
  for (let i = 0; i < resources.length; i++) {
    const r = resources[i]!;
    const p = podReq[i]!;
    if (p === 0 && r.scalar) continue;
    let capacity: number;
    let requested: number;
    switch (r.kind) {
      case Kind.Cpu:
        capacity = alloc.milliCPU;
        requested = used.milliCPU + p;
        break;
      case Kind.Memory:
        capacity = alloc.memory;
        requested = used.memory + p;
        break;
      case Kind.Ephemeral:
        capacity = alloc.ephemeralStorage;
        requested = used.ephemeralStorage + p;
        break;
      default: {
        const a = alloc.scalar[r.name];
        if (a === undefined) continue;
        capacity = a;
        requested = (used.scalar[r.name] ?? 0) + p;
      }
    }
    if (capacity === 0) continue;
    const fraction = requested / capacity;
    scratch[n++] = fraction > 1 ? 1 : fraction;
  }
  return balancedScore(scratch, n);
}

/** Makes a NodeResourcesBalancedAllocation plugin for `args` (defaults applied; throws on invalid args). */
export function createBalancedAllocation(args: BalancedAllocationArgs | undefined): FrameworkPlugin {
  const resources = resolveResources(args);
  const scratch = new Float64Array(resources.length);
  return {
    name: NAME,
    preScore(state, _pod, podInfo) {
      state.write(PRE_SCORE_KEY, podRequestList(resources, podInfo.requests));
      return undefined;
    },
    score(state, _pod, podInfo, nodeInfo) {
      const podReq = state.read<Float64Array>(PRE_SCORE_KEY) ?? podRequestList(resources, podInfo.requests);
      return scoreNode(resources, podReq, nodeInfo, scratch);
    },
  };
}

/** The NodeResourcesBalancedAllocation factory (PreScore, Score; args {@link BalancedAllocationArgs}). */
export const balancedAllocationFactory: SchedulerPluginFactory = {
  name: NAME,
  argsSchema: BALANCED_ALLOCATION_ARGS_SCHEMA,
  create: (args) => createBalancedAllocation(args as BalancedAllocationArgs | undefined),
};

/** The NodeResourcesBalancedAllocation plugin (id `scheduler-node-resources-balanced-allocation`). */
export const balancedAllocationPlugin = defineSchedulerPlugin({
  id: 'scheduler-node-resources-balanced-allocation',
  version: '0.1.0',
  description: 'NodeResourcesBalancedAllocation: prefers nodes whose CPU and memory (or configured resources) utilizations stay balanced with the pod placed.',
  factory: balancedAllocationFactory,
});
