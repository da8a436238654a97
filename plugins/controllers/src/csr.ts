/**
 * What the certificate controllers share about CertificateSigningRequests (certificates.k8s.io/v1):
 * the well-known signer names, the parsed PKCS#10 request, the request's conditions, and
 * Kubernetes' rules for kubelet client and serving requests (`pkg/apis/certificates/helpers.go`).
 *
 * @module
 */
import { webcrypto } from 'node:crypto';
import 'reflect-metadata'; // @peculiar/x509 (tsyringe) needs it loaded first
import * as x509 from '@peculiar/x509';
import type { KubeObject } from '@kubernel/sdk';
import type { Fields } from './util.js';

x509.cryptoProvider.set(webcrypto as never);

/** Client certificates for kube-apiserver, never auto-approved. */
export const KUBE_APISERVER_CLIENT_SIGNER = 'kubernetes.io/kube-apiserver-client';
/** Client certificates kubelets use for kube-apiserver; auto-approved for nodes. */
export const KUBE_APISERVER_CLIENT_KUBELET_SIGNER = 'kubernetes.io/kube-apiserver-client-kubelet';
/** Serving certificates of kubelets; never auto-approved. */
export const KUBELET_SERVING_SIGNER = 'kubernetes.io/kubelet-serving';

/** The API path of the CSR collection. */
export const CSR_PATH = '/apis/certificates.k8s.io/v1/certificatesigningrequests';
/** The API path of one CSR. */
export const csrPath = (name: string): string => `${CSR_PATH}/${encodeURIComponent(name)}`;

/** One condition of a CSR's status. */
export interface CsrCondition {
  readonly type: string;
  readonly status: string;
  readonly reason?: string;
  readonly message?: string;
  readonly lastUpdateTime?: string;
  readonly lastTransitionTime?: string;
}

/** A CertificateSigningRequest as the controllers read it. */
export type Csr = KubeObject & { spec?: Fields; status?: Fields };

/** The request's conditions. */
export const csrConditions = (csr: Csr): CsrCondition[] => (Array.isArray(csr.status?.conditions) ? (csr.status!.conditions as CsrCondition[]) : []);

/** True when the request has a condition of `type` with status True (Approved and Denied are True by definition). */
export const hasTrueCondition = (csr: Csr, type: string): boolean => csrConditions(csr).some((c) => c.type === type && (c.status ?? 'True') === 'True');

/** Whether the request is approved, denied (or neither), as Kubernetes' GetCertApprovalCondition. */
export function approvalState(csr: Csr): { approved: boolean; denied: boolean } {
  let approved = false;
  let denied = false;
  for (const c of csrConditions(csr)) {
    if (c.type === 'Approved') approved = true;
    if (c.type === 'Denied') denied = true;
  }
  return { approved, denied };
}

/** True when the request is approved and not denied (Kubernetes' IsCertificateRequestApproved). */
export const isApproved = (csr: Csr): boolean => {
  const s = approvalState(csr);
  return s.approved && !s.denied;
};

/** The PEM text of the request's `spec.request` (base64 in JSON). */
export const requestPem = (csr: Csr): string => Buffer.from(String(csr.spec?.request ?? ''), 'base64').toString('utf8');

/** A PKCS#10 request, parsed. */
export interface ParsedCsr {
  readonly request: x509.Pkcs10CertificateRequest;
  readonly commonName: string;
  readonly organizations: readonly string[];
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly emailAddresses: readonly string[];
  readonly uris: readonly string[];
  /** The subjectAltName extension the request asks for, if any. */
  readonly subjectAltName?: x509.SubjectAlternativeNameExtension;
}

const SAN_OID = '2.5.29.17';

/**
 * Parses a PEM `CERTIFICATE REQUEST` (Kubernetes' ParseCSR).
 * @throws Error when the PEM block is of another type or the request is malformed.
 */
