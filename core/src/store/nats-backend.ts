/**
 * The only module that imports the `nats` client: everything the store needs from NATS JetStream,
 * in the store's own terms. Moving to the `@nats-io/*` packages is a change to this file alone.
 *
 * The bucket is a regular JetStream KV bucket (stream `KV_<bucket>`, subjects `$KV.<bucket>.>`), so
 * NATS tooling can inspect it. Writes are JetStream publishes to the key's subject with the
 * `Nats-Expected-Last-Subject-Sequence` header (what KV's create/update do), which returns the
 * stream sequence: the revision. Reads of one key ask the stream leader (not a replica), so they
 * are never stale.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from '@kubernel/sdk';
import {
  connect,
  createInbox,
  credsAuthenticator,
  DeliverPolicy,
  Events,
  headers,
  StorageType,
  type ConnectionOptions,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
} from 'nats';

/** Connection and bucket settings. */
export interface BackendOptions {
  /** Server URLs (`nats://host:port`); several for a cluster. */
  readonly servers: readonly string[];
  readonly token?: string;
  readonly user?: string;
  readonly password?: string;
  /** A NATS `.creds` file (JWT + nkey). */
  readonly credsFile?: string;
  readonly tls?: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string };
  /** KV bucket name. */
  readonly bucket: string;
  /** Bucket replicas: 1, or 3/5 on a cluster (an acknowledged write is then on a quorum). */
  readonly replicas: number;
  /** Revisions kept per key (1..64). */
  readonly history: number;
  /** Connection name shown by the server. */
  readonly name?: string;
  readonly logger: Logger;
  /** Called on connection state changes. */
  readonly onConnectionState?: (connected: boolean) => void;
}

/** One entry of the bucket. */
export interface BackendRecord {
  /** The stream sequence: the store revision. */
  readonly revision: number;
  /** The NATS KV key (subject without the bucket prefix). */
  readonly key: string;
  readonly op: 'PUT' | 'DEL';
  readonly data: Uint8Array;
}

/** An entry seen by a tail, with the consumer's view of what is left. */
export interface TailRecord extends BackendRecord {
  /** Messages the consumer has not delivered yet. */
  readonly pending: number;
  /** When the server stored it (ms since the epoch). */
  readonly storedAtMs: number;
}

/** A running tail; stop() ends it. */
export interface Tail {
  stop(): void;
  /** Resolves when the tail ends (stopped, or failed: the error is the rejection). */
  readonly done: Promise<void>;
}

/** The expected revision did not match (JetStream error 10071). */
export class WrongRevisionError extends Error {
  override readonly name = 'WrongRevisionError';
}

/**
 * NATS did not answer (timeout, no responders, connection down). For a write, whether it was
 * applied is unknown.
 */
export class BackendUnavailableError extends Error {
  override readonly name = 'BackendUnavailableError';
}

/** Rethrows NATS client errors that are not JetStream API answers as {@link BackendUnavailableError}. */
function unavailable(err: unknown): never {
  const e = err as { api_error?: unknown; code?: string; message?: string };
  if (err instanceof Error && e.api_error === undefined && typeof e.code === 'string') {
    throw new BackendUnavailableError(`NATS is unavailable: ${e.message ?? e.code}`, { cause: err });
  }
  throw err;
}

/** A JetStream API error answer that is not one the store handles itself. */
export class JetStreamApiError extends Error {
  override readonly name = 'JetStreamApiError';
  constructor(
    readonly code: number,
    readonly errCode: number,
    description: string,
  ) {
    super(`JetStream API error ${code} (${errCode}): ${description}`);
  }
}

/**
 * Request/reply for the write path and the revision barrier, leaner than the client's own
 * request() (which builds an Error with a stack trace for every completed request, arms a timer
 * per request and flushes the socket per request): one wildcard inbox subscription, one sweep
 * timer for deadlines, and requests issued in the same event-loop turn leave in one socket write.
 */
