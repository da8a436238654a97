/**
 * The garbage collector (Kubernetes' `garbagecollector` controller): deletes objects whose owners
 * are all gone, and carries out the three deletion propagation policies the API server only marks.
 *
 * How it works, as upstream (pkg/controller/garbagecollector):
 *
 * - Discovery (`/api`, `/api/v1`, `/apis`, `/apis/<g>/<v>`) finds every resource of a group's
 *   preferred version that supports `list`, `watch` and `delete` (events excepted); one informer
 *   per resource feeds an {@link OwnerGraph}: objects by uid, and each owner uid's dependents from
 *   `metadata.ownerReferences`. Discovery is repeated every `rediscoverySeconds`, so resources that
 *   appear later are watched too.
 * - Graph changes queue object uids on the SDK work queue (one worker per uid at a time, per-uid
 *   exponential back-off on errors). A uid's reconcile does one of:
 *   - **attempt to delete** (a live object with owner references): each reference is classified
 *     as solid (the owner exists), dangling (absent: confirmed by a live GET answering 404 or an
 *     object with another uid, never from the cache alone), waiting (the owner is being deleted in
 *     the foreground) or unresolved (a kind discovery does not know, or a namespaced owner of a
 *     cluster-scoped dependent: left alone, logged once). See {@link decideForDependent}.
 *   - **foreground** (`foregroundDeletion` finalizer and a deletionTimestamp): once no dependent
 *     has `blockOwnerDeletion: true` towards it, the finalizer is removed, which completes the
 *     deletion. Its dependents were queued when it started waiting, and are deleted (in the
 *     foreground themselves when they have dependents: recursively).
 *   - **orphan** (`orphan` finalizer and a deletionTimestamp): the references to it are removed
 *     from its dependents, then the finalizer.
 * - Namespaced owners are looked up in the dependent's namespace; a namespaced dependent may have
 *   cluster-scoped owners; a cluster-scoped dependent cannot have namespaced ones.
 * - Patches carry the resourceVersion they were computed from as a precondition; a conflict
 *   re-reads and retries at once (a few times, then through the queue's back-off). A delete is
 *   issued right after reading the live object and checking its uid; it does not carry upstream's
 *   uid precondition, because the SDK client cannot send a DELETE body yet (see {@link deleteObject}).
 *
 * Metrics: `controller_runtime_reconcile_total{controller="garbage-collector"}` and the work
 * queue's, plus `garbagecollector_controller_resources_sync_error_total`,
 * `garbagecollector_monitored_resources`, `garbagecollector_graph_objects`,
 * `garbagecollector_deletions_total{propagation_policy}`,
 * `garbagecollector_owner_references_removed_total`,
 * `garbagecollector_finalizers_removed_total{finalizer}` and
 * `garbagecollector_owner_lookups_total{result}` (live GETs of owners).
 *
 * @module
 */
import {
  Controller,
  definePlugin,
  delay,
  LEADER_ELECTION_SCHEMA,
  runWhileLeading,
  type LeaderElectionConfig,
  isConflict,
  isNotFound,
  type ApiClient,
  type Counter,
  type Gauge,
  type Informer,
  type KubeObject,
  type Logger,
  type Metrics,
  type ObjectKey,
  type OwnerReference,
  type ReconcileResult,
  type Reconciler,
} from '@kubernel/sdk';

/** The finalizer of a foreground deletion (`propagationPolicy: Foreground`). */
export const FOREGROUND_FINALIZER = 'foregroundDeletion';
/** The finalizer of an orphaning deletion (`propagationPolicy: Orphan`). */
export const ORPHAN_FINALIZER = 'orphan';
/** Resources never watched (upstream's default ignored resources): events own nothing and are owned by nothing worth collecting. */
export const IGNORED_RESOURCES: ReadonlySet<string> = new Set(['/events', 'events.k8s.io/events']);
/** How many times a conflicting write is re-read and retried at once before the queue's back-off takes over. */
export const CONFLICT_RETRIES = 5;
/** How long start-up waits for the informers' first lists before running anyway (live lookups cover the rest). */
export const INITIAL_SYNC_TIMEOUT_MS = 30_000;

/** A deletion propagation policy. */
export type PropagationPolicy = 'Background' | 'Foreground' | 'Orphan';

/** A resource the garbage collector knows from discovery. */
export interface ResourceInfo {
  /** `''` for the core group. */
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  /** The plural resource name (`configmaps`). */
  readonly resource: string;
  readonly namespaced: boolean;
  readonly verbs: readonly string[];
}

/** `group/resource` (`/configmaps` for the core group): the identity of a watched resource. */
export const resourceKey = (r: Pick<ResourceInfo, 'group' | 'resource'>): string => `${r.group}/${r.resource}`;
/** `group/kind`: how an owner reference's kind is resolved (the version does not matter). */
export const groupKindKey = (group: string, kind: string): string => `${group}/${kind}`;

const groupVersionPath = (group: string, version: string): string => (group ? `/apis/${group}/${version}` : `/api/${version}`);

