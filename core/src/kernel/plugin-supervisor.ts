import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  createMetrics,
  createPluginHandle,
  delay,
  describeError,
  isProviderKind,
  PluginError,
  type Extension,
  type Logger,
  type Registry,
} from '@kubernel/sdk';
import { inject, injectable } from 'inversify';
import { ExtensionRegistry } from './extension-registry.js';
import type { KernelMetrics } from './kernel-metrics.js';
import type { KernelOptions } from './kernel-options.js';
import type { LoadedPlugin } from './plugin-loader.js';
import type { PluginState, PluginStatus } from './plugin-status.js';
import { TYPES, type ApiAccess } from './tokens.js';

/** How one call of a plugin's `start` ended. */
interface Settlement {
  /** The thrown value; undefined when `start` resolved. */
  readonly error?: unknown;
}

/** One call of the plugin's `start`. */
interface Attempt {
  readonly number: number;
  readonly controller: AbortController;
  readonly startedAt: number;
  readyAt?: number;
  provided?: Extension;
  /** Resolves once `start` settles; never rejects. */
  readonly settled: Promise<Settlement>;
  isSettled: boolean;
  /** Set when the kernel ends the attempt for its own reason (start timeout). */
  failure?: string;
  retired?: Promise<void>;
}

type ReadyOutcome = 'ready' | 'settled' | 'timeout';

/** Waits for `promise` up to `ms`; resolves `true` if it settled in time. Leaves no timer. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise.then(() => true, () => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), Math.max(0, ms));
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs and supervises one plugin: starts it, waits for it to be ready, restarts it with
 * exponential back-off when it crashes, stops it on request within a deadline. One instance per
 * plugin, resolved from the plugin's child container.
 */
@injectable()
export class PluginSupervisor {
  private readonly log: Logger;
  private readonly stopController = new AbortController();
  private current?: Attempt;
  private attempts = 0;
  private consecutiveCrashes = 0;
  private restarts = 0;
  private lastError?: string;
  private state: PluginState = 'pending';
  private since = new Date();
  private loop?: Promise<void>;
  private readonly readyWaiters = new Set<(outcome: ReadyOutcome) => void>();

  constructor(
    @inject(TYPES.LoadedPlugin) readonly plugin: LoadedPlugin,
    @inject(TYPES.Logger) root: Logger,
    @inject(TYPES.KernelOptions) private readonly options: KernelOptions,
    @inject(ExtensionRegistry) private readonly extensions: ExtensionRegistry,
    @inject(TYPES.KernelMetrics) private readonly metrics: KernelMetrics,
    @inject(TYPES.MetricsRegistry) private readonly registry: Registry,
    @inject(TYPES.ApiAccess) private readonly apiAccess: ApiAccess,
  ) {
    this.log = root.child({ plugin: plugin.definition.id, kind: plugin.definition.kind });
    this.metrics.setState(this.id, this.kind, 'pending');
  }

  get id(): string {
    return this.plugin.definition.id;
  }

  get kind(): LoadedPlugin['definition']['kind'] {
    return this.plugin.definition.kind;
  }

  /** The plugin's current status. */
  status(): PluginStatus {
    return {
      id: this.id,
      kind: this.kind,
      role: this.plugin.role,
      version: this.plugin.definition.version,
      package: this.plugin.packageName,
      state: this.state,
      restarts: this.restarts,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
      since: this.since.toISOString(),
    };
  }

  /**
   * Starts the plugin and waits until it is ready, then supervises it in the background.
   *
   * @throws {PluginError} when `start` throws, resolves, or times out before the plugin is ready;
   *   the attempt is aborted and the plugin left `failed`.
   */
  async start(): Promise<void> {
    const attempt = await this.launch();
    const outcome = await this.awaitReady(attempt);
    if (outcome === 'ready') {
      this.loop = this.supervise(attempt);
      return;
    }
    let reason = await this.endFailedStart(attempt, outcome);
    if (this.stopController.signal.aborted) reason = 'start-up interrupted by shutdown';
    this.setState('failed', reason);
    throw new PluginError(this.id, 'start', reason);
  }

