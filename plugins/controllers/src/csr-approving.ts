/**
 * The CSR approving controller (Kubernetes' `certificatesigningrequest-approving-controller`,
 * pkg/controller/certificates/approver): approves kubelet client certificate requests whose
 * requester may have them, as a SubjectAccessReview decides.
 *
 * Two recognizers, tried in this order, each with the permission it needs (verb `create` on
 * `certificatesigningrequests/<subresource>` in `certificates.k8s.io`):
 *
 * - `selfnodeclient`: a node renewing its own client certificate (the requester's username is the
 *   request's CN, `system:node:<name>`);
 * - `nodeclient`: a kubelet client certificate request from anyone (a bootstrapping node).
 *
 * Both need the signer `kubernetes.io/kube-apiserver-client-kubelet` and a request that fits
 * Kubernetes' kubelet client rules (O exactly `system:nodes`, CN `system:node:...`, no SANs,
 * usages digital signature + client auth, key encipherment allowed). A request approved,
 * denied or issued already is left alone; one that is recognised but whose requester lacks the
 * permission stays pending (and is looked at again with back-off, in case the policy changes).
 *
 * @module
 */
import {
  Controller,
  definePlugin,
  isNotFound,
  LEADER_ELECTION_SCHEMA,
  runWhileLeading,
  type ApiClient,
  type Informer,
  type LeaderElectionConfig,
  type Logger,
  type ObjectKey,
  type ReconcileResult,
  type Reconciler,
} from '@kubernel/sdk';
import { approvalState, csrPath, CSR_PATH, KUBE_APISERVER_CLIENT_KUBELET_SIGNER, kubeletClientProblem, parseCsr, requestPem, usagesOf, type Csr, type CsrCondition, type ParsedCsr } from './csr.js';

/** The plugin id (Kubernetes' controller name). */
export const CSR_APPROVING_CONTROLLER_ID = 'certificatesigningrequest-approving-controller';

/** One kind of request the approver recognises and the permission its requester needs. */
export interface CsrRecognizer {
  /** The subresource of `certificatesigningrequests` the SubjectAccessReview asks about. */
  readonly permission: 'selfnodeclient' | 'nodeclient';
  readonly recognize: (csr: Csr, request: ParsedCsr) => boolean;
  /** The Approved condition's message. */
  readonly successMessage: string;
}

/** A kubelet client certificate request (Kubernetes' isNodeClientCert). */
export const isNodeClientCert = (csr: Csr, request: ParsedCsr): boolean =>
  csr.spec?.signerName === KUBE_APISERVER_CLIENT_KUBELET_SIGNER && kubeletClientProblem(request, usagesOf(csr)) === undefined;

/** A node's request for its own client certificate (Kubernetes' isSelfNodeClientCert). */
export const isSelfNodeClientCert = (csr: Csr, request: ParsedCsr): boolean => csr.spec?.username === request.commonName && isNodeClientCert(csr, request);

/** Kubernetes' recognizers, in the order they are tried. */
export const CSR_RECOGNIZERS: readonly CsrRecognizer[] = [
  { permission: 'selfnodeclient', recognize: isSelfNodeClientCert, successMessage: 'Auto approving self kubelet client certificate after SubjectAccessReview.' },
  { permission: 'nodeclient', recognize: isNodeClientCert, successMessage: 'Auto approving kubelet client certificate after SubjectAccessReview.' },
];

/** The SubjectAccessReview that asks whether the requester of `csr` holds `permission`. */
export function approvalReview(csr: Csr, permission: CsrRecognizer['permission']): Record<string, unknown> {
  const spec = csr.spec ?? {};
  return {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    spec: {
      user: spec.username ?? '',
      ...(spec.uid ? { uid: spec.uid } : {}),
      groups: Array.isArray(spec.groups) ? spec.groups : [],
      ...(spec.extra ? { extra: spec.extra } : {}),
      resourceAttributes: { group: 'certificates.k8s.io', resource: 'certificatesigningrequests', verb: 'create', subresource: permission, version: '*' },
    },
  };
}

