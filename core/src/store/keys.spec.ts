import { expect } from 'chai';
import { fromSubjectKey, InvalidKeyError, toSubjectFilter, toSubjectKey } from './keys.js';

describe('store keys', () => {
  it('map logical paths to NATS KV keys, one token per segment', () => {
    expect(toSubjectKey('/registry/pods/default/nginx')).to.equal('registry.pods.default.nginx');
    expect(toSubjectFilter('/registry/pods/')).to.equal('registry.pods.>');
    expect(toSubjectFilter('/')).to.equal('>');
  });

  it('escape everything outside [A-Za-z0-9_-], so odd names neither collide nor break NATS rules', () => {
    const names = ['a.b', 'a-b', 'a_b', 'a=2Eb', 'system:node:n1', 'x/y', 'é', '*', '>', ' ', 'a..b', 'A.b'];
    const keys = names.map((n) => toSubjectKey(`/registry/things/${n}`));
    expect(new Set(keys).size).to.equal(names.length);
    for (const k of keys) expect(k).to.match(/^[A-Za-z0-9_=.-]+$/);
    expect(toSubjectKey('/r/t/system:node:n1')).to.equal('r.t.system=3Anode=3An1');
    expect(toSubjectKey('/r/t/a.b')).to.equal('r.t.a=2Eb');
    names.forEach((n, i) => expect(fromSubjectKey(keys[i]!)).to.equal(`/registry/things/${n}`));
  });

  it('keep a namespaced and a cluster-scoped layout apart', () => {
    expect(toSubjectKey('/registry/x//name')).to.not.equal(toSubjectKey('/registry/x/name'));
    expect(fromSubjectKey(toSubjectKey('/registry/x//name'))).to.equal('/registry/x//name');
  });

  it('refuse keys and prefixes the store cannot represent', () => {
    expect(() => toSubjectKey('registry/pods')).to.throw(InvalidKeyError, /starts with '\/'/);
    expect(() => toSubjectKey('/registry/pods/')).to.throw(InvalidKeyError, /does not end with/);
    expect(() => toSubjectFilter('/registry/po')).to.throw(InvalidKeyError, /ends with '\/'/);
    expect(() => toSubjectKey(`/${'a'.repeat(5000)}`)).to.throw(InvalidKeyError, /at most 4096/);
  });
});
