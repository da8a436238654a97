/**
 * The node agent (kubelet): the main loop, the pod workers, pod and node status.
 *
 * @module
 */
export { Agent, NODE_LEASE_DURATION_SECONDS, NODE_STATUS_REPORT_MS } from './agent.js';
export type { AgentOptions } from './agent.js';
export { PodWorker, systemClock } from './pod-worker.js';
export type { Clock, PodWorkerOptions, PodWorkerRuntime, V1WorkerPod, V1WorkerContainer } from './pod-worker.js';
export { machineInfo, nodeObject, nodeConditions, KUBELET_VERSION } from './node-status.js';
export type { MachineInfo, NodeObservation, NodeOptions, V1Node, V1NodeCondition } from './node-status.js';
export { podStatus, statusChanged } from './pod-status.js';
export type { V1Pod, V1PodStatus } from './pod-status.js';
export { bootstrapNodeCredentials, certificateState, newRequest, newKeyAndRequest, NodeBootstrapError, KUBELET_CLIENT_SIGNER, NODE_CLIENT_CERT_FILE, NODE_CLIENT_KEY_FILE, NODE_KUBECONFIG_FILE } from './bootstrap.js';
export type { BootstrapOptions, NodeCredentials, CertificateState } from './bootstrap.js';
export { ProbeManager } from './prober.js';
export type { ProbeManagerOptions, V1Probe } from './prober.js';
export { CgroupManager, cgroupsAvailable } from './cgroups.js';
export { containerResources, podCgroupParent, podResourceConfig, oomScoreAdj } from './resources.js';
export { runPostStartHook, runPreStopHook } from './lifecycle.js';
export { VolumeManager, VolumeError, isVolumeError, apiVolumeSources, ContainerConfigError } from './volumes.js';
export type { VolumePlugin, VolumeSources, VolumeManagerOptions } from './volumes.js';
export { resolveEnv, expandCommandAndArgs } from './env.js';
export { AgentServer, ensureServingCertificate, runtimePodLookup, DEFAULT_AGENT_PORT } from './server.js';
export type { AgentServerOptions, PodLookup, PodRef, ContainerRef } from './server.js';
export { readContainerLogs } from './logs.js';
export { readManifestDir, readManifestUrl, staticPodDefaults, mirrorPodOf } from './static-pods.js';
export { dialTcp, encodeChannelFrame, decodeChannelFrame, exitCodeStatus, SUCCESS_STATUS, Channel } from './streams.js';
export { ImageGarbageCollector, IMAGE_GC_PERIOD_MS, IMAGE_GC_EVENT_REASONS, DEFAULT_IMAGE_GC_HIGH_THRESHOLD_PERCENT, DEFAULT_IMAGE_GC_LOW_THRESHOLD_PERCENT, DEFAULT_IMAGE_MINIMUM_GC_AGE_MS } from './image-gc.js';
export type { ImageGarbageCollectorOptions, ImageGCResult, ImageGCRuntime, ImageRecord, FilesystemCapacity } from './image-gc.js';
