import { randomInt } from 'node:crypto';
import { NotFoundError, KeyExistsError, type Store } from '../store/index.js';
import { invalid } from './status.js';

/** Parses `a.b.c.d/n` into its first address (as a number) and size. */
export function parseCidr(cidr: string): { base: number; size: number } {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr);
  if (!m || m.slice(1, 5).some((x) => Number(x) > 255) || Number(m[5]) > 30 || Number(m[5]) < 8) throw new Error(`invalid IPv4 service CIDR ${JSON.stringify(cidr)}`);
  const ip = m.slice(1, 5).reduce((acc, x) => acc * 256 + Number(x), 0);
  const bits = Number(m[5]);
  const size = 2 ** (32 - bits);
  return { base: ip - (ip % size), size };
}

export const ipToString = (n: number): string => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');

function ipToNumber(ip: string): number | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
  if (!m || m.slice(1).some((x) => Number(x) > 255)) return undefined;
  return m.slice(1).reduce((acc, x) => acc * 256 + Number(x), 0);
}

interface RangeState {
  readonly range: string;
  readonly allocated: number[];
}

/**
 * Allocates numbers from a range, shared by every API server through one store object
 * (`/registry/ranges/<name>`) updated with compare-and-swap, so racing servers never hand out the
 * same number twice (Kubernetes keeps its RangeAllocation objects in etcd the same way).
 */
export class RangeAllocator {
  private readonly key: string;

  constructor(
    private readonly store: Store,
    name: string,
    private readonly range: string,
    /** Offsets within the range that can be allocated: [first, last]. */
    private readonly first: number,
    private readonly last: number,
  ) {
    this.key = `/registry/ranges/${name}`;
  }

  private async update(change: (allocated: Set<number>) => void): Promise<void> {
    for (;;) {
      try {
        await this.store.guaranteedUpdate(this.key, (current) => {
          const state = current.value as RangeState;
          const set = new Set(state.allocated);
          change(set);
          return { range: this.range, allocated: [...set].sort((a, b) => a - b) };
        });
        return;
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
        try {
          await this.store.create(this.key, { range: this.range, allocated: [] });
        } catch (e) {
          if (!(e instanceof KeyExistsError)) throw e;
        }
      }
    }
  }

  /** The set of allocated offsets now. */
  async allocated(): Promise<Set<number>> {
    const entry = await this.store.get(this.key);
    return new Set(((entry?.value as RangeState | undefined)?.allocated ?? []) as number[]);
  }

  /**
   * Allocates `offset` (or a free one, at random) and returns it; with `dryRun`, only checks.
   * @throws {Error} with `reason` 'taken' or 'full'
   */
  async allocate(offset: number | undefined, dryRun: boolean): Promise<number> {
    if (dryRun) {
      const taken = await this.allocated();
      if (offset !== undefined) {
        if (taken.has(offset)) throw Object.assign(new Error('provided value is already allocated'), { reason: 'taken' });
        return offset;
      }
      for (let o = this.first; o <= this.last; o++) if (!taken.has(o)) return o;
      throw Object.assign(new Error('range is full'), { reason: 'full' });
    }
    let chosen = -1;
    await this.update((set) => {
      if (offset !== undefined) {
        if (set.has(offset)) throw Object.assign(new Error('provided value is already allocated'), { reason: 'taken' });
        chosen = offset;
      } else {
        chosen = -1;
        const span = this.last - this.first + 1;
        for (let i = 0; i < 32 && chosen < 0; i++) {
          const o = this.first + randomInt(span);
          if (!set.has(o)) chosen = o;
        }
        for (let o = this.first; o <= this.last && chosen < 0; o++) if (!set.has(o)) chosen = o;
        if (chosen < 0) throw Object.assign(new Error('range is full'), { reason: 'full' });
      }
      set.add(chosen);
    });
    return chosen;
  }

