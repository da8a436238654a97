import { expect } from 'chai';
import { webcrypto, randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import 'reflect-metadata'; // @peculiar/x509 (tsyringe) needs it loaded first
import * as x509 from '@peculiar/x509';
import { AdmissionDenied, ApiClient, ApiStatusError, type AdmissionRequest, type ApiObject, type KubeObject } from '@kubernel/sdk';
import { admissionRequest, describePluginContract, startPlugin } from '@kubernel/sdk/testing';
import {
  endpointsServiceResolver,
  isWebhookExempt,
  mutatingWebhookPlugin,
  ruleMatches,
  validatingWebhookPlugin,
  WebhookDispatcher,
  type AdmissionWebhook,
  type WebhookCallEvent,
  type WebhookDispatcherOptions,
  type WebhookRule,
} from './webhook.js';

x509.cryptoProvider.set(webcrypto as never);

// ---------------------------------------------------------------------------------------------
// PKI: a CA that signs the webhook server's certificate, and another CA nobody trusts.

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const pem = (label: string, der: ArrayBuffer): string => `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;
const serial = (): string => randomBytes(8).toString('hex').replace(/^[89a-f]/, '1');
const validity = { notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86_400_000) };

async function makeCa(name: string): Promise<{ cert: x509.X509Certificate; keys: webcrypto.CryptoKeyPair; pem: string }> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${name}`,
    ...validity,
    keys,
    signingAlgorithm: ALG,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature, true)],
  });
  return { cert, keys, pem: cert.toString('pem') + '\n' };
}

async function makeServing(ca: { cert: x509.X509Certificate; keys: webcrypto.CryptoKeyPair }): Promise<{ cert: string; key: string }> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: 'CN=webhook',
    issuer: ca.cert.subject,
    ...validity,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }, { type: 'dns', value: 'hooks.webhooks.svc' }]),
    ],
  });
  return { cert: cert.toString('pem') + '\n', key: pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)) };
}

// ---------------------------------------------------------------------------------------------
// A webhook server: routes by path; each handler gets the AdmissionReview and answers a response.

/** What the webhook server received (the fields the tests read are typed). */
interface Review {
  apiVersion: string;
  kind: string;
  request: { uid: string; object: { metadata: { labels: Record<string, string>; annotations?: unknown }; spec: { containers: unknown[] } }; [field: string]: unknown };
}
type Handler = (review: Review, url: URL) => unknown | Promise<unknown>;
const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const allow = (review: Review, extra: Record<string, unknown> = {}): unknown => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  response: { uid: review.request.uid, allowed: true, ...extra },
});
const deny = (review: Review, status?: Record<string, unknown>): unknown => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  response: { uid: review.request.uid, allowed: false, ...(status ? { status } : {}) },
});
const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64');

let server: HttpsServer;
let port = 0;
let caBundle = '';
let otherCaBundle = '';
const routes = new Map<string, Handler>();
const received = new Map<string, Review[]>();
let inFlight = 0;
let maxInFlight = 0;
/** Wraps a handler so that `maxInFlight` counts how many of the wrapped ones ran at once. */
const tracked = (handler: Handler): Handler => async (review, u) => {
  inFlight++;
  maxInFlight = Math.max(maxInFlight, inFlight);
  try {
    return await handler(review, u);
  } finally {
    inFlight--;
  }
};

const url = (path: string): string => `https://127.0.0.1:${port}${path}`;
const calls = (path: string): Review[] => received.get(path) ?? [];

function webhook(name: string, path: string, over: Partial<AdmissionWebhook> = {}): AdmissionWebhook {
  return {
    name,
    clientConfig: { url: url(path), caBundle },
    rules: [{ operations: ['*'], apiGroups: ['*'], apiVersions: ['*'], resources: ['*/*'] }],
    sideEffects: 'None',
    admissionReviewVersions: ['v1'],
    ...over,
  };
}
const configuration = (name: string, ...webhooks: AdmissionWebhook[]): KubeObject => ({ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name }, webhooks });

const dispatchers: WebhookDispatcher[] = [];
function dispatcher(type: 'mutating' | 'validating', configs: KubeObject[], over: Partial<WebhookDispatcherOptions> = {}): WebhookDispatcher {
  const namespaces: Record<string, Record<string, string>> = { default: {}, prod: { env: 'prod', team: 'a' }, dev: { env: 'dev' } };
  const d = new WebhookDispatcher({ type, configurations: () => configs, namespaceLabels: (ns) => namespaces[ns], ...over });
  dispatchers.push(d);
  return d;
}

const pod = (labels: Record<string, string> = {}, namespace = 'default'): ApiObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace, labels }, spec: { containers: [{ name: 'c', image: 'nginx' }] } });

