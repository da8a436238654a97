import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { ROOT } from './helpers/paths.js';
import { sleep, until } from './helpers/wait.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;
const j = (o: unknown): string => JSON.stringify(o);

/** Writes `<dir>/distribution.yaml`: the server role runs `plugins` ([id, plugins/<dir>, config?]) in order. */
function writeDistribution(dir: string, plugins: Array<[string, string, string?]>): string {
  const entries = plugins.map(([id, pkg, config]) => `        - { id: ${id}, package: "${join(ROOT, 'plugins', pkg)}"${config ? `, config: ${config}` : ''} }`);
  const lines = ['apiVersion: kubernel.io/v1alpha1', 'kind: Distribution', 'metadata: { name: endpoints-test }', 'spec:', '  roles:', '    server:', '      plugins:', ...entries, '    agent: { plugins: [] }', ''];
  const file = join(dir, 'distribution.yaml');
  writeFileSync(file, lines.join('\n'));
  return file;
}

/*
 * The Endpoints and EndpointSlice controllers on a real server. There are no node agents: pods get
 * their IPs and readiness from the test, through the pods/status subresource, as a kubelet would.
 */
describe('endpoints and endpointslice controllers (kubernel server, kubectl)', function () {
  this.timeout(120_000);
  const NS = 'ep';
  let c: TestCluster;
  let dir: string;

  const get = async (path: string): Promise<Json | undefined> => {
    const r = await c.request('GET', path);
    if (r.status === 404) return undefined;
    if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.body}`);
    return r.json();
  };
  const send = async (method: string, path: string, body: unknown, expected = [200, 201]): Promise<Json> => {
    const r = await c.request(method, path, j(body));
    if (!expected.includes(r.status)) throw new Error(`${method} ${path}: ${r.status} ${r.body}`);
    return r.json();
  };
  const endpoints = (name: string, ns = NS): Promise<Json | undefined> => get(`/api/v1/namespaces/${ns}/endpoints/${name}`);
  const slices = async (service: string, ns = NS): Promise<Json[]> =>
    ((await get(`/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices?labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${service}`)}`))!.items as Json[]).filter((s) => !s.metadata.deletionTimestamp);

  /** Creates a pod (no node unless given) with container ports. */
  const createPod = (name: string, labels: Record<string, string>, ports: Json[] = [], extra: Json = {}, ns = NS): Promise<Json> =>
    send('POST', `/api/v1/namespaces/${ns}/pods`, { apiVersion: 'v1', kind: 'Pod', metadata: { name, labels }, spec: { containers: [{ name: 'c', image: 'busybox', ports }], ...extra } });
  /** Sets what a kubelet would: phase Running, the pod IP, the Ready condition. */
  const setStatus = async (name: string, ip: string, ready: boolean, ns = NS): Promise<void> => {
    for (;;) {
      const pod = (await get(`/api/v1/namespaces/${ns}/pods/${name}`))!;
      const previous = ((pod.status?.conditions ?? []) as Json[]).find((x) => x.type === 'Ready');
      const status = ready ? 'True' : 'False';
      const lastTransitionTime = previous?.status === status ? previous.lastTransitionTime : new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      pod.status = { ...pod.status, phase: 'Running', podIP: ip, podIPs: [{ ip }], conditions: [{ type: 'Ready', status, lastTransitionTime }] };
      const r = await c.request('PUT', `/api/v1/namespaces/${ns}/pods/${name}/status`, j(pod));
      if (r.status === 200) return;
      if (r.status !== 409) throw new Error(`PUT pods/${name}/status: ${r.status} ${r.body}`);
    }
  };
  const service = (name: string, spec: Json): Promise<string> => c.ok(['-n', NS, 'apply', '-f', '-'], j({ apiVersion: 'v1', kind: 'Service', metadata: { name, labels: { team: 'a' } }, spec }));

  /** The addresses of Endpoints as `ip:port` strings by readiness, sorted. */
  const flatten = (ep: Json | undefined): { ready: string[]; notReady: string[] } => {
    const out = { ready: [] as string[], notReady: [] as string[] };
    for (const s of (ep?.subsets ?? []) as Json[]) {
      for (const p of (s.ports ?? [{}]) as Json[]) {
        for (const a of (s.addresses ?? []) as Json[]) out.ready.push(`${a.ip}:${p.port ?? ''}`);
        for (const a of (s.notReadyAddresses ?? []) as Json[]) out.notReady.push(`${a.ip}:${p.port ?? ''}`);
      }
    }
    out.ready.sort();
    out.notReady.sort();
    return out;
  };
  /** The endpoints of a Service's slices as `ip:ports ready/serving/terminating`, sorted. */
  const sliceView = async (name: string, ns = NS): Promise<string[]> => {
    const out: string[] = [];
    for (const s of await slices(name, ns)) {
      const ports = ((s.ports ?? []) as Json[]).map((p) => p.port).sort().join(',');
      for (const e of (s.endpoints ?? []) as Json[]) {
        const cond = e.conditions ?? {};
        out.push(`${e.addresses.join(',')}:${ports} ${cond.ready ? 'R' : '-'}${cond.serving ? 'S' : '-'}${cond.terminating ? 'T' : '-'}`);
      }
    }
    return out.sort();
  };
  const eventually = async (what: string, check: () => Promise<unknown>, expected: unknown, ms = 15_000): Promise<void> => {
    let last: unknown;
    try {
      await until(async () => {
        last = await check();
        return j(last) === j(expected);
      }, ms, what);
    } catch (err) {
      throw new Error(`${(err as Error).message}: last seen ${j(last)}, wanted ${j(expected)}`);
    }
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kubernel-endpoints-'));
    const distribution = writeDistribution(dir, [
      ['authn-x509', 'authn'],
      ['namespace-lifecycle', 'admission'],
      ['endpoints-controller', 'controllers'],
      ['endpointslice-controller', 'controllers'],
    ]);
    c = await startCluster(['--distribution', distribution]);
    await c.ok(['create', 'namespace', NS]);
  });
  after(async () => {
    await c?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('gives a Service with a selector empty Endpoints and one empty, owned EndpointSlice; leaves a selectorless one alone', async () => {
    await service('web', { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] });
    const svc = (await get(`/api/v1/namespaces/${NS}/services/web`))!;
    await until(async () => (await endpoints('web')) !== undefined, 15_000, 'Endpoints web');
    const ep = (await endpoints('web'))!;
    expect(ep.subsets ?? []).to.deep.equal([]);
    expect(ep.metadata.labels).to.deep.equal({ team: 'a', 'endpoints.kubernetes.io/managed-by': 'endpoint-controller' });
    expect(ep.metadata.annotations['endpoints.kubernetes.io/last-change-trigger-time']).to.equal(svc.metadata.creationTimestamp);
    await until(async () => (await slices('web')).length === 1, 15_000, 'one EndpointSlice');
    const [slice] = await slices('web');
    expect(slice!.metadata.name).to.match(/^web-[a-z0-9]{5}$/);
    expect(slice!.metadata.generateName).to.equal('web-');
    expect(slice!.addressType).to.equal('IPv4');
    expect(slice!.endpoints ?? []).to.deep.equal([]);
    expect(slice!.metadata.labels).to.deep.equal({ team: 'a', 'kubernetes.io/service-name': 'web', 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io' });
    expect(slice!.metadata.ownerReferences).to.deep.equal([{ apiVersion: 'v1', kind: 'Service', name: 'web', uid: svc.metadata.uid, controller: true, blockOwnerDeletion: true }]);

    // A Service without a selector: its Endpoints are the user's.
    await service('manual', { ports: [{ port: 5432 }] });
    const mine = { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'manual' }, subsets: [{ addresses: [{ ip: '192.0.2.10' }], ports: [{ port: 5432 }] }] };
    await send('POST', `/api/v1/namespaces/${NS}/endpoints`, mine);
    await sleep(1500);
    const kept = (await endpoints('manual'))!;
    expect(kept.subsets).to.have.length(1);
    expect(kept.subsets[0].addresses).to.deep.equal([{ ip: '192.0.2.10' }]);
    expect(kept.subsets[0].ports[0].port).to.equal(5432);
    expect(kept.metadata.labels?.['endpoints.kubernetes.io/managed-by']).to.equal(undefined);
    expect(await slices('manual')).to.deep.equal([]);
  });

  it('publishes pods as their IPs and readiness change: addresses, notReadyAddresses, slice conditions, updated in place', async () => {
    const [slice] = await slices('web');
    await createPod('web-1', { app: 'web' }, [{ name: 'http', containerPort: 8080 }]);
    await createPod('web-2', { app: 'web' }, [{ name: 'http', containerPort: 8080 }]);
    await createPod('other', { app: 'other' }, [{ name: 'http', containerPort: 8080 }]);
    // No IPs yet: nothing to publish.
    await sleep(500);
    expect(flatten(await endpoints('web'))).to.deep.equal({ ready: [], notReady: [] });
    await setStatus('web-1', '10.244.0.11', true);
    await setStatus('web-2', '10.244.0.12', false);
    await setStatus('other', '10.244.0.99', true);
    await eventually('endpoints by readiness', async () => flatten(await endpoints('web')), { ready: ['10.244.0.11:8080'], notReady: ['10.244.0.12:8080'] });
    const ep = (await endpoints('web'))!;
    expect(ep.subsets).to.have.length(1);
    expect(ep.subsets[0].ports).to.deep.equal([{ name: 'http', port: 8080, protocol: 'TCP' }]);
    const pod1 = (await get(`/api/v1/namespaces/${NS}/pods/web-1`))!;
    expect(ep.subsets[0].addresses).to.deep.equal([{ ip: '10.244.0.11', targetRef: { kind: 'Pod', namespace: NS, name: 'web-1', uid: pod1.metadata.uid } }]);
    await eventually('slice conditions', () => sliceView('web'), ['10.244.0.11:8080 RS-', '10.244.0.12:8080 ---']);
    const [updated] = await slices('web');
    expect(updated!.metadata.name).to.equal(slice!.metadata.name);
    expect(updated!.ports).to.deep.equal([{ name: 'http', port: 8080, protocol: 'TCP' }]);

    await setStatus('web-2', '10.244.0.12', true);
    await eventually('both ready', async () => flatten(await endpoints('web')), { ready: ['10.244.0.11:8080', '10.244.0.12:8080'], notReady: [] });
    await eventually('both ready in the slice', () => sliceView('web'), ['10.244.0.11:8080 RS-', '10.244.0.12:8080 RS-']);
    expect((await slices('web')).map((s) => s.metadata.name)).to.deep.equal([slice!.metadata.name]);
  });

  it('resolves a named target port per pod; a pod without it is left out of Endpoints and gets a port-less slice', async () => {
    await createPod('web-3', { app: 'web' }, [{ name: 'http', containerPort: 9090 }]);
    await createPod('web-4', { app: 'web' }, []);
    await setStatus('web-3', '10.244.0.13', true);
    await setStatus('web-4', '10.244.0.14', true);
    await eventually('two port sets', async () => flatten(await endpoints('web')), { ready: ['10.244.0.11:8080', '10.244.0.12:8080', '10.244.0.13:9090'], notReady: [] });
    expect(((await endpoints('web'))!.subsets as Json[]).map((s) => s.ports.map((p: Json) => p.port))).to.have.deep.members([[8080], [9090]]);
    await eventually('slices per port set', () => sliceView('web'), ['10.244.0.11:8080 RS-', '10.244.0.12:8080 RS-', '10.244.0.13:9090 RS-', '10.244.0.14: RS-']);
    expect(await slices('web')).to.have.length(3);
  });

  it('publishes not-ready pods as ready with publishNotReadyAddresses', async () => {
    await service('web-all', { selector: { app: 'web' }, publishNotReadyAddresses: true, ports: [{ name: 'http', port: 80, targetPort: 'http' }] });
    await setStatus('web-2', '10.244.0.12', false);
    await eventually('web: web-2 not ready', async () => flatten(await endpoints('web')).notReady, ['10.244.0.12:8080']);
    await eventually('web-all: all ready', async () => flatten(await endpoints('web-all')), { ready: ['10.244.0.11:8080', '10.244.0.12:8080', '10.244.0.13:9090'], notReady: [] });
    await eventually('web-all slices', () => sliceView('web-all'), ['10.244.0.11:8080 RS-', '10.244.0.12:8080 R--', '10.244.0.13:9090 RS-', '10.244.0.14: RS-']);
    await eventually('web slices', () => sliceView('web'), ['10.244.0.11:8080 RS-', '10.244.0.12:8080 ---', '10.244.0.13:9090 RS-', '10.244.0.14: RS-']);
  });

  it('publishes a headless Service without ports: addresses without ports, hostnames, the headless label', async () => {
    await service('hl', { clusterIP: 'None', selector: { app: 'hl' } });
    await createPod('hl-0', { app: 'hl' }, [], { hostname: 'hl-0', subdomain: 'hl' });
    await createPod('hl-1', { app: 'hl' }, [], { hostname: 'hl-1', subdomain: 'elsewhere' });
    await setStatus('hl-0', '10.244.1.10', true);
    await setStatus('hl-1', '10.244.1.11', true);
    await eventually('headless Endpoints', async () => ((await endpoints('hl'))?.subsets ?? []).map((s: Json) => [s.ports, (s.addresses as Json[]).map((a) => `${a.ip}/${a.hostname ?? ''}`)]), [[undefined, ['10.244.1.10/hl-0', '10.244.1.11/']]]);
    expect((await endpoints('hl'))!.metadata.labels['service.kubernetes.io/headless']).to.equal('');
    await eventually('headless slice', async () => (await slices('hl')).flatMap((s) => (s.endpoints ?? []).map((e: Json) => `${e.addresses[0]}/${e.hostname ?? ''}`)).sort(), ['10.244.1.10/hl-0', '10.244.1.11/']);
    const [slice] = await slices('hl');
    expect(slice!.metadata.labels['service.kubernetes.io/headless']).to.equal('');
    expect(slice!.ports ?? []).to.deep.equal([]);
  });

  it('keeps a terminating pod in slices (not ready, serving, terminating) with its node and zone, but not in Endpoints', async () => {
    await send('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1', labels: { 'topology.kubernetes.io/zone': 'zone-a' } } });
    await createPod('web-t', { app: 'web' }, [{ name: 'http', containerPort: 8080 }], { nodeName: 'n1' });
    await setStatus('web-t', '10.244.0.20', true);
    await eventually('web-t published', async () => flatten(await endpoints('web')).ready.includes('10.244.0.20:8080'), true);
    const address = ((await endpoints('web'))!.subsets as Json[]).flatMap((s) => s.addresses as Json[]).find((a) => a.ip === '10.244.0.20');
    expect(address?.nodeName).to.equal('n1');
    await until(async () => (await slices('web')).some((s) => (s.endpoints ?? []).some((e: Json) => e.addresses[0] === '10.244.0.20')), 15_000, 'web-t in a slice');
    const endpoint = (await slices('web')).flatMap((s) => s.endpoints as Json[]).find((e) => e.addresses[0] === '10.244.0.20');
    expect(endpoint).to.deep.include({ nodeName: 'n1', zone: 'zone-a' });
    // A pod on a node is deleted gracefully: without a kubelet it stays, terminating.
    await c.ok(['-n', NS, 'delete', 'pod', 'web-t', '--wait=false']);
    expect((await get(`/api/v1/namespaces/${NS}/pods/web-t`))!.metadata.deletionTimestamp).to.be.a('string');
    await eventually('gone from Endpoints', async () => flatten(await endpoints('web')).ready.includes('10.244.0.20:8080'), false);
    await eventually('terminating in the slice', async () => (await sliceView('web')).filter((x) => x.startsWith('10.244.0.20')), ['10.244.0.20:8080 -ST']);
    // publishNotReadyAddresses keeps it in Endpoints and ready in slices.
    await eventually('still in web-all', async () => flatten(await endpoints('web-all')).ready.includes('10.244.0.20:8080'), true);
    await eventually('ready, terminating in web-all slices', async () => (await sliceView('web-all')).filter((x) => x.startsWith('10.244.0.20')), ['10.244.0.20:8080 RST']);
    await c.ok(['-n', NS, 'delete', 'pod', 'web-t', '--grace-period=0', '--force']);
    await eventually('gone from slices', async () => (await sliceView('web')).filter((x) => x.startsWith('10.244.0.20')), []);
  });

  it('drops deleted and relabelled pods, and pods that finished', async () => {
    await c.ok(['-n', NS, 'delete', 'pod', 'web-1', '--wait=false']);
    await c.ok(['-n', NS, 'label', 'pod', 'web-3', 'app=moved', '--overwrite']);
    const pod4 = (await get(`/api/v1/namespaces/${NS}/pods/web-4`))!;
    pod4.status.phase = 'Succeeded';
    await send('PUT', `/api/v1/namespaces/${NS}/pods/web-4/status`, pod4);
    await eventually('only web-2 left', async () => flatten(await endpoints('web')), { ready: [], notReady: ['10.244.0.12:8080'] });
    await eventually('only web-2 left in slices', () => sliceView('web'), ['10.244.0.12:8080 ---']);
    await eventually('extra slices deleted', async () => (await slices('web')).length, 1);
  });

  it('repairs its Endpoints and EndpointSlices when a user edits or deletes them', async () => {
    await c.ok(['-n', NS, 'delete', 'endpoints', 'web']);
    await eventually('Endpoints recreated', async () => flatten(await endpoints('web')), { ready: [], notReady: ['10.244.0.12:8080'] });
    const ep = (await endpoints('web'))!;
    ep.subsets = [{ addresses: [{ ip: '192.0.2.1' }], ports: [{ port: 1 }] }];
    await send('PUT', `/api/v1/namespaces/${NS}/endpoints/web`, ep);
    await eventually('Endpoints repaired', async () => flatten(await endpoints('web')), { ready: [], notReady: ['10.244.0.12:8080'] });
    const [slice] = await slices('web');
    slice!.endpoints = [];
    await send('PUT', `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices/${slice!.metadata.name}`, slice);
    await eventually('slice repaired', () => sliceView('web'), ['10.244.0.12:8080 ---']);
    await c.ok(['-n', NS, 'delete', 'endpointslice', slice!.metadata.name]);
    await eventually('slice recreated', () => sliceView('web'), ['10.244.0.12:8080 ---']);
    expect((await slices('web'))[0]!.metadata.name).to.not.equal(slice!.metadata.name);
  });

  it('shows them through kubectl get endpoints and kubectl get endpointslices', async () => {
    await setStatus('web-2', '10.244.0.12', true);
    await eventually('web-2 ready', async () => flatten(await endpoints('web')).ready, ['10.244.0.12:8080']);
    expect(await c.ok(['-n', NS, 'get', 'endpoints', 'web'])).to.match(/^NAME\s+ENDPOINTS\s+AGE\nweb\s+10\.244\.0\.12:8080\s+\S+\n$/);
    expect(await c.ok(['-n', NS, 'get', 'ep', 'web', '-o', 'jsonpath={.subsets[0].addresses[0].targetRef.name}'])).to.equal('web-2');
    await eventually('slice ready', () => sliceView('web'), ['10.244.0.12:8080 RS-']);
    const [slice] = await slices('web');
    const table = await c.ok(['-n', NS, 'get', 'endpointslices', '-l', 'kubernetes.io/service-name=web']);
    expect(table).to.match(new RegExp(`^NAME\\s+ADDRESSTYPE\\s+PORTS\\s+ENDPOINTS\\s+AGE\\n${slice!.metadata.name}\\s+IPv4\\s+8080\\s+10\\.244\\.0\\.12\\s+\\S+\\n$`));
    expect(await c.ok(['-n', NS, 'get', 'endpoints', 'manual'])).to.match(/^manual\s+192\.0\.2\.10:5432\s+/m);
  });

  it('splits a large Service into slices of at most 100 endpoints', async () => {
    await c.ok(['create', 'namespace', 'many']);
    await c.ok(['-n', 'many', 'apply', '-f', '-'], j({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'big' }, spec: { selector: { app: 'big' }, ports: [{ port: 80, targetPort: 8080 }] } }));
    const names = Array.from({ length: 205 }, (_, i) => `big-${i}`);
    for (let i = 0; i < names.length; i += 25) {
      await Promise.all(names.slice(i, i + 25).map(async (name, k) => {
        await createPod(name, { app: 'big' }, [], {}, 'many');
        await setStatus(name, `10.245.${Math.floor((i + k) / 200)}.${(i + k) % 200 + 1}`, true, 'many');
      }));
    }
    await eventually('205 ready endpoints', async () => (await sliceView('big', 'many')).length, 205, 30_000);
    expect((await slices('big', 'many')).map((s) => s.endpoints.length).sort((a, b) => b - a)).to.deep.equal([100, 100, 5]);
    await eventually('Endpoints with 205 addresses', async () => flatten(await endpoints('big', 'many')).ready.length, 205);
  });

  it('deletes the Endpoints and EndpointSlices of a deleted Service', async () => {
    expect(await slices('web')).to.have.length(1);
    await c.ok(['-n', NS, 'delete', 'service', 'web']);
    await eventually('Endpoints deleted', async () => (await endpoints('web')) === undefined, true);
    await eventually('EndpointSlices deleted', async () => (await slices('web')).length, 0);
    // The other Service on the same pods is untouched.
    expect(flatten(await endpoints('web-all')).ready).to.include('10.244.0.12:8080');
    expect((await slices('web-all')).length).to.be.greaterThan(0);
    // Hand-written Endpoints of a selectorless Service stay when the Service goes.
    await c.ok(['-n', NS, 'delete', 'service', 'manual']);
    await sleep(1000);
    expect(await endpoints('manual')).to.not.equal(undefined);
  });
});
