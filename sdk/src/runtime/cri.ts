/**
 * The container runtime contract (kind `container-runtime`): Kubernetes' Container Runtime
 * Interface, CRI v1 (`k8s.io/cri-api` `runtime.v1`), as a TypeScript object.
 *
 * One {@link ContainerRuntime} implements both CRI services, as containerd's CRI plugin does:
 * - the **RuntimeService** ({@link RuntimeService}): pod sandboxes (the pod-level environment:
 *   network namespace, cgroup parent, the pause process), containers inside them, exec/attach/port
 *   forwarding, stats, and the runtime's own status;
 * - the **ImageService** ({@link ImageService}): pulling, inspecting and removing images and the
 *   image filesystem's usage.
 *
 * Names follow CRI's messages and fields in camelCase; the call shapes follow the kubelet's own
 * view of CRI (`internalapi.RuntimeService`/`ImageManagerService`): positional arguments for the
 * request fields the kubelet passes, CRI's response messages as results. Errors are
 * {@link RuntimeError}s carrying CRI's gRPC status codes.
 *
 * Timestamps are CRI's: nanoseconds since the Unix epoch, as a `number` (so precise to about a
 * quarter of a microsecond today, which is ample for container lifecycles).
 *
 * @module
 */

/** The CRI API version this contract mirrors (`VersionResponse.version`). */
export const CRI_API_VERSION = 'v1';

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/**
 * The gRPC status codes CRI runtimes answer with, by name. The kubelet acts on a few of them:
 * `NotFound` (the object is gone: treat as removed), `DeadlineExceeded` (an exec probe timed out),
 * `Unavailable` (the runtime is down: retry later).
 */
export type RuntimeErrorCode =
  | 'NotFound'
  | 'AlreadyExists'
  | 'InvalidArgument'
  | 'FailedPrecondition'
  | 'Unavailable'
  | 'DeadlineExceeded'
  | 'Unimplemented'
  | 'Unknown';

/** The numeric gRPC code of each {@link RuntimeErrorCode} (what a gRPC transport sends). */
export const RUNTIME_ERROR_GRPC_CODES: Readonly<Record<RuntimeErrorCode, number>> = Object.freeze({
  Unknown: 2,
  InvalidArgument: 3,
  DeadlineExceeded: 4,
  NotFound: 5,
  AlreadyExists: 6,
  FailedPrecondition: 9,
  Unimplemented: 12,
  Unavailable: 14,
});

/**
 * An error a runtime call fails with, carrying a gRPC-like status code. Every failure of a
 * {@link ContainerRuntime} method should be one (a transport maps it to a gRPC status and back);
 * any other thrown value counts as `Unknown`.
 */
export class RuntimeError extends Error {
  override readonly name = 'RuntimeError';
  /** The gRPC status code, by name. */
  readonly code: RuntimeErrorCode;

