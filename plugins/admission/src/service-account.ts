import { randomBytes } from 'node:crypto';
import { AdmissionDenied, definePlugin, untilAborted, type Admission, type ApiClient, type Informer, type KubeObject } from '@kubernel/sdk';
import { cachedOrLive, containersOf, objectRef, type Fields } from './common.js';

/** Where the token, CA bundle and namespace are mounted in every container. */
export const TOKEN_MOUNT_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';
/** The ConfigMap (in every namespace) carrying the cluster CA as `ca.crt`. */
export const ROOT_CA_CONFIGMAP = 'kube-root-ca.crt';
/** Kubernetes asks for 3607 s tokens (one hour plus seven seconds, so the kubelet's refresh at 80% is visible). */
export const TOKEN_EXPIRATION_SECONDS = 3607;

const MIRROR = 'kubernetes.io/config.mirror';
const SUFFIX = 'bcdfghjklmnpqrstvwxz2456789';

/** The `kube-api-access-<random>` projected volume Kubernetes adds to a pod. */
export function apiAccessVolume(name: string): Record<string, unknown> {
  return {
    name,
    projected: {
      defaultMode: 0o644,
      sources: [
        { serviceAccountToken: { expirationSeconds: TOKEN_EXPIRATION_SECONDS, path: 'token' } },
        { configMap: { name: ROOT_CA_CONFIGMAP, items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
      ],
    },
  };
}

/**
 * ServiceAccount admission: a pod runs as `spec.serviceAccountName` (`default` when unset), which
 * must exist; unless the pod or its service account opts out (`automountServiceAccountToken:
 * false`), every container gets the projected token volume at {@link TOKEN_MOUNT_PATH}. Mirror
 * pods (static pods of a node) may not use service accounts or API credentials.
 */
export function serviceAccountAdmission(accounts: Informer, api?: ApiClient): Admission {
  return {
    handles: (r) => r.operation === 'CREATE' && r.subresource === '' && r.resource.group === '' && r.resource.resource === 'pods',
    async admit(r) {
      const pod = r.object as KubeObject & { spec?: Fields };
      if (typeof pod?.spec !== 'object' || pod.spec === null) return;
      const spec = pod.spec;
      if (pod.metadata?.annotations?.[MIRROR] !== undefined) {
        if (spec.serviceAccountName || spec.serviceAccount) {
          throw new AdmissionDenied(`${objectRef('pods', r.name)} is forbidden: a mirror pod may not reference service accounts`, 403, [{ field: 'spec.serviceAccountName', message: 'a mirror pod may not reference service accounts' }]);
        }
        return;
      }
      const name = String(spec.serviceAccountName || spec.serviceAccount || 'default');
      spec.serviceAccountName = name;
      spec.serviceAccount = name;
      const sa = await cachedOrLive(accounts, api, `${r.namespace}/${name}`, `/api/v1/namespaces/${encodeURIComponent(r.namespace)}/serviceaccounts/${encodeURIComponent(name)}`);
      if (!sa) {
        throw new AdmissionDenied(`${objectRef('pods', r.name)} is forbidden: error looking up service account ${r.namespace}/${name}: serviceaccount "${name}" not found`, 403);
      }
      const automount = spec.automountServiceAccountToken ?? (sa as { automountServiceAccountToken?: boolean }).automountServiceAccountToken ?? true;
      if (automount === false) return;
      const containers = containersOf(spec);
      const mounted = (c: Fields): boolean => Array.isArray(c.volumeMounts) && c.volumeMounts.some((m: { mountPath?: string }) => m?.mountPath === TOKEN_MOUNT_PATH);
      if (containers.length > 0 && containers.every(({ container }) => mounted(container))) return;
      const volumes: Array<{ name?: string }> = Array.isArray(spec.volumes) ? spec.volumes : (spec.volumes = []);
      let volumeName: string;
      do volumeName = `kube-api-access-${Array.from(randomBytes(5), (b) => SUFFIX[b % SUFFIX.length]).join('')}`;
      while (volumes.some((v) => v?.name === volumeName));
      volumes.push(apiAccessVolume(volumeName));
      for (const { container } of containers) {
        if (mounted(container)) continue;
        (container.volumeMounts ??= []).push({ name: volumeName, readOnly: true, mountPath: TOKEN_MOUNT_PATH });
      }
    },
  };
}

/** The `service-account` admission plugin. */
export const serviceAccountPlugin = definePlugin({
  id: 'service-account',
  kind: 'admission',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'ServiceAccount: pods run as an existing service account (default: "default") and get the projected API token volume.',
  configSchema: { type: 'object', additionalProperties: false, properties: {} },
  async start(handle, _config, signal) {
    const accounts = handle.api.informer<KubeObject>('/api/v1/serviceaccounts');
    accounts.run();
    await accounts.waitForSync(signal);
    handle.provide(serviceAccountAdmission(accounts, handle.api));
    await untilAborted(signal);
  },
});
