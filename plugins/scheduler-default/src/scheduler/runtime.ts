/**
 * One profile's framework: its plugins, made from the `scheduler-plugin` factories with the
 * profile's args (validated against each factory's schema), arranged per extension point, and
 * run with Kubernetes' rules (first Filter failure wins, scores normalized then weighted, Permit
 * waits, Unreserve in reverse order). It is also the {@link FrameworkHandle} its plugins get.
 *
 * @module
 */
import {
  compileConfigSchema,
  type CycleState,
  formatConfigProblems,
  MAX_NODE_SCORE,
  mergeProfile,
  type PodInfo,
  pluginsByPoint,
  podPriority,
  Status,
  type ApiClient,
  type ClusterEventWithHint,
  type ExtensionPoint,
  type FrameworkHandle,
  type FrameworkPlugin,
  type KubeObject,
  type Logger,
  type NodeInfo,
  type NodeScore,
  type NodeSnapshot,
  type PodNominator,
  type PointPlugins,
  type SchedulerPluginFactory,
  type SchedulerProfile,
} from '@kubernel/sdk';

/** What a profile's framework needs from its scheduler. */
export interface RuntimeOptions {
  readonly api: ApiClient;
  readonly logger: Logger;
  readonly snapshot: () => NodeSnapshot;
  readonly nominator: PodNominator;
  readonly namespaceLabels: (name: string) => Readonly<Record<string, string>> | undefined;
  readonly event: (object: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string) => void;
  readonly percentageOfNodesToScore: number;
}

interface Waiting {
  readonly pending: Set<string>;
  readonly resolve: (s: Status | undefined) => void;
  readonly timer: NodeJS.Timeout;
}

/** A profile's framework. */
export class ProfileFramework implements FrameworkHandle {
  readonly schedulerName: string;
  readonly percentageOfNodesToScore: number;
  private points!: Record<ExtensionPoint, PointPlugins>;
  private readonly plugins = new Map<string, FrameworkPlugin>();
  private readonly waiting = new Map<string, Waiting>();
  private readonly events = new Map<string, readonly ClusterEventWithHint[]>();

  private constructor(
    readonly profile: SchedulerProfile,
    private readonly options: RuntimeOptions,
  ) {
    this.schedulerName = profile.schedulerName;
    this.percentageOfNodesToScore = profile.percentageOfNodesToScore ?? options.percentageOfNodesToScore;
  }

  /**
   * Builds the framework of `custom` (merged onto the default profile) from the available
   * factories. Default plugins nobody provides are left out with a warning; a plugin the profile
   * names explicitly must exist.
   *
   * @throws {Error} naming the plugin and field for a missing plugin or invalid args.
   */
  static async create(custom: SchedulerProfile, factories: ReadonlyMap<string, SchedulerPluginFactory>, options: RuntimeOptions): Promise<ProfileFramework> {
    const explicit = new Set<string>();
    for (const [point, set] of Object.entries(custom.plugins ?? {})) for (const p of set?.enabled ?? []) if (point) explicit.add(p.name);
    const merged = mergeProfile(custom);
    // Default plugins this distribution does not provide are dropped (say so); explicit ones must exist.
    const missing = new Set<string>();
    for (const set of Object.values(merged.plugins ?? {})) {
      for (const p of set?.enabled ?? []) {
        if (factories.has(p.name)) continue;
        if (explicit.has(p.name)) throw new Error(`profile ${custom.schedulerName}: plugin ${p.name} is not provided by any scheduler-plugin of this distribution`);
        missing.add(p.name);
      }
    }
    if (missing.size > 0) options.logger.warn({ profile: custom.schedulerName, plugins: [...missing] }, `default scheduling plugins not provided by this distribution are left out: ${[...missing].join(', ')}`);
    const plugins = Object.fromEntries(
      Object.entries(merged.plugins ?? {}).map(([point, set]) => [point, { ...set, enabled: (set?.enabled ?? []).filter((p) => factories.has(p.name)) }]),
    );
    const profile: SchedulerProfile = { ...merged, plugins };
    const fw = new ProfileFramework(profile, options);
    const args = new Map((custom.pluginConfig ?? []).map((c) => [c.name, c.args]));
    for (const name of args.keys()) if (!factories.has(name)) throw new Error(`profile ${custom.schedulerName}: pluginConfig names ${name}, which no scheduler-plugin provides`);
    const names = new Set<string>();
    for (const set of Object.values(plugins)) for (const p of set.enabled) names.add(p.name);
    for (const name of names) {
      const factory = factories.get(name)!;
      let a = args.get(name);
      if (factory.argsSchema) {
        const result = compileConfigSchema(factory.argsSchema, name)(a ?? {});
        if (!result.ok) throw new Error(`profile ${custom.schedulerName}: pluginConfig ${name} args: ${formatConfigProblems(result.problems).replace(/config\//g, 'args/')}`);
        a = result.config;
      }
      const plugin = await factory.create(a, fw);
      if (plugin.name !== name) throw new Error(`scheduler-plugin ${name} made a plugin named ${plugin.name}`);
      fw.plugins.set(name, plugin);
      fw.events.set(name, plugin.eventsToRegister?.() ?? DEFAULT_EVENTS);
    }
    fw.points = pluginsByPoint(profile, fw.plugins);
    return fw;
  }

