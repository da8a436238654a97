/**
 * Managed mode: the plugin runs its own containerd. {@link ManagedContainerd} writes containerd's
 * config and CNI template under its root, starts `containerd --config FILE` as a child process
 * (stderr to `<root>/containerd.log`), waits until the socket answers `Version`, restarts it with
 * back-off if it dies, and stops it with SIGTERM (SIGKILL after a grace period).
 *
 * Stopping containerd does not stop pods: the shims (and so the containers) keep running, and a
 * containerd started again on the same root and state finds them.
 *
 * @module
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '@kubernel/sdk';
import { ContainerdRuntime } from './client.js';
import {
  containerdLayout,
  CONTAINERD_CNI_CONF_NAME,
  renderCniTemplate,
  renderContainerdConfig,
  type ContainerdLayout,
} from './containerd-config.js';
import { BUSYBOX_IMAGE, buildBusyboxImage, buildPauseImage, PAUSE_IMAGE, type BuiltImage } from './images.js';

const run = promisify(execFile);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The containerd namespace of CRI (where `ctr -n k8s.io` imports images CRI can use). */
export const CRI_NAMESPACE = 'k8s.io';

/** Options of {@link ManagedContainerd}. */
export interface ManagedContainerdOptions {
  /** The root dir: config, log, containerd's root, CNI files, image archives. */
  readonly root: string;
  /** The state dir: sockets, runc root, pid file, netns mounts. */
  readonly stateDir: string;
  /** The Linux bridge pods attach to (also the CNI network's name). */
  readonly bridgeName: string;
  /** containerd's CRI `sandbox_image`. */
  readonly sandboxImage: string;
  /** Where the CNI plugins are. */
  readonly cniBinDir: string;
  /** containerd's log level. */
  readonly logLevel: string;
  /** How long containerd may take to answer `Version`, ms. */
  readonly startTimeoutMs: number;
  /** Where supervision events go. */
  readonly logger: Logger;
  /** The streaming server port on 127.0.0.1; a free port is picked when 0 or absent. */
  readonly streamServerPort?: number;
  /** The containerd binary; `containerd` (from `PATH`) by default. */
  readonly containerdBinary?: string;
  /** Grace period of SIGTERM before SIGKILL on stop, ms; 5 s by default. */
  readonly stopGraceMs?: number;
  /** First restart delay after containerd dies, ms (doubling up to 30 s); 500 ms by default. */
  readonly restartBackoffMs?: number;
}

/** Why a managed containerd is not serving (for `status()`), or undefined while it is. */
export interface Unavailability {
  readonly reason: string;
  readonly message: string;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function pickFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('could not pick a free port'))));
    });
  });
}

