/**
 * The node agent's pod worker: one per pod, it drives the container runtime (CRI) towards the
 * pod's spec, as the kubelet's `podWorkers` + `kuberuntime` `SyncPod`/`KillPod` do (simplified).
 *
 * - {@link PodWorker.sync} ensures the sandbox, pulls images per `imagePullPolicy`, runs the init
 *   containers in order (sidecars, `restartPolicy: Always` init containers, just have to be
 *   running), then creates and starts the containers, restarting exited ones per the pod's
 *   `restartPolicy` with the kubelet's crash-loop back-off (10 s doubling to 300 s).
 * - {@link PodWorker.status} computes the API `PodStatus` with {@link podStatus}.
 * - {@link PodWorker.terminate} stops and removes every container and the sandbox.
 *
 * The worker makes no API calls (its caller writes the status) and starts no timers: back-offs are
 * evaluated against the injected {@link Clock} on each sync, so the caller decides when to sync
 * again ({@link PodWorker.nextSyncAt} tells when a back-off ends). Calls are serialized per pod.
 *
 * @module
 */
import {
  CONTAINER_RESTART_COUNT_ANNOTATION,
  isRuntimeError,
  restartCountOf,
  type ContainerConfig,
  type ContainerRuntime,
  type ContainerStatus as CriContainerStatus,
  type KeyValue,
  type Mount,
  type PodSandboxConfig,
  type PodSandboxStatus,
} from '@kubernel/sdk';
import type { CgroupManager } from './cgroups.js';
import { MINIMUM_GRACE_PERIOD_SECONDS, runPostStartHook, runPreStopHook, type V1Lifecycle } from './lifecycle.js';
import { isRestartableInitContainer, podStatus, type V1Container, type V1Pod, type V1PodSpec, type V1PodStatus, type WaitingReason } from './pod-status.js';
import type { ProbeManager, V1ProbedContainer, V1ProbedPod } from './prober.js';
import { containerResources, podCgroupParent, podResourceConfig } from './resources.js';

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/** The time source of a worker: milliseconds since the epoch. */
export interface Clock {
  now(): number;
}

/** The system clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** The runtime calls the worker makes (a {@link ContainerRuntime} has them all). */
export type PodWorkerRuntime = Pick<
  ContainerRuntime,
  | 'runPodSandbox'
  | 'stopPodSandbox'
  | 'removePodSandbox'
  | 'podSandboxStatus'
  | 'listPodSandbox'
  | 'createContainer'
  | 'startContainer'
  | 'stopContainer'
  | 'removeContainer'
  | 'listContainers'
  | 'containerStatus'
  | 'imageStatus'
  | 'pullImage'
  | 'execSync'
>;

/** `core/v1` `EnvVar` (only plain values are passed on for now). */
export interface V1EnvVar {
  readonly name: string;
  readonly value?: string;
  readonly valueFrom?: unknown;
}

/** `core/v1` `Container`: the fields the worker reads. */
export interface V1WorkerContainer extends V1Container, Omit<V1ProbedContainer, 'readinessProbe' | 'startupProbe' | 'restartPolicy' | 'image' | 'resources'> {
  readonly lifecycle?: V1Lifecycle;
  readonly command?: readonly string[];
  readonly args?: readonly string[];
  readonly workingDir?: string;
  readonly env?: readonly V1EnvVar[];
  readonly imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never' | (string & {});
}

