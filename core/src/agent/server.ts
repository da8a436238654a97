/**
 * The agent's HTTPS API, the kubelet's server (port 10250): what the API server proxies
 * `kubectl logs`, `exec`, `attach` and `port-forward` to.
 *
 * Paths, as the kubelet's:
 * - `GET /containerLogs/{namespace}/{pod}/{container}?follow=&previous=&tailLines=&sinceSeconds=&sinceTime=&timestamps=&limitBytes=`
 * - `GET|POST /exec/{namespace}/{pod}[/{uid}]/{container}?command=..&command=..&stdin=&stdout=&stderr=&tty=`
 *   (a WebSocket upgrade; `v5.channel.k8s.io` or `v4.channel.k8s.io`), bridged to the runtime's
 *   streaming server (the URL `Exec` returns)
 * - `GET|POST /attach/{namespace}/{pod}[/{uid}]/{container}?stdin=&stdout=&stderr=&tty=`, likewise
 * - `GET|POST /portForward/{namespace}/{pod}[/{uid}]`: a WebSocket tunnelling SPDY
 *   (`SPDY/3.1+portforward.k8s.io`) or an `Upgrade: SPDY/3.1` with `X-Stream-Protocol-Version:
 *   portforward.k8s.io`. The agent dials the pod's IP (from the sandbox status) itself; so a port
 *   the pod binds only on its own 127.0.0.1 is not reachable this way (the kubelet's runtimes
 *   enter the pod's network namespace instead). Host-network pods are dialled on 127.0.0.1.
 * - `GET /healthz`: `ok`, without authentication (the kubelet's healthz port is open too).
 *
 * Authentication: a client certificate verified against the cluster CA (user = CN, groups = O),
 * else a bearer token through `authenticateToken` (the integrator's TokenReview); neither: 401.
 * Authorization through `authorize` (the integrator's SubjectAccessReview), with the kubelet's
 * attributes: resource `nodes`, name = this node, subresource from the path (`/stats/*` →
 * `stats`, `/metrics*` → `metrics`, `/logs/*` → `log`, `/spec/*` → `spec`, `/checkpoint/*` →
 * `checkpoint`, everything else — containerLogs, exec, attach, portForward — `proxy`), verb from
 * the method (GET/HEAD → get, POST → create, PUT → update, PATCH → patch, DELETE → delete).
 * Errors are plain text with the HTTP status, as the kubelet writes them.
 *
 * @module
 */
import 'reflect-metadata'; // @peculiar/x509 needs it loaded first
import { X509Certificate, webcrypto } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { isIP, type AddressInfo, type Socket } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import * as x509 from '@peculiar/x509';
import { WebSocketServer, createWebSocketStream, type WebSocket } from 'ws';
import { restartCountOf, type AuthorizationAttributes, type ContainerRuntime, type ContainerState, type Logger, type UserInfo } from '@kubernel/sdk';
import { LogFileNotFoundError, readContainerLogs, type LogOptions } from './logs.js';
import { CONTAINER_NAME_LABEL, POD_NAME_LABEL, POD_NAMESPACE_LABEL, POD_UID_LABEL } from './pod-worker.js';
import {
  bridgeToRuntime,
  bridgeToRuntimeSpdy,
  Channel,
  dialTcp,
  encodeChannelFrame,
  failureStatus,
  negotiateChannelProtocol,
  servePortForward,
  PORT_FORWARD_PROTOCOL,
  PORT_FORWARD_TUNNEL_PROTOCOL,
  type ChannelProtocol,
  type SessionStreams,
} from './streams.js';

x509.cryptoProvider.set(webcrypto as never);

/** The kubelet's default port. */
export const DEFAULT_AGENT_PORT = 10250;

/** One container of a pod, as the server needs it. */
export interface ContainerRef {
  readonly name: string;
  readonly id: string;
  readonly state: ContainerState;
  /** The restart count (which instance this is). */
  readonly attempt: number;
  /** Creation time, ns since the epoch. */
  readonly createdAt: number;
  /** Absolute path of its log file ('' when unknown). */
  readonly logPath: string;
}

