import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { createMetrics, describeError, type AuthenticationRequest, type AuthorizationAttributes, type AuthorizationDecision, type Counter, type NonResourceRule, type ResourceRule, type SubjectRules, type Gauge, type Histogram, type Logger, type Registry } from '@kubernel/sdk';
import {
  ExpiredError,
  InvalidContinueError,
  InvalidKeyError,
  StoreUnavailableError,
  TooLargeRevisionError,
  TooOldError,
  type Store,
  type Watch,
  type WatchEvent,
} from '../store/index.js';
import type { NamedCheck } from '../kernel/health-server.js';
import { ServiceAllocators } from './allocator.js';
import { mediaType, parseBody } from './body.js';
import { chunkOf, LocalTransport, type EventSink, type Exchange } from './exchange.js';
import { BUILTIN_RESOURCES } from './builtin/index.js';
import { ANONYMOUS, MASTERS_AUTHORIZER, MASTERS_GROUP, UNSECURED_USER, type RequestChain, type UserInfo } from './chain.js';
import { aggregatedDiscovery, AGGREGATED_V2, AGGREGATED_V2BETA1, apiGroup, apiGroupList, apiResourceList, apiVersions, wantsAggregated } from './discovery.js';
import { KUBERNETES_VERSION, OpenApi } from './openapi.js';
import { PATCH_TYPES } from './patch.js';
import { PROTOBUF, ProtobufDecoder } from './protobuf.js';
import { listPrefix, ResourceRegistry } from './registry.js';
import { isLongRunning, isNodeProxyRequest, NodeProxy, StreamingHttpExchange, streamingRequestInfo, UpgradeExchange, type KubeletClientOptions } from './node-proxy.js';
import { requestInfo, type RequestInfo } from './request-info.js';
import { apiVersionOf, type HookContext, type Obj, type ResourceDef } from './resource.js';
import { RestHandlers, type Reply, type RestRequest } from './rest.js';
import { Schemas } from './schemas.js';
import { DEFAULT_LEVELS, FlowControl } from './flowcontrol.js';
import type { AuditLog, AuditRecord } from './audit.js';
import type { ServiceAccountTokens } from './tokens.js';
import { ApiError, badRequest, internal, methodNotAllowed, timeout, unavailable } from './status.js';
import { tableRow, toTable, wantsTable } from './table.js';

/** Settings of the API server. */
export interface ApiServerOptions {
  readonly store: Store;
  readonly logger: Logger;
  readonly registry: Registry;
  /** Listen address; 127.0.0.1 by default. */
  readonly host?: string;
  /** Listen port; 6443 by default, 0 for a free one. */
  readonly port?: number;
  /** The address other components and the `kubernetes` Service use to reach this server. */
  readonly advertiseAddress?: string;
  /** The request stages; see {@link RequestChain}. */
  readonly chain: RequestChain;
  /**
   * Serve HTTPS (TLS 1.2+) with this certificate; client certificates are requested and verified
   * against `clientCa` (verified ones reach authenticators). Plain HTTP without it: tests and an
   * explicitly requested loopback-only port.
   */
  readonly tls?: { readonly cert: string; readonly key: string; readonly clientCa: string };
  /**
   * Also serve plain HTTP on 127.0.0.1 at this port, where every request runs as
   * `system:unsecured` (in `system:masters`), as Kubernetes' former `--insecure-port` did. Only
   * behind an explicit flag; never on a non-loopback address.
   */
  readonly insecurePort?: number;
  /** The service-account token issuer (TokenRequest and issuer discovery); absent: neither is served. */
  readonly serviceAccountTokens?: ServiceAccountTokens;
  /** Where audit events go, with their policy; no auditing when absent. */
  readonly audit?: AuditLog;
  /** Largest accepted request body; 3 MiB by default (Kubernetes' limit). */
  readonly maxBodyBytes?: number;
  /** Timeout of non-watch requests; 60 s by default. */
  readonly requestTimeoutMs?: number;
  /** Longest watch; a random value in [minWatchTimeout, 2 x minWatchTimeout) when the client gives none (1800 s). */
  readonly minWatchTimeoutSeconds?: number;
  /** Service ClusterIP range; 10.96.0.0/12 by default. */
  readonly serviceClusterIPRange?: string;
  /**
   * Seats for non-long-running requests, split among priority levels (Kubernetes'
   * --max-requests-inflight + --max-mutating-requests-inflight: 400 + 200 by default).
   */
  readonly maxInflight?: number;
  /** Service node port range; 30000-32767 by default. */
  readonly serviceNodePortRange?: readonly [number, number];
  /** Extra health checks (the store's, the kernel's plugins). */
  readonly checks?: () => readonly NamedCheck[];
  /** Resource definitions served; the built-in set by default. */
  readonly resources?: readonly ResourceDef[];
  /** How to reach node agents (pods/log, exec, attach, portforward); absent: those answer 503. */
  readonly kubelet?: KubeletClientOptions;
}

interface Metrics {
  readonly requests: Counter<'verb' | 'group' | 'version' | 'resource' | 'subresource' | 'code'>;
  readonly latency: Histogram<'verb' | 'resource'>;
  readonly inflight: Gauge<'kind'>;
  readonly watchers: Gauge<'resource'>;
  readonly rejected: Counter<'priority_level' | 'reason'>;
  readonly executing: Gauge<'priority_level'>;
}

