/**
 * The scheduler's cache: every node with the pods on it, including pods *assumed* there (chosen
 * but not yet bound), so the next scheduling cycle already counts them. A binding that fails
 * forgets the assumed pod; the informer's add of the bound pod confirms it. Snapshots for
 * scheduling cycles are updated incrementally: only nodes changed since the last snapshot are
 * copied.
 *
 * @module
 */
import { NodeInfo, nextGeneration, PodInfo, type ImageState, type KubeObject, type NodeSnapshot } from '@kubernel/sdk';

const uidOf = (pod: KubeObject): string => String(pod.metadata?.uid ?? '');
const nodeNameOf = (pod: KubeObject): string => String((pod.spec as { nodeName?: string } | undefined)?.nodeName ?? '');

interface PodState {
  podInfo: PodInfo;
  node: string;
  assumed: boolean;
}

/** The cache. */
export class SchedulerCache {
  private readonly nodes = new Map<string, NodeInfo>();
  private readonly pods = new Map<string, PodState>();
  /** Nodes changed since the last snapshot. */
  private readonly dirty = new Set<string>();
  private nodeSetChanged = true;
  /** Image name -> its size and how many nodes have it (shared by every node's imageStates). */
  private readonly images = new Map<string, ImageState>();

  /** Number of nodes with a Node object. */
  get nodeCount(): number {
    let n = 0;
    for (const i of this.nodes.values()) if (i.node) n++;
    return n;
  }

  private info(name: string): NodeInfo {
    let i = this.nodes.get(name);
    if (!i) {
      i = new NodeInfo();
      this.nodes.set(name, i);
    }
    return i;
  }

  addNode(node: KubeObject): void {
    const name = String(node.metadata?.name);
    const i = this.info(name);
    const wasKnown = i.node !== undefined;
    i.setNode(node);
    this.setImages(i, node);
    this.dirty.add(name);
    if (!wasKnown) this.nodeSetChanged = true;
  }

  updateNode(node: KubeObject): void {
    this.addNode(node);
  }

  removeNode(node: KubeObject): void {
    const name = String(node.metadata?.name);
    const i = this.nodes.get(name);
    if (!i) return;
    // Pods still bound to it stay accounted until they are deleted, as in Kubernetes.
    this.setImages(i, undefined);
    if (i.pods.length === 0) this.nodes.delete(name);
    else {
      i.node = undefined;
      i.generation = nextGeneration();
    }
    this.dirty.add(name);
    this.nodeSetChanged = true;
  }

  /** Updates the node's images and the cluster-wide counts (ImageLocality's spread). */
  private setImages(i: NodeInfo, node: KubeObject | undefined): void {
    const next = new Map<string, ImageState>();
    for (const img of (((node?.status as { images?: Array<{ names?: string[]; sizeBytes?: number }> } | undefined)?.images) ?? [])) {
      for (const name of img.names ?? []) {
        if (next.has(name)) continue;
        let s = this.images.get(name);
        if (!s) this.images.set(name, (s = { size: Number(img.sizeBytes ?? 0), numNodes: 0 }));
        next.set(name, s);
      }
    }
    for (const [name, s] of i.imageStates) if (!next.has(name)) {
      s.numNodes--;
      if (s.numNodes <= 0) this.images.delete(name);
    }
    for (const [name, s] of next) if (!i.imageStates.has(name)) s.numNodes++;
    i.imageStates = next;
  }

  /** The pod is assumed on `node` (its scheduling cycle chose it). */
  assume(podInfo: PodInfo, node: string): void {
    const uid = podInfo.uid;
    if (this.pods.has(uid)) throw new Error(`pod ${podInfo.namespace}/${podInfo.name} is already in the cache`);
    this.info(node).addPod(podInfo);
    this.pods.set(uid, { podInfo, node, assumed: true });
    this.dirty.add(node);
  }

