import type { Logger } from 'pino';
import type { ContractOf, Extension, ExtensionLookup } from './extensions.js';
import type { PluginKind, ProviderKind } from './kinds.js';
import type { Metrics } from './metrics.js';
import type { ApiClient } from '../client/api-client.js';

export type { Logger } from 'pino';

/** The process roles a distribution assigns plugins to: the control plane and the node. */
export const ROLES = ['server', 'agent'] as const;

/** One of {@link ROLES}. */
export type Role = (typeof ROLES)[number];

/** Who a plugin is, as the kernel loaded it. */
export interface PluginIdentity {
  /** The plugin's id, unique within the process. */
  readonly id: string;
  /** The plugin's kind. */
  readonly kind: PluginKind;
  /** The plugin's own version (semver). */
  readonly version: string;
}

/**
 * What the kernel gives a plugin: everything it may use, nothing more (never the DI container).
 *
 * A new handle is made for every start attempt; what it points to (data dir, metrics, logger
 * bindings) stays the same across restarts.
 */
export interface Handle<C = unknown> {
  /** The plugin this handle belongs to. */
  readonly plugin: PluginIdentity;
  /** The role (process type) the plugin runs in. */
  readonly role: Role;
  /** A pino logger bound to `{plugin, kind}`; use `.child()` for finer components. */
  readonly logger: Logger;
  /** The validated configuration, with the schema's defaults filled in (the same object `start` gets). */
  readonly config: Readonly<C>;
  /** A directory owned by this plugin, created before start and kept across restarts. */
  readonly dataDir: string;
  /** The process's Prometheus registry, through an idempotent, restart-safe view. */
  readonly metrics: Metrics;
  /** 1 on the first start, incremented on every restart by supervision. */
  readonly attempt: number;
  /** Implementations provided so far by provider plugins in this process, by kind. */
  readonly extensions: ExtensionLookup;
  /**
   * The process's Kubernetes API client (shared by its plugins, with shared informers), authenticated
   * as the process: the API server's loopback identity (`system:masters`) in the server role.
   *
   * @throws {PluginContractError} on access when the process has no API connection.
   */
  readonly api: ApiClient;
}

/** The handle of a `service` plugin (scheduler, controller). */
export interface ServiceHandle<C = unknown> extends Handle<C> {
  /**
   * Says the plugin is up (informers synced, loops running). The kernel waits for this, up to its
   * start timeout, before starting the next plugin; a plugin that throws before calling it fails
   * start-up. Calling it again is a no-op.
   */
  ready(): void;
}

/** The handle of a `provider` plugin: it hands over its kind's implementation. */
export interface ProviderHandle<K extends ProviderKind = ProviderKind, C = unknown> extends Handle<C> {
  /**
   * Hands the kernel this plugin's implementation and marks the plugin ready. Call it exactly once
   * per start.
   *
   * @throws {PluginContractError} when called a second time in the same start.
   */
  provide(implementation: ContractOf<K>): void;
}

/** The handle type a plugin of kind `K` receives. */
export type HandleFor<K extends PluginKind, C> = K extends ProviderKind ? ProviderHandle<K, C> : ServiceHandle<C>;

/** The union of both handle shapes, as hosts build them (a plugin sees {@link HandleFor}). */
export type AnyHandle<C = unknown> = Handle<C> & {
  ready(): void;
  provide(implementation: Extension): void;
};
