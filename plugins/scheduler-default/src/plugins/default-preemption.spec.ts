import { expect } from 'chai';
import {
  ApiStatusError,
  CycleState,
  PodInfo,
  Snapshot,
  Status,
  compileConfigSchema,
  type ApiClient,
  type FrameworkHandle,
  type FrameworkPlugin,
  type KubeObject,
  type NodeInfo,
  type PodNominator,
} from '@kubernel/sdk';
import { describeSchedulerPluginContract, testFrameworkHandle, testNode, testPod } from '@kubernel/sdk/testing';
import {
  DEFAULT_PREEMPTION_ARGS_SCHEMA,
  DefaultPreemption,
  calculateNumCandidates,
  defaultPreemptionFactory,
  defaultPreemptionPlugin,
  disruptionTargetCondition,
  filterPodsWithPDBViolation,
  fitErrorMessage,
  getOffsetAndNumCandidates,
  parseDefaultPreemptionArgs,
  pickOneNodeForPreemption,
  podEligibleToPreemptOthers,
  podTerminatingByPreemption,
  selectVictimsOnNode,
  type Candidate,
  type DefaultPreemptionArgs,
} from './default-preemption.js';

type Obj = Record<string, unknown>;

describeSchedulerPluginContract(defaultPreemptionPlugin);

// ---------------------------------------------------------------------------------------------
// Test kit: a resource-fit filter, a filter that keeps its counts in the cycle state (so that the
// PreFilter extensions and state cloning matter), a fake API client, and a scheduling-cycle helper.

/** Rejects when the node lacks cpu/memory/pod slots; a node labelled `unresolvable` rejects for good. */
const fitFilter: FrameworkPlugin = {
  name: 'TestFit',
  preFilterExtensions: () => ({ addPod: () => undefined, removePod: () => undefined }),
  filter(_state, _pod, podInfo, nodeInfo) {
    if (nodeInfo.node?.metadata?.labels?.unresolvable) return Status.unresolvable("node(s) didn't match Pod's node affinity/selector");
    const reasons: string[] = [];
    if (nodeInfo.pods.length + 1 > nodeInfo.allocatable.allowedPodNumber) reasons.push('Too many pods');
    if (podInfo.requests.milliCPU > 0 && nodeInfo.requested.milliCPU + podInfo.requests.milliCPU > nodeInfo.allocatable.milliCPU) reasons.push('Insufficient cpu');
    if (podInfo.requests.memory > 0 && nodeInfo.requested.memory + podInfo.requests.memory > nodeInfo.allocatable.memory) reasons.push('Insufficient memory');
    return reasons.length > 0 ? Status.unschedulable(...reasons) : undefined;
  },
};

/** Per-node counts of pods labelled `slot`, kept in the cycle state (cloned with it). */
class SlotCounts {
  constructor(readonly counts: Map<string, number>) {}
  clone(): SlotCounts {
    return new SlotCounts(new Map(this.counts));
  }
}

/**
 * A node labelled `slots: N` takes at most N pods labelled `slot`. The counts are computed at
 * PreFilter and only updated through the PreFilter extensions, as InterPodAffinity does.
 */
function slotFilter(snapshot: Snapshot, log: string[] = []): FrameworkPlugin {
  const bump = (state: CycleState, pi: PodInfo, node: NodeInfo, by: number): undefined => {
    log.push(`${by > 0 ? 'add' : 'remove'} ${pi.name}`);
    if (!pi.pod.metadata?.labels?.slot) return undefined;
    const s = state.read<SlotCounts>('slots')!;
    s.counts.set(node.name, (s.counts.get(node.name) ?? 0) + by);
    return undefined;
  };
  return {
    name: 'TestSlots',
    preFilter(state) {
      const counts = new Map<string, number>();
      for (const n of snapshot.list()) counts.set(n.name, n.pods.filter((p) => p.pod.metadata?.labels?.slot).length);
      state.write('slots', new SlotCounts(counts));
      return undefined;
    },
    preFilterExtensions: () => ({ addPod: (state, _pod, pi, node) => bump(state, pi, node, 1), removePod: (state, _pod, pi, node) => bump(state, pi, node, -1) }),
    filter(state, pod, _podInfo, nodeInfo) {
      const limit = nodeInfo.node?.metadata?.labels?.slots;
      if (limit === undefined || !pod.metadata?.labels?.slot) return undefined;
      const used = state.read<SlotCounts>('slots')!.counts.get(nodeInfo.name) ?? 0;
      return used >= Number(limit) ? Status.unschedulable('No free slot') : undefined;
    },
  };
}

interface Call {
  readonly method: string;
  readonly path: string;
  readonly body?: unknown;
  readonly contentType?: string;
}

/** The parts of ApiClient the plugin uses, recording calls; PDBs come from a fake informer. */
class FakeApi {
  readonly calls: Call[] = [];
  readonly informers: string[] = [];
  pdbs: KubeObject[] = [];
  /** Paths answered 404. */
  readonly missing = new Set<string>();
  /** Paths answered 500. */
  readonly broken = new Set<string>();

