import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  checkPluginSpec,
  compileConfigSchema,
  describeError,
  PLUGIN_BRAND_FORMAT,
  pluginBrandOf,
  PluginError,
  SDK_VERSION,
  type PluginDefinition,
  type Role,
} from '@kubernel/sdk';
import semver from 'semver';
import type { Distribution, PluginEntry } from './distribution.js';

/** A plugin that passed every check and is ready to start. */
export interface LoadedPlugin {
  readonly role: Role;
  readonly definition: PluginDefinition;
  /** The validated configuration, defaults filled in. */
  readonly config: unknown;
  /** The package name and version the plugin came from. */
  readonly packageName: string;
  readonly packageVersion: string;
  /** The file the definition was imported from. */
  readonly modulePath: string;
}

/** The outcome of loading one distribution entry: the plugin, or every problem found. */
export type LoadResult =
  | { readonly ok: true; readonly plugin: LoadedPlugin }
  | { readonly ok: false; readonly role: Role; readonly entry: PluginEntry; readonly errors: readonly PluginError[] };

interface PackageInfo {
  readonly name: string;
  readonly version: string;
  readonly declared: readonly string[] | undefined;
}

const coreRequire = createRequire(import.meta.url);

/** Resolves a distribution entry's `package` to the module file to import. */
function resolveModule(spec: string, distributionPath: string): string {
  if (spec.startsWith('.') || isAbsolute(spec)) {
    const base = resolve(dirname(distributionPath), spec);
    return createRequire(join(base, 'noop.js')).resolve(base);
  }
  try {
    return createRequire(distributionPath).resolve(spec);
  } catch {
    return coreRequire.resolve(spec);
  }
}

function readPackageInfo(modulePath: string): PackageInfo | undefined {
  for (let dir = dirname(modulePath); ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string; kubernel?: { plugins?: unknown } };
      const declared = Array.isArray(pkg.kubernel?.plugins) ? pkg.kubernel.plugins.map(String) : undefined;
      return { name: pkg.name ?? dir, version: pkg.version ?? '0.0.0', declared };
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * Loads one distribution entry: resolves and imports its package, checks the package declares the
 * plugin, the export is branded by a compatible SDK, the SDK range fits this kernel, and the config
 * is valid. Collects every problem rather than stopping at the first; never throws.
 */
export async function loadPlugin(role: Role, entry: PluginEntry, distributionPath: string): Promise<LoadResult> {
  const fail = (...errors: PluginError[]): LoadResult => ({ ok: false, role, entry, errors });
  const err = (field: string, reason: string): PluginError => new PluginError(entry.id, field, reason);

  let modulePath: string;
  try {
    modulePath = resolveModule(entry.package, distributionPath);
  } catch (e) {
    return fail(err('package', `cannot resolve "${entry.package}": ${describeError(e).split('\n')[0]}`));
  }
  const pkg = readPackageInfo(modulePath);
  if (!pkg?.declared) {
    return fail(err('package', `"${entry.package}" is not a Kubernel plugin package (its package.json has no "kubernel": {"plugins": [...]} declaration)`));
  }
  if (!pkg.declared.includes(entry.id)) {
    return fail(err('id', `package ${pkg.name} declares the plugins [${pkg.declared.join(', ')}], not "${entry.id}"`));
  }
  let exported: unknown;
  try {
    exported = ((await import(pathToFileURL(modulePath).href)) as { default?: unknown }).default;
  } catch (e) {
    return fail(err('package', `importing ${pkg.name} failed: ${describeError(e)}`));
  }
  const candidates = Array.isArray(exported) ? (exported as unknown[]) : [exported];
  const found = candidates.find((c) => typeof c === 'object' && c !== null && (c as { id?: unknown }).id === entry.id);
  if (found === undefined) {
    return fail(err('id', `package ${pkg.name} declares "${entry.id}" but its default export has no plugin with that id`));
  }
  const brand = pluginBrandOf(found);
  if (!brand) {
    return fail(err('brand', `is missing: the export of ${pkg.name} is not a Kubernel plugin definition; build it with definePlugin() from @kubernel/sdk`));
  }
  if (brand.format !== PLUGIN_BRAND_FORMAT) {
    return fail(err('brand', `is foreign: the export of ${pkg.name} carries "${brand.format}", but this kernel runs "${PLUGIN_BRAND_FORMAT}"`));
  }
  const definition = found as PluginDefinition;
  const specProblems = checkPluginSpec(definition, entry.id);
  if (specProblems.length > 0) return fail(...specProblems);
  if (!semver.satisfies(SDK_VERSION, definition.sdk)) {
    return fail(err('sdk', `requires @kubernel/sdk ${definition.sdk}, but this kernel provides ${SDK_VERSION}`));
  }
  const validated = compileConfigSchema(definition.configSchema, entry.id)(entry.config ?? {});
  if (!validated.ok) {
    return fail(...validated.problems.map((p) => err(`config${p.path}`, p.message)));
  }
  return {
    ok: true,
    plugin: { role, definition, config: validated.config, packageName: pkg.name, packageVersion: pkg.version, modulePath },
  };
}

/**
 * Loads every enabled entry of the given roles. Ids must be unique across the roles one process
 * runs (they key data dirs, metrics and logs); a clash is reported on the later entry.
 */
export async function loadRoles(distribution: Distribution, roles: readonly Role[]): Promise<LoadResult[]> {
  const results: LoadResult[] = [];
  const seen = new Map<string, Role>();
  for (const role of roles) {
    for (const entry of distribution.roles[role]) {
      if (!entry.enabled) continue;
      const other = seen.get(entry.id);
      if (other !== undefined) {
        results.push({
          ok: false,
          role,
          entry,
          errors: [new PluginError(entry.id, 'id', `is listed in both roles ${other} and ${role}; one process runs each id once`)],
        });
        continue;
      }
      seen.set(entry.id, role);
      results.push(await loadPlugin(role, entry, distribution.path));
    }
  }
  return results;
}
