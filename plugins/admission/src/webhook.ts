/**
 * Dynamic admission control: `MutatingWebhookConfiguration` and `ValidatingWebhookConfiguration`
 * (`admissionregistration.k8s.io/v1`), with the Kubernetes API server's semantics
 * (`k8s.io/apiserver/pkg/admission/plugin/webhook`).
 *
 * What is implemented, as upstream:
 * - Webhooks of every configuration, configurations sorted by name, webhooks in their order.
 * - `rules` (operations, apiGroups, apiVersions, resources with `*`, `*\/*`, `pods/status`,
 *   `*\/scale`; a resource without `/` matches only main resources; scope Cluster/Namespaced/`*`,
 *   a Namespace being cluster-scoped), `namespaceSelector` (against the namespace's labels, or a
 *   Namespace's own labels on its CREATE/UPDATE; never excludes other cluster-scoped objects; a
 *   missing namespace refuses with 404) and `objectSelector` (the object's or the old object's labels).
 * - An `AdmissionReview` v1 POSTed to `clientConfig.url` (https only) or to a Service
 *   (`https://<name>.<namespace>.svc:<port><path>`, TLS server name `<name>.<namespace>.svc`),
 *   trusting `caBundle` (system CAs when absent), aborted after `timeoutSeconds` (default 10,
 *   clamped to 1..30). A fresh `uid` per call (upstream: the uid tracks one round trip).
 * - Dry-run requests refuse with 400 when a matching webhook declares `sideEffects` other than
 *   `None`/`NoneOnDryRun`.
 * - Responses: the uid must match; `allowed: false` refuses with the webhook's code and message;
 *   `warnings` reach the client; a mutating webhook's `JSONPatch` is applied to the object in place.
 * - Call failures (unreachable, TLS, timeout, non-2xx, malformed answer, wrong uid, AdmissionReview
 *   versions without `v1`, an unsupported patch type, a patch from a validating webhook) follow
 *   `failurePolicy`: `Ignore` logs and continues; `Fail` (the v1 default) refuses with 500
 *   `Internal error occurred: failed calling webhook "NAME": ...`. As upstream, a patch that does
 *   not decode or apply is a 500 whatever the policy (the webhook answered, and meant to change the
 *   object: letting it through unchanged could admit what the webhook meant to fix).
 * - Mutating webhooks run one after another; validating webhooks of one request run in parallel
 *   (the first refusal in webhook order wins).
 * - `reinvocationPolicy: IfNeeded`: a webhook that asked for it is called once more when a later
 *   webhook changed the object (only changes made by webhooks count: other admission plugins'
 *   changes do not trigger reinvocation here).
 * - Requests about webhook configurations themselves (and admission policies) never go to
 *   webhooks, so a broken webhook cannot lock the cluster out of fixing it.
 *
 * Differences, by design:
 * - `matchConditions` (CEL) are not evaluated: a webhook that has them is treated as if their
 *   evaluation failed, which upstream hands to `failurePolicy` (`Fail`: the request is refused;
 *   `Ignore`: the webhook is skipped with a warning log). Calling it regardless could send it
 *   requests its author excluded (often to avoid deadlocks); skipping it silently would fail open.
 * - `matchPolicy: Equivalent` behaves as `Exact`, and objects are sent as stored (no conversion to
 *   the webhook's version): Kubernel serves each resource at one group/version.
 * - `options` is synthesised from the operation (`CreateOptions`/`UpdateOptions`/`DeleteOptions`
 *   with `dryRun`), as the admission contract does not carry the request's options.
 * - Service webhooks are reached through the Service's ready Endpoints, not its ClusterIP: the host
 *   running the API server need not run the service proxy.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { Agent, request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import fastJsonPatch from 'fast-json-patch';
import {
  AdmissionDenied,
  definePlugin,
  isNotFound,
  labelSelectorMatches,
  untilAborted,
  type Admission,
  type AdmissionCause,
  type AdmissionRequest,
  type ApiClient,
  type ApiObject,
  type KubeObject,
  type LabelSelector,
  type ProviderHandle,
} from '@kubernel/sdk';

/** The API group of webhook configurations. */
export const ADMISSIONREGISTRATION_GROUP = 'admissionregistration.k8s.io';

/** A `RuleWithOperations` of a webhook. */
export interface WebhookRule {
  readonly operations?: readonly string[];
  readonly apiGroups?: readonly string[];
  readonly apiVersions?: readonly string[];
  readonly resources?: readonly string[];
  /** `Cluster`, `Namespaced` or `*` (the default). */
  readonly scope?: string;
}

