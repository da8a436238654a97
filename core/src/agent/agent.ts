/**
 * The node agent's main loop (the kubelet's `syncLoop`, reduced): it registers the Node, renews
 * the node Lease and posts node status (heartbeats), watches the pods bound to its node with a
 * shared informer, drives one {@link PodWorker} per pod UID, writes pod statuses when they change,
 * and finishes graceful deletions.
 *
 * On abort the loops stop and every timer is cleared; containers are left running, as the
 * kubelet leaves them (adopting them on restart is not done yet).
 *
 * @module
 */
import {
  formatMicroTime,
  isAlreadyExists,
  isConflict,
  isNotFound,
  parseQuantity,
  ApiStatusError,
  EventRecorder,
  type ApiClient,
  type ContainerRuntime,
  type Informer,
  type KubeObject,
  type Logger,
} from '@kubernel/sdk';
import { machineInfo, nodeConditions, nodeObject, pressureOf, readPressureSignals, type MachineInfo, type NodeObservation, type V1Node, type V1NodeCondition } from './node-status.js';
import { statusChanged, type V1PodStatus } from './pod-status.js';
import type { CgroupManager } from './cgroups.js';
import { POD_UID_LABEL, PodWorker, type ContainerSetup, type V1WorkerContainer, type V1WorkerPod } from './pod-worker.js';
import { ProbeManager } from './prober.js';
import { IMAGE_GC_PERIOD_MS, ImageGarbageCollector, type ImageGarbageCollectorOptions } from './image-gc.js';
import { mirrorHash, mirrorPodOf, readManifestDir, readManifestUrl, type StaticPod } from './static-pods.js';
import { expandCommandAndArgs, resolveEnv } from './env.js';
import { apiVolumeSources, VolumeManager, type VolumeSources } from './volumes.js';
import type { V1PodContainer, V1PodObject } from './core-v1.js';

/** The node Lease's duration (the kubelet's `nodeLeaseDurationSeconds`). */
export const NODE_LEASE_DURATION_SECONDS = 40;
/** The node status is posted at least this often even when nothing changed (`nodeStatusReportFrequency`). */
export const NODE_STATUS_REPORT_MS = 60_000;
/** The default grace period of a pod deletion without one. */
const DEFAULT_GRACE_SECONDS = 30;

const LEASES = '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases';

/** Options of an {@link Agent}. */
export interface AgentOptions {
  readonly api: ApiClient;
  readonly runtime: ContainerRuntime;
  readonly nodeName: string;
  readonly logger: Logger;
  /** Default {@link machineInfo}(). */
  readonly machine?: MachineInfo;
  /** Overrides of the machine's capacity: whole CPUs, memory (bytes or a quantity), max pods. */
  readonly capacity?: { readonly cpu?: number | string; readonly memory?: number | string; readonly pods?: number };
  /** Extra node labels. */
  readonly labels?: Readonly<Record<string, string>>;
  /** How often the runtime is relisted (the kubelet's PLEG period): pods whose sandboxes or containers changed are synced. Default 1000 ms. */
  readonly syncIntervalMs?: number;
  /**
   * How often a pod is synced even when the runtime shows no change for it (volume contents,
   * conditions that depend on time). Default 10 000 ms.
   */
  readonly resyncIntervalMs?: number;
  /** How often the Lease is renewed (and node conditions re-evaluated). Default 10 000 ms. */
  readonly heartbeatIntervalMs?: number;
  /**
   * The node's pod CIDR (the kubelet's `--pod-cidr`, for clusters without node IPAM): set on the
   * Node's `spec.podCIDR` when it has none, and handed to the runtime (CRI `UpdateRuntimeConfig`),
   * whose CNI configuration allocates pod IPs from it. A `spec.podCIDR` the Node already has wins.
   */
  readonly podCIDR?: string;
  /** The node's InternalIP addresses (also the pods' `hostIP(s)`). */
  readonly addresses?: readonly string[];
  /** The port of the agent's HTTPS API, published as `status.daemonEndpoints.kubeletEndpoint.Port`. */
  readonly kubeletPort?: number;
  /** How often runtime sandboxes of pods the API no longer has are removed. Default 10 000 ms. */
  readonly housekeepingIntervalMs?: number;
  /**
   * Pod-level cgroups (real runtimes): pods run under `/<root>/<qos>/pod<uid>` with the pod's
   * limits, and the agent removes them when pods end. Off by default (hollow nodes run no processes).
   */
  readonly cgroups?: CgroupManager;
  /** Probes run (exec through the runtime, HTTP and TCP to the pod IP). Default true. */
  readonly probes?: boolean;
  /**
   * Where pod volumes live (`<dir>/<pod uid>/volumes/...`, the kubelet's `/var/lib/kubelet/pods`):
   * emptyDir, hostPath, configMap, secret, projected and downwardAPI volumes are set up there and
   * kept up to date. Absent (hollow nodes, which run no processes): volumes are not set up and
   * containers get no mounts, as kubemark's hollow kubelet with its fake mounter.
   */
  readonly podsDir?: string;
  /**
   * Where the node's pressure conditions are measured (the filesystem of this path is nodefs):
   * MemoryPressure, DiskPressure and PIDPressure follow the kubelet's default eviction thresholds.
   * Absent (hollow nodes): reported false.
   */
  readonly pressurePath?: string;
  /**
   * The image garbage collector (the kubelet's thresholds by default: 85 % high, 80 % low, images
   * at least 2 min old, pinned images and images any container uses never removed), run every
   * 5 minutes. Off when absent (hollow nodes).
   */
  readonly imageGC?: Partial<Omit<ImageGarbageCollectorOptions, 'runtime' | 'logger' | 'onEvent' | 'now'>>;
  /** A directory of static pod manifests (the kubelet's `staticPodPath`). */
  readonly staticPodPath?: string;
  /** An HTTP URL serving static pods (the kubelet's `staticPodURL`): a Pod, or a List of pods. */
  readonly staticPodURL?: string;
  /** How often the static pod sources are read. Default 20 000 ms (the kubelet's check frequencies). */
  readonly staticPodCheckIntervalMs?: number;
  /** The cluster's DNS domain, for pods' `/etc/hosts`. Default `cluster.local`. */
  readonly clusterDomain?: string;
}

