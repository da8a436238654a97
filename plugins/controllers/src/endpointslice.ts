/**
 * The EndpointSlice controller (Kubernetes' `endpointslice-controller`, pkg/controller/endpointslice
 * and the reconciler of staging/src/k8s.io/endpointslice).
 *
 * For every Service with a selector (not of type ExternalName), EndpointSlices named
 * `<service>-<random>` (generateName), labelled `kubernetes.io/service-name` and
 * `endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`, owned by the Service
 * (`controller: true`), one address type per IP family of the Service. Pods are grouped by the set
 * of ports they resolve (a pod without a named target port lands in another group); each group is
 * spread over slices of at most `maxEndpointsPerSlice` endpoints. Existing slices are kept, updated
 * in place and filled up before new ones are created; slices no longer needed are deleted, or
 * reused when a new one would be created in the same sync; a Service with no endpoints keeps one
 * empty placeholder slice. Terminating pods stay listed with `ready: false, terminating: true`
 * (`serving` from their Ready condition); `ready` is always true with `publishNotReadyAddresses`.
 *
 * Where Kubernel differs from Kubernetes 1.32, and why:
 * - The controller deletes the slices of a deleted Service itself (upstream leaves that to the
 *   garbage collector through the owner reference), so they go in distributions without one too.
 * - A pod without `spec.nodeName` is published without a node (upstream looks the empty name up,
 *   fails, and skips the pod); a pod whose node is unknown is skipped and the Service retried, as
 *   upstream. A Node appearing or changing its zone label re-syncs the Services of its pods
 *   (upstream only refreshes zones when the Service syncs for another reason).
 * - An existing placeholder slice is reused only when it is owned by the current Service.
 * - Topology hints and `trafficDistribution` are not computed. Failures are recorded as
 *   `FailedToUpdateEndpointSlices` Events on the Service and retried with back-off; the controller
 *   runs while its process holds the controller-manager lease.
 *
 * @module
 */
import {
  Controller,
  EventRecorder,
  LEADER_ELECTION_SCHEMA,
  definePlugin,
  isConflict,
  isNotFound,
  runWhileLeading,
  type ApiClient,
  type Informer,
  type KubeObject,
  type LeaderElectionConfig,
  type Logger,
  type ObjectKey,
  type ReconcileResult,
} from '@kubernel/sdk';
import {
  HEADLESS_LABEL,
  LAST_CHANGE_TRIGGER_TIME_ANNOTATION,
  TriggerTimeTracker,
  WriteTracker,
  findPort,
  isIPv6,
  isNamespaceTerminating,
  isServiceIPSet,
  managesEndpoints,
  podIPs,
  podReference,
  serviceSelector,
  shouldPodBeInEndpoints,
  shouldSetHostname,
  sortKeys,
  watchPodsForServices,
} from './endpoints.js';
import { isPodReady } from './replicaset.js';
import { type Fields } from './util.js';

/** Label naming the Service of an EndpointSlice (`discovery.LabelServiceName`). */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
/** Label naming who manages an EndpointSlice (`discovery.LabelManagedBy`). */
export const SLICE_MANAGED_BY_LABEL = 'endpointslice.kubernetes.io/managed-by';
/** Value of {@link SLICE_MANAGED_BY_LABEL} on this controller's slices. */
export const SLICE_CONTROLLER_NAME = 'endpointslice-controller.k8s.io';
/** The zone label of a Node, copied to the endpoints of its pods. */
export const ZONE_LABEL = 'topology.kubernetes.io/zone';
/** Endpoints per slice unless configured (Kubernetes' `--max-endpoints-per-slice`). */
export const DEFAULT_MAX_ENDPOINTS_PER_SLICE = 100;

/** An EndpointSlice address type this controller writes. */
export type AddressType = 'IPv4' | 'IPv6';

/** An endpoint of an EndpointSlice. */
export interface SliceEndpoint {
  addresses: string[];
  conditions: { ready?: boolean; serving?: boolean; terminating?: boolean };
  hostname?: string;
  targetRef?: Fields;
  nodeName?: string;
  zone?: string;
  [k: string]: unknown;
}

/** A port of an EndpointSlice (`name` is always set, `""` for an unnamed Service port, as upstream). */
export interface SlicePort {
  name: string;
  port: number;
  protocol: string;
  appProtocol?: string;
}

