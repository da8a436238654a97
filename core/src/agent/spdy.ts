/**
 * A minimal SPDY/3.1 implementation: what Kubernetes' streaming protocols need (kubectl
 * port-forward, and the SPDY flavour of exec/attach). One {@link SpdyConnection} over a byte
 * stream (a TCP/TLS socket after `Upgrade: SPDY/3.1`, or a WebSocket tunnelling SPDY frames,
 * `SPDY/3.1+portforward.k8s.io`), carrying many {@link SpdyStream}s.
 *
 * Supported frames: SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS,
 * WINDOW_UPDATE and DATA. Header blocks are compressed with one zlib context per direction for
 * the whole connection, primed with SPDY/3's dictionary (draft 3, section 2.6.10.1). Flow control
 * is not enforced (as in the Go spdystream library Kubernetes uses: WINDOW_UPDATE is accepted
 * and ignored, and no stream is ever blocked on a window).
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { constants, createDeflate, createInflate, type Deflate, type Inflate } from 'node:zlib';

/** The SPDY version this module speaks. */
export const SPDY_VERSION = 3;

/** Control frame types (SPDY/3). */
export const FrameType = {
  SynStream: 1,
  SynReply: 2,
  RstStream: 3,
  Settings: 4,
  Ping: 6,
  GoAway: 7,
  Headers: 8,
  WindowUpdate: 9,
} as const;

/** FLAG_FIN (control and data frames). */
export const FLAG_FIN = 0x01;
/** FLAG_UNIDIRECTIONAL (SYN_STREAM). */
export const FLAG_UNIDIRECTIONAL = 0x02;

/** RST_STREAM status codes. */
export const RstStatus = {
  ProtocolError: 1,
  InvalidStream: 2,
  RefusedStream: 3,
  UnsupportedVersion: 4,
  Cancel: 5,
  InternalError: 6,
  FlowControlError: 7,
  StreamInUse: 8,
  StreamAlreadyClosed: 9,
} as const;

/** The largest payload of a frame (24-bit length). */
export const MAX_FRAME_PAYLOAD = 0xffffff;

const DICTIONARY_WORDS = [
  'options', 'head', 'post', 'put', 'delete', 'trace', 'accept', 'accept-charset', 'accept-encoding', 'accept-language',
  'accept-ranges', 'age', 'allow', 'authorization', 'cache-control', 'connection', 'content-base', 'content-encoding',
  'content-language', 'content-length', 'content-location', 'content-md5', 'content-range', 'content-type', 'date', 'etag',
  'expect', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since',
  'last-modified', 'location', 'max-forwards', 'pragma', 'proxy-authenticate', 'proxy-authorization', 'range', 'referer',
  'retry-after', 'server', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'user-agent', 'vary', 'via', 'warning',
  'www-authenticate', 'method', 'get', 'status', '200 OK', 'version', 'HTTP/1.1', 'url', 'public', 'set-cookie', 'keep-alive',
  'origin',
];
const DICTIONARY_TAIL =
  '100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505' +
  '203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized' +
  '403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable' +
  'Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT' +
  'chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,' +
  'text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.';

/**
 * SPDY/3's zlib dictionary for header blocks (a fact of the protocol: each word with a 32-bit
 * big-endian length, then a tail of status lines, dates and media types; 1423 bytes).
 */
export const SPDY_DICTIONARY: Buffer = Buffer.concat([
  ...DICTIONARY_WORDS.map((w) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(w.length);
    return Buffer.concat([len, Buffer.from(w, 'latin1')]);
  }),
  Buffer.from(DICTIONARY_TAIL, 'latin1'),
]);

/** Header names (lower case) to their values; a name may carry several values. */
export type SpdyHeaders = Record<string, string[]>;

/** A decoded SPDY frame. Header blocks are still compressed (`headerBlock`). */
export type SpdyFrame =
  | { readonly type: 'data'; readonly streamId: number; readonly flags: number; readonly data: Buffer }
  | { readonly type: 'syn_stream'; readonly flags: number; readonly streamId: number; readonly associatedId: number; readonly priority: number; readonly headerBlock: Buffer }
  | { readonly type: 'syn_reply'; readonly flags: number; readonly streamId: number; readonly headerBlock: Buffer }
  | { readonly type: 'headers'; readonly flags: number; readonly streamId: number; readonly headerBlock: Buffer }
  | { readonly type: 'rst_stream'; readonly streamId: number; readonly status: number }
  | { readonly type: 'settings'; readonly flags: number; readonly entries: ReadonlyArray<{ readonly flags: number; readonly id: number; readonly value: number }> }
  | { readonly type: 'ping'; readonly id: number }
  | { readonly type: 'goaway'; readonly lastGoodStreamId: number; readonly status: number }
  | { readonly type: 'window_update'; readonly streamId: number; readonly delta: number }
  | { readonly type: 'unknown'; readonly frameType: number };