type Pod = V1WorkerPod & KubeObject & {
  readonly metadata: V1WorkerPod['metadata'] & { readonly resourceVersion?: string; readonly deletionGracePeriodSeconds?: number };
  readonly status?: V1PodStatus;
};

interface PodEntry {
  readonly worker: PodWorker;
  /** The status last written (the informer may lag behind it). */
  written?: V1PodStatus;
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** The node agent. */
export class Agent {
  private readonly api: ApiClient;
  private readonly runtime: ContainerRuntime;
  private readonly log: Logger;
  private readonly nodeName: string;
  private readonly machine: MachineInfo;
  private readonly syncIntervalMs: number;
  private readonly heartbeatIntervalMs: number;
  private readonly podsPath: string;

  private readonly pods = new Map<string, PodEntry>();
  /** UIDs with a sync in flight, and those that asked for another one meanwhile. */
  private readonly busy = new Map<string, Promise<void>>();
  private readonly again = new Set<string>();
  /** UIDs whose deletion the agent finished (ignored until the informer drops them). */
  private readonly finished = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private informer?: Informer<Pod>;
  private stopped = false;
  private nodeUid?: string;
  private lastConditions?: readonly V1NodeCondition[];
  private lastStatusAt = 0;
  private podCIDRApplied?: string;
  /** Per pod UID: the runtime state last synced for, and when it was last synced. */
  private readonly runtimeStates = new Map<string, string>();
  private readonly lastSynced = new Map<string, number>();
  private readonly resyncIntervalMs: number;
  /** The node Lease as last written. */
  private lease?: KubeObject;
  /** Loop iterations in flight (awaited before `run` resolves). */
  private readonly inflight = new Set<Promise<void>>();
  private readonly events: EventRecorder;
  private readonly eventsAbort = new AbortController();
  private readonly probes?: ProbeManager;
  private readonly imageGC?: ImageGarbageCollector;
  private readonly sources: VolumeSources;
  private readonly volumes?: VolumeManager;
  /** Static pods by UID (their config hash), from the manifest directory and URL. */
  private readonly staticPods = new Map<string, Pod>();
  private staticLoaded = false;
  private readonly staticErrors = new Set<string>();
  /** The pod IPs each pod's /etc/hosts was last written for. */
  private readonly hostsWritten = new Map<string, string>();

