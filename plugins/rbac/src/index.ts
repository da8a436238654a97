/**
 * `@kubernel/plugin-rbac`: the `authz-rbac` authorizer. It keeps Roles, ClusterRoles,
 * RoleBindings and ClusterRoleBindings in shared informers, evaluates requests with Kubernetes'
 * RBAC semantics ({@link RbacPolicy}), answers `rulesFor` (SelfSubjectRulesReview), fills
 * aggregated ClusterRoles' rules from the roles their selectors pick, and creates (or restores)
 * the default cluster policy at start.
 *
 * @packageDocumentation
 */
import { definePlugin, isAlreadyExists, isConflict, isNotFound, untilAborted, type ApiClient, type Informer, type KubeObject, type Logger } from '@kubernel/sdk';
import { AUTOUPDATE, DEFAULT_CLUSTER_ROLE_BINDINGS, DEFAULT_CLUSTER_ROLES } from './defaults.js';
import { escalationPlugin } from './escalation.js';
import { aggregatedRules, RbacPolicy, type BindingObject, type PolicyRule, type PolicySource, type RoleObject } from './policy.js';

export { RbacPolicy, ruleAllows, appliesTo, selects, aggregatedRules, effectiveRules, staticSource } from './policy.js';
export type { PolicyRule, RoleObject, BindingObject, Subject, LabelSelector, PolicySource } from './policy.js';
export { DEFAULT_CLUSTER_ROLES, DEFAULT_CLUSTER_ROLE_BINDINGS } from './defaults.js';

const GROUP = '/apis/rbac.authorization.k8s.io/v1';
const PATHS = { roles: `${GROUP}/roles`, clusterRoles: `${GROUP}/clusterroles`, roleBindings: `${GROUP}/rolebindings`, clusterRoleBindings: `${GROUP}/clusterrolebindings` } as const;

type Stored<T> = T & KubeObject & { metadata: { resourceVersion?: string; annotations?: Record<string, string> } };
const ruleKey = (r: PolicyRule): string => JSON.stringify(r);
const sortedRules = (rules: readonly PolicyRule[]): PolicyRule[] => [...rules].sort((a, b) => ruleKey(a).localeCompare(ruleKey(b)));

