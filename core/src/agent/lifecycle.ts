/**
 * Container lifecycle hooks (`postStart`, `preStop`), run as the kubelet's
 * `pkg/kubelet/lifecycle` handler runner and `kuberuntime` do:
 *
 * - `exec`: the command through CRI `ExecSync`; a non-zero exit code fails the hook;
 * - `httpGet`: a GET to host (default the pod IP) : port path; only transport errors fail it
 *   (the status code is not checked), an HTTPS request answered in plain HTTP is retried over HTTP;
 * - `sleep`: waits `seconds`; fails when the container is stopped first.
 *
 * Failures carry the kubelet's texts (`Exec lifecycle hook ([sh -c exit 1]) for Container "web" in
 * Pod "web-0_default(uid)" failed - error: command 'sh -c exit 1' exited with 1: , message: ""`);
 * events carry only `PostStartHook failed` / `PreStopHook failed`, so no secrets leak into them.
 *
 * How the pod worker uses it (the kubelet's `startContainer` / `killContainer`):
 *
 * 1. Right after `StartContainer` succeeds, if the container has `lifecycle.postStart`, await
 *    {@link runPostStartHook}. On failure: record a `Warning` event `FailedPostStartHook`
 *    (`PostStartHook failed`), stop the container (`StopContainer` with the pod's grace period) and
 *    report it waiting with reason `PostStartHookError` and the hook's message; the restart policy
 *    and crash-loop back-off then apply as for any exit.
 * 2. Before `StopContainer`, if the container has `lifecycle.preStop` and the grace period is
 *    positive, await {@link runPreStopHook} with the grace period: it waits for the hook at most that
 *    long and returns the grace left for `StopContainer`'s timeout (never under
 *    {@link MINIMUM_GRACE_PERIOD_SECONDS}). A failed hook records `FailedPreStopHook` and the stop
 *    goes on.
 *
 * @module
 */
import { isRuntimeError } from '@kubernel/sdk';
import { HttpGetError, httpGet, httpGetRequest, type ExecSyncFn, type ProbeTargetContainer, type V1ExecAction, type V1HTTPGetAction, type V1TCPSocketAction } from './probe-actions.js';

// ---------------------------------------------------------------------------------------------
// core/v1 shapes
// ---------------------------------------------------------------------------------------------

/** `core/v1` `SleepAction`. */
export interface V1SleepAction {
  readonly seconds: number;
}

/** `core/v1` `LifecycleHandler`: exactly one action. */
export interface V1LifecycleHandler {
  readonly exec?: V1ExecAction;
  readonly httpGet?: V1HTTPGetAction;
  /** Accepted by the API for compatibility; the kubelet does not run it (an invalid handler). */
  readonly tcpSocket?: V1TCPSocketAction;
  readonly sleep?: V1SleepAction;
}

/** `core/v1` `Lifecycle`. */
export interface V1Lifecycle {
  readonly postStart?: V1LifecycleHandler;
  readonly preStop?: V1LifecycleHandler;
}

/** The pod fields a hook's messages name. */
export interface HookPod {
  readonly metadata?: { readonly name?: string; readonly namespace?: string; readonly uid?: string };
}

// ---------------------------------------------------------------------------------------------
// Handler runner
// ---------------------------------------------------------------------------------------------

/** The kubelet's floor for a container's stop grace period after its preStop hook (`minimumGracePeriodInSeconds`). */
export const MINIMUM_GRACE_PERIOD_SECONDS = 2;

/** The event reasons and messages of failed hooks. */
export const FAILED_POST_START_HOOK = 'FailedPostStartHook';
export const FAILED_PRE_STOP_HOOK = 'FailedPreStopHook';
/** The waiting reason of a container whose postStart hook failed. */
export const POST_START_HOOK_ERROR = 'PostStartHookError';

/** Where and how a handler runs. */
export interface HandlerContext {
  readonly pod: HookPod;
  readonly container: ProbeTargetContainer;
  /** The container instance (for exec). */
  readonly containerId: string;
  /** The pod's IP: the default host of `httpGet`. */
  readonly podIP?: string;
  /** The runtime's `ExecSync`. */
  readonly execSync: ExecSyncFn;
  /** A bound on the whole handler, seconds (exec timeout, HTTP deadline). Default: none. */
  readonly timeoutSeconds?: number;
  /** Aborts the handler (the container is being stopped): a sleep then fails. */
  readonly signal?: AbortSignal;
  /** Multiplies every duration (sleep, timeouts). Default 1; for tests. */
  readonly timeScale?: number;
  /** The version in the `kube-lifecycle/<version>` User-Agent. */
  readonly userAgentVersion?: string;
}