function controlFrame(type: number, flags: number, payload: Buffer): Buffer {
  if (payload.length > MAX_FRAME_PAYLOAD) throw new Error(`spdy: control frame payload of ${payload.length} bytes is too large`);
  const head = Buffer.alloc(8);
  head.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  head.writeUInt16BE(type, 2);
  head.writeUInt32BE(((flags & 0xff) << 24) | payload.length, 4);
  return Buffer.concat([head, payload]);
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

/** Encodes a frame; header blocks must be compressed already. */
export function encodeFrame(frame: Exclude<SpdyFrame, { type: 'unknown' }>): Buffer {
  switch (frame.type) {
    case 'data': {
      if (frame.data.length > MAX_FRAME_PAYLOAD) throw new Error('spdy: data frame too large');
      const head = Buffer.alloc(8);
      head.writeUInt32BE(frame.streamId & 0x7fffffff, 0);
      head.writeUInt32BE(((frame.flags & 0xff) << 24) | frame.data.length, 4);
      return Buffer.concat([head, frame.data]);
    }
    case 'syn_stream': {
      const fixed = Buffer.alloc(10);
      fixed.writeUInt32BE(frame.streamId & 0x7fffffff, 0);
      fixed.writeUInt32BE(frame.associatedId & 0x7fffffff, 4);
      fixed.writeUInt8((frame.priority & 0x7) << 5, 8);
      fixed.writeUInt8(0, 9);
      return controlFrame(FrameType.SynStream, frame.flags, Buffer.concat([fixed, frame.headerBlock]));
    }
    case 'syn_reply':
      return controlFrame(FrameType.SynReply, frame.flags, Buffer.concat([u32(frame.streamId & 0x7fffffff), frame.headerBlock]));
    case 'headers':
      return controlFrame(FrameType.Headers, frame.flags, Buffer.concat([u32(frame.streamId & 0x7fffffff), frame.headerBlock]));
    case 'rst_stream':
      return controlFrame(FrameType.RstStream, 0, Buffer.concat([u32(frame.streamId & 0x7fffffff), u32(frame.status)]));
    case 'settings': {
      const parts = [u32(frame.entries.length)];
      for (const e of frame.entries) parts.push(u32(((e.flags & 0xff) << 24) | (e.id & 0xffffff)), u32(e.value));
      return controlFrame(FrameType.Settings, frame.flags, Buffer.concat(parts));
    }
    case 'ping':
      return controlFrame(FrameType.Ping, 0, u32(frame.id));
    case 'goaway':
      return controlFrame(FrameType.GoAway, 0, Buffer.concat([u32(frame.lastGoodStreamId & 0x7fffffff), u32(frame.status)]));
    case 'window_update':
      return controlFrame(FrameType.WindowUpdate, 0, Buffer.concat([u32(frame.streamId & 0x7fffffff), u32(frame.delta & 0x7fffffff)]));
  }
}

/** A protocol violation by the peer. */
export class SpdyProtocolError extends Error {
  override readonly name = 'SpdyProtocolError';
}

/**
 * Splits a byte stream into frames: feed it chunks as they come; complete frames come out.
 * @throws {SpdyProtocolError} on a control frame of another SPDY version or a malformed frame
 */
export class FrameReader {
  private buffer: Buffer = Buffer.alloc(0);

  /** Adds bytes; returns the frames they complete. */
  push(chunk: Buffer): SpdyFrame[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const out: SpdyFrame[] = [];
    while (this.buffer.length >= 8) {
      const length = this.buffer.readUInt32BE(4) & 0xffffff;
      if (this.buffer.length < 8 + length) break;
      const frame = this.buffer.subarray(0, 8 + length);
      this.buffer = this.buffer.subarray(8 + length);
      out.push(decodeFrame(frame));
    }
    return out;
  }
}

/** Decodes one whole frame (8-byte head plus payload). */
export function decodeFrame(frame: Buffer): SpdyFrame {
  const first = frame.readUInt32BE(0);
  const flags = frame.readUInt8(4);
  const payload = frame.subarray(8);
  if ((first & 0x80000000) === 0) return { type: 'data', streamId: first & 0x7fffffff, flags, data: Buffer.from(payload) };
  const version = (first >>> 16) & 0x7fff;
  const type = first & 0xffff;
  if (version !== SPDY_VERSION) throw new SpdyProtocolError(`spdy: unsupported version ${version}`);
  const need = (n: number): void => {
    if (payload.length < n) throw new SpdyProtocolError(`spdy: control frame ${type} too short (${payload.length} bytes)`);
  };
  switch (type) {
    case FrameType.SynStream:
      need(10);
      return { type: 'syn_stream', flags, streamId: payload.readUInt32BE(0) & 0x7fffffff, associatedId: payload.readUInt32BE(4) & 0x7fffffff, priority: payload.readUInt8(8) >>> 5, headerBlock: Buffer.from(payload.subarray(10)) };
    case FrameType.SynReply:
      need(4);
      return { type: 'syn_reply', flags, streamId: payload.readUInt32BE(0) & 0x7fffffff, headerBlock: Buffer.from(payload.subarray(4)) };
    case FrameType.Headers:
      need(4);
      return { type: 'headers', flags, streamId: payload.readUInt32BE(0) & 0x7fffffff, headerBlock: Buffer.from(payload.subarray(4)) };
    case FrameType.RstStream:
      need(8);
      return { type: 'rst_stream', streamId: payload.readUInt32BE(0) & 0x7fffffff, status: payload.readUInt32BE(4) };
    case FrameType.Settings: {
      need(4);
      const n = payload.readUInt32BE(0);
      need(4 + n * 8);
      const entries = [];
      for (let i = 0; i < n; i++) {
        const idf = payload.readUInt32BE(4 + i * 8);
        entries.push({ flags: idf >>> 24, id: idf & 0xffffff, value: payload.readUInt32BE(8 + i * 8) });
      }
      return { type: 'settings', flags, entries };
    }
    case FrameType.Ping:
      need(4);
      return { type: 'ping', id: payload.readUInt32BE(0) };
    case FrameType.GoAway:
      need(8);
      return { type: 'goaway', lastGoodStreamId: payload.readUInt32BE(0) & 0x7fffffff, status: payload.readUInt32BE(4) };
    case FrameType.WindowUpdate:
      need(8);
      return { type: 'window_update', streamId: payload.readUInt32BE(0) & 0x7fffffff, delta: payload.readUInt32BE(4) & 0x7fffffff };
    default:
      return { type: 'unknown', frameType: type };
  }
}

/** The uncompressed name/value block of SPDY/3 (32-bit counts and lengths; values joined by NUL). */
export function encodeHeaderBlock(headers: SpdyHeaders): Buffer {
  const entries = Object.entries(headers).filter(([, v]) => v.length > 0);
  const parts: Buffer[] = [u32(entries.length)];
  for (const [name, values] of entries) {
    const n = Buffer.from(name.toLowerCase());
    const v = Buffer.from(values.join('\0'));
    parts.push(u32(n.length), n, u32(v.length), v);
  }
  return Buffer.concat(parts);
}

/** Parses an uncompressed name/value block. @throws {SpdyProtocolError} when malformed */
export function decodeHeaderBlock(block: Buffer): SpdyHeaders {
  const out: SpdyHeaders = {};
  let at = 0;
  const read = (): Buffer => {
    if (at + 4 > block.length) throw new SpdyProtocolError('spdy: truncated header block');
    const len = block.readUInt32BE(at);
    at += 4;
    if (at + len > block.length) throw new SpdyProtocolError('spdy: truncated header block');
    const v = block.subarray(at, at + len);
    at += len;
    return v;
  };
  if (block.length < 4) throw new SpdyProtocolError('spdy: truncated header block');
  const count = block.readUInt32BE(0);
  at = 4;
  for (let i = 0; i < count; i++) {
    const name = read().toString().toLowerCase();
    const values = read().toString().split('\0');
    out[name] = [...(out[name] ?? []), ...values];
  }
  return out;
}

/** Runs async jobs one after the other, in order. */
class Serial {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(job: () => Promise<T>): Promise<T> {
    const next = this.tail.then(job, job);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

/** One direction's header compression: a single zlib stream for the connection, sync-flushed per block. */
export class HeaderCompressor {
  private readonly deflate: Deflate = createDeflate({ dictionary: SPDY_DICTIONARY, level: constants.Z_BEST_COMPRESSION });
  private readonly serial = new Serial();
  private chunks: Buffer[] = [];

  constructor() {
    this.deflate.on('data', (c: Buffer) => this.chunks.push(c));
  }

  /** Compresses one header block (blocks must be compressed in the order they are sent). */
  compress(headers: SpdyHeaders): Promise<Buffer> {
    return this.serial.run(
      () =>
        new Promise<Buffer>((resolve, reject) => {
          this.deflate.write(encodeHeaderBlock(headers));
          this.deflate.flush(constants.Z_SYNC_FLUSH, () => {
            // 'data' events for the flushed output were emitted before the callback.
            setImmediate(() => {
              const out = Buffer.concat(this.chunks);
              this.chunks = [];
              if (out.length === 0) reject(new Error('spdy: header compression produced nothing'));
              else resolve(out);
            });
          });
        }),
    );
  }

  /** Frees the zlib context. */
  close(): void {
    this.deflate.destroy();
  }
}

/** The other direction: one inflate context for the connection. */
export class HeaderDecompressor {
  private readonly inflate: Inflate = createInflate({ dictionary: SPDY_DICTIONARY });
  private readonly serial = new Serial();
  private chunks: Buffer[] = [];
  private failure: Error | undefined;

  constructor() {
    this.inflate.on('data', (c: Buffer) => this.chunks.push(c));
    this.inflate.on('error', (err: Error) => (this.failure = err));
  }

  /** Decompresses and parses one header block. @throws {SpdyProtocolError} on a bad block */
  decompress(block: Buffer): Promise<SpdyHeaders> {
    return this.serial.run(
      () =>
        new Promise<SpdyHeaders>((resolve, reject) => {
          if (this.failure) {
            reject(new SpdyProtocolError(`spdy: header decompression failed: ${this.failure.message}`));
            return;
          }
          const onError = (err: Error): void => reject(new SpdyProtocolError(`spdy: header decompression failed: ${err.message}`));
          this.inflate.once('error', onError);
          this.inflate.write(block);
          this.inflate.flush(constants.Z_SYNC_FLUSH, () => {
            setImmediate(() => {
              this.inflate.off('error', onError);
              if (this.failure) {
                reject(new SpdyProtocolError(`spdy: header decompression failed: ${this.failure.message}`));
                return;
              }
              const raw = Buffer.concat(this.chunks);
              this.chunks = [];
              try {
                resolve(decodeHeaderBlock(raw));
              } catch (err) {
                reject(err as Error);
              }
            });
          });
        }),
    );
  }

  /** Frees the zlib context. */
  close(): void {
    this.inflate.destroy();
  }
}

/**
 * One SPDY stream. Events: `data` (Buffer), `end` (the peer half-closed: FIN), `reset` (status),
 * `close` (both halves done, or reset, or the connection went).
 */
export class SpdyStream extends EventEmitter {
  /** True once this side sent FIN. */
  localClosed = false;
  /** True once the peer sent FIN. */
  remoteClosed = false;
  /** True once reset (either side) or the connection closed. */
  destroyed = false;
  /** The peer's reply headers (streams this side opened). */
  replyHeaders?: SpdyHeaders;

  constructor(
    private readonly connection: SpdyConnection,
    readonly id: number,
    /** The SYN_STREAM headers. */
    readonly headers: SpdyHeaders,
  ) {
    super();
  }

  /** The first value of a SYN_STREAM header. */
  header(name: string): string | undefined {
    return this.headers[name.toLowerCase()]?.[0];
  }

  /** Sends SYN_REPLY (accepting a stream the peer opened). */
  reply(headers: SpdyHeaders = {}, fin = false): Promise<void> {
    if (fin) this.localClosed = true;
    const done = this.connection.sendHeaders('syn_reply', this.id, headers, fin ? FLAG_FIN : 0);
    if (fin) this.maybeClose();
    return done;
  }

  /** Sends data (split into frames as needed). */
  write(data: Buffer): void {
    if (this.localClosed || this.destroyed) return;
    for (let at = 0; at < data.length; at += 65_536) this.connection.sendFrame({ type: 'data', streamId: this.id, flags: 0, data: data.subarray(at, at + 65_536) });
  }

  /** Half-closes this side (an empty DATA frame with FIN). */
  end(): void {
    if (this.localClosed || this.destroyed) return;
    this.localClosed = true;
    this.connection.sendFrame({ type: 'data', streamId: this.id, flags: FLAG_FIN, data: Buffer.alloc(0) });
    this.maybeClose();
  }

  /** Aborts the stream (RST_STREAM). */
  reset(status: number = RstStatus.Cancel): void {
    if (this.destroyed) return;
    this.connection.sendFrame({ type: 'rst_stream', streamId: this.id, status });
    this.destroy();
  }

  /** @internal */
  receive(data: Buffer, fin: boolean): void {
    if (this.destroyed) return;
    if (data.length > 0) this.emit('data', data);
    if (fin) this.remoteFinished();
  }

  /** @internal */
  remoteFinished(): void {
    if (this.remoteClosed) return;
    this.remoteClosed = true;
    this.emit('end');
    this.maybeClose();
  }

  /** @internal: the peer reset it, or the connection closed. */
  destroy(status?: number): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (status !== undefined) this.emit('reset', status);
    this.connection.forget(this.id);
    this.emit('close');
  }

  private maybeClose(): void {
    if (this.localClosed && this.remoteClosed && !this.destroyed) {
      this.destroyed = true;
      this.connection.forget(this.id);
      this.emit('close');
    }
  }
}

/** Options of a {@link SpdyConnection}. */
export interface SpdyConnectionOptions {
  /** 'server' opens even stream ids and answers pings with odd ids; 'client' the reverse. */
  readonly role: 'server' | 'client';
  /** Called for each stream the peer opens (reply to accept it, or reset it). */
  readonly onStream?: (stream: SpdyStream) => void;
}

/**
 * A SPDY/3.1 session over a byte stream. Emits `close` once (the transport ended or errored, or
 * {@link SpdyConnection.close} was called); then every stream is destroyed.
 */
export class SpdyConnection extends EventEmitter {
  private readonly reader = new FrameReader();
  private readonly compressor = new HeaderCompressor();
  private readonly decompressor = new HeaderDecompressor();
  private readonly streams = new Map<number, SpdyStream>();
  private readonly inbound = new Serial();
  private readonly outbound = new Serial();
  private readonly pendingReplies = new Map<number, { resolve: (h: SpdyHeaders) => void; reject: (e: Error) => void }>();
  private nextId: number;
  private closed = false;
  /** The highest stream id the peer opened (for GOAWAY). */
  private lastPeerStream = 0;

  constructor(
    private readonly transport: Duplex,
    private readonly options: SpdyConnectionOptions,
  ) {
    super();
    this.nextId = options.role === 'client' ? 1 : 2;
    transport.on('data', (chunk: Buffer) => this.onData(chunk));
    transport.on('end', () => this.close());
    transport.on('close', () => this.close());
    transport.on('error', () => this.close());
  }

  /** Streams open now. */
  get openStreams(): number {
    return this.streams.size;
  }

  /** Opens a stream (SYN_STREAM) and resolves once the peer replied. */
  async openStream(headers: SpdyHeaders, options: { fin?: boolean } = {}): Promise<SpdyStream> {
    if (this.closed) throw new Error('spdy: the connection is closed');
    const id = this.nextId;
    this.nextId += 2;
    const stream = new SpdyStream(this, id, headers);
    this.streams.set(id, stream);
    if (options.fin) stream.localClosed = true;
    const replied = new Promise<SpdyHeaders>((resolve, reject) => this.pendingReplies.set(id, { resolve, reject }));
    await this.sendHeaders('syn_stream', id, headers, options.fin ? FLAG_FIN : 0);
    stream.replyHeaders = await replied;
    return stream;
  }

  /** Sends a PING (the peer echoes it). */
  ping(id: number): void {
    this.sendFrame({ type: 'ping', id });
  }

  /** Sends GOAWAY and closes the transport. */
  close(status = 0): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.transport.destroyed && this.transport.writable) {
      try {
        this.transport.write(encodeFrame({ type: 'goaway', lastGoodStreamId: this.lastPeerStream, status }));
        this.transport.end();
      } catch {
        // the transport is going anyway
      }
    }
    for (const s of [...this.streams.values()]) s.destroy();
    for (const p of this.pendingReplies.values()) p.reject(new Error('spdy: the connection closed'));
    this.pendingReplies.clear();
    this.compressor.close();
    this.decompressor.close();
    this.emit('close');
  }

  /** @internal: writes a frame after every header block queued before it. */
  sendFrame(frame: Exclude<SpdyFrame, { type: 'unknown' }>): void {
    void this.outbound.run(async () => {
      if (!this.closed && !this.transport.destroyed) this.transport.write(encodeFrame(frame));
    });
  }

  /** @internal: compresses and writes a frame with a header block, in order with other frames. */
  sendHeaders(kind: 'syn_stream' | 'syn_reply' | 'headers', streamId: number, headers: SpdyHeaders, flags: number): Promise<void> {
    return this.outbound.run(async () => {
      if (this.closed) return;
      const headerBlock = await this.compressor.compress(headers);
      const frame = kind === 'syn_stream' ? { type: kind, flags, streamId, associatedId: 0, priority: 0, headerBlock } : { type: kind, flags, streamId, headerBlock };
      if (!this.transport.destroyed) this.transport.write(encodeFrame(frame));
    });
  }

  /** @internal */
  forget(id: number): void {
    this.streams.delete(id);
  }

  private onData(chunk: Buffer): void {
    let frames: SpdyFrame[];
    try {
      frames = this.reader.push(chunk);
    } catch {
      this.close(1);
      return;
    }
    for (const frame of frames) {
      void this.inbound.run(() => this.handle(frame)).catch(() => this.close(1));
    }
  }

  private async handle(frame: SpdyFrame): Promise<void> {
    if (this.closed) return;
    switch (frame.type) {
      case 'data': {
        const s = this.streams.get(frame.streamId);
        if (!s) {
          this.sendFrame({ type: 'rst_stream', streamId: frame.streamId, status: RstStatus.InvalidStream });
          return;
        }
        s.receive(frame.data, (frame.flags & FLAG_FIN) !== 0);
        return;
      }
      case 'syn_stream': {
        const headers = await this.decompressor.decompress(frame.headerBlock);
        if (this.streams.has(frame.streamId)) {
          this.sendFrame({ type: 'rst_stream', streamId: frame.streamId, status: RstStatus.StreamInUse });
          return;
        }
        this.lastPeerStream = Math.max(this.lastPeerStream, frame.streamId);
        const s = new SpdyStream(this, frame.streamId, headers);
        this.streams.set(frame.streamId, s);
        if (this.options.onStream) this.options.onStream(s);
        else s.reset(RstStatus.RefusedStream);
        if ((frame.flags & FLAG_FIN) !== 0) s.remoteFinished();
        return;
      }
      case 'syn_reply': {
        const headers = await this.decompressor.decompress(frame.headerBlock);
        const pending = this.pendingReplies.get(frame.streamId);
        this.pendingReplies.delete(frame.streamId);
        pending?.resolve(headers);
        if ((frame.flags & FLAG_FIN) !== 0) this.streams.get(frame.streamId)?.remoteFinished();
        return;
      }
      case 'headers': {
        await this.decompressor.decompress(frame.headerBlock);
        if ((frame.flags & FLAG_FIN) !== 0) this.streams.get(frame.streamId)?.remoteFinished();
        return;
      }
      case 'rst_stream': {
        const pending = this.pendingReplies.get(frame.streamId);
        this.pendingReplies.delete(frame.streamId);
        pending?.reject(new Error(`spdy: stream ${frame.streamId} was reset (status ${frame.status})`));
        this.streams.get(frame.streamId)?.destroy(frame.status);
        return;
      }
      case 'ping':
        // Echo the peer's pings (odd ids from a client, even from a server); ours come back.
        if ((frame.id % 2 === 1) === (this.options.role === 'server')) this.sendFrame({ type: 'ping', id: frame.id });
        else this.emit('pong', frame.id);
        return;
      case 'goaway':
        this.close();
        return;
      case 'settings':
      case 'window_update':
      case 'unknown':
        return;
    }
  }
}
