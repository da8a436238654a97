/**
 * The node lifecycle controller (Kubernetes' `nodelifecycle` controller) with taint-based eviction
 * (Kubernetes' taint manager, the `taint-eviction-controller`), as one controller plugin.
 *
 * **Node health.** A node agent renews its Lease in `kube-node-lease` (`spec.renewTime`) and posts
 * NodeStatus (the Ready condition's `lastHeartbeatTime`). Every monitor period the controller
 * compares both with what it saw last; a changed value is a heartbeat, stamped with this
 * controller's own clock when it is observed (never the remote time, so clock skew between nodes
 * and the controller does not matter). A node with no heartbeat for the grace period (the startup
 * grace period while it never posted a Ready condition) gets Ready, MemoryPressure, DiskPressure
 * and PIDPressure set to `Unknown` (`NodeStatusUnknown`, "Kubelet stopped posting node status.")
 * through its status subresource; the pods on a node that stops being Ready are marked not Ready.
 *
 * **Taints.** `NoSchedule` taints follow the node's conditions at once (`not-ready` for
 * Ready=False, `unreachable` for Ready=Unknown, `memory-pressure`, `disk-pressure`, `pid-pressure`,
 * `network-unavailable`, and `unschedulable` for `spec.unschedulable`). `NoExecute` `not-ready` /
 * `unreachable` taints (with `timeAdded`) are added through a per-zone token bucket (burst 1) and
 * removed as soon as the node is Ready again.
 *
 * **Zones** (`topology.kubernetes.io/region` + `zone`): Normal, PartialDisruption (at least
 * `unhealthyZoneThreshold` of the nodes not Ready, and more than 2), FullDisruption (none Ready).
 * Eviction rate: `nodeEvictionRate` when Normal or FullDisruption; when PartialDisruption
 * `secondaryNodeEvictionRate` if the zone has more than `largeClusterSizeThreshold` nodes, else 0.
 * When every zone is fully disrupted the controller assumes the problem is on the control plane's
 * side ("master disruption"): it removes the `NoExecute` taints it set and taints nothing until a
 * node is Ready again. Nodes labelled `node.kubernetes.io/exclude-disruption` do not count.
 *
 * **Taint eviction.** A pod bound to a node with `NoExecute` taints it does not all tolerate is
 * deleted at once; one whose matching tolerations carry `tolerationSeconds` is deleted that many
 * seconds after the taint's `timeAdded` (the earliest expiry over the taints), unless the taint goes
 * away first; tolerations without `tolerationSeconds` keep it forever. Deletion adds the pod's
 * `DisruptionTarget` condition and records a `TaintManagerEviction` event.
 *
 * Everything runs only while this process leads (the controller manager's shared Lease); a new
 * leader starts with fresh observations, so every node gets a full grace period after a failover.
 *
 * @module
 */
import {
  Controller,
  EventRecorder,
  definePlugin,
  delay,
  isConflict,
  isNotFound,
  keyString,
  objectKey,
  runWhileLeading,
  LEADER_ELECTION_SCHEMA,
  type ApiClient,
  type EventType,
  type Informer,
  type KubeObject,
  type LeaderElectionConfig,
  type Logger,
  type Metrics,
  type ObjectKey,
  type ReconcileResult,
} from '@kubernel/sdk';
import { type Fields, formatTime } from './util.js';

// ---------------------------------------------------------------------------------------------
// Well-known names
// ---------------------------------------------------------------------------------------------

/** The plugin id. */
export const NODE_LIFECYCLE_CONTROLLER_ID = 'node-lifecycle-controller';
/** The event source of node health events (Kubernetes' `node-controller`). */
export const NODE_CONTROLLER_COMPONENT = 'node-controller';
/** The event source of eviction events (Kubernetes' `taint-eviction-controller`). */
export const TAINT_EVICTION_COMPONENT = 'taint-eviction-controller';

export const TAINT_NODE_NOT_READY = 'node.kubernetes.io/not-ready';
export const TAINT_NODE_UNREACHABLE = 'node.kubernetes.io/unreachable';
export const TAINT_NODE_UNSCHEDULABLE = 'node.kubernetes.io/unschedulable';
export const TAINT_NODE_MEMORY_PRESSURE = 'node.kubernetes.io/memory-pressure';
export const TAINT_NODE_DISK_PRESSURE = 'node.kubernetes.io/disk-pressure';
export const TAINT_NODE_PID_PRESSURE = 'node.kubernetes.io/pid-pressure';
export const TAINT_NODE_NETWORK_UNAVAILABLE = 'node.kubernetes.io/network-unavailable';

export const LABEL_ZONE = 'topology.kubernetes.io/zone';
export const LABEL_REGION = 'topology.kubernetes.io/region';
const LABEL_ZONE_BETA = 'failure-domain.beta.kubernetes.io/zone';
const LABEL_REGION_BETA = 'failure-domain.beta.kubernetes.io/region';
/** Nodes with this label are left out of zone health (Kubernetes' `node.kubernetes.io/exclude-disruption`). */
export const LABEL_EXCLUDE_DISRUPTION = 'node.kubernetes.io/exclude-disruption';

/** Where node agents keep their heartbeat Leases. */
export const NODE_LEASE_NAMESPACE = 'kube-node-lease';
/** How often the rate-limited NoExecute tainting pass runs (Kubernetes' NodeEvictionPeriod). */
export const NODE_EVICTION_PERIOD_MS = 100;
/** Tokens a zone's eviction bucket holds (Kubernetes' EvictionRateLimiterBurst). */
export const EVICTION_RATE_LIMITER_BURST = 1;
/** Attempts at a node's health update before the pass gives up on it (Kubernetes' NodeHealthUpdateRetry). */
export const NODE_HEALTH_UPDATE_RETRY = 5;

export const NODE_STATUS_UNKNOWN_REASON = 'NodeStatusUnknown';
export const NODE_STATUS_UNKNOWN_MESSAGE = 'Kubelet stopped posting node status.';
export const NODE_STATUS_NEVER_UPDATED_REASON = 'NodeStatusNeverUpdated';
export const NODE_STATUS_NEVER_UPDATED_MESSAGE = 'Kubelet never posted node status.';

/** The conditions set to Unknown when heartbeats stop (NetworkUnavailable belongs to the network plugin). */
export const MONITORED_CONDITIONS = ['Ready', 'MemoryPressure', 'DiskPressure', 'PIDPressure'] as const;

const NODE_NAME_INDEX = 'spec.nodeName';
const NODE_WORKERS = 8;
const EVICTION_WORKERS = 8;
const POD_WORKERS = 4;

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

/** A `core/v1` Taint. */
export interface Taint {
  readonly key: string;
  readonly value?: string;
  readonly effect: string;
  /** RFC 3339; set on NoExecute taints (this controller sets it on every taint it adds). */
  readonly timeAdded?: string;
}

/** A `core/v1` Toleration. */
export interface Toleration {
  readonly key?: string;
  /** `Exists` or `Equal` (the default). */
  readonly operator?: string;
  readonly value?: string;
  /** Empty matches every effect. */
  readonly effect?: string;
  /** For NoExecute: how long the pod stays bound once the taint is added; absent = forever. */
  readonly tolerationSeconds?: number;
}

/** A `core/v1` NodeCondition. */
export interface NodeCondition {
  readonly type: string;
  readonly status: string;
  readonly lastHeartbeatTime?: string;
  readonly lastTransitionTime?: string;
  readonly reason?: string;
  readonly message?: string;
}

/** A zone's health (Kubernetes' ZoneState). */
export type ZoneState = 'Initial' | 'Normal' | 'PartialDisruption' | 'FullDisruption';

/** The plugin's configuration (kube-controller-manager's flags of the same names). */
export interface NodeLifecycleConfig {
  /** `--node-monitor-period`. */
  readonly nodeMonitorPeriodSeconds: number;
  /** `--node-monitor-grace-period`. */
  readonly nodeMonitorGracePeriodSeconds: number;
  /** `--node-startup-grace-period`: the grace of a node that never posted a Ready condition. */
  readonly nodeStartupGracePeriodSeconds: number;
  /** `--node-eviction-rate`: nodes tainted NoExecute per second and zone. */
  readonly nodeEvictionRate: number;
  /** `--secondary-node-eviction-rate`: the same, in a partially disrupted large zone. */
  readonly secondaryNodeEvictionRate: number;
  /** `--unhealthy-zone-threshold`. */
  readonly unhealthyZoneThreshold: number;
  /** `--large-cluster-size-threshold`. */
  readonly largeClusterSizeThreshold: number;
  readonly leaderElection: LeaderElectionConfig;
}

