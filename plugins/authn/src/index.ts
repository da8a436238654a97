/**
 * `@kubernel/plugin-authn`: authenticators for the API server's chain. `authn-x509` maps verified
 * client certificates to users (CN) and groups (O); `authn-token-file` authenticates static bearer
 * tokens from a CSV file.
 *
 * @packageDocumentation
 */
import { x509Plugin } from './x509.js';
import { tokenFilePlugin } from './token-file.js';
import { serviceAccountPlugin } from './service-account.js';
import { bootstrapTokenPlugin } from './bootstrap-token.js';

export { x509Plugin, x509Authenticator } from './x509.js';
export { tokenFilePlugin, tokenAuthenticator, parseTokenFile } from './token-file.js';
export type { TokenFileConfig } from './token-file.js';

export { serviceAccountPlugin, serviceAccountAuthenticator } from './service-account.js';
export type { ServiceAccountConfig, ServiceAccountSources } from './service-account.js';

export { bootstrapTokenPlugin, bootstrapTokenAuthenticator } from './bootstrap-token.js';

export default [x509Plugin, tokenFilePlugin, serviceAccountPlugin, bootstrapTokenPlugin];
