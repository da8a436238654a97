import { join } from 'node:path';
import { expect } from 'chai';
import { ApiClient, type AdmissionRequest, type ApiObject } from '@kubernel/sdk';
import { admissionRequest, describeAdmissionContract, describeAuthorizerContract, authorizationAttributes } from '@kubernel/sdk/testing';
import {
  defaultStorageClassPlugin,
  limitRangerPlugin,
  mutatingWebhookPlugin,
  namespaceLifecyclePlugin,
  podSecurityPlugin,
  resourceQuotaPlugin,
  serviceAccountPlugin,
  validatingWebhookPlugin,
} from '@kubernel/plugin-admission';
import { nodeAuthorizerPlugin, nodeRestrictionPlugin } from '@kubernel/plugin-node';
import { escalationPlugin, rbacPlugin } from '@kubernel/plugin-rbac';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { FIXTURES } from './helpers/paths.js';
import { until } from './helpers/wait.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

/*
 * The published admission and authorizer contract suites, run against every in-repo plugin of
 * those kinds, each started on its own API client to one shared live cluster (the API semantics
 * fixture: client certificates only, so the store holds just what this file writes).
 */
describe('admission and authorizer plugins pass their published contract suites', function () {
  this.timeout(60_000);
  let c: TestCluster;
  const api = (): ApiClient => new ApiClient({ server: c.url, ca: c.tls.ca, cert: c.tls.cert!, key: c.tls.key! });
  const post = async (path: string, o: unknown): Promise<void> => {
    const r = await c.request('POST', path, JSON.stringify(o));
    expect([201, 409], r.body).to.include(r.status);
  };

  before(async () => {
    c = await startCluster(['--distribution', join(FIXTURES, 'distributions', 'authn-only.yaml')]);
    await post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'contract' } });
    await post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'strict', labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } });
    await post('/api/v1/namespaces/contract/serviceaccounts', { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } });
    await post('/api/v1/namespaces/contract/limitranges', {
      apiVersion: 'v1', kind: 'LimitRange', metadata: { name: 'lr' },
      spec: { limits: [{ type: 'Container', default: { cpu: '200m' }, max: { cpu: '1' } }] },
    });
    await post('/api/v1/namespaces/contract/resourcequotas', { apiVersion: 'v1', kind: 'ResourceQuota', metadata: { name: 'q' }, spec: { hard: { secrets: '0' } } });
    // The quota is enforced from status.hard, which the quota controller (or, here, the test) fills in.
    const q = (await c.request('GET', '/api/v1/namespaces/contract/resourcequotas/q')).json();
    await c.request('PUT', '/api/v1/namespaces/contract/resourcequotas/q/status', JSON.stringify({ ...q, status: { hard: { secrets: '0' }, used: { secrets: '0' } } }));
    await post('/apis/storage.k8s.io/v1/storageclasses', { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'fast', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } }, provisioner: 'example.com/x' });
    await post('/apis/rbac.authorization.k8s.io/v1/clusterroles', { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'contract-admin' }, rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }] });
    await until(async () => (await c.request('GET', '/api/v1/namespaces/contract/limitranges/lr')).status === 200);
  });
  after(async () => {
    await c?.stop();
  });

  const podIn = (namespace: string, spec: Record<string, unknown> = {}): ApiObject => ({
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace }, spec: { containers: [{ name: 'c', image: 'busybox' }], ...spec },
  });
  const req = (object: ApiObject, over: Partial<AdmissionRequest> = {}): (() => AdmissionRequest) => () => admissionRequest({ object: structuredClone(object), ...over });
  const options = { api } as const;

  describeAdmissionContract(namespaceLifecyclePlugin, {
    ...options,
    cases: [
      { name: 'content in an existing namespace', request: req(podIn('contract')), expect: { allowed: true } },
      { name: 'content in a missing namespace', request: req(podIn('nowhere')), expect: { denied: 404, message: 'namespaces "nowhere" not found' } },
      { name: 'deleting kube-system', request: () => admissionRequest({ operation: 'DELETE', oldObject: { kind: 'Namespace', metadata: { name: 'kube-system' } }, name: 'kube-system' }), expect: { denied: 403 } },
    ],
  });

  describeAdmissionContract(serviceAccountPlugin, {
    ...options,
    cases: [
      {
        name: 'a pod gets the default account and its token volume',
        request: req(podIn('contract')),
        expect: { allowed: true, object: (o) => expect((o as Json).spec.serviceAccountName).to.equal('default') },
      },
      { name: 'a missing account', request: req(podIn('contract', { serviceAccountName: 'ghost' })), expect: { denied: 403, message: 'serviceaccount "ghost" not found' } },
    ],
  });

  describeAdmissionContract(limitRangerPlugin, {
    ...options,
    cases: [
      { name: 'defaults a container', request: req(podIn('contract')), expect: { allowed: true, object: (o) => expect((o as Json).spec.containers[0].resources.limits.cpu).to.equal('200m') } },
      {
        name: 'refuses a container over max',
        request: req(podIn('contract', { containers: [{ name: 'c', image: 'i', resources: { limits: { cpu: '3' } } }] })),
        expect: { denied: 403, message: 'maximum cpu usage per Container is 1, but limit is 3' },
      },
    ],
  });

  describeAdmissionContract(resourceQuotaPlugin, {
    ...options,
    cases: [
      { name: 'a ConfigMap (not limited)', request: req({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: 'contract' } }), expect: { allowed: true } },
      {
        name: 'a Secret over a zero quota',
        request: req({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'contract' } }),
        expect: { denied: 403, message: 'exceeded quota: q, requested: secrets=1, used: secrets=0, limited: secrets=0' },
      },
    ],
  });

  describeAdmissionContract(podSecurityPlugin, {
    ...options,
    cases: [
      { name: 'a privileged pod where nothing is enforced', request: req(podIn('contract', { hostPID: true })), expect: { allowed: true } },
      { name: 'a privileged pod in a restricted namespace', request: req(podIn('strict', { hostPID: true })), expect: { denied: 403, message: 'violates PodSecurity "restricted:latest"' } },
    ],
  });

  describeAdmissionContract(defaultStorageClassPlugin, {
    ...options,
    cases: [
      {
        name: 'a claim without a class',
        request: req({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'c', namespace: 'contract' }, spec: { resources: { requests: { storage: '1Gi' } } } }),
        expect: { allowed: true, object: (o) => expect((o as Json).spec.storageClassName).to.equal('fast') },
      },
    ],
  });

  for (const plugin of [mutatingWebhookPlugin, validatingWebhookPlugin]) {
    describeAdmissionContract(plugin, {
      ...options,
      cases: [{ name: 'anything, with no webhook configured', request: req(podIn('contract')), expect: { allowed: true } }],
    });
  }

  describeAdmissionContract(nodeRestrictionPlugin, {
    ...options,
    cases: [
      {
        name: 'a node updating another node',
        request: () => admissionRequest({ operation: 'UPDATE', object: { kind: 'Node', metadata: { name: 'n2' } }, oldObject: { kind: 'Node', metadata: { name: 'n2' } }, resource: { group: '', version: 'v1', resource: 'nodes' }, namespace: '', name: 'n2', user: { username: 'system:node:n1', groups: ['system:nodes'] } }),
        expect: { denied: 403 },
      },
    ],
  });

  describeAdmissionContract(escalationPlugin, {
    ...options,
    cases: [
      {
        name: 'binding an all-powerful role without holding it',
        request: () => admissionRequest({
          object: { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'grab' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'contract-admin' }, subjects: [{ kind: 'User', name: 'alice' }] } as ApiObject,
          resource: { group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'clusterrolebindings' },
          kind: { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'ClusterRoleBinding' },
          namespace: '',
          name: 'grab',
        }),
        expect: { denied: 403 },
      },
    ],
  });

  const alice = { username: 'alice', groups: ['system:authenticated'] };
  const n1 = { username: 'system:node:n1', groups: ['system:nodes', 'system:authenticated'] };
  describeAuthorizerContract(rbacPlugin, {
    ...options,
    allows: [authorizationAttributes({ user: alice, verb: 'create', resource: 'selfsubjectaccessreviews', apiGroup: 'authorization.k8s.io' })],
    refuses: [
      authorizationAttributes({ user: alice, verb: 'get', resource: 'secrets', namespace: 'kube-system', name: 'x' }),
      authorizationAttributes({ user: alice, verb: 'escalate', resource: 'clusterroles', apiGroup: 'rbac.authorization.k8s.io' }),
    ],
  });
  describeAuthorizerContract(nodeAuthorizerPlugin, {
    ...options,
    allows: [authorizationAttributes({ user: n1, verb: 'update', resource: 'nodes', subresource: 'status', name: 'n1' })],
    refuses: [
      authorizationAttributes({ user: n1, verb: 'update', resource: 'nodes', subresource: 'status', name: 'n2' }),
      authorizationAttributes({ user: alice, verb: 'get', resource: 'nodes', name: 'n1' }),
    ],
  });
});
