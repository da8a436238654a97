/**
 * The StatefulSet controller (Kubernetes' `statefulset` controller, 1.32 semantics): pods with a
 * stable identity `<set>-<ordinal>` (ordinals from `spec.ordinals.start`), a stable hostname and
 * subdomain, and stable storage: one PersistentVolumeClaim per `volumeClaimTemplates` entry and
 * ordinal, `<template>-<set>-<ordinal>`, created before the pod and kept when the pod goes (unless
 * `persistentVolumeClaimRetentionPolicy` says Delete).
 *
 * How a sync goes, as upstream (pkg/controller/statefulset):
 *
 * 1. ControllerRevisions (apps/v1) matching the selector are listed; orphans are adopted. The set's
 *    template is saved as a revision whose `data` is the strategic merge patch
 *    `{"spec":{"template":{..., "$patch":"replace"}}}` (what `kubectl rollout undo statefulset`
 *    applies). A template equal to an older revision reuses it with the next revision number (a
 *    rollback); a new one gets `<set>-<hash>` (FNV-1 of the data and `status.collisionCount`, in
 *    Kubernetes' safe alphabet; a name taken by different data bumps the collision count). Pods
 *    carry the name of their revision in the `controller-revision-hash` label. Revisions no pod
 *    uses beyond `revisionHistoryLimit` are deleted, oldest first.
 * 2. Pods are claimed as the ReplicaSet controller does (selector and ownerReferences), and in
 *    addition only pods whose name makes them members of the set (`<set>-<digits>`).
 * 3. {@link planStatefulSet} decides, from the pods alone, what to do next (pure, unit tested):
 *    - every ordinal in `[start, start + replicas)`: a missing pod is created (its claims first; at
 *      the current revision below `partition`, else at the update revision); a Failed or
 *      Succeeded pod is deleted, to be recreated with the same name on the next sync; a pod whose
 *      identity label, claims or claim ownership drifted is repaired;
 *    - pods with ordinals outside the range are condemned, and deleted highest ordinal first;
 *    - RollingUpdate: the pod with the highest ordinal `>= partition` not at the update revision
 *      is deleted (and recreated at the update revision), one at a time, each waiting for the pods
 *      above it to be Running, Ready and available; OnDelete: pods change revision only when
 *      someone deletes them.
 *
 *    With `podManagementPolicy: OrderedReady` (monotonic) a sync stops at the first pod that is
 *    not Running, Ready and available for `minReadySeconds`, and after its one create or delete:
 *    pods appear in ordinal order and go in reverse order, one at a time. `Parallel` does
 *    creations and scale-down deletions all at once (in slow-start batches).
 * 4. Status: replicas, readyReplicas, currentReplicas, updatedReplicas, availableReplicas,
 *    currentRevision, updateRevision, observedGeneration, collisionCount (what `kubectl rollout
 *    status statefulset` reads). A RollingUpdate completes (currentRevision := updateRevision) once
 *    all `spec.replicas` pods are updated and ready.
 *
 * Claim retention (`persistentVolumeClaimRetentionPolicy`, StatefulSetAutoDeletePVC, GA in 1.32)
 * is expressed as owner references on the claims, which the garbage collector acts on: `whenDeleted:
 * Delete` makes the set the claim's controller, `whenScaled: Delete` makes a condemned pod its
 * controller just before the pod is deleted. Retain (the default) leaves no reference of ours.
 * Claims with a stale reference to a previous pod of the same name are waited for (the garbage
 * collector deletes them) before the pod is created again. Unlike upstream, a new claim is created
 * with the owner references it should have, instead of being created bare and updated right after.
 *
 * Departures, on purpose: pod volumes are never rewritten (a pod's spec is immutable; upstream's
 * attempt fails validation and retries forever), a missing claim is created instead; deletions
 * carry the pod's uid as a precondition, so a stale cache never deletes a pod recreated under the
 * same name; a `maxUnavailable` in the rolling update is ignored (the MaxUnavailableStatefulSet
 * feature gate is alpha and off in 1.32); a set being deleted is left to the garbage collector
 * without a last status write.
 *
 * @module
 */
import {
  Controller,
  controllerOf,
  definePlugin,
  EventRecorder,
  isAlreadyExists,
  isConflict,
  isNotFound,
  labelSelectorMatches,
  mapToOwner,
  objectKey,
  runWhileLeading,
  LEADER_ELECTION_SCHEMA,
  type ApiClient,
  type Informer,
  type KubeObject,
  type LabelSelector,
  type LeaderElectionConfig,
  type Logger,
  type ObjectKey,
  type OwnerReference,
  type ReconcileResult,
} from '@kubernel/sdk';
import { isPodAvailable, isPodReady } from './replicaset.js';
import { type Fields, canonicalJson, safeHash } from './util.js';

/** The label with the pod's own name (a Service can select one pod of a set with it). */
export const POD_NAME_LABEL = 'statefulset.kubernetes.io/pod-name';
/** The label with the pod's ordinal (PodIndexLabel). */
export const POD_INDEX_LABEL = 'apps.kubernetes.io/pod-index';
/** The label with the name of the ControllerRevision a pod was made from. */
export const CONTROLLER_REVISION_HASH_LABEL = 'controller-revision-hash';
/** The controller's name: plugin id, event source, work queue. */
export const STATEFULSET_CONTROLLER_NAME = 'statefulset-controller';
/** At most this many requests of one batch in flight (Kubernetes' MaxBatchSize for Parallel). */
export const MAX_BATCH_SIZE = 500;

const SET_API_VERSION = 'apps/v1';
const SET_KIND = 'StatefulSet';
const MAX_INT32 = 2 ** 31 - 1;

const enc = encodeURIComponent;
const setsPath = (ns: string, name?: string): string => `/apis/apps/v1/namespaces/${enc(ns)}/statefulsets${name ? `/${enc(name)}` : ''}`;
const podsPath = (ns: string, name?: string): string => `/api/v1/namespaces/${enc(ns)}/pods${name ? `/${enc(name)}` : ''}`;
const claimsPath = (ns: string, name?: string): string => `/api/v1/namespaces/${enc(ns)}/persistentvolumeclaims${name ? `/${enc(name)}` : ''}`;
const revisionsPath = (ns: string, name?: string): string => `/apis/apps/v1/namespaces/${enc(ns)}/controllerrevisions${name ? `/${enc(name)}` : ''}`;

const specOf = (o: KubeObject): Fields => (o.spec ?? {}) as Fields;
const nameOf = (o: KubeObject): string => String(o.metadata?.name ?? '');
const uidOf = (o: KubeObject): string => String(o.metadata?.uid ?? '');
const refsOf = (o: KubeObject): OwnerReference[] => (((o.metadata as Fields | undefined)?.ownerReferences ?? []) as OwnerReference[]);


