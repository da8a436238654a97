import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiClient, ApiStatusError, PluginError, compileConfigSchema, type KubeObject, type Logger } from '@kubernel/sdk';
import { describeControllerContract, startPlugin, type RunningPlugin } from '@kubernel/sdk/testing';
import {
  CIDR_ALLOCATOR_COMPONENT,
  CIDR_NOT_AVAILABLE,
  CidrSet,
  RangeAllocator,
  formatIpv4Cidr,
  nodeIpamConfigProblem,
  nodeIpamControllerPlugin,
  parseIpv4Cidr,
  podCIDRsOf,
} from './node-ipam.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const silent = { info() {}, warn() {}, error() {}, debug() {} } as unknown as Logger;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const cidr = (text: string): ReturnType<typeof parseIpv4Cidr> & object => parseIpv4Cidr(text)!;

async function eventually(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

// ---------------------------------------------------------------------------------------------
// A fake API server: Nodes (list, watch, get, create, merge patch with preconditions, delete)
// and Events (create, patch). Enough for an informer, the allocator and an event recorder.

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return patch;
  const out: Json = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

class FakeApiServer {
  readonly nodes = new Map<string, Json>();
  readonly events: Json[] = [];
  /** Node patches answered so far (the allocator's writes). */
  patches = 0;
  private rv = 1;
  private readonly log: Array<{ rv: number; type: string; object: Json }> = [];
  private readonly watchers = new Set<ServerResponse>();
  private server?: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const w of this.watchers) w.end();
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  /** Creates (or replaces) a Node directly in the store. */
  put(name: string, spec: Json = {}, status: Json = {}): Json {
    const old = this.nodes.get(name);
    const node = { apiVersion: 'v1', kind: 'Node', metadata: { name, uid: old?.metadata.uid ?? randomUUID(), resourceVersion: String(++this.rv) }, spec, status };
    this.nodes.set(name, node);
    this.emit(old ? 'MODIFIED' : 'ADDED', node);
    return node;
  }

  remove(name: string): boolean {
    const node = this.nodes.get(name);
    if (!node) return false;
    this.nodes.delete(name);
    this.emit('DELETED', { ...node, metadata: { ...node.metadata, resourceVersion: String(++this.rv) } });
    return true;
  }

  private emit(type: string, object: Json): void {
    const entry = { rv: Number(object.metadata.resourceVersion), type, object: structuredClone(object) };
    this.log.push(entry);
    for (const w of this.watchers) w.write(JSON.stringify({ type, object: entry.object }) + '\n');
  }

  private async body(req: IncomingMessage): Promise<Json> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return chunks.length ? (JSON.parse(Buffer.concat(chunks).toString()) as Json) : {};
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://x');
    const send = (code: number, body: unknown): void => void res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    const status = (code: number, reason: string, message: string): void => send(code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message });
    const node = /^\/api\/v1\/nodes\/([^/]+)$/.exec(u.pathname);
    const events = /^\/api\/v1\/namespaces\/([^/]+)\/events(?:\/([^/]+))?$/.exec(u.pathname);
    if (u.pathname === '/api/v1/nodes' && req.method === 'GET') {
      if (u.searchParams.get('watch') === 'true') {
        res.writeHead(200, { 'content-type': 'application/json' });
        const from = Number(u.searchParams.get('resourceVersion') ?? '0');
        for (const e of this.log) if (e.rv > from) res.write(JSON.stringify({ type: e.type, object: e.object }) + '\n');
        this.watchers.add(res);
        res.on('close', () => this.watchers.delete(res));
        return;
      }
      return send(200, { kind: 'NodeList', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) }, items: [...this.nodes.values()] });
    }
    if (u.pathname === '/api/v1/nodes' && req.method === 'POST') {
      const body = await this.body(req);
      if (this.nodes.has(body.metadata.name)) return status(409, 'AlreadyExists', 'exists');
      return send(201, this.put(body.metadata.name, body.spec ?? {}, body.status ?? {}));
    }
    if (node) {
      const name = decodeURIComponent(node[1]!);
      const current = this.nodes.get(name);
      if (!current) return status(404, 'NotFound', `nodes "${name}" not found`);
      if (req.method === 'GET') return send(200, current);
      if (req.method === 'DELETE') {
        this.remove(name);
        return send(200, current);
      }
      if (req.method === 'PATCH') {
        const patch = await this.body(req);
        this.patches++;
        const rv = patch.metadata?.resourceVersion;
        const uid = patch.metadata?.uid;
        if ((rv !== undefined && rv !== current.metadata.resourceVersion) || (uid !== undefined && uid !== current.metadata.uid)) return status(409, 'Conflict', 'the object has been modified');
        const next = mergePatch(current, patch) as Json;
        if (JSON.stringify(next.spec) === JSON.stringify(current.spec) && JSON.stringify(next.metadata.annotations) === JSON.stringify(current.metadata.annotations)) return send(200, current);
        const old = current;
        const written = { ...next, metadata: { ...next.metadata, uid: old.metadata.uid, resourceVersion: String(++this.rv) } };
        this.nodes.set(name, written);
        this.emit('MODIFIED', written);
        return send(200, written);
      }
    }
    if (events) {
      const body = await this.body(req);
      if (req.method === 'POST') {
        this.events.push(body);
        return send(201, body);
      }
      if (req.method === 'PATCH') {
        const e = this.events.find((x) => x.metadata.name === events[2]);
        if (!e) return status(404, 'NotFound', 'no such event');
        Object.assign(e, mergePatch(e, body));
        return send(200, e);
      }
    }
    return status(404, 'NotFound', `${req.method} ${u.pathname}`);
  }
}

