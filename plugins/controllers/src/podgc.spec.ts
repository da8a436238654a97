import { expect } from 'chai';
import { ApiStatusError, type KubeObject, type Logger, type RequestOptions } from '@kubernel/sdk';
import {
  DELETION_BY_POD_GC_REASON,
  OrphanQuarantine,
  PodGarbageCollector,
  TAINT_NODE_OUT_OF_SERVICE,
  byEvictionAndCreation,
  failedStatus,
  formatTime,
  isNodeReady,
  isPodEvicted,
  isPodTerminated,
  nodeHasTaint,
  podGcControllerPlugin,
  podsOnNodes,
  terminatedPodsToDelete,
  terminatingPodsOnOutOfServiceNodes,
  unknownNodeNames,
  unscheduledTerminatingPods,
  withPodCondition,
} from './podgc.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const T0 = Date.parse('2026-03-01T10:00:00Z');
const silent = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Logger;

interface PodSpec {
  phase?: string;
  reason?: string;
  node?: string;
  created?: number;
  deleting?: boolean;
  ns?: string;
  conditions?: Json[];
}

let uidCounter = 0;
function pod(name: string, o: PodSpec = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: o.ns ?? 'default',
      uid: `uid-${name}-${++uidCounter}`,
      resourceVersion: '1',
      creationTimestamp: formatTime(o.created ?? T0),
      ...(o.deleting ? { deletionTimestamp: formatTime(T0), finalizers: ['example.com/hold'] } : {}),
    },
    spec: { containers: [{ name: 'c', image: 'busybox' }], ...(o.node ? { nodeName: o.node } : {}) },
    status: { phase: o.phase ?? 'Running', ...(o.reason ? { reason: o.reason } : {}), ...(o.conditions ? { conditions: o.conditions } : {}) },
  };
}

function node(name: string, ready: boolean, taints: Json[] = []): KubeObject {
  return { apiVersion: 'v1', kind: 'Node', metadata: { name }, spec: taints.length ? { taints } : {}, status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] } };
}

const names = (pods: readonly KubeObject[]): string[] => pods.map((p) => String(p.metadata?.name));

describe('pod GC: which terminated pods go (Kubernetes gcTerminated)', () => {
  it('knows terminal phases and evicted pods', () => {
    expect(['Succeeded', 'Failed', 'Running', 'Pending', 'Unknown'].map((phase) => isPodTerminated(pod('p', { phase })))).to.deep.equal([true, true, false, false, false]);
    expect(isPodEvicted(pod('p', { phase: 'Failed', reason: 'Evicted' }))).to.equal(true);
    expect(isPodEvicted(pod('p', { phase: 'Failed', reason: 'OOMKilled' }))).to.equal(false);
    expect(isPodEvicted(pod('p', { phase: 'Running', reason: 'Evicted' }))).to.equal(false);
  });

  it('orders evicted pods first, then older first, then by name', () => {
    const pods = [pod('c', { phase: 'Succeeded', created: T0 + 2000 }), pod('b', { phase: 'Failed', created: T0 }), pod('a', { phase: 'Failed', created: T0 }), pod('z', { phase: 'Failed', reason: 'Evicted', created: T0 + 9000 })];
    expect(names([...pods].sort(byEvictionAndCreation))).to.deep.equal(['z', 'a', 'b', 'c']);
  });

  it('deletes nothing at or below the threshold, and nothing with threshold 0 (off)', () => {
    const pods = [pod('a', { phase: 'Succeeded' }), pod('b', { phase: 'Failed' }), pod('c')];
    expect(terminatedPodsToDelete(pods, 2)).to.deep.equal([]);
    expect(terminatedPodsToDelete(pods, 5)).to.deep.equal([]);
    expect(terminatedPodsToDelete(pods, 0)).to.deep.equal([]);
  });

  it('deletes the excess over the threshold, evicted then oldest, never a running pod', () => {
    const pods = [
      pod('old', { phase: 'Succeeded', created: T0 }),
      pod('mid', { phase: 'Failed', created: T0 + 1000 }),
      pod('new', { phase: 'Succeeded', created: T0 + 2000 }),
      pod('evicted', { phase: 'Failed', reason: 'Evicted', created: T0 + 3000 }),
      pod('running', { phase: 'Running', created: T0 - 5000 }),
      pod('pending', { phase: 'Pending', created: T0 - 5000 }),
    ];
    expect(names(terminatedPodsToDelete(pods, 2))).to.deep.equal(['evicted', 'old']);
    expect(names(terminatedPodsToDelete(pods, 1))).to.deep.equal(['evicted', 'old', 'mid']);
  });
});

