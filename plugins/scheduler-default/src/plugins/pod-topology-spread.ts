/**
 * PodTopologySpread: `spec.topologySpreadConstraints` (and, for pods without any, the cluster's
 * default constraints) with the semantics of Kubernetes v1.30
 * (`pkg/scheduler/framework/plugins/podtopologyspread`): `DoNotSchedule` constraints filter,
 * `ScheduleAnyway` constraints score. `minDomains`, `nodeAffinityPolicy` (Honor by default),
 * `nodeTaintsPolicy` (Ignore by default) and `matchLabelKeys` are honored.
 *
 * PreFilter counts the matching pods per topology domain (over the nodes that have every
 * constraint's topology key and pass the inclusion policies) and keeps the two smallest domains per
 * constraint; Filter then computes the skew of the node's domain with a few lookups. PreScore does
 * the same for `ScheduleAnyway` constraints, Score looks the node's domain up.
 *
 * The per-domain counts are kept across scheduling cycles per kind of constraint (topology key,
 * selector, namespace, inclusion policies and what they depend on): a cycle only recounts the nodes
 * whose `NodeInfo.generation` changed since the last one, then copies the per-domain counts (an
 * array per constraint) into the cycle state.
 *
 * @module
 */
import {
  MAX_NODE_SCORE,
  Status,
  controllerOf,
  defineSchedulerPlugin,
  nodeTaints,
  podMatchesNodeSelectorAndAffinity,
  podTolerations,
  toleratesAll,
  type ClusterEventWithHint,
  type CycleState,
  type FrameworkHandle,
  type FrameworkPlugin,
  type Informer,
  type KubeObject,
  type LabelSelector,
  type NodeInfo,
  type NodeScore,
  type PodInfo,
  type PreFilterExtensions,
  type QueueingHint,
  type SchedulerPluginFactory,
  type Taint,
} from '@kubernel/sdk';

const NAME = 'PodTopologySpread';
const PRE_FILTER_KEY = `PreFilter${NAME}`;
const PRE_SCORE_KEY = `PreScore${NAME}`;
const LABEL_HOSTNAME = 'kubernetes.io/hostname';
const LABEL_ZONE = 'topology.kubernetes.io/zone';
const MAX_INT32 = 2147483647;
/** How many {@link DomainCounter}s (kinds of constraints) a plugin keeps across cycles. */
const COUNTER_CACHE_SIZE = 64;

/** Filter reason: placing the pod on the node would exceed a `DoNotSchedule` constraint's maxSkew (Unschedulable). */
export const ERR_REASON_CONSTRAINTS_NOT_MATCH = "node(s) didn't match pod topology spread constraints";
/** Filter reason: the node lacks the topology key of a `DoNotSchedule` constraint (UnschedulableAndUnresolvable). */
export const ERR_REASON_NODE_LABEL_NOT_MATCH = `${ERR_REASON_CONSTRAINTS_NOT_MATCH} (missing required label)`;

/** A `v1.TopologySpreadConstraint` as found in pod specs and in the plugin's `defaultConstraints`. */
export interface TopologySpreadConstraintSpec {
  readonly maxSkew: number;
  readonly topologyKey: string;
  readonly whenUnsatisfiable: 'DoNotSchedule' | 'ScheduleAnyway';
  readonly labelSelector?: LabelSelector;
  readonly minDomains?: number;
  readonly nodeAffinityPolicy?: 'Honor' | 'Ignore';
  readonly nodeTaintsPolicy?: 'Honor' | 'Ignore';
  readonly matchLabelKeys?: readonly string[];
}

/** The args of PodTopologySpread (`PodTopologySpreadArgs`). */
export interface PodTopologySpreadArgs {
  /** Constraints for pods that define none (`List` defaulting only; they must not have a labelSelector). */
  readonly defaultConstraints: readonly TopologySpreadConstraintSpec[];
  /**
   * `System` (default): the built-in defaults (hostname maxSkew 3, zone maxSkew 5, both
   * ScheduleAnyway) and `defaultConstraints` must be empty; `List`: `defaultConstraints`.
   */
  readonly defaultingType: 'System' | 'List';
}

/** Kubernetes' system default constraints (`systemDefaultConstraints`). */
const SYSTEM_DEFAULT_CONSTRAINTS: readonly TopologySpreadConstraintSpec[] = [
  { topologyKey: LABEL_HOSTNAME, whenUnsatisfiable: 'ScheduleAnyway', maxSkew: 3 },
  { topologyKey: LABEL_ZONE, whenUnsatisfiable: 'ScheduleAnyway', maxSkew: 5 },
];

type Labels = Readonly<Record<string, string>>;
const EMPTY_LABELS: Labels = Object.freeze({});

// ---------------------------------------------------------------------------------------------
// Selectors: a list of requirements (Kubernetes' labels.Selector), compiled to a matcher.

interface Requirement {
  readonly key: string;
  readonly op: string;
  readonly values: readonly string[];
}

