/**
 * The single-shot actions behind probes and lifecycle hooks, as the kubelet's `pkg/probe` runs them:
 * exec through CRI's `ExecSync`, an HTTP(S) GET, a TCP connect and a gRPC health check. Each returns
 * a {@link ProbeOutcome} (`success`, `warning`, `failure`, or `unknown` when the probe itself could not
 * run) with the kubelet's output texts, so events read as Kubernetes users know them
 * (`HTTP probe failed with statuscode: 500`, `dial tcp 10.0.0.5:80: connect: connection refused`,
 * `command 'cat /tmp/healthy' timed out`).
 *
 * @module
 */
import { connect as netConnect, isIPv6 } from 'node:net';
import http from 'node:http';
import https from 'node:https';
import http2 from 'node:http2';
import { isRuntimeError, type ExecSyncResponse } from '@kubernel/sdk';

// ---------------------------------------------------------------------------------------------
// core/v1 shapes
// ---------------------------------------------------------------------------------------------

/** An `IntOrString` port: a number, or a port name (or a number written as a string). */
export type IntOrString = number | string;

/** `core/v1` `ExecAction`. */
export interface V1ExecAction {
  readonly command?: readonly string[];
}

/** `core/v1` `HTTPHeader`. */
export interface V1HTTPHeader {
  readonly name: string;
  readonly value: string;
}

/** `core/v1` `HTTPGetAction`. */
export interface V1HTTPGetAction {
  readonly path?: string;
  readonly port: IntOrString;
  /** Defaults to the pod IP. */
  readonly host?: string;
  /** `HTTP` (default) or `HTTPS` (not verified). */
  readonly scheme?: 'HTTP' | 'HTTPS' | (string & {});
  readonly httpHeaders?: readonly V1HTTPHeader[];
}

/** `core/v1` `TCPSocketAction`. */
export interface V1TCPSocketAction {
  readonly port: IntOrString;
  /** Defaults to the pod IP. */
  readonly host?: string;
}

/** `core/v1` `GRPCAction`. */
export interface V1GRPCAction {
  readonly port: number;
  /** The service name sent in the `HealthCheckRequest` (default empty: the server's overall health). */
  readonly service?: string;
}

/** `core/v1` `ContainerPort`: what named ports resolve against. */
export interface V1ContainerPort {
  readonly name?: string;
  readonly containerPort: number;
  readonly protocol?: string;
}

/** The container fields a probe reads (its named ports). */
export interface ProbeTargetContainer {
  readonly name: string;
  readonly ports?: readonly V1ContainerPort[];
}

// ---------------------------------------------------------------------------------------------
// Outcomes
// ---------------------------------------------------------------------------------------------

/** A probe's verdict: `warning` counts as a success (the kubelet reports it as a `ProbeWarning` event). */
export type ProbeVerdict = 'success' | 'warning' | 'failure' | 'unknown';

/** What one probe run produced: the verdict and its output text. */
export interface ProbeOutcome {
  readonly result: ProbeVerdict;
  /** The output (exec), body or failure text; for `unknown`, the error. */
  readonly output: string;
}

/** The runtime's `ExecSync` (a {@link ContainerRuntime} method bound to its runtime). */
export type ExecSyncFn = (containerId: string, cmd: readonly string[], timeoutSeconds: number) => Promise<ExecSyncResponse>;

/** The most output the kubelet keeps of a probe (`maxReadLength`/`maxRespBodyLength`, 10 KiB). */
export const MAX_PROBE_OUTPUT = 10 * 1024;

/** The kubelet version whose major.minor goes into the probe User-Agent (`kube-probe/1.32`). */
export const PROBE_USER_AGENT_VERSION = '1.32';

