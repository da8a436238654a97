import { expect } from 'chai';
import { QuantityError } from '@kubernel/sdk';
import { tmpdir } from 'node:os';
import { goArch, goOs, machineInfo, nodeConditions, nodeImages, nodeObject, pressureOf, readPressureSignals, type MachineInfo, type V1NodeCondition } from './node-status.js';

const NOW = new Date(Date.UTC(2024, 4, 1, 11, 0, 0));
const NOW_TEXT = '2024-05-01T11:00:00Z';
const EARLIER = '2024-05-01T09:00:00Z';

const info: MachineInfo = {
  cpus: 4,
  memoryBytes: 8029604 * 1024,
  hostname: 'box',
  operatingSystem: 'linux',
  architecture: 'amd64',
  kernelVersion: '6.8.0-31-generic',
  osImage: 'Ubuntu 24.04 LTS',
  machineID: 'f0e1d2c3',
  systemUUID: 'uuid-1',
  bootID: 'boot-1',
};

describe('agent node status', () => {
  describe('machineInfo', () => {
    it('describe this machine with Go names', () => {
      const m = machineInfo();
      expect(m.cpus).to.be.a('number').and.to.be.greaterThan(0);
      expect(m.memoryBytes).to.be.greaterThan(0);
      expect(m.hostname).to.equal(m.hostname.toLowerCase()).and.not.equal('');
      expect(m.operatingSystem).to.equal(goOs(process.platform));
      expect(m.architecture).to.equal(goArch(process.arch));
      expect(m.kernelVersion).to.not.equal('');
      expect(m.osImage).to.not.equal('');
      for (const k of ['machineID', 'systemUUID', 'bootID'] as const) expect(m[k]).to.be.a('string');
    });

    const arches: [string, 'BE' | 'LE', string][] = [
      ['x64', 'LE', 'amd64'],
      ['arm64', 'LE', 'arm64'],
      ['ia32', 'LE', '386'],
      ['ppc64', 'LE', 'ppc64le'],
      ['ppc64', 'BE', 'ppc64'],
      ['s390x', 'BE', 's390x'],
    ];
    for (const [arch, endian, want] of arches) it(`map ${arch} (${endian}) to ${want}`, () => expect(goArch(arch, endian)).to.equal(want));
    it('map platforms to GOOS', () => {
      expect([goOs('linux'), goOs('win32'), goOs('darwin')]).to.deep.equal(['linux', 'windows', 'darwin']);
    });
  });

  describe('nodeObject', () => {
    it('build the registered Node with defaults', () => {
      expect(nodeObject('box', info, { addresses: ['192.168.1.10'], podCIDR: '10.244.1.0/24', containerRuntimeVersion: 'containerd://1.7.13' })).to.deep.equal({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: 'box',
          labels: {
            'beta.kubernetes.io/arch': 'amd64',
            'beta.kubernetes.io/os': 'linux',
            'kubernetes.io/arch': 'amd64',
            'kubernetes.io/hostname': 'box',
            'kubernetes.io/os': 'linux',
          },
        },
        spec: { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24'] },
        status: {
          capacity: { cpu: '4', memory: '8029604Ki', pods: '110' },
          allocatable: { cpu: '4', memory: '8029604Ki', pods: '110' },
          addresses: [{ type: 'InternalIP', address: '192.168.1.10' }, { type: 'Hostname', address: 'box' }],
          daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
          nodeInfo: {
            machineID: 'f0e1d2c3',
            systemUUID: 'uuid-1',
            bootID: 'boot-1',
            kernelVersion: '6.8.0-31-generic',
            osImage: 'Ubuntu 24.04 LTS',
            containerRuntimeVersion: 'containerd://1.7.13',
            kubeletVersion: 'v1.30.0-kubernel',
            kubeProxyVersion: 'v1.30.0-kubernel',
            operatingSystem: 'linux',
            architecture: 'amd64',
          },
        },
      });
    });

    const cases: { name: string; options: Parameters<typeof nodeObject>[2]; capacity: Record<string, string>; allocatable: Record<string, string> }[] = [
      {
        name: 'reserved CPU and memory',
        options: { reserved: { cpu: '100m', memory: '256Mi' } },
        capacity: { cpu: '4', memory: '8029604Ki', pods: '110' },
        allocatable: { cpu: '3900m', memory: '7767460Ki', pods: '110' },
      },
      {
        name: 'ephemeral storage, maxPods and a whole-GiB memory',
        options: { maxPods: 250, ephemeralStorageBytes: 100 * 2 ** 30, reserved: { ephemeralStorage: '10Gi', memory: '1Gi' } },
        capacity: { cpu: '4', memory: '8029604Ki', pods: '250', 'ephemeral-storage': '100Gi' },
        allocatable: { cpu: '4', memory: '6981028Ki', pods: '250', 'ephemeral-storage': '90Gi' },
      },
      {
        name: 'reservations larger than the machine floor at zero',
        options: { reserved: { cpu: '8', memory: '64Gi' } },
        capacity: { cpu: '4', memory: '8029604Ki', pods: '110' },
        allocatable: { cpu: '0', memory: '0', pods: '110' },
      },
    ];
    for (const c of cases) {
      it(`capacity and allocatable: ${c.name}`, () => {
        const node = nodeObject('box', info, c.options);
        expect(node.status.capacity).to.deep.equal(c.capacity);
        expect(node.status.allocatable).to.deep.equal(c.allocatable);
      });
    }

    it('memory that is a whole number of GiB prints as Gi', () => {
      expect(nodeObject('box', { ...info, memoryBytes: 16 * 2 ** 30 }).status.capacity.memory).to.equal('16Gi');
    });

    it('labels, taints, hostname override, dual-stack CIDRs, port', () => {
      const node = nodeObject('node-a', info, {
        hostname: 'Node-A.local',
        labels: { 'node-role.kubernetes.io/worker': '', 'kubernetes.io/os': 'custom' },
        taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }],
        unschedulable: true,
        podCIDR: ['10.244.1.0/24', 'fd00:10:244:1::/64'],
        addresses: ['192.168.1.10', 'fd00::10'],
        kubeletPort: 10251,
      });
      expect(node.metadata.labels).to.deep.equal({
        'beta.kubernetes.io/arch': 'amd64',
        'beta.kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'kubernetes.io/hostname': 'node-a.local',
        'kubernetes.io/os': 'custom',
        'node-role.kubernetes.io/worker': '',
      });
      expect(node.spec).to.deep.equal({
        podCIDR: '10.244.1.0/24',
        podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'],
        taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }, { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }],
        unschedulable: true,
      });
      expect(node.status.addresses).to.deep.equal([
        { type: 'InternalIP', address: '192.168.1.10' },
        { type: 'InternalIP', address: 'fd00::10' },
        { type: 'Hostname', address: 'node-a.local' },
      ]);
      expect(node.status.daemonEndpoints).to.deep.equal({ kubeletEndpoint: { Port: 10251 } });
    });

    it('refuse a reservation that is not a quantity', () => {
      expect(() => nodeObject('box', info, { reserved: { cpu: 'lots' } })).to.throw(QuantityError);
    });

    it('report images largest first, digests then tags, at most 5 names and 50 images', () => {
      const images = [
        { repoTags: ['small:1'], repoDigests: ['small@sha256:1'], size: 10 },
        { repoTags: [], repoDigests: [], size: 999 },
        { repoTags: ['big:1', 'big:2', 'big:3', 'big:4'], repoDigests: ['big@sha256:1', 'big@sha256:2'], size: 500 },
      ];
      expect(nodeImages(images)).to.deep.equal([
        { names: ['big@sha256:1', 'big@sha256:2', 'big:1', 'big:2', 'big:3'], sizeBytes: 500 },
        { names: ['small@sha256:1', 'small:1'], sizeBytes: 10 },
      ]);
      const many = Array.from({ length: 60 }, (_, i) => ({ repoTags: [`i${i}:1`], repoDigests: [], size: i }));
      const got = nodeImages(many);
      expect(got).to.have.length(50);
      expect(got[0]).to.deep.equal({ names: ['i59:1'], sizeBytes: 59 });
      expect(nodeObject('box', info, { images }).status.images).to.deep.equal(nodeImages(images));
    });
  });

  describe('nodeConditions', () => {
    const healthy = { memoryPressure: false, diskPressure: false, pidPressure: false, ready: true };
    const fresh: V1NodeCondition[] = [
      { type: 'MemoryPressure', status: 'False', reason: 'KubeletHasSufficientMemory', message: 'kubelet has sufficient memory available', lastHeartbeatTime: NOW_TEXT, lastTransitionTime: NOW_TEXT },
      { type: 'DiskPressure', status: 'False', reason: 'KubeletHasNoDiskPressure', message: 'kubelet has no disk pressure', lastHeartbeatTime: NOW_TEXT, lastTransitionTime: NOW_TEXT },
      { type: 'PIDPressure', status: 'False', reason: 'KubeletHasSufficientPID', message: 'kubelet has sufficient PID available', lastHeartbeatTime: NOW_TEXT, lastTransitionTime: NOW_TEXT },
      { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', lastHeartbeatTime: NOW_TEXT, lastTransitionTime: NOW_TEXT },
    ];
    const earlier = fresh.map((c) => ({ ...c, lastHeartbeatTime: EARLIER, lastTransitionTime: EARLIER }));

    const cases: { name: string; previous?: V1NodeCondition[]; observed: Parameters<typeof nodeConditions>[1]; want: V1NodeCondition[] }[] = [
      { name: 'a new node, healthy', observed: healthy, want: fresh },
      {
        name: 'unchanged statuses keep their transition time, heartbeat moves',
        previous: earlier,
        observed: healthy,
        want: fresh.map((c) => ({ ...c, lastTransitionTime: EARLIER })),
      },
      {
        name: 'pressure everywhere and not ready',
        previous: earlier,
        observed: { memoryPressure: true, diskPressure: true, pidPressure: true, ready: false, readyMessage: 'container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:cni plugin not initialized' },
        want: [
          { type: 'MemoryPressure', status: 'True', reason: 'KubeletHasInsufficientMemory', message: 'kubelet has insufficient memory available', lastHeartbeatTime: NOW_TEXT, lastTransitionTime: NOW_TEXT },
          { type: 'DiskPressure', status: 'True', reason: 'KubeletHasDiskPressure', message: 'kubelet has disk pressure', lastHeartbeatTime: NOW_TEXT, lastTransitionTime: NOW_TEXT },
          { type: 'PIDPressure', status: 'True', reason: 'KubeletHasInsufficientPID', message: 'kubelet has insufficient PID available', lastHeartbeatTime: NOW_TEXT, lastTransitionTime: NOW_TEXT },
          {
            type: 'Ready', status: 'False', reason: 'KubeletNotReady',
            message: 'container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:cni plugin not initialized',
            lastHeartbeatTime: NOW_TEXT, lastTransitionTime: NOW_TEXT,
          },
        ],
      },
      {
        name: 'conditions the agent does not own are kept in place',
        previous: [{ type: 'NetworkUnavailable', status: 'False', reason: 'RouteCreated', lastTransitionTime: EARLIER }, earlier[3]!],
        observed: healthy,
        want: [
          { type: 'NetworkUnavailable', status: 'False', reason: 'RouteCreated', lastTransitionTime: EARLIER },
          { ...fresh[3]!, lastTransitionTime: EARLIER },
          fresh[0]!,
          fresh[1]!,
          fresh[2]!,
        ],
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        expect(nodeConditions(c.previous, c.observed, NOW)).to.deep.equal(c.want);
      });
    }
  });
});

