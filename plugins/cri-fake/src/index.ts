/**
 * `@kubernel/plugin-cri-fake`: an in-memory container runtime (kind `container-runtime`, id
 * `cri-fake`) for simulated nodes at scale. It passes the same contract suite as a real runtime.
 *
 * @packageDocumentation
 */
import type { PluginDefinition } from '@kubernel/sdk';
import { criFakePlugin } from './plugin.js';

export { criFakePlugin, CRI_FAKE_CONFIG_SCHEMA } from './plugin.js';
export type { CriFakeConfig } from './plugin.js';
export { FakeContainerRuntime, normalizeImageRef, DEFAULT_IMAGES, EXIT_CODE_ANNOTATION, RUN_SECONDS_ANNOTATION, FAKE_RUNTIME_NAME, FAKE_RUNTIME_VERSION } from './fake-runtime.js';
export type { FakeRuntimeOptions } from './fake-runtime.js';
export { mainBehaviour, parseCommand, RUNS_FOREVER } from './commands.js';
export type { MainBehaviour, Script, Step } from './commands.js';

const plugins: PluginDefinition[] = [criFakePlugin as PluginDefinition];
export default plugins;
