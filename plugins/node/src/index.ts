/**
 * `@kubernel/plugin-node`: Kubernetes' Node authorization mode and NodeRestriction admission. A
 * node (`system:node:<name>` in `system:nodes`) may read the secrets, configmaps and claims of the
 * pods bound to it (and no others), write the status of its own pods, its own Node, Lease and
 * CSINode, create mirror pods bound to itself, request tokens for its pods' service accounts, and
 * read what a kubelet needs (nodes, pods, services, endpoints); everything else gets no opinion.
 *
 * @packageDocumentation
 */
import {
  AdmissionDenied,
  definePlugin,
  untilAborted,
  type Admission,
  type AuthorizationAttributes,
  type AuthorizationDecision,
  type Authorizer,
  type KubeObject,
  type ResourceRule,
} from '@kubernel/sdk';
import { nodeNameOf, referencesOf, type PodReferences } from './graph.js';

export { nodeNameOf, referencesOf } from './graph.js';
export type { PodReferences } from './graph.js';

/** Pods by node, with what each references (the authorizer's graph). */
export class NodeGraph {
  private readonly byNode = new Map<string, Map<string, { namespace: string; refs: PodReferences }>>();
  private readonly nodeOf = new Map<string, string>();

  /** Records (or replaces) a pod. */
  set(pod: KubeObject): void {
    const key = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    this.delete(pod);
    const node = (pod.spec as { nodeName?: string } | undefined)?.nodeName;
    if (!node) return;
    let pods = this.byNode.get(node);
    if (!pods) this.byNode.set(node, (pods = new Map()));
    pods.set(key, { namespace: String(pod.metadata?.namespace), refs: referencesOf(pod) });
    this.nodeOf.set(key, node);
  }

  delete(pod: KubeObject): void {
    const key = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    const node = this.nodeOf.get(key);
    if (node === undefined) return;
    this.byNode.get(node)?.delete(key);
    this.nodeOf.delete(key);
  }

  /** The node a pod is bound to. */
  podNode(namespace: string, name: string): string | undefined {
    return this.nodeOf.get(`${namespace}/${name}`);
  }

  /** Whether a pod on `node` in `namespace` references the object. */
  references(node: string, namespace: string, kind: 'secrets' | 'configMaps' | 'claims' | 'serviceAccount', name: string): boolean {
    for (const p of this.byNode.get(node)?.values() ?? []) {
      if (p.namespace !== namespace) continue;
      if (kind === 'serviceAccount' ? p.refs.serviceAccount === name : p.refs[kind].has(name)) return true;
    }
    return false;
  }
}

const READ = new Set(['get', 'list', 'watch']);
const allow = (reason: string): AuthorizationDecision => ({ decision: 'allow', reason });
const NO: AuthorizationDecision = { decision: 'no-opinion' };