describe('node pressure signals', () => {
  const ok = { memoryAvailableBytes: 2 ** 30, nodefsAvailableFraction: 0.5, nodefsInodesFreeFraction: 0.5, pidAvailableFraction: 0.9 };
  it('are false with room, and each turns true under its threshold (kubelet default hard eviction thresholds)', () => {
    expect(pressureOf(ok)).to.deep.equal({ memoryPressure: false, diskPressure: false, pidPressure: false });
    expect(pressureOf({ ...ok, memoryAvailableBytes: 99 * 1024 * 1024 }).memoryPressure).to.equal(true);
    expect(pressureOf({ ...ok, memoryAvailableBytes: 100 * 1024 * 1024 }).memoryPressure).to.equal(false);
    expect(pressureOf({ ...ok, nodefsAvailableFraction: 0.09 }).diskPressure).to.equal(true);
    expect(pressureOf({ ...ok, nodefsInodesFreeFraction: 0.04 }).diskPressure).to.equal(true);
    expect(pressureOf({ ...ok, pidAvailableFraction: 0.04 }).pidPressure).to.equal(true);
  });
  it('are read from this machine: fractions within [0, 1], memory in bytes', async () => {
    const s = await readPressureSignals(tmpdir());
    expect(s.memoryAvailableBytes).to.be.greaterThan(0);
    for (const f of [s.nodefsAvailableFraction, s.nodefsInodesFreeFraction, s.pidAvailableFraction]) expect(f).to.be.within(0, 1);
    expect(s.pidAvailableFraction).to.be.lessThan(1);
  });
});
