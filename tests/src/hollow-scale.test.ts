import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { Agent, createLogger, issueCertificate } from '@kubernel/core';
import { ApiClient, ApiStatusError } from '@kubernel/sdk';
import { FakeContainerRuntime, type FakeRuntimeOptions } from '@kubernel/plugin-cri-fake';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { ROOT } from './helpers/paths.js';
import { sleep } from './helpers/wait.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const NODES = 200;
const STOPPED = 10;
const REPLICAS = 400;
const NS = 'hollow-scale';
const UNREACHABLE = 'node.kubernetes.io/unreachable';
const NOT_READY = 'node.kubernetes.io/not-ready';
/**
 * The agents' heartbeat (Lease renewal) period: the kubelet's 10 s, halved with the grace period
 * below. Every heartbeat costs the API server three requests per node (Lease GET and PUT, Node
 * GET), so with 200 nodes this period sets most of the idle cluster's load.
 */
const HEARTBEAT_MS = 5_000;
/**
 * The agents' periodic pod sync. Pods start on informer events, not on this period, so it costs
 * little latency; every sync compares each pod's status, so at 400 pods it costs CPU.
 */
const SYNC_MS = 2_000;
/**
 * The node lifecycle controller's settings. The grace period is six heartbeats (Kubernetes 1.32:
 * five, 10 s renewals against a 50 s `--node-monitor-grace-period`): while 400 pods start, the
 * single API server process (and the 200 agents sharing this one) answer heartbeats late, and
 * gaps of 12-17 s between two renewals of a live node's Lease were measured on 2 vCPUs (up to
 * 27 s with other work on the machine), so a 15-20 s grace marks live nodes Unknown. The NoExecute
 * tainting rate per zone (`--node-eviction-rate`, 0.1 node/s by default, which taints a node every
 * 10 s) is raised so that ten dead nodes are tainted within seconds; the zone thresholds keep
 * their defaults (10 of 200 nodes down is a Normal zone, so the primary rate applies).
 */
const NODE_LIFECYCLE_CONFIG = '{ nodeMonitorPeriodSeconds: 1, nodeMonitorGracePeriodSeconds: 30, nodeEvictionRate: 5 }';
/**
 * How long the pods tolerate their node being unreachable or not ready. Kubernetes'
 * DefaultTolerationSeconds admission adds 300 s; a workload that wants a faster failover sets its
 * own, as this one does (and the distribution has no such admission step).
 */
const TOLERATION_SECONDS = 2;
/** At most this many of the Deployment's pods on one node (twice the even share, rounded up). */
const SPREAD_BOUND = 2 * Math.ceil(REPLICAS / (NODES - STOPPED));

const nodeName = (i: number): string => `hollow-${String(i).padStart(3, '0')}`;

/**
 * The default distribution with the node lifecycle controller's config replaced: the shipped file
 * is copied with a `config:` line added to the controller's entry, so every other plugin is the
 * default one.
 */
function writeDistribution(dir: string): string {
  const lines = readFileSync(join(ROOT, 'distributions', 'default.yaml'), 'utf8').split('\n');
  const at = lines.findIndex((l) => /^\s*- id: node-lifecycle-controller\b/.test(l));
  const pkg = lines[at + 1] ?? '';
  const indent = /^(\s*)package:/.exec(pkg)?.[1];
  if (at < 0 || indent === undefined || /^\s*config:/.test(lines[at + 2] ?? '')) throw new Error('distributions/default.yaml: cannot find the node-lifecycle-controller entry to configure');
  lines.splice(at + 2, 0, `${indent}config: ${NODE_LIFECYCLE_CONFIG}`);
  const file = join(dir, 'distribution.yaml');
  writeFileSync(file, lines.join('\n'));
  return file;
}

