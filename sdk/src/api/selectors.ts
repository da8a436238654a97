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
