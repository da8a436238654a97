/**
 * The Endpoints controller (Kubernetes' `endpoint-controller`, pkg/controller/endpoint), and the
 * helpers it shares with the EndpointSlice controller (./endpointslice.ts): which pods a Service
 * selects and publishes, their addresses and ports, the `last-change-trigger-time` tracker and the
 * stale-cache guard.
 *
 * For every Service with a selector (not of type ExternalName) the controller keeps an Endpoints
 * object of the same name: one subset per distinct set of ports, ready pods under `addresses`, the
 * others under `notReadyAddresses` (everything under `addresses` with
 * `spec.publishNotReadyAddresses`), in the canonical packed and sorted form, written only when the
 * subsets, labels or capacity annotation differ from what is stored.
 *
 * Where Kubernel differs from Kubernetes 1.32, and why:
 * - Endpoints carry `endpoints.kubernetes.io/managed-by: endpoint-controller` (the label 1.33 adds),
 *   and only Endpoints with that label are deleted when their Service is gone. Upstream deletes any
 *   Endpoints whose Service is missing when it syncs the key (its start-up sweep queues every
 *   Endpoints), which also removes hand-written Endpoints that have no Service; here those are kept.
 * - `nodeName` is left out when the pod has none (upstream writes `""`); a pod with an IP has a node
 *   in Kubernetes, but Kubernel clusters without node agents can have addresses without one.
 * - A pod whose `status.podIPs` is empty but whose `status.podIP` is set is published with
 *   `podIP` (the Kubernetes API server keeps the two in step; Kubernel's does not do it for you).
 * - Failures are recorded as Events (`FailedToCreateEndpoint`, `FailedToUpdateEndpoint`) and retried
 *   with back-off; the controller runs while its process holds the controller-manager lease.
 *
 * @module
 */
import {
  ApiStatusError,
  Controller,
  EventRecorder,
  LEADER_ELECTION_SCHEMA,
  definePlugin,
  isAlreadyExists,
  isConflict,
  isNotFound,
  labelSelectorMatches,
  mapToSelf,
  runWhileLeading,
  type ApiClient,
  type Informer,
  type KubeObject,
  type LeaderElectionConfig,
  type Logger,
  type ObjectKey,
  type ReconcileResult,
} from '@kubernel/sdk';
import { isPodReady } from './replicaset.js';
import { type Fields, canonical } from './util.js';

/** Label on Endpoints written by this controller (Kubernetes 1.33's `LabelManagedBy`). */
export const ENDPOINTS_MANAGED_BY_LABEL = 'endpoints.kubernetes.io/managed-by';
/** Value of {@link ENDPOINTS_MANAGED_BY_LABEL}. */
export const ENDPOINTS_CONTROLLER_NAME = 'endpoint-controller';
/** Label on Endpoints and EndpointSlices of a Service without a cluster IP (`v1.IsHeadlessService`). */
export const HEADLESS_LABEL = 'service.kubernetes.io/headless';
/** Annotation: when the change that caused this write happened (`v1.EndpointsLastChangeTriggerTime`). */
export const LAST_CHANGE_TRIGGER_TIME_ANNOTATION = 'endpoints.kubernetes.io/last-change-trigger-time';
/** Annotation set to `truncated` when an Endpoints object holds only {@link MAX_ENDPOINTS_CAPACITY} addresses. */
export const OVER_CAPACITY_ANNOTATION = 'endpoints.kubernetes.io/over-capacity';
/** At most this many addresses are stored in one Endpoints object (Kubernetes' `maxCapacity`). */
export const MAX_ENDPOINTS_CAPACITY = 1000;

const str = (v: unknown): string => (v === undefined || v === null ? '' : String(v));
const metaOf = (o: KubeObject): Fields => (o.metadata ?? {}) as Fields;
const specOf = (o: KubeObject): Fields => (o.spec ?? {}) as Fields;
const statusOf = (o: KubeObject): Fields => (o.status ?? {}) as Fields;

// ---------------------------------------------------------------------------------------------
// Shared by both controllers.
// ---------------------------------------------------------------------------------------------

/**
 * The pod selector of a Service, or undefined when it has none: such a Service's endpoints are
 * written by someone else. An empty map counts as none, as it does once Kubernetes has stored the
 * object (protobuf drops empty maps).
 */
