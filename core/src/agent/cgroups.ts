/**
 * Pod-level cgroups for the cgroupfs driver (no systemd), as the kubelet's container manager keeps
 * them (`pkg/kubelet/cm`: `qosContainerManager`, `podContainerManager`, `cgroupManager`):
 *
 * ```
 * <root>                       kubepods          (Guaranteed pods live here)
 * <root>/burstable             kubepods/burstable
 * <root>/besteffort            kubepods/besteffort   cpu.shares = 2
 * <root>/.../pod<uid>          one per pod, limits from {@link PodResourceConfig}
 * <root>/.../pod<uid>/<id>     created by the runtime (runc) for each container and the sandbox
 * ```
 *
 * The runtime creates the container cgroups beneath the `cgroupParent` given in
 * `LinuxPodSandboxConfig`, so the pod's cgroup must exist before `RunPodSandbox`
 * ({@link CgroupManager.ensurePodCgroup}); nobody but the agent removes it
 * ({@link CgroupManager.removePodCgroup}, after the sandbox was removed).
 *
 * cgroup v1 (one hierarchy per controller, e.g. `/sys/fs/cgroup/memory`): the pod cgroup is made
 * in every mounted controller hierarchy (cpuset gets its parent's cpus and mems, or no task could
 * join it) and limits go to `cpu.shares`, `cpu.cfs_period_us`, `cpu.cfs_quota_us`,
 * `memory.limit_in_bytes` and `pids.max`. cgroup v2 (unified, one tree): the controllers are
 * enabled down the tree through `cgroup.subtree_control` and limits go to `cpu.weight` (converted
 * from shares), `cpu.max`, `memory.max`, `pids.max`. A hybrid layout (v1 controllers plus an empty
 * unified mount, like this project's test machines) is v1.
 *
 * Hugepage limits and memory QoS (`memory.min`/`memory.high`) are not written (both off by default).
 *
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_CGROUP_ROOT, MIN_SHARES, type PodResourceConfig, type QosClass } from './resources.js';

/** The cgroup layout of the machine. */
export interface CgroupSupport {
  /** 1 (legacy or hybrid), 2 (unified), or undefined when no usable cgroup filesystem is mounted. */
  readonly version: 1 | 2 | undefined;
  /** Mounted v1 hierarchies by controller (`cpu` → `/sys/fs/cgroup/cpu`; named ones as `name=systemd`), or for v2 the controllers the root offers. */
  readonly controllers: Readonly<Record<string, string>>;
  /** Why cgroups cannot be managed, when they cannot. */
  readonly reason?: string;
}

/** The v1 controllers a pod cgroup is limited through (the kubelet's required set). */
const REQUIRED_V1 = ['cpu', 'cpuacct', 'cpuset', 'memory', 'pids'] as const;
const KNOWN_V1 = new Set(['cpu', 'cpuacct', 'cpuset', 'memory', 'pids', 'hugetlb', 'devices', 'freezer', 'blkio', 'net_cls', 'net_prio', 'perf_event', 'rdma', 'misc']);
const V2_CONTROLLERS = ['cpu', 'cpuset', 'memory', 'pids', 'hugetlb'] as const;

/**
 * Reads the cgroup mounts (`/proc/self/mounts`) under `mountPoint` (default `/sys/fs/cgroup`).
 * v2 when `mountPoint` itself is a cgroup2 mount; v1 when the memory and cpu controllers are
 * mounted as v1 hierarchies.
 */
