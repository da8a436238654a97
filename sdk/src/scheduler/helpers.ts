/**
 * Matching rules scheduling plugins share, with Kubernetes' semantics: tolerations against
 * taints, node selectors and node affinity against a node, pod affinity terms against a pod.
 *
 * @module
 */
import type { KubeObject } from '../client/api-client.js';
import { labelSelectorMatches } from '../api/selectors.js';
import type { AffinityTerm } from './nodeinfo.js';
import type { NodeScore } from './framework.js';

/** A node taint. */
export interface Taint {
  readonly key: string;
  readonly value?: string;
  readonly effect: string;
}

/** A pod toleration. */
export interface Toleration {
  readonly key?: string;
  readonly operator?: string;
  readonly value?: string;
  readonly effect?: string;
  readonly tolerationSeconds?: number;
}

/** A `NodeSelectorRequirement`. */
export interface NodeSelectorRequirement {
  readonly key: string;
  readonly operator: string;
  readonly values?: readonly string[];
}

/** A `NodeSelectorTerm`: its expressions and fields are ANDed. */
export interface NodeSelectorTerm {
  readonly matchExpressions?: readonly NodeSelectorRequirement[];
  readonly matchFields?: readonly NodeSelectorRequirement[];
}

type Obj = Record<string, unknown>;

/** Whether `toleration` tolerates `taint` (Kubernetes' `Toleration.ToleratesTaint`). */
export function toleratesTaint(toleration: Toleration, taint: Taint): boolean {
  if (toleration.effect && toleration.effect !== taint.effect) return false;
  if (toleration.key && toleration.key !== taint.key) return false;
  const op = toleration.operator || 'Equal';
  if (op === 'Exists') return true;
  if (op === 'Equal') return (toleration.value ?? '') === (taint.value ?? '');
  return false;
}

/** The node's taints. */
export function nodeTaints(node: KubeObject | undefined): readonly Taint[] {
  return (((node?.spec as Obj | undefined)?.taints ?? []) as Taint[]);
}

/** The pod's tolerations. */
export function podTolerations(pod: KubeObject): readonly Toleration[] {
  return (((pod.spec as Obj | undefined)?.tolerations ?? []) as Toleration[]);
}

/**
 * The first of `taints` (with an effect `filter` accepts) that no toleration tolerates, or
 * undefined when all are tolerated.
 */
export function findUntoleratedTaint(taints: readonly Taint[], tolerations: readonly Toleration[], filter: (t: Taint) => boolean = () => true): Taint | undefined {
  for (const taint of taints) {
    if (!filter(taint)) continue;
    if (!tolerations.some((t) => toleratesTaint(t, taint))) return taint;
  }
  return undefined;
}

/** Whether every taint accepted by `filter` is tolerated. */
export function toleratesAll(taints: readonly Taint[], tolerations: readonly Toleration[], filter?: (t: Taint) => boolean): boolean {
  return findUntoleratedTaint(taints, tolerations, filter) === undefined;
}

function requirementMatches(r: NodeSelectorRequirement, value: string | undefined): boolean {
  const values = r.values ?? [];
  switch (r.operator) {
    case 'In':
      return value !== undefined && values.includes(value);
    case 'NotIn':
      return value === undefined || !values.includes(value);
    case 'Exists':
      return value !== undefined;
    case 'DoesNotExist':
      return value === undefined;
    case 'Gt':
    case 'Lt': {
      if (value === undefined || values.length !== 1) return false;
      const a = Number(value);
      const b = Number(values[0]);
      if (!Number.isInteger(a) || !Number.isInteger(b)) return false;
      return r.operator === 'Gt' ? a > b : a < b;
    }
    default:
      return false;
  }
}

/** Whether `node` satisfies one term (an empty term matches nothing, as in Kubernetes). */
export function nodeSelectorTermMatches(term: NodeSelectorTerm, node: KubeObject): boolean {
  const exprs = term.matchExpressions ?? [];
  const fields = term.matchFields ?? [];
  if (exprs.length === 0 && fields.length === 0) return false;
  const labels = (node.metadata?.labels ?? {}) as Record<string, string>;
  for (const r of exprs) if (!requirementMatches(r, Object.prototype.hasOwnProperty.call(labels, r.key) ? labels[r.key] : undefined)) return false;
  for (const r of fields) {
    if (r.key !== 'metadata.name') return false;
    if (!requirementMatches(r, String(node.metadata?.name ?? ''))) return false;
  }
  return true;
}

/** Whether `node` satisfies any of `terms` (`NodeSelector.nodeSelectorTerms` are ORed). */
export function nodeSelectorMatches(terms: readonly NodeSelectorTerm[], node: KubeObject): boolean {
  return terms.some((t) => nodeSelectorTermMatches(t, node));
}

/**
 * Whether the pod's `spec.nodeSelector` and required node affinity both accept `node` (Kubernetes'
 * `RequiredNodeAffinity.Match`).
 */
export function podMatchesNodeSelectorAndAffinity(pod: KubeObject, node: KubeObject): boolean {
  const spec = (pod.spec ?? {}) as Obj;
  const selector = (spec.nodeSelector ?? {}) as Record<string, string>;
  const labels = (node.metadata?.labels ?? {}) as Record<string, string>;
  for (const k in selector) if (labels[k] !== selector[k]) return false;
  const required = (((spec.affinity as Obj | undefined)?.nodeAffinity as Obj | undefined)?.requiredDuringSchedulingIgnoredDuringExecution as { nodeSelectorTerms?: NodeSelectorTerm[] } | undefined);
  if (required && !nodeSelectorMatches(required.nodeSelectorTerms ?? [], node)) return false;
  return true;
}

/**
 * Whether `pod` matches a pod affinity `term`: in one of its namespaces (listed, or selected by
 * its namespaceSelector through `namespaceLabels`) and selected by its label selector.
 */
export function affinityTermMatches(term: AffinityTerm, pod: KubeObject, namespaceLabels?: (ns: string) => Readonly<Record<string, string>> | undefined): boolean {
  const ns = String(pod.metadata?.namespace ?? '');
  if (!term.namespaces.has(ns)) {
    if (term.namespaceSelector === undefined) return false;
    const sel = term.namespaceSelector;
    // An empty namespaceSelector selects every namespace, known or not.
    const empty = Object.keys(sel.matchLabels ?? {}).length === 0 && (sel.matchExpressions ?? []).length === 0;
    const labels = empty ? {} : namespaceLabels?.(ns);
    if (labels === undefined || !labelSelectorMatches(term.namespaceSelector, labels)) return false;
  }
  if (!term.selector) return false;
  return labelSelectorMatches(term.selector, pod.metadata?.labels);
}

/**
 * Kubernetes' `helper.DefaultNormalizeScore`: scales scores from [0, max] to [0, maxPriority]
 * with integer division, optionally reversed (maxPriority - score), in place. All zero: unchanged,
 * or all maxPriority when reversed.
 */
export function defaultNormalizeScore(maxPriority: number, reverse: boolean, scores: NodeScore[]): void {
  let max = 0;
  for (const s of scores) if (s.score > max) max = s.score;
  if (max === 0) {
    if (reverse) for (const s of scores) s.score = maxPriority;
    return;
  }
  for (const s of scores) {
    let v = Math.trunc((maxPriority * s.score) / max);
    if (reverse) v = maxPriority - v;
    s.score = v;
  }
}
