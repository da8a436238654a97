/**
 * A small Kubernetes API client for plugins: JSON over HTTPS (keep-alive), Kubernetes `Status`
 * errors as {@link ApiStatusError}, watches as callbacks, and shared informers (one list+watch per
 * path per client). The kernel gives every plugin of a process the same client, authenticated as
 * the process's identity (the API server's loopback identity in the server role).
 *
 * @module
 */
import { Agent, request as httpsRequest } from 'node:https';
import { createSecureContext } from 'node:tls';
import { request as httpRequest, Agent as HttpAgent, type IncomingMessage } from 'node:http';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve as resolvePath, dirname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { Informer } from './informer.js';

/** Where the API server is and how to authenticate to it. */
export interface ApiConnection {
  /** Base URL, `https://host:port`. */
  readonly server: string;
  /** CA bundle (PEM) to verify the server with. */
  readonly ca?: string;
  /** Client certificate and key (PEM). */
  readonly cert?: string;
  readonly key?: string;
  /** Bearer token. */
  readonly token?: string;
  /** A file holding the bearer token, re-read every minute (projected service-account tokens rotate). */
  readonly tokenFile?: string;
  /** The namespace the configuration names (kubeconfig context, or the pod's own in cluster). */
  readonly namespace?: string;
  /**
   * Send requests as plain HTTP over this Unix domain socket instead of to `server` (the API
   * server's owner-only loopback socket, for its own process's plugins); `server` still names the
   * cluster (and `ca` the CA it is known by).
   */
  readonly socketPath?: string;
  /**
   * Send requests through this transport instead of HTTP (the API server's in-process transport,
   * for plugins running in its own process: the same authentication, authorization, admission
   * and validation, without sockets or HTTP framing). `server` still names the cluster.
   */
  readonly transport?: ApiTransport;
}

/** One request through an {@link ApiTransport}. */
export interface TransportRequest {
  readonly method: string;
  /** Path and query, e.g. `/api/v1/namespaces/a/pods?limit=10`. */
  readonly path: string;
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string>>;
  /** The body's JSON (or other) text. */
  readonly body?: string;
  readonly signal?: AbortSignal;
}

/** The answer to a {@link TransportRequest}. */
export interface TransportResponse {
  readonly status: number;
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  readonly body: string;
}

/** A streamed answer (a watch) of an {@link ApiTransport}. */
export interface TransportStream {
  readonly status: number;
  /** The body when the answer is not a stream (an error `Status`). */
  readonly body?: string;
  /** Resolves when the stream ends (the server ended it, or the request's signal aborted). */
  readonly ended: Promise<void>;
}

/**
 * How an {@link ApiClient} reaches an API server when not over HTTP(S). Implementations must give
 * each request the semantics of the HTTP API (the same status codes, headers and bodies), and must
 * not share objects with the caller: bodies cross as text.
 */
export interface ApiTransport {
  /** Sends one request and resolves with the whole answer. */
  request(request: TransportRequest): Promise<TransportResponse>;
  /**
   * Opens a watch (`watch=true` in the path): resolves once the status is known; with a 2xx status,
   * `onEvent` then gets each event (its type and its object's JSON text) until the stream ends.
   */
  watch(request: TransportRequest, onEvent: (type: string, objectJson: string) => void): Promise<TransportStream>;
}

/** Options of the {@link ApiClient}. */
export interface ApiClientOptions {
  /**
   * How many times a request answered 429 or 5xx with a `Retry-After` header is retried after
   * waiting that long (capped at 10 s per wait), as client-go does; default 5. Watches are not.
   */
  readonly maxRetries?: number;
}