  constructor(private readonly options: AgentOptions) {
    this.api = options.api;
    this.runtime = options.runtime;
    this.log = options.logger;
    this.nodeName = options.nodeName;
    this.syncIntervalMs = options.syncIntervalMs ?? 1000;
    this.resyncIntervalMs = options.resyncIntervalMs ?? 10_000;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? 10_000;
    this.podsPath = `/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${options.nodeName}`)}`;
    const base = options.machine ?? machineInfo();
    const cap = options.capacity ?? {};
    const cpus = cap.cpu === undefined ? base.cpus : typeof cap.cpu === 'number' ? cap.cpu : Number(parseQuantity(cap.cpu).nanos / 1_000_000_000n);
    const memoryBytes = cap.memory === undefined ? base.memoryBytes : typeof cap.memory === 'number' ? cap.memory : Number(parseQuantity(cap.memory).nanos / 1_000_000_000n);
    if (!Number.isInteger(cpus) || cpus < 0) throw new Error(`agent: capacity.cpu must be a whole number of CPUs, got ${String(cap.cpu)}`);
    this.machine = { ...base, cpus, memoryBytes };
    this.sources = apiVolumeSources(options.api);
    const allocatable = { cpu: String(cpus), memory: String(memoryBytes) };
    if (options.podsDir) {
      this.volumes = new VolumeManager({
        root: options.podsDir,
        sources: this.sources,
        nodeAllocatable: allocatable,
        ...(options.clusterDomain ? { clusterDomain: options.clusterDomain } : {}),
        onRefreshError: (pod, err) => this.log.warn({ pod: `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`, err: err.message }, 'volume refresh failed; keeping the old content'),
      });
    }
    this.events = new EventRecorder({ api: options.api, component: 'kubelet', host: options.nodeName, logger: this.log, signal: this.eventsAbort.signal });
    if (options.imageGC) {
      this.imageGC = new ImageGarbageCollector({
        runtime: this.runtime,
        logger: this.log.child({ component: 'image-gc' }),
        ...options.imageGC,
        // Node events name the node by name as their uid, as the kubelet's nodeRef does.
        onEvent: (type, reason, message) => this.events.event({ apiVersion: 'v1', kind: 'Node', metadata: { name: this.nodeName, uid: this.nodeName } }, type, reason, message),
      });
    }
    if (options.probes !== false) {
      this.probes = new ProbeManager({
        execSync: (id, cmd, timeout) => this.runtime.execSync(id, cmd, timeout),
        onResult: (change) => this.resync(change.uid),
        onKill: (kill) => this.resync(kill.uid),
        onEvent: (e) => {
          const pod = this.podByUid(e.uid);
          if (pod) this.events.event(pod, e.type, e.reason, e.message);
        },
      });
    }
  }

  /** The informer's pod with `uid`, if any. */
  private podByUid(uid: string): Pod | undefined {
    return this.informer?.list().find((p) => p.metadata.uid === uid);
  }

  /** Syncs the pod with `uid` again soon (a probe result changed). */
  private resync(uid: string): void {
    const pod = this.podByUid(uid);
    if (pod) this.syncPod(pod);
  }

  /** Runs until `signal` aborts; resolves once every loop stopped (containers keep running). */
  async run(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const onAbort = (): void => this.stop();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await this.register(signal);
      if (this.stopped) return;
      await this.heartbeat();
      this.every(this.heartbeatIntervalMs, () => this.heartbeat());
      if (this.imageGC) {
        const gc = this.imageGC;
        await gc.detect().catch((err: unknown) => this.log.debug({ err: errorText(err) }, 'initial image detection failed'));
        this.every(IMAGE_GC_PERIOD_MS, async () => {
          const r = await gc.garbageCollect();
          if (r.removed.length > 0) this.log.info({ usagePercent: r.usagePercent, freedBytes: r.freedBytes, removed: r.removed }, 'image garbage collection removed images');
        });
      }

      const informer = this.api.informer<Pod>(this.podsPath);
      this.informer = informer;
      const unsubscribe = informer.subscribe({
        add: (p) => this.kick(p),
        update: (p) => this.kick(p),
        delete: (p) => this.gone(p),
      });
      informer.run();
      if (this.options.staticPodPath || this.options.staticPodURL) {
        await this.refreshStaticPods().catch((err: unknown) => this.log.warn({ err: errorText(err) }, 'reading static pods failed'));
        this.every(this.options.staticPodCheckIntervalMs ?? 20_000, () => this.refreshStaticPods());
      } else {
        this.staticLoaded = true;
      }
      this.every(this.syncIntervalMs, () => this.syncAll());
      this.every(this.options.housekeepingIntervalMs ?? 10_000, () => this.housekeeping());

      await new Promise<void>((resolve) => {
        if (this.stopped) resolve();
        else signal.addEventListener('abort', () => resolve(), { once: true });
      });
      unsubscribe();
      informer.stop();
      await Promise.allSettled([...this.busy.values(), ...this.inflight]);
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.stop();
    }
  }

  private stop(): void {
    this.stopped = true;
    this.probes?.stop();
    this.eventsAbort.abort();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  /** Runs `fn` every `ms` (after the previous run finished) until stopped. */
  private every(ms: number, fn: () => Promise<void>): void {
    const schedule = (): void => {
      if (this.stopped) return;
      // Jittered (up to +4 %), so that agents started together do not stay in lockstep.
      const t = setTimeout(() => {
        this.timers.delete(t);
        const run = fn()
          .catch((err: unknown) => this.log.warn({ err: errorText(err) }, 'agent loop iteration failed'))
          .finally(() => {
            this.inflight.delete(run);
            schedule();
          });
        this.inflight.add(run);
      }, ms * (1 + 0.04 * Math.random()));
      this.timers.add(t);
    };
    schedule();
  }

  /** A cancellable sleep whose timer is cleared on stop. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
      if (this.stopped) {
        clearTimeout(t);
        resolve();
      }
    });
  }

  // -------------------------------------------------------------------------------------------
  // Node registration and heartbeats
  // -------------------------------------------------------------------------------------------

  private async observe(): Promise<NodeObservation> {
    let pressure = { memoryPressure: false, diskPressure: false, pidPressure: false };
    if (this.options.pressurePath) {
      try {
        pressure = pressureOf(await readPressureSignals(this.options.pressurePath));
      } catch (err) {
        this.log.warn({ err: errorText(err) }, 'reading the pressure signals failed');
      }
    }
    try {
      const { status } = await this.runtime.status();
      const down = status.conditions.filter((c) => (c.type === 'RuntimeReady' || c.type === 'NetworkReady') && !c.status);
      if (down.length === 0) return { ...pressure, ready: true };
      return {
        ...pressure,
        ready: false,
        readyMessage: down.map((c) => `container runtime ${c.type === 'NetworkReady' ? 'network' : 'status'} not ready: ${c.type}=false reason:${c.reason ?? ''} message:${c.message ?? ''}`).join(', '),
      };
    } catch (err) {
      return { ...pressure, ready: false, readyMessage: `container runtime is down: ${errorText(err)}` };
    }
  }

  private async desiredNode(previous: readonly V1NodeCondition[] | undefined): Promise<V1Node> {
    const conditions = nodeConditions(previous, await this.observe(), new Date());
    let images: Awaited<ReturnType<ContainerRuntime['listImages']>> | undefined;
    let runtimeVersion = '';
    try {
      images = await this.runtime.listImages();
      const v = await this.runtime.version();
      runtimeVersion = `${v.runtimeName}://${v.runtimeVersion}`;
    } catch (err) {
      this.log.debug({ err: errorText(err) }, 'runtime images/version unavailable');
    }
    return nodeObject(this.nodeName, this.machine, {
      ...(this.options.labels ? { labels: this.options.labels } : {}),
      ...(this.options.podCIDR ? { podCIDR: this.options.podCIDR } : {}),
      ...(this.options.addresses ? { addresses: this.options.addresses } : {}),
      ...(this.options.kubeletPort !== undefined ? { kubeletPort: this.options.kubeletPort } : {}),
      ...(this.options.capacity?.pods !== undefined ? { maxPods: this.options.capacity.pods } : {}),
      ...(images ? { images } : {}),
      containerRuntimeVersion: runtimeVersion,
      conditions,
    });
  }

  /** Creates the Node (or adopts an existing one), retrying until it succeeds or the agent stops. */
  private async register(signal: AbortSignal): Promise<void> {
    for (let wait = 500; !this.stopped && !signal.aborted; wait = Math.min(wait * 2, 7_000)) {
      try {
        const node = await this.desiredNode(undefined);
        try {
          const created = await this.api.create<KubeObject>('/api/v1/nodes', node);
          this.nodeUid = (created.metadata as { uid?: string } | undefined)?.uid;
          this.log.info({ node: this.nodeName }, 'registered the node');
        } catch (err) {
          if (!isAlreadyExists(err) && !(err instanceof ApiStatusError && err.code === 409)) throw err;
          this.log.info({ node: this.nodeName }, 'the node exists; updating its status');
        }
        await this.postNodeStatus(true);
        await this.ensurePodCIDR();
        return;
      } catch (err) {
        this.log.warn({ err: errorText(err), retryInMs: wait }, 'node registration failed');
        await this.sleep(wait);
      }
    }
  }

  /**
   * Sets `spec.podCIDR` from the agent's option when the Node has none, then hands the Node's pod
   * CIDR to the runtime (CRI `UpdateRuntimeConfig`) so its CNI configuration allocates from it.
   */
  private async ensurePodCIDR(): Promise<void> {
    let node = await this.api.get<KubeObject>(`/api/v1/nodes/${this.nodeName}`);
    let cidr = (node.spec as { podCIDR?: string } | undefined)?.podCIDR;
    if (!cidr && this.options.podCIDR) {
      cidr = this.options.podCIDR;
      node = await this.api.update<KubeObject>(`/api/v1/nodes/${this.nodeName}`, { ...node, spec: { ...(node.spec as object | undefined), podCIDR: cidr, podCIDRs: [cidr] } });
    }
    if (cidr && cidr !== this.podCIDRApplied) {
      if (this.runtime.updateRuntimeConfig) {
        await this.runtime.updateRuntimeConfig({ podCidr: cidr });
        this.log.info({ podCIDR: cidr }, 'pod CIDR handed to the container runtime');
      }
      this.podCIDRApplied = cidr;
    }
  }

  /** PUTs the node status (fresh resourceVersion; retried on conflict). */
  private async postNodeStatus(force: boolean): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const current = await this.api.get<KubeObject>(`/api/v1/nodes/${this.nodeName}`);
      const meta = current.metadata as { uid?: string } | undefined;
      this.nodeUid = meta?.uid ?? this.nodeUid;
      const prev = ((current.status as { conditions?: V1NodeCondition[] } | undefined)?.conditions);
      const desired = await this.desiredNode(prev);
      const conditions = desired.status.conditions ?? [];
      const changed = !sameConditions(this.lastConditions, conditions);
      if (!force && !changed && Date.now() - this.lastStatusAt < NODE_STATUS_REPORT_MS) return;
      try {
        await this.api.update(`/api/v1/nodes/${this.nodeName}/status`, { ...current, status: { ...(current.status as object | undefined), ...desired.status } });
        this.lastConditions = conditions;
        this.lastStatusAt = Date.now();
        return;
      } catch (err) {
        if (!isConflict(err) || attempt >= 4) throw err;
      }
    }
  }

  private async heartbeat(): Promise<void> {
    await this.renewLease().catch((err: unknown) => this.log.warn({ err: errorText(err) }, 'node lease renewal failed'));
    if (this.podCIDRApplied === undefined) await this.ensurePodCIDR().catch((err: unknown) => this.log.warn({ err: errorText(err) }, 'pod CIDR not applied'));
    await this.postNodeStatus(false);
  }

  /**
   * Renews the node Lease from the copy the last write returned (read again only when there is
   * none, or after a conflict or a missing Lease), retrying a failed renewal a few times within
   * the heartbeat as the kubelet's lease controller does.
   */
  private async renewLease(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.renewLeaseOnce();
        return;
      } catch (err) {
        this.lease = undefined;
        if (attempt >= 4 || this.stopped) throw err;
        await this.sleep(200 * 2 ** attempt);
      }
    }
  }

  private async renewLeaseOnce(): Promise<void> {
    const path = `${LEASES}/${this.nodeName}`;
    const now = formatMicroTime(Date.now());
    let lease = this.lease;
    if (!lease) {
      try {
        lease = await this.api.get<KubeObject>(path);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    if (!lease) {
      this.lease = await this.api.create<KubeObject>(LEASES, {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: {
          name: this.nodeName,
          namespace: 'kube-node-lease',
          ...(this.nodeUid ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: this.nodeName, uid: this.nodeUid }] } : {}),
        },
        spec: { holderIdentity: this.nodeName, leaseDurationSeconds: NODE_LEASE_DURATION_SECONDS, renewTime: now },
      });
      return;
    }
    const spec = (lease.spec as Record<string, unknown> | undefined) ?? {};
    this.lease = await this.api.update<KubeObject>(path, { ...lease, spec: { ...spec, holderIdentity: this.nodeName, leaseDurationSeconds: NODE_LEASE_DURATION_SECONDS, renewTime: now } });
  }

  // -------------------------------------------------------------------------------------------
  // Pods
  // -------------------------------------------------------------------------------------------

  /** A pod was added or changed: sync it soon. */
  private kick(pod: Pod): void {
    if (this.stopped) return;
    if (mirrorHash(pod) !== undefined) {
      this.mirrorChanged(pod);
      return;
    }
    this.syncPod(pod);
  }

  /** A pod left the informer: terminate its worker. */
  private gone(pod: Pod): void {
    // A deleted mirror pod is made again on the static pod's next sync.
    if (mirrorHash(pod) !== undefined) return;
    const uid = pod.metadata.uid ?? '';
    this.finished.delete(uid);
    const entry = this.pods.get(uid);
    if (!entry) return;
    this.serialized(uid, async () => {
      await entry.worker.terminate(pod.metadata.deletionGracePeriodSeconds ?? 0);
      this.pods.delete(uid);
      await this.podRemoved(uid);
    });
  }

  private async syncAll(): Promise<void> {
    const informer = this.informer;
    if (!informer?.synced) return;
    // The kubelet's PLEG: one relist of the runtime tells which pods changed; only those, pods in
    // a back-off that ends, pods being deleted and pods not synced for a while are synced (API
    // changes and probe results sync their pod at once, without waiting for this loop).
    let states: Map<string, string> | undefined;
    try {
      states = await this.relist();
    } catch (err) {
      this.log.debug({ err: errorText(err) }, 'runtime relist failed: syncing every pod');
    }
    const now = Date.now();
    const due = (uid: string, pod: Pod): boolean => {
      const entry = this.pods.get(uid);
      if (!entry || !states || pod.metadata.deletionTimestamp) return true;
      const state = states.get(uid) ?? '';
      if (state !== this.runtimeStates.get(uid)) return true;
      if (now - (this.lastSynced.get(uid) ?? 0) >= this.resyncIntervalMs) return true;
      const next = entry.worker.nextSyncAt();
      return next !== undefined && next <= now;
    };
    const live = new Set<string>();
    const consider = (uid: string, pod: Pod): void => {
      live.add(uid);
      if (!due(uid, pod)) return;
      if (states) this.runtimeStates.set(uid, states.get(uid) ?? '');
      this.syncPod(pod);
    };
    for (const pod of informer.list()) {
      if (mirrorHash(pod) !== undefined) continue;
      consider(pod.metadata.uid ?? '', pod);
    }
    for (const [uid, pod] of this.staticPods) consider(uid, pod);
    for (const uid of this.runtimeStates.keys()) if (!live.has(uid)) this.runtimeStates.delete(uid);
    for (const uid of this.lastSynced.keys()) if (!live.has(uid)) this.lastSynced.delete(uid);
    // Workers of pods the informer no longer has (a missed delete event).
    for (const [uid, entry] of this.pods) {
      if (live.has(uid)) continue;
      this.serialized(uid, async () => {
        await entry.worker.terminate(0);
        this.pods.delete(uid);
        await this.podRemoved(uid);
      });
    }
    await Promise.allSettled([...this.busy.values()]);
  }

  /** The runtime's state per pod UID: its sandboxes' and containers' ids and states, in one string. */
  private async relist(): Promise<Map<string, string>> {
    const [sandboxes, containers] = await Promise.all([this.runtime.listPodSandbox(), this.runtime.listContainers()]);
    const parts = new Map<string, string[]>();
    const add = (uid: string | undefined, part: string): void => {
      if (!uid) return;
      const list = parts.get(uid);
      if (list) list.push(part);
      else parts.set(uid, [part]);
    };
    for (const sb of sandboxes) add(sb.labels[POD_UID_LABEL], `s:${sb.id}:${sb.state}`);
    for (const c of containers) add(c.labels[POD_UID_LABEL], `c:${c.id}:${c.state}`);
    const out = new Map<string, string>();
    for (const [uid, list] of parts) out.set(uid, list.sort().join(','));
    return out;
  }

  /**
   * Removes what the runtime runs for pods the API no longer has (deleted while the agent was down,
   * or leftovers of a failed termination): their containers and sandboxes, by the pod UID label.
   */
  private async housekeeping(): Promise<void> {
    const informer = this.informer;
    if (!informer?.synced) return;
    if (!this.staticLoaded) return;
    const known = new Set(informer.list().map((p) => p.metadata.uid ?? ''));
    for (const uid of this.pods.keys()) known.add(uid);
    for (const uid of this.staticPods.keys()) known.add(uid);
    const orphans = new Set<string>();
    for (const sb of await this.runtime.listPodSandbox()) {
      const uid = sb.labels[POD_UID_LABEL];
      if (uid && !known.has(uid) && !this.busy.has(uid)) orphans.add(uid);
    }
    if (this.volumes) {
      const active = new Set(known);
      for (const uid of this.busy.keys()) active.add(uid);
      await this.volumes.cleanupOrphans(active).catch((err: unknown) => this.log.warn({ err: errorText(err) }, 'removing orphaned pod volumes failed'));
    }
    if (this.options.cgroups) {
      for (const cg of await this.options.cgroups.listPodCgroups()) {
        if (known.has(cg.uid) || orphans.has(cg.uid) || this.busy.has(cg.uid)) continue;
        await this.options.cgroups.removePodCgroup(cg.name).catch((err: unknown) => this.log.warn({ uid: cg.uid, err: errorText(err) }, 'removing an orphaned pod cgroup failed'));
      }
    }
    for (const uid of orphans) {
      this.serialized(uid, async () => {
        // A throwaway worker: it terminates whatever the runtime lists under the UID.
        const worker = this.newWorker();
        await worker.terminateUid(uid, 0);
        await this.podRemoved(uid);
        this.log.info({ uid }, 'removed the sandbox of a pod the API no longer has');
      });
    }
  }

  /** Runs `fn` for `uid` unless one is in flight (then once more after it). */
  private serialized(uid: string, fn: () => Promise<void>): void {
    if (this.busy.has(uid)) {
      this.again.add(uid);
      return;
    }
    const run = fn()
      .catch((err: unknown) => this.log.warn({ uid, err: errorText(err) }, 'pod sync failed'))
      .finally(() => {
        this.busy.delete(uid);
        if (this.again.delete(uid) && !this.stopped) {
          const latest = this.staticPods.get(uid) ?? this.informer?.list().find((p) => p.metadata.uid === uid);
          if (latest) this.syncPod(latest);
        }
      });
    this.busy.set(uid, run);
  }

  private syncPod(pod: Pod): void {
    const uid = pod.metadata.uid;
    if (!uid || this.stopped || this.finished.has(uid)) return;
    this.serialized(uid, async () => {
      // The informer's latest copy: the event that queued this may be stale.
      const latest = this.informer?.get(`${pod.metadata.namespace}/${pod.metadata.name}`);
      const p = latest && latest.metadata.uid === uid ? latest : pod;
      if (p.metadata.deletionTimestamp) await this.finishDeletion(p);
      else await this.syncRunning(p);
    });
  }

  private async syncRunning(pod: Pod): Promise<void> {
    const uid = pod.metadata.uid!;
    let entry = this.pods.get(uid);
    if (!entry) {
      entry = { worker: this.newWorker(await this.runtimeName()) };
      this.pods.set(uid, entry);
    }
    const base: Pod = entry.written ? { ...pod, status: entry.written } : pod;
    this.lastSynced.set(uid, Date.now());
    await entry.worker.sync(base);
    if (this.stopped) return;
    const status = await entry.worker.status(base);
    if (this.staticPods.has(uid)) {
      // A static pod's status goes to its mirror pod (made, or made again, as needed).
      entry.written = status;
      const mirror = await this.ensureMirror(pod);
      if (mirror && statusChanged(mirror.status ?? {}, status)) await this.writeStatus(mirror, status);
      return;
    }
    if (!statusChanged(base.status ?? {}, status)) return;
    await this.writeStatus(pod, status);
    entry.written = status;
  }

  // -------------------------------------------------------------------------------------------
  // Static pods
  // -------------------------------------------------------------------------------------------

  /** Reads the static pod sources; starts new pods, stops removed ones (and their mirror pods). */
  private async refreshStaticPods(): Promise<void> {
    const found: StaticPod[] = [];
    const errors: string[] = [];
    if (this.options.staticPodPath) {
      const r = await readManifestDir(this.options.staticPodPath, this.nodeName);
      found.push(...r.pods);
      errors.push(...r.errors);
    }
    if (this.options.staticPodURL) {
      try {
        const r = await readManifestUrl(this.options.staticPodURL, this.nodeName);
        found.push(...r.pods);
        errors.push(...r.errors);
      } catch (err) {
        // An unreachable URL keeps the pods it served last time, as the kubelet does.
        errors.push(errorText(err));
        for (const pod of this.staticPods.values()) if (pod.metadata.annotations?.['kubernetes.io/config.source'] === 'http') found.push(pod as unknown as StaticPod);
        this.reportStaticErrors(errors);
        return this.applyStaticPods(found);
      }
    }
    this.reportStaticErrors(errors);
    this.applyStaticPods(found);
  }

  private reportStaticErrors(errors: readonly string[]): void {
    for (const e of errors) if (!this.staticErrors.has(e)) this.log.warn({ err: e }, 'a static pod manifest was ignored');
    this.staticErrors.clear();
    for (const e of errors) this.staticErrors.add(e);
  }

  private applyStaticPods(found: readonly StaticPod[]): void {
    const next = new Map<string, Pod>();
    for (const p of found) next.set(p.metadata.uid, p as unknown as Pod);
    for (const [uid, pod] of this.staticPods) {
      if (next.has(uid)) continue;
      this.staticPods.delete(uid);
      this.log.info({ pod: `${pod.metadata.namespace}/${pod.metadata.name}` }, 'static pod removed from its source: stopping it');
      this.serialized(uid, async () => {
        const entry = this.pods.get(uid);
        if (entry) await entry.worker.terminate((pod.spec as { terminationGracePeriodSeconds?: number }).terminationGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS);
        this.pods.delete(uid);
        await this.podRemoved(uid);
        await this.deleteMirror(pod.metadata.namespace ?? 'default', pod.metadata.name ?? '', uid);
      });
    }
    for (const [uid, pod] of next) {
      const added = !this.staticPods.has(uid);
      this.staticPods.set(uid, pod);
      if (added) {
        this.log.info({ pod: `${pod.metadata.namespace}/${pod.metadata.name}`, uid }, 'static pod found');
        this.syncPod(pod);
      }
    }
    this.staticLoaded = true;
  }

  /** The static pod's mirror pod in the API: the existing one, or a new one (replacing a stale one). */
  private async ensureMirror(pod: Pod): Promise<Pod | undefined> {
    const ns = pod.metadata.namespace ?? 'default';
    const name = pod.metadata.name ?? '';
    const uid = pod.metadata.uid ?? '';
    const current = this.informer?.get(`${ns}/${name}`);
    if (current && mirrorHash(current) === uid && !current.metadata.deletionTimestamp) return current;
    if (current && mirrorHash(current) === undefined) {
      this.log.warn({ pod: `${ns}/${name}` }, 'a pod that is not a mirror pod has the static pod\'s name: no mirror pod');
      return undefined;
    }
    if (current) await this.deleteMirror(ns, name, current.metadata.uid ?? '', true);
    try {
      return await this.api.create<Pod>(`/api/v1/namespaces/${ns}/pods`, mirrorPodOf(pod as unknown as StaticPod, { name: this.nodeName, ...(this.nodeUid ? { uid: this.nodeUid } : {}) }));
    } catch (err) {
      if (isAlreadyExists(err)) return undefined; // the informer will show it; next sync
      throw err;
    }
  }

  /** Deletes a mirror pod (grace 0; with `exact`, `uid` is the API object's UID precondition). */
  private async deleteMirror(ns: string, name: string, uid: string, exact = false): Promise<void> {
    const current = this.informer?.get(`${ns}/${name}`);
    if (!current || mirrorHash(current) === undefined) return;
    if (!exact && mirrorHash(current) !== uid) return;
    try {
      await this.api.request('DELETE', `/api/v1/namespaces/${ns}/pods/${name}`, {
        body: { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, preconditions: { uid: current.metadata.uid } },
      });
    } catch (err) {
      if (!isNotFound(err) && !(err instanceof ApiStatusError && err.code === 409)) throw err;
    }
  }

  /** A mirror pod changed: one being deleted, or of no static pod we run, goes (it is made again if needed). */
  private mirrorChanged(pod: Pod): void {
    if (!this.staticLoaded) return;
    const hash = mirrorHash(pod)!;
    const ns = pod.metadata.namespace ?? 'default';
    const name = pod.metadata.name ?? '';
    if (pod.metadata.deletionTimestamp || !this.staticPods.has(hash)) {
      void this.deleteMirror(ns, name, pod.metadata.uid ?? '', true).catch((err: unknown) => this.log.warn({ pod: `${ns}/${name}`, err: errorText(err) }, 'deleting a mirror pod failed'));
    }
  }

  private newWorker(runtimeName?: string): PodWorker {
    const o = this.options;
    return new PodWorker({
      runtime: this.runtime,
      ...(runtimeName ? { runtimeName } : {}),
      ...(o.addresses ? { hostIPs: o.addresses } : {}),
      nodeMemoryBytes: this.machine.memoryBytes,
      ...(o.cgroups ? { cgroups: o.cgroups } : {}),
      ...(this.probes ? { probes: this.probes } : {}),
      preparePod: (pod) => this.preparePod(pod),
      setupContainer: (pod, c, podIPs, restartCount) => this.setupContainer(pod, c, podIPs, restartCount),
      onEvent: (pod, type, reason, message) => this.events.event(pod as Pod, type, reason, message),
    });
  }

  /** Volumes (set up and refreshed on every sync). */
  private async preparePod(pod: V1WorkerPod): Promise<void> {
    if (!this.volumes) return;
    await this.volumes.setUp(pod as unknown as V1PodObject);
  }

  /** The pod's /etc/hosts (written when its IPs change). */
  private async etcHosts(pod: V1WorkerPod, podIPs: readonly string[]): Promise<void> {
    if (!this.volumes) return;
    const uid = pod.metadata.uid ?? '';
    const key = podIPs.join(',');
    if (this.hostsWritten.get(uid) === key) return;
    await this.volumes.writeEtcHosts(pod as unknown as V1PodObject, podIPs);
    this.hostsWritten.set(uid, key);
  }

  /** A container's environment (env, envFrom, service links), expanded command/args and mounts. */
  private async setupContainer(pod: V1WorkerPod, c: V1WorkerContainer, podIPs: readonly string[], restartCount: number): Promise<ContainerSetup> {
    const p = pod as unknown as V1PodObject;
    const container = c as unknown as V1PodContainer;
    const envs = await resolveEnv(p, container, this.sources, {
      podIPs,
      hostIPs: this.options.addresses ?? [],
      nodeAllocatable: { cpu: String(this.machine.cpus), memory: String(this.machine.memoryBytes) },
      onWarning: (reason, message) => this.events.event(pod as Pod, 'Warning', reason, message),
    });
    const { command, args } = expandCommandAndArgs(container, envs);
    await this.etcHosts(pod, podIPs);
    const mounts = this.volumes ? await this.volumes.mountsFor(p, container, { envs, attempt: restartCount }) : [];
    return { envs, mounts, ...(command ? { command } : {}), ...(args ? { args } : {}) };
  }

  /** A pod's worker is gone: its volumes go too. */
  private async podRemoved(uid: string): Promise<void> {
    this.hostsWritten.delete(uid);
    await this.volumes?.tearDown(uid);
  }

  private runtimeNameCache?: string;
  private async runtimeName(): Promise<string> {
    if (this.runtimeNameCache === undefined) {
      try {
        this.runtimeNameCache = (await this.runtime.version()).runtimeName;
      } catch {
        return 'containerd';
      }
    }
    return this.runtimeNameCache;
  }

  /** PUTs the pod's status with its resourceVersion, re-reading on conflict. */
  private async writeStatus(pod: Pod, status: V1PodStatus): Promise<void> {
    const path = `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}`;
    let current: Pod = pod;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.api.update(`${path}/status`, { ...current, status });
        return;
      } catch (err) {
        if (isNotFound(err)) return;
        if (!isConflict(err) || attempt >= 4) throw err;
      }
      try {
        current = await this.api.get<Pod>(path);
      } catch (err) {
        if (isNotFound(err)) return;
        throw err;
      }
      if (current.metadata.uid !== pod.metadata.uid) return;
    }
  }

  /** Terminates the pod's containers, then deletes the pod for good (grace 0, UID precondition). */
  private async finishDeletion(pod: Pod): Promise<void> {
    const uid = pod.metadata.uid!;
    const entry = this.pods.get(uid);
    if (entry) await entry.worker.terminate(pod.metadata.deletionGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS);
    if (this.stopped) return;
    try {
      await this.api.request('DELETE', `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}`, {
        body: { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, preconditions: { uid } },
      });
    } catch (err) {
      // Gone already, or a new pod under the same name (the UID precondition failed).
      if (!isNotFound(err) && !(err instanceof ApiStatusError && err.code === 409)) throw err;
    }
    this.pods.delete(uid);
    await this.podRemoved(uid);
    this.finished.add(uid);
    this.log.debug({ pod: `${pod.metadata.namespace}/${pod.metadata.name}` }, 'pod deleted');
  }
}

function sameConditions(a: readonly V1NodeCondition[] | undefined, b: readonly V1NodeCondition[]): boolean {
  if (!a || a.length !== b.length) return false;
  return a.every((x, i) => x.type === b[i]!.type && x.status === b[i]!.status && x.reason === b[i]!.reason && x.message === b[i]!.message);
}