  private answer(call: Call): Promise<KubeObject> {
    this.calls.push(call);
    if (this.missing.has(call.path)) return Promise.reject(new ApiStatusError(404, 'NotFound', `${call.path} not found`));
    if (this.broken.has(call.path)) return Promise.reject(new ApiStatusError(500, 'InternalError', 'boom'));
    return Promise.resolve({});
  }
  get(path: string): Promise<KubeObject> {
    return this.answer({ method: 'GET', path });
  }
  update(path: string, body: unknown): Promise<KubeObject> {
    return this.answer({ method: 'PUT', path, body });
  }
  patch(path: string, body: unknown, contentType = 'application/merge-patch+json'): Promise<KubeObject> {
    return this.answer({ method: 'PATCH', path, body, contentType });
  }
  delete(path: string): Promise<KubeObject> {
    return this.answer({ method: 'DELETE', path });
  }
  informer(path: string): unknown {
    this.informers.push(path);
    return { run: () => undefined, synced: true, waitForSync: () => Promise.resolve(), list: () => this.pdbs };
  }
  asClient(): ApiClient {
    return this as unknown as ApiClient;
  }
  /** `METHOD path` of each call. */
  summary(): string[] {
    return this.calls.map((c) => `${c.method} ${c.path}`);
  }
}

const podPath = (name: string, ns = 'default'): string => `/api/v1/namespaces/${ns}/pods/${name}`;

function withStatus(pod: KubeObject, status: Obj, metadata: Obj = {}): KubeObject {
  return { ...pod, metadata: { ...pod.metadata, ...metadata }, status: { ...(pod.status as Obj), ...status } };
}

function pdb(name: string, matchLabels: Record<string, string> | undefined, disruptionsAllowed: number, o: { namespace?: string; disruptedPods?: Record<string, string> } = {}): KubeObject {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name, namespace: o.namespace ?? 'default' },
    spec: matchLabels === undefined ? {} : { selector: { matchLabels } },
    status: { disruptionsAllowed, ...(o.disruptedPods ? { disruptedPods: o.disruptedPods } : {}) },
  };
}

interface Cycle {
  readonly handle: FrameworkHandle & { readonly events: Array<{ reason: string; message: string }> };
  readonly api: FakeApi;
  readonly state: CycleState;
  readonly statuses: Map<string, Status>;
  readonly snapshot: Snapshot;
}

/**
 * One scheduling cycle up to PostFilter: PreFilter of every filter, Filter on every node (the
 * statuses PostFilter gets: only the rejected nodes, as the framework reports them).
 */
function cycle(nodes: KubeObject[], pods: KubeObject[], preemptor: KubeObject, o: { filters?: (s: Snapshot) => FrameworkPlugin[]; nominated?: Record<string, KubeObject[]>; pdbs?: KubeObject[]; api?: FakeApi | null } = {}): Cycle {
  const snapshot = Snapshot.of(nodes, pods);
  const filters = o.filters ? o.filters(snapshot) : [fitFilter];
  const api = o.api ?? new FakeApi();
  api.pdbs = o.pdbs ?? [];
  const handle = testFrameworkHandle(snapshot, { filters, ...(o.api === null ? {} : { api: api.asClient() }) });
  if (o.nominated) {
    const nominated = new Map(Object.entries(o.nominated).map(([n, ps]) => [n, ps.map((p) => new PodInfo(p))]));
    const nominator: PodNominator = { nominatedPodsForNode: (n) => nominated.get(n) ?? [] };
    (handle as { nominator: PodNominator }).nominator = nominator;
  }
  const state = new CycleState();
  const podInfo = new PodInfo(preemptor);
  for (const f of filters) f.preFilter?.(state, preemptor, podInfo);
  const statuses = new Map<string, Status>();
  for (const n of snapshot.list()) {
    const s = handle.runFilterPlugins(state, preemptor, podInfo, n);
    if (s && !s.isSuccess()) statuses.set(n.name, s);
  }
  return { handle, api, state, statuses, snapshot };
}

function plugin(c: Cycle, args: Partial<DefaultPreemptionArgs> = {}, random = (): number => 0): DefaultPreemption {
  return new DefaultPreemption(parseDefaultPreemptionArgs(args), c.handle, { random, now: () => Date.parse('2026-01-01T00:00:00Z') });
}

const deleted = (api: FakeApi): string[] => api.calls.filter((c) => c.method === 'DELETE').map((c) => c.path).sort();

// ---------------------------------------------------------------------------------------------

