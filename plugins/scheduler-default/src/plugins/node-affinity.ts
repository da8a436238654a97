/**
 * NodeAffinity (Kubernetes `pkg/scheduler/framework/plugins/nodeaffinity`):
 * - PreFilter: parses the pod's `spec.nodeSelector` and required node affinity once per cycle
 *   (Skip when there is neither, nor a scheduler-enforced `addedAffinity`), and narrows the nodes
 *   when every required term pins `metadata.name` with a `matchFields` `In` (UnschedulableAndUnresolvable
 *   `pod affinity terms conflict` when those names cannot all hold);
 * - Filter: UnschedulableAndUnresolvable `node(s) didn't match Pod's node affinity/selector` (or
 *   `node(s) didn't match scheduler-enforced node affinity` for `addedAffinity`);
 * - PreScore/Score: the sum of the weights of the preferred terms (the pod's and `addedAffinity`'s)
 *   the node matches; NormalizeScore: Kubernetes' default normalization.
 *
 * Selectors are compiled with Kubernetes' parsing rules: an empty term matches nothing, a term
 * that does not parse (an unknown operator, `In` without values, `Gt` with a non-integer, a
 * `matchFields` requirement without exactly one value) matches nothing, and `matchFields` are
 * checked only against a node that has a name.
 *
 * @module
 */
import {
  defaultNormalizeScore,
  defineSchedulerPlugin,
  MAX_NODE_SCORE,
  Status,
  type ClusterEventWithHint,
  type FrameworkPlugin,
  type KubeObject,
  type NodeScore,
  type SchedulerPluginFactory,
} from '@kubernel/sdk';

/** The plugin's name in profiles. */
const NAME = 'NodeAffinity';
const PRE_FILTER_KEY = 'PreFilter' + NAME;
const PRE_SCORE_KEY = 'PreScore' + NAME;

/** Kubernetes' nodeaffinity.ErrReasonPod. */
export const ERR_REASON_POD = "node(s) didn't match Pod's node affinity/selector";
/** Kubernetes' errReasonEnforced (the profile's `addedAffinity` does not match). */
export const ERR_REASON_ENFORCED = "node(s) didn't match scheduler-enforced node affinity";
/** Kubernetes' errReasonConflict (required terms pin disjoint node names). */
export const ERR_REASON_CONFLICT = 'pod affinity terms conflict';

type Obj = Record<string, unknown>;

/** Args of NodeAffinity (Kubernetes' NodeAffinityArgs). */
export interface NodeAffinityArgs {
  /** Node affinity applied to every pod of the profile, on top of the pod's own (a `v1.NodeAffinity`). */
  readonly addedAffinity?: Obj;
}

/** JSON Schema of {@link NodeAffinityArgs}. */
export const NODE_AFFINITY_ARGS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    addedAffinity: {
      type: 'object',
      additionalProperties: false,
      properties: {
        requiredDuringSchedulingIgnoredDuringExecution: { type: 'object' },
        preferredDuringSchedulingIgnoredDuringExecution: { type: 'array', items: { type: 'object' } },
      },
    },
  },
} as const;

// ---- Compiled node selectors -----------------------------------------------------------------

const enum Op {
  In,
  NotIn,
  Exists,
  DoesNotExist,
  Gt,
  Lt,
}

interface Requirement {
  readonly key: string;
  readonly op: Op;
  readonly values: readonly string[];
  /** The integer operand of Gt/Lt. */
  readonly num: number;
}

/** A parsed NodeSelectorTerm; `errors` non-empty when it does not parse (then it matches nothing). */
interface Term {
  readonly labels: readonly Requirement[];
  readonly fields: readonly Requirement[];
  readonly errors: readonly string[];
}

interface WeightedTerm extends Term {
  readonly weight: number;
}

const INT = /^[+-]?\d+$/;

function parseInteger(s: string): number | undefined {
  return INT.test(s) ? Number(s) : undefined;
}

function parseLabelRequirement(r: Obj, path: string, errors: string[]): Requirement | undefined {
  const key = typeof r.key === 'string' ? r.key : '';
  const values = Array.isArray(r.values) ? (r.values as unknown[]).map(String) : [];
  const bad = (why: string): undefined => void errors.push(`${path}: ${why}`);
  if (key === '') return bad('key: must not be empty');
  switch (r.operator) {
    case 'In':
    case 'NotIn':
      if (values.length === 0) return bad("values: for 'in', 'notin' operators, values set can't be empty");
      return { key, op: r.operator === 'In' ? Op.In : Op.NotIn, values, num: 0 };
    case 'Exists':
    case 'DoesNotExist':
      if (values.length !== 0) return bad("values: values set must be empty for exists and does not exist");
      return { key, op: r.operator === 'Exists' ? Op.Exists : Op.DoesNotExist, values, num: 0 };
    case 'Gt':
    case 'Lt': {
      if (values.length !== 1) return bad("values: for 'Gt', 'Lt' operators, exactly one value is required");
      const num = parseInteger(values[0]!);
      if (num === undefined) return bad("values[0]: for 'Gt', 'Lt' operators, the value must be an integer");
      return { key, op: r.operator === 'Gt' ? Op.Gt : Op.Lt, values, num };
    }
    default:
      return bad(`operator: Unsupported value: ${JSON.stringify(r.operator)}`);
  }
}