// ---------------------------------------------------------------------------------------------
// Identity
// ---------------------------------------------------------------------------------------------

/**
 * The parent set name and ordinal a pod name encodes (`<parent>-<digits>`, as upstream's
 * `(.*)-([0-9]+)$`): `{parent: '', ordinal: -1}` for a name without one; an ordinal beyond int32
 * is -1 with the parent kept.
 */
export function parseOrdinal(podName: string): { parent: string; ordinal: number } {
  const m = /^(.*)-([0-9]+)$/s.exec(podName);
  if (!m) return { parent: '', ordinal: -1 };
  const n = Number(m[2]);
  return { parent: m[1]!, ordinal: Number.isSafeInteger(n) && n <= MAX_INT32 ? n : -1 };
}

/** The ordinal of a pod (-1 when its name has none). */
export const ordinalOf = (pod: KubeObject): number => parseOrdinal(nameOf(pod)).ordinal;

/** The first ordinal of a set: `spec.ordinals.start`, 0 by default. */
export const startOrdinal = (set: KubeObject): number => Math.max(0, Number(specOf(set).ordinals?.start ?? 0) || 0);

/** `spec.replicas` (1 when unset, as the API server defaults it). */
export function desiredReplicas(set: KubeObject): number {
  const r = specOf(set).replicas;
  return Number.isInteger(r) && r >= 0 ? Number(r) : 1;
}

/** The name of a set's pod: `<set>-<ordinal>`. */
export const podName = (setName: string, ordinal: number): string => `${setName}-${ordinal}`;

/** The name of a pod's claim from `template`: `<template>-<set>-<ordinal>`. */
export const claimName = (templateName: string, setName: string, ordinal: number): string => `${templateName}-${setName}-${ordinal}`;

/** True when a pod's name makes it a member of the set (whatever its ordinal). */
export const isMemberOf = (set: KubeObject, pod: KubeObject): boolean => parseOrdinal(nameOf(pod)).parent === nameOf(set);

/** True when the pod's ordinal is in `[start, start + replicas)`. */
export function podInOrdinalRange(pod: KubeObject, set: KubeObject): boolean {
  const ordinal = ordinalOf(pod);
  const start = startOrdinal(set);
  return ordinal >= start && ordinal < start + desiredReplicas(set);
}

/** True when the pod has the name, namespace and pod-name label of a member of the set. */
export function identityMatches(set: KubeObject, pod: KubeObject): boolean {
  const { parent, ordinal } = parseOrdinal(nameOf(pod));
  return ordinal >= 0 && parent === nameOf(set) && nameOf(pod) === podName(nameOf(set), ordinal) && pod.metadata?.namespace === set.metadata?.namespace && pod.metadata?.labels?.[POD_NAME_LABEL] === nameOf(pod);
}

/** The set's volume claim templates. */
const claimTemplates = (set: KubeObject): Fields[] => ((specOf(set).volumeClaimTemplates ?? []) as Fields[]).filter((t) => typeof t?.metadata?.name === 'string');

/** True when the pod has, for every claim template, a volume of the template's name using the ordinal's claim. */
export function storageMatches(set: KubeObject, pod: KubeObject): boolean {
  const ordinal = ordinalOf(pod);
  if (ordinal < 0) return false;
  const volumes = new Map<string, Fields>((((pod.spec as Fields | undefined)?.volumes ?? []) as Fields[]).map((v) => [String(v?.name), v]));
  return claimTemplates(set).every((t) => volumes.get(t.metadata.name)?.persistentVolumeClaim?.claimName === claimName(t.metadata.name, nameOf(set), ordinal));
}

/**
 * The claims of the pod with `ordinal`, from the templates: named `<template>-<set>-<ordinal>`,
 * labelled with the template's labels and the selector's `matchLabels`; no owner references
 * (see {@link desiredClaimOwnerReferences}) and no status.
 */
export function persistentVolumeClaimsFor(set: KubeObject, ordinal: number): KubeObject[] {
  const matchLabels = ((specOf(set).selector as LabelSelector | undefined)?.matchLabels ?? {}) as Record<string, string>;
  return claimTemplates(set).map((t) => {
    const meta = structuredClone(t.metadata) as Fields;
    delete meta.ownerReferences;
    delete meta.namespace;
    return {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { ...meta, name: claimName(t.metadata.name, nameOf(set), ordinal), namespace: set.metadata?.namespace, labels: { ...(meta.labels ?? {}), ...matchLabels } },
      spec: structuredClone(t.spec ?? {}),
    };
  });
}

/** The controller reference of a set's pods and revisions. */
export const setControllerRef = (set: KubeObject): OwnerReference => ({ apiVersion: SET_API_VERSION, kind: SET_KIND, name: nameOf(set), uid: uidOf(set), controller: true, blockOwnerDeletion: true });

/**
 * A new pod of the set at `ordinal` from `template` (the template of revision `revision`): the
 * template's labels, annotations, finalizers and spec; name `<set>-<ordinal>`; the pod-name,
 * pod-index and controller-revision-hash labels; hostname = the pod name, subdomain = `serviceName`;
 * a volume per claim template, replacing a template volume of the same name; the set as controller.
 */
export function newStatefulSetPod(set: KubeObject, template: Fields | undefined, ordinal: number, revision: string): KubeObject {
  const tpl = (template ?? {}) as Fields;
  const name = podName(nameOf(set), ordinal);
  const spec = structuredClone(tpl.spec ?? {}) as Fields;
  const claims = claimTemplates(set);
  const claimed = new Set(claims.map((t) => String(t.metadata.name)));
  const volumes = [
    ...claims.map((t) => ({ name: t.metadata.name, persistentVolumeClaim: { claimName: claimName(t.metadata.name, nameOf(set), ordinal) } })),
    ...((spec.volumes ?? []) as Fields[]).filter((v) => !claimed.has(String(v?.name))),
  ];
  if (volumes.length) spec.volumes = volumes;
  spec.hostname = name;
  const serviceName = specOf(set).serviceName;
  if (typeof serviceName === 'string' && serviceName !== '') spec.subdomain = serviceName;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: set.metadata?.namespace,
      labels: { ...((tpl.metadata?.labels ?? {}) as Record<string, string>), [POD_NAME_LABEL]: name, [POD_INDEX_LABEL]: String(ordinal), [CONTROLLER_REVISION_HASH_LABEL]: revision },
      ...(tpl.metadata?.annotations ? { annotations: { ...tpl.metadata.annotations } } : {}),
      ...(tpl.metadata?.finalizers ? { finalizers: [...tpl.metadata.finalizers] } : {}),
      ownerReferences: [setControllerRef(set)],
    },
    spec,
  };
}

