import { expect } from 'chai';
import { ApiStatusError, type Informer, type KubeObject, type Logger } from '@kubernel/sdk';
import {
  NODE_LIFECYCLE_DEFAULTS,
  NODE_STATUS_UNKNOWN_MESSAGE,
  NodeLifecycleController,
  TAINT_NODE_NOT_READY,
  TAINT_NODE_UNREACHABLE,
  TAINT_NODE_UNSCHEDULABLE,
  TaintEvictionReconciler,
  TokenBucket,
  computeZoneState,
  evictionDecision,
  formatTime,
  markConditionsUnknown,
  matchingTolerations,
  minTolerationSeconds,
  noScheduleTaintsFor,
  observeNodeHealth,
  planDisruption,
  reconcileNoScheduleTaints,
  swapTaints,
  taintAddedAt,
  toleratesTaint,
  zoneEvictionRate,
  zoneKey,
  type Taint,
  type Toleration,
  type ZoneState,
} from './node-lifecycle.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const T0 = Date.parse('2026-03-01T10:00:00Z');
const RATES = { nodeEvictionRate: 0.1, secondaryNodeEvictionRate: 0.01, largeClusterSizeThreshold: 50, unhealthyZoneThreshold: 0.55 };
const silent = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Logger;

const unreachable: Taint = { key: TAINT_NODE_UNREACHABLE, effect: 'NoExecute' };
const notReady: Taint = { key: TAINT_NODE_NOT_READY, effect: 'NoExecute' };

