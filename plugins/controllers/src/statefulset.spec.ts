import { expect } from 'chai';
import type { KubeObject } from '@kubernel/sdk';
import {
  claimName,
  claimOwnersUpToDate,
  completeRollingUpdate,
  countReplicas,
  createsAtCurrentRevision,
  desiredClaimOwnerReferences,
  identityMatches,
  newControllerRevision,
  newStatefulSetPod,
  parseOrdinal,
  persistentVolumeClaimsFor,
  planStatefulSet,
  podName,
  revisionData,
  revisionHash,
  revisionName,
  revisionsToTruncate,
  sameRevisionData,
  staleClaim,
  storageMatches,
  templateOfRevision,
  CONTROLLER_REVISION_HASH_LABEL,
  POD_INDEX_LABEL,
  POD_NAME_LABEL,
  type PlannedAction,
  type PlanInput,
} from './statefulset.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const NOW = Date.parse('2025-01-01T00:10:00Z');
const LONG_AGO = '2025-01-01T00:00:00Z';
const CUR = 'web-aaa';
const UPD = 'web-bbb';

const template = { metadata: { labels: { app: 'web' }, annotations: { a: '1' } }, spec: { containers: [{ name: 'c', image: 'busybox:1' }], volumes: [{ name: 'data', emptyDir: {} }, { name: 'cfg', configMap: { name: 'cfg' } }] } };

function sts(spec: Json = {}, extra: Json = {}): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: 'web', namespace: 'ns', uid: 'set-uid', generation: 1, ...(extra.metadata ?? {}) },
    spec: { replicas: 3, serviceName: 'web-svc', selector: { matchLabels: { app: 'web' } }, template, podManagementPolicy: 'OrderedReady', updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } }, ...spec },
    status: extra.status ?? {},
  };
}

type PodState = 'ready' | 'pending' | 'running' | 'failed' | 'succeeded' | 'terminating' | 'fresh-ready';
function pod(ordinal: number, state: PodState = 'ready', revision = UPD, name = 'web'): KubeObject {
  const phase = { ready: 'Running', 'fresh-ready': 'Running', pending: 'Pending', running: 'Running', failed: 'Failed', succeeded: 'Succeeded', terminating: 'Running' }[state];
  const ready = state === 'ready' || state === 'terminating' || state === 'fresh-ready';
  return {
    metadata: {
      name: `${name}-${ordinal}`,
      namespace: 'ns',
      uid: `pod-${ordinal}-${state}`,
      labels: { app: 'web', [POD_NAME_LABEL]: `${name}-${ordinal}`, [POD_INDEX_LABEL]: String(ordinal), [CONTROLLER_REVISION_HASH_LABEL]: revision },
      ...(state === 'terminating' ? { deletionTimestamp: LONG_AGO } : {}),
    },
    spec: { volumes: [] },
    status: { phase, conditions: ready ? [{ type: 'Ready', status: 'True', lastTransitionTime: state === 'fresh-ready' ? new Date(NOW - 1000).toISOString() : LONG_AGO }] : [] },
  };
}

const plan = (set: KubeObject, pods: KubeObject[], extra: Partial<PlanInput> = {}) => planStatefulSet({ set, pods, currentRevision: CUR, updateRevision: UPD, now: NOW, ...extra });
/** The plan's actions in order, one string each: `create 1@update`, `delete web-2 (scale-down)`, `repair web-0`. */
const describe_ = (steps: ReadonlyArray<readonly PlannedAction[]>): string[][] =>
  steps.map((s) =>
    s.map((a) => {
      if (a.kind === 'create') return `create ${a.ordinal}@${a.revision}`;
      if (a.kind === 'delete') return `delete ${a.pod.metadata?.name} (${a.reason})`;
      return `repair ${a.pod.metadata?.name}${a.identity ? ' identity' : ''}${a.claims ? ' claims' : ''}${a.retention ? ' retention' : ''}`;
    }),
  );

