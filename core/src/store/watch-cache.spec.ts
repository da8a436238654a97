import { expect } from 'chai';
import { createTestHost, type TestHost } from '@kubernel/sdk/testing';
import { jsonCodec } from './codec.js';
import { ExpiredError, InvalidContinueError, TooLargeRevisionError, TooOldError } from './errors.js';
import { toSubjectKey } from './keys.js';
import type { Tail, TailRecord } from './nats-backend.js';
import { StoreMetrics } from './store-metrics.js';
import { WatchCache, type CacheBackend, type WatchCacheOptions } from './watch-cache.js';
import { WatchClosedError, type Watch, type WatchEvent } from './watcher.js';

/** A scripted stand-in for NATS: the test pushes records into the cache's tail. */
class FakeBackend implements CacheBackend {
  tails = 0;
  froms: Array<'latest-per-key' | number> = [];
  purged: Array<[string, number]> = [];
  private onRecord?: (r: TailRecord) => void;
  constructor(public state = { messages: 0, firstRevision: 0, lastRevision: 0 }) {}
  async streamState() {
    return this.state;
  }
  async tail(_filter: string, from: 'latest-per-key' | number, onRecord: (r: TailRecord) => void): Promise<Tail> {
    this.tails++;
    this.froms.push(from);
    this.onRecord = onRecord;
    return { stop: () => undefined, done: new Promise(() => undefined) };
  }
  async purgeBefore(key: string, revision: number) {
    this.purged.push([key, revision]);
    return 1;
  }
  put(revision: number, key: string, value: unknown, pending = 0): void {
    this.onRecord!({ revision, key: toSubjectKey(key), op: 'PUT', data: jsonCodec.encode(key, value), pending, storedAtMs: Date.now() });
  }
  del(revision: number, key: string, pending = 0): void {
    this.onRecord!({ revision, key: toSubjectKey(key), op: 'DEL', data: new Uint8Array(), pending, storedAtMs: Date.now() });
  }
}

const options: WatchCacheOptions = {
  windowSize: 100,
  watcherCapacity: 100,
  bookmarkIntervalMs: 60_000,
  snapshotTtlMs: 60_000,
  compactionMinAgeMs: 0,
  compactionIntervalMs: 0,
  stallCheckIntervalMs: 60_000,
};

async function take(watch: Watch, n: number): Promise<WatchEvent[]> {
  const events: WatchEvent[] = [];
  for await (const e of watch) {
    events.push(e);
    if (events.length === n) break;
  }
  return events;
}
const brief = (events: WatchEvent[]): string[] => events.map((e) => `${e.type} ${e.key} ${e.revision}`);

