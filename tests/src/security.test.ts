import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { generateKeyPair, importPKCS8, SignJWT } from 'jose';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { expect } from 'chai';
import { createCa, issueCertificate } from '@kubernel/core';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { run } from './helpers/processes.js';
import { ROOT } from './helpers/paths.js';

/** A kubeconfig for `user` (client certificate or token) against cluster `c`. */
function kubeconfigFor(c: TestCluster, name: string, user: Record<string, string>): string {
  const file = join(c.dataDir, `kubeconfig-${name}`);
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server: c.url, 'certificate-authority-data': Buffer.from(c.tls.ca).toString('base64') } }],
    users: [{ name, user }],
    contexts: [{ name: 'c', context: { cluster: 'c', user: name, namespace: 'default' } }],
    'current-context': 'c',
  };
  writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
  return file;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** Writes `<dir>/distribution.yaml`: the server role runs `plugins` ([id, plugins/<dir>, config?]) in order. */
function writeDistribution(dir: string, name: string, plugins: Array<[string, string, string?]>): void {
  const entries = plugins.map(([id, pkg, config]) => `        - { id: ${id}, package: "${join(ROOT, 'plugins', pkg)}"${config ? `, config: ${config}` : ''} }`);
  const lines = ['apiVersion: kubernel.io/v1alpha1', 'kind: Distribution', `metadata: { name: ${name} }`, 'spec:', '  roles:', '    server:', '      plugins:', ...entries, '    agent: { plugins: [] }', ''];
  writeFileSync(join(dir, 'distribution.yaml'), lines.join('\n'));
}

