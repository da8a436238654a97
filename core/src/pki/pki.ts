/**
 * The cluster's PKI, as `kubeadm init phase certs` lays it out: a cluster CA, the API server's
 * serving certificate (SANs: localhost, the `kubernetes` Service names and IP, the node's addresses
 * and any extras), an admin client certificate (CN `kubernetes-admin`, O `system:masters`) and the
 * service-account signing key pair. Keys are ECDSA P-256, written with mode 0600; existing files
 * are reused, and a serving certificate missing a wanted SAN is re-issued from the same CA.
 */
import 'reflect-metadata';
import { webcrypto, X509Certificate, createPrivateKey, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile, chmod } from 'node:fs/promises';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as never);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

/** A certificate and its private key, PEM. */
export interface KeyPair {
  readonly cert: string;
  readonly key: string;
}

/** What {@link ensurePki} returns. */
export interface ClusterPki {
  readonly dir: string;
  readonly ca: KeyPair;
  readonly serving: KeyPair;
  readonly admin: KeyPair;
  /**
   * The API server's client certificate for node agents (kubeadm's `apiserver-kubelet-client`:
   * CN `kube-apiserver-kubelet-client`, O `system:masters`).
   */
  readonly kubeletClient: KeyPair;
  /** The service-account token signing key (PKCS#8 PEM) and its public key (SPKI PEM). */
  readonly serviceAccount: { readonly key: string; readonly publicKey: string };
}

/** Options of {@link ensurePki}. */
export interface PkiOptions {
  /** Extra SANs for the serving certificate: DNS names or IP addresses. */
  readonly extraSans?: readonly string[];
  /** The `kubernetes` Service's ClusterIP (the first address of the service CIDR). */
  readonly serviceIp?: string;
  /** The address the API server advertises. */
  readonly advertiseAddress?: string;
  /** Serving and client certificates' lifetime in days (default 365); the CA gets ten times that. */
  readonly validityDays?: number;
}

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

async function exportKey(key: webcrypto.CryptoKey): Promise<string> {
  return pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', key));
}

async function importKey(text: string): Promise<webcrypto.CryptoKey> {
  const der = createPrivateKey(text).export({ format: 'der', type: 'pkcs8' });
  return (await webcrypto.subtle.importKey('pkcs8', der, ALG, true, ['sign'])) ;
}

async function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']));
}

const serial = (): string => randomBytes(16).toString('hex').replace(/^[89a-f]/, '1');

/** An RDN value escaped for the distinguished-name syntax. */
const rdn = (v: string): string => v.replace(/([,+"\\<>;=])/g, '\\$1');

/** Creates a self-signed CA named `commonName`. */
export async function createCa(commonName: string, validityDays: number): Promise<KeyPair> {
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${rdn(commonName)}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + validityDays * DAY),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem') + '\n', key: await exportKey(keys.privateKey) };
}

/** What a certificate issued by {@link issueCertificate} is for. */
export interface CertificateRequest {
  readonly commonName: string;
  /** Organization values (Kubernetes groups, for client certificates). */
  readonly organizations?: readonly string[];
  readonly usage: 'server' | 'client';
  /** DNS names and IP addresses (server certificates). */
  readonly sans?: readonly string[];
  readonly validityDays: number;
}

/** Issues a certificate signed by `ca`, with a fresh key. */
export async function issueCertificate(ca: KeyPair, request: CertificateRequest): Promise<KeyPair> {
  const caCert = new x509.X509Certificate(ca.cert);
  const caKey = await importKey(ca.key);
  const keys = await generateKeys();
  const name = [`CN=${rdn(request.commonName)}`, ...(request.organizations ?? []).map((o) => `O=${rdn(o)}`)].join(', ');
  const sans = request.sans ?? [];
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: name,
    issuer: caCert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + request.validityDays * DAY),
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([request.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
      ...(sans.length > 0 ? [new x509.SubjectAlternativeNameExtension(sans.map((s) => (isIP(s) ? { type: 'ip' as const, value: s } : { type: 'dns' as const, value: s })))] : []),
    ],
  });
  return { cert: cert.toString('pem') + '\n', key: await exportKey(keys.privateKey) };
}