describe('statefulset controller: identity', () => {
  it('parses ordinals from pod names as upstream (the last dash and digits)', () => {
    expect(parseOrdinal('web-0')).to.deep.equal({ parent: 'web', ordinal: 0 });
    expect(parseOrdinal('my-db-12')).to.deep.equal({ parent: 'my-db', ordinal: 12 });
    expect(parseOrdinal('web-1-3')).to.deep.equal({ parent: 'web-1', ordinal: 3 });
    expect(parseOrdinal('web')).to.deep.equal({ parent: '', ordinal: -1 });
    expect(parseOrdinal('web-x1')).to.deep.equal({ parent: '', ordinal: -1 });
    expect(parseOrdinal('web-')).to.deep.equal({ parent: '', ordinal: -1 });
    expect(parseOrdinal('web-99999999999')).to.deep.equal({ parent: 'web', ordinal: -1 });
  });

  it('names pods <set>-<ordinal> and claims <template>-<set>-<ordinal>', () => {
    expect(podName('web', 4)).to.equal('web-4');
    expect(claimName('data', 'web', 4)).to.equal('data-web-4');
  });

  it('builds a pod with its identity, revision label, hostname, subdomain and claim volumes', () => {
    const set = sts({ volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }] });
    const p = newStatefulSetPod(set, template, 2, UPD);
    expect(p.metadata?.name).to.equal('web-2');
    expect(p.metadata?.labels).to.deep.equal({ app: 'web', [POD_NAME_LABEL]: 'web-2', [POD_INDEX_LABEL]: '2', [CONTROLLER_REVISION_HASH_LABEL]: UPD });
    expect(p.metadata?.annotations).to.deep.equal({ a: '1' });
    expect((p.metadata as Json).ownerReferences).to.deep.equal([{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'web', uid: 'set-uid', controller: true, blockOwnerDeletion: true }]);
    const spec = p.spec as Json;
    expect([spec.hostname, spec.subdomain]).to.deep.equal(['web-2', 'web-svc']);
    // The claim volume replaces the template's volume of the same name; other volumes stay.
    expect(spec.volumes).to.deep.equal([{ name: 'data', persistentVolumeClaim: { claimName: 'data-web-2' } }, { name: 'cfg', configMap: { name: 'cfg' } }]);
    expect(identityMatches(set, p)).to.equal(true);
    expect(storageMatches(set, p)).to.equal(true);
    expect(storageMatches(set, { ...p, spec: { volumes: [] } })).to.equal(false);
    expect(identityMatches(set, { ...p, metadata: { ...p.metadata, labels: {} } })).to.equal(false);
    expect((template.spec.volumes[0] as Json).emptyDir, 'the template is not mutated').to.deep.equal({});
  });

  it('builds claims from the templates, labelled with the selector', () => {
    const set = sts({ volumeClaimTemplates: [{ metadata: { name: 'data', labels: { tier: 'db' } }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } }, status: { phase: 'Bound' } }, { metadata: { name: 'logs' }, spec: {} }] });
    const claims = persistentVolumeClaimsFor(set, 1);
    expect(claims.map((c) => [c.metadata?.name, c.metadata?.namespace, c.metadata?.labels])).to.deep.equal([
      ['data-web-1', 'ns', { tier: 'db', app: 'web' }],
      ['logs-web-1', 'ns', { app: 'web' }],
    ]);
    expect(claims[0]).to.not.have.property('status');
  });
});