/** The last `lines` lines of a file, from its last 16 KiB (empty when it cannot be read). */
function tail(path: string, lines: number): string {
  try {
    const size = statSync(path).size;
    const length = Math.min(size, 16 * 1024);
    const buf = Buffer.alloc(length);
    const fd = openSync(path, 'r');
    try {
      readSync(fd, buf, 0, length, size - length);
    } finally {
      closeSync(fd);
    }
    return buf.toString('utf8').split('\n').filter((l) => l.length > 0).slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** True when process `pid` is alive and its command line mentions `needle`. */
function isOurProcess(pid: number, needle: string): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
    return cmdline.includes(needle);
  } catch {
    return false;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * One containerd that the plugin owns: configured, started, supervised and stopped by it.
 * Not reusable: after {@link ManagedContainerd.stop}, make a new one.
 */
export class ManagedContainerd {
  /** Where its files are. */
  readonly layout: ContainerdLayout;
  private readonly options: ManagedContainerdOptions;
  private readonly log: Logger;
  private child: ChildProcess | undefined;
  private exited: Promise<void> | undefined;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private backoffMs: number;
  private startedAt = 0;
  private down: Unavailability | undefined = { reason: 'ContainerdNotStarted', message: 'containerd has not been started yet' };
  private streamPort = 0;

  constructor(options: ManagedContainerdOptions) {
    this.options = options;
    this.layout = containerdLayout(options.root, options.stateDir);
    this.log = options.logger;
    this.backoffMs = options.restartBackoffMs ?? 500;
  }

  /** The CRI endpoint (`unix:///.../containerd.sock`). */
  get endpoint(): string {
    return `unix://${this.layout.socketPath}`;
  }

  /** The running containerd's pid (undefined when it is not running). */
  get pid(): number | undefined {
    return this.child?.exitCode === null ? this.child.pid : undefined;
  }

  /** The streaming server port in use (0 before start). */
  get streamServerPort(): number {
    return this.streamPort;
  }

  /** Why containerd is not serving right now, or undefined while it is. */
  availability(): Unavailability | undefined {
    return this.down;
  }

  /**
   * Writes the config and CNI template, stops a containerd left behind by an earlier run of this
   * root (by its pid file), starts containerd and waits until it answers `Version`.
   *
   * @throws when containerd exits or does not answer within the start timeout (it is stopped first).
   */
  async start(podCidr?: string): Promise<void> {
    if (this.stopping) throw new Error('this managed containerd was stopped; make a new one');
    const l = this.layout;
    await Promise.all([l.root, l.stateDir, l.containerdRoot, l.cniConfDir, l.ipamDataDir, l.imagesDir].map((d) => mkdir(d, { recursive: true })));
    this.streamPort = this.options.streamServerPort || (await pickFreePort());
    await writeFile(
      l.configPath,
      renderContainerdConfig(l, {
        sandboxImage: this.options.sandboxImage,
        cniBinDir: this.options.cniBinDir,
        streamServerPort: this.streamPort,
        logLevel: this.options.logLevel,
      }),
    );
    const template = renderCniTemplate(this.options.bridgeName, l.ipamDataDir);
    await writeFile(l.cniTemplatePath, template);
    await this.dropStaleCniConfig(template, podCidr);
    await this.stopLeftover();
    await this.rotateLog();
    try {
      await this.launch();
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /**
   * Removes the CNI config a previous run generated from another template (another bridge, another
   * version of the template) or for another pod CIDR: containerd only renders the template while it
   * has no CNI config, so a stale one would stay forever.
   */
  private async dropStaleCniConfig(template: string, podCidr: string | undefined): Promise<void> {
    const path = join(this.layout.cniConfDir, CONTAINERD_CNI_CONF_NAME);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch {
      return;
    }
    let stale = true;
    try {
      const existing = JSON.stringify(JSON.parse(text));
      const subnet = podCidr ?? /"subnet"\s*:\s*"([^"]+)"/.exec(text)?.[1];
      stale = subnet === undefined || existing !== JSON.stringify(JSON.parse(template.split('{{.PodCIDR}}').join(subnet)));
    } catch {
      // unparsable: regenerate
    }
    if (stale) {
      this.log.info({ path }, 'removing a CNI config generated from another template or pod CIDR');
      await rm(path, { force: true });
    }
  }

  /** Stops a containerd an earlier (crashed) run of this plugin left running on the same state dir. */
  private async stopLeftover(): Promise<void> {
    let pid: number;
    try {
      pid = Number((await readFile(this.layout.pidPath, 'utf8')).trim());
    } catch {
      return;
    }
    if (Number.isInteger(pid) && pid > 1 && isAlive(pid) && isOurProcess(pid, this.layout.configPath)) {
      this.log.warn({ containerdPid: pid }, 'stopping a containerd left running by an earlier run');
      process.kill(pid, 'SIGTERM');
      const deadline = Date.now() + (this.options.stopGraceMs ?? 5_000);
      while (isAlive(pid) && Date.now() < deadline) await sleep(50);
      if (isAlive(pid)) process.kill(pid, 'SIGKILL');
      while (isAlive(pid)) await sleep(20);
    }
    await rm(this.layout.pidPath, { force: true });
  }

  /** Keeps one previous log (`containerd.log.1`) once the log passes 32 MiB. */
  private async rotateLog(): Promise<void> {
    try {
      if (statSync(this.layout.logPath).size > 32 * 1024 * 1024) await rename(this.layout.logPath, `${this.layout.logPath}.1`);
    } catch {
      // no log yet
    }
  }

  /** Spawns containerd and waits until it serves; arms supervision. */
  private async launch(): Promise<void> {
    const binary = this.options.containerdBinary ?? 'containerd';
    const fd = openSync(this.layout.logPath, 'a');
    let child: ChildProcess;
    try {
      child = spawn(binary, ['--config', this.layout.configPath], { stdio: ['ignore', fd, fd], detached: true });
    } finally {
      closeSync(fd);
    }
    this.child = child;
    const began = Date.now();
    this.exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        resolve();
        this.onExit(child, code, signal);
      });
      child.once('error', (err) => {
        this.log.error({ err: err.message }, 'could not run containerd');
        resolve();
        if (child.exitCode === null && child.pid === undefined) this.onExit(child, null, null);
      });
    });
    if (child.pid !== undefined) await writeFile(this.layout.pidPath, `${child.pid}\n`);
    this.log.debug({ containerdPid: child.pid, config: this.layout.configPath, log: this.layout.logPath }, 'containerd started');
    await this.waitReady(child);
    this.startedAt = Date.now();
    this.down = undefined;
    this.log.info({ containerdPid: child.pid, endpoint: this.endpoint, ms: Date.now() - began, streamServerPort: this.streamPort }, 'containerd is serving');
  }

  /** Polls `Version` until containerd answers, it exits, or the start timeout passes. */
  private async waitReady(child: ChildProcess): Promise<void> {
    const probe = new ContainerdRuntime({ endpoint: this.endpoint, timeouts: { short: 1_000 } });
    const deadline = Date.now() + this.options.startTimeoutMs;
    try {
      for (;;) {
        if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
          throw new Error(`containerd exited during start (code ${child.exitCode}, signal ${child.signalCode}); its log ${this.layout.logPath} ends with:\n${tail(this.layout.logPath, 15)}`);
        }
        if (this.stopping) throw new Error('containerd was stopped during start');
        if (existsSync(this.layout.socketPath)) {
          try {
            await probe.version();
            return;
          } catch {
            // not serving yet
          }
        }
        if (Date.now() >= deadline) {
          throw new Error(`containerd did not answer on ${this.layout.socketPath} within ${this.options.startTimeoutMs} ms; its log ${this.layout.logPath} ends with:\n${tail(this.layout.logPath, 15)}`);
        }
        await sleep(50);
      }
    } finally {
      await probe.close();
    }
  }

  /** Supervision: a containerd that exits while not stopping is restarted after a back-off. */
  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return;
    this.child = undefined;
    if (this.stopping) return;
    const ranMs = this.startedAt > 0 ? Date.now() - this.startedAt : 0;
    if (ranMs > 60_000) this.backoffMs = this.options.restartBackoffMs ?? 500;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, 30_000);
    this.down = { reason: 'ContainerdRestarting', message: `containerd exited (code ${code}, signal ${signal}); restarting in ${delay} ms` };
    this.log.warn({ code, signal, delayMs: delay, log: this.layout.logPath }, 'containerd exited; restarting it');
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      this.launch().catch((err: unknown) => {
        this.log.error({ err: err instanceof Error ? err.message : String(err) }, 'containerd restart failed');
        // A child that is still running but did not answer in time is killed; its exit schedules the next try.
        const stuck = this.child;
        if (stuck && stuck.exitCode === null) stuck.kill('SIGKILL');
      });
    }, delay);
  }

  /**
   * Stops containerd: SIGTERM, then SIGKILL after the grace period; waits for it to exit and
   * cancels any pending restart. Pods keep running. Idempotent.
   */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      this.down = { reason: 'ContainerdStopped', message: 'containerd was stopped' };
      clearTimeout(this.restartTimer);
      this.restartTimer = undefined;
      const child = this.child;
      if (child && child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        child.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const graceful = await Promise.race([
          this.exited!.then(() => true),
          new Promise<boolean>((resolve) => {
            timer = setTimeout(() => resolve(false), this.options.stopGraceMs ?? 5_000);
          }),
        ]);
        clearTimeout(timer);
        if (!graceful) {
          this.log.warn({ containerdPid: child.pid }, 'containerd did not stop on SIGTERM; killing it');
          child.kill('SIGKILL');
          await this.exited;
        }
      }
      this.child = undefined;
      await rm(this.layout.pidPath, { force: true });
      this.log.debug('containerd stopped');
    })();
    return this.stopped;
  }
}