/** A handler's outcome: ok, or the kubelet's failure message. */
export type HandlerResult = { readonly ok: true } | { readonly ok: false; readonly message: string };

/** The longest timer Node accepts (~24.8 days): "no deadline". */
const NO_DEADLINE_MS = 2_147_483_647;

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** `format.Pod`: `name_namespace(uid)`. */
export function formatPod(pod: HookPod): string {
  const m = pod.metadata ?? {};
  return `${m.name ?? ''}_${m.namespace ?? ''}(${m.uid ?? ''})`;
}

/** Go's `%q` of a string (double-quoted, Go escapes). */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/** Go's `%v` of a string slice: `[a b c]`. */
function goList(items: readonly string[]): string {
  return `[${items.join(' ')}]`;
}

/** A promise that resolves after `ms`, or rejects when `signal` aborts first; its timer never outlives it. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new Error('aborted'));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new Error('aborted'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

async function runExec(action: V1ExecAction, ctx: HandlerContext, scale: number): Promise<HandlerResult> {
  const cmd = action.command ?? [];
  const decoder = new TextDecoder();
  let error: string;
  let output = '';
  try {
    const res = await ctx.execSync(ctx.containerId, cmd, (ctx.timeoutSeconds ?? 0) * scale);
    if (res.exitCode === 0) return { ok: true };
    const stderr = decoder.decode(res.stderr);
    output = decoder.decode(res.stdout) + stderr;
    error = `command '${cmd.join(' ')}' exited with ${res.exitCode}: ${stderr}`;
  } catch (err) {
    error = isRuntimeError(err, 'DeadlineExceeded') ? `command '${cmd.join(' ')}' timed out` : errorText(err);
  }
  return {
    ok: false,
    message: `Exec lifecycle hook (${goList(cmd)}) for Container ${goQuote(ctx.container.name)} in Pod ${goQuote(formatPod(ctx.pod))} failed - error: ${error}, message: ${goQuote(output)}`,
  };
}

async function runHttp(action: V1HTTPGetAction, ctx: HandlerContext, scale: number): Promise<HandlerResult> {
  const fail = (error: string): HandlerResult => ({
    ok: false,
    message: `HTTP lifecycle hook (${action.path ?? ''}) for Container ${goQuote(ctx.container.name)} in Pod ${goQuote(formatPod(ctx.pod))} failed - error: ${error}`,
  });
  if (!action.host && !ctx.podIP) return fail('failed to find networking container: the pod has no IP');
  let request;
  try {
    request = httpGetRequest(action, ctx.container, ctx.podIP, 'lifecycle', ctx.userAgentVersion);
  } catch (err) {
    return fail(errorText(err));
  }
  const timeoutMs = ctx.timeoutSeconds !== undefined && ctx.timeoutSeconds > 0 ? ctx.timeoutSeconds * 1000 * scale : NO_DEADLINE_MS;
  const opts = { timeoutMs, followNonLocalRedirects: true, ...(ctx.signal ? { signal: ctx.signal } : {}) };
  try {
    await httpGet(request, opts);
    return { ok: true };
  } catch (err) {
    if (!(err instanceof HttpGetError) || !err.httpResponseToHttps) return fail(errorText(err));
    // The kubelet's fallback: an HTTPS hook answered in plain HTTP is retried over HTTP.
    const url = new URL(request.url);
    url.protocol = 'http:';
    const headers = Object.fromEntries(Object.entries(request.headers).filter(([k]) => k.toLowerCase() !== 'authorization'));
    try {
      await httpGet({ url, headers }, opts);
      return { ok: true };
    } catch {
      return fail(errorText(err));
    }
  }
}

async function runSleep(action: V1SleepAction, ctx: HandlerContext, scale: number): Promise<HandlerResult> {
  try {
    await sleep(Math.max(0, action.seconds) * 1000 * scale, ctx.signal);
    return { ok: true };
  } catch {
    return {
      ok: false,
      message: `Sleep lifecycle hook (${action.seconds}) for Container ${goQuote(ctx.container.name)} in Pod ${goQuote(formatPod(ctx.pod))} failed - error: container terminated before sleep hook finished`,
    };
  }
}

/**
 * Runs one lifecycle handler (the kubelet's `HandlerRunner.Run`). Never throws: a failure is
 * `{ ok: false, message }` with the kubelet's text. A handler with no supported action (none, or
 * only `tcpSocket`) fails with `Cannot run handler: invalid handler: ...`.
 */
