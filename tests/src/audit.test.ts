import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { FIXTURES } from './helpers/paths.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/livez*", "/readyz*", "/version"]
  - level: Metadata
    resources: [{ group: "", resources: ["secrets"] }]
  - level: RequestResponse
    resources: [{ group: "", resources: ["configmaps"] }]
  - level: Metadata
`;

describe('audit log (audit.k8s.io/v1 Policy, JSON lines)', function () {
  this.timeout(60_000);
  const dir = mkdtempSync(join(tmpdir(), 'kubernel-audit-'));
  const log = join(dir, 'audit.log');
  let c: TestCluster;
  let events: Json[];

  before(async () => {
    writeFileSync(join(dir, 'policy.yaml'), POLICY);
    c = await startCluster(['--audit-policy-file', join(dir, 'policy.yaml'), '--audit-log-path', log, '--distribution', join(FIXTURES, 'distributions', 'authn-only.yaml')], join(dir, 'data'));
    await c.ok(['create', 'secret', 'generic', 'creds', '--from-literal=token=top-secret-marker']);
    await c.ok(['get', 'secret', 'creds', '-o', 'json']);
    await c.ok(['create', 'configmap', 'settings', '--from-literal=colour=blue']);
    await c.request('GET', '/livez');
    expect((await c.request('GET', '/api/v1/namespaces', undefined, {}, { cert: undefined, key: undefined })).status).to.equal(401);
    await c.stop(true);
    events = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Json);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes one ResponseComplete event per request, with user, verb, object and code', () => {
    const create = events.find((e) => e.verb === 'create' && e.objectRef?.resource === 'configmaps');
    expect(create).to.deep.include({ kind: 'Event', apiVersion: 'audit.k8s.io/v1', stage: 'ResponseComplete', level: 'RequestResponse' });
    expect(create.user).to.deep.equal({ username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] });
    expect(create.objectRef).to.include({ resource: 'configmaps', namespace: 'default', apiVersion: 'v1' });
    expect(create.responseStatus.code).to.equal(201);
    expect(create.requestObject.data).to.deep.equal({ colour: 'blue' });
    expect(create.responseObject.metadata.name).to.equal('settings');
    expect(create.annotations['authorization.k8s.io/decision']).to.equal('allow');
    expect(statSync(log).mode & 0o777).to.equal(0o600);
  });

  it('never logs secret data at Metadata level', () => {
    const secretEvents = events.filter((e) => e.objectRef?.resource === 'secrets');
    expect(secretEvents.map((e) => e.verb)).to.include.members(['create', 'get']);
    for (const e of secretEvents) {
      expect(e.level).to.equal('Metadata');
      expect(e).to.not.have.property('requestObject');
      expect(e).to.not.have.property('responseObject');
    }
    const text = readFileSync(log, 'utf8');
    expect(text).to.not.contain('top-secret-marker');
    expect(text).to.not.contain(Buffer.from('top-secret-marker').toString('base64'));
  });

  it('follows the policy\'s first matching rule: None drops health checks; the catch-all logs the refused anonymous request', () => {
    expect(events.some((e) => String(e.requestURI).startsWith('/livez'))).to.equal(false);
    const refused = events.find((e) => e.requestURI === '/api/v1/namespaces' && e.responseStatus.code === 401);
    expect(refused.level).to.equal('Metadata');
    expect(refused.user.username).to.equal('system:anonymous');
  });
});
