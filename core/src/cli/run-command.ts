import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ApiClient, describeError, loadKubeconfig, type Role } from '@kubernel/sdk';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { bootKernel, PluginLoadError } from '../kernel/boot.js';
import { DistributionError } from '../kernel/distribution.js';
import { KernelStartError } from '../kernel/kernel.js';
import { startHealthServer, type HealthServer, type NamedCheck } from '../kernel/health-server.js';
import { createLogger } from '../logging.js';
import { openStore, type OpenedStore } from '../store/embedded.js';
import { ApiServer } from '../apiserver/server.js';
import { apiCodec } from '../apiserver/codec.js';
import { EncryptingCodec, parseEncryptionConfig, reencrypt } from '../apiserver/encryption.js';
import { AuditLog, parseAuditPolicy } from '../apiserver/audit.js';
import { DEFAULT_ISSUER, ServiceAccountTokens } from '../apiserver/tokens.js';
import { ALWAYS_ALLOW, loopbackAuthenticator, MASTERS_AUTHORIZER, type RequestChain } from '../apiserver/chain.js';
import { ipToString, parseCidr } from '../apiserver/allocator.js';
import { ensurePki, type ClusterPki } from '../pki/pki.js';
import { randomBytes } from 'node:crypto';
import { bootstrapCluster, writeKubeconfig } from '../apiserver/bootstrap.js';
import { join } from 'node:path';
import { issueNodeCredentials, nodeNameOf, startAgentRole, type AgentFlags, type AgentRole } from './agent-role.js';
import { bootstrapNodeCredentials } from '../agent/bootstrap.js';

/** Options shared by `up`, `server` and `agent` (with the node role's flags of `up` and `agent`). */
export interface RunOptions extends AgentFlags {
  readonly dataDir: string;
  readonly distribution: string;
  readonly healthzBindAddress: string;
  readonly logLevel: string;
  /** External NATS servers, comma-separated; the embedded nats-server when absent. */
  readonly nats?: string;
  /** A file holding the token for external NATS servers. */
  readonly natsTokenFile?: string;
  /** A NATS `.creds` file for external servers. */
  readonly natsCreds?: string;
  /** Bucket replicas on an external cluster. */
  readonly natsReplicas?: string;
  /** The API server's port. */
  readonly apiPort?: string;
  /** The API server's listen address. */
  readonly bindAddress?: string;
  /** The address the `kubernetes` Service points at. */
  readonly advertiseAddress?: string;
  readonly serviceClusterIpRange?: string;
  readonly serviceNodePortRange?: string;
  readonly defaultWatchCacheSize?: string;
  /** The PKI directory; `<data-dir>/pki` when empty. */
  readonly certDir?: string;
  readonly tlsSan?: string;
  readonly tlsCertFile?: string;
  readonly tlsPrivateKeyFile?: string;
  readonly clientCaFile?: string;
  readonly authorizationMode?: string;
  readonly insecurePort?: string;
  readonly maxRequestsInflight?: string;
  /** An EncryptionConfiguration file: encryption at rest. */
  readonly encryptionProviderConfig?: string;
  readonly auditPolicyFile?: string;
  readonly serviceAccountIssuer?: string;
  readonly auditLogPath?: string;
  readonly maxMutatingRequestsInflight?: string;
}

const b64 = (text: string): string => Buffer.from(text).toString('base64');

