/**
 * Leader election shared by the controller plugins of one process: Kubernetes' controller manager
 * holds one Lease (`kube-system/kube-controller-manager`) for all its controllers, so several
 * controller-manager processes run active/passive. Here every controller plugin asks for the
 * lease it belongs to; one {@link LeaderElector} per API client and Lease campaigns for all of
 * them, and each plugin's work runs only while the process leads.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { ApiClient } from '../client/api-client.js';
import type { Logger } from '../plugin/handle.js';
import { clockDelay, LeaderElector, systemWallClock } from './leader-election.js';

/** Leader election settings (Kubernetes' `--leader-elect*` flags), as plugin config. */
export interface LeaderElectionConfig {
  /** Run only while holding the lease (default true); false runs at once, for single-process clusters that want it. */
  readonly leaderElect?: boolean;
  readonly leaseNamespace?: string;
  readonly leaseName?: string;
  readonly leaseDurationSeconds?: number;
  readonly renewDeadlineSeconds?: number;
  readonly retryPeriodSeconds?: number;
}

/** The JSON Schema of {@link LeaderElectionConfig} for a plugin's config (defaults as kube-controller-manager). */
export const LEADER_ELECTION_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    leaderElect: { type: 'boolean', default: true },
    leaseNamespace: { type: 'string', default: 'kube-system' },
    leaseName: { type: 'string', default: 'kube-controller-manager' },
    leaseDurationSeconds: { type: 'number', exclusiveMinimum: 0, default: 15 },
    renewDeadlineSeconds: { type: 'number', exclusiveMinimum: 0, default: 10 },
    retryPeriodSeconds: { type: 'number', exclusiveMinimum: 0, default: 2 },
  },
} as const;

/** This process's identity in leader elections: host name and a random suffix, as Kubernetes. */
export const PROCESS_IDENTITY = `${hostname()}_${randomUUID()}`;

interface Member {
  readonly work: (leading: AbortSignal) => Promise<void>;
  current?: { controller: AbortController; done: Promise<void> };
}

class SharedLease {
  readonly members = new Set<Member>();
  private leading?: AbortSignal;
  private loop?: Promise<void>;
  private stop?: AbortController;

  constructor(
    private readonly api: ApiClient,
    private readonly config: Required<LeaderElectionConfig>,
    private readonly log: Logger,
    private readonly onEmpty: () => void,
  ) {}

  join(member: Member): void {
    this.members.add(member);
    if (this.leading && !this.leading.aborted) this.start(member, this.leading);
    if (!this.loop) {
      this.stop = new AbortController();
      this.loop = this.campaign(this.stop.signal);
    }
  }

  async leave(member: Member): Promise<void> {
    this.members.delete(member);
    member.current?.controller.abort();
    await member.current?.done;
    if (this.members.size === 0) {
      this.onEmpty();
      this.stop?.abort();
      await this.loop;
    }
  }

  private start(member: Member, leading: AbortSignal): void {
    const controller = new AbortController();
    leading.addEventListener('abort', () => controller.abort(), { once: true });
    const done = member.work(controller.signal).catch((err: unknown) => this.log.error({ err: String(err) }, 'controller work failed while leading'));
    member.current = { controller, done };
  }

  /** Campaigns until nobody needs the lease; after a loss, campaigns again. */
  private async campaign(signal: AbortSignal): Promise<void> {
    const c = this.config;
    while (!signal.aborted) {
      const elector = new LeaderElector({
        api: this.api,
        namespace: c.leaseNamespace,
        name: c.leaseName,
        identity: PROCESS_IDENTITY,
        leaseDurationMs: c.leaseDurationSeconds * 1000,
        renewDeadlineMs: c.renewDeadlineSeconds * 1000,
        retryPeriodMs: c.retryPeriodSeconds * 1000,
        logger: this.log,
        onStartedLeading: async (leading) => {
          this.log.info({ lease: `${c.leaseNamespace}/${c.leaseName}`, identity: PROCESS_IDENTITY }, 'became leader');
          this.leading = leading;
          for (const m of this.members) this.start(m, leading);
          await new Promise<void>((resolve) => leading.addEventListener('abort', () => resolve(), { once: true }));
          await Promise.all([...this.members].map((m) => m.current?.done));
        },
        onStoppedLeading: () => this.log.warn({ lease: `${c.leaseNamespace}/${c.leaseName}` }, 'stopped leading; controllers stopped'),
      });
      try {
        await elector.run(signal);
      } catch (err) {
        this.log.error({ err: String(err) }, 'leader election failed; campaigning again');
      }
      this.leading = undefined;
      await clockDelay(systemWallClock, c.retryPeriodSeconds * 1000, signal);
    }
  }
}

const shared = new WeakMap<ApiClient, Map<string, SharedLease>>();

/**
 * Runs `work` whenever this process holds the configured Lease, until `signal` aborts: `work`
 * gets a signal that aborts when leadership is lost (it must stop then; it is started again, with
 * a fresh signal, when leadership comes back). With `leaderElect: false` it runs once, at once.
 * Resolves when `signal` has aborted and the work has stopped.
 */
export async function runWhileLeading(api: ApiClient, config: LeaderElectionConfig, log: Logger, signal: AbortSignal, work: (leading: AbortSignal) => Promise<void>): Promise<void> {
  const c: Required<LeaderElectionConfig> = {
    leaderElect: config.leaderElect ?? true,
    leaseNamespace: config.leaseNamespace ?? 'kube-system',
    leaseName: config.leaseName ?? 'kube-controller-manager',
    leaseDurationSeconds: config.leaseDurationSeconds ?? 15,
    renewDeadlineSeconds: config.renewDeadlineSeconds ?? 10,
    retryPeriodSeconds: config.retryPeriodSeconds ?? 2,
  };
  if (!c.leaderElect) return work(signal);
  let byLease = shared.get(api);
  if (!byLease) shared.set(api, (byLease = new Map()));
  const key = `${c.leaseNamespace}/${c.leaseName}`;
  let lease = byLease.get(key);
  if (!lease) {
    const created = new SharedLease(api, c, log, () => byLease!.delete(key));
    byLease.set(key, created);
    lease = created;
  }
  const member: Member = { work };
  lease.join(member);
  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await lease.leave(member);
}