/** Polls `cond` every `everyMs` (after the previous call finished) until it holds; rejects naming `what` after `ms`. */
async function poll(cond: () => boolean | Promise<boolean>, ms: number, what: string, everyMs = 500): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** CPU seconds (user + system) of a process and its live descendants, from /proc. */
function treeCpuSeconds(pid: number): number {
  const ticks = 100; // USER_HZ on Linux
  let total = 0;
  const visit = (p: number): void => {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      total += (Number(fields[11]) + Number(fields[12])) / ticks;
      for (const task of readdirSync(`/proc/${p}/task`)) {
        for (const child of readFileSync(`/proc/${p}/task/${task}/children`, 'utf8').split(' ').filter(Boolean)) visit(Number(child));
      }
    } catch {
      // The process is gone.
    }
  };
  visit(pid);
  return total;
}

/** A pino destination keeping the agents' warnings and errors, counted by message. */
class LogTally {
  readonly counts = new Map<string, number>();
  write(line: string): void {
    let msg = line;
    try {
      const o = JSON.parse(line) as Json;
      msg = `${String(o.msg)}${o.err ? `: ${String(o.err).slice(0, 160)}` : ''}`;
    } catch {
      // Not JSON: keep the line.
    }
    this.counts.set(msg, (this.counts.get(msg) ?? 0) + 1);
  }
  top(n: number): string[] {
    return [...this.counts].sort((a, b) => b[1] - a[1]).slice(0, n).map(([m, k]) => `${k}× ${m}`);
  }
}

/**
 * The fake runtime of one hollow node, allocating pod IPs from the node's pod CIDR: it takes CRI
 * `UpdateRuntimeConfig` as a runtime with a CNI config template does (containerd's
 * `conf_template`), accepting only the CIDR it allocates from.
 */
class HollowRuntime extends FakeContainerRuntime {
  /** The pod CIDR the agent handed over, if it did. */
  podCidrApplied?: string;

  constructor(readonly podCidr: string, options: FakeRuntimeOptions = {}) {
    super({ ...options, podCidr });
  }

  async updateRuntimeConfig(config: { readonly podCidr: string }): Promise<void> {
    if (config.podCidr !== this.podCidr) throw new Error(`hollow runtime: allocates pod IPs from ${this.podCidr}, not ${config.podCidr}`);
    this.podCidrApplied = config.podCidr;
  }
}

/** One hollow node: a real {@link Agent} over its own fake runtime and API client (its node credentials). */
interface HollowNode {
  readonly name: string;
  readonly podCidr: string;
  /** Its InternalIP. */
  readonly address: string;
  readonly runtime: HollowRuntime;
  readonly api: ApiClient;
  readonly stop: AbortController;
  running?: Promise<void>;
}

const ready = (n: Json): Json | undefined => ((n.status?.conditions ?? []) as Json[]).find((x) => x.type === 'Ready');
const isRunning = (p: Json): boolean =>
  p.status?.phase === 'Running'
  && ((p.status.conditions ?? []) as Json[]).some((x) => x.type === 'Ready' && x.status === 'True')
  && ((p.status.containerStatuses ?? []) as Json[]).length === 1
  && p.status.containerStatuses[0].state?.running !== undefined;
const inCidr = (ip: unknown, cidr24: string): boolean => typeof ip === 'string' && ip.startsWith(cidr24.replace(/0\/24$/, ''));

/*
 * Issue 8: 200 hollow nodes (real node agents over the in-memory fake runtime, all in this
 * process, each with its own client and node certificate) join a real cluster on the default
 * distribution, run a Deployment's pods and heartbeat; 10 of them stop, and the node lifecycle
 * controller marks them Unknown, taints them unreachable and evicts their pods, which the
 * Deployment replaces on the others.
 */
