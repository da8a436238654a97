import type { Watch, WatchEvent } from '@kubernel/core';

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every 10 ms until it holds; rejects naming `what` after `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** Collects a watch's events in the background; `error` resolves to what ended it (undefined when stopped). */
export function collect(watch: Watch): { events: WatchEvent[]; error: Promise<unknown> } {
  const events: WatchEvent[] = [];
  const error = (async () => {
    try {
      for await (const e of watch) events.push(e);
    } catch (err) {
      return err;
    }
    return undefined;
  })();
  return { events, error };
}
