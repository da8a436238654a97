import { readFileSync } from 'node:fs';

/** Latency samples in milliseconds, summarised the way the benchmark prints them. */
export class Samples {
  private readonly values: number[] = [];

  add(ms: number): void {
    this.values.push(ms);
  }

  get count(): number {
    return this.values.length;
  }

  /** The q-quantile (0..1), nearest rank. */
  quantile(q: number): number {
    if (this.values.length === 0) return NaN;
    const sorted = [...this.values].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
  }
}

/** Result of one throughput phase. */
export interface PhaseResult {
  readonly opsPerSecond: number;
  readonly p50: number;
  readonly p99: number;
}

/**
 * Runs `total` operations with `concurrency` workers, timing each; resolves to ops/s and the
 * latency quantiles. `op(i)` gets the operation's index.
 */
export async function runPhase(total: number, concurrency: number, op: (i: number) => Promise<unknown>): Promise<PhaseResult> {
  const samples = new Samples();
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, total) }, async () => {
      for (;;) {
        const i = next++;
        if (i >= total) return;
        const t0 = process.hrtime.bigint();
        await op(i);
        samples.add(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { opsPerSecond: total / seconds, p50: samples.quantile(0.5), p99: samples.quantile(0.99) };
}

/** Resident and peak resident memory of a process, in MiB, from /proc. */
export function rssOf(pid: number | undefined): { rss: number; peak: number } {
  if (!pid) return { rss: NaN, peak: NaN };
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? NaN);
    return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
  } catch {
    return { rss: NaN, peak: NaN };
  }
}
