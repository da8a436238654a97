import { expect } from 'chai';
import { ApiStatusError, type Informer, type KubeObject, type Logger } from '@kubernel/sdk';
import {
  CONTROLLER_REVISION_HASH,
  DAEMON_POD_TOLERATIONS,
  DaemonSetReconciler,
  FailedPodBackoff,
  addOrUpdateToleration,
  allowsSurge,
  compareDaemonPods,
  controllerRevisionName,
  daemonPodTolerations,
  daemonSetCounts,
  daemonSetHash,
  daemonSetRevisionData,
  daemonSetRevisionMatches,
  daemonSetRevisionsToDelete,
  daemonSetStatus,
  failedPodBackoffKey,
  findUpdatedPodsOnNode,
  groupPodsByNode,
  newDaemonPod,
  nodeSelectorTermMatches,
  nodeShouldRunDaemonPod,
  planManage,
  planRollingUpdate,
  podFitsNode,
  podsShouldBeOnNode,
  replaceNodeNameAffinity,
  rollingUpdateBudget,
  statusNeedsUpdate,
  targetNodeName,
  untoleratedTaint,
  updateStrategyOf,
} from './daemonset.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const T0 = Date.parse('2026-03-01T10:00:00Z');
const at = (s: number): string => new Date(T0 + s * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
const silent = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Logger;

const node = (name: string, labels: Record<string, string> = {}, taints: Json[] = []): Json => ({ apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } }, spec: taints.length ? { taints } : {} });

function daemonSet(spec: Json = {}, meta: Json = {}): Json {
  const { template, ...rest } = spec;
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: 'agent', namespace: 'ns', uid: 'ds-uid', generation: 1, ...meta },
    spec: {
      selector: { matchLabels: { app: 'agent' } },
      template: { metadata: { labels: { app: 'agent' } }, spec: { containers: [{ name: 'c', image: 'agent:1' }], ...(template ?? {}) } },
      ...rest,
    },
    status: {},
  };
}

let seq = 0;
/** A pod of the DaemonSet for `nodeName`: bound when `bound`, else targeted by affinity only. */
function pod(nodeName: string, opts: { hash?: string; bound?: boolean; ready?: boolean; readySince?: number; phase?: string; created?: number; deleting?: boolean; name?: string } = {}): Json {
  const name = opts.name ?? `agent-${++seq}`;
  const ready = opts.ready ?? true;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'ns',
      uid: `uid-${name}`,
      creationTimestamp: at(opts.created ?? seq),
      labels: { app: 'agent', [CONTROLLER_REVISION_HASH]: opts.hash ?? 'h1' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'agent', uid: 'ds-uid', controller: true }],
      ...(opts.deleting ? { deletionTimestamp: at(1000) } : {}),
    },
    spec: { ...(opts.bound === false ? {} : { nodeName }), affinity: replaceNodeNameAffinity(undefined, nodeName), containers: [{ name: 'c', image: 'agent:1' }] },
    status: {
      phase: opts.phase ?? (ready ? 'Running' : 'Pending'),
      ...(ready ? { conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: at(opts.readySince ?? 0) }] } : {}),
    },
  };
}

const byNode = (...entries: Array<[string, Json[]]>): Map<string, Json[]> => new Map(entries);