// ---------------------------------------------------------------------------------------------
// Pod state
// ---------------------------------------------------------------------------------------------

const phaseOf = (pod: KubeObject): string => String((pod.status as Fields | undefined)?.phase ?? '');
/** True once the API server maintains the pod (it has a phase). */
export const isCreated = (pod: KubeObject): boolean => phaseOf(pod) !== '';
/** True when the pod has a deletionTimestamp. */
export const isTerminating = (pod: KubeObject): boolean => !!pod.metadata?.deletionTimestamp;
/** Phase Running and condition Ready. */
export const isRunningAndReady = (pod: KubeObject): boolean => phaseOf(pod) === 'Running' && isPodReady(pod);
/** Ready for at least `minReadySeconds`. */
export const isRunningAndAvailable = (pod: KubeObject, minReadySeconds: number, now = Date.now()): boolean => isPodAvailable(pod, minReadySeconds, now);
/** Running, Ready and not terminating. */
export const isHealthy = (pod: KubeObject): boolean => isRunningAndReady(pod) && !isTerminating(pod);
/** The revision a pod was made from (its controller-revision-hash label). */
export const revisionOf = (pod: KubeObject): string => String(pod.metadata?.labels?.[CONTROLLER_REVISION_HASH_LABEL] ?? '');

// ---------------------------------------------------------------------------------------------
// Claim retention
// ---------------------------------------------------------------------------------------------

/** The claim retention policy of a set (Retain/Retain by default). */
export function retentionPolicy(set: KubeObject): { whenDeleted: string; whenScaled: string } {
  const p = (specOf(set).persistentVolumeClaimRetentionPolicy ?? {}) as Fields;
  return { whenDeleted: p.whenDeleted === 'Delete' ? 'Delete' : 'Retain', whenScaled: p.whenScaled === 'Delete' ? 'Delete' : 'Retain' };
}

const POD_REF = { apiVersion: 'v1', kind: 'Pod' };
const SET_REF = { apiVersion: SET_API_VERSION, kind: SET_KIND };
const matchesRef = (ref: OwnerReference, obj: KubeObject, kind: { apiVersion: string; kind: string }): boolean => ref.apiVersion === kind.apiVersion && ref.kind === kind.kind && ref.name === nameOf(obj);
const hasRef = (target: KubeObject, owner: KubeObject): boolean => uidOf(owner) !== '' && refsOf(target).some((r) => r.uid === uidOf(owner));
/** A reference to an object of this name and kind but another uid (a previous incarnation). */
function hasStaleRef(target: KubeObject, obj: KubeObject, kind: { apiVersion: string; kind: string }): boolean {
  const ref = refsOf(target).find((r) => matchesRef(r, obj, kind));
  return !!ref && ref.uid !== uidOf(obj);
}
/** A controller other than the set or the pod, when the policy is not Retain/Retain. */
function hasUnexpectedController(claim: KubeObject, set: KubeObject, pod: KubeObject): boolean {
  const policy = retentionPolicy(set);
  if (policy.whenScaled === 'Retain' && policy.whenDeleted === 'Retain') return false;
  for (const ref of refsOf(claim)) {
    if (matchesRef(ref, set, SET_REF)) {
      if (ref.uid !== uidOf(set)) return true;
      continue;
    }
    if (matchesRef(ref, pod, POD_REF)) {
      if (ref.uid !== uidOf(pod)) return true;
      continue;
    }
    if (ref.controller === true) return true;
  }
  return false;
}
const hasNonControllerRef = (claim: KubeObject, set: KubeObject, pod: KubeObject): boolean =>
  refsOf(claim).some((r) => ((uidOf(set) !== '' && r.uid === uidOf(set)) || (uidOf(pod) !== '' && r.uid === uidOf(pod))) && r.controller !== true);

/**
 * True when a claim's owner references fit the set's retention policy for `pod` (upstream's
 * isClaimOwnerUpToDate): Retain/Retain, no reference to set or pod; whenDeleted Delete, the set;
 * whenScaled Delete, the pod once it is condemned (out of the ordinal range); both Delete, the pod
 * when condemned, else the set. Claims with stale references, or another controller and none of
 * ours, count as up to date: they are not touched.
 */
export function claimOwnersUpToDate(claim: KubeObject, set: KubeObject, pod: KubeObject): boolean {
  if (hasStaleRef(claim, set, SET_REF) || hasStaleRef(claim, pod, POD_REF)) return true;
  if (hasUnexpectedController(claim, set, pod)) return !(hasRef(claim, set) || hasRef(claim, pod));
  if (hasNonControllerRef(claim, set, pod)) return false;
  const { whenDeleted, whenScaled } = retentionPolicy(set);
  const setRef = hasRef(claim, set);
  const podRef = hasRef(claim, pod);
  const scaledDown = !podInOrdinalRange(pod, set);
  if (whenScaled === 'Delete' && whenDeleted === 'Delete') return scaledDown !== setRef && scaledDown === podRef;
  if (whenScaled === 'Delete') return !setRef && scaledDown === podRef;
  if (whenDeleted === 'Delete') return setRef && !podRef;
  return !setRef && !podRef;
}

/** The owner references a claim should have under the set's retention policy (see {@link claimOwnersUpToDate}). */
export function desiredClaimOwnerReferences(claim: KubeObject, set: KubeObject, pod: KubeObject): OwnerReference[] {
  const unexpected = hasUnexpectedController(claim, set, pod);
  const refs = refsOf(claim).filter((r) => !matchesRef(r, set, SET_REF) && !matchesRef(r, pod, POD_REF));
  if (unexpected) return refs;
  const add = (owner: KubeObject, kind: { apiVersion: string; kind: string }): void => {
    if (uidOf(owner) !== '' && !refs.some((r) => r.uid === uidOf(owner))) refs.push({ ...kind, name: nameOf(owner), uid: uidOf(owner), controller: true, blockOwnerDeletion: true });
  };
  const { whenDeleted, whenScaled } = retentionPolicy(set);
  const scaledDown = !podInOrdinalRange(pod, set);
  if (whenScaled === 'Delete' && scaledDown) add(pod, POD_REF);
  else if (whenDeleted === 'Delete' && (whenScaled === 'Retain' || !scaledDown)) add(set, SET_REF);
  return refs;
}

/** Looks a claim up by name (in the set's namespace); undefined when absent. */
export type ClaimLookup = (name: string) => KubeObject | undefined;

