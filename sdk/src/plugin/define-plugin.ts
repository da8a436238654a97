import semver from 'semver';
import { SDK_VERSION } from '../version.js';
import { compileConfigSchema, type JsonSchema } from './config.js';
import { PluginError } from './errors.js';
import type { HandleFor } from './handle.js';
import { isPluginKind, PLUGIN_KINDS, type PluginKind } from './kinds.js';

/**
 * The brand every definition made by {@link definePlugin} carries. A registered (global) symbol,
 * so definitions made by another copy of a compatible SDK are still recognised.
 */
export const PLUGIN_BRAND: unique symbol = Symbol.for('kubernel.plugin.definition') as never;

/** The brand format this SDK writes and accepts. A kernel refuses any other as foreign. */
export const PLUGIN_BRAND_FORMAT = 'kubernel.plugin/v1';

/** What the brand records about the definition. */
export interface PluginBrand {
  /** Always {@link PLUGIN_BRAND_FORMAT} for definitions this SDK can run. */
  readonly format: string;
  /** The version of the SDK copy that made the definition. */
  readonly sdkVersion: string;
}

/** A plugin's start function: see {@link PluginSpec.start}. */
export type StartFunction<K extends PluginKind, C> = (handle: HandleFor<K, C>, config: C, signal: AbortSignal) => Promise<void>;

/** What a plugin author writes: the input of {@link definePlugin}. */
export interface PluginSpec<K extends PluginKind, C> {
  /** Unique id within a process: a DNS-1123 label (lowercase letters, digits, '-'; at most 63). */
  readonly id: string;
  /** The extension point this plugin implements; one of {@link PLUGIN_KINDS}. */
  readonly kind: K;
  /** The plugin's own version, semver. */
  readonly version: string;
  /** The `@kubernel/sdk` versions the plugin works with, a semver range such as `^1.0.0`. */
  readonly sdk: string;
  /** One sentence on what the plugin does, shown by `kubernel plugins list`. */
  readonly description?: string;
  /**
   * JSON Schema of the plugin's configuration. The kernel validates the distribution's `config`
   * against it (with defaults applied) before `start`, and refuses to start on any problem. Declare
   * `additionalProperties: false` so a misspelt field is an error, not a silent no-op.
   */
  readonly configSchema: JsonSchema;
  /**
   * Runs the plugin until `signal` aborts, then releases everything it holds and resolves.
   *
   * - A service calls `handle.ready()` once it is up; a provider calls `handle.provide(impl)`.
   * - Throwing (or rejecting) before that fails the start; after it, the kernel logs the error and
   *   restarts the plugin with exponential back-off. Resolving before `signal` aborts counts as a
   *   crash too.
   * - After `signal` aborts, the plugin has the kernel's stop timeout to resolve; past it, the
   *   plugin is abandoned and named in the log.
   */
  readonly start: StartFunction<K, C>;
}

/** A branded, versioned, validated plugin definition: what a plugin package default-exports. */
export interface PluginDefinition<K extends PluginKind = PluginKind, C = unknown> extends PluginSpec<K, C> {
  readonly [PLUGIN_BRAND]: PluginBrand;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * Problems with a definition's declared fields (not its config); empty when it is sound.
 * Hosts run this on whatever a package exports; {@link definePlugin} runs it at definition time.
 */
export function checkPluginSpec(definition: object, name?: string): PluginError[] {
  const spec = definition as { readonly [F in keyof PluginSpec<PluginKind, unknown>]?: unknown };
  name ??= typeof spec.id === 'string' ? spec.id : '(unnamed)';
  const problems: PluginError[] = [];
  const bad = (field: string, reason: string): void => void problems.push(new PluginError(name, field, reason));
  if (typeof spec.id !== 'string' || spec.id.length > 63 || !DNS1123_LABEL.test(spec.id)) {
    bad('id', `must be a DNS-1123 label (lowercase alphanumerics and '-', at most 63 characters), got ${JSON.stringify(spec.id)}`);
  }
  if (!isPluginKind(spec.kind)) {
    bad('kind', `must be one of ${PLUGIN_KINDS.join(', ')}, got ${JSON.stringify(spec.kind)}`);
  }
  if (typeof spec.version !== 'string' || semver.valid(spec.version) === null) {
    bad('version', `must be a semantic version such as 1.2.3, got ${JSON.stringify(spec.version)}`);
  }
  if (typeof spec.sdk !== 'string' || spec.sdk.trim() === '' || semver.validRange(spec.sdk) === null) {
    bad('sdk', `must be a semver range of @kubernel/sdk versions such as ^1.0.0, got ${JSON.stringify(spec.sdk)}`);
  }
  if (spec.description !== undefined && typeof spec.description !== 'string') {
    bad('description', 'must be a string');
  }
  if (typeof spec.configSchema !== 'object' || spec.configSchema === null || Array.isArray(spec.configSchema)) {
    bad('configSchema', 'must be a JSON Schema object');
  } else {
    try {
      compileConfigSchema(spec.configSchema as JsonSchema, name);
    } catch (err) {
      problems.push(err as PluginError);
    }
  }
  if (typeof spec.start !== 'function') {
    bad('start', 'must be a function (handle, config, signal) => Promise<void>');
  }
  return problems;
}

/**
 * Declares a plugin: checks the spec, then returns it frozen and branded with this SDK's version.
 *
 * @example
 * export default definePlugin({
 *   id: 'scheduler-default', kind: 'scheduler', version: '1.0.0', sdk: '^1.0.0',
 *   configSchema: { type: 'object', additionalProperties: false, properties: {} },
 *   async start(handle, config, signal) { handle.ready(); await untilAborted(signal); },
 * });
 * @throws {PluginError} naming the first bad field, when the spec is unsound.
 */
export function definePlugin<K extends PluginKind, C = unknown>(spec: PluginSpec<K, C>): PluginDefinition<K, C> {
  const problems = checkPluginSpec(spec);
  if (problems.length > 0) throw problems[0];
  const brand: PluginBrand = Object.freeze({ format: PLUGIN_BRAND_FORMAT, sdkVersion: SDK_VERSION });
  return Object.freeze({ ...spec, [PLUGIN_BRAND]: brand });
}

/** True when `value` is a definition this SDK can run: it carries the brand in {@link PLUGIN_BRAND_FORMAT}. */
export function isPluginDefinition(value: unknown): value is PluginDefinition {
  return pluginBrandOf(value)?.format === PLUGIN_BRAND_FORMAT;
}

/** The brand `value` carries, or `undefined` when it carries none. Does not judge the format. */
export function pluginBrandOf(value: unknown): PluginBrand | undefined {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return undefined;
  const brand = (value as { [PLUGIN_BRAND]?: unknown })[PLUGIN_BRAND];
  if (typeof brand !== 'object' || brand === null) return undefined;
  const { format, sdkVersion } = brand as Record<string, unknown>;
  if (typeof format !== 'string' || typeof sdkVersion !== 'string') return undefined;
  return { format, sdkVersion };
}
