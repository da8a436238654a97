/**
 * certificates.k8s.io/v1 CertificateSigningRequest, with Kubernetes' strategy: the requester's
 * identity (username, uid, groups, extra) is recorded at create and a create never carries a
 * status; the main endpoint changes only metadata; `status` writes the certificate and conditions
 * other than Approved/Denied; `approval` writes only the Approved/Denied conditions. Condition
 * timestamps are filled in by the server. Validation follows Kubernetes' (request is a PEM
 * `CERTIFICATE REQUEST`, signer name is `domain/path`, usages known and unique, expirationSeconds
 * at least 600, Approved and Denied exclusive and never removed, the issued certificate immutable).
 *
 * @module
 */
import { X509Certificate } from 'node:crypto';
import 'reflect-metadata'; // @peculiar/x509 (tsyringe) needs it loaded first
import * as x509 from '@peculiar/x509';
import type { UserInfo } from '@kubernel/sdk';
import type { Obj, ResourceDef } from '../resource.js';
import type { StatusCause } from '../status.js';
import { AGE, age, col, humanDuration } from './columns.js';
import { duplicate, forbiddenField, invalidValue, notSupported, required, validateMeta } from './rules.js';

/** Every key usage certificates.k8s.io/v1 knows (KeyUsage). */
export const KEY_USAGES = [
  'signing', 'digital signature', 'content commitment', 'key encipherment', 'key agreement', 'data encipherment', 'cert sign', 'crl sign', 'encipher only', 'decipher only',
  'any', 'server auth', 'client auth', 'code signing', 'email protection', 's/mime', 'ipsec end system', 'ipsec tunnel', 'ipsec user', 'timestamping', 'ocsp signing', 'microsoft sgc', 'netscape sgc',
] as const;

const APPROVAL_TYPES = new Set(['Approved', 'Denied']);
const SIGNER_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+\/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?(\/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)*$/;
const nowRfc3339 = (): string => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
const conditionsOf = (o: Obj): Obj[] => (Array.isArray(o.status?.conditions) ? (o.status.conditions as Obj[]) : []);

/** Why `pem` is not a certificate request Kubernetes accepts (its ParseCSR), or undefined. */
export function csrProblem(pem: string): string | undefined {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(pem);
  if (!m || m[1] !== 'CERTIFICATE REQUEST') return 'PEM block type must be CERTIFICATE REQUEST';
  try {
    new x509.Pkcs10CertificateRequest(Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64'));
    return undefined;
  } catch (err) {
    return `x509: malformed certificate request: ${(err as Error).message}`;
  }
}

/** Why `pem` is not one or more PEM `CERTIFICATE` blocks (status.certificate), or undefined. */
function certificateProblem(pem: string): string | undefined {
  const blocks = [...pem.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g)];
  if (blocks.length === 0) return 'must contain at least one CERTIFICATE PEM block';
  for (const b of blocks) {
    if (b[1] !== 'CERTIFICATE') return `only CERTIFICATE PEM blocks are allowed, found "${b[1]}"`;
    try {
      new X509Certificate(b[0]);
    } catch (err) {
      return `invalid certificate: ${(err as Error).message}`;
    }
  }
  return undefined;
}

const decoded = (b64: unknown): string => (typeof b64 === 'string' ? Buffer.from(b64, 'base64').toString('utf8') : '');

/** Kubernetes' validation of a CSR (create and every update). */
export function validateCsr(o: Obj): StatusCause[] {
  const out = validateMeta(o, 'subdomain');
  const spec = (o.spec ?? {}) as Obj;
  if (!spec.request) out.push(required('spec.request'));
  else {
    const problem = csrProblem(decoded(spec.request));
    if (problem) out.push(invalidValue('spec.request', '<certificate request>', problem));
  }
  if (!spec.signerName) out.push(required('spec.signerName'));
  else if (typeof spec.signerName !== 'string' || spec.signerName.length > 571 || !SIGNER_NAME.test(spec.signerName)) {
    out.push(invalidValue('spec.signerName', spec.signerName, "must be a fully qualified domain and path of the form 'example.com/signer-name'"));
  }
  const usages = Array.isArray(spec.usages) ? (spec.usages as unknown[]) : [];
  if (usages.length === 0) out.push(required('spec.usages', 'usages must be provided'));
  const seen = new Set<unknown>();
  usages.forEach((u, i) => {
    if (!(KEY_USAGES as readonly unknown[]).includes(u)) out.push(notSupported(`spec.usages[${i}]`, u, KEY_USAGES));
    else if (seen.has(u)) out.push(duplicate(`spec.usages[${i}]`, u));
    seen.add(u);
  });
  if (spec.expirationSeconds !== undefined && !(Number(spec.expirationSeconds) >= 600)) {
    out.push(invalidValue('spec.expirationSeconds', spec.expirationSeconds, 'may not specify a duration less than 600 seconds (10 minutes)'));
  }
  const types = new Set<string>();
  let approved = false;
  let denied = false;
  conditionsOf(o).forEach((c, i) => {
    const at = `status.conditions[${i}]`;
    if (!c.type) out.push(required(`${at}.type`));
    else if (types.has(c.type)) out.push(duplicate(`${at}.type`, c.type));
    types.add(c.type);
    if (APPROVAL_TYPES.has(c.type)) {
      if (c.type === 'Approved') approved = true;
      else denied = true;
      if (c.status !== 'True') out.push(notSupported(`${at}.status`, c.status, ['True']));
    } else if (!['True', 'False', 'Unknown'].includes(c.status)) out.push(notSupported(`${at}.status`, c.status, ['False', 'True', 'Unknown']));
  });
  if (approved && denied) out.push(invalidValue('status.conditions', conditionsOf(o).map((c) => c.type), 'Approved and Denied conditions are mutually exclusive'));
  if (o.status?.certificate) {
    const problem = certificateProblem(decoded(o.status.certificate));
    if (problem) out.push(invalidValue('status.certificate', '<certificate data>', problem));
  }
  return out;
}

