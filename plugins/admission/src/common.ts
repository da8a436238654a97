import { isNotFound, type ApiClient, type Informer, type KubeObject } from '@kubernel/sdk';

/** Nested fields of an API object, read defensively (admission input is untrusted JSON). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Fields = Record<string, any>;

/** `pods "web"` — how Kubernetes names the object of a refusal. */
export const objectRef = (resource: string, name: string): string => (name ? `${resource} "${name}"` : resource);

/**
 * The object at `key` from `informer`, or, when the cache does not have it yet (an object created
 * a moment ago), straight from the API server. Undefined when it does not exist.
 */
export async function cachedOrLive<T extends KubeObject>(informer: Informer<T>, api: ApiClient | undefined, key: string, path: string): Promise<T | undefined> {
  const cached = informer.get(key);
  if (cached || !api) return cached;
  try {
    return await api.get<T>(path);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** The objects of `namespace` in an informer over a cluster-wide list. */
export function inNamespace<T extends KubeObject>(informer: Informer<T>, namespace: string): T[] {
  return informer.list().filter((o) => o.metadata?.namespace === namespace);
}

/** Every container of a pod spec with its field path (`spec.containers[0]`), init containers included. */
export function containersOf(spec: Record<string, unknown> | undefined, path = 'spec'): Array<{ container: Fields; path: string; init: boolean }> {
  const out: Array<{ container: Fields; path: string; init: boolean }> = [];
  for (const [field, init] of [['initContainers', true], ['containers', false]] as const) {
    const list = spec?.[field];
    if (!Array.isArray(list)) continue;
    list.forEach((c, i) => {
      if (typeof c === 'object' && c !== null) out.push({ container: c as Fields, path: `${path}.${field}[${i}]`, init });
    });
  }
  return out;
}

/** How long a live lookup of a namespace the cache shows empty is trusted (Kubernetes' LimitRanger and ResourceQuota use 30 s). */
export const LIVE_LOOKUP_TTL_MS = 30_000;

/**
 * The objects of a namespace from `informer`; when the cache has none (perhaps one was created a
 * moment ago and its watch event is on its way) a live list answers instead, trusted for
 * {@link LIVE_LOOKUP_TTL_MS} unless the cache fills first.
 */
export function namespacedLookup<T extends KubeObject>(informer: Informer<T>, api: ApiClient | undefined, path: (namespace: string) => string): (namespace: string) => Promise<T[]> {
  const live = new Map<string, { expires: number; items: T[] }>();
  return async (namespace) => {
    const cached = inNamespace(informer, namespace);
    if (cached.length > 0 || !api) return cached;
    const hit = live.get(namespace);
    if (hit && hit.expires > Date.now()) return hit.items;
    const items = (await api.list<T>(path(namespace))).items ?? [];
    if (live.size > 10_000) live.clear();
    live.set(namespace, { expires: Date.now() + LIVE_LOOKUP_TTL_MS, items });
    return items;
  };
}