const JSON_TYPE = 'application/json';

const conflictStatus = (message: string): ApiError => new ApiError(409, 'Conflict', message);

/**
 * JSON text of objects shared from the watch cache (deep-frozen, so their text never changes):
 * serialized once, however many gets, lists and watchers send them.
 */
const serializedCache = new WeakMap<object, string>();
function toJson(value: unknown): string {
  if (typeof value !== 'object' || value === null || !Object.isFrozen(value)) return JSON.stringify(value);
  let text = serializedCache.get(value);
  if (text === undefined) {
    text = JSON.stringify(value);
    serializedCache.set(value, text);
  }
  return text;
}

/**
 * Watch events as ready-framed HTTP/1.1 chunks (`<hex length>\r\n<line>\r\n`): shared (frozen)
 * objects are encoded once for every watcher, and each watcher's socket gets one write per event
 * (`res.write` would issue four: length, CRLF, data, CRLF).
 */
const eventChunks = new WeakMap<object, { type: string; chunk: Buffer }>();
function eventChunk(type: string, object: Obj): Buffer {
  if (!Object.isFrozen(object)) return chunkOf(`{"type":"${type}","object":${JSON.stringify(object)}}\n`);
  const cached = eventChunks.get(object);
  if (cached && cached.type === type) return cached.chunk;
  const chunk = chunkOf(`{"type":"${type}","object":${toJson(object)}}\n`);
  eventChunks.set(object, { type, chunk });
  return chunk;
}

/** A deleted object's last state with the delete's resourceVersion: one frozen copy for every watcher. */
const deletedCopies = new WeakMap<object, Obj>();
function deletedCopy(value: Obj, revision: number): Obj {
  let copy = deletedCopies.get(value);
  if (!copy || copy.metadata.resourceVersion !== String(revision)) {
    copy = Object.freeze({ ...value, metadata: Object.freeze({ ...value.metadata, resourceVersion: String(revision) }) });
    deletedCopies.set(value, copy);
  }
  return copy;
}

/** A list response, its items' text reused from {@link toJson}. */
function listJson(kind: string, apiVersion: string, metadata: Obj, items: readonly Obj[]): string {
  return `{"kind":${JSON.stringify(kind)},"apiVersion":${JSON.stringify(apiVersion)},"metadata":${JSON.stringify(metadata)},"items":[${items.map(toJson).join(',')}]}`;
}
const ACCEPTED_BODIES = ['application/json', 'application/yaml'];

/** The authorizer's view of a request. */
export function attributesOf(user: UserInfo, info: RequestInfo): AuthorizationAttributes {
  return {
    user,
    verb: info.verb,
    isResourceRequest: info.isResourceRequest,
    path: info.path,
    apiGroup: info.apiGroup,
    apiVersion: info.apiVersion,
    namespace: info.namespace ?? '',
    resource: info.resource,
    subresource: info.subresource ?? '',
    name: info.name ?? '',
  };
}

/** Definitions whose validators are compiled at start rather than on the first request. */
const WARM_DEFINITIONS = ['io.k8s.api.core.v1.Pod', 'io.k8s.api.apps.v1.ReplicaSet', 'io.k8s.api.apps.v1.Deployment', 'io.k8s.api.core.v1.Node', 'io.k8s.api.coordination.v1.Lease', 'io.k8s.api.core.v1.Event'];

/** A response body that is already JSON text. */
class RawJson {
  constructor(readonly text: string) {}
}

/**
 * The Kubernetes-compatible API server: discovery, OpenAPI, health, and the REST verbs of every
 * registered resource, each request through authentication, authorization, admission,
 * defaulting and validation to the store.
 */
export class ApiServer {
  private server?: Server;
  private readonly resources: ResourceRegistry;
  private readonly schemas: Schemas;
  private readonly openapi: OpenApi;
  private readonly rest: RestHandlers;
  readonly allocators: ServiceAllocators;
  private readonly log: Logger;
  private readonly metrics: Metrics;
  private readonly watches = new Set<Watch>();
  private readonly flow: FlowControl;
  private readonly levelGauges = new Map<string, { set(n: number): void }>();
  /** Metric children bound to their labels once (prom-client label handling is costly per call). */
  private readonly bound = new Map<string, { inc(): void; observe?(v: number): void }>();
  private readonly inflightGauges: Record<'mutating' | 'readOnly', { inc(): void; dec(): void }>;
  private inflight = 0;
  private protobuf?: ProtobufDecoder;
  private stopping = false;
  private idle?: () => void;
  /** `host:port` once listening. */
  address = '';
  /** `127.0.0.1:port` of the insecure port, when one was asked for. */
  insecureAddress = '';
  private insecureServer?: Server;
  /** Audit records of requests in flight. */
  private readonly auditRecords = new WeakMap<Exchange, AuditRecord>();
  /** pods/log, exec, attach, portforward: proxied to node agents. */
  private readonly nodeProxy: NodeProxy;

