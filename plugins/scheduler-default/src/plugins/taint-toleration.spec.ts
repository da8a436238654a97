import { expect } from 'chai';
import { defaultNormalizeScore, Snapshot, type KubeObject, type NodeScore } from '@kubernel/sdk';
import { describeSchedulerPluginContract, runPluginOnSnapshot, testFrameworkHandle, testNode, testPod } from '@kubernel/sdk/testing';
import { taintTolerationFactory, taintTolerationPlugin } from './taint-toleration.js';

type Obj = Record<string, unknown>;
const withTolerations = (...tolerations: Obj[]): KubeObject => testPod('p', { spec: { tolerations } });

async function run(pod: KubeObject, nodes: KubeObject[]) {
  const snapshot = Snapshot.of(nodes);
  const plugin = await taintTolerationFactory.create(undefined, testFrameworkHandle(snapshot));
  return runPluginOnSnapshot(plugin, pod, snapshot);
}

describe('TaintToleration', () => {
  describe('Filter', () => {
    const dedicated = { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' };
    const cases: Array<{ name: string; taints: Obj[]; pod: KubeObject; reason?: string }> = [
      { name: 'no taints', taints: [], pod: testPod('p') },
      { name: 'untolerated NoSchedule taint', taints: [dedicated], pod: testPod('p'), reason: 'node(s) had untolerated taint {dedicated: gpu}' },
      { name: 'untolerated NoExecute taint', taints: [{ key: 'k', value: 'v', effect: 'NoExecute' }], pod: testPod('p'), reason: 'node(s) had untolerated taint {k: v}' },
      { name: 'a taint without value reads {key: }', taints: [{ key: 'bare', effect: 'NoSchedule' }], pod: testPod('p'), reason: 'node(s) had untolerated taint {bare: }' },
      { name: 'PreferNoSchedule never filters', taints: [{ key: 'soft', value: 'x', effect: 'PreferNoSchedule' }], pod: testPod('p') },
      { name: 'tolerated with Equal', taints: [dedicated], pod: withTolerations({ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }) },
      { name: 'tolerated with the default operator (Equal)', taints: [dedicated], pod: withTolerations({ key: 'dedicated', value: 'gpu' }) },
      { name: 'Equal with another value does not tolerate', taints: [dedicated], pod: withTolerations({ key: 'dedicated', value: 'cpu' }), reason: 'node(s) had untolerated taint {dedicated: gpu}' },
      { name: 'tolerated with Exists', taints: [dedicated], pod: withTolerations({ key: 'dedicated', operator: 'Exists' }) },
      { name: 'an empty key with Exists tolerates every taint', taints: [dedicated, { key: 'x', effect: 'NoExecute' }], pod: withTolerations({ operator: 'Exists' }) },
      { name: 'a toleration of another effect does not tolerate', taints: [dedicated], pod: withTolerations({ key: 'dedicated', operator: 'Exists', effect: 'NoExecute' }), reason: 'node(s) had untolerated taint {dedicated: gpu}' },
      {
        name: 'the first untolerated taint is reported',
        taints: [dedicated, { key: 'second', value: '2', effect: 'NoSchedule' }],
        pod: withTolerations({ key: 'dedicated', operator: 'Exists' }),
        reason: 'node(s) had untolerated taint {second: 2}',
      },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const r = await run(c.pod, [testNode('n', { taints: c.taints })]);
        const s = r.filter.get('n');
        if (c.reason === undefined) {
          expect(s).to.equal(undefined);
          expect(r.feasible).to.deep.equal(['n']);
        } else {
          expect(s?.code).to.equal('UnschedulableAndUnresolvable');
          expect(s?.reasons).to.deep.equal([c.reason]);
        }
      });
    }
  });

  describe('Score', () => {
    const soft = (key: string): Obj => ({ key, value: 'v', effect: 'PreferNoSchedule' });

    it('scores by intolerable PreferNoSchedule taints, reversed and normalized', async () => {
      const r = await run(testPod('p'), [testNode('none'), testNode('one', { taints: [soft('a')] }), testNode('two', { taints: [soft('a'), soft('b')] })]);
      // raw 0, 1, 2 -> 100 * raw / 2 -> 0, 50, 100 -> reversed 100, 50, 0
      expect(Object.fromEntries(r.scores)).to.deep.equal({ none: 100, one: 50, two: 0 });
    });

    it('ignores taints the pod tolerates (tolerations without effect count, NoSchedule-only ones do not)', async () => {
      const nodes = [testNode('x', { taints: [soft('a'), soft('b'), soft('c')] }), testNode('y', { taints: [soft('b')] })];
      const r = await run(withTolerations({ key: 'a', operator: 'Exists' }, { key: 'b', operator: 'Exists', effect: 'NoSchedule' }, { key: 'c', operator: 'Exists', effect: 'PreferNoSchedule' }), nodes);
      // x: a and c tolerated, b only by a NoSchedule toleration -> 1; y: b -> 1
      expect(Object.fromEntries(r.scores)).to.deep.equal({ x: 0, y: 0 });
      const r2 = await run(withTolerations({ key: 'a', operator: 'Exists' }), nodes);
      // x: b, c -> 2; y: b -> 1 -> normalized 100, 50 -> reversed 0, 50
      expect(Object.fromEntries(r2.scores)).to.deep.equal({ x: 0, y: 50 });
    });

    it('gives every node 100 when none has an intolerable PreferNoSchedule taint', async () => {
      const r = await run(testPod('p'), [testNode('a'), testNode('b', { taints: [{ key: 'hard', effect: 'NoExecute' }] })]);
      expect(r.feasible).to.deep.equal(['a']);
      expect(Object.fromEntries(r.scores)).to.deep.equal({ a: 100 });
    });
  });

  describe('defaultNormalizeScore', () => {
    const scores = (...v: number[]): NodeScore[] => v.map((score, i) => ({ name: `n${i}`, score }));
    it('scales to 0-100 with integer division', () => {
      const s = scores(1, 2, 3, 0);
      defaultNormalizeScore(100, false, s);
      expect(s.map((x) => x.score)).to.deep.equal([33, 66, 100, 0]);
    });
    it('reverses', () => {
      const s = scores(1, 2, 3, 0);
      defaultNormalizeScore(100, true, s);
      expect(s.map((x) => x.score)).to.deep.equal([67, 34, 0, 100]);
    });
    it('leaves all-zero scores alone unless reversed', () => {
      const s = scores(0, 0);
      defaultNormalizeScore(100, false, s);
      expect(s.map((x) => x.score)).to.deep.equal([0, 0]);
      defaultNormalizeScore(100, true, s);
      expect(s.map((x) => x.score)).to.deep.equal([100, 100]);
    });
  });

  it('queues the pod when a node stops having an untolerated taint', async () => {
    const plugin = await taintTolerationFactory.create(undefined, testFrameworkHandle(Snapshot.of([])));
    const [reg] = plugin.eventsToRegister!();
    const tainted = testNode('n', { taints: [{ key: 'k', effect: 'NoSchedule' }] });
    expect(reg!.hint!(testPod('p'), tainted, testNode('n'))).to.equal('Queue');
    expect(reg!.hint!(testPod('p'), testNode('n'), tainted)).to.equal('QueueSkip');
    expect(reg!.hint!(testPod('p'), undefined, testNode('n'))).to.equal('Queue');
    expect(reg!.hint!(testPod('p'), undefined, tainted)).to.equal('QueueSkip');
  });
});

describeSchedulerPluginContract(taintTolerationPlugin, {
  scenarios: [
    {
      name: 'hard taints filter, soft taints score',
      nodes: [
        testNode('hard', { taints: [{ key: 'k', value: 'v', effect: 'NoSchedule' }] }),
        testNode('soft', { taints: [{ key: 'k', value: 'v', effect: 'PreferNoSchedule' }] }),
        testNode('clean'),
      ],
      pod: testPod('p'),
      feasible: ['soft', 'clean'],
      best: 'clean',
    },
  ],
});
