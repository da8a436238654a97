/**
 * NodeResourcesFit (Kubernetes `pkg/scheduler/framework/plugins/noderesources`, fit.go and the
 * resource allocation scorers):
 * - PreFilter: the pod's effective requests (containers, init and sidecar containers, overhead);
 * - Filter: Unschedulable with one reason per resource that does not fit: `Too many pods`,
 *   `Insufficient cpu`, `Insufficient memory`, `Insufficient ephemeral-storage`,
 *   `Insufficient <extended resource>` (`ignoredResources` / `ignoredResourceGroups` skip
 *   extended resources);
 * - PreScore/Score: the configured scoring strategy (`LeastAllocated`, `MostAllocated` or
 *   `RequestedToCapacityRatio`) over the configured resources and weights, with the requests of
 *   CPU and memory counted as Kubernetes' "non-zero" requests (100m / 200MB for a container that
 *   asks for none), the node's as its `nonZeroRequested`.
 *
 * @module
 */
import {
  isScalarResourceName,
  isExtendedResourceName,
  defineSchedulerPlugin,
  MAX_NODE_SCORE,
  Status,
  type ClusterEventWithHint,
  type FrameworkPlugin,
  type KubeObject,
  type NodeInfo,
  PodInfo,
  type Resource,
  type SchedulerPluginFactory,
  nodeAllocatable,
  podRequests,
} from '@kubernel/sdk';

/** The plugin's name in profiles. */
const NAME = 'NodeResourcesFit';
const PRE_FILTER_KEY = 'PreFilter' + NAME;
const PRE_SCORE_KEY = 'PreScore' + NAME;

/** Kubernetes' MaxCustomPriorityScore: the top of a RequestedToCapacityRatio shape's scores. */
const MAX_CUSTOM_PRIORITY_SCORE = 10;
/** Kubernetes' maxUtilization of RequestedToCapacityRatio. */
const MAX_UTILIZATION = 100;

/** A scoring strategy of NodeResourcesFit. */
export type ScoringStrategyType = 'LeastAllocated' | 'MostAllocated' | 'RequestedToCapacityRatio';

/** A resource scored, with its weight (1-100). */
export interface ResourceSpec {
  readonly name: string;
  readonly weight?: number;
}

/** A point of a RequestedToCapacityRatio shape: utilization 0-100 (%), score 0-10. */
export interface UtilizationShapePoint {
  readonly utilization: number;
  readonly score: number;
}

/** Args of NodeResourcesFit (Kubernetes' NodeResourcesFitArgs). */
export interface NodeResourcesFitArgs {
  /** Extended resources Filter does not check. */
  readonly ignoredResources?: readonly string[];
  /** Extended resource groups (the part before `/`) Filter does not check. */
  readonly ignoredResourceGroups?: readonly string[];
  readonly scoringStrategy?: {
    readonly type?: ScoringStrategyType;
    /** Default: cpu and memory, weight 1 each. */
    readonly resources?: readonly ResourceSpec[];
    readonly requestedToCapacityRatio?: { readonly shape?: readonly UtilizationShapePoint[] };
  };
}

const DEFAULT_RESOURCES: readonly ResourceSpec[] = [
  { name: 'cpu', weight: 1 },
  { name: 'memory', weight: 1 },
];

/** JSON Schema of {@link NodeResourcesFitArgs}, with Kubernetes' defaults. */
export const NODE_RESOURCES_FIT_ARGS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ignoredResources: { type: 'array', items: { type: 'string', minLength: 1 }, default: [] },
    ignoredResourceGroups: { type: 'array', items: { type: 'string', minLength: 1, pattern: '^[^/]+$' }, default: [] },
    scoringStrategy: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        type: { type: 'string', enum: ['LeastAllocated', 'MostAllocated', 'RequestedToCapacityRatio'], default: 'LeastAllocated' },
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
        requestedToCapacityRatio: {
          type: 'object',
          additionalProperties: false,
          properties: {
            shape: {
              type: 'array',
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['utilization', 'score'],
                properties: { utilization: { type: 'integer', minimum: 0, maximum: 100 }, score: { type: 'integer', minimum: 0, maximum: MAX_CUSTOM_PRIORITY_SCORE } },
              },
            },
          },
        },
      },
    },
  },
} as const;

/** Args with every default applied and validated. */
interface ResolvedFitArgs {
  readonly ignoredResources: ReadonlySet<string>;
  readonly ignoredResourceGroups: ReadonlySet<string>;
  readonly type: ScoringStrategyType;
  readonly resources: ReadonlyArray<{ readonly name: string; readonly weight: number }>;
  readonly shape: readonly UtilizationShapePoint[];
}

