import { expect } from 'chai';
import { ApiStatusError, type ApiClient, type InformerHandlers, type KubeObject, type Logger, type Metrics, type OwnerReference } from '@kubernel/sdk';
import {
  BoundedSet,
  GarbageCollector,
  classifyReferences,
  collectionPath,
  danglingReferences,
  decideForDependent,
  objectPath,
  ownerPhase,
  ownerReferencesOf,
  ownerStatus,
  OwnerGraph,
  parseApiVersion,
  policyFromFinalizers,
  resourcesOf,
  unblockedOwnerReferences,
  withoutOwnerReferences,
  type Classification,
  type OwnerStatus,
  type ResourceInfo,
} from './garbage-collector.js';

const CM: ResourceInfo = { group: '', version: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespaced: true, verbs: [] };
const SECRET: ResourceInfo = { group: '', version: 'v1', kind: 'Secret', resource: 'secrets', namespaced: true, verbs: [] };
const CLUSTER_ROLE: ResourceInfo = { group: 'rbac.authorization.k8s.io', version: 'v1', kind: 'ClusterRole', resource: 'clusterroles', namespaced: false, verbs: [] };
const DEPLOY: ResourceInfo = { group: 'apps', version: 'v1', kind: 'Deployment', resource: 'deployments', namespaced: true, verbs: [] };

const ref = (o: KubeObject, info: ResourceInfo, extra: Partial<OwnerReference> = {}): OwnerReference => ({
  apiVersion: info.group ? `${info.group}/${info.version}` : info.version,
  kind: info.kind,
  name: String(o.metadata?.name),
  uid: String(o.metadata?.uid),
  ...extra,
});

function obj(name: string, uid: string, opts: { ns?: string | null; refs?: OwnerReference[]; finalizers?: string[]; deleting?: boolean; rv?: string } = {}): KubeObject {
  return {
    metadata: {
      name,
      uid,
      ...(opts.ns === null ? {} : { namespace: opts.ns ?? 'default' }),
      resourceVersion: opts.rv ?? '1',
      ...(opts.refs ? { ownerReferences: opts.refs } : {}),
      ...(opts.finalizers ? { finalizers: opts.finalizers } : {}),
      ...(opts.deleting ? { deletionTimestamp: '2024-01-01T00:00:00Z' } : {}),
    },
  };
}

const classification = (c: Partial<Record<OwnerStatus, OwnerReference[]>>): Classification => ({ solid: c.solid ?? [], dangling: c.dangling ?? [], waiting: c.waiting ?? [], unresolved: c.unresolved ?? [] });
const r = (uid: string, extra: Partial<OwnerReference> = {}): OwnerReference => ({ apiVersion: 'v1', kind: 'ConfigMap', name: `n-${uid}`, uid, ...extra });
const ctx = { finalizers: [] as string[], hasDependents: false, dependentDeletingDependents: false };

