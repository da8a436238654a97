/**
 * The stream protocols of `kubectl exec`, `attach` and `port-forward`, as the kubelet serves them.
 *
 * - exec/attach over WebSocket, the channel protocols (`*.channel.k8s.io`): each binary message is
 *   one channel byte followed by data. Channels: 0 stdin, 1 stdout, 2 stderr, 3 error (from
 *   `v4.channel.k8s.io` on, a JSON `Status`: `Success`, or `Failure` with reason `NonZeroExitCode`
 *   and the exit code as the `ExitCode` cause), 4 resize (a JSON `{"Width":..,"Height":..}`).
 *   `v5.channel.k8s.io` (KEP-4006, what kubectl 1.30+ asks for first) adds channel 255, "close":
 *   its one data byte names the channel the client closed (stdin: end of input).
 * - port-forward (kubectl 1.31+ asks first for a WebSocket with the subprotocol
 *   `SPDY/3.1+portforward.k8s.io`, whose binary messages are a plain byte stream carrying SPDY
 *   frames; older clients upgrade to `SPDY/3.1` with `X-Stream-Protocol-Version:
 *   portforward.k8s.io`): inside SPDY, a pair of streams per forwarded connection, one with header
 *   `streamType: error` and one with `streamType: data`, sharing `port` and `requestID` headers.
 *
 * This module has the framing and the bridging; {@link AgentServer} the HTTP side.
 *
 * @module
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Duplex } from 'node:stream';
import WebSocket from 'ws';
import type { Logger } from '@kubernel/sdk';
import { RstStatus, SpdyConnection, type SpdyStream } from './spdy.js';

/** Channel numbers of the channel protocols. */
export const Channel = { Stdin: 0, Stdout: 1, Stderr: 2, Error: 3, Resize: 4, Close: 255 } as const;

/** WebSocket subprotocols of exec/attach this agent serves, preferred first. */
export const CHANNEL_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const;
/** A channel protocol this agent serves. */
export type ChannelProtocol = (typeof CHANNEL_PROTOCOLS)[number];

/** The SPDY subprotocol of port-forward (`X-Stream-Protocol-Version`). */
export const PORT_FORWARD_PROTOCOL = 'portforward.k8s.io';
/** The prefix kubectl puts on WebSocket subprotocols that tunnel SPDY. */
export const SPDY_TUNNELING_PREFIX = 'SPDY/3.1+';
/** The WebSocket subprotocol of port-forward through a SPDY tunnel. */
export const PORT_FORWARD_TUNNEL_PROTOCOL = `${SPDY_TUNNELING_PREFIX}${PORT_FORWARD_PROTOCOL}`;

/** One channel message. */
export function encodeChannelFrame(channel: number, data: Buffer | string): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data) : data;
  const out = Buffer.allocUnsafe(body.length + 1);
  out[0] = channel;
  body.copy(out, 1);
  return out;
}

/** Splits a channel message; undefined for an empty message (which carries no channel). */
export function decodeChannelFrame(message: Buffer): { channel: number; data: Buffer } | undefined {
  if (message.length === 0) return undefined;
  return { channel: message[0]!, data: message.subarray(1) };
}

/**
 * The protocol to answer with, from the client's `Sec-WebSocket-Protocol` offers (in the
 * server's order of preference, as the kubelet picks); undefined when none is served.
 */
export function negotiateChannelProtocol(offered: Iterable<string>): ChannelProtocol | undefined {
  const set = new Set([...offered].map((p) => p.trim()));
  return CHANNEL_PROTOCOLS.find((p) => set.has(p));
}

/** A `metav1.Status` as the error channel carries it. */
export interface StreamStatus {
  readonly kind?: 'Status';
  readonly apiVersion?: 'v1';
  readonly metadata: Record<string, never>;
  readonly status: 'Success' | 'Failure';
  readonly message?: string;
  readonly reason?: string;
  readonly details?: { readonly causes?: ReadonlyArray<{ readonly reason?: string; readonly message?: string }> };
  readonly code?: number;
}

