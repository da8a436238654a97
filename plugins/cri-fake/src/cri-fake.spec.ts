import { expect } from 'chai';
import { isContainerRuntime, isRuntimeError, restartCountOf, RuntimeError, type ContainerConfig, type PodSandboxConfig } from '@kubernel/sdk';
import { describeContainerRuntimeContract, startPlugin } from '@kubernel/sdk/testing';
import plugins, { criFakePlugin, EXIT_CODE_ANNOTATION, FakeContainerRuntime, mainBehaviour, normalizeImageRef, RUN_SECONDS_ANNOTATION } from './index.js';

describeContainerRuntimeContract(criFakePlugin, {
  config: { pullLatencyMs: 1, startLatencyMs: 1 },
  invalidConfigs: [
    { config: { pullLatencyMs: -1 }, path: '/pullLatencyMs' },
    { config: { images: ['ok', 3] }, path: '/images/1' },
    { config: { podCidr: '10.0.0.0' }, path: '/podCidr' },
  ],
  exitTimeoutMs: 3_000,
});

const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8');

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('cri-fake', () => {
  let rt: FakeContainerRuntime;
  let n = 0;
  const sandbox = (labels: Record<string, string> = {}, extra: Partial<PodSandboxConfig> = {}): PodSandboxConfig => ({
    metadata: { name: `p${++n}`, uid: `u${n}`, namespace: 'ns' },
    labels,
    logDirectory: '/var/log/pods/x',
    ...extra,
  });
  const container = (name: string, command: string[], extra: Partial<ContainerConfig> = {}): ContainerConfig => ({
    metadata: { name },
    image: { image: 'busybox' },
    command,
    ...extra,
  });
  const runOne = async (command: string[], extra: Partial<ContainerConfig> = {}): Promise<string> => {
    const cfg = sandbox();
    const sb = await rt.runPodSandbox(cfg);
    const id = await rt.createContainer(sb, container('c', command, extra), cfg);
    await rt.startContainer(id);
    return id;
  };
  const state = async (id: string) => (await rt.containerStatus(id)).status;

  beforeEach(() => {
    rt = new FakeContainerRuntime({ files: { '/tmp/healthy': 'ok\n' } });
  });
  afterEach(() => rt.close());

  it('is exported as the package default and is a ContainerRuntime', () => {
    expect(plugins.map((p) => p.id)).to.deep.equal(['cri-fake']);
    expect(isContainerRuntime(rt)).to.equal(true);
  });

  it('normalizes image references as containerd does', () => {
    expect(normalizeImageRef('busybox')).to.equal('docker.io/library/busybox:latest');
    expect(normalizeImageRef('nginx:1.25')).to.equal('docker.io/library/nginx:1.25');
    expect(normalizeImageRef('me/app')).to.equal('docker.io/me/app:latest');
    expect(normalizeImageRef('registry.k8s.io/pause:3.9')).to.equal('registry.k8s.io/pause:3.9');
    expect(normalizeImageRef('localhost:5000/x')).to.equal('localhost:5000/x:latest');
    expect(normalizeImageRef(`busybox@sha256:${'a'.repeat(64)}`)).to.equal(`docker.io/library/busybox@sha256:${'a'.repeat(64)}`);
  });

  it('finds a preloaded image by tag, short name, digest and id', async () => {
    const { image } = await rt.imageStatus({ image: 'busybox' });
    expect(image?.repoTags).to.deep.equal(['docker.io/library/busybox:latest']);
    expect((await rt.imageStatus({ image: image!.id })).image?.id).to.equal(image!.id);
    expect((await rt.imageStatus({ image: image!.repoDigests[0]! })).image?.id).to.equal(image!.id);
    expect((await rt.listImages()).length).to.equal(4);
  });

  it('derives container behaviour from the command', () => {
    expect(mainBehaviour(['sh', '-c', 'exit 3'])).to.deep.equal({ afterSeconds: 0, exitCode: 3 });
    expect(mainBehaviour(['false'])).to.deep.equal({ afterSeconds: 0, exitCode: 1 });
    expect(mainBehaviour(['/bin/true'])).to.deep.equal({ afterSeconds: 0, exitCode: 0 });
    expect(mainBehaviour(['sleep', '5'])).to.deep.equal({ afterSeconds: 5, exitCode: 0 });
    expect(mainBehaviour(['sh', '-c', 'sleep 2; exit 4'])).to.deep.equal({ afterSeconds: 2, exitCode: 4 });
    expect(mainBehaviour(['sh', '-c', 'false && sleep 9'])).to.deep.equal({ afterSeconds: 0, exitCode: 1 });
    expect(mainBehaviour(['sleep', 'infinity']).afterSeconds).to.equal(Infinity);
    expect(mainBehaviour(['nginx', '-g', 'daemon off;']).afterSeconds).to.equal(Infinity);
    expect(mainBehaviour([]).afterSeconds).to.equal(Infinity);
  });

  it('exits containers with their command\'s code: false → 1, sh -c "exit 3" → 3', async () => {
    const f = await runOne(['false']);
    expect(await state(f)).to.include({ state: 'CONTAINER_EXITED', exitCode: 1, reason: 'Error' });
    const t = await runOne(['true']);
    expect(await state(t)).to.include({ state: 'CONTAINER_EXITED', exitCode: 0, reason: 'Completed' });
  });

  it('a sleep N container exits 0 after N seconds; stopping it earlier clears its timer', async () => {
    const id = await runOne(['sleep', '0.05']);
    expect((await state(id)).state).to.equal('CONTAINER_RUNNING');
    await new Promise((r) => setTimeout(r, 120));
    expect(await state(id)).to.include({ state: 'CONTAINER_EXITED', exitCode: 0 });
    const long = await runOne(['sleep', '0.05']);
    await rt.stopContainer(long, 0);
    expect(await state(long)).to.include({ state: 'CONTAINER_EXITED', exitCode: 137 });
    await new Promise((r) => setTimeout(r, 100));
    expect((await state(long)).exitCode).to.equal(137, 'the exit timer fired after stop');
  });

  it('annotations override the command: run-seconds and exit-code', async () => {
    const id = await runOne(['nginx'], { annotations: { [RUN_SECONDS_ANNOTATION]: '0', [EXIT_CODE_ANNOTATION]: '42' } });
    expect(await state(id)).to.include({ state: 'CONTAINER_EXITED', exitCode: 42 });
  });

  it('execSync interprets echo, cat of configured files, sh -c and unknown programs', async () => {
    const id = await runOne(['sleep', '3600'], { envs: [{ key: 'A', value: '1' }] });
    expect(text((await rt.execSync(id, ['echo', 'hello', 'world'])).stdout)).to.equal('hello world\n');
    expect(await rt.execSync(id, ['cat', '/tmp/healthy']).then((r) => [r.exitCode, text(r.stdout)])).to.deep.equal([0, 'ok\n']);
    const missing = await rt.execSync(id, ['cat', '/tmp/nope']);
    expect(missing.exitCode).to.equal(1);
    expect(text(missing.stderr)).to.contain('/tmp/nope');
    expect((await rt.execSync(id, ['sh', '-c', 'echo -n x; exit 5'])).exitCode).to.equal(5);
    expect(text((await rt.execSync(id, ['sh', '-c', 'echo -n x; exit 5'])).stdout)).to.equal('x');
    expect(text((await rt.execSync(id, ['env'])).stdout)).to.equal('A=1\n');
    expect((await rt.execSync(id, ['/healthz-probe', '--deep'])).exitCode).to.equal(0);
    const err = await rejection(rt.execSync(id, ['sleep', '5'], 1));
    expect(isRuntimeError(err, 'DeadlineExceeded')).to.equal(true);
  });

  it('the unknown-program exit code and a custom exec hook are configurable', async () => {
    rt.close();
    rt = new FakeContainerRuntime({ execDefaultExitCode: 2, exec: (_id, cmd) => (cmd[0] === 'probe' ? { stdout: 'custom', exitCode: 9 } : undefined) });
    const id = await runOne(['sleep', '3600']);
    expect((await rt.execSync(id, ['whatever'])).exitCode).to.equal(2);
    expect(await rt.execSync(id, ['probe']).then((r) => [r.exitCode, text(r.stdout)])).to.deep.equal([9, 'custom']);
  });

  it('reserves sandbox and container names like containerd (AlreadyExists)', async () => {
    const cfg = sandbox();
    const sb = await rt.runPodSandbox(cfg);
    expect(isRuntimeError(await rejection(rt.runPodSandbox(cfg)), 'AlreadyExists')).to.equal(true);
    await rt.createContainer(sb, container('c', ['sleep', '1']), cfg);
    expect(isRuntimeError(await rejection(rt.createContainer(sb, container('c', ['sleep', '1']), cfg)), 'AlreadyExists')).to.equal(true);
    await rt.createContainer(sb, container('c', ['sleep', '1'], { metadata: { name: 'c', attempt: 1 } }), cfg);
  });

  it('refuses bad input with InvalidArgument and unknown images with NotFound', async () => {
    expect(isRuntimeError(await rejection(rt.runPodSandbox({ metadata: { name: '', uid: 'u', namespace: 'n' } })), 'InvalidArgument')).to.equal(true);
    const cfg = sandbox();
    const sb = await rt.runPodSandbox(cfg);
    expect(isRuntimeError(await rejection(rt.createContainer(sb, container('c', [], { image: { image: 'nope/none:1' } }), cfg)), 'NotFound')).to.equal(true);
  });

  it('allocates sandbox IPs from podCidr and none for host-network sandboxes', async () => {
    rt.close();
    rt = new FakeContainerRuntime({ podCidr: '192.168.7.0/24' });
    const a = await rt.runPodSandbox(sandbox());
    const b = await rt.runPodSandbox(sandbox());
    const host = await rt.runPodSandbox(sandbox({}, { linux: { securityContext: { namespaceOptions: { network: 'NODE' } } } }));
    const ipA = (await rt.podSandboxStatus(a)).status.network?.ip;
    const ipB = (await rt.podSandboxStatus(b)).status.network?.ip;
    expect(ipA).to.match(/^192\.168\.7\.\d+$/);
    expect(ipB).to.match(/^192\.168\.7\.\d+$/);
    expect(ipA).to.not.equal(ipB);
    expect((await rt.podSandboxStatus(host)).status.network).to.equal(undefined);
    await rt.stopPodSandbox(a);
    expect((await rt.podSandboxStatus(a)).status.network).to.equal(undefined);
  });

  it('pulls only what the configured registry serves, after the configured latency', async () => {
    rt.close();
    rt = new FakeContainerRuntime({ images: [], registry: ['quay.io/x/y:1'], pullLatencyMs: 20 });
    const t0 = Date.now();
    const ref = await rt.pullImage({ image: 'quay.io/x/y:1' });
    expect(Date.now() - t0).to.be.at.least(15);
    expect(ref).to.match(/^quay\.io\/x\/y@sha256:[a-f0-9]{64}$/);
    expect(isRuntimeError(await rejection(rt.pullImage({ image: 'quay.io/x/z:1' })), 'NotFound')).to.equal(true);
  });

  it('reports NetworkReady false when configured, and conditions set at run time', async () => {
    rt.close();
    rt = new FakeContainerRuntime({ networkReady: false });
    const net = (await rt.status()).status.conditions.find((c) => c.type === 'NetworkReady');
    expect(net?.status).to.equal(false);
    rt.setCondition('RuntimeReady', false, 'Down');
    expect((await rt.status()).status.conditions.find((c) => c.type === 'RuntimeReady')).to.deep.equal({ type: 'RuntimeReady', status: false, reason: 'Down' });
  });

  it('simulates a crash or an OOM kill of a running container, keeping the restart count', async () => {
    const id = await runOne(['sleep', '3600'], { metadata: { name: 'c', attempt: 3 } });
    rt.exitContainer(id, 137, 'OOMKilled');
    const st = await state(id);
    expect(st).to.include({ state: 'CONTAINER_EXITED', exitCode: 137, reason: 'OOMKilled' });
    expect(restartCountOf(st)).to.equal(3);
  });

  it('fails every call with Unavailable once closed', async () => {
    rt.close();
    const err = await rejection(rt.version());
    expect(err).to.be.instanceOf(RuntimeError);
    expect((err as RuntimeError).code).to.equal('Unavailable');
  });

  it('holds hundreds of pods cheaply', async () => {
    for (let i = 0; i < 500; i++) await runOne(['sleep', '3600']);
    expect(rt.counts()).to.include({ sandboxes: 500, containers: 500 });
    expect((await rt.listContainers({ state: 'CONTAINER_RUNNING' })).length).to.equal(500);
  });

  it('the plugin provides a FakeContainerRuntime built from its config', async () => {
    const running = startPlugin(criFakePlugin, { config: { images: ['busybox'] } });
    try {
      const provided = await running.ready;
      expect(provided).to.be.instanceOf(FakeContainerRuntime);
      expect((await (provided as FakeContainerRuntime).listImages()).map((i) => i.repoTags[0])).to.deep.equal(['docker.io/library/busybox:latest']);
    } finally {
      expect((await running.stop()).outcome).to.equal('stopped');
      running.host.dispose();
    }
  });
});