const decoder = new TextDecoder();

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** A duration as Go prints it (`1s`, `500ms`, `1m30s`). */
export function goDurationText(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${Number.isInteger(s) ? s : Number(s.toFixed(3))}s`;
  const m = Math.floor(s / 60);
  const rest = s - m * 60;
  return `${m}m${Number.isInteger(rest) ? rest : Number(rest.toFixed(3))}s`;
}

/** `net.JoinHostPort`: brackets around an IPv6 host. */
export function joinHostPort(host: string, port: number): string {
  return isIPv6(host) || host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

// ---------------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------------

/**
 * `probe.ResolveContainerPort`: a number as is; a string as the container port of that name, else
 * as a number written as a string. The port must be within 1..65535.
 *
 * @throws {Error} `port <name> not found` / `strconv.Atoi: parsing "x": invalid syntax`, or
 *   `invalid port number: N`.
 */
export function resolveContainerPort(port: IntOrString, container: ProbeTargetContainer): number {
  let value: number;
  if (typeof port === 'number') {
    value = port;
  } else {
    const named = (container.ports ?? []).find((p) => p.name === port);
    if (named) value = named.containerPort;
    else if (/^[+-]?\d+$/.test(port)) value = Number(port);
    else throw new Error(`strconv.Atoi: parsing ${JSON.stringify(port)}: invalid syntax`);
  }
  if (Number.isInteger(value) && value > 0 && value < 65536) return value;
  throw new Error(`invalid port number: ${value}`);
}

// ---------------------------------------------------------------------------------------------
// exec
// ---------------------------------------------------------------------------------------------

/**
 * Runs `command` in the container with `ExecSync` (timeout in seconds): exit code 0 is `success`,
 * any other `failure` with the command's stdout and stderr (at most 10 KiB);
 * `DeadlineExceeded` is a `failure` `command '<cmd>' timed out`; any other error is `unknown`.
 */
export async function execProbe(execSync: ExecSyncFn, containerId: string, command: readonly string[], timeoutSeconds: number): Promise<ProbeOutcome> {
  try {
    const res = await execSync(containerId, command, timeoutSeconds);
    const output = (decoder.decode(res.stdout) + decoder.decode(res.stderr)).slice(0, MAX_PROBE_OUTPUT);
    return { result: res.exitCode === 0 ? 'success' : 'failure', output };
  } catch (err) {
    if (isRuntimeError(err, 'DeadlineExceeded')) return { result: 'failure', output: `command '${command.join(' ')}' timed out` };
    return { result: 'unknown', output: errorText(err) };
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

/** A prepared HTTP GET (`NewRequestForHTTPGetAction`). */
export interface HttpGetRequest {
  readonly url: URL;
  /** Header name → values, with the kubelet's defaults applied. */
  readonly headers: Readonly<Record<string, string>>;
}

/**
 * Builds the request of an `httpGet` action: scheme (lower-cased, default `http`), host (default
 * `podIP`), the resolved port, the path (with its query); headers from `httpHeaders`, plus
 * `User-Agent: kube-<purpose>/<major.minor>` and `Accept: *\/*` unless given (an empty `Accept`
 * removes it); a `Host` header sets the request's host.
 *
 * @throws {Error} when the port does not resolve or no host is known.
 */
export function httpGetRequest(action: V1HTTPGetAction, container: ProbeTargetContainer, podIP: string | undefined, purpose: 'probe' | 'lifecycle', version = PROBE_USER_AGENT_VERSION): HttpGetRequest {
  const scheme = (action.scheme ?? 'HTTP').toLowerCase() || 'http';
  const host = action.host || podIP;
  if (!host) throw new Error('no host: the pod has no IP yet');
  const port = resolveContainerPort(action.port, container);
  let path = action.path ?? '';
  if (path !== '' && !path.startsWith('/')) path = `/${path}`;
  const url = new URL(`${scheme}://${joinHostPort(host, port)}${path}`);
  const headers: Record<string, string> = {};
  const has = (name: string): string | undefined => Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase());
  for (const h of action.httpHeaders ?? []) {
    const existing = has(h.name);
    if (existing !== undefined) headers[existing] = `${headers[existing]}, ${h.value}`;
    else headers[canonicalHeader(h.name)] = h.value;
  }
  if (has('user-agent') === undefined) headers['User-Agent'] = `kube-${purpose}/${version}`;
  const accept = has('accept');
  if (accept === undefined) headers['Accept'] = '*/*';
  else if (headers[accept] === '') delete headers[accept];
  return { url, headers };
}

/** `textproto.CanonicalMIMEHeaderKey`. */
function canonicalHeader(name: string): string {
  return name
    .split('-')
    .map((p) => (p.length > 0 ? p[0]!.toUpperCase() + p.slice(1).toLowerCase() : p))
    .join('-');
}

/** The response of an HTTP GET: status code and (truncated) body. */
export interface HttpGetResponse {
  readonly statusCode: number;
  readonly body: string;
  readonly location?: string;
}

/** Options of {@link httpGet}. */
export interface HttpGetOptions {
  /** Overall deadline (connect, redirects, body), ms. */
  readonly timeoutMs: number;
  /** Follow redirects to other hosts too (the kubelet never does for probes). Default false. */
  readonly followNonLocalRedirects?: boolean;
  readonly signal?: AbortSignal;
}

