import { randomUUID, randomInt } from 'node:crypto';
import {
  ConflictError,
  KeyExistsError,
  NotFoundError,
  type Store,
  type StoreEntry,
} from '../store/index.js';
import { AdmissionDenied, type AdmissionRequest } from '@kubernel/sdk';
import type { RequestChain, UserInfo } from './chain.js';
import { jsonPatch, mergePatch, PATCH_TYPES, strategicMergePatch } from './patch.js';
import { listPrefix, storeKey } from './registry.js';
import { selectorMatches } from './builtin/rules.js';
import type { RequestInfo } from './request-info.js';
import { apiVersionOf, type HookContext, type Obj, type ResourceDef } from './resource.js';
import { fieldPath, type Schemas } from './schemas.js';
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from './selectors.js';
import { alreadyExists, ApiError, badRequest, cause, conflict, invalid, methodNotAllowed, notFound, type StatusCause } from './status.js';

/** What a handler answers (watch streams itself). */
export interface Reply {
  readonly status: number;
  readonly body: unknown;
  /** Warning headers (RFC 7234 form is added by the server). */
  readonly warnings?: readonly string[];
}

/** The parts of a resource request the handlers use. */
export interface RestRequest {
  readonly info: RequestInfo;
  readonly def: ResourceDef;
  readonly query: URLSearchParams;
  readonly user: UserInfo;
  /** The parsed body (create, update, delete options), or the raw patch document. */
  readonly body: unknown;
  /** Content-Type of a patch. */
  readonly patchType?: string;
}

const GENERATE_CHARS = 'bcdfghjklmnpqrstvwxz2456789';
const nowRfc3339 = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const clone = <T>(v: T): T => structuredClone(v) as T;

/** Serves the verbs of every registered resource on the store: one generic implementation. */
export class RestHandlers {
  constructor(
    private readonly store: Store,
    private readonly schemas: Schemas,
    private readonly chain: RequestChain,
    private readonly hooks: HookContext,
  ) {}

  // ---- reads -------------------------------------------------------------------------------

  /** GET of one object (or of its status/scale subresource). */
  async get(r: RestRequest): Promise<Reply> {
    const entry = await this.load(r, r.query.get('resourceVersion') !== '0');
    if (r.info.subresource === 'scale') return { status: 200, body: this.scaleOf(r.def, entry.value as Obj) };
    return { status: 200, body: entry.value };
  }

  /** The selector filter of a list or watch request. */
  filterOf(def: ResourceDef, query: URLSearchParams): ((v: unknown) => boolean) | undefined {
    const labels = parseLabelSelector(query.get('labelSelector'));
    const supported = new Set(['metadata.name', 'metadata.namespace', ...Object.keys(def.fields ?? {})]);
    const fields = parseFieldSelector(query.get('fieldSelector'), supported);
    if (labels.length === 0 && fields.length === 0) return undefined;
    return (v: unknown) => {
      const o = v as Obj;
      if (!matchesLabels(labels, o.metadata?.labels)) return false;
      return matchesFields(fields, (f) => (f === 'metadata.name' ? o.metadata?.name ?? '' : f === 'metadata.namespace' ? o.metadata?.namespace ?? '' : def.fields![f]!(o)));
    };
  }

