/**
 * An in-memory CRI runtime: sandboxes, containers and images are records, containers "run" without
 * processes. Every call is O(1) or O(matches) in memory, so hundreds of hollow node agents fit in
 * one process. Timers (containers that exit on their own, simulated latencies) are unref'd and
 * cleared by `stopContainer`, `removeContainer` and `close`.
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import {
  CRI_API_VERSION,
  NETWORK_READY,
  RUNTIME_READY,
  RuntimeError,
  delay,
  type AttachRequest,
  type AuthConfig,
  type Container,
  type ContainerConfig,
  type ContainerFilter,
  type ContainerRuntime,
  type ContainerState,
  type ContainerStats,
  type ContainerStatsFilter,
  type ContainerStatusResponse,
  type ExecRequest,
  type ExecSyncResponse,
  type Image,
  type ImageFilter,
  type ImageFsInfoResponse,
  type ImageSpec,
  type ImageStatusResponse,
  type LinuxContainerResources,
  type PodSandbox,
  type PodSandboxConfig,
  type PodSandboxFilter,
  type PodSandboxState,
  type PodSandboxStatusResponse,
  type PortForwardRequest,
  type RuntimeCondition,
  type StatusResponse,
  type StreamingResponse,
  type VersionResponse,
} from '@kubernel/sdk';
import { mainBehaviour, parseCommand, type Step } from './commands.js';

/** The runtime's name in `version()`. */
export const FAKE_RUNTIME_NAME = 'cri-fake';
/** The runtime's version in `version()`. */
export const FAKE_RUNTIME_VERSION = '0.1.0';

/** Annotation on a container overriding its simulated exit code (with {@link RUN_SECONDS_ANNOTATION}). */
export const EXIT_CODE_ANNOTATION = 'cri-fake.kubernel.io/exit-code';
/** Annotation on a container: it exits after this many seconds (`Infinity`: never), whatever its command. */
export const RUN_SECONDS_ANNOTATION = 'cri-fake.kubernel.io/run-seconds';

/** Images present at start unless configured otherwise. */
export const DEFAULT_IMAGES: readonly string[] = Object.freeze([
  'registry.k8s.io/pause:3.9',
  'docker.io/library/busybox:latest',
  'docker.io/library/nginx:latest',
  'docker.io/library/alpine:latest',
]);

/** What the fake's behaviour depends on (the plugin config, plus hooks for tests). */
export interface FakeRuntimeOptions {
  /** Images present at start (any reference form; normalized like containerd does). */
  readonly images?: readonly string[];
  /** Simulated time a pull takes, ms; 0 by default. */
  readonly pullLatencyMs?: number;
  /** Simulated time a container start takes, ms; 0 by default. */
  readonly startLatencyMs?: number;
  /**
   * Images the simulated registry serves; absent: every image except those of an `.invalid`
   * registry host (RFC 2606: never resolves), which fail as an unreachable registry would.
   */
  readonly registry?: readonly string[];
  /** Files `cat PATH` finds in every container (by absolute path); any other path exits 1. */
  readonly files?: Readonly<Record<string, string>>;
  /** Exit code of an exec'd command the fake does not understand; 0 by default (exec probes pass). */
  readonly execDefaultExitCode?: number;
  /** Whether `NetworkReady` is true; true by default. */
  readonly networkReady?: boolean;
  /** The pod CIDR sandbox IPs are allocated from (IPv4); `10.88.0.0/16` by default. */
  readonly podCidr?: string;
  /** Base of the streaming URLs exec/attach/port-forward return (nothing serves them); `http://127.0.0.1:10010`. */
  readonly streamingBaseUrl?: string;
  /** A custom exec: return a result to override the built-in interpretation, or undefined to keep it. */
  readonly exec?: (containerId: string, cmd: readonly string[]) => { stdout?: string; stderr?: string; exitCode: number } | undefined;
}

interface ImageRecord {
  readonly id: string;
  readonly repoTags: string[];
  readonly repoDigests: string[];
  readonly size: number;
}