/** Thrown by {@link httpGet} with Go's `url.Error` text (`Get "http://...": ...`). */
export class HttpGetError extends Error {
  override readonly name = 'HttpGetError';
  /** The server answered an HTTPS request with plain HTTP. */
  readonly httpResponseToHttps: boolean;
  constructor(message: string, httpResponseToHttps = false) {
    super(message);
    this.httpResponseToHttps = httpResponseToHttps;
  }
}

const MAX_REDIRECTS = 10;

/** Go's text of a dial error (`dial tcp 10.0.0.5:80: connect: connection refused`). */
function dialErrorText(err: NodeJS.ErrnoException, hostPort: string): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return `dial tcp ${hostPort}: connect: connection refused`;
    case 'EHOSTUNREACH':
      return `dial tcp ${hostPort}: connect: no route to host`;
    case 'ENETUNREACH':
      return `dial tcp ${hostPort}: connect: network is unreachable`;
    case 'ECONNRESET':
      return 'read: connection reset by peer';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `dial tcp: lookup ${hostPort.replace(/:\d+$/, '')}: no such host`;
    default:
      return err.message;
  }
}

/** One GET without following redirects. */
function getOnce(url: URL, headers: Readonly<Record<string, string>>, deadline: number, signal: AbortSignal | undefined): Promise<HttpGetResponse> {
  return new Promise((resolve, reject) => {
    const hostPort = url.host;
    const quoted = `Get ${JSON.stringify(url.toString())}`;
    const remaining = Math.max(1, deadline - Date.now());
    const lib = url.protocol === 'https:' ? https : http;
    const reqHeaders: Record<string, string> = { ...headers };
    let settled = false;
    const done = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const req = lib.request(
      {
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port || (url.protocol === 'https:' ? 443 : 80),
        path: `${url.pathname}${url.search}`,
        method: 'GET',
        headers: reqHeaders,
        agent: false,
        ...(url.protocol === 'https:' ? { rejectUnauthorized: false } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size < MAX_PROBE_OUTPUT) chunks.push(chunk);
          size += chunk.length;
        });
        res.on('end', () => {
          const body = Buffer.concat(chunks).subarray(0, MAX_PROBE_OUTPUT).toString('utf8');
          const location = typeof res.headers.location === 'string' ? res.headers.location : undefined;
          done(() => resolve({ statusCode: res.statusCode ?? 0, body, ...(location !== undefined ? { location } : {}) }));
        });
        res.on('error', (err) => done(() => reject(new HttpGetError(`${quoted}: ${errorText(err)}`))));
      },
    );
    const timer = setTimeout(() => {
      done(() => reject(new HttpGetError(`${quoted}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)`)));
      req.destroy();
    }, remaining);
    const onAbort = (): void => {
      done(() => reject(new HttpGetError(`${quoted}: context canceled`)));
      req.destroy();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (err: NodeJS.ErrnoException) => {
      const plain = url.protocol === 'https:' && (err.code === 'ERR_SSL_WRONG_VERSION_NUMBER' || /wrong version number|packet length too long/i.test(err.message));
      if (plain) done(() => reject(new HttpGetError(`${quoted}: http: server gave HTTP response to HTTPS client`, true)));
      else done(() => reject(new HttpGetError(`${quoted}: ${dialErrorText(err, hostPort)}`)));
    });
    req.end();
  });
}

/**
 * An HTTP GET as the kubelet's probe client does it: no keep-alive, TLS without verification,
 * redirects followed up to 10 times but only to the same host (a redirect elsewhere ends with the
 * redirect response itself), one deadline for the whole exchange, body read up to 10 KiB.
 *
 * @throws {HttpGetError} on a transport error, a timeout or too many redirects.
 */
export async function httpGet(request: HttpGetRequest, opts: HttpGetOptions): Promise<HttpGetResponse> {
  const deadline = Date.now() + opts.timeoutMs;
  let url = request.url;
  const firstHost = url.hostname;
  for (let hops = 0; ; hops++) {
    const res = await getOnce(url, request.headers, deadline, opts.signal);
    if (![301, 302, 303, 307, 308].includes(res.statusCode) || res.location === undefined) return res;
    const next = new URL(res.location, url);
    if (!opts.followNonLocalRedirects && next.hostname !== firstHost) return res;
    if (hops + 1 >= MAX_REDIRECTS) throw new HttpGetError(`Get ${JSON.stringify(next.toString())}: stopped after ${MAX_REDIRECTS} redirects`);
    url = next;
  }
}