  constructor(code: RuntimeErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  /** The numeric gRPC code of {@link RuntimeError.code}. */
  get grpcCode(): number {
    return RUNTIME_ERROR_GRPC_CODES[this.code];
  }

  /** `NotFound`: the sandbox, container or image does not exist (or no longer does). */
  static notFound(what: string): RuntimeError {
    return new RuntimeError('NotFound', `${what} not found`);
  }
  /** `InvalidArgument`: the request is malformed (a missing name, an empty image, ...). */
  static invalidArgument(message: string): RuntimeError {
    return new RuntimeError('InvalidArgument', message);
  }
}

/**
 * True when `err` is a {@link RuntimeError} (by shape, so errors from another copy of the SDK or a
 * transport count), and, when `code` is given, has that code.
 */
export function isRuntimeError(err: unknown, code?: RuntimeErrorCode): err is RuntimeError {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { name?: unknown; code?: unknown };
  if (!(err instanceof RuntimeError) && e.name !== 'RuntimeError') return false;
  if (typeof e.code !== 'string' || !(e.code in RUNTIME_ERROR_GRPC_CODES)) return false;
  return code === undefined || e.code === code;
}

// ---------------------------------------------------------------------------------------------
// Runtime status and version
// ---------------------------------------------------------------------------------------------

/** `VersionResponse`: which CRI API and which runtime answer. */
export interface VersionResponse {
  /** Version of the kubelet runtime API (`v1`). */
  readonly version: string;
  /** Name of the container runtime (`containerd`, `cri-fake`). */
  readonly runtimeName: string;
  /** Version of the container runtime, semver-compatible. */
  readonly runtimeVersion: string;
  /** API version of the container runtime, semver-compatible (`v1`). */
  readonly runtimeApiVersion: string;
}

/** The runtime condition every runtime must report: it is up and ready to run containers. */
export const RUNTIME_READY = 'RuntimeReady';
/** The runtime condition every runtime must report: the pod network is ready (CNI configured). */
export const NETWORK_READY = 'NetworkReady';

/** `RuntimeCondition`: one condition of the runtime (the kubelet requires `RuntimeReady` and `NetworkReady`). */
export interface RuntimeCondition {
  /** The condition's type ({@link RUNTIME_READY}, {@link NETWORK_READY}, or runtime-specific). */
  readonly type: string;
  /** True when the condition holds. */
  readonly status: boolean;
  /** A CamelCase reason for the condition's last transition (when not true). */
  readonly reason?: string;
  /** A human readable message for the last transition. */
  readonly message?: string;
}

/** `RuntimeStatus`: the runtime's conditions. */
export interface RuntimeStatus {
  readonly conditions: readonly RuntimeCondition[];
}

/** `StatusResponse`: the runtime's status, with verbose runtime-specific info when asked for. */
export interface StatusResponse {
  readonly status: RuntimeStatus;
  /** Runtime-specific key/value details (JSON strings), only when `verbose`. */
  readonly info?: Readonly<Record<string, string>>;
}

// ---------------------------------------------------------------------------------------------
// Pod sandboxes
// ---------------------------------------------------------------------------------------------

/** `PodSandboxMetadata`: what identifies a sandbox; `attempt` counts re-creations of the same pod's sandbox. */
export interface PodSandboxMetadata {
  /** The pod's name. */
  readonly name: string;
  /** The pod's UID. */
  readonly uid: string;
  /** The pod's namespace. */
  readonly namespace: string;
  /** How many sandboxes this pod had before this one (0 for the first). */
  readonly attempt?: number;
}

/** `DNSConfig`: the sandbox's resolv.conf. */
export interface DnsConfig {
  /** DNS server addresses. */
  readonly servers?: readonly string[];
  /** Search domains. */
  readonly searches?: readonly string[];
  /** resolv.conf options (`ndots:5`). */
  readonly options?: readonly string[];
}

/** `Protocol` of a port mapping. */
export type Protocol = 'TCP' | 'UDP' | 'SCTP';

/** `PortMapping`: a sandbox port exposed on the host (a pod's `hostPort`). */
export interface PortMapping {
  /** Protocol; `TCP` when absent. */
  readonly protocol?: Protocol;
  /** Port inside the sandbox. */
  readonly containerPort: number;
  /** Port on the host (1-65535); absent or 0: not exposed. */
  readonly hostPort?: number;
  /** Host IP to bind; all when absent. */
  readonly hostIp?: string;
}

/** `NamespaceMode`: whose namespace a container or sandbox uses. */
export type NamespaceMode = 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';

/** `NamespaceOption`: the network, PID and IPC namespaces (NODE = host namespaces, `hostNetwork`). */
export interface NamespaceOption {
  readonly network?: NamespaceMode;
  readonly pid?: NamespaceMode;
  readonly ipc?: NamespaceMode;
  /** The container whose namespace `TARGET` refers to. */
  readonly targetId?: string;
}

/** `LinuxSandboxSecurityContext`: the sandbox's (pause process's) security settings. */
export interface LinuxSandboxSecurityContext {
  readonly namespaceOptions?: NamespaceOption;
  /** UID to run the sandbox process as (CRI's `Int64Value run_as_user`). */
  readonly runAsUser?: number;
  /** GID to run the sandbox process as. */
  readonly runAsGroup?: number;
  readonly readonlyRootfs?: boolean;
  readonly supplementalGroups?: readonly number[];
  readonly privileged?: boolean;
  /** Seccomp profile path (`runtime/default`, `unconfined`, `localhost/<path>`). */
  readonly seccompProfilePath?: string;
}

/** `LinuxPodSandboxConfig`: Linux-specific sandbox settings. */
export interface LinuxPodSandboxConfig {
  /** The pod-level cgroup (`/kubepods/burstable/pod<uid>`). */
  readonly cgroupParent?: string;
  readonly securityContext?: LinuxSandboxSecurityContext;
  /** Namespaced sysctls for the sandbox. */
  readonly sysctls?: Readonly<Record<string, string>>;
}

/**
 * `PodSandboxConfig`: everything needed to create a sandbox. The kubelet sends the same config to
 * `createContainer` so the runtime can apply pod-level settings to containers.
 */
export interface PodSandboxConfig {
  readonly metadata: PodSandboxMetadata;
  /** Hostname of the sandbox; empty for host-network sandboxes. */
  readonly hostname?: string;
  /** Directory (on the host) where container log files go; container `logPath`s are relative to it. */
  readonly logDirectory?: string;
  readonly dnsConfig?: DnsConfig;
  readonly portMappings?: readonly PortMapping[];
  /** Labels used to identify and select the sandbox (list filters match them). */
  readonly labels?: Readonly<Record<string, string>>;
  /** Arbitrary metadata the runtime stores and returns unchanged (may change runtime behaviour). */
  readonly annotations?: Readonly<Record<string, string>>;
  readonly linux?: LinuxPodSandboxConfig;
}

/** `PodSandboxState`: ready (running, networked) or not (stopped, failed). */
export type PodSandboxState = 'SANDBOX_READY' | 'SANDBOX_NOTREADY';

/** `PodSandboxNetworkStatus`: the sandbox's IP addresses. */
export interface PodSandboxNetworkStatus {
  /** The primary pod IP. */
  readonly ip: string;
  /** Additional pod IPs (dual stack). */
  readonly additionalIps?: readonly string[];
}

/** `PodSandboxStatus`: the observed state of one sandbox. */
export interface PodSandboxStatus {
  readonly id: string;
  readonly metadata: PodSandboxMetadata;
  readonly state: PodSandboxState;
  /** Creation time, nanoseconds since the epoch. */
  readonly createdAt: number;
  /** Network status; absent for host-network sandboxes and once not ready. */
  readonly network?: PodSandboxNetworkStatus;
  /** The namespaces the sandbox uses. */
  readonly linux?: { readonly namespaces?: { readonly options?: NamespaceOption } };
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** The runtime handler (RuntimeClass handler) the sandbox runs with; `''` is the default. */
  readonly runtimeHandler?: string;
}

/** `PodSandboxStatusResponse`. */
export interface PodSandboxStatusResponse {
  readonly status: PodSandboxStatus;
  /** Runtime-specific details, only when `verbose`. */
  readonly info?: Readonly<Record<string, string>>;
}

/** `PodSandbox`: one entry of `listPodSandbox`. */
export interface PodSandbox {
  readonly id: string;
  readonly metadata: PodSandboxMetadata;
  readonly state: PodSandboxState;
  /** Creation time, nanoseconds since the epoch. */
  readonly createdAt: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly runtimeHandler?: string;
}

/** `PodSandboxFilter`: every given field must match (AND); an absent filter lists everything. */
export interface PodSandboxFilter {
  /** The sandbox id (a runtime may also accept a unique prefix). */
  readonly id?: string;
  readonly state?: PodSandboxState;
  /** Labels that must all be present with these values. */
  readonly labelSelector?: Readonly<Record<string, string>>;
}

// ---------------------------------------------------------------------------------------------
// Containers
// ---------------------------------------------------------------------------------------------

/** `ContainerMetadata`: the container's name in its pod and its `attempt` (the restart count). */
export interface ContainerMetadata {
  readonly name: string;
  /** How many times this container was created before in this sandbox (0 for the first). */
  readonly attempt?: number;
}

/** `ImageSpec`: an image reference (a name, a tag, a digest or an image id). */
export interface ImageSpec {
  readonly image: string;
  /** Unstructured data for the runtime (for example the pod's runtime class). */
  readonly annotations?: Readonly<Record<string, string>>;
  /** The image as the user wrote it in the pod spec, before any resolution. */
  readonly userSpecifiedImage?: string;
  /** The runtime handler to pull with. */
  readonly runtimeHandler?: string;
}

/** `KeyValue`: one environment variable. */
export interface KeyValue {
  readonly key: string;
  readonly value: string;
}

/** `MountPropagation`. */
export type MountPropagation = 'PROPAGATION_PRIVATE' | 'PROPAGATION_HOST_TO_CONTAINER' | 'PROPAGATION_BIDIRECTIONAL';

/** `Mount`: a host path mounted into the container. */
export interface Mount {
  readonly containerPath: string;
  readonly hostPath: string;
  readonly readonly?: boolean;
  readonly selinuxRelabel?: boolean;
  readonly propagation?: MountPropagation;
}

/** `Device`: a host device made available to the container. */
export interface Device {
  readonly containerPath: string;
  readonly hostPath: string;
  /** cgroup permissions: any of `r`, `w`, `m`. */
  readonly permissions: string;
}

/** `LinuxContainerResources`: the container's cgroup limits (from its requests and limits). */
export interface LinuxContainerResources {
  /** CPU CFS period, microseconds. */
  readonly cpuPeriod?: number;
  /** CPU CFS quota per period, microseconds (the CPU limit). */
  readonly cpuQuota?: number;
  /** CPU shares (the CPU request; 1024 per core). */
  readonly cpuShares?: number;
  /** Memory limit in bytes. */
  readonly memoryLimitInBytes?: number;
  /** OOM score adjustment (from the pod's QoS class). */
  readonly oomScoreAdj?: number;
  readonly cpusetCpus?: string;
  readonly cpusetMems?: string;
  /** cgroup v2 unified settings. */
  readonly unified?: Readonly<Record<string, string>>;
  readonly memorySwapLimitInBytes?: number;
}

/** `Capability`: capabilities added to and dropped from the default set. */
export interface Capability {
  readonly addCapabilities?: readonly string[];
  readonly dropCapabilities?: readonly string[];
}

/** `LinuxContainerSecurityContext`: the container's security settings. */
export interface LinuxContainerSecurityContext {
  readonly capabilities?: Capability;
  readonly privileged?: boolean;
  readonly namespaceOptions?: NamespaceOption;
  /** UID to run as (CRI's `Int64Value run_as_user`). */
  readonly runAsUser?: number;
  readonly runAsGroup?: number;
  /** User name to run as (when no UID is given). */
  readonly runAsUsername?: string;
  readonly readonlyRootfs?: boolean;
  readonly supplementalGroups?: readonly number[];
  readonly noNewPrivs?: boolean;
  readonly maskedPaths?: readonly string[];
  readonly readonlyPaths?: readonly string[];
  readonly seccompProfilePath?: string;
  readonly apparmorProfile?: string;
}

/** `LinuxContainerConfig`. */
export interface LinuxContainerConfig {
  readonly resources?: LinuxContainerResources;
  readonly securityContext?: LinuxContainerSecurityContext;
}

/** `ContainerConfig`: everything needed to create a container. */
export interface ContainerConfig {
  readonly metadata: ContainerMetadata;
  readonly image: ImageSpec;
  /** The entrypoint (the image's when empty). */
  readonly command?: readonly string[];
  /** Arguments to the entrypoint (the image's `CMD` when empty and `command` is empty). */
  readonly args?: readonly string[];
  readonly workingDir?: string;
  readonly envs?: readonly KeyValue[];
  readonly mounts?: readonly Mount[];
  readonly devices?: readonly Device[];
  /** Labels used to identify and select the container (list filters match them). */
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * Metadata the runtime stores and returns unchanged. The kubelet keeps its own bookkeeping here,
   * notably {@link CONTAINER_RESTART_COUNT_ANNOTATION}.
   */
  readonly annotations?: Readonly<Record<string, string>>;
  /** Log file path, relative to the sandbox's `logDirectory`. */
  readonly logPath?: string;
  readonly stdin?: boolean;
  readonly stdinOnce?: boolean;
  readonly tty?: boolean;
  readonly linux?: LinuxContainerConfig;
}

/** `ContainerState`. */
export type ContainerState = 'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN';

/**
 * The annotation in which the kubelet records a container's restart count on the container it
 * creates (CRI itself only carries `metadata.attempt`); read it with {@link restartCountOf}.
 */
export const CONTAINER_RESTART_COUNT_ANNOTATION = 'io.kubernetes.container.restartCount';

/** `Container`: one entry of `listContainers`. */
export interface Container {
  readonly id: string;
  readonly podSandboxId: string;
  readonly metadata: ContainerMetadata;
  readonly image: ImageSpec;
  /** The image id or digest the container runs. */
  readonly imageRef: string;
  readonly state: ContainerState;
  /** Creation time, nanoseconds since the epoch. */
  readonly createdAt: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

/** `ContainerStatus`: the observed state of one container. */
export interface ContainerStatus {
  readonly id: string;
  readonly metadata: ContainerMetadata;
  readonly state: ContainerState;
  /** Creation time, nanoseconds since the epoch. */
  readonly createdAt: number;
  /** Start time, nanoseconds since the epoch; 0 when never started. */
  readonly startedAt: number;
  /** Exit time, nanoseconds since the epoch; 0 when not exited. */
  readonly finishedAt: number;
  /** Exit code; meaningful only when `CONTAINER_EXITED`. */
  readonly exitCode: number;
  readonly image: ImageSpec;
  readonly imageRef: string;
  /** A brief CamelCase reason for the state (`Completed`, `Error`, `OOMKilled`, `ContainerCannotRun`). */
  readonly reason: string;
  /** A human readable message for the state. */
  readonly message: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly mounts: readonly Mount[];
  /** Absolute path of the container's log file (`logDirectory` joined with `logPath`). */
  readonly logPath: string;
  /** The resource limits in effect. */
  readonly resources?: { readonly linux?: LinuxContainerResources };
}

/** `ContainerStatusResponse`. */
export interface ContainerStatusResponse {
  readonly status: ContainerStatus;
  /** Runtime-specific details, only when `verbose`. */
  readonly info?: Readonly<Record<string, string>>;
}

/** `ContainerFilter`: every given field must match (AND). */
export interface ContainerFilter {
  readonly id?: string;
  readonly state?: ContainerState;
  readonly podSandboxId?: string;
  /** Labels that must all be present with these values. */
  readonly labelSelector?: Readonly<Record<string, string>>;
}

/**
 * A container's restart count as the kubelet records it: the
 * {@link CONTAINER_RESTART_COUNT_ANNOTATION} annotation, else `metadata.attempt`, else 0.
 */
export function restartCountOf(container: { readonly metadata: ContainerMetadata; readonly annotations?: Readonly<Record<string, string>> }): number {
  const raw = container.annotations?.[CONTAINER_RESTART_COUNT_ANNOTATION];
  const n = raw === undefined ? NaN : Number(raw);
  return Number.isInteger(n) && n >= 0 ? n : (container.metadata.attempt ?? 0);
}

// ---------------------------------------------------------------------------------------------
// Exec, attach, port-forward
// ---------------------------------------------------------------------------------------------

/** `ExecSyncResponse`: the output and exit code of a command run to completion. */
export interface ExecSyncResponse {
  /** Captured standard output. */
  readonly stdout: Uint8Array;
  /** Captured standard error. */
  readonly stderr: Uint8Array;
  /** The command's exit code; non-zero is not an error of the call. */
  readonly exitCode: number;
}

/** `ExecRequest`: prepare a streaming exec session. */
export interface ExecRequest {
  readonly containerId: string;
  readonly cmd: readonly string[];
  readonly tty?: boolean;
  readonly stdin?: boolean;
  readonly stdout?: boolean;
  readonly stderr?: boolean;
}

/** `AttachRequest`: prepare a streaming attach to the container's main process. */
export interface AttachRequest {
  readonly containerId: string;
  readonly stdin?: boolean;
  readonly tty?: boolean;
  readonly stdout?: boolean;
  readonly stderr?: boolean;
}

/** `PortForwardRequest`: prepare a streaming port-forward into a sandbox. */
export interface PortForwardRequest {
  readonly podSandboxId: string;
  readonly port?: readonly number[];
}

/** `ExecResponse`/`AttachResponse`/`PortForwardResponse`: the streaming server's one-time URL. */
export interface StreamingResponse {
  /** A fully qualified URL of the runtime's streaming server, which the API server proxies to. */
  readonly url: string;
}

// ---------------------------------------------------------------------------------------------
// Stats
// ---------------------------------------------------------------------------------------------

/** `FilesystemUsage`: usage of one filesystem (image store, writable layers). */
export interface FilesystemUsage {
  /** When the usage was sampled, nanoseconds since the epoch. */
  readonly timestamp: number;
  /** The filesystem, by mount point. */
  readonly fsId: { readonly mountpoint: string };
  /** Bytes used by images or layers on it. */
  readonly usedBytes: number;
  /** Inodes used by images or layers on it. */
  readonly inodesUsed: number;
}

/** `ContainerStats`: a container's resource usage. */
export interface ContainerStats {
  readonly attributes: {
    readonly id: string;
    readonly metadata: ContainerMetadata;
    readonly labels: Readonly<Record<string, string>>;
    readonly annotations: Readonly<Record<string, string>>;
  };
  readonly cpu?: { readonly timestamp: number; readonly usageCoreNanoSeconds: number; readonly usageNanoCores?: number };
  readonly memory?: { readonly timestamp: number; readonly workingSetBytes: number; readonly rssBytes?: number; readonly pageFaults?: number; readonly majorPageFaults?: number };
  readonly writableLayer?: FilesystemUsage;
}

/** `ContainerStatsFilter`. */
export interface ContainerStatsFilter {
  readonly id?: string;
  readonly podSandboxId?: string;
  readonly labelSelector?: Readonly<Record<string, string>>;
}

// ---------------------------------------------------------------------------------------------
// Images
// ---------------------------------------------------------------------------------------------

/** `Image`: an image present on the node. */
export interface Image {
  /** The image id (for OCI images, the config digest). */
  readonly id: string;
  /** Tags pointing at it (`docker.io/library/busybox:1.36`). */
  readonly repoTags: readonly string[];
  /** Digests pointing at it (`docker.io/library/busybox@sha256:...`). */
  readonly repoDigests: readonly string[];
  /** Size in bytes. */
  readonly size: number;
  /** The UID the image runs as, if numeric. */
  readonly uid?: number;
  /** The user name the image runs as, if not numeric. */
  readonly username?: string;
  readonly spec?: ImageSpec;
  /** Pinned images are never garbage collected by the kubelet. */
  readonly pinned?: boolean;
}

/** `ImageFilter`. */
export interface ImageFilter {
  readonly image?: ImageSpec;
}

/** `ImageStatusResponse`: the image, or no `image` when it is not present (not an error). */
export interface ImageStatusResponse {
  readonly image?: Image;
  readonly info?: Readonly<Record<string, string>>;
}

/** `AuthConfig`: registry credentials for a pull. */
export interface AuthConfig {
  readonly username?: string;
  readonly password?: string;
  readonly auth?: string;
  readonly serverAddress?: string;
  readonly identityToken?: string;
  readonly registryToken?: string;
}

/** `ImageFsInfoResponse`: the filesystems holding images and container writable layers. */
export interface ImageFsInfoResponse {
  readonly imageFilesystems: readonly FilesystemUsage[];
  readonly containerFilesystems: readonly FilesystemUsage[];
}

// ---------------------------------------------------------------------------------------------
// The services
// ---------------------------------------------------------------------------------------------

/**
 * CRI's `RuntimeService`. Every method rejects with a {@link RuntimeError}; unknown ids are
 * `NotFound`, except where CRI asks for idempotency (the stop and remove calls).
 */
export interface RuntimeService {
  /** `Version`: the runtime's name and version and the CRI API version it serves. `apiVersion` is the kubelet's. */
  version(apiVersion?: string): Promise<VersionResponse>;
  /**
   * `Status`: the runtime's conditions; a healthy runtime reports {@link RUNTIME_READY} and
   * {@link NETWORK_READY} true.
   */
  status(verbose?: boolean): Promise<StatusResponse>;

