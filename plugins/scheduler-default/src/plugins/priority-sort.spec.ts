import { expect } from 'chai';
import { PodInfo, Snapshot, type QueuedPodInfo } from '@kubernel/sdk';
import { describeSchedulerPluginContract, testFrameworkHandle, testNode, testPod } from '@kubernel/sdk/testing';
import { prioritySortFactory, prioritySortLess, prioritySortPlugin } from './priority-sort.js';

const queued = (name: string, priority: number | undefined, timestamp: number): QueuedPodInfo => ({
  podInfo: new PodInfo(testPod(name, priority === undefined ? {} : { priority })),
  timestamp,
  attempts: 0,
  initialAttemptTimestamp: timestamp,
});

describe('PrioritySort', () => {
  const cases: Array<{ name: string; a: QueuedPodInfo; b: QueuedPodInfo; want: boolean }> = [
    { name: 'higher priority first, even when queued later', a: queued('a', 100, 2000), b: queued('b', 10, 1000), want: true },
    { name: 'lower priority after, even when queued earlier', a: queued('a', 10, 1000), b: queued('b', 100, 2000), want: false },
    { name: 'same priority: earlier timestamp first', a: queued('a', 5, 1000), b: queued('b', 5, 1001), want: true },
    { name: 'same priority: later timestamp after', a: queued('a', 5, 1001), b: queued('b', 5, 1000), want: false },
    { name: 'same priority and timestamp: not less', a: queued('a', 5, 1000), b: queued('b', 5, 1000), want: false },
    { name: 'unset priority counts as 0, above a negative one', a: queued('a', undefined, 2000), b: queued('b', -1, 1000), want: true },
    { name: 'unset priority counts as 0, below a positive one', a: queued('a', undefined, 1000), b: queued('b', 1, 2000), want: false },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(prioritySortLess(c.a, c.b)).to.equal(c.want);
    });
  }

  it('orders a queue by priority, then queue time', async () => {
    const plugin = await prioritySortFactory.create(undefined, testFrameworkHandle(Snapshot.of([])));
    expect(plugin.name).to.equal('PrioritySort');
    const pods = [queued('low-old', 1, 1), queued('high-new', 1000, 50), queued('mid', 10, 5), queued('high-old', 1000, 10), queued('none', undefined, 0)];
    const sorted = [...pods].sort((x, y) => (plugin.less!(x, y) ? -1 : plugin.less!(y, x) ? 1 : 0)).map((p) => p.podInfo.name);
    expect(sorted).to.deep.equal(['high-old', 'high-new', 'mid', 'low-old', 'none']);
  });

  it('implements only QueueSort', async () => {
    const plugin = await prioritySortFactory.create(undefined, testFrameworkHandle(Snapshot.of([])));
    expect(Object.keys(plugin).sort()).to.deep.equal(['less', 'name']);
  });
});

describeSchedulerPluginContract(prioritySortPlugin, {
  scenarios: [{ name: 'QueueSort filters nothing', nodes: [testNode('a'), testNode('b')], pod: testPod('p', { priority: 5 }), feasible: ['a', 'b'] }],
});
