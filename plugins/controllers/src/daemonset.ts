/**
 * The DaemonSet controller (Kubernetes 1.32's `daemonset` controller): one pod of the DaemonSet's
 * template on every eligible node.
 *
 * **Eligibility** (Kubernetes' `NodeShouldRunDaemonPod`). A node is eligible when the template's
 * `nodeName` (if any) names it, its `nodeSelector` and required node affinity match the node, and
 * the pod tolerates every `NoSchedule` and `NoExecute` taint of the node. The tolerations are the
 * template's plus those Kubernetes gives every daemon pod: `node.kubernetes.io/not-ready` and
 * `unreachable` (NoExecute, forever), `disk-pressure`, `memory-pressure`, `pid-pressure`,
 * `unschedulable` (NoSchedule), and `network-unavailable` (NoSchedule) for `hostNetwork` pods. A
 * pod already on a node that is no longer eligible only because of a NoSchedule taint keeps running
 * ("should continue running") as long as every NoExecute taint is tolerated.
 *
 * **Pods.** A pod is created per eligible node without one, named `<daemonset>-<random>`, labelled
 * with the current revision's `controller-revision-hash`, with the daemon tolerations and a required
 * node affinity `matchFields metadata.name In [<node>]` replacing the template's required terms
 * (the node was checked against them): the default scheduler binds it, as upstream. The controller
 * never sets `spec.nodeName` itself (only a template that names a node does). Pods are grouped by
 * their target node: `spec.nodeName`, else that matchFields term. On a node that should run the
 * pod, extra pods are deleted (the oldest scheduled one stays), Failed pods are deleted (with a
 * per-node back-off of 1 s doubling to 15 min, so a kubelet rejecting the pod is not fought in a hot
 * loop; the pod is recreated once it is gone) and Succeeded pods are deleted. On a node that should
 * not run it, every pod is deleted. Unscheduled pods whose node no longer exists are deleted; bound
 * pods of a deleted node are left to the pod garbage collector (`pod-gc-controller`), which
 * force-deletes them after its quarantine, as in Kubernetes (they no longer count in the status).
 * Pods being deleted still occupy their node: a replacement is created only once they are gone.
 *
 * **Updates.** Each template is recorded as an `apps/v1` ControllerRevision named
 * `<daemonset>-<hash>` (labels: the template's plus `controller-revision-hash`; `data`: the
 * strategic-merge patch `{"spec":{"template":{..., "$patch":"replace"}}}` that restores it, as
 * upstream, which `kubectl rollout history|undo daemonset/x` read); the current revision is the one
 * whose data matches the template (its number raised above the others when a rollback reuses it;
 * by its hash label when the API server did not keep `data`, see {@link daemonSetRevisionMatches}),
 * and `revisionHistoryLimit` old revisions not used by live pods are kept. A pod is up to date when
 * its `controller-revision-hash` label is the current revision's. `RollingUpdate` (maxUnavailable
 * default 1, maxSurge default 0, percentages of the desired count rounded up; both 0 means
 * maxUnavailable 1) without surge deletes old pods while at most maxUnavailable nodes are
 * unavailable (old unavailable pods at once); with surge it creates new pods next to old ones on up
 * to maxSurge nodes (at once where the old pod is unavailable) and deletes the old pod when the new
 * one is available. `OnDelete` replaces a pod only after someone deletes it.
 *
 * **Status**: desiredNumberScheduled, currentNumberScheduled, numberMisscheduled, numberReady,
 * numberAvailable (ready for minReadySeconds), numberUnavailable, updatedNumberScheduled (each
 * from the oldest pod per node), observedGeneration (raised only by a sync that acted on that
 * generation): what `kubectl rollout status daemonset/x` reads.
 *
 * Expectations (as the ReplicaSet controller's) keep a lagging cache from causing duplicate
 * creations or deletions; at most 250 pods are created or deleted per sync, creations in
 * slow-start batches. Events: SuccessfulCreate, FailedCreate, SuccessfulDelete, FailedDelete,
 * FailedDaemonPod, SucceededDaemonPod, SelectingAll.
 *
 * @module
 */
import {
  Controller,
  EventRecorder,
  controllerOf,
  definePlugin,
  isAlreadyExists,
  isNotFound,
  labelSelectorMatches,
  mapToOwner,
  runWhileLeading,
  ApiStatusError,
  LEADER_ELECTION_SCHEMA,
  type ApiClient,
  type EventMapper,
  type EventType,
  type Informer,
  type KubeObject,
  type LabelSelector,
  type LeaderElectionConfig,
  type Logger,
  type ObjectKey,
  type ReconcileResult,
} from '@kubernel/sdk';
import { resolveIntOrPercent } from './deployment.js';
import {
  TAINT_NODE_DISK_PRESSURE,
  TAINT_NODE_MEMORY_PRESSURE,
  TAINT_NODE_NETWORK_UNAVAILABLE,
  TAINT_NODE_NOT_READY,
  TAINT_NODE_PID_PRESSURE,
  TAINT_NODE_UNREACHABLE,
  TAINT_NODE_UNSCHEDULABLE,
  taintsOf,
  toleratesTaint,
  type Taint,
  type Toleration,
} from './node-lifecycle.js';
import { Expectations, isPodAvailable, isPodReady } from './replicaset.js';
import { type Fields, canonical, canonicalJson, safeHash } from './util.js';

// ---------------------------------------------------------------------------------------------
// Well-known names
// ---------------------------------------------------------------------------------------------

/** The plugin id (and the event source, as Kubernetes' `daemonset-controller`). */
export const DAEMONSET_CONTROLLER_ID = 'daemonset-controller';
/** The label naming the ControllerRevision a pod was made from (Kubernetes' `DefaultDaemonSetUniqueLabelKey`). */
export const CONTROLLER_REVISION_HASH = 'controller-revision-hash';
/** The legacy label carrying the template generation (set when the DaemonSet has the annotation below). */
export const TEMPLATE_GENERATION_LABEL = 'pod-template-generation';
/** The legacy annotation of the template generation (Kubernetes' `DeprecatedTemplateGeneration`). */
export const DEPRECATED_TEMPLATE_GENERATION = 'deprecated.daemonset.template.generation';
/** The field a daemon pod's node affinity names its node by (Kubernetes' `metav1.ObjectNameField`). */
export const OBJECT_NAME_FIELD = 'metadata.name';
/** At most this many pods are created or deleted in one sync (Kubernetes' daemon `BurstReplicas`). */
export const DAEMONSET_BURST_REPLICAS = 250;
/** The first back-off before a Failed daemon pod on the same node is deleted again. */
export const FAILED_POD_BACKOFF_INITIAL_MS = 1_000;
/** The longest such back-off (kube-controller-manager's 15 minutes). */
export const FAILED_POD_BACKOFF_MAX_MS = 15 * 60_000;

const DAEMON_SET = { apiVersion: 'apps/v1', kind: 'DaemonSet' } as const;

const nameOf = (o: KubeObject): string => String(o.metadata?.name ?? '');
const uidOf = (o: KubeObject): string => String((o.metadata as Fields | undefined)?.uid ?? '');
const specOf = (o: KubeObject): Fields => (o.spec ?? {}) as Fields;
const labelsOf = (o: KubeObject): Record<string, string> => o.metadata?.labels ?? {};
const phaseOf = (p: KubeObject): string => String((p.status as Fields | undefined)?.phase ?? '');
const podNodeName = (p: KubeObject): string => String(specOf(p).nodeName ?? '');
const podPath = (ns: string, name?: string): string => `/api/v1/namespaces/${encodeURIComponent(ns)}/pods${name ? `/${encodeURIComponent(name)}` : ''}`;
const dsPath = (ns: string, name: string): string => `/apis/apps/v1/namespaces/${encodeURIComponent(ns)}/daemonsets/${encodeURIComponent(name)}`;
const revisionPath = (ns: string, name?: string): string => `/apis/apps/v1/namespaces/${encodeURIComponent(ns)}/controllerrevisions${name ? `/${encodeURIComponent(name)}` : ''}`;
const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));


// ---------------------------------------------------------------------------------------------
// Tolerations
// ---------------------------------------------------------------------------------------------

