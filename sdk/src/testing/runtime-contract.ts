/**
 * The published contract suite of kind `container-runtime` (the critest model): the general plugin
 * contract, then CRI behaviour checked against the runtime the plugin provides.
 *
 * @module
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PluginDefinition } from '../plugin/define-plugin.js';
import {
  CONTAINER_RESTART_COUNT_ANNOTATION,
  isContainerRuntime,
  isRuntimeError,
  missingContainerRuntimeMethods,
  NETWORK_READY,
  restartCountOf,
  RUNTIME_READY,
  type ContainerConfig,
  type ContainerRuntime,
  type ContainerState,
  type ContainerStatus,
  type PodSandboxConfig,
  type RuntimeErrorCode,
} from '../runtime/cri.js';
import { describeStop, startPlugin, type RunningPlugin } from './harness.js';
import { describePluginContract, type PluginContractOptions } from './plugin-contract.js';

/** Options of {@link describeContainerRuntimeContract}; the defaults suit an in-memory runtime with a simulated registry. */
export interface ContainerRuntimeContractOptions extends PluginContractOptions {
  /**
   * The image every test container runs: present on the node, or pullable when `pull` is true
   * (`docker.io/library/busybox:latest` by default). A real runtime with no registry passes a
   * locally imported image and `pull: false`.
   */
  readonly image?: string;
  /** Whether the suite may pull `image` when absent; true by default. */
  readonly pull?: boolean;
  /**
   * An image the suite pulls and then removes (pull, status, list, remove, idempotent remove);
   * `docker.io/library/alpine:latest` by default. `null` skips that test (no registry reachable).
   * Never pass an image something else needs: the suite removes it.
   */
  readonly removableImage?: string | null;
  /** A command that runs until stopped; `['sleep', '3600']` by default. */
  readonly runningCommand?: readonly string[];
  /** A command that exits by itself with {@link ContainerRuntimeContractOptions.exitingCode}; `['sh', '-c', 'exit 3']` by default. */
  readonly exitingCommand?: readonly string[];
  /** The exit code of `exitingCommand`; 3 by default. */
  readonly exitingCode?: number;
  /** A command `execSync` runs in a running container; `['echo', 'hi']` by default. */
  readonly execCommand?: readonly string[];
  /** What `execCommand` prints on stdout; `'hi\n'` by default. */
  readonly execOutput?: string;
  /** A command `execSync` runs that exits non-zero with `execFailingCode`; `['sh', '-c', 'exit 7']` by default. */
  readonly execFailingCommand?: readonly string[];
  /** The exit code of `execFailingCommand`; 7 by default. */
  readonly execFailingCode?: number;
  /** The grace period (seconds) passed to `stopContainer`; 1 by default. */
  readonly stopGraceSeconds?: number;
  /** How long a container whose command exits may take to reach `CONTAINER_EXITED`; 15 s by default. */
  readonly exitTimeoutMs?: number;
  /** Budget of each runtime test (mocha timeout); 60 s by default. */
  readonly testTimeoutMs?: number;
  /** Whether `status()` must report `NetworkReady` true (false for runtimes without a pod network); true by default. */
  readonly expectNetworkReady?: boolean;
  /** The runtime handler (RuntimeClass handler) sandboxes run with; the default handler when absent. */
  readonly runtimeHandler?: string;
  /** Merged into every sandbox config the suite makes (e.g. `linux.cgroupParent`, `dnsConfig`). */
  readonly sandboxTemplate?: Partial<PodSandboxConfig>;
  /** Merged into every container config the suite makes (e.g. `linux.securityContext`). */
  readonly containerTemplate?: Partial<ContainerConfig>;
}

interface MochaGlobals {
  describe: Mocha.SuiteFunction;
  it: Mocha.TestFunction;
  before: Mocha.HookFunction;
  after: Mocha.HookFunction;
}

