/**
 * The scheduling queue (kube-scheduler's PriorityQueue): an active queue in the profile's QueueSort
 * order, a back-off queue of pods that failed recently (1 s doubling to 10 s per attempt), and the
 * unschedulable pods, which move back only when a cluster event that one of the plugins that
 * rejected them registered for happens (or after 5 minutes), instead of being polled.
 *
 * @module
 */
import { PodInfo, type ActionType, type ClusterEventWithHint, type EventResource, type KubeObject, type QueuedPodInfo, type Status } from '@kubernel/sdk';
import { KeyedHeap } from './heap.js';

/** A pod in the queue (the scheduler's mutable view of a {@link QueuedPodInfo}). */
export interface QueueEntry extends QueuedPodInfo {
  podInfo: PodInfo;
  timestamp: number;
  attempts: number;
  initialAttemptTimestamp: number;
  /** Plugins that rejected the pod in its last attempt (their events can make it schedulable). */
  unschedulablePlugins: Set<string>;
  /** Kept out by PreEnqueue (scheduling gates): only an update of the pod itself can let it in. */
  gated: boolean;
  /** When its back-off ends, ms since the epoch. */
  backoffExpiry: number;
}

/** A cluster event as the scheduler's informers see it. */
export interface QueueEvent {
  readonly resource: EventResource;
  readonly action: ActionType;
}

/** Settings of the {@link SchedulingQueue}. */
export interface QueueOptions {
  /** QueueSort. */
  readonly less: (a: QueuedPodInfo, b: QueuedPodInfo) => boolean;
  /** Runs PreEnqueue plugins for a pod (undefined: admitted). */
  readonly preEnqueue: (pod: KubeObject) => Status | undefined;
  /** The events each plugin registered (EnqueueExtensions). */
  readonly eventsOf: (plugin: string) => readonly ClusterEventWithHint[];
  readonly initialBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /** How long a pod stays unschedulable at most before it is retried anyway (5 minutes). */
  readonly maxUnschedulableMs?: number;
  readonly now?: () => number;
}

const uidOf = (pod: KubeObject): string => String(pod.metadata?.uid ?? `${pod.metadata?.namespace}/${pod.metadata?.name}`);

/** Whether a registered action covers `action` (`All` covers everything, `Update` every update). */
function actionCovers(registered: ActionType, action: ActionType): boolean {
  return registered === action || registered === 'All' || (registered === 'Update' && action.startsWith('Update'));
}

function resourceCovers(registered: EventResource, resource: EventResource): boolean {
  if (registered === resource || registered === '*') return true;
  // Assigned pods are "Pod" events, as in Kubernetes 1.30.
  return (registered === 'Pod' && resource === 'AssignedPod') || (registered === 'AssignedPod' && resource === 'Pod');
}

/** The scheduling queue. */
export class SchedulingQueue {
  private readonly active: KeyedHeap<QueueEntry>;
  private readonly backoff: KeyedHeap<QueueEntry>;
  private readonly unschedulable = new Map<string, QueueEntry>();
  private readonly waiters: Array<(e: QueueEntry | undefined) => void> = [];
  private readonly now: () => number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly maxUnschedulableMs: number;
  private closed = false;
  /** Incremented per pop: the scheduling cycle number. */
  schedulingCycle = 0;
  /** The cycle of the last move request: a pod failing in an earlier cycle goes to back-off, not unschedulable. */
  private moveRequestCycle = -1;
  private timers: NodeJS.Timeout[] = [];

  constructor(private readonly options: QueueOptions) {
    this.now = options.now ?? Date.now;
    this.initialBackoffMs = options.initialBackoffMs ?? 1_000;
    this.maxBackoffMs = options.maxBackoffMs ?? 10_000;
    this.maxUnschedulableMs = options.maxUnschedulableMs ?? 5 * 60_000;
    this.active = new KeyedHeap((e) => e.podInfo.uid, (a, b) => options.less(a, b));
    this.backoff = new KeyedHeap((e) => e.podInfo.uid, (a, b) => a.backoffExpiry < b.backoffExpiry);
  }

  /** Starts the periodic flushes (back-off every second, long-unschedulable every 30 s). */
  run(): void {
    this.timers.push(setInterval(() => this.flushBackoff(), 1_000));
    this.timers.push(setInterval(() => this.flushUnschedulable(), 30_000));
  }

  /** Stops; pending pops resolve with undefined. */
  close(): void {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    for (const w of this.waiters.splice(0)) w(undefined);
  }

  /** Pods waiting: active, back-off, unschedulable (gated ones included). */
  counts(): { active: number; backoff: number; unschedulable: number; gated: number } {
    let gated = 0;
    for (const e of this.unschedulable.values()) if (e.gated) gated++;
    return { active: this.active.size, backoff: this.backoff.size, unschedulable: this.unschedulable.size - gated, gated };
  }

  /** True when the pod is in any sub-queue. */
  has(pod: KubeObject): boolean {
    const uid = uidOf(pod);
    return this.active.has(uid) || this.backoff.has(uid) || this.unschedulable.has(uid);
  }

  private entry(pod: KubeObject): QueueEntry {
    const now = this.now();
    return { podInfo: new PodInfo(pod), timestamp: now, attempts: 0, initialAttemptTimestamp: now, unschedulablePlugins: new Set(), gated: false, backoffExpiry: 0 };
  }

  /** A new pending pod. */
  add(pod: KubeObject): void {
    if (this.has(pod)) {
      this.update(pod, pod);
      return;
    }
    this.toActive(this.entry(pod));
  }

