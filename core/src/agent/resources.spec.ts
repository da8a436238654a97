import { expect } from 'chai';
import {
  containerResources,
  milliCpuToQuota,
  milliCpuToShares,
  oomScoreAdj,
  podCgroupParent,
  podLimits,
  podRequests,
  podResourceConfig,
  qosCgroupName,
  type V1ResourcePod,
} from './resources.js';
import type { V1Container } from './pod-status.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

type Res = { requests?: Record<string, string>; limits?: Record<string, string> };

const ctr = (name: string, resources: Res = {}, restartPolicy?: string): V1Container => ({ name, image: 'busybox', resources, ...(restartPolicy ? { restartPolicy } : {}) });

function pod(containers: V1Container[], extra: Partial<V1ResourcePod['spec']> = {}, initContainers?: V1Container[]): V1ResourcePod {
  return { metadata: { name: 'p', namespace: 'default', uid: 'u-1' }, spec: { containers, ...(initContainers ? { initContainers } : {}), ...extra } };
}

describe('agent/resources', () => {
  it('converts milli-CPU to cpu.shares like MilliCPUToShares (min 2, max 262144)', () => {
    const table: [number, number][] = [
      [0, 2],
      [1, 2],
      [100, 102],
      [250, 256],
      [500, 512],
      [1000, 1024],
      [1500, 1536],
      [300_000, 262_144],
    ];
    for (const [milli, shares] of table) expect(milliCpuToShares(milli), `${milli}m`).to.equal(shares);
  });

  it('converts milli-CPU limits to a CFS quota (0 without a limit, min 1000)', () => {
    expect(milliCpuToQuota(0)).to.equal(0);
    expect(milliCpuToQuota(5)).to.equal(1000);
    expect(milliCpuToQuota(100)).to.equal(10_000);
    expect(milliCpuToQuota(1500)).to.equal(150_000);
    expect(milliCpuToQuota(250, 50_000)).to.equal(12_500);
  });

  describe('containerResources', () => {
    const opts = { nodeMemoryCapacity: 8 * GiB };

    it('BestEffort: minimum shares, no quota, no memory limit, oom 1000', () => {
      const c = ctr('a');
      expect(containerResources(pod([c]), c, opts)).to.deep.equal({ cpuShares: 2, cpuPeriod: 100_000, cpuQuota: 0, oomScoreAdj: 1000 });
    });

    it('Guaranteed: shares and quota from the CPU limit, memory limit, oom -997', () => {
      const c = ctr('a', { limits: { cpu: '500m', memory: '128Mi' } });
      expect(containerResources(pod([c]), c, opts)).to.deep.equal({
        cpuShares: 512,
        cpuPeriod: 100_000,
        cpuQuota: 50_000,
        memoryLimitInBytes: 128 * MiB,
        oomScoreAdj: -997,
      });
    });

    it('Burstable: shares from the request, quota from the limit, oom from the memory request', () => {
      const c = ctr('a', { requests: { cpu: '250m', memory: '1Gi' }, limits: { cpu: '1' } });
      // 1000 - 1000 * 1Gi / 8Gi = 875
      expect(containerResources(pod([c]), c, opts)).to.deep.equal({ cpuShares: 256, cpuPeriod: 100_000, cpuQuota: 100_000, oomScoreAdj: 875 });
    });

    it('a CPU limit without a request gives the shares; no memory request scores 999 (never BestEffort 1000)', () => {
      const a = ctr('a', { limits: { cpu: '2' } });
      const b = ctr('b', { requests: { memory: '64Mi' } });
      expect(containerResources(pod([a, b]), a, opts)).to.deep.equal({ cpuShares: 2048, cpuPeriod: 100_000, cpuQuota: 200_000, oomScoreAdj: 999 });
    });

    it('clamps the Burstable score at 3 for requests at or above capacity', () => {
      const c = ctr('a', { requests: { memory: '8Gi' } });
      expect(containerResources(pod([c]), c, opts).oomScoreAdj).to.equal(3);
      const d = ctr('a', { requests: { memory: '16Gi' } });
      expect(containerResources(pod([d]), d, opts).oomScoreAdj).to.equal(3);
    });

    it('rounds fractional quantities up (Value / MilliValue) and omits the quota when CFS quota is off', () => {
      const c = ctr('a', { requests: { cpu: '0.1' }, limits: { memory: '1000.5' } });
      expect(containerResources(pod([c]), c, { ...opts, cpuCfsQuota: false })).to.deep.equal({ cpuShares: 102, memoryLimitInBytes: 1001, oomScoreAdj: 999 });
    });

    it('gives node-critical pods the Guaranteed score', () => {
      const c = ctr('a', { requests: { memory: '1Gi' } });
      const p = pod([c], { priorityClassName: 'system-node-critical', priority: 2_000_001_000 });
      expect(oomScoreAdj(p, c, 8 * GiB)).to.equal(-997);
      // the class name alone (priority below critical, not static) is not enough
      expect(oomScoreAdj(pod([c], { priorityClassName: 'system-node-critical', priority: 10 }), c, 8 * GiB)).to.equal(875);
    });

    it('never scores a sidecar above the regular container with the smallest memory request', () => {
      const main = ctr('main', { requests: { memory: '1Gi' } });
      const sidecar = ctr('proxy', { requests: { memory: '100Mi' } }, 'Always');
      const p = pod([main], {}, [sidecar]);
      // own: 1000 - 1000*100Mi/2Gi = 952; smallest regular: 1000 - 1000*1Gi/2Gi = 500
      expect(oomScoreAdj(p, sidecar, 2 * GiB)).to.equal(500);
      expect(oomScoreAdj(p, main, 2 * GiB)).to.equal(500);
      const plainInit = ctr('init', { requests: { memory: '100Mi' } });
      expect(oomScoreAdj(pod([main], {}, [plainInit]), plainInit, 2 * GiB)).to.equal(952);
    });
  });

  describe('pod cgroup names', () => {
    it('places each QoS class under its parent, with a configurable root', () => {
      expect(podCgroupParent(pod([ctr('a', { limits: { cpu: '1', memory: '1Gi' } })]))).to.equal('/kubepods/podu-1');
      expect(podCgroupParent(pod([ctr('a', { requests: { cpu: '1' } })]))).to.equal('/kubepods/burstable/podu-1');
      expect(podCgroupParent(pod([ctr('a')]))).to.equal('/kubepods/besteffort/podu-1');
      expect(podCgroupParent(pod([ctr('a')]), 'kubernel-test-x/kubepods/')).to.equal('/kubernel-test-x/kubepods/besteffort/podu-1');
      expect(qosCgroupName('Guaranteed', '/a/b')).to.equal('/a/b');
      expect(() => podCgroupParent({ spec: { containers: [] } })).to.throw(/uid/);
    });
  });

  describe('pod totals and the pod cgroup config', () => {
    it('Guaranteed: sums requests and limits, adds overhead', () => {
      const p = pod([ctr('a', { limits: { cpu: '500m', memory: '128Mi' } }), ctr('b', { limits: { cpu: '250m', memory: '64Mi' } })]);
      expect(podResourceConfig(p)).to.deep.equal({ cpuShares: 768, cpuQuota: 75_000, cpuPeriod: 100_000, memoryLimitInBytes: 192 * MiB });
      const withOverhead = pod(p.spec.containers as V1Container[], { overhead: { cpu: '100m', memory: '32Mi' } });
      // 850m → 870 shares, 85000 quota; 224Mi
      expect(podResourceConfig(withOverhead)).to.deep.equal({ cpuShares: 870, cpuQuota: 85_000, cpuPeriod: 100_000, memoryLimitInBytes: 224 * MiB });
      expect(podResourceConfig(withOverhead, { enforceCpuLimits: false, podPidsLimit: 1024 })).to.deep.equal({
        cpuShares: 870,
        cpuQuota: -1,
        cpuPeriod: 100_000,
        memoryLimitInBytes: 224 * MiB,
        pidsLimit: 1024,
      });
    });

    it('Burstable: the quota only when every container has a CPU limit, memory only when every one has a memory limit', () => {
      const p = pod([ctr('a', { requests: { cpu: '100m' }, limits: { cpu: '200m', memory: '100Mi' } }), ctr('b', { requests: { cpu: '300m' }, limits: { memory: '50Mi' } })]);
      expect(podResourceConfig(p)).to.deep.equal({ cpuShares: 409, memoryLimitInBytes: 150 * MiB });
      const both = pod([ctr('a', { requests: { cpu: '100m' }, limits: { cpu: '200m' } }), ctr('b', { limits: { cpu: '300m', memory: '50Mi' } })]);
      // requests 100m + 300m (defaulted from the limit) = 400m; limits 500m
      expect(podResourceConfig(both)).to.deep.equal({ cpuShares: 409, cpuQuota: 50_000, cpuPeriod: 100_000 });
    });

    it('BestEffort: the minimum shares only', () => {
      expect(podResourceConfig(pod([ctr('a'), ctr('b')]))).to.deep.equal({ cpuShares: 2 });
    });

    it('init containers: the largest init need wins over the sum; sidecars add up before later init containers', () => {
      const big = pod([ctr('a', { requests: { cpu: '500m' } })], {}, [ctr('init', { requests: { cpu: '2' } })]);
      expect(Number(podRequests(big).get('cpu')! / 1_000_000n)).to.equal(2000);
      expect(podResourceConfig(big).cpuShares).to.equal(2048);
      const sidecars = pod([ctr('a', { requests: { cpu: '500m' } })], {}, [ctr('proxy', { requests: { cpu: '200m' } }, 'Always'), ctr('init', { requests: { cpu: '1' } })]);
      // regular + sidecar = 700m; while `init` runs: 200m + 1000m = 1200m
      expect(Number(podRequests(sidecars).get('cpu')! / 1_000_000n)).to.equal(1200);
      expect(podResourceConfig(sidecars).cpuShares).to.equal(1228);
    });

    it('adds overhead to limits only for resources that have a limit', () => {
      const p = pod([ctr('a', { limits: { memory: '100Mi' } })], { overhead: { cpu: '250m', memory: '10Mi' } });
      const limits = podLimits(p);
      expect(limits.has('cpu')).to.equal(false);
      expect(Number(limits.get('memory')! / 1_000_000_000n)).to.equal(110 * MiB);
      expect(Number(podRequests(p).get('cpu')! / 1_000_000n)).to.equal(250);
    });
  });
});
