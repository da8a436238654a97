import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { startTestNats, type TestNats } from './helpers/nats.js';
import { ROOT } from './helpers/paths.js';
import { sleep, until } from './helpers/wait.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

/*
 * The controller process is killed (SIGKILL: no lease release, no clean shutdown) in the middle of
 * a rolling update and started again on the same store: the rollout converges, and at no point
 * are there more pods than replicas + maxSurge, nor extra pods at the end. The test plays the
 * kubelet's status part (pods become Ready 200 ms after they appear).
 */
describe('a controller process killed mid-rollout and restarted', function () {
  this.timeout(120_000);
  let dir: string;
  let nats: TestNats;
  let c: TestCluster;
  let kubelet: NodeJS.Timeout | undefined;
  const seen = new Map<string, number>();
  let maxPods = 0;

  const start = async (dataDir: string): Promise<TestCluster> =>
    startCluster(['--distribution', join(dir, 'distribution.yaml'), '--nats', nats.server.url, '--nats-token-file', join(dir, 'token')], dataDir);
  const pods = async (): Promise<Json[]> => (((await c.request('GET', '/api/v1/namespaces/default/pods?labelSelector=app%3Droll')).json() as Json).items as Json[]).filter((p) => !p.metadata.deletionTimestamp);
  const fakeKubelet = async (): Promise<void> => {
    const list = await pods();
    maxPods = Math.max(maxPods, list.length);
    for (const p of list) {
      if (p.status?.conditions?.some((x: Json) => x.type === 'Ready')) continue;
      const first = seen.get(p.metadata.uid) ?? Date.now();
      seen.set(p.metadata.uid, first);
      if (Date.now() - first < 200) continue;
      const t = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      p.status = { ...p.status, phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: t }] };
      await c.request('PUT', `/api/v1/namespaces/default/pods/${p.metadata.name}/status`, JSON.stringify(p));
    }
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kubernel-restart-'));
    const le = '{ leaseDurationSeconds: 3, renewDeadlineSeconds: 2, retryPeriodSeconds: 0.5 }';
    const entry = (id: string, pkg: string, config = '{}'): string => `        - { id: ${id}, package: "${join(ROOT, 'plugins', pkg)}", config: ${config} }`;
    writeFileSync(
      join(dir, 'distribution.yaml'),
      ['apiVersion: kubernel.io/v1alpha1', 'kind: Distribution', 'metadata: { name: restart-test }', 'spec:', '  roles:', '    server:', '      plugins:',
        entry('authn-x509', 'authn'), entry('replicaset-controller', 'controllers', `{ leaderElection: ${le} }`), entry('deployment-controller', 'controllers', `{ leaderElection: ${le} }`),
        '    agent: { plugins: [] }', ''].join('\n'),
    );
    nats = await startTestNats({ token: 'sesame' });
    writeFileSync(join(dir, 'token'), 'sesame\n');
    c = await start(join(dir, 'data'));
    const tick = (): void => {
      kubelet = setTimeout(() => void fakeKubelet().catch(() => undefined).finally(() => kubelet && tick()), 50);
    };
    tick();
  });
  after(async () => {
    clearTimeout(kubelet);
    kubelet = undefined;
    await c?.stop();
    await nats?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('converges with no extra pods', async () => {
    const deploy = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'roll' }, spec: { replicas: 8, strategy: { rollingUpdate: { maxSurge: 2, maxUnavailable: 0 } }, selector: { matchLabels: { app: 'roll' } }, template: { metadata: { labels: { app: 'roll' } }, spec: { containers: [{ name: 'c', image: 'busybox:1' }] } } } };
    expect((await c.request('POST', '/apis/apps/v1/namespaces/default/deployments', JSON.stringify(deploy))).status).to.equal(201);
    const done = async (image: string): Promise<boolean> => {
      const d = (await c.request('GET', '/apis/apps/v1/namespaces/default/deployments/roll')).json() as Json;
      const list = await pods();
      return d.status?.updatedReplicas === 8 && d.status?.availableReplicas === 8 && d.status?.replicas === 8 && list.length === 8 && list.every((p) => p.spec.containers[0].image === image);
    };
    await until(() => done('busybox:1'), 30_000, 'first rollout');
    await c.request('PATCH', '/apis/apps/v1/namespaces/default/deployments/roll', JSON.stringify({ spec: { template: { spec: { containers: [{ name: 'c', image: 'busybox:2' }] } } } }), { 'content-type': 'application/strategic-merge-patch+json' });
    // Mid-rollout: some new pods exist, not all.
    await until(async () => (await pods()).some((p) => p.spec.containers[0].image === 'busybox:2'), 15_000, 'the rollout to start');
    expect(await done('busybox:2')).to.equal(false);
    c.process.child.kill('SIGKILL');
    await c.process.exited;
    const killedAt = Date.now();
    c = await start(join(dir, 'data'));
    await until(() => done('busybox:2'), 60_000, 'the rollout to converge after the restart');
    expect(Date.now() - killedAt).to.be.below(60_000);
    await sleep(1000);
    expect(await pods()).to.have.length(8);
    expect(maxPods).to.be.at.most(10); // replicas + maxSurge
    const sets = ((await c.request('GET', '/apis/apps/v1/namespaces/default/replicasets')).json() as Json).items as Json[];
    expect(sets.map((rs) => [rs.spec.template.spec.containers[0].image, rs.spec.replicas]).sort()).to.deep.equal([['busybox:1', 0], ['busybox:2', 8]]);
  });
});
