import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import type { IncomingMessage } from 'node:http';
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
  /** The cluster CA and the admin's client certificate (PEM), from the server's PKI directory. */
  readonly tls: Credentials;
  /** Raw HTTPS against the API server, as the admin unless `credentials` say otherwise. */
  request(method: string, path: string, body?: string | Buffer, headers?: Record<string, string>, credentials?: Partial<Credentials>): Promise<HttpResult>;
  /** Opens a streaming GET (watches) as the admin; abort `signal` to close it. */
  open(path: string, signal: AbortSignal): Promise<IncomingMessage>;
  /** Stops the server; removes the data dir unless `keepData`. */
  stop(keepData?: boolean): Promise<void>;
}

/** TLS material for a client: the CA to trust and, optionally, a client certificate and key. */
export interface Credentials {
  readonly ca: string;
  readonly cert?: string;
  readonly key?: string;
}

/** A finished HTTP exchange. */
export interface HttpResult {
  readonly status: number;
  readonly body: string;
  json(): Record<string, unknown>;
  readonly headers: Headers;
}

/** One HTTPS request with the given TLS material (no connection reuse). */
export function httpsCall(url: string, method: string, credentials: Partial<Credentials>, body?: string | Buffer, headers: Record<string, string> = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    // An explicit length: Node frames the body of a DELETE only with one.
    const length = body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) };
    const req = httpsRequest(url, { method, headers: { 'content-type': 'application/json', ...length, ...headers }, ...credentials, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) for (const x of Array.isArray(v) ? v : v === undefined ? [] : [v]) h.append(k, x);
        resolve({ status: res.statusCode ?? 0, body: text, json: () => JSON.parse(text) as Record<string, unknown>, headers: h });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Starts `kubernel server` on a free port with an embedded nats-server (or `extra` flags). */
export async function startCluster(extra: readonly string[] = [], dataDir = mkdtempSync(join(tmpdir(), 'kubernel-cluster-'))): Promise<TestCluster> {
  const proc = start(process.execPath, [KUBERNEL_BIN, 'server', '--data-dir', dataDir, '--api-port', '0', '--healthz-bind-address', '127.0.0.1:0', ...extra]);
  const [, url] = await proc.waitFor(/API server on (https:\/\/[\d.:]+);/, 30_000);
  await proc.waitFor(/ready; health at/, 30_000);
  const nats = /on (nats:\/\/[\d.:]+),/.exec(proc.stdout())?.[1] ?? '';
  const kubeconfig = join(dataDir, 'kubeconfig');
  const certDir = extra.includes('--cert-dir') ? extra[extra.indexOf('--cert-dir') + 1]! : join(dataDir, 'pki');
  const tls: Credentials = { ca: readFileSync(join(certDir, 'ca.crt'), 'utf8'), cert: readFileSync(join(certDir, 'admin.crt'), 'utf8'), key: readFileSync(join(certDir, 'admin.key'), 'utf8') };
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
    tls,
    request(method, path, body, headers = {}, credentials) {
      return httpsCall(`${url}${path}`, method, credentials ? { ca: tls.ca, ...credentials } : tls, body, headers);
    },
    open(path, signal) {
      return new Promise<IncomingMessage>((resolve, reject) => {
        const req = httpsRequest(`${url}${path}`, { ...tls, agent: false, signal }, resolve);
        req.on('error', reject);
        req.end();
      });
    },
    async stop(keepData = false) {
      if (proc.child.exitCode === null) {
        proc.child.kill('SIGTERM');
        await proc.exited;
      }
      if (!keepData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
