import { expect } from 'chai';
import { Registry } from 'prom-client';
import { createMetrics } from './metrics.js';

describe('createMetrics', () => {
  it('registers metrics in the shared registry', async () => {
    const registry = new Registry();
    const m = createMetrics(registry, 'a');
    m.counter({ name: 'a_things_total', help: 'things', labelNames: ['k'] }).inc({ k: 'x' }, 2);
    m.gauge({ name: 'a_level', help: 'level' }).set(7);
    m.histogram({ name: 'a_seconds', help: 'time', buckets: [1, 2] }).observe(1.5);
    const text = await registry.metrics();
    expect(text).to.contain('a_things_total{k="x"} 2');
    expect(text).to.contain('a_level 7');
    expect(text).to.contain('a_seconds_bucket{le="2"} 1');
  });

  it('gives a restarted owner back the same metric, values kept', async () => {
    const registry = new Registry();
    createMetrics(registry, 'a').counter({ name: 'a_total', help: 'h' }).inc();
    const again = createMetrics(registry, 'a').counter({ name: 'a_total', help: 'h' });
    again.inc();
    expect((await again.get()).values[0]!.value).to.equal(2);
  });

  it('refuses a name owned by another plugin or asked for with another type', () => {
    const registry = new Registry();
    createMetrics(registry, 'a').counter({ name: 'shared_total', help: 'h' });
    expect(() => createMetrics(registry, 'b').counter({ name: 'shared_total', help: 'h' })).to.throw(/already registered by "a"/);
    expect(() => createMetrics(registry, 'a').gauge({ name: 'shared_total', help: 'h' })).to.throw(/as a counter, not a gauge/);
  });

  it('shares a metric declared shared among owners asking with the same labels', () => {
    const registry = new Registry();
    const a = createMetrics(registry, 'a').counter({ name: 'workqueue_adds_total', help: 'h', labelNames: ['name'], shared: true });
    const b = createMetrics(registry, 'b').counter({ name: 'workqueue_adds_total', help: 'h', labelNames: ['name'], shared: true });
    expect(b).to.equal(a);
    expect(() => createMetrics(registry, 'c').counter({ name: 'workqueue_adds_total', help: 'h' })).to.throw(/already registered/);
    expect(() => createMetrics(registry, 'c').counter({ name: 'workqueue_adds_total', help: 'h', labelNames: ['other'], shared: true })).to.throw(/already registered/);
  });

  it('keeps registries apart', () => {
    createMetrics(new Registry(), 'a').counter({ name: 'x_total', help: 'h' });
    expect(() => createMetrics(new Registry(), 'b').counter({ name: 'x_total', help: 'h' })).not.to.throw();
  });
});
