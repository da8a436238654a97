import { expect } from 'chai';
import { CycleState, NodeInfo, PodInfo, Snapshot, type KubeObject } from '@kubernel/sdk';
import { describeSchedulerPluginContract, runPluginOnSnapshot, testFrameworkHandle, testNode, testPod } from '@kubernel/sdk/testing';
import { createNodeAffinity, nodeAffinityFactory, nodeAffinityPlugin, requiredNodeNames, type NodeAffinityArgs } from './node-affinity.js';

type Obj = Record<string, unknown>;

const required = (...nodeSelectorTerms: Obj[]): Obj => ({ nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms } } });
const preferred = (...terms: Obj[]): Obj => ({ nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: terms } });
const expr = (key: string, operator: string, values?: string[]): Obj => ({ key, operator, ...(values ? { values } : {}) });
const withAffinity = (affinity: Obj, extra: Obj = {}): KubeObject => testPod('p', { spec: { affinity, ...extra } });

const nodes = [
  testNode('n1', { labels: { zone: 'a', disk: 'ssd', cores: '8' } }),
  testNode('n2', { labels: { zone: 'a', cores: '4' } }),
  testNode('n3', { labels: { zone: 'b', disk: 'ssd', cores: 'many' } }),
  testNode('n4', { labels: {} }),
];

function runWith(pod: KubeObject, args?: NodeAffinityArgs, list: KubeObject[] = nodes) {
  const snapshot = Snapshot.of(list);
  return runPluginOnSnapshot(createNodeAffinity(args), pod, snapshot);
}