describe('daemonset: tolerations', () => {
  it('adds the tolerations Kubernetes gives every daemon pod, network-unavailable only with hostNetwork', () => {
    const plain = daemonPodTolerations({ containers: [] });
    expect(plain.map((t) => `${t.key}:${t.effect}:${t.operator}`)).to.deep.equal([
      'node.kubernetes.io/not-ready:NoExecute:Exists',
      'node.kubernetes.io/unreachable:NoExecute:Exists',
      'node.kubernetes.io/disk-pressure:NoSchedule:Exists',
      'node.kubernetes.io/memory-pressure:NoSchedule:Exists',
      'node.kubernetes.io/pid-pressure:NoSchedule:Exists',
      'node.kubernetes.io/unschedulable:NoSchedule:Exists',
    ]);
    expect(plain.every((t) => t.tolerationSeconds === undefined)).to.equal(true);
    const host = daemonPodTolerations({ hostNetwork: true });
    expect(host).to.have.length(7);
    expect(host.at(-1)).to.deep.equal({ key: 'node.kubernetes.io/network-unavailable', operator: 'Exists', effect: 'NoSchedule' });
  });

  it('keeps the template\'s tolerations, replaces a matching one that differs (tolerationSeconds) and never duplicates', () => {
    const own = [{ key: 'dedicated', operator: 'Equal', value: 'infra', effect: 'NoSchedule' }, { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }];
    const out = daemonPodTolerations({ tolerations: own });
    expect(out[0]).to.deep.equal(own[0]);
    expect(out[1]).to.deep.equal({ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' });
    expect(out).to.have.length(1 + DAEMON_POD_TOLERATIONS.length);
    expect(daemonPodTolerations({ tolerations: out })).to.deep.equal(out);
    // A toleration with another operator is another toleration (Kubernetes' MatchToleration).
    expect(addOrUpdateToleration([{ key: 'k', operator: 'Equal', value: '', effect: 'NoSchedule' }], { key: 'k', operator: 'Exists', effect: 'NoSchedule' })).to.have.length(2);
  });

  it('finds the first untolerated taint of the given effects', () => {
    const taints = [{ key: 'a', effect: 'PreferNoSchedule' }, { key: 'b', effect: 'NoSchedule' }, { key: 'c', value: 'x', effect: 'NoExecute' }];
    expect(untoleratedTaint(taints, [], ['NoSchedule', 'NoExecute'])?.key).to.equal('b');
    expect(untoleratedTaint(taints, [{ key: 'b', operator: 'Exists' }], ['NoSchedule', 'NoExecute'])?.key).to.equal('c');
    expect(untoleratedTaint(taints, [{ operator: 'Exists' }], ['NoSchedule', 'NoExecute'])).to.equal(undefined);
    expect(untoleratedTaint(taints, [{ key: 'c', value: 'y' }], ['NoExecute'])?.key).to.equal('c');
  });
});

describe('daemonset: node selection', () => {
  const n = node('n1', { zone: 'a', cpus: '8', gpu: 'yes' });
  const term = (...matchExpressions: Json[]): Json => ({ matchExpressions });

  it('matches node selector terms as Kubernetes: In, NotIn, Exists, DoesNotExist, Gt, Lt, matchFields on metadata.name', () => {
    const cases: Array<[Json, boolean]> = [
      [term({ key: 'zone', operator: 'In', values: ['a', 'b'] }), true],
      [term({ key: 'zone', operator: 'In', values: ['b'] }), false],
      [term({ key: 'zone', operator: 'NotIn', values: ['b'] }), true],
      [term({ key: 'missing', operator: 'NotIn', values: ['b'] }), true],
      [term({ key: 'gpu', operator: 'Exists' }), true],
      [term({ key: 'gpu', operator: 'DoesNotExist' }), false],
      [term({ key: 'cpus', operator: 'Gt', values: ['4'] }), true],
      [term({ key: 'cpus', operator: 'Lt', values: ['4'] }), false],
      [term({ key: 'zone', operator: 'Gt', values: ['4'] }), false],
      [term({ key: 'zone', operator: 'In', values: ['a'] }, { key: 'gpu', operator: 'DoesNotExist' }), false],
      [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1'] }] }, true],
      [{ matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: ['n1'] }] }, false],
      [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n2'] }] }, false],
      [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }], matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1'] }] }, true],
      // Terms Kubernetes cannot parse, and empty terms, select nothing.
      [{}, false],
      [term({ key: 'zone', operator: 'In', values: [] }), false],
      [term({ key: 'gpu', operator: 'Exists', values: ['yes'] }), false],
      [term({ key: 'cpus', operator: 'Gt', values: ['x'] }), false],
      [term({ key: 'zone', operator: 'Like', values: ['a'] }), false],
      [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1', 'n2'] }] }, false],
      [{ matchFields: [{ key: 'metadata.name', operator: 'Exists' }] }, false],
    ];
    for (const [t, want] of cases) expect(nodeSelectorTermMatches(t, n), JSON.stringify(t)).to.equal(want);
  });

  it('a pod fits a node when its nodeSelector and one required affinity term (ORed) match', () => {
    expect(podFitsNode({}, n)).to.equal(true);
    expect(podFitsNode({ nodeSelector: { zone: 'a' } }, n)).to.equal(true);
    expect(podFitsNode({ nodeSelector: { zone: 'a', gpu: 'no' } }, n)).to.equal(false);
    const required = (terms: Json[]): Json => ({ affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } } } });
    expect(podFitsNode(required([term({ key: 'zone', operator: 'In', values: ['b'] }), term({ key: 'gpu', operator: 'Exists' })]), n)).to.equal(true);
    expect(podFitsNode(required([term({ key: 'zone', operator: 'In', values: ['b'] })]), n)).to.equal(false);
    expect(podFitsNode(required([]), n)).to.equal(false);
    expect(podFitsNode({ ...required([term({ key: 'gpu', operator: 'Exists' })]), nodeSelector: { zone: 'b' } }, n)).to.equal(false);
    // Preferred terms do not constrain.
    expect(podFitsNode({ affinity: { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1, preference: term({ key: 'zone', operator: 'In', values: ['b'] }) }] } } }, n)).to.equal(true);
  });

  it('decides shouldRun / shouldContinueRunning from selector, affinity, nodeName and taints', () => {
    const ds = daemonSet({ template: { nodeSelector: { role: 'worker' } } });
    const worker = (taints: Json[] = []): Json => node('w', { role: 'worker' }, taints);
    expect(nodeShouldRunDaemonPod(worker(), ds)).to.deep.equal({ shouldRun: true, shouldContinueRunning: true });
    expect(nodeShouldRunDaemonPod(node('w', { role: 'db' }), ds)).to.deep.equal({ shouldRun: false, shouldContinueRunning: false });
    // A NoSchedule taint it does not tolerate: no new pod, but a running one stays.
    expect(nodeShouldRunDaemonPod(worker([{ key: 'dedicated', value: 'infra', effect: 'NoSchedule' }]), ds)).to.deep.equal({ shouldRun: false, shouldContinueRunning: true });
    // A NoExecute taint it does not tolerate: neither.
    expect(nodeShouldRunDaemonPod(worker([{ key: 'dedicated', value: 'infra', effect: 'NoExecute' }]), ds)).to.deep.equal({ shouldRun: false, shouldContinueRunning: false });
    // PreferNoSchedule does not count.
    expect(nodeShouldRunDaemonPod(worker([{ key: 'dedicated', effect: 'PreferNoSchedule' }]), ds).shouldRun).to.equal(true);
    // The daemon tolerations: cordoned, pressured, not-ready and unreachable nodes still run it.
    for (const t of [
      { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' },
      { key: 'node.kubernetes.io/disk-pressure', effect: 'NoSchedule' },
      { key: 'node.kubernetes.io/memory-pressure', effect: 'NoSchedule' },
      { key: 'node.kubernetes.io/pid-pressure', effect: 'NoSchedule' },
      { key: 'node.kubernetes.io/not-ready', effect: 'NoExecute' },
      { key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' },
    ]) {
      expect(nodeShouldRunDaemonPod(worker([t]), ds), t.key).to.deep.equal({ shouldRun: true, shouldContinueRunning: true });
    }
    // The NoSchedule not-ready/unreachable taints are not tolerated: such a node gets no new pod.
    expect(nodeShouldRunDaemonPod(worker([{ key: 'node.kubernetes.io/unreachable', effect: 'NoSchedule' }]), ds)).to.deep.equal({ shouldRun: false, shouldContinueRunning: true });
    // network-unavailable only for hostNetwork pods.
    const netTaint = [{ key: 'node.kubernetes.io/network-unavailable', effect: 'NoSchedule' }];
    expect(nodeShouldRunDaemonPod(worker(netTaint), ds).shouldRun).to.equal(false);
    expect(nodeShouldRunDaemonPod(worker(netTaint), daemonSet({ template: { nodeSelector: { role: 'worker' }, hostNetwork: true } })).shouldRun).to.equal(true);
    // A toleration of the template counts.
    const tolerant = daemonSet({ template: { tolerations: [{ key: 'dedicated', operator: 'Exists' }] } });
    expect(nodeShouldRunDaemonPod(node('x', {}, [{ key: 'dedicated', value: 'infra', effect: 'NoExecute' }]), tolerant).shouldRun).to.equal(true);
    // A template that names a node runs only there.
    const pinned = daemonSet({ template: { nodeName: 'only' } });
    expect(nodeShouldRunDaemonPod(node('only'), pinned).shouldRun).to.equal(true);
    expect(nodeShouldRunDaemonPod(node('other'), pinned)).to.deep.equal({ shouldRun: false, shouldContinueRunning: false });
  });
});

