import { expect } from 'chai';
import { DistributionError, parseDistribution } from './distribution.js';

const header = 'apiVersion: kubernel.io/v1alpha1\nkind: Distribution\nmetadata: {name: test}\n';

function problems(text: string): string[] {
  try {
    parseDistribution(text, '/tmp/d.yaml');
  } catch (e) {
    expect(e).to.be.instanceOf(DistributionError);
    return (e as DistributionError).problems.map((p) => `${p.path}: ${p.message}`);
  }
  throw new Error('expected a DistributionError');
}

describe('parseDistribution', () => {
  it('reads roles and entries, filling in defaults', () => {
    const d = parseDistribution(`${header}spec:\n  roles:\n    server:\n      plugins:\n        - {id: a, package: "@x/a", config: {n: 1}}\n`, 'dist/d.yaml');
    expect(d.name).to.equal('test');
    expect(d.path).to.match(/\/dist\/d\.yaml$/);
    expect(d.roles.server).to.deep.equal([{ id: 'a', package: '@x/a', config: { n: 1 }, enabled: true }]);
    expect(d.roles.agent).to.deep.equal([]);
    expect(d.kernel).to.deep.equal({
      startTimeoutMs: 60_000,
      stopTimeoutMs: 30_000,
      restartBackoffInitialMs: 1000,
      restartBackoffMaxMs: 60_000,
      restartBackoffResetMs: 600_000,
    });
  });

  it('reads durations', () => {
    const d = parseDistribution(`${header}spec:\n  kernel: {stopTimeout: 1m30s, restartBackoff: {initial: 250ms}}\n  roles: {}\n`, 'd.yaml');
    expect(d.kernel.stopTimeoutMs).to.equal(90_000);
    expect(d.kernel.restartBackoffInitialMs).to.equal(250);
  });

  it('reports YAML syntax errors', () => {
    expect(problems(`${header}spec: {roles: [}\n`)[0]).to.match(/^: YAML: /);
  });

  it('names each bad field by JSON pointer', () => {
    expect(
      problems(
        'apiVersion: v1\nkind: Distribution\nmetadata: {name: t}\nspec:\n  kernel: {stopTimeout: soon}\n  roles:\n    server:\n      plugins:\n        - {id: a}\n        - {id: b, package: p, colour: red}\n    worker: {}\n',
      ),
    ).to.have.members([
      '/apiVersion: must be equal to constant',
      '/spec/kernel/stopTimeout: must match pattern "^(0|(\\d+(\\.\\d+)?(ms|s|m|h))+)$"',
      '/spec/roles/server/plugins/0/package: is required',
      '/spec/roles/server/plugins/1/colour: is not a known field',
      '/spec/roles/worker: is not a known field',
    ]);
  });

  it('refuses duplicate ids within a role', () => {
    expect(problems(`${header}spec:\n  roles:\n    agent:\n      plugins: [{id: a, package: p}, {id: a, package: q}]\n`)).to.deep.equal([
      '/spec/roles/agent/plugins/1/id: duplicate plugin id "a" in role agent',
    ]);
  });

  it('refuses a document that is not a mapping', () => {
    expect(problems('- just\n- a list\n')).to.deep.equal([': must be object']);
  });
});
