import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { SDK_VERSION } from '../version.js';
import { checkPluginSpec, definePlugin, isPluginDefinition, PLUGIN_BRAND, PLUGIN_BRAND_FORMAT, pluginBrandOf, type PluginSpec } from './define-plugin.js';
import { PluginError } from './errors.js';
import { untilAborted } from './lifecycle.js';
import type { PluginKind } from './kinds.js';

const spec = (over: Partial<PluginSpec<PluginKind, unknown>> = {}): PluginSpec<PluginKind, unknown> => ({
  id: 'sample',
  kind: 'controller',
  version: '1.2.3',
  sdk: '^1.0.0',
  configSchema: { type: 'object', additionalProperties: false, properties: {} },
  start: async (_h, _c, signal) => untilAborted(signal),
  ...over,
});

describe('definePlugin', () => {
  it('returns a frozen definition branded with this SDK version', () => {
    const d = definePlugin(spec());
    expect(Object.isFrozen(d)).to.equal(true);
    expect(pluginBrandOf(d)).to.deep.equal({ format: PLUGIN_BRAND_FORMAT, sdkVersion: SDK_VERSION });
    expect(isPluginDefinition(d)).to.equal(true);
    expect(d.id).to.equal('sample');
  });

  it('uses a registered symbol, so definitions from another copy of the SDK are recognised', () => {
    expect(PLUGIN_BRAND).to.equal(Symbol.for('kubernel.plugin.definition'));
  });

  const bad: Array<[string, Partial<PluginSpec<PluginKind, unknown>>, string]> = [
    ['id with upper case', { id: 'Sample' }, 'id'],
    ['id too long', { id: 'a'.repeat(64) }, 'id'],
    ['id ending with -', { id: 'a-' }, 'id'],
    ['unknown kind', { kind: 'webhook' as PluginKind }, 'kind'],
    ['bad version', { version: 'one' }, 'version'],
    ['bad sdk range', { sdk: 'latest!' }, 'sdk'],
    ['schema not an object', { configSchema: [] as never }, 'configSchema'],
    ['schema that does not compile', { configSchema: { type: 'nonsense' } }, 'configSchema'],
    ['schema with an unknown keyword (ajv strict)', { configSchema: { type: 'object', colour: 'red' } }, 'configSchema'],
    ['start not a function', { start: 'go' as never }, 'start'],
  ];
  for (const [title, over, field] of bad) {
    it(`refuses ${title}, naming the field "${field}"`, () => {
      expect(() => definePlugin(spec(over))).to.throw(PluginError).with.property('field', field);
    });
  }

  it('checkPluginSpec lists every problem, not just the first', () => {
    const problems = checkPluginSpec({ id: 'X', kind: 'nope', version: '', sdk: '', configSchema: null, start: 1 });
    expect(problems.map((p) => p.field)).to.deep.equal(['id', 'kind', 'version', 'sdk', 'configSchema', 'start']);
    expect(problems[0]!.message).to.match(/^plugin "X": id: must be a DNS-1123 label/);
  });

  it('isPluginDefinition refuses unbranded and foreign-branded objects', () => {
    expect(isPluginDefinition({ ...spec() })).to.equal(false);
    expect(isPluginDefinition({ ...spec(), [PLUGIN_BRAND]: { format: 'kubernel.plugin/v0', sdkVersion: '0.1.0' } })).to.equal(false);
    expect(pluginBrandOf({ [PLUGIN_BRAND]: { format: 'other', sdkVersion: '9.0.0' } })).to.deep.equal({ format: 'other', sdkVersion: '9.0.0' });
    expect(pluginBrandOf(null)).to.equal(undefined);
    expect(pluginBrandOf({ [PLUGIN_BRAND]: 'v1' })).to.equal(undefined);
  });
});

describe('SDK_VERSION', () => {
  it('equals the version in the SDK package.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(SDK_VERSION).to.equal(pkg.version);
  });
});