export function serviceSelector(service: KubeObject): ((labels: Record<string, string>) => boolean) | undefined {
  const selector = specOf(service).selector as Record<string, string> | null | undefined;
  if (!selector || typeof selector !== 'object' || Object.keys(selector).length === 0) return undefined;
  return (labels) => labelSelectorMatches({ matchLabels: selector }, labels);
}

/** True when the endpoint controllers manage this Service's endpoints: it has a selector and is not an ExternalName. */
export const managesEndpoints = (service: KubeObject): boolean => specOf(service).type !== 'ExternalName' && serviceSelector(service) !== undefined;

/** True when the Service has a cluster IP (not headless). */
export const isServiceIPSet = (service: KubeObject): boolean => {
  const ip = str(specOf(service).clusterIP);
  return ip !== '' && ip !== 'None';
};

/** True when the pod's phase is Succeeded or Failed. */
export const isPodTerminal = (pod: KubeObject): boolean => ['Succeeded', 'Failed'].includes(str(statusOf(pod).phase));

/** The pod's IPs: `status.podIPs`, or `status.podIP` when that list is empty. */
export function podIPs(pod: KubeObject): string[] {
  const list = ((statusOf(pod).podIPs ?? []) as Fields[]).map((p) => str(p?.ip)).filter((ip) => ip !== '');
  if (list.length > 0) return list;
  const ip = str(statusOf(pod).podIP);
  return ip ? [ip] : [];
}

/** True for an IPv6 address (textual check: IPv6 addresses contain a colon, IPv4 ones never do). */
export const isIPv6 = (ip: string): boolean => ip.includes(':');

/**
 * True when the pod belongs in Endpoints or EndpointSlices (Kubernetes' `ShouldPodBeInEndpoints`):
 * not terminal, has an IP, and (unless `includeTerminating`) is not being deleted.
 */
export function shouldPodBeInEndpoints(pod: KubeObject, includeTerminating: boolean): boolean {
  if (isPodTerminal(pod)) return false;
  if (podIPs(pod).length === 0) return false;
  if (!includeTerminating && metaOf(pod).deletionTimestamp) return false;
  return true;
}

/** True when an address of the pod gets its `hostname`: the pod sets one and its subdomain is the Service. */
export function shouldSetHostname(pod: KubeObject, service: KubeObject): boolean {
  const spec = specOf(pod);
  return str(spec.hostname) !== '' && str(spec.subdomain) === str(metaOf(service).name) && str(metaOf(pod).namespace) === str(metaOf(service).namespace);
}

/**
 * The container port a Service port reaches on a pod (Kubernetes' `FindPort`): a numeric
 * `targetPort` as is (`port` when unset); a named one looked up among the pod's container ports of
 * the same protocol, then among its sidecars (init containers with `restartPolicy: Always`).
 * Undefined when the pod has no such port.
 */
export function findPort(pod: KubeObject, servicePort: Fields): number | undefined {
  const target = servicePort.targetPort ?? servicePort.port;
  if (typeof target === 'number') return target;
  if (typeof target !== 'string' || target === '') return undefined;
  const protocol = str(servicePort.protocol) || 'TCP';
  const spec = specOf(pod);
  const sidecars = ((spec.initContainers ?? []) as Fields[]).filter((c) => c?.restartPolicy === 'Always');
  for (const container of [...((spec.containers ?? []) as Fields[]), ...sidecars]) {
    for (const p of (container?.ports ?? []) as Fields[]) {
      if (p?.name === target && (str(p.protocol) || 'TCP') === protocol) return Number(p.containerPort);
    }
  }
  return undefined;
}

/** The object reference to a pod that endpoints carry. */
export const podReference = (pod: KubeObject): Fields => ({ kind: 'Pod', namespace: str(metaOf(pod).namespace), name: str(metaOf(pod).name), uid: str(metaOf(pod).uid) });

/**
 * True when a pod update can change the endpoints of a Service (Kubernetes' `podEndpointsChanged`
 * plus phase and node): labels, hostname or subdomain, deletion, readiness, IPs, phase, node.
 */