  /**
   * `RunPodSandbox`: creates and starts a sandbox; on success it is `SANDBOX_READY`. Returns its id.
   * `runtimeHandler` selects a RuntimeClass handler (`''`: the default).
   * @throws {RuntimeError} `InvalidArgument` when the metadata lacks name, uid or namespace.
   */
  runPodSandbox(config: PodSandboxConfig, runtimeHandler?: string): Promise<string>;
  /**
   * `StopPodSandbox`: stops every process of the sandbox (forcibly terminating running containers)
   * and reclaims its network; the sandbox becomes `SANDBOX_NOTREADY`. Idempotent: succeeds when
   * already stopped. For a sandbox already removed it should succeed (all its resources are
   * reclaimed); containerd answers `NotFound`, which consumers must treat as success too.
   */
  stopPodSandbox(podSandboxId: string): Promise<void>;
  /**
   * `RemovePodSandbox`: removes the sandbox, forcibly stopping and removing its containers.
   * Idempotent: succeeds when the sandbox is already gone.
   */
  removePodSandbox(podSandboxId: string): Promise<void>;
  /** `PodSandboxStatus`. @throws {RuntimeError} `NotFound` for an unknown sandbox. */
  podSandboxStatus(podSandboxId: string, verbose?: boolean): Promise<PodSandboxStatusResponse>;
  /** `ListPodSandbox`: the sandboxes matching every field of `filter`. */
  listPodSandbox(filter?: PodSandboxFilter): Promise<PodSandbox[]>;

