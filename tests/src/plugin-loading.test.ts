import { expect } from 'chai';
import { join } from 'node:path';
import { loadDistribution, loadRoles, type LoadResult } from '@kubernel/core';
import { FIXTURES } from './helpers/paths.js';

const distribution = (name: string) => loadDistribution(join(FIXTURES, 'distributions', `${name}.yaml`));
const errorsOf = (results: LoadResult[]): string[] => results.flatMap((r) => (r.ok ? [] : r.errors.map((e) => e.message)));

describe('plugin loading from a distribution (fixture packages)', () => {
  it('loads a plugin family package, with configs validated and defaults filled in', async () => {
    const results = await loadRoles(await distribution('good'), ['server', 'agent']);
    expect(errorsOf(results)).to.deep.equal([]);
    const loaded = results.flatMap((r) => (r.ok ? [r.plugin] : []));
    expect(loaded.map((p) => `${p.role}/${p.definition.id}@${p.definition.version}`)).to.deep.equal([
      'server/ticker@1.0.0',
      'server/echo@1.0.0',
      'agent/configurable@2.1.0',
    ]);
    expect(loaded[2]!.config).to.deep.equal({ port: 8080, mode: 'LeastAllocated', weights: [{ name: 'fit', weight: 3 }] });
    expect(loaded[0]!.packageName).to.equal('@kubernel-fixtures/family');
  });

  it('rejects a bad config with the JSON path of every bad field, and loads nothing', async () => {
    const results = await loadRoles(await distribution('bad-config'), ['agent']);
    expect(results.every((r) => !r.ok)).to.equal(true);
    expect(errorsOf(results)).to.have.members([
      'plugin "configurable": config/port: must be <= 65535',
      'plugin "configurable": config/mode: must be one of "LeastAllocated", "MostAllocated"',
      'plugin "configurable": config/weights/0/weight: must be <= 100',
      'plugin "configurable": config/weights/1/name: is required',
      'plugin "configurable": config/colour: is not a known field',
    ]);
  });

  it('refuses unbranded, foreign-branded, incompatible-SDK, undeclared, broken and missing packages, naming plugin, field and reason', async () => {
    const errors = errorsOf(await loadRoles(await distribution('bad-packages'), ['server']));
    expect(errors).to.have.length(7);
    expect(errors[0]).to.equal(
      'plugin "no-brand": brand: is missing: the export of @kubernel-fixtures/no-brand is not a Kubernel plugin definition; build it with definePlugin() from @kubernel/sdk',
    );
    expect(errors[1]).to.equal(
      'plugin "foreign": brand: is foreign: the export of @kubernel-fixtures/foreign-brand carries "kubernel.plugin/v0", but this kernel runs "kubernel.plugin/v1"',
    );
    expect(errors[2]).to.equal('plugin "future": sdk: requires @kubernel/sdk ^2.0.0, but this kernel provides 1.0.0');
    expect(errors[3]).to.match(/^plugin "undeclared": package: ".*undeclared" is not a Kubernel plugin package/);
    expect(errors[4]).to.equal('plugin "throws": package: importing @kubernel-fixtures/throws-on-import failed: missing native binding');
    expect(errors[5]).to.match(/^plugin "missing": package: cannot resolve "@kubernel-fixtures\/does-not-exist"/);
    expect(errors[6]).to.match(/^plugin "nope": id: package @kubernel-fixtures\/family declares the plugins \[ticker, .*\], not "nope"$/);
  });

  it('refuses one id in both roles of one process', async () => {
    const d = await distribution('good');
    const twice = { ...d, roles: { server: d.roles.server, agent: [d.roles.server[0]!] } };
    expect(errorsOf(await loadRoles(twice, ['server', 'agent']))).to.deep.equal([
      'plugin "ticker": id: is listed in both roles server and agent; one process runs each id once',
    ]);
  });
});