async function refusal(p: Promise<unknown>): Promise<AdmissionDenied> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(AdmissionDenied);
    return err as AdmissionDenied;
  }
  throw new Error('expected the request to be refused');
}

before(async function () {
  this.timeout(20_000);
  const ca = await makeCa('webhook-ca');
  const other = await makeCa('untrusted-ca');
  caBundle = Buffer.from(ca.pem).toString('base64');
  otherCaBundle = Buffer.from(other.pem).toString('base64');
  const serving = await makeServing(ca);
  server = createHttpsServer({ cert: serving.cert, key: serving.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const u = new URL(req.url ?? '/', 'https://x');
        const review = JSON.parse(Buffer.concat(chunks).toString()) as Review;
        received.set(u.pathname, [...calls(u.pathname), review]);
        const handler = routes.get(u.pathname) ?? ((r: Review) => allow(r));
        const answer = await handler(review, u);
        if (res.destroyed) return;
        if (typeof answer === 'string') res.writeHead(200, { 'content-type': 'application/json' }).end(answer);
        else if (answer instanceof Error) res.writeHead(500).end(answer.message);
        else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
      })();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  for (const d of dispatchers) d.close();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

beforeEach(() => {
  routes.clear();
  received.clear();
  inFlight = 0;
  maxInFlight = 0;
});

// ---------------------------------------------------------------------------------------------

describe('webhook rules (rules.Matcher)', () => {
  const req = (over: Partial<AdmissionRequest>): AdmissionRequest => admissionRequest({ object: pod(), ...over });
  const r = (over: Partial<WebhookRule>): WebhookRule => ({ operations: ['*'], apiGroups: ['*'], apiVersions: ['*'], resources: ['*'], ...over });
  const deploymentScale = req({ resource: { group: 'apps', version: 'v1', resource: 'deployments' }, kind: { group: 'autoscaling', version: 'v1', kind: 'Scale' }, subresource: 'scale', operation: 'UPDATE' });
  const podStatus = req({ subresource: 'status', operation: 'UPDATE' });
  const node = req({ resource: { group: '', version: 'v1', resource: 'nodes' }, kind: { group: '', version: 'v1', kind: 'Node' }, namespace: '' });
  const namespace = req({ resource: { group: '', version: 'v1', resource: 'namespaces' }, kind: { group: '', version: 'v1', kind: 'Namespace' }, namespace: 'team-a', name: 'team-a' });
  const cases: Array<[string, WebhookRule, AdmissionRequest, boolean]> = [
    ['CREATE matches CREATE', r({ operations: ['CREATE'] }), req({}), true],
    ['UPDATE does not match CREATE', r({ operations: ['UPDATE'] }), req({}), false],
    ['* matches DELETE', r({ operations: ['*'] }), req({ operation: 'DELETE' }), true],
    ['CONNECT listed', r({ operations: ['CONNECT', 'DELETE'] }), req({ operation: 'CONNECT' }), true],
    ['core group is ""', r({ apiGroups: [''] }), req({}), true],
    ['apps does not match core', r({ apiGroups: ['apps'] }), req({}), false],
    ['apps matches deployments', r({ apiGroups: ['apps'], resources: ['deployments/scale'] }), deploymentScale, true],
    ['version v1beta1 does not match v1', r({ apiVersions: ['v1beta1'] }), req({}), false],
    ['pods matches the main resource', r({ resources: ['pods'] }), req({}), true],
    ['pods does not match pods/status', r({ resources: ['pods'] }), podStatus, false],
    ['pods/status matches pods/status', r({ resources: ['pods/status'] }), podStatus, true],
    ['pods/* matches pods/status', r({ resources: ['pods/*'] }), podStatus, true],
    // As upstream (`sub == "*" || sub == opSub`): the `*` after the slash also matches "no subresource".
    ['pods/* also matches the main resource', r({ resources: ['pods/*'] }), req({}), true],
    ['* matches any main resource', r({ resources: ['*'] }), node, true],
    ['* does not match a subresource', r({ resources: ['*'] }), podStatus, false],
    ['*/* matches a subresource', r({ resources: ['*/*'] }), podStatus, true],
    ['*/scale matches deployments/scale', r({ resources: ['*/scale'] }), deploymentScale, true],
    ['*/scale does not match pods/status', r({ resources: ['*/scale'] }), podStatus, false],
    ['services does not match pods', r({ resources: ['services'] }), req({}), false],
    ['Namespaced matches a pod', r({ scope: 'Namespaced' }), req({}), true],
    ['Namespaced does not match a node', r({ scope: 'Namespaced' }), node, false],
    ['Cluster matches a node', r({ scope: 'Cluster' }), node, true],
    ['Cluster does not match a pod', r({ scope: 'Cluster' }), req({}), false],
    ['a Namespace is cluster-scoped, even with its name as namespace', r({ scope: 'Cluster' }), namespace, true],
    ['Namespaced does not match a Namespace', r({ scope: 'Namespaced' }), namespace, false],
    ['scope * matches both', r({ scope: '*' }), node, true],
    ['empty lists match nothing', { resources: ['*'] }, req({}), false],
  ];
  for (const [title, rule, request, expected] of cases) {
    it(`${title} -> ${expected}`, () => expect(ruleMatches(rule, request)).to.equal(expected));
  }

  it('exempts webhook configurations and admission policies', () => {
    const kindOf = (kind: string, resource: string): AdmissionRequest =>
      admissionRequest({ kind: { group: 'admissionregistration.k8s.io', version: 'v1', kind }, resource: { group: 'admissionregistration.k8s.io', version: 'v1', resource }, namespace: '' });
    expect(isWebhookExempt(kindOf('ValidatingWebhookConfiguration', 'validatingwebhookconfigurations'))).to.equal(true);
    expect(isWebhookExempt(kindOf('MutatingWebhookConfiguration', 'mutatingwebhookconfigurations'))).to.equal(true);
    expect(isWebhookExempt(kindOf('ValidatingAdmissionPolicy', 'validatingadmissionpolicies'))).to.equal(true);
    expect(isWebhookExempt(admissionRequest({ object: pod() }))).to.equal(false);
  });
});

describe('WebhookDispatcher: selection', () => {
  it('namespaceSelector: matchLabels and every expression operator against the namespace labels', async () => {
    const sel = (name: string, namespaceSelector: AdmissionWebhook['namespaceSelector']): AdmissionWebhook => webhook(name, `/ns-${name}`, { namespaceSelector });
    const d = dispatcher('validating', [
      configuration('c',
        sel('labels', { matchLabels: { env: 'prod' } }),
        sel('in', { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod', 'staging'] }] }),
        sel('notin', { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] }),
        sel('exists', { matchExpressions: [{ key: 'team', operator: 'Exists' }] }),
        sel('absent', { matchExpressions: [{ key: 'team', operator: 'DoesNotExist' }] }),
        sel('empty', {}),
      ),
    ]);
    await d.validate(admissionRequest({ object: pod({}, 'prod') }));
    const called = (): string[] => ['labels', 'in', 'notin', 'exists', 'absent', 'empty'].filter((n) => calls(`/ns-${n}`).length > 0);
    expect(called()).to.deep.equal(['labels', 'in', 'exists', 'empty']);
    received.clear();
    await d.validate(admissionRequest({ object: pod({}, 'dev') }));
    expect(called()).to.deep.equal(['notin', 'absent', 'empty']);
  });

  it('namespaceSelector: a Namespace is judged by its own labels; other cluster-scoped objects are never excluded', async () => {
    const d = dispatcher('validating', [configuration('c', webhook('ns', '/ns-own', { namespaceSelector: { matchLabels: { env: 'prod' } } }))]);
    const ns = (labels: Record<string, string>): ApiObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'fresh', labels } });
    await d.validate(admissionRequest({ object: ns({ env: 'dev' }) }));
    expect(calls('/ns-own')).to.have.length(0);
    await d.validate(admissionRequest({ object: ns({ env: 'prod' }) }));
    expect(calls('/ns-own')).to.have.length(1);
    const node = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } };
    await d.validate(admissionRequest({ object: node, kind: { group: '', version: 'v1', kind: 'Node' }, resource: { group: '', version: 'v1', resource: 'nodes' }, namespace: '' }));
    expect(calls('/ns-own')).to.have.length(2);
  });

  it('namespaceSelector: a missing namespace refuses with 404 when the rules match', async () => {
    const d = dispatcher('validating', [configuration('c', webhook('ns', '/ns-missing', { namespaceSelector: { matchLabels: { env: 'prod' } } }))]);
    const err = await refusal(d.validate(admissionRequest({ object: pod({}, 'nowhere') })));
    expect(err.code).to.equal(404);
    expect(err.message).to.equal('namespaces "nowhere" not found');
  });

  it('objectSelector: the object or the old object must match', async () => {
    const d = dispatcher('validating', [configuration('c', webhook('obj', '/obj', { objectSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['web'] }] } }))]);
    await d.validate(admissionRequest({ object: pod({ app: 'db' }) }));
    expect(calls('/obj')).to.have.length(0);
    await d.validate(admissionRequest({ object: pod({ app: 'web' }) }));
    expect(calls('/obj')).to.have.length(1);
    await d.validate(admissionRequest({ operation: 'DELETE', object: undefined, oldObject: pod({ app: 'web' }) }));
    expect(calls('/obj')).to.have.length(2);
    await d.validate(admissionRequest({ operation: 'UPDATE', object: pod({ app: 'db' }), oldObject: pod({ app: 'web' }) }));
    expect(calls('/obj')).to.have.length(3);
  });

  it('never sends webhook configurations to webhooks, and handles() says so', async () => {
    const d = dispatcher('validating', [configuration('c', webhook('all', '/all', { failurePolicy: 'Fail', clientConfig: { url: 'https://127.0.0.1:1/down' } }))]);
    const req = admissionRequest({
      object: configuration('x'),
      kind: { group: 'admissionregistration.k8s.io', version: 'v1', kind: 'ValidatingWebhookConfiguration' },
      resource: { group: 'admissionregistration.k8s.io', version: 'v1', resource: 'validatingwebhookconfigurations' },
      namespace: '',
    });
    expect(d.handles(req)).to.equal(false);
    await d.validate(req);
    expect(d.handles(admissionRequest({ object: pod() }))).to.equal(true);
  });

  it('handles() is false without configurations or when no rule matches', () => {
    expect(dispatcher('validating', []).handles(admissionRequest({ object: pod() }))).to.equal(false);
    const d = dispatcher('validating', [configuration('c', webhook('svc', '/x', { rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['services'] }] }))]);
    expect(d.handles(admissionRequest({ object: pod() }))).to.equal(false);
  });
});

