import 'reflect-metadata'; // @peculiar/x509 (tsyringe) needs it loaded first
import { X509Certificate, webcrypto } from 'node:crypto';
import { expect } from 'chai';
import * as x509 from '@peculiar/x509';
import { ApiStatusError, type Logger } from '@kubernel/sdk';
import {
  approvalState,
  apiServerClientUsagesProblem,
  isApproved,
  KUBE_APISERVER_CLIENT_KUBELET_SIGNER,
  KUBE_APISERVER_CLIENT_SIGNER,
  KUBELET_SERVING_SIGNER,
  kubeletClientProblem,
  kubeletServingProblem,
  parseCsr,
  type Csr,
} from './csr.js';
import { approvalReview, CsrApprover, csrApprovingControllerPlugin, isNodeClientCert, isSelfNodeClientCert } from './csr-approving.js';
import { BACKDATE_MS, certificateTtlMs, CsrSigner, csrSigningControllerPlugin, keyUsagesOf, loadSigningAuthority, signCertificate, signingFiles, type SigningAuthority } from './csr-signing.js';
import { cleanCsrs, csrCleanupReason } from './csr-cleaner.js';
import { formatTime } from './util.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const silent = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Logger;
const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const RSA = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' } as const;
const DAY = 86_400_000;
const NODE_CLIENT = ['digital signature', 'client auth'];

