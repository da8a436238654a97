import { expect } from 'chai';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, createLogger } from '@kubernel/core';
import { ApiClient } from '@kubernel/sdk';
import { FakeContainerRuntime } from '@kubernel/plugin-cri-fake';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { until } from './helpers/wait.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

/**
 * The node agent in the test process against a real cluster (default distribution: scheduler and
 * controllers), with the in-memory fake runtime: a hollow node that really runs the kubelet loop.
 */
describe('the node agent on a hollow node (fake runtime, default distribution, kubectl)', function () {
  this.timeout(60_000);
  const NODE = 'hollow-1';
  let c: TestCluster;
  let api: ApiClient;
  let runtime: FakeContainerRuntime;
  const stop = new AbortController();
  let running: Promise<void> | undefined;
  let manifests = '';

  const podsOnNode = async (): Promise<Json[]> =>
    ((JSON.parse(await c.ok(['get', 'pods', '-l', 'app=web', '-o', 'json'])) as Json).items as Json[]).filter((p) => p.spec?.nodeName === NODE);

  before(async () => {
    c = await startCluster();
    api = new ApiClient({ server: c.url, ca: c.tls.ca, cert: c.tls.cert, key: c.tls.key });
    runtime = new FakeContainerRuntime({ images: ['registry.k8s.io/pause:3.9', 'docker.io/library/busybox:1.36'] });
    manifests = mkdtempSync(join(tmpdir(), 'kubernel-manifests-'));
    const agent = new Agent({
      api,
      runtime,
      nodeName: NODE,
      staticPodPath: manifests,
      staticPodCheckIntervalMs: 300,
      logger: createLogger({ level: 'silent' }),
      capacity: { cpu: 4, memory: '8Gi', pods: 110 },
      syncIntervalMs: 200,
      heartbeatIntervalMs: 2_000,
    });
    running = agent.run(stop.signal);
    await until(async () => (await c.request('GET', '/api/v1/namespaces/default/serviceaccounts/default')).status === 200, 15_000, 'default service account');
  });

  after(async () => {
    stop.abort();
    await running;
    api?.close();
    await runtime?.close();
    await c?.stop();
    if (manifests) rmSync(manifests, { recursive: true, force: true });
  });

  it('registers the node Ready, with allocatable and the hostname label, and renews its Lease', async () => {
    let node: Json = {};
    await until(async () => {
      const r = await c.request('GET', `/api/v1/nodes/${NODE}`);
      if (r.status !== 200) return false;
      node = r.json();
      return (node.status?.conditions ?? []).some((x: Json) => x.type === 'Ready' && x.status === 'True');
    }, 15_000, 'node Ready');
    expect(node.metadata.labels['kubernetes.io/hostname']).to.equal(NODE);
    expect(node.status.allocatable).to.include({ cpu: '4', memory: '8Gi', pods: '110' });
    // The Lease comes with the first heartbeat, just after registration.
    let lease = await c.request('GET', `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${NODE}`);
    await until(async () => (lease = await c.request('GET', `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${NODE}`)).status === 200, 15_000, 'the node Lease');
    expect((lease.json() as Json).spec).to.include({ holderIdentity: NODE, leaseDurationSeconds: 40 });
  });

  it('runs a deployment\'s 3 pods: Running, Ready, containers running, 3 sandboxes in the runtime', async () => {
    await c.ok(['create', 'deployment', 'web', '--image=busybox:1.36', '--replicas=3']);
    let pods: Json[] = [];
    await until(async () => {
      pods = await podsOnNode();
      return pods.length === 3 && pods.every((p) =>
        p.status?.phase === 'Running'
        && (p.status.conditions ?? []).some((x: Json) => x.type === 'Ready' && x.status === 'True')
        && (p.status.containerStatuses ?? []).length === 1
        && p.status.containerStatuses[0].state?.running !== undefined);
    }, 30_000, '3 web pods Running and Ready on hollow-1');
    for (const p of pods) {
      expect(p.status.podIP, 'podIP').to.be.a('string').and.not.equal('');
      expect(p.status.containerStatuses[0].ready).to.equal(true);
    }
    expect(runtime.counts().sandboxes).to.equal(3);
    expect(runtime.counts().containers).to.equal(3);
  });

  it('finishes the pods\' deletion when the deployment goes: gone from the API and the runtime', async () => {
    await c.ok(['delete', 'deployment', 'web']);
    await until(async () => (await c.ok(['get', 'pods', '-l', 'app=web', '-o', 'name'])).trim() === '', 30_000, 'web pods gone from the API');
    await until(() => runtime.counts().sandboxes === 0 && runtime.counts().containers === 0, 5_000, 'runtime empty');
  });

  it('runs a static pod from its manifest directory, mirrored in the API with its status; the mirror comes back when deleted; removing the manifest stops it', async () => {
    writeFileSync(join(manifests, 'static-web.yaml'), 'apiVersion: v1\nkind: Pod\nmetadata: { name: static-web, namespace: kube-system, labels: { tier: static } }\nspec:\n  containers: [{ name: c, image: busybox:1.36 }]\n');
    const name = `static-web-${NODE}`;
    let mirror: Json = {};
    await until(async () => {
      const r = await c.request('GET', `/api/v1/namespaces/kube-system/pods/${name}`);
      if (r.status !== 200) return false;
      mirror = r.json();
      return mirror.status?.phase === 'Running';
    }, 20_000, 'the mirror pod Running');
    const hash = mirror.metadata.annotations['kubernetes.io/config.hash'] as string;
    expect(mirror.metadata.annotations['kubernetes.io/config.mirror']).to.equal(hash);
    expect(mirror.metadata.annotations['kubernetes.io/config.source']).to.equal('file');
    expect(mirror.metadata.uid, 'the mirror has its own API UID').to.not.equal(hash);
    expect(mirror.metadata.ownerReferences).to.deep.include({ apiVersion: 'v1', kind: 'Node', name: NODE, uid: ((await c.request('GET', `/api/v1/nodes/${NODE}`)).json() as Json).metadata.uid, controller: true });
    expect(mirror.spec.nodeName).to.equal(NODE);
    const sandboxes = runtime.counts().sandboxes;
    // kubectl delete of a mirror pod: the static pod keeps running and the mirror comes back.
    await c.ok(['delete', 'pod', '-n', 'kube-system', name, '--wait=false']);
    await until(async () => {
      const r = await c.request('GET', `/api/v1/namespaces/kube-system/pods/${name}`);
      return r.status === 200 && (r.json() as Json).metadata.uid !== mirror.metadata.uid && (r.json() as Json).status?.phase === 'Running';
    }, 20_000, 'a new mirror pod, Running');
    expect(runtime.counts().sandboxes, 'the static pod was not restarted').to.equal(sandboxes);
    unlinkSync(join(manifests, 'static-web.yaml'));
    await until(async () => (await c.request('GET', `/api/v1/namespaces/kube-system/pods/${name}`)).status === 404, 20_000, 'the mirror pod gone');
    await until(() => runtime.counts().sandboxes === 0, 10_000, 'the static pod stopped');
  });
});
