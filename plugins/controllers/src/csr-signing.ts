/**
 * The CSR signing controller (Kubernetes' `certificatesigningrequest-signing-controller`,
 * pkg/controller/certificates/signer): issues the certificates of approved requests for the
 * well-known signers it serves, with the cluster signing CA.
 *
 * - Only requests that are approved (and not denied), not Failed and not yet issued, of its
 *   signer names, are signed.
 * - A request whose content does not fit its signer's rules gets a `Failed` condition (reason
 *   `SignerValidationFailure`) instead of a certificate:
 *   `kubernetes.io/kube-apiserver-client-kubelet`: CN `system:node:...`, O exactly
 *   `[system:nodes]`, no SANs, usages exactly digital signature + client auth (+ key
 *   encipherment); `kubernetes.io/kubelet-serving`: the same subject, at least one DNS or IP SAN,
 *   usages digital signature + server auth (+ key encipherment);
 *   `kubernetes.io/kube-apiserver-client`: client auth required, only digital signature and key
 *   encipherment besides, and (as Kubernetes' CertificateSubjectRestriction admission) never the
 *   group `system:masters`. So is a request whose signature does not verify.
 * - Validity: `--cluster-signing-duration` (one year by default), shortened to the request's
 *   `expirationSeconds` (never below 10 minutes); never past the CA's own expiry. notBefore is
 *   five minutes in the past (clock skew); a random 128-bit serial.
 * - The certificate: the request's subject and public key, its SANs, key usage and extended key
 *   usage from `spec.usages`, not a CA, the CA's key identifier; signed with the CA key's
 *   algorithm (ECDSA P-256/P-384/P-521 or RSA).
 *
 * The CA is read from `clusterSigningCertFile`/`clusterSigningKeyFile`; by default the cluster CA
 * `kubernel server` creates, `<data-dir>/pki/ca.crt` and `ca.key`, found two levels above the
 * plugin's data dir (`<data-dir>/plugins/<id>`). A server started with another `--cert-dir` must
 * name the files. The files are read again each time the process becomes leader.
 *
 * @module
 */
import { createPrivateKey, createPublicKey, randomBytes, webcrypto } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import 'reflect-metadata'; // @peculiar/x509 (tsyringe) needs it loaded first
import * as x509 from '@peculiar/x509';
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
  type Reconciler,
  untilAborted,
} from '@kubernel/sdk';
import {
  apiServerClientUsagesProblem,
  csrPath,
  CSR_PATH,
  hasTrueCondition,
  isApproved,
  KUBE_APISERVER_CLIENT_KUBELET_SIGNER,
  KUBE_APISERVER_CLIENT_SIGNER,
  KUBELET_SERVING_SIGNER,
  kubeletClientProblem,
  kubeletServingProblem,
  parseCsr,
  requestPem,
  usagesOf,
  type Csr,
  type CsrCondition,
  type ParsedCsr,
} from './csr.js';
import { formatTime } from './util.js';

/** The plugin id (Kubernetes' controller name). */
export const CSR_SIGNING_CONTROLLER_ID = 'certificatesigningrequest-signing-controller';

const MINUTE = 60_000;
/** Kubernetes' default --cluster-signing-duration: 8760h. */
export const DEFAULT_SIGNING_DURATION_SECONDS = 365 * 24 * 3600;
/** The shortest certificate issued for a request's expirationSeconds: 10 minutes. */
export const MIN_CERTIFICATE_MS = 10 * MINUTE;
/** How far notBefore is backdated. */
export const BACKDATE_MS = 5 * MINUTE;
/** Certificates shorter than this are not lengthened by the backdate. */
export const SHORT_CERTIFICATE_MS = 8 * 60 * MINUTE;

/** Why a request does not fit `signerName`'s rules; undefined when it does. */
export type SignerRule = (request: ParsedCsr, usages: readonly string[]) => string | undefined;

/** The rules of the signers this controller serves. */
export const SIGNER_RULES: Readonly<Record<string, SignerRule>> = {
  [KUBE_APISERVER_CLIENT_KUBELET_SIGNER]: kubeletClientProblem,
  [KUBELET_SERVING_SIGNER]: kubeletServingProblem,
  [KUBE_APISERVER_CLIENT_SIGNER]: (request, usages) => apiServerClientUsagesProblem(usages) ?? (request.organizations.includes('system:masters') ? 'subject organization system:masters is not allowed for this signer' : undefined),
};

/** A CA that signs: its certificate, private key and the signature algorithm of that key. */
export interface SigningAuthority {
  readonly certificate: x509.X509Certificate;
  readonly key: webcrypto.CryptoKey;
  readonly algorithm: SignatureAlgorithm;
}

/** A Web Crypto signature algorithm with its hash (`{ name: 'ECDSA', hash: 'SHA-256' }`). */
export interface SignatureAlgorithm {
  readonly name: string;
  readonly hash: string;
}

