import { expect } from 'chai';
import { CONTAINER_RESTART_COUNT_ANNOTATION, type ContainerStatus as CriContainerStatus } from '@kubernel/sdk';
import {
  containerStatusOf,
  podConditions,
  podPhase,
  podStatus,
  qosClass,
  rfc3339FromNanos,
  statusChanged,
  type ContainerStatusOptions,
  type V1Container,
  type V1ContainerStatus,
  type V1Pod,
  type V1PodCondition,
  type V1PodSpec,
  type V1PodStatus,
} from './pod-status.js';

/** 2024-05-01T10:00:00Z in nanoseconds, plus `s` seconds. */
const ns = (s: number): number => (Date.UTC(2024, 4, 1, 10, 0, 0) + s * 1000) * 1e6;
const at = (s: number): string => rfc3339FromNanos(ns(s));
const NOW = new Date(Date.UTC(2024, 4, 1, 11, 0, 0));
const NOW_TEXT = '2024-05-01T11:00:00Z';
const EARLIER = '2024-05-01T09:00:00Z';

function cri(overrides: Partial<CriContainerStatus> & { restarts?: number } = {}): CriContainerStatus {
  const { restarts = 0, ...rest } = overrides;
  return {
    id: 'c1',
    metadata: { name: 'app', attempt: restarts },
    state: 'CONTAINER_RUNNING',
    createdAt: ns(0),
    startedAt: ns(1),
    finishedAt: 0,
    exitCode: 0,
    image: { image: 'docker.io/library/nginx:1.25' },
    imageRef: 'docker.io/library/nginx@sha256:aaa',
    reason: '',
    message: '',
    labels: {},
    annotations: { [CONTAINER_RESTART_COUNT_ANNOTATION]: String(restarts) },
    mounts: [],
    logPath: '/var/log/pods/x/app/0.log',
    ...rest,
  };
}

