/**
 * `@kubernel/plugin-cri-containerd`: a container runtime (kind `container-runtime`, id
 * `cri-containerd`) speaking CRI v1 gRPC to containerd, which it can also run and supervise
 * (managed mode), with local pause and busybox images built from busybox-static.
 *
 * @packageDocumentation
 */
import type { PluginDefinition } from '@kubernel/sdk';
import { criContainerdPlugin } from './plugin.js';

export { criContainerdPlugin, CRI_CONTAINERD_CONFIG_SCHEMA, CONTAINERD_LOG_LEVELS } from './plugin.js';
export type { CriContainerdConfig } from './plugin.js';
export { ContainerdRuntime, DEFAULT_CALL_TIMEOUTS, grpcTarget, toRuntimeError, waitForVersion } from './client.js';
export type { CallTimeouts, ContainerdRuntimeOptions } from './client.js';
export { ManagedContainerd, CRI_NAMESPACE, pickFreePort, importImageArchive, ensureLocalImages, defaultLocalImages, archiveName } from './managed.js';
export type { ManagedContainerdOptions, Unavailability, ImportOptions, LocalImage } from './managed.js';
export { containerdLayout, renderContainerdConfig, renderCniTemplate, CONTAINERD_CNI_CONF_NAME, CNI_VERSION, DISABLED_CONTAINERD_PLUGINS } from './containerd-config.js';
export type { ContainerdLayout, ContainerdConfigOptions } from './containerd-config.js';
export {
  buildBusyboxImage,
  buildBusyboxLayer,
  buildPauseImage,
  busyboxApplets,
  BUSYBOX_IMAGE,
  PAUSE_IMAGE,
  DEFAULT_BUSYBOX_PATH,
  CONTAINERD_IMAGE_NAME_ANNOTATION,
  OCI_REF_NAME_ANNOTATION,
} from './images.js';
export type { BusyboxImageOptions, BuiltImage } from './images.js';
export { writeTar } from './tar.js';
export type { TarEntry } from './tar.js';
export { CRI_PROTO_PATH } from './proto.js';

const plugins: PluginDefinition[] = [criContainerdPlugin as PluginDefinition];
export default plugins;
