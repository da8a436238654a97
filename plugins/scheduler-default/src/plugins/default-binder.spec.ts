import { expect } from 'chai';
import { type ApiClient, ApiStatusError, CycleState, Snapshot, type KubeObject } from '@kubernel/sdk';
import { describeSchedulerPluginContract, testFrameworkHandle, testPod } from '@kubernel/sdk/testing';
import { defaultBinderFactory, defaultBinderPlugin } from './default-binder.js';

describeSchedulerPluginContract(defaultBinderPlugin);

describe('DefaultBinder', () => {
  const calls: Array<{ path: string; body: KubeObject }> = [];
  let fail: Error | undefined;
  const api = { create: async (path: string, body: KubeObject) => {
    calls.push({ path, body });
    if (fail) throw fail;
    return {};
  } } as unknown as ApiClient;

  it('binds through pods/binding, naming the node and the pod\'s uid (a precondition)', async () => {
    const plugin = await defaultBinderFactory.create(undefined, testFrameworkHandle(Snapshot.of([]), { api }));
    const pod = testPod('web-1', { namespace: 'shop', uid: 'u-123' });
    expect(await plugin.bind!(new CycleState(), pod, 'node-7')).to.equal(undefined);
    expect(calls.at(-1)).to.deep.equal({
      path: '/api/v1/namespaces/shop/pods/web-1/binding',
      body: { apiVersion: 'v1', kind: 'Binding', metadata: { name: 'web-1', namespace: 'shop', uid: 'u-123' }, target: { apiVersion: 'v1', kind: 'Node', name: 'node-7' } },
    });
  });

  it('returns an Error status when the API refuses (e.g. the pod is already bound)', async () => {
    fail = new ApiStatusError(409, 'Conflict', 'pod web-1 is already assigned to node "node-1"');
    const plugin = await defaultBinderFactory.create(undefined, testFrameworkHandle(Snapshot.of([]), { api }));
    const s = await plugin.bind!(new CycleState(), testPod('web-1'), 'node-7');
    expect(s?.code).to.equal('Error');
    expect(s?.message()).to.contain('already assigned');
    fail = undefined;
  });
});