/**
 * Applies Kubernetes' defaults to NodeResourcesFit args (LeastAllocated over cpu and memory,
 * weight 0 or unset meaning 1) and validates them as Kubernetes does (throws on invalid args).
 */
export function resolveFitArgs(args: NodeResourcesFitArgs | undefined): ResolvedFitArgs {
  const ss = args?.scoringStrategy ?? {};
  const type = ss.type ?? 'LeastAllocated';
  if (type !== 'LeastAllocated' && type !== 'MostAllocated' && type !== 'RequestedToCapacityRatio') throw new Error(`scoringStrategy.type: Unsupported value: ${JSON.stringify(type)}`);
  const listed = ss.resources && ss.resources.length > 0 ? ss.resources : DEFAULT_RESOURCES;
  const resources = listed.map((r, i) => {
    const weight = r.weight === undefined || r.weight === 0 ? 1 : r.weight;
    if (!Number.isInteger(weight) || weight < 1 || weight > 100) throw new Error(`scoringStrategy.resources[${i}].weight: Invalid value: ${weight}: resource weight of ${r.name} should be in the range [1, 100]`);
    if (typeof r.name !== 'string' || r.name === '') throw new Error(`scoringStrategy.resources[${i}].name: Required value`);
    return { name: r.name, weight };
  });
  const seen = new Set<string>();
  resources.forEach((r, i) => {
    if (seen.has(r.name)) throw new Error(`scoringStrategy.resources[${i}].name: Duplicate value: ${JSON.stringify(r.name)}`);
    seen.add(r.name);
  });
  const shape = ss.requestedToCapacityRatio?.shape ?? [];
  if (type === 'RequestedToCapacityRatio') {
    if (shape.length === 0) throw new Error('scoringStrategy.requestedToCapacityRatio.shape: Required value: at least one point must be specified');
    shape.forEach((p, i) => {
      if (!Number.isInteger(p.utilization) || p.utilization < 0 || p.utilization > 100) throw new Error(`scoringStrategy.requestedToCapacityRatio.shape[${i}].utilization: Invalid value: ${p.utilization}: not in valid range [0, 100]`);
      if (i > 0 && p.utilization <= shape[i - 1]!.utilization) throw new Error(`scoringStrategy.requestedToCapacityRatio.shape[${i}].utilization: Invalid value: ${p.utilization}: utilization values must be sorted in increasing order`);
      if (!Number.isInteger(p.score) || p.score < 0 || p.score > MAX_CUSTOM_PRIORITY_SCORE) throw new Error(`scoringStrategy.requestedToCapacityRatio.shape[${i}].score: Invalid value: ${p.score}: not in valid range [0, ${MAX_CUSTOM_PRIORITY_SCORE}]`);
    });
  }
  for (const g of args?.ignoredResourceGroups ?? []) if (g.includes('/')) throw new Error(`ignoredResourceGroups: Invalid value: ${JSON.stringify(g)}: resource group name can't contain '/'`);
  return {
    ignoredResources: new Set(args?.ignoredResources ?? []),
    ignoredResourceGroups: new Set(args?.ignoredResourceGroups ?? []),
    type,
    resources,
    shape: shape.map((p) => ({ utilization: p.utilization, score: p.score * (MAX_NODE_SCORE / MAX_CUSTOM_PRIORITY_SCORE) })),
  };
}

// ---- Resource names ----------------------------------------------------------------------------


// ---- Filter ------------------------------------------------------------------------------------

/** What PreFilter computes: the pod's requests and the scalar resources Filter checks. */
interface PreFilterState {
  readonly requests: Resource;
  /** No CPU, memory, ephemeral storage or scalar request at all. */
  readonly empty: boolean;
  /** Scalar resources with a non-zero request that are not ignored, and their Filter reasons. */
  readonly scalars: readonly string[];
  readonly scalarReasons: readonly string[];
}

function preFilterState(requests: Resource, args: ResolvedFitArgs): PreFilterState {
  const scalars: string[] = [];
  let anyScalar = false;
  for (const name in requests.scalar) {
    anyScalar = true;
    if (requests.scalar[name] === 0) continue;
    if (isExtendedResourceName(name)) {
      const group = args.ignoredResourceGroups.size > 0 ? name.split('/')[0]! : '';
      if (args.ignoredResources.has(name) || args.ignoredResourceGroups.has(group)) continue;
    }
    scalars.push(name);
  }
  const empty = requests.milliCPU === 0 && requests.memory === 0 && requests.ephemeralStorage === 0 && !anyScalar;
  return { requests, empty, scalars, scalarReasons: scalars.map((n) => `Insufficient ${n}`) };
}

