import { join } from 'node:path';
import { expect } from 'chai';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { ROOT } from './helpers/paths.js';
import { sleep, until } from './helpers/wait.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;
const j = (o: unknown): string => JSON.stringify(o);
const LEASES = '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases';
const micro = (): string => new Date().toISOString().replace(/\.(\d+)Z$/, (_m, f: string) => `.${f.padEnd(6, '0')}Z`);

/**
 * Nodes without agents: registered Node objects (Ready, with allocatable) whose Leases this test
 * renews, so the node lifecycle controller keeps them Ready; pods bound to them are marked Running,
 * and pods deleted on them are finished at once (the kubelet's part of a graceful delete).
 */
class HollowNodes {
  private timer?: NodeJS.Timeout;
  private stopped = false;
  readonly names = new Set<string>();

  constructor(private readonly c: TestCluster) {}

  start(): void {
    const loop = (): void => {
      if (this.stopped) return;
      this.timer = setTimeout(() => void this.tick().catch(() => undefined).finally(loop), 500);
    };
    loop();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  async add(name: string, o: { cpu?: string; memory?: string; labels?: Record<string, string>; taints?: Json[] } = {}): Promise<void> {
    const t = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const allocatable = { cpu: o.cpu ?? '2', memory: o.memory ?? '4Gi', pods: '110' };
    const node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', ...(o.labels ?? {}) } },
      spec: o.taints ? { taints: o.taints } : {},
      status: { allocatable, capacity: allocatable, conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'hollow', lastHeartbeatTime: t, lastTransitionTime: t }] },
    };
    const r = await this.c.request('POST', '/api/v1/nodes', j(node));
    expect(r.status, r.body).to.equal(201);
    // The API server keeps status out of a create: patch it through the status subresource (a
    // merge patch, as kubelets do: the node IPAM controller may have patched the spec meanwhile).
    const s = await this.c.request('PATCH', `/api/v1/nodes/${name}/status`, j({ status: node.status }), { 'content-type': 'application/merge-patch+json' });
    expect(s.status, s.body).to.equal(200);
    const lease = await this.c.request('POST', LEASES, j({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name }, spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime: micro() } }));
    expect(lease.status, lease.body).to.equal(201);
    this.names.add(name);
  }

  private async tick(): Promise<void> {
    for (const name of this.names) {
      const lease = await this.c.request('GET', `${LEASES}/${name}`);
      if (lease.status === 200) {
        const body = lease.json() as Json;
        await this.c.request('PUT', `${LEASES}/${name}`, j({ ...body, spec: { ...body.spec, renewTime: micro() } }));
      }
    }
    const pods = ((await this.c.request('GET', '/api/v1/pods')).json() as Json).items as Json[];
    for (const p of pods) {
      if (!this.names.has(p.spec?.nodeName)) continue;
      const path = `/api/v1/namespaces/${p.metadata.namespace}/pods/${p.metadata.name}`;
      if (p.metadata.deletionTimestamp) {
        await this.c.request('DELETE', `${path}?gracePeriodSeconds=0`);
      } else if (p.status?.phase !== 'Running') {
        const t = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
        const others = ((p.status?.conditions ?? []) as Json[]).filter((x) => !['Ready', 'ContainersReady', 'Initialized'].includes(x.type));
        p.status = { ...p.status, phase: 'Running', hostIP: '10.0.0.1', podIP: '10.244.1.1', startTime: t, conditions: [...others, ...['Initialized', 'ContainersReady', 'Ready'].map((type) => ({ type, status: 'True', lastProbeTime: null, lastTransitionTime: t }))] };
        await this.c.request('PUT', `${path}/status`, j(p));
      }
    }
  }
}

const pod = (name: string, o: { cpu?: string; spec?: Json; labels?: Json } = {}): string =>
  j({ apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: o.labels ?? { app: name } }, spec: { containers: [{ name: 'c', image: 'busybox:1.36', ...(o.cpu ? { resources: { requests: { cpu: o.cpu } } } : {}) }], ...(o.spec ?? {}) } });