export function podChangeAffectsEndpoints(old: KubeObject, pod: KubeObject): boolean {
  if (old === pod || (old.metadata?.resourceVersion !== undefined && old.metadata?.resourceVersion === pod.metadata?.resourceVersion)) return false;
  const same = (a: unknown, b: unknown): boolean => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
  return (
    !same(sortKeys(old.metadata?.labels ?? {}), sortKeys(pod.metadata?.labels ?? {})) ||
    str(specOf(old).hostname) !== str(specOf(pod).hostname) ||
    str(specOf(old).subdomain) !== str(specOf(pod).subdomain) ||
    str(specOf(old).nodeName) !== str(specOf(pod).nodeName) ||
    str(metaOf(old).deletionTimestamp) !== str(metaOf(pod).deletionTimestamp) ||
    isPodReady(old) !== isPodReady(pod) ||
    isPodTerminal(old) !== isPodTerminal(pod) ||
    !same(podIPs(old), podIPs(pod))
  );
}

/**
 * Queues, on every relevant pod event, the Services whose selector matches the pod's labels (and,
 * when its labels changed, its old labels). Returns the unsubscribe function.
 */
export function watchPodsForServices(controller: Controller, pods: Informer, services: Informer): () => void {
  const enqueue = (pod: KubeObject): void => {
    const labels = pod.metadata?.labels ?? {};
    for (const svc of services.byIndex('namespace', str(pod.metadata?.namespace))) {
      if (serviceSelector(svc)?.(labels)) controller.enqueue({ namespace: str(svc.metadata?.namespace), name: str(svc.metadata?.name) });
    }
  };
  return pods.subscribe({
    add: enqueue,
    delete: enqueue,
    update: (pod, old) => {
      if (!podChangeAffectsEndpoints(old, pod)) return;
      enqueue(pod);
      if (JSON.stringify(sortKeys(old.metadata?.labels ?? {})) !== JSON.stringify(sortKeys(pod.metadata?.labels ?? {}))) enqueue(old);
    },
  });
}

/** An RFC 3339 time with as many fractional digits as needed (Go's `time.RFC3339Nano`). */
export function formatTriggerTime(ms: number): string {
  const iso = new Date(ms).toISOString();
  return iso.replace(/\.(\d*?)0*Z$/, (_m, digits: string) => (digits ? `.${digits}Z` : 'Z'));
}

/**
 * Computes the `endpoints.kubernetes.io/last-change-trigger-time` of a sync (Kubernetes'
 * `TriggerTimeTracker`): for a Service seen for the first time, its creation time; afterwards the
 * earliest of the changes observed since the previous sync (a pod's Ready transition time that
 * moved forward, a newer Service creation time), or nothing. One instance per controller; calls for
 * the same Service must not overlap (the work queue guarantees it).
 */
export class TriggerTimeTracker {
  private readonly states = new Map<string, { service: number; pods: Map<string, number> }>();

  /** The trigger time to publish for this sync of `service` over `pods`, or undefined (remove the annotation). */
  compute(service: KubeObject, pods: readonly KubeObject[]): string | undefined {
    const key = `${str(service.metadata?.namespace)}/${str(service.metadata?.name)}`;
    const previous = this.states.get(key);
    let min: number | undefined;
    const podTimes = new Map<string, number>();
    for (const pod of pods) {
      const ready = ((statusOf(pod).conditions ?? []) as Fields[]).find((c) => c?.type === 'Ready');
      const t = Date.parse(str(ready?.lastTransitionTime));
      if (!Number.isFinite(t)) continue;
      const name = str(pod.metadata?.name);
      podTimes.set(name, t);
      if (t > (previous?.pods.get(name) ?? -Infinity)) min = min === undefined ? t : Math.min(min, t);
    }
    const created = Date.parse(str(service.metadata?.creationTimestamp));
    const serviceTime = Number.isFinite(created) ? created : 0;
    if (serviceTime > (previous?.service ?? -Infinity) && serviceTime > 0) min = min === undefined ? serviceTime : Math.min(min, serviceTime);
    this.states.set(key, { service: serviceTime, pods: podTimes });
    if (!previous) return serviceTime > 0 ? formatTriggerTime(serviceTime) : undefined;
    return min === undefined ? undefined : formatTriggerTime(min);
  }

  /** Drops what is known about a deleted Service. */
  forget(namespace: string, name: string): void {
    this.states.delete(`${namespace}/${name}`);
  }
}

