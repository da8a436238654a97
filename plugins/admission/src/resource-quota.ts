import {
  AdmissionDenied,
  compareQuantities,
  definePlugin,
  formatQuantity,
  isConflict,
  isNotFound,
  isQuantity,
  parseQuantity,
  untilAborted,
  type Admission,
  type AdmissionRequest,
  type ApiClient,
  type Informer,
  type KubeObject,
  type Logger,
  type Quantity,
} from '@kubernel/sdk';
import { namespacedLookup, objectRef } from './common.js';
import { countName, formatPairs, missingCompute, podTerminal, quotaCovers, REQUIRED_COMPUTE, usageOf, type Usage } from './quota-usage.js';

type ResourceList = Record<string, string>;
type Quota = KubeObject & { spec?: { hard?: ResourceList }; status?: { hard?: ResourceList; used?: ResourceList } };

const q = (v: unknown): Quantity | undefined => (isQuantity(v) ? parseQuantity(v as string) : undefined);
const quotaPath = (ns: string, name?: string): string => `/api/v1/namespaces/${encodeURIComponent(ns)}/resourcequotas${name ? `/${encodeURIComponent(name)}` : ''}`;
const MAX_ATTEMPTS = 20;

/** One key per namespace runs at a time (charges of one namespace are serialised in this process; CAS covers other processes). */
class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();
  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.tails.set(key, tail);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

/** The part of `usage` a quota constrains (names in its enforced `status.hard`). */
function constrained(quota: Quota, usage: Usage): Usage {
  const hard = quota.status?.hard ?? {};
  return new Map([...usage].filter(([name]) => hard[name] !== undefined));
}

/**
 * ResourceQuota admission: an object whose creation would take a namespace's usage past a quota's
 * `status.hard` is refused with 403 naming the quota, what was requested, used and limited; an
 * admitted object is charged to every quota covering it by a compare-and-swap update of the
 * quota's `status.used` (retried on conflict), so concurrent creates never overshoot a quota, in
 * one API server or several. Pods must set the compute resources a quota limits. Enforcement
 * starts once the quota controller ({@link QuotaController}) has filled `status.hard`.
 */
export function resourceQuota(quotas: Informer<Quota>, api: ApiClient): Admission {
  const forNamespace = namespacedLookup(quotas, api, (ns) => quotaPath(ns));
  const lock = new KeyedLock();
  // The quota as this process last wrote it: newer than the informer's copy until the watch catches up.
  const written = new Map<string, Quota>();
  const rv = (o: Quota | undefined): number => Number(o?.metadata?.resourceVersion ?? 0);
  const freshest = (cached: Quota): Quota => {
    const mine = written.get(`${cached.metadata?.namespace}/${cached.metadata?.name}`);
    return mine && rv(mine) > rv(cached) && mine.metadata?.uid === cached.metadata?.uid ? mine : cached;
  };
  return {
    handles: (r: AdmissionRequest) => r.operation === 'CREATE' && r.subresource === '' && r.namespace !== '' && r.object !== undefined,
    async validate(r) {
      const object = r.object as KubeObject;
      const all = await forNamespace(r.namespace);
      if (all.length === 0) return;
      const usage = usageOf(r.resource.group, r.resource.resource, object);
      if (usage.size === 0) return;
      const isPod = r.resource.group === '' && r.resource.resource === 'pods';
      const limitsCompute = (quota: Quota): boolean => Object.keys(quota.status?.hard ?? {}).some((k) => k in REQUIRED_COMPUTE);
      const covering = all.filter((quota) => quotaCovers(quota, r.resource.resource, object) && (constrained(quota, usage).size > 0 || (isPod && limitsCompute(quota))));
      if (covering.length === 0) return;
      if (isPod) {
        for (const quota of covering) {
          const missing = missingCompute(object, Object.keys(quota.status?.hard ?? {}));
          if (missing.length) {
            throw new AdmissionDenied(`${objectRef('pods', r.name)} is forbidden: failed quota: ${quota.metadata?.name}: must specify ${missing.map(([name, cs]) => `${name} for: ${cs.join(',')}`).join('; ')}`, 403);
          }
        }
      }
      await lock.run(r.namespace, async () => {
        const charged: Array<{ quota: Quota; delta: Usage }> = [];
        try {
          for (const cached of covering) {
            const quota = await charge(api, freshest(cached), usage, r);
            if (r.dryRun) continue;
            if (written.size > 10_000) written.clear();
            written.set(`${quota.metadata?.namespace}/${quota.metadata?.name}`, quota);
            charged.push({ quota, delta: constrained(cached, usage) });
          }
        } catch (err) {
          // One quota refused after others were charged: give their charge back.
          for (const c of charged) await refund(api, c.quota, c.delta).catch(() => undefined);
          throw err;
        }
      });
    },
  };
}

