import { AdmissionDenied, definePlugin, untilAborted, type KubeObject, type Admission, type AdmissionRequest, type Authorizer, type ResourceRule, type NonResourceRule, type UserInfo } from '@kubernel/sdk';
import { effectiveRules, type PolicyRule, type RoleObject } from './policy.js';

const RBAC_GROUP = 'rbac.authorization.k8s.io';
const ROLE_KINDS = new Set(['roles', 'clusterroles']);
const BINDING_KINDS = new Set(['rolebindings', 'clusterrolebindings']);
const MASTERS = 'system:masters';

const has = (list: readonly string[] | undefined, v: string): boolean => !!list && (list.includes('*') || list.includes(v));

/** Whether `owner` grants one atomic permission (a verb on one group/resource/name, or one URL). */
function grants(owner: readonly (ResourceRule | NonResourceRule)[], verb: string, atom: { group: string; resource: string; name: string } | { url: string }): boolean {
  return owner.some((r) => {
    if (!has(r.verbs, verb)) return false;
    if ('url' in atom) {
      const urls = (r as NonResourceRule).nonResourceURLs;
      return !!urls && urls.some((u) => u === '*' || u === atom.url || (u.endsWith('*') && atom.url.startsWith(u.slice(0, -1))));
    }
    const rr = r as ResourceRule;
    if (!rr.resources || !has(rr.apiGroups, atom.group)) return false;
    const sub = atom.resource.includes('/') ? atom.resource.slice(atom.resource.indexOf('/')) : '';
    if (!(rr.resources.includes('*') || rr.resources.includes(atom.resource) || (sub !== '' && rr.resources.includes(`*${sub}`)))) return false;
    const names = rr.resourceNames ?? [];
    return names.length === 0 || (atom.name !== '' && names.includes(atom.name));
  });
}

/**
 * The servant rules `owner` does not cover (Kubernetes' `Covers`): each rule is broken into atomic
 * permissions, each of which some owner rule must grant. A wildcard in a servant rule is covered
 * only by the same wildcard.
 */
export function uncovered(owner: readonly (ResourceRule | NonResourceRule)[], servant: readonly PolicyRule[]): PolicyRule[] {
  const missing: PolicyRule[] = [];
  for (const rule of servant) {
    const ok = rule.verbs.every((verb) => {
      if (rule.nonResourceURLs?.length) return rule.nonResourceURLs.every((url) => grants(owner, verb, { url }));
      return (rule.apiGroups ?? ['']).every((group) =>
        (rule.resources ?? []).every((resource) => (rule.resourceNames?.length ? rule.resourceNames : ['']).every((name) => grants(owner, verb, { group, resource, name }))),
      );
    });
    if (!ok) missing.push(rule);
  }
  return missing;
}

const format = (r: PolicyRule): string =>
  r.nonResourceURLs?.length
    ? `{NonResourceURLs:${JSON.stringify(r.nonResourceURLs)}, Verbs:${JSON.stringify(r.verbs)}}`
    : `{APIGroups:${JSON.stringify(r.apiGroups ?? [])}, Resources:${JSON.stringify(r.resources ?? [])}${r.resourceNames?.length ? `, ResourceNames:${JSON.stringify(r.resourceNames)}` : ''}, Verbs:${JSON.stringify(r.verbs)}}`;

/** What the escalation check needs from its surroundings. */
export interface EscalationEnvironment {
  /** The process's authorizers (the check asks them for `escalate`/`bind` and for the user's rules). */
  authorizers(): Iterable<Authorizer>;
  /** The rules of the role a binding refers to, or undefined when it does not exist. */
  roleRules(kind: string, namespace: string, name: string): readonly PolicyRule[] | undefined;
}

/**
 * RBAC privilege-escalation prevention as an admission step: creating or updating a Role or
 * ClusterRole needs every rule it grants to be held by the requester (or the `escalate` verb on it);
 * a RoleBinding or ClusterRoleBinding needs the requester to hold every rule of the referenced role
 * (or the `bind` verb on it). `system:masters` is exempt, as in Kubernetes.
 */
