/**
 * bench/scheduler, after Kubernetes' scheduler_perf: hollow clusters of Node objects (no agents),
 * pods created through the API server, and the scheduler's throughput measured as pods bound per
 * second through the real API server and store.
 *
 * Each run starts a nats-server (fsync per write) and an API server without a scheduler, creates
 * the nodes and all the pods of the workload (so creation never limits the scheduler), then starts
 * a second `kubernel server` on the same store whose distribution holds only the scheduler and its
 * plugins: it lists the pending pods and binds them through its own API server. A watch on that
 * API server timestamps every binding as its watch cache applies it (a watch through the first
 * server, which follows the store from another process, delivered them in bursts; polling the
 * scheduler's metrics was answered late while it was busy); a list on the first server then checks
 * that no pod is left without a node. Reported per workload: median of the runs' throughput (bound pods / time from the
 * first to the last binding), the scheduler process's CPU over that window and its peak RSS, and
 * the scheduling-attempt p99 from its `scheduler_scheduling_attempt_duration_seconds` histogram.
 *
 * Reproduce: `npm run bench:scheduler` (options: --runs N, --nodes N, --workloads a,b).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect as tlsConnect } from 'node:tls';
import { NatsServer } from '@kubernel/core';
import { pino } from 'pino';
import { LeanPool, type LeanTls } from './lean-http.js';
import { rssOf, runPhase } from './stats.js';

const { values: args } = parseArgs({ options: { runs: { type: 'string', default: '3' }, nodes: { type: 'string', default: '5000' }, workloads: { type: 'string', default: 'basic,anti-affinity,topology-spread,node-affinity' } } });
const RUNS = Number(args.runs);
const NODES = Number(args.nodes);
const BIN = fileURLToPath(new URL('../../core/bin/kubernel.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

/** One scheduler_perf-like workload. */
interface Workload {
  readonly name: string;
  readonly title: string;
  readonly pods: number;
  /** Kubernetes' CI floor for it (pods/s) and this project's target. */
  readonly floor: number;
  readonly target: number;
  node(i: number): Json;
  pod(i: number): Json;
}

const ZONES = ['zone1', 'zone2', 'zone3'];
const node = (i: number, labels: Record<string, string> = {}): Json => {
  const name = `hollow-${String(i).padStart(5, '0')}`;
  const allocatable = { cpu: '4', memory: '32Gi', pods: '110' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } },
    status: { allocatable, capacity: allocatable, conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'hollow node' }] },
  };
};
const pod = (name: string, labels: Record<string, string>, spec: Json = {}): Json => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, labels },
  spec: { containers: [{ name: 'pause', image: 'registry.k8s.io/pause:3.9', resources: { requests: { cpu: '100m', memory: '500Mi' } } }], ...spec },
});

