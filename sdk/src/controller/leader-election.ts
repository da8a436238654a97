/**
 * Leader election on a `coordination.k8s.io/v1` Lease, with client-go's semantics
 * (`tools/leaderelection`): candidates poll the Lease every retry period (jittered), take it when it
 * is free or expired, and the leader renews it; a leader that cannot renew within the renew deadline
 * stops leading.
 *
 * Expiry is judged by the candidate's OWN clock: a Lease counts as expired when this process has
 * not seen its record change for `leaseDurationSeconds`. The `renewTime` written by the holder is
 * never compared with the local clock, so clock skew between machines does not matter (a skew in
 * clock *rate* does: keep `leaseDuration / renewDeadline` above the rate ratio you must tolerate).
 *
 * Like client-go, this does not fence. A leader that cannot renew stops leading at most
 * `retryPeriod + renewDeadline` after its last successful renewal, and the others take over no
 * earlier than `leaseDuration` after they saw that renewal; so, at equal clock rates, the margin is
 * `leaseDuration - renewDeadline - retryPeriod` (3 s with the defaults). Keep that margin positive
 * (only `leaseDuration > renewDeadline` is enforced, as client-go) and make work guarded by the
 * election stop promptly when its signal aborts.
 *
 * @module
 */
import { isAlreadyExists, isConflict, isNotFound, type ApiClient, type KubeObject } from '../client/api-client.js';

/** client-go's jitter factor: an acquire retry waits `retryPeriod * (1 + random * 1.2)`. */
export const JITTER_FACTOR = 1.2;

/**
 * A wall clock with timers: the time source of {@link LeaderElector} and the event recorder.
 * Injectable so tests drive time by hand. The same timer shape as the work queue's clock, but `now`
 * is wall-clock time (milliseconds since the epoch), because it is also written into timestamps.
 */
export interface WallClock {
  /** Milliseconds since the Unix epoch (may carry a fraction, written as microseconds). */
  now(): number;
  /** Calls `callback` once after `ms` milliseconds; returns a handle for {@link WallClock.clearTimeout}. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a timer made by {@link WallClock.setTimeout}; a handle already fired or cleared is ignored. */
  clearTimeout(handle: unknown): void;
}

/** The default {@link WallClock}: `Date.now()` and the global timers. */
export const systemWallClock: WallClock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** The logger the elector and the event recorder report trouble to (a pino logger fits). */
export interface WarnLogger {
  warn(obj: object, msg: string): void;
}

/**
 * Waits `ms` on `clock` unless `signal` aborts first: `true` when the time elapsed, `false` when
 * aborted. Never rejects; leaves no timer behind.
 */
export function clockDelay(clock: WallClock, ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clock.clearTimeout(handle);
      resolve(false);
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Formats a time as a Kubernetes `MicroTime`: RFC 3339 in UTC with exactly six fractional digits
 * (`2026-11-25T22:00:00.123456Z`). Fractions of a millisecond in `ms` become the last three digits.
 */
export function formatMicroTime(ms: number): string {
  const whole = Math.floor(ms);
  const micros = Math.min(999, Math.floor((ms - whole) * 1000));
  return `${new Date(whole).toISOString().slice(0, 23)}${String(micros).padStart(3, '0')}Z`;
}

/** The `spec` of a `coordination.k8s.io/v1` Lease (the fields leader election uses, and any others kept). */
export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  /** MicroTime. */
  acquireTime?: string;
  /** MicroTime. */
  renewTime?: string;
  leaseTransitions?: number;
  [field: string]: unknown;
}

/** A `coordination.k8s.io/v1` Lease. */
export type Lease = KubeObject & { spec?: LeaseSpec };

/** The election state a Lease records (client-go's `LeaderElectionRecord`). */
export interface LeaderElectionRecord {
  /** Who holds the Lease; `''` when nobody does (released). */
  readonly holderIdentity: string;
  readonly leaseDurationSeconds: number;
  readonly acquireTime?: string;
  readonly renewTime?: string;
  readonly leaseTransitions: number;
}