/** One resource the node lacks for the pod (Kubernetes' InsufficientResource). */
export interface InsufficientResource {
  readonly resourceName: string;
  readonly reason: string;
  readonly requested: number;
  readonly used: number;
  readonly capacity: number;
}

const BIT_PODS = 1;
const BIT_CPU = 2;
const BIT_MEMORY = 4;
const BIT_EPHEMERAL = 8;
const FIXED_REASONS: ReadonlyArray<readonly [number, string]> = [
  [BIT_PODS, 'Too many pods'],
  [BIT_CPU, 'Insufficient cpu'],
  [BIT_MEMORY, 'Insufficient memory'],
  [BIT_EPHEMERAL, 'Insufficient ephemeral-storage'],
];

/** Bits of the fixed resources that do not fit (pods, cpu, memory, ephemeral storage). */
function fixedMisfits(s: PreFilterState, nodeInfo: NodeInfo): number {
  const alloc = nodeInfo.allocatable;
  const used = nodeInfo.requested;
  let bits = 0;
  if (nodeInfo.pods.length + 1 > alloc.allowedPodNumber) bits |= BIT_PODS;
  if (s.empty) return bits;
  const r = s.requests;
  if (r.milliCPU > 0 && r.milliCPU > alloc.milliCPU - used.milliCPU) bits |= BIT_CPU;
  if (r.memory > 0 && r.memory > alloc.memory - used.memory) bits |= BIT_MEMORY;
  if (r.ephemeralStorage > 0 && r.ephemeralStorage > alloc.ephemeralStorage - used.ephemeralStorage) bits |= BIT_EPHEMERAL;
  return bits;
}

/**
 * Kubernetes' `fitsRequest`: every resource the node lacks for the pod, in Kubernetes' order
 * (pods, cpu, memory, ephemeral-storage, then scalar resources in the pod's order).
 */
export function insufficientResources(pod: KubeObject | PodInfo, nodeInfo: NodeInfo, args?: NodeResourcesFitArgs): InsufficientResource[] {
  const requests = pod instanceof PodInfo ? pod.requests : podRequests(pod);
  const s = preFilterState(requests, resolveFitArgs(args));
  const bits = fixedMisfits(s, nodeInfo);
  const out: InsufficientResource[] = [];
  const a = nodeInfo.allocatable;
  const u = nodeInfo.requested;
  if (bits & BIT_PODS) out.push({ resourceName: 'pods', reason: 'Too many pods', requested: 1, used: nodeInfo.pods.length, capacity: a.allowedPodNumber });
  if (bits & BIT_CPU) out.push({ resourceName: 'cpu', reason: 'Insufficient cpu', requested: requests.milliCPU, used: u.milliCPU, capacity: a.milliCPU });
  if (bits & BIT_MEMORY) out.push({ resourceName: 'memory', reason: 'Insufficient memory', requested: requests.memory, used: u.memory, capacity: a.memory });
  if (bits & BIT_EPHEMERAL) out.push({ resourceName: 'ephemeral-storage', reason: 'Insufficient ephemeral-storage', requested: requests.ephemeralStorage, used: u.ephemeralStorage, capacity: a.ephemeralStorage });
  s.scalars.forEach((name, i) => {
    const q = requests.scalar[name]!;
    if (q > (a.scalar[name] ?? 0) - (u.scalar[name] ?? 0)) out.push({ resourceName: name, reason: s.scalarReasons[i]!, requested: q, used: u.scalar[name] ?? 0, capacity: a.scalar[name] ?? 0 });
  });
  return out;
}

// ---- Scoring -----------------------------------------------------------------------------------

const enum Kind {
  Cpu,
  Memory,
  Ephemeral,
  Scalar,
}

/** A scored resource, resolved once per plugin. */
interface ScoredResource {
  readonly name: string;
  readonly kind: Kind;
  readonly weight: number;
  readonly scalar: boolean;
}

function scoredResources(resources: ResolvedFitArgs['resources']): ScoredResource[] {
  return resources.map((r) => ({
    name: r.name,
    weight: r.weight,
    kind: r.name === 'cpu' ? Kind.Cpu : r.name === 'memory' ? Kind.Memory : r.name === 'ephemeral-storage' ? Kind.Ephemeral : Kind.Scalar,
    scalar: isScalarResourceName(r.name),
  }));
}

