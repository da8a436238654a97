import type { PluginKind, Role } from '@kubernel/sdk';

/** Every state a supervised plugin can be in. */
export const PLUGIN_STATES = ['pending', 'starting', 'running', 'backoff', 'stopping', 'stopped', 'failed', 'abandoned'] as const;

/**
 * A supervised plugin's state:
 * - `pending`: loaded, not started yet;
 * - `starting`: `start` called, not ready yet;
 * - `running`: ready;
 * - `backoff`: crashed, waiting to restart;
 * - `stopping`: aborted, waiting for `start` to settle;
 * - `stopped`: settled after abort;
 * - `failed`: could not be started (start-up failed, or a restart attempt hung);
 * - `abandoned`: did not settle within the stop timeout after abort.
 */
export type PluginState = (typeof PLUGIN_STATES)[number];

/** What the kernel reports about one plugin (health endpoints, `kubernel` output). */
export interface PluginStatus {
  readonly id: string;
  readonly kind: PluginKind;
  readonly role: Role;
  readonly version: string;
  readonly package: string;
  readonly state: PluginState;
  /** Restarts after crashes so far. */
  readonly restarts: number;
  /** The last crash or failure, one line. */
  readonly lastError?: string;
  /** When the plugin entered its current state (ISO 8601). */
  readonly since: string;
}

/** The kernel's aggregate health, the model behind `/livez` and `/readyz`. */
export interface KernelHealth {
  /** False when a plugin is `failed` or `abandoned`: the process needs a restart. */
  readonly live: boolean;
  /** True when every plugin is `running`. */
  readonly ready: boolean;
  readonly plugins: readonly PluginStatus[];
}

/** Aggregates plugin statuses into {@link KernelHealth}. */
export function aggregateHealth(plugins: readonly PluginStatus[]): KernelHealth {
  return {
    live: plugins.every((p) => p.state !== 'failed' && p.state !== 'abandoned'),
    ready: plugins.every((p) => p.state === 'running'),
    plugins,
  };
}