/** The tolerations every daemon pod gets (Kubernetes' `AddOrUpdateDaemonPodTolerations`), without the hostNetwork one. */
export const DAEMON_POD_TOLERATIONS: readonly Toleration[] = [
  { key: TAINT_NODE_NOT_READY, operator: 'Exists', effect: 'NoExecute' },
  { key: TAINT_NODE_UNREACHABLE, operator: 'Exists', effect: 'NoExecute' },
  { key: TAINT_NODE_DISK_PRESSURE, operator: 'Exists', effect: 'NoSchedule' },
  { key: TAINT_NODE_MEMORY_PRESSURE, operator: 'Exists', effect: 'NoSchedule' },
  { key: TAINT_NODE_PID_PRESSURE, operator: 'Exists', effect: 'NoSchedule' },
  { key: TAINT_NODE_UNSCHEDULABLE, operator: 'Exists', effect: 'NoSchedule' },
];
/** The toleration `hostNetwork` daemon pods get besides. */
export const HOST_NETWORK_TOLERATION: Toleration = { key: TAINT_NODE_NETWORK_UNAVAILABLE, operator: 'Exists', effect: 'NoSchedule' };

/** Same key, operator, value and effect (Kubernetes' `Toleration.MatchToleration`; tolerationSeconds aside). */
const sameToleration = (a: Toleration, b: Toleration): boolean => (a.key ?? '') === (b.key ?? '') && (a.operator ?? '') === (b.operator ?? '') && (a.value ?? '') === (b.value ?? '') && (a.effect ?? '') === (b.effect ?? '');

/**
 * `tolerations` with `toleration` added, or replacing the ones that match it (same key, operator,
 * value and effect) but differ (Kubernetes' `AddOrUpdateTolerationInPodSpec`).
 */
export function addOrUpdateToleration(tolerations: readonly Toleration[], toleration: Toleration): Toleration[] {
  let replaced = false;
  const out: Toleration[] = [];
  for (const t of tolerations) {
    if (!sameToleration(toleration, t)) {
      out.push(t);
      continue;
    }
    if (canonicalJson(t) === canonicalJson(toleration)) return [...tolerations];
    out.push({ ...toleration });
    replaced = true;
  }
  if (!replaced) out.push({ ...toleration });
  return out;
}

/** The tolerations of a daemon pod made from `podSpec`: its own plus the daemon ones. */
export function daemonPodTolerations(podSpec: Fields | undefined): Toleration[] {
  const own = Array.isArray(podSpec?.tolerations) ? (podSpec.tolerations as Toleration[]).filter((t) => t && typeof t === 'object') : [];
  let out = own;
  for (const t of [...DAEMON_POD_TOLERATIONS, ...(podSpec?.hostNetwork ? [HOST_NETWORK_TOLERATION] : [])]) out = addOrUpdateToleration(out, t);
  return out;
}

/** The first taint with one of `effects` that no toleration tolerates (Kubernetes' `FindMatchingUntoleratedTaint`). */
export function untoleratedTaint(taints: readonly Taint[], tolerations: readonly Toleration[], effects: readonly string[]): Taint | undefined {
  return taints.find((taint) => effects.includes(taint.effect) && !tolerations.some((t) => toleratesTaint(t, taint)));
}

// ---------------------------------------------------------------------------------------------
// Node affinity
// ---------------------------------------------------------------------------------------------

/** A `core/v1` NodeSelectorRequirement. */
export interface NodeSelectorRequirement {
  readonly key: string;
  readonly operator: string;
  readonly values?: readonly string[];
}

/** A `core/v1` NodeSelectorTerm. */
export interface NodeSelectorTerm {
  readonly matchExpressions?: readonly NodeSelectorRequirement[];
  readonly matchFields?: readonly NodeSelectorRequirement[];
}

const INTEGER = /^[+-]?\d+$/;

/** A label requirement against `labels`; `undefined` when the requirement is invalid. */
function labelRequirementMatches(r: NodeSelectorRequirement, labels: Record<string, string>): boolean | undefined {
  const values = Array.isArray(r?.values) ? r.values.map(String) : [];
  const has = Object.prototype.hasOwnProperty.call(labels, r?.key);
  switch (r?.operator) {
    case 'In':
    case 'NotIn':
      if (values.length === 0) return undefined;
      return r.operator === 'In' ? has && values.includes(labels[r.key]!) : !(has && values.includes(labels[r.key]!));
    case 'Exists':
    case 'DoesNotExist':
      if (values.length > 0) return undefined;
      return r.operator === 'Exists' ? has : !has;
    case 'Gt':
    case 'Lt': {
      if (values.length !== 1 || !INTEGER.test(values[0]!)) return undefined;
      if (!has || !INTEGER.test(labels[r.key]!)) return false;
      const label = BigInt(labels[r.key]!);
      const bound = BigInt(values[0]!);
      return r.operator === 'Gt' ? label > bound : label < bound;
    }
    default:
      return undefined;
  }
}

/** A field requirement against the node (only `metadata.name` is a node field); `undefined` when invalid. */
function fieldRequirementMatches(r: NodeSelectorRequirement, node: KubeObject): boolean | undefined {
  const values = Array.isArray(r?.values) ? r.values.map(String) : [];
  if (values.length !== 1) return undefined;
  const fields: Record<string, string> = { [OBJECT_NAME_FIELD]: nameOf(node) };
  const value = Object.prototype.hasOwnProperty.call(fields, r.key) ? fields[r.key] : undefined;
  if (r.operator === 'In') return value === values[0];
  if (r.operator === 'NotIn') return value !== values[0];
  return undefined;
}

/**
 * Whether a NodeSelectorTerm selects `node`: every matchExpression (labels: In, NotIn, Exists,
 * DoesNotExist, Gt, Lt) and every matchField (`metadata.name` In/NotIn, one value) holds. An empty
 * term selects nothing; an invalid one (bad operator or values) selects nothing either (Kubernetes
 * ignores terms it cannot parse).
 */
export function nodeSelectorTermMatches(term: NodeSelectorTerm | undefined, node: KubeObject): boolean {
  const expressions = Array.isArray(term?.matchExpressions) ? term.matchExpressions : [];
  const fieldReqs = Array.isArray(term?.matchFields) ? term.matchFields : [];
  if (expressions.length === 0 && fieldReqs.length === 0) return false;
  const labels = labelsOf(node);
  let ok = true;
  for (const r of expressions) {
    const m = labelRequirementMatches(r, labels);
    if (m === undefined) return false;
    ok &&= m;
  }
  for (const r of fieldReqs) {
    const m = fieldRequirementMatches(r, node);
    if (m === undefined) return false;
    ok &&= m;
  }
  return ok;
}

/**
 * Whether a pod spec's node constraints allow `node` (Kubernetes' `GetRequiredNodeAffinity(pod).Match`):
 * every `nodeSelector` pair is a label of the node, and, when the pod has a required node affinity,
 * one of its terms selects the node (no terms: nothing).
 */
export function podFitsNode(podSpec: Fields | undefined, node: KubeObject): boolean {
  const labels = labelsOf(node);
  for (const [k, v] of Object.entries((podSpec?.nodeSelector ?? {}) as Record<string, string>)) if (labels[k] !== v) return false;
  const required = podSpec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution as { nodeSelectorTerms?: NodeSelectorTerm[] } | undefined;
  if (!required) return true;
  const terms = Array.isArray(required.nodeSelectorTerms) ? required.nodeSelectorTerms : [];
  return terms.some((t) => nodeSelectorTermMatches(t, node));
}

/**
 * The template's affinity with its required node affinity replaced by the single term
 * `matchFields metadata.name In [nodeName]` (Kubernetes' `ReplaceDaemonSetPodNodeNameNodeAffinity`):
 * other affinity (preferred terms, pod affinity) stays as it is.
 */
export function replaceNodeNameAffinity(affinity: Fields | undefined, nodeName: string): Fields {
  const selector = { nodeSelectorTerms: [{ matchFields: [{ key: OBJECT_NAME_FIELD, operator: 'In', values: [nodeName] }] }] };
  const out = structuredClone(affinity ?? {}) as Fields;
  out.nodeAffinity = { ...(out.nodeAffinity ?? {}), requiredDuringSchedulingIgnoredDuringExecution: selector };
  return out;
}

