/**
 * The node role of `kubernel up` and `kubernel agent`: node credentials, the container runtime the
 * distribution's agent role provides, and the {@link Agent} loop.
 *
 * Credentials: in `up` (the control plane in the same process) the node's client certificate
 * (`system:node:<name>`, group `system:nodes`) is issued directly with the cluster CA, so the agent
 * goes through the Node authorizer and NodeRestriction like any node; `kubernel agent` uses
 * `--kubeconfig`, or joins with `--server` and a bootstrap `--token`.
 *
 * @module
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { describeError, type ApiClient, type ContainerRuntime, type Logger } from '@kubernel/sdk';
import { Agent } from '../agent/agent.js';
import { CgroupManager, cgroupsAvailable } from '../agent/cgroups.js';
import { AgentServer } from '../agent/server.js';
import { issueCertificate, type KeyPair } from '../pki/pki.js';
import { writeKubeconfig } from '../apiserver/bootstrap.js';

/** The agent's flags (the kubelet's names where it has one). */
export interface AgentFlags {
  /** `--hostname-override`: the Node's name (default: the host name, lower-cased). */
  readonly hostnameOverride?: string;
  /** `--node-ip`: the Node's InternalIP (default: the first non-loopback IPv4 address). */
  readonly nodeIp?: string;
  /** `--pod-cidr`: the pod CIDR when the cluster does not allocate one. */
  readonly podCidr?: string;
  /** `--kubeconfig`: the node's credentials. */
  readonly kubeconfig?: string;
  /** `--server` and `--token`: join with a bootstrap token. */
  readonly server?: string;
  readonly token?: string;
  /** `--certificate-authority`: the cluster CA (PEM file) when joining. */
  readonly certificateAuthority?: string;
  /** `--max-pods`. */
  readonly maxPods?: string;
  /** `--cgroup-root`: the cgroup pods live under (`kubepods` by default); one per agent on a machine. */
  readonly cgroupRoot?: string;
  /** `--pod-manifest-path`: static pod manifests (default `<data-dir>/manifests`). */
  readonly podManifestPath?: string;
  /** `--manifest-url`: static pods served over HTTP. */
  readonly manifestUrl?: string;
  /** `--pod-infra-container-image`: the sandbox image, pinned against image garbage collection. */
  readonly podInfraContainerImage?: string;
  /** `--image-gc-high-threshold` / `--image-gc-low-threshold` (percent of the image filesystem). */
  readonly imageGcHighThreshold?: string;
  readonly imageGcLowThreshold?: string;
  /** `--kubelet-port`: the agent's HTTPS API (logs, exec, attach, port-forward); 10250, 0 picks a free one. */
  readonly kubeletPort?: string;
}

/** A started node role. */
export interface AgentRole {
  readonly nodeName: string;
  /** The port of the agent's HTTPS API. */
  readonly port: number;
  /** Stops the agent loop (containers keep running, as the kubelet leaves them). */
  stop(): Promise<void>;
}

/** The node's name: `--hostname-override`, else the host name, lower-cased. */
export function nodeNameOf(flags: AgentFlags): string {
  return (flags.hostnameOverride ?? hostname()).toLowerCase();
}

