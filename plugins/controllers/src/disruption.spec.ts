import { expect } from 'chai';
import { ApiStatusError, type KubeObject, type Logger, type OwnerReference } from '@kubernel/sdk';
import {
  ControllerScaleFinder,
  DELETION_TIMEOUT_MS,
  DisruptionReconciler,
  StalePodDisruptionReconciler,
  buildDisruptedPodMap,
  budgetSelector,
  countHealthyPods,
  desiredBudgetStatus,
  disruptionControllerPlugin,
  disruptionsAllowed,
  expectedPodCount,
  expectedScale,
  failSafeStatus,
  podsForBudget,
  scaledValue,
  setCondition,
  staleDisruptionWait,
  type ScaleFinder,
} from './disruption.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const T0 = Date.parse('2026-03-01T10:00:00Z');
const iso = (ms: number): string => `${new Date(ms).toISOString().slice(0, 19)}Z`;
const silent = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Logger;

function pod(name: string, o: { ready?: boolean; labels?: Record<string, string>; owner?: OwnerReference; deleting?: boolean; ns?: string } = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: o.ns ?? 'ns',
      uid: `uid-${name}`,
      labels: o.labels ?? { app: 'web' },
      ...(o.owner ? { ownerReferences: [o.owner] } : {}),
      ...(o.deleting ? { deletionTimestamp: iso(T0) } : {}),
    },
    spec: {},
    status: { phase: 'Running', conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] },
  };
}

function pdb(spec: Json, status?: Json, generation = 1): KubeObject {
  return { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'budget', namespace: 'ns', generation, resourceVersion: '7' }, spec: { selector: { matchLabels: { app: 'web' } }, ...spec }, ...(status ? { status } : {}) };
}

const rsRef = (name: string, uid = `uid-${name}`): OwnerReference => ({ apiVersion: 'apps/v1', kind: 'ReplicaSet', name, uid, controller: true });
const fixedScales = (scales: Record<string, number>): ScaleFinder => async (ref) => (ref.uid in scales ? { uid: ref.uid, replicas: scales[ref.uid]! } : undefined);

describe('disruption: int-or-percent and selectors', () => {
  const table: Array<[number | string, number, boolean, number]> = [
    [2, 10, true, 2],
    ['50%', 3, true, 2],
    ['50%', 3, false, 1],
    ['34%', 3, true, 2],
    ['100%', 7, true, 7],
    ['0%', 7, true, 0],
  ];
  for (const [value, total, up, want] of table) it(`${JSON.stringify(value)} of ${total} rounded ${up ? 'up' : 'down'} is ${want}`, () => expect(scaledValue(value, total, up)).to.equal(want));

  it('refuses a string that is not a percentage', () => {
    expect(() => scaledValue('2', 5, true)).to.throw(/not a percentage/);
    expect(() => scaledValue(1.5, 5, true)).to.throw(/invalid value/);
  });

  it('policy/v1 selectors: a missing selector selects nothing, an empty one the whole namespace', () => {
    const pods = [pod('a'), pod('b', { labels: { app: 'db' } }), pod('c', { ns: 'other' })];
    expect(podsForBudget(pdb({ selector: { matchLabels: { app: 'web' } } }), pods).map((p) => p.metadata?.name)).to.deep.equal(['a']);
    expect(podsForBudget(pdb({ selector: {} }), pods).map((p) => p.metadata?.name)).to.deep.equal(['a', 'b']);
    const none = pdb({});
    delete (none.spec as Json).selector;
    expect(budgetSelector(none)).to.equal(undefined);
    expect(podsForBudget(none, pods)).to.deep.equal([]);
    expect(podsForBudget(pdb({ selector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['db', 'web'] }] } }), pods)).to.have.length(2);
  });
});

