/**
 * Node TLS bootstrap (the kubelet's `--bootstrap-kubeconfig` flow): a node that has only a
 * bootstrap token gets its own client certificate from the cluster, through a
 * CertificateSigningRequest the cluster's CSR approver and signer handle.
 *
 * 1. Reuse: `<dir>/kubelet-client.crt` and `.key` are kept while the certificate is for
 *    `system:node:<nodeName>`, issued by the cluster CA, matches its key, and less than
 *    {@link BootstrapOptions.renewFraction} (80%) of its lifetime has passed.
 * 2. Otherwise a fresh ECDSA P-256 key and a PKCS#10 request (CN `system:node:<nodeName>`,
 *    O `system:nodes`) are posted as a CSR (generateName `node-csr-`, signer
 *    `kubernetes.io/kube-apiserver-client-kubelet`, usages digital signature + client auth),
 *    authenticated with the still-valid current certificate when there is one (renewal, which the
 *    approver's `selfnodeclient` recognizer approves) and with the bootstrap token otherwise.
 * 3. The CSR is watched until it carries a certificate (a Denied or Failed condition, its deletion
 *    or the timeout end the wait with an error), logging progress every 10 s.
 * 4. The key (0600), certificate and `<dir>/kubelet.conf` (the server, the CA, the client
 *    certificate and key files) are written (each atomically, key first).
 *
 * With `insecureSkipTLSVerify` and no CA, the server's certificate is not verified (development
 * only) and the kubeconfig says `insecure-skip-tls-verify: true`.
 *
 * @module
 */