/** The first non-internal IPv4 address of the machine, else 127.0.0.1. */
export function defaultNodeIp(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/** Issues (or reuses) the node's client certificate with the cluster CA and writes its kubeconfig. */
export async function issueNodeCredentials(ca: KeyPair, nodeName: string, dir: string, server: string): Promise<KeyPair> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  let pair: KeyPair | undefined;
  try {
    const cert = await readFile(join(dir, 'kubelet-client.crt'), 'utf8');
    const key = await readFile(join(dir, 'kubelet-client.key'), 'utf8');
    const { X509Certificate } = await import('node:crypto');
    const x = new X509Certificate(cert);
    if (x.subject.includes(`CN=system:node:${nodeName}`) && x.checkIssued(new X509Certificate(ca.cert)) && Date.parse(x.validTo) > Date.now() + 86_400_000) pair = { cert, key };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (!pair) {
    pair = await issueCertificate(ca, { commonName: `system:node:${nodeName}`, organizations: ['system:nodes'], usage: 'client', validityDays: 365 });
    await writeFile(join(dir, 'kubelet-client.crt'), pair.cert, { mode: 0o644 });
    await writeFile(join(dir, 'kubelet-client.key'), pair.key, { mode: 0o600 });
  }
  const b64 = (t: string): string => Buffer.from(t).toString('base64');
  await writeKubeconfig(join(dir, 'kubelet.conf'), server, ca.cert, { 'client-certificate-data': b64(pair.cert), 'client-key-data': b64(pair.key) });
  return pair;
}

/** What {@link startAgentRole} needs. */
export interface AgentRoleOptions {
  readonly flags: AgentFlags;
  readonly dataDir: string;
  readonly logger: Logger;
  /** The container runtime the distribution's agent role provides. */
  readonly runtime: ContainerRuntime;
  /** The API client the agent uses (node credentials). */
  readonly api: ApiClient;
  /** The cluster CA (PEM): the agent's API trusts client certificates it signed (the API server's). */
  readonly clusterCa: string;
}

/** Starts the agent loop; resolves once it started (registration goes on in the background). */
export async function startAgentRole(options: AgentRoleOptions): Promise<AgentRole> {
  const { flags, logger } = options;
  await mkdir(flags.podManifestPath ?? join(options.dataDir, 'manifests'), { recursive: true });
  const support = cgroupsAvailable();
  let cgroups: CgroupManager | undefined;
  if (support.version !== undefined) {
    cgroups = new CgroupManager({ root: flags.cgroupRoot || 'kubepods', support });
    await cgroups.ensureQosCgroups();
  } else {
    logger.warn({ component: 'agent', reason: support.reason }, 'no usable cgroups: pods run without pod-level cgroups');
  }
  const nodeName = nodeNameOf(flags);
  const maxPods = flags.maxPods !== undefined ? Number(flags.maxPods) : undefined;
  if (maxPods !== undefined && (!Number.isInteger(maxPods) || maxPods < 1)) throw new Error(`--max-pods: expected a positive number, got "${flags.maxPods}"`);
  const nodeIp = flags.nodeIp ?? defaultNodeIp();
  const port = flags.kubeletPort !== undefined ? Number(flags.kubeletPort) : 10250;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--kubelet-port: expected a port number, got "${flags.kubeletPort}"`);
  const api = options.api;
  // The agent's HTTPS API: the API server proxies pods/log, exec, attach and portforward to it.
  // Requests are authenticated (cluster-CA client certificates, or bearer tokens through a
  // TokenReview) and authorized with a SubjectAccessReview on nodes/<subresource>, as the kubelet.
  const server = new AgentServer({
    runtime: options.runtime,
    nodeName,
    logger: logger.child({ component: 'agent-server', node: nodeName }),
    clientCa: options.clusterCa,
    port,
    certDir: join(options.dataDir, 'agent', 'pki'),
    sans: [nodeIp],
    authorize: async (a) => {
      const review = await api.create<{ status?: { allowed?: boolean; reason?: string } }>('/apis/authorization.k8s.io/v1/subjectaccessreviews', {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: a.user.username,
          groups: [...a.user.groups],
          ...(a.user.uid ? { uid: a.user.uid } : {}),
          ...(a.user.extra ? { extra: a.user.extra } : {}),
          resourceAttributes: { verb: a.verb, resource: a.resource, subresource: a.subresource, name: a.name },
        },
      });
      return { allowed: review.status?.allowed === true, ...(review.status?.reason ? { reason: review.status.reason } : {}) };
    },
    authenticateToken: async (token) => {
      const review = await api.create<{ status?: { authenticated?: boolean; user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> } } }>('/apis/authentication.k8s.io/v1/tokenreviews', {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token },
      });
      const u = review.status?.user;
      if (!review.status?.authenticated || !u?.username) return undefined;
      return { username: u.username, groups: u.groups ?? [], ...(u.uid ? { uid: u.uid } : {}), ...(u.extra ? { extra: u.extra } : {}) };
    },
  });
  await server.start();
  let agent: Agent;
  try {
    agent = new Agent({
      api: options.api,
      runtime: options.runtime,
      nodeName,
      logger: logger.child({ component: 'agent', node: nodeName }),
      addresses: [nodeIp],
      kubeletPort: server.port,
      ...(flags.podCidr ? { podCIDR: flags.podCidr } : {}),
      ...(maxPods !== undefined ? { capacity: { pods: maxPods } } : {}),
      ...(cgroups ? { cgroups } : {}),
      podsDir: join(options.dataDir, 'agent', 'pods'),
      pressurePath: options.dataDir,
      imageGC: {
        highThresholdPercent: Number(flags.imageGcHighThreshold ?? 85),
        lowThresholdPercent: Number(flags.imageGcLowThreshold ?? 80),
        pinnedImages: [flags.podInfraContainerImage ?? 'docker.io/kubernel/pause:1.35'],
        imageFsPath: options.dataDir,
      },
      staticPodPath: flags.podManifestPath ?? join(options.dataDir, 'manifests'),
      ...(flags.manifestUrl ? { staticPodURL: flags.manifestUrl } : {}),
    });
  } catch (err) {
    // A bad option (image GC thresholds, capacity): nothing may stay listening.
    await server.stop();
    throw err;
  }
  const abort = new AbortController();
  const running = agent.run(abort.signal).catch((err: unknown) => {
    logger.error({ err: describeError(err), component: 'agent' }, 'the agent loop failed');
  });
  return {
    nodeName,
    port: server.port,
    async stop() {
      abort.abort();
      await running;
      await server.stop();
    },
  };
}