describe('daemonset: pods', () => {
  it('replaces the required node affinity with matchFields metadata.name, keeping the rest', () => {
    const preferred = [{ weight: 5, preference: { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] } }];
    const affinity = {
      nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'role', operator: 'In', values: ['worker'] }] }] }, preferredDuringSchedulingIgnoredDuringExecution: preferred },
      podAntiAffinity: { x: 1 },
    };
    const out = replaceNodeNameAffinity(affinity, 'n7');
    expect(out.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution).to.deep.equal({ nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n7'] }] }] });
    expect(out.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution).to.deep.equal(preferred);
    expect(out.podAntiAffinity).to.deep.equal({ x: 1 });
    expect(affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]).to.have.property('matchExpressions'); // not mutated
    expect(replaceNodeNameAffinity(undefined, 'n1')).to.deep.equal({ nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1'] }] }] } } });
  });

  it('finds a pod\'s target node from spec.nodeName, else from its matchFields term', () => {
    expect(targetNodeName(pod('n1'))).to.equal('n1');
    expect(targetNodeName(pod('n2', { bound: false }))).to.equal('n2');
    expect(targetNodeName({ spec: {} })).to.equal(undefined);
    expect(targetNodeName({ spec: { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['a', 'b'] }] }] } } } } })).to.equal(undefined);
  });

  it('makes the pod for a node: template labels plus the revision hash, daemon tolerations, node affinity, owner, no nodeName', () => {
    const ds = daemonSet({ template: { tolerations: [{ key: 'dedicated', operator: 'Exists' }] } }, { annotations: { 'deprecated.daemonset.template.generation': '3' } });
    ds.spec.template.metadata.annotations = { note: 'x' };
    const p = newDaemonPod(ds, 'n9', 'abc123') as Json;
    expect(p.metadata).to.deep.include({ generateName: 'agent-', namespace: 'ns', annotations: { note: 'x' } });
    expect(p.metadata.labels).to.deep.equal({ app: 'agent', 'pod-template-generation': '3', [CONTROLLER_REVISION_HASH]: 'abc123' });
    expect(p.metadata.ownerReferences).to.deep.equal([{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'agent', uid: 'ds-uid', controller: true, blockOwnerDeletion: true }]);
    expect(p.spec.nodeName).to.equal(undefined);
    expect(targetNodeName(p)).to.equal('n9');
    expect(p.spec.tolerations).to.have.length(1 + DAEMON_POD_TOLERATIONS.length);
    expect(ds.spec.template.spec.tolerations).to.have.length(1); // the template is not touched
  });

  it('orders pods scheduled first, then oldest, then by name', () => {
    const a = pod('n', { name: 'a', created: 5, bound: false });
    const b = pod('n', { name: 'b', created: 9 });
    const c = pod('n', { name: 'c', created: 3 });
    const d = pod('n', { name: 'd', created: 3 });
    expect([a, b, d, c].sort(compareDaemonPods).map((p) => p.metadata.name)).to.deep.equal(['c', 'd', 'b', 'a']);
  });

  it('groups pods by target node, leaving out pods that are terminal and being deleted', () => {
    const keep = pod('n1', { deleting: true });
    const gone = pod('n1', { phase: 'Failed', deleting: true });
    const pending = pod('n2', { bound: false, ready: false });
    const grouped = groupPodsByNode([keep, gone, pending, { metadata: { name: 'stray' }, spec: {} }]);
    expect([...grouped.keys()]).to.deep.equal(['n1', 'n2']);
    expect(grouped.get('n1')).to.deep.equal([keep]);
    expect(groupPodsByNode([keep, gone], true).get('n1')).to.have.length(2);
  });
});