describe('statefulset controller: OrderedReady', () => {
  it('creates ordinal 0 first, and nothing else', () => {
    const p = plan(sts(), []);
    expect(describe_(p.steps)).to.deep.equal([['create 0@update']]);
    expect(p.reason).to.equal('creating web-0');
  });

  it('does not create pod 1 before pod 0 is Running and Ready', () => {
    expect(describe_(plan(sts(), [pod(0, 'pending')]).steps)).to.deep.equal([]);
    expect(plan(sts(), [pod(0, 'pending')]).reason).to.equal('waiting for web-0 to be Running and Ready');
    expect(describe_(plan(sts(), [pod(0, 'running')]).steps)).to.deep.equal([]);
    expect(describe_(plan(sts(), [pod(0)]).steps)).to.deep.equal([['create 1@update']]);
    expect(describe_(plan(sts(), [pod(0), pod(1)]).steps)).to.deep.equal([['create 2@update']]);
  });

  it('waits for minReadySeconds before the next ordinal', () => {
    const set = sts({ minReadySeconds: 10 });
    expect(plan(set, [pod(0, 'fresh-ready')]).reason).to.match(/^waiting for web-0 to be available/);
    expect(describe_(plan(set, [pod(0)]).steps)).to.deep.equal([['create 1@update']]);
  });

  it('fills a gap in the middle before anything above it', () => {
    expect(describe_(plan(sts(), [pod(0), pod(2)]).steps)).to.deep.equal([['create 1@update']]);
  });

  it('deletes a failed (or succeeded) pod, to recreate it on the next sync, and waits', () => {
    const p = plan(sts(), [pod(0), pod(1, 'failed'), pod(2)]);
    expect(describe_(p.steps)).to.deep.equal([['delete web-1 (failed)']]);
    expect(describe_(plan(sts(), [pod(0, 'succeeded')]).steps)).to.deep.equal([['delete web-0 (failed)']]);
  });

  it('waits for a terminating pod to go before going on', () => {
    const p = plan(sts(), [pod(0, 'terminating'), pod(1)]);
    expect(describe_(p.steps)).to.deep.equal([]);
    expect(p.reason).to.equal('waiting for web-0 to terminate');
  });

  it('honours spec.ordinals.start', () => {
    const set = sts({ ordinals: { start: 5 }, replicas: 2 });
    expect(describe_(plan(set, []).steps)).to.deep.equal([['create 5@update']]);
    expect(describe_(plan(set, [pod(5)]).steps)).to.deep.equal([['create 6@update']]);
    // Pods below start are condemned, like those above the end.
    expect(describe_(plan(set, [pod(0), pod(5), pod(6)]).steps)).to.deep.equal([['delete web-0 (scale-down)']]);
  });

  it('scales down from the highest ordinal, one pod per sync', () => {
    const set = sts({ replicas: 1 });
    expect(describe_(plan(set, [pod(0), pod(1), pod(2)]).steps)).to.deep.equal([['delete web-2 (scale-down)']]);
    expect(describe_(plan(set, [pod(0), pod(1)]).steps)).to.deep.equal([['delete web-1 (scale-down)']]);
    expect(describe_(plan(set, [pod(0), pod(1), pod(2, 'terminating')]).steps)).to.deep.equal([]);
    expect(describe_(plan(sts({ replicas: 0 }), [pod(0)]).steps)).to.deep.equal([['delete web-0 (scale-down)']]);
  });

  it('does not scale down while a remaining replica is unhealthy', () => {
    expect(describe_(plan(sts({ replicas: 1 }), [pod(0, 'pending'), pod(1)]).steps)).to.deep.equal([]);
  });

  it('deletes an unhealthy condemned pod only when it is the first unhealthy one', () => {
    const set = sts({ replicas: 1 });
    // web-1 is unhealthy and the lowest unhealthy: web-2 (healthy) goes first, then web-1.
    expect(describe_(plan(set, [pod(0), pod(1, 'pending'), pod(2)]).steps)).to.deep.equal([['delete web-2 (scale-down)']]);
    expect(describe_(plan(set, [pod(0), pod(1, 'pending')]).steps)).to.deep.equal([['delete web-1 (scale-down)']]);
    // web-2 unhealthy but web-1 is the first unhealthy: wait for web-2 (as upstream).
    expect(describe_(plan(set, [pod(0), pod(1, 'pending'), pod(2, 'pending')]).steps)).to.deep.equal([]);
  });

  it('repairs a pod whose identity label is missing, without stopping', () => {
    const bare = pod(0);
    delete (bare.metadata?.labels as Json)[POD_NAME_LABEL];
    expect(describe_(plan(sts(), [bare]).steps)).to.deep.equal([['repair web-0 identity'], ['create 1@update']]);
  });

  it('creates the missing claims of a pending pod, then waits for it', () => {
    const set = sts({ volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: {} }] });
    const p0 = { ...pod(0, 'pending'), spec: { volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data-web-0' } }] } };
    expect(describe_(plan(set, [p0]).steps)).to.deep.equal([['repair web-0 claims']]);
    const claim: KubeObject = { metadata: { name: 'data-web-0', namespace: 'ns', uid: 'c0' } };
    expect(describe_(plan(set, [p0], { claims: (n) => (n === 'data-web-0' ? claim : undefined) }).steps)).to.deep.equal([]);
  });

  it('does nothing once converged', () => {
    const p = plan(sts(), [pod(0), pod(1), pod(2)]);
    expect(p.steps).to.deep.equal([]);
    expect(p.reason).to.equal(undefined);
  });

  it('does nothing but count for a set being deleted', () => {
    const p = plan(sts({}, { metadata: { deletionTimestamp: LONG_AGO } }), [pod(0, 'failed')]);
    expect(p.steps).to.deep.equal([]);
    expect(p.status.replicas).to.equal(1);
  });
});