describe('NodeAffinity', () => {
  describe('PreFilter and Filter', () => {
    it('skips a pod with neither nodeSelector nor required node affinity', () => {
      const r = runWith(testPod('p'));
      expect(r.preFilter?.code).to.equal('Skip');
      expect(r.feasible).to.deep.equal(['n1', 'n2', 'n3', 'n4']);
      expect(runWith(withAffinity(preferred({ weight: 1, preference: { matchExpressions: [expr('zone', 'In', ['a'])] } }))).preFilter?.code).to.equal('Skip');
    });

    const cases: Array<{ name: string; pod: KubeObject; feasible: string[] }> = [
      { name: 'nodeSelector', pod: testPod('p', { spec: { nodeSelector: { zone: 'a' } } }), feasible: ['n1', 'n2'] },
      { name: 'nodeSelector with two labels (ANDed)', pod: testPod('p', { spec: { nodeSelector: { zone: 'a', disk: 'ssd' } } }), feasible: ['n1'] },
      { name: 'an empty nodeSelector matches every node', pod: testPod('p', { spec: { nodeSelector: {} } }), feasible: ['n1', 'n2', 'n3', 'n4'] },
      { name: 'In', pod: withAffinity(required({ matchExpressions: [expr('zone', 'In', ['b', 'c'])] })), feasible: ['n3'] },
      { name: 'NotIn (matches nodes without the label)', pod: withAffinity(required({ matchExpressions: [expr('zone', 'NotIn', ['a'])] })), feasible: ['n3', 'n4'] },
      { name: 'Exists', pod: withAffinity(required({ matchExpressions: [expr('disk', 'Exists')] })), feasible: ['n1', 'n3'] },
      { name: 'DoesNotExist', pod: withAffinity(required({ matchExpressions: [expr('disk', 'DoesNotExist')] })), feasible: ['n2', 'n4'] },
      { name: 'Gt (non-integer labels never match)', pod: withAffinity(required({ matchExpressions: [expr('cores', 'Gt', ['4'])] })), feasible: ['n1'] },
      { name: 'Lt', pod: withAffinity(required({ matchExpressions: [expr('cores', 'Lt', ['8'])] })), feasible: ['n2'] },
      { name: 'Gt with a non-integer value parses to nothing', pod: withAffinity(required({ matchExpressions: [expr('cores', 'Gt', ['four'])] })), feasible: [] },
      { name: 'In without values parses to nothing', pod: withAffinity(required({ matchExpressions: [expr('zone', 'In', [])] })), feasible: [] },
      { name: 'an unknown operator parses to nothing', pod: withAffinity(required({ matchExpressions: [expr('zone', 'Near', ['a'])] })), feasible: [] },
      { name: 'expressions of a term are ANDed', pod: withAffinity(required({ matchExpressions: [expr('zone', 'In', ['a']), expr('disk', 'Exists')] })), feasible: ['n1'] },
      { name: 'terms are ORed', pod: withAffinity(required({ matchExpressions: [expr('zone', 'In', ['b'])] }, { matchExpressions: [expr('cores', 'In', ['4'])] })), feasible: ['n2', 'n3'] },
      { name: 'a term that does not parse does not spoil the others', pod: withAffinity(required({ matchExpressions: [expr('zone', 'Bad', ['a'])] }, { matchExpressions: [expr('zone', 'In', ['b'])] })), feasible: ['n3'] },
      { name: 'an empty term matches nothing', pod: withAffinity(required({})), feasible: [] },
      { name: 'no terms match nothing', pod: withAffinity(required()), feasible: [] },
      { name: 'nodeSelector and affinity must both match', pod: withAffinity(required({ matchExpressions: [expr('disk', 'Exists')] }), { nodeSelector: { zone: 'a' } }), feasible: ['n1'] },
      { name: 'matchFields NotIn metadata.name', pod: withAffinity(required({ matchFields: [expr('metadata.name', 'NotIn', ['n1'])] })), feasible: ['n2', 'n3', 'n4'] },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const r = runWith(c.pod);
        expect(r.preFilter?.code ?? 'Success').to.equal('Success');
        expect(r.feasible).to.deep.equal(c.feasible);
        for (const n of ['n1', 'n2', 'n3', 'n4'].filter((x) => !c.feasible.includes(x))) {
          expect(r.filter.get(n)?.code).to.equal('UnschedulableAndUnresolvable');
          expect(r.filter.get(n)?.reasons).to.deep.equal(["node(s) didn't match Pod's node affinity/selector"]);
        }
      });
    }

    it('narrows the nodes to the names every term pins with matchFields In', () => {
      const r = runWith(withAffinity(required({ matchFields: [expr('metadata.name', 'In', ['n2'])] }, { matchFields: [expr('metadata.name', 'In', ['n3'])] })));
      expect([...(r.preFilterNodes ?? [])].sort()).to.deep.equal(['n2', 'n3']);
      expect(r.feasible).to.deep.equal(['n2', 'n3']);
      expect([...r.filter.keys()]).to.deep.equal(['n2', 'n3']);
    });

    it('does not narrow when one term pins no name', () => {
      const r = runWith(withAffinity(required({ matchFields: [expr('metadata.name', 'In', ['n2'])] }, { matchExpressions: [expr('zone', 'In', ['b'])] })));
      expect(r.preFilterNodes).to.equal(undefined);
      expect(r.feasible).to.deep.equal(['n2', 'n3']);
    });

    it('rejects in PreFilter when the pinned names conflict', () => {
      const r = runWith(withAffinity(required({ matchFields: [expr('metadata.name', 'In', ['n1']), expr('metadata.name', 'In', ['n2'])] })));
      expect(r.preFilter?.code).to.equal('UnschedulableAndUnresolvable');
      expect(r.preFilter?.reasons).to.deep.equal(['pod affinity terms conflict']);
      expect(r.feasible).to.deep.equal([]);
    });

    it('checks matchFields only against a node that has a name', () => {
      const plugin = createNodeAffinity(undefined);
      const pod = withAffinity(required({ matchExpressions: [expr('zone', 'In', ['a'])], matchFields: [expr('metadata.name', 'In', ['x'])] }));
      const state = new CycleState();
      const podInfo = new PodInfo(pod);
      expect(plugin.preFilter!(state, pod, podInfo)?.result?.nodeNames).to.deep.equal(new Set(['x']));
      const unnamed = new NodeInfo({ apiVersion: 'v1', kind: 'Node', metadata: { labels: { zone: 'a' } } });
      expect(plugin.filter!(state, pod, podInfo, unnamed)).to.equal(undefined);
      const named = new NodeInfo(testNode('y', { labels: { zone: 'a' } }));
      expect(plugin.filter!(state, pod, podInfo, named)?.reasons).to.deep.equal(["node(s) didn't match Pod's node affinity/selector"]);
    });

    it('computes pinned names as the union of per-term intersections', () => {
      expect(requiredNodeNames([{ matchFields: [expr('metadata.name', 'In', ['a', 'b']), expr('metadata.name', 'In', ['b', 'c'])] }, { matchFields: [expr('metadata.name', 'In', ['d'])] }])).to.deep.equal(new Set(['b', 'd']));
      expect(requiredNodeNames([{ matchFields: [expr('metadata.name', 'NotIn', ['a'])] }])).to.equal(undefined);
    });
  });

  describe('addedAffinity', () => {
    const args: NodeAffinityArgs = {
      addedAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [expr('zone', 'In', ['a'])] }] },
        preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 10, preference: { matchExpressions: [expr('disk', 'In', ['ssd'])] } }],
      },
    };

    it('enforces the added required affinity on every pod', () => {
      const r = runWith(testPod('p'), args);
      expect(r.preFilter).to.equal(undefined);
      expect(r.feasible).to.deep.equal(['n1', 'n2']);
      expect(r.filter.get('n3')?.reasons).to.deep.equal(["node(s) didn't match scheduler-enforced node affinity"]);
      // n1 matches the added preferred term (10), n2 does not: 100, 0
      expect(Object.fromEntries(r.scores)).to.deep.equal({ n1: 100, n2: 0 });
    });

    it('refuses added affinity that does not parse', () => {
      expect(() => createNodeAffinity({ addedAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [expr('zone', 'In')] }] } } })).to.throw(/addedAffinity/);
      expect(() => createNodeAffinity({ addedAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1, preference: { matchFields: [expr('metadata.name', 'In', ['a', 'b'])] } }] } })).to.throw(/one element/);
    });
  });

  describe('Score', () => {
    it('sums the weights of matching preferred terms, normalized to 0-100', () => {
      const pod = withAffinity(
        preferred(
          { weight: 3, preference: { matchExpressions: [expr('zone', 'In', ['a'])] } },
          { weight: 1, preference: { matchExpressions: [expr('disk', 'In', ['ssd'])] } },
          { weight: 0, preference: { matchExpressions: [expr('zone', 'Exists')] } },
        ),
      );
      const r = runWith(pod);
      // raw n1 4, n2 3, n3 1, n4 0 -> 100 * raw / 4
      expect(Object.fromEntries(r.scores)).to.deep.equal({ n1: 100, n2: 75, n3: 25, n4: 0 });
    });

    it('skips scoring without preferred terms', async () => {
      const r = runWith(withAffinity(required({ matchExpressions: [expr('zone', 'Exists')] })));
      expect(r.scores.size).to.equal(0);
      expect(r.state.skipScorePlugins.has('NodeAffinity')).to.equal(true);
    });

    it('takes its args through the factory', async () => {
      const snapshot = Snapshot.of(nodes);
      const plugin = await nodeAffinityFactory.create({ addedAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [expr('zone', 'In', ['b'])] }] } } }, testFrameworkHandle(snapshot));
      expect(runPluginOnSnapshot(plugin, testPod('p'), snapshot).feasible).to.deep.equal(['n3']);
    });
  });

  it('queues the pod when a node starts matching its required affinity', () => {
    const plugin = createNodeAffinity(undefined);
    const [reg] = plugin.eventsToRegister!();
    const pod = testPod('p', { spec: { nodeSelector: { zone: 'a' } } });
    expect(reg!.hint!(pod, undefined, testNode('x', { labels: { zone: 'a' } }))).to.equal('Queue');
    expect(reg!.hint!(pod, undefined, testNode('x', { labels: { zone: 'b' } }))).to.equal('QueueSkip');
    expect(reg!.hint!(pod, testNode('x', { labels: { zone: 'b' } }), testNode('x', { labels: { zone: 'a' } }))).to.equal('Queue');
    expect(reg!.hint!(pod, testNode('x', { labels: { zone: 'a' } }), testNode('x', { labels: { zone: 'a', more: '1' } }))).to.equal('QueueSkip');
  });
});

describeSchedulerPluginContract(nodeAffinityPlugin, {
  scenarios: [
    {
      name: 'required selector filters, preferred terms score',
      nodes: [testNode('a', { labels: { zone: 'z1', disk: 'ssd' } }), testNode('b', { labels: { zone: 'z1' } }), testNode('c', { labels: { zone: 'z2', disk: 'ssd' } })],
      pod: withAffinity({
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [expr('zone', 'In', ['z1'])] }] },
          preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 5, preference: { matchExpressions: [expr('disk', 'Exists')] } }],
        },
      }),
      feasible: ['a', 'b'],
      best: 'a',
    },
  ],
});