describe('daemonset: the main loop (manage)', () => {
  const ds = daemonSet({ template: { nodeSelector: { role: 'worker' } } });
  const nodes = [node('a', { role: 'worker' }), node('b', { role: 'worker' }, [{ key: 'dedicated', effect: 'NoSchedule' }]), node('c', { role: 'db' }), node('d', { role: 'worker' })];

  it('creates a pod on each eligible node without one; deletes pods of nodes that should not run it', () => {
    const onC = pod('c');
    const onB = pod('b');
    const plan = planManage(ds, nodes, byNode(['c', [onC]], ['b', [onB]], ['d', [pod('d')]]), 'h1', new FailedPodBackoff(), T0);
    expect(plan.createOn).to.deep.equal(['a']);
    // b has an untolerated NoSchedule taint only: its pod keeps running; c is excluded by the selector.
    expect(plan.deletePods).to.deep.equal([onC.metadata.name]);
    expect(plan.events).to.deep.equal([]);
  });

  it('keeps the oldest scheduled pod of a node, deleting the rest; a terminating pod holds the node', () => {
    const old = pod('a', { created: 1 });
    const newer = pod('a', { created: 2 });
    const unscheduled = pod('a', { created: 0, bound: false });
    const plan = planManage(ds, nodes, byNode(['a', [newer, unscheduled, old]], ['d', [pod('d', { deleting: true })]]), 'h1', new FailedPodBackoff(), T0);
    expect(plan.deletePods.sort()).to.deep.equal([newer.metadata.name, unscheduled.metadata.name].sort());
    expect(plan.createOn).to.deep.equal([]); // d's pod is still terminating
  });

  it('deletes failed pods with a back-off per node, and succeeded pods', () => {
    const backoff = new FailedPodBackoff();
    const failed = pod('a', { phase: 'Failed', ready: false });
    const done = pod('d', { phase: 'Succeeded', ready: false });
    const first = planManage(ds, nodes, byNode(['a', [failed]], ['d', [done]]), 'h1', backoff, T0);
    expect(first.deletePods).to.deep.equal([failed.metadata.name, done.metadata.name]);
    expect(first.events.map((e) => [e.type, e.reason])).to.deep.equal([['Warning', 'FailedDaemonPod'], ['Normal', 'SucceededDaemonPod']]);
    expect(first.events[0]!.message).to.equal(`Found failed daemon pod ns/${failed.metadata.name} on node a, will try to kill it`);
    // The replacement fails again at once: its deletion waits out the back-off (1 s, then 2 s).
    const again = pod('a', { phase: 'Failed', ready: false });
    const second = planManage(ds, nodes, byNode(['a', [again]]), 'h1', backoff, T0 + 500);
    expect(second.deletePods).to.deep.equal([]);
    expect(second.requeueAfterMs).to.equal(1000);
    expect(planManage(ds, nodes, byNode(['a', [again]]), 'h1', backoff, T0 + 1000).deletePods).to.deep.equal([again.metadata.name]);
    expect(planManage(ds, nodes, byNode(['a', [again]]), 'h1', backoff, T0 + 2500).requeueAfterMs).to.equal(2000);
    expect(failedPodBackoffKey(ds, 'a')).to.equal('ds-uid/0/a');
  });

  it('deletes unscheduled pods whose node no longer exists; bound ones are left to the pod GC', () => {
    const pending = pod('gone', { bound: false, ready: false });
    const bound = pod('gone');
    const plan = planManage(ds, nodes, byNode(['gone', [pending, bound]]), 'h1', new FailedPodBackoff(), T0);
    expect(plan.deletePods).to.deep.equal([pending.metadata.name]);
  });

  it('with surge: an old and a new pod stay together until the new one is available', () => {
    const surge = daemonSet({ template: { nodeSelector: { role: 'worker' } }, updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } } });
    expect(allowsSurge(surge)).to.equal(true);
    const old = pod('a', { hash: 'h1', created: 1 });
    const fresh = pod('a', { hash: 'h2', created: 2, ready: false });
    const plan = (pods: Json[]): string[] => podsShouldBeOnNode(nodes[0]!, pods, surge, 'h2', new FailedPodBackoff(), T0).delete;
    expect(plan([old, fresh])).to.deep.equal([]);
    const available = pod('a', { hash: 'h2', created: 2 });
    expect(plan([old, available])).to.deep.equal([old.metadata.name]);
    const notReadyOld = pod('a', { hash: 'h1', created: 1, ready: false });
    expect(plan([notReadyOld, fresh])).to.deep.equal([notReadyOld.metadata.name]);
    const extraNew = pod('a', { hash: 'h2', created: 3, ready: false });
    expect(plan([old, fresh, extraNew])).to.deep.equal([extraNew.metadata.name]);
    // All pods gone but the node should run it: create (with surge the main loop does it).
    expect(podsShouldBeOnNode(nodes[0]!, [pod('a', { deleting: true })], surge, 'h2', new FailedPodBackoff(), T0).create).to.equal(true);
  });
});

