/**
 * A small Kubernetes API client for plugins: JSON over HTTPS (keep-alive), Kubernetes `Status`
 * errors as {@link ApiStatusError}, watches as callbacks, and shared informers (one list+watch per
 * path per client). The kernel gives every plugin of a process the same client, authenticated as
 * the process's identity (the API server's loopback identity in the server role).
 *
 * @module
 */
import { Agent, request as httpsRequest } from 'node:https';
import { request as httpRequest, Agent as HttpAgent, type IncomingMessage } from 'node:http';
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
  private readonly informers = new Map<string, Informer>();
  private readonly url: URL;

  constructor(readonly connection: ApiConnection) {
    this.url = new URL(connection.server);
    this.agent = this.url.protocol === 'https:'
      ? new Agent({ keepAlive: true, maxSockets: 64, ...(connection.ca ? { ca: connection.ca } : {}), ...(connection.cert ? { cert: connection.cert, key: connection.key } : {}) })
      : new HttpAgent({ keepAlive: true, maxSockets: 64 });
  }

  /** Sends one request and resolves with the parsed JSON answer (undefined for an empty body). */
  async request<T = KubeObject>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.open(method, path, options);
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString();
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return (text ? JSON.parse(text) : undefined) as T;
    let parsed: Record<string, unknown> | undefined;
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      parsed = undefined;
    }
    throw new ApiStatusError(status, String(parsed?.reason ?? ''), String(parsed?.message ?? (text.slice(0, 200) || `HTTP ${status}`)), parsed);
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
    const res = await this.open('GET', `${path}${sep}watch=true&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(resourceVersion)}`, { signal, timeoutMs: 0 });
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

  /** Stops every informer and closes idle connections. */
  close(): void {
    for (const i of this.informers.values()) i.stop();
    this.informers.clear();
    this.agent.destroy();
  }

  private open(method: string, path: string, options: RequestOptions): Promise<IncomingMessage> {
    const body = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body) headers['content-type'] = options.contentType ?? 'application/json';
    if (this.connection.token) headers.authorization = `Bearer ${this.connection.token}`;
    const send = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = send(new URL(path, this.url), { method, headers, agent: this.agent, ...(options.signal ? { signal: options.signal } : {}) }, resolve);
      const timeoutMs = options.timeoutMs ?? 30_000;
      if (timeoutMs > 0) req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}