  /**
   * `CreateContainer`: creates a container (state `CONTAINER_CREATED`) in a ready sandbox.
   * `sandboxConfig` is the config the sandbox was run with. Returns the container's id.
   * @throws {RuntimeError} `NotFound` when the sandbox does not exist or its image is not present,
   *   `FailedPrecondition` when the sandbox is not ready, `InvalidArgument` on a bad config.
   */
  createContainer(podSandboxId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig): Promise<string>;
  /**
   * `StartContainer`: starts a created container (`CONTAINER_RUNNING`; a command that ends on its
   * own later moves it to `CONTAINER_EXITED`).
   * @throws {RuntimeError} `NotFound` for an unknown container; `FailedPrecondition` when it is not `CONTAINER_CREATED`.
   */
  startContainer(containerId: string): Promise<void>;
  /**
   * `StopContainer`: signals the container to stop, and kills it after `timeout` seconds (0: at
   * once). Resolves once it is `CONTAINER_EXITED`. Idempotent: succeeds when already exited.
   * @throws {RuntimeError} `NotFound` for an unknown container.
   */
  stopContainer(containerId: string, timeout: number): Promise<void>;
  /**
   * `RemoveContainer`: removes the container, forcibly stopping it if running. Idempotent: succeeds
   * when the container is already gone.
   */
  removeContainer(containerId: string): Promise<void>;
  /** `ListContainers`: the containers matching every field of `filter`. */
  listContainers(filter?: ContainerFilter): Promise<Container[]>;
  /** `ContainerStatus`. @throws {RuntimeError} `NotFound` for an unknown container. */
  containerStatus(containerId: string, verbose?: boolean): Promise<ContainerStatusResponse>;
  /**
   * `UpdateContainerResources`: changes the container's limits synchronously and transactionally.
   * @throws {RuntimeError} `NotFound` for an unknown container.
   */
  updateContainerResources(containerId: string, resources: LinuxContainerResources): Promise<void>;
  /**
   * `ReopenContainerLog`: reopens the container's log file (after rotation).
   * @throws {RuntimeError} `NotFound` for an unknown container; `FailedPrecondition` when it is not running.
   */
  reopenContainerLog(containerId: string): Promise<void>;