/** The figures that decide a zone's eviction rate. */
export type EvictionRateConfig = Pick<NodeLifecycleConfig, 'nodeEvictionRate' | 'secondaryNodeEvictionRate' | 'largeClusterSizeThreshold' | 'unhealthyZoneThreshold'>;

/**
 * The defaults: Kubernetes 1.32's. (`--node-monitor-grace-period` went from 40 s to 50 s in 1.32,
 * kubernetes/kubernetes#126287, to outlast the HTTP/2 health-check timeouts of the kubelet.)
 */
export const NODE_LIFECYCLE_DEFAULTS: Omit<NodeLifecycleConfig, 'leaderElection'> = {
  nodeMonitorPeriodSeconds: 5,
  nodeMonitorGracePeriodSeconds: 50,
  nodeStartupGracePeriodSeconds: 60,
  nodeEvictionRate: 0.1,
  secondaryNodeEvictionRate: 0.01,
  unhealthyZoneThreshold: 0.55,
  largeClusterSizeThreshold: 50,
};

/** A time source (ms since the epoch). */
export interface Clock {
  now(): number;
}

const systemClock: Clock = { now: () => Date.now() };

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

const nameOf = (o: KubeObject): string => String(o.metadata?.name ?? '');
const podNodeName = (p: KubeObject | undefined): string => String((p?.spec as Fields | undefined)?.nodeName ?? '');
const podKey = (p: KubeObject): string => `${p.metadata?.namespace}/${p.metadata?.name}`;
const uidOf = (o: KubeObject): string => String((o.metadata as Fields | undefined)?.uid ?? '');
const sameJson = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** The node's conditions (an empty list when it has none). */
export function nodeConditions(node: KubeObject): NodeCondition[] {
  const c = (node.status as Fields | undefined)?.conditions;
  return Array.isArray(c) ? (c as NodeCondition[]).filter((x) => x && typeof x === 'object') : [];
}

/** The node's condition of `type`, if any. */
export const nodeCondition = (node: KubeObject, type: string): NodeCondition | undefined => nodeConditions(node).find((c) => c.type === type);

/** The node's taints (an empty list when it has none). */
export function taintsOf(node: KubeObject | undefined): Taint[] {
  const t = (node?.spec as Fields | undefined)?.taints;
  return Array.isArray(t) ? (t as Taint[]).filter((x) => x && typeof x === 'object') : [];
}

/** The pod's tolerations (an empty list when it has none). */
export function tolerationsOf(pod: KubeObject): Toleration[] {
  const t = (pod.spec as Fields | undefined)?.tolerations;
  return Array.isArray(t) ? (t as Toleration[]).filter((x) => x && typeof x === 'object') : [];
}

/** Taints match when key and effect are equal (Kubernetes' `Taint.MatchTaint`; the value does not count). */
export const matchTaint = (a: Pick<Taint, 'key' | 'effect'>, b: Pick<Taint, 'key' | 'effect'>): boolean => a.key === b.key && a.effect === b.effect;

const hasTaint = (node: KubeObject, taint: Pick<Taint, 'key' | 'effect'>): boolean => taintsOf(node).some((t) => matchTaint(t, taint));
const noExecuteTaints = (node: KubeObject | undefined): Taint[] => taintsOf(node).filter((t) => t.effect === 'NoExecute');

const NOT_READY_NO_EXECUTE: Taint = { key: TAINT_NODE_NOT_READY, effect: 'NoExecute' };
const UNREACHABLE_NO_EXECUTE: Taint = { key: TAINT_NODE_UNREACHABLE, effect: 'NoExecute' };

/**
 * The zone key of a node: `region:zone` from the `topology.kubernetes.io` labels (the beta
 * `failure-domain` labels when those are absent); `''` when the node has neither. (Label values
 * cannot contain `:`, so the key is unambiguous.)
 */
export function zoneKey(node: KubeObject): string {
  const labels = node.metadata?.labels ?? {};
  const region = labels[LABEL_REGION] ?? labels[LABEL_REGION_BETA] ?? '';
  const zone = labels[LABEL_ZONE] ?? labels[LABEL_ZONE_BETA] ?? '';
  return region === '' && zone === '' ? '' : `${region}:${zone}`;
}

/** True when the node is left out of zone health (the `node.kubernetes.io/exclude-disruption` label). */
export const isExcludedFromDisruption = (node: KubeObject): boolean => Object.prototype.hasOwnProperty.call(node.metadata?.labels ?? {}, LABEL_EXCLUDE_DISRUPTION);

// ---------------------------------------------------------------------------------------------
// Tolerations and eviction time
// ---------------------------------------------------------------------------------------------

/**
 * Whether `toleration` tolerates `taint` (Kubernetes' `Toleration.ToleratesTaint`): an empty
 * effect matches every effect, an empty key matches every key, `Exists` matches any value, `Equal`
 * (or no operator) the same value; any other operator matches nothing.
 */
export function toleratesTaint(toleration: Toleration, taint: Taint): boolean {
  if (toleration.effect && toleration.effect !== taint.effect) return false;
  if (toleration.key && toleration.key !== taint.key) return false;
  switch (toleration.operator ?? '') {
    case '':
    case 'Equal':
      return (toleration.value ?? '') === (taint.value ?? '');
    case 'Exists':
      return true;
    default:
      return false;
  }
}

/**
 * For each taint the first toleration that tolerates it (Kubernetes' `GetMatchingTolerations`):
 * `tolerated` is false as soon as one taint is tolerated by none (then `used` is empty).
 */
export function matchingTolerations(taints: readonly Taint[], tolerations: readonly Toleration[]): { readonly tolerated: boolean; readonly used: Toleration[] } {
  const used: Toleration[] = [];
  for (const taint of taints) {
    const t = tolerations.find((x) => toleratesTaint(x, taint));
    if (!t) return { tolerated: false, used: [] };
    used.push(t);
  }
  return { tolerated: true, used };
}

/**
 * The shortest `tolerationSeconds` of `used` (Kubernetes' `getMinTolerationTime`): 0 for no
 * tolerations or any value <= 0, `undefined` (forever) when none carries `tolerationSeconds`.
 */
export function minTolerationSeconds(used: readonly Toleration[]): number | undefined {
  if (used.length === 0) return 0;
  let min: number | undefined;
  for (const t of used) {
    if (typeof t.tolerationSeconds !== 'number' || !Number.isFinite(t.tolerationSeconds)) continue;
    if (t.tolerationSeconds <= 0) return 0;
    min = min === undefined ? t.tolerationSeconds : Math.min(min, t.tolerationSeconds);
  }
  return min;
}

/**
 * When a taint's toleration clock starts (ms since the epoch): its `timeAdded`. A stamp of whole
 * seconds (the precision of `metav1.Time`, which Kubernetes writes) says the taint was added some
 * time within that second, so the clock starts at the end of it: a pod is never evicted before its
 * `tolerationSeconds` have fully passed (at most one second after). `undefined` when the taint has
 * no usable `timeAdded`.
 */
export function taintAddedAt(taint: Taint): number | undefined {
  if (typeof taint.timeAdded !== 'string') return undefined;
  const ms = Date.parse(taint.timeAdded);
  if (!Number.isFinite(ms)) return undefined;
  return /\.\d+/.test(taint.timeAdded) ? ms : ms + 1000;
}

/** What taint eviction does with a pod. */
export type EvictionDecision =
  /** Nothing: no NoExecute taint, or every one tolerated forever. */
  | { readonly kind: 'keep' }
  /** Delete now: a NoExecute taint is not tolerated (or tolerated for 0 seconds). */
  | { readonly kind: 'now' }
  /** Delete at `time` (ms since the epoch; it may have passed) unless the taints change first. */
  | { readonly kind: 'at'; readonly time: number };

/**
 * Decides about a pod with `tolerations` on a node with `taints` (only `NoExecute` ones count).
 * Each taint is tolerated by its first matching toleration (as Kubernetes); one tolerated for
 * `tolerationSeconds` expires that long after `startOf(taint)`; the pod goes at the earliest
 * expiry. With a single start time this is Kubernetes' "minimum tolerationSeconds over the used
 * tolerations".
 */
