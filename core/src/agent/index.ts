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
