/**
 * Container and pod resources as the kubelet turns them into cgroup settings: a container's
 * requests and limits become CRI `LinuxContainerResources` (`kuberuntime`'s
 * `generateLinuxContainerResources` / `calculateLinuxResources`), its OOM score adjustment follows
 * the pod's QoS class (`pkg/kubelet/qos` `GetContainerOOMScoreAdjust`), and the pod as a whole gets
 * a cgroup under its QoS class's parent with summed limits (`pkg/kubelet/cm`
 * `ResourceConfigForPod`, `resource.PodRequests` / `PodLimits`).
 *
 * Everything here is pure: no I/O, no clock. Quantities are summed exactly (bigint nano-units) and
 * converted as `resource.Quantity` does (`Value()` and `MilliValue()` round up).
 *
 * Only `cpu` and `memory` are converted (no hugepages, swap or memory QoS, which are off by
 * default in Kubernetes 1.32); the CFS quota is always enforced unless the caller turns it off, as
 * the kubelet's `cpuCFSQuota` default does.
 *
 * @module
 */
import { parseQuantity, type LinuxContainerResources } from '@kubernel/sdk';
import { isRestartableInitContainer, qosClass, type QosClass, type V1Container, type V1Pod, type V1PodSpec } from './pod-status.js';

export { qosClass };
export type { QosClass };

// ---------------------------------------------------------------------------------------------
// Constants (the kubelet's)
// ---------------------------------------------------------------------------------------------

/** CPU shares per CPU (`cm.SharesPerCPU`). */
export const SHARES_PER_CPU = 1024;
/** The smallest cpu.shares value (`cm.MinShares`): what a container without a CPU request gets. */
export const MIN_SHARES = 2;
/** The largest cpu.shares value (`cm.MaxShares`). */
export const MAX_SHARES = 262_144;
/** The CFS period in microseconds (`cm.QuotaPeriod`, 100 ms). */
export const QUOTA_PERIOD_US = 100_000;
/** The smallest CFS quota in microseconds (`cm.MinQuotaPeriod`, 1 ms). */
export const MIN_QUOTA_PERIOD_US = 1000;
/** The OOM score adjustment of Guaranteed containers and node-critical pods. */
export const GUARANTEED_OOM_SCORE_ADJ = -997;
/** The OOM score adjustment of BestEffort containers. */
export const BESTEFFORT_OOM_SCORE_ADJ = 1000;
/** The priority from which a pod is critical (`scheduling.SystemCriticalPriority`). */
export const SYSTEM_CRITICAL_PRIORITY = 2_000_000_000;

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/** `core/v1` `Pod`: the fields resource conversion reads. */
export interface V1ResourcePod extends V1Pod {
  readonly metadata?: V1Pod['metadata'] & { readonly annotations?: Readonly<Record<string, string>> };
  readonly spec: V1PodSpec & {
    /** Resources the pod's sandbox consumes on top of its containers (RuntimeClass overhead). */
    readonly overhead?: Readonly<Record<string, string>>;
    readonly priority?: number;
    readonly priorityClassName?: string;
  };
}

/** Options of {@link containerResources}. */
export interface ContainerResourceOptions {
  /** The node's memory capacity in bytes (the denominator of the Burstable OOM score). */
  readonly nodeMemoryCapacity: number;
  /** Enforce CPU limits with a CFS quota (the kubelet's `cpuCFSQuota`). Default true. */
  readonly cpuCfsQuota?: boolean;
  /** The CFS period in microseconds (the kubelet's `cpuCFSQuotaPeriod`). Default {@link QUOTA_PERIOD_US}. */
  readonly cpuCfsQuotaPeriodUs?: number;
}

/**
 * A pod-level cgroup configuration (the kubelet's `ResourceConfig`): only the members that are set
 * are written; an absent one leaves the cgroup's default (unlimited).
 */
export interface PodResourceConfig {
  /** cpu.shares. */
  readonly cpuShares?: number;
  /** cpu.cfs_quota_us: -1 means unlimited. */
  readonly cpuQuota?: number;
  /** cpu.cfs_period_us. */
  readonly cpuPeriod?: number;
  /** memory.limit_in_bytes (0 means unlimited, as the kubelet writes for a Guaranteed pod without limits, which cannot happen). */
  readonly memoryLimitInBytes?: number;
  /** pids.max (the kubelet's `podPidsLimit`); absent or -1: unlimited. */
  readonly pidsLimit?: number;
}

