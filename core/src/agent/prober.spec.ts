import { expect } from 'chai';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { RuntimeError, type ExecSyncResponse } from '@kubernel/sdk';
import { ProbeManager, type ContainerKill, type ProbeEvent, type ProbeManagerOptions, type ProbeResultChange, type V1ProbedContainer, type V1ProbedPod } from './prober.js';

/** One probe "second" lasts 20 ms in these tests. */
const SCALE = 0.02;
const UID = 'uid-1';
const enc = new TextEncoder();
const reply = (exitCode: number, stdout = ''): ExecSyncResponse => ({ stdout: enc.encode(stdout), stderr: new Uint8Array(), exitCode });
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string, ms = 4000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function pod(containers: V1ProbedContainer[], spec: Partial<V1ProbedPod['spec']> = {}, meta: Partial<NonNullable<V1ProbedPod['metadata']>> = {}): V1ProbedPod {
  return { metadata: { name: 'web-0', namespace: 'default', uid: UID, ...meta }, spec: { containers, restartPolicy: 'Always', ...spec } };
}

interface Call {
  readonly id: string;
  readonly cmd: readonly string[];
  readonly timeout: number;
  readonly at: number;
}

/** A fake ExecSync whose answer per command is programmable. */
class FakeExec {
  readonly calls: Call[] = [];
  answer: (call: Call, n: number) => ExecSyncResponse | Error = () => reply(0);
  readonly fn = async (id: string, cmd: readonly string[], timeout: number): Promise<ExecSyncResponse> => {
    const call = { id, cmd, timeout, at: Date.now() };
    this.calls.push(call);
    const a = this.answer(call, this.count(cmd[0]!));
    if (a instanceof Error) throw a;
    return a;
  };
  count(first: string, id?: string): number {
    return this.calls.filter((c) => c.cmd[0] === first && (id === undefined || c.id === id)).length;
  }
}

