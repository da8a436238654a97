/**
 * The node agent's volume plugin interface (the kubelet's `volume.VolumePlugin` + `Mounter` +
 * `Unmounter`, reduced), the context a plugin works in, and the errors it reports.
 *
 * @module
 */
import { chmod, mkdir, rm } from 'node:fs/promises';
import { parseQuantity } from '@kubernel/sdk';
import type { V1PodObject, V1Volume } from '../core-v1.js';
import type { ResourceList } from '../fieldpath.js';
import { isMountPoint, mountsUnder, type Mounter } from '../mounter.js';
import { type CREATE_CONTAINER_CONFIG_ERROR, type VolumeSources } from '../pod-sources.js';

/** What a projected `serviceAccountToken` source asks the manager for. */
export interface TokenProjection {
  /** Audiences of the token; the API server's own when empty. */
  readonly audiences: readonly string[];
  /** Requested lifetime in seconds. */
  readonly expirationSeconds: number;
}

/** What a plugin may use while setting a volume up (built by the volume manager per pod sync). */
export interface VolumeContext {
  /** The pod the volume belongs to. */
  readonly pod: V1PodObject;
  /** API objects (configMaps, secrets). */
  readonly sources: VolumeSources;
  /** Mounting (tmpfs for memory-backed volumes). */
  readonly mounter: Mounter;
  /** The node's allocatable resources (default limits for the downward API, tmpfs sizes). */
  readonly nodeAllocatable?: ResourceList;
  /** Now (names timestamped directories). */
  readonly now: Date;
  /**
   * A token of the pod's service account bound to the pod, from the manager's cache: requested
   * through the TokenRequest API when absent or due for rotation (older than 80% of its lifetime
   * or than 24 hours).
   */
  serviceAccountToken(projection: TokenProjection): Promise<string>;
}

/** What a plugin may use while tearing a volume down (possibly after an agent restart, pod unknown). */
export interface TearDownContext {
  readonly podUid: string;
  readonly mounter: Mounter;
}

/** The result of {@link VolumePlugin.setUp}. */
export interface VolumeSetUpResult {
  /** The host path containers bind-mount (the volume's directory, or a host path for `hostPath`). */
  readonly path: string;
}

/**
 * A volume plugin: supports some volume sources, sets them up for a pod and tears them down.
 *
 * The volume manager gives each volume the directory
 * `<root>/<podUID>/volumes/<escaped plugin name>/<volume name>` (the plugin name with `/` → `~`,
 * e.g. `kubernetes.io~configmap`); a plugin may ignore it (`hostPath` mounts the host path).
 * `setUp` must be idempotent: the manager calls it again on later syncs when
 * {@link requiresRemount} (content that follows API objects), and after an agent restart.
 * `tearDown` gets only the directory (the pod may be gone from the API) and must undo whatever
 * `setUp` mounted there; the manager then unmounts anything left below the pod directory and
 * removes it (refusing to delete through a mount it could not remove).
 *
 * Persistent volumes (a later issue) fit the same shape: a `kubernetes.io/csi` plugin claims
 * `persistentVolumeClaim` (and inline `csi`/`ephemeral`) volumes; it is constructed with its own
 * dependencies (an API client to resolve claim → bound PV → `spec.csi` driver, volumeHandle and
 * attributes; a registry of node CSI drivers), and in `setUp` calls NodeStageVolume once per PV on
 * a global mount directory and NodePublishVolume with `target_path = dir` (bind-mounted to
 * containers, read-only when the claim or PV says so), writing a `vol_data.json` beside `dir` so
 * that `tearDown(dir)` can call NodeUnpublishVolume (and NodeUnstage when the PV's last pod goes)
 * after an agent restart, without the pod. Its errors are `VolumeError`s, `FailedMount` for driver
 * failures and `CreateContainerConfigError` for an unbound or missing claim.
 */
export interface VolumePlugin {
  /** The kubelet's plugin name (`kubernetes.io/empty-dir`); its escaped form names directories. */
  readonly name: string;
  /** True when setUp must run again on later syncs (configMap, secret, downward API, projected). */
  readonly requiresRemount: boolean;
  /** True when the plugin handles this volume source. */
  canSupport(volume: V1Volume): boolean;
  /** True when containers must mount it read-only whatever their `volumeMounts` say. */
  readOnly(volume: V1Volume): boolean;
  /**
   * Sets the volume up in `dir` (created by the plugin as it needs) and says what to mount.
   *
   * @throws {VolumeError} when the volume cannot be set up (others are wrapped as `FailedMount`).
   */
  setUp(ctx: VolumeContext, volume: V1Volume, dir: string): Promise<VolumeSetUpResult>;
  /** Undoes `setUp` in `dir` (unmounts); the manager removes the directory afterwards. */
  tearDown(ctx: TearDownContext, dir: string): Promise<void>;
}

/** Why a volume could not be set up: a problem with the pod's configuration, or a mount failure. */
export type VolumeErrorReason = typeof CREATE_CONTAINER_CONFIG_ERROR | 'FailedMount';

