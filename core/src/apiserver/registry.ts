import type { ResourceDef } from './resource.js';
import { apiVersionOf } from './resource.js';

/** The served resources, indexed for routing. */
export class ResourceRegistry {
  private readonly byPath = new Map<string, ResourceDef>();
  readonly all: readonly ResourceDef[];

  constructor(defs: readonly ResourceDef[]) {
    this.all = defs;
    for (const d of defs) this.byPath.set(`${d.group}/${d.version}/${d.plural}`, d);
  }

  /** The resource served at `group/version/plural`, if any. */
  find(group: string, version: string, plural: string): ResourceDef | undefined {
    return this.byPath.get(`${group}/${version}/${plural}`);
  }

  /** The resource of a kind in a group, if any. */
  byKind(group: string, kind: string): ResourceDef | undefined {
    return this.all.find((d) => d.group === group && d.kind === kind);
  }

  /** The group versions served, in discovery order (core first). */
  groupVersions(): Array<{ group: string; version: string }> {
    const seen = new Set<string>();
    const out: Array<{ group: string; version: string }> = [];
    for (const d of this.all) {
      const k = apiVersionOf(d);
      if (!seen.has(k)) {
        seen.add(k);
        out.push({ group: d.group, version: d.version });
      }
    }
    return out;
  }
}

/**
 * Store keys, etcd-style: `/registry/<group|core>/<resource>/<namespace>/<name>` for namespaced
 * resources and `/registry/<group|core>/<resource>/<name>` for cluster-scoped ones.
 */
export function storeKey(def: ResourceDef, namespace: string | undefined, name: string): string {
  return def.namespaced ? `${resourcePrefix(def)}${namespace}/${name}` : `${resourcePrefix(def)}${name}`;
}

/** The store prefix of every object of a resource (all namespaces). */
export function resourcePrefix(def: ResourceDef): string {
  return `/registry/${def.group || 'core'}/${def.plural}/`;
}

/** The store prefix of a resource in one namespace (or all, when undefined). */
export function listPrefix(def: ResourceDef, namespace: string | undefined): string {
  return def.namespaced && namespace ? `${resourcePrefix(def)}${namespace}/` : resourcePrefix(def);
}