const CURVES: Readonly<Record<string, [string, string]>> = { prime256v1: ['P-256', 'SHA-256'], secp384r1: ['P-384', 'SHA-384'], secp521r1: ['P-521', 'SHA-512'] };

/**
 * Loads a signing CA from PEM (a certificate and its private key in PKCS#8, SEC1 or PKCS#1 form).
 * @throws Error when the key is of an unsupported type or does not belong to the certificate.
 */
export async function loadSigningAuthority(certPem: string, keyPem: string): Promise<SigningAuthority> {
  const certificate = new x509.X509Certificate(certPem);
  const privateKey = createPrivateKey(keyPem);
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  if (!Buffer.from(certificate.publicKey.rawData).equals(spki)) throw new Error('the signing key does not belong to the signing certificate');
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  let importAlg: webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams;
  let algorithm: SignatureAlgorithm;
  if (privateKey.asymmetricKeyType === 'ec') {
    const curve = CURVES[privateKey.asymmetricKeyDetails?.namedCurve ?? ''];
    if (!curve) throw new Error(`unsupported signing key curve ${privateKey.asymmetricKeyDetails?.namedCurve}`);
    importAlg = { name: 'ECDSA', namedCurve: curve[0] };
    algorithm = { name: 'ECDSA', hash: curve[1] };
  } else if (privateKey.asymmetricKeyType === 'rsa') {
    importAlg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  } else {
    throw new Error(`unsupported signing key type ${privateKey.asymmetricKeyType}`);
  }
  const key = await webcrypto.subtle.importKey('pkcs8', der, importAlg, false, ['sign']);
  return { certificate, key, algorithm };
}

/** How long a certificate for a request asking `expirationSeconds` lives, at most `maxMs` (Kubernetes' signer duration). */
export function certificateTtlMs(expirationSeconds: number | undefined, maxMs: number): number {
  if (expirationSeconds === undefined || expirationSeconds === null) return maxMs;
  const requested = expirationSeconds * 1000;
  if (requested > maxMs) return maxMs;
  if (requested < MIN_CERTIFICATE_MS) return MIN_CERTIFICATE_MS;
  return requested;
}

const KEY_USAGE_FLAGS: Readonly<Record<string, number>> = {
  signing: x509.KeyUsageFlags.digitalSignature,
  'digital signature': x509.KeyUsageFlags.digitalSignature,
  'content commitment': x509.KeyUsageFlags.nonRepudiation,
  'key encipherment': x509.KeyUsageFlags.keyEncipherment,
  'key agreement': x509.KeyUsageFlags.keyAgreement,
  'data encipherment': x509.KeyUsageFlags.dataEncipherment,
  'cert sign': x509.KeyUsageFlags.keyCertSign,
  'crl sign': x509.KeyUsageFlags.cRLSign,
  'encipher only': x509.KeyUsageFlags.encipherOnly,
  'decipher only': x509.KeyUsageFlags.decipherOnly,
};

const EXT_KEY_USAGES: Readonly<Record<string, string>> = {
  any: '2.5.29.37.0',
  'server auth': x509.ExtendedKeyUsage.serverAuth,
  'client auth': x509.ExtendedKeyUsage.clientAuth,
  'code signing': x509.ExtendedKeyUsage.codeSigning,
  'email protection': x509.ExtendedKeyUsage.emailProtection,
  's/mime': x509.ExtendedKeyUsage.emailProtection,
  'ipsec end system': '1.3.6.1.5.5.7.3.5',
  'ipsec tunnel': '1.3.6.1.5.5.7.3.6',
  'ipsec user': '1.3.6.1.5.5.7.3.7',
  timestamping: x509.ExtendedKeyUsage.timeStamping,
  'ocsp signing': x509.ExtendedKeyUsage.ocspSigning,
  'microsoft sgc': '1.3.6.1.4.1.311.10.3.3',
  'netscape sgc': '2.16.840.1.113730.4.1',
};

/** Key usage flags and extended key usage OIDs of `usages` (Kubernetes' keyUsagesFromStrings). @throws Error for an unknown usage */
export function keyUsagesOf(usages: readonly string[]): { keyUsage: number; extended: string[] } {
  let keyUsage = 0;
  const extended: string[] = [];
  for (const u of usages) {
    if (u in KEY_USAGE_FLAGS) keyUsage |= KEY_USAGE_FLAGS[u]!;
    else if (u in EXT_KEY_USAGES) {
      if (!extended.includes(EXT_KEY_USAGES[u]!)) extended.push(EXT_KEY_USAGES[u]!);
    } else throw new Error(`unrecognized usage: ${u}`);
  }
  return { keyUsage, extended };
}

