import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { badRequest, unsupportedMediaType } from './status.js';
import type { Obj } from './resource.js';
import { goFacts } from './go-facts.js';

/** The Kubernetes protobuf media type, which client-go's typed clients send. */
export const PROTOBUF = 'application/vnd.kubernetes.protobuf';

/** Every Kubernetes protobuf message starts with these four bytes ("k8s\0"). */
const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00]);
const DIR = fileURLToPath(new URL('../../generated/proto/', import.meta.url));
const META = 'k8s.io.apimachinery.pkg.apis.meta.v1';

function protoFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? protoFiles(p) : p.endsWith('.proto') ? [p] : [];
  });
}

function toNumber(v: unknown): number {
  return typeof v === 'number' ? v : Number(String(v));
}

/** A Go zero value as decoded: "", 0, false, an empty list or map. */
function isZero(v: unknown): boolean {
  if (v === '' || v === false || v === 0) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (v instanceof Uint8Array) return v.length === 0;
  if (typeof v === 'object' && v !== null && 'low' in v && 'high' in v) return toNumber(v) === 0;
  if (typeof v === 'object' && v !== null) return Object.keys(v).length === 0;
  return false;
}

/** Go's time.Duration text (`1h2m3.5s`, `250ms`, `0s`) of a nanosecond count. */
function goDuration(nanos: number): string {
  if (nanos === 0) return '0s';
  const sign = nanos < 0 ? '-' : '';
  let n = Math.abs(nanos);
  if (n < 1e3) return `${sign}${n}ns`;
  if (n < 1e6) return `${sign}${n / 1e3}µs`;
  if (n < 1e9) return `${sign}${n / 1e6}ms`;
  const h = Math.floor(n / 3.6e12);
  n -= h * 3.6e12;
  const m = Math.floor(n / 6e10);
  n -= m * 6e10;
  const s = n / 1e9;
  return `${sign}${h > 0 ? `${h}h` : ''}${h > 0 || m > 0 ? `${m}m` : ''}${s}s`;
}

/**
 * Decodes Kubernetes protobuf request bodies (`k8s\0` + runtime.Unknown wrapping the type's
 * message) into the JSON form of the object, using the API's own generated.proto definitions
 * (fetched by scripts/fetch-k8s-protos.sh). Responses are always JSON: clients that send protobuf
 * also accept JSON.
 */
export class ProtobufDecoder {
  private readonly root: protobuf.Root;
  private readonly unknown: protobuf.Type;

  constructor(dir = DIR) {
    if (!existsSync(dir)) throw new Error(`no Kubernetes proto definitions in ${dir}: run scripts/fetch-k8s-protos.sh`);
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => (target.startsWith('k8s.io/') ? join(dir, target) : target);
    root.loadSync(protoFiles(dir), { keepCase: true });
    root.resolveAll();
    this.root = root;
    this.unknown = root.lookupType('k8s.io.apimachinery.pkg.runtime.Unknown');
  }

  /** The message type of `group/version, kind`, if the API defines one. */
  private typeOf(apiVersion: string, kind: string): protobuf.Type | undefined {
    const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') as [string, string] : ['', apiVersion];
    const candidates = group === '' && ['DeleteOptions', 'Status', 'ListOptions', 'GetOptions', 'CreateOptions', 'UpdateOptions', 'PatchOptions'].includes(kind)
      ? [`${META}.${kind}`, `k8s.io.api.core.${version}.${kind}`]
      : [`k8s.io.api.${group === '' ? 'core' : group.replace(/\.k8s\.io$/, '').split('.')[0]}.${version}.${kind}`, `${META}.${kind}`];
    for (const name of candidates) {
      try {
        return this.root.lookupType(name);
      } catch {
        // try the next
      }
    }
    return undefined;
  }

