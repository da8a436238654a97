import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import type { ApiClient, KubeObject } from '../client/api-client.js';
import type { PluginDefinition } from '../plugin/define-plugin.js';
import { CycleState, isSchedulerPluginFactory, type FrameworkHandle, type FrameworkPlugin, type NodeScore, type SchedulerPluginFactory } from '../scheduler/framework.js';
import { PodInfo, Snapshot, type NodeInfo, type NodeSnapshot } from '../scheduler/nodeinfo.js';
import { MAX_NODE_SCORE, MIN_NODE_SCORE, Status } from '../scheduler/status.js';
import { describePluginContract, type PluginContractOptions } from './plugin-contract.js';
import { createTestHost, startPlugin, type RunningPlugin } from './harness.js';

type Obj = Record<string, unknown>;

/** A Node object for tests: `cpu`/`memory`/`pods` allocatable, labels, taints, images. */
export function testNode(name: string, o: { cpu?: string; memory?: string; pods?: number; labels?: Record<string, string>; taints?: Obj[]; unschedulable?: boolean; images?: Array<{ names: string[]; sizeBytes: number }>; extra?: Record<string, string> } = {}): KubeObject {
  const allocatable = { cpu: o.cpu ?? '4', memory: o.memory ?? '8Gi', pods: String(o.pods ?? 110), ...(o.extra ?? {}) };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, uid: `uid-${name}`, labels: { 'kubernetes.io/hostname': name, ...(o.labels ?? {}) } },
    spec: { ...(o.taints ? { taints: o.taints } : {}), ...(o.unschedulable ? { unschedulable: true } : {}) },
    status: { allocatable, capacity: allocatable, ...(o.images ? { images: o.images } : {}), conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

/** A Pod object for tests: requests per container, labels, node, and any other spec fields. */
export function testPod(name: string, o: { namespace?: string; cpu?: string; memory?: string; labels?: Record<string, string>; nodeName?: string; priority?: number; spec?: Obj; uid?: string } = {}): KubeObject {
  const requests: Record<string, string> = {};
  if (o.cpu) requests.cpu = o.cpu;
  if (o.memory) requests.memory = o.memory;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: o.namespace ?? 'default', uid: o.uid ?? `uid-${o.namespace ?? 'default'}-${name}`, labels: o.labels ?? {} },
    spec: {
      containers: [{ name: 'c', image: 'busybox', resources: Object.keys(requests).length ? { requests } : {} }],
      schedulerName: 'default-scheduler',
      ...(o.nodeName ? { nodeName: o.nodeName } : {}),
      ...(o.priority !== undefined ? { priority: o.priority } : {}),
      ...(o.spec ?? {}),
    },
    status: { phase: o.nodeName ? 'Running' : 'Pending' },
  };
}

/** Options of {@link testFrameworkHandle}. */
export interface TestHandleOptions {
  /** Namespace labels by name (for namespaceSelector). */
  readonly namespaces?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** The API client (plugins that use the API need one; others never touch it). */
  readonly api?: ApiClient;
  /** The Filter plugins `runFilterPlugins` runs (default: none, i.e. every node fits). */
  readonly filters?: readonly FrameworkPlugin[];
  readonly percentageOfNodesToScore?: number;
}

/** A {@link FrameworkHandle} over a fixed snapshot, for unit tests of framework plugins. */
export function testFrameworkHandle(snapshot: NodeSnapshot, options: TestHandleOptions = {}): FrameworkHandle & { readonly events: Array<{ reason: string; message: string }> } {
  const events: Array<{ reason: string; message: string }> = [];
  // Only its captured logger is used: no data dir (nothing would remove it).
  const host = createTestHost({ dataDir: '' });
  return {
    snapshot: () => snapshot,
    get api(): ApiClient {
      if (!options.api) throw new Error('this test handle has no API client');
      return options.api;
    },
    logger: host.logger,
    namespaceLabels: (name) => options.namespaces?.[name] ?? (name ? {} : undefined),
    nominator: { nominatedPodsForNode: () => [] },
    runFilterPlugins(state, pod, podInfo, nodeInfo) {
      for (const f of options.filters ?? []) {
        if (state.skipFilterPlugins.has(f.name)) continue;
        const s = f.filter?.(state, pod, podInfo, nodeInfo);
        if (s && !s.isSuccess()) return s.plugin ? s : s.withPlugin(f.name);
      }
      return undefined;
    },
    runPreFilterExtension(op, state, pod, target, nodeInfo) {
      for (const f of options.filters ?? []) {
        const ext = f.preFilterExtensions?.();
        const s = op === 'add' ? ext?.addPod(state, pod, target, nodeInfo) : ext?.removePod(state, pod, target, nodeInfo);
        if (s && !s.isSuccess()) return s;
      }
      return undefined;
    },
    percentageOfNodesToScore: options.percentageOfNodesToScore ?? 0,
    event: (_o, _t, reason, message) => void events.push({ reason, message }),
    allowWaitingPod: () => undefined,
    rejectWaitingPod: () => undefined,
    events,
  };
}

