import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KUBERNEL_BIN } from './paths.js';
import { run, start, type Finished, type Started } from './processes.js';

/** A `kubernel server` process for one test file, with kubectl wired to it. */
export interface TestCluster {
  readonly dataDir: string;
  readonly kubeconfig: string;
  /** The API server's base URL. */
  readonly url: string;
  /** The embedded nats-server's URL (for a second API server on the same store). */
  readonly natsUrl: string;
  readonly process: Started;
  /** Runs the real kubectl against the cluster. */
  kubectl(args: readonly string[], input?: string): Promise<Finished>;
  /** Like kubectl(), but rejects unless it exits 0; resolves to stdout. */
  ok(args: readonly string[], input?: string): Promise<string>;
  /** Raw HTTP against the API server. */
  request(method: string, path: string, body?: string | Buffer, headers?: Record<string, string>): Promise<{ status: number; body: string; json: () => Record<string, unknown>; headers: Headers }>;
  stop(): Promise<void>;
}

/** Starts `kubernel server` on a free port with an embedded nats-server (or `extra` flags). */
export async function startCluster(extra: readonly string[] = [], dataDir = mkdtempSync(join(tmpdir(), 'kubernel-cluster-'))): Promise<TestCluster> {
  const proc = start(process.execPath, [KUBERNEL_BIN, 'server', '--data-dir', dataDir, '--api-port', '0', '--healthz-bind-address', '127.0.0.1:0', ...extra]);
  const [, url] = await proc.waitFor(/API server on (http:\/\/[\d.:]+);/, 30_000);
  await proc.waitFor(/ready; health at/, 30_000);
  const nats = /on (nats:\/\/[\d.:]+),/.exec(proc.stdout())?.[1] ?? '';
  const kubeconfig = join(dataDir, 'kubeconfig');
  const kubectl = (args: readonly string[], input?: string): Promise<Finished> => {
    if (input === undefined) return run('kubectl', args, { KUBECONFIG: kubeconfig });
    const file = join(dataDir, `input-${Date.now()}-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, input);
    return run('kubectl', args.map((a) => (a === '-' ? file : a)), { KUBECONFIG: kubeconfig });
  };
  return {
    dataDir,
    kubeconfig,
    url: url!,
    natsUrl: nats,
    process: proc,
    kubectl,
    async ok(args, input) {
      const r = await kubectl(args, input);
      if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
      return r.stdout;
    },
    async request(method, path, body, headers = {}) {
      const res = await fetch(`${url}${path}`, { method, headers: { 'content-type': 'application/json', ...headers }, ...(body !== undefined ? { body } : {}) });
      const text = await res.text();
      return { status: res.status, body: text, json: () => JSON.parse(text) as Record<string, unknown>, headers: res.headers };
    },
    async stop() {
      if (proc.child.exitCode === null) {
        proc.child.kill('SIGTERM');
        await proc.exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
