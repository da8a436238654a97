import { expect } from 'chai';
import { CycleState, NodeInfo, PodInfo, Snapshot, labelSelectorMatches, podMatchesNodeSelectorAndAffinity, type ApiClient, type FrameworkPlugin, type KubeObject, type LabelSelector, type NodeSnapshot, type Status } from '@kubernel/sdk';
import { describeSchedulerPluginContract, runPluginOnSnapshot, testFrameworkHandle, testNode, testPod } from '@kubernel/sdk/testing';
import { ERR_REASON_CONSTRAINTS_NOT_MATCH, ERR_REASON_NODE_LABEL_NOT_MATCH, podTopologySpreadFactory, podTopologySpreadPlugin, type TopologySpreadConstraintSpec } from './pod-topology-spread.js';

type Obj = Record<string, unknown>;

const ZONE = 'topology.kubernetes.io/zone';
const HOST = 'kubernetes.io/hostname';

/** A constraint selecting `foo` pods (Exists), or the given selector. */
function spread(topologyKey: string, maxSkew: number, when: 'DoNotSchedule' | 'ScheduleAnyway' = 'DoNotSchedule', extra: Partial<TopologySpreadConstraintSpec> = {}): TopologySpreadConstraintSpec {
  return { maxSkew, topologyKey, whenUnsatisfiable: when, labelSelector: { matchExpressions: [{ key: 'foo', operator: 'Exists' }] }, ...extra };
}

/** A pod with labels (default `foo: ''`), optionally on a node, with constraints and other spec fields. */
function pod(name: string, o: { nodeName?: string; labels?: Record<string, string>; constraints?: TopologySpreadConstraintSpec[]; namespace?: string; spec?: Obj; deleting?: boolean } = {}): KubeObject {
  const p = testPod(name, {
    labels: o.labels ?? { foo: '' },
    ...(o.nodeName ? { nodeName: o.nodeName } : {}),
    ...(o.namespace ? { namespace: o.namespace } : {}),
    spec: { ...(o.constraints ? { topologySpreadConstraints: o.constraints } : {}), ...(o.spec ?? {}) },
  });
  if (o.deleting) (p.metadata as Obj).deletionTimestamp = '2026-01-01T00:00:00Z';
  return p;
}

/** `count` pods named after the node, on it. */
const podsOn = (nodeName: string, count: number, o: { labels?: Record<string, string>; namespace?: string } = {}): KubeObject[] => Array.from({ length: count }, (_, i) => pod(`${nodeName}-p${i}`, { nodeName, ...o }));

/** Nodes a, b in zone1 and x, y in zone2 (upstream's test topology). */
const nodes = [testNode('node-a', { labels: { [ZONE]: 'zone1' } }), testNode('node-b', { labels: { [ZONE]: 'zone1' } }), testNode('node-x', { labels: { [ZONE]: 'zone2' } }), testNode('node-y', { labels: { [ZONE]: 'zone2' } })];

async function create(snapshot: NodeSnapshot, args?: unknown, api?: ApiClient): Promise<FrameworkPlugin> {
  return podTopologySpreadFactory.create(args, testFrameworkHandle(snapshot, api ? { api } : {}));
}

async function run(incoming: KubeObject, existing: KubeObject[], o: { nodes?: KubeObject[]; args?: unknown; api?: ApiClient } = {}) {
  const snapshot = Snapshot.of(o.nodes ?? nodes, existing);
  return runPluginOnSnapshot(await create(snapshot, o.args, o.api), incoming, snapshot);
}

function rejections(r: { filter: ReadonlyMap<string, Status | undefined> }): Record<string, [string, string]> {
  const out: Record<string, [string, string]> = {};
  for (const [n, s] of r.filter) if (s) out[n] = [s.code, s.message()];
  return out;
}

const SKEW: [string, string] = ['Unschedulable', ERR_REASON_CONSTRAINTS_NOT_MATCH];
const LABEL: [string, string] = ['UnschedulableAndUnresolvable', ERR_REASON_NODE_LABEL_NOT_MATCH];

/** A fake API client whose informers serve fixed objects (for default constraints' selectors). */
function fakeApi(objects: Record<string, KubeObject[]>): ApiClient & { started: string[] } {
  const started: string[] = [];
  const api = {
    started,
    informer(path: string) {
      const items = objects[path] ?? [];
      return {
        run: () => void started.push(path),
        list: () => items,
        byIndex: (_index: string, ns: string) => items.filter((o) => o.metadata?.namespace === ns),
        get: (key: string) => items.find((o) => `${o.metadata?.namespace}/${o.metadata?.name}` === key),
      };
    },
  };
  return api as unknown as ApiClient & { started: string[] };
}

