/**
 * Container logs in the CRI format, as the kubelet serves them for `kubectl logs`.
 *
 * A CRI log file has one line per write of the container: `<RFC3339Nano time> <stdout|stderr>
 * <F|P> <content>`; `P` marks a partial line (the runtime split a long line), continued by the
 * next line of the same stream, up to one tagged `F`. What the client gets is the content only:
 * partial lines joined, a newline after each full line, optionally prefixed with the line's time
 * (`--timestamps`, RFC3339Nano as Go prints it, in UTC).
 *
 * Options follow `PodLogOptions`: `tailLines` (the last N lines), `sinceTime` / `sinceSeconds`
 * (lines at or after), `timestamps`, `limitBytes` (stop after that many bytes), `follow` (keep
 * reading as the file grows; a rotated file — renamed away and recreated, or truncated — is
 * reopened from its start; the stream ends when the caller's `isRunning` says the container
 * stopped and the file holds nothing more, or when the signal aborts).
 *
 * @module
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';

/** One parsed line of a CRI log file. */
export interface CriLogLine {
  /** The time as written (RFC3339Nano). */
  readonly timestamp: string;
  /** Nanoseconds since the epoch. */
  readonly nanos: bigint;
  readonly stream: 'stdout' | 'stderr';
  /** True for a `P` (partial) line. */
  readonly partial: boolean;
  readonly content: Buffer;
}

const TIME_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

/** Nanoseconds since the epoch of an RFC 3339 time with up to nine fraction digits; undefined when malformed. */
export function parseRfc3339Nano(text: string): bigint | undefined {
  const m = TIME_RE.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(ms)) return undefined;
  let offsetMinutes = 0;
  if (zone !== 'Z') {
    const sign = zone!.startsWith('-') ? -1 : 1;
    offsetMinutes = sign * (Number(zone!.slice(1, 3)) * 60 + Number(zone!.slice(4, 6)));
  }
  const fraction = BigInt((frac ?? '').padEnd(9, '0') || '0');
  return (BigInt(ms) - BigInt(offsetMinutes) * 60_000n) * 1_000_000n + fraction;
}

