/**
 * bench/agent: pod startup latency on a real single-node cluster, the Kubernetes SLI ("pod
 * creation to all its containers started, observed via watch"), with `kubernel up` (embedded
 * nats-server with fsync per write, API server, controllers, scheduler, node agent, managed
 * containerd with the local busybox image: no pull).
 *
 * - sequential: 20 pods, one at a time (create, wait until the watch shows every container
 *   running, next), latency per pod from the create request to that watch event;
 * - burst: 30 pods created at once; each pod's latency and the time until all 30 run;
 * - idle: with those 30 pods running, the CPU and RSS of the `kubernel up` process (API server,
 *   store client, controllers, scheduler and agent share it) and of its containerd over 20 s.
 *
 * Targets (issue 8): sequential p50 <= 0.8 s and p99 <= 1.5 s; 30 at once all running within 8 s.
 * Reproduce: `npm run bench:agent` as root (options: --sequential N, --burst N, --keep to leave
 * the data dir for inspection, --profile DIR for a V8 CPU profile of `kubernel up`).
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { ApiClient, type KubeObject, type WatchEvent } from '@kubernel/sdk';
import { rssOf, Samples } from './stats.js';

const { values: args } = parseArgs({ options: { sequential: { type: 'string', default: '20' }, burst: { type: 'string', default: '30' }, keep: { type: 'boolean', default: false }, profile: { type: 'string' } } });
const SEQUENTIAL = Number(args.sequential);
const BURST = Number(args.burst);
const BIN = fileURLToPath(new URL('../../core/bin/kubernel.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BRIDGE = 'kbbench0';
const CGROUP_ROOT = 'kubernel-bench';
const IMAGE = 'docker.io/kubernel/busybox:1.35';
const NS = 'bench';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The pid of the containerd whose command line mentions `dir`, if any. */
function containerdPid(dir: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cmd[0]?.endsWith('containerd') && cmd.some((a) => a.startsWith(dir))) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

const allRunning = (pod: Json): boolean => {
  const cs = (pod.status?.containerStatuses ?? []) as Json[];
  return cs.length > 0 && cs.length === (pod.spec?.containers ?? []).length && cs.every((c) => c.state?.running !== undefined);
};

