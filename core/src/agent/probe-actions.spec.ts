import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http, { type IncomingHttpHeaders } from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuntimeError, type ExecSyncResponse } from '@kubernel/sdk';
import {
  decodeHealthCheckStatus,
  encodeHealthCheckRequest,
  execProbe,
  grpcProbe,
  httpGetRequest,
  httpProbe,
  resolveContainerPort,
  tcpProbe,
  type ExecSyncFn,
} from './probe-actions.js';

const enc = new TextEncoder();
const reply = (exitCode: number, stdout = '', stderr = ''): ExecSyncResponse => ({ stdout: enc.encode(stdout), stderr: enc.encode(stderr), exitCode });

/** A port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function listen(server: http.Server | https.Server | http2.Http2Server | net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function close(server: http.Server | https.Server | http2.Http2Server | net.Server): Promise<void> {
  if ('closeAllConnections' in server) server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

describe('agent/probe-actions', () => {
  describe('ports', () => {
    const c = { name: 'web', ports: [{ name: 'http', containerPort: 8080 }, { name: 'metrics', containerPort: 9090 }] };
    it('resolves numbers, names and numbers written as strings; rejects the rest with the kubelet texts', () => {
      expect(resolveContainerPort(80, c)).to.equal(80);
      expect(resolveContainerPort('metrics', c)).to.equal(9090);
      expect(resolveContainerPort('8443', c)).to.equal(8443);
      expect(() => resolveContainerPort('admin', c)).to.throw('strconv.Atoi: parsing "admin": invalid syntax');
      expect(() => resolveContainerPort(0, c)).to.throw('invalid port number: 0');
      expect(() => resolveContainerPort(70000, c)).to.throw('invalid port number: 70000');
    });
  });

  describe('exec', () => {
    it('maps exit codes, output, timeouts and runtime errors', async () => {
      const calls: [string, readonly string[], number][] = [];
      const execSync: ExecSyncFn = async (id, cmd, timeout) => {
        calls.push([id, cmd, timeout]);
        if (cmd[0] === 'ok') return reply(0, 'fine\n');
        if (cmd[0] === 'bad') return reply(1, 'out ', 'err');
        if (cmd[0] === 'slow') throw new RuntimeError('DeadlineExceeded', 'deadline');
        throw RuntimeError.notFound('container');
      };
      expect(await execProbe(execSync, 'c1', ['ok'], 1)).to.deep.equal({ result: 'success', output: 'fine\n' });
      expect(await execProbe(execSync, 'c1', ['bad'], 1)).to.deep.equal({ result: 'failure', output: 'out err' });
      expect(await execProbe(execSync, 'c1', ['slow', '5'], 2)).to.deep.equal({ result: 'failure', output: "command 'slow 5' timed out" });
      expect((await execProbe(execSync, 'c1', ['gone'], 1)).result).to.equal('unknown');
      expect(calls[2]).to.deep.equal(['c1', ['slow', '5'], 2]);
    });

    it('keeps at most 10 KiB of output', async () => {
      const big: ExecSyncFn = async () => reply(1, 'x'.repeat(20_000));
      expect((await execProbe(big, 'c', ['x'], 1)).output).to.have.length(10 * 1024);
    });
  });

  describe('httpGet', () => {
    let server: http.Server;
    let port: number;
    let seen: { url: string; headers: IncomingHttpHeaders }[];
    beforeEach(async () => {
      seen = [];
      server = http.createServer((req, res) => {
        seen.push({ url: req.url ?? '', headers: req.headers });
        const url = req.url ?? '';
        if (url.startsWith('/ok')) res.writeHead(200).end('healthy');
        else if (url === '/fail') res.writeHead(500).end('broken');
        else if (url === '/404') res.writeHead(404).end();
        else if (url === '/hop') res.writeHead(302, { location: '/ok?from=hop' }).end();
        else if (url === '/away') res.writeHead(301, { location: `http://localhost:${port}/ok` }).end('moved');
        else if (url === '/loop') res.writeHead(302, { location: '/loop' }).end();
        else if (url === '/hang') return; // never answers
        else res.writeHead(204).end();
      });
      port = await listen(server);
    });
    afterEach(() => close(server));

    const container = { name: 'web', ports: [{ name: 'http', containerPort: 0 }] };

    it('builds the request: pod IP default, named port, path, headers with the kubelet defaults', () => {
      const req = httpGetRequest({ port: 'http', path: 'healthz?x=1', httpHeaders: [{ name: 'x-custom', value: 'a' }, { name: 'X-Custom', value: 'b' }] }, { name: 'c', ports: [{ name: 'http', containerPort: 8080 }] }, '10.1.2.3', 'probe');
      expect(req.url.toString()).to.equal('http://10.1.2.3:8080/healthz?x=1');
      expect(req.headers).to.deep.equal({ 'X-Custom': 'a, b', 'User-Agent': 'kube-probe/1.32', Accept: '*/*' });
      const custom = httpGetRequest({ port: 443, scheme: 'HTTPS', host: 'fd00::1', httpHeaders: [{ name: 'user-agent', value: 'mine' }, { name: 'Accept', value: '' }] }, { name: 'c' }, undefined, 'lifecycle');
      expect(custom.url.toString()).to.equal('https://[fd00::1]/');
      expect(custom.headers).to.deep.equal({ 'User-Agent': 'mine' });
      expect(httpGetRequest({ port: 80 }, { name: 'c' }, '10.0.0.1', 'lifecycle').headers['User-Agent']).to.equal('kube-lifecycle/1.32');
      expect(() => httpGetRequest({ port: 80 }, { name: 'c' }, undefined, 'probe')).to.throw(/no host/);
    });

    it('2xx succeeds with the body; other codes fail with the status code; sends the kubelet headers', async () => {
      const ok = await httpProbe({ port, path: '/ok', httpHeaders: [{ name: 'X-Probe', value: 'yes' }] }, container, '127.0.0.1', 1000);
      expect(ok).to.deep.equal({ result: 'success', output: 'healthy' });
      expect(seen[0]!.headers['user-agent']).to.equal('kube-probe/1.32');
      expect(seen[0]!.headers['accept']).to.equal('*/*');
      expect(seen[0]!.headers['x-probe']).to.equal('yes');
      expect(seen[0]!.headers['connection']).to.equal('close');
      expect(await httpProbe({ port, path: '/fail' }, container, '127.0.0.1', 1000)).to.deep.equal({ result: 'failure', output: 'HTTP probe failed with statuscode: 500' });
      expect((await httpProbe({ port, path: '/404' }, container, '127.0.0.1', 1000)).output).to.equal('HTTP probe failed with statuscode: 404');
    });

    it('follows redirects on the same host; a redirect elsewhere is a warning; too many fail', async () => {
      expect(await httpProbe({ port, path: '/hop' }, container, '127.0.0.1', 1000)).to.deep.equal({ result: 'success', output: 'healthy' });
      expect(seen.map((s) => s.url)).to.deep.equal(['/hop', '/ok?from=hop']);
      expect(await httpProbe({ port, path: '/away' }, container, '127.0.0.1', 1000)).to.deep.equal({ result: 'warning', output: 'Probe terminated redirects, Response body: moved' });
      const loop = await httpProbe({ port, path: '/loop' }, container, '127.0.0.1', 2000);
      expect(loop.result).to.equal('failure');
      expect(loop.output).to.contain('stopped after 10 redirects');
    });

    it('fails on a timeout and on a refused connection with Go texts', async () => {
      const hang = await httpProbe({ port, path: '/hang' }, container, '127.0.0.1', 100);
      expect(hang).to.deep.equal({ result: 'failure', output: `Get "http://127.0.0.1:${port}/hang": context deadline exceeded (Client.Timeout exceeded while awaiting headers)` });
      const dead = await closedPort();
      expect(await httpProbe({ port: dead, path: '/' }, container, '127.0.0.1', 1000)).to.deep.equal({
        result: 'failure',
        output: `Get "http://127.0.0.1:${dead}/": dial tcp 127.0.0.1:${dead}: connect: connection refused`,
      });
      expect((await httpProbe({ port: 'nope' }, container, '127.0.0.1', 1000)).result).to.equal('unknown');
    });

    it('HTTPS does not verify the certificate', async function () {
      const dir = mkdtempSync(join(tmpdir(), 'kubernel-probe-tls-'));
      let tls: https.Server | undefined;
      try {
        execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=probe-test'], { stdio: 'ignore' });
        tls = https.createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (_req, res) => res.writeHead(200).end('secure'));
        const tlsPort = await listen(tls);
        expect(await httpProbe({ port: tlsPort, scheme: 'HTTPS', path: '/' }, container, '127.0.0.1', 2000)).to.deep.equal({ result: 'success', output: 'secure' });
      } finally {
        if (tls) await close(tls);
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('tcpSocket', () => {
    it('succeeds when a connection opens, fails with the dial error when refused', async () => {
      const server = net.createServer((s) => s.end());
      const port = await listen(server);
      try {
        expect(await tcpProbe({ port: 'svc' }, { name: 'c', ports: [{ name: 'svc', containerPort: port }] }, '127.0.0.1', 1000)).to.deep.equal({ result: 'success', output: '' });
      } finally {
        await close(server);
      }
      const dead = await closedPort();
      expect(await tcpProbe({ port: dead, host: '127.0.0.1' }, { name: 'c' }, undefined, 1000)).to.deep.equal({ result: 'failure', output: `dial tcp 127.0.0.1:${dead}: connect: connection refused` });
      expect((await tcpProbe({ port: 80 }, { name: 'c' }, undefined, 1000)).result).to.equal('unknown');
    });
  });

  describe('grpc', () => {
    it('encodes the request and decodes the response status', () => {
      expect([...encodeHealthCheckRequest('')]).to.deep.equal([0, 0, 0, 0, 0]);
      expect([...encodeHealthCheckRequest('ab')]).to.deep.equal([0, 0, 0, 0, 4, 0x0a, 2, 0x61, 0x62]);
      expect(decodeHealthCheckStatus(Buffer.from([0x08, 0x01]))).to.equal(1);
      expect(decodeHealthCheckStatus(Buffer.from([0x12, 0x01, 0x61, 0x08, 0x02]))).to.equal(2);
      expect(decodeHealthCheckStatus(Buffer.alloc(0))).to.equal(0);
    });

    it('speaks grpc.health.v1.Health/Check over HTTP/2 with the kubelet texts', async () => {
      const services: Record<string, number> = { '': 1, db: 2 };
      const server = http2.createServer();
      server.on('stream', (stream, headers) => {
        if (headers[':path'] !== '/grpc.health.v1.Health/Check') {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': 'unknown service' }, { endStream: true });
          return;
        }
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const body = Buffer.concat(chunks);
          const msg = body.subarray(5);
          const service = msg.length > 0 ? msg.subarray(2, 2 + msg[1]!).toString() : '';
          if (service === 'hang') return;
          if (!(service in services)) {
            stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '5', 'grpc-message': 'unknown%20service' }, { endStream: true });
            return;
          }
          stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
          const payload = Buffer.from([0x08, services[service]!]);
          const frame = Buffer.alloc(5);
          frame.writeUInt32BE(payload.length, 1);
          stream.end(Buffer.concat([frame, payload]));
        });
      });
      const port = await listen(server);
      try {
        expect(await grpcProbe({ port }, '127.0.0.1', 1000)).to.deep.equal({ result: 'success', output: 'service healthy' });
        expect(await grpcProbe({ port, service: 'db' }, '127.0.0.1', 1000)).to.deep.equal({ result: 'failure', output: 'service unhealthy (responded with "NOT_SERVING")' });
        expect(await grpcProbe({ port, service: 'other' }, '127.0.0.1', 1000)).to.deep.equal({
          result: 'failure',
          output: 'error: health rpc probe failed: rpc error: code = NotFound desc = unknown service',
        });
        expect(await grpcProbe({ port, service: 'hang' }, '127.0.0.1', 100)).to.deep.equal({ result: 'failure', output: 'timeout: health rpc did not complete within 100ms' });
      } finally {
        await close(server);
      }
      const dead = await closedPort();
      expect(await grpcProbe({ port: dead }, '127.0.0.1', 1000)).to.deep.equal({
        result: 'failure',
        output: `timeout: failed to connect service "127.0.0.1:${dead}" within 1s: dial tcp 127.0.0.1:${dead}: connect: connection refused`,
      });
    });
  });
});