const str = (v: unknown): string => (v === undefined || v === null ? '' : String(v));
const specOf = (o: KubeObject): Fields => (o.spec ?? {}) as Fields;
const keyOfObject = (o: KubeObject): string => `${str(o.metadata?.namespace)}/${str(o.metadata?.name)}`;
const same = (a: unknown, b: unknown): boolean => JSON.stringify(sortKeys(a ?? null)) === JSON.stringify(sortKeys(b ?? null));

/**
 * The address types of a Service's slices: one per entry of `spec.ipFamilies`; without them, the
 * family of its cluster IP; headless without them, both (Kubernetes' `getAddressTypesForService`).
 */
export function addressTypesForService(service: KubeObject): AddressType[] {
  const families = new Set((specOf(service).ipFamilies ?? []) as string[]);
  const out: AddressType[] = (['IPv4', 'IPv6'] as const).filter((t) => families.has(t));
  if (out.length > 0) return out;
  if (isServiceIPSet(service)) return [isIPv6(str(specOf(service).clusterIP)) ? 'IPv6' : 'IPv4'];
  return ['IPv4', 'IPv6'];
}

/**
 * The slice ports of a pod for a Service (Kubernetes' `getEndpointPorts`): each Service port
 * resolved on the pod; ports the pod lacks (a named target port it does not declare) are left out.
 * A headless Service without ports gives none.
 */
export function endpointSlicePorts(service: KubeObject, pod: KubeObject): SlicePort[] {
  const out: SlicePort[] = [];
  for (const sp of (specOf(service).ports ?? []) as Fields[]) {
    const port = findPort(pod, sp);
    if (port === undefined) continue;
    out.push({ name: str(sp.name), port, protocol: str(sp.protocol) || 'TCP', ...(sp.appProtocol ? { appProtocol: str(sp.appProtocol) } : {}) });
  }
  return out;
}

/**
 * The endpoint of a pod in a slice of `addressType` (Kubernetes' `podToEndpoint`): its IPs of that
 * family; `serving` = Ready, `terminating` = being deleted, `ready` = serving and not terminating
 * (always true with `publishNotReadyAddresses`); `nodeName`, the node's zone label, the `hostname`
 * when the pod's subdomain is the Service, and a reference to the pod.
 */
export function podToSliceEndpoint(pod: KubeObject, service: KubeObject, addressType: AddressType, node?: KubeObject): SliceEndpoint {
  const serving = isPodReady(pod);
  const terminating = Boolean(pod.metadata?.deletionTimestamp);
  const ready = specOf(service).publishNotReadyAddresses === true || (serving && !terminating);
  const nodeName = str(specOf(pod).nodeName);
  const zone = str(node?.metadata?.labels?.[ZONE_LABEL]);
  return {
    addresses: podIPs(pod).filter((ip) => isIPv6(ip) === (addressType === 'IPv6')),
    conditions: { ready, serving, terminating },
    ...(shouldSetHostname(pod, service) ? { hostname: str(specOf(pod).hostname) } : {}),
    targetRef: podReference(pod),
    ...(nodeName ? { nodeName } : {}),
    ...(zone ? { zone } : {}),
  };
}

/** The labels of a Service's slices: the Service's (but the reserved ones), the headless marker, service name, managed-by. */
export function endpointSliceLabels(service: KubeObject): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(service.metadata?.labels ?? {})) if (![SERVICE_NAME_LABEL, SLICE_MANAGED_BY_LABEL, HEADLESS_LABEL].includes(k)) labels[k] = v;
  if (!isServiceIPSet(service)) labels[HEADLESS_LABEL] = '';
  labels[SERVICE_NAME_LABEL] = str(service.metadata?.name);
  labels[SLICE_MANAGED_BY_LABEL] = SLICE_CONTROLLER_NAME;
  return labels;
}

/** The owner reference of a Service's slices. */
export const serviceOwnerReference = (service: KubeObject): Fields => ({ apiVersion: 'v1', kind: 'Service', name: str(service.metadata?.name), uid: str(service.metadata?.uid), controller: true, blockOwnerDeletion: true });