/** Options of a {@link LeaderElector}. */
export interface LeaderElectorOptions {
  /** The API client (only `request` is used, so a fake needs only that). */
  readonly api: Pick<ApiClient, 'request'>;
  /** Namespace of the Lease. */
  readonly namespace: string;
  /** Name of the Lease. */
  readonly name: string;
  /** This candidate's identity, unique among candidates (e.g. hostname + a random suffix). */
  readonly identity: string;
  /**
   * How long non-leaders wait, after last seeing the Lease record change, before taking it over
   * (default 15 000). Written to the Lease as whole seconds, rounded up (at least 1).
   */
  readonly leaseDurationMs?: number;
  /** How long the leader keeps retrying a failing renewal before it gives up leading (default 10 000). */
  readonly renewDeadlineMs?: number;
  /** Time between attempts to acquire or renew (default 2 000; acquire attempts are jittered by 1.2). */
  readonly retryPeriodMs?: number;
  /**
   * Called when this candidate becomes the leader (not awaited: renewing starts at once). `signal`
   * aborts when leadership ends (lost, or `run` cancelled); the work must stop then, and should
   * settle its promise when it has (a release on cancel waits for that). A promise that rejects
   * while still leading ends leadership (releasing the Lease if `releaseOnCancel`), and `run`
   * rejects with that error.
   */
  onStartedLeading(signal: AbortSignal): void | Promise<void>;
  /** Called once when this candidate stops leading (only if it led). */
  onStoppedLeading?(): void;
  /** Called when a new holder is observed, this candidate included (not when the Lease is released). */
  onNewLeader?(identity: string): void;
  /**
   * On cancel, give the Lease up (holder cleared, duration 1 s) once the leading work has settled,
   * so another candidate takes over at once instead of after the lease duration (default true).
   */
  readonly releaseOnCancel?: boolean;
  /** Time source and timers (default {@link systemWallClock}). */
  readonly clock?: WallClock;
  /** Where failed calls are reported (default: nowhere). */
  readonly logger?: WarnLogger;
}

interface Deadline {
  readonly signal: AbortSignal;
  dispose(): void;
}

const LEASES = 'apis/coordination.k8s.io/v1/namespaces';

/**
 * One candidate of a leader election on a Lease. Create one per Lease and process; call
 * {@link LeaderElector.run} to campaign.
 *
 * @throws {TypeError} from the constructor on a missing namespace, name, identity or `onStartedLeading`.
 * @throws {RangeError} from the constructor unless `leaseDuration > renewDeadline > retryPeriod * 1.2 > 0`.
 */
export class LeaderElector {
  private readonly api: Pick<ApiClient, 'request'>;
  private readonly clock: WallClock;
  private readonly identity: string;
  private readonly leaseDurationMs: number;
  private readonly leaseDurationSeconds: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly releaseOnCancel: boolean;
  private readonly path: string;
  private readonly collection: string;

  /** The record last read or written, when this process last saw it change, and the object. */
  private observed?: LeaderElectionRecord;
  private observedRaw = '';
  private observedTime = 0;
  private observedLease?: Lease;
  private reportedLeader = '';
  private leading = false;
  private running = false;

  constructor(private readonly options: LeaderElectorOptions) {
    for (const field of ['namespace', 'name', 'identity'] as const) {
      if (typeof options[field] !== 'string' || options[field] === '') throw new TypeError(`leader election: ${field} must be a non-empty string`);
    }
    if (typeof options.onStartedLeading !== 'function') throw new TypeError('leader election: onStartedLeading must be a function');
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    for (const [field, value] of [['leaseDurationMs', this.leaseDurationMs], ['renewDeadlineMs', this.renewDeadlineMs], ['retryPeriodMs', this.retryPeriodMs]] as const) {
      if (!Number.isFinite(value) || value <= 0) throw new RangeError(`leader election: ${field} must be a positive number of milliseconds, got ${value}`);
    }
    if (this.leaseDurationMs <= this.renewDeadlineMs) {
      throw new RangeError(`leader election: leaseDurationMs (${this.leaseDurationMs}) must be greater than renewDeadlineMs (${this.renewDeadlineMs})`);
    }
    if (this.renewDeadlineMs <= JITTER_FACTOR * this.retryPeriodMs) {
      throw new RangeError(`leader election: renewDeadlineMs (${this.renewDeadlineMs}) must be greater than retryPeriodMs * ${JITTER_FACTOR} (${JITTER_FACTOR * this.retryPeriodMs})`);
    }
    this.api = options.api;
    this.clock = options.clock ?? systemWallClock;
    this.identity = options.identity;
    this.leaseDurationSeconds = Math.max(1, Math.ceil(this.leaseDurationMs / 1000));
    this.releaseOnCancel = options.releaseOnCancel ?? true;
    this.collection = `/${LEASES}/${encodeURIComponent(options.namespace)}/leases`;
    this.path = `${this.collection}/${encodeURIComponent(options.name)}`;
  }