import { createPrivateKey, createPublicKey, webcrypto, X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { request as httpsRequest, Agent } from 'node:https';
import { join, resolve } from 'node:path';
import 'reflect-metadata'; // @peculiar/x509 (tsyringe) needs it loaded first
import * as x509 from '@peculiar/x509';
import { ApiClient, type ApiConnection, type ApiTransport, type KubeObject, type Logger, type TransportStream } from '@kubernel/sdk';

x509.cryptoProvider.set(webcrypto as never);

/** The signer of kubelet client certificates. */
export const KUBELET_CLIENT_SIGNER = 'kubernetes.io/kube-apiserver-client-kubelet';
/** File names under the credentials directory. */
export const NODE_CLIENT_CERT_FILE = 'kubelet-client.crt';
export const NODE_CLIENT_KEY_FILE = 'kubelet-client.key';
export const NODE_KUBECONFIG_FILE = 'kubelet.conf';

const CSR_PATH = '/apis/certificates.k8s.io/v1/certificatesigningrequests';
const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** Options of {@link bootstrapNodeCredentials}. */
export interface BootstrapOptions {
  /** The API server, `https://host:port`. */
  readonly server: string;
  /** The bootstrap token `<id>.<secret>`; needed unless a still-valid certificate exists. */
  readonly token?: string;
  /** The node's name: the certificate is for `system:node:<nodeName>`. */
  readonly nodeName: string;
  /** Where the key, certificate and kubeconfig live (created 0700 if missing). */
  readonly dir: string;
  /** The cluster CA (PEM), or a file holding it. */
  readonly ca?: string;
  readonly caFile?: string;
  /** Skip verifying the server's certificate when no CA is given (development only). */
  readonly insecureSkipTLSVerify?: boolean;
  /** The certificate lifetime to ask for (the signer may shorten it; at least 600). */
  readonly expirationSeconds?: number;
  /** The fraction of a certificate's lifetime after which it is renewed (default 0.8). */
  readonly renewFraction?: number;
  /** How long to wait for the certificate (default 15 minutes). */
  readonly timeoutMs?: number;
  readonly logger: Logger;
  readonly signal?: AbortSignal;
}

/** What {@link bootstrapNodeCredentials} returns. */
export interface NodeCredentials {
  /** `<dir>/kubelet.conf`. */
  readonly kubeconfigPath: string;
  /** The client certificate and its key (PEM). */
  readonly cert: string;
  readonly key: string;
  /** The cluster CA (PEM); empty when TLS verification was skipped and no CA was given. */
  readonly ca: string;
  /** True when the existing certificate was kept (no request was made). */
  readonly reused: boolean;
  /** The CSR that was issued, when one was made. */
  readonly csrName?: string;
}

/** A failed bootstrap: no token and no usable certificate, a denied or failed request, a timeout. */
export class NodeBootstrapError extends Error {
  override readonly name = 'NodeBootstrapError';
}

/**
 * Makes sure the node has a client certificate for the cluster (see the module documentation),
 * and resolves with it and the kubeconfig that uses it.
 * @throws NodeBootstrapError when the certificate cannot be obtained; the SDK's ApiStatusError when the API refuses a request.
 */
export async function bootstrapNodeCredentials(options: BootstrapOptions): Promise<NodeCredentials> {
  const { logger, nodeName } = options;
  const dir = resolve(options.dir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const certFile = join(dir, NODE_CLIENT_CERT_FILE);
  const keyFile = join(dir, NODE_CLIENT_KEY_FILE);
  const kubeconfigPath = join(dir, NODE_KUBECONFIG_FILE);
  const ca = options.ca ?? (options.caFile ? await readFile(options.caFile, 'utf8') : '');
  if (!ca && !options.insecureSkipTLSVerify) throw new NodeBootstrapError('no cluster CA: give ca or caFile (or insecureSkipTLSVerify, for development only)');

  const existing = await readExisting(certFile, keyFile);
  const state = existing ? certificateState(existing, `system:node:${nodeName}`, ca, options.renewFraction ?? 0.8) : 'missing';
  if (existing && state === 'current') {
    await writeKubeconfig(kubeconfigPath, options.server, ca, certFile, keyFile, nodeName);
    logger.info({ node: nodeName, notAfter: new X509Certificate(existing.cert).validTo }, 'reusing the node client certificate');
    return { kubeconfigPath, cert: existing.cert, key: existing.key, ca, reused: true };
  }
  if (existing && state !== 'missing') logger.info({ node: nodeName, state }, 'the node client certificate must be replaced');

  // Authenticate with the current certificate while it is valid (renewal), else with the token.
  const attempts: Array<{ via: string; connection: Partial<ApiConnection> }> = [];
  if (existing && state === 'renew') attempts.push({ via: 'current client certificate', connection: { cert: existing.cert, key: existing.key } });
  if (options.token) attempts.push({ via: 'bootstrap token', connection: { token: options.token } });
  if (attempts.length === 0) throw new NodeBootstrapError(`no usable client certificate in ${dir} (${state}) and no bootstrap token`);

  const { key, csr } = await newRequest(nodeName);
  let lastError: unknown;
  for (const attempt of attempts) {
    const api = client(options.server, ca, attempt.connection, Boolean(options.insecureSkipTLSVerify));
    try {
      logger.info({ node: nodeName, via: attempt.via }, 'requesting a node client certificate');
      const { name, certificate } = await requestCertificate(api, csr, options);
      if (!publicKeyMatches(certificate, key)) throw new NodeBootstrapError(`the certificate issued for ${name} is not for the requested key`);
      await writeAtomic(keyFile, key, 0o600);
      await writeAtomic(certFile, certificate, 0o644);
      await writeKubeconfig(kubeconfigPath, options.server, ca, certFile, keyFile, nodeName);
      logger.info({ node: nodeName, csr: name, notAfter: new X509Certificate(certificate).validTo }, 'node client certificate issued');
      return { kubeconfigPath, cert: certificate, key, ca, reused: false, csrName: name };
    } catch (err) {
      lastError = err;
      if (err instanceof NodeBootstrapError || options.signal?.aborted) throw err;
      logger.warn({ node: nodeName, via: attempt.via, err: (err as Error).message }, 'requesting the node client certificate failed');
    } finally {
      api.close();
    }
  }
  throw lastError;
}

/** What an existing certificate is worth: kept, renewed while still usable, or replaced. */
export type CertificateState = 'current' | 'renew' | 'expired' | 'invalid' | 'missing';

/**
 * Classifies an existing key pair for `commonName`: `invalid` when unparseable, for another
 * subject, not matching its key, or not issued by `ca` (when given); `expired` outside its
 * validity; `renew` once `renewFraction` of its lifetime has passed; `current` otherwise.
 */
export function certificateState(pair: { cert: string; key: string }, commonName: string, ca: string, renewFraction: number, now = Date.now()): CertificateState {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pair.cert);
    if (!cert.subject.split('\n').includes(`CN=${commonName}`)) return 'invalid';
    if (!publicKeyMatches(pair.cert, pair.key)) return 'invalid';
    if (ca) {
      const issuer = new X509Certificate(ca);
      if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) return 'invalid';
    }
  } catch {
    return 'invalid';
  }
  const from = Date.parse(cert.validFrom);
  const to = Date.parse(cert.validTo);
  if (now < from || now >= to) return 'expired';
  return now >= from + (to - from) * renewFraction ? 'renew' : 'current';
}