/** Adds `usage` to one quota's `status.used`, or refuses; returns the quota as written. */
async function charge(api: ApiClient, cached: Quota, usage: Usage, r: AdmissionRequest): Promise<Quota> {
  let quota = cached;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const hard = quota.status?.hard ?? {};
    const used = quota.status?.used ?? {};
    const requested = constrained(quota, usage);
    const next: ResourceList = { ...used };
    const over = new Map<string, Quantity>();
    for (const [name, amount] of requested) {
      const limit = q(hard[name]);
      const current = q(used[name]) ?? { nanos: 0n, format: amount.format };
      // Usage prints in the format of the limit it counts against (256Mi of a 1Gi quota, not 268435456).
      const total: Quantity = { nanos: current.nanos + amount.nanos, format: limit?.format ?? current.format };
      if (limit && compareQuantities(total, limit) > 0) over.set(name, limit);
      next[name] = formatQuantity(total);
    }
    if (over.size > 0) {
      const pick = (m: ResourceList): Map<string, Quantity> => new Map([...over.keys()].map((k) => [k, q(m[k]) ?? { nanos: 0n, format: 'DecimalSI' as const }]));
      throw new AdmissionDenied(
        `${objectRef(r.resource.resource, r.name)} is forbidden: exceeded quota: ${quota.metadata?.name}, requested: ${formatPairs(new Map([...requested].filter(([k]) => over.has(k))))}, used: ${formatPairs(pick(used))}, limited: ${formatPairs(over)}`,
        403,
        [...over.keys()].map((k) => ({ field: `status.hard[${k}]`, message: `exceeded quota: ${quota.metadata?.name}`, reason: 'FieldValueForbidden' })),
      );
    }
    if (r.dryRun) return quota;
    try {
      return await api.update<Quota>(`${quotaPath(r.namespace, String(quota.metadata?.name))}/status`, { ...quota, status: { ...quota.status, used: next } });
    } catch (err) {
      if (!isConflict(err)) throw err;
      try {
        quota = await api.get<Quota>(quotaPath(r.namespace, String(quota.metadata?.name)));
      } catch (e) {
        if (isNotFound(e)) return quota; // deleted meanwhile: nothing to charge
        throw e;
      }
    }
  }
  throw new AdmissionDenied(`${objectRef(r.resource.resource, r.name)} is forbidden: status unknown for quota: ${quota.metadata?.name}, resource: ${[...usage.keys()].join(',')}`, 409);
}

/** Takes `delta` back from a quota's `status.used` (CAS, retried). */
async function refund(api: ApiClient, charged: Quota, delta: Usage): Promise<void> {
  let quota = charged;
  const ns = String(quota.metadata?.namespace);
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const used = { ...(quota.status?.used ?? {}) };
    for (const [name, amount] of delta) {
      const current = q(used[name]);
      if (current) used[name] = formatQuantity({ nanos: current.nanos - amount.nanos > 0n ? current.nanos - amount.nanos : 0n, format: current.format });
    }
    try {
      await api.update(`${quotaPath(ns, String(quota.metadata?.name))}/status`, { ...quota, status: { ...quota.status, used } });
      return;
    } catch (err) {
      if (!isConflict(err)) throw err;
      quota = await api.get<Quota>(quotaPath(ns, String(quota.metadata?.name)));
    }
  }
}