  constructor(private readonly options: ApiServerOptions) {
    this.log = options.logger.child({ component: 'apiserver' });
    this.resources = new ResourceRegistry(options.resources ?? BUILTIN_RESOURCES);
    this.schemas = new Schemas();
    this.openapi = new OpenApi(this.resources, this.schemas);
    this.allocators = new ServiceAllocators(options.store, options.serviceClusterIPRange ?? '10.96.0.0/12', options.serviceNodePortRange ?? [30000, 32767]);
    const hooks: HookContext = {
      getStored: async (key) => (await options.store.get(key))?.value as Obj | undefined,
      allocators: this.allocators,
    };
    this.flow = new FlowControl(options.maxInflight ?? 600, DEFAULT_LEVELS, {
      rejected: (level) => this.metrics.rejected.inc({ priority_level: level, reason: 'concurrency-limit' }),
      executing: (level, n) => {
        let g = this.levelGauges.get(level);
        if (!g) this.levelGauges.set(level, (g = this.metrics.executing.labels({ priority_level: level })));
        g.set(n);
      },
    });
    this.rest = new RestHandlers(options.store, this.schemas, options.chain, hooks);
    this.nodeProxy = new NodeProxy({
      logger: this.log,
      ...(options.kubelet ? { kubelet: options.kubelet } : {}),
      getObject: async (resource, namespace, name) => (await options.store.get(resource === 'pods' ? `/registry/core/pods/${namespace}/${name}` : `/registry/core/nodes/${name}`))?.value as Obj | undefined,
    });
    const m = createMetrics(options.registry, 'apiserver');
    this.metrics = {
      requests: m.counter({ name: 'apiserver_request_total', help: 'Counter of apiserver requests broken out for each verb, group, version, resource and HTTP response code.', labelNames: ['verb', 'group', 'version', 'resource', 'subresource', 'code'] }),
      latency: m.histogram({ name: 'apiserver_request_duration_seconds', help: 'Response latency distribution in seconds for each verb and resource.', labelNames: ['verb', 'resource'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60] }),
      inflight: m.gauge({ name: 'apiserver_current_inflight_requests', help: 'Requests being served, by kind (readOnly, mutating).', labelNames: ['kind'] }),
      rejected: m.counter({ name: 'apiserver_flowcontrol_rejected_requests_total', help: 'Requests rejected by priority and fairness, by priority level and reason.', labelNames: ['priority_level', 'reason'] }),
      executing: m.gauge({ name: 'apiserver_flowcontrol_current_executing_requests', help: 'Requests executing, by priority level.', labelNames: ['priority_level'] }),
      watchers: m.gauge({ name: 'apiserver_registered_watchers', help: 'Open watches, by resource.', labelNames: ['resource'] }),
    };
    this.inflightGauges = { mutating: this.metrics.inflight.labels({ kind: 'mutating' }), readOnly: this.metrics.inflight.labels({ kind: 'readOnly' }) };
  }

  /** The served resources (for bootstrap and tests). */
  get registry(): ResourceRegistry {
    return this.resources;
  }

