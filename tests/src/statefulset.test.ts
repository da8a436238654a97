import { expect } from 'chai';
import { ApiClient, type KubeObject, type WatchEvent } from '@kubernel/sdk';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { sleep, until } from './helpers/wait.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;
const j = (o: unknown): string => JSON.stringify(o);
const NS = 'sts';

/** One pod event as the watch delivered it. */
interface PodEvent {
  readonly type: string;
  readonly name: string;
  readonly uid: string;
  readonly ready: boolean;
  readonly image: string;
}

/*
 * The StatefulSet controller on the default distribution, through kubectl. There is no node agent
 * or scheduler yet, so the test plays the kubelet's status part for its namespace: pods are marked
 * Running and Ready `readyDelayMs` after they appear, unless `held` says otherwise. A watch on the
 * namespace's pods records every event in order (resourceVersion order), so ordering claims
 * (creation, scale-down, rolling update) are checked on what the API server saw, not on samples.
 */
describe('StatefulSets on the default distribution', function () {
  this.timeout(180_000);
  let c: TestCluster;
  let api: ApiClient;
  let kubelet: NodeJS.Timeout | undefined;
  let readyDelayMs = 0;
  let held = (_name: string): boolean => false;
  const seen = new Map<string, number>();
  const events: PodEvent[] = [];
  const stopWatch = new AbortController();
  let watching: Promise<void> | undefined;

  const get = async (path: string): Promise<Json> => (await c.request('GET', path)).json() as Json;
  const list = async (path: string): Promise<Json[]> => (await get(path)).items as Json[];
  const isReady = (p: Json): boolean => p.status?.phase === 'Running' && (p.status?.conditions ?? []).some((x: Json) => x.type === 'Ready' && x.status === 'True');
  const ordinal = (name: string): number => Number(name.slice(name.lastIndexOf('-') + 1));
  /** The set's pods that are not being deleted, by ordinal. */
  const pods = async (set: string): Promise<Json[]> =>
    (await list(`/api/v1/namespaces/${NS}/pods`)).filter((p) => !p.metadata.deletionTimestamp && new RegExp(`^${set}-\\d+$`).test(p.metadata.name)).sort((a, b) => ordinal(a.metadata.name) - ordinal(b.metadata.name));
  const names = async (set: string): Promise<string[]> => (await pods(set)).map((p) => p.metadata.name);
  const claim = async (name: string): Promise<Json | undefined> => {
    const r = await c.request('GET', `/api/v1/namespaces/${NS}/persistentvolumeclaims/${name}`);
    return r.status === 200 ? (r.json() as Json) : undefined;
  };
  const statefulSet = (name: string): Promise<Json> => get(`/apis/apps/v1/namespaces/${NS}/statefulsets/${name}`);
  const revisions = async (set: string): Promise<Json[]> => (await list(`/apis/apps/v1/namespaces/${NS}/controllerrevisions`)).filter((r) => r.metadata.ownerReferences?.some((o: Json) => o.kind === 'StatefulSet' && o.name === set));
  const rolloutStatus = async (set: string): Promise<string> => {
    const r = await c.kubectl(['-n', NS, 'rollout', 'status', `statefulset/${set}`, '--timeout=60s']);
    expect(r.code, `${r.stdout}\n${r.stderr}`).to.equal(0);
    return r.stdout;
  };
  const eventsOf = (set: string, from = 0): PodEvent[] => events.slice(from).filter((e) => new RegExp(`^${set}-\\d+$`).test(e.name));

  const fakeKubelet = async (): Promise<void> => {
    for (const p of await list(`/api/v1/namespaces/${NS}/pods`)) {
      if (p.metadata.deletionTimestamp || held(p.metadata.name) || ['Failed', 'Succeeded'].includes(p.status?.phase) || p.status?.conditions?.some((x: Json) => x.type === 'Ready')) continue;
      const first = seen.get(p.metadata.uid) ?? Date.now();
      seen.set(p.metadata.uid, first);
      if (Date.now() - first < readyDelayMs) continue;
      const t = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      p.status = { ...p.status, phase: 'Running', podIP: '10.244.0.20', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: t }, { type: 'ContainersReady', status: 'True', lastTransitionTime: t }] };
      await c.request('PUT', `/api/v1/namespaces/${NS}/pods/${p.metadata.name}/status`, j(p));
    }
  };

  const manifest = (name: string, spec: Json = {}): string =>
    j({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name },
      spec: {
        replicas: 3,
        serviceName: name,
        selector: { matchLabels: { app: name } },
        template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image: 'busybox:1.36' }] } },
        volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }],
        ...spec,
      },
    });

  before(async () => {
    c = await startCluster();
    api = new ApiClient({ server: c.url, ca: c.tls.ca, cert: c.tls.cert!, key: c.tls.key! });
    await c.ok(['create', 'namespace', NS]);
    await until(async () => (await c.request('GET', `/api/v1/namespaces/${NS}/serviceaccounts/default`)).status === 200, 10_000, 'default service account');
    let rv = String((await api.list(`/api/v1/namespaces/${NS}/pods`)).metadata.resourceVersion);
    watching = (async () => {
      while (!stopWatch.signal.aborted) {
        try {
          await api.watch(`/api/v1/namespaces/${NS}/pods`, rv, (e: WatchEvent) => {
            const o = e.object as KubeObject & Json;
            if (o?.metadata?.resourceVersion) rv = String(o.metadata.resourceVersion);
            if (e.type === 'ADDED' || e.type === 'MODIFIED' || e.type === 'DELETED') {
              events.push({ type: e.type, name: String(o.metadata?.name), uid: String(o.metadata?.uid), ready: e.type !== 'DELETED' && !o.metadata?.deletionTimestamp && isReady(o), image: String(o.spec?.containers?.[0]?.image) });
            }
          }, stopWatch.signal);
        } catch {
          await sleep(100);
        }
      }
    })();
    // Re-armed after each pass, until after() clears `kubelet` (a pass in flight then stops the loop).
    const tick = (): void => {
      kubelet = setTimeout(() => void fakeKubelet().catch(() => undefined).finally(() => kubelet !== undefined && tick()), 100);
    };
    tick();
  });
  after(async () => {
    clearTimeout(kubelet);
    kubelet = undefined;
    stopWatch.abort();
    await watching;
    api?.close();
    await c?.stop();
  });

  it('creates pods in ordinal order, each after its predecessor is Running and Ready, with stable identities and claims', async () => {
    held = () => true;
    await c.ok(['-n', NS, 'apply', '-f', '-'], j({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { clusterIP: 'None', selector: { app: 'web' }, ports: [{ port: 80 }] } }));
    await c.ok(['-n', NS, 'apply', '-f', '-'], manifest('web'));
    await until(async () => (await names('web')).length > 0, 15_000, 'web-0');
    await sleep(1000);
    // Nothing but web-0 while it is not Ready.
    expect(await names('web')).to.deep.equal(['web-0']);
    const [p0] = await pods('web');
    const set = await statefulSet('web');
    expect(p0!.metadata.labels).to.deep.include({ app: 'web', 'statefulset.kubernetes.io/pod-name': 'web-0', 'apps.kubernetes.io/pod-index': '0' });
    expect(p0!.metadata.labels['controller-revision-hash']).to.match(/^web-[bcdfghjklmnpqrstvwxz2456789]+$/);
    expect([p0!.spec.hostname, p0!.spec.subdomain]).to.deep.equal(['web-0', 'web']);
    expect(p0!.spec.volumes).to.deep.include({ name: 'data', persistentVolumeClaim: { claimName: 'data-web-0' } });
    expect(p0!.metadata.ownerReferences).to.deep.equal([{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'web', uid: set.metadata.uid, controller: true, blockOwnerDeletion: true }]);
    // The claim exists, and was written before the pod.
    const pvc = await claim('data-web-0');
    expect(pvc, 'claim data-web-0').to.not.equal(undefined);
    expect(pvc!.metadata.labels).to.deep.equal({ app: 'web' });
    expect(pvc!.metadata.ownerReferences ?? []).to.deep.equal([]);
    expect(pvc!.spec.resources.requests.storage).to.equal('1Gi');
    const added = events.find((e) => e.type === 'ADDED' && e.name === 'web-0')!;
    expect(added, 'the watch saw web-0 created').to.not.equal(undefined);
    expect(Number(pvc!.metadata.resourceVersion)).to.be.lessThan(Number(p0!.metadata.resourceVersion));

    readyDelayMs = 300;
    held = () => false;
    const out = await rolloutStatus('web');
    expect(out).to.contain('partitioned roll out complete: 3 new pods have been updated...');
    expect(await names('web')).to.deep.equal(['web-0', 'web-1', 'web-2']);
    // Every creation came after the predecessor was Running and Ready, in the API server's order.
    await until(async () => eventsOf('web').some((e) => e.name === 'web-2' && e.ready), 10_000, 'the watch saw web-2 Ready');
    const ready = new Map<string, boolean>();
    for (const e of eventsOf('web')) {
      const k = ordinal(e.name);
      if (e.type === 'ADDED' && k > 0) expect(ready.get(`web-${k - 1}`), `${e.name} created before web-${k - 1} was Ready`).to.equal(true);
      ready.set(e.name, e.ready);
    }
    for (const n of [0, 1, 2]) expect(await claim(`data-web-${n}`), `claim data-web-${n}`).to.not.equal(undefined);
    const status = (await statefulSet('web')).status;
    expect(status).to.deep.include({ observedGeneration: 1, replicas: 3, readyReplicas: 3, currentReplicas: 3, updatedReplicas: 3, availableReplicas: 3, collisionCount: 0 });
    expect(status.currentRevision).to.equal(status.updateRevision);
    const revs = await revisions('web');
    expect(revs.map((r) => [r.metadata.name, r.revision])).to.deep.equal([[status.currentRevision, 1]]);
    expect(revs[0]!.metadata.labels).to.deep.equal({ app: 'web' });
    expect((await pods('web')).map((p) => p.metadata.labels['controller-revision-hash'])).to.deep.equal([status.currentRevision, status.currentRevision, status.currentRevision]);
    expect(await c.ok(['-n', NS, 'get', 'statefulset', 'web'])).to.match(/^web\s+3\/3\s+\S+$/m);
  });

  it('brings a deleted pod back with the same name and the same claim', async () => {
    const before = (await pods('web'))[1]!;
    const pvcUid = (await claim('data-web-1'))!.metadata.uid;
    await c.ok(['-n', NS, 'delete', 'pod', 'web-1']);
    await until(async () => {
      const p = (await pods('web')).find((x) => x.metadata.name === 'web-1');
      return !!p && p.metadata.uid !== before.metadata.uid && isReady(p);
    }, 20_000, 'web-1 recreated');
    const after = (await pods('web'))[1]!;
    expect(after.spec.volumes).to.deep.include({ name: 'data', persistentVolumeClaim: { claimName: 'data-web-1' } });
    expect((await claim('data-web-1'))!.metadata.uid).to.equal(pvcUid);
    await rolloutStatus('web');
  });

  it('deletes a failed pod and recreates it with the same name', async () => {
    const failed = (await pods('web'))[2]!;
    failed.status = { ...failed.status, phase: 'Failed', conditions: [{ type: 'Ready', status: 'False' }] };
    expect((await c.request('PUT', `/api/v1/namespaces/${NS}/pods/web-2/status`, j(failed))).status).to.equal(200);
    await until(async () => {
      const p = (await pods('web')).find((x) => x.metadata.name === 'web-2');
      return !!p && p.metadata.uid !== failed.metadata.uid && isReady(p);
    }, 20_000, 'web-2 recreated');
    await rolloutStatus('web');
  });

  it('scales down in reverse ordinal order, keeps the claims, and reuses them on scale-up', async () => {
    const claimUids = await Promise.all([1, 2].map(async (n) => (await claim(`data-web-${n}`))!.metadata.uid));
    const mark = events.length;
    await c.ok(['-n', NS, 'scale', 'statefulset', 'web', '--replicas=1']);
    await until(async () => (await names('web')).join() === 'web-0', 20_000, 'scaled down to web-0');
    // The test's watch may deliver the deletions a little after the list no longer shows the pods.
    const deleted = (): string[] => eventsOf('web', mark).filter((e) => e.type === 'DELETED').map((e) => e.name);
    await until(async () => deleted().length >= 2, 10_000, 'the watch saw both deletions');
    expect(deleted()).to.deep.equal(['web-2', 'web-1']);
    for (const n of [0, 1, 2]) {
      const pvc = await claim(`data-web-${n}`);
      expect(pvc, `claim data-web-${n} kept`).to.not.equal(undefined);
      expect(pvc!.metadata.ownerReferences ?? []).to.deep.equal([]);
    }
    await until(async () => (await statefulSet('web')).status.replicas === 1, 10_000, 'status.replicas 1');

    await c.ok(['-n', NS, 'scale', 'statefulset', 'web', '--replicas=3']);
    await rolloutStatus('web');
    const added = (): string[] => eventsOf('web', mark).filter((e) => e.type === 'ADDED').map((e) => e.name);
    await until(async () => added().length >= 2, 10_000, 'the watch saw both creations');
    expect(added()).to.deep.equal(['web-1', 'web-2']);
    expect(await Promise.all([1, 2].map(async (n) => (await claim(`data-web-${n}`))!.metadata.uid))).to.deep.equal(claimUids);
  });

  it('rolls an update from the highest ordinal down to the partition, one pod at a time', async () => {
    const old = (await statefulSet('web')).status.currentRevision as string;
    await c.ok(['-n', NS, 'patch', 'statefulset', 'web', '-p', j({ spec: { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 2 } } } })]);
    const mark = events.length;
    await c.ok(['-n', NS, 'set', 'image', 'statefulset/web', 'app=busybox:1.37']);
    const partial = await rolloutStatus('web');
    expect(partial).to.contain('partitioned roll out complete: 1 new pods have been updated...');
    expect((await pods('web')).map((p) => p.spec.containers[0].image)).to.deep.equal(['busybox:1.36', 'busybox:1.36', 'busybox:1.37']);
    let status = (await statefulSet('web')).status;
    expect(status.currentRevision).to.equal(old);
    expect(status.updateRevision).to.not.equal(old);
    expect(status).to.deep.include({ updatedReplicas: 1, currentReplicas: 2, readyReplicas: 3 });

    await c.ok(['-n', NS, 'patch', 'statefulset', 'web', '-p', j({ spec: { updateStrategy: { rollingUpdate: { partition: 0 } } } })]);
    expect(await rolloutStatus('web')).to.contain('partitioned roll out complete: 3 new pods have been updated...');
    await until(async () => (await statefulSet('web')).status.currentRevision !== old, 10_000, 'the update revision becomes current');
    status = (await statefulSet('web')).status;
    expect(status.currentRevision).to.equal(status.updateRevision);
    expect(status).to.deep.include({ replicas: 3, readyReplicas: 3, updatedReplicas: 3, currentReplicas: 3 });
    expect((await pods('web')).map((p) => [p.spec.containers[0].image, p.metadata.labels['controller-revision-hash']])).to.deep.equal([0, 1, 2].map(() => ['busybox:1.37', status.updateRevision]));
    await until(async () => eventsOf('web', mark).filter((e) => e.type === 'DELETED').length >= 3, 10_000, 'the watch saw three deletions');
    const rolled = eventsOf('web', mark);
    expect(rolled.filter((e) => e.type === 'DELETED').map((e) => e.name)).to.deep.equal(['web-2', 'web-1', 'web-0']);
    // Replaying the API server's events: never more than one pod missing or not Ready.
    const state = new Map(['web-0', 'web-1', 'web-2'].map((n) => [n, true]));
    for (const e of rolled) {
      state.set(e.name, e.ready);
      expect([...state.values()].filter((r) => !r).length, `at ${e.type} ${e.name}`).to.be.at.most(1);
    }
  });

  it('shows the revisions in rollout history and rolls back with rollout undo', async () => {
    const before = (await statefulSet('web')).status;
    const history = await c.ok(['-n', NS, 'rollout', 'history', 'statefulset/web']);
    expect(history).to.match(/^1\s+<none>$/m);
    expect(history).to.match(/^2\s+<none>$/m);
    await c.ok(['-n', NS, 'rollout', 'undo', 'statefulset/web']);
    await until(async () => (await statefulSet('web')).status.updateRevision !== before.updateRevision, 10_000, 'a new update revision');
    await rolloutStatus('web');
    await until(async () => {
      const s = (await statefulSet('web')).status;
      return s.currentRevision === s.updateRevision && s.updatedReplicas === 3;
    }, 20_000, 'rolled back');
    expect((await pods('web')).map((p) => p.spec.containers[0].image)).to.deep.equal(['busybox:1.36', 'busybox:1.36', 'busybox:1.36']);
    // The first revision was reused as the newest: no third revision, its number is now 3.
    const revs = (await revisions('web')).map((r) => [r.metadata.name, r.revision]).sort((a, b) => a[1] - b[1]);
    expect(revs).to.deep.equal([[before.updateRevision, 2], [(await statefulSet('web')).status.updateRevision, 3]]);
  });

  it('Parallel: creates every pod at once; Delete retention policies remove claims through the garbage collector', async () => {
    held = (n) => n.startsWith('par-');
    await c.ok(['-n', NS, 'apply', '-f', '-'], manifest('par', { podManagementPolicy: 'Parallel', persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Delete', whenScaled: 'Delete' } }));
    await until(async () => (await names('par')).length === 3, 15_000, 'three par pods without readiness');
    const set = await statefulSet('par');
    for (const n of [0, 1, 2]) {
      const pvc = await claim(`data-par-${n}`);
      expect(pvc!.metadata.ownerReferences).to.deep.equal([{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'par', uid: set.metadata.uid, controller: true, blockOwnerDeletion: true }]);
    }
    held = () => false;
    await rolloutStatus('par');

    await c.ok(['-n', NS, 'scale', 'statefulset', 'par', '--replicas=1']);
    await until(async () => (await names('par')).join() === 'par-0', 20_000, 'scaled down to par-0');
    await until(async () => !(await claim('data-par-1')) && !(await claim('data-par-2')), 30_000, 'claims of the condemned pods deleted');
    expect((await claim('data-par-0'))!.metadata.ownerReferences.map((r: Json) => r.kind)).to.deep.equal(['StatefulSet']);

    await c.ok(['-n', NS, 'delete', 'statefulset', 'par']);
    await until(async () => !(await claim('data-par-0')) && (await names('par')).length === 0, 30_000, 'pods and claims of the deleted set gone');
    // Retain (the default) keeps web's claims whatever happens to par.
    expect(await claim('data-web-0')).to.not.equal(undefined);
  });
});