/** A parsed selector. `nothing`: matches no labels (an absent labelSelector). */
class Selector {
  private readonly nr: number;
  constructor(
    readonly requirements: readonly Requirement[],
    readonly nothing = false,
  ) {
    this.nr = requirements.length;
  }

  /** No requirement: matches everything (but counts nothing, as in Kubernetes). */
  get empty(): boolean {
    return !this.nothing && this.nr === 0;
  }

  matches(labels: Labels | undefined): boolean {
    if (this.nothing) return false;
    const l = (labels ?? EMPTY_LABELS) as Record<string, unknown>;
    const rs = this.requirements;
    for (let i = 0; i < this.nr; i++) {
      const r = rs[i]!;
      const v = l[r.key];
      const has = typeof v === 'string';
      switch (r.op) {
        case '=':
          if (v !== r.values[0]) return false;
          break;
        case 'In':
          if (!has || !r.values.includes(v)) return false;
          break;
        case 'NotIn':
          if (has && r.values.includes(v)) return false;
          break;
        case 'Exists':
          if (!has) return false;
          break;
        case 'DoesNotExist':
          if (has) return false;
          break;
        default:
          return false;
      }
    }
    return true;
  }

  /** A key identifying equal selectors (part of the counters' cache key). */
  get signature(): string {
    return this.nothing ? '!' : JSON.stringify(this.requirements);
  }

  static nothing(): Selector {
    return new Selector([], true);
  }

  /** A label selector's requirements (`metav1.LabelSelectorAsSelector`); undefined selects nothing. */
  static of(sel: LabelSelector | undefined): Selector {
    if (sel === undefined || sel === null) return Selector.nothing();
    return new Selector([...fromLabelSet(sel.matchLabels ?? {}), ...(sel.matchExpressions ?? []).map((e) => ({ key: e.key, op: e.operator, values: [...(e.values ?? [])] }))]);
  }

  /** This selector with more requirements (`Selector.Add`); `nothing` stays nothing. */
  add(more: readonly Requirement[]): Selector {
    if (this.nothing || more.length === 0) return this;
    return new Selector([...this.requirements, ...more]);
  }
}

function fromLabelSet(set: Readonly<Record<string, string>>): Requirement[] {
  return Object.keys(set)
    .sort()
    .map((k) => ({ key: k, op: '=', values: [set[k]!] }));
}

// ---------------------------------------------------------------------------------------------
// Constraints.

/** A constraint with its selector parsed (Kubernetes' `topologySpreadConstraint`). */
interface Constraint {
  readonly maxSkew: number;
  readonly topologyKey: string;
  readonly selector: Selector;
  readonly minDomains: number;
  readonly honorNodeAffinity: boolean;
  readonly honorNodeTaints: boolean;
}

/** Constraints of one action (`filterTopologySpreadConstraints`), `matchLabelKeys` merged into their selectors. */
function parseConstraints(specs: readonly TopologySpreadConstraintSpec[], podLabels: Labels, action: 'DoNotSchedule' | 'ScheduleAnyway'): Constraint[] {
  const out: Constraint[] = [];
  for (const c of specs) {
    if (c.whenUnsatisfiable !== action) continue;
    let selector = Selector.of(c.labelSelector);
    if (c.matchLabelKeys && c.matchLabelKeys.length > 0) {
      const set: Record<string, string> = {};
      let any = false;
      for (const k of c.matchLabelKeys) {
        const v = podLabels[k];
        if (typeof v === 'string') {
          set[k] = v;
          any = true;
        }
      }
      if (any && !selector.nothing) selector = new Selector([...fromLabelSet(set), ...selector.requirements]);
    }
    out.push({
      maxSkew: Number(c.maxSkew),
      topologyKey: String(c.topologyKey),
      selector,
      minDomains: c.minDomains ?? 1,
      honorNodeAffinity: (c.nodeAffinityPolicy ?? 'Honor') === 'Honor',
      honorNodeTaints: (c.nodeTaintsPolicy ?? 'Ignore') === 'Honor',
    });
  }
  return out;
}

/** The pods on a node (in `ns`, not terminating) that `selector` matches (`countPodsMatchSelector`). */
function countMatching(pods: readonly PodInfo[], selector: Selector, ns: string): number {
  if (selector.empty || selector.nothing) return 0;
  let n = 0;
  for (let i = 0; i < pods.length; i++) {
    const p = pods[i]!.pod;
    const md = p.metadata;
    if (md === undefined || md.namespace !== ns || md.deletionTimestamp) continue;
    if (selector.matches(md.labels)) n++;
  }
  return n;
}

function nodeLabels(ni: NodeInfo): Labels {
  return (ni.node?.metadata?.labels ?? EMPTY_LABELS) as Labels;
}

/** Whether the node has every constraint's topology key. */
function hasAllKeys(labels: Labels, constraints: readonly Constraint[]): boolean {
  for (let i = 0; i < constraints.length; i++) if (typeof labels[constraints[i]!.topologyKey] !== 'string') return false;
  return true;
}