/** Runs the plugin against `api` with `config` (leader election off). */
function runPlugin(api: FakeApiServer, config: Json): RunningPlugin {
  return startPlugin(nodeIpamControllerPlugin, { config: { ...config, leaderElection: { leaderElect: false } }, api: () => new ApiClient({ server: api.url }) });
}

const specOf = (api: FakeApiServer, name: string): Json => api.nodes.get(name)?.spec ?? {};

// ---------------------------------------------------------------------------------------------

describe('node IPAM: CIDRs and the CIDR set', () => {
  it('parses IPv4 CIDRs, clearing host bits, and refuses anything else', () => {
    expect(formatIpv4Cidr(cidr('10.244.0.0/16'))).to.equal('10.244.0.0/16');
    expect(formatIpv4Cidr(cidr('10.244.7.9/16'))).to.equal('10.244.0.0/16');
    expect(formatIpv4Cidr(cidr('255.255.255.255/32'))).to.equal('255.255.255.255/32');
    expect(formatIpv4Cidr(cidr('1.2.3.4/0'))).to.equal('0.0.0.0/0');
    for (const bad of ['10.244.0.0', '10.244.0.0/33', '256.1.1.1/8', 'fd00::/64', '10.244.0.0/16 ', '']) expect(parseIpv4Cidr(bad), bad).to.equal(undefined);
  });

  it('reads a node\'s pod CIDRs from podCIDRs, else podCIDR', () => {
    expect(podCIDRsOf({ spec: { podCIDR: '10.0.1.0/24', podCIDRs: ['10.0.1.0/24', 'fd00::/64'] } })).to.deep.equal(['10.0.1.0/24', 'fd00::/64']);
    expect(podCIDRsOf({ spec: { podCIDR: '10.0.2.0/24' } })).to.deep.equal(['10.0.2.0/24']);
    expect(podCIDRsOf({ spec: {} })).to.deep.equal([]);
    expect(podCIDRsOf(undefined)).to.deep.equal([]);
  });

  it('allocates the lowest free CIDR, in address order, until the range is full', () => {
    const set = new CidrSet(cidr('10.244.0.0/22'), 24);
    expect(set.size).to.equal(4);
    const got = [1, 2, 3, 4].map(() => formatIpv4Cidr(set.allocateNext()!));
    expect(got).to.deep.equal(['10.244.0.0/24', '10.244.1.0/24', '10.244.2.0/24', '10.244.3.0/24']);
    expect(set.allocateNext()).to.equal(undefined);
    set.release(cidr('10.244.2.0/24'));
    expect(formatIpv4Cidr(set.allocateNext()!)).to.equal('10.244.2.0/24');
    expect(set.usedCount).to.equal(4);
  });

  it('occupies what existing CIDRs cover: bigger, smaller, shared, or outside the range', () => {
    const set = new CidrSet(cidr('10.0.0.0/16'), 24);
    expect(set.occupy(cidr('10.0.1.0/24'))).to.equal(true);
    expect(set.occupy(cidr('10.0.4.0/23'))).to.equal(true); // covers .4 and .5
    expect(set.occupy(cidr('10.0.0.128/26'))).to.equal(true); // inside .0
    expect(set.occupy(cidr('192.168.0.0/24'))).to.equal(false);
    expect([0, 1, 2, 3, 4, 5, 6].map((i) => set.isFree(i))).to.deep.equal([false, false, true, true, false, false, true]);
    expect(formatIpv4Cidr(set.allocateNext()!)).to.equal('10.0.2.0/24');
    // Two holders of one CIDR: it stays used until both let go.
    set.occupy(cidr('10.0.1.0/24'));
    set.release(cidr('10.0.1.0/24'));
    expect(set.isFree(1)).to.equal(false);
    set.release(cidr('10.0.1.0/24'));
    set.release(cidr('10.0.1.0/24')); // one release too many changes nothing
    expect(set.isFree(1)).to.equal(true);
    // A service range overlapping the cluster range.
    const withServices = new CidrSet(cidr('10.96.0.0/14'), 16);
    withServices.occupy(cidr('10.96.0.0/12'));
    expect(withServices.allocateNext()).to.equal(undefined);
  });

  it('refuses a mask size that does not fit the cluster CIDR', () => {
    expect(() => new CidrSet(cidr('10.0.0.0/16'), 8)).to.throw(RangeError, /must not be smaller/);
    expect(() => new CidrSet(cidr('10.0.0.0/8'), 25)).to.throw(RangeError, /at most 16 bits/);
    expect(new CidrSet(cidr('10.0.0.0/8'), 24).size).to.equal(65536);
  });
});

