/**
 * `downwardAPI` volumes (`kubernetes.io/downward-api`): pod fields and container resources as
 * files, written atomically on a tmpfs, refreshed on later syncs (labels and annotations can
 * change), mounted read-only.
 *
 * @module
 */
import type { FileProjection } from '../atomic-writer.js';
import type { V1DownwardAPIVolumeFile, V1PodObject, V1Volume } from '../core-v1.js';
import { extractFieldPathAsString, podResourceValue, type ResourceList } from '../fieldpath.js';
import { writePayload } from './config-map.js';
import { contentError, DEFAULT_MODE, ensureTmpfs, memoryVolumeSize, unmountAndRemove, type TearDownContext, type VolumeContext, type VolumePlugin, type VolumeSetUpResult } from './volume-plugin.js';

/**
 * `downwardapi.CollectData`: one file per item (its mode or `defaultMode`): a `fieldRef`'s value
 * or a `resourceFieldRef`'s (limits defaulting to `allocatable`). Items that fail are reported in
 * `errors` (the kubelet's aggregate) and written empty.
 */
export function downwardAPIPayload(items: readonly V1DownwardAPIVolumeFile[] | undefined, pod: V1PodObject, defaultMode: number, allocatable: ResourceList | undefined): { payload: Map<string, FileProjection>; errors: string[] } {
  const payload = new Map<string, FileProjection>();
  const errors: string[] = [];
  for (const item of items ?? []) {
    let data = '';
    try {
      if (item.fieldRef) data = extractFieldPathAsString(pod, item.fieldRef.fieldPath);
      else if (item.resourceFieldRef) data = podResourceValue(item.resourceFieldRef, pod, item.resourceFieldRef.containerName ?? '', allocatable);
    } catch (err) {
      errors.push(err instanceof Error ? err.message : String(err));
    }
    payload.set(item.path, { data, mode: item.mode ?? defaultMode });
  }
  return { payload, errors };
}

/** `utilerrors.NewAggregate(...).Error()`: one message as is, several as `[a, b]`. */
export const aggregateMessage = (messages: readonly string[]): string => (messages.length === 1 ? messages[0]! : `[${messages.join(', ')}]`);

/** The `downwardAPI` plugin. */
export class DownwardAPIPlugin implements VolumePlugin {
  readonly name = 'kubernetes.io/downward-api';
  readonly requiresRemount = true;

  canSupport(volume: V1Volume): boolean {
    return volume.downwardAPI !== undefined;
  }

  readOnly(): boolean {
    return true;
  }

  async setUp(ctx: VolumeContext, volume: V1Volume, dir: string): Promise<VolumeSetUpResult> {
    const src = volume.downwardAPI!;
    const { payload, errors } = downwardAPIPayload(src.items, ctx.pod, src.defaultMode ?? DEFAULT_MODE, ctx.nodeAllocatable);
    if (errors.length > 0) throw contentError(volume.name, aggregateMessage(errors));
    await ensureTmpfs(ctx.mounter, dir, memoryVolumeSize(ctx.pod, undefined, ctx.nodeAllocatable));
    await writePayload(volume.name, dir, payload, ctx.now);
    return { path: dir };
  }

  tearDown(ctx: TearDownContext, dir: string): Promise<void> {
    return unmountAndRemove(ctx.mounter, dir);
  }
}
