/**
 * The disruption controller (Kubernetes' `disruption` controller, pkg/controller/disruption):
 * keeps the status of every PodDisruptionBudget (policy/v1) current, which the API server's
 * eviction subresource reads to decide whether a voluntary disruption may proceed.
 *
 * For a budget, its pods are those its `spec.selector` matches in its namespace (in policy/v1 an
 * empty selector matches every pod of the namespace, a missing one none). Then:
 *
 * - `expectedPods` and `desiredHealthy`: with an integer `minAvailable`, the number of pods and
 *   `minAvailable`; otherwise (`maxUnavailable`, or a percentage `minAvailable`) `expectedPods` is
 *   the sum of the scales of the pods' controllers, found through their controller
 *   ownerReferences (ReplicationController, ReplicaSet, the Deployment above a ReplicaSet,
 *   StatefulSet, or any kind serving a `scale` subresource) and read through `.../scale`, and
 *   `desiredHealthy` is `minAvailable` or `expectedPods - maxUnavailable`, percentages rounded up.
 *   Pods without a controller are left out (an `UnmanagedPods` event says so); a pod whose
 *   controller cannot be found fails the sync.
 * - `currentHealthy`: Ready pods that are neither being deleted nor listed in `disruptedPods`.
 * - `disruptedPods`: the eviction subresource records the pods it evicts there; entries whose pod
 *   is gone, is being deleted, or was recorded more than 2 minutes ago are dropped, and the
 *   budget is looked at again when the next entry expires.
 * - `disruptionsAllowed = max(0, currentHealthy - desiredHealthy)` (0 while `expectedPods` is 0),
 *   `observedGeneration`, and the `DisruptionAllowed` condition (`SufficientPods` /
 *   `InsufficientPods`). A sync that fails sets `disruptionsAllowed` to 0 with the reason
 *   `SyncFailed` (failing safe: no eviction is approved on stale numbers) and retries.
 *
 * A second queue resets, after 2 minutes, a `DisruptionTarget` pod condition whose pod was never
 * deleted (an eviction that did not happen), as Kubernetes does.
 *
 * @module
 */
import {
  Controller,
  controllerOf,
  definePlugin,
  EventRecorder,
  isConflict,
  isNotFound,
  keyString,
  labelSelectorMatches,
  mapBySelector,
  objectKey,
  runWhileLeading,
  LEADER_ELECTION_SCHEMA,
  type ApiClient,
  type EventType,
  type Informer,
  type KubeObject,
  type LabelSelector,
  type LeaderElectionConfig,
  type Logger,
  type ObjectKey,
  type OwnerReference,
  type ReconcileResult,
  type Reconciler,
} from '@kubernel/sdk';
import { isPodReady } from './replicaset.js';
import { type Fields, formatTime } from './util.js';

/** The plugin id. */
export const DISRUPTION_CONTROLLER_ID = 'disruption-controller';
/** How long a pod in `disruptedPods` may stay undeleted before it counts again (Kubernetes' DeletionTimeout). */
export const DELETION_TIMEOUT_MS = 2 * 60_000;
/** How long a `DisruptionTarget` condition may stay on a pod never deleted before it is reset. */
export const STALE_POD_DISRUPTION_TIMEOUT_MS = 2 * 60_000;
/** The budget condition this controller keeps. */
export const DISRUPTION_ALLOWED_CONDITION = 'DisruptionAllowed';
export const SUFFICIENT_PODS_REASON = 'SufficientPods';
export const INSUFFICIENT_PODS_REASON = 'InsufficientPods';
export const SYNC_FAILED_REASON = 'SyncFailed';
/** A `DisruptionTarget` reason the kubelet sets; never considered stale. */
const TERMINATION_BY_KUBELET = 'TerminationByKubelet';

/** The plugin's configuration (after defaults). */
export interface DisruptionConfig {
  readonly workers: number;
  readonly leaderElection: LeaderElectionConfig;
}

/** The JSON Schema of {@link DisruptionConfig}. */
export const DISRUPTION_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    workers: { type: 'integer', minimum: 1, maximum: 64, default: 5, description: 'Budgets synced at once.' },
    leaderElection: LEADER_ELECTION_SCHEMA,
  },
} as const;

/** An int-or-string of a budget (`minAvailable`, `maxUnavailable`). */
export type IntOrPercent = number | string;