/**
 * Guards against acting on an informer cache that has not yet seen the controller's own writes
 * (client-go controllers' stale-cache checks): after a write, the object's key is recorded with
 * what the cache must show before the owner is synced again (the object present with another
 * resourceVersion than the one replaced, or absent). {@link stale} answers from the cache; records
 * resolve when the cache catches up, when the informer reports the object deleted, or after
 * `ttlMs` (so an event lost to a relist cannot wedge a key). No timers.
 */
export class WriteTracker {
  private readonly pending = new Map<string, { owner: string; present: boolean; notVersion?: string; uid?: string; at: number }>();

  constructor(private readonly ttlMs = 30_000) {}

  /** The object at `key` was created (present: true) or updated from `replacedVersion`, or deleted (present: false, its `uid`). */
  record(key: string, owner: string, write: { present: true; replacedVersion?: string } | { present: false; uid: string }): void {
    this.pending.set(key, write.present ? { owner, present: true, ...(write.replacedVersion !== undefined ? { notVersion: write.replacedVersion } : {}), at: Date.now() } : { owner, present: false, uid: write.uid, at: Date.now() });
  }

  /** An informer event: resolves the record of the object it concerns when the cache caught up. */
  observe(o: KubeObject, deleted: boolean): void {
    const key = `${str(o.metadata?.namespace)}/${str(o.metadata?.name)}`;
    const r = this.pending.get(key);
    if (!r) return;
    if (deleted || (r.present ? o.metadata?.resourceVersion !== r.notVersion : str(metaOf(o).uid) !== r.uid)) this.pending.delete(key);
  }

  /** True when the cache (read through `lookup` by `namespace/name`) has not yet seen one of `owner`'s writes. */
  stale(owner: string, lookup: (key: string) => KubeObject | undefined): boolean {
    const now = Date.now();
    let stale = false;
    for (const [key, r] of this.pending) {
      if (r.owner !== owner) continue;
      if (now - r.at > this.ttlMs) {
        this.pending.delete(key);
        continue;
      }
      const cached = lookup(key);
      const waiting = r.present ? !cached || cached.metadata?.resourceVersion === r.notVersion : cached !== undefined && str(metaOf(cached).uid) === r.uid;
      if (waiting) stale = true;
      else this.pending.delete(key);
    }
    return stale;
  }

  /** Drops every record of `owner`. */
  forget(owner: string): void {
    for (const [key, r] of this.pending) if (r.owner === owner) this.pending.delete(key);
  }

  /** How many writes are still unconfirmed (for tests). */
  get size(): number {
    return this.pending.size;
  }
}

/** True when a create failed because its namespace is being deleted (retrying cannot help). */
export function isNamespaceTerminating(err: unknown): boolean {
  if (!(err instanceof ApiStatusError) || err.code !== 403) return false;
  const causes = ((err.status?.details as Fields | undefined)?.causes ?? []) as Fields[];
  return causes.some((c) => c?.reason === 'NamespaceTerminating' || c?.type === 'NamespaceTerminating');
}

/** Objects with their keys sorted, recursively (for comparisons that ignore key order). */
export const sortKeys = canonical;

// ---------------------------------------------------------------------------------------------
// Endpoints.
// ---------------------------------------------------------------------------------------------

/** An address of an Endpoints subset. */
export interface EndpointAddress {
  ip: string;
  hostname?: string;
  nodeName?: string;
  targetRef?: { kind: string; namespace: string; name: string; uid: string; resourceVersion?: string };
}

/** A port of an Endpoints subset. */
export interface EndpointPort {
  name?: string;
  port: number;
  protocol: string;
  appProtocol?: string;
}

/** A subset of an Endpoints object. */
export interface EndpointSubset {
  addresses?: EndpointAddress[];
  notReadyAddresses?: EndpointAddress[];
  ports?: EndpointPort[];
}

/**
 * The address of `pod` for `service` (Kubernetes' `podToEndpointAddressForService`): the pod IP of
 * the Service's first IP family (from `spec.ipFamilies`; else the family of its cluster IP; else,
 * headless, the family of the pod's IP). Undefined when the pod has no IP of that family.
 */
