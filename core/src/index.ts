/**
 * `@kubernel/core`: the composition root. Exposes the kernel for the CLI and for tests; plugins
 * never import this package (they import `@kubernel/sdk`).
 *
 * @packageDocumentation
 */
export { Kernel, KernelStartError } from './kernel/kernel.js';
export type { KernelParts, StartObserver, StopReport } from './kernel/kernel.js';
export type { KernelOptions } from './kernel/kernel-options.js';
export { bootKernel, PluginLoadError } from './kernel/boot.js';
export type { BootOptions } from './kernel/boot.js';
export {
  loadDistribution,
  parseDistribution,
  DistributionError,
  DISTRIBUTION_SCHEMA,
  DISTRIBUTION_API_VERSION,
  DISTRIBUTION_KIND,
} from './kernel/distribution.js';
export type { Distribution, KernelSettings, PluginEntry } from './kernel/distribution.js';
export { loadPlugin, loadRoles } from './kernel/plugin-loader.js';
export type { LoadedPlugin, LoadResult } from './kernel/plugin-loader.js';
export { PLUGIN_STATES, aggregateHealth } from './kernel/plugin-status.js';
export type { PluginState, PluginStatus, KernelHealth } from './kernel/plugin-status.js';
export { startHealthServer } from './kernel/health-server.js';
export type { HealthServer, NamedCheck } from './kernel/health-server.js';
export { createLogger } from './logging.js';
export { parseDuration } from './util/duration.js';
export * from './store/index.js';
export * from './apiserver/index.js';
export { ensurePki, createCa, issueCertificate, servingSans } from './pki/pki.js';
export type { ClusterPki, KeyPair, PkiOptions, CertificateRequest } from './pki/pki.js';
export * from './agent/index.js';