  /** LIST, with selectors, pagination and resourceVersion semantics. */
  async list(r: RestRequest): Promise<{ items: Obj[]; meta: Obj }> {
    const filter = this.filterOf(r.def, r.query);
    const limit = r.query.has('limit') ? Number(r.query.get('limit')) : undefined;
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) throw badRequest(`invalid limit: ${r.query.get('limit')}`);
    const rv = r.query.get('resourceVersion');
    const match = r.query.get('resourceVersionMatch');
    const cont = r.query.get('continue') || undefined;
    if (cont && rv) throw badRequest('specifying resource version is not allowed when using continue');
    const revision = rv && rv !== '0' ? Number(rv) : undefined;
    if (rv && (!/^\d+$/.test(rv))) throw badRequest(`invalid resource version: ${rv}`);
    const result = await this.store.list(listPrefix(r.def, r.info.namespace), {
      ...(limit ? { limit } : {}),
      ...(cont ? { continue: cont } : {}),
      ...(filter ? { filter } : {}),
      ...(match === 'Exact' && revision !== undefined ? { atRevision: revision } : {}),
      ...(match !== 'Exact' && revision !== undefined ? { minRevision: revision } : {}),
      consistent: rv === null || rv === '',
    });
    const meta: Obj = { resourceVersion: String(result.revision) };
    if (result.continue) meta.continue = result.continue;
    return { items: result.items.map((e) => e.value as Obj), meta };
  }

  // ---- writes ------------------------------------------------------------------------------

  /** POST: create an object (or a pod binding). */
  async create(r: RestRequest): Promise<Reply> {
    const { def, info } = r;
    if (info.subresource === 'binding' && def.kind === 'Pod') return this.bind(r);
    if (info.subresource === 'eviction' && def.kind === 'Pod' && def.group === '') return this.evict(r);
    if (info.subresource) throw methodNotAllowed('create', `${def.plural}/${info.subresource}`);
    if (info.name) throw methodNotAllowed('create', `${def.plural}/${info.name}`);
    const dryRun = this.dryRun(r.query);
    const warnings: string[] = [];
    const o = this.decode(r, r.body, warnings);
    const meta = o.metadata as Obj;
    if (meta.resourceVersion) throw badRequest('resourceVersion should not be set on objects to be created');
    if (!meta.name && meta.generateName) {
      meta.name = `${meta.generateName}${Array.from({ length: 5 }, () => GENERATE_CHARS[randomInt(GENERATE_CHARS.length)]).join('')}`;
    }
    if (!meta.name) throw invalid(def.kind, def.group, '', [cause('FieldValueRequired', 'metadata.name', 'Required value: name or generateName is required')]);
    for (const k of ['uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'managedFields', 'selfLink']) delete meta[k];
    meta.uid = randomUUID();
    meta.creationTimestamp = nowRfc3339();
    if (this.tracksGeneration(def)) meta.generation = 1;
    def.defaults?.(o);
    const admission = this.admission('CREATE', r, o, undefined, dryRun, warnings);
    await this.admit(admission, 'mutate');
    if (admission) def.defaults?.(o); // what mutating admission added gets its defaults too
    def.prepareForCreate?.(o, r.user);
    this.validate(def, o, undefined);
    await this.admit(admission, 'validate');
    await def.beforeCreate?.(o, this.hooks, dryRun);
    if (dryRun) return { status: 201, body: o, warnings };
    try {
      const entry = await this.store.create(storeKey(def, info.namespace, meta.name), o);
      meta.resourceVersion = String(entry.revision);
      return { status: 201, body: o, warnings };
    } catch (err) {
      if (def.afterDelete) await def.afterDelete(o, this.hooks).catch(() => undefined);
      if (err instanceof KeyExistsError) throw alreadyExists(def.plural, def.group, meta.name);
      throw err;
    }
  }

  /** PUT: replace an object, or its status or scale. */
  async update(r: RestRequest): Promise<Reply> {
    const warnings: string[] = [];
    if (r.info.subresource === 'scale') return this.updateScale(r, () => r.body);
    const body = this.decode(r, r.body, warnings);
    if (body.metadata?.name !== r.info.name) {
      throw badRequest(`the name of the object (${body.metadata?.name}) does not match the name on the URL (${r.info.name})`);
    }
    const precondition = body.metadata?.resourceVersion as string | undefined;
    return this.write(r, precondition, () => body, warnings);
  }

  /** PATCH: JSON patch, merge patch or strategic merge patch of an object or subresource. */
  async patch(r: RestRequest): Promise<Reply> {
    const type = r.patchType;
    if (type === PATCH_TYPES.apply) throw new ApiError(415, 'UnsupportedMediaType', 'server-side apply (application/apply-patch+yaml) is not supported yet; use client-side kubectl apply');
    if (type !== PATCH_TYPES.json && type !== PATCH_TYPES.merge && type !== PATCH_TYPES.strategic) {
      throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json`);
    }
    const apply = (current: unknown, definition: string): unknown => {
      if (type === PATCH_TYPES.json) return jsonPatch(current, r.body);
      if (!isObject(r.body)) throw badRequest('a merge patch must be a JSON object');
      return type === PATCH_TYPES.merge ? mergePatch(current, r.body) : strategicMergePatch(current, r.body, definition, this.schemas);
    };
    if (r.info.subresource === 'scale') return this.updateScale(r, (scale) => apply(scale, 'io.k8s.api.autoscaling.v1.Scale'));
    const warnings: string[] = [];
    let precondition: string | undefined;
    return this.write(
      r,
      undefined,
      (current) => {
        const patched = apply(current, r.def.definition);
        if (!isObject(patched)) throw badRequest('the patch did not produce an object');
        const rv = (patched as Obj).metadata?.resourceVersion;
        // A resourceVersion in the patch is a precondition (it differs from the current one only if the patch set it).
        if (rv !== undefined && rv !== (current as Obj).metadata?.resourceVersion) precondition = String(rv);
        const decoded = this.decode(r, patched, warnings);
        if (precondition !== undefined && precondition !== (current as Obj).metadata?.resourceVersion) {
          throw conflict(r.def.plural, r.def.group, r.info.name!, 'the object has been modified; please apply your changes to the latest version and try again');
        }
        return decoded;
      },
      warnings,
    );
  }

  /**
   * The shared update path of PUT and PATCH: reads the current object, computes the new one,
   * keeps what the request may not change, validates, admits, and compare-and-swaps, retrying
   * on a race when the client gave no resourceVersion.
   */
  private async write(r: RestRequest, precondition: string | undefined, next: (current: Obj) => Obj, warnings: string[]): Promise<Reply> {
    const { def, info } = r;
    const dryRun = this.dryRun(r.query);
    const key = storeKey(def, info.namespace, info.name!);
    for (let attempt = 0; ; attempt++) {
      const entry = await this.load(r, true);
      const old = entry.value as Obj;
      if (precondition !== undefined && precondition !== old.metadata.resourceVersion) {
        throw conflict(def.plural, def.group, info.name!, 'the object has been modified; please apply your changes to the latest version and try again');
      }
      const o = next(clone(old));
      // A uid in the body is a precondition (kubectl and controllers use it to be sure they change the object they read).
      const uid = isObject(o.metadata) ? o.metadata.uid : undefined;
      if (uid !== undefined && uid !== old.metadata.uid) {
        throw conflict(def.plural, def.group, info.name!, `Precondition failed: UID in precondition: ${String(uid)}, UID in object meta: ${old.metadata.uid}`);
      }
      this.keepImmutableMeta(o, old);
      if (info.subresource === 'status') {
        const status = o.status;
        const result = clone(old);
        result.status = status;
        Object.assign(o, result);
        if (status === undefined) delete o.status;
      } else if (info.subresource === 'finalize' && def.kind === 'Namespace' && def.group === '') {
        // namespaces/<name>/finalize changes spec.finalizers only.
        const finalizers = (o.spec as Obj | undefined)?.finalizers;
        const result = clone(old);
        result.spec = { ...(result.spec ?? {}), finalizers: Array.isArray(finalizers) ? finalizers : [] };
        if ((result.spec.finalizers as unknown[]).length === 0) delete result.spec.finalizers;
        for (const k of Object.keys(o)) delete o[k];
        Object.assign(o, result);
      } else if (info.subresource === 'binding') {
        // The binding set spec.nodeName and the PodScheduled condition itself.
      } else if (info.subresource && def.subresources?.includes(info.subresource)) {
        // The resource's prepareForUpdate decides what this subresource changes.
      } else if (info.subresource) {
        throw methodNotAllowed(r.info.verb, `${def.plural}/${info.subresource}`);
      } else if (def.statusSubresource) {
        if (old.status === undefined) delete o.status;
        else o.status = clone(old.status);
        if (def.kind === 'Namespace' && def.group === '') {
          // spec.finalizers change only through namespaces/<name>/finalize, as Kubernetes.
          o.spec = { ...(isObject(o.spec) ? o.spec : {}) };
          if (old.spec?.finalizers === undefined) delete o.spec.finalizers;
          else o.spec.finalizers = clone(old.spec.finalizers);
        }
      }
      def.prepareForUpdate?.(o, old, info.subresource ?? '');
      if (this.tracksGeneration(def) && !info.subresource && !specEqual(o, old)) {
        o.metadata.generation = (old.metadata.generation ?? 1) + 1;
      }
      def.defaults?.(o);
      const admission = this.admission('UPDATE', r, o, old, dryRun, warnings);
      await this.admit(admission, 'mutate');
      if (admission) def.defaults?.(o);
      this.validate(def, o, info.subresource === 'binding' ? undefined : old);
      await this.admit(admission, 'validate');
      await def.beforeUpdate?.(o, old, this.hooks, dryRun);
      if (deepEqual(o, old)) return { status: 200, body: old, warnings };
      // Finalizers emptied on an object marked for deletion: the update completes the delete.
      // (Not namespaces: their deletion completes on a DELETE once spec.finalizers are gone too.)
      const isNamespace = def.kind === 'Namespace' && def.group === '';
      if (o.metadata.deletionTimestamp && ((o.metadata.finalizers ?? []) as unknown[]).length === 0 && !def.gracefulDelete?.(o) && !isNamespace) {
        if (dryRun) return { status: 200, body: o, warnings };
        try {
          await this.store.delete(key, { expectedRevision: entry.revision });
        } catch (err) {
          if (err instanceof ConflictError && attempt < 10) continue;
          throw err;
        }
        await def.afterDelete?.(o, this.hooks);
        return { status: 200, body: o, warnings };
      }
      if (dryRun) return { status: 200, body: o, warnings };
      try {
        const written = await this.store.update(key, o, entry.revision);
        o.metadata.resourceVersion = String(written.revision);
        return { status: 200, body: o, warnings };
      } catch (err) {
        if (err instanceof ConflictError && precondition === undefined && attempt < 10) continue;
        if (err instanceof ConflictError) throw conflict(def.plural, def.group, info.name!, 'the object has been modified; please apply your changes to the latest version and try again');
        if (err instanceof NotFoundError) throw notFound(def.plural, def.group, info.name!);
        throw err;
      }
    }
  }

  /** DELETE of one object, with preconditions, propagation policy and graceful deletion. */
  async delete(r: RestRequest): Promise<Reply> {
    const { def, info } = r;
    if (info.subresource) throw methodNotAllowed('delete', `${def.plural}/${info.subresource}`);
    const options = this.deleteOptions(r);
    const dryRun = options.dryRun;
    const key = storeKey(def, info.namespace, info.name!);
    for (let attempt = 0; ; attempt++) {
      const entry = await this.load(r, true);
      const old = entry.value as Obj;
      const pre = options.preconditions;
      if (pre?.uid && pre.uid !== old.metadata.uid) {
        throw conflict(def.plural, def.group, info.name!, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${old.metadata.uid}`);
      }
      if (pre?.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion) {
        throw conflict(def.plural, def.group, info.name!, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${old.metadata.resourceVersion}`);
      }
      const admission = this.admission('DELETE', r, undefined, old, dryRun, []);
      await this.admit(admission, 'mutate');
      await this.admit(admission, 'validate');
      const o = clone(old);
      const finalizers = new Set<string>((o.metadata.finalizers ?? []) as string[]);
      if (options.propagationPolicy === 'Foreground') finalizers.add('foregroundDeletion');
      if (options.propagationPolicy === 'Orphan') finalizers.add('orphan');
      const defaultGrace = def.gracefulDelete?.(o);
      const grace = defaultGrace === undefined ? 0 : (options.gracePeriodSeconds ?? defaultGrace);
      if (def.kind === 'Namespace' && def.group === '') return this.deleteNamespace(r, entry, dryRun);
      if (finalizers.size > 0 || grace > 0) {
        // Marked, not removed: finalizers' owners (or the node agent, for a running pod) finish it.
        if (o.metadata.deletionTimestamp && finalizers.size === ((o.metadata.finalizers ?? []) as unknown[]).length) {
          const shorter = grace > 0 && grace < (o.metadata.deletionGracePeriodSeconds ?? Infinity);
          if (!shorter) return { status: 200, body: old };
        }
        o.metadata.finalizers = finalizers.size > 0 ? [...finalizers] : undefined;
        if (o.metadata.finalizers === undefined) delete o.metadata.finalizers;
        o.metadata.deletionTimestamp = new Date(Date.now() + grace * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
        o.metadata.deletionGracePeriodSeconds = grace;
        if (dryRun) return { status: 200, body: o };
        try {
          const written = await this.store.update(key, o, entry.revision);
          o.metadata.resourceVersion = String(written.revision);
          return { status: 200, body: o };
        } catch (err) {
          if (err instanceof ConflictError && attempt < 10) continue;
          throw err;
        }
      }
      if (dryRun) return { status: 200, body: old };
      try {
        await this.store.delete(key, { expectedRevision: entry.revision });
      } catch (err) {
        if (err instanceof ConflictError && attempt < 10) continue;
        if (err instanceof NotFoundError) throw notFound(def.plural, def.group, info.name!);
        throw err;
      }
      await def.afterDelete?.(old, this.hooks);
      return { status: 200, body: old };
    }
  }

  /** DELETE of a collection: every object the selectors match. */
  async deleteCollection(r: RestRequest): Promise<Reply> {
    const { items } = await this.list({ ...r, query: withoutPaging(r.query) });
    const deleted: Obj[] = [];
    for (const item of items) {
      try {
        const reply = await this.delete({ ...r, info: { ...r.info, verb: 'delete', name: item.metadata.name, namespace: item.metadata.namespace } });
        deleted.push(reply.body as Obj);
      } catch (err) {
        if (!(err instanceof ApiError && err.code === 404)) throw err;
      }
    }
    return { status: 200, body: { kind: `${r.def.kind}List`, apiVersion: apiVersionOf(r.def), metadata: {}, items: deleted } };
  }

  // ---- helpers -----------------------------------------------------------------------------

  /** Reads the addressed object. @throws {ApiError} 404 */
  private async load(r: RestRequest, consistent: boolean): Promise<StoreEntry> {
    const entry = await this.store.get(storeKey(r.def, r.info.namespace, r.info.name!), { consistent });
    if (!entry) throw notFound(r.def.plural, r.def.group, r.info.name!);
    return entry;
  }

  private dryRun(query: URLSearchParams): boolean {
    const values = query.getAll('dryRun');
    for (const v of values) if (v !== 'All') throw badRequest(`dryRun: Unsupported value: "${v}": supported values: "All"`);
    return values.length > 0;
  }

  private tracksGeneration(def: ResourceDef): boolean {
    const s = this.schemas.definitions[def.definition];
    return Boolean(s?.properties?.spec);
  }

  /**
   * Checks and normalises a request body as an object of `def`: kind and apiVersion, namespace,
   * schema (types and, per fieldValidation, unknown fields). Unknown fields are dropped.
   */
  private decode(r: RestRequest, body: unknown, warnings: string[]): Obj {
    const { def, info } = r;
    if (!isObject(body)) throw badRequest(`the body of the request must be a ${def.kind} object`);
    // Clients send null for unset optional fields (Go's zero values): null means absent. (This
    // deep copy is also the request's own copy of the body.)
    const o = withoutNulls(body) as Obj;
    const expected = apiVersionOf(def);
    if (o.apiVersion !== undefined && o.apiVersion !== expected) {
      throw badRequest(`the API version in the data (${o.apiVersion}) does not match the expected API version (${expected})`);
    }
    if (o.kind !== undefined && o.kind !== def.kind) {
      throw badRequest(`the kind in the data (${String(o.kind)}) does not match the expected kind (${def.kind})`);
    }
    o.apiVersion = expected;
    o.kind = def.kind;
    if (o.metadata === undefined || o.metadata === null) o.metadata = {};
    if (!isObject(o.metadata)) throw badRequest(`${def.kind} in version "${def.version}" cannot be handled as a ${def.kind}: metadata must be an object`);
    if (def.namespaced) {
      if (o.metadata.namespace !== undefined && o.metadata.namespace !== '' && o.metadata.namespace !== info.namespace) {
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      o.metadata.namespace = info.namespace;
    } else {
      delete o.metadata.namespace;
    }
    const { types } = this.schemas.check(def.definition, o);
    if (types.length > 0) {
      const e = types[0]!;
      const what = e.keyword === 'type' ? `expected ${(e.params as { type: string | string[] }).type}, got ${describe(valueAt(o, e.instancePath))}` : `${String(valueAt(o, e.instancePath))} overflows a 32-bit integer`;
      throw badRequest(`${def.kind} in version "${def.version}" cannot be handled as a ${def.kind}: ${fieldPath(e.instancePath)}: ${what}`);
    }
    const validation = r.query.get('fieldValidation') ?? 'Warn';
    if (!['Strict', 'Warn', 'Ignore'].includes(validation)) throw badRequest(`fieldValidation: Unsupported value: "${validation}": supported values: "Ignore", "Strict", "Warn"`);
    const unknown = this.schemas.unknownFields(def.definition, o);
    if (unknown.length > 0) {
      if (validation === 'Strict') {
        throw badRequest(`${def.kind} in version "${def.version}" cannot be handled as a ${def.kind}: strict decoding error: ${unknown.map((f) => `unknown field "${f}"`).join(', ')}`);
      }
      if (validation === 'Warn') warnings.push(...unknown.map((f) => `unknown field "${f}"`));
      for (const f of unknown) dropField(o, f);
    }
    return o;
  }

  /** Schema-required fields and the resource's own rules; 422 naming every bad field. */
  private validate(def: ResourceDef, o: Obj, old: Obj | undefined): void {
    const causes: StatusCause[] = [];
    for (const e of this.schemas.check(def.definition, o).required) {
      const field = fieldPath(e.instancePath, (e.params as { missingProperty: string }).missingProperty);
      causes.push(cause('FieldValueRequired', field, 'Required value'));
    }
    causes.push(...(def.validate?.(o) ?? []));
    if (old) {
      if (o.metadata.name !== old.metadata.name) causes.push(cause('FieldValueInvalid', 'metadata.name', 'field is immutable'));
      causes.push(...(def.validateUpdate?.(o, old) ?? []));
    }
    const seen = new Set<string>();
    const unique = causes.filter((c) => {
      const k = `${c.field}\u0000${c.message}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
    if (unique.length > 0) throw invalid(def.kind, def.group, o.metadata?.name ?? '', unique);
  }

  /** Fields a client never changes through an update. */
  private keepImmutableMeta(o: Obj, old: Obj): void {
    if (!isObject(o.metadata)) o.metadata = {};
    for (const k of ['uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation', 'namespace']) {
      if (old.metadata[k] === undefined) delete o.metadata[k];
      else o.metadata[k] = old.metadata[k];
    }
    delete o.metadata.managedFields;
    delete o.metadata.selfLink;
    o.metadata.resourceVersion = old.metadata.resourceVersion;
    o.apiVersion = old.apiVersion;
    o.kind = old.kind;
  }

  /** The admission request for a write, or undefined when no admission step is installed. */
  private admission(operation: AdmissionRequest['operation'], r: RestRequest, object: Obj | undefined, oldObject: Obj | undefined, dryRun: boolean, warnings: string[]): AdmissionRequest | undefined {
    if (this.chain.admission().length === 0) return undefined;
    const def = r.def;
    return {
      uid: randomUUID(),
      operation,
      kind: { group: def.group, version: def.version, kind: def.kind },
      resource: { group: def.group, version: def.version, resource: def.plural },
      subresource: r.info.subresource ?? '',
      namespace: r.info.namespace ?? '',
      name: object?.metadata?.name ?? r.info.name ?? '',
      object,
      oldObject,
      user: r.user,
      dryRun,
      warning: (text) => void warnings.push(text),
    };
  }

  /**
   * One admission phase: every step's `admit` (mutate, before schema validation, as Kubernetes
   * runs mutating admission) or every step's `validate` (after it), in distribution order.
   */
  private async admit(request: AdmissionRequest | undefined, phase: 'mutate' | 'validate'): Promise<void> {
    if (!request) return;
    try {
      for (const step of this.chain.admission()) {
        const run = phase === 'mutate' ? step.admit : step.validate;
        if (run && (!step.handles || step.handles(request))) await run.call(step, request);
      }
    } catch (err) {
      if (!(err instanceof AdmissionDenied)) throw err;
      const reason = ({ 400: 'BadRequest', 403: 'Forbidden', 404: 'NotFound', 409: 'Conflict', 422: 'Invalid', 429: 'TooManyRequests', 500: 'InternalError' } as const)[err.code];
      throw new ApiError(err.code, reason, err.message, {
        ...(err.details?.name !== undefined ? { name: err.details.name } : request.name ? { name: request.name } : {}),
        ...((err.details?.group ?? request.resource.group) ? { group: err.details?.group ?? request.resource.group } : {}),
        kind: err.details?.kind ?? request.resource.resource,
        ...(err.causes.length ? { causes: err.causes.map((c) => ({ reason: c.reason ?? 'FieldValueForbidden', message: c.message, field: c.field })) } : {}),
      });
    }
  }

  private deleteOptions(r: RestRequest): { gracePeriodSeconds?: number; propagationPolicy?: string; preconditions?: Obj; dryRun: boolean } {
    const body = isObject(r.body) ? r.body : {};
    if (body.kind !== undefined && body.kind !== 'DeleteOptions') throw badRequest(`the body of a delete must be DeleteOptions, not ${String(body.kind)}`);
    const q = r.query;
    const grace = q.has('gracePeriodSeconds') ? Number(q.get('gracePeriodSeconds')) : body.gracePeriodSeconds;
    if (grace !== undefined && (typeof grace !== 'number' || !Number.isInteger(grace) || grace < 0)) throw badRequest(`invalid gracePeriodSeconds: ${String(grace)}`);
    const policy = q.get('propagationPolicy') ?? body.propagationPolicy ?? (body.orphanDependents === true ? 'Orphan' : undefined);
    if (policy !== undefined && !['Orphan', 'Background', 'Foreground'].includes(policy)) {
      throw invalid('DeleteOptions', '', '', [cause('FieldValueNotSupported', 'propagationPolicy', `Unsupported value: "${policy}": supported values: "Foreground", "Background", "Orphan", "nil"`)]);
    }
    const dryRunValues = [...q.getAll('dryRun'), ...((body.dryRun ?? []) as string[])];
    for (const v of dryRunValues) if (v !== 'All') throw badRequest(`dryRun: Unsupported value: "${v}": supported values: "All"`);
    return {
      ...(grace !== undefined ? { gracePeriodSeconds: grace } : {}),
      ...(policy !== undefined ? { propagationPolicy: policy } : {}),
      ...(isObject(body.preconditions) ? { preconditions: body.preconditions } : {}),
      dryRun: dryRunValues.length > 0,
    };
  }

  /**
   * Namespace deletion as Kubernetes does it: the first DELETE marks the namespace Terminating;
   * the namespace controller (a plugin) deletes its content, removes the `kubernetes` finalizer
   * through `namespaces/<name>/finalize` and deletes again, which removes a namespace whose
   * spec and metadata finalizers are all gone. A namespace without finalizers goes at once.
   */
  private async deleteNamespace(r: RestRequest, entry: StoreEntry, dryRun: boolean): Promise<Reply> {
    const old = entry.value as Obj;
    const finalized = ((old.spec?.finalizers ?? []) as unknown[]).length === 0 && ((old.metadata.finalizers ?? []) as unknown[]).length === 0;
    if (finalized) {
      if (dryRun) return { status: 200, body: old };
      try {
        await this.store.delete(entry.key, { expectedRevision: entry.revision });
      } catch (err) {
        if (err instanceof ConflictError) throw conflict('namespaces', '', r.info.name!, 'the namespace changed while it was being deleted; try again');
        if (!(err instanceof NotFoundError)) throw err;
      }
      return { status: 200, body: old };
    }
    if (old.status?.phase === 'Terminating') return { status: 200, body: old };
    const o = clone(old);
    o.metadata.deletionTimestamp = nowRfc3339();
    o.metadata.deletionGracePeriodSeconds = 0;
    o.status = { ...(o.status ?? {}), phase: 'Terminating' };
    if (dryRun) return { status: 200, body: o };
    const written = await this.store.update(storeKey(r.def, undefined, r.info.name!), o, entry.revision);
    o.metadata.resourceVersion = String(written.revision);
    return { status: 200, body: o };
  }

  private scaleOf(def: ResourceDef, o: Obj): Obj {
    if (!def.scale) throw notFound(`${def.plural}/scale`, def.group, o.metadata.name);
    return {
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: { name: o.metadata.name, namespace: o.metadata.namespace, uid: o.metadata.uid, resourceVersion: o.metadata.resourceVersion, creationTimestamp: o.metadata.creationTimestamp },
      spec: { replicas: def.scale.specReplicas(o) },
      status: { replicas: def.scale.statusReplicas(o), selector: def.scale.selector(o) },
    };
  }

  private async updateScale(r: RestRequest, next: (scale: Obj) => unknown): Promise<Reply> {
    const { def } = r;
    if (!def.scale) throw notFound(`${def.plural}/scale`, def.group, r.info.name!);
    let result: Obj | undefined;
    const reply = await this.write({ ...r, info: { ...r.info, subresource: undefined } }, undefined, (current) => {
      const scale = next(this.scaleOf(def, current));
      if (!isObject(scale) || (scale.kind !== undefined && scale.kind !== 'Scale')) throw badRequest('the body of a scale request must be an autoscaling/v1 Scale');
      const rv = scale.metadata?.resourceVersion;
      if (rv && rv !== current.metadata.resourceVersion) throw conflict(def.plural, def.group, r.info.name!, 'the object has been modified; please apply your changes to the latest version and try again');
      const replicas = scale.spec?.replicas;
      if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
        throw invalid('Scale', 'autoscaling', r.info.name!, [cause('FieldValueInvalid', 'spec.replicas', `Invalid value: ${JSON.stringify(replicas)}: must be greater than or equal to 0`)]);
      }
      def.scale!.setReplicas(current, replicas);
      result = current;
      return current;
    }, []);
    return { status: reply.status, body: this.scaleOf(def, (reply.body as Obj) ?? result) };
  }

  /** POST pods/<name>/binding: assigns a pod to a node, once. */
  /**
   * `pods/<name>/eviction` (policy/v1 Eviction): deletes the pod unless that would break its
   * PodDisruptionBudget: 429 TooManyRequests naming the budget when `disruptionsAllowed` is 0
   * (or its status is not current); otherwise the budget's `disruptionsAllowed` goes down and the
   * pod is recorded in `disruptedPods` by compare-and-swap before the pod is deleted, so two
   * concurrent evictions never spend the same disruption. `kubectl drain` uses this.
   */
  private async evict(r: RestRequest): Promise<Reply> {
    const body = isObject(r.body) ? r.body : {};
    if (body.kind !== undefined && body.kind !== 'Eviction') throw badRequest(`the body of an eviction must be an Eviction, not ${String(body.kind)}`);
    const name = r.info.name!;
    if (isObject(body.metadata) && body.metadata.name !== undefined && body.metadata.name !== name) {
      throw badRequest(`name in URL does not match name in Eviction object`);
    }
    const namespace = r.info.namespace!;
    const deleteOptions = isObject(body.deleteOptions) ? body.deleteOptions : {};
    const deleteReq: RestRequest = { ...r, info: { ...r.info, subresource: undefined, verb: 'delete' }, body: { ...deleteOptions, kind: 'DeleteOptions' } };
    for (let attempt = 0; attempt < 10; attempt++) {
      const podEntry = await this.load({ ...r, info: { ...r.info, subresource: undefined } }, true);
      const pod = podEntry.value as Obj;
      if (evictionIgnoresBudget(pod)) return this.evicted(await this.delete(deleteReq));
      const { items } = await this.store.list(`${PDB_PREFIX}${namespace}/`);
      const budgets = items.filter((e) => selectorMatches((e.value as Obj).spec?.selector, pod.metadata.labels));
      if (budgets.length === 0) return this.evicted(await this.delete(deleteReq));
      if (budgets.length > 1) throw new ApiError(500, 'InternalError', 'This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.');
      const entry = budgets[0]!;
      const pdb = clone(entry.value as Obj);
      const status = (pdb.status ?? {}) as Obj;
      const refuse = (message: string): never => {
        throw new ApiError(429, 'TooManyRequests', 'Cannot evict pod as it would violate the pod\'s disruption budget.', {
          causes: [{ reason: 'DisruptionBudget', message, field: '' }],
        });
      };
      // An unhealthy pod may go when the budget is met anyway (unhealthyPodEvictionPolicy IfHealthyBudget, the default; AlwaysAllow lets it go regardless).
      if (!podReady(pod) && (pdb.spec?.unhealthyPodEvictionPolicy === 'AlwaysAllow' || Number(status.currentHealthy ?? 0) >= Number(status.desiredHealthy ?? 0))) {
        if (status.observedGeneration !== undefined && status.observedGeneration >= (pdb.metadata.generation ?? 1)) return this.evicted(await this.delete(deleteReq));
      }
      if (status.observedGeneration === undefined || status.observedGeneration < (pdb.metadata.generation ?? 1)) {
        refuse(`The disruption budget ${pdb.metadata.name} is still being processed by the server.`);
      }
      const allowed = Number(status.disruptionsAllowed ?? 0);
      if (allowed <= 0) refuse(`The disruption budget ${pdb.metadata.name} needs ${status.desiredHealthy ?? 0} healthy pods and has ${status.currentHealthy ?? 0} currently`);
      const disrupted = { ...((status.disruptedPods ?? {}) as Record<string, string>) };
      if (Object.keys(disrupted).length >= 2000) refuse(`DisruptedPods map too big - too many evictions not confirmed by PDB controller`);
      const now = Date.now();
      for (const [p, t] of Object.entries(disrupted)) if (now - Date.parse(t) > DISRUPTED_POD_TTL_MS) delete disrupted[p];
      disrupted[name] = nowRfc3339();
      pdb.status = { ...status, disruptionsAllowed: allowed - 1, disruptedPods: disrupted };
      if (this.dryRun(r.query)) return this.evicted({ status: 200, body: pod });
      try {
        await this.store.update(entry.key, pdb, entry.revision);
      } catch (err) {
        if (err instanceof ConflictError) continue;
        throw err;
      }
      return this.evicted(await this.delete(deleteReq));
    }
    throw conflict('poddisruptionbudgets', 'policy', '', 'the disruption budget kept changing; try again');
  }

  private evicted(_reply: Reply): Reply {
    return { status: 201, body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 } };
  }

  private async bind(r: RestRequest): Promise<Reply> {
    const body = r.body;
    if (!isObject(body) || !isObject(body.target) || typeof body.target.name !== 'string' || body.target.name === '') {
      throw invalid('Binding', '', r.info.name ?? '', [cause('FieldValueRequired', 'target.name', 'Required value')]);
    }
    const target = body.target.name;
    const name = r.info.name ?? body.metadata?.name;
    const podReq: RestRequest = { ...r, info: { ...r.info, name, subresource: 'binding' } };
    await this.write(podReq, undefined, (pod) => {
      const uid = isObject(body.metadata) ? body.metadata.uid : undefined;
      if (uid !== undefined && uid !== '' && uid !== pod.metadata.uid) throw conflict('pods/binding', '', name, `Precondition failed: UID in precondition: ${String(uid)}, UID in object meta: ${pod.metadata.uid}`);
      if (pod.spec?.nodeName) throw conflict('pods/binding', '', name, `pod ${name} is already assigned to node "${pod.spec.nodeName}"`);
      if (pod.metadata.deletionTimestamp) throw conflict('pods/binding', '', name, 'pod is being deleted, cannot be assigned to a host');
      pod.spec.nodeName = target;
      const conditions = ((pod.status ??= {}).conditions ??= []) as Obj[];
      const scheduled = conditions.find((c) => c.type === 'PodScheduled');
      const condition = { type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: nowRfc3339() };
      if (scheduled) Object.assign(scheduled, condition);
      else conditions.push(condition);
      return pod;
    }, []);
    return { status: 201, body: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 } };
  }
}

