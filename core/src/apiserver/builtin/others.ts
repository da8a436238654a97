import type { Obj, ResourceDef } from '../resource.js';
import { AGE, age, col, orNone } from './columns.js';
import { duplicate, invalidValue, notSupported, required, validateMeta, type NameRule } from './rules.js';
import type { StatusCause } from '../status.js';

function def(group: string, version: string, kind: string, plural: string, namespaced: boolean, extra: Partial<ResourceDef> & { nameRule?: NameRule } = {}): ResourceDef {
  const { nameRule, ...rest } = extra;
  return {
    group,
    version,
    kind,
    plural,
    singular: kind.toLowerCase(),
    namespaced,
    definition: `io.k8s.api.${group.replace(/\.k8s\.io$/, '').replace(/^rbac\.authorization$/, 'rbac')}.${version}.${kind}`,
    validate: (o) => validateMeta(o, nameRule ?? 'subdomain'),
    ...rest,
  };
}

/** The other built-in groups: coordination, discovery, policy, storage, events, scheduling, RBAC. */
export const OTHERS: ResourceDef[] = [
  def('coordination.k8s.io', 'v1', 'Lease', 'leases', true, {
    columns: [col('Holder', 'The holder of the lease'), AGE],
    row: (o) => [orNone(o.spec?.holderIdentity), age(o)],
  }),
  def('discovery.k8s.io', 'v1', 'EndpointSlice', 'endpointslices', true, {
    validate: (o) => {
      const out = validateMeta(o, 'subdomain');
      if (!['IPv4', 'IPv6', 'FQDN'].includes(o.addressType)) out.push(o.addressType === undefined ? required('addressType') : invalidValue('addressType', o.addressType, 'supported values: "FQDN", "IPv4", "IPv6"'));
      return out;
    },
    validateUpdate: (o, old) => (o.addressType !== old.addressType ? [invalidValue('addressType', o.addressType, 'field is immutable')] : []),
    columns: [col('AddressType', 'Address type'), col('Ports', 'Ports'), col('Endpoints', 'Endpoints'), AGE],
    row: (o) => {
      const ports = ((o.ports ?? []) as Obj[]).map((p) => p.port).join(',') || '<unset>';
      const addrs = ((o.endpoints ?? []) as Obj[]).flatMap((e) => (e.addresses ?? []) as string[]);
      return [o.addressType, ports, addrs.length === 0 ? '<unset>' : addrs.slice(0, 3).join(',') + (addrs.length > 3 ? ` + ${addrs.length - 3} more...` : ''), age(o)];
    },
  }),
  def('policy', 'v1', 'PodDisruptionBudget', 'poddisruptionbudgets', true, {
    shortNames: ['pdb'],
    statusSubresource: true,
    columns: [col('Min Available', 'minAvailable'), col('Max Unavailable', 'maxUnavailable'), col('Allowed Disruptions', 'disruptionsAllowed', 'integer'), AGE],
    row: (o) => [orNone(o.spec?.minAvailable ?? 'N/A'), orNone(o.spec?.maxUnavailable ?? 'N/A'), o.status?.disruptionsAllowed ?? 0, age(o)],
  }),
  def('storage.k8s.io', 'v1', 'StorageClass', 'storageclasses', false, {
    shortNames: ['sc'],
    defaults: (o) => {
      o.reclaimPolicy ??= 'Delete';
      o.volumeBindingMode ??= 'Immediate';
    },
    validate: (o) => {
      const out = validateMeta(o, 'subdomain');
      if (!o.provisioner) out.push(required('provisioner'));
      return out;
    },
    validateUpdate: (o, old) => (o.provisioner !== old.provisioner ? [invalidValue('provisioner', o.provisioner, 'field is immutable')] : []),
    columns: [col('Provisioner', 'Provisioner'), col('ReclaimPolicy', 'Reclaim policy'), col('VolumeBindingMode', 'Volume binding mode'), col('AllowVolumeExpansion', 'Allow volume expansion', 'boolean'), AGE],
    row: (o) => [o.metadata?.annotations?.['storageclass.kubernetes.io/is-default-class'] === 'true' ? `${o.provisioner}` : o.provisioner, o.reclaimPolicy, o.volumeBindingMode, o.allowVolumeExpansion ?? false, age(o)],
  }),
  def('storage.k8s.io', 'v1', 'CSIDriver', 'csidrivers', false, {
    columns: [col('AttachRequired', 'attachRequired', 'boolean'), col('PodInfoOnMount', 'podInfoOnMount', 'boolean'), col('Modes', 'volumeLifecycleModes'), AGE],
    row: (o) => [o.spec?.attachRequired ?? true, o.spec?.podInfoOnMount ?? false, ((o.spec?.volumeLifecycleModes ?? ['Persistent']) as string[]).join(','), age(o)],
  }),
  def('storage.k8s.io', 'v1', 'CSINode', 'csinodes', false, {
    columns: [col('Drivers', 'Number of drivers', 'integer'), AGE],
    row: (o) => [((o.spec?.drivers ?? []) as unknown[]).length, age(o)],
  }),
  def('storage.k8s.io', 'v1', 'VolumeAttachment', 'volumeattachments', false, {
    statusSubresource: true,
    columns: [col('Attacher', 'Attacher'), col('PV', 'Persistent volume'), col('Node', 'Node'), col('Attached', 'Attached', 'boolean'), AGE],
    row: (o) => [o.spec?.attacher ?? '', o.spec?.source?.persistentVolumeName ?? '', o.spec?.nodeName ?? '', o.status?.attached ?? false, age(o)],
  }),
  def('events.k8s.io', 'v1', 'Event', 'events', true, {
    shortNames: ['ev'],
    columns: [col('Reason', 'reason'), col('Object', 'regarding'), col('Message', 'note'), AGE],
    row: (o) => [o.reason ?? '', `${String(o.regarding?.kind ?? '').toLowerCase()}/${o.regarding?.name ?? ''}`, o.note ?? '', age(o)],
  }),
  def('scheduling.k8s.io', 'v1', 'PriorityClass', 'priorityclasses', false, {
    shortNames: ['pc'],
    defaults: (o) => {
      o.preemptionPolicy ??= 'PreemptLowerPriority';
    },
    validate: (o) => {
      const out = validateMeta(o, 'subdomain');
      if (typeof o.value !== 'number') out.push(required('value'));
      else if (o.value > 1_000_000_000 && !String(o.metadata?.name).startsWith('system-')) out.push(invalidValue('value', o.value, 'must be less than or equal to 1000000000'));
      return out;
    },
    validateUpdate: (o, old) => (o.value !== old.value ? [invalidValue('value', o.value, 'may not be changed in an update.')] : []),
    columns: [col('Value', 'value', 'integer'), col('Global-Default', 'globalDefault', 'boolean'), AGE, col('PreemptionPolicy', 'preemptionPolicy')],
    row: (o) => [o.value, o.globalDefault ?? false, age(o), o.preemptionPolicy ?? ''],
  }),
  def('admissionregistration.k8s.io', 'v1', 'MutatingWebhookConfiguration', 'mutatingwebhookconfigurations', false, {
    defaults: (o) => defaultWebhooks(o, true),
    validate: (o) => [...validateMeta(o, 'subdomain'), ...validateWebhooks(o, true)],
    columns: [col('Webhooks', 'Webhooks', 'integer'), AGE],
    row: (o) => [((o.webhooks ?? []) as unknown[]).length, age(o)],
  }),
  def('admissionregistration.k8s.io', 'v1', 'ValidatingWebhookConfiguration', 'validatingwebhookconfigurations', false, {
    defaults: (o) => defaultWebhooks(o, false),
    validate: (o) => [...validateMeta(o, 'subdomain'), ...validateWebhooks(o, false)],
    columns: [col('Webhooks', 'Webhooks', 'integer'), AGE],
    row: (o) => [((o.webhooks ?? []) as unknown[]).length, age(o)],
  }),
  def('rbac.authorization.k8s.io', 'v1', 'Role', 'roles', true, { nameRule: 'path', columns: [col('Created At', 'Creation time')], row: (o) => [o.metadata?.creationTimestamp ?? ''] }),
  def('rbac.authorization.k8s.io', 'v1', 'ClusterRole', 'clusterroles', false, { nameRule: 'path', columns: [col('Created At', 'Creation time')], row: (o) => [o.metadata?.creationTimestamp ?? ''] }),
  def('rbac.authorization.k8s.io', 'v1', 'RoleBinding', 'rolebindings', true, {
    nameRule: 'path',
    validateUpdate: (o, old) => (JSON.stringify(o.roleRef) !== JSON.stringify(old.roleRef) ? [invalidValue('roleRef', o.roleRef, 'cannot change roleRef')] : []),
    columns: [col('Role', 'roleRef'), AGE],
    row: (o) => [`${o.roleRef?.kind}/${o.roleRef?.name}`, age(o)],
  }),
  def('rbac.authorization.k8s.io', 'v1', 'ClusterRoleBinding', 'clusterrolebindings', false, {
    nameRule: 'path',
    validateUpdate: (o, old) => (JSON.stringify(o.roleRef) !== JSON.stringify(old.roleRef) ? [invalidValue('roleRef', o.roleRef, 'cannot change roleRef')] : []),
    columns: [col('Role', 'roleRef'), AGE],
    row: (o) => [`${o.roleRef?.kind}/${o.roleRef?.name}`, age(o)],
  }),
];

