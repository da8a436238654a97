/**
 * Label selectors (`metav1.LabelSelector`): matchLabels and matchExpressions with Kubernetes'
 * meaning. An empty selector matches everything; a missing one (`undefined`) matches nothing
 * where Kubernetes says so, so callers choose.
 *
 * @module
 */

/** A `metav1.LabelSelector`. */
export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly { readonly key: string; readonly operator: string; readonly values?: readonly string[] }[];
}

/**
 * True when `labels` satisfy `selector` (every matchLabels pair and every expression: `In`,
 * `NotIn`, `Exists`, `DoesNotExist`). An unknown operator matches nothing.
 */
export function labelSelectorMatches(selector: LabelSelector, labels: Readonly<Record<string, string>> | undefined): boolean {
  const l = labels ?? {};
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (l[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(l, e.key);
    const values = e.values ?? [];
    switch (e.operator) {
      case 'In':
        if (!has || !values.includes(l[e.key]!)) return false;
        break;
      case 'NotIn':
        if (has && values.includes(l[e.key]!)) return false;
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

/** A compiled label selector: true when `labels` satisfy it. */
export type LabelMatcher = (labels: Readonly<Record<string, string>> | undefined) => boolean;

const compiled = new WeakMap<LabelSelector, LabelMatcher>();
const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});

/**
 * {@link labelSelectorMatches} compiled once per selector object (cached): for hot paths that match
 * the same selector against many label sets, allocation-free per call.
 */
export function compileLabelSelector(selector: LabelSelector): LabelMatcher {
  let m = compiled.get(selector);
  if (m) return m;
  const keys = Object.keys(selector.matchLabels ?? {});
  const values = keys.map((k) => selector.matchLabels![k]!);
  const exprs = (selector.matchExpressions ?? []).map((e) => ({ key: e.key, op: e.operator, values: e.values ?? [] }));
  m = (labels) => {
    const l = (labels ?? NO_LABELS) as Record<string, unknown>;
    for (let i = 0; i < keys.length; i++) if (l[keys[i]!] !== values[i]) return false;
    for (let i = 0; i < exprs.length; i++) {
      const e = exprs[i]!;
      const v = l[e.key];
      const has = typeof v === 'string';
      switch (e.op) {
        case 'In':
          if (!has || !e.values.includes(v)) return false;
          break;
        case 'NotIn':
          if (has && e.values.includes(v)) return false;
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
  };
  compiled.set(selector, m);
  return m;
}
