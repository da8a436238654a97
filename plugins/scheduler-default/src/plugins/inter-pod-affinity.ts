/**
 * InterPodAffinity: required pod affinity and anti-affinity as a filter, and preferred terms (the
 * incoming pod's and the existing pods') as a score, with the semantics of Kubernetes v1.30
 * (`pkg/scheduler/framework/plugins/interpodaffinity`).
 *
 * PreFilter counts, per topology pair (`topologyKey=value`), the existing pods whose required
 * anti-affinity matches the incoming pod, and the existing pods that match the incoming pod's
 * required affinity and anti-affinity terms; Filter then only looks the node's labels up in those
 * maps. PreScore sums the weights of the matching preferred terms per topology pair (and the
 * existing pods' required affinity terms with `hardPodAffinityWeight`); Score looks the node up.
 *
 * Those sums are kept across scheduling cycles per kind of incoming pod (its namespace, labels and
 * terms): a cycle only recomputes the contributions of the nodes whose `NodeInfo.generation`
 * changed, then copies the sums into the cycle state. Terms of the incoming pod with a
 * namespaceSelector are not cached (namespace labels can change at any time).
 *
 * @module
 */
import {
  compileLabelSelector,
  MAX_NODE_SCORE,
  PodInfo,
  Status,
  defineSchedulerPlugin,
  type AffinityTerm,
  type ClusterEventWithHint,
  type CycleState,
  type FrameworkHandle,
  type FrameworkPlugin,
  type KubeObject,
  type LabelSelector,
  type NodeInfo,
  type NodeScore,
  type PreFilterExtensions,
  type QueueingHint,
  type SchedulerPluginFactory,
  type WeightedAffinityTerm,
} from '@kubernel/sdk';

/** The plugin's name in profiles. */
const NAME = 'InterPodAffinity';
const PRE_FILTER_KEY = `PreFilter${NAME}`;
const PRE_SCORE_KEY = `PreScore${NAME}`;

/** Filter reason: no topology domain of the node holds pods matching all the pod's required affinity terms (UnschedulableAndUnresolvable). */
export const ERR_REASON_AFFINITY_RULES_NOT_MATCH = "node(s) didn't match pod affinity rules";
/** Filter reason: the node's topology domain holds a pod matching one of the pod's required anti-affinity terms (Unschedulable). */
export const ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH = "node(s) didn't match pod anti-affinity rules";
/** Filter reason: an existing pod in the node's topology domain has a required anti-affinity term matching the pod (Unschedulable). */
export const ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH = "node(s) didn't satisfy existing pods anti-affinity rules";

/** The args of InterPodAffinity (`InterPodAffinityArgs`). */
export interface InterPodAffinityArgs {
  /** The score weight of an existing pod's required affinity term that the incoming pod matches (0-100, default 1; 0 disables). */
  readonly hardPodAffinityWeight: number;
  /** Skip scoring entirely when the incoming pod has no preferred (anti-)affinity terms (default false). */
  readonly ignorePreferredTermsOfExistingPods: boolean;
}

type Labels = Readonly<Record<string, string>>;
const EMPTY_LABELS: Labels = Object.freeze({});

// ---------------------------------------------------------------------------------------------
// Label selectors, compiled once per selector object.

/** A compiled label selector: true when `labels` satisfy it. */
type Matcher = (labels: Labels | undefined) => boolean;
const compileSelector = compileLabelSelector;

/** True when `sel` has no requirement (it matches everything). */
function selectorIsEmpty(sel: LabelSelector): boolean {
  return Object.keys(sel.matchLabels ?? {}).length === 0 && (sel.matchExpressions ?? []).length === 0;
}

// ---------------------------------------------------------------------------------------------
// Affinity terms.

/** An {@link AffinityTerm} ready to match pods quickly. */
interface CompiledTerm {
  readonly topologyKey: string;
  readonly namespaces: ReadonlySet<string>;
  /** The namespaceSelector; undefined when the term has none. */
  readonly nsSelector?: Matcher;
  /** The namespaceSelector is empty: every namespace. */
  readonly nsAll: boolean;
  /** The label selector; undefined (absent) matches no pod. */
  readonly selector?: Matcher;
}