  // ---- FrameworkHandle -----------------------------------------------------------------------

  snapshot(): NodeSnapshot {
    return this.options.snapshot();
  }
  get api(): ApiClient {
    return this.options.api;
  }
  get logger(): Logger {
    return this.options.logger;
  }
  get nominator(): PodNominator {
    return this.options.nominator;
  }
  namespaceLabels(name: string): Readonly<Record<string, string>> | undefined {
    return this.options.namespaceLabels(name);
  }
  event(object: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): void {
    this.options.event(object, type, reason, message);
  }

  /** The cluster events plugin `name` registered (all events when it registered none). */
  eventsOf(name: string): readonly ClusterEventWithHint[] {
    return this.events.get(name) ?? DEFAULT_EVENTS;
  }

  /** The QueueSort comparison. */
  get less(): (a: Parameters<NonNullable<FrameworkPlugin['less']>>[0], b: Parameters<NonNullable<FrameworkPlugin['less']>>[1]) => boolean {
    const p = this.points.queueSort.plugins[0]!;
    return (a, b) => p.less!(a, b);
  }

  /** Plugins at `point`, in order (for introspection and tests). */
  pluginNames(point: ExtensionPoint): string[] {
    return this.points[point].plugins.map((p) => p.name);
  }

  // ---- extension points ----------------------------------------------------------------------

  runPreEnqueue(pod: KubeObject): Status | undefined {
    for (const p of this.points.preEnqueue.plugins) {
      const s = guard(p, () => p.preEnqueue!(pod));
      if (s && !s.isSuccess()) return s;
    }
    return undefined;
  }

  /** PreFilter: the first rejection, and the intersection of the nodes plugins narrowed to. */
  runPreFilter(state: CycleState, pod: KubeObject, podInfo: PodInfo): { status?: Status; nodeNames?: Set<string> } {
    let nodeNames: Set<string> | undefined;
    for (const p of this.points.preFilter.plugins) {
      let r: ReturnType<NonNullable<FrameworkPlugin['preFilter']>>;
      try {
        r = p.preFilter!(state, pod, podInfo);
      } catch (err) {
        return { status: Status.error(err).withPlugin(p.name) };
      }
      const s = r?.status;
      if (s?.code === 'Skip') {
        state.skipFilterPlugins.add(p.name);
        continue;
      }
      if (s && !s.isSuccess()) return { status: s.plugin ? s : s.withPlugin(p.name) };
      const names = r?.result?.nodeNames;
      if (names) nodeNames = nodeNames ? new Set([...nodeNames].filter((n) => names.has(n))) : new Set(names);
      if (nodeNames && nodeNames.size === 0) {
        return { status: new Status('UnschedulableAndUnresolvable', ['node(s) didn\'t satisfy plugin(s) [' + p.name + ']'], p.name) };
      }
    }
    return nodeNames ? { nodeNames } : {};
  }

  runFilterPlugins(state: CycleState, pod: KubeObject, podInfo: PodInfo, nodeInfo: NodeInfo): Status | undefined {
    for (const p of this.points.filter.plugins) {
      if (state.skipFilterPlugins.has(p.name)) continue;
      let s: Status | undefined;
      try {
        s = p.filter!(state, pod, podInfo, nodeInfo);
      } catch (err) {
        return Status.error(err).withPlugin(p.name);
      }
      if (s && !s.isSuccess()) return s.plugin ? s : s.withPlugin(p.name);
    }
    return undefined;
  }

  /**
   * Filters with the pods nominated to the node (of at least the pod's priority) counted, then
   * without them, as Kubernetes does: the pod must fit both ways.
   */
  runFilterWithNominatedPods(state: CycleState, pod: KubeObject, podInfo: PodInfo, nodeInfo: NodeInfo): Status | undefined {
    const all = this.options.nominator.nominatedPodsForNode(nodeInfo.name);
    const nominated = all.length === 0 ? all : all.filter((p) => p.uid !== podInfo.uid && podPriority(p.pod) >= podPriority(pod));
    if (nominated.length > 0) {
      const s2 = state.clone();
      const n2 = nodeInfo.clone();
      for (const p of nominated) {
        n2.addPod(p);
        const s = this.runPreFilterExtension('add', s2, pod, p, n2);
        if (s) return s;
      }
      const s = this.runFilterPlugins(s2, pod, podInfo, n2);
      if (s) return s;
    }
    return this.runFilterPlugins(state, pod, podInfo, nodeInfo);
  }

