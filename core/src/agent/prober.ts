/**
 * The node agent's prober manager (the kubelet's `pkg/kubelet/prober`): one worker per container
 * and probe kind (liveness, readiness, startup), each on its own timer, probing the container's
 * current instance and keeping the result the agent reads when it computes the pod's status
 * (`readiness` → `ready`, `startup` → `started`) and when it decides to restart a container
 * (a liveness or startup failure).
 *
 * Semantics, as the kubelet's `worker.doProbe`:
 *
 * - A worker probes every `periodSeconds` (default 10). Its first run waits a random part of the
 *   period when the manager started less than one period ago (spreading probes after an agent
 *   restart). A new container instance ({@link ProbeManager.updateContainer} with a new ID) resets
 *   its result (readiness starts `failure`, liveness `success`, startup unknown) and, once that
 *   first run is past, makes it probe at once.
 * - Nothing is probed before `initialDelaySeconds` have passed since the container started
 *   (whole seconds, as the kubelet truncates), nor for a container that is not running (the result
 *   becomes `failure`; the worker stops for an exited container under `restartPolicy: Never`).
 * - A startup probe gates the others: liveness and readiness do not run until it has succeeded,
 *   and it stops probing once it has.
 * - A result changes only after `failureThreshold` (default 3) consecutive failures or
 *   `successThreshold` (default 1) consecutive successes. Each failed run emits an `Unhealthy` event
 *   (`Liveness probe failed: HTTP probe failed with statuscode: 500`), a probe that could not run a
 *   `... probe errored: ...` one and leaves the result as it was.
 * - A liveness or startup failure asks the agent to kill the container ({@link ProbeManagerOptions.onKill}
 *   / {@link ProbeManager.livenessFailed}) and puts the worker on hold until the container is
 *   replaced by a new instance.
 *
 * Timers: every worker owns at most one timer; {@link ProbeManager.stop} (and removing a pod) clears
 * them. `timeScale` shrinks every duration (for tests; 1 in production).
 *
 * @module
 */
import {
  execProbe,
  grpcProbe,
  httpProbe,
  tcpProbe,
  PROBE_USER_AGENT_VERSION,
  type ExecSyncFn,
  type ProbeOutcome,
  type ProbeTargetContainer,
  type V1ExecAction,
  type V1GRPCAction,
  type V1HTTPGetAction,
  type V1TCPSocketAction,
} from './probe-actions.js';

// ---------------------------------------------------------------------------------------------
// core/v1 shapes
// ---------------------------------------------------------------------------------------------

/** `core/v1` `Probe`: one handler and its timing. */
export interface V1Probe {
  readonly exec?: V1ExecAction;
  readonly httpGet?: V1HTTPGetAction;
  readonly tcpSocket?: V1TCPSocketAction;
  readonly grpc?: V1GRPCAction;
  /** Default 0. */
  readonly initialDelaySeconds?: number;
  /** Default 1. */
  readonly timeoutSeconds?: number;
  /** Default 10. */
  readonly periodSeconds?: number;
  /** Default 1 (must be 1 for liveness and startup). */
  readonly successThreshold?: number;
  /** Default 3. */
  readonly failureThreshold?: number;
  /** Overrides the pod's grace period when a liveness or startup failure kills the container. */
  readonly terminationGracePeriodSeconds?: number;
}

/** `core/v1` `Container`: the fields the prober reads. */
export interface V1ProbedContainer extends ProbeTargetContainer {
  readonly livenessProbe?: V1Probe;
  readonly readinessProbe?: V1Probe;
  readonly startupProbe?: V1Probe;
  /** `Always` on an init container makes it a sidecar, which is probed like a regular container. */
  readonly restartPolicy?: string;
}