describe('pod GC: orphans, unscheduled and out-of-service pods (pure helpers)', () => {
  it('reads node readiness and taints', () => {
    expect(isNodeReady(node('n', true))).to.equal(true);
    expect(isNodeReady(node('n', false))).to.equal(false);
    expect(isNodeReady({ metadata: { name: 'n' } })).to.equal(false);
    expect(nodeHasTaint(node('n', false, [{ key: TAINT_NODE_OUT_OF_SERVICE, value: 'nodeshutdown', effect: 'NoExecute' }]), TAINT_NODE_OUT_OF_SERVICE)).to.equal(true);
    expect(nodeHasTaint(node('n', false, [{ key: 'other', effect: 'NoExecute' }]), TAINT_NODE_OUT_OF_SERVICE)).to.equal(false);
  });

  it('finds node names the cache does not know, and the pods bound to gone nodes', () => {
    const pods = [pod('a', { node: 'n1' }), pod('b', { node: 'ghost' }), pod('c'), pod('d', { node: 'ghost' }), pod('e', { node: 'other' })];
    expect([...unknownNodeNames(pods, (n) => n === 'n1')].sort()).to.deep.equal(['ghost', 'other']);
    expect(names(podsOnNodes(pods, new Set(['ghost'])))).to.deep.equal(['b', 'd']);
  });

  it('selects terminating pods without a node', () => {
    const pods = [pod('a', { deleting: true }), pod('b', { deleting: true, node: 'n1' }), pod('c')];
    expect(names(unscheduledTerminatingPods(pods))).to.deep.equal(['a']);
  });

  it('selects terminating pods on NotReady nodes tainted out-of-service only', () => {
    const nodes = new Map([
      ['oos', node('oos', false, [{ key: TAINT_NODE_OUT_OF_SERVICE, effect: 'NoExecute' }])],
      ['oos-ready', node('oos-ready', true, [{ key: TAINT_NODE_OUT_OF_SERVICE, effect: 'NoExecute' }])],
      ['notready', node('notready', false)],
    ]);
    const pods = [
      pod('hit', { node: 'oos', deleting: true }),
      pod('running-on-oos', { node: 'oos' }),
      pod('ready-node', { node: 'oos-ready', deleting: true }),
      pod('no-taint', { node: 'notready', deleting: true }),
      pod('unknown-node', { node: 'missing', deleting: true }),
      pod('unscheduled', { deleting: true }),
    ];
    expect(names(terminatingPodsOnOutOfServiceNodes(pods, (n) => nodes.get(n)))).to.deep.equal(['hit']);
  });

  it('quarantines a node name from its first sighting; later sightings do not postpone it; taking it ends it', () => {
    const q = new OrphanQuarantine(40_000);
    q.observe(['ghost'], T0);
    q.observe(['ghost', 'other'], T0 + 30_000);
    expect(q.takeDue(T0 + 39_999)).to.deep.equal([]);
    expect(q.takeDue(T0 + 40_000)).to.deep.equal(['ghost']);
    expect(q.size).to.equal(1);
    expect(q.takeDue(T0 + 40_001)).to.deep.equal([]);
    // Seen again after it was taken: a fresh quarantine.
    q.observe(['ghost'], T0 + 41_000);
    expect(q.takeDue(T0 + 70_000)).to.deep.equal(['other']);
    expect(q.takeDue(T0 + 81_000)).to.deep.equal(['ghost']);
  });

  it('sets a pod condition as UpdatePodCondition does (transition time moves only with the status)', () => {
    const before = [{ type: 'Ready', status: 'True', lastTransitionTime: formatTime(T0) }];
    const added = withPodCondition(before, { type: 'DisruptionTarget', status: 'True', reason: 'R' }, T0 + 5000);
    expect(added).to.deep.equal([...before, { type: 'DisruptionTarget', status: 'True', reason: 'R', lastTransitionTime: formatTime(T0 + 5000) }]);
    const same = withPodCondition(added, { type: 'DisruptionTarget', status: 'True', reason: 'S' }, T0 + 9000);
    expect(same[1]).to.deep.equal({ type: 'DisruptionTarget', status: 'True', reason: 'S', lastTransitionTime: formatTime(T0 + 5000) });
    const flipped = withPodCondition(same, { type: 'Ready', status: 'False' }, T0 + 9000);
    expect(flipped[0]).to.deep.equal({ type: 'Ready', status: 'False', lastTransitionTime: formatTime(T0 + 9000) });
  });

  it('moves a live pod to Failed (with the condition) and leaves a terminal pod alone', () => {
    expect(failedStatus(pod('p', { phase: 'Succeeded' }), undefined, T0)).to.equal(undefined);
    expect(failedStatus(pod('p', { phase: 'Failed' }), { type: 'DisruptionTarget', status: 'True' }, T0)).to.equal(undefined);
    const s = failedStatus(pod('p', { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] }), { type: 'DisruptionTarget', status: 'True', reason: DELETION_BY_POD_GC_REASON }, T0)!;
    expect(s.phase).to.equal('Failed');
    expect(s.conditions.map((c: Json) => [c.type, c.status, c.reason])).to.deep.equal([['Ready', 'True', undefined], ['DisruptionTarget', 'True', DELETION_BY_POD_GC_REASON]]);
    expect(failedStatus(pod('p', { phase: 'Pending' }), undefined, T0)).to.deep.equal({ phase: 'Failed' });
  });
});