const claimsOfPod = (set: KubeObject, pod: KubeObject, lookup: ClaimLookup): Array<{ name: string; claim: KubeObject | undefined }> =>
  claimTemplates(set).map((t) => {
    const name = claimName(t.metadata.name, nameOf(set), ordinalOf(pod));
    return { name, claim: lookup(name) };
  });

/** True when every existing claim of the pod has the owner references the policy wants. */
export const claimsMatchRetentionPolicy = (set: KubeObject, pod: KubeObject, lookup: ClaimLookup): boolean => claimsOfPod(set, pod, lookup).every(({ claim }) => !claim || claimOwnersUpToDate(claim, set, pod));

/**
 * The claim (name) of the pod at `ordinal` that still belongs to a previous pod of that name
 * (whenScaled Delete: the garbage collector is about to delete it), or undefined.
 */
export function staleClaim(set: KubeObject, ordinal: number, lookup: ClaimLookup): string | undefined {
  if (retentionPolicy(set).whenScaled !== 'Delete') return undefined;
  const pod: KubeObject = { metadata: { name: podName(nameOf(set), ordinal) } };
  return claimsOfPod(set, pod, lookup).find(({ claim }) => claim && hasStaleRef(claim, pod, POD_REF))?.name;
}

// ---------------------------------------------------------------------------------------------
// Revisions
// ---------------------------------------------------------------------------------------------

/** The data of a revision of `template`: the strategic merge patch that restores it. */
export const revisionData = (template: Fields | undefined): Fields => ({ spec: { template: { ...structuredClone(template ?? {}), $patch: 'replace' } } });

/** The pod template a revision saved. */
export function templateOfRevision(revision: KubeObject): Fields {
  const t = structuredClone(((revision as Fields).data?.spec?.template ?? {}) as Fields);
  delete t.$patch;
  return t;
}

/** True when two revision datas are equal (as canonical JSON). */
export const sameRevisionData = (a: unknown, b: unknown): boolean => canonicalJson(a) === canonicalJson(b);

/**
 * The hash part of a revision name: FNV-1 (32 bit, as upstream's HashControllerRevision) of the
 * canonical JSON of `data` followed by the collision count, its decimal text mapped through
 * Kubernetes' safe alphabet. (Upstream hashes Go's JSON, so values differ; shape and use agree.)
 */
export function revisionHash(data: unknown, collisionCount = 0): string {
  return safeHash(canonicalJson(data) + String(collisionCount));
}

/** `<set>-<hash>`, the set name cut to 223 characters, as upstream. */
export const revisionName = (setName: string, hash: string): string => `${setName.slice(0, 223)}-${hash}`;

/** The revision number of a ControllerRevision. */
export const revisionNumber = (r: KubeObject): number => Number((r as Fields).revision ?? 0) || 0;

/** Sorts revisions by revision number, then creation time, then name (upstream's order). */
export function sortRevisions(revisions: KubeObject[]): KubeObject[] {
  return revisions.sort((a, b) => revisionNumber(a) - revisionNumber(b) || String(a.metadata?.creationTimestamp ?? '').localeCompare(String(b.metadata?.creationTimestamp ?? '')) || nameOf(a).localeCompare(nameOf(b)));
}

/** A new ControllerRevision of the set's current template (labels: the template's; annotations: the set's). */
export function newControllerRevision(set: KubeObject, revision: number, collisionCount: number): KubeObject {
  const template = specOf(set).template as Fields | undefined;
  const data = revisionData(template);
  return {
    apiVersion: 'apps/v1',
    kind: 'ControllerRevision',
    metadata: {
      name: revisionName(nameOf(set), revisionHash(data, collisionCount)),
      namespace: set.metadata?.namespace,
      labels: { ...((template?.metadata?.labels ?? {}) as Record<string, string>) },
      annotations: { ...(set.metadata?.annotations ?? {}) },
      ownerReferences: [setControllerRef(set)],
    },
    data,
    revision,
  };
}

/**
 * The revisions to delete to keep `revisionHistoryLimit` (default 10): those neither current,
 * update nor used by a pod, oldest first, beyond the limit. `revisions` must be sorted.
 */
export function revisionsToTruncate(set: KubeObject, pods: readonly KubeObject[], revisions: readonly KubeObject[], current: string, update: string): KubeObject[] {
  const live = new Set([current, update, ...pods.map(revisionOf)]);
  const history = revisions.filter((r) => !live.has(nameOf(r)));
  const limit = Number(specOf(set).revisionHistoryLimit ?? 10);
  if (limit < 0 || history.length <= limit) return [];
  return history.slice(0, history.length - limit);
}

// ---------------------------------------------------------------------------------------------
// The plan
// ---------------------------------------------------------------------------------------------

/** The strategy type (RollingUpdate by default). */
const strategyType = (set: KubeObject): string => String(specOf(set).updateStrategy?.type ?? 'RollingUpdate');

/** The RollingUpdate partition (0 by default, as the API server defaults it); 0 for OnDelete. */
export function partitionOf(set: KubeObject): number {
  if (strategyType(set) !== 'RollingUpdate') return 0;
  return Math.max(0, Number(specOf(set).updateStrategy?.rollingUpdate?.partition ?? 0) || 0);
}

/**
 * True when a pod created at `ordinal` takes the current revision rather than the update one:
 * RollingUpdate and an ordinal below `start + partition` (the pods the partition protects).
 */
export const createsAtCurrentRevision = (set: KubeObject, ordinal: number): boolean => strategyType(set) === 'RollingUpdate' && ordinal < startOrdinal(set) + partitionOf(set);

/** What a sync does to one pod. */
export type PlannedAction =
  /** Create the claims of `ordinal` (those missing), then its pod at the current or update revision. */
  | { readonly kind: 'create'; readonly ordinal: number; readonly revision: 'current' | 'update' }
  /** Delete a pod: it has finished (`failed`), is condemned (`scale-down`), or is at an old revision (`update`). */
  | { readonly kind: 'delete'; readonly pod: KubeObject; readonly reason: 'failed' | 'scale-down' | 'update' }
  /** Repair a pod: its identity labels, its missing claims, the owner references of its claims. */
  | { readonly kind: 'repair'; readonly pod: KubeObject; readonly identity: boolean; readonly claims: boolean; readonly retention: boolean };

/** The pod counts of a set's status. */
export interface ReplicaCounts {
  replicas: number;
  readyReplicas: number;
  availableReplicas: number;
  currentReplicas: number;
  updatedReplicas: number;
}