/** Whether the node has every one of `keys`. */
function hasKeys(labels: Labels, keys: readonly string[]): boolean {
  for (let i = 0; i < keys.length; i++) if (typeof labels[keys[i]!] !== 'string') return false;
  return true;
}

/** The distinct topology keys of `constraints`, sorted. */
function keysOf(constraints: readonly Constraint[]): string[] {
  return [...new Set(constraints.map((c) => c.topologyKey))].sort();
}

const doNotScheduleTaint = (t: Taint): boolean => t.effect === 'NoSchedule' || t.effect === 'NoExecute';

/**
 * Per-node inclusion checks (node affinity/selector and taints), computed at most once per node
 * and only when a constraint honors them.
 */
class Inclusion {
  private readonly hasNodeRequirements: boolean;
  private readonly tolerations: ReturnType<typeof podTolerations>;
  private affinitySignature?: string;
  private taintSignature?: string;
  private node?: KubeObject;
  private affinity = -1;
  private taints = -1;

  constructor(private readonly pod: KubeObject) {
    const spec = (pod.spec ?? {}) as { nodeSelector?: Record<string, string>; affinity?: { nodeAffinity?: { requiredDuringSchedulingIgnoredDuringExecution?: unknown } } };
    this.hasNodeRequirements = Object.keys(spec.nodeSelector ?? {}).length > 0 || spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution !== undefined;
    this.tolerations = podTolerations(pod);
  }

  /**
   * What {@link Inclusion.includes} depends on for `c` besides the node: for any pods and
   * constraints, equal signatures mean equal answers on every node.
   */
  signature(c: Constraint): string {
    let s = '-';
    if (c.honorNodeAffinity && this.hasNodeRequirements) {
      const spec = this.pod.spec as { nodeSelector?: unknown; affinity?: { nodeAffinity?: { requiredDuringSchedulingIgnoredDuringExecution?: unknown } } };
      s = this.affinitySignature ??= JSON.stringify([spec.nodeSelector ?? null, spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? null]);
    }
    s += '|';
    s += c.honorNodeTaints ? (this.taintSignature ??= JSON.stringify(this.tolerations)) : '-';
    return s;
  }

  /** Starts checks for another node. */
  reset(node: KubeObject): void {
    this.node = node;
    this.affinity = -1;
    this.taints = -1;
  }

  /** `matchNodeInclusionPolicies` for `c` on the current node. */
  includes(c: Constraint): boolean {
    if (c.honorNodeAffinity && this.hasNodeRequirements) {
      if (this.affinity < 0) this.affinity = podMatchesNodeSelectorAndAffinity(this.pod, this.node!) ? 1 : 0;
      if (this.affinity === 0) return false;
    }
    if (c.honorNodeTaints) {
      if (this.taints < 0) this.taints = toleratesAll(nodeTaints(this.node), this.tolerations, doNotScheduleTaint) ? 1 : 0;
      if (this.taints === 0) return false;
    }
    return true;
  }
}

/**
 * The two domains (by id) with the fewest matching pods (`criticalPaths`): `num0` is the minimum,
 * `num1` is greater or equal (not necessarily the second minimum after updates).
 */
class CriticalPaths {
  value0 = -1;
  num0 = MAX_INT32;
  value1 = -1;
  num1 = MAX_INT32;

  update(value: number, num: number): void {
    if (value === this.value0 || value === this.value1) {
      if (value === this.value0) this.num0 = num;
      else this.num1 = num;
      if (this.num0 > this.num1) {
        const v = this.value0;
        const n = this.num0;
        this.value0 = this.value1;
        this.num0 = this.num1;
        this.value1 = v;
        this.num1 = n;
      }
    } else if (num < this.num0) {
      this.value1 = this.value0;
      this.num1 = this.num0;
      this.value0 = value;
      this.num0 = num;
    } else if (num < this.num1) {
      this.value1 = value;
      this.num1 = num;
    }
  }

  clone(): CriticalPaths {
    const c = new CriticalPaths();
    c.value0 = this.value0;
    c.num0 = this.num0;
    c.value1 = this.value1;
    c.num1 = this.num1;
    return c;
  }
}

/**
 * Matching pods per topology domain for one kind of constraint (its topology key, selector,
 * namespace, the topology keys a node must have, and what its inclusion policies depend on),
 * kept across scheduling cycles: each node's contribution is recomputed only when the node's
 * generation changed, so a cycle costs one generation check per node instead of counting pods.
 * Domains are numbered by value (`ids`, append-only, shared with the per-cycle copies).
 */
class DomainCounter {
  readonly ids = new Map<string, number>();
  /** Per domain id: matching pods on its eligible nodes. */
  readonly counts: number[] = [];
  /** Per domain id: its eligible nodes. */
  readonly nodes: number[] = [];
  /** Per position in the snapshot's node list: the generation last seen, its domain (-1: not eligible), its matching pods. */
  private readonly gens: number[] = [];
  private readonly domainOf: number[] = [];
  private readonly countOf: number[] = [];

