import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import { loadKubeconfig } from '@kubernel/sdk';
import { createCa, issueCertificate } from '../pki/pki.js';
import { createLogger } from '../logging.js';
import { bootstrapNodeCredentials, certificateState, newKeyAndRequest, newRequest, NodeBootstrapError } from './bootstrap.js';

const DAY = 86_400_000;

describe('node bootstrap: which existing certificate is kept', () => {
  let ca: { cert: string; key: string };
  let otherCa: { cert: string; key: string };
  let node: { cert: string; key: string };
  before(async () => {
    ca = await createCa('test-ca', 10);
    otherCa = await createCa('other-ca', 10);
    node = await issueCertificate(ca, { commonName: 'system:node:n1', organizations: ['system:nodes'], usage: 'client', validityDays: 10 });
  });

  it('keeps a valid certificate for the node until the renewal point of its lifetime, then renews, then it has expired', () => {
    const c = new X509Certificate(node.cert);
    const from = Date.parse(c.validFrom);
    const to = Date.parse(c.validTo);
    expect(certificateState(node, 'system:node:n1', ca.cert, 0.8, from + 1000)).to.equal('current');
    expect(certificateState(node, 'system:node:n1', ca.cert, 0.8, from + (to - from) * 0.8 - 1000)).to.equal('current');
    expect(certificateState(node, 'system:node:n1', ca.cert, 0.8, from + (to - from) * 0.8 + 1000)).to.equal('renew');
    expect(certificateState(node, 'system:node:n1', ca.cert, 0.8, to + 1000)).to.equal('expired');
    expect(certificateState(node, 'system:node:n1', ca.cert, 0.8, from - DAY)).to.equal('expired');
  });

  it('replaces a certificate for another node, with a key that is not its own, of another CA, or unreadable', async () => {
    expect(certificateState(node, 'system:node:n2', ca.cert, 0.8)).to.equal('invalid');
    const other = await issueCertificate(ca, { commonName: 'system:node:n1', organizations: ['system:nodes'], usage: 'client', validityDays: 10 });
    expect(certificateState({ cert: node.cert, key: other.key }, 'system:node:n1', ca.cert, 0.8)).to.equal('invalid');
    expect(certificateState(node, 'system:node:n1', otherCa.cert, 0.8)).to.equal('invalid');
    expect(certificateState({ cert: 'garbage', key: node.key }, 'system:node:n1', ca.cert, 0.8)).to.equal('invalid');
    // Without a CA (insecure mode) the issuer is not checked.
    expect(certificateState(node, 'system:node:n1', '', 0.8)).to.equal('current');
  });

  it('makes a P-256 key and a request for system:node:<name> in system:nodes', async () => {
    const { key, csr } = await newRequest('n7');
    expect(key).to.match(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(csr).to.match(/^-----BEGIN CERTIFICATE REQUEST-----\n/);
    const der = Buffer.from(csr.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
    expect(der.includes(Buffer.from('system:node:n7'))).to.equal(true);
    expect(der.includes(Buffer.from('system:nodes'))).to.equal(true);
    const plain = await newKeyAndRequest({ commonName: 'jane' });
    expect(Buffer.from(plain.csr.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64').includes(Buffer.from('system:nodes'))).to.equal(false);
  });
});

describe('node bootstrap: refusals before any request', () => {
  let dir: string;
  const logger = createLogger({ level: 'silent' });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kubernel-bootstrap-spec-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('needs a CA unless told to skip verification', async () => {
    let error: unknown;
    await bootstrapNodeCredentials({ server: 'https://127.0.0.1:1', token: 'abcdef.0123456789abcdef', nodeName: 'n1', dir, logger }).catch((e: unknown) => (error = e));
    expect(error).to.be.instanceOf(NodeBootstrapError);
    expect((error as Error).message).to.contain('no cluster CA');
  });

  it('reuses a current certificate without asking the server, and writes the kubeconfig that uses it', async () => {
    const ca = await createCa('test-ca', 10);
    const node = await issueCertificate(ca, { commonName: 'system:node:n1', organizations: ['system:nodes'], usage: 'client', validityDays: 10 });
    writeFileSync(join(dir, 'kubelet-client.crt'), node.cert);
    writeFileSync(join(dir, 'kubelet-client.key'), node.key);
    const got = await bootstrapNodeCredentials({ server: 'https://127.0.0.1:1', nodeName: 'n1', dir, ca: ca.cert, logger });
    expect([got.reused, got.cert, got.key, got.kubeconfigPath]).to.deep.equal([true, node.cert, node.key, join(dir, 'kubelet.conf')]);
    const connection = await loadKubeconfig(got.kubeconfigPath);
    expect(connection).to.deep.equal({ server: 'https://127.0.0.1:1', ca: ca.cert, cert: node.cert, key: node.key, namespace: 'default' });
    expect(statSync(got.kubeconfigPath).mode & 0o777).to.equal(0o600);
  });

  it('needs a token when there is no usable certificate', async () => {
    const ca = await createCa('test-ca', 10);
    let error: unknown;
    await bootstrapNodeCredentials({ server: 'https://127.0.0.1:1', nodeName: 'n1', dir, ca: ca.cert, logger }).catch((e: unknown) => (error = e));
    expect(error).to.be.instanceOf(NodeBootstrapError);
    expect((error as Error).message).to.contain('no bootstrap token');
  });
});