describe('daemonset: rolling update', () => {
  const nodes = ['a', 'b', 'c', 'd'].map((n) => node(n));
  const ru = (rollingUpdate: Json, extra: Json = {}): Json => daemonSet({ updateStrategy: { type: 'RollingUpdate', rollingUpdate }, ...extra });

  it('resolves the budget: defaults 1/0, percentages of the desired count rounded up, both 0 means maxUnavailable 1', () => {
    expect(updateStrategyOf(daemonSet())).to.deep.equal({ type: 'RollingUpdate', maxUnavailable: 1, maxSurge: 0 });
    expect(rollingUpdateBudget(daemonSet(), 4)).to.deep.equal({ maxSurge: 0, maxUnavailable: 1 });
    expect(rollingUpdateBudget(ru({ maxUnavailable: '10%' }), 4)).to.deep.equal({ maxSurge: 0, maxUnavailable: 1 });
    expect(rollingUpdateBudget(ru({ maxUnavailable: '50%' }), 3)).to.deep.equal({ maxSurge: 0, maxUnavailable: 2 });
    expect(rollingUpdateBudget(ru({ maxUnavailable: 0, maxSurge: '25%' }), 5)).to.deep.equal({ maxSurge: 2, maxUnavailable: 0 });
    expect(rollingUpdateBudget(ru({ maxUnavailable: 0, maxSurge: 0 }), 5)).to.deep.equal({ maxSurge: 0, maxUnavailable: 1 });
    expect(rollingUpdateBudget(ru({ maxUnavailable: 0, maxSurge: 0 }), 0)).to.deep.equal({ maxSurge: 0, maxUnavailable: 0 });
    expect(rollingUpdateBudget(daemonSet({ updateStrategy: { type: 'OnDelete' } }), 5)).to.deep.equal({ maxSurge: 0, maxUnavailable: 1 });
  });

  it('without surge: deletes old available pods while at most maxUnavailable nodes are unavailable', () => {
    const all = byNode(...['a', 'b', 'c', 'd'].map((n): [string, Json[]] => [n, [pod(n, { hash: 'h1', name: `old-${n}` })]]));
    expect(planRollingUpdate(daemonSet(), nodes, all, 'h2', T0).deletePods).to.deep.equal(['old-a']);
    expect(planRollingUpdate(ru({ maxUnavailable: 2 }), nodes, all, 'h2', T0).deletePods).to.deep.equal(['old-a', 'old-b']);
    // a is being replaced (its new pod is not ready yet): nothing more goes.
    const replacing = new Map(all);
    replacing.set('a', [pod('a', { hash: 'h2', ready: false })]);
    expect(planRollingUpdate(daemonSet(), nodes, replacing, 'h2', T0).deletePods).to.deep.equal([]);
    // a node without a pod counts as unavailable too.
    const empty = new Map(all);
    empty.delete('a');
    expect(planRollingUpdate(daemonSet(), nodes, empty, 'h2', T0).deletePods).to.deep.equal([]);
    // Old pods that are not available anyway go at once, beyond the budget.
    const broken = new Map(all);
    broken.set('c', [pod('c', { hash: 'h1', ready: false, name: 'old-c' })]);
    broken.set('d', [pod('d', { hash: 'h1', ready: false, name: 'old-d' })]);
    expect(planRollingUpdate(daemonSet(), nodes, broken, 'h2', T0).deletePods).to.deep.equal(['old-c', 'old-d']);
    // All updated and available: nothing to do.
    const done = byNode(...['a', 'b', 'c', 'd'].map((n): [string, Json[]] => [n, [pod(n, { hash: 'h2' })]]));
    expect(planRollingUpdate(daemonSet(), nodes, done, 'h2', T0)).to.deep.include({ deletePods: [], createOn: [], desired: 4 });
  });

  it('counts availability with minReadySeconds', () => {
    const ds = daemonSet({ minReadySeconds: 10 });
    const pods = byNode(['a', [pod('a', { hash: 'h2', readySince: 0 })]], ...['b', 'c', 'd'].map((n): [string, Json[]] => [n, [pod(n, { hash: 'h1', name: `old-${n}`, readySince: -100 })]]));
    expect(planRollingUpdate(ds, nodes, pods, 'h2', T0 + 5_000).deletePods).to.deep.equal([]);
    expect(planRollingUpdate(ds, nodes, pods, 'h2', T0 + 10_000).deletePods).to.deep.equal(['old-b']);
  });

  it('with surge: creates new pods next to old ones within maxSurge, at once where the old one is unavailable; deletes old ones whose new pod is available', () => {
    const ds = ru({ maxSurge: 1, maxUnavailable: 0 });
    const all = byNode(...['a', 'b', 'c', 'd'].map((n): [string, Json[]] => [n, [pod(n, { hash: 'h1', name: `old-${n}` })]]));
    expect(planRollingUpdate(ds, nodes, all, 'h2', T0)).to.deep.include({ createOn: ['a'], deletePods: [] });
    const surging = new Map(all);
    surging.set('a', [pod('a', { hash: 'h1', name: 'old-a' }), pod('a', { hash: 'h2', ready: false })]);
    surging.set('c', [pod('c', { hash: 'h1', ready: false, name: 'old-c' })]);
    expect(planRollingUpdate(ds, nodes, surging, 'h2', T0)).to.deep.include({ createOn: ['c'], deletePods: [] });
    const availableNew = new Map(all);
    availableNew.set('a', [pod('a', { hash: 'h1', name: 'old-a' }), pod('a', { hash: 'h2' })]);
    expect(planRollingUpdate(ds, nodes, availableNew, 'h2', T0)).to.deep.include({ createOn: ['b'], deletePods: ['old-a'] });
  });

  it('with surge: an old pod on a node leaving the set goes only while more pods are available than desired', () => {
    const ds = ru({ maxSurge: 1, maxUnavailable: 0 }, { template: { nodeSelector: { pool: 'x' } } });
    const pool = [node('a', { pool: 'x' }), node('b', { pool: 'x' }), node('c', { pool: 'y' })];
    const pods = byNode(['a', [pod('a', { hash: 'h2' })]], ['b', [pod('b', { hash: 'h2', ready: false })]], ['c', [pod('c', { hash: 'h1', name: 'old-c' })]]);
    expect(planRollingUpdate(ds, pool, pods, 'h2', T0).deletePods).to.deep.equal([]);
    pods.set('b', [pod('b', { hash: 'h2' })]);
    expect(planRollingUpdate(ds, pool, pods, 'h2', T0).deletePods).to.deep.equal(['old-c']);
  });

  it('splits a node\'s pods by revision, refusing two of a kind', () => {
    const oldPod = pod('a', { hash: 'h1' });
    const newPod = pod('a', { hash: 'h2' });
    expect(findUpdatedPodsOnNode([oldPod, newPod, pod('a', { hash: 'h1', deleting: true })], 'h2')).to.deep.equal({ newPod, oldPod, ok: true });
    expect(findUpdatedPodsOnNode([oldPod, pod('a', { hash: 'h1' })], 'h2').ok).to.equal(false);
  });
});