export function evictionDecision(taints: readonly Taint[], tolerations: readonly Toleration[], startOf: (taint: Taint) => number): EvictionDecision {
  const noExecute = taints.filter((t) => t.effect === 'NoExecute');
  if (noExecute.length === 0) return { kind: 'keep' };
  const { tolerated, used } = matchingTolerations(noExecute, tolerations);
  if (!tolerated) return { kind: 'now' };
  let time = Infinity;
  for (let i = 0; i < noExecute.length; i++) {
    const seconds = minTolerationSeconds([used[i]!]);
    if (seconds === undefined) continue;
    if (seconds <= 0) return { kind: 'now' };
    time = Math.min(time, startOf(noExecute[i]!) + seconds * 1000);
  }
  return Number.isFinite(time) ? { kind: 'at', time } : { kind: 'keep' };
}

// ---------------------------------------------------------------------------------------------
// Zones
// ---------------------------------------------------------------------------------------------

/**
 * A zone's state from its nodes' Ready statuses (`undefined`: no Ready condition, counted as not
 * Ready), as Kubernetes' `ComputeZoneState`: FullDisruption when none is Ready; PartialDisruption
 * when more than 2 are not Ready and they are at least `unhealthyZoneThreshold` of the zone;
 * Normal otherwise.
 */
export function computeZoneState(readyStatuses: readonly (string | undefined)[], unhealthyZoneThreshold: number): { readonly unhealthy: number; readonly state: ZoneState } {
  const ready = readyStatuses.filter((s) => s === 'True').length;
  const unhealthy = readyStatuses.length - ready;
  if (ready === 0 && unhealthy > 0) return { unhealthy, state: 'FullDisruption' };
  if (unhealthy > 2 && unhealthy / (unhealthy + ready) >= unhealthyZoneThreshold) return { unhealthy, state: 'PartialDisruption' };
  return { unhealthy, state: 'Normal' };
}

/**
 * The NoExecute tainting rate (nodes per second) of a zone of `zoneSize` nodes in `state` (when
 * not every zone is fully disrupted): `nodeEvictionRate` when Normal (or Initial) or
 * FullDisruption (Kubernetes' HealthyQPSFunc); when PartialDisruption `secondaryNodeEvictionRate`
 * if the zone has more than `largeClusterSizeThreshold` nodes, else 0 (ReducedQPSFunc).
 */
export function zoneEvictionRate(state: ZoneState, zoneSize: number, config: Pick<EvictionRateConfig, 'nodeEvictionRate' | 'secondaryNodeEvictionRate' | 'largeClusterSizeThreshold'>): number {
  if (state === 'PartialDisruption') return zoneSize > config.largeClusterSizeThreshold ? config.secondaryNodeEvictionRate : 0;
  return config.nodeEvictionRate;
}

/** What a monitor pass does about zones ({@link planDisruption}). */
export interface DisruptionPlan {
  /** The zone states to keep (zones without nodes are gone). */
  readonly states: ReadonlyMap<string, ZoneState>;
  /** Nodes not Ready per zone. */
  readonly unhealthy: ReadonlyMap<string, number>;
  /** True while every zone is fully disrupted: no NoExecute tainting anywhere. */
  readonly masterDisruption: boolean;
  /**
   * `enter`: every zone just became fully disrupted (remove the NoExecute taints this controller
   * set, stop all tainting); `exit`: a node is Ready again after that (restart every node's grace
   * period and set every zone's rate).
   */
  readonly transition?: 'enter' | 'exit';
  /** New tainting rates of the zones whose rate changes. */
  readonly rates: ReadonlyMap<string, number>;
}

/**
 * Kubernetes' `handleDisruption` as a pure function: from the zone states of the last pass, whether
 * the cluster was in master disruption, and each zone's Ready statuses now, the new states and the
 * rate changes. (Unlike Kubernetes, leaving master disruption is decided by the mode itself, so a
 * new zone appearing while every other zone is down also restores the other zones' rates.)
 */
export function planDisruption(previous: ReadonlyMap<string, ZoneState>, wasMasterDisruption: boolean, zones: ReadonlyMap<string, readonly (string | undefined)[]>, config: EvictionRateConfig): DisruptionPlan {
  const next = new Map<string, ZoneState>();
  const unhealthy = new Map<string, number>();
  for (const [zone, statuses] of zones) {
    const z = computeZoneState(statuses, config.unhealthyZoneThreshold);
    next.set(zone, z.state);
    unhealthy.set(zone, z.unhealthy);
  }
  const allFull = next.size > 0 && [...next.values()].every((s) => s === 'FullDisruption');
  const rates = new Map<string, number>();
  if (allFull) {
    if (wasMasterDisruption) return { states: next, unhealthy, masterDisruption: true, rates };
    for (const zone of next.keys()) rates.set(zone, 0);
    return { states: next, unhealthy, masterDisruption: true, transition: 'enter', rates };
  }
  for (const [zone, state] of next) {
    if (wasMasterDisruption || (previous.get(zone) ?? 'Initial') !== state) rates.set(zone, zoneEvictionRate(state, zones.get(zone)!.length, config));
  }
  return { states: next, unhealthy, masterDisruption: false, ...(wasMasterDisruption ? { transition: 'exit' as const } : {}), rates };
}

/**
 * A token bucket answering "may I, now?" without reserving (`golang.org/x/time/rate`'s `Allow`,
 * as client-go's `TokenBucketRateLimiter.TryAccept`), for the per-zone NoExecute tainting. A rate
 * <= 0 never allows. (The SDK's `BucketRateLimiter` reserves a future token on every call, which
 * suits delays, not a try-and-skip loop.)
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  /**
   * @param qps tokens per second; <= 0 never allows.
   * @param burst the bucket's size and initial fill.
   * @param now the current time (ms).
   */
  constructor(
    readonly qps: number,
    readonly burst = EVICTION_RATE_LIMITER_BURST,
    now = Date.now(),
  ) {
    this.tokens = qps > 0 ? burst : 0;
    this.last = now;
  }

  /** Takes a token if one is there. */
  tryAccept(now: number): boolean {
    if (!(this.qps > 0)) return false;
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /**
   * A bucket with rate `qps` (this one when the rate is the same). As client-go's `SwapLimiter`,
   * when this bucket would refuse now the new one starts empty, so a zone that was refusing (rate
   * 0, or out of tokens) waits a whole period of the new rate before its next taint.
   */
  withRate(qps: number, now: number): TokenBucket {
    if (qps === this.qps) return this;
    const next = new TokenBucket(qps, this.burst, now);
    if (!this.tryAccept(now)) next.tryAccept(now);
    return next;
  }

  private refill(now: number): void {
    const elapsed = Math.max(0, now - this.last);
    this.last = Math.max(this.last, now);
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.qps) / 1000);
  }
}

// ---------------------------------------------------------------------------------------------
// Heartbeats and conditions
// ---------------------------------------------------------------------------------------------

/** What the controller remembers of a node's heartbeats. */
export interface NodeHealth {
  /** Local time (ms) at which the last new heartbeat (Ready condition or Lease) was observed. */
  readonly probeTime: number;
  /** Local time at which the Ready condition was last seen changing. */
  readonly readyTransitionTime: number;
  /** The Ready condition last seen. */
  readonly ready?: NodeCondition;
  /** The Lease `spec.renewTime` last seen. */
  readonly leaseRenewTime?: string;
}

/** The outcome of {@link observeNodeHealth}. */
export interface NodeHealthObservation {
  readonly health: NodeHealth;
  /** The Ready condition the node shows (a synthetic Unknown one when it has none). */
  readonly observedReady: NodeCondition;
  readonly gracePeriodMs: number;
  /** No heartbeat within the grace period: the conditions must go Unknown. */
  readonly expired: boolean;
}

/** True when RFC 3339 time `a` is later than `b` (by text when either does not parse). */
function later(a: string, b: string): boolean {
  const x = Date.parse(a);
  const y = Date.parse(b);
  return Number.isFinite(x) && Number.isFinite(y) ? x > y : a !== b;
}

/**
 * Folds what a node shows now into what was saved (Kubernetes' `tryUpdateNodeHealth`, its pure
 * part): a Ready condition whose `lastHeartbeatTime` changed, or a Lease renewed later than the
 * last one seen, is a heartbeat at `now` (local time: the remote times are only compared with
 * themselves). A node never seen gets `now`; a node without a Ready condition is timed from its
 * creation with the startup grace period. Expired means `now` is past the last heartbeat plus
 * the grace period.
 */