/** The status fields this controller computes. */
export interface BudgetCounts {
  readonly currentHealthy: number;
  readonly desiredHealthy: number;
  readonly expectedPods: number;
  readonly disruptedPods: Readonly<Record<string, string>>;
}

/** A `metav1.Condition`. */
export interface Condition {
  readonly type: string;
  readonly status: string;
  readonly reason: string;
  readonly message: string;
  readonly lastTransitionTime: string;
  readonly observedGeneration?: number;
}

// ---------------------------------------------------------------------------------------------
// Pure helpers
// ---------------------------------------------------------------------------------------------

/**
 * Kubernetes' `GetScaledValueFromIntOrPercent`: an integer as is, `"N%"` of `total` rounded up
 * (`roundUp`) or down.
 *
 * @throws {Error} for a string that is not a percentage, or a value that is not a number or string.
 */
export function scaledValue(value: IntOrPercent, total: number, roundUp: boolean): number {
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string') {
    const m = /^(-?\d+)%$/.exec(value);
    if (!m) throw new Error(`invalid value for IntOrString: invalid type: string is not a percentage: "${value}"`);
    const scaled = (Number(m[1]) * total) / 100;
    return roundUp ? Math.ceil(scaled) : Math.floor(scaled);
  }
  throw new Error(`invalid value for IntOrString: ${JSON.stringify(value)}`);
}

/**
 * The pod matcher of a budget (policy/v1): a missing selector matches nothing, an empty one every
 * pod of the namespace.
 */
export function budgetSelector(pdb: KubeObject): ((labels: Record<string, string>) => boolean) | undefined {
  const sel = (pdb.spec as Fields | undefined)?.selector as LabelSelector | null | undefined;
  if (sel === undefined || sel === null) return undefined;
  return (labels) => labelSelectorMatches(sel, labels);
}

/** The pods of `namespacePods` a budget selects. */
export function podsForBudget(pdb: KubeObject, namespacePods: readonly KubeObject[]): KubeObject[] {
  const matches = budgetSelector(pdb);
  if (!matches) return [];
  return namespacePods.filter((p) => p.metadata?.namespace === pdb.metadata?.namespace && matches(p.metadata?.labels ?? {}));
}

/** The scale of one controller: its uid and `spec.replicas`. */
export interface ControllerScale {
  readonly uid: string;
  readonly replicas: number;
}

/** Finds the controller of a pod (by its controller reference) and reads its scale; `undefined` when there is none. */
export type ScaleFinder = (ref: OwnerReference, namespace: string) => Promise<ControllerScale | undefined>;

/**
 * Kubernetes' `getExpectedScale`: the sum of the scales of the controllers of `pods` (each counted
 * once), and the names of pods without a controller (left out).
 *
 * @throws {Error} when a pod's controller cannot be found, or from `find`.
 */
export async function expectedScale(pods: readonly KubeObject[], find: ScaleFinder): Promise<{ expectedCount: number; unmanagedPods: string[] }> {
  // Scales by controller uid (a Deployment reached through two ReplicaSets counts once), and lookups by reference.
  const scales = new Map<string, number>();
  const byRef = new Map<string, ControllerScale>();
  const unmanagedPods: string[] = [];
  for (const pod of pods) {
    const ref = controllerOf(pod);
    if (!ref) {
      unmanagedPods.push(String(pod.metadata?.name));
      continue;
    }
    let found = byRef.get(ref.uid);
    if (!found) {
      found = await find(ref, String(pod.metadata?.namespace));
      if (!found) throw new Error(`found no controllers for pod "${pod.metadata?.name}"`);
      byRef.set(ref.uid, found);
    }
    scales.set(found.uid, found.replicas);
  }
  let expectedCount = 0;
  for (const n of scales.values()) expectedCount += n;
  return { expectedCount, unmanagedPods };
}

/**
 * Kubernetes' `getExpectedPodCount`: `expectedCount` and `desiredHealthy` of a budget over `pods`.
 * `maxUnavailable` wins over `minAvailable`; an integer `minAvailable` needs no controller.
 *
 * @throws {Error} as {@link expectedScale} and {@link scaledValue}.
 */
