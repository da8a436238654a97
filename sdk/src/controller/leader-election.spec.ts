import { expect } from 'chai';
import type { Logger } from 'pino';
import { ApiStatusError, type ApiClient, type RequestOptions } from '../client/api-client.js';
import { untilAborted } from '../plugin/lifecycle.js';
import { LeaderElector, clockDelay, formatMicroTime, type Lease, type LeaderElectorOptions, type WallClock, type WarnLogger } from './leader-election.js';

/** Lets every pending promise chain run (the fakes never touch real timers). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** A clock whose time moves only when the test says so; timers fire in time order. */
class FakeClock implements WallClock {
  private time = Date.parse('2026-11-25T22:00:00Z');
  private seq = 0;
  private readonly timers = new Map<number, { at: number; callback: () => void }>();

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    this.timers.set(++this.seq, { at: this.time + ms, callback });
    return this.seq;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      await settle();
      let next: [number, { at: number; callback: () => void }] | undefined;
      for (const entry of this.timers) if (entry[1].at <= end && (!next || entry[1].at < next[1].at)) next = entry;
      if (!next) break;
      this.timers.delete(next[0]);
      this.time = Math.max(this.time, next[1].at);
      next[1].callback();
    }
    this.time = end;
    await settle();
  }
}

type Mode = 'up' | 'down' | 'hang';
const NS = 'kube-system';
const NAME = 'demo';
const COLLECTION = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`;
const PATH = `${COLLECTION}/${NAME}`;

/** One Lease behind an API that checks resourceVersion as the real one does. */
class FakeLeaseServer {
  lease?: Lease;
  private rv = 0;
  readonly log: { who: string; method: string; status: number; at: number }[] = [];

  constructor(private readonly clock: FakeClock) {}

  /** The client of one candidate; set `mode` to make its calls fail or hang. */
  client(who: string): Pick<ApiClient, 'request'> & { mode: Mode } {
    const api = {
      mode: 'up' as Mode,
      request: async <T>(method: string, path: string, options: RequestOptions = {}): Promise<T> => {
        if (api.mode === 'down') throw new Error('connect ECONNREFUSED');
        if (api.mode === 'hang') return new Promise<T>(() => undefined);
        try {
          const out = this.handle(method, path, options.body as Lease | undefined);
          this.log.push({ who, method, status: 200, at: this.clock.now() });
          return structuredClone(out) as T;
        } catch (err) {
          this.log.push({ who, method, status: (err as ApiStatusError).code, at: this.clock.now() });
          throw err;
        }
      },
    };
    return api;
  }

  /** A write by something other than a candidate (kubectl, another controller). */
  put(mutate: (lease: Lease) => void): void {
    const lease = structuredClone(this.lease!);
    mutate(lease);
    this.lease = { ...lease, metadata: { ...lease.metadata, resourceVersion: String(++this.rv) } };
  }

  seed(spec: Lease['spec']): void {
    this.lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: NAME, namespace: NS, resourceVersion: String(++this.rv) }, spec };
  }

  get spec(): NonNullable<Lease['spec']> {
    return this.lease?.spec ?? {};
  }

  conflicts(who?: string): number {
    return this.log.filter((e) => e.status === 409 && (!who || e.who === who)).length;
  }

  private handle(method: string, path: string, body?: Lease): Lease {
    if (method === 'POST') {
      expect(path).to.equal(COLLECTION);
      if (this.lease) throw new ApiStatusError(409, 'AlreadyExists', `leases "${NAME}" already exists`);
      this.lease = { ...body!, metadata: { ...body!.metadata, resourceVersion: String(++this.rv), uid: 'lease-uid' } };
      return this.lease;
    }
    expect(path).to.equal(PATH);
    if (!this.lease) throw new ApiStatusError(404, 'NotFound', `leases "${NAME}" not found`);
    if (method === 'GET') return this.lease;
    expect(method).to.equal('PUT');
    if (body?.metadata?.resourceVersion !== this.lease.metadata?.resourceVersion) {
      throw new ApiStatusError(409, 'Conflict', 'the object has been modified; please apply your changes to the latest version and try again');
    }
    this.lease = { ...body!, metadata: { ...body!.metadata, resourceVersion: String(++this.rv) } };
    return this.lease;
  }
}

interface Candidate {
  readonly id: string;
  readonly elector: LeaderElector;
  readonly api: { mode: Mode };
  readonly events: string[];
  readonly cancel: AbortController;
  readonly running: Promise<void>;
  readonly state: { done: boolean; error?: unknown; leaderSignal?: AbortSignal; startedAt?: number; stoppedAt?: number };
}

function candidate(server: FakeLeaseServer, clock: FakeClock, identity: string, over: Partial<LeaderElectorOptions> = {}): Candidate {
  const api = server.client(identity);
  const events: string[] = [];
  const state: Candidate['state'] = { done: false };
  const cancel = new AbortController();
  const elector = new LeaderElector({
    api,
    clock,
    namespace: NS,
    name: NAME,
    identity,
    onStartedLeading: (signal) => {
      events.push('started');
      state.leaderSignal = signal;
      state.startedAt = clock.now();
      return untilAborted(signal);
    },
    onStoppedLeading: () => {
      events.push('stopped');
      state.stoppedAt = clock.now();
    },
    onNewLeader: (id) => events.push(`leader:${id}`),
    ...over,
  });
  const running = elector.run(cancel.signal).then(
    () => void (state.done = true),
    (error: unknown) => {
      state.done = true;
      state.error = error;
    },
  );
  return { id: identity, elector, api, events, cancel, running, state };
}

const MICROTIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;
const leaders = (cs: Candidate[]): string[] => cs.filter((c) => c.elector.isLeader()).map((c) => c.id);

describe('LeaderElector', () => {
  let clock: FakeClock;
  let server: FakeLeaseServer;

  beforeEach(() => {
    clock = new FakeClock();
    server = new FakeLeaseServer(clock);
  });

  it('formats MicroTime as RFC 3339 with six fractional digits', () => {
    const t = Date.parse('2026-11-25T22:00:00.123Z') + 0.456;
    expect(formatMicroTime(t)).to.equal('2026-11-25T22:00:00.123456Z');
    expect(formatMicroTime(Date.parse('2026-11-25T22:00:00Z'))).to.equal('2026-11-25T22:00:00.000000Z');
  });

  it('validates its options with clear messages', () => {
    const base = { api: server.client('a'), namespace: NS, name: NAME, identity: 'a', onStartedLeading: () => undefined };
    expect(() => new LeaderElector({ ...base, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 })).to.throw(RangeError, /leaseDurationMs \(10000\) must be greater than renewDeadlineMs \(10000\)/);
    expect(() => new LeaderElector({ ...base, renewDeadlineMs: 2_400, retryPeriodMs: 2_000 })).to.throw(RangeError, /renewDeadlineMs \(2400\) must be greater than retryPeriodMs \* 1\.2/);
    expect(() => new LeaderElector({ ...base, retryPeriodMs: 0 })).to.throw(RangeError, /retryPeriodMs must be a positive/);
    expect(() => new LeaderElector({ ...base, identity: '' })).to.throw(TypeError, /identity must be a non-empty string/);
    expect(() => new LeaderElector({ ...base, onStartedLeading: undefined as never })).to.throw(TypeError, /onStartedLeading/);
    expect(() => new LeaderElector(base)).not.to.throw();
  });

  it('a single candidate creates the Lease, leads, renews, and releases it on cancel', async () => {
    const a = candidate(server, clock, 'a');
    await clock.advance(0);
    expect(a.elector.isLeader()).to.equal(true);
    expect(a.elector.getLeader()).to.equal('a');
    expect(a.events).to.deep.equal(['leader:a', 'started']);
    const first = { ...server.spec };
    expect(first).to.include({ holderIdentity: 'a', leaseDurationSeconds: 15, leaseTransitions: 0 });
    expect(first.acquireTime).to.match(MICROTIME).and.equal(first.renewTime);
    expect(server.lease?.metadata).to.include({ name: NAME, namespace: NS });

    await clock.advance(2_000);
    expect(server.spec.renewTime).to.equal(formatMicroTime(clock.now()));
    expect(server.spec.acquireTime).to.equal(first.acquireTime);
    await clock.advance(6_000);
    expect(server.spec.renewTime).to.equal(formatMicroTime(clock.now()));
    expect(server.spec.leaseTransitions).to.equal(0);
    expect(server.conflicts()).to.equal(0);

    a.cancel.abort();
    await clock.advance(0);
    expect(a.state.done).to.equal(true);
    expect(a.state.leaderSignal?.aborted).to.equal(true);
    expect(a.events).to.deep.equal(['leader:a', 'started', 'stopped']);
    expect(a.elector.isLeader()).to.equal(false);
    expect(server.spec).to.include({ holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 0 });
  });

  it('with several candidates, exactly one leads at a time, also across hand-overs', async () => {
    const cs = ['a', 'b', 'c'].map((id) => candidate(server, clock, id));
    await clock.advance(0);
    const first = leaders(cs);
    expect(first).to.have.length(1);
    for (let t = 0; t < 30_000; t += 100) {
      await clock.advance(100);
      expect(leaders(cs)).to.deep.equal(first);
    }
    // The leader steps down (releasing); another takes over, never two at once.
    const leader = cs.find((c) => c.elector.isLeader())!;
    leader.cancel.abort();
    let second: string[] = [];
    for (let t = 0; t < 10_000; t += 100) {
      await clock.advance(100);
      const now = leaders(cs);
      expect(now.length).to.be.at.most(1);
      if (now.length) second = now;
    }
    expect(second).to.have.length(1).and.not.deep.equal(first);
    expect(leaders(cs)).to.deep.equal(second);
    for (const c of cs.filter((x) => x !== leader)) expect(c.elector.getLeader()).to.equal(second[0]);
    expect(server.spec.leaseTransitions).to.equal(1);
    for (const c of cs) c.cancel.abort();
    await clock.advance(0);
    expect(cs.every((c) => c.state.done)).to.equal(true);
  });

  it('a leader that cannot reach the API stops after the renew deadline; the other takes over only after the lease expires', async () => {
    const a = candidate(server, clock, 'a');
    await clock.advance(0);
    const b = candidate(server, clock, 'b');
    await clock.advance(5_000);
    expect(a.elector.isLeader()).to.equal(true);
    expect(b.elector.isLeader()).to.equal(false);
    expect(b.events).to.deep.equal(['leader:a']);

    a.api.mode = 'down';
    const lastRenew = Math.max(...server.log.filter((e) => e.who === 'a' && e.method === 'PUT' && e.status === 200).map((e) => e.at));
    for (let t = 0; t < 30_000 && !b.elector.isLeader(); t += 100) await clock.advance(100);

    // a gave up at the end of its renewal round: at most retryPeriod + renewDeadline after its last renewal.
    expect(a.state.stoppedAt! - lastRenew).to.be.within(10_000, 12_000);
    expect(a.state.done).to.equal(true);
    expect(a.state.leaderSignal?.aborted).to.equal(true);
    expect(a.events).to.deep.equal(['leader:a', 'started', 'stopped']);
    // b waited a full lease duration from when IT last saw the record change (at its first poll after
    // a's last renewal), took over at its next poll, and never overlapped with a.
    expect(b.state.startedAt! - lastRenew).to.be.within(15_000, 15_000 + 2 * 4_400);
    expect(b.state.startedAt!).to.be.greaterThan(a.state.stoppedAt!);
    expect(server.spec).to.include({ holderIdentity: 'b', leaseTransitions: 1 });
    expect(b.events).to.deep.equal(['leader:a', 'leader:b', 'started']);
    b.cancel.abort();
    await clock.advance(0);
  });

  it('abandons a renewal that hangs at the renew deadline', async () => {
    const a = candidate(server, clock, 'a');
    await clock.advance(4_000);
    const lastRenew = Math.max(...server.log.filter((e) => e.who === 'a' && e.method === 'PUT').map((e) => e.at));
    a.api.mode = 'hang';
    await clock.advance(15_000);
    expect(a.state.done).to.equal(true);
    expect(a.state.stoppedAt! - lastRenew).to.equal(2_000 + 10_000);
  });

  it('release on cancel lets another candidate take over at once, counting leaseTransitions', async () => {
    const a = candidate(server, clock, 'a');
    await clock.advance(0);
    const b = candidate(server, clock, 'b');
    await clock.advance(3_000);
    a.cancel.abort();
    await clock.advance(0);
    expect(a.state.done).to.equal(true);
    expect(server.spec).to.include({ holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 0 });
    const releasedAt = clock.now();
    for (let t = 0; t < 20_000 && !b.elector.isLeader(); t += 100) await clock.advance(100);
    expect(b.state.startedAt! - releasedAt).to.be.at.most(2 * 2_200);
    expect(server.spec).to.include({ holderIdentity: 'b', leaseDurationSeconds: 15, leaseTransitions: 1 });

    // b hands back to a fresh a: another transition.
    const a2 = candidate(server, clock, 'a');
    await clock.advance(1_000);
    b.cancel.abort();
    for (let t = 0; t < 20_000 && !a2.elector.isLeader(); t += 100) await clock.advance(100);
    expect(server.spec).to.include({ holderIdentity: 'a', leaseTransitions: 2 });
    expect(server.spec.acquireTime).to.equal(formatMicroTime(a2.state.startedAt!));
    a2.cancel.abort();
    await clock.advance(0);
  });

  it('without releaseOnCancel the Lease stays held until it expires', async () => {
    const a = candidate(server, clock, 'a', { releaseOnCancel: false });
    await clock.advance(0);
    const b = candidate(server, clock, 'b');
    await clock.advance(3_000);
    a.cancel.abort();
    await clock.advance(0);
    expect(a.state.done).to.equal(true);
    expect(a.events).to.deep.equal(['leader:a', 'started', 'stopped']);
    expect(server.spec.holderIdentity).to.equal('a');
    const lastRenew = Math.max(...server.log.filter((e) => e.who === 'a' && e.method === 'PUT').map((e) => e.at));
    await clock.advance(lastRenew + 15_000 - clock.now() - 1);
    expect(b.elector.isLeader()).to.equal(false);
    await clock.advance(2 * 4_400);
    expect(b.elector.isLeader()).to.equal(true);
    b.cancel.abort();
    await clock.advance(0);
  });

  it('releases only once the leading work has stopped', async () => {
    const a = candidate(server, clock, 'a', {
      onStartedLeading: async (signal) => {
        await untilAborted(signal);
        await clockDelay(clock, 3_000); // winding down
      },
    });
    await clock.advance(1_000);
    a.cancel.abort();
    await clock.advance(1_000);
    expect(a.elector.isLeader()).to.equal(false);
    expect(server.spec.holderIdentity).to.equal('a');
    expect(a.state.done).to.equal(false);
    await clock.advance(2_500);
    expect(server.spec.holderIdentity).to.equal('');
    expect(a.state.done).to.equal(true);
  });

  it('steps down and rejects when the leading work fails', async () => {
    const a = candidate(server, clock, 'a', {
      onStartedLeading: async () => {
        await clockDelay(clock, 1_000);
        throw new Error('boom');
      },
    });
    await clock.advance(1_500);
    expect(a.state.done).to.equal(true);
    expect((a.state.error as Error).message).to.equal('boom');
    expect(a.elector.isLeader()).to.equal(false);
    expect(server.spec.holderIdentity).to.equal('');
  });

  it('judges expiry by its own clock, not the remote renewTime', async () => {
    server.seed({ holderIdentity: 'x', leaseDurationSeconds: 15, renewTime: '2000-01-01T00:00:00.000000Z', acquireTime: '2000-01-01T00:00:00.000000Z', leaseTransitions: 4 });
    const b = candidate(server, clock, 'b');
    await clock.advance(14_900);
    expect(b.elector.isLeader()).to.equal(false);
    expect(b.elector.getLeader()).to.equal('x');
    await clock.advance(2 * 2_200 + 200);
    expect(b.elector.isLeader()).to.equal(true);
    expect(server.spec).to.include({ holderIdentity: 'b', leaseTransitions: 5 });

    // A live holder whose clock is far in the future still keeps others out while it renews.
    b.cancel.abort();
    await clock.advance(0);
    server.seed({ holderIdentity: 'y', leaseDurationSeconds: 15, renewTime: '2100-01-01T00:00:00.000000Z', leaseTransitions: 0 });
    const c = candidate(server, clock, 'c');
    for (let t = 0; t < 40_000; t += 2_000) {
      await clock.advance(2_000);
      server.put((l) => void (l.spec = { ...l.spec, renewTime: formatMicroTime(Date.parse('2100-01-01T00:00:00Z') + t) }));
      expect(c.elector.isLeader()).to.equal(false);
    }
    // y stopped renewing: c sees the last change within one (jittered) poll, then waits a lease duration.
    await clock.advance(15_000);
    expect(c.elector.isLeader()).to.equal(false);
    await clock.advance(2 * 2 * 2_200);
    expect(c.elector.isLeader()).to.equal(true);
    c.cancel.abort();
    await clock.advance(0);
  });

  it('handles conflicts: racing candidates, a concurrent writer, and being deposed', async () => {
    // Two candidates race for a released Lease: both read the same resourceVersion, one update is refused.
    server.seed({ holderIdentity: '', leaseDurationSeconds: 1, leaseTransitions: 3 });
    const a = candidate(server, clock, 'a');
    const b = candidate(server, clock, 'b');
    await clock.advance(0);
    expect(server.conflicts()).to.equal(1);
    expect(leaders([a, b])).to.have.length(1);
    expect(server.spec.leaseTransitions).to.equal(4);
    const [winner, loser] = a.elector.isLeader() ? [a, b] : [b, a];
    await clock.advance(2 * 2_200); // the loser learns the winner at its next poll
    expect(loser.elector.getLeader()).to.equal(winner.id);
    expect(loser.elector.isLeader()).to.equal(false);
    loser.cancel.abort();

    // Someone else updates the Lease (a label): the leader's optimistic renewal conflicts, it re-reads and renews.
    server.put((l) => void (l.metadata = { ...l.metadata, labels: { team: 'x' } }));
    const before = server.conflicts();
    const renewedAt = server.spec.renewTime!;
    await clock.advance(2_000);
    expect(server.conflicts()).to.equal(before + 1);
    expect(winner.elector.isLeader()).to.equal(true);
    expect(server.spec.renewTime! > renewedAt).to.equal(true);
    expect(server.lease?.metadata?.labels).to.deep.equal({ team: 'x' });

    // Someone else takes the Lease outright: the leader stops at its next renewal, not after the deadline.
    server.put((l) => void (l.spec = { ...l.spec, holderIdentity: 'intruder', renewTime: formatMicroTime(clock.now()) }));
    const deposedAt = clock.now();
    await clock.advance(2_200);
    expect(winner.state.done).to.equal(true);
    expect(winner.state.stoppedAt! - deposedAt).to.be.at.most(2_000);
    expect(winner.elector.getLeader()).to.equal('intruder');
    expect(server.spec.holderIdentity).to.equal('intruder');
    expect(winner.events.at(-1)).to.equal('stopped');
  });

  it('cancelling before acquiring resolves without starting or stopping', async () => {
    server.seed({ holderIdentity: 'x', leaseDurationSeconds: 15, leaseTransitions: 0 });
    const warnings: string[] = [];
    const logger: WarnLogger = { warn: (_obj, msg) => warnings.push(msg) };
    const b = candidate(server, clock, 'b', { logger });
    await clock.advance(3_000);
    b.cancel.abort();
    await clock.advance(0);
    expect(b.state.done).to.equal(true);
    expect(b.events).to.deep.equal(['leader:x']);
    expect(server.spec.holderIdentity).to.equal('x');
    expect(warnings).to.deep.equal([]);
  });

  it('accepts a pino logger as its logger', () => {
    const fits = (logger: Logger): WarnLogger => logger; // compile-time check
    expect(fits).to.be.a('function');
  });

  it('refuses to run twice at once', async () => {
    const a = candidate(server, clock, 'a');
    let error: unknown;
    await a.elector.run(new AbortController().signal).catch((err: unknown) => (error = err));
    expect((error as Error).message).to.match(/already running/);
    a.cancel.abort();
    await clock.advance(0);
  });
});