describe('DefaultPreemption: args and candidate counts', () => {
  it('applies the defaults and refuses what Kubernetes refuses', () => {
    expect(parseDefaultPreemptionArgs(undefined)).to.deep.equal({ minCandidateNodesPercentage: 10, minCandidateNodesAbsolute: 100 });
    expect(parseDefaultPreemptionArgs({ minCandidateNodesAbsolute: 5 })).to.deep.equal({ minCandidateNodesPercentage: 10, minCandidateNodesAbsolute: 5 });
    expect(() => parseDefaultPreemptionArgs({ minCandidateNodesPercentage: 101 })).to.throw(/minCandidateNodesPercentage/);
    expect(() => parseDefaultPreemptionArgs({ minCandidateNodesAbsolute: -1 })).to.throw(/minCandidateNodesAbsolute/);
    expect(() => parseDefaultPreemptionArgs({ minCandidateNodesPercentage: 0, minCandidateNodesAbsolute: 0 })).to.throw(/both cannot be zero/);
    expect(() => parseDefaultPreemptionArgs({ minCandidateNodesPercentage: 1.5 })).to.throw(/minCandidateNodesPercentage/);
  });

  it('publishes an args schema that compiles and fills in the defaults', () => {
    const validate = compileConfigSchema(DEFAULT_PREEMPTION_ARGS_SCHEMA);
    expect(validate({})).to.deep.equal({ ok: true, config: { minCandidateNodesPercentage: 10, minCandidateNodesAbsolute: 100 } });
    expect(validate({ minCandidateNodesPercentage: 200 }).ok).to.equal(false);
    expect(validate({ unknown: 1 }).ok).to.equal(false);
  });

  it('the factory makes a DefaultPreemption from defaulted args, and refuses bad ones', async () => {
    const p = await defaultPreemptionFactory.create(undefined, testFrameworkHandle(Snapshot.of([])));
    expect(p).to.be.instanceOf(DefaultPreemption);
    expect(p.name).to.equal('DefaultPreemption');
    expect((p as DefaultPreemption).args).to.deep.equal({ minCandidateNodesPercentage: 10, minCandidateNodesAbsolute: 100 });
    expect(() => defaultPreemptionFactory.create({ minCandidateNodesPercentage: 0, minCandidateNodesAbsolute: 0 }, testFrameworkHandle(Snapshot.of([])))).to.throw();
  });

  const table: Array<[string, number, number, number, number]> = [
    // name, nodes, percentage, absolute, expected
    ['absolute dominates on small clusters', 10, 10, 100, 10],
    ['percentage dominates on big clusters', 5000, 10, 100, 500],
    ['absolute floor', 500, 10, 100, 100],
    ['percentage rounds down', 999, 10, 0, 99],
    ['never more than the nodes', 3, 100, 5, 3],
    ['zero nodes', 0, 10, 100, 0],
  ];
  for (const [name, nodes, pct, abs, want] of table) {
    it(`calculateNumCandidates: ${name}`, () => {
      expect(calculateNumCandidates(nodes, { minCandidateNodesPercentage: pct, minCandidateNodesAbsolute: abs })).to.equal(want);
    });
  }

  it('draws the offset from the random source, within the nodes', () => {
    const args = { minCandidateNodesPercentage: 10, minCandidateNodesAbsolute: 100 };
    expect(getOffsetAndNumCandidates(10, args, () => 0)).to.deep.equal({ offset: 0, numCandidates: 10 });
    expect(getOffsetAndNumCandidates(10, args, () => 0.55)).to.deep.equal({ offset: 5, numCandidates: 10 });
    expect(getOffsetAndNumCandidates(10, args, () => 0.999999)).to.deep.equal({ offset: 9, numCandidates: 10 });
  });
});

describe('DefaultPreemption: picking the candidate', () => {
  const NOW = Date.parse('2026-01-01T00:00:00Z');
  const victim = (name: string, priority: number, startTime?: string): KubeObject => withStatus(testPod(name, { priority, nodeName: 'x' }), startTime ? { startTime } : {});
  const cand = (name: string, numPDBViolations: number, ...pods: KubeObject[]): Candidate => ({ name, victims: { pods, numPDBViolations } });
  const table: Array<{ name: string; candidates: Candidate[]; want: string }> = [
    { name: 'fewest PDB violations first', candidates: [cand('a', 1, victim('p', 1)), cand('b', 0, victim('q', 100))], want: 'b' },
    { name: 'lowest highest-victim priority', candidates: [cand('a', 0, victim('p', 5), victim('p2', 1)), cand('b', 0, victim('q', 4), victim('q2', 4))], want: 'b' },
    { name: 'smallest sum of priorities', candidates: [cand('a', 0, victim('p', 5), victim('p2', 3)), cand('b', 0, victim('q', 5), victim('q2', 2))], want: 'b' },
    { name: 'sum counts negative priorities as positive offsets', candidates: [cand('a', 0, victim('p', -5), victim('p2', -5)), cand('b', 0, victim('q', -5))], want: 'b' },
    { name: 'fewest victims', candidates: [cand('a', 0, victim('p', 0), victim('p2', 0)), cand('b', 0, victim('q', 0))], want: 'b' },
    {
      name: 'latest start of the highest-priority victims',
      candidates: [cand('a', 0, victim('p', 3, '2025-01-01T00:00:00Z'), victim('p2', 1, '2025-12-31T00:00:00Z')), cand('b', 0, victim('q', 3, '2025-06-01T00:00:00Z'), victim('q2', 1, '2024-01-01T00:00:00Z'))],
      want: 'b',
    },
    {
      name: 'latest start counts the earliest of several highest-priority victims',
      candidates: [cand('a', 0, victim('p', 3, '2025-03-01T00:00:00Z'), victim('p2', 3, '2025-01-01T00:00:00Z')), cand('b', 0, victim('q', 3, '2025-02-01T00:00:00Z'), victim('q2', 3, '2025-02-02T00:00:00Z'))],
      want: 'b',
    },
    { name: 'then the first', candidates: [cand('a', 0, victim('p', 1, '2025-01-01T00:00:00Z')), cand('b', 0, victim('q', 1, '2025-01-01T00:00:00Z'))], want: 'a' },
  ];
  for (const t of table) {
    it(t.name, () => {
      expect(pickOneNodeForPreemption(t.candidates, NOW)?.name).to.equal(t.want);
      // Ordering must not matter except for the final tie-break.
      if (t.name !== 'then the first') expect(pickOneNodeForPreemption([...t.candidates].reverse(), NOW)?.name).to.equal(t.want);
    });
  }
  it('no candidates, no pick', () => {
    expect(pickOneNodeForPreemption([])).to.equal(undefined);
  });
});

