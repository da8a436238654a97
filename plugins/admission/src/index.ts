/**
 * `@kubernel/plugin-admission`: Kubernetes' standard admission plugins, each a plugin of kind
 * `admission` a distribution orders, enables or replaces:
 *
 * - `namespace-lifecycle` (NamespaceLifecycle), `service-account` (ServiceAccount),
 *   `limit-ranger` (LimitRanger), `resource-quota` (ResourceQuota, with the quota controller's
 *   recounting), `pod-security` (PodSecurity), `priority` (Priority: pod priority from PriorityClasses,
 *   and the system classes), `default-storage-class` (DefaultStorageClass);
 * - `mutating-admission-webhook` and `validating-admission-webhook`: dynamic admission through
 *   MutatingWebhookConfiguration and ValidatingWebhookConfiguration, so third parties extend the
 *   chain without code in the process.
 *
 * @packageDocumentation
 */
import { defaultStorageClassPlugin } from './default-storage-class.js';
import { limitRangerPlugin } from './limit-ranger.js';
import { namespaceLifecyclePlugin } from './namespace-lifecycle.js';
import { podSecurityPlugin } from './pod-security.js';
import { priorityPlugin } from './priority.js';
import { resourceQuotaPlugin } from './resource-quota.js';
import { serviceAccountPlugin } from './service-account.js';
import { mutatingWebhookPlugin, validatingWebhookPlugin } from './webhook.js';

export { namespaceLifecycle, namespaceLifecyclePlugin, IMMORTAL_NAMESPACES } from './namespace-lifecycle.js';
export { serviceAccountAdmission, serviceAccountPlugin, apiAccessVolume, TOKEN_MOUNT_PATH, ROOT_CA_CONFIGMAP, TOKEN_EXPIRATION_SECONDS } from './service-account.js';
export { limitRanger, limitRangerPlugin, applyContainerDefaults, podProblems, claimProblems } from './limit-ranger.js';
export { resourceQuota, resourceQuotaPlugin, QuotaController } from './resource-quota.js';
export { usageOf, podResources, podQos, missingCompute, quotaCovers, countName } from './quota-usage.js';
export type { Usage } from './quota-usage.js';
export { defaultStorageClass, defaultStorageClassPlugin, defaultClass, isDefaultClass } from './default-storage-class.js';
export {
  priorityAdmission,
  priorityPlugin,
  defaultPriorityClass,
  systemPriorityClasses,
  systemClassProblem,
  ensureSystemPriorityClasses,
  informerSource,
  PRIORITY_CLASSES_PATH,
  HIGHEST_USER_DEFINABLE_PRIORITY,
  SYSTEM_CRITICAL_PRIORITY,
  DEFAULT_PRIORITY,
  SYSTEM_PRIORITY_CLASS_PREFIX,
  SYSTEM_CLUSTER_CRITICAL,
  SYSTEM_NODE_CRITICAL,
} from './priority.js';
export type { PriorityClassSource } from './priority.js';
export * from './pod-security.js';
export * from './webhook.js';

export default [
  namespaceLifecyclePlugin,
  serviceAccountPlugin,
  limitRangerPlugin,
  resourceQuotaPlugin,
  podSecurityPlugin,
  priorityPlugin,
  defaultStorageClassPlugin,
  mutatingWebhookPlugin,
  validatingWebhookPlugin,
];