export function endpointAddressFor(service: KubeObject, pod: KubeObject): EndpointAddress | undefined {
  const ips = podIPs(pod);
  const families = (specOf(service).ipFamilies ?? []) as string[];
  let v6: boolean;
  if (families.length > 0) v6 = families[0] === 'IPv6';
  else if (isServiceIPSet(service)) v6 = isIPv6(str(specOf(service).clusterIP));
  else v6 = isIPv6(ips[0] ?? '');
  const ip = ips.find((a) => isIPv6(a) === v6);
  if (!ip) return undefined;
  const nodeName = str(specOf(pod).nodeName);
  return {
    ip,
    ...(shouldSetHostname(pod, service) ? { hostname: str(specOf(pod).hostname) } : {}),
    ...(nodeName ? { nodeName } : {}),
    targetRef: podReference(pod) as EndpointAddress['targetRef'],
  };
}

/** The Endpoints port for a Service port reaching container port `port`. */
function endpointPort(servicePort: Fields, port: number): EndpointPort {
  return {
    ...(servicePort.name ? { name: str(servicePort.name) } : {}),
    port,
    protocol: str(servicePort.protocol) || 'TCP',
    ...(servicePort.appProtocol ? { appProtocol: str(servicePort.appProtocol) } : {}),
  };
}

const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
/** Addresses by IP, then pod UID (Kubernetes' `LessEndpointAddress`). */
const compareAddresses = (a: EndpointAddress, b: EndpointAddress): number => compareStrings(a.ip, b.ip) || compareStrings(str(a.targetRef?.uid), str(b.targetRef?.uid));
const portKey = (p: EndpointPort): string => JSON.stringify([str(p.name), Number(p.port), str(p.protocol) || 'TCP', str(p.appProtocol)]);
const comparePorts = (a: EndpointPort, b: EndpointPort): number => compareStrings(portKey(a), portKey(b));

/** A subset in canonical form: empty lists left out, addresses and ports sorted. */
function canonicalSubset(s: EndpointSubset): EndpointSubset {
  const out: EndpointSubset = {};
  if (s.addresses?.length) out.addresses = [...s.addresses].sort(compareAddresses);
  if (s.notReadyAddresses?.length) out.notReadyAddresses = [...s.notReadyAddresses].sort(compareAddresses);
  if (s.ports?.length) out.ports = [...s.ports].sort(comparePorts);
  return out;
}

/** Subsets in canonical order (each canonical, then ordered by content). */
function sortSubsets(subsets: EndpointSubset[]): EndpointSubset[] {
  return subsets.map(canonicalSubset).sort((a, b) => compareStrings(JSON.stringify(sortKeys(a)), JSON.stringify(sortKeys(b))));
}

/**
 * The subsets of a Service's Endpoints over the pods it selects (`pods` are filtered by namespace
 * and selector already), in canonical form (Kubernetes' syncService + `RepackSubsets`): pods that
 * are terminal, have no IP of the Service's family, or (unless `publishNotReadyAddresses`) are being
 * deleted are left out; each pod's address goes under `addresses` when it is Ready (or the Service
 * publishes not-ready addresses), under `notReadyAddresses` otherwise; each Service port resolves per
 * pod (a named `targetPort` through the pod's container ports; a pod without it is left out of that
 * port); addresses offering the same set of ports share a subset. A headless Service without ports
 * gets one subset of addresses without ports.
 */
