/**
 * bench/apiserver: the Kubernetes API server under load, over HTTP from another process, as
 * clients see it. Per object type (1 KiB ConfigMaps, realistic Pods) and client count (1, 16,
 * 64): create, get, list and update throughput with p50/p99 latency; mutating latency at a fixed
 * 1,000 writes/s; and watch fan-out: 1,000 watchers, time from a write's acknowledgement to its
 * delivery to the last watcher. Runs `kubernel server` on its own nats-server twice: fsync per
 * write (the default) and without fsync (labelled). Reproduce: `npm run bench:apiserver`.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { LeanPool, type LeanTls } from './lean-http.js';
import { readFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { spawn, type ChildProcess } from 'node:child_process';
import { NatsServer, type SyncMode } from '@kubernel/core';
import { pino } from 'pino';
import { rssOf, runPhase, Samples, type PhaseResult } from './stats.js';

const { values: args } = parseArgs({
  options: {
    creates: { type: 'string', default: '3000' },
    gets: { type: 'string', default: '20000' },
    watchers: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '10' },
    modes: { type: 'string', default: 'always/https,always/http,interval/http' },
  },
});
const CREATES = Number(args.creates);
const GETS = Number(args.gets);
const WATCHERS = Number(args.watchers);
const PACED_SECONDS = Number(args.seconds);
const BIN = fileURLToPath(new URL('../../core/bin/kubernel.js', import.meta.url));

let base = '';
let pool: LeanPool | undefined;
let tls: LeanTls | undefined;

/**
 * One HTTP request through a pool of lean keep-alive connections (bench/src/lean-http.ts): the
 * load generator shares the two cores with the server, so it spends as little CPU as it can.
 */
async function call(method: string, path: string, body?: string, contentType = 'application/json'): Promise<{ status: number; body: string }> {
  pool ??= new LeanPool(base, 128, tls);
  return pool.request(method, path, body, contentType);
}

async function expectOk(p: Promise<{ status: number; body: string }>): Promise<string> {
  const r = await p;
  if (r.status >= 300) throw new Error(`HTTP ${r.status}: ${r.body.slice(0, 300)}`);
  return r.body;
}

const configMap = (name: string): string => {
  const o = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'bench', labels: { app: 'bench' } }, data: { payload: '' } };
  o.data.payload = 'x'.repeat(1024 - JSON.stringify(o).length);
  return JSON.stringify(o);
};

/** A Pod shaped like a typical application pod (two containers, probes, env, volumes). */
const pod = (name: string): string =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'bench', labels: { app: 'shop', tier: 'backend', 'pod-template-hash': '7d9f8c6b5' }, annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9090' } },
    spec: {
      containers: [
        {
          name: 'app',
          image: 'registry.example.com/shop/backend:2.14.3',
          ports: [{ name: 'http', containerPort: 8080 }, { name: 'metrics', containerPort: 9090 }],
          env: [{ name: 'DB_HOST', value: 'db.bench.svc' }, { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }, { name: 'LOG_LEVEL', value: 'info' }],
          resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '1', memory: '512Mi' } },
          readinessProbe: { httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 5 },
          livenessProbe: { httpGet: { path: '/livez', port: 8080 }, initialDelaySeconds: 10 },
          volumeMounts: [{ name: 'config', mountPath: '/etc/app' }, { name: 'tmp', mountPath: '/tmp' }],
        },
        { name: 'proxy', image: 'registry.example.com/envoy:1.30', ports: [{ containerPort: 15001 }], resources: { requests: { cpu: '50m', memory: '64Mi' } } },
      ],
      volumes: [{ name: 'config', configMap: { name: 'backend-config' } }, { name: 'tmp', emptyDir: {} }],
      nodeSelector: { 'kubernetes.io/os': 'linux' },
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'backend', effect: 'NoSchedule' }],
    },
  });

interface TypeResults {
  readonly kind: string;
  readonly byClients: Map<number, { create: PhaseResult; get: PhaseResult; list: PhaseResult; update: PhaseResult }>;
}