export async function expectedPodCount(pdb: KubeObject, pods: readonly KubeObject[], find: ScaleFinder): Promise<{ expectedCount: number; desiredHealthy: number; unmanagedPods: string[] }> {
  const spec = (pdb.spec ?? {}) as Fields;
  if (spec.maxUnavailable !== undefined && spec.maxUnavailable !== null) {
    const { expectedCount, unmanagedPods } = await expectedScale(pods, find);
    const maxUnavailable = scaledValue(spec.maxUnavailable as IntOrPercent, expectedCount, true);
    return { expectedCount, desiredHealthy: Math.max(0, expectedCount - maxUnavailable), unmanagedPods };
  }
  if (spec.minAvailable !== undefined && spec.minAvailable !== null) {
    if (typeof spec.minAvailable === 'number') return { expectedCount: pods.length, desiredHealthy: spec.minAvailable, unmanagedPods: [] };
    const { expectedCount, unmanagedPods } = await expectedScale(pods, find);
    return { expectedCount, desiredHealthy: scaledValue(spec.minAvailable as IntOrPercent, expectedCount, true), unmanagedPods };
  }
  return { expectedCount: 0, desiredHealthy: 0, unmanagedPods: [] };
}

/**
 * Kubernetes' `buildDisruptedPodMap`: the entries of the budget's `disruptedPods` still to honour
 * at `now` (the pod is selected, not yet being deleted, and was recorded less than
 * {@link DELETION_TIMEOUT_MS} ago), and when the first of them expires (to look again then).
 */
export function buildDisruptedPodMap(pods: readonly KubeObject[], pdb: KubeObject, now: number): { disruptedPods: Record<string, string>; recheckAt?: number; expired: string[] } {
  const recorded = ((pdb.status as Fields | undefined)?.disruptedPods ?? {}) as Record<string, string>;
  const disruptedPods: Record<string, string> = {};
  const expired: string[] = [];
  let recheckAt: number | undefined;
  for (const pod of pods) {
    if (pod.metadata?.deletionTimestamp) continue;
    const name = String(pod.metadata?.name);
    const at = recorded[name];
    if (at === undefined) continue;
    const expectedDeletion = (Date.parse(at) || 0) + DELETION_TIMEOUT_MS;
    if (expectedDeletion < now) {
      expired.push(name);
      continue;
    }
    disruptedPods[name] = at;
    if (recheckAt === undefined || expectedDeletion < recheckAt) recheckAt = expectedDeletion;
  }
  return recheckAt === undefined ? { disruptedPods, expired } : { disruptedPods, recheckAt, expired };
}

/** Kubernetes' `countHealthyPods`: Ready pods neither being deleted nor (recently) disrupted. */
export function countHealthyPods(pods: readonly KubeObject[], disruptedPods: Readonly<Record<string, string>>, now: number): number {
  let healthy = 0;
  for (const pod of pods) {
    if (pod.metadata?.deletionTimestamp) continue;
    const at = disruptedPods[String(pod.metadata?.name)];
    if (at !== undefined && (Date.parse(at) || 0) + DELETION_TIMEOUT_MS > now) continue;
    if (isPodReady(pod)) healthy++;
  }
  return healthy;
}

/** `max(0, currentHealthy - desiredHealthy)`, and 0 while no pod is expected (a budget whose pods are not yet counted is safe). */
export const disruptionsAllowed = (c: Pick<BudgetCounts, 'currentHealthy' | 'desiredHealthy' | 'expectedPods'>): number => (c.expectedPods <= 0 ? 0 : Math.max(0, c.currentHealthy - c.desiredHealthy));

/**
 * `apimeta.SetStatusCondition`: `condition` replaces the one of its type (or is added);
 * `lastTransitionTime` moves to `now` only when the status changes.
 */
export function setCondition(conditions: readonly Condition[], condition: Omit<Condition, 'lastTransitionTime'>, now: number): Condition[] {
  const existing = conditions.find((c) => c.type === condition.type);
  if (!existing) return [...conditions, { ...condition, lastTransitionTime: formatTime(now) }];
  const lastTransitionTime = existing.status === condition.status && existing.lastTransitionTime ? existing.lastTransitionTime : formatTime(now);
  return conditions.map((c) => (c.type === condition.type ? { ...condition, lastTransitionTime } : c));
}

/** The `DisruptionAllowed` condition for a number of allowed disruptions. */
export function disruptionAllowedCondition(allowed: number, observedGeneration: number): Omit<Condition, 'lastTransitionTime'> {
  return allowed > 0
    ? { type: DISRUPTION_ALLOWED_CONDITION, status: 'True', reason: SUFFICIENT_PODS_REASON, message: '', observedGeneration }
    : { type: DISRUPTION_ALLOWED_CONDITION, status: 'False', reason: INSUFFICIENT_PODS_REASON, message: '', observedGeneration };
}