/** A `WebhookClientConfig`. */
export interface WebhookClientConfig {
  readonly url?: string;
  readonly service?: { readonly namespace?: string; readonly name?: string; readonly path?: string; readonly port?: number };
  /** Base64 of a PEM bundle. */
  readonly caBundle?: string;
}

/** A `MutatingWebhook` or `ValidatingWebhook` as the API carries it. */
export interface AdmissionWebhook {
  readonly name?: string;
  readonly clientConfig?: WebhookClientConfig;
  readonly rules?: readonly WebhookRule[];
  readonly failurePolicy?: string;
  readonly matchPolicy?: string;
  readonly namespaceSelector?: LabelSelector;
  readonly objectSelector?: LabelSelector;
  readonly sideEffects?: string;
  readonly timeoutSeconds?: number;
  readonly admissionReviewVersions?: readonly string[];
  readonly reinvocationPolicy?: string;
  readonly matchConditions?: readonly unknown[];
}

/** Which phase a dispatcher serves. */
export type WebhookType = 'mutating' | 'validating';

/** Where a Service's webhook is reached: an address and port to connect to. */
export interface ServiceEndpoint {
  readonly host: string;
  readonly port: number;
}

/** Resolves a Service port (`clientConfig.service`) to an address to connect to. */
export type ServiceResolver = (namespace: string, name: string, port: number) => Promise<ServiceEndpoint>;

/** What happened to one webhook call, for metrics. */
export interface WebhookCallEvent {
  readonly webhook: string;
  readonly configuration: string;
  readonly operation: AdmissionRequest['operation'];
  readonly seconds: number;
  /** `allowed`, `rejected` (by the webhook), `failed-open` (Ignore) or `failed-closed` (Fail or a hard error). */
  readonly outcome: 'allowed' | 'rejected' | 'failed-open' | 'failed-closed';
  /** The HTTP code the request was refused with (rejected and failed-closed). */
  readonly code?: number;
}

/** The logger a dispatcher writes to (a pino logger fits). */
export interface WebhookLogger {
  warn(details: object, message: string): void;
}

/** Options of {@link WebhookDispatcher}. */
export interface WebhookDispatcherOptions {
  readonly type: WebhookType;
  /** The current configuration objects of the dispatcher's type. */
  readonly configurations: () => readonly KubeObject[];
  /** The labels of a namespace, `undefined` when it does not exist. */
  readonly namespaceLabels: (namespace: string) => Readonly<Record<string, string>> | undefined | Promise<Readonly<Record<string, string>> | undefined>;
  /** Needed for `clientConfig.service` webhooks; without it their calls fail. */
  readonly resolveService?: ServiceResolver;
  readonly logger?: WebhookLogger;
  /** Called after every webhook call. */
  readonly onCall?: (event: WebhookCallEvent) => void;
}

const DEFAULT_TIMEOUT_SECONDS = 10;
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
const ALLOWED_CODES = new Set([400, 403, 404, 409, 422, 429, 500]);
const EXEMPT_KINDS = new Set([
  'MutatingWebhookConfiguration',
  'ValidatingWebhookConfiguration',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
  'MutatingAdmissionPolicy',
  'MutatingAdmissionPolicyBinding',
]);
const EXEMPT_RESOURCES = new Set([
  'mutatingwebhookconfigurations',
  'validatingwebhookconfigurations',
  'validatingadmissionpolicies',
  'validatingadmissionpolicybindings',
  'mutatingadmissionpolicies',
  'mutatingadmissionpolicybindings',
]);

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/**
 * True when the request concerns admission configuration itself (webhook configurations and
 * admission policies), which Kubernetes never sends to webhooks.
 */
export function isWebhookExempt(request: AdmissionRequest): boolean {
  return (
    (request.kind.group === ADMISSIONREGISTRATION_GROUP && EXEMPT_KINDS.has(request.kind.kind)) ||
    (request.resource.group === ADMISSIONREGISTRATION_GROUP && EXEMPT_RESOURCES.has(request.resource.resource))
  );
}

const isNamespaceRequest = (r: AdmissionRequest): boolean => r.resource.group === '' && r.resource.resource === 'namespaces';

const exactOrWildcard = (items: readonly string[] | undefined, value: string): boolean => (items ?? []).some((i) => i === '*' || i === value);

/**
 * True when `rule` matches the request: scope, operation, group, version and resource (as
 * `rules.Matcher` upstream). `pods` matches only the main resource, `pods/*` every subresource,
 * `*` every main resource, `*\/*` everything, `*\/scale` every scale subresource.
 */