describe('statefulset controller: Parallel', () => {
  const parallel = (spec: Json = {}) => sts({ podManagementPolicy: 'Parallel', ...spec });

  it('creates every missing pod at once, without waiting for readiness', () => {
    const p = plan(parallel(), [pod(1, 'pending')]);
    expect(p.monotonic).to.equal(false);
    expect(describe_(p.steps)).to.deep.equal([['create 0@update', 'create 2@update']]);
  });

  it('deletes every condemned pod at once, even unhealthy ones', () => {
    expect(describe_(plan(parallel({ replicas: 1 }), [pod(0, 'pending'), pod(1), pod(2, 'pending'), pod(3, 'terminating')]).steps)).to.deep.equal([['delete web-2 (scale-down)', 'delete web-1 (scale-down)']]);
  });

  it('recreates failed pods while creating missing ones', () => {
    expect(describe_(plan(parallel(), [pod(0, 'failed'), pod(2)]).steps)).to.deep.equal([['delete web-0 (failed)', 'create 1@update']]);
  });

  it('still updates one pod at a time from the top', () => {
    expect(describe_(plan(parallel(), [pod(0, 'ready', CUR), pod(1, 'ready', CUR), pod(2, 'ready', CUR)]).steps)).to.deep.equal([['delete web-2 (update)']]);
  });
});

describe('statefulset controller: rolling update and partition', () => {
  const old = (n: number, state: PodState = 'ready'): KubeObject => pod(n, state, CUR);

  it('deletes the highest ordinal not at the update revision, one per sync', () => {
    const p = plan(sts(), [old(0), old(1), old(2)]);
    expect(describe_(p.steps)).to.deep.equal([['delete web-2 (update)']]);
    expect(p.status.currentReplicas).to.equal(2);
    expect(describe_(plan(sts(), [old(0), old(1), pod(2)]).steps)).to.deep.equal([['delete web-1 (update)']]);
    expect(describe_(plan(sts(), [old(0), pod(1), pod(2)]).steps)).to.deep.equal([['delete web-0 (update)']]);
  });

  it('waits for the updated pod to be Running and Ready before the next one', () => {
    const p = plan(sts(), [old(0), old(1), pod(2, 'pending')]);
    expect(describe_(p.steps)).to.deep.equal([]);
    expect(p.reason).to.equal('waiting for web-2 to be Running and Ready');
    expect(describe_(plan(sts({ podManagementPolicy: 'Parallel' }), [old(0), old(1), pod(2, 'pending')]).steps)).to.deep.equal([]);
  });

  it('stops at the partition', () => {
    const set = sts({ updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 2 } } });
    expect(describe_(plan(set, [old(0), old(1), old(2)]).steps)).to.deep.equal([['delete web-2 (update)']]);
    expect(plan(set, [old(0), old(1), pod(2)]).steps).to.deep.equal([]);
    expect(plan(sts({ updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 5 } } }), [old(0), old(1), old(2)]).steps).to.deep.equal([]);
  });

  it('recreates pods below the partition at the current revision, the others at the update revision', () => {
    const set = sts({ updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 2 } } });
    expect([0, 1, 2].map((o) => createsAtCurrentRevision(set, o))).to.deep.equal([true, true, false]);
    expect(describe_(plan(set, [old(0), pod(2)]).steps)).to.deep.equal([['create 1@current']]);
    expect(createsAtCurrentRevision(sts({ updateStrategy: { type: 'OnDelete' } }), 0)).to.equal(false);
    expect(createsAtCurrentRevision(sts({ updateStrategy: { type: 'RollingUpdate' } }), 0), 'a missing partition is 0').to.equal(false);
  });

  it('OnDelete never deletes for an update', () => {
    expect(plan(sts({ updateStrategy: { type: 'OnDelete' } }), [old(0), old(1), old(2)]).steps).to.deep.equal([]);
  });

  it('scaling comes before updating', () => {
    expect(describe_(plan(sts({ replicas: 2 }), [old(0), old(1), old(2)]).steps)).to.deep.equal([['delete web-2 (scale-down)']]);
  });

  it('counts replicas as upstream and completes a rolling update', () => {
    const counts = countReplicas([old(0), pod(1), pod(2, 'pending'), pod(3, 'terminating')], 0, CUR, UPD, NOW);
    expect(counts).to.deep.equal({ replicas: 4, readyReplicas: 3, availableReplicas: 3, currentReplicas: 1, updatedReplicas: 2 });
    const status: Json = { replicas: 3, readyReplicas: 3, updatedReplicas: 3, currentReplicas: 0, currentRevision: CUR, updateRevision: UPD };
    completeRollingUpdate(sts(), status);
    expect([status.currentRevision, status.currentReplicas]).to.deep.equal([UPD, 3]);
    const partial: Json = { replicas: 3, readyReplicas: 2, updatedReplicas: 3, currentReplicas: 0, currentRevision: CUR, updateRevision: UPD };
    completeRollingUpdate(sts(), partial);
    expect(partial.currentRevision).to.equal(CUR);
  });
});

