/**
 * The node agent's volume manager (the kubelet's volume manager, desired-state reconciler and
 * `makeMounts`, reduced to what a pod sync needs):
 *
 * - {@link VolumeManager.setUp} sets every volume of a pod up under
 *   `<root>/<podUID>/volumes/<escaped plugin name>/<volume name>` through the registered
 *   {@link VolumePlugin}s (emptyDir, hostPath, configMap, secret, downwardAPI, projected; CSI
 *   later). It is idempotent and meant to be called on every pod sync: volumes whose content
 *   follows API objects (configMap, secret, downward API, projected) are refreshed at most every
 *   `remountIntervalMs`, and rewritten only when their content changed (atomically, so running
 *   containers see the update through the paths they hold).
 * - {@link VolumeManager.mountsFor} turns a container's `volumeMounts` into CRI mounts (readOnly,
 *   subPath/subPathExpr, mountPropagation), plus the pod's `/etc/hosts` (see
 *   {@link VolumeManager.writeEtcHosts}) and the container's termination-message file.
 * - {@link VolumeManager.tearDown} undoes a pod's volumes and removes its directory;
 *   {@link VolumeManager.cleanupOrphans} does so for every pod directory not in a given set (pods
 *   gone while the agent was down, too).
 *
 * Calls for one pod are serialized; calls for different pods run concurrently.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, readFile, realpath, stat, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { KeyValue, Mount, MountPropagation } from '@kubernel/sdk';
import type { V1PodContainer, V1PodObject, V1Volume } from './core-v1.js';
import { expandSubPathExpr } from './env.js';
import type { ResourceList } from './fieldpath.js';
import { SystemMounter, type Mounter } from './mounter.js';
import { ContainerConfigError, type VolumeSources } from './pod-sources.js';
import { systemClock, type Clock } from './pod-worker.js';
import { ServiceAccountTokenCache } from './service-account-tokens.js';
import { ConfigMapPlugin } from './volume-plugins/config-map.js';
import { DownwardAPIPlugin } from './volume-plugins/downward-api.js';
import { EmptyDirPlugin } from './volume-plugins/empty-dir.js';
import { HostPathPlugin } from './volume-plugins/host-path.js';
import { ProjectedPlugin } from './volume-plugins/projected.js';
import { SecretPlugin } from './volume-plugins/secret.js';
import { escapePluginName, isVolumeError, unescapePluginName, unmountAndRemove, VolumeError, type VolumeContext, type VolumePlugin } from './volume-plugins/volume-plugin.js';

export { VolumeError, isVolumeError, escapePluginName, memoryVolumeSize } from './volume-plugins/volume-plugin.js';
export type { VolumePlugin, VolumeContext, TearDownContext, VolumeSetUpResult, VolumeErrorReason, TokenProjection } from './volume-plugins/volume-plugin.js';
export { apiVolumeSources, ObjectNotFoundError, isObjectNotFound, ContainerConfigError, CREATE_CONTAINER_CONFIG_ERROR } from './pod-sources.js';
export type { VolumeSources, ServiceAccountToken, ServiceAccountTokenRequest } from './pod-sources.js';

/** Where containers find the pod's hosts file. */
export const ETC_HOSTS_PATH = '/etc/hosts';
/** The termination-message path of a container without one (API defaulting). */
export const DEFAULT_TERMINATION_MESSAGE_PATH = '/dev/termination-log';
/** How often content volumes are refreshed at most, by default (ms). */
export const DEFAULT_REMOUNT_INTERVAL_MS = 10_000;

const MANAGED_HOSTS_HEADER = '# Kubernetes-managed hosts file.\n';
const MANAGED_HOSTS_HEADER_HOST_NETWORK = '# Kubernetes-managed hosts file (host network).\n';

/** The built-in plugins: emptyDir, hostPath, configMap, secret, downwardAPI, projected. */
export function defaultVolumePlugins(): VolumePlugin[] {
  return [new EmptyDirPlugin(), new HostPathPlugin(), new ConfigMapPlugin(), new SecretPlugin(), new DownwardAPIPlugin(), new ProjectedPlugin()];
}

