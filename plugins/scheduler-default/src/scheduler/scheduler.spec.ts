import { expect } from 'chai';
import { PodInfo, Status, type ClusterEventWithHint, type KubeObject } from '@kubernel/sdk';
import { testNode, testPod } from '@kubernel/sdk/testing';
import { CacheSnapshot, SchedulerCache } from './cache.js';
import { SchedulingQueue } from './queue.js';
import { fitErrorMessage, nodeUpdateActions, numFeasibleNodesToFind } from './scheduler.js';

const prio = (p: KubeObject): number => Number((p.spec as { priority?: number }).priority ?? 0);

describe('scheduler-default internals', () => {
  describe('numFeasibleNodesToFind', () => {
    it('follows Kubernetes: all below 100 nodes, adaptive percentage (50% - 1% per 125 nodes, min 5%), at least 100', () => {
      expect(numFeasibleNodesToFind(0, 50)).to.equal(50);
      expect(numFeasibleNodesToFind(0, 1000)).to.equal(420); // 50 - 8 = 42%
      expect(numFeasibleNodesToFind(0, 5000)).to.equal(500); // 50 - 40 = 10%
      expect(numFeasibleNodesToFind(0, 10000)).to.equal(500); // floor at 5%
      expect(numFeasibleNodesToFind(0, 150)).to.equal(100); // 49% = 73 -> at least 100
      expect(numFeasibleNodesToFind(100, 5000)).to.equal(5000);
      expect(numFeasibleNodesToFind(30, 5000)).to.equal(1500);
    });
  });

  it('formats the FitError message as Kubernetes: counted reasons, sorted, then the PostFilter message', () => {
    const statuses = new Map([
      ['a', Status.unschedulable('Insufficient cpu')],
      ['b', Status.unschedulable('Insufficient cpu', 'Insufficient memory')],
      ['c', Status.unresolvable('node(s) had untolerated taint {dedicated: gpu}')],
    ]);
    expect(fitErrorMessage(3, statuses, 'preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.')).to.equal(
      '0/3 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.',
    );
  });

  it('refines node updates into the actions plugins register for', () => {
    const a = testNode('n', { labels: { zone: 'a' } });
    const b = { ...a, metadata: { ...a.metadata, labels: { zone: 'b' } }, spec: { taints: [{ key: 'k', effect: 'NoSchedule' }] } };
    expect(nodeUpdateActions(a, b)).to.deep.equal(['UpdateNodeLabel', 'UpdateNodeTaint']);
    expect(nodeUpdateActions(a, a)).to.deep.equal([]);
  });

  describe('SchedulingQueue', () => {
    let now = 1_000_000;
    const events = new Map<string, ClusterEventWithHint[]>([
      ['Fit', [{ event: { resource: 'Node', actions: ['Add', 'UpdateNodeAllocatable'] } }, { event: { resource: 'Pod', actions: ['Delete'] } }]],
      ['Taints', [{ event: { resource: 'Node', actions: ['UpdateNodeTaint'] }, hint: (_p, _o, n) => ((n?.spec as { taints?: unknown[] } | undefined)?.taints?.length ? 'QueueSkip' : 'Queue') }]],
    ]);
    const queue = (gate = (_p: KubeObject): Status | undefined => undefined): SchedulingQueue =>
      new SchedulingQueue({ less: (a, b) => prio(a.podInfo.pod) > prio(b.podInfo.pod) || (prio(a.podInfo.pod) === prio(b.podInfo.pod) && a.timestamp < b.timestamp), preEnqueue: gate, eventsOf: (p) => events.get(p) ?? [], now: () => now });

    it('pops by priority, then age', async () => {
      const q = queue();
      q.add(testPod('low', { priority: 1 }));
      now++;
      q.add(testPod('high', { priority: 10 }));
      now++;
      q.add(testPod('low2', { priority: 1 }));
      const order = [];
      for (let i = 0; i < 3; i++) order.push((await q.pop())!.podInfo.name);
      expect(order).to.deep.equal(['high', 'low', 'low2']);
      q.close();
    });

    it('keeps an unschedulable pod until an event its rejecting plugin registered (and whose hint agrees)', async () => {
      const q = queue();
      q.add(testPod('p'));
      const e = (await q.pop())!;
      q.addUnschedulable(e, q.schedulingCycle, new Set(['Taints']));
      expect(q.counts()).to.deep.include({ active: 0, unschedulable: 1 });
      q.moveOnEvent({ resource: 'Node', action: 'Add' });
      expect(q.counts().unschedulable, 'Taints did not register Node/Add').to.equal(1);
      q.moveOnEvent({ resource: 'Node', action: 'UpdateNodeTaint' }, undefined, testNode('n', { taints: [{ key: 'x', effect: 'NoSchedule' }] }));
      expect(q.counts().unschedulable, 'the hint said QueueSkip').to.equal(1);
      now += 60_000; // back-off over
      q.moveOnEvent({ resource: 'Node', action: 'UpdateNodeTaint' }, undefined, testNode('n'));
      expect(q.counts()).to.deep.include({ active: 1, unschedulable: 0 });
      q.close();
    });

    it('backs off after failures (1 s doubling, max 10 s), and a pod failing while the cluster changed goes to back-off', async () => {
      const q = queue();
      q.add(testPod('p'));
      let e = (await q.pop())!;
      const cycle = q.schedulingCycle;
      q.moveOnEvent({ resource: 'Node', action: 'Add' }); // during its cycle
      q.addUnschedulable(e, cycle, new Set(['Fit']));
      expect(q.counts()).to.deep.include({ backoff: 1, unschedulable: 0 });
      now += 999;
      q.flushBackoff();
      expect(q.counts().backoff).to.equal(1);
      now += 1;
      q.flushBackoff();
      expect(q.counts().active).to.equal(1);
      e = (await q.pop())!;
      expect(e.attempts).to.equal(2);
      q.addUnschedulable(e, q.schedulingCycle, new Set(['Fit']), true);
      expect(e.backoffExpiry - now).to.equal(2_000);
      q.close();
    });

    it('holds gated pods out until the pod itself changes', async () => {
      const gated = (p: KubeObject): Status | undefined => ((p.spec as { schedulingGates?: unknown[] }).schedulingGates?.length ? Status.unresolvable('waiting for scheduling gates') : undefined);
      const q = queue(gated);
      const p = testPod('g', { spec: { schedulingGates: [{ name: 'x' }] } });
      q.add(p);
      expect(q.counts()).to.deep.include({ active: 0, gated: 1 });
      q.moveOnEvent({ resource: '*', action: 'All' });
      expect(q.counts().gated).to.equal(1);
      q.update(p, testPod('g', { spec: { schedulingGates: [] } }));
      expect(q.counts()).to.deep.include({ active: 1, gated: 0 });
      q.close();
    });

    it('resolves a waiting pop with the next pod, and with undefined when closed', async () => {
      const q = queue();
      const waiting = q.pop();
      q.add(testPod('late'));
      expect((await waiting)!.podInfo.name).to.equal('late');
      const pending = q.pop();
      q.close();
      expect(await pending).to.equal(undefined);
    });
  });

  describe('SchedulerCache', () => {
    it('counts assumed pods at once, confirms them from the informer, forgets failed ones', () => {
      const c = new SchedulerCache();
      c.addNode(testNode('a', { cpu: '2' }));
      c.addNode(testNode('b', { cpu: '2' }));
      const snap = new CacheSnapshot();
      c.updateSnapshot(snap);
      expect(snap.list().map((n) => n.name)).to.deep.equal(['a', 'b']);
      const p = testPod('p', { cpu: '1' });
      c.assume(new PodInfo(p), 'a');
      expect(c.isAssumed(p)).to.equal(true);
      c.updateSnapshot(snap);
      expect(snap.get('a')!.requested.milliCPU).to.equal(1000);
      const before = snap.get('b');
      c.addPod({ ...p, spec: { ...(p.spec as object), nodeName: 'a' } });
      expect(c.isAssumed(p)).to.equal(false);
      c.updateSnapshot(snap);
      expect(snap.get('a')!.requested.milliCPU, 'confirmed, counted once').to.equal(1000);
      expect(snap.get('b'), 'unchanged nodes are not copied again').to.equal(before);
      const q = testPod('q', { cpu: '1' });
      c.assume(new PodInfo(q), 'b');
      c.forget(q);
      c.updateSnapshot(snap);
      expect(snap.get('b')!.requested.milliCPU).to.equal(0);
    });

    it('keeps image counts across nodes, and drops removed nodes from the snapshot', () => {
      const c = new SchedulerCache();
      const img = [{ names: ['nginx:1'], sizeBytes: 500 }];
      c.addNode(testNode('a', { images: img }));
      c.addNode(testNode('b', { images: img }));
      const snap = new CacheSnapshot();
      c.updateSnapshot(snap);
      expect(snap.get('a')!.imageStates.get('nginx:1')!.numNodes).to.equal(2);
      c.removeNode(testNode('b'));
      c.updateSnapshot(snap);
      expect(snap.list().map((n) => n.name)).to.deep.equal(['a']);
      expect(snap.get('a')!.imageStates.get('nginx:1')!.numNodes).to.equal(1);
    });
  });
});