/** `core/v1` `Pod`: the fields the worker reads. */
export interface V1WorkerPod extends V1Pod {
  readonly metadata: {
    readonly name?: string;
    readonly namespace?: string;
    readonly uid?: string;
    readonly deletionTimestamp?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly spec: Omit<V1PodSpec, 'containers' | 'initContainers'> & {
    readonly containers: readonly V1WorkerContainer[];
    readonly initContainers?: readonly V1WorkerContainer[];
    readonly hostname?: string;
    readonly terminationGracePeriodSeconds?: number;
    readonly overhead?: Readonly<Record<string, string>>;
    readonly priority?: number;
    readonly priorityClassName?: string;
  };
}

/** What a pod's containers get from outside the worker: mounts (volumes) and environment. */
export interface ContainerSetup {
  readonly mounts?: readonly Mount[];
  readonly envs?: readonly KeyValue[];
  /** The command and args with `$(VAR)` references expanded. */
  readonly command?: readonly string[];
  readonly args?: readonly string[];
}

/** An event about the pod (`Killing`, `Unhealthy`, `FailedPostStartHook`, `FailedMount`, ...). */
export type PodEventSink = (pod: V1WorkerPod, type: 'Normal' | 'Warning', reason: string, message: string) => void;

/** Options of a {@link PodWorker}. */
export interface PodWorkerOptions {
  readonly runtime: PodWorkerRuntime;
  /** Default {@link systemClock}. */
  readonly clock?: Clock;
  /** The runtime's name for container IDs (`containerd://...`). */
  readonly runtimeName?: string;
  /** The node's IPs, for `hostIP(s)`. */
  readonly hostIPs?: readonly string[];
  /**
   * Pod-level cgroups: the sandbox runs under the pod's cgroup (`/kubepods/burstable/pod<uid>`),
   * created with the pod's limits before the sandbox and removed after it.
   */
  readonly cgroups?: Pick<CgroupManager, 'root' | 'ensurePodCgroup' | 'removePodCgroup'>;
  /** The node's memory capacity in bytes: containers get CRI resources (CPU shares/quota, memory limit, OOM score) when given. */
  readonly nodeMemoryBytes?: number;
  /** The prober: its verdicts make `ready`/`started`; a liveness (or startup) failure restarts the container. */
  readonly probes?: ProbeManager;
  /**
   * Prepares the pod on every sync (volumes), while its sandbox starts: a failure leaves the
   * containers waiting (`ContainerCreating`) and is reported as a `FailedMount` event.
   */
  readonly preparePod?: (pod: V1WorkerPod) => Promise<void>;
  /**
   * A container's mounts and environment; a failure leaves it waiting with
   * `CreateContainerConfigError` and the error's message (`configmap "x" not found`).
   */
  readonly setupContainer?: (pod: V1WorkerPod, container: V1WorkerContainer, podIPs: readonly string[], restartCount: number) => Promise<ContainerSetup>;
  /** Where the worker's events go. */
  readonly onEvent?: PodEventSink;
}

// ---------------------------------------------------------------------------------------------
// Constants and helpers
// ---------------------------------------------------------------------------------------------

/** The labels the kubelet puts on sandboxes and containers. */
export const POD_NAME_LABEL = 'io.kubernetes.pod.name';
export const POD_NAMESPACE_LABEL = 'io.kubernetes.pod.namespace';
export const POD_UID_LABEL = 'io.kubernetes.pod.uid';
export const CONTAINER_NAME_LABEL = 'io.kubernetes.container.name';

/** The crash-loop (and image pull) back-off: initial delay, cap, and the running time that resets it. */
export const BACKOFF_INITIAL_MS = 10_000;
export const BACKOFF_MAX_MS = 300_000;
export const BACKOFF_RESET_MS = 600_000;

/** A duration as Go's `time.Duration.String` writes whole seconds (`10s`, `1m20s`, `5m0s`). */
export function goDuration(ms: number): string {
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

/** The default pull policy of an image: `Always` for `:latest` or no tag, else `IfNotPresent`. */
export function defaultPullPolicy(image: string): 'Always' | 'IfNotPresent' {
  if (image.includes('@')) return 'IfNotPresent';
  const last = image.slice(image.lastIndexOf('/') + 1);
  const colon = last.lastIndexOf(':');
  return colon < 0 || last.slice(colon + 1) === 'latest' ? 'Always' : 'IfNotPresent';
}

/** The sandbox config of a pod (attempt counts sandboxes created before). */
export function sandboxConfigOf(pod: V1WorkerPod, attempt = 0, cgroupParent?: string): PodSandboxConfig {
  const name = pod.metadata.name ?? '';
  const namespace = pod.metadata.namespace ?? 'default';
  const uid = pod.metadata.uid ?? '';
  return {
    metadata: { name, namespace, uid, attempt },
    hostname: pod.spec.hostNetwork ? '' : (pod.spec.hostname ?? name),
    logDirectory: `/var/log/pods/${namespace}_${name}_${uid}`,
    labels: { ...(pod.metadata.labels ?? {}), [POD_NAME_LABEL]: name, [POD_NAMESPACE_LABEL]: namespace, [POD_UID_LABEL]: uid },
    annotations: { ...(pod.metadata.annotations ?? {}) },
    ...(cgroupParent ? { linux: { cgroupParent } } : {}),
  };
}

/** The container config of one container at a restart count, running `imageRef`. */
export function containerConfigOf(pod: V1WorkerPod, c: V1WorkerContainer, restartCount: number, imageRef: string, setup?: ContainerSetup, nodeMemoryBytes?: number): ContainerConfig {
  const envs: readonly KeyValue[] = setup?.envs ?? (c.env ?? []).filter((e) => e.valueFrom === undefined).map((e) => ({ key: e.name, value: e.value ?? '' }));
  return {
    metadata: { name: c.name, attempt: restartCount },
    image: { image: imageRef, userSpecifiedImage: c.image ?? '' },
    ...(setup?.command ?? c.command ? { command: setup?.command ?? c.command } : {}),
    ...(setup?.args ?? c.args ? { args: setup?.args ?? c.args } : {}),
    ...(c.workingDir ? { workingDir: c.workingDir } : {}),
    envs,
    labels: {
      [POD_NAME_LABEL]: pod.metadata.name ?? '',
      [POD_NAMESPACE_LABEL]: pod.metadata.namespace ?? 'default',
      [POD_UID_LABEL]: pod.metadata.uid ?? '',
      [CONTAINER_NAME_LABEL]: c.name,
    },
    annotations: { [CONTAINER_RESTART_COUNT_ANNOTATION]: String(restartCount) },
    logPath: `${c.name}/${restartCount}.log`,
    ...(setup?.mounts && setup.mounts.length > 0 ? { mounts: setup.mounts } : {}),
    ...(nodeMemoryBytes !== undefined ? { linux: { resources: containerResources(pod, c, { nodeMemoryCapacity: nodeMemoryBytes }) } } : {}),
  };
}

interface Backoff {
  delayMs: number;
  lastUpdate: number;
}

interface Waiting {
  readonly reason: WaitingReason | (string & {});
  readonly message?: string;
}

/** What the worker knows of one container name. */
interface ContainerRecord {
  current?: string;
  previous?: string;
  waiting?: Waiting;
  /** When the back-off behind {@link waiting} ends (ms since the epoch). */
  retryAt?: number;
}

const BACKOFF_REASONS = new Set(['CrashLoopBackOff', 'ImagePullBackOff', 'ErrImagePull']);

const nanosToMs = (n: number): number => Math.floor(n / 1e6);

// ---------------------------------------------------------------------------------------------
// The worker
// ---------------------------------------------------------------------------------------------

/** Drives one pod's sandbox and containers. */
export class PodWorker {
  private readonly runtime: PodWorkerRuntime;
  private readonly clock: Clock;
  private readonly opts: PodWorkerOptions;
  private pod: V1WorkerPod | undefined;
  private sandboxId: string | undefined;
  private sandboxConfig: PodSandboxConfig | undefined;
  private readonly containers = new Map<string, ContainerRecord>();
  private readonly backoffs = new Map<string, Backoff>();
  private readonly startTime: number;
  private terminated = false;
  private adoptionDone = false;
  private mountFailure: string | undefined;
  private podIPsCache: readonly string[] | undefined;
  private adopted = false;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(opts: PodWorkerOptions) {
    this.opts = opts;
    this.runtime = opts.runtime;
    this.clock = opts.clock ?? systemClock;
    this.startTime = this.clock.now();
  }

  /** True once {@link terminate} ran. */
  get isTerminated(): boolean {
    return this.terminated;
  }

  /** Runs `fn` after every call queued before it (one operation at a time per pod). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Brings the runtime towards `pod`'s spec. A no-op once terminated. */
  sync(pod: V1WorkerPod): Promise<void> {
    return this.serial(async () => {
      if (this.terminated) return;
      this.pod = pod;
      // Volumes are prepared while the sandbox starts (neither needs the other), as the kubelet
      // mounts volumes before it syncs the pod's sandbox.
      const prepared = this.opts.preparePod
        ? this.opts.preparePod(pod).then(
            () => undefined,
            (err: unknown) => (err as { eventMessage?: string }).eventMessage ?? (err instanceof Error ? err.message : String(err)),
          )
        : Promise.resolve(undefined);
      try {
        if (!(await this.ensureSandbox(pod))) return;
      } finally {
        // Never leave the preparation running unobserved.
        await prepared;
      }
      const failure = await prepared;
      if (failure !== undefined) {
        if (failure !== this.mountFailure) this.opts.onEvent?.(pod, 'Warning', 'FailedMount', failure);
        this.mountFailure = failure;
        return;
      }
      this.mountFailure = undefined;
      if (!(await this.syncInitContainers(pod))) return;
      for (const c of pod.spec.containers) await this.syncContainer(pod, c, false);
    });
  }

  /**
   * When a back-off that holds a container back ends (ms since the epoch), or undefined when none
   * does: the caller's cue to sync again.
   */
  nextSyncAt(): number | undefined {
    let next: number | undefined;
    for (const rec of this.containers.values()) {
      if (rec.retryAt === undefined || !BACKOFF_REASONS.has(rec.waiting?.reason ?? '')) continue;
      if (next === undefined || rec.retryAt < next) next = rec.retryAt;
    }
    return next;
  }

  /**
   * Ensures a ready sandbox: on the first sync it adopts what the runtime already runs for the pod
   * (an agent restarted while its pods ran); a sandbox that is no longer ready (its network
   * namespace or pause process died) is replaced with a new attempt and every container of the
   * old one is killed and started again, as the kubelet does.
   */
  private async ensureSandbox(pod: V1WorkerPod): Promise<boolean> {
    if (!this.adoptionDone) {
      this.adoptionDone = true;
      await this.adopt(pod);
    }
    let attempt = 0;
    if (this.sandboxId !== undefined) {
      let state: PodSandboxStatus['state'] | undefined;
      try {
        state = (await this.runtime.podSandboxStatus(this.sandboxId)).status.state;
      } catch (err) {
        if (!isRuntimeError(err, 'NotFound')) throw err;
      }
      if (state === 'SANDBOX_READY') return true;
      attempt = (this.sandboxConfig?.metadata.attempt ?? 0) + 1;
      await this.killSandbox(this.sandboxId);
    }
    const parent = this.cgroupParent(pod);
    if (parent) await this.opts.cgroups!.ensurePodCgroup(parent, podResourceConfig(pod));
    const config = sandboxConfigOf(pod, attempt, parent);
    this.sandboxId = await this.runtime.runPodSandbox(config);
    this.sandboxConfig = config;
    this.podIPsCache = undefined;
    return true;
  }

  /** The pod's cgroup (`cgroupParent` of its sandbox) when pod cgroups are managed. */
  private cgroupParent(pod: V1WorkerPod | undefined): string | undefined {
    if (!this.opts.cgroups || !pod?.metadata.uid) return undefined;
    return podCgroupParent(pod, this.opts.cgroups.root);
  }

  /** The sandbox's IPs (primary first); empty without a sandbox or for hostNetwork pods. */
  private async podIPs(): Promise<readonly string[]> {
    if (this.podIPsCache) return this.podIPsCache;
    if (this.sandboxId === undefined) return [];
    try {
      const net = (await this.runtime.podSandboxStatus(this.sandboxId)).status.network;
      const ips = net?.ip ? [net.ip, ...(net.additionalIps ?? [])] : [];
      this.podIPsCache = ips;
      return ips;
    } catch (err) {
      if (isRuntimeError(err, 'NotFound')) return [];
      throw err;
    }
  }

  /** Stops and removes a sandbox that is no longer ready and its containers (kept as history: none). */
  private async killSandbox(id: string): Promise<void> {
    for (const ctr of await this.runtime.listContainers({ podSandboxId: id })) {
      try {
        await this.runtime.stopContainer(ctr.id, 0);
      } catch (err) {
        if (!isRuntimeError(err, 'NotFound')) throw err;
      }
    }
    try {
      await this.runtime.stopPodSandbox(id);
    } catch (err) {
      if (!isRuntimeError(err, 'NotFound')) throw err;
    }
    // The containers stay (exited) so that restart counts and lastState carry over to the new
    // sandbox; they go with the pod.
  }

  /**
   * Takes over the newest ready sandbox the runtime has for the pod's UID and, per container name,
   * its newest instance (current) and the one before (previous); older instances are removed.
   */
  private async adopt(pod: V1WorkerPod): Promise<void> {
    const uid = pod.metadata.uid;
    if (!uid) return;
    const sandboxes = (await this.runtime.listPodSandbox({ labelSelector: { [POD_UID_LABEL]: uid } })).sort((a, b) => b.createdAt - a.createdAt);
    const ready = sandboxes.find((s) => s.state === 'SANDBOX_READY');
    if (!ready) return;
    this.sandboxId = ready.id;
    this.sandboxConfig = sandboxConfigOf(pod, ready.metadata.attempt ?? 0, this.cgroupParent(pod));
    const byName = new Map<string, { id: string; restarts: number; createdAt: number }[]>();
    for (const ctr of await this.runtime.listContainers({ labelSelector: { [POD_UID_LABEL]: uid } })) {
      const name = ctr.labels[CONTAINER_NAME_LABEL] ?? ctr.metadata.name;
      const list = byName.get(name) ?? [];
      list.push({ id: ctr.id, restarts: Number(ctr.annotations[CONTAINER_RESTART_COUNT_ANNOTATION] ?? ctr.metadata.attempt ?? 0), createdAt: ctr.createdAt });
      byName.set(name, list);
    }
    for (const [name, list] of byName) {
      list.sort((a, b) => b.restarts - a.restarts || b.createdAt - a.createdAt);
      const rec = this.record(name);
      rec.current = list[0]?.id;
      rec.previous = list[1]?.id;
      for (const old of list.slice(2)) await this.removeQuietly(old.id);
    }
    this.adopted = true;
  }

  /** Whether the worker took over a sandbox that was already running (after an agent restart). */
  get wasAdopted(): boolean {
    return this.adopted;
  }

  private record(name: string): ContainerRecord {
    let rec = this.containers.get(name);
    if (!rec) {
      rec = {};
      this.containers.set(name, rec);
    }
    return rec;
  }

  private async criStatus(id: string | undefined): Promise<CriContainerStatus | undefined> {
    if (id === undefined) return undefined;
    try {
      return (await this.runtime.containerStatus(id)).status;
    } catch (err) {
      if (isRuntimeError(err, 'NotFound')) return undefined;
      throw err;
    }
  }

  /** Runs the init containers in order; true once they all completed (sidecars: are running). */
  private async syncInitContainers(pod: V1WorkerPod): Promise<boolean> {
    for (const c of pod.spec.initContainers ?? []) {
      if (isRestartableInitContainer(c)) {
        const s = await this.syncContainer(pod, c, true);
        if (s?.state !== 'CONTAINER_RUNNING') return false;
        continue;
      }
      const s = await this.syncContainer(pod, c, true);
      if (s?.state !== 'CONTAINER_EXITED' || s.exitCode !== 0) return false;
    }
    return true;
  }

  /** Whether an exited container is restarted under the pod's policy. */
  private shouldRestart(pod: V1WorkerPod, c: V1WorkerContainer, init: boolean, exitCode: number): boolean {
    if (init && isRestartableInitContainer(c)) return true;
    const policy = pod.spec.restartPolicy ?? 'Always';
    if (init) return policy !== 'Never' && exitCode !== 0;
    if (policy === 'Always') return true;
    if (policy === 'OnFailure') return exitCode !== 0;
    return false;
  }

  /** Syncs one container; returns the runtime's status of its current instance afterwards. */
  private async syncContainer(pod: V1WorkerPod, c: V1WorkerContainer, init: boolean): Promise<CriContainerStatus | undefined> {
    const rec = this.record(c.name);
    const cur = await this.criStatus(rec.current);
    if (cur === undefined) {
      rec.current = undefined;
      return this.startContainer(pod, c, rec, 0);
    }
    if (cur.state === 'CONTAINER_RUNNING' && this.opts.probes) {
      const order = this.opts.probes.livenessFailed(pod.metadata.uid ?? '', c.name);
      if (order && order.containerId === cur.id) {
        this.opts.onEvent?.(pod, 'Warning', 'Unhealthy', order.probeMessage);
        this.opts.onEvent?.(pod, 'Normal', 'Killing', order.message);
        await this.stopWithHook(pod, c, cur.id, order.gracePeriodSeconds);
        const stopped = await this.criStatus(cur.id);
        if (stopped) return this.syncExited(pod, c, init, rec, stopped);
        return undefined;
      }
    }
    if (cur.state !== 'CONTAINER_EXITED') {
      if (cur.state === 'CONTAINER_RUNNING') rec.waiting = undefined;
      return cur;
    }
    return this.syncExited(pod, c, init, rec, cur);
  }

  /** Runs the container's preStop hook (if any) within `grace` seconds, then stops it with the time left. */
  private async stopWithHook(pod: V1WorkerPod, c: V1WorkerContainer | undefined, id: string, grace: number): Promise<void> {
    let timeout = grace;
    const preStop = c?.lifecycle?.preStop;
    if (preStop && c) {
      const outcome = await runPreStopHook(preStop, { pod, container: c, containerId: id, podIP: (await this.podIPs())[0] ?? '', execSync: (cid, cmd, t) => this.runtime.execSync(cid, cmd, t) }, grace);
      if (outcome.failure) this.opts.onEvent?.(pod, outcome.failure.event.type, outcome.failure.event.reason, outcome.failure.message);
      timeout = outcome.gracePeriodSeconds;
    }
    try {
      await this.runtime.stopContainer(id, timeout);
    } catch (err) {
      if (!isRuntimeError(err, 'NotFound')) throw err;
    }
  }

  /** An exited container: restart it per the pod's policy, with the crash-loop back-off. */
  private async syncExited(pod: V1WorkerPod, c: V1WorkerContainer, init: boolean, rec: ContainerRecord, cur: CriContainerStatus): Promise<CriContainerStatus | undefined> {
    if (!this.shouldRestart(pod, c, init, cur.exitCode)) {
      rec.waiting = undefined;
      return cur;
    }
    // The kubelet's doBackOff: in back-off since the container finished, or restart now.
    const key = `container/${c.name}`;
    const now = this.clock.now();
    const finished = nanosToMs(cur.finishedAt);
    let b = this.backoffs.get(key);
    if (b && (now - b.lastUpdate > BACKOFF_RESET_MS || finished - nanosToMs(cur.startedAt) >= BACKOFF_RESET_MS)) {
      this.backoffs.delete(key);
      b = undefined;
    }
    if (b && now - finished < b.delayMs) {
      const meta = pod.metadata;
      if (rec.waiting?.reason !== 'CrashLoopBackOff') this.opts.onEvent?.(pod, 'Warning', 'BackOff', `Back-off restarting failed container ${c.name} in pod ${meta.name ?? ''}_${meta.namespace ?? 'default'}(${meta.uid ?? ''})`);
      rec.waiting = {
        reason: 'CrashLoopBackOff',
        message: `back-off ${goDuration(b.delayMs)} restarting failed container=${c.name} pod=${meta.name ?? ''}_${meta.namespace ?? 'default'}(${meta.uid ?? ''})`,
      };
      rec.retryAt = finished + b.delayMs;
      return cur;
    }
    this.backoffs.set(key, { delayMs: b ? Math.min(b.delayMs * 2, BACKOFF_MAX_MS) : BACKOFF_INITIAL_MS, lastUpdate: now });
    const started = await this.startContainer(pod, c, rec, restartCountOf(cur) + 1);
    return started ?? cur;
  }

  /** Pulls the image per policy; its reference, or undefined with `rec.waiting` set. */
  private async ensureImage(c: V1WorkerContainer, rec: ContainerRecord): Promise<string | undefined> {
    const image = c.image ?? '';
    if (image === '') {
      rec.waiting = { reason: 'InvalidImageName', message: 'image is empty' };
      return undefined;
    }
    const policy = c.imagePullPolicy ?? defaultPullPolicy(image);
    if (policy !== 'Always') {
      const present = (await this.runtime.imageStatus({ image })).image;
      if (present) {
        if (this.pod) this.opts.onEvent?.(this.pod, 'Normal', 'Pulled', `Container image "${image}" already present on machine`);
        return present.id;
      }
      if (policy === 'Never') {
        rec.waiting = { reason: 'ErrImageNeverPull', message: `Container image "${image}" is not present with pull policy of Never` };
        if (this.pod) this.opts.onEvent?.(this.pod, 'Warning', 'ErrImageNeverPull', rec.waiting.message!);
        return undefined;
      }
    }
    const key = `image/${image}`;
    const now = this.clock.now();
    const b = this.backoffs.get(key);
    if (b && now - b.lastUpdate < b.delayMs) {
      rec.waiting = { reason: 'ImagePullBackOff', message: `Back-off pulling image "${image}"` };
      rec.retryAt = b.lastUpdate + b.delayMs;
      return undefined;
    }
    try {
      const ref = await this.runtime.pullImage({ image }, undefined, this.sandboxConfig);
      this.backoffs.delete(key);
      return ref;
    } catch (err) {
      const fresh = !b || now - b.lastUpdate > BACKOFF_RESET_MS;
      const delayMs = fresh ? BACKOFF_INITIAL_MS : Math.min(b.delayMs * 2, BACKOFF_MAX_MS);
      this.backoffs.set(key, { delayMs, lastUpdate: now });
      rec.waiting = { reason: 'ErrImagePull', message: err instanceof Error ? err.message : String(err) };
      rec.retryAt = now + delayMs;
      return undefined;
    }
  }

  private async startContainer(pod: V1WorkerPod, c: V1WorkerContainer, rec: ContainerRecord, restartCount: number): Promise<CriContainerStatus | undefined> {
    const imageRef = await this.ensureImage(c, rec);
    if (imageRef === undefined) return undefined;
    let setup: ContainerSetup | undefined;
    if (this.opts.setupContainer) {
      try {
        setup = await this.opts.setupContainer(pod, c, await this.podIPs(), restartCount);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (rec.waiting?.message !== message) this.opts.onEvent?.(pod, 'Warning', 'Failed', `Error: ${message}`);
        rec.waiting = { reason: 'CreateContainerConfigError', message };
        return undefined;
      }
    }
    let id: string;
    try {
      id = await this.runtime.createContainer(this.sandboxId!, containerConfigOf(pod, c, restartCount, imageRef, setup, this.opts.nodeMemoryBytes), this.sandboxConfig!);
    } catch (err) {
      rec.waiting = { reason: 'CreateContainerError', message: err instanceof Error ? err.message : String(err) };
      this.opts.onEvent?.(pod, 'Warning', 'Failed', `Error: ${rec.waiting.message ?? ''}`);
      return undefined;
    }
    this.opts.onEvent?.(pod, 'Normal', 'Created', `Created container ${c.name}`);
    // Keep one previous instance (for lastState); older ones are removed.
    if (rec.current !== undefined) {
      if (rec.previous !== undefined) await this.removeQuietly(rec.previous);
      rec.previous = rec.current;
    }
    rec.current = id;
    try {
      await this.runtime.startContainer(id);
    } catch (err) {
      rec.waiting = { reason: 'RunContainerError', message: err instanceof Error ? err.message : String(err) };
      return this.criStatus(id);
    }
    rec.waiting = undefined;
    this.opts.onEvent?.(pod, 'Normal', 'Started', `Started container ${c.name}`);
    const postStart = c.lifecycle?.postStart;
    if (postStart) {
      const outcome = await runPostStartHook(postStart, { pod, container: c, containerId: id, podIP: (await this.podIPs())[0] ?? '', execSync: (cid, cmd, t) => this.runtime.execSync(cid, cmd, t) });
      if (!outcome.ok) {
        this.opts.onEvent?.(pod, outcome.event.type, outcome.event.reason, outcome.message);
        try {
          await this.runtime.stopContainer(id, Math.max(MINIMUM_GRACE_PERIOD_SECONDS, pod.spec.terminationGracePeriodSeconds ?? 30));
        } catch (err) {
          if (!isRuntimeError(err, 'NotFound')) throw err;
        }
        rec.waiting = { reason: outcome.reason, message: outcome.message };
      }
    }
    return this.criStatus(id);
  }

  private async removeQuietly(id: string): Promise<void> {
    try {
      await this.runtime.removeContainer(id);
    } catch (err) {
      if (!isRuntimeError(err, 'NotFound')) throw err;
    }
  }

  /**
   * The API `PodStatus` of the pod last synced (or `pod`), from the runtime's view now. `pod.status`
   * is the status last reported.
   */
  status(pod?: V1WorkerPod): Promise<V1PodStatus> {
    return this.serial(async () => {
      const p = pod ?? this.pod;
      if (!p) throw new Error('PodWorker.status: no pod synced yet');
      const containers: Record<string, CriContainerStatus | undefined> = {};
      const previousContainers: Record<string, CriContainerStatus | undefined> = {};
      const waiting: Record<string, Waiting | undefined> = {};
      for (const c of [...(p.spec.initContainers ?? []), ...p.spec.containers]) {
        const rec = this.containers.get(c.name);
        containers[c.name] = await this.criStatus(rec?.current);
        previousContainers[c.name] = await this.criStatus(rec?.previous);
        waiting[c.name] = rec?.waiting;
      }
      let sandbox: Pick<PodSandboxStatus, 'state' | 'network'> | undefined;
      if (this.sandboxId !== undefined) {
        try {
          sandbox = (await this.runtime.podSandboxStatus(this.sandboxId)).status;
        } catch (err) {
          if (!isRuntimeError(err, 'NotFound')) throw err;
        }
      }
      const probes = this.opts.probes;
      let verdicts: ReturnType<ProbeManager['verdicts']> | undefined;
      if (probes && !this.terminated) {
        const uid = p.metadata.uid ?? '';
        probes.addPod(p as unknown as V1ProbedPod);
        for (const [name, cri] of Object.entries(containers)) {
          if (!cri) continue;
          probes.updateContainer(uid, name, {
            containerId: cri.id,
            startedAt: nanosToMs(cri.startedAt),
            ...(sandbox?.network?.ip ? { podIP: sandbox.network.ip } : {}),
            running: cri.state === 'CONTAINER_RUNNING',
            exited: cri.state === 'CONTAINER_EXITED',
          });
        }
        verdicts = probes.verdicts(p as unknown as V1ProbedPod);
      }
      return podStatus(
        p,
        {
          ...(sandbox ? { sandbox } : {}),
          hostIPs: this.opts.hostIPs ?? [],
          startTime: new Date(this.startTime),
          containers,
          previousContainers,
          waiting,
          ...(verdicts ? { readiness: verdicts.readiness, started: verdicts.started } : {}),
          ...(this.opts.runtimeName ? { runtimeName: this.opts.runtimeName } : {}),
        },
        new Date(this.clock.now()),
      );
    });
  }

  /**
   * Stops every container (regular ones first, then init containers and sidecars, in reverse
   * order) with `gracePeriodSeconds`, stops the sandbox, and removes them all, including instances
   * the runtime lists for the pod's UID. Idempotent; later syncs are no-ops.
   */
  terminate(gracePeriodSeconds: number): Promise<void> {
    return this.serial(() => this.terminateNow(gracePeriodSeconds, this.pod?.metadata.uid));
  }

  /** {@link terminate} for a pod the worker never synced (an orphan found by its UID label). */
  terminateUid(uid: string, gracePeriodSeconds: number): Promise<void> {
    return this.serial(() => this.terminateNow(gracePeriodSeconds, uid));
  }

  private async terminateNow(gracePeriodSeconds: number, uid: string | undefined): Promise<void> {
    {
      this.terminated = true;
      const pod = this.pod;
      const grace = Math.max(0, Math.floor(gracePeriodSeconds));
      const regular = new Set((pod?.spec.containers ?? []).map((c) => c.name));
      const order = [
        ...[...this.containers.keys()].filter((n) => regular.has(n)),
        ...[...this.containers.keys()].filter((n) => !regular.has(n)).reverse(),
      ];
      const ids: string[] = [];
      for (const name of order) {
        const rec = this.containers.get(name)!;
        if (rec.current !== undefined) ids.push(rec.current);
        if (rec.previous !== undefined) ids.push(rec.previous);
      }
      const sandboxIds = this.sandboxId !== undefined ? [this.sandboxId] : [];
      if (uid) {
        for (const ctr of await this.runtime.listContainers({ labelSelector: { [POD_UID_LABEL]: uid } })) if (!ids.includes(ctr.id)) ids.push(ctr.id);
        for (const sb of await this.runtime.listPodSandbox({ labelSelector: { [POD_UID_LABEL]: uid } })) if (!sandboxIds.includes(sb.id)) sandboxIds.push(sb.id);
      }
      if (uid) this.opts.probes?.stopLivenessAndStartup(uid);
      const specs = new Map([...(pod?.spec.containers ?? []), ...(pod?.spec.initContainers ?? [])].map((c) => [c.name, c]));
      const nameOf = new Map<string, string>();
      for (const [name, rec] of this.containers) if (rec.current !== undefined) nameOf.set(rec.current, name);
      // Containers stop in parallel, each with its preStop hook inside the grace period.
      await Promise.all(ids.map(async (id) => {
        const name = nameOf.get(id);
        const running = pod && name !== undefined && (await this.criStatus(id))?.state === 'CONTAINER_RUNNING';
        if (running && pod) await this.stopWithHook(pod, specs.get(name), id, grace);
        else {
          try {
            await this.runtime.stopContainer(id, grace);
          } catch (err) {
            if (!isRuntimeError(err, 'NotFound')) throw err;
          }
        }
      }));
      for (const id of sandboxIds) {
        try {
          await this.runtime.stopPodSandbox(id);
        } catch (err) {
          if (!isRuntimeError(err, 'NotFound')) throw err;
        }
      }
      for (const id of ids) await this.removeQuietly(id);
      for (const id of sandboxIds) {
        try {
          await this.runtime.removePodSandbox(id);
        } catch (err) {
          if (!isRuntimeError(err, 'NotFound')) throw err;
        }
      }
      const parent = this.cgroupParent(pod);
      if (parent) await this.opts.cgroups!.removePodCgroup(parent);
      if (uid) this.opts.probes?.removePod(uid);
      this.containers.clear();
      this.backoffs.clear();
      this.sandboxId = undefined;
      this.sandboxConfig = undefined;
    }
  }
}