/** A request the signer refuses for good (its signature does not verify, the CA has expired). */
export class SigningRefused extends Error {
  override readonly name = 'SigningRefused';
}

/** A positive 128-bit serial number, hex. */
const serial = (): string => randomBytes(16).toString('hex').replace(/^[89a-f]/, (d) => String(parseInt(d, 16) - 8));

/**
 * Issues a certificate for `request` (PEM), valid `ttlMs` from `now` (backdated by
 * {@link BACKDATE_MS}, capped at the CA's expiry), with `usages`.
 * @throws SigningRefused when the request's signature does not verify or the CA has expired.
 */
export async function signCertificate(ca: SigningAuthority, request: ParsedCsr, usages: readonly string[], ttlMs: number, now = Date.now()): Promise<string> {
  if (!(await request.request.verify())) throw new SigningRefused('unable to verify certificate request signature');
  const caNotAfter = ca.certificate.notAfter.getTime();
  if (now >= caNotAfter) throw new SigningRefused('refusing to sign a certificate that expired in the past');
  const notBefore = now - BACKDATE_MS;
  const notAfter = Math.min(ttlMs < SHORT_CERTIFICATE_MS ? now + ttlMs : notBefore + ttlMs, caNotAfter);
  const { keyUsage, extended } = keyUsagesOf(usages);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: request.request.subjectName,
    issuer: ca.certificate.subjectName,
    notBefore: new Date(notBefore),
    notAfter: new Date(notAfter),
    publicKey: request.request.publicKey,
    signingKey: ca.key as never,
    signingAlgorithm: ca.algorithm as never,
    extensions: [
      ...(keyUsage ? [new x509.KeyUsagesExtension(keyUsage, true)] : []),
      ...(extended.length ? [new x509.ExtendedKeyUsageExtension(extended)] : []),
      new x509.BasicConstraintsExtension(false, undefined, true),
      await x509.AuthorityKeyIdentifierExtension.create(ca.certificate),
      ...(request.subjectAltName ? [request.subjectAltName] : []),
    ],
  });
  return `${cert.toString('pem')}\n`;
}

/** The Failed condition of a request the signer refuses. */
export const signerFailedCondition = (message: string, now = Date.now()): CsrCondition => ({ type: 'Failed', status: 'True', reason: 'SignerValidationFailure', message, lastUpdateTime: formatTime(now) });

/** Options of a {@link CsrSigner}. */
export interface CsrSignerOptions {
  readonly api: Pick<ApiClient, 'update'>;
  readonly csrs: Pick<Informer<Csr>, 'get'>;
  /** The CA (read when the controller starts leading). */
  readonly authority: SigningAuthority;
  /** The signer names served; default: the three in {@link SIGNER_RULES}. */
  readonly signerNames?: readonly string[];
  /** The longest certificate issued (--cluster-signing-duration), in ms. */
  readonly maxTtlMs: number;
  readonly logger: Logger;
  readonly now?: () => number;
}

/** The signer's reconciler, one CSR at a time. */
export class CsrSigner implements Reconciler {
  private readonly signerNames: ReadonlySet<string>;
  private readonly now: () => number;

  constructor(private readonly options: CsrSignerOptions) {
    this.signerNames = new Set(options.signerNames ?? Object.keys(SIGNER_RULES));
    this.now = options.now ?? Date.now;
  }

  async reconcile(key: ObjectKey): Promise<void> {
    const csr = this.options.csrs.get(key.name);
    if (!csr || !isApproved(csr) || hasTrueCondition(csr, 'Failed') || csr.status?.certificate) return;
    const signerName = String(csr.spec?.signerName ?? '');
    const rule = SIGNER_RULES[signerName];
    if (!this.signerNames.has(signerName) || !rule) return;
    let request: ParsedCsr;
    try {
      request = parseCsr(requestPem(csr));
    } catch (err) {
      return this.fail(csr, `unable to parse csr: ${(err as Error).message}`);
    }
    const usages = usagesOf(csr);
    const problem = rule(request, usages);
    if (problem) return this.fail(csr, problem);
    const ttl = certificateTtlMs(csr.spec?.expirationSeconds as number | undefined, this.options.maxTtlMs);
    let pem: string;
    try {
      pem = await signCertificate(this.options.authority, request, usages, ttl, this.now());
    } catch (err) {
      if (err instanceof SigningRefused) return this.fail(csr, err.message);
      throw err;
    }
    await this.write(csr, { ...(csr.status ?? {}), certificate: Buffer.from(pem).toString('base64') });
    this.options.logger.info({ csr: key.name, signerName, requestor: csr.spec?.username, subject: request.request.subject }, 'signed certificate signing request');
  }