function parseFieldRequirement(r: Obj, path: string, errors: string[]): Requirement | undefined {
  const key = typeof r.key === 'string' ? r.key : '';
  const values = Array.isArray(r.values) ? (r.values as unknown[]).map(String) : [];
  if (r.operator !== 'In' && r.operator !== 'NotIn') return void errors.push(`${path}.operator: Unsupported value: ${JSON.stringify(r.operator)}`);
  if (values.length !== 1) return void errors.push(`${path}.values: must have one element`);
  return { key, op: r.operator === 'In' ? Op.In : Op.NotIn, values, num: 0 };
}

function isEmptyTerm(t: Obj): boolean {
  return !(Array.isArray(t.matchExpressions) && t.matchExpressions.length > 0) && !(Array.isArray(t.matchFields) && t.matchFields.length > 0);
}

function parseTerm(t: Obj, path: string): Term {
  const errors: string[] = [];
  const labels: Requirement[] = [];
  const fields: Requirement[] = [];
  ((t.matchExpressions ?? []) as Obj[]).forEach((r, i) => {
    const req = parseLabelRequirement(r ?? {}, `${path}.matchExpressions[${i}]`, errors);
    if (req) labels.push(req);
  });
  ((t.matchFields ?? []) as Obj[]).forEach((r, i) => {
    const req = parseFieldRequirement(r ?? {}, `${path}.matchFields[${i}]`, errors);
    if (req) fields.push(req);
  });
  return { labels, fields, errors };
}

/** The terms of a `v1.NodeSelector` (empty terms dropped: they match nothing). */
function parseNodeSelector(ns: Obj, path: string): Term[] {
  const out: Term[] = [];
  ((ns.nodeSelectorTerms ?? []) as Obj[]).forEach((t, i) => {
    if (t && !isEmptyTerm(t)) out.push(parseTerm(t, `${path}.nodeSelectorTerms[${i}]`));
  });
  return out;
}

/** Preferred terms (weight 0 and empty terms dropped, as Kubernetes does); `errors` collects parse errors. */
function parsePreferredTerms(terms: readonly Obj[], path: string, errors: string[]): WeightedTerm[] {
  const out: WeightedTerm[] = [];
  terms.forEach((p, i) => {
    const weight = Number(p?.weight ?? 0);
    const pref = (p?.preference ?? {}) as Obj;
    if (weight === 0 || isEmptyTerm(pref)) return;
    const term = parseTerm(pref, `${path}[${i}].preference`);
    if (term.errors.length > 0) errors.push(...term.errors);
    else out.push({ ...term, weight });
  });
  return out;
}

const hasOwn = Object.prototype.hasOwnProperty;

function requirementMatches(r: Requirement, labels: Record<string, string> | undefined): boolean {
  // Label values are strings; anything else read here (inherited members) is not a label.
  const raw: unknown = labels === undefined ? undefined : labels[r.key];
  const value = typeof raw === 'string' && hasOwn.call(labels, r.key) ? raw : undefined;
  switch (r.op) {
    case Op.In:
      return value !== undefined && r.values.includes(value);
    case Op.NotIn:
      return value === undefined || !r.values.includes(value);
    case Op.Exists:
      return value !== undefined;
    case Op.DoesNotExist:
      return value === undefined;
    case Op.Gt:
    case Op.Lt: {
      if (value === undefined) return false;
      const v = parseInteger(value);
      if (v === undefined) return false;
      return r.op === Op.Gt ? v > r.num : v < r.num;
    }
  }
}

function fieldMatches(r: Requirement, nodeName: string): boolean {
  // The only node field is metadata.name; other keys read as "".
  const v = r.key === 'metadata.name' ? nodeName : '';
  return r.op === Op.In ? v === r.values[0] : v !== r.values[0];
}

function termMatches(t: Term, labels: Record<string, string> | undefined, nodeName: string): boolean {
  if (t.errors.length > 0) return false;
  for (let i = 0; i < t.labels.length; i++) if (!requirementMatches(t.labels[i]!, labels)) return false;
  if (nodeName !== '') for (let i = 0; i < t.fields.length; i++) if (!fieldMatches(t.fields[i]!, nodeName)) return false;
  return true;
}

