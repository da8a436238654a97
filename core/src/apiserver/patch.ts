import fastJsonPatch from 'fast-json-patch';
import { ApiError, badRequest } from './status.js';
import type { Obj } from './resource.js';
import type { Schemas } from './schemas.js';
import { goFacts, goTypeOf } from './go-facts.js';

/** The patch media types the API accepts. */
export const PATCH_TYPES = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  apply: 'application/apply-patch+yaml',
} as const;

const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** RFC 7386 JSON merge patch: objects merge recursively, `null` deletes, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const out: Obj = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/**
 * RFC 6902 JSON patch.
 * @throws {ApiError} 422 when an operation cannot be applied (a failed `test`, a missing path)
 */
export function jsonPatch(target: unknown, patch: unknown): unknown {
  if (!Array.isArray(patch)) throw badRequest('json patch must be a JSON array of operations');
  try {
    return fastJsonPatch.applyPatch(structuredClone(target), patch as fastJsonPatch.Operation[], true, true).newDocument;
  } catch (err) {
    const e = err as { name?: string; message?: string };
    if (e.name === 'TEST_OPERATION_FAILED') throw new ApiError(422, 'Invalid', 'the server rejected our request due to an error in our request: testing value failed');
    throw new ApiError(422, 'Invalid', `the server rejected our request due to an error in our request: ${String(e.message ?? err).split('\n')[0]}`);
  }
}

/** How a field merges in a strategic merge patch (the Kubernetes types' patchStrategy/patchMergeKey tags). */
interface Strategy {
  /** The merge key of a list of objects; absent for a merged list of primitives (a set). */
  readonly key?: string;
  /** The field also honours `$retainKeys`. */
  readonly retainKeys?: boolean;
  /** Lists: merge by key instead of replacing. */
  readonly merge: boolean;
}

/** The strategy of `<definition>.<field>`, read from the Go types' tags; undefined: replace. */
export function patchStrategy(definition: string, field: string): Strategy | undefined {
  const f = goFacts()[goTypeOf(definition)]?.[field];
  if (!f?.patchStrategy) return undefined;
  const parts = f.patchStrategy.split(',');
  return { merge: parts.includes('merge'), retainKeys: parts.includes('retainKeys'), ...(f.patchMergeKey ? { key: f.patchMergeKey } : {}) };
}

/** Every field with a patch strategy, as `<definition>.<field>` (for the served OpenAPI). */
export function patchStrategies(): Array<[string, Strategy]> {
  const out: Array<[string, Strategy]> = [];
  for (const [type, fields] of Object.entries(goFacts())) {
    for (const name of Object.keys(fields)) {
      const definition = type.replace(/^k8s\.io\./, 'io.k8s.');
      const s = patchStrategy(definition, name);
      if (s) out.push([`${definition}.${name}`, s]);
    }
  }
  return out;
}

/**
 * Kubernetes strategic merge patch for a built-in type (`definition` names its schema): maps
 * merge, lists with a merge key merge by it, `$patch: replace|delete|merge`, `$retainKeys`,
 * `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>` directives are honoured.
 * @throws {ApiError} 400 for a malformed directive
 */
export function strategicMergePatch(target: unknown, patch: unknown, definition: string | undefined, schemas: Schemas): unknown {
  return smp(target, patch, definition, schemas);
}

function childDef(schemas: Schemas, def: string | undefined, field: string): { def?: string; items?: string; values?: string } {
  if (!def) return {};
  const s = schemas.resolve(schemas.definitions[def]);
  const prop = (s?.properties as Record<string, Obj> | undefined)?.[field];
  if (!prop) return {};
  const ref = schemas.refOf(prop);
  if (ref) return { def: ref };
  if (prop.type === 'array' && prop.items) return { items: schemas.refOf(prop.items as Obj) };
  if (prop.type === 'object' && prop.additionalProperties && typeof prop.additionalProperties === 'object') return { values: schemas.refOf(prop.additionalProperties as Obj) };
  return {};
}

function stripDirectives(v: unknown): unknown {
  if (Array.isArray(v)) return v.filter((e) => !(isObject(e) && e.$patch !== undefined && Object.keys(e).length === 1)).map(stripDirectives);
  if (!isObject(v)) return v;
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === '$patch' || k === '$retainKeys' || k.startsWith('$setElementOrder/') || k.startsWith('$deleteFromPrimitiveList/')) continue;
    out[k] = stripDirectives(x);
  }
  return out;
}

