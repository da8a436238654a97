import { join } from 'node:path';
import { expect } from 'chai';
import { ApiClient, isAlreadyExists, type KubeObject } from '@kubernel/sdk';
import { describeControllerContract } from '@kubernel/sdk/testing';
import { daemonSetControllerPlugin } from '@kubernel/plugin-controllers';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { FIXTURES } from './helpers/paths.js';
import { sleep, until } from './helpers/wait.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;
const j = (o: unknown): string => JSON.stringify(o);

const NS = 'ds';
const LEASES = '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases';
const HASH = 'controller-revision-hash';
const DAEMON_TOLERATIONS = [
  'node.kubernetes.io/not-ready:NoExecute',
  'node.kubernetes.io/unreachable:NoExecute',
  'node.kubernetes.io/disk-pressure:NoSchedule',
  'node.kubernetes.io/memory-pressure:NoSchedule',
  'node.kubernetes.io/pid-pressure:NoSchedule',
  'node.kubernetes.io/unschedulable:NoSchedule',
];

const seconds = (ms = Date.now()): string => `${new Date(ms).toISOString().slice(0, 19)}Z`;
const micro = (ms = Date.now()): string => new Date(ms).toISOString().replace('Z', '000Z');
const isReady = (p: Json): boolean => ((p.status?.conditions ?? []) as Json[]).some((x) => x.type === 'Ready' && x.status === 'True');

/** The node a daemon pod is for: spec.nodeName, else its `matchFields metadata.name In [x]` term. */
function targetOf(p: Json): string | undefined {
  if (p.spec?.nodeName) return p.spec.nodeName;
  const terms = (p.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? []) as Json[];
  for (const t of terms) for (const f of (t.matchFields ?? []) as Json[]) if (f.key === 'metadata.name' && f.operator === 'In') return f.values?.[0];
  return undefined;
}

/**
 * Plays the scheduler and the kubelets of the nodes it serves (there is no scheduler or node agent
 * yet): a DaemonSet pod aimed at one of its nodes is bound there through `pods/binding`, then
 * reported Running and Ready after `readyDelayMs`; a bound pod marked for deletion is removed
 * (grace period 0) after `terminationDelayMs`, as a kubelet confirms a stopped pod. The nodes'
 * Leases are renewed, so the node lifecycle controller keeps them Ready.
 */
class FakeKubelet {
  readonly served = new Set<string>();
  readyDelayMs = 0;
  terminationDelayMs = 0;
  private readonly firstSeen = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private ticks = 0;

  constructor(private readonly c: TestCluster) {}

