import { expect } from 'chai';
import { CycleState, NodeInfo, PodInfo, Snapshot, affinityTermMatches, type FrameworkPlugin, type KubeObject, type NodeSnapshot, type Status } from '@kubernel/sdk';
import { describeSchedulerPluginContract, runPluginOnSnapshot, testFrameworkHandle, testNode, testPod, type TestHandleOptions } from '@kubernel/sdk/testing';
import {
  ERR_REASON_AFFINITY_RULES_NOT_MATCH,
  ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH,
  ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH,
  interPodAffinityFactory,
  interPodAffinityPlugin,
} from './inter-pod-affinity.js';

type Obj = Record<string, unknown>;

const ZONE = 'topology.kubernetes.io/zone';
const HOST = 'kubernetes.io/hostname';
const REGION = 'region';

/** A pod affinity term selecting `matchLabels`. */
const term = (matchLabels: Record<string, string>, topologyKey: string, extra: Obj = {}): Obj => ({ labelSelector: { matchLabels }, topologyKey, ...extra });
/** A term with a matchExpressions selector. */
const exprTerm = (key: string, operator: string, values: string[], topologyKey: string, extra: Obj = {}): Obj => ({ labelSelector: { matchExpressions: [{ key, operator, values }] }, topologyKey, ...extra });
const weighted = (weight: number, podAffinityTerm: Obj): Obj => ({ weight, podAffinityTerm });

interface AffinitySpec {
  affinity?: Obj[];
  anti?: Obj[];
  preferred?: Obj[];
  preferredAnti?: Obj[];
}

function affinityOf(a: AffinitySpec): Obj {
  const out: Obj = {};
  if (a.affinity || a.preferred) out.podAffinity = { ...(a.affinity ? { requiredDuringSchedulingIgnoredDuringExecution: a.affinity } : {}), ...(a.preferred ? { preferredDuringSchedulingIgnoredDuringExecution: a.preferred } : {}) };
  if (a.anti || a.preferredAnti) out.podAntiAffinity = { ...(a.anti ? { requiredDuringSchedulingIgnoredDuringExecution: a.anti } : {}), ...(a.preferredAnti ? { preferredDuringSchedulingIgnoredDuringExecution: a.preferredAnti } : {}) };
  return out;
}

/** A pod with labels, optionally on a node, with (anti-)affinity. */
function pod(name: string, labels: Record<string, string>, o: AffinitySpec & { nodeName?: string; namespace?: string } = {}): KubeObject {
  const aff = affinityOf(o);
  return testPod(name, { labels, ...(o.nodeName ? { nodeName: o.nodeName } : {}), ...(o.namespace ? { namespace: o.namespace } : {}), spec: Object.keys(aff).length ? { affinity: aff } : {} });
}

const zonedNodes = [
  testNode('a', { labels: { [ZONE]: 'z1', [REGION]: 'r1' } }),
  testNode('b', { labels: { [ZONE]: 'z1', [REGION]: 'r1' } }),
  testNode('c', { labels: { [ZONE]: 'z2', [REGION]: 'r1' } }),
  testNode('d', { labels: {} }),
];

async function plugin(snapshot: NodeSnapshot, args?: unknown, options: TestHandleOptions = {}): Promise<FrameworkPlugin> {
  return interPodAffinityFactory.create(args, testFrameworkHandle(snapshot, options));
}

async function run(podToPlace: KubeObject, existing: KubeObject[], o: { nodes?: KubeObject[]; args?: unknown; namespaces?: TestHandleOptions['namespaces'] } = {}) {
  const snapshot = Snapshot.of(o.nodes ?? zonedNodes, existing);
  const pl = await plugin(snapshot, o.args, o.namespaces ? { namespaces: o.namespaces } : {});
  return runPluginOnSnapshot(pl, podToPlace, snapshot);
}

/** node -> [code, reason] for rejected nodes. */
function rejections(r: { filter: ReadonlyMap<string, Status | undefined> }): Record<string, [string, string]> {
  const out: Record<string, [string, string]> = {};
  for (const [n, s] of r.filter) if (s) out[n] = [s.code, s.message()];
  return out;
}