/** `core/v1` `Pod`: the fields the prober reads. */
export interface V1ProbedPod {
  readonly metadata?: { readonly name?: string; readonly namespace?: string; readonly uid?: string; readonly deletionTimestamp?: string };
  readonly spec: {
    readonly containers: readonly V1ProbedContainer[];
    readonly initContainers?: readonly V1ProbedContainer[];
    readonly restartPolicy?: string;
    readonly terminationGracePeriodSeconds?: number;
  };
}

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/** The probe kinds. */
export type ProbeKind = 'liveness' | 'readiness' | 'startup';

/** A kept probe result. */
export type ProbeResult = 'success' | 'failure';

/** What the agent knows of a container's current instance. */
export interface ContainerProbeState {
  /** The runtime's container ID (without the `containerd://` prefix or with it: only equality matters). */
  readonly containerId: string;
  /** When the instance started, ms since the epoch. */
  readonly startedAt: number;
  /** The pod's IP (the default host of httpGet and tcpSocket probes, the host of grpc ones). */
  readonly podIP?: string;
  /** The instance is running. Default true. */
  readonly running?: boolean;
  /** The instance has exited (not merely created). Default false. */
  readonly exited?: boolean;
}

/** A change of a kept result (the agent resyncs the pod and rewrites its status). */
export interface ProbeResultChange {
  readonly uid: string;
  readonly containerName: string;
  readonly containerId: string;
  readonly kind: ProbeKind;
  readonly result: ProbeResult | undefined;
}

/** An event the kubelet would record about the container (`Unhealthy`, `ProbeWarning`). */
export interface ProbeEvent {
  readonly uid: string;
  readonly containerName: string;
  readonly containerId: string;
  readonly kind: ProbeKind;
  readonly type: 'Warning';
  readonly reason: 'Unhealthy' | 'ProbeWarning';
  /** `Liveness probe failed: ...`, `Readiness probe errored: ...`, `Startup probe warning: ...`. */
  readonly message: string;
}

/** The agent must kill (and, per the restart policy, restart) a container that failed liveness or startup. */
export interface ContainerKill {
  readonly uid: string;
  readonly containerName: string;
  readonly containerId: string;
  readonly kind: 'liveness' | 'startup';
  /** The `Killing` event's message: `Container web failed liveness probe, will be restarted`. */
  readonly message: string;
  /** The last failed run's `Unhealthy` message: `Liveness probe failed: HTTP probe failed with statuscode: 500`. */
  readonly probeMessage: string;
  /** The probe's `terminationGracePeriodSeconds`, else the pod's, else 30. */
  readonly gracePeriodSeconds: number;
}

/** Options of a {@link ProbeManager}. */
export interface ProbeManagerOptions {
  /** The runtime's `ExecSync` (timeout in seconds). */
  readonly execSync: ExecSyncFn;
  /** A kept result changed. */
  readonly onResult?: (change: ProbeResultChange) => void;
  /** An event to record. */
  readonly onEvent?: (event: ProbeEvent) => void;
  /** A container failed liveness or startup: kill it. */
  readonly onKill?: (kill: ContainerKill) => void;
  /** Multiplies every duration (seconds become `timeScale` seconds). Default 1; tests use e.g. 0.02. */
  readonly timeScale?: number;
  /** Random numbers in [0, 1) for the start-up jitter. Default `Math.random`. */
  readonly random?: () => number;
  /** ms since the epoch. Default `Date.now`. */
  readonly now?: () => number;
  /** The version in the probe User-Agent. Default {@link PROBE_USER_AGENT_VERSION}. */
  readonly userAgentVersion?: string;
}

/** The kubelet's default pod grace period. */
const DEFAULT_GRACE_SECONDS = 30;

const KIND_TITLE: Readonly<Record<ProbeKind, string>> = { liveness: 'Liveness', readiness: 'Readiness', startup: 'Startup' };

/** A probe with the API server's defaults applied. */
interface ProbeSpec {
  readonly probe: V1Probe;
  readonly initialDelaySeconds: number;
  readonly timeoutSeconds: number;
  readonly periodSeconds: number;
  readonly successThreshold: number;
  readonly failureThreshold: number;
}

