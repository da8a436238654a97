import type { IncomingMessage } from 'node:http';
import type { RequestInfo } from './request-info.js';
import type { Obj, ResourceDef } from './resource.js';

/** Who made a request. */
export interface UserInfo {
  readonly username: string;
  readonly uid?: string;
  readonly groups: readonly string[];
  readonly extra?: Readonly<Record<string, readonly string[]>>;
}

/** Turns a request's credentials into a user; undefined means "not mine" (the next one tries). */
export interface Authenticator {
  readonly name: string;
  authenticate(req: IncomingMessage): Promise<UserInfo | undefined>;
}

/** An authorizer's verdict; `no-opinion` passes the request to the next authorizer. */
export type Decision = { readonly decision: 'allow' | 'deny' | 'no-opinion'; readonly reason?: string };

export interface Authorizer {
  readonly name: string;
  authorize(user: UserInfo, info: RequestInfo): Promise<Decision>;
}

/** What an admission step sees. */
export interface AdmissionRequest {
  readonly operation: 'CREATE' | 'UPDATE' | 'DELETE';
  readonly resource: ResourceDef;
  readonly subresource: string | undefined;
  readonly namespace: string | undefined;
  readonly name: string;
  /** The object being written (mutating steps may change it); undefined for DELETE. */
  readonly object: Obj | undefined;
  readonly oldObject: Obj | undefined;
  readonly user: UserInfo;
  readonly dryRun: boolean;
}

/** One admission step: mutate first (all steps), then validate (all steps); throw an ApiError to refuse. */
export interface AdmissionStep {
  readonly name: string;
  mutate?(request: AdmissionRequest): Promise<void>;
  validate?(request: AdmissionRequest): Promise<void>;
}

/**
 * The stages every resource request passes: authenticate (first success wins), authorize (first
 * allow or deny wins; no decision is a deny), admission (mutating, then validating). The security
 * issue fills these with x509/token/service-account authenticators, RBAC and Node authorizers and
 * the admission plugins.
 */
export interface RequestChain {
  readonly authenticators: readonly Authenticator[];
  readonly authorizers: readonly Authorizer[];
  readonly admission: readonly AdmissionStep[];
}

/** The anonymous user, as Kubernetes names it. */
export const ANONYMOUS: UserInfo = { username: 'system:anonymous', groups: ['system:unauthenticated'] };

/**
 * Kubernetes' `AlwaysAllow` authorization mode: every request is allowed. Only for a cluster with
 * no authorization configured (the development default until RBAC is enabled).
 */
export const ALWAYS_ALLOW: Authorizer = { name: 'AlwaysAllow', authorize: async () => ({ decision: 'allow' }) };
