import type { Obj, ResourceDef } from '../resource.js';
import type { StatusCause } from '../status.js';
import { AGE, age, col, containersAndImages, mapString, orNone } from './columns.js';
import { defaultPodSpec, podStatusReason, validatePodSpec, validatePodSpecUpdate, validatePodTemplate } from './pod.js';
import { immutable, invalidValue, notSupported, portProblem, required, validateDataKeys, validateMeta, duplicate } from './rules.js';

const core = (d: Omit<ResourceDef, 'group' | 'version' | 'definition'> & { definition?: string }): ResourceDef => ({
  group: '',
  version: 'v1',
  definition: `io.k8s.api.core.v1.${d.kind}`,
  ...d,
});

const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'];
const PROTOCOLS = ['TCP', 'UDP', 'SCTP'];

function servicePorts(s: Obj): string {
  const ports = (s.spec?.ports ?? []) as Obj[];
  if (ports.length === 0) return '<none>';
  return ports.map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol ?? 'TCP'}`).join(',');
}

function validateService(s: Obj): StatusCause[] {
  const out = validateMeta(s, 'dns1035');
  const spec = (s.spec ?? {}) as Obj;
  if (spec.type !== undefined && !SERVICE_TYPES.includes(spec.type)) out.push(notSupported('spec.type', spec.type, SERVICE_TYPES));
  const ports = (spec.ports ?? []) as Obj[];
  if (ports.length === 0 && spec.type !== 'ExternalName' && spec.clusterIP !== 'None') out.push(required('spec.ports'));
  const names = new Set<string>();
  ports.forEach((p, i) => {
    const bad = portProblem(`spec.ports[${i}].port`, p.port);
    if (bad) out.push(bad);
    if (p.protocol !== undefined && !PROTOCOLS.includes(p.protocol)) out.push(notSupported(`spec.ports[${i}].protocol`, p.protocol, PROTOCOLS));
    if (ports.length > 1 && !p.name) out.push(required(`spec.ports[${i}].name`));
    if (p.name !== undefined) {
      if (names.has(p.name)) out.push(duplicate(`spec.ports[${i}].name`, p.name));
      names.add(p.name);
    }
    if (typeof p.targetPort === 'number') {
      const t = portProblem(`spec.ports[${i}].targetPort`, p.targetPort);
      if (t) out.push(t);
    }
    if (p.nodePort !== undefined && (typeof p.nodePort !== 'number' || p.nodePort < 1 || p.nodePort > 65535)) {
      out.push(invalidValue(`spec.ports[${i}].nodePort`, p.nodePort, 'must be between 1 and 65535, inclusive'));
    }
  });
  return out;
}

function defaultService(s: Obj): void {
  const spec = (s.spec ??= {}) as Obj;
  spec.type ??= 'ClusterIP';
  spec.sessionAffinity ??= 'None';
  if (spec.type !== 'ExternalName') {
    spec.internalTrafficPolicy ??= 'Cluster';
    spec.ipFamilyPolicy ??= 'SingleStack';
    spec.ipFamilies ??= ['IPv4'];
  }
  if ((spec.type === 'NodePort' || spec.type === 'LoadBalancer')) spec.externalTrafficPolicy ??= 'Cluster';
  for (const p of (spec.ports ?? []) as Obj[]) {
    p.protocol ??= 'TCP';
    if (p.targetPort === undefined || p.targetPort === 0 || p.targetPort === '') p.targetPort = p.port;
  }
  s.status ??= { loadBalancer: {} };
}

const wantsNodePorts = (s: Obj): boolean => s.spec?.type === 'NodePort' || s.spec?.type === 'LoadBalancer';

/** The core/v1 resources. */
export const CORE: ResourceDef[] = [
  core({
    kind: 'Namespace',
    plural: 'namespaces',
    singular: 'namespace',
    namespaced: false,
    shortNames: ['ns'],
    statusSubresource: true,
    verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
    defaults: (o) => {
      o.spec ??= {};
      // Only a new namespace gets the finalizer; later, only namespaces/<name>/finalize changes it.
      if (!o.metadata.resourceVersion) o.spec.finalizers ??= ['kubernetes'];
      o.status ??= {};
      o.status.phase ??= 'Active';
      o.metadata.labels = { ...(o.metadata.labels ?? {}), 'kubernetes.io/metadata.name': o.metadata.name };
    },
    validate: (o) => validateMeta(o, 'label'),
    columns: [col('Status', 'The status of the namespace'), AGE],
    row: (o) => [o.status?.phase ?? 'Active', age(o)],
    fields: { 'status.phase': (o) => o.status?.phase ?? '' },
  }),
  core({
    kind: 'Pod',
    plural: 'pods',
    singular: 'pod',
    namespaced: true,
    shortNames: ['po'],
    categories: ['all'],
    statusSubresource: true,
    defaults: (o) => {
      defaultPodSpec(o.spec);
      o.status ??= {};
      o.status.phase ??= 'Pending';
      // A function of the spec (resources are immutable), so always recomputed: after mutating admission too.
      o.status.qosClass = qosClass(o.spec);
    },
    validate: (o) => [...validateMeta(o, 'subdomain'), ...validatePodSpec(o.spec, 'spec')],
    validateUpdate: (o, old) => validatePodSpecUpdate(o.spec ?? {}, old.spec ?? {}),
    columns: [
      col('Ready', 'The aggregate readiness state of this pod for accepting traffic.'),
      col('Status', 'The aggregate status of the containers in this pod.'),
      col('Restarts', 'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.'),
      AGE,
      col('IP', 'IP address allocated to the pod. Routable at least within the cluster.', 'string', 1),
      col('Node', 'Name of the Node the Pod is assigned to.', 'string', 1),
      col('Nominated Node', 'Name of the node that the Pod is nominated to run on (preemption).', 'string', 1),
      col('Readiness Gates', 'Conditions the pod must satisfy before it is considered ready.', 'string', 1),
    ],
    row: (o) => {
      const statuses = (o.status?.containerStatuses ?? []) as Obj[];
      const total = ((o.spec?.containers ?? []) as Obj[]).length;
      const ready = statuses.filter((s) => s.ready).length;
      const restarts = statuses.reduce((n, s) => n + (s.restartCount ?? 0), 0);
      const gates = (o.spec?.readinessGates ?? []) as Obj[];
      return [
        `${ready}/${total}`,
        podStatusReason(o),
        restarts,
        age(o),
        orNone(o.status?.podIP),
        orNone(o.spec?.nodeName),
        orNone(o.status?.nominatedNodeName),
        gates.length === 0 ? '<none>' : `${gates.length}`,
      ];
    },
    fields: {
      'spec.nodeName': (o) => o.spec?.nodeName ?? '',
      'spec.restartPolicy': (o) => o.spec?.restartPolicy ?? '',
      'spec.schedulerName': (o) => o.spec?.schedulerName ?? '',
      'spec.serviceAccountName': (o) => o.spec?.serviceAccountName ?? '',
      'spec.hostNetwork': (o) => String(o.spec?.hostNetwork ?? false),
      'status.phase': (o) => o.status?.phase ?? '',
      'status.podIP': (o) => o.status?.podIP ?? '',
      'status.nominatedNodeName': (o) => o.status?.nominatedNodeName ?? '',
    },
    gracefulDelete: (o) => (o.spec?.nodeName && o.status?.phase !== 'Succeeded' && o.status?.phase !== 'Failed' ? (o.spec?.terminationGracePeriodSeconds ?? 30) : undefined),
  }),
  core({
    kind: 'Node',
    plural: 'nodes',
    singular: 'node',
    namespaced: false,
    shortNames: ['no'],
    statusSubresource: true,
    validate: (o) => validateMeta(o, 'subdomain'),
    columns: [
      col('Status', 'The status of the node'),
      col('Roles', 'The roles of the node'),
      AGE,
      col('Version', 'Kubelet Version reported by the node.'),
      col('Internal-IP', 'List of internal IPs.', 'string', 1),
      col('External-IP', 'List of external IPs.', 'string', 1),
      col('OS-Image', 'OS image reported by the node.', 'string', 1),
      col('Kernel-Version', 'Kernel version reported by the node.', 'string', 1),
      col('Container-Runtime', 'Container runtime and version reported by the node.', 'string', 1),
    ],
    row: (o) => {
      const ready = ((o.status?.conditions ?? []) as Obj[]).find((c) => c.type === 'Ready');
      let status = ready?.status === 'True' ? 'Ready' : ready?.status === 'False' ? 'NotReady' : 'Unknown';
      if (o.spec?.unschedulable) status += ',SchedulingDisabled';
      const roles = Object.keys(o.metadata?.labels ?? {}).filter((k) => k.startsWith('node-role.kubernetes.io/')).map((k) => k.slice(24));
      const addr = (t: string): string => orNone(((o.status?.addresses ?? []) as Obj[]).find((a) => a.type === t)?.address);
      const info = (o.status?.nodeInfo ?? {}) as Obj;
      return [status, roles.length > 0 ? roles.join(',') : '<none>', age(o), orNone(info.kubeletVersion), addr('InternalIP'), addr('ExternalIP'), orNone(info.osImage), orNone(info.kernelVersion), orNone(info.containerRuntimeVersion)];
    },
    fields: { 'spec.unschedulable': (o) => String(o.spec?.unschedulable ?? false) },
  }),
  core({
    kind: 'Service',
    plural: 'services',
    singular: 'service',
    namespaced: true,
    shortNames: ['svc'],
    categories: ['all'],
    statusSubresource: true,
    defaults: defaultService,
    validate: validateService,
    validateUpdate: (o, old) => {
      const out: StatusCause[] = [];
      if (old.spec?.clusterIP && o.spec?.clusterIP !== old.spec.clusterIP && o.spec?.type !== 'ExternalName') out.push(immutable('spec.clusterIP', o.spec?.clusterIP));
      return out;
    },
    beforeCreate: async (o, ctx, dryRun) => {
      const spec = o.spec as Obj;
      if (spec.type !== 'ExternalName' && spec.clusterIP !== 'None') {
        spec.clusterIP = await ctx.allocators.clusterIP(spec.clusterIP || undefined, dryRun);
        spec.clusterIPs = [spec.clusterIP];
      } else if (spec.clusterIP === 'None') {
        spec.clusterIPs = ['None'];
      }
      if (wantsNodePorts(o)) for (const p of (spec.ports ?? []) as Obj[]) p.nodePort = await ctx.allocators.nodePort(p.nodePort || undefined, dryRun);
    },
    beforeUpdate: async (o, old, ctx, dryRun) => {
      const spec = o.spec as Obj;
      if (spec.type !== 'ExternalName' && old.spec?.clusterIP) {
        spec.clusterIP ??= old.spec.clusterIP;
        spec.clusterIPs ??= old.spec.clusterIPs;
      }
      const oldPorts = new Map(((old.spec?.ports ?? []) as Obj[]).map((p) => [`${p.port}/${p.protocol}`, p.nodePort]));
      if (wantsNodePorts(o)) {
        for (const p of (spec.ports ?? []) as Obj[]) p.nodePort ??= oldPorts.get(`${p.port}/${p.protocol}`) ?? (await ctx.allocators.nodePort(undefined, dryRun));
      }
    },
    afterDelete: async (o, ctx) => {
      if (o.spec?.clusterIP && o.spec.clusterIP !== 'None') await ctx.allocators.releaseClusterIP(o.spec.clusterIP);
      for (const p of (o.spec?.ports ?? []) as Obj[]) if (p.nodePort) await ctx.allocators.releaseNodePort(p.nodePort);
    },
    columns: [
      col('Type', 'type determines how the Service is exposed.'),
      col('Cluster-IP', 'clusterIP is the IP address of the service.'),
      col('External-IP', 'externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.'),
      col('Port(s)', 'The list of ports that are exposed by this service.'),
      AGE,
      col('Selector', 'Route service traffic to pods with label keys and values matching this selector.', 'string', 1),
    ],
    row: (o) => {
      const ingress = ((o.status?.loadBalancer?.ingress ?? []) as Obj[]).map((i) => i.ip ?? i.hostname);
      const external = [...((o.spec?.externalIPs ?? []) as string[]), ...ingress];
      const ext = o.spec?.type === 'ExternalName' ? o.spec.externalName : external.length > 0 ? external.join(',') : o.spec?.type === 'LoadBalancer' ? '<pending>' : '<none>';
      return [o.spec?.type ?? 'ClusterIP', orNone(o.spec?.clusterIP), ext, servicePorts(o), age(o), mapString(o.spec?.selector)];
    },
  }),
  core({
    kind: 'Endpoints',
    plural: 'endpoints',
    singular: 'endpoints',
    namespaced: true,
    shortNames: ['ep'],
    validate: (o) => validateMeta(o, 'subdomain'),
    columns: [col('Endpoints', 'Endpoints of the service'), AGE],
    row: (o) => {
      const list: string[] = [];
      for (const s of (o.subsets ?? []) as Obj[]) for (const a of (s.addresses ?? []) as Obj[]) for (const p of (s.ports ?? [{}]) as Obj[]) list.push(p.port ? `${a.ip}:${p.port}` : a.ip);
      return [list.length === 0 ? '<none>' : list.slice(0, 3).join(',') + (list.length > 3 ? ` + ${list.length - 3} more...` : ''), age(o)];
    },
  }),
  core({
    kind: 'ConfigMap',
    plural: 'configmaps',
    singular: 'configmap',
    namespaced: true,
    shortNames: ['cm'],
    validate: (o) => [...validateMeta(o, 'subdomain'), ...validateDataKeys([['data', o.data], ['binaryData', o.binaryData]])],
    validateUpdate: (o, old) => (old.immutable === true && (JSON.stringify(o.data) !== JSON.stringify(old.data) || JSON.stringify(o.binaryData) !== JSON.stringify(old.binaryData)) ? [{ reason: 'FieldValueForbidden', field: 'data', message: 'Forbidden: field is immutable when `immutable` is set' }] : []),
    columns: [col('Data', 'Number of data entries', 'integer'), AGE],
    row: (o) => [Object.keys(o.data ?? {}).length + Object.keys(o.binaryData ?? {}).length, age(o)],
  }),
  core({
    kind: 'Secret',
    plural: 'secrets',
    singular: 'secret',
    namespaced: true,
    defaults: (o) => {
      o.type ??= 'Opaque';
      if (o.stringData) {
        o.data ??= {};
        for (const [k, v] of Object.entries(o.stringData as Record<string, string>)) o.data[k] = Buffer.from(String(v)).toString('base64');
        delete o.stringData;
      }
    },
    validate: (o) => {
      const out = [...validateMeta(o, 'subdomain'), ...validateDataKeys([['data', o.data]])];
      for (const [k, v] of Object.entries((o.data ?? {}) as Record<string, unknown>)) {
        if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) out.push(invalidValue(`data[${k}]`, '<secret contents redacted>', 'illegal base64 data'));
      }
      return out;
    },
    validateUpdate: (o, old) => (o.type !== old.type ? [immutable('type', o.type)] : []),
    columns: [col('Type', 'The type of the secret'), col('Data', 'Number of data entries', 'integer'), AGE],
    row: (o) => [o.type ?? 'Opaque', Object.keys(o.data ?? {}).length, age(o)],
    fields: { type: (o) => o.type ?? '' },
  }),
  core({
    kind: 'ServiceAccount',
    plural: 'serviceaccounts',
    singular: 'serviceaccount',
    namespaced: true,
    shortNames: ['sa'],
    validate: (o) => validateMeta(o, 'subdomain'),
    columns: [col('Secrets', 'Number of secrets', 'integer'), AGE],
    row: (o) => [((o.secrets ?? []) as unknown[]).length, age(o)],
  }),
  core({
    kind: 'Event',
    plural: 'events',
    singular: 'event',
    namespaced: true,
    shortNames: ['ev'],
    validate: (o) => validateMeta(o, 'subdomain'),
    columns: [col('Last Seen', 'Time of the last occurrence'), col('Type', 'Type of the event'), col('Reason', 'Reason of the event'), col('Object', 'The object the event is about'), col('Message', 'The message of the event')],
    row: (o) => {
      const last = o.lastTimestamp ?? o.eventTime ?? o.metadata?.creationTimestamp;
      return [last ? humanSince(last) : '<unknown>', o.type ?? '', o.reason ?? '', `${String(o.involvedObject?.kind ?? '').toLowerCase()}/${o.involvedObject?.name ?? ''}`, o.message ?? ''];
    },
    fields: {
      'involvedObject.kind': (o) => o.involvedObject?.kind ?? '',
      'involvedObject.name': (o) => o.involvedObject?.name ?? '',
      'involvedObject.namespace': (o) => o.involvedObject?.namespace ?? '',
      'involvedObject.uid': (o) => o.involvedObject?.uid ?? '',
      'involvedObject.apiVersion': (o) => o.involvedObject?.apiVersion ?? '',
      'involvedObject.resourceVersion': (o) => o.involvedObject?.resourceVersion ?? '',
      'involvedObject.fieldPath': (o) => o.involvedObject?.fieldPath ?? '',
      reason: (o) => o.reason ?? '',
      reportingComponent: (o) => o.reportingComponent ?? '',
      source: (o) => o.source?.component ?? '',
      type: (o) => o.type ?? '',
    },
  }),
  core({
    kind: 'PersistentVolume',
    plural: 'persistentvolumes',
    singular: 'persistentvolume',
    namespaced: false,
    shortNames: ['pv'],
    statusSubresource: true,
    defaults: (o) => {
      o.spec ??= {};
      o.spec.persistentVolumeReclaimPolicy ??= 'Retain';
      o.spec.volumeMode ??= 'Filesystem';
      o.status ??= {};
      o.status.phase ??= 'Pending';
    },
    validate: (o) => validateMeta(o, 'subdomain'),
    columns: [col('Capacity', 'Capacity'), col('Access Modes', 'Access modes'), col('Reclaim Policy', 'Reclaim policy'), col('Status', 'Phase'), col('Claim', 'Bound claim'), col('StorageClass', 'Storage class'), col('VolumeAttributesClass', 'Volume attributes class'), col('Reason', 'Reason'), AGE],
    row: (o) => [orNone(o.spec?.capacity?.storage), accessModes(o.spec?.accessModes), o.spec?.persistentVolumeReclaimPolicy ?? '', o.status?.phase ?? '', o.spec?.claimRef ? `${o.spec.claimRef.namespace}/${o.spec.claimRef.name}` : '', o.spec?.storageClassName ?? '', '<unset>', o.status?.reason ?? '', age(o)],
  }),
  core({
    kind: 'PersistentVolumeClaim',
    plural: 'persistentvolumeclaims',
    singular: 'persistentvolumeclaim',
    namespaced: true,
    shortNames: ['pvc'],
    statusSubresource: true,
    defaults: (o) => {
      o.spec ??= {};
      o.spec.volumeMode ??= 'Filesystem';
      o.status ??= {};
      o.status.phase ??= 'Pending';
    },
    validate: (o) => {
      const out = validateMeta(o, 'subdomain');
      if (!((o.spec?.accessModes ?? []) as unknown[]).length) out.push(required('spec.accessModes', 'at least 1 access mode is required'));
      if (!o.spec?.resources?.requests?.storage) out.push(required('spec.resources[storage]'));
      return out;
    },
    columns: [col('Status', 'Phase'), col('Volume', 'Bound volume'), col('Capacity', 'Capacity'), col('Access Modes', 'Access modes'), col('StorageClass', 'Storage class'), col('VolumeAttributesClass', 'Volume attributes class'), AGE, col('VolumeMode', 'Volume mode', 'string', 1)],
    row: (o) => [o.status?.phase ?? '', o.spec?.volumeName ?? '', o.status?.capacity?.storage ?? '', accessModes(o.status?.accessModes), o.spec?.storageClassName ?? '', '<unset>', age(o), o.spec?.volumeMode ?? ''],
  }),
  core({
    kind: 'ReplicationController',
    plural: 'replicationcontrollers',
    singular: 'replicationcontroller',
    namespaced: true,
    shortNames: ['rc'],
    categories: ['all'],
    statusSubresource: true,
    defaults: (o) => {
      o.spec ??= {};
      o.spec.replicas ??= 1;
      o.spec.minReadySeconds ??= 0;
      if (!o.spec.selector && o.spec.template?.metadata?.labels) o.spec.selector = { ...o.spec.template.metadata.labels };
      if (o.spec.template && !o.metadata.labels && o.spec.template.metadata?.labels) o.metadata.labels = { ...o.spec.template.metadata.labels };
      defaultPodSpec(o.spec.template?.spec);
      o.status ??= { replicas: 0 };
    },
    validate: (o) => {
      const out = [...validateMeta(o, 'subdomain'), ...validatePodTemplate(o.spec?.template, 'spec.template')];
      const sel = (o.spec?.selector ?? {}) as Record<string, string>;
      const labels = (o.spec?.template?.metadata?.labels ?? {}) as Record<string, string>;
      if (Object.entries(sel).some(([k, v]) => labels[k] !== v)) out.push(invalidValue('spec.template.metadata.labels', labels, '`selector` does not match template `labels`'));
      if (typeof o.spec?.replicas === 'number' && o.spec.replicas < 0) out.push(invalidValue('spec.replicas', o.spec.replicas, 'must be greater than or equal to 0'));
      return out;
    },
    scale: {
      specReplicas: (o) => o.spec?.replicas ?? 0,
      statusReplicas: (o) => o.status?.replicas ?? 0,
      selector: (o) => mapString(o.spec?.selector).replace('<none>', ''),
      setReplicas: (o, n) => {
        o.spec.replicas = n;
      },
    },
    columns: [col('Desired', 'Desired replicas', 'integer'), col('Current', 'Current replicas', 'integer'), col('Ready', 'Ready replicas', 'integer'), AGE, col('Containers', 'Containers', 'string', 1), col('Images', 'Images', 'string', 1), col('Selector', 'Selector', 'string', 1)],
    row: (o) => [o.spec?.replicas ?? 0, o.status?.replicas ?? 0, o.status?.readyReplicas ?? 0, age(o), ...containersAndImages(o.spec?.template?.spec), mapString(o.spec?.selector)],
  }),
  core({
    kind: 'LimitRange',
    plural: 'limitranges',
    singular: 'limitrange',
    namespaced: true,
    shortNames: ['limits'],
    validate: (o) => validateMeta(o, 'subdomain'),
    columns: [col('Created At', 'Creation time')],
    row: (o) => [o.metadata?.creationTimestamp ?? ''],
  }),
  core({
    kind: 'ResourceQuota',
    plural: 'resourcequotas',
    singular: 'resourcequota',
    namespaced: true,
    shortNames: ['quota'],
    statusSubresource: true,
    validate: (o) => validateMeta(o, 'subdomain'),
    columns: [AGE, col('Request', 'Requests'), col('Limit', 'Limits')],
    row: (o) => {
      const hard = (o.status?.hard ?? o.spec?.hard ?? {}) as Record<string, string>;
      const used = (o.status?.used ?? {}) as Record<string, string>;
      const fmt = (keys: string[]): string => keys.map((k) => `${k}: ${used[k] ?? '0'}/${hard[k]}`).join(', ');
      const keys = Object.keys(hard);
      return [age(o), fmt(keys.filter((k) => !k.startsWith('limits.'))), fmt(keys.filter((k) => k.startsWith('limits.')))];
    },
  }),
  core({
    kind: 'PodTemplate',
    plural: 'podtemplates',
    singular: 'podtemplate',
    namespaced: true,
    defaults: (o) => defaultPodSpec(o.template?.spec),
    validate: (o) => [...validateMeta(o, 'subdomain'), ...validatePodTemplate(o.template, 'template')],
  }),
];

function accessModes(modes: string[] | undefined): string {
  const short: Record<string, string> = { ReadWriteOnce: 'RWO', ReadOnlyMany: 'ROX', ReadWriteMany: 'RWX', ReadWriteOncePod: 'RWOP' };
  return (modes ?? []).map((m) => short[m] ?? m).join(',');
}

function humanSince(t: string): string {
  return age({ metadata: { creationTimestamp: t } });
}

/** Kubernetes' QoS class of a pod spec. */
export function qosClass(spec: Obj | undefined): string {
  const containers = [...((spec?.containers ?? []) as Obj[]), ...((spec?.initContainers ?? []) as Obj[])];
  let any = false;
  let guaranteed = containers.length > 0;
  for (const c of containers) {
    const req = (c.resources?.requests ?? {}) as Record<string, unknown>;
    const lim = (c.resources?.limits ?? {}) as Record<string, unknown>;
    if (Object.keys(req).length > 0 || Object.keys(lim).length > 0) any = true;
    for (const r of ['cpu', 'memory']) {
      if (lim[r] === undefined || (req[r] !== undefined && String(req[r]) !== String(lim[r]))) guaranteed = false;
    }
  }
  if (!any) return 'BestEffort';
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

