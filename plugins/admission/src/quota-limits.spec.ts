import { expect } from 'chai';
import { formatQuantity, type KubeObject } from '@kubernel/sdk';
import { applyContainerDefaults, claimProblems, podProblems } from './limit-ranger.js';
import { missingCompute, podQos, podResources, quotaCovers, usageOf } from './quota-usage.js';

const pod = (spec: Record<string, unknown>, status: Record<string, unknown> = {}): KubeObject => ({ kind: 'Pod', metadata: { name: 'p', namespace: 'n' }, spec, status });
const ctr = (name: string, requests?: Record<string, string>, limits?: Record<string, string>): Record<string, unknown> => ({ name, image: 'i', resources: { ...(requests ? { requests } : {}), ...(limits ? { limits } : {}) } });
const fmt = (m: Map<string, { nanos: bigint; format: 'BinarySI' | 'DecimalSI' | 'DecimalExponent' }>): Record<string, string> => Object.fromEntries([...m].map(([k, v]) => [k, formatQuantity(v)]));
const range = (limits: unknown[]): KubeObject => ({ kind: 'LimitRange', metadata: { name: 'lr', namespace: 'n' }, spec: { limits } });

describe('quota usage (what an object costs)', () => {
  it('sums containers, takes the largest init container, adds overhead', () => {
    const p = pod({ initContainers: [ctr('i', { cpu: '2' })], containers: [ctr('a', { cpu: '500m', memory: '1Gi' }), ctr('b', { cpu: '700m', memory: '512Mi' })], overhead: { cpu: '100m' } });
    expect(fmt(podResources(p, 'requests'))).to.deep.equal({ cpu: '2100m', memory: '1536Mi' });
  });

  it('charges a pod its counts and compute, a terminal pod nothing', () => {
    const p = pod({ containers: [ctr('a', { cpu: '250m' }, { memory: '128Mi' })] });
    expect(fmt(usageOf('', 'pods', p))).to.deep.equal({ 'count/pods': '1', pods: '1', 'requests.cpu': '250m', cpu: '250m', 'limits.memory': '128Mi' });
    expect(usageOf('', 'pods', pod({ containers: [] }, { phase: 'Succeeded' })).size).to.equal(0);
  });

  it('charges services by type, claims by storage and class, other groups by count', () => {
    expect(fmt(usageOf('', 'services', { spec: { type: 'NodePort', ports: [{ port: 1 }, { port: 2 }] } }))).to.deep.equal({ 'count/services': '1', services: '1', 'services.nodeports': '2' });
    expect(fmt(usageOf('', 'persistentvolumeclaims', { spec: { storageClassName: 'gold', resources: { requests: { storage: '5Gi' } } } }))).to.deep.equal({
      'count/persistentvolumeclaims': '1', persistentvolumeclaims: '1', 'requests.storage': '5Gi',
      'gold.storageclass.storage.k8s.io/persistentvolumeclaims': '1', 'gold.storageclass.storage.k8s.io/requests.storage': '5Gi',
    });
    expect(fmt(usageOf('apps', 'deployments', {}))).to.deep.equal({ 'count/deployments.apps': '1' });
  });

  it('names containers missing a limited compute resource (a limit stands in for a request)', () => {
    const p = pod({ containers: [ctr('a', undefined, { cpu: '1' }), ctr('b', { memory: '1Gi' })] });
    expect(missingCompute(p, ['requests.cpu', 'limits.memory', 'pods'])).to.deep.equal([['requests.cpu', ['b']], ['limits.memory', ['a', 'b']]]);
  });

  it('places pods in scopes', () => {
    const best = pod({ containers: [ctr('a')] });
    const burst = pod({ containers: [ctr('a', { cpu: '1' })], activeDeadlineSeconds: 30, priorityClassName: 'high' });
    expect(podQos(best)).to.equal('BestEffort');
    expect(podQos(pod({ containers: [ctr('a', { cpu: '1', memory: '1Gi' }, { cpu: '1', memory: '1Gi' })] }))).to.equal('Guaranteed');
    const q = (spec: Record<string, unknown>): KubeObject => ({ spec });
    expect(quotaCovers(q({ scopes: ['BestEffort'] }), 'pods', best)).to.equal(true);
    expect(quotaCovers(q({ scopes: ['BestEffort'] }), 'pods', burst)).to.equal(false);
    expect(quotaCovers(q({ scopes: ['Terminating', 'NotBestEffort'] }), 'pods', burst)).to.equal(true);
    expect(quotaCovers(q({ scopeSelector: { matchExpressions: [{ scopeName: 'PriorityClass', operator: 'In', values: ['high'] }] } }), 'pods', burst)).to.equal(true);
    expect(quotaCovers(q({ scopeSelector: { matchExpressions: [{ scopeName: 'PriorityClass', operator: 'In', values: ['high'] }] } }), 'pods', best)).to.equal(false);
    expect(quotaCovers(q({ scopes: ['BestEffort'] }), 'configmaps', {})).to.equal(false);
  });
});

describe('LimitRanger rules', () => {
  it('applies defaults only where unset and describes them', () => {
    const spec = { containers: [ctr('a', { cpu: '50m' }), ctr('b', undefined, { memory: '1Gi' })] };
    const note = applyContainerDefaults(spec, [range([{ type: 'Container', default: { cpu: '1', memory: '256Mi' }, defaultRequest: { cpu: '100m' } }])]);
    expect(spec.containers.map((c) => c.resources)).to.deep.equal([
      { requests: { cpu: '50m', memory: '256Mi' }, limits: { cpu: '1', memory: '256Mi' } },
      { limits: { memory: '1Gi', cpu: '1' }, requests: { cpu: '100m', memory: '1Gi' } },
    ]);
    expect(note).to.equal('LimitRanger plugin set: memory request for container a; cpu, memory limit for container a; cpu, memory request for container b; cpu limit for container b');
  });

  it('checks min, max and the limit/request ratio per container and per pod', () => {
    const lr = [range([{ type: 'Container', min: { cpu: '100m' }, max: { memory: '1Gi' }, maxLimitRequestRatio: { cpu: '2' } }, { type: 'Pod', max: { cpu: '1' } }])];
    expect(podProblems({ containers: [ctr('a', { cpu: '200m' }, { cpu: '400m', memory: '512Mi' })] }, lr)).to.deep.equal([]);
    expect(podProblems({ containers: [ctr('a', { cpu: '50m' }, { cpu: '600m', memory: '2Gi' }), ctr('b', { cpu: '500m' }, { cpu: '500m', memory: '1Gi' })] }, lr)).to.deep.equal([
      'minimum cpu usage per Container is 100m, but request is 50m',
      'maximum memory usage per Container is 1Gi, but limit is 2Gi',
      'cpu max limit to request ratio per Container is 2, but provided ratio is 12.000000',
      'maximum cpu usage per Pod is 1, but limit is 1100m',
    ]);
  });

  it('bounds claims\' storage', () => {
    const lr = [range([{ type: 'PersistentVolumeClaim', min: { storage: '1Gi' }, max: { storage: '10Gi' } }])];
    expect(claimProblems({ spec: { resources: { requests: { storage: '500Mi' } } } }, lr)).to.deep.equal(['minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi']);
    expect(claimProblems({ spec: { resources: { requests: { storage: '20Gi' } } } }, lr)).to.deep.equal(['maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi']);
    expect(claimProblems({ spec: { resources: { requests: { storage: '5Gi' } } } }, lr)).to.deep.equal([]);
  });
});
