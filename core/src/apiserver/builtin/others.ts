import type { Obj, ResourceDef } from '../resource.js';
import { AGE, age, col, orNone } from './columns.js';
import { invalidValue, required, validateMeta, type NameRule } from './rules.js';

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