function anyTermMatches(terms: readonly Term[], node: KubeObject): boolean {
  const labels = node.metadata?.labels;
  const name = typeof node.metadata?.name === 'string' ? node.metadata.name : '';
  for (let i = 0; i < terms.length; i++) if (termMatches(terms[i]!, labels, name)) return true;
  return false;
}

function preferredScore(terms: readonly WeightedTerm[], node: KubeObject): number {
  const labels = node.metadata?.labels;
  const name = typeof node.metadata?.name === 'string' ? node.metadata.name : '';
  let score = 0;
  for (let i = 0; i < terms.length; i++) if (termMatches(terms[i]!, labels, name)) score += terms[i]!.weight;
  return score;
}

/** A pod's `spec.nodeSelector` and required node affinity, parsed (Kubernetes' RequiredNodeAffinity). */
export class RequiredNodeAffinity {
  private readonly selectorKeys: readonly string[];
  private readonly selectorValues: readonly string[];
  private readonly terms: readonly Term[] | undefined;

  constructor(pod: KubeObject) {
    const spec = (pod.spec ?? {}) as Obj;
    const ns = spec.nodeSelector as Record<string, unknown> | undefined | null;
    this.selectorKeys = ns ? Object.keys(ns) : [];
    this.selectorValues = this.selectorKeys.map((k) => String(ns![k]));
    const required = requiredOf(pod);
    this.terms = required ? parseNodeSelector(required, 'spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution') : undefined;
  }

  /** Whether `node` satisfies the node selector and (any term of) the required affinity. */
  match(node: KubeObject): boolean {
    const keys = this.selectorKeys;
    if (keys.length > 0) {
      const labels = node.metadata?.labels;
      if (!labels) return false;
      // A string value can only come from an own label (inherited members are not strings).
      for (let i = 0; i < keys.length; i++) if (labels[keys[i]!] !== this.selectorValues[i]) return false;
    }
    return this.terms === undefined || anyTermMatches(this.terms, node);
  }
}

function nodeAffinityOf(pod: KubeObject): Obj | undefined {
  return ((pod.spec as Obj | undefined)?.affinity as Obj | undefined)?.nodeAffinity as Obj | undefined;
}

function requiredOf(pod: KubeObject): Obj | undefined {
  const r = nodeAffinityOf(pod)?.requiredDuringSchedulingIgnoredDuringExecution;
  return r === null || r === undefined ? undefined : (r as Obj);
}

/**
 * The node names a required node affinity limits the pod to (Kubernetes' NodeAffinity PreFilter):
 * undefined when some term does not pin `metadata.name` with `In` (any node may do), else the
 * union over the terms of the intersection of each term's `In` values (empty: a conflict).
 */
export function requiredNodeNames(terms: readonly Obj[]): Set<string> | undefined {
  let names: Set<string> | undefined;
  for (const t of terms) {
    let termNames: Set<string> | undefined;
    for (const r of ((t?.matchFields ?? []) as Obj[])) {
      if (r?.key !== 'metadata.name' || r.operator !== 'In') continue;
      const s = new Set(((r.values ?? []) as unknown[]).map(String));
      termNames = termNames === undefined ? s : new Set([...termNames].filter((n) => s.has(n)));
    }
    if (termNames === undefined) return undefined;
    names ??= new Set();
    for (const n of termNames) names.add(n);
  }
  return names;
}

interface PreScoreState {
  readonly preferred?: readonly WeightedTerm[];
}

