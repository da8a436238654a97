import { AdmissionDenied, definePlugin, untilAborted, type Admission, type AdmissionRequest, type ApiClient, type Informer, type KubeObject } from '@kubernel/sdk';
import { cachedOrLive, objectRef } from './common.js';

/** Namespaces that can never be deleted (Kubernetes' immortal namespaces). */
export const IMMORTAL_NAMESPACES: readonly string[] = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

/** Resources that are not content of a namespace in the lifecycle's sense (reviews are not stored). */
const EXEMPT = new Set(['subjectaccessreviews', 'localsubjectaccessreviews', 'selfsubjectaccessreviews', 'selfsubjectrulesreviews', 'tokenreviews']);

/**
 * NamespaceLifecycle: nothing is created in a namespace that does not exist (404) or is being
 * terminated (403), and the system namespaces cannot be deleted.
 */
export function namespaceLifecycle(namespaces: Informer, api?: ApiClient, immortal: readonly string[] = IMMORTAL_NAMESPACES): Admission {
  const protectedNames = new Set(immortal);
  return {
    handles: (r: AdmissionRequest) =>
      (r.operation === 'CREATE' && r.namespace !== '' && !EXEMPT.has(r.resource.resource)) ||
      (r.operation === 'DELETE' && r.resource.group === '' && r.resource.resource === 'namespaces'),
    async admit(r) {
      if (r.operation === 'DELETE') {
        if (protectedNames.has(r.name)) throw new AdmissionDenied(`namespaces "${r.name}" is forbidden: this namespace may not be deleted`, 403);
        return;
      }
      const ns = await cachedOrLive(namespaces, api, r.namespace, `/api/v1/namespaces/${encodeURIComponent(r.namespace)}`);
      if (!ns) throw new AdmissionDenied(`namespaces "${r.namespace}" not found`, 404, [], { name: r.namespace, group: '', kind: 'namespaces' });
      const status = ns.status as { phase?: string } | undefined;
      if (status?.phase === 'Terminating' || ns.metadata?.deletionTimestamp) {
        throw new AdmissionDenied(`${objectRef(r.resource.resource, r.name)} is forbidden: unable to create new content in namespace ${r.namespace} because it is being terminated`, 403, [
          { field: 'metadata.namespace', message: `namespace ${r.namespace} is being terminated`, reason: 'NamespaceTerminating' },
        ]);
      }
    },
  };
}

/** The `namespace-lifecycle` admission plugin. */
export const namespaceLifecyclePlugin = definePlugin({
  id: 'namespace-lifecycle',
  kind: 'admission',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'NamespaceLifecycle: no new content in a namespace that is missing or terminating; the system namespaces cannot be deleted.',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: { immortalNamespaces: { type: 'array', items: { type: 'string' }, default: [...IMMORTAL_NAMESPACES], description: 'Namespaces that may never be deleted.' } },
  },
  async start(handle, config: { immortalNamespaces: string[] }, signal) {
    const namespaces = handle.api.informer<KubeObject>('/api/v1/namespaces');
    namespaces.run();
    await namespaces.waitForSync(signal);
    handle.provide(namespaceLifecycle(namespaces, handle.api, config.immortalNamespaces));
    await untilAborted(signal);
  },
});
