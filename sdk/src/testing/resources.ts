/**
 * The process's active resources (timers, sockets, servers, child processes...) as a multiset of
 * type names, from `process.getActiveResourcesInfo()`.
 */
export function activeResources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const name of process.getActiveResourcesInfo()) counts.set(name, (counts.get(name) ?? 0) + 1);
  return counts;
}

/** What `after` holds beyond `before`, as `Type xN` strings; empty when nothing was added. */
export function resourcesAdded(before: Map<string, number>, after: Map<string, number>): string[] {
  const added: string[] = [];
  for (const [name, n] of after) {
    const extra = n - (before.get(name) ?? 0);
    if (extra > 0) added.push(`${name} x${extra}`);
  }
  return added;
}

/**
 * Waits (up to `withinMs`) for the resources added since `before` to be released, polling on
 * `setImmediate` so close callbacks can run. Resolves to what is still added (empty = no leak).
 */
export async function settleResources(before: Map<string, number>, withinMs = 1000): Promise<string[]> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    const added = resourcesAdded(before, activeResources());
    if (added.length === 0 || Date.now() >= deadline) return added;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
