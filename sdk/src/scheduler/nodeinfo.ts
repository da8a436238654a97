/**
 * What scheduling plugins see of the cluster: {@link PodInfo} (a pod with its requests and
 * affinity terms parsed once), {@link NodeInfo} (a node with the pods on it, their summed
 * requests, used host ports and images) and {@link NodeSnapshot} (every node, frozen for one
 * scheduling cycle).
 *
 * @module
 */
import type { KubeObject } from '../client/api-client.js';
import type { LabelSelector } from '../api/selectors.js';
import { addResource, cloneResource, emptyResource, nodeAllocatable, podRequests, type Resource } from './resources.js';

/** A pod (affinity) term with its namespaces resolved as Kubernetes does. */
export interface AffinityTerm {
  /** Namespaces named by the term, or the pod's own when it names none and has no namespaceSelector. */
  readonly namespaces: ReadonlySet<string>;
  /** The term's `namespaceSelector` (an empty one matches every namespace); undefined when absent. */
  readonly namespaceSelector?: LabelSelector;
  /** The term's `labelSelector`; undefined (absent) matches no pod. */
  readonly selector?: LabelSelector;
  readonly topologyKey: string;
}

/** A preferred term with its weight (1-100). */
export interface WeightedAffinityTerm extends AffinityTerm {
  readonly weight: number;
}

type Obj = Record<string, unknown>;

function parseTerm(pod: KubeObject, t: Obj): AffinityTerm {
  const listed = (t.namespaces as string[] | undefined) ?? [];
  const namespaceSelector = (t.namespaceSelector ?? undefined) as LabelSelector | undefined;
  const namespaces = new Set<string>(listed);
  if (listed.length === 0 && namespaceSelector === undefined) namespaces.add(String(pod.metadata?.namespace ?? 'default'));
  return { namespaces, ...(namespaceSelector !== undefined ? { namespaceSelector } : {}), ...(t.labelSelector ? { selector: t.labelSelector as LabelSelector } : {}), topologyKey: String(t.topologyKey ?? '') };
}

/** A pod as plugins see it: requests and affinity terms computed once. Never mutate `pod`. */
export class PodInfo {
  /** Effective requests (see {@link podRequests}). */
  readonly requests: Resource;
  /** Requests with the scoring defaults for containers that request no CPU or memory. */
  readonly nonZeroRequests: Resource;
  readonly requiredAffinityTerms: readonly AffinityTerm[];
  readonly requiredAntiAffinityTerms: readonly AffinityTerm[];
  readonly preferredAffinityTerms: readonly WeightedAffinityTerm[];
  readonly preferredAntiAffinityTerms: readonly WeightedAffinityTerm[];

  constructor(readonly pod: KubeObject) {
    this.requests = podRequests(pod);
    this.nonZeroRequests = podRequests(pod, true);
    const affinity = ((pod.spec as Obj | undefined)?.affinity ?? {}) as Obj;
    const pa = (affinity.podAffinity ?? {}) as Obj;
    const paa = (affinity.podAntiAffinity ?? {}) as Obj;
    const required = (x: Obj): AffinityTerm[] => ((x.requiredDuringSchedulingIgnoredDuringExecution ?? []) as Obj[]).map((t) => parseTerm(pod, t));
    const preferred = (x: Obj): WeightedAffinityTerm[] =>
      ((x.preferredDuringSchedulingIgnoredDuringExecution ?? []) as Obj[]).map((w) => ({ ...parseTerm(pod, (w.podAffinityTerm ?? {}) as Obj), weight: Number(w.weight ?? 0) }));
    this.requiredAffinityTerms = required(pa);
    this.requiredAntiAffinityTerms = required(paa);
    this.preferredAffinityTerms = preferred(pa);
    this.preferredAntiAffinityTerms = preferred(paa);
  }

  get name(): string {
    return String(this.pod.metadata?.name ?? '');
  }
  get namespace(): string {
    return String(this.pod.metadata?.namespace ?? '');
  }
  get uid(): string {
    return String(this.pod.metadata?.uid ?? '');
  }
  /** Whether the pod has any pod affinity or anti-affinity term. */
  get hasAffinity(): boolean {
    return this.requiredAffinityTerms.length + this.requiredAntiAffinityTerms.length + this.preferredAffinityTerms.length + this.preferredAntiAffinityTerms.length > 0;
  }
}

/** The pod's priority (`spec.priority`, 0 when unset). */
export function podPriority(pod: KubeObject): number {
  return Number((pod.spec as Obj | undefined)?.priority ?? 0);
}