/** RFC3339Nano in UTC as Go formats it (trailing zeros of the fraction dropped). */
export function formatRfc3339Nano(nanos: bigint): string {
  const ms = nanos / 1_000_000n;
  const base = new Date(Number(ms - (nanos < 0n && nanos % 1_000_000n !== 0n ? 1n : 0n))).toISOString().slice(0, 19);
  let frac = (((nanos % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  if (frac) frac = `.${frac}`;
  return `${base}${frac}Z`;
}

/** Parses one line (without its newline); undefined when it is not in the CRI format. */
export function parseCriLogLine(line: Buffer): CriLogLine | undefined {
  const s1 = line.indexOf(0x20);
  if (s1 < 0) return undefined;
  const s2 = line.indexOf(0x20, s1 + 1);
  if (s2 < 0) return undefined;
  const timestamp = line.subarray(0, s1).toString('latin1');
  const stream = line.subarray(s1 + 1, s2).toString('latin1');
  if (stream !== 'stdout' && stream !== 'stderr') return undefined;
  const nanos = parseRfc3339Nano(timestamp);
  if (nanos === undefined) return undefined;
  // `<tag> <content>`; the tag is F or P (possibly more `:`-separated tags in the future).
  const s3 = line.indexOf(0x20, s2 + 1);
  const tag = (s3 < 0 ? line.subarray(s2 + 1) : line.subarray(s2 + 1, s3)).toString('latin1');
  const content = s3 < 0 ? Buffer.alloc(0) : line.subarray(s3 + 1);
  return { timestamp, nanos, stream, partial: tag.split(':')[0] === 'P', content };
}

/** The `PodLogOptions` the kubelet's log reader honours. */
export interface LogOptions {
  readonly follow?: boolean;
  /** The last N lines (after `since` filtering); absent: all. */
  readonly tailLines?: number;
  /** Only lines at or after this time. */
  readonly sinceTime?: Date;
  /** Only lines of the last N seconds (taken when both since options are given: the later wins, as the kubelet). */
  readonly sinceSeconds?: number;
  readonly timestamps?: boolean;
  /** Stop after this many bytes of output. */
  readonly limitBytes?: number;
  /** Which streams; both by default. */
  readonly stream?: 'All' | 'Stdout' | 'Stderr';
}

/** What {@link readContainerLogs} reads. */
export interface ReadLogsOptions extends LogOptions {
  /** The container's log file. */
  readonly path: string;
  /** Ends a followed stream. */
  readonly signal?: AbortSignal;
  /** Whether the container may still write (follow ends once it is false and the file is drained). */
  readonly isRunning?: () => boolean | Promise<boolean>;
  /** How often a followed file is checked for growth or rotation; 100 ms by default. */
  readonly pollIntervalMs?: number;
  /** The clock for `sinceSeconds` (ms since the epoch). */
  readonly now?: () => number;
}

/** A joined log entry (partial lines assembled). */
interface Entry {
  readonly nanos: bigint;
  readonly content: Buffer;
  /** False for an unfinished partial line flushed at the end. */
  readonly newline: boolean;
}

/** Thrown when the log file does not exist. */
export class LogFileNotFoundError extends Error {
  override readonly name = 'LogFileNotFoundError';
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** Splits bytes into lines and lines into joined entries. */
class EntryAssembler {
  private rest: Buffer = Buffer.alloc(0);
  private readonly partial = new Map<'stdout' | 'stderr', { nanos: bigint; parts: Buffer[] }>();

  constructor(private readonly wanted: (stream: 'stdout' | 'stderr') => boolean) {}

  push(chunk: Buffer): Entry[] {
    const data = this.rest.length > 0 ? Buffer.concat([this.rest, chunk]) : chunk;
    const out: Entry[] = [];
    let at = 0;
    for (let nl = data.indexOf(0x0a, at); nl >= 0; nl = data.indexOf(0x0a, at)) {
      this.line(data.subarray(at, nl), out);
      at = nl + 1;
    }
    this.rest = Buffer.from(data.subarray(at));
    return out;
  }

  /** Pending partial lines, as entries without a newline (end of a log). */
  flush(): Entry[] {
    const out: Entry[] = [];
    if (this.rest.length > 0) {
      this.line(this.rest, out);
      this.rest = Buffer.alloc(0);
    }
    for (const p of this.partial.values()) out.push({ nanos: p.nanos, content: Buffer.concat(p.parts), newline: false });
    this.partial.clear();
    return out.sort((a, b) => (a.nanos < b.nanos ? -1 : a.nanos > b.nanos ? 1 : 0));
  }

  /** Drops a trailing line fragment (the file was rotated or truncated under it). */
  resetLine(): void {
    this.rest = Buffer.alloc(0);
  }

  private line(raw: Buffer, out: Entry[]): void {
    const line = parseCriLogLine(raw);
    if (!line || !this.wanted(line.stream)) return;
    const pending = this.partial.get(line.stream);
    if (line.partial) {
      if (pending) pending.parts.push(line.content);
      else this.partial.set(line.stream, { nanos: line.nanos, parts: [line.content] });
      return;
    }
    if (pending) {
      this.partial.delete(line.stream);
      out.push({ nanos: pending.nanos, content: Buffer.concat([...pending.parts, line.content]), newline: true });
    } else {
      out.push({ nanos: line.nanos, content: line.content, newline: true });
    }
  }
}

/** Writes to `out`, waiting for drain; false once the consumer is gone. */
async function writeTo(out: Writable, chunk: Buffer, signal?: AbortSignal): Promise<boolean> {
  if (out.destroyed || out.writableEnded) return false;
  if (out.write(chunk)) return true;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      out.off('drain', done);
      out.off('close', done);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    out.on('drain', done);
    out.on('close', done);
    signal?.addEventListener('abort', done, { once: true });
  });
  return !out.destroyed;
}

/**
 * Streams a container's CRI log file to `out` (which it does not end), with the
 * {@link LogOptions}. Resolves when done (not following: at the end of the file; following: the
 * container stopped and the file is drained, the signal aborted, `out` closed, or `limitBytes`).
 * @throws {LogFileNotFoundError} when the file does not exist at the start
 */
export async function readContainerLogs(options: ReadLogsOptions, out: Writable): Promise<void> {
  const { signal } = options;
  const now = options.now ?? Date.now;
  let since: bigint | undefined = options.sinceTime ? BigInt(options.sinceTime.getTime()) * 1_000_000n : undefined;
  if (options.sinceSeconds !== undefined) {
    const s = BigInt(now() - options.sinceSeconds * 1000) * 1_000_000n;
    if (since === undefined || s > since) since = s;
  }
  const stream = options.stream ?? 'All';
  const assembler = new EntryAssembler((s) => stream === 'All' || (stream === 'Stdout' ? s === 'stdout' : s === 'stderr'));
  let budget = options.limitBytes ?? Number.POSITIVE_INFINITY;
  let stopped = false;

  const emit = async (entries: readonly Entry[]): Promise<void> => {
    for (const e of entries) {
      if (stopped) return;
      if (since !== undefined && e.nanos < since) continue;
      const parts = [options.timestamps ? Buffer.from(`${formatRfc3339Nano(e.nanos)} `) : undefined, e.content, e.newline ? Buffer.from('\n') : undefined].filter((x): x is Buffer => x !== undefined);
      let chunk = Buffer.concat(parts);
      if (chunk.length >= budget) {
        chunk = chunk.subarray(0, budget);
        stopped = true;
      }
      budget -= chunk.length;
      if (chunk.length > 0 && !(await writeTo(out, chunk, signal))) stopped = true;
    }
  };

  let file: FileHandle;
  try {
    file = await open(options.path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new LogFileNotFoundError(`the log file ${options.path} does not exist`);
    throw err;
  }
  let ino = (await file.stat()).ino;
  let position = 0;
  const buf = Buffer.allocUnsafe(64 * 1024);

  /** Reads what the open file has past `position`. */
  const drain = async (sink: (entries: Entry[]) => Promise<void>): Promise<void> => {
    for (;;) {
      const { bytesRead } = await file.read(buf, 0, buf.length, position);
      if (bytesRead === 0) return;
      position += bytesRead;
      await sink(assembler.push(Buffer.from(buf.subarray(0, bytesRead))));
      if (stopped || signal?.aborted) return;
    }
  };

  try {
    // The first pass: everything already in the file, keeping only the tail if asked.
    const tail = options.tailLines;
    if (tail !== undefined && tail >= 0) {
      const kept: Entry[] = [];
      await drain(async (entries) => {
        for (const e of entries) {
          if (since !== undefined && e.nanos < since) continue;
          kept.push(e);
          if (kept.length > tail) kept.shift();
        }
      });
      await emit(tail === 0 ? [] : kept);
    } else {
      await drain(emit);
    }
    if (!options.follow) {
      await emit(assembler.flush());
      return;
    }
    // Follow: poll for growth, rotation and the container's end.
    const interval = options.pollIntervalMs ?? 100;
    for (;;) {
      if (stopped || signal?.aborted || out.destroyed) return;
      await drain(emit);
      if (stopped || signal?.aborted) return;
      const current = await stat(options.path).catch(() => undefined);
      if (current && current.ino !== ino) {
        // Rotated: the old file is drained; continue at the start of the new one.
        await file.close();
        file = await open(options.path, 'r');
        ino = (await file.stat()).ino;
        position = 0;
        assembler.resetLine();
        continue;
      }
      if (current && current.size < position) {
        // Truncated in place (copytruncate).
        position = 0;
        assembler.resetLine();
        continue;
      }
      const running = options.isRunning ? await options.isRunning() : true;
      if (!running) {
        await drain(emit);
        await emit(assembler.flush());
        return;
      }
      await sleep(interval, signal);
    }
  } finally {
    await file.close().catch(() => undefined);
  }
}