describe('WatchCache (scripted backend)', () => {
  let host: TestHost;
  let backend: FakeBackend;
  let cache: WatchCache;
  const start = async (over: Partial<WatchCacheOptions> = {}, state?: FakeBackend['state']): Promise<void> => {
    backend = new FakeBackend(state);
    cache = new WatchCache(backend, jsonCodec, { ...options, ...over }, host.logger, new StoreMetrics(host.registry));
    await cache.start();
  };

  beforeEach(() => {
    host = createTestHost();
  });
  afterEach(() => {
    cache?.stop();
    host.dispose();
  });

  it('is ready at once on an empty bucket, at its last revision', async () => {
    await start({}, { messages: 0, firstRevision: 8, lastRevision: 7 });
    expect(cache.ready).to.equal(true);
    expect(cache.revision).to.equal(7);
  });

  it('loads the latest entry per key, then is ready when nothing is pending', async () => {
    backend = new FakeBackend({ messages: 3, firstRevision: 1, lastRevision: 9 });
    cache = new WatchCache(backend, jsonCodec, options, host.logger, new StoreMetrics(host.registry));
    const started = cache.start();
    await new Promise((r) => setImmediate(r));
    backend.put(3, '/r/a', { v: 'a' }, 2);
    backend.del(5, '/r/gone', 1);
    expect(cache.ready).to.equal(false);
    backend.put(9, '/r/b', { v: 'b' }, 0);
    await started;
    expect(cache.ready).to.equal(true);
    expect(cache.revision).to.equal(9);
    expect(cache.list('/r/').items.map((e) => [e.key, e.revision])).to.deep.equal([['/r/a', 3], ['/r/b', 9]]);
    expect(Object.isFrozen(cache.get('/r/a')!.value)).to.equal(true);
  });

  it('delivers exactly the changes after a revision, in order', async () => {
    await start();
    backend.put(1, '/r/a', { n: 1 });
    backend.put(2, '/r/b', { n: 1 });
    backend.put(3, '/r/a', { n: 2 });
    backend.del(4, '/r/b');
    backend.put(5, '/other/x', {});
    const watch = cache.watch('/r/', { fromRevision: 1 });
    backend.put(6, '/r/c', {});
    expect(brief(await take(watch, 4))).to.deep.equal(['ADDED /r/b 2', 'MODIFIED /r/a 3', 'DELETED /r/b 4', 'ADDED /r/c 6']);
  });

  it('refuses a watch older than the window with TooOldError', async () => {
    await start({ windowSize: 3 });
    for (let i = 1; i <= 10; i++) backend.put(i, `/r/k${i}`, {});
    expect(() => cache.watch('/r/', { fromRevision: 5 })).to.throw(TooOldError, 'too old resource version: 5 (7)');
    expect(brief(await take(cache.watch('/r/', { fromRevision: 7 }), 3))).to.deep.equal(['ADDED /r/k8 8', 'ADDED /r/k9 9', 'ADDED /r/k10 10']);
  });

  it('ignores replayed entries and relists on a gap, ending watches with TooOldError', async () => {
    await start();
    backend.put(1, '/r/a', {});
    backend.put(1, '/r/a', { replayed: true });
    expect(cache.get('/r/a')!.value).to.deep.equal({});
    const watch = cache.watch('/r/');
    backend.put(3, '/r/b', {});
    await new Promise((r) => setImmediate(r));
    expect(backend.tails).to.equal(2);
    const err = await take(watch, 1).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(TooOldError);
    expect(await host.registry.getSingleMetricAsString('kubernel_store_watch_cache_relists_total')).to.match(/ 1$/);
  });

  it('restarts a stalled consumer from its next revision, keeping its state', async () => {
    await start({ stallCheckIntervalMs: 5 });
    backend.put(1, '/r/a', {});
    const watch = cache.watch('/r/');
    backend.state = { messages: 2, firstRevision: 1, lastRevision: 2 };
    await new Promise((r) => setTimeout(r, 60));
    expect(backend.froms.slice(0, 2)).to.deep.equal(['latest-per-key', 2]);
    backend.put(2, '/r/b', {});
    expect(brief(await take(watch, 1))).to.deep.equal(['ADDED /r/b 2']);
    expect(cache.get('/r/a')).to.not.equal(undefined);
  });

  it('waits for a revision, and times out with TooLargeRevisionError', async () => {
    await start();
    const waiting = cache.waitFor(2, 5000);
    backend.put(1, '/r/a', {});
    backend.put(2, '/r/b', {});
    await waiting;
    const err = await cache.waitFor(3, 20).then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(TooLargeRevisionError);
  });

  it('pages a list from one snapshot while the data changes', async () => {
    await start();
    for (let i = 0; i < 10; i++) backend.put(i + 1, `/r/k${i}`, { i });
    const first = cache.list('/r/', { limit: 4 });
    expect(first.items.map((e) => e.key)).to.deep.equal(['/r/k0', '/r/k1', '/r/k2', '/r/k3']);
    expect(first.revision).to.equal(10);
    backend.del(11, '/r/k5');
    backend.put(12, '/r/k6', { i: 'changed' });
    backend.put(13, '/r/k55', {});
    const keys = [...first.items.map((e) => e.key)];
    let token = first.continue;
    while (token) {
      const page = cache.list('/r/', { limit: 4, continue: token });
      expect(page.revision).to.equal(10);
      keys.push(...page.items.map((e) => e.key));
      if (page.items.some((e) => e.key === '/r/k6')) expect(page.items.find((e) => e.key === '/r/k6')!.value).to.deep.equal({ i: 6 });
      token = page.continue;
    }
    expect(keys).to.deep.equal(['/r/k0', '/r/k1', '/r/k2', '/r/k3', '/r/k4', '/r/k5', '/r/k6', '/r/k7', '/r/k8', '/r/k9']);
    expect(cache.list('/r/').items.map((e) => e.key)).to.include('/r/k55').and.not.include('/r/k5');
    expect(() => cache.list('/r/', { continue: 'bm90IGEgdG9rZW4' })).to.throw(InvalidContinueError);
    expect(() => cache.list('/other/', { continue: first.continue })).to.throw(InvalidContinueError);
  });

  it('lists exactly at a revision: the current one or a retained snapshot, else TooOldError', async () => {
    await start();
    for (let i = 0; i < 3; i++) backend.put(i + 1, `/r/k${i}`, {});
    cache.list('/r/', { limit: 1 });
    backend.del(4, '/r/k0');
    expect(cache.list('/r/', { atRevision: 3 }).items.map((e) => e.key)).to.deep.equal(['/r/k0', '/r/k1', '/r/k2']);
    expect(cache.list('/r/', { atRevision: 4 }).items.map((e) => e.key)).to.deep.equal(['/r/k1', '/r/k2']);
    expect(() => cache.list('/r/', { atRevision: 2 })).to.throw(TooOldError);
  });

  it('expires snapshots after their TTL', async () => {
    await start({ snapshotTtlMs: 5 });
    for (let i = 0; i < 3; i++) backend.put(i + 1, `/r/k${i}`, {});
    const first = cache.list('/r/', { limit: 1 });
    backend.put(4, '/r/k9', {});
    await new Promise((r) => setTimeout(r, 30));
    expect(() => cache.list('/r/', { continue: first.continue })).to.throw(ExpiredError);
  });

  it('applies a filter with Kubernetes semantics: match changes become ADDED and DELETED', async () => {
    await start();
    backend.put(1, '/r/a', { color: 'blue' });
    backend.put(2, '/r/b', { color: 'red' });
    const watch = cache.watch('/r/', { filter: (v) => (v as { color: string }).color === 'red' });
    backend.put(3, '/r/a', { color: 'red' });
    backend.put(4, '/r/a', { color: 'red', size: 1 });
    backend.put(5, '/r/b', { color: 'blue' });
    backend.del(6, '/r/b');
    backend.del(7, '/r/a');
    const events = await take(watch, 4);
    expect(brief(events)).to.deep.equal(['ADDED /r/a 3', 'MODIFIED /r/a 4', 'DELETED /r/b 5', 'DELETED /r/a 7']);
    expect(events[3]!.value).to.deep.equal({ color: 'red', size: 1 });
  });

  it('starts with the current state when asked, then follows', async () => {
    await start();
    backend.put(1, '/r/a', {});
    backend.put(2, '/s/x', {});
    const watch = cache.watch('/r/', { initialState: true });
    backend.put(3, '/r/b', {});
    expect(brief(await take(watch, 2))).to.deep.equal(['ADDED /r/a 1', 'ADDED /r/b 3']);
  });

  it('sends bookmarks at the current revision to watchers that asked', async () => {
    await start();
    const watch = cache.watch('/r/', { bookmarks: true });
    const silent = cache.watch('/r/');
    backend.put(1, '/s/x', {});
    cache.sendBookmarks();
    expect(brief(await take(watch, 1))).to.deep.equal(['BOOKMARK  1']);
    silent.stop();
    expect(await silent.closed).to.equal(undefined);
  });

  it('closes a watcher that falls too far behind', async () => {
    await start({ watcherCapacity: 2 });
    const watch = cache.watch('/r/');
    for (let i = 1; i <= 3; i++) backend.put(i, `/r/k${i}`, {});
    expect(await watch.closed).to.be.instanceOf(WatchClosedError);
    expect(cache.watcherCount).to.equal(0);
  });

  it('keeps an undecodable value out of the cache and says so', async () => {
    await start();
    backend.put(1, '/r/a', {});
    (backend as unknown as { onRecord: (r: TailRecord) => void }).onRecord({
      revision: 2, key: toSubjectKey('/r/a'), op: 'PUT', data: new TextEncoder().encode('{not json'), pending: 0, storedAtMs: Date.now(),
    });
    expect(cache.get('/r/a')).to.equal(undefined);
    expect(host.logs.some((l) => String(l.msg).startsWith('cannot decode /r/a at revision 2'))).to.equal(true);
  });

  it('compacts deleted keys old enough, purging up to and including the tombstone', async () => {
    await start({ compactionMinAgeMs: 0 });
    backend.put(1, '/r/a', {});
    backend.del(2, '/r/a');
    backend.put(3, '/r/b', {});
    expect(await cache.compact()).to.equal(1);
    expect(backend.purged).to.deep.equal([['r.a', 3]]);
    expect(await cache.compact()).to.equal(0);
  });
});