export function ruleMatches(rule: WebhookRule, request: AdmissionRequest): boolean {
  const scope = rule.scope ?? '*';
  if (scope !== '*') {
    const clusterScoped = isNamespaceRequest(request) || request.namespace === '';
    if (scope === 'Namespaced' ? clusterScoped : scope === 'Cluster' ? !clusterScoped : true) return false;
  }
  if (!exactOrWildcard(rule.operations, request.operation)) return false;
  if (!exactOrWildcard(rule.apiGroups, request.resource.group)) return false;
  if (!exactOrWildcard(rule.apiVersions, request.resource.version)) return false;
  return (rule.resources ?? []).some((entry) => {
    const slash = entry.indexOf('/');
    const res = slash < 0 ? entry : entry.slice(0, slash);
    const sub = slash < 0 ? '' : entry.slice(slash + 1);
    return (res === '*' || res === request.resource.resource) && (sub === '*' || sub === request.subresource);
  });
}

const selectorIsEmpty = (s: LabelSelector | undefined): boolean =>
  !s || (Object.keys(s.matchLabels ?? {}).length === 0 && (s.matchExpressions ?? []).length === 0);

/** A call that did not produce a usable answer: `failurePolicy` decides. */
class CallFailure extends Error {
  override readonly name = 'CallFailure';
}

/** One webhook with the configuration it came from. */
interface Hook {
  readonly configuration: string;
  readonly name: string;
  readonly spec: AdmissionWebhook;
}

/** The first line of an error's message. */
const messageOf = (err: unknown): string => String((err as { message?: unknown })?.message ?? err).split('\n')[0]!;

function internalError(message: string): AdmissionDenied {
  return new AdmissionDenied(`Internal error occurred: ${message}`, 500);
}

/** The `options` Kubernetes would send for the operation. */
function optionsOf(request: AdmissionRequest): Record<string, unknown> | null {
  const kind = { CREATE: 'CreateOptions', UPDATE: 'UpdateOptions', DELETE: 'DeleteOptions' }[request.operation as string];
  if (!kind) return null;
  return { apiVersion: 'meta.k8s.io/v1', kind, ...(request.dryRun ? { dryRun: ['All'] } : {}) };
}

/** The request body of a call. */
function admissionReview(uid: string, request: AdmissionRequest): Record<string, unknown> {
  const { user } = request;
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { ...request.kind },
      resource: { ...request.resource },
      ...(request.subresource ? { subResource: request.subresource } : {}),
      requestKind: { ...request.kind },
      requestResource: { ...request.resource },
      ...(request.subresource ? { requestSubResource: request.subresource } : {}),
      ...(request.name ? { name: request.name } : {}),
      ...(request.namespace ? { namespace: request.namespace } : {}),
      operation: request.operation,
      userInfo: {
        username: user.username,
        ...(user.uid ? { uid: user.uid } : {}),
        groups: [...user.groups],
        ...(user.extra && Object.keys(user.extra).length > 0 ? { extra: user.extra } : {}),
      },
      object: request.object ?? null,
      oldObject: request.oldObject ?? null,
      dryRun: request.dryRun,
      options: optionsOf(request),
    },
  };
}

/** Where one call goes. */
interface Target {
  /** The URL as upstream prints it in errors, with `?timeout=`. */
  readonly display: string;
  readonly path: string;
  readonly hostHeader: string;
  /** Connects to `service` through the resolver, else to `host:port`. */
  readonly connect: () => Promise<ServiceEndpoint>;
  readonly servername?: string;
}

/**
 * Calls the admission webhooks of one phase for admission requests. Testable without a cluster:
 * give it the configurations and namespace labels as functions.
 */