  /** Starts listening. */
  async start(): Promise<void> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => void this.handle(new StreamingHttpExchange(req, res, false, eventChunk));
    const tls = this.options.tls;
    const server: Server = tls
      ? createTlsServer({ requestTimeout: 0, keepAliveTimeout: 65_000, cert: tls.cert, key: tls.key, ca: tls.clientCa, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' }, handler)
      : createServer({ requestTimeout: 0, keepAliveTimeout: 65_000 }, handler);
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.handle(new UpgradeExchange(req, socket, head, false)));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? 6443, this.options.host ?? '127.0.0.1', () => resolve());
    });
    const { address, port } = server.address() as AddressInfo;
    this.address = `${address.includes(':') ? `[${address}]` : address}:${port}`;
    this.log.info({ address: this.address }, `API server listening on ${this.address}`);
    // The workload validators share the pod spec's, whose compilation is the costly one.
    this.schemas.warm(WARM_DEFINITIONS);
    if (this.options.insecurePort !== undefined) {
      const insecure = createServer({ requestTimeout: 0, keepAliveTimeout: 65_000 }, (req, res) => void this.handle(new StreamingHttpExchange(req, res, true, eventChunk)));
      insecure.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.handle(new UpgradeExchange(req, socket, head, true)));
      this.insecureServer = insecure;
      await new Promise<void>((resolve, reject) => {
        insecure.once('error', reject);
        insecure.listen(this.options.insecurePort, '127.0.0.1', () => resolve());
      });
      this.insecureAddress = `127.0.0.1:${(insecure.address() as AddressInfo).port}`;
      this.log.warn({ address: this.insecureAddress }, `insecure port: plain HTTP on ${this.insecureAddress}, every request as system:unsecured (system:masters)`);
    }
  }

  /** The URL clients use. */
  get url(): string {
    return `${this.options.tls ? 'https' : 'http'}://${this.address}`;
  }

  /**
   * Stops accepting requests, lets in-flight ones finish (up to `timeoutMs`), ends every watch
   * cleanly, then closes the remaining connections.
   */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (!this.server) return;
    this.stopping = true;
    const servers = [this.server, ...(this.insecureServer ? [this.insecureServer] : [])];
    const closed = Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    for (const w of this.watches) w.stop();
    this.nodeProxy.close();
    if (this.inflight > 0) {
      await Promise.race([new Promise<void>((resolve) => (this.idle = resolve)), new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref())]);
    }
    for (const server of servers) {
      server.closeIdleConnections();
      server.closeAllConnections();
    }
    await closed;
  }

  // ---- request handling ----------------------------------------------------------------------

  /**
   * The transport for plugins of this process: requests go through the same handling as over
   * HTTP (authentication by their token, authorization, flow control, admission, audit), without
   * sockets or HTTP framing; bodies and events cross as JSON text.
   */
  localTransport(): LocalTransport {
    return new LocalTransport({ handle: (ex) => this.handle(ex), json: (o) => toJson(o) });
  }

  private async handle(ex: Exchange): Promise<void> {
    const started = process.hrtime.bigint();
    const audit = this.options.audit;
    const record: AuditRecord | undefined = audit ? {} : undefined;
    const received = audit ? new Date() : undefined;
    if (record) this.auditRecords.set(ex, record);
    const raw = ex.url;
    const q = raw.indexOf('?');
    const url = { pathname: q < 0 ? raw : raw.slice(0, q), searchParams: new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)) };
    let info: RequestInfo;
    try {
      info = streamingRequestInfo(requestInfo(ex.method, url.pathname, url.searchParams));
    } catch {
      ex.discardBody();
      this.send(ex, 400, badRequest('the request path is not valid (bad percent-encoding)').toStatus());
      return;
    }
    const mutating = ['create', 'update', 'patch', 'delete', 'deletecollection'].includes(info.verb);
    const kind = mutating ? 'mutating' : 'readOnly';
    this.inflight++;
    const inflight = this.inflightGauges[kind];
    inflight.inc();
    let code = 200;
    try {
      if (this.stopping) throw unavailable('the API server is shutting down');
      code = await this.route(ex, url, info);
    } catch (err) {
      const e = this.toApiError(err, info);
      code = e.code;
      if (!ex.headersSent) {
        if (e.details?.retryAfterSeconds !== undefined) ex.setHeader('retry-after', String(e.details.retryAfterSeconds));
        this.send(ex, e.code, e.toStatus());
      }
      else ex.end();
    } finally {
      // A body the request did not get to read (refused before it) is drained, so that the
      // keep-alive connection stays usable instead of being closed under the client.
      ex.discardBody();
      if (audit && record) {
        const level = audit.level(record.user ?? ANONYMOUS, info);
        if (level !== 'None') {
          if (typeof record.responseObject === 'string') record.responseObject = level === 'RequestResponse' ? JSON.parse(record.responseObject) : undefined;
          audit.write({ level, info, uri: raw, record, code, sourceIP: ex.remoteAddress, userAgent: ex.headers['user-agent'], received: received! });
        }
      }
      this.inflight--;
      inflight.dec();
      if (this.inflight === 0) this.idle?.();
      const resource = info.isResourceRequest ? info.resource : '';
      const verb = info.verb.toUpperCase();
      const counterKey = `c\u0000${verb}\u0000${info.apiGroup}\u0000${info.apiVersion}\u0000${resource}\u0000${info.subresource ?? ''}\u0000${code}`;
      let counter = this.bound.get(counterKey);
      if (!counter) {
        counter = this.metrics.requests.labels({ verb, group: info.apiGroup, version: info.apiVersion, resource, subresource: info.subresource ?? '', code: String(code) });
        this.bound.set(counterKey, counter);
      }
      counter.inc();
      if (info.verb !== 'watch') {
        const latencyKey = `l\u0000${verb}\u0000${resource}`;
        let latency = this.bound.get(latencyKey);
        if (!latency) {
          latency = this.metrics.latency.labels({ verb, resource }) as unknown as { inc(): void; observe(v: number): void };
          this.bound.set(latencyKey, latency);
        }
        latency.observe!(Number(process.hrtime.bigint() - started) / 1e9);
      }
    }
  }

  private async route(ex: Exchange, url: { pathname: string; searchParams: URLSearchParams }, info: RequestInfo): Promise<number> {
    const path = url.pathname.replace(/\/+$/, '') || '/';
    // Health and version are open to everyone, as in Kubernetes.
    if (path === '/healthz' || path === '/livez' || path === '/readyz' || path.startsWith('/livez/') || path.startsWith('/readyz/') || path.startsWith('/healthz/')) {
      return this.health(ex, path, url.searchParams.has('verbose'));
    }
    if (path === '/version') return this.send(ex, 200, { ...KUBERNETES_VERSION, gitCommit: '', gitTreeState: 'clean', buildDate: '', goVersion: '', compiler: '', platform: `${process.platform}/${process.arch}` });
    const user = await this.authenticate(ex);
    // Priority and fairness: a seat for the request's duration (watches are long-running: exempt).
    const seat = isLongRunning(info) ? undefined : this.flow.admit(user);
    try {
      return await this.serve(ex, url, info, path, user);
    } finally {
      seat?.();
    }
  }

  private async serve(ex: Exchange, url: { pathname: string; searchParams: URLSearchParams }, info: RequestInfo, path: string, user: UserInfo): Promise<number> {
    const record = this.auditRecords.get(ex);
    if (record) record.user = user;
    try {
      await this.authorize(user, info);
    } catch (err) {
      if (record) record.decision = 'forbid';
      throw err;
    }
    if (record) record.decision = 'allow';
    if (path === '/metrics') {
      ex.reply(200, { 'content-type': this.options.registry.contentType }, await this.options.registry.metrics());
      return 200;
    }
    if (!info.isResourceRequest) return this.nonResource(ex, path);
    if (isNodeProxyRequest(info)) return this.nodeProxy.serve(ex, info, url.searchParams);
    const def = this.resources.find(info.apiGroup, info.apiVersion, info.resource);
    if (!def) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource', { group: info.apiGroup, kind: info.resource });
    const verbs = def.verbs ?? ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
    if (!info.subresource && !verbs.includes(info.verb)) throw methodNotAllowed(info.verb, def.plural);
    if (def.namespaced && info.namespace === undefined && !['list', 'watch', 'deletecollection'].includes(info.verb)) {
      if (info.verb !== 'create' || info.name) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    if (info.subresource && !this.subresourceAllowed(def, info.subresource)) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
    if (info.verb === 'watch') return this.watch(ex, { info, def, query: url.searchParams, user, body: undefined });
    const body = await this.body(ex, info);
    if (record) record.requestObject = body;
    if (def.review) {
      const o = body as Obj | undefined;
      if (typeof o !== 'object' || o === null || Array.isArray(o) || o.kind !== def.kind) throw badRequest(`the body must be a ${def.kind}`);
      const authenticateToken = async (token: string): Promise<{ user: UserInfo } | { error: string }> => {
        try {
          return { user: await this.authenticateRequest({ headers: { authorization: `Bearer ${token}` } }) };
        } catch {
          return { error: 'the token was not accepted by any authenticator' };
        }
      };
      return this.send(ex, 201, await def.review(o, { user, decide: (a) => this.decide(a), rulesFor: (u, ns) => this.rulesFor(u, ns), authenticateToken }, info.namespace));
    }
    const r: RestRequest = { info, def, query: url.searchParams, user, body, patchType: mediaType(ex.headers['content-type']) };
    const run = async (): Promise<Reply> => {
      switch (info.verb) {
        case 'get':
          return this.rest.get(r);
        case 'list': {
          const { items, meta } = await this.rest.list(r);
          if (wantsTable(ex.headers.accept)) return { status: 200, body: toTable(def, items, meta, url.searchParams.get('includeObject') ?? 'Metadata') };
          return { status: 200, body: new RawJson(listJson(`${def.kind}List`, apiVersionOf(def), meta, items)) };
        }
        case 'create':
          return info.subresource === 'token' ? this.tokenRequest(r) : this.rest.create(r);
        case 'update':
          return this.rest.update(r);
        case 'patch':
          return this.rest.patch(r);
        case 'delete':
          return this.rest.delete(r);
        case 'deletecollection':
          return this.rest.deleteCollection(r);
        default:
          throw methodNotAllowed(info.verb, def.plural);
      }
    };
    const reply = await this.withTimeout(run(), url.searchParams.get('timeout'));
    const out = info.verb === 'get' && wantsTable(ex.headers.accept) && !info.subresource ? toTable(def, [reply.body as Obj], {}, url.searchParams.get('includeObject') ?? 'Metadata') : reply.body;
    return this.send(ex, reply.status, out, reply.warnings);
  }

  /** TokenRequest: a token for an existing service account, optionally bound to an existing pod, secret or node. */
  private async tokenRequest(r: RestRequest): Promise<Reply> {
    const { info } = r;
    const body = r.body as Obj | undefined;
    if (typeof body !== 'object' || body === null || body.kind !== 'TokenRequest') throw badRequest('the body must be a TokenRequest (authentication.k8s.io/v1)');
    const sa = (await this.options.store.get(`/registry/core/serviceaccounts/${info.namespace}/${info.name}`))?.value as Obj | undefined;
    if (!sa) throw new ApiError(404, 'NotFound', `serviceaccounts "${info.name}" not found`, { name: info.name!, kind: 'serviceaccounts' });
    const ref = body.spec?.boundObjectRef as Obj | undefined;
    let bound: Obj | undefined;
    if (ref) {
      const plural = ({ Pod: 'pods', Secret: 'secrets', Node: 'nodes' } as Record<string, string>)[String(ref.kind)];
      if (!plural) throw badRequest(`cannot bind a token to a ${String(ref.kind)}; supported: Pod, Secret, Node`);
      const key = plural === 'nodes' ? `/registry/core/nodes/${ref.name}` : `/registry/core/${plural}/${info.namespace}/${ref.name}`;
      bound = (await this.options.store.get(key))?.value as Obj | undefined;
      if (!bound) throw new ApiError(404, 'NotFound', `${plural} "${String(ref.name)}" not found`, { name: String(ref.name), kind: plural });
      if (ref.uid && ref.uid !== bound.metadata.uid) throw conflictStatus(`the UID in the bound object reference (${String(ref.uid)}) does not match the UID in record`);
    }
    return { status: 201, body: await this.options.serviceAccountTokens!.request(sa, body, bound) };
  }

  private subresourceAllowed(def: ResourceDef, sub: string): boolean {
    if (sub === 'status') return Boolean(def.statusSubresource);
    if (sub === 'scale') return Boolean(def.scale);
    if (def.subresources?.includes(sub)) return true;
    if (sub === 'binding') return def.kind === 'Pod' && def.group === '';
    if (sub === 'finalize') return def.kind === 'Namespace' && def.group === '';
    if (sub === 'eviction') return def.kind === 'Pod' && def.group === '';
    if (sub === 'token') return def.kind === 'ServiceAccount' && def.group === '' && this.options.serviceAccountTokens !== undefined;
    return false;
  }

  private async body(ex: Exchange, info: RequestInfo): Promise<unknown> {
    if (!['create', 'update', 'patch', 'delete', 'deletecollection'].includes(info.verb)) return undefined;
    const raw = await ex.readBody(this.options.maxBodyBytes ?? 3 * 1024 * 1024);
    if (mediaType(ex.headers['content-type']) === PROTOBUF && info.verb !== 'patch') {
      if (raw.length === 0 && (info.verb === 'delete' || info.verb === 'deletecollection')) return undefined;
      this.protobuf ??= new ProtobufDecoder();
      return this.protobuf.decode(raw);
    }
    if (info.verb === 'delete' || info.verb === 'deletecollection') return raw.length === 0 ? undefined : parseBody(raw, ex.headers['content-type'], ACCEPTED_BODIES);
    if (info.verb === 'patch') {
      const type = mediaType(ex.headers['content-type']);
      const accepted: string[] = [PATCH_TYPES.json, PATCH_TYPES.merge, PATCH_TYPES.strategic, PATCH_TYPES.apply];
      if (!accepted.includes(type)) return parseBody(raw, type || 'none', accepted);
      return parseBody(raw, type === PATCH_TYPES.apply ? 'application/yaml' : 'application/json');
    }
    return parseBody(raw, ex.headers['content-type'], ACCEPTED_BODIES);
  }

  private async withTimeout(work: Promise<Reply>, requested: string | null): Promise<Reply> {
    const ms = requested && /^\d+(ms|s|m)$/.test(requested) ? Number(requested.replace(/ms|s|m/, '')) * (requested.endsWith('ms') ? 1 : requested.endsWith('m') ? 60_000 : 1000) : (this.options.requestTimeoutMs ?? 60_000);
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([work, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(timeout('request did not complete within the allowed duration')), ms)))]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async authenticate(ex: Exchange): Promise<UserInfo> {
    if (ex.unsecured) return UNSECURED_USER;
    return this.authenticateRequest({ headers: ex.headers, clientCertificate: ex.clientCertificate(), remoteAddress: ex.remoteAddress });
  }

  /** Runs the authenticator chain: the first user wins; nobody authenticating is a 401. */
  private async authenticateRequest(request: AuthenticationRequest): Promise<UserInfo> {
    for (const a of this.options.chain.authenticators()) {
      let result;
      try {
        result = await a.authenticate(request);
      } catch (err) {
        this.log.error({ err }, `an authenticator failed: ${describeError(err)}`);
        continue;
      }
      if (result && 'user' in result) {
        const { user } = result;
        return user.groups.includes('system:authenticated') ? user : { ...user, groups: [...user.groups, 'system:authenticated'] };
      }
      if (result && 'error' in result) this.log.debug({ reason: result.error }, 'credentials refused');
    }
    throw new ApiError(401, 'Unauthorized', 'Unauthorized');
  }

  /** Runs the authorizer chain on `attributes`: the first allow or deny wins; nobody deciding is a deny. */
  async decide(attributes: AuthorizationAttributes): Promise<AuthorizationDecision> {
    const reasons: string[] = [];
    for (const a of this.options.chain.authorizers()) {
      let d: AuthorizationDecision;
      try {
        d = await a.authorize(attributes);
      } catch (err) {
        this.log.error({ err }, `an authorizer failed: ${describeError(err)}`);
        reasons.push(`authorizer error: ${describeError(err)}`);
        continue;
      }
      if (d.decision !== 'no-opinion') return d;
      if (d.reason) reasons.push(d.reason);
    }
    return { decision: 'no-opinion', ...(reasons.length ? { reason: reasons.join('; ') } : {}) };
  }

  /**
   * The rules `user` holds in `namespace` across the authorizer chain: everything for
   * `system:masters`; otherwise the union of what authorizers that can list rules say, incomplete
   * when one of them cannot.
   */
  async rulesFor(user: UserInfo, namespace: string): Promise<SubjectRules> {
    if (user.groups.includes(MASTERS_GROUP)) {
      return { resourceRules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }], nonResourceRules: [{ verbs: ['*'], nonResourceURLs: ['*'] }], incomplete: false };
    }
    const resourceRules: ResourceRule[] = [];
    const nonResourceRules: NonResourceRule[] = [];
    let incomplete = false;
    const errors: string[] = [];
    for (const a of this.options.chain.authorizers()) {
      if (a === MASTERS_AUTHORIZER) continue;
      if (!a.rulesFor) {
        incomplete = true;
        continue;
      }
      try {
        const r = await a.rulesFor(user, namespace);
        resourceRules.push(...r.resourceRules);
        nonResourceRules.push(...r.nonResourceRules);
        incomplete ||= r.incomplete;
        if (r.evaluationError) errors.push(r.evaluationError);
      } catch (err) {
        incomplete = true;
        errors.push(describeError(err));
      }
    }
    return { resourceRules, nonResourceRules, incomplete, ...(errors.length ? { evaluationError: errors.join('; ') } : {}) };
  }

  private async authorize(user: UserInfo, info: RequestInfo): Promise<void> {
    const d = await this.decide(attributesOf(user, info));
    if (d.decision !== 'allow') throw this.forbidden(user, info, d.decision === 'deny' ? d.reason : undefined);
  }

  private forbidden(user: UserInfo, info: RequestInfo, reason: string | undefined): ApiError {
    const what = info.isResourceRequest
      ? `cannot ${info.verb} resource "${info.resource}${info.subresource ? `/${info.subresource}` : ''}" in API group "${info.apiGroup}"${info.namespace ? ` in the namespace "${info.namespace}"` : ' at the cluster scope'}`
      : `cannot ${info.verb} path "${info.path}"`;
    return new ApiError(403, 'Forbidden', `${info.resource || info.path} ${info.name ? `"${info.name}" ` : ''}is forbidden: User "${user.username}" ${what}${reason ? `: ${reason}` : ''}`, {
      ...(info.name ? { name: info.name } : {}),
      group: info.apiGroup,
      kind: info.resource,
    });
  }

  private nonResource(ex: Exchange, path: string): number {
    if (ex.method !== 'GET' && ex.method !== 'HEAD') throw methodNotAllowed(ex.method, path);
    const accept = ex.headers.accept;
    const tokens = this.options.serviceAccountTokens;
    if (tokens && path === '/.well-known/openid-configuration') return this.send(ex, 200, tokens.discovery());
    if (tokens && path === '/openid/v1/jwks') return this.send(ex, 200, tokens.jwks, undefined, 'application/jwk-set+json');
    if (path === '/api' || path === '/apis') {
      const aggregated = wantsAggregated(accept);
      if (aggregated) {
        return this.send(ex, 200, aggregatedDiscovery(this.resources, path === '/api', aggregated), undefined, aggregated === 'v2' ? AGGREGATED_V2 : AGGREGATED_V2BETA1);
      }
      return this.send(ex, 200, path === '/api' ? apiVersions(this.options.advertiseAddress ?? this.address) : apiGroupList(this.resources));
    }
    if (path === '/api/v1') return this.send(ex, 200, apiResourceList(this.resources, '', 'v1'));
    const m = /^\/apis\/([^/]+)(?:\/([^/]+))?$/.exec(path);
    if (m) {
      const versions = this.resources.groupVersions().filter((g) => g.group === m[1]).map((g) => g.version);
      if (versions.length === 0) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
      if (!m[2]) return this.send(ex, 200, apiGroup(m[1]!, versions));
      if (!versions.includes(m[2])) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
      return this.send(ex, 200, apiResourceList(this.resources, m[1]!, m[2]));
    }
    if (path === '/openapi/v2') return this.sendText(ex, 200, this.openapi.swagger(), JSON_TYPE);
    if (path === '/openapi/v3') return this.sendText(ex, 200, this.openapi.index(), JSON_TYPE);
    if (path.startsWith('/openapi/v3/')) {
      const doc = this.openapi.groupVersion(path.slice('/openapi/v3/'.length));
      if (!doc) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
      ex.setHeader('etag', `"${doc.hash}"`);
      ex.setHeader('cache-control', 'public, immutable');
      return this.sendText(ex, 200, doc.text, JSON_TYPE);
    }
    if (path === '/') return this.send(ex, 200, { paths: ['/api', '/api/v1', '/apis', ...this.resources.groupVersions().filter((g) => g.group).map((g) => `/apis/${g.group}/${g.version}`), '/healthz', '/livez', '/metrics', '/openapi/v2', '/openapi/v3', '/readyz', '/version'] });
    throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
  }

  private health(ex: Exchange, path: string, verbose: boolean): number {
    const checks: NamedCheck[] = [{ name: 'ping', live: true, ready: true }, ...(this.options.checks?.() ?? [])];
    if (this.stopping) checks.push({ name: 'shutdown', live: true, ready: false, reason: 'the API server is shutting down' });
    const kind = path.startsWith('/readyz') ? 'readyz' : path.startsWith('/livez') ? 'livez' : 'healthz';
    const good = (c: NamedCheck): boolean => (kind === 'readyz' || kind === 'healthz' ? c.ready : c.live);
    const ok = checks.every(good);
    const body = verbose
      ? `${checks.map((c) => (good(c) ? `[+]${c.name} ok` : `[-]${c.name} failed: ${c.reason ?? 'not ready'}`)).join('\n')}\n${kind} check ${ok ? 'passed' : 'failed'}\n`
      : ok
        ? 'ok'
        : `${kind} check failed`;
    return this.sendText(ex, ok ? 200 : 500, body, 'text/plain; charset=utf-8');
  }

  // ---- watch ---------------------------------------------------------------------------------

  private async watch(ex: Exchange, r: RestRequest): Promise<number> {
    const { def, query, info } = r;
    const filter = this.rest.filterOf(def, query);
    const rv = query.get('resourceVersion');
    if (rv && !/^\d+$/.test(rv)) throw badRequest(`invalid resource version: ${rv}`);
    const bookmarks = query.get('allowWatchBookmarks') === 'true';
    const table = wantsTable(ex.headers.accept);
    const include = query.get('includeObject') ?? 'Metadata';
    const min = this.options.minWatchTimeoutSeconds ?? 1800;
    const timeoutSeconds = query.has('timeoutSeconds') ? Number(query.get('timeoutSeconds')) : min * (1 + Math.random());
    const prefix = listPrefix(def, info.namespace);
    const byName = info.name;
    const nameFilter = byName ? (v: unknown) => (v as Obj).metadata?.name === byName && (!filter || filter(v)) : filter;
    let watch: Watch;
    try {
      watch = await this.options.store.watch(prefix, {
        ...(rv && rv !== '0' ? { fromRevision: Number(rv) } : { initialState: true, consistent: rv !== '0' }),
        bookmarks,
        ...(nameFilter ? { filter: nameFilter } : {}),
      });
    } catch (err) {
      if (!(err instanceof TooOldError)) throw err;
      ex.reply(200, { 'content-type': JSON_TYPE, 'cache-control': 'no-cache' }, `${JSON.stringify({ type: 'ERROR', object: new ApiError(410, 'Expired', err.message).toStatus() })}\n`);
      return 200;
    }
    this.watches.add(watch);
    this.metrics.watchers.inc({ resource: def.plural });
    const timer = setTimeout(() => watch.stop(), Math.max(0, timeoutSeconds) * 1000);
    const unsubscribe = ex.onClose(() => watch.stop());
    let first = true;
    const send = (sink: EventSink, event: WatchEvent): boolean => {
      if (event.type === 'BOOKMARK') {
        return sink.write('BOOKMARK', { kind: def.kind, apiVersion: apiVersionOf(def), metadata: { resourceVersion: String(event.revision) } });
      }
      const value = event.value as Obj;
      let object = value.metadata?.resourceVersion === String(event.revision) ? value : deletedCopy(value, event.revision);
      if (table) {
        object = { kind: 'Table', apiVersion: 'meta.k8s.io/v1', metadata: { resourceVersion: String(event.revision) }, ...(first ? { columnDefinitions: toTable(def, [], {}, include).columnDefinitions } : {}), rows: [tableRow(def, object, include)] };
        first = false;
      }
      return sink.write(event.type, object);
    };
    let sink: EventSink | undefined;
    try {
      // Events are pushed to the client as they come (no promise per event; over HTTP one socket
      // write per event, its chunk shared by every watcher).
      sink = ex.stream({ 'content-type': JSON_TYPE, 'cache-control': 'no-cache' });
      if (!sink) return 200;
      const out = sink;
      await new Promise<void>((resolve) => {
        const offDrain = out.onDrain(() => watch.resume());
        watch.attach({
          write: (event) => send(out, event),
          end: (err) => {
            if (err instanceof TooOldError) out.write('ERROR', new ApiError(410, 'Expired', err.message).toStatus() as unknown as Obj);
            else if (err) this.log.debug({ err }, 'watch ended');
            offDrain();
            resolve();
          },
        });
      });
    } finally {
      clearTimeout(timer);
      unsubscribe();
      watch.stop();
      this.watches.delete(watch);
      this.metrics.watchers.dec({ resource: def.plural });
      sink?.end();
    }
    return 200;
  }

  // ---- responses -----------------------------------------------------------------------------

  private send(ex: Exchange, status: number, body: unknown, warnings?: readonly string[], type = JSON_TYPE): number {
    const record = this.auditRecords.get(ex);
    if (record) record.responseObject = body instanceof RawJson ? body.text : body;
    return this.sendText(ex, status, body instanceof RawJson ? body.text : toJson(body), type, warnings);
  }

  private sendText(ex: Exchange, status: number, text: string, type: string, warnings?: readonly string[]): number {
    const headers: Record<string, string | string[]> = { 'content-type': type, 'cache-control': 'no-cache, private' };
    if (warnings && warnings.length > 0) headers.warning = warnings.map((w) => `299 - ${JSON.stringify(w)}`);
    ex.reply(status, headers, text);
    return status;
  }

  private toApiError(err: unknown, info: RequestInfo): ApiError {
    if (err instanceof ApiError) return err;
    if (err instanceof TooOldError) return new ApiError(410, 'Expired', err.message);
    if (err instanceof ExpiredError) return new ApiError(410, 'Expired', err.message);
    if (err instanceof InvalidContinueError) return badRequest(`invalid continue token: ${err.message}`);
    if (err instanceof TooLargeRevisionError) return new ApiError(504, 'Timeout', err.message, { retryAfterSeconds: 1 });
    if (err instanceof StoreUnavailableError) return unavailable(err.message);
    if (err instanceof InvalidKeyError) return badRequest(err.message);
    this.log.error({ err, path: info.path, verb: info.verb }, `request failed: ${describeError(err)}`);
    return internal(describeError(err));
  }
}
