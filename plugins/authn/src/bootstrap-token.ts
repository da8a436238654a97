import { timingSafeEqual } from 'node:crypto';
import { bearerToken, definePlugin, untilAborted, type Authenticator, type KubeObject } from '@kubernel/sdk';

const TOKEN = /^([a-z0-9]{6})\.([a-z0-9]{16})$/;
const SECRET_TYPE = 'bootstrap.kubernetes.io/token';
const EXTRA_GROUP = /^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$/;

const field = (secret: KubeObject, key: string): string | undefined => {
  const v = (secret.data as Record<string, string> | undefined)?.[key];
  return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
};

/**
 * Kubernetes' bootstrap token authentication (for nodes joining a cluster): a bearer token
 * `<id>.<secret>` matching a Secret `bootstrap-token-<id>` of type `bootstrap.kubernetes.io/token`
 * in kube-system, with `usage-bootstrap-authentication: "true"`, not expired and not being deleted,
 * is the user `system:bootstrap:<id>` in `system:bootstrappers` plus the secret's
 * `auth-extra-groups` (each must start with `system:bootstrappers:`).
 */
export function bootstrapTokenAuthenticator(lookup: (secretName: string) => KubeObject | undefined, now: () => Date = () => new Date()): Authenticator {
  return {
    async authenticate(request) {
      const token = bearerToken(request);
      const m = token === undefined ? null : TOKEN.exec(token);
      if (!m) return undefined;
      const [, id, secretPart] = m as unknown as [string, string, string];
      const secret = lookup(`bootstrap-token-${id}`);
      if (!secret || secret.type !== SECRET_TYPE) return undefined;
      if (secret.metadata?.deletionTimestamp) return { error: `bootstrap token ${id} is being deleted` };
      if (field(secret, 'token-id') !== id) return { error: `bootstrap token ${id}: its secret names another token id` };
      const expected = Buffer.from(field(secret, 'token-secret') ?? '');
      const given = Buffer.from(secretPart);
      if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { error: `bootstrap token ${id}: wrong secret` };
      if (field(secret, 'usage-bootstrap-authentication') !== 'true') return { error: `bootstrap token ${id} is not for authentication` };
      const expiration = field(secret, 'expiration');
      if (expiration !== undefined && !(Date.parse(expiration) > now().getTime())) return { error: `bootstrap token ${id} has expired` };
      const extra = (field(secret, 'auth-extra-groups') ?? '').split(',').map((g) => g.trim()).filter(Boolean);
      const bad = extra.find((g) => !EXTRA_GROUP.test(g));
      if (bad) return { error: `bootstrap token ${id}: extra group ${bad} must start with system:bootstrappers:` };
      return { user: { username: `system:bootstrap:${id}`, groups: ['system:bootstrappers', ...extra] } };
    },
  };
}

export const bootstrapTokenPlugin = definePlugin({
  id: 'authn-bootstrap-token',
  kind: 'authenticator',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'Authenticates bootstrap tokens (<id>.<secret>) kept as bootstrap.kubernetes.io/token secrets in kube-system, for nodes joining.',
  configSchema: { type: 'object', additionalProperties: false, properties: {} },
  async start(handle, _config, signal) {
    const secrets = handle.api.informer('/api/v1/namespaces/kube-system/secrets');
    secrets.run();
    await secrets.waitForSync(signal);
    handle.provide(bootstrapTokenAuthenticator((name) => secrets.get(`kube-system/${name}`)));
    await untilAborted(signal);
  },
});