/** The Node authorizer over `graph`. */
export function nodeAuthorizer(graph: NodeGraph): Authorizer {
  return {
    async authorize(a: AuthorizationAttributes) {
      const node = nodeNameOf(a.user);
      if (!node || !a.isResourceRequest) return NO;
      const { verb, apiGroup: group, resource, subresource, namespace, name } = a;
      const own = name === '' || name === node;
      if (group === '') {
        switch (resource) {
          case 'secrets':
          case 'configmaps':
          case 'persistentvolumeclaims': {
            if (verb !== 'get' || subresource) return NO;
            const kind = resource === 'secrets' ? 'secrets' : resource === 'configmaps' ? 'configMaps' : 'claims';
            return graph.references(node, namespace, kind, name) ? allow(`node ${node} runs a pod that uses ${resource} ${namespace}/${name}`) : { decision: 'no-opinion', reason: `no relationship found between node '${node}' and this object` };
          }
          case 'serviceaccounts':
            return subresource === 'token' && verb === 'create' && graph.references(node, namespace, 'serviceAccount', name) ? allow(`node ${node} runs a pod of service account ${name}`) : NO;
          case 'nodes':
            if (READ.has(verb) && !subresource) return allow('nodes may read nodes');
            return own && ['create', 'update', 'patch', 'delete', 'get'].includes(verb) && (subresource === '' || subresource === 'status') ? allow('a node may write itself') : NO;
          case 'pods':
            if (!subresource && (READ.has(verb) || verb === 'create' || verb === 'delete')) return allow('nodes read pods, create mirror pods and delete their own (NodeRestriction checks)');
            if (subresource === 'status' && ['update', 'patch', 'get'].includes(verb)) return graph.podNode(namespace, name) === node ? allow('the pod runs on this node') : NO;
            if (subresource === 'eviction' && verb === 'create') return graph.podNode(namespace, name) === node ? allow('the pod runs on this node') : NO;
            return NO;
          case 'services':
          case 'endpoints':
            return READ.has(verb) ? allow('kubelets read services') : NO;
          case 'events':
            return ['create', 'update', 'patch'].includes(verb) ? allow('nodes record events') : NO;
          default:
            return NO;
        }
      }
      if (group === 'coordination.k8s.io' && resource === 'leases' && namespace === 'kube-node-lease') {
        return own && ['get', 'create', 'update', 'patch', 'delete'].includes(verb) ? allow('a node heartbeats through its own lease') : NO;
      }
      if (group === 'storage.k8s.io' && resource === 'csinodes') return READ.has(verb) || (own && ['create', 'update', 'patch', 'delete'].includes(verb)) ? allow('a node writes its own CSINode') : NO;
      if (group === 'storage.k8s.io' && ['csidrivers', 'volumeattachments'].includes(resource) && READ.has(verb)) return allow('kubelets read CSI objects');
      if (group === 'discovery.k8s.io' && resource === 'endpointslices' && READ.has(verb)) return allow('kubelets read endpoint slices');
      if (group === 'events.k8s.io' && resource === 'events' && ['create', 'update', 'patch'].includes(verb)) return allow('nodes record events');
      // The agent authenticates and authorizes requests to its own API through the API server.
      if (verb === 'create' && ((group === 'authentication.k8s.io' && resource === 'tokenreviews') || (group === 'authorization.k8s.io' && (resource === 'subjectaccessreviews' || resource === 'localsubjectaccessreviews')))) {
        return allow('nodes check the requests to their own API');
      }
      return NO;
    },
    async rulesFor(user) {
      const node = nodeNameOf(user);
      if (!node) return { resourceRules: [], nonResourceRules: [], incomplete: false };
      const rules: ResourceRule[] = [
        { verbs: ['get', 'list', 'watch'], apiGroups: [''], resources: ['nodes', 'pods', 'services', 'endpoints'] },
        { verbs: ['create', 'update', 'patch', 'delete'], apiGroups: [''], resources: ['nodes', 'nodes/status'], resourceNames: [node] },
        { verbs: ['get', 'create', 'update', 'patch', 'delete'], apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: [node] },
        { verbs: ['create', 'update', 'patch'], apiGroups: ['', 'events.k8s.io'], resources: ['events'] },
        { verbs: ['create'], apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'] },
        { verbs: ['create'], apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews', 'localsubjectaccessreviews'] },
      ];
      // Secrets, configmaps, claims and pod status follow the pods bound to the node: not listable as rules.
      return { resourceRules: rules, nonResourceRules: [], incomplete: true };
    },
  };
}

/** NodeRestriction: what a node writes must concern itself. */
export function nodeRestriction(): Admission {
  const deny = (node: string, what: string): never => {
    throw new AdmissionDenied(`node "${node}" is not allowed to ${what}`, 403);
  };
  return {
    handles: (req) => nodeNameOf(req.user) !== undefined,
    async validate(req) {
      const node = nodeNameOf(req.user)!;
      const { group, resource } = req.resource;
      const obj = (req.object ?? req.oldObject) as KubeObject | undefined;
      const objNode = (o: KubeObject | undefined): string | undefined => (o?.spec as { nodeName?: string } | undefined)?.nodeName;
      if (group === '' && resource === 'nodes') {
        if (req.name !== node) deny(node, `modify node "${req.name}"`);
        return;
      }
      if (group === '' && resource === 'pods') {
        if (req.subresource === 'status' || req.subresource === 'eviction') {
          if (objNode(req.oldObject as KubeObject) !== node) deny(node, `${req.subresource === 'status' ? 'update the status of' : 'evict'} pod "${req.namespace}/${req.name}", which is not bound to it`);
          return;
        }
        if (req.operation === 'CREATE') {
          const mirror = (obj?.metadata?.annotations ?? {})['kubernetes.io/config.mirror'];
          if (!mirror) deny(node, 'create pods that are not mirror pods');
          if (objNode(obj) !== node) deny(node, `create a mirror pod bound to node "${objNode(obj) ?? ''}"`);
          return;
        }
        if (req.operation === 'DELETE') {
          if (objNode(req.oldObject as KubeObject) !== node) deny(node, `delete pod "${req.namespace}/${req.name}", which is not bound to it`);
          return;
        }
        deny(node, `modify pod "${req.namespace}/${req.name}"`);
      }
      if (group === 'coordination.k8s.io' && resource === 'leases') {
        if (req.namespace !== 'kube-node-lease' || req.name !== node) deny(node, `modify lease "${req.namespace}/${req.name}"`);
        return;
      }
      if (group === 'storage.k8s.io' && resource === 'csinodes' && req.name !== node) deny(node, `modify csinode "${req.name}"`);
    },
  };
}

export const nodeAuthorizerPlugin = definePlugin({
  id: 'authz-node',
  kind: 'authorizer',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'Node authorization: a node reaches its own Node, Lease and pods, and the secrets, configmaps and claims those pods use.',
  configSchema: { type: 'object', additionalProperties: false, properties: {} },
  async start(handle, _config, signal) {
    const pods = handle.api.informer('/api/v1/pods');
    const graph = new NodeGraph();
    const unsubscribe = pods.subscribe({ add: (p) => graph.set(p), update: (p) => graph.set(p), delete: (p) => graph.delete(p) });
    pods.run();
    await pods.waitForSync(signal);
    handle.provide(nodeAuthorizer(graph));
    await untilAborted(signal);
    unsubscribe();
  },
});

export const nodeRestrictionPlugin = definePlugin({
  id: 'node-restriction',
  kind: 'admission',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'NodeRestriction: a node may modify only its own Node, Lease, CSINode and pods, and create only mirror pods bound to itself.',
  configSchema: { type: 'object', additionalProperties: false, properties: {} },
  async start(handle, _config, signal) {
    handle.provide(nodeRestriction());
    await untilAborted(signal);
  },
});

export default [nodeAuthorizerPlugin, nodeRestrictionPlugin];