  constructor(
    /** Keys a node must all have to count (undefined: none; a missing key is then the value ''). */
    private readonly requiredKeys: readonly string[] | undefined,
    private readonly namespace: string,
  ) {}

  /** The id of domain `value` (allocated on first use, also by per-cycle copies). */
  id(value: string): number {
    let d = this.ids.get(value);
    if (d === undefined) this.ids.set(value, (d = this.ids.size));
    while (this.counts.length <= d) {
      this.counts.push(0);
      this.nodes.push(0);
    }
    return d;
  }

  /**
   * Brings the counts up to date with `list` (the snapshot's nodes), for constraint `c` of the pod
   * of `inclusion` (any constraint and pod of the counter's cache key give the same answers).
   */
  sync(list: readonly NodeInfo[], c: Constraint, inclusion: Inclusion): void {
    const gens = this.gens;
    const n = list.length;
    for (let i = 0; i < n; i++) {
      const ni = list[i]!;
      if (gens[i] !== ni.generation) this.refresh(i, ni, c, inclusion);
    }
    if (gens.length > n) {
      for (let i = n; i < gens.length; i++) this.retire(i);
      gens.length = n;
      this.domainOf.length = n;
      this.countOf.length = n;
    }
  }

  private retire(i: number): void {
    const d = this.domainOf[i];
    if (d === undefined || d < 0) return;
    this.counts[d]! -= this.countOf[i]!;
    this.nodes[d]!--;
  }

  private refresh(i: number, ni: NodeInfo, c: Constraint, inclusion: Inclusion): void {
    this.retire(i);
    let d = -1;
    let n = 0;
    const node = ni.node;
    if (node) {
      const labels = nodeLabels(ni);
      if (this.requiredKeys === undefined || hasKeys(labels, this.requiredKeys)) {
        inclusion.reset(node);
        if (inclusion.includes(c)) {
          const value = labels[c.topologyKey];
          d = this.id(typeof value === 'string' ? value : '');
          n = countMatching(ni.pods, c.selector, this.namespace);
          this.counts[d]! += n;
          this.nodes[d]!++;
        }
      }
    }
    this.gens[i] = ni.generation;
    this.domainOf[i] = d;
    this.countOf[i] = n;
  }
}

/** A cycle's copy of a {@link DomainCounter}'s counts, with its two smallest domains; updated by AddPod/RemovePod. */
class DomainCounts {
  constructor(
    private readonly ids: Map<string, number>,
    /** Per domain id: matching pods; -1 (or absent) when the domain does not exist (no eligible node). */
    private readonly counts: number[],
    /** How many domains exist. */
    public domains: number,
    readonly paths: CriticalPaths,
  ) {}

  static of(counter: DomainCounter): DomainCounts {
    const n = counter.nodes;
    const c = counter.counts;
    const counts = new Array<number>(n.length);
    const paths = new CriticalPaths();
    let domains = 0;
    for (let d = 0; d < n.length; d++) {
      if (n[d]! > 0) {
        const k = c[d]!;
        counts[d] = k;
        domains++;
        paths.update(d, k);
      } else counts[d] = -1;
    }
    return new DomainCounts(counter.ids, counts, domains, paths);
  }

  /** Matching pods in domain `value` (0 for an unknown domain). */
  get(value: string): number {
    const d = this.ids.get(value);
    if (d === undefined) return 0;
    const k = this.counts[d];
    return k !== undefined && k > 0 ? k : 0;
  }

  /** Adds `delta` pods to domain `value` (creating the domain if needed). */
  add(value: string, delta: number): void {
    let d = this.ids.get(value);
    if (d === undefined) this.ids.set(value, (d = this.ids.size));
    let k = this.counts[d];
    if (k === undefined || k < 0) {
      k = 0;
      this.domains++;
    }
    k += delta;
    this.counts[d] = k;
    this.paths.update(d, k);
  }

  clone(): DomainCounts {
    return new DomainCounts(this.ids, this.counts.slice(), this.domains, this.paths.clone());
  }
}

/** What PreFilter computes for Filter (cloned for preemption's what-ifs). */
class PreFilterState {
  constructor(
    /** The `DoNotSchedule` constraints. */
    readonly constraints: readonly Constraint[],
    /** Per constraint: whether the incoming pod matches its selector (1) or not (0). */
    readonly selfMatch: readonly number[],
    /** Per constraint: matching pods per domain (every eligible domain, zero counts included). */
    readonly counts: readonly DomainCounts[],
  ) {}

  /** The global minimum of constraint `i`, 0 while there are fewer than minDomains domains. */
  minMatchNum(i: number, minDomains: number): number {
    const c = this.counts[i]!;
    return c.domains < minDomains ? 0 : c.paths.num0;
  }

  clone(): PreFilterState {
    return new PreFilterState(
      this.constraints,
      this.selfMatch,
      this.counts.map((c) => c.clone()),
    );
  }
}

