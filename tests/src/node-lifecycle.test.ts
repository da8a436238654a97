import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { ROOT } from './helpers/paths.js';
import { sleep, until } from './helpers/wait.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;
const j = (o: unknown): string => JSON.stringify(o);

const NS = 'nlc';
const UNREACHABLE = 'node.kubernetes.io/unreachable';
const NOT_READY = 'node.kubernetes.io/not-ready';
const LEASES = '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases';
const CONDITIONS = ['Ready', 'MemoryPressure', 'DiskPressure', 'PIDPressure'];

/** Writes `<dir>/distribution.yaml`: the server role runs `plugins` ([id, plugins/<dir>, config?]) in order. */
function writeDistribution(dir: string, plugins: Array<[string, string, string?]>): string {
  const entries = plugins.map(([id, pkg, config]) => `        - { id: ${id}, package: "${join(ROOT, 'plugins', pkg)}"${config ? `, config: ${config}` : ''} }`);
  const lines = ['apiVersion: kubernel.io/v1alpha1', 'kind: Distribution', 'metadata: { name: node-lifecycle-test }', 'spec:', '  roles:', '    server:', '      plugins:', ...entries, '    agent: { plugins: [] }', ''];
  const file = join(dir, 'distribution.yaml');
  writeFileSync(file, lines.join('\n'));
  return file;
}

const seconds = (ms = Date.now()): string => `${new Date(ms).toISOString().slice(0, 19)}Z`;
const micro = (ms = Date.now()): string => new Date(ms).toISOString().replace('Z', '000Z');

/**
 * A pretend kubelet for many nodes: for each node it is told is alive it renews the node's Lease
 * every tick and posts NodeStatus (Ready=True with a fresh heartbeat) every few ticks, or at once
 * when the node shows anything but Ready=True. Nodes in `leaseOnly` never post status (their
 * Lease alone must keep them Ready). It also binds pods to nodes and marks them Running.
 */
class FakeAgent {
  readonly alive = new Set<string>();
  readonly leaseOnly = new Set<string>();
  private timer?: NodeJS.Timeout;
  private tick = 0;
  private stopped = false;

  constructor(private readonly c: TestCluster) {}

  start(): void {
    const loop = (): void => {
      this.timer = setTimeout(() => {
        void this.beat()
          .catch(() => undefined)
          .finally(() => {
            if (!this.stopped) loop();
          });
      }, 300);
    };
    loop();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Registers a Node (Ready, no pressure) and its Lease, alive from now on. */
  async register(name: string, labels: Record<string, string> = {}): Promise<void> {
    const now = seconds();
    const node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } },
      spec: {},
      status: { conditions: CONDITIONS.map((type) => this.condition(type, type === 'Ready' ? 'True' : 'False', now, now)) },
    };
    const created = await this.c.request('POST', '/api/v1/nodes', j(node));
    expect(created.status, created.body).to.equal(201);
    const lease = await this.c.request('POST', LEASES, j({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name }, spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime: micro() } }));
    expect(lease.status, lease.body).to.equal(201);
    this.alive.add(name);
  }

  async unregister(name: string): Promise<void> {
    this.alive.delete(name);
    await this.c.request('DELETE', `/api/v1/nodes/${name}`);
    await this.c.request('DELETE', `${LEASES}/${name}`);
  }

  /** Binds a pod to a node (pods/binding), then reports it Running and Ready. */
  async place(pod: string, node: string): Promise<void> {
    const bound = await this.c.request('POST', `/api/v1/namespaces/${NS}/pods/${pod}/binding`, j({ apiVersion: 'v1', kind: 'Binding', metadata: { name: pod }, target: { apiVersion: 'v1', kind: 'Node', name: node } }));
    expect(bound.status, bound.body).to.equal(201);
    for (let attempt = 0; attempt < 5; attempt++) {
      const p = (await this.c.request('GET', `/api/v1/namespaces/${NS}/pods/${pod}`)).json() as Json;
      const t = seconds();
      const others = ((p.status?.conditions ?? []) as Json[]).filter((x) => !['Ready', 'ContainersReady', 'Initialized'].includes(x.type));
      p.status = { ...p.status, phase: 'Running', hostIP: '10.0.0.1', podIP: '10.244.0.10', startTime: t, conditions: [...others, ...['Initialized', 'ContainersReady', 'Ready'].map((type) => ({ type, status: 'True', lastProbeTime: null, lastTransitionTime: t }))] };
      const r = await this.c.request('PUT', `/api/v1/namespaces/${NS}/pods/${pod}/status`, j(p));
      if (r.status === 200) return;
      expect(r.status, r.body).to.equal(409);
    }
    throw new Error(`could not mark pod ${pod} Running`);
  }

  private condition(type: string, status: string, heartbeat: string, transition: string): Json {
    const ready = type === 'Ready';
    return { type, status, lastHeartbeatTime: heartbeat, lastTransitionTime: transition, reason: ready ? 'KubeletReady' : `KubeletHasNo${type}`, message: ready ? 'kubelet is posting ready status' : `kubelet has no ${type}` };
  }

  private async beat(): Promise<void> {
    this.tick++;
    for (const name of [...this.alive]) {
      if (!this.alive.has(name)) continue;
      const lease = await this.c.request('GET', `${LEASES}/${name}`);
      if (lease.status === 200) {
        const body = lease.json() as Json;
        await this.c.request('PUT', `${LEASES}/${name}`, j({ ...body, spec: { ...body.spec, renewTime: micro() } }));
      }
      if (this.leaseOnly.has(name) || !this.alive.has(name)) continue;
      const got = await this.c.request('GET', `/api/v1/nodes/${name}`);
      if (got.status !== 200) continue;
      const node = got.json() as Json;
      const conditions = (node.status?.conditions ?? []) as Json[];
      const healthy = CONDITIONS.every((type) => conditions.find((x) => x.type === type)?.status === (type === 'Ready' ? 'True' : 'False'));
      if (healthy && this.tick % 5 !== 0) continue;
      const now = seconds();
      node.status.conditions = CONDITIONS.map((type) => {
        const want = type === 'Ready' ? 'True' : 'False';
        const had = conditions.find((x) => x.type === type);
        return this.condition(type, want, now, had?.status === want ? had.lastTransitionTime : now);
      });
      await this.c.request('PUT', `/api/v1/nodes/${name}/status`, j(node));
    }
  }
}