  /**
   * `ExecSync`: runs `cmd` in a running container to completion and returns its output and exit
   * code (a non-zero exit code is a result, not an error). `timeout` is in seconds; 0 means none.
   * @throws {RuntimeError} `NotFound` for an unknown container, `FailedPrecondition` when it is not
   *   running, `DeadlineExceeded` when the command outlives `timeout`.
   */
  execSync(containerId: string, cmd: readonly string[], timeout?: number): Promise<ExecSyncResponse>;
  /** `Exec`: prepares a streaming exec session and returns its URL. @throws {RuntimeError} `NotFound`, `FailedPrecondition` (not running). */
  exec(request: ExecRequest): Promise<StreamingResponse>;
  /** `Attach`: prepares a streaming attach session and returns its URL. @throws {RuntimeError} `NotFound`, `FailedPrecondition` (not running). */
  attach(request: AttachRequest): Promise<StreamingResponse>;
  /** `PortForward`: prepares a streaming port-forward session into a sandbox and returns its URL. @throws {RuntimeError} `NotFound`. */
  portForward(request: PortForwardRequest): Promise<StreamingResponse>;

  /** `ContainerStats` (optional): one container's usage. @throws {RuntimeError} `NotFound`. */
  containerStats?(containerId: string): Promise<ContainerStats>;
  /** `ListContainerStats` (optional): the usage of the containers matching `filter`. */
  listContainerStats?(filter?: ContainerStatsFilter): Promise<ContainerStats[]>;