/** An API double: nodes that exist (GET 200), failures to inject, and a log of writes. */
class FakeApi {
  readonly calls: Array<{ method: string; path: string; body?: Json }> = [];
  readonly liveNodes = new Set<string>();
  readonly failNodeGet = new Set<string>();
  /** Pod paths whose next status PUT conflicts; and what a GET of the pod then returns. */
  readonly conflictOnce = new Set<string>();
  readonly fresh = new Map<string, KubeObject>();

  async get(path: string): Promise<KubeObject> {
    this.calls.push({ method: 'GET', path });
    const m = /^\/api\/v1\/nodes\/(.+)$/.exec(path);
    if (m) {
      if (this.failNodeGet.has(m[1]!)) throw new ApiStatusError(500, 'InternalError', 'boom');
      if (this.liveNodes.has(m[1]!)) return { metadata: { name: m[1] } };
      throw new ApiStatusError(404, 'NotFound', 'not found');
    }
    const p = this.fresh.get(path);
    if (p) return p;
    throw new ApiStatusError(404, 'NotFound', 'not found');
  }

  async update(path: string, body: Json): Promise<KubeObject> {
    this.calls.push({ method: 'PUT', path, body });
    const podPath = path.replace(/\/status$/, '');
    if (this.conflictOnce.delete(podPath)) throw new ApiStatusError(409, 'Conflict', 'the object has been modified');
    return body;
  }

  async request(method: string, path: string, options: RequestOptions = {}): Promise<KubeObject> {
    this.calls.push({ method, path, body: options.body as Json });
    return {};
  }

  writes(): Array<[string, string]> {
    return this.calls.filter((c) => c.method !== 'GET').map((c) => [c.method, c.path]);
  }
}