describe('statefulset controller: revisions', () => {
  it('saves the template as a replacing strategic merge patch', () => {
    const data = revisionData(template);
    expect(data.spec.template.$patch).to.equal('replace');
    expect(templateOfRevision({ data } as KubeObject)).to.deep.equal(template);
  });

  it('hashes data and collision count into a stable name', () => {
    const a = revisionHash(revisionData(template));
    expect(a).to.match(/^[bcdfghjklmnpqrstvwxz2456789]+$/);
    expect(revisionHash(revisionData(structuredClone(template)))).to.equal(a);
    expect(revisionHash(revisionData(template), 1)).to.not.equal(a);
    expect(revisionHash(revisionData({ ...template, spec: { containers: [{ name: 'c', image: 'busybox:2' }] } }))).to.not.equal(a);
    expect(sameRevisionData({ b: 1, a: { d: 1, c: 2 } }, { a: { c: 2, d: 1 }, b: 1 })).to.equal(true);
    expect(revisionName('x'.repeat(300), 'h')).to.have.length(225);
  });

  it('builds a revision owned by the set with the template labels and the set annotations', () => {
    const r = newControllerRevision(sts({}, { metadata: { annotations: { 'kubernetes.io/change-cause': 'v1' } } }), 4, 0) as Json;
    expect(r.metadata.name).to.equal(`web-${revisionHash(revisionData(template), 0)}`);
    expect(r.metadata.labels).to.deep.equal({ app: 'web' });
    expect(r.metadata.annotations).to.deep.equal({ 'kubernetes.io/change-cause': 'v1' });
    expect(r.revision).to.equal(4);
    expect(r.metadata.ownerReferences[0]).to.include({ kind: 'StatefulSet', uid: 'set-uid', controller: true });
  });

  it('truncates history beyond revisionHistoryLimit, keeping live revisions', () => {
    const revs = ['r1', 'r2', 'r3', 'r4', 'r5'].map((name, i) => ({ metadata: { name }, revision: i + 1 }) as KubeObject);
    const pods = [pod(0, 'ready', 'r2')];
    expect(revisionsToTruncate(sts({ revisionHistoryLimit: 1 }), pods, revs, 'r4', 'r5').map((r) => r.metadata?.name)).to.deep.equal(['r1']);
    expect(revisionsToTruncate(sts({ revisionHistoryLimit: 0 }), pods, revs, 'r4', 'r5').map((r) => r.metadata?.name)).to.deep.equal(['r1', 'r3']);
    expect(revisionsToTruncate(sts(), pods, revs, 'r4', 'r5')).to.deep.equal([]);
  });
});