describe('WebhookDispatcher: calls and answers', () => {
  it('POSTs an AdmissionReview v1 with the request, and an allowed answer lets it through', async () => {
    const d = dispatcher('validating', [configuration('c', webhook('allow.example.com', '/allow'))]);
    const req = admissionRequest({ object: pod({ app: 'web' }), user: { username: 'alice', uid: 'u-1', groups: ['system:authenticated'], extra: { scopes: ['a'] } } });
    await d.validate(req);
    const [review] = calls('/allow');
    expect(review!.apiVersion).to.equal('admission.k8s.io/v1');
    expect(review!.kind).to.equal('AdmissionReview');
    const r = review!.request;
    expect(r.uid).to.be.a('string').and.not.equal('');
    expect(r).to.deep.include({
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      name: 'web',
      namespace: 'default',
      operation: 'CREATE',
      userInfo: { username: 'alice', uid: 'u-1', groups: ['system:authenticated'], extra: { scopes: ['a'] } },
      object: req.object,
      oldObject: null,
      dryRun: false,
      options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' },
    });
    expect(r).not.to.have.property('subResource');
  });

  it('sends ?timeout= and the subresource', async () => {
    let query = '';
    routes.set('/q', (review, u) => ((query = u.search), allow(review)));
    const d = dispatcher('validating', [configuration('c', webhook('q', '/q', { timeoutSeconds: 7 }))]);
    await d.validate(admissionRequest({ object: pod(), oldObject: pod(), operation: 'UPDATE', subresource: 'status' }));
    expect(query).to.equal('?timeout=7s');
    expect(calls('/q')[0]!.request).to.deep.include({ subResource: 'status', requestSubResource: 'status', options: { apiVersion: 'meta.k8s.io/v1', kind: 'UpdateOptions' } });
  });

  it('refuses with the webhook\'s message, code and causes', async () => {
    routes.set('/deny', (review) => deny(review, { code: 422, message: 'image nginx is not allowed', details: { causes: [{ field: 'spec.containers[0].image', message: 'not allowed', reason: 'FieldValueForbidden' }] } }));
    const d = dispatcher('validating', [configuration('c', webhook('deny.example.com', '/deny'))]);
    const err = await refusal(d.validate(admissionRequest({ object: pod() })));
    expect(err.code).to.equal(422);
    expect(err.message).to.equal('admission webhook "deny.example.com" denied the request: image nginx is not allowed');
    expect(err.causes).to.deep.equal([{ field: 'spec.containers[0].image', message: 'not allowed', reason: 'FieldValueForbidden' }]);
  });

  it('refuses with 403 "without explanation" when the webhook gives no status, and 403 for codes under 400', async () => {
    routes.set('/deny-bare', (review) => deny(review));
    routes.set('/deny-200', (review) => deny(review, { code: 200, reason: 'policy' }));
    const bare = await refusal(dispatcher('validating', [configuration('c', webhook('bare', '/deny-bare'))]).validate(admissionRequest({ object: pod() })));
    expect(bare.code).to.equal(403);
    expect(bare.message).to.equal('admission webhook "bare" denied the request without explanation');
    const low = await refusal(dispatcher('validating', [configuration('c', webhook('low', '/deny-200'))]).validate(admissionRequest({ object: pod() })));
    expect(low.code).to.equal(403);
    expect(low.message).to.equal('admission webhook "low" denied the request: policy');
  });

  it('passes warnings to the client, also with a refusal', async () => {
    routes.set('/warn', (review) => allow(review, { warnings: ['deprecated field', 'second'] }));
    routes.set('/warn-deny', (review) => ({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: false, warnings: ['told you'] } }));
    const req = admissionRequest({ object: pod() });
    await dispatcher('validating', [configuration('c', webhook('w', '/warn'))]).validate(req);
    expect(req.warnings).to.deep.equal(['deprecated field', 'second']);
    const req2 = admissionRequest({ object: pod() });
    await refusal(dispatcher('validating', [configuration('c', webhook('w', '/warn-deny'))]).validate(req2));
    expect(req2.warnings).to.deep.equal(['told you']);
  });

  it('mutating: applies JSONPatch answers in place, in configuration-name then webhook order', async () => {
    routes.set('/label', (review) => allow(review, { patchType: 'JSONPatch', patch: b64([{ op: 'add', path: '/metadata/labels/injected', value: 'yes' }]) }));
    routes.set('/sidecar', (review) => allow(review, { patchType: 'JSONPatch', patch: b64([{ op: 'add', path: '/spec/containers/-', value: { name: 'sidecar', image: 'proxy' } }]) }));
    // "b-config" sorts after "a-config" although given first.
    const d = dispatcher('mutating', [configuration('b-config', webhook('last', '/last')), configuration('a-config', webhook('label', '/label'), webhook('sidecar', '/sidecar'))]);
    const object = pod({ app: 'web' });
    const req = admissionRequest({ object });
    await d.admit(req);
    expect(req.object).to.equal(object);
    expect(object.metadata!.labels).to.deep.equal({ app: 'web', injected: 'yes' });
    expect((object.spec as { containers: unknown[] }).containers).to.deep.equal([{ name: 'c', image: 'nginx' }, { name: 'sidecar', image: 'proxy' }]);
    expect(calls('/sidecar')[0]!.request.object.metadata.labels.injected).to.equal('yes');
    expect(calls('/last')).to.have.length(1);
    expect(calls('/last')[0]!.request.object.spec.containers).to.have.length(2);
  });

  it('mutating: a patch that cannot be applied refuses with 500 whatever the failure policy, leaving the object untouched', async () => {
    routes.set('/bad-patch', (review) => allow(review, { patchType: 'JSONPatch', patch: b64([{ op: 'add', path: '/metadata/labels/x', value: '1' }, { op: 'replace', path: '/nope/deeper', value: 1 }]) }));
    const object = pod({ app: 'web' });
    const err = await refusal(dispatcher('mutating', [configuration('c', webhook('bad', '/bad-patch', { failurePolicy: 'Ignore' }))]).admit(admissionRequest({ object })));
    expect(err.code).to.equal(500);
    expect(err.message).to.match(/^Internal error occurred: /);
    expect(object.metadata!.labels).to.deep.equal({ app: 'web' });
  });

  it('mutating: reinvokes an IfNeeded webhook once when a later webhook changed the object', async () => {
    routes.set('/first', (review) => allow(review));
    routes.set('/changer', (review) => allow(review, { patchType: 'JSONPatch', patch: b64([{ op: 'add', path: '/metadata/annotations', value: { a: 'b' } }]) }));
    const d = dispatcher('mutating', [configuration('c', webhook('first', '/first', { reinvocationPolicy: 'IfNeeded' }), webhook('changer', '/changer'))]);
    await d.admit(admissionRequest({ object: pod() }));
    expect(calls('/first')).to.have.length(2);
    expect(calls('/first')[1]!.request.object.metadata.annotations).to.deep.equal({ a: 'b' });
    expect(calls('/changer')).to.have.length(1);
    // Never: called once.
    received.clear();
    await dispatcher('mutating', [configuration('c', webhook('first', '/first'), webhook('changer', '/changer'))]).admit(admissionRequest({ object: pod() }));
    expect(calls('/first')).to.have.length(1);
  });

  it('validating: a patch in the answer is a call failure', async () => {
    routes.set('/vpatch', (review) => allow(review, { patchType: 'JSONPatch', patch: b64([{ op: 'add', path: '/metadata/labels/x', value: '1' }]) }));
    const err = await refusal(dispatcher('validating', [configuration('c', webhook('vp', '/vpatch'))]).validate(admissionRequest({ object: pod() })));
    expect(err.code).to.equal(500);
    expect(err.message).to.equal('Internal error occurred: failed calling webhook "vp": received invalid webhook response: validating webhook may not return response.patchType');
  });

  it('reaches a Service webhook through the resolver, verifying <name>.<namespace>.svc', async () => {
    const asked: unknown[] = [];
    const d = dispatcher('validating', [configuration('c', webhook('svc', '', { clientConfig: { service: { namespace: 'webhooks', name: 'hooks', path: '/svc', port: 8443 }, caBundle } }))], {
      resolveService: async (...args) => (asked.push(args), { host: '127.0.0.1', port }),
    });
    await d.validate(admissionRequest({ object: pod() }));
    expect(asked).to.deep.equal([['webhooks', 'hooks', 8443]]);
    expect(calls('/svc')).to.have.length(1);
  });
});