/** A pod on this node. */
export interface PodRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly sandboxId: string;
  /** The pod's IP; absent for host-network pods (dialled on 127.0.0.1). */
  readonly ip?: string;
  /** Every container instance the runtime still has, newest first per name. */
  readonly containers: readonly ContainerRef[];
}

/** Finds a pod's sandbox and containers. */
export type PodLookup = (namespace: string, name: string, uid?: string) => Promise<PodRef | undefined>;

/** A decision of {@link AgentServerOptions.authorize}. */
export interface AgentAuthorization {
  readonly allowed: boolean;
  readonly reason?: string;
}

/** Options of an {@link AgentServer}. */
export interface AgentServerOptions {
  readonly runtime: ContainerRuntime;
  readonly nodeName: string;
  readonly logger: Logger;
  /** PEM of the CA(s) client certificates must chain to (the cluster CA). */
  readonly clientCa: string;
  /** Listen address; 0.0.0.0 by default. */
  readonly host?: string;
  /** Listen port; 10250 by default, 0 for a free one. */
  readonly port?: number;
  /** The serving certificate; absent: a self-signed one kept in `certDir` (made on first use). */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Where the self-signed serving certificate lives (`kubelet.crt`, `kubelet.key`). */
  readonly certDir?: string;
  /** Extra SANs of the self-signed certificate (the node's addresses and hostname are in it). */
  readonly sans?: readonly string[];
  /** Resolves a bearer token (TokenReview); undefined: not a valid token. Absent: tokens are refused. */
  readonly authenticateToken?: (token: string) => Promise<UserInfo | undefined>;
  /** Decides whether `attributes` are allowed (SubjectAccessReview). */
  readonly authorize: (attributes: AuthorizationAttributes) => Promise<AgentAuthorization>;
  /** Finds pods; by default from the runtime, by the labels the pod workers put on sandboxes and containers. */
  readonly lookup?: PodLookup;
  /** Dials a pod's port for port-forward; by default TCP to the pod IP (127.0.0.1 for host-network pods). */
  readonly dialPod?: (pod: PodRef, port: number) => Promise<Duplex>;
}

/** A kubelet-style HTTP error: plain text with a status. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const truthy = (v: string | null): boolean => v === 'true' || v === '1' || v === 'True' || v === 'TRUE';

/** The kubelet's mapping of a path to the `nodes` subresource authorized. */
export function nodeSubresourceOf(path: string): string {
  const first = path.split('/')[1] ?? '';
  switch (first) {
    case 'stats':
      return 'stats';
    case 'metrics':
      return 'metrics';
    case 'logs':
      return 'log';
    case 'spec':
      return 'spec';
    case 'checkpoint':
      return 'checkpoint';
    default:
      return 'proxy';
  }
}

/** The verb authorized for an HTTP method (the kubelet's mapping). */
export function verbOf(method: string): string {
  switch (method.toUpperCase()) {
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return 'delete';
    default:
      return 'get';
  }
}

/** A pod lookup from the runtime alone, by the kubelet labels on sandboxes and containers. */
export function runtimePodLookup(runtime: ContainerRuntime): PodLookup {
  return async (namespace, name, uid) => {
    const selector: Record<string, string> = { [POD_NAMESPACE_LABEL]: namespace, [POD_NAME_LABEL]: name };
    if (uid) selector[POD_UID_LABEL] = uid;
    const sandboxes = (await runtime.listPodSandbox({ labelSelector: selector })).sort((a, b) => {
      if (a.state !== b.state) return a.state === 'SANDBOX_READY' ? -1 : 1;
      return b.createdAt - a.createdAt;
    });
    const sandbox = sandboxes[0];
    if (!sandbox) return undefined;
    const podUid = sandbox.labels[POD_UID_LABEL] ?? '';
    const status = await runtime.podSandboxStatus(sandbox.id).catch(() => undefined);
    // Containers of every sandbox of this pod UID (a restarted sandbox keeps the older logs reachable).
    const listed = await runtime.listContainers({ labelSelector: { [POD_UID_LABEL]: podUid } });
    const containers: ContainerRef[] = [];
    for (const c of listed) {
      const st = await runtime.containerStatus(c.id).catch(() => undefined);
      containers.push({
        name: c.labels[CONTAINER_NAME_LABEL] ?? c.metadata.name,
        id: c.id,
        state: st?.status.state ?? c.state,
        attempt: restartCountOf(c),
        createdAt: c.createdAt,
        logPath: st?.status.logPath ?? '',
      });
    }
    containers.sort((a, b) => b.createdAt - a.createdAt);
    const ip = status?.status.network?.ip;
    return { namespace, name, uid: podUid, sandboxId: sandbox.id, ...(ip ? { ip } : {}), containers };
  };
}