export function observeNodeHealth(saved: NodeHealth | undefined, node: KubeObject, lease: KubeObject | undefined, now: number, grace: { readonly gracePeriodMs: number; readonly startupGracePeriodMs: number }): NodeHealthObservation {
  const current = nodeCondition(node, 'Ready');
  const created = String((node.metadata as Fields | undefined)?.creationTimestamp ?? '');
  const createdMs = Number.isFinite(Date.parse(created)) ? Date.parse(created) : now;
  let observedReady: NodeCondition;
  let gracePeriodMs: number;
  let health = saved;
  if (!current) {
    observedReady = { type: 'Ready', status: 'Unknown', lastHeartbeatTime: created, lastTransitionTime: created };
    gracePeriodMs = grace.startupGracePeriodMs;
    health = health ? { ...health, ready: undefined } : { probeTime: createdMs, readyTransitionTime: createdMs };
  } else {
    observedReady = { ...current };
    gracePeriodMs = grace.gracePeriodMs;
  }
  const savedReady = saved ? health?.ready : undefined;
  if (!health) {
    health = { probeTime: now, readyTransitionTime: now, ...(current ? { ready: current } : {}) };
  } else if (!savedReady && current) {
    health = { probeTime: now, readyTransitionTime: now, ready: current };
  } else if (savedReady && current && savedReady.lastHeartbeatTime !== current.lastHeartbeatTime) {
    const transitioned = savedReady.lastTransitionTime !== current.lastTransitionTime;
    health = { ...health, probeTime: now, readyTransitionTime: transitioned ? now : health.readyTransitionTime, ready: current };
  } else if (current) {
    health = { ...health, ready: current };
  }
  const renew = (lease?.spec as Fields | undefined)?.renewTime;
  if (typeof renew === 'string' && renew !== '' && (health.leaseRenewTime === undefined || later(renew, health.leaseRenewTime))) {
    health = { ...health, leaseRenewTime: renew, probeTime: now };
  }
  return { health, observedReady, gracePeriodMs, expired: now > health.probeTime + gracePeriodMs };
}

/**
 * The node's conditions with Ready, MemoryPressure, DiskPressure and PIDPressure set to Unknown
 * (Kubernetes' wording: `NodeStatusUnknown` / "Kubelet stopped posting node status."; a condition
 * never posted is added as `NodeStatusNeverUpdated` with the node's creation time as heartbeat).
 * Conditions already Unknown are kept as they are; `lastTransitionTime` is `now` for the changed
 * ones. Returns a new list.
 */
export function markConditionsUnknown(node: KubeObject, now: number): NodeCondition[] {
  const conditions = nodeConditions(node).map((c) => ({ ...c }));
  const stamp = formatTime(now);
  for (const type of MONITORED_CONDITIONS) {
    const i = conditions.findIndex((c) => c.type === type);
    if (i < 0) {
      conditions.push({ type, status: 'Unknown', reason: NODE_STATUS_NEVER_UPDATED_REASON, message: NODE_STATUS_NEVER_UPDATED_MESSAGE, lastHeartbeatTime: String((node.metadata as Fields | undefined)?.creationTimestamp ?? stamp), lastTransitionTime: stamp });
    } else if (conditions[i]!.status !== 'Unknown') {
      conditions[i] = { ...conditions[i]!, status: 'Unknown', reason: NODE_STATUS_UNKNOWN_REASON, message: NODE_STATUS_UNKNOWN_MESSAGE, lastTransitionTime: stamp };
    }
  }
  return conditions;
}

const sameCondition = (a: NodeCondition | undefined, b: NodeCondition | undefined): boolean =>
  !!a && !!b && (['type', 'status', 'reason', 'message', 'lastHeartbeatTime', 'lastTransitionTime'] as const).every((k) => (a[k] ?? '') === (b[k] ?? ''));

// ---------------------------------------------------------------------------------------------
// Taints
// ---------------------------------------------------------------------------------------------

/** Which condition status means which NoSchedule taint (Kubernetes' nodeConditionToTaintKeyStatusMap). */
const CONDITION_TAINTS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  Ready: { False: TAINT_NODE_NOT_READY, Unknown: TAINT_NODE_UNREACHABLE },
  MemoryPressure: { True: TAINT_NODE_MEMORY_PRESSURE },
  DiskPressure: { True: TAINT_NODE_DISK_PRESSURE },
  NetworkUnavailable: { True: TAINT_NODE_NETWORK_UNAVAILABLE },
  PIDPressure: { True: TAINT_NODE_PID_PRESSURE },
};
const CONDITION_TAINT_KEYS = new Set(Object.values(CONDITION_TAINTS).flatMap((m) => Object.values(m)));

/** The NoSchedule taints a node's conditions and `spec.unschedulable` call for. */
export function noScheduleTaintsFor(node: KubeObject): Taint[] {
  const out: Taint[] = [];
  for (const c of nodeConditions(node)) {
    const key = CONDITION_TAINTS[c.type]?.[c.status];
    if (key && !out.some((t) => t.key === key)) out.push({ key, effect: 'NoSchedule' });
  }
  if ((node.spec as Fields | undefined)?.unschedulable === true) out.push({ key: TAINT_NODE_UNSCHEDULABLE, effect: 'NoSchedule' });
  return out;
}

/**
 * `current` without the taints matching `remove` and with those of `add` that are missing (with
 * `timeAdded` = `now`; a taint already there keeps its own `timeAdded`), or `undefined` when
 * nothing changes. Other taints keep their order.
 */
export function swapTaints(current: readonly Taint[], add: readonly Taint[], remove: readonly Taint[], now: number): Taint[] | undefined {
  const kept = current.filter((t) => !remove.some((r) => matchTaint(r, t)) || add.some((a) => matchTaint(a, t)));
  const added = add.filter((a) => !kept.some((t) => matchTaint(a, t))).map((a) => ({ ...a, timeAdded: formatTime(now) }));
  if (kept.length === current.length && added.length === 0) return undefined;
  return [...kept, ...added];
}

/**
 * The node's taints with the controller-managed NoSchedule taints (condition taints and
 * `unschedulable`) brought in line with {@link noScheduleTaintsFor}; `undefined` when they already are.
 */
export function reconcileNoScheduleTaints(node: KubeObject, now: number): Taint[] | undefined {
  const current = taintsOf(node);
  const managed = current.filter((t) => t.effect === 'NoSchedule' && (t.key === TAINT_NODE_UNSCHEDULABLE || CONDITION_TAINT_KEYS.has(t.key)));
  const desired = noScheduleTaintsFor(node);
  const add = desired.filter((d) => !managed.some((t) => matchTaint(d, t)));
  const remove = managed.filter((t) => !desired.some((d) => matchTaint(d, t)));
  if (add.length === 0 && remove.length === 0) return undefined;
  return swapTaints(current, add, remove, now);
}

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

/** The controller's Prometheus metrics (Kubernetes' names). */
export interface NodeLifecycleMetrics {
  readonly zoneHealth: ReturnType<Metrics['gauge']>;
  readonly zoneSize: ReturnType<Metrics['gauge']>;
  readonly unhealthyNodes: ReturnType<Metrics['gauge']>;
  readonly evictions: ReturnType<Metrics['counter']>;
  readonly updateAllNodesHealth: ReturnType<Metrics['histogram']>;
  readonly podDeletions: ReturnType<Metrics['counter']>;
}

/** Registers (or gets back) the controller's metrics. */
export function nodeLifecycleMetrics(metrics: Metrics): NodeLifecycleMetrics {
  return {
    zoneHealth: metrics.gauge({ name: 'node_collector_zone_health', help: 'Gauge measuring percentage of healthy nodes per zone.', labelNames: ['zone'] }),
    zoneSize: metrics.gauge({ name: 'node_collector_zone_size', help: 'Gauge measuring number of registered Nodes per zones.', labelNames: ['zone'] }),
    unhealthyNodes: metrics.gauge({ name: 'node_collector_unhealthy_nodes_in_zone', help: 'Gauge measuring number of not Ready Nodes per zones.', labelNames: ['zone'] }),
    evictions: metrics.counter({ name: 'node_collector_evictions_total', help: 'Number of Node evictions that happened since current instance of NodeController started.', labelNames: ['zone'] }),
    updateAllNodesHealth: metrics.histogram({ name: 'node_collector_update_all_nodes_health_duration_seconds', help: 'Duration in seconds for NodeController to update the health of all nodes.', buckets: [0.01, 0.04, 0.16, 0.64, 2.56, 10.24, 40.96] }),
    podDeletions: metrics.counter({ name: 'taint_eviction_controller_pod_deletions_total', help: 'Total number of Pods deleted by TaintEvictionController since its start.' }),
  };
}

