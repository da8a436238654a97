/**
 * The Deployment controller: a Deployment owns one ReplicaSet per pod template (named
 * `<deployment>-<pod-template-hash>`); a template change creates a new ReplicaSet and moves
 * replicas to it by the strategy (RollingUpdate within maxSurge/maxUnavailable, or Recreate),
 * keeping `revisionHistoryLimit` old ReplicaSets for `kubectl rollout undo`, with the Progressing
 * and Available conditions `kubectl rollout status` reads.
 *
 * @module
 */
import {
  Controller,
  controllerOf,
  definePlugin,
  isAlreadyExists,
  isNotFound,
  labelSelectorMatches,
  mapToOwner,
  runWhileLeading,
  LEADER_ELECTION_SCHEMA,
  type ApiClient,
  type LeaderElectionConfig,
  type Informer,
  type KubeObject,
  type LabelSelector,
  type Logger,
  type ObjectKey,
  type ReconcileResult,
} from '@kubernel/sdk';
import { isActivePod } from './replicaset.js';
import { type Fields, canonicalJson, formatTime, safeHash } from './util.js';

export const REVISION = 'deployment.kubernetes.io/revision';
export const REVISION_HISTORY = 'deployment.kubernetes.io/revision-history';
export const DESIRED_REPLICAS = 'deployment.kubernetes.io/desired-replicas';
export const MAX_REPLICAS = 'deployment.kubernetes.io/max-replicas';
export const CHANGE_CAUSE = 'kubernetes.io/change-cause';
export const TEMPLATE_HASH = 'pod-template-hash';

/** A template without the pod-template-hash label (what the Deployment's template is compared with). */
export function withoutHash(template: Fields | undefined): Fields {
  const t = structuredClone(template ?? {}) as Fields;
  if (t.metadata?.labels) {
    delete t.metadata.labels[TEMPLATE_HASH];
    if (Object.keys(t.metadata.labels).length === 0) delete t.metadata.labels;
  }
  if (t.metadata && Object.keys(t.metadata).length === 0) delete t.metadata;
  return t;
}

/**
 * The pod-template-hash of a template: FNV-1a (32 bit) of its canonical JSON and the collision
 * count, in Kubernetes' safe alphabet. (Kubernetes hashes its Go structure, so the values differ
 * from a kube-controller-manager's; the shape and use are the same.)
 */
export function templateHash(template: Fields | undefined, collisionCount = 0): string {
  return safeHash(canonicalJson(withoutHash(template)) + (collisionCount ? String(collisionCount) : ''));
}

/** True when two templates are the same apart from the pod-template-hash label. */
export const sameTemplate = (a: Fields | undefined, b: Fields | undefined): boolean => canonicalJson(withoutHash(a)) === canonicalJson(withoutHash(b));

/** Resolves an int-or-percent against `total` (percentages round up for surge, down for unavailability, as Kubernetes). */
export function resolveIntOrPercent(value: unknown, total: number, roundUp: boolean): number {
  if (typeof value === 'number') return value;
  const m = /^(\d+)%$/.exec(String(value ?? '0'));
  if (!m) return Number(value) || 0;
  const exact = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(exact) : Math.floor(exact);
}