/** Options of a {@link VolumeManager}. */
export interface VolumeManagerOptions {
  /** The pods directory (the kubelet's `/var/lib/kubelet/pods`); one directory per pod UID. */
  readonly root: string;
  /** API objects for content volumes and tokens. */
  readonly sources: VolumeSources;
  /** Default {@link SystemMounter} (needs root for tmpfs). */
  readonly mounter?: Mounter;
  /** Default the system clock. */
  readonly clock?: Clock;
  /** Default {@link defaultVolumePlugins}(); more can be added with {@link VolumeManager.registerPlugin}. */
  readonly plugins?: readonly VolumePlugin[];
  /** The node's allocatable resources (downward API default limits, tmpfs sizes). */
  readonly nodeAllocatable?: ResourceList;
  /** Content volumes are refreshed at most this often (ms); default {@link DEFAULT_REMOUNT_INTERVAL_MS}. */
  readonly remountIntervalMs?: number;
  /** The cluster's DNS domain, for the pod's FQDN in `/etc/hosts`; default `cluster.local`. */
  readonly clusterDomain?: string;
  /** The node's hosts file, copied for host-network pods; default `/etc/hosts`. */
  readonly nodeHostsFile?: string;
  /** The token refresh jitter (ms, below 10 000); default random. */
  readonly tokenJitterMs?: () => number;
  /**
   * Called when refreshing an already set-up volume fails: the volume keeps its previous content
   * and the pod is not held back (as the kubelet's remount failures are only logged).
   */
  readonly onRefreshError?: (pod: V1PodObject, error: VolumeError) => void;
}

/** Options of {@link VolumeManager.mountsFor}. */
export interface MountsForOptions {
  /** The container's resolved environment, for `subPathExpr`. */
  readonly envs?: readonly KeyValue[];
  /** The container's restart count: names its termination-message file (random when absent). */
  readonly attempt?: number;
}

/** Options of {@link VolumeManager.setUp}. */
export interface SetUpOptions {
  /** Refresh content volumes now, whatever the remount interval. */
  readonly force?: boolean;
}

interface MountedVolume {
  readonly plugin: VolumePlugin;
  readonly path: string;
  readonly readOnly: boolean;
  /** When it was last set up (ms since the epoch). */
  setUpAt: number;
}

const code = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;
const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));
const within = (base: string, p: string): boolean => p === base || p.startsWith(base.endsWith('/') ? base : `${base}/`);

/** `translateMountPropagation`. */
function propagationOf(mode: string | undefined): MountPropagation {
  switch (mode) {
    case undefined:
    case 'None':
      return 'PROPAGATION_PRIVATE';
    case 'HostToContainer':
      return 'PROPAGATION_HOST_TO_CONTAINER';
    case 'Bidirectional':
      return 'PROPAGATION_BIDIRECTIONAL';
    default:
      throw new ContainerConfigError(`invalid MountPropagation mode: ${JSON.stringify(mode)}`);
  }
}

/**
 * The pod's host name and domain (`GeneratePodHostNameAndDomain`): `spec.hostname` or the pod's
 * name, cut to 63 characters (without a trailing `-` or `.`); the domain
 * `<subdomain>.<namespace>.svc.<clusterDomain>` when `spec.subdomain` is set.
 */
export function podHostnameAndDomain(pod: V1PodObject, clusterDomain: string): { hostname: string; domain: string } {
  let hostname = pod.spec.hostname || pod.metadata.name || '';
  if (hostname.length > 63) hostname = hostname.slice(0, 63).replace(/[-.]+$/, '');
  const domain = pod.spec.subdomain ? `${pod.spec.subdomain}.${pod.metadata.namespace ?? 'default'}.svc.${clusterDomain}` : '';
  return { hostname, domain };
}

