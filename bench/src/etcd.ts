import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { freePort } from '@kubernel/core';

const PROTO = fileURLToPath(new URL('../proto/etcd.proto', import.meta.url));

type Callback<T> = (err: grpc.ServiceError | null, res: T) => void;
interface Header { revision: number }
interface KV {
  Range(req: object, cb: Callback<{ header: Header; kvs: Array<{ key: Buffer; value: Buffer; mod_revision: number }>; count: number }>): void;
  Txn(req: object, cb: Callback<{ header: Header; succeeded: boolean }>): void;
}
interface WatchResponse { created: boolean; canceled: boolean; events: Array<{ type: string; kv: { key: Buffer; mod_revision: number } }> }

/** An etcd 3.4 server started for the benchmark, on loopback, with a gRPC client. */
export class Etcd {
  private constructor(
    private readonly child: ChildProcess,
    private readonly kv: KV,
    private readonly watchClient: grpc.Client & { Watch(): grpc.ClientDuplexStream<object, WatchResponse> },
    readonly version: string,
  ) {}

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Starts `etcd` (Debian's etcd-server) with its data dir in `dataDir`; waits until it answers. */
  static async start(dataDir: string): Promise<Etcd> {
    const client = await freePort();
    const peer = await freePort();
    const child = spawn(
      'etcd',
      [
        '--name', 'bench',
        '--data-dir', dataDir,
        '--listen-client-urls', `http://127.0.0.1:${client}`,
        '--advertise-client-urls', `http://127.0.0.1:${client}`,
        '--listen-peer-urls', `http://127.0.0.1:${peer}`,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
        '--initial-cluster', `bench=http://127.0.0.1:${peer}`,
        '--quota-backend-bytes', String(8 * 1024 ** 3),
        '--logger', 'zap',
        '--log-level', 'error',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const pkg = grpc.loadPackageDefinition(
      protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true }),
    ) as unknown as { etcdserverpb: { KV: grpc.ServiceClientConstructor; Watch: grpc.ServiceClientConstructor } };
    const options = { 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 };
    const kv = new pkg.etcdserverpb.KV(`127.0.0.1:${client}`, grpc.credentials.createInsecure(), options) as unknown as KV;
    const watch = new pkg.etcdserverpb.Watch(`127.0.0.1:${client}`, grpc.credentials.createInsecure(), options);
    const etcd = new Etcd(child, kv, watch as never, await etcdVersion());
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await etcd.range('/probe/');
        return etcd;
      } catch (err) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`etcd did not start: ${String(err)}\n${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  private call<T>(fn: (cb: Callback<T>) => void): Promise<T> {
    return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))));
  }

  /** Creates `key` if absent (the Kubernetes create: a Txn on mod_revision == 0). Resolves to the revision. */
  async create(key: string, value: Buffer): Promise<number> {
    const res = await this.call<{ header: Header; succeeded: boolean }>((cb) =>
      this.kv.Txn({ compare: [{ result: 'EQUAL', target: 'MOD', key: Buffer.from(key), mod_revision: 0 }], success: [{ request_put: { key: Buffer.from(key), value } }] }, cb),
    );
    if (!res.succeeded) throw new Error(`${key} exists`);
    return res.header.revision;
  }

  /** Replaces `key` if still at `revision` (the Kubernetes update). Resolves to the new revision. */
  async cas(key: string, value: Buffer, revision: number): Promise<number> {
    const res = await this.call<{ header: Header; succeeded: boolean }>((cb) =>
      this.kv.Txn({ compare: [{ result: 'EQUAL', target: 'MOD', key: Buffer.from(key), mod_revision: revision }], success: [{ request_put: { key: Buffer.from(key), value } }] }, cb),
    );
    if (!res.succeeded) throw new Error(`${key} conflict`);
    return res.header.revision;
  }

  /** Reads every key under `prefix` (linearizable, like a Kubernetes list from etcd); resolves to the count. */
  async range(prefix: string): Promise<number> {
    const end = Buffer.from(prefix);
    end[end.length - 1]! += 1;
    const res = await this.call<{ kvs: unknown[] }>((cb) => this.kv.Range({ key: Buffer.from(prefix), range_end: end }, cb));
    return res.kvs.length;
  }

  /** Watches `prefix`; calls `onEvent` with each event's mod revision. Resolves once created. */
  async watch(prefix: string, onEvent: (revision: number) => void): Promise<() => void> {
    const end = Buffer.from(prefix);
    end[end.length - 1]! += 1;
    const stream = this.watchClient.Watch();
    const created = new Promise<void>((resolve) => {
      stream.on('data', (res: WatchResponse) => {
        if (res.created) resolve();
        for (const e of res.events) onEvent(e.kv.mod_revision);
      });
    });
    stream.on('error', () => undefined);
    stream.write({ create_request: { key: Buffer.from(prefix), range_end: end } });
    await created;
    return () => stream.cancel();
  }

  async stop(): Promise<void> {
    (this.kv as unknown as grpc.Client).close();
    this.watchClient.close();
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await exited;
  }
}

async function etcdVersion(): Promise<string> {
  const child = spawn('etcd', ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((r) => child.once('exit', r));
  return /etcd Version: (\S+)/.exec(out)?.[1] ?? 'unknown';
}
