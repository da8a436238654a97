import { createHash } from 'node:crypto';
import { patchStrategies } from './patch.js';
import type { ResourceRegistry } from './registry.js';
import type { Obj, ResourceDef } from './resource.js';
import type { Schemas } from './schemas.js';

/** The Kubernetes version this API server presents itself as (for clients' compatibility checks). */
export const KUBERNETES_VERSION = { major: '1', minor: '32', gitVersion: 'v1.32.0-kubernel' };

const QUERY = (name: string, description: string): Obj => ({ name, in: 'query', description, type: 'string', uniqueItems: true });
const WRITE_PARAMS = [
  QUERY('dryRun', 'When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed'),
  QUERY('fieldManager', 'fieldManager is a name associated with the actor or entity that is making these changes.'),
  QUERY('fieldValidation', 'fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore, Warn (default), Strict.'),
];

/** The definitions with the patch strategies and merge keys added, as Kubernetes serves them. */
function annotatedDefinitions(schemas: Schemas): Record<string, Obj> {
  const defs: Record<string, Obj> = structuredClone(schemas.definitions) as Record<string, Obj>;
  for (const [path, strategy] of patchStrategies()) {
    const dot = path.lastIndexOf('.');
    const prop = defs[path.slice(0, dot)]?.properties?.[path.slice(dot + 1)] as Obj | undefined;
    if (!prop) continue;
    const strategies = [...(strategy.merge ? ['merge'] : []), ...(strategy.retainKeys ? ['retainKeys'] : [])];
    prop['x-kubernetes-patch-strategy'] = strategies.join(',');
    if (strategy.key) prop['x-kubernetes-patch-merge-key'] = strategy.key;
  }
  return defs;
}

function operations(def: ResourceDef, ref: string, v3: boolean): Record<string, Obj> {
  const gvk = { group: def.group, version: def.version, kind: def.kind };
  const op = (action: string, verb: string, body: boolean, params: Obj[] = []): Obj => ({
    operationId: `${verb}${def.kind}`,
    'x-kubernetes-action': action,
    'x-kubernetes-group-version-kind': gvk,
    parameters: v3 ? params.map((p) => ({ name: p.name, in: 'query', description: p.description, schema: { type: 'string', uniqueItems: true } })) : [...params, ...(body ? [{ name: 'body', in: 'body', required: true, schema: { $ref: ref } }] : [])],
    ...(v3 && body ? { requestBody: { content: { '*/*': { schema: { $ref: ref } } }, required: true } } : {}),
    responses: v3 ? { '200': { description: 'OK', content: { 'application/json': { schema: { $ref: ref } } } } } : { '200': { description: 'OK', schema: { $ref: ref } } },
  });
  const base = `/${def.group ? `apis/${def.group}` : 'api'}/${def.version}${def.namespaced ? '/namespaces/{namespace}' : ''}/${def.plural}`;
  return {
    [base]: { get: op('list', 'list', false), post: op('post', 'create', true, WRITE_PARAMS), delete: op('deletecollection', 'deleteCollection', false) },
    [`${base}/{name}`]: {
      get: op('get', 'read', false),
      put: op('put', 'replace', true, WRITE_PARAMS),
      patch: op('patch', 'patch', true, [...WRITE_PARAMS, QUERY('force', 'Force is going to "force" Apply requests.')]),
      delete: op('delete', 'delete', false, [QUERY('dryRun', 'When present, indicates that modifications should not be persisted.')]),
    },
  };
}

/** Serves /openapi/v2 and /openapi/v3, built once and cached as JSON text. */
export class OpenApi {
  private v2?: string;
  private v3Index?: string;
  private readonly v3 = new Map<string, { text: string; hash: string }>();
  private readonly defs: Record<string, Obj>;

  constructor(
    private readonly registry: ResourceRegistry,
    schemas: Schemas,
  ) {
    this.defs = annotatedDefinitions(schemas);
  }

  /** The Swagger 2.0 document. */
  swagger(): string {
    if (!this.v2) {
      const paths: Record<string, Obj> = {};
      for (const d of this.registry.all) Object.assign(paths, operations(d, `#/definitions/${d.definition}`, false));
      this.v2 = JSON.stringify({ swagger: '2.0', info: { title: 'Kubernetes', version: KUBERNETES_VERSION.gitVersion }, paths, definitions: this.defs });
    }
    return this.v2;
  }

  /** The OpenAPI v3 discovery document: one entry per group version. */
  index(): string {
    if (!this.v3Index) {
      const paths: Record<string, Obj> = {};
      for (const { group, version } of this.registry.groupVersions()) {
        const key = group ? `apis/${group}/${version}` : `api/${version}`;
        paths[key] = { serverRelativeURL: `/openapi/v3/${key}?hash=${this.groupVersion(key)!.hash}` };
      }
      this.v3Index = JSON.stringify({ paths });
    }
    return this.v3Index;
  }

  /** The OpenAPI v3 document of one group version (`api/v1`, `apis/apps/v1`), or undefined. */
  groupVersion(key: string): { text: string; hash: string } | undefined {
    const cached = this.v3.get(key);
    if (cached) return cached;
    const defs = this.registry.all.filter((d) => (d.group ? `apis/${d.group}/${d.version}` : `api/${d.version}`) === key);
    if (defs.length === 0) return undefined;
    const paths: Record<string, Obj> = {};
    for (const d of defs) Object.assign(paths, operations(d, `#/components/schemas/${d.definition}`, true));
    const needed = new Set<string>();
    const visit = (name: string): void => {
      if (needed.has(name) || !this.defs[name]) return;
      needed.add(name);
      const walk = (v: unknown): void => {
        if (Array.isArray(v)) v.forEach(walk);
        else if (v && typeof v === 'object') {
          for (const [k, x] of Object.entries(v)) {
            if (k === '$ref' && typeof x === 'string') visit(x.replace('#/definitions/', ''));
            else walk(x);
          }
        }
      };
      walk(this.defs[name]);
    };
    for (const d of defs) visit(d.definition);
    visit('io.k8s.apimachinery.pkg.apis.meta.v1.Status');
    const schemas: Record<string, unknown> = {};
    for (const name of needed) schemas[name] = JSON.parse(JSON.stringify(this.defs[name]).replaceAll('#/definitions/', '#/components/schemas/'));
    const text = JSON.stringify({ openapi: '3.0.0', info: { title: 'Kubernetes', version: KUBERNETES_VERSION.gitVersion }, paths, components: { schemas } });
    const entry = { text, hash: createHash('sha512').update(text).digest('hex').slice(0, 128).toUpperCase() };
    this.v3.set(key, entry);
    return entry;
  }
}

