/**
 * The node IPAM controller: kube-controller-manager's `nodeipam` controller with
 * `--allocate-node-cidrs` and the `RangeAllocator` (`--cidr-allocator-type=RangeAllocator`).
 *
 * Every Node gets a pod CIDR of `nodeCIDRMaskSize` bits from `clusterCIDR` (`--cluster-cidr`,
 * `--node-cidr-mask-size`) in `spec.podCIDR` and `spec.podCIDRs`; the node agent hands it to the
 * container runtime, whose CNI configuration allocates pod IPs from it.
 *
 * - When it starts leading, the controller marks the CIDRs of every existing Node as used, whatever
 *   they are (a CIDR set by hand, outside the allocation order, is respected); a CIDR outside the
 *   cluster CIDR is left alone and occupies nothing. `serviceCIDR` (`--service-cluster-ip-range`)
 *   is marked used where it overlaps the cluster CIDR, so pods never get Service addresses.
 * - A Node without a pod CIDR gets the **lowest** free one (first fit), through a merge patch of
 *   `spec.podCIDR` and `spec.podCIDRs` guarded by the resourceVersion and uid it read just before,
 *   so a CIDR somebody else set in between is never overwritten (`podCIDR` is immutable once set).
 *   Upstream's `cidrset` hands CIDRs out round-robin from a cursor that resets on restart; first
 *   fit gives the same order on every leader and reuses a freed CIDR at once, which keeps small
 *   ranges dense and makes the order predictable.
 * - A deleted Node releases its CIDR; Nodes still waiting for one are retried at once.
 * - When the range is full, the Node gets a `Normal` event `CIDRNotAvailable` ("Node x status is
 *   now: CIDRNotAvailable"), as Kubernetes' `RecordNodeStatusChange`, and is retried with back-off
 *   (and as soon as a CIDR is released). The Node's `NetworkUnavailable` condition is not touched:
 *   it belongs to the network plugin.
 *
 * IPv4 only: dual-stack (a second, IPv6 cluster CIDR) is not supported; IPv6 entries of a Node's
 * `spec.podCIDRs` are ignored. Events name the Node with `uid` = its name, as Kubernetes' node
 * events do (so `kubectl describe node` lists them), from the component `cidrAllocator`.
 *
 * @module
 */
import {
  Controller,
  EventRecorder,
  PluginError,
  definePlugin,
  isConflict,
  isNotFound,
  runWhileLeading,
  LEADER_ELECTION_SCHEMA,
  type ApiClient,
  type Informer,
  type KubeObject,
  type LeaderElectionConfig,
  type Logger,
  type Metrics,
  type ObjectKey,
  type Reconciler,
} from '@kubernel/sdk';
import type { Fields } from './util.js';

// ---------------------------------------------------------------------------------------------
// Well-known names
// ---------------------------------------------------------------------------------------------

/** The plugin id. */
export const NODE_IPAM_CONTROLLER_ID = 'node-ipam-controller';
/** The event source of the range allocator (Kubernetes' `cidrAllocator`). */
export const CIDR_ALLOCATOR_COMPONENT = 'cidrAllocator';
/** The event reason when the cluster CIDR has no free CIDR left for a Node. */
export const CIDR_NOT_AVAILABLE = 'CIDRNotAvailable';
/** The event reason when the chosen CIDR could not be written to the Node. */
export const CIDR_ASSIGNMENT_FAILED = 'CIDRAssignmentFailed';
/** The largest difference between the node mask size and the cluster prefix (Kubernetes' limit: 2^16 CIDRs). */
export const MAX_CIDR_BITS = 16;

/** The IPv4 CIDR syntax the config accepts (dotted quad, prefix 0-32). */
export const IPV4_CIDR_PATTERN = '^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])/(3[0-2]|[12]?[0-9])$';

// ---------------------------------------------------------------------------------------------
// IPv4 CIDRs
// ---------------------------------------------------------------------------------------------

/** An IPv4 network: its first address (as an unsigned 32-bit number) and prefix length. */
export interface Ipv4Cidr {
  readonly base: number;
  readonly prefix: number;
}

