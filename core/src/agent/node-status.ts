/**
 * The node agent's Node object and node conditions, built purely from what the machine and the
 * agent observed (the kubelet's `pkg/kubelet/kubelet_node_status.go` `initialNode` and the setters
 * of `pkg/kubelet/nodestatus/setters.go`). Only {@link machineInfo} reads the host; everything
 * else is a function of its arguments, with `now` passed in.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import { formatQuantity, parseQuantity, type Image, type Quantity } from '@kubernel/sdk';
import { rfc3339 } from './pod-status.js';

/** The kubelet version the agent reports (`nodeInfo.kubeletVersion`). */
export const KUBELET_VERSION = 'v1.30.0-kubernel';

/** The kubelet's default `maxPods`. */
export const DEFAULT_MAX_PODS = 110;

/** The kubelet's default port (`daemonEndpoints.kubeletEndpoint.Port`). */
export const DEFAULT_KUBELET_PORT = 10250;

/** At most this many images are reported in `status.images` (the kubelet's `nodeStatusMaxImages`). */
export const MAX_NODE_STATUS_IMAGES = 50;

/** At most this many names are reported per image (the kubelet's `maxNamesPerImageInNodeStatus`). */
export const MAX_NAMES_PER_IMAGE = 5;

/** What the agent knows about its machine. */
export interface MachineInfo {
  /** Logical CPUs. */
  readonly cpus: number;
  /** Total memory, bytes. */
  readonly memoryBytes: number;
  /** The host name, lower-cased (as the kubelet uses it). */
  readonly hostname: string;
  /** GOOS-style operating system: `linux`, `darwin`, `windows`, ... */
  readonly operatingSystem: string;
  /** GOARCH-style architecture: `amd64`, `arm64`, ... */
  readonly architecture: string;
  /** `uname -r`. */
  readonly kernelVersion: string;
  /** The distribution's name (`/etc/os-release` `PRETTY_NAME`), else the OS type and release. */
  readonly osImage: string;
  /** `/etc/machine-id` (empty when unreadable). */
  readonly machineID: string;
  /** `/sys/class/dmi/id/product_uuid` (empty when unreadable, as it is without root). */
  readonly systemUUID: string;
  /** `/proc/sys/kernel/random/boot_id` (empty when unreadable). */
  readonly bootID: string;
}

const GOARCH: Readonly<Record<string, string>> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64', mips: 'mips', mipsel: 'mipsle' };
const GOOS: Readonly<Record<string, string>> = { win32: 'windows', sunos: 'solaris' };

/** Node's `os.arch()` as Go's GOARCH (`x64` is `amd64`; `ppc64` is `ppc64le` on a little-endian host). */
export function goArch(arch: string, endianness: 'BE' | 'LE' = 'LE'): string {
  if (arch === 'ppc64') return endianness === 'LE' ? 'ppc64le' : 'ppc64';
  return GOARCH[arch] ?? arch;
}

/** Node's `os.platform()` as Go's GOOS (`win32` is `windows`). */
export function goOs(platform: string): string {
  return GOOS[platform] ?? platform;
}

function readTrimmed(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}

