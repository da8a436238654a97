import { randomUUID } from 'node:crypto';
import type { AdmissionRequest, ApiObject, UserInfo } from '../security/contracts.js';

/** An {@link AdmissionRequest} built by {@link admissionRequest}, with the warnings steps added. */
export type TestAdmissionRequest = AdmissionRequest & { readonly warnings: string[] };

/** The user test requests come from unless given: an ordinary authenticated user. */
export const TEST_USER: UserInfo = { username: 'alice', groups: ['system:authenticated'] };

const KINDS: Record<string, { group: string; version: string; resource: string }> = {
  Pod: { group: '', version: 'v1', resource: 'pods' },
  Service: { group: '', version: 'v1', resource: 'services' },
  ConfigMap: { group: '', version: 'v1', resource: 'configmaps' },
  Secret: { group: '', version: 'v1', resource: 'secrets' },
  Namespace: { group: '', version: 'v1', resource: 'namespaces' },
  PersistentVolumeClaim: { group: '', version: 'v1', resource: 'persistentvolumeclaims' },
  ServiceAccount: { group: '', version: 'v1', resource: 'serviceaccounts' },
  Deployment: { group: 'apps', version: 'v1', resource: 'deployments' },
};

/**
 * Builds an admission request for unit tests: `CREATE` of `object` by {@link TEST_USER}, kind and
 * resource from `object.kind` (a Pod when absent), namespace and name from its metadata; any field
 * can be overridden. `warnings` collects what steps pass to `warning()`.
 */
export function admissionRequest(over: Partial<AdmissionRequest> & { object?: ApiObject | undefined } = {}): TestAdmissionRequest {
  const source = over.object ?? over.oldObject;
  const kind = source?.kind ?? 'Pod';
  const gvr = KINDS[kind] ?? { group: '', version: 'v1', resource: `${kind.toLowerCase()}s` };
  const warnings: string[] = [];
  return {
    uid: randomUUID(),
    operation: 'CREATE',
    kind: { group: gvr.group, version: gvr.version, kind },
    resource: gvr,
    subresource: '',
    namespace: source?.metadata?.namespace ?? (kind === 'Namespace' ? '' : 'default'),
    name: source?.metadata?.name ?? '',
    object: undefined,
    oldObject: undefined,
    user: TEST_USER,
    dryRun: false,
    warning: (text) => void warnings.push(text),
    ...over,
    warnings,
  };
}
