import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Duplex } from 'node:stream';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import pino from 'pino';
import WebSocket, { WebSocketServer } from 'ws';
import type { AuthorizationAttributes, ContainerRuntime, ExecRequest } from '@kubernel/sdk';
import { createCa, issueCertificate, type KeyPair } from '../pki/pki.js';
import { AgentServer, ensureServingCertificate, nodeSubresourceOf, parseAgentPath, verbOf, type PodRef } from './server.js';
import { SpdyConnection, type SpdyStream } from './spdy.js';
import { Channel, decodeChannelFrame, encodeChannelFrame, exitCodeOf, exitCodeStatus, SUCCESS_STATUS, type StreamStatus } from './streams.js';

const logger = pino({ level: 'silent' });

/**
 * A bare WebSocket client over a TLS socket, for the tunnel's subprotocol (`SPDY/3.1+...` is not a
 * token, so the ws package's client will not send it; kubectl's gorilla/websocket does): binary
 * messages in and out as a byte stream.
 */
async function tunnel(port: number, path: string, creds: KeyPair): Promise<{ stream: Duplex; protocol: string; socket: TLSSocket }> {
  const socket = tlsConnect({ host: '127.0.0.1', port, cert: creds.cert, key: creds.key, rejectUnauthorized: false });
  await new Promise((r) => socket.once('secureConnect', r));
  socket.write(`GET ${path} HTTP/1.1\r\nHost: node\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io\r\n\r\n`);
  let buffered = Buffer.alloc(0);
  const head = await new Promise<string>((resolve) => {
    const onData = (d: Buffer): void => {
      buffered = Buffer.concat([buffered, d]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      const text = buffered.subarray(0, end).toString('latin1');
      buffered = buffered.subarray(end + 4);
      resolve(text);
    };
    socket.on('data', onData);
  });
  if (!/^HTTP\/1\.1 101/.test(head)) throw new Error(`no upgrade: ${head}`);
  const protocol = /sec-websocket-protocol: *(.*)/i.exec(head)?.[1]?.trim() ?? '';
  const stream = new Duplex({
    write(chunk: Buffer, _enc, done) {
      const mask = randomBytes(4);
      const len = chunk.length;
      const header = len < 126 ? Buffer.from([0x82, 0x80 | len]) : Buffer.from([0x82, 0x80 | 126, len >> 8, len & 0xff]);
      const body = Buffer.from(chunk.map((b, i) => b ^ mask[i % 4]!));
      socket.write(Buffer.concat([header, mask, body]), done);
    },
    read() {},
  });
  const parse = (): void => {
    for (;;) {
      if (buffered.length < 2) return;
      let len = buffered[1]! & 0x7f;
      let at = 2;
      if (len === 126) {
        if (buffered.length < 4) return;
        len = buffered.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (buffered.length < 10) return;
        len = Number(buffered.readBigUInt64BE(2));
        at = 10;
      }
      if (buffered.length < at + len) return;
      const opcode = buffered[0]! & 0x0f;
      const payload = buffered.subarray(at, at + len);
      buffered = buffered.subarray(at + len);
      if (opcode === 0x2 || opcode === 0x0) stream.push(Buffer.from(payload));
      if (opcode === 0x8) stream.push(null);
    }
  };
  socket.on('data', (d: Buffer) => {
    buffered = Buffer.concat([buffered, d]);
    parse();
  });
  parse();
  socket.on('close', () => stream.destroy());
  return { stream, protocol, socket };
}

interface Answer {
  status: number;
  body: string;
}

describe('AgentServer', function () {
  this.timeout(20_000);
  let dir: string;
  let ca: KeyPair;
  let admin: KeyPair;
  let stranger: KeyPair;
  let server: AgentServer;
  let streaming: WebSocketServer;
  let pod: Server;
  let podPort: number;
  const podSockets = new Set<Socket>();
  const decisions: AuthorizationAttributes[] = [];
  let allow = true;
  const execs: ExecRequest[] = [];
  let pods: Record<string, PodRef>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubernel-agent-server-'));
    ca = await createCa('kubernetes', 10);
    admin = await issueCertificate(ca, { commonName: 'kube-apiserver-kubelet-client', organizations: ['system:masters'], usage: 'client', validityDays: 1 });
    const otherCa = await createCa('other', 10);
    stranger = await issueCertificate(otherCa, { commonName: 'mallory', usage: 'client', validityDays: 1 });
    // The runtime's streaming server: runs `echo` and `sh -c 'exit N'`.
    streaming = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: (p) => (p.has('v4.channel.k8s.io') ? 'v4.channel.k8s.io' : false) });
    streaming.on('connection', (ws, req) => {
      const cmd = JSON.parse(decodeURIComponent((req.url ?? '').split('/').pop() ?? '[]')) as string[];
      if (cmd[0] === 'echo') {
        ws.send(encodeChannelFrame(Channel.Stdout, `${cmd.slice(1).join(' ')}\n`));
        ws.send(encodeChannelFrame(Channel.Error, JSON.stringify(SUCCESS_STATUS)));
      } else {
        ws.send(encodeChannelFrame(Channel.Error, JSON.stringify(exitCodeStatus(Number(/exit (\d+)/.exec(cmd.join(' '))?.[1] ?? 1), cmd))));
      }
      ws.close(1000);
    });
    await new Promise((r) => streaming.once('listening', r));
    const streamingPort = (streaming.address() as AddressInfo).port;
    pod = createServer((s) => {
      podSockets.add(s);
      s.on('data', (d: Buffer) => s.write(`pod says ${d.toString()}`)).on('end', () => s.end());
    });
    await new Promise<void>((r) => pod.listen(0, '127.0.0.1', r));
    podPort = (pod.address() as AddressInfo).port;
    await writeFile(join(dir, 'c-0.log'), '2026-11-26T03:00:00Z stdout F previous run\n');
    await writeFile(join(dir, 'c-1.log'), '2026-11-26T03:00:01Z stdout F one\n2026-11-26T03:00:02Z stderr F two\n2026-11-26T03:00:03Z stdout F three\n');
    pods = {
      'default/web': {
        namespace: 'default', name: 'web', uid: 'u1', sandboxId: 'sb1', ip: '127.0.0.1',
        containers: [
          { name: 'c', id: 'c1', state: 'CONTAINER_RUNNING', attempt: 1, createdAt: 2, logPath: join(dir, 'c-1.log') },
          { name: 'c', id: 'c0', state: 'CONTAINER_EXITED', attempt: 0, createdAt: 1, logPath: join(dir, 'c-0.log') },
        ],
      },
      'default/single': {
        namespace: 'default', name: 'single', uid: 'u2', sandboxId: 'sb2', ip: '127.0.0.1',
        containers: [{ name: 'c', id: 'c2', state: 'CONTAINER_RUNNING', attempt: 0, createdAt: 3, logPath: join(dir, 'c-1.log') }],
      },
    };
    const runtime = {
      exec: async (r: ExecRequest) => {
        execs.push(r);
        return { url: `http://127.0.0.1:${streamingPort}/exec/${encodeURIComponent(JSON.stringify(r.cmd))}` };
      },
      attach: async () => ({ url: `http://127.0.0.1:${streamingPort}/attach/${encodeURIComponent('["echo","attached"]')}` }),
      containerStatus: async (id: string) => ({ status: { state: id === 'c0' ? 'CONTAINER_EXITED' : 'CONTAINER_RUNNING' } }),
    } as unknown as ContainerRuntime;
    server = new AgentServer({
      runtime,
      nodeName: 'node-1',
      logger,
      clientCa: ca.cert,
      host: '127.0.0.1',
      port: 0,
      certDir: join(dir, 'pki'),
      authenticateToken: async (token) => (token === 'good-token' ? { username: 'system:serviceaccount:kube-system:metrics', groups: [] } : undefined),
      authorize: async (a) => {
        decisions.push(a);
        return { allowed: allow };
      },
      lookup: async (ns, name) => pods[`${ns}/${name}`],
      dialPod: async (_pod, port) => {
        const s = new (await import('node:net')).Socket();
        await new Promise<void>((resolve, reject) => s.connect(port === 80 ? podPort : port, '127.0.0.1', resolve).once('error', reject));
        return s;
      },
    });
    await server.start();
  });

  after(async () => {
    await server?.stop();
    for (const c of streaming?.clients ?? []) c.terminate();
    await new Promise<void>((r) => (streaming ? streaming.close(() => r()) : r()));
    for (const s of podSockets) s.destroy();
    await new Promise<void>((r) => (pod ? pod.close(() => r()) : r()));
    await rm(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    allow = true;
    decisions.length = 0;
  });

  const get = (path: string, creds: { cert?: string; key?: string; token?: string } = admin): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: server.port, path, rejectUnauthorized: false, agent: false, ...(creds.cert ? { cert: creds.cert, key: creds.key } : {}), headers: creds.token ? { authorization: `Bearer ${creds.token}` } : {} }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      });
      req.on('error', reject);
      req.end();
    });

  const ws = (path: string, protocols: string[]): WebSocket => new WebSocket(`wss://127.0.0.1:${server.port}${path}`, protocols, { cert: admin.cert, key: admin.key, rejectUnauthorized: false });

  describe('paths and authorization attributes', () => {
    it('parses the kubelet paths', () => {
      expect(parseAgentPath('/containerLogs/ns/p/c')).to.deep.equal({ kind: 'containerLogs', namespace: 'ns', pod: 'p', container: 'c' });
      expect(parseAgentPath('/exec/ns/p/uid/c')).to.deep.equal({ kind: 'exec', namespace: 'ns', pod: 'p', uid: 'uid', container: 'c' });
      expect(parseAgentPath('/portForward/ns/p')).to.deep.equal({ kind: 'portForward', namespace: 'ns', pod: 'p' });
      expect(parseAgentPath('/exec/ns/p')).to.equal(undefined);
      expect(parseAgentPath('/containerLogs/ns//c')).to.equal(undefined);
    });

    it('maps paths and methods as the kubelet does', () => {
      expect(['/stats/summary', '/metrics/cadvisor', '/logs/syslog', '/spec/', '/checkpoint/a/b/c', '/exec/a/b/c', '/containerLogs/a/b/c'].map(nodeSubresourceOf)).to.deep.equal(['stats', 'metrics', 'log', 'spec', 'checkpoint', 'proxy', 'proxy']);
      expect(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'].map(verbOf)).to.deep.equal(['get', 'get', 'create', 'update', 'patch', 'delete']);
    });
  });

  describe('authentication and authorization', () => {
    it('serves /healthz to anyone', async () => {
      expect(await get('/healthz', {})).to.deep.equal({ status: 200, body: 'ok' });
    });

    it('refuses a request without credentials, or with a certificate of another CA, or a bad token: 401', async () => {
      expect((await get('/containerLogs/default/web/c', {})).status).to.equal(401);
      expect((await get('/containerLogs/default/web/c', stranger)).status).to.equal(401);
      expect((await get('/containerLogs/default/web/c', { token: 'bad' })).status).to.equal(401);
      expect(decisions).to.have.length(0);
    });

    it('authorizes the client certificate\'s user and groups on nodes/proxy of this node', async () => {
      allow = false;
      const r = await get('/containerLogs/default/web/c');
      expect(r.status).to.equal(403);
      expect(r.body.trim()).to.equal('Forbidden (user=kube-apiserver-kubelet-client, verb=get, resource=nodes, subresource=proxy)');
      expect(decisions[0]).to.deep.include({ verb: 'get', resource: 'nodes', subresource: 'proxy', name: 'node-1', apiGroup: '', namespace: '' });
      expect(decisions[0]!.user).to.deep.equal({ username: 'kube-apiserver-kubelet-client', groups: ['system:masters', 'system:authenticated'] });
    });

    it('authenticates a bearer token through the TokenReview callback', async () => {
      expect((await get('/containerLogs/default/web/c', { token: 'good-token' })).status).to.equal(200);
      expect(decisions[0]!.user.username).to.equal('system:serviceaccount:kube-system:metrics');
    });
  });

  describe('containerLogs', () => {
    it('serves the current container\'s log with the PodLogOptions', async () => {
      expect(await get('/containerLogs/default/web/c')).to.deep.equal({ status: 200, body: 'one\ntwo\nthree\n' });
      expect((await get('/containerLogs/default/web/c?tailLines=1&timestamps=true')).body).to.equal('2026-11-26T03:00:03Z three\n');
      expect((await get('/containerLogs/default/web/c?limitBytes=5')).body).to.equal('one\nt');
    });

    it('serves the previous instance with previous=true, and says when there is none', async () => {
      expect((await get('/containerLogs/default/web/c?previous=true')).body).to.equal('previous run\n');
      const none = await get('/containerLogs/default/single/c?previous=true');
      expect(none).to.deep.equal({ status: 400, body: 'previous terminated container "c" in pod "single" not found\n' });
    });

    it('answers 404 for an unknown pod and 400 for bad options', async () => {
      expect((await get('/containerLogs/default/nope/c')).status).to.equal(404);
      expect((await get('/containerLogs/default/web/c?tailLines=x')).status).to.equal(400);
    });

    it('ends a followed log once the container is no longer running', async () => {
      expect((await get('/containerLogs/default/web/c?follow=true&previous=true')).body).to.equal('previous run\n');
    });
  });

  describe('exec and attach', () => {
    const session = async (path: string, protocol = 'v5.channel.k8s.io'): Promise<{ stdout: string; status: StreamStatus | undefined; protocol: string }> => {
      const socket = ws(path, [protocol]);
      const frames: Buffer[] = [];
      socket.on('message', (m: Buffer) => frames.push(m));
      await new Promise((resolve, reject) => {
        socket.once('close', resolve);
        socket.once('error', reject);
      });
      const decoded = frames.map((f) => decodeChannelFrame(f)!);
      const err = decoded.find((f) => f.channel === Channel.Error);
      return { stdout: decoded.filter((f) => f.channel === Channel.Stdout).map((f) => f.data.toString()).join(''), status: err ? (JSON.parse(err.data.toString()) as StreamStatus) : undefined, protocol: socket.protocol };
    };

    it('runs a command through the runtime\'s streaming server and relays the output and the Status', async () => {
      const r = await session('/exec/default/web/c?command=echo&command=hi&stdout=true&stderr=true');
      expect(r).to.deep.include({ stdout: 'hi\n', protocol: 'v5.channel.k8s.io' });
      expect(exitCodeOf(r.status!)).to.equal(0);
      expect(execs.at(-1)).to.deep.equal({ containerId: 'c1', cmd: ['echo', 'hi'], stdin: false, stdout: true, stderr: true, tty: false });
      expect(decisions.at(-1)).to.deep.include({ verb: 'get', subresource: 'proxy' });
    });

    it('relays a non-zero exit code (v4 as well)', async () => {
      const r = await session('/exec/default/web/c?command=sh&command=-c&command=exit%203&stdout=1', 'v4.channel.k8s.io');
      expect(r.protocol).to.equal('v4.channel.k8s.io');
      expect(exitCodeOf(r.status!)).to.equal(3);
    });

    it('falls back to the runtime\'s WebSocket, with a fresh session, when it refuses SPDY for a v5 session with stdin', async () => {
      const before = execs.length;
      const r = await session('/exec/default/web/c?command=echo&command=fallback&stdin=true&stdout=true');
      expect(r.stdout).to.equal('fallback\n');
      expect(exitCodeOf(r.status!)).to.equal(0);
      expect(execs.length - before).to.equal(2);
    });

    it('attaches', async () => {
      expect((await session('/attach/default/web/c?stdout=true')).stdout).to.equal('attached\n');
    });

    it('refuses an exec without streams, without a command, or with an unknown protocol', async () => {
      const refused = async (path: string, protocol: string): Promise<number> =>
        new Promise((resolve) => {
          const s = ws(path, [protocol]);
          s.on('unexpected-response', (_req, res) => {
            resolve(res.statusCode ?? 0);
            res.resume();
          });
          s.on('error', () => undefined);
        });
      expect(await refused('/exec/default/web/c?command=ls', 'v5.channel.k8s.io')).to.equal(400);
      expect(await refused('/exec/default/web/c?stdout=1', 'v5.channel.k8s.io')).to.equal(400);
      expect(await refused('/exec/default/web/nope?command=ls&stdout=1', 'v5.channel.k8s.io')).to.equal(404);
    });
  });

  describe('portForward', () => {
    const exchange = async (conn: SpdyConnection, requestId: string, text: string): Promise<string> => {
      const error = await conn.openStream({ streamtype: ['error'], port: ['80'], requestid: [requestId] });
      error.end();
      const data = await conn.openStream({ streamtype: ['data'], port: ['80'], requestid: [requestId] });
      const reply = new Promise<string>((resolve) => {
        const chunks: Buffer[] = [];
        data.on('data', (d: Buffer) => chunks.push(d));
        data.once('end', () => resolve(Buffer.concat(chunks).toString()));
      });
      data.write(Buffer.from(text));
      data.end();
      return reply;
    };

    it('tunnels SPDY over a WebSocket (SPDY/3.1+portforward.k8s.io) to the pod\'s port', async () => {
      const { stream, protocol, socket } = await tunnel(server.port, '/portForward/default/web', admin);
      expect(protocol).to.equal('SPDY/3.1+portforward.k8s.io');
      const conn = new SpdyConnection(stream, { role: 'client' });
      try {
        expect(await exchange(conn, '0', 'hello')).to.equal('pod says hello');
        expect(await exchange(conn, '1', 'again')).to.equal('pod says again');
      } finally {
        conn.close();
        socket.destroy();
      }
    });

    it('serves a plain SPDY/3.1 upgrade with X-Stream-Protocol-Version: portforward.k8s.io', async () => {
      const tls = tlsConnect({ host: '127.0.0.1', port: server.port, cert: admin.cert, key: admin.key, rejectUnauthorized: false });
      await new Promise((r) => tls.once('secureConnect', r));
      tls.write('POST /portForward/default/web HTTP/1.1\r\nHost: node-1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\nContent-Length: 0\r\n\r\n');
      const head = await new Promise<string>((resolve) => {
        let text = '';
        const onData = (d: Buffer): void => {
          text += d.toString('latin1');
          if (text.includes('\r\n\r\n')) {
            tls.off('data', onData);
            resolve(text);
          }
        };
        tls.on('data', onData);
      });
      expect(head).to.match(/^HTTP\/1\.1 101 /);
      expect(head.toLowerCase()).to.include('x-stream-protocol-version: portforward.k8s.io');
      expect(decisions.at(-1)).to.deep.include({ verb: 'create', subresource: 'proxy' });
      const conn = new SpdyConnection(tls, { role: 'client' });
      try {
        expect(await exchange(conn, '5', 'over spdy')).to.equal('pod says over spdy');
      } finally {
        conn.close();
        tls.destroy();
      }
    });

    it('reports a port the pod does not serve on the error stream', async () => {
      const { stream, socket } = await tunnel(server.port, '/portForward/default/web', admin);
      const conn = new SpdyConnection(stream, { role: 'client' });
      try {
        const closed = createServer();
        await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
        const port = (closed.address() as AddressInfo).port;
        await new Promise<void>((r) => closed.close(() => r()));
        const error: SpdyStream = await conn.openStream({ streamtype: ['error'], port: [String(port)], requestid: ['9'] });
        error.end();
        await conn.openStream({ streamtype: ['data'], port: [String(port)], requestid: ['9'] });
        const message = await new Promise<string>((resolve) => {
          const chunks: Buffer[] = [];
          error.on('data', (d: Buffer) => chunks.push(d));
          error.once('end', () => resolve(Buffer.concat(chunks).toString()));
        });
        expect(message).to.match(/^error forwarding port \d+ to pod default\/web: .*ECONNREFUSED/);
      } finally {
        conn.close();
        socket.destroy();
      }
    });
  });

  describe('the serving certificate', () => {
    it('is self-signed with the node\'s names, kept in the cert dir and reused', async () => {
      const certDir = join(dir, 'pki-2');
      const first = await ensureServingCertificate(certDir, 'node-9', ['10.1.2.3']);
      const again = await ensureServingCertificate(certDir, 'node-9');
      expect(again).to.deep.equal(first);
      const cert = new X509Certificate(first.cert);
      expect(cert.subjectAltName).to.include('DNS:node-9').and.include('IP Address:10.1.2.3').and.include('IP Address:127.0.0.1');
      expect(cert.subject).to.match(/^CN=node-9@\d+$/);
    });
  });
});
