import { expect } from 'chai';
import { AdmissionDenied, ApiClient, Informer, type Admission, type AdmissionRequest, type ApiObject, type ApiTransport, type KubeObject, type TransportRequest, type TransportResponse, type TransportStream } from '@kubernel/sdk';
import { admissionRequest, describeAdmissionContract, startPlugin } from '@kubernel/sdk/testing';
import {
  defaultPriorityClass,
  ensureSystemPriorityClasses,
  informerSource,
  PRIORITY_CLASSES_PATH,
  priorityAdmission,
  priorityPlugin,
  systemClassProblem,
  systemPriorityClasses,
  type PriorityClassSource,
} from './priority.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

// ---------------------------------------------------------------------------------------------
// An in-memory scheduling.k8s.io API (list, watch, get, create) behind an ApiTransport: no sockets.

const status = (code: number, reason: string, message: string): TransportResponse => ({
  status: code,
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ apiVersion: 'v1', kind: 'Status', status: 'Failure', code, reason, message }),
});
const ok = (code: number, body: unknown): TransportResponse => ({ status: code, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

class FakeSchedulingApi implements ApiTransport {
  readonly classes = new Map<string, KubeObject>();
  /** Requests seen, as `METHOD path` (without the query). */
  readonly calls: string[] = [];
  /** How many creates to answer 500 before accepting them. */
  failCreates = 0;
  private revision = 1;
  private readonly watchers = new Set<(type: string, json: string) => void>();

  put(pc: KubeObject): void {
    const name = String(pc.metadata?.name);
    const stored = { apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', ...structuredClone(pc), metadata: { ...pc.metadata, resourceVersion: String(++this.revision) } };
    const type = this.classes.has(name) ? 'MODIFIED' : 'ADDED';
    this.classes.set(name, stored);
    for (const w of this.watchers) w(type, JSON.stringify(stored));
  }

  client(): ApiClient {
    return new ApiClient({ server: 'http://fake.invalid', transport: this });
  }

  async request(r: TransportRequest): Promise<TransportResponse> {
    const path = r.path.split('?')[0]!;
    this.calls.push(`${r.method} ${path}`);
    if (path === PRIORITY_CLASSES_PATH && r.method === 'GET') {
      return ok(200, { apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClassList', metadata: { resourceVersion: String(this.revision) }, items: [...this.classes.values()] });
    }
    if (path === PRIORITY_CLASSES_PATH && r.method === 'POST') {
      if (this.failCreates > 0) {
        this.failCreates--;
        return status(500, 'InternalError', 'etcd is having a bad day');
      }
      const pc = JSON.parse(r.body ?? '{}') as KubeObject;
      const name = String(pc.metadata?.name);
      if (this.classes.has(name)) return status(409, 'AlreadyExists', `priorityclasses.scheduling.k8s.io "${name}" already exists`);
      this.put(pc);
      return ok(201, this.classes.get(name));
    }
    if (path.startsWith(`${PRIORITY_CLASSES_PATH}/`) && r.method === 'GET') {
      const name = decodeURIComponent(path.slice(PRIORITY_CLASSES_PATH.length + 1));
      const pc = this.classes.get(name);
      return pc ? ok(200, pc) : status(404, 'NotFound', `priorityclasses.scheduling.k8s.io "${name}" not found`);
    }
    return status(404, 'NotFound', 'the server could not find the requested resource');
  }

  async watch(r: TransportRequest, onEvent: (type: string, objectJson: string) => void): Promise<TransportStream> {
    this.watchers.add(onEvent);
    const ended = new Promise<void>((resolve) => {
      const end = (): void => {
        this.watchers.delete(onEvent);
        resolve();
      };
      if (r.signal?.aborted) end();
      else r.signal?.addEventListener('abort', end, { once: true });
    });
    return { status: 200, ended };
  }
}

// ---------------------------------------------------------------------------------------------
// Objects and requests.

const pc = (name: string, value: number, extra: Json = {}): KubeObject => ({
  apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: { name }, value, preemptionPolicy: 'PreemptLowerPriority', ...extra,
});
const pod = (spec: Json = {}, name = 'p'): ApiObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default' }, spec: { containers: [{ name: 'c', image: 'busybox' }], ...spec } });
const createPod = (spec: Json = {}): AdmissionRequest => admissionRequest({ object: pod(spec) });
const updatePod = (spec: Json, oldSpec: Json, over: Partial<AdmissionRequest> = {}): AdmissionRequest =>
  admissionRequest({ operation: 'UPDATE', object: pod(spec), oldObject: pod(oldSpec), ...over });
const classRequest = (object: KubeObject, operation: 'CREATE' | 'UPDATE' = 'CREATE'): AdmissionRequest =>
  admissionRequest({
    operation,
    object: object as ApiObject,
    ...(operation === 'UPDATE' ? { oldObject: structuredClone(object) as ApiObject } : {}),
    kind: { group: 'scheduling.k8s.io', version: 'v1', kind: 'PriorityClass' },
    resource: { group: 'scheduling.k8s.io', version: 'v1', resource: 'priorityclasses' },
    namespace: '',
    name: String(object.metadata?.name),
  });
const specOf = (o: ApiObject | undefined): Json => (o as Json).spec as Json;

/** A source over a fixed list (the "cache"), with a separate set only a live GET finds. */
const source = (cached: KubeObject[], liveOnly: KubeObject[] = []): PriorityClassSource & { gets: string[] } => {
  const gets: string[] = [];
  return {
    gets,
    list: () => cached,
    get: async (name) => {
      gets.push(name);
      return [...cached, ...liveOnly].find((c) => c.metadata?.name === name);
    },
  };
};

/** Runs admit then validate as the API server does; the refusal, or undefined when allowed. */
async function run(step: Admission, r: AdmissionRequest): Promise<AdmissionDenied | undefined> {
  if (step.handles && !step.handles(r)) return undefined;
  try {
    await step.admit?.(r);
    await step.validate?.(r);
    return undefined;
  } catch (err) {
    if (err instanceof AdmissionDenied) return err;
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// The published admission contract, against the in-memory API.

const contractApi = new FakeSchedulingApi();
contractApi.put(pc('high', 1000));
contractApi.put(pc('never', 500, { preemptionPolicy: 'Never' }));
contractApi.put(pc('low', 10, { globalDefault: true }));
const req = (make: () => AdmissionRequest): (() => AdmissionRequest) => make;

describeAdmissionContract(priorityPlugin, {
  api: () => contractApi.client(),
  cases: [
    {
      name: 'a pod naming a class gets its value and preemption policy',
      request: req(() => createPod({ priorityClassName: 'high' })),
      expect: { allowed: true, object: (o) => expect(specOf(o)).to.include({ priorityClassName: 'high', priority: 1000, preemptionPolicy: 'PreemptLowerPriority' }) },
    },
    {
      name: 'a pod without a class gets the global default class',
      request: req(() => createPod()),
      expect: { allowed: true, object: (o) => expect(specOf(o)).to.include({ priorityClassName: 'low', priority: 10 }) },
    },
    {
      name: 'a pod naming a non-preempting class gets Never over the defaulted policy',
      request: req(() => createPod({ priorityClassName: 'never', priority: 0, preemptionPolicy: 'PreemptLowerPriority' })),
      expect: { allowed: true, object: (o) => expect(specOf(o)).to.include({ priority: 500, preemptionPolicy: 'Never' }) },
    },
    {
      name: 'a pod naming system-node-critical',
      request: req(() => createPod({ priorityClassName: 'system-node-critical' })),
      expect: { allowed: true, object: (o) => expect(specOf(o).priority).to.equal(2_000_001_000) },
    },
    {
      name: 'a pod naming an unknown class',
      request: req(() => createPod({ priorityClassName: 'ghost' })),
      expect: { denied: 403, message: 'pods "p" is forbidden: no PriorityClass with name ghost was found' },
    },
    {
      name: 'a pod whose explicit priority differs from its class',
      request: req(() => createPod({ priorityClassName: 'high', priority: 7 })),
      expect: { denied: 403, message: 'the integer value of priority (7) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name' },
    },
    {
      name: 'a pod asking for Never under a preempting class',
      request: req(() => createPod({ priorityClassName: 'high', preemptionPolicy: 'Never' })),
      expect: { denied: 403, message: 'the string value of PreemptionPolicy (Never) must not be provided in pod spec; priority admission controller computed PreemptLowerPriority from the given PriorityClass name' },
    },
    {
      name: 'a pod update that drops the priority keeps the stored one',
      request: req(() => updatePod({ priorityClassName: 'high' }, { priorityClassName: 'high', priority: 1000, preemptionPolicy: 'PreemptLowerPriority' })),
      expect: { allowed: true, object: (o) => expect(specOf(o)).to.include({ priority: 1000, preemptionPolicy: 'PreemptLowerPriority' }) },
    },
    {
      name: 'a pod update that changes the priority',
      request: req(() => updatePod({ priorityClassName: 'high', priority: 5 }, { priorityClassName: 'high', priority: 1000 })),
      expect: { denied: 422, message: 'Pod "p" is invalid: spec: Forbidden: pod updates may not change fields' },
    },
    {
      name: 'a second global default class',
      request: req(() => classRequest(pc('other', 20, { globalDefault: true }))),
      expect: { denied: 403, message: 'priorityclasses.scheduling.k8s.io "other" is forbidden: PriorityClass low is already marked as default. Only one default can exist' },
    },
    {
      name: 'an update of the default class that keeps it default',
      request: req(() => classRequest(pc('low', 10, { globalDefault: true, description: 'x' }), 'UPDATE')),
      expect: { allowed: true },
    },
    {
      name: 'a class named with the reserved system- prefix',
      request: req(() => classRequest(pc('system-mine', 100))),
      expect: { denied: 422, message: "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class" },
    },
    {
      name: 'the built-in system-cluster-critical class',
      request: req(() => classRequest(systemPriorityClasses().find((c) => c.metadata?.name === 'system-cluster-critical')!)),
      expect: { allowed: true },
    },
    {
      name: 'a status update (a subresource) is not looked at',
      request: req(() => updatePod({ priority: 1 }, { priority: 2 }, { subresource: 'status' })),
      expect: { allowed: true, object: (o) => expect(specOf(o).priority).to.equal(1) },
    },
  ],
  hostile: [
    () => createPod({ priorityClassName: 42 }),
    () => createPod({ priorityClassName: '../../etc/passwd', priority: 'high' }),
    () => createPod({ priorityClassName: 'high', priority: { big: true }, preemptionPolicy: ['x'] }),
    () => updatePod({ priorityClassName: null, priority: null }, { priorityClassName: 7, priority: 'x' }),
    () => classRequest({ metadata: null, value: 'x', globalDefault: 'yes' } as unknown as KubeObject),
    () => classRequest({ metadata: { name: 'system-node-critical' }, value: null, globalDefault: true }),
    () => ({ ...classRequest(pc('x', 1)), object: undefined }),
  ],
});

// ---------------------------------------------------------------------------------------------
// Unit tests.

describe('Priority admission', () => {
  describe('built-in classes', () => {
    it('are system-node-critical (2000001000) and system-cluster-critical (2000000000), preempting', () => {
      expect(systemPriorityClasses().map((c) => [c.metadata?.name, c.value, c.preemptionPolicy, c.globalDefault])).to.deep.equal([
        ['system-node-critical', 2_000_001_000, 'PreemptLowerPriority', undefined],
        ['system-cluster-critical', 2_000_000_000, 'PreemptLowerPriority', undefined],
      ]);
    });

    it('are fresh copies each time', () => {
      systemPriorityClasses()[0]!.value = 1;
      expect(systemPriorityClasses()[0]!.value).to.equal(2_000_001_000);
    });

    it('check a system- name for its exact value and globalDefault', () => {
      expect(systemClassProblem('system-node-critical', 2_000_001_000, false)).to.equal(undefined);
      expect(systemClassProblem('system-node-critical', 2_000_000_000, false)).to.equal('value of system-node-critical PriorityClass must be 2000001000');
      expect(systemClassProblem('system-cluster-critical', 2_000_000_000, true)).to.equal('globalDefault of system-cluster-critical PriorityClass must be false');
      expect(systemClassProblem('system-x', 1, false)).to.equal('system-x is not a known system priority class');
    });
  });

  describe('the global default class', () => {
    it('is the lowest-valued of the classes marked globalDefault', () => {
      const classes = [pc('a', 50, { globalDefault: true }), pc('b', 5), pc('c', 20, { globalDefault: true }), pc('d', 30, { globalDefault: 'true' })];
      expect(defaultPriorityClass(classes)?.metadata?.name).to.equal('c');
      expect(defaultPriorityClass([pc('b', 5)])).to.equal(undefined);
    });

    it('names a pod without a class, with its value and policy', async () => {
      const step = priorityAdmission(source([pc('a', 50, { globalDefault: true }), pc('c', 20, { globalDefault: true, preemptionPolicy: 'Never' })]));
      const r = createPod();
      expect(await run(step, r)).to.equal(undefined);
      expect(specOf(r.object)).to.include({ priorityClassName: 'c', priority: 20, preemptionPolicy: 'Never' });
    });

    it('leaves priority 0, PreemptLowerPriority and no class name when no class is default', async () => {
      const step = priorityAdmission(source([pc('a', 50)]));
      const r = createPod();
      expect(await run(step, r)).to.equal(undefined);
      expect(specOf(r.object)).to.include({ priority: 0, preemptionPolicy: 'PreemptLowerPriority' });
      expect(specOf(r.object)).to.not.have.property('priorityClassName');
    });
  });

  describe('pod creation', () => {
    it('resolves the named class from the cache, and from a live GET on a miss', async () => {
      const src = source([pc('high', 1000)], [pc('fresh', 300)]);
      const step = priorityAdmission(src);
      const a = createPod({ priorityClassName: 'high' });
      const b = createPod({ priorityClassName: 'fresh' });
      expect(await run(step, a)).to.equal(undefined);
      expect(await run(step, b)).to.equal(undefined);
      expect(specOf(a.object)).to.include({ priorityClassName: 'high', priority: 1000, preemptionPolicy: 'PreemptLowerPriority' });
      expect(specOf(b.object).priority).to.equal(300);
      expect(src.gets).to.deep.equal(['high', 'fresh']);
    });

    it('looks a class up through the informer, then the API server when the cache has not seen it', async () => {
      const fake = new FakeSchedulingApi();
      fake.put(pc('fresh', 300));
      const client = fake.client();
      try {
        // Never run: its cache is empty, so only the live GET can find the class.
        const informer = new Informer<KubeObject>(client, PRIORITY_CLASSES_PATH);
        const step = priorityAdmission(informerSource(informer, client));
        const r = createPod({ priorityClassName: 'fresh' });
        expect(await run(step, r)).to.equal(undefined);
        expect(specOf(r.object).priority).to.equal(300);
        expect(fake.calls).to.deep.equal([`GET ${PRIORITY_CLASSES_PATH}/fresh`]);
        const denied = await run(step, createPod({ priorityClassName: 'ghost' }));
        expect(denied?.code).to.equal(403);
      } finally {
        client.close();
      }
    });

    it('refuses an unknown class with 403, as Kubernetes words it', async () => {
      const denied = await run(priorityAdmission(source([pc('high', 1000)])), createPod({ priorityClassName: 'ghost' }));
      expect(denied?.code).to.equal(403);
      expect(denied?.message).to.equal('pods "p" is forbidden: no PriorityClass with name ghost was found');
    });

    it('resolves the system classes even when they are not stored', async () => {
      const step = priorityAdmission(source([]));
      const node = createPod({ priorityClassName: 'system-node-critical' });
      const cluster = createPod({ priorityClassName: 'system-cluster-critical' });
      expect(await run(step, node)).to.equal(undefined);
      expect(await run(step, cluster)).to.equal(undefined);
      expect(specOf(node.object)).to.include({ priority: 2_000_001_000, preemptionPolicy: 'PreemptLowerPriority' });
      expect(specOf(cluster.object)).to.include({ priority: 2_000_000_000, preemptionPolicy: 'PreemptLowerPriority' });
      expect((await run(step, createPod({ priorityClassName: 'system-other' })))?.message).to.include('no PriorityClass with name system-other was found');
    });

    it('refuses an explicit priority that differs from the class, accepts an equal one', async () => {
      const step = priorityAdmission(source([pc('high', 1000)]));
      const denied = await run(step, createPod({ priorityClassName: 'high', priority: 999 }));
      expect(denied?.code).to.equal(403);
      expect(denied?.message).to.equal('pods "p" is forbidden: the integer value of priority (999) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name');
      const same = createPod({ priorityClassName: 'high', priority: 1000 });
      expect(await run(step, same)).to.equal(undefined);
      expect(specOf(same.object).priority).to.equal(1000);
    });

    it('refuses an explicit non-zero priority that differs from the default class, or from 0 when there is none', async () => {
      expect((await run(priorityAdmission(source([pc('low', 10, { globalDefault: true })])), createPod({ priority: 3 })))?.message).to.include('the integer value of priority (3) must not be provided in pod spec; priority admission controller computed 10');
      expect((await run(priorityAdmission(source([])), createPod({ priority: 3 })))?.message).to.include('priority admission controller computed 0 from');
    });

    it('overwrites a priority of 0 (what the API server defaults) with the class value', async () => {
      const r = createPod({ priorityClassName: 'high', priority: 0 });
      expect(await run(priorityAdmission(source([pc('high', 1000)])), r)).to.equal(undefined);
      expect(specOf(r.object).priority).to.equal(1000);
    });

    it('takes the preemption policy from the class, refusing an explicit Never that differs', async () => {
      const step = priorityAdmission(source([pc('high', 1000), pc('never', 500, { preemptionPolicy: 'Never' })]));
      const denied = await run(step, createPod({ priorityClassName: 'high', preemptionPolicy: 'Never' }));
      expect(denied?.code).to.equal(403);
      expect(denied?.message).to.equal('pods "p" is forbidden: the string value of PreemptionPolicy (Never) must not be provided in pod spec; priority admission controller computed PreemptLowerPriority from the given PriorityClass name');
      const defaulted = createPod({ priorityClassName: 'never', preemptionPolicy: 'PreemptLowerPriority' });
      expect(await run(step, defaulted)).to.equal(undefined);
      expect(specOf(defaulted.object).preemptionPolicy).to.equal('Never');
      const asked = createPod({ priorityClassName: 'never', preemptionPolicy: 'Never' });
      expect(await run(step, asked)).to.equal(undefined);
    });

    it('leaves the pod\'s policy alone when the class has none', async () => {
      const r = createPod({ priorityClassName: 'bare', preemptionPolicy: 'Never' });
      expect(await run(priorityAdmission(source([{ metadata: { name: 'bare' }, value: 4 }])), r)).to.equal(undefined);
      expect(specOf(r.object)).to.include({ priority: 4, preemptionPolicy: 'Never' });
    });

    it('refuses a class name that is not a string with 422', async () => {
      const denied = await run(priorityAdmission(source([])), createPod({ priorityClassName: 3 }));
      expect(denied?.code).to.equal(422);
      expect(denied?.causes[0]?.field).to.equal('spec.priorityClassName');
    });

    it('ignores subresources and other resources', async () => {
      const step = priorityAdmission(source([]));
      expect(step.handles!(admissionRequest({ object: pod(), subresource: 'binding' }))).to.equal(false);
      expect(step.handles!(admissionRequest({ object: { kind: 'ConfigMap', metadata: { name: 'x', namespace: 'default' } } }))).to.equal(false);
      expect(step.handles!(admissionRequest({ operation: 'DELETE', oldObject: pod() }))).to.equal(false);
      expect(step.handles!(createPod())).to.equal(true);
    });
  });

  describe('pod updates', () => {
    it('carry over a priority and policy the request dropped (or the API server defaulted)', async () => {
      const step = priorityAdmission(source([]));
      const old = { priorityClassName: 'never', priority: 500, preemptionPolicy: 'Never' };
      const dropped = updatePod({ priorityClassName: 'never' }, old);
      expect(await run(step, dropped)).to.equal(undefined);
      expect(specOf(dropped.object)).to.include(old);
      const defaulted = updatePod({ priorityClassName: 'never', priority: 0, preemptionPolicy: 'PreemptLowerPriority' }, old);
      expect(await run(step, defaulted)).to.equal(undefined);
      expect(specOf(defaulted.object)).to.include(old);
    });

    it('may not change the priority, the class name or the policy (422)', async () => {
      const step = priorityAdmission(source([pc('high', 1000), pc('other', 1000)]));
      const old = { priorityClassName: 'high', priority: 1000, preemptionPolicy: 'PreemptLowerPriority' };
      for (const spec of [{ ...old, priority: 1001 }, { ...old, priorityClassName: 'other' }, { ...old, priorityClassName: undefined }, { ...old, preemptionPolicy: 'Never' }]) {
        const denied = await run(step, updatePod(spec, old));
        expect(denied?.code, JSON.stringify(spec)).to.equal(422);
        expect(denied?.message).to.match(/^Pod "p" is invalid: spec: Forbidden: pod updates may not change fields other than/);
        expect(denied?.causes).to.deep.include({ field: 'spec', reason: 'FieldValueForbidden', message: denied!.causes[0]!.message });
      }
      expect(await run(step, updatePod({ ...old, activeDeadlineSeconds: 5 }, old))).to.equal(undefined);
    });

    it('do not resolve the class again', async () => {
      const src = source([]);
      expect(await run(priorityAdmission(src), updatePod({ priorityClassName: 'gone', priority: 7 }, { priorityClassName: 'gone', priority: 7 }))).to.equal(undefined);
      expect(src.gets).to.deep.equal([]);
    });
  });

  describe('PriorityClass validation', () => {
    const classes = [pc('low', 10, { globalDefault: true }), pc('high', 1000)];

    it('allows one global default: a second is refused on create and on update', async () => {
      const step = priorityAdmission(source(classes));
      const created = await run(step, classRequest(pc('other', 5, { globalDefault: true })));
      expect(created?.code).to.equal(403);
      expect(created?.message).to.equal('priorityclasses.scheduling.k8s.io "other" is forbidden: PriorityClass low is already marked as default. Only one default can exist');
      const updated = await run(step, classRequest(pc('high', 1000, { globalDefault: true }), 'UPDATE'));
      expect(updated?.message).to.include('PriorityClass low is already marked as default');
      expect(await run(step, classRequest(pc('low', 10, { globalDefault: true }), 'UPDATE'))).to.equal(undefined);
      // On create even the default's own name is refused (the create would fail as AlreadyExists anyway).
      expect((await run(step, classRequest(pc('low', 10, { globalDefault: true }))))?.code).to.equal(403);
      expect(await run(step, classRequest(pc('plain', 10)))).to.equal(undefined);
      expect(await run(priorityAdmission(source([pc('high', 1000)])), classRequest(pc('first', 1, { globalDefault: true })))).to.equal(undefined);
    });

    it('reserves the system- prefix for the built-in classes, with their exact value (422)', async () => {
      const step = priorityAdmission(source([]));
      const mine = await run(step, classRequest(pc('system-mine', 10)));
      expect(mine?.code).to.equal(422);
      expect(mine?.message).to.equal(
        "PriorityClass.scheduling.k8s.io \"system-mine\" is invalid: metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class",
      );
      expect(mine?.causes).to.deep.equal([{ field: 'metadata.name', reason: 'FieldValueForbidden', message: "Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class" }]);
      expect((await run(step, classRequest(pc('system-node-critical', 5))))?.message).to.include('error: value of system-node-critical PriorityClass must be 2000001000');
      expect((await run(step, classRequest(pc('system-cluster-critical', 2_000_000_000, { globalDefault: true }))))?.message).to.include('globalDefault of system-cluster-critical PriorityClass must be false');
      for (const builtin of systemPriorityClasses()) expect(await run(step, classRequest(builtin))).to.equal(undefined);
      expect(await run(step, classRequest(pc('systemic', 10)))).to.equal(undefined);
    });
  });

  describe('system class bootstrap', () => {
    it('creates the missing classes, leaves existing ones, and retries failures', async function () {
      this.timeout(10_000);
      const fake = new FakeSchedulingApi();
      fake.put(pc('system-cluster-critical', 2_000_000_000, { description: 'kept' }));
      fake.failCreates = 1;
      const client = fake.client();
      const controller = new AbortController();
      const deadline = setTimeout(() => controller.abort(), 5_000); // one retry takes 1 s
      try {
        const src: PriorityClassSource = { list: () => [...fake.classes.values()], get: async (name) => fake.classes.get(name) };
        await ensureSystemPriorityClasses(client, src, controller.signal);
        expect(controller.signal.aborted, 'still retrying after 5 s').to.equal(false);
        expect(fake.calls.filter((c) => c.startsWith('POST'))).to.have.length(2); // one refused, one retried
        expect(fake.classes.get('system-node-critical')).to.include({ value: 2_000_001_000, preemptionPolicy: 'PreemptLowerPriority' });
        expect(fake.classes.get('system-cluster-critical')?.description).to.equal('kept');
      } finally {
        clearTimeout(deadline);
        controller.abort();
        client.close();
      }
    });

    it('treats AlreadyExists (created meanwhile by someone else) as done', async function () {
      this.timeout(3_000);
      const fake = new FakeSchedulingApi();
      fake.put(pc('system-node-critical', 2_000_001_000));
      fake.put(pc('system-cluster-critical', 2_000_000_000));
      const client = fake.client();
      const controller = new AbortController();
      const deadline = setTimeout(() => controller.abort(), 2_000); // a retry loop would still be going then
      try {
        // A source that has seen nothing: every create is answered 409.
        await ensureSystemPriorityClasses(client, source([]), controller.signal);
        expect(controller.signal.aborted, 'still retrying after 2 s').to.equal(false);
        expect(fake.calls).to.deep.equal([`POST ${PRIORITY_CLASSES_PATH}`, `POST ${PRIORITY_CLASSES_PATH}`]);
      } finally {
        clearTimeout(deadline);
        controller.abort();
        client.close();
      }
    });

    it('stops retrying when aborted', async () => {
      const fake = new FakeSchedulingApi();
      fake.failCreates = 1_000;
      const client = fake.client();
      const controller = new AbortController();
      try {
        const done = ensureSystemPriorityClasses(client, source([]), controller.signal);
        setTimeout(() => controller.abort(), 50);
        await done;
        expect(fake.classes.size).to.equal(0);
      } finally {
        client.close();
      }
    });

    it('runs when the plugin starts, which then admits through its informer', async function () {
      this.timeout(10_000);
      const fake = new FakeSchedulingApi();
      fake.put(pc('gold', 700, { globalDefault: true }));
      const running = startPlugin(priorityPlugin, { api: () => fake.client() });
      try {
        const step = (await running.ready) as Admission;
        for (let i = 0; i < 100 && fake.classes.size < 3; i++) await new Promise((r) => setTimeout(r, 20));
        expect([...fake.classes.keys()].sort()).to.deep.equal(['gold', 'system-cluster-critical', 'system-node-critical']);
        const r = createPod();
        expect(await run(step, r)).to.equal(undefined);
        expect(specOf(r.object)).to.include({ priorityClassName: 'gold', priority: 700 });
        // A default class arriving through the watch is seen by the next request.
        fake.put(pc('gold', 700));
        fake.put(pc('silver', 300, { globalDefault: true }));
        const next = createPod();
        for (let i = 0; i < 100; i++) {
          const probe = createPod();
          await run(step, probe);
          if (specOf(probe.object).priorityClassName === 'silver') break;
          await new Promise((res) => setTimeout(res, 20));
        }
        expect(await run(step, next)).to.equal(undefined);
        expect(specOf(next.object)).to.include({ priorityClassName: 'silver', priority: 300 });
      } finally {
        const outcome = await running.stop();
        running.host.dispose();
        expect(outcome.outcome).to.equal('stopped');
      }
    });
  });
});