const IPV4_CIDR = new RegExp(IPV4_CIDR_PATTERN);

/** The netmask of `prefix` bits as an unsigned 32-bit number. */
const maskOf = (prefix: number): number => (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);

/**
 * Parses `a.b.c.d/n` into its network (host bits cleared, as Go's `net.ParseCIDR`); `undefined`
 * for anything else (IPv6 included).
 */
export function parseIpv4Cidr(text: string): Ipv4Cidr | undefined {
  if (typeof text !== 'string' || !IPV4_CIDR.test(text)) return undefined;
  const [ip, bits] = text.split('/') as [string, string];
  const address = ip.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
  const prefix = Number(bits);
  return { base: (address & maskOf(prefix)) >>> 0, prefix };
}

/** `a.b.c.d/n`. */
export function formatIpv4Cidr(cidr: Ipv4Cidr): string {
  const b = cidr.base;
  return `${(b >>> 24) & 255}.${(b >>> 16) & 255}.${(b >>> 8) & 255}.${b & 255}/${cidr.prefix}`;
}

/** The last address of `cidr`. */
const lastOf = (cidr: Ipv4Cidr): number => cidr.base + 2 ** (32 - cidr.prefix) - 1;

/**
 * The pod CIDRs of a Node: `spec.podCIDRs`, or `[spec.podCIDR]` when only that is set (an older
 * writer); empty when it has none.
 */
export function podCIDRsOf(node: KubeObject | undefined): string[] {
  const spec = (node?.spec ?? {}) as Fields;
  const list = Array.isArray(spec.podCIDRs) ? (spec.podCIDRs as unknown[]).filter((c): c is string => typeof c === 'string' && c !== '') : [];
  if (list.length > 0) return list;
  return typeof spec.podCIDR === 'string' && spec.podCIDR !== '' ? [spec.podCIDR] : [];
}

/**
 * The CIDRs of `maskSize` bits a cluster CIDR splits into (Kubernetes' `cidrset.CidrSet`), with a
 * use count per CIDR: {@link CidrSet.occupy} and {@link CidrSet.release} count up and down (two
 * Nodes that claim the same CIDR keep it used until both let go), {@link CidrSet.allocateNext}
 * takes the lowest CIDR nobody uses.
 */
export class CidrSet {
  /** How many CIDRs the cluster CIDR holds. */
  readonly size: number;
  private readonly counts: Uint32Array;
  private used = 0;

  /**
   * @throws {RangeError} when `maskSize` is smaller than the cluster prefix, larger than 32, or
   *   more than {@link MAX_CIDR_BITS} bits larger than the cluster prefix.
   */
  constructor(
    readonly cluster: Ipv4Cidr,
    readonly maskSize: number,
  ) {
    const problem = maskSizeProblem(cluster.prefix, maskSize);
    if (problem) throw new RangeError(problem);
    this.size = 2 ** (maskSize - cluster.prefix);
    this.counts = new Uint32Array(this.size);
  }

  /** How many CIDRs are in use. */
  get usedCount(): number {
    return this.used;
  }

  /** The CIDR at `index` in allocation order. */
  cidrAt(index: number): Ipv4Cidr {
    return { base: this.cluster.base + index * 2 ** (32 - this.maskSize), prefix: this.maskSize };
  }

  /**
   * The indices of the CIDRs `cidr` overlaps (every CIDR it covers, or the one CIDR that contains
   * it); empty when it lies outside the cluster CIDR.
   */
  indicesOf(cidr: Ipv4Cidr): number[] {
    const first = Math.max(cidr.base, this.cluster.base);
    const last = Math.min(lastOf(cidr), lastOf(this.cluster));
    if (first > last) return [];
    const step = 2 ** (32 - this.maskSize);
    const from = Math.floor((first - this.cluster.base) / step);
    const to = Math.floor((last - this.cluster.base) / step);
    return Array.from({ length: to - from + 1 }, (_, i) => from + i);
  }