  runPreFilterExtension(op: 'add' | 'remove', state: CycleState, pod: KubeObject, target: PodInfo, nodeInfo: NodeInfo): Status | undefined {
    for (const p of this.points.preFilter.plugins) {
      if (state.skipFilterPlugins.has(p.name)) continue;
      const ext = p.preFilterExtensions?.();
      if (!ext) continue;
      let s: Status | undefined;
      try {
        s = op === 'add' ? ext.addPod(state, pod, target, nodeInfo) : ext.removePod(state, pod, target, nodeInfo);
      } catch (err) {
        return Status.error(err).withPlugin(p.name);
      }
      if (s && !s.isSuccess()) return s.plugin ? s : s.withPlugin(p.name);
    }
    return undefined;
  }

  get hasPostFilter(): boolean {
    return this.points.postFilter.plugins.length > 0;
  }

  /** PostFilter (preemption): the first plugin that nominates a node, else the last rejection. */
  async runPostFilter(state: CycleState, pod: KubeObject, statuses: ReadonlyMap<string, Status>): Promise<{ nominatedNodeName?: string; status?: Status }> {
    let last: Status | undefined;
    for (const p of this.points.postFilter.plugins) {
      try {
        const r = await p.postFilter!(state, pod, statuses);
        if (r.result?.nominatedNodeName && (!r.status || r.status.isSuccess())) return { nominatedNodeName: r.result.nominatedNodeName };
        // An empty nomination with a rejection: preemption found nothing, clear any earlier nomination.
        if (r.result?.nominatedNodeName === '' && r.status && r.status.code !== 'Error') return { nominatedNodeName: '', status: r.status.plugin ? r.status : r.status.withPlugin(p.name) };
        if (r.status && r.status.code === 'Error') return { status: r.status.withPlugin(p.name) };
        last = r.status ? (r.status.plugin ? r.status : r.status.withPlugin(p.name)) : last;
      } catch (err) {
        return { status: Status.error(err).withPlugin(p.name) };
      }
    }
    return last ? { status: last } : {};
  }

  runPreScore(state: CycleState, pod: KubeObject, podInfo: PodInfo, nodes: readonly NodeInfo[]): Status | undefined {
    for (const p of this.points.preScore.plugins) {
      let s: Status | undefined;
      try {
        s = p.preScore!(state, pod, podInfo, nodes);
      } catch (err) {
        return Status.error(err).withPlugin(p.name);
      }
      if (s?.code === 'Skip') {
        state.skipScorePlugins.add(p.name);
        continue;
      }
      if (s && !s.isSuccess()) return s.plugin ? s : s.withPlugin(p.name);
    }
    return undefined;
  }

  /** Score: per plugin, score every node, normalize, check the range, weight, and sum per node. */
  runScore(state: CycleState, pod: KubeObject, podInfo: PodInfo, nodes: readonly NodeInfo[]): { totals: Float64Array; status?: Status } {
    const totals = new Float64Array(nodes.length);
    for (const p of this.points.score.plugins) {
      if (state.skipScorePlugins.has(p.name)) continue;
      const weight = this.points.score.weights.get(p.name) ?? 1;
      const scores: NodeScore[] = new Array(nodes.length);
      try {
        for (let i = 0; i < nodes.length; i++) scores[i] = { name: nodes[i]!.name, score: p.score!(state, pod, podInfo, nodes[i]!) };
        const s = p.normalizeScore?.(state, pod, scores);
        if (s && !s.isSuccess()) return { totals, status: s.withPlugin(p.name) };
      } catch (err) {
        return { totals, status: Status.error(err).withPlugin(p.name) };
      }
      for (let i = 0; i < nodes.length; i++) {
        const v = scores[i]!.score;
        if (!(v >= 0 && v <= MAX_NODE_SCORE)) return { totals, status: Status.error(new Error(`plugin ${p.name} returns an invalid score ${v} for node ${nodes[i]!.name}, it should be in the range [0, ${MAX_NODE_SCORE}] after normalizing`)).withPlugin(p.name) };
        totals[i]! += v * weight;
      }
    }
    return { totals };
  }

  async runReserve(state: CycleState, pod: KubeObject, node: string): Promise<Status | undefined> {
    for (const p of this.points.reserve.plugins) {
      try {
        const s = await p.reserve!(state, pod, node);
        if (s && !s.isSuccess()) return s.plugin ? s : s.withPlugin(p.name);
      } catch (err) {
        return Status.error(err).withPlugin(p.name);
      }
    }
    return undefined;
  }