  /**
   * Decodes a protobuf body into its JSON-form object (apiVersion and kind set).
   * @throws {ApiError} 400 for a malformed body, 415 for a type without a protobuf definition
   */
  decode(body: Buffer): Obj {
    if (body.length < 4 || !body.subarray(0, 4).equals(MAGIC)) throw badRequest('the protobuf body does not start with the Kubernetes magic number');
    let envelope: Obj;
    try {
      envelope = this.unknown.decode(body.subarray(4)) as unknown as Obj;
    } catch (err) {
      throw badRequest(`the protobuf body is malformed: ${(err as Error).message}`);
    }
    const apiVersion = String(envelope.typeMeta?.apiVersion ?? '');
    const kind = String(envelope.typeMeta?.kind ?? '');
    const type = this.typeOf(apiVersion, kind);
    if (!type) throw unsupportedMediaType(`${PROTOBUF} (no protobuf definition of ${apiVersion} ${kind})`);
    let message: protobuf.Message;
    try {
      message = type.decode(envelope.raw as Uint8Array);
    } catch (err) {
      throw badRequest(`the protobuf ${kind} is malformed: ${(err as Error).message}`);
    }
    return { apiVersion, kind, ...(this.convert(type, message) as Obj) };
  }

  private convert(type: protobuf.Type, message: protobuf.Message): unknown {
    const m = message as unknown as Obj;
    switch (type.fullName) {
      case `.${META}.Time`:
        if (toNumber(m.seconds ?? 0) === 0 && toNumber(m.nanos ?? 0) === 0) return undefined;
        return new Date(toNumber(m.seconds ?? 0) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
      case `.${META}.MicroTime`: {
        if (toNumber(m.seconds ?? 0) === 0 && toNumber(m.nanos ?? 0) === 0) return undefined;
        const iso = new Date(toNumber(m.seconds ?? 0) * 1000).toISOString();
        return `${iso.slice(0, 19)}.${String(Math.floor(toNumber(m.nanos ?? 0) / 1000)).padStart(6, '0')}Z`;
      }
      case `.${META}.Duration`:
        return goDuration(toNumber(m.duration ?? 0));
      case '.k8s.io.apimachinery.pkg.api.resource.Quantity':
        return m.string || undefined;
      case '.k8s.io.apimachinery.pkg.util.intstr.IntOrString':
        return toNumber(m.type ?? 0) === 1 ? (m.strVal ?? '') : toNumber(m.intVal ?? 0);
      case '.k8s.io.apimachinery.pkg.runtime.RawExtension':
      case `.${META}.FieldsV1`: {
        const raw = (m.raw ?? m.Raw) as Uint8Array | undefined;
        if (!raw || raw.length === 0) return undefined;
        try {
          return JSON.parse(Buffer.from(raw).toString('utf8')) as unknown;
        } catch {
          throw badRequest(`${type.name} does not hold JSON`);
        }
      }
    }
    // Single-field wrappers of a string list (ExtraValue and the like) are plain lists in JSON.
    if (type.fieldsArray.length === 1 && type.fieldsArray[0]!.name === 'items' && type.fieldsArray[0]!.repeated) {
      return ((m.items ?? []) as unknown[]).map(String);
    }
    const out: Obj = {};
    const facts = goFacts()[type.fullName.slice(1)] ?? {};
    for (const field of type.fieldsArray) {
      if (!Object.prototype.hasOwnProperty.call(m, field.name)) continue;
      const value = m[field.name];
      // Go marshals non-pointer fields even when zero; with omitempty, zero means absent (as in JSON).
      const fact = facts[field.name];
      if (fact?.omitempty && !fact.pointer && isZero(value)) continue;
      const resolved = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
      const one = (v: unknown): unknown => {
        if (resolved) return this.convert(resolved, v as protobuf.Message);
        if (field.type === 'bytes') return Buffer.from(v as Uint8Array).toString('base64');
        if (['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64'].includes(field.type)) return toNumber(v);
        return v;
      };
      if (field instanceof protobuf.MapField || (field as { map?: boolean }).map) {
        const map: Obj = {};
        for (const [k, v] of Object.entries(value as Obj)) map[k] = one(v);
        out[field.name] = map;
      } else if (field.repeated) {
        out[field.name] = (value as unknown[]).map(one);
      } else {
        const v = one(value);
        if (v !== undefined) out[field.name] = v;
      }
    }
    return out;
  }
}
