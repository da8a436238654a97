import type { UserInfo } from '@kubernel/sdk';
import { ApiError } from './status.js';

/**
 * A simplified API Priority and Fairness: requests (watches excluded, as Kubernetes excludes
 * long-running requests) take a seat in their priority level for as long as they run. Levels split
 * the server's seats (`--max-requests-inflight` + `--max-mutating-requests-inflight`); within a
 * level, one flow (user) may hold at most half of the level's seats, so a single client flooding
 * the server cannot take every seat of its level, and never those of another level. `system:masters`
 * is exempt. A request that finds no seat gets 429 with `Retry-After: 1`, which client-go and
 * kubectl retry.
 */
export interface PriorityLevel {
  readonly name: string;
  /** Fraction of the server's seats. */
  readonly share: number;
  /** Whether a user belongs here (levels are tried in order; the last one catches all). */
  readonly matches: (user: UserInfo) => boolean;
}

const inGroup = (user: UserInfo, ...groups: string[]): boolean => user.groups.some((g) => groups.includes(g));

/** Kubernetes' default priority levels, reduced: exempt, system (nodes, control plane), workload (service accounts), global-default. */
export const DEFAULT_LEVELS: readonly PriorityLevel[] = [
  { name: 'system', share: 0.3, matches: (u) => inGroup(u, 'system:nodes') || u.username === 'system:kube-scheduler' || u.username === 'system:kube-controller-manager' || u.username === 'system:kube-proxy' || u.username.startsWith('system:serviceaccount:kube-system:') },
  { name: 'workload-low', share: 0.3, matches: (u) => inGroup(u, 'system:serviceaccounts') },
  { name: 'global-default', share: 0.4, matches: () => true },
];

interface LevelState {
  readonly level: PriorityLevel;
  readonly seats: number;
  readonly flowCap: number;
  executing: number;
  readonly flows: Map<string, number>;
}

/** A seat; release it once, when the request is done. */
export type Seat = () => void;

export class FlowControl {
  private readonly levels: LevelState[];

  constructor(
    totalSeats: number,
    levels: readonly PriorityLevel[] = DEFAULT_LEVELS,
    private readonly observer: { rejected?(level: string): void; executing?(level: string, executing: number): void } = {},
  ) {
    this.levels = levels.map((level) => {
      const seats = Math.max(1, Math.floor(totalSeats * level.share));
      return { level, seats, flowCap: Math.max(1, Math.ceil(seats / 2)), executing: 0, flows: new Map() };
    });
  }

  /**
   * Takes a seat for `user`'s request, or throws a 429 ApiError. Returns the release function
   * (a no-op for exempt users).
   */
  admit(user: UserInfo): Seat {
    if (user.groups.includes('system:masters')) return NOOP;
    const state = this.levels.find((l) => l.level.matches(user)) ?? this.levels[this.levels.length - 1]!;
    const flow = user.username;
    const held = state.flows.get(flow) ?? 0;
    if (state.executing >= state.seats || held >= state.flowCap) {
      this.observer.rejected?.(state.level.name);
      throw new ApiError(429, 'TooManyRequests', 'Too many requests, please try again later.', { retryAfterSeconds: 1 });
    }
    state.executing++;
    state.flows.set(flow, held + 1);
    this.observer.executing?.(state.level.name, state.executing);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      state.executing--;
      this.observer.executing?.(state.level.name, state.executing);
      const n = (state.flows.get(flow) ?? 1) - 1;
      if (n === 0) state.flows.delete(flow);
      else state.flows.set(flow, n);
    };
  }

  /** Seats in use per level (for metrics). */
  executing(): Array<{ level: string; executing: number; seats: number }> {
    return this.levels.map((l) => ({ level: l.level.name, executing: l.executing, seats: l.seats }));
  }
}

const NOOP: Seat = () => undefined;
