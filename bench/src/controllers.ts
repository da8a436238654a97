/**
 * bench/controllers: how fast the Deployment and ReplicaSet controllers turn a 1,000-replica
 * Deployment into pods through the real API server and store, and how fast a rolling update of
 * it completes. No containers run: a "hollow kubelet" in this process acknowledges each pod at
 * once (marks it Running and Ready through the status subresource) as soon as its watch sees it.
 * Reports pods/s, the server process's CPU (API server, store client and controllers share it)
 * and RSS. Reproduce: `npm run bench:controllers` (options: --replicas N; --profile DIR writes the
 * server's V8 CPU profile there).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { spawn, type ChildProcess } from 'node:child_process';
import { NatsServer } from '@kubernel/core';
import { pino } from 'pino';
import { LeanPool, type LeanTls } from './lean-http.js';
import { rssOf } from './stats.js';

const { values: args } = parseArgs({ options: { replicas: { type: 'string', default: '1000' }, profile: { type: 'string' } } });
const REPLICAS = Number(args.replicas);
const BIN = fileURLToPath(new URL('../../core/bin/kubernel.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

/** CPU seconds (user + system) this process has used. */
function selfCpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kubernel-bench-ctl-'));
  const logger = pino({ level: 'warn' });
  const nats = new NatsServer({ dataDir: join(dir, 'nats'), sync: 'always', token: 'bench', logger });
  await nats.start();
  writeFileSync(join(dir, 'token'), 'bench\n');
  const plugin = (id: string, pkg: string): string => `        - { id: ${id}, package: "${join(ROOT, 'plugins', pkg)}", config: ${id.endsWith('controller') ? '{ workers: 5 }' : '{}'} }`;
  writeFileSync(
    join(dir, 'distribution.yaml'),
    ['apiVersion: kubernel.io/v1alpha1', 'kind: Distribution', 'metadata: { name: bench-controllers }', 'spec:', '  roles:', '    server:', '      plugins:',
      plugin('authn-x509', 'authn'), plugin('namespace-lifecycle', 'admission'), plugin('replicaset-controller', 'controllers'), plugin('deployment-controller', 'controllers'),
      '    agent: { plugins: [] }', ''].join('\n'),
  );
  const server: ChildProcess = spawn(process.execPath, [...(args.profile ? ['--cpu-prof', '--cpu-prof-dir', args.profile] : []), BIN, 'server', '--data-dir', join(dir, 'k'), '--api-port', '0', '--healthz-bind-address', '127.0.0.1:0', '--nats', nats.url, '--nats-token-file', join(dir, 'token'), '--log-level', 'warn', '--distribution', join(dir, 'distribution.yaml')], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  server.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 60_000;
  while (!/ready; health at/.test(out)) {
    if (Date.now() > deadline || server.exitCode !== null) throw new Error(`kubernel server did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const base = /API server on (https:\/\/[\d.:]+);/.exec(out)![1]!;
  const pki = join(dir, 'k', 'pki');
  const tls: LeanTls = { ca: readFileSync(join(pki, 'ca.crt'), 'utf8'), cert: readFileSync(join(pki, 'admin.crt'), 'utf8'), key: readFileSync(join(pki, 'admin.key'), 'utf8') };
  const pool = new LeanPool(base, 32, tls);
  const call = async (method: string, path: string, body?: unknown, type = 'application/json'): Promise<Json> => {
    const r = await pool.request(method, path, body === undefined ? undefined : JSON.stringify(body), type);
    if (r.status >= 300) throw new Error(`${method} ${path}: HTTP ${r.status}: ${r.body.slice(0, 200)}`);
    return JSON.parse(r.body) as Json;
  };
  try {
    await call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench' } });

    // The hollow kubelet: every pod it sees gets Running and Ready at once.
    const created = new Map<string, number>();
    const acked = new Set<string>();
    let wake: (() => void) | undefined;
    const url = new URL(base);
    const socket = tlsConnect({ host: url.hostname, port: Number(url.port), ...tls, servername: 'localhost' });
    await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    socket.write(`GET /api/v1/namespaces/bench/pods?watch=true&resourceVersion=0 HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`);
    let buffer = '';
    const ack = (pod: Json): void => {
      const t = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      pod.status = { ...pod.status, phase: 'Running', podIP: '10.244.0.2', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: t }, { type: 'ContainersReady', status: 'True', lastTransitionTime: t }] };
      void call('PUT', `/api/v1/namespaces/bench/pods/${pod.metadata.name}/status`, pod).catch(() => acked.delete(pod.metadata.uid));
    };
    socket.on('data', (d: Buffer) => {
      buffer += d.toString('latin1');
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        if (!line.startsWith('{')) continue;
        const e = JSON.parse(line) as { type: string; object: Json };
        const pod = e.object;
        if (e.type === 'ADDED' && !created.has(pod.metadata.uid)) created.set(pod.metadata.uid, performance.now());
        if (e.type !== 'DELETED' && !pod.metadata.deletionTimestamp && !acked.has(pod.metadata.uid)) {
          acked.add(pod.metadata.uid);
          ack(pod);
        }
        wake?.();
      }
    });
    const until = async (cond: () => Promise<boolean> | boolean, what: string, ms = 300_000): Promise<void> => {
      const end = Date.now() + ms;
      while (!(await cond())) {
        if (Date.now() > end) throw new Error(`timed out: ${what}`);
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 50);
        });
      }
    };
    const deployment = async (): Promise<Json> => call('GET', '/apis/apps/v1/namespaces/bench/deployments/web');
    const complete = async (image: string): Promise<boolean> => {
      const d = await deployment();
      const s = d.status ?? {};
      return d.spec.template.spec.containers[0].image === image && s.observedGeneration === d.metadata.generation && s.updatedReplicas === REPLICAS && s.availableReplicas === REPLICAS && s.replicas === REPLICAS;
    };

    process.stderr.write(`creating a ${REPLICAS}-replica Deployment...\n`);
    const cpu0 = cpuSeconds(server.pid!);
    const others0 = { nats: cpuSeconds(nats.pid!), bench: selfCpu() };
    const t0 = performance.now();
    await call('POST', '/apis/apps/v1/namespaces/bench/deployments', {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' },
      spec: { replicas: REPLICAS, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'busybox:1' }] } } },
    });
    await until(() => created.size >= REPLICAS, 'pods created');
    const createdIn = (Math.max(...created.values()) - t0) / 1000;
    const times = [...created.values()].sort((a, b) => a - b);
    const at = (n: number): string => ((times[Math.min(times.length, n) - 1]! - t0) / 1000).toFixed(2);
    await until(() => complete('busybox:1'), 'first rollout available');
    const availableIn = (performance.now() - t0) / 1000;
    const cpu1 = cpuSeconds(server.pid!);
    const others1 = { nats: cpuSeconds(nats.pid!), bench: selfCpu() };
    const rss1 = rssOf(server.pid);

    process.stderr.write('rolling update to a new image...\n');
    const before = created.size;
    const t1 = performance.now();
    await call('PATCH', '/apis/apps/v1/namespaces/bench/deployments/web', { spec: { template: { spec: { containers: [{ name: 'c', image: 'busybox:2' }] } } } }, 'application/strategic-merge-patch+json');
    await until(() => complete('busybox:2'), 'rolling update complete');
    await until(async () => ((await call('GET', '/api/v1/namespaces/bench/pods?labelSelector=app%3Dweb')).items as Json[]).length === REPLICAS, 'old pods gone');
    const rolledIn = (performance.now() - t1) / 1000;
    const cpu2 = cpuSeconds(server.pid!);
    const others2 = { nats: cpuSeconds(nats.pid!), bench: selfCpu() };
    const rss2 = rssOf(server.pid);
    socket.destroy();
    // Where the API server's work went: requests by verb and resource over both phases.
    const health = /health at (http:\/\/[\d.:]+)\/readyz/.exec(out)![1]!;
    const metrics = await (await fetch(`${health}/metrics`)).text();
    const requests = new Map<string, number>();
    for (const m of metrics.matchAll(/^apiserver_request_total\{([^}]*)\} (\d+)/gm)) {
      const l = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
      if (l.verb === 'WATCH' || l.verb === 'GET' || l.verb === 'LIST') continue;
      const k = `${l.verb} ${l.resource}${l.subresource ? `/${l.subresource}` : ''}`;
      requests.set(k, (requests.get(k) ?? 0) + Number(m[2]));
    }

    const lines = [
      `bench/controllers: ${REPLICAS}-replica Deployment, nats-server ${nats.version!.text} with fsync per write, HTTPS, pods acknowledged at once by an in-process hollow kubelet`,
      `  create: ${REPLICAS} pods created in ${createdIn.toFixed(2)} s = ${Math.round(REPLICAS / createdIn)} pods/s (target >= 500 pods/s); all available after ${availableIn.toFixed(2)} s`,
      `          first pod after ${at(1)} s, 100th ${at(100)} s, 500th ${at(500)} s, ${REPLICAS}th ${at(REPLICAS)} s`,
      `          server CPU ${(cpu1 - cpu0).toFixed(1)} s (${((cpu1 - cpu0) / availableIn).toFixed(2)} cores), RSS ${rss1.rss.toFixed(0)} MiB (peak ${rss1.peak.toFixed(0)}); nats-server CPU ${(others1.nats - others0.nats).toFixed(1)} s, bench process (hollow kubelet) ${(others1.bench - others0.bench).toFixed(1)} s`,
      `  rolling update (maxSurge 25%, maxUnavailable 25%): ${created.size - before} new pods, complete in ${rolledIn.toFixed(2)} s = ${Math.round(REPLICAS / rolledIn)} pods replaced/s`,
      `          server CPU ${(cpu2 - cpu1).toFixed(1)} s (${((cpu2 - cpu1) / rolledIn).toFixed(2)} cores), RSS ${rss2.rss.toFixed(0)} MiB (peak ${rss2.peak.toFixed(0)}); nats-server CPU ${(others2.nats - others1.nats).toFixed(1)} s, bench process ${(others2.bench - others1.bench).toFixed(1)} s`,
      '  (the server process holds the API server, the store client and both controllers; the hollow kubelet and this client run in the bench process)',
      `  writes served: ${[...requests].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ')}`,
      `  reproduce: npm run bench:controllers -- --replicas ${REPLICAS}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    pool.close();
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
