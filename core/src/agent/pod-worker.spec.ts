import { expect } from 'chai';
import {
  RuntimeError,
  type Container,
  type ContainerConfig,
  type ContainerFilter,
  type ContainerStatus,
  type ContainerStatusResponse,
  type ExecSyncResponse,
  type ImageSpec,
  type ImageStatusResponse,
  type PodSandbox,
  type PodSandboxConfig,
  type PodSandboxFilter,
  type PodSandboxStatusResponse,
} from '@kubernel/sdk';
import { PodWorker, defaultPullPolicy, goDuration, type PodWorkerRuntime, type V1WorkerPod } from './pod-worker.js';

/** A manual clock (ms since the epoch). */
class FakeClock {
  constructor(public t: number) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

interface FakeSandbox {
  id: string;
  config: PodSandboxConfig;
  ready: boolean;
}

interface FakeContainer {
  id: string;
  sandboxId: string;
  config: ContainerConfig;
  state: ContainerStatus['state'];
  createdAt: number;
  startedAt: number;
  finishedAt: number;
  exitCode: number;
}

const matches = (labels: Readonly<Record<string, string>>, sel: Readonly<Record<string, string>> | undefined): boolean =>
  Object.entries(sel ?? {}).every(([k, v]) => labels[k] === v);

/** A small deterministic in-memory CRI runtime: the subset the pod worker uses. */
class FakeRuntime implements PodWorkerRuntime {
  readonly sandboxes = new Map<string, FakeSandbox>();
  readonly containers = new Map<string, FakeContainer>();
  /** Images present, by reference → id. */
  readonly images = new Map<string, string>();
  /** Images the registry serves, by reference → id. */
  readonly registry = new Map<string, string>();
  readonly calls: string[] = [];
  private seq = 0;

  constructor(private readonly clock: FakeClock) {}

  private nanos(): number {
    return this.clock.now() * 1e6;
  }

  /** Test helper: the container named `name` (latest instance) exits with `code`. */
  exit(name: string, code: number): void {
    const c = [...this.containers.values()].filter((x) => x.config.metadata.name === name && x.state === 'CONTAINER_RUNNING').pop();
    if (!c) throw new Error(`no running container ${name}`);
    c.state = 'CONTAINER_EXITED';
    c.exitCode = code;
    c.finishedAt = this.nanos();
  }

  running(): string[] {
    return [...this.containers.values()].filter((c) => c.state === 'CONTAINER_RUNNING').map((c) => c.config.metadata.name);
  }