/** The `/etc/hosts` lines of `hostAliases` (empty when none). */
function hostAliasLines(pod: V1PodObject): string {
  const aliases = pod.spec.hostAliases ?? [];
  if (aliases.length === 0) return '';
  return `\n# Entries added by HostAliases.\n${aliases.map((a) => `${a.ip}\t${(a.hostnames ?? []).join('\t')}\n`).join('')}`;
}

/**
 * The managed `/etc/hosts` of a pod on the pod network (`managedHostsFileContent`): localhost
 * lines, one line per pod IP with the host name (and FQDN), then the host aliases.
 */
export function managedHostsFileContent(pod: V1PodObject, podIPs: readonly string[], clusterDomain = 'cluster.local'): string {
  const { hostname, domain } = podHostnameAndDomain(pod, clusterDomain);
  let out = MANAGED_HOSTS_HEADER;
  out += '127.0.0.1\tlocalhost\n';
  out += '::1\tlocalhost ip6-localhost ip6-loopback\n';
  out += 'fe00::0\tip6-localnet\n';
  out += 'fe00::0\tip6-mcastprefix\n';
  out += 'fe00::1\tip6-allnodes\n';
  out += 'fe00::2\tip6-allrouters\n';
  for (const ip of podIPs) out += domain ? `${ip}\t${hostname}.${domain}\t${hostname}\n` : `${ip}\t${hostname}\n`;
  return out + hostAliasLines(pod);
}

/** Manages the volumes (and per-pod files) of the pods of one node. */
export class VolumeManager {
  private readonly root: string;
  private readonly sources: VolumeSources;
  private readonly mounter: Mounter;
  private readonly clock: Clock;
  private readonly plugins: VolumePlugin[];
  private readonly remountIntervalMs: number;
  private readonly tokens: ServiceAccountTokenCache;
  private readonly pods = new Map<string, Map<string, MountedVolume>>();
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(private readonly options: VolumeManagerOptions) {
    this.root = options.root;
    this.sources = options.sources;
    this.mounter = options.mounter ?? new SystemMounter();
    this.clock = options.clock ?? systemClock;
    this.plugins = [...(options.plugins ?? defaultVolumePlugins())];
    this.remountIntervalMs = options.remountIntervalMs ?? DEFAULT_REMOUNT_INTERVAL_MS;
    this.tokens = new ServiceAccountTokenCache({ sources: this.sources, clock: this.clock, ...(options.tokenJitterMs ? { jitterMs: options.tokenJitterMs } : {}) });
  }

  /** Adds a plugin (checked after those registered before it). */
  registerPlugin(plugin: VolumePlugin): void {
    if (this.plugins.some((p) => p.name === plugin.name)) throw new Error(`volume plugin ${plugin.name} is already registered`);
    this.plugins.push(plugin);
  }

  /** The first plugin that supports `volume`. */
  pluginFor(volume: V1Volume): VolumePlugin | undefined {
    return this.plugins.find((p) => p.canSupport(volume));
  }

  /** `<root>/<podUID>`. */
  podDir(podUid: string): string {
    if (!podUid || podUid.includes('/') || podUid === '.' || podUid === '..') throw new Error(`invalid pod UID ${JSON.stringify(podUid)}`);
    return join(this.root, podUid);
  }

  /** `<root>/<podUID>/volumes/<escaped plugin name>/<volume name>`. */
  volumeDir(podUid: string, pluginName: string, volumeName: string): string {
    return join(this.podDir(podUid), 'volumes', escapePluginName(pluginName), volumeName);
  }

  /** The file a container's termination message is written to (`<root>/<podUID>/containers/<name>/<attempt>`). */
  terminationMessageFile(podUid: string, containerName: string, attempt: number | string): string {
    return join(this.podDir(podUid), 'containers', containerName, String(attempt));
  }

  /** Runs `fn` after every call queued before it for `uid`. */
  private serial<T>(uid: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(uid) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(uid, tail);
    void tail.then(() => {
      if (this.locks.get(uid) === tail) this.locks.delete(uid);
    });
    return run;
  }