describe('DefaultPreemption: PDB accounting', () => {
  const info = (name: string, labels: Record<string, string>, namespace = 'default'): PodInfo => new PodInfo(testPod(name, { labels, namespace, nodeName: 'n' }));
  const names = (r: { violating: PodInfo[]; nonViolating: PodInfo[] }): [string[], string[]] => [r.violating.map((p) => p.name), r.nonViolating.map((p) => p.name)];

  it('counts disruptionsAllowed down pod by pod, keeping the order', () => {
    const pods = [info('a', { app: 'web' }), info('b', { app: 'web' }), info('c', { app: 'web' }), info('d', { app: 'db' })];
    expect(names(filterPodsWithPDBViolation(pods, [pdb('web', { app: 'web' }, 1)]))).to.deep.equal([['b', 'c'], ['a', 'd']]);
    expect(names(filterPodsWithPDBViolation(pods, [pdb('web', { app: 'web' }, 0)]))).to.deep.equal([['a', 'b', 'c'], ['d']]);
    expect(names(filterPodsWithPDBViolation(pods, [pdb('web', { app: 'web' }, 5)]))).to.deep.equal([[], ['a', 'b', 'c', 'd']]);
  });

  it('ignores other namespaces, empty or missing selectors, unlabelled pods and already-disrupted pods', () => {
    const pods = [info('a', { app: 'web' }), info('b', { app: 'web' }, 'other'), info('c', {}), info('d', { app: 'web' })];
    expect(names(filterPodsWithPDBViolation(pods, [pdb('web', { app: 'web' }, 0, { disruptedPods: { a: '2026-01-01T00:00:00Z' } })]))).to.deep.equal([['d'], ['a', 'b', 'c']]);
    expect(names(filterPodsWithPDBViolation(pods, [pdb('all', {}, 0), pdb('none', undefined, 0)]))).to.deep.equal([[], ['a', 'b', 'c', 'd']]);
  });

  it('a pod violates when any of its PDBs runs out', () => {
    const pods = [info('a', { app: 'web', tier: 'x' })];
    expect(names(filterPodsWithPDBViolation(pods, [pdb('one', { app: 'web' }, 3), pdb('two', { tier: 'x' }, 0)]))).to.deep.equal([['a'], []]);
  });
});

describe('DefaultPreemption: eligibility', () => {
  const node = testNode('n1');
  const terminating = withStatus(testPod('old', { nodeName: 'n1', priority: 1 }), { conditions: [{ type: 'DisruptionTarget', status: 'True', reason: 'PreemptionByScheduler' }] }, { deletionTimestamp: '2026-01-01T00:00:00Z' });
  const preemptor = (o: Obj = {}, status: Obj = {}): KubeObject => withStatus(testPod('p', { priority: 10, spec: o }), status);

  it('refuses preemptionPolicy Never', () => {
    expect(podEligibleToPreemptOthers(preemptor({ preemptionPolicy: 'Never' }), Snapshot.of([node]), undefined)).to.deep.equal({ eligible: false, reason: 'not eligible due to preemptionPolicy=Never.' });
    expect(podEligibleToPreemptOthers(preemptor({ preemptionPolicy: 'PreemptLowerPriority' }), Snapshot.of([node]), undefined).eligible).to.equal(true);
  });

  it('waits for lower-priority victims terminating on its nominated node', () => {
    const snapshot = Snapshot.of([node], [terminating]);
    expect(podEligibleToPreemptOthers(preemptor({}, { nominatedNodeName: 'n1' }), snapshot, Status.unschedulable('Insufficient cpu'))).to.deep.equal({ eligible: false, reason: 'not eligible due to a terminating pod on the nominated node.' });
    // Unless filters found the nominated node unresolvable.
    expect(podEligibleToPreemptOthers(preemptor({}, { nominatedNodeName: 'n1' }), snapshot, Status.unresolvable('gone')).eligible).to.equal(true);
    // Not nominated there: eligible.
    expect(podEligibleToPreemptOthers(preemptor(), snapshot, undefined).eligible).to.equal(true);
  });

  it('ignores terminating pods of higher priority or deleted for other reasons', () => {
    const high: KubeObject = { ...withStatus(terminating, {}, { uid: 'u-high', name: 'high' }), spec: { ...(terminating.spec as Obj), priority: 50 } };
    const other = withStatus(testPod('evicted', { nodeName: 'n1', priority: 1 }), { conditions: [{ type: 'DisruptionTarget', status: 'True', reason: 'EvictionByEvictionAPI' }] }, { deletionTimestamp: '2026-01-01T00:00:00Z' });
    const snapshot = Snapshot.of([node], [high, other]);
    expect(podEligibleToPreemptOthers(preemptor({}, { nominatedNodeName: 'n1' }), snapshot, Status.unschedulable('x')).eligible).to.equal(true);
    expect(podTerminatingByPreemption(terminating)).to.equal(true);
    expect(podTerminatingByPreemption(other)).to.equal(false);
    expect(podTerminatingByPreemption(testPod('alive', { nodeName: 'n1' }))).to.equal(false);
  });
});