function smp(target: unknown, patch: unknown, def: string | undefined, schemas: Schemas): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const directive = patch.$patch;
  if (directive === 'replace') return stripDirectives(patch);
  if (directive === 'delete') return undefined;
  if (directive !== undefined && directive !== 'merge') throw badRequest(`unknown patch type: ${JSON.stringify(directive)}`);
  const out: Obj = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$setElementOrder/') && !Array.isArray(v)) throw badRequest(`${k} must be a list`);
    if (k === '$retainKeys' && !Array.isArray(v)) throw badRequest('$retainKeys must be a list');
    if (k === '$patch' || k === '$retainKeys' || k.startsWith('$setElementOrder/')) continue;
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      if (!Array.isArray(v)) throw badRequest(`${k} must be a list`);
      if (Array.isArray(out[field])) out[field] = (out[field] as unknown[]).filter((x) => !v.includes(x));
      continue;
    }
    if (v === null) {
      delete out[k];
      continue;
    }
    const strategy = def ? patchStrategy(def, k) : undefined;
    const child = childDef(schemas, def, k);
    if (Array.isArray(v)) {
      out[k] = strategy?.merge ? mergeList(out[k], v, strategy, child.items, schemas) : stripDirectives(v);
    } else if (isObject(v)) {
      if (child.values) {
        const map: Obj = isObject(out[k]) ? { ...(out[k] as Obj) } : {};
        for (const [mk, mv] of Object.entries(v)) {
          if (mv === null) delete map[mk];
          else map[mk] = smp(map[mk], mv, child.values, schemas);
        }
        out[k] = map;
      } else {
        const merged = smp(out[k], v, child.def, schemas);
        if (merged === undefined) delete out[k];
        else out[k] = merged;
      }
    } else {
      out[k] = v;
    }
  }
  for (const [k, order] of Object.entries(patch)) {
    if (!k.startsWith('$setElementOrder/') || !Array.isArray(order)) continue;
    const field = k.slice('$setElementOrder/'.length);
    const strategy = def ? patchStrategy(def, field) : undefined;
    if (Array.isArray(out[field])) out[field] = reorder(out[field] as unknown[], order, strategy?.key);
  }
  if (Array.isArray(patch.$retainKeys)) {
    const keep = new Set(patch.$retainKeys as string[]);
    for (const k of Object.keys(out)) if (!keep.has(k)) delete out[k];
  }
  return out;
}

/**
 * Applies a `$setElementOrder` directive: the listed elements come in the listed order, the
 * others keep their places relative to each other after them (the client's order wins).
 */
function reorder(list: unknown[], order: unknown[], key: string | undefined): unknown[] {
  const id = (v: unknown): string => JSON.stringify(key && isObject(v) ? v[key] : v);
  const wanted = order.map((o) => JSON.stringify(key && isObject(o) ? o[key] : o));
  const listed = wanted.flatMap((w) => list.filter((v) => id(v) === w));
  const rest = list.filter((v) => !wanted.includes(id(v)));
  return [...listed, ...rest];
}

function mergeList(target: unknown, patch: unknown[], strategy: Strategy, itemDef: string | undefined, schemas: Schemas): unknown[] {
  const original = Array.isArray(target) ? target : [];
  if (patch.some((e) => isObject(e) && e.$patch === 'replace')) return stripDirectives(patch) as unknown[];
  if (!strategy.key) {
    const out = [...original];
    for (const e of patch) if (!out.some((x) => JSON.stringify(x) === JSON.stringify(e))) out.push(e);
    return out;
  }
  const key = strategy.key;
  const out = [...original];
  for (const e of patch) {
    if (!isObject(e)) throw badRequest(`strategic merge patch: elements of a list merged by "${key}" must be objects`);
    const index = out.findIndex((x) => isObject(x) && x[key] === e[key]);
    if (e.$patch === 'delete') {
      if (index >= 0) out.splice(index, 1);
      continue;
    }
    if (index >= 0) out[index] = smp(out[index], e, itemDef, schemas);
    else out.push(smp(undefined, e, itemDef, schemas));
  }
  return out;
}