/** Resources the quota controller counts, by the API path that lists them in a namespace. */
const CORE_COUNTED = ['pods', 'services', 'persistentvolumeclaims', 'configmaps', 'secrets', 'replicationcontrollers', 'resourcequotas'];

/**
 * The resource quota controller's duties: fills each quota's `status.hard` from `spec.hard` and
 * recomputes `status.used` from the objects in its namespace (a consistent list, written with a
 * compare-and-swap on the quota, redone on conflict) when a quota changes, when a counted object is
 * deleted or a pod terminates (replenishment), and every `resyncSeconds`. This corrects charges of
 * objects whose write failed after admission.
 */
export class QuotaController {
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private readonly groupVersions = new Map<string, string>();

  constructor(
    private readonly api: ApiClient,
    private readonly quotas: Informer<Quota>,
    private readonly log: Logger,
  ) {}

  /** Schedules a recount of `namespace` (coalesced over 100 ms). */
  enqueue(namespace: string): void {
    if (this.pending.has(namespace)) return;
    this.pending.set(
      namespace,
      setTimeout(() => {
        this.pending.delete(namespace);
        void this.sync(namespace).catch((err) => {
          this.log.warn({ namespace, err: String(err) }, 'resource quota recount failed; retrying');
          setTimeout(() => this.enqueue(namespace), 1000).unref();
        });
      }, 100),
    );
  }

  /** Stops pending recounts. */
  stop(): void {
    for (const t of this.pending.values()) clearTimeout(t);
    this.pending.clear();
  }