export function cgroupsAvailable(mountPoint = '/sys/fs/cgroup', mountsFile = '/proc/self/mounts'): CgroupSupport {
  let mounts: string;
  try {
    mounts = readFileSync(mountsFile, 'utf8');
  } catch (err) {
    return { version: undefined, controllers: {}, reason: `cannot read ${mountsFile}: ${err instanceof Error ? err.message : String(err)}` };
  }
  const v1: Record<string, string> = {};
  let unifiedAtRoot = false;
  for (const line of mounts.split('\n')) {
    const [, dir, type, options] = line.split(' ');
    if (!dir || !type || !options) continue;
    const path = dir.replace(/\\040/g, ' ');
    if (path !== mountPoint && !path.startsWith(`${mountPoint}/`)) continue;
    if (type === 'cgroup2' && path === mountPoint) unifiedAtRoot = true;
    if (type !== 'cgroup') continue;
    for (const opt of options.split(',')) {
      if (KNOWN_V1.has(opt) || opt.startsWith('name=')) v1[opt] = path;
    }
  }
  if (unifiedAtRoot) {
    let offered: string[] = [];
    try {
      offered = readFileSync(join(mountPoint, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean);
    } catch {
      // an empty list: nothing can be limited
    }
    return { version: 2, controllers: Object.fromEntries(offered.map((c) => [c, mountPoint])) };
  }
  const missing = REQUIRED_V1.filter((c) => v1[c] === undefined);
  if (missing.length > 0) return { version: undefined, controllers: v1, reason: `cgroup v1 controllers not mounted under ${mountPoint}: ${missing.join(', ')}` };
  return { version: 1, controllers: v1 };
}

/** A pod cgroup found on the machine. */
export interface PodCgroup {
  readonly uid: string;
  readonly qosClass: QosClass;
  /** Its name relative to the hierarchy roots: the `cgroupParent` it was created for. */
  readonly name: string;
}

/** Options of a {@link CgroupManager}. */
export interface CgroupManagerOptions {
  /** The cgroup every pod lives under, relative to the hierarchy roots. Default `kubepods`; tests use e.g. `kubernel-test-1/kubepods`. */
  readonly root?: string;
  /** Where cgroup filesystems are mounted. Default `/sys/fs/cgroup`. */
  readonly mountPoint?: string;
  /** The layout; default {@link cgroupsAvailable}(mountPoint). */
  readonly support?: CgroupSupport;
}

const sleepMs = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const isErrno = (err: unknown, ...codes: string[]): boolean => err instanceof Error && codes.includes((err as NodeJS.ErrnoException).code ?? '');

/** `cpu.weight` (v2) of cpu.shares (v1), as runc converts: 2..262144 → 1..10000. */
export function sharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  return 1 + Math.floor(((shares - 2) * 9999) / 262_142);
}

function trimSlashes(s: string): string {
  return s.replace(/^\/+|\/+$/g, '');
}

/** Creates, limits, lists and removes the pod-level cgroups under one root. */
export class CgroupManager {
  /** The root's name, without slashes (`kubepods`). */
  readonly root: string;
  readonly support: CgroupSupport;
  private readonly mountPoint: string;

  constructor(opts: CgroupManagerOptions = {}) {
    this.root = trimSlashes(opts.root ?? DEFAULT_CGROUP_ROOT);
    if (this.root === '' || this.root.split('/').some((p) => p === '..' || p === '.')) throw new Error(`CgroupManager: bad root ${JSON.stringify(opts.root)}`);
    this.mountPoint = opts.mountPoint ?? '/sys/fs/cgroup';
    this.support = opts.support ?? cgroupsAvailable(this.mountPoint);
  }

  /** @throws {Error} when cgroups cannot be managed here. */
  private get version(): 1 | 2 {
    if (this.support.version === undefined) throw new Error(`cgroups unavailable: ${this.support.reason ?? 'unknown layout'}`);
    return this.support.version;
  }

  /** The hierarchies a cgroup lives in: every v1 mount (deduplicated), or the single v2 tree. */
  private hierarchies(): string[] {
    if (this.version === 2) return [this.mountPoint];
    return [...new Set(Object.values(this.support.controllers))];
  }

  /** A v1 controller's mount. */
  private mountOf(controller: string): string | undefined {
    return this.support.controllers[controller];
  }

  /** Checks that `name` is under the root and safe, and returns it without surrounding slashes. */
  private relative(name: string): string {
    const rel = trimSlashes(name);
    if (rel !== this.root && !rel.startsWith(`${this.root}/`)) throw new Error(`cgroup ${JSON.stringify(name)} is not under /${this.root}`);
    if (rel.split('/').some((p) => p === '' || p === '..' || p === '.')) throw new Error(`bad cgroup name ${JSON.stringify(name)}`);
    return rel;
  }

  /** Creates `rel` (and its ancestors) in every hierarchy; v1 cpuset levels inherit cpus/mems. */
  private async create(rel: string): Promise<void> {
    const parts = rel.split('/');
    for (const hierarchy of this.hierarchies()) {
      let path = hierarchy;
      for (const part of parts) {
        const parent = path;
        path = join(path, part);
        if (existsSync(path)) continue;
        await mkdir(path).catch((err: unknown) => {
          if (!isErrno(err, 'EEXIST')) throw err;
        });
        if (this.version === 1 && hierarchy === this.mountOf('cpuset')) {
          for (const file of ['cpuset.cpus', 'cpuset.mems']) {
            const value = (await readFile(join(parent, file), 'utf8')).trim();
            await writeFile(join(path, file), value);
          }
        }
        if (this.version === 2) await this.enableV2Controllers(parent);
      }
    }
  }