/** Creates what is missing of the default policy; restores missing rules and subjects of objects still marked autoupdate. */
async function reconcileDefaults(api: ApiClient, log: Logger): Promise<void> {
  let created = 0;
  let restored = 0;
  for (const [path, objects] of [[PATHS.clusterRoles, DEFAULT_CLUSTER_ROLES], [PATHS.clusterRoleBindings, DEFAULT_CLUSTER_ROLE_BINDINGS]] as const) {
    for (const want of objects) {
      const body = { apiVersion: 'rbac.authorization.k8s.io/v1', ...want };
      let have: Stored<RoleObject & BindingObject> | undefined;
      try {
        have = await api.get<Stored<RoleObject & BindingObject>>(`${path}/${encodeURIComponent(want.metadata.name)}`);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      if (!have) {
        try {
          await api.create(path, body);
          created++;
        } catch (err) {
          if (!isAlreadyExists(err)) throw err;
        }
        continue;
      }
      if (have.metadata.annotations?.[AUTOUPDATE] === 'false') continue;
      const next: Record<string, unknown> = { ...have };
      let changed = false;
      if ('rules' in want && !('aggregationRule' in want && want.aggregationRule)) {
        const present = new Set((have.rules ?? []).map(ruleKey));
        const missing = (want.rules ?? []).filter((r) => !present.has(ruleKey(r)));
        if (missing.length) {
          next.rules = [...(have.rules ?? []), ...missing];
          changed = true;
        }
      }
      if ('aggregationRule' in want && want.aggregationRule && JSON.stringify(have.aggregationRule) !== JSON.stringify(want.aggregationRule)) {
        next.aggregationRule = want.aggregationRule;
        changed = true;
      }
      if ('subjects' in want) {
        const present = new Set((have.subjects ?? []).map((s) => `${s.kind}/${s.name}`));
        const missing = (want.subjects ?? []).filter((s) => !present.has(`${s.kind}/${s.name}`));
        if (missing.length) {
          next.subjects = [...(have.subjects ?? []), ...missing];
          changed = true;
        }
      }
      if (changed) {
        try {
          await api.update(`${path}/${encodeURIComponent(want.metadata.name)}`, next);
          restored++;
        } catch (err) {
          if (!isConflict(err)) throw err;
        }
      }
    }
  }
  log.info({ created, restored }, `default RBAC policy in place (${created} created, ${restored} restored)`);
}

/** Writes each aggregated ClusterRole's rules (the union of the roles its selectors pick) when they differ. */
async function aggregate(api: ApiClient, clusterRoles: Informer<Stored<RoleObject>>, log: Logger): Promise<void> {
  const all = clusterRoles.list();
  for (const role of all) {
    if (!role.aggregationRule) continue;
    const want = sortedRules(aggregatedRules(role, all));
    if (JSON.stringify(sortedRules(role.rules ?? [])) === JSON.stringify(want)) continue;
    try {
      await api.update(`${PATHS.clusterRoles}/${encodeURIComponent(role.metadata.name)}`, { ...role, rules: want });
    } catch (err) {
      if (!isConflict(err) && !isNotFound(err)) log.warn({ err }, `aggregating ClusterRole ${role.metadata.name} failed`);
    }
  }
}

export const rbacPlugin = definePlugin({
  id: 'authz-rbac',
  kind: 'authorizer',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'RBAC: Roles, ClusterRoles (aggregated), RoleBindings and ClusterRoleBindings, with the default cluster policy.',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: { bootstrapPolicy: { type: 'boolean', default: true, description: 'create or restore the default cluster roles and bindings at start' } },
  },
  async start(handle, config: { bootstrapPolicy: boolean }, signal) {
    const api = handle.api;
    const log = handle.logger;
    const roles = api.informer<Stored<RoleObject>>(PATHS.roles);
    const clusterRoles = api.informer<Stored<RoleObject>>(PATHS.clusterRoles);
    const roleBindings = api.informer<Stored<BindingObject>>(PATHS.roleBindings);
    const clusterRoleBindings = api.informer<Stored<BindingObject>>(PATHS.clusterRoleBindings);
    const informers = [roles, clusterRoles, roleBindings, clusterRoleBindings];
    for (const i of informers) i.run();
    if (config.bootstrapPolicy) {
      for (let attempt = 1; ; attempt++) {
        try {
          await reconcileDefaults(api, log);
          break;
        } catch (err) {
          if (signal.aborted) return;
          if (attempt % 10 === 1) log.warn({ err }, 'creating the default RBAC policy failed; retrying');
          await new Promise((r) => setTimeout(r, Math.min(200 * attempt, 2000)));
        }
      }
    }
    await Promise.all(informers.map((i) => i.waitForSync(signal)));

    // Every request is evaluated against these: rebuilt only after the informers change, not per request.
    const unsubscribes: Array<() => void> = [];
    const cached = <T extends KubeObject, R>(informer: Informer<T>, build: (items: T[]) => R): (() => R) => {
      let value: R | undefined;
      unsubscribes.push(informer.subscribe({ changed: () => (value = undefined) }));
      return () => (value ??= build(informer.list()));
    };
    const bindingsByNamespace = cached(roleBindings, (items) => {
      const map = new Map<string, BindingObject[]>();
      for (const b of items) {
        const ns = b.metadata.namespace ?? '';
        const list = map.get(ns);
        if (list) list.push(b);
        else map.set(ns, [b]);
      }
      return map;
    });
    const allClusterRoles = cached(clusterRoles, (items) => items);
    const allClusterRoleBindings = cached(clusterRoleBindings, (items) => items);
    const source: PolicySource = {
      role: (ns, name) => roles.get(`${ns}/${name}`),
      clusterRole: (name) => clusterRoles.get(name),
      clusterRoles: allClusterRoles,
      roleBindings: (ns) => bindingsByNamespace().get(ns) ?? [],
      clusterRoleBindings: allClusterRoleBindings,
    };
    const policy = new RbacPolicy(source);

    // Aggregation: re-evaluated (debounced) whenever a ClusterRole changes.
    let timer: NodeJS.Timeout | undefined;
    let running = Promise.resolve();
    const schedule = (): void => {
      if (timer || signal.aborted) return;
      timer = setTimeout(() => {
        timer = undefined;
        running = running.then(() => aggregate(api, clusterRoles, log));
      }, 50);
    };
    const unsubscribe = clusterRoles.subscribe({ changed: schedule });

    handle.provide({
      authorize: async (attributes) => policy.authorize(attributes),
      rulesFor: async (user, namespace) => policy.rulesFor(user, namespace),
    });
    await untilAborted(signal);
    unsubscribe();
    for (const u of unsubscribes) u();
    clearTimeout(timer);
    await running;
  },
});

export { escalationPlugin, escalationCheck, uncovered } from './escalation.js';
export type { EscalationEnvironment } from './escalation.js';

export default [rbacPlugin, escalationPlugin];