  /** Marks the CIDRs `cidr` overlaps as used; false (nothing changed) when it lies outside the cluster CIDR. */
  occupy(cidr: Ipv4Cidr): boolean {
    const indices = this.indicesOf(cidr);
    for (const i of indices) if (this.counts[i]!++ === 0) this.used++;
    return indices.length > 0;
  }

  /** Undoes one {@link CidrSet.occupy} of `cidr` (or one allocation of it). */
  release(cidr: Ipv4Cidr): void {
    for (const i of this.indicesOf(cidr)) {
      if (this.counts[i] === 0) continue;
      if (--this.counts[i]! === 0) this.used--;
    }
  }

  /** True when no Node uses the CIDR at `index`. */
  isFree(index: number): boolean {
    return this.counts[index] === 0;
  }

  /** Takes the lowest free CIDR; `undefined` when the range is full. */
  allocateNext(): Ipv4Cidr | undefined {
    const index = this.counts.indexOf(0);
    if (index < 0) return undefined;
    this.counts[index] = 1;
    this.used++;
    return this.cidrAt(index);
  }
}

/** Why `maskSize` cannot split a cluster CIDR of `clusterPrefix` bits; `undefined` when it can. */
function maskSizeProblem(clusterPrefix: number, maskSize: number): string | undefined {
  if (!Number.isInteger(maskSize) || maskSize > 32) return `the node CIDR mask size must be an integer up to 32, not ${maskSize}`;
  if (maskSize < clusterPrefix) return `the node CIDR mask size (${maskSize}) must not be smaller than the cluster CIDR's prefix (/${clusterPrefix})`;
  if (maskSize - clusterPrefix > MAX_CIDR_BITS) return `the node CIDR mask size (${maskSize}) may be at most ${MAX_CIDR_BITS} bits larger than the cluster CIDR's prefix (/${clusterPrefix})`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/** The plugin's configuration (kube-controller-manager's flags of the same meaning). */
export interface NodeIpamConfig {
  /** `--cluster-cidr`: the IPv4 range pod CIDRs come from (default `10.244.0.0/16`). */
  readonly clusterCIDR: string;
  /** `--node-cidr-mask-size`: the prefix length of each Node's pod CIDR (default 24). */
  readonly nodeCIDRMaskSize: number;
  /** `--service-cluster-ip-range`: never handed out where it overlaps the cluster CIDR. */
  readonly serviceCIDR?: string;
  readonly leaderElection: LeaderElectionConfig;
}

/** The JSON Schema of {@link NodeIpamConfig}. */
export const NODE_IPAM_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    clusterCIDR: { type: 'string', pattern: IPV4_CIDR_PATTERN, default: '10.244.0.0/16', description: 'IPv4 range the Nodes\' pod CIDRs are allocated from (--cluster-cidr).' },
    nodeCIDRMaskSize: { type: 'integer', minimum: 1, maximum: 32, default: 24, description: 'Prefix length of each Node\'s pod CIDR (--node-cidr-mask-size); at least the cluster CIDR\'s, at most 16 more.' },
    serviceCIDR: { type: 'string', pattern: IPV4_CIDR_PATTERN, description: 'The Service ClusterIP range (--service-cluster-ip-range), excluded where it overlaps the cluster CIDR.' },
    leaderElection: LEADER_ELECTION_SCHEMA,
  },
} as const;

/** A config field at fault and why (what the schema cannot say: relations between fields). */
export interface NodeIpamConfigProblem {
  readonly field: 'clusterCIDR' | 'nodeCIDRMaskSize' | 'serviceCIDR';
  readonly reason: string;
}

/**
 * Checks what the schema cannot: the fields parse, and the mask size fits the cluster CIDR.
 * Returns the first problem, or `undefined`.
 */