/** The error-channel Status of a command that exited 0. */
export const SUCCESS_STATUS: StreamStatus = { metadata: {}, status: 'Success' };

/** The error-channel Status of a command that exited non-zero (as the kubelet words it). */
export function exitCodeStatus(exitCode: number, command: readonly string[] = []): StreamStatus {
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${exitCode}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
  };
}

/** The error-channel Status of a failure that is not an exit code. */
export function failureStatus(message: string, code = 500): StreamStatus {
  return { metadata: {}, status: 'Failure', message, reason: 'InternalError', code };
}

/** The exit code a Status reports: 0 for Success, the `ExitCode` cause, or undefined. */
export function exitCodeOf(status: StreamStatus): number | undefined {
  if (status.status === 'Success') return 0;
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
  return cause?.message !== undefined && /^\d+$/.test(cause.message) ? Number(cause.message) : undefined;
}

/** A WebSocket URL for a runtime's streaming URL (http → ws, https → wss). */
export function webSocketUrl(url: string): string {
  return url.replace(/^http(s?):\/\//, 'ws$1://');
}

/** Options of {@link bridgeToRuntime}. */
export interface RuntimeBridgeOptions {
  /** The client's socket, already upgraded, with its negotiated protocol. */
  readonly client: WebSocket;
  readonly clientProtocol: ChannelProtocol;
  /** The runtime's streaming URL (from `Exec` / `Attach`). */
  readonly url: string;
  readonly logger: Logger;
  /** TLS settings for an https streaming URL (containerd serves plain HTTP on loopback by default). */
  readonly rejectUnauthorized?: boolean;
}

/**
 * Bridges a client's channel-protocol WebSocket to the runtime's streaming server (containerd's
 * serves exec/attach over WebSocket with `v4.channel.k8s.io` and older; this offers v5 first in
 * case it does better). Frames pass through unchanged; a v5 client's close of stdin (channel 255)
 * is forwarded when the runtime speaks v5 and dropped otherwise (v4 cannot half-close: the
 * command then sees end of input only when the session ends). The error-channel Status (exit
 * code) passes through as is. Resolves when both sides are closed.
 */
export function bridgeToRuntime(options: RuntimeBridgeOptions): Promise<void> {
  const { client, clientProtocol, logger } = options;
  return new Promise<void>((resolve) => {
    const offered = clientProtocol === 'v5.channel.k8s.io' ? ['v5.channel.k8s.io', 'v4.channel.k8s.io'] : ['v4.channel.k8s.io'];
    const upstream = new WebSocket(webSocketUrl(options.url), offered, { rejectUnauthorized: options.rejectUnauthorized ?? false, perMessageDeflate: false });
    const pending: Buffer[] = [];
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      if (client.readyState === WebSocket.OPEN) client.close(1000);
      if (upstream.readyState === WebSocket.OPEN || upstream.readyState === WebSocket.CONNECTING) upstream.terminate();
      resolve();
    };
    const sendUpstream = (m: Buffer): void => {
      const f = decodeChannelFrame(m);
      if (f?.channel === Channel.Close && upstream.protocol !== 'v5.channel.k8s.io') return;
      upstream.send(m);
    };
    client.on('message', (data: Buffer, isBinary: boolean) => {
      const m = isBinary ? data : Buffer.from(data);
      if (upstream.readyState === WebSocket.OPEN) sendUpstream(m);
      else pending.push(m);
    });
    upstream.on('open', () => {
      for (const m of pending.splice(0)) sendUpstream(m);
    });
    upstream.on('message', (data: Buffer) => {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: true });
    });
    upstream.on('unexpected-response', (_req, res) => {
      logger.warn({ url: options.url, status: res.statusCode }, 'the runtime streaming server refused the session');
      if (client.readyState === WebSocket.OPEN) client.send(encodeChannelFrame(Channel.Error, JSON.stringify(failureStatus(`the container runtime refused the streaming session: HTTP ${res.statusCode ?? 0}`))));
      res.resume();
      finish();
    });
    upstream.on('error', (err: Error) => {
      logger.warn({ url: options.url, err: err.message }, 'the runtime streaming session failed');
      if (client.readyState === WebSocket.OPEN) client.send(encodeChannelFrame(Channel.Error, JSON.stringify(failureStatus(`error dialing the container runtime's streaming server: ${err.message}`))));
      finish();
    });
    upstream.on('close', finish);
    client.on('close', finish);
    client.on('error', finish);
    // The caller may have paused the client until a bridge listens.
    client.resume();
  });
}