/** A new, unnamed (generateName `<service>-`) slice of the Service with the given ports. */
export function newEndpointSlice(service: KubeObject, ports: readonly SlicePort[], addressType: AddressType): KubeObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { generateName: `${str(service.metadata?.name)}-`, namespace: str(service.metadata?.namespace), labels: endpointSliceLabels(service), ownerReferences: [serviceOwnerReference(service)] },
    addressType,
    endpoints: [],
    ...(ports.length > 0 ? { ports: [...ports] } : {}),
  };
}

/** True when the slice has an owner reference to this Service (same UID). */
export const ownedBy = (slice: KubeObject, service: KubeObject): boolean =>
  ((slice.metadata?.ownerReferences ?? []) as Fields[]).some((r) => r?.uid === service.metadata?.uid && r?.kind === 'Service' && r?.apiVersion === 'v1');

/** True when this controller manages the slice. */
export const isManagedSlice = (slice: KubeObject | undefined): boolean => slice?.metadata?.labels?.[SLICE_MANAGED_BY_LABEL] === SLICE_CONTROLLER_NAME;

/** The identity of an endpoint within a port group: its addresses, hostname and pod (Kubernetes' `hashEndpoint`). */
const endpointKey = (e: SliceEndpoint): string => JSON.stringify([[...(e.addresses ?? [])].sort(), str(e.hostname), str(e.targetRef?.namespace), str(e.targetRef?.name)]);

/** True when two endpoints of the same key need no update: node, zone, conditions and pod reference (resourceVersion aside) agree. */
function sameEndpointBeyondKey(a: SliceEndpoint, b: SliceEndpoint): boolean {
  const view = (e: SliceEndpoint): unknown => {
    const { resourceVersion: _rv, ...targetRef } = (e.targetRef ?? {}) as Fields;
    const c = e.conditions ?? {};
    return [e.nodeName ?? null, e.zone ?? null, c.ready ?? null, c.serving ?? null, c.terminating ?? null, e.targetRef ? targetRef : null];
  };
  return same(view(a), view(b));
}

/** The identity of a port set, whatever its order. */
const portMapKey = (ports: readonly Fields[] | undefined): string =>
  JSON.stringify((ports ?? []).map((p) => JSON.stringify([str(p.name), Number(p.port), str(p.protocol) || 'TCP', str(p.appProtocol)])).sort());

const endpointsOf = (slice: KubeObject): SliceEndpoint[] => ((slice.endpoints ?? []) as SliceEndpoint[]);

/** What a sync does to a Service's slices. */
export interface SlicePlan {
  /** New slices (generateName set, no name). */
  readonly create: KubeObject[];
  /** Whole slices to PUT; `metadata.resourceVersion` is the version they replace. */
  readonly update: KubeObject[];
  readonly delete: KubeObject[];
  /** Pods left out because their node is not known (the sync should be retried). */
  readonly missingNodes: string[];
}

/** Options of {@link planEndpointSlices}. */
export interface SlicePlanOptions {
  /** At most this many endpoints per slice; {@link DEFAULT_MAX_ENDPOINTS_PER_SLICE} by default. */
  readonly maxEndpointsPerSlice?: number;
  /** Looks a node up by name, for zones; when absent, nodes are not consulted. */
  readonly node?: (name: string) => KubeObject | undefined;
  /** The last-change-trigger-time annotation of the slices written (removed when undefined). */
  readonly triggerTime?: string;
}

/**
 * What to create, update and delete so that `existing` (this controller's slices of the Service,
 * none being deleted) match the pods the Service selects (Kubernetes' endpointslice `Reconciler`):
 * slices of address types the Service no longer has, and slices owned by another Service object
 * of the same name, go; per address type and port set, endpoints no longer wanted leave their slice
 * (an emptied slice is deleted), changed ones are updated in place, and new ones fill the slices
 * being updated (fullest first), then an unchanged slice that can take them all, then new slices;
 * a Service with no endpoints keeps (or gets) one empty slice; a slice to create replaces one to
 * delete of the same address type instead (an update). Pure: reads its arguments, writes nothing.
 */
