import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { ApiClient, isAlreadyExists, type KubeObject } from '@kubernel/sdk';
import { describeControllerContract } from '@kubernel/sdk/testing';
import { disruptionControllerPlugin, podGcControllerPlugin } from '@kubernel/plugin-controllers';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { FIXTURES, KUBERNEL_BIN, ROOT } from './helpers/paths.js';
import { run } from './helpers/processes.js';
import { sleep, until } from './helpers/wait.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;
const j = (o: unknown): string => JSON.stringify(o);

const GC = 'podgc';
const PDB = 'pdb';
/** The Pod GC of the test distribution: passes every 0.5 s, a 2 s quarantine, at most 3 terminated pods. */
const QUARANTINE_MS = 2000;

/** Writes `<dir>/distribution.yaml`: the server role runs `plugins` ([id, plugins/<dir>, config?]) in order. */
function writeDistribution(dir: string, plugins: Array<[string, string, string?]>): string {
  const entries = plugins.map(([id, pkg, config]) => `        - { id: ${id}, package: "${join(ROOT, 'plugins', pkg)}"${config ? `, config: ${config}` : ''} }`);
  const lines = ['apiVersion: kubernel.io/v1alpha1', 'kind: Distribution', 'metadata: { name: podgc-disruption-test }', 'spec:', '  roles:', '    server:', '      plugins:', ...entries, '    agent: { plugins: [] }', ''];
  const file = join(dir, 'distribution.yaml');
  writeFileSync(file, lines.join('\n'));
  return file;
}

const now = (): string => `${new Date().toISOString().slice(0, 19)}Z`;
const ready = (p: Json): boolean => ((p.status?.conditions ?? []) as Json[]).some((c) => c.type === 'Ready' && c.status === 'True');

describe('the default distribution runs the Pod GC and disruption controllers', function () {
  this.timeout(60_000);
  it('lists both in the server role, loadable with their default config', async () => {
    const r = await run(process.execPath, [KUBERNEL_BIN, 'plugins', 'list', join(ROOT, 'distributions', 'default.yaml'), '--role', 'server', '-o', 'json']);
    const rows = (JSON.parse(r.stdout) as { plugins: Json[] }).plugins;
    const mine = rows.filter((row) => ['pod-gc-controller', 'disruption-controller'].includes(row.id));
    expect(mine.map((row) => [row.id, row.kind, row.package, row.status, row.errors])).to.deep.equal([
      ['pod-gc-controller', 'controller', '@kubernel/plugin-controllers', 'ok', []],
      ['disruption-controller', 'controller', '@kubernel/plugin-controllers', 'ok', []],
    ]);
    // Right after the node lifecycle controller, as the controller manager orders them.
    const ids = rows.map((row) => row.id);
    expect(ids.indexOf('pod-gc-controller')).to.be.greaterThan(ids.indexOf('node-lifecycle-controller'));
  });
});

