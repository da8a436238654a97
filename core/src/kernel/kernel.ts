import { KIND_INFO, type ApiClient, type ContractOf, type Logger, type ProviderKind, type Registry } from '@kubernel/sdk';
import { Container } from 'inversify';
import { ExtensionRegistry } from './extension-registry.js';
import type { NamedCheck } from './health-server.js';
import { KernelMetrics } from './kernel-metrics.js';
import type { KernelOptions } from './kernel-options.js';
import type { LoadedPlugin } from './plugin-loader.js';
import { aggregateHealth, type KernelHealth, type PluginState, type PluginStatus } from './plugin-status.js';
import { PluginSupervisor } from './plugin-supervisor.js';
import { TYPES, type ApiAccess } from './tokens.js';

/** Thrown by {@link Kernel.start} when a plugin fails to start; names the plugin. */
export class KernelStartError extends Error {
  override readonly name = 'KernelStartError';
  constructor(
    readonly plugin: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`start-up failed: plugin "${plugin}" ${reason}`, options);
  }
}

/** What {@link Kernel.stop} did to each plugin. */
export interface StopReport {
  /** Plugins that settled after abort. */
  readonly stopped: readonly string[];
  /** Plugins that did not settle before the stop timeout and were left behind. */
  readonly abandoned: readonly string[];
}

/** Receives start-up progress, for progress output. */
export interface StartObserver {
  /** A plugin's start is about to be called. */
  starting?(plugin: PluginStatus): void;
  /** A plugin became ready after `ms` milliseconds. */
  running?(plugin: PluginStatus, ms: number): void;
}

/** What the kernel needs to run: its options, the loaded plugins, and the shared logger and registry. */
export interface KernelParts {
  readonly options: KernelOptions;
  readonly plugins: readonly LoadedPlugin[];
  readonly logger: Logger;
  readonly registry: Registry;
}

/**
 * The plugin host: starts plugins in tier order (providers before services, each tier in
 * distribution order), supervises them, reports their health, and stops them within a deadline
 * (services first, then providers; each tier in parallel).
 */
export class Kernel {
  private readonly log: Logger;
  private readonly supervisors: readonly PluginSupervisor[];
  private readonly options: KernelOptions;
  private stopping?: Promise<StopReport>;
  private readonly registry: ExtensionRegistry;
  private readonly apiAccess: ApiAccess = {};

  constructor(parts: KernelParts) {
    this.log = parts.logger.child({ component: 'kernel' });
    this.options = parts.options;
    const root = new Container({ defaultScope: 'Singleton' });
    root.bind(TYPES.Logger).toConstantValue(parts.logger);
    root.bind(TYPES.MetricsRegistry).toConstantValue(parts.registry);
    root.bind(TYPES.KernelOptions).toConstantValue(parts.options);
    root.bind(TYPES.KernelMetrics).toConstantValue(new KernelMetrics(parts.registry));
    root.bind(ExtensionRegistry).toSelf();
    root.bind(TYPES.ApiAccess).toConstantValue(this.apiAccess);
    this.registry = root.get(ExtensionRegistry);
    const ordered = [...parts.plugins].sort((a, b) => KIND_INFO[a.definition.kind].tier - KIND_INFO[b.definition.kind].tier);
    this.supervisors = ordered.map((plugin) => {
      const child = new Container({ parent: root, defaultScope: 'Singleton' });
      child.bind(TYPES.LoadedPlugin).toConstantValue(plugin);
      child.bind(PluginSupervisor).toSelf();
      return child.get(PluginSupervisor);
    });
  }

  /**
   * Starts every plugin in order, each once the previous is ready. When one fails, the ones
   * already started are stopped and this rejects.
   *
   * @throws {KernelStartError} naming the plugin that failed and why.
   */
  async start(observer: StartObserver = {}): Promise<void> {
    for (const supervisor of this.supervisors) {
      if (this.stopping) throw new KernelStartError(supervisor.id, 'was not started: the kernel is stopping');
      try {
        observer.starting?.(supervisor.status());
        const began = Date.now();
        await supervisor.start();
        observer.running?.(supervisor.status(), Date.now() - began);
        this.log.info(`plugin "${supervisor.id}" (${supervisor.kind}) is running`);
      } catch (err) {
        const reason = (err as { reason?: string }).reason ?? String(err);
        this.log.error({ plugin: supervisor.id, kind: supervisor.kind }, `start-up failed: plugin "${supervisor.id}" ${reason}`);
        await this.stop();
        throw new KernelStartError(supervisor.id, reason, { cause: err });
      }
    }
  }

  /**
   * Stops every plugin within the stop timeout: services first, then providers, each tier in
   * parallel. A plugin that does not settle in time is abandoned and named in the log; this
   * resolves anyway. Calling it again returns the same report.
   */
  stop(): Promise<StopReport> {
    this.stopping ??= (async () => {
      const deadline = Date.now() + this.options.settings.stopTimeoutMs;
      const tiers = [...new Set(this.supervisors.map((s) => KIND_INFO[s.kind].tier))].sort((a, b) => b - a);
      const outcome = new Map<string, PluginState>();
      for (const tier of tiers) {
        const members = this.supervisors.filter((s) => KIND_INFO[s.kind].tier === tier);
        const states = await Promise.all(members.map((s) => s.stop(deadline)));
        members.forEach((s, i) => outcome.set(s.id, states[i]!));
      }
      const abandoned = [...outcome].filter(([, s]) => s === 'abandoned').map(([id]) => id);
      const stopped = [...outcome].filter(([, s]) => s !== 'abandoned').map(([id]) => id);
      if (abandoned.length > 0) this.log.error({ abandoned }, `stopped with ${abandoned.length} plugin(s) abandoned: ${abandoned.join(', ')}`);
      else this.log.info('all plugins stopped');
      return { stopped, abandoned };
    })();
    return this.stopping;
  }

  /**
   * What the providers of `kind` have handed over, in distribution order (the order a chain runs
   * them: authenticators, authorizers, admission). Providers not running are absent.
   */
  extensions<K extends ProviderKind>(kind: K): ContractOf<K>[] {
    const provided = this.registry.lookup(kind);
    const out: ContractOf<K>[] = [];
    for (const s of this.supervisors) {
      if (s.kind !== kind) continue;
      const impl = provided.get(s.id);
      if (impl) out.push(impl);
    }
    return out;
  }

  /** Gives plugins started from now on `client` as `handle.api` (call before {@link start}). */
  connectApi(client: ApiClient): void {
    this.apiAccess.client = client;
  }

  /** Every plugin's status, in start order. */
  statuses(): PluginStatus[] {
    return this.supervisors.map((s) => s.status());
  }

  /** The aggregate health behind `/livez` and `/readyz`. */
  health(): KernelHealth {
    return aggregateHealth(this.statuses());
  }

  /** One health check per plugin (`plugin/<id>`), for the health endpoints. */
  checks(): NamedCheck[] {
    return this.statuses().map((p) => ({
      name: `plugin/${p.id}`,
      live: p.state !== 'failed' && p.state !== 'abandoned',
      ready: p.state === 'running',
      reason: `${p.state}${p.lastError ? ` (${p.lastError})` : ''}`,
    }));
  }
}
