/**
 * Kubernetes `Status` errors: every error crossing the API is one, with the HTTP code and reason
 * Kubernetes uses (api-conventions: "Response Status Kind").
 */

/** One field-level problem, as `Status.details.causes` lists them. */
export interface StatusCause {
  /** `FieldValueInvalid`, `FieldValueRequired`, `FieldValueDuplicate`, `FieldValueNotSupported`, `FieldValueForbidden`, `FieldValueTooLong`, ... */
  readonly reason: string;
  readonly message: string;
  /** The field path, e.g. `metadata.name` or `spec.containers[0].ports[1].containerPort`. */
  readonly field: string;
}

/** Identifies what a Status is about. */
export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

/** A request that fails with a Kubernetes Status. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
  }

  /** The Status object to send. */
  toStatus(): Record<string, unknown> {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      ...(this.details ? { details: this.details } : {}),
      code: this.code,
    };
  }
}

/** `{group}` or `{resource}.{group}` as Kubernetes names a group resource in messages. */
export function groupResource(resource: string, group: string): string {
  return group ? `${resource}.${group}` : resource;
}

export const badRequest = (message: string, details?: StatusDetails): ApiError => new ApiError(400, 'BadRequest', message, details);

export const notFound = (resource: string, group: string, name: string): ApiError =>
  new ApiError(404, 'NotFound', `${groupResource(resource, group)} "${name}" not found`, { name, group, kind: resource });

export const alreadyExists = (resource: string, group: string, name: string): ApiError =>
  new ApiError(409, 'AlreadyExists', `${groupResource(resource, group)} "${name}" already exists`, { name, group, kind: resource });

export const conflict = (resource: string, group: string, name: string, why: string): ApiError =>
  new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${groupResource(resource, group)} "${name}": ${why}`, { name, group, kind: resource });

/** 422 Invalid, naming each bad field. */
export function invalid(kind: string, group: string, name: string, causes: StatusCause[]): ApiError {
  const list = causes.map((c) => `${c.field}: ${c.message}`);
  const summary = list.length === 1 ? list[0] : `[${list.join(', ')}]`;
  return new ApiError(422, 'Invalid', `${kind} "${name}" is invalid: ${summary}`, { name, group, kind, causes });
}

export const forbidden = (message: string, details?: StatusDetails): ApiError => new ApiError(403, 'Forbidden', message, details);

export const methodNotAllowed = (verb: string, what: string): ApiError =>
  new ApiError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource (${verb} ${what})`);

export const gone = (message: string): ApiError => new ApiError(410, 'Expired', message);

export const unsupportedMediaType = (type: string): ApiError => new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got ${type})`);

export const tooLarge = (limit: number): ApiError => new ApiError(413, 'RequestEntityTooLarge', `the request body is larger than the limit of ${limit} bytes`);

export const internal = (message: string): ApiError => new ApiError(500, 'InternalError', `Internal error occurred: ${message}`);

export const unavailable = (message: string): ApiError => new ApiError(503, 'ServiceUnavailable', message);

export const timeout = (message: string): ApiError => new ApiError(504, 'Timeout', message);

/** A cause builder, for validation code. */
export const cause = (reason: string, field: string, message: string): StatusCause => ({ reason, field, message });