function withDefaults(probe: V1Probe): ProbeSpec {
  const pos = (v: number | undefined, d: number): number => (v !== undefined && v > 0 ? v : d);
  return {
    probe,
    initialDelaySeconds: Math.max(0, probe.initialDelaySeconds ?? 0),
    timeoutSeconds: pos(probe.timeoutSeconds, 1),
    periodSeconds: pos(probe.periodSeconds, 10),
    successThreshold: pos(probe.successThreshold, 1),
    failureThreshold: pos(probe.failureThreshold, 3),
  };
}

const probeOf = (c: V1ProbedContainer, kind: ProbeKind): V1Probe | undefined =>
  kind === 'liveness' ? c.livenessProbe : kind === 'readiness' ? c.readinessProbe : c.startupProbe;

// ---------------------------------------------------------------------------------------------
// Worker
// ---------------------------------------------------------------------------------------------

/** One container's probe of one kind. */
class ProbeWorker {
  private timer: NodeJS.Timeout | undefined;
  private inFlight = false;
  private triggered = false;
  stopped = false;
  /** The container instance the result applies to. */
  containerId: string | undefined;
  result: ProbeResult | undefined;
  private lastOutcome: ProbeResult | undefined;
  private resultRun = 0;
  private onHold = false;
  /** The last failed run's Unhealthy message. */
  private lastFailure = '';

  constructor(
    private readonly manager: ProbeManager,
    readonly uid: string,
    public pod: V1ProbedPod,
    readonly container: V1ProbedContainer,
    readonly kind: ProbeKind,
    readonly spec: ProbeSpec,
  ) {}

  private get initialValue(): ProbeResult | undefined {
    return this.kind === 'readiness' ? 'failure' : this.kind === 'liveness' ? 'success' : undefined;
  }

  /** The first run is still waiting out its start-up jitter. */
  warmingUp = false;

  /** Starts the loop, after `delayMs`. */
  start(delayMs: number): void {
    this.warmingUp = delayMs > 0;
    this.schedule(delayMs);
  }