describe('Pod GC and PodDisruptionBudget status (kubernel server)', function () {
  this.timeout(120_000);
  let c: TestCluster;
  let dir: string;
  let kubelet: NodeJS.Timeout | undefined;
  let stopped = false;
  /** Pods of the "pdb" namespace the fake kubelet keeps not Ready. */
  const unready = new Set<string>();

  const get = async (path: string): Promise<Json | undefined> => {
    const r = await c.request('GET', path);
    return r.status === 404 ? undefined : (r.json() as Json);
  };
  const list = async (path: string): Promise<Json[]> => ((await c.request('GET', path)).json() as Json).items as Json[];
  const podPath = (ns: string, name: string): string => `/api/v1/namespaces/${ns}/pods/${name}`;
  const createPod = async (ns: string, name: string, extra: Json = {}): Promise<void> => {
    const r = await c.request('POST', `/api/v1/namespaces/${ns}/pods`, j({ apiVersion: 'v1', kind: 'Pod', metadata: { name, ...extra }, spec: { containers: [{ name: 'c', image: 'busybox' }] } }));
    expect(r.status, r.body).to.equal(201);
  };
  const bind = async (ns: string, name: string, node: string): Promise<void> => {
    const r = await c.request('POST', `${podPath(ns, name)}/binding`, j({ apiVersion: 'v1', kind: 'Binding', metadata: { name }, target: { apiVersion: 'v1', kind: 'Node', name: node } }));
    expect(r.status, r.body).to.equal(201);
  };
  /** Sets a pod's status (read, change, PUT, retrying conflicts). */
  const setStatus = async (ns: string, name: string, change: (status: Json) => Json): Promise<void> => {
    for (let attempt = 0; attempt < 10; attempt++) {
      const p = (await get(podPath(ns, name)))!;
      p.status = change(p.status ?? {});
      const r = await c.request('PUT', `${podPath(ns, name)}/status`, j(p));
      if (r.status === 200) return;
      expect(r.status, r.body).to.equal(409);
    }
    throw new Error(`could not set the status of ${ns}/${name}`);
  };
  const readyConditions = (status: boolean): Json[] => ['Initialized', 'ContainersReady', 'Ready'].map((type) => ({ type, status: status ? 'True' : 'False', lastProbeTime: null, lastTransitionTime: now() }));
  const running = (s: Json): Json => ({ ...s, phase: 'Running', conditions: readyConditions(true) });
  const registerNode = async (name: string, readyStatus: boolean, taints: Json[] = []): Promise<void> => {
    const r = await c.request('POST', '/api/v1/nodes', j({ apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name } }, spec: taints.length ? { taints } : {}, status: { conditions: [{ type: 'Ready', status: readyStatus ? 'True' : 'False', reason: readyStatus ? 'KubeletReady' : 'KubeletNotReady', message: '', lastHeartbeatTime: now(), lastTransitionTime: now() }] } }));
    expect(r.status, r.body).to.equal(201);
  };
  const removeFinalizers = async (ns: string, name: string): Promise<void> => {
    const r = await c.request('PATCH', podPath(ns, name), j({ metadata: { finalizers: null } }), { 'content-type': 'application/merge-patch+json' });
    expect([200, 404], r.body).to.include(r.status);
  };
  const forceDelete = async (ns: string, name: string): Promise<void> => {
    const r = await c.request('DELETE', `${podPath(ns, name)}?gracePeriodSeconds=0`);
    expect([200, 404], r.body).to.include(r.status);
  };
  const budget = async (name: string): Promise<Json> => (await get(`/apis/policy/v1/namespaces/${PDB}/poddisruptionbudgets/${name}`))!;
  const budgetStatus = async (name: string): Promise<Json> => (await budget(name)).status ?? {};
  /** Waits until the budget's status includes `want` for its current generation. */
  const untilBudget = async (name: string, want: Json, what: string): Promise<Json> => {
    let last: Json = {};
    try {
      await until(async () => {
        const b = await budget(name);
        last = b.status ?? {};
        return last.observedGeneration === b.metadata.generation && Object.entries(want).every(([k, v]) => j(last[k]) === j(v));
      }, 20_000, what);
    } catch (err) {
      throw new Error(`${(err as Error).message}; last status: ${j(last)}`);
    }
    return last;
  };
  const condition = (status: Json): Json[] => ((status.conditions ?? []) as Json[]).filter((x) => x.type === 'DisruptionAllowed').map((x) => [x.status, x.reason]);
  const replicaSet = (name: string, replicas: number): string =>
    j({ apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name }, spec: { replicas, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } } });
  const podsOf = async (app: string): Promise<Json[]> => (await list(`/api/v1/namespaces/${PDB}/pods?labelSelector=app%3D${app}`)).filter((p) => !p.metadata.deletionTimestamp);

  /** The kubelet's status part for the "pdb" namespace: pods are Running and Ready, but those in `unready`. */
  const fakeKubelet = async (): Promise<void> => {
    for (const p of await list(`/api/v1/namespaces/${PDB}/pods`)) {
      if (p.metadata.deletionTimestamp) continue;
      const want = !unready.has(p.metadata.name);
      if (p.status?.phase === 'Running' && ready(p) === want) continue;
      p.status = { ...p.status, phase: 'Running', podIP: '10.244.0.10', conditions: readyConditions(want) };
      await c.request('PUT', `${podPath(PDB, p.metadata.name)}/status`, j(p));
    }
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kubernel-podgc-'));
    const file = writeDistribution(dir, [
      ['authn-x509', 'authn'],
      ['namespace-lifecycle', 'admission'],
      ['replicaset-controller', 'controllers'],
      ['deployment-controller', 'controllers'],
      ['pod-gc-controller', 'controllers', `{ terminatedPodGCThreshold: 3, gcPeriodSeconds: 0.5, orphanQuarantineSeconds: ${QUARANTINE_MS / 1000} }`],
      ['disruption-controller', 'controllers'],
    ]);
    c = await startCluster(['--distribution', file]);
    for (const ns of [GC, PDB]) await c.ok(['create', 'namespace', ns]);
    await registerNode('n1', true);
    const tick = (): void => {
      kubelet = setTimeout(() => void fakeKubelet().catch(() => undefined).finally(() => !stopped && tick()), 100);
    };
    tick();
  });
  after(async () => {
    stopped = true;
    clearTimeout(kubelet);
    await c?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('keeps at most terminatedPodGCThreshold terminated pods: evicted ones go first, then the oldest; running pods stay', async () => {
    for (const name of ['gc-0', 'gc-1', 'gc-2', 'gc-3', 'gc-4', 'gc-run']) await createPod(GC, name);
    await setStatus(GC, 'gc-run', running);
    // gc-4 is the newest but was evicted; gc-0 is the oldest (creation time, then name).
    await setStatus(GC, 'gc-4', (s) => ({ ...s, phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.' }));
    for (const [name, phase] of [['gc-0', 'Succeeded'], ['gc-1', 'Failed'], ['gc-2', 'Succeeded'], ['gc-3', 'Succeeded']] as const) await setStatus(GC, name, (s) => ({ ...s, phase }));
    const names = async (): Promise<string[]> => (await list(`/api/v1/namespaces/${GC}/pods`)).map((p) => p.metadata.name).sort();
    await until(async () => j(await names()) === j(['gc-1', 'gc-2', 'gc-3', 'gc-run']), 10_000, 'the two terminated pods beyond the threshold deleted');
    await sleep(1500); // three more passes: nothing else goes
    expect(await names()).to.deep.equal(['gc-1', 'gc-2', 'gc-3', 'gc-run']);
    for (const name of await names()) await c.request('DELETE', podPath(GC, name));
  });

  it('force-deletes pods bound to a node that does not exist, after the quarantine, marking them Failed with DisruptionTarget first', async () => {
    for (const name of ['orphan-a', 'orphan-b', 'kept']) await createPod(GC, name);
    const rv = ((await c.request('GET', `/api/v1/namespaces/${GC}/pods`)).json() as Json).metadata.resourceVersion;
    const ac = new AbortController();
    const res = await c.open(`/api/v1/namespaces/${GC}/pods?watch=true&resourceVersion=${rv}&fieldSelector=metadata.name%3Dorphan-a`, ac.signal);
    const events: Json[] = [];
    let buffer = '';
    res.on('data', (d: Buffer) => {
      buffer += d.toString();
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        events.push(JSON.parse(buffer.slice(0, nl)) as Json);
        buffer = buffer.slice(nl + 1);
      }
    });
    res.on('error', () => undefined);
    const boundAt = Date.now();
    await bind(GC, 'orphan-a', 'ghost');
    await bind(GC, 'orphan-b', 'ghost');
    await bind(GC, 'kept', 'n1');
    for (const name of ['orphan-a', 'orphan-b', 'kept']) await setStatus(GC, name, running);
    await until(async () => !(await get(podPath(GC, 'orphan-a'))) && !(await get(podPath(GC, 'orphan-b'))), 15_000, 'the orphans deleted');
    const deletedAfter = Date.now() - boundAt;
    await until(() => events.some((e) => e.type === 'DELETED'), 5_000, 'the DELETED event');
    ac.abort();
    // Never before its node name has been missing for the whole quarantine.
    expect(deletedAfter).to.be.at.least(QUARANTINE_MS - 100);
    const last = events.filter((e) => e.type === 'MODIFIED').at(-1)!.object;
    expect(last.status.phase).to.equal('Failed');
    expect(last.status.conditions.find((x: Json) => x.type === 'DisruptionTarget')).to.deep.include({ status: 'True', reason: 'DeletionByPodGC', message: 'PodGC: node no longer exists' });
    expect(events.at(-1)!.type).to.equal('DELETED');
    await sleep(1000);
    const kept = (await get(podPath(GC, 'kept')))!;
    expect(kept.status.phase).to.equal('Running');
    expect(kept.metadata).to.not.have.property('deletionTimestamp');
    await forceDelete(GC, 'kept');
  });

  it('marks a terminating pod that was never scheduled Failed and force-deletes it; leaves a terminating scheduled pod to its kubelet', async () => {
    // An unscheduled pod goes at once on DELETE: a finalizer keeps it terminating for the test to see.
    await createPod(GC, 'unscheduled', { finalizers: ['test.kubernel.io/hold'] });
    await createPod(GC, 'scheduled');
    await bind(GC, 'scheduled', 'n1');
    await setStatus(GC, 'scheduled', running);
    for (const name of ['unscheduled', 'scheduled']) expect((await c.request('DELETE', podPath(GC, name))).status).to.equal(200);
    await until(async () => (await get(podPath(GC, 'unscheduled')))?.status?.phase === 'Failed', 10_000, 'the unscheduled terminating pod marked Failed');
    await removeFinalizers(GC, 'unscheduled');
    await until(async () => !(await get(podPath(GC, 'unscheduled'))), 10_000, 'the unscheduled pod gone once its finalizer is');
    // The scheduled one waits out its grace period for its node's kubelet.
    await sleep(1000);
    const scheduled = (await get(podPath(GC, 'scheduled')))!;
    expect(scheduled.metadata.deletionTimestamp).to.be.a('string');
    expect(scheduled.status.phase).to.equal('Running');
    await forceDelete(GC, 'scheduled');
  });

  it('force-deletes terminating pods on a NotReady node tainted out-of-service, not on a NotReady node without the taint', async () => {
    await registerNode('dead', false, [{ key: 'node.kubernetes.io/out-of-service', value: 'nodeshutdown', effect: 'NoExecute' }]);
    await registerNode('sick', false);
    for (const [name, node] of [['on-dead', 'dead'], ['on-sick', 'sick']] as const) {
      await createPod(GC, name);
      await bind(GC, name, node);
      await setStatus(GC, name, running);
      // A running pod on a node is deleted gracefully: it waits for a kubelet that will not come.
      expect((await c.request('DELETE', podPath(GC, name))).status).to.equal(200);
      expect((await get(podPath(GC, name)))!.metadata.deletionTimestamp).to.be.a('string');
    }
    await until(async () => !(await get(podPath(GC, 'on-dead'))), 10_000, 'the pod on the out-of-service node force-deleted');
    await sleep(1000);
    expect((await get(podPath(GC, 'on-sick')))!.status.phase).to.equal('Running');
    await forceDelete(GC, 'on-sick');
  });

  it('minAvailable 2 over a 3-replica ReplicaSet: 3 healthy, 2 desired, 1 disruption allowed; 0 once a pod is not Ready', async () => {
    await c.ok(['-n', PDB, 'apply', '-f', '-'], replicaSet('web', 3));
    await c.ok(['-n', PDB, 'apply', '-f', '-'], j({ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'web' }, spec: { minAvailable: 2, selector: { matchLabels: { app: 'web' } } } }));
    let status = await untilBudget('web', { currentHealthy: 3, desiredHealthy: 2, expectedPods: 3, disruptionsAllowed: 1 }, 'the budget with 3 Ready pods');
    expect(condition(status)).to.deep.equal([['True', 'SufficientPods']]);
    expect(status).to.not.have.property('disruptedPods');
    expect(await c.ok(['-n', PDB, 'get', 'pdb', 'web'])).to.match(/^web\s+2\s+N\/A\s+1\s+\S+$/m);
    const [victim] = (await podsOf('web')).map((p) => p.metadata.name).sort();
    unready.add(victim);
    status = await untilBudget('web', { currentHealthy: 2, desiredHealthy: 2, expectedPods: 3, disruptionsAllowed: 0 }, 'the budget with a pod not Ready');
    expect(condition(status)).to.deep.equal([['False', 'InsufficientPods']]);
    unready.delete(victim);
    await untilBudget('web', { currentHealthy: 3, disruptionsAllowed: 1 }, 'the budget healthy again');
  });

  it('keeps disruptedPods: drops entries of gone pods and entries older than 2 minutes, and counts the rest as not healthy', async () => {
    const [first, second] = (await podsOf('web')).map((p) => p.metadata.name).sort();
    const old = `${new Date(Date.now() - 3 * 60_000).toISOString().slice(0, 19)}Z`;
    const recent = now();
    // What the eviction subresource records when it evicts (here without deleting the pods).
    for (let attempt = 0; ; attempt++) {
      const b = await budget('web');
      b.status = { ...b.status, disruptedPods: { [first]: recent, [second]: old, 'no-such-pod': recent } };
      const r = await c.request('PUT', `/apis/policy/v1/namespaces/${PDB}/poddisruptionbudgets/web/status`, j(b));
      if (r.status === 200) break;
      expect(r.status, r.body).to.equal(409);
      expect(attempt).to.be.below(10);
    }
    const status = await untilBudget('web', { disruptedPods: { [first]: recent }, currentHealthy: 2, desiredHealthy: 2, disruptionsAllowed: 0 }, 'the disrupted pods map cleaned up');
    expect(condition(status)).to.deep.equal([['False', 'InsufficientPods']]);
    // A pod deleted after its eviction leaves the map.
    expect((await c.request('DELETE', podPath(PDB, first))).status).to.equal(200);
    await until(async () => (await budgetStatus('web')).disruptedPods === undefined, 10_000, 'the deleted pod dropped from disruptedPods');
    await untilBudget('web', { currentHealthy: 3, disruptionsAllowed: 1 }, 'the replacement counted');
  });

  it('maxUnavailable "50%" resolves against the ReplicaSet replicas (rounded up), following a scale change', async () => {
    await c.ok(['-n', PDB, 'apply', '-f', '-'], replicaSet('half', 3));
    await c.ok(['-n', PDB, 'apply', '-f', '-'], j({ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'half' }, spec: { maxUnavailable: '50%', selector: { matchLabels: { app: 'half' } } } }));
    // 50% of 3 rounds up to 2 unavailable: 1 desired.
    await untilBudget('half', { currentHealthy: 3, desiredHealthy: 1, expectedPods: 3, disruptionsAllowed: 2 }, 'the 50% budget over 3 replicas');
    await c.ok(['-n', PDB, 'scale', 'rs', 'half', '--replicas=4']);
    await untilBudget('half', { currentHealthy: 4, desiredHealthy: 2, expectedPods: 4, disruptionsAllowed: 2 }, 'the 50% budget over 4 replicas');
  });

  it('a percentage minAvailable over a Deployment counts the Deployment replicas (through its ReplicaSet); a new spec is observed', async () => {
    await c.ok(['-n', PDB, 'create', 'deployment', 'api', '--image=busybox:1.36', '--replicas=5']);
    await c.ok(['-n', PDB, 'apply', '-f', '-'], j({ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'api' }, spec: { minAvailable: '50%', selector: { matchLabels: { app: 'api' } } } }));
    await untilBudget('api', { currentHealthy: 5, desiredHealthy: 3, expectedPods: 5, disruptionsAllowed: 2 }, 'the 50% budget over the Deployment');
    expect((await budget('api')).metadata.generation).to.equal(1);
    await c.ok(['-n', PDB, 'patch', 'pdb', 'api', '--type=merge', '-p', j({ spec: { minAvailable: '80%' } })]);
    const status = await untilBudget('api', { currentHealthy: 5, desiredHealthy: 4, expectedPods: 5, disruptionsAllowed: 1 }, 'the changed budget');
    expect(status.observedGeneration).to.equal(2);
    expect(status.conditions.find((x: Json) => x.type === 'DisruptionAllowed').observedGeneration).to.equal(2);
  });

  it('fails safe when a pod controller cannot be found: no disruptions allowed, reason SyncFailed', async () => {
    await createPod(PDB, 'lost-1', { labels: { app: 'lost' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'vanished', uid: '00000000-0000-0000-0000-00000000dead', controller: true }] });
    await c.ok(['-n', PDB, 'apply', '-f', '-'], j({ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'lost' }, spec: { maxUnavailable: 1, selector: { matchLabels: { app: 'lost' } } } }));
    await until(async () => condition(await budgetStatus('lost'))[0]?.[1] === 'SyncFailed', 20_000, 'the SyncFailed condition');
    const status = await budgetStatus('lost');
    expect(status.disruptionsAllowed).to.equal(0);
    expect(status.conditions.find((x: Json) => x.type === 'DisruptionAllowed')).to.deep.include({ status: 'False', reason: 'SyncFailed', message: 'found no controllers for pod "lost-1"' });
    // An integer minAvailable needs no controller: the budget recovers.
    await c.ok(['-n', PDB, 'patch', 'pdb', 'lost', '--type=json', '-p', j([{ op: 'remove', path: '/spec/maxUnavailable' }, { op: 'add', path: '/spec/minAvailable', value: 0 }])]);
    const recovered = await untilBudget('lost', { currentHealthy: 1, desiredHealthy: 0, expectedPods: 1, disruptionsAllowed: 1 }, 'the budget recovered');
    expect(condition(recovered)).to.deep.equal([['True', 'SufficientPods']]);
  });
});

