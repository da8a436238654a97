/**
 * DefaultBinder: binds a pod by creating its `pods/binding` subresource (the API server sets
 * `spec.nodeName` and the `PodScheduled` condition).
 *
 * @module
 */
import { defineSchedulerPlugin, Status, type FrameworkPlugin, type SchedulerPluginFactory } from '@kubernel/sdk';

/** The DefaultBinder factory. */
export const defaultBinderFactory: SchedulerPluginFactory = {
  name: 'DefaultBinder',
  create(_args, handle): FrameworkPlugin {
    return {
      name: 'DefaultBinder',
      async bind(_state, pod, nodeName) {
        const ns = String(pod.metadata?.namespace ?? 'default');
        const name = String(pod.metadata?.name);
        try {
          await handle.api.create(`/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(name)}/binding`, {
            apiVersion: 'v1',
            kind: 'Binding',
            metadata: { name, namespace: ns, uid: pod.metadata?.uid },
            target: { apiVersion: 'v1', kind: 'Node', name: nodeName },
          });
          return undefined;
        } catch (err) {
          return Status.error(err);
        }
      },
    };
  },
};

/** The DefaultBinder plugin (id `scheduler-default-binder`). */
export const defaultBinderPlugin = defineSchedulerPlugin({
  id: 'scheduler-default-binder',
  version: '0.1.0',
  description: 'DefaultBinder: binds pods through the pods/binding subresource.',
  factory: defaultBinderFactory,
});