/** Makes a NodeAffinity plugin for `args` (throws when `addedAffinity` does not parse, as Kubernetes). */
export function createNodeAffinity(args: NodeAffinityArgs | undefined): FrameworkPlugin {
  const added = args?.addedAffinity;
  let addedSelector: Term[] | undefined;
  let addedPreferred: WeightedTerm[] | undefined;
  if (added) {
    const req = added.requiredDuringSchedulingIgnoredDuringExecution as Obj | undefined | null;
    if (req) {
      addedSelector = parseNodeSelector(req, 'addedAffinity.requiredDuringSchedulingIgnoredDuringExecution');
      const errors = addedSelector.flatMap((t) => t.errors);
      if (errors.length > 0) throw new Error(`parsing addedAffinity.requiredDuringSchedulingIgnoredDuringExecution: ${errors.join('; ')}`);
    }
    const prefs = (added.preferredDuringSchedulingIgnoredDuringExecution ?? []) as Obj[];
    if (prefs.length > 0) {
      const errors: string[] = [];
      addedPreferred = parsePreferredTerms(prefs, 'addedAffinity.preferredDuringSchedulingIgnoredDuringExecution', errors);
      if (errors.length > 0) throw new Error(`parsing addedAffinity.preferredDuringSchedulingIgnoredDuringExecution: ${errors.join('; ')}`);
    }
  }
  const enforcedMismatch = new Status('UnschedulableAndUnresolvable', [ERR_REASON_ENFORCED], NAME);
  const podMismatch = new Status('UnschedulableAndUnresolvable', [ERR_REASON_POD], NAME);
  const addedMatches = (node: KubeObject): boolean => addedSelector === undefined || anyTermMatches(addedSelector, node);

  const events: readonly ClusterEventWithHint[] = [
    {
      event: { resource: 'Node', actions: ['Add', 'UpdateNodeLabel', 'UpdateNodeTaint'] },
      hint: (pod, old, updated) => {
        if (!updated) return 'Queue';
        if (!addedMatches(updated)) return 'QueueSkip';
        const required = new RequiredNodeAffinity(pod);
        if (!required.match(updated)) return 'QueueSkip';
        if (!old) return 'Queue';
        return required.match(old) ? 'QueueSkip' : 'Queue';
      },
    },
  ];

  return {
    name: NAME,
    preFilter(state, pod) {
      const required = requiredOf(pod);
      const noNodeAffinity = required === undefined;
      const nodeSelector = (pod.spec as Obj | undefined)?.nodeSelector;
      if (noNodeAffinity && addedSelector === undefined && (nodeSelector === undefined || nodeSelector === null)) return { status: Status.skip() };
      state.write(PRE_FILTER_KEY, new RequiredNodeAffinity(pod));
      const terms = (required?.nodeSelectorTerms ?? []) as Obj[];
      if (terms.length === 0) return undefined;
      const names = requiredNodeNames(terms);
      if (names === undefined) return undefined;
      if (names.size === 0) return { status: new Status('UnschedulableAndUnresolvable', [ERR_REASON_CONFLICT], NAME) };
      return { result: { nodeNames: names } };
    },
    filter(state, pod, _podInfo, nodeInfo) {
      const node = nodeInfo.node;
      if (!node) return podMismatch;
      if (!addedMatches(node)) return enforcedMismatch;
      const required = state.read<RequiredNodeAffinity>(PRE_FILTER_KEY) ?? new RequiredNodeAffinity(pod);
      return required.match(node) ? undefined : podMismatch;
    },
    preScore(state, pod) {
      const prefs = nodeAffinityOf(pod)?.preferredDuringSchedulingIgnoredDuringExecution as Obj[] | undefined | null;
      if ((prefs === undefined || prefs === null) && addedPreferred === undefined) return Status.skip();
      let preferred: WeightedTerm[] | undefined;
      if (prefs) {
        const errors: string[] = [];
        preferred = parsePreferredTerms(prefs, 'spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution', errors);
        if (errors.length > 0) return Status.error(new Error(errors.join('; ')));
      }
      state.write(PRE_SCORE_KEY, { preferred } satisfies PreScoreState);
      return undefined;
    },
    score(state, pod, _podInfo, nodeInfo) {
      const node = nodeInfo.node;
      if (!node) return 0;
      let count = addedPreferred ? preferredScore(addedPreferred, node) : 0;
      let s = state.read<PreScoreState>(PRE_SCORE_KEY);
      if (!s) {
        const prefs = (nodeAffinityOf(pod)?.preferredDuringSchedulingIgnoredDuringExecution ?? undefined) as Obj[] | undefined;
        s = { preferred: prefs ? parsePreferredTerms(prefs, '', []) : undefined };
      }
      if (s.preferred) count += preferredScore(s.preferred, node);
      return count;
    },
    normalizeScore(_state, _pod, scores: NodeScore[]) {
      defaultNormalizeScore(MAX_NODE_SCORE, false, scores);
      return undefined;
    },
    eventsToRegister: () => events,
  };
}

/** The NodeAffinity factory (PreFilter, Filter, PreScore, Score; args {@link NodeAffinityArgs}). */
export const nodeAffinityFactory: SchedulerPluginFactory = {
  name: NAME,
  argsSchema: NODE_AFFINITY_ARGS_SCHEMA,
  create: (args) => createNodeAffinity(args as NodeAffinityArgs | undefined),
};

/** The NodeAffinity plugin (id `scheduler-node-affinity`). */
export const nodeAffinityPlugin = defineSchedulerPlugin({
  id: 'scheduler-node-affinity',
  version: '0.1.0',
  description: "NodeAffinity: filters nodes by the pod's nodeSelector and required node affinity, and scores its preferred node affinity.",
  factory: nodeAffinityFactory,
});