describe('statefulset controller: claim retention', () => {
  const withPolicy = (whenDeleted: string, whenScaled: string, replicas = 3) => sts({ replicas, persistentVolumeClaimRetentionPolicy: { whenDeleted, whenScaled }, volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: {} }] });
  const claim = (refs: Json[] = []): KubeObject => ({ metadata: { name: 'data-web-1', namespace: 'ns', uid: 'claim', ownerReferences: refs } });
  const refOwners = (refs: Json[]): string[] => refs.map((r) => `${r.kind}/${r.name}${r.controller ? '' : ' (not controller)'}`);
  const live = pod(1);

  for (const [whenDeleted, whenScaled, inRange, condemned] of [
    ['Retain', 'Retain', [], []],
    ['Delete', 'Retain', ['StatefulSet/web'], ['StatefulSet/web']],
    ['Retain', 'Delete', [], ['Pod/web-1']],
    ['Delete', 'Delete', ['StatefulSet/web'], ['Pod/web-1']],
  ] as const) {
    it(`whenDeleted ${whenDeleted}, whenScaled ${whenScaled}: ${inRange.join(', ') || 'no owner'} in range, ${condemned.join(', ') || 'no owner'} when condemned`, () => {
      const set = withPolicy(whenDeleted, whenScaled);
      const want = desiredClaimOwnerReferences(claim(), set, live);
      expect(refOwners(want)).to.deep.equal(inRange);
      expect(claimOwnersUpToDate(claim(want), set, live)).to.equal(true);
      const down = withPolicy(whenDeleted, whenScaled, 1);
      const wantDown = desiredClaimOwnerReferences(claim(want), down, live);
      expect(refOwners(wantDown)).to.deep.equal(condemned);
      expect(claimOwnersUpToDate(claim(wantDown), down, live)).to.equal(true);
      expect(claimOwnersUpToDate(claim(want), down, live)).to.equal(JSON.stringify(want) === JSON.stringify(wantDown));
    });
  }

  it('keeps foreign owners, replaces non-controller references of ours, leaves claims of another controller alone', () => {
    const set = withPolicy('Delete', 'Retain');
    const other = { apiVersion: 'v1', kind: 'ConfigMap', name: 'x', uid: 'x' };
    expect(refOwners(desiredClaimOwnerReferences(claim([other]), set, live))).to.deep.equal(['ConfigMap/x (not controller)', 'StatefulSet/web']);
    expect(claimOwnersUpToDate(claim([{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'web', uid: 'set-uid' }]), set, live)).to.equal(false);
    const foreign = { apiVersion: 'example.com/v1', kind: 'Thing', name: 't', uid: 't', controller: true };
    expect(claimOwnersUpToDate(claim([foreign]), set, live)).to.equal(true);
    expect(refOwners(desiredClaimOwnerReferences(claim([foreign]), set, live))).to.deep.equal(['Thing/t']);
  });

  it('waits for a claim still owned by a deleted pod of the same name (whenScaled Delete) before creating the pod', () => {
    const set = withPolicy('Retain', 'Delete');
    const stale = claim([{ apiVersion: 'v1', kind: 'Pod', name: 'web-1', uid: 'old-pod', controller: true }]);
    const lookup = (n: string): KubeObject | undefined => (n === 'data-web-1' ? stale : { metadata: { name: n, namespace: 'ns', uid: `c-${n}` } });
    expect(staleClaim(set, 1, lookup)).to.equal('data-web-1');
    expect(staleClaim(set, 0, lookup)).to.equal(undefined);
    expect(staleClaim(withPolicy('Retain', 'Retain'), 1, lookup)).to.equal(undefined);
    const p = plan(set, [{ ...pod(0), spec: { volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data-web-0' } }] } }], { claims: lookup });
    expect(p.steps).to.deep.equal([]);
    expect(p.reason).to.equal('claim data-web-1 of web-1 still belongs to a deleted pod');
  });

  it('gives condemned pods\' claims their owner before deleting the pods', () => {
    const set = withPolicy('Retain', 'Delete', 1);
    const lookup = (n: string): KubeObject | undefined => ({ metadata: { name: n, namespace: 'ns', uid: `c-${n}` } });
    const ready = (n: number): KubeObject => ({ ...pod(n), spec: { volumes: [{ name: 'data', persistentVolumeClaim: { claimName: `data-web-${n}` } }] } });
    expect(describe_(plan(set, [ready(0), ready(1), ready(2)], { claims: lookup }).steps)).to.deep.equal([['repair web-2 retention'], ['repair web-1 retention'], ['delete web-2 (scale-down)']]);
  });
});