/** admissionregistration/v1 defaults of each webhook. */
function defaultWebhooks(o: Obj, mutating: boolean): void {
  for (const w of (Array.isArray(o.webhooks) ? o.webhooks : []) as Obj[]) {
    if (typeof w !== 'object' || w === null) continue;
    w.failurePolicy ??= 'Fail';
    w.matchPolicy ??= 'Equivalent';
    w.namespaceSelector ??= {};
    w.objectSelector ??= {};
    w.timeoutSeconds ??= 10;
    if (mutating) w.reinvocationPolicy ??= 'Never';
    for (const r of (Array.isArray(w.rules) ? w.rules : []) as Obj[]) if (typeof r === 'object' && r !== null) r.scope ??= '*';
    if (typeof w.clientConfig?.service === 'object' && w.clientConfig.service !== null) w.clientConfig.service.port ??= 443;
  }
}

/** The admissionregistration/v1 rules for webhooks that a call depends on. */
function validateWebhooks(o: Obj, mutating: boolean): StatusCause[] {
  const out: StatusCause[] = [];
  const names = new Set<string>();
  ((Array.isArray(o.webhooks) ? o.webhooks : []) as Obj[]).forEach((w, i) => {
    const at = `webhooks[${i}]`;
    if (typeof w !== 'object' || w === null) return void out.push(required(at));
    if (typeof w.name !== 'string' || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?){2,}$/.test(w.name)) {
      out.push(w.name === undefined ? required(`${at}.name`) : invalidValue(`${at}.name`, w.name, 'should be a domain with at least three segments separated by dots'));
    } else if (names.has(w.name)) out.push(duplicate(`${at}.name`, w.name));
    else names.add(w.name);
    const cc = w.clientConfig;
    const hasUrl = typeof cc?.url === 'string';
    const hasService = typeof cc?.service === 'object' && cc.service !== null;
    if (hasUrl === hasService) out.push(required(`${at}.clientConfig`, 'exactly one of url or service is required'));
    if (hasUrl) {
      let url: URL | undefined;
      try {
        url = new URL(cc.url);
      } catch {
        out.push(invalidValue(`${at}.clientConfig.url`, cc.url, 'host must be specified'));
      }
      if (url && url.protocol !== 'https:') out.push(invalidValue(`${at}.clientConfig.url`, cc.url, "'https' is the only allowed URL scheme"));
      if (url && (url.username || url.password)) out.push(invalidValue(`${at}.clientConfig.url`, cc.url, 'user information is not permitted in the URL'));
      if (url && (url.hash || url.search)) out.push(invalidValue(`${at}.clientConfig.url`, cc.url, 'fragments and query parameters are not permitted'));
    }
    if (hasService) {
      if (!cc.service.name) out.push(required(`${at}.clientConfig.service.name`, 'service name is required'));
      if (!cc.service.namespace) out.push(required(`${at}.clientConfig.service.namespace`, 'service namespace is required'));
      const port = cc.service.port;
      if (!Number.isInteger(port) || port < 1 || port > 65535) out.push(invalidValue(`${at}.clientConfig.service.port`, port, 'port is not valid: must be between 1 and 65535, inclusive'));
    }
    if (!['Ignore', 'Fail'].includes(w.failurePolicy)) out.push(notSupported(`${at}.failurePolicy`, w.failurePolicy, ['Fail', 'Ignore']));
    if (!['Exact', 'Equivalent'].includes(w.matchPolicy)) out.push(notSupported(`${at}.matchPolicy`, w.matchPolicy, ['Equivalent', 'Exact']));
    if (!['None', 'NoneOnDryRun'].includes(w.sideEffects)) {
      out.push(w.sideEffects === undefined ? required(`${at}.sideEffects`, 'must specify one of None, NoneOnDryRun') : notSupported(`${at}.sideEffects`, w.sideEffects, ['None', 'NoneOnDryRun']));
    }
    if (!Number.isInteger(w.timeoutSeconds) || w.timeoutSeconds < 1 || w.timeoutSeconds > 30) out.push(invalidValue(`${at}.timeoutSeconds`, w.timeoutSeconds, 'the timeout value must be between 1 and 30 seconds'));
    const versions = w.admissionReviewVersions;
    if (!Array.isArray(versions) || versions.length === 0) out.push(required(`${at}.admissionReviewVersions`, 'must specify one of v1, v1beta1'));
    else if (!versions.some((v) => v === 'v1' || v === 'v1beta1')) out.push(notSupported(`${at}.admissionReviewVersions`, versions, ['v1', 'v1beta1']));
    if (mutating && !['Never', 'IfNeeded'].includes(w.reinvocationPolicy)) out.push(notSupported(`${at}.reinvocationPolicy`, w.reinvocationPolicy, ['IfNeeded', 'Never']));
    ((Array.isArray(w.rules) ? w.rules : []) as Obj[]).forEach((r, j) => {
      if (typeof r !== 'object' || r === null) return;
      for (const op of (Array.isArray(r.operations) ? r.operations : []) as unknown[]) {
        if (!['*', 'CREATE', 'UPDATE', 'DELETE', 'CONNECT'].includes(op as string)) out.push(notSupported(`${at}.rules[${j}].operations`, op, ['*', 'CONNECT', 'CREATE', 'DELETE', 'UPDATE']));
      }
      if (!['*', 'Cluster', 'Namespaced'].includes(r.scope)) out.push(notSupported(`${at}.rules[${j}].scope`, r.scope, ['*', 'Cluster', 'Namespaced']));
    });
  });
  return out;
}
