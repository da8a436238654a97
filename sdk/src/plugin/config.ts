import { Ajv, type ErrorObject } from 'ajv';
import { PluginError } from './errors.js';

/** A JSON Schema (draft-07, as ajv reads it) describing a plugin's configuration. */
export type JsonSchema = { readonly [keyword: string]: unknown };

/** One thing wrong with a configuration: where (a JSON pointer, `''` for the root) and what. */
export interface ConfigProblem {
  /** JSON pointer to the offending field, for example `/profiles/0/weight`; `''` is the whole config. */
  readonly path: string;
  /** What is wrong with it, for example `must be <= 100`. */
  readonly message: string;
}

/** The result of validating a configuration. */
export type ConfigResult<C> =
  | { readonly ok: true; readonly config: C }
  | { readonly ok: false; readonly problems: readonly ConfigProblem[] };

/**
 * Validates configurations against one schema. Never throws for bad input; never mutates its
 * argument. Defaults declared in the schema (`default`) are filled into the returned copy.
 */
export type ConfigValidator<C> = (config: unknown) => ConfigResult<C>;

/**
 * Compiles a plugin's config schema (ajv, strict mode, all errors, defaults applied).
 *
 * @throws {PluginError} with field `configSchema` when the schema itself is invalid; `plugin` names
 *   the plugin in that error.
 */
export function compileConfigSchema<C = unknown>(schema: JsonSchema, plugin = '(unknown)'): ConfigValidator<C> {
  const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, coerceTypes: false });
  let validate: ReturnType<Ajv['compile']>;
  try {
    validate = ajv.compile(schema as object);
  } catch (err) {
    throw new PluginError(plugin, 'configSchema', `is not a valid JSON Schema: ${(err as Error).message}`, { cause: err });
  }
  return (config: unknown) => {
    const copy = config === undefined ? {} : structuredCloneJson(config);
    if (copy === INVALID) return { ok: false, problems: [{ path: '', message: 'must be plain JSON data' }] };
    if (validate(copy)) return { ok: true, config: copy as C };
    return { ok: false, problems: toProblems(validate.errors ?? []) };
  };
}

/** Formats problems one per line as `config<path>: <message>`. */
export function formatConfigProblems(problems: readonly ConfigProblem[]): string {
  return problems.map((p) => `config${p.path}: ${p.message}`).join('; ');
}

const INVALID = Symbol('invalid');

function structuredCloneJson(value: unknown): unknown {
  try {
    return JSON.parse(JSON.stringify(value)) as unknown;
  } catch {
    return INVALID;
  }
}

function toProblems(errors: readonly ErrorObject[]): ConfigProblem[] {
  const seen = new Set<string>();
  const problems: ConfigProblem[] = [];
  for (const e of errors) {
    let path = e.instancePath;
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'required') {
      path += `/${escapePointer(String((e.params as { missingProperty: string }).missingProperty))}`;
      message = 'is required';
    } else if (e.keyword === 'additionalProperties') {
      path += `/${escapePointer(String((e.params as { additionalProperty: string }).additionalProperty))}`;
      message = 'is not a known field';
    } else if (e.keyword === 'enum') {
      message = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    }
    const key = `${path}\u0000${message}`;
    if (!seen.has(key)) {
      seen.add(key);
      problems.push({ path, message });
    }
  }
  return problems;
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}