describe('daemonset: status', () => {
  const ds = daemonSet({ template: { nodeSelector: { role: 'worker' } }, minReadySeconds: 30 }, { generation: 3 });
  const nodes = [node('a', { role: 'worker' }), node('b', { role: 'worker' }), node('c', { role: 'worker' }), node('d', { role: 'db' })];

  it('counts desired, current, misscheduled, ready, available, updated and unavailable from the oldest pod per node', () => {
    const pods = byNode(
      ['a', [pod('a', { hash: 'h2', created: 1, readySince: 0 }), pod('a', { hash: 'h1', created: 2, ready: false })]],
      ['b', [pod('b', { hash: 'h1', readySince: 50 })]],
      ['d', [pod('d', { hash: 'h2' })]],
    );
    const counts = daemonSetCounts(ds, nodes, pods, 'h2', T0 + 60_000);
    expect(counts).to.deep.equal({ desiredNumberScheduled: 3, currentNumberScheduled: 2, numberMisscheduled: 1, numberReady: 2, updatedNumberScheduled: 1, numberAvailable: 1, numberUnavailable: 2 });
  });

  it('writes the counts as Kubernetes serialises them, raising observedGeneration only when the generation was acted on', () => {
    const counts = { desiredNumberScheduled: 2, currentNumberScheduled: 2, numberMisscheduled: 0, numberReady: 0, updatedNumberScheduled: 0, numberAvailable: 0, numberUnavailable: 2 };
    const withPrev = { ...ds, status: { observedGeneration: 2, collisionCount: 1 } };
    expect(daemonSetStatus(withPrev, counts, true)).to.deep.equal({ currentNumberScheduled: 2, numberMisscheduled: 0, desiredNumberScheduled: 2, numberReady: 0, observedGeneration: 3, numberUnavailable: 2, collisionCount: 1 });
    expect(daemonSetStatus(withPrev, counts, false).observedGeneration).to.equal(2);
    expect(statusNeedsUpdate(withPrev, counts, false)).to.equal(true);
    const written: Json = { ...ds, status: daemonSetStatus(withPrev, counts, true) };
    expect(statusNeedsUpdate(written, counts, true)).to.equal(false);
    expect(statusNeedsUpdate({ ...written, metadata: { ...written.metadata, generation: 4 } }, counts, false)).to.equal(false);
    expect(statusNeedsUpdate({ ...written, metadata: { ...written.metadata, generation: 4 } }, counts, true)).to.equal(true);
  });
});

describe('daemonset: revisions', () => {
  it('hashes templates stably, differently per template and collision count', () => {
    const t = daemonSet().spec.template;
    const reordered = { spec: t.spec, metadata: t.metadata };
    expect(daemonSetHash(t)).to.match(/^[bcdfghjklmnpqrstvwxz2456789]+$/);
    expect(daemonSetHash(reordered)).to.equal(daemonSetHash(t));
    expect(daemonSetHash({ ...t, spec: { containers: [{ name: 'c', image: 'agent:2' }] } })).to.not.equal(daemonSetHash(t));
    expect(daemonSetHash(t, 1)).to.not.equal(daemonSetHash(t));
    expect(controllerRevisionName('x'.repeat(300), 'h')).to.equal(`${'x'.repeat(223)}-h`);
  });

  it('records the template as a strategic-merge patch that replaces it, and matches revisions by it', () => {
    const ds = daemonSet();
    const data = daemonSetRevisionData(ds);
    expect(data).to.deep.equal({ spec: { template: { $patch: 'replace', metadata: { labels: { app: 'agent' } }, spec: { containers: [{ image: 'agent:1', name: 'c' }] } } } });
    expect(Object.keys(data.spec.template)).to.deep.equal(['$patch', 'metadata', 'spec']);
    expect(daemonSetRevisionMatches(ds, { data: JSON.parse(JSON.stringify(data)) })).to.equal(true);
    expect(daemonSetRevisionMatches(daemonSet({ template: { hostNetwork: true } }), { data })).to.equal(false);
  });

  it('matches a revision whose data the API server did not keep by its hash label, under any collision count so far', () => {
    const ds = daemonSet();
    const labelled = (hash: string): Json => ({ metadata: { labels: { [CONTROLLER_REVISION_HASH]: hash } }, data: {} });
    expect(daemonSetRevisionMatches(ds, labelled(daemonSetHash(ds.spec.template)))).to.equal(true);
    expect(daemonSetRevisionMatches(ds, labelled(daemonSetHash(ds.spec.template, 1)))).to.equal(false);
    expect(daemonSetRevisionMatches({ ...ds, status: { collisionCount: 2 } }, labelled(daemonSetHash(ds.spec.template, 1)))).to.equal(true);
    expect(daemonSetRevisionMatches(ds, labelled(daemonSetHash({ ...ds.spec.template, spec: {} })))).to.equal(false);
    expect(daemonSetRevisionMatches(ds, { metadata: { labels: {} } })).to.equal(false);
  });

  it('deletes the oldest old revisions beyond the limit, never one live pods use', () => {
    const rev = (name: string, revision: number): Json => ({ metadata: { name, labels: { [CONTROLLER_REVISION_HASH]: name } }, revision });
    const old = [rev('r3', 3), rev('r1', 1), rev('r2', 2), rev('r4', 4)];
    expect(daemonSetRevisionsToDelete(old, 2, new Set())).to.deep.equal(['r1', 'r2']);
    expect(daemonSetRevisionsToDelete(old, 2, new Set(['r1']))).to.deep.equal(['r2', 'r3']);
    expect(daemonSetRevisionsToDelete(old, 10, new Set())).to.deep.equal([]);
    expect(daemonSetRevisionsToDelete(old, 0, new Set(['r1', 'r2', 'r3', 'r4']))).to.deep.equal([]);
  });
});