const compiledTerms = new WeakMap<AffinityTerm, CompiledTerm>();

function compileTerm(t: AffinityTerm): CompiledTerm {
  let c = compiledTerms.get(t);
  if (c) return c;
  c = {
    topologyKey: t.topologyKey,
    namespaces: t.namespaces,
    ...(t.namespaceSelector !== undefined ? { nsSelector: compileSelector(t.namespaceSelector) } : {}),
    nsAll: t.namespaceSelector !== undefined && selectorIsEmpty(t.namespaceSelector),
    ...(t.selector !== undefined ? { selector: compileSelector(t.selector) } : {}),
  };
  compiledTerms.set(t, c);
  return c;
}

/**
 * Whether an existing pod's term matches `pod` (Kubernetes' `AffinityTerm.Matches(pod,
 * nsLabels)`): `nsLabels` are the labels of `pod`'s namespace (empty when unknown).
 */
function existingTermMatches(t: CompiledTerm, pod: KubeObject, nsLabels: Labels): boolean {
  if (!t.namespaces.has(String(pod.metadata?.namespace ?? ''))) {
    if (t.nsSelector === undefined) return false;
    if (!t.nsAll && !t.nsSelector(nsLabels)) return false;
  }
  return t.selector !== undefined && t.selector(pod.metadata?.labels);
}

/**
 * A term of the pod being scheduled. Kubernetes resolves its namespaceSelector into the list of
 * existing namespaces it selects (an empty selector keeps matching every namespace); here the
 * selector is evaluated on the namespace's labels (`handle.namespaceLabels`, unknown namespaces
 * are not selected), memoized per namespace for the cycle.
 */
class IncomingTerm {
  private memo?: Map<string, boolean>;
  constructor(
    readonly term: CompiledTerm,
    private readonly namespaceLabels: (ns: string) => Labels | undefined,
    readonly weight = 0,
  ) {}

  get topologyKey(): string {
    return this.term.topologyKey;
  }

  private namespaceSelected(ns: string): boolean {
    const t = this.term;
    if (t.namespaces.has(ns)) return true;
    if (t.nsSelector === undefined) return false;
    if (t.nsAll) return true;
    const memo = (this.memo ??= new Map());
    let ok = memo.get(ns);
    if (ok === undefined) {
      const labels = this.namespaceLabels(ns);
      ok = labels !== undefined && t.nsSelector(labels);
      memo.set(ns, ok);
    }
    return ok;
  }

  matches(pod: KubeObject): boolean {
    const t = this.term;
    if (t.selector === undefined) return false;
    if (!this.namespaceSelected(String(pod.metadata?.namespace ?? ''))) return false;
    return t.selector(pod.metadata?.labels);
  }
}

/** True when `pod` matches every term (false for no terms). */
function matchesAll(terms: readonly IncomingTerm[], pod: KubeObject): boolean {
  if (terms.length === 0) return false;
  for (let i = 0; i < terms.length; i++) if (!terms[i]!.matches(pod)) return false;
  return true;
}

/**
 * A key for pods' terms (with their weights) when they can be cached: undefined when one has a
 * namespaceSelector (its answer depends on namespaces' labels, which can change at any time).
 * `null` entries separate lists.
 */
function termsSignature(terms: readonly (AffinityTerm | WeightedAffinityTerm | null)[]): string | undefined {
  const parts: unknown[] = [];
  for (const t of terms) {
    if (t === null) {
      parts.push(null);
      continue;
    }
    if (t.namespaceSelector !== undefined) return undefined;
    parts.push([t.topologyKey, [...t.namespaces].sort(), t.selector ?? null, (t as Partial<WeightedAffinityTerm>).weight ?? 0]);
  }
  return JSON.stringify(parts);
}

function nodeLabels(ni: NodeInfo): Labels {
  return (ni.node?.metadata?.labels ?? EMPTY_LABELS) as Labels;
}

