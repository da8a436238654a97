import { createHash } from 'node:crypto';
import type { ResourceRegistry } from './registry.js';
import { ALL_VERBS, type ResourceDef } from './resource.js';

function verbs(def: ResourceDef): string[] {
  return [...(def.verbs ?? ALL_VERBS)].sort();
}

/** A short stable hash, as Kubernetes' storageVersionHash. */
function hash(text: string): string {
  return createHash('sha256').update(text).digest('base64').slice(0, 11);
}

/** The pod subresources proxied to the node agent (node-proxy.ts): name, response kind, verbs. */
const POD_STREAMING: ReadonlyArray<readonly [string, string, readonly string[]]> = [
  ['attach', 'PodAttachOptions', ['create', 'get']],
  ['exec', 'PodExecOptions', ['create', 'get']],
  ['log', 'Pod', ['get']],
  ['portforward', 'PodPortForwardOptions', ['create', 'get']],
];

/** The APIResource entries of one group version (legacy discovery), subresources included. */
export function apiResourceList(registry: ResourceRegistry, group: string, version: string): Record<string, unknown> {
  const resources: Record<string, unknown>[] = [];
  for (const d of registry.all.filter((r) => r.group === group && r.version === version)) {
    resources.push({
      name: d.plural,
      singularName: d.singular,
      namespaced: d.namespaced,
      kind: d.kind,
      verbs: verbs(d),
      ...(d.shortNames ? { shortNames: [...d.shortNames] } : {}),
      ...(d.categories ? { categories: [...d.categories] } : {}),
      storageVersionHash: hash(`${group}/${version}/${d.kind}`),
    });
    if (d.statusSubresource) resources.push({ name: `${d.plural}/status`, singularName: '', namespaced: d.namespaced, kind: d.kind, verbs: ['get', 'patch', 'update'] });
    if (d.scale) resources.push({ name: `${d.plural}/scale`, singularName: '', namespaced: d.namespaced, group: 'autoscaling', version: 'v1', kind: 'Scale', verbs: ['get', 'patch', 'update'] });
    for (const sub of d.subresources ?? []) resources.push({ name: `${d.plural}/${sub}`, singularName: '', namespaced: d.namespaced, kind: d.kind, verbs: ['get', 'patch', 'update'] });
    if (d.kind === 'Pod' && d.group === '') resources.push({ name: 'pods/binding', singularName: '', namespaced: true, kind: 'Binding', verbs: ['create'] });
    if (d.kind === 'Pod' && d.group === '') resources.push({ name: 'pods/eviction', singularName: '', namespaced: true, group: 'policy', version: 'v1', kind: 'Eviction', verbs: ['create'] });
    if (d.kind === 'Pod' && d.group === '') for (const [sub, kind, vs] of POD_STREAMING) resources.push({ name: `pods/${sub}`, singularName: '', namespaced: true, kind, verbs: [...vs] });
    if (d.kind === 'Namespace' && d.group === '') resources.push({ name: 'namespaces/finalize', singularName: '', namespaced: false, kind: 'Namespace', verbs: ['update'] });
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version, resources };
}

/** `/api`: the core group's versions. */
export function apiVersions(serverAddress: string): Record<string, unknown> {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

/** `/apis`: every named group with its versions. */
export function apiGroupList(registry: ResourceRegistry): Record<string, unknown> {
  const groups = new Map<string, string[]>();
  for (const { group, version } of registry.groupVersions()) {
    if (!group) continue;
    groups.set(group, [...(groups.get(group) ?? []), version]);
  }
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: [...groups].map(([name, vs]) => apiGroup(name, vs)) };
}

/** `/apis/<group>`: one group. */
export function apiGroup(name: string, versions: string[]): Record<string, unknown> {
  const list = versions.map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
  return { kind: 'APIGroup', apiVersion: 'v1', name, versions: list, preferredVersion: list[0] };
}

/** The media type of aggregated discovery (apidiscovery.k8s.io/v2), which kubectl 1.32 asks for first. */
export const AGGREGATED_V2 = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList';
export const AGGREGATED_V2BETA1 = 'application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList';

/** Which aggregated discovery version the Accept header asks for, if any. */
export function wantsAggregated(accept: string | undefined): 'v2' | 'v2beta1' | undefined {
  for (const part of (accept ?? '').split(',')) {
    const params = new Map(
      part
        .split(';')
        .slice(1)
        .map((p) => p.trim().split('=') as [string, string]),
    );
    const v = params.get('v');
    if (params.get('g') === 'apidiscovery.k8s.io' && params.get('as') === 'APIGroupDiscoveryList' && (v === 'v2' || v === 'v2beta1')) return v;
  }
  return undefined;
}

/** Aggregated discovery for `/api` (core) or `/apis` (named groups). */
export function aggregatedDiscovery(registry: ResourceRegistry, core: boolean, version: 'v2' | 'v2beta1'): Record<string, unknown> {
  const groups = new Map<string, Record<string, unknown>[]>();
  for (const { group, version: v } of registry.groupVersions()) {
    if (core !== (group === '')) continue;
    const resources = registry.all
      .filter((d) => d.group === group && d.version === v)
      .map((d) => {
        const subresources: Record<string, unknown>[] = [];
        if (d.statusSubresource) subresources.push({ subresource: 'status', responseKind: { group, version: v, kind: d.kind }, verbs: ['get', 'patch', 'update'] });
        if (d.scale) subresources.push({ subresource: 'scale', responseKind: { group: 'autoscaling', version: 'v1', kind: 'Scale' }, verbs: ['get', 'patch', 'update'] });
        for (const sub of d.subresources ?? []) subresources.push({ subresource: sub, responseKind: { group, version: v, kind: d.kind }, verbs: ['get', 'patch', 'update'] });
        if (d.kind === 'Pod' && d.group === '') subresources.push({ subresource: 'binding', responseKind: { group: '', version: 'v1', kind: 'Binding' }, verbs: ['create'] });
        if (d.kind === 'Pod' && d.group === '') subresources.push({ subresource: 'eviction', responseKind: { group: 'policy', version: 'v1', kind: 'Eviction' }, verbs: ['create'] });
        if (d.kind === 'Pod' && d.group === '') for (const [sub, kind, vs] of POD_STREAMING) subresources.push({ subresource: sub, responseKind: { group: '', version: 'v1', kind }, verbs: [...vs] });
        if (d.kind === 'Namespace' && d.group === '') subresources.push({ subresource: 'finalize', responseKind: { group: '', version: 'v1', kind: 'Namespace' }, verbs: ['update'] });
        return {
          resource: d.plural,
          responseKind: { group, version: v, kind: d.kind },
          scope: d.namespaced ? 'Namespaced' : 'Cluster',
          singularResource: d.singular,
          verbs: verbs(d),
          ...(d.shortNames ? { shortNames: [...d.shortNames] } : {}),
          ...(d.categories ? { categories: [...d.categories] } : {}),
          ...(subresources.length > 0 ? { subresources } : {}),
        };
      });
    groups.set(group, [...(groups.get(group) ?? []), { version: v, resources, freshness: 'Current' }]);
  }
  return {
    kind: 'APIGroupDiscoveryList',
    apiVersion: `apidiscovery.k8s.io/${version}`,
    metadata: {},
    items: [...groups].map(([name, versions]) => ({ metadata: { name, creationTimestamp: null }, versions })),
  };
}