interface SandboxRecord {
  readonly id: string;
  readonly config: PodSandboxConfig;
  readonly reservedName: string;
  readonly runtimeHandler: string;
  readonly createdAt: number;
  readonly ip: string | undefined;
  state: PodSandboxState;
  readonly containers: Set<string>;
}

interface ContainerRecord {
  readonly id: string;
  readonly sandbox: SandboxRecord;
  readonly config: ContainerConfig;
  readonly reservedName: string;
  readonly imageName: string;
  readonly imageRef: string;
  readonly createdAt: number;
  state: ContainerState;
  startedAt: number;
  finishedAt: number;
  exitCode: number;
  reason: string;
  message: string;
  resources: LinuxContainerResources | undefined;
  timer: NodeJS.Timeout | undefined;
}

const nowNanos = (): number => Date.now() * 1e6;

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/**
 * Normalizes an image reference as containerd does: `busybox` →
 * `docker.io/library/busybox:latest`; a digest reference keeps its digest.
 */
export function normalizeImageRef(ref: string): string {
  let name = ref.trim();
  if (name === '') return name;
  if (/^(sha256:)?[a-f0-9]{64}$/.test(name)) return name.startsWith('sha256:') ? name : `sha256:${name}`;
  const at = name.indexOf('@');
  const digest = at >= 0 ? name.slice(at) : '';
  if (at >= 0) name = name.slice(0, at);
  const slash = name.indexOf('/');
  const first = slash >= 0 ? name.slice(0, slash) : '';
  if (slash < 0 || (!first.includes('.') && !first.includes(':') && first !== 'localhost')) {
    name = `docker.io/${name}`;
  }
  if (name.startsWith('docker.io/') && name.split('/').length === 2) name = `docker.io/library/${name.slice('docker.io/'.length)}`;
  const lastSlash = name.lastIndexOf('/');
  if (!digest && !name.slice(lastSlash + 1).includes(':')) name = `${name}:latest`;
  return name + digest;
}

const repoOf = (normalized: string): string => {
  const at = normalized.indexOf('@');
  if (at >= 0) return normalized.slice(0, at);
  const lastSlash = normalized.lastIndexOf('/');
  const colon = normalized.indexOf(':', lastSlash + 1);
  return colon >= 0 ? normalized.slice(0, colon) : normalized;
};

const hostOf = (normalized: string): string => normalized.slice(0, Math.max(0, normalized.indexOf('/')));

function labelsMatch(labels: Readonly<Record<string, string>>, selector: Readonly<Record<string, string>> | undefined): boolean {
  if (!selector) return true;
  for (const k in selector) if (labels[k] !== selector[k]) return false;
  return true;
}

