import { expect } from 'chai';
import { parseDuration } from './duration.js';

describe('parseDuration', () => {
  it('reads Kubernetes-style durations', () => {
    expect(parseDuration('500ms')).to.equal(500);
    expect(parseDuration('30s')).to.equal(30_000);
    expect(parseDuration('1m30s')).to.equal(90_000);
    expect(parseDuration('1.5h')).to.equal(5_400_000);
    expect(parseDuration('0')).to.equal(0);
  });

  it('refuses anything else', () => {
    for (const bad of ['', '30', '-1s', '1d', 's', '1m 30s', 'soon']) expect(parseDuration(bad), bad).to.equal(undefined);
  });
});
