import { createHash, createPublicKey, randomUUID } from 'node:crypto';
import { exportJWK, importPKCS8, importSPKI, SignJWT, type JWK } from 'jose';
import type { Obj } from './resource.js';
import { badRequest, invalid } from './status.js';

/** Kubernetes' default service-account token issuer. */
export const DEFAULT_ISSUER = 'https://kubernetes.default.svc.cluster.local';

type Key = Awaited<ReturnType<typeof importPKCS8>>;

/**
 * Issues service-account tokens (the TokenRequest API, `serviceaccounts/<name>/token`): ES256 JWTs
 * signed with the cluster's service-account key, with Kubernetes' claims (`iss`, `sub`
 * `system:serviceaccount:<ns>:<name>`, `aud`, `exp`, `iat`, `nbf`, `jti`, and `kubernetes.io` with
 * the namespace, the service account and the object the token is bound to). The public keys are
 * served at `/openid/v1/jwks` (service-account issuer discovery) for authenticators to verify with.
 */
export class ServiceAccountTokens {
  private constructor(
    readonly issuer: string,
    private readonly key: Key,
    readonly kid: string,
    readonly jwks: { keys: JWK[] },
  ) {}

  static async load(privateKeyPem: string, publicKeyPem: string, issuer = DEFAULT_ISSUER): Promise<ServiceAccountTokens> {
    const key = await importPKCS8(privateKeyPem, 'ES256');
    const der = createPublicKey(publicKeyPem).export({ format: 'der', type: 'spki' });
    const kid = createHash('sha256').update(der).digest('base64url');
    const jwk = await exportJWK(await importSPKI(publicKeyPem, 'ES256'));
    return new ServiceAccountTokens(issuer, key, kid, { keys: [{ ...jwk, kid, use: 'sig', alg: 'ES256' }] });
  }

  /** The OpenID discovery document (`/.well-known/openid-configuration`). */
  discovery(): Obj {
    return {
      issuer: this.issuer,
      jwks_uri: `${this.issuer}/openid/v1/jwks`,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['ES256'],
    };
  }

  /**
   * Answers a TokenRequest for service account `sa` (the stored object), optionally bound to
   * `boundObject` (a Pod, Secret or Node that must exist: its uid is checked by the caller).
   */
  async request(sa: Obj, tokenRequest: Obj, boundObject: Obj | undefined): Promise<Obj> {
    const spec = (tokenRequest.spec ?? {}) as Obj;
    const expirationSeconds = spec.expirationSeconds ?? 3600;
    if (typeof expirationSeconds !== 'number' || !Number.isInteger(expirationSeconds) || expirationSeconds < 600 || expirationSeconds > 2 ** 32) {
      throw invalid('TokenRequest', 'authentication.k8s.io', '', [{ reason: 'FieldValueInvalid', field: 'spec.expirationSeconds', message: `Invalid value: ${JSON.stringify(expirationSeconds)}: may not specify a duration less than 10 minutes` }]);
    }
    const audiences = Array.isArray(spec.audiences) && spec.audiences.length > 0 ? (spec.audiences as unknown[]).map(String) : [this.issuer];
    const ns = String(sa.metadata.namespace);
    const now = Math.floor(Date.now() / 1000);
    const bound = spec.boundObjectRef as Obj | undefined;
    if (bound && !['Pod', 'Secret', 'Node'].includes(String(bound.kind))) throw badRequest(`cannot bind a token to a ${String(bound.kind)}; supported: Pod, Secret, Node`);
    const k8s: Obj = { namespace: ns, serviceaccount: { name: sa.metadata.name, uid: sa.metadata.uid } };
    if (bound && boundObject) k8s[String(bound.kind).toLowerCase()] = { name: boundObject.metadata.name, uid: boundObject.metadata.uid };
    const exp = now + expirationSeconds;
    const token = await new SignJWT({ 'kubernetes.io': k8s })
      .setProtectedHeader({ alg: 'ES256', kid: this.kid })
      .setIssuer(this.issuer)
      .setSubject(`system:serviceaccount:${ns}:${String(sa.metadata.name)}`)
      .setAudience(audiences)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(exp)
      .setJti(randomUUID())
      .sign(this.key);
    return {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      metadata: { name: sa.metadata.name, namespace: ns, creationTimestamp: null },
      spec: { audiences, expirationSeconds, boundObjectRef: bound ?? null },
      status: { token, expirationTimestamp: new Date(exp * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') },
    };
  }
}
