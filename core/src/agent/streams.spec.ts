import { expect } from 'chai';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import WebSocket, { WebSocketServer } from 'ws';
import { SpdyConnection, type SpdyStream } from './spdy.js';
import {
  bridgeToRuntime,
  bridgeToRuntimeSpdy,
  Channel,
  decodeChannelFrame,
  dialTcp,
  encodeChannelFrame,
  exitCodeOf,
  exitCodeStatus,
  negotiateChannelProtocol,
  servePortForward,
  SUCCESS_STATUS,
  webSocketUrl,
  type StreamStatus,
} from './streams.js';

const logger = pino({ level: 'silent' });

const listen = async (server: Server | WebSocketServer): Promise<number> => {
  if (server instanceof WebSocketServer) {
    await new Promise<void>((resolve) => server.once('listening', resolve));
    return (server.address() as AddressInfo).port;
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
};
const closeServer = (server: Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()));

/** Reads a SPDY stream until the peer's FIN. */
const readAll = (s: SpdyStream): Promise<string> =>
  new Promise((resolve) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    const done = (): void => resolve(Buffer.concat(chunks).toString());
    s.once('end', done);
    s.once('close', done);
  });

describe('stream protocols', () => {
  describe('channel framing', () => {
    it('prefixes data with the channel byte and splits it back', () => {
      const f = encodeChannelFrame(Channel.Stdout, 'hi\n');
      expect([...f]).to.deep.equal([1, 0x68, 0x69, 0x0a]);
      expect(decodeChannelFrame(f)).to.deep.equal({ channel: 1, data: Buffer.from('hi\n') });
      expect(decodeChannelFrame(encodeChannelFrame(Channel.Close, Buffer.from([0])))).to.deep.equal({ channel: 255, data: Buffer.from([0]) });
      expect(decodeChannelFrame(Buffer.alloc(0))).to.equal(undefined);
    });

    it('negotiates v5 over v4 and nothing it does not serve', () => {
      expect(negotiateChannelProtocol(['v4.channel.k8s.io', 'v5.channel.k8s.io'])).to.equal('v5.channel.k8s.io');
      expect(negotiateChannelProtocol([' v4.channel.k8s.io'])).to.equal('v4.channel.k8s.io');
      expect(negotiateChannelProtocol(['channel.k8s.io', 'base64.channel.k8s.io'])).to.equal(undefined);
    });

    it('words exit codes as the kubelet does and reads them back', () => {
      const s = exitCodeStatus(3, ['sh', '-c', 'exit 3']);
      expect(s).to.deep.include({ status: 'Failure', reason: 'NonZeroExitCode' });
      expect(s.message).to.equal('command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3');
      expect(exitCodeOf(s)).to.equal(3);
      expect(exitCodeOf(SUCCESS_STATUS)).to.equal(0);
      expect(exitCodeOf({ metadata: {}, status: 'Failure', message: 'boom' })).to.equal(undefined);
    });

    it('turns streaming URLs into WebSocket URLs', () => {
      expect(webSocketUrl('http://127.0.0.1:10010/exec/abc')).to.equal('ws://127.0.0.1:10010/exec/abc');
      expect(webSocketUrl('https://node:1/attach/x')).to.equal('wss://node:1/attach/x');
    });
  });

  describe('bridgeToRuntime', () => {
    let runtime: WebSocketServer;
    let front: WebSocketServer;
    let runtimePort: number;
    let frontPort: number;
    const seenByRuntime: Buffer[] = [];
    let upstreamProtocols: string[] = [];

    beforeEach(async () => {
      seenByRuntime.length = 0;
      // A stand-in for containerd's streaming server: v4 only, echoes stdin to stdout, then the exit Status.
      runtime = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: (p) => (p.has('v4.channel.k8s.io') ? 'v4.channel.k8s.io' : false) });
      runtime.on('connection', (ws, req) => {
        upstreamProtocols = String(req.headers['sec-websocket-protocol']).split(',').map((x) => x.trim());
        ws.send(encodeChannelFrame(Channel.Stdout, ''));
        ws.on('message', (m: Buffer) => {
          seenByRuntime.push(m);
          const f = decodeChannelFrame(m)!;
          if (f.channel !== Channel.Stdin) return;
          if (f.data.toString() === 'exit\n') {
            ws.send(encodeChannelFrame(Channel.Error, JSON.stringify(exitCodeStatus(7, ['cat']))));
            ws.close(1000);
          } else {
            ws.send(encodeChannelFrame(Channel.Stdout, f.data));
          }
        });
      });
      runtimePort = await listen(runtime);
      front = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: (p) => negotiateChannelProtocol(p) ?? false });
      front.on('connection', (ws) => void bridgeToRuntime({ client: ws, clientProtocol: ws.protocol as 'v5.channel.k8s.io', url: `http://127.0.0.1:${runtimePort}/exec/tok`, logger }));
      frontPort = await listen(front);
    });
    afterEach(async () => {
      for (const c of [...runtime.clients, ...front.clients]) c.terminate();
      await new Promise<void>((r) => runtime.close(() => r()));
      await new Promise<void>((r) => front.close(() => r()));
    });

    it('passes frames both ways, drops a v5 close the v4 runtime cannot take, and relays the exit Status', async () => {
      const ws = new WebSocket(`ws://127.0.0.1:${frontPort}/`, ['v5.channel.k8s.io']);
      const got: Buffer[] = [];
      ws.on('message', (m: Buffer) => got.push(m));
      await new Promise((r) => ws.once('open', r));
      expect(ws.protocol).to.equal('v5.channel.k8s.io');
      ws.send(encodeChannelFrame(Channel.Stdin, 'hello\n'));
      ws.send(encodeChannelFrame(Channel.Close, Buffer.from([Channel.Stdin])));
      ws.send(encodeChannelFrame(Channel.Stdin, 'exit\n'));
      await new Promise((r) => ws.once('close', r));
      expect(upstreamProtocols).to.deep.equal(['v5.channel.k8s.io', 'v4.channel.k8s.io']);
      const frames = got.map((m) => decodeChannelFrame(m)!);
      expect(frames.filter((f) => f.channel === Channel.Stdout).map((f) => f.data.toString()).join('')).to.equal('hello\n');
      const status = JSON.parse(frames.find((f) => f.channel === Channel.Error)!.data.toString()) as StreamStatus;
      expect(exitCodeOf(status)).to.equal(7);
      expect(seenByRuntime.map((m) => m[0])).to.deep.equal([Channel.Stdin, Channel.Stdin]);
    });

    it('reports an unreachable streaming server on the error channel', async () => {
      const dead = createServer();
      const port = await listen(dead);
      await closeServer(dead);
      const other = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => 'v4.channel.k8s.io' });
      other.on('connection', (ws) => void bridgeToRuntime({ client: ws, clientProtocol: 'v4.channel.k8s.io', url: `http://127.0.0.1:${port}/exec/x`, logger }));
      const otherPort = await listen(other);
      try {
        const ws = new WebSocket(`ws://127.0.0.1:${otherPort}/`, ['v4.channel.k8s.io']);
        const got: Buffer[] = [];
        ws.on('message', (m: Buffer) => got.push(m));
        await new Promise((r) => ws.once('close', r));
        const f = decodeChannelFrame(got[0]!)!;
        expect(f.channel).to.equal(Channel.Error);
        expect((JSON.parse(f.data.toString()) as StreamStatus).message).to.match(/ECONNREFUSED/);
      } finally {
        await new Promise<void>((r) => other.close(() => r()));
      }
    });
  });

  describe('bridgeToRuntimeSpdy', () => {
    let runtime: Server;
    let front: WebSocketServer;
    let frontPort: number;
    const runtimeSockets = new Set<Socket>();
    let upgradeHead = '';

    beforeEach(async () => {
      // A stand-in for a runtime streaming server over SPDY (remote command v4): stdin upper-cased
      // to stdout until stdin ends, then the Success Status, then the connection closes.
      runtime = createServer((socket) => {
        runtimeSockets.add(socket);
        let head = '';
        const onData = (d: Buffer): void => {
          head += d.toString('latin1');
          if (!head.includes('\r\n\r\n')) return;
          socket.off('data', onData);
          upgradeHead = head;
          if (!head.startsWith('POST /exec/spdy-ok')) {
            socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
            return;
          }
          socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n');
          const byType = new Map<string, SpdyStream>();
          const conn = new SpdyConnection(socket, {
            role: 'server',
            onStream: (stream) => {
              byType.set(stream.header('streamtype') ?? '', stream);
              void stream.reply({});
              if (!byType.has('error') || !byType.has('stdin') || !byType.has('stdout')) return;
              const stdin = byType.get('stdin')!;
              stdin.on('data', (d: Buffer) => byType.get('stdout')!.write(Buffer.from(d.toString().toUpperCase())));
              stdin.on('end', () => {
                byType.get('error')!.write(Buffer.from(JSON.stringify(SUCCESS_STATUS)));
                setTimeout(() => conn.close(), 20);
              });
            },
          });
        };
        socket.on('data', onData);
      });
      const runtimePort = await listen(runtime);
      front = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: (p) => negotiateChannelProtocol(p) ?? false });
      front.on('connection', (ws, req) => {
        ws.pause();
        const path = req.url === '/refused' ? '/exec/refused' : '/exec/spdy-ok';
        bridgeToRuntimeSpdy({ client: ws, url: `http://127.0.0.1:${runtimePort}${path}`, streams: { stdin: true, stdout: true, stderr: false, tty: false }, logger }).catch((err: unknown) => {
          ws.resume();
          ws.send(encodeChannelFrame(Channel.Error, JSON.stringify({ metadata: {}, status: 'Failure', message: `refused: ${String(err)}` })));
          ws.close();
        });
      });
      frontPort = await listen(front);
    });
    afterEach(async () => {
      for (const c of front.clients) c.terminate();
      await new Promise<void>((r) => front.close(() => r()));
      for (const s of runtimeSockets) s.destroy();
      await closeServer(runtime);
    });

    const session = async (path: string, input: string[]): Promise<{ stdout: string; status: StreamStatus }> => {
      const ws = new WebSocket(`ws://127.0.0.1:${frontPort}${path}`, ['v5.channel.k8s.io']);
      const got: Buffer[] = [];
      ws.on('message', (m: Buffer) => got.push(m));
      await new Promise((r) => ws.once('open', r));
      for (const i of input) ws.send(encodeChannelFrame(Channel.Stdin, i));
      ws.send(encodeChannelFrame(Channel.Close, Buffer.from([Channel.Stdin])));
      await new Promise((r) => ws.once('close', r));
      const frames = got.map((m) => decodeChannelFrame(m)!);
      return {
        stdout: frames.filter((f) => f.channel === Channel.Stdout).map((f) => f.data.toString()).join(''),
        status: JSON.parse(frames.find((f) => f.channel === Channel.Error)!.data.toString()) as StreamStatus,
      };
    };

    it('carries stdin, its end (v5 close), stdout and the Status over SPDY', async () => {
      const r = await session('/', ['abc', 'def\n']);
      expect(r.stdout).to.equal('ABCDEF\n');
      expect(exitCodeOf(r.status)).to.equal(0);
      expect(upgradeHead).to.match(/^POST \/exec\/spdy-ok HTTP\/1\.1\r\n/);
      expect(upgradeHead.toLowerCase()).to.include('upgrade: spdy/3.1').and.include('x-stream-protocol-version: v4.channel.k8s.io');
    });

    it('rejects when the runtime refuses the upgrade, before touching the client', async () => {
      const r = await session('/refused', ['x']);
      expect(r.status.message).to.match(/^refused: Error: upgrading .*: HTTP\/1\.1 400 Bad Request/);
      expect(r.stdout).to.equal('');
    });
  });

  describe('servePortForward', () => {
    let pod: Server;
    let podPort: number;
    let front: Server;
    let frontPort: number;
    let sessions: Promise<void>[];
    let client: SpdyConnection | undefined;
    let socket: Socket | undefined;
    const podSockets = new Set<Socket>();

    beforeEach(async () => {
      // The pod: an echo server that upper-cases.
      pod = createServer((s) => {
        podSockets.add(s);
        s.on('data', (d: Buffer) => s.write(d.toString().toUpperCase())).on('end', () => s.end());
      });
      podPort = await listen(pod);
      sessions = [];
      front = createServer((s) => sessions.push(servePortForward({ transport: s, dial: (port) => dialTcp('127.0.0.1', port === 80 ? podPort : port, 2000), podLabel: 'default/web', logger })));
      frontPort = await listen(front);
      socket = connect(frontPort, '127.0.0.1');
      await new Promise((r) => socket!.once('connect', r));
      client = new SpdyConnection(socket, { role: 'client' });
    });
    afterEach(async () => {
      client?.close();
      socket?.destroy();
      await Promise.all(sessions);
      await closeServer(front);
      for (const s of podSockets) s.destroy();
      podSockets.clear();
      await closeServer(pod);
    });

    const pairFor = async (requestId: string, port: number): Promise<{ error: SpdyStream; data: SpdyStream }> => {
      const error = await client!.openStream({ streamtype: ['error'], port: [String(port)], requestid: [requestId] });
      error.end();
      const data = await client!.openStream({ streamtype: ['data'], port: [String(port)], requestid: [requestId] });
      return { error, data };
    };

    it('pairs the error and data streams of a request and copies bytes to the pod and back', async () => {
      const a = await pairFor('0', 80);
      const b = await pairFor('1', 80);
      const replyA = readAll(a.data);
      const replyB = readAll(b.data);
      a.data.write(Buffer.from('first '));
      b.data.write(Buffer.from('second'));
      a.data.write(Buffer.from('connection'));
      a.data.end();
      b.data.end();
      expect(await replyA).to.equal('FIRST CONNECTION');
      expect(await replyB).to.equal('SECOND');
    });

    it('reports a port nothing listens on through the error stream', async () => {
      const closed = createServer();
      const port = await listen(closed);
      await closeServer(closed);
      const { error, data } = await pairFor('7', port);
      const message = await readAll(error);
      expect(message).to.match(new RegExp(`error forwarding port ${port} to pod default/web: .*ECONNREFUSED`));
      await readAll(data);
    });

    it('resets a stream without the port-forward headers', async () => {
      let error: unknown;
      await client!.openStream({ streamtype: ['data'] }).catch((e: unknown) => (error = e));
      expect(String(error)).to.match(/reset/);
    });
  });
});
