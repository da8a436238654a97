import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import { ApiClient, ApiStatusError, type KubeObject } from '@kubernel/sdk';
import { describeControllerContract } from '@kubernel/sdk/testing';
import { csrApprovingControllerPlugin, csrSigningControllerPlugin } from '@kubernel/plugin-controllers';
// The integrator exports this from @kubernel/core's agent module; until then, the compiled file.
import { bootstrapNodeCredentials, createLogger, newKeyAndRequest, NodeBootstrapError, type NodeCredentials } from '@kubernel/core';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { FIXTURES } from './helpers/paths.js';
import { until } from './helpers/wait.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const CSRS = '/apis/certificates.k8s.io/v1/certificatesigningrequests';
const TOKEN = 'abc123.0123456789abcdef';
const logger = createLogger({ level: 'silent' });
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const subjectOf = (pem: string): string[] => new X509Certificate(pem).subject.split('\n').sort();
/** A key and a PEM certificate request for CN `commonName` in the groups `organizations`. */
const makeRequest = (commonName: string, organizations: string[] = []): Promise<{ csr: string; key: string }> => newKeyAndRequest({ commonName, organizations });

describe('node TLS bootstrap: bootstrap tokens, CSR approval and signing (kubernel server, default distribution)', function () {
  this.timeout(120_000);
  let c: TestCluster;
  let work: string;
  let joined: NodeCredentials;
  const clients: ApiClient[] = [];
  const admin = (): ApiClient => {
    const a = new ApiClient({ server: c.url, ca: c.tls.ca, cert: c.tls.cert!, key: c.tls.key! });
    clients.push(a);
    return a;
  };
  const as = (connection: { token?: string; cert?: string; key?: string }): ApiClient => {
    const a = new ApiClient({ server: c.url, ca: c.tls.ca, ...connection }, { maxRetries: 0 });
    clients.push(a);
    return a;
  };
  const csr = async (name: string): Promise<Json> => (await admin().get(`${CSRS}/${name}`)) as Json;
  const csrs = async (): Promise<Json[]> => (await admin().list(CSRS)).items as Json[];
  const tokenSecret = (id: string, expiration: string | undefined, usage = 'true'): Json => ({
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'bootstrap.kubernetes.io/token',
    metadata: { name: `bootstrap-token-${id}`, namespace: 'kube-system' },
    stringData: { 'token-id': id, 'token-secret': '0123456789abcdef', 'usage-bootstrap-authentication': usage, ...(expiration ? { expiration } : {}) },
  });
  const createCsr = async (client: ApiClient, request: string, signerName: string, usages: string[], extra: Json = {}): Promise<string> => {
    const o = await client.create(CSRS, { apiVersion: 'certificates.k8s.io/v1', kind: 'CertificateSigningRequest', metadata: { generateName: 'test-' }, spec: { request: b64(request), signerName, usages }, ...extra });
    return String(o.metadata?.name);
  };

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'kubernel-node-bootstrap-'));
    c = await startCluster();
    const a = admin();
    await a.create('/api/v1/namespaces/kube-system/secrets', tokenSecret('abc123', new Date(Date.now() + 3_600_000).toISOString()));
    await a.create('/api/v1/namespaces/kube-system/secrets', tokenSecret('old000', new Date(Date.now() - 1000).toISOString()));
    await a.create('/api/v1/namespaces/kube-system/secrets', tokenSecret('noauth', undefined, 'false'));
    // The authenticator reads token secrets through an informer: wait until it knows this one.
    await until(async () => (await c.request('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }), { authorization: `Bearer ${TOKEN}` }, { cert: undefined, key: undefined })).status === 201, 20_000, 'the bootstrap token to authenticate');
  });
  after(async () => {
    for (const a of clients) a.close();
    await c?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('a node joins with a bootstrap token: its CSR is auto-approved after a SubjectAccessReview and issued by the cluster CA', async () => {
    const dir = join(work, 'n1');
    joined = await bootstrapNodeCredentials({ server: c.url, token: TOKEN, nodeName: 'n1', dir, ca: c.tls.ca, logger, timeoutMs: 60_000 });
    expect(joined.reused).to.equal(false);
    expect(joined.kubeconfigPath).to.equal(join(dir, 'kubelet.conf'));
    expect(subjectOf(joined.cert)).to.deep.equal(['CN=system:node:n1', 'O=system:nodes']);
    const cert = new X509Certificate(joined.cert);
    expect(cert.verify(new X509Certificate(c.tls.ca).publicKey)).to.equal(true);
    expect(cert.keyUsage).to.deep.equal(['1.3.6.1.5.5.7.3.2']);
    expect(statSync(join(dir, 'kubelet-client.key')).mode & 0o777).to.equal(0o600);
    expect(statSync(joined.kubeconfigPath).mode & 0o777).to.equal(0o600);

    const o = await csr(joined.csrName!);
    expect(o.metadata.name).to.match(/^node-csr-/);
    expect([o.spec.signerName, o.spec.username, o.spec.usages]).to.deep.equal(['kubernetes.io/kube-apiserver-client-kubelet', 'system:bootstrap:abc123', ['digital signature', 'client auth']]);
    expect(o.spec.groups).to.include('system:bootstrappers');
    expect(o.status.conditions.map((x: Json) => [x.type, x.status, x.reason, x.message])).to.deep.equal([['Approved', 'True', 'AutoApproved', 'Auto approving kubelet client certificate after SubjectAccessReview.']]);
    expect(o.status.conditions[0].lastUpdateTime).to.be.a('string');
    expect(Buffer.from(o.status.certificate, 'base64').toString()).to.equal(joined.cert);
    const table = await c.ok(['get', 'csr', joined.csrName!]);
    expect(table).to.match(new RegExp(`${joined.csrName}\\s+\\S+\\s+kubernetes.io/kube-apiserver-client-kubelet\\s+system:bootstrap:abc123\\s+<none>\\s+Approved,Issued`));
  });

  it('with its certificate the node writes its own Node and Lease, but another node\'s are forbidden (Node authorizer + NodeRestriction)', async () => {
    const node = await ApiClient.fromKubeconfig(joined.kubeconfigPath);
    clients.push(node);
    const whoami = await node.create('/apis/authentication.k8s.io/v1/selfsubjectreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });
    expect((whoami.status as Json).userInfo.username).to.equal('system:node:n1');
    expect((whoami.status as Json).userInfo.groups).to.include('system:nodes');
    const nodeObject = (name: string): Json => ({ apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name } } });
    await node.create('/api/v1/nodes', nodeObject('n1'));
    // The node IPAM controller may patch the new Node (its pod CIDR) meanwhile: retry a conflict.
    for (let attempt = 0; ; attempt++) {
      const current = await node.get('/api/v1/nodes/n1');
      try {
        await node.update('/api/v1/nodes/n1/status', { ...current, status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'ok', lastHeartbeatTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }] } });
        break;
      } catch (err) {
        if (!(err instanceof ApiStatusError) || err.code !== 409 || attempt >= 4) throw err;
      }
    }
    const lease = (name: string): Json => ({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace: 'kube-node-lease' }, spec: { holderIdentity: name, leaseDurationSeconds: 40 } });
    await node.create('/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', lease('n1'));
    const refused = async (p: Promise<unknown>): Promise<number> => p.then(() => 200, (err: ApiStatusError) => err.code);
    expect(await refused(node.create('/api/v1/nodes', nodeObject('n2')))).to.equal(403);
    expect(await refused(node.create('/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', lease('n2')))).to.equal(403);
    await admin().create('/api/v1/nodes', nodeObject('n3'));
    const n3 = await admin().get('/api/v1/nodes/n3');
    expect(await refused(node.update('/api/v1/nodes/n3/status', { ...n3, status: { conditions: [] } }))).to.equal(403);
    // A bootstrap token is no node: it may not register one.
    expect(await refused(as({ token: TOKEN }).create('/api/v1/nodes', nodeObject('n4')))).to.equal(403);
  });

  it('a later start reuses the certificate; renewing with the current certificate is approved as selfnodeclient', async () => {
    const dir = join(work, 'n1');
    const again = await bootstrapNodeCredentials({ server: c.url, nodeName: 'n1', dir, ca: c.tls.ca, logger });
    expect([again.reused, again.cert]).to.deep.equal([true, joined.cert]);
    // renewFraction 0: due at once; no token given, so only the current certificate can be used.
    const renewed = await bootstrapNodeCredentials({ server: c.url, nodeName: 'n1', dir, ca: c.tls.ca, logger, renewFraction: 0, timeoutMs: 60_000 });
    expect(renewed.reused).to.equal(false);
    expect(renewed.cert).to.not.equal(joined.cert);
    expect(subjectOf(renewed.cert)).to.deep.equal(['CN=system:node:n1', 'O=system:nodes']);
    const o = await csr(renewed.csrName!);
    expect(o.spec.username).to.equal('system:node:n1');
    expect(o.status.conditions.map((x: Json) => [x.type, x.reason, x.message])).to.deep.equal([['Approved', 'AutoApproved', 'Auto approving self kubelet client certificate after SubjectAccessReview.']]);
    joined = renewed;
  });

  it('refuses tokens that are not bootstrap tokens, expired ones and ones not for authentication; nothing is requested with them', async () => {
    const before = (await csrs()).length;
    for (const token of ['old000.0123456789abcdef', 'abc123.0123456789abcdee', 'noauth.0123456789abcdef', 'not-a-bootstrap-token']) {
      let error: unknown;
      await bootstrapNodeCredentials({ server: c.url, token, nodeName: 'n9', dir: join(work, `n9-${token.slice(0, 6)}`), ca: c.tls.ca, logger, timeoutMs: 10_000 }).catch((e: unknown) => (error = e));
      expect(error, token).to.be.instanceOf(ApiStatusError);
      expect((error as ApiStatusError).code, token).to.equal(401);
    }
    expect((await csrs()).length).to.equal(before);
    let error: unknown;
    await bootstrapNodeCredentials({ server: c.url, nodeName: 'n9', dir: join(work, 'n9-none'), ca: c.tls.ca, logger }).catch((e: unknown) => (error = e));
    expect(error).to.be.instanceOf(NodeBootstrapError);
  });

  it('a bootstrapper asking for system:node:x in system:masters is neither approved nor, once an admin approves it, signed', async () => {
    const bootstrapper = as({ token: TOKEN });
    const bad = await createCsr(bootstrapper, (await makeRequest('system:node:x', ['system:masters'])).csr, 'kubernetes.io/kube-apiserver-client-kubelet', ['digital signature', 'client auth']);
    // A good request made after it: once that one is issued, the approver has seen both.
    const good = await createCsr(bootstrapper, (await makeRequest('system:node:y', ['system:nodes'])).csr, 'kubernetes.io/kube-apiserver-client-kubelet', ['digital signature', 'client auth']);
    await until(async () => Boolean((await csr(good)).status?.certificate), 30_000, 'the good request to be issued');
    await new Promise((r) => setTimeout(r, 1000));
    const pending = await csr(bad);
    expect(pending.status?.conditions).to.equal(undefined);
    expect(pending.status?.certificate).to.equal(undefined);
    expect(await c.ok(['get', 'csr', bad, '--no-headers'])).to.match(/\sPending\s*$/);
    // The bootstrapper cannot approve its own request.
    const self = await bootstrapper.update(`${CSRS}/${bad}/approval`, { ...pending, status: { conditions: [{ type: 'Approved', status: 'True', reason: 'Mine' }] } }).then(() => 200, (err: ApiStatusError) => err.code);
    expect(self).to.equal(403);
    // An admin approves it anyway: the signer refuses it for its content.
    expect(await c.ok(['certificate', 'approve', bad])).to.contain(`certificatesigningrequest.certificates.k8s.io/${bad} approved`);
    await until(async () => ((await csr(bad)).status?.conditions ?? []).some((x: Json) => x.type === 'Failed'), 30_000, 'the signer to refuse the request');
    const refused = await csr(bad);
    expect(refused.status.certificate).to.equal(undefined);
    expect(refused.status.conditions.map((x: Json) => [x.type, x.status, x.reason, x.message])).to.deep.equal([
      ['Approved', 'True', 'KubectlApprove', 'This CSR was approved by kubectl certificate approve.'],
      ['Failed', 'True', 'SignerValidationFailure', 'subject organization is not system:nodes'],
    ]);
    expect(await c.ok(['get', 'csr', bad, '--no-headers'])).to.match(/\sApproved,Failed\s*$/);
  });

  it('kubectl certificate approve issues a manual kube-apiserver-client CSR that then authenticates; deny leaves one unissued', async () => {
    const jane = await makeRequest('jane', ['dev']);
    const manifest = (name: string, request: string): string => JSON.stringify({ apiVersion: 'certificates.k8s.io/v1', kind: 'CertificateSigningRequest', metadata: { name }, spec: { request: b64(request), signerName: 'kubernetes.io/kube-apiserver-client', usages: ['client auth'], expirationSeconds: 86400 } });
    await c.ok(['create', '-f', '-'], manifest('jane', jane.csr));
    expect(await c.ok(['get', 'csr', 'jane', '--no-headers'])).to.match(/^jane\s+\S+\s+kubernetes.io\/kube-apiserver-client\s+kubernetes-admin\s+24h\s+Pending\s*$/);
    expect(await c.ok(['certificate', 'approve', 'jane'])).to.equal('certificatesigningrequest.certificates.k8s.io/jane approved\n');
    await until(async () => Boolean((await csr('jane')).status?.certificate), 30_000, 'jane\'s certificate');
    const issued = Buffer.from((await csr('jane')).status.certificate, 'base64').toString();
    const cert = new X509Certificate(issued);
    expect(Date.parse(cert.validTo) - Date.now()).to.be.within(86_000_000, 86_400_000);
    const whoami = await as({ cert: issued, key: jane.key }).create('/apis/authentication.k8s.io/v1/selfsubjectreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' });
    expect([(whoami.status as Json).userInfo.username, (whoami.status as Json).userInfo.groups]).to.deep.equal(['jane', ['dev', 'system:authenticated']]);

    const bob = await makeRequest('bob');
    await c.ok(['create', '-f', '-'], manifest('bob', bob.csr));
    expect(await c.ok(['certificate', 'deny', 'bob'])).to.equal('certificatesigningrequest.certificates.k8s.io/bob denied\n');
    const denied = await csr('bob');
    expect(denied.status.conditions.map((x: Json) => [x.type, x.status, x.reason, x.message])).to.deep.equal([['Denied', 'True', 'KubectlDeny', 'This CSR was denied by kubectl certificate deny.']]);
    const again = await c.kubectl(['certificate', 'approve', 'bob']);
    expect(again.code).to.not.equal(0);
    expect(again.stderr).to.contain('is already Denied');
    await new Promise((r) => setTimeout(r, 1000));
    expect((await csr('bob')).status.certificate).to.equal(undefined);
    expect(await c.ok(['get', 'csr', 'bob', '--no-headers'])).to.match(/\sDenied\s*$/);
  });

  it('the API records the requester, strips a status sent at create, and keeps approval to the approval subresource', async () => {
    const { csr: request } = await makeRequest('carol');
    const fake = new X509Certificate(joined.cert).toString();
    const name = await createCsr(admin(), request, 'kubernetes.io/kube-apiserver-client', ['client auth'], {
      status: { conditions: [{ type: 'Approved', status: 'True', reason: 'Forged' }], certificate: b64(fake) },
    });
    const created = await csr(name);
    expect(created.status ?? {}).to.deep.equal({});
    expect(created.spec.username).to.equal('kubernetes-admin');
    expect(created.spec.groups).to.include('system:masters');
    // Approved through /status is dropped; spec changes through the object itself are ignored.
    const viaStatus = (await admin().update(`${CSRS}/${name}/status`, { ...created, status: { conditions: [{ type: 'Approved', status: 'True', reason: 'Sneaky' }, { type: 'Custom', status: 'False' }] } })) as Json;
    expect(viaStatus.status.conditions.map((x: Json) => x.type)).to.deep.equal(['Custom']);
    const viaObject = (await admin().update(`${CSRS}/${name}`, { ...viaStatus, spec: { ...viaStatus.spec, username: 'someone-else' } })) as Json;
    expect(viaObject.spec.username).to.equal('kubernetes-admin');
    // Approved and Denied together are invalid.
    const both = await admin().update(`${CSRS}/${name}/approval`, { ...viaObject, status: { conditions: [{ type: 'Approved', status: 'True' }, { type: 'Denied', status: 'True' }] } }).then(() => 200, (err: ApiStatusError) => err.code);
    expect(both).to.equal(422);
    // A request that is no CSR is invalid.
    const invalid = await admin().create(CSRS, { apiVersion: 'certificates.k8s.io/v1', kind: 'CertificateSigningRequest', metadata: { name: 'not-a-csr' }, spec: { request: b64(fake), signerName: 'kubernetes.io/kube-apiserver-client', usages: ['client auth'] } }).then(() => undefined, (err: ApiStatusError) => err);
    expect(invalid?.code).to.equal(422);
    expect(invalid?.message).to.contain('PEM block type must be CERTIFICATE REQUEST');
    await admin().delete(`${CSRS}/${name}`);
  });

  it('discovery lists the approval subresource, as kubectl expects', async () => {
    const list = (await admin().get('/apis/certificates.k8s.io/v1')) as KubeObject & { resources: Json[] };
    expect(list.resources.map((r) => r.name).filter((n: string) => n.startsWith('certificatesigningrequests'))).to.deep.equal(['certificatesigningrequests', 'certificatesigningrequests/status', 'certificatesigningrequests/approval']);
  });
});