function prettyName(osRelease: string): string | undefined {
  const line = osRelease.split('\n').find((l) => l.startsWith('PRETTY_NAME='));
  return line?.slice('PRETTY_NAME='.length).replace(/^["']|["']$/g, '') || undefined;
}

/**
 * The machine as `node:os` (and, best effort, `/etc/os-release`, `/etc/machine-id`, the DMI
 * product UUID and the boot ID) describe it. Never throws: unreadable files give empty fields.
 */
export function machineInfo(): MachineInfo {
  return {
    cpus: os.availableParallelism?.() ?? os.cpus().length,
    memoryBytes: os.totalmem(),
    hostname: os.hostname().toLowerCase(),
    operatingSystem: goOs(os.platform()),
    architecture: goArch(os.arch(), os.endianness()),
    kernelVersion: os.release(),
    osImage: prettyName(readTrimmed('/etc/os-release')) ?? `${os.type()} ${os.release()}`,
    machineID: readTrimmed('/etc/machine-id'),
    systemUUID: readTrimmed('/sys/class/dmi/id/product_uuid'),
    bootID: readTrimmed('/proc/sys/kernel/random/boot_id'),
  };
}

/** `core/v1` `Taint`. */
export interface V1Taint {
  readonly key: string;
  readonly value?: string;
  readonly effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute' | string;
  readonly timeAdded?: string;
}

/** `core/v1` `NodeAddress`. */
export interface V1NodeAddress {
  readonly type: 'InternalIP' | 'ExternalIP' | 'Hostname' | 'InternalDNS' | 'ExternalDNS' | string;
  readonly address: string;
}

/** `core/v1` `NodeCondition`. */
export interface V1NodeCondition {
  readonly type: string;
  readonly status: 'True' | 'False' | 'Unknown' | string;
  readonly reason?: string;
  readonly message?: string;
  readonly lastHeartbeatTime?: string;
  readonly lastTransitionTime?: string;
}

/** `core/v1` `ContainerImage`. */
export interface V1ContainerImage {
  readonly names: readonly string[];
  readonly sizeBytes: number;
}

/** `core/v1` `NodeSystemInfo`. */
export interface V1NodeSystemInfo {
  readonly machineID: string;
  readonly systemUUID: string;
  readonly bootID: string;
  readonly kernelVersion: string;
  readonly osImage: string;
  readonly containerRuntimeVersion: string;
  readonly kubeletVersion: string;
  readonly kubeProxyVersion: string;
  readonly operatingSystem: string;
  readonly architecture: string;
}

/** `core/v1` `Node`, as the agent registers it. */
export interface V1Node {
  readonly apiVersion: 'v1';
  readonly kind: 'Node';
  readonly metadata: { readonly name: string; readonly labels: Readonly<Record<string, string>> };
  readonly spec: { readonly podCIDR?: string; readonly podCIDRs?: readonly string[]; readonly taints?: readonly V1Taint[]; readonly unschedulable?: boolean };
  readonly status: {
    readonly capacity: Readonly<Record<string, string>>;
    readonly allocatable: Readonly<Record<string, string>>;
    readonly conditions?: readonly V1NodeCondition[];
    readonly addresses: readonly V1NodeAddress[];
    readonly daemonEndpoints: { readonly kubeletEndpoint: { readonly Port: number } };
    readonly nodeInfo: V1NodeSystemInfo;
    readonly images?: readonly V1ContainerImage[];
  };
}

/** Options of {@link nodeObject}. */
export interface NodeOptions {
  /** Extra labels (`--node-labels`); they win over the well-known ones, as the kubelet's do. */
  readonly labels?: Readonly<Record<string, string>>;
  /** Taints to register with (`--register-with-taints`). */
  readonly taints?: readonly V1Taint[];
  /** Register unschedulable: sets `spec.unschedulable` and the `node.kubernetes.io/unschedulable` NoSchedule taint. */
  readonly unschedulable?: boolean;
  /** The pod CIDR (a dual-stack node may give two). */
  readonly podCIDR?: string | readonly string[];
  /** The node's internal IPs (primary first), reported as `InternalIP` addresses. */
  readonly addresses?: readonly string[];
  /** The host name (`--hostname-override`); default the node's name. Labels `kubernetes.io/hostname` and the `Hostname` address. */
  readonly hostname?: string;
  /** Resources held back from pods (kube-reserved + system-reserved + eviction thresholds), as quantities. */
  readonly reserved?: { readonly cpu?: string; readonly memory?: string; readonly ephemeralStorage?: string; readonly pods?: number };
  /** Pods the node accepts. Default {@link DEFAULT_MAX_PODS}. */
  readonly maxPods?: number;
  /** The node filesystem's capacity, bytes; reported as `ephemeral-storage` when given. */
  readonly ephemeralStorageBytes?: number;
  /** The images present (from the runtime's `listImages`). */
  readonly images?: readonly Pick<Image, 'repoTags' | 'repoDigests' | 'size'>[];
  /** `<runtime name>://<version>` (`containerd://1.7.13`). Default `''`. */
  readonly containerRuntimeVersion?: string;
  /** The agent's port. Default {@link DEFAULT_KUBELET_PORT}. */
  readonly kubeletPort?: number;
  /** Conditions to report (see {@link nodeConditions}). */
  readonly conditions?: readonly V1NodeCondition[];
}

function bytes(n: number): Quantity {
  return { nanos: BigInt(Math.max(0, Math.floor(n))) * 1_000_000_000n, format: 'BinarySI' };
}

function minus(capacity: Quantity, reserved: string | undefined): string {
  if (reserved === undefined) return formatQuantity(capacity);
  const r = parseQuantity(reserved);
  const left = capacity.nanos - r.nanos;
  return formatQuantity({ nanos: left > 0n ? left : 0n, format: capacity.format });
}

/**
 * The images for `status.images`: largest first, at most {@link MAX_NODE_STATUS_IMAGES}, each with
 * its digests then tags, at most {@link MAX_NAMES_PER_IMAGE} names; nameless images are skipped.
 */
export function nodeImages(images: readonly Pick<Image, 'repoTags' | 'repoDigests' | 'size'>[]): V1ContainerImage[] {
  return [...images]
    .sort((a, b) => b.size - a.size)
    .map((i) => ({ names: [...i.repoDigests, ...i.repoTags].slice(0, MAX_NAMES_PER_IMAGE), sizeBytes: i.size }))
    .filter((i) => i.names.length > 0)
    .slice(0, MAX_NODE_STATUS_IMAGES);
}

/**
 * The Node the agent registers and keeps up to date:
 *
 * - labels `kubernetes.io/hostname`, `kubernetes.io/os`, `kubernetes.io/arch` and their
 *   `beta.kubernetes.io/` forms, then `options.labels`;
 * - `capacity`: `cpu` (the CPU count), `memory` (canonical binary quantity: `16Gi`, `8029604Ki`),
 *   `pods`, and `ephemeral-storage` when known; `allocatable`: capacity minus `reserved`, never
 *   below zero;
 * - `addresses`: each internal IP as `InternalIP`, then the `Hostname`;
 * - `nodeInfo` from the machine, with `kubeletVersion` (and the deprecated `kubeProxyVersion`)
 *   {@link KUBELET_VERSION};
 * - `daemonEndpoints.kubeletEndpoint.Port`; `images` per {@link nodeImages}.
 *
 * @throws {QuantityError} when a `reserved` value is not a quantity.
 */
export function nodeObject(name: string, info: MachineInfo, options: NodeOptions = {}): V1Node {
  const hostname = (options.hostname ?? name).toLowerCase();
  const labels: Record<string, string> = {
    'beta.kubernetes.io/arch': info.architecture,
    'beta.kubernetes.io/os': info.operatingSystem,
    'kubernetes.io/arch': info.architecture,
    'kubernetes.io/hostname': hostname,
    'kubernetes.io/os': info.operatingSystem,
    ...options.labels,
  };

  const maxPods = options.maxPods ?? DEFAULT_MAX_PODS;
  const cpu: Quantity = { nanos: BigInt(info.cpus) * 1_000_000_000n, format: 'DecimalSI' };
  const memory = bytes(info.memoryBytes);
  const capacity: Record<string, string> = { cpu: formatQuantity(cpu), memory: formatQuantity(memory), pods: String(maxPods) };
  const reserved = options.reserved ?? {};
  const allocatable: Record<string, string> = {
    cpu: minus(cpu, reserved.cpu),
    memory: minus(memory, reserved.memory),
    pods: String(Math.max(0, maxPods - (reserved.pods ?? 0))),
  };
  if (options.ephemeralStorageBytes !== undefined) {
    const storage = bytes(options.ephemeralStorageBytes);
    capacity['ephemeral-storage'] = formatQuantity(storage);
    allocatable['ephemeral-storage'] = minus(storage, reserved.ephemeralStorage);
  }

  const taints = [...(options.taints ?? [])];
  if (options.unschedulable && !taints.some((t) => t.key === 'node.kubernetes.io/unschedulable' && t.effect === 'NoSchedule')) {
    taints.push({ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' });
  }
  const cidrs = options.podCIDR === undefined ? [] : typeof options.podCIDR === 'string' ? [options.podCIDR] : [...options.podCIDR];

  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels },
    spec: {
      ...(cidrs.length > 0 ? { podCIDR: cidrs[0], podCIDRs: cidrs } : {}),
      ...(taints.length > 0 ? { taints } : {}),
      ...(options.unschedulable ? { unschedulable: true } : {}),
    },
    status: {
      capacity,
      allocatable,
      ...(options.conditions ? { conditions: options.conditions } : {}),
      addresses: [...(options.addresses ?? []).map((address) => ({ type: 'InternalIP', address })), { type: 'Hostname', address: hostname }],
      daemonEndpoints: { kubeletEndpoint: { Port: options.kubeletPort ?? DEFAULT_KUBELET_PORT } },
      nodeInfo: {
        machineID: info.machineID,
        systemUUID: info.systemUUID,
        bootID: info.bootID,
        kernelVersion: info.kernelVersion,
        osImage: info.osImage,
        containerRuntimeVersion: options.containerRuntimeVersion ?? '',
        kubeletVersion: KUBELET_VERSION,
        kubeProxyVersion: KUBELET_VERSION,
        operatingSystem: info.operatingSystem,
        architecture: info.architecture,
      },
      ...(options.images ? { images: nodeImages(options.images) } : {}),
    },
  };
}

/** What the agent observed about its node: the input of {@link nodeConditions}. */
export interface NodeObservation {
  readonly memoryPressure: boolean;
  readonly diskPressure: boolean;
  readonly pidPressure: boolean;
  readonly ready: boolean;
  /** Why the node is not ready (the kubelet joins its errors with `, `); used when not ready. */
  readonly readyMessage?: string;
}

/**
 * The kubelet's node conditions, in its order: `MemoryPressure`, `DiskPressure`, `PIDPressure`,
 * `Ready`, with its reasons and messages (`KubeletHasSufficientMemory` "kubelet has sufficient
 * memory available", `KubeletReady` "kubelet is posting ready status", `KubeletNotReady` with
 * `readyMessage`, ...).
 *
 * Each one replaces the previous condition of its type in place (other conditions, such as
 * `NetworkUnavailable`, are kept); new ones are appended. `lastHeartbeatTime` is `now`;
 * `lastTransitionTime` is kept from the previous condition unless the status changed.
 */
export function nodeConditions(previous: readonly V1NodeCondition[] | undefined, observed: NodeObservation, now: Date): V1NodeCondition[] {
  const generated: { type: string; status: 'True' | 'False'; reason: string; message: string }[] = [
    observed.memoryPressure
      ? { type: 'MemoryPressure', status: 'True', reason: 'KubeletHasInsufficientMemory', message: 'kubelet has insufficient memory available' }
      : { type: 'MemoryPressure', status: 'False', reason: 'KubeletHasSufficientMemory', message: 'kubelet has sufficient memory available' },
    observed.diskPressure
      ? { type: 'DiskPressure', status: 'True', reason: 'KubeletHasDiskPressure', message: 'kubelet has disk pressure' }
      : { type: 'DiskPressure', status: 'False', reason: 'KubeletHasNoDiskPressure', message: 'kubelet has no disk pressure' },
    observed.pidPressure
      ? { type: 'PIDPressure', status: 'True', reason: 'KubeletHasInsufficientPID', message: 'kubelet has insufficient PID available' }
      : { type: 'PIDPressure', status: 'False', reason: 'KubeletHasSufficientPID', message: 'kubelet has sufficient PID available' },
    observed.ready
      ? { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status' }
      : { type: 'Ready', status: 'False', reason: 'KubeletNotReady', message: observed.readyMessage ?? '' },
  ];
  const stamp = rfc3339(now);
  const result = [...(previous ?? [])];
  for (const g of generated) {
    const i = result.findIndex((c) => c.type === g.type);
    const prev = i >= 0 ? result[i] : undefined;
    const lastTransitionTime = prev && prev.status === g.status && prev.lastTransitionTime ? prev.lastTransitionTime : stamp;
    const condition: V1NodeCondition = { ...g, lastHeartbeatTime: stamp, lastTransitionTime };
    if (i >= 0) result[i] = condition;
    else result.push(condition);
  }
  return result;
}

/** What the pressure conditions are computed from (the kubelet's eviction signals). */
export interface PressureSignals {
  /** `memory.available`: bytes (MemAvailable). */
  readonly memoryAvailableBytes: number;
  /** `nodefs.available` as a fraction of the filesystem holding the agent's data. */
  readonly nodefsAvailableFraction: number;
  /** `nodefs.inodesFree` as a fraction. */
  readonly nodefsInodesFreeFraction: number;
  /** PIDs left as a fraction of `kernel.pid_max`. */
  readonly pidAvailableFraction: number;
}

/**
 * The kubelet's default hard eviction thresholds (`memory.available<100Mi`, `nodefs.available<10%`,
 * `nodefs.inodesFree<5%`); for PIDs, which have no default threshold upstream, Kubernel uses
 * `pid.available<5%`.
 */
export const PRESSURE_THRESHOLDS = Object.freeze({ memoryAvailableBytes: 100 * 1024 * 1024, nodefsAvailableFraction: 0.1, nodefsInodesFreeFraction: 0.05, pidAvailableFraction: 0.05 });

/** Reads the pressure signals of this machine; `dataDir` picks the filesystem (nodefs). */
export async function readPressureSignals(dataDir: string): Promise<PressureSignals> {
  const { readFile, readdir, statfs } = await import('node:fs/promises');
  const meminfo = await readFile('/proc/meminfo', 'utf8');
  const kb = Number(/MemAvailable:\s+(\d+)/.exec(meminfo)?.[1] ?? NaN);
  const fs = await statfs(dataDir);
  const pidMax = Number((await readFile('/proc/sys/kernel/pid_max', 'utf8')).trim());
  // Every thread takes a PID: count tasks, not processes.
  const threads = await countThreads(readdir, readFile);
  return {
    memoryAvailableBytes: kb * 1024,
    nodefsAvailableFraction: fs.blocks > 0 ? fs.bavail / fs.blocks : 1,
    nodefsInodesFreeFraction: fs.files > 0 ? fs.ffree / fs.files : 1,
    pidAvailableFraction: pidMax > 0 ? Math.max(0, pidMax - threads) / pidMax : 1,
  };
}

async function countThreads(
  readdir: (p: string) => Promise<string[]>,
  readFile: (p: string, e: 'utf8') => Promise<string>,
): Promise<number> {
  const loadavg = await readFile('/proc/loadavg', 'utf8').catch(() => '');
  // loadavg's 4th field is "running/total scheduling entities" (threads): cheap and exact enough.
  const total = Number(/\d+\/(\d+)/.exec(loadavg)?.[1] ?? NaN);
  if (Number.isFinite(total)) return total;
  return (await readdir('/proc')).filter((e) => /^\d+$/.test(e)).length;
}

/** The pressure part of a {@link NodeObservation} from signals, with {@link PRESSURE_THRESHOLDS}. */
export function pressureOf(s: PressureSignals): Pick<NodeObservation, 'memoryPressure' | 'diskPressure' | 'pidPressure'> {
  const t = PRESSURE_THRESHOLDS;
  return {
    memoryPressure: s.memoryAvailableBytes < t.memoryAvailableBytes,
    diskPressure: s.nodefsAvailableFraction < t.nodefsAvailableFraction || s.nodefsInodesFreeFraction < t.nodefsInodesFreeFraction,
    pidPressure: s.pidAvailableFraction < t.pidAvailableFraction,
  };
}