  async runPodSandbox(config: PodSandboxConfig): Promise<string> {
    const id = `sb${++this.seq}`;
    this.calls.push(`runPodSandbox ${config.metadata.name}`);
    this.sandboxes.set(id, { id, config, ready: true });
    return id;
  }
  async stopPodSandbox(id: string): Promise<void> {
    this.calls.push(`stopPodSandbox ${id}`);
    const sb = this.sandboxes.get(id);
    if (!sb) return;
    sb.ready = false;
    for (const c of this.containers.values()) if (c.sandboxId === id && c.state === 'CONTAINER_RUNNING') this.stop(c);
  }
  async removePodSandbox(id: string): Promise<void> {
    this.calls.push(`removePodSandbox ${id}`);
    for (const c of [...this.containers.values()]) if (c.sandboxId === id) this.containers.delete(c.id);
    this.sandboxes.delete(id);
  }
  async podSandboxStatus(id: string): Promise<PodSandboxStatusResponse> {
    const sb = this.sandboxes.get(id);
    if (!sb) throw RuntimeError.notFound(`sandbox ${id}`);
    return {
      status: {
        id,
        metadata: sb.config.metadata,
        state: sb.ready ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY',
        createdAt: 0,
        ...(sb.ready ? { network: { ip: '10.244.0.5' } } : {}),
        labels: sb.config.labels ?? {},
        annotations: sb.config.annotations ?? {},
      },
    };
  }
  async listPodSandbox(filter?: PodSandboxFilter): Promise<PodSandbox[]> {
    return [...this.sandboxes.values()]
      .filter((sb) => matches(sb.config.labels ?? {}, filter?.labelSelector))
      .map((sb) => ({ id: sb.id, metadata: sb.config.metadata, state: sb.ready ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY', createdAt: 0, labels: sb.config.labels ?? {}, annotations: sb.config.annotations ?? {} }));
  }
  async createContainer(sandboxId: string, config: ContainerConfig): Promise<string> {
    const sb = this.sandboxes.get(sandboxId);
    if (!sb) throw RuntimeError.notFound(`sandbox ${sandboxId}`);
    if (![...this.images.values()].includes(config.image.image)) throw RuntimeError.notFound(`image ${config.image.image}`);
    const id = `c${++this.seq}`;
    this.calls.push(`createContainer ${config.metadata.name}`);
    this.containers.set(id, { id, sandboxId, config, state: 'CONTAINER_CREATED', createdAt: this.nanos(), startedAt: 0, finishedAt: 0, exitCode: 0 });
    return id;
  }
  async startContainer(id: string): Promise<void> {
    const c = this.containers.get(id);
    if (!c) throw RuntimeError.notFound(`container ${id}`);
    this.calls.push(`startContainer ${c.config.metadata.name}`);
    c.state = 'CONTAINER_RUNNING';
    c.startedAt = this.nanos();
  }
  private stop(c: FakeContainer): void {
    c.state = 'CONTAINER_EXITED';
    c.exitCode = 137;
    c.finishedAt = this.nanos();
  }
  async stopContainer(id: string, timeout: number): Promise<void> {
    const c = this.containers.get(id);
    if (!c) throw RuntimeError.notFound(`container ${id}`);
    this.calls.push(`stopContainer ${c.config.metadata.name} ${timeout}`);
    if (c.state === 'CONTAINER_RUNNING') this.stop(c);
  }
  async removeContainer(id: string): Promise<void> {
    this.calls.push(`removeContainer ${id}`);
    this.containers.delete(id);
  }
  async listContainers(filter?: ContainerFilter): Promise<Container[]> {
    return [...this.containers.values()]
      .filter((c) => matches(c.config.labels ?? {}, filter?.labelSelector) && (filter?.podSandboxId === undefined || c.sandboxId === filter.podSandboxId))
      .map((c) => ({ id: c.id, podSandboxId: c.sandboxId, metadata: c.config.metadata, image: c.config.image, imageRef: c.config.image.image, state: c.state, createdAt: c.createdAt, labels: c.config.labels ?? {}, annotations: c.config.annotations ?? {} }));
  }
  async containerStatus(id: string): Promise<ContainerStatusResponse> {
    const c = this.containers.get(id);
    if (!c) throw RuntimeError.notFound(`container ${id}`);
    return {
      status: {
        id,
        metadata: c.config.metadata,
        state: c.state,
        createdAt: c.createdAt,
        startedAt: c.startedAt,
        finishedAt: c.finishedAt,
        exitCode: c.exitCode,
        image: c.config.image,
        imageRef: c.config.image.image,
        reason: '',
        message: '',
        labels: c.config.labels ?? {},
        annotations: c.config.annotations ?? {},
        mounts: [],
        logPath: `${this.sandboxes.get(c.sandboxId)?.config.logDirectory ?? ''}/${c.config.logPath ?? ''}`,
      },
    };
  }
  async imageStatus(image: ImageSpec): Promise<ImageStatusResponse> {
    const id = this.images.get(image.image);
    return id ? { image: { id, repoTags: [image.image], repoDigests: [], size: 1 } } : {};
  }
  async execSync(): Promise<ExecSyncResponse> {
    return { stdout: new Uint8Array(), stderr: new Uint8Array(), exitCode: 0 };
  }
  async pullImage(image: ImageSpec): Promise<string> {
    this.calls.push(`pullImage ${image.image}`);
    const id = this.registry.get(image.image);
    if (!id) throw RuntimeError.notFound(`image ${image.image}`);
    this.images.set(image.image, id);
    return id;
  }
}

const T0 = Date.UTC(2024, 4, 1, 10, 0, 0);

function pod(spec: Partial<V1WorkerPod['spec']> & Pick<V1WorkerPod['spec'], 'containers'>): V1WorkerPod {
  return { metadata: { name: 'web', namespace: 'ns', uid: 'u1', labels: { app: 'web' }, annotations: { note: 'x' } }, spec };
}

function setup(): { clock: FakeClock; rt: FakeRuntime; worker: PodWorker } {
  const clock = new FakeClock(T0);
  const rt = new FakeRuntime(clock);
  for (const img of ['busybox:1.36', 'nginx:1.25']) rt.registry.set(img, `sha256:${img.replace(/\W/g, '')}`);
  const worker = new PodWorker({ runtime: rt, clock, hostIPs: ['192.168.1.10'] });
  return { clock, rt, worker };
}

describe('agent pod worker', () => {
  it('format Go durations and default pull policies', () => {
    expect([10_000, 20_000, 80_000, 300_000].map(goDuration)).to.deep.equal(['10s', '20s', '1m20s', '5m0s']);
    expect([defaultPullPolicy('nginx'), defaultPullPolicy('nginx:latest'), defaultPullPolicy('nginx:1.25'), defaultPullPolicy('localhost:5000/nginx')]).to.deep.equal([
      'Always',
      'Always',
      'IfNotPresent',
      'Always',
    ]);
  });

  it('run the sandbox and two containers: phase Running', async () => {
    const { rt, worker } = setup();
    const p = pod({
      containers: [
        { name: 'a', image: 'busybox:1.36', command: ['sh'], args: ['-c', 'sleep 1d'], workingDir: '/w', env: [{ name: 'X', value: '1' }, { name: 'Y', valueFrom: {} }] },
        { name: 'b', image: 'nginx:1.25' },
      ],
    });
    await worker.sync(p);
    expect(rt.running()).to.deep.equal(['a', 'b']);
    const sb = [...rt.sandboxes.values()][0]!;
    expect(sb.config).to.deep.equal({
      metadata: { name: 'web', namespace: 'ns', uid: 'u1', attempt: 0 },
      hostname: 'web',
      logDirectory: '/var/log/pods/ns_web_u1',
      labels: { app: 'web', 'io.kubernetes.pod.name': 'web', 'io.kubernetes.pod.namespace': 'ns', 'io.kubernetes.pod.uid': 'u1' },
      annotations: { note: 'x' },
    });
    const a = [...rt.containers.values()].find((c) => c.config.metadata.name === 'a')!;
    expect(a.config).to.deep.include({
      command: ['sh'],
      args: ['-c', 'sleep 1d'],
      workingDir: '/w',
      envs: [{ key: 'X', value: '1' }],
      logPath: 'a/0.log',
      annotations: { 'io.kubernetes.container.restartCount': '0' },
    });
    expect(a.config.labels).to.deep.equal({ 'io.kubernetes.pod.name': 'web', 'io.kubernetes.pod.namespace': 'ns', 'io.kubernetes.pod.uid': 'u1', 'io.kubernetes.container.name': 'a' });
    const st = await worker.status();
    expect(st.phase).to.equal('Running');
    expect(st.podIP).to.equal('10.244.0.5');
    expect(st.containerStatuses!.map((c) => [c.name, c.ready, Object.keys(c.state)[0]])).to.deep.equal([
      ['a', true, 'running'],
      ['b', true, 'running'],
    ]);
    // A second sync changes nothing.
    const before = rt.calls.length;
    await worker.sync(p);
    expect(rt.calls.slice(before)).to.deep.equal([]);
  });

  it('run init containers in order, each to success before the next', async () => {
    const { rt, worker } = setup();
    const p = pod({
      initContainers: [
        { name: 'i1', image: 'busybox:1.36' },
        { name: 'i2', image: 'busybox:1.36' },
      ],
      containers: [{ name: 'main', image: 'nginx:1.25' }],
    });
    await worker.sync(p);
    expect(rt.running()).to.deep.equal(['i1']);
    expect((await worker.status()).phase).to.equal('Pending');
    await worker.sync(p);
    expect(rt.running()).to.deep.equal(['i1']);
    rt.exit('i1', 0);
    await worker.sync(p);
    expect(rt.running()).to.deep.equal(['i2']);
    rt.exit('i2', 0);
    await worker.sync(p);
    expect(rt.running()).to.deep.equal(['main']);
    expect(rt.calls.filter((c) => c.startsWith('startContainer'))).to.deep.equal(['startContainer i1', 'startContainer i2', 'startContainer main']);
    const st = await worker.status();
    expect(st.phase).to.equal('Running');
    expect(st.initContainerStatuses!.map((c) => c.state.terminated?.reason)).to.deep.equal(['Completed', 'Completed']);
  });

  it('restart a failed init container under OnFailure', async () => {
    const { rt, worker } = setup();
    const p = pod({ restartPolicy: 'OnFailure', initContainers: [{ name: 'i1', image: 'busybox:1.36' }], containers: [{ name: 'main', image: 'nginx:1.25' }] });
    await worker.sync(p);
    rt.exit('i1', 1);
    await worker.sync(p);
    expect(rt.running()).to.deep.equal(['i1']);
    expect((await worker.status()).initContainerStatuses![0]!.restartCount).to.equal(1);
  });

  it('restartPolicy Never: a container exiting 1 leaves the pod Failed', async () => {
    const { rt, worker } = setup();
    const p = pod({ restartPolicy: 'Never', containers: [{ name: 'a', image: 'busybox:1.36' }] });
    await worker.sync(p);
    rt.exit('a', 1);
    await worker.sync(p);
    expect(rt.running()).to.deep.equal([]);
    const st = await worker.status();
    expect(st.phase).to.equal('Failed');
    expect(st.containerStatuses![0]!.state.terminated).to.include({ exitCode: 1, reason: 'Error' });
  });

  it('restartPolicy Never: a failed init container fails the pod and starts nothing else', async () => {
    const { rt, worker } = setup();
    const p = pod({ restartPolicy: 'Never', initContainers: [{ name: 'i1', image: 'busybox:1.36' }], containers: [{ name: 'main', image: 'nginx:1.25' }] });
    await worker.sync(p);
    rt.exit('i1', 2);
    await worker.sync(p);
    expect(rt.running()).to.deep.equal([]);
    expect((await worker.status()).phase).to.equal('Failed');
  });

  it('restartPolicy OnFailure: a container exiting 0 leaves the pod Succeeded', async () => {
    const { rt, worker } = setup();
    const p = pod({ restartPolicy: 'OnFailure', containers: [{ name: 'a', image: 'busybox:1.36' }] });
    await worker.sync(p);
    rt.exit('a', 0);
    await worker.sync(p);
    expect(rt.running()).to.deep.equal([]);
    expect((await worker.status()).phase).to.equal('Succeeded');
  });

  it('restartPolicy Always: repeated crashes back off 10s, then 20s (CrashLoopBackOff)', async () => {
    const { clock, rt, worker } = setup();
    const p = pod({ containers: [{ name: 'a', image: 'busybox:1.36' }] });
    await worker.sync(p);
    clock.advance(1000);
    rt.exit('a', 1);
    await worker.sync(p); // first crash: restarted at once
    expect(rt.running()).to.deep.equal(['a']);
    expect([...rt.containers.values()].pop()!.config.logPath).to.equal('a/1.log');

    clock.advance(1000);
    rt.exit('a', 1);
    const finished = clock.now();
    clock.advance(1000);
    await worker.sync(p);
    expect(rt.running()).to.deep.equal([]);
    let cs = (await worker.status()).containerStatuses![0]!;
    expect(cs.state.waiting).to.deep.equal({ reason: 'CrashLoopBackOff', message: 'back-off 10s restarting failed container=a pod=web_ns(u1)' });
    expect(cs.lastState.terminated).to.include({ exitCode: 1 });
    expect(cs.restartCount).to.equal(1);
    expect(worker.nextSyncAt()).to.equal(finished + 10_000);
    expect((await worker.status()).phase).to.equal('Running');

    clock.t = finished + 10_000;
    await worker.sync(p);
    expect(rt.running()).to.deep.equal(['a']);
    expect((await worker.status()).containerStatuses![0]!.restartCount).to.equal(2);

    rt.exit('a', 1);
    clock.advance(19_000);
    await worker.sync(p);
    expect(rt.running()).to.deep.equal([]);
    cs = (await worker.status()).containerStatuses![0]!;
    expect(cs.state.waiting?.message).to.equal('back-off 20s restarting failed container=a pod=web_ns(u1)');
    clock.advance(1000);
    await worker.sync(p);
    expect(rt.running()).to.deep.equal(['a']);
  });

  it('imagePullPolicy Never with an absent image: ErrImageNeverPull', async () => {
    const { rt, worker } = setup();
    const p = pod({ containers: [{ name: 'a', image: 'busybox:1.36', imagePullPolicy: 'Never' }] });
    await worker.sync(p);
    expect(rt.calls.filter((c) => c.startsWith('pullImage'))).to.deep.equal([]);
    const st = await worker.status();
    expect(st.phase).to.equal('Pending');
    expect(st.containerStatuses![0]!.state.waiting).to.deep.equal({ reason: 'ErrImageNeverPull', message: 'Container image "busybox:1.36" is not present with pull policy of Never' });
  });

  it('pull per policy: IfNotPresent once, Always every time; failures ErrImagePull then ImagePullBackOff', async () => {
    const { clock, rt, worker } = setup();
    const p = pod({
      restartPolicy: 'Always',
      containers: [
        { name: 'a', image: 'busybox:1.36' },
        { name: 'b', image: 'nginx:1.25', imagePullPolicy: 'Always' },
        { name: 'c', image: 'missing:1' },
      ],
    });
    await worker.sync(p);
    expect(rt.running()).to.deep.equal(['a', 'b']);
    let st = await worker.status();
    expect(st.containerStatuses![2]!.state.waiting).to.deep.equal({ reason: 'ErrImagePull', message: 'image missing:1 not found' });
    await worker.sync(p);
    st = await worker.status();
    expect(st.containerStatuses![2]!.state.waiting).to.deep.equal({ reason: 'ImagePullBackOff', message: 'Back-off pulling image "missing:1"' });
    clock.advance(10_000);
    rt.exit('a', 1);
    rt.exit('b', 1);
    await worker.sync(p);
    expect(rt.calls.filter((c) => c.startsWith('pullImage'))).to.deep.equal([
      'pullImage busybox:1.36',
      'pullImage nginx:1.25',
      'pullImage missing:1',
      'pullImage nginx:1.25',
      'pullImage missing:1',
    ]);
  });

  it('terminate stops and removes everything, idempotently, and later syncs do nothing', async () => {
    const { rt, worker } = setup();
    const p = pod({ initContainers: [{ name: 'side', image: 'busybox:1.36', restartPolicy: 'Always' }], containers: [{ name: 'a', image: 'busybox:1.36' }, { name: 'b', image: 'nginx:1.25' }] });
    await worker.sync(p);
    expect(rt.running()).to.deep.equal(['side', 'a', 'b']);
    rt.calls.length = 0;
    await worker.terminate(30);
    expect(rt.calls.filter((c) => c.startsWith('stop'))).to.deep.equal(['stopContainer a 30', 'stopContainer b 30', 'stopContainer side 30', 'stopPodSandbox sb1']);
    expect(rt.containers.size).to.equal(0);
    expect(rt.sandboxes.size).to.equal(0);
    await worker.terminate(30);
    await worker.sync(p);
    expect(rt.containers.size).to.equal(0);
    expect(rt.sandboxes.size).to.equal(0);
    expect(worker.isTerminated).to.equal(true);
    expect(worker.nextSyncAt()).to.equal(undefined);
  });

  it('a new worker (agent restarted) adopts the running sandbox and containers: nothing is restarted', async () => {
    const { clock, rt, worker } = setup();
    const p = pod({ containers: [{ name: 'a', image: 'busybox:1.36' }, { name: 'b', image: 'nginx:1.25' }] });
    await worker.sync(p);
    clock.advance(1_000);
    rt.exit('b', 1);
    await worker.sync(p); // b restarted once: restart count 1
    const before = await worker.status();
    expect(before.containerStatuses!.map((c) => c.restartCount)).to.deep.equal([0, 1]);
    rt.calls.length = 0;
    const fresh = new PodWorker({ runtime: rt, clock, hostIPs: ['192.168.1.10'] });
    await fresh.sync({ ...p, status: before });
    expect(rt.calls.filter((c) => !c.startsWith('pullImage')), 'no sandbox or container created').to.deep.equal([]);
    expect(fresh.wasAdopted).to.equal(true);
    const after = await fresh.status({ ...p, status: before });
    expect(after.containerStatuses!.map((c) => [c.name, c.restartCount, c.containerID, Object.keys(c.state)[0]])).to.deep.equal(
      before.containerStatuses!.map((c) => [c.name, c.restartCount, c.containerID, 'running']),
    );
    expect(after.containerStatuses![1]!.lastState.terminated?.exitCode, 'lastState of b kept').to.equal(1);
    expect(after.startTime).to.equal(before.startTime);
  });

  it('a sandbox that is no longer ready is replaced (attempt 1) and its containers start again in the new one', async () => {
    const { clock, rt, worker } = setup();
    const p = pod({ containers: [{ name: 'a', image: 'busybox:1.36' }] });
    await worker.sync(p);
    rt.sandboxes.get('sb1')!.ready = false;
    for (const c of rt.containers.values()) if (c.state === 'CONTAINER_RUNNING') { c.state = 'CONTAINER_EXITED'; c.exitCode = 137; c.finishedAt = clock.now() * 1e6; }
    clock.advance(1_000);
    rt.calls.length = 0;
    await worker.sync(p);
    expect(rt.calls.filter((c) => c.startsWith('runPodSandbox'))).to.deep.equal(['runPodSandbox web']);
    const fresh = [...rt.sandboxes.values()].find((sb) => sb.ready)!;
    expect(fresh.config.metadata.attempt).to.equal(1);
    expect(rt.running()).to.deep.equal(['a']);
    const running = [...rt.containers.values()].find((c) => c.state === 'CONTAINER_RUNNING')!;
    expect(running.sandboxId).to.equal(fresh.id);
  });
});
