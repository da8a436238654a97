import { expect } from 'chai';
import { NodeInfo, Snapshot, type KubeObject } from '@kubernel/sdk';
import { describeSchedulerPluginContract, runPluginOnSnapshot, testFrameworkHandle, testNode, testPod } from '@kubernel/sdk/testing';
import { ERR_REASON_UNSCHEDULABLE, nodeUnschedulableFactory, nodeUnschedulablePlugin } from './node-unschedulable.js';

const tolerating = (toleration: Record<string, unknown>): KubeObject => testPod('p', { spec: { tolerations: [toleration] } });

describe('NodeUnschedulable', () => {
  const cases: Array<{ name: string; pod: KubeObject; unschedulable: boolean; fits: boolean }> = [
    { name: 'schedulable node', pod: testPod('p'), unschedulable: false, fits: true },
    { name: 'cordoned node, no toleration', pod: testPod('p'), unschedulable: true, fits: false },
    { name: 'cordoned node, tolerates the unschedulable taint', pod: tolerating({ key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' }), unschedulable: true, fits: true },
    { name: 'cordoned node, tolerates everything', pod: tolerating({ operator: 'Exists' }), unschedulable: true, fits: true },
    { name: 'cordoned node, toleration for another effect', pod: tolerating({ key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoExecute' }), unschedulable: true, fits: false },
    { name: 'cordoned node, toleration for another key', pod: tolerating({ key: 'other', operator: 'Exists', effect: 'NoSchedule' }), unschedulable: true, fits: false },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const snapshot = Snapshot.of([testNode('n', { unschedulable: c.unschedulable })]);
      const plugin = await nodeUnschedulableFactory.create(undefined, testFrameworkHandle(snapshot));
      const run = runPluginOnSnapshot(plugin, c.pod, snapshot);
      if (c.fits) {
        expect(run.feasible).to.deep.equal(['n']);
      } else {
        const s = run.filter.get('n');
        expect(run.feasible).to.deep.equal([]);
        expect(s?.code).to.equal('UnschedulableAndUnresolvable');
        expect(s?.reasons).to.deep.equal(['node(s) were unschedulable']);
      }
    });
  }

  it('rejects a NodeInfo without a node (unknown condition)', async () => {
    const plugin = await nodeUnschedulableFactory.create(undefined, testFrameworkHandle(Snapshot.of([])));
    const s = plugin.filter!(undefined as never, testPod('p'), undefined as never, new NodeInfo());
    expect(s?.reasons).to.deep.equal(['node(s) had unknown conditions']);
    expect(ERR_REASON_UNSCHEDULABLE).to.equal('node(s) were unschedulable');
  });

  it('registers Node Add/UpdateNodeTaint and queues the pod when a node becomes schedulable', async () => {
    const plugin = await nodeUnschedulableFactory.create(undefined, testFrameworkHandle(Snapshot.of([])));
    const [reg] = plugin.eventsToRegister!();
    expect(reg!.event).to.deep.equal({ resource: 'Node', actions: ['Add', 'UpdateNodeTaint'] });
    expect(reg!.hint!(testPod('p'), testNode('n', { unschedulable: true }), testNode('n'))).to.equal('Queue');
    expect(reg!.hint!(testPod('p'), undefined, testNode('n', { unschedulable: true }))).to.equal('QueueSkip');
  });
});

describeSchedulerPluginContract(nodeUnschedulablePlugin, {
  scenarios: [
    { name: 'a cordoned node is filtered out', nodes: [testNode('a'), testNode('b', { unschedulable: true }), testNode('c')], pod: testPod('p'), feasible: ['a', 'c'] },
    {
      name: 'a pod tolerating the unschedulable taint fits a cordoned node',
      nodes: [testNode('a', { unschedulable: true })],
      pod: tolerating({ key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' }),
      feasible: ['a'],
    },
  ],
});
