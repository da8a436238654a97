/**
 * The node agent's cache of projected service-account tokens (the kubelet's
 * `pkg/kubelet/token.Manager`): one token per pod, service account, audiences and lifetime,
 * requested through the TokenRequest API and rotated when it is older than 80% of its lifetime or
 * than 24 hours (less a random jitter of up to 10 s, so a fleet does not refresh in step). When a
 * refresh fails, the cached token is served until it expires.
 *
 * @module
 */
import type { Clock } from './pod-worker.js';
import type { ServiceAccountTokenRequest, VolumeSources } from './pod-sources.js';

/** Tokens are refreshed at the latest when this old (ms). */
export const TOKEN_MAX_TTL_MS = 24 * 3600 * 1000;
/** The largest jitter subtracted from refresh deadlines (ms). */
export const TOKEN_MAX_JITTER_MS = 10_000;

interface CachedToken {
  readonly token: string;
  /** ms since the epoch. */
  readonly expiresAt: number;
  /** The lifetime the token was issued with (s). */
  readonly expirationSeconds: number;
}

/** Options of a {@link ServiceAccountTokenCache}. */
export interface ServiceAccountTokenCacheOptions {
  readonly sources: Pick<VolumeSources, 'requestServiceAccountToken'>;
  readonly clock: Clock;
  /** A jitter in ms in [0, {@link TOKEN_MAX_JITTER_MS}); default random whole seconds. */
  readonly jitterMs?: () => number;
}

/** Caches and rotates service-account tokens. */
export class ServiceAccountTokenCache {
  private readonly tokens = new Map<string, CachedToken>();
  private readonly jitter: () => number;

  constructor(private readonly options: ServiceAccountTokenCacheOptions) {
    this.jitter = options.jitterMs ?? (() => Math.floor(Math.random() * (TOKEN_MAX_JITTER_MS / 1000)) * 1000);
  }

  private static key(ns: string, sa: string, r: ServiceAccountTokenRequest): string {
    return JSON.stringify([r.podUid, ns, sa, [...r.audiences], r.expirationSeconds, r.podName]);
  }

  /**
   * `requiresRefresh`: true once `now` is past 80% of the token's lifetime (its expiry less 20%
   * of `expirationSeconds`) or past 24 hours after it was issued, each less the jitter.
   */
  requiresRefresh(token: { expiresAt: number; expirationSeconds: number }, now: number): boolean {
    const jitter = this.jitter();
    const issuedAt = token.expiresAt - token.expirationSeconds * 1000;
    if (now > issuedAt + TOKEN_MAX_TTL_MS - jitter) return true;
    return now > token.expiresAt - Math.floor((token.expirationSeconds * 20) / 100) * 1000 - jitter;
  }

  /**
   * The token for this request: the cached one unless due for refresh, else a new one.
   *
   * @throws {Error} `failed to fetch token: ...` when none is cached and the request fails, or
   *   `token ... expired and refresh failed: ...` when the cached one has expired.
   */
  async get(ns: string, serviceAccountName: string, request: ServiceAccountTokenRequest): Promise<string> {
    const key = ServiceAccountTokenCache.key(ns, serviceAccountName, request);
    const cached = this.tokens.get(key);
    const now = this.options.clock.now();
    if (cached && !this.requiresRefresh(cached, now)) return cached.token;
    try {
      const answer = await this.options.sources.requestServiceAccountToken(ns, serviceAccountName, request);
      const expiresAt = Date.parse(answer.expirationTimestamp);
      if (!Number.isFinite(expiresAt)) throw new Error(`invalid expirationTimestamp ${JSON.stringify(answer.expirationTimestamp)}`);
      this.tokens.set(key, { token: answer.token, expiresAt, expirationSeconds: answer.expirationSeconds ?? request.expirationSeconds });
      return answer.token;
    } catch (err) {
      const text = err instanceof Error ? err.message : String(err);
      if (!cached) throw new Error(`failed to fetch token: ${text}`, { cause: err });
      if (now >= cached.expiresAt) throw new Error(`token ${ns}/${serviceAccountName} expired and refresh failed: ${text}`, { cause: err });
      return cached.token;
    }
  }

  /** Forgets the tokens of pod `podUid`. */
  deletePod(podUid: string): void {
    for (const key of [...this.tokens.keys()]) if ((JSON.parse(key) as unknown[])[0] === podUid) this.tokens.delete(key);
  }

  /** How many tokens are cached. */
  get size(): number {
    return this.tokens.size;
  }
}
