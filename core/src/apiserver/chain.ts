import { timingSafeEqual } from 'node:crypto';
import { bearerToken, type Admission, type AuthenticationResult, type Authenticator, type Authorizer, type UserInfo } from '@kubernel/sdk';

export type { UserInfo } from '@kubernel/sdk';

/**
 * The stages every request passes, in order: authenticators (first success wins), authorizers
 * (first allow or deny wins; nobody deciding is a deny), admission (every admit, then every
 * validate). Each is read at request time, so providers that start, restart or stop after the API
 * server came up take part at once. The contracts are the SDK's: plugins of kind authenticator,
 * authorizer and admission fill the chain; core adds only the loopback identity and the
 * `system:masters` short-cut, as Kubernetes does.
 */
export interface RequestChain {
  authenticators(): readonly Authenticator[];
  authorizers(): readonly Authorizer[];
  admission(): readonly Admission[];
}

/** The user of requests nobody authenticated. */
export const ANONYMOUS: UserInfo = { username: 'system:anonymous', groups: ['system:unauthenticated'] };

/** The group whose members every request is allowed for (Kubernetes' privileged group). */
export const MASTERS_GROUP = 'system:masters';

/** The API server's own identity on its loopback connections. */
export const LOOPBACK_USER: UserInfo = { username: 'system:apiserver', uid: 'system:apiserver', groups: [MASTERS_GROUP, 'system:authenticated'] };

/** Who requests on the explicitly enabled insecure (loopback, plain HTTP) port are. */
export const UNSECURED_USER: UserInfo = { username: 'system:unsecured', groups: [MASTERS_GROUP, 'system:authenticated'] };

/**
 * Authenticates the API server's loopback token (a random secret made at start and handed to
 * in-process plugins' clients) as `system:apiserver` in `system:masters`.
 */
export function loopbackAuthenticator(token: string): Authenticator {
  const expected = Buffer.from(token);
  return {
    async authenticate(request): Promise<AuthenticationResult> {
      const t = bearerToken(request);
      if (t === undefined || t.length !== token.length) return undefined;
      return timingSafeEqual(Buffer.from(t), expected) ? { user: LOOPBACK_USER } : undefined;
    },
  };
}

/** Allows every request of a member of `system:masters`; no opinion otherwise. */
export const MASTERS_AUTHORIZER: Authorizer = {
  async authorize({ user }) {
    return user.groups.includes(MASTERS_GROUP) ? { decision: 'allow' } : { decision: 'no-opinion' };
  },
};

/**
 * Kubernetes' `AlwaysAllow` mode: every request is allowed. Only behind an explicit
 * `--authorization-mode=AlwaysAllow` (never a default).
 */
export const ALWAYS_ALLOW: Authorizer = { authorize: async () => ({ decision: 'allow' }) };

/** A chain of fixed lists (tests, and servers that take no plugins). */
export function fixedChain(parts: { authenticators?: Authenticator[]; authorizers?: Authorizer[]; admission?: Admission[] }): RequestChain {
  const a = parts.authenticators ?? [];
  const z = parts.authorizers ?? [];
  const m = parts.admission ?? [];
  return { authenticators: () => a, authorizers: () => z, admission: () => m };
}
