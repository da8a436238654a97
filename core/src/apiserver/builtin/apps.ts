import type { Obj, ResourceDef, ScaleSpec } from '../resource.js';
import type { StatusCause } from '../status.js';
import { AGE, age, col, containersAndImages } from './columns.js';
import { defaultPodSpec, validatePodTemplate } from './pod.js';
import { immutable, invalidValue, required, selectorMatches, selectorString, validateMeta } from './rules.js';

const apps = (d: Omit<ResourceDef, 'group' | 'version' | 'definition' | 'namespaced' | 'statusSubresource' | 'categories'>): ResourceDef => ({
  group: 'apps',
  version: 'v1',
  definition: `io.k8s.api.apps.v1.${d.kind}`,
  namespaced: true,
  statusSubresource: true,
  categories: ['all'],
  ...d,
});

/** Validation every workload with `spec.selector` and `spec.template` shares. */
function validateWorkload(o: Obj): StatusCause[] {
  const out = [...validateMeta(o, 'subdomain')];
  const spec = (o.spec ?? {}) as Obj;
  if (!spec.selector) out.push(required('spec.selector'));
  else if (Object.keys(spec.selector.matchLabels ?? {}).length === 0 && ((spec.selector.matchExpressions ?? []) as unknown[]).length === 0) {
    out.push(invalidValue('spec.selector', spec.selector, 'empty selector is invalid for deployment'));
  }
  out.push(...validatePodTemplate(spec.template, 'spec.template'));
  if (spec.selector && spec.template && !selectorMatches(spec.selector, spec.template.metadata?.labels)) {
    out.push(invalidValue('spec.template.metadata.labels', spec.template.metadata?.labels ?? {}, '`selector` does not match template `labels`'));
  }
  if (spec.replicas !== undefined && (typeof spec.replicas !== 'number' || !Number.isInteger(spec.replicas) || spec.replicas < 0)) {
    out.push(invalidValue('spec.replicas', spec.replicas, 'must be greater than or equal to 0'));
  }
  if (spec.template?.spec?.restartPolicy && spec.template.spec.restartPolicy !== 'Always') {
    out.push({ reason: 'FieldValueNotSupported', field: 'spec.template.spec.restartPolicy', message: `Unsupported value: "${spec.template.spec.restartPolicy}": supported values: "Always"` });
  }
  return out;
}

/** The `-o wide` columns every pod-template workload shows. */
const WIDE = [
  col('Containers', 'Names of each container in the template.', 'string', 1),
  col('Images', 'Images referenced by each container in the template.', 'string', 1),
  col('Selector', 'Label selector for pods.', 'string', 1),
];

const selectorImmutable = (o: Obj, old: Obj): StatusCause[] =>
  JSON.stringify(o.spec?.selector) !== JSON.stringify(old.spec?.selector) ? [immutable('spec.selector', o.spec?.selector)] : [];

const replicaScale: ScaleSpec = {
  specReplicas: (o) => o.spec?.replicas ?? 0,
  statusReplicas: (o) => o.status?.replicas ?? 0,
  selector: (o) => selectorString(o.spec?.selector),
  setReplicas: (o, n) => {
    o.spec.replicas = n;
  },
};

function defaultTemplate(o: Obj): void {
  o.spec ??= {};
  defaultPodSpec(o.spec.template?.spec);
}

