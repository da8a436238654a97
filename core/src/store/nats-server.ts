import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { delay, type Logger } from '@kubernel/sdk';
import { findNatsServer, natsServerVersion, supportsSyncAlways, type NatsServerVersion } from './nats-binary.js';

/** How acknowledged writes are made durable. */
export type SyncMode =
  /** fsync before every acknowledgement (nats-server >= 2.10, `sync_interval: always`). */
  | 'always'
  /** the server's default: flushed to the OS at once, fsynced every 2 minutes. */
  | 'interval';

/** Options of a managed nats-server. */
export interface NatsServerOptions {
  /** Where its config and JetStream file store live (created if missing). */
  readonly dataDir: string;
  /** The binary; found with {@link findNatsServer} when absent. */
  readonly binary?: string;
  /** Client listen address; 127.0.0.1 by default. */
  readonly host?: string;
  /** Client port; a free one (kept across restarts) when 0 or absent. */
  readonly port?: number;
  /** Monitoring (HTTP) port, used for readiness; a free one when 0 or absent. */
  readonly monitorPort?: number;
  /** Server name (unique in a cluster). */
  readonly name?: string;
  /** Durability; `always` by default. With an older server, see `requireSync`. */
  readonly sync?: SyncMode;
  /** With `sync: 'always'` on a server that cannot do it: refuse to start (true) or warn and fall back (false, default). */
  readonly requireSync?: boolean;
  /** Clients must present this token. */
  readonly token?: string;
  /** Join a cluster: this node's route listen port, and its peers' route URLs. */
  readonly cluster?: { readonly name: string; readonly port: number; readonly routes: readonly string[] };
  /** Max message size; 8 MiB by default (Kubernetes objects reach 1.5 MiB). */
  readonly maxPayloadBytes?: number;
  readonly logger: Logger;
  /** How long to wait for readiness on each start; 20 s by default. */
  readonly readyTimeoutMs?: number;
}

/** Picks a free TCP port on `host` (the kernel's choice for port 0). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const LEVELS: Record<string, 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'trace'> = {
  DBG: 'debug',
  TRC: 'trace',
  INF: 'debug',
  WRN: 'warn',
  ERR: 'error',
  FTL: 'fatal',
};

/**
 * A nats-server process Kubernel starts and supervises (the embedded default, like k3s's
 * embedded datastore): writes its config under the data dir, starts it, waits until JetStream
 * is ready, restarts it with back-off if it dies, and stops it on request.
 */
export class NatsServer {
  private child?: ChildProcess;
  private stopping = false;
  private readonly stopController = new AbortController();
  private restarts = 0;
  private lines: string[] = [];
  private supervising?: Promise<void>;
  host = '127.0.0.1';
  port = 0;
  monitorPort = 0;
  version?: NatsServerVersion;
  /** The durability actually in force once started. */
  sync: SyncMode = 'interval';
  private readonly log: Logger;

  constructor(private readonly options: NatsServerOptions) {
    this.log = options.logger.child({ component: 'nats-server' });
  }

  /** The client URL (`nats://host:port`). */
  get url(): string {
    return `nats://${this.host}:${this.port}`;
  }

  /** The process id of the running server, if any. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Route URL peers use to reach this node (cluster mode). */
  get routeUrl(): string | undefined {
    return this.options.cluster ? `nats-route://${this.host}:${this.options.cluster.port}` : undefined;
  }

  /**
   * Writes the config, starts the server and waits until JetStream answers.
   * @throws when the binary is missing, cannot give the requested durability with `requireSync`,
   *   or does not become ready in time (its last log lines are in the message)
   */
  async start(): Promise<void> {
    const binary = findNatsServer(this.options.binary);
    this.version = await natsServerVersion(binary);
    const wanted = this.options.sync ?? 'always';
    if (wanted === 'always' && !supportsSyncAlways(this.version)) {
      const what = `nats-server ${this.version.text} cannot fsync each write (sync_interval: always needs >= 2.10)`;
      if (this.options.requireSync) throw new Error(`${what}; refusing to start because fsync per write is required`);
      this.log.warn(`${what}: acknowledged writes survive a process crash but can be lost in an OS crash (fsync every 2 minutes)`);
      this.sync = 'interval';
    } else {
      this.sync = wanted;
    }
    this.host = this.options.host ?? '127.0.0.1';
    this.port = this.options.port || (await freePort(this.host));
    this.monitorPort = this.options.monitorPort || (await freePort(this.host));
    await mkdir(join(this.options.dataDir, 'jetstream'), { recursive: true, mode: 0o700 });
    const configPath = join(this.options.dataDir, 'nats-server.conf');
    await writeFile(configPath, this.config(), { mode: 0o600 });
    this.log.info(
      { version: this.version.text, url: this.url, sync: this.sync },
      `nats-server ${this.version.text} on ${this.url}; durability: ${
        this.sync === 'always' ? 'every write fsynced before it is acknowledged' : 'writes acknowledged before fsync (fsync every 2 minutes)'
      }`,
    );
    await this.launch(binary, configPath);
    this.supervising = this.supervise(binary, configPath);
  }