/** The condition the approver appends. */
export const autoApprovedCondition = (message: string): CsrCondition => ({ type: 'Approved', status: 'True', reason: 'AutoApproved', message });

/** Options of a {@link CsrApprover}. */
export interface CsrApproverOptions {
  readonly api: Pick<ApiClient, 'create' | 'update'>;
  readonly csrs: Pick<Informer<Csr>, 'get'>;
  readonly logger: Logger;
  readonly recognizers?: readonly CsrRecognizer[];
}

/** The approver's reconciler, one CSR at a time. */
export class CsrApprover implements Reconciler {
  private readonly recognizers: readonly CsrRecognizer[];

  constructor(private readonly options: CsrApproverOptions) {
    this.recognizers = options.recognizers ?? CSR_RECOGNIZERS;
  }

  async reconcile(key: ObjectKey): Promise<ReconcileResult | void> {
    const csr = this.options.csrs.get(key.name);
    if (!csr || csr.status?.certificate) return;
    const { approved, denied } = approvalState(csr);
    if (approved || denied) return;
    let request: ParsedCsr;
    try {
      request = parseCsr(requestPem(csr));
    } catch (err) {
      this.options.logger.warn({ csr: key.name, err: (err as Error).message }, 'unable to parse certificate signing request');
      return;
    }
    const tried: string[] = [];
    for (const r of this.recognizers) {
      if (!r.recognize(csr, request)) continue;
      tried.push(r.permission);
      const review = await this.options.api.create<{ status?: { allowed?: boolean } }>('/apis/authorization.k8s.io/v1/subjectaccessreviews', approvalReview(csr, r.permission));
      if (!review.status?.allowed) continue;
      const conditions = [...((csr.status?.conditions as CsrCondition[] | undefined) ?? []), autoApprovedCondition(r.successMessage)];
      try {
        await this.options.api.update(`${csrPath(key.name)}/approval`, { ...csr, status: { ...(csr.status ?? {}), conditions } });
      } catch (err) {
        if (isNotFound(err)) return;
        throw err;
      }
      this.options.logger.info({ csr: key.name, requestor: csr.spec?.username, recognizer: r.permission }, 'approved certificate signing request');
      return;
    }
    if (tried.length > 0) {
      this.options.logger.info({ csr: key.name, requestor: csr.spec?.username, tried }, 'recognized the certificate signing request but the subject access review did not allow it');
      return { requeue: true };
    }
  }
}

/** Configuration of the approving controller. */
export interface CsrApprovingConfig {
  readonly workers: number;
  readonly leaderElection: LeaderElectionConfig;
}

/** The JSON Schema of {@link CsrApprovingConfig}. */
export const CSR_APPROVING_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    workers: { type: 'integer', minimum: 1, maximum: 64, default: 5, description: 'Requests handled at once (Kubernetes runs 5).' },
    leaderElection: LEADER_ELECTION_SCHEMA,
  },
} as const;

/** The CSR approving controller plugin. */
export const csrApprovingControllerPlugin = definePlugin({
  id: CSR_APPROVING_CONTROLLER_ID,
  kind: 'controller',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'CSR approving controller: approves kubelet client certificate requests (bootstrapping nodes, nodes renewing their own) after a SubjectAccessReview of the requester.',
  configSchema: CSR_APPROVING_CONFIG_SCHEMA,
  async start(handle, config: CsrApprovingConfig, signal) {
    const csrs = handle.api.informer<Csr>(CSR_PATH);
    csrs.run();
    await csrs.waitForSync(signal);
    handle.ready();
    await runWhileLeading(handle.api, config.leaderElection, handle.logger, signal, async (leading) => {
      const controller = new Controller({ name: 'csrapproving', reconciler: new CsrApprover({ api: handle.api, csrs, logger: handle.logger }), workers: config.workers, logger: handle.logger, metrics: handle.metrics });
      controller.watch(csrs);
      await controller.run(leading);
    });
  },
});