describe('garbage collector: pure parts', () => {
  describe('paths, discovery and references', () => {
    it('parses apiVersions and builds collection and object paths', () => {
      expect(parseApiVersion('v1')).to.deep.equal({ group: '', version: 'v1' });
      expect(parseApiVersion('apps/v1')).to.deep.equal({ group: 'apps', version: 'v1' });
      expect(collectionPath(CM)).to.equal('/api/v1/configmaps');
      expect(objectPath(CM, 'ns 1', 'a')).to.equal('/api/v1/namespaces/ns%201/configmaps/a');
      expect(objectPath(DEPLOY, 'x', 'web')).to.equal('/apis/apps/v1/namespaces/x/deployments/web');
      expect(objectPath(CLUSTER_ROLE, 'ignored', 'admin')).to.equal('/apis/rbac.authorization.k8s.io/v1/clusterroles/admin');
    });

    it('watches only top-level resources that support list, watch and delete, and never events', () => {
      const all = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'];
      const core = resourcesOf('v1', [
        { name: 'configmaps', namespaced: true, kind: 'ConfigMap', verbs: all },
        { name: 'pods/status', namespaced: true, kind: 'Pod', verbs: ['get', 'patch'] },
        { name: 'events', namespaced: true, kind: 'Event', verbs: all },
        { name: 'bindings', namespaced: true, kind: 'Binding', verbs: ['create'] },
        { name: 'componentstatuses', namespaced: false, kind: 'ComponentStatus', verbs: ['get', 'list'] },
      ], true);
      expect(core.map((x) => x.resource)).to.deep.equal(['configmaps']);
      expect(resourcesOf('events.k8s.io/v1', [{ name: 'events', namespaced: true, kind: 'Event', verbs: all }], true)).to.deep.equal([]);
      // For kind resolution every top-level resource counts.
      expect(resourcesOf('v1', [{ name: 'bindings', namespaced: true, kind: 'Binding', verbs: ['create'] }, { name: 'pods/log', namespaced: true, kind: 'Pod' }], false).map((x) => x.kind)).to.deep.equal(['Binding']);
    });

    it('reads only well-formed owner references and removes or unblocks them by uid, leaving others untouched', () => {
      const o = obj('d', 'd1', { refs: [r('a', { blockOwnerDeletion: true }), { bogus: true } as unknown as OwnerReference, r('b'), { apiVersion: 'v1', kind: 'X', name: 'n', uid: '' }] });
      expect(ownerReferencesOf(o).map((x) => x.uid)).to.deep.equal(['a', 'b']);
      expect(withoutOwnerReferences(o, ['a'])).to.deep.equal([{ bogus: true }, r('b'), { apiVersion: 'v1', kind: 'X', name: 'n', uid: '' }]);
      expect(unblockedOwnerReferences(o)[0]).to.deep.equal(r('a', { blockOwnerDeletion: false }));
      expect(unblockedOwnerReferences(o)[2]).to.deep.equal(r('b'));
      expect(ownerReferencesOf({})).to.deep.equal([]);
    });
  });

  describe('dangling detection', () => {
    const owner = obj('o', 'u-owner');
    const reference = ref(owner, CM);
    it('an owner is dangling when nothing is at its coordinates or something with another uid is', () => {
      expect(ownerStatus(reference, undefined)).to.equal('dangling');
      expect(ownerStatus(reference, obj('o', 'u-someone-else'))).to.equal('dangling');
      expect(ownerStatus(reference, owner)).to.equal('solid');
      expect(ownerStatus(reference, 'unresolved')).to.equal('unresolved');
    });

    it('an owner deleting its dependents (foregroundDeletion and a deletionTimestamp) is waiting; the finalizer alone is not', () => {
      expect(ownerStatus(reference, obj('o', 'u-owner', { finalizers: ['foregroundDeletion'], deleting: true }))).to.equal('waiting');
      expect(ownerStatus(reference, obj('o', 'u-owner', { finalizers: ['foregroundDeletion'] }))).to.equal('solid');
      expect(ownerStatus(reference, obj('o', 'u-owner', { finalizers: ['orphan'], deleting: true }))).to.equal('solid');
    });

    it('picks the dangling references out of a lookup table', () => {
      const refs = [r('a'), r('b'), r('c'), r('d')];
      const world: Record<string, KubeObject | undefined> = { 'n-a': obj('n-a', 'a'), 'n-b': undefined, 'n-c': obj('n-c', 'recreated') };
      expect(danglingReferences(refs, (x) => (x.uid === 'd' ? 'unresolved' : world[x.name])).map((x) => x.uid)).to.deep.equal(['b', 'c']);
    });

    it('classifies references in order', () => {
      const refs = [r('a'), r('b'), r('c'), r('d'), r('e')];
      const statuses: OwnerStatus[] = ['solid', 'dangling', 'waiting', 'unresolved', 'dangling'];
      const c = classifyReferences(refs, (_, i) => statuses[i]!);
      expect(c.solid.map((x) => x.uid)).to.deep.equal(['a']);
      expect(c.dangling.map((x) => x.uid)).to.deep.equal(['b', 'e']);
      expect(c.waiting.map((x) => x.uid)).to.deep.equal(['c']);
      expect(c.unresolved.map((x) => x.uid)).to.deep.equal(['d']);
    });
  });

  describe('decisions', () => {
    const table: Array<[string, Classification, Partial<typeof ctx>, ReturnType<typeof decideForDependent>]> = [
      ['no references: nothing', classification({}), {}, { action: 'none', reason: 'no owner references' }],
      ['all owners alive: nothing', classification({ solid: [r('a'), r('b')] }), {}, { action: 'none', reason: 'an owner exists' }],
      ['one owner gone, one alive: drop the dangling reference', classification({ solid: [r('a')], dangling: [r('b')] }), {}, { action: 'removeReferences', uids: ['b'] }],
      ['blockOwnerDeletion changes nothing', classification({ solid: [r('a')], dangling: [r('b', { blockOwnerDeletion: true })] }), {}, { action: 'removeReferences', uids: ['b'] }],
      ['alive owner and a waiting one: drop the waiting reference so it is not held up', classification({ solid: [r('a')], waiting: [r('w')] }), {}, { action: 'removeReferences', uids: ['w'] }],
      ['a uid listed as solid and dangling stays', classification({ solid: [r('a')], dangling: [r('a', { name: 'other' }), r('b')] }), {}, { action: 'removeReferences', uids: ['b'] }],
      ['all owners gone: background', classification({ dangling: [r('a'), r('b')] }), {}, { action: 'delete', policy: 'Background', unblockFirst: false }],
      ['all owners gone, own orphan finalizer honoured', classification({ dangling: [r('a')] }), { finalizers: ['orphan'] }, { action: 'delete', policy: 'Orphan', unblockFirst: false }],
      ['all owners gone, own foreground finalizer honoured', classification({ dangling: [r('a')] }), { finalizers: ['foregroundDeletion'] }, { action: 'delete', policy: 'Foreground', unblockFirst: false }],
      ['owner waiting, no dependents: background (nothing below to wait for)', classification({ waiting: [r('w')] }), {}, { action: 'delete', policy: 'Background', unblockFirst: false }],
      ['owner waiting, dependents below: foreground (recursion)', classification({ waiting: [r('w')], dangling: [r('x')] }), { hasDependents: true }, { action: 'delete', policy: 'Foreground', unblockFirst: false }],
      ['owner waiting and a dependent waiting too (cycle): unblock, then foreground', classification({ waiting: [r('w')] }), { hasDependents: true, dependentDeletingDependents: true }, { action: 'delete', policy: 'Foreground', unblockFirst: true }],
      ['unknown kind alone: left alone', classification({ unresolved: [r('k')] }), {}, { action: 'none', reason: 'an owner reference cannot be resolved' }],
      ['unknown kind with gone owners: never deleted, dangling references dropped', classification({ unresolved: [r('k')], dangling: [r('a')], waiting: [r('w')] }), {}, { action: 'removeReferences', uids: ['a', 'w'] }],
    ];
    for (const [name, c, extra, want] of table) {
      it(name, () => expect(decideForDependent(c, { ...ctx, ...extra })).to.deep.equal(want));
    }

    it('maps finalizers to propagation policies (orphan wins)', () => {
      expect(policyFromFinalizers([])).to.equal('Background');
      expect(policyFromFinalizers(['example.com/x'])).to.equal('Background');
      expect(policyFromFinalizers(['foregroundDeletion'])).to.equal('Foreground');
      expect(policyFromFinalizers(['foregroundDeletion', 'orphan'])).to.equal('Orphan');
    });

    it('chooses the owner-side action from the finalizer, only once a deletionTimestamp is set', () => {
      expect(ownerPhase(obj('a', '1'))).to.equal('active');
      expect(ownerPhase(obj('a', '1', { finalizers: ['orphan', 'foregroundDeletion'] }))).to.equal('active');
      expect(ownerPhase(obj('a', '1', { finalizers: ['orphan'], deleting: true }))).to.equal('orphan');
      expect(ownerPhase(obj('a', '1', { finalizers: ['foregroundDeletion'], deleting: true }))).to.equal('foreground');
      expect(ownerPhase(obj('a', '1', { finalizers: ['foregroundDeletion', 'orphan'], deleting: true }))).to.equal('orphan');
      expect(ownerPhase(obj('a', '1', { finalizers: ['example.com/hold'], deleting: true }))).to.equal('terminating');
    });
  });

  describe('the owner graph', () => {
    it('indexes dependents by owner uid and resolves owners by uid, group, kind, name and namespace', () => {
      const g = new OwnerGraph();
      const owner = obj('o', 'u-o', { ns: 'a' });
      g.observe(CM, owner);
      const good = obj('d', 'u-d', { ns: 'a', refs: [ref(owner, CM)] });
      const otherNs = obj('d', 'u-d2', { ns: 'b', refs: [ref(owner, CM)] });
      const wrongKind = obj('d3', 'u-d3', { ns: 'a', refs: [ref(owner, SECRET)] });
      const wrongName = obj('d4', 'u-d4', { ns: 'a', refs: [{ ...ref(owner, CM), name: 'x' }] });
      expect(g.observe(CM, good)).to.deep.equal([]);
      expect(g.observe(CM, otherNs)).to.deep.equal(['u-d2']);
      expect(g.observe(SECRET, wrongKind)).to.deep.equal(['u-d3']);
      expect(g.observe(CM, wrongName)).to.deep.equal(['u-d4']);
      expect(g.dependentsOf('u-o').map((n) => n.uid).sort()).to.deep.equal(['u-d', 'u-d2', 'u-d3', 'u-d4']);
      expect(g.cachedStatus(ref(owner, CM), 'a')).to.equal('solid');
      expect(g.cachedStatus(ref(owner, CM), 'b')).to.equal(undefined);
      expect(g.cachedStatus({ ...ref(owner, CM), apiVersion: 'apps/v1' }, 'a')).to.equal(undefined);
    });

    it('a cluster-scoped owner serves any namespace; a cluster-scoped dependent never matches a namespaced owner', () => {
      const g = new OwnerGraph();
      const role = obj('r', 'u-r', { ns: null });
      const cm = obj('c', 'u-c', { ns: 'a' });
      g.observe(CLUSTER_ROLE, role);
      g.observe(CM, cm);
      expect(g.cachedStatus(ref(role, CLUSTER_ROLE), 'a')).to.equal('solid');
      expect(g.cachedStatus(ref(role, CLUSTER_ROLE), '')).to.equal('solid');
      expect(g.observe(CLUSTER_ROLE, obj('r2', 'u-r2', { ns: null, refs: [ref(cm, CM)] }))).to.deep.equal(['u-r2']);
      expect(g.cachedStatus(ref(cm, CM), '')).to.equal(undefined);
    });

    it('an owner deleted queues its dependents; a dependent deleted queues owners deleting their dependents', () => {
      const g = new OwnerGraph();
      const owner = obj('o', 'u-o');
      g.observe(CM, owner);
      const d1 = obj('d1', 'u-d1', { refs: [ref(owner, CM, { blockOwnerDeletion: true })] });
      g.observe(CM, d1);
      g.observe(CM, obj('d2', 'u-d2', { refs: [ref(owner, CM)] }));
      expect(g.forget(owner).sort()).to.deep.equal(['u-d1', 'u-d2']);
      // Deleting the dependent of an ordinary owner concerns nobody.
      const g2 = new OwnerGraph();
      g2.observe(CM, owner);
      g2.observe(CM, d1);
      expect(g2.forget(d1)).to.deep.equal([]);
      const waiting = obj('o', 'u-o', { finalizers: ['foregroundDeletion'], deleting: true, rv: '2' });
      g2.observe(CM, d1);
      g2.observe(CM, waiting);
      expect(g2.forget(d1)).to.deep.equal(['u-o']);
      expect(g2.blockingDependentsOf('u-o')).to.deep.equal([]);
    });

    it('an owner starting a foreground deletion queues itself and every dependent; later updates only itself', () => {
      const g = new OwnerGraph();
      const owner = obj('o', 'u-o');
      g.observe(CM, owner);
      g.observe(CM, obj('d1', 'u-d1', { refs: [ref(owner, CM, { blockOwnerDeletion: true })] }));
      g.observe(CM, obj('d2', 'u-d2', { refs: [ref(owner, CM)] }));
      expect(g.observe(CM, obj('o', 'u-o', { finalizers: ['foregroundDeletion'], deleting: true, rv: '2' })).sort()).to.deep.equal(['u-d1', 'u-d2', 'u-o']);
      expect(g.observe(CM, obj('o', 'u-o', { finalizers: ['foregroundDeletion'], deleting: true, rv: '3' }))).to.deep.equal(['u-o']);
      expect(g.blockingDependentsOf('u-o').map((n) => n.uid)).to.deep.equal(['u-d1']);
      // A new dependent of a waiting owner is queued to be deleted too.
      expect(g.observe(CM, obj('d3', 'u-d3', { refs: [ref(owner, CM)] }))).to.deep.equal(['u-d3']);
      // A blocking dependent that stops blocking brings the owner back.
      expect(g.observe(CM, obj('d1', 'u-d1', { rv: '2', refs: [ref(owner, CM, { blockOwnerDeletion: false })] })).sort()).to.deep.equal(['u-d1', 'u-o']);
      expect(g.blockingDependentsOf('u-o')).to.deep.equal([]);
    });

    it('an owner starting an orphaning deletion queues itself only', () => {
      const g = new OwnerGraph();
      const owner = obj('o', 'u-o');
      g.observe(CM, owner);
      g.observe(CM, obj('d', 'u-d', { refs: [ref(owner, CM)] }));
      expect(g.observe(CM, obj('o', 'u-o', { finalizers: ['orphan'], deleting: true, rv: '2' }))).to.deep.equal(['u-o']);
    });

    it('an ownership cycle (A owns B, B owns A) ends: deleting A queues B, deleting B queues nothing', () => {
      const g = new OwnerGraph();
      const a = obj('a', 'u-a', { refs: [r('u-b', { name: 'b' })] });
      const b = obj('b', 'u-b', { refs: [r('u-a', { name: 'a' })] });
      g.observe(CM, a);
      g.observe(CM, b);
      expect(g.dependentsOf('u-a').map((n) => n.uid)).to.deep.equal(['u-b']);
      expect(g.dependentsOf('u-b').map((n) => n.uid)).to.deep.equal(['u-a']);
      expect(g.forget(a)).to.deep.equal(['u-b']);
      expect(g.forget(b)).to.deep.equal([]);
      expect(g.size).to.equal(0);
    });

    it('a self-owning object and a three-cycle never queue a gone object', () => {
      const g = new OwnerGraph();
      const self = obj('s', 'u-s', { refs: [r('u-s', { name: 's' })] });
      expect(g.observe(CM, self)).to.deep.equal([]);
      expect(g.forget(self)).to.deep.equal([]);
      const x = obj('x', 'u-x', { refs: [r('u-z', { name: 'z' })] });
      const y = obj('y', 'u-y', { refs: [r('u-x', { name: 'x' })] });
      const z = obj('z', 'u-z', { refs: [r('u-y', { name: 'y' })] });
      for (const o of [x, y, z]) g.observe(CM, o);
      const seen: string[] = [];
      // Simulate the collector deleting whatever is queued, until nothing is: it must stop.
      let queue = g.forget(x);
      for (let steps = 0; queue.length > 0; steps++) {
        expect(steps).to.be.lessThan(10);
        const next = g.get(queue.shift()!);
        if (!next) continue;
        seen.push(next.name);
        queue = [...queue, ...g.forget(next.object)];
      }
      expect(seen).to.deep.equal(['y', 'z']);
    });

    it('a foreground deletion through a cycle: the dependent sees its owner waiting and a dependent waiting too', () => {
      const g = new OwnerGraph();
      const a = obj('a', 'u-a', { refs: [r('u-b', { name: 'b', blockOwnerDeletion: true })] });
      const b = obj('b', 'u-b', { refs: [r('u-a', { name: 'a', blockOwnerDeletion: true })] });
      g.observe(CM, a);
      g.observe(CM, b);
      expect(g.observe(CM, obj('a', 'u-a', { refs: a.metadata!.ownerReferences as OwnerReference[], finalizers: ['foregroundDeletion'], deleting: true, rv: '2' })).sort()).to.deep.equal(['u-a', 'u-b']);
      const bNode = g.get('u-b')!;
      const c = classifyReferences(bNode.refs, (x) => g.cachedStatus(x, bNode.namespace) ?? 'dangling');
      expect(c.waiting.map((x) => x.uid)).to.deep.equal(['u-a']);
      const deps = g.dependentsOf('u-b');
      expect(decideForDependent(c, { finalizers: [], hasDependents: deps.length > 0, dependentDeletingDependents: deps.some((d) => d.uid === 'u-a') })).to.deep.equal({ action: 'delete', policy: 'Foreground', unblockFirst: true });
    });

    it('an object replaced under the same name is a new node; dropping a resource forgets its objects', () => {
      const g = new OwnerGraph();
      const owner = obj('o', 'u-o');
      g.observe(SECRET, owner);
      g.observe(CM, obj('d', 'u-d', { refs: [ref(owner, SECRET)] }));
      expect(g.dropResource('/secrets')).to.deep.equal(['u-d']);
      expect(g.get('u-o')).to.equal(undefined);
      expect(g.observe(CM, obj('x', ''))).to.deep.equal([]);
    });
  });

  it('the absent-owner cache forgets its oldest entries beyond its capacity', () => {
    const s = new BoundedSet(2);
    s.add('a');
    s.add('b');
    s.add('a');
    s.add('c');
    expect([s.has('a'), s.has('b'), s.has('c')]).to.deep.equal([true, false, true]);
  });

  describe('reconcile against a fake API (live verification, conflicts, finalizers)', () => {
    const clone = <T>(o: T): T => JSON.parse(JSON.stringify(o)) as T;
    const path = (name: string): string => `/api/v1/namespaces/default/configmaps/${name}`;

    class FakeInformer {
      readonly handlers = new Set<InformerHandlers<KubeObject>>();
      readonly synced = true;
      lastError?: string;
      subscribe(h: InformerHandlers<KubeObject>): () => void {
        this.handlers.add(h);
        return () => this.handlers.delete(h);
      }
      run(): void {}
      waitForSync(): Promise<void> {
        return Promise.resolve();
      }
      emit(type: 'add' | 'delete', o: KubeObject): void {
        for (const h of this.handlers) h[type]?.(o);
      }
    }

    /** Configmaps and secrets in `default`, discovery, and the requests made. */
    class FakeApi {
      readonly store = new Map<string, KubeObject>();
      readonly calls: string[] = [];
      readonly informers = new Map<string, FakeInformer>();
      conflicts = 0;
      private rv = 100;
      private readonly discovery: Record<string, unknown> = {
        '/api': { versions: ['v1'] },
        '/apis': { groups: [] },
        '/api/v1': {
          resources: ['configmaps:ConfigMap', 'secrets:Secret'].map((x) => ({ name: x.split(':')[0], kind: x.split(':')[1], namespaced: true, verbs: ['delete', 'get', 'list', 'patch', 'watch'] })),
        },
      };
      put(o: KubeObject): KubeObject {
        const stored = clone({ ...o, metadata: { ...o.metadata, resourceVersion: String(++this.rv) } });
        this.store.set(path(String(o.metadata?.name)), stored);
        return clone(stored);
      }
      async get(p: string): Promise<KubeObject> {
        if (this.discovery[p]) return this.discovery[p] as KubeObject;
        this.calls.push(`GET ${p}`);
        const o = this.store.get(p);
        if (!o) throw new ApiStatusError(404, 'NotFound', `${p} not found`);
        return clone(o);
      }
      async patch(p: string, body: { metadata: Record<string, unknown> }): Promise<KubeObject> {
        this.calls.push(`PATCH ${p} ${JSON.stringify(body.metadata)}`);
        const o = this.store.get(p);
        if (!o) throw new ApiStatusError(404, 'NotFound', `${p} not found`);
        if (this.conflicts > 0 || body.metadata.resourceVersion !== o.metadata?.resourceVersion) {
          this.conflicts = Math.max(0, this.conflicts - 1);
          throw new ApiStatusError(409, 'Conflict', 'the object has been modified');
        }
        const meta: Record<string, unknown> = { ...o.metadata };
        for (const [k, v] of Object.entries(body.metadata)) {
          if (k === 'resourceVersion') continue;
          if (v === null) delete meta[k];
          else meta[k] = v;
        }
        if (meta.deletionTimestamp && !((meta.finalizers as unknown[] | undefined)?.length)) {
          this.store.delete(p);
          return clone({ ...o, metadata: meta });
        }
        return this.put({ ...o, metadata: meta });
      }
      async delete(p: string): Promise<KubeObject> {
        this.calls.push(`DELETE ${p}`);
        const bare = p.split('?')[0]!;
        if (!this.store.delete(bare)) throw new ApiStatusError(404, 'NotFound', `${p} not found`);
        return {};
      }
      informer(p: string): FakeInformer {
        if (!this.informers.has(p)) this.informers.set(p, new FakeInformer());
        return this.informers.get(p)!;
      }
    }

    const noop = (): void => undefined;
    const warnings: string[] = [];
    const logger = { info: noop, debug: noop, error: noop, warn: (_: unknown, msg: string) => warnings.push(msg), child: () => logger } as unknown as Logger;
    const metric = { inc: noop, set: noop, observe: noop, labels: () => metric };
    const metrics = { counter: () => metric, gauge: () => metric, histogram: () => metric } as unknown as Metrics;

    let api: FakeApi;
    let gc: GarbageCollector;
    const cms = (): FakeInformer => api.informer('/api/v1/configmaps');
    /** Creates `o` in the fake store and, unless `cached` is false, in the informer cache. */
    const seed = (o: KubeObject, cached = true): KubeObject => {
      const stored = api.put(o);
      if (cached) cms().emit('add', stored);
      return stored;
    };
    const reconcile = (o: KubeObject): Promise<unknown> => gc.reconcile({ namespace: '', name: uidOf(o) });
    const uidOf = (o: KubeObject): string => String(o.metadata?.uid);
    const cmRef = (name: string, uid: string, extra: Partial<OwnerReference> = {}): OwnerReference => ({ apiVersion: 'v1', kind: 'ConfigMap', name, uid, ...extra });

    beforeEach(async () => {
      warnings.length = 0;
      api = new FakeApi();
      gc = new GarbageCollector(api as unknown as ApiClient, logger, metrics, { workers: 1, rediscoverySeconds: 30 });
      await gc.resync();
    });
    afterEach(() => gc.controller.queue.shutDown());

    it('does not act on a stale cache: an owner missing from the cache but alive (same uid) keeps its dependent', async () => {
      const owner = seed(obj('owner', 'u-owner'), false);
      const dep = seed(obj('dep', 'u-dep', { refs: [cmRef('owner', uidOf(owner))] }));
      await reconcile(dep);
      expect(api.calls).to.deep.equal([`GET ${path('dep')}`, `GET ${path('owner')}`]);
      expect(api.store.has(path('dep'))).to.equal(true);
    });

    it('deletes a dependent whose owner answers 404, or is another object with that name; the absence is remembered', async () => {
      const a = seed(obj('a', 'u-a', { refs: [cmRef('ghost', 'u-ghost')] }));
      const b = seed(obj('b', 'u-b', { refs: [cmRef('ghost', 'u-ghost')] }));
      seed(obj('reborn', 'u-new'));
      const c = seed(obj('c', 'u-c', { refs: [cmRef('reborn', 'u-old')] }));
      await reconcile(a);
      await reconcile(b);
      await reconcile(c);
      expect(api.calls.filter((x) => x === `GET ${path('ghost')}`)).to.have.length(1);
      expect(api.calls.filter((x) => x.startsWith('DELETE'))).to.deep.equal([`DELETE ${path('a')}?propagationPolicy=Background`, `DELETE ${path('b')}?propagationPolicy=Background`, `DELETE ${path('c')}?propagationPolicy=Background`]);
    });

    it('leaves a dependent of an unknown kind alone and warns once; retries a conflicting patch after re-reading', async () => {
      const widget = { apiVersion: 'example.com/v1', kind: 'Widget', name: 'w', uid: 'u-w' };
      const dep = seed(obj('dep', 'u-dep', { refs: [widget, cmRef('ghost', 'u-ghost')] }));
      api.conflicts = 1;
      await reconcile(dep);
      expect(api.calls.filter((x) => x.startsWith('GET')).some((x) => x.includes('example.com') || x.includes('idget'))).to.equal(false);
      expect(api.calls.filter((x) => x.startsWith('PATCH'))).to.have.length(2);
      expect(api.store.get(path('dep'))!.metadata!.ownerReferences).to.deep.equal([widget]);
      await reconcile(dep);
      expect(api.calls.some((x) => x.startsWith('DELETE'))).to.equal(false);
      expect(warnings.filter((w) => w.includes('kind discovery does not know'))).to.have.length(1);
    });

    it('keeps a foreground owner while a blocking dependent exists, then removes its finalizer', async () => {
      const ownerMeta = { finalizers: ['foregroundDeletion'], deleting: true };
      const owner = seed(obj('owner', 'u-owner', ownerMeta));
      const dep = seed(obj('dep', 'u-dep', { refs: [cmRef('owner', 'u-owner', { blockOwnerDeletion: true })], finalizers: ['example.com/hold'], deleting: true }));
      await reconcile(owner);
      expect(api.store.has(path('owner'))).to.equal(true);
      api.store.delete(path('dep'));
      cms().emit('delete', dep);
      await reconcile(owner);
      expect(api.calls.at(-1)).to.equal(`PATCH ${path('owner')} {"finalizers":null,"resourceVersion":"${owner.metadata!.resourceVersion}"}`);
      expect(api.store.has(path('owner'))).to.equal(false);
    });

    it('orphans: removes the reference from every dependent, then the orphan finalizer', async () => {
      const owner = seed(obj('owner', 'u-owner', { finalizers: ['orphan'], deleting: true }));
      seed(obj('d1', 'u-d1', { refs: [cmRef('owner', 'u-owner', { controller: true })] }));
      seed(obj('d2', 'u-d2', { refs: [cmRef('owner', 'u-owner'), cmRef('other', 'u-other')] }));
      await reconcile(owner);
      expect(api.store.get(path('d1'))!.metadata!.ownerReferences).to.equal(undefined);
      expect(api.store.get(path('d2'))!.metadata!.ownerReferences).to.deep.equal([cmRef('other', 'u-other')]);
      expect(api.store.has(path('owner'))).to.equal(false);
      expect(api.calls.some((x) => x.startsWith('DELETE'))).to.equal(false);
    });
  });
});