export function nodeIpamConfigProblem(config: Pick<NodeIpamConfig, 'clusterCIDR' | 'nodeCIDRMaskSize' | 'serviceCIDR'>): NodeIpamConfigProblem | undefined {
  const cluster = parseIpv4Cidr(config.clusterCIDR);
  if (!cluster) return { field: 'clusterCIDR', reason: `not an IPv4 CIDR: ${JSON.stringify(config.clusterCIDR)}` };
  const mask = maskSizeProblem(cluster.prefix, config.nodeCIDRMaskSize);
  if (mask) return { field: 'nodeCIDRMaskSize', reason: mask };
  if (config.serviceCIDR !== undefined && !parseIpv4Cidr(config.serviceCIDR)) return { field: 'serviceCIDR', reason: `not an IPv4 CIDR: ${JSON.stringify(config.serviceCIDR)}` };
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The range allocator
// ---------------------------------------------------------------------------------------------

const nodePath = (name: string): string => `/api/v1/nodes/${encodeURIComponent(name)}`;

/** The object node events refer to: Kubernetes gives node events `uid` = the node's name. */
const nodeRef = (name: string): KubeObject => ({ apiVersion: 'v1', kind: 'Node', metadata: { name, uid: name } });

/** What a {@link RangeAllocator} works with. */
export interface RangeAllocatorOptions {
  readonly api: Pick<ApiClient, 'get' | 'patch'>;
  readonly nodes: Pick<Informer, 'get' | 'list'>;
  readonly clusterCIDR: Ipv4Cidr;
  readonly nodeCIDRMaskSize: number;
  readonly serviceCIDR?: Ipv4Cidr;
  readonly logger: Logger;
  readonly recorder?: Pick<EventRecorder, 'event'>;
  readonly metrics?: Metrics;
  /** Called with the names of Nodes waiting for a CIDR when one is released (to queue them again). */
  readonly onRelease?: (waiting: readonly string[]) => void;
}

/**
 * Kubernetes' `RangeAllocator` as a {@link Reconciler} of Node names. Build it, call
 * {@link RangeAllocator.occupyExisting} once with the synced Node cache, then reconcile Nodes.
 * Keeps, per Node name, the CIDRs it counts as used for it: the Node's own, or the one reserved
 * for it while the patch is under way (kept across retries, released when the Node goes away).
 */
export class RangeAllocator implements Reconciler {
  /** The CIDRs of the cluster CIDR and their use. */
  readonly cidrs: CidrSet;
  private readonly held = new Map<string, { readonly texts: string; readonly cidrs: readonly Ipv4Cidr[] }>();
  private readonly waiting = new Set<string>();
  private readonly allocations?: ReturnType<Metrics['counter']>;
  private readonly releases?: ReturnType<Metrics['counter']>;
  private readonly usage?: ReturnType<Metrics['gauge']>;
  private readonly clusterText: string;

  /** @throws {RangeError} when the mask size does not fit the cluster CIDR. */
  constructor(private readonly options: RangeAllocatorOptions) {
    this.cidrs = new CidrSet(options.clusterCIDR, options.nodeCIDRMaskSize);
    this.clusterText = formatIpv4Cidr(options.clusterCIDR);
    if (options.serviceCIDR && this.cidrs.occupy(options.serviceCIDR)) {
      options.logger.info({ serviceCIDR: formatIpv4Cidr(options.serviceCIDR), clusterCIDR: this.clusterText }, 'the service CIDR overlaps the cluster CIDR: its part is never handed out');
    }
    if (options.metrics) {
      this.allocations = options.metrics.counter({ name: 'cidrset_cidrs_allocations_total', help: 'Counter measuring total number of CIDR allocations.', labelNames: ['clusterCIDR'] });
      this.releases = options.metrics.counter({ name: 'cidrset_cidrs_releases_total', help: 'Counter measuring total number of CIDR releases.', labelNames: ['clusterCIDR'] });
      this.usage = options.metrics.gauge({ name: 'cidrset_usage_cidrs', help: 'Gauge measuring percentage of allocated CIDRs.', labelNames: ['clusterCIDR'] });
    }
    this.report();
  }

  /** Marks the CIDRs of every cached Node as used (before anything is allocated). */
  occupyExisting(): void {
    for (const node of this.options.nodes.list()) {
      const cidrs = podCIDRsOf(node);
      if (cidrs.length > 0) this.hold(String(node.metadata?.name), cidrs);
    }
  }

  /** The CIDR texts counted as used for `name` (its own, or its reservation). */
  heldBy(name: string): string[] {
    return (this.held.get(name)?.cidrs ?? []).map(formatIpv4Cidr);
  }

  /** The names of Nodes waiting for a CIDR. */
  get waitingNodes(): string[] {
    return [...this.waiting];
  }

  /**
   * Brings one Node in line: a Node gone releases its CIDR; a Node with pod CIDRs holds them; a
   * Node without gets the lowest free CIDR.
   *
   * @throws when the range is full or the write fails (the controller retries with back-off).
   */
  async reconcile(key: ObjectKey): Promise<void> {
    const name = key.name;
    const node = this.options.nodes.get(name);
    if (!node) {
      this.releaseNode(name);
      return;
    }
    const own = podCIDRsOf(node);
    if (own.length > 0) {
      this.hold(name, own);
      return;
    }
    this.waiting.add(name);
    let cidr = this.held.get(name)?.cidrs[0];
    if (!cidr) {
      cidr = this.cidrs.allocateNext();
      if (!cidr) {
        this.options.recorder?.event(nodeRef(name), 'Normal', CIDR_NOT_AVAILABLE, `Node ${name} status is now: ${CIDR_NOT_AVAILABLE}`);
        throw new Error(`failed to allocate a pod CIDR for node ${name}: no CIDR of /${this.options.nodeCIDRMaskSize} is left in ${this.clusterText}`);
      }
      this.held.set(name, { texts: formatIpv4Cidr(cidr), cidrs: [cidr] });
      this.allocations?.inc({ clusterCIDR: this.clusterText });
      this.report();
    }
    await this.assign(name, cidr);
  }

  /** Writes `cidr` to the Node, unless the live Node already has pod CIDRs (then those count). */
  private async assign(name: string, cidr: Ipv4Cidr): Promise<void> {
    let live: KubeObject;
    try {
      live = await this.options.api.get(nodePath(name));
    } catch (err) {
      if (isNotFound(err)) return this.releaseNode(name);
      throw err;
    }
    const own = podCIDRsOf(live);
    if (own.length > 0) {
      // The cache was behind: the Node has its CIDRs already (ours, or somebody else's).
      this.hold(name, own);
      return;
    }
    const text = formatIpv4Cidr(cidr);
    const meta = (live.metadata ?? {}) as Fields;
    try {
      await this.options.api.patch(nodePath(name), {
        metadata: { resourceVersion: meta.resourceVersion, ...(meta.uid ? { uid: meta.uid } : {}) },
        spec: { podCIDR: text, podCIDRs: [text] },
      });
    } catch (err) {
      if (isNotFound(err)) return this.releaseNode(name);
      if (!isConflict(err)) this.options.recorder?.event(nodeRef(name), 'Normal', CIDR_ASSIGNMENT_FAILED, `Node ${name} status is now: ${CIDR_ASSIGNMENT_FAILED}`);
      // The reservation stays: the retry writes the same CIDR.
      throw err;
    }
    this.waiting.delete(name);
    this.options.logger.info({ node: name, podCIDR: text }, 'allocated a pod CIDR to the node');
  }

  /** Counts `texts` (a Node's pod CIDRs) as used for `name`, releasing what it held before. */
  private hold(name: string, texts: readonly string[]): void {
    this.waiting.delete(name);
    const key = texts.join(',');
    if (this.held.get(name)?.texts === key) return;
    this.releaseNode(name, false);
    const cidrs: Ipv4Cidr[] = [];
    for (const text of texts) {
      const cidr = parseIpv4Cidr(text);
      if (!cidr) continue; // IPv6 (dual-stack) or garbage: not ours to count
      if (this.cidrs.occupy(cidr)) cidrs.push(cidr);
      else this.options.logger.warn({ node: name, podCIDR: text, clusterCIDR: this.clusterText }, 'the node\'s pod CIDR lies outside the cluster CIDR; it occupies nothing');
    }
    this.held.set(name, { texts: key, cidrs });
    this.report();
  }

  /** Lets go of what `name` held; with `wake`, queues the Nodes waiting for a CIDR. */
  private releaseNode(name: string, wake = true): void {
    this.waiting.delete(name);
    const held = this.held.get(name);
    if (!held) return;
    this.held.delete(name);
    for (const cidr of held.cidrs) {
      this.cidrs.release(cidr);
      this.releases?.inc({ clusterCIDR: this.clusterText });
    }
    this.report();
    if (held.cidrs.length > 0) {
      this.options.logger.info({ node: name, podCIDRs: held.cidrs.map(formatIpv4Cidr) }, 'released the pod CIDR of a node');
      if (wake && this.waiting.size > 0) this.options.onRelease?.([...this.waiting]);
    }
  }

  private report(): void {
    this.usage?.set({ clusterCIDR: this.clusterText }, this.cidrs.usedCount / this.cidrs.size);
  }
}

// ---------------------------------------------------------------------------------------------
// The plugin
// ---------------------------------------------------------------------------------------------

/** Only events that can change a Node's allocation: adds, deletes, pod CIDR changes, Nodes still without one. */
const concernsAllocation = (node: KubeObject, old?: KubeObject): boolean =>
  old === undefined || old === node || podCIDRsOf(node).length === 0 || podCIDRsOf(node).join(',') !== podCIDRsOf(old).join(',');

/** The node IPAM controller plugin (range allocator, IPv4). */
export const nodeIpamControllerPlugin = definePlugin({
  id: NODE_IPAM_CONTROLLER_ID,
  kind: 'controller',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'Node IPAM controller: a pod CIDR of nodeCIDRMaskSize bits from clusterCIDR for every Node (spec.podCIDR and spec.podCIDRs), existing CIDRs respected, freed CIDRs reused, the service range excluded; IPv4 only.',
  configSchema: NODE_IPAM_CONFIG_SCHEMA,
  async start(handle, config: NodeIpamConfig, signal) {
    const problem = nodeIpamConfigProblem(config);
    if (problem) throw new PluginError(NODE_IPAM_CONTROLLER_ID, problem.field, problem.reason);
    const clusterCIDR = parseIpv4Cidr(config.clusterCIDR)!;
    const serviceCIDR = config.serviceCIDR === undefined ? undefined : parseIpv4Cidr(config.serviceCIDR);
    const nodes = handle.api.informer('/api/v1/nodes');
    nodes.run();
    await nodes.waitForSync(signal);
    handle.ready();
    const recorder = new EventRecorder({ api: handle.api, component: CIDR_ALLOCATOR_COMPONENT, logger: handle.logger, signal });
    await runWhileLeading(handle.api, config.leaderElection, handle.logger, signal, async (leading) => {
      const allocator = new RangeAllocator({
        api: handle.api,
        nodes,
        clusterCIDR,
        nodeCIDRMaskSize: config.nodeCIDRMaskSize,
        ...(serviceCIDR ? { serviceCIDR } : {}),
        logger: handle.logger,
        recorder,
        metrics: handle.metrics,
        onRelease: (waiting) => {
          // Called from reconciles only, which run once the controller below exists.
          for (const name of waiting) controller.enqueue({ namespace: '', name });
        },
      });
      // Every CIDR in use is known before the first allocation (a fresh view on every term).
      allocator.occupyExisting();
      const controller = new Controller({ name: 'node-ipam', reconciler: allocator, logger: handle.logger, metrics: handle.metrics });
      controller.watch(nodes, undefined, { predicate: concernsAllocation });
      handle.logger.info({ clusterCIDR: formatIpv4Cidr(clusterCIDR), nodeCIDRMaskSize: config.nodeCIDRMaskSize, cidrs: allocator.cidrs.size, used: allocator.cidrs.usedCount }, 'node IPAM controller allocating pod CIDRs');
      await controller.run(leading);
    });
  },
});