  /** Stops the server (SIGTERM, then SIGKILL after `timeoutMs`) and its supervision. */
  async stop(timeoutMs = 10_000): Promise<void> {
    this.stopping = true;
    this.stopController.abort();
    await this.terminate(timeoutMs);
    await this.supervising;
  }

  /** Sends `signal` to the server process (tests use SIGKILL to prove durability and restarts). */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.child?.kill(signal);
  }

  /** Resolves once the server answers as ready (after a restart, for example). */
  async waitReady(timeoutMs = this.options.readyTimeoutMs ?? 20_000, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (signal?.aborted) throw new Error('stopped waiting for nats-server');
      try {
        const res = await fetch(`http://${this.host}:${this.monitorPort}/healthz?js-enabled-only=true`);
        await res.text();
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        throw new Error(`nats-server did not become ready within ${timeoutMs} ms; last output:\n${this.lines.slice(-10).join('\n')}`);
      }
      await delay(50, signal);
    }
  }

  private config(): string {
    const o = this.options;
    const lines = [
      `server_name: ${JSON.stringify(o.name ?? `kubernel-${this.port}`)}`,
      `listen: "${this.host}:${this.port}"`,
      `http: "${this.host}:${this.monitorPort}"`,
      `max_payload: ${o.maxPayloadBytes ?? 8 * 1024 * 1024}`,
      `max_pending: ${64 * 1024 * 1024}`,
      'jetstream {',
      `  store_dir: ${JSON.stringify(join(o.dataDir, 'jetstream'))}`,
      ...(this.sync === 'always' ? ['  sync_interval: always'] : []),
      '}',
    ];
    if (o.token) lines.push(`authorization { token: ${JSON.stringify(o.token)} }`);
    if (o.cluster) {
      lines.push(
        'cluster {',
        `  name: ${JSON.stringify(o.cluster.name)}`,
        `  listen: "${this.host}:${o.cluster.port}"`,
        `  routes: [${o.cluster.routes.map((r) => JSON.stringify(r)).join(', ')}]`,
        '}',
      );
    }
    return lines.join('\n') + '\n';
  }

  private async launch(binary: string, configPath: string): Promise<void> {
    const child = spawn(binary, ['-c', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        this.lines.push(line);
        if (this.lines.length > 200) this.lines.splice(0, 100);
        const m = /\[(DBG|TRC|INF|WRN|ERR|FTL)\] (.*)$/.exec(line);
        this.log[m ? LEVELS[m[1]!]! : 'info']({ pid: child.pid }, m ? m[2]! : line);
      });
    }
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const polling = new AbortController();
    try {
      await Promise.race([
        this.waitReady(undefined, polling.signal),
        exited.then(() => {
          throw new Error(`nats-server exited during start-up; last output:\n${this.lines.slice(-10).join('\n')}`);
        }),
      ]);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    } finally {
      polling.abort();
    }
  }

  /** Restarts the server with back-off (1 s doubling to 30 s) whenever it exits unasked. */
  private async supervise(binary: string, configPath: string): Promise<void> {
    while (!this.stopping) {
      const child = this.child!;
      const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
        else child.once('exit', (c, s) => resolve({ code: c, signal: s }));
      });
      if (this.stopping) return;
      this.restarts++;
      const wait = Math.min(1000 * 2 ** Math.min(this.restarts - 1, 5), 30_000);
      this.log.error({ code, signal, restarts: this.restarts }, `nats-server exited (${signal ?? `code ${code}`}); restarting in ${wait} ms`);
      for (;;) {
        if (!(await delay(wait, this.stopController.signal))) return;
        try {
          await this.launch(binary, configPath);
          this.log.info({ restarts: this.restarts }, 'nats-server restarted');
          break;
        } catch (err) {
          this.log.error({ err }, 'nats-server restart failed; retrying');
        }
      }
    }
  }

  private async terminate(timeoutMs: number): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = new AbortController();
    const inTime = await Promise.race([exited.then(() => true), delay(timeoutMs, timer.signal).then(() => false)]);
    timer.abort();
    if (!inTime) {
      this.log.warn(`nats-server did not exit within ${timeoutMs} ms of SIGTERM; killing it`);
      child.kill('SIGKILL');
      await exited;
    }
  }
}