describe('node IPAM: configuration', () => {
  const validate = compileConfigSchema(nodeIpamControllerPlugin.configSchema, nodeIpamControllerPlugin.id);

  it('defaults to 10.244.0.0/16 and /24, as the default distribution', () => {
    const r = validate({});
    expect(r.ok).to.equal(true);
    expect(r.ok && (r.config as Json).clusterCIDR).to.equal('10.244.0.0/16');
    expect(r.ok && (r.config as Json).nodeCIDRMaskSize).to.equal(24);
  });

  it('refuses bad fields, naming them', () => {
    for (const [config, path] of [
      [{ clusterCIDR: '10.244.0.0' }, '/clusterCIDR'],
      [{ clusterCIDR: 'fd00::/48' }, '/clusterCIDR'],
      [{ nodeCIDRMaskSize: 33 }, '/nodeCIDRMaskSize'],
      [{ nodeCIDRMaskSize: 24.5 }, '/nodeCIDRMaskSize'],
      [{ serviceCIDR: 'services' }, '/serviceCIDR'],
    ] as const) {
      const r = validate(config);
      expect(r.ok, JSON.stringify(config)).to.equal(false);
      expect(!r.ok && r.problems.map((p) => p.path)).to.include(path);
    }
  });

  it('refuses a mask size that does not fit the cluster CIDR, naming nodeCIDRMaskSize, before it starts anything', async () => {
    expect(nodeIpamConfigProblem({ clusterCIDR: '10.244.0.0/16', nodeCIDRMaskSize: 24 })).to.equal(undefined);
    expect(nodeIpamConfigProblem({ clusterCIDR: '10.244.0.0/16', nodeCIDRMaskSize: 12 })?.field).to.equal('nodeCIDRMaskSize');
    expect(nodeIpamConfigProblem({ clusterCIDR: '10.0.0.0/8', nodeCIDRMaskSize: 26 })?.field).to.equal('nodeCIDRMaskSize');
    expect(nodeIpamConfigProblem({ clusterCIDR: '10.0.0.0/8', nodeCIDRMaskSize: 24, serviceCIDR: 'x' })?.field).to.equal('serviceCIDR');
    const running = startPlugin(nodeIpamControllerPlugin, { config: { clusterCIDR: '10.244.0.0/16', nodeCIDRMaskSize: 12, leaderElection: { leaderElect: false } } });
    try {
      const err = await running.ready.then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(PluginError);
      expect((err as PluginError).field).to.equal('nodeCIDRMaskSize');
    } finally {
      await running.stop(2000);
      running.host.dispose();
    }
  });
});