/** The collection path of a resource across namespaces, or in `namespace`. */
export function collectionPath(r: ResourceInfo, namespace?: string): string {
  const ns = r.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${groupVersionPath(r.group, r.version)}${ns}/${r.resource}`;
}

/** The path of one object (`namespace` is ignored for cluster-scoped resources). */
export const objectPath = (r: ResourceInfo, namespace: string, name: string): string => `${collectionPath(r, namespace)}/${encodeURIComponent(name)}`;

/** The group and version of an `apiVersion` (`apps/v1` → apps, v1; `v1` → '', v1). */
export function parseApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? { group: '', version: apiVersion } : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** One entry of an `APIResourceList`. */
export interface ApiResourceEntry {
  readonly name: string;
  readonly namespaced: boolean;
  readonly kind: string;
  readonly verbs?: readonly string[];
}

/**
 * The resources of one discovery document (`APIResourceList` of `groupVersion`), subresources left
 * out. With `deletable`, only those the garbage collector watches: `list`, `watch` and `delete`
 * supported, and not ignored ({@link IGNORED_RESOURCES}).
 */
export function resourcesOf(groupVersion: string, resources: readonly ApiResourceEntry[], deletable: boolean): ResourceInfo[] {
  const { group, version } = parseApiVersion(groupVersion);
  const out: ResourceInfo[] = [];
  for (const r of resources) {
    if (!r || typeof r.name !== 'string' || r.name.includes('/') || typeof r.kind !== 'string') continue;
    const verbs = Array.isArray(r.verbs) ? r.verbs.map(String) : [];
    if (deletable && (!['list', 'watch', 'delete'].every((v) => verbs.includes(v)) || IGNORED_RESOURCES.has(`${group}/${r.name}`))) continue;
    out.push({ group, version, kind: r.kind, resource: r.name, namespaced: r.namespaced === true, verbs });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Pure helpers: references, finalizers, classification, decisions
// ---------------------------------------------------------------------------------------------

const metaOf = (o: KubeObject | undefined): Record<string, unknown> => (o?.metadata ?? {}) as Record<string, unknown>;
/** The uid of an object ('' when it has none). */
export const uidOf = (o: KubeObject | undefined): string => String(metaOf(o).uid ?? '');
/** The finalizers of an object. */
export const finalizersOf = (o: KubeObject | undefined): string[] => (Array.isArray(metaOf(o).finalizers) ? (metaOf(o).finalizers as unknown[]).map(String) : []);
const rawReferences = (o: KubeObject | undefined): unknown[] => (Array.isArray(metaOf(o).ownerReferences) ? (metaOf(o).ownerReferences as unknown[]) : []);

/** True for an owner reference with every required field (apiVersion, kind, name, uid) a string. */
export function isOwnerReference(r: unknown): r is OwnerReference {
  if (typeof r !== 'object' || r === null) return false;
  const x = r as Record<string, unknown>;
  return typeof x.apiVersion === 'string' && typeof x.kind === 'string' && typeof x.name === 'string' && typeof x.uid === 'string' && x.uid !== '';
}

/** The well-formed owner references of an object (malformed entries are ignored, never acted on). */
export const ownerReferencesOf = (o: KubeObject | undefined): OwnerReference[] => rawReferences(o).filter(isOwnerReference);

/** True when the object is being deleted and waits for its dependents (foreground deletion). */
export const isDeletingDependents = (o: KubeObject | undefined): boolean => !!metaOf(o).deletionTimestamp && finalizersOf(o).includes(FOREGROUND_FINALIZER);
/** True when the object is being deleted and its dependents are to be orphaned. */
export const isOrphaning = (o: KubeObject | undefined): boolean => !!metaOf(o).deletionTimestamp && finalizersOf(o).includes(ORPHAN_FINALIZER);

/**
 * What the garbage collector does with an object itself, by its deletion state and finalizers:
 * `active` (no deletionTimestamp: check its owners), `orphan` (orphan its dependents, then drop
 * the `orphan` finalizer; first when both finalizers are set), `foreground` (wait for blocking
 * dependents, then drop `foregroundDeletion`), `terminating` (being deleted otherwise: nothing to
 * do until it is gone, then its dependents are checked).
 */
export type OwnerPhase = 'active' | 'orphan' | 'foreground' | 'terminating';

/** The {@link OwnerPhase} of an object. */
export function ownerPhase(o: KubeObject): OwnerPhase {
  if (!metaOf(o).deletionTimestamp) return 'active';
  const finalizers = finalizersOf(o);
  if (finalizers.includes(ORPHAN_FINALIZER)) return 'orphan';
  if (finalizers.includes(FOREGROUND_FINALIZER)) return 'foreground';
  return 'terminating';
}

/**
 * The state of one owner reference: `solid` (the owner exists), `dangling` (verified absent),
 * `waiting` (the owner exists and is being deleted in the foreground), `unresolved` (cannot be
 * decided: unknown kind, or a namespaced owner of a cluster-scoped dependent).
 */
export type OwnerStatus = 'solid' | 'dangling' | 'waiting' | 'unresolved';

/** An object found at an owner reference's coordinates (or nothing there), or a kind that could not be resolved. */
export type OwnerLookup = KubeObject | undefined | 'unresolved';

/**
 * The {@link OwnerStatus} of `ref` given what is at its coordinates (kind, name and, for a
 * namespaced owner, the dependent's namespace): nothing, or an object with another uid, is
 * dangling; the same uid is solid, or waiting when that owner is deleting its dependents.
 */
export function ownerStatus(ref: OwnerReference, found: OwnerLookup): OwnerStatus {
  if (found === 'unresolved') return 'unresolved';
  if (!found || uidOf(found) !== ref.uid) return 'dangling';
  return isDeletingDependents(found) ? 'waiting' : 'solid';
}

/** An object's owner references, sorted by {@link OwnerStatus}. */
export interface Classification {
  readonly solid: readonly OwnerReference[];
  readonly dangling: readonly OwnerReference[];
  readonly waiting: readonly OwnerReference[];
  readonly unresolved: readonly OwnerReference[];
}

/** Sorts `refs` by the status `statusOf` gives each (called once per reference, in order). */
export function classifyReferences(refs: readonly OwnerReference[], statusOf: (ref: OwnerReference, index: number) => OwnerStatus): Classification {
  const out = { solid: [] as OwnerReference[], dangling: [] as OwnerReference[], waiting: [] as OwnerReference[], unresolved: [] as OwnerReference[] };
  refs.forEach((ref, i) => out[statusOf(ref, i)].push(ref));
  return out;
}

/** The references (given as `refs`, for a dangling-detection table) that `lookup` shows to be dangling. */
export const danglingReferences = (refs: readonly OwnerReference[], lookup: (ref: OwnerReference) => OwnerLookup): OwnerReference[] => refs.filter((r) => ownerStatus(r, lookup(r)) === 'dangling');

/** What to do with a dependent (an object with owner references and no deletionTimestamp). */
export type DependentAction =
  | { readonly action: 'none'; readonly reason: string }
  | { readonly action: 'removeReferences'; readonly uids: readonly string[] }
  | { readonly action: 'delete'; readonly policy: PropagationPolicy; readonly unblockFirst: boolean };

/** What {@link decideForDependent} needs to know besides the classification. */
export interface DependentContext {
  /** The dependent's own finalizers (an `orphan` or `foregroundDeletion` one is honoured). */
  readonly finalizers: readonly string[];
  /** True when the dependent has dependents of its own. */
  readonly hasDependents: boolean;
  /** True when one of its dependents is itself deleting its dependents (a cycle through a foreground deletion). */
  readonly dependentDeletingDependents: boolean;
}

/**
 * The garbage collector's decision for a dependent, as upstream's attemptToDeleteItem:
 *
 * - a solid owner left (or one that cannot be resolved, which counts as possibly alive): the
 *   object stays; dangling references, and references to owners waiting in the foreground, are
 *   removed (so those owners are not held up);
 * - otherwise, with an owner waiting in the foreground and dependents of its own: deleted in the
 *   foreground (recursion), its references first made non-blocking when one of its dependents is
 *   itself waiting (an ownership cycle would deadlock);
 * - otherwise (every owner dangling, or waiting with no dependents below): deleted, honouring an
 *   `orphan` or `foregroundDeletion` finalizer it already has, else in the background.
 *
 * `blockOwnerDeletion` does not change the decision.
 */
export function decideForDependent(c: Classification, ctx: DependentContext): DependentAction {
  if (c.solid.length + c.dangling.length + c.waiting.length + c.unresolved.length === 0) return { action: 'none', reason: 'no owner references' };
  if (c.solid.length > 0 || c.unresolved.length > 0) {
    // A uid listed twice with a solid and a dangling entry stays: removal is by uid.
    const keep = new Set([...c.solid, ...c.unresolved].map((r) => r.uid));
    const uids = [...new Set([...c.dangling, ...c.waiting].map((r) => r.uid))].filter((u) => !keep.has(u));
    if (uids.length > 0) return { action: 'removeReferences', uids };
    return { action: 'none', reason: c.solid.length > 0 ? 'an owner exists' : 'an owner reference cannot be resolved' };
  }
  if (c.waiting.length > 0 && ctx.hasDependents) return { action: 'delete', policy: 'Foreground', unblockFirst: ctx.dependentDeletingDependents };
  return { action: 'delete', policy: policyFromFinalizers(ctx.finalizers), unblockFirst: false };
}

/** The propagation policy an object's own finalizers ask for: Orphan, Foreground, else Background. */
export function policyFromFinalizers(finalizers: readonly string[]): PropagationPolicy {
  if (finalizers.includes(ORPHAN_FINALIZER)) return 'Orphan';
  if (finalizers.includes(FOREGROUND_FINALIZER)) return 'Foreground';
  return 'Background';
}

/** The raw `ownerReferences` entries of `o` without those pointing at `uids` (other entries untouched). */
export const withoutOwnerReferences = (o: KubeObject, uids: Iterable<string>): unknown[] => {
  const drop = new Set(uids);
  return rawReferences(o).filter((r) => !(isOwnerReference(r) && drop.has(r.uid)));
};

/** The raw `ownerReferences` entries of `o` with every `blockOwnerDeletion: true` turned false. */
export const unblockedOwnerReferences = (o: KubeObject): unknown[] => rawReferences(o).map((r) => (isOwnerReference(r) && r.blockOwnerDeletion === true ? { ...r, blockOwnerDeletion: false } : r));

// ---------------------------------------------------------------------------------------------
// The graph
// ---------------------------------------------------------------------------------------------

/** One object of the {@link OwnerGraph}. */
export interface GraphNode {
  readonly uid: string;
  readonly resource: ResourceInfo;
  /** `''` for cluster-scoped objects. */
  readonly namespace: string;
  readonly name: string;
  readonly object: KubeObject;
  readonly refs: readonly OwnerReference[];
}

const sameRefs = (a: readonly OwnerReference[], b: readonly OwnerReference[]): boolean =>
  a.length === b.length && a.every((r, i) => r.uid === b[i]!.uid && r.name === b[i]!.name && r.kind === b[i]!.kind && r.apiVersion === b[i]!.apiVersion && !!r.blockOwnerDeletion === !!b[i]!.blockOwnerDeletion);

/**
 * The dependency graph (upstream's GraphBuilder, without its own queue): the observed objects by
 * uid, and for every owner uid the uids of the observed objects that reference it. It holds no
 * API client; {@link observe} and {@link forget} return the uids the garbage collector must look
 * at after the change. Nothing here walks the graph, so ownership cycles cannot make it loop.
 */
export class OwnerGraph {
  private readonly nodes = new Map<string, GraphNode>();
  private readonly dependents = new Map<string, Set<string>>();

  /** How many objects the graph holds. */
  get size(): number {
    return this.nodes.size;
  }

  /** The node of `uid`, if observed. */
  get(uid: string): GraphNode | undefined {
    return this.nodes.get(uid);
  }

  /** Every node. */
  all(): IterableIterator<GraphNode> {
    return this.nodes.values();
  }

  /** The observed objects that reference `uid` as an owner. */
  dependentsOf(uid: string): GraphNode[] {
    const out: GraphNode[] = [];
    for (const d of this.dependents.get(uid) ?? []) {
      const n = this.nodes.get(d);
      if (n) out.push(n);
    }
    return out;
  }

  /** The dependents of `uid` whose reference to it has `blockOwnerDeletion: true`. */
  blockingDependentsOf(uid: string): GraphNode[] {
    return this.dependentsOf(uid).filter((d) => d.refs.some((r) => r.uid === uid && r.blockOwnerDeletion === true));
  }

  /**
   * The observed owner `ref` designates for a dependent in `dependentNamespace`: the object of
   * that uid, if its group, kind and name match the reference and, when it is namespaced, it is in
   * the dependent's namespace (so never for a cluster-scoped dependent).
   */
  ownerOf(ref: OwnerReference, dependentNamespace: string): GraphNode | undefined {
    const n = this.nodes.get(ref.uid);
    if (!n) return undefined;
    const { group } = parseApiVersion(ref.apiVersion);
    if (n.resource.group !== group || n.resource.kind !== ref.kind || n.name !== ref.name) return undefined;
    if (n.resource.namespaced && n.namespace !== dependentNamespace) return undefined;
    return n;
  }

  /** The status of `ref` from the graph alone: solid or waiting when its owner is observed, else undefined (look it up live). */
  cachedStatus(ref: OwnerReference, dependentNamespace: string): 'solid' | 'waiting' | undefined {
    const owner = this.ownerOf(ref, dependentNamespace);
    if (!owner) return undefined;
    return isDeletingDependents(owner.object) ? 'waiting' : 'solid';
  }

  /**
   * Adds or updates `object` (of `resource`); returns the uids to process:
   * - the object itself when it is new or its references changed and an owner is not observed
   *   (possibly dangling) or is deleting its dependents;
   * - owners deleting their dependents that it no longer blocks (reference removed or made
   *   non-blocking);
   * - the object itself when it is orphaning or deleting its dependents, and, when it has just
   *   started the latter, every dependent (they are to be deleted).
   */
  observe(resource: ResourceInfo, object: KubeObject): string[] {
    const uid = uidOf(object);
    if (!uid) return [];
    const old = this.nodes.get(uid);
    const ns = resource.namespaced ? String(object.metadata?.namespace ?? '') : '';
    const node: GraphNode = { uid, resource, namespace: ns, name: String(object.metadata?.name ?? ''), object, refs: ownerReferencesOf(object) };
    const out = new Set<string>();
    const oldRefs = old?.refs ?? [];
    for (const r of oldRefs) if (!node.refs.some((n) => n.uid === r.uid)) this.unlink(r.uid, uid);
    for (const r of node.refs) this.link(r.uid, uid);
    this.nodes.set(uid, node);
    if (!old || !sameRefs(oldRefs, node.refs)) {
      for (const r of oldRefs) {
        if (r.blockOwnerDeletion !== true || node.refs.some((n) => n.uid === r.uid && n.blockOwnerDeletion === true)) continue;
        if (isDeletingDependents(this.nodes.get(r.uid)?.object)) out.add(r.uid);
      }
      for (const r of node.refs) {
        const owner = this.ownerOf(r, ns);
        if (!owner || isDeletingDependents(owner.object)) out.add(uid);
      }
    }
    if (isOrphaning(object)) out.add(uid);
    if (isDeletingDependents(object)) {
      out.add(uid);
      if (!isDeletingDependents(old?.object)) for (const d of this.dependentsOf(uid)) out.add(d.uid);
    }
    return [...out];
  }

  /**
   * Removes `object` (deleted); returns the uids to process: its dependents (their owner is gone)
   * and its owners that are deleting their dependents (one fewer to wait for).
   */
  forget(object: KubeObject): string[] {
    const uid = uidOf(object);
    if (!uid) return [];
    const node = this.nodes.get(uid);
    this.nodes.delete(uid);
    const out = new Set<string>(this.dependentsOf(uid).map((d) => d.uid));
    for (const r of node?.refs ?? ownerReferencesOf(object)) {
      this.unlink(r.uid, uid);
      if (isDeletingDependents(this.nodes.get(r.uid)?.object)) out.add(r.uid);
    }
    out.delete(uid);
    return [...out];
  }

  /** Removes every object of a resource no longer watched; returns the uids to process, as {@link forget}. */
  dropResource(key: string): string[] {
    const out = new Set<string>();
    for (const n of [...this.nodes.values()]) if (resourceKey(n.resource) === key) for (const u of this.forget(n.object)) out.add(u);
    return [...out].filter((u) => this.nodes.has(u));
  }

  private link(owner: string, dependent: string): void {
    let set = this.dependents.get(owner);
    if (!set) this.dependents.set(owner, (set = new Set()));
    set.add(dependent);
  }

  private unlink(owner: string, dependent: string): void {
    const set = this.dependents.get(owner);
    set?.delete(dependent);
    if (set?.size === 0) this.dependents.delete(owner);
  }
}

/** A set that forgets its oldest entries beyond `capacity` (upstream's absent-owner LRU cache). */
export class BoundedSet {
  private readonly items = new Set<string>();
  constructor(readonly capacity: number) {}
  has(key: string): boolean {
    return this.items.has(key);
  }
  add(key: string): void {
    this.items.delete(key);
    this.items.add(key);
    while (this.items.size > this.capacity) this.items.delete(this.items.values().next().value as string);
  }
}

// ---------------------------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------------------------

/** What one discovery pass found. */
export interface Discovery {
  /** The resources to watch: preferred versions, deletable, not ignored. */
  readonly watch: ResourceInfo[];
  /** Every top-level resource by {@link groupKindKey}, preferred versions first: how owner kinds are resolved. */
  readonly kinds: Map<string, ResourceInfo>;
  /** The group versions whose discovery failed (their resources are kept from the last pass). */
  readonly failed: string[];
}

interface GroupList {
  groups?: Array<{ name: string; versions?: Array<{ groupVersion: string }>; preferredVersion?: { groupVersion: string } }>;
}

/** Reads `/api`, `/api/<v>`, `/apis` and every `/apis/<g>/<v>`; a failing `/api` or `/apis` throws. */
export async function discover(api: ApiClient): Promise<Discovery> {
  const [core, groups] = await Promise.all([api.get<{ versions?: string[] }>('/api'), api.get<GroupList>('/apis')]);
  const versions: Array<{ groupVersion: string; preferred: boolean }> = (core.versions ?? []).map((v, i) => ({ groupVersion: v, preferred: i === 0 }));
  for (const g of groups.groups ?? []) {
    const preferred = g.preferredVersion?.groupVersion ?? g.versions?.[0]?.groupVersion;
    for (const v of g.versions ?? []) versions.push({ groupVersion: v.groupVersion, preferred: v.groupVersion === preferred });
  }
  const failed: string[] = [];
  const lists = await Promise.all(
    versions.map(async (v) => {
      try {
        const { group, version } = parseApiVersion(v.groupVersion);
        const list = await api.get<{ resources?: ApiResourceEntry[] }>(groupVersionPath(group, version));
        return { ...v, resources: list.resources ?? [] };
      } catch {
        failed.push(v.groupVersion);
        return { ...v, resources: [] };
      }
    }),
  );
  const watch: ResourceInfo[] = [];
  const kinds = new Map<string, ResourceInfo>();
  for (const l of [...lists].sort((a, b) => Number(b.preferred) - Number(a.preferred))) {
    for (const r of resourcesOf(l.groupVersion, l.resources, false)) if (!kinds.has(groupKindKey(r.group, r.kind))) kinds.set(groupKindKey(r.group, r.kind), r);
    if (l.preferred) watch.push(...resourcesOf(l.groupVersion, l.resources, true));
  }
  return { watch, kinds, failed };
}

// ---------------------------------------------------------------------------------------------
// The controller
// ---------------------------------------------------------------------------------------------

/** The configuration of the `garbage-collector` plugin. */
export interface GarbageCollectorConfig {
  /** Concurrent reconciles (Kubernetes --concurrent-gc-syncs). */
  readonly workers: number;
  /** How often discovery is repeated to pick up new resources. */
  readonly rediscoverySeconds: number;
}

interface Monitor {
  readonly info: ResourceInfo;
  readonly informer: Informer;
  readonly unsubscribe: () => void;
}

interface GcMetrics {
  readonly syncErrors: Counter;
  readonly monitored: Gauge;
  readonly graphObjects: Gauge;
  readonly deletions: Counter<'propagation_policy'>;
  readonly referencesRemoved: Counter;
  readonly finalizersRemoved: Counter<'finalizer'>;
  readonly lookups: Counter<'result'>;
}

function gcMetrics(m: Metrics): GcMetrics {
  return {
    syncErrors: m.counter({ name: 'garbagecollector_controller_resources_sync_error_total', help: 'Garbage collector discovery and informer sync failures.' }),
    monitored: m.gauge({ name: 'garbagecollector_monitored_resources', help: 'Resources the garbage collector watches.' }),
    graphObjects: m.gauge({ name: 'garbagecollector_graph_objects', help: 'Objects in the garbage collector\'s dependency graph.' }),
    deletions: m.counter({ name: 'garbagecollector_deletions_total', help: 'Objects the garbage collector deleted, by propagation policy.', labelNames: ['propagation_policy'] }),
    referencesRemoved: m.counter({ name: 'garbagecollector_owner_references_removed_total', help: 'Owner references the garbage collector removed (dangling, orphaned, or to owners waiting for it).' }),
    finalizersRemoved: m.counter({ name: 'garbagecollector_finalizers_removed_total', help: 'orphan and foregroundDeletion finalizers the garbage collector removed.', labelNames: ['finalizer'] }),
    lookups: m.counter({ name: 'garbagecollector_owner_lookups_total', help: 'Live GETs of owners not found in the graph, by result (found, absent, error).', labelNames: ['result'] }),
  };
}

/** The controller's name: of its work queue, logs and controller_runtime metrics. */
export const GARBAGE_COLLECTOR = 'garbage-collector';

/**
 * The garbage collector: monitors (informers) per discovered resource feeding an
 * {@link OwnerGraph}, and a {@link Reconciler} of object uids. {@link run} drives it all.
 */
export class GarbageCollector implements Reconciler {
  readonly graph = new OwnerGraph();
  readonly controller: Controller;
  private kinds = new Map<string, ResourceInfo>();
  private readonly monitors = new Map<string, Monitor>();
  private readonly absentOwners = new BoundedSet(4096);
  private readonly loggedOnce = new Set<string>();
  /** Dependents with an unresolved reference: looked at again when discovery learns new kinds. */
  private readonly unresolved = new Set<string>();
  private readonly m: GcMetrics;

  constructor(
    private readonly api: ApiClient,
    private readonly log: Logger,
    metrics: Metrics,
    private readonly config: GarbageCollectorConfig,
  ) {
    this.m = gcMetrics(metrics);
    this.controller = new Controller({ name: GARBAGE_COLLECTOR, reconciler: this, workers: config.workers, logger: log, metrics });
  }

  /**
   * Discovers and watches, waits (up to {@link INITIAL_SYNC_TIMEOUT_MS}) for the first lists,
   * calls `ready`, then runs the workers and rediscovers periodically until `signal` aborts.
   *
   * @throws when the first discovery fails entirely (`/api` or `/apis` unreachable).
   */
  async run(signal: AbortSignal, ready: () => void): Promise<void> {
    try {
      await this.resync();
      await this.waitForCaches(signal);
      if (signal.aborted) return;
      const running = this.controller.run(signal);
      ready();
      this.log.info({ resources: this.monitors.size, objects: this.graph.size }, 'garbage collector running');
      while (await delay(this.config.rediscoverySeconds * 1000, signal)) {
        try {
          await this.resync();
        } catch (err) {
          this.m.syncErrors.inc();
          this.log.warn({ err: (err as Error).message }, 'rediscovery failed; keeping the resources watched');
        }
      }
      await running;
    } finally {
      this.controller.queue.shutDown();
      for (const mon of this.monitors.values()) mon.unsubscribe();
      this.monitors.clear();
    }
  }

  /** One discovery pass: watches new resources, drops vanished ones (only after a complete pass), learns kinds. */
  async resync(): Promise<void> {
    const found = await discover(this.api);
    if (found.failed.length > 0) {
      this.m.syncErrors.inc();
      this.log.warn({ groupVersions: found.failed }, 'discovery failed for some group versions; their resources stay as they were');
    }
    const kindsBefore = this.kinds.size;
    const merged = new Map(found.kinds);
    if (found.failed.length > 0) for (const [k, v] of this.kinds) if (!merged.has(k)) merged.set(k, v);
    this.kinds = merged;
    const wanted = new Map(found.watch.map((r) => [resourceKey(r), r] as const));
    for (const [key, info] of wanted) if (!this.monitors.has(key)) this.startMonitor(key, info);
    if (found.failed.length === 0) {
      for (const [key, mon] of this.monitors) {
        if (wanted.has(key)) continue;
        mon.unsubscribe();
        this.monitors.delete(key);
        this.log.info({ resource: key }, 'resource no longer served; stopped watching it');
        this.enqueue(this.graph.dropResource(key));
      }
    }
    this.m.monitored.set(this.monitors.size);
    if (this.kinds.size !== kindsBefore) {
      // Kinds appeared (or went): references that could not be resolved may be now.
      this.enqueue([...this.unresolved]);
    }
  }

  private startMonitor(key: string, info: ResourceInfo): void {
    // The shared informer of the path (other plugins may use it too): never stopped here.
    const informer = this.api.informer(collectionPath(info));
    const unsubscribe = informer.subscribe({
      add: (o) => this.enqueue(this.graph.observe(info, o)),
      update: (o, old) => {
        if (uidOf(old) && uidOf(old) !== uidOf(o)) this.enqueue(this.graph.forget(old));
        this.enqueue(this.graph.observe(info, o));
      },
      delete: (o) => {
        this.unresolved.delete(uidOf(o));
        this.enqueue(this.graph.forget(o));
      },
      changed: () => this.m.graphObjects.set(this.graph.size),
    });
    informer.run();
    this.monitors.set(key, { info, informer, unsubscribe });
  }

  private async waitForCaches(signal: AbortSignal): Promise<void> {
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), INITIAL_SYNC_TIMEOUT_MS);
    const onAbort = (): void => timeout.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await Promise.allSettled([...this.monitors.values()].map((m) => m.informer.waitForSync(timeout.signal)));
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
    const unsynced = [...this.monitors.values()].filter((m) => !m.informer.synced);
    if (unsynced.length > 0 && !signal.aborted) {
      this.m.syncErrors.inc();
      this.log.warn({ resources: unsynced.map((m) => resourceKey(m.info)), errors: unsynced.map((m) => m.informer.lastError).filter(Boolean) }, 'some informers have not synced; running anyway (owners are verified live)');
    }
  }

  private enqueue(uids: Iterable<string>): void {
    for (const uid of uids) this.controller.enqueue({ namespace: '', name: uid });
  }

  private logOnce(key: string, fields: Record<string, unknown>, message: string): void {
    if (this.loggedOnce.has(key)) return;
    if (this.loggedOnce.size > 10_000) this.loggedOnce.clear();
    this.loggedOnce.add(key);
    this.log.warn(fields, message);
  }

  /** Reconciles the object of uid `key.name` (conflicts are re-read and retried a few times at once). */
  async reconcile(key: ObjectKey): Promise<ReconcileResult | void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.process(key.name);
      } catch (err) {
        if (!isConflict(err) || attempt >= CONFLICT_RETRIES) throw err;
      }
    }
  }

  private async process(uid: string): Promise<void> {
    const node = this.graph.get(uid);
    if (!node) return; // gone: its dependents were queued when it left the graph
    switch (ownerPhase(node.object)) {
      case 'orphan':
        return this.orphanDependents(node);
      case 'foreground':
        return this.processDeletingDependents(node);
      case 'terminating':
        return; // a one-way trip: its dependents are looked at once it is gone
      case 'active':
        return this.attemptToDelete(node);
    }
  }

  private async attemptToDelete(node: GraphNode): Promise<void> {
    if (node.refs.length === 0) {
      this.unresolved.delete(node.uid);
      return;
    }
    // Every owner in the graph and alive: nothing to do, no request needed.
    if (node.refs.every((r) => this.graph.cachedStatus(r, node.namespace) === 'solid')) {
      this.unresolved.delete(node.uid);
      return;
    }
    const latest = await this.getLive(node.resource, node.namespace, node.name);
    if (!latest || uidOf(latest) !== node.uid || metaOf(latest).deletionTimestamp) return;
    const refs = ownerReferencesOf(latest);
    const statuses: OwnerStatus[] = [];
    for (const ref of refs) statuses.push(await this.statusOf(ref, node));
    const c = classifyReferences(refs, (_, i) => statuses[i]!);
    if (c.unresolved.length > 0) this.unresolved.add(node.uid);
    else this.unresolved.delete(node.uid);
    const dependents = this.graph.dependentsOf(node.uid);
    const decision = decideForDependent(c, {
      finalizers: finalizersOf(latest),
      hasDependents: dependents.length > 0,
      dependentDeletingDependents: dependents.some((d) => isDeletingDependents(d.object)),
    });
    const who = { resource: resourceKey(node.resource), namespace: node.namespace || undefined, name: node.name, uid: node.uid };
    switch (decision.action) {
      case 'none':
        return;
      case 'removeReferences': {
        this.log.info({ ...who, owners: decision.uids }, 'removing references to absent owners and owners deleting their dependents');
        const remaining = withoutOwnerReferences(latest, decision.uids);
        await this.patchMetadata(node, latest, { ownerReferences: remaining.length > 0 ? remaining : null });
        this.m.referencesRemoved.inc(rawReferences(latest).length - remaining.length);
        return;
      }
      case 'delete': {
        let target: KubeObject | undefined = latest;
        if (decision.unblockFirst) {
          this.log.info(who, 'an owner and a dependent both wait for their dependents (a cycle): making its owner references non-blocking');
          target = await this.patchMetadata(node, latest, { ownerReferences: unblockedOwnerReferences(latest) });
          if (!target) return;
        }
        this.log.info({ ...who, propagationPolicy: decision.policy, dangling: c.dangling.map((r) => r.uid), waiting: c.waiting.map((r) => r.uid) }, 'deleting an object whose owners are gone or deleting it');
        await this.deleteObject(node, target, decision.policy);
        return;
      }
    }
  }

  /** The status of one of `dependent`'s references: from the graph when its owner is there, else looked up live. */
  private async statusOf(ref: OwnerReference, dependent: GraphNode): Promise<OwnerStatus> {
    const cached = this.graph.cachedStatus(ref, dependent.namespace);
    if (cached) return cached;
    const { group } = parseApiVersion(ref.apiVersion);
    const info = this.kinds.get(groupKindKey(group, ref.kind));
    if (!info) {
      this.logOnce(`kind:${group}/${ref.kind}`, { apiVersion: ref.apiVersion, kind: ref.kind, dependent: dependent.name, namespace: dependent.namespace || undefined }, 'owner reference to a kind discovery does not know; leaving its dependents alone until it is served');
      return 'unresolved';
    }
    if (!dependent.resource.namespaced && info.namespaced) {
      this.logOnce(`scope:${dependent.uid}:${ref.uid}`, { dependent: dependent.name, resource: resourceKey(dependent.resource), owner: { kind: ref.kind, name: ref.name, uid: ref.uid } }, 'a cluster-scoped object refers to a namespaced owner (invalid); leaving it alone');
      return 'unresolved';
    }
    const namespace = info.namespaced ? dependent.namespace : '';
    const absentKey = `${ref.uid}|${group}|${ref.kind}|${namespace}|${ref.name}`;
    if (this.absentOwners.has(absentKey)) return 'dangling';
    let found: KubeObject | undefined;
    try {
      found = await this.getLive(info, namespace, ref.name);
    } catch (err) {
      this.m.lookups.inc({ result: 'error' });
      throw err;
    }
    const status = ownerStatus(ref, found);
    this.m.lookups.inc({ result: status === 'dangling' ? 'absent' : 'found' });
    if (status === 'dangling') this.absentOwners.add(absentKey);
    return status;
  }

  private async processDeletingDependents(node: GraphNode): Promise<void> {
    const blocking = this.graph.blockingDependentsOf(node.uid);
    if (blocking.length === 0) {
      await this.removeFinalizer(node, FOREGROUND_FINALIZER);
      return;
    }
    // Blocking dependents go first (each is queued once more; one already deleting its own
    // dependents is on its way). Their deletion events bring this owner back.
    for (const d of blocking) if (!isDeletingDependents(d.object)) this.enqueue([d.uid]);
  }

  private async orphanDependents(node: GraphNode): Promise<void> {
    const dependents = this.graph.dependentsOf(node.uid);
    const failures: string[] = [];
    for (let i = 0; i < dependents.length; i += 16) {
      const results = await Promise.allSettled(dependents.slice(i, i + 16).map((d) => this.removeReferencesFrom(d, node.uid)));
      for (const r of results) if (r.status === 'rejected') failures.push(String((r.reason as Error)?.message ?? r.reason));
    }
    if (failures.length > 0) throw new Error(`orphaning the dependents of ${node.name} (${node.uid}) failed: ${failures.join('; ')}`);
    if (dependents.length > 0) this.log.info({ resource: resourceKey(node.resource), namespace: node.namespace || undefined, name: node.name, uid: node.uid, dependents: dependents.length }, 'orphaned dependents');
    await this.removeFinalizer(node, ORPHAN_FINALIZER);
  }

  /** Removes the references to `ownerUid` from a dependent, re-reading it on conflicts. */
  private async removeReferencesFrom(dep: GraphNode, ownerUid: string): Promise<void> {
    let current: KubeObject | undefined = dep.object;
    for (let attempt = 1; ; attempt++) {
      if (!current || uidOf(current) !== dep.uid) return;
      const remaining = withoutOwnerReferences(current, [ownerUid]);
      const removed = rawReferences(current).length - remaining.length;
      if (removed === 0) return;
      try {
        await this.patchMetadata(dep, current, { ownerReferences: remaining.length > 0 ? remaining : null });
        this.m.referencesRemoved.inc(removed);
        return;
      } catch (err) {
        if (!isConflict(err) || attempt >= CONFLICT_RETRIES) throw err;
        current = await this.getLive(dep.resource, dep.namespace, dep.name);
      }
    }
  }

  /** Removes `finalizer` from the object of `node` (which completes its deletion when it was the last). */
  private async removeFinalizer(node: GraphNode, finalizer: string): Promise<void> {
    let current: KubeObject | undefined = node.object;
    for (let attempt = 1; ; attempt++) {
      if (!current || uidOf(current) !== node.uid) return;
      const finalizers = finalizersOf(current);
      if (!finalizers.includes(finalizer)) return;
      const rest = finalizers.filter((f) => f !== finalizer);
      try {
        await this.patchMetadata(node, current, { finalizers: rest.length > 0 ? rest : null });
        this.m.finalizersRemoved.inc({ finalizer });
        this.log.info({ resource: resourceKey(node.resource), namespace: node.namespace || undefined, name: node.name, uid: node.uid, finalizer }, 'removed finalizer');
        return;
      } catch (err) {
        if (!isConflict(err) || attempt >= CONFLICT_RETRIES) throw err;
        current = await this.getLive(node.resource, node.namespace, node.name);
      }
    }
  }

  /**
   * A merge patch of `metadata` with `current`'s resourceVersion as precondition. Resolves with
   * the patched object, or undefined when the object is gone; a conflict is thrown.
   */
  private async patchMetadata(node: GraphNode, current: KubeObject, metadata: Record<string, unknown>): Promise<KubeObject | undefined> {
    try {
      return await this.api.patch(objectPath(node.resource, node.namespace, node.name), { metadata: { ...metadata, resourceVersion: current.metadata?.resourceVersion } });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * DELETE with `policy`; gone already is fine. `current` is the live object just read, whose uid
   * the caller checked. Upstream also sends `preconditions: {uid}` in a DeleteOptions body, but
   * the SDK's ApiClient sends request bodies without Content-Length, which Node does not frame
   * for DELETE (the server answers 400 and drops the connection); so the policy travels as the
   * `propagationPolicy` query parameter and the precondition waits for that client fix.
   */
  private async deleteObject(node: GraphNode, current: KubeObject, policy: PropagationPolicy): Promise<void> {
    if (uidOf(current) !== node.uid) return;
    try {
      await this.api.delete(`${objectPath(node.resource, node.namespace, node.name)}?propagationPolicy=${policy}`);
      this.m.deletions.inc({ propagation_policy: policy });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /** The object at those coordinates, or undefined on 404. */
  private async getLive(info: ResourceInfo, namespace: string, name: string): Promise<KubeObject | undefined> {
    try {
      return await this.api.get(objectPath(info, namespace, name));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }
}

/** The garbage collector plugin. */
export const garbageCollectorPlugin = definePlugin({
  id: 'garbage-collector',
  kind: 'controller',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'Garbage collector: deletes objects whose owners are gone, and carries out foreground and orphan deletion (ownerReferences, finalizers).',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      workers: { type: 'integer', minimum: 1, maximum: 256, default: 20, description: 'Concurrent reconciles (Kubernetes --concurrent-gc-syncs).' },
      rediscoverySeconds: { type: 'number', exclusiveMinimum: 0, maximum: 86_400, default: 30, description: 'How often API discovery is repeated to watch new resources.' },
      leaderElection: LEADER_ELECTION_SCHEMA,
    },
  },
  async start(handle, config: GarbageCollectorConfig & { leaderElection?: LeaderElectionConfig }, signal) {
    // Ready at once (a standby is healthy); the graph is built and acted on only while leading.
    handle.ready();
    await runWhileLeading(handle.api, config.leaderElection ?? {}, handle.logger, signal, async (leading) => {
      const gc = new GarbageCollector(handle.api, handle.logger, handle.metrics, config);
      await gc.run(leading, () => undefined);
    });
  },
});
