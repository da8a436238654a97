import assert from 'node:assert/strict';
import semver from 'semver';
import { compileConfigSchema } from '../plugin/config.js';
import { checkPluginSpec, PLUGIN_BRAND_FORMAT, pluginBrandOf, type PluginDefinition } from '../plugin/define-plugin.js';
import { describeError } from '../plugin/errors.js';
import { isProviderKind, type PluginKind } from '../plugin/kinds.js';
import { SDK_VERSION } from '../version.js';
import { createTestHost, describeStop, startPlugin, type StartPluginOptions } from './harness.js';
import { trackResources } from './resources.js';

/** A configuration the plugin must refuse, and the JSON pointer its refusal must name. */
export interface InvalidConfigCase {
  /** The configuration to refuse. */
  readonly config: unknown;
  /** JSON pointer of the field the refusal must name, for example `/port`. */
  readonly path: string;
}

/** Options of {@link describePluginContract}. */
export interface PluginContractOptions extends Omit<StartPluginOptions, 'host' | 'attempt'> {
  /** Configurations the plugin must refuse, each with the path it must name. */
  readonly invalidConfigs?: readonly InvalidConfigCase[];
  /** How long the plugin may take to become ready; 10 s by default. */
  readonly startTimeoutMs?: number;
  /** How long the plugin may take to stop after abort; 5 s by default. */
  readonly stopTimeoutMs?: number;
}

function mochaGlobals(): { describe: Mocha.SuiteFunction; it: Mocha.TestFunction } {
  const g = globalThis as { describe?: Mocha.SuiteFunction; it?: Mocha.TestFunction };
  if (typeof g.describe !== 'function' || typeof g.it !== 'function') {
    throw new Error('the Kubernel contract suites run under mocha: describe() and it() must be globals');
  }
  return { describe: g.describe, it: g.it };
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The contract every plugin of any kind must pass (a mocha suite; call it at a spec file's top
 * level). It checks that the plugin:
 * - declares itself correctly: branded by `definePlugin`, sound id/kind/version, an SDK range this
 *   SDK satisfies, a config schema that compiles;
 * - validates its config: the given config is accepted, each invalid case is refused naming its
 *   field, an unknown top-level field and a non-object config are refused;
 * - starts, becomes ready (a provider provides an object), keeps running until aborted, then stops
 *   within the stop timeout;
 * - leaves no timers, sockets or other handles behind once stopped;
 * - starts again on the same data dir and metrics registry, as supervision restarts it.
 */
export function describePluginContract<K extends PluginKind, C>(
  definition: PluginDefinition<K, C>,
  options: PluginContractOptions = {},
): void {
  const { describe, it } = mochaGlobals();
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  const stopTimeoutMs = options.stopTimeoutMs ?? 5_000;
  const budget = startTimeoutMs + stopTimeoutMs + 2_000;

  describe(`plugin contract: ${String(definition?.id)} (${String(definition?.kind)})`, () => {
    it('declares itself correctly', () => {
      const brand = pluginBrandOf(definition);
      assert.ok(brand, 'the definition carries no Kubernel brand: build it with definePlugin()');
      assert.equal(brand.format, PLUGIN_BRAND_FORMAT, 'the definition carries a foreign brand');
      assert.deepEqual(checkPluginSpec(definition).map((e) => e.message), []);
      assert.ok(
        semver.satisfies(SDK_VERSION, definition.sdk),
        `the plugin asks for @kubernel/sdk ${definition.sdk}, but the SDK under test is ${SDK_VERSION}`,
      );
      assert.ok(Object.isFrozen(definition), 'the definition must be frozen');
    });

    it('validates its config, naming the bad field', () => {
      const validate = compileConfigSchema(definition.configSchema, definition.id);
      const good = validate(options.config ?? {});
      assert.ok(good.ok, `the contract's config was refused: ${good.ok ? '' : JSON.stringify(good.problems)}`);
      for (const bad of options.invalidConfigs ?? []) {
        const r = validate(bad.config);
        assert.ok(!r.ok, `accepted an invalid config: ${JSON.stringify(bad.config)}`);
        assert.ok(
          r.problems.some((p) => p.path === bad.path),
          `refusal of ${JSON.stringify(bad.config)} names ${JSON.stringify(r.problems.map((p) => p.path))}, not ${bad.path}`,
        );
      }
      const base = typeof options.config === 'object' && options.config !== null ? options.config : {};
      const unknownField = validate({ ...base, 'no-such-field-x': 1 });
      assert.ok(!unknownField.ok, 'accepted an unknown top-level config field: declare additionalProperties: false');
      assert.ok(unknownField.problems.some((p) => p.path === '/no-such-field-x'));
      assert.ok(!validate(42).ok, 'accepted a number as its whole config');
    });

    it('starts, becomes ready, runs until aborted and stops in time', async function () {
      this.timeout(budget);
      const running = startPlugin(definition, options);
      try {
        const provided = await withTimeout(running.ready, startTimeoutMs, 'becoming ready');
        if (isProviderKind(definition.kind)) {
          assert.equal(typeof provided, 'object', 'a provider must provide an implementation object');
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.equal(running.settled(), false, 'start() resolved before its signal aborted');
      } finally {
        const outcome = await running.stop(stopTimeoutMs);
        running.host.dispose();
        assert.equal(outcome.outcome, 'stopped', `stop on abort: ${describeStop(outcome)}`);
      }
    });

    it('leaves no timers, sockets or other handles behind after it stops', async function () {
      this.timeout(budget + 1_000);
      const host = createTestHost();
      try {
        // Start after one turn of the event loop: mocha arms its own test timer only then.
        await new Promise<void>((resolve) => setImmediate(resolve));
        const tracker = trackResources();
        const running = startPlugin(definition, { ...options, host });
        try {
          await withTimeout(running.ready, startTimeoutMs, 'becoming ready');
        } catch (err) {
          await running.stop(stopTimeoutMs);
          await tracker.settle(0);
          throw err;
        }
        const outcome = await running.stop(stopTimeoutMs);
        assert.equal(outcome.outcome, 'stopped', `stop on abort: ${describeStop(outcome)}`);
        // A few seconds for close callbacks and in-flight answers to run out; a leak outlives them.
        const leaked = await tracker.settle(3_000);
        assert.deepEqual(leaked, [], `still active after stop: ${leaked.join(', ')}\ncreated at:\n${tracker.origins().join('\n---\n')}`);
      } finally {
        host.dispose();
      }
    });

    it('starts again on the same data dir and metrics, as supervision restarts it', async function () {
      this.timeout(2 * budget);
      const host = createTestHost();
      try {
        for (const attempt of [1, 2]) {
          const running = startPlugin(definition, { ...options, host, attempt });
          try {
            await withTimeout(running.ready, startTimeoutMs, `becoming ready on attempt ${attempt}`);
          } catch (err) {
            await running.stop(stopTimeoutMs);
            throw new Error(`attempt ${attempt}: ${describeError(err)}`);
          }
          const outcome = await running.stop(stopTimeoutMs);
          assert.equal(outcome.outcome, 'stopped', `attempt ${attempt}: ${describeStop(outcome)}`);
        }
      } finally {
        host.dispose();
      }
    });
  });
}