async function measureType(kind: 'configmaps' | 'pods', make: (name: string) => string): Promise<TypeResults> {
  const byClients = new Map<number, { create: PhaseResult; get: PhaseResult; list: PhaseResult; update: PhaseResult }>();
  for (const clients of [1, 16, 64]) {
    const prefix = `${kind.slice(0, 2)}-${clients}-`;
    const n = clients === 1 ? Math.min(500, CREATES) : CREATES;
    process.stderr.write(`  ${kind}, ${clients} client(s): create ${n}...\n`);
    const rvs: string[] = new Array(n);
    const create = await runPhase(n, clients, async (i) => {
      const body = await expectOk(call('POST', `/api/v1/namespaces/bench/${kind}`, make(`${prefix}${i}`)));
      rvs[i] = /"resourceVersion":"(\d+)"/.exec(body)![1]!;
    });
    const gets = clients === 1 ? Math.min(2000, GETS) : GETS;
    process.stderr.write(`  ${kind}, ${clients} client(s): get ${gets}...\n`);
    const get = await runPhase(gets, clients, (i) => expectOk(call('GET', `/api/v1/namespaces/bench/${kind}/${prefix}${i % n}`)));
    process.stderr.write(`  ${kind}, ${clients} client(s): list (limit 100) x ${clients * 20}...\n`);
    const list = await runPhase(clients * 20, clients, () => expectOk(call('GET', `/api/v1/namespaces/bench/${kind}?limit=100`)));
    process.stderr.write(`  ${kind}, ${clients} client(s): update ${n}...\n`);
    const update = await runPhase(n, clients, async (i) => {
      const o = JSON.parse(make(`${prefix}${i}`)) as { metadata: Record<string, unknown> };
      o.metadata.resourceVersion = rvs[i];
      o.metadata.labels = { ...(o.metadata.labels as object), rev: '2' };
      await expectOk(call('PUT', `/api/v1/namespaces/bench/${kind}/${prefix}${i}`, JSON.stringify(o)));
    });
    byClients.set(clients, { create, get, list, update });
  }
  return { kind, byClients };
}

/** Open-loop writes at `rate` per second for `seconds`: latency of each, measured from its scheduled start. */
async function paced(rate: number, seconds: number): Promise<{ p50: number; p99: number; achieved: number; errors: number }> {
  const samples = new Samples();
  const total = rate * seconds;
  let errors = 0;
  const started = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    inflight.push(
      (async () => {
        try {
          await expectOk(call('POST', '/api/v1/namespaces/bench/configmaps', configMap(`paced-${i}`)));
          samples.add(performance.now() - due);
        } catch {
          errors++;
        }
      })(),
    );
  }
  await Promise.all(inflight);
  const elapsed = (performance.now() - started) / 1000;
  return { p50: samples.quantile(0.5), p99: samples.quantile(0.99), achieved: total / elapsed, errors };
}

const MARKER = Buffer.from('"name":"fo-');

/** `watchers` HTTP watches; per write, time from its acknowledgement to the last watcher's receipt. */
async function fanOut(watchers: number, writes: number): Promise<{ p50: number; p99: number; connected: number }> {
  const seen = new Map<string, number>();
  const lastSeen = new Map<string, number>();
  const sockets: Socket[] = [];
  let connected = 0;
  const wakes: Array<() => void> = [];
  const { hostname, port } = new URL(base);
  const head = Buffer.from(`GET /api/v1/namespaces/fanout/configmaps?watch=true&resourceVersion=0&timeoutSeconds=600 HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAccept: application/json\r\n\r\n`);
  // Raw sockets, not an HTTP client: the load generator shares the CPU with the server, so its own
  // cost per event must stay small. Each event line names its object once; scanning the bytes
  // for that marker (chunk framing included) is all the parsing the measurement needs.
  await Promise.all(
    Array.from({ length: watchers }, () =>
      new Promise<void>((resolve, reject) => {
        const socket: Socket = tls && base.startsWith('https:')
          ? tlsConnect({ host: hostname, port: Number(port), ...tls, servername: 'localhost' }, () => socket.write(head))
          : connect({ host: hostname, port: Number(port) }, () => socket.write(head));
        let started = false;
        let carry: Buffer = Buffer.alloc(0);
        socket.on('data', (chunk: Buffer) => {
          if (!started) {
            started = true;
            if (!chunk.subarray(0, 12).toString('latin1').startsWith('HTTP/1.1 200')) return reject(new Error(`watch refused: ${chunk.toString().slice(0, 200)}`));
            connected++;
            resolve();
          }
          // A read may end inside a marker: the unscanned tail is kept for the next read.
          const data = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
          let scanned = 0;
          for (let at = data.indexOf(MARKER); at >= 0; at = data.indexOf(MARKER, scanned)) {
            let end = at + MARKER.length;
            while (end < data.length && data[end]! >= 0x30 && data[end]! <= 0x39) end++;
            if (end === data.length) break;
            scanned = end;
            const name = `fo-${data.toString('latin1', at + MARKER.length, end)}`;
            const count = (seen.get(name) ?? 0) + 1;
            seen.set(name, count);
            if (count === watchers) {
              lastSeen.set(name, performance.now());
              for (const w of wakes.splice(0)) w();
            }
          }
          carry = data.subarray(Math.max(scanned, data.length - MARKER.length - 12));
        });
        socket.on('error', reject);
        sockets.push(socket);
      }),
    ),
  );
  await new Promise((r) => setTimeout(r, 500));
  const samples = new Samples();
  for (let i = 0; i < writes; i++) {
    const name = `fo-${i}`;
    await expectOk(call('POST', '/api/v1/namespaces/fanout/configmaps', configMap(name).replace('"namespace":"bench"', '"namespace":"fanout"')));
    const acked = performance.now();
    while (!lastSeen.has(name)) await new Promise<void>((r) => wakes.push(r));
    samples.add(Math.max(0, lastSeen.get(name)! - acked));
    await new Promise((r) => setTimeout(r, 20));
  }
  for (const socket of sockets) socket.destroy();
  return { p50: samples.quantile(0.5), p99: samples.quantile(0.99), connected };
}