const pem = (label: string, der: ArrayBuffer): string => `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;

/** A CA (certificate and PKCS#8 key, PEM) with the given key algorithm. */
async function makeCa(alg: typeof EC | typeof RSA = EC, validDays = 3650): Promise<{ cert: string; key: string }> {
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=test-ca',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + validDays * DAY),
    keys: keys as never,
    signingAlgorithm: alg,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true), await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as never)],
  });
  return { cert: cert.toString('pem'), key: pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)) };
}

/** A PEM certificate request for `subject` (e.g. `[{ O: ['system:nodes'] }, { CN: ['system:node:n1'] }]`) with optional SANs. */
async function makeRequest(subject: Array<Record<string, string[]>>, sans: Array<{ type: 'dns' | 'ip' | 'email' | 'url'; value: string }> = []): Promise<string> {
  const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: subject, keys: keys as never, signingAlgorithm: EC, extensions: sans.length ? [new x509.SubjectAlternativeNameExtension(sans)] : [] });
  return csr.toString('pem');
}

const nodeSubject = (name = 'n1', orgs = ['system:nodes']): Array<Record<string, string[]>> => [...orgs.map((o) => ({ O: [o] })), { CN: [`system:node:${name}`] }];

let serial = 0;
function csrObject(request: string, o: { signer?: string; usages?: string[]; username?: string; groups?: string[]; conditions?: Json[]; certificate?: string; expirationSeconds?: number; created?: number } = {}): Csr {
  return {
    apiVersion: 'certificates.k8s.io/v1',
    kind: 'CertificateSigningRequest',
    metadata: { name: `csr-${++serial}`, uid: `uid-${serial}`, resourceVersion: '5', creationTimestamp: formatTime(o.created ?? Date.now()) },
    spec: {
      request: Buffer.from(request).toString('base64'),
      signerName: o.signer ?? KUBE_APISERVER_CLIENT_KUBELET_SIGNER,
      usages: o.usages ?? NODE_CLIENT,
      username: o.username ?? 'system:bootstrap:abcdef',
      groups: o.groups ?? ['system:bootstrappers', 'system:authenticated'],
      ...(o.expirationSeconds !== undefined ? { expirationSeconds: o.expirationSeconds } : {}),
    },
    status: { ...(o.conditions ? { conditions: o.conditions } : {}), ...(o.certificate ? { certificate: Buffer.from(o.certificate).toString('base64') } : {}) },
  };
}

const approved = [{ type: 'Approved', status: 'True', reason: 'AutoApproved', message: 'ok', lastUpdateTime: formatTime() }];

/** An API double: SubjectAccessReviews answered by `allow`, writes recorded. */
class FakeApi {
  readonly reviews: Json[] = [];
  readonly updates: Array<{ path: string; body: Json }> = [];
  readonly deletes: Array<{ path: string; body: Json }> = [];
  allow: (subresource: string) => boolean = () => true;
  failUpdate?: ApiStatusError;

  async create<T>(path: string, body: Json): Promise<T> {
    expect(path).to.equal('/apis/authorization.k8s.io/v1/subjectaccessreviews');
    this.reviews.push(body);
    return { ...body, status: { allowed: this.allow(body.spec.resourceAttributes.subresource) } } as T;
  }

  async update<T>(path: string, body: Json): Promise<T> {
    if (this.failUpdate) throw this.failUpdate;
    this.updates.push({ path, body });
    return body as T;
  }

  async request<T>(method: string, path: string, options: { body?: Json } = {}): Promise<T> {
    expect(method).to.equal('DELETE');
    this.deletes.push({ path, body: options.body ?? {} });
    return {} as T;
  }
}

const cache = (...items: Csr[]): { get: (k: string) => Csr | undefined; list: () => Csr[] } => ({ get: (k) => items.find((c) => c.metadata?.name === k), list: () => items });
const key = (csr: Csr): { namespace: string; name: string } => ({ namespace: '', name: String(csr.metadata?.name) });

describe('CSR rules (Kubernetes certificates helpers)', () => {
  it('parses subject and SANs of a request; refuses other PEM blocks', async () => {
    const req = parseCsr(await makeRequest(nodeSubject('n1'), [{ type: 'dns', value: 'n1.example' }, { type: 'ip', value: '10.0.0.1' }]));
    expect([req.commonName, req.organizations, req.dnsNames, req.ipAddresses]).to.deep.equal(['system:node:n1', ['system:nodes'], ['n1.example'], ['10.0.0.1']]);
    const caPem = (await makeCa()).cert;
    expect(() => parseCsr(caPem)).to.throw('PEM block type must be CERTIFICATE REQUEST');
  });

  it('accepts exactly the kubelet client shape', async () => {
    const good = parseCsr(await makeRequest(nodeSubject()));
    expect(kubeletClientProblem(good, NODE_CLIENT)).to.equal(undefined);
    expect(kubeletClientProblem(good, ['key encipherment', 'client auth', 'digital signature'])).to.equal(undefined);
    const cases: Array<[Array<Record<string, string[]>>, Array<{ type: 'dns' | 'ip' | 'email' | 'url'; value: string }>, string[], string]> = [
      [nodeSubject('n1', ['system:masters']), [], NODE_CLIENT, 'subject organization is not system:nodes'],
      [nodeSubject('n1', ['system:nodes', 'system:masters']), [], NODE_CLIENT, 'subject organization is not system:nodes'],
      [nodeSubject('n1', []), [], NODE_CLIENT, 'subject organization is not system:nodes'],
      [nodeSubject(), [{ type: 'dns', value: 'x' }], NODE_CLIENT, 'DNS subjectAltNames are not allowed'],
      [nodeSubject(), [{ type: 'email', value: 'a@b.c' }], NODE_CLIENT, 'Email subjectAltNames are not allowed'],
      [nodeSubject(), [{ type: 'ip', value: '10.0.0.1' }], NODE_CLIENT, 'IP subjectAltNames are not allowed'],
      [nodeSubject(), [{ type: 'url', value: 'spiffe://x' }], NODE_CLIENT, 'URI subjectAltNames are not allowed'],
      [[{ O: ['system:nodes'] }, { CN: ['jane'] }], [], NODE_CLIENT, 'subject common name does not begin with system:node:'],
      [nodeSubject(), [], ['digital signature', 'client auth', 'server auth'], 'usages did not match [client auth digital signature key encipherment]'],
      [nodeSubject(), [], ['client auth'], 'usages did not match [client auth digital signature key encipherment]'],
    ];
    for (const [subject, sans, usages, problem] of cases) expect(kubeletClientProblem(parseCsr(await makeRequest(subject, sans)), usages), problem).to.equal(problem);
  });

  it('accepts exactly the kubelet serving shape', async () => {
    const serving = ['digital signature', 'server auth'];
    expect(kubeletServingProblem(parseCsr(await makeRequest(nodeSubject(), [{ type: 'dns', value: 'n1' }])), serving)).to.equal(undefined);
    expect(kubeletServingProblem(parseCsr(await makeRequest(nodeSubject())), serving)).to.equal('DNS or IP subjectAltName is required');
    expect(kubeletServingProblem(parseCsr(await makeRequest(nodeSubject(), [{ type: 'ip', value: '10.0.0.1' }])), NODE_CLIENT)).to.equal('usages did not match [digital signature key encipherment server auth]');
  });

  it('checks kube-apiserver client usages', () => {
    expect(apiServerClientUsagesProblem(['client auth'])).to.equal(undefined);
    expect(apiServerClientUsagesProblem(['digital signature', 'key encipherment', 'client auth'])).to.equal(undefined);
    expect(apiServerClientUsagesProblem(['digital signature'])).to.equal('missing required usage for client certificate: client auth');
    expect(apiServerClientUsagesProblem(['client auth', 'server auth'])).to.equal('invalid usage for client certificate: server auth');
  });

  it('reads approval the way Kubernetes does (Denied wins)', async () => {
    const r = await makeRequest(nodeSubject());
    expect(approvalState(csrObject(r))).to.deep.equal({ approved: false, denied: false });
    expect(isApproved(csrObject(r, { conditions: approved }))).to.equal(true);
    expect(isApproved(csrObject(r, { conditions: [...approved, { type: 'Denied', status: 'True' }] }))).to.equal(false);
  });
});

describe('CSR approving: recognizers and SubjectAccessReviews', () => {
  let request: string;
  before(async () => {
    request = await makeRequest(nodeSubject('n1'));
  });

  it('recognises a bootstrapper asking for a node client certificate (nodeclient), and a node renewing its own (selfnodeclient)', async () => {
    const bootstrap = csrObject(request);
    const parsed = parseCsr(request);
    expect([isNodeClientCert(bootstrap, parsed), isSelfNodeClientCert(bootstrap, parsed)]).to.deep.equal([true, false]);
    const self = csrObject(request, { username: 'system:node:n1', groups: ['system:nodes'] });
    expect([isNodeClientCert(self, parsed), isSelfNodeClientCert(self, parsed)]).to.deep.equal([true, true]);
    const otherNode = csrObject(request, { username: 'system:node:n2', groups: ['system:nodes'] });
    expect(isSelfNodeClientCert(otherNode, parsed)).to.equal(false);
    expect(isNodeClientCert(csrObject(request, { signer: KUBE_APISERVER_CLIENT_SIGNER }), parsed)).to.equal(false);
    expect(isNodeClientCert(csrObject(request, { usages: ['client auth'] }), parsed)).to.equal(false);
  });

  it('asks a SubjectAccessReview for the requester, as the CSR records it', () => {
    const csr = csrObject(request);
    csr.spec!.uid = 'u-1';
    csr.spec!.extra = { scopes: ['a'] };
    expect(approvalReview(csr, 'nodeclient')).to.deep.equal({
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: { user: 'system:bootstrap:abcdef', uid: 'u-1', groups: ['system:bootstrappers', 'system:authenticated'], extra: { scopes: ['a'] }, resourceAttributes: { group: 'certificates.k8s.io', resource: 'certificatesigningrequests', verb: 'create', subresource: 'nodeclient', version: '*' } },
    });
  });

  it('approves through the approval subresource with the AutoApproved condition when the review allows', async () => {
    const api = new FakeApi();
    const csr = csrObject(request);
    const result = await new CsrApprover({ api: api as never, csrs: cache(csr), logger: silent }).reconcile(key(csr));
    expect(result).to.equal(undefined);
    expect(api.reviews.map((r) => r.spec.resourceAttributes.subresource)).to.deep.equal(['nodeclient']);
    expect(api.updates.map((u) => u.path)).to.deep.equal([`/apis/certificates.k8s.io/v1/certificatesigningrequests/${csr.metadata!.name}/approval`]);
    expect(api.updates[0]!.body.status.conditions).to.deep.equal([{ type: 'Approved', status: 'True', reason: 'AutoApproved', message: 'Auto approving kubelet client certificate after SubjectAccessReview.' }]);
    expect(api.updates[0]!.body.metadata.resourceVersion).to.equal('5');
  });

  it('tries selfnodeclient first for a node renewing, then nodeclient', async () => {
    const api = new FakeApi();
    api.allow = (sub) => sub === 'nodeclient';
    const csr = csrObject(request, { username: 'system:node:n1', groups: ['system:nodes'] });
    await new CsrApprover({ api: api as never, csrs: cache(csr), logger: silent }).reconcile(key(csr));
    expect(api.reviews.map((r) => r.spec.resourceAttributes.subresource)).to.deep.equal(['selfnodeclient', 'nodeclient']);
    expect(api.updates[0]!.body.status.conditions[0].message).to.equal('Auto approving kubelet client certificate after SubjectAccessReview.');
    const self = new FakeApi();
    await new CsrApprover({ api: self as never, csrs: cache(csr), logger: silent }).reconcile(key(csr));
    expect(self.updates[0]!.body.status.conditions[0].message).to.equal('Auto approving self kubelet client certificate after SubjectAccessReview.');
  });

  it('leaves a recognised request pending (and revisits it) when the review does not allow it', async () => {
    const api = new FakeApi();
    api.allow = () => false;
    const csr = csrObject(request);
    expect(await new CsrApprover({ api: api as never, csrs: cache(csr), logger: silent }).reconcile(key(csr))).to.deep.equal({ requeue: true });
    expect(api.updates).to.deep.equal([]);
  });

  it('never looks at requests it does not recognise (system:masters, another signer) nor at decided or issued ones', async () => {
    const masters = csrObject(await makeRequest(nodeSubject('x', ['system:masters'])));
    const others = [
      masters,
      csrObject(request, { signer: KUBE_APISERVER_CLIENT_SIGNER }),
      csrObject(request, { conditions: approved }),
      csrObject(request, { conditions: [{ type: 'Denied', status: 'True' }] }),
      csrObject(request, { certificate: (await makeCa()).cert }),
    ];
    const api = new FakeApi();
    const approver = new CsrApprover({ api: api as never, csrs: cache(...others), logger: silent });
    for (const c of others) expect(await approver.reconcile(key(c))).to.equal(undefined);
    expect(api.reviews).to.deep.equal([]);
    expect(api.updates).to.deep.equal([]);
  });

  it('retries on a conflict (the error propagates to the work queue)', async () => {
    const api = new FakeApi();
    api.failUpdate = new ApiStatusError(409, 'Conflict', 'modified');
    const csr = csrObject(request);
    let thrown: unknown;
    try {
      await new CsrApprover({ api: api as never, csrs: cache(csr), logger: silent }).reconcile(key(csr));
    } catch (err) {
      thrown = err;
    }
    expect((thrown as ApiStatusError).code).to.equal(409);
  });

  it('is a leader-elected controller plugin named as Kubernetes names it', () => {
    expect([csrApprovingControllerPlugin.id, csrApprovingControllerPlugin.kind]).to.deep.equal(['certificatesigningrequest-approving-controller', 'controller']);
    expect((csrApprovingControllerPlugin.configSchema.properties as Json).leaderElection).to.be.an('object');
  });
});

describe('CSR signing: the signer and its rules', () => {
  let ca: { cert: string; key: string };
  let authority: SigningAuthority;
  before(async () => {
    ca = await makeCa();
    authority = await loadSigningAuthority(ca.cert, ca.key);
  });

  it('computes durations as Kubernetes: the maximum, shortened by expirationSeconds, never below 10 minutes', () => {
    const year = 365 * DAY;
    expect(certificateTtlMs(undefined, year)).to.equal(year);
    expect(certificateTtlMs(3600, year)).to.equal(3_600_000);
    expect(certificateTtlMs(60, year)).to.equal(600_000);
    expect(certificateTtlMs(10 * 365 * 86400, year)).to.equal(year);
  });

  it('maps usages to key usage flags and extended key usages', () => {
    expect(keyUsagesOf(['digital signature', 'key encipherment', 'client auth'])).to.deep.equal({ keyUsage: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, extended: ['1.3.6.1.5.5.7.3.2'] });
    expect(keyUsagesOf(['server auth', 'client auth'])).to.deep.equal({ keyUsage: 0, extended: ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'] });
    expect(() => keyUsagesOf(['bogus'])).to.throw('unrecognized usage: bogus');
  });

  it('refuses a key that does not belong to the CA certificate', async () => {
    const other = await makeCa();
    let error: Error | undefined;
    await loadSigningAuthority(ca.cert, other.key).catch((e: Error) => (error = e));
    expect(error?.message).to.equal('the signing key does not belong to the signing certificate');
  });

  it('issues a client certificate: subject, issuer, CA signature, key usages, backdated notBefore, one year', async () => {
    const now = Date.now();
    const request = await makeRequest(nodeSubject('n1'));
    const cert = new X509Certificate(await signCertificate(authority, parseCsr(request), NODE_CLIENT, 365 * DAY, now));
    expect(cert.subject.split('\n').sort()).to.deep.equal(['CN=system:node:n1', 'O=system:nodes']);
    expect(cert.issuer).to.equal('CN=test-ca');
    expect(cert.verify(new X509Certificate(ca.cert).publicKey)).to.equal(true);
    expect(cert.ca).to.equal(false);
    expect(cert.keyUsage).to.deep.equal(['1.3.6.1.5.5.7.3.2']);
    expect(cert.subjectAltName).to.equal(undefined);
    expect(Date.parse(cert.validFrom)).to.equal(Math.floor((now - BACKDATE_MS) / 1000) * 1000);
    expect(Date.parse(cert.validTo)).to.equal(Math.floor((now - BACKDATE_MS + 365 * DAY) / 1000) * 1000);
    // The certificate is for the request's key.
    expect(cert.publicKey.export({ format: 'der', type: 'spki' }).equals(Buffer.from(parseCsr(request).request.publicKey.rawData))).to.equal(true);
  });

  it('gives short certificates exactly their duration from now, and never outlives the CA', async () => {
    const now = Date.now();
    const short = new X509Certificate(await signCertificate(authority, parseCsr(await makeRequest(nodeSubject())), NODE_CLIENT, 3_600_000, now));
    expect(Date.parse(short.validTo)).to.equal(Math.floor((now + 3_600_000) / 1000) * 1000);
    const young = await makeCa(EC, 30);
    const capped = new X509Certificate(await signCertificate(await loadSigningAuthority(young.cert, young.key), parseCsr(await makeRequest(nodeSubject())), NODE_CLIENT, 365 * DAY, now));
    expect(capped.validTo).to.equal(new X509Certificate(young.cert).validTo);
  });

  it('issues serving certificates with the requested SANs, and signs with an RSA CA too', async () => {
    const rsa = await makeCa(RSA);
    const cert = new X509Certificate(await signCertificate(await loadSigningAuthority(rsa.cert, rsa.key), parseCsr(await makeRequest(nodeSubject(), [{ type: 'dns', value: 'n1.example' }, { type: 'ip', value: '10.1.2.3' }])), ['digital signature', 'server auth'], DAY));
    expect(cert.subjectAltName).to.equal('DNS:n1.example, IP Address:10.1.2.3');
    expect(cert.keyUsage).to.deep.equal(['1.3.6.1.5.5.7.3.1']);
    expect(cert.verify(new X509Certificate(rsa.cert).publicKey)).to.equal(true);
    expect(new X509Certificate(rsa.cert).publicKey.asymmetricKeyType).to.equal('rsa');
  });

  const signer = (api: FakeApi, ...items: Csr[]): CsrSigner => new CsrSigner({ api: api as never, csrs: cache(...items), authority, maxTtlMs: 365 * DAY, logger: silent });

  it('signs an approved kubelet client request through the status subresource', async () => {
    const api = new FakeApi();
    const csr = csrObject(await makeRequest(nodeSubject('n1')), { conditions: approved, expirationSeconds: 3600 });
    await new CsrSigner({ api: api as never, csrs: cache(csr), authority, maxTtlMs: 365 * DAY, logger: silent }).reconcile(key(csr));
    expect(api.updates.map((u) => u.path)).to.deep.equal([`/apis/certificates.k8s.io/v1/certificatesigningrequests/${csr.metadata!.name}/status`]);
    const body = api.updates[0]!.body;
    expect(body.status.conditions).to.deep.equal(approved);
    const cert = new X509Certificate(Buffer.from(body.status.certificate, 'base64').toString('utf8'));
    expect(cert.subject.split('\n').sort()).to.deep.equal(['CN=system:node:n1', 'O=system:nodes']);
    expect(Date.parse(cert.validTo) - Date.now()).to.be.within(3_500_000, 3_600_000);
  });

  it('leaves alone what is not approved, denied, failed, issued, of another signer, or of a signer not served', async () => {
    const r = await makeRequest(nodeSubject());
    const items = [
      csrObject(r),
      csrObject(r, { conditions: [...approved, { type: 'Denied', status: 'True' }] }),
      csrObject(r, { conditions: [...approved, { type: 'Failed', status: 'True', reason: 'X' }] }),
      csrObject(r, { conditions: approved, certificate: ca.cert }),
      csrObject(r, { conditions: approved, signer: 'example.com/custom' }),
    ];
    const api = new FakeApi();
    const s = signer(api, ...items);
    for (const c of items) await s.reconcile(key(c));
    const servingOnly = new CsrSigner({ api: api as never, csrs: cache(csrObject(r, { conditions: approved })), authority, signerNames: [KUBELET_SERVING_SIGNER], maxTtlMs: DAY, logger: silent });
    await servingOnly.reconcile({ namespace: '', name: `csr-${serial}` });
    expect(api.updates).to.deep.equal([]);
  });

  it('marks requests that break their signer\'s rules Failed (SignerValidationFailure), without a certificate', async () => {
    const cases: Array<[Csr, string]> = [
      [csrObject(await makeRequest(nodeSubject('x', ['system:masters'])), { conditions: approved }), 'subject organization is not system:nodes'],
      [csrObject(await makeRequest([{ O: ['system:nodes'] }, { CN: ['jane'] }]), { conditions: approved }), 'subject common name does not begin with system:node:'],
      [csrObject(await makeRequest(nodeSubject()), { conditions: approved, usages: ['digital signature', 'client auth', 'server auth'] }), 'usages did not match [client auth digital signature key encipherment]'],
      [csrObject(await makeRequest([{ CN: ['jane'] }]), { conditions: approved, signer: KUBE_APISERVER_CLIENT_SIGNER, usages: ['client auth', 'server auth'] }), 'invalid usage for client certificate: server auth'],
      [csrObject(await makeRequest([{ O: ['system:masters'] }, { CN: ['mallory'] }]), { conditions: approved, signer: KUBE_APISERVER_CLIENT_SIGNER, usages: ['client auth'] }), 'subject organization system:masters is not allowed for this signer'],
      [csrObject(await makeRequest(nodeSubject()), { conditions: approved, signer: KUBELET_SERVING_SIGNER, usages: ['digital signature', 'server auth'] }), 'DNS or IP subjectAltName is required'],
    ];
    for (const [csr, message] of cases) {
      const api = new FakeApi();
      await signer(api, csr).reconcile(key(csr));
      expect(api.updates.length, message).to.equal(1);
      const status = api.updates[0]!.body.status;
      expect(status.certificate, message).to.equal(undefined);
      const failed = status.conditions.at(-1);
      expect({ ...failed, lastUpdateTime: undefined }).to.deep.equal({ type: 'Failed', status: 'True', reason: 'SignerValidationFailure', message, lastUpdateTime: undefined });
      expect(failed.lastUpdateTime).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    }
  });

  it('signs a kube-apiserver-client request for an ordinary user', async () => {
    const api = new FakeApi();
    const csr = csrObject(await makeRequest([{ O: ['dev'] }, { CN: ['jane'] }]), { conditions: approved, signer: KUBE_APISERVER_CLIENT_SIGNER, usages: ['client auth'] });
    await signer(api, csr).reconcile(key(csr));
    const cert = new X509Certificate(Buffer.from(api.updates[0]!.body.status.certificate, 'base64').toString('utf8'));
    expect(cert.subject.split('\n').sort()).to.deep.equal(['CN=jane', 'O=dev']);
  });

  it('refuses a request whose signature does not verify', async () => {
    const good = await makeRequest(nodeSubject());
    const der = Buffer.from(good.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
    der[der.length - 1] ^= 0x01; // the last byte of the signature
    const tampered = pem('CERTIFICATE REQUEST', der.buffer.slice(der.byteOffset, der.byteOffset + der.length));
    const api = new FakeApi();
    const csr = csrObject(tampered, { conditions: approved });
    await signer(api, csr).reconcile(key(csr));
    expect(api.updates[0]!.body.status.conditions.at(-1).message).to.equal('unable to verify certificate request signature');
    expect(api.updates[0]!.body.status.certificate).to.equal(undefined);
  });

  it('defaults to the cluster CA two levels above its data dir', () => {
    expect(signingFiles({}, '/var/lib/kubernel/plugins/certificatesigningrequest-signing-controller')).to.deep.equal({ cert: '/var/lib/kubernel/pki/ca.crt', key: '/var/lib/kubernel/pki/ca.key' });
    expect(signingFiles({ clusterSigningCertFile: '/a.crt', clusterSigningKeyFile: '/a.key' }, '/x/plugins/y')).to.deep.equal({ cert: '/a.crt', key: '/a.key' });
    const props = csrSigningControllerPlugin.configSchema.properties as Json;
    expect([csrSigningControllerPlugin.id, props.clusterSigningDurationSeconds.default]).to.deep.equal(['certificatesigningrequest-signing-controller', 31_536_000]);
  });
});

describe('CSR cleaner', () => {
  const T = Math.floor(Date.now() / 1000) * 1000;
  const HOUR = 3_600_000;
  let r: string;
  let expired: string;
  let valid: string;
  before(async () => {
    r = await makeRequest(nodeSubject());
    const ca = await makeCa();
    const authority = await loadSigningAuthority(ca.cert, ca.key);
    valid = await signCertificate(authority, parseCsr(r), NODE_CLIENT, 365 * DAY);
    expired = await signCertificate(authority, parseCsr(r), NODE_CLIENT, 600_000, Date.now() - DAY);
  });
  const at = (ms: number): string => formatTime(ms);

  it('keeps and removes requests on Kubernetes\' deadlines', () => {
    const cases: Array<[string, Csr, string | undefined]> = [
      ['pending 23 h', csrObject(r, { created: T - 23 * HOUR }), undefined],
      ['pending 25 h', csrObject(r, { created: T - 25 * HOUR }), 'pending for more than 24 hours'],
      ['approved 2 h ago, not issued', csrObject(r, { created: T - 2 * HOUR, conditions: [{ type: 'Approved', status: 'True', lastUpdateTime: at(T - 2 * HOUR) }] }), undefined],
      ['issued 59 min ago', csrObject(r, { created: T - HOUR, conditions: [{ type: 'Approved', status: 'True', lastUpdateTime: at(T - 59 * 60_000) }], certificate: valid }), undefined],
      ['issued 61 min ago', csrObject(r, { created: T - 2 * HOUR, conditions: [{ type: 'Approved', status: 'True', lastUpdateTime: at(T - 61 * 60_000) }], certificate: valid }), 'issued more than an hour ago'],
      ['denied 61 min ago', csrObject(r, { created: T - 2 * HOUR, conditions: [{ type: 'Denied', status: 'True', lastUpdateTime: at(T - 61 * 60_000) }] }), 'denied more than an hour ago'],
      ['denied 30 min ago', csrObject(r, { created: T - 2 * HOUR, conditions: [{ type: 'Denied', status: 'True', lastUpdateTime: at(T - 30 * 60_000) }] }), undefined],
      ['failed 61 min ago', csrObject(r, { created: T - 2 * HOUR, conditions: [{ type: 'Approved', status: 'True', lastUpdateTime: at(T - 2 * HOUR) }, { type: 'Failed', status: 'True', lastUpdateTime: at(T - 61 * 60_000) }] }), 'failed more than an hour ago'],
      ['issued just now with an expired certificate', csrObject(r, { created: T, conditions: [{ type: 'Approved', status: 'True', lastUpdateTime: at(T) }], certificate: expired }), 'its certificate has expired'],
    ];
    for (const [what, csr, reason] of cases) expect(csrCleanupReason(csr, T), what).to.equal(reason);
  });

  it('deletes with the uid as a precondition, only what is due', async () => {
    const old = csrObject(r, { created: T - 25 * HOUR });
    const fresh = csrObject(r, { created: T });
    const api = new FakeApi();
    expect(await cleanCsrs(api as never, cache(old, fresh), silent, T)).to.deep.equal([old.metadata!.name]);
    expect(api.deletes).to.deep.equal([{ path: `/apis/certificates.k8s.io/v1/certificatesigningrequests/${old.metadata!.name}`, body: { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: old.metadata!.uid } } }]);
  });
});