/** The pod's request of each scored resource (non-zero CPU/memory requests, as Kubernetes' scorers use). */
function podRequestList(resources: readonly ScoredResource[], req: Resource): Float64Array {
  const out = new Float64Array(resources.length);
  resources.forEach((r, i) => {
    out[i] = r.kind === Kind.Cpu ? req.milliCPU : r.kind === Kind.Memory ? req.memory : r.kind === Kind.Ephemeral ? req.ephemeralStorage : (req.scalar[r.name] ?? 0);
  });
  return out;
}

/** Kubernetes' leastRequestedScore. */
export function leastRequestedScore(requested: number, capacity: number): number {
  if (capacity === 0 || requested > capacity) return 0;
  return Math.trunc(((capacity - requested) * MAX_NODE_SCORE) / capacity);
}

/** Kubernetes' mostRequestedScore. */
export function mostRequestedScore(requested: number, capacity: number): number {
  if (capacity === 0) return 0;
  if (requested > capacity) requested = capacity;
  return Math.trunc((requested * MAX_NODE_SCORE) / capacity);
}

/** Kubernetes' helper.BuildBrokenLinearFunction (integer arithmetic, truncating). */
export function brokenLinear(shape: readonly UtilizationShapePoint[], p: number): number {
  for (let i = 0; i < shape.length; i++) {
    const cur = shape[i]!;
    if (p <= cur.utilization) {
      if (i === 0) return cur.score;
      const prev = shape[i - 1]!;
      return prev.score + Math.trunc(((cur.score - prev.score) * (p - prev.utilization)) / (cur.utilization - prev.utilization));
    }
  }
  return shape[shape.length - 1]!.score;
}

/**
 * Scores one node for the pod with `strategy`: per scored resource, the node's allocatable and
 * its (non-zero) requested plus the pod's request, as Kubernetes' resourceAllocationScorer,
 * combined by the strategy's weighted formula.
 */
