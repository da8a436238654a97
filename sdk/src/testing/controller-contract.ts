import assert from 'node:assert/strict';
import type { ApiClient, KubeObject } from '../client/api-client.js';
import type { PluginDefinition } from '../plugin/define-plugin.js';
import { describeStop, startPlugin, type RunningPlugin } from './harness.js';
import { describePluginContract, type PluginContractOptions } from './plugin-contract.js';

/** The world a controller acts on, as a test describes it. */
export interface ControllerScenario {
  /** Creates what the controller acts on (once, before the suite's controller runs). */
  setup(api: ApiClient): Promise<void>;
  /** True once the world is as the controller should make it. */
  converged(api: ApiClient): Promise<boolean>;
  /** Moves the world to an intermediate state the controller must repair (delete a dependent, scale, ...). */
  perturb(api: ApiClient): Promise<void>;
  /** Collection paths whose objects a converged controller must leave alone (no writes while nothing changes). */
  readonly watched: readonly string[];
  /** Objects a conflicting writer touches while the controller works (their annotations are bumped). */
  readonly contended?: readonly string[];
}

/** Options of {@link describeControllerContract}: the API client factory is required. */
export interface ControllerContractOptions extends PluginContractOptions {
  readonly api: () => ApiClient;
  readonly scenario: ControllerScenario;
  /** How long convergence may take; 20 s by default. */
  readonly convergeTimeoutMs?: number;
  /** How long a converged controller is watched for spurious writes; 2 s by default. */
  readonly quietMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function eventually(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not converged within ${ms} ms${last ? ` (last error: ${String(last)})` : ''}`);
    await sleep(50);
  }
}

async function versions(api: ApiClient, paths: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const path of paths) {
    for (const o of (await api.list<KubeObject>(path)).items) out.set(`${path}:${o.metadata?.namespace ?? ''}/${o.metadata?.name}`, String(o.metadata?.resourceVersion));
  }
  return out;
}

/**
 * The contract of the `controller` kind (a mocha suite at a spec file's top level, against a live
 * API server): the general plugin contract, then, on the given scenario: the controller converges
 * from the initial state; once converged it writes nothing more (idempotent reconciles); it
 * converges again from an intermediate state while running; it converges after a restart that
 * happened while the world changed; and it converges while another writer keeps changing the
 * objects it writes (conflicts are retried, not fatal).
 */
export function describeControllerContract<C>(definition: PluginDefinition<'controller', C>, options: ControllerContractOptions): void {
  describePluginContract(definition, options);
  const g = globalThis as unknown as { describe: Mocha.SuiteFunction; it: Mocha.TestFunction; before: Mocha.HookFunction; after: Mocha.HookFunction };
  const timeout = options.convergeTimeoutMs ?? 20_000;
  const { scenario } = options;
  g.describe(`controller contract: ${definition.id}`, function (this: Mocha.Suite) {
    this.timeout(timeout * 2 + 10_000);
    let api: ApiClient;
    let running: RunningPlugin | undefined;
    const start = async (): Promise<void> => {
      running = startPlugin(definition, options);
      await running.ready;
    };
    const stop = async (): Promise<void> => {
      const outcome = await running?.stop();
      running?.host.dispose();
      running = undefined;
      if (outcome) assert.equal(outcome.outcome, 'stopped', describeStop(outcome));
    };
    g.before(async () => {
      api = options.api();
      await scenario.setup(api);
      await start();
    });
    g.after(async () => {
      await stop();
      api?.close();
    });

    g.it('converges from the initial state', async () => {
      await eventually(() => scenario.converged(api), timeout, 'initial state');
    });

    g.it('writes nothing more once converged (idempotent reconciles)', async () => {
      await eventually(() => scenario.converged(api), timeout, 'initial state');
      await sleep(300);
      const before = await versions(api, scenario.watched);
      await sleep(options.quietMs ?? 2_000);
      const after = await versions(api, scenario.watched);
      const changed = [...after].filter(([k, v]) => before.get(k) !== v).map(([k]) => k);
      const gone = [...before.keys()].filter((k) => !after.has(k));
      assert.deepEqual([...changed, ...gone], [], 'a converged controller changed objects');
    });

    g.it('converges again from an intermediate state', async () => {
      await scenario.perturb(api);
      await eventually(() => scenario.converged(api), timeout, 'after a change while running');
    });

    g.it('converges after a restart during which the world changed', async () => {
      await stop();
      await scenario.perturb(api);
      await start();
      await eventually(() => scenario.converged(api), timeout, 'after a restart');
    });

    g.it('converges while another writer keeps changing the objects it writes', async () => {
      let writing = true;
      const writer = (async () => {
        for (let i = 0; writing; i++) {
          for (const path of scenario.contended ?? []) {
            await api.patch(path, { metadata: { annotations: { 'contract.kubernel.io/bump': String(i) } } }).catch(() => undefined);
          }
          await sleep(20);
        }
      })();
      try {
        await scenario.perturb(api);
        await eventually(() => scenario.converged(api), timeout, 'under conflicting writes');
      } finally {
        writing = false;
        await writer;
      }
    });
  });
}