/** How port-forward reaches a port of the pod. */
export type PortDialer = (port: number) => Promise<Duplex>;

/** Dials `host:port` over TCP; resolves once connected. */
export function dialTcp(host: string, port: number, timeoutMs = 10_000): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const socket = netConnect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`dial tcp ${host}:${port}: i/o timeout`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

interface ForwardPair {
  error?: SpdyStream;
  data?: SpdyStream;
  /** Data that arrived on the data stream before the pod connection was up. */
  readonly early: Buffer[];
  started: boolean;
  timer?: NodeJS.Timeout;
}

/** Options of {@link servePortForward}. */
export interface PortForwardOptions {
  /** The SPDY transport: a socket after `Upgrade: SPDY/3.1`, or a WebSocket stream (tunnel). */
  readonly transport: Duplex;
  /** Dials a port of the pod. */
  readonly dial: PortDialer;
  /** The pod, for error messages (`namespace/name` or a sandbox id). */
  readonly podLabel: string;
  readonly logger: Logger;
  /** How long the second stream of a pair may take to come (the kubelet's stream creation timeout). */
  readonly pairTimeoutMs?: number;
  /** Ports the pod may be dialled on when the request names them (`?port=`); absent: any. */
  readonly allowedPorts?: readonly number[];
}

/**
 * Serves kubectl's port-forward SPDY session: pairs each `requestID`'s error and data streams,
 * dials the pod's port and copies bytes both ways; a failed dial is reported on the error
 * stream (kubectl prints it) and the pair closed. Resolves when the session ends.
 */