function scoreNode(args: ResolvedFitArgs, resources: readonly ScoredResource[], podReq: Float64Array, nodeInfo: NodeInfo): number {
  const alloc = nodeInfo.allocatable;
  const nonZero = nodeInfo.nonZeroRequested;
  const used = nodeInfo.requested;
  let nodeScore = 0;
  let weightSum = 0;
  for (let i = 0; i < resources.length; i++) {
    const r = resources[i]!;
    const p = podReq[i]!;
    let capacity: number;
    let requested: number;
    if (p === 0 && r.scalar) continue;
    switch (r.kind) {
      case Kind.Cpu:
        capacity = alloc.milliCPU;
        requested = nonZero.milliCPU + p;
        break;
      case Kind.Memory:
        capacity = alloc.memory;
        requested = nonZero.memory + p;
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
    let score: number;
    switch (args.type) {
      case 'LeastAllocated':
        score = leastRequestedScore(requested, capacity);
        break;
      case 'MostAllocated':
        score = mostRequestedScore(requested, capacity);
        break;
      default:
        score = requested > capacity ? brokenLinear(args.shape, MAX_UTILIZATION) : brokenLinear(args.shape, Math.trunc((requested * MAX_UTILIZATION) / capacity));
        if (score <= 0) continue;
    }
    nodeScore += score * r.weight;
    weightSum += r.weight;
  }
  if (weightSum === 0) return 0;
  return args.type === 'RequestedToCapacityRatio' ? Math.round(nodeScore / weightSum) : Math.trunc(nodeScore / weightSum);
}

// ---- Events ------------------------------------------------------------------------------------

function fitsEmptyNode(pod: KubeObject, node: KubeObject): boolean {
  const alloc = nodeAllocatable(node);
  const r = podRequests(pod);
  if (alloc.allowedPodNumber < 1) return false;
  if (r.milliCPU > alloc.milliCPU || r.memory > alloc.memory || r.ephemeralStorage > alloc.ephemeralStorage) return false;
  for (const name in r.scalar) if (r.scalar[name]! > 0 && r.scalar[name]! > (alloc.scalar[name] ?? 0)) return false;
  return true;
}

function requestedResourcesIncreased(pod: KubeObject, oldNode: KubeObject, newNode: KubeObject): boolean {
  const r = podRequests(pod);
  const a = nodeAllocatable(oldNode);
  const b = nodeAllocatable(newNode);
  if (b.allowedPodNumber > a.allowedPodNumber) return true;
  if ((r.milliCPU > 0 && b.milliCPU > a.milliCPU) || (r.memory > 0 && b.memory > a.memory) || (r.ephemeralStorage > 0 && b.ephemeralStorage > a.ephemeralStorage)) return true;
  for (const name in r.scalar) if (r.scalar[name]! > 0 && (b.scalar[name] ?? 0) > (a.scalar[name] ?? 0)) return true;
  return false;
}

/** Deleting a scheduled pod frees resources; a node added, or grown in what the pod asks for, may fit (Kubernetes' hints). */
const EVENTS: readonly ClusterEventWithHint[] = [
  {
    event: { resource: 'Pod', actions: ['Delete'] },
    hint: (_pod, deleted) => (deleted && !(deleted.spec as { nodeName?: string } | undefined)?.nodeName ? 'QueueSkip' : 'Queue'),
  },
  {
    event: { resource: 'Node', actions: ['Add', 'UpdateNodeAllocatable', 'UpdateNodeTaint', 'UpdateNodeLabel'] },
    hint: (pod, old, updated) => {
      if (!updated) return 'Queue';
      if (!fitsEmptyNode(pod, updated)) return 'QueueSkip';
      if (!old) return 'Queue';
      return requestedResourcesIncreased(pod, old, updated) ? 'Queue' : 'QueueSkip';
    },
  },
];

// ---- Plugin ------------------------------------------------------------------------------------

/** Makes a NodeResourcesFit plugin for `args` (defaults applied; throws on invalid args). */
export function createNodeResourcesFit(rawArgs: NodeResourcesFitArgs | undefined): FrameworkPlugin {
  const args = resolveFitArgs(rawArgs);
  const resources = scoredResources(args.resources);
  // Statuses for the fixed resources, by bit set, made once (Filter allocates nothing for them).
  const fixedStatuses = new Map<number, Status>();
  const fixedStatus = (bits: number): Status => {
    let s = fixedStatuses.get(bits);
    if (!s) fixedStatuses.set(bits, (s = new Status('Unschedulable', FIXED_REASONS.filter(([b]) => bits & b).map(([, r]) => r), NAME)));
    return s;
  };
  const stateOf = (state: { read<T>(k: string): T | undefined }, podInfo: PodInfo): PreFilterState => state.read<PreFilterState>(PRE_FILTER_KEY) ?? preFilterState(podInfo.requests, args);

  return {
    name: NAME,
    preFilter(state, _pod, podInfo) {
      state.write(PRE_FILTER_KEY, preFilterState(podInfo.requests, args));
      return undefined;
    },
    filter(state, _pod, podInfo, nodeInfo) {
      const s = stateOf(state, podInfo);
      const bits = fixedMisfits(s, nodeInfo);
      let scalarReasons: string[] | undefined;
      if (!s.empty) {
        const alloc = nodeInfo.allocatable.scalar;
        const used = nodeInfo.requested.scalar;
        for (let i = 0; i < s.scalars.length; i++) {
          const name = s.scalars[i]!;
          if (s.requests.scalar[name]! > (alloc[name] ?? 0) - (used[name] ?? 0)) (scalarReasons ??= []).push(s.scalarReasons[i]!);
        }
      }
      if (scalarReasons) return new Status('Unschedulable', [...fixedStatus(bits).reasons, ...scalarReasons], NAME);
      return bits === 0 ? undefined : fixedStatus(bits);
    },
    preScore(state, _pod, podInfo) {
      state.write(PRE_SCORE_KEY, podRequestList(resources, podInfo.nonZeroRequests));
      return undefined;
    },
    score(state, _pod, podInfo, nodeInfo) {
      const podReq = state.read<Float64Array>(PRE_SCORE_KEY) ?? podRequestList(resources, podInfo.nonZeroRequests);
      return scoreNode(args, resources, podReq, nodeInfo);
    },
    eventsToRegister: () => EVENTS,
  };
}

/** The NodeResourcesFit factory (PreFilter, Filter, PreScore, Score; args {@link NodeResourcesFitArgs}). */
export const nodeResourcesFitFactory: SchedulerPluginFactory = {
  name: NAME,
  argsSchema: NODE_RESOURCES_FIT_ARGS_SCHEMA,
  create: (args) => createNodeResourcesFit(args as NodeResourcesFitArgs | undefined),
};

/** The NodeResourcesFit plugin (id `scheduler-node-resources-fit`). */
export const nodeResourcesFitPlugin = defineSchedulerPlugin({
  id: 'scheduler-node-resources-fit',
  version: '0.1.0',
  description: 'NodeResourcesFit: filters nodes without room for the pod\'s requests and scores them by the configured strategy (LeastAllocated, MostAllocated, RequestedToCapacityRatio).',
  factory: nodeResourcesFitFactory,
});
