import { expect } from 'chai';
import { Snapshot } from '@kubernel/sdk';
import { describeSchedulerPluginContract, testFrameworkHandle, testNode, testPod } from '@kubernel/sdk/testing';
import { schedulingGatesFactory, schedulingGatesPlugin, schedulingGatesPreEnqueue } from './scheduling-gates.js';

const gated = (...names: string[]) => testPod('gated', { spec: { schedulingGates: names.map((name) => ({ name })) } });

describe('SchedulingGates', () => {
  it('lets a pod without scheduling gates in', () => {
    expect(schedulingGatesPreEnqueue(testPod('p'))).to.equal(undefined);
    expect(schedulingGatesPreEnqueue(testPod('p', { spec: { schedulingGates: [] } }))).to.equal(undefined);
  });

  it('keeps a gated pod out, naming its gates as Kubernetes does', () => {
    const s = schedulingGatesPreEnqueue(gated('example.com/a', 'b'));
    expect(s?.code).to.equal('UnschedulableAndUnresolvable');
    expect(s?.reasons).to.deep.equal(['waiting for scheduling gates: [example.com/a b]']);
    expect(s?.plugin).to.equal('SchedulingGates');
    expect(schedulingGatesPreEnqueue(gated('only'))?.message()).to.equal('waiting for scheduling gates: [only]');
  });

  it('retries the pod when an update removes its last gate', async () => {
    const plugin = await schedulingGatesFactory.create(undefined, testFrameworkHandle(Snapshot.of([])));
    const [reg] = plugin.eventsToRegister!();
    expect(reg!.event).to.deep.equal({ resource: 'Pod', actions: ['Update'] });
    const pod = gated('a');
    expect(reg!.hint!(pod, pod, testPod('gated'))).to.equal('Queue');
    expect(reg!.hint!(pod, pod, gated('b'))).to.equal('QueueSkip');
    expect(reg!.hint!(pod, undefined, testPod('another'))).to.equal('QueueSkip');
  });

  it('is a PreEnqueue plugin only', async () => {
    const plugin = await schedulingGatesFactory.create(undefined, testFrameworkHandle(Snapshot.of([])));
    expect(plugin.preEnqueue).to.be.a('function');
    expect(plugin.filter).to.equal(undefined);
    expect(plugin.preEnqueue!(gated('x'))?.code).to.equal('UnschedulableAndUnresolvable');
  });
});

describeSchedulerPluginContract(schedulingGatesPlugin, {
  scenarios: [{ name: 'PreEnqueue only: every node stays feasible', nodes: [testNode('a'), testNode('b')], pod: gated('g'), feasible: ['a', 'b'] }],
});
