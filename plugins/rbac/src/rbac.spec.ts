import { expect } from 'chai';
import type { AuthorizationAttributes, UserInfo } from '@kubernel/sdk';
import { DEFAULT_CLUSTER_ROLE_BINDINGS, DEFAULT_CLUSTER_ROLES, RbacPolicy, ruleAllows, selects, staticSource, uncovered, type BindingObject, type PolicyRule, type RoleObject } from './index.js';

const user = (username: string, ...groups: string[]): UserInfo => ({ username, groups: [...groups, 'system:authenticated'] });
const res = (u: UserInfo, verb: string, resource: string, namespace = '', extra: Partial<AuthorizationAttributes> = {}): AuthorizationAttributes => ({
  user: u, verb, isResourceRequest: true, path: '', apiGroup: '', apiVersion: 'v1', namespace, resource, subresource: '', name: '', ...extra,
});
const path = (u: UserInfo, verb: string, p: string): AuthorizationAttributes => ({ user: u, verb, isResourceRequest: false, path: p, apiGroup: '', apiVersion: '', namespace: '', resource: '', subresource: '', name: '' });

const jane = user('jane', 'dev');
const sa = user('system:serviceaccount:team-a:builder', 'system:serviceaccounts');
const roles: RoleObject[] = [
  { metadata: { name: 'cm-reader', namespace: 'team-a' }, rules: [{ verbs: ['get', 'list'], apiGroups: [''], resources: ['configmaps'] }] },
  { metadata: { name: 'one-secret', namespace: 'team-a' }, rules: [{ verbs: ['get'], apiGroups: [''], resources: ['secrets'], resourceNames: ['db'] }] },
  { metadata: { name: 'scaler', namespace: 'team-a' }, rules: [{ verbs: ['update'], apiGroups: ['apps'], resources: ['deployments/scale'] }, { verbs: ['get'], apiGroups: ['*'], resources: ['*/status'] }] },
];
const bindings: BindingObject[] = [
  { metadata: { name: 'jane-view', namespace: 'team-a' }, roleRef: { kind: 'ClusterRole', name: 'view' }, subjects: [{ kind: 'User', name: 'jane' }] },
  { metadata: { name: 'dev-secret', namespace: 'team-a' }, roleRef: { kind: 'Role', name: 'one-secret' }, subjects: [{ kind: 'Group', name: 'dev' }] },
  { metadata: { name: 'builder', namespace: 'team-a' }, roleRef: { kind: 'Role', name: 'scaler' }, subjects: [{ kind: 'ServiceAccount', name: 'builder' }] },
  { metadata: { name: 'editors', namespace: 'team-a' }, roleRef: { kind: 'ClusterRole', name: 'edit' }, subjects: [{ kind: 'Group', name: 'editors' }] },
  { metadata: { name: 'dangling', namespace: 'team-a' }, roleRef: { kind: 'Role', name: 'missing' }, subjects: [{ kind: 'User', name: 'jane' }] },
];
const policy = new RbacPolicy(staticSource({ roles, clusterRoles: [...DEFAULT_CLUSTER_ROLES], roleBindings: bindings, clusterRoleBindings: [...DEFAULT_CLUSTER_ROLE_BINDINGS] }));
const allowed = (a: AuthorizationAttributes): boolean => policy.authorize(a).decision === 'allow';