/** The apps/v1 resources. */
export const APPS: ResourceDef[] = [
  apps({
    kind: 'Deployment',
    plural: 'deployments',
    singular: 'deployment',
    shortNames: ['deploy'],
    defaults: (o) => {
      defaultTemplate(o);
      const s = o.spec as Obj;
      s.replicas ??= 1;
      s.revisionHistoryLimit ??= 10;
      s.progressDeadlineSeconds ??= 600;
      s.strategy ??= {};
      s.strategy.type ??= 'RollingUpdate';
      if (s.strategy.type === 'RollingUpdate') {
        s.strategy.rollingUpdate ??= {};
        s.strategy.rollingUpdate.maxUnavailable ??= '25%';
        s.strategy.rollingUpdate.maxSurge ??= '25%';
      }
    },
    validate: validateWorkload,
    validateUpdate: selectorImmutable,
    scale: replicaScale,
    columns: [
      col('Ready', 'Number of the pod with ready state'),
      col('Up-to-date', 'Total number of non-terminated pods targeted by this deployment that have the desired template spec.', 'integer'),
      col('Available', 'Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.', 'integer'),
      AGE,
      ...WIDE,
    ],
    row: (o) => [`${o.status?.readyReplicas ?? 0}/${o.spec?.replicas ?? 0}`, o.status?.updatedReplicas ?? 0, o.status?.availableReplicas ?? 0, age(o), ...containersAndImages(o.spec?.template?.spec), selectorString(o.spec?.selector)],
  }),
  apps({
    kind: 'ReplicaSet',
    plural: 'replicasets',
    singular: 'replicaset',
    shortNames: ['rs'],
    defaults: (o) => {
      defaultTemplate(o);
      o.spec.replicas ??= 1;
      o.status ??= { replicas: 0 };
    },
    validate: validateWorkload,
    validateUpdate: selectorImmutable,
    scale: replicaScale,
    columns: [
      col('Desired', 'Number of desired pods.', 'integer'),
      col('Current', 'Number of actual replicas.', 'integer'),
      col('Ready', 'The number of ready replicas for this replica set.', 'integer'),
      AGE,
      ...WIDE,
    ],
    row: (o) => [o.spec?.replicas ?? 0, o.status?.replicas ?? 0, o.status?.readyReplicas ?? 0, age(o), ...containersAndImages(o.spec?.template?.spec), selectorString(o.spec?.selector)],
  }),
  apps({
    kind: 'StatefulSet',
    plural: 'statefulsets',
    singular: 'statefulset',
    shortNames: ['sts'],
    defaults: (o) => {
      defaultTemplate(o);
      const s = o.spec as Obj;
      s.replicas ??= 1;
      s.podManagementPolicy ??= 'OrderedReady';
      s.revisionHistoryLimit ??= 10;
      s.updateStrategy ??= {};
      s.updateStrategy.type ??= 'RollingUpdate';
      if (s.updateStrategy.type === 'RollingUpdate') (s.updateStrategy.rollingUpdate ??= {}).partition ??= 0;
      s.persistentVolumeClaimRetentionPolicy ??= { whenDeleted: 'Retain', whenScaled: 'Retain' };
    },
    validate: validateWorkload,
    validateUpdate: selectorImmutable,
    scale: replicaScale,
    columns: [col('Ready', 'Number of the pod with ready state'), AGE, col('Containers', 'Names of each container in the template.', 'string', 1), col('Images', 'Images referenced by each container in the template.', 'string', 1)],
    row: (o) => [`${o.status?.readyReplicas ?? 0}/${o.spec?.replicas ?? 0}`, age(o), ...containersAndImages(o.spec?.template?.spec)],
  }),
  apps({
    kind: 'DaemonSet',
    plural: 'daemonsets',
    singular: 'daemonset',
    shortNames: ['ds'],
    defaults: (o) => {
      defaultTemplate(o);
      const s = o.spec as Obj;
      s.revisionHistoryLimit ??= 10;
      s.updateStrategy ??= {};
      s.updateStrategy.type ??= 'RollingUpdate';
      if (s.updateStrategy.type === 'RollingUpdate') {
        s.updateStrategy.rollingUpdate ??= {};
        s.updateStrategy.rollingUpdate.maxUnavailable ??= 1;
        s.updateStrategy.rollingUpdate.maxSurge ??= 0;
      }
    },
    validate: validateWorkload,
    validateUpdate: selectorImmutable,
    columns: [
      col('Desired', 'The total number of nodes that should be running the daemon pod.', 'integer'),
      col('Current', 'The number of nodes that are running at least 1 daemon pod.', 'integer'),
      col('Ready', 'The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.', 'integer'),
      col('Up-to-date', 'The total number of nodes that are running updated daemon pod', 'integer'),
      col('Available', 'The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available.', 'integer'),
      col('Node Selector', 'NodeSelector is a selector which must be true for the pod to fit on a node.'),
      AGE,
      ...WIDE,
    ],
    row: (o) => {
      const st = (o.status ?? {}) as Obj;
      const ns = o.spec?.template?.spec?.nodeSelector as Record<string, string> | undefined;
      return [st.desiredNumberScheduled ?? 0, st.currentNumberScheduled ?? 0, st.numberReady ?? 0, st.updatedNumberScheduled ?? 0, st.numberAvailable ?? 0, ns ? Object.entries(ns).map(([k, v]) => `${k}=${v}`).join(',') : '<none>', age(o), ...containersAndImages(o.spec?.template?.spec), selectorString(o.spec?.selector)];
    },
  }),
  {
    group: 'apps',
    version: 'v1',
    kind: 'ControllerRevision',
    plural: 'controllerrevisions',
    singular: 'controllerrevision',
    namespaced: true,
    definition: 'io.k8s.api.apps.v1.ControllerRevision',
    validate: (o) => validateMeta(o, 'subdomain'),
    columns: [col('Controller', 'Controller of the object'), col('Revision', 'Revision', 'integer'), AGE],
    row: (o) => {
      const owner = ((o.metadata?.ownerReferences ?? []) as Obj[]).find((r) => r.controller);
      return [owner ? `${String(owner.kind).toLowerCase()}.${String(owner.apiVersion).split('/')[0]}/${owner.name}` : '<none>', o.revision ?? 0, age(o)];
    },
  },
];
