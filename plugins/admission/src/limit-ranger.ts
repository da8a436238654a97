import { AdmissionDenied, compareQuantities, definePlugin, formatQuantity, isQuantity, parseQuantity, untilAborted, type Admission, type ApiClient, type Informer, type KubeObject, type Quantity } from '@kubernel/sdk';
import { containersOf, namespacedLookup, objectRef, type Fields } from './common.js';

type ResourceList = Record<string, string>;
interface LimitItem {
  type?: string;
  min?: ResourceList;
  max?: ResourceList;
  default?: ResourceList;
  defaultRequest?: ResourceList;
  maxLimitRequestRatio?: ResourceList;
}

const q = (v: unknown): Quantity | undefined => (isQuantity(v) ? parseQuantity(v as string) : undefined);
const itemsOf = (lr: KubeObject): LimitItem[] => {
  const limits = (lr.spec as { limits?: unknown } | undefined)?.limits;
  return Array.isArray(limits) ? (limits.filter((l) => typeof l === 'object' && l !== null) as LimitItem[]) : [];
};

/** Applies the `Container` items' `default` and `defaultRequest` to a pod spec; returns the annotation text (empty when nothing was set). */
export function applyContainerDefaults(spec: Fields, ranges: readonly KubeObject[]): string {
  const notes: string[] = [];
  for (const { container, init } of containersOf(spec)) {
    const setRequests: string[] = [];
    const setLimits: string[] = [];
    for (const item of ranges.flatMap(itemsOf)) {
      if (item.type !== 'Container') continue;
      const resources = (container.resources ??= {}) as { requests?: ResourceList; limits?: ResourceList };
      for (const [name, value] of Object.entries(item.default ?? {})) {
        if (resources.limits?.[name] === undefined) {
          (resources.limits ??= {})[name] = value;
          setLimits.push(name);
        }
      }
      // A LimitRange without defaultRequest defaults requests to its default limit, as Kubernetes' LimitRange defaulting does.
      for (const [name, value] of Object.entries({ ...(item.default ?? {}), ...(item.defaultRequest ?? {}) })) {
        if (resources.requests?.[name] === undefined) {
          (resources.requests ??= {})[name] = resources.limits?.[name] !== undefined && item.defaultRequest?.[name] === undefined ? resources.limits[name]! : value;
          setRequests.push(name);
        }
      }
    }
    if (setRequests.length) notes.push(`${setRequests.join(', ')} request for ${init ? 'init container' : 'container'} ${container.name}`);
    if (setLimits.length) notes.push(`${setLimits.join(', ')} limit for ${init ? 'init container' : 'container'} ${container.name}`);
  }
  return notes.length ? `LimitRanger plugin set: ${notes.join('; ')}` : '';
}

/** The min/max/ratio checks of one item against one set of requests and limits. */
function check(kind: string, item: LimitItem, requests: ResourceList, limits: ResourceList, problems: string[]): void {
  // A claim's limit is optional: its bounds apply to the request (and to a limit only when one is set).
  const optionalLimit = kind === 'PersistentVolumeClaim';
  for (const [name, min] of Object.entries(item.min ?? {})) {
    const m = q(min);
    if (!m) continue;
    const r = q(requests[name]);
    const l = q(limits[name]);
    if (!r) problems.push(`minimum ${name} usage per ${kind} is ${min}.  No request is specified`);
    else if (compareQuantities(r, m) < 0) problems.push(`minimum ${name} usage per ${kind} is ${min}, but request is ${formatQuantity(r)}`);
    if (l && compareQuantities(l, m) < 0) problems.push(`minimum ${name} usage per ${kind} is ${min}, but limit is ${formatQuantity(l)}`);
  }
  for (const [name, max] of Object.entries(item.max ?? {})) {
    const m = q(max);
    if (!m) continue;
    const r = q(requests[name]);
    const l = q(limits[name]);
    if (!l && !optionalLimit) problems.push(`maximum ${name} usage per ${kind} is ${max}.  No limit is specified`);
    else if (l && compareQuantities(l, m) > 0) problems.push(`maximum ${name} usage per ${kind} is ${max}, but limit is ${formatQuantity(l)}`);
    if (r && compareQuantities(r, m) > 0) problems.push(`maximum ${name} usage per ${kind} is ${max}, but request is ${formatQuantity(r)}`);
  }
  for (const [name, ratio] of Object.entries(item.maxLimitRequestRatio ?? {})) {
    const m = q(ratio);
    const r = q(requests[name]);
    const l = q(limits[name]);
    if (!m || !l) continue;
    if (!r || r.nanos === 0n) {
      problems.push(`${name} max limit to request ratio per ${kind} is ${ratio}, but no request is specified or request is 0`);
      continue;
    }
    const actual = Number((l.nanos * 1_000_000n) / r.nanos) / 1_000_000;
    if (actual > Number(m.nanos) / 1e9) problems.push(`${name} max limit to request ratio per ${kind} is ${ratio}, but provided ratio is ${actual.toFixed(6)}`);
  }
}

