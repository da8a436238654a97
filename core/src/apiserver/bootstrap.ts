import { randomUUID } from 'node:crypto';
import { chmod, writeFile } from 'node:fs/promises';
import type { Logger } from '@kubernel/sdk';
import { KeyExistsError, type Store } from '../store/index.js';
import type { ServiceAllocators } from './allocator.js';
import type { Obj } from './resource.js';

/** The namespaces every cluster has. */
export const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

const now = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

async function ensure(store: Store, key: string, make: () => Obj): Promise<void> {
  if (await store.get(key)) return;
  try {
    await store.create(key, make());
  } catch (err) {
    if (!(err instanceof KeyExistsError)) throw err;
  }
}

/**
 * Creates what a cluster must have, idempotently (several API servers may race; the store's
 * create settles it): the system namespaces and the `kubernetes` Service in `default`, with
 * Endpoints listing this API server.
 */
export async function bootstrapCluster(store: Store, allocators: ServiceAllocators, advertise: { ip: string; port: number }, log: Logger): Promise<void> {
  for (const name of SYSTEM_NAMESPACES) {
    await ensure(store, `/registry/core/namespaces/${name}`, () => ({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name, uid: randomUUID(), creationTimestamp: now(), labels: { 'kubernetes.io/metadata.name': name } },
      spec: { finalizers: ['kubernetes'] },
      status: { phase: 'Active' },
    }));
  }
  const ip = allocators.kubernetesServiceIP;
  if (!(await store.get('/registry/core/services/default/kubernetes'))) {
    try {
      await allocators.clusterIP(ip, false);
    } catch {
      // Allocated by another API server that got here first.
    }
  }
  await ensure(store, '/registry/core/services/default/kubernetes', () => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'kubernetes', namespace: 'default', uid: randomUUID(), creationTimestamp: now(), labels: { component: 'apiserver', provider: 'kubernetes' } },
    spec: {
      type: 'ClusterIP',
      clusterIP: ip,
      clusterIPs: [ip],
      ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: advertise.port }],
      sessionAffinity: 'None',
      internalTrafficPolicy: 'Cluster',
      ipFamilies: ['IPv4'],
      ipFamilyPolicy: 'SingleStack',
    },
    status: { loadBalancer: {} },
  }));
  await ensure(store, '/registry/core/endpoints/default/kubernetes', () => ({
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: 'kubernetes', namespace: 'default', uid: randomUUID(), creationTimestamp: now(), labels: { 'endpointslice.kubernetes.io/skip-mirror': 'true' } },
    subsets: [],
  }));
  await store.guaranteedUpdate('/registry/core/endpoints/default/kubernetes', (current) => {
    const o = structuredClone(current.value) as Obj;
    const addresses = new Set<string>(((o.subsets?.[0]?.addresses ?? []) as Obj[]).map((a) => a.ip as string));
    addresses.add(advertise.ip);
    o.subsets = [{ addresses: [...addresses].sort().map((a) => ({ ip: a })), ports: [{ name: 'https', port: advertise.port, protocol: 'TCP' }] }];
    return o;
  });
  log.info({ serviceIP: ip }, 'cluster bootstrap done: system namespaces, the kubernetes service and its endpoints');
}

/** Writes a kubeconfig (mode 0600) pointing at `server`, with the given user credentials. */
export async function writeKubeconfig(path: string, server: string, caCert: string | undefined, user: Obj = {}): Promise<void> {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'kubernel', cluster: { server, ...(caCert ? { 'certificate-authority-data': Buffer.from(caCert).toString('base64') } : {}) } }],
    users: [{ name: 'admin', user }],
    contexts: [{ name: 'kubernel', context: { cluster: 'kubernel', user: 'admin', namespace: 'default' } }],
    'current-context': 'kubernel',
    preferences: {},
  };
  await writeFile(path, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  await chmod(path, 0o600);
}