/** What {@link importImageArchive} needs. */
export interface ImportOptions {
  /** containerd's socket path. */
  readonly socketPath: string;
  /** The containerd namespace; {@link CRI_NAMESPACE} by default. */
  readonly namespace?: string;
  /** The `ctr` binary; `ctr` (from `PATH`) by default. */
  readonly ctrBinary?: string;
}

/** Imports an image archive (OCI layout or docker save) into containerd with `ctr images import`, unpacked for the default snapshotter. */
export async function importImageArchive(file: string, options: ImportOptions): Promise<void> {
  await run(options.ctrBinary ?? 'ctr', ['--address', options.socketPath, '-n', options.namespace ?? CRI_NAMESPACE, 'images', 'import', file], {
    timeout: 120_000,
    maxBuffer: 4 * 1024 * 1024,
  });
}

/** One local image {@link ensureLocalImages} provides. */
export interface LocalImage {
  readonly name: string;
  /** Writes the image's archive to the given file. */
  readonly build: (file: string) => Promise<BuiltImage>;
}

/** The images a managed containerd gets at start: the pause image and busybox, both built from busybox-static. */
export function defaultLocalImages(busyboxPath?: string): LocalImage[] {
  return [
    { name: PAUSE_IMAGE, build: (file) => buildPauseImage(file, PAUSE_IMAGE, busyboxPath) },
    { name: BUSYBOX_IMAGE, build: (file) => buildBusyboxImage(file, { name: BUSYBOX_IMAGE, ...(busyboxPath ? { busyboxPath } : {}) }) },
  ];
}