  /** True while this candidate leads: from acquiring the Lease until leadership is lost or cancelled. */
  isLeader(): boolean {
    return this.leading;
  }

  /** The holder of the Lease as last observed (`''` when none was observed, or the Lease is released). */
  getLeader(): string {
    return this.observed?.holderIdentity ?? '';
  }

  /**
   * Campaigns until `signal` aborts or leadership is lost. Acquires the Lease (retrying every
   * jittered retry period), then calls `onStartedLeading` and renews every retry period. Resolves
   * when `signal` aborts (after releasing the Lease if `releaseOnCancel`) or when a renewal has not
   * succeeded within the renew deadline (or another holder is seen); in both cases the leading
   * signal is aborted and `onStoppedLeading` called first. The caller decides whether to exit or
   * campaign again (a later `run` on the same elector keeps what it observed).
   *
   * API failures never reject: they are logged and retried.
   *
   * @throws {Error} when `run` is already running on this elector.
   * @throws the error `onStartedLeading` rejected with, if it rejected while leading (after stepping down).
   */
  async run(signal: AbortSignal): Promise<void> {
    if (this.running) throw new Error(`leader election ${this.describe()}: run is already running`);
    this.running = true;
    try {
      await this.campaign(signal);
    } finally {
      this.running = false;
      this.leading = false;
    }
  }

  private async campaign(signal: AbortSignal): Promise<void> {
    if (!(await this.acquire(signal))) return;
    this.leading = true;
    const leader = new AbortController();
    const stop = new AbortController();
    const onCancel = (): void => stop.abort();
    if (signal.aborted) stop.abort();
    else signal.addEventListener('abort', onCancel, { once: true });
    let failure = undefined as { error: unknown } | undefined;
    const work = Promise.resolve()
      .then(() => this.options.onStartedLeading(leader.signal))
      .then(
        () => undefined,
        (error: unknown) => {
          if (leader.signal.aborted) {
            this.warn({ err: error }, 'leader election: the leading work failed after leadership ended');
            return;
          }
          failure = { error };
          stop.abort();
        },
      );

    const outcome = await this.renewLoop(stop.signal);
    signal.removeEventListener('abort', onCancel);
    this.leading = false;
    leader.abort();
    if (outcome === 'stopped' && this.releaseOnCancel) await this.releaseAfter(work);
    try {
      this.options.onStoppedLeading?.();
    } catch (err) {
      this.warn({ err }, 'leader election: onStoppedLeading threw');
    }
    if (failure) throw failure.error;
  }