/** What PreScore computes for Score and NormalizeScore. */
class PreScoreState {
  constructor(
    /** The `ScheduleAnyway` constraints. */
    readonly constraints: readonly Constraint[],
    /** Nodes missing a topology key (scored 0). */
    readonly ignored: ReadonlySet<string>,
    /** Per constraint: matching pods per domain (undefined for hostname: counted in Score). */
    readonly counts: readonly (DomainCounts | undefined)[],
    /** Per constraint: `log(domains + 2)`, domains of the feasible nodes. */
    readonly weights: readonly number[],
    readonly namespace: string,
  ) {}

  /** Read-only during scoring: shared by clones. */
  clone(): PreScoreState {
    return this;
  }
}

// ---------------------------------------------------------------------------------------------
// Args.

function validateConstraint(c: unknown, i: number): TopologySpreadConstraintSpec {
  const where = `${NAME} args: defaultConstraints[${i}]`;
  if (typeof c !== 'object' || c === null) throw new Error(`${where} must be an object`);
  const x = c as Record<string, unknown>;
  if (typeof x.maxSkew !== 'number' || !Number.isInteger(x.maxSkew) || x.maxSkew <= 0) throw new Error(`${where}.maxSkew must be an integer greater than 0`);
  if (typeof x.topologyKey !== 'string' || x.topologyKey === '') throw new Error(`${where}.topologyKey must be a non-empty string`);
  if (x.whenUnsatisfiable !== 'DoNotSchedule' && x.whenUnsatisfiable !== 'ScheduleAnyway') throw new Error(`${where}.whenUnsatisfiable must be DoNotSchedule or ScheduleAnyway`);
  if (x.labelSelector !== undefined && x.labelSelector !== null) throw new Error(`${where}.labelSelector is forbidden: default constraints' selectors are deduced for each pod`);
  return c as TopologySpreadConstraintSpec;
}

function parseArgs(raw: unknown): PodTopologySpreadArgs {
  const a = (raw ?? {}) as Record<string, unknown>;
  if (typeof a !== 'object' || Array.isArray(a)) throw new Error(`${NAME} args must be an object`);
  const defaultingType = a.defaultingType ?? 'System';
  if (defaultingType !== 'System' && defaultingType !== 'List') throw new Error(`${NAME} args: defaultingType must be System or List`);
  const list = a.defaultConstraints ?? [];
  if (!Array.isArray(list)) throw new Error(`${NAME} args: defaultConstraints must be a list`);
  if (defaultingType === 'System' && list.length > 0) throw new Error(`${NAME} args: defaultConstraints must be empty when defaultingType is System`);
  const defaultConstraints = list.map(validateConstraint);
  const seen = new Set<string>();
  for (const c of defaultConstraints) {
    const k = `${c.topologyKey}/${c.whenUnsatisfiable}`;
    if (seen.has(k)) throw new Error(`${NAME} args: defaultConstraints has a duplicate {topologyKey, whenUnsatisfiable} pair ${k}`);
    seen.add(k);
  }
  return { defaultConstraints, defaultingType };
}

// ---------------------------------------------------------------------------------------------
// Default selectors (Kubernetes' helper.DefaultSelector).

interface Listers {
  readonly services: Informer;
  readonly replicationControllers: Informer;
  readonly replicaSets: Informer;
  readonly statefulSets: Informer;
}

function startListers(handle: FrameworkHandle): Listers | undefined {
  try {
    const api = handle.api;
    const listers: Listers = {
      services: api.informer('/api/v1/services'),
      replicationControllers: api.informer('/api/v1/replicationcontrollers'),
      replicaSets: api.informer('/apis/apps/v1/replicasets'),
      statefulSets: api.informer('/apis/apps/v1/statefulsets'),
    };
    for (const i of Object.values(listers) as Informer[]) i.run();
    return listers;
  } catch {
    // No API (e.g. a test handle): system defaulting finds no selectors and is skipped.
    return undefined;
  }
}

/**
 * The selector of the Services, ReplicationControllers, ReplicaSets and StatefulSets selecting
 * `pod`: Services' and RCs' selectors merged into one label set, RS and StatefulSet selectors added
 * as requirements.
 */