function mochaGlobals(): MochaGlobals {
  const g = globalThis as Partial<MochaGlobals>;
  if (typeof g.describe !== 'function' || typeof g.it !== 'function' || typeof g.before !== 'function' || typeof g.after !== 'function') {
    throw new Error('the Kubernel contract suites run under mocha: describe(), it(), before() and after() must be globals');
  }
  return { describe: g.describe, it: g.it, before: g.before, after: g.after };
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

/** Asserts that `promise` rejects with a RuntimeError, of one of `codes` when given. */
async function rejectsWith(promise: Promise<unknown>, codes: readonly RuntimeErrorCode[] | undefined, what: string): Promise<void> {
  let error: unknown;
  try {
    await promise;
  } catch (err) {
    error = err;
  }
  assert.ok(error !== undefined, `${what}: succeeded, but should have failed${codes ? ` with ${codes.join(' or ')}` : ''}`);
  assert.ok(isRuntimeError(error), `${what}: failed with ${String(error)}, which is not a RuntimeError`);
  if (codes) assert.ok(codes.includes(error.code), `${what}: failed with ${error.code} (${error.message}), expected ${codes.join(' or ')}`);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const text = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');

/**
 * The contract every `container-runtime` plugin must pass (a mocha suite; call it at a spec file's
 * top level). First {@link describePluginContract}; then, against the runtime the plugin provides
 * (started once for the suite):
 * - it is a {@link ContainerRuntime}; `version` names the runtime and CRI `v1`; `status` reports
 *   `RuntimeReady` (and `NetworkReady`) true;
 * - images: the test image is present (or pulled), listed and inspected; an absent image has no
 *   status (not an error); a pullable image is pulled, listed, removed, removed again (idempotent);
 *   a pull from an unresolvable registry fails; `imageFsInfo` answers;
 * - sandbox lifecycle: run → `SANDBOX_READY` in status and list → stop (twice) → `SANDBOX_NOTREADY`
 *   → remove (twice) → `NotFound`;
 * - container lifecycle: create → `CONTAINER_CREATED`, start → `CONTAINER_RUNNING`, `execSync`
 *   returns output and exit codes, exec/attach/port-forward return URLs, stop with a grace period →
 *   `CONTAINER_EXITED` with an exit code (stop again succeeds), remove (twice) → `NotFound`;
 * - a container whose command exits on its own reaches `CONTAINER_EXITED` with its exit code;
 * - list filters by id, sandbox, state and labels (AND);
 * - stopping a sandbox stops its containers, removing it removes them, and creating a container in a
 *   removed sandbox fails;
 * - unknown ids are `NotFound`.
 *
 * Everything the suite creates is removed in an `after` hook, even when a test fails.
 */
export function describeContainerRuntimeContract<C>(
  definition: PluginDefinition<'container-runtime', C>,
  options: ContainerRuntimeContractOptions = {},
): void {
  describePluginContract(definition, options);
  const { describe, it, before, after } = mochaGlobals();
  const image = options.image ?? 'docker.io/library/busybox:latest';
  const removableImage = options.removableImage === undefined ? 'docker.io/library/alpine:latest' : options.removableImage;
  const runningCommand = options.runningCommand ?? ['sleep', '3600'];
  const exitingCommand = options.exitingCommand ?? ['sh', '-c', 'exit 3'];
  const exitingCode = options.exitingCode ?? 3;
  const execCommand = options.execCommand ?? ['echo', 'hi'];
  const execOutput = options.execOutput ?? 'hi\n';
  const execFailingCommand = options.execFailingCommand ?? ['sh', '-c', 'exit 7'];
  const execFailingCode = options.execFailingCode ?? 7;
  const grace = options.stopGraceSeconds ?? 1;
  const exitTimeoutMs = options.exitTimeoutMs ?? 15_000;
  const testTimeoutMs = options.testTimeoutMs ?? 60_000;
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  const stopTimeoutMs = options.stopTimeoutMs ?? 5_000;

  describe(`container runtime contract: ${String(definition?.id)}`, function () {
    this.timeout(testTimeoutMs);
    const runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    const RUN_LABEL = 'contract.kubernel.io/run';
    let running: RunningPlugin | undefined;
    let started = false;
    let runtime: ContainerRuntime;
    let logRoot = '';
    let counter = 0;
    const sandboxes = new Set<string>();
    const containers = new Set<string>();
    const images = new Set<string>();

    const rt = (): ContainerRuntime => {
      assert.ok(runtime, 'the runtime did not start (see the before hook)');
      return runtime;
    };

    const sandboxConfig = (labels: Record<string, string> = {}): PodSandboxConfig => {
      const n = ++counter;
      const name = `contract-${runId}-${n}`;
      const t = options.sandboxTemplate ?? {};
      return {
        ...t,
        metadata: { name, uid: `uid-${runId}-${n}`, namespace: 'kubernel-contract', attempt: 0 },
        hostname: t.hostname ?? name,
        logDirectory: t.logDirectory ?? join(logRoot, name),
        labels: { ...(t.labels ?? {}), ...labels, [RUN_LABEL]: runId },
        annotations: { ...(t.annotations ?? {}), 'contract.kubernel.io/sandbox': name },
      };
    };

    const runSandbox = async (labels: Record<string, string> = {}): Promise<{ id: string; config: PodSandboxConfig }> => {
      const config = sandboxConfig(labels);
      const id = await rt().runPodSandbox(config, options.runtimeHandler);
      assert.equal(typeof id, 'string');
      assert.ok(id.length > 0, 'runPodSandbox returned an empty id');
      sandboxes.add(id);
      return { id, config };
    };

    const containerConfig = (name: string, command: readonly string[], extra: Partial<ContainerConfig> = {}): ContainerConfig => {
      const t = options.containerTemplate ?? {};
      return {
        ...t,
        ...extra,
        metadata: extra.metadata ?? { name, attempt: 0 },
        image: { image },
        command,
        logPath: `${name}_0.log`,
        labels: { ...(t.labels ?? {}), ...(extra.labels ?? {}), [RUN_LABEL]: runId },
        annotations: { ...(t.annotations ?? {}), ...(extra.annotations ?? {}) },
      };
    };

    const createContainer = async (sandbox: { id: string; config: PodSandboxConfig }, name: string, command: readonly string[], extra: Partial<ContainerConfig> = {}): Promise<string> => {
      const id = await rt().createContainer(sandbox.id, containerConfig(name, command, extra), sandbox.config);
      assert.equal(typeof id, 'string');
      assert.ok(id.length > 0, 'createContainer returned an empty id');
      containers.add(id);
      return id;
    };

    const statusOf = async (id: string): Promise<ContainerStatus> => (await rt().containerStatus(id)).status;

    const waitForState = async (id: string, state: ContainerState, ms: number): Promise<ContainerStatus> => {
      const deadline = Date.now() + ms;
      let last = await statusOf(id);
      while (last.state !== state && Date.now() < deadline) {
        await sleep(50);
        last = await statusOf(id);
      }
      assert.equal(last.state, state, `container ${id} did not reach ${state} within ${ms} ms`);
      return last;
    };

    const ids = (list: ReadonlyArray<{ id: string }>): string[] => list.map((x) => x.id).sort();

    before(async function () {
      this.timeout(startTimeoutMs + testTimeoutMs);
      logRoot = mkdtempSync(join(tmpdir(), 'kubernel-cri-contract-'));
      running = startPlugin(definition, options);
      const provided = await withTimeout(running.ready, startTimeoutMs, 'becoming ready');
      assert.ok(isContainerRuntime(provided), `the provided object is not a ContainerRuntime: missing ${missingContainerRuntimeMethods(provided).join(', ')}`);
      runtime = provided;
      started = true;
      const present = await runtime.imageStatus({ image });
      if (!present.image) {
        assert.ok(options.pull ?? true, `the test image ${image} is not present and pull is false`);
        await runtime.pullImage({ image });
      }
    });

    after(async function () {
      this.timeout(stopTimeoutMs + testTimeoutMs);
      try {
        if (runtime) {
          for (const id of containers) await runtime.removeContainer(id).catch(() => undefined);
          for (const id of sandboxes) {
            await runtime.stopPodSandbox(id).catch(() => undefined);
            await runtime.removePodSandbox(id).catch(() => undefined);
          }
          for (const ref of images) await runtime.removeImage({ image: ref }).catch(() => undefined);
        }
      } finally {
        if (running) {
          const outcome = await running.stop(stopTimeoutMs);
          running.host.dispose();
          // A start that failed is reported by the before hook; only a runtime that ran must stop cleanly.
          if (started) assert.equal(outcome.outcome, 'stopped', `stop on abort: ${describeStop(outcome)}`);
        }
        if (logRoot) rmSync(logRoot, { recursive: true, force: true });
      }
    });

    it('provides every RuntimeService and ImageService method', () => {
      assert.deepEqual(missingContainerRuntimeMethods(rt()), []);
    });

    it('answers version with its name and CRI v1', async () => {
      const v = await rt().version('v1');
      assert.ok(typeof v.runtimeName === 'string' && v.runtimeName.length > 0, 'runtimeName is empty');
      assert.ok(typeof v.runtimeVersion === 'string' && v.runtimeVersion.length > 0, 'runtimeVersion is empty');
      assert.match(v.runtimeApiVersion, /^v1/);
      assert.equal(typeof v.version, 'string');
    });

    it('reports RuntimeReady (and NetworkReady) in status', async () => {
      const { status } = await rt().status(false);
      const condition = (type: string) => status.conditions.find((c) => c.type === type);
      assert.equal(condition(RUNTIME_READY)?.status, true, `RuntimeReady is not true: ${JSON.stringify(status.conditions)}`);
      const network = condition(NETWORK_READY);
      assert.ok(network, 'no NetworkReady condition');
      if (options.expectNetworkReady ?? true) assert.equal(network.status, true, `NetworkReady is not true: ${JSON.stringify(network)}`);
    });

    describe('images', () => {
      it('has the test image: imageStatus and listImages agree', async () => {
        const { image: img } = await rt().imageStatus({ image });
        assert.ok(img, `imageStatus(${image}) has no image`);
        assert.ok(img.id.length > 0, 'the image has an empty id');
        assert.ok(img.size >= 0);
        const all = await rt().listImages();
        assert.ok(all.some((i) => i.id === img.id), 'listImages does not list the test image');
        const filtered = await rt().listImages({ image: { image } });
        assert.deepEqual(filtered.map((i) => i.id), [img.id], 'listImages filtered by the test image');
      });

      it('answers imageStatus of an absent image with no image, not an error', async () => {
        const r = await rt().imageStatus({ image: 'registry.kubernel.invalid/contract/absent:0' });
        assert.equal(r.image, undefined);
      });

      it('pulls, lists and removes an image; removeImage is idempotent', async function () {
        // Skipped only when the caller says the runtime has no image it may remove (`removableImage: null`, e.g. an air-gapped containerd).
        if (removableImage === null) this.skip();
        const ref = removableImage!;
        images.add(ref);
        const imageRef = await rt().pullImage({ image: ref });
        assert.ok(typeof imageRef === 'string' && imageRef.length > 0, 'pullImage returned an empty reference');
        const { image: img } = await rt().imageStatus({ image: ref });
        assert.ok(img, 'the pulled image has no status');
        assert.ok((await rt().listImages()).some((i) => i.id === img.id), 'listImages does not list the pulled image');
        await rt().removeImage({ image: ref });
        assert.equal((await rt().imageStatus({ image: ref })).image, undefined, 'the removed image still has a status');
        await rt().removeImage({ image: ref });
        images.delete(ref);
      });

      it('fails to pull from a registry that cannot resolve', async () => {
        await rejectsWith(rt().pullImage({ image: 'registry.kubernel.invalid/contract/nothing:0' }), undefined, 'pullImage of an unresolvable image');
      });

      it('answers imageFsInfo', async () => {
        const fs = await rt().imageFsInfo();
        assert.ok(Array.isArray(fs.imageFilesystems) && fs.imageFilesystems.length > 0, 'no image filesystem');
        for (const u of fs.imageFilesystems) {
          assert.equal(typeof u.usedBytes, 'number');
          assert.equal(typeof u.fsId.mountpoint, 'string');
        }
        assert.ok(Array.isArray(fs.containerFilesystems));
      });
    });

    describe('pod sandboxes', () => {
      it('runs a sandbox (ready, listed), stops it (twice), removes it (twice), then it is NotFound', async () => {
        const sb = await runSandbox({ role: 'lifecycle' });
        const { status } = await rt().podSandboxStatus(sb.id);
        assert.equal(status.id, sb.id);
        assert.equal(status.state, 'SANDBOX_READY');
        assert.deepEqual(
          { name: status.metadata.name, uid: status.metadata.uid, namespace: status.metadata.namespace },
          { name: sb.config.metadata.name, uid: sb.config.metadata.uid, namespace: sb.config.metadata.namespace },
        );
        assert.equal(status.labels.role, 'lifecycle');
        assert.equal(status.annotations['contract.kubernel.io/sandbox'], sb.config.metadata.name);
        assert.ok(status.createdAt > 0, 'createdAt is not set');
        const listed = await rt().listPodSandbox({ id: sb.id });
        assert.deepEqual(listed.map((s) => [s.id, s.state]), [[sb.id, 'SANDBOX_READY']]);
        assert.ok(ids(await rt().listPodSandbox({ state: 'SANDBOX_READY', labelSelector: { [RUN_LABEL]: runId } })).includes(sb.id));

        await rt().stopPodSandbox(sb.id);
        assert.equal((await rt().podSandboxStatus(sb.id)).status.state, 'SANDBOX_NOTREADY', 'state after stopPodSandbox');
        await rt().stopPodSandbox(sb.id);
        assert.ok(!ids(await rt().listPodSandbox({ state: 'SANDBOX_READY', labelSelector: { [RUN_LABEL]: runId } })).includes(sb.id));

        await rt().removePodSandbox(sb.id);
        await rejectsWith(rt().podSandboxStatus(sb.id), ['NotFound'], 'podSandboxStatus of a removed sandbox');
        assert.deepEqual(await rt().listPodSandbox({ id: sb.id }), []);
        await rt().removePodSandbox(sb.id);
        // CRI asks StopPodSandbox to be idempotent; containerd answers NotFound for a removed sandbox, which the kubelet accepts.
        await rt().stopPodSandbox(sb.id).catch((err: unknown) => assert.ok(isRuntimeError(err, 'NotFound'), `stopPodSandbox of a removed sandbox: ${String(err)}`));
        sandboxes.delete(sb.id);
      });

      it('answers NotFound for an unknown sandbox, and removing one succeeds', async () => {
        await rejectsWith(rt().podSandboxStatus('no-such-sandbox-0000'), ['NotFound'], 'podSandboxStatus of an unknown sandbox');
        await rt().removePodSandbox('no-such-sandbox-0000');
      });

      it('returns a port-forward URL for a ready sandbox', async () => {
        const sb = await runSandbox();
        const { url } = await rt().portForward({ podSandboxId: sb.id, port: [80] });
        assert.doesNotThrow(() => new URL(url), `not a URL: ${url}`);
      });
    });

    describe('containers', () => {
      it('creates, starts, execs, stops (twice) and removes (twice) a container', async () => {
        const sb = await runSandbox();
        const id = await createContainer(sb, 'main', runningCommand, {
          metadata: { name: 'main', attempt: 2 },
          annotations: { [CONTAINER_RESTART_COUNT_ANNOTATION]: '2', 'contract.kubernel.io/note': 'kept' },
        });
        let st = await statusOf(id);
        assert.equal(st.id, id);
        assert.equal(st.state, 'CONTAINER_CREATED', 'state after createContainer');
        assert.equal(st.metadata.name, 'main');
        assert.equal(restartCountOf(st), 2, 'restart count (annotation / attempt) not kept');
        assert.equal(st.annotations['contract.kubernel.io/note'], 'kept');
        assert.equal(st.labels[RUN_LABEL], runId);
        assert.ok(st.createdAt > 0, 'createdAt is not set');
        assert.equal(st.startedAt, 0, 'a created container has a start time');
        assert.deepEqual(ids(await rt().listContainers({ podSandboxId: sb.id })), [id]);

        await rt().startContainer(id);
        st = await statusOf(id);
        assert.equal(st.state, 'CONTAINER_RUNNING', 'state after startContainer');
        assert.ok(st.startedAt >= st.createdAt && st.startedAt > 0, 'startedAt is not set');
        await rejectsWith(rt().startContainer(id), undefined, 'starting a running container');

        const ok = await rt().execSync(id, execCommand, 10);
        assert.equal(ok.exitCode, 0, `exec of ${JSON.stringify(execCommand)}: stderr ${text(ok.stderr)}`);
        assert.equal(text(ok.stdout), execOutput, `stdout of execSync ${JSON.stringify(execCommand)}`);
        const failing = await rt().execSync(id, execFailingCommand, 10);
        assert.equal(failing.exitCode, execFailingCode, `exit code of execSync ${JSON.stringify(execFailingCommand)}`);

        for (const url of [(await rt().exec({ containerId: id, cmd: execCommand, stdout: true })).url, (await rt().attach({ containerId: id, stdout: true })).url]) {
          assert.doesNotThrow(() => new URL(url), `not a URL: ${url}`);
        }
        await rt().updateContainerResources(id, { cpuShares: 512, memoryLimitInBytes: 64 * 1024 * 1024 });
        await rt().reopenContainerLog(id);

        await rt().stopContainer(id, grace);
        st = await statusOf(id);
        assert.equal(st.state, 'CONTAINER_EXITED', 'state after stopContainer');
        assert.ok(Number.isInteger(st.exitCode), 'exitCode is not an integer');
        assert.ok(st.finishedAt >= st.startedAt && st.finishedAt > 0, 'finishedAt is not set');
        await rt().stopContainer(id, grace);
        await rejectsWith(rt().execSync(id, execCommand, 10), undefined, 'execSync in an exited container');

        await rt().removeContainer(id);
        await rejectsWith(rt().containerStatus(id), ['NotFound'], 'containerStatus of a removed container');
        assert.deepEqual(await rt().listContainers({ id }), []);
        await rt().removeContainer(id);
        containers.delete(id);
      });

      it('a container whose command exits reaches CONTAINER_EXITED with its exit code', async () => {
        const sb = await runSandbox();
        const id = await createContainer(sb, 'exits', exitingCommand);
        await rt().startContainer(id);
        const st = await waitForState(id, 'CONTAINER_EXITED', exitTimeoutMs);
        assert.equal(st.exitCode, exitingCode, `exit code of ${JSON.stringify(exitingCommand)}`);
        assert.ok(st.finishedAt > 0, 'finishedAt is not set');
        assert.equal(typeof st.reason, 'string');
      });

      it('lists containers and sandboxes by id, sandbox, state and labels', async () => {
        const a = await runSandbox({ group: 'a' });
        const b = await runSandbox({ group: 'b' });
        const c1 = await createContainer(a, 'c1', runningCommand, { labels: { tier: 'web' } });
        const c2 = await createContainer(a, 'c2', runningCommand, { labels: { tier: 'db' } });
        const c3 = await createContainer(b, 'c3', runningCommand, { labels: { tier: 'web' } });
        await rt().startContainer(c1);
        const mine = { [RUN_LABEL]: runId };
        assert.deepEqual(ids(await rt().listContainers({ podSandboxId: a.id })), [c1, c2].sort(), 'listContainers by podSandboxId');
        assert.deepEqual(ids(await rt().listContainers({ id: c2 })), [c2], 'listContainers by id');
        assert.deepEqual(ids(await rt().listContainers({ state: 'CONTAINER_RUNNING', labelSelector: mine })).filter((x) => [c1, c2, c3].includes(x)), [c1], 'listContainers by state and labels');
        assert.deepEqual(ids(await rt().listContainers({ labelSelector: { ...mine, tier: 'web' } })).filter((x) => [c1, c2, c3].includes(x)), [c1, c3].sort(), 'listContainers by labels');
        assert.deepEqual(ids(await rt().listContainers({ podSandboxId: b.id, labelSelector: { tier: 'db' } })), [], 'listContainers by podSandboxId AND labels');
        const listed = (await rt().listContainers({ id: c1 }))[0];
        assert.ok(listed, 'listContainers by id lists nothing');
        assert.deepEqual([listed.podSandboxId, listed.state, listed.metadata.name, listed.labels.tier], [a.id, 'CONTAINER_RUNNING', 'c1', 'web']);
        assert.deepEqual(ids(await rt().listPodSandbox({ labelSelector: { ...mine, group: 'a' } })), [a.id], 'listPodSandbox by labels');
        await rt().stopPodSandbox(b.id);
        assert.deepEqual(ids(await rt().listPodSandbox({ state: 'SANDBOX_NOTREADY', labelSelector: { ...mine, group: 'b' } })), [b.id], 'listPodSandbox by state SANDBOX_NOTREADY and labels');
        assert.deepEqual(ids(await rt().listPodSandbox({ state: 'SANDBOX_READY', labelSelector: { ...mine, group: 'b' } })), [], 'listPodSandbox by state SANDBOX_READY and labels (a stopped sandbox)');
      });

      it('stopping a sandbox stops its containers; removing it removes them', async () => {
        const sb = await runSandbox();
        const id = await createContainer(sb, 'victim', runningCommand);
        await rt().startContainer(id);
        await rt().stopPodSandbox(sb.id);
        assert.equal((await statusOf(id)).state, 'CONTAINER_EXITED', 'state of a running container after stopPodSandbox');
        await rt().removePodSandbox(sb.id);
        await rejectsWith(rt().containerStatus(id), ['NotFound'], 'containerStatus of a container of a removed sandbox');
        assert.deepEqual(await rt().listContainers({ podSandboxId: sb.id }), []);
        containers.delete(id);
        sandboxes.delete(sb.id);
      });

      it('refuses to create a container in a removed sandbox', async () => {
        const sb = await runSandbox();
        await rt().stopPodSandbox(sb.id);
        await rt().removePodSandbox(sb.id);
        sandboxes.delete(sb.id);
        await rejectsWith(rt().createContainer(sb.id, containerConfig('orphan', runningCommand), sb.config), undefined, 'createContainer in a removed sandbox');
      });

      it('answers NotFound for unknown containers, and removing one succeeds', async () => {
        const unknown = 'no-such-container-0000';
        await rejectsWith(rt().containerStatus(unknown), ['NotFound'], 'containerStatus');
        await rejectsWith(rt().startContainer(unknown), ['NotFound'], 'startContainer');
        await rejectsWith(rt().execSync(unknown, execCommand, 5), ['NotFound'], 'execSync');
        await rejectsWith(rt().updateContainerResources(unknown, { cpuShares: 2 }), ['NotFound'], 'updateContainerResources');
        await rt().removeContainer(unknown);
      });

      it('reports stats when it implements them', async function () {
        const r = rt();
        // Stats are optional in this contract: a runtime without them skips this check (cri-fake has them).
        if (!r.containerStats && !r.listContainerStats) this.skip();
        const sb = await runSandbox();
        const id = await createContainer(sb, 'stats', runningCommand);
        await r.startContainer(id);
        if (r.containerStats) assert.equal((await r.containerStats(id)).attributes.id, id);
        if (r.listContainerStats) assert.ok((await r.listContainerStats({ podSandboxId: sb.id })).some((s) => s.attributes.id === id));
      });
    });
  });
}