export function planEndpointSlices(service: KubeObject, pods: readonly KubeObject[], existing: readonly KubeObject[], options: SlicePlanOptions = {}): SlicePlan {
  const max = Math.max(1, options.maxEndpointsPerSlice ?? DEFAULT_MAX_ENDPOINTS_PER_SLICE);
  const types = addressTypesForService(service);
  let create: KubeObject[] = [];
  const update: KubeObject[] = [];
  const remove: KubeObject[] = [];
  const missing = new Set<string>();
  const byType = new Map<AddressType, KubeObject[]>();
  for (const slice of existing) {
    const t = slice.addressType as AddressType;
    if (!types.includes(t)) remove.push(slice);
    else byType.set(t, [...(byType.get(t) ?? []), slice]);
  }
  for (const t of types) {
    const r = planAddressType(service, pods, byType.get(t) ?? [], t, max, options.node, missing);
    create.push(...r.create);
    update.push(...r.update);
    remove.push(...r.delete);
  }
  // A slice about to be deleted is reused for one about to be created (same address type, same Service).
  for (let i = 0; i < remove.length && create.length > 0; ) {
    const old = remove[i]!;
    const fresh = create[create.length - 1]!;
    if (old.addressType === fresh.addressType && ownedBy(old, service)) {
      create.pop();
      const { generateName: _g, ...metadata } = fresh.metadata as Fields;
      update.push({ ...fresh, metadata: { ...metadata, name: old.metadata?.name, resourceVersion: old.metadata?.resourceVersion } });
      remove.splice(i, 1);
    } else {
      i++;
    }
  }
  // No new slices for a Service being deleted (they would outlive it).
  if (service.metadata?.deletionTimestamp) create = [];
  for (const slice of [...create, ...update]) {
    const annotations: Record<string, string> = { ...(slice.metadata?.annotations ?? {}) };
    if (options.triggerTime) annotations[LAST_CHANGE_TRIGGER_TIME_ANNOTATION] = options.triggerTime;
    else delete annotations[LAST_CHANGE_TRIGGER_TIME_ANNOTATION];
    const metadata = { ...(slice.metadata as Fields) };
    if (Object.keys(annotations).length > 0) metadata.annotations = annotations;
    else delete metadata.annotations;
    slice.metadata = metadata;
  }
  return { create, update, delete: remove, missingNodes: [...missing] };
}

function planAddressType(
  service: KubeObject,
  pods: readonly KubeObject[],
  existing: readonly KubeObject[],
  addressType: AddressType,
  max: number,
  nodeOf: ((name: string) => KubeObject | undefined) | undefined,
  missing: Set<string>,
): { create: KubeObject[]; update: KubeObject[]; delete: KubeObject[] } {
  const remove: KubeObject[] = [];
  const existingByPorts = new Map<string, KubeObject[]>();
  for (const slice of existing) {
    if (!ownedBy(slice, service)) {
      remove.push(slice);
      continue;
    }
    const k = portMapKey(slice.ports as Fields[] | undefined);
    existingByPorts.set(k, [...(existingByPorts.get(k) ?? []), slice]);
  }
  const publishNotReady = specOf(service).publishNotReadyAddresses === true;
  const desired = new Map<string, { ports: SlicePort[]; endpoints: Map<string, SliceEndpoint> }>();
  for (const pod of pods) {
    if (!shouldPodBeInEndpoints(pod, true)) continue;
    const ports = endpointSlicePorts(service, pod);
    const pk = portMapKey(ports);
    let group = desired.get(pk);
    if (!group) desired.set(pk, (group = { ports, endpoints: new Map() }));
    const nodeName = str(specOf(pod).nodeName);
    let node: KubeObject | undefined;
    if (nodeName && nodeOf) {
      node = nodeOf(nodeName);
      if (!node && !publishNotReady) {
        missing.add(keyOfObject(pod));
        continue;
      }
    }
    const endpoint = podToSliceEndpoint(pod, service, addressType, node);
    if (endpoint.addresses.length > 0) group.endpoints.set(endpointKey(endpoint), endpoint);
  }
  const create: KubeObject[] = [];
  const update: KubeObject[] = [];
  for (const [pk, group] of desired) {
    const r = planPortGroup(service, existingByPorts.get(pk) ?? [], group.endpoints, group.ports, addressType, max);
    create.push(...r.create);
    update.push(...r.update);
    remove.push(...r.delete);
  }
  for (const [pk, slices] of existingByPorts) if (!desired.has(pk)) remove.push(...slices);
  // A Service with no endpoints keeps one empty slice.
  if (existing.length === remove.length && create.length === 0) {
    const placeholder = newEndpointSlice(service, [], addressType);
    const only = remove.length === 1 ? remove[0]! : undefined;
    const reusable =
      only !== undefined &&
      ownedBy(only, service) &&
      only.metadata?.namespace === placeholder.metadata?.namespace &&
      same(only.metadata?.labels, placeholder.metadata?.labels) &&
      only.addressType === addressType &&
      endpointsOf(only).length === 0 &&
      ((only.ports ?? []) as unknown[]).length === 0;
    if (reusable) remove.length = 0;
    else create.push(placeholder);
  }
  return { create, update, delete: remove };
}

