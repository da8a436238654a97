import { expect } from 'chai';
import { definePlugin, delay, untilAborted, type PluginDefinition, type PluginKind } from '@kubernel/sdk';
import { createTestHost, type TestHost } from '@kubernel/sdk/testing';
import type { KernelSettings } from './distribution.js';
import { Kernel, KernelStartError } from './kernel.js';
import type { LoadedPlugin } from './plugin-loader.js';

const settings: KernelSettings = {
  startTimeoutMs: 1000,
  stopTimeoutMs: 300,
  restartBackoffInitialMs: 20,
  restartBackoffMaxMs: 80,
  restartBackoffResetMs: 60_000,
};

const schema = { type: 'object' } as const;
function plugin<K extends PluginKind>(id: string, kind: K, start: PluginDefinition<K, unknown>['start']): PluginDefinition<K, unknown> {
  return definePlugin({ id, kind, version: '1.0.0', sdk: '^1.0.0', configSchema: schema, start });
}
const loaded = (definition: PluginDefinition): LoadedPlugin => ({
  role: 'server',
  definition,
  config: {},
  packageName: 'inline',
  packageVersion: '0.0.0',
  modulePath: '',
});

/** A service that counts ticks until aborted. */
function ticker(id: string, counter: { ticks: number }): PluginDefinition {
  return plugin(id, 'controller', async (handle, _c, signal) => {
    handle.ready();
    while (await delay(5, signal)) counter.ticks++;
  }) as PluginDefinition;
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await delay(5);
  }
}