export function parseCsr(pem: string): ParsedCsr {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(pem);
  if (!m || m[1] !== 'CERTIFICATE REQUEST') throw new Error('PEM block type must be CERTIFICATE REQUEST');
  const request = new x509.Pkcs10CertificateRequest(Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64'));
  const raw = request.extensions.find((e) => e.type === SAN_OID);
  const subjectAltName = raw ? new x509.SubjectAlternativeNameExtension(raw.rawData) : undefined;
  const names = subjectAltName?.names.items ?? [];
  const of = (type: string): string[] => names.filter((n) => n.type === type).map((n) => n.value);
  return {
    request,
    commonName: request.subjectName.getField('CN')[0] ?? '',
    organizations: request.subjectName.getField('O'),
    dnsNames: of('dns'),
    ipAddresses: of('ip'),
    emailAddresses: of('email'),
    uris: of('url'),
    ...(subjectAltName ? { subjectAltName } : {}),
  };
}

const sameSet = (a: ReadonlySet<string>, b: readonly string[]): boolean => a.size === new Set(b).size && b.every((x) => a.has(x));
const KUBELET_CLIENT_USAGES = new Set(['digital signature', 'key encipherment', 'client auth']);
const KUBELET_CLIENT_USAGES_NO_RSA = new Set(['digital signature', 'client auth']);
const KUBELET_SERVING_USAGES = new Set(['digital signature', 'key encipherment', 'server auth']);
const KUBELET_SERVING_USAGES_NO_RSA = new Set(['digital signature', 'server auth']);
const onlySystemNodes = (req: ParsedCsr): boolean => req.organizations.length === 1 && req.organizations[0] === 'system:nodes';

/**
 * Why a request is not a kubelet client certificate request (Kubernetes' ValidateKubeletClientCSR):
 * O exactly `system:nodes`, no SANs, CN `system:node:<name>`, usages exactly digital signature and
 * client auth (key encipherment allowed). Undefined when it is one.
 */
export function kubeletClientProblem(req: ParsedCsr, usages: readonly string[]): string | undefined {
  if (!onlySystemNodes(req)) return 'subject organization is not system:nodes';
  if (req.dnsNames.length > 0) return 'DNS subjectAltNames are not allowed';
  if (req.emailAddresses.length > 0) return 'Email subjectAltNames are not allowed';
  if (req.ipAddresses.length > 0) return 'IP subjectAltNames are not allowed';
  if (req.uris.length > 0) return 'URI subjectAltNames are not allowed';
  if (!req.commonName.startsWith('system:node:')) return 'subject common name does not begin with system:node:';
  if (!sameSet(KUBELET_CLIENT_USAGES, usages) && !sameSet(KUBELET_CLIENT_USAGES_NO_RSA, usages)) return 'usages did not match [client auth digital signature key encipherment]';
  return undefined;
}

/**
 * Why a request is not a kubelet serving certificate request (Kubernetes' ValidateKubeletServingCSR):
 * O exactly `system:nodes`, at least one DNS or IP SAN, no email or URI SANs, usages exactly
 * digital signature and server auth (key encipherment allowed), CN `system:node:<name>`.
 */
export function kubeletServingProblem(req: ParsedCsr, usages: readonly string[]): string | undefined {
  if (!onlySystemNodes(req)) return 'subject organization is not system:nodes';
  if (req.dnsNames.length === 0 && req.ipAddresses.length === 0) return 'DNS or IP subjectAltName is required';
  if (req.emailAddresses.length > 0) return 'Email subjectAltNames are not allowed';
  if (req.uris.length > 0) return 'URI subjectAltNames are not allowed';
  if (!sameSet(KUBELET_SERVING_USAGES, usages) && !sameSet(KUBELET_SERVING_USAGES_NO_RSA, usages)) return 'usages did not match [digital signature key encipherment server auth]';
  if (!req.commonName.startsWith('system:node:')) return 'subject common name does not begin with system:node:';
  return undefined;
}

/** Why usages do not fit a kube-apiserver client certificate: client auth required; digital signature and key encipherment optional. */
export function apiServerClientUsagesProblem(usages: readonly string[]): string | undefined {
  for (const u of usages) if (!['digital signature', 'key encipherment', 'client auth'].includes(u)) return `invalid usage for client certificate: ${u}`;
  if (!usages.includes('client auth')) return 'missing required usage for client certificate: client auth';
  return undefined;
}

/** The request's usages (spec.usages). */
export const usagesOf = (csr: Csr): string[] => (Array.isArray(csr.spec?.usages) ? (csr.spec!.usages as unknown[]).map(String) : []);
