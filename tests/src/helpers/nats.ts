import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NatsServer, Store, type NatsServerOptions, type StoreOptions } from '@kubernel/core';
import { createTestHost, type TestHost } from '@kubernel/sdk/testing';

/** A nats-server for a test file, in a temporary directory, logging into a captured logger. */
export interface TestNats {
  readonly server: NatsServer;
  readonly host: TestHost;
  readonly dir: string;
  /** Opens a store on this server (each store has its own connection and watch cache). */
  open(options?: Partial<StoreOptions>): Promise<Store>;
  /** Stops the server and removes its directory. */
  dispose(): Promise<void>;
}

export async function startTestNats(options: Partial<NatsServerOptions> = {}): Promise<TestNats> {
  const host = createTestHost({ logLevel: 'info' });
  const dir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'kubernel-nats-'));
  const server = new NatsServer({ dataDir: dir, logger: host.logger, ...options });
  await server.start();
  const stores: Store[] = [];
  return {
    server,
    host,
    dir,
    async open(over = {}) {
      const store = await Store.open({ servers: [server.url], logger: host.logger, registry: host.registry, ...over });
      stores.push(store);
      return store;
    },
    async dispose() {
      for (const s of stores) await s.close();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
      host.dispose();
    },
  };
}
