import { expect } from 'chai';
import { Snapshot, type KubeObject } from '@kubernel/sdk';
import { describeSchedulerPluginContract, runPluginOnSnapshot, testFrameworkHandle, testNode, testPod } from '@kubernel/sdk/testing';
import { nodePortsFactory, nodePortsPlugin } from './node-ports.js';

type Port = { hostPort?: number; containerPort?: number; protocol?: string; hostIP?: string };

function withPorts(name: string, ports: Port[], nodeName?: string): KubeObject {
  return testPod(name, { ...(nodeName ? { nodeName } : {}), spec: { containers: [{ name: 'c', image: 'busybox', ports: ports.map((p) => ({ containerPort: p.containerPort ?? 80, ...p })) }] } });
}

async function run(pod: KubeObject, existing: KubeObject[]) {
  const snapshot = Snapshot.of([testNode('n')], existing);
  const plugin = await nodePortsFactory.create(undefined, testFrameworkHandle(snapshot));
  return runPluginOnSnapshot(plugin, pod, snapshot);
}

describe('NodePorts', () => {
  it('skips a pod without host ports (container ports alone do not count)', async () => {
    const r = await run(withPorts('p', [{ containerPort: 8080 }]), [withPorts('e', [{ hostPort: 8080 }], 'n')]);
    expect(r.preFilter?.code).to.equal('Skip');
    expect(r.feasible).to.deep.equal(['n']);
    expect(r.filter.size).to.equal(0);
  });

  const cases: Array<{ name: string; want: Port[]; used: Port[]; fits: boolean }> = [
    { name: 'free node', want: [{ hostPort: 8080 }], used: [], fits: true },
    { name: 'same port, protocol and IP', want: [{ hostPort: 8080 }], used: [{ hostPort: 8080 }], fits: false },
    { name: 'another port', want: [{ hostPort: 8080 }], used: [{ hostPort: 8081 }], fits: true },
    { name: 'another protocol', want: [{ hostPort: 53, protocol: 'UDP' }], used: [{ hostPort: 53, protocol: 'TCP' }], fits: true },
    { name: 'TCP is the default protocol', want: [{ hostPort: 53, protocol: 'TCP' }], used: [{ hostPort: 53 }], fits: false },
    { name: 'two different specific IPs', want: [{ hostPort: 80, hostIP: '10.0.0.1' }], used: [{ hostPort: 80, hostIP: '10.0.0.2' }], fits: true },
    { name: 'a specific IP against 0.0.0.0 in use', want: [{ hostPort: 80, hostIP: '10.0.0.1' }], used: [{ hostPort: 80 }], fits: false },
    { name: '0.0.0.0 against a specific IP in use', want: [{ hostPort: 80 }], used: [{ hostPort: 80, hostIP: '10.0.0.2' }], fits: false },
    { name: 'one conflicting port among several', want: [{ hostPort: 1 }, { hostPort: 2 }], used: [{ hostPort: 2 }], fits: false },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const r = await run(withPorts('p', c.want), c.used.length ? [withPorts('e', c.used, 'n')] : []);
      if (c.fits) expect(r.feasible).to.deep.equal(['n']);
      else {
        expect(r.feasible).to.deep.equal([]);
        expect(r.filter.get('n')?.code).to.equal('Unschedulable');
        expect(r.filter.get('n')?.reasons).to.deep.equal(["node(s) didn't have free ports for the requested pod ports"]);
      }
    });
  }

  it('counts host ports of sidecar (restartable init) containers', async () => {
    const pod = testPod('p', { spec: { initContainers: [{ name: 's', image: 'x', restartPolicy: 'Always', ports: [{ containerPort: 9, hostPort: 9000 }] }] } });
    const r = await run(pod, [withPorts('e', [{ hostPort: 9000 }], 'n')]);
    expect(r.feasible).to.deep.equal([]);
  });

  it('queues the pod when a scheduled pod using a conflicting host port is deleted', async () => {
    const plugin = await nodePortsFactory.create(undefined, testFrameworkHandle(Snapshot.of([])));
    const [podDelete, nodeChange] = plugin.eventsToRegister!();
    expect(podDelete!.event).to.deep.equal({ resource: 'Pod', actions: ['Delete'] });
    expect(nodeChange!.event).to.deep.equal({ resource: 'Node', actions: ['Add', 'Update'] });
    const pod = withPorts('p', [{ hostPort: 8080 }]);
    expect(podDelete!.hint!(pod, withPorts('e', [{ hostPort: 8080 }], 'n'), undefined)).to.equal('Queue');
    expect(podDelete!.hint!(pod, withPorts('e', [{ hostPort: 9090 }], 'n'), undefined)).to.equal('QueueSkip');
    expect(podDelete!.hint!(pod, withPorts('e', [{ hostPort: 8080 }]), undefined)).to.equal('QueueSkip');
  });
});

describeSchedulerPluginContract(nodePortsPlugin, {
  scenarios: [
    {
      name: 'a node with the host port in use is filtered out',
      nodes: [testNode('a'), testNode('b')],
      pods: [withPorts('web-1', [{ hostPort: 80 }], 'a')],
      pod: withPorts('web-2', [{ hostPort: 80 }]),
      feasible: ['b'],
    },
  ],
});