  private uidOf(pod: V1PodObject): string {
    const uid = pod.metadata.uid;
    if (!uid) throw new Error(`pod ${pod.metadata.namespace ?? ''}/${pod.metadata.name ?? ''} has no UID`);
    this.podDir(uid);
    return uid;
  }

  /**
   * Sets up (or refreshes) every volume of `pod`. Volumes set up before are refreshed only when
   * their plugin requires it and the remount interval passed (or `force`); a failed refresh keeps
   * the previous content (see `onRefreshError`).
   *
   * @throws {VolumeError} for the first volume that could not be set up (the others are still set
   *   up): `reason` says how the pod worker reports it.
   */
  setUp(pod: V1PodObject, options: SetUpOptions = {}): Promise<void> {
    const uid = this.uidOf(pod);
    return this.serial(uid, async () => {
      const podDir = this.podDir(uid);
      await mkdir(join(podDir, 'volumes'), { recursive: true, mode: 0o750 });
      let mounted = this.pods.get(uid);
      if (!mounted) {
        mounted = new Map();
        this.pods.set(uid, mounted);
      }
      const ctx = this.contextFor(pod);
      let first: VolumeError | undefined;
      for (const volume of pod.spec.volumes ?? []) {
        const known = mounted.get(volume.name);
        const now = this.clock.now();
        if (known && (!known.plugin.requiresRemount || (!options.force && now - known.setUpAt < this.remountIntervalMs))) continue;
        const plugin = known?.plugin ?? this.pluginFor(volume);
        if (!plugin) {
          first ??= new VolumeError(volume.name, 'FailedMount', `no volume plugin matched for volume ${JSON.stringify(volume.name)}`);
          continue;
        }
        try {
          const result = await plugin.setUp(ctx, volume, this.volumeDir(uid, plugin.name, volume.name));
          mounted.set(volume.name, { plugin, path: result.path, readOnly: plugin.readOnly(volume), setUpAt: now });
        } catch (err) {
          const verr = isVolumeError(err) ? err : new VolumeError(volume.name, 'FailedMount', errorText(err), { cause: err });
          if (known) {
            known.setUpAt = now;
            this.options.onRefreshError?.(pod, verr);
          } else first ??= verr;
        }
      }
      if (first) throw first;
    });
  }

  private contextFor(pod: V1PodObject): VolumeContext {
    const ns = pod.metadata.namespace ?? 'default';
    return {
      pod,
      sources: this.sources,
      mounter: this.mounter,
      ...(this.options.nodeAllocatable ? { nodeAllocatable: this.options.nodeAllocatable } : {}),
      now: new Date(this.clock.now()),
      serviceAccountToken: (projection) =>
        this.tokens.get(ns, pod.spec.serviceAccountName || 'default', {
          audiences: projection.audiences,
          expirationSeconds: projection.expirationSeconds,
          podName: pod.metadata.name ?? '',
          podUid: pod.metadata.uid ?? '',
        }),
    };
  }

