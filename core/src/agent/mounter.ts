/**
 * Mounting for the node agent's volumes: a small {@link Mounter} interface (mount, unmount, list
 * the mount table) and {@link SystemMounter}, which runs `mount`/`umount` through one long-lived
 * shell (needs root) and reads `/proc/self/mountinfo`.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
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

const quote = (arg: string): string => `'${arg.replace(/'/g, `'\\''`)}'`;

/**
 * Runs commands through one long-lived `sh`, one at a time: spawning a child from a large Node
 * process blocks its event loop for milliseconds (the fork), which a burst of pods with secret and
 * token volumes (a tmpfs each) would pay per mount. The shell forks the small `mount` instead.
 * Unreferenced: it never keeps the process alive; it is started again if it dies.
 */
export class ShellRunner {
  private child: ChildProcess | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private output = '';
  private waiting: ((line: { code: number; output: string }) => void) | undefined;
  private static readonly MARK = '__kubernel_done__';

  /** Runs `cmd args...`; rejects with its output when it exits non-zero. */
  run(cmd: string, args: readonly string[]): Promise<void> {
    const next = this.queue.then(() => this.exec(cmd, args));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private shell(): ChildProcess {
    if (this.child && this.child.exitCode === null && !this.child.killed) return this.child;
    const child = spawn('sh', ['-s'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.output = '';
    const onData = (d: Buffer): void => {
      this.output += d.toString();
      const at = this.output.indexOf(`${ShellRunner.MARK} `);
      if (at < 0) return;
      const nl = this.output.indexOf('\n', at);
      if (nl < 0) return;
      const code = Number(this.output.slice(at + ShellRunner.MARK.length + 1, nl));
      const text = this.output.slice(0, at);
      this.output = this.output.slice(nl + 1);
      const w = this.waiting;
      this.waiting = undefined;
      w?.({ code, output: text });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', () => {
      const w = this.waiting;
      this.waiting = undefined;
      w?.({ code: -1, output: `${this.output}(the helper shell exited)` });
    });
    child.on('error', () => undefined);
    child.unref();
    for (const stream of [child.stdin, child.stdout, child.stderr] as unknown as { unref?: () => void }[]) stream?.unref?.();
    this.child = child;
    return child;
  }

  private exec(cmd: string, args: readonly string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = this.shell();
      const timer = setTimeout(() => {
        this.waiting = undefined;
        child.kill('SIGKILL');
        reject(new Error(`${cmd} ${args.join(' ')} timed out`));
      }, 30_000);
      timer.unref();
      this.waiting = ({ code, output }) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new Error(`${cmd} ${args.join(' ')} failed: ${output.trim() || `exit ${code}`}`));
      };
      child.stdin!.write(`${[cmd, ...args].map(quote).join(' ')} </dev/null 2>&1; echo "${ShellRunner.MARK} $?"\n`);
    });
  }
}

const shell = new ShellRunner();
const run = (cmd: string, args: readonly string[]): Promise<void> => shell.run(cmd, args);

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
