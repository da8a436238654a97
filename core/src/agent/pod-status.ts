/**
 * The node agent's pod status, computed purely: what the kubelet reports in `pod.status` from the
 * pod's spec, the previous status and what the container runtime (CRI) observed.
 *
 * The semantics are the kubelet's (`pkg/kubelet/kubelet_pods.go` `generateAPIPodStatus`,
 * `convertToAPIContainerStatuses`, `getPhase`; `pkg/kubelet/status/generate.go`;
 * `pkg/apis/core/v1/helper/qos` `GetPodQOS`; the status manager's transition-time and
 * equality rules), as of Kubernetes 1.30 with its default feature gates (sidecar containers on,
 * container restart rules off). Nothing here does I/O or reads the clock: the caller passes `now`.
 *
 * The object types below are structural subsets of `core/v1` (field names and shapes as the API
 * serves them), so any fuller Pod type (kubernetes-types, a decoded API object) is assignable.
 *
 * @module
 */
import { isIPv4, isIPv6 } from 'node:net';
import { parseQuantity, restartCountOf, type ContainerStatus as CriContainerStatus, type PodSandboxStatus } from '@kubernel/sdk';

// ---------------------------------------------------------------------------------------------
// core/v1 shapes (the subset the kubelet's status code reads and writes)
// ---------------------------------------------------------------------------------------------

/** `core/v1` `ResourceRequirements`: quantities by resource name (`cpu`, `memory`, ...). */
export interface V1ResourceRequirements {
  readonly limits?: Readonly<Record<string, string>>;
  readonly requests?: Readonly<Record<string, string>>;
}

/** `core/v1` `Container`: the fields status generation reads. */
export interface V1Container {
  readonly name: string;
  readonly image?: string;
  readonly resources?: V1ResourceRequirements;
  /** Only on init containers: `Always` makes it a restartable init container (a sidecar). */
  readonly restartPolicy?: string;
  /** Present when the container has a readiness probe (its result then decides readiness). */
  readonly readinessProbe?: unknown;
  /** Present when the container has a startup probe (its result then decides `started`). */
  readonly startupProbe?: unknown;
}

/** A pod's restart policy. */
export type RestartPolicy = 'Always' | 'OnFailure' | 'Never';

/** `core/v1` `PodSpec`: the fields status generation reads. */
export interface V1PodSpec {
  readonly containers: readonly V1Container[];
  readonly initContainers?: readonly V1Container[];
  /** Defaults to `Always`. */
  readonly restartPolicy?: RestartPolicy | string;
  readonly readinessGates?: readonly { readonly conditionType: string }[];
  readonly hostNetwork?: boolean;
  readonly nodeName?: string;
}

/** A condition status. */
export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** `core/v1` `PodCondition`. */
export interface V1PodCondition {
  readonly type: string;
  readonly status: ConditionStatus | string;
  readonly reason?: string;
  readonly message?: string;
  readonly lastProbeTime?: string | null;
  readonly lastTransitionTime?: string;
}

/** `core/v1` `ContainerStateWaiting`. */
export interface V1ContainerStateWaiting {
  readonly reason?: string;
  readonly message?: string;
}

/** `core/v1` `ContainerStateRunning`. */
export interface V1ContainerStateRunning {
  readonly startedAt?: string;
}

/** `core/v1` `ContainerStateTerminated`. */
export interface V1ContainerStateTerminated {
  readonly exitCode: number;
  readonly signal?: number;
  readonly reason?: string;
  readonly message?: string;
  readonly startedAt?: string;
  readonly finishedAt?: string;
  readonly containerID?: string;
}

/** `core/v1` `ContainerState`: at most one member is set (none: the empty state). */
export interface V1ContainerState {
  readonly waiting?: V1ContainerStateWaiting;
  readonly running?: V1ContainerStateRunning;
  readonly terminated?: V1ContainerStateTerminated;
}

/** `core/v1` `ContainerStatus`. */
export interface V1ContainerStatus {
  readonly name: string;
  readonly image: string;
  readonly imageID: string;
  readonly containerID?: string;
  readonly state: V1ContainerState;
  readonly lastState: V1ContainerState;
  readonly ready: boolean;
  readonly started?: boolean;
  readonly restartCount: number;
}

/** The pod phases. */
export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';

/** The QoS classes. */
export type QosClass = 'Guaranteed' | 'Burstable' | 'BestEffort';