describe('node lifecycle: toleration matching (Kubernetes ToleratesTaint)', () => {
  const taint: Taint = { key: 'dedicated', value: 'gpu', effect: 'NoExecute' };
  const table: Array<[string, Toleration, Taint, boolean]> = [
    ['Equal, same key, value and effect', { key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoExecute' }, taint, true],
    ['no operator means Equal', { key: 'dedicated', value: 'gpu', effect: 'NoExecute' }, taint, true],
    ['Equal, other value', { key: 'dedicated', operator: 'Equal', value: 'cpu', effect: 'NoExecute' }, taint, false],
    ['Equal, no value against a valued taint', { key: 'dedicated', operator: 'Equal', effect: 'NoExecute' }, taint, false],
    ['Equal, empty value against a taint without value', { key: TAINT_NODE_UNREACHABLE, operator: 'Equal', value: '', effect: 'NoExecute' }, unreachable, true],
    ['Exists ignores the value', { key: 'dedicated', operator: 'Exists', effect: 'NoExecute' }, taint, true],
    ['Exists, other key', { key: 'other', operator: 'Exists', effect: 'NoExecute' }, taint, false],
    ['empty effect matches every effect', { key: 'dedicated', operator: 'Exists' }, taint, true],
    ['other effect', { key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }, taint, false],
    ['empty key with Exists matches every taint', { operator: 'Exists' }, taint, true],
    ['empty key with Exists and an effect matches that effect only', { operator: 'Exists', effect: 'NoSchedule' }, taint, false],
    ['an unknown operator matches nothing', { key: 'dedicated', operator: 'Gt', value: 'gpu', effect: 'NoExecute' }, taint, false],
  ];
  for (const [name, toleration, t, want] of table) {
    it(name, () => expect(toleratesTaint(toleration, t)).to.equal(want));
  }

  it('uses the first matching toleration of each taint; one untolerated taint means not tolerated', () => {
    const tolerations: Toleration[] = [
      { key: TAINT_NODE_UNREACHABLE, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
      { operator: 'Exists' },
    ];
    expect(matchingTolerations([unreachable, notReady], tolerations)).to.deep.equal({ tolerated: true, used: [tolerations[0], tolerations[1]] });
    expect(matchingTolerations([unreachable, notReady], [tolerations[0]!])).to.deep.equal({ tolerated: false, used: [] });
    expect(matchingTolerations([], [])).to.deep.equal({ tolerated: true, used: [] });
  });
});

describe('node lifecycle: eviction time', () => {
  const start = (): number => T0;
  const forSeconds = (key: string, tolerationSeconds?: number): Toleration => ({ key, operator: 'Exists', effect: 'NoExecute', ...(tolerationSeconds === undefined ? {} : { tolerationSeconds }) });

  it('minTolerationSeconds: the shortest, 0 for none or any <= 0, undefined (forever) without seconds', () => {
    expect(minTolerationSeconds([forSeconds('a', 300), forSeconds('b', 60), forSeconds('c')])).to.equal(60);
    expect(minTolerationSeconds([])).to.equal(0);
    expect(minTolerationSeconds([forSeconds('a', 300), forSeconds('b', -5)])).to.equal(0);
    expect(minTolerationSeconds([forSeconds('a'), forSeconds('b')])).to.equal(undefined);
  });

  it('no NoExecute taint: keep (NoSchedule taints never evict)', () => {
    expect(evictionDecision([], [], start)).to.deep.equal({ kind: 'keep' });
    expect(evictionDecision([{ key: TAINT_NODE_UNREACHABLE, effect: 'NoSchedule' }], [], start)).to.deep.equal({ kind: 'keep' });
  });

  it('no toleration: now', () => {
    expect(evictionDecision([unreachable], [], start)).to.deep.equal({ kind: 'now' });
  });

  it('a taint nobody tolerates: now, whatever the other tolerations say', () => {
    expect(evictionDecision([unreachable, notReady], [forSeconds(TAINT_NODE_UNREACHABLE)], start)).to.deep.equal({ kind: 'now' });
  });

  it('tolerated for a while: at the start plus the minimum tolerationSeconds over the matching tolerations', () => {
    expect(evictionDecision([unreachable], [forSeconds(TAINT_NODE_UNREACHABLE, 300)], start)).to.deep.equal({ kind: 'at', time: T0 + 300_000 });
    expect(evictionDecision([unreachable, notReady], [forSeconds(TAINT_NODE_UNREACHABLE, 300), forSeconds(TAINT_NODE_NOT_READY, 60)], start)).to.deep.equal({ kind: 'at', time: T0 + 60_000 });
    // A forever toleration on one taint does not extend the other's.
    expect(evictionDecision([unreachable, notReady], [forSeconds(TAINT_NODE_UNREACHABLE), forSeconds(TAINT_NODE_NOT_READY, 60)], start)).to.deep.equal({ kind: 'at', time: T0 + 60_000 });
  });

  it('each taint counts from its own start', () => {
    const starts = new Map([[TAINT_NODE_UNREACHABLE, T0], [TAINT_NODE_NOT_READY, T0 + 100_000]]);
    const d = evictionDecision([unreachable, notReady], [forSeconds(TAINT_NODE_UNREACHABLE, 300), forSeconds(TAINT_NODE_NOT_READY, 60)], (t) => starts.get(t.key)!);
    expect(d).to.deep.equal({ kind: 'at', time: T0 + 160_000 });
  });

  it('tolerated without tolerationSeconds: keep (forever); tolerationSeconds <= 0: now', () => {
    expect(evictionDecision([unreachable], [forSeconds(TAINT_NODE_UNREACHABLE)], start)).to.deep.equal({ kind: 'keep' });
    expect(evictionDecision([unreachable], [{ operator: 'Exists' }], start)).to.deep.equal({ kind: 'keep' });
    expect(evictionDecision([unreachable], [forSeconds(TAINT_NODE_UNREACHABLE, 0)], start)).to.deep.equal({ kind: 'now' });
  });

  it('timeAdded: whole seconds count from the end of that second; fractions exactly; missing is undefined', () => {
    expect(taintAddedAt({ ...unreachable, timeAdded: '2026-03-01T10:00:00Z' })).to.equal(T0 + 1000);
    expect(taintAddedAt({ ...unreachable, timeAdded: '2026-03-01T10:00:00.250Z' })).to.equal(T0 + 250);
    expect(taintAddedAt(unreachable)).to.equal(undefined);
    expect(taintAddedAt({ ...unreachable, timeAdded: 'yesterday' })).to.equal(undefined);
  });
});

describe('node lifecycle: zones', () => {
  const statuses = (ready: number, notReady: number, unknown = 0): Array<string | undefined> => [...Array(ready).fill('True'), ...Array(notReady).fill('False'), ...Array(unknown).fill('Unknown')];

  it('Normal: few unhealthy nodes, or not more than 2', () => {
    expect(computeZoneState(statuses(9, 1), 0.55)).to.deep.equal({ unhealthy: 1, state: 'Normal' });
    expect(computeZoneState(statuses(1, 2), 0.55)).to.deep.equal({ unhealthy: 2, state: 'Normal' });
    expect(computeZoneState(statuses(5, 3), 0.55)).to.deep.equal({ unhealthy: 3, state: 'Normal' });
    expect(computeZoneState([], 0.55)).to.deep.equal({ unhealthy: 0, state: 'Normal' });
  });

  it('PartialDisruption: more than 2 unhealthy and at least the threshold (a missing Ready counts as unhealthy)', () => {
    expect(computeZoneState(statuses(2, 2, 1), 0.55)).to.deep.equal({ unhealthy: 3, state: 'PartialDisruption' });
    expect(computeZoneState([...statuses(9, 10), undefined], 0.55)).to.deep.equal({ unhealthy: 11, state: 'PartialDisruption' }); // 11/20 = 0.55
    expect(computeZoneState(statuses(10, 10), 0.55)).to.deep.equal({ unhealthy: 10, state: 'Normal' }); // 0.5
  });

  it('FullDisruption: no Ready node', () => {
    expect(computeZoneState(statuses(0, 1, 2), 0.55)).to.deep.equal({ unhealthy: 3, state: 'FullDisruption' });
    expect(computeZoneState([undefined], 0.55)).to.deep.equal({ unhealthy: 1, state: 'FullDisruption' });
  });

  it('rates: normal and full 0.1/s; partial 0.01/s above 50 nodes, else 0', () => {
    expect(zoneEvictionRate('Normal', 10, RATES)).to.equal(0.1);
    expect(zoneEvictionRate('FullDisruption', 10, RATES)).to.equal(0.1);
    expect(zoneEvictionRate('PartialDisruption', 50, RATES)).to.equal(0);
    expect(zoneEvictionRate('PartialDisruption', 51, RATES)).to.equal(0.01);
  });

  const zones = (o: Record<string, Array<string | undefined>>): Map<string, Array<string | undefined>> => new Map(Object.entries(o));
  const states = (o: Record<string, ZoneState>): Map<string, ZoneState> => new Map(Object.entries(o));

  it('plan: new zones get their rate; a fully disrupted zone keeps evicting while another zone is healthy', () => {
    const first = planDisruption(new Map(), false, zones({ a: statuses(3, 0), b: statuses(3, 0) }), RATES);
    expect([...first.states]).to.deep.equal([['a', 'Normal'], ['b', 'Normal']]);
    expect([...first.rates]).to.deep.equal([['a', 0.1], ['b', 0.1]]);
    expect(first.masterDisruption).to.equal(false);
    const down = planDisruption(first.states, false, zones({ a: statuses(0, 3), b: statuses(3, 0) }), RATES);
    expect(down.states.get('a')).to.equal('FullDisruption');
    expect([...down.rates]).to.deep.equal([['a', 0.1]]);
    expect(down.transition).to.equal(undefined);
  });

  it('plan: a small partially disrupted zone stops evicting; a large one slows down', () => {
    const small = planDisruption(states({ a: 'Normal' }), false, zones({ a: statuses(2, 3) }), RATES);
    expect([...small.rates]).to.deep.equal([['a', 0]]);
    const large = planDisruption(states({ a: 'Normal' }), false, zones({ a: statuses(20, 40) }), RATES);
    expect([...large.rates]).to.deep.equal([['a', 0.01]]);
    expect(large.states.get('a')).to.equal('PartialDisruption');
  });

  it('plan: every zone fully disrupted enters master disruption (rates 0), stays there, and leaves when a node is Ready', () => {
    const enter = planDisruption(states({ a: 'Normal', b: 'FullDisruption' }), false, zones({ a: statuses(0, 2), b: statuses(0, 0, 2) }), RATES);
    expect(enter).to.deep.include({ masterDisruption: true, transition: 'enter' });
    expect([...enter.rates]).to.deep.equal([['a', 0], ['b', 0]]);
    const stay = planDisruption(enter.states, true, zones({ a: statuses(0, 2), b: statuses(0, 2) }), RATES);
    expect(stay.masterDisruption).to.equal(true);
    expect(stay.transition).to.equal(undefined);
    expect(stay.rates.size).to.equal(0);
    const exit = planDisruption(stay.states, true, zones({ a: statuses(1, 1), b: statuses(0, 2) }), RATES);
    expect(exit).to.deep.include({ masterDisruption: false, transition: 'exit' });
    expect([...exit.rates]).to.deep.equal([['a', 0.1], ['b', 0.1]]);
  });

  it('plan: a single-zone cluster with every node down is master disruption too; zones without nodes are dropped', () => {
    expect(planDisruption(new Map(), false, zones({ '': statuses(0, 3) }), RATES).transition).to.equal('enter');
    const p = planDisruption(states({ a: 'Normal', gone: 'Normal' }), false, zones({ a: statuses(3, 0) }), RATES);
    expect([...p.states.keys()]).to.deep.equal(['a']);
  });

  it('zone keys from the region and zone labels (beta labels as a fallback)', () => {
    expect(zoneKey({ metadata: { labels: { 'topology.kubernetes.io/region': 'r', 'topology.kubernetes.io/zone': 'z' } } })).to.equal('r:z');
    expect(zoneKey({ metadata: { labels: { 'topology.kubernetes.io/zone': 'z' } } })).to.equal(':z');
    expect(zoneKey({ metadata: { labels: { 'failure-domain.beta.kubernetes.io/zone': 'old' } } })).to.equal(':old');
    expect(zoneKey({ metadata: {} })).to.equal('');
  });
});

describe('node lifecycle: the per-zone token bucket', () => {
  it('burst 1: one now, the next after 1/qps seconds; rate 0 never', () => {
    const b = new TokenBucket(0.1, 1, T0);
    expect(b.tryAccept(T0)).to.equal(true);
    expect(b.tryAccept(T0 + 1)).to.equal(false);
    expect(b.tryAccept(T0 + 9_999)).to.equal(false);
    expect(b.tryAccept(T0 + 10_000)).to.equal(true);
    expect(new TokenBucket(0, 1, T0).tryAccept(T0 + 1e9)).to.equal(false);
  });

  it('a new rate starts full unless the old bucket was refusing (client-go SwapLimiter)', () => {
    const full = new TokenBucket(0.1, 1, T0);
    expect(full.withRate(0.1, T0)).to.equal(full);
    expect(full.withRate(1, T0).tryAccept(T0)).to.equal(true);
    const stopped = new TokenBucket(0, 1, T0).withRate(0.1, T0);
    expect(stopped.tryAccept(T0)).to.equal(false);
    expect(stopped.tryAccept(T0 + 10_000)).to.equal(true);
  });
});

describe('node lifecycle: heartbeats and the grace period', () => {
  const grace = { gracePeriodMs: 40_000, startupGracePeriodMs: 60_000 };
  const node = (heartbeat: string | undefined, transition = '2026-03-01T09:00:00Z'): KubeObject => ({
    metadata: { name: 'n1', creationTimestamp: '2026-03-01T09:59:00Z' },
    status: { conditions: heartbeat === undefined ? [] : [{ type: 'Ready', status: 'True', lastHeartbeatTime: heartbeat, lastTransitionTime: transition }] },
  });
  const lease = (renewTime: string): KubeObject => ({ metadata: { name: 'n1', namespace: 'kube-node-lease' }, spec: { renewTime } });

  it('a node seen for the first time gets the full grace period from now, whatever its remote timestamps say', () => {
    const o = observeNodeHealth(undefined, node('2020-01-01T00:00:00Z'), undefined, T0, grace);
    expect(o.health.probeTime).to.equal(T0);
    expect(o.gracePeriodMs).to.equal(40_000);
    expect(o.expired).to.equal(false);
    expect(observeNodeHealth(o.health, node('2020-01-01T00:00:00Z'), undefined, T0 + 40_000, grace).expired).to.equal(false);
    expect(observeNodeHealth(o.health, node('2020-01-01T00:00:00Z'), undefined, T0 + 40_001, grace).expired).to.equal(true);
  });

  it('a changed Ready heartbeat is a heartbeat now (local time): even one far in the past (clock skew)', () => {
    const first = observeNodeHealth(undefined, node('2026-03-01T10:00:00Z'), undefined, T0, grace).health;
    const again = observeNodeHealth(first, node('2026-03-01T08:00:10Z'), undefined, T0 + 30_000, grace);
    expect(again.health.probeTime).to.equal(T0 + 30_000);
    expect(again.health.readyTransitionTime).to.equal(T0);
    const same = observeNodeHealth(again.health, node('2026-03-01T08:00:10Z'), undefined, T0 + 60_000, grace);
    expect(same.health.probeTime).to.equal(T0 + 30_000);
    expect(same.expired).to.equal(false);
    expect(observeNodeHealth(same.health, node('2026-03-01T08:00:10Z'), undefined, T0 + 70_001, grace).expired).to.equal(true);
  });

  it('a Ready transition moves the transition time', () => {
    const first = observeNodeHealth(undefined, node('2026-03-01T10:00:00Z'), undefined, T0, grace).health;
    const o = observeNodeHealth(first, node('2026-03-01T10:00:10Z', '2026-03-01T10:00:10Z'), undefined, T0 + 10_000, grace);
    expect(o.health.readyTransitionTime).to.equal(T0 + 10_000);
  });

  it('the later of Lease and NodeStatus counts: a renewed Lease alone keeps the node alive', () => {
    let h = observeNodeHealth(undefined, node('2026-03-01T10:00:00Z'), lease('2026-03-01T10:00:00.000000Z'), T0, grace).health;
    for (let s = 10; s <= 120; s += 10) {
      const o = observeNodeHealth(h, node('2026-03-01T10:00:00Z'), lease(`2026-03-01T10:${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}.000000Z`), T0 + s * 1000, grace);
      expect(o.expired, `at ${s}s`).to.equal(false);
      h = o.health;
    }
    expect(h.probeTime).to.equal(T0 + 120_000);
    // A Lease going back in time is not a heartbeat.
    const back = observeNodeHealth(h, node('2026-03-01T10:00:00Z'), lease('2026-03-01T09:00:00.000000Z'), T0 + 130_000, grace);
    expect(back.health.probeTime).to.equal(T0 + 120_000);
    expect(observeNodeHealth(back.health, node('2026-03-01T10:00:00Z'), lease('2026-03-01T09:00:00.000000Z'), T0 + 160_001, grace).expired).to.equal(true);
  });

  it('a node that never posted Ready: timed from its creation with the startup grace period', () => {
    const o = observeNodeHealth(undefined, node(undefined), undefined, T0, grace);
    expect(o.gracePeriodMs).to.equal(60_000);
    expect(o.health.probeTime).to.equal(Date.parse('2026-03-01T09:59:00Z'));
    expect(o.observedReady).to.deep.include({ type: 'Ready', status: 'Unknown' });
    expect(o.expired).to.equal(false);
    expect(observeNodeHealth(o.health, node(undefined), undefined, T0 + 1, grace).expired).to.equal(true);
  });

  it('expired conditions go Unknown with Kubernetes\' reasons; missing ones are added; Unknown ones are kept', () => {
    const n: KubeObject = {
      metadata: { name: 'n1', creationTimestamp: '2026-03-01T09:00:00Z' },
      status: {
        conditions: [
          { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', lastHeartbeatTime: '2026-03-01T09:59:00Z', lastTransitionTime: '2026-03-01T09:00:00Z' },
          { type: 'MemoryPressure', status: 'False', lastHeartbeatTime: '2026-03-01T09:59:00Z', lastTransitionTime: '2026-03-01T09:00:00Z' },
          { type: 'DiskPressure', status: 'Unknown', reason: 'Other', lastHeartbeatTime: '2026-03-01T09:59:00Z', lastTransitionTime: '2026-03-01T09:00:00Z' },
          { type: 'NetworkUnavailable', status: 'False', lastTransitionTime: '2026-03-01T09:00:00Z' },
        ],
      },
    };
    const out = markConditionsUnknown(n, T0);
    const by = new Map(out.map((c) => [c.type, c]));
    expect(by.get('Ready')).to.deep.equal({ type: 'Ready', status: 'Unknown', reason: 'NodeStatusUnknown', message: NODE_STATUS_UNKNOWN_MESSAGE, lastHeartbeatTime: '2026-03-01T09:59:00Z', lastTransitionTime: formatTime(T0) });
    expect(by.get('MemoryPressure')).to.deep.include({ status: 'Unknown', reason: 'NodeStatusUnknown' });
    expect(by.get('DiskPressure')).to.deep.include({ status: 'Unknown', reason: 'Other', lastTransitionTime: '2026-03-01T09:00:00Z' });
    expect(by.get('PIDPressure')).to.deep.equal({ type: 'PIDPressure', status: 'Unknown', reason: 'NodeStatusNeverUpdated', message: 'Kubelet never posted node status.', lastHeartbeatTime: '2026-03-01T09:00:00Z', lastTransitionTime: formatTime(T0) });
    expect(by.get('NetworkUnavailable')).to.deep.include({ status: 'False' });
    expect((n.status as Json).conditions[0].status).to.equal('True'); // the input is not modified
  });
});

describe('node lifecycle: taints', () => {
  const node = (ready: string, extra: Json = {}, taints: Taint[] = []): KubeObject => ({ metadata: { name: 'n1' }, spec: { ...extra, taints }, status: { conditions: [{ type: 'Ready', status: ready }, { type: 'MemoryPressure', status: 'False' }] } });

  it('NoSchedule taints follow Ready (not-ready / unreachable), pressure conditions and spec.unschedulable', () => {
    expect(noScheduleTaintsFor(node('True'))).to.deep.equal([]);
    expect(noScheduleTaintsFor(node('False'))).to.deep.equal([{ key: TAINT_NODE_NOT_READY, effect: 'NoSchedule' }]);
    expect(noScheduleTaintsFor(node('Unknown', { unschedulable: true }))).to.deep.equal([
      { key: TAINT_NODE_UNREACHABLE, effect: 'NoSchedule' },
      { key: TAINT_NODE_UNSCHEDULABLE, effect: 'NoSchedule' },
    ]);
    const pressure: KubeObject = { metadata: { name: 'n' }, status: { conditions: [{ type: 'Ready', status: 'True' }, { type: 'DiskPressure', status: 'True' }, { type: 'PIDPressure', status: 'True' }] } };
    expect(noScheduleTaintsFor(pressure).map((t) => t.key)).to.deep.equal(['node.kubernetes.io/disk-pressure', 'node.kubernetes.io/pid-pressure']);
  });

  it('reconciles only the managed NoSchedule taints, keeping others and NoExecute ones', () => {
    const mine: Taint = { key: 'dedicated', value: 'x', effect: 'NoSchedule' };
    const exec: Taint = { key: TAINT_NODE_UNREACHABLE, effect: 'NoExecute', timeAdded: '2026-03-01T09:00:00Z' };
    const stale: Taint = { key: TAINT_NODE_NOT_READY, effect: 'NoSchedule', timeAdded: '2026-03-01T09:00:00Z' };
    expect(reconcileNoScheduleTaints(node('Unknown', {}, [mine, stale, exec]), T0)).to.deep.equal([mine, exec, { key: TAINT_NODE_UNREACHABLE, effect: 'NoSchedule', timeAdded: formatTime(T0) }]);
    expect(reconcileNoScheduleTaints(node('True', {}, [mine, exec]), T0)).to.equal(undefined);
    expect(reconcileNoScheduleTaints(node('True', {}, [stale]), T0)).to.deep.equal([]);
  });

  it('swapping adds what is missing (timeAdded now), keeps an existing timeAdded, removes the opposite', () => {
    const old: Taint = { ...unreachable, timeAdded: '2026-03-01T09:00:00Z' };
    expect(swapTaints([old], [unreachable], [notReady], T0)).to.equal(undefined);
    expect(swapTaints([old], [notReady], [unreachable], T0)).to.deep.equal([{ ...notReady, timeAdded: formatTime(T0) }]);
    expect(swapTaints([{ key: 'a', effect: 'NoSchedule' }, old], [], [unreachable, notReady], T0)).to.deep.equal([{ key: 'a', effect: 'NoSchedule' }]);
  });
});

// ---------------------------------------------------------------------------------------------
// The reconcilers against a tiny in-memory API
// ---------------------------------------------------------------------------------------------

class ManualClock {
  time = T0;
  now(): number {
    return this.time;
  }
}

/** Objects by key (`name` for nodes, `ns/name` otherwise) with resourceVersions, as informers would show them. */
class FakeStore {
  rv = 1;
  readonly objects = new Map<string, Json>();
  put(key: string, o: Json): Json {
    o.metadata.resourceVersion = String(++this.rv);
    this.objects.set(key, o);
    return o;
  }
}

function fakeInformer(store: FakeStore, prefix: (o: Json) => boolean): Informer {
  const indexers = new Map<string, (o: KubeObject) => readonly string[]>();
  const items = (): Json[] => [...store.objects.values()].filter(prefix);
  return {
    list: () => items(),
    get: (k: string) => (store.objects.get(k) && prefix(store.objects.get(k)!) ? store.objects.get(k) : undefined),
    addIndexer: (name: string, fn: (o: KubeObject) => readonly string[]) => void indexers.set(name, fn),
    byIndex: (name: string, value: string) => items().filter((o) => (indexers.get(name)?.(o) ?? []).includes(value)),
    subscribe: () => () => undefined,
  } as unknown as Informer;
}

const conflict = (): ApiStatusError => new ApiStatusError(409, 'Conflict', 'the object has been modified');
const notFound = (): ApiStatusError => new ApiStatusError(404, 'NotFound', 'not found');

/** Just enough of the API for the controller: nodes (status, taint patches), pods (status, delete). */
function fakeApi(store: FakeStore, calls: string[]) {
  const keyOfPath = (path: string): string => {
    const m = /^\/api\/v1\/(?:nodes\/([^/]+)|namespaces\/([^/]+)\/pods\/([^/]+))/.exec(path)!;
    return m[1] ? decodeURIComponent(m[1]) : `${m[2]}/${m[3]}`;
  };
  const current = (path: string): Json => {
    const o = store.objects.get(keyOfPath(path));
    if (!o) throw notFound();
    return o;
  };
  return {
    async get(path: string) {
      return structuredClone(current(path));
    },
    async update(path: string, body: Json) {
      calls.push(`PUT ${path}`);
      const o = current(path);
      if (body.metadata.resourceVersion !== o.metadata.resourceVersion) throw conflict();
      return structuredClone(store.put(keyOfPath(path), { ...structuredClone(o), status: body.status }));
    },
    async patch(path: string, body: Json) {
      calls.push(`PATCH ${path}`);
      const o = structuredClone(current(path));
      if (body.metadata?.resourceVersion && body.metadata.resourceVersion !== o.metadata.resourceVersion) throw conflict();
      if (body.spec) o.spec = { ...o.spec, ...body.spec };
      if (o.spec?.taints === null) delete o.spec.taints;
      if (body.status) o.status = { ...o.status, ...body.status };
      return structuredClone(store.put(keyOfPath(path), o));
    },
    async request(method: string, path: string) {
      calls.push(`${method} ${path}`);
      current(path);
      store.objects.delete(keyOfPath(path));
      return {};
    },
    async create() {
      return {};
    },
  };
}

describe('node lifecycle: the monitor and tainting passes (in-memory API, manual clock)', () => {
  let store: FakeStore;
  let clock: ManualClock;
  let calls: string[];
  let controller: NodeLifecycleController;
  const isNode = (o: Json): boolean => o.kind === 'Node';
  const addNode = (name: string, zone: string): void => {
    store.put(name, { kind: 'Node', metadata: { name, uid: `u-${name}`, creationTimestamp: '2026-03-01T09:00:00Z', labels: { 'topology.kubernetes.io/zone': zone } }, spec: {}, status: { conditions: [{ type: 'Ready', status: 'True', lastHeartbeatTime: formatTime(clock.time), lastTransitionTime: '2026-03-01T09:00:00Z' }] } });
  };
  const heartbeat = (name: string): void => {
    const n = structuredClone(store.objects.get(name)!);
    n.status.conditions[0].lastHeartbeatTime = new Date(clock.time).toISOString();
    store.put(name, n);
  };
  const node = (name: string): Json => store.objects.get(name)!;
  const noExecute = (name: string): string[] => ((node(name).spec.taints ?? []) as Taint[]).filter((t) => t.effect === 'NoExecute').map((t) => t.key);
  /** One monitor pass then one tainting pass, `seconds` later. */
  const pass = async (seconds: number, alive: readonly string[]): Promise<void> => {
    clock.time += seconds * 1000;
    for (const n of alive) heartbeat(n);
    await controller.monitorNodeHealth();
    await controller.noExecuteTaintingPass();
  };

  beforeEach(() => {
    store = new FakeStore();
    clock = new ManualClock();
    calls = [];
    const api = fakeApi(store, calls);
    controller = new NodeLifecycleController({
      api: api as never,
      nodes: fakeInformer(store, isNode),
      leases: fakeInformer(store, (o) => o.kind === 'Lease'),
      pods: fakeInformer(store, (o) => o.kind === 'Pod'),
      config: { ...NODE_LIFECYCLE_DEFAULTS, nodeMonitorGracePeriodSeconds: 40 },
      logger: silent,
      clock,
    });
  });

  it('a silent node goes Unknown after the grace period, then gets the unreachable NoExecute taint; it is untainted when Ready again', async () => {
    for (const n of ['a1', 'a2', 'a3']) addNode(n, 'a');
    await pass(0, ['a1', 'a2', 'a3']);
    for (let s = 10; s <= 40; s += 10) await pass(10, ['a1', 'a2']);
    expect(node('a3').status.conditions[0].status).to.equal('True');
    await pass(10, ['a1', 'a2']);
    expect(node('a3').status.conditions[0]).to.deep.include({ status: 'Unknown', reason: 'NodeStatusUnknown' });
    expect(node('a3').status.conditions.map((c: Json) => [c.type, c.status])).to.deep.equal([['Ready', 'Unknown'], ['MemoryPressure', 'Unknown'], ['DiskPressure', 'Unknown'], ['PIDPressure', 'Unknown']]);
    expect(noExecute('a3')).to.deep.equal([]); // queued on the next pass, from the Unknown status it now shows
    await pass(1, ['a1', 'a2']);
    expect(noExecute('a3')).to.deep.equal([TAINT_NODE_UNREACHABLE]);
    expect(controller.zones.get(':a')).to.equal('Normal');
    // The node posts Ready again.
    const n = structuredClone(node('a3'));
    n.status.conditions[0] = { type: 'Ready', status: 'True', lastHeartbeatTime: new Date(clock.time + 1000).toISOString(), lastTransitionTime: new Date(clock.time + 1000).toISOString() };
    store.put('a3', n);
    await pass(1, ['a1', 'a2']);
    expect(noExecute('a3')).to.deep.equal([]);
  });

  it('taints NoExecute at the zone rate: the second node of a zone waits 10 s (0.1/s)', async () => {
    for (const n of ['a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7', 'a8']) addNode(n, 'a');
    const alive = ['a1', 'a2', 'a3', 'a4', 'a5', 'a6'];
    await pass(0, [...alive, 'a7', 'a8']);
    await pass(41, alive);
    await pass(1, alive);
    const tainted = (): number => ['a7', 'a8'].filter((n) => noExecute(n).length > 0).length;
    expect(tainted()).to.equal(1);
    await pass(5, alive);
    expect(tainted()).to.equal(1);
    await pass(5, alive);
    expect(tainted()).to.equal(2);
  });

  it('a small zone in partial disruption stops tainting', async () => {
    for (const n of ['a1', 'a2', 'a3', 'a4', 'a5']) addNode(n, 'a');
    await pass(0, ['a1', 'a2', 'a3', 'a4', 'a5']);
    await pass(41, ['a1', 'a2']);
    await pass(1, ['a1', 'a2']);
    await pass(30, ['a1', 'a2']);
    expect(controller.zones.get(':a')).to.equal('PartialDisruption');
    expect(['a3', 'a4', 'a5'].map(noExecute).flat()).to.deep.equal([]);
  });

  it('one zone down while another is healthy: the down zone is tainted NoExecute', async () => {
    for (const n of ['a1', 'a2', 'b1', 'b2']) addNode(n, n[0]!);
    await pass(0, ['a1', 'a2', 'b1', 'b2']);
    await pass(41, ['b1', 'b2']);
    await pass(1, ['b1', 'b2']);
    await pass(10, ['b1', 'b2']);
    expect(controller.zones.get(':a')).to.equal('FullDisruption');
    expect(noExecute('a1').concat(noExecute('a2'))).to.deep.equal([TAINT_NODE_UNREACHABLE, TAINT_NODE_UNREACHABLE]);
  });

  it('every zone down (master disruption): no NoExecute taint, earlier ones removed; tainting resumes after recovery', async () => {
    const all = ['a1', 'a2', 'a3', 'b1', 'b2'];
    for (const n of all) addNode(n, n[0]!);
    await pass(0, all);
    // a1 dies first and is tainted while the cluster is otherwise healthy.
    await pass(41, ['a2', 'a3', 'b1', 'b2']);
    await pass(1, ['a2', 'a3', 'b1', 'b2']);
    expect(noExecute('a1')).to.deep.equal([TAINT_NODE_UNREACHABLE]);
    // Then everything else, the last heartbeats straddling two passes: zone a is fully down one pass before zone b.
    await pass(1, ['b1']);
    await pass(1, []);
    await pass(39, []);
    expect(controller.zones.get(':a')).to.equal('FullDisruption');
    expect(controller.zones.get(':b')).to.equal('Normal');
    await pass(1, []);
    expect(controller.inMasterDisruption).to.equal(true);
    for (let i = 0; i < 30; i++) await pass(1, []);
    expect(all.map((n) => node(n).status.conditions[0].status)).to.deep.equal(['Unknown', 'Unknown', 'Unknown', 'Unknown', 'Unknown']);
    expect(all.map(noExecute).flat()).to.deep.equal([]);
    // b1 comes back: the cluster leaves master disruption; the down nodes are tainted again, a full 10 s period later.
    const n = structuredClone(node('b1'));
    n.status.conditions[0] = { type: 'Ready', status: 'True', lastHeartbeatTime: new Date(clock.time + 500).toISOString(), lastTransitionTime: new Date(clock.time + 500).toISOString() };
    store.put('b1', n);
    await pass(1, ['b1']);
    expect(controller.inMasterDisruption).to.equal(false);
    await pass(1, ['b1']);
    expect(all.map(noExecute).flat()).to.deep.equal([]);
    for (let i = 0; i < 10; i++) await pass(1, ['b1']);
    expect(all.map(noExecute).flat().length).to.be.greaterThan(0);
  });

  it('retries a status write that conflicts, seeing the heartbeat that caused the conflict', async () => {
    addNode('a1', 'a');
    addNode('a2', 'a');
    await pass(0, ['a1', 'a2']);
    clock.time += 41_000;
    heartbeat('a2');
    // The informer still shows a1 as it was; a heartbeat lands just before the write.
    const stale = structuredClone(node('a1'));
    heartbeat('a1');
    const informer = fakeInformer(store, isNode);
    (informer as unknown as { list: () => Json[] }).list = () => [stale, node('a2')];
    (controller as unknown as { options: { nodes: Informer } }).options.nodes = informer;
    await controller.monitorNodeHealth();
    expect(node('a1').status.conditions[0].status).to.equal('True');
    expect(calls.filter((c) => c === 'PUT /api/v1/nodes/a1/status')).to.have.length(1);
  });
});

describe('node lifecycle: taint eviction reconciler', () => {
  let store: FakeStore;
  let clock: ManualClock;
  let calls: string[];
  let events: Array<[string, string, string]>;
  let r: TaintEvictionReconciler;
  const recorder = { event: (o: KubeObject, _type: string, reason: string, message: string) => events.push([String(o.metadata?.name), reason, message]) };

  beforeEach(() => {
    store = new FakeStore();
    clock = new ManualClock();
    calls = [];
    events = [];
    store.put('n1', { kind: 'Node', metadata: { name: 'n1' }, spec: { taints: [{ ...unreachable, timeAdded: '2026-03-01T10:00:00Z' }] } });
    r = new TaintEvictionReconciler(fakeApi(store, calls) as never, fakeInformer(store, (o) => o.kind === 'Pod'), fakeInformer(store, (o) => o.kind === 'Node'), silent, { clock, recorder: recorder as never });
  });
  const pod = (name: string, tolerations: Toleration[] = []): void => void store.put(`ns/${name}`, { kind: 'Pod', metadata: { name, namespace: 'ns', uid: `u-${name}` }, spec: { nodeName: 'n1', tolerations }, status: { conditions: [] } });

  it('deletes a pod without tolerations at once, with the DisruptionTarget condition and a TaintManagerEviction event', async () => {
    pod('plain');
    expect(await r.reconcile({ namespace: 'ns', name: 'plain' })).to.equal(undefined);
    expect(calls).to.deep.equal(['PATCH /api/v1/namespaces/ns/pods/plain/status', 'DELETE /api/v1/namespaces/ns/pods/plain']);
    expect(events).to.deep.equal([['plain', 'TaintManagerEviction', 'Marking for deletion Pod ns/plain']]);
  });

  it('schedules a pod tolerating for a while (from the end of timeAdded\'s second), deletes it when the time comes', async () => {
    pod('p3', [{ key: TAINT_NODE_UNREACHABLE, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 3 }]);
    clock.time = T0 + 500;
    expect(await r.reconcile({ namespace: 'ns', name: 'p3' })).to.deep.equal({ requeueAfter: 3500 });
    expect(r.pending.get('ns/p3')).to.equal(T0 + 4000);
    clock.time = T0 + 4000;
    await r.reconcile({ namespace: 'ns', name: 'p3' });
    expect(calls).to.include('DELETE /api/v1/namespaces/ns/pods/p3');
  });

  it('cancels (with an event) when the taint goes away first; leaves pods tolerating forever alone', async () => {
    pod('p3', [{ key: TAINT_NODE_UNREACHABLE, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 3 }]);
    pod('forever', [{ key: TAINT_NODE_UNREACHABLE, operator: 'Exists', effect: 'NoExecute' }]);
    await r.reconcile({ namespace: 'ns', name: 'p3' });
    expect(await r.reconcile({ namespace: 'ns', name: 'forever' })).to.equal(undefined);
    store.put('n1', { kind: 'Node', metadata: { name: 'n1' }, spec: {} });
    clock.time = T0 + 10_000;
    expect(await r.reconcile({ namespace: 'ns', name: 'p3' })).to.equal(undefined);
    expect(calls).to.deep.equal([]);
    expect(events).to.deep.equal([['p3', 'TaintManagerEviction', 'Cancelling deletion of Pod ns/p3']]);
  });
});
