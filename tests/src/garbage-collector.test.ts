import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { ROOT } from './helpers/paths.js';
import { sleep, until } from './helpers/wait.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const NS = 'gc';
type Kind = 'ConfigMap' | 'Secret' | 'ClusterRole';
const PATHS: Record<Kind, string> = {
  ConfigMap: `/api/v1/namespaces/${NS}/configmaps`,
  Secret: `/api/v1/namespaces/${NS}/secrets`,
  ClusterRole: '/apis/rbac.authorization.k8s.io/v1/clusterroles',
};
const API_VERSIONS: Record<Kind, string> = { ConfigMap: 'v1', Secret: 'v1', ClusterRole: 'rbac.authorization.k8s.io/v1' };

/** An owner reference to `o` (an object this file created). */
const ownerRef = (o: Json, extra: Json = {}): Json => ({ apiVersion: o.apiVersion, kind: o.kind, name: o.metadata.name, uid: o.metadata.uid, ...extra });

/** A distribution whose server role runs only x509 authentication, namespace lifecycle admission and the garbage collector. */
function writeDistribution(dir: string): string {
  const plugin = (id: string, pkg: string, config?: string): string => `        - { id: ${id}, package: "${join(ROOT, 'plugins', pkg)}"${config ? `, config: ${config}` : ''} }`;
  const lines = [
    'apiVersion: kubernel.io/v1alpha1',
    'kind: Distribution',
    'metadata: { name: gc-test }',
    'spec:',
    '  roles:',
    '    server:',
    '      plugins:',
    plugin('authn-x509', 'authn'),
    plugin('namespace-lifecycle', 'admission'),
    plugin('garbage-collector', 'controllers', '{ workers: 8, rediscoverySeconds: 5 }'),
    '    agent: { plugins: [] }',
    '',
  ];
  const file = join(dir, 'distribution.yaml');
  writeFileSync(file, lines.join('\n'));
  return file;
}

