/**
 * The contracts of the API server's request chain: authenticators, authorizers and admission
 * plugins, with Kubernetes' meaning (`k8s.io/apiserver` `authenticator.Request`,
 * `authorizer.Authorizer`, `admission.Interface`). The API server runs them in this order for every
 * request: authenticate (a chain, first success wins), authorize (a chain, first Allow or Deny
 * wins; nobody deciding is a Deny), then admission (every mutating step, then every validating
 * step), then validation and the store.
 *
 * @module
 */
import type { Extension } from '../plugin/extensions.js';

/** Who made a request (`user.Info`). Group and extra names follow Kubernetes (`system:authenticated`, ...). */
export interface UserInfo {
  readonly username: string;
  readonly uid?: string;
  readonly groups: readonly string[];
  readonly extra?: Readonly<Record<string, readonly string[]>>;
}

/** The subject of a verified client certificate. */
export interface CertificateSubject {
  /** The Common Name (Kubernetes takes it as the user name). */
  readonly commonName: string;
  /** The Organization values (Kubernetes takes them as groups). */
  readonly organizations: readonly string[];
}

/**
 * What an authenticator sees of a request. Header names are lower-case. `clientCertificate` is
 * present only when the TLS layer verified the peer's certificate chain against the cluster's
 * client CA (an unverified certificate never reaches authenticators).
 */
export interface AuthenticationRequest {
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  readonly clientCertificate?: CertificateSubject;
  /** The remote address, for logs and audit. */
  readonly remoteAddress?: string;
}

/**
 * An authenticator's answer: `undefined` when the request carries no credentials of its kind (the
 * next authenticator tries), `{user}` when they are valid, `{error}` when they are its kind but
 * invalid (expired, wrong audience, unknown token). The API server answers 401 when nobody
 * authenticated the request and at least one said `error`, or when nobody recognised it and
 * anonymous access is not allowed for the path.
 */
export type AuthenticationResult = { readonly user: UserInfo } | { readonly error: string } | undefined;

/**
 * The bearer token of a request (`Authorization: Bearer <token>`, scheme case-insensitive), or
 * undefined when it carries none or a malformed header. Token authenticators share this parsing.
 */