/** One host port in use: protocol, port and the IP it is bound to (`0.0.0.0` for every IP). */
export interface HostPort {
  readonly protocol: string;
  readonly port: number;
  readonly ip: string;
}

/** The host ports a pod asks for (`spec.containers[].ports[].hostPort` > 0). */
export function podHostPorts(pod: KubeObject): HostPort[] {
  const out: HostPort[] = [];
  const spec = (pod.spec ?? {}) as { containers?: Array<{ ports?: Obj[] }>; initContainers?: Array<{ ports?: Obj[]; restartPolicy?: string }> };
  const containers = [...(spec.containers ?? []), ...(spec.initContainers ?? []).filter((c) => c.restartPolicy === 'Always')];
  for (const c of containers) {
    for (const p of c.ports ?? []) {
      const port = Number(p.hostPort ?? 0);
      if (port > 0) out.push({ protocol: String(p.protocol ?? 'TCP'), port, ip: String(p.hostIP || '0.0.0.0') });
    }
  }
  return out;
}

/** Image presence across the cluster, for ImageLocality. */
export interface ImageState {
  readonly size: number;
  /** On how many nodes the image is. */
  numNodes: number;
}

let generation = 0;
/** A new, process-wide increasing generation number. */
export function nextGeneration(): number {
  return ++generation;
}

/**
 * A node and what is on it. The scheduler's cache keeps one per node and hands plugins clones in a
 * {@link NodeSnapshot}; plugins must not mutate them except through the framework (preemption
 * simulations work on clones).
 */
export class NodeInfo {
  node?: KubeObject;
  pods: PodInfo[] = [];
  podsWithAffinity: PodInfo[] = [];
  podsWithRequiredAntiAffinity: PodInfo[] = [];
  /** Used host ports: `protocol/port` -> IPs. */
  usedPorts = new Map<string, Set<string>>();
  requested: Resource = emptyResource();
  nonZeroRequested: Resource = emptyResource();
  allocatable: Resource = emptyResource();
  /** Images on this node (name -> state shared across the snapshot). */
  imageStates = new Map<string, ImageState>();
  /** Bumped on every change, so caches can tell what changed since a snapshot. */
  generation = nextGeneration();

  constructor(node?: KubeObject, pods: readonly (KubeObject | PodInfo)[] = []) {
    if (node) this.setNode(node);
    for (const p of pods) this.addPod(p);
  }

  /** The node's name ('' before a node is set). */
  get name(): string {
    return String(this.node?.metadata?.name ?? '');
  }

  /** Sets (or replaces) the node object. */
  setNode(node: KubeObject): void {
    this.node = node;
    this.allocatable = nodeAllocatable(node);
    this.generation = nextGeneration();
  }

  /** Adds a pod (assumed or bound) to the node's accounting. */
  addPod(p: KubeObject | PodInfo): PodInfo {
    const pi = p instanceof PodInfo ? p : new PodInfo(p);
    this.pods.push(pi);
    if (pi.hasAffinity) this.podsWithAffinity.push(pi);
    if (pi.requiredAntiAffinityTerms.length > 0) this.podsWithRequiredAntiAffinity.push(pi);
    addResource(this.requested, pi.requests);
    addResource(this.nonZeroRequested, pi.nonZeroRequests);
    for (const hp of podHostPorts(pi.pod)) {
      const k = `${hp.protocol}/${hp.port}`;
      let ips = this.usedPorts.get(k);
      if (!ips) this.usedPorts.set(k, (ips = new Set()));
      ips.add(hp.ip);
    }
    this.generation = nextGeneration();
    return pi;
  }

  /** Removes the pod with `uid`; false when it is not here. */
  removePod(uid: string): boolean {
    const i = this.pods.findIndex((p) => p.uid === uid);
    if (i < 0) return false;
    const pi = this.pods[i]!;
    this.pods.splice(i, 1);
    const drop = (list: PodInfo[]): void => {
      const j = list.indexOf(pi);
      if (j >= 0) list.splice(j, 1);
    };
    drop(this.podsWithAffinity);
    drop(this.podsWithRequiredAntiAffinity);
    addResource(this.requested, pi.requests, -1);
    addResource(this.nonZeroRequested, pi.nonZeroRequests, -1);
    for (const hp of podHostPorts(pi.pod)) {
      const k = `${hp.protocol}/${hp.port}`;
      const ips = this.usedPorts.get(k);
      if (!ips) continue;
      // Another pod may use the same port and IP: recount from the remaining pods.
      if (!this.pods.some((o) => podHostPorts(o.pod).some((x) => x.protocol === hp.protocol && x.port === hp.port && x.ip === hp.ip))) ips.delete(hp.ip);
      if (ips.size === 0) this.usedPorts.delete(k);
    }
    this.generation = nextGeneration();
    return true;
  }

