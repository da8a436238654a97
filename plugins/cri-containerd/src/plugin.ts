/**
 * The `cri-containerd` plugin (kind `container-runtime`): provides a {@link ContainerdRuntime}
 * talking CRI v1 to containerd. With an `endpoint` it connects to that containerd; without one it
 * runs its own ({@link ManagedContainerd}) under `root` and `stateDir`, imports the local pause
 * and busybox images, and applies `podCidr` when given.
 *
 * @module
 */
import { join } from 'node:path';
import { defineContainerRuntimePlugin } from '@kubernel/sdk';
import { ContainerdRuntime, waitForVersion } from './client.js';
import { PAUSE_IMAGE } from './images.js';
import { defaultLocalImages, ensureLocalImages, ManagedContainerd } from './managed.js';

/** containerd log levels the plugin accepts. */
export const CONTAINERD_LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;

/** The plugin's configuration (defaults filled in by the schema). */
export interface CriContainerdConfig {
  /**
   * containerd's CRI endpoint (`unix:///run/containerd/containerd.sock`). When given, the plugin
   * only connects; when absent (the default), it runs and supervises its own containerd.
   */
  readonly endpoint?: string;
  /**
   * Managed mode: the root dir (config, log, images, CNI files, containerd's root); by default the
   * plugin's data dir (`<data-dir>/plugins/cri-containerd`), so every `--data-dir` gets its own.
   */
  readonly root?: string;
  /** Managed mode: the state dir (sockets, runc root, pid file, netns mounts; best on tmpfs); `<root>/state` by default. */
  readonly stateDir?: string;
  /** Managed mode: the pods' Linux bridge and CNI network name (at most 15 characters); `kubernel0`. */
  readonly bridgeName: string;
  /** Managed mode: containerd's `sandbox_image`; the local pause image `docker.io/kubernel/pause:1.35`. */
  readonly sandboxImage: string;
  /** Managed mode: build and import the local pause and busybox images at start when missing; true. */
  readonly importImages: boolean;
  /** How long containerd may take to answer at start (managed mode) or the first `Version` (endpoint mode), seconds; 30. */
  readonly startTimeoutSeconds: number;
  /** Managed mode: containerd's log level (its log is `<root>/containerd.log`); `info`. */
  readonly logLevel: (typeof CONTAINERD_LOG_LEVELS)[number];
  /** Where the CNI plugin binaries are; `/usr/lib/cni` (Debian's containernetworking-plugins). */
  readonly cniBinDir: string;
  /** Managed mode: the streaming server's port on 127.0.0.1; 0 (the default) picks a free one at each start. */
  readonly streamServerPort: number;
  /**
   * The node's pod CIDR (`10.88.0.0/24`), applied with `UpdateRuntimeConfig` at start, which makes
   * containerd write its CNI config (NetworkReady). Absent: whoever knows the CIDR (the agent, once
   * the node has `spec.podCIDR`) calls `updateRuntimeConfig` later.
   */
  readonly podCidr?: string;
}

/** JSON Schema of {@link CriContainerdConfig}. */
export const CRI_CONTAINERD_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    endpoint: { type: 'string', pattern: '^(unix://)?/' },
    root: { type: 'string', pattern: '^/' },
    stateDir: { type: 'string', pattern: '^/' },
    bridgeName: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$', default: 'kubernel0' },
    sandboxImage: { type: 'string', minLength: 1, default: PAUSE_IMAGE },
    importImages: { type: 'boolean', default: true },
    startTimeoutSeconds: { type: 'integer', minimum: 1, maximum: 600, default: 30 },
    logLevel: { type: 'string', enum: [...CONTAINERD_LOG_LEVELS], default: 'info' },
    cniBinDir: { type: 'string', pattern: '^/', default: '/usr/lib/cni' },
    streamServerPort: { type: 'integer', minimum: 0, maximum: 65535, default: 0 },
    podCidr: { type: 'string', pattern: '^(\\d{1,3}\\.){3}\\d{1,3}/([0-9]|[12][0-9]|3[0-2])$' },
  },
} as const;

/** The `cri-containerd` plugin definition (kind `container-runtime`). */
export const criContainerdPlugin = defineContainerRuntimePlugin<CriContainerdConfig>({
  id: 'cri-containerd',
  version: '0.1.0',
  description: 'CRI v1 over gRPC to containerd; runs and supervises its own containerd unless given an endpoint.',
  configSchema: CRI_CONTAINERD_CONFIG_SCHEMA,
  async create(handle, config) {
    const log = handle.logger;
    if (config.endpoint) {
      const runtime = new ContainerdRuntime({ endpoint: config.endpoint });
      try {
        const v = await waitForVersion(runtime, config.startTimeoutSeconds * 1000);
        if (config.podCidr) await runtime.updateRuntimeConfig({ podCidr: config.podCidr });
        log.info({ endpoint: runtime.target, runtime: `${v.runtimeName} ${v.runtimeVersion}` }, 'connected to containerd');
      } catch (err) {
        await runtime.close();
        throw err;
      }
      return runtime;
    }
    const root = config.root ?? handle.dataDir;
    const managed = new ManagedContainerd({
      root,
      stateDir: config.stateDir ?? join(root, 'state'),
      bridgeName: config.bridgeName,
      sandboxImage: config.sandboxImage,
      cniBinDir: config.cniBinDir,
      logLevel: config.logLevel,
      startTimeoutMs: config.startTimeoutSeconds * 1000,
      streamServerPort: config.streamServerPort,
      logger: log,
    });
    await managed.start(config.podCidr);
    const runtime = new ContainerdRuntime({ endpoint: managed.endpoint, availability: () => managed.availability(), onClose: () => managed.stop() });
    try {
      if (config.importImages) {
        await ensureLocalImages(runtime, defaultLocalImages(), { socketPath: managed.layout.socketPath, imagesDir: managed.layout.imagesDir, logger: log });
      }
      if (config.podCidr) await runtime.updateRuntimeConfig({ podCidr: config.podCidr });
    } catch (err) {
      await runtime.close();
      throw err;
    }
    return runtime;
  },
});
