import { expect } from 'chai';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { sleep, until } from './helpers/wait.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;
const j = (o: unknown): string => JSON.stringify(o);

/*
 * The Deployment controller through kubectl's rollout commands. There is no node agent yet
 * (issue 8), so the test plays the kubelet's status part for the "deploy" namespace: pods that
 * appear are marked Running and Ready after `readyDelayMs`. Pods elsewhere stay Pending.
 */
describe('Deployments on the default distribution (kubectl rollout)', function () {
  this.timeout(120_000);
  let c: TestCluster;
  let kubelet: NodeJS.Timeout | undefined;
  let readyDelayMs = 0;
  const seen = new Map<string, number>();

  const list = async (path: string): Promise<Json[]> => ((await c.request('GET', path)).json() as Json).items as Json[];
  const activePods = async (ns: string, app: string): Promise<Json[]> => (await list(`/api/v1/namespaces/${ns}/pods?labelSelector=app%3D${app}`)).filter((p) => !p.metadata.deletionTimestamp);
  const replicaSets = async (ns: string, app: string): Promise<Json[]> => list(`/apis/apps/v1/namespaces/${ns}/replicasets?labelSelector=app%3D${app}`);
  const fakeKubelet = async (): Promise<void> => {
    for (const p of await list('/api/v1/namespaces/deploy/pods')) {
      if (p.metadata.deletionTimestamp || p.status?.conditions?.some((x: Json) => x.type === 'Ready')) continue;
      const first = seen.get(p.metadata.uid) ?? Date.now();
      seen.set(p.metadata.uid, first);
      if (Date.now() - first < readyDelayMs) continue;
      const t = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      p.status = { ...p.status, phase: 'Running', podIP: '10.244.0.10', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: t }, { type: 'ContainersReady', status: 'True', lastTransitionTime: t }] };
      await c.request('PUT', `/api/v1/namespaces/deploy/pods/${p.metadata.name}/status`, j(p));
    }
  };

  before(async () => {
    c = await startCluster();
    for (const ns of ['deploy', 'stuck']) {
      await c.ok(['create', 'namespace', ns]);
      await until(async () => (await c.request('GET', `/api/v1/namespaces/${ns}/serviceaccounts/default`)).status === 200, 10_000, 'default service account');
    }
    // Re-armed after each pass, until after() clears `kubelet` (a pass in flight then stops the loop).
    const tick = (): void => {
      kubelet = setTimeout(() => void fakeKubelet().catch(() => undefined).finally(() => kubelet !== undefined && tick()), 100);
    };
    tick();
  });
  after(async () => {
    clearTimeout(kubelet);
    kubelet = undefined;
    await c?.stop();
  });

  it('rolls out a new Deployment: one ReplicaSet with the pod-template-hash, rollout status succeeds', async () => {
    await c.ok(['-n', 'deploy', 'create', 'deployment', 'web', '--image=busybox:1.36', '--replicas=3']);
    const status = await c.kubectl(['-n', 'deploy', 'rollout', 'status', 'deployment/web', '--timeout=30s']);
    expect(status.code, status.stderr).to.equal(0);
    expect(status.stdout).to.contain('deployment "web" successfully rolled out');
    const [rs] = await replicaSets('deploy', 'web');
    const hash = rs!.metadata.labels['pod-template-hash'];
    expect(rs!.metadata.name).to.equal(`web-${hash}`);
    expect(rs!.metadata.annotations['deployment.kubernetes.io/revision']).to.equal('1');
    expect(rs!.spec.selector.matchLabels).to.deep.equal({ app: 'web', 'pod-template-hash': hash });
    const d = ((await c.request('GET', '/apis/apps/v1/namespaces/deploy/deployments/web')).json() as Json).status;
    expect(d).to.deep.include({ replicas: 3, updatedReplicas: 3, readyReplicas: 3, availableReplicas: 3, observedGeneration: 1 });
    expect(d.conditions.map((x: Json) => [x.type, x.status, x.reason])).to.deep.equal([['Available', 'True', 'MinimumReplicasAvailable'], ['Progressing', 'True', 'NewReplicaSetAvailable']]);
    expect(await c.ok(['-n', 'deploy', 'get', 'deploy', 'web'])).to.match(/^web\s+3\/3\s+3\s+3\s+\S+$/m);
  });

  it('rolls an image change within maxSurge and maxUnavailable, keeping history', async () => {
    readyDelayMs = 300;
    let maxTotal = 0;
    let minReady = Infinity;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const pods = await activePods('deploy', 'web');
        maxTotal = Math.max(maxTotal, pods.length);
        minReady = Math.min(minReady, pods.filter((p) => p.status?.conditions?.some((x: Json) => x.type === 'Ready' && x.status === 'True')).length);
        await sleep(30);
      }
    })();
    await c.ok(['-n', 'deploy', 'set', 'image', 'deployment/web', 'busybox=busybox:1.37']);
    // The cause is copied to the current (new) ReplicaSet, as Kubernetes does.
    await c.ok(['-n', 'deploy', 'annotate', 'deployment/web', 'kubernetes.io/change-cause=to 1.37']);
    const status = await c.kubectl(['-n', 'deploy', 'rollout', 'status', 'deployment/web', '--timeout=60s']);
    sampling = false;
    await sampler;
    readyDelayMs = 0;
    expect(status.code, status.stderr).to.equal(0);
    // 3 replicas, 25%: maxSurge 1 (rounded up), maxUnavailable 0 (rounded down).
    expect(maxTotal).to.be.at.most(4);
    expect(minReady).to.be.at.least(3);
    const sets = await replicaSets('deploy', 'web');
    expect(sets.map((rs) => [rs.metadata.annotations['deployment.kubernetes.io/revision'], rs.spec.replicas, rs.spec.template.spec.containers[0].image]).sort()).to.deep.equal([
      ['1', 0, 'busybox:1.36'],
      ['2', 3, 'busybox:1.37'],
    ]);
    const history = await c.ok(['-n', 'deploy', 'rollout', 'history', 'deployment/web']);
    expect(history).to.match(/^1\s+<none>$/m);
    expect(history).to.match(/^2\s+to 1\.37$/m);
  });

  it('undoes to the previous revision, reusing its ReplicaSet as the newest revision', async () => {
    await c.ok(['-n', 'deploy', 'rollout', 'undo', 'deployment/web']);
    const status = await c.kubectl(['-n', 'deploy', 'rollout', 'status', 'deployment/web', '--timeout=60s']);
    expect(status.code, status.stderr).to.equal(0);
    const sets = await replicaSets('deploy', 'web');
    expect(sets).to.have.length(2);
    const current = sets.find((rs) => rs.spec.replicas === 3)!;
    expect(current.spec.template.spec.containers[0].image).to.equal('busybox:1.36');
    expect(current.metadata.annotations).to.deep.include({ 'deployment.kubernetes.io/revision': '3', 'deployment.kubernetes.io/revision-history': '1' });
    expect((await c.ok(['-n', 'deploy', 'get', 'deploy', 'web', '-o', 'jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}']))).to.equal('3');
  });

  it('does not roll out while paused; resume and restart roll out', async () => {
    await c.ok(['-n', 'deploy', 'rollout', 'pause', 'deployment/web']);
    await c.ok(['-n', 'deploy', 'set', 'image', 'deployment/web', 'busybox=busybox:1.38']);
    await until(async () => ((await c.request('GET', '/apis/apps/v1/namespaces/deploy/deployments/web')).json() as Json).status.conditions.some((x: Json) => x.reason === 'DeploymentPaused'), 10_000, 'paused condition');
    await sleep(500);
    expect(await replicaSets('deploy', 'web')).to.have.length(2);
    await c.ok(['-n', 'deploy', 'rollout', 'resume', 'deployment/web']);
    expect((await c.kubectl(['-n', 'deploy', 'rollout', 'status', 'deployment/web', '--timeout=60s'])).code).to.equal(0);
    expect((await replicaSets('deploy', 'web')).find((rs) => rs.spec.replicas === 3)!.spec.template.spec.containers[0].image).to.equal('busybox:1.38');
    await c.ok(['-n', 'deploy', 'rollout', 'restart', 'deployment/web']);
    expect((await c.kubectl(['-n', 'deploy', 'rollout', 'status', 'deployment/web', '--timeout=60s'])).code).to.equal(0);
    const current = (await replicaSets('deploy', 'web')).find((rs) => rs.spec.replicas === 3)!;
    expect(current.spec.template.metadata.annotations).to.have.property('kubectl.kubernetes.io/restartedAt');
  });

  it('keeps at most revisionHistoryLimit old ReplicaSets', async () => {
    await c.ok(['-n', 'deploy', 'patch', 'deployment/web', '-p', j({ spec: { revisionHistoryLimit: 1 } })]);
    await until(async () => (await replicaSets('deploy', 'web')).length === 2, 10_000, 'old ReplicaSets cleaned up to 1');
  });

  it('Recreate: the old pods are gone before new ones start', async () => {
    await c.ok(['-n', 'deploy', 'apply', '-f', '-'], j({
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'batch' },
      spec: { replicas: 2, strategy: { type: 'Recreate' }, selector: { matchLabels: { app: 'batch' } }, template: { metadata: { labels: { app: 'batch' } }, spec: { containers: [{ name: 'c', image: 'busybox:1' }] } } },
    }));
    expect((await c.kubectl(['-n', 'deploy', 'rollout', 'status', 'deployment/batch', '--timeout=30s'])).code).to.equal(0);
    let overlap = false;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const images = new Set((await activePods('deploy', 'batch')).map((p) => p.spec.containers[0].image));
        if (images.size > 1) overlap = true;
        await sleep(20);
      }
    })();
    await c.ok(['-n', 'deploy', 'set', 'image', 'deployment/batch', 'c=busybox:2']);
    expect((await c.kubectl(['-n', 'deploy', 'rollout', 'status', 'deployment/batch', '--timeout=30s'])).code).to.equal(0);
    sampling = false;
    await sampler;
    expect(overlap).to.equal(false);
    expect((await activePods('deploy', 'batch')).map((p) => p.spec.containers[0].image)).to.deep.equal(['busybox:2', 'busybox:2']);
  });

  it('reports ProgressDeadlineExceeded when pods never become available, and rollout status fails', async () => {
    await c.ok(['-n', 'stuck', 'apply', '-f', '-'], j({
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'slow' },
      spec: { replicas: 1, progressDeadlineSeconds: 2, selector: { matchLabels: { app: 'slow' } }, template: { metadata: { labels: { app: 'slow' } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } },
    }));
    const status = await c.kubectl(['-n', 'stuck', 'rollout', 'status', 'deployment/slow', '--timeout=30s']);
    expect(status.code).to.not.equal(0);
    expect(status.stderr).to.contain('deployment "slow" exceeded its progress deadline');
    const cond = (((await c.request('GET', '/apis/apps/v1/namespaces/stuck/deployments/slow')).json() as Json).status.conditions as Json[]).find((x) => x.type === 'Progressing')!;
    expect([cond.status, cond.reason]).to.deep.equal(['False', 'ProgressDeadlineExceeded']);
    expect(cond.message).to.match(/^ReplicaSet "slow-[a-z0-9]+" has timed out progressing\.$/);
  });
});
