import { expect } from 'chai';
import { Snapshot } from '@kubernel/sdk';
import { describeSchedulerPluginContract, runPluginOnSnapshot, testFrameworkHandle, testNode, testPod } from '@kubernel/sdk/testing';
import { nodeNameFactory, nodeNamePlugin } from './node-name.js';

describe('NodeName', () => {
  const nodes = [testNode('a'), testNode('b'), testNode('c')];
  const snapshot = Snapshot.of(nodes);

  it('lets a pod that names no node fit every node', async () => {
    const plugin = await nodeNameFactory.create(undefined, testFrameworkHandle(snapshot));
    const run = runPluginOnSnapshot(plugin, testPod('p'), snapshot);
    expect(run.feasible).to.deep.equal(['a', 'b', 'c']);
  });

  it('fits only the node the pod names, rejecting the others as unresolvable', async () => {
    const plugin = await nodeNameFactory.create(undefined, testFrameworkHandle(snapshot));
    const run = runPluginOnSnapshot(plugin, testPod('p', { spec: { nodeName: 'b' } }), snapshot);
    expect(run.feasible).to.deep.equal(['b']);
    for (const n of ['a', 'c']) {
      expect(run.filter.get(n)?.code).to.equal('UnschedulableAndUnresolvable');
      expect(run.filter.get(n)?.reasons).to.deep.equal(["node(s) didn't match the requested node name"]);
    }
  });

  it('fits no node when the named node does not exist', async () => {
    const plugin = await nodeNameFactory.create(undefined, testFrameworkHandle(snapshot));
    expect(runPluginOnSnapshot(plugin, testPod('p', { spec: { nodeName: 'zzz' } }), snapshot).feasible).to.deep.equal([]);
  });

  it('queues the pod only when the node it names is added', async () => {
    const plugin = await nodeNameFactory.create(undefined, testFrameworkHandle(snapshot));
    const [reg] = plugin.eventsToRegister!();
    const pod = testPod('p', { spec: { nodeName: 'b' } });
    expect(reg!.hint!(pod, undefined, testNode('b'))).to.equal('Queue');
    expect(reg!.hint!(pod, undefined, testNode('x'))).to.equal('QueueSkip');
  });
});

describeSchedulerPluginContract(nodeNamePlugin, {
  scenarios: [{ name: 'spec.nodeName pins the pod', nodes: [testNode('a'), testNode('b')], pod: testPod('p', { spec: { nodeName: 'a' } }), feasible: ['a'] }],
});