/** Kubernetes' `reconcileByPortMapping`: one port group's slices against its desired endpoints. */
function planPortGroup(
  service: KubeObject,
  existing: readonly KubeObject[],
  desiredSet: Map<string, SliceEndpoint>,
  ports: readonly SlicePort[],
  addressType: AddressType,
  max: number,
): { create: KubeObject[]; update: KubeObject[]; delete: KubeObject[] } {
  const desired = new Map(desiredSet);
  const labels = endpointSliceLabels(service);
  const byName = new Map<string, KubeObject>();
  const unchanged = new Set<string>();
  const toUpdate = new Set<string>();
  const toDelete = new Set<string>();
  const pop = (): SliceEndpoint => {
    const [k, e] = desired.entries().next().value as [string, SliceEndpoint];
    desired.delete(k);
    return e;
  };
  // 1. Keep the wanted endpoints of each slice (updated when they changed), drop the others.
  for (const slice of existing) {
    const name = str(slice.metadata?.name);
    byName.set(name, slice);
    const kept: SliceEndpoint[] = [];
    let changed = false;
    for (const e of endpointsOf(slice)) {
      const k = endpointKey(e);
      const want = desired.get(k);
      if (!want) continue;
      kept.push(want);
      if (!sameEndpointBeyondKey(want, e)) changed = true;
      desired.delete(k);
    }
    const labelsChanged = !same(slice.metadata?.labels, labels);
    if (changed || kept.length !== endpointsOf(slice).length) {
      if (kept.length === 0) {
        toDelete.add(name);
      } else {
        byName.set(name, { ...structuredClone(slice), metadata: { ...structuredClone(slice.metadata), labels }, endpoints: kept });
        toUpdate.add(name);
      }
    } else if (labelsChanged) {
      byName.set(name, { ...structuredClone(slice), metadata: { ...structuredClone(slice.metadata), labels } });
      toUpdate.add(name);
    } else {
      unchanged.add(name);
    }
  }
  // 2. Fill the slices being updated anyway, fullest first.
  if (desired.size > 0 && toUpdate.size > 0) {
    const slices = [...toUpdate].map((n) => byName.get(n)!).sort((a, b) => endpointsOf(b).length - endpointsOf(a).length);
    for (const slice of slices) {
      const list = endpointsOf(slice);
      while (desired.size > 0 && list.length < max) list.push(pop());
      slice.endpoints = list;
    }
  }
  // 3. Put what is left in one unchanged slice that can take it all, or in new slices.
  const create: KubeObject[] = [];
  while (desired.size > 0) {
    let fill: KubeObject | undefined;
    if (desired.size < max && unchanged.size > 0) {
      let closest = max;
      for (const n of unchanged) {
        const slice = byName.get(n)!;
        const diff = max - (desired.size + endpointsOf(slice).length);
        if (diff >= 0 && diff < closest) {
          closest = diff;
          fill = slice;
          if (diff === 0) break;
        }
      }
    }
    if (fill) {
      fill = structuredClone(fill);
      byName.set(str(fill.metadata?.name), fill);
    } else {
      fill = newEndpointSlice(service, ports, addressType);
    }
    const list = endpointsOf(fill);
    while (desired.size > 0 && list.length < max) list.push(pop());
    fill.endpoints = list;
    if (fill.metadata?.name) {
      toUpdate.add(str(fill.metadata.name));
      unchanged.delete(str(fill.metadata.name));
    } else {
      create.push(fill);
    }
  }
  return { create, update: [...toUpdate].map((n) => byName.get(n)!), delete: [...toDelete].map((n) => byName.get(n)!) };
}

/**
 * The informer index of slices by `namespace/<kubernetes.io/service-name>`. Informers are shared by
 * the plugins of a process, so index names carry the controller's name.
 */
