/**
 * The ReplicaSet and ReplicationController controllers: keep `spec.replicas` active pods matching
 * the selector, adopting orphans that match and releasing owned pods that no longer match, with
 * expectations so a cache that has not yet seen the pods just created (or deleted) never causes a
 * second round of creates (or deletes).
 *
 * @module
 */
import {
  Controller,
  controllerOf,
  definePlugin,
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
import { type Fields, canonicalJson, formatTime } from './util.js';

/** The resource a replica controller manages. */
export interface ReplicaKind {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly resource: string;
}

export const REPLICA_SET: ReplicaKind = { group: 'apps', version: 'v1', kind: 'ReplicaSet', resource: 'replicasets' };
export const REPLICATION_CONTROLLER: ReplicaKind = { group: '', version: 'v1', kind: 'ReplicationController', resource: 'replicationcontrollers' };

/** At most this many pods are created or deleted in one sync (Kubernetes' burstReplicas). */
export const BURST_REPLICAS = 500;
/** Expectations older than this are considered stale and ignored (Kubernetes' ExpectationsTimeout). */
export const EXPECTATIONS_TIMEOUT_MS = 5 * 60_000;

const apiVersionOf = (k: ReplicaKind): string => (k.group ? `${k.group}/${k.version}` : k.version);
const collectionPath = (k: ReplicaKind, ns: string): string => `${k.group ? `/apis/${k.group}/${k.version}` : '/api/v1'}/namespaces/${encodeURIComponent(ns)}/${k.resource}`;

/**
 * How many creations and deletions a controller still waits to see in its cache, per owner
 * (Kubernetes' ControllerExpectations): a sync only manages replicas once they are met.
 */
export class Expectations {
  private readonly pending = new Map<string, { adds: number; dels: Set<string>; at: number }>();

  /** Records that `adds` creations and the deletion of `deleting` pods are on their way. */
  expect(key: string, adds: number, deleting: readonly string[] = []): void {
    this.pending.set(key, { adds, dels: new Set(deleting), at: Date.now() });
  }

  /** A pod of the owner appeared in the cache (or its creation failed). */
  creationObserved(key: string): void {
    const e = this.pending.get(key);
    if (e && e.adds > 0) e.adds--;
  }

  /** A pod of the owner left the cache (or its deletion failed). */
  deletionObserved(key: string, podKey: string): void {
    this.pending.get(key)?.dels.delete(podKey);
  }

  /** True when nothing is pending, or what is pending is older than {@link EXPECTATIONS_TIMEOUT_MS}. */
  satisfied(key: string): boolean {
    const e = this.pending.get(key);
    return !e || (e.adds <= 0 && e.dels.size === 0) || Date.now() - e.at > EXPECTATIONS_TIMEOUT_MS;
  }

  forget(key: string): void {
    this.pending.delete(key);
  }
}

/** True while a pod counts toward replicas (not terminal, not being deleted). */
export const isActivePod = (p: KubeObject): boolean => !['Succeeded', 'Failed'].includes(String((p.status as Fields | undefined)?.phase)) && !p.metadata?.deletionTimestamp;

const conditionTrue = (p: KubeObject, type: string): Fields | undefined => ((p.status as Fields | undefined)?.conditions as Fields[] | undefined)?.find((c) => c?.type === type && c?.status === 'True');

/** True when the pod is Ready. */
export const isPodReady = (p: KubeObject): boolean => conditionTrue(p, 'Ready') !== undefined;

/** True when the pod has been Ready for at least `minReadySeconds` (at `now`). */
export function isPodAvailable(p: KubeObject, minReadySeconds: number, now = Date.now()): boolean {
  const ready = conditionTrue(p, 'Ready');
  if (!ready) return false;
  if (minReadySeconds <= 0) return true;
  const since = Date.parse(String(ready.lastTransitionTime ?? ''));
  return Number.isFinite(since) && since + minReadySeconds * 1000 <= now;
}

const PHASE_RANK: Record<string, number> = { Pending: 0, Unknown: 1, Running: 2 };
const restarts = (p: KubeObject): number => (((p.status as Fields | undefined)?.containerStatuses ?? []) as Fields[]).reduce((n, c) => Math.max(n, Number(c?.restartCount ?? 0)), 0);

/**
 * Orders pods so the first ones are deleted first, as Kubernetes does when scaling down:
 * unscheduled before scheduled, Pending before Unknown before Running, not ready before ready,
 * ready for less time before longer, more restarts before fewer, newer before older.
 */
export function deletionOrder(a: KubeObject, b: KubeObject): number {
  const nodeA = (a.spec as Fields | undefined)?.nodeName ? 1 : 0;
  const nodeB = (b.spec as Fields | undefined)?.nodeName ? 1 : 0;
  if (nodeA !== nodeB) return nodeA - nodeB;
  const phase = (p: KubeObject): number => PHASE_RANK[String((p.status as Fields | undefined)?.phase)] ?? 0;
  if (phase(a) !== phase(b)) return phase(a) - phase(b);
  const readyA = isPodReady(a) ? 1 : 0;
  const readyB = isPodReady(b) ? 1 : 0;
  if (readyA !== readyB) return readyA - readyB;
  if (readyA && readyB) {
    const since = (p: KubeObject): number => Date.parse(String(conditionTrue(p, 'Ready')?.lastTransitionTime ?? '')) || 0;
    if (since(a) !== since(b)) return since(b) - since(a);
  }
  if (restarts(a) !== restarts(b)) return restarts(b) - restarts(a);
  const created = (p: KubeObject): number => Date.parse(String(p.metadata?.creationTimestamp ?? '')) || 0;
  return created(b) - created(a);
}

/** The selector of a ReplicaSet (LabelSelector) or a ReplicationController (a label map). */
export function selectorOf(kind: ReplicaKind, owner: KubeObject): ((labels: Record<string, string>) => boolean) | undefined {
  const spec = (owner.spec ?? {}) as Fields;
  if (kind.group === '') {
    const sel = (spec.selector ?? spec.template?.metadata?.labels) as Record<string, string> | undefined;
    if (!sel || Object.keys(sel).length === 0) return undefined;
    return (labels) => labelSelectorMatches({ matchLabels: sel }, labels);
  }
  const sel = spec.selector as LabelSelector | undefined;
  if (!sel || (Object.keys(sel.matchLabels ?? {}).length === 0 && (sel.matchExpressions ?? []).length === 0)) return undefined; // an empty selector selects nothing here, as Kubernetes
  return (labels) => labelSelectorMatches(sel, labels);
}

/** The reconciler of one replica kind. */
export class ReplicaReconciler {
  readonly expectations = new Expectations();

  constructor(
    private readonly kind: ReplicaKind,
    private readonly api: ApiClient,
    private readonly owners: Informer,
    private readonly pods: Informer,
    private readonly log: Logger,
  ) {}

  async reconcile(key: ObjectKey): Promise<ReconcileResult | void> {
    const k = `${key.namespace}/${key.name}`;
    const owner = this.owners.get(k);
    if (!owner) {
      this.expectations.forget(k);
      return;
    }
    const spec = (owner.spec ?? {}) as Fields;
    const matches = selectorOf(this.kind, owner);
    const uid = String(owner.metadata?.uid);
    const namespacePods = this.pods.byIndex('namespace', key.namespace);
    // Claim: adopt matching orphans, release owned pods that no longer match.
    const owned: KubeObject[] = [];
    for (const pod of namespacePods) {
      const ref = controllerOf(pod);
      const labels = pod.metadata?.labels ?? {};
      if (ref && ref.uid !== uid) continue;
      if (ref) {
        if (matches && matches(labels)) owned.push(pod);
        else await this.release(pod, uid);
        continue;
      }
      if (!matches || !matches(labels) || owner.metadata?.deletionTimestamp || pod.metadata?.deletionTimestamp || !isActivePod(pod)) continue;
      if (await this.adopt(owner, pod)) owned.push(pod);
    }
    const active = owned.filter(isActivePod);
    const want = Number.isInteger(spec.replicas) ? Number(spec.replicas) : 1;
    let failure: string | undefined;
    if (this.expectations.satisfied(k) && !owner.metadata?.deletionTimestamp) {
      const diff = active.length - want;
      if (diff < 0) failure = await this.createPods(owner, k, Math.min(-diff, BURST_REPLICAS));
      else if (diff > 0) await this.deletePods(k, [...active].sort(deletionOrder).slice(0, Math.min(diff, BURST_REPLICAS)));
    }
    const minReady = Number(spec.minReadySeconds ?? 0);
    const labels = ((spec.template as Fields | undefined)?.metadata?.labels ?? {}) as Record<string, string>;
    const now = Date.now();
    const status: Fields = {
      replicas: active.length,
      fullyLabeledReplicas: active.filter((p) => Object.entries(labels).every(([lk, lv]) => p.metadata?.labels?.[lk] === lv)).length,
      readyReplicas: active.filter(isPodReady).length,
      availableReplicas: active.filter((p) => isPodAvailable(p, minReady, now)).length,
      observedGeneration: owner.metadata?.generation ?? 1,
    };
    const previous = (owner.status ?? {}) as Fields;
    const conditions = ((previous.conditions ?? []) as Fields[]).filter((c) => c.type !== 'ReplicaFailure');
    if (failure) conditions.push({ type: 'ReplicaFailure', status: 'True', reason: 'FailedCreate', message: failure, lastTransitionTime: formatTime() });
    if (conditions.length) status.conditions = conditions;
    for (const f of ['readyReplicas', 'availableReplicas', 'fullyLabeledReplicas'] as const) if (status[f] === 0) delete status[f];
    if (canonicalJson(status) !== canonicalJson(previous)) {
      try {
        await this.api.update(`${collectionPath(this.kind, key.namespace)}/${encodeURIComponent(key.name)}/status`, { ...owner, status });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    if (failure) throw new Error(failure);
    // Pods ready but not yet available for minReadySeconds: look again when they will be.
    if (minReady > 0 && active.some((p) => isPodReady(p) && !isPodAvailable(p, minReady, now))) return { requeueAfter: minReady * 1000 };
  }

  private async adopt(owner: KubeObject, pod: KubeObject): Promise<boolean> {
    const refs = [...(((pod.metadata as Fields).ownerReferences ?? []) as Fields[]), { apiVersion: apiVersionOf(this.kind), kind: this.kind.kind, name: owner.metadata?.name, uid: owner.metadata?.uid, controller: true, blockOwnerDeletion: true }];
    try {
      await this.api.patch(`/api/v1/namespaces/${encodeURIComponent(String(pod.metadata?.namespace))}/pods/${encodeURIComponent(String(pod.metadata?.name))}`, { metadata: { ownerReferences: refs, resourceVersion: pod.metadata?.resourceVersion } });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  private async release(pod: KubeObject, uid: string): Promise<void> {
    const refs = (((pod.metadata as Fields).ownerReferences ?? []) as Fields[]).filter((r) => r.uid !== uid);
    try {
      await this.api.patch(`/api/v1/namespaces/${encodeURIComponent(String(pod.metadata?.namespace))}/pods/${encodeURIComponent(String(pod.metadata?.name))}`, { metadata: { ownerReferences: refs.length ? refs : null, resourceVersion: pod.metadata?.resourceVersion } });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /** Creates `count` pods in batches of 1, 2, 4, ... (slow start): a failing batch stops the rest. */
  private async createPods(owner: KubeObject, key: string, count: number): Promise<string | undefined> {
    const template = ((owner.spec as Fields).template ?? {}) as Fields;
    const ns = String(owner.metadata?.namespace);
    this.expectations.expect(key, count);
    let done = 0;
    for (let batch = 1; done < count; batch *= 2) {
      const n = Math.min(batch, count - done);
      const results = await Promise.allSettled(
        Array.from({ length: n }, () =>
          this.api.create(`/api/v1/namespaces/${encodeURIComponent(ns)}/pods`, {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: {
              generateName: `${owner.metadata?.name}-`,
              namespace: ns,
              labels: template.metadata?.labels ?? {},
              ...(template.metadata?.annotations ? { annotations: template.metadata.annotations } : {}),
              ownerReferences: [{ apiVersion: apiVersionOf(this.kind), kind: this.kind.kind, name: owner.metadata?.name, uid: owner.metadata?.uid, controller: true, blockOwnerDeletion: true }],
            },
            spec: template.spec ?? {},
          }),
        ),
      );
      done += n;
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      for (let i = 0; i < failed.length; i++) this.expectations.creationObserved(key);
      if (failed.length > 0) {
        // The rest of this sync's creations will not happen: stop expecting them.
        for (let i = done; i < count; i++) this.expectations.creationObserved(key);
        const message = String((failed[0]!.reason as Error)?.message ?? failed[0]!.reason);
        this.log.warn({ owner: key, err: message }, 'pod creation failed');
        return message;
      }
    }
    return undefined;
  }

  private async deletePods(key: string, victims: KubeObject[]): Promise<void> {
    const podKeys = victims.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`);
    this.expectations.expect(key, 0, podKeys);
    await Promise.all(
      victims.map(async (p, i) => {
        try {
          await this.api.delete(`/api/v1/namespaces/${encodeURIComponent(String(p.metadata?.namespace))}/pods/${encodeURIComponent(String(p.metadata?.name))}`);
        } catch (err) {
          this.expectations.deletionObserved(key, podKeys[i]!);
          if (!isNotFound(err)) throw err;
        }
      }),
    );
  }
}


/** A plugin running the replica controller of `kind`. */
function replicaControllerPlugin(id: string, kind: ReplicaKind, description: string) {
  return definePlugin({
    id,
    kind: 'controller',
    version: '0.1.0',
    sdk: '^1.0.0',
    description,
    configSchema: {
      type: 'object',
      additionalProperties: false,
      properties: {
        workers: { type: 'integer', minimum: 1, maximum: 64, default: 5, description: 'Concurrent syncs (Kubernetes --concurrent-replicaset-syncs).' },
        leaderElection: LEADER_ELECTION_SCHEMA,
      },
    },
    async start(handle, config: { workers: number; leaderElection: LeaderElectionConfig }, signal) {
      const owners = handle.api.informer(`${kind.group ? `/apis/${kind.group}/${kind.version}` : '/api/v1'}/${kind.resource}`);
      const pods = handle.api.informer('/api/v1/pods');
      const reconciler = new ReplicaReconciler(kind, handle.api, owners, pods, handle.logger);
      const ownerKey = (p: KubeObject): string | undefined => {
        const ref = controllerOf(p);
        return ref && ref.kind === kind.kind ? `${p.metadata?.namespace}/${ref.name}` : undefined;
      };
      // Expectations are met by what the cache sees.
      const unsubscribe = pods.subscribe({
        add: (p) => {
          const k = ownerKey(p);
          if (k) reconciler.expectations.creationObserved(k);
        },
        delete: (p) => {
          const k = ownerKey(p);
          if (k) reconciler.expectations.deletionObserved(k, `${p.metadata?.namespace}/${p.metadata?.name}`);
        },
      });
      owners.run();
      pods.run();
      await Promise.all([owners.waitForSync(signal), pods.waitForSync(signal)]);
      handle.ready();
      await runWhileLeading(handle.api, config.leaderElection, handle.logger, signal, async (leading) => {
        const controller = new Controller({ name: id, reconciler, workers: config.workers, logger: handle.logger, metrics: handle.metrics });
        controller.watch(owners);
        controller.watch(pods, mapToOwner(kind.kind, kind.group));
        // Orphans matching a selector wake the owners that could adopt them.
        controller.watch(pods, (p) => (controllerOf(p) ? [] : owners.byIndex('namespace', String(p.metadata?.namespace)).filter((o) => selectorOf(kind, o)?.(p.metadata?.labels ?? {})).map((o) => ({ namespace: String(o.metadata?.namespace), name: String(o.metadata?.name) }))));
        await controller.run(leading);
      });
      unsubscribe();
    },
  });
}

/** The ReplicaSet controller plugin. */
export const replicaSetControllerPlugin = replicaControllerPlugin('replicaset-controller', REPLICA_SET, 'ReplicaSet controller: keeps spec.replicas pods matching the selector, adopting and releasing pods by ownerReferences.');
/** The ReplicationController controller plugin. */
export const replicationControllerPlugin = replicaControllerPlugin('replicationcontroller-controller', REPLICATION_CONTROLLER, 'ReplicationController controller: keeps spec.replicas pods matching the selector.');
