import { expect } from 'chai';
import { compileConfigSchema, Snapshot, type KubeObject } from '@kubernel/sdk';
import { describeSchedulerPluginContract, runPluginOnSnapshot, testFrameworkHandle, testNode, testPod } from '@kubernel/sdk/testing';
import { BALANCED_ALLOCATION_ARGS_SCHEMA, balancedAllocationFactory, balancedAllocationPlugin, balancedScore, createBalancedAllocation, type BalancedAllocationArgs } from './balanced-allocation.js';

const requesting = (name: string, requests: Record<string, string>): KubeObject => testPod(name, { spec: { containers: [{ name: 'c', image: 'busybox', resources: { requests } }] } });

function scores(pod: KubeObject, nodes: KubeObject[], pods: KubeObject[] = [], args?: BalancedAllocationArgs): Record<string, number> {
  return Object.fromEntries(runPluginOnSnapshot(createBalancedAllocation(args), pod, Snapshot.of(nodes, pods)).scores);
}

describe('NodeResourcesBalancedAllocation', () => {
  it('scores (1 - |cpu fraction - memory fraction| / 2) * 100, truncated', () => {
    const got = scores(testPod('p', { cpu: '1', memory: '1Gi' }), [testNode('a'), testNode('b'), testNode('c')], [
      testPod('e1', { cpu: '1', memory: '1Gi', nodeName: 'a' }),
      testPod('e2', { cpu: '3', memory: '1Gi', nodeName: 'c' }),
    ]);
    // a: cpu 2/4 = 0.5, memory 2Gi/8Gi = 0.25 -> std 0.125 -> 87
    // b: 0.25, 0.125 -> std 0.0625 -> 93
    // c: 1.0, 0.25 -> std 0.375 -> 62
    expect(got).to.deep.equal({ a: 87, b: 93, c: 62 });
  });

  it('uses actual requests, not the non-zero scoring defaults', () => {
    // A pod without requests on nodes running pods without requests: every fraction 0 -> 100.
    expect(scores(testPod('p'), [testNode('a'), testNode('b')], [testPod('e', { nodeName: 'a' })])).to.deep.equal({ a: 100, b: 100 });
  });

  it('caps fractions at 1', () => {
    // cpu 8/4 -> 1, memory 1Gi/8Gi = 0.125 -> std 0.4375 -> 56
    expect(scores(testPod('p', { cpu: '8', memory: '1Gi' }), [testNode('a')])).to.deep.equal({ a: 56 });
  });

  it('uses the standard deviation with more than two resources', () => {
    const args: BalancedAllocationArgs = { resources: [{ name: 'cpu' }, { name: 'memory' }, { name: 'ephemeral-storage' }] };
    const node = testNode('a', { extra: { 'ephemeral-storage': '100Gi' } });
    // fractions 0.25, 0.5, 0.75 -> mean 0.5, std sqrt(0.125 / 3) = 0.2041 -> 79
    expect(scores(requesting('p', { cpu: '1', memory: '4Gi', 'ephemeral-storage': '75Gi' }), [node], [], args)).to.deep.equal({ a: 79 });
  });

  it('leaves out extended resources the pod does not request and resources the node lacks', () => {
    const args: BalancedAllocationArgs = { resources: [{ name: 'cpu' }, { name: 'memory' }, { name: 'example.com/gpu' }] };
    const gpuNode = testNode('g', { extra: { 'example.com/gpu': '4' } });
    expect(scores(testPod('p', { cpu: '1', memory: '1Gi' }), [gpuNode], [], args)).to.deep.equal({ g: 93 });
    // With 2 of 4 GPUs: fractions 0.25, 0.125, 0.5 -> std 0.1559 -> 84
    expect(scores(requesting('p', { cpu: '1', memory: '1Gi', 'example.com/gpu': '2' }), [gpuNode], [], args)).to.deep.equal({ g: 84 });
    // A single resource has no deviation.
    expect(scores(testPod('p', { cpu: '3' }), [testNode('a')], [], { resources: [{ name: 'cpu' }] })).to.deep.equal({ a: 100 });
  });

  it('balancedScore follows the Kubernetes formula', () => {
    expect(balancedScore([0.5, 0.25], 2)).to.equal(87);
    expect(balancedScore([0.3], 1)).to.equal(100);
    expect(balancedScore([], 0)).to.equal(100);
    expect(balancedScore([0, 1], 2)).to.equal(50);
  });

  it('validates and defaults its args', async () => {
    const validate = compileConfigSchema(BALANCED_ALLOCATION_ARGS_SCHEMA, 'NodeResourcesBalancedAllocation');
    const r = validate({});
    expect(r.ok && r.config).to.deep.equal({ resources: [{ name: 'cpu', weight: 1 }, { name: 'memory', weight: 1 }] });
    expect(validate({ resources: [{ weight: 1 }] }).ok).to.equal(false);
    expect(() => createBalancedAllocation({ resources: [{ name: 'cpu', weight: 200 }] })).to.throw(/range/);
    expect(() => createBalancedAllocation({ resources: [{ name: 'cpu' }, { name: 'cpu' }] })).to.throw(/Duplicate/);
    const plugin = await balancedAllocationFactory.create(undefined, testFrameworkHandle(Snapshot.of([])));
    expect(plugin.name).to.equal('NodeResourcesBalancedAllocation');
    expect(plugin.filter).to.equal(undefined);
  });
});

describeSchedulerPluginContract(balancedAllocationPlugin, {
  scenarios: [
    {
      name: 'prefers the node that stays balanced',
      nodes: [testNode('x'), testNode('y')],
      pods: [testPod('cpu-heavy', { cpu: '2', memory: '512Mi', nodeName: 'x' }), testPod('mem-heavy', { cpu: '1', memory: '3Gi', nodeName: 'y' })],
      pod: testPod('p', { cpu: '500m', memory: '1Gi' }),
      best: 'y',
    },
  ],
});