// ---------------------------------------------------------------------------------------------
// Shared API helpers
// ---------------------------------------------------------------------------------------------

type Api = Pick<ApiClient, 'get' | 'update' | 'patch' | 'request' | 'create'>;

const nodePath = (name: string): string => `/api/v1/nodes/${encodeURIComponent(name)}`;
const podPath = (ns: string, name: string): string => `/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(name)}`;

/** An object reference for events (informer copies may lack apiVersion and kind). */
const refOf = (kind: 'Node' | 'Pod', o: KubeObject): KubeObject => ({ apiVersion: 'v1', kind, metadata: { name: o.metadata?.name, ...(o.metadata?.namespace ? { namespace: o.metadata.namespace } : {}), ...(uidOf(o) ? { uid: uidOf(o) } : {}) } });

/**
 * Rewrites a node's taints with `mutate` (which returns `undefined` for "no change"), as a merge
 * patch guarded by the resourceVersion it was computed from; on a conflict it reads the node again
 * and recomputes. Resolves true when it wrote, false when nothing had to change or the node is gone.
 */
async function updateNodeTaints(api: Api, cached: KubeObject | undefined, name: string, mutate: (node: KubeObject) => Taint[] | undefined): Promise<boolean> {
  let node = cached;
  for (let attempt = 0; attempt < 5; attempt++) {
    let current: KubeObject;
    try {
      current = node ?? (await api.get(nodePath(name)));
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
    const next = mutate(current);
    if (!next) return false;
    try {
      await api.patch(nodePath(name), { metadata: { resourceVersion: current.metadata?.resourceVersion }, spec: { taints: next.length > 0 ? next : null } });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      if (!isConflict(err)) throw err;
      node = undefined;
    }
  }
  throw new Error(`node ${name}: the taints kept changing under us (conflicts); will retry`);
}

/** Runs `fn` over `items` with at most `limit` at once (Kubernetes' ParallelizeUntil). */
async function parallel<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Taint eviction
// ---------------------------------------------------------------------------------------------

/**
 * The taint manager's reconciler, keyed by pod: a pod on a node with NoExecute taints is deleted
 * now, later ({@link evictionDecision}; the key is revisited when the time comes) or never. Level
 * based: a revisit finding the taint gone cancels (with a `Cancelling deletion` event when an
 * eviction had been scheduled).
 */
export class TaintEvictionReconciler {
  private readonly scheduled = new Map<string, number>();
  private readonly evicted = new Set<string>();
  private readonly firstSeen = new Map<string, number>();

  constructor(
    private readonly api: Api,
    private readonly pods: Informer,
    private readonly nodes: Informer,
    private readonly log: Logger,
    private readonly options: { readonly recorder?: EventRecorder; readonly clock?: Clock; readonly deletions?: NodeLifecycleMetrics['podDeletions'] } = {},
  ) {}

  /** The pods with a scheduled (future) eviction, and when (ms since the epoch). */
  get pending(): ReadonlyMap<string, number> {
    return this.scheduled;
  }

  async reconcile(key: ObjectKey): Promise<ReconcileResult | void> {
    const k = keyString(key);
    const pod = this.pods.get(k);
    if (!pod) {
      this.scheduled.delete(k);
      return;
    }
    const nodeName = podNodeName(pod);
    if (!nodeName || pod.metadata?.deletionTimestamp || this.evicted.has(uidOf(pod))) return this.cancel(pod, k);
    const decision = evictionDecision(noExecuteTaints(this.nodes.get(nodeName)), tolerationsOf(pod), (t) => this.startOf(nodeName, t));
    if (decision.kind === 'keep') return this.cancel(pod, k);
    const now = (this.options.clock ?? systemClock).now();
    if (decision.kind === 'at' && decision.time > now) {
      if (this.scheduled.get(k) !== decision.time) this.log.info({ pod: k, node: nodeName, at: new Date(decision.time).toISOString() }, 'pod tolerates the NoExecute taints of its node for a while: eviction scheduled');
      this.scheduled.set(k, decision.time);
      return { requeueAfter: Math.max(1, Math.ceil(decision.time - now)) };
    }
    await this.evict(pod, k, nodeName);
  }

  /** A pod left the cache: forget it. */
  podDeleted(pod: KubeObject): void {
    this.evicted.delete(uidOf(pod));
    this.scheduled.delete(podKey(pod));
  }

  /** A node's taints changed (or it is gone, `node` undefined): forget first-seen times of taints it no longer has. */
  nodeChanged(name: string, node: KubeObject | undefined): void {
    const present = new Set(noExecuteTaints(node).map((t) => `${name}\0${t.key}\0${t.value ?? ''}`));
    for (const k of this.firstSeen.keys()) if (k.startsWith(`${name}\0`) && !present.has(k)) this.firstSeen.delete(k);
  }

  /** A taint's start: its `timeAdded`, else when this controller first saw it. */
  private startOf(nodeName: string, taint: Taint): number {
    const added = taintAddedAt(taint);
    if (added !== undefined) return added;
    const k = `${nodeName}\0${taint.key}\0${taint.value ?? ''}`;
    let seen = this.firstSeen.get(k);
    if (seen === undefined) this.firstSeen.set(k, (seen = (this.options.clock ?? systemClock).now()));
    return seen;
  }

  private cancel(pod: KubeObject, k: string): void {
    if (this.scheduled.delete(k)) this.options.recorder?.event(refOf('Pod', pod), 'Normal', 'TaintManagerEviction', `Cancelling deletion of Pod ${k}`);
  }

  private async evict(pod: KubeObject, k: string, nodeName: string): Promise<void> {
    this.scheduled.delete(k);
    const uid = uidOf(pod);
    this.evicted.add(uid);
    this.log.info({ pod: k, node: nodeName }, 'deleting pod: NoExecute taint not tolerated (any more)');
    this.options.recorder?.event(refOf('Pod', pod), 'Normal', 'TaintManagerEviction', `Marking for deletion Pod ${k}`);
    const ns = String(pod.metadata?.namespace);
    const name = String(pod.metadata?.name);
    try {
      await this.addDisruptionCondition(pod);
      await this.api.request('DELETE', podPath(ns, name), { body: { apiVersion: 'v1', kind: 'DeleteOptions', ...(uid ? { preconditions: { uid } } : {}) } });
      this.options.deletions?.inc();
    } catch (err) {
      // Gone, or replaced by another pod of the same name (uid precondition): nothing to evict.
      if (isNotFound(err) || isConflict(err)) return;
      this.evicted.delete(uid);
      throw err;
    }
  }

  /** The pod's DisruptionTarget condition (reason DeletionByTaintManager), as Kubernetes sets before deleting. */
  private async addDisruptionCondition(cached: KubeObject): Promise<void> {
    let pod = cached;
    for (let attempt = 0; attempt < 3; attempt++) {
      const conditions = (((pod.status as Fields | undefined)?.conditions ?? []) as Fields[]).filter((c) => c && typeof c === 'object');
      const existing = conditions.find((c) => c.type === 'DisruptionTarget');
      const reason = 'DeletionByTaintManager';
      const message = 'Taint manager: deleting due to NoExecute taint';
      if (existing && existing.status === 'True' && existing.reason === reason && existing.message === message) return;
      const condition = { type: 'DisruptionTarget', status: 'True', reason, message, lastTransitionTime: formatTime((this.options.clock ?? systemClock).now()) };
      const next = existing ? conditions.map((c) => (c === existing ? condition : c)) : [...conditions, condition];
      try {
        await this.api.patch(`${podPath(String(pod.metadata?.namespace), String(pod.metadata?.name))}/status`, { metadata: { resourceVersion: pod.metadata?.resourceVersion }, status: { conditions: next } });
        return;
      } catch (err) {
        if (!isConflict(err)) throw err;
        pod = await this.api.get(podPath(String(pod.metadata?.namespace), String(pod.metadata?.name)));
        if (uidOf(pod) !== uidOf(cached)) throw err;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The node lifecycle controller
// ---------------------------------------------------------------------------------------------

/** A zone's NoExecute tainting queue: pending nodes in order, behind a token bucket. */
interface ZoneTainter {
  readonly pending: Set<string>;
  limiter: TokenBucket;
}

/** What a {@link NodeLifecycleController} works with. */
export interface NodeLifecycleControllerOptions {
  readonly api: Api;
  readonly nodes: Informer;
  /** Leases of `kube-node-lease`. */
  readonly leases: Informer;
  /** All pods, with an index `spec.nodeName` (added if missing). */
  readonly pods: Informer;
  readonly config: Omit<NodeLifecycleConfig, 'leaderElection'>;
  readonly logger: Logger;
  readonly metrics?: NodeLifecycleMetrics;
  /** The SDK metrics, for the work queues' and reconcilers' own. */
  readonly queueMetrics?: Metrics;
  readonly clock?: Clock;
  /** Records node events (component `node-controller`). */
  readonly recorder?: EventRecorder;
  /** Records eviction events (component `taint-eviction-controller`). */
  readonly evictionRecorder?: EventRecorder;
}

/**
 * One leadership term of the node lifecycle controller: the monitor loop (node health, zone
 * states, NoExecute tainting), the NoSchedule taint reconciler, the reconciler marking pods bound
 * to unhealthy nodes not Ready, and taint eviction. Make a new one per term.
 */
export class NodeLifecycleController {
  private readonly health = new Map<string, NodeHealth>();
  private readonly known = new Map<string, KubeObject>();
  private readonly tainters = new Map<string, ZoneTainter>();
  private readonly nodesToRetry = new Set<string>();
  private zoneStates: ReadonlyMap<string, ZoneState> = new Map();
  private masterDisruption = false;
  private readonly clock: Clock;
  private readonly log: Logger;
  readonly eviction: TaintEvictionReconciler;

  constructor(private readonly options: NodeLifecycleControllerOptions) {
    this.clock = options.clock ?? systemClock;
    this.log = options.logger;
    options.pods.addIndexer(NODE_NAME_INDEX, (p) => (podNodeName(p) ? [podNodeName(p)] : []));
    this.eviction = new TaintEvictionReconciler(options.api, options.pods, options.nodes, options.logger, {
      clock: this.clock,
      ...(options.evictionRecorder ? { recorder: options.evictionRecorder } : {}),
      ...(options.metrics ? { deletions: options.metrics.podDeletions } : {}),
    });
  }

  /** The zone states of the last monitor pass. */
  get zones(): ReadonlyMap<string, ZoneState> {
    return this.zoneStates;
  }

  /** True while every zone is fully disrupted (no NoExecute tainting). */
  get inMasterDisruption(): boolean {
    return this.masterDisruption;
  }

  /** Runs everything until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const { nodes, pods, logger } = this.options;
    const queueMetrics = this.options.queueMetrics ? { metrics: this.options.queueMetrics } : {};
    const noSchedule = new Controller({ name: 'node-lifecycle-taints', reconciler: { reconcile: (k) => this.syncNoScheduleTaints(k.name) }, workers: NODE_WORKERS, logger, ...queueMetrics });
    noSchedule.watch(nodes);
    const podReadiness = new Controller({ name: 'node-lifecycle-pods', reconciler: { reconcile: (k) => this.processPod(k) }, workers: POD_WORKERS, logger, ...queueMetrics });
    const eviction = new Controller({ name: 'taint-eviction', reconciler: this.eviction, workers: EVICTION_WORKERS, logger, ...queueMetrics });
    const podsOn = (node: KubeObject): KubeObject[] => pods.byIndex(NODE_NAME_INDEX, nameOf(node));
    const unsubscribe = [
      pods.subscribe({
        add: (p) => {
          eviction.enqueue(objectKey(p));
          if (podNodeName(p)) podReadiness.enqueue(objectKey(p));
        },
        update: (p, old) => {
          const moved = podNodeName(p) !== podNodeName(old);
          if (moved || !sameJson(tolerationsOf(p), tolerationsOf(old)) || !!p.metadata?.deletionTimestamp !== !!old.metadata?.deletionTimestamp) eviction.enqueue(objectKey(p));
          if (moved && podNodeName(p)) podReadiness.enqueue(objectKey(p));
        },
        delete: (p) => {
          this.eviction.podDeleted(p);
          eviction.enqueue(objectKey(p));
        },
      }),
      nodes.subscribe({
        add: (n) => {
          if (noExecuteTaints(n).length > 0) for (const p of podsOn(n)) eviction.enqueue(objectKey(p));
        },
        update: (n, old) => {
          if (sameJson(noExecuteTaints(n), noExecuteTaints(old))) return;
          this.eviction.nodeChanged(nameOf(n), n);
          for (const p of podsOn(n)) eviction.enqueue(objectKey(p));
        },
        delete: (n) => {
          this.eviction.nodeChanged(nameOf(n), undefined);
          for (const p of podsOn(n)) eviction.enqueue(objectKey(p));
        },
      }),
    ];
    try {
      await Promise.all([noSchedule.run(signal), podReadiness.run(signal), eviction.run(signal), this.loop(signal)]);
    } finally {
      for (const u of unsubscribe) u();
    }
  }

  /** Monitor passes every period and NoExecute tainting passes every 100 ms, never at the same time. */
  private async loop(signal: AbortSignal): Promise<void> {
    const period = this.options.config.nodeMonitorPeriodSeconds * 1000;
    let nextMonitor = 0;
    while (!signal.aborted) {
      if (performance.now() >= nextMonitor) {
        try {
          await this.monitorNodeHealth();
        } catch (err) {
          this.log.error({ err: errorText(err) }, 'error monitoring node health');
        }
        nextMonitor = performance.now() + period;
      }
      try {
        await this.noExecuteTaintingPass();
      } catch (err) {
        this.log.error({ err: errorText(err) }, 'error in the NoExecute tainting pass');
      }
      const wait = Math.max(1, Math.min(NODE_EVICTION_PERIOD_MS, nextMonitor - performance.now()));
      if (!(await delay(wait, signal))) break;
    }
  }

  /**
   * One monitor pass (Kubernetes' `monitorNodeHealth`): notices new and removed nodes, updates
   * every node's health (conditions to Unknown past the grace period), queues unhealthy nodes for
   * NoExecute taints or untaints healthy ones, marks pods of newly unhealthy nodes not Ready, then
   * updates zone states and rates.
   */
  async monitorNodeHealth(): Promise<void> {
    const started = performance.now();
    const nodes = this.options.nodes.list();
    const present = new Set(nodes.map(nameOf));
    for (const node of nodes) {
      const name = nameOf(node);
      this.tainter(zoneKey(node));
      if (this.known.has(name)) {
        this.known.set(name, node);
        continue;
      }
      this.known.set(name, node);
      this.log.info({ node: name }, 'controller observed a new node');
      this.nodeEvent(node, 'Normal', 'RegisteredNode', `Node ${name} event: Registered Node ${name} in Controller`);
      // A node first seen starts without the NoExecute taints of an earlier term: it earns them again.
      await this.markNodeAsReachable(node).catch((err: unknown) => this.log.warn({ node: name, err: errorText(err) }, 'could not remove NoExecute taints of a newly observed node'));
    }
    for (const [name, node] of [...this.known]) {
      if (present.has(name)) continue;
      this.log.info({ node: name }, 'controller observed a node deletion');
      this.nodeEvent(node, 'Normal', 'RemovingNode', `Node ${name} event: Removing Node ${name} from Controller`);
      this.known.delete(name);
      this.health.delete(name);
      this.nodesToRetry.delete(name);
      for (const t of this.tainters.values()) t.pending.delete(name);
    }

    const zones = new Map<string, Array<string | undefined>>();
    await parallel(nodes, NODE_WORKERS, async (original) => {
      const name = nameOf(original);
      try {
        const result = await this.updateNodeHealth(original);
        if (!result) return;
        const { node, observed, current } = result;
        if (!isExcludedFromDisruption(node)) {
          const zone = zoneKey(node);
          if (!zones.has(zone)) zones.set(zone, []);
          zones.get(zone)!.push(current?.status);
        }
        if (!current) {
          this.nodesToRetry.delete(name);
          return;
        }
        await this.processTaintBasedEviction(node, observed);
        let markPods = false;
        if (current.status !== 'True' && observed.status === 'True') {
          this.nodeEvent(node, 'Normal', 'NodeNotReady', `Node ${name} status is now: NodeNotReady`);
          markPods = true;
        } else if (this.nodesToRetry.has(name) && observed.status !== 'True') {
          markPods = true;
        }
        if (markPods && !(await this.markPodsNotReady(name, this.options.pods.byIndex(NODE_NAME_INDEX, name)))) {
          this.nodesToRetry.add(name);
          return;
        }
        this.nodesToRetry.delete(name);
      } catch (err) {
        this.log.error({ node: name, err: errorText(err) }, 'node health pass failed for a node');
      }
    });
    await this.handleDisruption(zones, nodes);
    this.options.metrics?.updateAllNodesHealth.observe((performance.now() - started) / 1000);
  }

  /** Updates a node's health, retrying on conflicts with a fresh read (up to {@link NODE_HEALTH_UPDATE_RETRY} times). */
  private async updateNodeHealth(original: KubeObject): Promise<{ node: KubeObject; observed: NodeCondition; current?: NodeCondition } | undefined> {
    const name = nameOf(original);
    let node = original;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.tryUpdateNodeHealth(node);
      } catch (err) {
        if (isNotFound(err)) return undefined;
        if (attempt >= NODE_HEALTH_UPDATE_RETRY) {
          this.log.error({ node: name, err: errorText(err) }, 'could not update node health; skipping it this pass (no pods will be evicted)');
          return undefined;
        }
      }
      await delay(20);
      try {
        node = await this.options.api.get(nodePath(name));
      } catch (err) {
        if (!isNotFound(err)) this.log.error({ node: name, err: errorText(err) }, 'could not read a node to retry its health update');
        return undefined;
      }
    }
  }

  private async tryUpdateNodeHealth(node: KubeObject): Promise<{ node: KubeObject; observed: NodeCondition; current?: NodeCondition }> {
    const name = nameOf(node);
    const now = this.clock.now();
    const { config } = this.options;
    const lease = this.options.leases.get(`${NODE_LEASE_NAMESPACE}/${name}`);
    const obs = observeNodeHealth(this.health.get(name), node, lease, now, { gracePeriodMs: config.nodeMonitorGracePeriodSeconds * 1000, startupGracePeriodMs: config.nodeStartupGracePeriodSeconds * 1000 });
    this.health.set(name, obs.health);
    const current = nodeCondition(node, 'Ready');
    if (!obs.expired) return { node, observed: obs.observedReady, ...(current ? { current } : {}) };
    const conditions = markConditionsUnknown(node, now);
    const ready = conditions.find((c) => c.type === 'Ready');
    if (sameCondition(ready, obs.observedReady)) return { node, observed: obs.observedReady, ...(current ? { current } : {}) };
    const next = structuredClone(node) as Fields;
    next.status = { ...(next.status ?? {}), conditions };
    this.log.info({ node: name, sinceHeartbeatMs: now - obs.health.probeTime }, 'node stopped posting status: conditions set to Unknown');
    const written = (await this.options.api.update(`${nodePath(name)}/status`, next)) ?? next;
    this.health.set(name, { ...obs.health, ...(ready ? { ready } : {}), readyTransitionTime: now });
    return { node: written, observed: obs.observedReady, ...(ready ? { current: ready } : {}) };
  }

  /** Kubernetes' `processTaintBaseEviction`: the NoExecute side of the node's observed Ready status. */
  private async processTaintBasedEviction(node: KubeObject, observed: NodeCondition): Promise<void> {
    const name = nameOf(node);
    try {
      if (observed.status === 'False' || observed.status === 'Unknown') {
        const [want, opposite] = observed.status === 'False' ? [NOT_READY_NO_EXECUTE, UNREACHABLE_NO_EXECUTE] : [UNREACHABLE_NO_EXECUTE, NOT_READY_NO_EXECUTE];
        // Already tainted with the other one: swap at once (no new eviction budget needed).
        if (hasTaint(node, opposite)) await this.swapNodeTaints(node, [want], [opposite]);
        else if (!hasTaint(node, want)) this.tainter(zoneKey(node)).pending.add(name);
      } else if (observed.status === 'True') {
        await this.markNodeAsReachable(node);
      }
    } catch (err) {
      this.log.warn({ node: name, err: errorText(err) }, 'could not update NoExecute taints; will retry next pass');
    }
  }

  /** Removes the NoExecute not-ready/unreachable taints and takes the node off the tainting queues. */
  private async markNodeAsReachable(node: KubeObject): Promise<boolean> {
    for (const t of this.tainters.values()) t.pending.delete(nameOf(node));
    if (!hasTaint(node, UNREACHABLE_NO_EXECUTE) && !hasTaint(node, NOT_READY_NO_EXECUTE)) return false;
    const removed = await this.swapNodeTaints(node, [], [UNREACHABLE_NO_EXECUTE, NOT_READY_NO_EXECUTE]);
    if (removed) this.log.info({ node: nameOf(node) }, 'node is reachable again (or evictions are stopped): NoExecute taints removed');
    return removed;
  }

  private swapNodeTaints(node: KubeObject, add: readonly Taint[], remove: readonly Taint[]): Promise<boolean> {
    return updateNodeTaints(this.options.api, node, nameOf(node), (n) => swapTaints(taintsOf(n), add, remove, this.clock.now()));
  }

  /**
   * One NoExecute tainting pass (Kubernetes' `doNoExecuteTaintingPass`): per zone, while the
   * zone's bucket gives a token, taints the next queued node `not-ready` or `unreachable` by its
   * Ready condition now (and drops the other one); a node Ready again is dropped from the queue.
   */
  async noExecuteTaintingPass(): Promise<void> {
    for (const [zone, tainter] of this.tainters) {
      for (const name of [...tainter.pending]) {
        if (!tainter.limiter.tryAccept(this.clock.now())) break;
        const node = this.options.nodes.get(name);
        if (!node) {
          tainter.pending.delete(name);
          continue;
        }
        const status = nodeCondition(node, 'Ready')?.status;
        if (status !== 'False' && status !== 'Unknown') {
          tainter.pending.delete(name);
          continue;
        }
        const [want, opposite] = status === 'False' ? [NOT_READY_NO_EXECUTE, UNREACHABLE_NO_EXECUTE] : [UNREACHABLE_NO_EXECUTE, NOT_READY_NO_EXECUTE];
        try {
          await this.swapNodeTaints(node, [want], [opposite]);
          tainter.pending.delete(name);
          this.options.metrics?.evictions.inc({ zone });
          this.log.info({ node: name, zone, taint: want.key }, 'node tainted NoExecute');
        } catch (err) {
          // Back of the queue; the token is spent, as in Kubernetes.
          tainter.pending.delete(name);
          tainter.pending.add(name);
          this.log.warn({ node: name, err: errorText(err) }, 'could not taint node NoExecute; will retry');
          break;
        }
      }
    }
  }

  private tainter(zone: string): ZoneTainter {
    let t = this.tainters.get(zone);
    if (!t) {
      t = { pending: new Set(), limiter: new TokenBucket(this.masterDisruption ? 0 : this.options.config.nodeEvictionRate, EVICTION_RATE_LIMITER_BURST, this.clock.now()) };
      this.tainters.set(zone, t);
    }
    return t;
  }

  private async handleDisruption(zones: ReadonlyMap<string, readonly (string | undefined)[]>, nodes: readonly KubeObject[]): Promise<void> {
    const plan = planDisruption(this.zoneStates, this.masterDisruption, zones, this.options.config);
    const now = this.clock.now();
    const m = this.options.metrics;
    for (const [zone, statuses] of zones) {
      const unhealthy = plan.unhealthy.get(zone) ?? 0;
      m?.zoneSize.set({ zone }, statuses.length);
      m?.unhealthyNodes.set({ zone }, unhealthy);
      m?.zoneHealth.set({ zone }, (100 * (statuses.length - unhealthy)) / statuses.length);
    }
    for (const zone of this.zoneStates.keys()) {
      if (zones.has(zone)) continue;
      m?.zoneSize.set({ zone }, 0);
      m?.unhealthyNodes.set({ zone }, 0);
      m?.zoneHealth.set({ zone }, 100);
    }
    if (plan.transition === 'enter') {
      this.log.warn({ zones: [...zones.keys()] }, 'every node of every zone is not Ready: entering master disruption mode (no NoExecute taints, no evictions)');
      this.masterDisruption = true;
      for (const t of this.tainters.values()) t.limiter = t.limiter.withRate(0, now);
      for (const node of nodes) await this.markNodeAsReachable(node).catch((err: unknown) => this.log.error({ node: nameOf(node), err: errorText(err) }, 'could not remove NoExecute taints'));
    } else if (plan.transition === 'exit') {
      this.log.info('some nodes are Ready: leaving master disruption mode');
      this.masterDisruption = false;
      // Every node gets a fresh grace period.
      for (const node of nodes) {
        const h = this.health.get(nameOf(node));
        if (h) this.health.set(nameOf(node), { ...h, probeTime: now, readyTransitionTime: now });
      }
      for (const [zone, t] of this.tainters) if (!plan.rates.has(zone)) t.limiter = t.limiter.withRate(this.options.config.nodeEvictionRate, now);
    }
    for (const [zone, rate] of plan.rates) {
      const t = this.tainter(zone);
      if (!plan.transition && this.zoneStates.get(zone) !== plan.states.get(zone)) this.log.info({ zone, state: plan.states.get(zone), evictionRate: rate }, 'zone is now in a new state');
      t.limiter = t.limiter.withRate(rate, now);
    }
    this.zoneStates = plan.states;
  }

  /** Pods of an unhealthy node: Ready=False (Kubernetes' `MarkPodsNotReady`). False when an update failed. */
  private async markPodsNotReady(nodeName: string, pods: readonly KubeObject[]): Promise<boolean> {
    let ok = true;
    for (const pod of pods) {
      if (podNodeName(pod) !== nodeName) continue;
      const conditions = (((pod.status as Fields | undefined)?.conditions ?? []) as Fields[]).filter((c) => c && typeof c === 'object');
      const i = conditions.findIndex((c) => c.type === 'Ready');
      if (i < 0 || conditions[i]!.status === 'False') continue;
      const next = structuredClone(pod) as Fields;
      next.status.conditions = conditions.map((c, j) => (j === i ? { ...c, status: 'False', lastTransitionTime: formatTime(this.clock.now()) } : c));
      try {
        await this.options.api.update(`${podPath(String(pod.metadata?.namespace), String(pod.metadata?.name))}/status`, next);
        this.options.recorder?.event(refOf('Pod', pod), 'Warning', 'NodeNotReady', 'Node is not ready');
      } catch (err) {
        if (isNotFound(err)) continue;
        ok = false;
        this.log.warn({ pod: podKey(pod), node: nodeName, err: errorText(err) }, 'could not mark pod not Ready');
      }
    }
    return ok;
  }

  /** A pod newly bound to a node: not Ready if the node is not (Kubernetes' `processPod`). */
  private async processPod(key: ObjectKey): Promise<void> {
    const pod = this.options.pods.get(keyString(key));
    if (!pod) return;
    const nodeName = podNodeName(pod);
    const ready = this.health.get(nodeName)?.ready;
    if (!nodeName || !ready || !this.options.nodes.get(nodeName) || ready.status === 'True') return;
    if (!(await this.markPodsNotReady(nodeName, [pod]))) throw new Error(`could not mark pod ${keyString(key)} not Ready`);
  }

  /** Brings the controller-managed NoSchedule taints of a node in line with its conditions. */
  private async syncNoScheduleTaints(name: string): Promise<void> {
    const node = this.options.nodes.get(name);
    if (!node) return;
    if (await updateNodeTaints(this.options.api, node, name, (n) => reconcileNoScheduleTaints(n, this.clock.now()))) {
      this.log.info({ node: name, taints: noScheduleTaintsFor(node).map((t) => t.key) }, 'NoSchedule taints follow the node conditions');
    }
  }

  private nodeEvent(node: KubeObject, type: EventType, reason: string, message: string): void {
    this.options.recorder?.event(refOf('Node', node), type, reason, message);
  }
}

// ---------------------------------------------------------------------------------------------
// The plugin
// ---------------------------------------------------------------------------------------------

/** The JSON Schema of {@link NodeLifecycleConfig} (defaults: Kubernetes 1.32's). */
export const NODE_LIFECYCLE_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    nodeMonitorPeriodSeconds: { type: 'number', exclusiveMinimum: 0, default: NODE_LIFECYCLE_DEFAULTS.nodeMonitorPeriodSeconds, description: 'How often node health is checked (--node-monitor-period).' },
    nodeMonitorGracePeriodSeconds: { type: 'number', exclusiveMinimum: 0, default: NODE_LIFECYCLE_DEFAULTS.nodeMonitorGracePeriodSeconds, description: 'Heartbeat silence after which a node is Unknown (--node-monitor-grace-period; 50 s since Kubernetes 1.32).' },
    nodeStartupGracePeriodSeconds: { type: 'number', exclusiveMinimum: 0, default: NODE_LIFECYCLE_DEFAULTS.nodeStartupGracePeriodSeconds, description: 'The same for a node that never posted a Ready condition, from its creation (--node-startup-grace-period).' },
    nodeEvictionRate: { type: 'number', minimum: 0, default: NODE_LIFECYCLE_DEFAULTS.nodeEvictionRate, description: 'Nodes tainted NoExecute per second in a zone (--node-eviction-rate).' },
    secondaryNodeEvictionRate: { type: 'number', minimum: 0, default: NODE_LIFECYCLE_DEFAULTS.secondaryNodeEvictionRate, description: 'The same in a partially disrupted zone larger than largeClusterSizeThreshold (--secondary-node-eviction-rate).' },
    unhealthyZoneThreshold: { type: 'number', minimum: 0, maximum: 1, default: NODE_LIFECYCLE_DEFAULTS.unhealthyZoneThreshold, description: 'Fraction of not-Ready nodes (and more than 2) that makes a zone partially disrupted (--unhealthy-zone-threshold).' },
    largeClusterSizeThreshold: { type: 'integer', minimum: 0, default: NODE_LIFECYCLE_DEFAULTS.largeClusterSizeThreshold, description: 'Zones up to this size stop evictions when partially disrupted (--large-cluster-size-threshold).' },
    leaderElection: LEADER_ELECTION_SCHEMA,
  },
} as const;

/** The node lifecycle controller plugin (with taint-based eviction). */
export const nodeLifecycleControllerPlugin = definePlugin({
  id: NODE_LIFECYCLE_CONTROLLER_ID,
  kind: 'controller',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'Node lifecycle controller: node heartbeats (Lease and NodeStatus) to Unknown conditions, condition taints, rate-limited NoExecute taints per zone with disruption modes, and taint-based eviction of pods.',
  configSchema: NODE_LIFECYCLE_CONFIG_SCHEMA,
  async start(handle, config: NodeLifecycleConfig, signal) {
    const nodes = handle.api.informer('/api/v1/nodes');
    const leases = handle.api.informer(`/apis/coordination.k8s.io/v1/namespaces/${NODE_LEASE_NAMESPACE}/leases`);
    const pods = handle.api.informer('/api/v1/pods');
    pods.addIndexer(NODE_NAME_INDEX, (p) => (podNodeName(p) ? [podNodeName(p)] : []));
    nodes.run();
    leases.run();
    pods.run();
    await Promise.all([nodes.waitForSync(signal), leases.waitForSync(signal), pods.waitForSync(signal)]);
    handle.ready();
    const metrics = nodeLifecycleMetrics(handle.metrics);
    const recorder = new EventRecorder({ api: handle.api, component: NODE_CONTROLLER_COMPONENT, logger: handle.logger, signal });
    const evictionRecorder = new EventRecorder({ api: handle.api, component: TAINT_EVICTION_COMPONENT, logger: handle.logger, signal });
    const { leaderElection, ...settings } = config;
    if (settings.nodeMonitorGracePeriodSeconds <= settings.nodeMonitorPeriodSeconds) handle.logger.warn(settings, 'nodeMonitorGracePeriodSeconds should be several times nodeMonitorPeriodSeconds');
    await runWhileLeading(handle.api, leaderElection, handle.logger, signal, async (leading) => {
      const controller = new NodeLifecycleController({ api: handle.api, nodes, leases, pods, config: settings, logger: handle.logger, metrics, queueMetrics: handle.metrics, recorder, evictionRecorder });
      await controller.run(leading);
    });
  },
});

export { formatTime } from './util.js';
