import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { Registry } from 'prom-client';
import { compileConfigSchema, formatConfigProblems } from '../plugin/config.js';
import type { ApiClient } from '../client/api-client.js';
import type { PluginDefinition } from '../plugin/define-plugin.js';
import { describeError, PluginError } from '../plugin/errors.js';
import type { Extension, ExtensionLookup } from '../plugin/extensions.js';
import type { Role } from '../plugin/handle.js';
import { createPluginHandle } from '../plugin/host.js';
import type { PluginKind, ProviderKind } from '../plugin/kinds.js';
import { createMetrics } from '../plugin/metrics.js';

/** One log line a plugin wrote, parsed (pino's JSON record). */
export type LogRecord = { level: number; msg?: string; plugin?: string; kind?: string } & Record<string, unknown>;

/** Where a test harness keeps what several start attempts of one plugin share. */
export interface TestHost {
  /** The plugin's data dir (a fresh temporary directory unless given). */
  readonly dataDir: string;
  /** The Prometheus registry the plugin's metrics land in. */
  readonly registry: Registry;
  /** Every log record written so far, oldest first. */
  readonly logs: LogRecord[];
  /** The root logger; plugins get a child bound to `{plugin, kind}`. */
  readonly logger: Logger;
  /** Removes the temporary data dir (if the host made it). */
  dispose(): void;
}

/** Options of {@link createTestHost}. */
export interface TestHostOptions {
  /** Use this data dir instead of a temporary one (it is not removed by `dispose`). */
  readonly dataDir?: string;
  /** Minimum log level captured; `debug` by default. */
  readonly logLevel?: string;
}

/** Makes a {@link TestHost}: captured logs, a private registry, a temporary data dir. */
export function createTestHost(options: TestHostOptions = {}): TestHost {
  const owned = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'kubernel-plugin-'));
  const logs: LogRecord[] = [];
  const logger = pino(
    { level: options.logLevel ?? 'debug' },
    { write: (line: string) => void logs.push(JSON.parse(line) as LogRecord) },
  );
  return {
    dataDir,
    registry: new Registry(),
    logs,
    logger,
    dispose: () => {
      if (owned) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Options of {@link startPlugin}. */
export interface StartPluginOptions {
  /** The raw configuration, validated (with defaults) against the plugin's schema first. Default `{}`. */
  readonly config?: unknown;
  /** The role to run in; `server` by default. */
  readonly role?: Role;
  /** Shares data dir, registry and logs between attempts; a fresh host when absent. */
  readonly host?: TestHost;
  /** The attempt number the handle reports; 1 by default. */
  readonly attempt?: number;
  /** Implementations other providers would have provided, by kind (for consumer plugins). */
  readonly extensions?: Partial<Record<ProviderKind, ReadonlyMap<string, Extension>>>;
  /**
   * The API client the plugin's handle offers. A function is called at each start (for clusters
   * started in a `before` hook) and the client it returns is closed when that start stops, so the
   * plugin's informers end with it; a client object is shared and left open.
   */
  readonly api?: ApiClient | (() => ApiClient);
}

/** Result of {@link RunningPlugin.stop}. */
export type StopOutcome =
  | { readonly outcome: 'stopped' }
  | { readonly outcome: 'failed'; readonly error: unknown }
  | { readonly outcome: 'timeout' };

/** A plugin started by {@link startPlugin}. */
export interface RunningPlugin {
  /** The host its attempts share. */
  readonly host: TestHost;
  /** Resolves with the provided implementation (providers) or `undefined` (services) once ready. Rejects if `start` fails first. */
  readonly ready: Promise<Extension | undefined>;
  /** Settles when `start` settles. */
  readonly done: Promise<void>;
  /** True once `start` has settled. */
  readonly settled: () => boolean;
  /** Aborts the plugin's signal and waits up to `timeoutMs` for `start` to settle; closes the provided implementation. */
  stop(timeoutMs?: number): Promise<StopOutcome>;
}

const emptyLookup = (extensions: StartPluginOptions['extensions']): ExtensionLookup =>
  ((kind: ProviderKind) => extensions?.[kind] ?? new Map()) as ExtensionLookup;

/**
 * Starts `definition` the way the kernel does, without a kernel: validates the config, builds a
 * handle and calls `start`. For plugin unit tests and the contract suites.
 *
 * @throws {PluginError} when the config is invalid (nothing is started).
 */
export function startPlugin<K extends PluginKind, C>(definition: PluginDefinition<K, C>, options: StartPluginOptions = {}): RunningPlugin {
  const validate = compileConfigSchema<C>(definition.configSchema, definition.id);
  const result = validate(options.config ?? {});
  if (!result.ok) throw new PluginError(definition.id, 'config', formatConfigProblems(result.problems));
  const ownedHost = options.host === undefined;
  const host = options.host ?? createTestHost();
  const controller = new AbortController();
  let onReady!: (impl: Extension | undefined) => void;
  let onFail!: (err: unknown) => void;
  let isReady = false;
  const ready = new Promise<Extension | undefined>((resolve, reject) => {
    onReady = (impl) => {
      isReady = true;
      resolve(impl);
    };
    onFail = reject;
  });
  ready.catch(() => undefined);
  let provided: Extension | undefined;
  const ownedApi = typeof options.api === 'function' ? options.api() : undefined;
  const handle = createPluginHandle(definition as PluginDefinition, result.config, {
    role: options.role ?? 'server',
    logger: host.logger.child({ plugin: definition.id, kind: definition.kind }),
    dataDir: host.dataDir,
    metrics: createMetrics(host.registry, definition.id),
    attempt: options.attempt ?? 1,
    extensions: emptyLookup(options.extensions),
    ...(options.api ? { api: ownedApi ?? (options.api as ApiClient) } : {}),
    onReady: (impl) => {
      provided = impl;
      onReady(impl);
    },
  });
  let settled = false;
  const done = (async () => {
    try {
      await (definition.start as (h: unknown, c: C, s: AbortSignal) => Promise<void>)(handle, result.config, controller.signal);
      if (!isReady) onFail(new PluginError(definition.id, 'start', 'resolved before the plugin became ready'));
    } catch (err) {
      if (!isReady) onFail(err);
      throw err;
    } finally {
      settled = true;
    }
  })();
  done.catch(() => undefined);
  return {
    host,
    ready,
    done,
    settled: () => settled,
    async stop(timeoutMs = 5000) {
      controller.abort();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      try {
        const outcome = await Promise.race([done.then(() => 'stopped' as const), timeout]);
        if (outcome === 'timeout') return { outcome };
        await provided?.close?.();
        return { outcome };
      } catch (error) {
        return { outcome: 'failed', error };
      } finally {
        clearTimeout(timer);
        ownedApi?.close();
        // A host made for this start goes with it (its temporary data dir); a given one is the caller's.
        if (ownedHost) host.dispose();
      }
    },
  };
}

/** Formats a stop outcome for assertion messages. */
export function describeStop(outcome: StopOutcome): string {
  return outcome.outcome === 'failed' ? `failed: ${describeError(outcome.error)}` : outcome.outcome;
}