/** What {@link runPluginOnSnapshot} observed. */
export interface PluginRun {
  /** PreFilter's status (undefined: success). */
  readonly preFilter?: Status;
  /** The nodes PreFilter narrowed to, if it did. */
  readonly preFilterNodes?: ReadonlySet<string>;
  /** Filter's verdict per node (undefined: fits); absent when Filter did not run. */
  readonly filter: ReadonlyMap<string, Status | undefined>;
  /** Nodes that passed PreFilter and Filter. */
  readonly feasible: readonly string[];
  /** Scores per feasible node after NormalizeScore; empty when Score did not run. */
  readonly scores: ReadonlyMap<string, number>;
  readonly state: CycleState;
}

/**
 * Runs one plugin's scheduling cycle for `pod` on `snapshot` the way a scheduler does: PreFilter,
 * Filter on every node (on the nodes PreFilter narrowed to), PreScore and Score on the feasible
 * nodes, NormalizeScore. For table-driven tests of a single plugin.
 */
export function runPluginOnSnapshot(plugin: FrameworkPlugin, pod: KubeObject, snapshot: NodeSnapshot): PluginRun {
  const state = new CycleState();
  const podInfo = new PodInfo(pod);
  const pre = plugin.preFilter?.(state, pod, podInfo);
  const filter = new Map<string, Status | undefined>();
  const preNodes = pre?.result?.nodeNames;
  if (pre?.status?.code === 'Skip') state.skipFilterPlugins.add(plugin.name);
  const rejected = pre?.status && !pre.status.isSuccess() && pre.status.code !== 'Skip';
  let feasible: NodeInfo[] = [];
  if (!rejected) {
    for (const n of snapshot.list()) {
      if (preNodes && !preNodes.has(n.name)) continue;
      if (plugin.filter && !state.skipFilterPlugins.has(plugin.name)) {
        const s = plugin.filter(state, pod, podInfo, n);
        filter.set(n.name, s && !s.isSuccess() ? s : undefined);
        if (s && !s.isSuccess()) continue;
      }
      feasible.push(n);
    }
  } else feasible = [];
  const scores = new Map<string, number>();
  if (plugin.score && feasible.length > 0) {
    const ps = plugin.preScore?.(state, pod, podInfo, feasible);
    if (ps?.code === 'Skip') state.skipScorePlugins.add(plugin.name);
    if (!state.skipScorePlugins.has(plugin.name) && (!ps || ps.isSuccess())) {
      const list: NodeScore[] = feasible.map((n) => ({ name: n.name, score: plugin.score!(state, pod, podInfo, n) }));
      plugin.normalizeScore?.(state, pod, list);
      for (const s of list) scores.set(s.name, s.score);
    }
  }
  return { ...(pre?.status ? { preFilter: pre.status } : {}), ...(preNodes ? { preFilterNodes: preNodes } : {}), filter, feasible: feasible.map((n) => n.name), scores, state };
}

/** A scenario for {@link describeSchedulerPluginContract}: nodes, pods already on them, and the pod to place. */
export interface SchedulerPluginScenario {
  readonly name: string;
  readonly nodes: readonly KubeObject[];
  readonly pods?: readonly KubeObject[];
  readonly pod: KubeObject;
  /** Expected feasible nodes (names, any order), when the plugin filters. */
  readonly feasible?: readonly string[];
  /** Expected best-scored node, when the plugin scores and one node must win. */
  readonly best?: string;
}