export function endpointSubsets(service: KubeObject, pods: readonly KubeObject[]): EndpointSubset[] {
  const spec = specOf(service);
  const publishNotReady = spec.publishNotReadyAddresses === true;
  const servicePorts = (spec.ports ?? []) as Fields[];
  const portless = servicePorts.length === 0 && spec.clusterIP === 'None';
  const addresses = new Map<string, EndpointAddress>();
  // Per port: address key -> ready. Not ready wins when one address is listed twice for a port.
  const byPort = new Map<string, { port: EndpointPort; ready: Map<string, boolean> }>();
  const noPorts = new Map<string, boolean>();
  const mark = (m: Map<string, boolean>, key: string, ready: boolean): void => {
    if (m.get(key) !== false) m.set(key, ready);
  };
  for (const pod of pods) {
    if (!shouldPodBeInEndpoints(pod, publishNotReady)) continue;
    const address = endpointAddressFor(service, pod);
    if (!address) continue;
    const key = `${address.ip}\u0000${address.targetRef?.uid ?? ''}`;
    if (!addresses.has(key)) addresses.set(key, address);
    const ready = publishNotReady || isPodReady(pod);
    if (portless) mark(noPorts, key, ready);
    for (const sp of servicePorts) {
      const number = findPort(pod, sp);
      if (number === undefined) continue;
      const port = endpointPort(sp, number);
      const pk = portKey(port);
      let entry = byPort.get(pk);
      if (!entry) byPort.set(pk, (entry = { port, ready: new Map() }));
      mark(entry.ready, key, ready);
    }
  }
  const subsetOf = (ready: Map<string, boolean>, ports: EndpointPort[]): EndpointSubset => {
    const keys = [...ready.keys()];
    return {
      addresses: keys.filter((k) => ready.get(k)).map((k) => addresses.get(k)!),
      notReadyAddresses: keys.filter((k) => !ready.get(k)).map((k) => addresses.get(k)!),
      ports,
    };
  };
  const subsets: EndpointSubset[] = [];
  if (portless && noPorts.size > 0) subsets.push(subsetOf(noPorts, []));
  // Group the ports whose address sets (with readiness) are identical.
  const groups = new Map<string, { ready: Map<string, boolean>; ports: EndpointPort[] }>();
  for (const { port, ready } of byPort.values()) {
    const signature = [...ready.entries()].map(([k, r]) => `${k}=${r}`).sort().join('\n');
    const g = groups.get(signature);
    if (g) g.ports.push(port);
    else groups.set(signature, { ready, ports: [port] });
  }
  for (const g of groups.values()) subsets.push(subsetOf(g.ready, g.ports));
  return sortSubsets(subsets);
}

/**
 * Cuts subsets down to `max` addresses (Kubernetes' `truncateEndpoints`): ready addresses are kept
 * before not-ready ones, each subset keeping its share of the total. Returns whether it cut.
 */
export function truncateSubsets(subsets: readonly EndpointSubset[], max = MAX_ENDPOINTS_CAPACITY): { subsets: EndpointSubset[]; truncated: boolean } {
  const totalReady = subsets.reduce((n, s) => n + (s.addresses?.length ?? 0), 0);
  const totalNotReady = subsets.reduce((n, s) => n + (s.notReadyAddresses?.length ?? 0), 0);
  if (totalReady + totalNotReady <= max) return { subsets: [...subsets], truncated: false };
  const cutReady = totalReady > max;
  const budget = cutReady ? max : max - totalReady;
  const total = cutReady ? totalReady : totalNotReady;
  let left = budget;
  const out = subsets.map((s) => {
    const n = cutReady ? (s.addresses?.length ?? 0) : (s.notReadyAddresses?.length ?? 0);
    const take = Math.min(Math.ceil((n / total) * budget), left);
    if (cutReady) {
      const addresses = (s.addresses ?? []).slice(0, take);
      left -= addresses.length;
      return canonicalSubset({ addresses, ports: s.ports ?? [] });
    }
    const notReadyAddresses = (s.notReadyAddresses ?? []).slice(0, take);
    left -= notReadyAddresses.length;
    return canonicalSubset({ addresses: s.addresses ?? [], notReadyAddresses, ports: s.ports ?? [] });
  });
  return { subsets: out.filter((s) => s.addresses?.length || s.notReadyAddresses?.length), truncated: true };
}

/** The labels of a Service's Endpoints: the Service's, the headless marker when it has no cluster IP, the managed-by label. */
export function endpointsLabels(service: KubeObject): Record<string, string> {
  const labels: Record<string, string> = { ...(service.metadata?.labels ?? {}) };
  if (isServiceIPSet(service)) delete labels[HEADLESS_LABEL];
  else labels[HEADLESS_LABEL] = '';
  labels[ENDPOINTS_MANAGED_BY_LABEL] = ENDPOINTS_CONTROLLER_NAME;
  return labels;
}

