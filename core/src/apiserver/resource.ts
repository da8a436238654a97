import type { AuthorizationAttributes, AuthorizationDecision, SubjectRules, UserInfo } from '@kubernel/sdk';
import type { StatusCause } from './status.js';

/** A Kubernetes object as JSON. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Obj = Record<string, any>;

/** A server-side printing column (meta.k8s.io/v1 TableColumnDefinition). */
export interface Column {
  readonly name: string;
  readonly type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  readonly format?: 'name' | string;
  readonly description: string;
  /** 0: always shown; 1: only with `-o wide`. */
  readonly priority: 0 | 1;
}

/** Where a scalable resource keeps its replica counts (the scale subresource). */
export interface ScaleSpec {
  readonly specReplicas: (o: Obj) => number;
  readonly statusReplicas: (o: Obj) => number;
  readonly selector: (o: Obj) => string;
  readonly setReplicas: (o: Obj, replicas: number) => void;
}

/** What a resource's hooks may use of the server. */
export interface HookContext {
  /** Reads an object by its store key (consistent read). */
  readonly getStored: (key: string) => Promise<Obj | undefined>;
  /** Allocates and releases Service addresses and node ports. */
  readonly allocators: {
    clusterIP(requested: string | undefined, dryRun: boolean): Promise<string>;
    releaseClusterIP(ip: string): Promise<void>;
    nodePort(requested: number | undefined, dryRun: boolean): Promise<number>;
    releaseNodePort(port: number): Promise<void>;
  };
}

/** What a review resource's handler may use: the requester and the authorizer chain. */
export interface ReviewContext {
  readonly user: UserInfo;
  decide(attributes: AuthorizationAttributes): Promise<AuthorizationDecision>;
  rulesFor(user: UserInfo, namespace: string): Promise<SubjectRules>;
  /** Runs the authenticator chain on a bearer token (TokenReview). */
  authenticateToken(token: string): Promise<{ user: UserInfo } | { error: string }>;
}

/**
 * One built-in resource: everything the generic REST handlers need to serve it. Adding a type is
 * one of these: names and scope, schema, defaults, validation, printing columns, subresources.
 */
export interface ResourceDef {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  /** The plural, lower-case resource name (`pods`). */
  readonly plural: string;
  readonly singular: string;
  readonly namespaced: boolean;
  readonly shortNames?: readonly string[];
  readonly categories?: readonly string[];
  /** The OpenAPI definition of its schema (`io.k8s.api.core.v1.Pod`). */
  readonly definition: string;
  /** Verbs; all of get, list, watch, create, update, patch, delete, deletecollection by default. */
  readonly verbs?: readonly string[];
  /** A `status` subresource: status is written only through it, and spec changes bump generation. */
  readonly statusSubresource?: boolean;
  readonly scale?: ScaleSpec;
  /** Fills in defaults, in place (before validation). */
  readonly defaults?: (o: Obj) => void;
  /** Semantic validation of a new object. */
  readonly validate?: (o: Obj) => StatusCause[];
  /** Semantic validation of an update (immutable fields and the like). */
  readonly validateUpdate?: (o: Obj, old: Obj) => StatusCause[];
  /** Called before a create is stored (allocations). */
  readonly beforeCreate?: (o: Obj, ctx: HookContext, dryRun: boolean) => Promise<void>;
  /** Called before an update is stored. */
  readonly beforeUpdate?: (o: Obj, old: Obj, ctx: HookContext, dryRun: boolean) => Promise<void>;
  /** Called after a delete is stored (releases). */
  readonly afterDelete?: (o: Obj, ctx: HookContext) => Promise<void>;
  /** Extra printing columns between NAME and AGE; the row function returns their cells. */
  readonly columns?: readonly Column[];
  readonly row?: (o: Obj) => unknown[];
  /** Supported field selectors beyond metadata.name and metadata.namespace. */
  readonly fields?: Readonly<Record<string, (o: Obj) => string>>;
  /**
   * A review resource (TokenReview, SubjectAccessReview, ...): create-only and never stored; the
   * handler answers the posted object with its status filled in.
   */
  readonly review?: (o: Obj, ctx: ReviewContext, namespace: string | undefined) => Promise<Obj>;
  /**
   * Subresources besides status and scale that update the object (GET, PUT, PATCH), e.g. the CSR's
   * `approval`; {@link prepareForUpdate} must restrict what each may change.
   */
  readonly subresources?: readonly string[];
  /** Sets server-owned fields of a new object from the requester (Kubernetes' PrepareForCreate); runs after mutating admission. */
  readonly prepareForCreate?: (o: Obj, user: UserInfo) => void;
  /**
   * Restricts an update to what its endpoint may change (`''` for the object itself, `status`, or
   * one of {@link subresources}), after the generic rules (Kubernetes' PrepareForUpdate).
   */
  readonly prepareForUpdate?: (o: Obj, old: Obj, subresource: string) => void;
  /** Pods: deleting a scheduled pod marks it for graceful termination by the node agent. */
  readonly gracefulDelete?: (o: Obj) => number | undefined;
}

export const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'] as const;

/** `apiVersion` of a resource (`v1`, `apps/v1`). */
export function apiVersionOf(def: ResourceDef): string {
  return def.group ? `${def.group}/${def.version}` : def.version;
}