  /**
   * `UpdateRuntimeConfig` (optional): tells the runtime the node's pod CIDR (`10.88.0.0/24`). A
   * runtime configured with a CNI config template (containerd's `conf_template`) writes its CNI
   * config from it, if it has none yet; until then it reports {@link NETWORK_READY} false.
   * Idempotent. @throws {RuntimeError} `InvalidArgument` for a malformed CIDR.
   */
  updateRuntimeConfig?(config: { readonly podCidr: string }): Promise<void>;
}

/**
 * CRI's `ImageService`. Images are addressed by any reference that resolves to them: a tag, a
 * digest, or the image id.
 */
export interface ImageService {
  /** `ListImages`: the images present, filtered by `filter.image` when given. */
  listImages(filter?: ImageFilter): Promise<Image[]>;
  /** `ImageStatus`: the image, or a response without `image` when it is not present (not an error). */
  imageStatus(image: ImageSpec, verbose?: boolean): Promise<ImageStatusResponse>;
  /**
   * `PullImage`: pulls the image (with `auth` when given) and returns its reference (the image id
   * or digest), which the kubelet puts in `ContainerConfig.image`.
   * @throws {RuntimeError} `NotFound` when the registry has no such image, `Unavailable` when it
   *   cannot be reached, `InvalidArgument` for an empty reference.
   */
  pullImage(image: ImageSpec, auth?: AuthConfig, sandboxConfig?: PodSandboxConfig): Promise<string>;
  /** `RemoveImage`: removes the image. Idempotent: succeeds when it is already gone. */
  removeImage(image: ImageSpec): Promise<void>;
  /** `ImageFsInfo`: the filesystems holding images and writable layers. */
  imageFsInfo(): Promise<ImageFsInfoResponse>;
}

/**
 * The `container-runtime` contract: one object serving both CRI services (as containerd does),
 * plus the kernel's `close()` (called once when the providing plugin stops).
 */
export interface ContainerRuntime extends RuntimeService, ImageService {
  /** Releases what the runtime holds (connections, timers). Called once by the kernel; never by a consumer. */
  close?(): Promise<void> | void;
}

/** The methods a {@link ContainerRuntime} must have, in CRI's order. */
export const CONTAINER_RUNTIME_METHODS = Object.freeze([
  'version',
  'status',
  'runPodSandbox',
  'stopPodSandbox',
  'removePodSandbox',
  'podSandboxStatus',
  'listPodSandbox',
  'createContainer',
  'startContainer',
  'stopContainer',
  'removeContainer',
  'listContainers',
  'containerStatus',
  'updateContainerResources',
  'reopenContainerLog',
  'execSync',
  'exec',
  'attach',
  'portForward',
  'listImages',
  'imageStatus',
  'pullImage',
  'removeImage',
  'imageFsInfo',
] as const);

/** The methods a {@link ContainerRuntime} may have; when present they must be functions. */
export const OPTIONAL_CONTAINER_RUNTIME_METHODS = Object.freeze(['containerStats', 'listContainerStats', 'updateRuntimeConfig', 'close'] as const);

/** The required methods `value` lacks (empty when it has them all). */
export function missingContainerRuntimeMethods(value: unknown): string[] {
  if (typeof value !== 'object' || value === null) return [...CONTAINER_RUNTIME_METHODS];
  const v = value as Record<string, unknown>;
  const missing: string[] = CONTAINER_RUNTIME_METHODS.filter((m) => typeof v[m] !== 'function');
  for (const m of OPTIONAL_CONTAINER_RUNTIME_METHODS) if (v[m] !== undefined && typeof v[m] !== 'function') missing.push(m);
  return missing;
}

/**
 * True when `value` implements {@link ContainerRuntime}: every RuntimeService and ImageService
 * method is a function, and the optional ones are functions when present.
 */
export function isContainerRuntime(value: unknown): value is ContainerRuntime {
  return missingContainerRuntimeMethods(value).length === 0;
}
