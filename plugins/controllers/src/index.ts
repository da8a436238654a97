/**
 * `@kubernel/plugin-controllers`: the controller manager's controllers, each a plugin of kind
 * `controller` a distribution enables or replaces on its own.
 *
 * - `serviceaccount-controller`: a `default` ServiceAccount in every active namespace.
 * - `root-ca-cert-publisher`: the `kube-root-ca.crt` ConfigMap (the cluster CA as `ca.crt`) in
 *   every active namespace, for the projected service-account volume.
 * - `replicaset-controller`, `replicationcontroller-controller`: the replica count, adoption and
 *   release of pods, expectations.
 * - `deployment-controller`: RollingUpdate and Recreate rollouts over ReplicaSets, revision
 *   history and rollback, pause, progress deadlines.
 * - `namespace-controller`: deleting a namespace deletes its content, then the namespace.
 * - `garbage-collector`: deletes objects whose owners are gone; foreground and orphan deletion.
 * - `endpoints-controller`, `endpointslice-controller`: the Endpoints and EndpointSlices of every
 *   Service with a selector, from the pods it selects (readiness, named ports, terminating pods).
 * - `pod-gc-controller`: deletes terminated pods beyond a threshold, pods of deleted nodes (after a
 *   quarantine), and terminating pods never scheduled or on out-of-service nodes.
 * - `disruption-controller`: the status of every PodDisruptionBudget (healthy, desired and expected
 *   pods, disruptions allowed, disrupted pods), which the eviction subresource enforces.
 * - `daemonset-controller`: one pod per eligible node (node selector, required node affinity,
 *   taints and the daemon tolerations), RollingUpdate (maxUnavailable, maxSurge) and OnDelete over
 *   ControllerRevisions, the status `kubectl rollout status` reads.
 * - `certificatesigningrequest-approving-controller`, `-signing-controller`, `-cleaner-controller`:
 *   node TLS bootstrap: kubelet client CSRs approved after a SubjectAccessReview, approved CSRs of
 *   the kubernetes.io signers issued with the cluster CA, old CSRs removed.
 * - `node-ipam-controller`: a pod CIDR from the cluster CIDR for every Node (`spec.podCIDR`,
 *   `spec.podCIDRs`), as kube-controller-manager's range allocator (`--allocate-node-cidrs`).
 *
 * @packageDocumentation
 */
import { readFile } from 'node:fs/promises';
import { definePlugin, LEADER_ELECTION_SCHEMA, runWhileLeading, untilAborted, type KubeObject, type LeaderElectionConfig } from '@kubernel/sdk';
import { createIfMissing, getOrUndefined, PerNamespaceEnsurer } from './namespaced-ensure.js';
import { replicaSetControllerPlugin, replicationControllerPlugin } from './replicaset.js';
import { endpointsControllerPlugin } from './endpoints.js';
import { endpointSliceControllerPlugin } from './endpointslice.js';
import { garbageCollectorPlugin } from './garbage-collector.js';
import { deploymentControllerPlugin } from './deployment.js';
import { namespaceControllerPlugin } from './namespace.js';
import { nodeLifecycleControllerPlugin } from './node-lifecycle.js';
import { statefulSetControllerPlugin } from './statefulset.js';
import { podGcControllerPlugin } from './podgc.js';
import { disruptionControllerPlugin } from './disruption.js';
import { daemonSetControllerPlugin } from './daemonset.js';
import { csrApprovingControllerPlugin } from './csr-approving.js';
import { csrSigningControllerPlugin } from './csr-signing.js';
import { csrCleanerControllerPlugin } from './csr-cleaner.js';
import { nodeIpamControllerPlugin } from './node-ipam.js';

const nsPath = (ns: string): string => `/api/v1/namespaces/${encodeURIComponent(ns)}`;

