/**
 * `projected` volumes (`kubernetes.io/projected`): several sources in one directory, written
 * atomically on a tmpfs, refreshed on later syncs, mounted read-only:
 * `serviceAccountToken` (a TokenRequest bound to the pod, rotated by the volume manager),
 * `configMap`, `secret` and `downwardAPI`. Failing sources are aggregated into one error.
 *
 * @module
 */
import type { FileProjection } from '../atomic-writer.js';
import type { V1Volume } from '../core-v1.js';
import { configMapPayload, fetchConfigMap, writePayload } from './config-map.js';
import { aggregateMessage, downwardAPIPayload } from './downward-api.js';
import { fetchSecret, secretPayload } from './secret.js';
import { DEFAULT_MODE, ensureTmpfs, isVolumeError, memoryVolumeSize, unmountAndRemove, VolumeError, type TearDownContext, type VolumeContext, type VolumePlugin, type VolumeSetUpResult } from './volume-plugin.js';

/** The default `expirationSeconds` of a projected token (API defaulting). */
export const DEFAULT_TOKEN_EXPIRATION_SECONDS = 3600;

/** The `projected` plugin. */
export class ProjectedPlugin implements VolumePlugin {
  readonly name = 'kubernetes.io/projected';
  readonly requiresRemount = true;

  canSupport(volume: V1Volume): boolean {
    return volume.projected !== undefined;
  }

  readOnly(): boolean {
    return true;
  }

  async setUp(ctx: VolumeContext, volume: V1Volume, dir: string): Promise<VolumeSetUpResult> {
    const src = volume.projected!;
    const defaultMode = src.defaultMode ?? DEFAULT_MODE;
    const payload = new Map<string, FileProjection>();
    const errors: { message: string; config: boolean }[] = [];
    const fail = (err: unknown): void => {
      errors.push({ message: err instanceof Error ? err.message : String(err), config: isVolumeError(err) ? err.reason !== 'FailedMount' : true });
    };
    for (const source of src.sources ?? []) {
      try {
        if (source.configMap) {
          const optional = source.configMap.optional === true;
          const cm = await fetchConfigMap(ctx, volume.name, source.configMap.name ?? '', optional);
          for (const [k, v] of configMapPayload(source.configMap.items, cm, defaultMode, optional)) payload.set(k, v);
        } else if (source.secret) {
          const optional = source.secret.optional === true;
          const secret = await fetchSecret(ctx, volume.name, source.secret.name ?? '', optional);
          for (const [k, v] of secretPayload(source.secret.items, secret, defaultMode, optional)) payload.set(k, v);
        } else if (source.downwardAPI) {
          const { payload: files, errors: errs } = downwardAPIPayload(source.downwardAPI.items, ctx.pod, defaultMode, ctx.nodeAllocatable);
          if (errs.length > 0) throw new Error(aggregateMessage(errs));
          for (const [k, v] of files) payload.set(k, v);
        } else if (source.serviceAccountToken) {
          const tp = source.serviceAccountToken;
          let token: string;
          try {
            token = await ctx.serviceAccountToken({ audiences: tp.audience ? [tp.audience] : [], expirationSeconds: tp.expirationSeconds ?? DEFAULT_TOKEN_EXPIRATION_SECONDS });
          } catch (err) {
            throw new VolumeError(volume.name, 'FailedMount', err instanceof Error ? err.message : String(err), { cause: err });
          }
          payload.set(tp.path, { data: token, mode: defaultMode });
        }
      } catch (err) {
        fail(err);
      }
    }
    if (errors.length > 0) {
      throw new VolumeError(volume.name, errors.every((e) => e.config) ? 'CreateContainerConfigError' : 'FailedMount', aggregateMessage(errors.map((e) => e.message)));
    }
    await ensureTmpfs(ctx.mounter, dir, memoryVolumeSize(ctx.pod, undefined, ctx.nodeAllocatable));
    await writePayload(volume.name, dir, payload, ctx.now);
    return { path: dir };
  }

  tearDown(ctx: TearDownContext, dir: string): Promise<void> {
    return unmountAndRemove(ctx.mounter, dir);
  }
}