describe('Kernel', () => {
  let host: TestHost;
  let kernel: Kernel | undefined;
  const make = (defs: PluginDefinition[], over: Partial<KernelSettings> = {}): Kernel =>
    (kernel = new Kernel({
      options: { roles: ['server'], dataDir: host.dataDir, settings: { ...settings, ...over } },
      plugins: defs.map(loaded),
      logger: host.logger,
      registry: host.registry,
    }));
  const messages = (): string[] => host.logs.map((l) => String(l.msg));

  beforeEach(() => {
    host = createTestHost();
  });
  afterEach(async () => {
    await kernel?.stop();
    kernel = undefined;
    host.dispose();
  });

  it('starts providers before services and stops services before providers; consumers see providers', async () => {
    const events: string[] = [];
    let seen: string[] = [];
    const consumer = plugin('consumer', 'scheduler', async (handle, _c, signal) => {
      events.push('consumer start');
      seen = [...handle.extensions('scheduler-plugin').keys()];
      handle.ready();
      await untilAborted(signal);
      events.push('consumer stop');
    });
    const provider = plugin('fit', 'scheduler-plugin', async (handle, _c, signal) => {
      events.push('provider start');
      handle.provide({ name: 'Fit', create: () => ({ name: 'Fit' }), close: () => void events.push('provider closed') });
      await untilAborted(signal);
      events.push('provider stop');
    });
    const k = make([consumer as PluginDefinition, provider as PluginDefinition]);
    await k.start();
    expect(seen).to.deep.equal(['fit']);
    expect(k.health()).to.include({ live: true, ready: true });
    const report = await k.stop();
    expect(report).to.deep.equal({ stopped: ['consumer', 'fit'], abandoned: [] });
    expect(events).to.deep.equal(['provider start', 'consumer start', 'consumer stop', 'provider stop', 'provider closed']);
    expect(k.statuses().map((s) => s.state)).to.deep.equal(['stopped', 'stopped']);
  });

  it('restarts a crashing plugin with exponential back-off while another keeps running', async () => {
    const counter = { ticks: 0 };
    const attempts: number[] = [];
    const crashy = plugin('crashy', 'controller', async (handle) => {
      attempts.push(handle.attempt);
      handle.ready();
      await delay(10);
      throw new Error(`boom ${handle.attempt}`);
    });
    const k = make([ticker('steady', counter), crashy as PluginDefinition]);
    await k.start();
    await until(() => attempts.length >= 5);
    const ticksMidway = counter.ticks;
    await until(() => counter.ticks > ticksMidway + 3);
    const backoffs = host.logs.filter((l) => l.plugin === 'crashy' && typeof l.backoffMs === 'number').map((l) => l.backoffMs);
    expect(backoffs.slice(0, 4)).to.deep.equal([20, 40, 80, 80]);
    expect(attempts.slice(0, 5)).to.deep.equal([1, 2, 3, 4, 5]);
    expect(messages()).to.include('plugin "crashy" crashed (boom 1); restarting in 20 ms');
    const steady = k.statuses().find((s) => s.id === 'steady')!;
    expect(steady).to.include({ state: 'running', restarts: 0 });
    const crashyStatus = k.statuses().find((s) => s.id === 'crashy')!;
    expect(crashyStatus.restarts).to.be.greaterThanOrEqual(4);
    expect(crashyStatus.lastError).to.match(/^boom \d+$/);
    const metrics = await host.registry.metrics();
    expect(metrics).to.match(/kubernel_plugin_restarts_total\{plugin="crashy",kind="controller"\} [4-9]/);
    expect(metrics).to.contain('kubernel_plugin_state{plugin="steady",kind="controller",state="running"} 1');
  });

  it('counts resolving before abort as a crash', async () => {
    let runs = 0;
    const quitter = plugin('quitter', 'controller', async (handle) => {
      runs++;
      handle.ready();
    });
    const k = make([quitter as PluginDefinition]);
    await k.start();
    await until(() => runs >= 2);
    expect(messages()).to.include('plugin "quitter" crashed (start() resolved before its signal aborted); restarting in 20 ms');
  });

  it('resets the back-off after a run that lasted resetAfter', async () => {
    const crashy = plugin('crashy', 'controller', async (handle) => {
      handle.ready();
      await delay(30);
      throw new Error('late boom');
    });
    const k = make([crashy as PluginDefinition], { restartBackoffResetMs: 10 });
    await k.start();
    await until(() => host.logs.filter((l) => l.backoffMs !== undefined).length >= 3);
    expect(host.logs.filter((l) => l.backoffMs !== undefined).map((l) => l.backoffMs).slice(0, 3)).to.deep.equal([20, 20, 20]);
  });

  it('fails start-up fast, naming the plugin, and stops what already started', async () => {
    const counter = { ticks: 0 };
    const broken = plugin('broken', 'controller', async () => {
      throw new Error('cannot reach the API server');
    });
    const never = plugin('later', 'controller', async (h, _c, s) => {
      h.ready();
      await untilAborted(s);
    });
    const k = make([ticker('first', counter), broken as PluginDefinition, never as PluginDefinition]);
    const err = await k.start().then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(KernelStartError);
    expect((err as KernelStartError).plugin).to.equal('broken');
    expect((err as Error).message).to.equal('start-up failed: plugin "broken" start() failed: cannot reach the API server');
    expect(Object.fromEntries(k.statuses().map((s) => [s.id, s.state]))).to.deep.equal({ first: 'stopped', broken: 'failed', later: 'pending' });
  });

  it('fails start-up when a plugin is not ready within the start timeout', async () => {
    const slow = plugin('slow', 'controller', async (_h, _c, signal) => untilAborted(signal));
    const k = make([slow as PluginDefinition], { startTimeoutMs: 50 });
    const err = (await k.start().then(() => undefined, (e: unknown) => e)) as Error;
    expect(err.message).to.equal('start-up failed: plugin "slow" did not become ready within the 0.05s start timeout');
  });

  it('abandons a plugin that ignores abort, names it, and still stops within the timeout', async () => {
    const counter = { ticks: 0 };
    const stubborn = plugin('stubborn', 'controller', async (handle) => {
      handle.ready();
      await new Promise(() => undefined);
    });
    const k = make([ticker('polite', counter), stubborn as PluginDefinition], { stopTimeoutMs: 100 });
    await k.start();
    const began = Date.now();
    const report = await k.stop();
    const took = Date.now() - began;
    expect(report).to.deep.equal({ stopped: ['polite'], abandoned: ['stubborn'] });
    expect(took).to.be.lessThan(1000);
    expect(messages()).to.include('plugin "stubborn" did not stop within the 0.1s stop timeout after abort; abandoned');
    expect(k.health().live).to.equal(false);
    expect(k.statuses().find((s) => s.id === 'polite')!.state).to.equal('stopped');
  });

  it('reports not ready during back-off, and stops at once while backing off', async () => {
    const crashy = plugin('crashy', 'controller', async (handle) => {
      handle.ready();
      throw new Error('boom');
    });
    const k = make([crashy as PluginDefinition], { restartBackoffInitialMs: 60_000, restartBackoffMaxMs: 60_000 });
    await k.start();
    await until(() => k.statuses()[0]!.state === 'backoff');
    expect(k.health()).to.include({ live: true, ready: false });
    const began = Date.now();
    await k.stop();
    expect(Date.now() - began).to.be.lessThan(1000);
    expect(k.statuses()[0]!.state).to.equal('stopped');
  });

  it('replaces a restarted provider\'s implementation and closes the old one', async () => {
    const closed: number[] = [];
    const flaky = plugin('flaky', 'admission', async (handle) => {
      handle.provide({ attempt: handle.attempt, validate: async () => undefined, close: () => void closed.push(handle.attempt) } as object);
      await delay(15);
      throw new Error('lost connection');
    });
    let lookup: (() => ReadonlyMap<string, object>) | undefined;
    const reader = plugin('reader', 'controller', async (handle, _c, signal) => {
      lookup = () => handle.extensions('admission');
      handle.ready();
      await untilAborted(signal);
    });
    const k = make([reader as PluginDefinition, flaky as PluginDefinition]);
    await k.start();
    await until(() => closed.length >= 2 && (lookup!().get('flaky') as { attempt?: number } | undefined)?.attempt === 3);
    expect(closed.slice(0, 2)).to.deep.equal([1, 2]);
  });
});