function defaultSelector(pod: KubeObject, listers: Listers | undefined): Selector {
  if (!listers) return new Selector([]);
  const ns = String(pod.metadata?.namespace ?? '');
  const podLabels = (pod.metadata?.labels ?? EMPTY_LABELS) as Labels;
  let set: Record<string, string> = {};
  for (const svc of listers.services.byIndex('namespace', ns)) {
    const sel = (svc.spec as { selector?: Record<string, string> | null } | undefined)?.selector;
    if (sel === undefined || sel === null) continue;
    let ok = true;
    for (const k of Object.keys(sel)) if (podLabels[k] !== sel[k]) ok = false;
    if (ok) set = { ...set, ...sel };
  }
  let selector = new Selector(fromLabelSet(set));
  const owner = controllerOf(pod);
  if (!owner) return selector;
  const get = (inf: Informer): KubeObject | undefined => inf.get(`${ns}/${owner.name}`);
  if (owner.apiVersion === 'v1' && owner.kind === 'ReplicationController') {
    const rc = get(listers.replicationControllers);
    if (rc) selector = new Selector(fromLabelSet({ ...set, ...((rc.spec as { selector?: Record<string, string> } | undefined)?.selector ?? {}) }));
  } else if (owner.apiVersion === 'apps/v1' && (owner.kind === 'ReplicaSet' || owner.kind === 'StatefulSet')) {
    const o = get(owner.kind === 'ReplicaSet' ? listers.replicaSets : listers.statefulSets);
    const sel = (o?.spec as { selector?: LabelSelector } | undefined)?.selector;
    if (o && sel) selector = selector.add(Selector.of(sel).requirements);
  }
  return selector;
}

// ---------------------------------------------------------------------------------------------
// The plugin.

class PodTopologySpread implements FrameworkPlugin {
  readonly name = NAME;
  private readonly extensions: PreFilterExtensions;
  private readonly defaults: readonly TopologySpreadConstraintSpec[];
  private readonly systemDefaulted: boolean;
  private readonly listers?: Listers;
  /** Domain counters by constraint kind, least recently used first. */
  private readonly counters = new Map<string, DomainCounter>();

  constructor(
    args: PodTopologySpreadArgs,
    private readonly handle: FrameworkHandle,
  ) {
    this.systemDefaulted = args.defaultingType === 'System';
    this.defaults = this.systemDefaulted ? SYSTEM_DEFAULT_CONSTRAINTS : args.defaultConstraints;
    if (this.defaults.length > 0) {
      const listers = startListers(handle);
      if (listers) this.listers = listers;
    }
    const update = (state: CycleState, pod: KubeObject, p: PodInfo, nodeInfo: NodeInfo, delta: number): Status | undefined => {
      const s = state.read<PreFilterState>(PRE_FILTER_KEY);
      if (s) updateWithPod(s, p.pod, pod, nodeInfo, delta);
      return undefined;
    };
    this.extensions = {
      addPod: (state, pod, p, nodeInfo) => update(state, pod, p, nodeInfo, 1),
      removePod: (state, pod, p, nodeInfo) => update(state, pod, p, nodeInfo, -1),
    };
  }

  /** The pod's constraints of `action`, or the default ones when it has none (`getConstraints`). */
  private constraints(pod: KubeObject, action: 'DoNotSchedule' | 'ScheduleAnyway'): Constraint[] {
    const labels = (pod.metadata?.labels ?? EMPTY_LABELS) as Labels;
    const own = ((pod.spec as { topologySpreadConstraints?: TopologySpreadConstraintSpec[] } | undefined)?.topologySpreadConstraints ?? []);
    if (own.length > 0) return parseConstraints(own, labels, action);
    const constraints = parseConstraints(this.defaults, labels, action);
    if (constraints.length === 0) return constraints;
    const selector = defaultSelector(pod, this.listers);
    if (selector.empty) return [];
    return constraints.map((c) => ({ ...c, selector }));
  }

  /** The counter of constraint `c` (LRU-cached across cycles). */
  private counter(mode: 'filter' | 'score', requiredKeys: readonly string[] | undefined, c: Constraint, ns: string, inclusion: Inclusion): DomainCounter {
    const key = `${mode}\u0000${requiredKeys ? requiredKeys.join('\u0001') : '*'}\u0000${c.topologyKey}\u0000${c.selector.signature}\u0000${ns}\u0000${inclusion.signature(c)}`;
    let counter = this.counters.get(key);
    if (counter) {
      this.counters.delete(key);
    } else {
      counter = new DomainCounter(requiredKeys, ns);
      if (this.counters.size >= COUNTER_CACHE_SIZE) this.counters.delete(this.counters.keys().next().value!);
    }
    this.counters.set(key, counter);
    return counter;
  }

  preFilter(state: CycleState, pod: KubeObject): { status?: Status } | undefined {
    const constraints = this.constraints(pod, 'DoNotSchedule');
    if (constraints.length === 0) return { status: Status.skip() };
    const ns = String(pod.metadata?.namespace ?? '');
    const list = this.handle.snapshot().list();
    const inclusion = new Inclusion(pod);
    // Nodes count only when they have every constraint's topology key.
    const keys = keysOf(constraints);
    const counts = constraints.map((c) => {
      const counter = this.counter('filter', keys, c, ns, inclusion);
      counter.sync(list, c, inclusion);
      return DomainCounts.of(counter);
    });
    const podLabels = pod.metadata?.labels;
    const selfMatch = constraints.map((c) => (c.selector.matches(podLabels) ? 1 : 0));
    state.write(PRE_FILTER_KEY, new PreFilterState(constraints, selfMatch, counts));
    return undefined;
  }

