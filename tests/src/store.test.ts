import { expect } from 'chai';
import { ConflictError, KeyExistsError, NotFoundError, TooOldError, type Store, type StoreEntry } from '@kubernel/core';
import { Registry } from 'prom-client';
import { startTestNats, type TestNats } from './helpers/nats.js';
import { collect, sleep, until } from './helpers/wait.js';

const errorOf = (p: Promise<unknown>): Promise<unknown> => p.then(() => undefined, (e: unknown) => e);

describe('store on a real nats-server', function () {
  this.timeout(60_000);
  let nats: TestNats;
  let store: Store;

  before(async () => {
    nats = await startTestNats();
    store = await nats.open({ cache: { compactionIntervalMs: 0 } });
  });
  after(async () => {
    await nats?.dispose();
  });

  it('runs nats-server >= 2.10 with fsync before every acknowledgement', () => {
    expect(nats.server.version!.minor).to.be.greaterThanOrEqual(10);
    expect(nats.server.sync).to.equal('always');
    expect(nats.host.logs.some((l) => String(l.msg).includes('durability: every write fsynced before it is acknowledged'))).to.equal(true);
  });

  it('creates, refuses duplicates, compares-and-swaps, deletes with preconditions, and recreates', async () => {
    const key = '/registry/configmaps/crud/a';
    const created = await store.create(key, { v: 1 });
    expect(await errorOf(store.create(key, { v: 2 }))).to.be.instanceOf(KeyExistsError);
    const updated = await store.update(key, { v: 2 }, created.revision);
    expect(updated.revision).to.be.greaterThan(created.revision);
    const stale = (await errorOf(store.update(key, { v: 3 }, created.revision))) as ConflictError;
    expect(stale).to.be.instanceOf(ConflictError);
    expect(stale.actual).to.equal(updated.revision);
    expect(await errorOf(store.update('/registry/configmaps/crud/none', {}, 1))).to.be.instanceOf(NotFoundError);
    expect(await errorOf(store.delete(key, { expectedRevision: created.revision }))).to.be.instanceOf(ConflictError);
    expect(await errorOf(store.delete(key, { precondition: () => { throw new Error('uid mismatch'); } }))).to.have.property('message', 'uid mismatch');
    const deleted = await store.delete(key, { expectedRevision: updated.revision });
    expect(deleted.deleted.value).to.deep.equal({ v: 2 });
    expect(await store.get(key)).to.equal(undefined);
    expect(await errorOf(store.delete(key))).to.be.instanceOf(NotFoundError);
    expect(await errorOf(store.update(key, {}, deleted.revision))).to.be.instanceOf(NotFoundError);
    const again = await store.create(key, { v: 'again' });
    expect(again.revision).to.be.greaterThan(deleted.revision);
    expect((await store.get(key))!.value).to.deep.equal({ v: 'again' });
  });

  it('lets exactly one of N racing compare-and-swaps win each round, and loses no update', async () => {
    const stores = [store, await nats.open({ registry: new Registry() }), await nats.open({ registry: new Registry() })];
    const key = '/registry/counters/race/c';
    let current = await store.create(key, { n: 0 });
    for (let round = 0; round < 20; round++) {
      const results = await Promise.allSettled(
        Array.from({ length: 12 }, (_, i) => stores[i % stores.length]!.update(key, { n: round + 1, by: i }, current.revision)),
      );
      const winners = results.filter((r): r is PromiseFulfilledResult<StoreEntry> => r.status === 'fulfilled');
      expect(winners, `round ${round}`).to.have.length(1);
      expect(results.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason instanceof ConflictError)).to.equal(true);
      current = winners[0]!.value;
    }
    // guaranteedUpdate: 3 stores x 4 writers x 25 increments, all counted.
    await store.update(key, { n: 0 }, current.revision);
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        (async () => {
          for (let j = 0; j < 25; j++) await stores[i % 3]!.guaranteedUpdate(key, (cur) => ({ n: (cur.value as { n: number }).n + 1 }));
        })(),
      ),
    );
    expect((await store.get(key))!.value).to.deep.equal({ n: 300 });
  });

  it('reads its writes across stores: a write acknowledged by one is in the other\'s next get, list and watch', async () => {
    const other = await nats.open({ registry: new Registry() });
    for (let i = 0; i < 50; i++) {
      const w = await store.create(`/registry/ryw/ns/k${i}`, { i });
      const got = await other.get(`/registry/ryw/ns/k${i}`);
      expect(got?.revision, `get ${i}`).to.equal(w.revision);
      const listed = await other.list('/registry/ryw/');
      expect(listed.revision).to.be.greaterThanOrEqual(w.revision);
      expect(listed.items).to.have.length(i + 1);
    }
  });

  it('watches from a revision: exactly the later events, in order; too old fails with TooOldError', async () => {
    const small = await nats.open({ registry: new Registry(), cache: { windowSize: 20 } });
    const revisions: number[] = [];
    for (let i = 0; i < 40; i++) revisions.push((await store.create(`/registry/w/ns/k${i}`, { i })).revision);
    await small.get('/registry/w/ns/k0');
    const from = revisions[29]!;
    const watch = await small.watch('/registry/w/', { fromRevision: from });
    const later = await store.update('/registry/w/ns/k0', { i: 'x' }, revisions[0]!);
    const got = collect(watch);
    await until(() => got.events.length === 11, 5000, 'events');
    watch.stop();
    expect(got.events.map((e) => e.revision)).to.deep.equal([...revisions.slice(30), later.revision]);
    expect(got.events.map((e) => e.type)).to.deep.equal([...Array(10).fill('ADDED'), 'MODIFIED']);
    const err = (await errorOf(small.watch('/registry/w/', { fromRevision: revisions[5]! }))) as TooOldError;
    expect(err).to.be.instanceOf(TooOldError);
    expect(err.message).to.match(/^too old resource version: \d+ \(\d+\)$/);
  });

  it('pages 10,000 keys with limit/continue as one snapshot while writes happen', async function () {
    this.timeout(120_000);
    const prefix = '/registry/page/ns/';
    const name = (i: number): string => `${prefix}k${String(i).padStart(5, '0')}`;
    const log: Array<{ revision: number; key: string; value: unknown }> = [];
    for (let base = 0; base < 10_000; base += 500) {
      const batch = await Promise.all(Array.from({ length: 500 }, (_, j) => store.create(name(base + j), { gen: 0 })));
      for (const e of batch) log.push({ revision: e.revision, key: e.key, value: e.value });
    }
    let writing = true;
    const writer = (async () => {
      let n = 0;
      while (writing) {
        const i = (n * 7919) % 10_000;
        const entry = await store.guaranteedUpdate(name(i), (cur) => ({ gen: (cur.value as { gen: number }).gen + 1 }));
        log.push({ revision: entry.revision, key: entry.key, value: entry.value });
        if (n % 5 === 0) {
          const created = await store.create(`${prefix}new${n}`, { gen: 0 });
          log.push({ revision: created.revision, key: created.key, value: created.value });
        }
        n++;
      }
    })();
    await sleep(50);
    const pages: StoreEntry[][] = [];
    let token: string | undefined;
    let revision: number | undefined;
    do {
      const page = await store.list(prefix, { limit: 500, ...(token ? { continue: token } : {}) });
      revision ??= page.revision;
      expect(page.revision).to.equal(revision);
      pages.push(page.items);
      token = page.continue;
      await sleep(5);
    } while (token);
    writing = false;
    await writer;
    const expected = new Map<string, unknown>();
    for (const e of log) if (e.revision <= revision!) expected.set(e.key, e.value);
    const got = new Map(pages.flat().map((e) => [e.key, e.value]));
    expect(log.filter((e) => e.revision > revision!).length, 'writes during the list').to.be.greaterThan(0);
    expect(got.size).to.equal(expected.size);
    for (const [k, v] of expected) expect(got.get(k), k).to.deep.equal(v);
  });

  it('compacts deleted keys: their history leaves NATS, recreation still works, watches see no gap', async () => {
    const compacting = await nats.open({ registry: new Registry(), cache: { compactionMinAgeMs: 0, compactionIntervalMs: 0 } });
    const watch = await compacting.watch('/registry/compact/');
    const got = collect(watch);
    const a = await compacting.create('/registry/compact/ns/a', { v: 1 });
    await compacting.update('/registry/compact/ns/a', { v: 2 }, a.revision);
    await compacting.delete('/registry/compact/ns/a');
    await compacting.get('/registry/compact/ns/a');
    expect(await compacting.compact()).to.equal(3);
    const b = await compacting.create('/registry/compact/ns/a', { v: 3 });
    await until(() => got.events.length === 4, 5000, 'events');
    expect(got.events.map((e) => e.type)).to.deep.equal(['ADDED', 'MODIFIED', 'DELETED', 'ADDED']);
    expect(got.events[3]!.revision).to.equal(b.revision);
    watch.stop();
    const fresh = await nats.open({ registry: new Registry() });
    expect((await fresh.get('/registry/compact/ns/a'))!.value).to.deep.equal({ v: 3 });
  });

  it('exports store metrics', async () => {
    const text = await nats.host.registry.metrics();
    expect(text).to.match(/kubernel_store_request_duration_seconds_count\{operation="create",result="ok"\} \d+/);
    expect(text).to.contain('kubernel_store_watch_cache_revision');
    expect(text).to.contain('kubernel_store_nats_connected 1');
  });
});
