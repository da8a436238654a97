/**
 * {@link ContainerdRuntime}: the SDK's {@link ContainerRuntime} over CRI v1 gRPC to containerd's
 * CRI plugin, on a unix socket.
 *
 * Every SDK call maps to one CRI call (fields renamed camelCase ↔ snake_case by proto-loader;
 * `Int64Value` wrappers unwrapped; absent optional fields left out), with a deadline per call and
 * gRPC status codes turned into {@link RuntimeError} codes. Two containerd facts are honoured:
 * `StopPodSandbox` of a removed sandbox answers `NotFound`, which this client turns into success
 * (the SDK's idempotency), and `PullImage` always goes to the registry, even for a present image
 * (callers check `imageStatus` first for IfNotPresent/Never).
 *
 * @module
 */
import { Client, credentials, Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import {
  CRI_API_VERSION,
  NETWORK_READY,
  RUNTIME_READY,
  RuntimeError,
  type AttachRequest,
  type AuthConfig,
  type Container,
  type ContainerConfig,
  type ContainerFilter,
  type ContainerMetadata,
  type ContainerRuntime,
  type ContainerState,
  type ContainerStats,
  type ContainerStatsFilter,
  type ContainerStatusResponse,
  type ExecRequest,
  type ExecSyncResponse,
  type FilesystemUsage,
  type Image,
  type ImageFilter,
  type ImageFsInfoResponse,
  type ImageSpec,
  type ImageStatusResponse,
  type LinuxContainerResources,
  type Mount,
  type MountPropagation,
  type NamespaceMode,
  type NamespaceOption,
  type PodSandbox,
  type PodSandboxConfig,
  type PodSandboxFilter,
  type PodSandboxMetadata,
  type PodSandboxState,
  type PodSandboxStatusResponse,
  type PortForwardRequest,
  type RuntimeCondition,
  type RuntimeErrorCode,
  type StatusResponse,
  type StreamingResponse,
  type VersionResponse,
} from '@kubernel/sdk';
import {
  criMethod,
  IMAGE_SERVICE,
  RUNTIME_SERVICE,
  type WireContainer,
  type WireContainerMetadata,
  type WireContainerStats,
  type WireContainerStatus,
  type WireFilesystemUsage,
  type WireImage,
  type WireImageSpec,
  type WireLinuxContainerResources,
  type WireMap,
  type WireMount,
  type WireNamespaceOption,
  type WirePodSandbox,
  type WirePodSandboxMetadata,
  type WirePodSandboxStatus,
  type WireRuntimeCondition,
  type WireValue,
} from './proto.js';

/** Deadlines of the CRI calls, in milliseconds. */
export interface CallTimeouts {
  /** Version, Status, the status/list/inspect calls and the URL-returning calls; 10 s by default. */
  readonly short: number;
  /** Calls that change things (run, create, start, remove, update); 2 min by default, as the kubelet's runtime request timeout. */
  readonly long: number;
  /** PullImage; 15 min by default. */
  readonly pull: number;
}

/** The default {@link CallTimeouts}. */
export const DEFAULT_CALL_TIMEOUTS: CallTimeouts = Object.freeze({ short: 10_000, long: 120_000, pull: 900_000 });

/** Options of {@link ContainerdRuntime}. */
export interface ContainerdRuntimeOptions {
  /** containerd's CRI endpoint: `unix:///run/containerd/containerd.sock` (a bare absolute path is taken as a unix socket). */
  readonly endpoint: string;
  /** Per-call deadlines; {@link DEFAULT_CALL_TIMEOUTS} where absent. */
  readonly timeouts?: Partial<CallTimeouts>;
  /**
   * Asked by `status()` before calling containerd: returns a not-ready reason while the runtime is
   * known to be down (a managed containerd restarting), in which case `status()` reports
   * `RuntimeReady` and `NetworkReady` false with it instead of failing.
   */
  readonly availability?: () => { readonly reason: string; readonly message: string } | undefined;
  /** Runs once in `close()`, after the channel is closed (a managed containerd stops here). */
  readonly onClose?: () => Promise<void> | void;
}

/** The normalized gRPC target of `endpoint`: `unix:///abs/path` stays, `/abs/path` becomes `unix:///abs/path`. */
export function grpcTarget(endpoint: string): string {
  if (endpoint.startsWith('unix://')) return endpoint;
  if (endpoint.startsWith('/')) return `unix://${endpoint}`;
  throw new RuntimeError('InvalidArgument', `unsupported CRI endpoint ${JSON.stringify(endpoint)}: expected unix:///path/to/socket`);
}

const GRPC_TO_RUNTIME_CODE: ReadonlyMap<number, RuntimeErrorCode> = new Map([
  [GrpcStatus.NOT_FOUND, 'NotFound'],
  [GrpcStatus.ALREADY_EXISTS, 'AlreadyExists'],
  [GrpcStatus.INVALID_ARGUMENT, 'InvalidArgument'],
  [GrpcStatus.FAILED_PRECONDITION, 'FailedPrecondition'],
  [GrpcStatus.UNAVAILABLE, 'Unavailable'],
  [GrpcStatus.DEADLINE_EXCEEDED, 'DeadlineExceeded'],
  [GrpcStatus.UNIMPLEMENTED, 'Unimplemented'],
  [GrpcStatus.OUT_OF_RANGE, 'InvalidArgument'],
]);

/** The {@link RuntimeError} of a failed gRPC call (`Unknown` for codes the SDK does not name). */
export function toRuntimeError(method: string, err: unknown): RuntimeError {
  const e = err as Partial<ServiceError>;
  const code = typeof e.code === 'number' ? (GRPC_TO_RUNTIME_CODE.get(e.code) ?? 'Unknown') : 'Unknown';
  const detail = typeof e.details === 'string' && e.details.length > 0 ? e.details : err instanceof Error ? err.message : String(err);
  return new RuntimeError(code, `${method}: ${detail}`, { cause: err });
}

// ---------------------------------------------------------------------------------------------
// SDK → wire
// ---------------------------------------------------------------------------------------------

const int64Value = (v: number | undefined): { value: number } | undefined => (v === undefined ? undefined : { value: v });

function wireNamespaceOption(o: NamespaceOption | undefined): object | undefined {
  if (!o) return undefined;
  return { network: o.network ?? 'POD', pid: o.pid ?? 'POD', ipc: o.ipc ?? 'POD', targetId: o.targetId ?? '' };
}

function wireImageSpec(spec: ImageSpec): object {
  return {
    image: spec.image,
    annotations: { ...(spec.annotations ?? {}) },
    userSpecifiedImage: spec.userSpecifiedImage ?? '',
    runtimeHandler: spec.runtimeHandler ?? '',
  };
}

/** The wire `PodSandboxConfig` of an SDK one. */
export function wirePodSandboxConfig(c: PodSandboxConfig): object {
  const sc = c.linux?.securityContext;
  return {
    metadata: { name: c.metadata.name, uid: c.metadata.uid, namespace: c.metadata.namespace, attempt: c.metadata.attempt ?? 0 },
    hostname: c.hostname ?? '',
    logDirectory: c.logDirectory ?? '',
    dnsConfig: c.dnsConfig
      ? { servers: [...(c.dnsConfig.servers ?? [])], searches: [...(c.dnsConfig.searches ?? [])], options: [...(c.dnsConfig.options ?? [])] }
      : undefined,
    portMappings: (c.portMappings ?? []).map((p) => ({ protocol: p.protocol ?? 'TCP', containerPort: p.containerPort, hostPort: p.hostPort ?? 0, hostIp: p.hostIp ?? '' })),
    labels: { ...(c.labels ?? {}) },
    annotations: { ...(c.annotations ?? {}) },
    linux: c.linux
      ? {
          cgroupParent: c.linux.cgroupParent ?? '',
          sysctls: { ...(c.linux.sysctls ?? {}) },
          securityContext: sc
            ? {
                namespaceOptions: wireNamespaceOption(sc.namespaceOptions),
                runAsUser: int64Value(sc.runAsUser),
                runAsGroup: int64Value(sc.runAsGroup),
                readonlyRootfs: sc.readonlyRootfs ?? false,
                supplementalGroups: [...(sc.supplementalGroups ?? [])],
                privileged: sc.privileged ?? false,
                seccompProfilePath: sc.seccompProfilePath ?? '',
              }
            : undefined,
        }
      : undefined,
  };
}

/** The wire `LinuxContainerResources` of SDK resources (unset fields are 0 / empty: "not specified"). */
export function wireResources(r: LinuxContainerResources): object {
  return {
    cpuPeriod: r.cpuPeriod ?? 0,
    cpuQuota: r.cpuQuota ?? 0,
    cpuShares: r.cpuShares ?? 0,
    memoryLimitInBytes: r.memoryLimitInBytes ?? 0,
    oomScoreAdj: r.oomScoreAdj ?? 0,
    cpusetCpus: r.cpusetCpus ?? '',
    cpusetMems: r.cpusetMems ?? '',
    unified: { ...(r.unified ?? {}) },
    memorySwapLimitInBytes: r.memorySwapLimitInBytes ?? 0,
  };
}

/** The wire `ContainerConfig` of an SDK one. */
export function wireContainerConfig(c: ContainerConfig): object {
  const sc = c.linux?.securityContext;
  return {
    metadata: { name: c.metadata.name, attempt: c.metadata.attempt ?? 0 },
    image: wireImageSpec(c.image),
    command: [...(c.command ?? [])],
    args: [...(c.args ?? [])],
    workingDir: c.workingDir ?? '',
    envs: (c.envs ?? []).map((e) => ({ key: e.key, value: e.value })),
    mounts: (c.mounts ?? []).map((m) => ({
      containerPath: m.containerPath,
      hostPath: m.hostPath,
      readonly: m.readonly ?? false,
      selinuxRelabel: m.selinuxRelabel ?? false,
      propagation: m.propagation ?? 'PROPAGATION_PRIVATE',
    })),
    devices: (c.devices ?? []).map((d) => ({ containerPath: d.containerPath, hostPath: d.hostPath, permissions: d.permissions })),
    labels: { ...(c.labels ?? {}) },
    annotations: { ...(c.annotations ?? {}) },
    logPath: c.logPath ?? '',
    stdin: c.stdin ?? false,
    stdinOnce: c.stdinOnce ?? false,
    tty: c.tty ?? false,
    linux: c.linux
      ? {
          resources: c.linux.resources ? wireResources(c.linux.resources) : undefined,
          securityContext: sc
            ? {
                capabilities: sc.capabilities
                  ? { addCapabilities: [...(sc.capabilities.addCapabilities ?? [])], dropCapabilities: [...(sc.capabilities.dropCapabilities ?? [])] }
                  : undefined,
                privileged: sc.privileged ?? false,
                namespaceOptions: wireNamespaceOption(sc.namespaceOptions),
                runAsUser: int64Value(sc.runAsUser),
                runAsGroup: int64Value(sc.runAsGroup),
                runAsUsername: sc.runAsUsername ?? '',
                readonlyRootfs: sc.readonlyRootfs ?? false,
                supplementalGroups: [...(sc.supplementalGroups ?? [])],
                noNewPrivs: sc.noNewPrivs ?? false,
                maskedPaths: [...(sc.maskedPaths ?? [])],
                readonlyPaths: [...(sc.readonlyPaths ?? [])],
                seccompProfilePath: sc.seccompProfilePath ?? '',
                apparmorProfile: sc.apparmorProfile ?? '',
              }
            : undefined,
        }
      : undefined,
  };
}

// ---------------------------------------------------------------------------------------------
// wire → SDK
// ---------------------------------------------------------------------------------------------

const map = (m: WireMap | null | undefined): Record<string, string> => ({ ...(m ?? {}) });
const val = (v: WireValue | null | undefined): number | undefined => (v ? Number(v.value) : undefined);
const nonEmptyMap = (m: WireMap | null | undefined): Record<string, string> | undefined => (m && Object.keys(m).length > 0 ? { ...m } : undefined);

function sandboxMetadata(m: WirePodSandboxMetadata | null): PodSandboxMetadata {
  return { name: m?.name ?? '', uid: m?.uid ?? '', namespace: m?.namespace ?? '', attempt: m?.attempt ?? 0 };
}

function containerMetadata(m: WireContainerMetadata | null): ContainerMetadata {
  return { name: m?.name ?? '', attempt: m?.attempt ?? 0 };
}

function namespaceOption(o: WireNamespaceOption | null | undefined): NamespaceOption | undefined {
  if (!o) return undefined;
  return { network: o.network as NamespaceMode, pid: o.pid as NamespaceMode, ipc: o.ipc as NamespaceMode, ...(o.targetId ? { targetId: o.targetId } : {}) };
}

function imageSpec(s: WireImageSpec | null): ImageSpec {
  return {
    image: s?.image ?? '',
    ...(nonEmptyMap(s?.annotations) ? { annotations: map(s?.annotations) } : {}),
    ...(s?.userSpecifiedImage ? { userSpecifiedImage: s.userSpecifiedImage } : {}),
    ...(s?.runtimeHandler ? { runtimeHandler: s.runtimeHandler } : {}),
  };
}

function resources(r: WireLinuxContainerResources): LinuxContainerResources {
  return {
    cpuPeriod: Number(r.cpuPeriod),
    cpuQuota: Number(r.cpuQuota),
    cpuShares: Number(r.cpuShares),
    memoryLimitInBytes: Number(r.memoryLimitInBytes),
    oomScoreAdj: Number(r.oomScoreAdj),
    ...(r.cpusetCpus ? { cpusetCpus: r.cpusetCpus } : {}),
    ...(r.cpusetMems ? { cpusetMems: r.cpusetMems } : {}),
    ...(nonEmptyMap(r.unified) ? { unified: map(r.unified) } : {}),
    ...(r.memorySwapLimitInBytes ? { memorySwapLimitInBytes: Number(r.memorySwapLimitInBytes) } : {}),
  };
}

function mount(m: WireMount): Mount {
  return { containerPath: m.containerPath, hostPath: m.hostPath, readonly: m.readonly, selinuxRelabel: m.selinuxRelabel, propagation: m.propagation as MountPropagation };
}

function condition(c: WireRuntimeCondition): RuntimeCondition {
  return { type: c.type, status: c.status, ...(c.reason ? { reason: c.reason } : {}), ...(c.message ? { message: c.message } : {}) };
}

function container(c: WireContainer): Container {
  return {
    id: c.id,
    podSandboxId: c.podSandboxId,
    metadata: containerMetadata(c.metadata),
    image: imageSpec(c.image),
    imageRef: c.imageRef,
    state: c.state as ContainerState,
    createdAt: Number(c.createdAt),
    labels: map(c.labels),
    annotations: map(c.annotations),
  };
}

function sandbox(s: WirePodSandbox): PodSandbox {
  return {
    id: s.id,
    metadata: sandboxMetadata(s.metadata),
    state: s.state as PodSandboxState,
    createdAt: Number(s.createdAt),
    labels: map(s.labels),
    annotations: map(s.annotations),
    ...(s.runtimeHandler ? { runtimeHandler: s.runtimeHandler } : {}),
  };
}

function filesystemUsage(u: WireFilesystemUsage): FilesystemUsage {
  return { timestamp: Number(u.timestamp), fsId: { mountpoint: u.fsId?.mountpoint ?? '' }, usedBytes: val(u.usedBytes) ?? 0, inodesUsed: val(u.inodesUsed) ?? 0 };
}

function image(i: WireImage): Image {
  const uid = val(i.uid);
  return {
    id: i.id,
    repoTags: [...i.repoTags],
    repoDigests: [...i.repoDigests],
    size: Number(i.size),
    ...(uid !== undefined ? { uid } : {}),
    ...(i.username ? { username: i.username } : {}),
    ...(i.spec ? { spec: imageSpec(i.spec) } : {}),
    ...(i.pinned ? { pinned: true } : {}),
  };
}

function containerStats(s: WireContainerStats): ContainerStats {
  const a = s.attributes;
  return {
    attributes: { id: a?.id ?? '', metadata: containerMetadata(a?.metadata ?? null), labels: map(a?.labels), annotations: map(a?.annotations) },
    ...(s.cpu
      ? {
          cpu: {
            timestamp: Number(s.cpu.timestamp),
            usageCoreNanoSeconds: val(s.cpu.usageCoreNanoSeconds) ?? 0,
            ...(s.cpu.usageNanoCores ? { usageNanoCores: val(s.cpu.usageNanoCores) } : {}),
          },
        }
      : {}),
    ...(s.memory
      ? {
          memory: {
            timestamp: Number(s.memory.timestamp),
            workingSetBytes: val(s.memory.workingSetBytes) ?? 0,
            ...(s.memory.rssBytes ? { rssBytes: val(s.memory.rssBytes) } : {}),
            ...(s.memory.pageFaults ? { pageFaults: val(s.memory.pageFaults) } : {}),
            ...(s.memory.majorPageFaults ? { majorPageFaults: val(s.memory.majorPageFaults) } : {}),
          },
        }
      : {}),
    ...(s.writableLayer ? { writableLayer: filesystemUsage(s.writableLayer) } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------

type Service = typeof RUNTIME_SERVICE | typeof IMAGE_SERVICE;

/**
 * A {@link ContainerRuntime} talking CRI v1 to containerd over a unix socket. The channel connects
 * lazily and reconnects by itself (a restarted containerd is picked up); calls made while containerd
 * is down fail with `Unavailable`.
 */
export class ContainerdRuntime implements ContainerRuntime {
  /** The gRPC target (`unix:///...`). */
  readonly target: string;
  private readonly client: Client;
  private readonly timeouts: CallTimeouts;
  private readonly availability: ContainerdRuntimeOptions['availability'];
  private readonly onClose: ContainerdRuntimeOptions['onClose'];
  private closed: Promise<void> | undefined;

  constructor(options: ContainerdRuntimeOptions) {
    this.target = grpcTarget(options.endpoint);
    this.timeouts = { ...DEFAULT_CALL_TIMEOUTS, ...(options.timeouts ?? {}) };
    this.availability = options.availability;
    this.onClose = options.onClose;
    this.client = new Client(this.target, credentials.createInsecure(), {
      // ExecSync output is capped at 16 MiB per stream by CRI; leave room for both.
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      'grpc.max_send_message_length': 16 * 1024 * 1024,
      // A restarted containerd should be found again quickly.
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 5_000,
    });
  }

  /** One unary CRI call with a deadline, its failure mapped to a {@link RuntimeError}. */
  private call<T>(service: Service, method: string, request: object, timeoutMs: number): Promise<T> {
    if (this.closed) return Promise.reject(new RuntimeError('Unavailable', `${method}: the CRI client is closed`));
    const def = criMethod(service, method);
    return new Promise<T>((resolve, reject) => {
      this.client.makeUnaryRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        request,
        new Metadata(),
        { deadline: Date.now() + timeoutMs },
        (err, response) => {
          if (err) reject(toRuntimeError(method, err));
          else resolve(response as T);
        },
      );
    });
  }

  private rt<T>(method: string, request: object, timeoutMs = this.timeouts.short): Promise<T> {
    return this.call<T>(RUNTIME_SERVICE, method, request, timeoutMs);
  }

  private img<T>(method: string, request: object, timeoutMs = this.timeouts.short): Promise<T> {
    return this.call<T>(IMAGE_SERVICE, method, request, timeoutMs);
  }

  // --- RuntimeService -------------------------------------------------------------------------

  /** CRI `Version`. */
  async version(apiVersion: string = CRI_API_VERSION): Promise<VersionResponse> {
    const r = await this.rt<VersionResponse>('Version', { version: apiVersion });
    return { version: r.version, runtimeName: r.runtimeName, runtimeVersion: r.runtimeVersion, runtimeApiVersion: r.runtimeApiVersion };
  }

  /** CRI `Status`; while a managed containerd is down, both conditions are false with its reason. */
  async status(verbose = false): Promise<StatusResponse> {
    const down = this.availability?.();
    if (down) {
      return {
        status: {
          conditions: [
            { type: RUNTIME_READY, status: false, reason: down.reason, message: down.message },
            { type: NETWORK_READY, status: false, reason: down.reason, message: down.message },
          ],
        },
      };
    }
    const r = await this.rt<{ status: { conditions: WireRuntimeCondition[] } | null; info: WireMap }>('Status', { verbose });
    return { status: { conditions: (r.status?.conditions ?? []).map(condition) }, ...(verbose ? { info: map(r.info) } : {}) };
  }

  /**
   * CRI `UpdateRuntimeConfig`: gives containerd the node's pod CIDR. A containerd configured with a
   * CNI config template writes its CNI config from it (if it has none yet), after which
   * `NetworkReady` turns true.
   */
  async updateRuntimeConfig(config: { podCidr: string }): Promise<void> {
    await this.rt('UpdateRuntimeConfig', { runtimeConfig: { networkConfig: { podCidr: config.podCidr } } });
  }

  /** CRI `RunPodSandbox`. */
  async runPodSandbox(config: PodSandboxConfig, runtimeHandler = ''): Promise<string> {
    const r = await this.rt<{ podSandboxId: string }>('RunPodSandbox', { config: wirePodSandboxConfig(config), runtimeHandler }, this.timeouts.long);
    return r.podSandboxId;
  }

  /** CRI `StopPodSandbox`; `NotFound` (containerd's answer for a removed sandbox) counts as stopped. */
  async stopPodSandbox(podSandboxId: string): Promise<void> {
    try {
      await this.rt('StopPodSandbox', { podSandboxId }, this.timeouts.long);
    } catch (err) {
      if (!(err instanceof RuntimeError && err.code === 'NotFound')) throw err;
    }
  }

  /** CRI `RemovePodSandbox` (idempotent). */
  async removePodSandbox(podSandboxId: string): Promise<void> {
    try {
      await this.rt('RemovePodSandbox', { podSandboxId }, this.timeouts.long);
    } catch (err) {
      if (!(err instanceof RuntimeError && err.code === 'NotFound')) throw err;
    }
  }

  /** CRI `PodSandboxStatus`. */
  async podSandboxStatus(podSandboxId: string, verbose = false): Promise<PodSandboxStatusResponse> {
    const r = await this.rt<{ status: WirePodSandboxStatus | null; info: WireMap }>('PodSandboxStatus', { podSandboxId, verbose });
    if (!r.status) throw RuntimeError.notFound(`pod sandbox ${podSandboxId}`);
    const s = r.status;
    const options = namespaceOption(s.linux?.namespaces?.options);
    return {
      status: {
        id: s.id,
        metadata: sandboxMetadata(s.metadata),
        state: s.state as PodSandboxState,
        createdAt: Number(s.createdAt),
        ...(s.network?.ip
          ? { network: { ip: s.network.ip, ...(s.network.additionalIps.length > 0 ? { additionalIps: s.network.additionalIps.map((a) => a.ip) } : {}) } }
          : {}),
        ...(options ? { linux: { namespaces: { options } } } : {}),
        labels: map(s.labels),
        annotations: map(s.annotations),
        ...(s.runtimeHandler ? { runtimeHandler: s.runtimeHandler } : {}),
      },
      ...(verbose ? { info: map(r.info) } : {}),
    };
  }

  /** CRI `ListPodSandbox`. */
  async listPodSandbox(filter?: PodSandboxFilter): Promise<PodSandbox[]> {
    const wire = filter
      ? { id: filter.id ?? '', state: filter.state ? { state: filter.state } : undefined, labelSelector: { ...(filter.labelSelector ?? {}) } }
      : undefined;
    const r = await this.rt<{ items: WirePodSandbox[] }>('ListPodSandbox', { filter: wire });
    return r.items.map(sandbox);
  }

  /** CRI `CreateContainer`. */
  async createContainer(podSandboxId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig): Promise<string> {
    const r = await this.rt<{ containerId: string }>(
      'CreateContainer',
      { podSandboxId, config: wireContainerConfig(config), sandboxConfig: wirePodSandboxConfig(sandboxConfig) },
      this.timeouts.long,
    );
    return r.containerId;
  }

  /** CRI `StartContainer`. */
  async startContainer(containerId: string): Promise<void> {
    await this.rt('StartContainer', { containerId }, this.timeouts.long);
  }

  /** CRI `StopContainer`: `timeout` seconds of grace, then SIGKILL; the deadline allows for both. */
  async stopContainer(containerId: string, timeout: number): Promise<void> {
    const grace = Math.max(0, Math.floor(timeout));
    await this.rt('StopContainer', { containerId, timeout: grace }, grace * 1000 + this.timeouts.long);
  }

  /** CRI `RemoveContainer` (idempotent). */
  async removeContainer(containerId: string): Promise<void> {
    try {
      await this.rt('RemoveContainer', { containerId }, this.timeouts.long);
    } catch (err) {
      if (!(err instanceof RuntimeError && err.code === 'NotFound')) throw err;
    }
  }

  /** CRI `ListContainers`. */
  async listContainers(filter?: ContainerFilter): Promise<Container[]> {
    const wire = filter
      ? {
          id: filter.id ?? '',
          state: filter.state ? { state: filter.state } : undefined,
          podSandboxId: filter.podSandboxId ?? '',
          labelSelector: { ...(filter.labelSelector ?? {}) },
        }
      : undefined;
    const r = await this.rt<{ containers: WireContainer[] }>('ListContainers', { filter: wire });
    return r.containers.map(container);
  }

  /** CRI `ContainerStatus`. */
  async containerStatus(containerId: string, verbose = false): Promise<ContainerStatusResponse> {
    const r = await this.rt<{ status: WireContainerStatus | null; info: WireMap }>('ContainerStatus', { containerId, verbose });
    if (!r.status) throw RuntimeError.notFound(`container ${containerId}`);
    const s = r.status;
    return {
      status: {
        id: s.id,
        metadata: containerMetadata(s.metadata),
        state: s.state as ContainerState,
        createdAt: Number(s.createdAt),
        startedAt: Number(s.startedAt),
        finishedAt: Number(s.finishedAt),
        exitCode: s.exitCode,
        image: imageSpec(s.image),
        imageRef: s.imageRef,
        reason: s.reason,
        message: s.message,
        labels: map(s.labels),
        annotations: map(s.annotations),
        mounts: s.mounts.map(mount),
        logPath: s.logPath,
        ...(s.resources?.linux ? { resources: { linux: resources(s.resources.linux) } } : {}),
      },
      ...(verbose ? { info: map(r.info) } : {}),
    };
  }

  /** CRI `UpdateContainerResources` (Linux resources). */
  async updateContainerResources(containerId: string, res: LinuxContainerResources): Promise<void> {
    await this.rt('UpdateContainerResources', { containerId, linux: wireResources(res) }, this.timeouts.long);
  }

  /** CRI `ReopenContainerLog`. */
  async reopenContainerLog(containerId: string): Promise<void> {
    await this.rt('ReopenContainerLog', { containerId });
  }

  /** CRI `ExecSync`: `timeout` in seconds (0: none); the call's deadline allows for it. */
  async execSync(containerId: string, cmd: readonly string[], timeout = 0): Promise<ExecSyncResponse> {
    const seconds = Math.max(0, Math.floor(timeout));
    const deadline = seconds > 0 ? seconds * 1000 + this.timeouts.short : this.timeouts.long;
    const r = await this.rt<{ stdout: Buffer; stderr: Buffer; exitCode: number }>('ExecSync', { containerId, cmd: [...cmd], timeout: seconds }, deadline);
    return { stdout: new Uint8Array(r.stdout), stderr: new Uint8Array(r.stderr), exitCode: r.exitCode };
  }

  /** CRI `Exec`: the streaming server's URL. */
  async exec(request: ExecRequest): Promise<StreamingResponse> {
    const r = await this.rt<{ url: string }>('Exec', {
      containerId: request.containerId,
      cmd: [...request.cmd],
      tty: request.tty ?? false,
      stdin: request.stdin ?? false,
      stdout: request.stdout ?? false,
      stderr: request.stderr ?? false,
    });
    return { url: r.url };
  }

  /** CRI `Attach`: the streaming server's URL. */
  async attach(request: AttachRequest): Promise<StreamingResponse> {
    const r = await this.rt<{ url: string }>('Attach', {
      containerId: request.containerId,
      stdin: request.stdin ?? false,
      tty: request.tty ?? false,
      stdout: request.stdout ?? false,
      stderr: request.stderr ?? false,
    });
    return { url: r.url };
  }

  /** CRI `PortForward`: the streaming server's URL. */
  async portForward(request: PortForwardRequest): Promise<StreamingResponse> {
    const r = await this.rt<{ url: string }>('PortForward', { podSandboxId: request.podSandboxId, port: [...(request.port ?? [])] });
    return { url: r.url };
  }

  /** CRI `ContainerStats`. */
  async containerStats(containerId: string): Promise<ContainerStats> {
    const r = await this.rt<{ stats: WireContainerStats | null }>('ContainerStats', { containerId });
    if (!r.stats) throw RuntimeError.notFound(`container ${containerId}`);
    return containerStats(r.stats);
  }

  /** CRI `ListContainerStats`. */
  async listContainerStats(filter?: ContainerStatsFilter): Promise<ContainerStats[]> {
    const wire = filter ? { id: filter.id ?? '', podSandboxId: filter.podSandboxId ?? '', labelSelector: { ...(filter.labelSelector ?? {}) } } : undefined;
    const r = await this.rt<{ stats: WireContainerStats[] }>('ListContainerStats', { filter: wire });
    return r.stats.map(containerStats);
  }

  // --- ImageService ---------------------------------------------------------------------------

  /** CRI `ListImages`, filtered by `filter.image` (resolved like `imageStatus`) when given. */
  async listImages(filter?: ImageFilter): Promise<Image[]> {
    const r = await this.img<{ images: WireImage[] }>('ListImages', { filter: filter?.image ? { image: wireImageSpec(filter.image) } : undefined });
    const all = r.images.map(image);
    if (!filter?.image) return all;
    // containerd 1.6 ignores the filter: keep the images the reference resolves to.
    const wanted = (await this.imageStatus(filter.image)).image;
    return wanted ? all.filter((i) => i.id === wanted.id) : [];
  }

  /** CRI `ImageStatus`: no `image` when it is not present. */
  async imageStatus(spec: ImageSpec, verbose = false): Promise<ImageStatusResponse> {
    const r = await this.img<{ image: WireImage | null; info: WireMap }>('ImageStatus', { image: wireImageSpec(spec), verbose });
    return { ...(r.image && r.image.id ? { image: image(r.image) } : {}), ...(verbose ? { info: map(r.info) } : {}) };
  }

  /** CRI `PullImage`: always contacts the registry (containerd does not short-circuit present images). */
  async pullImage(spec: ImageSpec, auth?: AuthConfig, sandboxConfig?: PodSandboxConfig): Promise<string> {
    if (!spec.image) throw RuntimeError.invalidArgument('pullImage: the image reference is empty');
    const r = await this.img<{ imageRef: string }>(
      'PullImage',
      {
        image: wireImageSpec(spec),
        auth: auth
          ? {
              username: auth.username ?? '',
              password: auth.password ?? '',
              auth: auth.auth ?? '',
              serverAddress: auth.serverAddress ?? '',
              identityToken: auth.identityToken ?? '',
              registryToken: auth.registryToken ?? '',
            }
          : undefined,
        sandboxConfig: sandboxConfig ? wirePodSandboxConfig(sandboxConfig) : undefined,
      },
      this.timeouts.pull,
    );
    return r.imageRef;
  }

  /** CRI `RemoveImage` (idempotent). */
  async removeImage(spec: ImageSpec): Promise<void> {
    try {
      await this.img('RemoveImage', { image: wireImageSpec(spec) }, this.timeouts.long);
    } catch (err) {
      if (!(err instanceof RuntimeError && err.code === 'NotFound')) throw err;
    }
  }

  /** CRI `ImageFsInfo`. */
  async imageFsInfo(): Promise<ImageFsInfoResponse> {
    const r = await this.img<{ imageFilesystems: WireFilesystemUsage[]; containerFilesystems: WireFilesystemUsage[] }>('ImageFsInfo', {});
    return { imageFilesystems: r.imageFilesystems.map(filesystemUsage), containerFilesystems: r.containerFilesystems.map(filesystemUsage) };
  }

  /** Closes the channel (calls in flight fail with `Unavailable`), then runs `onClose`. Idempotent. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.client.close();
      await this.onClose?.();
    })();
    return this.closed;
  }
}

/**
 * Calls `version()` until it answers or `timeoutMs` passes (containerd starting up, a socket not
 * there yet), and returns the answer.
 * @throws {RuntimeError} the last failure once the time is up.
 */
export async function waitForVersion(runtime: Pick<ContainerRuntime, 'version'>, timeoutMs: number, intervalMs = 200): Promise<VersionResponse> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await runtime.version();
    } catch (err) {
      if (Date.now() + intervalMs >= deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }
}
