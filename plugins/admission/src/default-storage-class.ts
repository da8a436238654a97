import { definePlugin, untilAborted, type Admission, type Informer, type KubeObject } from '@kubernel/sdk';

const DEFAULT_ANNOTATIONS = ['storageclass.kubernetes.io/is-default-class', 'storageclass.beta.kubernetes.io/is-default-class'];

/** True when a StorageClass is marked as the cluster default. */
export const isDefaultClass = (sc: KubeObject): boolean => DEFAULT_ANNOTATIONS.some((a) => sc.metadata?.annotations?.[a] === 'true');

/** The default StorageClass: of several marked default, the newest (then the first by name), as Kubernetes 1.28+ picks. */
export function defaultClass(classes: readonly KubeObject[]): KubeObject | undefined {
  return classes
    .filter(isDefaultClass)
    .sort((a, b) => String(b.metadata?.creationTimestamp ?? '').localeCompare(String(a.metadata?.creationTimestamp ?? '')) || String(a.metadata?.name).localeCompare(String(b.metadata?.name)))[0];
}

/**
 * DefaultStorageClass: a PersistentVolumeClaim created without `spec.storageClassName` gets the
 * default StorageClass's name. An explicit `""` asks for no class and is left alone; with no
 * default class the claim is left alone too.
 */
export function defaultStorageClass(classes: Informer): Admission {
  return {
    handles: (r) => r.operation === 'CREATE' && r.subresource === '' && r.resource.group === '' && r.resource.resource === 'persistentvolumeclaims',
    async admit(r) {
      const spec = (r.object as KubeObject | undefined)?.spec as Record<string, unknown> | undefined;
      if (typeof spec !== 'object' || spec === null || spec.storageClassName !== undefined) return;
      const sc = defaultClass(classes.list());
      if (sc) spec.storageClassName = sc.metadata?.name;
    },
  };
}

/** The `default-storage-class` admission plugin. */
export const defaultStorageClassPlugin = definePlugin({
  id: 'default-storage-class',
  kind: 'admission',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'DefaultStorageClass: claims without a storageClassName get the cluster default StorageClass.',
  configSchema: { type: 'object', additionalProperties: false, properties: {} },
  async start(handle, _config, signal) {
    const classes = handle.api.informer<KubeObject>('/apis/storage.k8s.io/v1/storageclasses');
    classes.run();
    await classes.waitForSync(signal);
    handle.provide(defaultStorageClass(classes));
    await untilAborted(signal);
  },
});