const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('agent/prober: ProbeManager', () => {
  let exec: FakeExec;
  let manager: ProbeManager | undefined;
  let results: ProbeResultChange[];
  let events: ProbeEvent[];
  let kills: ContainerKill[];

  const start = (opts: Partial<ProbeManagerOptions> = {}): ProbeManager => {
    manager = new ProbeManager({
      execSync: exec.fn,
      timeScale: SCALE,
      random: () => 0,
      onResult: (r) => results.push(r),
      onEvent: (e) => events.push(e),
      onKill: (k) => kills.push(k),
      ...opts,
    });
    return manager;
  };

  beforeEach(() => {
    exec = new FakeExec();
    results = [];
    events = [];
    kills = [];
  });
  afterEach(() => {
    manager?.stop();
    manager = undefined;
  });

  it('without probes a container is ready and started, and no worker runs', () => {
    const m = start();
    const p = pod([{ name: 'web' }]);
    m.addPod(p);
    m.updateContainer(UID, 'web', { containerId: 'c1', startedAt: Date.now() });
    expect(m.workerCount).to.equal(0);
    expect(m.readiness(UID, 'web')).to.equal(true);
    expect(m.started(UID, 'web')).to.equal(true);
    expect(m.verdicts(p)).to.deep.equal({ readiness: { web: true }, started: { web: true } });
  });

  it('readiness: false until the probe succeeds successThreshold times, false again after failureThreshold failures', async () => {
    let healthy = false;
    let streak = 0;
    exec.answer = () => {
      streak++;
      return healthy ? reply(0) : reply(1, 'not yet');
    };
    const flips: [string | undefined, number][] = [];
    const m = start({ onResult: (r) => flips.push([r.result, streak]) });
    m.addPod(pod([{ name: 'web', readinessProbe: { exec: { command: ['ready'] }, periodSeconds: 1, successThreshold: 2, failureThreshold: 3 } }]));
    expect(m.readiness(UID, 'web')).to.equal(false);
    m.updateContainer(UID, 'web', { containerId: 'c1', startedAt: Date.now() });
    expect(flips).to.deep.equal([['failure', 0]]); // the initial value of a new container
    await until(() => exec.count('ready') >= 2, 'two failed runs');
    expect(m.readiness(UID, 'web')).to.equal(false);
    expect(events[0]).to.deep.include({ kind: 'readiness', reason: 'Unhealthy', type: 'Warning', message: 'Readiness probe failed: not yet', containerId: 'c1' });

    healthy = true;
    streak = 0;
    await until(() => m.readiness(UID, 'web'), 'ready');
    expect(flips[1]).to.deep.equal(['success', 2]);

    healthy = false;
    streak = 0;
    await until(() => !m.readiness(UID, 'web'), 'unready');
    expect(flips[2]).to.deep.equal(['failure', 3]);
  });

  it('liveness: kills after failureThreshold failures with the kubelet texts, holds until a new container, then starts over', async () => {
    exec.answer = (call) => (call.id === 'c1' ? reply(1, 'boom') : reply(0));
    const m = start();
    m.addPod(pod([{ name: 'web', livenessProbe: { exec: { command: ['live'] }, periodSeconds: 1, failureThreshold: 2, terminationGracePeriodSeconds: 7 } }], { terminationGracePeriodSeconds: 45 }));
    m.updateContainer(UID, 'web', { containerId: 'c1', startedAt: Date.now() });
    expect(m.livenessFailed(UID, 'web')).to.equal(undefined);
    await until(() => kills.length > 0, 'a kill');
    const order = {
      uid: UID,
      containerName: 'web',
      containerId: 'c1',
      kind: 'liveness',
      message: 'Container web failed liveness probe, will be restarted',
      probeMessage: 'Liveness probe failed: boom',
      gracePeriodSeconds: 7,
    };
    expect(kills).to.deep.equal([order]);
    expect(exec.count('live', 'c1')).to.equal(2);
    expect(m.livenessFailed(UID, 'web')).to.deep.equal(order);
    expect(events.map((e) => e.message)).to.deep.equal(['Liveness probe failed: boom', 'Liveness probe failed: boom']);

    await sleep(150); // several periods: on hold, the dying container is not probed again
    expect(exec.count('live', 'c1')).to.equal(2);
    expect(kills).to.have.length(1);

    m.updateContainer(UID, 'web', { containerId: 'c2', startedAt: Date.now() });
    expect(m.livenessFailed(UID, 'web')).to.equal(undefined);
    await until(() => exec.count('live', 'c2') >= 3, 'probing the new container');
    expect(kills).to.have.length(1);
    expect(results.filter((r) => r.kind === 'liveness').map((r) => [r.containerId, r.result])).to.deep.equal([
      ['c1', 'success'],
      ['c1', 'failure'],
      ['c2', 'success'],
    ]);
  });

  it('startup gates liveness and readiness, stops once it succeeded, and readiness then runs at once', async () => {
    exec.answer = (call, n) => (call.cmd[0] === 'startup' ? (n >= 3 ? reply(0) : reply(1, 'warming')) : reply(0));
    const m = start();
    m.addPod(
      pod([
        {
          name: 'web',
          startupProbe: { exec: { command: ['startup'] }, periodSeconds: 1, failureThreshold: 10 },
          livenessProbe: { exec: { command: ['live'] }, periodSeconds: 1 },
          readinessProbe: { exec: { command: ['ready'] }, periodSeconds: 100 },
        },
      ]),
    );
    m.updateContainer(UID, 'web', { containerId: 'c1', startedAt: Date.now() });
    expect(m.started(UID, 'web')).to.equal(false);
    await until(() => m.started(UID, 'web'), 'started');
    const startupRuns = exec.count('startup');
    expect(startupRuns).to.equal(3);
    const firstOther = exec.calls.findIndex((c) => c.cmd[0] !== 'startup');
    expect(firstOther === -1 || firstOther >= 3, 'nothing else ran before startup succeeded').to.equal(true);
    // Readiness has a 100-"second" (2 s) period, but runs right after startup succeeded.
    await until(() => m.readiness(UID, 'web'), 'ready', 1000);
    await until(() => exec.count('live') >= 2, 'liveness running');
    await sleep(100);
    expect(exec.count('startup')).to.equal(startupRuns);
    expect(kills).to.deep.equal([]);
  });

  it('a startup failure kills the container with the pod grace period', async () => {
    exec.answer = () => reply(1, 'never');
    const m = start();
    m.addPod(pod([{ name: 'web', startupProbe: { exec: { command: ['startup'] }, periodSeconds: 1, failureThreshold: 2 }, readinessProbe: { exec: { command: ['ready'] } } }], { terminationGracePeriodSeconds: 45 }));
    m.updateContainer(UID, 'web', { containerId: 'c1', startedAt: Date.now() });
    await until(() => kills.length > 0, 'a kill');
    expect(kills[0]).to.deep.include({ kind: 'startup', message: 'Container web failed startup probe, will be restarted', probeMessage: 'Startup probe failed: never', gracePeriodSeconds: 45 });
    expect(m.livenessFailed(UID, 'web')?.kind).to.equal('startup');
    expect(exec.count('ready')).to.equal(0);
    expect(m.started(UID, 'web')).to.equal(false);
  });

  it('waits initialDelaySeconds after the container started', async () => {
    const m = start();
    m.addPod(pod([{ name: 'web', readinessProbe: { exec: { command: ['ready'] }, periodSeconds: 1, initialDelaySeconds: 5 } }]));
    const startedAt = Date.now();
    m.updateContainer(UID, 'web', { containerId: 'c1', startedAt });
    await until(() => m.readiness(UID, 'web'), 'ready');
    expect(exec.calls[0]!.at - startedAt).to.be.at.least(5 * 1000 * SCALE);
  });

  it('spreads the first run of a fresh manager over the period (jitter), even for a known container', async () => {
    const m = start({ random: () => 0.5 });
    m.updateContainer(UID, 'web', { containerId: 'c1', startedAt: Date.now() });
    const added = Date.now();
    m.addPod(pod([{ name: 'web', readinessProbe: { exec: { command: ['ready'] }, periodSeconds: 10 } }]));
    await until(() => exec.calls.length > 0, 'the first run');
    expect(exec.calls[0]!.at - added).to.be.at.least(0.5 * 10 * 1000 * SCALE - 5);
  });

  it('probes over HTTP to the pod IP on a named port, failing with the status code', async () => {
    let status = 200;
    const agents: (string | undefined)[] = [];
    const server = http.createServer((req, res) => {
      agents.push(req.headers['user-agent']);
      res.writeHead(req.url === '/healthz' ? status : 404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const m = start();
      m.addPod(pod([{ name: 'web', ports: [{ name: 'http', containerPort: port }], readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1, failureThreshold: 1 } }]));
      m.updateContainer(UID, 'web', { containerId: 'c1', startedAt: Date.now(), podIP: '127.0.0.1' });
      await until(() => m.readiness(UID, 'web'), 'ready');
      status = 500;
      await until(() => !m.readiness(UID, 'web'), 'unready');
      expect(events.some((e) => e.message === 'Readiness probe failed: HTTP probe failed with statuscode: 500')).to.equal(true);
      expect(agents[0]).to.equal('kube-probe/1.32');
    } finally {
      manager?.stop();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('kills on a TCP liveness failure with the dial error', async () => {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const m = start();
    m.addPod(pod([{ name: 'db', livenessProbe: { tcpSocket: { port }, periodSeconds: 1, failureThreshold: 1 } }]));
    m.updateContainer(UID, 'db', { containerId: 'd1', startedAt: Date.now(), podIP: '127.0.0.1' });
    await until(() => kills.length > 0, 'a kill');
    expect(kills[0]!.probeMessage).to.equal(`Liveness probe failed: dial tcp 127.0.0.1:${port}: connect: connection refused`);
    expect(kills[0]!.gracePeriodSeconds).to.equal(30);
  });

  it('a probe that errors leaves the result alone; an exec timeout is a failure; the timeout is passed on', async () => {
    exec.answer = (call) => (call.cmd[0] === 'gone' ? RuntimeError.notFound('container c1') : new RuntimeError('DeadlineExceeded', 'deadline exceeded'));
    const m = start();
    m.addPod(
      pod([
        { name: 'a', livenessProbe: { exec: { command: ['gone'] }, periodSeconds: 1, failureThreshold: 1 } },
        { name: 'b', readinessProbe: { exec: { command: ['sleep', '5'] }, periodSeconds: 1, timeoutSeconds: 3, failureThreshold: 1 } },
      ]),
    );
    m.updateContainer(UID, 'a', { containerId: 'a1', startedAt: Date.now() });
    m.updateContainer(UID, 'b', { containerId: 'b1', startedAt: Date.now() });
    await until(() => exec.count('gone') >= 3 && exec.count('sleep') >= 1, 'runs');
    expect(kills).to.deep.equal([]);
    expect(m.livenessFailed(UID, 'a')).to.equal(undefined);
    expect(events.find((e) => e.containerName === 'a')?.message).to.equal('Liveness probe errored: container c1 not found');
    expect(events.find((e) => e.containerName === 'b')?.message).to.equal("Readiness probe failed: command 'sleep 5' timed out");
    expect(exec.calls.find((c) => c.cmd[0] === 'sleep')!.timeout).to.be.closeTo(3 * SCALE, 1e-9);
  });

  it('a stopped container fails its probes; under restartPolicy Never its workers end', async () => {
    const m = start();
    m.addPod(pod([{ name: 'job', readinessProbe: { exec: { command: ['ready'] }, periodSeconds: 1 } }], { restartPolicy: 'Never' }));
    m.updateContainer(UID, 'job', { containerId: 'j1', startedAt: Date.now() });
    await until(() => m.readiness(UID, 'job'), 'ready');
    expect(m.workerCount).to.equal(1);
    m.updateContainer(UID, 'job', { containerId: 'j1', startedAt: Date.now(), running: false, exited: true });
    await until(() => m.workerCount === 0, 'the worker to end');
    expect(results.at(-1)).to.deep.include({ kind: 'readiness', result: 'failure', containerId: 'j1' });
  });

  it('a terminating pod stops liveness and startup (with success) but keeps readiness', async () => {
    exec.answer = () => reply(1, 'bad');
    const m = start();
    const c: V1ProbedContainer = { name: 'web', livenessProbe: { exec: { command: ['live'] }, periodSeconds: 1, failureThreshold: 100 }, readinessProbe: { exec: { command: ['ready'] }, periodSeconds: 1 } };
    m.addPod(pod([c]));
    m.updateContainer(UID, 'web', { containerId: 'c1', startedAt: Date.now() });
    await until(() => exec.count('live') >= 1, 'liveness running');
    m.addPod(pod([c], {}, { deletionTimestamp: '2025-01-01T00:00:00Z' }));
    await until(() => m.workerCount === 1, 'liveness to stop');
    const lives = exec.count('live');
    const readies = exec.count('ready');
    await sleep(80);
    expect(exec.count('live')).to.equal(lives);
    expect(exec.count('ready')).to.be.greaterThan(readies);

    m.addPod(pod([{ name: 'side', startupProbe: { exec: { command: ['s'] } }, livenessProbe: { exec: { command: ['l'] } } }], {}, { uid: 'uid-2' }));
    expect(m.workerCount).to.equal(3);
    m.stopLivenessAndStartup('uid-2');
    expect(m.workerCount).to.equal(1);
    expect(m.started('uid-2', 'side')).to.equal(true);
  });

  it('probes sidecars (restartable init containers) but not regular init containers; removePod stops only that pod', () => {
    const m = start();
    const probe = { exec: { command: ['ready'] } };
    m.addPod(pod([{ name: 'web', readinessProbe: probe }], { initContainers: [{ name: 'proxy', restartPolicy: 'Always', readinessProbe: probe }, { name: 'setup', readinessProbe: probe }] }));
    m.addPod(pod([{ name: 'web', readinessProbe: probe }], {}, { uid: 'uid-2' }));
    m.addPod(pod([{ name: 'web', readinessProbe: probe }], {}, { uid: 'uid-2' })); // idempotent
    expect(m.workerCount).to.equal(3);
    expect(m.verdicts(pod([{ name: 'web', readinessProbe: probe }], { initContainers: [{ name: 'proxy', restartPolicy: 'Always', readinessProbe: probe }] }))).to.deep.equal({
      readiness: { web: false, proxy: false },
      started: { web: true, proxy: true },
    });
    m.removePod(UID);
    expect(m.workerCount).to.equal(1);
    expect(m.readiness(UID, 'web')).to.equal(true); // no worker any more: no probe verdict
    expect(() => m.addPod({ spec: { containers: [] } })).to.throw(/uid/);
  });

  it('stop() clears every timer and silences callbacks', async () => {
    await sleep(20);
    const before = timers();
    exec.answer = () => reply(0);
    const m = start({ random: () => 0.9 });
    for (let i = 0; i < 5; i++) {
      m.addPod(pod([{ name: 'web', readinessProbe: { exec: { command: ['ready'] }, periodSeconds: 30 }, livenessProbe: { exec: { command: ['live'] }, periodSeconds: 1 } }], {}, { uid: `u${i}` }));
      m.updateContainer(`u${i}`, 'web', { containerId: `c${i}`, startedAt: Date.now() });
    }
    await sleep(60);
    expect(timers()).to.be.greaterThan(before);
    const seen = results.length;
    m.stop();
    expect(m.workerCount).to.equal(0);
    await sleep(60);
    expect(timers()).to.equal(before);
    expect(results.length).to.equal(seen);
    m.addPod(pod([{ name: 'web', readinessProbe: { exec: { command: ['ready'] } } }]));
    expect(m.workerCount).to.equal(0);
  });
});
