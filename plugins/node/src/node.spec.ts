import { expect } from 'chai';
import type { AdmissionRequest, AuthorizationAttributes, KubeObject, UserInfo } from '@kubernel/sdk';
import { admissionRequest, describePluginContract } from '@kubernel/sdk/testing';
import { NodeGraph, nodeAuthorizer, nodeRestriction, nodeRestrictionPlugin } from './index.js';

describePluginContract(nodeRestrictionPlugin, { invalidConfigs: [] });

const n1: UserInfo = { username: 'system:node:n1', groups: ['system:nodes', 'system:authenticated'] };
const pod = (ns: string, name: string, node: string, spec: Record<string, unknown> = {}): KubeObject => ({ metadata: { namespace: ns, name }, spec: { nodeName: node, ...spec } });
const graph = new NodeGraph();
graph.set(pod('a', 'web', 'n1', {
  serviceAccountName: 'web-sa',
  volumes: [{ name: 'v', secret: { secretName: 'tls' } }, { name: 'c', configMap: { name: 'cfg' } }, { name: 'd', persistentVolumeClaim: { claimName: 'data' } }, { name: 'p', projected: { sources: [{ secret: { name: 'projected' } }] } }],
  containers: [{ name: 'c', env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'env-secret', key: 'k' } } }], envFrom: [{ configMapRef: { name: 'env-cm' } }] }],
}));
graph.set(pod('a', 'other', 'n2', { volumes: [{ name: 'v', secret: { secretName: 'not-yours' } }] }));
const authz = nodeAuthorizer(graph);
const res = (verb: string, resource: string, namespace: string, name: string, extra: Partial<AuthorizationAttributes> = {}): AuthorizationAttributes => ({
  user: n1, verb, isResourceRequest: true, path: '', apiGroup: '', apiVersion: 'v1', namespace, resource, subresource: '', name, ...extra,
});

describe('Node authorizer (graph of pods bound to the node)', () => {
  const cases: Array<[string, AuthorizationAttributes, boolean]> = [
    ['a secret volume of its pod', res('get', 'secrets', 'a', 'tls'), true],
    ['a projected secret', res('get', 'secrets', 'a', 'projected'), true],
    ['an env secret', res('get', 'secrets', 'a', 'env-secret'), true],
    ['a configmap volume and an envFrom configmap', res('get', 'configmaps', 'a', 'cfg'), true],
    ['... envFrom', res('get', 'configmaps', 'a', 'env-cm'), true],
    ['a claim', res('get', 'persistentvolumeclaims', 'a', 'data'), true],
    ['another node\'s pod\'s secret', res('get', 'secrets', 'a', 'not-yours'), false],
    ['the same name in another namespace', res('get', 'secrets', 'b', 'tls'), false],
    ['listing secrets', res('list', 'secrets', 'a', ''), false],
    ['a token for its pod\'s service account', res('create', 'serviceaccounts', 'a', 'web-sa', { subresource: 'token' }), true],
    ['a token for another service account', res('create', 'serviceaccounts', 'a', 'admin', { subresource: 'token' }), false],
    ['its own pod\'s status', res('update', 'pods', 'a', 'web', { subresource: 'status' }), true],
    ['another node\'s pod\'s status', res('update', 'pods', 'a', 'other', { subresource: 'status' }), false],
    ['its own node status', res('patch', 'nodes', '', 'n1', { subresource: 'status' }), true],
    ['another node', res('update', 'nodes', '', 'n2'), false],
    ['reading nodes', res('list', 'nodes', '', ''), true],
    ['its lease', res('update', 'leases', 'kube-node-lease', 'n1', { apiGroup: 'coordination.k8s.io' }), true],
    ['another lease', res('update', 'leases', 'kube-node-lease', 'n2', { apiGroup: 'coordination.k8s.io' }), false],
    ['deployments', res('list', 'deployments', 'a', '', { apiGroup: 'apps' }), false],
  ];
  for (const [name, a, ok] of cases) it(name, async () => expect((await authz.authorize(a)).decision).to.equal(ok ? 'allow' : 'no-opinion'));

  it('has no opinion about anyone but nodes', async () => {
    expect((await authz.authorize({ ...res('get', 'secrets', 'a', 'tls'), user: { username: 'system:node:n1', groups: ['system:authenticated'] } })).decision).to.equal('no-opinion');
  });
});

describe('NodeRestriction admission', () => {
  const admission = nodeRestriction();
  const req = (over: Partial<AdmissionRequest>): AdmissionRequest =>
    admissionRequest({ operation: 'UPDATE', namespace: 'a', name: 'web', user: n1, ...over });
  const outcome = async (r: AdmissionRequest): Promise<string> => {
    try {
      await admission.validate!(r);
      return 'allowed';
    } catch (err) {
      return (err as Error).message;
    }
  };
  it('lets a node write only its own objects', async () => {
    expect(await outcome(req({ resource: { group: '', version: 'v1', resource: 'nodes' }, name: 'n1' }))).to.equal('allowed');
    expect(await outcome(req({ resource: { group: '', version: 'v1', resource: 'nodes' }, name: 'n2' }))).to.equal('node "n1" is not allowed to modify node "n2"');
    expect(await outcome(req({ subresource: 'status', oldObject: pod('a', 'web', 'n1') }))).to.equal('allowed');
    expect(await outcome(req({ subresource: 'status', name: 'other', oldObject: pod('a', 'other', 'n2') }))).to.contain('not bound to it');
    expect(await outcome(req({ operation: 'CREATE', object: pod('a', 'm', 'n1') }))).to.contain('not mirror pods');
    expect(await outcome(req({ operation: 'CREATE', object: { ...pod('a', 'm', 'n1'), metadata: { name: 'm', namespace: 'a', annotations: { 'kubernetes.io/config.mirror': 'x' } } } }))).to.equal('allowed');
    expect(await outcome(req({ operation: 'CREATE', object: { ...pod('a', 'm', 'n2'), metadata: { name: 'm', namespace: 'a', annotations: { 'kubernetes.io/config.mirror': 'x' } } } }))).to.contain('bound to node "n2"');
    expect(await outcome(req({ resource: { group: 'coordination.k8s.io', version: 'v1', resource: 'leases' }, namespace: 'kube-node-lease', name: 'n2' }))).to.contain('lease');
    expect(admission.handles!(req({ user: { username: 'jane', groups: [] } }))).to.equal(false);
  });
});
