import { expect } from 'chai';
import { CycleState, PodInfo, Snapshot, Status, type ApiClient, type FrameworkPlugin, type SchedulerPluginFactory } from '@kubernel/sdk';
import { createTestHost, testNode, testPod } from '@kubernel/sdk/testing';
import { ProfileFramework, type RuntimeOptions } from './runtime.js';

const factory = (name: string, methods: Partial<FrameworkPlugin>, argsSchema?: Record<string, unknown>): SchedulerPluginFactory => ({
  name,
  ...(argsSchema ? { argsSchema } : {}),
  create: (args) => ({ name, ...methods, ...(args !== undefined ? { args } : {}) }) as FrameworkPlugin,
});

describe('ProfileFramework (one profile\'s plugins, run as Kubernetes runs them)', () => {
  const host = createTestHost();
  after(() => host.dispose());
  const options = (): RuntimeOptions => ({
    api: {} as ApiClient,
    logger: host.logger,
    snapshot: () => Snapshot.of([]),
    nominator: { nominatedPodsForNode: () => [] },
    namespaceLabels: () => ({}),
    event: () => undefined,
    percentageOfNodesToScore: 0,
  });
  const base = new Map<string, SchedulerPluginFactory>([
    ['PrioritySort', factory('PrioritySort', { less: () => true })],
    ['DefaultBinder', factory('DefaultBinder', { bind: async () => undefined })],
  ]);

  it('leaves out default plugins nobody provides (with a warning) but refuses an explicitly enabled missing one', async () => {
    const fw = await ProfileFramework.create({ schedulerName: 'default-scheduler' }, base, options());
    expect(fw.pluginNames('queueSort')).to.deep.equal(['PrioritySort']);
    expect(host.logs.some((l) => /not provided by this distribution are left out: .*NodeResourcesFit/.test(String(l.msg)))).to.equal(true);
    let err: Error | undefined;
    await ProfileFramework.create({ schedulerName: 'x', plugins: { filter: { enabled: [{ name: 'Missing' }] } } }, base, options()).catch((e: Error) => (err = e));
    expect(err?.message).to.equal('profile x: plugin Missing is not provided by any scheduler-plugin of this distribution');
  });

  it('validates each plugin\'s args against its schema, naming the field, and applies defaults', async () => {
    const schema = { type: 'object', additionalProperties: false, properties: { mode: { enum: ['A', 'B'], default: 'A' } } };
    const factories = new Map(base).set('Fit', factory('Fit', { filter: () => undefined }, schema));
    const profile = { schedulerName: 's', plugins: { multiPoint: { enabled: [{ name: 'Fit' }] } } };
    let err: Error | undefined;
    await ProfileFramework.create({ ...profile, pluginConfig: [{ name: 'Fit', args: { mode: 'C' } }] }, factories, options()).catch((e: Error) => (err = e));
    expect(err?.message).to.match(/^profile s: pluginConfig Fit args: args\/mode: must be one of "A", "B"$/);
    await ProfileFramework.create({ ...profile, pluginConfig: [{ name: 'Nope', args: {} }] }, factories, options()).catch((e: Error) => (err = e));
    expect(err?.message).to.equal('profile s: pluginConfig names Nope, which no scheduler-plugin provides');
    const fw = await ProfileFramework.create(profile, factories, options());
    expect(fw.pluginNames('filter')).to.deep.equal(['Fit']);
  });

  it('runs Filter until the first rejection, normalizes and weights scores, and refuses a score outside 0-100', async () => {
    const seen: string[] = [];
    const factories = new Map(base)
      .set('A', factory('A', { filter: (_s, _p, _i, n) => (seen.push(`A:${n.name}`), n.name === 'bad' ? Status.unschedulable('no') : undefined), score: (_s, _p, _i, n) => (n.name === 'n1' ? 10 : 5), normalizeScore: (_s, _p, scores) => (scores.forEach((x) => (x.score *= 10)), undefined) }))
      .set('B', factory('B', { filter: (_s, _p, _i, n) => (seen.push(`B:${n.name}`), undefined), score: () => 50 }))
      .set('Wild', factory('Wild', { score: () => 101 }));
    const fw = await ProfileFramework.create({ schedulerName: 's', plugins: { multiPoint: { enabled: [{ name: 'A', weight: 2 }, { name: 'B', weight: 1 }] } } }, factories, options());
    const snap = Snapshot.of([testNode('n1'), testNode('bad'), testNode('n2')]);
    const pod = testPod('p');
    const pi = new PodInfo(pod);
    const state = new CycleState();
    const bad = fw.runFilterPlugins(state, pod, pi, snap.get('bad')!);
    expect([bad?.code, bad?.plugin, bad?.message()]).to.deep.equal(['Unschedulable', 'A', 'no']);
    expect(seen).to.deep.equal(['A:bad']);
    const { totals, status } = fw.runScore(state, pod, pi, [snap.get('n1')!, snap.get('n2')!]);
    expect(status).to.equal(undefined);
    expect([...totals]).to.deep.equal([100 * 2 + 50, 50 * 2 + 50]);
    const wild = await ProfileFramework.create({ schedulerName: 'w', plugins: { multiPoint: { enabled: [{ name: 'Wild' }] } } }, factories, options());
    expect(wild.runScore(state, pod, pi, [snap.get('n1')!]).status?.message()).to.match(/returns an invalid score 101 for node n1/);
  });

  it('Permit: waits until every waiting plugin allows, or rejects on timeout', async () => {
    const factories = new Map(base).set('Gate', factory('Gate', { permit: () => ({ status: Status.wait(), timeoutMs: 50 }) }));
    const fw = await ProfileFramework.create({ schedulerName: 's', plugins: { multiPoint: { enabled: [{ name: 'Gate' }] } } }, factories, options());
    const pod = testPod('p', { uid: 'u1' });
    const r = fw.runPermit(new CycleState(), pod, 'n1');
    expect([...r.wait!.plugins]).to.deep.equal(['Gate']);
    const allowed = fw.waitOnPermit(pod, r.wait!);
    fw.allowWaitingPod('u1', 'Gate');
    expect(await allowed).to.equal(undefined);
    const timedOut = await fw.waitOnPermit(pod, r.wait!);
    expect(timedOut?.message()).to.equal('rejected due to timeout after waiting 50ms at plugin Gate');
  });
});
