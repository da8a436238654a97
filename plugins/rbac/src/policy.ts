import type { AuthorizationAttributes, AuthorizationDecision, NonResourceRule, ResourceRule, SubjectRules, UserInfo } from '@kubernel/sdk';

/** An RBAC PolicyRule. */
export interface PolicyRule {
  readonly verbs: readonly string[];
  readonly apiGroups?: readonly string[];
  readonly resources?: readonly string[];
  readonly resourceNames?: readonly string[];
  readonly nonResourceURLs?: readonly string[];
}

/** A Role or ClusterRole. */
export interface RoleObject {
  readonly kind?: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Readonly<Record<string, string>> };
  readonly rules?: readonly PolicyRule[] | null;
  readonly aggregationRule?: { readonly clusterRoleSelectors?: readonly LabelSelector[] };
}

/** A label selector (matchLabels and matchExpressions). */
export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly { readonly key: string; readonly operator: string; readonly values?: readonly string[] }[];
}

/** An RBAC subject. */
export interface Subject {
  readonly kind: string;
  readonly name: string;
  readonly namespace?: string;
  readonly apiGroup?: string;
}

/** A RoleBinding or ClusterRoleBinding. */
export interface BindingObject {
  readonly kind?: string;
  readonly metadata: { readonly name: string; readonly namespace?: string };
  readonly subjects?: readonly Subject[] | null;
  readonly roleRef: { readonly kind: string; readonly name: string; readonly apiGroup?: string };
}

/** What the policy is evaluated over: the current objects (an informer's view, or fixtures in tests). */
export interface PolicySource {
  role(namespace: string, name: string): RoleObject | undefined;
  clusterRole(name: string): RoleObject | undefined;
  clusterRoles(): Iterable<RoleObject>;
  /** The RoleBindings of `namespace`. */
  roleBindings(namespace: string): Iterable<BindingObject>;
  clusterRoleBindings(): Iterable<BindingObject>;
}

/** A {@link PolicySource} over fixed arrays (tests, tools). */
export function staticSource(objects: { roles?: RoleObject[]; clusterRoles?: RoleObject[]; roleBindings?: BindingObject[]; clusterRoleBindings?: BindingObject[] }): PolicySource {
  return {
    role: (ns, name) => objects.roles?.find((r) => r.metadata.namespace === ns && r.metadata.name === name),
    clusterRole: (name) => objects.clusterRoles?.find((r) => r.metadata.name === name),
    clusterRoles: () => objects.clusterRoles ?? [],
    roleBindings: (ns) => (objects.roleBindings ?? []).filter((b) => b.metadata.namespace === ns),
    clusterRoleBindings: () => objects.clusterRoleBindings ?? [],
  };
}

/** Whether `labels` match `selector` (an empty selector matches everything). */
export function selects(selector: LabelSelector, labels: Readonly<Record<string, string>> = {}): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    const values = e.values ?? [];
    if (e.operator === 'In' && !(has && values.includes(labels[e.key]!))) return false;
    if (e.operator === 'NotIn' && has && values.includes(labels[e.key]!)) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

/**
 * The rules of an aggregated ClusterRole: the union of the current rules of every other ClusterRole its
 * selectors pick (aggregated ones included, as Kubernetes' aggregation controller does: `view` feeds
 * `edit`, which feeds `admin`).
 */
export function aggregatedRules(role: RoleObject, clusterRoles: Iterable<RoleObject>, visiting: Set<string> = new Set()): PolicyRule[] {
  const selectors = role.aggregationRule?.clusterRoleSelectors ?? [];
  const all = [...clusterRoles];
  const out: PolicyRule[] = [];
  const seen = new Set<string>();
  visiting.add(role.metadata.name);
  for (const other of all) {
    if (visiting.has(other.metadata.name)) continue;
    if (!selectors.some((s) => selects(s, other.metadata.labels))) continue;
    // An aggregated role not filled in yet contributes what it aggregates.
    const rules = other.aggregationRule && (other.rules ?? []).length === 0 ? aggregatedRules(other, all, visiting) : other.rules ?? [];
    for (const rule of rules) {
      const key = JSON.stringify(rule);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(rule);
    }
  }
  return out;
}

/** A role's rules: its own, or, for an aggregated ClusterRole not filled in yet, what it aggregates. */
export function effectiveRules(role: RoleObject, clusterRoles: Iterable<RoleObject>): readonly PolicyRule[] {
  return role.aggregationRule && (role.rules ?? []).length === 0 ? aggregatedRules(role, clusterRoles) : role.rules ?? [];
}

