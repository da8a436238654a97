import { expect } from 'chai';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { ApiClient, ApiStatusError, loadKubeconfig, type KubeObject } from './api-client.js';
import { NAMESPACE_INDEX } from './informer.js';

/** A local HTTP server answering with `handler`. */
async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('ApiClient', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'api-client-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('retries 429 and 5xx answers that carry Retry-After, and gives up after maxRetries', async () => {
    let calls = 0;
    const { server, url } = await serve((_req, res) => {
      calls++;
      if (calls < 3) {
        res.writeHead(calls === 1 ? 429 : 503, { 'retry-after': '0', 'content-type': 'application/json' });
        res.end(JSON.stringify({ kind: 'Status', reason: 'TooManyRequests', message: 'slow down' }));
      } else res.end(JSON.stringify({ kind: 'ConfigMap', metadata: { name: 'x' } }));
    });
    try {
      const client = new ApiClient({ server: url });
      expect((await client.get('/api/v1/namespaces/a/configmaps/x')).metadata?.name).to.equal('x');
      expect(calls).to.equal(3);
      calls = 0;
      const impatient = new ApiClient({ server: url }, { maxRetries: 1 });
      const err = await impatient.get('/x').catch((e: unknown) => e);
      expect(err).to.be.instanceOf(ApiStatusError);
      expect((err as ApiStatusError).code).to.equal(503);
      client.close();
      impatient.close();
    } finally {
      server.close();
    }
  });

  it('close() ends a retry wait and refuses later requests, keeping nothing alive', async () => {
    const { server, url } = await serve((_req, res) => {
      res.writeHead(429, { 'retry-after': '10', 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', reason: 'TooManyRequests', message: 'slow down' }));
    });
    try {
      const client = new ApiClient({ server: url });
      const started = Date.now();
      const pending = client.get('/x').catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 200)); // answered 429, now waiting 10 s to retry
      client.close();
      const err = (await pending) as Error;
      expect(Date.now() - started).to.be.below(5_000);
      expect(err.message).to.match(/API client is closed/);
      expect(((await client.get('/y').catch((e: unknown) => e)) as Error).message).to.equal('GET /y: the API client is closed');
    } finally {
      server.close();
    }
  });

  it('does not retry errors without Retry-After (a 500 or a 409 is final)', async () => {
    let calls = 0;
    const { server, url } = await serve((_req, res) => {
      calls++;
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', reason: 'InternalError', message: 'boom' }));
    });
    try {
      const client = new ApiClient({ server: url });
      const err = (await client.get('/x').catch((e: unknown) => e)) as ApiStatusError;
      expect([err.code, err.reason, err.message, calls]).to.deep.equal([500, 'InternalError', 'boom', 1]);
      client.close();
    } finally {
      server.close();
    }
  });

  it('sends the token from a token file', async () => {
    const seen: string[] = [];
    const { server, url } = await serve((req, res) => {
      seen.push(String(req.headers.authorization));
      res.end('{}');
    });
    try {
      writeFileSync(join(dir, 'token'), 'abc\n');
      const client = new ApiClient({ server: url, tokenFile: join(dir, 'token') });
      await client.get('/x');
      expect(seen).to.deep.equal(['Bearer abc']);
      client.close();
    } finally {
      server.close();
    }
  });

  it('reads a kubeconfig: current context, inline and file material, namespace', async () => {
    writeFileSync(join(dir, 'ca.crt'), 'CA PEM');
    writeFileSync(
      join(dir, 'config'),
      [
        'apiVersion: v1',
        'kind: Config',
        'current-context: dev',
        'clusters:',
        '- name: c1',
        '  cluster: { server: "https://10.0.0.1:6443", certificate-authority: ca.crt }',
        'users:',
        `- name: u1`,
        `  user: { client-certificate-data: ${Buffer.from('CERT').toString('base64')}, client-key-data: ${Buffer.from('KEY').toString('base64')} }`,
        '- name: u2',
        '  user: { token: t0k3n }',
        'contexts:',
        '- name: dev',
        '  context: { cluster: c1, user: u1, namespace: team }',
        '- name: ops',
        '  context: { cluster: c1, user: u2 }',
      ].join('\n'),
    );
    expect(await loadKubeconfig(join(dir, 'config'))).to.deep.equal({ server: 'https://10.0.0.1:6443', ca: 'CA PEM', cert: 'CERT', key: 'KEY', namespace: 'team' });
    expect(await loadKubeconfig(join(dir, 'config'), 'ops')).to.deep.equal({ server: 'https://10.0.0.1:6443', ca: 'CA PEM', token: 't0k3n' });
    const missing = await loadKubeconfig(join(dir, 'config'), 'nope').catch((e: Error) => e.message);
    expect(missing).to.contain('context "nope" not found');
  });
});

describe('Informer', () => {
  it('lists in pages, keeps indexes current through watch events, and resyncs subscribers', async () => {
    const objects = Array.from({ length: 1203 }, (_, i): KubeObject => ({ metadata: { name: `o${i}`, namespace: i % 2 ? 'odd' : 'even', resourceVersion: '5', labels: { tier: i % 3 === 0 ? 'a' : 'b' } } }));
    const pages: string[] = [];
    let watch: ServerResponse | undefined;
    const { server, url } = await serve((req, res) => {
      const u = new URL(req.url!, 'http://x');
      if (u.searchParams.get('watch') === 'true') {
        watch = res;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(JSON.stringify({ type: 'DELETED', object: objects[0] }) + '\n');
        res.write(JSON.stringify({ type: 'MODIFIED', object: { metadata: { name: 'o1', namespace: 'odd', resourceVersion: '6', labels: { tier: 'a' } } } }) + '\n');
        return;
      }
      pages.push(u.searchParams.get('continue') ?? '');
      const start = Number(u.searchParams.get('continue') ?? 0);
      const limit = Number(u.searchParams.get('limit'));
      const next = start + limit < objects.length ? String(start + limit) : undefined;
      res.end(JSON.stringify({ items: objects.slice(start, start + limit), metadata: { resourceVersion: '5', ...(next ? { continue: next } : {}) } }));
    });
    const client = new ApiClient({ server: url });
    try {
      const informer = client.informer('/api/v1/configmaps');
      informer.addIndexer('tier', (o) => [String(o.metadata?.labels?.tier)]);
      let resyncs = 0;
      const unsubscribe = informer.subscribe({ update: (o, old) => void (o === old && resyncs++) }, { resyncMs: 50 });
      informer.run();
      await informer.waitForSync();
      expect(pages).to.deep.equal(['', '500', '1000']);
      await new Promise((r) => setTimeout(r, 150));
      expect(informer.list()).to.have.length(1202);
      expect(informer.byIndex(NAMESPACE_INDEX, 'even')).to.have.length(601);
      expect(informer.byIndex('tier', 'a').map((o) => o.metadata?.name)).to.include('o1').and.not.include('o0');
      expect(informer.byIndex('tier', 'a')).to.have.length(401);
      expect(resyncs).to.be.greaterThan(1000);
      expect(() => informer.byIndex('nope', 'x')).to.throw(/no index "nope"/);
      unsubscribe();
    } finally {
      client.close();
      watch?.end();
      server.close();
    }
  });
});