  /** Releases `offset` (a no-op when it is free). */
  async release(offset: number): Promise<void> {
    await this.update((set) => void set.delete(offset));
  }
}

/** Service ClusterIPs from the service CIDR, and node ports from their range. */
export class ServiceAllocators {
  readonly cidr: { base: number; size: number };
  private readonly ips: RangeAllocator;
  private readonly ports: RangeAllocator;

  constructor(
    store: Store,
    readonly serviceCidr: string,
    readonly nodePortRange: readonly [number, number],
  ) {
    this.cidr = parseCidr(serviceCidr);
    // Offset 0 is the network address and the last the broadcast address; offset 1 is the
    // `kubernetes` service's, allocated like any other by the bootstrap.
    this.ips = new RangeAllocator(store, 'serviceips', serviceCidr, 1, this.cidr.size - 2);
    this.ports = new RangeAllocator(store, 'servicenodeports', `${nodePortRange[0]}-${nodePortRange[1]}`, nodePortRange[0], nodePortRange[1]);
  }

  /** The first usable address: the `kubernetes` service's ClusterIP. */
  get kubernetesServiceIP(): string {
    return ipToString(this.cidr.base + 1);
  }

  async clusterIP(requested: string | undefined, dryRun: boolean): Promise<string> {
    let offset: number | undefined;
    if (requested !== undefined) {
      const n = ipToNumber(requested);
      if (n === undefined || n <= this.cidr.base || n >= this.cidr.base + this.cidr.size - 1) {
        throw invalid('Service', '', '', [{ reason: 'FieldValueInvalid', field: 'spec.clusterIPs', message: `Invalid value: ["${requested}"]: failed to allocate IP ${requested}: the provided IP (${requested}) is not in the valid range. The range of valid IPs is ${this.serviceCidr}` }]);
      }
      offset = n - this.cidr.base;
    }
    try {
      return ipToString(this.cidr.base + (await this.ips.allocate(offset, dryRun)));
    } catch (err) {
      const reason = (err as { reason?: string }).reason;
      if (reason === 'taken') throw invalid('Service', '', '', [{ reason: 'FieldValueInvalid', field: 'spec.clusterIPs', message: `Invalid value: ["${requested}"]: failed to allocate IP ${requested}: provided IP is already allocated` }]);
      if (reason === 'full') throw invalid('Service', '', '', [{ reason: 'FieldValueInvalid', field: 'spec.clusterIPs', message: `Invalid value: []: failed to allocate a serviceIP: range is full` }]);
      throw err;
    }
  }

  async releaseClusterIP(ip: string): Promise<void> {
    const n = ipToNumber(ip);
    if (n !== undefined && n > this.cidr.base && n < this.cidr.base + this.cidr.size) await this.ips.release(n - this.cidr.base);
  }

  async nodePort(requested: number | undefined, dryRun: boolean): Promise<number> {
    if (requested !== undefined && (requested < this.nodePortRange[0] || requested > this.nodePortRange[1])) {
      throw invalid('Service', '', '', [{ reason: 'FieldValueInvalid', field: 'spec.ports[0].nodePort', message: `Invalid value: ${requested}: provided port is not in the valid range. The range of valid ports is ${this.nodePortRange[0]}-${this.nodePortRange[1]}` }]);
    }
    try {
      return await this.ports.allocate(requested, dryRun);
    } catch (err) {
      const reason = (err as { reason?: string }).reason;
      if (reason === 'taken') throw invalid('Service', '', '', [{ reason: 'FieldValueInvalid', field: 'spec.ports[0].nodePort', message: `Invalid value: ${requested}: provided port is already allocated` }]);
      if (reason === 'full') throw invalid('Service', '', '', [{ reason: 'FieldValueInvalid', field: 'spec.ports[0].nodePort', message: 'Invalid value: 0: failed to allocate a nodePort: range is full' }]);
      throw err;
    }
  }

  async releaseNodePort(port: number): Promise<void> {
    await this.ports.release(port);
  }
}