  /**
   * Aborts the plugin and waits for its `start` to settle until `deadline` (epoch ms), then closes
   * what it provided. Past the deadline the plugin is abandoned (logged by name) and this resolves
   * anyway.
   */
  async stop(deadline: number): Promise<PluginState> {
    this.stopController.abort();
    if (this.current && !this.current.isSettled) this.setState('stopping');
    if (this.loop) await within(this.loop, deadline - Date.now());
    const attempt = this.current;
    if (attempt) {
      if (!(await within(attempt.settled, deadline - Date.now()))) {
        this.extensions.delete(this.kind as never, this.id);
        const seconds = this.options.settings.stopTimeoutMs / 1000;
        this.log.error(`plugin "${this.id}" did not stop within the ${seconds}s stop timeout after abort; abandoned`);
        this.setState('abandoned', `did not stop within ${seconds}s`);
        return this.state;
      }
      const { error } = await attempt.settled;
      if (error !== undefined && attempt.readyAt !== undefined) {
        this.log.warn({ err: error }, `plugin "${this.id}" failed while stopping: ${describeError(error)}`);
      }
      await within(this.retire(attempt), deadline - Date.now());
    }
    if (this.state !== 'failed' && this.state !== 'pending') this.setState('stopped');
    return this.state;
  }

  private setState(state: PluginState, error?: string): void {
    this.state = state;
    this.since = new Date();
    if (error !== undefined) this.lastError = error;
    this.metrics.setState(this.id, this.kind, state);
  }

  private async launch(): Promise<Attempt> {
    const number = ++this.attempts;
    const { definition, config } = this.plugin;
    const dataDir = join(this.options.dataDir, 'plugins', this.id);
    await mkdir(dataDir, { recursive: true });
    const controller = new AbortController();
    // Stopping the supervisor aborts the current attempt and any attempt launched after it.
    const onStop = (): void => controller.abort();
    if (this.stopController.signal.aborted) controller.abort();
    else this.stopController.signal.addEventListener('abort', onStop, { once: true });
    const attempt: Attempt = { number, controller, startedAt: Date.now(), isSettled: false, settled: undefined as never };
    const handle = createPluginHandle(definition, config, {
      role: this.plugin.role,
      logger: this.log,
      dataDir,
      metrics: createMetrics(this.registry, this.id),
      attempt: number,
      extensions: this.extensions.lookup,
      ...(this.apiAccess.client ? { api: this.apiAccess.client } : {}),
      onReady: (implementation) => {
        if (controller.signal.aborted || attempt.isSettled) return;
        attempt.readyAt = Date.now();
        attempt.provided = implementation;
        if (implementation && isProviderKind(definition.kind)) this.extensions.set(definition.kind, this.id, implementation);
        this.metrics.startDuration.observe({ plugin: this.id, kind: this.kind }, (attempt.readyAt - attempt.startedAt) / 1000);
        for (const wake of this.readyWaiters) wake('ready');
      },
    });
    this.current = attempt;
    this.setState('starting');
    this.log.debug({ attempt: number }, `starting plugin "${this.id}"`);
    (attempt as { settled: Promise<Settlement> }).settled = (async (): Promise<Settlement> => {
      try {
        await definition.start(handle as never, config, controller.signal);
        return {};
      } catch (error) {
        return { error };
      } finally {
        this.stopController.signal.removeEventListener('abort', onStop);
        attempt.isSettled = true;
        for (const wake of this.readyWaiters) wake('settled');
      }
    })();
    return attempt;
  }