const sameMap = (a: Readonly<Record<string, string>> | undefined, b: Readonly<Record<string, string>> | undefined): boolean => {
  const ka = Object.keys(a ?? {});
  return ka.length === Object.keys(b ?? {}).length && ka.every((k) => (b ?? {})[k] === (a ?? {})[k]);
};

/**
 * The status a budget should have for `counts` at `now`, or `undefined` when its current status
 * already says so (Kubernetes' `updatePdbStatus` with `ConditionsAreUpToDate`): no write then.
 */
export function desiredBudgetStatus(pdb: KubeObject, counts: BudgetCounts, now: number): Fields | undefined {
  const current = (pdb.status ?? {}) as Fields;
  const generation = Number(pdb.metadata?.generation ?? 1);
  const allowed = disruptionsAllowed(counts);
  const conditions = (current.conditions ?? []) as Condition[];
  const cond = conditions.find((c) => c.type === DISRUPTION_ALLOWED_CONDITION);
  const want = disruptionAllowedCondition(allowed, generation);
  const conditionUpToDate = cond !== undefined && cond.status === want.status && cond.reason === want.reason;
  if (
    current.currentHealthy === counts.currentHealthy &&
    current.desiredHealthy === counts.desiredHealthy &&
    current.expectedPods === counts.expectedPods &&
    current.disruptionsAllowed === allowed &&
    sameMap(current.disruptedPods, counts.disruptedPods) &&
    current.observedGeneration === generation &&
    conditionUpToDate
  ) {
    return undefined;
  }
  const status: Fields = {
    currentHealthy: counts.currentHealthy,
    desiredHealthy: counts.desiredHealthy,
    expectedPods: counts.expectedPods,
    disruptionsAllowed: allowed,
    observedGeneration: generation,
    conditions: setCondition(conditions, want, now),
  };
  if (Object.keys(counts.disruptedPods).length > 0) status.disruptedPods = { ...counts.disruptedPods };
  return status;
}

/**
 * Kubernetes' `failSafe`: the budget's status with `disruptionsAllowed` 0 and the
 * `DisruptionAllowed` condition False with reason `SyncFailed` and `message`; `undefined` when it
 * already says exactly that.
 */
export function failSafeStatus(pdb: KubeObject, message: string, now: number): Fields | undefined {
  const current = (pdb.status ?? {}) as Fields;
  const conditions = (current.conditions ?? []) as Condition[];
  const cond = conditions.find((c) => c.type === DISRUPTION_ALLOWED_CONDITION);
  if (current.disruptionsAllowed === 0 && cond?.status === 'False' && cond.reason === SYNC_FAILED_REASON && cond.message === message) return undefined;
  const observedGeneration = current.observedGeneration as number | undefined;
  return {
    currentHealthy: 0,
    desiredHealthy: 0,
    expectedPods: 0,
    ...current,
    disruptionsAllowed: 0,
    conditions: setCondition(conditions, { type: DISRUPTION_ALLOWED_CONDITION, status: 'False', reason: SYNC_FAILED_REASON, message, ...(observedGeneration !== undefined ? { observedGeneration } : {}) }, now),
  };
}

/**
 * How long until a pod's `DisruptionTarget` condition is stale, or `undefined` when it never will
 * be (Kubernetes' `nonTerminatingPodHasStaleDisruptionCondition`): the pod is not being deleted,
 * not terminal, and carries the condition True with a reason other than the kubelet's.
 */
export function staleDisruptionWait(pod: KubeObject, now: number, timeoutMs = STALE_POD_DISRUPTION_TIMEOUT_MS): number | undefined {
  if (pod.metadata?.deletionTimestamp) return undefined;
  const status = (pod.status ?? {}) as Fields;
  if (status.phase === 'Succeeded' || status.phase === 'Failed') return undefined;
  const cond = ((status.conditions ?? []) as Fields[]).find((c) => c?.type === 'DisruptionTarget');
  if (!cond || cond.status !== 'True' || cond.reason === TERMINATION_BY_KUBELET) return undefined;
  const since = Date.parse(String(cond.lastTransitionTime ?? '')) || 0;
  return Math.max(0, timeoutMs - (now - since));
}