/**
 * The node a daemon pod is for (Kubernetes' `GetTargetNodeName`): `spec.nodeName`, else the value
 * of its required `matchFields metadata.name In [x]` term; `undefined` when it has neither (or
 * names several nodes).
 */
export function targetNodeName(pod: KubeObject): string | undefined {
  const bound = podNodeName(pod);
  if (bound) return bound;
  const terms = specOf(pod).affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  if (!Array.isArray(terms)) return undefined;
  for (const term of terms as NodeSelectorTerm[]) {
    for (const r of Array.isArray(term?.matchFields) ? term.matchFields : []) {
      if (r?.key === OBJECT_NAME_FIELD && r.operator === 'In') return Array.isArray(r.values) && r.values.length === 1 ? String(r.values[0]) : undefined;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Eligibility
// ---------------------------------------------------------------------------------------------

/** What a node means for a DaemonSet (Kubernetes' `NodeShouldRunDaemonPod`). */
export interface NodeDecision {
  /** A daemon pod should be created here if there is none. */
  readonly shouldRun: boolean;
  /** A daemon pod already here may stay. */
  readonly shouldContinueRunning: boolean;
}

/**
 * Whether `ds` should run (and keep running) a pod on `node`: the template's `nodeName`, node
 * selector and required node affinity must allow the node (else neither); then every NoSchedule
 * and NoExecute taint must be tolerated by the daemon pod's tolerations to run, and every NoExecute
 * taint to keep running.
 */
export function nodeShouldRunDaemonPod(node: KubeObject, ds: KubeObject): NodeDecision {
  const podSpec = (specOf(ds).template?.spec ?? {}) as Fields;
  const name = nameOf(node);
  if (podSpec.nodeName && podSpec.nodeName !== name) return { shouldRun: false, shouldContinueRunning: false };
  if (!podFitsNode(podSpec, node)) return { shouldRun: false, shouldContinueRunning: false };
  const taints = taintsOf(node);
  const tolerations = daemonPodTolerations(podSpec);
  if (untoleratedTaint(taints, tolerations, ['NoSchedule', 'NoExecute'])) {
    return { shouldRun: false, shouldContinueRunning: !untoleratedTaint(taints, tolerations, ['NoExecute']) };
  }
  return { shouldRun: true, shouldContinueRunning: true };
}

// ---------------------------------------------------------------------------------------------
// Update strategy
// ---------------------------------------------------------------------------------------------

/** The update strategy with Kubernetes' defaults (RollingUpdate, maxUnavailable 1, maxSurge 0). */
export function updateStrategyOf(ds: KubeObject): { readonly type: string; readonly maxUnavailable: unknown; readonly maxSurge: unknown } {
  const s = (specOf(ds).updateStrategy ?? {}) as Fields;
  const type = String(s.type ?? 'RollingUpdate');
  const ru = (s.rollingUpdate ?? {}) as Fields;
  return { type, maxUnavailable: ru.maxUnavailable ?? 1, maxSurge: ru.maxSurge ?? 0 };
}

/** maxSurge and maxUnavailable out of `desired` pods (percentages round up); both 0 for OnDelete. */
export function surgeAndUnavailableCounts(ds: KubeObject, desired: number): { readonly maxSurge: number; readonly maxUnavailable: number } {
  const s = updateStrategyOf(ds);
  if (s.type !== 'RollingUpdate') return { maxSurge: 0, maxUnavailable: 0 };
  return { maxSurge: Math.max(0, resolveIntOrPercent(s.maxSurge, desired, true)), maxUnavailable: Math.max(0, resolveIntOrPercent(s.maxUnavailable, desired, true)) };
}

/** True when a RollingUpdate may run two pods on a node (maxSurge > 0 out of one; Kubernetes' `AllowsSurge`). */
export const allowsSurge = (ds: KubeObject): boolean => surgeAndUnavailableCounts(ds, 1).maxSurge > 0;

/** The rolling update budget for `desired` pods: as {@link surgeAndUnavailableCounts}, but both 0 means maxUnavailable 1. */
export function rollingUpdateBudget(ds: KubeObject, desired: number): { readonly maxSurge: number; readonly maxUnavailable: number } {
  const counts = surgeAndUnavailableCounts(ds, desired);
  if (desired > 0 && counts.maxSurge === 0 && counts.maxUnavailable === 0) return { maxSurge: 0, maxUnavailable: 1 };
  return counts;
}

// ---------------------------------------------------------------------------------------------
// Pods
// ---------------------------------------------------------------------------------------------

/** True for Succeeded and Failed pods. */
export const isPodTerminal = (p: KubeObject): boolean => ['Succeeded', 'Failed'].includes(phaseOf(p));

/** True when the pod carries the current revision's hash (Kubernetes' `IsPodUpdated`). */
export const isPodUpdated = (pod: KubeObject, hash: string): boolean => hash !== '' && labelsOf(pod)[CONTROLLER_REVISION_HASH] === hash;

/**
 * Orders daemon pods oldest first, as Kubernetes' `podByCreationTimestampAndPhase`: scheduled pods
 * before unscheduled ones, then by creation time, then by name.
 */
export function compareDaemonPods(a: KubeObject, b: KubeObject): number {
  const sa = podNodeName(a) ? 0 : 1;
  const sb = podNodeName(b) ? 0 : 1;
  if (sa !== sb) return sa - sb;
  const ta = Date.parse(String(a.metadata?.creationTimestamp ?? '')) || 0;
  const tb = Date.parse(String(b.metadata?.creationTimestamp ?? '')) || 0;
  if (ta !== tb) return ta - tb;
  return nameOf(a) < nameOf(b) ? -1 : nameOf(a) > nameOf(b) ? 1 : 0;
}

/**
 * Groups a DaemonSet's pods by target node (pods without one are left out). Without
 * `includeDeletedTerminal`, pods both terminal and being deleted are left out too (nothing more to
 * do with them); pods being deleted otherwise still count, so a node is not given a second pod
 * while the first one terminates.
 */
export function groupPodsByNode(pods: readonly KubeObject[], includeDeletedTerminal = false): Map<string, KubeObject[]> {
  const out = new Map<string, KubeObject[]>();
  for (const pod of pods) {
    if (!includeDeletedTerminal && isPodTerminal(pod) && pod.metadata?.deletionTimestamp) continue;
    const node = targetNodeName(pod);
    if (!node) continue;
    let list = out.get(node);
    if (!list) out.set(node, (list = []));
    list.push(pod);
  }
  return out;
}

/** The controller reference a DaemonSet puts on what it owns. */
export const daemonSetOwnerReference = (ds: KubeObject): Fields => ({ ...DAEMON_SET, name: nameOf(ds), uid: uidOf(ds), controller: true, blockOwnerDeletion: true });

/**
 * The pod to create for `ds` on `nodeName` (Kubernetes' `CreatePodTemplate` + `GetPodFromTemplate`):
 * the template's labels (plus `controller-revision-hash`, and `pod-template-generation` when the
 * DaemonSet has the legacy annotation), annotations and finalizers; its spec with the daemon
 * tolerations and the node-name affinity; `generateName` `<ds>-`; the DaemonSet as controller.
 */
export function newDaemonPod(ds: KubeObject, nodeName: string, hash: string): KubeObject {
  const template = structuredClone((specOf(ds).template ?? {}) as Fields);
  const meta = (template.metadata ?? {}) as Fields;
  const spec = (template.spec ?? {}) as Fields;
  const generation = ds.metadata?.annotations?.[DEPRECATED_TEMPLATE_GENERATION];
  const labels: Record<string, string> = { ...(meta.labels ?? {}) };
  if (generation !== undefined && INTEGER.test(generation)) labels[TEMPLATE_GENERATION_LABEL] = generation;
  if (hash) labels[CONTROLLER_REVISION_HASH] = hash;
  spec.tolerations = daemonPodTolerations(spec);
  spec.affinity = replaceNodeNameAffinity(spec.affinity, nodeName);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: `${nameOf(ds)}-`,
      namespace: String(ds.metadata?.namespace ?? ''),
      labels,
      ...(meta.annotations && Object.keys(meta.annotations).length ? { annotations: { ...meta.annotations } } : {}),
      ...(Array.isArray(meta.finalizers) && meta.finalizers.length ? { finalizers: [...meta.finalizers] } : {}),
      ownerReferences: [daemonSetOwnerReference(ds)],
    },
    spec,
  };
}

// ---------------------------------------------------------------------------------------------
// Failed pod back-off
// ---------------------------------------------------------------------------------------------

/**
 * A per-key exponential back-off (client-go's `flowcontrol.Backoff` without jitter): `next` starts
 * a key at the initial delay, or doubles it up to the maximum; an entry untouched for twice the
 * maximum starts over.
 */
export class FailedPodBackoff {
  private readonly entries = new Map<string, { delay: number; last: number }>();

  constructor(
    readonly initialMs = FAILED_POD_BACKOFF_INITIAL_MS,
    readonly maxMs = FAILED_POD_BACKOFF_MAX_MS,
  ) {}

  /** True while less than the key's current delay has passed since its last `next`. */
  inBackoff(key: string, now: number): boolean {
    const e = this.entries.get(key);
    if (!e || now - e.last > 2 * this.maxMs) return false;
    return now - e.last < e.delay;
  }

  /** The key's current delay (0 when it has none). */
  delay(key: string): number {
    return this.entries.get(key)?.delay ?? 0;
  }

  /** Records an attempt at `now`: the delay starts at the initial value or doubles. */
  next(key: string, now: number): void {
    const e = this.entries.get(key);
    const delay = !e || now - e.last > 2 * this.maxMs ? this.initialMs : Math.min(e.delay * 2, this.maxMs);
    this.entries.set(key, { delay, last: now });
  }

  /** Forgets entries untouched for twice the maximum. */
  gc(now: number): void {
    for (const [k, e] of this.entries) if (now - e.last > 2 * this.maxMs) this.entries.delete(k);
  }
}

/** The back-off key of Failed pods of `ds` on `node` (Kubernetes': uid, observed generation, node). */
export const failedPodBackoffKey = (ds: KubeObject, node: string): string => `${uidOf(ds)}/${Number((ds.status as Fields | undefined)?.observedGeneration ?? 0)}/${node}`;

// ---------------------------------------------------------------------------------------------
// Decisions
// ---------------------------------------------------------------------------------------------

/** An event a decision asks for. */
export interface PlannedEvent {
  readonly type: EventType;
  readonly reason: string;
  readonly message: string;
}

/** What the main loop does for a DaemonSet (Kubernetes' `manage`). */
export interface ManagePlan {
  /** Nodes to create a daemon pod on. */
  readonly createOn: string[];
  /** Pods to delete (names). */
  readonly deletePods: string[];
  /** Revisit after this many ms (a Failed pod in back-off). */
  readonly requeueAfterMs?: number;
  readonly events: PlannedEvent[];
}

/**
 * The pods to create and delete for one node (Kubernetes' `podsShouldBeOnNode`): a node that
 * should run the pod and has none gets one; on a node where it may continue running, Failed pods
 * are deleted (unless in back-off) and Succeeded ones too, then without surge all but the oldest
 * running pod go; with surge the oldest pod of the current revision and the oldest older one may
 * both stay, the older one going once it is not ready or the new one is available; a node that
 * should not run the pod loses all of them.
 */
export function podsShouldBeOnNode(node: KubeObject, pods: readonly KubeObject[] | undefined, ds: KubeObject, hash: string, backoff: FailedPodBackoff, now: number): { create: boolean; delete: string[]; requeueAfterMs?: number; events: PlannedEvent[] } {
  const { shouldRun, shouldContinueRunning } = nodeShouldRunDaemonPod(node, ds);
  const name = nameOf(node);
  const out: { create: boolean; delete: string[]; requeueAfterMs?: number; events: PlannedEvent[] } = { create: false, delete: [], events: [] };
  const exists = pods !== undefined && pods.length > 0;
  if (shouldRun && !exists) {
    out.create = true;
    return out;
  }
  if (!exists) return out;
  if (!shouldContinueRunning) {
    for (const pod of pods) if (!pod.metadata?.deletionTimestamp) out.delete.push(nameOf(pod));
    return out;
  }
  const running: KubeObject[] = [];
  for (const pod of pods) {
    if (pod.metadata?.deletionTimestamp) continue;
    const phase = phaseOf(pod);
    if (phase === 'Failed') {
      const key = failedPodBackoffKey(ds, name);
      if (backoff.inBackoff(key, now)) {
        const delay = backoff.delay(key);
        out.requeueAfterMs = Math.min(out.requeueAfterMs ?? Infinity, delay);
        continue;
      }
      backoff.next(key, now);
      out.events.push({ type: 'Warning', reason: 'FailedDaemonPod', message: `Found failed daemon pod ${pod.metadata?.namespace}/${nameOf(pod)} on node ${name}, will try to kill it` });
      out.delete.push(nameOf(pod));
    } else if (phase === 'Succeeded') {
      out.events.push({ type: 'Normal', reason: 'SucceededDaemonPod', message: `Found succeeded daemon pod ${pod.metadata?.namespace}/${nameOf(pod)} on node ${name}, will try to delete it` });
      out.delete.push(nameOf(pod));
    } else {
      running.push(pod);
    }
  }
  const sorted = [...running].sort(compareDaemonPods);
  if (!allowsSurge(ds)) {
    for (const pod of sorted.slice(1)) out.delete.push(nameOf(pod));
    return out;
  }
  if (sorted.length <= 1) {
    if (sorted.length === 0 && shouldRun) out.create = true;
    return out;
  }
  let oldestNew: KubeObject | undefined;
  let oldestOld: KubeObject | undefined;
  for (const pod of sorted) {
    if (labelsOf(pod)[CONTROLLER_REVISION_HASH] === hash) {
      if (!oldestNew) {
        oldestNew = pod;
        continue;
      }
    } else if (!oldestOld) {
      oldestOld = pod;
      continue;
    }
    out.delete.push(nameOf(pod));
  }
  if (oldestNew && oldestOld && (!isPodReady(oldestOld) || isPodAvailable(oldestNew, Number(specOf(ds).minReadySeconds ?? 0), now))) out.delete.push(nameOf(oldestOld));
  return out;
}

/**
 * The main loop's plan for a DaemonSet over all nodes: {@link podsShouldBeOnNode} per node, plus
 * the unscheduled pods whose node no longer exists (Kubernetes' `getUnscheduledPodsWithoutNode`;
 * bound ones are the pod garbage collector's).
 */
export function planManage(ds: KubeObject, nodes: readonly KubeObject[], nodeToPods: ReadonlyMap<string, readonly KubeObject[]>, hash: string, backoff: FailedPodBackoff, now: number): ManagePlan {
  const plan: ManagePlan = { createOn: [], deletePods: [], events: [] };
  let requeue: number | undefined;
  for (const node of nodes) {
    const p = podsShouldBeOnNode(node, nodeToPods.get(nameOf(node)), ds, hash, backoff, now);
    if (p.create) plan.createOn.push(nameOf(node));
    plan.deletePods.push(...p.delete);
    plan.events.push(...p.events);
    if (p.requeueAfterMs !== undefined) requeue = Math.min(requeue ?? Infinity, p.requeueAfterMs);
  }
  const existing = new Set(nodes.map(nameOf));
  for (const [node, pods] of nodeToPods) {
    if (existing.has(node)) continue;
    for (const pod of pods) if (!podNodeName(pod)) plan.deletePods.push(nameOf(pod));
  }
  return requeue === undefined ? plan : { ...plan, requeueAfterMs: requeue };
}

/**
 * The non-deleted pods of a node split by revision (Kubernetes' `findUpdatedPodsOnNode`):
 * `ok` is false when there are two of a kind (the main loop prunes them first).
 */
export function findUpdatedPodsOnNode(pods: readonly KubeObject[], hash: string): { newPod?: KubeObject; oldPod?: KubeObject; ok: boolean } {
  let newPod: KubeObject | undefined;
  let oldPod: KubeObject | undefined;
  for (const pod of pods) {
    if (pod.metadata?.deletionTimestamp) continue;
    if (isPodUpdated(pod, hash)) {
      if (newPod) return { ok: false };
      newPod = pod;
    } else {
      if (oldPod) return { ok: false };
      oldPod = pod;
    }
  }
  return { ...(newPod ? { newPod } : {}), ...(oldPod ? { oldPod } : {}), ok: true };
}

/** What a rolling update step does. */
export interface RollingUpdatePlan {
  /** Old pods to delete (names). */
  readonly deletePods: string[];
  /** Nodes to create a new pod on next to the old one (surge). */
  readonly createOn: string[];
  readonly maxSurge: number;
  readonly maxUnavailable: number;
  readonly desired: number;
}

/**
 * One rolling update step (Kubernetes' `rollingUpdate`). Without surge: nodes whose new pod is not
 * available, that have no pod, or have two, count as unavailable; old unavailable pods are deleted
 * at once (and count); old available pods are deleted while fewer than maxUnavailable nodes are
 * unavailable; the main loop then creates their replacements. With surge: a node whose old pod is
 * unavailable gets a new pod at once, others get one while fewer than maxSurge nodes are surging; an
 * old pod goes once the new one on its node is available; old pods on nodes that should no longer
 * run the pod go only as long as more pods are available than desired. Nodes are taken in name order.
 */
export function planRollingUpdate(ds: KubeObject, nodes: readonly KubeObject[], nodeToPods: ReadonlyMap<string, readonly KubeObject[]>, hash: string, now: number): RollingUpdatePlan {
  const byNode = new Map<string, readonly KubeObject[]>(nodeToPods);
  const nodeByName = new Map(nodes.map((n) => [nameOf(n), n]));
  let desired = 0;
  for (const node of nodes) {
    if (!nodeShouldRunDaemonPod(node, ds).shouldRun) continue;
    desired++;
    if (!byNode.has(nameOf(node))) byNode.set(nameOf(node), []);
  }
  const { maxSurge, maxUnavailable } = rollingUpdateBudget(ds, desired);
  const minReady = Number(specOf(ds).minReadySeconds ?? 0);
  const available = (p: KubeObject): boolean => isPodAvailable(p, minReady, now);
  const names = [...byNode.keys()].sort();
  if (maxSurge === 0) {
    let unavailable = 0;
    const replacements: string[] = [];
    const candidates: string[] = [];
    for (const name of names) {
      const { newPod, oldPod, ok } = findUpdatedPodsOnNode(byNode.get(name)!, hash);
      if (!ok || (!oldPod && !newPod) || (oldPod && newPod)) {
        unavailable++;
      } else if (newPod) {
        if (!available(newPod)) unavailable++;
      } else if (oldPod && !available(oldPod)) {
        replacements.push(nameOf(oldPod));
        unavailable++;
      } else if (oldPod && unavailable < maxUnavailable) {
        candidates.push(nameOf(oldPod));
      }
    }
    const room = Math.min(Math.max(0, maxUnavailable - unavailable), candidates.length);
    return { deletePods: [...replacements, ...candidates.slice(0, room)], createOn: [], maxSurge, maxUnavailable, desired };
  }
  const deletePods: string[] = [];
  const sunset: string[] = [];
  const candidateNodes: string[] = [];
  const allowedNodes: string[] = [];
  let surging = 0;
  let numAvailable = 0;
  for (const name of names) {
    const { newPod, oldPod, ok } = findUpdatedPodsOnNode(byNode.get(name)!, hash);
    if (!ok) {
      surging++;
      continue;
    }
    if (oldPod ? available(oldPod) : newPod ? available(newPod) : false) numAvailable++;
    if (!oldPod) continue;
    if (!newPod) {
      // Pods on nodes that no longer exist are the main loop's business (Kubernetes errors out here).
      const node = nodeByName.get(name);
      if (!node) continue;
      const shouldRun = nodeShouldRunDaemonPod(node, ds).shouldRun;
      if (!available(oldPod)) {
        if (!shouldRun) deletePods.push(nameOf(oldPod));
        else allowedNodes.push(name);
      } else if (!shouldRun) {
        sunset.push(nameOf(oldPod));
      } else if (surging < maxSurge) {
        candidateNodes.push(name);
      }
      continue;
    }
    if (!available(newPod)) {
      surging++;
      continue;
    }
    deletePods.push(nameOf(oldPod));
  }
  // With surge the owner expects full availability: pods on nodes leaving the set go only while more are available than desired.
  const deletable = Math.min(Math.max(0, numAvailable - desired), sunset.length);
  deletePods.push(...sunset.slice(0, deletable));
  const room = Math.min(Math.max(0, maxSurge - surging), candidateNodes.length);
  return { deletePods, createOn: [...allowedNodes, ...candidateNodes.slice(0, room)], maxSurge, maxUnavailable, desired };
}

/** The numbers of a DaemonSet's status. */
export interface DaemonSetCounts {
  readonly desiredNumberScheduled: number;
  readonly currentNumberScheduled: number;
  readonly numberMisscheduled: number;
  readonly numberReady: number;
  readonly updatedNumberScheduled: number;
  readonly numberAvailable: number;
  readonly numberUnavailable: number;
}

/**
 * The status numbers (Kubernetes' `updateDaemonSetStatus`): per node that should run the pod it is
 * desired, current when it has a pod, and the oldest pod decides ready, available and updated; a
 * node that should not run it but has a pod is misscheduled.
 */
export function daemonSetCounts(ds: KubeObject, nodes: readonly KubeObject[], nodeToPods: ReadonlyMap<string, readonly KubeObject[]>, hash: string, now: number): DaemonSetCounts {
  let desired = 0;
  let current = 0;
  let misscheduled = 0;
  let ready = 0;
  let updated = 0;
  let available = 0;
  const minReady = Number(specOf(ds).minReadySeconds ?? 0);
  for (const node of nodes) {
    const { shouldRun } = nodeShouldRunDaemonPod(node, ds);
    const pods = nodeToPods.get(nameOf(node)) ?? [];
    if (!shouldRun) {
      if (pods.length > 0) misscheduled++;
      continue;
    }
    desired++;
    if (pods.length === 0) continue;
    current++;
    const pod = [...pods].sort(compareDaemonPods)[0]!;
    if (isPodReady(pod)) {
      ready++;
      if (isPodAvailable(pod, minReady, now)) available++;
    }
    if (isPodUpdated(pod, hash)) updated++;
  }
  return { desiredNumberScheduled: desired, currentNumberScheduled: current, numberMisscheduled: misscheduled, numberReady: ready, updatedNumberScheduled: updated, numberAvailable: available, numberUnavailable: desired - available };
}

/**
 * The status object to write: the counts (`updatedNumberScheduled`, `numberAvailable`,
 * `numberUnavailable` left out when 0, as Kubernetes serialises them), `observedGeneration` raised
 * to the DaemonSet's generation when `observe`, `collisionCount` and `conditions` kept.
 */
export function daemonSetStatus(ds: KubeObject, counts: DaemonSetCounts, observe: boolean): Fields {
  const previous = (ds.status ?? {}) as Fields;
  const observed = observe ? Number(ds.metadata?.generation ?? 1) : previous.observedGeneration;
  const status: Fields = {
    currentNumberScheduled: counts.currentNumberScheduled,
    numberMisscheduled: counts.numberMisscheduled,
    desiredNumberScheduled: counts.desiredNumberScheduled,
    numberReady: counts.numberReady,
  };
  if (observed) status.observedGeneration = observed;
  if (counts.updatedNumberScheduled) status.updatedNumberScheduled = counts.updatedNumberScheduled;
  if (counts.numberAvailable) status.numberAvailable = counts.numberAvailable;
  if (counts.numberUnavailable) status.numberUnavailable = counts.numberUnavailable;
  if (previous.collisionCount !== undefined) status.collisionCount = previous.collisionCount;
  if (Array.isArray(previous.conditions) && previous.conditions.length) status.conditions = previous.conditions;
  return status;
}

/** True when the status must be written (Kubernetes' check: any count differs, or the generation is not yet observed). */
export function statusNeedsUpdate(ds: KubeObject, counts: DaemonSetCounts, observe: boolean): boolean {
  const st = (ds.status ?? {}) as Fields;
  const differs = (Object.keys(counts) as Array<keyof DaemonSetCounts>).some((k) => Number(st[k] ?? 0) !== counts[k]);
  return differs || (observe && Number(st.observedGeneration ?? 0) < Number(ds.metadata?.generation ?? 1));
}

// ---------------------------------------------------------------------------------------------
// Revisions
// ---------------------------------------------------------------------------------------------

/**
 * The hash of a template and collision count: FNV-1a (32 bit) of the template's canonical JSON
 * (and the count, when not 0), its decimal digits mapped through Kubernetes' safe alphabet.
 * (Kubernetes hashes its Go structure, so the values differ from kube-controller-manager's; their
 * shape and use are the same.)
 */
export function daemonSetHash(template: Fields | undefined, collisionCount = 0): string {
  return safeHash(canonicalJson(template ?? {}) + (collisionCount ? String(collisionCount) : ''));
}

/** `prefix-hash`, the prefix cut to 223 characters (Kubernetes' `ControllerRevisionName`). */
export const controllerRevisionName = (prefix: string, hash: string): string => `${prefix.length > 223 ? prefix.slice(0, 223) : prefix}-${hash}`;

/**
 * A ControllerRevision's `data` for a DaemonSet (Kubernetes' `getPatch`): the strategic-merge patch
 * `{"spec":{"template":{..., "$patch":"replace"}}}` that restores its template (keys sorted).
 */
export function daemonSetRevisionData(ds: KubeObject): Fields {
  return canonical({ spec: { template: { ...structuredClone((specOf(ds).template ?? {}) as Fields), $patch: 'replace' } } }) as Fields;
}

/**
 * True when the revision records the DaemonSet's current template (Kubernetes' `Match`: its `data`
 * equals {@link daemonSetRevisionData}). A revision whose `data` came back empty (an API server
 * that does not keep `runtime.RawExtension` content: Kubernel's prunes it to `{}` at the time of
 * writing) is matched by its hash label instead: the template's hash under any collision count
 * up to the DaemonSet's.
 */
export function daemonSetRevisionMatches(ds: KubeObject, revision: KubeObject): boolean {
  const data = revision.data;
  if (data && typeof data === 'object' && Object.keys(data).length > 0) return canonicalJson(daemonSetRevisionData(ds)) === canonicalJson(data);
  const label = labelsOf(revision)[CONTROLLER_REVISION_HASH];
  const template = specOf(ds).template as Fields | undefined;
  const collisions = Math.max(0, Math.min(1000, Number((ds.status as Fields | undefined)?.collisionCount ?? 0) || 0));
  for (let i = 0; i <= collisions; i++) if (label === daemonSetHash(template, i)) return true;
  return false;
}

const revisionNumber = (r: KubeObject): number => Number((r as Fields).revision ?? 0) || 0;

/** The highest revision number (0 for none). */
export const maxRevision = (revisions: readonly KubeObject[]): number => revisions.reduce((m, r) => Math.max(m, revisionNumber(r)), 0);

/**
 * The old revisions to delete (Kubernetes' `cleanupHistory`): beyond `limit`, oldest first,
 * never one whose hash a live pod carries.
 */
export function daemonSetRevisionsToDelete(old: readonly KubeObject[], limit: number, liveHashes: ReadonlySet<string>): string[] {
  let toKill = old.length - Math.max(0, limit);
  const out: string[] = [];
  for (const r of [...old].sort((a, b) => revisionNumber(a) - revisionNumber(b))) {
    if (toKill <= 0) break;
    if (liveHashes.has(labelsOf(r)[CONTROLLER_REVISION_HASH] ?? '')) continue;
    out.push(nameOf(r));
    toKill--;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The reconciler
// ---------------------------------------------------------------------------------------------

const isEmptySelector = (s: LabelSelector | undefined): boolean => !s || (Object.keys(s.matchLabels ?? {}).length === 0 && (s.matchExpressions ?? []).length === 0);

/** True when an API error says the namespace is being deleted (creations there are pointless). */
function namespaceTerminating(err: unknown): boolean {
  if (!(err instanceof ApiStatusError)) return false;
  const causes = ((err.status as Fields | undefined)?.details?.causes ?? []) as Fields[];
  return causes.some((c) => c?.reason === 'NamespaceTerminating' || c?.type === 'NamespaceTerminating');
}

/** The DaemonSet reconciler. */
export class DaemonSetReconciler {
  readonly expectations = new Expectations();
  readonly backoff = new FailedPodBackoff();
  private lastGc = Date.now();

  constructor(
    private readonly api: ApiClient,
    private readonly daemonSets: Informer,
    private readonly pods: Informer,
    private readonly nodes: Informer,
    private readonly revisions: Informer,
    private readonly log: Logger,
    private readonly recorder?: EventRecorder,
    private readonly now: () => number = Date.now,
  ) {}

  async reconcile(key: ObjectKey): Promise<ReconcileResult | void> {
    const k = `${key.namespace}/${key.name}`;
    const cached = this.daemonSets.get(k);
    if (!cached) {
      this.expectations.forget(k);
      return;
    }
    const ds: KubeObject = { ...cached, ...DAEMON_SET };
    const selector = specOf(ds).selector as LabelSelector | undefined;
    if (isEmptySelector(selector)) {
      this.event(ds, 'Warning', 'SelectingAll', 'This daemon set is selecting all pods. A non-empty selector is required.');
      return;
    }
    // Being deleted: what it owns may be going too; its status cannot be computed reliably.
    if (ds.metadata?.deletionTimestamp) return;
    const nodes = this.nodes.list();
    const { cur, old } = await this.constructHistory(ds, selector!);
    const hash = labelsOf(cur)[CONTROLLER_REVISION_HASH] ?? '';
    const claimed = await this.claimPods(ds, selector!);
    const now = this.now();
    if (now - this.lastGc > 60_000) {
      this.backoff.gc(now);
      this.lastGc = now;
    }
    const satisfied = this.expectations.satisfied(k);
    let requeue: number | undefined;
    let failure: unknown;
    if (satisfied) {
      try {
        requeue = await this.manage(ds, k, nodes, claimed, hash, now);
        if (this.expectations.satisfied(k) && updateStrategyOf(ds).type === 'RollingUpdate') {
          const plan = planRollingUpdate(ds, nodes, groupPodsByNode(claimed), hash, now);
          await this.syncNodes(ds, k, plan.deletePods, plan.createOn, hash);
        }
        await this.cleanupHistory(ds, old, claimed);
      } catch (err) {
        failure = err;
      }
    }
    try {
      const statusRequeue = await this.updateStatus(ds, nodes, claimed, hash, satisfied, now);
      if (statusRequeue !== undefined) requeue = Math.min(requeue ?? Infinity, statusRequeue);
    } catch (err) {
      if (failure) this.log.warn({ daemonSet: k, err: errorText(err) }, 'could not update daemon set status');
      else failure = err;
    }
    if (failure) throw failure;
    return requeue !== undefined ? { requeueAfter: Math.max(1, requeue) } : undefined;
  }

  private event(ds: KubeObject, type: EventType, reason: string, message: string): void {
    this.recorder?.event(ds, type, reason, message);
  }

  // --- claiming -------------------------------------------------------------------------------

  /** The DaemonSet's pods: owned ones that still match, and adopted matching orphans; owned ones that stopped matching are released. */
  private async claimPods(ds: KubeObject, selector: LabelSelector): Promise<KubeObject[]> {
    const ns = String(ds.metadata?.namespace);
    return this.claim(ds, selector, this.pods.byIndex('namespace', ns), (name) => podPath(ns, name));
  }

  private async claim(ds: KubeObject, selector: LabelSelector, objects: readonly KubeObject[], path: (name: string) => string): Promise<KubeObject[]> {
    const uid = uidOf(ds);
    const out: KubeObject[] = [];
    for (const o of objects) {
      const ref = controllerOf(o);
      if (ref && ref.uid !== uid) continue;
      const matches = labelSelectorMatches(selector, labelsOf(o));
      const refs = ((o.metadata as Fields | undefined)?.ownerReferences ?? []) as Fields[];
      if (ref) {
        if (matches) out.push(o);
        else if (!o.metadata?.deletionTimestamp) await this.patchOwners(path(nameOf(o)), o, refs.filter((r) => r.uid !== uid));
        continue;
      }
      if (!matches || o.metadata?.deletionTimestamp) continue;
      const adopted = await this.patchOwners(path(nameOf(o)), o, [...refs, daemonSetOwnerReference(ds)]);
      if (adopted) out.push(adopted);
    }
    return out;
  }

  private async patchOwners(path: string, o: KubeObject, refs: Fields[]): Promise<KubeObject | undefined> {
    try {
      return await this.api.patch(path, { metadata: { ownerReferences: refs.length ? refs : null, resourceVersion: o.metadata?.resourceVersion } });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  // --- history --------------------------------------------------------------------------------

  /** The current revision (created, or renumbered above the others) and the old ones (Kubernetes' `constructHistory`). */
  private async constructHistory(ds: KubeObject, selector: LabelSelector): Promise<{ cur: KubeObject; old: KubeObject[] }> {
    const ns = String(ds.metadata?.namespace);
    const histories = await this.claim(ds, selector, this.revisions.byIndex('namespace', ns), (name) => revisionPath(ns, name));
    const current: KubeObject[] = [];
    const old: KubeObject[] = [];
    for (let h of histories) {
      if (labelsOf(h)[CONTROLLER_REVISION_HASH] === undefined) {
        h = await this.api.patch(revisionPath(ns, nameOf(h)), { metadata: { labels: { [CONTROLLER_REVISION_HASH]: nameOf(h) } } });
      }
      (daemonSetRevisionMatches(ds, h) ? current : old).push(h);
    }
    const next = maxRevision(old) + 1;
    if (current.length === 0) return { cur: await this.snapshot(ds, next), old };
    const cur = await this.dedupCurrent(ds, current);
    if (revisionNumber(cur) < next) {
      const renumbered = await this.api.patch(revisionPath(ns, nameOf(cur)), { revision: next });
      return { cur: renumbered, old };
    }
    return { cur, old };
  }

  /** Keeps the highest-numbered of several revisions of the current template; pods of the others are relabelled to it. */
  private async dedupCurrent(ds: KubeObject, current: KubeObject[]): Promise<KubeObject> {
    if (current.length === 1) return current[0]!;
    const keep = current.reduce((a, b) => (revisionNumber(b) >= revisionNumber(a) ? b : a));
    const keepHash = labelsOf(keep)[CONTROLLER_REVISION_HASH]!;
    const ns = String(ds.metadata?.namespace);
    const dropped = current.filter((r) => r !== keep);
    const droppedHashes = new Set(dropped.map((r) => labelsOf(r)[CONTROLLER_REVISION_HASH]));
    for (const pod of this.pods.byIndex('namespace', ns)) {
      if (controllerOf(pod)?.uid !== uidOf(ds) || !droppedHashes.has(labelsOf(pod)[CONTROLLER_REVISION_HASH])) continue;
      try {
        await this.api.patch(podPath(ns, nameOf(pod)), { metadata: { labels: { [CONTROLLER_REVISION_HASH]: keepHash } } });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    for (const r of dropped) {
      try {
        await this.api.delete(revisionPath(ns, nameOf(r)));
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return keep;
  }

  /** Records the current template as revision `revision` (Kubernetes' `snapshot`), handling hash collisions. */
  private async snapshot(ds: KubeObject, revision: number): Promise<KubeObject> {
    const ns = String(ds.metadata?.namespace);
    const template = (specOf(ds).template ?? {}) as Fields;
    const collisionCount = (ds.status as Fields | undefined)?.collisionCount as number | undefined;
    const hash = daemonSetHash(template, collisionCount ?? 0);
    const name = controllerRevisionName(nameOf(ds), hash);
    const history: KubeObject = {
      apiVersion: 'apps/v1',
      kind: 'ControllerRevision',
      metadata: {
        name,
        namespace: ns,
        labels: { ...((template.metadata?.labels ?? {}) as Record<string, string>), [CONTROLLER_REVISION_HASH]: hash },
        ...(ds.metadata?.annotations && Object.keys(ds.metadata.annotations).length ? { annotations: { ...ds.metadata.annotations } } : {}),
        ownerReferences: [daemonSetOwnerReference(ds)],
      },
      data: daemonSetRevisionData(ds),
      revision,
    };
    try {
      const created = await this.api.create(revisionPath(ns), history);
      this.log.info({ daemonSet: `${ns}/${nameOf(ds)}`, revision: name, number: revision }, 'recorded a new revision');
      return created;
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      const existing = await this.api.get(revisionPath(ns, name));
      if (daemonSetRevisionMatches(ds, existing)) return existing;
      // Another revision has this name: count the collision so the next hash differs.
      const fresh = await this.api.get(dsPath(ns, nameOf(ds)));
      const freshCount = (fresh.status as Fields | undefined)?.collisionCount as number | undefined;
      if (freshCount !== collisionCount) throw new Error(`stale collision count ${collisionCount ?? 0} of daemon set ${ns}/${nameOf(ds)} (now ${freshCount ?? 0}); will retry`);
      await this.api.patch(`${dsPath(ns, nameOf(ds))}/status`, { status: { collisionCount: (freshCount ?? 0) + 1 } });
      throw new Error(`hash collision for controller revision ${name}; collisionCount is now ${(freshCount ?? 0) + 1}`);
    }
  }

  /** Deletes old revisions beyond revisionHistoryLimit that no live pod uses. */
  private async cleanupHistory(ds: KubeObject, old: KubeObject[], claimed: readonly KubeObject[]): Promise<void> {
    const limit = Number(specOf(ds).revisionHistoryLimit ?? 10);
    const live = new Set<string>();
    for (const pods of groupPodsByNode(claimed, true).values()) for (const p of pods) if (labelsOf(p)[CONTROLLER_REVISION_HASH]) live.add(labelsOf(p)[CONTROLLER_REVISION_HASH]!);
    const ns = String(ds.metadata?.namespace);
    for (const name of daemonSetRevisionsToDelete(old, limit, live)) {
      try {
        await this.api.delete(revisionPath(ns, name));
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
  }

  // --- pods -----------------------------------------------------------------------------------

  /** The main loop: the pods {@link planManage} creates and deletes. */
  private async manage(ds: KubeObject, key: string, nodes: readonly KubeObject[], claimed: readonly KubeObject[], hash: string, now: number): Promise<number | undefined> {
    const plan = planManage(ds, nodes, groupPodsByNode(claimed), hash, this.backoff, now);
    for (const e of plan.events) this.event(ds, e.type, e.reason, e.message);
    await this.syncNodes(ds, key, plan.deletePods, plan.createOn, hash);
    return plan.requeueAfterMs;
  }

  /**
   * Deletes `deletePods` and creates a pod on each of `createOn` (Kubernetes' `syncNodes`): at most
   * {@link DAEMONSET_BURST_REPLICAS} of each, creations in batches of 1, 2, 4, ... stopping at the
   * first failing batch; expectations set first. Throws the first failure once all are done.
   */
  private async syncNodes(ds: KubeObject, key: string, deletePods: readonly string[], createOn: readonly string[], hash: string): Promise<void> {
    const ns = String(ds.metadata?.namespace);
    const creates = createOn.slice(0, DAEMONSET_BURST_REPLICAS);
    const deletes = [...new Set(deletePods)].slice(0, DAEMONSET_BURST_REPLICAS);
    if (creates.length === 0 && deletes.length === 0) return;
    const podKeys = deletes.map((n) => `${ns}/${n}`);
    this.expectations.expect(key, creates.length, podKeys);
    const errors: unknown[] = [];
    let done = 0;
    for (let batch = 1; done < creates.length; batch *= 2) {
      const slice = creates.slice(done, done + batch);
      const results = await Promise.allSettled(slice.map((node) => this.api.create(podPath(ns), newDaemonPod(ds, node, hash))));
      done += slice.length;
      let failed = false;
      results.forEach((r, i) => {
        if (r.status === 'fulfilled') {
          this.event(ds, 'Normal', 'SuccessfulCreate', `Created pod: ${nameOf(r.value)}`);
          return;
        }
        this.expectations.creationObserved(key);
        if (namespaceTerminating(r.reason)) return;
        failed = true;
        errors.push(r.reason);
        this.event(ds, 'Warning', 'FailedCreate', `Error creating: ${errorText(r.reason)}`);
        this.log.warn({ daemonSet: key, node: slice[i], err: errorText(r.reason) }, 'daemon pod creation failed');
      });
      if (failed) {
        // The rest of this sync's creations will not happen: stop expecting them.
        for (let i = done; i < creates.length; i++) this.expectations.creationObserved(key);
        break;
      }
    }
    await Promise.all(
      deletes.map(async (name, i) => {
        try {
          await this.api.delete(podPath(ns, name));
          this.event(ds, 'Normal', 'SuccessfulDelete', `Deleted pod: ${name}`);
        } catch (err) {
          this.expectations.deletionObserved(key, podKeys[i]!);
          if (isNotFound(err)) return;
          errors.push(err);
          this.event(ds, 'Warning', 'FailedDelete', `Error deleting: ${errorText(err)}`);
        }
      }),
    );
    if (errors.length) throw errors[0];
  }

  // --- status ---------------------------------------------------------------------------------

  /** Writes the status when it changed; asks for a revisit while ready pods are not yet available. */
  private async updateStatus(ds: KubeObject, nodes: readonly KubeObject[], claimed: readonly KubeObject[], hash: string, observe: boolean, now: number): Promise<number | undefined> {
    const counts = daemonSetCounts(ds, nodes, groupPodsByNode(claimed), hash, now);
    if (statusNeedsUpdate(ds, counts, observe)) {
      const ns = String(ds.metadata?.namespace);
      const path = `${dsPath(ns, nameOf(ds))}/status`;
      try {
        await this.api.update(path, { ...ds, status: daemonSetStatus(ds, counts, observe) });
      } catch (err) {
        if (isNotFound(err)) return undefined;
        // The cache was stale: once more on a fresh read (Kubernetes' StatusUpdateRetries = 1).
        const fresh = { ...(await this.api.get(dsPath(ns, nameOf(ds)))), ...DAEMON_SET };
        if (uidOf(fresh) !== uidOf(ds)) return undefined;
        await this.api.update(path, { ...fresh, status: daemonSetStatus({ ...fresh, metadata: { ...fresh.metadata, generation: ds.metadata?.generation } }, counts, observe) });
      }
    }
    const minReady = Number(specOf(ds).minReadySeconds ?? 0);
    return minReady > 0 && counts.numberReady !== counts.numberAvailable ? minReady * 1000 : undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// The plugin
// ---------------------------------------------------------------------------------------------

/** The plugin's configuration. */
export interface DaemonSetControllerConfig {
  /** Concurrent syncs (Kubernetes' `--concurrent-daemonset-syncs`, default 2). */
  readonly workers: number;
  readonly leaderElection: LeaderElectionConfig;
}

const keyOfObject = (o: KubeObject): ObjectKey => ({ namespace: String(o.metadata?.namespace ?? ''), name: nameOf(o) });

/** Maps an orphan (no controller) to the DaemonSets in its namespace whose selector matches it. */
function orphanToDaemonSets(daemonSets: Informer): EventMapper {
  return (o) => {
    if (controllerOf(o)) return [];
    return daemonSets.byIndex('namespace', String(o.metadata?.namespace ?? '')).filter((ds) => {
      const sel = specOf(ds).selector as LabelSelector | undefined;
      return !isEmptySelector(sel) && labelSelectorMatches(sel!, labelsOf(o));
    }).map(keyOfObject);
  };
}

/** The DaemonSet controller plugin. */
export const daemonSetControllerPlugin = definePlugin({
  id: DAEMONSET_CONTROLLER_ID,
  kind: 'controller',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'DaemonSet controller: one pod per eligible node (node selector, required node affinity, taints and tolerations), RollingUpdate (maxUnavailable, maxSurge) and OnDelete over ControllerRevisions, status for kubectl rollout status.',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      workers: { type: 'integer', minimum: 1, maximum: 64, default: 2, description: 'Concurrent syncs (Kubernetes --concurrent-daemonset-syncs).' },
      leaderElection: LEADER_ELECTION_SCHEMA,
    },
  },
  async start(handle, config: DaemonSetControllerConfig, signal) {
    const daemonSets = handle.api.informer('/apis/apps/v1/daemonsets');
    const pods = handle.api.informer('/api/v1/pods');
    const nodes = handle.api.informer('/api/v1/nodes');
    const revisions = handle.api.informer('/apis/apps/v1/controllerrevisions');
    const recorder = new EventRecorder({ api: handle.api, component: DAEMONSET_CONTROLLER_ID, logger: handle.logger, signal });
    const reconciler = new DaemonSetReconciler(handle.api, daemonSets, pods, nodes, revisions, handle.logger, recorder);
    const ownerKey = (p: KubeObject): string | undefined => {
      const ref = controllerOf(p);
      return ref && ref.kind === 'DaemonSet' ? `${p.metadata?.namespace}/${ref.name}` : undefined;
    };
    const podKey = (p: KubeObject): string => `${p.metadata?.namespace}/${nameOf(p)}`;
    // Expectations are met by what the cache sees; a pod marked for deletion counts as deleted.
    const unsubscribe = pods.subscribe({
      add: (p) => {
        const k = ownerKey(p);
        if (!k) return;
        if (p.metadata?.deletionTimestamp) reconciler.expectations.deletionObserved(k, podKey(p));
        else reconciler.expectations.creationObserved(k);
      },
      update: (p, old) => {
        const k = ownerKey(p);
        if (k && p.metadata?.deletionTimestamp && !old.metadata?.deletionTimestamp) reconciler.expectations.deletionObserved(k, podKey(p));
      },
      delete: (p) => {
        const k = ownerKey(p);
        if (k) reconciler.expectations.deletionObserved(k, podKey(p));
      },
    });
    for (const i of [daemonSets, pods, nodes, revisions]) i.run();
    await Promise.all([daemonSets, pods, nodes, revisions].map((i) => i.waitForSync(signal)));
    handle.ready();
    await runWhileLeading(handle.api, config.leaderElection, handle.logger, signal, async (leading) => {
      const controller = new Controller({ name: DAEMONSET_CONTROLLER_ID, reconciler, workers: config.workers, logger: handle.logger, metrics: handle.metrics });
      controller.watch(daemonSets);
      controller.watch(pods, mapToOwner('DaemonSet', 'apps'));
      controller.watch(pods, orphanToDaemonSets(daemonSets));
      controller.watch(revisions, mapToOwner('DaemonSet', 'apps'));
      controller.watch(revisions, orphanToDaemonSets(daemonSets));
      // Nodes: a DaemonSet is revisited when a node's meaning for it changes, and when a node goes.
      const enqueueIf = (test: (ds: KubeObject) => boolean): void => {
        for (const ds of daemonSets.list()) if (test(ds)) controller.enqueue(keyOfObject(ds));
      };
      const unsubscribeNodes = nodes.subscribe({
        add: (n) => enqueueIf((ds) => nodeShouldRunDaemonPod(n, ds).shouldRun),
        update: (n, old) =>
          enqueueIf((ds) => {
            const a = nodeShouldRunDaemonPod(old, ds);
            const b = nodeShouldRunDaemonPod(n, ds);
            return a.shouldRun !== b.shouldRun || a.shouldContinueRunning !== b.shouldContinueRunning;
          }),
        delete: () => enqueueIf(() => true),
      });
      try {
        await controller.run(leading);
      } finally {
        unsubscribeNodes();
      }
    });
    unsubscribe();
  },
});