/** Options of {@link podResourceConfig}. */
export interface PodResourceOptions {
  /** Enforce CPU limits (the kubelet's `cpuCFSQuota`). Default true. */
  readonly enforceCpuLimits?: boolean;
  /** The CFS period in microseconds. Default {@link QUOTA_PERIOD_US}. */
  readonly cpuPeriodUs?: number;
  /** The kubelet's `podPidsLimit` (pids.max of every pod cgroup). Default: none. */
  readonly podPidsLimit?: number;
}

/** Resource amounts by name, in nano-units (exact). */
export type ResourceAmounts = Map<string, bigint>;

// ---------------------------------------------------------------------------------------------
// Quantities
// ---------------------------------------------------------------------------------------------

const NANO = 1_000_000_000n;
const NANO_PER_MILLI = 1_000_000n;

function nanosOf(text: string | undefined): bigint {
  if (text === undefined) return 0n;
  try {
    return parseQuantity(text).nanos;
  } catch {
    return 0n;
  }
}

/** `Quantity.Value()`: the whole value, rounded up. */
function valueOf(nanos: bigint): number {
  if (nanos <= 0n) return nanos === 0n ? 0 : -Number(-nanos / NANO);
  return Number((nanos + NANO - 1n) / NANO);
}

/** `Quantity.MilliValue()`: the value in thousandths, rounded up. */
function milliOf(nanos: bigint): number {
  if (nanos <= 0n) return nanos === 0n ? 0 : -Number(-nanos / NANO_PER_MILLI);
  return Number((nanos + NANO_PER_MILLI - 1n) / NANO_PER_MILLI);
}

/**
 * A container's requests as the API server defaults them: a resource with a limit but no request
 * is requested at its limit.
 */
export function effectiveRequests(container: V1Container): Readonly<Record<string, string>> {
  return { ...(container.resources?.limits ?? {}), ...(container.resources?.requests ?? {}) };
}

// ---------------------------------------------------------------------------------------------
// CPU conversions
// ---------------------------------------------------------------------------------------------

/** `MilliCPUToShares`: 1024 shares per CPU, at least {@link MIN_SHARES}, at most {@link MAX_SHARES}; 0 → the minimum. */
export function milliCpuToShares(milliCpu: number): number {
  if (milliCpu <= 0) return MIN_SHARES;
  const shares = Math.floor((milliCpu * SHARES_PER_CPU) / 1000);
  return Math.min(MAX_SHARES, Math.max(MIN_SHARES, shares));
}

/** `milliCPUToQuota`: the CFS quota of a CPU limit per `periodUs`; 0 without a limit, at least {@link MIN_QUOTA_PERIOD_US}. */
export function milliCpuToQuota(milliCpu: number, periodUs: number = QUOTA_PERIOD_US): number {
  if (milliCpu <= 0) return 0;
  const quota = Math.floor((milliCpu * periodUs) / 1000);
  return Math.max(MIN_QUOTA_PERIOD_US, quota);
}

// ---------------------------------------------------------------------------------------------
// QoS, criticality, OOM score
// ---------------------------------------------------------------------------------------------

/**
 * `IsNodeCriticalPod`: a critical pod (priority at or above {@link SYSTEM_CRITICAL_PRIORITY}, or a
 * static/mirror pod) in the `system-node-critical` priority class.
 */
export function isNodeCriticalPod(pod: V1ResourcePod): boolean {
  if (pod.spec.priorityClassName !== 'system-node-critical') return false;
  const annotations = pod.metadata?.annotations ?? {};
  const staticPod = annotations['kubernetes.io/config.source'] !== undefined && annotations['kubernetes.io/config.source'] !== 'api';
  const mirror = annotations['kubernetes.io/config.mirror'] !== undefined;
  return staticPod || mirror || (pod.spec.priority ?? 0) >= SYSTEM_CRITICAL_PRIORITY;
}

/** The effective memory request of a container in bytes (rounded up). */
function memoryRequestBytes(container: V1Container): number {
  return valueOf(nanosOf(effectiveRequests(container)['memory']));
}

/**
 * `GetContainerOOMScoreAdjust`: -997 for Guaranteed pods and node-critical pods, 1000 for
 * BestEffort; for Burstable `1000 - 1000 * memoryRequest / nodeMemoryCapacity` (integer division),
 * held within [3, 999] (never as low as a Guaranteed pod using all memory, never as high as
 * BestEffort). A sidecar (restartable init container) is never scored above the regular container
 * with the smallest memory request.
 */