/*
 * The published controller contract suite against both plugins, in-process, on a cluster where
 * nothing else runs controllers (so they take the controller-manager lease).
 */
describe('the Pod GC and disruption controllers pass the published controller contract suite', function () {
  this.timeout(120_000);
  let c: TestCluster;
  const api = (): ApiClient => new ApiClient({ server: c.url, ca: c.tls.ca, cert: c.tls.cert!, key: c.tls.key! });
  const ensure = async (client: ApiClient, path: string, o: KubeObject): Promise<void> => {
    try {
      await client.create(path, o);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
  };
  const readyStatus = (status: boolean): Json => ({ phase: 'Running', conditions: [{ type: 'Ready', status: status ? 'True' : 'False', lastTransitionTime: now() }] });

  before(async () => {
    c = await startCluster(['--distribution', join(FIXTURES, 'distributions', 'authn-only.yaml')]);
  });
  after(async () => {
    await c?.stop();
  });

  const GC_NS = 'gc-contract';
  let orphans = 0;
  const orphan = async (a: ApiClient): Promise<void> => {
    const name = `orphan-${++orphans}`;
    await a.create(`/api/v1/namespaces/${GC_NS}/pods`, { apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { containers: [{ name: 'c', image: 'busybox' }] } });
    await a.create(`/api/v1/namespaces/${GC_NS}/pods/${name}/binding`, { apiVersion: 'v1', kind: 'Binding', metadata: { name }, target: { apiVersion: 'v1', kind: 'Node', name: 'ghost' } });
  };
  describeControllerContract(podGcControllerPlugin, {
    api,
    config: { gcPeriodSeconds: 0.2, orphanQuarantineSeconds: 0.2 },
    invalidConfigs: [{ config: { gcPeriodSeconds: 0 }, path: '/gcPeriodSeconds' }],
    scenario: {
      async setup(a) {
        await ensure(a, '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: GC_NS } });
        await orphan(a);
      },
      converged: async (a) => (await a.list(`/api/v1/namespaces/${GC_NS}/pods`)).items.length === 0,
      perturb: orphan,
      watched: [`/api/v1/namespaces/${GC_NS}/pods`],
    },
  });

  const PDB_NS = 'pdb-contract';
  const pdbPath = `/apis/policy/v1/namespaces/${PDB_NS}/poddisruptionbudgets`;
  let round = 0;
  describeControllerContract(disruptionControllerPlugin, {
    api,
    scenario: {
      async setup(a) {
        await ensure(a, '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: PDB_NS } });
        for (const name of ['p0', 'p1', 'p2']) {
          await ensure(a, `/api/v1/namespaces/${PDB_NS}/pods`, { apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app: 'c' } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } });
          const p = await a.get(`/api/v1/namespaces/${PDB_NS}/pods/${name}`);
          await a.update(`/api/v1/namespaces/${PDB_NS}/pods/${name}/status`, { ...p, status: readyStatus(true) });
        }
        await ensure(a, pdbPath, { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'budget' }, spec: { minAvailable: 2, selector: { matchLabels: { app: 'c' } } } });
      },
      async converged(a) {
        const b = await a.get(`${pdbPath}/budget`);
        const pods = (await a.list(`/api/v1/namespaces/${PDB_NS}/pods`)).items;
        const healthy = pods.filter((p) => ready(p as Json)).length;
        const min = Number((b.spec as Json).minAvailable);
        const s = (b.status ?? {}) as Json;
        return s.observedGeneration === b.metadata?.generation && s.currentHealthy === healthy && s.desiredHealthy === min && s.expectedPods === pods.length && s.disruptionsAllowed === Math.max(0, healthy - min);
      },
      async perturb(a) {
        // Alternately flip a pod's readiness and change the budget.
        round++;
        if (round % 2 === 1) {
          const name = `p${round % 3}`;
          const p = await a.get(`/api/v1/namespaces/${PDB_NS}/pods/${name}`);
          await a.update(`/api/v1/namespaces/${PDB_NS}/pods/${name}/status`, { ...p, status: readyStatus(!ready(p as Json)) });
        } else {
          await a.patch(`${pdbPath}/budget`, { spec: { minAvailable: 1 + (round % 3) } });
        }
      },
      watched: [pdbPath, `/api/v1/namespaces/${PDB_NS}/pods`],
      contended: [`${pdbPath}/budget`],
    },
  });
});