export function escalationCheck(env: EscalationEnvironment): Admission {
  const allowedVerb = async (user: UserInfo, verb: string, resource: string, namespace: string, name: string): Promise<boolean> => {
    for (const a of env.authorizers()) {
      const d = await a.authorize({ user, verb, isResourceRequest: true, path: '', apiGroup: RBAC_GROUP, apiVersion: 'v1', namespace, resource, subresource: '', name });
      if (d.decision !== 'no-opinion') return d.decision === 'allow';
    }
    return false;
  };
  const heldRules = async (user: UserInfo, namespace: string): Promise<(ResourceRule | NonResourceRule)[]> => {
    const out: (ResourceRule | NonResourceRule)[] = [];
    for (const a of env.authorizers()) {
      if (!a.rulesFor) continue;
      const r = await a.rulesFor(user, namespace);
      out.push(...r.resourceRules, ...r.nonResourceRules);
    }
    return out;
  };
  const refuse = (req: AdmissionRequest, rules: PolicyRule[]): never => {
    throw new AdmissionDenied(
      `${req.resource.resource}.${RBAC_GROUP} "${req.name}" is forbidden: user "${req.user.username}" (groups=${JSON.stringify(req.user.groups)}) is attempting to grant RBAC permissions not currently held:\n${rules.map(format).join('\n')}`,
      403,
    );
  };
  return {
    handles: (req) => req.resource.group === RBAC_GROUP && (req.operation === 'CREATE' || req.operation === 'UPDATE') && req.subresource === '' && (ROLE_KINDS.has(req.resource.resource) || BINDING_KINDS.has(req.resource.resource)),
    async validate(req) {
      if (req.user.groups.includes(MASTERS) || !req.object) return;
      const namespace = req.namespace;
      if (ROLE_KINDS.has(req.resource.resource)) {
        const role = req.object as unknown as RoleObject;
        if (await allowedVerb(req.user, 'escalate', req.resource.resource, namespace, req.name)) return;
        const missing = uncovered(await heldRules(req.user, namespace), role.rules ?? []);
        if (missing.length) refuse(req, missing);
        return;
      }
      const ref = (req.object as { roleRef?: { kind?: string; name?: string } }).roleRef ?? {};
      const kind = ref.kind === 'Role' ? 'roles' : 'clusterroles';
      // As in Kubernetes, `bind` is checked in the binding's namespace (a Role may grant binding a ClusterRole there).
      if (await allowedVerb(req.user, 'bind', kind, namespace, String(ref.name ?? ''))) return;
      const rules = env.roleRules(String(ref.kind ?? ''), namespace, String(ref.name ?? ''));
      // A binding to a role that does not exist grants nothing yet; Kubernetes checks it the same way (as empty).
      const missing = uncovered(await heldRules(req.user, namespace), rules ?? []);
      if (missing.length) refuse(req, missing);
    },
  };
}

export const escalationPlugin = definePlugin({
  id: 'rbac-escalation',
  kind: 'admission',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'Prevents RBAC privilege escalation: you cannot grant permissions you do not hold (unless you may escalate or bind).',
  configSchema: { type: 'object', additionalProperties: false, properties: {} },
  async start(handle, _config, signal) {
    const api = handle.api;
    const roles = api.informer<RoleObject & KubeObject>('/apis/rbac.authorization.k8s.io/v1/roles');
    const clusterRoles = api.informer<RoleObject & KubeObject>('/apis/rbac.authorization.k8s.io/v1/clusterroles');
    roles.run();
    clusterRoles.run();
    await Promise.all([roles.waitForSync(signal), clusterRoles.waitForSync(signal)]);
    handle.provide(
      escalationCheck({
        authorizers: () => handle.extensions('authorizer').values(),
        roleRules: (kind, namespace, name) => {
          if (kind === 'Role') return roles.get(`${namespace}/${name}`)?.rules ?? undefined;
          const role = clusterRoles.get(name);
          if (!role) return undefined;
          return effectiveRules(role, clusterRoles.list());
        },
      }),
    );
    await untilAborted(signal);
  },
});
