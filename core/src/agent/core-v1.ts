/**
 * The `core/v1` shapes the node agent's volume manager and environment builder read: structural
 * subsets of the API types (field names and shapes as the API serves them), so a fuller Pod type
 * (kubernetes-types, a decoded API object) is assignable.
 *
 * @module
 */

/** `ObjectFieldSelector`: a field of the pod (`metadata.name`, `metadata.labels['k']`, `status.podIP`). */
export interface V1ObjectFieldSelector {
  /** The schema version the path is written in; `v1` when absent (API defaulting). */
  readonly apiVersion?: string;
  readonly fieldPath: string;
}

/** `ResourceFieldSelector`: a container's resource request or limit (`limits.cpu`), scaled by `divisor`. */
export interface V1ResourceFieldSelector {
  /** The container; the one being configured when absent (env vars only). */
  readonly containerName?: string;
  /** `limits.cpu`, `requests.memory`, `limits.ephemeral-storage`, `requests.hugepages-2Mi`, ... */
  readonly resource: string;
  /** A quantity; `1` when absent or zero. */
  readonly divisor?: string | number;
}

/** `ConfigMapKeySelector` / `SecretKeySelector`. */
export interface V1KeySelector {
  readonly name?: string;
  readonly key: string;
  readonly optional?: boolean;
}

/** `EnvVarSource`. */
export interface V1EnvVarSource {
  readonly fieldRef?: V1ObjectFieldSelector;
  readonly resourceFieldRef?: V1ResourceFieldSelector;
  readonly configMapKeyRef?: V1KeySelector;
  readonly secretKeyRef?: V1KeySelector;
}

/** `EnvVar`. */
export interface V1EnvVar {
  readonly name: string;
  readonly value?: string;
  readonly valueFrom?: V1EnvVarSource;
}

/** `ConfigMapEnvSource` / `SecretEnvSource`. */
export interface V1EnvFromRef {
  readonly name?: string;
  readonly optional?: boolean;
}

/** `EnvFromSource`. */
export interface V1EnvFromSource {
  /** Prepended to every key. */
  readonly prefix?: string;
  readonly configMapRef?: V1EnvFromRef;
  readonly secretRef?: V1EnvFromRef;
}

/** `MountPropagationMode`. */
export type V1MountPropagationMode = 'None' | 'HostToContainer' | 'Bidirectional';

/** `VolumeMount`. */
export interface V1VolumeMount {
  /** The pod volume's name. */
  readonly name: string;
  /** Where the volume appears in the container. */
  readonly mountPath: string;
  readonly readOnly?: boolean;
  /** A path inside the volume to mount instead of its root. */
  readonly subPath?: string;
  /** Like `subPath`, with `$(VAR)` references to the container's environment expanded. */
  readonly subPathExpr?: string;
  readonly mountPropagation?: V1MountPropagationMode | (string & {});
}

/** `ResourceRequirements`: quantities by resource name. */
export interface V1ResourceRequirements {
  readonly limits?: Readonly<Record<string, string | number>>;
  readonly requests?: Readonly<Record<string, string | number>>;
}

/** `Container`: the fields the environment builder and the volume manager read. */
export interface V1PodContainer {
  readonly name: string;
  readonly command?: readonly string[];
  readonly args?: readonly string[];
  readonly env?: readonly V1EnvVar[];
  readonly envFrom?: readonly V1EnvFromSource[];
  readonly volumeMounts?: readonly V1VolumeMount[];
  readonly resources?: V1ResourceRequirements;
  /** `/dev/termination-log` by API defaulting; no termination-message file when empty. */
  readonly terminationMessagePath?: string;
  /** On init containers, `Always` makes a sidecar. */
  readonly restartPolicy?: string;
}

/** `KeyToPath`: one key of a configMap or secret projected to a file. */
export interface V1KeyToPath {
  readonly key: string;
  /** Relative path of the file; no `..` element, not starting with `..`. */
  readonly path: string;
  /** File mode bits (0-0777); the volume's `defaultMode` when absent. */
  readonly mode?: number;
}

/** `EmptyDirVolumeSource`. */
export interface V1EmptyDirVolumeSource {
  /** `''` (the node's disk) or `Memory` (tmpfs). */
  readonly medium?: string;
  /** A quantity; the tmpfs size for `Memory`. */
  readonly sizeLimit?: string | number;
}

/** `HostPathVolumeSource`. */
export interface V1HostPathVolumeSource {
  readonly path: string;
  /** `''`, `DirectoryOrCreate`, `Directory`, `FileOrCreate`, `File`, `Socket`, `CharDevice`, `BlockDevice`. */
  readonly type?: string;
}

/** `ConfigMapVolumeSource`. */
export interface V1ConfigMapVolumeSource {
  readonly name?: string;
  readonly items?: readonly V1KeyToPath[];
  /** Default 0644. */
  readonly defaultMode?: number;
  readonly optional?: boolean;
}