describe('API security: TLS, authentication, RBAC (kubernel server)', function () {
  this.timeout(60_000);
  let c: TestCluster;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kubernel-security-'));
    writeFileSync(join(dir, 'tokens.csv'), 'root-token,root,u-root,system:masters\nbob-token,bob,u-bob,"dev,qa"\nn1-token,system:node:n1,u-n1,system:nodes\n');
    writeDistribution(dir, 'security-test', [
      ['authn-x509', 'authn'],
      ['authn-token-file', 'authn', `{ path: "${join(dir, 'tokens.csv')}" }`],
      ['authn-serviceaccount', 'authn'],
      ['authn-bootstrap-token', 'authn'],
      ['authz-node', 'node'],
      ['authz-rbac', 'rbac'],
      ['rbac-escalation', 'rbac'],
      ['node-restriction', 'node'],
    ]);
    c = await startCluster(['--distribution', join(dir, 'distribution.yaml'), '--tls-san', 'api.example.test']);
  });
  after(async () => {
    await c?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves TLS 1.2+ only, with a serving certificate for the names clients use, and writes the admin kubeconfig 0600', async () => {
    const serving = new X509Certificate(await (await import('node:fs/promises')).readFile(join(c.dataDir, 'pki', 'apiserver.crt')));
    for (const san of ['DNS:kubernetes.default.svc', 'DNS:localhost', 'IP Address:127.0.0.1', 'IP Address:10.96.0.1', 'DNS:api.example.test']) expect(serving.subjectAltName).to.contain(san);
    expect(serving.checkIssued(new X509Certificate(c.tls.ca))).to.equal(true);
    expect(statSync(c.kubeconfig).mode & 0o777).to.equal(0o600);
    expect(statSync(join(c.dataDir, 'pki', 'ca.key')).mode & 0o777).to.equal(0o600);
    expect(statSync(join(c.dataDir, 'pki', 'encryption-config.yaml')).mode & 0o777).to.equal(0o600);
    expect(c.process.stdout()).to.contain('encryption at rest for /registry/core/secrets/');
    const { port } = new URL(c.url);
    const old = await new Promise<string>((resolve) => {
      const s = connect({ host: '127.0.0.1', port: Number(port), ca: c.tls.ca, servername: 'localhost', minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }, () => resolve('connected'));
      s.on('error', (e) => resolve((e as NodeJS.ErrnoException).code ?? e.message));
    });
    expect(old).to.not.equal('connected');
    const plain = await fetch(`http://127.0.0.1:${port}/api`).then((r) => r.status, (e: Error) => e.message);
    expect(plain).to.not.equal(200);
  });

  it('refuses requests without credentials (401 Status) except /livez, /readyz, /healthz and /version', async () => {
    const anonymous = { cert: undefined, key: undefined };
    for (const path of ['/livez', '/readyz', '/healthz', '/version']) expect((await c.request('GET', path, undefined, {}, anonymous)).status, path).to.equal(200);
    for (const path of ['/api/v1/namespaces', '/apis', '/metrics', '/openapi/v2']) {
      const r = await c.request('GET', path, undefined, {}, anonymous);
      expect(r.status, path).to.equal(401);
      expect(r.json()).to.include({ kind: 'Status', status: 'Failure', reason: 'Unauthorized', code: 401 });
    }
    const wrongToken = await c.request('GET', '/api/v1/namespaces', undefined, { authorization: 'Bearer not-a-token' }, anonymous);
    expect(wrongToken.status).to.equal(401);
  });

  it('does not trust a client certificate from another CA', async () => {
    const other = await createCa('someone-else', 10);
    const forged = await issueCertificate(other, { commonName: 'kubernetes-admin', organizations: ['system:masters'], usage: 'client', validityDays: 1 });
    const r = await c.request('GET', '/api/v1/namespaces', undefined, {}, forged);
    expect(r.status).to.equal(401);
  });

  it('authenticates cluster-CA client certificates (CN = user, O = groups) and static tokens; kubectl auth whoami shows them', async () => {
    const ca = { cert: c.tls.ca, key: await (await import('node:fs/promises')).readFile(join(c.dataDir, 'pki', 'ca.key'), 'utf8') };
    // (In system:masters so that no RBAC is needed to ask who one is; RBAC grants it to everyone once enabled.)
    const jane = await issueCertificate(ca, { commonName: 'jane', organizations: ['system:masters', 'ops'], usage: 'client', validityDays: 1 });
    const janeConfig = kubeconfigFor(c, 'jane', { 'client-certificate-data': b64(jane.cert), 'client-key-data': b64(jane.key) });
    const who = JSON.parse((await run('kubectl', ['auth', 'whoami', '-o', 'json'], { KUBECONFIG: janeConfig })).stdout) as { status: { userInfo: { username: string; groups: string[] } } };
    expect(who.status.userInfo).to.deep.equal({ username: 'jane', groups: ['system:masters', 'ops', 'system:authenticated'] });
    const rootConfig = kubeconfigFor(c, 'root', { token: 'root-token' });
    const root = JSON.parse((await run('kubectl', ['auth', 'whoami', '-o', 'json'], { KUBECONFIG: rootConfig })).stdout) as { status: { userInfo: Record<string, unknown> } };
    expect(root.status.userInfo).to.deep.equal({ username: 'root', uid: 'u-root', groups: ['system:masters', 'system:authenticated'] });
  });

  it('answers 403 Forbidden with Kubernetes\' message to users no authorizer allows; system:masters may do anything', async () => {
    const bob = { cert: undefined, key: undefined };
    const denied = await c.request('GET', '/api/v1/namespaces/default/configmaps', undefined, { authorization: 'Bearer bob-token' }, bob);
    expect(denied.status).to.equal(403);
    expect(denied.json()).to.deep.include({
      kind: 'Status',
      reason: 'Forbidden',
      code: 403,
      message: 'configmaps is forbidden: User "bob" cannot list resource "configmaps" in API group "" in the namespace "default"',
    });
    const create = await c.request('POST', '/api/v1/namespaces/default/configmaps', JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'from-bob' } }), { authorization: 'Bearer bob-token' }, bob);
    expect(create.status).to.equal(403);
    expect((await c.request('GET', '/api/v1/namespaces/default/configmaps/from-bob')).status).to.equal(404);
    const root = await c.request('POST', '/api/v1/namespaces/default/configmaps', JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'from-root' } }), { authorization: 'Bearer root-token' }, bob);
    expect(root.status).to.equal(201);
  });

  it('kubectl auth can-i agrees with the authorizers (SelfSubjectAccessReview, SelfSubjectRulesReview)', async () => {
    expect((await c.kubectl(['auth', 'can-i', 'create', 'pods'])).stdout.trim()).to.equal('yes');
    // bob holds only what every authenticated user holds (system:basic-user, system:discovery).
    const no = await run('kubectl', ['auth', 'can-i', 'create', 'pods'], { KUBECONFIG: kubeconfigFor(c, 'bob', { token: 'bob-token' }) });
    expect([no.code, no.stdout.trim()]).to.deep.equal([1, 'no']);
    const list = await c.ok(['auth', 'can-i', '--list']);
    expect(list).to.match(/^\*\.\*\s+\[\]\s+\[\]\s+\[\*\]/m);
    // An admin may ask about someone else: bob holds nothing (no authorizer plugin grants him anything).
    const sar = await c.request('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', JSON.stringify({ apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: { user: 'bob', resourceAttributes: { verb: 'get', resource: 'pods', namespace: 'default' } } }));
    expect(sar.status).to.equal(201);
    expect((sar.json().status as { allowed: boolean }).allowed).to.equal(false);
  });

  it('RBAC: a user bound to view in one namespace reads there only; kubectl auth can-i agrees', async () => {
    await c.ok(['create', 'namespace', 'team-a']);
    await c.ok(['create', 'namespace', 'team-b']);
    await c.ok(['-n', 'team-a', 'create', 'configmap', 'settings', '--from-literal=a=1']);
    await c.ok(['-n', 'team-a', 'create', 'secret', 'generic', 'db', '--from-literal=p=x']);
    await c.ok(['-n', 'team-a', 'create', 'rolebinding', 'jane-view', '--clusterrole=view', '--user=jane']);
    const ca = { cert: c.tls.ca, key: await (await import('node:fs/promises')).readFile(join(c.dataDir, 'pki', 'ca.key'), 'utf8') };
    const jane = await issueCertificate(ca, { commonName: 'jane', organizations: ['dev'], usage: 'client', validityDays: 1 });
    const env = { KUBECONFIG: kubeconfigFor(c, 'jane-view', { 'client-certificate-data': b64(jane.cert), 'client-key-data': b64(jane.key) }) };
    const kubectl = (args: string[]) => run('kubectl', args, env);

    expect((await kubectl(['-n', 'team-a', 'get', 'configmap', 'settings', '-o', 'name'])).stdout.trim()).to.equal('configmap/settings');
    const matrix: Array<[string[], boolean]> = [
      [['-n', 'team-a', 'get', 'configmaps'], true],
      [['-n', 'team-a', 'get', 'pods'], true],
      [['-n', 'team-b', 'get', 'configmaps'], false],
      [['get', 'configmaps', '-A'], false],
      [['-n', 'team-a', 'get', 'secret', 'db'], false],
      [['-n', 'team-a', 'create', 'configmap', 'x'], false],
      [['-n', 'team-a', 'delete', 'configmap', 'settings'], false],
      [['get', 'nodes'], false],
    ];
    for (const [args, ok] of matrix) {
      const r = await kubectl(args);
      expect(r.code === 0, `kubectl ${args.join(' ')}: ${r.stderr}`).to.equal(ok);
      if (!ok) expect(r.stderr, args.join(' ')).to.match(/Forbidden|forbidden/);
      const canI = await kubectl(['auth', 'can-i', ...canIArgs(args)]);
      expect(canI.stdout.trim(), `can-i ${canIArgs(args).join(' ')}`).to.equal(ok ? 'yes' : 'no');
    }
    expect((await c.ok(['-n', 'team-a', 'get', 'configmap', 'settings', '-o', 'name'])).trim()).to.equal('configmap/settings');
    const list = (await kubectl(['auth', 'can-i', '--list', '-n', 'team-a'])).stdout;
    expect(list).to.match(/^configmaps\s+\[\]\s+\[\]\s+\[get list watch\]/m);
    expect(list).to.match(/^selfsubjectaccessreviews\.authorization\.k8s\.io\s+\[\]\s+\[\]\s+\[create\]/m);
    expect(list).to.not.match(/^secrets/m);
  });

  it('RBAC: ships the default cluster roles and bindings, with admin/edit/view aggregated', async () => {
    const names = (await c.ok(['get', 'clusterroles', '-o', 'name'])).split('\n');
    for (const r of ['cluster-admin', 'admin', 'edit', 'view', 'system:discovery', 'system:basic-user', 'system:kube-scheduler']) expect(names).to.include(`clusterrole.rbac.authorization.k8s.io/${r}`);
    await until(async () => JSON.parse(await c.ok(['get', 'clusterrole', 'edit', '-o', 'json'])).rules?.length > 0);
    const edit = JSON.parse(await c.ok(['get', 'clusterrole', 'edit', '-o', 'json'])) as { rules: Array<{ resources?: string[]; verbs: string[] }> };
    expect(edit.rules.some((r) => r.resources?.includes('configmaps') && r.verbs.includes('create'))).to.equal(true);
    expect(edit.rules.some((r) => r.resources?.includes('configmaps') && r.verbs.includes('watch'))).to.equal(true);
    const binding = JSON.parse(await c.ok(['get', 'clusterrolebinding', 'cluster-admin', '-o', 'json'])) as { subjects: Array<{ kind: string; name: string }> };
    expect(binding.subjects).to.deep.include({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:masters' });
  });

  it('RBAC: nobody grants what they do not hold (unless they may escalate or bind); each refusal changes nothing', async () => {
    await c.ok(['create', 'namespace', 'team-c']);
    await c.ok(['-n', 'team-c', 'create', 'role', 'rbac-manager', '--verb=create,update,get,list', '--resource=roles.rbac.authorization.k8s.io,rolebindings.rbac.authorization.k8s.io']);
    await c.ok(['-n', 'team-c', 'create', 'rolebinding', 'bob-manages', '--role=rbac-manager', '--user=bob']);
    await c.ok(['-n', 'team-c', 'create', 'rolebinding', 'bob-views', '--clusterrole=view', '--user=bob']);
    const env = { KUBECONFIG: kubeconfigFor(c, 'bob-rbac', { token: 'bob-token' }) };
    const kubectl = (args: string[]) => run('kubectl', args, env);

    const grabAdmin = await kubectl(['-n', 'team-c', 'create', 'rolebinding', 'grab', '--clusterrole=cluster-admin', '--user=bob']);
    expect(grabAdmin.code).to.equal(1);
    expect(grabAdmin.stderr).to.contain('is attempting to grant RBAC permissions not currently held');
    const secretsRole = await kubectl(['-n', 'team-c', 'create', 'role', 'secret-reader', '--verb=get', '--resource=secrets']);
    expect(secretsRole.code).to.equal(1);
    expect(secretsRole.stderr).to.match(/Resources:\[\\?"secrets/);
    expect((await c.kubectl(['-n', 'team-c', 'get', 'rolebinding', 'grab'])).code).to.equal(1);
    expect((await c.kubectl(['-n', 'team-c', 'get', 'role', 'secret-reader'])).code).to.equal(1);

    // What bob holds he may hand on: view in team-c, and a role within his own rules.
    await kubectl(['-n', 'team-c', 'create', 'rolebinding', 'carol-views', '--clusterrole=view', '--user=carol']).then((r) => expect(r.code, r.stderr).to.equal(0));
    await kubectl(['-n', 'team-c', 'create', 'role', 'cm-reader', '--verb=get,list', '--resource=configmaps']).then((r) => expect(r.code, r.stderr).to.equal(0));
    // With the bind verb on cluster-admin, binding it is allowed without holding it (Kubernetes' escape hatch).
    await c.ok(['-n', 'team-c', 'create', 'role', 'may-bind-admin', '--verb=bind', '--resource=clusterroles.rbac.authorization.k8s.io', '--resource-name=cluster-admin']);
    await c.ok(['-n', 'team-c', 'create', 'rolebinding', 'bob-may-bind', '--role=may-bind-admin', '--user=bob']);
    await until(async () => (await kubectl(['-n', 'team-c', 'create', 'rolebinding', 'grab', '--clusterrole=cluster-admin', '--user=bob', '--dry-run=server'])).code === 0);
  });

  it('service-account tokens: kubectl create token works; wrong audience, expired, deleted account and foreign signatures are refused', async () => {
    await c.ok(['-n', 'team-a', 'create', 'serviceaccount', 'robot']);
    await c.ok(['-n', 'team-a', 'create', 'rolebinding', 'robot-view', '--clusterrole=view', '--serviceaccount=team-a:robot']);
    const token = (await c.ok(['-n', 'team-a', 'create', 'token', 'robot', '--duration=15m'])).trim();
    const none = { cert: undefined, key: undefined };
    const as = (t: string, path: string) => c.request('GET', path, undefined, { authorization: `Bearer ${t}` }, none);
    const who = await c.request('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }), { authorization: `Bearer ${token}` }, none);
    expect(who.status).to.equal(201);
    const info = (who.json().status as { userInfo: { username: string; groups: string[]; uid: string } }).userInfo;
    expect(info.username).to.equal('system:serviceaccount:team-a:robot');
    expect(info.groups).to.deep.equal(['system:serviceaccounts', 'system:serviceaccounts:team-a', 'system:authenticated']);
    expect((await as(token, '/api/v1/namespaces/team-a/configmaps')).status).to.equal(200);
    expect((await as(token, '/api/v1/namespaces/team-b/configmaps')).status).to.equal(403);

    // TokenReview: what a webhook or an aggregated server asks the API server about a token.
    const tokenReview = async (t: string) => (await c.request('POST', '/apis/authentication.k8s.io/v1/tokenreviews', JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: t } }))).json().status as { authenticated: boolean; user: { username?: string } };
    expect(await tokenReview(token)).to.deep.include({ authenticated: true });
    expect((await tokenReview(token)).user.username).to.equal('system:serviceaccount:team-a:robot');
    expect((await tokenReview('garbage')).authenticated).to.equal(false);
    const other = (await c.ok(['-n', 'team-a', 'create', 'token', 'robot', '--audience=https://vault.example'])).trim();
    expect((await as(other, '/api/v1/namespaces/team-a/configmaps')).status).to.equal(401);
    // Signed with the cluster's key but expired (TokenRequest never issues these: minimum 10 minutes).
    const sa = JSON.parse(await c.ok(['-n', 'team-a', 'get', 'sa', 'robot', '-o', 'json'])) as { metadata: { uid: string } };
    const key = await importPKCS8(readFileSync(join(c.dataDir, 'pki', 'sa.key'), 'utf8'), 'ES256');
    const claims = { 'kubernetes.io': { namespace: 'team-a', serviceaccount: { name: 'robot', uid: sa.metadata.uid } } };
    const issuer = 'https://kubernetes.default.svc.cluster.local';
    const sign = (k: Parameters<SignJWT['sign']>[0], exp: number): Promise<string> =>
      new SignJWT(claims).setProtectedHeader({ alg: 'ES256' }).setIssuer(issuer).setSubject('system:serviceaccount:team-a:robot').setAudience(issuer).setIssuedAt(exp - 3600).setExpirationTime(exp).sign(k);
    expect((await as(await sign(key, Math.floor(Date.now() / 1000) - 60), '/api/v1/namespaces/team-a/configmaps')).status).to.equal(401);
    const forged = await sign((await generateKeyPair('ES256')).privateKey, Math.floor(Date.now() / 1000) + 600);
    expect((await as(forged, '/api/v1/namespaces/team-a/configmaps')).status).to.equal(401);

    await c.ok(['-n', 'team-a', 'delete', 'serviceaccount', 'robot']);
    await until(async () => (await as(token, '/api/v1/namespaces/team-a/configmaps')).status === 401);
    const jwks = (await c.request('GET', '/openid/v1/jwks')).json() as { keys: Array<{ kty: string; alg: string }> };
    expect(jwks.keys[0]).to.include({ kty: 'EC', alg: 'ES256' });
  });

  it('Node authorization: a node reads what its pods use and writes only what is its own', async () => {
    await c.ok(['create', 'namespace', 'team-n']);
    for (const s of ['mine', 'theirs']) await c.ok(['-n', 'team-n', 'create', 'secret', 'generic', s, '--from-literal=k=v']);
    const podOn = (name: string, node: string, secret: string): string =>
      JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { nodeName: node, containers: [{ name: 'c', image: 'busybox' }], volumes: [{ name: 's', secret: { secretName: secret } }] } });
    await c.ok(['-n', 'team-n', 'create', '-f', '-'], podOn('p1', 'n1', 'mine'));
    await c.ok(['-n', 'team-n', 'create', '-f', '-'], podOn('p2', 'n2', 'theirs'));
    for (const n of ['n1', 'n2']) await c.ok(['create', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: n } }));
    const none = { cert: undefined, key: undefined };
    const node = (method: string, path: string, body?: string, type = 'application/json') => c.request(method, path, body, { authorization: 'Bearer n1-token', 'content-type': type }, none);
    await until(async () => (await node('GET', '/api/v1/namespaces/team-n/secrets/mine')).status === 200);
    const matrix: Array<[string, string, string | undefined, number]> = [
      ['GET', '/api/v1/namespaces/team-n/secrets/theirs', undefined, 403],
      ['GET', '/api/v1/namespaces/team-n/secrets', undefined, 403],
      ['GET', '/api/v1/namespaces/team-n/pods', undefined, 200],
      ['PATCH', '/api/v1/namespaces/team-n/pods/p1/status', JSON.stringify({ status: { phase: 'Running' } }), 200],
      ['PATCH', '/api/v1/namespaces/team-n/pods/p2/status', JSON.stringify({ status: { phase: 'Running' } }), 403],
      ['DELETE', '/api/v1/namespaces/team-n/pods/p2', undefined, 403],
      ['PATCH', '/api/v1/nodes/n1/status', JSON.stringify({ status: { conditions: [{ type: 'Ready', status: 'True' }] } }), 200],
      ['PATCH', '/api/v1/nodes/n2', JSON.stringify({ metadata: { labels: { hijacked: 'yes' } } }), 403],
      ['POST', '/api/v1/namespaces/team-n/pods', podOn('sneaky', 'n1', 'theirs'), 403],
    ];
    for (const [method, path, body, code] of matrix) {
      const r = await node(method, path, body, method === 'PATCH' ? 'application/merge-patch+json' : 'application/json');
      expect(r.status, `${method} ${path}: ${r.body.slice(0, 200)}`).to.equal(code);
    }
    expect((await c.ok(['get', 'node', 'n2', '-o', 'jsonpath={.metadata.labels}']))).to.not.contain('hijacked');
    expect((await c.kubectl(['-n', 'team-n', 'get', 'pod', 'sneaky'])).code).to.equal(1);
  });

  it('bootstrap tokens: a kube-system bootstrap.kubernetes.io/token secret authenticates system:bootstrap:<id> until it expires', async () => {
    const secret = (id: string, expiration: string) => JSON.stringify({
      apiVersion: 'v1', kind: 'Secret', type: 'bootstrap.kubernetes.io/token',
      metadata: { name: `bootstrap-token-${id}`, namespace: 'kube-system' },
      stringData: { 'token-id': id, 'token-secret': '0123456789abcdef', 'usage-bootstrap-authentication': 'true', expiration, 'auth-extra-groups': 'system:bootstrappers:kubernel:nodes' },
    });
    await c.ok(['create', '-f', '-'], secret('abcdef', new Date(Date.now() + 3600_000).toISOString()));
    await c.ok(['create', '-f', '-'], secret('old000', new Date(Date.now() - 1000).toISOString()));
    const review = (token: string) => c.request('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }), { authorization: `Bearer ${token}` }, { cert: undefined, key: undefined });
    await until(async () => (await review('abcdef.0123456789abcdef')).status === 201);
    expect(((await review('abcdef.0123456789abcdef')).json().status as { userInfo: unknown }).userInfo).to.deep.equal({ username: 'system:bootstrap:abcdef', groups: ['system:bootstrappers', 'system:bootstrappers:kubernel:nodes', 'system:authenticated'] });
    expect((await review('old000.0123456789abcdef')).status).to.equal(401);
    expect((await review('abcdef.0123456789abcdee')).status).to.equal(401);
  });
});

