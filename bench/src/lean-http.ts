/**
 * A lean HTTP/1.1 keep-alive client for load generation: raw sockets, one request in flight per
 * connection, responses framed by Content-Length (or chunked encoding) without a general parser.
 * Client, server and nats-server share the machine's cores in these benchmarks, so the load
 * generator's own CPU per request must stay small: this costs a fraction of what undici or
 * node:http do per request, in the spirit of `wrk`.
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

/** TLS material: the CA to trust and the client certificate to present. */
export interface LeanTls {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export interface LeanResponse {
  readonly status: number;
  readonly body: string;
}

interface Pending {
  readonly head: Buffer;
  readonly body: Buffer | undefined;
  readonly resolve: (r: LeanResponse) => void;
  readonly reject: (e: Error) => void;
}

const HEADER_END = Buffer.from('\r\n\r\n');

/** One keep-alive connection; `busy` while a request is out. */
class Connection {
  private socket: Socket;
  private buffer: Buffer = Buffer.alloc(0);
  private current: Pending | undefined;
  private closed = false;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly onIdle: (c: Connection) => void,
    private readonly tls: LeanTls | undefined,
  ) {
    this.socket = this.open();
  }

  get busy(): boolean {
    return this.current !== undefined;
  }

  private open(): Socket {
    const socket: Socket = this.tls
      ? tlsConnect({ host: this.host, port: this.port, ...this.tls, servername: 'localhost' }).setNoDelay(true)
      : connect({ host: this.host, port: this.port, noDelay: true });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => {
      if (this.closed) return;
      this.fail(new Error('connection closed by the server'));
      this.buffer = Buffer.alloc(0);
      this.socket = this.open();
    });
    return socket;
  }

  send(p: Pending): void {
    this.current = p;
    if (p.body) this.socket.write(Buffer.concat([p.head, p.body]));
    else this.socket.write(p.head);
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private fail(err: Error): void {
    const p = this.current;
    this.current = undefined;
    p?.reject(err);
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const end = this.buffer.indexOf(HEADER_END);
    if (end < 0) return;
    const head = this.buffer.toString('latin1', 0, end);
    const status = Number(head.slice(9, 12));
    const lower = head.toLowerCase();
    const at = lower.indexOf('\r\ncontent-length:');
    let body: Buffer;
    let consumed: number;
    if (at >= 0) {
      const lineEnd = lower.indexOf('\r\n', at + 2);
      const length = parseInt(lower.slice(at + 17, lineEnd < 0 ? undefined : lineEnd), 10);
      if (this.buffer.length < end + 4 + length) return;
      body = this.buffer.subarray(end + 4, end + 4 + length);
      consumed = end + 4 + length;
    } else if (lower.includes('\r\ntransfer-encoding: chunked')) {
      const parts: Buffer[] = [];
      let pos = end + 4;
      for (;;) {
        const lineEnd = this.buffer.indexOf('\r\n', pos);
        if (lineEnd < 0) return;
        const size = parseInt(this.buffer.toString('latin1', pos, lineEnd), 16);
        if (this.buffer.length < lineEnd + 2 + size + 2) return;
        if (size === 0) {
          consumed = lineEnd + 4;
          break;
        }
        parts.push(this.buffer.subarray(lineEnd + 2, lineEnd + 2 + size));
        pos = lineEnd + 2 + size + 2;
      }
      body = Buffer.concat(parts);
    } else {
      body = Buffer.alloc(0);
      consumed = end + 4;
    }
    const text = body.toString();
    this.buffer = this.buffer.length === consumed ? Buffer.alloc(0) : this.buffer.subarray(consumed);
    const p = this.current;
    this.current = undefined;
    p?.resolve({ status, body: text });
    this.onIdle(this);
  }
}

/** A fixed pool of lean keep-alive connections to one server; requests queue for a free one. */
export class LeanPool {
  private readonly idle: Connection[] = [];
  private readonly all: Connection[] = [];
  private readonly queue: Pending[] = [];
  private readonly hostHeader: string;

  constructor(base: string, connections: number, tls?: LeanTls) {
    const url = new URL(base);
    this.hostHeader = url.host;
    for (let i = 0; i < connections; i++) {
      const c = new Connection(url.hostname, Number(url.port), (conn) => this.release(conn), url.protocol === 'https:' ? tls : undefined);
      this.all.push(c);
      this.idle.push(c);
    }
  }

  /** Sends one request; resolves with the status and the body as text. */
  request(method: string, path: string, body?: string, contentType = 'application/json'): Promise<LeanResponse> {
    const payload = body === undefined ? undefined : Buffer.from(body);
    const head = Buffer.from(
      `${method} ${path} HTTP/1.1\r\nHost: ${this.hostHeader}\r\nAccept: application/json\r\n` +
        (payload ? `Content-Type: ${contentType}\r\nContent-Length: ${payload.length}\r\n` : '') +
        '\r\n',
      'latin1',
    );
    return new Promise<LeanResponse>((resolve, reject) => {
      const p: Pending = { head, body: payload, resolve, reject };
      const c = this.idle.pop();
      if (c) c.send(p);
      else this.queue.push(p);
    });
  }

  private release(c: Connection): void {
    const next = this.queue.shift();
    if (next) c.send(next);
    else this.idle.push(c);
  }

  /** Closes every connection. */
  close(): void {
    for (const c of this.all) c.close();
  }
}
