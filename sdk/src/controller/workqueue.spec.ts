import { expect } from 'chai';
import { Registry } from 'prom-client';
import { createMetrics } from '../plugin/metrics.js';
import {
  BucketRateLimiter,
  ItemExponentialFailureRateLimiter,
  MaxOfRateLimiter,
  WorkQueue,
  defaultControllerRateLimiter,
  type WorkQueueClock,
} from './workqueue.js';

/** A hand-driven clock: timers fire only inside advance(), in due order. */
class FakeClock implements WorkQueueClock {
  time = 0;
  /** Every delay passed to setTimeout, in call order. */
  readonly requested: number[] = [];
  private readonly timers = new Map<number, { at: number; callback: () => void }>();
  private nextId = 1;

  now(): number {
    return this.time;
  }
  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.requested.push(ms);
    this.timers.set(id, { at: this.time + ms, callback });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  /** Timers armed and not yet fired or cleared. */
  get pending(): number {
    return this.timers.size;
  }
  advance(ms: number): void {
    const target = this.time + ms;
    for (;;) {
      let next: [number, { at: number; callback: () => void }] | undefined;
      for (const entry of this.timers) if (entry[1].at <= target && (!next || entry[1].at < next[1].at)) next = entry;
      if (!next) break;
      this.timers.delete(next[0]);
      this.time = next[1].at;
      next[1].callback();
    }
    this.time = target;
  }
}

/** Lets pending promise callbacks run. */
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Takes every key queued right now, in order (and marks them done). */
async function drainKeys<K extends string>(q: WorkQueue<K>): Promise<K[]> {
  const out: K[] = [];
  while (q.len() > 0) {
    const key = (await q.get())!;
    out.push(key);
    q.done(key);
  }
  return out;
}

