import type { BindingObject, PolicyRule, RoleObject } from './policy.js';

/**
 * The default cluster policy, after Kubernetes' bootstrap policy (the roles and bindings
 * `kube-apiserver` creates at start): the user-facing roles (cluster-admin, and admin/edit/view
 * aggregated from the `aggregate-to-*` roles), discovery and self-review for every authenticated
 * user, and the control-plane components' roles. Objects carry the
 * `rbac.authorization.kubernetes.io/autoupdate: "true"` annotation: the plugin restores missing
 * rules and subjects of those at every start; an administrator who sets it to "false" keeps their
 * own version.
 */
const READ = ['get', 'list', 'watch'];
const WRITE = ['create', 'delete', 'deletecollection', 'patch', 'update'];
const ALL = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
const rule = (verbs: string[], apiGroups: string[], resources: string[]): PolicyRule => ({ verbs, apiGroups, resources });
const urls = (verbs: string[], nonResourceURLs: string[]): PolicyRule => ({ verbs, nonResourceURLs });

export const AUTOUPDATE = 'rbac.authorization.kubernetes.io/autoupdate';
const meta = (name: string, labels: Record<string, string> = {}): RoleObject['metadata'] & { annotations: Record<string, string> } => ({
  name,
  labels: { 'kubernetes.io/bootstrapping': 'rbac-defaults', ...labels },
  annotations: { [AUTOUPDATE]: 'true' },
});
const clusterRole = (name: string, rules: PolicyRule[], labels: Record<string, string> = {}): RoleObject => ({ kind: 'ClusterRole', metadata: meta(name, labels), rules });
const aggregated = (name: string, to: string[], labels: Record<string, string> = {}): RoleObject => ({
  kind: 'ClusterRole',
  metadata: meta(name, labels),
  rules: [],
  aggregationRule: { clusterRoleSelectors: to.map((t) => ({ matchLabels: { [`rbac.authorization.k8s.io/aggregate-to-${t}`]: 'true' } })) },
});
const binding = (name: string, role: string, subjects: Array<{ kind: 'User' | 'Group'; name: string }>): BindingObject => ({
  kind: 'ClusterRoleBinding',
  metadata: meta(name),
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
  subjects: subjects.map((s) => ({ apiGroup: 'rbac.authorization.k8s.io', ...s })),
});

const VIEW_CORE = ['configmaps', 'endpoints', 'persistentvolumeclaims', 'persistentvolumeclaims/status', 'pods', 'replicationcontrollers', 'replicationcontrollers/scale', 'serviceaccounts', 'services', 'services/status', 'bindings', 'events', 'limitranges', 'namespaces/status', 'pods/log', 'pods/status', 'replicationcontrollers/status', 'resourcequotas', 'resourcequotas/status', 'namespaces'];
const APPS = ['controllerrevisions', 'daemonsets', 'daemonsets/status', 'deployments', 'deployments/scale', 'deployments/status', 'replicasets', 'replicasets/scale', 'replicasets/status', 'statefulsets', 'statefulsets/scale', 'statefulsets/status'];

