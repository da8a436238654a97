import { expect } from 'chai';
import { ApiStatusError, type ApiClient, type KubeObject } from '../client/api-client.js';
import { EVENT_AGGREGATE_PREFIX, EventRecorder, type CoreEvent, type EventRecorderOptions } from './events.js';
import type { WallClock } from './leader-election.js';

const T0 = Date.parse('2026-11-25T22:00:00Z');

/** A clock moved by hand; a timer (only the retry waits use one) fires at once and moves time on. */
class ManualClock implements WallClock {
  time = T0;
  now(): number {
    return this.time;
  }
  setTimeout(callback: () => void, ms: number): unknown {
    this.time += ms;
    queueMicrotask(callback);
    return undefined;
  }
  clearTimeout(): void {}
}

interface Call {
  readonly verb: 'create' | 'patch';
  readonly path: string;
  readonly body: Record<string, unknown>;
}

/** Events stored by namespace/name; `fail` holds errors thrown by the next calls, in order. */
class FakeEventApi implements Pick<ApiClient, 'create' | 'patch'> {
  readonly events = new Map<string, CoreEvent>();
  readonly calls: Call[] = [];
  readonly fail: Error[] = [];
  gate?: Promise<void>;

  async create<T>(path: string, body: unknown): Promise<T> {
    await this.enter();
    const event = structuredClone(body) as CoreEvent;
    this.calls.push({ verb: 'create', path, body: event as unknown as Record<string, unknown> });
    this.check();
    expect(path).to.equal(`/api/v1/namespaces/${event.metadata.namespace}/events`);
    const k = `${event.metadata.namespace}/${event.metadata.name}`;
    if (this.events.has(k)) throw new ApiStatusError(409, 'AlreadyExists', `events "${event.metadata.name}" already exists`);
    this.events.set(k, { ...event, metadata: { ...event.metadata, resourceVersion: '1' } });
    return this.events.get(k) as T;
  }

  async patch<T>(path: string, body: unknown, contentType = 'application/merge-patch+json'): Promise<T> {
    await this.enter();
    this.calls.push({ verb: 'patch', path, body: structuredClone(body) as Record<string, unknown> });
    this.check();
    expect(contentType).to.equal('application/merge-patch+json');
    const [, , , namespace, , name] = path.slice(1).split('/');
    const k = `${namespace}/${name}`;
    const current = this.events.get(k);
    if (!current) throw new ApiStatusError(404, 'NotFound', `events "${name}" not found`);
    this.events.set(k, { ...current, ...(body as Partial<CoreEvent>) });
    return this.events.get(k) as T;
  }

  get creates(): Call[] {
    return this.calls.filter((c) => c.verb === 'create');
  }

  get patches(): Call[] {
    return this.calls.filter((c) => c.verb === 'patch');
  }

  private async enter(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    await this.gate;
  }

  private check(): void {
    const err = this.fail.shift();
    if (err) throw err;
  }
}

const pod = (name = 'web-0'): KubeObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'shop', uid: `uid-${name}`, resourceVersion: '42', labels: { app: 'web' } } });