describe('DefaultPreemption: messages and conditions', () => {
  it('formats the FitError histogram as Kubernetes, reasons sorted as strings', () => {
    const statuses = new Map<string, Status>([
      ['a', Status.unresolvable('Preemption is not helpful for scheduling')],
      ['b', Status.unresolvable('No preemption victims found for incoming pod')],
      ['c', Status.unresolvable('Preemption is not helpful for scheduling')],
      ['d', Status.unschedulable('Insufficient cpu', 'Insufficient memory')],
    ]);
    expect(fitErrorMessage(4, statuses)).to.equal('0/4 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, 1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling.');
    expect(fitErrorMessage(0, new Map())).to.equal('0/0 nodes are available:');
  });

  it('the DisruptionTarget condition is only rewritten when it changes', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    const fresh = disruptionTargetCondition(testPod('v'), 'default-scheduler', now);
    expect(fresh).to.deep.equal({ type: 'DisruptionTarget', status: 'True', reason: 'PreemptionByScheduler', message: 'default-scheduler: preempting to accommodate a higher priority pod', lastTransitionTime: '2026-01-01T00:00:00Z' });
    expect(disruptionTargetCondition(withStatus(testPod('v'), { conditions: [{ ...fresh, lastTransitionTime: '2025-01-01T00:00:00Z' }] }), 'default-scheduler', now)).to.equal(undefined);
    const changed = disruptionTargetCondition(withStatus(testPod('v'), { conditions: [{ type: 'DisruptionTarget', status: 'True', reason: 'Other', lastTransitionTime: '2025-01-01T00:00:00Z' }] }), 'default-scheduler', now);
    expect(changed?.lastTransitionTime).to.equal('2025-01-01T00:00:00Z');
    expect(changed?.reason).to.equal('PreemptionByScheduler');
  });
});

describe('DefaultPreemption: victims on one node', () => {
  it('keeps the fewest victims, reprieving the most important first', () => {
    const node = testNode('n1', { cpu: '4' });
    const pods = [1, 2, 3, 4].map((p) => testPod(`p${p}`, { nodeName: 'n1', cpu: '1', priority: p }));
    const preemptor = testPod('big', { cpu: '2', priority: 10 });
    const c = cycle([node], pods, preemptor);
    const sel = selectVictimsOnNode(c.handle, c.state.clone(), preemptor, new PodInfo(preemptor), c.snapshot.get('n1')!.clone(), []);
    expect(sel.status).to.equal(undefined);
    expect(sel.victims.map((v) => v.metadata?.name)).to.deep.equal(['p2', 'p1']);
    expect(sel.numPDBViolations).to.equal(0);
  });

  it('reprieves PDB-protected pods before others, and counts the violations it cannot avoid', () => {
    const node = testNode('n1', { cpu: '3' });
    const pods = [testPod('guarded', { nodeName: 'n1', cpu: '1', priority: 1, labels: { app: 'db' } }), testPod('free-a', { nodeName: 'n1', cpu: '1', priority: 5 }), testPod('free-b', { nodeName: 'n1', cpu: '1', priority: 6 })];
    const preemptor = testPod('big', { cpu: '2', priority: 10 });
    const c = cycle([node], pods, preemptor);
    const sel = selectVictimsOnNode(c.handle, c.state.clone(), preemptor, new PodInfo(preemptor), c.snapshot.get('n1')!.clone(), [pdb('db', { app: 'db' }, 0)]);
    // The lowest-priority pod is protected: it is reprieved first, so both unprotected pods go.
    expect(sel.victims.map((v) => v.metadata?.name)).to.deep.equal(['free-b', 'free-a']);
    expect(sel.numPDBViolations).to.equal(0);

    const all = selectVictimsOnNode(c.handle, c.state.clone(), preemptor, new PodInfo(preemptor), c.snapshot.get('n1')!.clone(), [pdb('db', { app: 'db' }, 0), pdb('rest', { app: 'x' }, 0)]);
    expect(all.victims.length).to.equal(2);
    const big = testPod('bigger', { cpu: '3', priority: 10 });
    const c2 = cycle([node], pods, big);
    const sel2 = selectVictimsOnNode(c2.handle, c2.state.clone(), big, new PodInfo(big), c2.snapshot.get('n1')!.clone(), [pdb('db', { app: 'db' }, 0)]);
    expect(sel2.victims.map((v) => v.metadata?.name)).to.deep.equal(['free-b', 'free-a', 'guarded']);
    expect(sel2.numPDBViolations).to.equal(1);
  });

  it('says why a node is no candidate', () => {
    const node = testNode('n1', { cpu: '4' });
    const preemptor = testPod('big', { cpu: '3', priority: 10 });
    const equal = cycle([node], [testPod('eq', { nodeName: 'n1', cpu: '2', priority: 10 })], preemptor);
    expect(selectVictimsOnNode(equal.handle, equal.state.clone(), preemptor, new PodInfo(preemptor), equal.snapshot.get('n1')!.clone(), []).status?.reasons).to.deep.equal(['No preemption victims found for incoming pod']);
    const notEnough = cycle([node], [testPod('hi', { nodeName: 'n1', cpu: '2', priority: 20 }), testPod('lo', { nodeName: 'n1', cpu: '1', priority: 1 })], preemptor);
    const s = selectVictimsOnNode(notEnough.handle, notEnough.state.clone(), preemptor, new PodInfo(preemptor), notEnough.snapshot.get('n1')!.clone(), []).status;
    expect(s?.code).to.equal('Unschedulable');
    expect(s?.reasons).to.deep.equal(['Insufficient cpu']);
  });
});