/** Kubernetes' update rules: approval conditions are never removed; an issued certificate never changes. */
export function validateCsrUpdate(o: Obj, old: Obj): StatusCause[] {
  const out: StatusCause[] = [];
  const now = new Set(conditionsOf(o).map((c) => c.type));
  for (const c of conditionsOf(old)) {
    if (['Approved', 'Denied', 'Failed'].includes(c.type) && !now.has(c.type)) out.push(forbiddenField('status.conditions', `updates may not remove a condition of type "${c.type}"`));
  }
  const before = old.status?.certificate;
  if (before && o.status?.certificate !== before) out.push(forbiddenField('status.certificate', 'updates may not modify existing certificate content'));
  return out;
}

/** Sets the server-owned fields of a new CSR (Kubernetes' csrStrategy.PrepareForCreate). */
export function prepareCsrForCreate(o: Obj, user: UserInfo): void {
  const spec = (o.spec ??= {}) as Obj;
  for (const k of ['username', 'uid', 'groups', 'extra']) delete spec[k];
  spec.username = user.username;
  if (user.uid) spec.uid = user.uid;
  if (user.groups.length > 0) spec.groups = [...user.groups];
  if (user.extra && Object.keys(user.extra).length > 0) spec.extra = structuredClone(user.extra);
  // Users cannot create pre-approved (or pre-signed) requests.
  delete o.status;
}

/**
 * What an update of `subresource` may change (Kubernetes' PrepareForUpdate of the CSR's main,
 * status and approval strategies), then the condition timestamps the server fills in.
 */
export function prepareCsrForUpdate(o: Obj, old: Obj, subresource: string): void {
  const oldConditions = conditionsOf(old);
  if (subresource === '') {
    o.spec = structuredClone(old.spec);
    if (old.status === undefined) delete o.status;
    else o.status = structuredClone(old.status);
    return;
  }
  if (subresource === 'approval' || subresource === 'status') {
    const incoming = conditionsOf(o);
    const fromRequest = incoming.filter((c) => APPROVAL_TYPES.has(c.type) === (subresource === 'approval'));
    const kept = oldConditions.filter((c) => APPROVAL_TYPES.has(c.type) !== (subresource === 'approval'));
    const status: Obj = subresource === 'approval' ? { ...(structuredClone(old.status) ?? {}) } : { ...(o.status ?? {}) };
    // The kept conditions first: approval comes before what a signer reports, and vice versa.
    const conditions = [...kept.map((c) => structuredClone(c)), ...fromRequest];
    if (conditions.length > 0) status.conditions = conditions;
    else delete status.conditions;
    for (const k of Object.keys(o)) delete o[k];
    Object.assign(o, structuredClone(old));
    if (Object.keys(status).length > 0) o.status = status;
    else delete o.status;
  }
  const now = nowRfc3339();
  for (const c of conditionsOf(o)) {
    c.status ??= 'True';
    c.lastUpdateTime ??= now;
    if (!c.lastTransitionTime) {
      const same = oldConditions.find((x) => x.type === c.type && x.status === c.status && x.lastTransitionTime);
      c.lastTransitionTime = same?.lastTransitionTime ?? now;
    }
  }
}

/** kubectl's CONDITION cell (`Approved,Issued`, `Pending`, `Denied`, `...,Failed`). */
export function csrCondition(o: Obj): string {
  const types = new Set(conditionsOf(o).map((c) => c.type));
  let s = types.has('Denied') ? 'Denied' : types.has('Approved') ? 'Approved' : 'Pending';
  if (types.has('Failed')) s += ',Failed';
  if (o.status?.certificate) s += ',Issued';
  return s;
}

/** The certificates.k8s.io resources. */
export const CERTIFICATES: ResourceDef[] = [
  {
    group: 'certificates.k8s.io',
    version: 'v1',
    kind: 'CertificateSigningRequest',
    plural: 'certificatesigningrequests',
    singular: 'certificatesigningrequest',
    namespaced: false,
    shortNames: ['csr'],
    definition: 'io.k8s.api.certificates.v1.CertificateSigningRequest',
    statusSubresource: true,
    subresources: ['approval'],
    defaults: (o) => {
      for (const c of conditionsOf(o)) if (typeof c === 'object' && c !== null) c.status ||= 'True';
    },
    prepareForCreate: prepareCsrForCreate,
    prepareForUpdate: prepareCsrForUpdate,
    validate: validateCsr,
    validateUpdate: validateCsrUpdate,
    fields: { 'spec.signerName': (o) => String(o.spec?.signerName ?? '') },
    columns: [AGE, col('SignerName', 'The name of the signer'), col('Requestor', 'The user that created the request'), col('RequestedDuration', 'The requested duration'), col('Condition', 'The state of the request')],
    row: (o) => [age(o), o.spec?.signerName || '<none>', o.spec?.username ?? '', o.spec?.expirationSeconds !== undefined ? humanDuration(Number(o.spec.expirationSeconds) * 1000) : '<none>', csrCondition(o)],
  },
];