/** `<certDir>/encryption-config.yaml`, created (mode 0600) with a random AES-256 key for secrets when missing. */
async function defaultEncryptionConfig(certDir: string): Promise<string> {
  const file = join(certDir, 'encryption-config.yaml');
  await mkdir(certDir, { recursive: true, mode: 0o700 });
  const text = [
    '# Made by kubernel at first start: secrets are encrypted at rest with this key. Keep it safe.',
    '# To rotate: add a new key first in the list, restart every API server (stored secrets are',
    '# re-encrypted at start), then remove the old key.',
    'apiVersion: apiserver.config.k8s.io/v1',
    'kind: EncryptionConfiguration',
    'resources:',
    '  - resources: [secrets]',
    '    providers:',
    '      - aesgcm:',
    '          keys:',
    `            - name: key-${new Date().toISOString().slice(0, 10)}`,
    `              secret: ${randomBytes(32).toString('base64')}`,
    '      - identity: {}',
    '',
  ].join('\n');
  try {
    await writeFile(file, text, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  return file;
}

/** Parses `host:port` (IPv6 in brackets); undefined when malformed. */
export function parseBindAddress(text: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[3]);
  return port <= 65535 ? { host: (m[1] ?? m[2])!, port } : undefined;
}

/**
 * Runs the kernel with the plugins of `roles` in the foreground until SIGINT/SIGTERM, with progress
 * on stdout and JSON logs on stderr. Resolves to the process exit code.
 */
export async function runRoles(command: string, roles: readonly Role[], opts: RunOptions, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const bind = parseBindAddress(opts.healthzBindAddress);
  if (!bind) {
    err(`error: --healthz-bind-address: expected host:port, got "${opts.healthzBindAddress}"\n`);
    return 2;
  }
  for (const [flag, value] of [['--max-requests-inflight', opts.maxRequestsInflight], ['--max-mutating-requests-inflight', opts.maxMutatingRequestsInflight]] as const) {
    if (value !== undefined && !/^[1-9]\d{0,5}$/.test(value)) {
      err(`error: ${flag}: expected a positive number, got "${value}"\n`);
      return 2;
    }
  }
  if (opts.insecurePort !== undefined && !/^\d{1,5}$/.test(opts.insecurePort)) {
    err(`error: --insecure-port: expected a port number, got "${opts.insecurePort}"\n`);
    return 2;
  }
  const logger = createLogger({ level: opts.logLevel });
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const dataDir = resolve(opts.dataDir);
  await mkdir(dataDir, { recursive: true });
  out(`kubernel ${command}: roles ${roles.join(', ')}; data dir ${dataDir}\n`);

  let booted: Awaited<ReturnType<typeof bootKernel>>;
  try {
    booted = await bootKernel({ distribution: opts.distribution, roles, dataDir, logger, registry });
  } catch (e) {
    if (e instanceof DistributionError) {
      err(`error: distribution ${e.path} is invalid:\n${e.problems.map((p) => `  ${p.path || '/'}: ${p.message}\n`).join('')}`);
      return 1;
    }
    if (e instanceof PluginLoadError) {
      err(`error: cannot load the distribution's plugins:\n${e.message.split('\n').map((l) => `  ${l}\n`).join('')}`);
      return 1;
    }
    throw e;
  }
  const { kernel, distribution } = booted;
  const count = kernel.statuses().length;
  out(`  distribution ${distribution.name} (${distribution.path}): ${count} plugin(s)\n`);

  let store: OpenedStore | undefined;
  let encryption: EncryptingCodec | undefined;
  const certDir = opts.certDir || join(dataDir, 'pki');
  let audit: AuditLog | undefined;
  if (roles.includes('server') && opts.auditPolicyFile) {
    try {
      audit = new AuditLog(parseAuditPolicy(await readFile(opts.auditPolicyFile, 'utf8')), opts.auditLogPath ?? join(dataDir, 'audit.log'));
    } catch (e) {
      err(`error: --audit-policy-file ${opts.auditPolicyFile}: ${describeError(e)}\n`);
      return 2;
    }
  }
  if (roles.includes('server')) {
    // Secrets are encrypted at rest by default: without a configuration, one with a random
    // AES-256 key is made once under the cert dir (shared by API servers that share it).
    const file = opts.encryptionProviderConfig ?? (await defaultEncryptionConfig(certDir));
    try {
      encryption = new EncryptingCodec(apiCodec, parseEncryptionConfig(await readFile(file, 'utf8')));
    } catch (e) {
      err(`error: --encryption-provider-config ${file}: ${describeError(e)}\n`);
      return 2;
    }
  }
  if (roles.includes('server')) {
    const servers = opts.nats?.split(',').map((u) => u.trim()).filter(Boolean);
    out(servers ? `  connecting to NATS at ${servers.join(', ')}\n` : '  starting the store on an embedded nats-server\n');
    try {
      store = await openStore({
        dataDir,
        ...(servers ? { servers } : {}),
        auth: {
          ...(opts.natsTokenFile ? { token: (await readFile(opts.natsTokenFile, 'utf8')).trim() } : {}),
          ...(opts.natsCreds ? { credsFile: opts.natsCreds } : {}),
        },
        ...(opts.natsReplicas ? { replicas: Number(opts.natsReplicas) } : {}),
        store: { codec: encryption ?? apiCodec, cache: { windowSize: Number(opts.defaultWatchCacheSize ?? 20000) } },
        logger,
        registry,
      });
    } catch (e) {
      err(`error: the store did not start: ${describeError(e)}\n`);
      return 1;
    }
    const h = store.store.health();
    const where = store.server ? `embedded nats-server ${store.server.version?.text} on ${store.server.url}, ${store.server.sync === 'always' ? 'fsync per write' : 'no fsync per write'}` : 'external NATS';
    out(`  ✓ store ready (${where}; revision ${h.revision}, ${h.objects} object(s))\n`);
    if (encryption) {
      try {
        const n = await reencrypt(store.store, encryption);
        out(`  ✓ encryption at rest for ${encryption.prefixes.join(', ')}${n ? `; ${n} object(s) re-encrypted with the current key` : ''}\n`);
      } catch (e) {
        await store.close();
        err(`error: re-encrypting stored objects failed: ${describeError(e)}\n`);
        return 1;
      }
    }
  }
  let api: ApiServer | undefined;
  let apiClient: ApiClient | undefined;
  let clusterPki: ClusterPki | undefined;
  if (store) {
    const ports = (opts.serviceNodePortRange ?? '30000-32767').split('-').map(Number);
    const bindAddress = opts.bindAddress ?? '127.0.0.1';
    const serviceRange = opts.serviceClusterIpRange ?? '10.96.0.0/12';
    let pki: ClusterPki;
    let tls: { cert: string; key: string; clientCa: string };
    try {
      pki = await ensurePki(certDir, {
        serviceIp: ipToString(parseCidr(serviceRange).base + 1),
        ...(opts.advertiseAddress ? { advertiseAddress: opts.advertiseAddress } : {}),
        ...(bindAddress !== '0.0.0.0' && bindAddress !== '::' ? { extraSans: [bindAddress, ...(opts.tlsSan?.split(',') ?? [])] } : { extraSans: opts.tlsSan?.split(',') ?? [] }),
      });
      clusterPki = pki;
      if (Boolean(opts.tlsCertFile) !== Boolean(opts.tlsPrivateKeyFile)) throw new Error('--tls-cert-file and --tls-private-key-file go together');
      tls = {
        cert: opts.tlsCertFile ? await readFile(opts.tlsCertFile, 'utf8') : pki.serving.cert,
        key: opts.tlsPrivateKeyFile ? await readFile(opts.tlsPrivateKeyFile, 'utf8') : pki.serving.key,
        clientCa: pki.ca.cert + (opts.clientCaFile ? await readFile(opts.clientCaFile, 'utf8') : ''),
      };
    } catch (e) {
      await store.close();
      err(`error: the cluster certificates are not usable: ${describeError(e)}\n`);
      return 1;
    }
    // The API server's own identity for in-process clients (Kubernetes' loopback token).
    const loopbackToken = randomBytes(32).toString('base64url');
    const loopback = loopbackAuthenticator(loopbackToken);
    const alwaysAllow = opts.authorizationMode === 'AlwaysAllow';
    if (alwaysAllow) logger.warn('authorization mode AlwaysAllow: every authenticated request is allowed (development only)');
    const chain: RequestChain = {
      authenticators: () => [loopback, ...kernel.extensions('authenticator')],
      authorizers: () => (alwaysAllow ? [ALWAYS_ALLOW] : [MASTERS_AUTHORIZER, ...kernel.extensions('authorizer')]),
      admission: () => kernel.extensions('admission'),
    };
    try {
      api = new ApiServer({
        store: store.store,
        logger,
        registry,
        host: bindAddress,
        port: Number(opts.apiPort ?? 6443),
        ...(opts.advertiseAddress ? { advertiseAddress: opts.advertiseAddress } : {}),
        serviceClusterIPRange: serviceRange,
        tls,
        serviceAccountTokens: await ServiceAccountTokens.load(pki.serviceAccount.key, pki.serviceAccount.publicKey, opts.serviceAccountIssuer ?? DEFAULT_ISSUER),
        ...(audit ? { audit } : {}),
        ...(opts.insecurePort !== undefined ? { insecurePort: Number(opts.insecurePort) } : {}),
        maxInflight: Number(opts.maxRequestsInflight ?? 400) + Number(opts.maxMutatingRequestsInflight ?? 200),
        serviceNodePortRange: [ports[0]!, ports[1]!],
        chain,
        checks: () => checks(),
        // How the API server reaches node agents for pods/log, exec, attach and portforward.
        kubelet: { cert: pki.kubeletClient.cert, key: pki.kubeletClient.key },
      });
      await api.start();
      const [host, port] = [api.address.replace(/:\d+$/, '').replace(/^\[|\]$/g, ''), Number(api.address.split(':').pop())];
      await bootstrapCluster(store.store, api.allocators, { ip: opts.advertiseAddress ?? (host === '0.0.0.0' ? '127.0.0.1' : host), port }, logger);
      // In-process plugins talk to the API server as its loopback identity.
      const loopbackHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
      // ...through the API server's in-process transport: the same request handling, no sockets.
      apiClient = new ApiClient({ server: `https://${loopbackHost}:${port}`, ca: pki.ca.cert, token: loopbackToken, transport: api.localTransport() });
      kernel.connectApi(apiClient);
      await writeKubeconfig(join(dataDir, 'kubeconfig'), api.url, pki.ca.cert, { 'client-certificate-data': b64(pki.admin.cert), 'client-key-data': b64(pki.admin.key) });
      out(`  ✓ API server on ${api.url}; admin kubeconfig: ${join(dataDir, 'kubeconfig')}\n`);
      if (api.insecureAddress) out(`  ! insecure port on http://${api.insecureAddress}: no authentication, every request is system:masters\n`);
    } catch (e) {
      await api?.stop();
      await store.close();
      err(`error: the API server did not start: ${describeError(e)}\n`);
      return 1;
    }
  }
  const checks = (): NamedCheck[] => {
    const list = kernel.checks();
    if (store) {
      const h = store.store.health();
      list.unshift({ name: 'store', live: true, ready: h.connected && h.cacheReady, reason: h.connected ? 'watch cache catching up' : 'NATS unreachable' });
    }
    return list;
  };

  let health: HealthServer | undefined;
  let agentRole: AgentRole | undefined;
  let nodeClient: ApiClient | undefined;
  let signalled: NodeJS.Signals | undefined;
  let finish!: (code: number) => void;
  const finished = new Promise<number>((r) => (finish = r));
  const shutdown = async (signal: NodeJS.Signals): Promise<void> => {
    if (signalled) {
      err(`received ${signal} again: exiting without waiting for plugins\n`);
      finish(130);
      return;
    }
    signalled = signal;
    out(`received ${signal}: stopping (timeout ${distribution.kernel.stopTimeoutMs / 1000}s)\n`);
    await agentRole?.stop();
    nodeClient?.close();
    const report = await kernel.stop();
    apiClient?.close();
    await api?.stop();
    await audit?.close();
    await store?.close();
    await health?.close();
    if (report.abandoned.length > 0) {
      err(`stopped; abandoned plugin(s) that ignored abort: ${report.abandoned.join(', ')}\n`);
      finish(1);
    } else {
      out('stopped\n');
      finish(0);
    }
  };
  const onSignal = (s: NodeJS.Signals): void => void shutdown(s);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    health = await startHealthServer({ ...bind, checks, registry });
    await kernel.start({
      starting: (p) => out(`  starting ${p.kind} plugin ${p.id}\n`),
      running: (p, ms) => out(`  ✓ ${p.id} running (${ms} ms)\n`),
    });
    if (roles.includes('agent') && !signalled) {
      if (kernel.extensions('container-runtime').length === 0) {
        out('  ! the agent role provides no container-runtime plugin: no node agent runs (add cri-containerd to the distribution)\n');
      } else {
        const started = await startAgent(roles, opts, dataDir, logger, kernel, api, clusterPki, out);
        agentRole = started.role;
        nodeClient = started.client;
      }
    }
  } catch (e) {
    if (signalled) return finished;
    await agentRole?.stop();
    nodeClient?.close();
    await kernel.stop();
    apiClient?.close();
    await api?.stop();
    await store?.close();
    await health?.close();
    const message = e instanceof KernelStartError ? e.message : `start-up failed: ${describeError(e)}`;
    err(`error: ${message}\n`);
    return 1;
  }
  if (!signalled) {
    out(`kubernel ${command}: ready; health at http://${health.address}/readyz, metrics at http://${health.address}/metrics; Ctrl-C stops it\n`);
  }
  return finished;
}