  /** Probes as soon as possible (after the run in flight, if any). */
  trigger(): void {
    if (this.stopped) return;
    if (this.inFlight) {
      this.triggered = true;
      return;
    }
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick();
    }, Math.max(0, ms));
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    this.warmingUp = false;
    this.inFlight = true;
    const began = Date.now();
    let keepGoing = true;
    try {
      keepGoing = await this.doProbe();
    } catch {
      keepGoing = true;
    } finally {
      this.inFlight = false;
    }
    if (this.stopped) return;
    if (!keepGoing) {
      this.manager.retire(this);
      return;
    }
    if (this.triggered) {
      this.triggered = false;
      this.schedule(0);
      return;
    }
    this.schedule(this.manager.seconds(this.spec.periodSeconds) - (Date.now() - began));
  }

  /** Keeps `result` for the current container, telling the manager when it changed. */
  set(result: ProbeResult | undefined): void {
    const changed = this.result !== result;
    this.result = result;
    if (changed && this.containerId !== undefined) this.manager.changed(this);
  }

  /** Adopts a new container instance: its result starts over. */
  adopt(containerId: string): void {
    this.containerId = containerId;
    this.lastOutcome = undefined;
    this.resultRun = 0;
    this.onHold = false;
    this.result = undefined;
    this.set(this.initialValue);
  }

  /** One run of the kubelet's `doProbe`; false ends the worker. */
  private async doProbe(): Promise<boolean> {
    const state = this.manager.containerState(this.uid, this.container.name);
    if (!state) return true;
    if (state.containerId !== this.containerId) this.adopt(state.containerId);
    if (this.onHold) return true;
    if (state.running === false) {
      this.set('failure');
      return !(state.exited === true && this.pod.spec.restartPolicy === 'Never');
    }
    if (this.pod.metadata?.deletionTimestamp && this.kind !== 'readiness') {
      this.set('success');
      return false;
    }
    const sinceStart = this.manager.now() - state.startedAt;
    if (Math.trunc(sinceStart / this.manager.seconds(1)) < this.spec.initialDelaySeconds) return true;
    const started = this.manager.started(this.uid, this.container.name);
    if (started ? this.kind === 'startup' : this.kind !== 'startup') return true;

    const containerId = state.containerId;
    const outcome = await this.manager.run(this.spec, this.container, containerId, state.podIP);
    if (this.stopped || this.containerId !== containerId) return true;
    const title = KIND_TITLE[this.kind];
    if (outcome.result === 'unknown') {
      this.manager.event(this, 'Unhealthy', `${title} probe errored: ${outcome.output}`);
      return true;
    }
    if (outcome.result === 'failure') {
      this.lastFailure = `${title} probe failed: ${outcome.output}`;
      this.manager.event(this, 'Unhealthy', this.lastFailure);
    } else if (outcome.result === 'warning') {
      this.manager.event(this, 'ProbeWarning', `${title} probe warning: ${outcome.output}`);
    }
    const result: ProbeResult = outcome.result === 'failure' ? 'failure' : 'success';
    if (this.lastOutcome === result) this.resultRun++;
    else {
      this.lastOutcome = result;
      this.resultRun = 1;
    }
    if ((result === 'failure' && this.resultRun < this.spec.failureThreshold) || (result === 'success' && this.resultRun < this.spec.successThreshold)) return true;
    this.set(result);
    if (result === 'failure' && this.kind !== 'readiness') {
      this.onHold = true;
      this.resultRun = 0;
      this.manager.kill(this, this.killOrder());
    }
    if (result === 'success' && this.kind === 'startup') this.manager.startupSucceeded(this.uid, this.container.name);
    return true;
  }

  /** What the agent needs to kill the container after a liveness or startup failure. */
  killOrder(): ContainerKill {
    const kind = this.kind === 'startup' ? 'startup' : 'liveness';
    return {
      uid: this.uid,
      containerName: this.container.name,
      containerId: this.containerId ?? '',
      kind,
      message: `Container ${this.container.name} failed ${kind} probe, will be restarted`,
      probeMessage: this.lastFailure,
      gracePeriodSeconds: this.spec.probe.terminationGracePeriodSeconds ?? this.pod.spec.terminationGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// Manager
// ---------------------------------------------------------------------------------------------

const KINDS: readonly ProbeKind[] = ['startup', 'liveness', 'readiness'];

/** The prober manager: probe workers for every probed container of every pod it was given. */
export class ProbeManager {
  private readonly opts: ProbeManagerOptions;
  private readonly scale: number;
  private readonly startedAt: number;
  private readonly workers = new Map<string, ProbeWorker>();
  private readonly states = new Map<string, Map<string, ContainerProbeState>>();
  private stopped = false;

  constructor(opts: ProbeManagerOptions) {
    this.opts = opts;
    this.scale = opts.timeScale ?? 1;
    if (!(this.scale > 0)) throw new Error('ProbeManager: timeScale must be positive');
    this.startedAt = Date.now();
  }

  /** ms since the epoch (the injected clock). */
  now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  /** `n` seconds in ms under the time scale. */
  seconds(n: number): number {
    return n * 1000 * this.scale;
  }

  private key(uid: string, name: string, kind: ProbeKind): string {
    return `${uid}/${name}/${kind}`;
  }

  /** The containers the kubelet probes: regular ones and sidecars (restartable init containers). */
  private probedContainers(pod: V1ProbedPod): V1ProbedContainer[] {
    return [...pod.spec.containers, ...(pod.spec.initContainers ?? []).filter((c) => c.restartPolicy === 'Always')];
  }

  /**
   * Starts a worker for every probe of the pod's containers (and sidecars) that has none yet; for
   * existing workers, takes the newer pod object (a deletion timestamp ends liveness and startup
   * probing with a success, as the kubelet's graceful shutdown does). Idempotent.
   *
   * @throws {Error} when the pod has no UID.
   */
  addPod(pod: V1ProbedPod): void {
    if (this.stopped) return;
    const uid = pod.metadata?.uid;
    if (!uid) throw new Error('ProbeManager.addPod: the pod has no uid');
    for (const c of this.probedContainers(pod)) {
      for (const kind of KINDS) {
        const probe = probeOf(c, kind);
        if (!probe) continue;
        const key = this.key(uid, c.name, kind);
        const existing = this.workers.get(key);
        if (existing) {
          existing.pod = pod;
          continue;
        }
        const spec = withDefaults(probe);
        const worker = new ProbeWorker(this, uid, pod, c, kind, spec);
        this.workers.set(key, worker);
        const period = this.seconds(spec.periodSeconds);
        const jitter = period > Date.now() - this.startedAt ? (this.opts.random ?? Math.random)() * period : 0;
        worker.start(jitter);
      }
    }
  }

  /** Stops every worker of the pod and forgets its containers. */
  removePod(uid: string): void {
    for (const [key, w] of this.workers) {
      if (w.uid !== uid) continue;
      w.stop();
      this.workers.delete(key);
    }
    this.states.delete(uid);
  }

  /**
   * Stops the pod's liveness and startup workers (the kubelet's `StopLivenessAndStartup`, when the
   * pod starts terminating): no container of it is killed for a failed probe any more, and its
   * containers count as started. Readiness keeps probing.
   */
  stopLivenessAndStartup(uid: string): void {
    for (const [key, w] of this.workers) {
      if (w.uid !== uid || w.kind === 'readiness') continue;
      w.stop();
      this.workers.delete(key);
    }
  }

  /**
   * Tells the manager about a container's current instance. A new container ID resets the
   * container's results (readiness `failure`, liveness `success`, startup unknown) and makes its
   * workers probe at once; the same ID only updates the state (running, pod IP).
   */
  updateContainer(uid: string, containerName: string, state: ContainerProbeState): void {
    if (this.stopped) return;
    let byName = this.states.get(uid);
    if (!byName) {
      byName = new Map();
      this.states.set(uid, byName);
    }
    const previous = byName.get(containerName);
    byName.set(containerName, state);
    const fresh = previous?.containerId !== state.containerId;
    for (const kind of KINDS) {
      const w = this.workers.get(this.key(uid, containerName, kind));
      if (!w) continue;
      if (fresh) {
        w.adopt(state.containerId);
        // Probe the new instance now, unless the worker is still spreading its first run.
        if (!w.warmingUp) w.trigger();
      } else if (state.running === false && previous?.running !== false) {
        w.trigger();
      }
    }
  }

  /** The container state last given for `containerName`, if any. */
  containerState(uid: string, containerName: string): ContainerProbeState | undefined {
    return this.states.get(uid)?.get(containerName);
  }

  private current(uid: string, name: string, kind: ProbeKind): { readonly worker: ProbeWorker | undefined; readonly result: ProbeResult | undefined } {
    const worker = this.workers.get(this.key(uid, name, kind));
    if (!worker) return { worker, result: undefined };
    const state = this.containerState(uid, name);
    const result = state && worker.containerId === state.containerId ? worker.result : undefined;
    return { worker, result };
  }

  /**
   * Whether the container has started (its `started` status): true without a startup probe, else
   * once the startup probe succeeded for the current instance.
   */
  started(uid: string, containerName: string): boolean {
    const { worker, result } = this.current(uid, containerName, 'startup');
    return worker === undefined || result === 'success';
  }

  /**
   * The readiness verdict of the container's current instance: true without a readiness probe,
   * else only after its probe succeeded (false until the first success). The pod status combines
   * it with running and started.
   */
  readiness(uid: string, containerName: string): boolean {
    const { worker, result } = this.current(uid, containerName, 'readiness');
    return worker === undefined || result === 'success';
  }

  /**
   * The readiness and started verdicts of every probed container of `pod`, shaped for
   * {@link PodStatusInput}'s `readiness` and `started`.
   */
  verdicts(pod: V1ProbedPod): { readonly readiness: Record<string, boolean>; readonly started: Record<string, boolean> } {
    const uid = pod.metadata?.uid ?? '';
    const readiness: Record<string, boolean> = {};
    const started: Record<string, boolean> = {};
    for (const c of this.probedContainers(pod)) {
      readiness[c.name] = this.readiness(uid, c.name);
      started[c.name] = this.started(uid, c.name);
    }
    return { readiness, started };
  }

  /**
   * When the current instance failed its liveness (or startup) probe: what the agent needs to kill
   * it (the pull side of {@link ProbeManagerOptions.onKill}, as the kubelet's `computePodActions`
   * reads the liveness manager). Undefined when it did not.
   */
  livenessFailed(uid: string, containerName: string): ContainerKill | undefined {
    for (const kind of ['liveness', 'startup'] as const) {
      const { worker, result } = this.current(uid, containerName, kind);
      if (worker && result === 'failure') return worker.killOrder();
    }
    return undefined;
  }

  /** The number of live workers (for tests and metrics). */
  get workerCount(): number {
    return this.workers.size;
  }

  /** Stops every worker and clears every timer. Later calls do nothing. */
  stop(): void {
    this.stopped = true;
    for (const w of this.workers.values()) w.stop();
    this.workers.clear();
    this.states.clear();
  }

  // --- called by workers ---------------------------------------------------------------------

  /** Runs one probe of `spec` against the container. */
  run(spec: ProbeSpec, container: V1ProbedContainer, containerId: string, podIP: string | undefined): Promise<ProbeOutcome> {
    const p = spec.probe;
    const timeoutMs = this.seconds(spec.timeoutSeconds);
    const version = this.opts.userAgentVersion ?? PROBE_USER_AGENT_VERSION;
    if (p.exec) return execProbe(this.opts.execSync, containerId, p.exec.command ?? [], spec.timeoutSeconds * this.scale);
    if (p.httpGet) return httpProbe(p.httpGet, container, podIP, timeoutMs, version);
    if (p.tcpSocket) return tcpProbe(p.tcpSocket, container, podIP, timeoutMs);
    if (p.grpc) return grpcProbe(p.grpc, podIP, timeoutMs, version);
    return Promise.resolve({ result: 'unknown', output: 'missing probe handler' });
  }

  /** A worker ended by itself (its container exited for good). */
  retire(worker: ProbeWorker): void {
    worker.stop();
    const key = this.key(worker.uid, worker.container.name, worker.kind);
    if (this.workers.get(key) === worker) this.workers.delete(key);
  }

  changed(worker: ProbeWorker): void {
    if (this.stopped || worker.stopped) return;
    this.opts.onResult?.({ uid: worker.uid, containerName: worker.container.name, containerId: worker.containerId ?? '', kind: worker.kind, result: worker.result });
  }

  event(worker: ProbeWorker, reason: ProbeEvent['reason'], message: string): void {
    if (this.stopped || worker.stopped) return;
    this.opts.onEvent?.({ uid: worker.uid, containerName: worker.container.name, containerId: worker.containerId ?? '', kind: worker.kind, type: 'Warning', reason, message });
  }

  kill(worker: ProbeWorker, order: ContainerKill): void {
    if (this.stopped || worker.stopped) return;
    this.opts.onKill?.(order);
  }

  /** The startup probe succeeded: readiness runs now rather than a period later. */
  startupSucceeded(uid: string, containerName: string): void {
    this.workers.get(this.key(uid, containerName, 'readiness'))?.trigger();
  }
}