/**
 * An `httpGet` probe: 200–399 is `success` (a redirect that was not followed is a `warning`:
 * `Probe terminated redirects, Response body: ...`), any other status `failure`
 * `HTTP probe failed with statuscode: N`; transport errors and timeouts are `failure` with Go's
 * error text. An unresolvable port or a missing pod IP is `unknown`.
 */
export async function httpProbe(action: V1HTTPGetAction, container: ProbeTargetContainer, podIP: string | undefined, timeoutMs: number, version = PROBE_USER_AGENT_VERSION): Promise<ProbeOutcome> {
  let request: HttpGetRequest;
  try {
    request = httpGetRequest(action, container, podIP, 'probe', version);
  } catch (err) {
    return { result: 'unknown', output: errorText(err) };
  }
  try {
    const res = await httpGet(request, { timeoutMs });
    if (res.statusCode >= 200 && res.statusCode < 400) {
      if (res.statusCode >= 300) return { result: 'warning', output: `Probe terminated redirects, Response body: ${res.body}` };
      return { result: 'success', output: res.body };
    }
    return { result: 'failure', output: `HTTP probe failed with statuscode: ${res.statusCode}` };
  } catch (err) {
    return { result: 'failure', output: errorText(err) };
  }
}

// ---------------------------------------------------------------------------------------------
// TCP
// ---------------------------------------------------------------------------------------------

/**
 * A `tcpSocket` probe: `success` when a connection opens within the timeout (it is closed at
 * once), else `failure` with Go's dial error (`dial tcp 10.0.0.5:80: connect: connection refused`,
 * `dial tcp 10.0.0.5:80: i/o timeout`). An unresolvable port or no host is `unknown`.
 */
export function tcpProbe(action: V1TCPSocketAction, container: ProbeTargetContainer, podIP: string | undefined, timeoutMs: number): Promise<ProbeOutcome> {
  let port: number;
  const host = action.host || podIP;
  try {
    port = resolveContainerPort(action.port, container);
    if (!host) throw new Error('no host: the pod has no IP yet');
  } catch (err) {
    return Promise.resolve({ result: 'unknown', output: errorText(err) });
  }
  const hostPort = joinHostPort(host, port);
  return new Promise((resolve) => {
    const socket = netConnect({ host, port });
    let settled = false;
    const finish = (outcome: ProbeOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ result: 'failure', output: `dial tcp ${hostPort}: i/o timeout` }), timeoutMs);
    socket.once('connect', () => finish({ result: 'success', output: '' }));
    socket.once('error', (err: NodeJS.ErrnoException) => finish({ result: 'failure', output: dialErrorText(err, hostPort) }));
  });
}

// ---------------------------------------------------------------------------------------------
// gRPC health checking (grpc.health.v1.Health/Check over cleartext HTTP/2)
// ---------------------------------------------------------------------------------------------

/** `grpc.health.v1.HealthCheckResponse.ServingStatus` names by number. */
const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

/** Encodes `HealthCheckRequest { string service = 1; }` in a gRPC length-prefixed frame. */
export function encodeHealthCheckRequest(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  const body = name.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a]), varint(name.length), name]);
  const frame = Buffer.alloc(5 + body.length);
  frame.writeUInt8(0, 0);
  frame.writeUInt32BE(body.length, 1);
  body.copy(frame, 5);
  return frame;
}

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return Buffer.from(out);
}

/** Decodes the `status` (field 1, varint) of a `HealthCheckResponse` message body; 0 when absent. */
export function decodeHealthCheckStatus(body: Buffer): number {
  let i = 0;
  let status = 0;
  const readVarint = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (i >= body.length) throw new Error('truncated varint');
      const b = body[i++]!;
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
      shift += 7;
    }
  };
  while (i < body.length) {
    const key = readVarint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) {
      const v = readVarint();
      if (field === 1) status = v;
    } else if (wire === 2) {
      const length = readVarint();
      i += length;
    } else if (wire === 1) {
      i += 8;
    } else if (wire === 5) {
      i += 4;
    } else {
      throw new Error(`unsupported wire type ${wire}`);
    }
  }
  return status;
}

/**
 * A `grpc` probe: calls `grpc.health.v1.Health/Check` on `podIP:port` over cleartext HTTP/2.
 * `SERVING` is `success` (`service healthy`); any other status is `failure`
 * `service unhealthy (responded with "NOT_SERVING")`; `UNIMPLEMENTED` is `failure` `this server
 * does not implement the grpc health protocol (grpc.health.v1.Health): ...`; failing to connect is
 * `failure` `timeout: failed to connect service "host:port" within 1s: ...`; the deadline is
 * `failure` `timeout: health rpc did not complete within 1s`; other RPC errors are `failure`
 * `error: health rpc probe failed: ...`.
 */
