/**
 * Where the node agent's volume manager and environment builder read API objects from: the
 * {@link VolumeSources} interface (configMaps, secrets, services, service-account tokens), an
 * adapter over the API client ({@link apiVolumeSources}), and the errors both report.
 *
 * @module
 */
import { isNotFound, type ApiClient } from '@kubernel/sdk';
import type { V1ConfigMap, V1Secret, V1Service } from './core-v1.js';

/** What a TokenRequest for a pod's projected token asks for. */
export interface ServiceAccountTokenRequest {
  /** The token's audiences; the API server's own when empty. */
  readonly audiences: readonly string[];
  /** Requested lifetime in seconds. */
  readonly expirationSeconds: number;
  /** The pod the token is bound to (it stops being valid once the pod is gone). */
  readonly podName: string;
  readonly podUid: string;
}

/** A TokenRequest's answer. */
export interface ServiceAccountToken {
  readonly token: string;
  /** RFC 3339 (`2026-01-02T03:04:05Z`). */
  readonly expirationTimestamp: string;
  /** The lifetime the API server granted, when it says (it may differ from the request). */
  readonly expirationSeconds?: number;
}

/**
 * The API objects the agent reads for a pod's volumes and environment. The agent implements it
 * with its API client ({@link apiVolumeSources}); tests use fakes; a caching implementation
 * (informers, or the kubelet's per-object watches) can be swapped in without touching callers.
 *
 * A missing object must be reported by throwing an error {@link isObjectNotFound} recognises
 * (an {@link ObjectNotFoundError}, or the API client's 404 `ApiStatusError`); anything else
 * thrown is treated as a transient failure.
 */
export interface VolumeSources {
  /** The configMap `name` of namespace `ns`. */
  getConfigMap(ns: string, name: string): Promise<V1ConfigMap>;
  /** The secret `name` of namespace `ns` (`data` base64, as served). */
  getSecret(ns: string, name: string): Promise<V1Secret>;
  /** The services of namespace `ns`. */
  listServices(ns: string): Promise<readonly V1Service[]>;
  /** A token of service account `serviceAccountName` bound to the pod (the TokenRequest API). */
  requestServiceAccountToken(ns: string, serviceAccountName: string, request: ServiceAccountTokenRequest): Promise<ServiceAccountToken>;
}

/** The object a {@link VolumeSources} call did not find, named as the kubelet's caches name it. */
export class ObjectNotFoundError extends Error {
  override readonly name = 'ObjectNotFoundError';
  constructor(
    /** `configmap`, `secret`, ... (singular, lower case, as the kubelet's messages say). */
    readonly resource: string,
    readonly objectName: string,
  ) {
    super(`${resource} "${objectName}" not found`);
  }
}

/** True for an {@link ObjectNotFoundError} or an API 404. */
export function isObjectNotFound(err: unknown): boolean {
  return err instanceof ObjectNotFoundError || isNotFound(err);
}

/** The reason the pod worker reports a container as waiting with when its config cannot be made. */
export const CREATE_CONTAINER_CONFIG_ERROR = 'CreateContainerConfigError';

/**
 * The container's configuration (environment, mounts) cannot be made: the pod worker reports the
 * container as waiting with {@link reason} `CreateContainerConfigError` and this message (the
 * kubelet's wording: `configmap "x" not found`, `couldn't find key k in ConfigMap ns/x`, ...), and
 * retries on a later sync.
 */
export class ContainerConfigError extends Error {
  override readonly name = 'ContainerConfigError';
  readonly reason = CREATE_CONTAINER_CONFIG_ERROR;
}

const seg = encodeURIComponent;

/**
 * {@link VolumeSources} over the API: GETs of `configmaps`/`secrets`, a LIST of `services`, and
 * the TokenRequest subresource `serviceaccounts/<name>/token` with a `boundObjectRef` to the pod.
 * A 404 becomes an {@link ObjectNotFoundError} with the kubelet's wording. No caching: every call
 * is a request (the volume manager rate-limits its refreshes; see `VolumeManagerOptions`).
 */
export function apiVolumeSources(api: ApiClient): VolumeSources {
  const get = async <T>(resource: string, plural: string, ns: string, name: string): Promise<T> => {
    try {
      return await api.get<T>(`/api/v1/namespaces/${seg(ns)}/${plural}/${seg(name)}`);
    } catch (err) {
      if (isNotFound(err)) throw new ObjectNotFoundError(resource, name);
      throw err;
    }
  };
  return {
    getConfigMap: (ns, name) => get<V1ConfigMap>('configmap', 'configmaps', ns, name),
    getSecret: (ns, name) => get<V1Secret>('secret', 'secrets', ns, name),
    async listServices(ns) {
      return (await api.list<V1Service>(`/api/v1/namespaces/${seg(ns)}/services`)).items;
    },
    async requestServiceAccountToken(ns, serviceAccountName, request) {
      const body = {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: {
          ...(request.audiences.length > 0 ? { audiences: [...request.audiences] } : {}),
          expirationSeconds: request.expirationSeconds,
          boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: request.podName, uid: request.podUid },
        },
      };
      let answer: { spec?: { expirationSeconds?: number }; status?: { token?: string; expirationTimestamp?: string } };
      try {
        answer = await api.create(`/api/v1/namespaces/${seg(ns)}/serviceaccounts/${seg(serviceAccountName)}/token`, body);
      } catch (err) {
        if (isNotFound(err)) throw new ObjectNotFoundError('serviceaccount', serviceAccountName);
        throw err;
      }
      const token = answer.status?.token;
      const expirationTimestamp = answer.status?.expirationTimestamp;
      if (!token || !expirationTimestamp) throw new Error(`TokenRequest for ${ns}/${serviceAccountName}: the answer has no token or expirationTimestamp`);
      return { token, expirationTimestamp, ...(typeof answer.spec?.expirationSeconds === 'number' ? { expirationSeconds: answer.spec.expirationSeconds } : {}) };
    },
  };
}
