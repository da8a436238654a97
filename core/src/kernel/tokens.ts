import type { ApiClient } from '@kubernel/sdk';

/**
 * Service identifiers of the kernel's DI container, one symbol per interface, named like it.
 * inversify stays inside core: plugins get a Handle, never the container.
 */
export const TYPES = {
  /** The root pino logger (`Logger`). */
  Logger: Symbol.for('kubernel.Logger'),
  /** The process's prom-client `Registry`. */
  MetricsRegistry: Symbol.for('kubernel.MetricsRegistry'),
  /** The kernel's {@link KernelOptions}. */
  KernelOptions: Symbol.for('kubernel.KernelOptions'),
  /** The {@link KernelMetrics} shared by supervisors. */
  KernelMetrics: Symbol.for('kubernel.KernelMetrics'),
  /** In a plugin's child container: its {@link LoadedPlugin}. */
  LoadedPlugin: Symbol.for('kubernel.LoadedPlugin'),
  /** The process's {@link ApiAccess}. */
  ApiAccess: Symbol.for('kubernel.ApiAccess'),
} as const;

/** The API client plugins' handles offer, set once the process has an API connection. */
export interface ApiAccess {
  client?: ApiClient;
}