  /** Tries until the Lease is ours (true) or `signal` aborts (false). */
  private async acquire(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      const deadline = this.deadline(this.renewDeadlineMs, signal);
      let acquired: boolean;
      try {
        acquired = await this.tryAcquireOrRenew(deadline.signal);
      } finally {
        deadline.dispose();
      }
      this.maybeReportTransition();
      if (acquired) return true;
      const wait = this.retryPeriodMs * (1 + Math.random() * JITTER_FACTOR);
      if (!(await clockDelay(this.clock, wait, signal))) return false;
    }
    return false;
  }

  /**
   * Renews every retry period until `stop` aborts ('stopped') or a renewal round fails ('lost'): a
   * round retries every retry period until the renew deadline, and fails at once when the Lease is
   * seen held by someone else.
   */
  private async renewLoop(stop: AbortSignal): Promise<'lost' | 'stopped'> {
    while (!stop.aborted) {
      const end = this.clock.now() + this.renewDeadlineMs;
      const deadline = this.deadline(this.renewDeadlineMs, stop);
      let renewed = false;
      try {
        for (;;) {
          if (await this.tryAcquireOrRenew(deadline.signal)) {
            renewed = true;
            break;
          }
          if (deadline.signal.aborted || this.deposed()) break;
          const left = end - this.clock.now();
          if (left <= 0 || !(await clockDelay(this.clock, Math.min(this.retryPeriodMs, left), deadline.signal))) break;
        }
      } finally {
        deadline.dispose();
      }
      this.maybeReportTransition();
      if (stop.aborted) return 'stopped';
      if (!renewed) {
        this.warn({ holder: this.getLeader() }, this.deposed() ? 'leader election: the lease is held by another candidate; stopped leading' : `leader election: could not renew the lease within ${this.renewDeadlineMs} ms; stopped leading`);
        return 'lost';
      }
      if (!(await clockDelay(this.clock, this.retryPeriodMs, stop))) return 'stopped';
    }
    return 'stopped';
  }

  /**
   * One attempt (client-go's `tryAcquireOrRenew`): the leader first updates optimistically from the
   * Lease it last wrote; otherwise read the Lease (create it if missing), note when its record last
   * changed, give up if another holder's lease is still valid, and write ourselves as holder with
   * the read `resourceVersion` (a 409 means someone else wrote first: the next attempt re-reads).
   * Never throws.
   */
  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const now = this.clock.now();
    const record = (acquireTime: string | undefined, leaseTransitions: number): LeaderElectionRecord => ({
      holderIdentity: this.identity,
      leaseDurationSeconds: this.leaseDurationSeconds,
      acquireTime: acquireTime ?? formatMicroTime(now),
      renewTime: formatMicroTime(now),
      leaseTransitions,
    });

    // 1. The leader's fast path: assume the Lease it last wrote is still current.
    if (this.observed && this.observedLease && this.holdsRecord() && this.leaseValid(now)) {
      try {
        this.observe(await this.write(this.observedLease, record(this.observed.acquireTime, this.observed.leaseTransitions), signal));
        return true;
      } catch (err) {
        if (signal.aborted) return false;
        if (!isConflict(err)) this.warn({ err }, 'leader election: optimistic renewal failed; re-reading the lease');
      }
    }

    // 2. Read the Lease, or create it.
    let current: Lease;
    try {
      current = await this.call<Lease>('GET', this.path, undefined, signal);
    } catch (err) {
      if (signal.aborted) return false;
      if (!isNotFound(err)) {
        this.warn({ err }, 'leader election: could not read the lease');
        return false;
      }
      const body: Lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.options.name, namespace: this.options.namespace }, spec: { ...record(undefined, 0) } };
      try {
        this.observe((await this.call<Lease | undefined>('POST', this.collection, body, signal)) ?? body);
        return true;
      } catch (createErr) {
        if (!signal.aborted && !isAlreadyExists(createErr)) this.warn({ err: createErr }, 'leader election: could not create the lease');
        return false;
      }
    }

    // 3. Note a change of record with the LOCAL time; the remote timestamps are never compared.
    const seen = recordOf(current);
    const raw = canonical(seen);
    if (raw !== this.observedRaw) {
      this.observed = seen;
      this.observedRaw = raw;
      this.observedTime = this.clock.now();
    }
    this.observedLease = current;
    if (seen.holderIdentity !== '' && !this.holdsRecord() && this.leaseValid(this.clock.now())) return false;

    // 4. Take or renew it.
    const next = this.holdsRecord() ? record(seen.acquireTime, seen.leaseTransitions) : record(undefined, seen.leaseTransitions + 1);
    try {
      this.observe(await this.write(current, next, signal));
      return true;
    } catch (err) {
      if (!signal.aborted && !isConflict(err)) this.warn({ err }, 'leader election: could not update the lease');
      return false;
    }
  }

  /**
   * Gives the Lease up once `work` has settled, but only while the Lease we last wrote is still
   * ours: if the work outlives it, releasing would let another leader start beside it, and the Lease
   * expires by itself anyway.
   */
  private async releaseAfter(work: Promise<void>): Promise<void> {
    if (!this.observed || !this.holdsRecord()) return;
    const left = this.observedTime + this.leaseMs(this.observed) - this.clock.now();
    const timer = new AbortController();
    const settled = left > 0 && (await Promise.race([work.then(() => true), clockDelay(this.clock, left, timer.signal).then(() => false)]));
    timer.abort();
    if (!settled) {
      this.warn({}, 'leader election: the leading work did not stop before the lease ran out; leaving the lease to expire');
      return;
    }
    await this.release();
  }

  /** client-go's release: holder cleared, duration 1 s, transitions kept. Retries once on a conflict. */
  private async release(): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      if (!this.observed || !this.observedLease || !this.holdsRecord()) return;
      const now = formatMicroTime(this.clock.now());
      const released: LeaderElectionRecord = { holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions: this.observed.leaseTransitions };
      const deadline = this.deadline(this.renewDeadlineMs);
      try {
        this.observe(await this.write(this.observedLease, released, deadline.signal));
        this.maybeReportTransition();
        return;
      } catch (err) {
        if (!isConflict(err)) {
          this.warn({ err }, 'leader election: could not release the lease');
          return;
        }
        // Someone wrote since (perhaps our own abandoned renewal): re-read, and release if still ours.
        try {
          const current = await this.call<Lease>('GET', this.path, undefined, deadline.signal);
          this.observedLease = current;
          this.observed = recordOf(current);
          this.observedRaw = canonical(this.observed);
          this.observedTime = this.clock.now();
        } catch (readErr) {
          this.warn({ err: readErr }, 'leader election: could not release the lease');
          return;
        }
      } finally {
        deadline.dispose();
      }
    }
  }

  /** PUTs `lease` with its spec's election fields replaced by `record`. */
  private async write(lease: Lease, record: LeaderElectionRecord, signal: AbortSignal): Promise<Lease> {
    const body: Lease = { ...lease, apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', spec: { ...lease.spec, ...record } };
    return (await this.call<Lease | undefined>('PUT', this.path, body, signal)) ?? body;
  }

  private observe(lease: Lease): void {
    this.observedLease = lease;
    this.observed = recordOf(lease);
    this.observedRaw = canonical(this.observed);
    this.observedTime = this.clock.now();
  }

  /** One request, abandoned (rejected) as soon as `signal` aborts even if the transport does not honour it. */
  private call<T>(method: string, path: string, body: unknown, signal: AbortSignal): Promise<T> {
    if (signal.aborted) return Promise.reject(new Error(`${method} ${path}: abandoned`));
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => reject(new Error(`${method} ${path}: abandoned (renew deadline passed or cancelled)`));
      signal.addEventListener('abort', onAbort, { once: true });
      Promise.resolve()
        .then(() => this.api.request<T>(method, path, body === undefined ? { signal } : { body, signal }))
        .then(resolve, reject)
        .finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  /** A signal that aborts after `ms` on the clock, or when `parent` aborts. */
  private deadline(ms: number, parent?: AbortSignal): Deadline {
    const controller = new AbortController();
    const timer = new AbortController();
    const onParent = (): void => controller.abort();
    if (parent?.aborted) controller.abort();
    else parent?.addEventListener('abort', onParent, { once: true });
    void clockDelay(this.clock, ms, timer.signal).then((elapsed) => {
      if (elapsed) controller.abort();
    });
    return {
      signal: controller.signal,
      dispose: () => {
        timer.abort();
        parent?.removeEventListener('abort', onParent);
      },
    };
  }

  /** The observed record names us. */
  private holdsRecord(): boolean {
    return this.observed?.holderIdentity === this.identity;
  }

  /** Another candidate holds a lease we consider valid. */
  private deposed(): boolean {
    return !!this.observed && this.observed.holderIdentity !== '' && !this.holdsRecord() && this.leaseValid(this.clock.now());
  }

  /** The observed record has not outlived its duration since this process saw it change. */
  private leaseValid(now: number): boolean {
    return !!this.observed && this.observedTime + this.leaseMs(this.observed) > now;
  }

  /** The record's duration; our own when the record has none (a Lease written by hand). */
  private leaseMs(record: LeaderElectionRecord): number {
    return record.leaseDurationSeconds > 0 ? record.leaseDurationSeconds * 1000 : this.leaseDurationMs;
  }

  private maybeReportTransition(): void {
    const holder = this.observed?.holderIdentity ?? '';
    if (holder === this.reportedLeader) return;
    this.reportedLeader = holder;
    if (holder === '' || !this.options.onNewLeader) return;
    try {
      this.options.onNewLeader(holder);
    } catch (err) {
      this.warn({ err }, 'leader election: onNewLeader threw');
    }
  }

  private describe(): string {
    return `${this.options.namespace}/${this.options.name}`;
  }

  private warn(obj: object, msg: string): void {
    this.options.logger?.warn({ lease: this.describe(), identity: this.identity, ...obj }, msg);
  }
}

/** The election record of a Lease (absent fields as client-go reads them: empty and zero). */
function recordOf(lease: Lease): LeaderElectionRecord {
  const spec = lease.spec ?? {};
  return {
    holderIdentity: typeof spec.holderIdentity === 'string' ? spec.holderIdentity : '',
    leaseDurationSeconds: typeof spec.leaseDurationSeconds === 'number' ? spec.leaseDurationSeconds : 0,
    ...(typeof spec.acquireTime === 'string' ? { acquireTime: spec.acquireTime } : {}),
    ...(typeof spec.renewTime === 'string' ? { renewTime: spec.renewTime } : {}),
    leaseTransitions: typeof spec.leaseTransitions === 'number' ? spec.leaseTransitions : 0,
  };
}

function canonical(r: LeaderElectionRecord): string {
  return JSON.stringify([r.holderIdentity, r.leaseDurationSeconds, r.acquireTime ?? null, r.renewTime ?? null, r.leaseTransitions]);
}
