/** What a request is about, in Kubernetes' RequestInfo terms (also what authorizers see). */
export interface RequestInfo {
  readonly isResourceRequest: boolean;
  readonly path: string;
  /** get, list, watch, create, update, patch, delete, deletecollection (resource requests); the HTTP verb lower-cased otherwise. */
  readonly verb: string;
  readonly apiPrefix: 'api' | 'apis' | '';
  readonly apiGroup: string;
  readonly apiVersion: string;
  readonly namespace: string | undefined;
  readonly resource: string;
  readonly subresource: string | undefined;
  readonly name: string | undefined;
}

const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

/** Parses a request path and method the way the Kubernetes API server does. */
export function requestInfo(method: string, path: string, query: URLSearchParams): RequestInfo {
  const base = { isResourceRequest: false, path, verb: method.toLowerCase(), apiPrefix: '' as const, apiGroup: '', apiVersion: '', namespace: undefined, resource: '', subresource: undefined, name: undefined };
  // As Kubernetes does: outer slashes are trimmed, inner empty segments are kept (and then match
  // nothing): `/api/v1/namespaces/default//configmaps` is not the collection.
  const trimmed = path.replace(/^\/+|\/+$/g, '');
  const parts = trimmed === '' ? [] : trimmed.split('/');
  if (path.includes('%')) for (let i = 0; i < parts.length; i++) parts[i] = decodeURIComponent(parts[i]!);
  if (parts.length === 0 || (parts[0] !== 'api' && parts[0] !== 'apis') || parts.includes('')) return base;
  const prefix = parts[0] as 'api' | 'apis';
  let rest = parts.slice(1);
  let group = '';
  if (prefix === 'apis') {
    if (rest.length < 2) return { ...base, apiPrefix: prefix, apiGroup: rest[0] ?? '' };
    group = rest[0]!;
    rest = rest.slice(1);
  }
  if (rest.length < 2) return { ...base, apiPrefix: prefix, apiGroup: group, apiVersion: rest[0] ?? '' };
  const version = rest[0]!;
  rest = rest.slice(1);
  let watchPath = false;
  if (rest[0] === 'watch') {
    watchPath = true;
    rest = rest.slice(1);
  }
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length > 1) {
    namespace = rest[1];
    if (rest.length > 2 && !NAMESPACE_SUBRESOURCES.has(rest[2]!)) rest = rest.slice(2);
  }
  const resource = rest[0] ?? '';
  const name = rest[1];
  const subresource = rest[2];
  let verb: string;
  const isWatch = watchPath || query.get('watch') === 'true' || query.get('watch') === '1';
  switch (method) {
    case 'GET':
    case 'HEAD':
      verb = name === undefined ? (isWatch ? 'watch' : 'list') : isWatch ? 'watch' : 'get';
      break;
    case 'POST':
      verb = 'create';
      break;
    case 'PUT':
      verb = 'update';
      break;
    case 'PATCH':
      verb = 'patch';
      break;
    case 'DELETE':
      verb = name === undefined ? 'deletecollection' : 'delete';
      break;
    default:
      verb = method.toLowerCase();
  }
  // `namespaces/<name>` addresses the namespace itself.
  if (resource === 'namespaces' && namespace !== undefined && rest[0] === 'namespaces') {
    return { isResourceRequest: true, path, verb: verb === 'list' ? 'get' : verb === 'deletecollection' ? 'delete' : verb, apiPrefix: prefix, apiGroup: group, apiVersion: version, namespace: undefined, resource, subresource: rest[2], name: rest[1] };
  }
  return { isResourceRequest: true, path, verb, apiPrefix: prefix, apiGroup: group, apiVersion: version, namespace, resource, subresource, name };
}
