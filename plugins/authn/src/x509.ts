import { definePlugin, untilAborted, type Authenticator } from '@kubernel/sdk';

/**
 * Kubernetes' x509 client-certificate authentication: a client certificate that the API server's
 * TLS layer verified against the cluster's client CA names the user in its Common Name and the
 * groups in its Organization values. A request without a verified certificate is not this
 * authenticator's (the next one tries); a verified certificate without a Common Name is refused.
 */
export function x509Authenticator(): Authenticator {
  return {
    async authenticate({ clientCertificate }) {
      if (!clientCertificate) return undefined;
      if (!clientCertificate.commonName) return { error: 'the client certificate has no Common Name' };
      return { user: { username: clientCertificate.commonName, groups: [...clientCertificate.organizations] } };
    },
  };
}

export const x509Plugin = definePlugin({
  id: 'authn-x509',
  kind: 'authenticator',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'Authenticates x509 client certificates verified against the cluster CA (CN = user, O = groups).',
  configSchema: { type: 'object', additionalProperties: false, properties: {} },
  async start(handle, _config, signal) {
    handle.provide(x509Authenticator());
    await untilAborted(signal);
  },
});
