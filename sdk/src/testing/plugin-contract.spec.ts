import { expect } from 'chai';
import { createServer } from 'node:net';
import { definePlugin } from '../plugin/define-plugin.js';
import { delay, untilAborted } from '../plugin/lifecycle.js';
import { startPlugin } from './harness.js';
import { describePluginContract } from './plugin-contract.js';
import { trackResources } from './resources.js';

/** A well-behaved service: a ticking loop with a metric, stopped on abort. */
const ticker = definePlugin({
  id: 'ticker',
  kind: 'controller',
  version: '1.0.0',
  sdk: '^1.0.0',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: { intervalMs: { type: 'integer', minimum: 1, default: 5 } },
  },
  async start(handle, config: { intervalMs: number }, signal) {
    const ticks = handle.metrics.counter({ name: 'ticker_ticks_total', help: 'ticks' });
    handle.ready();
    while (await delay(config.intervalMs, signal)) ticks.inc();
  },
});

/** A well-behaved provider: a TCP server it provides and closes. */
const listener = definePlugin({
  id: 'listener',
  kind: 'service-proxy',
  version: '1.0.0',
  sdk: '^1.0.0',
  configSchema: { type: 'object', additionalProperties: false, properties: {} },
  async start(handle, _config, signal) {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    handle.provide({ close: () => new Promise<void>((resolve) => server.close(() => resolve())) });
    await untilAborted(signal);
  },
});

describePluginContract(ticker, { config: { intervalMs: 2 }, invalidConfigs: [{ config: { intervalMs: 0 }, path: '/intervalMs' }] });
describePluginContract(listener);

describe('test kit', () => {
  it('trackResources reports a timer left behind, even unref\'d, and nothing once it is cleared', async () => {
    await new Promise<void>((resolve) => setImmediate(resolve)); // mocha arms its test timer after the first turn
    const leaking = trackResources();
    const timer = setInterval(() => undefined, 1000).unref();
    clearTimeout(setTimeout(() => undefined, 1000));
    expect(await leaking.settle(50)).to.deep.equal(['Timeout x1']);
    const clean = trackResources();
    clearInterval(setInterval(() => undefined, 1000).unref());
    clearInterval(timer);
    expect(await clean.settle(50)).to.deep.equal([]);
  });

  it('trackResources reports a server left open', async () => {
    await new Promise<void>((resolve) => setImmediate(resolve));
    const tracker = trackResources();
    const server = createServer().listen(0, '127.0.0.1');
    try {
      expect(await tracker.settle(20)).to.deep.equal(['TCPSERVERWRAP x1']);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('startPlugin refuses an invalid config, naming the field', () => {
    expect(() => startPlugin(ticker, { config: { intervalMs: 'fast' } })).to.throw(/config\/intervalMs: must be integer/);
  });

  it('startPlugin reports a plugin that resolves before it is ready', async () => {
    const quitter = definePlugin({ ...ticker, id: 'quitter', start: async () => undefined });
    const running = startPlugin(quitter);
    const outcome = await running.ready.then(() => 'ready', (e: Error) => e.message);
    expect(outcome).to.match(/resolved before the plugin became ready/);
    running.host.dispose();
  });

  it('stop reports a timeout for a plugin that ignores abort', async () => {
    const deaf = definePlugin({
      ...ticker,
      id: 'deaf',
      start: async (handle) => {
        handle.ready();
        await new Promise(() => undefined);
      },
    });
    const running = startPlugin(deaf);
    await running.ready;
    expect((await running.stop(30)).outcome).to.equal('timeout');
    running.host.dispose();
  });
});