/** The DNS names and addresses the serving certificate must cover. */
export function servingSans(options: PkiOptions): string[] {
  const sans = new Set(['localhost', 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local', '127.0.0.1', '::1']);
  const host = hostname();
  if (host) sans.add(host.toLowerCase());
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (!a.internal) sans.add(a.address.replace(/%.*$/, ''));
  if (options.serviceIp) sans.add(options.serviceIp);
  if (options.advertiseAddress) sans.add(options.advertiseAddress);
  for (const s of options.extraSans ?? []) if (s.trim()) sans.add(s.trim());
  return [...sans];
}

/** The DNS and IP SANs a PEM certificate carries. */
function sansOf(certPem: string): Set<string> {
  const text = new X509Certificate(certPem).subjectAltName ?? '';
  const out = new Set<string>();
  for (const part of text.split(', ')) {
    const m = /^(DNS|IP Address):(.*)$/.exec(part);
    if (m) out.add(m[2]!.toLowerCase());
  }
  return out;
}

async function readPair(dir: string, name: string): Promise<KeyPair | undefined> {
  try {
    return { cert: await readFile(join(dir, `${name}.crt`), 'utf8'), key: await readFile(join(dir, `${name}.key`), 'utf8') };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function writePair(dir: string, name: string, pair: KeyPair): Promise<void> {
  await writeFile(join(dir, `${name}.crt`), pair.cert, { mode: 0o644 });
  await writeFile(join(dir, `${name}.key`), pair.key, { mode: 0o600 });
  await chmod(join(dir, `${name}.key`), 0o600);
}

/** True when `cert` expires within a tenth of its lifetime or was not issued by `ca`. */
function stale(cert: string, ca: string): boolean {
  const c = new X509Certificate(cert);
  const from = Date.parse(c.validFrom);
  const to = Date.parse(c.validTo);
  return Date.now() > to - (to - from) / 10 || !c.checkIssued(new X509Certificate(ca));
}

/**
 * Loads the PKI under `dir` (`<data-dir>/pki`), creating what is missing: ca.crt/key,
 * apiserver.crt/key, admin.crt/key, apiserver-kubelet-client.crt/key, sa.key/sa.pub.
 */
export async function ensurePki(dir: string, options: PkiOptions = {}): Promise<ClusterPki> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const days = options.validityDays ?? 365;
  let ca = await readPair(dir, 'ca');
  if (!ca) {
    ca = await createCa('kubernetes', days * 10);
    await writePair(dir, 'ca', ca);
  }
  const wanted = servingSans(options);
  let serving = await readPair(dir, 'apiserver');
  if (!serving || stale(serving.cert, ca.cert) || wanted.some((s) => !coveredBy(sansOf(serving!.cert), s))) {
    serving = await issueCertificate(ca, { commonName: 'kube-apiserver', usage: 'server', sans: wanted, validityDays: days });
    await writePair(dir, 'apiserver', serving);
  }
  let admin = await readPair(dir, 'admin');
  if (!admin || stale(admin.cert, ca.cert)) {
    admin = await issueCertificate(ca, { commonName: 'kubernetes-admin', organizations: ['system:masters'], usage: 'client', validityDays: days });
    await writePair(dir, 'admin', admin);
  }
  let kubeletClient = await readPair(dir, 'apiserver-kubelet-client');
  if (!kubeletClient || stale(kubeletClient.cert, ca.cert)) {
    kubeletClient = await issueCertificate(ca, { commonName: 'kube-apiserver-kubelet-client', organizations: ['system:masters'], usage: 'client', validityDays: days });
    await writePair(dir, 'apiserver-kubelet-client', kubeletClient);
  }
  let saKey: string;
  let saPub: string;
  try {
    saKey = await readFile(join(dir, 'sa.key'), 'utf8');
    saPub = await readFile(join(dir, 'sa.pub'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const keys = await generateKeys();
    saKey = await exportKey(keys.privateKey);
    saPub = pem('PUBLIC KEY', await webcrypto.subtle.exportKey('spki', keys.publicKey));
    await writeFile(join(dir, 'sa.key'), saKey, { mode: 0o600 });
    await writeFile(join(dir, 'sa.pub'), saPub, { mode: 0o644 });
  }
  return { dir, ca, serving, admin, kubeletClient, serviceAccount: { key: saKey, publicKey: saPub } };
}

/** Whether a SAN set covers `san` (IPv6 compared after expansion, as Node prints it). */
function coveredBy(sans: Set<string>, san: string): boolean {
  if (sans.has(san.toLowerCase())) return true;
  if (isIP(san) === 6) return [...sans].some((s) => isIP(s) === 6 && expand(s) === expand(san));
  return false;
}

function expand(v6: string): string {
  const [head, tail] = v6.toLowerCase().split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const zeros = tail !== undefined ? Array(8 - h.length - t.length).fill('0') : [];
  return [...h, ...zeros, ...t].map((x) => x.padStart(4, '0')).join(':');
}