  start(): void {
    const loop = (): void => {
      this.timer = setTimeout(() => {
        void this.tick()
          .catch(() => undefined)
          .finally(() => {
            if (!this.stopped) loop();
          });
      }, 100);
    };
    loop();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Registers a Ready Node with `labels` and `taints`, and its Lease; served unless `serve` is false. */
  async register(name: string, labels: Record<string, string>, taints: Json[] = [], serve = true): Promise<void> {
    const now = seconds();
    const conditions = ['Ready', 'MemoryPressure', 'DiskPressure', 'PIDPressure'].map((type) => ({ type, status: type === 'Ready' ? 'True' : 'False', lastHeartbeatTime: now, lastTransitionTime: now, reason: type === 'Ready' ? 'KubeletReady' : `KubeletHasNo${type}` }));
    const node = { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } }, spec: taints.length ? { taints } : {}, status: { conditions } };
    const created = await this.c.request('POST', '/api/v1/nodes', j(node));
    expect(created.status, created.body).to.equal(201);
    const lease = await this.c.request('POST', LEASES, j({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name }, spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime: micro() } }));
    expect(lease.status, lease.body).to.equal(201);
    if (serve) this.served.add(name);
  }

  async unregister(name: string): Promise<void> {
    this.served.delete(name);
    expect((await this.c.request('DELETE', `/api/v1/nodes/${name}`)).status).to.equal(200);
    await this.c.request('DELETE', `${LEASES}/${name}`);
  }

  private async tick(): Promise<void> {
    if (this.ticks++ % 10 === 0) {
      for (const name of [...this.served]) {
        const lease = await this.c.request('GET', `${LEASES}/${name}`);
        if (lease.status !== 200) continue;
        const body = lease.json() as Json;
        await this.c.request('PUT', `${LEASES}/${name}`, j({ ...body, spec: { ...body.spec, renewTime: micro() } }));
      }
    }
    const pods = ((await this.c.request('GET', `/api/v1/namespaces/${NS}/pods`)).json() as Json).items as Json[];
    for (const p of pods) {
      const name = p.metadata.name as string;
      const node = targetOf(p);
      if (!node || !this.served.has(node)) continue;
      const first = this.firstSeen.get(p.metadata.uid) ?? Date.now();
      this.firstSeen.set(p.metadata.uid, first);
      if (p.metadata.deletionTimestamp) {
        const since = this.firstSeen.get(`${p.metadata.uid}/deleting`) ?? Date.now();
        this.firstSeen.set(`${p.metadata.uid}/deleting`, since);
        if (p.spec.nodeName && Date.now() - since >= this.terminationDelayMs) {
          const options = j({ apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0, preconditions: { uid: p.metadata.uid } });
          await this.c.request('DELETE', `/api/v1/namespaces/${NS}/pods/${name}`, options, { 'content-length': String(Buffer.byteLength(options)) });
        }
        continue;
      }
      if (!p.spec.nodeName) {
        // Binds it unless the scheduler does first (a 409 then).
        await this.c.request('POST', `/api/v1/namespaces/${NS}/pods/${name}/binding`, j({ apiVersion: 'v1', kind: 'Binding', metadata: { name }, target: { apiVersion: 'v1', kind: 'Node', name: node } }));
        continue;
      }
      if (isReady(p) || Date.now() - first < this.readyDelayMs) continue;
      const t = seconds();
      const others = ((p.status?.conditions ?? []) as Json[]).filter((x) => !['Ready', 'ContainersReady', 'Initialized'].includes(x.type));
      p.status = { ...p.status, phase: 'Running', hostIP: '10.0.0.1', podIP: '10.244.0.10', startTime: t, conditions: [...others, ...['Initialized', 'ContainersReady', 'Ready'].map((type) => ({ type, status: 'True', lastProbeTime: null, lastTransitionTime: t }))] };
      await this.c.request('PUT', `/api/v1/namespaces/${NS}/pods/${name}/status`, j(p));
    }
  }
}

/*
 * The DaemonSet controller on the default distribution, through kubectl. Nodes are Node objects
 * the test registers; a fake kubelet binds the daemon pods (they are created unbound, aimed at their
 * node by node affinity, as Kubernetes' default scheduler expects) and reports them Running.
 */