describe('DefaultPreemption: PostFilter', () => {
  it('picks the node whose victims have the lowest priority, and evicts only them', async () => {
    const nodes = [testNode('node-a', { cpu: '4' }), testNode('node-b', { cpu: '4' }), testNode('node-c', { cpu: '4' })];
    const pods = [testPod('a1', { nodeName: 'node-a', cpu: '4', priority: 5 }), testPod('b1', { nodeName: 'node-b', cpu: '4', priority: 1 }), testPod('c1', { nodeName: 'node-c', cpu: '4', priority: 3 })];
    const preemptor = testPod('urgent', { cpu: '2', priority: 10 });
    const c = cycle(nodes, pods, preemptor);
    const out = await plugin(c).postFilter(c.state, preemptor, c.statuses);
    expect(out.status).to.equal(undefined);
    expect(out.result).to.deep.equal({ nominatedNodeName: 'node-b' });
    expect(deleted(c.api)).to.deep.equal([podPath('b1')]);
    expect(c.api.informers).to.deep.equal(['/apis/policy/v1/poddisruptionbudgets']);
  });

  it('never evicts pods of equal or higher priority', async () => {
    const nodes = [testNode('node-a', { cpu: '4' }), testNode('node-b', { cpu: '4' })];
    const pods = [testPod('same', { nodeName: 'node-a', cpu: '4', priority: 10 }), testPod('higher', { nodeName: 'node-b', cpu: '3', priority: 20 }), testPod('lower', { nodeName: 'node-b', cpu: '1', priority: 1 })];
    const preemptor = testPod('urgent', { cpu: '2', priority: 10 });
    const c = cycle(nodes, pods, preemptor);
    const out = await plugin(c).postFilter(c.state, preemptor, c.statuses);
    expect(out.status?.code).to.equal('Unschedulable');
    expect(out.status?.message()).to.equal('preemption: 0/2 nodes are available: 1 Insufficient cpu, 1 No preemption victims found for incoming pod.');
    expect(out.result).to.deep.equal({ nominatedNodeName: '' });
    expect(c.api.calls).to.deep.equal([]);
  });

  it('prefers a node where no PDB is violated, even with more important victims', async () => {
    const nodes = [testNode('node-a', { cpu: '4' }), testNode('node-b', { cpu: '4' })];
    const pods = [testPod('guarded', { nodeName: 'node-a', cpu: '4', priority: 1, labels: { app: 'db' } }), testPod('free', { nodeName: 'node-b', cpu: '4', priority: 5, labels: { app: 'web' } })];
    const preemptor = testPod('urgent', { cpu: '2', priority: 10 });
    const c = cycle(nodes, pods, preemptor, { pdbs: [pdb('db', { app: 'db' }, 0), pdb('web', { app: 'web' }, 1)] });
    const out = await plugin(c).postFilter(c.state, preemptor, c.statuses);
    expect(out.result).to.deep.equal({ nominatedNodeName: 'node-b' });
    expect(deleted(c.api)).to.deep.equal([podPath('free')]);

    // With only a violating option, it still preempts.
    const c2 = cycle([nodes[0]!], [pods[0]!], preemptor, { pdbs: [pdb('db', { app: 'db' }, 0)] });
    const out2 = await plugin(c2).postFilter(c2.state, preemptor, c2.statuses);
    expect(out2.result).to.deep.equal({ nominatedNodeName: 'node-a' });
    expect(deleted(c2.api)).to.deep.equal([podPath('guarded')]);
  });

  it('evicts the minimum set of victims (reprieve)', async () => {
    const node = testNode('node-a', { cpu: '4', memory: '4Gi' });
    const pods = [testPod('p1', { nodeName: 'node-a', cpu: '1', priority: 1 }), testPod('p2', { nodeName: 'node-a', cpu: '1', priority: 2 }), testPod('p3', { nodeName: 'node-a', cpu: '1', priority: 3 }), testPod('p4', { nodeName: 'node-a', cpu: '1', priority: 4 })];
    const preemptor = testPod('urgent', { cpu: '1500m', priority: 10 });
    const c = cycle([node], pods, preemptor);
    const out = await plugin(c).postFilter(c.state, preemptor, c.statuses);
    expect(out.result).to.deep.equal({ nominatedNodeName: 'node-a' });
    expect(deleted(c.api)).to.deep.equal([podPath('p1'), podPath('p2')]);
  });

  it('does not preempt with preemptionPolicy Never', async () => {
    const node = testNode('node-a', { cpu: '4' });
    const preemptor = testPod('polite', { cpu: '2', priority: 10, spec: { preemptionPolicy: 'Never' } });
    const c = cycle([node], [testPod('low', { nodeName: 'node-a', cpu: '4', priority: 0 })], preemptor);
    const out = await plugin(c).postFilter(c.state, preemptor, c.statuses);
    expect(out.status?.code).to.equal('Unschedulable');
    expect(out.status?.message()).to.equal('preemption: not eligible due to preemptionPolicy=Never.');
    expect(out.result).to.equal(undefined);
    expect(c.api.calls).to.deep.equal([]);
  });

  it('does not preempt again while its victims terminate on its nominated node', async () => {
    const node = testNode('node-a', { cpu: '4' });
    const dying = withStatus(testPod('dying', { nodeName: 'node-a', cpu: '4', priority: 0 }), { conditions: [{ type: 'DisruptionTarget', status: 'True', reason: 'PreemptionByScheduler' }] }, { deletionTimestamp: '2026-01-01T00:00:00Z' });
    const preemptor = withStatus(testPod('waiting', { cpu: '2', priority: 10 }), { nominatedNodeName: 'node-a' });
    const c = cycle([node], [dying], preemptor);
    const out = await plugin(c).postFilter(c.state, preemptor, c.statuses);
    expect(out.status?.message()).to.equal('preemption: not eligible due to a terminating pod on the nominated node.');
    expect(c.api.calls).to.deep.equal([]);
  });

  it('reports when preemption is not helpful on any node, and clears the pod\'s nomination', async () => {
    const nodes = [testNode('node-a', { labels: { unresolvable: 'yes' } }), testNode('node-b', { labels: { unresolvable: 'yes' } }), testNode('node-c', { labels: { unresolvable: 'yes' } })];
    const preemptor = withStatus(testPod('urgent', { cpu: '2', priority: 10 }), { nominatedNodeName: 'node-a' });
    const c = cycle(nodes, [testPod('low', { nodeName: 'node-a', priority: 0 })], preemptor);
    const out = await plugin(c).postFilter(c.state, preemptor, c.statuses);
    expect(out.status?.code).to.equal('Unschedulable');
    expect(out.status?.message()).to.equal('preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.');
    expect(out.result).to.deep.equal({ nominatedNodeName: '' });
    expect(c.api.calls).to.deep.equal([{ method: 'PATCH', path: `${podPath('urgent')}/status`, body: { status: { nominatedNodeName: null } }, contentType: 'application/merge-patch+json' }]);
  });

  it('reports every node without victims', async () => {
    const nodes = ['a', 'b', 'c', 'd', 'e'].map((n) => testNode(`node-${n}`, { cpu: '1' }));
    const pods = nodes.map((n, i) => testPod(`hi-${i}`, { nodeName: String(n.metadata?.name), cpu: '1', priority: 100 }));
    const preemptor = testPod('urgent', { cpu: '1', priority: 10 });
    const c = cycle(nodes, pods, preemptor);
    const out = await plugin(c).postFilter(c.state, preemptor, c.statuses);
    expect(out.status?.message()).to.equal('preemption: 0/5 nodes are available: 5 No preemption victims found for incoming pod.');
  });

  it('marks each victim with DisruptionTarget before deleting it, records Preempted, and tolerates victims already gone', async () => {
    const node = testNode('node-a', { cpu: '4' });
    const pods = [testPod('v1', { nodeName: 'node-a', cpu: '2', priority: 1, namespace: 'team' }), testPod('v2', { nodeName: 'node-a', cpu: '2', priority: 2 }), testPod('keep', { nodeName: 'node-b', cpu: '1', priority: 0 })];
    const preemptor = testPod('urgent', { cpu: '4', priority: 10, uid: 'uid-urgent' });
    const api = new FakeApi();
    api.missing.add(podPath('v2'));
    const c = cycle([node, testNode('node-b', { cpu: '1' })], pods, preemptor, { api });
    const out = await plugin(c).postFilter(c.state, preemptor, c.statuses);
    expect(out.result).to.deep.equal({ nominatedNodeName: 'node-a' });
    expect(out.status).to.equal(undefined);
    for (const [name, ns] of [['v1', 'team'], ['v2', 'default']] as const) {
      const mine = api.calls.filter((call) => call.path.startsWith(podPath(name, ns)));
      expect(mine.map((call) => call.method)).to.deep.equal(['PATCH', 'DELETE']);
      expect(mine[0]).to.deep.include({ path: `${podPath(name, ns)}/status`, contentType: 'application/strategic-merge-patch+json' });
      expect(mine[0]!.body).to.deep.equal({
        status: { conditions: [{ type: 'DisruptionTarget', status: 'True', reason: 'PreemptionByScheduler', message: 'default-scheduler: preempting to accommodate a higher priority pod', lastTransitionTime: '2026-01-01T00:00:00Z' }] },
      });
    }
    expect(deleted(api)).to.deep.equal([podPath('v2'), podPath('v1', 'team')]);
    expect(c.handle.events).to.have.deep.members([
      { reason: 'Preempted', message: 'Preempted by pod uid-urgent on node node-a' },
      { reason: 'Preempted', message: 'Preempted by pod uid-urgent on node node-a' },
    ]);
  });

  it('fails with an Error status when a victim cannot be deleted', async () => {
    const api = new FakeApi();
    api.broken.add(podPath('v1'));
    const preemptor = testPod('urgent', { cpu: '4', priority: 10 });
    const c = cycle([testNode('node-a', { cpu: '4' })], [testPod('v1', { nodeName: 'node-a', cpu: '2', priority: 1 })], preemptor, { api });
    const out = await plugin(c).postFilter(c.state, preemptor, c.statuses);
    expect(out.status?.code).to.equal('Error');
    expect(out.status?.message()).to.match(/^preemption: boom/);
    expect(out.result).to.equal(undefined);
  });

  it('counts nominated pods of equal or higher priority as present, and clears lower-priority nominations on the chosen node', async () => {
    const nodes = [testNode('node-a', { cpu: '4' }), testNode('node-b', { cpu: '4' })];
    const pods = [testPod('a-low', { nodeName: 'node-a', cpu: '4', priority: 1 }), testPod('b-low', { nodeName: 'node-b', cpu: '4', priority: 2 })];
    const preemptor = testPod('urgent', { cpu: '2', priority: 10 });
    // node-a would be chosen (lower victims) but a higher-priority pod is nominated there and needs 3 cpu.
    const bigNominee = withStatus(testPod('nominee', { cpu: '3', priority: 50 }), { nominatedNodeName: 'node-a' });
    const lowNominee = withStatus(testPod('low-nominee', { cpu: '1', priority: 0 }), { nominatedNodeName: 'node-b' });
    const c = cycle(nodes, pods, preemptor, { nominated: { 'node-a': [bigNominee], 'node-b': [lowNominee] } });
    const out = await plugin(c).postFilter(c.state, preemptor, c.statuses);
    expect(out.result).to.deep.equal({ nominatedNodeName: 'node-b' });
    expect(deleted(c.api)).to.deep.equal([podPath('b-low')]);
    expect(c.api.calls.at(-1)).to.deep.equal({ method: 'PATCH', path: `${podPath('low-nominee')}/status`, body: { status: { nominatedNodeName: null } }, contentType: 'application/merge-patch+json' });

    // A lower-priority nominee does not count: node-a wins.
    const c2 = cycle(nodes, pods, preemptor, { nominated: { 'node-a': [{ ...bigNominee, spec: { ...(bigNominee.spec as Obj), priority: 1 } }] } });
    const out2 = await plugin(c2).postFilter(c2.state, preemptor, c2.statuses);
    expect(out2.result).to.deep.equal({ nominatedNodeName: 'node-a' });
  });

  it('simulates on copies: PreFilter extensions keep state-based filters right, the cycle state is untouched', async () => {
    const nodes = [testNode('node-a', { labels: { slots: '1' } }), testNode('node-b', { labels: { slots: '2' } })];
    const pods = [
      testPod('a-slot', { nodeName: 'node-a', priority: 1, labels: { slot: 'y' } }),
      testPod('b-slot1', { nodeName: 'node-b', priority: 0, labels: { slot: 'y' } }),
      testPod('b-slot2', { nodeName: 'node-b', priority: 0, labels: { slot: 'y' } }),
      testPod('b-other', { nodeName: 'node-b', priority: 0 }),
    ];
    const preemptor = testPod('urgent', { priority: 10, labels: { slot: 'y' } });
    const log: string[] = [];
    const c = cycle(nodes, pods, preemptor, { filters: (s) => [fitFilter, slotFilter(s, log)] });
    expect([...c.statuses.keys()]).to.deep.equal(['node-a', 'node-b']);
    const before = [...c.state.read<SlotCounts>('slots')!.counts];
    const out = await plugin(c).postFilter(c.state, preemptor, c.statuses);
    // node-a: one victim of priority 1; node-b: one victim (a slot pod) of priority 0, b-other reprieved.
    expect(out.result).to.deep.equal({ nominatedNodeName: 'node-b' });
    expect(deleted(c.api)).to.have.length(1);
    expect(deleted(c.api)[0]).to.match(/b-slot[12]$/);
    expect([...c.state.read<SlotCounts>('slots')!.counts]).to.deep.equal(before);
    expect(log.filter((l) => l.startsWith('remove')).length).to.be.greaterThan(0);
    expect(log.filter((l) => l.startsWith('add')).length).to.be.greaterThan(0);
  });

  it('examines as many candidates as the args say, from a random offset', async () => {
    const nodes = ['a', 'b', 'c', 'd'].map((n) => testNode(`node-${n}`, { cpu: '2' }));
    const pods = nodes.map((n) => testPod(`low-${String(n.metadata?.name)}`, { nodeName: String(n.metadata?.name), cpu: '2', priority: 1 }));
    const preemptor = testPod('urgent', { cpu: '2', priority: 10 });
    for (const [random, want] of [[0, 'node-a'], [0.3, 'node-b'], [0.6, 'node-c'], [0.9, 'node-d']] as const) {
      const c = cycle(nodes, pods, preemptor);
      const out = await plugin(c, { minCandidateNodesPercentage: 0, minCandidateNodesAbsolute: 1 }, () => random).postFilter(c.state, preemptor, c.statuses);
      expect(out.result, `random ${random}`).to.deep.equal({ nominatedNodeName: want });
    }
    // With every node examined, the tie goes to the first candidate found from the offset.
    const c = cycle(nodes, pods, preemptor);
    const out = await plugin(c, {}, () => 0.6).postFilter(c.state, preemptor, c.statuses);
    expect(out.result).to.deep.equal({ nominatedNodeName: 'node-c' });
  });

  it('without an API client: no PDBs, and an Error status instead of evictions', async () => {
    const preemptor = testPod('urgent', { cpu: '4', priority: 10 });
    const c = cycle([testNode('node-a', { cpu: '4' })], [testPod('v1', { nodeName: 'node-a', cpu: '2', priority: 1 })], preemptor, { api: null });
    const out = await plugin(c).postFilter(c.state, preemptor, c.statuses);
    expect(out.status?.code).to.equal('Error');
    expect(out.status?.message()).to.contain('no API client');
  });
});