export class WebhookDispatcher {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 32 });

  constructor(private readonly options: WebhookDispatcherOptions) {}

  /** Every webhook in calling order: configurations by name, then each one's webhooks in order. */
  webhooks(): Hook[] {
    const configs = [...this.options.configurations()].sort((a, b) => {
      const na = String(a.metadata?.name ?? '');
      const nb = String(b.metadata?.name ?? '');
      return na < nb ? -1 : na > nb ? 1 : 0;
    });
    const out: Hook[] = [];
    for (const c of configs) {
      const list = (c as { webhooks?: unknown }).webhooks;
      if (!Array.isArray(list)) continue;
      for (const w of list) {
        if (!isRecord(w)) continue;
        out.push({ configuration: String(c.metadata?.name ?? ''), name: String(w.name ?? ''), spec: w as AdmissionWebhook });
      }
    }
    return out;
  }

  /** Cheap pre-filter: false when no webhook's rules match (or for exempt requests). */
  handles(request: AdmissionRequest): boolean {
    if (isWebhookExempt(request)) return false;
    return this.webhooks().some((h) => (h.spec.rules ?? []).some((r) => ruleMatches(r, request)));
  }

  /**
   * Mutating phase: calls matching webhooks one after another, applying their patches to
   * `request.object` in place, then reinvokes `IfNeeded` webhooks once if a later one changed it.
   * @throws {AdmissionDenied} when a webhook refuses, or fails with `failurePolicy: Fail`
   */
  async admit(request: AdmissionRequest): Promise<void> {
    if (this.options.type !== 'mutating') throw new Error('admit() belongs to a mutating dispatcher');
    if (isWebhookExempt(request)) return;
    const hooks = this.webhooks();
    const reinvoke = new Set<number>();
    let reinvocable: number[] = [];
    for (let i = 0; i < hooks.length; i++) {
      const hook = hooks[i]!;
      if (!(await this.shouldCall(hook, request))) continue;
      const changed = await this.run(hook, request);
      if (changed) {
        for (const j of reinvocable) reinvoke.add(j);
        reinvocable = [];
      }
      if (hook.spec.reinvocationPolicy === 'IfNeeded') reinvocable.push(i);
    }
    for (let i = 0; i < hooks.length; i++) {
      const hook = hooks[i]!;
      if (!reinvoke.has(i) || !(await this.shouldCall(hook, request))) continue;
      await this.run(hook, request);
    }
  }

  /**
   * Validating phase: calls matching webhooks in parallel; the first refusal in webhook order wins.
   * @throws {AdmissionDenied} when a webhook refuses, or fails with `failurePolicy: Fail`
   */
  async validate(request: AdmissionRequest): Promise<void> {
    if (this.options.type !== 'validating') throw new Error('validate() belongs to a validating dispatcher');
    if (isWebhookExempt(request)) return;
    const relevant: Hook[] = [];
    for (const hook of this.webhooks()) if (await this.shouldCall(hook, request)) relevant.push(hook);
    const results = await Promise.all(relevant.map((hook) => this.run(hook, request).then(() => undefined, (err: unknown) => err)));
    const first = results.find((e) => e !== undefined);
    if (first !== undefined) throw first;
  }

  /** Closes idle connections to webhooks. */
  close(): void {
    this.agent.destroy();
  }

  /**
   * Whether `hook` applies to the request (rules, then namespace and object selectors).
   * @throws {AdmissionDenied} 404 when the rules match and the request's namespace does not exist
   */
  private async shouldCall(hook: Hook, request: AdmissionRequest): Promise<boolean> {
    const { spec } = hook;
    if (!(spec.rules ?? []).some((r) => ruleMatches(r, request))) return false;
    if (!selectorIsEmpty(spec.namespaceSelector) && !(request.namespace === '' && !isNamespaceRequest(request))) {
      const labels = await this.namespaceLabelsOf(request);
      if (!labelSelectorMatches(spec.namespaceSelector!, labels)) return false;
    }
    if (!selectorIsEmpty(spec.objectSelector)) {
      const matches = (o: ApiObject | undefined): boolean => o !== undefined && o !== null && labelSelectorMatches(spec.objectSelector!, o.metadata?.labels ?? {});
      if (!matches(request.object) && !matches(request.oldObject)) return false;
    }
    return true;
  }

  private async namespaceLabelsOf(request: AdmissionRequest): Promise<Readonly<Record<string, string>>> {
    if (isNamespaceRequest(request)) {
      if (request.subresource === '' && (request.operation === 'CREATE' || request.operation === 'UPDATE')) return request.object?.metadata?.labels ?? {};
      const name = request.namespace || request.name;
      const labels = await this.options.namespaceLabels(name);
      if (labels) return labels;
      if (request.oldObject) return request.oldObject.metadata?.labels ?? {};
      throw new AdmissionDenied(`namespaces "${name}" not found`, 404, [], { name, group: '', kind: 'namespaces' });
    }
    const labels = await this.options.namespaceLabels(request.namespace);
    if (!labels) throw new AdmissionDenied(`namespaces "${request.namespace}" not found`, 404, [], { name: request.namespace, group: '', kind: 'namespaces' });
    return labels;
  }

  /**
   * Calls one webhook and applies the failure policy; resolves with whether the object changed.
   * @throws {AdmissionDenied} refusals and closed failures
   */
  private async run(hook: Hook, request: AdmissionRequest): Promise<boolean> {
    const started = performance.now();
    const report = (outcome: WebhookCallEvent['outcome'], code?: number): void => {
      this.options.onCall?.({
        webhook: hook.name,
        configuration: hook.configuration,
        operation: request.operation,
        seconds: (performance.now() - started) / 1000,
        outcome,
        ...(code !== undefined ? { code } : {}),
      });
    };
    try {
      const changed = await this.call(hook, request);
      report('allowed');
      return changed;
    } catch (err) {
      if (err instanceof CallFailure) {
        const message = `failed calling webhook "${hook.name}": ${err.message}`;
        if (hook.spec.failurePolicy === 'Ignore') {
          this.options.logger?.warn({ webhook: hook.name, configuration: hook.configuration, err: message }, 'Failed calling webhook, failing open');
          report('failed-open');
          return false;
        }
        this.options.logger?.warn({ webhook: hook.name, configuration: hook.configuration, err: message }, 'Failed calling webhook, failing closed');
        report('failed-closed', 500);
        throw internalError(message);
      }
      if (err instanceof AdmissionDenied) {
        report(REJECTIONS.has(err) ? 'rejected' : 'failed-closed', err.code);
        throw err;
      }
      report('failed-closed', 500);
      throw internalError(messageOf(err));
    }
  }

  /** The target of a webhook's call, from its clientConfig. */
  private target(spec: AdmissionWebhook, timeoutSeconds: number): Target {
    const cc = spec.clientConfig ?? {};
    const query = `timeout=${timeoutSeconds}s`;
    if (typeof cc.url === 'string' && cc.url !== '') {
      let url: URL;
      try {
        url = new URL(cc.url);
      } catch {
        throw new CallFailure(`invalid webhook URL "${cc.url}"`);
      }
      if (url.protocol !== 'https:') throw new CallFailure(`webhook URL "${cc.url}" must use the https scheme`);
      const path = `${url.pathname}${url.search ? `${url.search}&${query}` : `?${query}`}`;
      const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
      const port = url.port ? Number(url.port) : 443;
      return {
        display: `${url.origin}${path}`,
        path,
        hostHeader: url.host,
        connect: async () => ({ host, port }),
        ...(isIP(host) ? {} : { servername: host }),
      };
    }
    const svc = cc.service;
    if (svc && svc.name && svc.namespace) {
      const port = typeof svc.port === 'number' ? svc.port : 443;
      const serverName = `${svc.name}.${svc.namespace}.svc`;
      const path = `${svc.path || '/'}?${query}`;
      const resolve = this.options.resolveService;
      return {
        display: `https://${serverName}:${port}${path}`,
        path,
        hostHeader: `${serverName}:${port}`,
        servername: serverName,
        connect: async () => {
          if (!resolve) throw new Error(`no resolver for service ${svc.namespace}/${svc.name}`);
          return resolve(svc.namespace!, svc.name!, port);
        },
      };
    }
    throw new CallFailure('the webhook has neither clientConfig.url nor clientConfig.service');
  }

  /**
   * One call: resolves with whether the object changed.
   * @throws {CallFailure} when the call gave no usable answer
   * @throws {AdmissionDenied} when the webhook refused, or for errors no policy can ignore
   */
  private async call(hook: Hook, request: AdmissionRequest): Promise<boolean> {
    const { spec, name } = hook;
    const mutating = this.options.type === 'mutating';
    if (Array.isArray(spec.matchConditions) && spec.matchConditions.length > 0) {
      throw new CallFailure('matchConditions cannot be evaluated: this API server does not evaluate CEL expressions');
    }
    if (request.dryRun) {
      if (spec.sideEffects === undefined) throw new CallFailure('Webhook SideEffects is nil');
      if (spec.sideEffects !== 'None' && spec.sideEffects !== 'NoneOnDryRun') throw new AdmissionDenied(`admission webhook "${name}" does not support dry run`, 400);
    }
    if (!strings(spec.admissionReviewVersions).includes('v1')) {
      throw new CallFailure('could not create admission objects: webhook does not accept known AdmissionReview versions (v1)');
    }
    const raw = spec.timeoutSeconds;
    const timeoutSeconds = typeof raw === 'number' && Number.isFinite(raw) ? Math.min(30, Math.max(1, Math.ceil(raw))) : DEFAULT_TIMEOUT_SECONDS;
    const target = this.target(spec, timeoutSeconds);
    const uid = randomUUID();
    const body = JSON.stringify(admissionReview(uid, request));
    const caBundle = spec.clientConfig?.caBundle;
    const ca = typeof caBundle === 'string' && caBundle !== '' ? Buffer.from(caBundle, 'base64').toString('utf8') : undefined;

    let answer: { status: number; body: string };
    try {
      answer = await this.post(target, body, ca, timeoutSeconds * 1000);
    } catch (err) {
      throw new CallFailure(`failed to call webhook: Post "${target.display}": ${messageOf(err)}`);
    }
    if (answer.status < 200 || answer.status > 299) {
      const text = answer.body.trim().slice(0, 256);
      const what = answer.status === 500 && text ? `an error on the server ("${text}") has prevented the request from succeeding` : `the server responded with the status code ${answer.status}${text ? ` ("${text}")` : ' but did not return more information'}`;
      throw new CallFailure(`failed to call webhook: ${what}`);
    }
    let review: unknown;
    try {
      review = JSON.parse(answer.body);
    } catch (err) {
      throw new CallFailure(`failed to call webhook: the response is not JSON: ${messageOf(err)}`);
    }
    const response = this.verify(uid, review, mutating);

    for (const w of strings(response.warnings)) if (w.trim() !== '') request.warning(w);

    if (response.allowed !== true) throw denial(name, response.status);

    const patch = response.patch;
    if (patch === undefined || patch === null || patch === '') return false;
    const encoded = typeof patch === 'string' ? patch.replace(/\s+/g, '') : '';
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(encoded)) throw new CallFailure('failed to call webhook: response.patch is not base64');
    let ops: unknown;
    try {
      ops = JSON.parse(Buffer.from(encoded, 'base64').toString('utf8'));
    } catch (err) {
      throw internalError(messageOf(err));
    }
    if (!Array.isArray(ops)) throw internalError('json: cannot unmarshal the patch into an array of JSON patch operations');
    if (ops.length === 0) return false;
    if (response.patchType !== 'JSONPatch') throw new CallFailure(`unsupported patch type "${String(response.patchType)}"`);
    const object = request.object;
    if (!object) throw internalError(`admission webhook "${name}" attempted to modify the object, which is not supported for this operation`);
    let patched: unknown;
    try {
      patched = fastJsonPatch.applyPatch(structuredClone(object), ops as fastJsonPatch.Operation[], true, true, true).newDocument;
    } catch (err) {
      throw internalError(messageOf(err));
    }
    if (!isRecord(patched)) throw internalError(`admission webhook "${name}" patched the object into something that is not an object`);
    if (isDeepStrictEqual(object, patched)) return false;
    const live = object as Record<string, unknown>;
    for (const k of Object.keys(live)) delete live[k];
    Object.assign(live, patched);
    return true;
  }

  /** Checks an AdmissionReview answer (`VerifyAdmissionResponse`) and returns its `response`. */
  private verify(uid: string, review: unknown, mutating: boolean): Record<string, unknown> {
    const invalid = (why: string): CallFailure => new CallFailure(`received invalid webhook response: ${why}`);
    if (!isRecord(review)) throw invalid('the response is not an AdmissionReview object');
    if (review.apiVersion !== 'admission.k8s.io/v1' || review.kind !== 'AdmissionReview') {
      throw invalid(`expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got ${String(review.apiVersion ?? '')}, Kind=${String(review.kind ?? '')}`);
    }
    const response = review.response;
    if (!isRecord(response)) throw invalid('webhook response was absent');
    if (response.uid !== uid) throw invalid(`expected response.uid="${uid}", got "${String(response.uid ?? '')}"`);
    const hasPatchType = response.patchType !== undefined && response.patchType !== null && response.patchType !== '';
    const hasPatch = response.patch !== undefined && response.patch !== null && response.patch !== '';
    if (!mutating && hasPatchType) throw invalid('validating webhook may not return response.patchType');
    if (!mutating && hasPatch) throw invalid('validating webhook may not return response.patch');
    if (hasPatch && !hasPatchType) throw invalid('webhook returned response.patch but not response.patchType');
    return response;
  }

  /** POSTs `body`, aborting the whole exchange (connect, TLS, answer) after `timeoutMs`. */
  private async post(target: Target, body: string, ca: string | undefined, timeoutMs: number): Promise<{ status: number; body: string }> {
    const controller = new AbortController();
    const deadline = new Promise<never>((_, reject) => {
      controller.signal.addEventListener('abort', () => reject(new Error('context deadline exceeded')), { once: true });
    });
    deadline.catch(() => undefined);
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const exchange = (async () => {
        const { host, port } = await target.connect();
        if (controller.signal.aborted) throw new Error('context deadline exceeded');
        return await new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = httpsRequest(
            {
              host,
              port,
              path: target.path,
              method: 'POST',
              agent: this.agent,
              signal: controller.signal,
              ...(ca !== undefined ? { ca } : {}),
              ...(target.servername !== undefined ? { servername: target.servername } : {}),
              headers: {
                host: target.hostHeader,
                'content-type': 'application/json',
                accept: 'application/json',
                'content-length': Buffer.byteLength(body),
              },
            },
            (res) => {
              const chunks: Buffer[] = [];
              let size = 0;
              let ended = false;
              res.on('data', (chunk: Buffer) => {
                size += chunk.length;
                if (size > MAX_RESPONSE_BYTES) {
                  req.destroy(new Error(`the response exceeds ${MAX_RESPONSE_BYTES} bytes`));
                  return;
                }
                chunks.push(chunk);
              });
              res.on('end', () => {
                ended = true;
                resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
              });
              res.on('error', reject);
              res.on('close', () => {
                if (!ended) reject(new Error('the connection closed before the response was complete'));
              });
            },
          );
          req.on('error', reject);
          req.end(body);
        });
      })();
      return await Promise.race([exchange, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Refusals made by webhooks (as opposed to errors), for metrics. */
const REJECTIONS = new WeakSet<AdmissionDenied>();

/** The refusal of a webhook that answered `allowed: false` (`ToStatusErr`). */
function denial(webhook: string, status: unknown): AdmissionDenied {
  const s = isRecord(status) ? status : {};
  const deniedBy = `admission webhook "${webhook}" denied the request`;
  const message = typeof s.message === 'string' && s.message !== '' ? `${deniedBy}: ${s.message}` : typeof s.reason === 'string' && s.reason !== '' ? `${deniedBy}: ${s.reason}` : `${deniedBy} without explanation`;
  const raw = typeof s.code === 'number' && Number.isInteger(s.code) && s.code >= 400 ? s.code : 403;
  const code = (ALLOWED_CODES.has(raw) ? raw : raw >= 500 ? 500 : 400) as AdmissionDenied['code'];
  const details = isRecord(s.details) ? s.details : {};
  const causes: AdmissionCause[] = (Array.isArray(details.causes) ? details.causes : []).filter(isRecord).map((c) => ({
    field: typeof c.field === 'string' ? c.field : '',
    message: typeof c.message === 'string' ? c.message : '',
    ...(typeof c.reason === 'string' && c.reason !== '' ? { reason: c.reason } : {}),
  }));
  const named = {
    ...(typeof details.name === 'string' ? { name: details.name } : {}),
    ...(typeof details.group === 'string' ? { group: details.group } : {}),
    ...(typeof details.kind === 'string' ? { kind: details.kind } : {}),
  };
  const refusal = new AdmissionDenied(message, code, causes, Object.keys(named).length > 0 ? named : undefined);
  REJECTIONS.add(refusal);
  return refusal;
}

/**
 * A {@link ServiceResolver} over the API: the Service's port (by number) gives the port name,
 * the Endpoints' ready addresses with that port name give where to connect (one picked at random).
 * An `ExternalName` Service resolves to its external name. The ClusterIP is not used: the host
 * running the API server need not run the service proxy.
 */
export function endpointsServiceResolver(api: Pick<ApiClient, 'get'>): ServiceResolver {
  return async (namespace, name, port) => {
    const base = `/api/v1/namespaces/${encodeURIComponent(namespace)}`;
    let service: KubeObject;
    try {
      service = await api.get(`${base}/services/${encodeURIComponent(name)}`);
    } catch (err) {
      if (isNotFound(err)) throw new Error(`service "${namespace}/${name}" not found`);
      throw err;
    }
    const spec = (service.spec ?? {}) as { type?: string; externalName?: string; ports?: Array<{ name?: string; port?: number }> };
    if (spec.type === 'ExternalName' && spec.externalName) return { host: spec.externalName, port };
    const svcPort = (spec.ports ?? []).find((p) => p.port === port);
    if (!svcPort) throw new Error(`no service port ${port} found for service "${namespace}/${name}"`);
    const portName = svcPort.name ?? '';
    let endpoints: KubeObject;
    try {
      endpoints = await api.get(`${base}/endpoints/${encodeURIComponent(name)}`);
    } catch (err) {
      if (isNotFound(err)) throw new Error(`endpoints for service "${namespace}/${name}" not found`);
      throw err;
    }
    const candidates: ServiceEndpoint[] = [];
    const subsets = (endpoints.subsets ?? []) as Array<{ addresses?: Array<{ ip?: string }>; ports?: Array<{ name?: string; port?: number }> }>;
    for (const subset of subsets) {
      const p = (subset.ports ?? []).find((x) => (x.name ?? '') === portName);
      if (!p || typeof p.port !== 'number') continue;
      for (const a of subset.addresses ?? []) if (a.ip) candidates.push({ host: a.ip, port: p.port });
    }
    if (candidates.length === 0) throw new Error(`service "${namespace}/${name}" has no ready endpoints`);
    return candidates[Math.floor(Math.random() * candidates.length)]!;
  };
}

const CONFIGURATION_PATHS: Record<WebhookType, string> = {
  mutating: `/apis/${ADMISSIONREGISTRATION_GROUP}/v1/mutatingwebhookconfigurations`,
  validating: `/apis/${ADMISSIONREGISTRATION_GROUP}/v1/validatingwebhookconfigurations`,
};

/** Runs one webhook plugin: watches its configurations and namespaces, then provides the step. */
async function runWebhookPlugin(handle: ProviderHandle<'admission'>, type: WebhookType, signal: AbortSignal): Promise<void> {
  const configurations = handle.api.informer<KubeObject>(CONFIGURATION_PATHS[type]);
  const namespaces = handle.api.informer<KubeObject>('/api/v1/namespaces');
  configurations.run();
  namespaces.run();
  await Promise.all([configurations.waitForSync(signal), namespaces.waitForSync(signal)]);

  const prefix = `kubernel_${type}_admission_webhook`;
  const duration = handle.metrics.histogram({
    name: `${prefix}_duration_seconds`,
    help: `Latency of ${type} admission webhook calls, by webhook, operation and whether the request was refused.`,
    labelNames: ['name', 'operation', 'rejected'],
    buckets: [0.005, 0.025, 0.1, 0.5, 1, 2.5, 10, 25],
  });
  const rejections = handle.metrics.counter({
    name: `${prefix}_rejection_total`,
    help: `Requests refused by ${type} admission webhooks, by webhook, operation, error type (calling_webhook_error or rejection) and code.`,
    labelNames: ['name', 'operation', 'error_type', 'rejection_code'],
  });
  const failOpen = handle.metrics.counter({
    name: `${prefix}_fail_open_total`,
    help: `Failed ${type} admission webhook calls ignored because of failurePolicy Ignore.`,
    labelNames: ['name'],
  });

  const api = handle.api;
  const dispatcher = new WebhookDispatcher({
    type,
    configurations: () => configurations.list(),
    namespaceLabels: async (name) => {
      let ns = namespaces.get(name);
      if (!ns) {
        try {
          ns = await api.get<KubeObject>(`/api/v1/namespaces/${encodeURIComponent(name)}`);
        } catch (err) {
          if (isNotFound(err)) return undefined;
          throw err;
        }
      }
      return ns.metadata?.labels ?? {};
    },
    resolveService: endpointsServiceResolver(api),
    logger: handle.logger,
    onCall: (e) => {
      const rejected = e.outcome === 'rejected' || e.outcome === 'failed-closed';
      duration.observe({ name: e.webhook, operation: e.operation, rejected: String(rejected) }, e.seconds);
      if (rejected) rejections.inc({ name: e.webhook, operation: e.operation, error_type: e.outcome === 'rejected' ? 'rejection' : 'calling_webhook_error', rejection_code: String(e.code ?? 500) });
      if (e.outcome === 'failed-open') failOpen.inc({ name: e.webhook });
    },
  });
  const step: Admission =
    type === 'mutating'
      ? { handles: (r) => dispatcher.handles(r), admit: (r) => dispatcher.admit(r) }
      : { handles: (r) => dispatcher.handles(r), validate: (r) => dispatcher.validate(r) };
  handle.provide(step);
  try {
    await untilAborted(signal);
  } finally {
    dispatcher.close();
  }
}

/** The `mutating-admission-webhook` admission plugin (MutatingAdmissionWebhook). */
export const mutatingWebhookPlugin = definePlugin({
  id: 'mutating-admission-webhook',
  kind: 'admission',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'MutatingAdmissionWebhook: calls the webhooks of MutatingWebhookConfigurations, in order, and applies their JSON patches.',
  configSchema: { type: 'object', additionalProperties: false, properties: {} },
  async start(handle, _config, signal) {
    await runWebhookPlugin(handle, 'mutating', signal);
  },
});

/** The `validating-admission-webhook` admission plugin (ValidatingAdmissionWebhook). */
export const validatingWebhookPlugin = definePlugin({
  id: 'validating-admission-webhook',
  kind: 'admission',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'ValidatingAdmissionWebhook: calls the webhooks of ValidatingWebhookConfigurations in parallel; any refusal refuses the request.',
  configSchema: { type: 'object', additionalProperties: false, properties: {} },
  async start(handle, _config, signal) {
    await runWebhookPlugin(handle, 'validating', signal);
  },
});