/** A Kubernetes `Status` failure returned by the API server. */
export class ApiStatusError extends Error {
  override readonly name = 'ApiStatusError';
  constructor(
    /** The HTTP status code. */
    readonly code: number,
    /** The `Status` reason (`NotFound`, `AlreadyExists`, `Conflict`, `Forbidden`, `Expired`, ...). */
    readonly reason: string,
    message: string,
    /** The whole `Status` object, when the server sent one. */
    readonly status?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** True for a 404 NotFound. */
export const isNotFound = (err: unknown): boolean => err instanceof ApiStatusError && err.code === 404;
/** True for a 409 AlreadyExists. */
export const isAlreadyExists = (err: unknown): boolean => err instanceof ApiStatusError && err.code === 409 && err.reason === 'AlreadyExists';
/** True for a 409 Conflict (stale resourceVersion). */
export const isConflict = (err: unknown): boolean => err instanceof ApiStatusError && err.code === 409 && err.reason === 'Conflict';
/** True for a 410 Gone / Expired (relist). */
export const isGone = (err: unknown): boolean => err instanceof ApiStatusError && err.code === 410;

/** A JSON object of the API. */
export type KubeObject = Record<string, unknown> & {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string>; annotations?: Record<string, string>; [k: string]: unknown };
};

/** One event of a watch. */
export interface WatchEvent<T = KubeObject> {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  readonly object: T;
}

/** A list response. */
export interface KubeList<T = KubeObject> {
  readonly items: T[];
  readonly metadata: { readonly resourceVersion?: string; readonly continue?: string };
}

/** Options of one request. */
export interface RequestOptions {
  readonly body?: unknown;
  readonly contentType?: string;
  /** Milliseconds before the request is abandoned (default 30 s). */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/**
 * The client. Paths are API paths (`/api/v1/namespaces/default/pods`); methods resolve with the
 * parsed JSON and reject with {@link ApiStatusError} for non-2xx answers, or a plain `Error` when
 * the server cannot be reached.
 */
export class ApiClient {
  private readonly agent: Agent | HttpAgent;
  /** Aborted by {@link close}. */
  private readonly closing = new AbortController();
  private readonly informers = new Map<string, Informer>();
  private readonly url: URL;

  private readonly maxRetries: number;
  private tokenCache?: { value: string; read: number };

  constructor(
    readonly connection: ApiConnection,
    options: ApiClientOptions = {},
  ) {
    this.maxRetries = options.maxRetries ?? 5;
    this.url = new URL(connection.socketPath ? 'http://localhost' : connection.server);
    this.agent = this.url.protocol === 'https:'
      ? new Agent({
          keepAlive: true,
          maxSockets: 64,
          // One TLS context for every connection (the PEMs are parsed once, not per socket).
          secureContext: createSecureContext({ ...(connection.ca ? { ca: connection.ca } : {}), ...(connection.cert ? { cert: connection.cert, key: connection.key } : {}) }),
        })
      : new HttpAgent({ keepAlive: true, maxSockets: 64 });
  }

  /** Sends one request and resolves with the parsed JSON answer (undefined for an empty body). */
  async request<T = KubeObject>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (this.closing.signal.aborted) throw new Error(`${method} ${path}: the API client is closed`);
      const { status, headers, body: text } = await this.exchange(method, path, options);
      if (status >= 200 && status < 300) return (text ? JSON.parse(text) : undefined) as T;
      const wait = retryAfterMs(status, headers['retry-after']);
      if (wait !== undefined && attempt < this.maxRetries && !options.signal?.aborted && !this.closing.signal.aborted) {
        await sleep(wait, options.signal, this.closing.signal);
        continue;
      }
      throw statusError(status, text);
    }
  }

  /**
   * A client from a kubeconfig file (`KUBECONFIG`'s first file, else `~/.kube/config`, unless
   * `path` is given), for `context` or the current context: server, CA (file or data), client
   * certificate and key (files or data), token or token file, and the context's namespace.
   */
  static async fromKubeconfig(path?: string, context?: string, options?: ApiClientOptions): Promise<ApiClient> {
    return new ApiClient(await loadKubeconfig(path, context), options);
  }