async function runMode(sync: SyncMode, transport: 'https' | 'http'): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'kubernel-bench-api-'));
  const logger = pino({ level: 'warn' });
  const nats = new NatsServer({ dataDir: join(dir, 'nats'), sync, token: 'bench', logger });
  await nats.start();
  writeFileSync(join(dir, 'token'), 'bench\n');
  const server: ChildProcess = spawn(process.execPath, [BIN, 'server', '--data-dir', join(dir, 'k'), '--api-port', '0', '--healthz-bind-address', '127.0.0.1:0', '--nats', nats.url, '--nats-token-file', join(dir, 'token'), '--log-level', 'warn', ...(transport === 'http' ? ['--insecure-port', '0'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  server.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 60_000;
  while (!/ready; health at/.test(out)) {
    if (Date.now() > deadline || server.exitCode !== null) throw new Error(`kubernel server did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  base = transport === 'https' ? /API server on (https:\/\/[\d.:]+);/.exec(out)![1]! : /insecure port on (http:\/\/[\d.:]+):/.exec(out)![1]!;
  const pki = join(dir, 'k', 'pki');
  tls = { ca: readFileSync(join(pki, 'ca.crt'), 'utf8'), cert: readFileSync(join(pki, 'admin.crt'), 'utf8'), key: readFileSync(join(pki, 'admin.key'), 'utf8') };
  const label = `${sync === 'always' ? `fsync per write (nats-server ${nats.version!.text})` : 'NO fsync (not durable; for comparison only)'}, ${transport === 'https' ? 'HTTPS with the admin client certificate (the default)' : 'plain HTTP on the loopback --insecure-port (no TLS)'}`;
  try {
    for (const ns of ['bench', 'fanout']) await expectOk(call('POST', '/api/v1/namespaces', JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } })));
    process.stderr.write(`mode: ${label}\n`);
    const cms = await measureType('configmaps', configMap);
    const pods = await measureType('pods', pod);
    process.stderr.write(`  paced writes: 1,000/s for ${PACED_SECONDS}s...\n`);
    const pace = await paced(1000, PACED_SECONDS);
    process.stderr.write(`  watch fan-out to ${WATCHERS} watchers...\n`);
    const fan = await fanOut(WATCHERS, 50);
    const serverRss = rssOf(server.pid);
    const natsRss = rssOf(nats.pid);
    const fmt = (r: PhaseResult): string => `${Math.round(r.opsPerSecond)}/s  ${r.p50.toFixed(1)}/${r.p99.toFixed(1)} ms`;
    const lines = [`## ${label}`, '', '| object | clients | create | get | list (limit 100) | update |', '| --- | --- | --- | --- | --- | --- |'];
    for (const t of [cms, pods]) {
      for (const [clients, r] of t.byClients) lines.push(`| ${t.kind} | ${clients} | ${fmt(r.create)} | ${fmt(r.get)} | ${fmt(r.list)} | ${fmt(r.update)} |`);
    }
    lines.push(
      '',
      `(each cell: throughput, then latency p50/p99)`,
      '',
      `- mutating latency at a fixed 1,000 creates/s for ${PACED_SECONDS}s: p50 ${pace.p50.toFixed(1)} ms, p99 ${pace.p99.toFixed(1)} ms (achieved ${Math.round(pace.achieved)}/s, ${pace.errors} errors)`,
      `- watch fan-out to ${fan.connected} watchers, write ack -> last watcher: p50 ${fan.p50.toFixed(1)} ms, p99 ${fan.p99.toFixed(1)} ms`,
      `- RSS: API server ${serverRss.rss.toFixed(0)} MiB (peak ${serverRss.peak.toFixed(0)}), nats-server ${natsRss.rss.toFixed(0)} MiB (peak ${natsRss.peak.toFixed(0)})`,
      '',
    );
    return lines;
  } finally {
    pool?.close();
    pool = undefined;
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const lines = [`# bench/apiserver on ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, Node.js ${process.version}, ${new Date().toISOString()}`, ''];
for (const mode of args.modes!.split(',')) {
  const [sync, transport = 'https'] = mode.split('/') as [SyncMode, 'https' | 'http'];
  lines.push(...(await runMode(sync, transport)));
}
lines.push('Reproduce: npm run bench:apiserver   (options: --creates N --gets N --watchers N --seconds N --modes always/https,always/http,interval/http)');
process.stdout.write(lines.join('\n') + '\n');