describe('PodTopologySpread', () => {
  describe('PreFilter and Filter', () => {
    it('skips pods without DoNotSchedule constraints (and without defaults)', async () => {
      expect((await run(pod('p'), [])).preFilter?.code).to.equal('Skip');
      expect((await run(pod('p', { constraints: [spread(ZONE, 1, 'ScheduleAnyway')] }), [])).preFilter?.code).to.equal('Skip');
    });

    const cases: Array<{ name: string; pod: KubeObject; existing: KubeObject[]; nodes?: KubeObject[]; feasible: string[]; rejected: Record<string, [string, string]> }> = [
      {
        name: 'no existing pods: every node fits',
        pod: pod('p', { constraints: [spread(ZONE, 1)] }),
        existing: [],
        feasible: ['node-a', 'node-b', 'node-x', 'node-y'],
        rejected: {},
      },
      {
        name: 'maxSkew 1 across zones: the fuller zone is refused',
        pod: pod('p', { constraints: [spread(ZONE, 1)] }),
        existing: [...podsOn('node-a', 1), ...podsOn('node-x', 1), ...podsOn('node-y', 1)],
        feasible: ['node-a', 'node-b'],
        rejected: { 'node-x': SKEW, 'node-y': SKEW },
      },
      {
        name: 'maxSkew 2 tolerates a difference of one',
        pod: pod('p', { constraints: [spread(ZONE, 2)] }),
        existing: [...podsOn('node-a', 1), ...podsOn('node-x', 1), ...podsOn('node-y', 1)],
        feasible: ['node-a', 'node-b', 'node-x', 'node-y'],
        rejected: {},
      },
      {
        name: 'hostname and zone constraints both apply',
        pod: pod('p', { constraints: [spread(ZONE, 1), spread(HOST, 1)] }),
        existing: [...podsOn('node-a', 1), ...podsOn('node-x', 1), ...podsOn('node-y', 1)],
        feasible: ['node-b'],
        rejected: { 'node-a': SKEW, 'node-x': SKEW, 'node-y': SKEW },
      },
      {
        name: 'a node without the topology label is unresolvable, and its pods do not count',
        pod: pod('p', { constraints: [spread(ZONE, 1)] }),
        nodes: [...nodes, testNode('node-n')],
        existing: [...podsOn('node-a', 1), ...podsOn('node-n', 3)],
        feasible: ['node-x', 'node-y'],
        rejected: { 'node-a': SKEW, 'node-b': SKEW, 'node-n': LABEL },
      },
      {
        name: 'a pod that does not match its own selector does not add to the skew',
        pod: pod('p', { labels: { bar: '' }, constraints: [spread(ZONE, 1)] }),
        existing: [...podsOn('node-a', 1)],
        feasible: ['node-a', 'node-b', 'node-x', 'node-y'],
        rejected: {},
      },
      {
        name: 'pods of other namespaces, terminating pods and non-matching pods do not count',
        pod: pod('p', { constraints: [spread(ZONE, 1)] }),
        existing: [...podsOn('node-a', 2, { namespace: 'other' }), pod('t', { nodeName: 'node-a', deleting: true }), ...podsOn('node-b', 2, { labels: { bar: '' } }), ...podsOn('node-x', 1)],
        feasible: ['node-a', 'node-b'],
        rejected: { 'node-x': SKEW, 'node-y': SKEW },
      },
      {
        name: 'minDomains above the number of domains makes the global minimum 0',
        pod: pod('p', { constraints: [spread(ZONE, 1, 'DoNotSchedule', { minDomains: 3 })] }),
        existing: [...podsOn('node-a', 1), ...podsOn('node-x', 1)],
        feasible: [],
        rejected: { 'node-a': SKEW, 'node-b': SKEW, 'node-x': SKEW, 'node-y': SKEW },
      },
      {
        name: 'minDomains equal to the number of domains keeps the real minimum',
        pod: pod('p', { constraints: [spread(ZONE, 1, 'DoNotSchedule', { minDomains: 2 })] }),
        existing: [...podsOn('node-a', 1), ...podsOn('node-x', 1)],
        feasible: ['node-a', 'node-b', 'node-x', 'node-y'],
        rejected: {},
      },
      {
        name: 'minDomains by hostname: 4 nodes, minDomains 5, maxSkew 2',
        pod: pod('p', { constraints: [spread(HOST, 2, 'DoNotSchedule', { minDomains: 5 })] }),
        existing: [...podsOn('node-a', 2), ...podsOn('node-b', 1), ...podsOn('node-x', 1), ...podsOn('node-y', 1)],
        feasible: ['node-b', 'node-x', 'node-y'],
        rejected: { 'node-a': SKEW },
      },
      {
        name: 'matchLabelKeys narrow the selector to pods with the incoming pod\'s values',
        pod: pod('p', { labels: { foo: '', version: 'v2' }, constraints: [spread(ZONE, 1, 'DoNotSchedule', { matchLabelKeys: ['version'] })] }),
        existing: [...podsOn('node-a', 3, { labels: { foo: '', version: 'v1' } }), ...podsOn('node-x', 1, { labels: { foo: '', version: 'v2' } })],
        feasible: ['node-a', 'node-b'],
        rejected: { 'node-x': SKEW, 'node-y': SKEW },
      },
      {
        name: 'an absent labelSelector matches no pod',
        pod: pod('p', { constraints: [{ maxSkew: 1, topologyKey: ZONE, whenUnsatisfiable: 'DoNotSchedule' }] }),
        existing: [...podsOn('node-a', 5)],
        feasible: ['node-a', 'node-b', 'node-x', 'node-y'],
        rejected: {},
      },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const r = await run(c.pod, c.existing, c.nodes ? { nodes: c.nodes } : {});
        expect(r.preFilter?.code ?? 'Success').to.equal('Success');
        expect(r.feasible).to.deep.equal(c.feasible);
        expect(rejections(r)).to.deep.equal(c.rejected);
      });
    }

    describe('node inclusion policies', () => {
      const three = [...nodes, testNode('node-z', { labels: { [ZONE]: 'zone3' }, taints: [{ key: 'dedicated', value: 'x', effect: 'NoSchedule' }] })];
      const existing = [...podsOn('node-a', 1), ...podsOn('node-x', 1)];
      const notZone3 = { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: ZONE, operator: 'NotIn', values: ['zone3'] }] }] } } } };

      it('nodeAffinityPolicy Honor (default): zones the pod cannot go to are not domains', async () => {
        const r = await run(pod('p', { constraints: [spread(ZONE, 1)], spec: notZone3 }), existing, { nodes: three });
        expect(r.feasible).to.deep.equal(['node-a', 'node-b', 'node-x', 'node-y', 'node-z']);
      });

      it('nodeAffinityPolicy Ignore: they are', async () => {
        const r = await run(pod('p', { constraints: [spread(ZONE, 1, 'DoNotSchedule', { nodeAffinityPolicy: 'Ignore' })], spec: notZone3 }), existing, { nodes: three });
        expect(r.feasible).to.deep.equal(['node-z']);
      });

      it('a nodeSelector is honored like node affinity', async () => {
        const r = await run(pod('p', { constraints: [spread(ZONE, 1)], spec: { nodeSelector: { [ZONE]: 'zone1' } } }), [...podsOn('node-a', 1)], { nodes: three });
        expect(r.feasible).to.deep.equal(['node-a', 'node-b', 'node-x', 'node-y', 'node-z']);
      });

      it('nodeTaintsPolicy Ignore (default): tainted nodes are domains', async () => {
        const r = await run(pod('p', { constraints: [spread(ZONE, 1)] }), existing, { nodes: three });
        expect(r.feasible).to.deep.equal(['node-z']);
      });

      it('nodeTaintsPolicy Honor: untolerated tainted nodes are not domains, tolerated ones are', async () => {
        const honor = spread(ZONE, 1, 'DoNotSchedule', { nodeTaintsPolicy: 'Honor' });
        const r = await run(pod('p', { constraints: [honor] }), existing, { nodes: three });
        expect(r.feasible).to.deep.equal(['node-a', 'node-b', 'node-x', 'node-y', 'node-z']);
        const tolerated = await run(pod('p', { constraints: [honor], spec: { tolerations: [{ key: 'dedicated', operator: 'Exists' }] } }), existing, { nodes: three });
        expect(tolerated.feasible).to.deep.equal(['node-z']);
      });
    });
  });

  describe('PreFilter extensions (preemption)', () => {
    it('addPod and removePod keep counts and the global minimum right, on clones independently', async () => {
      const existing = [...podsOn('node-a', 1), ...podsOn('node-x', 2), pod('other', { nodeName: 'node-b', namespace: 'other' })];
      const snapshot = Snapshot.of(nodes, existing);
      const pl = await create(snapshot);
      const incoming = pod('p', { constraints: [spread(ZONE, 1)] });
      const info = new PodInfo(incoming);
      const state = new CycleState();
      expect(pl.preFilter!(state, incoming, info)).to.equal(undefined);
      const fits = (s: CycleState): string[] => snapshot.list().filter((n) => !pl.filter!(s, incoming, info, n)).map((n) => n.name);
      expect(fits(state)).to.deep.equal(['node-a', 'node-b']);
      const ext = pl.preFilterExtensions!()!;
      const x = snapshot.get('node-x')!;
      // Two pods leave zone2: it becomes the emptiest zone.
      const s1 = state.clone();
      ext.removePod(s1, incoming, x.pods[0]!, x);
      expect(fits(s1)).to.deep.equal(['node-a', 'node-b', 'node-x', 'node-y']);
      ext.removePod(s1, incoming, x.pods[1]!, x);
      expect(fits(s1)).to.deep.equal(['node-x', 'node-y']);
      expect(fits(state)).to.deep.equal(['node-a', 'node-b'], 'the original state is unchanged');
      // A pod added to zone1 evens the zones; pods of another namespace or not matching change nothing.
      const s2 = state.clone();
      ext.addPod(s2, incoming, new PodInfo(pod('n1', { nodeName: 'node-b', namespace: 'other' })), snapshot.get('node-b')!);
      ext.addPod(s2, incoming, new PodInfo(pod('n2', { nodeName: 'node-b', labels: { bar: '' } })), snapshot.get('node-b')!);
      expect(fits(s2)).to.deep.equal(['node-a', 'node-b']);
      ext.addPod(s2, incoming, new PodInfo(pod('n3', { nodeName: 'node-b' })), snapshot.get('node-b')!);
      expect(fits(s2)).to.deep.equal(['node-a', 'node-b', 'node-x', 'node-y']);
      expect(rejections({ filter: new Map(snapshot.list().map((n) => [n.name, pl.filter!(s2.clone(), incoming, info, n)])) })).to.deep.equal({});
    });
  });

  describe('PreScore, Score and NormalizeScore', () => {
    const scores = (r: { scores: ReadonlyMap<string, number> }): Record<string, number> => Object.fromEntries(r.scores);
    const cases: Array<{ name: string; constraints: TopologySpreadConstraintSpec[]; existing: KubeObject[]; nodes?: KubeObject[]; scores: Record<string, number> }> = [
      {
        name: 'no existing pods: every node gets 100',
        constraints: [spread(HOST, 1, 'ScheduleAnyway')],
        existing: [],
        scores: { 'node-a': 100, 'node-b': 100, 'node-x': 100, 'node-y': 100 },
      },
      {
        name: 'by hostname: fewer matching pods score higher (log-weighted, rounded, then normalized)',
        constraints: [spread(HOST, 1, 'ScheduleAnyway')],
        existing: [...podsOn('node-a', 2), ...podsOn('node-b', 1), ...podsOn('node-y', 3)],
        scores: { 'node-a': 20, 'node-b': 60, 'node-x': 100, 'node-y': 0 },
      },
      {
        name: 'by zone',
        constraints: [spread(ZONE, 1, 'ScheduleAnyway')],
        existing: [...podsOn('node-a', 1), ...podsOn('node-b', 1), ...podsOn('node-x', 1)],
        scores: { 'node-a': 33, 'node-b': 33, 'node-x': 100, 'node-y': 100 },
      },
      {
        name: 'by zone and hostname',
        constraints: [spread(ZONE, 1, 'ScheduleAnyway'), spread(HOST, 1, 'ScheduleAnyway')],
        existing: [...podsOn('node-a', 1), ...podsOn('node-b', 1), ...podsOn('node-x', 1)],
        scores: { 'node-a': 20, 'node-b': 20, 'node-x': 60, 'node-y': 100 },
      },
      {
        name: 'a larger maxSkew waters differences down',
        constraints: [spread(ZONE, 5, 'ScheduleAnyway')],
        existing: [...podsOn('node-a', 1), ...podsOn('node-b', 1), ...podsOn('node-x', 1)],
        scores: { 'node-a': 71, 'node-b': 71, 'node-x': 100, 'node-y': 100 },
      },
      {
        name: 'nodes without the topology label score 0 and do not count',
        constraints: [spread(ZONE, 1, 'ScheduleAnyway')],
        nodes: [...nodes, testNode('node-n')],
        existing: [...podsOn('node-a', 1), ...podsOn('node-b', 1), ...podsOn('node-x', 1), ...podsOn('node-n', 4)],
        scores: { 'node-a': 33, 'node-b': 33, 'node-x': 100, 'node-y': 100, 'node-n': 0 },
      },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const r = await run(pod('p', { constraints: c.constraints }), c.existing, c.nodes ? { nodes: c.nodes } : {});
        expect(r.preFilter?.code).to.equal('Skip');
        expect(scores(r)).to.deep.equal(c.scores);
      });
    }

    it('skips scoring without ScheduleAnyway constraints', async () => {
      const r = await run(pod('p', { constraints: [spread(ZONE, 1)] }), []);
      expect(r.scores.size).to.equal(0);
      expect(r.state.skipScorePlugins.has('PodTopologySpread')).to.equal(true);
    });
  });

  describe('default constraints', () => {
    const owned = (name: string, nodeName: string | undefined, labels: Record<string, string>): KubeObject => {
      const p = pod(name, { labels, ...(nodeName ? { nodeName } : {}) });
      (p.metadata as Obj).ownerReferences = [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-rs', uid: 'rs-uid', controller: true }];
      return p;
    };
    const objects = {
      '/api/v1/services': [{ metadata: { name: 'web', namespace: 'default' }, spec: { selector: { app: 'web' } } }, { metadata: { name: 'other', namespace: 'default' }, spec: { selector: { app: 'other' } } }],
      '/apis/apps/v1/replicasets': [{ metadata: { name: 'web-rs', namespace: 'default' }, spec: { selector: { matchLabels: { app: 'web', hash: 'h1' } } } }],
    };
    // node-n has no zone label: system defaults still spread it by hostname.
    const mixed = [...nodes, testNode('node-n')];

    it('System defaulting: Services and the owning ReplicaSet make the selector; hostname spreading works without zones', async () => {
      const api = fakeApi(objects);
      const existing = [owned('w1', 'node-a', { app: 'web', hash: 'h1' }), owned('w2', 'node-a', { app: 'web', hash: 'h1' }), owned('w3', 'node-x', { app: 'web', hash: 'h1' }), pod('unrelated', { nodeName: 'node-y', labels: { app: 'web', hash: 'h0' } })];
      const r = await run(owned('p', undefined, { app: 'web', hash: 'h1' }), existing, { nodes: mixed, api });
      expect(api.started.sort()).to.deep.equal(['/api/v1/replicationcontrollers', '/api/v1/services', '/apis/apps/v1/replicasets', '/apis/apps/v1/statefulsets']);
      expect(r.preFilter?.code).to.equal('Skip', 'the system defaults are ScheduleAnyway');
      // hostname (maxSkew 3, weight log(5+2)) + zone (maxSkew 5, weight log(3+2): zone1, zone2 and node-n's ''
      // domain); node-n only scores by hostname.
      const host = Math.log(7);
      const zone = Math.log(5);
      const raw: Record<string, number> = {
        'node-a': Math.round(2 * host + 2 + 2 * zone + 4),
        'node-b': Math.round(0 * host + 2 + 2 * zone + 4),
        'node-x': Math.round(1 * host + 2 + 1 * zone + 4),
        'node-y': Math.round(0 * host + 2 + 1 * zone + 4),
        'node-n': Math.round(0 * host + 2),
      };
      const max = Math.max(...Object.values(raw));
      const min = Math.min(...Object.values(raw));
      const expected = Object.fromEntries(Object.entries(raw).map(([n, s]) => [n, Math.floor((100 * (max + min - s)) / max)]));
      expect(Object.fromEntries(r.scores)).to.deep.equal(expected);
      expect(expected['node-n']).to.equal(100);
    });

    it('System defaulting without API (or without selecting objects) is skipped', async () => {
      const r = await run(owned('p', undefined, { app: 'web' }), [], { nodes: mixed });
      expect(r.preFilter?.code).to.equal('Skip');
      expect(r.scores.size).to.equal(0);
      const r2 = await run(pod('p', { labels: { app: 'lonely' } }), [], { nodes: mixed, api: fakeApi(objects) });
      expect(r2.scores.size).to.equal(0);
    });

    it('List defaulting: DoNotSchedule defaults filter with the deduced selector', async () => {
      const api = fakeApi(objects);
      const args = { defaultingType: 'List', defaultConstraints: [{ maxSkew: 1, topologyKey: ZONE, whenUnsatisfiable: 'DoNotSchedule' }] };
      const existing = [owned('w1', 'node-a', { app: 'web', hash: 'h1' }), pod('old', { nodeName: 'node-x', labels: { app: 'web', hash: 'h0' } }), pod('old2', { nodeName: 'node-y', labels: { app: 'web', hash: 'h0' } })];
      const r = await run(owned('p', undefined, { app: 'web', hash: 'h1' }), existing, { api, args });
      expect(r.feasible).to.deep.equal(['node-x', 'node-y']);
      // The pod's own constraints replace the defaults.
      const own = pod('p', { labels: { app: 'web', hash: 'h1' }, constraints: [spread(HOST, 1, 'ScheduleAnyway')] });
      expect((await run(own, existing, { api, args })).preFilter?.code).to.equal('Skip');
    });

    it('rejects invalid args', () => {
      const handle = testFrameworkHandle(Snapshot.of([]));
      expect(() => podTopologySpreadFactory.create({ defaultingType: 'System', defaultConstraints: [spread(ZONE, 1)] }, handle)).to.throw(/must be empty/);
      expect(() => podTopologySpreadFactory.create({ defaultingType: 'List', defaultConstraints: [spread(ZONE, 1)] }, handle)).to.throw(/labelSelector/);
      expect(() => podTopologySpreadFactory.create({ defaultingType: 'List', defaultConstraints: [{ maxSkew: 0, topologyKey: ZONE, whenUnsatisfiable: 'DoNotSchedule' }] }, handle)).to.throw(/maxSkew/);
      expect(() => podTopologySpreadFactory.create({ defaultingType: 'Sometimes' }, handle)).to.throw(/defaultingType/);
    });
  });

  describe('events', () => {
    it('registers pod and node events with hints', async () => {
      const pl = await create(Snapshot.of([]));
      const events = pl.eventsToRegister!();
      expect(events.map((e) => [e.event.resource, [...e.event.actions]])).to.deep.equal([
        ['Pod', ['All']],
        ['Node', ['Add', 'Delete', 'UpdateNodeLabel', 'UpdateNodeTaint']],
      ]);
      const target = pod('p', { constraints: [spread(ZONE, 1)] });
      const podHint = events[0]!.hint!;
      const nodeHint = events[1]!.hint!;
      expect(podHint(target, undefined, pod('x', { nodeName: 'node-a' }))).to.equal('Queue');
      expect(podHint(target, undefined, pod('x'))).to.equal('QueueSkip', 'unscheduled');
      expect(podHint(target, undefined, pod('x', { nodeName: 'node-a', namespace: 'other' }))).to.equal('QueueSkip', 'another namespace');
      expect(podHint(target, undefined, pod('x', { nodeName: 'node-a', labels: { bar: '' } }))).to.equal('QueueSkip', 'not selected');
      expect(podHint(target, pod('x', { nodeName: 'node-a' }), undefined)).to.equal('Queue');
      expect(podHint(target, pod('x', { nodeName: 'node-a' }), pod('x', { nodeName: 'node-a', labels: { bar: '' } }))).to.equal('Queue');
      expect(podHint(target, pod('x', { nodeName: 'node-a', labels: { a: '' } }), pod('x', { nodeName: 'node-a', labels: { b: '' } }))).to.equal('QueueSkip');
      expect(nodeHint(target, undefined, testNode('n', { labels: { [ZONE]: 'z' } }))).to.equal('Queue');
      expect(nodeHint(target, undefined, testNode('n'))).to.equal('QueueSkip');
      expect(nodeHint(target, testNode('n', { labels: { [ZONE]: 'z' } }), undefined)).to.equal('Queue');
    });
  });

  describe('cycles over a changing cluster (cached per-node counts)', () => {
    function rng(seed: number): () => number {
      let s = seed >>> 0;
      return () => {
        s = (s * 1664525 + 1013904223) >>> 0;
        return s / 2 ** 32;
      };
    }

    interface Ref {
      key: string;
      maxSkew: number;
      selector: LabelSelector;
      minDomains: number;
      honorAffinity: boolean;
      honorTaints: boolean;
    }

    const labelsOf = (n: NodeInfo): Record<string, string> => (n.node?.metadata?.labels ?? {}) as Record<string, string>;
    const refs = (incoming: KubeObject, when: string): Ref[] =>
      (((incoming.spec as Obj).topologySpreadConstraints ?? []) as TopologySpreadConstraintSpec[])
        .filter((c) => c.whenUnsatisfiable === when)
        .map((c) => ({ key: c.topologyKey, maxSkew: c.maxSkew, selector: c.labelSelector!, minDomains: c.minDomains ?? 1, honorAffinity: (c.nodeAffinityPolicy ?? 'Honor') === 'Honor', honorTaints: c.nodeTaintsPolicy === 'Honor' }));
    const included = (incoming: KubeObject, n: NodeInfo, c: Ref): boolean =>
      (!c.honorAffinity || podMatchesNodeSelectorAndAffinity(incoming, n.node!)) && (!c.honorTaints || !((n.node!.spec as Obj).taints as unknown[] | undefined)?.length);
    const matching = (incoming: KubeObject, n: NodeInfo, c: Ref): number => n.pods.filter((p) => p.namespace === String(incoming.metadata?.namespace) && labelSelectorMatches(c.selector, p.pod.metadata?.labels)).length;

    /** Upstream's Filter, naively. */
    function referenceFilter(incoming: KubeObject, snapshot: NodeSnapshot, node: NodeInfo): string | undefined {
      const cs = refs(incoming, 'DoNotSchedule');
      const eligible = snapshot.list().filter((n) => cs.every((c) => labelsOf(n)[c.key] !== undefined));
      for (const c of cs) {
        const v = labelsOf(node)[c.key];
        if (v === undefined) return ERR_REASON_NODE_LABEL_NOT_MATCH;
        const counts = new Map<string, number>();
        for (const n of eligible) if (included(incoming, n, c)) counts.set(labelsOf(n)[c.key]!, (counts.get(labelsOf(n)[c.key]!) ?? 0) + matching(incoming, n, c));
        const min = counts.size < c.minDomains ? 0 : Math.min(...counts.values());
        const self = labelSelectorMatches(c.selector, incoming.metadata?.labels) ? 1 : 0;
        if ((counts.get(v) ?? 0) + self - min > c.maxSkew) return ERR_REASON_CONSTRAINTS_NOT_MATCH;
      }
      return undefined;
    }

    /** Upstream's scores, naively (every node feasible). */
    function referenceScores(incoming: KubeObject, snapshot: NodeSnapshot): Map<string, number> | undefined {
      const cs = refs(incoming, 'ScheduleAnyway');
      if (cs.length === 0) return undefined;
      const all = snapshot.list();
      const hasAll = (n: NodeInfo): boolean => cs.every((c) => labelsOf(n)[c.key] !== undefined);
      const scored = all.filter(hasAll);
      const raw = new Map<string, number>();
      for (const n of all) {
        if (!hasAll(n)) continue;
        let s = 0;
        for (const c of cs) {
          let cnt: number;
          let size: number;
          if (c.key === HOST) {
            cnt = matching(incoming, n, c);
            size = scored.length;
          } else {
            const v = labelsOf(n)[c.key];
            cnt = 0;
            for (const m of scored) if (labelsOf(m)[c.key] === v && included(incoming, m, c)) cnt += matching(incoming, m, c);
            size = new Set(scored.map((m) => labelsOf(m)[c.key])).size;
          }
          s += cnt * Math.log(size + 2) + (c.maxSkew - 1);
        }
        raw.set(n.name, Math.round(s));
      }
      let min = Number.MAX_SAFE_INTEGER;
      let max = 0;
      for (const v of raw.values()) {
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
      const out = new Map<string, number>();
      for (const n of all) out.set(n.name, !raw.has(n.name) ? 0 : max === 0 ? 100 : Math.floor((100 * (max + min - raw.get(n.name)!)) / max));
      return out;
    }

    it('matches a naive implementation over 40 cycles of random pods on a changing 60-node cluster', async () => {
      const random = rng(7);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
      const apps = ['a', 'b', 'c'];
      const infos = Array.from({ length: 60 }, (_, i) =>
        new NodeInfo(testNode(`n${String(i).padStart(2, '0')}`, { labels: i % 9 === 0 ? {} : { [ZONE]: `z${i % 4}`, rack: `r${i % 7}` }, ...(i % 11 === 0 ? { taints: [{ key: 'k', value: 'v', effect: 'NoSchedule' }] } : {}) })),
      );
      let seq = 0;
      const randomConstraint = (when: 'DoNotSchedule' | 'ScheduleAnyway', key: string): TopologySpreadConstraintSpec => ({
        maxSkew: 1 + Math.floor(random() * 3),
        topologyKey: key,
        whenUnsatisfiable: when,
        labelSelector: { matchLabels: { app: pick(apps) } },
        ...(random() < 0.3 ? { minDomains: 1 + Math.floor(random() * 6) } : {}),
        ...(random() < 0.3 ? { nodeAffinityPolicy: 'Ignore' as const } : {}),
        ...(random() < 0.3 ? { nodeTaintsPolicy: 'Honor' as const } : {}),
      });
      const randomPod = (nodeName?: string): KubeObject => {
        const keys = [HOST, ZONE, 'rack'].filter(() => random() < 0.5);
        const when = random() < 0.5 ? 'DoNotSchedule' : 'ScheduleAnyway';
        const spec: Obj = random() < 0.3 ? { nodeSelector: { rack: pick(['r1', 'r2', 'r3']) } } : {};
        return pod(`p${seq++}`, { labels: { app: pick(apps) }, constraints: keys.map((k) => randomConstraint(when, k)), spec, ...(nodeName ? { nodeName } : {}), ...(random() < 0.1 ? { namespace: 'other' } : {}) });
      };
      for (const ni of infos) for (let k = 0; k < Math.floor(random() * 4); k++) ni.addPod(randomPod(ni.name));
      let current = new Snapshot(infos);
      const view: NodeSnapshot = {
        list: () => current.list(),
        get: (n) => current.get(n),
        havePodsWithAffinity: () => current.havePodsWithAffinity(),
        havePodsWithRequiredAntiAffinity: () => current.havePodsWithRequiredAntiAffinity(),
      };
      const pl = await create(view);
      let filtered = 0;
      let scored = 0;
      for (let cycle = 0; cycle < 40; cycle++) {
        for (let k = 0; k < 3; k++) {
          const ni = pick(infos);
          if (ni.pods.length > 0 && random() < 0.5) ni.removePod(pick(ni.pods).uid);
          else ni.addPod(randomPod(ni.name));
        }
        current = new Snapshot(infos);
        for (let k = 0; k < 4; k++) {
          const incoming = randomPod();
          const r = runPluginOnSnapshot(pl, incoming, current);
          if (r.preFilter?.code !== 'Skip') {
            for (const ni of current.list()) {
              expect(r.filter.get(ni.name)?.message(), `cycle ${cycle}, pod ${k}, node ${ni.name}`).to.equal(referenceFilter(incoming, current, ni));
              filtered++;
            }
          } else {
            const expected = referenceScores(incoming, current);
            if (expected === undefined) expect(r.scores.size).to.equal(0);
            else {
              expect(Object.fromEntries(r.scores), `cycle ${cycle}, pod ${k}`).to.deep.equal(Object.fromEntries(expected));
              scored++;
            }
          }
        }
      }
      expect(filtered).to.be.greaterThan(2000);
      expect(scored).to.be.greaterThan(30);
    });
  });
});

describeSchedulerPluginContract(podTopologySpreadPlugin, {
  scenarios: [
    {
      name: 'maxSkew 1 across zones sends the pod to the emptier zone',
      nodes: [testNode('a', { labels: { [ZONE]: 'z1' } }), testNode('b', { labels: { [ZONE]: 'z1' } }), testNode('c', { labels: { [ZONE]: 'z2' } })],
      pods: [pod('w1', { nodeName: 'a' })],
      pod: pod('w2', { constraints: [spread(ZONE, 1)] }),
      feasible: ['c'],
    },
    {
      name: 'ScheduleAnyway prefers the emptier zone',
      nodes: [testNode('a', { labels: { [ZONE]: 'z1' } }), testNode('b', { labels: { [ZONE]: 'z2' } })],
      pods: [pod('w1', { nodeName: 'a' })],
      pod: pod('w2', { constraints: [spread(ZONE, 1, 'ScheduleAnyway')] }),
      feasible: ['a', 'b'],
      best: 'b',
    },
  ],
});
