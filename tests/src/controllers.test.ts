import { expect } from 'chai';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { sleep, until } from './helpers/wait.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;
const j = (o: unknown): string => JSON.stringify(o);

describe('controllers on the default distribution (kubectl)', function () {
  this.timeout(90_000);
  let c: TestCluster;
  const pods = async (ns: string, selector: string): Promise<Json[]> =>
    ((await c.request('GET', `/api/v1/namespaces/${ns}/pods?labelSelector=${encodeURIComponent(selector)}`)).json() as Json).items.filter((p: Json) => !p.metadata.deletionTimestamp);
  const rs = (name: string, replicas: number, app: string): string =>
    j({ apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name }, spec: { replicas, selector: { matchLabels: { app } }, template: { metadata: { labels: { app } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } } });

  before(async () => {
    c = await startCluster();
    await c.ok(['create', 'namespace', 'rs']);
    await until(async () => (await c.request('GET', '/api/v1/namespaces/rs/serviceaccounts/default')).status === 200, 10_000, 'default service account');
  });
  after(async () => {
    await c?.stop();
  });

  it('keeps a ReplicaSet at its replica count through kubectl scale, with owner references and status', async () => {
    await c.ok(['-n', 'rs', 'apply', '-f', '-'], rs('web', 3, 'web'));
    await until(async () => (await pods('rs', 'app=web')).length === 3, 10_000, '3 pods');
    const [p] = await pods('rs', 'app=web');
    expect(p!.metadata.generateName).to.equal('web-');
    expect(p!.metadata.ownerReferences).to.deep.equal([{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: ((await c.request('GET', '/apis/apps/v1/namespaces/rs/replicasets/web')).json() as Json).metadata.uid, controller: true, blockOwnerDeletion: true }]);
    await c.ok(['-n', 'rs', 'scale', 'rs', 'web', '--replicas=5']);
    await until(async () => (await pods('rs', 'app=web')).length === 5, 10_000, '5 pods');
    await c.ok(['-n', 'rs', 'scale', 'rs', 'web', '--replicas=1']);
    await until(async () => (await pods('rs', 'app=web')).length === 1, 10_000, '1 pod');
    await until(async () => (await c.ok(['-n', 'rs', 'get', 'rs', 'web', '-o', 'jsonpath={.status.replicas}/{.status.observedGeneration}'])) === '1/3', 10_000, 'status');
    expect(await c.ok(['-n', 'rs', 'get', 'rs', 'web'])).to.match(/^web\s+1\s+1\s+0\s+\S+$/m);
  });

  it('creates exactly the missing pods when scaled far up (expectations: no over-creation)', async () => {
    const before = (await c.request('GET', '/api/v1/namespaces/rs/pods?labelSelector=app%3Dweb')).json() as Json;
    const ac = new AbortController();
    const res = await c.open(`/api/v1/namespaces/rs/pods?watch=true&labelSelector=app%3Dweb&resourceVersion=${before.metadata.resourceVersion}`, ac.signal);
    let added = 0;
    let buffer = '';
    res.on('data', (d: Buffer) => {
      buffer += d.toString();
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        if ((JSON.parse(buffer.slice(0, nl)) as Json).type === 'ADDED') added++;
        buffer = buffer.slice(nl + 1);
      }
    });
    res.on('error', () => undefined);
    await c.ok(['-n', 'rs', 'scale', 'rs', 'web', '--replicas=60']);
    await until(async () => (await pods('rs', 'app=web')).length === 60, 20_000, '60 pods');
    await sleep(1000);
    ac.abort();
    expect(added).to.equal(59);
    expect(await pods('rs', 'app=web')).to.have.length(60);
    await c.ok(['-n', 'rs', 'scale', 'rs', 'web', '--replicas=0']);
    await until(async () => (await pods('rs', 'app=web')).length === 0, 20_000, 'no pods');
  });

  it('adopts a matching orphan and releases a pod whose labels stop matching', async () => {
    await c.ok(['-n', 'rs', 'run', 'orphan', '--image=busybox', '--labels=app=adopt']);
    await c.ok(['-n', 'rs', 'apply', '-f', '-'], rs('adopter', 2, 'adopt'));
    await until(async () => (await pods('rs', 'app=adopt')).length === 2, 10_000, '2 pods');
    await until(async () => ((await c.request('GET', '/api/v1/namespaces/rs/pods/orphan')).json() as Json).metadata.ownerReferences?.[0]?.name === 'adopter', 10_000, 'adoption');
    expect((await pods('rs', 'app=adopt')).map((p) => p.metadata.name)).to.include('orphan');
    await c.ok(['-n', 'rs', 'label', 'pod', 'orphan', 'app=gone', '--overwrite']);
    await until(async () => ((await c.request('GET', '/api/v1/namespaces/rs/pods/orphan')).json() as Json).metadata.ownerReferences === undefined, 10_000, 'release');
    await until(async () => (await pods('rs', 'app=adopt')).length === 2, 10_000, 'a replacement');
    expect((await pods('rs', 'app=adopt')).map((p) => p.metadata.name)).to.not.include('orphan');
  });

  it('reports ReplicaFailure when a quota refuses pods, and recovers when it is lifted', async () => {
    await c.ok(['-n', 'rs', 'create', 'quota', 'tight', '--hard=pods=3']);
    await until(async () => (await c.ok(['-n', 'rs', 'get', 'quota', 'tight', '-o', 'jsonpath={.status.hard.pods}'])) === '3', 10_000, 'quota status');
    await c.ok(['-n', 'rs', 'apply', '-f', '-'], rs('capped', 4, 'capped'));
    await until(async () => {
      const conds = (((await c.request('GET', '/apis/apps/v1/namespaces/rs/replicasets/capped')).json() as Json).status?.conditions ?? []) as Json[];
      return conds.some((x) => x.type === 'ReplicaFailure' && x.reason === 'FailedCreate' && /exceeded quota: tight/.test(x.message));
    }, 15_000, 'ReplicaFailure');
    // orphan (relabelled app=gone) + adopter's 2 pods: 3 of 3; capped could create none.
    await c.ok(['-n', 'rs', 'delete', 'quota', 'tight']);
    await until(async () => (await pods('rs', 'app=capped')).length === 4, 30_000, '4 capped pods');
    await until(async () => !((((await c.request('GET', '/apis/apps/v1/namespaces/rs/replicasets/capped')).json() as Json).status?.conditions ?? []) as Json[]).some((x) => x.type === 'ReplicaFailure'), 10_000, 'condition cleared');
  });

  it('deletes a namespace: its content first (finalizers honoured, status says what is left), then itself', async () => {
    await c.ok(['create', 'namespace', 'doomed']);
    await until(async () => (await c.request('GET', '/api/v1/namespaces/doomed/serviceaccounts/default')).status === 200, 10_000, 'default service account');
    await c.ok(['-n', 'doomed', 'create', 'configmap', 'plain']);
    await c.ok(['-n', 'doomed', 'apply', '-f', '-'], j({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'held', finalizers: ['example.com/hold'] } }));
    await c.ok(['-n', 'doomed', 'apply', '-f', '-'], rs('doomed', 2, 'doomed'));
    await until(async () => (await pods('doomed', 'app=doomed')).length === 2, 10_000, 'pods');
    expect(await c.ok(['delete', 'namespace', 'doomed', '--wait=false'])).to.equal('namespace "doomed" deleted\n');
    await until(async () => {
      const ns = (await c.request('GET', '/api/v1/namespaces/doomed')).json() as Json;
      return (ns.status?.conditions ?? []).some((x: Json) => x.type === 'NamespaceFinalizersRemaining' && x.status === 'True' && x.message === 'Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances');
    }, 15_000, 'finalizers-remaining condition');
    const ns = (await c.request('GET', '/api/v1/namespaces/doomed')).json() as Json;
    expect(ns.status.phase).to.equal('Terminating');
    expect(ns.status.conditions.find((x: Json) => x.type === 'NamespaceContentRemaining').message).to.equal('Some resources are remaining: configmaps. has 1 resource instances');
    expect((await c.request('GET', '/api/v1/namespaces/doomed/configmaps/plain')).status).to.equal(404);
    expect((await c.request('GET', '/apis/apps/v1/namespaces/doomed/replicasets/doomed')).status).to.equal(404);
    expect(await pods('doomed', 'app=doomed')).to.have.length(0);
    // Nothing new may be created meanwhile (NamespaceLifecycle).
    expect((await c.request('POST', '/api/v1/namespaces/doomed/configmaps', j({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'late' } }))).status).to.equal(403);
    await c.ok(['-n', 'doomed', 'patch', 'configmap', 'held', '--type=merge', '-p', j({ metadata: { finalizers: null } })]);
    await until(async () => (await c.request('GET', '/api/v1/namespaces/doomed')).status === 404, 15_000, 'the namespace to go');
  });

  it('kubectl drain evicts through pods/eviction and respects a PodDisruptionBudget', async () => {
    for (const n of ['drain-1', 'drain-2']) {
      const t = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      await c.request('POST', '/api/v1/nodes', j({ apiVersion: 'v1', kind: 'Node', metadata: { name: n }, status: { conditions: [{ type: 'Ready', status: 'True', lastHeartbeatTime: t, lastTransitionTime: t }] } }));
    }
    // The test plays scheduler and kubelet: unbound pods of app=drain go to the first schedulable node and become Ready; deleted ones finish terminating.
    let playing = true;
    const play = (async () => {
      while (playing) {
        const all = ((await c.request('GET', '/api/v1/namespaces/rs/pods?labelSelector=app%3Ddrain')).json() as Json).items as Json[];
        for (const p of all) {
          if (p.metadata.deletionTimestamp) {
            // The kubelet's part of a graceful deletion: the containers are gone, the pod may go.
            await c.request('DELETE', `/api/v1/namespaces/rs/pods/${p.metadata.name}?gracePeriodSeconds=0`);
          } else if (!p.spec.nodeName) {
            const nodes = ((await c.request('GET', '/api/v1/nodes')).json() as Json).items as Json[];
            const target = nodes.find((n) => n.metadata.name.startsWith('drain-') && !n.spec?.unschedulable);
            if (target) await c.request('POST', `/api/v1/namespaces/rs/pods/${p.metadata.name}/binding`, j({ apiVersion: 'v1', kind: 'Binding', metadata: { name: p.metadata.name }, target: { apiVersion: 'v1', kind: 'Node', name: target.metadata.name } }));
          } else if (!p.status?.conditions?.some((x: Json) => x.type === 'Ready' && x.status === 'True')) {
            const t = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
            await c.request('PUT', `/api/v1/namespaces/rs/pods/${p.metadata.name}/status`, j({ ...p, status: { ...p.status, phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: t }] } }));
          }
        }
        await sleep(100);
      }
    })();
    try {
      await c.ok(['-n', 'rs', 'apply', '-f', '-'], rs('drain', 2, 'drain'));
      await c.ok(['-n', 'rs', 'create', 'pdb', 'drain', '--selector=app=drain', '--min-available=2']);
      await until(async () => (await c.ok(['-n', 'rs', 'get', 'pdb', 'drain', '-o', 'jsonpath={.status.currentHealthy}/{.status.disruptionsAllowed}'])) === '2/0', 20_000, 'the budget to count 2 healthy pods');
      const blocked = await c.kubectl(['drain', 'drain-1', '--timeout=4s', '--ignore-daemonsets']);
      expect(blocked.code).to.not.equal(0);
      expect(blocked.stderr).to.contain('Cannot evict pod as it would violate the pod\'s disruption budget.');
      expect(await pods('rs', 'app=drain')).to.have.length(2);
      await c.ok(['-n', 'rs', 'patch', 'pdb', 'drain', '--type=merge', '-p', j({ spec: { minAvailable: 1 } })]);
      const drained = await c.kubectl(['drain', 'drain-1', '--timeout=60s', '--ignore-daemonsets']);
      expect(drained.code, drained.stderr).to.equal(0);
      expect(drained.stdout).to.contain('node/drain-1 drained');
      expect((await pods('rs', 'app=drain')).map((p) => p.spec.nodeName)).to.deep.equal(['drain-2', 'drain-2']);
    } finally {
      playing = false;
      await play;
    }
  });

  it('keeps a ReplicationController at its replica count', async () => {
    await c.ok(['-n', 'rs', 'apply', '-f', '-'], j({ apiVersion: 'v1', kind: 'ReplicationController', metadata: { name: 'legacy' }, spec: { replicas: 2, selector: { app: 'legacy' }, template: { metadata: { labels: { app: 'legacy' } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } } }));
    await until(async () => (await pods('rs', 'app=legacy')).length === 2, 10_000, '2 pods');
    await c.ok(['-n', 'rs', 'scale', 'rc', 'legacy', '--replicas=3']);
    await until(async () => (await pods('rs', 'app=legacy')).length === 3, 10_000, '3 pods');
  });
});
