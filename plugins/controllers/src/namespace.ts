/**
 * The namespace controller: a namespace marked for deletion (Terminating) has all its content
 * deleted through the API (so finalizers, graceful pod deletion and owners are honoured), its
 * status conditions say what is left, and once it is empty the `kubernetes` finalizer is removed
 * through `namespaces/<name>/finalize` and the deletion completes.
 *
 * @module
 */
import {
  Controller,
  definePlugin,
  isConflict,
  isNotFound,
  LEADER_ELECTION_SCHEMA,
  runWhileLeading,
  type ApiClient,
  type Informer,
  type KubeObject,
  type LeaderElectionConfig,
  type Logger,
  type ObjectKey,
  type ReconcileResult,
} from '@kubernel/sdk';
import { type Fields, formatTime } from './util.js';

/** The finalizer the namespace controller owns. */
export const NAMESPACE_FINALIZER = 'kubernetes';

/** A namespaced resource the API serves, with the path of its collection in a namespace. */
export interface NamespacedResource {
  readonly group: string;
  readonly version: string;
  readonly resource: string;
  collection(namespace: string): string;
}

/** Every namespaced resource that can be listed and deleted, from discovery (preferred versions). */
export async function discoverNamespaced(api: ApiClient): Promise<NamespacedResource[]> {
  const out: NamespacedResource[] = [];
  const add = (group: string, version: string, list: Fields): void => {
    for (const r of (list.resources ?? []) as Fields[]) {
      const verbs = (r.verbs ?? []) as string[];
      if (!r.namespaced || String(r.name).includes('/') || !verbs.includes('list') || !verbs.includes('delete')) continue;
      const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
      out.push({ group, version, resource: r.name, collection: (ns) => `${base}/namespaces/${encodeURIComponent(ns)}/${r.name}` });
    }
  };
  add('', 'v1', await api.get<Fields>('/api/v1'));
  const groups = await api.get<Fields>('/apis');
  for (const g of (groups.groups ?? []) as Fields[]) {
    const version = g.preferredVersion?.version ?? g.versions?.[0]?.version;
    if (!version) continue;
    add(g.name, version, await api.get<Fields>(`/apis/${g.name}/${version}`));
  }
  return out;
}

const condition = (type: string, status: 'True' | 'False', reason: string, message: string): Fields => ({ type, status, reason, message });

/** The namespace deletion conditions Kubernetes reports, from what is left. */
export function deletionConditions(remaining: Map<string, number>, finalizers: Map<string, number>, failures: string[]): Fields[] {
  const resources = [...remaining].filter(([, n]) => n > 0).sort(([a], [b]) => a.localeCompare(b));
  const held = [...finalizers].sort(([a], [b]) => a.localeCompare(b));
  return [
    condition('NamespaceDeletionDiscoveryFailure', 'False', 'ResourcesDiscovered', 'All resources successfully discovered'),
    condition('NamespaceDeletionGroupVersionParsingFailure', 'False', 'ParsedGroupVersions', 'All legacy kube types successfully parsed'),
    failures.length
      ? condition('NamespaceDeletionContentFailure', 'True', 'ContentDeletionFailed', `Failed to delete all resource types, ${failures.length} remaining: ${failures.join(', ')}`)
      : condition('NamespaceDeletionContentFailure', 'False', 'ContentDeleted', 'All content successfully deleted, may be waiting on finalization'),
    resources.length
      ? condition('NamespaceContentRemaining', 'True', 'SomeResourcesRemain', `Some resources are remaining: ${resources.map(([r, n]) => `${r} has ${n} resource instances`).join(', ')}`)
      : condition('NamespaceContentRemaining', 'False', 'ContentRemoved', 'All content successfully removed'),
    held.length
      ? condition('NamespaceFinalizersRemaining', 'True', 'SomeFinalizersRemain', `Some content in the namespace has finalizers remaining: ${held.map(([f, n]) => `${f} in ${n} resource instances`).join(', ')}`)
      : condition('NamespaceFinalizersRemaining', 'False', 'ContentHasNoFinalizers', 'All content-preserving finalizers finished'),
  ];
}

/** The namespace reconciler. */
export class NamespaceReconciler {
  private discovered?: { at: number; resources: NamespacedResource[] };

  constructor(
    private readonly api: ApiClient,
    private readonly namespaces: Informer,
    private readonly log: Logger,
  ) {}