/**
 * A volume could not be set up. `message` is the kubelet's (`configmap "x" not found`,
 * `hostPath type check failed: /x is not a directory`); {@link eventMessage} is the kubelet's
 * `FailedMount` event text for it.
 *
 * The pod worker reports the pod's containers as waiting with {@link reason}:
 * `CreateContainerConfigError` for configuration problems (a missing configMap, secret or key, an
 * invalid path, a failed hostPath type check) and `FailedMount` otherwise (a failed mount, an
 * unreachable API). (The kubelet itself keeps them `ContainerCreating` and records the event.)
 */
export class VolumeError extends Error {
  override readonly name = 'VolumeError';
  constructor(
    /** The pod volume's name. */
    readonly volumeName: string,
    readonly reason: VolumeErrorReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** `MountVolume.SetUp failed for volume "x" : <message>`. */
  get eventMessage(): string {
    return `MountVolume.SetUp failed for volume ${JSON.stringify(this.volumeName)} : ${this.message}`;
  }
}

/** True for a {@link VolumeError} (by shape too). */
export function isVolumeError(err: unknown): err is VolumeError {
  return err instanceof VolumeError || (typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'VolumeError');
}

/** `EscapeQualifiedNameForDisk`: `kubernetes.io/empty-dir` → `kubernetes.io~empty-dir`. */
export const escapePluginName = (name: string): string => name.replace(/\//g, '~');
/** The inverse of {@link escapePluginName}. */
export const unescapePluginName = (name: string): string => name.replace(/~/g, '/');

const sumLimits = (containers: V1PodObject['spec']['containers'], resource: string): bigint | undefined => {
  let sum = 0n;
  for (const c of containers) {
    const l = c.resources?.limits?.[resource];
    if (l === undefined) return undefined;
    sum += parseQuantity(l).nanos;
  }
  return sum;
};

/**
 * The size of a memory-backed (tmpfs) volume in bytes, as the kubelet computes it
 * (`calculateEmptyDirMemorySize`): the node's allocatable memory, lowered to the pod's memory
 * limit (when every container has one) and to the volume's `sizeLimit`, each only when positive
 * and smaller. Undefined when nothing is known (tmpfs' default: half the RAM).
 */
export function memoryVolumeSize(pod: V1PodObject, sizeLimit: string | number | undefined, allocatable: ResourceList | undefined): number | undefined {
  let size: bigint | undefined = allocatable?.memory !== undefined ? parseQuantity(allocatable.memory).nanos : undefined;
  const lower = (v: bigint | undefined): void => {
    if (v !== undefined && v > 0n && (size === undefined || v <= size)) size = v;
  };
  const regular = sumLimits([...pod.spec.containers, ...(pod.spec.initContainers ?? []).filter((c) => c.restartPolicy === 'Always')], 'memory');
  const inits = (pod.spec.initContainers ?? []).filter((c) => c.restartPolicy !== 'Always');
  let initMax: bigint | undefined = 0n;
  for (const c of inits) {
    const l = c.resources?.limits?.memory;
    if (l === undefined) {
      initMax = undefined;
      break;
    }
    const v = parseQuantity(l).nanos;
    if (v > initMax) initMax = v;
  }
  if (regular !== undefined && initMax !== undefined) lower(regular > initMax ? regular : initMax);
  if (sizeLimit !== undefined) lower(parseQuantity(sizeLimit).nanos);
  if (size === undefined) return undefined;
  const s: bigint = size;
  return Number((s + 999_999_999n) / 1_000_000_000n);
}

/** Creates `dir` with mode `mode` (whatever the umask). */
export async function makeDir(dir: string, mode: number): Promise<void> {
  await mkdir(dir, { recursive: true, mode });
  await chmod(dir, mode);
}

/** Mounts a tmpfs on `dir` (created) unless one is there already; `size=<bytes>` when given. */
export async function ensureTmpfs(mounter: Mounter, dir: string, sizeBytes: number | undefined): Promise<void> {
  await makeDir(dir, 0o777);
  if (await isMountPoint(mounter, dir, 'tmpfs')) return;
  await mounter.mount('tmpfs', dir, 'tmpfs', sizeBytes !== undefined && sizeBytes > 0 ? [`size=${sizeBytes}`] : []);
}

/** Unmounts everything at or below `dir`, then removes it. */
export async function unmountAndRemove(mounter: Mounter, dir: string): Promise<void> {
  for (const m of await mountsUnder(mounter, dir)) await mounter.unmount(m.mountPoint);
  if ((await mountsUnder(mounter, dir)).length > 0) throw new Error(`${dir} is still mounted; not removing it`);
  await rm(dir, { recursive: true, force: true });
}

/** The default file mode of configMap, secret, downward API and projected volumes (0644). */
export const DEFAULT_MODE = 0o644;

/** A configuration problem of a content volume (a missing object or key, an invalid path). */
export function contentError(volumeName: string, message: string, cause?: unknown): VolumeError {
  return new VolumeError(volumeName, 'CreateContainerConfigError', message, cause === undefined ? undefined : { cause });
}
