import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { describeAuthenticatorContract } from '@kubernel/sdk/testing';
import { parseTokenFile, tokenFilePlugin, x509Plugin } from './index.js';

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