/** Subsets compared for meaning: order, empty lists and `targetRef.resourceVersion` do not count. */
export function sameSubsets(a: readonly EndpointSubset[] | undefined, b: readonly EndpointSubset[] | undefined): boolean {
  const norm = (subsets: readonly EndpointSubset[] | undefined): string => {
    const stripped = (subsets ?? []).map((s) => {
      const address = (x: EndpointAddress): EndpointAddress => {
        if (!x.targetRef) return x;
        const { resourceVersion: _rv, ...targetRef } = x.targetRef;
        return { ...x, targetRef };
      };
      return { addresses: (s.addresses ?? []).map(address), notReadyAddresses: (s.notReadyAddresses ?? []).map(address), ports: (s.ports ?? []).map((p) => ({ ...p, protocol: p.protocol || 'TCP' })) };
    });
    return JSON.stringify(sortKeys(sortSubsets(stripped).filter((s) => s.addresses?.length || s.notReadyAddresses?.length || s.ports?.length)));
  };
  return norm(a) === norm(b);
}

/**
 * The Endpoints object `service` should have over the pods it selects, and whether `current` (the
 * stored one, if any) must be written to get there: only when the subsets (at most
 * {@link MAX_ENDPOINTS_CAPACITY} addresses, with the over-capacity annotation when cut), the labels,
 * or the over-capacity annotation differ. `triggerTime` becomes the last-change-trigger-time
 * annotation of a write (removed when undefined). Other metadata of `current` is kept.
 */
export function desiredEndpoints(service: KubeObject, pods: readonly KubeObject[], current?: KubeObject, triggerTime?: string): { endpoints: KubeObject; changed: boolean } {
  const { subsets, truncated } = truncateSubsets(endpointSubsets(service, pods));
  const labels = endpointsLabels(service);
  if (current) {
    const annotations = current.metadata?.annotations ?? {};
    const unchanged =
      sameSubsets(current.subsets as EndpointSubset[] | undefined, subsets) &&
      JSON.stringify(sortKeys(current.metadata?.labels ?? {})) === JSON.stringify(sortKeys(labels)) &&
      (OVER_CAPACITY_ANNOTATION in annotations) === truncated;
    if (unchanged) return { endpoints: current, changed: false };
  }
  const annotations: Record<string, string> = { ...(current?.metadata?.annotations ?? {}) };
  if (triggerTime) annotations[LAST_CHANGE_TRIGGER_TIME_ANNOTATION] = triggerTime;
  else delete annotations[LAST_CHANGE_TRIGGER_TIME_ANNOTATION];
  if (truncated) annotations[OVER_CAPACITY_ANNOTATION] = 'truncated';
  else delete annotations[OVER_CAPACITY_ANNOTATION];
  const { annotations: _a, labels: _l, ...kept } = (current?.metadata ?? {}) as Fields;
  const metadata: Fields = { ...kept, name: str(service.metadata?.name), namespace: str(service.metadata?.namespace), labels };
  if (Object.keys(annotations).length > 0) metadata.annotations = annotations;
  return { endpoints: { apiVersion: 'v1', kind: 'Endpoints', metadata, ...(subsets.length > 0 ? { subsets } : {}) } as KubeObject, changed: true };
}

