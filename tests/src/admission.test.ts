import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import { createCa, issueCertificate } from '@kubernel/core';
import { startCluster, type HttpResult, type TestCluster } from './helpers/cluster.js';
import { sleep, until } from './helpers/wait.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;
const j = (o: unknown): string => JSON.stringify(o);
const pod = (name: string, spec: Json = {}, metadata: Json = {}): string =>
  j({ apiVersion: 'v1', kind: 'Pod', metadata: { name, ...metadata }, spec: { containers: [{ name: 'c', image: 'busybox' }], ...spec } });
const cm = (name: string, labels: Record<string, string> = {}): string => j({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels }, data: { a: '1' } });

/** A test webhook: answers AdmissionReviews with `decide(request)`, after `delayMs`. */
interface Hook {
  server: Server;
  url: string;
  seen: Json[];
}

async function startHook(cert: { cert: string; key: string }, decide: (req: Json) => Json | Promise<Json>): Promise<Hook> {
  const seen: Json[] = [];
  const server = createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const review = JSON.parse(Buffer.concat(chunks).toString()) as Json;
        seen.push(review);
        const response = { uid: review.request.uid, ...(await decide(review.request)) };
        if (res.destroyed) return;
        res.setHeader('content-type', 'application/json');
        res.end(j({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response }));
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

describe('admission plugins on the default distribution (kubectl and raw API)', function () {
  this.timeout(90_000);
  let c: TestCluster;
  const hooks: Hook[] = [];
  const ns = (name: string): string => `/api/v1/namespaces/${name}`;
  const mkns = async (name: string, labels: Record<string, string> = {}): Promise<void> => {
    const r = await c.request('POST', '/api/v1/namespaces', j({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } }));
    expect(r.status, r.body).to.equal(201);
    // The ServiceAccount controller adds "default" shortly after.
    await until(async () => (await c.request('GET', `${ns(name)}/serviceaccounts/default`)).status === 200, 10_000, `default service account in ${name}`);
  };

  before(async () => {
    c = await startCluster();
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') process.stderr.write(c.process.stdout().split('\n').filter((l) => /webhook|admission|quota|error/i.test(l)).slice(-30).join('\n') + '\n');
  });
  after(async () => {
    for (const h of hooks) h.server.close();
    await c?.stop();
  });

  describe('ServiceAccount and the controllers behind it', () => {
    it('gives every namespace a default service account and the kube-root-ca.crt ConfigMap', async () => {
      await mkns('sa-test');
      await until(async () => (await c.request('GET', `${ns('sa-test')}/configmaps/kube-root-ca.crt`)).status === 200, 10_000, 'kube-root-ca.crt');
      const root = (await c.request('GET', `${ns('sa-test')}/configmaps/kube-root-ca.crt`)).json() as Json;
      expect(new X509Certificate(root.data['ca.crt']).subject).to.equal(new X509Certificate(c.tls.ca).subject);
      // Deleting them brings them back.
      await c.request('DELETE', `${ns('sa-test')}/serviceaccounts/default`);
      await until(async () => (await c.request('GET', `${ns('sa-test')}/serviceaccounts/default`)).status === 200, 10_000, 'default service account recreated');
    });

    it('runs pods as "default" with the projected API token volume in every container', async () => {
      const created = await c.request('POST', `${ns('sa-test')}/pods`, j({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { initContainers: [{ name: 'i', image: 'busybox' }], containers: [{ name: 'c', image: 'busybox' }] } }));
      expect(created.status, created.body).to.equal(201);
      const p = created.json() as Json;
      expect(p.spec.serviceAccountName).to.equal('default');
      const volume = (p.spec.volumes as Json[]).find((v) => /^kube-api-access-[a-z0-9]{5}$/.test(v.name));
      expect(volume, j(p.spec.volumes)).to.not.equal(undefined);
      expect(volume!.projected.sources.map((s: Json) => Object.keys(s)[0])).to.deep.equal(['serviceAccountToken', 'configMap', 'downwardAPI']);
      expect(volume!.projected.sources[0].serviceAccountToken).to.deep.equal({ expirationSeconds: 3607, path: 'token' });
      for (const ctr of [...p.spec.initContainers, ...p.spec.containers]) {
        expect(ctr.volumeMounts).to.deep.include({ name: volume!.name, readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' });
      }
    });

    it('leaves the token out when the pod opts out, and refuses a missing service account', async () => {
      const optOut = (await c.request('POST', `${ns('sa-test')}/pods`, pod('no-token', { automountServiceAccountToken: false }))).json() as Json;
      expect(optOut.spec.volumes ?? []).to.deep.equal([]);
      const missing = await c.kubectl(['-n', 'sa-test', 'run', 'ghost', '--image=busybox', '--overrides', j({ spec: { serviceAccountName: 'ghost' } })]);
      expect(missing.code).to.not.equal(0);
      expect(missing.stderr).to.contain('pods "ghost" is forbidden: error looking up service account sa-test/ghost: serviceaccount "ghost" not found');
    });
  });

  describe('NamespaceLifecycle', () => {
    it('refuses content in missing namespaces and the deletion of system namespaces', async () => {
      const missing = await c.request('POST', `${ns('nowhere')}/configmaps`, cm('x'));
      expect(missing.status).to.equal(404);
      expect(missing.json()).to.deep.include({ reason: 'NotFound', message: 'namespaces "nowhere" not found', details: { name: 'nowhere', kind: 'namespaces' } });
      const del = await c.kubectl(['delete', 'namespace', 'kube-system']);
      expect(del.code).to.not.equal(0);
      expect(del.stderr).to.contain('namespaces "kube-system" is forbidden: this namespace may not be deleted');
      expect((await c.request('GET', ns('kube-system'))).json().status).to.deep.equal({ phase: 'Active' });
    });
  });

  describe('LimitRanger', () => {
    before(async () => {
      await mkns('limits');
      await c.ok(['-n', 'limits', 'apply', '-f', '-'], j({
        apiVersion: 'v1', kind: 'LimitRange', metadata: { name: 'lr' },
        spec: { limits: [{ type: 'Container', default: { cpu: '500m', memory: '128Mi' }, defaultRequest: { cpu: '100m', memory: '64Mi' }, max: { cpu: '1' } }] },
      }));
    });

    it('fills in default requests and limits and says so in an annotation', async () => {
      const p = (await c.request('POST', `${ns('limits')}/pods`, pod('defaults'))).json() as Json;
      expect(p.spec.containers[0].resources).to.deep.equal({ limits: { cpu: '500m', memory: '128Mi' }, requests: { cpu: '100m', memory: '64Mi' } });
      expect(p.metadata.annotations['kubernetes.io/limit-ranger']).to.equal('LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for container c');
      expect(p.status.qosClass).to.equal('Burstable');
    });

    it('refuses a container over the maximum with 403 naming the bound', async () => {
      const r = await c.request('POST', `${ns('limits')}/pods`, pod('greedy', { containers: [{ name: 'c', image: 'busybox', resources: { limits: { cpu: '2' } } }] }));
      expect(r.status).to.equal(403);
      expect(r.json().message).to.equal('pods "greedy" is forbidden: maximum cpu usage per Container is 1, but limit is 2');
      expect((await c.request('GET', `${ns('limits')}/pods/greedy`)).status).to.equal(404);
    });
  });

  describe('ResourceQuota', () => {
    const quota = async (name: string, hard: Record<string, string>, extra: Json = {}): Promise<void> => {
      await c.ok(['-n', 'quota', 'apply', '-f', '-'], j({ apiVersion: 'v1', kind: 'ResourceQuota', metadata: { name }, spec: { hard, ...extra } }));
      // Enforcement starts once the quota controller has counted usage into status.
      await until(async () => {
        const q = (await c.request('GET', `${ns('quota')}/resourcequotas/${name}`)).json() as Json;
        const sorted = (o: Json | undefined): string => j(Object.entries(o ?? {}).sort());
        return sorted(q.status?.hard) === sorted(hard) && q.status?.used !== undefined;
      }, 10_000, `quota ${name} status`);
    };
    const used = async (name: string): Promise<Json> => ((await c.request('GET', `${ns('quota')}/resourcequotas/${name}`)).json() as Json).status.used;

    before(async () => {
      await mkns('quota');
    });

    it('refuses the pod over the quota with 403 naming the quota, requested, used and limited', async () => {
      await quota('pod-count', { pods: '2' });
      for (const n of ['q1', 'q2']) expect((await c.request('POST', `${ns('quota')}/pods`, pod(n))).status).to.equal(201);
      const r = await c.kubectl(['-n', 'quota', 'run', 'q3', '--image=busybox']);
      expect(r.code).to.not.equal(0);
      expect(r.stderr).to.contain('pods "q3" is forbidden: exceeded quota: pod-count, requested: pods=1, used: pods=2, limited: pods=2');
      expect((await used('pod-count')).pods).to.equal('2');
      // Replenishment: a deleted pod frees its share.
      await c.request('DELETE', `${ns('quota')}/pods/q1?gracePeriodSeconds=0`);
      await until(async () => (await used('pod-count')).pods === '1', 10_000, 'pods used back to 1');
      expect((await c.request('POST', `${ns('quota')}/pods`, pod('q3'))).status).to.equal(201);
      await c.ok(['-n', 'quota', 'delete', 'resourcequota', 'pod-count']);
      await c.ok(['-n', 'quota', 'delete', 'pods', '--all', '--grace-period=0']);
    });

    it('charges exactly up to the quota under 40 concurrent creates', async () => {
      await quota('cm-count', { configmaps: '15', 'count/configmaps': '15' });
      const before = Number((await used('cm-count')).configmaps);
      const allowed = 15 - before;
      const results = await Promise.all(Array.from({ length: 40 }, (_, i) => c.request('POST', `${ns('quota')}/configmaps`, cm(`burst-${i}`))));
      const codes = results.map((r) => r.status);
      expect(codes.filter((s) => s === 201).length, j(codes)).to.equal(allowed);
      expect(codes.filter((s) => s === 403).length).to.equal(40 - allowed);
      for (const r of results.filter((x) => x.status === 403)) expect(r.json().message).to.match(/^configmaps "burst-\d+" is forbidden: exceeded quota: cm-count, requested: (configmaps|count\/configmaps)=1/);
      const stored = ((await c.request('GET', `${ns('quota')}/configmaps`)).json() as Json).items.length;
      expect(stored).to.equal(15);
      expect(await used('cm-count')).to.deep.equal({ configmaps: '15', 'count/configmaps': '15' });
      await c.ok(['-n', 'quota', 'delete', 'resourcequota', 'cm-count']);
    });

    it('requires the compute resources a quota limits, and sums them', async () => {
      await quota('compute', { 'requests.cpu': '1', 'limits.memory': '1Gi' });
      const bare = await c.request('POST', `${ns('quota')}/pods`, pod('bare'));
      expect(bare.status).to.equal(403);
      expect(bare.json().message).to.equal('pods "bare" is forbidden: failed quota: compute: must specify limits.memory for: c; requests.cpu for: c');
      const sized = (n: string, cpu: string): string => pod(n, { containers: [{ name: 'c', image: 'busybox', resources: { requests: { cpu }, limits: { memory: '256Mi' } } }] });
      expect((await c.request('POST', `${ns('quota')}/pods`, sized('a', '600m'))).status).to.equal(201);
      const over = await c.request('POST', `${ns('quota')}/pods`, sized('b', '500m'));
      expect(over.status).to.equal(403);
      expect(over.json().message).to.equal('pods "b" is forbidden: exceeded quota: compute, requested: requests.cpu=500m, used: requests.cpu=600m, limited: requests.cpu=1');
      expect(await used('compute')).to.deep.equal({ 'requests.cpu': '600m', 'limits.memory': '256Mi' });
    });
  });

  describe('PodSecurity', () => {
    before(async () => {
      await mkns('restricted', { 'pod-security.kubernetes.io/enforce': 'restricted' });
      await mkns('warned', { 'pod-security.kubernetes.io/warn': 'baseline' });
    });
    const privileged = j({
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'root' },
      spec: { hostNetwork: true, containers: [{ name: 'c', image: 'busybox', securityContext: { privileged: true } }] },
    });

    it('refuses a privileged pod in a restricted namespace, naming the offending fields', async () => {
      const r = await c.request('POST', `${ns('restricted')}/pods`, privileged);
      expect(r.status).to.equal(403);
      const status = r.json() as Json;
      expect(status.message).to.match(/^pods "root" is forbidden: violates PodSecurity "restricted:latest": /);
      for (const part of ['host namespaces (hostNetwork=true)', 'privileged (container "c" must not set securityContext.privileged=true)', 'allowPrivilegeEscalation != false', 'runAsNonRoot != true', 'seccompProfile']) {
        expect(status.message).to.contain(part);
      }
      const fields = (status.details.causes as Json[]).map((x) => x.field);
      expect(fields).to.include.members(['spec.hostNetwork', 'spec.containers[0].securityContext.privileged']);
      const k = await c.kubectl(['-n', 'restricted', 'apply', '-f', '-'], privileged);
      expect(k.code).to.not.equal(0);
      expect(k.stderr).to.contain('violates PodSecurity "restricted:latest"');
    });

    it('admits a pod that meets the restricted profile', async () => {
      const ok = await c.request('POST', `${ns('restricted')}/pods`, pod('good', {
        securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [{ name: 'c', image: 'busybox', securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }],
      }));
      expect(ok.status, ok.body).to.equal(201);
    });

    it('only warns in a namespace with a warn label (kubectl prints the warning)', async () => {
      const k = await c.kubectl(['-n', 'warned', 'apply', '-f', '-'], privileged);
      expect(k.code, k.stderr).to.equal(0);
      expect(k.stderr).to.match(/Warning: would violate PodSecurity "baseline:latest": .*privileged/);
    });
  });

  describe('DefaultStorageClass', () => {
    it('gives a claim without a class the default StorageClass', async () => {
      await c.ok(['apply', '-f', '-'], j({ apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'standard', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } }, provisioner: 'example.com/none' }));
      await sleep(200);
      const claim = (spec: Json): string => j({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { generateName: 'claim-' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, ...spec } });
      const r = (await c.request('POST', `${ns('default')}/persistentvolumeclaims`, claim({}))).json() as Json;
      expect(r.spec.storageClassName).to.equal('standard');
      const none = (await c.request('POST', `${ns('default')}/persistentvolumeclaims`, claim({ storageClassName: '' }))).json() as Json;
      expect(none.spec.storageClassName).to.equal('');
    });
  });

  describe('webhook admission (HTTPS, failurePolicy, timeouts)', () => {
    let caBundle: string;
    let serving: { cert: string; key: string };
    const configure = async (kind: 'Mutating' | 'Validating', name: string, url: string, label: string, extra: Json = {}): Promise<void> => {
      const r = await c.request('POST', `/apis/admissionregistration.k8s.io/v1/${kind.toLowerCase()}webhookconfigurations`, j({
        apiVersion: 'admissionregistration.k8s.io/v1', kind: `${kind}WebhookConfiguration`, metadata: { name },
        webhooks: [{
          name: `${name}.example.com`, clientConfig: { url, caBundle }, sideEffects: 'None', admissionReviewVersions: ['v1'],
          rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['configmaps'] }],
          objectSelector: { matchLabels: { hook: label } }, ...extra,
        }],
      }));
      expect(r.status, r.body).to.equal(201);
    };
    /** Creates configmaps labelled `hook: label` until the webhook configuration has reached the plugin's cache. */
    const createUntil = async (label: string, done: (r: HttpResult) => boolean): Promise<HttpResult> => {
      let last: HttpResult | undefined;
      for (let i = 0; i < 50; i++) {
        last = await c.request('POST', `${ns('default')}/configmaps`, cm(`${label}-${i}`, { hook: label }));
        if (done(last)) return last;
        await sleep(100);
      }
      return last!;
    };

    before(async () => {
      const ca = await createCa('webhook-test-ca', 1);
      serving = await issueCertificate(ca, { commonName: '127.0.0.1', usage: 'server', sans: ['127.0.0.1'], validityDays: 1 });
      caBundle = Buffer.from(ca.cert).toString('base64');
    });

    it('refuses what a validating webhook denies, with its message', async () => {
      const hook = await startHook(serving, () => ({ allowed: false, status: { code: 403, message: 'configmaps need an owner' } }));
      hooks.push(hook);
      await configure('Validating', 'deny', hook.url, 'deny');
      const r = await createUntil('deny', (x) => x.status !== 201);
      expect(r.status).to.equal(403);
      expect(r.json().message).to.contain('admission webhook "deny.example.com" denied the request: configmaps need an owner');
      const review = hook.seen.at(-1)!;
      expect(review).to.deep.include({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' });
      expect(review.request).to.deep.include({ operation: 'CREATE', namespace: 'default', kind: { group: '', version: 'v1', kind: 'ConfigMap' } });
      expect(review.request.userInfo.username).to.equal('kubernetes-admin');
    });

    it('applies a mutating webhook\'s JSONPatch before the object is stored', async () => {
      const patch = Buffer.from(j([{ op: 'add', path: '/data/added', value: 'by-webhook' }])).toString('base64');
      const hook = await startHook(serving, () => ({ allowed: true, patchType: 'JSONPatch', patch }));
      hooks.push(hook);
      await configure('Mutating', 'mutate', hook.url, 'mutate');
      const r = await createUntil('mutate', (x) => x.status === 201 && (x.json() as Json).data.added === 'by-webhook');
      const name = (r.json() as Json).metadata.name;
      const stored = (await c.request('GET', `${ns('default')}/configmaps/${name}`)).json() as Json;
      expect(stored.data).to.deep.equal({ a: '1', added: 'by-webhook' });
    });

    it('follows failurePolicy when a webhook times out: Fail refuses (500), Ignore admits', async function () {
      this.timeout(60_000);
      const slow = await startHook(serving, async () => {
        await sleep(3_000);
        return { allowed: true };
      });
      hooks.push(slow);
      await configure('Validating', 'slow-fail', slow.url, 'slow-fail', { timeoutSeconds: 1, failurePolicy: 'Fail' });
      await configure('Validating', 'slow-ignore', slow.url, 'slow-ignore', { timeoutSeconds: 1, failurePolicy: 'Ignore' });
      const t0 = Date.now();
      const failed = await createUntil('slow-fail', (x) => x.status !== 201);
      expect(failed.status).to.equal(500);
      expect(failed.json().message).to.match(/failed calling webhook "slow-fail\.example\.com": failed to call webhook: Post "https:\/\/127\.0\.0\.1:\d+\/?\?timeout=1s": context deadline exceeded/);
      expect(Date.now() - t0).to.be.below(20_000);
      const before = slow.seen.length;
      const ignored = await createUntil('slow-ignore', () => slow.seen.length > before);
      expect(ignored.status, ignored.body).to.equal(201);
    });
  });
});
