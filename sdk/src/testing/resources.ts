import { createHook } from 'node:async_hooks';

/**
 * The async resource types that outlive a call unless released: timers, immediates, sockets,
 * servers, child processes, signal and file watchers. Promises and one-shot requests are not
 * tracked.
 */
const TRACKED = new Set([
  'Timeout',
  'Immediate',
  'TCPWRAP',
  'TCPSERVERWRAP',
  'PIPEWRAP',
  'PIPESERVERWRAP',
  'UDPWRAP',
  'PROCESSWRAP',
  'SIGNALWRAP',
  'FSEVENTWRAP',
  'STATWATCHER',
  'TTYWRAP',
  'HTTP2SESSION',
  'Http2Session',
  'WORKER',
  'MESSAGEPORT',
]);

/** Watches the resources created from now on; see {@link trackResources}. */
export interface ResourceTracker {
  /** What is still alive, as `Type xN` strings (empty when everything was released). */
  alive(): string[];
  /**
   * Waits up to `withinMs` for every tracked resource to be released (close callbacks get event
   * loop turns to run), stops tracking, and returns what is still alive.
   */
  settle(withinMs?: number): Promise<string[]>;
  /** Where each resource still alive was created (stack traces), to say what leaked. */
  origins(): string[];
}

/**
 * Starts tracking the resources created from now on (through `async_hooks`), including unref'd
 * timers and sockets that `process.getActiveResourcesInfo()` does not show. Used by the contract
 * suites to prove a plugin leaves nothing behind once stopped.
 */
export function trackResources(): ResourceTracker {
  const live = new Map<number, string>();
  const stacks = new Map<number, string>();
  let lastInit = -1;
  const hook = createHook({
    init(asyncId, type) {
      lastInit = asyncId;
      if (!TRACKED.has(type)) return;
      live.set(asyncId, type);
      const holder: { stack?: string } = {};
      Error.captureStackTrace(holder);
      stacks.set(asyncId, `${type}${(holder.stack ?? '').replace(/^Error/, '').split('\n').filter((l) => !l.includes('node:internal/async_hooks') && !l.includes('testing/resources')).slice(0, 12).join('\n')}`);
    },
    destroy(asyncId) {
      live.delete(asyncId);
      stacks.delete(asyncId);
    },
  }).enable();
  const alive = (): string[] => {
    const counts = new Map<string, number>();
    for (const type of live.values()) counts.set(type, (counts.get(type) ?? 0) + 1);
    return [...counts].map(([type, n]) => `${type} x${n}`);
  };
  /** Waits for `schedule` to call back, without counting the timer it creates (init fires synchronously). */
  const untracked = (schedule: (resolve: () => void) => void): Promise<void> =>
    new Promise<void>((resolve) => {
      const before = lastInit;
      schedule(resolve);
      if (lastInit !== before) {
        live.delete(lastInit);
        stacks.delete(lastInit);
      }
    });
  return {
    alive,
    origins: () => [...live.keys()].map((id) => stacks.get(id) ?? live.get(id)!),
    async settle(withinMs = 1000) {
      const deadline = Date.now() + withinMs;
      try {
        for (;;) {
          await untracked((resolve) => setImmediate(resolve));
          if (live.size === 0 || Date.now() >= deadline) return alive();
          await untracked((resolve) => setTimeout(resolve, 5));
        }
      } finally {
        hook.disable();
      }
    },
  };
}
