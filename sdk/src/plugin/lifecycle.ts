/**
 * Resolves when `signal` aborts (at once if it already has). Never rejects.
 *
 * The usual last line of a provider's `start`: `provide(impl); await untilAborted(signal);`.
 */
export function untilAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/**
 * Waits `ms` milliseconds unless `signal` aborts first. Resolves `true` when the time elapsed and
 * `false` when aborted; never rejects and leaves no timer behind either way.
 */
export function delay(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