const endpointsPath = (ns: string, name?: string): string => `/api/v1/namespaces/${encodeURIComponent(ns)}/endpoints${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;

/** True when the Endpoints object was written by this controller. */
export const isManagedEndpoints = (o: KubeObject | undefined): boolean => o?.metadata?.labels?.[ENDPOINTS_MANAGED_BY_LABEL] === ENDPOINTS_CONTROLLER_NAME;

/** The reconciler of the Endpoints controller; the key is the Service's (and its Endpoints'). */
export class EndpointsReconciler {
  readonly triggerTimes = new TriggerTimeTracker();
  readonly writes = new WriteTracker();

  constructor(
    private readonly api: ApiClient,
    private readonly services: Informer,
    private readonly pods: Informer,
    private readonly endpoints: Informer,
    private readonly log: Logger,
    private readonly events?: EventRecorder,
  ) {}

  async reconcile(key: ObjectKey): Promise<ReconcileResult | void> {
    const k = `${key.namespace}/${key.name}`;
    const service = this.services.get(k);
    const current = this.endpoints.get(k);
    if (!service) {
      this.triggerTimes.forget(key.namespace, key.name);
      // The Service is gone: remove the Endpoints this controller wrote for it (no owner references on Endpoints).
      if (current && isManagedEndpoints(current) && !current.metadata?.deletionTimestamp) {
        if (this.writes.stale(k, (x) => this.endpoints.get(x))) return { requeue: true };
        try {
          await this.api.delete(endpointsPath(key.namespace, key.name));
          this.log.info({ service: k }, 'deleted the endpoints of a deleted service');
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
        this.writes.record(k, k, { present: false, uid: String(current.metadata?.uid ?? '') });
      } else {
        this.writes.forget(k);
      }
      return;
    }
    if (!managesEndpoints(service)) return;
    // Our last write is not in the cache yet: syncing now would act on what we replaced.
    if (this.writes.stale(k, (x) => this.endpoints.get(x))) return { requeue: true };
    const matches = serviceSelector(service)!;
    const pods = this.pods.byIndex('namespace', key.namespace).filter((p) => matches(p.metadata?.labels ?? {}));
    // Computed on every sync so the tracker's state follows the pods even when nothing is written.
    const triggerTime = this.triggerTimes.compute(service, pods);
    const { endpoints, changed } = desiredEndpoints(service, pods, current, triggerTime);
    if (!changed) return;
    try {
      if (!current) {
        await this.api.create(endpointsPath(key.namespace), endpoints);
        this.writes.record(k, k, { present: true });
      } else {
        const written = await this.api.update<KubeObject>(endpointsPath(key.namespace, key.name), endpoints);
        if (written?.metadata?.resourceVersion !== current.metadata?.resourceVersion) this.writes.record(k, k, { present: true, replacedVersion: String(current.metadata?.resourceVersion ?? '') });
      }
    } catch (err) {
      if (!current && isNamespaceTerminating(err)) return; // creations keep failing until the namespace is gone
      // Somebody else wrote first, or the cache is behind: look again once it has caught up.
      if (isAlreadyExists(err) || isConflict(err) || (current && isNotFound(err))) return { requeue: true };
      const message = (err as Error).message;
      this.log.warn({ service: k, err: message }, current ? 'failed to update endpoints' : 'failed to create endpoints');
      if (current) this.events?.event(endpoints, 'Warning', 'FailedToUpdateEndpoint', `Failed to update endpoint ${k}: ${message}`);
      else this.events?.event(endpoints, 'Warning', 'FailedToCreateEndpoint', `Failed to create endpoint for service ${k}: ${message}`);
      throw err;
    }
  }
}

/** The Endpoints controller plugin (Kubernetes' `endpoint-controller`). */
export const endpointsControllerPlugin = definePlugin({
  id: 'endpoints-controller',
  kind: 'controller',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'Endpoints controller: an Endpoints object per Service with a selector, listing the addresses of the pods it selects, ready and not ready, with their resolved ports.',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      workers: { type: 'integer', minimum: 1, maximum: 64, default: 5, description: 'Concurrent syncs (Kubernetes --concurrent-endpoint-syncs).' },
      leaderElection: LEADER_ELECTION_SCHEMA,
    },
  },
  async start(handle, config: { workers: number; leaderElection: LeaderElectionConfig }, signal) {
    const services = handle.api.informer('/api/v1/services');
    const pods = handle.api.informer('/api/v1/pods');
    const endpoints = handle.api.informer('/api/v1/endpoints');
    const events = new EventRecorder({ api: handle.api, component: ENDPOINTS_CONTROLLER_NAME, logger: handle.logger, signal });
    const reconciler = new EndpointsReconciler(handle.api, services, pods, endpoints, handle.logger, events);
    const observing = endpoints.subscribe({ add: (o) => reconciler.writes.observe(o, false), update: (o) => reconciler.writes.observe(o, false), delete: (o) => reconciler.writes.observe(o, true) });
    for (const i of [services, pods, endpoints]) i.run();
    await Promise.all([services.waitForSync(signal), pods.waitForSync(signal), endpoints.waitForSync(signal)]);
    handle.ready();
    await runWhileLeading(handle.api, config.leaderElection, handle.logger, signal, async (leading) => {
      const controller = new Controller({ name: 'endpoints', reconciler, workers: config.workers, logger: handle.logger, metrics: handle.metrics });
      controller.watch(services);
      // An Endpoints object shares its Service's key: a user editing or deleting it gets it repaired,
      // and one left behind by a deleted Service is removed.
      controller.watch(endpoints, mapToSelf);
      const unwatchPods = watchPodsForServices(controller, pods, services);
      await controller.run(leading);
      unwatchPods();
    });
    observing();
  },
});