describe('RBAC evaluation (Kubernetes semantics)', () => {
  const cases: Array<[string, AuthorizationAttributes, boolean]> = [
    ['view (aggregated) lets jane list pods in her namespace', res(jane, 'list', 'pods', 'team-a'), true],
    ['... and read pod logs (a subresource listed in the role)', res(jane, 'get', 'pods', 'team-a', { subresource: 'log', name: 'p' }), true],
    ['... but not exec (pods/exec is edit)', res(jane, 'create', 'pods', 'team-a', { subresource: 'exec', name: 'p' }), false],
    ['... nor in another namespace', res(jane, 'list', 'pods', 'team-b'), false],
    ['... nor cluster-wide', res(jane, 'list', 'pods'), false],
    ['... nor create', res(jane, 'create', 'pods', 'team-a'), false],
    ['edit aggregates view (nested aggregation): read and write', res(user('ed', 'editors'), 'list', 'configmaps', 'team-a'), true],
    ['... and write', res(user('ed', 'editors'), 'create', 'configmaps', 'team-a'), true],
    ['... but edit cannot touch roles (admin can)', res(user('ed', 'editors'), 'create', 'roles', 'team-a', { apiGroup: 'rbac.authorization.k8s.io' }), false],
    ['view does not read secrets', res(jane, 'get', 'secrets', 'team-a', { name: 'other' }), false],
    ['a group binding with resourceNames: the named secret', res(jane, 'get', 'secrets', 'team-a', { name: 'db' }), true],
    ['... but not another name', res(jane, 'get', 'secrets', 'team-a', { name: 'db2' }), false],
    ['... and not a list (no name)', res(jane, 'list', 'secrets', 'team-a'), false],
    ['apiGroups must match: deployments are apps, not core', res(jane, 'list', 'deployments', 'team-a'), false],
    ['... apps group for deployments', res(jane, 'list', 'deployments', 'team-a', { apiGroup: 'apps' }), true],
    ['service account subject: its scale subresource', res(sa, 'update', 'deployments', 'team-a', { apiGroup: 'apps', subresource: 'scale', name: 'web' }), true],
    ['... not the deployment itself', res(sa, 'update', 'deployments', 'team-a', { apiGroup: 'apps', name: 'web' }), false],
    ['*/status matches any resource\'s status', res(sa, 'get', 'nodes', 'team-a', { subresource: 'status' }), true],
    ['system:masters is cluster-admin through the default binding', res(user('root', 'system:masters'), 'delete', 'nodes', '', { name: 'n1' }), true],
    ['everyone authenticated may discover the API', path(jane, 'get', '/apis/apps/v1'), true],
    ['... and see /version', path(jane, 'get', '/version'), true],
    ['... but not /metrics', path(jane, 'get', '/metrics'), false],
    ['system:monitoring may read /metrics', path(user('prom', 'system:monitoring'), 'get', '/metrics'), true],
    ['everyone authenticated may ask what they can do', res(jane, 'create', 'selfsubjectaccessreviews', '', { apiGroup: 'authorization.k8s.io' }), true],
    ['the scheduler may bind pods', res(user('system:kube-scheduler'), 'create', 'pods', 'team-a', { subresource: 'binding', name: 'p' }), true],
    ['... but not delete nodes', res(user('system:kube-scheduler'), 'delete', 'nodes', '', { name: 'n' }), false],
  ];
  for (const [name, attributes, expected] of cases) {
    it(name, () => expect(allowed(attributes)).to.equal(expected));
  }

  it('names the binding that allowed a request, and never denies', () => {
    expect(policy.authorize(res(jane, 'list', 'pods', 'team-a')).reason).to.equal('RBAC: allowed by RoleBinding "jane-view" of ClusterRole "view" in namespace "team-a"');
    expect(policy.authorize(res(jane, 'delete', 'nodes')).decision).to.equal('no-opinion');
  });

  it('lists the rules a user holds in a namespace (SelfSubjectRulesReview)', () => {
    const rules = policy.rulesFor(jane, 'team-a');
    expect(rules.resourceRules.some((r) => r.resources.includes('secrets') && r.resourceNames?.includes('db'))).to.equal(true);
    expect(rules.resourceRules.some((r) => r.resources.includes('pods') && r.verbs.includes('list'))).to.equal(true);
    expect(rules.nonResourceRules.some((r) => r.nonResourceURLs.includes('/api'))).to.equal(true);
    expect(policy.rulesFor(jane, 'team-b').resourceRules.some((r) => r.resources.includes('pods'))).to.equal(false);
  });

  it('matches rules and selectors exactly as Kubernetes does', () => {
    expect(ruleAllows({ verbs: ['get'], nonResourceURLs: ['/healthz/*'] }, path(jane, 'get', '/healthz/etcd'))).to.equal(true);
    expect(ruleAllows({ verbs: ['get'], nonResourceURLs: ['/healthz'] }, path(jane, 'get', '/healthz/etcd'))).to.equal(false);
    expect(ruleAllows({ verbs: ['*'], apiGroups: ['*'], resources: ['pods'] }, res(jane, 'get', 'pods', 'x', { subresource: 'log' }))).to.equal(false);
    expect(selects({ matchExpressions: [{ key: 'tier', operator: 'In', values: ['a', 'b'] }] }, { tier: 'b' })).to.equal(true);
    expect(selects({ matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['a'] }] }, { tier: 'a' })).to.equal(false);
    expect(selects({ matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] }, {})).to.equal(true);
  });
});

describe('RBAC escalation prevention: coverage of rules (Kubernetes Covers)', () => {
  const owner = [
    { verbs: ['get', 'list'], apiGroups: [''], resources: ['pods', 'configmaps'] },
    { verbs: ['get'], apiGroups: [''], resources: ['secrets'], resourceNames: ['db'] },
    { verbs: ['*'], apiGroups: ['apps'], resources: ['*'] },
    { verbs: ['get'], nonResourceURLs: ['/healthz/*'] },
  ];
  const cases: Array<[string, PolicyRule, boolean]> = [
    ['a subset of verbs and resources', { verbs: ['get'], apiGroups: [''], resources: ['pods'] }, true],
    ['an extra verb', { verbs: ['get', 'delete'], apiGroups: [''], resources: ['pods'] }, false],
    ['a named secret held by name', { verbs: ['get'], apiGroups: [''], resources: ['secrets'], resourceNames: ['db'] }, true],
    ['every secret when only one is held', { verbs: ['get'], apiGroups: [''], resources: ['secrets'] }, false],
    ['a wildcard held as a wildcard', { verbs: ['delete'], apiGroups: ['apps'], resources: ['deployments', 'statefulsets/scale'] }, true],
    ['a wildcard not held', { verbs: ['*'], apiGroups: [''], resources: ['pods'] }, false],
    ['a URL under a held prefix', { verbs: ['get'], nonResourceURLs: ['/healthz/ping'] }, true],
    ['a URL outside it', { verbs: ['get'], nonResourceURLs: ['/metrics'] }, false],
  ];
  for (const [name, rule, ok] of cases) it(name, () => expect(uncovered(owner, [rule]).length === 0).to.equal(ok));
});
