/**
 * What an object costs against a ResourceQuota (Kubernetes' quota evaluators): object counts,
 * pod compute requests and limits, claim storage, service load balancers and node ports, and the
 * scopes a pod falls in.
 *
 * @module
 */
import { compareQuantities, formatQuantity, isQuantity, parseQuantity, type KubeObject, type Quantity } from '@kubernel/sdk';
import { containersOf, type Fields } from './common.js';

/** Quota resource name -> amount. */
export type Usage = Map<string, Quantity>;

const one = (): Quantity => ({ nanos: 1_000_000_000n, format: 'DecimalSI' });
const count = (n: number): Quantity => ({ nanos: BigInt(n) * 1_000_000_000n, format: 'DecimalSI' });
const q = (v: unknown): Quantity | undefined => (isQuantity(v) ? parseQuantity(v as string) : undefined);

/** Object-count names Kubernetes keeps besides `count/<resource>`. */
const LEGACY_COUNTS: Record<string, string> = {
  pods: 'pods',
  services: 'services',
  persistentvolumeclaims: 'persistentvolumeclaims',
  configmaps: 'configmaps',
  secrets: 'secrets',
  replicationcontrollers: 'replicationcontrollers',
  resourcequotas: 'resourcequotas',
};

/** The `count/...` quota name of a resource: `count/pods`, `count/deployments.apps`. */
export const countName = (group: string, resource: string): string => (group ? `count/${resource}.${group}` : `count/${resource}`);

/** True when a pod no longer uses its resources (Succeeded or Failed). */
export const podTerminal = (pod: KubeObject): boolean => ['Succeeded', 'Failed'].includes(String((pod.status as { phase?: string } | undefined)?.phase));

/** A pod's effective requests or limits: max(sum of containers, any init container) plus overhead. */
export function podResources(pod: KubeObject, field: 'requests' | 'limits'): Map<string, Quantity> {
  const spec = pod.spec as Fields | undefined;
  const total = new Map<string, Quantity>();
  const initMax = new Map<string, Quantity>();
  for (const { container, init } of containersOf(spec)) {
    for (const [name, value] of Object.entries((container.resources?.[field] ?? {}) as Record<string, unknown>)) {
      const x = q(value);
      if (!x) continue;
      if (init) {
        const cur = initMax.get(name);
        if (!cur || compareQuantities(x, cur) > 0) initMax.set(name, x);
      } else {
        const cur = total.get(name);
        total.set(name, cur ? { nanos: cur.nanos + x.nanos, format: cur.format } : x);
      }
    }
  }
  for (const [name, x] of initMax) {
    const cur = total.get(name);
    if (!cur || compareQuantities(x, cur) > 0) total.set(name, x);
  }
  for (const [name, value] of Object.entries((spec?.overhead ?? {}) as Record<string, unknown>)) {
    const x = q(value);
    const cur = total.get(name);
    if (x) total.set(name, cur ? { nanos: cur.nanos + x.nanos, format: cur.format } : x);
  }
  return total;
}