  /**
   * The CRI mounts of `container` (`makeMounts`): one per `volumeMount` (read-only when the mount
   * or the volume says so; `subPath`/`subPathExpr` resolved inside the volume, created when
   * missing, never escaping it), then the pod's `/etc/hosts` once {@link writeEtcHosts} wrote it
   * (unless the container mounts something there), then the termination-message file at the
   * container's `terminationMessagePath` (created empty, mode 0666).
   *
   * @throws {ContainerConfigError} with the kubelet's message: `cannot find volume "v" to mount
   *   into container "c"` (the volume is not set up), ``error SubPath `/x` must not be an absolute
   *   path``, ``unable to provision SubPath `a/../b`: must not contain '..'``, `failed to prepare
   *   subPath for volumeMount "m" of container "c"` (it resolves outside the volume), `missing
   *   value for X` (subPathExpr), `invalid MountPropagation mode: "x"`.
   */
  mountsFor(pod: V1PodObject, container: V1PodContainer, options: MountsForOptions = {}): Promise<Mount[]> {
    const uid = this.uidOf(pod);
    return this.serial(uid, async () => {
      const podDir = this.podDir(uid);
      const mounted = this.pods.get(uid);
      const mounts: Mount[] = [];
      let mountHosts = true;
      for (const m of container.volumeMounts ?? []) {
        if (m.mountPath === ETC_HOSTS_PATH) mountHosts = false;
        const vol = mounted?.get(m.name);
        if (!vol) throw new ContainerConfigError(`cannot find volume ${JSON.stringify(m.name)} to mount into container ${JSON.stringify(container.name)}`);
        const subPath = m.subPathExpr ? expandSubPathExpr(m.subPathExpr, options.envs ?? []) : (m.subPath ?? '');
        let hostPath = vol.path;
        if (subPath !== '') {
          if (posix.isAbsolute(subPath)) throw new ContainerConfigError(`error SubPath \`${subPath}\` must not be an absolute path`);
          if (subPath.split('/').includes('..')) throw new ContainerConfigError(`unable to provision SubPath \`${subPath}\`: must not contain '..'`);
          hostPath = await prepareSubPath(vol.path, subPath, m.name, container.name);
        }
        mounts.push({
          containerPath: posix.isAbsolute(m.mountPath) ? m.mountPath : `/${m.mountPath}`,
          hostPath,
          readonly: m.readOnly === true || vol.readOnly,
          selinuxRelabel: false,
          propagation: propagationOf(m.mountPropagation),
        });
      }
      const hostsFile = join(podDir, 'etc-hosts');
      if (mountHosts && (await exists(hostsFile))) {
        mounts.push({ containerPath: ETC_HOSTS_PATH, hostPath: hostsFile, readonly: false, selinuxRelabel: true });
      }
      const tmp = container.terminationMessagePath ?? DEFAULT_TERMINATION_MESSAGE_PATH;
      if (tmp !== '') {
        const file = this.terminationMessageFile(uid, container.name, options.attempt ?? randomBytes(4).toString('hex'));
        await mkdir(posix.dirname(file), { recursive: true, mode: 0o750 });
        await writeFile(file, '');
        await chmod(file, 0o666);
        mounts.push({ containerPath: posix.isAbsolute(tmp) ? tmp : `/${tmp}`, hostPath: file, selinuxRelabel: false });
      }
      return mounts;
    });
  }

  /**
   * Writes the pod's hosts file `<root>/<podUID>/etc-hosts` (mode 0644), which
   * {@link mountsFor} then mounts at `/etc/hosts`: for a host-network pod the node's hosts file
   * under a header, else {@link managedHostsFileContent} with `podIPs`; host aliases appended.
   * Rewritten in place (running containers see it) and only when the content changed. Resolves
   * with the file's path.
   */
  writeEtcHosts(pod: V1PodObject, podIPs: readonly string[]): Promise<string> {
    const uid = this.uidOf(pod);
    return this.serial(uid, async () => {
      const podDir = this.podDir(uid);
      await mkdir(podDir, { recursive: true, mode: 0o750 });
      const file = join(podDir, 'etc-hosts');
      const content = pod.spec.hostNetwork
        ? `${MANAGED_HOSTS_HEADER_HOST_NETWORK}${await readFile(this.options.nodeHostsFile ?? ETC_HOSTS_PATH, 'utf8')}${hostAliasLines(pod)}`
        : managedHostsFileContent(pod, podIPs, this.options.clusterDomain ?? 'cluster.local');
      let current: string | undefined;
      try {
        current = await readFile(file, 'utf8');
      } catch (err) {
        if (code(err) !== 'ENOENT') throw err;
      }
      if (current !== content) await writeFile(file, content, { mode: 0o644 });
      await chmod(file, 0o644);
      return file;
    });
  }

