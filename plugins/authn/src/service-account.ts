import { createLocalJWKSet, decodeJwt, jwtVerify, type JWTPayload } from 'jose';
import { bearerToken, definePlugin, untilAborted, type ApiClient, type Authenticator, type Informer, type KubeObject, type UserInfo } from '@kubernel/sdk';

/** Configuration of {@link serviceAccountPlugin}. */
export interface ServiceAccountConfig {
  /** Accepted token audiences; the issuer alone by default (Kubernetes' --api-audiences). */
  readonly audiences?: string[];
}

interface Claims extends JWTPayload {
  'kubernetes.io'?: {
    namespace?: string;
    serviceaccount?: { name?: string; uid?: string };
    pod?: { name?: string; uid?: string };
    secret?: { name?: string; uid?: string };
    node?: { name?: string; uid?: string };
  };
}

/** What the authenticator checks tokens against. */
export interface ServiceAccountSources {
  readonly issuer: string;
  readonly jwks: { keys: object[] };
  readonly audiences: readonly string[];
  /** The live object `kind/namespace/name` (`serviceaccounts`, `pods`, `secrets`, `nodes`), if it exists. */
  lookup(resource: 'serviceaccounts' | 'pods' | 'secrets' | 'nodes', namespace: string, name: string): KubeObject | undefined;
}

/**
 * Kubernetes' service-account token authentication: an ES256 JWT from the cluster's issuer (keys from
 * its `/openid/v1/jwks`), for one of the accepted audiences, not expired, whose service account, and
 * the pod, secret or node it is bound to, still exist with the uids it names. Tokens from another
 * issuer are not this authenticator's (undefined); ours that fail a check are refused (`{error}`).
 */
export function serviceAccountAuthenticator(src: ServiceAccountSources): Authenticator {
  const keys = createLocalJWKSet(src.jwks as Parameters<typeof createLocalJWKSet>[0]);
  return {
    async authenticate(request) {
      const token = bearerToken(request);
      if (token === undefined || token.split('.').length !== 3) return undefined;
      let unverified: JWTPayload;
      try {
        unverified = decodeJwt(token);
      } catch {
        return undefined;
      }
      if (unverified.iss !== src.issuer) return undefined;
      let claims: Claims;
      try {
        claims = (await jwtVerify(token, keys, { issuer: src.issuer, audience: [...src.audiences], algorithms: ['ES256'] })).payload as Claims;
      } catch (err) {
        return { error: `service account token: ${(err as Error).message}` };
      }
      const k8s = claims['kubernetes.io'];
      const ns = k8s?.namespace;
      const name = k8s?.serviceaccount?.name;
      if (!ns || !name || claims.sub !== `system:serviceaccount:${ns}:${name}`) return { error: 'service account token: malformed claims' };
      const sa = src.lookup('serviceaccounts', ns, name);
      if (!sa || sa.metadata?.uid !== k8s.serviceaccount?.uid) return { error: `service account token: service account ${ns}/${name} no longer exists` };
      const extra: Record<string, string[]> = {};
      for (const kind of ['pod', 'secret', 'node'] as const) {
        const ref = k8s[kind];
        if (!ref?.name) continue;
        const obj = src.lookup(`${kind}s`, kind === 'node' ? '' : ns, ref.name);
        if (!obj || obj.metadata?.uid !== ref.uid) return { error: `service account token: the ${kind} ${ref.name} it is bound to no longer exists` };
        extra[`authentication.kubernetes.io/${kind}-name`] = [ref.name];
        extra[`authentication.kubernetes.io/${kind}-uid`] = [String(ref.uid)];
      }
      if (claims.jti) extra['authentication.kubernetes.io/credential-id'] = [`JTI=${claims.jti}`];
      const user: UserInfo = { username: claims.sub, uid: String(sa.metadata?.uid), groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`], extra };
      return { user };
    },
  };
}

function informers(api: ApiClient): Record<'serviceaccounts' | 'pods' | 'secrets' | 'nodes', Informer> {
  return {
    serviceaccounts: api.informer('/api/v1/serviceaccounts'),
    pods: api.informer('/api/v1/pods'),
    secrets: api.informer('/api/v1/secrets'),
    nodes: api.informer('/api/v1/nodes'),
  };
}

export const serviceAccountPlugin = definePlugin({
  id: 'authn-serviceaccount',
  kind: 'authenticator',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'Authenticates service-account tokens (TokenRequest JWTs) against the cluster issuer\'s keys and the objects they are bound to.',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: { audiences: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1, description: 'accepted audiences (default: the issuer)' } },
  },
  async start(handle, config: ServiceAccountConfig, signal) {
    const api = handle.api;
    const discovery = await api.get<{ issuer: string }>('/.well-known/openid-configuration');
    const jwks = await api.get<{ keys: object[] }>('/openid/v1/jwks');
    const caches = informers(api);
    for (const i of Object.values(caches)) i.run();
    await Promise.all(Object.values(caches).map((i) => i.waitForSync(signal)));
    handle.provide(
      serviceAccountAuthenticator({
        issuer: discovery.issuer,
        jwks,
        audiences: config.audiences ?? [discovery.issuer],
        lookup: (resource, namespace, name) => caches[resource].get(namespace ? `${namespace}/${name}` : name),
      }),
    );
    await untilAborted(signal);
  },
});
