/**
 * `@kubernel/sdk`: the contract between Kubernel and its plugins, and the only package a plugin
 * imports. The contract suites and test kit live in `@kubernel/sdk/testing`.
 *
 * @packageDocumentation
 */
export { SDK_VERSION } from './version.js';
export { PLUGIN_KINDS, KIND_INFO, isPluginKind, isProviderKind } from './plugin/kinds.js';
export type { PluginKind, KindInfo, KindShape, ProviderKind, ServiceKind } from './plugin/kinds.js';
export {
  definePlugin,
  checkPluginSpec,
  isPluginDefinition,
  pluginBrandOf,
  PLUGIN_BRAND,
  PLUGIN_BRAND_FORMAT,
} from './plugin/define-plugin.js';
export type { PluginDefinition, PluginSpec, PluginBrand, StartFunction } from './plugin/define-plugin.js';
export { ROLES } from './plugin/handle.js';
export type { Handle, ServiceHandle, ProviderHandle, HandleFor, AnyHandle, PluginIdentity, Role, Logger } from './plugin/handle.js';
export type { Extension, OpenContract, KindContracts, ContractOf, ExtensionLookup } from './plugin/extensions.js';
export { compileConfigSchema, formatConfigProblems } from './plugin/config.js';
export type { JsonSchema, ConfigProblem, ConfigResult, ConfigValidator } from './plugin/config.js';
export { createMetrics } from './plugin/metrics.js';
export type { Metrics, MetricOptions, HistogramOptions, Counter, Gauge, Histogram, Registry } from './plugin/metrics.js';
export { PluginError, PluginContractError, describeError } from './plugin/errors.js';
export { untilAborted, delay } from './plugin/lifecycle.js';
export { createPluginHandle } from './plugin/host.js';
export type { HandleHost } from './plugin/host.js';
export { AdmissionDenied, bearerToken } from './security/contracts.js';
export type {
  UserInfo,
  CertificateSubject,
  AuthenticationRequest,
  AuthenticationResult,
  Authenticator,
  AuthorizationAttributes,
  AuthorizationDecision,
  Authorizer,
  ResourceRule,
  NonResourceRule,
  SubjectRules,
  Admission,
  AdmissionRequest,
  AdmissionCause,
  ApiObject,
  GroupVersionKind,
  GroupVersionResource,
} from './security/contracts.js';
export { isAuthenticator, isAuthorizer, isAdmission } from './security/contracts.js';
export { ApiClient, ApiStatusError, isNotFound, isAlreadyExists, isConflict, isGone } from './client/api-client.js';
export type { ApiConnection, ApiTransport, KubeObject, KubeList, WatchEvent, RequestOptions, TransportRequest, TransportResponse, TransportStream } from './client/api-client.js';
export { Informer, keyOf } from './client/informer.js';
export type { InformerHandlers } from './client/informer.js';
export { parseQuantity, formatQuantity, addQuantities, compareQuantities, isQuantity, QuantityError, ZERO_QUANTITY } from './api/quantity.js';
export type { Quantity, QuantityFormat } from './api/quantity.js';
export { compileLabelSelector, labelSelectorMatches } from './api/selectors.js';
export type { LabelMatcher, LabelSelector } from './api/selectors.js';
export { WorkQueue, ItemExponentialFailureRateLimiter, BucketRateLimiter, MaxOfRateLimiter, defaultControllerRateLimiter } from './controller/workqueue.js';
export type { RateLimiter, WorkQueueOptions, WorkQueueClock } from './controller/workqueue.js';
export { Controller, TerminalError, keyString, parseKey, objectKey, mapToSelf, mapToOwner, mapBySelector, controllerOf } from './controller/controller.js';
export type { ObjectKey, Reconciler, ReconcileResult, ReconcileContext, EventMapper, OwnerReference, ControllerOptions } from './controller/controller.js';
export { loadKubeconfig, SERVICE_ACCOUNT_DIR } from './client/api-client.js';
export type { ApiClientOptions } from './client/api-client.js';
export { NAMESPACE_INDEX } from './client/informer.js';
export type { IndexFunc, SubscribeOptions } from './client/informer.js';
export { LeaderElector, formatMicroTime, systemWallClock, JITTER_FACTOR } from './controller/leader-election.js';
export type { LeaderElectorOptions, Lease, LeaseSpec, LeaderElectionRecord, WallClock } from './controller/leader-election.js';
export { runWhileLeading, LEADER_ELECTION_SCHEMA, PROCESS_IDENTITY } from './controller/leadership.js';
export type { LeaderElectionConfig } from './controller/leadership.js';
export { EventRecorder, EventCorrelator } from './controller/events.js';
export type { EventRecorderOptions, EventType, ObjectReference, CoreEvent } from './controller/events.js';
export { Status, isSuccess, MAX_NODE_SCORE, MIN_NODE_SCORE } from './scheduler/status.js';
export type { StatusCode } from './scheduler/status.js';
export { CycleState, EXTENSION_POINTS, EXTENSION_METHOD, implementsPoint, isSchedulerPluginFactory } from './scheduler/framework.js';
export type {
  ActionType,
  ClusterEvent,
  ClusterEventWithHint,
  EventResource,
  ExtensionPoint,
  FrameworkHandle,
  FrameworkPlugin,
  NodeScore,
  PermitResult,
  PodNominator,
  PostFilterResult,
  PreFilterExtensions,
  PreFilterResult,
  QueuedPodInfo,
  QueueingHint,
  SchedulerPluginFactory,
} from './scheduler/framework.js';
export { NodeInfo, PodInfo, Snapshot, imageStatesOf, nextGeneration, podHostPorts, podPriority } from './scheduler/nodeinfo.js';
export type { AffinityTerm, WeightedAffinityTerm, HostPort, ImageState, NodeSnapshot } from './scheduler/nodeinfo.js';
export { addResource, cloneResource, emptyResource, isExtendedResourceName, isNativeResourceName, isScalarResourceName, nodeAllocatable, podRequests, quantityValue, resourceList, DEFAULT_MEMORY_REQUEST, DEFAULT_MILLI_CPU_REQUEST } from './scheduler/resources.js';
export type { Resource } from './scheduler/resources.js';
export { affinityTermMatches, defaultNormalizeScore, findUntoleratedTaint, nodeSelectorMatches, nodeSelectorTermMatches, nodeTaints, podMatchesNodeSelectorAndAffinity, podTolerations, toleratesAll, toleratesTaint } from './scheduler/helpers.js';
export type { NodeSelectorRequirement, NodeSelectorTerm, Taint, Toleration } from './scheduler/helpers.js';
export { DEFAULT_MULTI_POINT, DEFAULT_SCHEDULER_NAME, defaultProfile, enabledPluginNames, mergePluginSet, mergeProfile, pluginsByPoint } from './scheduler/profile.js';
export type { PluginRef, PluginSet, PointPlugins, ProfilePlugins, SchedulerProfile } from './scheduler/profile.js';
export { defineSchedulerPlugin } from './scheduler/define.js';
export type { SchedulerPluginSpec } from './scheduler/define.js';
export { CRI_API_VERSION, RUNTIME_ERROR_GRPC_CODES, RuntimeError, isRuntimeError, RUNTIME_READY, NETWORK_READY, CONTAINER_RESTART_COUNT_ANNOTATION, restartCountOf, CONTAINER_RUNTIME_METHODS, OPTIONAL_CONTAINER_RUNTIME_METHODS, missingContainerRuntimeMethods, isContainerRuntime } from './runtime/cri.js';
export type {
  RuntimeErrorCode,
  VersionResponse,
  RuntimeCondition,
  RuntimeStatus,
  StatusResponse,
  PodSandboxMetadata,
  DnsConfig,
  Protocol,
  PortMapping,
  NamespaceMode,
  NamespaceOption,
  LinuxSandboxSecurityContext,
  LinuxPodSandboxConfig,
  PodSandboxConfig,
  PodSandboxState,
  PodSandboxNetworkStatus,
  PodSandboxStatus,
  PodSandboxStatusResponse,
  PodSandbox,
  PodSandboxFilter,
  ContainerMetadata,
  ImageSpec,
  KeyValue,
  MountPropagation,
  Mount,
  Device,
  LinuxContainerResources,
  Capability,
  LinuxContainerSecurityContext,
  LinuxContainerConfig,
  ContainerConfig,
  ContainerState,
  Container,
  ContainerStatus,
  ContainerStatusResponse,
  ContainerFilter,
  ExecSyncResponse,
  ExecRequest,
  AttachRequest,
  PortForwardRequest,
  StreamingResponse,
  FilesystemUsage,
  ContainerStats,
  ContainerStatsFilter,
  Image,
  ImageFilter,
  ImageStatusResponse,
  AuthConfig,
  ImageFsInfoResponse,
  RuntimeService,
  ImageService,
  ContainerRuntime,
} from './runtime/cri.js';
export { defineContainerRuntimePlugin } from './runtime/define.js';
export type { ContainerRuntimePluginSpec } from './runtime/define.js';