export function bearerToken(request: AuthenticationRequest): string | undefined {
  const h = request.headers.authorization;
  const value = Array.isArray(h) ? h[0] : h;
  if (typeof value !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(value);
  return m ? m[1] : undefined;
}

/** The `authenticator` kind's contract. Must not throw for malformed input: answer `{error}`. */
export interface Authenticator extends Extension {
  authenticate(request: AuthenticationRequest): Promise<AuthenticationResult>;
}

/**
 * The attributes a request is authorized on (`authorizer.Attributes`). For resource requests
 * `verb` is a Kubernetes verb (get, list, watch, create, update, patch, delete, deletecollection,
 * or a special one such as impersonate, bind, escalate); for non-resource requests it is the HTTP
 * method in lower case and `path` the URL path.
 */
export interface AuthorizationAttributes {
  readonly user: UserInfo;
  readonly verb: string;
  readonly isResourceRequest: boolean;
  readonly path: string;
  readonly apiGroup: string;
  readonly apiVersion: string;
  readonly namespace: string;
  readonly resource: string;
  readonly subresource: string;
  readonly name: string;
}

/** An authorizer's verdict; `no-opinion` hands the request to the next authorizer. */
export interface AuthorizationDecision {
  readonly decision: 'allow' | 'deny' | 'no-opinion';
  /** Why (shown in SubjectAccessReview status and in 403 messages). */
  readonly reason?: string;
}

/** A rule a subject holds in a namespace, for `SelfSubjectRulesReview` (`kubectl auth can-i --list`). */
export interface ResourceRule {
  readonly verbs: readonly string[];
  readonly apiGroups: readonly string[];
  readonly resources: readonly string[];
  readonly resourceNames?: readonly string[];
}

/** A non-resource rule a subject holds. */
export interface NonResourceRule {
  readonly verbs: readonly string[];
  readonly nonResourceURLs: readonly string[];
}

/** What {@link Authorizer.rulesFor} answers. */
export interface SubjectRules {
  readonly resourceRules: readonly ResourceRule[];
  readonly nonResourceRules: readonly NonResourceRule[];
  /** True when the authorizer could not list every rule (its answer is then a lower bound). */
  readonly incomplete: boolean;
  readonly evaluationError?: string;
}

/** The `authorizer` kind's contract. Must not throw: an internal failure is `no-opinion` with a reason. */
export interface Authorizer extends Extension {
  authorize(attributes: AuthorizationAttributes): Promise<AuthorizationDecision>;
  /** The rules `user` holds in `namespace` (optional; authorizers that cannot list rules omit it). */
  rulesFor?(user: UserInfo, namespace: string): Promise<SubjectRules>;
}

/** The kind of the object an admission request is about. */
export interface GroupVersionKind {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
}

/** The resource an admission request is about. */
export interface GroupVersionResource {
  readonly group: string;
  readonly version: string;
  readonly resource: string;
}

/** A JSON object as the API carries it. */
export type ApiObject = Record<string, unknown> & {
  apiVersion?: string;
  kind?: string;
  metadata?: Record<string, unknown> & { name?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
};

/** What an admission step sees (`admission.Attributes`). */
export interface AdmissionRequest {
  /** Unique per API request (webhook calls carry their own uid per round trip, as in Kubernetes). */
  readonly uid: string;
  readonly operation: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  readonly kind: GroupVersionKind;
  readonly resource: GroupVersionResource;
  /** '' for the main resource. */
  readonly subresource: string;
  /** '' for cluster-scoped objects. */
  readonly namespace: string;
  readonly name: string;
  /**
   * The object being written: mutating steps may change it in place; validating steps must not.
   * Undefined for DELETE.
   */
  readonly object: ApiObject | undefined;
  /** The stored object for UPDATE and DELETE. */
  readonly oldObject: ApiObject | undefined;
  readonly user: UserInfo;
  readonly dryRun: boolean;
  /** Adds a warning the client sees (a `Warning: 299` header; kubectl prints it). */
  warning(text: string): void;
}

/** A field a denial is about (a `StatusCause`). */
export interface AdmissionCause {
  /** The field path, as Kubernetes writes it (`spec.containers[0].securityContext.privileged`). */
  readonly field: string;
  readonly message: string;
  /** A `CauseType` (`FieldValueForbidden`, `FieldValueInvalid`, ...). */
  readonly reason?: string;
}

/**
 * Thrown by an admission step to refuse a request. The API server answers with a `Status` of
 * `code` (403 Forbidden by default; 422 Invalid; 429 TooManyRequests) naming the plugin, the
 * message and each cause. Nothing is stored.
 */
export class AdmissionDenied extends Error {
  override readonly name = 'AdmissionDenied';
  constructor(
    message: string,
    readonly code: 403 | 409 | 422 | 429 | 400 | 404 | 500 = 403,
    readonly causes: readonly AdmissionCause[] = [],
    /** The object the Status names, when it is not the request's (a missing namespace: `{kind: 'namespaces', name}`). */
    readonly details?: { readonly name?: string; readonly group?: string; readonly kind?: string },
  ) {
    super(message);
  }
}

/**
 * The `admission` kind's contract. Every step's `admit` runs (in distribution order), then every
 * step's `validate`. `handles` filters cheaply which requests a step wants; absent, it sees all.
 * A thrown {@link AdmissionDenied} refuses the request; any other throw is an internal error (500).
 */
export interface Admission extends Extension {
  handles?(request: AdmissionRequest): boolean;
  /** Mutating phase: may change `request.object`. */
  admit?(request: AdmissionRequest): Promise<void>;
  /** Validating phase: may only refuse. */
  validate?(request: AdmissionRequest): Promise<void>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const optionalFunction = (v: Record<string, unknown>, name: string): boolean => v[name] === undefined || typeof v[name] === 'function';

/** True when `value` implements {@link Authenticator}. */
export function isAuthenticator(value: unknown): value is Authenticator {
  return isObject(value) && typeof value.authenticate === 'function';
}

/** True when `value` implements {@link Authorizer}. */
export function isAuthorizer(value: unknown): value is Authorizer {
  return isObject(value) && typeof value.authorize === 'function' && optionalFunction(value, 'rulesFor');
}

/** True when `value` implements {@link Admission} (at least one of `admit` and `validate`). */
export function isAdmission(value: unknown): value is Admission {
  return (
    isObject(value) &&
    (typeof value.admit === 'function' || typeof value.validate === 'function') &&
    optionalFunction(value, 'admit') &&
    optionalFunction(value, 'validate') &&
    optionalFunction(value, 'handles')
  );
}
