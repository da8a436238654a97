/** The Kubernetes-compatible API server. */
export { ApiServer } from './server.js';
export type { ApiServerOptions } from './server.js';
export { apiCodec } from './codec.js';
export { bootstrapCluster, writeKubeconfig, SYSTEM_NAMESPACES } from './bootstrap.js';
export { ALWAYS_ALLOW, ANONYMOUS, LOOPBACK_USER, MASTERS_AUTHORIZER, MASTERS_GROUP, fixedChain, loopbackAuthenticator } from './chain.js';
export type { RequestChain, UserInfo } from './chain.js';
export { ApiError } from './status.js';
export type { ResourceDef, Obj } from './resource.js';
export { BUILTIN_RESOURCES } from './builtin/index.js';
export { KUBERNETES_VERSION } from './openapi.js';
