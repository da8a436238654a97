/**
 * A one-call definition of a `scheduler-plugin` provider: the plugin provides its factory and
 * runs until stopped.
 *
 * @module
 */
import { definePlugin, type PluginDefinition } from '../plugin/define-plugin.js';
import { untilAborted } from '../plugin/lifecycle.js';
import type { SchedulerPluginFactory } from './framework.js';

/** What {@link defineSchedulerPlugin} needs. */
export interface SchedulerPluginSpec {
  /** The kernel plugin id (e.g. `scheduler-node-resources-fit`). */
  readonly id: string;
  readonly version: string;
  /** The SDK range the plugin works with; `^1.0.0` by default. */
  readonly sdk?: string;
  readonly description?: string;
  /** The factory the plugin provides (its `name` is the framework name profiles use). */
  readonly factory: SchedulerPluginFactory;
}

const EMPTY_CONFIG = { type: 'object', additionalProperties: false, properties: {} } as const;

/**
 * Defines a `scheduler-plugin` provider handing over `factory`. The plugin itself takes no
 * configuration: its args come from the scheduler's profiles (`pluginConfig`), validated against
 * `factory.argsSchema`.
 */
export function defineSchedulerPlugin(spec: SchedulerPluginSpec): PluginDefinition<'scheduler-plugin', Record<string, never>> {
  return definePlugin({
    id: spec.id,
    kind: 'scheduler-plugin',
    version: spec.version,
    sdk: spec.sdk ?? '^1.0.0',
    description: spec.description ?? `Scheduling framework plugin ${spec.factory.name}.`,
    configSchema: EMPTY_CONFIG,
    async start(handle, _config, signal) {
      handle.provide(spec.factory);
      await untilAborted(signal);
    },
  });
}
