import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger, Registry } from '@kubernel/sdk';
import { NatsServer, type SyncMode } from './nats-server.js';
import { Store, type StoreOptions } from './store.js';

/** Where the store's NATS comes from. */
export interface StoreSetup {
  /** The node's data dir: the embedded nats-server keeps its files under `<dataDir>/nats`. */
  readonly dataDir: string;
  /**
   * External NATS servers (several for a cluster); when absent, Kubernel starts and supervises its
   * own nats-server on 127.0.0.1 (the embedded default).
   */
  readonly servers?: readonly string[];
  /** Credentials and TLS for external servers. */
  readonly auth?: Pick<StoreOptions, 'token' | 'user' | 'password' | 'credsFile' | 'tls'>;
  /** Bucket replicas (external clusters: 3 or 5). */
  readonly replicas?: number;
  /** Embedded server durability; `always` (fsync before ack) by default. */
  readonly sync?: SyncMode;
  /** Refuse to start when the embedded server cannot fsync each write. */
  readonly requireSync?: boolean;
  /** Embedded server client port (0: a free one). */
  readonly port?: number;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Any other store setting. */
  readonly store?: Partial<Omit<StoreOptions, 'servers' | 'logger' | 'registry'>>;
}

/** An open store and, in embedded mode, the nats-server behind it. */
export interface OpenedStore {
  readonly store: Store;
  readonly server?: NatsServer;
  /** Closes the store, then stops the embedded server. */
  close(): Promise<void>;
}

/** Reads the embedded server's client token, creating it (mode 0600) on first use. */
async function embeddedToken(dir: string): Promise<string> {
  const file = join(dir, 'token');
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    const token = randomBytes(24).toString('base64url');
    await writeFile(file, `${token}\n`, { mode: 0o600 });
    return token;
  }
}

/**
 * Opens the store: on the given NATS servers, or on an embedded nats-server started (and
 * supervised) under the data dir, reachable only from loopback with a generated token.
 */
export async function openStore(setup: StoreSetup): Promise<OpenedStore> {
  if (setup.servers && setup.servers.length > 0) {
    const store = await Store.open({
      ...setup.store,
      ...setup.auth,
      servers: setup.servers,
      ...(setup.replicas ? { replicas: setup.replicas } : {}),
      logger: setup.logger,
      registry: setup.registry,
    });
    return { store, close: () => store.close() };
  }
  const dir = join(setup.dataDir, 'nats');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const token = await embeddedToken(dir);
  const server = new NatsServer({
    dataDir: dir,
    token,
    ...(setup.port !== undefined ? { port: setup.port } : {}),
    ...(setup.sync ? { sync: setup.sync } : {}),
    ...(setup.requireSync !== undefined ? { requireSync: setup.requireSync } : {}),
    logger: setup.logger,
  });
  await server.start();
  try {
    const store = await Store.open({ ...setup.store, servers: [server.url], token, logger: setup.logger, registry: setup.registry });
    return {
      store,
      server,
      close: async () => {
        await store.close();
        await server.stop();
      },
    };
  } catch (err) {
    await server.stop();
    throw err;
  }
}
