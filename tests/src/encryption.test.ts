import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { Store } from '@kubernel/core';
import { createTestHost } from '@kubernel/sdk/testing';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { FIXTURES, KUBERNEL_BIN } from './helpers/paths.js';
import { run } from './helpers/processes.js';

const config = (keys: Array<[string, Buffer]>, identityLast = true): string =>
  JSON.stringify({
    apiVersion: 'apiserver.config.k8s.io/v1',
    kind: 'EncryptionConfiguration',
    resources: [{ resources: ['secrets'], providers: [{ aesgcm: { keys: keys.map(([name, k]) => ({ name, secret: k.toString('base64') })) } }, ...(identityLast ? [{ identity: {} }] : [])] }],
  });

/** The bytes NATS holds for `key`, read past the API server through a store with a pass-through codec. */
async function rawBytes(c: TestCluster, key: string): Promise<Buffer> {
  const host = createTestHost({ logLevel: 'error' });
  const store = await Store.open({
    servers: [c.natsUrl],
    token: readFileSync(join(c.dataDir, 'nats', 'token'), 'utf8').trim(),
    logger: host.logger,
    registry: host.registry,
    // latin1 text keeps every byte (a Buffer cannot be frozen by the store's cache).
    codec: { encode: (_k, v) => Buffer.from(v as string, 'latin1'), decode: (_k, b) => Buffer.from(b).toString('latin1') },
  });
  try {
    return Buffer.from((await store.get(key))!.value as string, 'latin1');
  } finally {
    await store.close();
    host.dispose();
  }
}

describe('secrets encrypted at rest (EncryptionConfiguration, aesgcm)', function () {
  this.timeout(90_000);
  const dir = mkdtempSync(join(tmpdir(), 'kubernel-encryption-'));
  const dataDir = join(dir, 'data');
  const file = join(dir, 'encryption.yaml');
  const key1 = randomBytes(32);
  const key2 = randomBytes(32);
  const flags = ['--encryption-provider-config', file, '--distribution', join(FIXTURES, 'distributions', 'authn-only.yaml')];
  let c: TestCluster | undefined;

  after(async () => {
    await c?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('never lets a secret\'s plaintext reach NATS, and serves it decrypted', async () => {
    writeFileSync(file, config([['key1', key1]]));
    c = await startCluster(flags, dataDir);
    expect(c.process.stdout()).to.contain('encryption at rest for /registry/core/secrets/');
    await c.ok(['create', 'secret', 'generic', 'db', '--from-literal=password=hunter2-plaintext-marker']);
    await c.ok(['create', 'configmap', 'plain', '--from-literal=a=visible-marker']);
    const raw = await rawBytes(c, '/registry/core/secrets/default/db');
    expect(raw.subarray(0, 23).toString()).to.equal('k8s:enc:aesgcm:v1:key1:');
    expect(raw.includes('hunter2')).to.equal(false);
    expect(raw.includes(Buffer.from('hunter2-plaintext-marker').toString('base64'))).to.equal(false);
    expect(raw.includes('"name":"db"')).to.equal(false);
    expect((await rawBytes(c, '/registry/core/configmaps/default/plain')).includes('visible-marker')).to.equal(true);
    const data = await c.ok(['get', 'secret', 'db', '-o', 'jsonpath={.data.password}']);
    expect(Buffer.from(data, 'base64').toString()).to.equal('hunter2-plaintext-marker');
  });

  it('rotates: with a new first key, stored secrets are re-encrypted at start, and the old key can then go', async () => {
    await c!.stop(true);
    writeFileSync(file, config([['key2', key2], ['key1', key1]]));
    c = await startCluster(flags, dataDir);
    expect(c.process.stdout()).to.contain('1 object(s) re-encrypted with the current key');
    expect((await rawBytes(c, '/registry/core/secrets/default/db')).subarray(0, 23).toString()).to.equal('k8s:enc:aesgcm:v1:key2:');
    await c.stop(true);
    writeFileSync(file, config([['key2', key2]], false));
    c = await startCluster(flags, dataDir);
    expect(c.process.stdout()).to.not.contain('re-encrypted');
    expect(Buffer.from(await c.ok(['get', 'secret', 'db', '-o', 'jsonpath={.data.password}']), 'base64').toString()).to.equal('hunter2-plaintext-marker');
  });

  it('refuses a bad configuration, naming the field, and starts nothing', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, JSON.stringify({ kind: 'EncryptionConfiguration', resources: [{ resources: ['secrets'], providers: [{ aesgcm: { keys: [{ name: 'k', secret: Buffer.from('short').toString('base64') }] } }] }] }));
    const r = await run(process.execPath, [KUBERNEL_BIN, 'server', '--data-dir', join(dir, 'other'), '--encryption-provider-config', bad, '--api-port', '0']);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.contain('resources[0].providers[0].aesgcm.keys[0].secret: must be 16, 24 or 32 bytes');
  });
});
