/**
 * The `cri-fake` plugin: provides a {@link FakeContainerRuntime} built from its config.
 *
 * @module
 */
import { defineContainerRuntimePlugin } from '@kubernel/sdk';
import { DEFAULT_IMAGES, FakeContainerRuntime } from './fake-runtime.js';

/** The plugin's configuration (defaults filled in by the schema). */
export interface CriFakeConfig {
  /** Images present at start. */
  readonly images: string[];
  /** Simulated pull time, ms. */
  readonly pullLatencyMs: number;
  /** Simulated container start time, ms. */
  readonly startLatencyMs: number;
  /** Images the simulated registry serves; absent: all but `.invalid` registry hosts. */
  readonly registry?: string[];
  /** Files `cat PATH` finds in every container. */
  readonly files: Record<string, string>;
  /** Exit code of exec'd commands the fake does not understand. */
  readonly execDefaultExitCode: number;
  /** Whether the runtime reports `NetworkReady` true. */
  readonly networkReady: boolean;
  /** IPv4 CIDR that sandbox IPs come from. */
  readonly podCidr: string;
  /** Base of the (unserved) streaming URLs. */
  readonly streamingBaseUrl: string;
}

/** JSON Schema of {@link CriFakeConfig}. */
export const CRI_FAKE_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    images: { type: 'array', items: { type: 'string', minLength: 1 }, default: [...DEFAULT_IMAGES] },
    pullLatencyMs: { type: 'integer', minimum: 0, maximum: 600_000, default: 0 },
    startLatencyMs: { type: 'integer', minimum: 0, maximum: 600_000, default: 0 },
    registry: { type: 'array', items: { type: 'string', minLength: 1 } },
    files: { type: 'object', additionalProperties: { type: 'string' }, default: {} },
    execDefaultExitCode: { type: 'integer', minimum: 0, maximum: 255, default: 0 },
    networkReady: { type: 'boolean', default: true },
    podCidr: { type: 'string', pattern: '^(\\d{1,3}\\.){3}\\d{1,3}/([0-9]|[12][0-9]|30)$', default: '10.88.0.0/16' },
    streamingBaseUrl: { type: 'string', pattern: '^https?://', default: 'http://127.0.0.1:10010' },
  },
} as const;

/** The `cri-fake` plugin definition (kind `container-runtime`). */
export const criFakePlugin = defineContainerRuntimePlugin<CriFakeConfig>({
  id: 'cri-fake',
  version: '0.1.0',
  description: 'An in-memory CRI runtime for hollow nodes: simulated sandboxes, containers and images, no processes.',
  configSchema: CRI_FAKE_CONFIG_SCHEMA,
  create(handle, config) {
    const runtime = new FakeContainerRuntime(config);
    handle.logger.debug({ images: config.images.length }, 'cri-fake runtime ready');
    return runtime;
  },
});