describe('daemonset: failed pod back-off', () => {
  it('starts at 1 s, doubles to 15 min, and starts over after twice the maximum without failures', () => {
    const b = new FailedPodBackoff();
    expect(b.inBackoff('k', T0)).to.equal(false);
    b.next('k', T0);
    expect([b.delay('k'), b.inBackoff('k', T0 + 999), b.inBackoff('k', T0 + 1000)]).to.deep.equal([1000, true, false]);
    let t = T0;
    for (let i = 0; i < 20; i++) b.next('k', (t += 1000));
    expect(b.delay('k')).to.equal(15 * 60_000);
    b.next('k', t + 31 * 60_000);
    expect(b.delay('k')).to.equal(1000);
    b.gc(t + 100 * 60_000);
    expect(b.delay('k')).to.equal(0);
  });
});

// ---------------------------------------------------------------------------------------------
// The reconciler against an in-memory API whose cache the test controls
// ---------------------------------------------------------------------------------------------

class World {
  readonly objects = new Map<string, Json>();
  /** What the informers see; `sync()` copies `objects` into it (a cache that lags until then). */
  cache = new Map<string, Json>();
  readonly calls: string[] = [];
  private rv = 1;
  private n = 0;

  put(key: string, o: Json): Json {
    o.metadata.resourceVersion = String(++this.rv);
    this.objects.set(key, o);
    return structuredClone(o);
  }

  sync(): void {
    this.cache = new Map([...this.objects].map(([k, v]) => [k, structuredClone(v)]));
  }

  informer(kind: string): Informer {
    const items = (): Json[] => [...this.cache.values()].filter((o) => o.kind === kind);
    return {
      list: () => items(),
      get: (k: string) => items().find((o) => `${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}` === k),
      byIndex: (_: string, ns: string) => items().filter((o) => o.metadata.namespace === ns),
      subscribe: () => () => undefined,
    } as unknown as Informer;
  }

  api(): unknown {
    const parse = (path: string): { kind: string; ns?: string; name?: string; sub?: string } => {
      const m = /^\/(?:api\/v1|apis\/apps\/v1)\/(?:namespaces\/([^/]+)\/)?([a-z]+)(?:\/([^/?]+))?(?:\/([a-z]+))?/.exec(path)!;
      const kind = { pods: 'Pod', nodes: 'Node', daemonsets: 'DaemonSet', controllerrevisions: 'ControllerRevision' }[m[2]!]!;
      return { kind, ...(m[1] ? { ns: m[1] } : {}), ...(m[3] ? { name: decodeURIComponent(m[3]) } : {}), ...(m[4] ? { sub: m[4] } : {}) };
    };
    const key = (ns: string | undefined, name: string): string => (ns ? `${ns}/${name}` : name);
    const get = (path: string): Json => {
      const p = parse(path);
      const o = this.objects.get(key(p.ns, p.name!));
      if (!o || o.kind !== p.kind) throw new ApiStatusError(404, 'NotFound', 'not found');
      return o;
    };
    return {
      get: async (path: string) => structuredClone(get(path)),
      create: async (path: string, body: Json) => {
        this.calls.push(`POST ${path}`);
        const p = parse(path);
        const o = structuredClone(body);
        o.metadata.name ??= `${o.metadata.generateName}${++this.n}`;
        o.metadata.uid = `uid-${o.metadata.name}`;
        o.metadata.creationTimestamp = at(this.n);
        if (this.objects.has(key(p.ns, o.metadata.name))) throw new ApiStatusError(409, 'AlreadyExists', 'exists');
        return this.put(key(p.ns, o.metadata.name), o);
      },
      update: async (path: string, body: Json) => {
        this.calls.push(`PUT ${path}`);
        const current = get(path);
        if (body.metadata.resourceVersion !== current.metadata.resourceVersion) throw new ApiStatusError(409, 'Conflict', 'conflict');
        const p = parse(path);
        const next = p.sub === 'status' ? { ...current, status: body.status } : { ...body, status: current.status };
        return this.put(key(p.ns, p.name!), structuredClone(next));
      },
      patch: async (path: string, body: Json) => {
        this.calls.push(`PATCH ${path}`);
        const current = structuredClone(get(path));
        const merge = (a: Json, b: Json): Json => {
          for (const [k, v] of Object.entries(b)) {
            if (k === 'resourceVersion') continue;
            if (v === null) delete a[k];
            else if (v && typeof v === 'object' && !Array.isArray(v) && a[k] && typeof a[k] === 'object') merge(a[k], v);
            else a[k] = v;
          }
          return a;
        };
        const p = parse(path);
        return this.put(key(p.ns, p.name!), merge(current, body));
      },
      delete: async (path: string) => {
        this.calls.push(`DELETE ${path}`);
        const p = parse(path);
        const o = get(path);
        this.objects.delete(key(p.ns, p.name!));
        return o;
      },
    };
  }
}