const podPath = (name: string, ns = 'default'): string => `/api/v1/namespaces/${ns}/pods/${name}`;

describe('pod GC: the collector against an API double', () => {
  let api: FakeApi;
  let pods: KubeObject[];
  let nodes: Map<string, KubeObject>;
  let now: number;
  const collector = (threshold = 0, quarantineMs = 40_000): PodGarbageCollector =>
    new PodGarbageCollector({ api: api as never, pods: { list: () => pods }, nodes: { get: (k: string) => nodes.get(k) }, terminatedPodGCThreshold: threshold, orphanQuarantineMs: quarantineMs, logger: silent, now: () => now });

  beforeEach(() => {
    api = new FakeApi();
    nodes = new Map([['n1', node('n1', true)]]);
    now = T0;
  });

  it('force-deletes the pods of a node gone for good only after the quarantine and a live GET, marking them Failed with DisruptionTarget first', async () => {
    pods = [pod('on-ghost', { node: 'ghost' }), pod('on-n1', { node: 'n1' }), pod('on-late', { node: 'late' }), pod('done-on-ghost', { node: 'ghost', phase: 'Succeeded' })];
    api.liveNodes.add('late'); // exists, but the cache has not seen it yet
    const gc = collector();
    expect((await gc.pass()).orphaned).to.deep.equal([]);
    expect(api.calls).to.deep.equal([]);
    expect(gc.quarantined).to.equal(2);
    now = T0 + 39_000;
    expect((await gc.pass()).orphaned).to.deep.equal([]);
    now = T0 + 40_000;
    const result = await gc.pass();
    expect(result.orphaned.sort()).to.deep.equal(['default/done-on-ghost', 'default/on-ghost']);
    expect(api.calls.filter((c) => c.method === 'GET').map((c) => c.path).sort()).to.deep.equal(['/api/v1/nodes/ghost', '/api/v1/nodes/late']);
    // The live pod goes to Failed before its delete; the one already terminal is only deleted.
    const writes = api.writes().map((w) => w.join(' '));
    expect([...writes].sort()).to.deep.equal([`DELETE ${podPath('done-on-ghost')}`, `DELETE ${podPath('on-ghost')}`, `PUT ${podPath('on-ghost')}/status`]);
    expect(writes.indexOf(`PUT ${podPath('on-ghost')}/status`)).to.be.below(writes.indexOf(`DELETE ${podPath('on-ghost')}`));
    const status = api.calls[api.calls.findIndex((c) => c.method === 'PUT')]!.body!.status;
    expect(status.phase).to.equal('Failed');
    expect(status.conditions).to.deep.equal([{ type: 'DisruptionTarget', status: 'True', reason: 'DeletionByPodGC', message: 'PodGC: node no longer exists', lastTransitionTime: formatTime(T0 + 40_000) }]);
    const del = api.calls.find((c) => c.method === 'DELETE' && c.path === podPath('on-ghost'))!.body!;
    expect(del).to.deep.equal({ apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0, preconditions: { uid: pods[0]!.metadata!.uid } });
  });

  it('does not delete when the node GET fails for another reason; the node is quarantined again', async () => {
    pods = [pod('p', { node: 'flaky' })];
    api.failNodeGet.add('flaky');
    const gc = collector(0, 1000);
    await gc.pass();
    now += 1000;
    expect((await gc.pass()).orphaned).to.deep.equal([]);
    expect(api.writes()).to.deep.equal([]);
    api.failNodeGet.clear();
    now += 1000; // re-observed on the last pass: a fresh quarantine from then
    await gc.pass();
    now += 1000;
    expect((await gc.pass()).orphaned).to.deep.equal(['default/p']);
  });

  it('skips a node that appears in the cache during its quarantine, without a GET', async () => {
    pods = [pod('p', { node: 'new' })];
    const gc = collector(0, 1000);
    await gc.pass();
    nodes.set('new', node('new', true));
    now += 5000;
    await gc.pass();
    expect(api.calls).to.deep.equal([]);
  });

  it('deletes terminated pods beyond the threshold with grace 0, without touching their status', async () => {
    pods = [pod('a', { phase: 'Succeeded', created: T0 }), pod('b', { phase: 'Failed', created: T0 + 1 }), pod('c', { phase: 'Succeeded', created: T0 + 2 }), pod('r')];
    const result = await collector(2).pass();
    expect(result.terminated).to.deep.equal(['default/a']);
    expect(api.writes()).to.deep.equal([['DELETE', podPath('a')]]);
  });

  it('deletes a pod once per pass even when several passes select it', async () => {
    pods = [pod('a', { phase: 'Failed', node: 'ghost' }), pod('b', { phase: 'Failed' })];
    const gc = collector(1, 0);
    const result = await gc.pass();
    expect(result.terminated).to.deep.equal(['default/a']);
    expect(result.orphaned).to.deep.equal([]);
    expect(api.writes()).to.deep.equal([['DELETE', podPath('a')]]);
  });

  it('marks unscheduled terminating pods Failed and force-deletes them', async () => {
    pods = [pod('stuck', { deleting: true, phase: 'Pending' }), pod('fine', { phase: 'Pending' })];
    const result = await collector().pass();
    expect(result.unscheduled).to.deep.equal(['default/stuck']);
    expect(api.writes()).to.deep.equal([['PUT', `${podPath('stuck')}/status`], ['DELETE', podPath('stuck')]]);
    expect(api.calls[0]!.body!.status).to.deep.equal({ phase: 'Failed' });
  });

  it('force-deletes terminating pods on NotReady out-of-service nodes', async () => {
    nodes.set('dead', node('dead', false, [{ key: TAINT_NODE_OUT_OF_SERVICE, value: 'nodeshutdown', effect: 'NoExecute' }]));
    pods = [pod('t', { node: 'dead', deleting: true }), pod('alive', { node: 'dead' })];
    const result = await collector().pass();
    expect(result.outOfService).to.deep.equal(['default/t']);
    expect(api.writes()).to.deep.equal([['PUT', `${podPath('t')}/status`], ['DELETE', podPath('t')]]);
  });

  it('rereads the pod after a status conflict, and leaves a namesake with another uid alone', async () => {
    pods = [pod('x', { deleting: true }), pod('y', { deleting: true })];
    api.conflictOnce.add(podPath('x'));
    api.conflictOnce.add(podPath('y'));
    api.fresh.set(podPath('x'), { ...pods[0]!, metadata: { ...pods[0]!.metadata!, resourceVersion: '2' } });
    api.fresh.set(podPath('y'), { ...pods[1]!, metadata: { ...pods[1]!.metadata!, uid: 'someone-else' } });
    const result = await collector().pass();
    expect(result.unscheduled).to.deep.equal(['default/x']);
    expect(api.writes()).to.deep.equal([
      ['PUT', `${podPath('x')}/status`],
      ['PUT', `${podPath('y')}/status`],
      ['PUT', `${podPath('x')}/status`],
      ['DELETE', podPath('x')],
    ]);
    expect(api.calls.filter((c) => c.method === 'PUT')[2]!.body!.metadata.resourceVersion).to.equal('2');
  });
});

describe('pod GC: the plugin definition', () => {
  it('has Kubernetes defaults: threshold 12500, 20 s period, 40 s quarantine', () => {
    const props = podGcControllerPlugin.configSchema!.properties as Json;
    expect(podGcControllerPlugin.id).to.equal('pod-gc-controller');
    expect(podGcControllerPlugin.kind).to.equal('controller');
    expect([props.terminatedPodGCThreshold.default, props.gcPeriodSeconds.default, props.orphanQuarantineSeconds.default]).to.deep.equal([12500, 20, 40]);
  });
});