// ---------------------------------------------------------------------------------------------
// Finding controllers and their scale
// ---------------------------------------------------------------------------------------------

const groupOf = (apiVersion: string): string => (apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '');
const versionOf = (apiVersion: string): string => (apiVersion.includes('/') ? apiVersion.slice(apiVersion.indexOf('/') + 1) : apiVersion);
const APPS_GROUPS = ['apps', 'extensions'];

/** Built-in workload kinds and where they live (their `scale` subresource is served by Kubernel). */
const KNOWN_WORKLOADS: Record<string, { groups: readonly string[]; base: string; resource: string }> = {
  ReplicationController: { groups: [''], base: '/api/v1', resource: 'replicationcontrollers' },
  ReplicaSet: { groups: APPS_GROUPS, base: '/apis/apps/v1', resource: 'replicasets' },
  Deployment: { groups: APPS_GROUPS, base: '/apis/apps/v1', resource: 'deployments' },
  StatefulSet: { groups: ['apps'], base: '/apis/apps/v1', resource: 'statefulsets' },
};

/** How long the API discovery of a group version is trusted. */
const DISCOVERY_TTL_MS = 5 * 60_000;

/**
 * Finds pods' controllers and their scale (Kubernetes' finders): a ReplicaSet controlled by a
 * Deployment stands for the Deployment; the scale is read through the `scale` subresource; kinds
 * other than the built-in workloads are found through API discovery, and one not serving
 * `scale` is an error.
 */
export class ControllerScaleFinder {
  private readonly discovery = new Map<string, { at: number; resources: Fields[] }>();

  constructor(
    private readonly api: Pick<ApiClient, 'get'>,
    private readonly replicaSets?: Pick<Informer, 'get'>,
  ) {}

  /** The {@link ScaleFinder} of this finder. */
  readonly find: ScaleFinder = async (ref, namespace) => {
    const group = groupOf(ref.apiVersion);
    if (ref.kind === 'ReplicaSet' && APPS_GROUPS.includes(group)) {
      const rs = await this.replicaSet(namespace, ref.name);
      if (rs && rs.metadata?.uid === ref.uid) {
        const owner = controllerOf(rs);
        if (owner && owner.kind === 'Deployment' && APPS_GROUPS.includes(groupOf(owner.apiVersion))) {
          const deployment = await this.scale(`${KNOWN_WORKLOADS.Deployment!.base}/namespaces/${encodeURIComponent(namespace)}/deployments/${encodeURIComponent(owner.name)}/scale`, owner.uid);
          if (deployment) return deployment;
        }
      }
    }
    const path = await this.resourcePath(ref, namespace);
    return this.scale(`${path}/scale`, ref.uid);
  };

