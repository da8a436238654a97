/**
 * One request and its answer, whatever carried it: HTTP(S) from a client, or the in-process
 * transport the API server gives plugins of its own process ({@link LocalTransport}). The API
 * server handles both the same way (authentication, authorization, flow control, admission,
 * validation, audit, metrics); only the framing differs.
 *
 * @module
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { ApiTransport, CertificateSubject, TransportRequest, TransportResponse, TransportStream } from '@kubernel/sdk';
import { readBody } from './body.js';
import type { Obj } from './resource.js';
import { tooLarge } from './status.js';

/** Where a watch's events go. */
export interface EventSink {
  /** Sends one event; false when the consumer wants no more until {@link EventSink.onDrain} fires. */
  write(type: string, object: Obj): boolean;
  /** Calls `listener` whenever a paused consumer can take events again; returns the unsubscribe. */
  onDrain(listener: () => void): () => void;
  /** Ends the stream. */
  end(): void;
}

/** A request being served. */
export interface Exchange {
  readonly method: string;
  /** Path and query. */
  readonly url: string;
  /** Header names in lower case. */
  readonly headers: IncomingHttpHeaders;
  /** The peer's address ('' when there is none, as on a Unix socket or in process). */
  readonly remoteAddress: string;
  /** True on the explicitly enabled insecure port: every request runs as system:unsecured. */
  readonly unsecured: boolean;
  /** The verified client certificate's subject (TLS only). */
  clientCertificate(): CertificateSubject | undefined;
  /** The body, up to `limit` bytes. @throws {ApiError} 413 past the limit */
  readBody(limit: number): Promise<Buffer>;
  /** Lets a body that was not read go, so a keep-alive connection stays usable. */
  discardBody(): void;
  /** True once the answer's head is out (a reply or a stream). */
  readonly headersSent: boolean;
  /** Sets a header of the coming reply. */
  setHeader(name: string, value: string): void;
  /** Sends the whole answer. */
  reply(status: number, headers: Record<string, string | string[]>, body: string): void;
  /** Ends an answer whose head is out (a stream that failed). */
  end(): void;
  /** Starts a 200 stream of watch events; undefined when the client has already gone. */
  stream(headers: Record<string, string>): EventSink | undefined;
  /** Calls `listener` when the client goes away; returns the unsubscribe. */
  onClose(listener: () => void): () => void;
}

const CRLF = Buffer.from('\r\n');

/** An HTTP/1.1 chunk (`<hex length>\r\n<data>\r\n`) of `line`. */
export function chunkOf(line: string): Buffer {
  const body = Buffer.from(line);
  return Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, CRLF]);
}

const peerSubjects = new WeakMap<object, CertificateSubject | null>();

/** The verified client certificate's subject of a TLS connection (parsed once per connection). */
function clientCertificateOf(socket: TLSSocket): CertificateSubject | undefined {
  if (!socket.encrypted) return undefined;
  let subject = peerSubjects.get(socket);
  if (subject === undefined) {
    subject = null;
    if (socket.authorized) {
      const peer = socket.getPeerCertificate();
      const cn = peer?.subject?.CN;
      const o = peer?.subject?.O;
      if (typeof cn === 'string' && cn !== '') subject = { commonName: cn, organizations: o === undefined ? [] : Array.isArray(o) ? o : [o] };
    }
    peerSubjects.set(socket, subject);
  }
  return subject ?? undefined;
}

/**
 * A request over HTTP(S). Watch events are written straight to the socket as ready-framed chunks
 * (`render` gives each event's chunk, shared by every watcher of it): one write per event.
 */