export const SLICE_SERVICE_INDEX = 'endpointslice-controller:service';
/** The informer index of pods by `spec.nodeName`. */
export const POD_NODE_NAME_INDEX = 'endpointslice-controller:nodeName';
const slicesPath = (ns: string, name?: string): string => `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(ns)}/endpointslices${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;

/** The reconciler of the EndpointSlice controller; the key is the Service's. */
export class EndpointSliceReconciler {
  readonly triggerTimes = new TriggerTimeTracker();
  readonly writes = new WriteTracker();

  constructor(
    private readonly api: ApiClient,
    private readonly services: Informer,
    private readonly pods: Informer,
    private readonly slices: Informer,
    private readonly nodes: Informer | undefined,
    private readonly log: Logger,
    private readonly maxEndpointsPerSlice = DEFAULT_MAX_ENDPOINTS_PER_SLICE,
    private readonly events?: EventRecorder,
  ) {
    slices.addIndexer(SLICE_SERVICE_INDEX, (s) => {
      const name = s.metadata?.labels?.[SERVICE_NAME_LABEL];
      return name ? [`${str(s.metadata?.namespace)}/${name}`] : [];
    });
  }

  async reconcile(key: ObjectKey): Promise<ReconcileResult | void> {
    const k = `${key.namespace}/${key.name}`;
    const service = this.services.get(k);
    const lookup = (x: string): KubeObject | undefined => this.slices.get(x);
    const mine = this.slices.byIndex(SLICE_SERVICE_INDEX, k).filter(isManagedSlice);
    if (!service) {
      this.triggerTimes.forget(key.namespace, key.name);
      if (this.writes.stale(k, lookup)) return { requeue: true };
      // The owner references would let a garbage collector do this, but a distribution need not run one.
      for (const slice of mine) if (!slice.metadata?.deletionTimestamp) await this.deleteSlice(k, slice);
      return;
    }
    if (!managesEndpoints(service)) return;
    if (this.writes.stale(k, lookup)) return { requeue: true };
    const matches = serviceSelector(service)!;
    const pods = this.pods.byIndex('namespace', key.namespace).filter((p) => matches(p.metadata?.labels ?? {}));
    const triggerTime = this.triggerTimes.compute(service, pods);
    const plan = planEndpointSlices(
      service,
      pods,
      mine.filter((s) => !s.metadata?.deletionTimestamp),
      { maxEndpointsPerSlice: this.maxEndpointsPerSlice, ...(this.nodes ? { node: (n: string) => this.nodes!.get(n) } : {}), ...(triggerTime ? { triggerTime } : {}) },
    );
    try {
      return await this.apply(k, plan);
    } catch (err) {
      this.events?.event(service, 'Warning', 'FailedToUpdateEndpointSlices', `Error updating Endpoint Slices for Service ${k}: ${(err as Error).message}`);
      throw err;
    }
  }

  /** Creates, updates and deletes as planned (in that order, as upstream); stops at the first failure. */
  private async apply(k: string, plan: SlicePlan): Promise<ReconcileResult | void> {
    const ns = k.slice(0, k.indexOf('/'));
    for (const slice of plan.create) {
      try {
        const created = await this.api.create<KubeObject>(slicesPath(ns), slice);
        this.writes.record(keyOfObject(created), k, { present: true });
      } catch (err) {
        if (isNamespaceTerminating(err)) return; // creations keep failing until the namespace is gone
        throw new Error(`failed to create EndpointSlice for Service ${k}: ${(err as Error).message}`, { cause: err });
      }
    }
    for (const slice of plan.update) {
      try {
        await this.api.update(slicesPath(ns, str(slice.metadata?.name)), slice);
        this.writes.record(keyOfObject(slice), k, { present: true, replacedVersion: str(slice.metadata?.resourceVersion) });
      } catch (err) {
        // Somebody else wrote the slice (or deleted it) since the cache saw it: sync again from fresher state.
        if (isConflict(err) || isNotFound(err)) return { requeue: true };
        throw new Error(`failed to update ${slice.metadata?.name} EndpointSlice for Service ${k}: ${(err as Error).message}`, { cause: err });
      }
    }
    for (const slice of plan.delete) await this.deleteSlice(k, slice);
    if (plan.missingNodes.length > 0) throw new Error(`skipping Pods ${plan.missingNodes.join(', ')} for Service ${k}: Node not found`);
  }

  private async deleteSlice(owner: string, slice: KubeObject): Promise<void> {
    try {
      await this.api.delete(slicesPath(str(slice.metadata?.namespace), str(slice.metadata?.name)));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    this.writes.record(keyOfObject(slice), owner, { present: false, uid: str(slice.metadata?.uid) });
    this.log.debug?.({ service: owner, slice: slice.metadata?.name }, 'deleted endpoint slice');
  }
}

/** The EndpointSlice controller plugin (Kubernetes' `endpointslice-controller`). */
export const endpointSliceControllerPlugin = definePlugin({
  id: 'endpointslice-controller',
  kind: 'controller',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'EndpointSlice controller: EndpointSlices of at most maxEndpointsPerSlice endpoints per Service with a selector, with ready/serving/terminating conditions, owned by the Service.',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      workers: { type: 'integer', minimum: 1, maximum: 64, default: 5, description: 'Concurrent syncs (Kubernetes --concurrent-service-endpoint-syncs).' },
      maxEndpointsPerSlice: { type: 'integer', minimum: 1, maximum: 1000, default: DEFAULT_MAX_ENDPOINTS_PER_SLICE, description: 'Endpoints per EndpointSlice (Kubernetes --max-endpoints-per-slice).' },
      leaderElection: LEADER_ELECTION_SCHEMA,
    },
  },
  async start(handle, config: { workers: number; maxEndpointsPerSlice: number; leaderElection: LeaderElectionConfig }, signal) {
    const services = handle.api.informer('/api/v1/services');
    const pods = handle.api.informer('/api/v1/pods');
    const slices = handle.api.informer('/apis/discovery.k8s.io/v1/endpointslices');
    const nodes = handle.api.informer('/api/v1/nodes');
    pods.addIndexer(POD_NODE_NAME_INDEX, (p) => [str(specOf(p).nodeName)]);
    const events = new EventRecorder({ api: handle.api, component: SLICE_CONTROLLER_NAME, logger: handle.logger, signal });
    const reconciler = new EndpointSliceReconciler(handle.api, services, pods, slices, nodes, handle.logger, config.maxEndpointsPerSlice, events);
    const observing = slices.subscribe({ add: (o) => reconciler.writes.observe(o, false), update: (o) => reconciler.writes.observe(o, false), delete: (o) => reconciler.writes.observe(o, true) });
    for (const i of [services, pods, slices, nodes]) i.run();
    await Promise.all([services.waitForSync(signal), pods.waitForSync(signal), slices.waitForSync(signal), nodes.waitForSync(signal)]);
    handle.ready();
    await runWhileLeading(handle.api, config.leaderElection, handle.logger, signal, async (leading) => {
      const controller = new Controller({ name: 'endpointslice', reconciler, workers: config.workers, logger: handle.logger, metrics: handle.metrics });
      controller.watch(services);
      // A slice of ours changed or went away (a user editing or deleting it, or our own write): sync its Service.
      controller.watch(slices, (s) => {
        const name = s.metadata?.labels?.[SERVICE_NAME_LABEL];
        return isManagedSlice(s) && name ? [{ namespace: str(s.metadata?.namespace), name }] : [];
      });
      const servicesOfNode = (node: KubeObject): void => {
        for (const pod of pods.byIndex(POD_NODE_NAME_INDEX, str(node.metadata?.name))) {
          for (const svc of services.byIndex('namespace', str(pod.metadata?.namespace))) {
            if (serviceSelector(svc)?.(pod.metadata?.labels ?? {})) controller.enqueue({ namespace: str(svc.metadata?.namespace), name: str(svc.metadata?.name) });
          }
        }
      };
      const unsubscribe = [
        watchPodsForServices(controller, pods, services),
        // Zones come from nodes: a node appearing (pods skipped for want of it) or changing zone re-syncs its pods' Services.
        nodes.subscribe({ add: servicesOfNode, update: (n, old) => n.metadata?.labels?.[ZONE_LABEL] !== old.metadata?.labels?.[ZONE_LABEL] && servicesOfNode(n) }),
      ];
      await controller.run(leading);
      for (const u of unsubscribe) u();
    });
    observing();
  },
});
