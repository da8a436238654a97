/**
 * The API server's way to the node agents (kube-apiserver's kubelet client): the pod
 * subresources `log`, `exec`, `attach` and `portforward`, proxied to the agent of the pod's node
 * over HTTPS with the API server's kubelet-client certificate (`apiserver-kubelet-client`).
 * The agent's serving certificate is not verified (as kube-apiserver without
 * `--kubelet-certificate-authority`).
 *
 * - `GET .../pods/{name}/log`: streamed through (`kubectl logs -f` keeps it open).
 * - `exec`, `attach`, `portforward` (GET or POST with `Upgrade`): the upgrade request is written to
 *   the agent (path rewritten, `Authorization` dropped, the client's `Upgrade`, `Connection`,
 *   `Sec-WebSocket-*` and `X-Stream-Protocol-Version` kept); once the agent answers `101` both
 *   sockets are piped; any other answer is relayed as is. Authorization asks `create` on the
 *   subresource for GET too (the WebSocket upgrade), as Kubernetes 1.31+ does.
 *
 * Over the in-process transport there are no sockets to upgrade: exec/attach/portforward answer
 * 400, and a followed log 400; a plain log is buffered (up to a limit).
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { STATUS_CODES } from 'node:http';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { CertificateSubject, Logger } from '@kubernel/sdk';
import { HttpExchange, type EventSink, type Exchange } from './exchange.js';
import type { Obj } from './resource.js';
import type { RequestInfo } from './request-info.js';
import { ApiError, badRequest, notFound } from './status.js';

/** The pod subresources proxied to the node agent. */
export const STREAMING_SUBRESOURCES = new Set(['exec', 'attach', 'portforward']);
/** Every pod subresource this module serves. */
export const NODE_PROXY_SUBRESOURCES = new Set(['log', 'exec', 'attach', 'portforward']);

/** The agent's port when the node reports none (the kubelet's default). */
const DEFAULT_KUBELET_PORT = 10250;
/** Largest log buffered for an in-process client. */
const LOCAL_LOG_LIMIT = 8 * 1024 * 1024;

/** True for a request this module serves (pods/log, exec, attach, portforward). */
export function isNodeProxyRequest(info: RequestInfo): boolean {
  return info.isResourceRequest && info.apiGroup === '' && info.resource === 'pods' && info.subresource !== undefined && NODE_PROXY_SUBRESOURCES.has(info.subresource) && info.name !== undefined;
}

/**
 * The request info to authorize: exec/attach/portforward need `create` whatever the method
 * (Kubernetes 1.31+ asks `create` for the WebSocket GET as well).
 */
export function streamingRequestInfo(info: RequestInfo): RequestInfo {
  if (isNodeProxyRequest(info) && STREAMING_SUBRESOURCES.has(info.subresource!) && info.verb === 'get') return { ...info, verb: 'create' };
  return info;
}

/** Long-running requests hold no flow-control seat (Kubernetes' long-running check: watch, proxy, log, exec, attach, portforward). */
export function isLongRunning(info: RequestInfo): boolean {
  return info.verb === 'watch' || isNodeProxyRequest(info);
}

/** Where an agent listens. */
export interface NodeEndpoint {
  readonly host: string;
  readonly port: number;
}

/** Settings of the kubelet client. */
export interface KubeletClientOptions {
  /** The API server's client certificate and key (PEM) presented to agents. */
  readonly cert: string;
  readonly key: string;
  /** Address types tried in order (`--kubelet-preferred-address-types`); InternalIP, Hostname, InternalDNS, ExternalIP, ExternalDNS by default. */
  readonly preferredAddressTypes?: readonly string[];
  /** Overrides where a node's agent is reached (an egress seam: tunnels, tests); undefined: from the Node's status. */
  readonly resolve?: (node: Obj) => NodeEndpoint | undefined;
  /** Timeout of connecting to an agent and of its first answer; 30 s by default. */
  readonly timeoutMs?: number;
}

/** What {@link NodeProxy} needs from the API server. */
export interface NodeProxyOptions {
  /** Reads a stored object (`pods` in a namespace, or a `nodes` object). */
  readonly getObject: (resource: 'pods' | 'nodes', namespace: string | undefined, name: string) => Promise<Obj | undefined>;
  readonly logger: Logger;
  /** Absent: every proxied request answers 503. */
  readonly kubelet?: KubeletClientOptions;
}

/** Raw access to an HTTP request, for streaming a body through. */
interface RawHttp {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
}

/** An {@link HttpExchange} whose response the node proxy can stream raw bytes to. */
export class StreamingHttpExchange extends HttpExchange {
  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    unsecured: boolean,
    render: (type: string, object: Obj) => Buffer,
  ) {
    super(req, res, unsecured, render);
    this.raw = { req, res };
  }
  /** The request and response, for the node proxy. */
  readonly raw: RawHttp;
}

