import { expect } from 'chai';
import { ApiClient, ApiStatusError, type KubeObject, type WatchEvent } from '@kubernel/sdk';
import { ApiServer, apiCodec, bootstrapCluster, fixedChain, loopbackAuthenticator, MASTERS_AUTHORIZER, type Store } from '@kubernel/core';
import { startTestNats, type TestNats } from './helpers/nats.js';
import { until } from './helpers/wait.js';

/*
 * The API server's in-process transport (what plugins of its own process use): the same request
 * handling as HTTP (authentication, authorization, validation, errors as Status, watches with
 * resume and 410), compared answer for answer with a plain-HTTP client of the same server.
 */
describe('the API server\'s in-process transport', function () {
  this.timeout(60_000);
  let nats: TestNats;
  let store: Store;
  let server: ApiServer;
  let local: ApiClient;
  let http: ApiClient;
  const token = 'local-transport-test-token-0123456789';

  before(async () => {
    nats = await startTestNats();
    // A small watch window, so that an old revision is soon out of it (410).
    store = await nats.open({ codec: apiCodec, cache: { windowSize: 5 } });
    server = new ApiServer({ store, logger: nats.host.logger, registry: nats.host.registry, port: 0, chain: fixedChain({ authenticators: [loopbackAuthenticator(token)], authorizers: [MASTERS_AUTHORIZER] }) });
    await server.start();
    const port = Number(server.address.split(':').pop());
    await bootstrapCluster(store, server.allocators, { ip: '127.0.0.1', port }, nats.host.logger);
    local = new ApiClient({ server: server.url, token, transport: server.localTransport() });
    http = new ApiClient({ server: server.url, token });
  });
  after(async () => {
    local?.close();
    http?.close();
    await server?.stop();
    await nats?.dispose();
  });

  const cm = (name: string, data: Record<string, string> = { a: '1' }): KubeObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data });

  it('creates, reads, updates, patches and deletes with the answers HTTP gives', async () => {
    const created = await local.create('/api/v1/namespaces/default/configmaps', cm('lt-a'));
    expect(created.metadata?.uid).to.be.a('string');
    expect(await http.get('/api/v1/namespaces/default/configmaps/lt-a')).to.deep.equal(created);
    const updated = await local.update('/api/v1/namespaces/default/configmaps/lt-a', { ...created, data: { a: '2' } });
    expect(Number(updated.metadata?.resourceVersion)).to.be.greaterThan(Number(created.metadata?.resourceVersion));
    const patched = await local.patch('/api/v1/namespaces/default/configmaps/lt-a', { data: { b: '3' } });
    expect(patched.data).to.deep.equal({ a: '2', b: '3' });
    expect((await local.list('/api/v1/namespaces/default/configmaps')).items.map((i) => i.metadata?.name)).to.include('lt-a');
    await local.delete('/api/v1/namespaces/default/configmaps/lt-a');
    const gone = (await http.get('/api/v1/namespaces/default/configmaps/lt-a').catch((e: unknown) => e)) as ApiStatusError;
    expect(gone.code).to.equal(404);
  });

  it('answers bad input and conflicts with the same Status as HTTP, and changes nothing', async () => {
    const bad = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'lt-bad' }, data: { a: 1 } };
    const viaLocal = (await local.create('/api/v1/namespaces/default/configmaps', bad).catch((e: unknown) => e)) as ApiStatusError;
    const viaHttp = (await http.create('/api/v1/namespaces/default/configmaps', bad).catch((e: unknown) => e)) as ApiStatusError;
    expect(viaLocal).to.be.instanceOf(ApiStatusError);
    expect([viaLocal.code, viaLocal.reason, viaLocal.message]).to.deep.equal([viaHttp.code, viaHttp.reason, viaHttp.message]);
    expect(viaLocal.message).to.contain('data.a');
    await local.create('/api/v1/namespaces/default/configmaps', cm('lt-b'));
    const dup = (await local.create('/api/v1/namespaces/default/configmaps', cm('lt-b')).catch((e: unknown) => e)) as ApiStatusError;
    expect([dup.code, dup.reason]).to.deep.equal([409, 'AlreadyExists']);
    const stale = (await local.update('/api/v1/namespaces/default/configmaps/lt-b', { ...cm('lt-b', { a: 'x' }), metadata: { name: 'lt-b', resourceVersion: '1' } }).catch((e: unknown) => e)) as ApiStatusError;
    expect([stale.code, stale.reason]).to.deep.equal([409, 'Conflict']);
    expect((await http.get('/api/v1/namespaces/default/configmaps/lt-b')).data).to.deep.equal({ a: '1' });
  });

  it('authenticates and authorizes each request: a wrong token is 401, as over HTTP', async () => {
    const stranger = new ApiClient({ server: server.url, token: 'not-the-token', transport: server.localTransport() });
    try {
      const err = (await stranger.get('/api/v1/namespaces/default/configmaps').catch((e: unknown) => e)) as ApiStatusError;
      expect([err.code, err.reason]).to.deep.equal([401, 'Unauthorized']);
    } finally {
      stranger.close();
    }
  });

  it('watches from a resourceVersion, in order, and ends when the client stops it', async () => {
    const start = String((await local.list('/api/v1/namespaces/default/configmaps')).metadata.resourceVersion);
    const seen: string[] = [];
    const stop = new AbortController();
    const watching = local.watch('/api/v1/namespaces/default/configmaps', start, (e: WatchEvent) => {
      if (e.type !== 'BOOKMARK') seen.push(`${e.type} ${e.object.metadata?.name} ${e.object.metadata?.resourceVersion}`);
    }, stop.signal);
    const a = await http.create('/api/v1/namespaces/default/configmaps', cm('lt-w1'));
    const b = await http.patch('/api/v1/namespaces/default/configmaps/lt-w1', { data: { a: '9' } });
    await http.delete('/api/v1/namespaces/default/configmaps/lt-w1');
    await until(() => seen.length >= 3, 10_000, 'three events');
    expect(seen.slice(0, 2)).to.deep.equal([`ADDED lt-w1 ${a.metadata?.resourceVersion}`, `MODIFIED lt-w1 ${b.metadata?.resourceVersion}`]);
    expect(seen[2]).to.match(/^DELETED lt-w1 \d+$/);
    stop.abort();
    await watching;
    expect(server['watches'].size).to.equal(0);
  });

  it('delivers a 410 Expired ERROR event for a revision the cache no longer has, as HTTP does', async () => {
    for (let i = 0; i < 6; i++) await http.create('/api/v1/namespaces/default/configmaps', cm(`lt-old-${i}`));
    const events: WatchEvent[] = [];
    await local.watch('/api/v1/namespaces/default/configmaps', '1', (e) => events.push(e), new AbortController().signal);
    expect(events).to.have.length(1);
    expect(events[0]!.type).to.equal('ERROR');
    expect((events[0]!.object as { code?: number }).code).to.equal(410);
  });

  it('ends a watch when the server ends it (timeoutSeconds), after every event sent before', async () => {
    const start = String((await local.list('/api/v1/namespaces/default/configmaps')).metadata.resourceVersion);
    const seen: string[] = [];
    const began = Date.now();
    const watching = local.watch('/api/v1/namespaces/default/configmaps?timeoutSeconds=1', start, (e) => void (e.type === 'ADDED' && seen.push(String(e.object.metadata?.name))), new AbortController().signal);
    await http.create('/api/v1/namespaces/default/configmaps', cm('lt-t1'));
    await watching;
    expect(Date.now() - began).to.be.within(900, 5_000);
    expect(seen).to.deep.equal(['lt-t1']);
  });

  it('refuses requests once the client is closed', async () => {
    const c = new ApiClient({ server: server.url, token, transport: server.localTransport() });
    c.close();
    const err = (await c.get('/api/v1/namespaces').catch((e: unknown) => e)) as Error;
    expect(err.message).to.match(/closed/);
  });
});