/*
 * The published controller contract, on a cluster where nothing else touches CSRs (client
 * certificates only; the admin is system:masters, so the approver's SubjectAccessReviews allow).
 */
describe('the CSR approving and signing controllers pass the controller contract suite', function () {
  this.timeout(120_000);
  const dataDir = mkdtempSync(join(tmpdir(), 'kubernel-csr-contract-'));
  let c: TestCluster | undefined;
  const api = (): ApiClient => new ApiClient({ server: c!.url, ca: c!.tls.ca, cert: c!.tls.cert!, key: c!.tls.key! });
  let round = 0;
  const nodeCsr = async (a: ApiClient, name: string): Promise<void> => {
    const { csr: request } = await newKeyAndRequest({ commonName: `system:node:${name}`, organizations: ['system:nodes'] });
    await a.create(CSRS, { apiVersion: 'certificates.k8s.io/v1', kind: 'CertificateSigningRequest', metadata: { name }, spec: { request: b64(request), signerName: 'kubernetes.io/kube-apiserver-client-kubelet', usages: ['digital signature', 'client auth'] } });
  };
  const approve = async (a: ApiClient, name: string): Promise<void> => {
    const o = await a.get(`${CSRS}/${name}`);
    await a.update(`${CSRS}/${name}/approval`, { ...o, status: { conditions: [{ type: 'Approved', status: 'True', reason: 'Test', message: 'approved by the test' }] } });
  };
  const all = async (a: ApiClient, prefix: string): Promise<Json[]> => ((await a.list(CSRS)).items as Json[]).filter((o) => String(o.metadata.name).startsWith(prefix));
  const isApproved = (o: Json): boolean => ((o.status?.conditions ?? []) as Json[]).some((x) => x.type === 'Approved');

  before(async () => {
    c = await startCluster(['--distribution', join(FIXTURES, 'distributions', 'authn-only.yaml')], dataDir);
  });
  after(async () => {
    await c?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  describeControllerContract(csrApprovingControllerPlugin, {
    api,
    config: { leaderElection: { leaderElect: false } },
    invalidConfigs: [{ config: { workers: 0 }, path: '/workers' }],
    scenario: {
      setup: (a) => nodeCsr(a, 'approve-0'),
      converged: async (a) => (await all(a, 'approve-')).every(isApproved),
      perturb: (a) => nodeCsr(a, `approve-${++round}`),
      watched: [CSRS],
      contended: [`${CSRS}/approve-0`],
    },
  });

  describeControllerContract(csrSigningControllerPlugin, {
    api,
    config: { clusterSigningCertFile: join(dataDir, 'pki', 'ca.crt'), clusterSigningKeyFile: join(dataDir, 'pki', 'ca.key'), leaderElection: { leaderElect: false } },
    invalidConfigs: [{ config: { clusterSigningDurationSeconds: 60 }, path: '/clusterSigningDurationSeconds' }, { config: { signerNames: ['example.com/mine'] }, path: '/signerNames/0' }],
    scenario: {
      async setup(a) {
        await nodeCsr(a, 'sign-0');
        await approve(a, 'sign-0');
      },
      converged: async (a) => (await all(a, 'sign-')).every((o) => Boolean(o.status?.certificate)),
      async perturb(a) {
        const name = `sign-${++round}`;
        await nodeCsr(a, name);
        await approve(a, name);
      },
      watched: [CSRS],
      contended: [`${CSRS}/sign-0`],
    },
  });
});