/**
 * A request that asked to upgrade the connection (`Connection: Upgrade`): Node hands over the
 * socket instead of a response. Answers are written raw (and close the connection); the node
 * proxy takes the socket over.
 */
export class UpgradeExchange implements Exchange {
  private sent = false;
  private readonly extra: Record<string, string> = {};

  constructor(
    readonly req: IncomingMessage,
    readonly socket: Duplex,
    readonly head: Buffer,
    readonly unsecured: boolean,
  ) {
    socket.on('error', () => socket.destroy());
  }

  get method(): string {
    return this.req.method ?? 'GET';
  }
  get url(): string {
    return this.req.url ?? '/';
  }
  get headers(): IncomingMessage['headers'] {
    return this.req.headers;
  }
  get remoteAddress(): string {
    return this.req.socket.remoteAddress ?? '';
  }
  clientCertificate(): CertificateSubject | undefined {
    const socket = this.req.socket as TLSSocket;
    if (!socket.encrypted || !socket.authorized) return undefined;
    const peer = socket.getPeerCertificate();
    const cn = peer?.subject?.CN;
    const o = peer?.subject?.O;
    if (typeof cn !== 'string' || cn === '') return undefined;
    return { commonName: cn, organizations: o === undefined ? [] : Array.isArray(o) ? o : [o] };
  }
  async readBody(): Promise<Buffer> {
    return Buffer.alloc(0);
  }
  discardBody(): void {}
  get headersSent(): boolean {
    return this.sent;
  }
  setHeader(name: string, value: string): void {
    this.extra[name.toLowerCase()] = value;
  }
  reply(status: number, headers: Record<string, string | string[]>, body: string): void {
    if (this.sent) return;
    this.sent = true;
    const all: Record<string, string | string[]> = { ...this.extra };
    for (const [k, v] of Object.entries(headers)) all[k.toLowerCase()] = v;
    const bytes = Buffer.from(body);
    const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}`];
    for (const [k, v] of Object.entries(all)) for (const x of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${x}`);
    lines.push(`content-length: ${bytes.length}`, 'connection: close', '', '');
    if (!this.socket.destroyed) this.socket.end(Buffer.concat([Buffer.from(lines.join('\r\n')), bytes]));
  }
  end(): void {
    this.sent = true;
    this.socket.destroy();
  }
  stream(): EventSink | undefined {
    this.reply(400, { 'content-type': 'application/json' }, JSON.stringify(badRequest('watch is not served over an upgraded connection').toStatus()));
    return undefined;
  }
  onClose(listener: () => void): () => void {
    this.socket.on('close', listener);
    return () => this.socket.off('close', listener);
  }
  /** Marks the exchange as taken over (no answer is written by the server). */
  takeOver(): void {
    this.sent = true;
  }
}

/** The headers of an upgrade request passed to the agent. */
const FORWARDED_HEADERS = ['upgrade', 'connection', 'sec-websocket-key', 'sec-websocket-version', 'sec-websocket-protocol', 'x-stream-protocol-version', 'user-agent'];

const REASONS: Record<number, string> = { 400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 405: 'MethodNotAllowed', 409: 'Conflict', 500: 'InternalError', 503: 'ServiceUnavailable', 504: 'Timeout' };

interface PodSpecLike {
  readonly nodeName?: string;
  readonly containers?: ReadonlyArray<{ readonly name: string }>;
  readonly initContainers?: ReadonlyArray<{ readonly name: string }>;
  readonly ephemeralContainers?: ReadonlyArray<{ readonly name: string }>;
}

/** Proxies pod log/exec/attach/portforward requests to node agents. */
export class NodeProxy {
  private readonly live = new Set<Duplex>();
  private readonly aborts = new Set<AbortController>();
  private readonly log: Logger;

  constructor(private readonly options: NodeProxyOptions) {
    this.log = options.logger.child({ component: 'node-proxy' });
  }

  /** Ends every proxied stream and session (the API server is stopping). */
  close(): void {
    for (const a of this.aborts) a.abort();
    for (const s of this.live) s.destroy();
    this.live.clear();
  }