  /** Puts `e` in the active queue unless PreEnqueue keeps it out (then it waits, gated). */
  private toActive(e: QueueEntry): void {
    const uid = e.podInfo.uid;
    const s = this.options.preEnqueue(e.podInfo.pod);
    this.backoff.delete(uid);
    if (s && !s.isSuccess()) {
      e.gated = true;
      this.active.delete(uid);
      this.unschedulable.set(uid, e);
      return;
    }
    e.gated = false;
    this.unschedulable.delete(uid);
    this.active.push(e);
    this.wake();
  }

  private wake(): void {
    while (this.waiters.length > 0 && this.active.size > 0) {
      const e = this.active.pop()!;
      e.attempts++;
      this.schedulingCycle++;
      this.waiters.shift()!(e);
    }
  }

  /** The next pod to schedule, waiting while there is none; undefined once closed or aborted. */
  pop(signal?: AbortSignal): Promise<QueueEntry | undefined> {
    if (this.closed || signal?.aborted) return Promise.resolve(undefined);
    const e = this.active.pop();
    if (e) {
      e.attempts++;
      this.schedulingCycle++;
      return Promise.resolve(e);
    }
    return new Promise((resolve) => {
      const waiter = (x: QueueEntry | undefined): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve(x);
      };
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(undefined);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** The pod changed (not its binding): keep its place, or retry it if it was unschedulable and its spec or labels changed. */
  update(old: KubeObject, pod: KubeObject): void {
    const uid = uidOf(pod);
    const inActive = this.active.get(uid);
    if (inActive) {
      inActive.podInfo = new PodInfo(pod);
      this.active.push(inActive);
      return;
    }
    const inBackoff = this.backoff.get(uid);
    if (inBackoff) {
      inBackoff.podInfo = new PodInfo(pod);
      return;
    }
    const waiting = this.unschedulable.get(uid);
    if (waiting) {
      waiting.podInfo = new PodInfo(pod);
      if (old === pod || !schedulingRelevantChange(old, pod)) return;
      if (waiting.gated || this.now() >= waiting.backoffExpiry) this.toActive(waiting);
      else {
        this.unschedulable.delete(uid);
        this.backoff.push(waiting);
      }
      return;
    }
    this.add(pod);
  }

  /** The pod is gone (deleted or bound elsewhere). */
  delete(pod: KubeObject): void {
    const uid = uidOf(pod);
    this.active.delete(uid);
    this.backoff.delete(uid);
    this.unschedulable.delete(uid);
  }

  /**
   * After a failed attempt: into back-off if a move request came while it was being scheduled (the
   * cluster changed meanwhile), else unschedulable until an event its rejecting plugins care about.
   */
  addUnschedulable(e: QueueEntry, cycle: number, rejectedBy: ReadonlySet<string>, error = false): void {
    const uid = e.podInfo.uid;
    if (this.has(e.podInfo.pod)) return;
    e.timestamp = this.now();
    e.unschedulablePlugins = new Set(rejectedBy);
    e.backoffExpiry = this.now() + this.backoffDuration(e.attempts);
    if (error || this.moveRequestCycle >= cycle) this.backoff.push(e);
    else this.unschedulable.set(uid, e);
  }

  private backoffDuration(attempts: number): number {
    let d = this.initialBackoffMs;
    for (let i = 1; i < attempts && d < this.maxBackoffMs; i++) d *= 2;
    return Math.min(d, this.maxBackoffMs);
  }

  /**
   * A cluster event: unschedulable pods that a plugin rejected, which registered this event (and
   * whose hint says Queue), move to the active queue (or back-off while backing off).
   */
  moveOnEvent(event: QueueEvent, oldObject?: KubeObject, newObject?: KubeObject): void {
    this.moveRequestCycle = this.schedulingCycle;
    if (this.unschedulable.size === 0) return;
    const now = this.now();
    for (const e of [...this.unschedulable.values()]) {
      if (e.gated) continue;
      if (!this.interested(e, event, oldObject, newObject)) continue;
      this.unschedulable.delete(e.podInfo.uid);
      if (now >= e.backoffExpiry) this.toActive(e);
      else this.backoff.push(e);
    }
  }

  private interested(e: QueueEntry, event: QueueEvent, oldObject: KubeObject | undefined, newObject: KubeObject | undefined): boolean {
    if (e.unschedulablePlugins.size === 0) return true;
    for (const plugin of e.unschedulablePlugins) {
      for (const reg of this.options.eventsOf(plugin)) {
        if (!resourceCovers(reg.event.resource, event.resource)) continue;
        if (!reg.event.actions.some((a) => actionCovers(a, event.action))) continue;
        if (!reg.hint || reg.hint(e.podInfo.pod, oldObject, newObject) === 'Queue') return true;
      }
    }
    return false;
  }

  /** Moves pods whose back-off is over to the active queue. */
  flushBackoff(): void {
    const now = this.now();
    for (let top = this.backoff.peek(); top && top.backoffExpiry <= now; top = this.backoff.peek()) {
      this.backoff.pop();
      this.toActive(top);
    }
  }

  /** Retries pods unschedulable for longer than the maximum. */
  flushUnschedulable(): void {
    const now = this.now();
    for (const e of [...this.unschedulable.values()]) {
      if (e.gated || now - e.timestamp < this.maxUnschedulableMs) continue;
      this.unschedulable.delete(e.podInfo.uid);
      this.toActive(e);
    }
  }
}

/** Whether an update of a pending pod can change its scheduling (anything but status and bookkeeping metadata). */
export function schedulingRelevantChange(old: KubeObject, pod: KubeObject): boolean {
  const strip = (p: KubeObject): string => JSON.stringify({ labels: p.metadata?.labels, annotations: p.metadata?.annotations, spec: p.spec });
  return strip(old) !== strip(pod);
}
