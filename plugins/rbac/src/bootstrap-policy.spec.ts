import { expect } from 'chai';
import type { AuthorizationAttributes, UserInfo } from '@kubernel/sdk';
import { DEFAULT_CLUSTER_ROLE_BINDINGS, DEFAULT_CLUSTER_ROLES, RbacPolicy, staticSource } from './index.js';

const policy = new RbacPolicy(staticSource({ roles: [], clusterRoles: [...DEFAULT_CLUSTER_ROLES], roleBindings: [], clusterRoleBindings: [...DEFAULT_CLUSTER_ROLE_BINDINGS] }));
const csr = (user: UserInfo, verb: string, subresource = ''): AuthorizationAttributes => ({
  user, verb, isResourceRequest: true, path: '', apiGroup: 'certificates.k8s.io', apiVersion: '*', namespace: '', resource: 'certificatesigningrequests', subresource, name: '',
});
const allowed = (a: AuthorizationAttributes): boolean => policy.authorize(a).decision === 'allow';
const bootstrapper: UserInfo = { username: 'system:bootstrap:abc123', groups: ['system:bootstrappers', 'system:authenticated'] };
const node: UserInfo = { username: 'system:node:n1', groups: ['system:nodes', 'system:authenticated'] };
const jane: UserInfo = { username: 'jane', groups: ['system:authenticated'] };

describe('RBAC defaults for node TLS bootstrap (kubeadm\'s bindings)', () => {
  it('lets bootstrap tokens request certificates and have kubelet client certificates approved (nodeclient)', () => {
    expect(['create', 'get', 'list', 'watch', 'delete'].map((v) => allowed(csr(bootstrapper, v)))).to.deep.equal([true, true, true, true, false]);
    expect([allowed(csr(bootstrapper, 'create', 'nodeclient')), allowed(csr(bootstrapper, 'create', 'selfnodeclient'))]).to.deep.equal([true, false]);
    expect(allowed(csr(bootstrapper, 'update', 'approval'))).to.equal(false);
  });

  it('lets nodes request and renew their own (selfnodeclient), not approve', () => {
    expect([allowed(csr(node, 'create')), allowed(csr(node, 'create', 'selfnodeclient')), allowed(csr(node, 'create', 'nodeclient')), allowed(csr(node, 'update', 'approval'))]).to.deep.equal([true, true, false, false]);
  });

  it('gives ordinary users none of it', () => {
    expect([allowed(csr(jane, 'create')), allowed(csr(jane, 'create', 'nodeclient')), allowed(csr(jane, 'create', 'selfnodeclient'))]).to.deep.equal([false, false, false]);
  });

  it('ships the roles and bindings under Kubernetes\' and kubeadm\'s names', () => {
    const roles = DEFAULT_CLUSTER_ROLES.map((r) => r.metadata.name);
    for (const r of ['system:node-bootstrapper', 'system:certificates.k8s.io:certificatesigningrequests:nodeclient', 'system:certificates.k8s.io:certificatesigningrequests:selfnodeclient']) expect(roles).to.include(r);
    const bindings = Object.fromEntries(DEFAULT_CLUSTER_ROLE_BINDINGS.map((b) => [b.metadata.name, [b.roleRef.name, ...b.subjects!.map((s) => `${s.kind}:${s.name}`)]]));
    expect(bindings['kubeadm:kubelet-bootstrap']).to.deep.equal(['system:node-bootstrapper', 'Group:system:bootstrappers']);
    expect(bindings['kubeadm:node-autoapprove-bootstrap']).to.deep.equal(['system:certificates.k8s.io:certificatesigningrequests:nodeclient', 'Group:system:bootstrappers']);
    expect(bindings['kubeadm:node-autoapprove-certificate-rotation']).to.deep.equal(['system:certificates.k8s.io:certificatesigningrequests:selfnodeclient', 'Group:system:nodes']);
  });
});