  /** True when `port` conflicts with a used host port (same protocol and port, and the same IP or either on 0.0.0.0). */
  portConflicts(port: HostPort): boolean {
    const ips = this.usedPorts.get(`${port.protocol}/${port.port}`);
    if (!ips) return false;
    if (port.ip === '0.0.0.0') return ips.size > 0;
    return ips.has(port.ip) || ips.has('0.0.0.0');
  }

  /** A copy that can be changed without touching this one (pods and their infos are shared). */
  clone(): NodeInfo {
    const c = new NodeInfo();
    c.node = this.node;
    c.pods = [...this.pods];
    c.podsWithAffinity = [...this.podsWithAffinity];
    c.podsWithRequiredAntiAffinity = [...this.podsWithRequiredAntiAffinity];
    c.usedPorts = new Map([...this.usedPorts].map(([k, v]) => [k, new Set(v)]));
    c.requested = cloneResource(this.requested);
    c.nonZeroRequested = cloneResource(this.nonZeroRequested);
    c.allocatable = cloneResource(this.allocatable);
    c.imageStates = this.imageStates;
    c.generation = this.generation;
    return c;
  }
}

/** The nodes of one scheduling cycle, as plugins see them (Kubernetes' SharedLister). */
export interface NodeSnapshot {
  /** Every node, in a stable order. */
  list(): readonly NodeInfo[];
  /** The node named `name`. */
  get(name: string): NodeInfo | undefined;
  /** Nodes with at least one pod that has pod affinity or anti-affinity terms. */
  havePodsWithAffinity(): readonly NodeInfo[];
  /** Nodes with at least one pod that has required anti-affinity terms. */
  havePodsWithRequiredAntiAffinity(): readonly NodeInfo[];
}

/**
 * A {@link NodeSnapshot} built from node and pod objects (pods are placed by `spec.nodeName`;
 * pods on no listed node are left out). Image states are counted across the nodes.
 */
export class Snapshot implements NodeSnapshot {
  private readonly infos: NodeInfo[];
  private readonly byName = new Map<string, NodeInfo>();
  private affinityList?: NodeInfo[];
  private antiAffinityList?: NodeInfo[];

  constructor(infos: readonly NodeInfo[]) {
    this.infos = [...infos];
    for (const n of this.infos) this.byName.set(n.name, n);
  }

  /** A snapshot of `nodes` with `pods` placed on them. */
  static of(nodes: readonly KubeObject[], pods: readonly KubeObject[] = []): Snapshot {
    const infos = nodes.map((n) => new NodeInfo(n));
    const byName = new Map(infos.map((i) => [i.name, i]));
    for (const p of pods) {
      const node = String((p.spec as Obj | undefined)?.nodeName ?? '');
      byName.get(node)?.addPod(p);
    }
    const images = imageStatesOf(nodes);
    for (const i of infos) i.imageStates = images.get(i.name) ?? new Map();
    return new Snapshot(infos);
  }

  list(): readonly NodeInfo[] {
    return this.infos;
  }
  get(name: string): NodeInfo | undefined {
    return this.byName.get(name);
  }
  havePodsWithAffinity(): readonly NodeInfo[] {
    return (this.affinityList ??= this.infos.filter((n) => n.podsWithAffinity.length > 0));
  }
  havePodsWithRequiredAntiAffinity(): readonly NodeInfo[] {
    return (this.antiAffinityList ??= this.infos.filter((n) => n.podsWithRequiredAntiAffinity.length > 0));
  }
}

/** Per node, its images (every name of each `status.images` entry) with cluster-wide node counts. */
export function imageStatesOf(nodes: readonly KubeObject[]): Map<string, Map<string, ImageState>> {
  const shared = new Map<string, ImageState>();
  const out = new Map<string, Map<string, ImageState>>();
  for (const n of nodes) {
    const mine = new Map<string, ImageState>();
    for (const img of (((n.status as Obj | undefined)?.images ?? []) as Array<{ names?: string[]; sizeBytes?: number }>)) {
      for (const name of img.names ?? []) {
        let s = shared.get(name);
        if (!s) shared.set(name, (s = { size: Number(img.sizeBytes ?? 0), numNodes: 0 }));
        if (!mine.has(name)) {
          s.numNodes++;
          mine.set(name, s);
        }
      }
    }
    out.set(String(n.metadata?.name ?? ''), mine);
  }
  return out;
}