async function readExisting(certFile: string, keyFile: string): Promise<{ cert: string; key: string } | undefined> {
  try {
    return { cert: await readFile(certFile, 'utf8'), key: await readFile(keyFile, 'utf8') };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

function publicKeyMatches(certPem: string, keyPem: string): boolean {
  try {
    const fromKey = createPublicKey(createPrivateKey(keyPem)).export({ format: 'der', type: 'spki' });
    const fromCert = new X509Certificate(certPem).publicKey.export({ format: 'der', type: 'spki' });
    return fromKey.equals(fromCert);
  } catch {
    return false;
  }
}

const pem = (label: string, der: ArrayBuffer): string => `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;

/** A fresh key (PKCS#8 PEM) and a PKCS#10 request (PEM) for `system:node:<nodeName>` in `system:nodes`. */
export function newRequest(nodeName: string): Promise<{ key: string; csr: string }> {
  return newKeyAndRequest({ commonName: `system:node:${nodeName}`, organizations: ['system:nodes'] });
}

/** A fresh ECDSA P-256 key (PKCS#8 PEM) and a PKCS#10 request (PEM) for a subject (CN, O), without SANs. */
export async function newKeyAndRequest(subject: { readonly commonName: string; readonly organizations?: readonly string[] }): Promise<{ key: string; csr: string }> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [...(subject.organizations ?? []).map((o) => ({ O: [o] })), { CN: [subject.commonName] }],
    keys: keys as never,
    signingAlgorithm: ALG,
  });
  return { key: pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)), csr: csr.toString('pem') };
}

/** Posts the CSR and waits for its certificate. */
async function requestCertificate(api: ApiClient, csrPem: string, options: BootstrapOptions): Promise<{ name: string; certificate: string }> {
  const created = await api.create(CSR_PATH, {
    apiVersion: 'certificates.k8s.io/v1',
    kind: 'CertificateSigningRequest',
    metadata: { generateName: 'node-csr-' },
    spec: {
      request: Buffer.from(csrPem).toString('base64'),
      signerName: KUBELET_CLIENT_SIGNER,
      usages: ['digital signature', 'client auth'],
      ...(options.expirationSeconds !== undefined ? { expirationSeconds: options.expirationSeconds } : {}),
    },
  });
  const name = String(created.metadata?.name);
  options.logger.info({ csr: name }, 'created a certificate signing request; waiting for its approval and certificate');
  return { name, certificate: await waitForCertificate(api, name, options.timeoutMs ?? 15 * 60_000, options.logger, options.signal) };
}

/** The certificate of a finished CSR, or why it never will be, or undefined while pending. */
function outcome(csr: KubeObject): { certificate: string } | { error: string } | undefined {
  const status = (csr.status ?? {}) as { certificate?: string; conditions?: Array<{ type: string; reason?: string; message?: string }> };
  for (const c of status.conditions ?? []) {
    if (c.type === 'Denied' || c.type === 'Failed') return { error: `certificate signing request ${csr.metadata?.name} was ${c.type === 'Denied' ? 'denied' : 'refused by the signer'}: ${c.reason ?? ''}${c.message ? ` (${c.message})` : ''}` };
  }
  if (status.certificate) return { certificate: Buffer.from(status.certificate, 'base64').toString('utf8') };
  return undefined;
}

/**
 * Watches CSR `name` until it has a certificate (re-listing when the watch ends), logging every
 * 10 s. @throws NodeBootstrapError on denial, failure, deletion or timeout.
 */
async function waitForCertificate(api: ApiClient, name: string, timeoutMs: number, logger: Logger, signal?: AbortSignal): Promise<string> {
  const stop = new AbortController();
  const started = Date.now();
  let why: string | undefined;
  const timer = setTimeout(() => {
    why = `no certificate for ${name} within ${Math.round(timeoutMs / 1000)} s (is the CSR approving and signing controller running?)`;
    stop.abort();
  }, timeoutMs);
  const progress = setInterval(() => logger.info({ csr: name, waitedSeconds: Math.round((Date.now() - started) / 1000) }, 'still waiting for the node client certificate'), 10_000);
  const onAbort = (): void => {
    why = 'aborted';
    stop.abort();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const selector = `fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}`;
  try {
    while (!stop.signal.aborted) {
      const list = await api.list(`${CSR_PATH}?${selector}`);
      const current = list.items[0];
      if (!current) throw new NodeBootstrapError(`certificate signing request ${name} was deleted`);
      const first = outcome(current);
      if (first && 'error' in first) throw new NodeBootstrapError(first.error);
      if (first) return first.certificate;
      let result: { certificate: string } | { error: string } | undefined;
      const watch = new AbortController();
      const end = (): void => watch.abort();
      stop.signal.addEventListener('abort', end, { once: true });
      try {
        await api.watch(`${CSR_PATH}?${selector}`, String(list.metadata.resourceVersion ?? ''), (event) => {
          if (result) return;
          if (event.type === 'DELETED') result = { error: `certificate signing request ${name} was deleted` };
          else if (event.type === 'ADDED' || event.type === 'MODIFIED') result = outcome(event.object);
          if (result) watch.abort();
        }, watch.signal);
      } catch (err) {
        if (!watch.signal.aborted) logger.debug({ csr: name, err: (err as Error).message }, 'watch ended; listing again');
      } finally {
        stop.signal.removeEventListener('abort', end);
      }
      if (result && 'error' in result) throw new NodeBootstrapError(result.error);
      if (result) return result.certificate;
    }
    throw new NodeBootstrapError(why ?? 'aborted');
  } finally {
    clearTimeout(timer);
    clearInterval(progress);
    signal?.removeEventListener('abort', onAbort);
  }
}

/** An API client for the bootstrap: verifying the server with `ca`, or (insecure) not at all. */
function client(server: string, ca: string, auth: Partial<ApiConnection>, insecure: boolean): ApiClient {
  if (ca || !insecure) return new ApiClient({ server, ...(ca ? { ca } : {}), ...auth }, { maxRetries: 3 });
  return new ApiClient({ server, ...auth, transport: insecureTransport(server, auth) }, { maxRetries: 3 });
}

/** HTTPS without server verification (insecureSkipTLSVerify), as an ApiTransport. */
function insecureTransport(server: string, auth: Partial<ApiConnection>): ApiTransport {
  const agent = new Agent({ rejectUnauthorized: false, ...(auth.cert ? { cert: auth.cert, key: auth.key } : {}) });
  const open = (req: { method: string; path: string; headers: Readonly<Record<string, string>>; body?: string; signal?: AbortSignal }) =>
    new Promise<IncomingMessage>((done, fail) => {
      const r = httpsRequest(new URL(req.path, server), { method: req.method, headers: { ...req.headers, ...(req.body !== undefined ? { 'content-length': String(Buffer.byteLength(req.body)) } : {}) }, agent, ...(req.signal ? { signal: req.signal } : {}) }, done);
      r.on('error', fail);
      r.end(req.body);
    });
  const text = async (res: IncomingMessage): Promise<string> => {
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString();
  };
  return {
    async request(req) {
      const res = await open(req);
      return { status: res.statusCode ?? 0, headers: res.headers, body: await text(res) };
    },
    async watch(req, onEvent): Promise<TransportStream> {
      const res = await open(req);
      if ((res.statusCode ?? 0) >= 300) return { status: res.statusCode ?? 0, body: await text(res), ended: Promise.resolve() };
      const ended = (async () => {
        let buffer = '';
        try {
          for await (const chunk of res) {
            buffer += (chunk as Buffer).toString();
            let nl: number;
            while ((nl = buffer.indexOf('\n')) >= 0) {
              const line = buffer.slice(0, nl);
              buffer = buffer.slice(nl + 1);
              if (!line.trim()) continue;
              const e = JSON.parse(line) as { type: string; object: unknown };
              onEvent(e.type, JSON.stringify(e.object));
            }
          }
        } catch (err) {
          if (!req.signal?.aborted) throw err;
        }
      })();
      return { status: res.statusCode ?? 0, ended };
    },
  };
}

async function writeAtomic(path: string, content: string, mode: number): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, content, { mode });
  await chmod(tmp, mode);
  await rename(tmp, path);
}

/** `<dir>/kubelet.conf`: the cluster (server, CA), the node's client certificate and key files. */
async function writeKubeconfig(path: string, server: string, ca: string, certFile: string, keyFile: string, nodeName: string): Promise<void> {
  const user = `system:node:${nodeName}`;
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'default-cluster', cluster: { server, ...(ca ? { 'certificate-authority-data': Buffer.from(ca).toString('base64') } : { 'insecure-skip-tls-verify': true }) } }],
    users: [{ name: user, user: { 'client-certificate': certFile, 'client-key': keyFile } }],
    contexts: [{ name: 'default-context', context: { cluster: 'default-cluster', user, namespace: 'default' } }],
    'current-context': 'default-context',
    preferences: {},
  };
  await writeAtomic(path, `${JSON.stringify(config, null, 2)}\n`, 0o600);
}