  /**
   * Tears down every volume of pod `podUid` found on disk (through its plugin, or by unmounting
   * for an unknown one), unmounts anything left below the pod directory, removes the directory,
   * and forgets the pod's tokens. Idempotent.
   *
   * @throws {Error} when a plugin's tearDown fails or a mount cannot be removed: the directory is
   *   then kept (never deleted through a mount), for a later retry.
   */
  tearDown(podUid: string): Promise<void> {
    const podDir = this.podDir(podUid);
    return this.serial(podUid, async () => {
      const volumesDir = join(podDir, 'volumes');
      const failures: string[] = [];
      for (const pluginDir of await listDirs(volumesDir)) {
        const plugin = this.plugins.find((p) => p.name === unescapePluginName(pluginDir));
        for (const volumeName of await listDirs(join(volumesDir, pluginDir))) {
          const dir = join(volumesDir, pluginDir, volumeName);
          try {
            if (plugin) await plugin.tearDown({ podUid, mounter: this.mounter }, dir);
            else await unmountAndRemove(this.mounter, dir);
          } catch (err) {
            failures.push(`${pluginDir}/${volumeName}: ${errorText(err)}`);
          }
        }
      }
      if (failures.length > 0) throw new Error(`tearing down the volumes of pod ${podUid} failed: ${failures.join('; ')}`);
      await unmountAndRemove(this.mounter, podDir);
      this.pods.delete(podUid);
      this.tokens.deletePod(podUid);
    });
  }

  /**
   * Tears down the pods whose directories are under the root but whose UIDs are not in `activeUids`
   * (pods deleted, also while the agent was down). Resolves with the UIDs removed.
   *
   * @throws {Error} naming the pods that could not be removed, after trying them all.
   */
  async cleanupOrphans(activeUids: Iterable<string>): Promise<string[]> {
    const active = new Set(activeUids);
    const removed: string[] = [];
    const failures: string[] = [];
    for (const uid of await listDirs(this.root)) {
      if (active.has(uid)) continue;
      try {
        await this.tearDown(uid);
        removed.push(uid);
      } catch (err) {
        failures.push(`${uid}: ${errorText(err)}`);
      }
    }
    for (const uid of [...this.pods.keys()]) if (!active.has(uid) && !removed.includes(uid)) this.pods.delete(uid);
    if (failures.length > 0) throw new Error(`cleaning up orphaned pod directories failed: ${failures.join('; ')}`);
    return removed;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if (code(err) === 'ENOENT') return false;
    throw err;
  }
}

/** The names of the directories in `dir` (none when it does not exist). */
async function listDirs(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (err) {
    if (code(err) === 'ENOENT' || code(err) === 'ENOTDIR') return [];
    throw err;
  }
}

/**
 * Resolves `subPath` inside `volumePath` (the kubelet's `SafeMakeDir` + `PrepareSafeSubpath`,
 * without the bind mount): missing directories are created with the volume's mode, symlinks are
 * followed only while they stay inside the volume. Resolves with the real path to mount.
 */
async function prepareSubPath(volumePath: string, subPath: string, mountName: string, containerName: string): Promise<string> {
  const escape = (): ContainerConfigError => new ContainerConfigError(`failed to prepare subPath for volumeMount ${JSON.stringify(mountName)} of container ${JSON.stringify(containerName)}`);
  let base: string;
  let perm: number;
  try {
    base = await realpath(volumePath);
    perm = (await stat(base)).mode & 0o7777;
  } catch {
    throw escape();
  }
  let cur = base;
  for (const part of subPath.split('/').filter((p) => p !== '' && p !== '.')) {
    const next = join(cur, part);
    let st;
    try {
      st = await lstat(next);
    } catch (err) {
      if (code(err) !== 'ENOENT') throw escape();
      try {
        await mkdir(next, { mode: perm });
        await chmod(next, perm);
      } catch (e) {
        if (code(e) !== 'EEXIST') throw new ContainerConfigError(`failed to create subPath directory for volumeMount ${JSON.stringify(mountName)} of container ${JSON.stringify(containerName)}`);
      }
      cur = next;
      continue;
    }
    if (st.isSymbolicLink()) {
      let resolved: string;
      try {
        resolved = await realpath(next);
      } catch {
        throw escape();
      }
      if (!within(base, resolved)) throw escape();
      cur = resolved;
    } else cur = next;
  }
  if (!within(base, cur)) throw escape();
  return cur;
}

