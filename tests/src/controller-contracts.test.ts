import { join } from 'node:path';
import { ApiClient, isAlreadyExists, type KubeObject } from '@kubernel/sdk';
import { describeControllerContract } from '@kubernel/sdk/testing';
import { replicaSetControllerPlugin, replicationControllerPlugin, rootCaPublisherPlugin, serviceAccountControllerPlugin } from '@kubernel/plugin-controllers';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { FIXTURES } from './helpers/paths.js';

/*
 * The published controller contract suite, run against every in-repo controller plugin, each on
 * its own API client to one shared live cluster (client certificates only: nothing else writes).
 */
describe('controller plugins pass the published controller contract suite', function () {
  this.timeout(120_000);
  let c: TestCluster;
  const api = (): ApiClient => new ApiClient({ server: c.url, ca: c.tls.ca, cert: c.tls.cert!, key: c.tls.key! });
  const ensure = async (client: ApiClient, path: string, o: KubeObject): Promise<void> => {
    try {
      await client.create(path, o);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
  };

  before(async () => {
    c = await startCluster(['--distribution', join(FIXTURES, 'distributions', 'authn-only.yaml')]);
  });
  after(async () => {
    await c?.stop();
  });

  describeControllerContract(serviceAccountControllerPlugin, {
    api,
    scenario: {
      setup: (a) => ensure(a, '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'sa-contract' } }),
      converged: async (a) => (await a.list('/api/v1/namespaces/sa-contract/serviceaccounts')).items.some((s) => s.metadata?.name === 'default'),
      perturb: (a) => a.delete('/api/v1/namespaces/sa-contract/serviceaccounts/default').then(() => undefined),
      watched: ['/api/v1/namespaces/sa-contract/serviceaccounts'],
    },
  });

  describeControllerContract(rootCaPublisherPlugin, {
    api,
    scenario: {
      setup: (a) => ensure(a, '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ca-contract' } }),
      converged: async (a) => {
        const cm = (await a.list('/api/v1/namespaces/ca-contract/configmaps')).items.find((x) => x.metadata?.name === 'kube-root-ca.crt');
        return (cm?.data as Record<string, string> | undefined)?.['ca.crt'] === c.tls.ca;
      },
      perturb: (a) => a.patch('/api/v1/namespaces/ca-contract/configmaps/kube-root-ca.crt', { data: { 'ca.crt': 'tampered' } }).then(() => undefined),
      watched: ['/api/v1/namespaces/ca-contract/configmaps'],
      contended: ['/api/v1/namespaces/ca-contract/configmaps/kube-root-ca.crt'],
    },
  });

  for (const [plugin, path, kind, apiVersion, selector] of [
    [replicaSetControllerPlugin, '/apis/apps/v1/namespaces/rs-contract/replicasets', 'ReplicaSet', 'apps/v1', { matchLabels: { app: 'rs' } }],
    [replicationControllerPlugin, '/api/v1/namespaces/rc-contract/replicationcontrollers', 'ReplicationController', 'v1', { app: 'rc' }],
  ] as const) {
    const ns = path.split('/').at(-2)!;
    const app = kind === 'ReplicaSet' ? 'rs' : 'rc';
    let round = 0;
    const owned = async (a: ApiClient): Promise<KubeObject[]> =>
      (await a.list(`/api/v1/namespaces/${ns}/pods`)).items.filter((p) => !p.metadata?.deletionTimestamp && ((p.metadata?.ownerReferences ?? []) as Array<{ kind: string; controller?: boolean }>).some((r) => r.kind === kind && r.controller));
    describeControllerContract(plugin, {
      api,
      scenario: {
        async setup(a) {
          await ensure(a, '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
          await ensure(a, path, { apiVersion, kind, metadata: { name: 'web' }, spec: { replicas: 3, selector, template: { metadata: { labels: { app } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } } });
        },
        async converged(a) {
          const o = await a.get(`${path}/web`);
          const want = (o.spec as { replicas: number }).replicas;
          const pods = await owned(a);
          const status = (o.status ?? {}) as { replicas?: number; observedGeneration?: number };
          return pods.length === want && status.replicas === want && status.observedGeneration === o.metadata?.generation;
        },
        async perturb(a) {
          // Alternately lose a pod and change the desired count.
          round++;
          if (round % 2 === 1) {
            const [victim] = await owned(a);
            if (victim) await a.delete(`/api/v1/namespaces/${ns}/pods/${victim.metadata?.name}`);
          } else {
            await a.patch(`${path}/web`, { spec: { replicas: round % 4 === 0 ? 3 : 4 } });
          }
        },
        watched: [`/api/v1/namespaces/${ns}/pods`, path],
        contended: [`${path}/web`],
      },
    });
  }
});