/** The input of {@link planStatefulSet}. */
export interface PlanInput {
  readonly set: KubeObject;
  /** The pods the set controls (claimed): members by name, matching the selector. */
  readonly pods: readonly KubeObject[];
  /** Names of the current and update ControllerRevisions. */
  readonly currentRevision: string;
  readonly updateRevision: string;
  /** The claims in the set's namespace, by name (default: none exist). */
  readonly claims?: ClaimLookup;
  /** Milliseconds since the epoch (for minReadySeconds). */
  readonly now?: number;
}

/** What to do, in order. */
export interface StatefulSetPlan {
  /**
   * Steps run in order; the actions of one step may run at once (Parallel; slow-start batches).
   * A failing step stops the sync: the rest waits for the retry. OrderedReady has one action per step.
   */
  readonly steps: ReadonlyArray<readonly PlannedAction[]>;
  /** Counts of the pods as they are (upstream's status, before the actions take effect). */
  readonly status: ReplicaCounts;
  /** Why the plan ends where it does, when it ends early (something to wait for, or the one change OrderedReady makes per sync). */
  readonly reason?: string;
  /** False for the Parallel policy. */
  readonly monotonic: boolean;
}

/** Counts pods as upstream's computeReplicaStatus. */
export function countReplicas(pods: readonly KubeObject[], minReadySeconds: number, currentRevision: string, updateRevision: string, now = Date.now()): ReplicaCounts {
  const c: ReplicaCounts = { replicas: 0, readyReplicas: 0, availableReplicas: 0, currentReplicas: 0, updatedReplicas: 0 };
  for (const pod of pods) {
    if (isCreated(pod)) c.replicas++;
    if (isRunningAndReady(pod)) {
      c.readyReplicas++;
      if (isRunningAndAvailable(pod, minReadySeconds, now)) c.availableReplicas++;
    }
    if (isCreated(pod) && !isTerminating(pod)) {
      if (revisionOf(pod) === currentRevision) c.currentReplicas++;
      if (revisionOf(pod) === updateRevision) c.updatedReplicas++;
    }
  }
  return c;
}

/**
 * Decides what a sync of `set` does next, from its pods (Kubernetes' updateStatefulSet, as a pure
 * function): see the module comment for the rules. OrderedReady ends the plan at the first pod to
 * wait for and after its one create or delete; Parallel plans every creation and every scale-down
 * deletion at once. The rolling update (not OnDelete) deletes at most one pod per sync, the
 * highest ordinal `>= partition` not at the update revision, and only once every pod above it is
 * available.
 */
export function planStatefulSet(input: PlanInput): StatefulSetPlan {
  const { set, currentRevision, updateRevision } = input;
  const now = input.now ?? Date.now();
  const lookup: ClaimLookup = input.claims ?? (() => undefined);
  const spec = specOf(set);
  const name = nameOf(set);
  const start = startOrdinal(set);
  const count = desiredReplicas(set);
  const minReady = Number(spec.minReadySeconds ?? 0) || 0;
  const monotonic = spec.podManagementPolicy !== 'Parallel';

  const replicas: Array<KubeObject | undefined> = Array.from({ length: count }, () => undefined);
  const condemned: KubeObject[] = [];
  for (const pod of input.pods) {
    const ordinal = ordinalOf(pod);
    if (ordinal >= start && ordinal < start + count) replicas[ordinal - start] = pod;
    else if (ordinal >= 0) condemned.push(pod);
  }
  condemned.sort((a, b) => ordinalOf(b) - ordinalOf(a));
  const status = countReplicas([...replicas.filter((p): p is KubeObject => !!p), ...condemned], minReady, currentRevision, updateRevision, now);
  const steps: PlannedAction[][] = [];
  const done = (reason?: string): StatefulSetPlan => ({ steps, status, monotonic, ...(reason ? { reason } : {}) });
  if (set.metadata?.deletionTimestamp) return done('the StatefulSet is being deleted');

  const deleted = new Set<KubeObject>();
  const unavailable = (p: KubeObject | undefined): boolean => !p || deleted.has(p) || !isHealthy(p) || !isRunningAndAvailable(p, minReady, now);
  // The first pod (replicas in order, then condemned from the lowest ordinal) not available: the
  // only condemned pod OrderedReady may delete while it is unhealthy.
  const firstUnavailable: KubeObject | 'replica' | undefined = replicas.some(unavailable) ? 'replica' : [...condemned].reverse().find(unavailable);
  let batch: PlannedAction[] = [];
  const emit = (a: PlannedAction): void => {
    if (monotonic) steps.push([a]);
    else batch.push(a);
  };
  const flush = (): void => {
    if (batch.length) steps.push(batch);
    batch = [];
  };

  // 1. Every ordinal of the range.
  for (let i = 0; i < count; i++) {
    const ordinal = start + i;
    const pod = replicas[i];
    const who = podName(name, ordinal);
    if (!pod) {
      const stale = staleClaim(set, ordinal, lookup);
      if (stale) {
        if (monotonic) return done(`claim ${stale} of ${who} still belongs to a deleted pod`);
        continue;
      }
      emit({ kind: 'create', ordinal, revision: createsAtCurrentRevision(set, ordinal) ? 'current' : 'update' });
      if (monotonic) return done(`creating ${who}`);
      continue;
    }
    const phase = phaseOf(pod);
    if (phase === 'Failed' || phase === 'Succeeded') {
      if (!isTerminating(pod)) {
        emit({ kind: 'delete', pod, reason: 'failed' });
        deleted.add(pod);
      }
      if (monotonic) return done(`${who} has ${phase.toLowerCase()}: recreating it`);
      continue;
    }
    const claims = phase === 'Pending' ? claimsOfPod(set, pod, lookup).some(({ claim }) => !claim || !!claim.metadata?.deletionTimestamp) : false;
    if (monotonic) {
      const wait = isTerminating(pod) ? 'to terminate' : !isRunningAndReady(pod) ? 'to be Running and Ready' : !isRunningAndAvailable(pod, minReady, now) ? `to be available (minReadySeconds ${minReady})` : undefined;
      if (wait) {
        if (claims) emit({ kind: 'repair', pod, identity: false, claims, retention: false });
        return done(`waiting for ${who} ${wait}`);
      }
    }
    const identity = !identityMatches(set, pod);
    const missing = claims || (!storageMatches(set, pod) && claimsOfPod(set, pod, lookup).some(({ claim }) => !claim));
    const retention = !claimsMatchRetentionPolicy(set, pod, lookup);
    if (identity || missing || retention) emit({ kind: 'repair', pod, identity, claims: missing, retention });
  }
  flush();

  // 2. The claims of condemned pods get the owner references their policy wants before the pods go.
  for (const pod of condemned) if (!claimsMatchRetentionPolicy(set, pod, lookup)) emit({ kind: 'repair', pod, identity: false, claims: false, retention: true });
  flush();

  // 3. Condemned pods, highest ordinal first.
  for (const pod of condemned) {
    if (isTerminating(pod)) {
      if (monotonic) return done(`waiting for ${nameOf(pod)} to terminate`);
      continue;
    }
    if (monotonic && pod !== firstUnavailable && unavailable(pod)) return done(`waiting for ${nameOf(pod)} to be Running and Ready before scaling it down`);
    emit({ kind: 'delete', pod, reason: 'scale-down' });
    deleted.add(pod);
    if (monotonic) return done(`scaling down ${nameOf(pod)}`);
  }
  flush();

  // 4. The rolling update, from the highest ordinal down to the partition, one pod at a time.
  if (strategyType(set) !== 'RollingUpdate') return done();
  for (let target = count - 1; target >= partitionOf(set); target--) {
    const pod = replicas[target];
    const who = podName(name, start + target);
    if (pod && !deleted.has(pod) && !isTerminating(pod) && revisionOf(pod) !== updateRevision) {
      steps.push([{ kind: 'delete', pod, reason: 'update' }]);
      status.currentReplicas--;
      return done(`updating ${who} to ${updateRevision}`);
    }
    if (unavailable(pod)) return done(`waiting for ${who} to be available during the rolling update`);
  }
  return done();
}

