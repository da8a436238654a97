import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { expect } from 'chai';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { FIXTURES } from './helpers/paths.js';

/** A small seeded PRNG (mulberry32): the same 10,000 requests on every run. */
export function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Hostile {
  readonly kind: string;
  readonly method: string;
  readonly path: string;
  readonly body?: Buffer | string;
  readonly contentType?: string;
}

const NS = '/api/v1/namespaces/default';
const cm = (o: Record<string, unknown> = {}): Record<string, unknown> => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'fuzz' }, data: { a: 'b' }, ...o });
const BAD_NAMES = ['../../etc/passwd', '..', '.', 'a/b', 'UPPER', '-lead', 'trail-', 'x'.repeat(300), 'spaces in name', 'nul\u0000byte', 'ünïcode', '%2e%2e%2f', 'a..b', '', 'semi;colon', 'new\nline'];
const PATH_ATTACKS = ['/../../etc/passwd', '/%2e%2e/%2e%2e/etc', '/configmaps/..%2f..%2fsecrets', '/configmaps/%ZZ', '/configmaps/a%00b', '//configmaps', '/configmaps/x/y/z/w', '/nonexistent-resource'];

export function generate(random: () => number, n: number): Hostile[] {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const text = JSON.stringify(cm());
  const out: Hostile[] = [];
  const makers: Array<() => Hostile> = [
    () => ({ kind: 'truncated JSON', method: 'POST', path: `${NS}/configmaps`, body: text.slice(0, 1 + Math.floor(random() * (text.length - 2))) }),
    () => ({ kind: 'random bytes', method: 'POST', path: `${NS}/configmaps`, body: Buffer.from(Array.from({ length: 1 + Math.floor(random() * 200) }, () => Math.floor(random() * 256))) }),
    () => {
      const depth = 101 + Math.floor(random() * 20_000);
      return { kind: 'deep nesting', method: 'POST', path: `${NS}/configmaps`, body: `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}` };
    },
    () => ({ kind: 'deep YAML nesting', method: 'POST', path: `${NS}/configmaps`, contentType: 'application/yaml', body: `${'- '.repeat(200 + Math.floor(random() * 2000))}x` }),
    () => ({ kind: 'invalid UTF-8', method: 'POST', path: `${NS}/configmaps`, body: Buffer.concat([Buffer.from('{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"u"},"data":{"a":"'), Buffer.from([0xc3, 0x28, 0xff, 0xfe]), Buffer.from('"}}')]) }),
    () => ({ kind: 'bad name in body', method: 'POST', path: `${NS}/configmaps`, body: JSON.stringify(cm({ metadata: { name: pick(BAD_NAMES) } })) }),
    () => ({ kind: 'path traversal in URL', method: pick(['GET', 'PUT', 'DELETE', 'PATCH']), path: `${NS}${pick(PATH_ATTACKS)}`, body: JSON.stringify(cm()), contentType: 'application/merge-patch+json' }),
    () => ({ kind: 'wrong kind for the endpoint', method: 'POST', path: `${NS}/pods`, body: JSON.stringify(cm({ metadata: { name: `k${Math.floor(random() * 1e6)}` } })) }),
    () => ({ kind: 'not an object', method: 'POST', path: `${NS}/configmaps`, body: pick(['[]', '"str"', '42', 'null', 'true', '[{"kind":"ConfigMap"}]']) }),
    () => ({ kind: 'unsupported media type', method: 'POST', path: `${NS}/configmaps`, body: text, contentType: pick(['text/plain', 'application/xml', 'multipart/form-data', 'application/x-www-form-urlencoded']) }),
    () => ({ kind: 'unknown field (Strict)', method: 'POST', path: `${NS}/configmaps?fieldValidation=Strict`, body: JSON.stringify(cm({ metadata: { name: `s${Math.floor(random() * 1e6)}` }, bogus: { x: 1 } })) }),
    () => ({ kind: 'wrong types', method: 'POST', path: `${NS}/configmaps`, body: JSON.stringify(cm({ metadata: { name: 'types', labels: pick([[1, 2], 'x', { a: 1 }, { 'bad key!': 'v' }]) }, data: pick([[1], { a: 1 }, 'x', { a: { b: 'c' } }]) })) }),
    () => ({ kind: 'bad numbers', method: 'POST', path: `${NS}/replicationcontrollers`, body: `{"apiVersion":"v1","kind":"ReplicationController","metadata":{"name":"rc${Math.floor(random() * 1e6)}"},"spec":{"replicas":${pick(['1e309', '-1', '"three"', '1.5', '99999999999999999999'])},"selector":{"a":"b"},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}` }),
    () => ({ kind: 'bad JSON patch', method: 'PATCH', path: `${NS}/configmaps/target`, contentType: 'application/json-patch+json', body: JSON.stringify([pick([{ op: 'explode', path: '/data' }, { op: 'remove', path: '/data/nothere' }, { op: 'test', path: '/data/a', value: 'nope' }, { op: 'add', path: 'no-slash', value: 1 }, { op: 'replace', path: '/metadata/name', value: 'renamed' }, { op: 'move', from: '/data', path: '/data/inner' }, { op: 'add', path: '/metadata/labels', value: { 'a b': 'c' } }])]) }),
    () => ({ kind: 'bad merge patch', method: 'PATCH', path: `${NS}/configmaps/target`, contentType: 'application/merge-patch+json', body: pick(['[1,2]', '"x"', '{"metadata":{"name":"other"}}', '{"data":{"a":{"b":1}}}', '{"kind":"Secret"}', '{"metadata":{"labels":{"bad key!":"v"}}}']) }),
    () => ({ kind: 'bad strategic merge patch', method: 'PATCH', path: `${NS}/configmaps/target`, contentType: 'application/strategic-merge-patch+json', body: pick(['{"$patch":"bogus"}', '{"data":{"$patch":"explode"}}', '[]', '{"metadata":{"$setElementOrder/finalizers":"x"}}', '{"data":{"a":[1]}}']) }),
    () => ({ kind: 'bad query', method: 'GET', path: `${NS}/configmaps?${pick(['limit=-5', 'resourceVersion=abc', 'labelSelector=a%20in%20(', 'fieldSelector=spec.bogus%3D1', 'continue=garbage', 'labelSelector=%3D%3D%3D', 'watch=true&resourceVersion=-1'])}` }),
    () => ({ kind: 'stale update', method: 'PUT', path: `${NS}/configmaps/target`, body: JSON.stringify(cm({ metadata: { name: 'target', resourceVersion: '1' } })) }),
    () => ({ kind: 'name mismatch', method: 'PUT', path: `${NS}/configmaps/target`, body: JSON.stringify(cm({ metadata: { name: 'other' } })) }),
    () => ({ kind: 'namespace mismatch', method: 'POST', path: `${NS}/configmaps`, body: JSON.stringify(cm({ metadata: { name: 'nsm', namespace: 'kube-system' } })) }),
    () => ({ kind: 'missing namespace', method: 'POST', path: '/api/v1/namespaces/does-not-exist/configmaps', body: JSON.stringify(cm({ metadata: { name: 'x' } })) }),
    () => ({ kind: 'bad method', method: pick(['PROPFIND', 'TRACE', 'CONNECT_NOT', 'MKCOL']), path: `${NS}/configmaps` }),
    () => ({ kind: 'bad delete options', method: 'DELETE', path: `${NS}/configmaps/target?${pick(['gracePeriodSeconds=-3', 'propagationPolicy=Sideways', 'gracePeriodSeconds=x'])}` }),
    () => ({ kind: 'huge string field', method: 'POST', path: `${NS}/configmaps`, body: JSON.stringify(cm({ metadata: { name: 'x'.repeat(64 * 1024) } })) }),
    () => ({ kind: 'precondition on create', method: 'POST', path: `${NS}/configmaps`, body: JSON.stringify(cm({ metadata: { name: 'pc', resourceVersion: '12' } })) }),
  ];
  for (let i = 0; i < n; i++) out.push(pick(makers)());
  // A few oversized bodies (each 4 MiB: kept few to bound the run time).
  for (let i = 0; i < 10; i++) out.push({ kind: 'oversized body', method: 'POST', path: `${NS}/configmaps`, body: JSON.stringify(cm({ metadata: { name: 'big' }, data: { a: 'x'.repeat(4 * 1024 * 1024) } })) });
  return out;
}