export function oomScoreAdj(pod: V1ResourcePod, container: V1Container, nodeMemoryCapacity: number): number {
  if (isNodeCriticalPod(pod)) return GUARANTEED_OOM_SCORE_ADJ;
  const qos = qosClass(pod);
  if (qos === 'Guaranteed') return GUARANTEED_OOM_SCORE_ADJ;
  if (qos === 'BestEffort') return BESTEFFORT_OOM_SCORE_ADJ;
  if (!(nodeMemoryCapacity > 0)) throw new Error('oomScoreAdj: the node memory capacity must be positive');
  const capacity = BigInt(Math.floor(nodeMemoryCapacity));
  const score = (request: number): number => Number(1000n - (1000n * BigInt(request)) / capacity);
  let adj = score(memoryRequestBytes(container));
  const sidecar = (pod.spec.initContainers ?? []).some((c) => c.name === container.name && isRestartableInitContainer(c));
  if (sidecar && pod.spec.containers.length > 0) {
    const minRegular = Math.min(...pod.spec.containers.map(memoryRequestBytes));
    adj = Math.min(adj, score(minRegular));
  }
  if (adj < 1000 + GUARANTEED_OOM_SCORE_ADJ) return 1000 + GUARANTEED_OOM_SCORE_ADJ;
  if (adj === BESTEFFORT_OOM_SCORE_ADJ) return adj - 1;
  return adj;
}

// ---------------------------------------------------------------------------------------------
// Container resources
// ---------------------------------------------------------------------------------------------

/**
 * A container's CRI `LinuxContainerResources`, as `generateLinuxContainerResources`:
 *
 * - `cpuShares` from the CPU request ({@link milliCpuToShares}); with no request but a limit, from
 *   the limit; with neither, {@link MIN_SHARES};
 * - `cpuPeriod` {@link QUOTA_PERIOD_US} and `cpuQuota` from the CPU limit ({@link milliCpuToQuota};
 *   0, unlimited, without one) when the CFS quota is enforced;
 * - `memoryLimitInBytes` from the memory limit (absent without one);
 * - `oomScoreAdj` from the pod's QoS class ({@link oomScoreAdj}).
 */
export function containerResources(pod: V1ResourcePod, container: V1Container, opts: ContainerResourceOptions): LinuxContainerResources {
  const requests = container.resources?.requests ?? {};
  const limits = container.resources?.limits ?? {};
  const cpuRequest = milliOf(nanosOf(requests['cpu']));
  const cpuLimit = milliOf(nanosOf(limits['cpu']));
  const memoryLimit = valueOf(nanosOf(limits['memory']));
  const cpuShares = cpuRequest === 0 && cpuLimit !== 0 ? milliCpuToShares(cpuLimit) : milliCpuToShares(cpuRequest);
  const period = opts.cpuCfsQuotaPeriodUs ?? QUOTA_PERIOD_US;
  return {
    cpuShares,
    ...(opts.cpuCfsQuota === false ? {} : { cpuPeriod: period, cpuQuota: milliCpuToQuota(cpuLimit, period) }),
    ...(memoryLimit !== 0 ? { memoryLimitInBytes: memoryLimit } : {}),
    oomScoreAdj: oomScoreAdj(pod, container, opts.nodeMemoryCapacity),
  };
}

// ---------------------------------------------------------------------------------------------
// Pod totals
// ---------------------------------------------------------------------------------------------

function add(into: ResourceAmounts, list: Readonly<Record<string, string>>): void {
  for (const [name, text] of Object.entries(list)) into.set(name, (into.get(name) ?? 0n) + nanosOf(text));
}

function maxInto(into: ResourceAmounts, other: ResourceAmounts): void {
  for (const [name, v] of other) if (v > (into.get(name) ?? -1n)) into.set(name, v);
}

/**
 * The pod's total of one kind of amounts (`resource.PodRequests` / `PodLimits`): the sum over
 * regular containers and sidecars, or, when larger, what the biggest init container needs while it
 * runs (itself plus the sidecars started before it), per resource; then the overhead.
 */
function podTotals(pod: V1ResourcePod, of: (c: V1Container) => Readonly<Record<string, string>>, overheadOnlyWhereSet: boolean): ResourceAmounts {
  const total: ResourceAmounts = new Map();
  for (const c of pod.spec.containers) add(total, of(c));
  const sidecars: ResourceAmounts = new Map();
  const initMax: ResourceAmounts = new Map();
  for (const c of pod.spec.initContainers ?? []) {
    const own = of(c);
    if (isRestartableInitContainer(c)) {
      add(total, own);
      add(sidecars, own);
      maxInto(initMax, sidecars);
    } else {
      const running: ResourceAmounts = new Map(sidecars);
      add(running, own);
      maxInto(initMax, running);
    }
  }
  maxInto(total, initMax);
  for (const [name, text] of Object.entries(pod.spec.overhead ?? {})) {
    if (overheadOnlyWhereSet && !total.has(name)) continue;
    total.set(name, (total.get(name) ?? 0n) + nanosOf(text));
  }
  return total;
}

