import type { KubeObject } from '@kubernel/sdk';

/** What a pod references that its node may read: secrets, configmaps, PVCs, service accounts. */
export interface PodReferences {
  readonly secrets: Set<string>;
  readonly configMaps: Set<string>;
  readonly claims: Set<string>;
  readonly serviceAccount: string;
}

type Spec = {
  nodeName?: string;
  serviceAccountName?: string;
  imagePullSecrets?: Array<{ name?: string }>;
  volumes?: Array<Record<string, { secretName?: string; name?: string; claimName?: string; sources?: Array<Record<string, { name?: string }>> } | undefined>>;
  containers?: Container[];
  initContainers?: Container[];
  ephemeralContainers?: Container[];
};
type Container = {
  env?: Array<{ valueFrom?: { secretKeyRef?: { name?: string }; configMapKeyRef?: { name?: string } } }>;
  envFrom?: Array<{ secretRef?: { name?: string }; configMapRef?: { name?: string } }>;
};

/** The objects `pod` references (Kubernetes' node authorizer graph edges, per pod). */
export function referencesOf(pod: KubeObject): PodReferences {
  const spec = (pod.spec ?? {}) as Spec;
  const refs: PodReferences = { secrets: new Set(), configMaps: new Set(), claims: new Set(), serviceAccount: spec.serviceAccountName || 'default' };
  for (const s of spec.imagePullSecrets ?? []) if (s.name) refs.secrets.add(s.name);
  for (const v of spec.volumes ?? []) {
    if (v.secret?.secretName) refs.secrets.add(v.secret.secretName);
    if (v.configMap?.name) refs.configMaps.add(v.configMap.name);
    if (v.persistentVolumeClaim?.claimName) refs.claims.add(v.persistentVolumeClaim.claimName);
    for (const source of v.projected?.sources ?? []) {
      if (source.secret?.name) refs.secrets.add(source.secret.name);
      if (source.configMap?.name) refs.configMaps.add(source.configMap.name);
    }
  }
  for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? []), ...(spec.ephemeralContainers ?? [])]) {
    for (const e of c.env ?? []) {
      if (e.valueFrom?.secretKeyRef?.name) refs.secrets.add(e.valueFrom.secretKeyRef.name);
      if (e.valueFrom?.configMapKeyRef?.name) refs.configMaps.add(e.valueFrom.configMapKeyRef.name);
    }
    for (const e of c.envFrom ?? []) {
      if (e.secretRef?.name) refs.secrets.add(e.secretRef.name);
      if (e.configMapRef?.name) refs.configMaps.add(e.configMapRef.name);
    }
  }
  return refs;
}

/** The node a user is, from Kubernetes' node identity convention (`system:node:<name>` in `system:nodes`). */
export function nodeNameOf(user: { username: string; groups: readonly string[] }): string | undefined {
  if (!user.groups.includes('system:nodes') || !user.username.startsWith('system:node:')) return undefined;
  const name = user.username.slice('system:node:'.length);
  return name || undefined;
}