const AFF: [string, string] = ['UnschedulableAndUnresolvable', ERR_REASON_AFFINITY_RULES_NOT_MATCH];
const ANTI: [string, string] = ['Unschedulable', ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH];
const EXISTING: [string, string] = ['Unschedulable', ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH];

describe('InterPodAffinity', () => {
  describe('PreFilter and Filter', () => {
    it('skips a pod without required terms when no existing anti-affinity matches it', async () => {
      const r = await run(pod('p', { app: 'web' }), [pod('x', { app: 'db' }, { nodeName: 'a', anti: [term({ app: 'other' }, HOST)] })]);
      expect(r.preFilter?.code).to.equal('Skip');
      expect(r.feasible).to.deep.equal(['a', 'b', 'c', 'd']);
    });

    const cases: Array<{ name: string; pod: KubeObject; existing: KubeObject[]; feasible: string[]; rejected: Record<string, [string, string]>; namespaces?: TestHandleOptions['namespaces']; skip?: boolean }> = [
      {
        name: 'affinity: nodes in the zone of a matching pod fit; others and nodes without the zone label are unresolvable',
        pod: pod('p', { app: 'web' }, { affinity: [term({ app: 'db' }, ZONE)] }),
        existing: [pod('db', { app: 'db' }, { nodeName: 'a' })],
        feasible: ['a', 'b'],
        rejected: { c: AFF, d: AFF },
      },
      {
        name: 'affinity with matchExpressions In',
        pod: pod('p', { app: 'web' }, { affinity: [exprTerm('app', 'In', ['db', 'cache'], ZONE)] }),
        existing: [pod('cache', { app: 'cache' }, { nodeName: 'c' })],
        feasible: ['c'],
        rejected: { a: AFF, b: AFF, d: AFF },
      },
      {
        name: 'affinity: a pod in another namespace does not match a term without namespaces',
        pod: pod('p', { app: 'web' }, { affinity: [term({ app: 'db' }, ZONE)] }),
        existing: [pod('db', { app: 'db' }, { nodeName: 'a', namespace: 'other' })],
        feasible: [],
        rejected: { a: AFF, b: AFF, c: AFF, d: AFF },
      },
      {
        name: 'affinity: the term names the other namespace',
        pod: pod('p', { app: 'web' }, { affinity: [term({ app: 'db' }, ZONE, { namespaces: ['other'] })] }),
        existing: [pod('db', { app: 'db' }, { nodeName: 'c', namespace: 'other' })],
        feasible: ['c'],
        rejected: { a: AFF, b: AFF, d: AFF },
      },
      {
        name: 'affinity: namespaceSelector selects namespaces by label',
        pod: pod('p', { app: 'web' }, { affinity: [term({ app: 'db' }, ZONE, { namespaceSelector: { matchLabels: { team: 'data' } } })] }),
        existing: [pod('db1', { app: 'db' }, { nodeName: 'a', namespace: 'other' }), pod('db2', { app: 'db' }, { nodeName: 'c', namespace: 'data' })],
        namespaces: { data: { team: 'data' }, other: { team: 'web' } },
        feasible: ['c'],
        rejected: { a: AFF, b: AFF, d: AFF },
      },
      {
        name: 'affinity: an empty namespaceSelector selects every namespace',
        pod: pod('p', { app: 'web' }, { affinity: [term({ app: 'db' }, ZONE, { namespaceSelector: {} })] }),
        existing: [pod('db1', { app: 'db' }, { nodeName: 'c', namespace: 'elsewhere' })],
        feasible: ['c'],
        rejected: { a: AFF, b: AFF, d: AFF },
      },
      {
        name: 'affinity: one existing pod must match all terms (pods matching one term each do not count)',
        pod: pod('p', { app: 'web' }, { affinity: [term({ app: 'db' }, ZONE), term({ tier: 'backend' }, REGION)] }),
        existing: [pod('db', { app: 'db' }, { nodeName: 'a' }), pod('be', { tier: 'backend' }, { nodeName: 'a' })],
        feasible: [],
        rejected: { a: AFF, b: AFF, c: AFF, d: AFF },
      },
      {
        name: 'affinity: a pod matching all terms satisfies every topology of the terms',
        pod: pod('p', { app: 'web' }, { affinity: [term({ app: 'db' }, ZONE), term({ tier: 'backend' }, REGION)] }),
        existing: [pod('db', { app: 'db', tier: 'backend' }, { nodeName: 'a' })],
        feasible: ['a', 'b'],
        rejected: { c: AFF, d: AFF },
      },
      {
        name: 'affinity to itself: the first pod of the group fits anywhere with the topology label when no pod matches',
        pod: pod('p', { app: 'web' }, { affinity: [term({ app: 'web' }, ZONE)] }),
        existing: [pod('db', { app: 'db' }, { nodeName: 'a' })],
        feasible: ['a', 'b', 'c'],
        rejected: { d: AFF },
      },
      {
        name: 'affinity to itself does not apply once a matching pod exists',
        pod: pod('p', { app: 'web' }, { affinity: [term({ app: 'web' }, ZONE)] }),
        existing: [pod('web1', { app: 'web' }, { nodeName: 'c' })],
        feasible: ['c'],
        rejected: { a: AFF, b: AFF, d: AFF },
      },
      {
        name: 'affinity not matching itself and no matching pod: nothing fits',
        pod: pod('p', { app: 'web' }, { affinity: [term({ app: 'db' }, ZONE)] }),
        existing: [],
        feasible: [],
        rejected: { a: AFF, b: AFF, c: AFF, d: AFF },
      },
      {
        name: 'affinity: a term without labelSelector matches no pod',
        pod: pod('p', { app: 'web' }, { affinity: [{ topologyKey: ZONE }] }),
        existing: [pod('db', { app: 'db' }, { nodeName: 'a' })],
        feasible: [],
        rejected: { a: AFF, b: AFF, c: AFF, d: AFF },
      },
      {
        name: 'anti-affinity by hostname: only the node with the matching pod is refused',
        pod: pod('p', { app: 'web' }, { anti: [term({ app: 'web' }, HOST)] }),
        existing: [pod('web1', { app: 'web' }, { nodeName: 'a' })],
        feasible: ['b', 'c', 'd'],
        rejected: { a: ANTI },
      },
      {
        name: 'anti-affinity by zone: the whole zone is refused, nodes without the label fit',
        pod: pod('p', { app: 'web' }, { anti: [term({ app: 'web' }, ZONE)] }),
        existing: [pod('web1', { app: 'web' }, { nodeName: 'a' })],
        feasible: ['c', 'd'],
        rejected: { a: ANTI, b: ANTI },
      },
      {
        name: 'anti-affinity with NotIn',
        pod: pod('p', { app: 'web' }, { anti: [exprTerm('app', 'NotIn', ['web'], ZONE)] }),
        existing: [pod('web1', { app: 'web' }, { nodeName: 'a' }), pod('db', { app: 'db' }, { nodeName: 'c' })],
        feasible: ['a', 'b', 'd'],
        rejected: { c: ANTI },
      },
      {
        name: 'existing pods\' anti-affinity: the zone of a pod whose anti-affinity matches the incoming pod is refused',
        pod: pod('p', { app: 'web' }),
        existing: [pod('lonely', { app: 'db' }, { nodeName: 'b', anti: [term({ app: 'web' }, ZONE)] })],
        feasible: ['c', 'd'],
        rejected: { a: EXISTING, b: EXISTING },
      },
      {
        name: 'existing pods\' anti-affinity with namespaceSelector matching the incoming pod\'s namespace labels',
        pod: pod('p', { app: 'web' }, { namespace: 'prod' }),
        existing: [pod('lonely', { app: 'db' }, { nodeName: 'c', namespace: 'infra', anti: [term({ app: 'web' }, HOST, { namespaceSelector: { matchLabels: { env: 'prod' } } })] })],
        namespaces: { prod: { env: 'prod' }, infra: {} },
        feasible: ['a', 'b', 'd'],
        rejected: { c: EXISTING },
      },
      {
        name: 'existing pods\' anti-affinity in another namespace does not apply by default',
        pod: pod('p', { app: 'web' }, { namespace: 'prod' }),
        existing: [pod('lonely', { app: 'db' }, { nodeName: 'c', namespace: 'infra', anti: [term({ app: 'web' }, HOST)] })],
        feasible: ['a', 'b', 'c', 'd'],
        rejected: {},
        skip: true,
      },
      {
        name: 'affinity is checked first (unresolvable), then anti-affinity, then existing pods\' anti-affinity',
        pod: pod('p', { app: 'web' }, { affinity: [term({ app: 'db' }, REGION)], anti: [term({ app: 'web' }, HOST)] }),
        existing: [pod('db', { app: 'db' }, { nodeName: 'a' }), pod('web1', { app: 'web' }, { nodeName: 'b' }), pod('x', { app: 'x' }, { nodeName: 'c', anti: [term({ app: 'web' }, HOST)] })],
        feasible: ['a'],
        rejected: { b: ANTI, c: EXISTING, d: AFF },
      },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const r = await run(c.pod, c.existing, c.namespaces ? { namespaces: c.namespaces } : {});
        expect(r.preFilter?.code ?? 'Success').to.equal(c.skip ? 'Skip' : 'Success');
        expect(r.feasible).to.deep.equal(c.feasible);
        expect(rejections(r)).to.deep.equal(c.rejected);
      });
    }
  });

  describe('PreFilter extensions (preemption)', () => {
    it('addPod and removePod keep the counts right, on clones independently', async () => {
      const existing = [pod('web1', { app: 'web' }, { nodeName: 'a' }), pod('db', { app: 'db' }, { nodeName: 'c' })];
      const snapshot = Snapshot.of(zonedNodes, existing);
      const pl = await plugin(snapshot);
      const incoming = pod('p', { app: 'web' }, { affinity: [term({ app: 'db' }, REGION)], anti: [term({ app: 'web' }, ZONE)] });
      const info = new PodInfo(incoming);
      const state = new CycleState();
      expect(pl.preFilter!(state, incoming, info)).to.equal(undefined);
      const fits = (s: CycleState): string[] => snapshot.list().filter((n) => !pl.filter!(s, incoming, info, n)).map((n) => n.name);
      expect(fits(state)).to.deep.equal(['c']);

      const ext = pl.preFilterExtensions!()!;
      const web1 = snapshot.get('a')!.pods[0]!;
      const db = snapshot.get('c')!.pods[0]!;
      // Removing the web pod frees zone z1.
      const removed = state.clone();
      expect(ext.removePod(removed, incoming, web1, snapshot.get('a')!)).to.equal(undefined);
      expect(fits(removed)).to.deep.equal(['a', 'b', 'c']);
      expect(fits(state)).to.deep.equal(['c'], 'the original state is unchanged');
      // Removing the only db pod: affinity can no longer be satisfied (the pod does not match itself).
      expect(ext.removePod(removed, incoming, db, snapshot.get('c')!)).to.equal(undefined);
      expect(fits(removed)).to.deep.equal([]);
      // Adding a web pod to zone z2 refuses it too; adding an existing pod whose anti-affinity matches refuses its zone.
      const added = state.clone();
      ext.addPod(added, incoming, new PodInfo(pod('web2', { app: 'web' }, { nodeName: 'c' })), snapshot.get('c')!);
      expect(fits(added)).to.deep.equal([]);
      const added2 = state.clone();
      ext.removePod(added2, incoming, web1, snapshot.get('a')!);
      ext.addPod(added2, incoming, new PodInfo(pod('hater', { app: 'x' }, { nodeName: 'b', anti: [term({ app: 'web' }, HOST)] })), snapshot.get('b')!);
      expect(fits(added2)).to.deep.equal(['a', 'c']);
      const r = rejections({ filter: new Map(snapshot.list().map((n) => [n.name, pl.filter!(added2, incoming, info, n)])) });
      expect(r).to.deep.equal({ b: EXISTING, d: AFF });
    });

    it('extensions are no-ops when PreFilter skipped', async () => {
      const snapshot = Snapshot.of(zonedNodes);
      const pl = await plugin(snapshot);
      const state = new CycleState();
      const p = pod('p', {});
      expect(pl.preFilter!(state, p, new PodInfo(p))?.status?.code).to.equal('Skip');
      expect(pl.preFilterExtensions!()!.addPod(state, p, new PodInfo(pod('x', {})), snapshot.get('a')!)).to.equal(undefined);
    });
  });

  describe('PreScore, Score and NormalizeScore', () => {
    // The nodes of upstream's scoring tests.
    const nodes = [testNode('machine1', { labels: { region: 'China' } }), testNode('machine2', { labels: { region: 'India' } }), testNode('machine3', { labels: { az: 'az1' } })];
    const S1 = { security: 'S1' };
    const S2 = { security: 'S2' };
    const scores = (r: { scores: ReadonlyMap<string, number> }): Record<string, number> => Object.fromEntries(r.scores);

    it('skips scoring when no term matches anywhere', async () => {
      const r = await run(pod('p', {}), [pod('x', S1, { nodeName: 'machine1' })], { nodes });
      expect(r.scores.size).to.equal(0);
      expect(r.state.skipScorePlugins.has('InterPodAffinity')).to.equal(true);
    });

    const cases: Array<{ name: string; pod: KubeObject; existing: KubeObject[]; scores: Record<string, number>; args?: unknown }> = [
      {
        name: 'preferred affinity: the node in the topology of a matching pod wins',
        pod: pod('p', S1, { preferred: [weighted(5, exprTerm('security', 'In', ['S1'], 'region'))] }),
        existing: [pod('p1', S1, { nodeName: 'machine1' }), pod('p2', S2, { nodeName: 'machine2' }), pod('p3', S1, { nodeName: 'machine3' })],
        scores: { machine1: 100, machine2: 0, machine3: 0 },
      },
      {
        name: 'preferred affinity: weights of several terms add up, proportionally',
        pod: pod('p', {}, { preferred: [weighted(8, term(S1, 'region')), weighted(2, term(S2, 'region'))] }),
        existing: [pod('p1', S1, { nodeName: 'machine1' }), pod('p2', S2, { nodeName: 'machine2' })],
        scores: { machine1: 100, machine2: 25, machine3: 0 },
      },
      {
        name: 'preferred anti-affinity: the topology of a matching pod loses',
        pod: pod('p', {}, { preferredAnti: [weighted(5, term(S1, 'region'))] }),
        existing: [pod('p1', S1, { nodeName: 'machine1' }), pod('p2', S2, { nodeName: 'machine2' })],
        scores: { machine1: 0, machine2: 100, machine3: 100 },
      },
      {
        name: 'existing pods\' required affinity counts with hardPodAffinityWeight (default 1)',
        pod: pod('p', S1),
        existing: [pod('p1', S2, { nodeName: 'machine2', affinity: [term(S1, 'region')] })],
        scores: { machine1: 0, machine2: 100, machine3: 0 },
      },
      {
        name: 'existing pods\' preferred terms count (affinity up, anti-affinity down)',
        pod: pod('p', S1),
        existing: [pod('p1', S2, { nodeName: 'machine1', preferred: [weighted(10, term(S1, 'region'))] }), pod('p2', S2, { nodeName: 'machine2', preferredAnti: [weighted(10, term(S1, 'region'))] })],
        scores: { machine1: 100, machine2: 0, machine3: 50 },
      },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const r = await run(c.pod, c.existing, { nodes, ...(c.args !== undefined ? { args: c.args } : {}) });
        expect(scores(r)).to.deep.equal(c.scores);
      });
    }

    it('hardPodAffinityWeight weighs existing pods\' required terms against preferred ones; 0 ignores them', async () => {
      const existing = [pod('p1', S2, { nodeName: 'machine1', affinity: [term(S1, 'region')] }), pod('p2', S2, { nodeName: 'machine2', preferred: [weighted(3, term(S1, 'region'))] })];
      const incoming = pod('p', S1);
      expect(scores(await run(incoming, existing, { nodes }))).to.deep.equal({ machine1: 33, machine2: 100, machine3: 0 });
      expect(scores(await run(incoming, existing, { nodes, args: { hardPodAffinityWeight: 6 } }))).to.deep.equal({ machine1: 100, machine2: 50, machine3: 0 });
      expect(scores(await run(incoming, existing, { nodes, args: { hardPodAffinityWeight: 0 } }))).to.deep.equal({ machine1: 0, machine2: 100, machine3: 0 });
    });

    it('ignorePreferredTermsOfExistingPods skips scoring for pods without preferred terms', async () => {
      const existing = [pod('p1', S2, { nodeName: 'machine1', preferred: [weighted(10, term(S1, 'region'))] })];
      const r = await run(pod('p', S1), existing, { nodes, args: { ignorePreferredTermsOfExistingPods: true } });
      expect(r.scores.size).to.equal(0);
      const r2 = await run(pod('p', S1, { preferred: [weighted(1, term(S2, 'region'))] }), existing, { nodes, args: { ignorePreferredTermsOfExistingPods: true } });
      expect(scores(r2)).to.deep.equal({ machine1: 100, machine2: 0, machine3: 0 });
    });

    it('rejects invalid args', () => {
      const handle = testFrameworkHandle(Snapshot.of([]));
      expect(() => interPodAffinityFactory.create({ hardPodAffinityWeight: 101 }, handle)).to.throw(/hardPodAffinityWeight/);
      expect(() => interPodAffinityFactory.create({ hardPodAffinityWeight: -1 }, handle)).to.throw(/hardPodAffinityWeight/);
      expect(() => interPodAffinityFactory.create({ ignorePreferredTermsOfExistingPods: 'yes' }, handle)).to.throw(/ignorePreferredTermsOfExistingPods/);
    });
  });

  describe('events', () => {
    it('registers pod and node events with hints', async () => {
      const pl = await plugin(Snapshot.of([]));
      const events = pl.eventsToRegister!();
      expect(events.map((e) => [e.event.resource, [...e.event.actions]])).to.deep.equal([
        ['Pod', ['Add', 'Delete', 'UpdatePodLabel']],
        ['Node', ['Add', 'UpdateNodeLabel']],
      ]);
      const target = pod('p', { app: 'web' }, { affinity: [term({ app: 'db' }, ZONE)], anti: [term({ app: 'web' }, HOST)] });
      const podHint = events[0]!.hint!;
      const nodeHint = events[1]!.hint!;
      expect(podHint(target, undefined, pod('db', { app: 'db' }, { nodeName: 'a' }))).to.equal('Queue');
      expect(podHint(target, undefined, pod('db', { app: 'db' }))).to.equal('QueueSkip', 'unscheduled pods do not matter');
      expect(podHint(target, undefined, pod('x', { app: 'x' }, { nodeName: 'a' }))).to.equal('QueueSkip');
      expect(podHint(target, pod('w', { app: 'web' }, { nodeName: 'a' }), undefined)).to.equal('Queue');
      expect(podHint(target, pod('x', { app: 'x' }, { nodeName: 'a' }), undefined)).to.equal('QueueSkip');
      expect(podHint(target, pod('h', { app: 'x' }, { nodeName: 'a', anti: [term({ app: 'web' }, HOST)] }), undefined)).to.equal('Queue');
      expect(podHint(target, pod('x', { app: 'x' }, { nodeName: 'a' }), pod('x', { app: 'db' }, { nodeName: 'a' }))).to.equal('Queue');
      expect(podHint(target, pod('x', { app: 'web' }, { nodeName: 'a' }), pod('x', { app: 'other' }, { nodeName: 'a' }))).to.equal('Queue');
      expect(podHint(target, pod('x', { app: 'x' }, { nodeName: 'a' }), pod('x', { app: 'y' }, { nodeName: 'a' }))).to.equal('QueueSkip');
      expect(nodeHint(target, undefined, testNode('n', { labels: { [ZONE]: 'z9' } }))).to.equal('Queue');
      expect(nodeHint(pod('q', {}, { affinity: [term({ app: 'db' }, ZONE)] }), undefined, testNode('n'))).to.equal('QueueSkip');
    });
  });

  describe('cycles over a changing cluster (cached per-node contributions)', () => {
    // A seeded PRNG so failures reproduce.
    function rng(seed: number): () => number {
      let s = seed >>> 0;
      return () => {
        s = (s * 1664525 + 1013904223) >>> 0;
        return s / 2 ** 32;
      };
    }

    /** Upstream's Filter, written naively (every pod against every node). */
    function referenceFilter(incoming: KubeObject, snapshot: NodeSnapshot, node: NodeInfo): string | undefined {
      const pi = new PodInfo(incoming);
      const labelsOf = (n: NodeInfo): Record<string, string> => (n.node?.metadata?.labels ?? {}) as Record<string, string>;
      const nl = labelsOf(node);
      const all = snapshot.list().flatMap((n) => n.pods.map((p) => ({ p, n: labelsOf(n) })));
      const matchesAllTerms = (p: KubeObject): boolean => pi.requiredAffinityTerms.length > 0 && pi.requiredAffinityTerms.every((t) => affinityTermMatches(t, p));
      if (pi.requiredAffinityTerms.some((t) => nl[t.topologyKey] === undefined)) return ERR_REASON_AFFINITY_RULES_NOT_MATCH;
      const satisfied = pi.requiredAffinityTerms.every((t) => all.some(({ p, n }) => matchesAllTerms(p.pod) && n[t.topologyKey] !== undefined && n[t.topologyKey] === nl[t.topologyKey]));
      if (!satisfied) {
        const anyPair = all.some(({ p, n }) => matchesAllTerms(p.pod) && pi.requiredAffinityTerms.some((t) => n[t.topologyKey] !== undefined));
        if (anyPair || !matchesAllTerms(incoming)) return ERR_REASON_AFFINITY_RULES_NOT_MATCH;
      }
      for (const t of pi.requiredAntiAffinityTerms) {
        if (nl[t.topologyKey] !== undefined && all.some(({ p, n }) => affinityTermMatches(t, p.pod) && n[t.topologyKey] === nl[t.topologyKey])) return ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH;
      }
      for (const { p, n } of all) {
        for (const t of p.requiredAntiAffinityTerms) {
          if (n[t.topologyKey] !== undefined && n[t.topologyKey] === nl[t.topologyKey] && affinityTermMatches(t, incoming)) return ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH;
        }
      }
      return undefined;
    }

    /** Upstream's raw scores (before normalization), naively; undefined when nothing matched. */
    function referenceScores(incoming: KubeObject, snapshot: NodeSnapshot, hard: number): Map<string, number> | undefined {
      const pi = new PodInfo(incoming);
      const sums = new Map<string, number>();
      let any = false;
      const add = (key: string, labels: Record<string, string>, w: number): void => {
        if (labels[key] === undefined) return;
        any = true;
        const k = `${key}=${labels[key]}`;
        sums.set(k, (sums.get(k) ?? 0) + w);
      };
      for (const n of snapshot.list()) {
        const labels = (n.node?.metadata?.labels ?? {}) as Record<string, string>;
        for (const ep of n.pods) {
          for (const t of pi.preferredAffinityTerms) if (affinityTermMatches(t, ep.pod)) add(t.topologyKey, labels, t.weight);
          for (const t of pi.preferredAntiAffinityTerms) if (affinityTermMatches(t, ep.pod)) add(t.topologyKey, labels, -t.weight);
          if (hard > 0) for (const t of ep.requiredAffinityTerms) if (affinityTermMatches(t, incoming)) add(t.topologyKey, labels, hard);
          for (const t of ep.preferredAffinityTerms) if (affinityTermMatches(t, incoming)) add(t.topologyKey, labels, t.weight);
          for (const t of ep.preferredAntiAffinityTerms) if (affinityTermMatches(t, incoming)) add(t.topologyKey, labels, -t.weight);
        }
      }
      if (!any) return undefined;
      const raw = new Map<string, number>();
      const keys = new Set([...sums.keys()].map((k) => k.slice(0, k.indexOf('='))));
      for (const n of snapshot.list()) {
        const labels = (n.node?.metadata?.labels ?? {}) as Record<string, string>;
        let s = 0;
        for (const k of keys) if (labels[k] !== undefined) s += sums.get(`${k}=${labels[k]}`) ?? 0;
        raw.set(n.name, s);
      }
      return raw;
    }

    it('matches a naive implementation over 40 cycles of random pods on a changing 100-node cluster', async () => {
      const random = rng(42);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
      const apps = ['a', 'b', 'c'];
      const keys = [HOST, ZONE, REGION];
      const infos = Array.from({ length: 100 }, (_, i) => new NodeInfo(testNode(`n${String(i).padStart(2, '0')}`, { labels: { [ZONE]: `z${i % 4}`, ...(i % 5 === 0 ? {} : { [REGION]: `r${i % 2}` }) } })));
      const randomTerm = (): Obj => (random() < 0.2 ? exprTerm('app', 'In', [pick(apps), pick(apps)], pick(keys)) : term({ app: pick(apps) }, pick(keys)));
      let seq = 0;
      const randomPod = (nodeName?: string): KubeObject => {
        const spec: AffinitySpec = {};
        if (random() < 0.3) spec.affinity = [randomTerm()];
        if (random() < 0.6) spec.anti = [randomTerm()];
        if (random() < 0.4) spec.preferred = [weighted(1 + Math.floor(random() * 10), randomTerm())];
        if (random() < 0.4) spec.preferredAnti = [weighted(1 + Math.floor(random() * 10), randomTerm())];
        return pod(`p${seq++}`, { app: pick(apps) }, { ...spec, ...(nodeName ? { nodeName } : {}), ...(random() < 0.1 ? { namespace: 'other' } : {}) });
      };
      // Enough pods with anti-affinity that the cached paths are taken.
      for (const ni of infos) for (let k = 0; k < 1 + Math.floor(random() * 3); k++) ni.addPod(randomPod(ni.name));
      let current = new Snapshot(infos);
      const view: NodeSnapshot = {
        list: () => current.list(),
        get: (n) => current.get(n),
        havePodsWithAffinity: () => current.havePodsWithAffinity(),
        havePodsWithRequiredAntiAffinity: () => current.havePodsWithRequiredAntiAffinity(),
      };
      const pl = await plugin(view, { hardPodAffinityWeight: 2 });
      let checked = 0;
      for (let cycle = 0; cycle < 40; cycle++) {
        // Change the cluster: add and remove pods on a few nodes.
        for (let k = 0; k < 3; k++) {
          const ni = pick(infos);
          if (ni.pods.length > 0 && random() < 0.5) ni.removePod(pick(ni.pods).uid);
          else ni.addPod(randomPod(ni.name));
        }
        current = new Snapshot(infos);
        for (let k = 0; k < 3; k++) {
          const incoming = randomPod();
          const r = runPluginOnSnapshot(pl, incoming, current);
          for (const ni of current.list()) {
            const expected = referenceFilter(incoming, current, ni);
            const got = r.filter.get(ni.name);
            expect(got?.message(), `cycle ${cycle}, pod ${k}, node ${ni.name}`).to.equal(r.preFilter?.code === 'Skip' ? undefined : expected);
            if (r.preFilter?.code === 'Skip') expect(expected).to.equal(undefined);
            checked++;
          }
          const raw = referenceScores(incoming, current, 2);
          if (r.feasible.length === 0) continue;
          if (raw === undefined) {
            expect(r.scores.size, `cycle ${cycle}: no score expected`).to.equal(0);
            continue;
          }
          const feasible = r.feasible.map((n) => raw.get(n)!);
          const min = Math.min(...feasible);
          const max = Math.max(...feasible);
          for (const n of r.feasible) expect(r.scores.get(n), `cycle ${cycle}, score of ${n}`).to.equal(max > min ? Math.trunc(100 * ((raw.get(n)! - min) / (max - min))) : 0);
        }
      }
      expect(checked).to.equal(40 * 3 * 100);
    });
  });
});

describeSchedulerPluginContract(interPodAffinityPlugin, {
  scenarios: [
    {
      name: 'required anti-affinity keeps the pod off the node of a matching pod',
      nodes: [testNode('a', { labels: { [ZONE]: 'z1' } }), testNode('b', { labels: { [ZONE]: 'z1' } }), testNode('c', { labels: { [ZONE]: 'z2' } })],
      pods: [pod('web1', { app: 'web' }, { nodeName: 'a' })],
      pod: pod('web2', { app: 'web' }, { anti: [term({ app: 'web' }, HOST)] }),
      feasible: ['b', 'c'],
    },
    {
      name: 'required affinity to a zone, preferred anti-affinity by hostname',
      nodes: [testNode('a', { labels: { [ZONE]: 'z1' } }), testNode('b', { labels: { [ZONE]: 'z1' } }), testNode('c', { labels: { [ZONE]: 'z2' } })],
      pods: [pod('db', { app: 'db' }, { nodeName: 'a' })],
      pod: pod('web', { app: 'web' }, { affinity: [term({ app: 'db' }, ZONE)], preferredAnti: [weighted(10, term({ app: 'db' }, HOST))] }),
      feasible: ['a', 'b'],
      best: 'b',
    },
  ],
});
