import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { Obj } from './resource.js';
import { goFacts, goTypeOf } from './go-facts.js';

/** The generated OpenAPI definitions (tools/gen-k8s-schemas.mjs). */
export interface Definitions {
  readonly source: string;
  readonly definitions: Readonly<Record<string, Obj>>;
}

const FILE = new URL('../../generated/k8s-schemas.json', import.meta.url);

/**
 * The Kubernetes schemas the API server validates with and serves: loaded once, validators
 * compiled lazily per definition.
 */
export class Schemas {
  readonly definitions: Readonly<Record<string, Obj>>;
  readonly source: string;
  private readonly ajv: Ajv;
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(loaded: Definitions = JSON.parse(readFileSync(FILE, 'utf8')) as Definitions) {
    this.source = loaded.source;
    this.definitions = loaded.definitions;
    this.ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });
    this.ajv.addSchema({ $id: 'k8s', definitions: withIntegers(relaxed(this.definitions)) });
  }

  /** True when `name` is a known definition. */
  has(name: string): boolean {
    return name in this.definitions;
  }

  /** Schema type errors and missing required fields of `o` against definition `name`. */
  check(name: string, o: unknown): { types: ErrorObject[]; required: ErrorObject[] } {
    const v = this.validator(name);
    if (v(o)) return { types: [], required: [] };
    const errors = v.errors ?? [];
    return {
      types: errors.filter((e) => e.keyword === 'type' || e.keyword === 'minimum' || e.keyword === 'maximum'),
      required: errors.filter((e) => e.keyword === 'required'),
    };
  }

  private validator(name: string): ValidateFunction {
    let v = this.validators.get(name);
    if (!v) {
      v = this.ajv.getSchema(`k8s#/definitions/${name}`) as ValidateFunction;
      this.validators.set(name, v);
    }
    return v;
  }

  /**
   * Compiles the validators of `names` ahead of their first request, one per event-loop turn so
   * requests interleave (the Pod's takes about 0.3 s; the first pod create would wait for it).
   * Unknown names are skipped.
   */
  warm(names: readonly string[]): void {
    const next = (i: number): void => {
      if (i >= names.length) return;
      if (this.has(names[i]!)) this.validator(names[i]!);
      setImmediate(() => next(i + 1));
    };
    setImmediate(() => next(0));
  }

  /** The schema of definition `name` with `$ref`/`allOf` wrappers resolved. */
  resolve(schema: Obj | undefined): Obj | undefined {
    let s = schema;
    for (let i = 0; i < 10 && s; i++) {
      if (typeof s.$ref === 'string') s = this.definitions[s.$ref.replace('#/definitions/', '')];
      else if (Array.isArray(s.allOf) && s.allOf.length === 1) s = s.allOf[0] as Obj;
      else break;
    }
    return s;
  }

  /** The definition name a property schema refers to (through allOf), if any. */
  refOf(schema: Obj | undefined): string | undefined {
    if (!schema) return undefined;
    if (typeof schema.$ref === 'string') return schema.$ref.replace('#/definitions/', '');
    if (Array.isArray(schema.allOf) && schema.allOf.length === 1) return this.refOf(schema.allOf[0] as Obj);
    return undefined;
  }

  /**
   * The fields of `o` its schema does not declare, as dotted paths (`spec.containers[0].colour`),
   * the way Kubernetes' strict decoding reports them.
   */
  unknownFields(name: string, o: unknown): string[] {
    const out: string[] = [];
    this.walk(this.definitions[name], o, [], out, 0);
    return out;
  }

  /** Walks `value` along `schema`; `path` holds the segments so far (a string is built only for an unknown field). */
  private walk(schema: Obj | undefined, value: unknown, path: string[], out: string[], depth: number): void {
    const s = this.resolve(schema);
    if (!s || depth > 64 || value === null || typeof value !== 'object') return;
    if (s['x-kubernetes-preserve-unknown-fields']) return;
    if (Array.isArray(value)) {
      if (s.items) {
        for (let i = 0; i < value.length; i++) {
          path.push(`[${i}]`);
          this.walk(s.items as Obj, value[i], path, out, depth + 1);
          path.pop();
        }
      }
      return;
    }
    if (s.additionalProperties && typeof s.additionalProperties === 'object') {
      for (const k of Object.keys(value)) {
        path.push(`[${k}]`);
        this.walk(s.additionalProperties as Obj, (value as Obj)[k], path, out, depth + 1);
        path.pop();
      }
      return;
    }
    const props = s.properties as Record<string, Obj> | undefined;
    if (!props) return;
    for (const k of Object.keys(value)) {
      path.push(k);
      if (!(k in props)) out.push(joinPath(path));
      else this.walk(props[k], (value as Obj)[k], path, out, depth + 1);
      path.pop();
    }
  }
}

function joinPath(parts: readonly string[]): string {
  let out = '';
  for (const p of parts) out += p.startsWith('[') || out === '' ? p : `.${p}`;
  return out;
}

/**
 * The schemas as ajv validates them: int-or-string fields accept numbers and strings, quantities
 * accept numbers, `required` stays (reported as 422 causes), descriptions are dropped.
 */
function relaxed(definitions: Readonly<Record<string, Obj>>): Record<string, Obj> {
  const fix = (s: unknown): unknown => {
    if (Array.isArray(s)) return s.map(fix);
    if (!s || typeof s !== 'object') return s;
    const out: Obj = {};
    for (const [k, v] of Object.entries(s as Obj)) {
      if (k === 'description') continue;
      out[k] = fix(v);
    }
    if (out['x-kubernetes-int-or-string'] || out.format === 'quantity') {
      delete out.type;
      out.type = ['string', 'number'];
    }
    return out;
  };
  return fix(definitions) as Record<string, Obj>;
}

/**
 * Integer fields of the Go types (the TypeScript declarations the schemas come from say only
 * `number`) become `integer`, int32 ones with their range, so 1.5, 1e309 or 2^31 are refused at
 * decoding as the Go API server refuses them.
 */
function withIntegers(definitions: Record<string, Obj>): Record<string, Obj> {
  const facts = goFacts();
  for (const [name, schema] of Object.entries(definitions)) {
    const fields = facts[goTypeOf(name)];
    if (!fields || !schema.properties) continue;
    for (const [field, f] of Object.entries(fields)) {
      const prop = (schema.properties as Obj)[field] as Obj | undefined;
      if (!f.int || !prop || prop.type !== 'number') continue;
      prop.type = 'integer';
      if (f.int === 32) {
        prop.minimum = -2147483648;
        prop.maximum = 2147483647;
      }
    }
  }
  return definitions;
}

/** An ajv instance path (`/spec/containers/0/name`) as a Kubernetes field path (`spec.containers[0].name`). */
export function fieldPath(instancePath: string, extra?: string): string {
  const parts = instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (extra) parts.push(extra);
  let out = '';
  for (const p of parts) out += /^\d+$/.test(p) ? `[${p}]` : out ? `.${p}` : p;
  return out;
}