describe('EventRecorder', () => {
  let clock: ManualClock;
  let api: FakeEventApi;
  let warnings: { obj: Record<string, unknown>; msg: string }[];
  const recorder = (over: Partial<EventRecorderOptions> = {}): EventRecorder =>
    new EventRecorder({ api, clock, component: 'web-controller', host: 'node-1', retryDelayMs: 1_000, logger: { warn: (obj, msg) => warnings.push({ obj: obj as Record<string, unknown>, msg }) }, ...over });

  beforeEach(() => {
    clock = new ManualClock();
    api = new FakeEventApi();
    warnings = [];
  });

  it('creates a core/v1 Event in the object\'s namespace, named <object>.<hex timestamp>', async () => {
    const r = recorder();
    r.event(pod(), 'Normal', 'Started', 'Started container web');
    expect(api.calls).to.deep.equal([]); // asynchronous
    await r.flush();
    expect(api.calls).to.have.length(1);
    const { path, body } = api.calls[0]!;
    expect(path).to.equal('/api/v1/namespaces/shop/events');
    expect(body).to.deep.equal({
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `web-0.${(BigInt(T0) * 1_000_000n).toString(16)}`, namespace: 'shop' },
      involvedObject: { apiVersion: 'v1', kind: 'Pod', name: 'web-0', namespace: 'shop', uid: 'uid-web-0', resourceVersion: '42' },
      reason: 'Started',
      message: 'Started container web',
      source: { component: 'web-controller', host: 'node-1' },
      firstTimestamp: '2026-11-25T22:00:00Z',
      lastTimestamp: '2026-11-25T22:00:00Z',
      count: 1,
      type: 'Normal',
      reportingComponent: 'web-controller',
      reportingInstance: 'node-1',
    });
    expect(warnings).to.deep.equal([]);
  });

  it('gives events recorded in the same millisecond distinct names', async () => {
    const r = recorder();
    r.event(pod(), 'Normal', 'Pulled', 'a');
    r.event(pod(), 'Normal', 'Created', 'b');
    await r.flush();
    const names = api.creates.map((c) => (c.body as unknown as CoreEvent).metadata.name);
    expect(new Set(names).size).to.equal(2);
    for (const n of names) expect(n).to.match(/^web-0\.[0-9a-f]+$/);
  });

  it('counts identical events on the first one: PATCH count and lastTimestamp, name kept', async () => {
    const r = recorder();
    r.event(pod(), 'Warning', 'BackOff', 'Back-off restarting failed container');
    clock.time += 30_000;
    r.event(pod(), 'Warning', 'BackOff', 'Back-off restarting failed container');
    await r.flush();
    expect(api.calls.map((c) => c.verb)).to.deep.equal(['create', 'patch']);
    const created = api.creates[0]!.body as unknown as CoreEvent;
    expect(api.patches[0]!.path).to.equal(`/api/v1/namespaces/shop/events/${created.metadata.name}`);
    expect(api.patches[0]!.body).to.deep.equal({ count: 2, lastTimestamp: '2026-11-25T22:00:30Z', message: 'Back-off restarting failed container' });
    clock.time += 30_000;
    r.event(pod(), 'Warning', 'BackOff', 'Back-off restarting failed container');
    await r.flush();
    expect(api.events.size).to.equal(1);
    const stored = [...api.events.values()][0]!;
    expect(stored).to.include({ count: 3, firstTimestamp: '2026-11-25T22:00:00Z', lastTimestamp: '2026-11-25T22:01:00Z' });
    // A different object, type or source is a different event.
    r.event(pod('web-1'), 'Warning', 'BackOff', 'Back-off restarting failed container');
    r.event(pod(), 'Normal', 'BackOff', 'Back-off restarting failed container');
    const other = recorder({ component: 'other' });
    other.event(pod(), 'Warning', 'BackOff', 'Back-off restarting failed container');
    await Promise.all([r.flush(), other.flush()]);
    expect(api.events.size).to.equal(4);
  });

  it('aggregates similar events (same reason, different messages) from the 10th distinct message in 10 minutes', async () => {
    const r = recorder();
    for (let i = 1; i <= 12; i++) {
      r.event(pod(), 'Warning', 'FailedMount', `volume ${i} not found`);
      clock.time += 1_000;
    }
    await r.flush();
    expect(api.calls.map((c) => c.verb)).to.deep.equal([...Array<string>(10).fill('create'), 'patch', 'patch']);
    const messages = api.creates.map((c) => (c.body as unknown as CoreEvent).message);
    expect(messages.slice(0, 9)).to.deep.equal(Array.from({ length: 9 }, (_, i) => `volume ${i + 1} not found`));
    expect(messages[9]).to.equal(`${EVENT_AGGREGATE_PREFIX}volume 10 not found`);
    const combined = [...api.events.values()].find((e) => e.message.startsWith(EVENT_AGGREGATE_PREFIX))!;
    expect(combined).to.include({ count: 3, message: `${EVENT_AGGREGATE_PREFIX}volume 12 not found`, reason: 'FailedMount' });
    expect(api.patches.every((p) => p.path.endsWith(`/${combined.metadata.name}`))).to.equal(true);

    // After 10 quiet minutes the window starts afresh: the next message is written as is.
    clock.time += 600_001;
    r.event(pod(), 'Warning', 'FailedMount', 'volume 13 not found');
    await r.flush();
    expect((api.calls.at(-1)!.body as unknown as CoreEvent).message).to.equal('volume 13 not found');
    expect(api.calls.at(-1)!.verb).to.equal('create');
  });

  it('drops events beyond a burst of 25 per source and object, refilling one every 5 minutes', async () => {
    const r = recorder();
    for (let i = 0; i < 30; i++) r.event(pod(), 'Normal', `Reason${i}`, 'm');
    r.event(pod('web-1'), 'Normal', 'Other', 'another object has its own budget');
    await r.flush();
    expect(api.creates).to.have.length(26);
    expect(api.creates.filter((c) => (c.body as unknown as CoreEvent).involvedObject.name === 'web-0')).to.have.length(25);
    clock.time += 300_000;
    r.event(pod(), 'Normal', 'Late1', 'm');
    r.event(pod(), 'Normal', 'Late2', 'm');
    await r.flush();
    expect(api.creates.map((c) => (c.body as unknown as CoreEvent).reason).slice(-2)).to.deep.equal(['Other', 'Late1']);
    expect(warnings).to.deep.equal([]); // the spam filter is silent, as client-go's
  });

  it('writes events about cluster-scoped objects to the default namespace', async () => {
    const r = recorder();
    r.event({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-1', uid: 'n1' } }, 'Warning', 'NodeNotReady', 'Node is not ready');
    await r.flush();
    const body = api.calls[0]!.body as unknown as CoreEvent;
    expect(api.calls[0]!.path).to.equal('/api/v1/namespaces/default/events');
    expect(body.metadata.namespace).to.equal('default');
    expect(body.involvedObject).to.deep.equal({ apiVersion: 'v1', kind: 'Node', name: 'node-1', uid: 'n1' });
  });

  it('retries transient failures and never throws into the caller', async () => {
    const r = recorder();
    api.fail.push(new Error('socket hang up'), new ApiStatusError(503, 'ServiceUnavailable', 'try later'));
    expect(() => r.event(pod(), 'Normal', 'Started', 'x')).not.to.throw();
    await r.flush();
    expect(api.creates).to.have.length(3);
    expect(api.events.size).to.equal(1);
    expect(warnings.map((w) => w.msg)).to.deep.equal(['event recorder: could not write the event (will retry)', 'event recorder: could not write the event (will retry)']);
    expect(warnings[0]!.obj).to.include({ component: 'web-controller', reason: 'Started', attempt: 1 });
  });

  it('gives up after maxTries, and does not retry what the server rejects', async () => {
    const r = recorder({ maxTries: 3 });
    api.fail.push(new Error('down'), new Error('down'), new Error('down'));
    r.event(pod(), 'Normal', 'A', 'x');
    await r.flush();
    expect(api.calls).to.have.length(3);
    expect(warnings.at(-1)!.msg).to.match(/retry limit reached/);

    api.fail.push(new ApiStatusError(403, 'Forbidden', 'events is forbidden'));
    r.event(pod(), 'Normal', 'B', 'x');
    r.event(pod(), 'Normal', 'C', 'x'); // the queue moves on
    await r.flush();
    expect(api.calls).to.have.length(5);
    expect(warnings.at(-1)!.msg).to.match(/rejected the event \(will not retry\)/);
    expect([...api.events.values()].map((e) => e.reason)).to.deep.equal(['C']);
  });

  it('ignores unusable input with a warning instead of throwing', async () => {
    const r = recorder();
    expect(() => r.event({ kind: 'Pod', metadata: {} }, 'Normal', 'X', 'no name')).not.to.throw();
    expect(() => r.event(pod(), 'Info' as never, 'X', 'bad type')).not.to.throw();
    expect(() => r.event(undefined as never, 'Normal', 'X', 'nothing')).not.to.throw();
    await r.flush();
    expect(api.calls).to.deep.equal([]);
    expect(warnings).to.have.length(3);
    expect(() => new EventRecorder({ api, component: '' })).to.throw(TypeError, /component/);
  });

  it('re-creates a counted Event that was deleted, with its count', async () => {
    const r = recorder();
    r.event(pod(), 'Warning', 'Unhealthy', 'probe failed');
    await r.flush();
    api.events.clear();
    clock.time += 5_000;
    r.event(pod(), 'Warning', 'Unhealthy', 'probe failed');
    await r.flush();
    expect(api.calls.map((c) => c.verb)).to.deep.equal(['create', 'patch', 'create']);
    expect([...api.events.values()][0]).to.include({ count: 2, firstTimestamp: '2026-11-25T22:00:00Z', lastTimestamp: '2026-11-25T22:00:05Z' });
  });

  it('bounds the queue while the API is slow, dropping with a warning', async () => {
    let open!: () => void;
    api.gate = new Promise<void>((resolve) => (open = resolve));
    const r = recorder({ maxQueued: 2 });
    for (let i = 0; i < 5; i++) r.event(pod(), 'Normal', `R${i}`, 'x');
    // Three dropped at once: one warning (with the count), not one per event.
    expect(warnings.filter((w) => /already queued; 1 event\(s\) dropped/.test(w.msg))).to.have.length(1);
    clock.time += 10_000;
    r.event(pod(), 'Normal', 'R9', 'x');
    expect(warnings.filter((w) => /already queued; 3 event\(s\) dropped since the last warning/.test(w.msg))).to.have.length(1);
    open();
    await r.flush();
    expect(api.creates.map((c) => (c.body as unknown as CoreEvent).reason)).to.deep.equal(['R0', 'R1']);
  });

  it('stops with its signal: a write waiting to retry gives up with no timer left, later events are dropped', async () => {
    const stop = new AbortController();
    const r = new EventRecorder({ api, component: 'web-controller', retryDelayMs: 60_000, signal: stop.signal });
    api.fail.push(new Error('the API client is closed'));
    r.event(pod(), 'Normal', 'Started', 'x');
    while (api.calls.length === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    await new Promise<void>((resolve) => setImmediate(resolve));
    expect(api.calls).to.have.length(1); // failed; now waiting up to a minute on the real clock
    const waiting = process.getActiveResourcesInfo().filter((t) => t === 'Timeout').length;
    stop.abort();
    await r.flush();
    expect(process.getActiveResourcesInfo().filter((t) => t === 'Timeout').length).to.be.below(waiting);
    r.event(pod(), 'Normal', 'Later', 'x');
    await r.flush();
    expect(api.calls).to.have.length(1);
    expect(api.events.size).to.equal(0);
  });
});