function hasAnyLabel(labels: Labels): boolean {
  for (const _k in labels) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------
// Topology pair counts.

/**
 * Counts (or weights) per topology pair: per topology key, per value. Values are numbered per key
 * (`ids`, append-only and shared with copies) so a copy is a few array slices.
 */
class PairCounts {
  private readonly keys: string[];
  private readonly ids: Map<string, number>[];
  private readonly counts: number[][];
  /** The number of pairs with a non-zero count. */
  pairs: number;

  constructor(keys: string[] = [], ids: Map<string, number>[] = [], counts: number[][] = [], pairs = 0) {
    this.keys = keys;
    this.ids = ids;
    this.counts = counts;
    this.pairs = pairs;
  }

  /** The index of `key` (added when missing). */
  keyIndex(key: string): number {
    const keys = this.keys;
    for (let k = 0; k < keys.length; k++) if (keys[k] === key) return k;
    keys.push(key);
    this.ids.push(new Map());
    this.counts.push([]);
    return keys.length - 1;
  }

  /** The id of `value` under key index `k` (allocated when missing). */
  valueId(k: number, value: string): number {
    const ids = this.ids[k]!;
    let d = ids.get(value);
    if (d === undefined) ids.set(value, (d = ids.size));
    return d;
  }

  /** Adds `delta` to pair (`k`, `d`). */
  addAt(k: number, d: number, delta: number): void {
    const c = this.counts[k]!;
    const before = c[d] ?? 0;
    const after = before + delta;
    c[d] = after;
    if (before === 0 && after !== 0) this.pairs++;
    else if (before !== 0 && after === 0) this.pairs--;
  }

  /** Adds `delta` to the pair (`key`, the node's value of `key`), when the node has that label. */
  update(key: string, labels: Labels, delta: number): void {
    const value = labels[key];
    if (typeof value !== 'string') return;
    const k = this.keyIndex(key);
    this.addAt(k, this.valueId(k, value), delta);
  }

  count(key: string, value: string): number {
    const keys = this.keys;
    for (let k = 0; k < keys.length; k++) {
      if (keys[k] !== key) continue;
      const d = this.ids[k]!.get(value);
      return d === undefined ? 0 : (this.counts[k]![d] ?? 0);
    }
    return 0;
  }

  /** The sum over the node's pairs (Score). */
  sumOn(labels: Labels): number {
    let sum = 0;
    for (let k = 0; k < this.keys.length; k++) {
      const v = labels[this.keys[k]!];
      if (typeof v !== 'string') continue;
      const d = this.ids[k]!.get(v);
      if (d !== undefined) sum += this.counts[k]![d] ?? 0;
    }
    return sum;
  }

  /** True when a pair made of one of the node's labels has a positive count. */
  anyPositive(labels: Labels): boolean {
    for (let k = 0; k < this.keys.length; k++) {
      const v = labels[this.keys[k]!];
      if (typeof v !== 'string') continue;
      const d = this.ids[k]!.get(v);
      if (d !== undefined && (this.counts[k]![d] ?? 0) > 0) return true;
    }
    return false;
  }

  clone(): PairCounts {
    return new PairCounts([...this.keys], [...this.ids], this.counts.map((c) => c.slice()), this.pairs);
  }
}

/** Receives a node's contributions to some {@link PairCounts} (see {@link NodeContributions}). */
class Emitter {
  labels: Labels = EMPTY_LABELS;
  /** Contributions of the current node: (target, key index, value id, delta) quadruples; undefined: not recorded. */
  out?: number[];
  /** Whether the current node contributed anything. */
  emitted = false;

  constructor(readonly targets: readonly PairCounts[]) {}

  /** Adds `delta` to target `t`'s pair (`key`, the node's value); false when the node lacks the label. */
  emit(t: number, key: string, delta: number): boolean {
    const value = this.labels[key];
    if (typeof value !== 'string') return false;
    const target = this.targets[t]!;
    const k = target.keyIndex(key);
    const d = target.valueId(k, value);
    target.addAt(k, d, delta);
    this.out?.push(t, k, d, delta);
    this.emitted = true;
    return true;
  }
}

/** Emits the contributions of one node (its labels are set on the emitter). */
type NodeCompute = (ni: NodeInfo, e: Emitter) => void;

/** Runs `compute` on every node of `list` into `targets` (nothing kept). */
function accumulate(list: readonly NodeInfo[], targets: readonly PairCounts[], compute: NodeCompute): boolean {
  const e = new Emitter(targets);
  for (let i = 0; i < list.length; i++) {
    const ni = list[i]!;
    if (!ni.node) continue;
    e.labels = nodeLabels(ni);
    compute(ni, e);
  }
  return e.emitted;
}

/**
 * Per-node contributions to some {@link PairCounts}, kept across scheduling cycles for pods of the
 * same kind (same labels, namespace and terms: the cache key): a node's contribution is recomputed
 * only when its generation changed, so a cycle costs one check per node.
 */
class NodeContributions {
  readonly targets: PairCounts[];
  private readonly gens: number[] = [];
  private readonly contrib: (number[] | undefined)[] = [];
  /** Nodes contributing something. */
  private contributing = 0;

  constructor(targets: number) {
    this.targets = Array.from({ length: targets }, () => new PairCounts());
  }

  /** Brings the targets up to date with `list`; true when some node contributes. */
  sync(list: readonly NodeInfo[], compute: NodeCompute): boolean {
    const e = new Emitter(this.targets);
    const gens = this.gens;
    const n = list.length;
    for (let i = 0; i < n; i++) {
      const ni = list[i]!;
      if (gens[i] === ni.generation) continue;
      this.retire(i);
      gens[i] = ni.generation;
      if (!ni.node) continue;
      e.labels = nodeLabels(ni);
      e.out = [];
      e.emitted = false;
      compute(ni, e);
      if (e.emitted) {
        this.contrib[i] = e.out;
        this.contributing++;
      }
    }
    if (gens.length > n) {
      for (let i = n; i < gens.length; i++) this.retire(i);
      gens.length = n;
      this.contrib.length = n;
    }
    return this.contributing > 0;
  }

  private retire(i: number): void {
    const old = this.contrib[i];
    if (old === undefined) return;
    for (let q = 0; q < old.length; q += 4) this.targets[old[q]!]!.addAt(old[q + 1]!, old[q + 2]!, -old[q + 3]!);
    this.contrib[i] = undefined;
    this.contributing--;
  }
}

/** How many {@link NodeContributions} (kinds of pods) a plugin keeps across cycles. */
const CONTRIBUTIONS_CACHE_SIZE = 64;
/** Below this many nodes to visit, computing afresh beats checking every node's generation. */
const DIRECT_THRESHOLD = 64;

/** What PreFilter computes for Filter (cloned for preemption's what-ifs). */
class PreFilterState {
  constructor(
    /** The pod being scheduled. */
    readonly pod: KubeObject,
    readonly affinityTerms: readonly IncomingTerm[],
    readonly antiAffinityTerms: readonly IncomingTerm[],
    /** The labels of the pod's namespace (for existing pods' namespaceSelectors). */
    readonly namespaceLabels: Labels,
    /** Whether the pod matches all its own required affinity terms. */
    readonly selfMatchesAffinity: boolean,
    /** Existing pods whose required anti-affinity terms match the pod. */
    readonly existingAntiAffinityCounts: PairCounts,
    /** Existing pods matching all the pod's required affinity terms. */
    readonly affinityCounts: PairCounts,
    /** Existing pods matching the pod's required anti-affinity terms (per term). */
    readonly antiAffinityCounts: PairCounts,
  ) {}

  clone(): PreFilterState {
    return new PreFilterState(this.pod, this.affinityTerms, this.antiAffinityTerms, this.namespaceLabels, this.selfMatchesAffinity, this.existingAntiAffinityCounts.clone(), this.affinityCounts.clone(), this.antiAffinityCounts.clone());
  }

  /** Accounts for `p` being added (+1) to or removed (-1) from the node with `labels`. */
  updateWithPod(p: PodInfo, labels: Labels, multiplier: number): void {
    for (const t of p.requiredAntiAffinityTerms) {
      if (existingTermMatches(compileTerm(t), this.pod, this.namespaceLabels)) this.existingAntiAffinityCounts.update(t.topologyKey, labels, multiplier);
    }
    if (matchesAll(this.affinityTerms, p.pod)) for (const t of this.affinityTerms) this.affinityCounts.update(t.topologyKey, labels, multiplier);
    for (const t of this.antiAffinityTerms) if (t.matches(p.pod)) this.antiAffinityCounts.update(t.topologyKey, labels, multiplier);
  }
}

/** Weights per topology pair, computed by PreScore (read-only: shared by clones). */
class PreScoreState {
  constructor(readonly weights: PairCounts) {}

  clone(): PreScoreState {
    return this;
  }
}

function parseArgs(raw: unknown): InterPodAffinityArgs {
  const a = (raw ?? {}) as Partial<Record<keyof InterPodAffinityArgs, unknown>>;
  if (typeof a !== 'object' || Array.isArray(a)) throw new Error(`${NAME} args must be an object`);
  const hardPodAffinityWeight = a.hardPodAffinityWeight ?? 1;
  if (typeof hardPodAffinityWeight !== 'number' || !Number.isInteger(hardPodAffinityWeight) || hardPodAffinityWeight < 0 || hardPodAffinityWeight > 100) {
    throw new Error(`${NAME} args: hardPodAffinityWeight must be an integer in 0-100, got ${JSON.stringify(a.hardPodAffinityWeight)}`);
  }
  const ignorePreferredTermsOfExistingPods = a.ignorePreferredTermsOfExistingPods ?? false;
  if (typeof ignorePreferredTermsOfExistingPods !== 'boolean') throw new Error(`${NAME} args: ignorePreferredTermsOfExistingPods must be a boolean`);
  return { hardPodAffinityWeight, ignorePreferredTermsOfExistingPods };
}

class InterPodAffinity implements FrameworkPlugin {
  readonly name = NAME;
  private readonly extensions: PreFilterExtensions;
  private readonly namespaceLabelsOf: (ns: string) => Labels | undefined;
  /** Node contributions by kind of pod, least recently used first. */
  private readonly cache = new Map<string, NodeContributions>();

  constructor(
    private readonly args: InterPodAffinityArgs,
    private readonly handle: FrameworkHandle,
  ) {
    this.namespaceLabelsOf = (ns) => handle.namespaceLabels(ns);
    const update = (state: CycleState, p: PodInfo, nodeInfo: NodeInfo, multiplier: number): Status | undefined => {
      const s = state.read<PreFilterState>(PRE_FILTER_KEY);
      if (s) s.updateWithPod(p, nodeLabels(nodeInfo), multiplier);
      return undefined;
    };
    this.extensions = {
      addPod: (state, _pod, p, nodeInfo) => update(state, p, nodeInfo, 1),
      removePod: (state, _pod, p, nodeInfo) => update(state, p, nodeInfo, -1),
    };
  }

  /** The cached contributions under `key` (least recently used evicted). */
  private contributions(key: string, targets: number): NodeContributions {
    let c = this.cache.get(key);
    if (c) {
      this.cache.delete(key);
    } else {
      c = new NodeContributions(targets);
      if (this.cache.size >= CONTRIBUTIONS_CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
    }
    this.cache.set(key, c);
    return c;
  }

  preFilter(state: CycleState, pod: KubeObject, podInfo: PodInfo): { status?: Status } | undefined {
    const snapshot = this.handle.snapshot();
    const list = snapshot.list();
    const ns = podInfo.namespace;
    const nsLabels = this.handle.namespaceLabels(ns) ?? EMPTY_LABELS;
    const affinityTerms = podInfo.requiredAffinityTerms.map((t) => new IncomingTerm(compileTerm(t), this.namespaceLabelsOf));
    const antiAffinityTerms = podInfo.requiredAntiAffinityTerms.map((t) => new IncomingTerm(compileTerm(t), this.namespaceLabelsOf));

    // Existing pods' required anti-affinity terms that match the incoming pod.
    const existingCompute: NodeCompute = (ni, e) => {
      for (const ep of ni.podsWithRequiredAntiAffinity) {
        const terms = ep.requiredAntiAffinityTerms;
        for (let i = 0; i < terms.length; i++) {
          const t = compileTerm(terms[i]!);
          if (existingTermMatches(t, pod, nsLabels)) e.emit(0, t.topologyKey, 1);
        }
      }
    };
    let existing: PairCounts;
    const antiNodes = snapshot.havePodsWithRequiredAntiAffinity();
    if (antiNodes.length < DIRECT_THRESHOLD) {
      existing = new PairCounts();
      accumulate(antiNodes, [existing], existingCompute);
    } else {
      const c = this.contributions(`E\u0000${ns}\u0000${JSON.stringify(pod.metadata?.labels ?? {})}\u0000${JSON.stringify(nsLabels)}`, 1);
      c.sync(list, existingCompute);
      existing = c.targets[0]!.clone();
    }

    // Existing pods matching the incoming pod's required affinity (all terms) and anti-affinity (per term).
    let affinity = new PairCounts();
    let anti = new PairCounts();
    const na = affinityTerms.length;
    const nanti = antiAffinityTerms.length;
    if (na > 0 || nanti > 0) {
      const compute: NodeCompute = (ni, e) => {
        const pods = ni.pods;
        for (let p = 0; p < pods.length; p++) {
          const existingPod = pods[p]!.pod;
          if (na > 0 && matchesAll(affinityTerms, existingPod)) for (let i = 0; i < na; i++) e.emit(0, affinityTerms[i]!.topologyKey, 1);
          for (let i = 0; i < nanti; i++) {
            const t = antiAffinityTerms[i]!;
            if (t.matches(existingPod)) e.emit(1, t.topologyKey, 1);
          }
        }
      };
      const key = termsSignature([...podInfo.requiredAffinityTerms, null, ...podInfo.requiredAntiAffinityTerms]);
      if (key === undefined) {
        accumulate(list, [affinity, anti], compute);
      } else {
        const c = this.contributions(`I\u0000${ns}\u0000${key}`, 2);
        c.sync(list, compute);
        affinity = c.targets[0]!.clone();
        anti = c.targets[1]!.clone();
      }
    }

    if (existing.pairs === 0 && na === 0 && nanti === 0) return { status: Status.skip() };
    state.write(PRE_FILTER_KEY, new PreFilterState(pod, affinityTerms, antiAffinityTerms, nsLabels, matchesAll(affinityTerms, pod), existing, affinity, anti));
    return undefined;
  }

  preFilterExtensions(): PreFilterExtensions {
    return this.extensions;
  }

  filter(state: CycleState, _pod: KubeObject, _podInfo: PodInfo, nodeInfo: NodeInfo): Status | undefined {
    const s = state.read<PreFilterState>(PRE_FILTER_KEY);
    if (!s) return undefined;
    const labels = nodeLabels(nodeInfo);
    if (!satisfiesPodAffinity(s, labels)) return new Status('UnschedulableAndUnresolvable', [ERR_REASON_AFFINITY_RULES_NOT_MATCH], NAME);
    if (s.antiAffinityCounts.pairs > 0) {
      const terms = s.antiAffinityTerms;
      for (let i = 0; i < terms.length; i++) {
        const key = terms[i]!.topologyKey;
        const v = labels[key];
        if (typeof v === 'string' && s.antiAffinityCounts.count(key, v) > 0) return new Status('Unschedulable', [ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH], NAME);
      }
    }
    if (s.existingAntiAffinityCounts.pairs > 0 && s.existingAntiAffinityCounts.anyPositive(labels)) {
      return new Status('Unschedulable', [ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH], NAME);
    }
    return undefined;
  }

  preScore(state: CycleState, pod: KubeObject, podInfo: PodInfo, nodes: readonly NodeInfo[]): Status | undefined {
    if (nodes.length === 0) return Status.skip();
    const hasConstraints = podInfo.preferredAffinityTerms.length > 0 || podInfo.preferredAntiAffinityTerms.length > 0;
    if (this.args.ignorePreferredTermsOfExistingPods && !hasConstraints) return Status.skip();
    const snapshot = this.handle.snapshot();
    const preferred = podInfo.preferredAffinityTerms.map((t) => new IncomingTerm(compileTerm(t), this.namespaceLabelsOf, t.weight));
    const preferredAnti = podInfo.preferredAntiAffinityTerms.map((t) => new IncomingTerm(compileTerm(t), this.namespaceLabelsOf, t.weight));
    const ns = podInfo.namespace;
    const nsLabels = this.handle.namespaceLabels(ns) ?? EMPTY_LABELS;
    const hard = this.args.hardPodAffinityWeight;
    const compute: NodeCompute = (ni, e) => {
      if (!hasAnyLabel(e.labels)) return;
      // Unless the pod has preferred terms, only pods with affinity can contribute.
      const pods = hasConstraints ? ni.pods : ni.podsWithAffinity;
      for (let p = 0; p < pods.length; p++) {
        const ep = pods[p]!;
        // The incoming pod's preferred terms against the existing pod.
        for (let i = 0; i < preferred.length; i++) {
          const t = preferred[i]!;
          if (t.matches(ep.pod)) e.emit(0, t.topologyKey, t.weight);
        }
        for (let i = 0; i < preferredAnti.length; i++) {
          const t = preferredAnti[i]!;
          if (t.matches(ep.pod)) e.emit(0, t.topologyKey, -t.weight);
        }
        // The existing pod's terms against the incoming pod.
        if (hard > 0) {
          for (const term of ep.requiredAffinityTerms) if (existingTermMatches(compileTerm(term), pod, nsLabels)) e.emit(0, term.topologyKey, hard);
        }
        for (const term of ep.preferredAffinityTerms) if (existingTermMatches(compileTerm(term), pod, nsLabels)) e.emit(0, term.topologyKey, term.weight);
        for (const term of ep.preferredAntiAffinityTerms) if (existingTermMatches(compileTerm(term), pod, nsLabels)) e.emit(0, term.topologyKey, -term.weight);
      }
    };
    const affinityNodes = hasConstraints ? undefined : snapshot.havePodsWithAffinity();
    const key = termsSignature([...podInfo.preferredAffinityTerms, null, ...podInfo.preferredAntiAffinityTerms]);
    let weights: PairCounts;
    let any: boolean;
    if (key === undefined || (affinityNodes && affinityNodes.length < DIRECT_THRESHOLD)) {
      weights = new PairCounts();
      any = accumulate(affinityNodes ?? snapshot.list(), [weights], compute);
    } else {
      const c = this.contributions(`S\u0000${ns}\u0000${JSON.stringify(pod.metadata?.labels ?? {})}\u0000${JSON.stringify(nsLabels)}\u0000${key}`, 1);
      any = c.sync(snapshot.list(), compute);
      weights = c.targets[0]!.clone();
    }
    if (!any) return Status.skip();
    state.write(PRE_SCORE_KEY, new PreScoreState(weights));
    return undefined;
  }

  score(state: CycleState, _pod: KubeObject, _podInfo: PodInfo, nodeInfo: NodeInfo): number {
    const s = state.read<PreScoreState>(PRE_SCORE_KEY);
    return s ? s.weights.sumOn(nodeLabels(nodeInfo)) : 0;
  }

  normalizeScore(state: CycleState, _pod: KubeObject, scores: NodeScore[]): Status | undefined {
    if (!state.read<PreScoreState>(PRE_SCORE_KEY)) return undefined;
    let min = Infinity;
    let max = -Infinity;
    for (const x of scores) {
      if (x.score > max) max = x.score;
      if (x.score < min) min = x.score;
    }
    const diff = max - min;
    for (const x of scores) x.score = diff > 0 ? Math.trunc(MAX_NODE_SCORE * ((x.score - min) / diff)) : 0;
    return undefined;
  }

  eventsToRegister(): readonly ClusterEventWithHint[] {
    return [
      // Add: a pod matching the pod's affinity may make it fit; Delete: a pod matching its
      // anti-affinity (or whose anti-affinity matched it) leaving; UpdatePodLabel: either.
      { event: { resource: 'Pod', actions: ['Add', 'Delete', 'UpdatePodLabel'] }, hint: (pod, oldObj, newObj) => this.afterPodChange(pod, oldObj, newObj) },
      // A node gaining the topology label of one of the pod's terms.
      { event: { resource: 'Node', actions: ['Add', 'UpdateNodeLabel'] }, hint: (pod, _oldObj, newObj) => this.afterNodeChange(pod, newObj) },
    ];
  }

  private incomingTerms(pod: KubeObject): { info: PodInfo; terms: IncomingTerm[]; antiTerms: IncomingTerm[] } {
    const info = new PodInfo(pod);
    return {
      info,
      terms: info.requiredAffinityTerms.map((t) => new IncomingTerm(compileTerm(t), this.namespaceLabelsOf)),
      antiTerms: info.requiredAntiAffinityTerms.map((t) => new IncomingTerm(compileTerm(t), this.namespaceLabelsOf)),
    };
  }

  private afterPodChange(pod: KubeObject, oldObj: KubeObject | undefined, newObj: KubeObject | undefined): QueueingHint {
    const unscheduled = (p: KubeObject | undefined): boolean => p !== undefined && !(p.spec as { nodeName?: string } | undefined)?.nodeName;
    if (unscheduled(newObj) || unscheduled(oldObj)) return 'QueueSkip';
    const { terms, antiTerms } = this.incomingTerms(pod);
    if (oldObj && newObj) {
      if (!matchesAll(terms, oldObj) && matchesAll(terms, newObj)) return 'Queue';
      if (matchesAll(antiTerms, oldObj) && !matchesAll(antiTerms, newObj)) return 'Queue';
      return 'QueueSkip';
    }
    if (newObj) return matchesAll(terms, newObj) ? 'Queue' : 'QueueSkip';
    if (!oldObj) return 'Queue';
    if (matchesAll(antiTerms, oldObj)) return 'Queue';
    // Also (beyond v1.30): the deleted pod's own required anti-affinity may have kept the pod out.
    const nsLabels = this.handle.namespaceLabels(String(pod.metadata?.namespace ?? '')) ?? EMPTY_LABELS;
    for (const t of new PodInfo(oldObj).requiredAntiAffinityTerms) if (existingTermMatches(compileTerm(t), pod, nsLabels)) return 'Queue';
    return 'QueueSkip';
  }

  private afterNodeChange(pod: KubeObject, newObj: KubeObject | undefined): QueueingHint {
    if (!newObj) return 'Queue';
    const labels = (newObj.metadata?.labels ?? EMPTY_LABELS) as Labels;
    const { terms, antiTerms } = this.incomingTerms(pod);
    for (const t of terms) if (typeof labels[t.topologyKey] === 'string') return 'Queue';
    for (const t of antiTerms) if (typeof labels[t.topologyKey] === 'string') return 'Queue';
    return 'QueueSkip';
  }
}

/** Whether the node satisfies the pod's required affinity terms (Kubernetes' `satisfyPodAffinity`). */
function satisfiesPodAffinity(s: PreFilterState, labels: Labels): boolean {
  const terms = s.affinityTerms;
  let podsExist = true;
  for (let i = 0; i < terms.length; i++) {
    const key = terms[i]!.topologyKey;
    const v = labels[key];
    // Every topology label must exist on the node.
    if (typeof v !== 'string') return false;
    if (s.affinityCounts.count(key, v) <= 0) podsExist = false;
  }
  if (podsExist) return true;
  // The first pod of a group with affinity to itself: allowed when no pod matches anywhere.
  return s.affinityCounts.pairs === 0 && s.selfMatchesAffinity;
}

/**
 * The InterPodAffinity factory: args `{hardPodAffinityWeight (0-100, default 1),
 * ignorePreferredTermsOfExistingPods (default false)}`.
 */
export const interPodAffinityFactory: SchedulerPluginFactory = {
  name: NAME,
  argsSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      hardPodAffinityWeight: { type: 'integer', minimum: 0, maximum: 100, default: 1 },
      ignorePreferredTermsOfExistingPods: { type: 'boolean', default: false },
    },
  },
  create(args, handle): FrameworkPlugin {
    return new InterPodAffinity(parseArgs(args), handle);
  },
};

/** The InterPodAffinity plugin (id `scheduler-inter-pod-affinity`). */
export const interPodAffinityPlugin = defineSchedulerPlugin({
  id: 'scheduler-inter-pod-affinity',
  version: '0.1.0',
  description: 'InterPodAffinity: required pod affinity/anti-affinity (Filter) and preferred terms (Score), Kubernetes v1.30 semantics.',
  factory: interPodAffinityFactory,
});