describe('DaemonSets on the default distribution (kubectl rollout)', function () {
  this.timeout(180_000);
  let c: TestCluster;
  let kubelet: FakeKubelet;

  const list = async (path: string): Promise<Json[]> => ((await c.request('GET', path)).json() as Json).items as Json[];
  const pods = async (): Promise<Json[]> => list(`/api/v1/namespaces/${NS}/pods?labelSelector=app%3Dagent`);
  const live = async (): Promise<Json[]> => (await pods()).filter((p) => !p.metadata.deletionTimestamp);
  const ds = async (): Promise<Json> => (await c.request('GET', `/apis/apps/v1/namespaces/${NS}/daemonsets/agent`)).json() as Json;
  const targets = (ps: Json[]): string[] => ps.map((p) => targetOf(p)!).sort();
  const rolledOut = async (): Promise<void> => {
    const r = await c.kubectl(['-n', NS, 'rollout', 'status', 'ds/agent', '--timeout=60s']);
    expect(r.code, r.stderr + r.stdout).to.equal(0);
    expect(r.stdout).to.contain('daemon set "agent" successfully rolled out');
  };

  before(async () => {
    c = await startCluster();
    await c.ok(['create', 'namespace', NS]);
    await until(async () => (await c.request('GET', `/api/v1/namespaces/${NS}/serviceaccounts/default`)).status === 200, 10_000, 'default service account');
    kubelet = new FakeKubelet(c);
    await kubelet.register('ds-a', { daemon: 'yes' });
    await kubelet.register('ds-b', { daemon: 'yes' }, [{ key: 'dedicated', value: 'infra', effect: 'NoSchedule' }]);
    await kubelet.register('ds-c', { daemon: 'no' });
    kubelet.start();
  });
  after(async () => {
    kubelet?.stop();
    await c?.stop();
  });

  it('runs one pod on each eligible node only, created unbound with the node affinity and the daemon tolerations', async () => {
    await c.ok(['-n', NS, 'apply', '-f', '-'], j({
      apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'agent' },
      spec: {
        selector: { matchLabels: { app: 'agent' } },
        template: { metadata: { labels: { app: 'agent' } }, spec: { nodeSelector: { daemon: 'yes' }, containers: [{ name: 'agent', image: 'busybox:1.36' }] } },
      },
    }));
    await rolledOut();
    const ps = await live();
    expect(targets(ps)).to.deep.equal(['ds-a']); // ds-b: untolerated NoSchedule taint; ds-c: nodeSelector
    const [p] = ps;
    // Created unbound, then bound through pods/binding (by the scheduler or this test's agent): the binding sets PodScheduled.
    expect(((p!.status?.conditions ?? []) as Json[]).find((x) => x.type === 'PodScheduled')?.status, 'bound through pods/binding').to.equal('True');
    expect(p!.spec.nodeName).to.equal('ds-a');
    expect(p!.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution).to.deep.equal({ nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['ds-a'] }] }] });
    const tolerations = ((p!.spec.tolerations ?? []) as Json[]).map((t) => `${t.key}:${t.effect}`);
    expect(tolerations).to.include.members(DAEMON_TOLERATIONS);
    expect(((p!.spec.tolerations ?? []) as Json[]).filter((t) => DAEMON_TOLERATIONS.includes(`${t.key}:${t.effect}`)).every((t) => t.operator === 'Exists' && t.tolerationSeconds === undefined)).to.equal(true);
    expect(p!.metadata.generateName).to.equal('agent-');
    expect(p!.metadata.ownerReferences).to.deep.equal([{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'agent', uid: (await ds()).metadata.uid, controller: true, blockOwnerDeletion: true }]);
    const revisions = await list(`/apis/apps/v1/namespaces/${NS}/controllerrevisions`);
    expect(revisions.map((r) => [r.metadata.name, r.revision])).to.deep.equal([[`agent-${p!.metadata.labels[HASH]}`, 1]]);
    const status = (await ds()).status;
    expect(status).to.deep.include({ desiredNumberScheduled: 1, currentNumberScheduled: 1, numberMisscheduled: 0, numberReady: 1, numberAvailable: 1, updatedNumberScheduled: 1, observedGeneration: 1 });
    expect(await c.ok(['-n', NS, 'get', 'ds', 'agent'])).to.match(/^agent\s+1\s+1\s+1\s+1\s+1\s+daemon=yes\s+\S+$/m);
    await until(async () => {
      const events = await list(`/api/v1/namespaces/${NS}/events`);
      return events.some((e) => e.reason === 'SuccessfulCreate' && e.involvedObject?.kind === 'DaemonSet' && e.involvedObject?.name === 'agent' && e.message === `Created pod: ${p!.metadata.name}` && e.source?.component === 'daemonset-controller');
    }, 10_000, 'the SuccessfulCreate event');
  });

  it('adds a pod when an eligible node joins', async () => {
    await kubelet.register('ds-d', { daemon: 'yes' });
    await kubelet.register('ds-e', { daemon: 'yes' });
    await until(async () => (await ds()).status?.desiredNumberScheduled === 3, 10_000, 'three nodes desired');
    await rolledOut();
    expect(targets(await live())).to.deep.equal(['ds-a', 'ds-d', 'ds-e']);
    expect((await ds()).status).to.deep.include({ desiredNumberScheduled: 3, currentNumberScheduled: 3, numberReady: 3, numberAvailable: 3, updatedNumberScheduled: 3 });
  });

  it('rolls a template change node by node within maxUnavailable (1); kubectl rollout status and history work', async () => {
    kubelet.readyDelayMs = 300;
    kubelet.terminationDelayMs = 200;
    let minReady = Infinity;
    let maxPerNode = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const ps = await live();
        minReady = Math.min(minReady, ps.filter(isReady).length);
        const perNode = new Map<string, number>();
        for (const p of ps) perNode.set(targetOf(p)!, (perNode.get(targetOf(p)!) ?? 0) + 1);
        maxPerNode = Math.max(maxPerNode, ...perNode.values());
        await sleep(25);
      }
    })();
    const before = (await live()).map((p) => p.metadata.name);
    await c.ok(['-n', NS, 'set', 'image', 'ds/agent', 'agent=busybox:1.37']);
    await rolledOut();
    sampling = false;
    await sampler;
    expect(minReady, 'ready pods during the update').to.be.at.least(2);
    expect(maxPerNode, 'pods per node (no surge)').to.equal(1);
    const after = await live();
    expect(targets(after)).to.deep.equal(['ds-a', 'ds-d', 'ds-e']);
    expect(after.map((p) => p.spec.containers[0].image)).to.deep.equal(['busybox:1.37', 'busybox:1.37', 'busybox:1.37']);
    expect(after.some((p) => before.includes(p.metadata.name))).to.equal(false);
    const revisions = (await list(`/apis/apps/v1/namespaces/${NS}/controllerrevisions`)).sort((a, b) => a.revision - b.revision);
    expect(revisions.map((r) => r.revision)).to.deep.equal([1, 2]);
    expect(new Set(after.map((p) => p.metadata.labels[HASH]))).to.deep.equal(new Set([revisions[1]!.metadata.labels[HASH]]));
    expect((await ds()).status).to.deep.include({ observedGeneration: 2, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 3 });
    const history = await c.ok(['-n', NS, 'rollout', 'history', 'ds/agent']);
    expect(history).to.match(/^1\s+<none>$/m);
    expect(history).to.match(/^2\s+<none>$/m);
  });

  it('going back to the first template reuses revision 1, renumbered 3, and its hash', async () => {
    const first = (await list(`/apis/apps/v1/namespaces/${NS}/controllerrevisions`)).find((r) => r.revision === 1)!;
    await c.ok(['-n', NS, 'set', 'image', 'ds/agent', 'agent=busybox:1.36']);
    await until(async () => (await ds()).status?.observedGeneration === 3, 10_000, 'generation 3 observed');
    await rolledOut();
    const after = await live();
    expect(after.map((p) => p.spec.containers[0].image)).to.deep.equal(['busybox:1.36', 'busybox:1.36', 'busybox:1.36']);
    const revisions = (await list(`/apis/apps/v1/namespaces/${NS}/controllerrevisions`)).sort((a, b) => a.revision - b.revision);
    expect(revisions.map((r) => [r.revision, r.metadata.name])).to.deep.equal([[2, revisions[0]!.metadata.name], [3, first.metadata.name]]);
    expect(new Set(after.map((p) => p.metadata.labels[HASH]))).to.deep.equal(new Set([first.metadata.labels[HASH]]));
  });

  it('kubectl rollout undo restores the previous template (revision 2, renumbered 4)', async () => {
    const revisions = await list(`/apis/apps/v1/namespaces/${NS}/controllerrevisions`);
    // kubectl applies a revision's `data` (a strategic-merge patch): the API server keeps what a RawExtension carries.
    for (const r of revisions) expect(Object.keys(r.data ?? {}), r.metadata.name).to.not.deep.equal([]);
    await c.ok(['-n', NS, 'rollout', 'undo', 'ds/agent']);
    await until(async () => (await ds()).metadata.generation === 4, 10_000, 'the rollback applied');
    await rolledOut();
    expect((await live()).map((p) => p.spec.containers[0].image)).to.deep.equal(['busybox:1.37', 'busybox:1.37', 'busybox:1.37']);
    const after = (await list(`/apis/apps/v1/namespaces/${NS}/controllerrevisions`)).sort((a, b) => a.revision - b.revision);
    expect(after.map((r) => r.revision)).to.deep.equal([3, 4]);
  });

  it('with maxSurge 1 and maxUnavailable 0, starts each new pod beside the old one and never has fewer ready pods than nodes', async () => {
    let minReady = Infinity;
    let maxPerNode = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const ps = await live();
        minReady = Math.min(minReady, ps.filter(isReady).length);
        const perNode = new Map<string, number>();
        for (const p of ps) perNode.set(targetOf(p)!, (perNode.get(targetOf(p)!) ?? 0) + 1);
        maxPerNode = Math.max(maxPerNode, ...perNode.values());
        await sleep(25);
      }
    })();
    await c.ok(['-n', NS, 'patch', 'ds/agent', '--type=merge', '-p', j({ spec: { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } }, template: { spec: { containers: [{ name: 'agent', image: 'busybox:1.38' }] } } } })]);
    await rolledOut();
    sampling = false;
    await sampler;
    expect(minReady, 'ready pods during the update').to.be.at.least(3);
    expect(maxPerNode, 'pods per node (surge)').to.equal(2);
    const after = await live();
    expect(targets(after)).to.deep.equal(['ds-a', 'ds-d', 'ds-e']);
    expect(after.map((p) => p.spec.containers[0].image)).to.deep.equal(['busybox:1.38', 'busybox:1.38', 'busybox:1.38']);
    kubelet.readyDelayMs = 0;
    kubelet.terminationDelayMs = 0;
  });

  it('deletes the pod of a node relabelled out of the selector', async () => {
    const victim = (await live()).find((p) => targetOf(p) === 'ds-e')!;
    await c.ok(['label', 'node', 'ds-e', 'daemon=no', '--overwrite']);
    await until(async () => !(await pods()).some((p) => p.metadata.name === victim.metadata.name), 10_000, 'the pod of ds-e gone');
    await until(async () => (await ds()).status?.desiredNumberScheduled === 2, 10_000, 'two nodes desired');
    await rolledOut();
    expect(targets(await live())).to.deep.equal(['ds-a', 'ds-d']);
    expect((await ds()).status).to.deep.include({ desiredNumberScheduled: 2, currentNumberScheduled: 2, numberMisscheduled: 0 });
  });

  it('deletes the pod of a deleted node (a pod not yet bound: the controller\'s own; bound ones are the pod GC\'s)', async () => {
    // ds-f's kubelet never comes up: its pod stays unbound and Pending.
    await kubelet.register('ds-f', { daemon: 'yes' }, [], false);
    await until(async () => targets(await live()).includes('ds-f'), 10_000, 'a pod aimed at ds-f');
    const pending = (await live()).find((p) => targetOf(p) === 'ds-f')!;
    expect(pending.spec.nodeName).to.equal(undefined);
    await until(async () => (await ds()).status?.desiredNumberScheduled === 3, 10_000, 'three nodes desired');
    expect((await ds()).status).to.deep.include({ currentNumberScheduled: 3, numberAvailable: 2, numberUnavailable: 1 });
    const waiting = await c.kubectl(['-n', NS, 'rollout', 'status', 'ds/agent', '--timeout=1s']);
    expect(waiting.code).to.not.equal(0);
    expect(waiting.stdout).to.contain('Waiting for daemon set "agent" rollout to finish: 2 of 3 updated pods are available...');
    await kubelet.unregister('ds-f');
    await until(async () => !(await pods()).some((p) => p.metadata.name === pending.metadata.name), 10_000, 'the pod of ds-f gone');
    await until(async () => (await ds()).status?.desiredNumberScheduled === 2, 10_000, 'two nodes desired');
    await rolledOut();
    // A node whose pod runs: it stops counting at once; its bound pod is left to the pod GC.
    await kubelet.unregister('ds-d');
    await until(async () => {
      const st = (await ds()).status ?? {};
      return st.desiredNumberScheduled === 1 && st.currentNumberScheduled === 1 && st.numberMisscheduled === 0;
    }, 10_000, 'one node desired');
    await rolledOut();
  });

  it('replaces a deleted pod, and a Failed one', async () => {
    const onA = async (): Promise<Json[]> => (await live()).filter((x) => targetOf(x) === 'ds-a');
    const [p] = await onA();
    await c.ok(['-n', NS, 'delete', 'pod', p!.metadata.name, '--wait=false']);
    await until(async () => {
      const ps = await onA();
      return ps.length === 1 && ps[0]!.metadata.name !== p!.metadata.name && isReady(ps[0]!);
    }, 15_000, 'a replacement pod on ds-a');
    const [q] = await onA();
    q!.status = { ...q!.status, phase: 'Failed', conditions: [{ type: 'Ready', status: 'False', lastTransitionTime: seconds() }] };
    expect((await c.request('PUT', `/api/v1/namespaces/${NS}/pods/${q!.metadata.name}/status`, j(q))).status).to.equal(200);
    await until(async () => {
      const ps = await onA();
      return ps.length === 1 && ps[0]!.metadata.name !== q!.metadata.name && isReady(ps[0]!);
    }, 15_000, 'the Failed pod replaced');
  });
});