describe('disruption: expected and desired counts (Kubernetes getExpectedPodCount)', () => {
  const three = [pod('a', { owner: rsRef('rs') }), pod('b', { owner: rsRef('rs') }), pod('c', { owner: rsRef('rs') })];

  it('integer minAvailable: expected = the pods, desired = minAvailable, no controller needed', async () => {
    const pods = [pod('a'), pod('b')];
    expect(await expectedPodCount(pdb({ minAvailable: 2 }), pods, fixedScales({}))).to.deep.equal({ expectedCount: 2, desiredHealthy: 2, unmanagedPods: [] });
  });

  it('percentage minAvailable: against the controller scale, rounded up', async () => {
    expect(await expectedPodCount(pdb({ minAvailable: '50%' }), three, fixedScales({ 'uid-rs': 5 }))).to.deep.equal({ expectedCount: 5, desiredHealthy: 3, unmanagedPods: [] });
  });

  it('maxUnavailable (integer or percentage): desired = scale - maxUnavailable (rounded up), not below 0', async () => {
    expect(await expectedPodCount(pdb({ maxUnavailable: '50%' }), three, fixedScales({ 'uid-rs': 3 }))).to.deep.equal({ expectedCount: 3, desiredHealthy: 1, unmanagedPods: [] });
    expect(await expectedPodCount(pdb({ maxUnavailable: 1 }), three, fixedScales({ 'uid-rs': 4 }))).to.deep.equal({ expectedCount: 4, desiredHealthy: 3, unmanagedPods: [] });
    expect(await expectedPodCount(pdb({ maxUnavailable: 9 }), three, fixedScales({ 'uid-rs': 4 }))).to.deep.equal({ expectedCount: 4, desiredHealthy: 0, unmanagedPods: [] });
  });

  it('maxUnavailable wins over minAvailable; neither means nothing expected', async () => {
    expect((await expectedPodCount(pdb({ maxUnavailable: 1, minAvailable: 3 }), three, fixedScales({ 'uid-rs': 3 }))).desiredHealthy).to.equal(2);
    expect(await expectedPodCount(pdb({}), three, fixedScales({}))).to.deep.equal({ expectedCount: 0, desiredHealthy: 0, unmanagedPods: [] });
  });

  it('sums distinct controllers once each, leaves unmanaged pods out, and asks once per reference', async () => {
    const asked: string[] = [];
    // Two ReplicaSets of one Deployment (a rollout) resolve to the Deployment: counted once.
    const find: ScaleFinder = async (ref) => {
      asked.push(ref.name);
      if (ref.kind === 'ReplicaSet') return { uid: 'uid-deploy', replicas: 4 };
      return { uid: ref.uid, replicas: 2 };
    };
    const pods = [pod('a', { owner: rsRef('old') }), pod('b', { owner: rsRef('new') }), pod('c', { owner: rsRef('new') }), pod('d', { owner: { apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', uid: 'uid-db', controller: true } }), pod('bare')];
    expect(await expectedScale(pods, find)).to.deep.equal({ expectedCount: 6, unmanagedPods: ['bare'] });
    expect(asked).to.deep.equal(['old', 'new', 'db']);
  });

  it('fails when a pod controller cannot be found', async () => {
    let err: unknown;
    await expectedPodCount(pdb({ maxUnavailable: 1 }), [pod('a', { owner: rsRef('lost') })], fixedScales({})).catch((e) => (err = e));
    expect(String(err)).to.match(/found no controllers for pod "a"/);
  });
});

describe('disruption: healthy pods and disruptedPods bookkeeping', () => {
  it('counts Ready pods not being deleted and not recently disrupted', () => {
    const pods = [pod('a'), pod('b', { ready: false }), pod('c', { deleting: true }), pod('d'), pod('e')];
    expect(countHealthyPods(pods, {}, T0)).to.equal(3);
    expect(countHealthyPods(pods, { d: iso(T0 - 1000) }, T0)).to.equal(2);
    expect(countHealthyPods(pods, { d: iso(T0 - DELETION_TIMEOUT_MS - 1000) }, T0)).to.equal(3);
  });

  it('keeps entries of selected pods not yet deleted and younger than 2 minutes; rechecks when the first expires', () => {
    const pods = [pod('a'), pod('b'), pod('c', { deleting: true }), pod('d')];
    const budget = pdb({ minAvailable: 1 }, { disruptedPods: { a: iso(T0 - 30_000), b: iso(T0 - 60_000), c: iso(T0), gone: iso(T0), d: iso(T0 - 3 * 60_000) } });
    const { disruptedPods, recheckAt, expired } = buildDisruptedPodMap(pods, budget, T0);
    expect(disruptedPods).to.deep.equal({ a: iso(T0 - 30_000), b: iso(T0 - 60_000) });
    expect(recheckAt).to.equal(T0 - 60_000 + DELETION_TIMEOUT_MS);
    expect(expired).to.deep.equal(['d']);
    expect(buildDisruptedPodMap(pods, pdb({ minAvailable: 1 }), T0)).to.deep.equal({ disruptedPods: {}, expired: [] });
  });

  it('allows max(0, healthy - desired) disruptions, and none while nothing is expected', () => {
    expect(disruptionsAllowed({ currentHealthy: 3, desiredHealthy: 2, expectedPods: 3 })).to.equal(1);
    expect(disruptionsAllowed({ currentHealthy: 1, desiredHealthy: 2, expectedPods: 3 })).to.equal(0);
    expect(disruptionsAllowed({ currentHealthy: 3, desiredHealthy: 0, expectedPods: 0 })).to.equal(0);
  });
});

describe('disruption: the status written', () => {
  const counts = { currentHealthy: 3, desiredHealthy: 2, expectedPods: 3, disruptedPods: {} };

  it('writes counts, observedGeneration and DisruptionAllowed True/SufficientPods; then nothing more', () => {
    const status = desiredBudgetStatus(pdb({ minAvailable: 2 }, undefined, 4), counts, T0)!;
    expect(status).to.deep.equal({
      currentHealthy: 3,
      desiredHealthy: 2,
      expectedPods: 3,
      disruptionsAllowed: 1,
      observedGeneration: 4,
      conditions: [{ type: 'DisruptionAllowed', status: 'True', reason: 'SufficientPods', message: '', observedGeneration: 4, lastTransitionTime: iso(T0) }],
    });
    expect(desiredBudgetStatus(pdb({ minAvailable: 2 }, status, 4), counts, T0 + 5000)).to.equal(undefined);
    // A new generation is observed even with the same numbers.
    expect(desiredBudgetStatus(pdb({ minAvailable: 2 }, status, 5), counts, T0 + 5000)!.observedGeneration).to.equal(5);
  });

  it('flips the condition to False/InsufficientPods with a new transition time; keeps disruptedPods only when not empty', () => {
    const first = desiredBudgetStatus(pdb({ minAvailable: 2 }), counts, T0)!;
    const next = desiredBudgetStatus(pdb({ minAvailable: 2 }, first), { ...counts, currentHealthy: 2, disruptedPods: { a: iso(T0) } }, T0 + 9000)!;
    expect(next.disruptionsAllowed).to.equal(0);
    expect(next.disruptedPods).to.deep.equal({ a: iso(T0) });
    expect(next.conditions).to.deep.equal([{ type: 'DisruptionAllowed', status: 'False', reason: 'InsufficientPods', message: '', observedGeneration: 1, lastTransitionTime: iso(T0 + 9000) }]);
    expect(desiredBudgetStatus(pdb({ minAvailable: 2 }, next), { ...counts, currentHealthy: 2 }, T0 + 9000)!).to.not.have.property('disruptedPods');
  });

  it('keeps other conditions and the transition time of an unchanged status (SetStatusCondition)', () => {
    const conditions = [{ type: 'Other', status: 'True', reason: 'X', message: 'm', lastTransitionTime: iso(T0) }, { type: 'DisruptionAllowed', status: 'False', reason: 'SyncFailed', message: 'boom', lastTransitionTime: iso(T0) }];
    const next = setCondition(conditions, { type: 'DisruptionAllowed', status: 'False', reason: 'InsufficientPods', message: '' }, T0 + 1000);
    expect(next).to.deep.equal([conditions[0], { type: 'DisruptionAllowed', status: 'False', reason: 'InsufficientPods', message: '', lastTransitionTime: iso(T0) }]);
  });

  it('fails safe: disruptionsAllowed 0 with SyncFailed and the error, keeping the rest; nothing when already so', () => {
    const current = desiredBudgetStatus(pdb({ minAvailable: 2 }), counts, T0)!;
    const safe = failSafeStatus(pdb({ minAvailable: 2 }, current), 'found no controllers for pod "a"', T0 + 1000)!;
    expect(safe).to.deep.include({ currentHealthy: 3, desiredHealthy: 2, expectedPods: 3, disruptionsAllowed: 0, observedGeneration: 1 });
    expect(safe.conditions).to.deep.equal([{ type: 'DisruptionAllowed', status: 'False', reason: 'SyncFailed', message: 'found no controllers for pod "a"', observedGeneration: 1, lastTransitionTime: iso(T0 + 1000) }]);
    expect(failSafeStatus(pdb({ minAvailable: 2 }, safe), 'found no controllers for pod "a"', T0 + 2000)).to.equal(undefined);
    // A budget never synced gets the required counts as zeros.
    expect(failSafeStatus(pdb({ minAvailable: 2 }), 'x', T0)).to.deep.include({ currentHealthy: 0, desiredHealthy: 0, expectedPods: 0, disruptionsAllowed: 0 });
  });
});

/** Informer doubles over a plain list. */
const informerOf = (items: KubeObject[]) => ({
  get: (k: string) => items.find((o) => `${o.metadata?.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata?.name}` === k),
  byIndex: (_: string, ns: string) => items.filter((o) => o.metadata?.namespace === ns),
});

describe('disruption: the reconciler against doubles', () => {
  let writes: Array<{ path: string; body: Json }>;
  let fail: ApiStatusError | undefined;
  const api = {
    async update(path: string, body: Json): Promise<KubeObject> {
      if (fail) {
        const e = fail;
        fail = undefined;
        throw e;
      }
      writes.push({ path, body });
      return body;
    },
  };
  const events: string[] = [];
  const reconciler = (budgets: KubeObject[], pods: KubeObject[], find: ScaleFinder = fixedScales({})): DisruptionReconciler =>
    new DisruptionReconciler({ api: api as never, budgets: informerOf(budgets), pods: informerOf(pods), find, events: { event: (_o, type, reason) => events.push(`${type}/${reason}`) }, logger: silent, now: () => T0 });

  beforeEach(() => {
    writes = [];
    events.length = 0;
    fail = undefined;
  });

  it('writes the status through the status subresource, with the budget resourceVersion', async () => {
    const budget = pdb({ minAvailable: 2 });
    const pods = [pod('a', { owner: rsRef('rs') }), pod('b', { owner: rsRef('rs') }), pod('c', { owner: rsRef('rs'), ready: false }), pod('x', { labels: { app: 'other' } })];
    expect(await reconciler([budget], pods).reconcile({ namespace: 'ns', name: 'budget' })).to.equal(undefined);
    expect(writes).to.have.length(1);
    expect(writes[0]!.path).to.equal('/apis/policy/v1/namespaces/ns/poddisruptionbudgets/budget/status');
    expect(writes[0]!.body.metadata.resourceVersion).to.equal('7');
    expect(writes[0]!.body.status).to.deep.include({ currentHealthy: 2, desiredHealthy: 2, expectedPods: 3, disruptionsAllowed: 0 });
  });

  it('does nothing for a budget gone from the cache', async () => {
    expect(await reconciler([], [pod('a')]).reconcile({ namespace: 'ns', name: 'budget' })).to.equal(undefined);
    expect(writes).to.deep.equal([]);
  });

  it('drops stale disruptedPods entries, counts fresh ones as not healthy, and asks to look again when they expire', async () => {
    const budget = pdb({ minAvailable: 1 }, { disruptedPods: { a: iso(T0 - 60_000), gone: iso(T0), b: iso(T0 - 5 * 60_000) } });
    const result = await reconciler([budget], [pod('a'), pod('b')]).reconcile({ namespace: 'ns', name: 'budget' });
    expect(writes[0]!.body.status).to.deep.include({ currentHealthy: 1, expectedPods: 2, disruptionsAllowed: 0, disruptedPods: { a: iso(T0 - 60_000) } });
    expect(result).to.deep.equal({ requeueAfter: DELETION_TIMEOUT_MS - 60_000 });
  });

  it('fails safe when a controller cannot be found, records why, and retries', async () => {
    const budget = pdb({ maxUnavailable: '50%' }, { currentHealthy: 1, desiredHealthy: 0, expectedPods: 1, disruptionsAllowed: 1, observedGeneration: 1 });
    let err: unknown;
    await reconciler([budget], [pod('a', { owner: rsRef('lost') })]).reconcile({ namespace: 'ns', name: 'budget' }).catch((e) => (err = e));
    expect(String(err)).to.match(/found no controllers/);
    expect(writes[0]!.body.status).to.deep.include({ disruptionsAllowed: 0, currentHealthy: 1 });
    expect(writes[0]!.body.status.conditions[0]).to.deep.include({ reason: 'SyncFailed', status: 'False' });
    expect(events).to.deep.equal(['Warning/CalculateExpectedPodCountFailed']);
  });

  it('retries a conflict without failing safe; ignores a budget deleted meanwhile', async () => {
    fail = new ApiStatusError(409, 'Conflict', 'the object has been modified');
    let err: unknown;
    await reconciler([pdb({ minAvailable: 1 })], [pod('a')]).reconcile({ namespace: 'ns', name: 'budget' }).catch((e) => (err = e));
    expect(err).to.be.instanceOf(ApiStatusError);
    expect(writes).to.deep.equal([]);
    fail = new ApiStatusError(404, 'NotFound', 'gone');
    expect(await reconciler([pdb({ minAvailable: 1 })], [pod('a')]).reconcile({ namespace: 'ns', name: 'budget' })).to.equal(undefined);
  });

  it('records NoPods and UnmanagedPods events as Kubernetes does', async () => {
    await reconciler([pdb({ minAvailable: 1 })], []).reconcile({ namespace: 'ns', name: 'budget' });
    await reconciler([pdb({ maxUnavailable: 1 })], [pod('bare')]).reconcile({ namespace: 'ns', name: 'budget' });
    expect(events).to.deep.equal(['Normal/NoPods', 'Warning/UnmanagedPods']);
  });
});

describe('disruption: finding a controller and its scale', () => {
  /** GET double: objects by path. */
  const apiWith = (objects: Record<string, KubeObject>) => {
    const asked: string[] = [];
    return {
      asked,
      async get(path: string): Promise<KubeObject> {
        asked.push(path);
        const o = objects[path];
        if (!o) throw new ApiStatusError(404, 'NotFound', `${path} not found`);
        return o;
      },
    };
  };
  const scale = (uid: string, replicas: number): KubeObject => ({ kind: 'Scale', apiVersion: 'autoscaling/v1', metadata: { uid }, spec: { replicas } });
  const rs = (name: string, owner?: OwnerReference): KubeObject => ({ metadata: { name, namespace: 'ns', uid: `uid-${name}`, ...(owner ? { ownerReferences: [owner] } : {}) } });

  it('a ReplicaSet of a Deployment stands for the Deployment, through its scale subresource', async () => {
    const api = apiWith({ '/apis/apps/v1/namespaces/ns/deployments/web/scale': scale('uid-web', 6) });
    const finder = new ControllerScaleFinder(api as never, informerOf([rs('web-abc', { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: 'uid-web', controller: true })]));
    expect(await finder.find(rsRef('web-abc'), 'ns')).to.deep.equal({ uid: 'uid-web', replicas: 6 });
    expect(api.asked).to.deep.equal(['/apis/apps/v1/namespaces/ns/deployments/web/scale']);
  });

  it('a lone ReplicaSet, a StatefulSet and a ReplicationController by their own scale; a uid mismatch is no controller', async () => {
    const api = apiWith({
      '/apis/apps/v1/namespaces/ns/replicasets/solo/scale': scale('uid-solo', 3),
      '/apis/apps/v1/namespaces/ns/statefulsets/db/scale': scale('uid-db', 2),
      '/api/v1/namespaces/ns/replicationcontrollers/rc/scale': scale('uid-rc', 4),
    });
    const finder = new ControllerScaleFinder(api as never, informerOf([rs('solo')]));
    expect(await finder.find(rsRef('solo'), 'ns')).to.deep.equal({ uid: 'uid-solo', replicas: 3 });
    expect(await finder.find({ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', uid: 'uid-db', controller: true }, 'ns')).to.deep.equal({ uid: 'uid-db', replicas: 2 });
    expect(await finder.find({ apiVersion: 'v1', kind: 'ReplicationController', name: 'rc', uid: 'uid-rc', controller: true }, 'ns')).to.deep.equal({ uid: 'uid-rc', replicas: 4 });
    expect(await finder.find({ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'db', uid: 'uid-other', controller: true }, 'ns')).to.equal(undefined);
    expect(await finder.find(rsRef('missing'), 'ns')).to.equal(undefined);
  });

  it('a ReplicaSet whose Deployment is gone falls back to its own scale; a ReplicaSet not cached is read live', async () => {
    const api = apiWith({
      '/apis/apps/v1/namespaces/ns/replicasets/orphaned/scale': scale('uid-orphaned', 2),
      '/apis/apps/v1/namespaces/ns/replicasets/fresh': rs('fresh', { apiVersion: 'apps/v1', kind: 'Deployment', name: 'api', uid: 'uid-api', controller: true }),
      '/apis/apps/v1/namespaces/ns/deployments/api/scale': scale('uid-api', 5),
    });
    const finder = new ControllerScaleFinder(api as never, informerOf([rs('orphaned', { apiVersion: 'apps/v1', kind: 'Deployment', name: 'deleted', uid: 'uid-deleted', controller: true })]));
    expect(await finder.find(rsRef('orphaned'), 'ns')).to.deep.equal({ uid: 'uid-orphaned', replicas: 2 });
    expect(await finder.find(rsRef('fresh'), 'ns')).to.deep.equal({ uid: 'uid-api', replicas: 5 });
  });

  it('other kinds through API discovery: found when they serve scale, an error when they do not', async () => {
    const api = apiWith({
      '/apis/example.com/v1': { kind: 'APIResourceList', resources: [{ name: 'widgets', kind: 'Widget', namespaced: true }, { name: 'widgets/scale', kind: 'Scale' }, { name: 'gadgets', kind: 'Gadget', namespaced: true }] },
      '/apis/example.com/v1/namespaces/ns/widgets/w/scale': scale('uid-w', 9),
    });
    const finder = new ControllerScaleFinder(api as never);
    expect(await finder.find({ apiVersion: 'example.com/v1', kind: 'Widget', name: 'w', uid: 'uid-w', controller: true }, 'ns')).to.deep.equal({ uid: 'uid-w', replicas: 9 });
    let err: unknown;
    await finder.find({ apiVersion: 'example.com/v1', kind: 'Gadget', name: 'g', uid: 'uid-g', controller: true }, 'ns').catch((e) => (err = e));
    expect(String(err)).to.match(/gadgets\.example\.com does not implement the scale subresource/);
    expect(api.asked.filter((p) => p === '/apis/example.com/v1')).to.have.length(1); // discovery is cached
  });
});

describe('disruption: stale DisruptionTarget conditions', () => {
  const withCondition = (cond: Json, o: { phase?: string; deleting?: boolean } = {}): KubeObject => {
    const p = pod('p', { deleting: o.deleting });
    (p.status as Json).conditions = [cond];
    if (o.phase) (p.status as Json).phase = o.phase;
    return p;
  };
  const target = (at: number, reason = 'EvictionByEvictionAPI'): Json => ({ type: 'DisruptionTarget', status: 'True', reason, lastTransitionTime: iso(at) });

  it('is stale 2 minutes after it was set, unless the pod is going, terminal, or the kubelet set it', () => {
    expect(staleDisruptionWait(withCondition(target(T0 - 30_000)), T0)).to.equal(90_000);
    expect(staleDisruptionWait(withCondition(target(T0 - 5 * 60_000)), T0)).to.equal(0);
    expect(staleDisruptionWait(withCondition(target(T0, 'TerminationByKubelet')), T0)).to.equal(undefined);
    expect(staleDisruptionWait(withCondition({ type: 'DisruptionTarget', status: 'True', lastTransitionTime: iso(T0) }), T0)).to.equal(120_000);
    expect(staleDisruptionWait(withCondition(target(T0 - 5 * 60_000), { deleting: true }), T0)).to.equal(undefined);
    expect(staleDisruptionWait(withCondition(target(T0 - 5 * 60_000), { phase: 'Failed' }), T0)).to.equal(undefined);
    expect(staleDisruptionWait(withCondition({ ...target(T0 - 5 * 60_000), status: 'False' }), T0)).to.equal(undefined);
    expect(staleDisruptionWait(pod('plain'), T0)).to.equal(undefined);
  });

  it('resets a stale condition to False through the status subresource; waits for one not yet stale', async () => {
    const writes: Json[] = [];
    const api = { update: async (path: string, body: Json) => (writes.push({ path, body }), body) };
    const stale = withCondition(target(T0 - 3 * 60_000));
    const fresh = { ...withCondition(target(T0 - 60_000)), metadata: { name: 'q', namespace: 'ns' } };
    const r = new StalePodDisruptionReconciler(api as never, informerOf([stale, fresh]), silent, () => T0);
    expect(await r.reconcile({ namespace: 'ns', name: 'q' })).to.deep.equal({ requeueAfter: 60_000 });
    expect(writes).to.deep.equal([]);
    expect(await r.reconcile({ namespace: 'ns', name: 'p' })).to.equal(undefined);
    expect(writes[0]!.path).to.equal('/api/v1/namespaces/ns/pods/p/status');
    expect(writes[0]!.body.status.conditions).to.deep.equal([{ type: 'DisruptionTarget', status: 'False', lastTransitionTime: iso(T0) }]);
  });
});

describe('disruption: the plugin definition', () => {
  it('is a controller with 5 workers by default and leader election', () => {
    const props = disruptionControllerPlugin.configSchema!.properties as Json;
    expect(disruptionControllerPlugin.id).to.equal('disruption-controller');
    expect(disruptionControllerPlugin.kind).to.equal('controller');
    expect(props.workers.default).to.equal(5);
    expect(props.leaderElection).to.be.an('object');
  });
});
