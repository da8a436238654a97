/**
 * Resource arithmetic for scheduling: a pod's effective requests (containers, init containers,
 * restartable "sidecar" init containers, overhead) and a node's allocatable, as plain numbers
 * (milli-CPU, bytes, counts) so that filtering thousands of nodes allocates nothing.
 *
 * @module
 */
import type { KubeObject } from '../client/api-client.js';
import { parseQuantity } from '../api/quantity.js';

/** CPU a container without a CPU request counts for in scoring (Kubernetes' DefaultMilliCPURequest). */
export const DEFAULT_MILLI_CPU_REQUEST = 100;
/** Memory a container without a memory request counts for in scoring (200 MB, DefaultMemoryRequest). */
export const DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024;

/** Amounts of resources: CPU in milli-cores, memory and ephemeral storage in bytes, pods, and other (extended) resources by name. */
export interface Resource {
  milliCPU: number;
  memory: number;
  ephemeralStorage: number;
  /** Pods (only meaningful for a node's allocatable). */
  allowedPodNumber: number;
  /** Extended and other scalar resources (`nvidia.com/gpu`, `hugepages-2Mi`, ...), in their base unit. */
  scalar: Record<string, number>;
}

/** A zero {@link Resource}. */
export function emptyResource(): Resource {
  return { milliCPU: 0, memory: 0, ephemeralStorage: 0, allowedPodNumber: 0, scalar: {} };
}

/** A copy of `r`. */
export function cloneResource(r: Resource): Resource {
  return { milliCPU: r.milliCPU, memory: r.memory, ephemeralStorage: r.ephemeralStorage, allowedPodNumber: r.allowedPodNumber, scalar: { ...r.scalar } };
}

/** Adds `b` to `a` (in place), times `sign` (1 or -1). */
export function addResource(a: Resource, b: Resource, sign = 1): void {
  a.milliCPU += sign * b.milliCPU;
  a.memory += sign * b.memory;
  a.ephemeralStorage += sign * b.ephemeralStorage;
  a.allowedPodNumber += sign * b.allowedPodNumber;
  for (const k in b.scalar) a.scalar[k] = (a.scalar[k] ?? 0) + sign * b.scalar[k]!;
}

/** `a` becomes the per-resource maximum of `a` and `b` (in place). */
function maxResource(a: Resource, b: Resource): void {
  a.milliCPU = Math.max(a.milliCPU, b.milliCPU);
  a.memory = Math.max(a.memory, b.memory);
  a.ephemeralStorage = Math.max(a.ephemeralStorage, b.ephemeralStorage);
  for (const k in b.scalar) a.scalar[k] = Math.max(a.scalar[k] ?? 0, b.scalar[k]!);
}

const quantityCache = new Map<string, number>();

/** A quantity as a number of base units (bytes, cores) rounded up; CPU as milli-cores with `milli`. */
export function quantityValue(q: unknown, milli = false): number {
  if (q === undefined || q === null) return 0;
  const key = `${milli ? 'm' : ''}${String(q)}`;
  let v = quantityCache.get(key);
  if (v === undefined) {
    const nanos = parseQuantity(q as string | number).nanos;
    const unit = milli ? 1_000_000n : 1_000_000_000n;
    v = Number(nanos / unit + (nanos % unit > 0n ? 1n : 0n));
    if (quantityCache.size > 10_000) quantityCache.clear();
    quantityCache.set(key, v);
  }
  return v;
}

/** A `ResourceList` (`{cpu: "500m", memory: "1Gi", ...}`) as a {@link Resource}. */
export function resourceList(list: Readonly<Record<string, unknown>> | undefined): Resource {
  const r = emptyResource();
  if (!list) return r;
  for (const name in list) {
    const q = list[name];
    switch (name) {
      case 'cpu':
        r.milliCPU = quantityValue(q, true);
        break;
      case 'memory':
        r.memory = quantityValue(q);
        break;
      case 'ephemeral-storage':
        r.ephemeralStorage = quantityValue(q);
        break;
      case 'pods':
        r.allowedPodNumber = quantityValue(q);
        break;
      default:
        // Extended resources (domain-prefixed) and hugepages count; anything else (e.g. storage) does not.
        if (name.includes('/') || name.startsWith('hugepages-') || name.startsWith('attachable-volumes-')) r.scalar[name] = quantityValue(q);
    }
  }
  return r;
}

type Container = { resources?: { requests?: Record<string, unknown> }; restartPolicy?: string };

function containerRequests(c: Container, nonZero: boolean): Resource {
  const r = resourceList(c.resources?.requests);
  if (nonZero) {
    const req = c.resources?.requests;
    if (!req || req.cpu === undefined) r.milliCPU = DEFAULT_MILLI_CPU_REQUEST;
    if (!req || req.memory === undefined) r.memory = DEFAULT_MEMORY_REQUEST;
  }
  return r;
}

/**
 * A pod's effective requests, as Kubernetes computes them for scheduling: the sum over its
 * containers plus restartable (sidecar) init containers, at least the peak of its init phase
 * (each regular init container with the sidecars started before it), plus `spec.overhead`.
 * With `nonZero`, containers that request no CPU or memory count for 100m and 200 MB (for
 * scoring only, so that such pods still spread).
 */
export function podRequests(pod: KubeObject, nonZero = false): Resource {
  const spec = (pod.spec ?? {}) as { containers?: Container[]; initContainers?: Container[]; overhead?: Record<string, unknown> };
  const total = emptyResource();
  for (const c of spec.containers ?? []) addResource(total, containerRequests(c, nonZero));
  const sidecars = emptyResource();
  const initPeak = emptyResource();
  for (const c of spec.initContainers ?? []) {
    const r = containerRequests(c, nonZero);
    if (c.restartPolicy === 'Always') {
      addResource(sidecars, r);
      maxResource(initPeak, sidecars);
    } else {
      addResource(r, sidecars);
      maxResource(initPeak, r);
    }
  }
  addResource(total, sidecars);
  maxResource(total, initPeak);
  if (spec.overhead) addResource(total, resourceList(spec.overhead));
  return total;
}

/** A node's allocatable (`status.allocatable`, else `status.capacity`). */
export function nodeAllocatable(node: KubeObject): Resource {
  const status = (node.status ?? {}) as { allocatable?: Record<string, unknown>; capacity?: Record<string, unknown> };
  return resourceList(status.allocatable ?? status.capacity);
}

/** Kubernetes' IsNativeResource: no domain prefix, or a `kubernetes.io/` one. */
export function isNativeResourceName(name: string): boolean {
  return !name.includes('/') || name.includes('kubernetes.io/');
}

/** Kubernetes' IsExtendedResourceName: domain-prefixed, not native, not `requests.`. */
export function isExtendedResourceName(name: string): boolean {
  return !isNativeResourceName(name) && !name.startsWith('requests.');
}

/** Kubernetes' IsScalarResourceName: extended, hugepages, prefixed native or attachable volumes. */
export function isScalarResourceName(name: string): boolean {
  return isExtendedResourceName(name) || name.startsWith('hugepages-') || name.includes('kubernetes.io/') || name.startsWith('attachable-volumes-');
}