  preFilterExtensions(): PreFilterExtensions {
    return this.extensions;
  }

  filter(state: CycleState, _pod: KubeObject, _podInfo: PodInfo, nodeInfo: NodeInfo): Status | undefined {
    const s = state.read<PreFilterState>(PRE_FILTER_KEY);
    if (!s) return undefined;
    const labels = nodeLabels(nodeInfo);
    const cs = s.constraints;
    for (let i = 0; i < cs.length; i++) {
      const c = cs[i]!;
      const value = labels[c.topologyKey];
      if (typeof value !== 'string') return new Status('UnschedulableAndUnresolvable', [ERR_REASON_NODE_LABEL_NOT_MATCH], NAME);
      // existing matching pods + 1 if the pod matches itself - global minimum <= maxSkew
      const skew = s.counts[i]!.get(value) + s.selfMatch[i]! - s.minMatchNum(i, c.minDomains);
      if (skew > c.maxSkew) return new Status('Unschedulable', [ERR_REASON_CONSTRAINTS_NOT_MATCH], NAME);
    }
    return undefined;
  }

  preScore(state: CycleState, pod: KubeObject, _podInfo: PodInfo, nodes: readonly NodeInfo[]): Status | undefined {
    const all = this.handle.snapshot().list();
    if (all.length === 0) return Status.skip();
    const constraints = this.constraints(pod, 'ScheduleAnyway');
    if (constraints.length === 0) return Status.skip();
    // Only non-system-default constraints need every topology label (hostname spreading still
    // works on nodes without a zone label).
    const own = ((pod.spec as { topologySpreadConstraints?: unknown[] } | undefined)?.topologySpreadConstraints ?? []).length > 0;
    const requireAll = own || !this.systemDefaulted;
    const keys = requireAll ? keysOf(constraints) : undefined;
    const ignored = new Set<string>();
    for (const ni of nodes) if (keys && !hasKeys(nodeLabels(ni), keys)) ignored.add(ni.name);
    const ns = String(pod.metadata?.namespace ?? '');
    const inclusion = new Inclusion(pod);
    const scored = nodes.length - ignored.size;
    const counts: (DomainCounts | undefined)[] = [];
    const weights: number[] = [];
    for (const c of constraints) {
      if (c.topologyKey === LABEL_HOSTNAME) {
        // Counted per node in Score; one domain per scored node.
        counts.push(undefined);
        weights.push(Math.log(scored + 2));
        continue;
      }
      const counter = this.counter('score', keys, c, ns, inclusion);
      counter.sync(all, c, inclusion);
      // The domains of the scored (feasible, not ignored) nodes weigh the constraint.
      const domains = new Set<string>();
      for (const ni of nodes) {
        if (ignored.size > 0 && ignored.has(ni.name)) continue;
        domains.add(nodeLabels(ni)[c.topologyKey] ?? '');
      }
      counts.push(DomainCounts.of(counter));
      weights.push(Math.log(domains.size + 2));
    }
    state.write(PRE_SCORE_KEY, new PreScoreState(constraints, ignored, counts, weights, ns));
    return undefined;
  }

  score(state: CycleState, _pod: KubeObject, _podInfo: PodInfo, nodeInfo: NodeInfo): number {
    const s = state.read<PreScoreState>(PRE_SCORE_KEY);
    if (!s || (s.ignored.size > 0 && s.ignored.has(nodeInfo.name))) return 0;
    const labels = nodeLabels(nodeInfo);
    let score = 0;
    const cs = s.constraints;
    for (let i = 0; i < cs.length; i++) {
      const c = cs[i]!;
      const value = labels[c.topologyKey];
      if (typeof value !== 'string') continue;
      const counts = s.counts[i];
      const cnt = counts === undefined ? countMatching(nodeInfo.pods, c.selector, s.namespace) : counts.get(value);
      score += cnt * s.weights[i]! + (c.maxSkew - 1);
    }
    return Math.round(score);
  }

  normalizeScore(state: CycleState, _pod: KubeObject, scores: NodeScore[]): Status | undefined {
    const s = state.read<PreScoreState>(PRE_SCORE_KEY);
    if (!s) return undefined;
    let min = Number.MAX_SAFE_INTEGER;
    let max = 0;
    for (const x of scores) {
      if (s.ignored.has(x.name)) continue;
      if (x.score < min) min = x.score;
      if (x.score > max) max = x.score;
    }
    for (const x of scores) {
      if (s.ignored.has(x.name)) x.score = 0;
      else if (max === 0) x.score = MAX_NODE_SCORE;
      else x.score = Math.floor((MAX_NODE_SCORE * (max + min - x.score)) / max);
    }
    return undefined;
  }