class Requester {
  private readonly prefix: string;
  private readonly pending = new Map<number, { resolve: (data: Uint8Array) => void; reject: (err: Error) => void; deadline: number }>();
  private queued: Array<{ subject: string; data: Uint8Array; headers: MsgHdrs | undefined; id: number }> = [];
  private scheduled = false;
  private nextId = 1;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs: number,
  ) {
    this.prefix = `${createInbox()}.`;
    nc.subscribe(`${this.prefix}*`, { callback: (err, msg) => (err ? undefined : this.onReply(msg)) });
    this.sweeper = setInterval(() => this.sweep(), 250);
    this.sweeper.unref();
  }

  /** Sends `data` to `subject` and resolves with the reply's payload. */
  request(subject: string, data: Uint8Array, hdrs?: MsgHdrs): Promise<Uint8Array> {
    const id = this.nextId++;
    return new Promise<Uint8Array>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, deadline: Date.now() + this.timeoutMs });
      this.queued.push({ subject, data, headers: hdrs, id });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(new BackendUnavailableError('NATS is unavailable: the connection is closing'));
    }
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queued;
    this.queued = [];
    for (const q of batch) {
      try {
        this.nc.publish(q.subject, q.data, { reply: `${this.prefix}${q.id}`, ...(q.headers ? { headers: q.headers } : {}) });
      } catch (err) {
        this.settle(q.id)?.reject(new BackendUnavailableError(`NATS is unavailable: ${(err as Error).message}`, { cause: err }));
      }
    }
  }

  private settle(id: number): { resolve: (data: Uint8Array) => void; reject: (err: Error) => void } | undefined {
    const p = this.pending.get(id);
    if (p) this.pending.delete(id);
    return p;
  }

  private onReply(msg: Msg): void {
    const p = this.settle(Number(msg.subject.slice(this.prefix.length)));
    if (!p) return;
    if (msg.headers?.hasError) {
      const noResponders = msg.headers.code === 503;
      p.reject(new BackendUnavailableError(`NATS is unavailable: ${noResponders ? 'no responders (is JetStream enabled and the bucket present?)' : `${msg.headers.code} ${msg.headers.description}`}`));
      return;
    }
    p.resolve(msg.data);
  }

  private sweep(): void {
    if (this.pending.size === 0) return;
    const now = Date.now();
    for (const [id, p] of this.pending) {
      if (p.deadline > now) continue;
      this.pending.delete(id);
      p.reject(new BackendUnavailableError(`NATS is unavailable: no answer within ${this.timeoutMs} ms`));
    }
  }
}

/** A JetStream API answer: the JSON body, or its error as an exception. */
function apiAnswer<T>(data: Uint8Array): T {
  const answer = JSON.parse(textDecoder.decode(data)) as T & { error?: { code: number; err_code: number; description: string } };
  if (answer.error) {
    if (answer.error.err_code === WRONG_LAST_SEQUENCE) throw new WrongRevisionError(answer.error.description);
    throw new JetStreamApiError(answer.error.code, answer.error.err_code, answer.error.description);
  }
  return answer;
}

const textDecoder = new TextDecoder();
const EMPTY = new Uint8Array(0);
const WRONG_LAST_SEQUENCE = 10071;
const STREAM_NAME_IN_USE = 10058;
const OP_HEADER = 'KV-Operation';
const EXPECTED_LAST_SUBJECT_SEQUENCE = 'Nats-Expected-Last-Subject-Sequence';
const REQUEST_TIMEOUT_MS = 10_000;

function apiErrorCode(err: unknown): number | undefined {
  return (err as { api_error?: { err_code?: number } })?.api_error?.err_code;
}