describe('node IPAM: the range allocator against a live (fake) API server', function () {
  this.timeout(30_000);
  let api: FakeApiServer;
  let running: RunningPlugin | undefined;

  beforeEach(async () => {
    api = new FakeApiServer();
    await api.start();
  });

  afterEach(async () => {
    const outcome = await running?.stop(5000);
    running?.host.dispose();
    running = undefined;
    await api.stop();
    if (outcome) expect(outcome.outcome).to.equal('stopped');
  });

  it('gives new nodes the lowest free CIDRs in order, in spec.podCIDR and spec.podCIDRs', async () => {
    running = runPlugin(api, { clusterCIDR: '10.244.0.0/16', nodeCIDRMaskSize: 24 });
    await running.ready;
    for (const n of ['n1', 'n2', 'n3']) api.put(n);
    await eventually(() => ['n1', 'n2', 'n3'].every((n) => specOf(api, n).podCIDR), 'three allocations');
    expect(['n1', 'n2', 'n3'].map((n) => specOf(api, n))).to.deep.equal([
      { podCIDR: '10.244.0.0/24', podCIDRs: ['10.244.0.0/24'] },
      { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24'] },
      { podCIDR: '10.244.2.0/24', podCIDRs: ['10.244.2.0/24'] },
    ]);
    // Converged: no more writes.
    const patches = api.patches;
    await sleep(300);
    expect(api.patches).to.equal(patches);
  });

  it('respects the CIDRs nodes have at start, even out of order, and never hands them out again', async () => {
    api.put('manual', { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24'] });
    api.put('legacy', { podCIDR: '10.244.3.0/24' }); // podCIDR only
    api.put('elsewhere', { podCIDR: '192.168.9.0/24', podCIDRs: ['192.168.9.0/24'] });
    running = runPlugin(api, { clusterCIDR: '10.244.0.0/16', nodeCIDRMaskSize: 24 });
    await running.ready;
    for (const n of ['a', 'b', 'c']) api.put(n);
    await eventually(() => ['a', 'b', 'c'].every((n) => specOf(api, n).podCIDR), 'three allocations');
    expect(['a', 'b', 'c'].map((n) => specOf(api, n).podCIDR)).to.deep.equal(['10.244.0.0/24', '10.244.2.0/24', '10.244.4.0/24']);
    expect(specOf(api, 'manual')).to.deep.equal({ podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24'] });
    expect(specOf(api, 'legacy')).to.deep.equal({ podCIDR: '10.244.3.0/24' });
    expect(specOf(api, 'elsewhere').podCIDR).to.equal('192.168.9.0/24');
  });

  it('reuses the CIDR of a deleted node for the next one', async () => {
    running = runPlugin(api, { clusterCIDR: '10.244.0.0/16', nodeCIDRMaskSize: 24 });
    await running.ready;
    for (const n of ['n1', 'n2', 'n3']) api.put(n);
    await eventually(() => specOf(api, 'n3').podCIDR !== undefined, 'allocations');
    const freed = specOf(api, 'n2').podCIDR as string;
    api.remove('n2');
    await sleep(100); // the delete reaches the controller first
    api.put('n4');
    await eventually(() => specOf(api, 'n4').podCIDR !== undefined, 'n4 allocated');
    expect(specOf(api, 'n4').podCIDR).to.equal(freed);
    api.put('n5');
    await eventually(() => specOf(api, 'n5').podCIDR !== undefined, 'n5 allocated');
    expect(specOf(api, 'n5').podCIDR).to.equal('10.244.3.0/24');
  });

  it('excludes the service range where it overlaps the cluster CIDR', async () => {
    running = runPlugin(api, { clusterCIDR: '10.96.0.0/22', nodeCIDRMaskSize: 24, serviceCIDR: '10.96.0.0/23' });
    await running.ready;
    api.put('n1');
    api.put('n2');
    await eventually(() => specOf(api, 'n1').podCIDR && specOf(api, 'n2').podCIDR, 'allocations');
    expect([specOf(api, 'n1').podCIDR, specOf(api, 'n2').podCIDR]).to.deep.equal(['10.96.2.0/24', '10.96.3.0/24']);
  });

  it('records CIDRNotAvailable on a node when the range is full, leaves its conditions alone, and allocates once a CIDR is freed', async () => {
    running = runPlugin(api, { clusterCIDR: '10.9.0.0/23', nodeCIDRMaskSize: 24 });
    await running.ready;
    const conditions = { conditions: [{ type: 'Ready', status: 'True' }] };
    for (const n of ['n1', 'n2']) api.put(n);
    await eventually(() => specOf(api, 'n2').podCIDR !== undefined, 'allocations');
    api.put('n3', {}, conditions);
    await eventually(() => api.events.some((e) => e.reason === CIDR_NOT_AVAILABLE), 'the CIDRNotAvailable event');
    const event = api.events.find((e) => e.reason === CIDR_NOT_AVAILABLE)!;
    expect(event.type).to.equal('Normal');
    expect(event.message).to.equal('Node n3 status is now: CIDRNotAvailable');
    expect(event.involvedObject).to.include({ kind: 'Node', name: 'n3', uid: 'n3' });
    expect(event.metadata.namespace).to.equal('default');
    expect(event.source.component).to.equal(CIDR_ALLOCATOR_COMPONENT);
    expect(api.nodes.get('n3')!.status).to.deep.equal(conditions);
    expect(specOf(api, 'n3')).to.deep.equal({});
    const freed = specOf(api, 'n1').podCIDR as string;
    api.remove('n1');
    // Woken by the release, not by its back-off.
    await eventually(() => specOf(api, 'n3').podCIDR !== undefined, 'n3 allocated after the release', 3000);
    expect(specOf(api, 'n3')).to.deep.equal({ podCIDR: freed, podCIDRs: [freed] });
  });
});

describe('node IPAM: the allocator against an API double (races)', () => {
  const nodeObj = (name: string, spec: Json = {}, rv = '1'): KubeObject => ({ apiVersion: 'v1', kind: 'Node', metadata: { name, uid: `uid-${name}`, resourceVersion: rv }, spec });

  function setup(live: Map<string, KubeObject>, cache: Map<string, KubeObject>, failPatch: () => Error | undefined = () => undefined) {
    const calls: Array<[string, string, unknown?]> = [];
    const allocator = new RangeAllocator({
      api: {
        get: async <T,>(path: string): Promise<T> => {
          calls.push(['GET', path]);
          const n = live.get(path.split('/').pop()!);
          if (!n) throw new ApiStatusError(404, 'NotFound', 'not found');
          return n as T;
        },
        patch: async <T,>(path: string, body: unknown): Promise<T> => {
          calls.push(['PATCH', path, body]);
          const err = failPatch();
          if (err) throw err;
          return body as T;
        },
      },
      nodes: { get: (k: string) => cache.get(k), list: () => [...cache.values()] },
      clusterCIDR: cidr('10.244.0.0/16'),
      nodeCIDRMaskSize: 24,
      logger: silent,
    });
    allocator.occupyExisting();
    return { allocator, calls };
  }

  it('writes with the resourceVersion and uid it read, so a concurrent writer is never overwritten', async () => {
    const live = new Map([['n', nodeObj('n', {}, '7')]]);
    const { allocator, calls } = setup(live, new Map(live));
    await allocator.reconcile({ namespace: '', name: 'n' });
    expect(calls).to.deep.equal([
      ['GET', '/api/v1/nodes/n'],
      ['PATCH', '/api/v1/nodes/n', { metadata: { resourceVersion: '7', uid: 'uid-n' }, spec: { podCIDR: '10.244.0.0/24', podCIDRs: ['10.244.0.0/24'] } }],
    ]);
  });

  it('takes the CIDR the live node already has when the cache is behind, and frees its reservation', async () => {
    const live = new Map([['n', nodeObj('n', { podCIDR: '10.244.9.0/24', podCIDRs: ['10.244.9.0/24'] })]]);
    const { allocator, calls } = setup(live, new Map([['n', nodeObj('n')]]));
    await allocator.reconcile({ namespace: '', name: 'n' });
    expect(calls.map((c) => c[0])).to.deep.equal(['GET']);
    expect(allocator.heldBy('n')).to.deep.equal(['10.244.9.0/24']);
    expect(allocator.cidrs.isFree(0)).to.equal(true);
    expect(allocator.cidrs.isFree(9)).to.equal(false);
  });

  it('keeps its reservation across a conflict and writes the same CIDR on the retry', async () => {
    const live = new Map([['a', nodeObj('a')], ['b', nodeObj('b')]]);
    let fail = true;
    const { allocator, calls } = setup(live, new Map(live), () => (fail ? new ApiStatusError(409, 'Conflict', 'modified') : undefined));
    let err: unknown;
    await allocator.reconcile({ namespace: '', name: 'a' }).catch((e: unknown) => (err = e));
    expect(err).to.be.instanceOf(ApiStatusError);
    expect(allocator.waitingNodes).to.deep.equal(['a']);
    fail = false;
    await allocator.reconcile({ namespace: '', name: 'b' });
    await allocator.reconcile({ namespace: '', name: 'a' });
    const written = calls.filter((c) => c[0] === 'PATCH').map((c) => [c[1], (c[2] as Json).spec.podCIDR]);
    expect(written).to.deep.equal([['/api/v1/nodes/a', '10.244.0.0/24'], ['/api/v1/nodes/b', '10.244.1.0/24'], ['/api/v1/nodes/a', '10.244.0.0/24']]);
    expect(allocator.waitingNodes).to.deep.equal([]);
  });

  it('releases the reservation of a node that disappears before the write', async () => {
    const cache = new Map([['gone', nodeObj('gone')]]);
    const { allocator, calls } = setup(new Map(), cache);
    await allocator.reconcile({ namespace: '', name: 'gone' });
    expect(calls.map((c) => c[0])).to.deep.equal(['GET']);
    expect(allocator.heldBy('gone')).to.deep.equal([]);
    expect(allocator.cidrs.usedCount).to.equal(0);
  });
});

// ---------------------------------------------------------------------------------------------
// The published controller contract, on a fake API server of its own.

const contractApi = new FakeApiServer();
const CONTRACT_RANGE = cidr('10.250.0.0/16');
let generation = 0;

before(async () => {
  await contractApi.start();
});

after(async () => {
  await contractApi.stop();
});

describeControllerContract(nodeIpamControllerPlugin, {
  config: { clusterCIDR: '10.250.0.0/16', nodeCIDRMaskSize: 24, leaderElection: { leaderElect: false } },
  invalidConfigs: [
    { config: { clusterCIDR: 'not-a-cidr' }, path: '/clusterCIDR' },
    { config: { nodeCIDRMaskSize: 40 }, path: '/nodeCIDRMaskSize' },
    { config: { serviceCIDR: '10.96.0.0/40' }, path: '/serviceCIDR' },
  ],
  api: () => new ApiClient({ server: contractApi.url }),
  scenario: {
    watched: ['/api/v1/nodes'],
    contended: ['/api/v1/nodes/churn'],
    async setup(client) {
      await client.create('/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'fixed' }, spec: { podCIDR: '10.250.7.0/24', podCIDRs: ['10.250.7.0/24'] } });
      for (const name of ['a', 'b', 'churn']) await client.create('/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name } });
    },
    async converged(client) {
      const nodes = (await client.list('/api/v1/nodes')).items;
      const seen = new Set<string>();
      for (const n of nodes) {
        const spec = (n.spec ?? {}) as Json;
        const c = parseIpv4Cidr(String(spec.podCIDR));
        if (!c || c.prefix !== 24 || spec.podCIDRs?.length !== 1 || spec.podCIDRs[0] !== spec.podCIDR) return false;
        if (c.base < CONTRACT_RANGE.base || c.base >= CONTRACT_RANGE.base + 65536) return false;
        if (seen.has(spec.podCIDR)) return false;
        seen.add(spec.podCIDR);
      }
      return ((nodes.find((n) => n.metadata?.name === 'fixed')?.spec ?? {}) as Json).podCIDR === '10.250.7.0/24';
    },
    async perturb(client) {
      await client.delete('/api/v1/nodes/churn').catch(() => undefined);
      const old = (await client.list('/api/v1/nodes')).items.map((n) => String(n.metadata?.name)).filter((n) => n.startsWith('p-'));
      if (old.length > 0) await client.delete(`/api/v1/nodes/${old[0]}`);
      await client.create('/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'churn' } });
      await client.create('/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: `p-${++generation}` } });
    },
  },
});