const fmt = (ms: number): string => `${(ms / 1000).toFixed(3)} s`;

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/agent runs containers through containerd: run it as root');
  const dir = mkdtempSync(join(tmpdir(), 'kubernel-bench-agent-'));
  // The default distribution, on a bridge and cgroup root of its own (nothing else on the machine is touched).
  const distribution = join(dir, 'distribution.yaml');
  writeFileSync(distribution, readFileSync(join(ROOT, 'distributions', 'default.yaml'), 'utf8').replace('bridgeName: kubernel0', `bridgeName: ${BRIDGE}`));
  const up: ChildProcess = spawn(process.execPath, [...(args.profile ? ['--cpu-prof', '--cpu-prof-dir', args.profile] : []), BIN, 'up', '--data-dir', join(dir, 'k'), '--distribution', distribution, '--api-port', '0', '--healthz-bind-address', '127.0.0.1:0', '--pod-cidr', '10.250.7.0/24', '--cgroup-root', CGROUP_ROOT, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  up.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 120_000;
  while (!/ready; health at/.test(out)) {
    if (Date.now() > deadline || up.exitCode !== null) throw new Error(`kubernel up did not start:\n${out}`);
    await sleep(100);
  }
  const base = /API server on (https:\/\/[\d.:]+);/.exec(out)![1]!;
  const pki = join(dir, 'k', 'pki');
  const api = new ApiClient({ server: base, ca: readFileSync(join(pki, 'ca.crt'), 'utf8'), cert: readFileSync(join(pki, 'admin.crt'), 'utf8'), key: readFileSync(join(pki, 'admin.key'), 'utf8') });
  const socket = join(dir, 'k', 'plugins', 'cri-containerd', 'state', 'containerd.sock');
  /** Every container (sandboxes included) containerd has in the CRI namespace. */
  const criIds = (): string[] => execFileSync('ctr', ['--address', socket, '-n', 'k8s.io', 'containers', 'ls', '-q'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  const watchAbort = new AbortController();
  const runningAt = new Map<string, number>();
  const boundAt = new Map<string, number>();
  const gone = new Set<string>();
  let wake: (() => void) | undefined;
  const until = async (cond: () => boolean | Promise<boolean>, what: string, ms = 120_000): Promise<void> => {
    const end = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > end) throw new Error(`timed out: ${what}`);
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 20);
      });
    }
  };
  try {
    process.stderr.write('waiting for the node to be Ready...\n');
    await until(async () => {
      const nodes = await api.list<Json>('/api/v1/nodes');
      return nodes.items.some((n) => (n.status?.conditions ?? []).some((c: Json) => c.type === 'Ready' && c.status === 'True'));
    }, 'node Ready');
    await api.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    await until(async () => {
      try {
        await api.get(`/api/v1/namespaces/${NS}/serviceaccounts/default`);
        return true;
      } catch {
        return false;
      }
    }, 'default service account');
    const list = await api.list<Json>(`/api/v1/namespaces/${NS}/pods`);
    void api.watch(`/api/v1/namespaces/${NS}/pods`, list.metadata?.resourceVersion ?? '0', (e: WatchEvent) => {
      const pod = e.object as Json;
      const name = pod.metadata?.name as string;
      if (e.type === 'DELETED') gone.add(name);
      else {
        if (!boundAt.has(name) && pod.spec?.nodeName) boundAt.set(name, performance.now());
        if (!runningAt.has(name) && allRunning(pod)) runningAt.set(name, performance.now());
      }
      wake?.();
    }, watchAbort.signal).catch(() => undefined);

    const podBody = (name: string): KubeObject => ({
      apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { bench: 'agent' } },
      spec: { terminationGracePeriodSeconds: 0, containers: [{ name: 'c', image: IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sleep', '3600'] }] },
    });

    // Warm-up pod (not measured): the first sandbox pays one-off costs (CNI, image unpack).
    await api.create(`/api/v1/namespaces/${NS}/pods`, podBody('warmup'));
    await until(() => runningAt.has('warmup'), 'warm-up pod running');

    process.stderr.write(`sequential: ${SEQUENTIAL} pods, one at a time...\n`);
    const seq = new Samples();
    for (let i = 0; i < SEQUENTIAL; i++) {
      const name = `seq-${i}`;
      const t0 = performance.now();
      await api.create(`/api/v1/namespaces/${NS}/pods`, podBody(name));
      await until(() => runningAt.has(name), `${name} running`);
      seq.add(runningAt.get(name)! - t0);
    }
    process.stderr.write('deleting the sequential pods...\n');
    const toDelete = ['warmup', ...Array.from({ length: SEQUENTIAL }, (_, i) => `seq-${i}`)];
    await Promise.all(toDelete.map((n) => api.delete(`/api/v1/namespaces/${NS}/pods/${n}`)));
    await until(() => toDelete.every((n) => gone.has(n)), 'sequential pods gone');
    // Grace 0: the API forgets the pods at once and the agent tears them down right after; the
    // burst starts once containerd is empty, so it does not compete with that.
    await until(() => criIds().length === 0, 'containerd empty before the burst', 60_000);

    process.stderr.write(`burst: ${BURST} pods at once...\n`);
    const burst = new Samples();
    const b0 = performance.now();
    const names = Array.from({ length: BURST }, (_, i) => `burst-${i}`);
    const sent = new Map<string, number>();
    await Promise.all(names.map(async (n) => {
      sent.set(n, performance.now());
      await api.create(`/api/v1/namespaces/${NS}/pods`, podBody(n));
    }));
    await until(() => names.every((n) => runningAt.has(n)), `${BURST} pods running`);
    const toBound = new Samples();
    const boundToRunning = new Samples();
    for (const n of names) {
      burst.add(runningAt.get(n)! - sent.get(n)!);
      toBound.add(boundAt.get(n)! - sent.get(n)!);
      boundToRunning.add(runningAt.get(n)! - boundAt.get(n)!);
    }
    const allIn = Math.max(...names.map((n) => runningAt.get(n)!)) - b0;

    process.stderr.write('idle: 20 s with the burst pods running...\n');
    await sleep(3_000);
    const cpid = containerdPid(dir);
    const c0 = { up: cpuSeconds(up.pid!), containerd: cpid ? cpuSeconds(cpid) : NaN };
    const i0 = performance.now();
    await sleep(20_000);
    const seconds = (performance.now() - i0) / 1000;
    const c1 = { up: cpuSeconds(up.pid!), containerd: cpid ? cpuSeconds(cpid) : NaN };
    const rssUp = rssOf(up.pid);
    const rssCtd = rssOf(cpid);

    const lines = [
      `bench/agent (${new Date().toISOString()}, ${process.version}, kubernel up with managed containerd, local image ${IMAGE})`,
      `pod startup latency, sequential x${seq.count}: p50 ${fmt(seq.quantile(0.5))}  p99 ${fmt(seq.quantile(0.99))}  max ${fmt(seq.quantile(1))}   (targets p50 <= 0.8 s, p99 <= 1.5 s)`,
      `pod startup latency, ${BURST} at once:  p50 ${fmt(burst.quantile(0.5))}  p99 ${fmt(burst.quantile(0.99))}; all ${BURST} running after ${fmt(allIn)}   (target <= 8 s)`,
      `  of which create -> bound (API server, scheduler): p50 ${fmt(toBound.quantile(0.5))} p99 ${fmt(toBound.quantile(0.99))}; bound -> running (agent, containerd): p50 ${fmt(boundToRunning.quantile(0.5))} p99 ${fmt(boundToRunning.quantile(0.99))}`,
      `idle with ${BURST} pods, over ${seconds.toFixed(1)} s: kubernel up CPU ${(((c1.up - c0.up) / seconds) * 100).toFixed(1)}% of a core, RSS ${rssUp.rss.toFixed(0)} MiB (peak ${rssUp.peak.toFixed(0)}); containerd CPU ${(((c1.containerd - c0.containerd) / seconds) * 100).toFixed(1)}%, RSS ${rssCtd.rss.toFixed(0)} MiB`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);

    process.stderr.write('cleaning up: deleting the pods...\n');
    await api.delete(`/api/v1/namespaces/${NS}`);
    await until(() => names.every((n) => gone.has(n)), 'burst pods gone');
    await until(() => criIds().length === 0, 'containerd empty', 60_000);
  } finally {
    watchAbort.abort();
    api.close();
    up.kill('SIGTERM');
    await new Promise<void>((r) => (up.exitCode !== null ? r() : up.once('exit', () => r())));
    // The managed containerd stops with kubel up; pods left by a failed run are killed with it.
    const left = containerdPid(dir);
    if (left) process.kill(left, 'SIGKILL');
    try {
      execFileSync('sh', ['-c', `grep -o " ${dir}[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null; ip link del ${BRIDGE} 2>/dev/null; find /sys/fs/cgroup/*/${CGROUP_ROOT} -depth -type d -exec rmdir {} + 2>/dev/null; true`]);
    } catch {
      // best effort
    }
    if (!args.keep) rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/agent failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
