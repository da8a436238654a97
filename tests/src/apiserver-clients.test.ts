import { expect } from 'chai';
import * as k8s from '@kubernetes/client-node';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { until } from './helpers/wait.js';

describe('client libraries and several API servers on one store', function () {
  this.timeout(60_000);
  let a: TestCluster;
  let b: TestCluster;

  before(async function () {
    this.timeout(60_000);
    a = await startCluster();
    // A second API server on the first one's NATS: the same store, its own watch cache.
    // Several API servers share one PKI (the cluster CA, serving and admin certificates).
    b = await startCluster(['--nats', a.natsUrl, '--nats-token-file', `${a.dataDir}/nats/token`, '--cert-dir', `${a.dataDir}/pki`]);
  });
  after(async () => {
    await b?.stop();
    await a?.stop();
  });

  function client(c: TestCluster): { kc: k8s.KubeConfig; core: k8s.CoreV1Api } {
    // The kubeconfig the server wrote, unmodified: TLS verified against the cluster CA, the admin's client certificate.
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(c.kubeconfig);
    return { kc, core: kc.makeApiClient(k8s.CoreV1Api) };
  }

  it('@kubernetes/client-node: list, watch and an informer see the same objects', async () => {
    const { kc, core } = client(a);
    const watched: string[] = [];
    const watch = new k8s.Watch(kc);
    const req = await watch.watch('/api/v1/namespaces/default/configmaps', {}, (type: string, obj: k8s.V1ConfigMap) => watched.push(`${type} ${obj.metadata?.name}`), () => undefined);
    const informer = k8s.makeInformer(kc, '/api/v1/namespaces/default/configmaps', () => core.listNamespacedConfigMap({ namespace: 'default' }));
    const informed: string[] = [];
    informer.on('add', (obj: k8s.V1ConfigMap) => informed.push(`add ${obj.metadata?.name}`));
    informer.on('update', (obj: k8s.V1ConfigMap) => informed.push(`update ${obj.metadata?.name}`));
    informer.on('delete', (obj: k8s.V1ConfigMap) => informed.push(`delete ${obj.metadata?.name}`));
    await informer.start();
    try {
      await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'lib-a' }, data: { x: '1' } } });
      await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: 'lib-b' }, data: { x: '2' } } });
      await core.patchNamespacedConfigMap({ namespace: 'default', name: 'lib-a', body: { data: { x: '3' } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
      await core.deleteNamespacedConfigMap({ namespace: 'default', name: 'lib-b' });
      const list = await core.listNamespacedConfigMap({ namespace: 'default' });
      expect(list.items.map((i) => i.metadata?.name)).to.include('lib-a').and.not.include('lib-b');
      await until(() => watched.length >= 4 && informed.length >= 4, 10_000, 'watch and informer events');
      expect(watched).to.include.members(['ADDED lib-a', 'ADDED lib-b', 'MODIFIED lib-a', 'DELETED lib-b']);
      expect(informed).to.include.members(['add lib-a', 'add lib-b', 'update lib-a', 'delete lib-b']);
      expect(informer.list('default').map((o) => o.metadata?.name)).to.include('lib-a').and.not.include('lib-b');
      expect(informer.get('lib-a', 'default')?.data).to.deep.equal({ x: '3' });
    } finally {
      await informer.stop();
      req.abort();
    }
  });

  it('a write through one API server is in the other\'s get, list and watch at the same resourceVersion', async () => {
    const ca = client(a).core;
    const { kc, core: cb } = client(b);
    const events: Array<{ type: string; name: string | undefined; rv: string | undefined }> = [];
    const req = await new k8s.Watch(kc).watch('/api/v1/namespaces/default/configmaps', {}, (type: string, obj: k8s.V1ConfigMap) => events.push({ type, name: obj.metadata?.name, rv: obj.metadata?.resourceVersion }), () => undefined);
    try {
      for (let i = 0; i < 20; i++) {
        const created = await ca.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: `ha-${i}` } } });
        const got = await cb.readNamespacedConfigMap({ namespace: 'default', name: `ha-${i}` });
        expect(got.metadata?.resourceVersion).to.equal(created.metadata?.resourceVersion);
        const list = await cb.listNamespacedConfigMap({ namespace: 'default' });
        expect(Number(list.metadata?.resourceVersion)).to.be.at.least(Number(created.metadata?.resourceVersion));
        expect(list.items.find((x) => x.metadata?.name === `ha-${i}`)?.metadata?.resourceVersion).to.equal(created.metadata?.resourceVersion);
      }
      await until(() => events.filter((e) => e.name?.startsWith('ha-')).length >= 20, 10_000, 'watch events on the other server');
      const created = await ca.listNamespacedConfigMap({ namespace: 'default' });
      for (const e of events.filter((x) => x.name?.startsWith('ha-'))) {
        expect(e.rv).to.equal(created.items.find((x) => x.metadata?.name === e.name)?.metadata?.resourceVersion);
      }
    } finally {
      req.abort();
    }
  });

  it('several API servers racing never hand out the same ClusterIP', async () => {
    const ca = client(a).core;
    const cb = client(b).core;
    const services = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        (i % 2 === 0 ? ca : cb).createNamespacedService({ namespace: 'default', body: { metadata: { name: `race-${i}` }, spec: { ports: [{ port: 80 }], type: i % 3 === 0 ? 'NodePort' : 'ClusterIP' } } }),
      ),
    );
    const ips = services.map((s) => s.spec?.clusterIP);
    expect(new Set(ips).size).to.equal(24);
    const ports = services.flatMap((s) => s.spec?.ports?.map((p) => p.nodePort).filter(Boolean) ?? []);
    expect(new Set(ports).size).to.equal(ports.length);
    expect(ports.length).to.equal(8);
    for (const p of ports) expect(p).to.be.within(30000, 32767);
    // Released on delete: the address can be asked for again.
    await ca.deleteNamespacedService({ namespace: 'default', name: 'race-0' });
    const again = await cb.createNamespacedService({ namespace: 'default', body: { metadata: { name: 'reuse' }, spec: { clusterIP: ips[0], ports: [{ port: 80 }] } } });
    expect(again.spec?.clusterIP).to.equal(ips[0]);
    const taken = await a.request('POST', '/api/v1/namespaces/default/services', JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'dup' }, spec: { clusterIP: ips[1], ports: [{ port: 80 }] } }));
    expect(taken.status).to.equal(422);
    expect(String(taken.json().message)).to.contain('provided IP is already allocated');
  });
});