/** A pod's QoS class (`status.qosClass` when set, else computed as Kubernetes does). */
export function podQos(pod: KubeObject): 'Guaranteed' | 'Burstable' | 'BestEffort' {
  const known = (pod.status as { qosClass?: string } | undefined)?.qosClass;
  if (known === 'Guaranteed' || known === 'Burstable' || known === 'BestEffort') return known;
  const containers = containersOf(pod.spec as Record<string, unknown> | undefined);
  let any = false;
  let guaranteed = containers.length > 0;
  for (const { container } of containers) {
    const req = (container.resources?.requests ?? {}) as Record<string, string>;
    const lim = (container.resources?.limits ?? {}) as Record<string, string>;
    for (const r of ['cpu', 'memory']) {
      if (req[r] !== undefined || lim[r] !== undefined) any = true;
      const l = q(lim[r]);
      const rq = q(req[r] ?? lim[r]);
      if (!l || !rq || compareQuantities(l, rq) !== 0) guaranteed = false;
    }
  }
  if (!any) return 'BestEffort';
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

/** What creating `object` (of `group`/`resource`) costs. Terminal pods cost nothing. */
export function usageOf(group: string, resource: string, object: KubeObject): Usage {
  const usage: Usage = new Map([[countName(group, resource), one()]]);
  if (group === '' && LEGACY_COUNTS[resource]) usage.set(LEGACY_COUNTS[resource]!, one());
  if (group !== '') return usage;
  const spec = (object.spec ?? {}) as Fields;
  if (resource === 'pods') {
    if (podTerminal(object)) return new Map();
    for (const [name, x] of podResources(object, 'requests')) {
      usage.set(`requests.${name}`, x);
      if (name === 'cpu' || name === 'memory' || name === 'ephemeral-storage') usage.set(name, x);
    }
    for (const [name, x] of podResources(object, 'limits')) usage.set(`limits.${name}`, x);
  } else if (resource === 'services') {
    if (spec.type === 'LoadBalancer') usage.set('services.loadbalancers', one());
    if (spec.type === 'NodePort' || spec.type === 'LoadBalancer') usage.set('services.nodeports', count(Array.isArray(spec.ports) ? spec.ports.length : 0));
  } else if (resource === 'persistentvolumeclaims') {
    const storage = q(spec.resources?.requests?.storage);
    const cls = typeof spec.storageClassName === 'string' && spec.storageClassName ? spec.storageClassName : undefined;
    if (storage) usage.set('requests.storage', storage);
    if (cls) {
      usage.set(`${cls}.storageclass.storage.k8s.io/persistentvolumeclaims`, one());
      if (storage) usage.set(`${cls}.storageclass.storage.k8s.io/requests.storage`, storage);
    }
  }
  return usage;
}

/** The compute names a pod must set in every container when a quota limits them. */
export const REQUIRED_COMPUTE: Record<string, { field: 'requests' | 'limits'; resource: string }> = {
  cpu: { field: 'requests', resource: 'cpu' },
  'requests.cpu': { field: 'requests', resource: 'cpu' },
  memory: { field: 'requests', resource: 'memory' },
  'requests.memory': { field: 'requests', resource: 'memory' },
  'limits.cpu': { field: 'limits', resource: 'cpu' },
  'limits.memory': { field: 'limits', resource: 'memory' },
};

/** For each compute name in `hard` that some container does not set: the containers missing it. */
export function missingCompute(pod: KubeObject, hard: Iterable<string>): Array<[string, string[]]> {
  const out: Array<[string, string[]]> = [];
  const containers = containersOf(pod.spec as Record<string, unknown> | undefined);
  for (const name of hard) {
    const need = REQUIRED_COMPUTE[name];
    if (!need) continue;
    const missing = containers.filter(({ container }) => container.resources?.[need.field]?.[need.resource] === undefined && !(need.field === 'requests' && container.resources?.limits?.[need.resource] !== undefined)).map(({ container }) => String(container.name));
    if (missing.length) out.push([name, missing]);
  }
  return out;
}

/** Whether a quota's scopes (spec.scopes and spec.scopeSelector) cover the object. Only pods fall in pod scopes. */
export function quotaCovers(quota: KubeObject, resource: string, object: KubeObject): boolean {
  const spec = (quota.spec ?? {}) as { scopes?: string[]; scopeSelector?: { matchExpressions?: Array<{ scopeName: string; operator: string; values?: string[] }> } };
  const scopes = [...(spec.scopes ?? []).map((s) => ({ scopeName: s, operator: 'Exists', values: [] as string[] })), ...(spec.scopeSelector?.matchExpressions ?? [])];
  if (scopes.length === 0) return true;
  if (resource !== 'pods') return false;
  const pod = object.spec as Fields | undefined;
  for (const s of scopes) {
    let inScope: boolean;
    switch (s.scopeName) {
      case 'Terminating':
        inScope = typeof pod?.activeDeadlineSeconds === 'number' && pod.activeDeadlineSeconds >= 0;
        break;
      case 'NotTerminating':
        inScope = !(typeof pod?.activeDeadlineSeconds === 'number' && pod.activeDeadlineSeconds >= 0);
        break;
      case 'BestEffort':
        inScope = podQos(object) === 'BestEffort';
        break;
      case 'NotBestEffort':
        inScope = podQos(object) !== 'BestEffort';
        break;
      case 'PriorityClass': {
        const cls = pod?.priorityClassName as string | undefined;
        const values = s.values ?? [];
        inScope = s.operator === 'In' ? cls !== undefined && values.includes(cls)
          : s.operator === 'NotIn' ? cls === undefined || !values.includes(cls)
          : s.operator === 'Exists' ? cls !== undefined && cls !== ''
          : s.operator === 'DoesNotExist' ? !cls : false;
        break;
      }
      default:
        inScope = false;
    }
    if (!inScope) return false;
  }
  return true;
}

/** Formats `name=value` pairs, sorted by name, as Kubernetes' quota messages do. */
export const formatPairs = (pairs: Map<string, Quantity>): string => [...pairs].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${formatQuantity(v)}`).join(',');