  private async replicaSet(namespace: string, name: string): Promise<KubeObject | undefined> {
    const cached = this.replicaSets?.get(`${namespace}/${name}`);
    if (cached) return cached;
    try {
      return await this.api.get(`/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/replicasets/${encodeURIComponent(name)}`);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The scale at `path` if it exists and belongs to `uid`. */
  private async scale(path: string, uid: string): Promise<ControllerScale | undefined> {
    let scale: KubeObject;
    try {
      scale = await this.api.get(path);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    if (scale.metadata?.uid !== uid) return undefined;
    return { uid, replicas: Number((scale.spec as Fields | undefined)?.replicas ?? 0) };
  }

  /** The object path of the controller `ref` names. */
  private async resourcePath(ref: OwnerReference, namespace: string): Promise<string> {
    const group = groupOf(ref.apiVersion);
    const known = KNOWN_WORKLOADS[ref.kind];
    if (known && known.groups.includes(group)) return `${known.base}/namespaces/${encodeURIComponent(namespace)}/${known.resource}/${encodeURIComponent(ref.name)}`;
    const base = group ? `/apis/${group}/${versionOf(ref.apiVersion)}` : `/api/${versionOf(ref.apiVersion)}`;
    const resources = await this.resources(base);
    const resource = resources.find((r) => r.kind === ref.kind && typeof r.name === 'string' && !r.name.includes('/'));
    if (!resource) throw new Error(`no resource of kind ${ref.kind} in ${ref.apiVersion}`);
    if (!resources.some((r) => r.name === `${resource.name}/scale`)) throw new Error(`${resource.name}${group ? `.${group}` : ''} does not implement the scale subresource`);
    return resource.namespaced === false ? `${base}/${resource.name}/${encodeURIComponent(ref.name)}` : `${base}/namespaces/${encodeURIComponent(namespace)}/${resource.name}/${encodeURIComponent(ref.name)}`;
  }

  private async resources(base: string): Promise<Fields[]> {
    const cached = this.discovery.get(base);
    if (cached && Date.now() - cached.at < DISCOVERY_TTL_MS) return cached.resources;
    const list = (await this.api.get(base)) as Fields;
    const resources = (list.resources ?? []) as Fields[];
    this.discovery.set(base, { at: Date.now(), resources });
    return resources;
  }
}

// ---------------------------------------------------------------------------------------------
// Reconcilers
// ---------------------------------------------------------------------------------------------

const budgetPath = (ns: string, name: string): string => `/apis/policy/v1/namespaces/${encodeURIComponent(ns)}/poddisruptionbudgets/${encodeURIComponent(name)}`;
const asBudget = (pdb: KubeObject): KubeObject => ({ ...pdb, apiVersion: 'policy/v1', kind: 'PodDisruptionBudget' });

/** Where a {@link DisruptionReconciler} records events (an {@link EventRecorder} fits). */
export interface BudgetEvents {
  event(object: KubeObject, type: EventType, reason: string, message: string): void;
}

/** What a {@link DisruptionReconciler} works with. */
export interface DisruptionReconcilerOptions {
  readonly api: Pick<ApiClient, 'update'>;
  readonly budgets: Pick<Informer, 'get'>;
  readonly pods: Pick<Informer, 'byIndex'>;
  readonly find: ScaleFinder;
  readonly events?: BudgetEvents;
  readonly logger: Logger;
  /** Milliseconds since the epoch; `Date.now` by default. */
  readonly now?: () => number;
}

/** The budget reconciler: computes and writes one PodDisruptionBudget's status. */
export class DisruptionReconciler implements Reconciler {
  private readonly now: () => number;

  constructor(private readonly options: DisruptionReconcilerOptions) {
    this.now = options.now ?? Date.now;
  }

  async reconcile(key: ObjectKey): Promise<ReconcileResult | void> {
    const pdb = this.options.budgets.get(keyString(key));
    if (!pdb) return;
    try {
      return await this.trySync(pdb);
    } catch (err) {
      // A conflict is a stale cache: retry without failing safe (the budget changed anyway).
      if (isConflict(err)) throw err;
      const message = (err as Error)?.message ?? String(err);
      this.options.logger.warn({ budget: keyString(key), err: message }, 'failed to sync a PodDisruptionBudget: no disruptions allowed until it syncs');
      const status = failSafeStatus(pdb, message, this.now());
      if (status) await this.writeStatus(pdb, status);
      throw err;
    }
  }

  private async trySync(pdb: KubeObject): Promise<ReconcileResult | void> {
    const ns = String(pdb.metadata?.namespace);
    const pods = podsForBudget(pdb, this.options.pods.byIndex('namespace', ns));
    if (pods.length === 0) this.options.events?.event(asBudget(pdb), 'Normal', 'NoPods', 'No matching pods found');
    let expected: Awaited<ReturnType<typeof expectedPodCount>>;
    try {
      expected = await expectedPodCount(pdb, pods, this.options.find);
    } catch (err) {
      this.options.events?.event(asBudget(pdb), 'Warning', 'CalculateExpectedPodCountFailed', `Failed to calculate the number of expected pods: ${(err as Error)?.message ?? String(err)}`);
      throw err;
    }
    if (expected.unmanagedPods.length > 0) {
      this.options.events?.event(
        asBudget(pdb),
        'Warning',
        'UnmanagedPods',
        `Pods selected by this PodDisruptionBudget (selector: ${JSON.stringify((pdb.spec as Fields | undefined)?.selector ?? {})}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set ".spec.minAvailable" field of the PDB to an integer value.`,
      );
    }
    const now = this.now();
    const { disruptedPods, recheckAt, expired } = buildDisruptedPodMap(pods, pdb, now);
    for (const name of expired) this.options.logger.info({ budget: `${ns}/${pdb.metadata?.name}`, pod: name }, 'pod was expected to be deleted but it was not; it counts again');
    const counts: BudgetCounts = { currentHealthy: countHealthyPods(pods, disruptedPods, now), desiredHealthy: expected.desiredHealthy, expectedPods: expected.expectedCount, disruptedPods };
    const status = desiredBudgetStatus(pdb, counts, now);
    if (status) await this.writeStatus(pdb, status);
    if (recheckAt !== undefined) return { requeueAfter: Math.max(1, recheckAt - now) };
  }

  /** Writes the budget's status (compare-and-swap on its resourceVersion); a budget gone meanwhile is left alone. */
  private async writeStatus(pdb: KubeObject, status: Fields): Promise<void> {
    try {
      await this.options.api.update(`${budgetPath(String(pdb.metadata?.namespace), String(pdb.metadata?.name))}/status`, { ...asBudget(pdb), status });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

/**
 * Resets stale `DisruptionTarget` conditions (keyed by pod): a pod that carried the condition for
 * {@link STALE_POD_DISRUPTION_TIMEOUT_MS} without being deleted gets it set to False.
 */
export class StalePodDisruptionReconciler implements Reconciler {
  private readonly now: () => number;

  constructor(
    private readonly api: Pick<ApiClient, 'update'>,
    private readonly pods: Pick<Informer, 'get'>,
    private readonly logger: Logger,
    now?: () => number,
  ) {
    this.now = now ?? Date.now;
  }

  async reconcile(key: ObjectKey): Promise<ReconcileResult | void> {
    const pod = this.pods.get(keyString(key));
    if (!pod) return;
    const now = this.now();
    const wait = staleDisruptionWait(pod, now);
    if (wait === undefined) return;
    if (wait > 0) return { requeueAfter: wait };
    const conditions = (((pod.status as Fields | undefined)?.conditions ?? []) as Fields[]).map((c) => (c?.type === 'DisruptionTarget' ? { type: 'DisruptionTarget', status: 'False', lastTransitionTime: formatTime(now) } : c));
    try {
      await this.api.update(`/api/v1/namespaces/${encodeURIComponent(key.namespace)}/pods/${encodeURIComponent(key.name)}/status`, { ...pod, status: { ...(pod.status as Fields), conditions } });
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    this.logger.info({ pod: keyString(key) }, 'reset a stale DisruptionTarget condition to False');
  }
}

/** The disruption controller plugin. */
export const disruptionControllerPlugin = definePlugin({
  id: DISRUPTION_CONTROLLER_ID,
  kind: 'controller',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'Disruption controller: the status of every PodDisruptionBudget (healthy, desired and expected pods, disruptions allowed, disrupted pods), which the eviction subresource enforces.',
  configSchema: DISRUPTION_CONFIG_SCHEMA,
  async start(handle, config: DisruptionConfig, signal) {
    const budgets = handle.api.informer('/apis/policy/v1/poddisruptionbudgets');
    const pods = handle.api.informer('/api/v1/pods');
    const replicaSets = handle.api.informer('/apis/apps/v1/replicasets');
    budgets.run();
    pods.run();
    replicaSets.run();
    await Promise.all([budgets.waitForSync(signal), pods.waitForSync(signal), replicaSets.waitForSync(signal)]);
    handle.ready();
    const recorder = new EventRecorder({ api: handle.api, component: 'controllermanager', logger: handle.logger, signal });
    await runWhileLeading(handle.api, config.leaderElection, handle.logger, signal, async (leading) => {
      const finder = new ControllerScaleFinder(handle.api, replicaSets);
      const reconciler = new DisruptionReconciler({ api: handle.api, budgets, pods, find: finder.find, events: recorder, logger: handle.logger });
      const controller = new Controller({ name: 'disruption', reconciler, workers: config.workers, logger: handle.logger, metrics: handle.metrics });
      controller.watch(budgets);
      // A pod's changes concern the budgets selecting it (before and after a label change).
      controller.watch(pods, mapBySelector(budgets, budgetSelector));
      const stale = new Controller({ name: 'stale_pod_disruption', reconciler: new StalePodDisruptionReconciler(handle.api, pods, handle.logger), logger: handle.logger, metrics: handle.metrics });
      const checkStale = (p: KubeObject): void => {
        const wait = staleDisruptionWait(p, Date.now());
        if (wait !== undefined) stale.enqueueAfter(objectKey(p), wait);
      };
      const unsubscribe = pods.subscribe({ add: checkStale, update: checkStale });
      try {
        await Promise.all([controller.run(leading), stale.run(leading)]);
      } finally {
        unsubscribe();
      }
    });
  },
});