export async function runHandler(handler: V1LifecycleHandler, ctx: HandlerContext): Promise<HandlerResult> {
  const scale = ctx.timeScale ?? 1;
  if (handler.exec) return runExec(handler.exec, ctx, scale);
  if (handler.httpGet) return runHttp(handler.httpGet, ctx, scale);
  if (handler.sleep) return runSleep(handler.sleep, ctx, scale);
  return { ok: false, message: `Cannot run handler: invalid handler: ${JSON.stringify(handler)}` };
}

// ---------------------------------------------------------------------------------------------
// postStart / preStop as the runtime manager runs them
// ---------------------------------------------------------------------------------------------

/** An event a failed hook records on the pod (the container's reference). */
export interface HookEvent {
  readonly type: 'Warning';
  readonly reason: typeof FAILED_POST_START_HOOK | typeof FAILED_PRE_STOP_HOOK;
  readonly message: 'PostStartHook failed' | 'PreStopHook failed';
}

/** The outcome of {@link runPostStartHook}. */
export type PostStartOutcome =
  | { readonly ok: true }
  | {
      readonly ok: false;
      /** The detailed message: the container's waiting message (reason {@link POST_START_HOOK_ERROR}). */
      readonly message: string;
      /** The event to record. */
      readonly event: HookEvent;
      /** The waiting reason to report until the container is restarted. */
      readonly reason: typeof POST_START_HOOK_ERROR;
    };

/**
 * Runs a container's postStart hook right after it started. On failure the caller must record
 * {@link PostStartOutcome.event}, kill the container and report it waiting with
 * `PostStartHookError` and the message.
 */
export async function runPostStartHook(handler: V1LifecycleHandler, ctx: HandlerContext): Promise<PostStartOutcome> {
  const res = await runHandler(handler, ctx);
  if (res.ok) return res;
  return { ok: false, message: res.message, reason: POST_START_HOOK_ERROR, event: { type: 'Warning', reason: FAILED_POST_START_HOOK, message: 'PostStartHook failed' } };
}

/** The outcome of {@link runPreStopHook}. */
export interface PreStopOutcome {
  /** The grace left for `StopContainer` (whole seconds, at least {@link MINIMUM_GRACE_PERIOD_SECONDS}). */
  readonly gracePeriodSeconds: number;
  /** The hook finished within the grace period (successfully or not). */
  readonly completed: boolean;
  /** The hook failed: its message and the event to record. */
  readonly failure?: { readonly message: string; readonly event: HookEvent };
}

/**
 * Runs a container's preStop hook before it is stopped, waiting at most `gracePeriodSeconds`
 * (the kubelet's `executePreStopHook`): the hook gets that long (exec timeout, HTTP deadline, sleep
 * interrupted when it runs out), and the grace left afterwards (the period minus the whole seconds
 * the hook took) goes to `StopContainer`, never less than {@link MINIMUM_GRACE_PERIOD_SECONDS}.
 * With no grace period the hook is skipped, as the kubelet skips it.
 */
export async function runPreStopHook(handler: V1LifecycleHandler, ctx: Omit<HandlerContext, 'timeoutSeconds'>, gracePeriodSeconds: number): Promise<PreStopOutcome> {
  const scale = ctx.timeScale ?? 1;
  const grace = Math.floor(gracePeriodSeconds);
  if (!(grace > 0)) return { gracePeriodSeconds: Math.max(grace, MINIMUM_GRACE_PERIOD_SECONDS), completed: false };
  const controller = new AbortController();
  const onOuterAbort = (): void => controller.abort();
  ctx.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const start = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<'expired'>((resolve) => {
    timer = setTimeout(() => resolve('expired'), grace * 1000 * scale);
  });
  try {
    const hook = runHandler(handler, { ...ctx, timeoutSeconds: grace, signal: controller.signal });
    const first = await Promise.race([hook, expired]);
    const elapsedSeconds = Math.floor((Date.now() - start) / (1000 * scale));
    const left = Math.max(grace - elapsedSeconds, MINIMUM_GRACE_PERIOD_SECONDS);
    if (first === 'expired') {
      controller.abort();
      return { gracePeriodSeconds: MINIMUM_GRACE_PERIOD_SECONDS, completed: false };
    }
    if (first.ok) return { gracePeriodSeconds: left, completed: true };
    return { gracePeriodSeconds: left, completed: true, failure: { message: first.message, event: { type: 'Warning', reason: FAILED_PRE_STOP_HOOK, message: 'PreStopHook failed' } } };
  } finally {
    clearTimeout(timer);
    ctx.signal?.removeEventListener('abort', onOuterAbort);
  }
}