  /**
   * The in-cluster client of a pod: `KUBERNETES_SERVICE_HOST`/`_PORT`, the projected
   * service-account token (re-read as it rotates), CA and namespace under
   * `/var/run/secrets/kubernetes.io/serviceaccount`.
   */
  static async inCluster(options?: ApiClientOptions, dir = SERVICE_ACCOUNT_DIR): Promise<ApiClient> {
    const host = process.env.KUBERNETES_SERVICE_HOST;
    const port = process.env.KUBERNETES_SERVICE_PORT ?? '443';
    if (!host) throw new Error('not running in a cluster: KUBERNETES_SERVICE_HOST is not set');
    const [ca, namespace] = await Promise.all([readFile(join(dir, 'ca.crt'), 'utf8'), readFile(join(dir, 'namespace'), 'utf8').catch(() => 'default')]);
    return new ApiClient({ server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`, ca, tokenFile: join(dir, 'token'), namespace: namespace.trim() }, options);
  }

  get<T = KubeObject>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  list<T = KubeObject>(path: string): Promise<KubeList<T>> {
    return this.request<KubeList<T>>('GET', path);
  }

  create<T = KubeObject>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, { body });
  }

  update<T = KubeObject>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, { body });
  }

  /** A merge patch (`application/merge-patch+json`). */
  patch<T = KubeObject>(path: string, body: unknown, contentType = 'application/merge-patch+json'): Promise<T> {
    return this.request<T>('PATCH', path, { body, contentType });
  }

  delete<T = KubeObject>(path: string): Promise<T> {
    return this.request<T>('DELETE', path);
  }

  /**
   * Watches `path` from `resourceVersion`, calling `onEvent` for each event, until the server ends
   * the stream or `signal` aborts. Resolves when the stream ends; a 410 arrives as an ERROR event.
   */
  async watch(path: string, resourceVersion: string, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    const sep = path.includes('?') ? '&' : '?';
    const url = `${path}${sep}watch=true&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(resourceVersion)}`;
    const transport = this.connection.transport;
    if (transport) {
      if (this.closing.signal.aborted) throw new Error(`GET ${url}: the API client is closed`);
      const stream = await transport.watch({ method: 'GET', path: url, headers: this.headers(undefined), signal }, (type, json) => onEvent({ type: type as WatchEvent['type'], object: JSON.parse(json) as KubeObject }));
      if (stream.status >= 300) throw new ApiStatusError(stream.status, '', `watch ${path}: HTTP ${stream.status}`);
      // A watch answered at once (a 410 ERROR event for a revision too old) comes as a body.
      for (const line of (stream.body ?? '').split('\n')) if (line.trim()) onEvent(JSON.parse(line) as WatchEvent);
      await stream.ended;
      return;
    }
    const res = await this.open('GET', url, { signal, timeoutMs: 0 });
    if ((res.statusCode ?? 0) >= 300) {
      res.resume();
      throw new ApiStatusError(res.statusCode ?? 0, '', `watch ${path}: HTTP ${res.statusCode}`);
    }
    let buffer = '';
    try {
      for await (const chunk of res) {
        buffer += (chunk as Buffer).toString();
        let nl: number;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, nl);
          buffer = buffer.slice(nl + 1);
          if (line.trim()) onEvent(JSON.parse(line) as WatchEvent);
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
  }

  /** The shared informer of `path` (one per path per client); start it with `run`. */
  informer<T extends KubeObject = KubeObject>(path: string): Informer<T> {
    let informer = this.informers.get(path);
    if (!informer) {
      informer = new Informer(this, path);
      this.informers.set(path, informer);
    }
    return informer as unknown as Informer<T>;
  }

  /**
   * Stops every informer and closes idle connections. Requests made afterwards fail at once, and
   * a request waiting to retry (after a 429 or 5xx) gives up, so a closed client keeps no timer
   * or socket alive.
   */
  close(): void {
    this.closing.abort();
    for (const i of this.informers.values()) i.stop();
    this.informers.clear();
    this.agent.destroy();
  }

  /** The bearer token: the fixed one, or the token file's content (re-read after a minute). */
  private token(): string | undefined {
    if (this.connection.token || !this.connection.tokenFile) return this.connection.token;
    if (!this.tokenCache || Date.now() - this.tokenCache.read > 60_000) {
      try {
        this.tokenCache = { value: readFileSync(this.connection.tokenFile, 'utf8').trim(), read: Date.now() };
      } catch (err) {
        if (!this.tokenCache) throw err;
      }
    }
    return this.tokenCache!.value;
  }

  /** One request and its whole answer, through the transport or over HTTP. */
  private async exchange(method: string, path: string, options: RequestOptions): Promise<TransportResponse> {
    const transport = this.connection.transport;
    if (transport) {
      const body = options.body === undefined ? undefined : JSON.stringify(options.body);
      const headers = this.headers(body === undefined ? undefined : (options.contentType ?? 'application/json'));
      return transport.request({ method, path, headers, ...(body !== undefined ? { body } : {}), ...(options.signal ? { signal: options.signal } : {}) });
    }
    const res = await this.open(method, path, options);
    const text = await new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.once('end', () => resolve(chunks.length === 1 ? chunks[0]!.toString() : Buffer.concat(chunks).toString()));
      res.once('error', reject);
      res.once('aborted', () => reject(new Error(`${method} ${path}: the connection closed before the answer was complete`)));
    });
    return { status: res.statusCode ?? 0, headers: res.headers, body: text };
  }

  private headers(contentType: string | undefined): Record<string, string> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (contentType) headers['content-type'] = contentType;
    const token = this.token();
    if (token) headers.authorization = `Bearer ${token}`;
    return headers;
  }

  private open(method: string, path: string, options: RequestOptions): Promise<IncomingMessage> {
    const body = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const headers = this.headers(body ? (options.contentType ?? 'application/json') : undefined);
    // Node frames a body of a DELETE only with an explicit length.
    if (body) headers['content-length'] = String(body.length);
    const send = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = send(new URL(path, this.url), { method, headers, agent: this.agent, ...(this.connection.socketPath ? { socketPath: this.connection.socketPath } : {}), ...(options.signal ? { signal: options.signal } : {}) }, resolve);
      const timeoutMs = options.timeoutMs ?? 30_000;
      if (timeoutMs > 0) req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}

/** Where a pod finds its service-account credentials. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The {@link ApiStatusError} of a non-2xx answer (its `Status`, or the start of the body). */
function statusError(status: number, text: string): ApiStatusError {
  let parsed: Record<string, unknown> | undefined;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = undefined;
  }
  return new ApiStatusError(status, String(parsed?.reason ?? ''), String(parsed?.message ?? (text.slice(0, 200) || `HTTP ${status}`)), parsed);
}

/** How long to wait before retrying: only 429 and 5xx answers that carry `Retry-After` are retried (client-go's rule). */
function retryAfterMs(status: number, header: string | readonly string[] | undefined): number | undefined {
  if (status !== 429 && status < 500) return undefined;
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return undefined;
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds < 0) return undefined;
  return Math.min(seconds, 10) * 1000;
}

function sleep(ms: number, ...signals: Array<AbortSignal | undefined>): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      for (const s of signals) s?.removeEventListener('abort', done);
      resolve();
    }
    for (const s of signals) s?.addEventListener('abort', done, { once: true });
  });
}

type KubeconfigFile = {
  'current-context'?: string;
  clusters?: Array<{ name: string; cluster: Record<string, string | boolean | undefined> }>;
  users?: Array<{ name: string; user: Record<string, string | undefined> }>;
  contexts?: Array<{ name: string; context: { cluster: string; user: string; namespace?: string } }>;
};

/**
 * Reads a kubeconfig into an {@link ApiConnection}. Relative file paths resolve against the
 * kubeconfig's directory, as kubectl does.
 *
 * @throws {Error} naming what is missing (no such context, cluster or user).
 */
export async function loadKubeconfig(path?: string, context?: string): Promise<ApiConnection> {
  const file = path ?? process.env.KUBECONFIG?.split(':').find(Boolean) ?? join(homedir(), '.kube', 'config');
  const config = (parseYaml(await readFile(file, 'utf8')) ?? {}) as KubeconfigFile;
  const name = context ?? config['current-context'];
  if (!name) throw new Error(`${file}: no current-context and no context given`);
  const ctx = config.contexts?.find((c) => c.name === name)?.context;
  if (!ctx) throw new Error(`${file}: context "${name}" not found`);
  const cluster = config.clusters?.find((c) => c.name === ctx.cluster)?.cluster;
  if (!cluster || typeof cluster.server !== 'string') throw new Error(`${file}: cluster "${ctx.cluster}" of context "${name}" not found or has no server`);
  const user = config.users?.find((u) => u.name === ctx.user)?.user ?? {};
  const base = dirname(resolvePath(file));
  const material = async (data: unknown, path: unknown): Promise<string | undefined> => {
    if (typeof data === 'string') return Buffer.from(data, 'base64').toString('utf8');
    if (typeof path === 'string') return readFile(resolvePath(base, path), 'utf8');
    return undefined;
  };
  const [ca, cert, key] = await Promise.all([
    material(cluster['certificate-authority-data'], cluster['certificate-authority']),
    material(user['client-certificate-data'], user['client-certificate']),
    material(user['client-key-data'], user['client-key']),
  ]);
  return {
    server: cluster.server,
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    ...(user.token ? { token: user.token } : {}),
    ...(user.tokenFile ? { tokenFile: resolvePath(base, user.tokenFile) } : {}),
    ...(ctx.namespace ? { namespace: ctx.namespace } : {}),
  };
}
