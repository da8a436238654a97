import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { compileConfigSchema, ROLES, type ConfigProblem, type Role } from '@kubernel/sdk';
import { parseDocument } from 'yaml';
import { DURATION_PATTERN, parseDuration } from '../util/duration.js';

/** The `apiVersion` and `kind` a distribution file declares. */
export const DISTRIBUTION_API_VERSION = 'kubernel.io/v1alpha1';
export const DISTRIBUTION_KIND = 'Distribution';

/** One plugin to run, as a distribution file lists it. */
export interface PluginEntry {
  /** The plugin id (a package may export several plugins). */
  readonly id: string;
  /** An npm package name, or a path (starting with `.` or `/`) relative to the distribution file. */
  readonly package: string;
  /** The plugin's configuration, validated against its schema. */
  readonly config: unknown;
  /** `false` keeps the entry listed but not run. */
  readonly enabled: boolean;
}

/** Supervision settings, in milliseconds. */
export interface KernelSettings {
  /** How long a plugin may take to become ready. */
  readonly startTimeoutMs: number;
  /** How long the whole shutdown may take before stragglers are abandoned. */
  readonly stopTimeoutMs: number;
  /** First restart delay after a crash; doubles per consecutive crash. */
  readonly restartBackoffInitialMs: number;
  /** Upper bound of the restart delay. */
  readonly restartBackoffMaxMs: number;
  /** A run that lasts this long resets the back-off to its initial delay. */
  readonly restartBackoffResetMs: number;
}

/** A parsed, validated distribution file. */
export interface Distribution {
  /** Absolute path of the file (plugin paths resolve against its directory). */
  readonly path: string;
  readonly name: string;
  readonly kernel: KernelSettings;
  readonly roles: Readonly<Record<Role, readonly PluginEntry[]>>;
}

/** Thrown when a distribution file cannot be read, parsed or validated; lists every problem. */
export class DistributionError extends Error {
  override readonly name = 'DistributionError';
  constructor(
    readonly path: string,
    readonly problems: readonly ConfigProblem[],
  ) {
    super(`distribution ${path}: ${problems.map((p) => `${p.path || '/'}: ${p.message}`).join('; ')}`);
  }
}

const duration = { type: 'string', pattern: DURATION_PATTERN };
const entrySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'package'],
  properties: {
    id: { type: 'string', minLength: 1 },
    package: { type: 'string', minLength: 1 },
    config: {},
    enabled: { type: 'boolean', default: true },
  },
};
const roleSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { plugins: { type: 'array', items: entrySchema, default: [] } },
  default: {},
};

/** JSON Schema of a distribution file. */
export const DISTRIBUTION_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  properties: {
    apiVersion: { const: DISTRIBUTION_API_VERSION },
    kind: { const: DISTRIBUTION_KIND },
    metadata: {
      type: 'object',
      additionalProperties: false,
      required: ['name'],
      properties: { name: { type: 'string', minLength: 1 }, annotations: { type: 'object', additionalProperties: { type: 'string' } } },
    },
    spec: {
      type: 'object',
      additionalProperties: false,
      required: ['roles'],
      properties: {
        kernel: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            startTimeout: { ...duration, default: '60s' },
            stopTimeout: { ...duration, default: '30s' },
            restartBackoff: {
              type: 'object',
              additionalProperties: false,
              default: {},
              properties: {
                initial: { ...duration, default: '1s' },
                max: { ...duration, default: '1m' },
                resetAfter: { ...duration, default: '10m' },
              },
            },
          },
        },
        roles: {
          type: 'object',
          additionalProperties: false,
          properties: Object.fromEntries(ROLES.map((r) => [r, roleSchema])),
        },
      },
    },
  },
} as const;

const validateDistribution = compileConfigSchema<RawDistribution>(DISTRIBUTION_SCHEMA, 'distribution');

interface RawDistribution {
  metadata: { name: string };
  spec: {
    kernel: { startTimeout: string; stopTimeout: string; restartBackoff: { initial: string; max: string; resetAfter: string } };
    roles: Partial<Record<Role, { plugins: PluginEntry[] }>>;
  };
}

/**
 * Parses and validates a distribution from YAML text.
 *
 * @param path the file's path, used to resolve plugin paths and in error messages
 * @throws {DistributionError} naming every problem (YAML syntax with line and column, or the JSON
 *   pointer of each bad field)
 */
export function parseDistribution(text: string, path: string): Distribution {
  const absolute = resolve(path);
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new DistributionError(absolute, doc.errors.map((e) => ({ path: '', message: `YAML: ${e.message.split('\n')[0]}` })));
  }
  const result = validateDistribution(doc.toJS());
  if (!result.ok) throw new DistributionError(absolute, result.problems);
  const raw = result.config;
  const k = raw.spec.kernel;
  const ms = (d: string): number => parseDuration(d)!;
  const roles = Object.fromEntries(ROLES.map((r) => [r, raw.spec.roles[r]?.plugins ?? []])) as Record<Role, PluginEntry[]>;
  const problems: ConfigProblem[] = [];
  for (const role of ROLES) {
    const seen = new Set<string>();
    roles[role].forEach((e, i) => {
      if (seen.has(e.id)) problems.push({ path: `/spec/roles/${role}/plugins/${i}/id`, message: `duplicate plugin id "${e.id}" in role ${role}` });
      seen.add(e.id);
    });
  }
  if (problems.length > 0) throw new DistributionError(absolute, problems);
  return {
    path: absolute,
    name: raw.metadata.name,
    kernel: {
      startTimeoutMs: ms(k.startTimeout),
      stopTimeoutMs: ms(k.stopTimeout),
      restartBackoffInitialMs: ms(k.restartBackoff.initial),
      restartBackoffMaxMs: ms(k.restartBackoff.max),
      restartBackoffResetMs: ms(k.restartBackoff.resetAfter),
    },
    roles,
  };
}

/**
 * Reads, parses and validates a distribution file.
 *
 * @throws {DistributionError} when the file is missing or invalid
 */
export async function loadDistribution(path: string): Promise<Distribution> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new DistributionError(resolve(path), [{ path: '', message: `cannot read the file: ${(err as Error).message}` }]);
  }
  return parseDistribution(text, path);
}
