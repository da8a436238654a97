import { expect } from 'chai';
import { join } from 'node:path';
import { ESLint } from 'eslint';
import { FIXTURES, ROOT } from './helpers/paths.js';

/** Lints one fixture file with the project's own config; returns `line: message` for the boundary rule. */
async function boundaryFindings(file: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: ROOT, ignore: false });
  const [result] = await eslint.lintFiles([join(FIXTURES, 'lint', file)]);
  expect(result!.messages.filter((m) => m.fatal)).to.deep.equal([]);
  return result!.messages.filter((m) => m.ruleId === 'kubernel/import-boundary').map((m) => `${m.line}: ${m.message}`);
}

describe('lint: the import boundary rule (fixtures)', function () {
  this.timeout(60_000);

  it('fails a plugin that imports core, another plugin, or reaches outside its package', async () => {
    expect(await boundaryFindings('plugins/bad-plugin/src/index.ts')).to.deep.equal([
      '3: plugin @kubernel/plugin-bad-fixture may import only @kubernel/sdk of Kubernel\'s packages, not @kubernel/core (import boundary)',
      '4: plugin @kubernel/plugin-bad-fixture may import only @kubernel/sdk of Kubernel\'s packages, not @kubernel/plugin-other (import boundary)',
      '5: @kubernel/plugin-bad-fixture must not reach outside its package with the relative import "../../../../../../core/src/kernel/tokens.js" (into @kubernel/core); import it by package name, if the boundary allows it at all (import boundary)',
      '6: plugin @kubernel/plugin-bad-fixture may import only @kubernel/sdk of Kubernel\'s packages, not @kubernel/core (import boundary)',
      '10: plugin @kubernel/plugin-bad-fixture may import only @kubernel/sdk of Kubernel\'s packages, not @kubernel/core (import boundary)',
    ]);
  });

  it('passes a plugin that imports only the SDK, third-party packages, builtins and itself', async () => {
    expect(await boundaryFindings('plugins/good-plugin/src/index.ts')).to.deep.equal([]);
  });

  it('fails core importing a plugin, by name or by path', async () => {
    const findings = await boundaryFindings('core/src/index.ts');
    expect(findings).to.have.length(2);
    expect(findings[0]).to.equal('2: core must not import plugin @kubernel/plugin-scheduler-default: load plugins by name from a distribution (import boundary)');
    expect(findings[1]).to.match(/^4: @kubernel\/core must not reach outside its package with the relative import .* \(into @kubernel\/plugin-good-fixture\)/);
  });

  it('fails the SDK importing core', async () => {
    expect(await boundaryFindings('sdk/src/index.ts')).to.deep.equal([
      '2: the SDK must not import @kubernel/core: it is the bottom of the dependency graph (import boundary)',
    ]);
  });

  it('finds nothing in the real code base', async () => {
    const eslint = new ESLint({ cwd: ROOT });
    const results = await eslint.lintFiles(['sdk/src', 'core/src', 'tests/src']);
    const findings = results.flatMap((r) => r.messages.filter((m) => m.ruleId === 'kubernel/import-boundary').map((m) => `${r.filePath}:${m.line}`));
    expect(findings).to.deep.equal([]);
  });
});