/*
 * The node lifecycle controller on a real server with short periods (monitor 1 s, grace 4 s); a
 * fake agent plays the kubelets' heartbeats. There is no scheduler: the test binds pods itself.
 */
describe('node lifecycle controller: heartbeats, taints, taint-based eviction (kubernel server)', function () {
  this.timeout(120_000);
  let c: TestCluster;
  let dir: string;
  let agent: FakeAgent;

  const node = async (name: string): Promise<Json> => (await c.request('GET', `/api/v1/nodes/${name}`)).json() as Json;
  const ready = (n: Json): Json | undefined => ((n.status?.conditions ?? []) as Json[]).find((x) => x.type === 'Ready');
  const taints = (n: Json): Json[] => (n.spec?.taints ?? []) as Json[];
  const hasTaint = (n: Json, key: string, effect: string): boolean => taints(n).some((t) => t.key === key && t.effect === effect);
  const getPod = async (name: string): Promise<Json | undefined> => {
    const r = await c.request('GET', `/api/v1/namespaces/${NS}/pods/${name}`);
    return r.status === 404 ? undefined : (r.json() as Json);
  };
  const deleted = (p: Json | undefined): boolean => !p || !!p.metadata.deletionTimestamp;
  const createPod = async (name: string, tolerations: Json[] = []): Promise<void> => {
    const r = await c.request('POST', `/api/v1/namespaces/${NS}/pods`, j({ apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { test: 'nlc' } }, spec: { containers: [{ name: 'c', image: 'busybox' }], ...(tolerations.length ? { tolerations } : {}) } }));
    expect(r.status, r.body).to.equal(201);
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kubernel-node-lifecycle-'));
    const file = writeDistribution(dir, [
      ['authn-x509', 'authn'],
      ['namespace-lifecycle', 'admission'],
      ['replicaset-controller', 'controllers'],
      ['node-lifecycle-controller', 'controllers', '{ nodeMonitorPeriodSeconds: 1, nodeMonitorGracePeriodSeconds: 4, leaderElection: { leaseDurationSeconds: 3, renewDeadlineSeconds: 2, retryPeriodSeconds: 0.5 } }'],
    ]);
    c = await startCluster(['--distribution', file]);
    await c.ok(['create', 'namespace', NS]);
    agent = new FakeAgent(c);
    for (const n of ['n1', 'n2', 'n3']) await agent.register(n);
    agent.leaseOnly.add('n2');
    agent.start();
  });
  after(async () => {
    agent?.stop();
    await c?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('keeps nodes with fresh heartbeats Ready past the grace period (a renewed Lease alone suffices); spec.unschedulable gets its taint', async () => {
    await sleep(6_000);
    for (const name of ['n1', 'n2', 'n3']) {
      const n = await node(name);
      expect(ready(n)?.status, `${name} Ready`).to.equal('True');
      expect(taints(n), `${name} taints`).to.deep.equal([]);
    }
    expect((await c.request('PATCH', '/api/v1/nodes/n1', j({ spec: { unschedulable: true } }), { 'content-type': 'application/merge-patch+json' })).status).to.equal(200);
    await until(async () => hasTaint(await node('n1'), 'node.kubernetes.io/unschedulable', 'NoSchedule'), 10_000, 'the unschedulable taint');
    expect((await c.request('PATCH', '/api/v1/nodes/n1', j({ spec: { unschedulable: false } }), { 'content-type': 'application/merge-patch+json' })).status).to.equal(200);
    await until(async () => taints(await node('n1')).length === 0, 10_000, 'the unschedulable taint removed');
  });

  it('a node that stops heartbeating goes Unknown and is tainted unreachable; its pods are evicted as their tolerations say', async () => {
    await createPod('p-plain');
    await createPod('p-3s', [{ key: UNREACHABLE, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 3 }]);
    await createPod('p-forever', [{ key: UNREACHABLE, operator: 'Exists', effect: 'NoExecute' }]);
    for (const p of ['p-plain', 'p-3s', 'p-forever']) await agent.place(p, 'n3');
    await c.ok(['-n', NS, 'apply', '-f', '-'], j({
      apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'web' },
      spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } },
    }));
    const rsPods = async (): Promise<Json[]> => ((await c.request('GET', `/api/v1/namespaces/${NS}/pods?labelSelector=app%3Dweb`)).json() as Json).items as Json[];
    await until(async () => (await rsPods()).length === 2, 10_000, 'the ReplicaSet\'s 2 pods');
    const original = (await rsPods()).map((p) => p.metadata.name as string);
    for (const p of original) await agent.place(p, 'n3');

    // Record when each pod is first seen deleted (marked for deletion or gone).
    const deletedAt = new Map<string, number>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const name of ['p-plain', 'p-3s', 'p-forever', ...original]) if (!deletedAt.has(name) && deleted(await getPod(name))) deletedAt.set(name, Date.now());
        await sleep(100);
      }
    })();

    agent.alive.delete('n3');
    await until(async () => ready(await node('n3'))?.status === 'Unknown', 15_000, 'n3 Ready=Unknown');
    const n3 = await node('n3');
    for (const type of CONDITIONS) {
      expect(((n3.status.conditions ?? []) as Json[]).find((x) => x.type === type), type).to.deep.include({ status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.' });
    }
    // The other nodes, still heartbeating, stay Ready (one node of three down: the zone is Normal).
    for (const name of ['n1', 'n2']) expect(ready(await node(name))?.status, name).to.equal('True');

    await until(async () => {
      const n = await node('n3');
      return hasTaint(n, UNREACHABLE, 'NoSchedule') && hasTaint(n, UNREACHABLE, 'NoExecute');
    }, 10_000, 'unreachable NoSchedule and NoExecute taints');
    const tainted = await node('n3');
    const noExecute = taints(tainted).find((t) => t.key === UNREACHABLE && t.effect === 'NoExecute')!;
    expect(noExecute.timeAdded, 'timeAdded').to.be.a('string');
    expect(hasTaint(tainted, NOT_READY, 'NoExecute')).to.equal(false);
    const added = Date.parse(noExecute.timeAdded);

    await until(() => deletedAt.has('p-plain'), 5_000, 'the pod without tolerations deleted');
    const plain = await getPod('p-plain');
    if (plain) {
      // Bound pods are deleted gracefully: Terminating until the (dead) kubelet confirms, with the reason on record.
      expect(((plain.status.conditions ?? []) as Json[]).find((x) => x.type === 'DisruptionTarget')).to.deep.include({ status: 'True', reason: 'DeletionByTaintManager' });
    }
    await until(async () => {
      const events = ((await c.request('GET', `/api/v1/namespaces/${NS}/events`)).json() as Json).items as Json[];
      return events.some((e) => e.reason === 'TaintManagerEviction' && e.involvedObject?.name === 'p-plain' && e.message === `Marking for deletion Pod ${NS}/p-plain`);
    }, 10_000, 'the TaintManagerEviction event');

    await until(() => deletedAt.has('p-3s'), 10_000, 'the pod tolerating for 3 s deleted');
    const after = deletedAt.get('p-3s')! - added;
    expect(after, 'ms from timeAdded to the deletion of p-3s').to.be.within(2_500, 8_000);

    // The ReplicaSet's evicted pods are replaced (Pending: there is no scheduler here).
    for (const p of original) await until(() => deletedAt.has(p), 5_000, `ReplicaSet pod ${p} evicted`);
    await until(async () => {
      const rs = ((await c.request('GET', `/apis/apps/v1/namespaces/${NS}/replicasets/web`)).json() as Json).status ?? {};
      const active = (await rsPods()).filter((p) => !p.metadata.deletionTimestamp);
      return rs.replicas === 2 && active.length === 2 && active.every((p) => !original.includes(p.metadata.name) && !p.spec.nodeName);
    }, 10_000, 'the ReplicaSet back at 2 replicas');

    // The pod tolerating forever stays, marked not Ready with its node.
    await sleep(1_000);
    watching = false;
    await watcher;
    expect(deletedAt.has('p-forever')).to.equal(false);
    const forever = await getPod('p-forever');
    expect(forever?.metadata.deletionTimestamp).to.equal(undefined);
    expect(((forever!.status.conditions ?? []) as Json[]).find((x) => x.type === 'Ready')?.status).to.equal('False');
  });

  it('the node heartbeating again is Ready and untainted; the pod tolerating forever is still there', async () => {
    agent.alive.add('n3');
    await until(async () => {
      const n = await node('n3');
      return ready(n)?.status === 'True' && !taints(n).some((t) => t.key === UNREACHABLE || t.key === NOT_READY);
    }, 15_000, 'n3 Ready without unreachable/not-ready taints');
    const forever = await getPod('p-forever');
    expect(forever?.metadata.deletionTimestamp).to.equal(undefined);
  });

  it('every node of every zone down: Unknown and NoSchedule taints, but no NoExecute taint and no eviction (master disruption)', async () => {
    for (const n of ['n1', 'n2', 'n3']) await agent.unregister(n);
    const zoneNodes = ['za1', 'za2', 'zb1', 'zb2'];
    for (const n of zoneNodes) await agent.register(n, { 'topology.kubernetes.io/zone': n.startsWith('za') ? 'zone-a' : 'zone-b' });
    await createPod('p-zone');
    await agent.place('p-zone', 'za1');
    await sleep(2_000); // the controller has seen the new nodes Ready and the old ones gone

    let sawNoExecute: string | undefined;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const name of zoneNodes) {
          const t = taints(await node(name)).find((x) => x.effect === 'NoExecute');
          if (t) sawNoExecute ??= `${name}: ${j(t)}`;
        }
        await sleep(150);
      }
    })();
    for (const n of zoneNodes) agent.alive.delete(n);
    await until(async () => {
      const nodes = await Promise.all(zoneNodes.map(node));
      return nodes.every((n) => ready(n)?.status === 'Unknown' && hasTaint(n, UNREACHABLE, 'NoSchedule'));
    }, 15_000, 'every zone node Unknown with the unreachable NoSchedule taint');
    await sleep(3_000); // three more monitor passes, thirty tainting passes
    watching = false;
    await watcher;
    expect(sawNoExecute, 'a NoExecute taint in master disruption').to.equal(undefined);
    expect(deleted(await getPod('p-zone')), 'p-zone evicted').to.equal(false);

    for (const n of zoneNodes) agent.alive.add(n);
    await until(async () => {
      const nodes = await Promise.all(zoneNodes.map(node));
      return nodes.every((n) => ready(n)?.status === 'True' && taints(n).length === 0);
    }, 15_000, 'every zone node Ready and untainted again');
    expect(deleted(await getPod('p-zone'))).to.equal(false);
  });
});
