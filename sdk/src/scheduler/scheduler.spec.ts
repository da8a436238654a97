import { expect } from 'chai';
import { mergePluginSet, mergeProfile, pluginsByPoint, DEFAULT_MULTI_POINT } from './profile.js';
import { podRequests, resourceList, DEFAULT_MEMORY_REQUEST, DEFAULT_MILLI_CPU_REQUEST } from './resources.js';
import { NodeInfo, PodInfo, Snapshot } from './nodeinfo.js';
import { findUntoleratedTaint, nodeSelectorMatches, podMatchesNodeSelectorAndAffinity, affinityTermMatches, toleratesTaint } from './helpers.js';
import { CycleState, type FrameworkPlugin } from './framework.js';
import { Status } from './status.js';
import type { KubeObject } from '../client/api-client.js';

const pod = (spec: Record<string, unknown>, meta: Record<string, unknown> = {}): KubeObject => ({ metadata: { name: 'p', namespace: 'ns', uid: 'u1', ...meta }, spec });
const node = (name: string, labels: Record<string, string> = {}, extra: Record<string, unknown> = {}): KubeObject => ({ metadata: { name, labels }, status: { allocatable: { cpu: '4', memory: '8Gi', pods: '110' } }, ...extra });

describe('scheduling framework (SDK)', () => {
  describe('pod requests', () => {
    it('sums containers, takes the init peak with sidecars started before, and adds overhead', () => {
      const r = podRequests(pod({
        containers: [{ resources: { requests: { cpu: '100m', memory: '100Mi' } } }, { resources: { requests: { cpu: '200m' } } }],
        initContainers: [
          { resources: { requests: { cpu: '50m', memory: '10Mi' } }, restartPolicy: 'Always' },
          { resources: { requests: { cpu: '1', memory: '50Mi' } } },
        ],
        overhead: { cpu: '10m', memory: '1Mi' },
      }));
      // containers 300m + sidecar 50m = 350m < init peak 1000m + 50m sidecar = 1050m; + 10m overhead.
      expect(r.milliCPU).to.equal(1060);
      // memory: containers 100Mi + sidecar 10Mi = 110Mi > init 50Mi + 10Mi; + 1Mi.
      expect(r.memory).to.equal(111 * 1024 * 1024);
    });

    it('counts 100m and 200 MB for containers without requests only when asked (scoring)', () => {
      const p = pod({ containers: [{}, { resources: { requests: { cpu: '1' } } }] });
      expect(podRequests(p).milliCPU).to.equal(1000);
      const nz = podRequests(p, true);
      expect(nz.milliCPU).to.equal(1000 + DEFAULT_MILLI_CPU_REQUEST);
      expect(nz.memory).to.equal(2 * DEFAULT_MEMORY_REQUEST);
    });

    it('reads extended resources and ignores unknown plain names', () => {
      const r = resourceList({ cpu: '1500m', 'nvidia.com/gpu': '2', 'hugepages-2Mi': '4Mi', storage: '1Gi', pods: '110' });
      expect(r).to.deep.include({ milliCPU: 1500, allowedPodNumber: 110 });
      expect(r.scalar).to.deep.equal({ 'nvidia.com/gpu': 2, 'hugepages-2Mi': 4 * 1024 * 1024 });
    });
  });

  describe('NodeInfo', () => {
    it('accounts pods, ports and affinity lists, and undoes them on removal', () => {
      const n = new NodeInfo(node('a'));
      const withPort = pod({ containers: [{ resources: { requests: { cpu: '1' } }, ports: [{ containerPort: 80, hostPort: 8080 }] }], affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { a: 'b' } } }] } } });
      const g0 = n.generation;
      n.addPod(withPort);
      expect(n.generation).to.be.greaterThan(g0);
      expect(n.requested.milliCPU).to.equal(1000);
      expect(n.portConflicts({ protocol: 'TCP', port: 8080, ip: '10.0.0.1' })).to.equal(true);
      expect(n.portConflicts({ protocol: 'UDP', port: 8080, ip: '0.0.0.0' })).to.equal(false);
      expect(n.podsWithRequiredAntiAffinity).to.have.length(1);
      const c = n.clone();
      expect(n.removePod('u1')).to.equal(true);
      expect(n.requested.milliCPU).to.equal(0);
      expect(n.portConflicts({ protocol: 'TCP', port: 8080, ip: '0.0.0.0' })).to.equal(false);
      expect(n.podsWithRequiredAntiAffinity).to.have.length(0);
      expect(c.requested.milliCPU, 'the clone is independent').to.equal(1000);
      expect(n.removePod('u1')).to.equal(false);
    });

    it('resolves affinity term namespaces: listed, own by default, or by namespaceSelector', () => {
      const pi = new PodInfo(pod({ affinity: { podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [
        { topologyKey: 'zone', labelSelector: { matchLabels: { app: 'db' } } },
        { topologyKey: 'zone', labelSelector: { matchLabels: { app: 'db' } }, namespaceSelector: { matchLabels: { team: 'x' } } },
      ] } } }));
      const [own, bySelector] = pi.requiredAffinityTerms;
      const db = (ns: string): KubeObject => ({ metadata: { name: 'db', namespace: ns, labels: { app: 'db' } } });
      expect(affinityTermMatches(own!, db('ns'))).to.equal(true);
      expect(affinityTermMatches(own!, db('other'))).to.equal(false);
      const labels = (ns: string): Record<string, string> | undefined => (ns === 'teamx' ? { team: 'x' } : {});
      expect(affinityTermMatches(bySelector!, db('teamx'), labels)).to.equal(true);
      expect(affinityTermMatches(bySelector!, db('other'), labels)).to.equal(false);
    });

    it('snapshots count images across nodes', () => {
      const img = { names: ['docker.io/library/nginx:1'], sizeBytes: 100 };
      const s = Snapshot.of([node('a', {}, { status: { allocatable: {}, images: [img] } }), node('b', {}, { status: { allocatable: {}, images: [img] } }), node('c')]);
      expect(s.get('a')!.imageStates.get('docker.io/library/nginx:1')).to.deep.equal({ size: 100, numNodes: 2 });
      expect(s.get('c')!.imageStates.size).to.equal(0);
    });
  });

  describe('matching helpers', () => {
    it('tolerations: Exists with no key tolerates everything; Equal needs the value; effects must match when given', () => {
      const taint = { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' };
      expect(toleratesTaint({ operator: 'Exists' }, taint)).to.equal(true);
      expect(toleratesTaint({ key: 'dedicated', value: 'gpu' }, taint)).to.equal(true);
      expect(toleratesTaint({ key: 'dedicated', value: 'cpu' }, taint)).to.equal(false);
      expect(toleratesTaint({ key: 'dedicated', operator: 'Exists', effect: 'NoExecute' }, taint)).to.equal(false);
      expect(findUntoleratedTaint([taint, { key: 'x', effect: 'PreferNoSchedule' }], [], (t) => t.effect !== 'PreferNoSchedule')).to.equal(taint);
    });

    it('node selector terms: ORed terms, ANDed requirements, Gt/Lt, matchFields on the name, empty term matches nothing', () => {
      const n = node('n1', { zone: 'a', cores: '8' });
      expect(nodeSelectorMatches([{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['b'] }] }, { matchExpressions: [{ key: 'cores', operator: 'Gt', values: ['4'] }] }], n)).to.equal(true);
      expect(nodeSelectorMatches([{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }, { key: 'cores', operator: 'Lt', values: ['4'] }] }], n)).to.equal(false);
      expect(nodeSelectorMatches([{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1'] }] }], n)).to.equal(true);
      expect(nodeSelectorMatches([{}], n)).to.equal(false);
      expect(podMatchesNodeSelectorAndAffinity(pod({ nodeSelector: { zone: 'a' } }), n)).to.equal(true);
      expect(podMatchesNodeSelectorAndAffinity(pod({ nodeSelector: { zone: 'b' } }), n)).to.equal(false);
    });
  });

  describe('profiles', () => {
    it('merges as Kubernetes: defaults in order minus disabled, custom replacing in place, then the rest', () => {
      const merged = mergePluginSet({ enabled: [{ name: 'A' }, { name: 'B', weight: 1 }, { name: 'C' }] }, { enabled: [{ name: 'D' }, { name: 'B', weight: 5 }], disabled: [{ name: 'C' }] });
      expect(merged.enabled).to.deep.equal([{ name: 'A' }, { name: 'B', weight: 5 }, { name: 'D' }]);
      expect(mergePluginSet({ enabled: [{ name: 'A' }] }, { enabled: [{ name: 'X' }], disabled: [{ name: '*' }] }).enabled).to.deep.equal([{ name: 'X' }]);
    });

    it('places plugins at the points they implement, weights from multiPoint, explicit entries first', () => {
      const plugin = (name: string, methods: Partial<FrameworkPlugin>): FrameworkPlugin => ({ name, ...methods });
      const made = new Map<string, FrameworkPlugin>([
        ['PrioritySort', plugin('PrioritySort', { less: () => true })],
        ['Fit', plugin('Fit', { filter: () => undefined, score: () => 1 })],
        ['Taints', plugin('Taints', { filter: () => undefined, score: () => 1 })],
        ['Binder', plugin('Binder', { bind: async () => undefined })],
      ]);
      const profile = mergeProfile(
        { schedulerName: 'x', plugins: { multiPoint: { enabled: [{ name: 'PrioritySort' }, { name: 'Fit', weight: 1 }, { name: 'Taints', weight: 3 }, { name: 'Binder' }] }, score: { enabled: [{ name: 'Taints', weight: 7 }] } } },
        { schedulerName: 'x' },
      );
      const points = pluginsByPoint(profile, made);
      expect(points.filter.plugins.map((p) => p.name)).to.deep.equal(['Fit', 'Taints']);
      expect(points.score.plugins.map((p) => p.name)).to.deep.equal(['Taints', 'Fit']);
      expect([...points.score.weights]).to.deep.equal([['Taints', 7], ['Fit', 1]]);
      expect(() => pluginsByPoint({ schedulerName: 'y', plugins: { multiPoint: { enabled: [{ name: 'Fit' }] } } }, made)).to.throw(/exactly one QueueSort/);
      expect(() => pluginsByPoint({ schedulerName: 'y', plugins: { multiPoint: { enabled: [{ name: 'PrioritySort' }, { name: 'Binder' }] }, filter: { enabled: [{ name: 'Binder' }] } } }, made)).to.throw(/Binder does not implement filter/);
      expect(DEFAULT_MULTI_POINT.find((p) => p.name === 'TaintToleration')?.weight).to.equal(3);
    });
  });

  it('CycleState.clone copies values that can clone themselves, and the skip sets', () => {
    const s = new CycleState();
    const counter = { n: 1, clone() {
      return { ...this };
    } };
    s.write('c', counter);
    s.write('plain', { x: 1 });
    s.skipFilterPlugins.add('P');
    const c = s.clone();
    c.read<{ n: number }>('c')!.n = 2;
    expect(counter.n).to.equal(1);
    expect(c.read('plain')).to.equal(s.read('plain'));
    expect([...c.skipFilterPlugins]).to.deep.equal(['P']);
    expect(Status.unschedulable('a', 'b').message()).to.equal('a, b');
  });
});