export function servePortForward(options: PortForwardOptions): Promise<void> {
  const { logger } = options;
  const pairTimeout = options.pairTimeoutMs ?? 30_000;
  const pairs = new Map<string, ForwardPair>();
  const sockets = new Set<Duplex>();
  return new Promise<void>((resolve) => {
    const connection = new SpdyConnection(options.transport, {
      role: 'server',
      onStream: (stream) => {
        const type = stream.header('streamtype');
        const requestId = stream.header('requestid') ?? '';
        const port = Number(stream.header('port'));
        if ((type !== 'error' && type !== 'data') || !requestId || !Number.isInteger(port) || port <= 0 || port > 65535) {
          stream.reset(RstStatus.ProtocolError);
          return;
        }
        let pair = pairs.get(requestId);
        if (!pair) {
          const fresh: ForwardPair = { early: [], started: false };
          fresh.timer = setTimeout(() => {
            pairs.delete(requestId);
            fresh.error?.reset();
            fresh.data?.reset();
          }, pairTimeout);
          pairs.set(requestId, fresh);
          pair = fresh;
        }
        if (pair[type]) {
          stream.reset(RstStatus.ProtocolError);
          return;
        }
        pair[type] = stream;
        const p = pair;
        if (type === 'data') stream.on('data', (chunk: Buffer) => p.early.push(chunk));
        void stream.reply({}).catch(() => undefined);
        if (p.error && p.data && !p.started) {
          p.started = true;
          clearTimeout(p.timer);
          void forward(requestId, port, p);
        }
      },
    });

    const forward = async (requestId: string, port: number, pair: ForwardPair): Promise<void> => {
      const errorStream = pair.error!;
      const data = pair.data!;
      const cleanup = (): void => {
        pairs.delete(requestId);
      };
      if (options.allowedPorts && !options.allowedPorts.includes(port)) {
        errorStream.write(Buffer.from(`port ${port} was not requested for forwarding`));
        errorStream.end();
        data.end();
        cleanup();
        return;
      }
      let socket: Duplex;
      try {
        socket = await options.dial(port);
      } catch (err) {
        const message = `error forwarding port ${port} to pod ${options.podLabel}: ${err instanceof Error ? err.message : String(err)}`;
        logger.info({ port, pod: options.podLabel }, message);
        errorStream.write(Buffer.from(message));
        errorStream.end();
        data.end();
        cleanup();
        return;
      }
      sockets.add(socket);
      data.removeAllListeners('data');
      for (const chunk of pair.early.splice(0)) socket.write(chunk);
      data.on('data', (chunk: Buffer) => socket.write(chunk));
      data.on('end', () => socket.end());
      data.on('close', () => {
        if (!socket.destroyed && data.destroyed && !data.remoteClosed) socket.destroy();
      });
      if (data.remoteClosed) socket.end();
      socket.on('data', (chunk: Buffer) => data.write(chunk));
      const done = (): void => {
        sockets.delete(socket);
        data.end();
        errorStream.end();
        cleanup();
      };
      socket.on('end', done);
      socket.on('close', done);
      socket.on('error', (err) => {
        logger.debug({ port, err: err.message }, 'port-forward connection to the pod failed');
        done();
      });
    };

    connection.once('close', () => {
      for (const pair of pairs.values()) clearTimeout(pair.timer);
      pairs.clear();
      for (const s of sockets) s.destroy();
      sockets.clear();
      resolve();
    });
  });
}

/** The streams of an exec or attach session. */
export interface SessionStreams {
  readonly stdin: boolean;
  readonly stdout: boolean;
  readonly stderr: boolean;
  readonly tty: boolean;
}

/** The remote-command protocol spoken to a runtime over SPDY (`X-Stream-Protocol-Version`). */
export const REMOTE_COMMAND_SPDY_PROTOCOL = 'v4.channel.k8s.io';

/**
 * Upgrades a runtime streaming URL to SPDY/3.1 (remote command, v4); resolves with the socket
 * once the runtime answered 101, with any bytes past the answer's head pushed back.
 * @throws {Error} when the runtime answers anything else
 */
export function upgradeToSpdy(url: string, protocol: string, timeoutMs = 10_000): Promise<Socket> {
  const u = new URL(url);
  const secure = u.protocol === 'https:';
  const port = Number(u.port || (secure ? 443 : 80));
  return new Promise<Socket>((resolve, reject) => {
    const socket: Socket = secure ? tlsConnect({ host: u.hostname, port, rejectUnauthorized: false }) : netConnect({ host: u.hostname, port });
    const timer = setTimeout(() => fail(new Error(`upgrading ${url}: timed out`)), timeoutMs);
    let head = Buffer.alloc(0);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.once('error', fail);
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      socket.write(`POST ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${protocol}\r\nContent-Length: 0\r\n\r\n`);
    });
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      clearTimeout(timer);
      const text = head.subarray(0, end).toString('latin1');
      if (!/^HTTP\/1\.[01] 101/.test(text)) {
        fail(new Error(`upgrading ${url}: ${text.split('\r\n')[0] ?? 'no answer'}`));
        return;
      }
      socket.off('error', fail);
      const rest = head.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      resolve(socket);
    };
    socket.on('data', onData);
  });
}

/** Options of {@link bridgeToRuntimeSpdy}. */
export interface SpdyBridgeOptions {
  /** The client's upgraded socket (v5: it can close stdin). */
  readonly client: WebSocket;
  /** The runtime's streaming URL. */
  readonly url: string;
  readonly streams: SessionStreams;
  readonly logger: Logger;
}