/*
 * The published controller contract, on a cluster that runs no controllers: the daemon pods stay
 * unbound (there is no scheduler), which is all the controller needs.
 */
describe('the DaemonSet controller passes the published controller contract suite', function () {
  this.timeout(120_000);
  let c: TestCluster;
  let round = 0;
  const ns = 'ds-contract';
  const path = `/apis/apps/v1/namespaces/${ns}/daemonsets`;
  const api = (): ApiClient => new ApiClient({ server: c.url, ca: c.tls.ca, cert: c.tls.cert!, key: c.tls.key! });
  const ensure = async (client: ApiClient, p: string, o: KubeObject): Promise<void> => {
    try {
      await client.create(p, o);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
  };
  const owned = async (a: ApiClient): Promise<KubeObject[]> =>
    (await a.list(`/api/v1/namespaces/${ns}/pods`)).items.filter((p) => !p.metadata?.deletionTimestamp && ((p.metadata?.ownerReferences ?? []) as Array<{ kind: string; controller?: boolean }>).some((r) => r.kind === 'DaemonSet' && r.controller));

  before(async () => {
    c = await startCluster(['--distribution', join(FIXTURES, 'distributions', 'authn-only.yaml')]);
  });
  after(async () => {
    await c?.stop();
  });

  describeControllerContract(daemonSetControllerPlugin, {
    api,
    scenario: {
      async setup(a) {
        await ensure(a, '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
        for (const [name, role] of [['w1', 'worker'], ['w2', 'worker'], ['db1', 'db']]) await ensure(a, '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { role: role! } } });
        await ensure(a, path, {
          apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'agent' },
          spec: { selector: { matchLabels: { app: 'agent' } }, template: { metadata: { labels: { app: 'agent' } }, spec: { nodeSelector: { role: 'worker' }, containers: [{ name: 'c', image: 'agent:0' }] } } },
        });
      },
      async converged(a) {
        const d = await a.get(`${path}/agent`);
        const st = (d.status ?? {}) as Json;
        const pods = await owned(a);
        const hashes = new Set(pods.map((p) => p.metadata?.labels?.[HASH]));
        return pods.length === 2 && hashes.size === 1 && st.observedGeneration === d.metadata?.generation && st.desiredNumberScheduled === 2 && st.currentNumberScheduled === 2 && st.updatedNumberScheduled === 2;
      },
      async perturb(a) {
        // Alternately lose a pod and change the template.
        round++;
        if (round % 2 === 1) {
          const [victim] = await owned(a);
          if (victim) await a.delete(`/api/v1/namespaces/${ns}/pods/${victim.metadata?.name}`);
        } else {
          await a.patch(`${path}/agent`, { spec: { template: { spec: { containers: [{ name: 'c', image: `agent:${round}` }] } } } });
        }
      },
      watched: [`/api/v1/namespaces/${ns}/pods`, path, `/apis/apps/v1/namespaces/${ns}/controllerrevisions`],
      contended: [`${path}/agent`],
    },
  });
});
