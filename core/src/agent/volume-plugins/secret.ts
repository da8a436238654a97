/**
 * `secret` volumes (`kubernetes.io/secret`): the secret's keys as files (base64-decoded), written
 * atomically on a tmpfs (secrets never touch the node's disk), refreshed on later syncs, mounted
 * read-only.
 *
 * @module
 */
import type { FileProjection } from '../atomic-writer.js';
import type { V1KeyToPath, V1Secret, V1Volume } from '../core-v1.js';
import { isObjectNotFound } from '../pod-sources.js';
import { writePayload } from './config-map.js';
import { contentError, DEFAULT_MODE, ensureTmpfs, memoryVolumeSize, unmountAndRemove, VolumeError, type TearDownContext, type VolumeContext, type VolumePlugin, type VolumeSetUpResult } from './volume-plugin.js';

/**
 * `secret.MakePayload`: every key with `defaultMode`, or only the `items`.
 *
 * @throws {Error} `references non-existent secret key: <key>` unless `optional`.
 */
export function secretPayload(items: readonly V1KeyToPath[] | undefined, secret: V1Secret, defaultMode: number, optional: boolean): Map<string, FileProjection> {
  const payload = new Map<string, FileProjection>();
  const data = secret.data ?? {};
  if (!items || items.length === 0) {
    for (const [k, v] of Object.entries(data)) payload.set(k, { data: Buffer.from(v, 'base64'), mode: defaultMode });
    return payload;
  }
  for (const item of items) {
    const v = data[item.key];
    if (v === undefined) {
      if (optional) continue;
      throw new Error(`references non-existent secret key: ${item.key}`);
    }
    payload.set(item.path, { data: Buffer.from(v, 'base64'), mode: item.mode ?? defaultMode });
  }
  return payload;
}

/**
 * The secret `name` of `ctx`'s pod namespace, or an empty one when it is missing and optional.
 *
 * @throws {VolumeError} `secret "x" not found` (CreateContainerConfigError) or the failure (FailedMount).
 */
export async function fetchSecret(ctx: VolumeContext, volumeName: string, name: string, optional: boolean): Promise<V1Secret> {
  try {
    return await ctx.sources.getSecret(ctx.pod.metadata.namespace ?? 'default', name);
  } catch (err) {
    if (isObjectNotFound(err)) {
      if (optional) return {};
      throw contentError(volumeName, `secret ${JSON.stringify(name)} not found`, err);
    }
    throw new VolumeError(volumeName, 'FailedMount', `couldn't get secret ${ctx.pod.metadata.namespace ?? 'default'}/${name}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** The `secret` plugin. */
export class SecretPlugin implements VolumePlugin {
  readonly name = 'kubernetes.io/secret';
  readonly requiresRemount = true;

  canSupport(volume: V1Volume): boolean {
    return volume.secret !== undefined;
  }

  readOnly(): boolean {
    return true;
  }

  async setUp(ctx: VolumeContext, volume: V1Volume, dir: string): Promise<VolumeSetUpResult> {
    const src = volume.secret!;
    const optional = src.optional === true;
    const secret = await fetchSecret(ctx, volume.name, src.secretName ?? '', optional);
    let payload: Map<string, FileProjection>;
    try {
      payload = secretPayload(src.items, secret, src.defaultMode ?? DEFAULT_MODE, optional);
    } catch (err) {
      throw contentError(volume.name, err instanceof Error ? err.message : String(err), err);
    }
    await ensureTmpfs(ctx.mounter, dir, memoryVolumeSize(ctx.pod, undefined, ctx.nodeAllocatable));
    await writePayload(volume.name, dir, payload, ctx.now);
    return { path: dir };
  }

  tearDown(ctx: TearDownContext, dir: string): Promise<void> {
    return unmountAndRemove(ctx.mounter, dir);
  }
}