/** NATS JetStream, reduced to what the store uses. */
export class NatsBackend {
  private readonly stream: string;
  private readonly subjectPrefix: string;
  private readonly streamInfoSubject: string;
  private readonly requests: Requester;
  /** Kept by the connection's status events (true from connect until a disconnect). */
  private connected = true;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly options: BackendOptions,
  ) {
    this.stream = `KV_${options.bucket}`;
    this.subjectPrefix = `$KV.${options.bucket}.`;
    this.streamInfoSubject = `$JS.API.STREAM.INFO.${this.stream}`;
    this.requests = new Requester(nc, REQUEST_TIMEOUT_MS);
  }

  /** Connects (retrying until the servers answer) and creates or binds the bucket. */
  static async connect(options: BackendOptions): Promise<NatsBackend> {
    const log = options.logger;
    const co: ConnectionOptions = {
      servers: [...options.servers],
      name: options.name ?? 'kubernel',
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      waitOnFirstConnect: true,
      timeout: 10_000,
      pingInterval: 10_000,
      // No stack capture per request: it cost ~20% of the client's CPU per write.
      noAsyncTraces: true,
      ...(options.token ? { token: options.token } : {}),
      ...(options.user ? { user: options.user, pass: options.password ?? '' } : {}),
      ...(options.credsFile ? { authenticator: credsAuthenticator(readFileSync(options.credsFile)) } : {}),
      ...(options.tls ? { tls: { ...options.tls } } : {}),
    };
    const nc = await connect(co);
    let backend: NatsBackend | undefined;
    const setConnected = (up: boolean): void => {
      if (backend) backend.connected = up;
      options.onConnectionState?.(up);
    };
    setConnected(true);
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === Events.Disconnect) {
          log.warn({ server: s.data }, 'disconnected from NATS; reconnecting');
          setConnected(false);
        } else if (s.type === Events.Reconnect) {
          log.info({ server: s.data }, 'reconnected to NATS');
          setConnected(true);
        } else if (s.type === Events.Error) {
          log.error({ err: s.data }, 'NATS connection error');
        }
      }
    })();
    const js = nc.jetstream({ timeout: 10_000 });
    // A cluster that is still electing its JetStream leader refuses requests for a while.
    for (let attempt = 1; ; attempt++) {
      try {
        const jsm = await nc.jetstreamManager({ timeout: 10_000 });
        backend = new NatsBackend(nc, js, jsm, options);
        await backend.ensureBucket();
        return backend;
      } catch (err) {
        if (attempt >= 60) {
          await nc.close();
          throw err;
        }
        log.warn({ attempt }, `creating the bucket failed (${(err as Error).message}); retrying`);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }

  private async ensureBucket(): Promise<void> {
    const o = this.options;
    try {
      await this.js.views.kv(o.bucket, { history: o.history, replicas: o.replicas, storage: StorageType.File });
    } catch (err) {
      if (apiErrorCode(err) !== STREAM_NAME_IN_USE) throw err;
      const info = await this.jsm.streams.info(this.stream);
      const differs = info.config.max_msgs_per_subject !== o.history || info.config.num_replicas !== o.replicas;
      if (differs) {
        o.logger.warn(
          { history: info.config.max_msgs_per_subject, replicas: info.config.num_replicas },
          `bucket ${o.bucket} exists with history ${info.config.max_msgs_per_subject} and ${info.config.num_replicas} replica(s); using it as it is (asked: history ${o.history}, ${o.replicas} replica(s))`,
        );
      }
    }
  }

  /**
   * Writes `data` under `key`. `expected` is the revision the key must be at (0: must have no
   * entry); undefined writes unconditionally. Resolves to the new revision.
   * @throws {WrongRevisionError} when `expected` does not match
   */
  async put(key: string, data: Uint8Array, expected?: number): Promise<number> {
    return this.publish(key, data, expected, undefined);
  }

  /** Writes a delete marker (tombstone) for `key`; see {@link put} for `expected`. */
  async tombstone(key: string, expected?: number): Promise<number> {
    return this.publish(key, new Uint8Array(0), expected, 'DEL');
  }

  private async publish(key: string, data: Uint8Array, expected: number | undefined, op: 'DEL' | undefined): Promise<number> {
    const h = expected !== undefined || op ? headers() : undefined;
    if (op) h!.set(OP_HEADER, op);
    if (expected !== undefined) h!.set(EXPECTED_LAST_SUBJECT_SEQUENCE, String(expected));
    const ack = apiAnswer<{ seq: number }>(await this.requests.request(this.subjectPrefix + key, data, h));
    return ack.seq;
  }

  /** The latest entry of `key` (a tombstone included), read from the stream leader. */
  async last(key: string): Promise<BackendRecord | undefined> {
    try {
      const sm = await this.jsm.streams.getMessage(this.stream, { last_by_subj: this.subjectPrefix + key });
      const op = sm.header?.get(OP_HEADER);
      return { revision: sm.seq, key, op: op === 'DEL' || op === 'PURGE' ? 'DEL' : 'PUT', data: sm.data };
    } catch (err) {
      if ((err as { code?: string }).code === '404' || /no message found/i.test((err as Error).message)) return undefined;
      return unavailable(err);
    }
  }

  /** The bucket's current revision (its stream's last sequence), from the stream leader. */
  async lastRevision(): Promise<number> {
    const info = apiAnswer<{ state: { last_seq: number } }>(await this.requests.request(this.streamInfoSubject, EMPTY));
    return info.state.last_seq;
  }

  /** How many entries the bucket holds and its first and last revisions. */
  async streamState(): Promise<{ messages: number; firstRevision: number; lastRevision: number }> {
    const { state } = await this.jsm.streams.info(this.stream).catch(unavailable);
    return { messages: state.messages, firstRevision: state.first_seq, lastRevision: state.last_seq };
  }

  /**
   * Streams the bucket's entries matching `filter` (a subject filter without the bucket prefix,
   * `>` for all) to `onRecord`, in revision order, through an ordered consumer that survives
   * reconnects. `from: 'latest-per-key'` first delivers each key's latest entry, then every new one;
   * a number delivers every entry from that revision on.
   */
  async tail(filter: string, from: 'latest-per-key' | number, onRecord: (record: TailRecord) => void): Promise<Tail> {
    const consumer = await this.js.consumers.get(this.stream, {
      filterSubjects: this.subjectPrefix + filter,
      ...(from === 'latest-per-key'
        ? { deliver_policy: DeliverPolicy.LastPerSubject }
        : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: Math.max(1, from) }),
    });
    const messages: ConsumerMessages = await consumer.consume({ max_messages: 2048, idle_heartbeat: 1000 });
    const prefixLength = this.subjectPrefix.length;
    const done = (async () => {
      for await (const m of messages) {
        const op = m.headers?.get(OP_HEADER);
        onRecord({
          revision: m.seq,
          key: m.subject.slice(prefixLength),
          op: op === 'DEL' || op === 'PURGE' ? 'DEL' : 'PUT',
          data: m.data,
          pending: m.info.pending,
          storedAtMs: Math.floor(m.info.timestampNanos / 1e6),
        });
      }
    })();
    return { stop: () => void messages.stop(), done };
  }

  /** Removes the entries of `key` older than `revision` (compaction of a deleted key's history). */
  async purgeBefore(key: string, revision: number): Promise<number> {
    const r = await this.jsm.streams.purge(this.stream, { filter: this.subjectPrefix + key, seq: revision }).catch(unavailable);
    return r.purged;
  }

  /** Whether the connection is up now. */
  isConnected(): boolean {
    return this.connected && !this.nc.isClosed();
  }

  /** Drains and closes the connection. */
  async close(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.drain().catch(() => this.nc.close());
    this.requests.close();
  }
}
