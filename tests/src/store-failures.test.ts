import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, NatsServer, openStore, Store, TooOldError, type StoreEntry, type WatchEvent } from '@kubernel/core';
import { createTestHost } from '@kubernel/sdk/testing';
import { Registry } from 'prom-client';
import { startTestNats, type TestNats } from './helpers/nats.js';
import { sleep, until } from './helpers/wait.js';

describe('store under failure (real nats-server processes)', function () {
  this.timeout(120_000);

  describe('on one managed server', () => {
    let nats: TestNats;
    beforeEach(async () => {
      nats = await startTestNats();
    });
    afterEach(async () => {
      await nats.dispose();
    });

    it('keeps every acknowledged write across kill -9 and restart', async () => {
      const store = await nats.open();
      const acked: StoreEntry[] = [];
      for (let base = 0; base < 500; base += 50) {
        acked.push(...(await Promise.all(Array.from({ length: 50 }, (_, i) => store.create(`/registry/durable/ns/k${base + i}`, { i: base + i })))));
      }
      const pid = nats.server.pid;
      nats.server.kill('SIGKILL');
      await until(() => nats.server.pid !== pid, 20_000, 'the supervisor to restart nats-server');
      await nats.server.waitReady();
      const fresh = await nats.open({ registry: new Registry() });
      const listed = await fresh.list('/registry/durable/');
      expect(listed.items).to.have.length(500);
      const byKey = new Map(listed.items.map((e) => [e.key, e]));
      for (const a of acked) {
        expect(byKey.get(a.key)?.revision, a.key).to.equal(a.revision);
        expect(byKey.get(a.key)?.value).to.deep.equal(a.value);
      }
    });

    it('resumes a watch across a server crash without losing or repeating events, or fails it loudly', async () => {
      const writer = await nats.open();
      const watcherStore = await nats.open({ registry: new Registry() });
      const watch = await watcherStore.watch('/registry/resume/');
      const events: WatchEvent[] = [];
      let isEnded = false;
      void watch.closed.then(() => (isEnded = true));
      const ended = (async () => {
        try {
          for await (const e of watch) events.push(e);
        } catch (err) {
          return err;
        }
        return undefined;
      })();
      const acked: number[] = [];
      let failures = 0;
      let i = 0;
      const pid = nats.server.pid;
      while (acked.length < 300) {
        if (acked.length === 100 && nats.server.pid === pid && failures === 0) nats.server.kill('SIGKILL');
        try {
          acked.push((await writer.create(`/registry/resume/ns/k${i}`, { i })).revision);
        } catch {
          failures++;
          await sleep(50);
        }
        i++;
      }
      expect(failures, 'writes failed while the server was down').to.be.greaterThan(0);
      await until(() => events.length >= acked.length || isEnded, 30_000, 'the watch to catch up');
      watch.stop();
      const error = await ended;
      if (error) {
        expect(error, 'a watch may only end with TooOldError').to.be.instanceOf(TooOldError);
        return;
      }
      const revisions = events.map((e) => e.revision);
      for (let k = 1; k < revisions.length; k++) expect(revisions[k]!, 'strictly increasing').to.be.greaterThan(revisions[k - 1]!);
      const seen = new Set(revisions);
      expect(acked.filter((r) => !seen.has(r)), 'acknowledged writes the watch missed').to.deep.equal([]);
    });
  });

  it('embedded: starts its own nats-server under the data dir, token-protected, and restarts it when it dies', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'kubernel-embedded-'));
    const host = createTestHost();
    try {
      const opened = await openStore({ dataDir, logger: host.logger, registry: host.registry });
      try {
        expect(statSync(join(dataDir, 'nats/token')).mode & 0o777).to.equal(0o600);
        expect(readFileSync(join(dataDir, 'nats/nats-server.conf'), 'utf8')).to.match(/authorization \{ token: /).and.match(/sync_interval: always/);
        expect(opened.server!.url).to.match(/^nats:\/\/127\.0\.0\.1:\d+$/);
        const a = await opened.store.create('/registry/embedded/ns/a', { v: 1 });
        const pid = opened.server!.pid;
        opened.server!.kill('SIGKILL');
        await until(() => opened.server!.pid !== pid, 20_000, 'restart');
        await opened.server!.waitReady();
        // Until the client has reconnected, writes fail with StoreUnavailableError (HTTP 503); retry.
        let b: StoreEntry | undefined;
        await until(async () => {
          b = await opened.store.update('/registry/embedded/ns/a', { v: 2 }, a.revision).catch((e: Error) => {
            expect(e.name).to.equal('StoreUnavailableError');
            return undefined;
          });
          return b !== undefined;
        }, 20_000, 'a write to succeed after the restart');
        b = b!;
        expect((await opened.store.get('/registry/embedded/ns/a'))!.revision).to.equal(b.revision);
        expect(host.logs.some((l) => String(l.msg).startsWith('nats-server exited (SIGKILL); restarting in'))).to.equal(true);
      } finally {
        await opened.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
      host.dispose();
    }
  });

  it('says plainly when an older nats-server cannot fsync each write, and refuses when fsync is required', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'kubernel-old-nats-'));
    const host = createTestHost();
    try {
      const strict = new NatsServer({ dataDir, binary: '/usr/sbin/nats-server', requireSync: true, logger: host.logger });
      const err = await strict.start().then(() => undefined, (e: Error) => e);
      expect(err?.message).to.equal(
        'nats-server 2.9.10 cannot fsync each write (sync_interval: always needs >= 2.10); refusing to start because fsync per write is required',
      );
      const lenient = new NatsServer({ dataDir, binary: '/usr/sbin/nats-server', logger: host.logger });
      await lenient.start();
      try {
        expect(lenient.sync).to.equal('interval');
        expect(host.logs.map((l) => String(l.msg))).to.include(
          'nats-server 2.9.10 cannot fsync each write (sync_interval: always needs >= 2.10): acknowledged writes survive a process crash but can be lost in an OS crash (fsync every 2 minutes)',
        );
      } finally {
        await lenient.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
      host.dispose();
    }
  });

  it('on a 3-node cluster with an R3 bucket: survives a node stopping, and the node catches up', async function () {
    this.timeout(180_000);
    const host = createTestHost({ logLevel: 'warn' });
    const dirs = [0, 1, 2].map(() => mkdtempSync(join(tmpdir(), 'kubernel-cluster-')));
    const ports = await Promise.all([0, 1, 2].map(async () => ({ port: await freePort(), monitorPort: await freePort(), route: await freePort() })));
    const routes = ports.map((p) => `nats-route://127.0.0.1:${p.route}`);
    const node = (i: number): NatsServer =>
      new NatsServer({
        dataDir: dirs[i]!,
        name: `node-${i}`,
        port: ports[i]!.port,
        monitorPort: ports[i]!.monitorPort,
        cluster: { name: 'kubernel-test', port: ports[i]!.route, routes: routes.filter((_, j) => j !== i) },
        logger: host.logger,
      });
    const servers = [node(0), node(1), node(2)];
    let store: Store | undefined;
    try {
      await Promise.all(servers.map((s) => s.start()));
      store = await Store.open({ servers: servers.map((s) => s.url), replicas: 3, logger: host.logger, registry: host.registry });
      const watch = await store.watch('/registry/ha/');
      const events: WatchEvent[] = [];
      void (async () => {
        for await (const e of watch) events.push(e);
      })().catch(() => undefined);
      const write = async (from: number, to: number): Promise<number[]> => {
        const revs: number[] = [];
        for (let i = from; i < to; i++) {
          for (let attempt = 0; ; attempt++) {
            try {
              revs.push((await store!.create(`/registry/ha/ns/k${i}`, { i })).revision);
              break;
            } catch (err) {
              if (attempt > 100) throw err;
              await sleep(100);
            }
          }
        }
        return revs;
      };
      const before = await write(0, 50);
      await servers[2]!.stop();
      const during = await write(50, 100);
      await until(() => events.length >= 100, 30_000, 'watch events while a node is down');
      servers[2] = node(2);
      await servers[2].start();
      const last = during[during.length - 1]!;
      const lastSeqOn = async (i: number): Promise<number> => {
        const res = await fetch(`http://127.0.0.1:${ports[i]!.monitorPort}/jsz?accounts=true&streams=true`);
        const jsz = (await res.json()) as { account_details?: Array<{ stream_detail?: Array<{ name: string; state: { last_seq: number } }> }> };
        const stream = jsz.account_details?.flatMap((a) => a.stream_detail ?? []).find((s) => s.name === 'KV_kubernel');
        return stream?.state.last_seq ?? 0;
      };
      await until(async () => (await lastSeqOn(2)) >= last, 60_000, 'the restarted node to catch up');
      expect(events.map((e) => e.revision)).to.deep.equal([...before, ...during]);
      expect((await store.list('/registry/ha/')).items).to.have.length(100);
      watch.stop();
    } finally {
      await store?.close();
      await Promise.all(servers.map((s) => s.stop()));
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
      host.dispose();
    }
  });
});