describe(`${NODES} hollow nodes: join, run pods, heartbeat; ${STOPPED} stop and their pods move (fake runtime, default distribution)`, function () {
  this.timeout(180_000);
  let dir: string;
  let c: TestCluster;
  let admin: ApiClient;
  const hollow: HollowNode[] = [];
  const tally = new LogTally();
  const figures: Record<string, string> = {};
  const cpuAtStart = process.cpuUsage();
  const startedAt = performance.now();
  let peakRss = 0;
  let sampler: NodeJS.Timeout | undefined;
  const busySeconds: number[] = [];
  let serverCpuAtStart = 0;
  /** Per node: the last Lease renewTime seen (ms) and the longest gap between two renewals seen. */
  const renewals = new Map<string, { last: number; maxGap: number; at: number }>();
  let watchingLeases = true;
  let leaseWatcher: Promise<void> | undefined;
  const watchLeases = async (): Promise<void> => {
    while (watchingLeases) {
      try {
        for (const l of await listLeases()) {
          const t = Date.parse(l.spec?.renewTime as string);
          const r = renewals.get(l.metadata.name);
          if (!r) renewals.set(l.metadata.name, { last: t, maxGap: 0, at: t });
          else if (t > r.last) {
            if (t - r.last > r.maxGap) renewals.set(l.metadata.name, { last: t, maxGap: t - r.last, at: r.last });
            else r.last = t;
          }
        }
      } catch {
        // The cluster is going away.
      }
      await sleep(1_000);
    }
  };

  const listNodes = async (): Promise<Json[]> => (await admin.get<Json>('/api/v1/nodes')).items as Json[];
  const listPods = async (): Promise<Json[]> => (await admin.get<Json>(`/api/v1/namespaces/${NS}/pods`)).items as Json[];
  const listLeases = async (): Promise<Json[]> => (await admin.get<Json>('/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases')).items as Json[];
  const hollowNames = new Set(Array.from({ length: NODES }, (_, i) => nodeName(i)));
  const stopped = new Set(Array.from({ length: STOPPED }, (_, i) => nodeName(i * Math.floor(NODES / STOPPED))));
  /** The API server's `apiserver_request_total`, summed over its labels. */
  const requestTotal = async (): Promise<number> => {
    const r = await c.request('GET', '/metrics');
    return r.body.split('\n').filter((l) => l.startsWith('apiserver_request_total{')).reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  };
  const seconds = (fromMs: number): string => `${((performance.now() - fromMs) / 1000).toFixed(1)} s`;

  before(async function () {
    this.timeout(90_000);
    // Each second: the test process's peak RSS, and how busy its event loop (all 200 agents) was.
    let elu = performance.eventLoopUtilization();
    sampler = setInterval(() => {
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      const now = performance.eventLoopUtilization();
      const busy = performance.eventLoopUtilization(now, elu).utilization;
      elu = now;
      busySeconds.push(busy);
    }, 1_000);
    dir = mkdtempSync(join(tmpdir(), 'kubernel-hollow-scale-'));
    c = await startCluster(['--distribution', writeDistribution(dir)], join(dir, 'data'));
    serverCpuAtStart = treeCpuSeconds(c.process.child.pid ?? 0);
    admin = new ApiClient({ server: c.url, ca: c.tls.ca, cert: c.tls.cert, key: c.tls.key });
    await admin.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    // Node credentials as kubeadm's join gives them: CN system:node:<name>, O system:nodes (the Node authorizer's subjects).
    const ca = { cert: c.tls.ca, key: readFileSync(join(dir, 'data', 'pki', 'ca.key'), 'utf8') };
    for (let i = 0; i < NODES; i++) {
      const name = nodeName(i);
      const cred = await issueCertificate(ca, { commonName: `system:node:${name}`, organizations: ['system:nodes'], usage: 'client', validityDays: 1 });
      const podCidr = `10.244.${i}.0/24`;
      hollow.push({
        name,
        podCidr,
        address: `10.0.${Math.floor(i / 250)}.${(i % 250) + 1}`,
        runtime: new HollowRuntime(podCidr, { images: ['registry.k8s.io/pause:3.9', 'docker.io/library/busybox:1.36'] }),
        api: new ApiClient({ server: c.url, ca: c.tls.ca, cert: cred.cert, key: cred.key }),
        stop: new AbortController(),
      });
    }
    await poll(async () => (await admin.request('GET', `/api/v1/namespaces/${NS}/serviceaccounts/default`).then(() => true, () => false)), 20_000, `the default service account of ${NS}`, 200);
  });

  after(async function () {
    this.timeout(60_000);
    watchingLeases = false;
    if (sampler) clearInterval(sampler);
    try {
      await leaseWatcher;
      for (const h of hollow) h.stop.abort();
      await Promise.allSettled(hollow.map((h) => h.running));
    } finally {
      for (const h of hollow) h.api.close();
      for (const h of hollow) h.runtime.close();
      admin?.close();
      report();
      await c?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
    // Figures, not assertions (a test never asserts on wall-clock speed), as fuzz.test.ts prints its tallies.
    process.stdout.write(`      hollow-scale figures:\n${Object.entries(figures).map(([k, v]) => `        ${k}: ${v}`).join('\n')}\n`);
    if (tally.counts.size > 0) process.stdout.write(`      agent warnings (top):\n${tally.top(8).map((l) => `        ${l}`).join('\n')}\n`);
  });

  /** Fills in the figures measured over the whole file. */
  function report(): void {
    // Live nodes the controller took for dead at some point (from its log): heartbeats answered later than the grace period.
    const unknown = new Set<string>();
    for (const line of (c?.process.stderr() ?? '').split('\n')) {
      if (!line.includes('node stopped posting status')) continue;
      const node = /"node":"([^"]+)"/.exec(line)?.[1];
      if (node && !stopped.has(node)) unknown.add(node);
    }
    figures['live nodes ever marked Unknown'] = String(unknown.size);
    const gaps = [...renewals].filter(([n]) => !stopped.has(n)).sort((a, b) => b[1].maxGap - a[1].maxGap).slice(0, 5);
    figures['longest Lease renewal gaps (live nodes)'] = gaps.map(([n, r]) => `${n} ${(r.maxGap / 1000).toFixed(1)} s after ${new Date(r.at).toISOString().slice(11, 23)}`).join(', ');
    const cpu = process.cpuUsage(cpuAtStart);
    const wall = (performance.now() - startedAt) / 1000;
    const testCpu = (cpu.user + cpu.system) / 1e6;
    const serverCpu = c ? treeCpuSeconds(c.process.child.pid ?? 0) - serverCpuAtStart : 0;
    figures['test process CPU'] = `${testCpu.toFixed(1)} s (${((100 * testCpu) / wall).toFixed(0)}% of one core over ${wall.toFixed(1)} s)`;
    figures['test process peak RSS'] = `${(peakRss / 2 ** 20).toFixed(0)} MiB`;
    figures['test process event loop'] = `busy over 90% in ${busySeconds.filter((b) => b > 0.9).length} of ${busySeconds.length} s`;
    figures['server (API server, controllers, scheduler, nats) CPU'] = `${serverCpu.toFixed(1)} s (${((100 * serverCpu) / wall).toFixed(0)}% of one core)`;
  }

  it(`registers ${NODES} nodes Ready (as system:node:<name>), each renewing its Lease`, async () => {
    const t0 = performance.now();
    // The agents start spread over one heartbeat period, as machines do not boot in the same
    // millisecond; it also spreads their heartbeats, which the Agent does not jitter.
    const log = createLogger({ level: 'warn', destination: tally });
    for (const [i, h] of hollow.entries()) {
      const agent = new Agent({
        api: h.api,
        runtime: h.runtime,
        nodeName: h.name,
        logger: log.child({ node: h.name }),
        capacity: { cpu: 4, memory: '8Gi', pods: 110 },
        podCIDR: h.podCidr,
        addresses: [h.address],
        syncIntervalMs: SYNC_MS,
        heartbeatIntervalMs: HEARTBEAT_MS,
      });
      h.running = agent.run(h.stop.signal);
      if (i < NODES - 1) await sleep(HEARTBEAT_MS / NODES);
    }
    let nodes: Json[] = [];
    await poll(async () => {
      nodes = (await listNodes()).filter((n) => hollowNames.has(n.metadata.name));
      return nodes.length === NODES && nodes.every((n) => ready(n)?.status === 'True' && n.spec?.podCIDR);
    }, 60_000, `${NODES} nodes Ready`);
    figures[`join: ${NODES} nodes Ready (agents started over ${HEARTBEAT_MS / 1000} s)`] = seconds(t0);
    // The agent hands the pod CIDR to the runtime once the Node has it.
    const withoutCidr = (): string[] => hollow.filter((h) => h.runtime.podCidrApplied !== h.podCidr).map((h) => h.name);
    await poll(() => withoutCidr().length === 0, 15_000, 'every runtime given its pod CIDR', 100).catch(() => undefined);
    expect(withoutCidr(), 'runtimes not given their pod CIDR').to.deep.equal([]);
    const byName = new Map(hollow.map((h) => [h.name, h]));
    for (const n of nodes) {
      const h = byName.get(n.metadata.name)!;
      expect(n.metadata.labels['kubernetes.io/hostname'], 'hostname label').to.equal(n.metadata.name);
      expect(n.spec.podCIDR, `${h.name} podCIDR`).to.equal(h.podCidr);
      expect(n.status.addresses ?? [], `${h.name} addresses`).to.deep.include({ type: 'InternalIP', address: h.address });
      expect(n.status.allocatable, n.metadata.name).to.include({ cpu: '4', memory: '8Gi', pods: '110' });
      expect(n.spec.taints ?? [], `${n.metadata.name} taints`).to.deep.equal([]);
    }

    // Every Lease exists, held by its node, and its renewTime moves on.
    leaseWatcher = watchLeases();
    let leases: Json[] = [];
    await poll(async () => (leases = (await listLeases()).filter((l) => hollowNames.has(l.metadata.name))).length === NODES, 30_000, `${NODES} node Leases`);
    for (const l of leases) expect(l.spec, l.metadata.name).to.include({ holderIdentity: l.metadata.name, leaseDurationSeconds: 40 });
    const first = new Map(leases.map((l) => [l.metadata.name as string, Date.parse(l.spec.renewTime as string)]));
    const renewed = new Set<string>();
    const requestsBefore = await requestTotal();
    const t1 = performance.now();
    await poll(async () => {
      for (const l of await listLeases()) if (first.has(l.metadata.name) && Date.parse(l.spec.renewTime as string) > first.get(l.metadata.name)!) renewed.add(l.metadata.name);
      return renewed.size === NODES;
    }, 4 * HEARTBEAT_MS + 10_000, 'every Lease renewed').catch(() => undefined);
    expect([...hollowNames].filter((n) => !renewed.has(n)), 'Leases not renewed').to.deep.equal([]);
    figures['API requests/s, idle cluster'] = ((await requestTotal() - requestsBefore) / ((performance.now() - t1) / 1000)).toFixed(0);

    // The agents act as their nodes: the Node authorizer lets one renew its own Lease only.
    const other = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${hollow[1]!.name}`;
    const foreign = await hollow[0]!.api.request('PUT', other, { body: await admin.get(other) }).then(() => 0, (err: unknown) => (err instanceof ApiStatusError ? err.code : -1));
    expect(foreign, `${hollow[0]!.name} updating the Lease of ${hollow[1]!.name}`).to.equal(403);
    // ... and nothing the agents did for themselves was refused.
    expect([...tally.counts.keys()].filter((m) => /forbidden|\b403\b/i.test(m)), 'refused agent requests').to.deep.equal([]);
  });

  it(`runs a Deployment of ${REPLICAS} pods: all Running on the hollow nodes, spread, reported by each agent`, async () => {
    const t0 = performance.now();
    const tolerations = [UNREACHABLE, NOT_READY].map((key) => ({ key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: TOLERATION_SECONDS }));
    await c.ok(['-n', NS, 'apply', '-f', '-'], JSON.stringify({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web' },
      spec: {
        replicas: REPLICAS,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: {
            tolerations,
            containers: [{ name: 'web', image: 'busybox:1.36', command: ['sleep', '3600'], resources: { requests: { cpu: '10m', memory: '16Mi' } } }],
          },
        },
      },
    }));
    let pods: Json[] = [];
    await poll(async () => {
      pods = await listPods();
      return pods.length === REPLICAS && pods.every(isRunning);
    }, 120_000, `${REPLICAS} pods Running`, 1_000);
    figures[`${REPLICAS} pods Running (from kubectl apply)`] = seconds(t0);

    const perNode = new Map<string, Json[]>();
    for (const p of pods) {
      const node = p.spec.nodeName as string;
      expect(hollowNames.has(node), `${p.metadata.name} on ${node}`).to.equal(true);
      perNode.set(node, [...(perNode.get(node) ?? []), p]);
    }
    const counts = [...perNode.values()].map((l) => l.length);
    figures['pods per node after the rollout'] = `max ${Math.max(...counts)}, on ${perNode.size} nodes`;
    expect(Math.max(...counts), 'most pods on one node').to.be.at.most(SPREAD_BOUND);
    // Each agent reports its own pods: an IP of its pod CIDR, and one sandbox and container per pod in its runtime.
    for (const h of hollow) {
      const mine = perNode.get(h.name) ?? [];
      for (const p of mine) {
        expect(inCidr(p.status.podIP, h.podCidr), `${p.metadata.name} podIP ${p.status.podIP} in ${h.podCidr}`).to.equal(true);
        expect(p.status.hostIP, `${p.metadata.name} hostIP`).to.equal(h.address);
      }
      expect(h.runtime.counts(), h.name).to.include({ sandboxes: mine.length, containers: mine.length });
    }
    await poll(async () => {
      const d = (await admin.get<Json>(`/apis/apps/v1/namespaces/${NS}/deployments/web`)).status as Json;
      return d.replicas === REPLICAS && d.availableReplicas === REPLICAS;
    }, 30_000, `the Deployment's status at ${REPLICAS} available`);
  });

  it(`stops ${STOPPED} agents: their nodes go Unknown and unreachable, their pods are evicted and replaced on the other nodes`, async () => {
    const rolledOut = await listPods();
    const victims = new Set(rolledOut.filter((p) => stopped.has(p.spec.nodeName)).map((p) => p.metadata.uid as string));
    expect(victims.size, 'pods on the nodes about to stop').to.be.greaterThan(0);
    const t0 = performance.now();
    for (const h of hollow) if (stopped.has(h.name)) h.stop.abort();
    await Promise.all(hollow.filter((h) => stopped.has(h.name)).map((h) => h.running));

    let nodes: Json[] = [];
    await poll(async () => {
      nodes = await listNodes();
      return nodes.filter((n) => stopped.has(n.metadata.name)).every((n) => ready(n)?.status === 'Unknown');
    }, 60_000, `${STOPPED} nodes Ready=Unknown`);
    figures['stop -> nodes Ready=Unknown'] = seconds(t0);
    for (const n of nodes) {
      if (!stopped.has(n.metadata.name)) continue;
      expect(ready(n), n.metadata.name).to.include({ status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.' });
    }

    await poll(async () => {
      nodes = await listNodes();
      return nodes.filter((n) => stopped.has(n.metadata.name)).every((n) => ((n.spec.taints ?? []) as Json[]).some((t) => t.key === UNREACHABLE && t.effect === 'NoExecute'));
    }, 30_000, `the ${UNREACHABLE}:NoExecute taint on the ${STOPPED} nodes`);
    figures['stop -> nodes tainted unreachable:NoExecute'] = seconds(t0);
    for (const n of nodes) {
      const taints = (n.spec.taints ?? []) as Json[];
      if (stopped.has(n.metadata.name)) {
        expect(taints.find((t) => t.key === UNREACHABLE && t.effect === 'NoExecute')?.timeAdded, `${n.metadata.name} timeAdded`).to.be.a('string');
        expect(taints.some((t) => t.key === UNREACHABLE && t.effect === 'NoSchedule'), `${n.metadata.name} NoSchedule`).to.equal(true);
      } else if (hollowNames.has(n.metadata.name)) {
        // The zone is Normal (5% down): the live nodes are untouched.
        expect(ready(n)?.status, n.metadata.name).to.equal('True');
        expect(taints, `${n.metadata.name} taints`).to.deep.equal([]);
      }
    }

    // Evicted: every pod of a stopped node is deleted (it stays Terminating: no kubelet confirms),
    // and the Deployment is back at full strength on the live nodes.
    let pods: Json[] = [];
    await poll(async () => {
      pods = await listPods();
      const active = pods.filter((p) => !p.metadata.deletionTimestamp);
      return active.length === REPLICAS && active.every((p) => !victims.has(p.metadata.uid) && !stopped.has(p.spec.nodeName) && isRunning(p))
        && pods.filter((p) => victims.has(p.metadata.uid)).every((p) => p.metadata.deletionTimestamp);
    }, 90_000, `${REPLICAS} pods Running on the live nodes`, 1_000);
    figures[`stop -> ${victims.size} replacements Running`] = seconds(t0);
    // Only the stopped nodes' pods went: every other pod of the rollout still runs where it ran.
    const now = new Map(pods.map((p) => [p.metadata.uid as string, p]));
    const survivors = rolledOut.filter((p) => !victims.has(p.metadata.uid));
    expect(survivors.filter((p) => now.get(p.metadata.uid)?.spec.nodeName !== p.spec.nodeName || now.get(p.metadata.uid)?.metadata.deletionTimestamp).map((p) => p.metadata.name), 'pods of live nodes evicted').to.deep.equal([]);
    const evicted = pods.filter((p) => victims.has(p.metadata.uid));
    expect(evicted.length, 'evicted pods still Terminating (no kubelet confirms their deletion)').to.equal(victims.size);
    for (const p of evicted) {
      expect(((p.status.conditions ?? []) as Json[]).find((x) => x.type === 'DisruptionTarget'), `${p.metadata.name} DisruptionTarget`).to.include({ status: 'True', reason: 'DeletionByTaintManager' });
    }
    const perNode = new Map<string, number>();
    for (const p of pods) if (!p.metadata.deletionTimestamp) perNode.set(p.spec.nodeName as string, (perNode.get(p.spec.nodeName as string) ?? 0) + 1);
    figures['pods per node after the failover'] = `max ${Math.max(...perNode.values())}, on ${perNode.size} nodes`;
    expect(Math.max(...perNode.values()), 'most pods on one node').to.be.at.most(SPREAD_BOUND);
    for (const h of hollow) {
      if (stopped.has(h.name)) continue;
      expect(h.runtime.counts(), h.name).to.include({ sandboxes: perNode.get(h.name) ?? 0, containers: perNode.get(h.name) ?? 0 });
    }
    await poll(async () => {
      const d = (await admin.get<Json>(`/apis/apps/v1/namespaces/${NS}/deployments/web`)).status as Json;
      return d.availableReplicas === REPLICAS && d.readyReplicas === REPLICAS && d.replicas === REPLICAS;
    }, 30_000, `the Deployment at ${REPLICAS} available`);
  });
});