function ipv4Allocator(cidr: string): () => string {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  if (!m) throw RuntimeError.invalidArgument(`podCidr ${cidr} is not an IPv4 CIDR`);
  const prefix = Number(m[5]);
  if (prefix > 30) throw RuntimeError.invalidArgument(`podCidr ${cidr} is too small`);
  const size = 2 ** (32 - prefix);
  const base = ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
  const network = base - (base % size);
  let next = 1;
  return () => {
    // Skip the network address, the gateway (.1) and the broadcast address.
    next = next + 1 >= size - 1 ? 2 : next + 1;
    const ip = network + next;
    return [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.');
  };
}

const encoder = new TextEncoder();

/**
 * The in-memory {@link ContainerRuntime}. Create one per simulated node; `close()` clears its
 * timers (the kernel calls it when the plugin stops).
 */
export class FakeContainerRuntime implements ContainerRuntime {
  private readonly images = new Map<string, ImageRecord>();
  /** Every reference (tag, digest, id) → image id. */
  private readonly refs = new Map<string, string>();
  private readonly sandboxes = new Map<string, SandboxRecord>();
  private readonly sandboxNames = new Map<string, string>();
  private readonly containers = new Map<string, ContainerRecord>();
  private readonly containerNames = new Map<string, string>();
  private readonly conditions = new Map<string, RuntimeCondition>();
  private readonly lifetime = new AbortController();
  private readonly allocateIp: () => string;
  private readonly registry: ReadonlySet<string> | undefined;
  private closed = false;

  constructor(private readonly options: FakeRuntimeOptions = {}) {
    this.allocateIp = ipv4Allocator(options.podCidr ?? '10.88.0.0/16');
    this.registry = options.registry ? new Set(options.registry.map(normalizeImageRef)) : undefined;
    for (const ref of options.images ?? DEFAULT_IMAGES) this.addImage(ref);
    this.conditions.set(RUNTIME_READY, { type: RUNTIME_READY, status: true });
    this.conditions.set(NETWORK_READY, options.networkReady === false
      ? { type: NETWORK_READY, status: false, reason: 'NetworkPluginNotReady', message: 'cri-fake: network configured not ready' }
      : { type: NETWORK_READY, status: true });
  }

  // ----- test and simulation hooks (not part of CRI) -----

  /** Sets a runtime condition (for example `NetworkReady` false) as `status()` reports it. */
  setCondition(type: string, status: boolean, reason?: string, message?: string): void {
    this.conditions.set(type, { type, status, ...(reason ? { reason } : {}), ...(message ? { message } : {}) });
  }

  /** Makes a running container exit now with `exitCode` (a crash, an OOM kill: pass `reason` `OOMKilled`). */
  exitContainer(containerId: string, exitCode: number, reason?: string, message = ''): void {
    const c = this.container(containerId);
    if (c.state === 'CONTAINER_RUNNING') this.finish(c, exitCode, reason, message);
  }

  /** Adds an image as if it had been pulled or imported; returns its id. */
  addImage(ref: string): string {
    const normalized = normalizeImageRef(ref);
    if (normalized === '') throw RuntimeError.invalidArgument('an image reference is required');
    const existing = this.refs.get(normalized);
    if (existing) return existing;
    const repo = repoOf(normalized);
    const tagged = normalized.includes('@') ? undefined : normalized;
    const digest = normalized.includes('@') ? normalized : `${repo}@sha256:${sha256(`digest:${normalized}`)}`;
    const id = `sha256:${sha256(`id:${tagged ?? digest}`)}`;
    const size = 1_000_000 + (parseInt(id.slice(7, 15), 16) % 50_000_000);
    const rec: ImageRecord = { id, repoTags: tagged ? [tagged] : [], repoDigests: [digest], size };
    this.images.set(id, rec);
    for (const r of [id, ...rec.repoTags, ...rec.repoDigests]) this.refs.set(r, id);
    return id;
  }

  /** How many sandboxes and containers the runtime holds (for scale tests). */
  counts(): { sandboxes: number; containers: number; images: number } {
    return { sandboxes: this.sandboxes.size, containers: this.containers.size, images: this.images.size };
  }

  // ----- RuntimeService -----

  async version(): Promise<VersionResponse> {
    this.live();
    return { version: '0.1.0', runtimeName: FAKE_RUNTIME_NAME, runtimeVersion: FAKE_RUNTIME_VERSION, runtimeApiVersion: CRI_API_VERSION };
  }

  async status(verbose = false): Promise<StatusResponse> {
    this.live();
    const status = { conditions: [...this.conditions.values()] };
    if (!verbose) return { status };
    return { status, info: { config: JSON.stringify({ sandboxes: this.sandboxes.size, containers: this.containers.size, images: this.images.size }) } };
  }

  async runPodSandbox(config: PodSandboxConfig, runtimeHandler = ''): Promise<string> {
    this.live();
    const md = config?.metadata;
    if (!md?.name || !md.uid || !md.namespace) throw RuntimeError.invalidArgument('sandbox config must include metadata with name, uid and namespace');
    const reservedName = `${md.name}_${md.namespace}_${md.uid}_${md.attempt ?? 0}`;
    const holder = this.sandboxNames.get(reservedName);
    if (holder) throw new RuntimeError('AlreadyExists', `failed to reserve sandbox name ${JSON.stringify(reservedName)}: name is reserved for ${holder}`);
    const id = randomBytes(32).toString('hex');
    const hostNetwork = config.linux?.securityContext?.namespaceOptions?.network === 'NODE';
    const rec: SandboxRecord = {
      id,
      config: structuredClone(config),
      reservedName,
      runtimeHandler,
      createdAt: nowNanos(),
      ip: hostNetwork ? undefined : this.allocateIp(),
      state: 'SANDBOX_READY',
      containers: new Set(),
    };
    this.sandboxes.set(id, rec);
    this.sandboxNames.set(reservedName, id);
    return id;
  }

  async stopPodSandbox(podSandboxId: string): Promise<void> {
    this.live();
    const sb = this.sandboxes.get(podSandboxId);
    if (!sb) return; // CRI: idempotent once every resource is reclaimed.
    for (const cid of sb.containers) {
      const c = this.containers.get(cid);
      if (c && c.state === 'CONTAINER_RUNNING') this.finish(c, 137, 'Error', 'killed: pod sandbox stopped');
    }
    sb.state = 'SANDBOX_NOTREADY';
  }

  async removePodSandbox(podSandboxId: string): Promise<void> {
    this.live();
    const sb = this.sandboxes.get(podSandboxId);
    if (!sb) return;
    for (const cid of [...sb.containers]) this.dropContainer(cid);
    this.sandboxes.delete(podSandboxId);
    this.sandboxNames.delete(sb.reservedName);
  }

  async podSandboxStatus(podSandboxId: string, verbose = false): Promise<PodSandboxStatusResponse> {
    this.live();
    const sb = this.sandbox(podSandboxId);
    const nsOptions = sb.config.linux?.securityContext?.namespaceOptions;
    const status = {
      ...this.toPodSandbox(sb),
      ...(sb.ip && sb.state === 'SANDBOX_READY' ? { network: { ip: sb.ip } } : {}),
      ...(nsOptions ? { linux: { namespaces: { options: nsOptions } } } : {}),
    };
    return verbose ? { status, info: { info: JSON.stringify({ pid: 0, runtimeHandler: sb.runtimeHandler, config: sb.config }) } } : { status };
  }

  async listPodSandbox(filter: PodSandboxFilter = {}): Promise<PodSandbox[]> {
    this.live();
    const candidates = filter.id !== undefined ? [this.sandboxes.get(filter.id)].filter((s) => s !== undefined) : this.sandboxes.values();
    const out: PodSandbox[] = [];
    for (const sb of candidates) {
      if (filter.state !== undefined && sb.state !== filter.state) continue;
      if (!labelsMatch(sb.config.labels ?? {}, filter.labelSelector)) continue;
      out.push(this.toPodSandbox(sb));
    }
    return out;
  }

  async createContainer(podSandboxId: string, config: ContainerConfig, _sandboxConfig: PodSandboxConfig): Promise<string> {
    this.live();
    const sb = this.sandbox(podSandboxId);
    if (sb.state !== 'SANDBOX_READY') throw new RuntimeError('FailedPrecondition', `sandbox ${podSandboxId} is not ready: cannot create a container in it`);
    const name = config?.metadata?.name;
    if (!name) throw RuntimeError.invalidArgument('container config must include metadata with a name');
    const imageName = config.image?.image;
    if (!imageName) throw RuntimeError.invalidArgument('container config must include an image');
    const image = this.findImage(imageName);
    if (!image) throw RuntimeError.notFound(`image ${JSON.stringify(imageName)}`);
    const md = sb.config.metadata;
    const reservedName = `${name}_${md.name}_${md.namespace}_${md.uid}_${config.metadata.attempt ?? 0}`;
    const holder = this.containerNames.get(reservedName);
    if (holder) throw new RuntimeError('AlreadyExists', `failed to reserve container name ${JSON.stringify(reservedName)}: name is reserved for ${holder}`);
    const id = randomBytes(32).toString('hex');
    const rec: ContainerRecord = {
      id,
      sandbox: sb,
      config: structuredClone(config),
      reservedName,
      imageName: image.repoTags[0] ?? image.repoDigests[0] ?? image.id,
      imageRef: image.repoDigests[0] ?? image.id,
      createdAt: nowNanos(),
      state: 'CONTAINER_CREATED',
      startedAt: 0,
      finishedAt: 0,
      exitCode: 0,
      reason: '',
      message: '',
      resources: config.linux?.resources ? { ...config.linux.resources } : undefined,
      timer: undefined,
    };
    this.containers.set(id, rec);
    this.containerNames.set(reservedName, id);
    sb.containers.add(id);
    return id;
  }

  async startContainer(containerId: string): Promise<void> {
    this.live();
    const c = this.container(containerId);
    if (c.state !== 'CONTAINER_CREATED') throw new RuntimeError('FailedPrecondition', `container ${containerId} is in ${c.state} state, not CONTAINER_CREATED`);
    if (c.sandbox.state !== 'SANDBOX_READY') throw new RuntimeError('FailedPrecondition', `sandbox ${c.sandbox.id} is not ready`);
    const latency = this.options.startLatencyMs ?? 0;
    if (latency > 0) {
      if (!(await delay(latency, this.lifetime.signal))) throw new RuntimeError('Unavailable', 'cri-fake: the runtime closed');
      if (this.containers.get(containerId) !== c || c.state !== 'CONTAINER_CREATED') throw RuntimeError.notFound(`container ${containerId}`);
    }
    c.state = 'CONTAINER_RUNNING';
    c.startedAt = Math.max(nowNanos(), c.createdAt);
    const behaviour = this.behaviourOf(c.config);
    if (behaviour.afterSeconds === 0) this.finish(c, behaviour.exitCode);
    else if (Number.isFinite(behaviour.afterSeconds)) {
      c.timer = setTimeout(() => {
        c.timer = undefined;
        if (c.state === 'CONTAINER_RUNNING') this.finish(c, behaviour.exitCode);
      }, Math.min(behaviour.afterSeconds * 1000, 2 ** 31 - 1));
      c.timer.unref();
    }
  }

  async stopContainer(containerId: string, timeout: number): Promise<void> {
    this.live();
    const c = this.container(containerId);
    if (c.state === 'CONTAINER_RUNNING') {
      // The simulated process honours SIGTERM at once; with no grace period it is SIGKILLed.
      this.finish(c, timeout > 0 ? 143 : 137, 'Error', '');
    } else if (c.state === 'CONTAINER_CREATED') {
      // A created container that never ran: containerd marks it exited too.
      this.finish(c, 255, 'Error', 'stopped before it started');
    }
  }

  async removeContainer(containerId: string): Promise<void> {
    this.live();
    this.dropContainer(containerId);
  }

  async listContainers(filter: ContainerFilter = {}): Promise<Container[]> {
    this.live();
    let candidates: Iterable<ContainerRecord>;
    if (filter.id !== undefined) candidates = [this.containers.get(filter.id)].filter((c) => c !== undefined);
    else if (filter.podSandboxId !== undefined) {
      const sb = this.sandboxes.get(filter.podSandboxId);
      candidates = sb ? [...sb.containers].map((id) => this.containers.get(id)!) : [];
    } else candidates = this.containers.values();
    const out: Container[] = [];
    for (const c of candidates) {
      if (filter.podSandboxId !== undefined && c.sandbox.id !== filter.podSandboxId) continue;
      if (filter.state !== undefined && c.state !== filter.state) continue;
      if (!labelsMatch(c.config.labels ?? {}, filter.labelSelector)) continue;
      out.push({
        id: c.id,
        podSandboxId: c.sandbox.id,
        metadata: { ...c.config.metadata },
        image: { image: c.imageName },
        imageRef: c.imageRef,
        state: c.state,
        createdAt: c.createdAt,
        labels: { ...(c.config.labels ?? {}) },
        annotations: { ...(c.config.annotations ?? {}) },
      });
    }
    return out;
  }

  async containerStatus(containerId: string, verbose = false): Promise<ContainerStatusResponse> {
    this.live();
    const c = this.container(containerId);
    const logDir = c.sandbox.config.logDirectory;
    const logPath = c.config.logPath ? (logDir ? join(logDir, c.config.logPath) : c.config.logPath) : '';
    const status = {
      id: c.id,
      metadata: { ...c.config.metadata },
      state: c.state,
      createdAt: c.createdAt,
      startedAt: c.startedAt,
      finishedAt: c.finishedAt,
      exitCode: c.exitCode,
      image: { image: c.imageName },
      imageRef: c.imageRef,
      reason: c.reason,
      message: c.message,
      labels: { ...(c.config.labels ?? {}) },
      annotations: { ...(c.config.annotations ?? {}) },
      mounts: [...(c.config.mounts ?? [])],
      logPath,
      ...(c.resources ? { resources: { linux: { ...c.resources } } } : {}),
    };
    return verbose ? { status, info: { info: JSON.stringify({ sandboxID: c.sandbox.id, pid: 0, config: c.config }) } } : { status };
  }

  async updateContainerResources(containerId: string, resources: LinuxContainerResources): Promise<void> {
    this.live();
    const c = this.container(containerId);
    if (c.state === 'CONTAINER_EXITED' || c.state === 'CONTAINER_UNKNOWN') throw new RuntimeError('FailedPrecondition', `container ${containerId} is in ${c.state} state`);
    c.resources = { ...(c.resources ?? {}), ...resources };
  }

  async reopenContainerLog(containerId: string): Promise<void> {
    this.live();
    const c = this.container(containerId);
    if (c.state !== 'CONTAINER_RUNNING') throw new RuntimeError('FailedPrecondition', `container ${containerId} is not running`);
  }

  async execSync(containerId: string, cmd: readonly string[], timeout = 0): Promise<ExecSyncResponse> {
    this.live();
    const c = this.running(containerId);
    if (!Array.isArray(cmd) || cmd.length === 0) throw RuntimeError.invalidArgument('cmd must not be empty');
    const custom = this.options.exec?.(containerId, cmd);
    if (custom) return { stdout: encoder.encode(custom.stdout ?? ''), stderr: encoder.encode(custom.stderr ?? ''), exitCode: custom.exitCode };
    let stdout = '';
    let stderr = '';
    let status = 0;
    let slept = 0;
    for (const { step, and } of parseCommand(cmd).steps) {
      if (and && status !== 0) break;
      const r = this.runStep(c, step);
      if (r.sleep !== undefined) {
        slept += r.sleep;
        if (timeout > 0 && slept > timeout) throw new RuntimeError('DeadlineExceeded', `command ${JSON.stringify(cmd)} timed out after ${timeout}s`);
        if (!(await delay(Math.min(r.sleep * 1000, 2 ** 31 - 1), this.lifetime.signal))) throw new RuntimeError('Unavailable', 'cri-fake: the runtime closed');
        if (this.containers.get(containerId)?.state !== 'CONTAINER_RUNNING') return { stdout: encoder.encode(stdout), stderr: encoder.encode(stderr), exitCode: 137 };
      }
      stdout += r.stdout ?? '';
      stderr += r.stderr ?? '';
      status = r.status;
      if (r.exit) break;
    }
    return { stdout: encoder.encode(stdout), stderr: encoder.encode(stderr), exitCode: status };
  }

  async exec(request: ExecRequest): Promise<StreamingResponse> {
    this.live();
    this.running(request?.containerId);
    if (!request.cmd?.length) throw RuntimeError.invalidArgument('cmd must not be empty');
    return { url: this.streamUrl('exec') };
  }

  async attach(request: AttachRequest): Promise<StreamingResponse> {
    this.live();
    this.running(request?.containerId);
    return { url: this.streamUrl('attach') };
  }

  async portForward(request: PortForwardRequest): Promise<StreamingResponse> {
    this.live();
    const sb = this.sandbox(request?.podSandboxId);
    if (sb.state !== 'SANDBOX_READY') throw new RuntimeError('FailedPrecondition', `sandbox ${sb.id} is not ready`);
    return { url: this.streamUrl('portforward') };
  }

  async containerStats(containerId: string): Promise<ContainerStats> {
    this.live();
    return this.statsOf(this.container(containerId));
  }

  async listContainerStats(filter: ContainerStatsFilter = {}): Promise<ContainerStats[]> {
    const list = await this.listContainers({
      ...(filter.id !== undefined ? { id: filter.id } : {}),
      ...(filter.podSandboxId !== undefined ? { podSandboxId: filter.podSandboxId } : {}),
      ...(filter.labelSelector ? { labelSelector: filter.labelSelector } : {}),
      state: 'CONTAINER_RUNNING',
    });
    return list.map((c) => this.statsOf(this.containers.get(c.id)!));
  }

  // ----- ImageService -----

  async listImages(filter: ImageFilter = {}): Promise<Image[]> {
    this.live();
    if (filter.image?.image) {
      const rec = this.findImage(filter.image.image);
      return rec ? [this.toImage(rec)] : [];
    }
    return [...this.images.values()].map((r) => this.toImage(r));
  }

  async imageStatus(image: ImageSpec, verbose = false): Promise<ImageStatusResponse> {
    this.live();
    if (!image?.image) throw RuntimeError.invalidArgument('an image reference is required');
    const rec = this.findImage(image.image);
    if (!rec) return {};
    return verbose ? { image: this.toImage(rec), info: { info: JSON.stringify({ size: rec.size }) } } : { image: this.toImage(rec) };
  }

  async pullImage(image: ImageSpec, _auth?: AuthConfig, _sandboxConfig?: PodSandboxConfig): Promise<string> {
    this.live();
    const ref = image?.image?.trim();
    if (!ref) throw RuntimeError.invalidArgument('an image reference is required');
    const normalized = normalizeImageRef(ref);
    if (hostOf(normalized).endsWith('.invalid')) {
      throw new RuntimeError('Unavailable', `failed to pull image ${JSON.stringify(ref)}: dial tcp: lookup ${hostOf(normalized)}: no such host`);
    }
    if (this.registry && !this.registry.has(normalized)) {
      throw RuntimeError.notFound(`failed to pull image ${JSON.stringify(ref)}: ${normalized}`);
    }
    const latency = this.options.pullLatencyMs ?? 0;
    if (latency > 0 && !(await delay(latency, this.lifetime.signal))) throw new RuntimeError('Unavailable', 'cri-fake: the runtime closed');
    const id = this.addImage(normalized);
    const rec = this.images.get(id)!;
    return rec.repoDigests[0] ?? id;
  }

  async removeImage(image: ImageSpec): Promise<void> {
    this.live();
    if (!image?.image) throw RuntimeError.invalidArgument('an image reference is required');
    const rec = this.findImage(image.image);
    if (!rec) return;
    this.images.delete(rec.id);
    for (const r of [rec.id, ...rec.repoTags, ...rec.repoDigests]) this.refs.delete(r);
  }

  async imageFsInfo(): Promise<ImageFsInfoResponse> {
    this.live();
    const timestamp = nowNanos();
    let used = 0;
    for (const r of this.images.values()) used += r.size;
    return {
      imageFilesystems: [{ timestamp, fsId: { mountpoint: '/var/lib/cri-fake/images' }, usedBytes: used, inodesUsed: this.images.size }],
      containerFilesystems: [{ timestamp, fsId: { mountpoint: '/var/lib/cri-fake/containers' }, usedBytes: 0, inodesUsed: this.containers.size }],
    };
  }

  /** Clears every timer; later calls fail `Unavailable`. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.lifetime.abort();
    for (const c of this.containers.values()) {
      if (c.timer) clearTimeout(c.timer);
      c.timer = undefined;
    }
  }

  // ----- internals -----

  private live(): void {
    if (this.closed) throw new RuntimeError('Unavailable', 'cri-fake: the runtime is closed');
  }

  private sandbox(id: string): SandboxRecord {
    const sb = typeof id === 'string' ? this.sandboxes.get(id) : undefined;
    if (!sb) throw RuntimeError.notFound(`pod sandbox ${JSON.stringify(id)}`);
    return sb;
  }

  private container(id: string): ContainerRecord {
    const c = typeof id === 'string' ? this.containers.get(id) : undefined;
    if (!c) throw RuntimeError.notFound(`container ${JSON.stringify(id)}`);
    return c;
  }

  private running(id: string): ContainerRecord {
    const c = this.container(id);
    if (c.state !== 'CONTAINER_RUNNING') throw new RuntimeError('FailedPrecondition', `container ${id} is not running (${c.state})`);
    return c;
  }

  private findImage(ref: string): ImageRecord | undefined {
    const id = this.refs.get(ref) ?? this.refs.get(normalizeImageRef(ref));
    return id ? this.images.get(id) : undefined;
  }

  private finish(c: ContainerRecord, exitCode: number, reason?: string, message = ''): void {
    if (c.timer) clearTimeout(c.timer);
    c.timer = undefined;
    c.state = 'CONTAINER_EXITED';
    c.exitCode = exitCode;
    c.finishedAt = Math.max(nowNanos(), c.startedAt);
    c.reason = reason ?? (exitCode === 0 ? 'Completed' : 'Error');
    c.message = message;
  }

  private dropContainer(id: string): void {
    const c = this.containers.get(id);
    if (!c) return;
    if (c.timer) clearTimeout(c.timer);
    c.timer = undefined;
    this.containers.delete(id);
    this.containerNames.delete(c.reservedName);
    c.sandbox.containers.delete(id);
  }

  private behaviourOf(config: ContainerConfig): { afterSeconds: number; exitCode: number } {
    const a = config.annotations ?? {};
    const runSeconds = a[RUN_SECONDS_ANNOTATION];
    const exitCode = a[EXIT_CODE_ANNOTATION];
    if (runSeconds !== undefined || exitCode !== undefined) {
      const seconds = runSeconds === undefined ? 0 : Number(runSeconds);
      const code = exitCode === undefined ? 0 : Number(exitCode);
      return { afterSeconds: Number.isNaN(seconds) || seconds < 0 ? Infinity : seconds, exitCode: Number.isInteger(code) ? code : 1 };
    }
    return mainBehaviour([...(config.command ?? []), ...(config.args ?? [])]);
  }

  private runStep(c: ContainerRecord, step: Step): { status: number; stdout?: string; stderr?: string; sleep?: number; exit?: boolean } {
    switch (step.op) {
      case 'exit':
        return { status: step.code, exit: true };
      case 'status':
        return { status: step.code };
      case 'sleep':
        return Number.isFinite(step.seconds) ? { status: 0, sleep: step.seconds } : { status: 0, sleep: 2 ** 31 / 1000 };
      case 'echo':
        return { status: 0, stdout: step.text };
      case 'env':
        return { status: 0, stdout: (c.config.envs ?? []).map((e) => `${e.key}=${e.value}\n`).join('') };
      case 'hostname':
        return { status: 0, stdout: `${c.sandbox.config.hostname ?? c.sandbox.config.metadata.name}\n` };
      case 'cat': {
        const content = this.options.files?.[step.path];
        return content === undefined ? { status: 1, stderr: `cat: can't open '${step.path}': No such file or directory\n` } : { status: 0, stdout: content };
      }
      case 'unknown':
        return { status: this.options.execDefaultExitCode ?? 0 };
    }
  }

  private streamUrl(kind: string): string {
    const base = (this.options.streamingBaseUrl ?? 'http://127.0.0.1:10010').replace(/\/+$/, '');
    return `${base}/${kind}/${randomBytes(8).toString('hex')}`;
  }

  private statsOf(c: ContainerRecord): ContainerStats {
    const timestamp = nowNanos();
    return {
      attributes: { id: c.id, metadata: { ...c.config.metadata }, labels: { ...(c.config.labels ?? {}) }, annotations: { ...(c.config.annotations ?? {}) } },
      cpu: { timestamp, usageCoreNanoSeconds: 0, usageNanoCores: 0 },
      memory: { timestamp, workingSetBytes: 0 },
      writableLayer: { timestamp, fsId: { mountpoint: '/var/lib/cri-fake/containers' }, usedBytes: 0, inodesUsed: 0 },
    };
  }

  private toPodSandbox(sb: SandboxRecord): PodSandbox {
    return {
      id: sb.id,
      metadata: { ...sb.config.metadata },
      state: sb.state,
      createdAt: sb.createdAt,
      labels: { ...(sb.config.labels ?? {}) },
      annotations: { ...(sb.config.annotations ?? {}) },
      runtimeHandler: sb.runtimeHandler,
    };
  }

  private toImage(r: ImageRecord): Image {
    return { id: r.id, repoTags: [...r.repoTags], repoDigests: [...r.repoDigests], size: r.size, uid: 0, pinned: r.repoTags.some((t) => repoOf(t).endsWith('/pause')) };
  }
}