describe('daemonset: the reconciler', () => {
  let world: World;
  let r: DaemonSetReconciler;
  const events: string[] = [];
  const key = { namespace: 'ns', name: 'agent' };
  const pods = (): Json[] => [...world.objects.values()].filter((o) => o.kind === 'Pod');
  const ds = (): Json => world.objects.get('ns/agent')!;

  beforeEach(() => {
    world = new World();
    events.length = 0;
    world.put('a', node('a', { role: 'worker' }));
    world.put('b', node('b', { role: 'worker' }, [{ key: 'dedicated', value: 'infra', effect: 'NoSchedule' }]));
    world.put('c', node('c', { role: 'db' }));
    world.put('d', node('d', { role: 'worker' }));
    world.put('ns/agent', daemonSet({ template: { nodeSelector: { role: 'worker' } } }));
    world.sync();
    const recorder = { event: (_o: KubeObject, _t: string, reason: string, message: string) => events.push(`${reason}: ${message}`) };
    r = new DaemonSetReconciler(world.api() as never, world.informer('DaemonSet'), world.informer('Pod'), world.informer('Node'), world.informer('ControllerRevision'), silent, recorder as never, () => T0);
  });

  it('records a revision, creates one pod per eligible node, and reports status with the observed generation', async () => {
    await r.reconcile(key);
    const revisions = [...world.objects.values()].filter((o) => o.kind === 'ControllerRevision');
    expect(revisions).to.have.length(1);
    const hash = revisions[0]!.metadata.labels[CONTROLLER_REVISION_HASH];
    expect(revisions[0]).to.deep.include({ revision: 1 });
    expect(revisions[0]!.metadata.name).to.equal(`agent-${hash}`);
    expect(pods().map((p) => targetNodeName(p)).sort()).to.deep.equal(['a', 'd']);
    expect(pods().every((p) => p.metadata.labels[CONTROLLER_REVISION_HASH] === hash && !p.spec.nodeName)).to.equal(true);
    expect(ds().status).to.deep.include({ desiredNumberScheduled: 2, currentNumberScheduled: 0, numberUnavailable: 2, observedGeneration: 1 });
    expect(events.filter((e) => e.startsWith('SuccessfulCreate'))).to.have.length(2);
  });

  it('does not create again while its cache has not seen the pods it created (expectations); writes nothing once converged', async () => {
    await r.reconcile(key);
    const created = pods().length;
    // The cache still lacks the pods (and the revision): a second sync must not duplicate them.
    await r.reconcile(key);
    expect(pods()).to.have.length(created);
    // The cache catches up, and the informer events meet the expectations.
    world.sync();
    pods().forEach(() => r.expectations.creationObserved('ns/agent'));
    await r.reconcile(key);
    world.sync();
    world.calls.length = 0;
    await r.reconcile(key);
    expect(world.calls).to.deep.equal([]);
    expect(ds().status).to.deep.include({ desiredNumberScheduled: 2, currentNumberScheduled: 2, numberMisscheduled: 0 });
  });

  it('rolls a template change node by node within maxUnavailable, and renumbers a revision a rollback reuses', async () => {
    await r.reconcile(key);
    world.sync();
    for (const p of pods()) {
      r.expectations.creationObserved('ns/agent');
      world.put(`ns/${p.metadata.name}`, { ...p, spec: { ...p.spec, nodeName: targetNodeName(p) }, status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: at(0) }] } });
    }
    world.sync();
    await r.reconcile(key);
    expect(ds().status).to.deep.include({ numberAvailable: 2, updatedNumberScheduled: 2 });
    const v1 = structuredClone(ds().spec.template);
    world.put('ns/agent', { ...ds(), metadata: { ...ds().metadata, generation: 2 }, spec: { ...ds().spec, template: { ...v1, spec: { ...v1.spec, containers: [{ name: 'c', image: 'agent:2' }] } } } });
    world.sync();
    world.calls.length = 0;
    await r.reconcile(key);
    const deleted = world.calls.filter((c) => c.startsWith('DELETE /api/v1/namespaces/ns/pods/'));
    expect(deleted).to.have.length(1);
    expect(ds().status).to.deep.include({ observedGeneration: 2, desiredNumberScheduled: 2 });
    expect(ds().status.updatedNumberScheduled).to.equal(undefined);
    const revisions = (): Json[] => [...world.objects.values()].filter((o) => o.kind === 'ControllerRevision').sort((a, b) => a.revision - b.revision);
    expect(revisions().map((x) => x.revision)).to.deep.equal([1, 2]);
    const first = revisions()[0]!.metadata.name;
    // The deletion is seen: the main loop creates the replacement with the new hash.
    world.sync();
    r.expectations.deletionObserved('ns/agent', `ns/${deleted[0]!.split('/').at(-1)}`);
    await r.reconcile(key);
    const newHash = revisions()[1]!.metadata.labels[CONTROLLER_REVISION_HASH];
    expect(pods().filter((p) => p.metadata.labels[CONTROLLER_REVISION_HASH] === newHash)).to.have.length(1);
    // Rolling back to the first template reuses revision 1, renumbered 3.
    world.put('ns/agent', { ...ds(), metadata: { ...ds().metadata, generation: 3 }, spec: { ...ds().spec, template: v1 } });
    world.sync();
    r.expectations.forget('ns/agent');
    await r.reconcile(key);
    expect(revisions().map((x) => [x.revision, x.metadata.name === first])).to.deep.equal([[2, false], [3, true]]);
  });

  it('adopts matching orphans and releases pods that stop matching', async () => {
    const orphan = pod('a', { name: 'stray' });
    delete orphan.metadata.ownerReferences;
    world.put('ns/stray', orphan);
    const leaving = pod('d', { name: 'leaving' });
    leaving.metadata.labels = { app: 'other' };
    world.put('ns/leaving', leaving);
    world.sync();
    await r.reconcile(key);
    expect(world.objects.get('ns/stray')!.metadata.ownerReferences).to.deep.equal([{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'agent', uid: 'ds-uid', controller: true, blockOwnerDeletion: true }]);
    expect(world.objects.get('ns/leaving')!.metadata.ownerReferences).to.equal(undefined);
    // The adopted pod holds node a: only d gets a new pod.
    expect(pods().filter((p) => !['stray', 'leaving'].includes(p.metadata.name)).map((p) => targetNodeName(p))).to.deep.equal(['d']);
  });

  it('does nothing for a DaemonSet that selects everything, but says so', async () => {
    world.put('ns/agent', { ...ds(), spec: { ...ds().spec, selector: {} } });
    world.sync();
    await r.reconcile(key);
    expect(pods()).to.deep.equal([]);
    expect(events).to.deep.equal(['SelectingAll: This daemon set is selecting all pods. A non-empty selector is required.']);
  });
});