/** `kubectl get|create|delete ...` arguments as `kubectl auth can-i` arguments. */
function canIArgs(args: string[]): string[] {
  const rest = [...args];
  let namespace: string[] = [];
  const n = rest.indexOf('-n');
  if (n >= 0) namespace = rest.splice(n, 2);
  const all = rest.indexOf('-A');
  if (all >= 0) {
    rest.splice(all, 1);
    namespace = ['-A'];
  }
  const [verb, resource, name] = rest;
  const plural = resource!.endsWith('s') ? resource! : `${resource}s`;
  return [verb === 'get' && !name ? 'list' : verb!, verb === 'create' || !name ? plural : `${plural}/${name}`, ...namespace];
}

async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('API priority and fairness (a small server: 20 seats)', function () {
  this.timeout(60_000);
  let c: TestCluster;
  let dir = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kubernel-flow-'));
    writeFileSync(join(dir, 'tokens.csv'), 'flood-token,flooder,u-f,\nnode-token,system:node:n1,u-n1,system:nodes\n');
    writeDistribution(dir, 'flow-test', [
      ['authn-x509', 'authn'],
      ['authn-token-file', 'authn', `{ path: "${join(dir, 'tokens.csv')}" }`],
      ['authz-rbac', 'rbac'],
    ]);
    c = await startCluster(['--distribution', join(dir, 'distribution.yaml'), '--max-requests-inflight', '10', '--max-mutating-requests-inflight', '10']);
    await c.ok(['create', 'clusterrolebinding', 'flooder-view', '--clusterrole=view', '--user=flooder']);
    await c.ok(['-n', 'kube-node-lease', 'create', 'role', 'heartbeat', '--verb=get,update,create', '--resource=leases.coordination.k8s.io']);
    await c.ok(['-n', 'kube-node-lease', 'create', 'rolebinding', 'heartbeat', '--role=heartbeat', '--group=system:nodes']);
    await c.ok(['-n', 'kube-node-lease', 'create', '-f', '-'], JSON.stringify({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'n1' }, spec: { holderIdentity: 'n1', leaseDurationSeconds: 40 } }));
  });
  after(async () => {
    await c?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a flood from one client at 10x the seats gets 429 with Retry-After, while the admin and node heartbeats still succeed', async () => {
    const none = { cert: undefined, key: undefined };
    const flood = Array.from({ length: 200 }, () => c.request('GET', '/api/v1/configmaps', undefined, { authorization: 'Bearer flood-token' }, none));
    const heartbeats: number[] = [];
    const admin: number[] = [];
    for (let i = 0; i < 10; i++) {
      const lease = await c.request('GET', '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1', undefined, { authorization: 'Bearer node-token' }, none);
      const body = lease.json() as { spec: Record<string, unknown> };
      const renewed = await c.request('PUT', '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1', JSON.stringify({ ...body, spec: { ...body.spec, renewTime: new Date().toISOString().replace('Z', '000Z') } }), { authorization: 'Bearer node-token' }, none);
      heartbeats.push(lease.status, renewed.status);
      admin.push((await c.request('GET', '/api/v1/namespaces/default')).status);
    }
    const results = await Promise.all(flood);
    const codes = new Map<number, number>();
    for (const r of results) codes.set(r.status, (codes.get(r.status) ?? 0) + 1);
    expect(codes.get(429) ?? 0, JSON.stringify([...codes])).to.be.greaterThan(0);
    expect([...codes.keys()].every((code) => code === 200 || code === 429), JSON.stringify([...codes])).to.equal(true);
    const rejected = results.find((r) => r.status === 429)!;
    expect(rejected.headers.get('retry-after')).to.equal('1');
    expect(rejected.json()).to.include({ kind: 'Status', reason: 'TooManyRequests', code: 429 });
    expect(heartbeats.every((s) => s === 200), JSON.stringify(heartbeats)).to.equal(true);
    expect(admin.every((s) => s === 200), JSON.stringify(admin)).to.equal(true);
    const metrics = (await c.request('GET', '/metrics')).body;
    expect(metrics).to.match(/apiserver_flowcontrol_rejected_requests_total\{priority_level="global-default",reason="concurrency-limit"\} [1-9]/);
  });
});