/**
 * Bridges a v5 channel-protocol client to the runtime's streaming server over SPDY (what the
 * kubelet's runtimes serve besides WebSocket), which, unlike the v4 WebSocket protocol, carries
 * the end of stdin: the client's close of stdin (channel 255) half-closes the stdin stream, so a
 * command reading its input to the end (`kubectl exec -i ... -- cat`, `kubectl cp`) finishes.
 * stdout/stderr data go to channels 1/2, the error stream's Status to channel 3, resize messages
 * (channel 4) to the resize stream. Resolves when the session ended. Pause the client before
 * calling (`ws.pause()`): it is resumed once the runtime took the upgrade.
 * @throws {Error} when the runtime refuses the SPDY upgrade (nothing was sent to the client)
 */
export async function bridgeToRuntimeSpdy(options: SpdyBridgeOptions): Promise<void> {
  const { client, streams, logger } = options;
  // The client stays paused (as the caller paused it) until the runtime took the upgrade: on a
  // refusal, a fallback bridge gets every frame.
  const socket = await upgradeToSpdy(options.url, REMOTE_COMMAND_SPDY_PROTOCOL);
  const conn = new SpdyConnection(socket, { role: 'client' });
  // The client's frames until the streams are open.
  const pending: Buffer[] = [];
  const onEarly = (m: Buffer): void => void pending.push(m);
  client.on('message', onEarly);
  client.resume();
  const send = (channel: number, data: Buffer | string): void => {
    if (client.readyState === WebSocket.OPEN) client.send(encodeChannelFrame(channel, data));
  };
  try {
    const open = (type: string): Promise<SpdyStream> => conn.openStream({ streamtype: [type] });
    const error = await open('error');
    const stdin = streams.stdin ? await open('stdin') : undefined;
    const stdout = streams.stdout ? await open('stdout') : undefined;
    const stderr = streams.stderr && !streams.tty ? await open('stderr') : undefined;
    const resize = streams.tty ? await open('resize') : undefined;
    const status: Buffer[] = [];
    error.on('data', (d: Buffer) => status.push(d));
    // The runtime may close the connection right after writing the Status (no FIN on the stream).
    let reported = false;
    const report = (): void => {
      if (reported || status.length === 0) return;
      reported = true;
      send(Channel.Error, Buffer.concat(status));
    };
    error.on('end', report);
    error.on('close', report);
    stdout?.on('data', (d: Buffer) => send(Channel.Stdout, d));
    stderr?.on('data', (d: Buffer) => send(Channel.Stderr, d));
    const fromClient = (m: Buffer): void => {
      const f = decodeChannelFrame(m);
      if (!f) return;
      if (f.channel === Channel.Stdin) stdin?.write(f.data);
      else if (f.channel === Channel.Resize) resize?.write(f.data);
      else if (f.channel === Channel.Close && f.data[0] === Channel.Stdin) stdin?.end();
    };
    client.off('message', onEarly);
    for (const m of pending.splice(0)) fromClient(m);
    client.on('message', (data: Buffer, isBinary: boolean) => fromClient(isBinary ? data : Buffer.from(data)));
  } catch (err) {
    client.off('message', onEarly);
    conn.close();
    socket.destroy();
    logger.warn({ url: options.url, err: err instanceof Error ? err.message : String(err) }, 'the runtime SPDY session failed');
    send(Channel.Error, JSON.stringify(failureStatus(`the container runtime's streaming session failed: ${err instanceof Error ? err.message : String(err)}`)));
    client.close(1000);
    return;
  }
  await new Promise<void>((resolve) => {
    const done = (): void => {
      conn.close();
      socket.destroy();
      if (client.readyState === WebSocket.OPEN) client.close(1000);
      resolve();
    };
    conn.once('close', done);
    client.once('close', done);
  });
}
