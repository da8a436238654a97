/**
 * `configMap` volumes (`kubernetes.io/configmap`): the configMap's keys as files, written
 * atomically (see `atomic-writer.ts`) into a directory on the node's disk, refreshed on later
 * syncs, mounted read-only.
 *
 * @module
 */
import { atomicWrite, type FileProjection } from '../atomic-writer.js';
import type { V1ConfigMap, V1KeyToPath, V1Volume } from '../core-v1.js';
import { isObjectNotFound } from '../pod-sources.js';
import { contentError, DEFAULT_MODE, makeDir, unmountAndRemove, VolumeError, type TearDownContext, type VolumeContext, type VolumePlugin, type VolumeSetUpResult } from './volume-plugin.js';

/**
 * `configmap.MakePayload`: every key (`data` as UTF-8, `binaryData` decoded) with `defaultMode`,
 * or only the `items` (each with its mode or `defaultMode`).
 *
 * @throws {Error} `configmap references non-existent config key: <key>` for an item whose key is
 *   missing, unless `optional`.
 */
export function configMapPayload(items: readonly V1KeyToPath[] | undefined, configMap: V1ConfigMap, defaultMode: number, optional: boolean): Map<string, FileProjection> {
  const payload = new Map<string, FileProjection>();
  const data = configMap.data ?? {};
  const binary = configMap.binaryData ?? {};
  if (!items || items.length === 0) {
    for (const [k, v] of Object.entries(data)) payload.set(k, { data: v, mode: defaultMode });
    for (const [k, v] of Object.entries(binary)) payload.set(k, { data: Buffer.from(v, 'base64'), mode: defaultMode });
    return payload;
  }
  for (const item of items) {
    let content: string | Buffer;
    if (data[item.key] !== undefined) content = data[item.key]!;
    else if (binary[item.key] !== undefined) content = Buffer.from(binary[item.key]!, 'base64');
    else if (optional) continue;
    else throw new Error(`configmap references non-existent config key: ${item.key}`);
    payload.set(item.path, { data: content, mode: item.mode ?? defaultMode });
  }
  return payload;
}

/**
 * The configMap `name` of `ctx`'s pod namespace, or an empty one when it is missing and optional.
 *
 * @throws {VolumeError} `configmap "x" not found` (CreateContainerConfigError) or the failure (FailedMount).
 */
export async function fetchConfigMap(ctx: VolumeContext, volumeName: string, name: string, optional: boolean): Promise<V1ConfigMap> {
  try {
    return await ctx.sources.getConfigMap(ctx.pod.metadata.namespace ?? 'default', name);
  } catch (err) {
    if (isObjectNotFound(err)) {
      if (optional) return {};
      throw contentError(volumeName, `configmap ${JSON.stringify(name)} not found`, err);
    }
    throw new VolumeError(volumeName, 'FailedMount', `couldn't get configmap ${ctx.pod.metadata.namespace ?? 'default'}/${name}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** The `configMap` plugin. */
export class ConfigMapPlugin implements VolumePlugin {
  readonly name = 'kubernetes.io/configmap';
  readonly requiresRemount = true;

  canSupport(volume: V1Volume): boolean {
    return volume.configMap !== undefined;
  }

  readOnly(): boolean {
    return true;
  }

  async setUp(ctx: VolumeContext, volume: V1Volume, dir: string): Promise<VolumeSetUpResult> {
    const src = volume.configMap!;
    const optional = src.optional === true;
    const cm = await fetchConfigMap(ctx, volume.name, src.name ?? '', optional);
    let payload: Map<string, FileProjection>;
    try {
      payload = configMapPayload(src.items, cm, src.defaultMode ?? DEFAULT_MODE, optional);
    } catch (err) {
      throw contentError(volume.name, err instanceof Error ? err.message : String(err), err);
    }
    await makeDir(dir, 0o777);
    await writePayload(volume.name, dir, payload, ctx.now);
    return { path: dir };
  }

  tearDown(ctx: TearDownContext, dir: string): Promise<void> {
    return unmountAndRemove(ctx.mounter, dir);
  }
}

/** Writes a payload atomically, reporting an invalid path as a configuration error. */
export async function writePayload(volumeName: string, dir: string, payload: ReadonlyMap<string, FileProjection>, now: Date): Promise<boolean> {
  try {
    return await atomicWrite(dir, payload, { now });
  } catch (err) {
    if (err instanceof Error && err.name === 'InvalidPathError') throw contentError(volumeName, err.message, err);
    throw new VolumeError(volumeName, 'FailedMount', `error writing payload to ${dir}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}