/** The node's DNS names and addresses, for the self-signed certificate. */
function nodeSans(nodeName: string, extra: readonly string[]): string[] {
  const sans = new Set<string>(['localhost', '127.0.0.1', '::1', nodeName.toLowerCase()]);
  const host = hostname();
  if (host) sans.add(host.toLowerCase());
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (!a.internal) sans.add(a.address.replace(/%.*$/, ''));
  for (const s of extra) if (s.trim()) sans.add(s.trim());
  return [...sans];
}

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/**
 * The agent's serving certificate in `dir` (`kubelet.crt`, `kubelet.key`), made self-signed
 * (ECDSA P-256, one year, CN `<node>@<unix time>` as the kubelet names it) when missing or expired.
 */
export async function ensureServingCertificate(dir: string, nodeName: string, extraSans: readonly string[] = []): Promise<{ cert: string; key: string }> {
  const certPath = join(dir, 'kubelet.crt');
  const keyPath = join(dir, 'kubelet.key');
  try {
    const cert = await readFile(certPath, 'utf8');
    const key = await readFile(keyPath, 'utf8');
    if (Date.parse(new X509Certificate(cert).validTo) > Date.now() + 86_400_000) return { cert, key };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const sans = nodeSans(nodeName, extraSans);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: webcrypto.getRandomValues(new Uint8Array(16)).reduce((s, b) => s + b.toString(16).padStart(2, '0'), '').replace(/^[89a-f]/, '1'),
    name: `CN=${nodeName.replace(/([,+"\\<>;=])/g, '\\$1')}@${Math.floor(Date.now() / 1000)}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 365 * 86_400_000),
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment | x509.KeyUsageFlags.keyCertSign, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(sans.map((s) => (isIP(s) ? { type: 'ip' as const, value: s } : { type: 'dns' as const, value: s }))),
    ],
  });
  const out = { cert: `${cert.toString('pem')}\n`, key: pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)) };
  await writeFile(certPath, out.cert, { mode: 0o644 });
  await writeFile(keyPath, out.key, { mode: 0o600 });
  return out;
}

/** A parsed agent path. */
type Route =
  | { readonly kind: 'healthz' }
  | { readonly kind: 'containerLogs'; readonly namespace: string; readonly pod: string; readonly container: string }
  | { readonly kind: 'exec' | 'attach'; readonly namespace: string; readonly pod: string; readonly uid?: string; readonly container: string }
  | { readonly kind: 'portForward'; readonly namespace: string; readonly pod: string; readonly uid?: string };

/** Parses a kubelet path; undefined when it is none of the served ones. */
export function parseAgentPath(path: string): Route | undefined {
  if (path === '/healthz') return { kind: 'healthz' };
  const parts = path.split('/').slice(1).map((p) => decodeURIComponent(p));
  if (parts.some((p) => p === '')) return undefined;
  const [head, ns, pod, a, b] = parts;
  if (!ns || !pod) return undefined;
  switch (head) {
    case 'containerLogs':
      return parts.length === 4 ? { kind: 'containerLogs', namespace: ns, pod, container: a! } : undefined;
    case 'exec':
    case 'attach':
      if (parts.length === 4) return { kind: head, namespace: ns, pod, container: a! };
      if (parts.length === 5) return { kind: head, namespace: ns, pod, uid: a!, container: b! };
      return undefined;
    case 'portForward':
      if (parts.length === 3) return { kind: 'portForward', namespace: ns, pod };
      if (parts.length === 4) return { kind: 'portForward', namespace: ns, pod, uid: a! };
      return undefined;
    default:
      return undefined;
  }
}

/** `PodLogOptions` from a query. @throws {HttpError} 400 on a bad value */
function logOptionsOf(query: URLSearchParams): LogOptions & { previous: boolean } {
  const int = (name: string, min: number): number | undefined => {
    const v = query.get(name);
    if (v === null || v === '') return undefined;
    if (!/^-?\d+$/.test(v) || Number(v) < min) throw new HttpError(400, `invalid ${name}: ${v}`);
    return Number(v);
  };
  const sinceTimeText = query.get('sinceTime');
  let sinceTime: Date | undefined;
  if (sinceTimeText) {
    const t = Date.parse(sinceTimeText);
    if (Number.isNaN(t)) throw new HttpError(400, `invalid sinceTime: ${sinceTimeText}`);
    sinceTime = new Date(t);
  }
  const sinceSeconds = int('sinceSeconds', 1);
  const tailLines = int('tailLines', 0);
  const limitBytes = int('limitBytes', 1);
  const stream = query.get('stream');
  if (stream && stream !== 'All' && stream !== 'Stdout' && stream !== 'Stderr') throw new HttpError(400, `invalid stream: ${stream}`);
  return {
    follow: truthy(query.get('follow')),
    previous: truthy(query.get('previous')),
    timestamps: truthy(query.get('timestamps')),
    ...(sinceTime ? { sinceTime } : {}),
    ...(sinceSeconds !== undefined ? { sinceSeconds } : {}),
    ...(tailLines !== undefined ? { tailLines } : {}),
    ...(limitBytes !== undefined ? { limitBytes } : {}),
    ...(stream ? { stream: stream as 'All' | 'Stdout' | 'Stderr' } : {}),
  };
}

/** Writes a plain HTTP error on a raw socket (an upgrade refused). */
function refuseUpgrade(socket: Duplex, status: number, message: string): void {
  const body = `${message}\n`;
  const reason = ({ 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 500: 'Internal Server Error' } as Record<number, string>)[status] ?? 'Error';
  if (!socket.destroyed) socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/** The kubelet's HTTPS server of a node agent. */
export class AgentServer {
  private server?: Server;
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, handleProtocols: (protocols) => this.pickProtocol(protocols) });
  private readonly log: Logger;
  private readonly lookup: PodLookup;
  /** Upgraded connections and open log streams, ended on stop. */
  private readonly live = new Set<Duplex>();
  private readonly aborts = new Set<AbortController>();
  /** `host:port` once listening. */
  address = '';
  /** The port once listening. */
  port = 0;

  /**
   * Upgrades to the SPDY tunnel: `SPDY/3.1+portforward.k8s.io` is not an RFC 6455 token (the `/`),
   * which the ws package refuses in a handshake; so the header is taken off the request and the
   * answer's `Sec-WebSocket-Protocol` added here (Go's gorilla/websocket, kubectl's side, takes it).
   */
  private readonly tunnelRequests = new WeakSet<IncomingMessage>();

  constructor(private readonly options: AgentServerOptions) {
    this.log = options.logger.child({ component: 'agent-server' });
    this.lookup = options.lookup ?? runtimePodLookup(options.runtime);
    this.wss.on('headers', (headers: string[], req: IncomingMessage) => {
      if (this.tunnelRequests.has(req)) headers.push(`Sec-WebSocket-Protocol: ${PORT_FORWARD_TUNNEL_PROTOCOL}`);
    });
  }

  /** Starts listening (making the self-signed certificate first when none was given). */
  async start(): Promise<void> {
    let tls = this.options.tls;
    if (!tls) {
      if (!this.options.certDir) throw new Error('agent server: give either tls or certDir');
      tls = await ensureServingCertificate(this.options.certDir, this.options.nodeName, this.options.sans ?? []);
    }
    const server = createServer({ cert: tls.cert, key: tls.key, ca: this.options.clientCa, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2', requestTimeout: 0 }, (req, res) => void this.onRequest(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.onUpgrade(req, socket, head));
    server.on('connection', (socket: Socket) => {
      this.live.add(socket);
      socket.once('close', () => this.live.delete(socket));
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? DEFAULT_AGENT_PORT, this.options.host ?? '0.0.0.0', () => resolve());
    });
    const a = server.address() as AddressInfo;
    this.port = a.port;
    this.address = `${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`;
    this.log.info({ address: this.address }, `agent server listening on ${this.address}`);
  }

  /** Stops listening and ends every open stream and session. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const a of this.aborts) a.abort();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const ws of this.wss.clients) ws.terminate();
    for (const s of this.live) s.destroy();
    server.closeAllConnections();
    this.wss.close();
    await closed;
  }

  // ---- authentication and authorization ----------------------------------------------------

  private async authenticate(req: IncomingMessage): Promise<UserInfo> {
    const socket = req.socket as TLSSocket;
    if (socket.authorized) {
      const subject = socket.getPeerCertificate()?.subject;
      const cn = subject?.CN;
      const o = subject?.O;
      if (typeof cn === 'string' && cn) {
        const groups = o === undefined ? [] : Array.isArray(o) ? o : [o];
        return { username: cn, groups: [...groups, 'system:authenticated'] };
      }
    }
    const auth = req.headers.authorization;
    const m = auth ? /^Bearer\s+(\S+)\s*$/i.exec(auth) : null;
    if (m && this.options.authenticateToken) {
      const user = await this.options.authenticateToken(m[1]!).catch((err: unknown) => {
        this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'token authentication failed');
        return undefined;
      });
      if (user) return user.groups.includes('system:authenticated') ? user : { ...user, groups: [...user.groups, 'system:authenticated'] };
    }
    throw new HttpError(401, 'Unauthorized');
  }

  private async authorize(user: UserInfo, method: string, path: string): Promise<void> {
    const attributes: AuthorizationAttributes = {
      user,
      verb: verbOf(method),
      isResourceRequest: true,
      path,
      apiGroup: '',
      apiVersion: 'v1',
      namespace: '',
      resource: 'nodes',
      subresource: nodeSubresourceOf(path),
      name: this.options.nodeName,
    };
    let decision: AgentAuthorization;
    try {
      decision = await this.options.authorize(attributes);
    } catch (err) {
      this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'authorization failed');
      throw new HttpError(500, `Authorization error (user=${user.username}, verb=${attributes.verb}, resource=nodes, subresource=${attributes.subresource})`);
    }
    if (!decision.allowed) throw new HttpError(403, `Forbidden (user=${user.username}, verb=${attributes.verb}, resource=nodes, subresource=${attributes.subresource})`);
  }

  // ---- plain requests ------------------------------------------------------------------------

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://agent');
    try {
      const route = parseAgentPath(url.pathname);
      if (route?.kind === 'healthz') {
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('ok');
        return;
      }
      const user = await this.authenticate(req);
      await this.authorize(user, req.method ?? 'GET', url.pathname);
      if (!route) throw new HttpError(404, '404 page not found');
      if (route.kind === 'containerLogs') {
        if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, `method ${req.method} not allowed`);
        await this.containerLogs(route, url.searchParams, req, res);
        return;
      }
      throw new HttpError(400, 'Upgrade request required');
    } catch (err) {
      this.fail(res, err);
    }
  }

  private fail(res: ServerResponse, err: unknown): void {
    const status = err instanceof HttpError ? err.status : 500;
    const message = err instanceof Error ? err.message : String(err);
    if (status === 500) this.log.warn({ err: message }, 'agent request failed');
    if (res.headersSent) {
      res.end();
      return;
    }
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' }).end(`${message}\n`);
  }

  private async findPod(namespace: string, name: string, uid?: string): Promise<PodRef> {
    const pod = await this.lookup(namespace, name, uid);
    if (!pod) throw new HttpError(404, `pod "${name}" in namespace "${namespace}" not found on node "${this.options.nodeName}"`);
    return pod;
  }

  private async containerLogs(route: { namespace: string; pod: string; container: string }, query: URLSearchParams, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const options = logOptionsOf(query);
    const pod = await this.findPod(route.namespace, route.pod);
    const instances = pod.containers.filter((c) => c.name === route.container);
    if (instances.length === 0) throw new HttpError(400, `container "${route.container}" in pod "${route.pod}" is waiting to start: ContainerCreating`);
    const current = instances[0]!;
    let target = current;
    if (options.previous) {
      const previous = instances.find((c) => c !== current && c.state === 'CONTAINER_EXITED');
      if (!previous) throw new HttpError(400, `previous terminated container "${route.container}" in pod "${route.pod}" not found`);
      target = previous;
    } else if (current.state === 'CONTAINER_CREATED') {
      throw new HttpError(400, `container "${route.container}" in pod "${route.pod}" is waiting to start: ContainerCreating`);
    }
    if (!target.logPath) throw new HttpError(500, `the log path of container "${route.container}" is not known`);
    const abort = new AbortController();
    this.aborts.add(abort);
    res.once('close', () => abort.abort());
    req.once('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    const runtime = this.options.runtime;
    const isRunning = async (): Promise<boolean> => {
      try {
        return (await runtime.containerStatus(target.id)).status.state === 'CONTAINER_RUNNING';
      } catch {
        return false;
      }
    };
    try {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-cache' });
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      res.flushHeaders();
      await readContainerLogs({ ...options, follow: options.follow && !options.previous, path: target.logPath, signal: abort.signal, isRunning }, res);
      res.end();
    } catch (err) {
      if (err instanceof LogFileNotFoundError && !res.headersSent) throw new HttpError(404, err.message);
      if (!res.headersSent) throw err;
      this.log.debug({ err: err instanceof Error ? err.message : String(err) }, 'log stream ended with an error');
      res.destroy();
    } finally {
      this.aborts.delete(abort);
    }
  }

  // ---- upgrades: exec, attach, port-forward --------------------------------------------------

  /**
   * Connects an upgraded exec/attach client to the runtime: a v5 client with stdin over SPDY
   * (the only upstream protocol that carries the end of stdin), falling back to a WebSocket
   * bridge (with a fresh session URL: the runtime's are single-use) when the runtime refuses it;
   * everything else over WebSocket.
   */
  private async bridge(ws: WebSocket, url: string, prepare: () => Promise<string>, streams: SessionStreams): Promise<void> {
    let target = url;
    if (ws.protocol === 'v5.channel.k8s.io' && streams.stdin) {
      try {
        await bridgeToRuntimeSpdy({ client: ws, url: target, streams, logger: this.log });
        return;
      } catch (err) {
        this.log.debug({ err: err instanceof Error ? err.message : String(err) }, 'the runtime refused SPDY; falling back to WebSocket');
        try {
          target = await prepare();
        } catch (e) {
          ws.resume();
          ws.send(encodeChannelFrame(Channel.Error, JSON.stringify(failureStatus(e instanceof Error ? e.message : String(e)))));
          ws.close(1000);
          return;
        }
      }
    }
    await bridgeToRuntime({ client: ws, clientProtocol: ws.protocol as ChannelProtocol, url: target, logger: this.log });
  }

  private pickProtocol(offered: Set<string>): string | false {
    return negotiateChannelProtocol(offered) ?? false;
  }

  private async onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    this.live.add(socket);
    socket.once('close', () => this.live.delete(socket));
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'https://agent');
    const method = req.method ?? 'GET';
    try {
      const user = await this.authenticate(req);
      await this.authorize(user, method, url.pathname);
      const route = parseAgentPath(url.pathname);
      if (!route || route.kind === 'healthz' || route.kind === 'containerLogs') throw new HttpError(404, '404 page not found');
      const upgrade = String(req.headers.upgrade ?? '').toLowerCase();
      const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter(Boolean);
      if (route.kind === 'portForward') {
        const pod = await this.findPod(route.namespace, route.pod, route.uid);
        const ports = url.searchParams.getAll('port').map(Number);
        if (ports.some((p) => !Number.isInteger(p) || p <= 0 || p > 65535)) throw new HttpError(400, `invalid port: ${url.searchParams.getAll('port').join(',')}`);
        const dial = (port: number): Promise<Duplex> => (this.options.dialPod ? this.options.dialPod(pod, port) : dialTcp(pod.ip ?? '127.0.0.1', port));
        const common = { dial, podLabel: `${pod.namespace}/${pod.name}`, logger: this.log, ...(ports.length ? { allowedPorts: ports } : {}) };
        if (upgrade === 'websocket') {
          if (!offered.includes(PORT_FORWARD_TUNNEL_PROTOCOL)) throw new HttpError(400, `port-forward over WebSocket needs the subprotocol ${PORT_FORWARD_TUNNEL_PROTOCOL}`);
          delete req.headers['sec-websocket-protocol'];
          this.tunnelRequests.add(req);
          this.wss.handleUpgrade(req, socket, head, (ws) => {
            const stream = createWebSocketStream(ws);
            stream.on('error', () => stream.destroy());
            void servePortForward({ transport: stream, ...common }).finally(() => ws.terminate());
          });
          return;
        }
        if (upgrade === 'spdy/3.1') {
          const versions = String(req.headers['x-stream-protocol-version'] ?? '').split(',').map((v) => v.trim());
          if (!versions.includes(PORT_FORWARD_PROTOCOL)) throw new HttpError(403, `unable to upgrade: unable to negotiate protocol: client supports ${JSON.stringify(versions)}, server supports [${PORT_FORWARD_PROTOCOL}]`);
          socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${PORT_FORWARD_PROTOCOL}\r\n\r\n`);
          if (head.length > 0) socket.unshift(head);
          await servePortForward({ transport: socket, ...common });
          socket.destroy();
          return;
        }
        throw new HttpError(400, `unsupported upgrade: ${upgrade || 'none'}`);
      }
      // exec / attach
      if (upgrade !== 'websocket') throw new HttpError(400, `unable to upgrade: only WebSocket (${['v5.channel.k8s.io', 'v4.channel.k8s.io'].join(', ')}) is served for ${route.kind}`);
      const protocol = negotiateChannelProtocol(offered);
      if (!protocol) throw new HttpError(400, `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(' ')}], server supports [v5.channel.k8s.io v4.channel.k8s.io]`);
      const q = url.searchParams;
      const stdin = truthy(q.get('stdin'));
      const stdout = truthy(q.get('stdout'));
      const stderr = truthy(q.get('stderr'));
      const tty = truthy(q.get('tty'));
      if (!stdin && !stdout && !stderr) throw new HttpError(400, 'you must specify at least 1 of stdin, stdout, stderr');
      const command = q.getAll('command');
      if (route.kind === 'exec' && command.length === 0) throw new HttpError(400, 'you must specify at least one command for the container');
      const pod = await this.findPod(route.namespace, route.pod, route.uid);
      const container = pod.containers.find((c) => c.name === route.container);
      if (!container) throw new HttpError(404, `container not found ("${route.container}")`);
      if (container.state !== 'CONTAINER_RUNNING') throw new HttpError(400, `container ${route.container} is not running`);
      const streams = { stdin, stdout, stderr: stderr && !tty, tty };
      const prepare = async (): Promise<string> => {
        try {
          return route.kind === 'exec'
            ? (await this.options.runtime.exec({ containerId: container.id, cmd: command, ...streams })).url
            : (await this.options.runtime.attach({ containerId: container.id, ...streams })).url;
        } catch (err) {
          throw new HttpError(500, `failed to prepare the ${route.kind} session: ${err instanceof Error ? err.message : String(err)}`);
        }
      };
      const first = await prepare();
      this.wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
        ws.pause();
        void this.bridge(ws, first, prepare, streams);
      });
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 500;
      if (status === 500) this.log.warn({ err: err instanceof Error ? err.message : String(err), path: url.pathname }, 'agent upgrade failed');
      refuseUpgrade(socket, status, err instanceof Error ? err.message : String(err));
    }
  }
}