  async runUnreserve(state: CycleState, pod: KubeObject, node: string): Promise<void> {
    const list = this.points.reserve.plugins;
    for (let i = list.length - 1; i >= 0; i--) {
      const p = list[i]!;
      try {
        await p.unreserve?.(state, pod, node);
      } catch (err) {
        this.options.logger.error({ plugin: p.name, err: String(err) }, 'unreserve failed');
      }
    }
  }

  /** Permit: a rejection, or the plugins that asked to wait (with the shortest timeout). */
  runPermit(state: CycleState, pod: KubeObject, node: string): { status?: Status; wait?: { plugins: Set<string>; timeoutMs: number } } {
    let wait: { plugins: Set<string>; timeoutMs: number } | undefined;
    for (const p of this.points.permit.plugins) {
      let r: ReturnType<NonNullable<FrameworkPlugin['permit']>>;
      try {
        r = p.permit!(state, pod, node);
      } catch (err) {
        return { status: Status.error(err).withPlugin(p.name) };
      }
      const s = r?.status;
      if (s?.code === 'Wait') {
        const timeoutMs = Math.min(r?.timeoutMs ?? 15 * 60_000, 15 * 60_000);
        wait ??= { plugins: new Set(), timeoutMs };
        wait.plugins.add(p.name);
        wait.timeoutMs = Math.min(wait.timeoutMs, timeoutMs);
      } else if (s && !s.isSuccess()) return { status: s.plugin ? s : s.withPlugin(p.name) };
    }
    return wait ? { wait } : {};
  }

  /** Waits until every plugin that asked allowed the pod, one rejected it, or the timeout passed. */
  waitOnPermit(pod: KubeObject, wait: { plugins: Set<string>; timeoutMs: number }): Promise<Status | undefined> {
    const uid = String(pod.metadata?.uid);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(uid);
        resolve(new Status('Unschedulable', [`rejected due to timeout after waiting ${wait.timeoutMs}ms at plugin ${[...wait.plugins][0]}`], [...wait.plugins][0]!));
      }, wait.timeoutMs);
      this.waiting.set(uid, { pending: new Set(wait.plugins), resolve, timer });
    });
  }

  allowWaitingPod(uid: string, plugin: string): void {
    const w = this.waiting.get(uid);
    if (!w) return;
    w.pending.delete(plugin);
    if (w.pending.size > 0) return;
    clearTimeout(w.timer);
    this.waiting.delete(uid);
    w.resolve(undefined);
  }

  rejectWaitingPod(uid: string, plugin: string, reason: string): void {
    const w = this.waiting.get(uid);
    if (!w) return;
    clearTimeout(w.timer);
    this.waiting.delete(uid);
    w.resolve(new Status('Unschedulable', [reason], plugin));
  }

  /** Rejects every waiting pod (the scheduler is stopping). */
  rejectAllWaiting(reason: string): void {
    for (const uid of [...this.waiting.keys()]) this.rejectWaitingPod(uid, '', reason);
  }

  async runPreBind(state: CycleState, pod: KubeObject, node: string): Promise<Status | undefined> {
    for (const p of this.points.preBind.plugins) {
      try {
        const s = await p.preBind!(state, pod, node);
        if (s && !s.isSuccess()) return s.plugin ? s : s.withPlugin(p.name);
      } catch (err) {
        return Status.error(err).withPlugin(p.name);
      }
    }
    return undefined;
  }

  /** Bind: the first binder that does not Skip. */
  async runBind(state: CycleState, pod: KubeObject, node: string): Promise<Status | undefined> {
    for (const p of this.points.bind.plugins) {
      try {
        const s = await p.bind!(state, pod, node);
        if (s?.code === 'Skip') continue;
        if (s && !s.isSuccess()) return s.plugin ? s : s.withPlugin(p.name);
        return undefined;
      } catch (err) {
        return Status.error(err).withPlugin(p.name);
      }
    }
    return Status.error(new Error('no bind plugin bound the pod (all skipped)'));
  }

  runPostBind(state: CycleState, pod: KubeObject, node: string): void {
    for (const p of this.points.postBind.plugins) {
      try {
        p.postBind!(state, pod, node);
      } catch (err) {
        this.options.logger.warn({ plugin: p.name, err: String(err) }, 'postBind failed');
      }
    }
  }
}

/** What a plugin that registered no events is retried on: every change. */
const DEFAULT_EVENTS: readonly ClusterEventWithHint[] = [{ event: { resource: '*', actions: ['All'] } }];

function guard(p: FrameworkPlugin, fn: () => Status | undefined): Status | undefined {
  try {
    const s = fn();
    return s && !s.isSuccess() && !s.plugin ? s.withPlugin(p.name) : s;
  } catch (err) {
    return Status.error(err).withPlugin(p.name);
  }
}
