/**
 * A one-call definition of a `container-runtime` provider: the plugin builds its runtime from its
 * config, provides it, and runs until stopped; the kernel closes the runtime afterwards.
 *
 * @module
 */
import type { JsonSchema } from '../plugin/config.js';
import { definePlugin, type PluginDefinition } from '../plugin/define-plugin.js';
import type { ProviderHandle } from '../plugin/handle.js';
import { untilAborted } from '../plugin/lifecycle.js';
import type { ContainerRuntime } from './cri.js';

/** What {@link defineContainerRuntimePlugin} needs. */
export interface ContainerRuntimePluginSpec<C> {
  /** The kernel plugin id (e.g. `cri-containerd`). */
  readonly id: string;
  readonly version: string;
  /** The SDK range the plugin works with; `^1.0.0` by default. */
  readonly sdk?: string;
  readonly description?: string;
  /** JSON Schema of the config; an empty object schema (no fields) by default. */
  readonly configSchema?: JsonSchema;
  /**
   * Builds the runtime for one start from the validated config. May connect (and fail: the start
   * fails and the kernel retries). The returned object's `close()` is called once, by the kernel,
   * after the plugin stops.
   */
  create(handle: ProviderHandle<'container-runtime', C>, config: C): ContainerRuntime | Promise<ContainerRuntime>;
}

const EMPTY_CONFIG = { type: 'object', additionalProperties: false, properties: {} } as const;

/**
 * Defines a `container-runtime` provider: `start` calls `spec.create`, provides the runtime (the
 * handle checks it is a {@link ContainerRuntime}) and waits for the abort signal. When providing
 * fails, the runtime is closed before the error propagates.
 */
export function defineContainerRuntimePlugin<C = Record<string, never>>(spec: ContainerRuntimePluginSpec<C>): PluginDefinition<'container-runtime', C> {
  return definePlugin<'container-runtime', C>({
    id: spec.id,
    kind: 'container-runtime',
    version: spec.version,
    sdk: spec.sdk ?? '^1.0.0',
    description: spec.description ?? `Container runtime ${spec.id} (CRI RuntimeService and ImageService).`,
    configSchema: spec.configSchema ?? EMPTY_CONFIG,
    async start(handle, config, signal) {
      const runtime = await spec.create(handle, config);
      try {
        handle.provide(runtime);
      } catch (err) {
        await runtime.close?.();
        throw err;
      }
      await untilAborted(signal);
    },
  });
}