/** Options of {@link describeSchedulerPluginContract}. */
export interface SchedulerPluginContractOptions extends PluginContractOptions {
  /** Args for `create` (default: none, i.e. the schema's defaults). */
  readonly args?: unknown;
  /** Scenarios the plugin must get right; a generic one (three nodes, one pod) always runs. */
  readonly scenarios?: readonly SchedulerPluginScenario[];
  /** Namespace labels for the handle. */
  readonly namespaces?: TestHandleOptions['namespaces'];
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

/**
 * The contract of the `scheduler-plugin` kind (run it at a spec file's top level, under mocha):
 * the general plugin contract, then: the provided object is a {@link SchedulerPluginFactory} whose
 * `create` makes a plugin of the same name; statuses are {@link Status} objects with codes the
 * extension point allows; scores are finite and within 0-100 after NormalizeScore; results are
 * the same when run twice on the same input (no hidden state across cycles); the plugin never
 * mutates the pods or nodes it is shown (they are deep-frozen); and every scenario's expectations
 * hold.
 */
export function describeSchedulerPluginContract<C>(definition: PluginDefinition<'scheduler-plugin', C>, options: SchedulerPluginContractOptions = {}): void {
  describePluginContract(definition, options);
  const g = globalThis as { describe: Mocha.SuiteFunction; it: Mocha.TestFunction; before: Mocha.HookFunction; after: Mocha.HookFunction };
  const generic: SchedulerPluginScenario = {
    name: 'generic: three nodes, a pod on one of them',
    nodes: [testNode('node-a'), testNode('node-b', { cpu: '2', labels: { zone: 'z1' } }), testNode('node-c', { labels: { zone: 'z2' } })],
    pods: [testPod('running', { nodeName: 'node-a', cpu: '1', labels: { app: 'x' } })],
    pod: testPod('incoming', { cpu: '500m', memory: '128Mi', labels: { app: 'x' } }),
  };
  g.describe(`scheduler-plugin contract: ${definition.id}`, () => {
    let running: RunningPlugin | undefined;
    let factory: SchedulerPluginFactory;
    g.before(async () => {
      running = startPlugin(definition, { ...(options.config !== undefined ? { config: options.config } : {}) });
      const impl = await running.ready;
      assert.ok(isSchedulerPluginFactory(impl), 'the provided implementation is not a SchedulerPluginFactory (name and create(args, handle))');
      factory = impl;
    });
    g.after(async () => {
      await running?.stop();
    });

    g.it('makes a plugin of the factory\'s name that implements at least one extension point', async () => {
      const plugin = await factory.create(options.args, testFrameworkHandle(Snapshot.of([])));
      assert.equal(plugin.name, factory.name);
      const points = ['preEnqueue', 'less', 'preFilter', 'filter', 'postFilter', 'preScore', 'score', 'reserve', 'permit', 'preBind', 'bind', 'postBind'] as const;
      assert.ok(points.some((p) => typeof plugin[p] === 'function'), 'the plugin implements no extension point');
    });

    for (const scenario of [generic, ...(options.scenarios ?? [])]) {
      g.it(`${scenario.name}: valid statuses and scores, the same twice, inputs untouched, expectations met`, async () => {
        const nodes = deepFreeze(structuredClone(scenario.nodes) as KubeObject[]);
        const pods = deepFreeze(structuredClone(scenario.pods ?? []) as KubeObject[]);
        const pod = deepFreeze(structuredClone(scenario.pod));
        const snapshot = Snapshot.of(nodes, pods);
        const plugin = await factory.create(options.args, testFrameworkHandle(snapshot, { ...(options.namespaces ? { namespaces: options.namespaces } : {}) }));
        const run = (): PluginRun => runPluginOnSnapshot(plugin, pod, snapshot);
        const first = run();
        const second = run();
        const view = (r: PluginRun): unknown => ({ pre: r.preFilter?.code, filter: [...r.filter].map(([n, s]) => [n, s?.code, s?.reasons]), scores: [...r.scores] });
        assert.ok(isDeepStrictEqual(view(first), view(second)), `two runs on the same input differ:\n${JSON.stringify(view(first))}\n${JSON.stringify(view(second))}`);
        if (first.preFilter) {
          assert.ok(first.preFilter instanceof Status, 'PreFilter must return a Status');
          assert.ok(['Success', 'Error', 'Unschedulable', 'UnschedulableAndUnresolvable', 'Skip'].includes(first.preFilter.code), `PreFilter returned ${first.preFilter.code}`);
          assert.notEqual(first.preFilter.code, 'Error', `PreFilter failed: ${first.preFilter.message()}`);
        }
        for (const [node, s] of first.filter) {
          if (!s) continue;
          assert.ok(s instanceof Status, `Filter on ${node} must return a Status or undefined`);
          assert.ok(['Unschedulable', 'UnschedulableAndUnresolvable'].includes(s.code), `Filter on ${node} returned ${s.code}: ${s.message()}`);
          assert.ok(s.reasons.length > 0 && s.reasons.every((r) => typeof r === 'string' && r !== ''), `Filter on ${node} rejected without a reason`);
        }
        for (const [node, score] of first.scores) {
          assert.ok(Number.isFinite(score), `score of ${node} is ${score}`);
          assert.ok(score >= MIN_NODE_SCORE && score <= MAX_NODE_SCORE, `score of ${node} is ${score} after NormalizeScore, outside 0-${MAX_NODE_SCORE}`);
        }
        if (scenario.feasible) assert.deepEqual([...first.feasible].sort(), [...scenario.feasible].sort(), 'feasible nodes');
        if (scenario.best) {
          const best = [...first.scores].sort((a, b) => b[1] - a[1]);
          assert.ok(best.length > 0, 'no node was scored');
          assert.equal(best[0]![0], scenario.best, `best node (scores ${JSON.stringify(best)})`);
          if (best.length > 1) assert.ok(best[0]![1] > best[1]![1], `best node ${scenario.best} must win outright (scores ${JSON.stringify(best)})`);
        }
        if (plugin.eventsToRegister) {
          for (const e of plugin.eventsToRegister()) assert.ok(typeof e.event.resource === 'string' && e.event.actions.length > 0, `invalid event registration ${JSON.stringify(e)}`);
        }
      });
    }
  });
}

