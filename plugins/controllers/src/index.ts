/**
 * `@kubernel/plugin-controllers`: the controller manager's controllers, each a plugin of kind
 * `controller` a distribution enables or replaces on its own.
 *
 * - `serviceaccount-controller`: a `default` ServiceAccount in every active namespace.
 * - `root-ca-cert-publisher`: the `kube-root-ca.crt` ConfigMap (the cluster CA as `ca.crt`) in
 *   every active namespace, for the projected service-account volume.
 * - `replicaset-controller`, `replicationcontroller-controller`: the replica count, adoption and
 *   release of pods, expectations.
 *
 * @packageDocumentation
 */
import { readFile } from 'node:fs/promises';
import { definePlugin, untilAborted, type KubeObject } from '@kubernel/sdk';
import { createIfMissing, getOrUndefined, PerNamespaceEnsurer } from './namespaced-ensure.js';
import { replicaSetControllerPlugin, replicationControllerPlugin } from './replicaset.js';

const nsPath = (ns: string): string => `/api/v1/namespaces/${encodeURIComponent(ns)}`;

/** The ServiceAccount controller (Kubernetes' `serviceaccount` controller). */
export const serviceAccountControllerPlugin = definePlugin({
  id: 'serviceaccount-controller',
  kind: 'controller',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'ServiceAccount controller: the listed service accounts (default: "default") exist in every active namespace.',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: { serviceAccounts: { type: 'array', items: { type: 'string', minLength: 1 }, default: ['default'], description: 'Accounts to keep in every namespace.' } },
  },
  async start(handle, config: { serviceAccounts: string[] }, signal) {
    const namespaces = handle.api.informer('/api/v1/namespaces');
    const accounts = handle.api.informer('/api/v1/serviceaccounts');
    const wanted = new Set(config.serviceAccounts);
    const loop = new PerNamespaceEnsurer(namespaces, handle.logger, async (ns) => {
      for (const name of wanted) {
        if (accounts.get(`${ns}/${name}`)) continue;
        await createIfMissing(handle.api, `${nsPath(ns)}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns } });
        handle.logger.info({ namespace: ns, serviceAccount: name }, 'created service account');
      }
    });
    const unsubscribe = [
      namespaces.subscribe({ add: (n) => loop.enqueue(String(n.metadata?.name)), update: (n) => loop.enqueue(String(n.metadata?.name)) }),
      accounts.subscribe({ delete: (sa) => wanted.has(String(sa.metadata?.name)) && loop.enqueue(String(sa.metadata?.namespace)) }),
    ];
    namespaces.run();
    accounts.run();
    await Promise.all([namespaces.waitForSync(signal), accounts.waitForSync(signal)]);
    for (const n of namespaces.list()) loop.enqueue(String(n.metadata?.name));
    handle.ready();
    await untilAborted(signal);
    loop.stop();
    for (const u of unsubscribe) u();
  },
});

/** The name of the ConfigMap the root CA publisher keeps. */
export const ROOT_CA_CONFIGMAP = 'kube-root-ca.crt';

/** The root CA publisher (Kubernetes' `root-ca-cert-publisher` controller). */
export const rootCaPublisherPlugin = definePlugin({
  id: 'root-ca-cert-publisher',
  kind: 'controller',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'Root CA publisher: the kube-root-ca.crt ConfigMap with the cluster CA in every active namespace.',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: { rootCAFile: { type: 'string', description: 'PEM file of the CA to publish; default: the CA the API connection trusts.' } },
  },
  async start(handle, config: { rootCAFile?: string }, signal) {
    const ca = config.rootCAFile ? await readFile(config.rootCAFile, 'utf8') : handle.api.connection.ca;
    if (!ca) throw new Error('no CA to publish: set rootCAFile (the API connection has no CA)');
    const namespaces = handle.api.informer('/api/v1/namespaces');
    const configMaps = handle.api.informer('/api/v1/configmaps');
    const desired = (ns: string): KubeObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: ROOT_CA_CONFIGMAP, namespace: ns, annotations: { 'kubernetes.io/description': 'Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.' } }, data: { 'ca.crt': ca } });
    const loop = new PerNamespaceEnsurer(namespaces, handle.logger, async (ns) => {
      const path = `${nsPath(ns)}/configmaps/${ROOT_CA_CONFIGMAP}`;
      const current = configMaps.get(`${ns}/${ROOT_CA_CONFIGMAP}`) ?? (await getOrUndefined(handle.api, path));
      if (!current) return createIfMissing(handle.api, `${nsPath(ns)}/configmaps`, desired(ns));
      if ((current.data as Record<string, string> | undefined)?.['ca.crt'] === ca) return;
      await handle.api.update(path, { ...current, data: { ...(current.data as object), 'ca.crt': ca } });
    });
    const mine = (cm: KubeObject): boolean => cm.metadata?.name === ROOT_CA_CONFIGMAP;
    const unsubscribe = [
      namespaces.subscribe({ add: (n) => loop.enqueue(String(n.metadata?.name)), update: (n) => loop.enqueue(String(n.metadata?.name)) }),
      configMaps.subscribe({
        delete: (cm) => mine(cm) && loop.enqueue(String(cm.metadata?.namespace)),
        update: (cm) => mine(cm) && loop.enqueue(String(cm.metadata?.namespace)),
      }),
    ];
    namespaces.run();
    configMaps.run();
    await Promise.all([namespaces.waitForSync(signal), configMaps.waitForSync(signal)]);
    for (const n of namespaces.list()) loop.enqueue(String(n.metadata?.name));
    handle.ready();
    await untilAborted(signal);
    loop.stop();
    for (const u of unsubscribe) u();
  },
});

export { replicaSetControllerPlugin, replicationControllerPlugin, ReplicaReconciler, Expectations, deletionOrder, isActivePod, isPodReady, isPodAvailable, selectorOf, REPLICA_SET, REPLICATION_CONTROLLER, BURST_REPLICAS } from './replicaset.js';
export type { ReplicaKind } from './replicaset.js';

export default [serviceAccountControllerPlugin, rootCaPublisherPlugin, replicaSetControllerPlugin, replicationControllerPlugin];
