import { expect } from 'chai';
import { ApiError } from './status.js';
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from './selectors.js';

describe('selectors', () => {
  const labels = { app: 'web', tier: 'front', 'example.com/team': 'a' };

  it('parse and match label selectors with Kubernetes operators', () => {
    const yes = ['app=web', 'app==web', 'app!=api', 'tier in (front,back)', 'tier notin (back)', 'app', '!missing', 'example.com/team=a', 'app=web,tier in (front)', ''];
    const no = ['app=api', 'app!=web', 'tier in (back)', 'tier notin (front)', 'missing', '!app', 'missing!=x,app=nope'];
    for (const s of yes) expect(matchesLabels(parseLabelSelector(s), labels), s).to.equal(true);
    for (const s of no) expect(matchesLabels(parseLabelSelector(s), labels), s).to.equal(false);
    expect(matchesLabels(parseLabelSelector('missing!=x'), labels)).to.equal(true);
    expect(matchesLabels(parseLabelSelector('app'), undefined)).to.equal(false);
  });

  it('refuse malformed label selectors with 400', () => {
    for (const s of ['app=(x', 'a b c', 'bad key!=x', '-x=y']) expect(() => parseLabelSelector(s), s).to.throw(ApiError).with.property('code', 400);
  });

  it('parse field selectors against the supported fields', () => {
    const supported = new Set(['metadata.name', 'spec.nodeName']);
    const reqs = parseFieldSelector('spec.nodeName=n1,metadata.name!=x', supported);
    const fields = (f: string): string => (f === 'spec.nodeName' ? 'n1' : 'y');
    expect(matchesFields(reqs, fields)).to.equal(true);
    expect(matchesFields(parseFieldSelector('spec.nodeName==n2', supported), fields)).to.equal(false);
    expect(matchesFields(parseFieldSelector('spec.nodeName=', supported), () => '')).to.equal(true);
    expect(() => parseFieldSelector('status.phase=Running', supported)).to.throw(ApiError, 'field label not supported: status.phase');
  });
});
