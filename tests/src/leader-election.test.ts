import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { startTestNats, type TestNats } from './helpers/nats.js';
import { ROOT } from './helpers/paths.js';
import { sleep, until } from './helpers/wait.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;
const SCHEDULER_PLUGINS = (JSON.parse(readFileSync(join(ROOT, 'plugins', 'scheduler-default', 'package.json'), 'utf8')) as { kubernel: { plugins: string[] } }).kubernel.plugins;

/*
 * Two `kubernel server` processes on one store, each running the ReplicaSet controller with
 * leader election on kube-system/kube-controller-manager (short lease for the test): one acts,
 * the other waits; killing the leader (no release) hands over after the lease expires.
 */
describe('controller leader election across two server processes', function () {
  this.timeout(90_000);
  let dir: string;
  let nats: TestNats;
  let a: TestCluster;
  let b: TestCluster;
  const lease = async (c: TestCluster, name = 'kube-controller-manager'): Promise<Json> => (await c.request('GET', `/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/${name}`)).json() as Json;
  const schedulerRunning = (c: TestCluster): boolean => /"msg":"scheduler started"/.test(c.process.stderr());
  const pods = async (c: TestCluster): Promise<number> => (((await c.request('GET', '/api/v1/namespaces/default/pods?labelSelector=app%3Dle')).json() as Json).items as Json[]).filter((p) => !p.metadata.deletionTimestamp).length;
  const leaderOf = (c: TestCluster): string | undefined => /"identity":"([^"]+)","msg":"became leader"/.exec(c.process.stderr())?.[1]; // JSON logs go to stderr

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kubernel-le-'));
    const le = '{ leaseDurationSeconds: 3, renewDeadlineSeconds: 2, retryPeriodSeconds: 0.5 }';
    writeFileSync(
      join(dir, 'distribution.yaml'),
      [
        'apiVersion: kubernel.io/v1alpha1',
        'kind: Distribution',
        'metadata: { name: leader-election-test }',
        'spec:',
        '  roles:',
        '    server:',
        '      plugins:',
        `        - { id: authn-x509, package: "${join(ROOT, 'plugins', 'authn')}" }`,
        `        - { id: replicaset-controller, package: "${join(ROOT, 'plugins', 'controllers')}", config: { leaderElection: ${le} } }`,
        // The scheduler elects on its own Lease (kube-system/kube-scheduler).
        ...SCHEDULER_PLUGINS.map((id) => `        - { id: ${id}, package: "${join(ROOT, 'plugins', 'scheduler-default')}"${id === 'default-scheduler' ? `, config: { leaderElection: { leaseName: kube-scheduler, leaseDurationSeconds: 3, renewDeadlineSeconds: 2, retryPeriodSeconds: 0.5 } }` : ''} }`),
        '    agent: { plugins: [] }',
        '',
      ].join('\n'),
    );
    // A NATS server of its own, so either API server can die without taking the store along.
    nats = await startTestNats({ token: 'sesame' });
    writeFileSync(join(dir, 'token'), 'sesame\n');
    const store = ['--nats', nats.server.url, '--nats-token-file', join(dir, 'token')];
    a = await startCluster(['--distribution', join(dir, 'distribution.yaml'), ...store]);
    b = await startCluster(['--distribution', join(dir, 'distribution.yaml'), ...store, '--cert-dir', `${a.dataDir}/pki`]);
  });
  after(async () => {
    await b?.stop();
    await a?.stop();
    await nats?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('has exactly one leader, and the replicas are created once', async () => {
    await until(async () => Boolean((await lease(a)).spec?.holderIdentity), 15_000, 'a lease holder');
    const holder = (await lease(a)).spec.holderIdentity as string;
    expect([leaderOf(a), leaderOf(b)].filter(Boolean)).to.deep.equal([holder]);
    const rs = { apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'le' }, spec: { replicas: 5, selector: { matchLabels: { app: 'le' } }, template: { metadata: { labels: { app: 'le' } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } } };
    expect((await a.request('POST', '/apis/apps/v1/namespaces/default/replicasets', JSON.stringify(rs))).status).to.equal(201);
    await until(async () => (await pods(a)) === 5, 15_000, '5 pods');
    await sleep(1500);
    expect(await pods(b)).to.equal(5);
    // One scheduler is active: the kube-scheduler Lease's holder.
    await until(async () => Boolean((await lease(a, 'kube-scheduler')).spec?.holderIdentity), 15_000, 'a kube-scheduler holder');
    expect([schedulerRunning(a), schedulerRunning(b)].filter(Boolean)).to.have.length(1);
  });

  it('hands over when the leader dies without releasing', async () => {
    const before = await lease(a);
    const holder = before.spec.holderIdentity as string;
    const [leader, follower] = leaderOf(a) === holder ? [a, b] : [b, a];
    leader.process.child.kill('SIGKILL');
    await leader.process.exited;
    await until(async () => {
      const l = await lease(follower);
      return l.spec?.holderIdentity && l.spec.holderIdentity !== holder;
    }, 20_000, 'a new holder');
    const after = await lease(follower);
    expect(after.spec.leaseTransitions).to.equal((before.spec.leaseTransitions ?? 0) + 1);
    expect(leaderOf(follower)).to.equal(after.spec.holderIdentity);
    await follower.request('PATCH', '/apis/apps/v1/namespaces/default/replicasets/le', JSON.stringify({ spec: { replicas: 7 } }), { 'content-type': 'application/merge-patch+json' });
    await until(async () => (await pods(follower)) === 7, 15_000, '7 pods from the new leader');
    // The survivor schedules (it held the kube-scheduler Lease already, or took it over).
    const node = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'le-node', labels: { 'kubernetes.io/hostname': 'le-node' } }, status: { allocatable: { cpu: '4', memory: '8Gi', pods: '110' }, conditions: [{ type: 'Ready', status: 'True' }] } };
    expect((await follower.request('POST', '/api/v1/nodes', JSON.stringify(node))).status).to.equal(201);
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'le-sched' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } };
    expect((await follower.request('POST', '/api/v1/namespaces/default/pods', JSON.stringify(pod))).status).to.equal(201);
    await until(async () => ((await follower.request('GET', '/api/v1/namespaces/default/pods/le-sched')).json() as Json).spec?.nodeName === 'le-node', 20_000, 'le-sched bound by the surviving scheduler');
    await until(async () => schedulerRunning(follower), 5_000, 'the follower runs the scheduler');
  });
});
