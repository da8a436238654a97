/**
 * Mounting for the node agent's volumes: a small {@link Mounter} interface (mount, unmount, list
 * the mount table) and {@link SystemMounter}, which runs `mount`/`umount` as child processes
 * (needs root) and reads `/proc/self/mountinfo`.
 *
 * @module
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';

/** One entry of the mount table. */
export interface MountPoint {
  /** Where it is mounted (absolute, unescaped). */
  readonly mountPoint: string;
  /** `tmpfs`, `ext4`, ... */
  readonly fsType: string;
  /** The mount source (`tmpfs`, `/dev/sda1`). */
  readonly source: string;
  /** Per-mount options (`rw,relatime`). */
  readonly options: string;
  /** Per-superblock options (`rw,size=1024k`). */
  readonly superOptions: string;
}

/** Mounts and unmounts filesystems, and lists what is mounted. */
export interface Mounter {
  /** `mount -t fsType -o options source target`. */
  mount(source: string, target: string, fsType: string, options: readonly string[]): Promise<void>;
  /** `umount target`. */
  unmount(target: string): Promise<void>;
  /** The mount table, in mount order. */
  list(): Promise<MountPoint[]>;
}

/** Decodes mountinfo's octal escapes (`\040` for a space). */
const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Parses `/proc/<pid>/mountinfo` text. */
export function parseMountInfo(text: string): MountPoint[] {
  const out: MountPoint[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const fields = line.split(' ');
    const sep = fields.indexOf('-', 6);
    if (sep < 0 || fields.length < sep + 3) continue;
    out.push({
      mountPoint: unescape(fields[4]!),
      options: fields[5]!,
      fsType: fields[sep + 1]!,
      source: unescape(fields[sep + 2]!),
      superOptions: fields[sep + 3] ?? '',
    });
  }
  return out;
}

const run = (cmd: string, args: readonly string[]): Promise<void> =>
  new Promise((resolve, reject) => {
    execFile(cmd, [...args], { timeout: 30_000 }, (err, _stdout, stderr) => {
      if (!err) resolve();
      else reject(new Error(`${cmd} ${args.join(' ')} failed: ${String(stderr).trim() || err.message}`));
    });
  });

/** The host's mounter: `mount`/`umount` child processes and `/proc/self/mountinfo`. */
export class SystemMounter implements Mounter {
  constructor(private readonly mountInfoPath = '/proc/self/mountinfo') {}

  mount(source: string, target: string, fsType: string, options: readonly string[]): Promise<void> {
    return run('mount', ['-t', fsType, ...(options.length > 0 ? ['-o', options.join(',')] : []), source, target]);
  }

  unmount(target: string): Promise<void> {
    return run('umount', [target]);
  }

  async list(): Promise<MountPoint[]> {
    return parseMountInfo(await readFile(this.mountInfoPath, 'utf8'));
  }
}

/** The mount points at or below `dir` (deepest first, so they can be unmounted in order). */
export async function mountsUnder(mounter: Mounter, dir: string): Promise<MountPoint[]> {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const found = (await mounter.list()).filter((m) => m.mountPoint === dir || m.mountPoint.startsWith(prefix));
  return found.reverse().sort((a, b) => b.mountPoint.length - a.mountPoint.length);
}

/** True when `dir` is a mount point of filesystem type `fsType` (any type when absent). */
export async function isMountPoint(mounter: Mounter, dir: string, fsType?: string): Promise<boolean> {
  return (await mounter.list()).some((m) => m.mountPoint === dir && (fsType === undefined || m.fsType === fsType));
}
