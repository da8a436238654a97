/**
 * The result of running a scheduling framework plugin at one extension point (Kubernetes'
 * `framework.Status`).
 *
 * @module
 */

/**
 * A status code, with Kubernetes' meaning:
 * - `Success`: the plugin ran and the pod may go on;
 * - `Error`: an internal error (the pod is retried with back-off);
 * - `Unschedulable`: the pod does not fit here now, but preemption (PostFilter) may help;
 * - `UnschedulableAndUnresolvable`: it does not fit, and preemption cannot help on this node;
 * - `Wait`: (Permit) hold the pod until allowed, denied or timed out;
 * - `Skip`: (PreFilter, PreScore, Bind) the plugin has nothing to do for this pod, so its
 *   Filter/Score are skipped, or the next binder is tried;
 * - `Pending`: (PreEnqueue or Permit) the pod waits for something other than a cluster event.
 */
export type StatusCode = 'Success' | 'Error' | 'Unschedulable' | 'UnschedulableAndUnresolvable' | 'Wait' | 'Skip' | 'Pending';

/**
 * A plugin's verdict: a code, human-readable reasons (they make up the pod's `PodScheduled`
 * message and events, e.g. `Insufficient cpu`), and the plugin that decided. Plugins return
 * `undefined` for success (no allocation on the hot path) and a `Status` otherwise.
 */
export class Status {
  /** The plugin that returned it (filled in by the framework when left out). */
  plugin: string;

  constructor(
    readonly code: StatusCode,
    readonly reasons: readonly string[] = [],
    plugin = '',
    /** The error behind an `Error` status. */
    readonly error?: Error,
  ) {
    this.plugin = plugin;
  }

  /** The pod does not fit, preemption may help: `reasons` say why (e.g. `Insufficient cpu`). */
  static unschedulable(...reasons: string[]): Status {
    return new Status('Unschedulable', reasons);
  }

  /** The pod does not fit and preemption on this node cannot help. */
  static unresolvable(...reasons: string[]): Status {
    return new Status('UnschedulableAndUnresolvable', reasons);
  }

  /** An internal error (retried with back-off). */
  static error(err: unknown): Status {
    const e = err instanceof Error ? err : new Error(String(err));
    return new Status('Error', [e.message], '', e);
  }

  /** Nothing to do for this pod at this extension point. */
  static skip(): Status {
    return new Status('Skip');
  }

  /** (Permit) wait until allowed or rejected, or the timeout passes. */
  static wait(...reasons: string[]): Status {
    return new Status('Wait', reasons);
  }

  /** (PreEnqueue, Permit) the pod waits for something other than a cluster event. */
  static pending(...reasons: string[]): Status {
    return new Status('Pending', reasons);
  }

  /** An explicit success (plugins usually return `undefined` instead). */
  static success(): Status {
    return new Status('Success');
  }

  /** True for `Success`. */
  isSuccess(): boolean {
    return this.code === 'Success';
  }

  /** True for `Unschedulable`, `UnschedulableAndUnresolvable` and `Pending`: the pod was rejected, not failed. */
  isRejected(): boolean {
    return this.code === 'Unschedulable' || this.code === 'UnschedulableAndUnresolvable' || this.code === 'Pending';
  }

  /** The reasons joined with `, ` (Kubernetes' `Status.Message()`). */
  message(): string {
    return this.reasons.join(', ');
  }

  /** A copy attributed to `plugin`. */
  withPlugin(plugin: string): Status {
    return new Status(this.code, this.reasons, plugin, this.error);
  }
}

/** True when `s` is a success (`undefined` or a `Success` status). */
export function isSuccess(s: Status | undefined): boolean {
  return s === undefined || s.code === 'Success';
}

/** The highest score a Score plugin may give after NormalizeScore (Kubernetes' MaxNodeScore). */
export const MAX_NODE_SCORE = 100;
/** The lowest score. */
export const MIN_NODE_SCORE = 0;