/** The ServiceAccount controller (Kubernetes' `serviceaccount` controller). */
export const serviceAccountControllerPlugin = definePlugin({
  id: 'serviceaccount-controller',
  kind: 'controller',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'ServiceAccount controller: the listed service accounts (default: "default") exist in every active namespace.',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      serviceAccounts: { type: 'array', items: { type: 'string', minLength: 1 }, default: ['default'], description: 'Accounts to keep in every namespace.' },
      leaderElection: LEADER_ELECTION_SCHEMA,
    },
  },
  async start(handle, config: { serviceAccounts: string[]; leaderElection: LeaderElectionConfig }, signal) {
    const namespaces = handle.api.informer('/api/v1/namespaces');
    const accounts = handle.api.informer('/api/v1/serviceaccounts');
    const wanted = new Set(config.serviceAccounts);
    namespaces.run();
    accounts.run();
    await Promise.all([namespaces.waitForSync(signal), accounts.waitForSync(signal)]);
    handle.ready();
    await runWhileLeading(handle.api, config.leaderElection, handle.logger, signal, async (leading) => {
      const loop = new PerNamespaceEnsurer(namespaces, handle.logger, async (ns) => {
        for (const name of wanted) {
          if (accounts.get(`${ns}/${name}`)) continue;
          await createIfMissing(handle.api, `${nsPath(ns)}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: ns } });
          handle.logger.info({ namespace: ns, serviceAccount: name }, 'created service account');
        }
      });
      const unsubscribe = [
        namespaces.subscribe({ add: (n) => loop.enqueue(String(n.metadata?.name)), update: (n) => loop.enqueue(String(n.metadata?.name)) }),
        accounts.subscribe({ delete: (sa) => wanted.has(String(sa.metadata?.name)) && loop.enqueue(String(sa.metadata?.namespace)) }),
      ];
      await untilAborted(leading);
      loop.stop();
      for (const u of unsubscribe) u();
    });
  },
});

/** The name of the ConfigMap the root CA publisher keeps. */
export const ROOT_CA_CONFIGMAP = 'kube-root-ca.crt';

/** The root CA publisher (Kubernetes' `root-ca-cert-publisher` controller). */
export const rootCaPublisherPlugin = definePlugin({
  id: 'root-ca-cert-publisher',
  kind: 'controller',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'Root CA publisher: the kube-root-ca.crt ConfigMap with the cluster CA in every active namespace.',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      rootCAFile: { type: 'string', description: 'PEM file of the CA to publish; default: the CA the API connection trusts.' },
      leaderElection: LEADER_ELECTION_SCHEMA,
    },
  },
  async start(handle, config: { rootCAFile?: string; leaderElection: LeaderElectionConfig }, signal) {
    const ca = config.rootCAFile ? await readFile(config.rootCAFile, 'utf8') : handle.api.connection.ca;
    if (!ca) throw new Error('no CA to publish: set rootCAFile (the API connection has no CA)');
    const namespaces = handle.api.informer('/api/v1/namespaces');
    const configMaps = handle.api.informer('/api/v1/configmaps');
    const desired = (ns: string): KubeObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: ROOT_CA_CONFIGMAP, namespace: ns, annotations: { 'kubernetes.io/description': 'Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.' } }, data: { 'ca.crt': ca } });
    const mine = (cm: KubeObject): boolean => cm.metadata?.name === ROOT_CA_CONFIGMAP;
    namespaces.run();
    configMaps.run();
    await Promise.all([namespaces.waitForSync(signal), configMaps.waitForSync(signal)]);
    handle.ready();
    await runWhileLeading(handle.api, config.leaderElection, handle.logger, signal, async (leading) => {
      const loop = new PerNamespaceEnsurer(namespaces, handle.logger, async (ns) => {
        const path = `${nsPath(ns)}/configmaps/${ROOT_CA_CONFIGMAP}`;
        const current = configMaps.get(`${ns}/${ROOT_CA_CONFIGMAP}`) ?? (await getOrUndefined(handle.api, path));
        if (!current) return createIfMissing(handle.api, `${nsPath(ns)}/configmaps`, desired(ns));
        if ((current.data as Record<string, string> | undefined)?.['ca.crt'] === ca) return;
        await handle.api.update(path, { ...current, data: { ...(current.data as object), 'ca.crt': ca } });
      });
      const unsubscribe = [
        namespaces.subscribe({ add: (n) => loop.enqueue(String(n.metadata?.name)), update: (n) => loop.enqueue(String(n.metadata?.name)) }),
        configMaps.subscribe({
          add: (cm) => mine(cm) && loop.enqueue(String(cm.metadata?.namespace)),
          delete: (cm) => mine(cm) && loop.enqueue(String(cm.metadata?.namespace)),
          update: (cm) => mine(cm) && loop.enqueue(String(cm.metadata?.namespace)),
        }),
      ];
      await untilAborted(leading);
      loop.stop();
      for (const u of unsubscribe) u();
    });
  },
});

export { replicaSetControllerPlugin, replicationControllerPlugin, ReplicaReconciler, Expectations, deletionOrder, isActivePod, isPodReady, isPodAvailable, selectorOf, REPLICA_SET, REPLICATION_CONTROLLER, BURST_REPLICAS } from './replicaset.js';
export type { ReplicaKind } from './replicaset.js';

export { namespaceControllerPlugin, NamespaceReconciler, discoverNamespaced, deletionConditions, NAMESPACE_FINALIZER } from './namespace.js';
export { deploymentControllerPlugin, DeploymentReconciler, templateHash, sameTemplate, surgeAndUnavailable, resolveIntOrPercent, REVISION, CHANGE_CAUSE, TEMPLATE_HASH } from './deployment.js';

export { garbageCollectorPlugin, GarbageCollector, OwnerGraph, classifyReferences, decideForDependent, danglingReferences, ownerPhase, ownerStatus, ownerReferencesOf, policyFromFinalizers, FOREGROUND_FINALIZER, ORPHAN_FINALIZER } from './garbage-collector.js';
export type { GarbageCollectorConfig, Classification, DependentAction, OwnerPhase, OwnerStatus, ResourceInfo } from './garbage-collector.js';

export {
  endpointsControllerPlugin,
  EndpointsReconciler,
  endpointSubsets,
  desiredEndpoints,
  truncateSubsets,
  sameSubsets,
  endpointsLabels,
  endpointAddressFor,
  findPort,
  serviceSelector,
  shouldPodBeInEndpoints,
  podChangeAffectsEndpoints,
  TriggerTimeTracker,
  WriteTracker,
  ENDPOINTS_MANAGED_BY_LABEL,
  ENDPOINTS_CONTROLLER_NAME,
  HEADLESS_LABEL,
  LAST_CHANGE_TRIGGER_TIME_ANNOTATION,
  OVER_CAPACITY_ANNOTATION,
  MAX_ENDPOINTS_CAPACITY,
} from './endpoints.js';
export type { EndpointAddress, EndpointPort, EndpointSubset } from './endpoints.js';
export {
  endpointSliceControllerPlugin,
  EndpointSliceReconciler,
  planEndpointSlices,
  podToSliceEndpoint,
  endpointSlicePorts,
  endpointSliceLabels,
  addressTypesForService,
  newEndpointSlice,
  SERVICE_NAME_LABEL,
  SLICE_MANAGED_BY_LABEL,
  SLICE_CONTROLLER_NAME,
  ZONE_LABEL,
  DEFAULT_MAX_ENDPOINTS_PER_SLICE,
} from './endpointslice.js';
export type { AddressType, SliceEndpoint, SlicePort, SlicePlan, SlicePlanOptions } from './endpointslice.js';

export {
  nodeLifecycleControllerPlugin,
  NodeLifecycleController,
  TaintEvictionReconciler,
  TokenBucket,
  toleratesTaint,
  matchingTolerations,
  minTolerationSeconds,
  taintAddedAt,
  evictionDecision,
  computeZoneState,
  zoneEvictionRate,
  planDisruption,
  observeNodeHealth,
  markConditionsUnknown,
  noScheduleTaintsFor,
  reconcileNoScheduleTaints,
  swapTaints,
  zoneKey,
  NODE_LIFECYCLE_DEFAULTS,
  NODE_LIFECYCLE_CONFIG_SCHEMA,
  TAINT_NODE_NOT_READY,
  TAINT_NODE_UNREACHABLE,
  TAINT_NODE_UNSCHEDULABLE,
} from './node-lifecycle.js';
export type { NodeLifecycleConfig, Taint, Toleration, NodeCondition, ZoneState, EvictionDecision, DisruptionPlan, NodeHealth } from './node-lifecycle.js';

export {
  podGcControllerPlugin,
  PodGarbageCollector,
  OrphanQuarantine,
  terminatedPodsToDelete,
  terminatingPodsOnOutOfServiceNodes,
  unscheduledTerminatingPods,
  unknownNodeNames,
  podsOnNodes,
  byEvictionAndCreation,
  isPodTerminated,
  isPodTerminating,
  isPodEvicted,
  isNodeReady,
  nodeHasTaint,
  withPodCondition,
  failedStatus,
  ORPHANED_POD_CONDITION,
  POD_GC_CONFIG_SCHEMA,
  POD_GC_CONTROLLER_ID,
  POD_GC_REASONS,
  TAINT_NODE_OUT_OF_SERVICE,
  DISRUPTION_TARGET_CONDITION,
  DELETION_BY_POD_GC_REASON,
} from './podgc.js';
export type { PodGcConfig, PodGarbageCollectorOptions, PassResult, PodCondition } from './podgc.js';

export {
  disruptionControllerPlugin,
  DisruptionReconciler,
  StalePodDisruptionReconciler,
  ControllerScaleFinder,
  scaledValue,
  budgetSelector,
  podsForBudget,
  expectedScale,
  expectedPodCount,
  buildDisruptedPodMap,
  countHealthyPods,
  disruptionsAllowed,
  setCondition,
  disruptionAllowedCondition,
  desiredBudgetStatus,
  failSafeStatus,
  staleDisruptionWait,
  DISRUPTION_CONFIG_SCHEMA,
  DISRUPTION_CONTROLLER_ID,
  DELETION_TIMEOUT_MS,
  STALE_POD_DISRUPTION_TIMEOUT_MS,
  DISRUPTION_ALLOWED_CONDITION,
  SUFFICIENT_PODS_REASON,
  INSUFFICIENT_PODS_REASON,
  SYNC_FAILED_REASON,
} from './disruption.js';
export type { DisruptionConfig, DisruptionReconcilerOptions, BudgetCounts, BudgetEvents, Condition, ControllerScale, ScaleFinder, IntOrPercent } from './disruption.js';

export {
  statefulSetControllerPlugin,
  StatefulSetReconciler,
  planStatefulSet,
  parseOrdinal,
  newStatefulSetPod,
  persistentVolumeClaimsFor,
  claimOwnersUpToDate,
  desiredClaimOwnerReferences,
  newControllerRevision,
  revisionsToTruncate,
  createsAtCurrentRevision,
  completeRollingUpdate,
  POD_NAME_LABEL,
  POD_INDEX_LABEL,
  CONTROLLER_REVISION_HASH_LABEL,
  STATEFULSET_CONTROLLER_NAME,
} from './statefulset.js';
export type { PlannedAction, PlanInput, StatefulSetPlan, ReplicaCounts } from './statefulset.js';

export {
  daemonSetControllerPlugin,
  DaemonSetReconciler,
  FailedPodBackoff,
  nodeShouldRunDaemonPod,
  podFitsNode,
  nodeSelectorTermMatches,
  daemonPodTolerations,
  addOrUpdateToleration,
  untoleratedTaint,
  replaceNodeNameAffinity,
  targetNodeName,
  newDaemonPod,
  compareDaemonPods,
  groupPodsByNode,
  podsShouldBeOnNode,
  planManage,
  planRollingUpdate,
  findUpdatedPodsOnNode,
  daemonSetCounts,
  daemonSetStatus,
  rollingUpdateBudget,
  daemonSetHash,
  daemonSetRevisionData,
  daemonSetRevisionMatches,
  daemonSetRevisionsToDelete,
  DAEMONSET_CONTROLLER_ID,
  CONTROLLER_REVISION_HASH,
  DAEMON_POD_TOLERATIONS,
} from './daemonset.js';
export type { DaemonSetControllerConfig, DaemonSetCounts, ManagePlan, NodeDecision, NodeSelectorRequirement, NodeSelectorTerm, RollingUpdatePlan } from './daemonset.js';

export {
  csrApprovingControllerPlugin,
  CsrApprover,
  CSR_RECOGNIZERS,
  isNodeClientCert,
  isSelfNodeClientCert,
  approvalReview,
  autoApprovedCondition,
  CSR_APPROVING_CONFIG_SCHEMA,
  CSR_APPROVING_CONTROLLER_ID,
} from './csr-approving.js';
export type { CsrRecognizer, CsrApproverOptions, CsrApprovingConfig } from './csr-approving.js';
export {
  csrSigningControllerPlugin,
  CsrSigner,
  SigningRefused,
  SIGNER_RULES,
  loadSigningAuthority,
  signCertificate,
  certificateTtlMs,
  keyUsagesOf,
  signerFailedCondition,
  signingFiles,
  CSR_SIGNING_CONFIG_SCHEMA,
  CSR_SIGNING_CONTROLLER_ID,
  DEFAULT_SIGNING_DURATION_SECONDS,
  MIN_CERTIFICATE_MS,
  BACKDATE_MS,
  SHORT_CERTIFICATE_MS,
} from './csr-signing.js';
export type { SignerRule, SigningAuthority, SignatureAlgorithm, CsrSignerOptions, CsrSigningConfig } from './csr-signing.js';
export { csrCleanerControllerPlugin, csrCleanupReason, cleanCsrs, CSR_CLEANER_CONFIG_SCHEMA, CSR_CLEANER_CONTROLLER_ID, APPROVED_EXPIRATION_MS, DENIED_EXPIRATION_MS, FAILED_EXPIRATION_MS, PENDING_EXPIRATION_MS } from './csr-cleaner.js';
export type { CsrCleanerConfig } from './csr-cleaner.js';
export {
  parseCsr,
  kubeletClientProblem,
  kubeletServingProblem,
  apiServerClientUsagesProblem,
  approvalState,
  isApproved,
  hasTrueCondition,
  KUBE_APISERVER_CLIENT_SIGNER,
  KUBE_APISERVER_CLIENT_KUBELET_SIGNER,
  KUBELET_SERVING_SIGNER,
} from './csr.js';
export type { Csr, CsrCondition, ParsedCsr } from './csr.js';

export {
  nodeIpamControllerPlugin,
  RangeAllocator,
  CidrSet,
  parseIpv4Cidr,
  formatIpv4Cidr,
  podCIDRsOf,
  nodeIpamConfigProblem,
  NODE_IPAM_CONFIG_SCHEMA,
  NODE_IPAM_CONTROLLER_ID,
  CIDR_ALLOCATOR_COMPONENT,
  CIDR_NOT_AVAILABLE,
  CIDR_ASSIGNMENT_FAILED,
  IPV4_CIDR_PATTERN,
  MAX_CIDR_BITS,
} from './node-ipam.js';
export type { Ipv4Cidr, NodeIpamConfig, NodeIpamConfigProblem, RangeAllocatorOptions } from './node-ipam.js';

export default [serviceAccountControllerPlugin, rootCaPublisherPlugin, replicaSetControllerPlugin, replicationControllerPlugin, deploymentControllerPlugin, namespaceControllerPlugin, garbageCollectorPlugin, endpointsControllerPlugin, endpointSliceControllerPlugin, nodeLifecycleControllerPlugin, podGcControllerPlugin, disruptionControllerPlugin, statefulSetControllerPlugin, daemonSetControllerPlugin, csrApprovingControllerPlugin, csrSigningControllerPlugin, csrCleanerControllerPlugin, nodeIpamControllerPlugin];
