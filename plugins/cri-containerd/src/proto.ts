/**
 * The CRI v1 wire definitions: the package's own `proto/api.proto` loaded with
 * `@grpc/proto-loader`, and the plain-object shapes of the messages as proto-loader hands them
 * over (camelCase fields, int64 as `number`, enums as their names, unset fields at their defaults:
 * `''`, `0`, `false`, `[]`, `{}`, and `null` for messages).
 *
 * @module
 */
import { fileURLToPath } from 'node:url';
import type { MethodDefinition } from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';

/** The proto file, resolved next to the compiled module (`dist/` → `../proto/api.proto`). */
export const CRI_PROTO_PATH = fileURLToPath(new URL('../proto/api.proto', import.meta.url));

/** The fully qualified service names in the proto. */
export const RUNTIME_SERVICE = 'runtime.v1.RuntimeService';
export const IMAGE_SERVICE = 'runtime.v1.ImageService';

let cached: PackageDefinition | undefined;

/** The loaded package definition (loaded once per process). */
export function criPackageDefinition(): PackageDefinition {
  cached ??= loadSync(CRI_PROTO_PATH, {
    keepCase: false,
    longs: Number, // int64 nanosecond timestamps fit a double to ~0.25 µs, as the SDK documents
    enums: String,
    defaults: true,
    arrays: true,
    objects: true,
  });
  return cached;
}

/** A generic unary method of the CRI services, with its (de)serializers. */
export type UnaryMethod = MethodDefinition<object, object>;

/** The unary method `method` (`Version`, `PullImage`, ...) of `service`. */
export function criMethod(service: typeof RUNTIME_SERVICE | typeof IMAGE_SERVICE, method: string): UnaryMethod {
  const svc = criPackageDefinition()[service] as Record<string, UnaryMethod> | undefined;
  const m = svc?.[method];
  if (!m || m.requestStream || m.responseStream) throw new Error(`no unary method ${service}/${method} in ${CRI_PROTO_PATH}`);
  return m;
}

// ---------------------------------------------------------------------------------------------
// Decoded message shapes (what containerd answers, as proto-loader decodes it)
// ---------------------------------------------------------------------------------------------

/** A string map (`map<string, string>`). */
export type WireMap = Record<string, string>;

/** `Int64Value` / `UInt64Value`. */
export interface WireValue {
  value: number;
}

/** `NamespaceOption`. */
export interface WireNamespaceOption {
  network: string;
  pid: string;
  ipc: string;
  targetId: string;
}

/** `PodSandboxMetadata`. */
export interface WirePodSandboxMetadata {
  name: string;
  uid: string;
  namespace: string;
  attempt: number;
}

/** `ContainerMetadata`. */
export interface WireContainerMetadata {
  name: string;
  attempt: number;
}

/** `ImageSpec`. */
export interface WireImageSpec {
  image: string;
  annotations: WireMap;
  userSpecifiedImage: string;
  runtimeHandler: string;
}

/** `RuntimeCondition`. */
export interface WireRuntimeCondition {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}

/** `PodSandboxStatus`. */
export interface WirePodSandboxStatus {
  id: string;
  metadata: WirePodSandboxMetadata | null;
  state: string;
  createdAt: number;
  network: { ip: string; additionalIps: Array<{ ip: string }> } | null;
  linux: { namespaces: { options: WireNamespaceOption | null } | null } | null;
  labels: WireMap;
  annotations: WireMap;
  runtimeHandler: string;
}

/** `PodSandbox`. */
export interface WirePodSandbox {
  id: string;
  metadata: WirePodSandboxMetadata | null;
  state: string;
  createdAt: number;
  labels: WireMap;
  annotations: WireMap;
  runtimeHandler: string;
}

/** `LinuxContainerResources`. */
export interface WireLinuxContainerResources {
  cpuPeriod: number;
  cpuQuota: number;
  cpuShares: number;
  memoryLimitInBytes: number;
  oomScoreAdj: number;
  cpusetCpus: string;
  cpusetMems: string;
  unified: WireMap;
  memorySwapLimitInBytes: number;
}

/** `Mount`. */
export interface WireMount {
  containerPath: string;
  hostPath: string;
  readonly: boolean;
  selinuxRelabel: boolean;
  propagation: string;
}

/** `Container`. */
export interface WireContainer {
  id: string;
  podSandboxId: string;
  metadata: WireContainerMetadata | null;
  image: WireImageSpec | null;
  imageRef: string;
  state: string;
  createdAt: number;
  labels: WireMap;
  annotations: WireMap;
}

/** `ContainerStatus`. */
export interface WireContainerStatus {
  id: string;
  metadata: WireContainerMetadata | null;
  state: string;
  createdAt: number;
  startedAt: number;
  finishedAt: number;
  exitCode: number;
  image: WireImageSpec | null;
  imageRef: string;
  reason: string;
  message: string;
  labels: WireMap;
  annotations: WireMap;
  mounts: WireMount[];
  logPath: string;
  resources: { linux: WireLinuxContainerResources | null } | null;
}

/** `FilesystemUsage`. */
export interface WireFilesystemUsage {
  timestamp: number;
  fsId: { mountpoint: string } | null;
  usedBytes: WireValue | null;
  inodesUsed: WireValue | null;
}

/** `ContainerStats`. */
export interface WireContainerStats {
  attributes: { id: string; metadata: WireContainerMetadata | null; labels: WireMap; annotations: WireMap } | null;
  cpu: { timestamp: number; usageCoreNanoSeconds: WireValue | null; usageNanoCores: WireValue | null } | null;
  memory: {
    timestamp: number;
    workingSetBytes: WireValue | null;
    rssBytes: WireValue | null;
    pageFaults: WireValue | null;
    majorPageFaults: WireValue | null;
  } | null;
  writableLayer: WireFilesystemUsage | null;
}

/** `Image`. */
export interface WireImage {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  size: number;
  uid: WireValue | null;
  username: string;
  spec: WireImageSpec | null;
  pinned: boolean;
}
