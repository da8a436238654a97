import { pino, type DestinationStream, type Logger } from 'pino';

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** pino level name; `info` by default. */
  readonly level?: string;
  /** Where JSON lines go; standard error by default (as Kubernetes components log). */
  readonly destination?: DestinationStream;
}

/** The process's root logger: pino JSON lines with a `component` field set by each part. */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    { level: options.level ?? 'info', base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    options.destination ?? pino.destination({ dest: 2, sync: true }),
  );
}