describe('garbage collector (kubernel server with the garbage-collector plugin)', function () {
  this.timeout(60_000);
  let c: TestCluster;
  let dir: string;

  const create = async (kind: Kind, name: string, owners: Json[] = [], finalizers: string[] = []): Promise<Json> => {
    const body = { apiVersion: API_VERSIONS[kind], kind, metadata: { name, ...(owners.length ? { ownerReferences: owners } : {}), ...(finalizers.length ? { finalizers } : {}) } };
    const r = await c.request('POST', PATHS[kind], JSON.stringify(body));
    if (r.status !== 201) throw new Error(`create ${kind} ${name}: ${r.status} ${r.body}`);
    return { ...r.json(), apiVersion: API_VERSIONS[kind], kind };
  };
  const get = async (kind: Kind, name: string): Promise<Json | undefined> => {
    const r = await c.request('GET', `${PATHS[kind]}/${name}`);
    if (r.status === 404) return undefined;
    if (r.status !== 200) throw new Error(`get ${kind} ${name}: ${r.status} ${r.body}`);
    return r.json();
  };
  const patch = async (kind: Kind, name: string, body: Json): Promise<void> => {
    const r = await c.request('PATCH', `${PATHS[kind]}/${name}`, JSON.stringify(body), { 'content-type': 'application/merge-patch+json' });
    if (r.status !== 200) throw new Error(`patch ${kind} ${name}: ${r.status} ${r.body}`);
  };
  const gone = async (kind: Kind, name: string): Promise<boolean> => (await get(kind, name)) === undefined;
  const allGone = (...objects: Array<[Kind, string]>) => async (): Promise<boolean> => (await Promise.all(objects.map(([k, n]) => gone(k, n)))).every(Boolean);
  /** The garbage collector's reconciles so far (all results). */
  const reconciles = async (): Promise<number> => {
    const text = (await c.request('GET', '/metrics')).body;
    let sum = 0;
    for (const line of text.split('\n')) if (line.startsWith('controller_runtime_reconcile_total{') && line.includes('controller="garbage-collector"')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    return sum;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kubernel-gc-'));
    c = await startCluster(['--distribution', writeDistribution(dir)]);
    await c.ok(['create', 'namespace', NS]);
    await c.ok(['create', 'namespace', 'gc-other']);
  });
  after(async () => {
    await c?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs as a controller plugin and watches the discovered resources', async () => {
    const metrics = (await c.request('GET', '/metrics')).body;
    const monitored = Number(/^garbagecollector_monitored_resources (\d+)/m.exec(metrics)?.[1] ?? 0);
    expect(monitored).to.be.greaterThan(10);
    expect(metrics).to.match(/^garbagecollector_controller_resources_sync_error_total 0$/m);
  });

  it('background deletion collects dependents, and dependents of dependents (blockOwnerDeletion or not)', async () => {
    const owner = await create('ConfigMap', 'bg-owner');
    const child = await create('Secret', 'bg-child', [ownerRef(owner, { controller: true, blockOwnerDeletion: true })]);
    await create('ConfigMap', 'bg-grandchild', [ownerRef(child)]);
    await create('ConfigMap', 'bg-sibling', [ownerRef(owner)]);
    await create('ConfigMap', 'bg-bystander');
    await sleep(500);
    expect(await gone('Secret', 'bg-child'), 'nothing happens while the owner exists').to.equal(false);
    await c.ok(['-n', NS, 'delete', 'configmap', 'bg-owner']);
    await until(allGone(['Secret', 'bg-child'], ['ConfigMap', 'bg-grandchild'], ['ConfigMap', 'bg-sibling']), 15_000, 'dependents collected');
    expect(await gone('ConfigMap', 'bg-bystander')).to.equal(false);
  });

  it('a dependent with two owners survives the deletion of one and loses that reference only', async () => {
    const first = await create('ConfigMap', 'two-first');
    const second = await create('Secret', 'two-second');
    await create('ConfigMap', 'two-dependent', [ownerRef(first, { blockOwnerDeletion: true }), ownerRef(second)]);
    await c.ok(['-n', NS, 'delete', 'configmap', 'two-first']);
    await until(async () => ((await get('ConfigMap', 'two-dependent'))?.metadata.ownerReferences ?? []).length === 1, 15_000, 'the dangling reference removed');
    await sleep(1000);
    const dependent = await get('ConfigMap', 'two-dependent');
    expect(dependent?.metadata.ownerReferences).to.deep.equal([ownerRef(second)]);
    // Its last owner goes: then it goes too.
    await c.ok(['-n', NS, 'delete', 'secret', 'two-second']);
    await until(() => gone('ConfigMap', 'two-dependent'), 15_000, 'collected with its last owner');
  });

  it('kubectl delete --cascade=orphan removes the owner and leaves its dependents, without the reference to it', async () => {
    const owner = await create('ConfigMap', 'orph-owner');
    const other = await create('ConfigMap', 'orph-other');
    const orphA = await create('ConfigMap', 'orph-a', [ownerRef(owner, { controller: true, blockOwnerDeletion: true })]);
    await create('Secret', 'orph-b', [ownerRef(owner), ownerRef(other)]);
    await create('ConfigMap', 'orph-c', [ownerRef(orphA)]);
    await c.ok(['-n', NS, 'delete', 'configmap', 'orph-owner', '--cascade=orphan', '--wait=false']);
    await until(() => gone('ConfigMap', 'orph-owner'), 15_000, 'the owner deleted once its dependents are orphaned');
    await sleep(1000);
    const a = await get('ConfigMap', 'orph-a');
    const b = await get('Secret', 'orph-b');
    expect(a, 'orph-a kept').to.not.equal(undefined);
    expect(a!.metadata.ownerReferences).to.equal(undefined);
    expect(b!.metadata.ownerReferences).to.deep.equal([ownerRef(other)]);
    expect(await get('ConfigMap', 'orph-c'), 'a dependent of an orphan is untouched').to.not.equal(undefined);
  });

  it('kubectl delete --cascade=foreground deletes dependents first (recursively) and the owner only once no blocking dependent is left', async () => {
    const owner = await create('ConfigMap', 'fg-owner');
    const block = (o: Json): Json => ownerRef(o, { blockOwnerDeletion: true });
    await create('ConfigMap', 'fg-held', [block(owner)], ['example.com/hold']);
    const child = await create('ConfigMap', 'fg-child', [block(owner)]);
    await create('ConfigMap', 'fg-grandchild', [block(child)]);
    await create('Secret', 'fg-loose', [ownerRef(owner)]);
    // Record the order of deletions.
    const list = (await c.request('GET', PATHS.ConfigMap)).json() as Json;
    const ac = new AbortController();
    const res = await c.open(`${PATHS.ConfigMap}?watch=true&resourceVersion=${list.metadata.resourceVersion}`, ac.signal);
    const deleted: string[] = [];
    let buffer = '';
    res.on('data', (d: Buffer) => {
      buffer += d.toString();
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const e = JSON.parse(buffer.slice(0, nl)) as Json;
        if (e.type === 'DELETED') deleted.push(e.object.metadata.name);
        buffer = buffer.slice(nl + 1);
      }
    });
    res.on('error', () => undefined);
    try {
      await sleep(300);
      await c.ok(['-n', NS, 'delete', 'configmap', 'fg-owner', '--cascade=foreground', '--wait=false']);
      await until(allGone(['ConfigMap', 'fg-child'], ['ConfigMap', 'fg-grandchild'], ['Secret', 'fg-loose']), 15_000, 'dependents deleted');
      await until(async () => !!(await get('ConfigMap', 'fg-held'))?.metadata.deletionTimestamp, 15_000, 'the held dependent marked for deletion');
      await sleep(1500);
      const waiting = await get('ConfigMap', 'fg-owner');
      expect(waiting, 'the owner waits for its blocking dependent').to.not.equal(undefined);
      expect(waiting!.metadata.deletionTimestamp).to.be.a('string');
      expect(waiting!.metadata.finalizers).to.deep.equal(['foregroundDeletion']);
      expect((await get('ConfigMap', 'fg-held'))!.metadata.finalizers).to.deep.equal(['example.com/hold']);
      expect(deleted, c.process.stderr().split('\n').filter((l) => l.includes('garbage-collector')).join('\n')).to.have.members(['fg-grandchild', 'fg-child']);
      expect(deleted.indexOf('fg-grandchild'), c.process.stderr().split('\n').filter((l) => l.includes('garbage-collector')).join('\n')).to.be.lessThan(deleted.indexOf('fg-child'));
      await patch('ConfigMap', 'fg-held', { metadata: { finalizers: null } });
      await until(allGone(['ConfigMap', 'fg-held'], ['ConfigMap', 'fg-owner']), 15_000, 'both gone');
      await until(() => deleted.includes('fg-owner'), 5_000, 'the owner\'s deletion event');
      expect(deleted).to.deep.equal(['fg-grandchild', 'fg-child', 'fg-held', 'fg-owner']);
    } finally {
      ac.abort();
    }
  });

  it('collects dependents of owners that never existed (or exist under another uid), and leaves unresolvable references alone', async () => {
    const real = await create('ConfigMap', 'dangle-real');
    await create('ConfigMap', 'dangle-ghost', [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'no-such-owner', uid: randomUUID() }]);
    await create('Secret', 'dangle-wrong-uid', [{ ...ownerRef(real), uid: randomUUID() }]);
    await create('ConfigMap', 'dangle-wrong-kind', [{ ...ownerRef(real), kind: 'Secret', apiVersion: 'v1' }]);
    // A namespaced owner must be in the dependent's namespace: the same name and uid elsewhere do not count.
    const elsewhere = await c.request('POST', '/api/v1/namespaces/gc-other/configmaps', JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'elsewhere' } }));
    expect(elsewhere.status).to.equal(201);
    await create('ConfigMap', 'dangle-cross-ns', [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'elsewhere', uid: (elsewhere.json() as Json).metadata.uid }]);
    // A cluster-scoped owner (the Namespace) fits a namespaced dependent.
    await create('ConfigMap', 'dangle-ns-owned', [{ apiVersion: 'v1', kind: 'Namespace', name: NS, uid: ((await c.request('GET', `/api/v1/namespaces/${NS}`)).json() as Json).metadata.uid }]);
    const unknownKind = { apiVersion: 'widgets.example.com/v1', kind: 'Widget', name: 'w', uid: randomUUID() };
    await create('ConfigMap', 'dangle-unknown-kind', [unknownKind, { apiVersion: 'v1', kind: 'ConfigMap', name: 'gone-too', uid: randomUUID() }]);
    const role = await create('ClusterRole', 'gc-test-dangling', [{ apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', name: 'no-such-role', uid: randomUUID() }]);
    await create('ClusterRole', 'gc-test-invalid-scope', [ownerRef(real)]);
    await until(allGone(['ConfigMap', 'dangle-ghost'], ['Secret', 'dangle-wrong-uid'], ['ConfigMap', 'dangle-wrong-kind'], ['ConfigMap', 'dangle-cross-ns'], ['ClusterRole', 'gc-test-dangling']), 15_000, 'dangling dependents collected');
    expect(role.metadata.uid).to.be.a('string');
    await until(async () => ((await get('ConfigMap', 'dangle-unknown-kind'))?.metadata.ownerReferences ?? []).length === 1, 15_000, 'the dangling reference of the unknown-kind dependent removed');
    expect((await get('ConfigMap', 'dangle-unknown-kind'))!.metadata.ownerReferences).to.deep.equal([unknownKind]);
    expect(await get('ConfigMap', 'dangle-real')).to.not.equal(undefined);
    expect(await get('ConfigMap', 'dangle-ns-owned')).to.not.equal(undefined);
    // A cluster-scoped dependent of a namespaced owner is invalid: left alone, logged once.
    expect(await get('ClusterRole', 'gc-test-invalid-scope')).to.not.equal(undefined);
    await c.ok(['-n', NS, 'label', 'configmap', 'dangle-unknown-kind', 'touched=1']);
    await c.ok(['label', 'clusterrole', 'gc-test-invalid-scope', 'touched=1']);
    await sleep(1000);
    expect(await get('ConfigMap', 'dangle-unknown-kind')).to.not.equal(undefined);
    const logs = c.process.stderr();
    expect(logs.split('owner reference to a kind discovery does not know').length - 1).to.equal(1);
    expect(logs.split('a cluster-scoped object refers to a namespaced owner').length - 1).to.equal(1);
    await c.ok(['delete', 'clusterrole', 'gc-test-invalid-scope']);
  });

  it('an ownerReferences cycle (A owns B, B owns A) is collected when A is deleted, without spinning', async () => {
    const a = await create('ConfigMap', 'cycle-a');
    const b = await create('ConfigMap', 'cycle-b', [ownerRef(a)]);
    await patch('ConfigMap', 'cycle-a', { metadata: { ownerReferences: [ownerRef(b)] } });
    await sleep(1000);
    expect(await gone('ConfigMap', 'cycle-b'), 'a cycle with both alive stays').to.equal(false);
    const before = await reconciles();
    await c.ok(['-n', NS, 'delete', 'configmap', 'cycle-a']);
    await until(allGone(['ConfigMap', 'cycle-a'], ['ConfigMap', 'cycle-b']), 15_000, 'both deleted');
    await sleep(1000);
    const settled = await reconciles();
    await sleep(2000);
    expect(await reconciles(), 'no reconciles once settled').to.equal(settled);
    expect(settled - before, 'reconciles for the cycle (1 expected: B)').to.be.lessThan(10);
    expect((await c.request('GET', '/readyz')).status).to.equal(200);
  });

  it('a foreground deletion through a blocking cycle completes (references made non-blocking), without spinning', async () => {
    const a = await create('ConfigMap', 'fcycle-a');
    const b = await create('ConfigMap', 'fcycle-b', [ownerRef(a, { blockOwnerDeletion: true })]);
    await patch('ConfigMap', 'fcycle-a', { metadata: { ownerReferences: [ownerRef(b, { blockOwnerDeletion: true })] } });
    await sleep(500);
    const before = await reconciles();
    await c.ok(['-n', NS, 'delete', 'configmap', 'fcycle-a', '--cascade=foreground', '--wait=false']);
    await until(allGone(['ConfigMap', 'fcycle-a'], ['ConfigMap', 'fcycle-b']), 15_000, 'both deleted');
    await sleep(1000);
    const settled = await reconciles();
    await sleep(2000);
    expect(await reconciles()).to.equal(settled);
    expect(settled - before, 'reconciles for the cycle (about 4 expected)').to.be.lessThan(15);
  });

  it('finished every reconcile without an error, and counts what it did', async () => {
    const metrics = (await c.request('GET', '/metrics')).body;
    const value = (pattern: RegExp): number => Number(pattern.exec(metrics)?.[1] ?? 0);
    expect(value(/^controller_runtime_reconcile_errors_total\{controller="garbage-collector"\} (\d+)/m), c.process.stderr().split('\n').filter((l) => l.includes('reconcile failed')).join('\n')).to.equal(0);
    expect(value(/^garbagecollector_deletions_total\{propagation_policy="Background"\} (\d+)/m)).to.be.greaterThan(5);
    expect(value(/^garbagecollector_deletions_total\{propagation_policy="Foreground"\} (\d+)/m)).to.be.greaterThan(0);
    expect(value(/^garbagecollector_finalizers_removed_total\{finalizer="orphan"\} (\d+)/m)).to.equal(1);
    expect(value(/^garbagecollector_finalizers_removed_total\{finalizer="foregroundDeletion"\} (\d+)/m)).to.be.greaterThan(1);
    expect(value(/^garbagecollector_owner_references_removed_total (\d+)/m)).to.be.greaterThan(3);
  });
});