/** The pod's requests (`resource.PodRequests`, with requests defaulted from limits), in nano-units by resource. */
export function podRequests(pod: V1ResourcePod): ResourceAmounts {
  return podTotals(pod, effectiveRequests, false);
}

/** The pod's limits (`resource.PodLimits`: overhead is added only to resources that have a limit), in nano-units by resource. */
export function podLimits(pod: V1ResourcePod): ResourceAmounts {
  return podTotals(pod, (c) => c.resources?.limits ?? {}, true);
}

/**
 * The pod cgroup's settings (`ResourceConfigForPod`):
 *
 * - Guaranteed: cpu.shares from the summed CPU requests, the CFS quota from the summed CPU limits,
 *   memory limited to the summed memory limits;
 * - Burstable: cpu.shares from the summed CPU requests; the quota only when every container has a
 *   CPU limit, the memory limit only when every container has a memory limit;
 * - BestEffort: cpu.shares {@link MIN_SHARES} only.
 *
 * Overhead counts in both sums. With `enforceCpuLimits: false` the quota is -1 (unlimited).
 */
export function podResourceConfig(pod: V1ResourcePod, opts: PodResourceOptions = {}): PodResourceConfig {
  const period = opts.cpuPeriodUs ?? QUOTA_PERIOD_US;
  let cpuLimitsDeclared = true;
  let memoryLimitsDeclared = true;
  for (const c of [...pod.spec.containers, ...(pod.spec.initContainers ?? [])]) {
    const limits = c.resources?.limits ?? {};
    if (nanosOf(limits['cpu']) === 0n) cpuLimitsDeclared = false;
    if (nanosOf(limits['memory']) === 0n) memoryLimitsDeclared = false;
  }
  const requests = podRequests(pod);
  const limits = podLimits(pod);
  const cpuShares = milliCpuToShares(milliOf(requests.get('cpu') ?? 0n));
  const cpuQuota = opts.enforceCpuLimits === false ? -1 : milliCpuToQuota(milliOf(limits.get('cpu') ?? 0n), period);
  const memory = valueOf(limits.get('memory') ?? 0n);
  const pids = opts.podPidsLimit !== undefined && opts.podPidsLimit > 0 ? { pidsLimit: opts.podPidsLimit } : {};
  switch (qosClass(pod)) {
    case 'Guaranteed':
      return { cpuShares, cpuQuota, cpuPeriod: period, memoryLimitInBytes: memory, ...pids };
    case 'Burstable':
      return {
        cpuShares,
        ...(cpuLimitsDeclared ? { cpuQuota, cpuPeriod: period } : {}),
        ...(memoryLimitsDeclared ? { memoryLimitInBytes: memory } : {}),
        ...pids,
      };
    default:
      return { cpuShares: MIN_SHARES, ...pids };
  }
}

// ---------------------------------------------------------------------------------------------
// Cgroup names
// ---------------------------------------------------------------------------------------------

/** The default name of the cgroup every pod lives under (the kubelet's `kubepods`). */
export const DEFAULT_CGROUP_ROOT = 'kubepods';

/** The QoS-level parent cgroup of a class, relative to the hierarchy root (`/kubepods/burstable`). */
export function qosCgroupName(qos: QosClass, root: string = DEFAULT_CGROUP_ROOT): string {
  const base = `/${trimSlashes(root)}`;
  if (qos === 'Guaranteed') return base;
  return `${base}/${qos === 'Burstable' ? 'burstable' : 'besteffort'}`;
}

/**
 * The pod's cgroup for the cgroupfs driver, relative to each hierarchy's root: what goes into
 * `LinuxPodSandboxConfig.cgroupParent` (`/kubepods/pod<uid>` for Guaranteed,
 * `/kubepods/burstable/pod<uid>`, `/kubepods/besteffort/pod<uid>`). `root` replaces `kubepods`
 * (e.g. `kubernel-test-1/kubepods`).
 *
 * @throws {Error} when the pod has no UID.
 */
export function podCgroupParent(pod: V1ResourcePod, root: string = DEFAULT_CGROUP_ROOT): string {
  const uid = pod.metadata?.uid;
  if (!uid) throw new Error('podCgroupParent: the pod has no uid');
  return `${qosCgroupName(qosClass(pod), root)}/pod${uid}`;
}

function trimSlashes(s: string): string {
  return s.replace(/^\/+|\/+$/g, '');
}