describe('the default scheduler on the default distribution (hollow nodes, kubectl)', function () {
  this.timeout(120_000);
  let c: TestCluster;
  let nodes: HollowNodes;
  const NS = 'sched';
  const get = async (name: string): Promise<Json> => (await c.request('GET', `/api/v1/namespaces/${NS}/pods/${name}`)).json() as Json;
  const nodeOf = async (name: string): Promise<string> => String((await get(name)).spec?.nodeName ?? '');
  const scheduledCondition = async (name: string): Promise<Json | undefined> => ((await get(name)).status?.conditions ?? []).find((x: Json) => x.type === 'PodScheduled');
  const apply = (text: string): Promise<string> => c.ok(['-n', NS, 'apply', '-f', '-'], text);

  before(async () => {
    c = await startCluster();
    nodes = new HollowNodes(c);
    await nodes.add('big', { cpu: '2', labels: { 'topology.kubernetes.io/zone': 'z1' } });
    await nodes.add('gpu', { cpu: '1', labels: { 'topology.kubernetes.io/zone': 'z2' }, taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] });
    await nodes.add('ssd', { cpu: '1', labels: { 'topology.kubernetes.io/zone': 'z2', disk: 'ssd' } });
    nodes.start();
    await c.ok(['create', 'namespace', NS]);
    await until(async () => (await c.request('GET', `/api/v1/namespaces/${NS}/serviceaccounts/default`)).status === 200, 10_000, 'default service account');
  });
  after(async () => {
    nodes?.stop();
    await c?.stop();
  });

  it('binds a pod to the only node with room: PodScheduled=True, a Scheduled event', async () => {
    await apply(pod('fits-big', { cpu: '1500m' }));
    await until(async () => (await nodeOf('fits-big')) !== '', 20_000, 'fits-big bound');
    expect(await nodeOf('fits-big')).to.equal('big');
    expect((await scheduledCondition('fits-big'))?.status).to.equal('True');
    await until(async () => (await c.ok(['-n', NS, 'get', 'events', '--field-selector', 'involvedObject.name=fits-big', '-o', 'json'])).includes('Successfully assigned sched/fits-big to big'), 10_000, 'Scheduled event');
  });

  it('keeps a pod that fits nowhere Pending with Kubernetes\' message, and binds it once a node with room appears', async () => {
    await apply(pod('too-big', { cpu: '1500m' }));
    await until(async () => (await scheduledCondition('too-big'))?.status === 'False', 20_000, 'PodScheduled=False');
    const cond = (await scheduledCondition('too-big'))!;
    expect(cond.reason).to.equal('Unschedulable');
    expect(cond.message).to.match(/^0\/3 nodes are available: 1 node\(s\) had untolerated taint \{dedicated: gpu\}, 2 Insufficient cpu\. preemption: /);
    // The event is written in the background: wait for kubectl describe to show it.
    await until(async () => /FailedScheduling.*0\/3 nodes are available/.test(await c.ok(['-n', NS, 'describe', 'pod', 'too-big'])), 15_000, 'FailedScheduling in kubectl describe');
    await nodes.add('late', { cpu: '4' });
    await until(async () => (await nodeOf('too-big')) === 'late', 30_000, 'too-big bound to the new node');
  });

  it('honours nodeSelector, tolerations with node affinity, and ignores pods of other schedulers', async () => {
    await apply(pod('wants-ssd', { spec: { nodeSelector: { disk: 'ssd' } } }));
    await apply(pod('wants-gpu', { spec: { tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }], affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['gpu'] }] }] } } } } }));
    await apply(pod('elsewhere', { spec: { schedulerName: 'someone-else' } }));
    await until(async () => (await nodeOf('wants-ssd')) !== '' && (await nodeOf('wants-gpu')) !== '', 20_000, 'both bound');
    expect([await nodeOf('wants-ssd'), await nodeOf('wants-gpu')]).to.deep.equal(['ssd', 'gpu']);
    await sleep(1500);
    expect(await nodeOf('elsewhere')).to.equal('');
    expect(await scheduledCondition('elsewhere'), 'not this scheduler\'s pod: untouched').to.equal(undefined);
  });

  it('spreads a Deployment\'s replicas over hostnames with required anti-affinity, and leaves the extra one Pending', async () => {
    const spec = {
      replicas: 5,
      selector: { matchLabels: { app: 'spread' } },
      template: {
        metadata: { labels: { app: 'spread' } },
        spec: {
          tolerations: [{ key: 'dedicated', operator: 'Exists' }],
          affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { app: 'spread' } } }] } },
          containers: [{ name: 'c', image: 'busybox:1.36' }],
        },
      },
    };
    await apply(j({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'spread' }, spec }));
    const placed = async (): Promise<Json[]> => (((await c.request('GET', `/api/v1/namespaces/${NS}/pods?labelSelector=app%3Dspread`)).json() as Json).items as Json[]);
    await until(async () => (await placed()).filter((p) => p.spec.nodeName).length === 4, 30_000, 'four replicas on four nodes');
    const pods = await placed();
    const hosts = pods.map((p) => p.spec.nodeName).filter(Boolean);
    expect(new Set(hosts).size, `hosts ${hosts.join(',')}`).to.equal(4);
    const pending = pods.find((p) => !p.spec.nodeName)!;
    await until(async () => ((await get(pending.metadata.name)).status?.conditions ?? []).some((x: Json) => x.type === 'PodScheduled' && x.status === 'False'), 20_000, 'the fifth replica Unschedulable');
    const msg = ((await get(pending.metadata.name)).status.conditions as Json[]).find((x) => x.type === 'PodScheduled')!.message as string;
    expect(msg).to.match(/^0\/4 nodes are available: 4 node\(s\) didn't match pod anti-affinity rules\./);
    await c.ok(['-n', NS, 'delete', 'deployment', 'spread']);
  });

  it('spreads pods across zones with a required topology spread constraint (maxSkew 1)', async () => {
    const constraint = { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: { app: 'zonal' } } };
    for (const i of [1, 2, 3, 4]) {
      await apply(pod(`zonal-${i}`, { labels: { app: 'zonal' }, spec: { topologySpreadConstraints: [constraint] } }));
      await until(async () => (await nodeOf(`zonal-${i}`)) !== '', 20_000, `zonal-${i} bound`);
    }
    const zoneOf: Record<string, string> = { big: 'z1', late: '', gpu: 'z2', ssd: 'z2' };
    const zones = await Promise.all([1, 2, 3, 4].map(async (i) => zoneOf[await nodeOf(`zonal-${i}`)]));
    // "late" has no zone label: pods never go there under a DoNotSchedule constraint on zones.
    expect(zones.filter((z) => z === 'z1').length, `zones ${zones.join(',')}`).to.equal(2);
    expect(zones.filter((z) => z === 'z2').length, `zones ${zones.join(',')}`).to.equal(2);
  });
  it('preempts a lower-priority pod for a pod of a higher PriorityClass: the victim goes, the preemptor binds there', async () => {
    await apply(j({ apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: { name: 'urgent' }, value: 1000, description: 'test' }));
    // Fill the "ssd" node (1 CPU) with a low-priority pod, pinned there.
    await apply(pod('victim', { cpu: '800m', spec: { nodeSelector: { disk: 'ssd' } } }));
    await until(async () => (await nodeOf('victim')) === 'ssd', 20_000, 'victim on ssd');
    const victimUid = (await get('victim')).metadata.uid;
    await apply(pod('preemptor', { cpu: '800m', spec: { nodeSelector: { disk: 'ssd' }, priorityClassName: 'urgent' } }));
    const p = await get('preemptor');
    expect(p.spec.priority, 'the Priority admission plugin resolved the class').to.equal(1000);
    await until(async () => (await nodeOf('preemptor')) === 'ssd', 30_000, 'preemptor bound to ssd');
    const victim = await c.request('GET', `/api/v1/namespaces/${NS}/pods/victim`);
    expect(victim.status === 404 || (victim.json() as Json).metadata.uid !== victimUid, 'the victim was deleted').to.equal(true);
    await until(async () => (await c.ok(['-n', NS, 'get', 'events', '-o', 'json'])).includes('Preempted'), 15_000, 'a Preempted event');
  });
});

