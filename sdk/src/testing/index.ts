/**
 * `@kubernel/sdk/testing`: the published contract suites (one per extension point) and the test
 * kit for plugin authors. Every in-repo plugin runs its kind's suite; a third-party plugin runs the
 * same one.
 *
 * @packageDocumentation
 */
export { describePluginContract } from './plugin-contract.js';
export type { PluginContractOptions, InvalidConfigCase } from './plugin-contract.js';
export { startPlugin, createTestHost, describeStop } from './harness.js';
export type { RunningPlugin, StartPluginOptions, StopOutcome, TestHost, TestHostOptions, LogRecord } from './harness.js';
export { trackResources } from './resources.js';
export type { ResourceTracker } from './resources.js';
export { describeAuthenticatorContract, describeAdmissionContract, describeAuthorizerContract, authorizationAttributes } from './security-contracts.js';
export type { AuthenticatorContractOptions, AdmissionContractOptions, AdmissionCase, AdmissionExpectation, AuthorizerContractOptions } from './security-contracts.js';
export { admissionRequest, TEST_USER } from './admission.js';
export type { TestAdmissionRequest } from './admission.js';
export { describeControllerContract } from './controller-contract.js';
export type { ControllerContractOptions, ControllerScenario } from './controller-contract.js';
export { describeSchedulerPluginContract, runPluginOnSnapshot, testFrameworkHandle, testNode, testPod } from './scheduler.js';
export type { PluginRun, SchedulerPluginContractOptions, SchedulerPluginScenario, TestHandleOptions } from './scheduler.js';
export { describeContainerRuntimeContract } from './runtime-contract.js';
export type { ContainerRuntimeContractOptions } from './runtime-contract.js';