export function grpcProbe(action: V1GRPCAction, podIP: string | undefined, timeoutMs: number, version = PROBE_USER_AGENT_VERSION): Promise<ProbeOutcome> {
  if (!podIP) return Promise.resolve({ result: 'unknown', output: 'no host: the pod has no IP yet' });
  const hostPort = joinHostPort(podIP, action.port);
  const within = goDurationText(timeoutMs);
  return new Promise((resolve) => {
    let settled = false;
    let connected = false;
    const session = http2.connect(`http://${hostPort}`);
    const finish = (outcome: ProbeOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => {
      finish({
        result: 'failure',
        output: connected ? `timeout: health rpc did not complete within ${within}` : `timeout: failed to connect service ${JSON.stringify(hostPort)} within ${within}: context deadline exceeded`,
      });
    }, timeoutMs);
    const onError = (raw: NodeJS.ErrnoException): void => {
      // A stream cancelled because the session failed carries the session's error as its cause.
      const err = raw.cause instanceof Error ? (raw.cause as NodeJS.ErrnoException) : raw;
      if (connected) finish({ result: 'failure', output: `error: health rpc probe failed: ${errorText(err)}` });
      else finish({ result: 'failure', output: `timeout: failed to connect service ${JSON.stringify(hostPort)} within ${within}: ${dialErrorText(err, hostPort)}` });
    };
    session.on('error', onError);
    session.on('connect', () => {
      connected = true;
    });
    const stream = session.request({
      ':method': 'POST',
      ':path': '/grpc.health.v1.Health/Check',
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': `kube-probe/${version}`,
      'grpc-timeout': `${Math.max(1, Math.ceil(timeoutMs))}m`,
    });
    const chunks: Buffer[] = [];
    let headerStatus: string | undefined;
    let headerMessage: string | undefined;
    stream.on('response', (headers) => {
      connected = true;
      const s = headers['grpc-status'];
      if (s !== undefined) {
        headerStatus = String(s);
        headerMessage = headers['grpc-message'] === undefined ? '' : decodeURIComponent(String(headers['grpc-message']));
      }
    });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    let trailerStatus: string | undefined;
    let trailerMessage = '';
    stream.on('trailers', (trailers) => {
      const s = trailers['grpc-status'];
      if (s !== undefined) trailerStatus = String(s);
      if (trailers['grpc-message'] !== undefined) trailerMessage = decodeURIComponent(String(trailers['grpc-message']));
    });
    stream.on('error', onError);
    stream.on('end', () => {
      const code = Number(trailerStatus ?? headerStatus ?? '2');
      const message = trailerStatus !== undefined ? trailerMessage : (headerMessage ?? '');
      if (code === 12) {
        finish({ result: 'failure', output: `this server does not implement the grpc health protocol (grpc.health.v1.Health): ${message}` });
        return;
      }
      if (code === 4) {
        finish({ result: 'failure', output: `timeout: health rpc did not complete within ${within}` });
        return;
      }
      if (code !== 0) {
        finish({ result: 'failure', output: `error: health rpc probe failed: rpc error: code = ${GRPC_CODES[code] ?? code} desc = ${message}` });
        return;
      }
      const data = Buffer.concat(chunks);
      let status = 0;
      try {
        if (data.length < 5) throw new Error('empty response');
        status = decodeHealthCheckStatus(data.subarray(5, 5 + data.readUInt32BE(1)));
      } catch (err) {
        finish({ result: 'failure', output: `error: health rpc probe failed: ${errorText(err)}` });
        return;
      }
      if (status === 1) finish({ result: 'success', output: 'service healthy' });
      else finish({ result: 'failure', output: `service unhealthy (responded with ${JSON.stringify(SERVING_STATUS[status] ?? String(status))})` });
    });
    stream.end(encodeHealthCheckRequest(action.service ?? ''));
  });
}

const GRPC_CODES: Readonly<Record<number, string>> = {
  1: 'Canceled',
  2: 'Unknown',
  3: 'InvalidArgument',
  5: 'NotFound',
  7: 'PermissionDenied',
  8: 'ResourceExhausted',
  9: 'FailedPrecondition',
  13: 'Internal',
  14: 'Unavailable',
  16: 'Unauthenticated',
};