const app: V1Container = { name: 'app', image: 'nginx:1.25' };
const waitingStatus = (name: string, reason = 'ContainerCreating', extra: Partial<V1ContainerStatus> = {}): V1ContainerStatus => ({
  name,
  image: 'img',
  imageID: '',
  state: { waiting: { reason } },
  lastState: {},
  ready: false,
  started: false,
  restartCount: 0,
  ...extra,
});
const runningStatus = (name: string, ready = true, extra: Partial<V1ContainerStatus> = {}): V1ContainerStatus => ({
  name,
  image: 'img',
  imageID: 'sha',
  containerID: `containerd://${name}`,
  state: { running: { startedAt: at(1) } },
  lastState: {},
  ready,
  started: true,
  restartCount: 0,
  ...extra,
});
const terminatedStatus = (name: string, exitCode: number, extra: Partial<V1ContainerStatus> = {}): V1ContainerStatus => ({
  name,
  image: 'img',
  imageID: 'sha',
  containerID: `containerd://${name}`,
  state: { terminated: { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error', startedAt: at(1), finishedAt: at(2), containerID: `containerd://${name}` } },
  lastState: {},
  ready: false,
  started: false,
  restartCount: 0,
  ...extra,
});
const crashLooping = (name: string, exitCode: number): V1ContainerStatus =>
  waitingStatus(name, 'CrashLoopBackOff', { lastState: { terminated: { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error' } }, restartCount: 1 });

describe('agent pod status', () => {
  describe('containerStatusOf', () => {
    const ready: ContainerStatusOptions = { ready: true };
    const cases: { name: string; cri?: CriContainerStatus; previous?: V1ContainerStatus; opts?: ContainerStatusOptions; spec?: V1Container; want: V1ContainerStatus }[] = [
      {
        name: 'no container yet: waiting ContainerCreating',
        want: { name: 'app', image: 'nginx:1.25', imageID: '', state: { waiting: { reason: 'ContainerCreating' } }, lastState: {}, ready: false, started: false, restartCount: 0 },
      },
      {
        name: 'no container yet in a pod with init containers: PodInitializing',
        opts: { ready: true, waitingReason: 'PodInitializing' },
        want: { name: 'app', image: 'nginx:1.25', imageID: '', state: { waiting: { reason: 'PodInitializing' } }, lastState: {}, ready: false, started: false, restartCount: 0 },
      },
      {
        name: 'image pull failing: waiting ErrImagePull with the message',
        opts: { ready: true, waitingReason: 'ErrImagePull', waitingMessage: 'failed to pull image "nginx:1.25": not found' },
        want: {
          name: 'app', image: 'nginx:1.25', imageID: '',
          state: { waiting: { reason: 'ErrImagePull', message: 'failed to pull image "nginx:1.25": not found' } },
          lastState: {}, ready: false, started: false, restartCount: 0,
        },
      },
      {
        name: 'running and ready, restart count from the annotation',
        cri: cri({ restarts: 2 }),
        want: {
          name: 'app', image: 'nginx:1.25', imageID: 'docker.io/library/nginx@sha256:aaa', containerID: 'containerd://c1',
          state: { running: { startedAt: '2024-05-01T10:00:01Z' } }, lastState: {}, ready: true, started: true, restartCount: 2,
        },
      },
      {
        name: 'running, readiness probe failing',
        cri: cri(),
        opts: { ready: false },
        want: {
          name: 'app', image: 'nginx:1.25', imageID: 'docker.io/library/nginx@sha256:aaa', containerID: 'containerd://c1',
          state: { running: { startedAt: '2024-05-01T10:00:01Z' } }, lastState: {}, ready: false, started: true, restartCount: 0,
        },
      },
      {
        name: 'running, startup probe not yet passed: neither started nor ready',
        cri: cri(),
        opts: { ready: true, started: false },
        want: {
          name: 'app', image: 'nginx:1.25', imageID: 'docker.io/library/nginx@sha256:aaa', containerID: 'containerd://c1',
          state: { running: { startedAt: '2024-05-01T10:00:01Z' } }, lastState: {}, ready: false, started: false, restartCount: 0,
        },
      },
      {
        name: 'another runtime prefix',
        cri: cri(),
        opts: { ready: true, runtimeName: 'cri-o' },
        want: {
          name: 'app', image: 'nginx:1.25', imageID: 'docker.io/library/nginx@sha256:aaa', containerID: 'cri-o://c1',
          state: { running: { startedAt: '2024-05-01T10:00:01Z' } }, lastState: {}, ready: true, started: true, restartCount: 0,
        },
      },
      {
        name: 'created, not started: waiting with no reason',
        cri: cri({ state: 'CONTAINER_CREATED', startedAt: 0 }),
        want: {
          name: 'app', image: 'nginx:1.25', imageID: 'docker.io/library/nginx@sha256:aaa', containerID: 'containerd://c1',
          state: { waiting: {} }, lastState: {}, ready: false, started: false, restartCount: 0,
        },
      },
      {
        name: 'exited 0: terminated Completed',
        cri: cri({ state: 'CONTAINER_EXITED', finishedAt: ns(5) }),
        want: {
          name: 'app', image: 'nginx:1.25', imageID: 'docker.io/library/nginx@sha256:aaa', containerID: 'containerd://c1',
          state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: '2024-05-01T10:00:01Z', finishedAt: '2024-05-01T10:00:05Z', containerID: 'containerd://c1' } },
          lastState: {}, ready: false, started: false, restartCount: 0,
        },
      },
      {
        name: 'exited 2: terminated Error with the runtime message',
        cri: cri({ state: 'CONTAINER_EXITED', exitCode: 2, finishedAt: ns(5), message: 'boom' }),
        want: {
          name: 'app', image: 'nginx:1.25', imageID: 'docker.io/library/nginx@sha256:aaa', containerID: 'containerd://c1',
          state: { terminated: { exitCode: 2, reason: 'Error', message: 'boom', startedAt: '2024-05-01T10:00:01Z', finishedAt: '2024-05-01T10:00:05Z', containerID: 'containerd://c1' } },
          lastState: {}, ready: false, started: false, restartCount: 0,
        },
      },
      {
        name: 'killed by the OOM killer: terminated OOMKilled',
        cri: cri({ state: 'CONTAINER_EXITED', exitCode: 137, reason: 'OOMKilled', finishedAt: ns(5) }),
        want: {
          name: 'app', image: 'nginx:1.25', imageID: 'docker.io/library/nginx@sha256:aaa', containerID: 'containerd://c1',
          state: { terminated: { exitCode: 137, reason: 'OOMKilled', startedAt: '2024-05-01T10:00:01Z', finishedAt: '2024-05-01T10:00:05Z', containerID: 'containerd://c1' } },
          lastState: {}, ready: false, started: false, restartCount: 0,
        },
      },
      {
        name: 'exited and backing off: waiting CrashLoopBackOff, the termination as lastState',
        cri: cri({ state: 'CONTAINER_EXITED', exitCode: 1, finishedAt: ns(5), restarts: 3 }),
        opts: { ready: true, waitingReason: 'CrashLoopBackOff', waitingMessage: 'back-off 40s restarting failed container=app pod=web_default(uid)' },
        want: {
          name: 'app', image: 'nginx:1.25', imageID: 'docker.io/library/nginx@sha256:aaa', containerID: 'containerd://c1',
          state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s restarting failed container=app pod=web_default(uid)' } },
          lastState: { terminated: { exitCode: 1, reason: 'Error', startedAt: '2024-05-01T10:00:01Z', finishedAt: '2024-05-01T10:00:05Z', containerID: 'containerd://c1' } },
          ready: false, started: false, restartCount: 3,
        },
      },
      {
        name: 'restarted: the previous termination becomes lastState',
        cri: cri({ id: 'c2', restarts: 1 }),
        previous: terminatedStatus('app', 1, { containerID: 'containerd://c1', state: { terminated: { exitCode: 1, reason: 'Error', containerID: 'containerd://c1' } } }),
        want: {
          name: 'app', image: 'nginx:1.25', imageID: 'docker.io/library/nginx@sha256:aaa', containerID: 'containerd://c2',
          state: { running: { startedAt: '2024-05-01T10:00:01Z' } },
          lastState: { terminated: { exitCode: 1, reason: 'Error', containerID: 'containerd://c1' } },
          ready: true, started: true, restartCount: 1,
        },
      },
      {
        name: 'restarted after a crash loop: lastState carried from the waiting status',
        cri: cri({ id: 'c2', restarts: 1 }),
        previous: { ...crashLooping('app', 1), containerID: 'containerd://c1' },
        want: {
          name: 'app', image: 'nginx:1.25', imageID: 'docker.io/library/nginx@sha256:aaa', containerID: 'containerd://c2',
          state: { running: { startedAt: '2024-05-01T10:00:01Z' } },
          lastState: { terminated: { exitCode: 1, reason: 'Error' } },
          ready: true, started: true, restartCount: 1,
        },
      },
      {
        name: 'the runtime still has the previous instance: its termination is lastState',
        cri: cri({ id: 'c2', restarts: 1 }),
        opts: { ready: true, previousInstance: cri({ id: 'c1', state: 'CONTAINER_EXITED', exitCode: 137, reason: 'OOMKilled', finishedAt: ns(3) }) },
        want: {
          name: 'app', image: 'nginx:1.25', imageID: 'docker.io/library/nginx@sha256:aaa', containerID: 'containerd://c2',
          state: { running: { startedAt: '2024-05-01T10:00:01Z' } },
          lastState: { terminated: { exitCode: 137, reason: 'OOMKilled', startedAt: '2024-05-01T10:00:01Z', finishedAt: '2024-05-01T10:00:03Z', containerID: 'containerd://c1' } },
          ready: true, started: true, restartCount: 1,
        },
      },
      {
        name: 'a running container vanished from the runtime: ContainerStatusUnknown lastState, one more restart',
        previous: runningStatus('app', true, { restartCount: 4 }),
        want: {
          name: 'app', image: 'nginx:1.25', imageID: '',
          state: { waiting: { reason: 'ContainerCreating' } },
          lastState: { terminated: { exitCode: 137, reason: 'ContainerStatusUnknown', message: 'The container could not be located when the pod was deleted.  The container used to be Running' } },
          ready: false, started: false, restartCount: 5,
        },
      },
      {
        name: 'a terminated container the runtime removed keeps its terminated status',
        previous: terminatedStatus('app', 0),
        want: { ...terminatedStatus('app', 0) },
      },
      {
        name: 'runtime state unknown after running: terminated 137',
        cri: cri({ state: 'CONTAINER_UNKNOWN' }),
        previous: runningStatus('app', true, { restartCount: 1, containerID: 'containerd://c1' }),
        want: {
          name: 'app', image: 'nginx:1.25', imageID: 'docker.io/library/nginx@sha256:aaa', containerID: 'containerd://c1',
          state: { terminated: { exitCode: 137, reason: 'ContainerStatusUnknown', message: 'The container could not be located when the pod was terminated' } },
          lastState: {}, ready: false, started: false, restartCount: 2,
        },
      },
      {
        name: 'a regular init container that completed is ready',
        cri: cri({ state: 'CONTAINER_EXITED', finishedAt: ns(2) }),
        opts: { ready: false, regularInit: true },
        want: {
          name: 'app', image: 'nginx:1.25', imageID: 'docker.io/library/nginx@sha256:aaa', containerID: 'containerd://c1',
          state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: '2024-05-01T10:00:01Z', finishedAt: '2024-05-01T10:00:02Z', containerID: 'containerd://c1' } },
          lastState: {}, ready: true, started: false, restartCount: 0,
        },
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        expect(containerStatusOf(c.spec ?? app, c.cri, c.previous, c.opts ?? ready)).to.deep.equal(c.want);
      });
    }
  });

  describe('podPhase', () => {
    const spec = (restartPolicy: string, containers = ['a', 'b'], init: { name: string; restartPolicy?: string }[] = []): V1PodSpec => ({
      restartPolicy,
      containers: containers.map((name) => ({ name })),
      initContainers: init,
    });
    const cases: { name: string; spec: V1PodSpec; init?: V1ContainerStatus[]; containers: V1ContainerStatus[]; terminal?: boolean; want: string }[] = [
      { name: 'nothing reported yet', spec: spec('Always'), containers: [], want: 'Pending' },
      { name: 'one still creating', spec: spec('Always'), containers: [runningStatus('a'), waitingStatus('b')], want: 'Pending' },
      { name: 'all running', spec: spec('Always'), containers: [runningStatus('a'), runningStatus('b', false)], want: 'Running' },
      { name: 'one running, one missing', spec: spec('Always'), containers: [runningStatus('a')], want: 'Pending' },
      { name: 'one running, one completed (Never)', spec: spec('Never'), containers: [runningStatus('a'), terminatedStatus('b', 0)], want: 'Running' },
      { name: 'all completed, Always restarts them', spec: spec('Always'), containers: [terminatedStatus('a', 0), terminatedStatus('b', 0)], want: 'Running' },
      { name: 'all completed under OnFailure', spec: spec('OnFailure'), containers: [terminatedStatus('a', 0), terminatedStatus('b', 0)], want: 'Succeeded' },
      { name: 'all completed under Never', spec: spec('Never'), containers: [terminatedStatus('a', 0), terminatedStatus('b', 0)], want: 'Succeeded' },
      { name: 'one failed under Never', spec: spec('Never'), containers: [terminatedStatus('a', 0), terminatedStatus('b', 1)], want: 'Failed' },
      { name: 'one failed under OnFailure: restarting', spec: spec('OnFailure'), containers: [terminatedStatus('a', 0), terminatedStatus('b', 1)], want: 'Running' },
      { name: 'crash looping under Always', spec: spec('Always', ['a']), containers: [crashLooping('a', 1)], want: 'Running' },
      { name: 'crash looping under OnFailure', spec: spec('OnFailure', ['a']), containers: [crashLooping('a', 1)], want: 'Running' },
      { name: 'failed and terminal under Always', spec: spec('Always', ['a']), containers: [terminatedStatus('a', 1)], terminal: true, want: 'Failed' },
      { name: 'completed and terminal under Always', spec: spec('Always', ['a']), containers: [terminatedStatus('a', 0)], terminal: true, want: 'Succeeded' },
      { name: 'empty state counts as unknown', spec: spec('Always', ['a']), containers: [{ ...runningStatus('a'), state: {} }], want: 'Pending' },
      {
        name: 'init container running',
        spec: spec('Always', ['a'], [{ name: 'i' }]),
        init: [runningStatus('i')],
        containers: [waitingStatus('a', 'PodInitializing')],
        want: 'Pending',
      },
      {
        name: 'init container failed under Never',
        spec: spec('Never', ['a'], [{ name: 'i' }]),
        init: [terminatedStatus('i', 1)],
        containers: [waitingStatus('a', 'PodInitializing')],
        want: 'Failed',
      },
      {
        name: 'init container failed under OnFailure: retried, Pending',
        spec: spec('OnFailure', ['a'], [{ name: 'i' }]),
        init: [crashLooping('i', 1)],
        containers: [waitingStatus('a', 'PodInitializing')],
        want: 'Pending',
      },
      {
        name: 'init containers done, app running',
        spec: spec('Always', ['a'], [{ name: 'i' }]),
        init: [terminatedStatus('i', 0)],
        containers: [runningStatus('a')],
        want: 'Running',
      },
      {
        name: 'sidecar started, app running',
        spec: spec('Never', ['a'], [{ name: 's', restartPolicy: 'Always' }]),
        init: [runningStatus('s')],
        containers: [runningStatus('a')],
        want: 'Running',
      },
      {
        name: 'sidecar not started yet',
        spec: spec('Never', ['a'], [{ name: 's', restartPolicy: 'Always' }]),
        init: [runningStatus('s', false, { started: false })],
        containers: [waitingStatus('a', 'PodInitializing')],
        want: 'Pending',
      },
      {
        name: 'app completed, sidecar still running (Never): Running',
        spec: spec('Never', ['a'], [{ name: 's', restartPolicy: 'Always' }]),
        init: [runningStatus('s')],
        containers: [terminatedStatus('a', 0)],
        want: 'Running',
      },
      {
        name: 'app completed, sidecar stopped (Never): Succeeded',
        spec: spec('Never', ['a'], [{ name: 's', restartPolicy: 'Always' }]),
        init: [terminatedStatus('s', 137)],
        containers: [terminatedStatus('a', 0)],
        want: 'Succeeded',
      },
      {
        name: 'sidecar restarting after the pod initialized does not make it Pending',
        spec: spec('Always', ['a'], [{ name: 's', restartPolicy: 'Always' }]),
        init: [runningStatus('s', false, { started: false })],
        containers: [runningStatus('a')],
        want: 'Running',
      },
    ];
    for (const c of cases) {
      it(`${c.name}: ${c.want}`, () => {
        expect(podPhase(c.spec, c.init ?? [], c.containers, { podIsTerminal: c.terminal })).to.equal(c.want);
      });
    }
  });

  describe('podConditions', () => {
    const pod = (spec: Partial<V1PodSpec>, conditions: V1PodCondition[] = []): V1Pod => ({
      spec: { containers: [{ name: 'a' }, { name: 'b' }], ...spec },
      status: { conditions },
    });
    const cond = (type: string, status: string, extra: Partial<V1PodCondition> = {}): V1PodCondition => ({ type, status, lastProbeTime: null, lastTransitionTime: NOW_TEXT, ...extra });

    it('all containers ready', () => {
      expect(podConditions(pod({}), { phase: 'Running', initContainerStatuses: [], containerStatuses: [runningStatus('a'), runningStatus('b')] }, NOW)).to.deep.equal([
        cond('Initialized', 'True'),
        cond('Ready', 'True'),
        cond('ContainersReady', 'True'),
        cond('PodScheduled', 'True'),
      ]);
    });

    it('unready and unknown containers, in the kubelet words', () => {
      const got = podConditions(pod({ containers: [{ name: 'a' }, { name: 'b' }, { name: 'c' }, { name: 'd' }] }), {
        phase: 'Running',
        initContainerStatuses: [],
        containerStatuses: [runningStatus('a', false), waitingStatus('b'), runningStatus('c')],
      }, NOW);
      const message = 'containers with unknown status: [d], containers with unready status: [a b]';
      expect(got).to.deep.equal([
        cond('Initialized', 'True'),
        cond('Ready', 'False', { reason: 'ContainersNotReady', message }),
        cond('ContainersReady', 'False', { reason: 'ContainersNotReady', message }),
        cond('PodScheduled', 'True'),
      ]);
    });

    it('init containers not yet done', () => {
      const got = podConditions(pod({ containers: [{ name: 'a' }], initContainers: [{ name: 'i1' }, { name: 'i2' }] }), {
        phase: 'Pending',
        initContainerStatuses: [terminatedStatus('i1', 0, { ready: true }), runningStatus('i2', false)],
        containerStatuses: [waitingStatus('a', 'PodInitializing')],
      }, NOW);
      expect(got).to.deep.equal([
        cond('Initialized', 'False', { reason: 'ContainersNotInitialized', message: 'containers with incomplete status: [i2]' }),
        cond('Ready', 'False', { reason: 'ContainersNotReady', message: 'containers with unready status: [a]' }),
        cond('ContainersReady', 'False', { reason: 'ContainersNotReady', message: 'containers with unready status: [a]' }),
        cond('PodScheduled', 'True'),
      ]);
    });

    it('succeeded and failed pods', () => {
      const completed = podConditions(pod({ containers: [{ name: 'a' }] }), { phase: 'Succeeded', initContainerStatuses: [], containerStatuses: [terminatedStatus('a', 0)] }, NOW);
      expect(completed).to.deep.equal([
        cond('Initialized', 'True', { reason: 'PodCompleted' }),
        cond('Ready', 'False', { reason: 'PodCompleted' }),
        cond('ContainersReady', 'False', { reason: 'PodCompleted' }),
        cond('PodScheduled', 'True'),
      ]);
      const failed = podConditions(pod({ containers: [{ name: 'a' }] }), { phase: 'Failed', initContainerStatuses: [], containerStatuses: [terminatedStatus('a', 1)] }, NOW);
      expect(failed.map((c) => [c.type, c.status, c.reason])).to.deep.equal([
        ['Initialized', 'True', undefined],
        ['Ready', 'False', 'PodFailed'],
        ['ContainersReady', 'False', 'PodFailed'],
        ['PodScheduled', 'True', undefined],
      ]);
    });

    const gates = [{ conditionType: 'example.com/lb' }, { conditionType: 'example.com/dns' }];
    const gateCases: { name: string; kept: V1PodCondition[]; want: Partial<V1PodCondition> }[] = [
      {
        name: 'readiness gates missing',
        kept: [],
        want: {
          status: 'False',
          reason: 'ReadinessGatesNotReady',
          message: 'corresponding condition of pod readiness gate "example.com/lb" does not exist., corresponding condition of pod readiness gate "example.com/dns" does not exist.',
        },
      },
      {
        name: 'one readiness gate False',
        kept: [cond('example.com/lb', 'True'), cond('example.com/dns', 'False')],
        want: { status: 'False', reason: 'ReadinessGatesNotReady', message: 'the status of pod readiness gate "example.com/dns" is not "True", but False' },
      },
      { name: 'all readiness gates True', kept: [cond('example.com/lb', 'True'), cond('example.com/dns', 'True')], want: { status: 'True' } },
    ];
    for (const g of gateCases) {
      it(`${g.name}: Ready is ${g.want.status}, gate conditions kept`, () => {
        const got = podConditions(pod({ readinessGates: gates }, g.kept), { phase: 'Running', initContainerStatuses: [], containerStatuses: [runningStatus('a'), runningStatus('b')] }, NOW);
        expect(got.slice(0, g.kept.length)).to.deep.equal(g.kept);
        expect(got.find((c) => c.type === 'Ready')).to.deep.equal(cond('Ready', g.want.status!, { ...g.want }));
        expect(got.find((c) => c.type === 'ContainersReady')?.status).to.equal('True');
      });
    }

    it('keep lastTransitionTime while the status holds, and move it when it changes', () => {
      const before = [
        cond('PodScheduled', 'True', { lastTransitionTime: EARLIER }),
        cond('Initialized', 'True', { lastTransitionTime: EARLIER }),
        cond('Ready', 'True', { lastTransitionTime: EARLIER }),
        cond('ContainersReady', 'True', { lastTransitionTime: EARLIER }),
      ];
      const got = podConditions(pod({}, before), { phase: 'Running', initContainerStatuses: [], containerStatuses: [runningStatus('a'), runningStatus('b', false)] }, NOW);
      expect(got.map((c) => [c.type, c.status, c.lastTransitionTime])).to.deep.equal([
        ['Initialized', 'True', EARLIER],
        ['Ready', 'False', NOW_TEXT],
        ['ContainersReady', 'False', NOW_TEXT],
        ['PodScheduled', 'True', EARLIER],
      ]);
    });

    it('report PodReadyToStartContainers when the sandbox state is known', () => {
      const got = podConditions(pod({}), { phase: 'Pending', initContainerStatuses: [], containerStatuses: [], sandboxReady: false }, NOW);
      expect(got[0]).to.deep.equal(cond('PodReadyToStartContainers', 'False'));
    });
  });

  describe('qosClass', () => {
    const withResources = (...resources: (V1Container['resources'] | undefined)[]): V1Pod => ({
      spec: { containers: resources.map((r, i) => ({ name: `c${i}`, ...(r ? { resources: r } : {}) })) },
    });
    const cases: { name: string; pod: V1Pod; want: string }[] = [
      { name: 'requests equal limits (docs qos-demo)', pod: withResources({ limits: { memory: '200Mi', cpu: '700m' }, requests: { memory: '200Mi', cpu: '700m' } }), want: 'Guaranteed' },
      { name: 'limits only: requests default to them', pod: withResources({ limits: { memory: '1Gi', cpu: '1' } }), want: 'Guaranteed' },
      { name: 'equal in other notations', pod: withResources({ limits: { memory: '1Gi', cpu: '0.5' }, requests: { memory: '1073741824', cpu: '500m' } }), want: 'Guaranteed' },
      { name: 'memory request below limit (docs qos-demo-2)', pod: withResources({ limits: { memory: '200Mi' }, requests: { memory: '100Mi' } }), want: 'Burstable' },
      { name: 'cpu limit missing', pod: withResources({ limits: { memory: '200Mi' }, requests: { memory: '200Mi' } }), want: 'Burstable' },
      { name: 'no resources (docs qos-demo-3)', pod: withResources(undefined), want: 'BestEffort' },
      { name: 'one container with a request, one without (docs qos-demo-4)', pod: withResources({ requests: { memory: '200Mi' } }, undefined), want: 'Burstable' },
      { name: 'only non-compute resources', pod: withResources({ limits: { 'nvidia.com/gpu': '1' }, requests: { 'ephemeral-storage': '1Gi' } }), want: 'BestEffort' },
      { name: 'zero requests count as none', pod: withResources({ requests: { cpu: '0', memory: '0' } }), want: 'BestEffort' },
      {
        name: 'guaranteed app, init container without limits',
        pod: { spec: { containers: [{ name: 'a', resources: { limits: { cpu: '1', memory: '1Gi' } } }], initContainers: [{ name: 'i' }] } },
        want: 'Burstable',
      },
      {
        name: 'guaranteed app and init container',
        pod: { spec: { containers: [{ name: 'a', resources: { limits: { cpu: '1', memory: '1Gi' } } }], initContainers: [{ name: 'i', resources: { limits: { cpu: '2', memory: '2Gi' } } }] } },
        want: 'Guaranteed',
      },
    ];
    for (const c of cases) {
      it(`${c.name}: ${c.want}`, () => {
        expect(qosClass(c.pod)).to.equal(c.want);
      });
    }
  });

  describe('podStatus', () => {
    const sandbox = { state: 'SANDBOX_READY' as const, network: { ip: 'fd00::5', additionalIps: ['10.244.1.5'] } };

    it('assemble a running pod', () => {
      const pod: V1Pod = {
        metadata: { name: 'web', namespace: 'default' },
        spec: {
          restartPolicy: 'Always',
          initContainers: [{ name: 'init', image: 'busybox' }],
          containers: [{ name: 'app', image: 'nginx:1.25', readinessProbe: {}, resources: { limits: { cpu: '1', memory: '1Gi' } } }],
        },
        status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: EARLIER }] },
      };
      const got = podStatus(pod, {
        sandbox,
        hostIPs: ['192.168.1.10'],
        startTime: new Date(Date.UTC(2024, 4, 1, 10, 0, 0)),
        containers: {
          init: cri({ id: 'i1', metadata: { name: 'init' }, state: 'CONTAINER_EXITED', finishedAt: ns(2) }),
          app: cri({ id: 'a1', metadata: { name: 'app' }, startedAt: ns(3) }),
        },
        readiness: { app: true },
      }, NOW);
      expect(got).to.deep.equal({
        phase: 'Running',
        conditions: [
          { type: 'PodReadyToStartContainers', status: 'True', lastProbeTime: null, lastTransitionTime: NOW_TEXT },
          { type: 'Initialized', status: 'True', lastProbeTime: null, lastTransitionTime: NOW_TEXT },
          { type: 'Ready', status: 'True', lastProbeTime: null, lastTransitionTime: NOW_TEXT },
          { type: 'ContainersReady', status: 'True', lastProbeTime: null, lastTransitionTime: NOW_TEXT },
          { type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: EARLIER },
        ],
        hostIP: '192.168.1.10',
        hostIPs: [{ ip: '192.168.1.10' }],
        podIP: '10.244.1.5',
        podIPs: [{ ip: '10.244.1.5' }, { ip: 'fd00::5' }],
        startTime: '2024-05-01T10:00:00Z',
        initContainerStatuses: [{
          name: 'init', image: 'busybox', imageID: 'docker.io/library/nginx@sha256:aaa', containerID: 'containerd://i1',
          state: { terminated: { exitCode: 0, reason: 'Completed', startedAt: at(1), finishedAt: at(2), containerID: 'containerd://i1' } },
          lastState: {}, ready: true, started: false, restartCount: 0,
        }],
        containerStatuses: [{
          name: 'app', image: 'nginx:1.25', imageID: 'docker.io/library/nginx@sha256:aaa', containerID: 'containerd://a1',
          state: { running: { startedAt: at(3) } }, lastState: {}, ready: true, started: true, restartCount: 0,
        }],
        qosClass: 'Burstable', // the init container has no limits
      });
    });

    it('a new pod with init containers: everything PodInitializing, Pending', () => {
      const pod: V1Pod = { spec: { initContainers: [{ name: 'init', image: 'busybox' }], containers: [{ name: 'app', image: 'nginx' }] } };
      const got = podStatus(pod, { hostIPs: ['192.168.1.10'] }, NOW);
      expect(got.phase).to.equal('Pending');
      expect(got.startTime).to.equal(NOW_TEXT);
      expect(got.podIP).to.equal(undefined);
      expect(got.qosClass).to.equal('BestEffort');
      expect([...got.initContainerStatuses!, ...got.containerStatuses!].map((s) => s.state)).to.deep.equal([
        { waiting: { reason: 'PodInitializing' } },
        { waiting: { reason: 'PodInitializing' } },
      ]);
    });

    it('a host-network pod takes the node IPs; a readiness probe without a verdict is not ready', () => {
      const pod: V1Pod = { spec: { hostNetwork: true, containers: [{ name: 'app', image: 'nginx', readinessProbe: {} }] } };
      const got = podStatus(pod, { hostIPs: ['192.168.1.10', 'fd00::10'], containers: { app: cri() } }, NOW);
      expect(got.podIPs).to.deep.equal([{ ip: '192.168.1.10' }, { ip: 'fd00::10' }]);
      expect(got.hostIPs).to.deep.equal([{ ip: '192.168.1.10' }, { ip: 'fd00::10' }]);
      expect(got.containerStatuses![0]!.ready).to.equal(false);
      expect(got.conditions!.find((c) => c.type === 'Ready')?.message).to.equal('containers with unready status: [app]');
    });

    it('keep a terminal phase, the start time, the reason, the QoS class and the pod IP once set', () => {
      const pod: V1Pod = {
        spec: { restartPolicy: 'Always', containers: [{ name: 'app', image: 'nginx' }] },
        status: { phase: 'Failed', reason: 'Evicted', message: 'low on memory', startTime: EARLIER, qosClass: 'Burstable', podIP: '10.0.0.9', podIPs: [{ ip: '10.0.0.9' }] },
      };
      const got = podStatus(pod, { containers: { app: cri() } }, NOW);
      expect([got.phase, got.reason, got.message, got.startTime, got.qosClass, got.podIP]).to.deep.equal(['Failed', 'Evicted', 'low on memory', EARLIER, 'Burstable', '10.0.0.9']);
      const running = podStatus({ ...pod, status: { ...pod.status, phase: 'Pending' } }, { containers: { app: cri() } }, NOW);
      expect([running.phase, running.reason, running.message]).to.deep.equal(['Running', undefined, undefined]);
    });

    it('a crash-looping container under Always: Running, not ready', () => {
      const pod: V1Pod = { spec: { containers: [{ name: 'app', image: 'nginx' }] } };
      const got = podStatus(pod, {
        containers: { app: cri({ state: 'CONTAINER_EXITED', exitCode: 1, finishedAt: ns(4), restarts: 2 }) },
        waiting: { app: { reason: 'CrashLoopBackOff', message: 'back-off 20s restarting failed container=app' } },
      }, NOW);
      expect(got.phase).to.equal('Running');
      expect(got.containerStatuses![0]!.state).to.deep.equal({ waiting: { reason: 'CrashLoopBackOff', message: 'back-off 20s restarting failed container=app' } });
      expect(got.containerStatuses![0]!.lastState.terminated?.exitCode).to.equal(1);
      expect(got.containerStatuses![0]!.restartCount).to.equal(2);
    });
  });

  describe('statusChanged', () => {
    const base: V1PodStatus = {
      phase: 'Running',
      conditions: [
        { type: 'Ready', status: 'True', lastProbeTime: null, lastTransitionTime: EARLIER },
        { type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: EARLIER },
      ],
      containerStatuses: [runningStatus('a'), runningStatus('b')],
      podIP: '10.0.0.1',
    };
    const cases: { name: string; other: V1PodStatus; want: boolean }[] = [
      { name: 'identical', other: { ...base }, want: false },
      { name: 'conditions and container statuses reordered', other: { ...base, conditions: [...base.conditions!].reverse(), containerStatuses: [...base.containerStatuses!].reverse() }, want: false },
      { name: 'only condition timestamps differ', other: { ...base, conditions: base.conditions!.map((c) => ({ ...c, lastTransitionTime: NOW_TEXT, lastProbeTime: NOW_TEXT })) }, want: false },
      { name: 'an undefined field versus an absent one', other: { ...base, reason: undefined }, want: false },
      { name: 'a condition owned by someone else differs', other: { ...base, conditions: [...base.conditions!, { type: 'example.com/lb', status: 'False' }] }, want: false },
      { name: 'phase differs', other: { ...base, phase: 'Succeeded' }, want: true },
      { name: 'a condition status differs', other: { ...base, conditions: [{ ...base.conditions![0]!, status: 'False' }, base.conditions![1]!] }, want: true },
      { name: 'a condition message differs', other: { ...base, conditions: [{ ...base.conditions![0]!, message: 'x' }, base.conditions![1]!] }, want: true },
      { name: 'a container became unready', other: { ...base, containerStatuses: [runningStatus('a', false), runningStatus('b')] }, want: true },
      { name: 'the pod IP differs', other: { ...base, podIP: '10.0.0.2' }, want: true },
    ];
    for (const c of cases) {
      it(`${c.name}: ${c.want ? 'changed' : 'unchanged'}`, () => {
        expect(statusChanged(base, c.other)).to.equal(c.want);
        expect(statusChanged(c.other, base)).to.equal(c.want);
      });
    }
  });
});