describe('WorkQueue', () => {
  describe('queueing', () => {
    it('deduplicates a key queued several times', async () => {
      const q = new WorkQueue();
      q.add('a');
      q.add('a');
      q.add('b');
      q.add('a');
      expect(q.len()).to.equal(2);
      expect(await drainKeys(q)).to.deep.equal(['a', 'b']);
      q.shutDown();
    });

    it('hands keys out first in, first out', async () => {
      const q = new WorkQueue<'x' | 'y' | 'z'>();
      q.add('z');
      q.add('x');
      q.add('y');
      expect(await drainKeys(q)).to.deep.equal(['z', 'x', 'y']);
      q.shutDown();
    });

    it('never hands one key to two workers: a key added while processing is re-queued once on done', async () => {
      const q = new WorkQueue();
      q.add('a');
      const first = await q.get();
      expect(first).to.equal('a');
      q.add('a');
      q.add('a');
      expect(q.len()).to.equal(0, 'dirty, not queued, while being processed');
      let second: string | undefined;
      const waiting = q.get().then((k) => (second = k));
      await flush();
      expect(second).to.equal(undefined, 'a second worker must not get "a" while it is processed');
      q.done('a');
      await waiting;
      expect(second).to.equal('a');
      expect(q.len()).to.equal(0, 'the two adds while processing count once');
      q.done('a');
      expect(q.len()).to.equal(0);
      q.shutDown();
    });

    it('processes a dirty key after the keys queued before it was re-queued', async () => {
      const q = new WorkQueue();
      q.add('a');
      await q.get();
      q.add('a');
      q.add('b');
      q.done('a');
      expect(await drainKeys(q)).to.deep.equal(['b', 'a']);
      q.shutDown();
    });

    it('ignores done for a key that is not being processed', async () => {
      const q = new WorkQueue();
      q.add('a');
      q.done('a');
      q.done('b');
      expect(q.len()).to.equal(1);
      expect(await drainKeys(q)).to.deep.equal(['a']);
      q.shutDown();
    });

    it('get waits while the queue is empty and serves waiting getters in order', async () => {
      const q = new WorkQueue();
      const got: string[] = [];
      const one = q.get().then((k) => got.push(`1:${k}`));
      const two = q.get().then((k) => got.push(`2:${k}`));
      await flush();
      expect(got).to.deep.equal([]);
      q.add('a');
      q.add('b');
      await Promise.all([one, two]);
      expect(got).to.deep.equal(['1:a', '2:b']);
      q.shutDown();
    });
  });

  describe('delayed adds', () => {
    it('adds keys when their delay has passed, soonest first', () => {
      const clock = new FakeClock();
      const q = new WorkQueue({ clock });
      q.addAfter('late', 30);
      q.addAfter('soon', 10);
      q.addAfter('middle', 20);
      expect(q.len()).to.equal(0);
      clock.advance(9);
      expect(q.len()).to.equal(0);
      clock.advance(1);
      expect(q.len()).to.equal(1);
      clock.advance(10);
      expect(q.len()).to.equal(2);
      clock.advance(10);
      expect(q.len()).to.equal(3);
      q.shutDown();
    });

    it('hands delayed keys out in due order, equal due times in call order', async () => {
      const clock = new FakeClock();
      const q = new WorkQueue({ clock });
      q.addAfter('c', 30);
      q.addAfter('a', 10);
      q.addAfter('b1', 20);
      q.addAfter('b2', 20);
      clock.advance(30);
      expect(await drainKeys(q)).to.deep.equal(['a', 'b1', 'b2', 'c']);
      q.shutDown();
    });

    it('keeps the earlier due time when a key is delayed twice', async () => {
      const clock = new FakeClock();
      const q = new WorkQueue({ clock });
      q.addAfter('a', 100);
      q.addAfter('a', 10);
      q.addAfter('b', 10);
      q.addAfter('b', 100);
      clock.advance(10);
      expect(await drainKeys(q)).to.deep.equal(['a', 'b']);
      clock.advance(200);
      expect(q.len()).to.equal(0, 'the later requests were merged into the earlier ones');
      q.shutDown();
    });

    it('uses one timer for all delayed keys, re-armed for a sooner one', () => {
      const clock = new FakeClock();
      const q = new WorkQueue({ clock });
      for (let i = 0; i < 100; i++) q.addAfter(`k${i}`, 1000 + i);
      expect(clock.pending).to.equal(1);
      expect(clock.requested).to.deep.equal([1000]);
      q.addAfter('sooner', 50);
      expect(clock.pending).to.equal(1, 'the old timer was replaced, not joined');
      expect(clock.requested).to.deep.equal([1000, 50]);
      clock.advance(50);
      expect(q.len()).to.equal(1);
      expect(clock.pending).to.equal(1, 're-armed for the next due key');
      clock.advance(1099 - 50);
      expect(q.len()).to.equal(101);
      expect(clock.pending).to.equal(0, 'no timer when nothing waits');
      q.shutDown();
    });

    it('caps a timer at the longest delay Node supports and re-arms', () => {
      const clock = new FakeClock();
      const q = new WorkQueue({ clock });
      q.addAfter('far', 2 ** 32);
      expect(clock.requested).to.deep.equal([2 ** 31 - 1]);
      clock.advance(2 ** 31 - 1);
      expect(q.len()).to.equal(0);
      expect(clock.pending).to.equal(1);
      clock.advance(2 ** 32 - (2 ** 31 - 1));
      expect(q.len()).to.equal(1);
      q.shutDown();
    });

    it('adds at once with a delay <= 0 and refuses NaN', () => {
      const clock = new FakeClock();
      const q = new WorkQueue({ clock });
      q.addAfter('now', 0);
      q.addAfter('past', -5);
      expect(q.len()).to.equal(2);
      expect(clock.pending).to.equal(0);
      expect(() => q.addAfter('bad', Number.NaN)).to.throw(RangeError, /NaN/);
      expect(q.len()).to.equal(2);
      q.shutDown();
    });

    it('works on the real clock', async () => {
      const q = new WorkQueue();
      q.addAfter('a', 5);
      expect(q.len()).to.equal(0);
      expect(await q.get()).to.equal('a');
      q.shutDown();
    });

    it('clears the real timer on shutDown, so a stopped queue keeps no process alive', () => {
      const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
      const before = timers();
      const q = new WorkQueue();
      q.addAfter('a', 60_000);
      expect(timers()).to.equal(before + 1);
      q.shutDown();
      expect(timers()).to.equal(before);
    });
  });

  describe('rate limiting', () => {
    it('addRateLimited delays by the rate limiter; forget and numRequeues go to it', () => {
      const clock = new FakeClock();
      const q = new WorkQueue({ clock, rateLimiter: new ItemExponentialFailureRateLimiter(5, 1000) });
      q.addRateLimited('a');
      expect(q.numRequeues('a')).to.equal(1);
      clock.advance(4);
      expect(q.len()).to.equal(0);
      clock.advance(1);
      expect(q.len()).to.equal(1);
      q.addRateLimited('b');
      q.addRateLimited('b');
      expect(clock.requested.at(-1)).to.equal(5, 'the second request (10 ms) does not delay the first (5 ms)');
      expect(q.numRequeues('b')).to.equal(2);
      q.forget('b');
      expect(q.numRequeues('b')).to.equal(0);
      q.shutDown();
    });

    it('uses the default controller rate limiter when none is given', () => {
      const clock = new FakeClock();
      const q = new WorkQueue({ clock });
      q.addRateLimited('a');
      expect(clock.requested).to.deep.equal([5]);
      q.shutDown();
    });
  });

  describe('shutdown', () => {
    it('wakes waiting getters with undefined and ignores later adds', async () => {
      const q = new WorkQueue();
      const waiting = [q.get(), q.get()];
      await flush();
      q.shutDown();
      expect(await Promise.all(waiting)).to.deep.equal([undefined, undefined]);
      expect(q.shuttingDown).to.equal(true);
      q.add('a');
      q.addAfter('b', 0);
      q.addRateLimited('c');
      expect(q.len()).to.equal(0);
      expect(q.numRequeues('c')).to.equal(0);
      expect(await q.get()).to.equal(undefined);
    });

    it('still hands out keys queued before the shutdown, then undefined', async () => {
      const q = new WorkQueue();
      q.add('a');
      q.add('b');
      q.shutDown();
      expect(await q.get()).to.equal('a');
      expect(await q.get()).to.equal('b');
      expect(await q.get()).to.equal(undefined);
    });

    it('drops delayed keys and clears their timer', () => {
      const clock = new FakeClock();
      const q = new WorkQueue({ clock });
      q.addAfter('a', 10);
      q.addAfter('b', 20);
      expect(clock.pending).to.equal(1);
      q.shutDown();
      expect(clock.pending).to.equal(0);
      clock.advance(100);
      expect(q.len()).to.equal(0);
    });

    it('shutDownWithDrain resolves once the keys in flight are done', async () => {
      const q = new WorkQueue();
      q.add('a');
      q.add('b');
      const a = (await q.get())!;
      const b = (await q.get())!;
      let drained = false;
      const drain = q.shutDownWithDrain().then(() => (drained = true));
      expect(q.shuttingDown).to.equal(true);
      q.done(a);
      await flush();
      expect(drained).to.equal(false, '"b" is still being processed');
      q.done(b);
      await drain;
      expect(drained).to.equal(true);
    });

    it('shutDownWithDrain resolves at once with nothing in flight, and shutDown forces a pending one', async () => {
      await new WorkQueue().shutDownWithDrain();
      const q = new WorkQueue();
      q.add('a');
      await q.get();
      const drain = q.shutDownWithDrain();
      q.shutDown();
      await drain;
    });
  });

  describe('get with a signal', () => {
    it('resolves undefined at once for an aborted signal and takes no key', async () => {
      const q = new WorkQueue();
      q.add('a');
      expect(await q.get(AbortSignal.abort())).to.equal(undefined);
      expect(q.len()).to.equal(1);
      expect(await q.get()).to.equal('a');
      q.shutDown();
    });

    it('resolves undefined when the signal aborts while waiting; the next key goes to another getter', async () => {
      const q = new WorkQueue();
      const controller = new AbortController();
      const aborted = q.get(controller.signal);
      controller.abort();
      expect(await aborted).to.equal(undefined);
      q.add('a');
      expect(q.len()).to.equal(1, 'the aborted getter did not swallow the key');
      expect(await q.get(new AbortController().signal)).to.equal('a');
      q.shutDown();
    });
  });

  describe('metrics', () => {
    async function value(registry: Registry, name: string, suffix = ''): Promise<number | undefined> {
      const metric = registry.getSingleMetric(name);
      if (!metric) return undefined;
      const data = await metric.get();
      const wanted = `${name}${suffix}`;
      return data.values.find((v) => v.labels.name === 'q' && ((v as { metricName?: string }).metricName ?? name) === wanted)?.value;
    }

    it('publishes client-go workqueue metrics labelled with the queue name', async () => {
      const registry = new Registry();
      const clock = new FakeClock();
      const q = new WorkQueue({ name: 'q', metrics: createMetrics(registry, 'test'), clock });
      q.add('a');
      q.add('a');
      q.add('b');
      expect(await value(registry, 'workqueue_adds_total')).to.equal(2);
      expect(await value(registry, 'workqueue_depth')).to.equal(2);

      clock.advance(250);
      const a = (await q.get())!;
      expect(await value(registry, 'workqueue_depth')).to.equal(1);
      expect(await value(registry, 'workqueue_queue_duration_seconds', '_sum')).to.equal(0.25);
      expect(await value(registry, 'workqueue_queue_duration_seconds', '_count')).to.equal(1);

      clock.advance(1000);
      q.done(a);
      expect(await value(registry, 'workqueue_work_duration_seconds', '_sum')).to.equal(1);
      expect(await value(registry, 'workqueue_work_duration_seconds', '_count')).to.equal(1);

      const b = (await q.get())!;
      clock.advance(2000);
      q.add('c');
      const c = (await q.get())!;
      expect(await value(registry, 'workqueue_unfinished_work_seconds')).to.equal(2);
      expect(await value(registry, 'workqueue_longest_running_processor_seconds')).to.equal(2);
      q.done(b);
      q.done(c);
      expect(await value(registry, 'workqueue_unfinished_work_seconds')).to.equal(0);

      q.addRateLimited('a');
      q.addAfter('d', 10);
      expect(await value(registry, 'workqueue_retries_total')).to.equal(2);
      q.shutDown();
    });

    it('requires a name with metrics', () => {
      expect(() => new WorkQueue({ metrics: createMetrics(new Registry(), 'test') })).to.throw(TypeError, /name/);
    });
  });
});