/** maxSurge and maxUnavailable of a Deployment (both 0 would stall: maxUnavailable becomes 1, as Kubernetes). */
export function surgeAndUnavailable(d: KubeObject): { maxSurge: number; maxUnavailable: number } {
  const spec = (d.spec ?? {}) as Fields;
  const replicas = Number(spec.replicas ?? 1);
  if (spec.strategy?.type === 'Recreate') return { maxSurge: 0, maxUnavailable: replicas };
  const ru = spec.strategy?.rollingUpdate ?? {};
  const maxSurge = resolveIntOrPercent(ru.maxSurge ?? '25%', replicas, true);
  let maxUnavailable = resolveIntOrPercent(ru.maxUnavailable ?? '25%', replicas, false);
  if (maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1;
  return { maxSurge, maxUnavailable: Math.min(maxUnavailable, replicas) };
}

const revisionOf = (rs: KubeObject): number => Number(rs.metadata?.annotations?.[REVISION] ?? 0) || 0;
const specReplicas = (rs: KubeObject): number => Number((rs.spec as Fields | undefined)?.replicas ?? 0);
const statusOf = (rs: KubeObject): Fields => (rs.status ?? {}) as Fields;
const sum = (list: KubeObject[], f: (rs: KubeObject) => number): number => list.reduce((n, rs) => n + f(rs), 0);
const rsPath = (ns: string, name?: string): string => `/apis/apps/v1/namespaces/${encodeURIComponent(ns)}/replicasets${name ? `/${encodeURIComponent(name)}` : ''}`;

/** The Deployment reconciler. */
export class DeploymentReconciler {
  constructor(
    private readonly api: ApiClient,
    private readonly deployments: Informer,
    private readonly replicaSets: Informer,
    private readonly pods: Informer,
    private readonly log: Logger,
  ) {}

  async reconcile(key: ObjectKey): Promise<ReconcileResult | void> {
    const d = this.deployments.get(`${key.namespace}/${key.name}`);
    if (!d || d.metadata?.deletionTimestamp) return;
    const spec = (d.spec ?? {}) as Fields;
    const selector = spec.selector as LabelSelector | undefined;
    if (!selector || (Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0)) return; // an empty selector matches nothing
    const owned = await this.claimReplicaSets(d, selector);
    const desired = Number(spec.replicas ?? 1);
    let newRs = owned.find((rs) => sameTemplate((rs.spec as Fields).template, spec.template));
    const old = owned.filter((rs) => rs !== newRs);
    if (spec.paused) {
      await this.scale(d, newRs, old, desired);
      return this.syncStatus(d, newRs, old, { paused: true });
    }
    if (!newRs) {
      newRs = await this.createNewReplicaSet(d, old, spec.strategy?.type === 'Recreate' ? (this.oldPodsRunning(d, old) ? 0 : desired) : undefined);
    } else {
      newRs = await this.annotateNew(d, newRs, old);
    }
    if (spec.strategy?.type === 'Recreate') {
      for (const rs of old) if (specReplicas(rs) > 0) await this.setReplicas(d, rs, 0);
      if (!this.oldPodsRunning(d, old) && specReplicas(newRs) !== desired) newRs = await this.setReplicas(d, newRs, desired);
    } else {
      newRs = await this.rollNew(d, newRs, old);
      await this.rollOld(d, newRs, old);
    }
    await this.cleanup(d, old);
    const current = await this.annotateDeployment(d, newRs);
    return this.syncStatus(current, newRs, old, { paused: false });
  }

  /** ReplicaSets this Deployment controls, adopting matching orphans and releasing those that stopped matching. */
  private async claimReplicaSets(d: KubeObject, selector: LabelSelector): Promise<KubeObject[]> {
    const uid = d.metadata?.uid;
    const out: KubeObject[] = [];
    for (const rs of this.replicaSets.byIndex('namespace', String(d.metadata?.namespace))) {
      const ref = controllerOf(rs);
      const matches = labelSelectorMatches(selector, rs.metadata?.labels ?? {});
      if (ref && ref.uid !== uid) continue;
      if (ref) {
        if (matches) out.push(rs);
        else await this.patchRs(rs, { metadata: { ownerReferences: null, resourceVersion: rs.metadata?.resourceVersion } });
        continue;
      }
      if (!matches || rs.metadata?.deletionTimestamp) continue;
      const adopted = await this.patchRs(rs, { metadata: { ownerReferences: [this.ownerRef(d)], resourceVersion: rs.metadata?.resourceVersion } });
      if (adopted) out.push(adopted);
    }
    return out;
  }

  private ownerRef(d: KubeObject): Fields {
    return { apiVersion: 'apps/v1', kind: 'Deployment', name: d.metadata?.name, uid: d.metadata?.uid, controller: true, blockOwnerDeletion: true };
  }

  private async patchRs(rs: KubeObject, patch: Fields): Promise<KubeObject | undefined> {
    try {
      return await this.api.patch(rsPath(String(rs.metadata?.namespace), String(rs.metadata?.name)), patch);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private oldPodsRunning(d: KubeObject, old: KubeObject[]): boolean {
    const uids = new Set(old.map((rs) => rs.metadata?.uid));
    return this.pods.byIndex('namespace', String(d.metadata?.namespace)).some((p) => uids.has(controllerOf(p)?.uid) && (isActivePod(p) || !!p.metadata?.deletionTimestamp));
  }

  /** Creates the ReplicaSet of the current template (revision max+1), handling hash collisions. */
  private async createNewReplicaSet(d: KubeObject, old: KubeObject[], replicas?: number): Promise<KubeObject> {
    const spec = d.spec as Fields;
    const ns = String(d.metadata?.namespace);
    const collisionCount = Number((d.status as Fields | undefined)?.collisionCount ?? 0);
    const hash = templateHash(spec.template, collisionCount);
    const template = structuredClone(spec.template ?? {}) as Fields;
    ((template.metadata ??= {}).labels ??= {})[TEMPLATE_HASH] = hash;
    const { maxSurge } = surgeAndUnavailable(d);
    const desired = Number(spec.replicas ?? 1);
    const revision = Math.max(0, ...old.map(revisionOf)) + 1;
    // The first ReplicaSet starts at full size; later ones start at 0 and grow within maxSurge.
    const start = replicas ?? (old.every((rs) => specReplicas(rs) === 0) ? desired : 0);
    const rs: KubeObject = {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name: `${d.metadata?.name}-${hash}`,
        namespace: ns,
        labels: { ...(template.metadata.labels as Record<string, string>) },
        annotations: {
          [REVISION]: String(revision),
          [DESIRED_REPLICAS]: String(desired),
          [MAX_REPLICAS]: String(desired + maxSurge),
          ...(d.metadata?.annotations?.[CHANGE_CAUSE] ? { [CHANGE_CAUSE]: d.metadata.annotations[CHANGE_CAUSE] } : {}),
        },
        ownerReferences: [this.ownerRef(d)],
      },
      spec: {
        replicas: start,
        minReadySeconds: spec.minReadySeconds ?? 0,
        selector: { ...(spec.selector as Fields), matchLabels: { ...((spec.selector as Fields).matchLabels ?? {}), [TEMPLATE_HASH]: hash } },
        template,
      },
    };
    try {
      const created = await this.api.create(rsPath(ns), rs);
      this.log.info({ deployment: `${ns}/${d.metadata?.name}`, replicaSet: created.metadata?.name, revision }, 'created new replica set');
      return created;
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      const existing = await this.api.get(rsPath(ns, String(rs.metadata?.name)));
      if (controllerOf(existing)?.uid === d.metadata?.uid && sameTemplate((existing.spec as Fields).template, spec.template)) return existing;
      // A different ReplicaSet has this name: count the collision and try another hash next time.
      await this.api.request('PATCH', `/apis/apps/v1/namespaces/${encodeURIComponent(ns)}/deployments/${encodeURIComponent(String(d.metadata?.name))}/status`, {
        body: { status: { collisionCount: collisionCount + 1 } },
        contentType: 'application/merge-patch+json',
      });
      throw new Error(`hash collision for replica set ${rs.metadata?.name}; retrying with collisionCount ${collisionCount + 1}`);
    }
  }

  /** Keeps the new ReplicaSet's revision the highest (a rollback reuses an old one) and its annotations current. */
  private async annotateNew(d: KubeObject, rs: KubeObject, old: KubeObject[]): Promise<KubeObject> {
    const spec = d.spec as Fields;
    const maxOld = Math.max(0, ...old.map(revisionOf));
    const annotations: Record<string, string | null> = {};
    const current = revisionOf(rs);
    if (current <= maxOld) {
      annotations[REVISION] = String(maxOld + 1);
      const history = (rs.metadata?.annotations?.[REVISION_HISTORY] ?? '').split(',').filter(Boolean);
      annotations[REVISION_HISTORY] = [...history, String(current)].join(',');
    }
    const desired = Number(spec.replicas ?? 1);
    const { maxSurge } = surgeAndUnavailable(d);
    if (rs.metadata?.annotations?.[DESIRED_REPLICAS] !== String(desired)) annotations[DESIRED_REPLICAS] = String(desired);
    if (rs.metadata?.annotations?.[MAX_REPLICAS] !== String(desired + maxSurge)) annotations[MAX_REPLICAS] = String(desired + maxSurge);
    const cause = d.metadata?.annotations?.[CHANGE_CAUSE];
    if (cause && rs.metadata?.annotations?.[CHANGE_CAUSE] !== cause) annotations[CHANGE_CAUSE] = cause;
    const minReady = spec.minReadySeconds ?? 0;
    const needsMinReady = ((rs.spec as Fields).minReadySeconds ?? 0) !== minReady;
    if (Object.keys(annotations).length === 0 && !needsMinReady) return rs;
    return (await this.patchRs(rs, { metadata: { annotations }, ...(needsMinReady ? { spec: { minReadySeconds: minReady } } : {}) })) ?? rs;
  }

  /** The Deployment carries its current revision (`kubectl rollout history` and `undo` read it). */
  private async annotateDeployment(d: KubeObject, newRs: KubeObject): Promise<KubeObject> {
    const revision = String(revisionOf(newRs));
    if (d.metadata?.annotations?.[REVISION] === revision) return d;
    try {
      // The patched object (new resourceVersion) is what the status update that follows must build on.
      return await this.api.patch(`/apis/apps/v1/namespaces/${encodeURIComponent(String(d.metadata?.namespace))}/deployments/${encodeURIComponent(String(d.metadata?.name))}`, { metadata: { annotations: { [REVISION]: revision } } });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      return d;
    }
  }

  private async setReplicas(d: KubeObject, rs: KubeObject, replicas: number): Promise<KubeObject> {
    if (specReplicas(rs) === replicas) return rs;
    this.log.info({ deployment: `${d.metadata?.namespace}/${d.metadata?.name}`, replicaSet: rs.metadata?.name, from: specReplicas(rs), to: replicas }, 'scaling replica set');
    const written = await this.patchRs(rs, { spec: { replicas } });
    return written ?? rs;
  }

  /** RollingUpdate, new side: grow the new ReplicaSet as far as maxSurge allows (or shrink it to the desired count). */
  private async rollNew(d: KubeObject, newRs: KubeObject, old: KubeObject[]): Promise<KubeObject> {
    const desired = Number((d.spec as Fields).replicas ?? 1);
    const current = specReplicas(newRs);
    if (current === desired) return newRs;
    if (current > desired) return this.setReplicas(d, newRs, desired);
    const { maxSurge } = surgeAndUnavailable(d);
    const total = current + sum(old, specReplicas);
    const room = desired + maxSurge - total;
    if (room <= 0) return newRs;
    return this.setReplicas(d, newRs, current + Math.min(room, desired - current));
  }

  /** RollingUpdate, old side: shrink old ReplicaSets without going below desired - maxUnavailable available pods. */
  private async rollOld(d: KubeObject, newRs: KubeObject, old: KubeObject[]): Promise<void> {
    const oldCount = sum(old, specReplicas);
    if (oldCount === 0) return;
    const desired = Number((d.spec as Fields).replicas ?? 1);
    const { maxUnavailable } = surgeAndUnavailable(d);
    const minAvailable = desired - maxUnavailable;
    const all = [newRs, ...old];
    const newUnavailable = Math.max(0, specReplicas(newRs) - Number(statusOf(newRs).availableReplicas ?? 0));
    let budget = sum(all, specReplicas) - minAvailable - newUnavailable;
    if (budget <= 0) return;
    const byAge = [...old].sort((a, b) => String(a.metadata?.creationTimestamp).localeCompare(String(b.metadata?.creationTimestamp)));
    // First the old pods that are not available anyway.
    for (const rs of byAge) {
      if (budget <= 0) break;
      const unhealthy = specReplicas(rs) - Number(statusOf(rs).availableReplicas ?? 0);
      if (unhealthy <= 0) continue;
      const cut = Math.min(unhealthy, budget);
      const updated = await this.setReplicas(d, rs, specReplicas(rs) - cut);
      old[old.indexOf(rs)] = updated;
      byAge[byAge.indexOf(rs)] = updated;
      budget -= cut;
    }
    // Then available ones, as long as enough stay available.
    let available = sum(all.map((rs) => old.find((o) => o.metadata?.uid === rs.metadata?.uid) ?? rs), (rs) => Number(statusOf(rs).availableReplicas ?? 0));
    for (const rs of byAge) {
      if (available <= minAvailable) break;
      const cut = Math.min(specReplicas(rs), available - minAvailable);
      if (cut <= 0) continue;
      await this.setReplicas(d, rs, specReplicas(rs) - cut);
      available -= cut;
    }
  }

  /** While paused (or without a rollout), a replica change is spread over the active ReplicaSets in proportion. */
  private async scale(d: KubeObject, newRs: KubeObject | undefined, old: KubeObject[], desired: number): Promise<void> {
    const active = [...(newRs ? [newRs] : []), ...old].filter((rs) => specReplicas(rs) > 0);
    if (active.length === 0) {
      if (newRs) await this.setReplicas(d, newRs, desired);
      return;
    }
    if (active.length === 1) {
      await this.setReplicas(d, active[0]!, desired);
      return;
    }
    const { maxSurge } = surgeAndUnavailable(d);
    const current = sum(active, specReplicas);
    const target = desired + maxSurge;
    if (current === target) return;
    let left = target - current;
    const sorted = [...active].sort((a, b) => specReplicas(b) - specReplicas(a));
    for (const rs of sorted) {
      const share = rs === sorted.at(-1) ? left : Math.trunc(((target - current) * specReplicas(rs)) / current);
      left -= share;
      await this.setReplicas(d, rs, Math.max(0, specReplicas(rs) + share));
    }
  }

  /** Deletes old, empty ReplicaSets beyond revisionHistoryLimit (oldest revision first). */
  private async cleanup(d: KubeObject, old: KubeObject[]): Promise<void> {
    const limit = Number((d.spec as Fields).revisionHistoryLimit ?? 10);
    const empty = old.filter((rs) => specReplicas(rs) === 0 && Number(statusOf(rs).replicas ?? 0) === 0 && !rs.metadata?.deletionTimestamp).sort((a, b) => revisionOf(a) - revisionOf(b));
    for (const rs of empty.slice(0, Math.max(0, empty.length - limit))) {
      try {
        await this.api.delete(rsPath(String(rs.metadata?.namespace), String(rs.metadata?.name)));
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
  }

  /** Status and the Progressing/Available conditions; a timed re-check for the progress deadline. */
  private async syncStatus(d: KubeObject, newRs: KubeObject | undefined, old: KubeObject[], { paused }: { paused: boolean }): Promise<ReconcileResult | void> {
    const spec = d.spec as Fields;
    const previous = (d.status ?? {}) as Fields;
    const all = [...(newRs ? [newRs] : []), ...old];
    const desired = Number(spec.replicas ?? 1);
    const { maxUnavailable } = surgeAndUnavailable(d);
    const replicas = sum(all, (rs) => Number(statusOf(rs).replicas ?? 0));
    const updated = newRs ? Number(statusOf(newRs).replicas ?? 0) : 0;
    const ready = sum(all, (rs) => Number(statusOf(rs).readyReplicas ?? 0));
    const available = sum(all, (rs) => Number(statusOf(rs).availableReplicas ?? 0));
    const status: Fields = {
      observedGeneration: d.metadata?.generation ?? 1,
      replicas,
      updatedReplicas: updated,
      readyReplicas: ready,
      availableReplicas: available,
      unavailableReplicas: Math.max(0, desired - available),
      ...(previous.collisionCount !== undefined ? { collisionCount: previous.collisionCount } : {}),
    };
    for (const f of ['replicas', 'updatedReplicas', 'readyReplicas', 'availableReplicas', 'unavailableReplicas']) if (status[f] === 0) delete status[f];
    const conditions = new Map<string, Fields>(((previous.conditions ?? []) as Fields[]).map((c) => [c.type, c]));
    const set = (type: string, s: string, reason: string, message: string, touch = true): void => {
      const prev = conditions.get(type);
      const t = formatTime();
      const changed = !prev || prev.status !== s || prev.reason !== reason || prev.message !== message;
      conditions.set(type, {
        type,
        status: s,
        lastUpdateTime: changed && touch ? t : (prev?.lastUpdateTime ?? t),
        lastTransitionTime: !prev || prev.status !== s ? t : prev.lastTransitionTime,
        reason,
        message,
      });
    };
    if (available >= desired - maxUnavailable) set('Available', 'True', 'MinimumReplicasAvailable', 'Deployment has minimum availability.');
    else set('Available', 'False', 'MinimumReplicasUnavailable', 'Deployment does not have minimum availability.');
    let requeueAfter: number | undefined;
    const name = newRs?.metadata?.name;
    const complete = !!newRs && updated === desired && replicas === desired && available >= desired && Number(statusOf(newRs).availableReplicas ?? 0) === desired && status.observedGeneration === d.metadata?.generation;
    const deadline = Number(spec.progressDeadlineSeconds ?? 600);
    const progressing = conditions.get('Progressing');
    if (paused) {
      set('Progressing', 'Unknown', 'DeploymentPaused', 'Deployment is paused');
    } else if (progressing?.reason === 'DeploymentPaused') {
      set('Progressing', 'Unknown', 'DeploymentResumed', 'Deployment is resumed');
    } else if (complete) {
      set('Progressing', 'True', 'NewReplicaSetAvailable', `ReplicaSet "${name}" has successfully progressed.`);
    } else if (name) {
      const madeProgress = JSON.stringify([previous.updatedReplicas, previous.availableReplicas, previous.readyReplicas, previous.replicas]) !== JSON.stringify([status.updatedReplicas, status.availableReplicas, status.readyReplicas, status.replicas]);
      const since = Date.parse(String(progressing?.lastUpdateTime ?? '')) || Date.now();
      const timedOut = progressing && progressing.reason !== 'NewReplicaSetAvailable' && !madeProgress && deadline < 2147483647 && since + deadline * 1000 <= Date.now();
      if (timedOut || progressing?.reason === 'ProgressDeadlineExceeded') {
        if (madeProgress) set('Progressing', 'True', 'ReplicaSetUpdated', `ReplicaSet "${name}" is progressing.`);
        else set('Progressing', 'False', 'ProgressDeadlineExceeded', `ReplicaSet "${name}" has timed out progressing.`, false);
      } else if (!progressing || progressing.reason === 'NewReplicaSetAvailable' || progressing.message?.includes(`"${name}"`) === false) {
        set('Progressing', 'True', progressing ? 'FoundNewReplicaSet' : 'NewReplicaSetCreated', progressing ? `Found new replica set "${name}"` : `Created new replica set "${name}"`);
      } else {
        set('Progressing', 'True', 'ReplicaSetUpdated', `ReplicaSet "${name}" is progressing.`, madeProgress);
      }
      const current = conditions.get('Progressing')!;
      if (current.reason !== 'ProgressDeadlineExceeded' && deadline < 2147483647) {
        const at = (Date.parse(String(current.lastUpdateTime)) || Date.now()) + deadline * 1000 - Date.now();
        requeueAfter = Math.max(1000, at + 1000);
      }
    }
    status.conditions = [...conditions.values()].sort((a, b) => (a.type === 'Available' ? -1 : b.type === 'Available' ? 1 : 0));
    if (canonicalJson(status) !== canonicalJson(previous)) {
      try {
        await this.api.update(`/apis/apps/v1/namespaces/${encodeURIComponent(String(d.metadata?.namespace))}/deployments/${encodeURIComponent(String(d.metadata?.name))}/status`, { ...d, status });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    return requeueAfter ? { requeueAfter } : undefined;
  }
}

/** The Deployment controller plugin. */
export const deploymentControllerPlugin = definePlugin({
  id: 'deployment-controller',
  kind: 'controller',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'Deployment controller: rolls ReplicaSets by the RollingUpdate or Recreate strategy, with revision history, pause and progress deadlines.',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      workers: { type: 'integer', minimum: 1, maximum: 64, default: 5, description: 'Concurrent syncs (Kubernetes --concurrent-deployment-syncs).' },
      leaderElection: LEADER_ELECTION_SCHEMA,
    },
  },
  async start(handle, config: { workers: number; leaderElection: LeaderElectionConfig }, signal) {
    const deployments = handle.api.informer('/apis/apps/v1/deployments');
    const replicaSets = handle.api.informer('/apis/apps/v1/replicasets');
    const pods = handle.api.informer('/api/v1/pods');
    const reconciler = new DeploymentReconciler(handle.api, deployments, replicaSets, pods, handle.logger);
    deployments.run();
    replicaSets.run();
    pods.run();
    await Promise.all([deployments.waitForSync(signal), replicaSets.waitForSync(signal), pods.waitForSync(signal)]);
    handle.ready();
    await runWhileLeading(handle.api, config.leaderElection, handle.logger, signal, async (leading) => {
      const controller = new Controller({ name: 'deployment-controller', reconciler, workers: config.workers, logger: handle.logger, metrics: handle.metrics });
      controller.watch(deployments);
      controller.watch(replicaSets, mapToOwner('Deployment', 'apps'));
      // Orphaned ReplicaSets wake the Deployments that could adopt them.
      controller.watch(replicaSets, (rs) =>
        controllerOf(rs) ? [] : deployments.byIndex('namespace', String(rs.metadata?.namespace)).filter((d) => {
          const sel = (d.spec as Fields | undefined)?.selector as LabelSelector | undefined;
          return !!sel && labelSelectorMatches(sel, rs.metadata?.labels ?? {});
        }).map((d) => ({ namespace: String(d.metadata?.namespace), name: String(d.metadata?.name) })),
      );
      // Recreate waits for old pods to go: their deletion concerns the Deployment of their ReplicaSet.
      controller.watch(pods, (p) => {
        const ref = controllerOf(p);
        if (!ref || ref.kind !== 'ReplicaSet') return [];
        const rs = replicaSets.get(`${p.metadata?.namespace}/${ref.name}`);
        const owner = rs ? controllerOf(rs) : undefined;
        return owner?.kind === 'Deployment' ? [{ namespace: String(p.metadata?.namespace), name: owner.name }] : [];
      });
      await controller.run(leading);
    });
  },
});