  /** Waits until `attempt` is ready, settles, or exceeds the start timeout. */
  private async awaitReady(attempt: Attempt): Promise<ReadyOutcome> {
    const check = (): ReadyOutcome | undefined =>
      attempt.readyAt !== undefined ? 'ready' : attempt.isSettled ? 'settled' : undefined;
    const early = check();
    if (early === 'ready') this.setState('running');
    if (early) return early;
    let wake!: (outcome: ReadyOutcome) => void;
    let timer: NodeJS.Timeout | undefined;
    const outcome = await new Promise<ReadyOutcome>((resolve) => {
      wake = () => {
        const o = check();
        if (o) resolve(o);
      };
      this.readyWaiters.add(wake);
      timer = setTimeout(() => resolve('timeout'), this.options.settings.startTimeoutMs);
    });
    clearTimeout(timer);
    this.readyWaiters.delete(wake);
    if (outcome === 'ready') this.setState('running');
    return outcome;
  }

  /** Ends an attempt that never became ready; returns why it failed. */
  private async endFailedStart(attempt: Attempt, outcome: ReadyOutcome): Promise<string> {
    let reason: string;
    if (outcome === 'timeout') {
      reason = `did not become ready within the ${this.options.settings.startTimeoutMs / 1000}s start timeout`;
      attempt.failure = reason;
      attempt.controller.abort();
      if (!(await within(attempt.settled, this.options.settings.stopTimeoutMs))) {
        reason += '; then did not stop after abort (abandoned)';
      }
    } else {
      const { error } = await attempt.settled;
      reason = error === undefined ? 'start() resolved before the plugin became ready' : `start() failed: ${describeError(error)}`;
    }
    await this.retire(attempt);
    return reason;
  }

  /** Closes what an attempt provided and unregisters it; idempotent. */
  private retire(attempt: Attempt): Promise<void> {
    attempt.retired ??= (async () => {
      if (attempt.provided === undefined) return;
      this.extensions.delete(this.kind as never, this.id);
      try {
        await attempt.provided.close?.();
      } catch (error) {
        this.log.warn({ err: error }, `closing what plugin "${this.id}" provided failed: ${describeError(error)}`);
      }
    })();
    return attempt.retired;
  }

  /** Restarts the plugin with back-off each time it crashes, until stopped. */
  private async supervise(first: Attempt): Promise<void> {
    let attempt = first;
    const { restartBackoffInitialMs, restartBackoffMaxMs, restartBackoffResetMs } = this.options.settings;
    for (;;) {
      const { error } = await attempt.settled;
      if (this.stopController.signal.aborted) return;
      await this.retire(attempt);
      if (attempt.readyAt !== undefined && Date.now() - attempt.readyAt >= restartBackoffResetMs) this.consecutiveCrashes = 0;
      this.consecutiveCrashes++;
      const wait = Math.min(restartBackoffInitialMs * 2 ** (this.consecutiveCrashes - 1), restartBackoffMaxMs);
      const reason =
        attempt.failure ??
        (error === undefined
          ? attempt.readyAt === undefined
            ? 'start() resolved before the plugin became ready'
            : 'start() resolved before its signal aborted'
          : describeError(error));
      this.restarts++;
      this.metrics.restarts.inc({ plugin: this.id, kind: this.kind });
      this.setState('backoff', reason);
      this.log.error(
        { err: error, restarts: this.restarts, backoffMs: wait },
        `plugin "${this.id}" crashed (${reason}); restarting in ${wait} ms`,
      );
      if (!(await delay(wait, this.stopController.signal))) return;
      attempt = await this.launch();
      const outcome = await this.awaitReady(attempt);
      if (outcome === 'timeout') {
        attempt.failure = `did not become ready within the ${this.options.settings.startTimeoutMs / 1000}s start timeout`;
        attempt.controller.abort();
        if (!(await within(attempt.settled, this.options.settings.stopTimeoutMs))) {
          this.log.error(`plugin "${this.id}" hung on restart and ignored abort; giving up on it`);
          this.setState('failed', `${attempt.failure}; then did not stop after abort`);
          return;
        }
      }
      if (outcome === 'ready') this.log.info({ attempt: attempt.number }, `plugin "${this.id}" restarted`);
    }
  }
}