describe('rate limiters', () => {
  it('ItemExponentialFailureRateLimiter doubles from 5 ms per key up to 1000 s; forget restarts it', () => {
    const limiter = new ItemExponentialFailureRateLimiter();
    expect([1, 2, 3, 4, 5].map(() => limiter.when('a'))).to.deep.equal([5, 10, 20, 40, 80]);
    expect(limiter.when('b')).to.equal(5, 'per key');
    expect(limiter.numRequeues('a')).to.equal(5);
    for (let i = 0; i < 13; i++) limiter.when('a');
    expect(limiter.when('a')).to.equal(1_000_000, '5 ms * 2^18 exceeds the cap');
    for (let i = 0; i < 1100; i++) limiter.when('a');
    expect(limiter.when('a')).to.equal(1_000_000, 'still capped once 2^n overflows');
    limiter.forget('a');
    expect(limiter.numRequeues('a')).to.equal(0);
    expect(limiter.when('a')).to.equal(5);
    expect(() => new ItemExponentialFailureRateLimiter(-1)).to.throw(RangeError);
  });

  it('BucketRateLimiter allows the burst, then spaces requests 100 ms apart at 10 qps', () => {
    const clock = new FakeClock();
    const limiter = new BucketRateLimiter(10, 100, clock);
    const burst = Array.from({ length: 100 }, (_, i) => limiter.when(`k${i}`));
    expect(burst.every((d) => d === 0)).to.equal(true);
    expect([limiter.when('x'), limiter.when('y'), limiter.when('z')]).to.deep.equal([100, 200, 300]);
    clock.advance(300);
    expect(limiter.when('x')).to.equal(100, 'the three reserved tokens were paid back');
    expect(limiter.numRequeues('x')).to.equal(0);
    expect(() => new BucketRateLimiter(0)).to.throw(RangeError);
    expect(() => new BucketRateLimiter(10, 0)).to.throw(RangeError);
  });

  it('BucketRateLimiter refills at qps up to the burst', () => {
    const clock = new FakeClock();
    const limiter = new BucketRateLimiter(10, 100, clock);
    for (let i = 0; i < 100; i++) limiter.when('k');
    clock.advance(1000);
    const refilled = Array.from({ length: 10 }, () => limiter.when('k'));
    expect(refilled.every((d) => d === 0)).to.equal(true);
    expect(limiter.when('k')).to.equal(100);
    clock.advance(3_600_000);
    const full = Array.from({ length: 100 }, () => limiter.when('k'));
    expect(full.every((d) => d === 0)).to.equal(true, 'never more than the burst');
    expect(limiter.when('k')).to.equal(100);
  });

  it('MaxOfRateLimiter returns the longest delay and forwards forget and numRequeues', () => {
    const clock = new FakeClock();
    const limiter = new MaxOfRateLimiter(new ItemExponentialFailureRateLimiter(5, 1000), new BucketRateLimiter(1, 1, clock));
    expect(limiter.when('a')).to.equal(5, 'bucket has a token: 0 ms; exponential: 5 ms');
    expect(limiter.when('a')).to.equal(1000, 'bucket empty: 1 s; exponential: 10 ms');
    expect(limiter.numRequeues('a')).to.equal(2);
    limiter.forget('a');
    expect(limiter.numRequeues('a')).to.equal(0);
    expect(new MaxOfRateLimiter().when('a')).to.equal(0);
  });

  it('defaultControllerRateLimiter is max(exponential 5 ms..1000 s, bucket 10 qps burst 100)', () => {
    const clock = new FakeClock();
    const limiter = defaultControllerRateLimiter(clock);
    expect([limiter.when('a'), limiter.when('a'), limiter.when('a')]).to.deep.equal([5, 10, 20]);
    for (let i = 0; i < 97; i++) expect(limiter.when(`k${i}`)).to.equal(5);
    expect(limiter.when('k-101')).to.equal(100, 'the 101st request waits for the bucket');
    for (let i = 0; i < 30; i++) limiter.when('a');
    clock.advance(3_600_000);
    expect(limiter.when('a')).to.equal(1_000_000);
  });
});