  private async fail(csr: Csr, message: string): Promise<void> {
    const conditions = [...((csr.status?.conditions as CsrCondition[] | undefined) ?? []), signerFailedCondition(message, this.now())];
    await this.write(csr, { ...(csr.status ?? {}), conditions });
    this.options.logger.info({ csr: csr.metadata?.name, signerName: csr.spec?.signerName, reason: message }, 'refused certificate signing request');
  }

  private async write(csr: Csr, status: Record<string, unknown>): Promise<void> {
    try {
      await this.options.api.update(`${csrPath(String(csr.metadata?.name))}/status`, { ...csr, status });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

/** Configuration of the signing controller. */
export interface CsrSigningConfig {
  readonly clusterSigningCertFile?: string;
  readonly clusterSigningKeyFile?: string;
  readonly clusterSigningDurationSeconds: number;
  readonly signerNames: string[];
  readonly workers: number;
  readonly leaderElection: LeaderElectionConfig;
}

/** The JSON Schema of {@link CsrSigningConfig}. */
export const CSR_SIGNING_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    clusterSigningCertFile: { type: 'string', minLength: 1, description: 'PEM CA certificate to sign with (Kubernetes --cluster-signing-cert-file); default <data-dir>/pki/ca.crt.' },
    clusterSigningKeyFile: { type: 'string', minLength: 1, description: 'PEM private key of that CA (--cluster-signing-key-file); default <data-dir>/pki/ca.key.' },
    clusterSigningDurationSeconds: { type: 'integer', minimum: 600, default: DEFAULT_SIGNING_DURATION_SECONDS, description: 'Longest certificate issued (--cluster-signing-duration); one year by default.' },
    signerNames: { type: 'array', items: { type: 'string', enum: Object.keys(SIGNER_RULES) }, uniqueItems: true, default: Object.keys(SIGNER_RULES), description: 'The well-known signers served.' },
    workers: { type: 'integer', minimum: 1, maximum: 64, default: 5, description: 'Requests handled at once (Kubernetes runs 5).' },
    leaderElection: LEADER_ELECTION_SCHEMA,
  },
} as const;

/** The CA files the signer uses: the configured ones, else the cluster CA two levels above the plugin's data dir. */
export function signingFiles(config: Pick<CsrSigningConfig, 'clusterSigningCertFile' | 'clusterSigningKeyFile'>, dataDir: string): { cert: string; key: string } {
  const pki = join(dataDir, '..', '..', 'pki');
  return { cert: config.clusterSigningCertFile ?? join(pki, 'ca.crt'), key: config.clusterSigningKeyFile ?? join(pki, 'ca.key') };
}

/** The CSR signing controller plugin. */
export const csrSigningControllerPlugin = definePlugin({
  id: CSR_SIGNING_CONTROLLER_ID,
  kind: 'controller',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'CSR signing controller: issues the certificates of approved requests for the kubernetes.io kube-apiserver-client, kube-apiserver-client-kubelet and kubelet-serving signers with the cluster CA.',
  configSchema: CSR_SIGNING_CONFIG_SCHEMA,
  async start(handle, config: CsrSigningConfig, signal) {
    const files = signingFiles(config, handle.dataDir);
    const load = async (): Promise<SigningAuthority> => {
      try {
        return await loadSigningAuthority(await readFile(files.cert, 'utf8'), await readFile(files.key, 'utf8'));
      } catch (err) {
        throw new Error(`cannot load the cluster signing CA (${files.cert}, ${files.key}): ${(err as Error).message}`, { cause: err });
      }
    };
    try {
      await load();
    } catch (err) {
      // Configured files must be there: fail at start, clearly. The default place may not hold the
      // CA (an API server started with another --cert-dir): then this process signs nothing and
      // stays out of the leader election, as kube-controller-manager skips its signer without files.
      if (config.clusterSigningCertFile || config.clusterSigningKeyFile) throw err;
      handle.logger.warn({ cert: files.cert, key: files.key, err: (err as Error).message }, 'no cluster signing CA in the default place: this CSR signer stays idle (set clusterSigningCertFile and clusterSigningKeyFile)');
      handle.ready();
      await untilAborted(signal);
      return;
    }
    const csrs = handle.api.informer<Csr>(CSR_PATH);
    csrs.run();
    await csrs.waitForSync(signal);
    handle.ready();
    await runWhileLeading(handle.api, config.leaderElection, handle.logger, signal, async (leading) => {
      const authority = await load();
      if (leading.aborted) return; // stopped while the CA was read: Controller.run wants a live signal
      const reconciler = new CsrSigner({ api: handle.api, csrs, authority, signerNames: config.signerNames, maxTtlMs: config.clusterSigningDurationSeconds * 1000, logger: handle.logger });
      const controller = new Controller({ name: 'csrsigning', reconciler, workers: config.workers, logger: handle.logger, metrics: handle.metrics });
      controller.watch(csrs);
      await controller.run(leading);
    });
  },
});