const PDB_PREFIX = '/registry/policy/poddisruptionbudgets/';

/** Kubernetes keeps a disrupted pod in a budget's status this long before it counts again. */
const DISRUPTED_POD_TTL_MS = 2 * 60_000;

/** A pod whose eviction needs no budget: done, not yet running, or already going. */
function evictionIgnoresBudget(pod: Obj): boolean {
  return ['Succeeded', 'Failed', 'Pending'].includes(String(pod.status?.phase)) || Boolean(pod.metadata?.deletionTimestamp);
}

const podReady = (pod: Obj): boolean => ((pod.status?.conditions ?? []) as Obj[]).some((c) => c?.type === 'Ready' && c?.status === 'True');

export { PDB_PREFIX };

/** Structural equality of JSON values. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k) || !deepEqual((a as Obj)[k], (b as Obj)[k])) return false;
  }
  return true;
}

/** Whether two objects agree outside metadata, status, apiVersion and kind (what bumps generation). */
function specEqual(a: Obj, b: Obj): boolean {
  const skip = new Set(['metadata', 'status', 'apiVersion', 'kind']);
  const ka = Object.keys(a).filter((k) => !skip.has(k));
  const kb = Object.keys(b).filter((k) => !skip.has(k));
  if (ka.length !== kb.length) return false;
  return ka.every((k) => deepEqual(a[k], b[k]));
}

function withoutPaging(q: URLSearchParams): URLSearchParams {
  const out = new URLSearchParams(q);
  out.delete('limit');
  out.delete('continue');
  return out;
}

/** A deep copy of `v` without null-valued object fields. */
function withoutNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutNulls);
  if (!isObject(v)) return v;
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = withoutNulls(x);
  return out;
}

function valueAt(o: unknown, pointer: string): unknown {
  let v: unknown = o;
  for (const p of pointer.split('/').slice(1)) v = (v as Obj | undefined)?.[p.replace(/~1/g, '/').replace(/~0/g, '~')];
  return v;
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'object' : typeof v;
}

/** Removes a field named by a dotted path with [i] / [key] segments. */
function dropField(o: Obj, path: string): void {
  const parts: string[] = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[([^\]]*)\]/g)) parts.push(m[1] ?? m[2]!);
  let parent: unknown = o;
  for (const p of parts.slice(0, -1)) parent = (parent as Obj | undefined)?.[p];
  if (isObject(parent)) delete parent[parts[parts.length - 1]!];
}