  /** Whether the pod is assumed (chosen, binding not yet confirmed by the informer). */
  isAssumed(pod: KubeObject): boolean {
    return this.pods.get(uidOf(pod))?.assumed === true;
  }

  /** Drops an assumed pod (its binding failed). */
  forget(pod: KubeObject): void {
    const uid = uidOf(pod);
    const s = this.pods.get(uid);
    if (!s || !s.assumed) return;
    this.removeFrom(s, uid);
  }

  /** A bound pod (from the informer): confirms an assumed one, or adds it. */
  addPod(pod: KubeObject): void {
    const uid = uidOf(pod);
    const node = nodeNameOf(pod);
    const s = this.pods.get(uid);
    if (s) {
      // Confirmed (or a pod assumed on one node but bound to another: follow the API).
      this.removeFrom(s, uid);
    }
    const podInfo = s && s.podInfo.pod.metadata?.resourceVersion === pod.metadata?.resourceVersion ? s.podInfo : new PodInfo(pod);
    this.info(node).addPod(podInfo);
    this.pods.set(uid, { podInfo, node, assumed: false });
    this.dirty.add(node);
  }

  updatePod(pod: KubeObject): void {
    this.addPod(pod);
  }

  removePod(pod: KubeObject): void {
    const uid = uidOf(pod);
    const s = this.pods.get(uid);
    if (s) this.removeFrom(s, uid);
  }

  private removeFrom(s: PodState, uid: string): void {
    const i = this.nodes.get(s.node);
    i?.removePod(uid);
    this.pods.delete(uid);
    this.dirty.add(s.node);
    if (i && !i.node && i.pods.length === 0) {
      this.nodes.delete(s.node);
      this.nodeSetChanged = true;
    }
  }

  /** Brings `snapshot` up to date, copying only the nodes changed since its last update. */
  updateSnapshot(snapshot: CacheSnapshot): void {
    if (this.nodeSetChanged) {
      snapshot.rebuild([...this.nodes.values()].filter((i) => i.node).map((i) => i.clone()));
      this.nodeSetChanged = false;
      this.dirty.clear();
      return;
    }
    for (const name of this.dirty) {
      const i = this.nodes.get(name);
      if (i?.node) snapshot.replace(i.clone());
    }
    this.dirty.clear();
  }
}

/** The snapshot a scheduling cycle reads: stable node order, lookups by name, affinity lists. */
export class CacheSnapshot implements NodeSnapshot {
  private infos: NodeInfo[] = [];
  private readonly index = new Map<string, number>();
  private affinity?: NodeInfo[];
  private antiAffinity?: NodeInfo[];

  rebuild(infos: NodeInfo[]): void {
    this.infos = infos.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    this.index.clear();
    this.infos.forEach((i, n) => this.index.set(i.name, n));
    this.affinity = undefined;
    this.antiAffinity = undefined;
  }

  replace(info: NodeInfo): void {
    const n = this.index.get(info.name);
    if (n === undefined) return;
    const before = this.infos[n]!;
    this.infos[n] = info;
    if (before.podsWithAffinity.length > 0 || info.podsWithAffinity.length > 0) this.affinity = undefined;
    if (before.podsWithRequiredAntiAffinity.length > 0 || info.podsWithRequiredAntiAffinity.length > 0) this.antiAffinity = undefined;
  }

  list(): readonly NodeInfo[] {
    return this.infos;
  }
  get(name: string): NodeInfo | undefined {
    const n = this.index.get(name);
    return n === undefined ? undefined : this.infos[n];
  }
  havePodsWithAffinity(): readonly NodeInfo[] {
    return (this.affinity ??= this.infos.filter((i) => i.podsWithAffinity.length > 0));
  }
  havePodsWithRequiredAntiAffinity(): readonly NodeInfo[] {
    return (this.antiAffinity ??= this.infos.filter((i) => i.podsWithRequiredAntiAffinity.length > 0));
  }
}
