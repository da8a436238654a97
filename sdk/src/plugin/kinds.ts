/**
 * The closed set of plugin kinds: each is one extension point of the Kubernetes architecture.
 *
 * A kind has a *shape*:
 * - `service` plugins run their own loop until aborted (a scheduler, a controller) and call
 *   {@link Handle.ready} once they are up;
 * - `provider` plugins hand the kernel an implementation of their kind's contract
 *   ({@link KindContracts}) with {@link ProviderHandle.provide}; a consumer in the same process
 *   (the API server, the node agent, the scheduler, the cloud controller manager) finds it with
 *   {@link Handle.extensions}.
 *
 * Providers start before services and stop after them, so a consumer never sees its providers
 * disappear while it is still running.
 *
 * @module
 */

/** Every plugin kind, in start order (providers first). The set is closed: the kernel refuses any other. */
export const PLUGIN_KINDS = [
  'authenticator',
  'authorizer',
  'admission',
  'container-runtime',
  'csi-driver',
  'cloud-provider',
  'service-proxy',
  'scheduler-plugin',
  'scheduler',
  'controller',
] as const;

/** One of {@link PLUGIN_KINDS}. */
export type PluginKind = (typeof PLUGIN_KINDS)[number];

/** How a kind takes part in the process: see the module documentation. */
export type KindShape = 'service' | 'provider';

/** The documented facts about one plugin kind. */
export interface KindInfo {
  /** `service` runs a loop; `provider` hands over an implementation. */
  readonly shape: KindShape;
  /** Start tier: lower tiers start first and stop last. */
  readonly tier: number;
  /** What a plugin of this kind is for, in the words of the Kubernetes architecture. */
  readonly description: string;
  /** Who consumes a provider of this kind (empty for services). */
  readonly consumer: string;
}

/** The facts about every kind, as data (tooling prints it; the kernel orders start-up by `tier`). */
export const KIND_INFO: Readonly<Record<PluginKind, KindInfo>> = Object.freeze({
  authenticator: {
    shape: 'provider', tier: 0, consumer: 'API server',
    description: 'Turns a request\'s credentials (x509 client certificate, bearer token, service account token) into a user, groups and extra; a chain in which the first success wins.',
  },
  authorizer: {
    shape: 'provider', tier: 0, consumer: 'API server',
    description: 'Decides Allow, Deny or NoOpinion for a request\'s attributes (user, verb, resource, namespace, name, path); a chain like RBAC and the Node authorizer.',
  },
  admission: {
    shape: 'provider', tier: 0, consumer: 'API server',
    description: 'Mutates and/or validates objects after authorization and before they are persisted (NamespaceLifecycle, LimitRanger, ResourceQuota, PodSecurity, webhooks).',
  },
  'container-runtime': {
    shape: 'provider', tier: 0, consumer: 'node agent',
    description: 'Runs pod sandboxes and containers and manages images, mirroring the CRI RuntimeService and ImageService.',
  },
  'csi-driver': {
    shape: 'provider', tier: 0, consumer: 'node agent and volume controllers',
    description: 'Provisions, attaches and mounts volumes, mirroring the CSI Identity, Controller and Node services.',
  },
  'cloud-provider': {
    shape: 'provider', tier: 0, consumer: 'cloud controller manager',
    description: 'Answers for the cloud: instances, zones, load balancers and routes.',
  },
  'service-proxy': {
    shape: 'provider', tier: 0, consumer: 'node agent (proxy loop)',
    description: 'Programs the node\'s data plane for Service virtual IPs from Services and EndpointSlices (IPVS, nftables, ...).',
  },
  'scheduler-plugin': {
    shape: 'provider', tier: 0, consumer: 'scheduler',
    description: 'One scheduling framework plugin (QueueSort, Filter, Score, Bind, ...) that a scheduler composes into profiles.',
  },
  scheduler: {
    shape: 'service', tier: 1, consumer: '',
    description: 'Watches unscheduled pods, filters and scores nodes, and binds each pod to one.',
  },
  controller: {
    shape: 'service', tier: 1, consumer: '',
    description: 'Reconciles observed cluster state with desired state for one kind of object (deployments, endpoints, nodes, garbage collection, ...).',
  },
});

/** True when `value` is one of {@link PLUGIN_KINDS}. */
export function isPluginKind(value: unknown): value is PluginKind {
  return typeof value === 'string' && (PLUGIN_KINDS as readonly string[]).includes(value);
}

/** The kinds whose plugins run their own loop (shape `service`). */
export type ServiceKind = 'scheduler' | 'controller';

/** The kinds whose plugins hand over an implementation (shape `provider`). */
export type ProviderKind = Exclude<PluginKind, ServiceKind>;

/** True when plugins of `kind` are providers. */
export function isProviderKind(kind: PluginKind): kind is ProviderKind {
  return KIND_INFO[kind].shape === 'provider';
}