/** `SecretVolumeSource`. */
export interface V1SecretVolumeSource {
  readonly secretName?: string;
  readonly items?: readonly V1KeyToPath[];
  /** Default 0644. */
  readonly defaultMode?: number;
  readonly optional?: boolean;
}

/** `DownwardAPIVolumeFile`. */
export interface V1DownwardAPIVolumeFile {
  readonly path: string;
  readonly fieldRef?: V1ObjectFieldSelector;
  readonly resourceFieldRef?: V1ResourceFieldSelector;
  readonly mode?: number;
}

/** `DownwardAPIVolumeSource`. */
export interface V1DownwardAPIVolumeSource {
  readonly items?: readonly V1DownwardAPIVolumeFile[];
  /** Default 0644. */
  readonly defaultMode?: number;
}

/** `ServiceAccountTokenProjection`. */
export interface V1ServiceAccountTokenProjection {
  /** The token's audience; the API server's issuer when absent. */
  readonly audience?: string;
  /** Requested lifetime; 3600 by API defaulting, at least 600. */
  readonly expirationSeconds?: number;
  readonly path: string;
}

/** `VolumeProjection`: one source of a projected volume. */
export interface V1VolumeProjection {
  readonly configMap?: { readonly name?: string; readonly items?: readonly V1KeyToPath[]; readonly optional?: boolean };
  readonly secret?: { readonly name?: string; readonly items?: readonly V1KeyToPath[]; readonly optional?: boolean };
  readonly downwardAPI?: { readonly items?: readonly V1DownwardAPIVolumeFile[] };
  readonly serviceAccountToken?: V1ServiceAccountTokenProjection;
}

/** `ProjectedVolumeSource`. */
export interface V1ProjectedVolumeSource {
  readonly sources?: readonly V1VolumeProjection[];
  /** Default 0644. */
  readonly defaultMode?: number;
}

/** `PersistentVolumeClaimVolumeSource`. */
export interface V1PersistentVolumeClaimVolumeSource {
  readonly claimName: string;
  readonly readOnly?: boolean;
}

/** `Volume`: a pod volume (the sources the agent knows; others are carried through untyped). */
export interface V1Volume {
  readonly name: string;
  readonly emptyDir?: V1EmptyDirVolumeSource;
  readonly hostPath?: V1HostPathVolumeSource;
  readonly configMap?: V1ConfigMapVolumeSource;
  readonly secret?: V1SecretVolumeSource;
  readonly downwardAPI?: V1DownwardAPIVolumeSource;
  readonly projected?: V1ProjectedVolumeSource;
  readonly persistentVolumeClaim?: V1PersistentVolumeClaimVolumeSource;
  readonly csi?: unknown;
  readonly ephemeral?: unknown;
}

/** `HostAlias`: extra `/etc/hosts` lines. */
export interface V1HostAlias {
  readonly ip: string;
  readonly hostnames?: readonly string[];
}

/** `Pod`: the fields the environment builder and the volume manager read. */
export interface V1PodObject {
  readonly metadata: {
    readonly name?: string;
    readonly namespace?: string;
    readonly uid?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations?: Readonly<Record<string, string>>;
  };
  readonly spec: {
    readonly containers: readonly V1PodContainer[];
    readonly initContainers?: readonly V1PodContainer[];
    readonly volumes?: readonly V1Volume[];
    readonly nodeName?: string;
    readonly serviceAccountName?: string;
    readonly hostNetwork?: boolean;
    readonly hostname?: string;
    readonly subdomain?: string;
    readonly hostAliases?: readonly V1HostAlias[];
    /** True when absent (API defaulting). */
    readonly enableServiceLinks?: boolean;
  };
  readonly status?: {
    readonly podIP?: string;
    readonly podIPs?: readonly { readonly ip: string }[];
    readonly hostIP?: string;
    readonly hostIPs?: readonly { readonly ip: string }[];
  };
}

/** `ConfigMap`: `data` (UTF-8) and `binaryData` (base64). */
export interface V1ConfigMap {
  readonly metadata?: { readonly name?: string; readonly namespace?: string };
  readonly data?: Readonly<Record<string, string>>;
  readonly binaryData?: Readonly<Record<string, string>>;
}

/** `Secret`: `data` values are base64, as the API serves them. */
export interface V1Secret {
  readonly metadata?: { readonly name?: string; readonly namespace?: string };
  readonly type?: string;
  readonly data?: Readonly<Record<string, string>>;
}

/** `ServicePort`. */
export interface V1ServicePort {
  readonly name?: string;
  readonly port: number;
  /** `TCP` when absent. */
  readonly protocol?: string;
}

/** `Service`: what the service environment variables are made of. */
export interface V1Service {
  readonly metadata: { readonly name?: string; readonly namespace?: string };
  readonly spec?: {
    /** `None` for headless services; empty for ExternalName ones. */
    readonly clusterIP?: string;
    readonly ports?: readonly V1ServicePort[];
  };
}