/** `core/v1` `PodStatus`: the fields the kubelet owns (plus the conditions it keeps). */
export interface V1PodStatus {
  readonly phase?: PodPhase | string;
  readonly conditions?: readonly V1PodCondition[];
  readonly message?: string;
  readonly reason?: string;
  readonly hostIP?: string;
  readonly hostIPs?: readonly { readonly ip: string }[];
  readonly podIP?: string;
  readonly podIPs?: readonly { readonly ip: string }[];
  readonly startTime?: string;
  readonly initContainerStatuses?: readonly V1ContainerStatus[];
  readonly containerStatuses?: readonly V1ContainerStatus[];
  readonly qosClass?: QosClass | string;
}

/** `core/v1` `Pod`: the fields status generation reads. */
export interface V1Pod {
  readonly metadata?: { readonly name?: string; readonly namespace?: string; readonly uid?: string; readonly deletionTimestamp?: string };
  readonly spec: V1PodSpec;
  readonly status?: V1PodStatus;
}

// ---------------------------------------------------------------------------------------------
// Times
// ---------------------------------------------------------------------------------------------

/** RFC 3339 at second precision, as `metav1.Time` serializes (`2024-05-01T10:00:00Z`). */
export function rfc3339(time: Date | number): string {
  const ms = typeof time === 'number' ? time : time.getTime();
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * RFC 3339 (second precision) of a CRI timestamp in nanoseconds since the epoch. Zero is the epoch
 * itself, as the kubelet reports it (`time.Unix(0, 0)`, e.g. the `startedAt` of a container that
 * exited without ever starting).
 */
export function rfc3339FromNanos(nanos: number): string {
  return rfc3339(Math.floor(nanos / 1e6));
}

// ---------------------------------------------------------------------------------------------
// Container statuses
// ---------------------------------------------------------------------------------------------

/** The waiting reasons the kubelet reports (its own defaults and its start-failure reasons). */
export type WaitingReason =
  | 'ContainerCreating'
  | 'PodInitializing'
  | 'CrashLoopBackOff'
  | 'ErrImagePull'
  | 'ImagePullBackOff'
  | 'ErrImageNeverPull'
  | 'InvalidImageName'
  | 'CreateContainerConfigError'
  | 'CreateContainerError'
  | 'PreStartHookError'
  | 'PostStartHookError'
  | 'RunContainerError';

/** The reason of a termination the agent inferred because the runtime lost the container. */
export const CONTAINER_STATUS_UNKNOWN = 'ContainerStatusUnknown';

/** Options of {@link containerStatusOf}. */
export interface ContainerStatusOptions {
  /**
   * Why the container is waiting, when it is not running: the kubelet's default
   * (`ContainerCreating`, or `PodInitializing` in a pod with init containers) for a container the
   * runtime does not have yet, or the last start failure (`CrashLoopBackOff`, `ErrImagePull`, ...).
   * A start-failure reason on an exited container turns its termination into `lastState` and the
   * container into `waiting`, as the kubelet does for a container it will restart.
   * Without one, a container the runtime does not have is `ContainerCreating`.
   */
  readonly waitingReason?: WaitingReason | (string & {});
  /** The message with {@link waitingReason} (`back-off 10s restarting failed container=...`). */
  readonly waitingMessage?: string;
  /**
   * The readiness verdict (the readiness probe's last result; true without a probe). Reported only
   * while the container runs and has started. Ignored for a regular init container, which is ready
   * when it has exited with 0.
   */
  readonly ready: boolean;
  /** The startup verdict (the startup probe's result; true without a probe, the default). Reported only while running. */
  readonly started?: boolean;
  /** True for a regular (non-restartable) init container: ready means completed with exit code 0. */
  readonly regularInit?: boolean;
  /** The runtime's name for container IDs (`containerd` gives `containerd://<id>`). Default `containerd`. */
  readonly runtimeName?: string;
  /**
   * The CRI status of the container's previous instance, when the runtime still has it: its
   * termination becomes `lastState` (otherwise `lastState` is carried over from `previous`).
   */
  readonly previousInstance?: CriContainerStatus;
  /** The pod is being deleted: a container that disappeared is not counted as a restart. */
  readonly podDeleting?: boolean;
}

function terminatedOf(cri: CriContainerStatus, containerID: string): V1ContainerStateTerminated {
  const reason = cri.reason !== '' ? cri.reason : cri.exitCode === 0 ? 'Completed' : 'Error';
  return {
    exitCode: cri.exitCode,
    reason,
    ...(cri.message ? { message: cri.message } : {}),
    startedAt: rfc3339FromNanos(cri.startedAt),
    finishedAt: rfc3339FromNanos(cri.finishedAt),
    containerID,
  };
}

/**
 * One container's API status (`core/v1` `ContainerStatus`) from its spec, the runtime's view of
 * its current instance (`cri`, undefined when the runtime has none) and the status last reported
 * (`previous`), as the kubelet's `convertToAPIContainerStatuses` builds it:
 *
 * - no instance: `waiting` with the given reason (default `ContainerCreating`), restart count and
 *   `lastState` carried over; a previous `terminated` status is kept as it was; a previously
 *   running container that vanished gets a `lastState` of `terminated` (137,
 *   `ContainerStatusUnknown`) and one more restart;
 * - `CONTAINER_CREATED`: `waiting` (with the given reason, if any);
 * - `CONTAINER_RUNNING`: `running` with its start time;
 * - `CONTAINER_EXITED`: `terminated` with the exit code, the runtime's reason or else `Completed`
 *   (0) / `Error`, start and finish times and the container ID; with a start-failure
 *   `waitingReason` (`CrashLoopBackOff`) it is `waiting` and the termination moves to `lastState`;
 * - `CONTAINER_UNKNOWN`: `terminated` (137, `ContainerStatusUnknown`) when it was running before,
 *   else `waiting`.
 *
 * `restartCount` is the runtime's ({@link restartCountOf}); `image` is the spec's image,
 * `imageID` the runtime's image reference; `ready` and `started` hold only while running.
 */
export function containerStatusOf(
  spec: V1Container,
  cri: CriContainerStatus | undefined,
  previous: V1ContainerStatus | undefined,
  opts: ContainerStatusOptions,
): V1ContainerStatus {
  const runtime = opts.runtimeName ?? 'containerd';
  const image = spec.image ?? cri?.image.image ?? '';
  const waiting = (reason: string | undefined): V1ContainerState => ({
    waiting: { ...(reason ? { reason } : {}), ...(reason && opts.waitingMessage ? { message: opts.waitingMessage } : {}) },
  });

  if (cri === undefined) {
    let status: V1ContainerStatus;
    if (previous?.state.terminated) {
      status = previous;
    } else {
      let lastState = previous?.lastState ?? {};
      let restartCount = previous?.restartCount ?? 0;
      if (previous?.state.running && !lastState.terminated) {
        lastState = {
          terminated: {
            exitCode: 137,
            reason: CONTAINER_STATUS_UNKNOWN,
            message: 'The container could not be located when the pod was deleted.  The container used to be Running',
          },
        };
        if (!opts.podDeleting) restartCount += 1;
      }
      status = {
        name: spec.name,
        image,
        imageID: '',
        state: waiting(opts.waitingReason ?? 'ContainerCreating'),
        lastState,
        ready: false,
        started: false,
        restartCount,
      };
    }
    if (status.state.terminated && opts.waitingReason && !isDefaultWaitingReason(opts.waitingReason)) {
      status = { ...status, state: waiting(opts.waitingReason), lastState: { terminated: status.state.terminated } };
    }
    return { ...status, ready: opts.regularInit ? isCompleted(status.state) : false, started: false };
  }

  const containerID = `${runtime}://${cri.id}`;
  let restartCount = restartCountOf(cri);
  let lastState: V1ContainerState;
  if (opts.previousInstance?.state === 'CONTAINER_EXITED') {
    lastState = { terminated: terminatedOf(opts.previousInstance, `${runtime}://${opts.previousInstance.id}`) };
  } else if (previous && previous.containerID !== undefined && previous.containerID !== containerID) {
    lastState = previous.state.terminated ? { terminated: previous.state.terminated } : previous.lastState;
  } else {
    lastState = previous?.lastState ?? {};
  }

  let state: V1ContainerState;
  switch (cri.state) {
    case 'CONTAINER_RUNNING':
      state = { running: { startedAt: rfc3339FromNanos(cri.startedAt) } };
      break;
    case 'CONTAINER_EXITED':
      state = { terminated: terminatedOf(cri, containerID) };
      if (opts.waitingReason && !isDefaultWaitingReason(opts.waitingReason)) {
        lastState = state;
        state = waiting(opts.waitingReason);
      }
      break;
    case 'CONTAINER_UNKNOWN':
      if (previous?.state.running) {
        state = { terminated: { exitCode: 137, reason: CONTAINER_STATUS_UNKNOWN, message: 'The container could not be located when the pod was terminated' } };
        restartCount = previous.restartCount + 1;
      } else {
        state = waiting(opts.waitingReason);
      }
      break;
    default:
      state = waiting(opts.waitingReason);
  }

  const running = state.running !== undefined;
  const started = running && (opts.started ?? true);
  const ready = opts.regularInit ? isCompleted(state) : running && started && opts.ready;
  return { name: spec.name, image, imageID: cri.imageRef, containerID, state, lastState, ready, started, restartCount };
}

function isDefaultWaitingReason(reason: string): boolean {
  return reason === 'ContainerCreating' || reason === 'PodInitializing';
}

function isCompleted(state: V1ContainerState): boolean {
  return state.terminated !== undefined && state.terminated.exitCode === 0;
}

// ---------------------------------------------------------------------------------------------
// Phase
// ---------------------------------------------------------------------------------------------

/** True for a restartable init container (a sidecar: `restartPolicy: Always` on an init container). */
export function isRestartableInitContainer(container: V1Container): boolean {
  return container.restartPolicy === 'Always';
}

/** Options of {@link podPhase}. */
export interface PodPhaseOptions {
  /** The pod is terminal (its containers will not be restarted whatever the policy). */
  readonly podIsTerminal?: boolean;
  /**
   * A regular container has run before (so restarting sidecars do not put the pod back to Pending).
   * Default: some regular container is running or terminated, or has terminated before.
   */
  readonly podHasInitialized?: boolean;
}

/**
 * The pod's phase from its containers' statuses, as the kubelet's `getPhase`:
 *
 * - `Failed` when a regular init container failed and the policy is `Never`;
 * - `Pending` while a regular init container has not completed (or a sidecar has not started, before
 *   the pod initialized), or any container is waiting without ever having terminated;
 * - `Running` when every container is known and one runs; also when all have stopped but will be
 *   restarted (`Always`, or `OnFailure` with a failure);
 * - `Succeeded` when all have stopped with 0 and the policy is not `Always` (or the pod is terminal);
 * - `Failed` when all have stopped, one failed, and the policy is `Never` (or the pod is terminal);
 * - otherwise `Pending` (a container's status is missing).
 */
export function podPhase(
  spec: V1PodSpec,
  initStatuses: readonly V1ContainerStatus[],
  containerStatuses: readonly V1ContainerStatus[],
  options: PodPhaseOptions = {},
): PodPhase {
  const byName = new Map<string, V1ContainerStatus>();
  for (const s of [...initStatuses, ...containerStatuses]) byName.set(s.name, s);
  const restartPolicy = spec.restartPolicy ?? 'Always';
  const initContainers = spec.initContainers ?? [];

  let pendingRegularInit = 0;
  let pendingRestartableInit = 0;
  let failedInit = 0;
  for (const c of initContainers) {
    if (isRestartableInitContainer(c)) continue;
    const s = byName.get(c.name);
    if (!s || s.state.running) pendingRegularInit++;
    else if (s.state.terminated) {
      if (s.state.terminated.exitCode !== 0) failedInit++;
    } else if (s.state.waiting) {
      if (s.lastState.terminated) {
        if (s.lastState.terminated.exitCode !== 0) failedInit++;
      } else pendingRegularInit++;
    } else pendingRegularInit++;
  }

  let unknown = 0;
  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let succeeded = 0;
  for (const c of initContainers) {
    if (!isRestartableInitContainer(c)) continue;
    const s = byName.get(c.name);
    if (!s) {
      unknown++;
    } else if (s.state.running) {
      if (!s.started) pendingRestartableInit++;
      running++;
    } else if (s.state.terminated) {
      // Stopped sidecars do not count for the phase.
    } else if (s.state.waiting) {
      if (!s.lastState.terminated) {
        pendingRestartableInit++;
        waiting++;
      }
    } else {
      pendingRestartableInit++;
      unknown++;
    }
  }
  for (const c of spec.containers) {
    const s = byName.get(c.name);
    if (!s) unknown++;
    else if (s.state.running) running++;
    else if (s.state.terminated) {
      stopped++;
      if (s.state.terminated.exitCode === 0) succeeded++;
    } else if (s.state.waiting) {
      if (s.lastState.terminated) stopped++;
      else waiting++;
    } else unknown++;
  }

  if (failedInit > 0 && restartPolicy === 'Never') return 'Failed';
  const hasInitialized = options.podHasInitialized ?? hasAnyRegularContainerStarted(spec, containerStatuses);
  if (pendingRegularInit > 0 || (pendingRestartableInit > 0 && !hasInitialized) || waiting > 0) return 'Pending';
  if (running > 0 && unknown === 0) return 'Running';
  if (running === 0 && stopped > 0 && unknown === 0) {
    if (options.podIsTerminal) return stopped === succeeded ? 'Succeeded' : 'Failed';
    if (restartPolicy === 'Always') return 'Running';
    if (stopped === succeeded) return 'Succeeded';
    if (restartPolicy === 'Never') return 'Failed';
    return 'Running';
  }
  return 'Pending';
}

function hasAnyRegularContainerStarted(spec: V1PodSpec, statuses: readonly V1ContainerStatus[]): boolean {
  const names = new Set(spec.containers.map((c) => c.name));
  return statuses.some((s) => names.has(s.name) && (s.state.running !== undefined || s.state.terminated !== undefined || s.lastState.terminated !== undefined));
}

// ---------------------------------------------------------------------------------------------
// Conditions
// ---------------------------------------------------------------------------------------------

/** The pod condition types the kubelet owns (it rewrites them; it keeps every other one). */
export const KUBELET_POD_CONDITIONS: ReadonlySet<string> = new Set(['PodScheduled', 'Ready', 'Initialized', 'ContainersReady', 'PodReadyToStartContainers']);

/** What {@link podConditions} derives the conditions from. */
export interface PodConditionInput {
  readonly phase: PodPhase | string;
  readonly initContainerStatuses: readonly V1ContainerStatus[];
  readonly containerStatuses: readonly V1ContainerStatus[];
  /** Whether the pod sandbox is ready; when given, `PodReadyToStartContainers` is reported too. */
  readonly sandboxReady?: boolean;
}

interface Generated {
  readonly type: string;
  readonly status: ConditionStatus;
  readonly reason?: string;
  readonly message?: string;
}

/** Go's `%s` of a `[]string`: `[a b]`. */
function goList(names: readonly string[]): string {
  return `[${names.join(' ')}]`;
}

function containersReady(spec: V1PodSpec, byName: ReadonlyMap<string, V1ContainerStatus>, phase: string): Generated {
  const unknown: string[] = [];
  const unready: string[] = [];
  const consider = [...(spec.initContainers ?? []).filter(isRestartableInitContainer), ...spec.containers];
  for (const c of consider) {
    const s = byName.get(c.name);
    if (!s) unknown.push(c.name);
    else if (!s.ready) unready.push(c.name);
  }
  if ((phase === 'Succeeded' && unknown.length === 0) || phase === 'Failed') {
    return { type: 'ContainersReady', status: 'False', reason: phase === 'Failed' ? 'PodFailed' : 'PodCompleted' };
  }
  const messages: string[] = [];
  if (unknown.length > 0) messages.push(`containers with unknown status: ${goList(unknown)}`);
  if (unready.length > 0) messages.push(`containers with unready status: ${goList(unready)}`);
  if (messages.length > 0) return { type: 'ContainersReady', status: 'False', reason: 'ContainersNotReady', message: messages.join(', ') };
  return { type: 'ContainersReady', status: 'True' };
}

function podReady(spec: V1PodSpec, kept: readonly V1PodCondition[], cr: Generated): Generated {
  if (cr.status !== 'True') return { ...cr, type: 'Ready' };
  const messages: string[] = [];
  for (const gate of spec.readinessGates ?? []) {
    const c = kept.find((k) => k.type === gate.conditionType);
    if (!c) messages.push(`corresponding condition of pod readiness gate "${gate.conditionType}" does not exist.`);
    else if (c.status !== 'True') messages.push(`the status of pod readiness gate "${gate.conditionType}" is not "True", but ${c.status}`);
  }
  if (messages.length > 0) return { type: 'Ready', status: 'False', reason: 'ReadinessGatesNotReady', message: messages.join(', ') };
  return { type: 'Ready', status: 'True' };
}

function initialized(spec: V1PodSpec, byName: ReadonlyMap<string, V1ContainerStatus>, containerStatuses: readonly V1ContainerStatus[], phase: string): Generated {
  const unknown: string[] = [];
  const incomplete: string[] = [];
  for (const c of spec.initContainers ?? []) {
    const s = byName.get(c.name);
    if (!s) unknown.push(c.name);
    else if (isRestartableInitContainer(c) ? !s.started : !s.ready) incomplete.push(c.name);
  }
  if (phase === 'Succeeded' && unknown.length === 0) return { type: 'Initialized', status: 'True', reason: 'PodCompleted' };
  const names = new Set(spec.containers.map((c) => c.name));
  if (containerStatuses.some((s) => names.has(s.name) && (s.state.running !== undefined || s.state.terminated !== undefined))) {
    return { type: 'Initialized', status: 'True' };
  }
  const messages: string[] = [];
  if (unknown.length > 0) messages.push(`containers with unknown status: ${goList(unknown)}`);
  if (incomplete.length > 0) messages.push(`containers with incomplete status: ${goList(incomplete)}`);
  if (messages.length > 0) return { type: 'Initialized', status: 'False', reason: 'ContainersNotInitialized', message: messages.join(', ') };
  return { type: 'Initialized', status: 'True' };
}

/**
 * The pod's conditions as the kubelet reports them: every condition it does not own kept as it
 * was (readiness-gate conditions, `DisruptionTarget`, ...), then `PodReadyToStartContainers` (when
 * `sandboxReady` is given), `Initialized`, `Ready`, `ContainersReady` and `PodScheduled` (True).
 *
 * - `Initialized` is True once every regular init container completed and every sidecar started
 *   (or a regular container has run), else False `ContainersNotInitialized`
 *   (`containers with incomplete status: [a b]`); `PodCompleted` when the pod succeeded.
 * - `ContainersReady` is True when every container and sidecar is ready, else False
 *   `ContainersNotReady` (`containers with unready status: [a b]`); False `PodCompleted` /
 *   `PodFailed` in a terminal phase.
 * - `Ready` is `ContainersReady`, and then False `ReadinessGatesNotReady` unless every readiness
 *   gate's condition is present and True.
 *
 * A condition's `lastTransitionTime` is kept from the pod's current one when its status did not
 * change, and is `now` otherwise; `lastProbeTime` is null, as the kubelet sends it.
 */
export function podConditions(pod: V1Pod, statuses: PodConditionInput, now: Date): V1PodCondition[] {
  const old = pod.status?.conditions ?? [];
  const kept = old.filter((c) => !KUBELET_POD_CONDITIONS.has(c.type));
  const byName = new Map<string, V1ContainerStatus>();
  for (const s of [...statuses.initContainerStatuses, ...statuses.containerStatuses]) byName.set(s.name, s);

  const generated: Generated[] = [];
  if (statuses.sandboxReady !== undefined) generated.push({ type: 'PodReadyToStartContainers', status: statuses.sandboxReady ? 'True' : 'False' });
  generated.push(initialized(pod.spec, byName, statuses.containerStatuses, statuses.phase));
  const cr = containersReady(pod.spec, byName, statuses.phase);
  generated.push(podReady(pod.spec, kept, cr), cr, { type: 'PodScheduled', status: 'True' });

  const stamp = rfc3339(now);
  return [
    ...kept,
    ...generated.map((g): V1PodCondition => {
      const prev = old.find((c) => c.type === g.type);
      const lastTransitionTime = prev && prev.status === g.status && prev.lastTransitionTime ? prev.lastTransitionTime : stamp;
      return { type: g.type, status: g.status, ...(g.reason ? { reason: g.reason } : {}), ...(g.message ? { message: g.message } : {}), lastProbeTime: null, lastTransitionTime };
    }),
  ];
}

// ---------------------------------------------------------------------------------------------
// QoS
// ---------------------------------------------------------------------------------------------

const QOS_RESOURCES = ['cpu', 'memory'] as const;

/** A quantity's exact value (nano-units); an unparsable one counts as zero. */
function nanos(text: string | undefined): bigint {
  if (text === undefined) return 0n;
  try {
    return parseQuantity(text).nanos;
  } catch {
    return 0n;
  }
}

/**
 * The pod's QoS class, as `GetPodQOS` (over regular and init containers, CPU and memory only):
 * `BestEffort` when no container has a non-zero request or limit; `Guaranteed` when every container
 * has CPU and memory limits and the summed requests equal the summed limits for both; otherwise
 * `Burstable`. A limit without a request counts as a request of the same value (API defaulting).
 */
export function qosClass(pod: V1Pod): QosClass {
  const requests = new Map<string, bigint>();
  const limits = new Map<string, bigint>();
  let guaranteed = true;
  for (const c of [...pod.spec.containers, ...(pod.spec.initContainers ?? [])]) {
    const lim = c.resources?.limits ?? {};
    const req = { ...lim, ...(c.resources?.requests ?? {}) };
    for (const name of QOS_RESOURCES) {
      const r = nanos(req[name]);
      if (r > 0n) requests.set(name, (requests.get(name) ?? 0n) + r);
    }
    const found = new Set<string>();
    for (const name of QOS_RESOURCES) {
      const l = nanos(lim[name]);
      if (l > 0n) {
        found.add(name);
        limits.set(name, (limits.get(name) ?? 0n) + l);
      }
    }
    if (found.size !== QOS_RESOURCES.length) guaranteed = false;
  }
  if (requests.size === 0 && limits.size === 0) return 'BestEffort';
  if (guaranteed) {
    for (const [name, r] of requests) {
      if (limits.get(name) !== r) {
        guaranteed = false;
        break;
      }
    }
  }
  return guaranteed && requests.size === limits.size ? 'Guaranteed' : 'Burstable';
}

// ---------------------------------------------------------------------------------------------
// The whole status
// ---------------------------------------------------------------------------------------------

/** What the agent observed for one pod: the input of {@link podStatus}. */
export interface PodStatusInput {
  /** The pod's sandbox, as the runtime reports it: its IPs and readiness. */
  readonly sandbox?: Pick<PodSandboxStatus, 'state' | 'network'>;
  /** The node's IPs (primary first). */
  readonly hostIPs?: readonly string[];
  /** When the agent first saw the pod (used only when the pod has no `startTime` yet; default `now`). */
  readonly startTime?: Date | string;
  /** The runtime's status of each container's current instance, by container name. */
  readonly containers?: Readonly<Record<string, CriContainerStatus | undefined>>;
  /** The runtime's status of each container's previous instance, when it still has one. */
  readonly previousContainers?: Readonly<Record<string, CriContainerStatus | undefined>>;
  /** Readiness verdicts by container name (default: true without a readiness probe, false with one). */
  readonly readiness?: Readonly<Record<string, boolean | undefined>>;
  /** Startup verdicts by container name (default: true without a startup probe, false with one). */
  readonly started?: Readonly<Record<string, boolean | undefined>>;
  /** Why each non-running container waits (`CrashLoopBackOff`, `ErrImagePull`, ...), by name. */
  readonly waiting?: Readonly<Record<string, { readonly reason: WaitingReason | (string & {}); readonly message?: string } | undefined>>;
  /** The pod is terminal (it will not restart containers): see {@link PodPhaseOptions.podIsTerminal}. */
  readonly podIsTerminal?: boolean;
  /** The runtime's name for container IDs. Default `containerd`. */
  readonly runtimeName?: string;
}

/** IPs ordered as the kubelet's `sortPodIPs`: the first of the node's family, then the first of the other. */
function sortPodIPs(ips: readonly string[], primaryIsV6: boolean): string[] {
  const primary = primaryIsV6 ? isIPv6 : isIPv4;
  const secondary = primaryIsV6 ? isIPv4 : isIPv6;
  const out: string[] = [];
  const first = ips.find((ip) => primary(ip));
  if (first) out.push(first);
  const second = ips.find((ip) => secondary(ip));
  if (second) out.push(second);
  return out;
}

/**
 * The whole `pod.status` the agent reports, as `generateAPIPodStatus` with the status manager's
 * rules:
 *
 * - container statuses ({@link containerStatusOf}) for init and regular containers, waiting
 *   `PodInitializing` by default in a pod with init containers;
 * - the phase ({@link podPhase}); a terminal phase already reported never changes; the pod's
 *   `reason`/`message` are kept while the phase stays the same;
 * - the conditions ({@link podConditions});
 * - `hostIP`/`hostIPs` from the node; `podIP`/`podIPs` from the sandbox (the node's IP family first;
 *   the node's IPs for a host-network pod; kept from the pod once set when the sandbox has none);
 * - `startTime` kept once set; `qosClass` kept once set, else {@link qosClass}.
 */
export function podStatus(pod: V1Pod, input: PodStatusInput, now: Date): V1PodStatus {
  const old = pod.status ?? {};
  const spec = pod.spec;
  const hasInit = (spec.initContainers ?? []).length > 0;
  const convert = (containers: readonly V1Container[], previous: readonly V1ContainerStatus[] | undefined, init: boolean): V1ContainerStatus[] =>
    containers.map((c) => {
      const cri = input.containers?.[c.name];
      const w = input.waiting?.[c.name];
      return containerStatusOf(c, cri, previous?.find((p) => p.name === c.name), {
        waitingReason: w?.reason ?? (cri === undefined && hasInit ? 'PodInitializing' : undefined),
        waitingMessage: w?.message,
        ready: input.readiness?.[c.name] ?? c.readinessProbe === undefined,
        started: input.started?.[c.name] ?? c.startupProbe === undefined,
        regularInit: init && !isRestartableInitContainer(c),
        runtimeName: input.runtimeName,
        previousInstance: input.previousContainers?.[c.name],
        podDeleting: pod.metadata?.deletionTimestamp !== undefined,
      });
    });
  const initContainerStatuses = convert(spec.initContainers ?? [], old.initContainerStatuses, true);
  const containerStatuses = convert(spec.containers, old.containerStatuses, false);

  let phase: string = podPhase(spec, initContainerStatuses, containerStatuses, { podIsTerminal: input.podIsTerminal });
  if (old.phase === 'Succeeded' || old.phase === 'Failed') phase = old.phase;
  const keepReason = phase === old.phase;

  const hostIPs = [...(input.hostIPs ?? [])];
  const primaryIsV6 = hostIPs.length > 0 && isIPv6(hostIPs[0]!);
  const network = input.sandbox?.network;
  let podIPs = network ? sortPodIPs([network.ip, ...(network.additionalIps ?? [])], primaryIsV6) : [];
  if (podIPs.length === 0 && spec.hostNetwork) podIPs = hostIPs.slice(0, 2);
  if (podIPs.length === 0) podIPs = (old.podIPs ?? (old.podIP ? [{ ip: old.podIP }] : [])).map((p) => p.ip);

  const startTime = old.startTime ?? rfc3339(input.startTime === undefined ? now : new Date(input.startTime));
  const conditions = podConditions(pod, {
    phase,
    initContainerStatuses,
    containerStatuses,
    ...(input.sandbox ? { sandboxReady: input.sandbox.state === 'SANDBOX_READY' } : {}),
  }, now);

  return {
    phase,
    conditions,
    ...(keepReason && old.reason ? { reason: old.reason } : {}),
    ...(keepReason && old.message ? { message: old.message } : {}),
    ...(hostIPs.length > 0 ? { hostIP: hostIPs[0], hostIPs: hostIPs.slice(0, 2).map((ip) => ({ ip })) } : {}),
    ...(podIPs.length > 0 ? { podIP: podIPs[0], podIPs: podIPs.map((ip) => ({ ip })) } : {}),
    startTime,
    ...(hasInit ? { initContainerStatuses } : {}),
    containerStatuses,
    qosClass: old.qosClass ?? qosClass(pod),
  };
}

/** Condition types whose changes matter when comparing statuses (the kubelet's own and those it shares). */
const COMPARED_CONDITIONS = new Set([...KUBELET_POD_CONDITIONS, 'DisruptionTarget']);

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function normalized(s: V1PodStatus): unknown {
  const byName = (a: V1ContainerStatus, b: V1ContainerStatus): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  return {
    ...s,
    conditions: (s.conditions ?? [])
      .filter((c) => COMPARED_CONDITIONS.has(c.type))
      .map((c) => ({ type: c.type, status: c.status, reason: c.reason || undefined, message: c.message || undefined }))
      .sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0)),
    initContainerStatuses: s.initContainerStatuses?.length ? [...s.initContainerStatuses].sort(byName) : undefined,
    containerStatuses: s.containerStatuses?.length ? [...s.containerStatuses].sort(byName) : undefined,
  };
}

/**
 * Whether the status changed enough to be written, as the status manager's
 * `isPodStatusByKubeletEqual`: condition order and timestamps are ignored (kubelet-owned conditions
 * compare by type, status, reason and message; conditions others own are not the agent's to
 * write), container statuses compare regardless of order, and absent fields equal undefined ones.
 */
export function statusChanged(a: V1PodStatus, b: V1PodStatus): boolean {
  return canonical(normalized(a)) !== canonical(normalized(b));
}