const sum = (lists: ResourceList[]): ResourceList => {
  const total = new Map<string, Quantity[]>();
  for (const list of lists) for (const [k, v] of Object.entries(list)) { const x = q(v); if (x) total.set(k, [...(total.get(k) ?? []), x]); }
  return Object.fromEntries([...total].map(([k, xs]) => [k, formatQuantity({ nanos: xs.reduce((s, x) => s + x.nanos, 0n), format: xs[0]!.format })]));
};

/** Every LimitRange violation of a pod (Container and Pod items). */
export function podProblems(spec: Fields, ranges: readonly KubeObject[]): string[] {
  const problems: string[] = [];
  const containers = containersOf(spec);
  for (const item of ranges.flatMap(itemsOf)) {
    if (item.type === 'Container') {
      for (const { container } of containers) check('Container', item, container.resources?.requests ?? {}, container.resources?.limits ?? {}, problems);
    } else if (item.type === 'Pod') {
      const regular = containers.filter((c) => !c.init);
      check('Pod', item, sum(regular.map((c) => c.container.resources?.requests ?? {})), sum(regular.map((c) => c.container.resources?.limits ?? {})), problems);
    }
  }
  return problems;
}

/** Every LimitRange violation of a claim (PersistentVolumeClaim items, on `storage`). */
export function claimProblems(claim: KubeObject, ranges: readonly KubeObject[]): string[] {
  const problems: string[] = [];
  const resources = ((claim.spec as Fields | undefined)?.resources ?? {}) as { requests?: ResourceList; limits?: ResourceList };
  for (const item of ranges.flatMap(itemsOf)) {
    if (item.type !== 'PersistentVolumeClaim') continue;
    check('PersistentVolumeClaim', item, resources.requests ?? {}, resources.limits ?? {}, problems);
  }
  return problems;
}

const refusal = (resource: string, name: string, problems: string[]): AdmissionDenied =>
  new AdmissionDenied(`${objectRef(resource, name)} is forbidden: ${problems.length === 1 ? problems[0] : `[${problems.join(', ')}]`}`, 403);

/**
 * LimitRanger: applies the namespace's LimitRange defaults to containers' requests and limits
 * (noting what it set in the `kubernetes.io/limit-ranger` annotation) and refuses pods and claims
 * outside min, max and maxLimitRequestRatio (403 naming each violation).
 */
export function limitRanger(ranges: Informer, api?: ApiClient): Admission {
  const forNamespace = namespacedLookup(ranges, api, (ns) => `/api/v1/namespaces/${encodeURIComponent(ns)}/limitranges`);
  const relevant = (r: { operation: string; subresource: string; resource: { group: string; resource: string } }): boolean =>
    r.operation === 'CREATE' && r.subresource === '' && r.resource.group === '' && (r.resource.resource === 'pods' || r.resource.resource === 'persistentvolumeclaims');
  return {
    handles: relevant,
    async admit(r) {
      if (r.resource.resource !== 'pods') return;
      const pod = r.object as KubeObject & { spec?: Fields };
      if (typeof pod?.spec !== 'object' || pod.spec === null) return;
      const note = applyContainerDefaults(pod.spec, await forNamespace(r.namespace));
      if (note) ((pod.metadata ??= {}).annotations ??= {})['kubernetes.io/limit-ranger'] = note;
    },
    async validate(r) {
      const object = r.object as KubeObject & { spec?: Fields };
      if (typeof object?.spec !== 'object' || object.spec === null) return;
      const ranges = await forNamespace(r.namespace);
      const problems = r.resource.resource === 'pods' ? podProblems(object.spec, ranges) : claimProblems(object, ranges);
      if (problems.length > 0) throw refusal(r.resource.resource, r.name, problems);
    },
  };
}

/** The `limit-ranger` admission plugin. */
export const limitRangerPlugin = definePlugin({
  id: 'limit-ranger',
  kind: 'admission',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'LimitRanger: LimitRange defaults for container requests and limits, and min/max/ratio enforcement for pods and claims.',
  configSchema: { type: 'object', additionalProperties: false, properties: {} },
  async start(handle, _config, signal) {
    const ranges = handle.api.informer<KubeObject>('/api/v1/limitranges');
    ranges.run();
    await ranges.waitForSync(signal);
    handle.provide(limitRanger(ranges, handle.api));
    await untilAborted(signal);
  },
});