  /** v2: enables the offered controllers the agent limits in `dir`'s children. */
  private async enableV2Controllers(dir: string): Promise<void> {
    const offered = (await readFile(join(dir, 'cgroup.controllers'), 'utf8')).trim().split(/\s+/);
    const wanted = V2_CONTROLLERS.filter((c) => offered.includes(c));
    if (wanted.length === 0) return;
    await writeFile(join(dir, 'cgroup.subtree_control'), wanted.map((c) => `+${c}`).join(' '));
  }

  /** Writes `value` to a controller file of `rel`, or throws naming the controller when it is missing. */
  private async write(controller: string, rel: string, file: string, value: string): Promise<void> {
    const base = this.version === 2 ? this.mountPoint : this.mountOf(controller);
    if (base === undefined || (this.version === 2 && this.support.controllers[controller] === undefined)) {
      throw new Error(`cgroup controller ${controller} is not available (needed for ${file})`);
    }
    await writeFile(join(base, rel, file), value);
  }

  /** Applies `limits` to `rel`: only the members that are set. */
  private async apply(rel: string, limits: PodResourceConfig): Promise<void> {
    if (this.version === 1) {
      if (limits.cpuShares !== undefined) await this.write('cpu', rel, 'cpu.shares', String(limits.cpuShares));
      if (limits.cpuPeriod !== undefined) await this.write('cpu', rel, 'cpu.cfs_period_us', String(limits.cpuPeriod));
      if (limits.cpuQuota !== undefined) await this.write('cpu', rel, 'cpu.cfs_quota_us', String(limits.cpuQuota > 0 ? limits.cpuQuota : -1));
      if (limits.memoryLimitInBytes !== undefined) await this.write('memory', rel, 'memory.limit_in_bytes', String(limits.memoryLimitInBytes > 0 ? limits.memoryLimitInBytes : -1));
      if (limits.pidsLimit !== undefined) await this.write('pids', rel, 'pids.max', limits.pidsLimit > 0 ? String(limits.pidsLimit) : 'max');
      return;
    }
    if (limits.cpuShares !== undefined) await this.write('cpu', rel, 'cpu.weight', String(sharesToWeight(limits.cpuShares)));
    if (limits.cpuQuota !== undefined || limits.cpuPeriod !== undefined) {
      const quota = limits.cpuQuota !== undefined && limits.cpuQuota > 0 ? String(limits.cpuQuota) : 'max';
      await this.write('cpu', rel, 'cpu.max', `${quota} ${limits.cpuPeriod ?? 100_000}`);
    }
    if (limits.memoryLimitInBytes !== undefined) await this.write('memory', rel, 'memory.max', limits.memoryLimitInBytes > 0 ? String(limits.memoryLimitInBytes) : 'max');
    if (limits.pidsLimit !== undefined) await this.write('pids', rel, 'pids.max', limits.pidsLimit > 0 ? String(limits.pidsLimit) : 'max');
  }

  /** Whether a controller can be written here. */
  private has(controller: string): boolean {
    return this.support.controllers[controller] !== undefined;
  }

  /**
   * Ensures the root and the QoS parents exist (`<root>`, `<root>/burstable`, `<root>/besteffort`,
   * the latter with the minimum cpu.shares when the cpu controller is there). Idempotent.
   *
   * @throws {Error} when cgroups are unavailable or not writable.
   */
  async ensureQosCgroups(): Promise<void> {
    for (const rel of [this.root, `${this.root}/burstable`, `${this.root}/besteffort`]) await this.create(rel);
    if (this.has('cpu')) await this.apply(`${this.root}/besteffort`, { cpuShares: MIN_SHARES });
  }

  /**
   * Creates the pod's cgroup `parent` (its `cgroupParent`, e.g. `/kubepods/burstable/pod<uid>`,
   * which must be under the root) with its QoS parents in every hierarchy, and writes `limits`.
   * Idempotent: an existing cgroup gets the limits again.
   *
   * @throws {Error} when the name is not under the root, cgroups are unavailable, or a limit's
   *   controller is missing.
   */
  async ensurePodCgroup(parent: string, limits: PodResourceConfig): Promise<void> {
    const rel = this.relative(parent);
    await this.ensureQosCgroups();
    await this.create(rel);
    await this.apply(rel, limits);
  }

  /** Whether the pod cgroup exists (in the memory hierarchy on v1, the tree on v2). */
  async podCgroupExists(parent: string): Promise<boolean> {
    const rel = this.relative(parent);
    const base = this.version === 2 ? this.mountPoint : this.mountOf('memory')!;
    return stat(join(base, rel)).then(
      () => true,
      () => false,
    );
  }