describe('WebhookDispatcher: failures and failurePolicy', () => {
  it('a wrong uid is a call failure (Fail: 500)', async () => {
    routes.set('/uid', () => ({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'not-yours', allowed: true } }));
    const err = await refusal(dispatcher('validating', [configuration('c', webhook('uid', '/uid'))]).validate(admissionRequest({ object: pod() })));
    expect(err.code).to.equal(500);
    expect(err.message).to.match(/^Internal error occurred: failed calling webhook "uid": received invalid webhook response: expected response\.uid="[0-9a-f-]{36}", got "not-yours"$/);
  });

  it('non-200 answers, bad JSON and a wrong kind are call failures', async () => {
    routes.set('/boom', () => new Error('boom'));
    routes.set('/json', () => '{not json');
    routes.set('/kind', (review) => ({ apiVersion: 'v1', kind: 'Status', response: { uid: review.request.uid, allowed: true } }));
    const boom = await refusal(dispatcher('validating', [configuration('c', webhook('boom', '/boom'))]).validate(admissionRequest({ object: pod() })));
    expect(boom.message).to.equal('Internal error occurred: failed calling webhook "boom": failed to call webhook: an error on the server ("boom") has prevented the request from succeeding');
    const json = await refusal(dispatcher('validating', [configuration('c', webhook('json', '/json'))]).validate(admissionRequest({ object: pod() })));
    expect(json.message).to.match(/^Internal error occurred: failed calling webhook "json": failed to call webhook: /);
    const kind = await refusal(dispatcher('validating', [configuration('c', webhook('kind', '/kind'))]).validate(admissionRequest({ object: pod() })));
    expect(kind.message).to.contain('expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview');
  });

  it('a timeout aborts the call: Fail refuses with 500 "context deadline exceeded"', async function () {
    this.timeout(10_000);
    routes.set('/slow', async (review) => (await delay(3000), allow(review)));
    const d = dispatcher('validating', [configuration('c', webhook('slow.example.com', '/slow', { timeoutSeconds: 1, failurePolicy: 'Fail' }))]);
    const started = Date.now();
    const err = await refusal(d.validate(admissionRequest({ object: pod() })));
    expect(Date.now() - started).to.be.below(2500);
    expect(err.code).to.equal(500);
    expect(err.message).to.equal(`Internal error occurred: failed calling webhook "slow.example.com": failed to call webhook: Post "https://127.0.0.1:${port}/slow?timeout=1s": context deadline exceeded`);
  });

  it('a timeout with Ignore lets the request through and logs a warning', async function () {
    this.timeout(10_000);
    routes.set('/slow-ignore', async (review) => (await delay(3000), deny(review)));
    const warnings: string[] = [];
    const events: WebhookCallEvent[] = [];
    const d = dispatcher('validating', [configuration('c', webhook('slow', '/slow-ignore', { timeoutSeconds: 1, failurePolicy: 'Ignore' }))], {
      logger: { warn: (_details, message) => void warnings.push(message) },
      onCall: (e) => void events.push(e),
    });
    const started = Date.now();
    await d.validate(admissionRequest({ object: pod() }));
    expect(Date.now() - started).to.be.below(2500);
    expect(warnings).to.deep.equal(['Failed calling webhook, failing open']);
    expect(events.map((e) => e.outcome)).to.deep.equal(['failed-open']);
  });

  it('an untrusted server certificate, or none of the system CAs, is a call failure', async () => {
    const untrusted = await refusal(dispatcher('validating', [configuration('c', webhook('tls', '/tls', { clientConfig: { url: url('/tls'), caBundle: otherCaBundle } }))]).validate(admissionRequest({ object: pod() })));
    expect(untrusted.code).to.equal(500);
    expect(untrusted.message).to.match(new RegExp(`^Internal error occurred: failed calling webhook "tls": failed to call webhook: Post "https://127\\.0\\.0\\.1:${port}/tls\\?timeout=10s": .*cert`, 'i'));
    const system = await refusal(dispatcher('validating', [configuration('c', webhook('tls', '/tls', { clientConfig: { url: url('/tls') } }))]).validate(admissionRequest({ object: pod() })));
    expect(system.code).to.equal(500);
    expect(calls('/tls')).to.have.length(0);
  });

  it('connection refused: Fail refuses, Ignore continues', async () => {
    const down = { clientConfig: { url: 'https://127.0.0.1:1/down', caBundle } };
    const err = await refusal(dispatcher('validating', [configuration('c', webhook('down', '', down))]).validate(admissionRequest({ object: pod() })));
    expect(err.message).to.match(/^Internal error occurred: failed calling webhook "down": failed to call webhook: Post "https:\/\/127\.0\.0\.1:1\/down\?timeout=10s": .*ECONNREFUSED/);
    await dispatcher('mutating', [configuration('c', webhook('down', '', { ...down, failurePolicy: 'Ignore' }))]).admit(admissionRequest({ object: pod() }));
  });

  it('http URLs and AdmissionReview versions without v1 are call failures', async () => {
    const http = await refusal(dispatcher('validating', [configuration('c', webhook('http', '', { clientConfig: { url: 'http://127.0.0.1:1/x' } }))]).validate(admissionRequest({ object: pod() })));
    expect(http.message).to.contain('must use the https scheme');
    const old = await refusal(dispatcher('validating', [configuration('c', webhook('old', '/old', { admissionReviewVersions: ['v1beta1'] }))]).validate(admissionRequest({ object: pod() })));
    expect(old.message).to.equal('Internal error occurred: failed calling webhook "old": could not create admission objects: webhook does not accept known AdmissionReview versions (v1)');
    expect(calls('/old')).to.have.length(0);
  });

  it('dry run: sideEffects Unknown/Some refuses with 400 without calling; None/NoneOnDryRun are called', async () => {
    const unknown = await refusal(dispatcher('validating', [configuration('c', webhook('effects', '/effects', { sideEffects: 'Unknown', failurePolicy: 'Ignore' }))]).validate(admissionRequest({ object: pod(), dryRun: true })));
    expect(unknown.code).to.equal(400);
    expect(unknown.message).to.equal('admission webhook "effects" does not support dry run');
    expect(calls('/effects')).to.have.length(0);
    await dispatcher('validating', [configuration('c', webhook('effects', '/effects', { sideEffects: 'NoneOnDryRun' }))]).validate(admissionRequest({ object: pod(), dryRun: true }));
    expect(calls('/effects')[0]!.request).to.deep.include({ dryRun: true, options: { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions', dryRun: ['All'] } });
    // Not a dry run: side effects do not matter.
    await dispatcher('validating', [configuration('c', webhook('effects', '/effects', { sideEffects: 'Some' }))]).validate(admissionRequest({ object: pod() }));
    expect(calls('/effects')).to.have.length(2);
  });

  it('matchConditions (CEL, not evaluated) are an evaluation failure: Fail refuses, Ignore skips', async () => {
    const cond = { matchConditions: [{ name: 'not-system', expression: '!request.userInfo.username.startsWith("system:")' }] };
    const err = await refusal(dispatcher('validating', [configuration('c', webhook('cel', '/cel', cond))]).validate(admissionRequest({ object: pod() })));
    expect(err.code).to.equal(500);
    expect(err.message).to.contain('matchConditions');
    await dispatcher('validating', [configuration('c', webhook('cel', '/cel', { ...cond, failurePolicy: 'Ignore' }))]).validate(admissionRequest({ object: pod() }));
    expect(calls('/cel')).to.have.length(0);
  });
});

describe('WebhookDispatcher: validating webhooks run in parallel', () => {
  it('two 1 s webhooks overlap, and the first refusal in webhook order wins', async function () {
    this.timeout(10_000);
    routes.set('/p1', tracked(async (review) => (await delay(1000), deny(review, { message: 'first' }))));
    routes.set('/p2', tracked(async (review) => (await delay(300), deny(review, { message: 'second' }))));
    routes.set('/p3', tracked(async (review) => (await delay(1000), allow(review))));
    const d = dispatcher('validating', [configuration('a', webhook('p1', '/p1')), configuration('b', webhook('p2', '/p2'), webhook('p3', '/p3'))]);
    const started = Date.now();
    const err = await refusal(d.validate(admissionRequest({ object: pod() })));
    expect(maxInFlight).to.equal(3);
    expect(Date.now() - started).to.be.below(1900);
    expect(err.message).to.equal('admission webhook "p1" denied the request: first');
  });

  it('mutating webhooks run one at a time', async function () {
    this.timeout(10_000);
    routes.set('/m1', tracked(async (review) => (await delay(200), allow(review))));
    routes.set('/m2', tracked(async (review) => (await delay(200), allow(review))));
    await dispatcher('mutating', [configuration('a', webhook('m1', '/m1'), webhook('m2', '/m2'))]).admit(admissionRequest({ object: pod() }));
    expect(maxInFlight).to.equal(1);
  });
});

describe('endpointsServiceResolver', () => {
  const objects: Record<string, KubeObject> = {
    '/api/v1/namespaces/w/services/hooks': { spec: { ports: [{ name: 'https', port: 443 }, { name: 'metrics', port: 9090 }] } },
    '/api/v1/namespaces/w/endpoints/hooks': {
      subsets: [
        { addresses: [{ ip: '10.0.0.7' }], notReadyAddresses: [{ ip: '10.0.0.8' }], ports: [{ name: 'https', port: 8443 }, { name: 'metrics', port: 9100 }] },
      ],
    },
    '/api/v1/namespaces/w/services/ext': { spec: { type: 'ExternalName', externalName: 'hooks.example.com' } },
    '/api/v1/namespaces/w/services/empty': { spec: { ports: [{ port: 443 }] } },
    '/api/v1/namespaces/w/endpoints/empty': { subsets: [{ notReadyAddresses: [{ ip: '10.0.0.9' }], ports: [{ port: 8443 }] }] },
  };
  const api = {
    get: async <T>(path: string): Promise<T> => {
      const o = objects[path];
      if (!o) throw new ApiStatusError(404, 'NotFound', `${path} not found`);
      return o as T;
    },
  } as Pick<ApiClient, 'get'>;
  const resolve = endpointsServiceResolver(api);

  it('maps the Service port to the ready endpoint\'s target port by port name', async () => {
    expect(await resolve('w', 'hooks', 443)).to.deep.equal({ host: '10.0.0.7', port: 8443 });
  });
  it('resolves ExternalName services to their name', async () => {
    expect(await resolve('w', 'ext', 443)).to.deep.equal({ host: 'hooks.example.com', port: 443 });
  });
  it('fails without a ready address, an unknown port or a missing service', async () => {
    for (const [name, port, pattern] of [['empty', 443, /no ready endpoints/], ['hooks', 8080, /no service port 8080/], ['gone', 443, /not found/]] as const) {
      let error: unknown;
      await resolve('w', name, port).catch((e: unknown) => (error = e));
      expect(String(error)).to.match(pattern);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The plugins, against a fake API server (list + watch of configurations and namespaces).

const apiObjects = new Map<string, KubeObject[]>();
let apiServer: HttpServer;
let apiUrl = '';
const watchers = new Set<{ path: string; res: ServerResponse }>();

function pushEvent(path: string, type: 'ADDED' | 'MODIFIED' | 'DELETED', object: KubeObject): void {
  for (const w of watchers) if (w.path === path) w.res.write(JSON.stringify({ type, object }) + '\n');
}

before(async () => {
  apiServer = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const list = apiObjects.get(u.pathname);
    if (list && u.searchParams.get('watch') === 'true') {
      res.writeHead(200, { 'content-type': 'application/json' });
      const w = { path: u.pathname, res };
      watchers.add(w);
      res.on('close', () => watchers.delete(w));
      return;
    }
    if (list) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ items: list, metadata: { resourceVersion: '1' } }));
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 404, reason: 'NotFound', message: 'not found' }));
  });
  await new Promise<void>((r) => apiServer.listen(0, '127.0.0.1', r));
  apiUrl = `http://127.0.0.1:${(apiServer.address() as AddressInfo).port}`;
  apiObjects.set('/api/v1/namespaces', [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default', resourceVersion: '1' } }]);
  apiObjects.set('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', []);
  apiObjects.set('/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations', []);
});

after(async () => {
  for (const w of watchers) w.res.end();
  apiServer.closeAllConnections();
  await new Promise<void>((r) => apiServer.close(() => r()));
});

describePluginContract(mutatingWebhookPlugin, { invalidConfigs: [], api: () => new ApiClient({ server: apiUrl }) });
describePluginContract(validatingWebhookPlugin, { invalidConfigs: [], api: () => new ApiClient({ server: apiUrl }) });

describe('webhook admission plugins', () => {
  it('follow their configurations through the informer and call the webhooks', async function () {
    this.timeout(10_000);
    const path = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations';
    const client = new ApiClient({ server: apiUrl });
    const running = startPlugin(mutatingWebhookPlugin, { api: client });
    try {
      const step = (await running.ready) as { handles(r: AdmissionRequest): boolean; admit(r: AdmissionRequest): Promise<void> };
      const req = admissionRequest({ object: pod() });
      expect(step.handles(req)).to.equal(false);
      routes.set('/plugin', (review) => allow(review, { patchType: 'JSONPatch', patch: b64([{ op: 'add', path: '/metadata/labels/seen', value: 'yes' }]) }));
      pushEvent(path, 'ADDED', { ...configuration('from-watch', webhook('plugin', '/plugin', { namespaceSelector: { matchExpressions: [{ key: 'x', operator: 'DoesNotExist' }] } })), kind: 'MutatingWebhookConfiguration', metadata: { name: 'from-watch', resourceVersion: '2' } });
      for (let i = 0; i < 100 && !step.handles(req); i++) await delay(20);
      expect(step.handles(req)).to.equal(true);
      await step.admit(req);
      expect(req.object!.metadata!.labels).to.deep.equal({ seen: 'yes' });
    } finally {
      await running.stop();
      client.close();
    }
  });
});