/** Whether `subject` names `user` (User, Group, or ServiceAccount as `system:serviceaccount:<ns>:<name>`). */
export function appliesTo(subject: Subject, user: UserInfo, bindingNamespace: string): boolean {
  switch (subject.kind) {
    case 'User':
      return subject.name === user.username;
    case 'Group':
      return user.groups.includes(subject.name);
    case 'ServiceAccount':
      return user.username === `system:serviceaccount:${subject.namespace || bindingNamespace}:${subject.name}`;
    default:
      return false;
  }
}

const has = (list: readonly string[] | undefined, value: string): boolean => !!list && (list.includes('*') || list.includes(value));

/** Whether `rule` allows the resource request `a` (Kubernetes' RuleAllows). */
export function ruleAllows(rule: PolicyRule, a: AuthorizationAttributes): boolean {
  if (!has(rule.verbs, a.verb)) return false;
  if (!a.isResourceRequest) {
    return (rule.nonResourceURLs ?? []).some((u) => u === '*' || u === a.path || (u.endsWith('*') && a.path.startsWith(u.slice(0, -1))));
  }
  if (!has(rule.apiGroups, a.apiGroup)) return false;
  const resources = rule.resources ?? [];
  const combined = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const resourceMatch = resources.some((r) => r === '*' || r === combined || (a.subresource !== '' && r === `*/${a.subresource}`));
  if (!resourceMatch) return false;
  const names = rule.resourceNames ?? [];
  return names.length === 0 || names.includes(a.name);
}

/**
 * RBAC evaluated with Kubernetes' semantics: a request is allowed when a rule of a role bound to
 * the user allows it: ClusterRoleBindings grant their ClusterRole everywhere; RoleBindings grant
 * their Role or ClusterRole in their namespace only. RBAC never denies: it allows or has no opinion.
 */
export class RbacPolicy {
  constructor(private readonly source: PolicySource) {}

  private rulesOf(ref: BindingObject['roleRef'], namespace: string): readonly PolicyRule[] | undefined {
    if (ref.kind === 'ClusterRole') {
      const role = this.source.clusterRole(ref.name);
      if (!role) return undefined;
      return effectiveRules(role, this.source.clusterRoles());
    }
    if (ref.kind === 'Role' && namespace) return this.source.role(namespace, ref.name)?.rules ?? undefined;
    return undefined;
  }

  /** Every binding that applies to `user` in `namespace` ('' = cluster scope only), with its rules. */
  private *grants(user: UserInfo, namespace: string): Generator<{ binding: BindingObject; rules: readonly PolicyRule[] }> {
    for (const b of this.source.clusterRoleBindings()) {
      if (!(b.subjects ?? []).some((s) => appliesTo(s, user, ''))) continue;
      const rules = this.rulesOf(b.roleRef, '');
      if (rules) yield { binding: b, rules };
    }
    if (!namespace) return;
    for (const b of this.source.roleBindings(namespace)) {
      if (!(b.subjects ?? []).some((s) => appliesTo(s, user, namespace))) continue;
      const rules = this.rulesOf(b.roleRef, namespace);
      if (rules) yield { binding: b, rules };
    }
  }

  /** The decision for `a`: allow with the binding named, or no opinion. */
  authorize(a: AuthorizationAttributes): AuthorizationDecision {
    for (const { binding, rules } of this.grants(a.user, a.isResourceRequest ? a.namespace : '')) {
      if (rules.some((r) => ruleAllows(r, a))) {
        const where = binding.metadata.namespace ? ` in namespace "${binding.metadata.namespace}"` : '';
        return { decision: 'allow', reason: `RBAC: allowed by ${binding.kind ?? (binding.metadata.namespace ? 'RoleBinding' : 'ClusterRoleBinding')} "${binding.metadata.name}" of ${binding.roleRef.kind} "${binding.roleRef.name}"${where}` };
      }
    }
    return { decision: 'no-opinion' };
  }

  /** The rules `user` holds in `namespace` (cluster-wide grants included). */
  rulesFor(user: UserInfo, namespace: string): SubjectRules {
    const resourceRules: ResourceRule[] = [];
    const nonResourceRules: NonResourceRule[] = [];
    for (const { rules } of this.grants(user, namespace)) {
      for (const r of rules) {
        if (r.nonResourceURLs?.length) nonResourceRules.push({ verbs: [...r.verbs], nonResourceURLs: [...r.nonResourceURLs] });
        if (r.resources?.length) resourceRules.push({ verbs: [...r.verbs], apiGroups: [...(r.apiGroups ?? [])], resources: [...r.resources], ...(r.resourceNames?.length ? { resourceNames: [...r.resourceNames] } : {}) });
      }
    }
    return { resourceRules, nonResourceRules, incomplete: false };
  }
}