const WORKLOADS: readonly Workload[] = [
  { name: 'basic', title: 'SchedulingBasic', pods: 10_000, floor: 680, target: 1000, node: (i) => node(i), pod: (i) => pod(`basic-${i}`, { app: 'basic' }) },
  {
    name: 'anti-affinity',
    title: 'required pod anti-affinity',
    pods: 1000,
    floor: 60,
    target: 200,
    node: (i) => node(i),
    pod: (i) => pod(`anti-${i}`, { color: 'green' }, { affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'kubernetes.io/hostname', labelSelector: { matchExpressions: [{ key: 'color', operator: 'In', values: ['green'] }] } }] } } }),
  },
  {
    name: 'topology-spread',
    title: 'required topology spreading',
    pods: 5000,
    floor: 460,
    target: 600,
    node: (i) => node(i, { 'topology.kubernetes.io/zone': ZONES[i % ZONES.length]! }),
    pod: (i) => pod(`spread-${i}`, { app: 'spread' }, { topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: { app: 'spread' } } }] }),
  },
  {
    name: 'node-affinity',
    title: 'node affinity',
    pods: 5000,
    floor: 220,
    target: 500,
    node: (i) => node(i, { 'topology.kubernetes.io/zone': i % 2 === 0 ? 'zone1' : 'zone2' }),
    pod: (i) => pod(`affinity-${i}`, { app: 'affinity' }, { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['zone1'] }] }] } } } }),
  },
];

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Starts `kubernel server` with `distribution`; resolves with the process and its URLs once ready. */
async function startServer(dir: string, name: string, natsUrl: string, distribution: string, certDir?: string): Promise<{ proc: ChildProcess; url: string; health: string }> {
  const proc = spawn(process.execPath, [BIN, 'server', '--data-dir', join(dir, name), '--api-port', '0', '--healthz-bind-address', '127.0.0.1:0', '--nats', natsUrl, '--nats-token-file', join(dir, 'token'), '--log-level', 'warn', '--distribution', distribution, ...(certDir ? ['--cert-dir', certDir] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 60_000;
  while (!/ready; health at/.test(out)) {
    if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`kubernel server (${name}) did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { proc, url: /API server on (https:\/\/[\d.:]+);/.exec(out)![1]!, health: /health at (http:\/\/[\d.:]+)\/readyz/.exec(out)![1]! };
}

function distribution(dir: string, file: string, withScheduler: boolean): string {
  const plugin = (id: string, pkg: string): string => `        - { id: ${id}, package: "${join(ROOT, 'plugins', pkg)}" }`;
  const framework = JSON.parse(readFileSync(join(ROOT, 'plugins', 'scheduler-default', 'package.json'), 'utf8')).kubernel.plugins as string[];
  const lines = ['apiVersion: kubernel.io/v1alpha1', 'kind: Distribution', `metadata: { name: ${file} }`, 'spec:', '  roles:', '    server:', '      plugins:', plugin('authn-x509', 'authn')];
  if (withScheduler) for (const id of framework) lines.push(plugin(id, 'scheduler-default'));
  lines.push('    agent: { plugins: [] }', '');
  const path = join(dir, `${file}.yaml`);
  writeFileSync(path, lines.join('\n'));
  return path;
}

/** The p99 of a Prometheus histogram (upper bound of the bucket holding it), from metrics text. */
function histogramP99(metrics: string, name: string, labels: string): number {
  const buckets: Array<[number, number]> = [];
  for (const m of metrics.matchAll(new RegExp(`^${name}_bucket\\{([^}]*)\\} (\\d+)`, 'gm'))) {
    if (!m[1]!.includes(labels)) continue;
    const le = /le="([^"]+)"/.exec(m[1]!)![1]!;
    buckets.push([le === '+Inf' ? Infinity : Number(le), Number(m[2])]);
  }
  buckets.sort((a, b) => a[0] - b[0]);
  const total = buckets.at(-1)?.[1] ?? 0;
  for (const [le, n] of buckets) if (n >= 0.99 * total) return le;
  return NaN;
}

interface RunResult {
  readonly podsPerSecond: number;
  readonly cpu: number;
  readonly rss: number;
  readonly p99: number;
  readonly seconds: number;
}

async function runOnce(w: Workload): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-scheduler-'));
  const logger = pino({ level: 'warn' });
  const nats = new NatsServer({ dataDir: join(dir, 'nats'), sync: 'always', token: 'bench', logger });
  await nats.start();
  writeFileSync(join(dir, 'token'), 'bench\n');
  const servers: ChildProcess[] = [];
  let pool: LeanPool | undefined;
  try {
    const api = await startServer(dir, 'api', nats.url, distribution(dir, 'api', false));
    servers.push(api.proc);
    const pki = join(dir, 'api', 'pki');
    const tls: LeanTls = { ca: readFileSync(join(pki, 'ca.crt'), 'utf8'), cert: readFileSync(join(pki, 'admin.crt'), 'utf8'), key: readFileSync(join(pki, 'admin.key'), 'utf8') };
    pool = new LeanPool(api.url, 32, tls);
    const call = async (method: string, path: string, body?: unknown): Promise<void> => {
      const r = await pool!.request(method, path, body === undefined ? undefined : JSON.stringify(body), 'application/json');
      if (r.status >= 300) throw new Error(`${method} ${path}: HTTP ${r.status}: ${r.body.slice(0, 300)}`);
    };
    process.stderr.write(`  ${w.name}: creating ${NODES} nodes and ${w.pods} pods...\n`);
    await runPhase(NODES, 32, (i) => call('POST', '/api/v1/nodes', w.node(i)));
    await runPhase(w.pods, 32, (i) => call('POST', '/api/v1/namespaces/default/pods', w.pod(i)));

    // The bench holds the scheduler's Lease until its watch is open, so that every binding
    // happens while it watches (the scheduler waits as a standby, as a second replica would).
    const micro = new Date().toISOString().replace('Z', '000Z');
    await call('POST', '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases', { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'kube-scheduler' }, spec: { holderIdentity: 'bench', leaseDurationSeconds: 3600, acquireTime: micro, renewTime: micro } });
    process.stderr.write(`  ${w.name}: starting the scheduler...\n`);
    const sched = await startServer(dir, 'scheduler', nats.url, distribution(dir, 'scheduler', true), pki);
    servers.push(sched.proc);
    // Every binding, timestamped from a watch on the scheduler's own API server (the one it
    // binds through: its watch cache sees each binding as soon as the store acknowledges it).
    const bound = new Map<string, number>();
    const su = new URL(sched.url);
    const socket = tlsConnect({ host: su.hostname, port: Number(su.port), ...tls, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    socket.write(`GET /api/v1/namespaces/default/pods?watch=true&resourceVersion=0 HTTP/1.1\r\nHost: ${su.host}\r\n\r\n`);
    let buffer = '';
    let first: number | undefined;
    let cpu0 = 0;
    let watching = false;
    socket.on('data', (d: Buffer) => {
      buffer += d.toString('latin1');
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (!line.startsWith('{')) continue;
        const o = (JSON.parse(line) as { object: Json }).object;
        watching = true;
        if (!o.spec?.nodeName || bound.has(o.metadata.uid)) continue;
        const now = performance.now();
        if (first === undefined) {
          first = now;
          cpu0 = cpuSeconds(sched.proc.pid!);
        }
        bound.set(o.metadata.uid, now);
      }
    });
    // The watch's initial state has arrived (every pod, none bound) once a pod was seen; then hand the Lease over.
    while (!watching) await new Promise((r) => setTimeout(r, 20));
    if (bound.size > 0) throw new Error(`${w.name}: pods were bound before the scheduler held its Lease`);
    await call('DELETE', '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-scheduler');
    const deadline = Date.now() + 600_000;
    let lastCount = -1;
    let stalledSince = Date.now();
    while (bound.size < w.pods) {
      if (Date.now() > deadline) throw new Error(`${w.name}: ${bound.size}/${w.pods} pods bound after 10 minutes`);
      if (bound.size !== lastCount) {
        lastCount = bound.size;
        stalledSince = Date.now();
      } else if (Date.now() - stalledSince > 30_000) throw new Error(`${w.name}: stuck at ${bound.size}/${w.pods} pods bound`);
      await new Promise((r) => setTimeout(r, 20));
    }
    socket.destroy();
    const last = { text: await (await fetch(`${sched.health}/metrics`)).text() };
    const seconds = (Math.max(...bound.values()) - first!) / 1000;
    const cpu = cpuSeconds(sched.proc.pid!) - cpu0;
    const rss = rssOf(sched.proc.pid).peak;
    const p99 = histogramP99(last.text, 'scheduler_scheduling_attempt_duration_seconds', 'result="scheduled"');
    // Every pod is bound in the store, as the other API server sees it.
    const pending = await pool.request('GET', '/api/v1/namespaces/default/pods?fieldSelector=spec.nodeName%3D&limit=1', undefined, 'application/json');
    const left = (JSON.parse(pending.body) as { items: unknown[] }).items.length;
    if (left !== 0) throw new Error(`${w.name}: ${bound.size} bindings seen, but pods without a node remain`);
    return { podsPerSecond: w.pods / seconds, cpu, rss, p99: p99 * 1000, seconds };
  } finally {
    pool?.close();
    for (const s of servers.reverse()) {
      s.kill('SIGTERM');
      await new Promise((r) => s.once('exit', r));
    }
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const chosen = WORKLOADS.filter((w) => args.workloads!.split(',').includes(w.name));
const lines: string[] = [`bench/scheduler: ${NODES} hollow nodes, pods bound through the API server (nats-server with fsync per write), median of ${RUNS} runs`];
for (const w of chosen) {
  const runs: RunResult[] = [];
  for (let r = 0; r < RUNS; r++) {
    const result = await runOnce(w);
    process.stderr.write(`  ${w.name} run ${r + 1}: ${Math.round(result.podsPerSecond)} pods/s\n`);
    runs.push(result);
  }
  const pps = median(runs.map((x) => x.podsPerSecond));
  lines.push(
    `  ${w.title} (${w.pods} pods): ${Math.round(pps)} pods/s (runs: ${runs.map((x) => Math.round(x.podsPerSecond)).join(', ')}); Kubernetes' floor ${w.floor} pods/s (x${(pps / w.floor).toFixed(2)}), target >= ${w.target}: ${pps >= w.target ? 'met' : 'NOT met'}`,
    `      scheduler process CPU ${median(runs.map((x) => x.cpu)).toFixed(1)} s (${(median(runs.map((x) => x.cpu)) / median(runs.map((x) => x.seconds))).toFixed(2)} cores), peak RSS ${Math.round(median(runs.map((x) => x.rss)))} MiB, scheduling attempt p99 <= ${median(runs.map((x) => x.p99))} ms`,
  );
}
lines.push(`  reproduce: npm run bench:scheduler -- --runs ${RUNS} --nodes ${NODES} --workloads ${chosen.map((w) => w.name).join(',')}`);
process.stdout.write(`${lines.join('\n')}\n`);