  /** Every directory below `dir` (itself included), deepest first. */
  private async tree(dir: string): Promise<string[]> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
    const out: string[] = [];
    for (const e of entries) if (e.isDirectory()) out.push(...(await this.tree(join(dir, e.name))));
    out.push(dir);
    return out;
  }

  /** The PIDs in `dir` and its descendants. */
  private async pids(dirs: readonly string[]): Promise<number[]> {
    const pids = new Set<number>();
    for (const d of dirs) {
      try {
        for (const line of (await readFile(join(d, 'cgroup.procs'), 'utf8')).split('\n')) {
          const pid = Number(line.trim());
          if (Number.isInteger(pid) && pid > 0) pids.add(pid);
        }
      } catch (err) {
        if (!isErrno(err, 'ENOENT', 'ENODEV')) throw err;
      }
    }
    return [...pids];
  }

  /**
   * Removes the pod's cgroup `parent` from every hierarchy: kills whatever still runs in it or
   * below it (SIGKILL, up to five rounds, as the kubelet's `tryKillingCgroupProcesses`), then
   * removes the directories, deepest first (the runtime's leftover container cgroups too).
   * Idempotent: a cgroup already gone is fine.
   *
   * @throws {Error} when the name is not under the root, or a directory stays busy.
   */
  async removePodCgroup(parent: string): Promise<void> {
    const rel = this.relative(parent);
    if (rel === this.root) throw new Error('removePodCgroup: refusing to remove the root cgroup');
    const dirsOf = async (): Promise<string[]> => (await Promise.all(this.hierarchies().map((h) => this.tree(join(h, rel))))).flat();
    if (this.version === 2) {
      const top = join(this.mountPoint, rel);
      if (existsSync(join(top, 'cgroup.kill'))) await writeFile(join(top, 'cgroup.kill'), '1').catch(() => undefined);
    }
    for (let round = 0; round < 5; round++) {
      const pids = await this.pids(await dirsOf());
      if (pids.length === 0) break;
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch (err) {
          if (!isErrno(err, 'ESRCH')) throw err;
        }
      }
      await sleepMs(20 * (round + 1));
    }
    for (const dir of await dirsOf()) {
      for (let attempt = 0; ; attempt++) {
        try {
          await rmdir(dir);
          break;
        } catch (err) {
          if (isErrno(err, 'ENOENT')) break;
          if (!isErrno(err, 'EBUSY') || attempt >= 50) throw new Error(`cannot remove cgroup ${dir}: ${err instanceof Error ? err.message : String(err)}`);
          await sleepMs(20);
        }
      }
    }
  }

  /**
   * The pod cgroups under the root (`pod<uid>` directories in the root, `burstable` and
   * `besteffort`), as found in the memory hierarchy (v1) or the tree (v2): for removing those of
   * pods the agent no longer runs, after a restart.
   */
  async listPodCgroups(): Promise<PodCgroup[]> {
    const base = this.version === 2 ? this.mountPoint : this.mountOf('memory')!;
    const out: PodCgroup[] = [];
    const scan = async (rel: string, qos: QosClass): Promise<void> => {
      let entries;
      try {
        entries = await readdir(join(base, rel), { withFileTypes: true });
      } catch (err) {
        if (isErrno(err, 'ENOENT')) return;
        throw err;
      }
      for (const e of entries) {
        if (!e.isDirectory() || !e.name.startsWith('pod') || e.name.length <= 3) continue;
        out.push({ uid: e.name.slice(3), qosClass: qos, name: `/${rel}/${e.name}` });
      }
    };
    await scan(this.root, 'Guaranteed');
    await scan(`${this.root}/burstable`, 'Burstable');
    await scan(`${this.root}/besteffort`, 'BestEffort');
    return out;
  }

  /**
   * Removes the QoS parents and the root when they are empty (for tests and uninstall); also
   * removes every path level above the root that this manager's root added (`a/b/kubepods` → `a/b`,
   * `a`) when empty. Pod cgroups must be removed first.
   */
  async removeQosCgroups(): Promise<void> {
    const levels = [`${this.root}/burstable`, `${this.root}/besteffort`];
    const parts = this.root.split('/');
    for (let i = parts.length; i > 0; i--) levels.push(parts.slice(0, i).join('/'));
    for (const hierarchy of this.hierarchies()) {
      for (const rel of levels) {
        try {
          await rmdir(join(hierarchy, rel));
        } catch (err) {
          if (!isErrno(err, 'ENOENT', 'ENOTEMPTY', 'EBUSY')) throw err;
        }
      }
    }
  }
}