  /**
   * Serves an authorized pods/log, exec, attach or portforward request; resolves with the
   * status code (101 once an upgrade is relayed; a log stream resolves when it ends).
   * @throws {ApiError} for a missing pod or node, a bad container, an unreachable agent
   */
  async serve(ex: Exchange, info: RequestInfo, query: URLSearchParams): Promise<number> {
    const sub = info.subresource!;
    if (sub === 'log') {
      if (ex.method !== 'GET' && ex.method !== 'HEAD') throw new ApiError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource (${ex.method.toLowerCase()} pods/log)`);
    } else if (ex.method !== 'GET' && ex.method !== 'POST') {
      throw new ApiError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource (${ex.method.toLowerCase()} pods/${sub})`);
    }
    const kubelet = this.options.kubelet;
    const pod = await this.options.getObject('pods', info.namespace, info.name!);
    if (!pod) throw notFound('pods', '', info.name!);
    const spec = (pod.spec ?? {}) as PodSpecLike;
    const name = info.name!;
    const agentQuery = new URLSearchParams(query);
    let agentPath: string;
    const ns = encodeURIComponent(info.namespace ?? '');
    const podName = encodeURIComponent(name);
    if (sub === 'portforward') {
      agentPath = `/portForward/${ns}/${podName}`;
      for (const p of query.getAll('ports')) for (const port of p.split(',')) agentQuery.append('port', port.trim());
      agentQuery.delete('ports');
    } else {
      const container = this.containerOf(name, spec, query.get('container'));
      agentQuery.delete('container');
      agentQuery.delete('insecureSkipTLSVerifyBackend');
      const head = sub === 'log' ? 'containerLogs' : sub;
      agentPath = `/${head}/${ns}/${podName}/${encodeURIComponent(container)}`;
    }
    if (!spec.nodeName) throw badRequest(`pod ${name} does not have a host assigned`);
    if (!kubelet) throw new ApiError(503, 'ServiceUnavailable', 'the API server has no kubelet client certificate configured: it cannot reach node agents');
    const node = await this.options.getObject('nodes', undefined, spec.nodeName);
    if (!node) throw notFound('nodes', '', spec.nodeName);
    const endpoint = kubelet.resolve?.(node) ?? endpointOf(node, kubelet.preferredAddressTypes);
    if (!endpoint) throw new ApiError(500, 'InternalError', `Internal error occurred: no preferred addresses found; known addresses: ${JSON.stringify(((node.status as { addresses?: unknown } | undefined)?.addresses) ?? [])}`);
    const qs = agentQuery.toString();
    const path = `${agentPath}${qs ? `?${qs}` : ''}`;
    if (sub === 'log') return this.proxyLog(ex, endpoint, path, query.get('follow') === 'true' || query.get('follow') === '1', kubelet);
    if (!(ex instanceof UpgradeExchange)) {
      if (ex instanceof HttpExchange) throw badRequest('Upgrade request required');
      throw badRequest(`pods/${sub} needs an upgraded HTTP connection (WebSocket or SPDY); the in-process transport cannot carry it`);
    }
    return this.proxyUpgrade(ex, endpoint, path, kubelet);
  }

  /** The container a request is about: the named one, or the only one. @throws {ApiError} 400 */
  private containerOf(pod: string, spec: PodSpecLike, requested: string | null): string {
    const containers = (spec.containers ?? []).map((c) => c.name);
    const init = (spec.initContainers ?? []).map((c) => c.name);
    const ephemeral = (spec.ephemeralContainers ?? []).map((c) => c.name);
    if (requested) {
      if (![...containers, ...init, ...ephemeral].includes(requested)) throw badRequest(`container ${requested} is not valid for pod ${pod}`);
      return requested;
    }
    if (containers.length === 1) return containers[0]!;
    const choices = `choose one of: [${containers.join(' ')}]${init.length ? ` or one of the init containers: [${init.join(' ')}]` : ''}${ephemeral.length ? ` or one of the ephemeral containers: [${ephemeral.join(' ')}]` : ''}`;
    throw badRequest(`a container name must be specified for pod ${pod}, ${choices}`);
  }

  private async proxyLog(ex: Exchange, endpoint: NodeEndpoint, path: string, follow: boolean, kubelet: KubeletClientOptions): Promise<number> {
    const raw = ex instanceof StreamingHttpExchange ? ex.raw : undefined;
    if (!raw && follow) throw badRequest('following a log (follow=true) needs an HTTP connection; the in-process transport cannot stream it');
    const abort = new AbortController();
    this.aborts.add(abort);
    const offClose = ex.onClose(() => abort.abort());
    try {
      const upstream = await new Promise<IncomingMessage>((resolve, reject) => {
        const req = httpsRequest({ host: endpoint.host, port: endpoint.port, path, method: 'GET', cert: kubelet.cert, key: kubelet.key, rejectUnauthorized: false, agent: false, signal: abort.signal, timeout: kubelet.timeoutMs ?? 30_000 }, resolve);
        req.on('timeout', () => req.destroy(new Error('timed out waiting for the agent')));
        req.on('error', reject);
        req.end();
      }).catch((err: unknown) => {
        throw new ApiError(500, 'InternalError', `Get "https://${endpoint.host}:${endpoint.port}${path}": ${err instanceof Error ? err.message : String(err)}`);
      });
      const status = upstream.statusCode ?? 500;
      if (status !== 200) {
        const text = (await readAll(upstream, 64 * 1024)).toString().trim();
        throw new ApiError(status, REASONS[status] ?? 'InternalError', text || `the agent answered ${status}`);
      }
      if (!raw) {
        const body = await readAll(upstream, LOCAL_LOG_LIMIT);
        ex.reply(200, { 'content-type': 'text/plain' }, body.toString());
        return 200;
      }
      const { res } = raw;
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-cache, private', 'transfer-encoding': 'chunked' });
      res.flushHeaders();
      await new Promise<void>((resolve) => {
        upstream.on('data', (chunk: Buffer) => {
          if (!res.write(chunk)) {
            upstream.pause();
            res.once('drain', () => upstream.resume());
          }
        });
        upstream.on('end', resolve);
        upstream.on('error', resolve);
        upstream.on('close', resolve);
        res.on('close', () => {
          upstream.destroy();
          resolve();
        });
      });
      if (!res.writableEnded) res.end();
      return 200;
    } finally {
      offClose();
      this.aborts.delete(abort);
    }
  }

  private proxyUpgrade(ex: UpgradeExchange, endpoint: NodeEndpoint, path: string, kubelet: KubeletClientOptions): Promise<number> {
    const client = ex.socket;
    return new Promise<number>((resolve, reject) => {
      const agent = tlsConnect({ host: endpoint.host, port: endpoint.port, cert: kubelet.cert, key: kubelet.key, rejectUnauthorized: false, ...(isHostname(endpoint.host) ? { servername: endpoint.host } : {}) });
      let settled = false;
      const timer = setTimeout(() => fail(new Error('timed out waiting for the agent')), kubelet.timeoutMs ?? 30_000);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        agent.destroy();
        if (settled) {
          client.destroy();
          return;
        }
        settled = true;
        this.log.debug({ endpoint, path, err: err.message }, 'upgrade to the node agent failed');
        reject(new ApiError(500, 'InternalError', `error dialing the node agent at ${endpoint.host}:${endpoint.port}: ${err.message}`));
      };
      agent.once('error', fail);
      agent.once('secureConnect', () => {
        const lines = [`${ex.method} ${path} HTTP/1.1`, `host: ${endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`];
        for (const name of FORWARDED_HEADERS) {
          const v = ex.headers[name];
          for (const x of Array.isArray(v) ? v : v === undefined ? [] : [v]) lines.push(`${name}: ${x}`);
        }
        agent.write(`${lines.join('\r\n')}\r\n\r\n`);
        if (ex.head.length > 0) agent.write(ex.head);
      });
      let buffered = Buffer.alloc(0);
      const onHead = (chunk: Buffer): void => {
        buffered = Buffer.concat([buffered, chunk]);
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) {
          if (buffered.length > 64 * 1024) fail(new Error('the agent sent an oversized response head'));
          return;
        }
        agent.off('data', onHead);
        clearTimeout(timer);
        settled = true;
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(buffered.subarray(0, end).toString('latin1'))?.[1] ?? 0);
        ex.takeOver();
        this.live.add(client);
        this.live.add(agent);
        const cleanup = (): void => {
          this.live.delete(client);
          this.live.delete(agent);
          client.destroy();
          agent.destroy();
        };
        client.on('close', cleanup);
        agent.on('close', cleanup);
        agent.on('error', cleanup);
        client.on('error', cleanup);
        // Relay the agent's answer as is: the 101 and what follows it, or an error answer.
        client.write(buffered);
        if (status === 101) {
          agent.pipe(client);
          client.pipe(agent);
        } else {
          agent.pipe(client);
          client.resume();
        }
        resolve(status || 502);
      };
      agent.on('data', onHead);
      agent.once('close', () => {
        if (!settled) fail(new Error('the agent closed the connection'));
      });
    });
  }
}

const isHostname = (host: string): boolean => !/^[\d.]+$/.test(host) && !host.includes(':');

/** An agent's endpoint from its Node: the first address of a preferred type, and the daemon port. */
export function endpointOf(node: Obj, preferred: readonly string[] = ['InternalIP', 'Hostname', 'InternalDNS', 'ExternalIP', 'ExternalDNS']): NodeEndpoint | undefined {
  const status = (node.status ?? {}) as { addresses?: ReadonlyArray<{ type?: string; address?: string }>; daemonEndpoints?: { kubeletEndpoint?: { Port?: number } } };
  const addresses = status.addresses ?? [];
  const port = status.daemonEndpoints?.kubeletEndpoint?.Port || DEFAULT_KUBELET_PORT;
  for (const type of preferred) {
    const a = addresses.find((x) => x.type === type && x.address);
    if (a) return { host: a.address!, port };
  }
  return undefined;
}

function readAll(stream: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        stream.destroy();
        reject(new ApiError(500, 'InternalError', `the agent's answer is larger than ${limit} bytes`));
        return;
      }
      chunks.push(c);
    });
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}