/** Starts the node role: node credentials, the distribution's container runtime, the agent loop. */
async function startAgent(
  roles: readonly Role[],
  opts: RunOptions,
  dataDir: string,
  logger: ReturnType<typeof createLogger>,
  kernel: Awaited<ReturnType<typeof bootKernel>>['kernel'],
  api: ApiServer | undefined,
  pki: ClusterPki | undefined,
  out: (s: string) => void,
): Promise<{ role: AgentRole; client: ApiClient }> {
  const runtime = kernel.extensions('container-runtime')[0]!;
  const nodeName = nodeNameOf(opts);
  const agentDir = join(dataDir, 'agent');
  let client: ApiClient;
  let clusterCa: string;
  if (roles.includes('server') && api && pki) {
    clusterCa = pki.ca.cert;
    const pair = await issueNodeCredentials(pki.ca, nodeName, agentDir, api.url);
    client = new ApiClient({ server: api.url, ca: pki.ca.cert, cert: pair.cert, key: pair.key });
    out(`  ✓ node credentials for system:node:${nodeName} (${join(agentDir, 'kubelet.conf')})\n`);
  } else if (opts.kubeconfig && existsSync(opts.kubeconfig)) {
    client = await ApiClient.fromKubeconfig(opts.kubeconfig);
    const ca = (await loadKubeconfig(opts.kubeconfig)).ca;
    if (!ca) throw new Error(`${opts.kubeconfig}: no certificate-authority: the agent needs the cluster CA to trust the API server's client certificate`);
    clusterCa = ca;
  } else if (opts.server && opts.token) {
    // TLS bootstrap: the bootstrap token asks for a client certificate (a CSR the approving and
    // signing controllers handle); later starts reuse it until it is due for renewal.
    out(`  joining ${opts.server} with a bootstrap token as system:node:${nodeName}...\n`);
    const creds = await bootstrapNodeCredentials({
      server: opts.server,
      token: opts.token,
      nodeName,
      dir: agentDir,
      ...(opts.certificateAuthority ? { caFile: opts.certificateAuthority } : {}),
      logger: logger.child({ component: 'agent-bootstrap' }),
    });
    client = await ApiClient.fromKubeconfig(creds.kubeconfigPath);
    clusterCa = creds.ca;
    out(`  ✓ node credentials for system:node:${nodeName} (${creds.reused ? 'reused' : `issued through CSR ${creds.csrName ?? ''}`}; ${creds.kubeconfigPath})\n`);
  } else {
    throw new Error('kubernel agent needs --kubeconfig FILE, or --server URL with a bootstrap --token (and --certificate-authority FILE)');
  }
  const v = await runtime.version();
  out(`  ✓ container runtime ${v.runtimeName} ${v.runtimeVersion} (CRI ${v.runtimeApiVersion})\n`);
  const role = await startAgentRole({ flags: opts, dataDir, logger, runtime, api: client, clusterCa });
  out(`  ✓ node agent for node ${role.nodeName} started; its API on port ${role.port}\n`);
  return { role, client };
}