  eventsToRegister(): readonly ClusterEventWithHint[] {
    return [
      // Pods added, deleted or relabeled in the pod's namespace change the domains' counts.
      { event: { resource: 'Pod', actions: ['All'] }, hint: (pod, oldObj, newObj) => this.afterPodChange(pod, oldObj, newObj) },
      // Nodes (with the constraints' topology keys) change the domains.
      { event: { resource: 'Node', actions: ['Add', 'Delete', 'UpdateNodeLabel', 'UpdateNodeTaint'] }, hint: (pod, oldObj, newObj) => this.afterNodeChange(pod, oldObj, newObj) },
    ];
  }

  private afterPodChange(pod: KubeObject, oldObj: KubeObject | undefined, newObj: KubeObject | undefined): QueueingHint {
    const involved = (p: KubeObject): boolean =>
      (p.metadata?.uid !== undefined && p.metadata.uid === pod.metadata?.uid) || (Boolean((p.spec as { nodeName?: string } | undefined)?.nodeName) && p.metadata?.namespace === pod.metadata?.namespace);
    if ((newObj && !involved(newObj)) || (oldObj && !involved(oldObj))) return 'QueueSkip';
    const constraints = this.constraints(pod, 'DoNotSchedule');
    const anyMatches = (labels: Labels | undefined): boolean => constraints.some((c) => c.selector.matches(labels));
    if (oldObj && newObj) {
      if (oldObj.metadata?.uid === pod.metadata?.uid) return 'Queue';
      for (const c of constraints) if (c.selector.matches(oldObj.metadata?.labels) !== c.selector.matches(newObj.metadata?.labels)) return 'Queue';
      return 'QueueSkip';
    }
    if (newObj) return anyMatches(newObj.metadata?.labels) ? 'Queue' : 'QueueSkip';
    if (oldObj) return anyMatches(oldObj.metadata?.labels) ? 'Queue' : 'QueueSkip';
    return 'Queue';
  }

  private afterNodeChange(pod: KubeObject, oldObj: KubeObject | undefined, newObj: KubeObject | undefined): QueueingHint {
    const node = newObj ?? oldObj;
    if (!node) return 'Queue';
    const constraints = this.constraints(pod, 'DoNotSchedule');
    return hasAllKeys((node.metadata?.labels ?? EMPTY_LABELS) as Labels, constraints) ? 'Queue' : 'QueueSkip';
  }
}

/** Accounts for `updated` being added (+1) to or removed (-1) from `nodeInfo` (`updateWithPod`). */
function updateWithPod(s: PreFilterState, updated: KubeObject, preemptor: KubeObject, nodeInfo: NodeInfo, delta: number): void {
  const node = nodeInfo.node;
  if (!node || updated.metadata?.namespace !== preemptor.metadata?.namespace) return;
  const labels = nodeLabels(nodeInfo);
  if (!hasAllKeys(labels, s.constraints)) return;
  const inclusion = new Inclusion(preemptor);
  inclusion.reset(node);
  const podLabels = updated.metadata?.labels;
  for (let i = 0; i < s.constraints.length; i++) {
    const c = s.constraints[i]!;
    if (!c.selector.matches(podLabels)) continue;
    if (!inclusion.includes(c)) continue;
    s.counts[i]!.add(labels[c.topologyKey]!, delta);
  }
}

/**
 * The PodTopologySpread factory: args `{defaultConstraints: [...], defaultingType: 'System' |
 * 'List' (default 'System')}`. With default constraints, it starts shared informers of Services,
 * ReplicationControllers, ReplicaSets and StatefulSets (their selectors make the default
 * constraints' selector); without an API client, defaulting is skipped.
 */
export const podTopologySpreadFactory: SchedulerPluginFactory = {
  name: NAME,
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      defaultConstraints: {
        type: 'array',
        default: [],
        items: {
          type: 'object',
          required: ['maxSkew', 'topologyKey', 'whenUnsatisfiable'],
          additionalProperties: false,
          properties: {
            maxSkew: { type: 'integer', minimum: 1 },
            topologyKey: { type: 'string', minLength: 1 },
            whenUnsatisfiable: { type: 'string', enum: ['DoNotSchedule', 'ScheduleAnyway'] },
            minDomains: { type: 'integer', minimum: 1 },
            nodeAffinityPolicy: { type: 'string', enum: ['Honor', 'Ignore'] },
            nodeTaintsPolicy: { type: 'string', enum: ['Honor', 'Ignore'] },
            matchLabelKeys: { type: 'array', items: { type: 'string' } },
          },
        },
      },
      defaultingType: { type: 'string', enum: ['System', 'List'], default: 'System' },
    },
  },
  create(args, handle): FrameworkPlugin {
    return new PodTopologySpread(parseArgs(args), handle);
  },
};

/** The PodTopologySpread plugin (id `scheduler-pod-topology-spread`). */
export const podTopologySpreadPlugin = defineSchedulerPlugin({
  id: 'scheduler-pod-topology-spread',
  version: '0.1.0',
  description: 'PodTopologySpread: topology spread constraints (DoNotSchedule filters, ScheduleAnyway scores) with cluster defaults, Kubernetes v1.30 semantics.',
  factory: podTopologySpreadFactory,
});