/** The archive file name of an image (`docker.io_kubernel_busybox_1.35.tar`). */
export const archiveName = (name: string): string => `${name.replace(/[^A-Za-z0-9._-]+/g, '_')}.tar`;

/**
 * Makes sure every image of `images` is present in containerd's CRI namespace: an image CRI does
 * not know is built into `imagesDir` (unless its archive is already there) and imported with
 * `ctr`, then awaited in CRI's image status. Returns the names it imported.
 */
export async function ensureLocalImages(
  runtime: ContainerdRuntime,
  images: readonly LocalImage[],
  options: ImportOptions & { readonly imagesDir: string; readonly logger?: Logger },
): Promise<string[]> {
  const imported: string[] = [];
  for (const img of images) {
    if ((await runtime.imageStatus({ image: img.name })).image) continue;
    const file = join(options.imagesDir, archiveName(img.name));
    if (!existsSync(file)) await img.build(file);
    await importImageArchive(file, options);
    const deadline = Date.now() + 10_000;
    while (!(await runtime.imageStatus({ image: img.name })).image) {
      if (Date.now() > deadline) throw new Error(`imported ${file}, but containerd's CRI does not show ${img.name}`);
      await sleep(50);
    }
    options.logger?.info({ image: img.name, archive: file }, 'imported local image');
    imported.push(img.name);
  }
  return imported;
}
