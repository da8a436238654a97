import { expect } from 'chai';
import { compileConfigSchema, Snapshot, type KubeObject } from '@kubernel/sdk';
import { describeSchedulerPluginContract, runPluginOnSnapshot, testFrameworkHandle, testNode, testPod } from '@kubernel/sdk/testing';
import {
  brokenLinear,
  createNodeResourcesFit,
  insufficientResources,
  leastRequestedScore,
  mostRequestedScore,
  NODE_RESOURCES_FIT_ARGS_SCHEMA,
  nodeResourcesFitFactory,
  nodeResourcesFitPlugin,
  resolveFitArgs,
  type NodeResourcesFitArgs,
} from './node-resources-fit.js';

type Obj = Record<string, unknown>;

/** A pod whose one container requests `requests` (any resource names). */
const requesting = (name: string, requests: Record<string, string>, extra: Obj = {}): KubeObject =>
  testPod(name, { spec: { containers: [{ name: 'c', image: 'busybox', resources: { requests } }], ...extra } });

function run(pod: KubeObject, nodes: KubeObject[], pods: KubeObject[] = [], args?: NodeResourcesFitArgs) {
  return runPluginOnSnapshot(createNodeResourcesFit(args), pod, Snapshot.of(nodes, pods));
}

describe('NodeResourcesFit', () => {
  describe('Filter', () => {
    const cases: Array<{ name: string; node: KubeObject; existing?: KubeObject[]; pod: KubeObject; args?: NodeResourcesFitArgs; reasons?: string[] }> = [
      { name: 'fits an empty node', node: testNode('n'), pod: testPod('p', { cpu: '1', memory: '1Gi' }) },
      { name: 'fits exactly what is left', node: testNode('n', { cpu: '4' }), existing: [testPod('e', { cpu: '3', nodeName: 'n' })], pod: testPod('p', { cpu: '1' }) },
      { name: 'insufficient cpu', node: testNode('n', { cpu: '4' }), existing: [testPod('e', { cpu: '3', nodeName: 'n' })], pod: testPod('p', { cpu: '1500m' }), reasons: ['Insufficient cpu'] },
      { name: 'insufficient memory', node: testNode('n', { memory: '1Gi' }), pod: testPod('p', { memory: '2Gi' }), reasons: ['Insufficient memory'] },
      { name: 'insufficient cpu and memory, in that order', node: testNode('n', { cpu: '1', memory: '1Gi' }), pod: testPod('p', { cpu: '2', memory: '2Gi' }), reasons: ['Insufficient cpu', 'Insufficient memory'] },
      { name: 'too many pods', node: testNode('n', { pods: 1 }), existing: [testPod('e', { nodeName: 'n' })], pod: testPod('p'), reasons: ['Too many pods'] },
      { name: 'too many pods and insufficient cpu', node: testNode('n', { pods: 1, cpu: '1' }), existing: [testPod('e', { nodeName: 'n' })], pod: testPod('p', { cpu: '2' }), reasons: ['Too many pods', 'Insufficient cpu'] },
      { name: 'a pod without requests fits a full node', node: testNode('n', { cpu: '1' }), existing: [testPod('e', { cpu: '1', nodeName: 'n' })], pod: testPod('p') },
      {
        name: 'insufficient ephemeral-storage',
        node: testNode('n', { extra: { 'ephemeral-storage': '10Gi' } }),
        pod: requesting('p', { 'ephemeral-storage': '20Gi' }),
        reasons: ['Insufficient ephemeral-storage'],
      },
      { name: 'insufficient extended resource', node: testNode('n', { extra: { 'example.com/gpu': '1' } }), pod: requesting('p', { 'example.com/gpu': '2' }), reasons: ['Insufficient example.com/gpu'] },
      { name: 'an extended resource the node lacks', node: testNode('n'), pod: requesting('p', { 'example.com/gpu': '1' }), reasons: ['Insufficient example.com/gpu'] },
      { name: 'ignoredResources', node: testNode('n'), pod: requesting('p', { 'example.com/gpu': '1' }), args: { ignoredResources: ['example.com/gpu'] } },
      { name: 'ignoredResourceGroups', node: testNode('n'), pod: requesting('p', { 'example.com/gpu': '1', cpu: '100' }), args: { ignoredResourceGroups: ['example.com'] }, reasons: ['Insufficient cpu'] },
      { name: 'hugepages cannot be ignored', node: testNode('n'), pod: requesting('p', { 'hugepages-2Mi': '4Mi' }), args: { ignoredResourceGroups: ['hugepages-2Mi'] }, reasons: ['Insufficient hugepages-2Mi'] },
      {
        name: 'an init container larger than the containers sets the request',
        node: testNode('n', { cpu: '2' }),
        pod: testPod('p', { cpu: '1', spec: { initContainers: [{ name: 'i', image: 'x', resources: { requests: { cpu: '3' } } }] } }),
        reasons: ['Insufficient cpu'],
      },
      { name: 'pod overhead counts', node: testNode('n', { cpu: '1500m' }), pod: testPod('p', { cpu: '1', spec: { overhead: { cpu: '1' } } }), reasons: ['Insufficient cpu'] },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const r = run(c.pod, [c.node], c.existing ?? [], c.args);
        const s = r.filter.get('n');
        if (!c.reasons) {
          expect(s, s?.message()).to.equal(undefined);
          expect(r.feasible).to.deep.equal(['n']);
        } else {
          expect(s?.code).to.equal('Unschedulable');
          expect(s?.reasons).to.deep.equal(c.reasons);
          expect(s?.plugin).to.equal('NodeResourcesFit');
        }
      });
    }

    it('describes what does not fit (Kubernetes Fits)', () => {
      const nodes = Snapshot.of([testNode('n', { cpu: '1', pods: 1 })], [testPod('e', { cpu: '250m', nodeName: 'n' })]);
      expect(insufficientResources(testPod('p', { cpu: '1' }), nodes.get('n')!)).to.deep.equal([
        { resourceName: 'pods', reason: 'Too many pods', requested: 1, used: 1, capacity: 1 },
        { resourceName: 'cpu', reason: 'Insufficient cpu', requested: 1000, used: 250, capacity: 1000 },
      ]);
    });
  });

  describe('Score', () => {
    // Nodes: a (4 CPU, 8Gi) already runs 1 CPU / 2Gi; b (4 CPU, 8Gi) is empty; c (2 CPU, 8Gi) is empty.
    const nodes = [testNode('a'), testNode('b'), testNode('c', { cpu: '2' })];
    const existing = [testPod('e', { cpu: '1', memory: '2Gi', nodeName: 'a' })];
    const pod = testPod('p', { cpu: '500m', memory: '1Gi' });

    it('LeastAllocated (default): ((capacity - requested) * 100 / capacity), averaged by weight', () => {
      const r = run(pod, nodes, existing);
      // a: cpu (4000-1500)*100/4000 = 62, memory (8Gi-3Gi)*100/8Gi = 62 -> 62
      // b: cpu 3500*100/4000 = 87, memory 7Gi*100/8Gi = 87 -> 87
      // c: cpu 1500*100/2000 = 75, memory 87 -> (75+87)/2 = 81
      expect(Object.fromEntries(r.scores)).to.deep.equal({ a: 62, b: 87, c: 81 });
    });

    it('LeastAllocated with weights', () => {
      const r = run(pod, nodes, existing, { scoringStrategy: { type: 'LeastAllocated', resources: [{ name: 'cpu', weight: 2 }, { name: 'memory', weight: 1 }] } });
      // c: (75*2 + 87*1) / 3 = 79
      expect(r.scores.get('c')).to.equal(79);
      expect(r.scores.get('b')).to.equal(87);
    });

    it('MostAllocated prefers the fuller node (bin packing)', () => {
      const r = run(pod, nodes, existing, { scoringStrategy: { type: 'MostAllocated' } });
      // a: 1500*100/4000 = 37, 3Gi*100/8Gi = 37 -> 37; b: 12, 12 -> 12; c: 500*100/2000 = 25, 12 -> 18
      expect(Object.fromEntries(r.scores)).to.deep.equal({ a: 37, b: 12, c: 18 });
    });

    it('RequestedToCapacityRatio follows the shape (scores 0-10 scaled to 0-100)', () => {
      const packing = run(pod, nodes, existing, { scoringStrategy: { type: 'RequestedToCapacityRatio', requestedToCapacityRatio: { shape: [{ utilization: 0, score: 0 }, { utilization: 100, score: 10 }] } } });
      expect(Object.fromEntries(packing.scores)).to.deep.equal({ a: 37, b: 12, c: 19 });
      const spreading = run(pod, nodes, existing, { scoringStrategy: { type: 'RequestedToCapacityRatio', requestedToCapacityRatio: { shape: [{ utilization: 0, score: 10 }, { utilization: 100, score: 0 }] } } });
      // a: 100 - 37 = 63 for both; b: 88; c: cpu 75, memory 88 -> round(81.5) = 82
      expect(Object.fromEntries(spreading.scores)).to.deep.equal({ a: 63, b: 88, c: 82 });
    });

    it('counts pods and containers without requests as 100m CPU and 200MB memory', () => {
      const r = run(testPod('p'), [testNode('busy'), testNode('idle')], [testPod('e', { nodeName: 'busy' })]);
      // idle: cpu 3900*100/4000 = 97, memory (8Gi-200Mi)*100/8Gi = 97 -> 97
      // busy: cpu 3800*100/4000 = 95, memory (8Gi-400Mi)*100/8Gi = 95 -> 95
      expect(Object.fromEntries(r.scores)).to.deep.equal({ busy: 95, idle: 97 });
    });

    it('skips an extended resource the pod does not request', () => {
      const args: NodeResourcesFitArgs = { scoringStrategy: { type: 'MostAllocated', resources: [{ name: 'cpu', weight: 1 }, { name: 'example.com/gpu', weight: 5 }] } };
      const gpuNode = testNode('g', { extra: { 'example.com/gpu': '4' } });
      expect(run(testPod('p', { cpu: '1' }), [gpuNode], [], args).scores.get('g')).to.equal(25);
      // With 2 GPUs requested: cpu 25, gpu 2*100/4 = 50 -> weighted (25*1 + 50*5) / 6 = 45
      expect(run(requesting('p', { cpu: '1', 'example.com/gpu': '2' }), [gpuNode], [], args).scores.get('g')).to.equal(45);
    });

    it('scorers match Kubernetes on the edges', () => {
      expect(leastRequestedScore(5, 0)).to.equal(0);
      expect(leastRequestedScore(11, 10)).to.equal(0);
      expect(leastRequestedScore(1, 3)).to.equal(66);
      expect(mostRequestedScore(11, 10)).to.equal(100);
      expect(mostRequestedScore(1, 3)).to.equal(33);
      // Go truncates toward zero on a falling segment: 100 + (-100*10)/30 = 100 - 33
      expect(brokenLinear([{ utilization: 0, score: 100 }, { utilization: 30, score: 0 }], 10)).to.equal(67);
      expect(brokenLinear([{ utilization: 10, score: 20 }, { utilization: 30, score: 40 }], 5)).to.equal(20);
      expect(brokenLinear([{ utilization: 10, score: 20 }, { utilization: 30, score: 40 }], 50)).to.equal(40);
    });
  });

  describe('args', () => {
    it('defaults to LeastAllocated over cpu and memory, weight 1', () => {
      const a = resolveFitArgs(undefined);
      expect(a.type).to.equal('LeastAllocated');
      expect(a.resources).to.deep.equal([{ name: 'cpu', weight: 1 }, { name: 'memory', weight: 1 }]);
      expect(resolveFitArgs({ scoringStrategy: { resources: [{ name: 'cpu', weight: 0 }] } }).resources).to.deep.equal([{ name: 'cpu', weight: 1 }]);
    });

    it('refuses invalid args as Kubernetes validation does', () => {
      expect(() => resolveFitArgs({ scoringStrategy: { resources: [{ name: 'cpu', weight: 101 }] } })).to.throw(/range \[1, 100\]/);
      expect(() => resolveFitArgs({ scoringStrategy: { type: 'RequestedToCapacityRatio' } })).to.throw(/shape/);
      expect(() => resolveFitArgs({ scoringStrategy: { type: 'RequestedToCapacityRatio', requestedToCapacityRatio: { shape: [{ utilization: 50, score: 1 }, { utilization: 40, score: 2 }] } } })).to.throw(/increasing/);
      expect(() => resolveFitArgs({ scoringStrategy: { type: 'RequestedToCapacityRatio', requestedToCapacityRatio: { shape: [{ utilization: 50, score: 11 }] } } })).to.throw(/score/);
      expect(() => resolveFitArgs({ ignoredResourceGroups: ['a/b'] })).to.throw(/'\/'/);
      expect(() => createNodeResourcesFit({ scoringStrategy: { type: 'Nope' as never } })).to.throw(/Unsupported/);
    });

    it('has a JSON Schema that fills in the defaults', () => {
      const result = compileConfigSchema(NODE_RESOURCES_FIT_ARGS_SCHEMA, 'NodeResourcesFit')({});
      expect(result.ok).to.equal(true);
      expect(result.ok && result.config).to.deep.equal({ ignoredResources: [], ignoredResourceGroups: [], scoringStrategy: { type: 'LeastAllocated', resources: [{ name: 'cpu', weight: 1 }, { name: 'memory', weight: 1 }] } });
      expect(compileConfigSchema(NODE_RESOURCES_FIT_ARGS_SCHEMA)({ scoringStrategy: { type: 'Other' } }).ok).to.equal(false);
    });
  });

  it('queues the pod on deletions of scheduled pods and on nodes that could fit it', async () => {
    const plugin = await nodeResourcesFitFactory.create(undefined, testFrameworkHandle(Snapshot.of([])));
    const [podDelete, nodeChange] = plugin.eventsToRegister!();
    const pod = testPod('p', { cpu: '2' });
    expect(podDelete!.hint!(pod, testPod('e', { nodeName: 'n' }), undefined)).to.equal('Queue');
    expect(podDelete!.hint!(pod, testPod('e'), undefined)).to.equal('QueueSkip');
    expect(nodeChange!.hint!(pod, undefined, testNode('n', { cpu: '4' }))).to.equal('Queue');
    expect(nodeChange!.hint!(pod, undefined, testNode('n', { cpu: '1' }))).to.equal('QueueSkip');
    expect(nodeChange!.hint!(pod, testNode('n', { cpu: '2' }), testNode('n', { cpu: '4' }))).to.equal('Queue');
    expect(nodeChange!.hint!(pod, testNode('n', { cpu: '4' }), testNode('n', { cpu: '4', labels: { x: 'y' } }))).to.equal('QueueSkip');
  });
});

const contractNodes = [testNode('busy'), testNode('idle'), testNode('tiny', { cpu: '500m' })];
const contractPods = [testPod('running', { cpu: '2', memory: '4Gi', nodeName: 'busy' })];
const contractPod = testPod('incoming', { cpu: '1', memory: '1Gi' });

describeSchedulerPluginContract(nodeResourcesFitPlugin, {
  scenarios: [{ name: 'LeastAllocated spreads onto the idle node', nodes: contractNodes, pods: contractPods, pod: contractPod, feasible: ['busy', 'idle'], best: 'idle' }],
});

describeSchedulerPluginContract(nodeResourcesFitPlugin, {
  args: { scoringStrategy: { type: 'MostAllocated', resources: [{ name: 'cpu', weight: 1 }, { name: 'memory', weight: 1 }] } },
  scenarios: [{ name: 'MostAllocated packs onto the busy node', nodes: contractNodes, pods: contractPods, pod: contractPod, feasible: ['busy', 'idle'], best: 'busy' }],
});