  /** Recounts every quota of `namespace`. */
  async sync(namespace: string): Promise<void> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const list = await this.api.list<Quota>(quotaPath(namespace));
      const conflicts: boolean[] = [];
      for (const quota of list.items) conflicts.push(await this.syncOne(quota));
      if (!conflicts.some(Boolean)) return;
    }
  }

  /** Recounts one quota; true when it changed meanwhile (the caller redoes it). */
  private async syncOne(quota: Quota): Promise<boolean> {
    const ns = String(quota.metadata?.namespace);
    const hard = quota.spec?.hard ?? {};
    const used: ResourceList = {};
    const byResource = new Map<string, string[]>();
    for (const name of Object.keys(hard)) {
      const resource = this.resourceOf(name);
      byResource.set(resource, [...(byResource.get(resource) ?? []), name]);
    }
    for (const [resource, names] of byResource) {
      const objects = await this.listFor(ns, resource);
      const totals = new Map<string, bigint>(names.map((n) => [n, 0n]));
      for (const o of objects) {
        const [group, plural] = resource.split('/') as [string, string];
        if (!quotaCovers(quota, plural, o)) continue;
        if (plural === 'pods' && group === '' && podTerminal(o)) continue;
        const u = usageOf(group, plural, o);
        for (const n of names) {
          const x = u.get(n);
          if (x) totals.set(n, totals.get(n)! + x.nanos);
        }
      }
      for (const [n, nanos] of totals) used[n] = formatQuantity({ nanos, format: q(hard[n])?.format ?? 'DecimalSI' });
    }
    const same = JSON.stringify(quota.status?.hard ?? {}) === JSON.stringify(hard) && JSON.stringify(quota.status?.used ?? {}) === JSON.stringify(used);
    if (same) return false;
    try {
      await this.api.update(`${quotaPath(ns, String(quota.metadata?.name))}/status`, { ...quota, status: { hard, used } });
      return false;
    } catch (err) {
      if (isConflict(err)) return true;
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** `group/plural` a quota name counts (`pods` for `requests.cpu`, `apps/deployments` for `count/deployments.apps`). */
  private resourceOf(name: string): string {
    if (name.startsWith('count/')) {
      const rest = name.slice('count/'.length);
      const dot = rest.indexOf('.');
      return dot < 0 ? `/${rest}` : `${rest.slice(dot + 1)}/${rest.slice(0, dot)}`;
    }
    if (CORE_COUNTED.includes(name)) return `/${name}`;
    if (name.startsWith('services.')) return '/services';
    if (name === 'requests.storage' || name.includes('.storageclass.storage.k8s.io/')) return '/persistentvolumeclaims';
    return '/pods';
  }

  private async listFor(ns: string, resource: string): Promise<KubeObject[]> {
    const [group, plural] = resource.split('/') as [string, string];
    let base = '/api/v1';
    if (group) {
      let version = this.groupVersions.get(group);
      if (!version) {
        const g = await this.api.get<{ preferredVersion?: { version?: string } }>(`/apis/${encodeURIComponent(group)}`).catch(() => undefined);
        version = g?.preferredVersion?.version;
        if (!version) return [];
        this.groupVersions.set(group, version);
      }
      base = `/apis/${group}/${version}`;
    }
    try {
      return (await this.api.list(`${base}/namespaces/${encodeURIComponent(ns)}/${plural}`)).items ?? [];
    } catch (err) {
      if (isNotFound(err)) return [];
      throw err;
    }
  }

  /** Namespaces with at least one quota. */
  namespaces(): Set<string> {
    return new Set(this.quotas.list().map((o) => String(o.metadata?.namespace)));
  }
}

/** The `resource-quota` admission plugin (with the quota controller's recounting). */
export const resourceQuotaPlugin = definePlugin({
  id: 'resource-quota',
  kind: 'admission',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'ResourceQuota: refuses what would exceed a namespace quota (charged by compare-and-swap, exact under concurrency) and keeps quota status current.',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: { resyncSeconds: { type: 'integer', minimum: 1, default: 300, description: 'Full recount period (Kubernetes --resource-quota-sync-period).' } },
  },
  async start(handle, config: { resyncSeconds: number }, signal) {
    const quotas = handle.api.informer<Quota>('/api/v1/resourcequotas');
    const controller = new QuotaController(handle.api, quotas, handle.logger);
    const hardChanged = (o: Quota): void => {
      if (JSON.stringify(o.spec?.hard ?? {}) !== JSON.stringify(o.status?.hard ?? {}) || o.status?.used === undefined) controller.enqueue(String(o.metadata?.namespace));
    };
    const unsubscribes = [quotas.subscribe({ add: hardChanged, update: hardChanged })];
    // Replenishment: a deleted counted object, or a pod that has terminated, frees quota.
    const replenish = (o: KubeObject): void => {
      const ns = String(o.metadata?.namespace);
      if (controller.namespaces().has(ns)) controller.enqueue(ns);
    };
    for (const resource of CORE_COUNTED.filter((r) => r !== 'resourcequotas')) {
      const informer = handle.api.informer(`/api/v1/${resource}`);
      unsubscribes.push(
        informer.subscribe({
          delete: replenish,
          ...(resource === 'pods' ? { update: (o: KubeObject, old: KubeObject) => (podTerminal(o) && !podTerminal(old) ? replenish(o) : undefined) } : {}),
        }),
      );
      informer.run();
    }
    quotas.run();
    await quotas.waitForSync(signal);
    const resync = setInterval(() => {
      for (const ns of controller.namespaces()) controller.enqueue(ns);
    }, config.resyncSeconds * 1000);
    handle.provide(resourceQuota(quotas, handle.api));
    await untilAborted(signal);
    clearInterval(resync);
    controller.stop();
    for (const u of unsubscribes) u();
  },
});

export { countName };
