import { type Logger, type Registry, type Role } from '@kubernel/sdk';
import { loadDistribution, type Distribution } from './distribution.js';
import { Kernel } from './kernel.js';
import { loadRoles, type LoadResult } from './plugin-loader.js';

/** Thrown when some plugins of a distribution cannot be loaded; lists every problem. */
export class PluginLoadError extends Error {
  override readonly name = 'PluginLoadError';
  constructor(readonly failures: ReadonlyArray<Extract<LoadResult, { ok: false }>>) {
    super(failures.flatMap((f) => f.errors.map((e) => e.message)).join('\n'));
  }
}

/** Options of {@link bootKernel}. */
export interface BootOptions {
  /** The distribution file. */
  readonly distribution: string;
  /** The roles to run. */
  readonly roles: readonly Role[];
  readonly dataDir: string;
  readonly logger: Logger;
  readonly registry: Registry;
}

/**
 * Loads a distribution and its plugins for the given roles and builds (does not start) a kernel.
 *
 * @throws {DistributionError} when the file is invalid
 * @throws {PluginLoadError} when any plugin cannot be loaded or its config is invalid
 */
export async function bootKernel(options: BootOptions): Promise<{ kernel: Kernel; distribution: Distribution }> {
  const distribution = await loadDistribution(options.distribution);
  const results = await loadRoles(distribution, options.roles);
  const failures = results.filter((r): r is Extract<LoadResult, { ok: false }> => !r.ok);
  if (failures.length > 0) throw new PluginLoadError(failures);
  const kernel = new Kernel({
    options: { roles: options.roles, dataDir: options.dataDir, settings: distribution.kernel },
    plugins: results.flatMap((r) => (r.ok ? [r.plugin] : [])),
    logger: options.logger,
    registry: options.registry,
  });
  return { kernel, distribution };
}