/** Completes a RollingUpdate (as upstream): all `spec.replicas` pods updated and ready make the update revision current. */
export function completeRollingUpdate(set: KubeObject, status: Fields): void {
  const want = desiredReplicas(set);
  if (strategyType(set) === 'RollingUpdate' && status.updatedReplicas === want && status.readyReplicas === want && status.replicas === want) {
    status.currentReplicas = status.updatedReplicas;
    status.currentRevision = status.updateRevision;
  }
}

// ---------------------------------------------------------------------------------------------
// The reconciler
// ---------------------------------------------------------------------------------------------

const STATUS_FIELDS = ['observedGeneration', 'replicas', 'readyReplicas', 'currentReplicas', 'updatedReplicas', 'availableReplicas', 'currentRevision', 'updateRevision', 'collisionCount'] as const;

/** True when a pod name could be one of `set`'s claims (`<template>-<set>-<digits>`). */
const isClaimOfSet = (claim: string, set: KubeObject): boolean => claimTemplates(set).some((t) => {
  const prefix = `${t.metadata.name}-${nameOf(set)}-`;
  return claim.startsWith(prefix) && /^[0-9]+$/.test(claim.slice(prefix.length));
});

/** The StatefulSet reconciler. */
export class StatefulSetReconciler {
  constructor(
    private readonly api: ApiClient,
    private readonly sets: Informer,
    private readonly pods: Informer,
    private readonly claims: Informer,
    private readonly revisions: Informer,
    private readonly log: Logger,
    private readonly events?: EventRecorder,
  ) {}

  async reconcile(key: ObjectKey): Promise<ReconcileResult | void> {
    const cached = this.sets.get(`${key.namespace}/${key.name}`);
    // A set being deleted: its pods, revisions and (whenDeleted Delete) claims go with the garbage collector.
    if (!cached || cached.metadata?.deletionTimestamp) return;
    const set: KubeObject = { ...cached, apiVersion: SET_API_VERSION, kind: SET_KIND };
    const selector = specOf(set).selector as LabelSelector | undefined;
    if (!selector || (Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0)) return; // an empty selector selects nothing

    const revisions = await this.claimRevisions(set, selector);
    const pods = await this.claimPods(set, selector);
    const { current, update, collisionCount } = await this.resolveRevisions(set, revisions);
    const ns = key.namespace;
    const plan = planStatefulSet({ set, pods, currentRevision: nameOf(current), updateRevision: nameOf(update), claims: (n) => this.claims.get(`${ns}/${n}`) });
    if (plan.reason) this.log.debug({ statefulSet: `${ns}/${key.name}`, reason: plan.reason }, 'statefulset sync');

    let failure: unknown;
    let retrySoon = false;
    try {
      retrySoon = await this.execute(set, plan, current, update);
    } catch (err) {
      failure = err;
    }
    const status: Fields = { ...plan.status, observedGeneration: set.metadata?.generation ?? 1, currentRevision: nameOf(current), updateRevision: nameOf(update), collisionCount };
    completeRollingUpdate(set, status);
    await this.writeStatus(set, status);
    await this.truncateHistory(set, pods, revisions, String(status.currentRevision), nameOf(update));
    if (failure) throw failure;
    if (retrySoon) return { requeueAfter: 1000 };
    const minReady = Number(specOf(set).minReadySeconds ?? 0) || 0;
    if (minReady > 0 && status.availableReplicas !== desiredReplicas(set)) return { requeueAfter: minReady * 1000 };
  }

