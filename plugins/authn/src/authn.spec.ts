import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { describeAuthenticatorContract } from '@kubernel/sdk/testing';
import { bootstrapTokenAuthenticator, parseTokenFile, tokenFilePlugin, x509Plugin } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'authn-spec-'));
const tokens = join(dir, 'tokens.csv');
writeFileSync(tokens, '# static tokens\nsecret-admin,alice,u-1,"system:masters,dev"\n\nsecret-bob,bob,u-2\n');

describeAuthenticatorContract(x509Plugin, {
  accepts: [{ request: { headers: {}, clientCertificate: { commonName: 'jane', organizations: ['dev', 'ops'] } }, user: { username: 'jane', groups: ['dev', 'ops'] } }],
  refuses: [{ headers: {}, clientCertificate: { commonName: '', organizations: ['system:masters'] } }],
  invalidConfigs: [],
});

describeAuthenticatorContract(tokenFilePlugin, {
  config: { path: tokens },
  invalidConfigs: [{ config: { path: '' }, path: '/path' }, { config: {}, path: '/path' }],
  accepts: [
    { request: { headers: { authorization: 'Bearer secret-admin' } }, user: { username: 'alice', uid: 'u-1', groups: ['system:masters', 'dev'] } },
    { request: { headers: { authorization: 'bearer secret-bob' } }, user: { username: 'bob', uid: 'u-2' } },
  ],
  refuses: [{ headers: { authorization: 'Bearer secret-admiN' } }, { headers: { authorization: 'Bearer secret-admin2' } }],
});

describe('token file parsing', () => {
  it('reads token,user,uid and quoted groups; names the line of a bad entry', () => {
    const t = parseTokenFile('a,alice,1,"x, y"\nb,bob,,z\n');
    expect(t.get('a')).to.deep.equal({ username: 'alice', uid: '1', groups: ['x', 'y'] });
    expect(t.get('b')).to.deep.equal({ username: 'bob', groups: ['z'] });
    expect(() => parseTokenFile('ok,u,1\nnouser\n')).to.throw(/line 2/);
    expect(() => parseTokenFile('a,u,1\na,v,2\n')).to.throw(/line 2: duplicate/);
  });
});

describe('bootstrap tokens (kube-system secrets of type bootstrap.kubernetes.io/token)', () => {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  const secret = (id: string, data: Record<string, string>, extra: Record<string, unknown> = {}) => ({
    type: 'bootstrap.kubernetes.io/token',
    metadata: { name: `bootstrap-token-${id}`, namespace: 'kube-system', ...extra },
    data: Object.fromEntries(Object.entries({ 'token-id': id, ...data }).map(([k, v]) => [k, b64(v)])),
  });
  const secrets = new Map<string, Record<string, unknown>>([
    ['bootstrap-token-abcdef', secret('abcdef', { 'token-secret': '0123456789abcdef', 'usage-bootstrap-authentication': 'true', expiration: '2099-01-01T00:00:00Z', 'auth-extra-groups': 'system:bootstrappers:kubeadm:default-node-token' })],
    ['bootstrap-token-old000', secret('old000', { 'token-secret': '0123456789abcdef', 'usage-bootstrap-authentication': 'true', expiration: '2020-01-01T00:00:00Z' })],
    ['bootstrap-token-nouse0', secret('nouse0', { 'token-secret': '0123456789abcdef' })],
    ['bootstrap-token-badgrp', secret('badgrp', { 'token-secret': '0123456789abcdef', 'usage-bootstrap-authentication': 'true', 'auth-extra-groups': 'system:masters' })],
  ]);
  const authn = bootstrapTokenAuthenticator((name) => secrets.get(name));
  const as = (t: string) => authn.authenticate({ headers: { authorization: `Bearer ${t}` } });
  it('authenticates a valid token as system:bootstrap:<id> with its extra groups', async () => {
    expect(await as('abcdef.0123456789abcdef')).to.deep.equal({ user: { username: 'system:bootstrap:abcdef', groups: ['system:bootstrappers', 'system:bootstrappers:kubeadm:default-node-token'] } });
  });
  it('refuses a wrong secret, an expired token, one not for authentication, and extra groups outside system:bootstrappers:', async () => {
    expect(await as('abcdef.0123456789abcdee')).to.have.property('error');
    expect(await as('old000.0123456789abcdef')).to.deep.equal({ error: 'bootstrap token old000 has expired' });
    expect(await as('nouse0.0123456789abcdef')).to.have.property('error');
    expect(await as('badgrp.0123456789abcdef')).to.have.property('error');
  });
  it('passes on tokens of another shape or without a secret', async () => {
    expect(await as('zzzzzz.0123456789abcdef')).to.equal(undefined);
    expect(await as('not-a-bootstrap-token')).to.equal(undefined);
  });
});
