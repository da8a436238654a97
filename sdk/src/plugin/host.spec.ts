import { expect } from 'chai';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { definePlugin } from './define-plugin.js';
import { PluginContractError } from './errors.js';
import type { Extension } from './extensions.js';
import { createPluginHandle, type HandleHost } from './host.js';
import type { PluginKind } from './kinds.js';
import { untilAborted } from './lifecycle.js';
import { createMetrics } from './metrics.js';

function make(kind: PluginKind): { host: HandleHost; readies: Array<Extension | undefined> } {
  const readies: Array<Extension | undefined> = [];
  const host: HandleHost = {
    role: 'server',
    logger: pino({ level: 'silent' }),
    dataDir: '/tmp/x',
    metrics: createMetrics(new Registry(), kind),
    attempt: 3,
    extensions: () => new Map(),
    onReady: (impl) => void readies.push(impl),
  };
  return { host, readies };
}

const def = (kind: PluginKind) =>
  definePlugin({ id: 'p', kind, version: '1.0.0', sdk: '^1.0.0', configSchema: { type: 'object' }, start: async (_h, _c, s) => untilAborted(s) });

describe('createPluginHandle', () => {
  it('exposes identity, role, config, data dir and attempt, frozen', () => {
    const { host } = make('controller');
    const h = createPluginHandle(def('controller'), { a: 1 }, host);
    expect(h.plugin).to.deep.equal({ id: 'p', kind: 'controller', version: '1.0.0' });
    expect([h.role, h.dataDir, h.attempt]).to.deep.equal(['server', '/tmp/x', 3]);
    expect(h.config).to.deep.equal({ a: 1 });
    expect(Object.isFrozen(h)).to.equal(true);
  });

  it('a service becomes ready once with ready(); provide() is refused', () => {
    const { host, readies } = make('scheduler');
    const h = createPluginHandle(def('scheduler'), {}, host);
    h.ready();
    h.ready();
    expect(readies).to.deep.equal([undefined]);
    expect(() => h.provide({})).to.throw(PluginContractError, /provides nothing/);
  });

  it('a provider becomes ready by provide(impl), once; ready() is refused', () => {
    const { host, readies } = make('csi-driver');
    const h = createPluginHandle(def('csi-driver'), {}, host);
    expect(() => h.ready()).to.throw(PluginContractError, /provide\(implementation\)/);
    expect(() => h.provide(null as never)).to.throw(PluginContractError, /needs an implementation object/);
    const impl: object = { name: 'runtime' };
    h.provide(impl);
    expect(readies).to.deep.equal([impl]);
    expect(() => h.provide(impl)).to.throw(PluginContractError, /more than once/);
  });

  it('checks a published contract when it is provided (authenticator, authorizer, admission)', () => {
    for (const [kind, wrong, right] of [
      ['authenticator', { authorize: async () => undefined }, { authenticate: async () => undefined }],
      ['authorizer', { authorize: async () => ({ decision: 'allow' }), rulesFor: 'all' }, { authorize: async () => ({ decision: 'allow' }) }],
      ['admission', { handles: () => true }, { validate: async () => undefined }],
    ] as const) {
      const { host, readies } = make(kind);
      const h = createPluginHandle(def(kind), {}, host);
      expect(() => h.provide(wrong as never), kind).to.throw(PluginContractError, new RegExp(`is not a ${kind}`));
      h.provide(right as never);
      expect(readies, kind).to.deep.equal([right]);
    }
  });
});