describe('an example distribution with a second, bin-packing scheduler profile', function () {
  this.timeout(120_000);
  let c: TestCluster;
  let nodes: HollowNodes;

  before(async () => {
    c = await startCluster(['--distribution', join(ROOT, 'distributions', 'bin-packing.yaml')]);
    nodes = new HollowNodes(c);
    for (const n of ['n1', 'n2', 'n3']) await nodes.add(n, { cpu: '4', memory: '8Gi' });
    nodes.start();
  });
  after(async () => {
    nodes?.stop();
    await c?.stop();
  });

  const place = async (name: string, schedulerName: string): Promise<string> => {
    await c.ok(['apply', '-f', '-'], j({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default' }, spec: { schedulerName, containers: [{ name: 'c', image: 'busybox:1.36', resources: { requests: { cpu: '1', memory: '1Gi' } } }] } }));
    let node = '';
    await until(async () => (node = String(((await c.request('GET', `/api/v1/namespaces/default/pods/${name}`)).json() as Json).spec?.nodeName ?? '')) !== '', 20_000, `${name} bound`);
    return node;
  };

  it('bin-packing (MostAllocated) puts pods on the fullest node; the default profile (LeastAllocated) on the emptiest', async () => {
    const first = await place('pack-1', 'bin-packing');
    expect(await place('pack-2', 'bin-packing')).to.equal(first);
    expect(await place('pack-3', 'bin-packing')).to.equal(first);
    const spread = await place('spread-1', 'default-scheduler');
    expect(spread).to.not.equal(first);
  });
});