  async reconcile(key: ObjectKey): Promise<ReconcileResult | void> {
    const ns = this.namespaces.get(key.name);
    if (!ns?.metadata?.deletionTimestamp) return;
    const name = key.name;
    const path = `/api/v1/namespaces/${encodeURIComponent(name)}`;
    const specFinalizers = ((ns.spec as Fields | undefined)?.finalizers ?? []) as string[];
    if (!specFinalizers.includes(NAMESPACE_FINALIZER)) {
      await this.deleteNamespace(path);
      return;
    }
    const remaining = new Map<string, number>();
    const finalizers = new Map<string, number>();
    const failures: string[] = [];
    for (const r of await this.resources()) {
      let items: KubeObject[];
      try {
        items = (await this.api.list(r.collection(name))).items ?? [];
      } catch (err) {
        if (isNotFound(err)) continue;
        failures.push(`${r.resource}.${r.group}`.replace(/\.$/, ''));
        continue;
      }
      for (const o of items) {
        if (!o.metadata?.deletionTimestamp) {
          try {
            await this.api.request('DELETE', `${r.collection(name)}/${encodeURIComponent(String(o.metadata?.name))}`, { body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Background' } });
          } catch (err) {
            if (isNotFound(err)) continue;
            failures.push(`${r.resource}.${r.group}`.replace(/\.$/, ''));
          }
        }
        const label = r.group ? `${r.resource}.${r.group}` : `${r.resource}.`;
        remaining.set(label, (remaining.get(label) ?? 0) + 1);
        for (const f of (o.metadata?.finalizers ?? []) as string[]) finalizers.set(f, (finalizers.get(f) ?? 0) + 1);
      }
    }
    // What was deleted at once is gone now: count again what is still there.
    const left = new Map<string, number>();
    const leftFinalizers = new Map<string, number>();
    if (remaining.size > 0) {
      for (const r of await this.resources()) {
        const label = r.group ? `${r.resource}.${r.group}` : `${r.resource}.`;
        if (!remaining.has(label)) continue;
        const items = (await this.api.list(r.collection(name)).catch(() => ({ items: [] as KubeObject[] }))).items ?? [];
        if (items.length) left.set(label, items.length);
        for (const o of items) for (const f of (o.metadata?.finalizers ?? []) as string[]) leftFinalizers.set(f, (leftFinalizers.get(f) ?? 0) + 1);
      }
    }
    await this.writeConditions(ns, deletionConditions(left, leftFinalizers, failures));
    if (left.size > 0 || failures.length > 0) return { requeueAfter: failures.length ? 5000 : 1000 };
    // Empty: drop our finalizer, then complete the deletion.
    try {
      await this.api.update(`${path}/finalize`, { ...ns, spec: { ...(ns.spec as Fields), finalizers: specFinalizers.filter((f) => f !== NAMESPACE_FINALIZER) } });
    } catch (err) {
      if (isNotFound(err) && !this.namespaces.get(key.name)) return; // already gone
      throw err;
    }
    await this.deleteNamespace(path);
    this.log.info({ namespace: name }, 'namespace finalized');
  }

  private async deleteNamespace(path: string): Promise<void> {
    try {
      await this.api.delete(path);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  private async writeConditions(ns: KubeObject, conditions: Fields[]): Promise<void> {
    const previous = ((ns.status as Fields | undefined)?.conditions ?? []) as Fields[];
    const strip = (cs: Fields[]): string => JSON.stringify(cs.map(({ type, status, reason, message }) => ({ type, status, reason, message })));
    if (strip(previous) === strip(conditions)) return;
    const t = formatTime();
    const stamped = conditions.map((c) => {
      const prev = previous.find((p) => p.type === c.type);
      return { ...c, lastTransitionTime: prev && prev.status === c.status ? prev.lastTransitionTime : t };
    });
    try {
      await this.api.update(`/api/v1/namespaces/${encodeURIComponent(String(ns.metadata?.name))}/status`, { ...ns, status: { ...(ns.status as Fields), conditions: stamped } });
    } catch (err) {
      if (!isNotFound(err) && !isConflict(err)) throw err;
    }
  }

  /** Discovery, cached for 30 s. */
  private async resources(): Promise<NamespacedResource[]> {
    if (!this.discovered || Date.now() - this.discovered.at > 30_000) this.discovered = { at: Date.now(), resources: await discoverNamespaced(this.api) };
    return this.discovered.resources;
  }
}

/** The namespace controller plugin. */
export const namespaceControllerPlugin = definePlugin({
  id: 'namespace-controller',
  kind: 'controller',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'Namespace controller: deleting a namespace deletes everything in it, then the namespace; its status says what is left.',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      workers: { type: 'integer', minimum: 1, maximum: 64, default: 10, description: 'Concurrent syncs (Kubernetes --concurrent-namespace-syncs).' },
      leaderElection: LEADER_ELECTION_SCHEMA,
    },
  },
  async start(handle, config: { workers: number; leaderElection: LeaderElectionConfig }, signal) {
    const namespaces = handle.api.informer('/api/v1/namespaces');
    const reconciler = new NamespaceReconciler(handle.api, namespaces, handle.logger);
    namespaces.run();
    await namespaces.waitForSync(signal);
    handle.ready();
    await runWhileLeading(handle.api, config.leaderElection, handle.logger, signal, async (leading) => {
      const controller = new Controller({ name: 'namespace-controller', reconciler, workers: config.workers, logger: handle.logger, metrics: handle.metrics });
      controller.watch(namespaces, (n) => (n.metadata?.deletionTimestamp ? [{ namespace: '', name: String(n.metadata.name) }] : []));
      await controller.run(leading);
    });
  },
});
