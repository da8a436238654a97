import { expect } from 'chai';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { join } from 'node:path';
import { FIXTURES } from './helpers/paths.js';

/** Free-form JSON read back from the API in assertions. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const cm = (name: string, labels: Record<string, string> = {}): string => JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels } });
const pod = (name: string): string => JSON.stringify({ apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { containers: [{ name: 'c', image: 'busybox:1.36' }] } });

/** Reads a watch stream's JSON lines until `n` events or the stream ends. */
async function watchEvents(c: TestCluster, path: string, n: number, timeoutMs = 10_000): Promise<Array<{ type: string; object: Json }>> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const out: Array<{ type: string; object: Json }> = [];
  try {
    const res = await c.open(path, controller.signal);
    let buffer = '';
    for await (const chunk of res as AsyncIterable<Buffer>) {
      buffer += Buffer.from(chunk).toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        out.push(JSON.parse(buffer.slice(0, nl)) as { type: string; object: Json });
        buffer = buffer.slice(nl + 1);
        if (out.length >= n) {
          controller.abort();
          return out;
        }
      }
    }
  } catch (err) {
    if ((err as Error).name !== 'AbortError') throw err;
  } finally {
    clearTimeout(timer);
  }
  return out;
}

describe('API semantics over HTTP (kubernel server, small watch cache)', function () {
  this.timeout(60_000);
  let c: TestCluster;
  const ns = '/api/v1/namespaces/default';

  before(async function () {
    this.timeout(60_000);
    // No RBAC plugin: its bootstrap writes would move the 5-revision watch window under the test.
    c = await startCluster(['--default-watch-cache-size', '5', '--distribution', join(FIXTURES, 'distributions', 'authn-only.yaml')]);
  });
  after(async () => {
    await c?.stop();
  });

  it('watches from a resourceVersion, and answers 410 Gone (an ERROR event) past the watch window', async () => {
    const first = (await c.request('POST', `${ns}/configmaps`, cm('w-0'))).json() as { metadata: { resourceVersion: string } };
    const rv = first.metadata.resourceVersion;
    for (let i = 1; i <= 3; i++) await c.request('POST', `${ns}/configmaps`, cm(`w-${i}`));
    const events = await watchEvents(c, `${ns}/configmaps?watch=true&resourceVersion=${rv}`, 3);
    expect(events.map((e) => `${e.type} ${e.object.metadata.name}`)).to.deep.equal(['ADDED w-1', 'ADDED w-2', 'ADDED w-3']);
    for (let i = 4; i <= 12; i++) await c.request('POST', `${ns}/configmaps`, cm(`w-${i}`));
    const gone = await watchEvents(c, `${ns}/configmaps?watch=true&resourceVersion=${rv}`, 1);
    expect(gone[0]!.type).to.equal('ERROR');
    expect(gone[0]!.object).to.include({ kind: 'Status', code: 410, reason: 'Expired' });
    expect(gone[0]!.object.message).to.match(/^too old resource version: \d+ \(\d+\)$/);
  });

  it('starts a watch without a resourceVersion with the current state, and ends it at timeoutSeconds', async () => {
    const started = Date.now();
    const events = await watchEvents(c, `${ns}/configmaps?watch=true&timeoutSeconds=1&labelSelector=${encodeURIComponent('!nothing')}`, 1000, 10_000);
    expect(Date.now() - started).to.be.lessThan(9_000);
    expect(events.every((e) => e.type === 'ADDED')).to.equal(true);
    expect(events.map((e) => e.object.metadata.name)).to.include('w-12');
  });

  it('pages a list with limit and continue at one resourceVersion', async () => {
    await c.request('POST', '/api/v1/namespaces', JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'paged' } }));
    for (let i = 0; i < 25; i++) await c.request('POST', '/api/v1/namespaces/paged/configmaps', cm(`p-${String(i).padStart(2, '0')}`));
    const names: string[] = [];
    let token = '';
    const rvs = new Set<string>();
    do {
      const page = (await c.request('GET', `/api/v1/namespaces/paged/configmaps?limit=10${token ? `&continue=${encodeURIComponent(token)}` : ''}`)).json() as { metadata: { resourceVersion: string; continue?: string }; items: Array<{ metadata: { name: string } }> };
      names.push(...page.items.map((i) => i.metadata.name));
      rvs.add(page.metadata.resourceVersion);
      token = page.metadata.continue ?? '';
      if (token) await c.request('POST', '/api/v1/namespaces/paged/configmaps', cm(`late-${names.length}`));
    } while (token);
    expect(names).to.have.length(25);
    expect(rvs.size).to.equal(1);
    const bad = await c.request('GET', '/api/v1/namespaces/paged/configmaps?limit=10&continue=garbage');
    expect(bad.status).to.equal(400);
  });

  it('deletes a collection by label selector', async () => {
    for (const [name, team] of [['dc-1', 'a'], ['dc-2', 'a'], ['dc-3', 'b']]) await c.request('POST', `${ns}/configmaps`, cm(name!, { team: team! }));
    const res = await c.request('DELETE', `${ns}/configmaps?labelSelector=team%3Da`);
    expect(res.status).to.equal(200);
    expect((res.json().items as Array<{ metadata: { name: string } }>).map((i) => i.metadata.name).sort()).to.deep.equal(['dc-1', 'dc-2']);
    const left = (await c.request('GET', `${ns}/configmaps?labelSelector=team`)).json() as { items: Array<{ metadata: { name: string } }> };
    expect(left.items.map((i) => i.metadata.name)).to.deep.equal(['dc-3']);
  });

  it('treats a uid in an update or patch as a precondition (409 when it is not the object\'s)', async () => {
    const created = (await c.request('POST', `${ns}/configmaps`, cm('uid-pre'))).json() as Json;
    const patched = await c.request('PATCH', `${ns}/configmaps/uid-pre`, JSON.stringify({ metadata: { uid: 'not-this-one', labels: { a: 'b' } } }), { 'content-type': 'application/merge-patch+json' });
    expect(patched.status).to.equal(409);
    expect(patched.json().message).to.equal(`Operation cannot be fulfilled on configmaps "uid-pre": Precondition failed: UID in precondition: not-this-one, UID in object meta: ${created.metadata.uid}`);
    const ok = await c.request('PATCH', `${ns}/configmaps/uid-pre`, JSON.stringify({ metadata: { uid: created.metadata.uid, labels: { a: 'b' } } }), { 'content-type': 'application/merge-patch+json' });
    expect(ok.status).to.equal(200);
    expect((ok.json() as Json).metadata.labels).to.deep.equal({ a: 'b' });
  });

  it('generates names from generateName', async () => {
    const res = await c.request('POST', `${ns}/configmaps`, JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { generateName: 'gen-' } }));
    expect(res.status).to.equal(201);
    expect((res.json().metadata as { name: string }).name).to.match(/^gen-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
  });

  it('binds a pod once, keeps spec and status apart, and deletes a scheduled pod gracefully', async () => {
    expect((await c.request('POST', `${ns}/pods`, pod('p1'))).status).to.equal(201);
    const bind = await c.request('POST', `${ns}/pods/p1/binding`, JSON.stringify({ apiVersion: 'v1', kind: 'Binding', metadata: { name: 'p1' }, target: { kind: 'Node', name: 'node-a' } }));
    expect(bind.status).to.equal(201);
    const again = await c.request('POST', `${ns}/pods/p1/binding`, JSON.stringify({ apiVersion: 'v1', kind: 'Binding', metadata: { name: 'p1' }, target: { kind: 'Node', name: 'node-b' } }));
    expect(again.status).to.equal(409);
    let p = (await c.request('GET', `${ns}/pods/p1`)).json() as Json;
    expect(p.spec.nodeName).to.equal('node-a');
    expect(p.status.conditions.find((x: { type: string }) => x.type === 'PodScheduled').status).to.equal('True');
    // A status write changes only status; a main-resource write cannot change status.
    p.status.phase = 'Running';
    p.spec.activeDeadlineSeconds = 99;
    p = (await c.request('PUT', `${ns}/pods/p1/status`, JSON.stringify(p))).json();
    expect(p.status.phase).to.equal('Running');
    expect(p.spec.activeDeadlineSeconds).to.equal(undefined);
    p.status.phase = 'Failed';
    p.spec.activeDeadlineSeconds = 60;
    p = (await c.request('PUT', `${ns}/pods/p1`, JSON.stringify(p))).json();
    expect(p.status.phase).to.equal('Running');
    expect(p.spec.activeDeadlineSeconds).to.equal(60);
    const forbidden = await c.request('PUT', `${ns}/pods/p1`, JSON.stringify({ ...p, spec: { ...p.spec, restartPolicy: 'Never' } }));
    expect(forbidden.status).to.equal(422);
    expect(String(forbidden.json().message)).to.contain('pod updates may not change fields other than');
    // Graceful deletion: the node agent finishes it.
    const del = (await c.request('DELETE', `${ns}/pods/p1`)).json() as Json;
    expect(del.metadata.deletionGracePeriodSeconds).to.equal(30);
    expect(del.metadata.deletionTimestamp).to.be.a('string');
    const table = (await c.request('GET', `${ns}/pods`, undefined, { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' })).json() as Json;
    expect(table.columnDefinitions.map((col: { name: string }) => col.name)).to.deep.equal(['Name', 'Ready', 'Status', 'Restarts', 'Age', 'IP', 'Node', 'Nominated Node', 'Readiness Gates']);
    expect(table.rows.find((r: { cells: unknown[] }) => r.cells[0] === 'p1').cells.slice(0, 4)).to.deep.equal(['p1', '0/1', 'Terminating', 0]);
    const now = await c.request('DELETE', `${ns}/pods/p1?gracePeriodSeconds=0`);
    expect(now.status).to.equal(200);
    expect((await c.request('GET', `${ns}/pods/p1`)).status).to.equal(404);
    // An unscheduled pod goes at once.
    await c.request('POST', `${ns}/pods`, pod('p2'));
    await c.request('DELETE', `${ns}/pods/p2`);
    expect((await c.request('GET', `${ns}/pods/p2`)).status).to.equal(404);
  });

  it('refuses new objects in a terminating namespace', async () => {
    await c.request('POST', '/api/v1/namespaces', JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'closing' } }));
    const ns1 = (await c.request('GET', '/api/v1/namespaces/closing')).json() as Json;
    ns1.status.phase = 'Terminating';
    expect((await c.request('PUT', '/api/v1/namespaces/closing/status', JSON.stringify(ns1))).status).to.equal(200);
    // NamespaceLifecycle (an admission plugin) decides from its namespace cache: it refuses as soon as the change reaches it.
    let res: Awaited<ReturnType<typeof c.request>> | undefined;
    for (let i = 0; i < 50 && res?.status !== 403; i++) {
      res = await c.request('POST', '/api/v1/namespaces/closing/configmaps', cm(`x${i}`));
      if (res.status !== 403) await new Promise((r) => setTimeout(r, 100));
    }
    expect(res!.status).to.equal(403);
    expect(res!.json().message).to.match(/^configmaps "x\d+" is forbidden: unable to create new content in namespace closing because it is being terminated$/);
  });

  it('keeps finalized objects until their finalizers are removed', async () => {
    await c.request('POST', `${ns}/configmaps`, JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'fin', finalizers: ['example.com/hold'] } }));
    const marked = (await c.request('DELETE', `${ns}/configmaps/fin`)).json() as Json;
    expect(marked.metadata.deletionTimestamp).to.be.a('string');
    expect((await c.request('GET', `${ns}/configmaps/fin`)).status).to.equal(200);
    const released = await c.request('PATCH', `${ns}/configmaps/fin`, JSON.stringify({ metadata: { finalizers: null } }), { 'content-type': 'application/merge-patch+json' });
    expect(released.status).to.equal(200);
    expect((await c.request('GET', `${ns}/configmaps/fin`)).status).to.equal(404);
  });

  it('serves health checks, including the store\'s', async () => {
    const ready = await c.request('GET', '/readyz?verbose');
    expect(ready.status).to.equal(200);
    expect(ready.body).to.contain('[+]ping ok').and.contain('[+]store ok').and.contain('readyz check passed');
    expect((await c.request('GET', '/livez')).body).to.equal('ok');
    expect((await c.request('GET', '/version')).json()).to.include({ major: '1', minor: '32' });
  });

  it('shuts down on SIGTERM, ending open watches cleanly (last: it stops the server)', async () => {
    const controller = new AbortController();
    const res = await c.open('/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=0', controller.signal);
    await new Promise((resolve) => res.once('data', resolve));
    c.process.child.kill('SIGTERM');
    const ended = await new Promise<boolean>((resolve) => {
      res.on('end', () => resolve(true));
      res.on('error', () => resolve(false));
      res.resume();
    });
    expect(ended).to.equal(true);
    const exit = await c.process.exited;
    expect(exit.code).to.equal(0);
    expect(exit.stdout).to.contain('received SIGTERM: stopping').and.contain('stopped');
  });
});