export const DEFAULT_CLUSTER_ROLES: readonly RoleObject[] = [
  clusterRole('cluster-admin', [rule(['*'], ['*'], ['*']), urls(['*'], ['*'])]),
  aggregated('admin', ['admin']),
  aggregated('edit', ['edit'], { 'rbac.authorization.k8s.io/aggregate-to-admin': 'true' }),
  aggregated('view', ['view'], { 'rbac.authorization.k8s.io/aggregate-to-edit': 'true' }),
  clusterRole('system:aggregate-to-admin', [
    rule(ALL, ['rbac.authorization.k8s.io'], ['rolebindings', 'roles']),
    rule(['create'], ['authorization.k8s.io'], ['localsubjectaccessreviews']),
  ], { 'rbac.authorization.k8s.io/aggregate-to-admin': 'true' }),
  clusterRole('system:aggregate-to-edit', [
    rule(WRITE, [''], ['pods', 'pods/attach', 'pods/exec', 'pods/portforward', 'pods/proxy']),
    rule(['create'], [''], ['pods/eviction']),
    rule(WRITE, [''], ['configmaps', 'events', 'persistentvolumeclaims', 'replicationcontrollers', 'replicationcontrollers/scale', 'secrets', 'serviceaccounts', 'services', 'services/proxy']),
    rule(['create'], [''], ['serviceaccounts/token']),
    rule(WRITE, ['apps'], ['daemonsets', 'deployments', 'deployments/rollback', 'deployments/scale', 'replicasets', 'replicasets/scale', 'statefulsets', 'statefulsets/scale']),
    rule(WRITE, ['policy'], ['poddisruptionbudgets']),
    rule(WRITE, ['discovery.k8s.io'], ['endpointslices']),
    rule(READ, [''], ['pods/attach', 'pods/exec', 'pods/portforward', 'pods/proxy', 'secrets', 'services/proxy']),
    rule(['impersonate'], [''], ['serviceaccounts']),
  ], { 'rbac.authorization.k8s.io/aggregate-to-edit': 'true' }),
  clusterRole('system:aggregate-to-view', [
    rule(READ, [''], VIEW_CORE),
    rule(READ, ['apps'], APPS),
    rule(READ, ['policy'], ['poddisruptionbudgets', 'poddisruptionbudgets/status']),
    rule(READ, ['discovery.k8s.io'], ['endpointslices']),
  ], { 'rbac.authorization.k8s.io/aggregate-to-view': 'true' }),
  clusterRole('system:discovery', [urls(['get'], ['/api', '/api/*', '/apis', '/apis/*', '/healthz', '/livez', '/openapi', '/openapi/*', '/readyz', '/version', '/version/'])]),
  clusterRole('system:basic-user', [
    rule(['create'], ['authorization.k8s.io'], ['selfsubjectaccessreviews', 'selfsubjectrulesreviews']),
    rule(['create'], ['authentication.k8s.io'], ['selfsubjectreviews']),
  ]),
  clusterRole('system:service-account-issuer-discovery', [urls(['get'], ['/.well-known/openid-configuration', '/.well-known/openid-configuration/', '/openid/v1/jwks', '/openid/v1/jwks/'])]),
  clusterRole('system:public-info-viewer', [urls(['get'], ['/healthz', '/livez', '/readyz', '/version', '/version/'])]),
  clusterRole('system:monitoring', [urls(['get'], ['/healthz', '/healthz/*', '/livez', '/livez/*', '/readyz', '/readyz/*', '/metrics', '/metrics/slis'])]),
  clusterRole('system:kube-scheduler', [
    rule(['create', 'patch', 'update'], ['', 'events.k8s.io'], ['events']),
    rule(['create'], ['coordination.k8s.io'], ['leases']),
    rule(['get', 'update'], ['coordination.k8s.io'], ['leases']),
    rule(READ, [''], ['nodes', 'namespaces', 'replicationcontrollers', 'services', 'persistentvolumes', 'persistentvolumeclaims']),
    rule(['delete', 'get', 'list', 'watch'], [''], ['pods']),
    rule(['create'], [''], ['bindings', 'pods/binding']),
    rule(['patch', 'update'], [''], ['pods/status']),
    rule(READ, ['apps'], ['replicasets', 'statefulsets']),
    rule(READ, ['policy'], ['poddisruptionbudgets']),
    rule(READ, ['storage.k8s.io'], ['csidrivers', 'csinodes', 'csistoragecapacities', 'storageclasses', 'volumeattachments']),
    rule(['create'], ['authentication.k8s.io'], ['tokenreviews']),
    rule(['create'], ['authorization.k8s.io'], ['subjectaccessreviews']),
  ]),
  // Kubernel's controller manager runs every controller under one identity (Kubernetes does too
  // without --use-service-account-credentials), so its role is broad.
  clusterRole('system:kube-controller-manager', [rule(['*'], ['*'], ['*'])]),
  clusterRole('system:node-proxier', [
    rule(READ, [''], ['endpoints', 'services', 'nodes']),
    rule(READ, ['discovery.k8s.io'], ['endpointslices']),
    rule(['create', 'patch', 'update'], ['', 'events.k8s.io'], ['events']),
  ]),
  // Node TLS bootstrap: requesting certificates, and the permissions the CSR approver checks
  // (with a SubjectAccessReview) before it approves a kubelet client certificate.
  clusterRole('system:node-bootstrapper', [rule(['create', 'get', 'list', 'watch'], ['certificates.k8s.io'], ['certificatesigningrequests'])]),
  clusterRole('system:certificates.k8s.io:certificatesigningrequests:nodeclient', [rule(['create'], ['certificates.k8s.io'], ['certificatesigningrequests/nodeclient'])]),
  clusterRole('system:certificates.k8s.io:certificatesigningrequests:selfnodeclient', [rule(['create'], ['certificates.k8s.io'], ['certificatesigningrequests/selfnodeclient'])]),
];

export const DEFAULT_CLUSTER_ROLE_BINDINGS: readonly BindingObject[] = [
  binding('cluster-admin', 'cluster-admin', [{ kind: 'Group', name: 'system:masters' }]),
  binding('system:discovery', 'system:discovery', [{ kind: 'Group', name: 'system:authenticated' }]),
  binding('system:basic-user', 'system:basic-user', [{ kind: 'Group', name: 'system:authenticated' }]),
  binding('system:public-info-viewer', 'system:public-info-viewer', [{ kind: 'Group', name: 'system:authenticated' }, { kind: 'Group', name: 'system:unauthenticated' }]),
  binding('system:service-account-issuer-discovery', 'system:service-account-issuer-discovery', [{ kind: 'Group', name: 'system:serviceaccounts' }]),
  binding('system:monitoring', 'system:monitoring', [{ kind: 'Group', name: 'system:monitoring' }]),
  binding('system:kube-scheduler', 'system:kube-scheduler', [{ kind: 'User', name: 'system:kube-scheduler' }]),
  binding('system:kube-controller-manager', 'system:kube-controller-manager', [{ kind: 'User', name: 'system:kube-controller-manager' }]),
  binding('system:node-proxier', 'system:node-proxier', [{ kind: 'User', name: 'system:kube-proxy' }]),
  // kubeadm's bootstrap bindings (same names, so guides and tools that look for them find them):
  // bootstrap-token users may request certificates, and get kubelet client certificates approved;
  // nodes get their renewals approved.
  binding('kubeadm:kubelet-bootstrap', 'system:node-bootstrapper', [{ kind: 'Group', name: 'system:bootstrappers' }]),
  binding('kubeadm:node-autoapprove-bootstrap', 'system:certificates.k8s.io:certificatesigningrequests:nodeclient', [{ kind: 'Group', name: 'system:bootstrappers' }]),
  binding('kubeadm:node-autoapprove-certificate-rotation', 'system:certificates.k8s.io:certificatesigningrequests:selfnodeclient', [{ kind: 'Group', name: 'system:nodes' }]),
  // Kubernetes' Node authorizer lets nodes create and read CSRs (its node rules); Kubernel's leaves
  // that to RBAC, so nodes can request their renewals.
  binding('kubernel:node-certificate-requests', 'system:node-bootstrapper', [{ kind: 'Group', name: 'system:nodes' }]),
];