describe('fuzz: 10,000 malformed or hostile requests against a running server', function () {
  this.timeout(300_000);
  let c: TestCluster;
  before(async () => {
    c = await startCluster(['--distribution', join(FIXTURES, 'distributions', 'authn-only.yaml')]);
    await c.ok(['create', 'configmap', 'target', '--from-literal=a=b']);
  });
  after(async () => {
    await c?.stop();
  });

  it('answers every one with a 4xx Status, never a 5xx or a crash, and changes nothing in the store', async () => {
    const revision = async (): Promise<string> => ((await c.request('GET', '/api/v1/configmaps')).json().metadata as { resourceVersion: string }).resourceVersion;
    const before = await revision();
    const targetBefore = (await c.request('GET', `${NS}/configmaps/target`)).body;
    const agent = new Agent({ keepAlive: true, maxSockets: 16, ca: c.tls.ca, cert: c.tls.cert, key: c.tls.key });
    const cases = generate(prng(20261125), 10_000);
    const byCode = new Map<number, number>();
    const byKind = new Map<string, Map<number, number>>();
    const bad: string[] = [];
    let next = 0;
    const send = (h: Hostile): Promise<{ status: number; body: string }> =>
      new Promise((resolve) => {
        // An explicit Content-Length: Node's client sends a DELETE body without framing otherwise.
        const length = h.body === undefined ? 0 : Buffer.byteLength(h.body);
        const req = request(`${c.url}${h.path}`, { method: h.method, agent, headers: { 'content-type': h.contentType ?? 'application/json', 'content-length': String(length) } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
          res.on('error', () => resolve({ status: -1, body: 'response error' }));
        });
        req.on('error', (e) => resolve({ status: -1, body: e.message }));
        req.end(h.body);
      });
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < cases.length) {
          const h = cases[next++]!;
          const r = await send(h);
          byCode.set(r.status, (byCode.get(r.status) ?? 0) + 1);
          const k = byKind.get(h.kind) ?? new Map<number, number>();
          k.set(r.status, (k.get(r.status) ?? 0) + 1);
          byKind.set(h.kind, k);
          let isStatus = false;
          try {
            isStatus = (JSON.parse(r.body) as { kind?: string }).kind === 'Status';
          } catch {
            isStatus = false;
          }
          // Node's HTTP parser answers some malformed requests itself (400/431 without a body).
          if (r.status < 400 || r.status >= 500 || (!isStatus && r.body !== '')) bad.push(`${h.kind}: ${h.method} ${h.path.slice(0, 80)} -> ${r.status} ${r.body.slice(0, 160)}`);
        }
      }),
    );
    agent.destroy();
    const summary = [...byCode].sort((a, b) => a[0] - b[0]).map(([code, n]) => `${code}: ${n}`).join(', ');
    process.stdout.write(`      fuzz: ${cases.length} requests; answers by code: ${summary}\n`);
    for (const [kind, codes] of [...byKind].sort()) process.stdout.write(`        ${kind.padEnd(28)} ${[...codes].sort((a, b) => a[0] - b[0]).map(([code, n]) => `${code}x${n}`).join(' ')}\n`);
    expect(bad.slice(0, 20), `${bad.length} requests not answered with a 4xx Status`).to.deep.equal([]);
    expect(c.process.child.exitCode).to.equal(null);
    expect(await revision()).to.equal(before);
    expect((await c.request('GET', `${NS}/configmaps/target`)).body).to.equal(targetBefore);
  });
});
