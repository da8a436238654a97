import { expect } from 'chai';
import type { Obj } from '../resource.js';
import { newKeyAndRequest } from '../../agent/bootstrap.js';
import { csrCondition, prepareCsrForCreate, prepareCsrForUpdate, validateCsr, validateCsrUpdate } from './certificates.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const fields = (causes: Array<{ field?: string; message: string }>): string[] => causes.map((c) => `${c.field}: ${c.message}`);

describe('CertificateSigningRequest strategy and validation (certificates.k8s.io/v1)', () => {
  let request: string;
  const csr = (over: Obj = {}): Obj => ({
    apiVersion: 'certificates.k8s.io/v1',
    kind: 'CertificateSigningRequest',
    metadata: { name: 'r1' },
    spec: { request: b64(request), signerName: 'kubernetes.io/kube-apiserver-client', usages: ['client auth'], ...(over.spec ?? {}) },
    ...(over.status ? { status: over.status } : {}),
  });
  before(async () => {
    request = (await newKeyAndRequest({ commonName: 'jane' })).csr;
  });

  it('accepts a well-formed request', () => {
    expect(validateCsr(csr())).to.deep.equal([]);
  });

  it('names every bad field as Kubernetes does', () => {
    const bad = csr({ spec: { request: b64('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), signerName: 'no-slash', usages: ['client auth', 'client auth', 'bogus'], expirationSeconds: 599 } });
    expect(fields(validateCsr(bad))).to.deep.equal([
      'spec.request: Invalid value: "<certificate request>": PEM block type must be CERTIFICATE REQUEST',
      'spec.signerName: Invalid value: "no-slash": must be a fully qualified domain and path of the form \'example.com/signer-name\'',
      'spec.usages[1]: Duplicate value: "client auth"',
      `spec.usages[2]: Unsupported value: "bogus": supported values: ${['signing', 'digital signature', 'content commitment', 'key encipherment', 'key agreement', 'data encipherment', 'cert sign', 'crl sign', 'encipher only', 'decipher only', 'any', 'server auth', 'client auth', 'code signing', 'email protection', 's/mime', 'ipsec end system', 'ipsec tunnel', 'ipsec user', 'timestamping', 'ocsp signing', 'microsoft sgc', 'netscape sgc'].map((u) => `"${u}"`).join(', ')}`,
      'spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 600 seconds (10 minutes)',
    ]);
    expect(fields(validateCsr(csr({ spec: { usages: [] } })))).to.deep.equal(['spec.usages: Required value: usages must be provided']);
    expect(fields(validateCsr(csr({ status: { conditions: [{ type: 'Approved', status: 'True' }, { type: 'Denied', status: 'True' }] } })))).to.deep.equal(['status.conditions: Invalid value: ["Approved","Denied"]: Approved and Denied conditions are mutually exclusive']);
    expect(fields(validateCsr(csr({ status: { conditions: [{ type: 'Approved', status: 'False' }] } })))).to.deep.equal(['status.conditions[0].status: Unsupported value: "False": supported values: "True"']);
  });

  it('records the requester at create and drops any status', () => {
    const o = csr({ spec: { username: 'forged', groups: ['system:masters'] }, status: { conditions: [{ type: 'Approved', status: 'True' }], certificate: 'x' } });
    prepareCsrForCreate(o, { username: 'system:bootstrap:abc123', uid: 'u1', groups: ['system:bootstrappers', 'system:authenticated'], extra: { a: ['b'] } });
    expect([o.spec.username, o.spec.uid, o.spec.groups, o.spec.extra, o.status]).to.deep.equal(['system:bootstrap:abc123', 'u1', ['system:bootstrappers', 'system:authenticated'], { a: ['b'] }, undefined]);
  });

  it('lets each endpoint change only its part, filling in condition times', () => {
    const old = csr({ status: { conditions: [{ type: 'Approved', status: 'True', reason: 'A', lastUpdateTime: '2026-01-01T00:00:00Z', lastTransitionTime: '2026-01-01T00:00:00Z' }] } });
    old.spec.username = 'jane';
    // The object itself: metadata only.
    const main = { ...structuredClone(old), spec: { ...old.spec, username: 'x' }, status: {} };
    prepareCsrForUpdate(main, old, '');
    expect([main.spec.username, main.status]).to.deep.equal(['jane', old.status]);
    // status: the certificate and non-approval conditions; Approved stays as it was.
    const status = structuredClone(old);
    status.status = { certificate: 'Y2VydA==', conditions: [{ type: 'Failed', reason: 'F' }] };
    prepareCsrForUpdate(status, old, 'status');
    expect(status.status.certificate).to.equal('Y2VydA==');
    expect(status.status.conditions.map((c: Obj) => [c.type, c.status, c.reason])).to.deep.equal([['Approved', 'True', 'A'], ['Failed', 'True', 'F']]);
    expect(status.status.conditions[1].lastUpdateTime).to.match(/Z$/);
    // approval: only Approved/Denied; the certificate cannot be set through it.
    const approval = structuredClone(old);
    approval.status = { certificate: 'Zm9yZ2Vk', conditions: [{ type: 'Denied', status: 'True', reason: 'D' }] };
    prepareCsrForUpdate(approval, old, 'approval');
    expect(approval.status.certificate).to.equal(undefined);
    expect(approval.status.conditions.map((c: Obj) => c.type)).to.deep.equal(['Denied']);
    expect(fields(validateCsrUpdate(approval, old))).to.deep.equal(['status.conditions: Forbidden: updates may not remove a condition of type "Approved"']);
    const issued = { ...structuredClone(old), status: { ...old.status, certificate: 'YQ==' } };
    expect(fields(validateCsrUpdate({ ...structuredClone(issued), status: { ...issued.status, certificate: 'Yg==' } }, issued))).to.deep.equal(['status.certificate: Forbidden: updates may not modify existing certificate content']);
  });

  it('prints the CONDITION column as kubectl does', () => {
    expect(csrCondition(csr())).to.equal('Pending');
    expect(csrCondition(csr({ status: { conditions: [{ type: 'Approved' }], certificate: 'x' } }))).to.equal('Approved,Issued');
    expect(csrCondition(csr({ status: { conditions: [{ type: 'Approved' }, { type: 'Failed' }] } }))).to.equal('Approved,Failed');
    expect(csrCondition(csr({ status: { conditions: [{ type: 'Denied' }] } }))).to.equal('Denied');
  });
});