export class HttpExchange implements Exchange {
  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    readonly unsecured: boolean,
    private readonly render: (type: string, object: Obj) => Buffer,
  ) {}

  get method(): string {
    return this.req.method ?? 'GET';
  }
  get url(): string {
    return this.req.url ?? '/';
  }
  get headers(): IncomingHttpHeaders {
    return this.req.headers;
  }
  get remoteAddress(): string {
    return this.req.socket.remoteAddress ?? '';
  }
  clientCertificate(): CertificateSubject | undefined {
    return clientCertificateOf(this.req.socket as TLSSocket);
  }
  readBody(limit: number): Promise<Buffer> {
    return readBody(this.req, limit);
  }
  discardBody(): void {
    if (!this.req.complete && !this.req.readableFlowing) this.req.resume();
  }
  get headersSent(): boolean {
    return this.res.headersSent;
  }
  setHeader(name: string, value: string): void {
    this.res.setHeader(name, value);
  }
  reply(status: number, headers: Record<string, string | string[]>, body: string): void {
    this.res.writeHead(status, headers);
    this.res.end(body);
  }
  end(): void {
    this.res.end();
  }
  stream(headers: Record<string, string>): EventSink | undefined {
    const { res } = this;
    res.writeHead(200, { ...headers, 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const socket = res.socket;
    if (!socket || socket.destroyed) {
      res.end();
      return undefined;
    }
    return {
      write: (type, object) => socket.write(this.render(type, object)),
      onDrain: (listener) => {
        socket.on('drain', listener);
        return () => socket.off('drain', listener);
      },
      end: () => res.end(),
    };
  }
  onClose(listener: () => void): () => void {
    this.req.on('close', listener);
    return () => this.req.off('close', listener);
  }
}

/** What the API server offers an in-process exchange: its request handler and JSON text of objects. */
export interface LocalServer {
  handle(exchange: Exchange): Promise<void>;
  /** The JSON text of an object (cached for the watch cache's shared objects). */
  json(object: Obj): string;
}

/**
 * A request from a plugin in the API server's own process: no socket, no HTTP framing; bodies
 * cross as text, so caller and server never share objects. Authentication is the request's
 * `authorization` header, as over HTTP.
 */
class LocalExchange implements Exchange {
  readonly headers: IncomingHttpHeaders;
  readonly remoteAddress = '';
  readonly unsecured = false;
  private readonly extra: Record<string, string> = {};
  private sent = false;
  /** The client went away (its signal aborted): nothing more reaches it. */
  private aborted = false;
  /** The server ended the answer. */
  private finished = false;
  private readonly closeListeners = new Set<() => void>();
  private endStream?: () => void;

  constructor(
    private readonly request: TransportRequest,
    private readonly server: LocalServer,
    private readonly answer: (response: TransportResponse) => void,
    private readonly streamed?: { opened: (stream: TransportStream) => void; onEvent: (type: string, json: string) => void },
  ) {
    this.headers = { ...request.headers };
    request.signal?.addEventListener('abort', () => this.abort(), { once: true });
  }

  get method(): string {
    return this.request.method;
  }
  get url(): string {
    return this.request.path;
  }
  clientCertificate(): CertificateSubject | undefined {
    return undefined;
  }
  async readBody(limit: number): Promise<Buffer> {
    const body = Buffer.from(this.request.body ?? '');
    if (body.length > limit) throw tooLarge(limit);
    return body;
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
    this.finished = true;
    const all: Record<string, string | string[]> = { ...this.extra };
    for (const [k, v] of Object.entries(headers)) all[k.toLowerCase()] = v;
    if (this.streamed) this.streamed.opened({ status, body, ended: Promise.resolve() });
    else this.answer({ status, headers: all, body });
  }
  end(): void {
    if (!this.sent) {
      this.reply(500, {}, '');
      return;
    }
    if (this.finished) return;
    this.finished = true;
    // After the events already queued (microtasks run in order).
    queueMicrotask(() => this.endStream?.());
  }
  stream(): EventSink | undefined {
    const streamed = this.streamed;
    if (!streamed || this.sent) return undefined;
    this.sent = true;
    if (this.aborted) {
      this.finished = true;
      streamed.opened({ status: 200, ended: Promise.resolve() });
      return undefined;
    }
    const ended = new Promise<void>((resolve) => (this.endStream = resolve));
    streamed.opened({ status: 200, ended });
    // Events reach the client after the store's delivery loop has returned (in a microtask, as
    // a socket would), never re-entering the watch cache from the client's handlers.
    let queue: Array<[string, string]> = [];
    const flush = (): void => {
      const batch = queue;
      queue = [];
      for (const [type, json] of batch) if (!this.aborted) streamed.onEvent(type, json);
    };
    return {
      write: (type, object) => {
        if (this.aborted || this.finished) return true;
        if (queue.length === 0) queueMicrotask(flush);
        queue.push([type, this.server.json(object)]);
        return true;
      },
      onDrain: () => () => undefined,
      end: () => this.end(),
    };
  }
  onClose(listener: () => void): () => void {
    if (this.aborted) {
      listener();
      return () => undefined;
    }
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  private abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const listeners = [...this.closeListeners];
    this.closeListeners.clear();
    for (const l of listeners) l();
    this.endStream?.();
  }
}

/** The {@link ApiTransport} the API server gives plugins of its own process. */
export class LocalTransport implements ApiTransport {
  constructor(private readonly server: LocalServer) {}

  request(request: TransportRequest): Promise<TransportResponse> {
    return new Promise<TransportResponse>((resolve, reject) => {
      if (request.signal?.aborted) {
        reject(new Error(`${request.method} ${request.path}: aborted`));
        return;
      }
      request.signal?.addEventListener('abort', () => reject(new Error(`${request.method} ${request.path}: aborted`)), { once: true });
      void this.server.handle(new LocalExchange(request, this.server, resolve));
    });
  }

  watch(request: TransportRequest, onEvent: (type: string, objectJson: string) => void): Promise<TransportStream> {
    return new Promise<TransportStream>((resolve) => {
      if (request.signal?.aborted) {
        resolve({ status: 200, ended: Promise.resolve() });
        return;
      }
      void this.server.handle(new LocalExchange(request, this.server, () => undefined, { opened: resolve, onEvent }));
    });
  }
}