  /** The revisions of the set (matching the selector; orphans adopted), sorted. */
  private async claimRevisions(set: KubeObject, selector: LabelSelector): Promise<KubeObject[]> {
    const out: KubeObject[] = [];
    for (const r of this.revisions.byIndex('namespace', String(set.metadata?.namespace))) {
      if (!labelSelectorMatches(selector, r.metadata?.labels ?? {})) continue;
      const ref = controllerOf(r);
      if (ref && ref.uid !== uidOf(set)) continue;
      if (ref) {
        out.push(r);
        continue;
      }
      try {
        out.push(await this.api.patch(revisionsPath(String(r.metadata?.namespace), nameOf(r)), { metadata: { ownerReferences: [...refsOf(r), setControllerRef(set)], resourceVersion: r.metadata?.resourceVersion } }));
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return sortRevisions(out);
  }

  /** The set's pods: owned ones that still match (others released), and matching orphans (adopted). */
  private async claimPods(set: KubeObject, selector: LabelSelector): Promise<KubeObject[]> {
    const uid = uidOf(set);
    const owned: KubeObject[] = [];
    for (const pod of this.pods.byIndex('namespace', String(set.metadata?.namespace))) {
      const ref = controllerOf(pod);
      if (ref && ref.uid !== uid) continue;
      const matches = labelSelectorMatches(selector, pod.metadata?.labels ?? {}) && isMemberOf(set, pod);
      if (ref) {
        if (matches) {
          owned.push(pod);
        } else {
          const rest = refsOf(pod).filter((r) => r.uid !== uid);
          await this.patchPod(pod, { metadata: { ownerReferences: rest.length ? rest : null, resourceVersion: pod.metadata?.resourceVersion } });
        }
        continue;
      }
      if (!matches || pod.metadata?.deletionTimestamp) continue;
      const adopted = await this.patchPod(pod, { metadata: { ownerReferences: [...refsOf(pod), setControllerRef(set)], resourceVersion: pod.metadata?.resourceVersion } });
      if (adopted) owned.push(adopted);
    }
    return owned;
  }

  private async patchPod(pod: KubeObject, patch: Fields): Promise<KubeObject | undefined> {
    try {
      return await this.api.patch(podsPath(String(pod.metadata?.namespace), nameOf(pod)), patch);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The current and update revisions (creating or renumbering the update one as needed). */
  private async resolveRevisions(set: KubeObject, revisions: KubeObject[]): Promise<{ current: KubeObject; update: KubeObject; collisionCount: number }> {
    let collisionCount = Number((set.status as Fields | undefined)?.collisionCount ?? 0) || 0;
    const data = revisionData(specOf(set).template as Fields | undefined);
    const next = revisions.length ? revisionNumber(revisions.at(-1)!) + 1 : 1;
    const equal = revisions.filter((r) => sameRevisionData((r as Fields).data, data));
    let update: KubeObject;
    if (equal.length && equal.at(-1) === revisions.at(-1)) {
      update = revisions.at(-1)!;
    } else if (equal.length) {
      // The template went back to an older revision: it becomes the newest (a rollback).
      const old = equal.at(-1)!;
      update = (await this.api.patch(revisionsPath(String(old.metadata?.namespace), nameOf(old)), { revision: next, metadata: { resourceVersion: old.metadata?.resourceVersion } })) ?? old;
      this.log.info({ statefulSet: `${set.metadata?.namespace}/${nameOf(set)}`, revision: nameOf(old), number: next }, 'reusing revision');
    } else {
      for (let attempt = 0; ; attempt++) {
        const fresh = newControllerRevision(set, next, collisionCount);
        try {
          update = await this.api.create(revisionsPath(String(set.metadata?.namespace)), fresh);
          // A server that does not keep `data` as sent would make every sync mint another revision.
          if (!sameRevisionData((update as Fields).data, data)) throw new Error(`the API server did not keep the data of ControllerRevision ${nameOf(update)} as sent (is RawExtension pruned?)`);
          this.log.info({ statefulSet: `${set.metadata?.namespace}/${nameOf(set)}`, revision: nameOf(update), number: next }, 'created revision');
          break;
        } catch (err) {
          if (!isAlreadyExists(err)) throw err;
          const existing = await this.api.get(revisionsPath(String(set.metadata?.namespace), nameOf(fresh)));
          if (sameRevisionData((existing as Fields).data, data)) {
            update = existing;
            break;
          }
          if (attempt >= 100) throw new Error(`revision name ${nameOf(fresh)}: too many hash collisions`);
          collisionCount++;
        }
      }
    }
    const currentName = (set.status as Fields | undefined)?.currentRevision;
    const current = revisions.find((r) => nameOf(r) === currentName) ?? update;
    return { current, update, collisionCount };
  }

  /** Runs the plan's steps in order; true when a creation met a pod the cache does not show yet. */
  private async execute(set: KubeObject, plan: StatefulSetPlan, current: KubeObject, update: KubeObject): Promise<boolean> {
    let retrySoon = false;
    for (const step of plan.steps) {
      // Slow start, as upstream: batches of 1, 2, 4, ... (at most MAX_BATCH_SIZE); a failing batch stops the step.
      for (let i = 0, size = 1; i < step.length; i += size, size = Math.min(size * 2, MAX_BATCH_SIZE)) {
        const results = await Promise.allSettled(step.slice(i, i + size).map((a) => this.run(set, a, current, update)));
        const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
        if (results.some((r) => r.status === 'fulfilled' && r.value)) retrySoon = true;
      }
    }
    return retrySoon;
  }

  private async run(set: KubeObject, action: PlannedAction, current: KubeObject, update: KubeObject): Promise<boolean> {
    const ns = String(set.metadata?.namespace);
    if (action.kind === 'create') {
      const revision = action.revision === 'current' ? current : update;
      const pod = newStatefulSetPod(set, templateOfRevision(revision), action.ordinal, nameOf(revision));
      await this.ensureClaims(set, pod);
      let created: KubeObject;
      try {
        created = await this.api.create(podsPath(ns), pod);
      } catch (err) {
        if (isAlreadyExists(err)) return true; // the cache has not seen it yet (or someone else holds the name)
        this.event(set, 'Warning', 'FailedCreate', `create Pod ${nameOf(pod)} in StatefulSet ${nameOf(set)} failed error: ${(err as Error).message}`);
        throw err;
      }
      this.event(set, 'Normal', 'SuccessfulCreate', `create Pod ${nameOf(pod)} in StatefulSet ${nameOf(set)} successful`);
      await this.fixClaimOwners(set, created);
      return false;
    }
    if (action.kind === 'delete') {
      const pod = action.pod;
      try {
        // The uid precondition: a stale cache never deletes a pod recreated under the same name.
        await this.api.request('DELETE', podsPath(ns, nameOf(pod)), { body: { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: uidOf(pod) } } });
      } catch (err) {
        if (isNotFound(err) || isConflict(err)) return false;
        this.event(set, 'Warning', 'FailedDelete', `delete Pod ${nameOf(pod)} in StatefulSet ${nameOf(set)} failed error: ${(err as Error).message}`);
        throw err;
      }
      this.log.info({ statefulSet: `${ns}/${nameOf(set)}`, pod: nameOf(pod), reason: action.reason }, 'deleted pod');
      this.event(set, 'Normal', 'SuccessfulDelete', `delete Pod ${nameOf(pod)} in StatefulSet ${nameOf(set)} successful`);
      return false;
    }
    const pod = action.pod;
    if (action.claims) await this.ensureClaims(set, pod);
    if (action.retention) await this.fixClaimOwners(set, pod);
    if (action.identity) {
      const ordinal = ordinalOf(pod);
      await this.patchPod(pod, { metadata: { labels: { [POD_NAME_LABEL]: nameOf(pod), [POD_INDEX_LABEL]: String(ordinal) } } });
      this.event(set, 'Normal', 'SuccessfulUpdate', `update Pod ${nameOf(pod)} in StatefulSet ${nameOf(set)} successful`);
    }
    return false;
  }

  /** Creates the pod's missing claims (with the owner references the policy wants); a claim being deleted is an error to retry. */
  private async ensureClaims(set: KubeObject, pod: KubeObject): Promise<void> {
    const ns = String(set.metadata?.namespace);
    for (const claim of persistentVolumeClaimsFor(set, ordinalOf(pod))) {
      const existing = this.claims.get(`${ns}/${nameOf(claim)}`);
      if (existing) {
        if (existing.metadata?.deletionTimestamp) throw new Error(`pvc ${nameOf(claim)} is being deleted`);
        continue;
      }
      const refs = desiredClaimOwnerReferences(claim, set, pod);
      if (refs.length) (claim.metadata as Fields).ownerReferences = refs;
      try {
        await this.api.create(claimsPath(ns), claim);
        this.event(set, 'Normal', 'SuccessfulCreate', `create Claim ${nameOf(claim)} Pod ${nameOf(pod)} in StatefulSet ${nameOf(set)} success`);
      } catch (err) {
        if (isAlreadyExists(err)) continue;
        this.event(set, 'Warning', 'FailedCreate', `create Claim ${nameOf(claim)} for Pod ${nameOf(pod)} in StatefulSet ${nameOf(set)} failed error: ${(err as Error).message}`);
        throw new Error(`failed to create PVC ${nameOf(claim)}: ${(err as Error).message}`);
      }
    }
  }

  /** Brings the owner references of the pod's existing claims in line with the retention policy. */
  private async fixClaimOwners(set: KubeObject, pod: KubeObject): Promise<void> {
    const ns = String(set.metadata?.namespace);
    for (const { name, claim } of claimsOfPod(set, pod, (n) => this.claims.get(`${ns}/${n}`))) {
      let c = claim;
      for (let attempt = 0; c && !claimOwnersUpToDate(c, set, pod); attempt++) {
        const refs = desiredClaimOwnerReferences(c, set, pod);
        try {
          await this.api.patch(claimsPath(ns, name), { metadata: { ownerReferences: refs.length ? refs : null, resourceVersion: c.metadata?.resourceVersion } });
          break;
        } catch (err) {
          if (isNotFound(err)) break;
          if (!isConflict(err) || attempt >= 2) throw err;
          c = await this.api.get(claimsPath(ns, name)).catch((e: unknown) => (isNotFound(e) ? undefined : Promise.reject(e)));
        }
      }
    }
  }

  /** Writes the status when it differs (a conflict re-reads the set and tries again). */
  private async writeStatus(set: KubeObject, status: Fields): Promise<void> {
    const previous = (set.status ?? {}) as Fields;
    const differs = STATUS_FIELDS.some((f) => (previous[f] ?? 0) !== (status[f] ?? 0));
    if (!differs) return;
    const out: Fields = { ...status };
    for (const f of ['readyReplicas', 'currentReplicas', 'updatedReplicas'] as const) if (out[f] === 0) delete out[f];
    if (previous.conditions) out.conditions = previous.conditions;
    let target = set;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.api.update(`${setsPath(String(set.metadata?.namespace), nameOf(set))}/status`, { ...target, status: out });
        return;
      } catch (err) {
        if (isNotFound(err)) return;
        if (!isConflict(err) || attempt >= 2) throw err;
        target = await this.api.get(setsPath(String(set.metadata?.namespace), nameOf(set)));
      }
    }
  }

  private async truncateHistory(set: KubeObject, pods: KubeObject[], revisions: KubeObject[], current: string, update: string): Promise<void> {
    for (const r of revisionsToTruncate(set, pods, revisions, current, update)) {
      try {
        await this.api.delete(revisionsPath(String(r.metadata?.namespace), nameOf(r)));
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
  }

  private event(set: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): void {
    this.events?.event(set, type, reason, message);
  }
}

// ---------------------------------------------------------------------------------------------
// The plugin
// ---------------------------------------------------------------------------------------------

/** The StatefulSet controller plugin. */
export const statefulSetControllerPlugin = definePlugin({
  id: STATEFULSET_CONTROLLER_NAME,
  kind: 'controller',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'StatefulSet controller: pods with stable names, hostnames and claims, created in order and removed in reverse order, rolling updates by ControllerRevisions with partitions.',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      workers: { type: 'integer', minimum: 1, maximum: 64, default: 5, description: 'Concurrent syncs (Kubernetes --concurrent-statefulset-syncs).' },
      leaderElection: LEADER_ELECTION_SCHEMA,
    },
  },
  async start(handle, config: { workers: number; leaderElection: LeaderElectionConfig }, signal) {
    const sets = handle.api.informer('/apis/apps/v1/statefulsets');
    const pods = handle.api.informer('/api/v1/pods');
    const claims = handle.api.informer('/api/v1/persistentvolumeclaims');
    const revisions = handle.api.informer('/apis/apps/v1/controllerrevisions');
    const events = new EventRecorder({ api: handle.api, component: STATEFULSET_CONTROLLER_NAME, logger: handle.logger, signal });
    const reconciler = new StatefulSetReconciler(handle.api, sets, pods, claims, revisions, handle.logger, events);
    for (const i of [sets, pods, claims, revisions]) i.run();
    await Promise.all([sets, pods, claims, revisions].map((i) => i.waitForSync(signal)));
    handle.ready();
    const setsIn = (o: KubeObject): KubeObject[] => sets.byIndex('namespace', String(o.metadata?.namespace));
    const selects = (set: KubeObject, o: KubeObject): boolean => {
      const sel = specOf(set).selector as LabelSelector | undefined;
      return !!sel && (Object.keys(sel.matchLabels ?? {}).length > 0 || (sel.matchExpressions ?? []).length > 0) && labelSelectorMatches(sel, o.metadata?.labels ?? {});
    };
    await runWhileLeading(handle.api, config.leaderElection, handle.logger, signal, async (leading) => {
      const controller = new Controller({ name: STATEFULSET_CONTROLLER_NAME, reconciler, workers: config.workers, logger: handle.logger, metrics: handle.metrics });
      controller.watch(sets);
      controller.watch(pods, mapToOwner(SET_KIND, 'apps'));
      // Orphans a set could adopt: members by name that its selector matches.
      controller.watch(pods, (p) => (controllerOf(p) ? [] : setsIn(p).filter((s) => isMemberOf(s, p) && selects(s, p)).map(objectKey)));
      controller.watch(revisions, mapToOwner(SET_KIND, 'apps'));
      controller.watch(revisions, (r) => (controllerOf(r) ? [] : setsIn(r).filter((s) => selects(s, r)).map(objectKey)));
      // Claims concern the set whose templates name them (a stale claim going away lets its pod be created).
      controller.watch(claims, (c) => setsIn(c).filter((s) => isClaimOfSet(nameOf(c), s)).map(objectKey));
      await controller.run(leading);
    });
  },
});
