/**
 * `emptyDir` volumes (`kubernetes.io/empty-dir`): a directory on the node's disk (mode 0777), or a
 * tmpfs for `medium: Memory`, sized as the kubelet sizes it ({@link memoryVolumeSize}).
 *
 * @module
 */
import type { V1Volume } from '../core-v1.js';
import { CREATE_CONTAINER_CONFIG_ERROR } from '../pod-sources.js';
import { ensureTmpfs, makeDir, memoryVolumeSize, unmountAndRemove, VolumeError, type TearDownContext, type VolumeContext, type VolumePlugin, type VolumeSetUpResult } from './volume-plugin.js';

/** The `emptyDir` plugin. */
export class EmptyDirPlugin implements VolumePlugin {
  readonly name = 'kubernetes.io/empty-dir';
  readonly requiresRemount = false;

  canSupport(volume: V1Volume): boolean {
    return volume.emptyDir !== undefined;
  }

  readOnly(): boolean {
    return false;
  }

  async setUp(ctx: VolumeContext, volume: V1Volume, dir: string): Promise<VolumeSetUpResult> {
    const medium = volume.emptyDir?.medium ?? '';
    if (medium === '') await makeDir(dir, 0o777);
    else if (medium === 'Memory') await ensureTmpfs(ctx.mounter, dir, memoryVolumeSize(ctx.pod, volume.emptyDir?.sizeLimit, ctx.nodeAllocatable));
    else throw new VolumeError(volume.name, CREATE_CONTAINER_CONFIG_ERROR, `unknown storage medium ${JSON.stringify(medium)}`);
    return { path: dir };
  }

  tearDown(ctx: TearDownContext, dir: string): Promise<void> {
    return unmountAndRemove(ctx.mounter, dir);
  }
}
