import { expect } from 'chai';
import { compileConfigSchema, type KubeObject } from '@kubernel/sdk';
import {
  ENDPOINTS_MANAGED_BY_LABEL,
  HEADLESS_LABEL,
  LAST_CHANGE_TRIGGER_TIME_ANNOTATION,
  OVER_CAPACITY_ANNOTATION,
  TriggerTimeTracker,
  WriteTracker,
  desiredEndpoints,
  endpointSubsets,
  endpointsControllerPlugin,
  findPort,
  formatTriggerTime,
  podChangeAffectsEndpoints,
  sameSubsets,
  serviceSelector,
  shouldPodBeInEndpoints,
  truncateSubsets,
  type EndpointSubset,
} from './endpoints.js';
import {
  SERVICE_NAME_LABEL,
  SLICE_CONTROLLER_NAME,
  SLICE_MANAGED_BY_LABEL,
  ZONE_LABEL,
  addressTypesForService,
  endpointSliceControllerPlugin,
  endpointSlicePorts,
  planEndpointSlices,
  podToSliceEndpoint,
  type SliceEndpoint,
} from './endpointslice.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

interface PodOptions {
  ip?: string | string[];
  ready?: boolean;
  labels?: Record<string, string>;
  phase?: string;
  deleting?: boolean;
  node?: string;
  ports?: Array<{ name?: string; containerPort: number; protocol?: string }>;
  hostname?: string;
  subdomain?: string;
  readySince?: string;
}

let uid = 0;
function pod(name: string, o: PodOptions = {}): KubeObject {
  const ips = o.ip === undefined ? [`10.0.0.${++uid % 250}`] : Array.isArray(o.ip) ? o.ip : o.ip ? [o.ip] : [];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'ns', uid: `uid-${name}`, resourceVersion: '1', labels: o.labels ?? { app: 'web' }, ...(o.deleting ? { deletionTimestamp: '2024-01-01T00:00:00Z' } : {}) },
    spec: { containers: [{ name: 'c', image: 'i', ports: o.ports ?? [] }], ...(o.node ? { nodeName: o.node } : {}), ...(o.hostname ? { hostname: o.hostname } : {}), ...(o.subdomain ? { subdomain: o.subdomain } : {}) },
    status: {
      phase: o.phase ?? 'Running',
      ...(ips.length ? { podIP: ips[0], podIPs: ips.map((ip) => ({ ip })) } : {}),
      conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True', lastTransitionTime: o.readySince ?? '2024-01-01T00:00:00Z' }],
    },
  };
}

function svc(spec: Json = {}, meta: Json = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'ns', uid: 'svc-uid', creationTimestamp: '2024-01-01T00:00:00Z', labels: { tier: 'front' }, ...meta },
    spec: { selector: { app: 'web' }, clusterIP: '10.96.0.10', ipFamilies: ['IPv4'], ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }], ...spec },
  };
}

const ips = (addresses: Json[] | undefined): string[] => (addresses ?? []).map((a) => a.ip as string);

describe('endpoints: which pods a Service publishes', () => {
  it('a missing or empty selector means the Service is not managed', () => {
    expect(serviceSelector(svc({ selector: undefined }))).to.equal(undefined);
    expect(serviceSelector(svc({ selector: {} }))).to.equal(undefined);
    expect(serviceSelector(svc())!({ app: 'web', x: 'y' })).to.equal(true);
    expect(serviceSelector(svc())!({ app: 'other' })).to.equal(false);
  });

  it('excludes terminal pods and pods without an IP; deleting pods only when terminating ones are excluded', () => {
    expect(shouldPodBeInEndpoints(pod('a'), false)).to.equal(true);
    expect(shouldPodBeInEndpoints(pod('a', { phase: 'Succeeded' }), true)).to.equal(false);
    expect(shouldPodBeInEndpoints(pod('a', { phase: 'Failed' }), true)).to.equal(false);
    expect(shouldPodBeInEndpoints(pod('a', { ip: [] }), true)).to.equal(false);
    expect(shouldPodBeInEndpoints(pod('a', { deleting: true }), false)).to.equal(false);
    expect(shouldPodBeInEndpoints(pod('a', { deleting: true }), true)).to.equal(true);
  });

  it('resolves numeric and named target ports per pod, matching the protocol, sidecars included', () => {
    const p = pod('a', { ports: [{ name: 'http', containerPort: 8080 }, { name: 'dns', containerPort: 53, protocol: 'UDP' }] });
    expect(findPort(p, { port: 80, targetPort: 9090 })).to.equal(9090);
    expect(findPort(p, { port: 80 })).to.equal(80);
    expect(findPort(p, { port: 80, targetPort: 'http', protocol: 'TCP' })).to.equal(8080);
    expect(findPort(p, { port: 53, targetPort: 'dns', protocol: 'UDP' })).to.equal(53);
    expect(findPort(p, { port: 53, targetPort: 'dns', protocol: 'TCP' })).to.equal(undefined);
    expect(findPort(p, { port: 80, targetPort: 'metrics' })).to.equal(undefined);
    const sidecar = { ...p, spec: { ...(p.spec as Json), initContainers: [{ name: 's', restartPolicy: 'Always', ports: [{ name: 'proxy', containerPort: 15001 }] }, { name: 'init', ports: [{ name: 'once', containerPort: 1 }] }] } };
    expect(findPort(sidecar, { port: 1, targetPort: 'proxy' })).to.equal(15001);
    expect(findPort(sidecar, { port: 1, targetPort: 'once' })).to.equal(undefined);
  });

  it('a pod update matters only when what endpoints show of it changed', () => {
    const a = pod('a');
    const bump = (p: KubeObject, f: (q: Json) => void): KubeObject => {
      const q = structuredClone(p) as Json;
      q.metadata.resourceVersion = '2';
      f(q);
      return q;
    };
    expect(podChangeAffectsEndpoints(a, a)).to.equal(false);
    expect(podChangeAffectsEndpoints(a, bump(a, (q) => (q.metadata.annotations = { x: 'y' })))).to.equal(false);
    expect(podChangeAffectsEndpoints(a, bump(a, (q) => (q.metadata.labels = { app: 'other' })))).to.equal(true);
    expect(podChangeAffectsEndpoints(a, bump(a, (q) => (q.status.conditions[0].status = 'False')))).to.equal(true);
    expect(podChangeAffectsEndpoints(a, bump(a, (q) => (q.status.podIPs = [{ ip: '10.9.9.9' }])))).to.equal(true);
    expect(podChangeAffectsEndpoints(a, bump(a, (q) => (q.metadata.deletionTimestamp = '2024-01-01T00:00:00Z')))).to.equal(true);
    expect(podChangeAffectsEndpoints(a, bump(a, (q) => (q.status.phase = 'Failed')))).to.equal(true);
  });
});

describe('endpoints: subsets', () => {
  it('splits ready and not-ready pods, sorted by IP, with node, pod reference and resolved port', () => {
    const subsets = endpointSubsets(svc(), [pod('b', { ip: '10.0.0.2', node: 'n1' }), pod('a', { ip: '10.0.0.1' }), pod('c', { ip: '10.0.0.3', ready: false })]);
    expect(subsets).to.deep.equal([
      {
        addresses: [
          { ip: '10.0.0.1', targetRef: { kind: 'Pod', namespace: 'ns', name: 'a', uid: 'uid-a' } },
          { ip: '10.0.0.2', nodeName: 'n1', targetRef: { kind: 'Pod', namespace: 'ns', name: 'b', uid: 'uid-b' } },
        ],
        notReadyAddresses: [{ ip: '10.0.0.3', targetRef: { kind: 'Pod', namespace: 'ns', name: 'c', uid: 'uid-c' } }],
        ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
      },
    ]);
  });

  it('publishes every pod as ready with publishNotReadyAddresses, terminating ones included', () => {
    const subsets = endpointSubsets(svc({ publishNotReadyAddresses: true }), [pod('a', { ip: '10.0.0.1', ready: false }), pod('b', { ip: '10.0.0.2', deleting: true }), pod('c', { ip: '10.0.0.3', phase: 'Succeeded' })]);
    expect(subsets).to.have.length(1);
    expect(ips(subsets[0]!.addresses)).to.deep.equal(['10.0.0.1', '10.0.0.2']);
    expect(subsets[0]!.notReadyAddresses).to.equal(undefined);
  });

  it('leaves out terminal pods, pods being deleted, pods without an IP', () => {
    const subsets = endpointSubsets(svc(), [pod('a', { ip: '10.0.0.1' }), pod('b', { ip: '10.0.0.2', deleting: true }), pod('c', { ip: '10.0.0.3', phase: 'Failed' }), pod('d', { ip: '10.0.0.4', phase: 'Succeeded', ready: false }), pod('e', { ip: [] })]);
    expect(subsets).to.have.length(1);
    expect(ips(subsets[0]!.addresses)).to.deep.equal(['10.0.0.1']);
    expect(subsets[0]!.notReadyAddresses).to.equal(undefined);
  });

  it('resolves a named target port per pod: different container ports make different subsets', () => {
    const service = svc({ ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 'web', appProtocol: 'http' }] });
    const subsets = endpointSubsets(service, [
      pod('a', { ip: '10.0.0.1', ports: [{ name: 'web', containerPort: 8080 }] }),
      pod('b', { ip: '10.0.0.2', ports: [{ name: 'web', containerPort: 9090 }] }),
      pod('c', { ip: '10.0.0.3', ports: [{ name: 'web', containerPort: 8080 }] }),
    ]);
    expect(subsets.map((s) => [ips(s.addresses), s.ports])).to.deep.equal([
      [['10.0.0.1', '10.0.0.3'], [{ name: 'http', port: 8080, protocol: 'TCP', appProtocol: 'http' }]],
      [['10.0.0.2'], [{ name: 'http', port: 9090, protocol: 'TCP', appProtocol: 'http' }]],
    ]);
  });

  it('leaves a pod without the named port out of that port (and out entirely when it has none)', () => {
    const service = svc({
      ports: [
        { name: 'http', port: 80, protocol: 'TCP', targetPort: 'web' },
        { name: 'metrics', port: 9100, protocol: 'TCP', targetPort: 'metrics' },
      ],
    });
    const subsets = endpointSubsets(service, [
      pod('full', { ip: '10.0.0.1', ports: [{ name: 'web', containerPort: 8080 }, { name: 'metrics', containerPort: 9100 }] }),
      pod('webonly', { ip: '10.0.0.2', ports: [{ name: 'web', containerPort: 8080 }] }),
      pod('none', { ip: '10.0.0.3', ports: [] }),
    ]);
    const byPorts = new Map(subsets.map((s) => [s.ports!.map((p) => p.name).join(','), ips(s.addresses)]));
    expect(Object.fromEntries(byPorts)).to.deep.equal({ http: ['10.0.0.1', '10.0.0.2'], metrics: ['10.0.0.1'] });
  });

  it('groups ports offered by the same addresses into one subset, and different address sets into separate subsets', () => {
    const service = svc({
      ports: [
        { name: 'a', port: 1, protocol: 'TCP', targetPort: 1001 },
        { name: 'b', port: 2, protocol: 'UDP', targetPort: 1002 },
      ],
    });
    const same = endpointSubsets(service, [pod('x', { ip: '10.0.0.1' }), pod('y', { ip: '10.0.0.2', ready: false })]);
    expect(same).to.have.length(1);
    expect(same[0]!.ports).to.deep.equal([
      { name: 'a', port: 1001, protocol: 'TCP' },
      { name: 'b', port: 1002, protocol: 'UDP' },
    ]);
    expect(ips(same[0]!.addresses)).to.deep.equal(['10.0.0.1']);
    expect(ips(same[0]!.notReadyAddresses)).to.deep.equal(['10.0.0.2']);
  });

  it('sets the hostname of pods whose subdomain is the Service, and picks the IP of the Service family', () => {
    const dual = pod('h', { ip: ['10.0.0.9', 'fd00::9'], hostname: 'h0', subdomain: 'web' });
    expect(endpointSubsets(svc(), [dual])[0]!.addresses).to.deep.equal([{ ip: '10.0.0.9', hostname: 'h0', targetRef: { kind: 'Pod', namespace: 'ns', name: 'h', uid: 'uid-h' } }]);
    expect(ips(endpointSubsets(svc({ ipFamilies: ['IPv6', 'IPv4'] }), [dual])[0]!.addresses)).to.deep.equal(['fd00::9']);
    expect(endpointSubsets(svc({ ipFamilies: ['IPv6'] }), [pod('v4', { ip: '10.0.0.1' })])).to.deep.equal([]);
    const other = pod('o', { ip: '10.0.0.8', hostname: 'o0', subdomain: 'else' });
    expect(endpointSubsets(svc(), [other])[0]!.addresses![0]!.hostname).to.equal(undefined);
  });

  it('gives a headless Service without ports one subset of addresses without ports', () => {
    const subsets = endpointSubsets(svc({ clusterIP: 'None', ports: [] }), [pod('a', { ip: '10.0.0.1' }), pod('b', { ip: '10.0.0.2', ready: false })]);
    expect(subsets).to.have.length(1);
    expect(ips(subsets[0]!.addresses)).to.deep.equal(['10.0.0.1']);
    expect(ips(subsets[0]!.notReadyAddresses)).to.deep.equal(['10.0.0.2']);
    expect(subsets[0]!.ports).to.equal(undefined);
  });

  it('truncates beyond capacity, ready addresses first', () => {
    const subsets: EndpointSubset[] = [
      { addresses: Array.from({ length: 6 }, (_, i) => ({ ip: `10.0.0.${i}` })), notReadyAddresses: Array.from({ length: 4 }, (_, i) => ({ ip: `10.0.1.${i}` })), ports: [{ port: 1, protocol: 'TCP' }] },
    ];
    expect(truncateSubsets(subsets, 10).truncated).to.equal(false);
    const some = truncateSubsets(subsets, 8);
    expect(some.truncated).to.equal(true);
    expect(some.subsets[0]!.addresses).to.have.length(6);
    expect(some.subsets[0]!.notReadyAddresses).to.have.length(2);
    const fewer = truncateSubsets(subsets, 5);
    expect(fewer.subsets[0]!.addresses).to.have.length(5);
    expect(fewer.subsets[0]!.notReadyAddresses).to.equal(undefined);
  });
});

describe('endpoints: the object and when to write it', () => {
  const pods = [pod('a', { ip: '10.0.0.1' }), pod('b', { ip: '10.0.0.2', ready: false })];

  it('builds the Endpoints with the Service labels, the managed-by label and the trigger time', () => {
    const { endpoints, changed } = desiredEndpoints(svc(), pods, undefined, '2024-01-01T00:00:00Z');
    expect(changed).to.equal(true);
    expect(endpoints.metadata).to.deep.equal({
      name: 'web',
      namespace: 'ns',
      labels: { tier: 'front', [ENDPOINTS_MANAGED_BY_LABEL]: 'endpoint-controller' },
      annotations: { [LAST_CHANGE_TRIGGER_TIME_ANNOTATION]: '2024-01-01T00:00:00Z' },
    });
    expect(endpoints.subsets).to.have.length(1);
    const headless = desiredEndpoints(svc({ clusterIP: 'None' }), []).endpoints;
    expect(headless.metadata?.labels?.[HEADLESS_LABEL]).to.equal('');
    expect(headless.subsets).to.equal(undefined);
  });

  it('does not write when only order, resourceVersions or annotations differ', () => {
    const first = desiredEndpoints(svc(), pods).endpoints as Json;
    const stored = structuredClone(first);
    stored.metadata.resourceVersion = '7';
    stored.metadata.annotations = { 'someone/else': 'x' };
    stored.subsets[0].addresses[0].targetRef.resourceVersion = '99';
    stored.subsets[0].ports[0].protocol = 'TCP';
    expect(desiredEndpoints(svc(), [...pods].reverse(), stored, '2030-01-01T00:00:00Z').changed).to.equal(false);
    expect(sameSubsets([{ addresses: [{ ip: '1.1.1.1' }, { ip: '1.1.1.0' }], ports: [{ port: 1, protocol: 'TCP' }] }], [{ addresses: [{ ip: '1.1.1.0' }, { ip: '1.1.1.1' }], notReadyAddresses: [], ports: [{ port: 1, protocol: 'TCP' }] }])).to.equal(true);
  });

  it('writes when subsets or labels differ, keeping the stored metadata and annotations', () => {
    const stored = desiredEndpoints(svc(), pods).endpoints as Json;
    stored.metadata.resourceVersion = '7';
    stored.metadata.uid = 'ep-uid';
    stored.metadata.annotations = { 'someone/else': 'x', [LAST_CHANGE_TRIGGER_TIME_ANNOTATION]: 'old' };
    const readyNow = desiredEndpoints(svc(), [pods[0]!, pod('b', { ip: '10.0.0.2' })], stored);
    expect(readyNow.changed).to.equal(true);
    expect(readyNow.endpoints.metadata).to.include({ resourceVersion: '7', uid: 'ep-uid' });
    expect(readyNow.endpoints.metadata?.annotations).to.deep.equal({ 'someone/else': 'x' });
    expect(ips((readyNow.endpoints.subsets as Json[])[0].addresses)).to.deep.equal(['10.0.0.1', '10.0.0.2']);
    expect(desiredEndpoints(svc({}, { labels: { tier: 'back' } }), pods, stored).changed).to.equal(true);
    const userEdited = structuredClone(stored);
    userEdited.metadata.labels = { tier: 'front' }; // managed-by label removed by hand
    expect(desiredEndpoints(svc(), pods, userEdited).changed).to.equal(true);
  });

  it('marks and unmarks over-capacity Endpoints', () => {
    const many = Array.from({ length: 1001 }, (_, i) => pod(`p${i}`, { ip: `10.${Math.floor(i / 250)}.${i % 250}.1` }));
    const { endpoints } = desiredEndpoints(svc(), many);
    expect(endpoints.metadata?.annotations?.[OVER_CAPACITY_ANNOTATION]).to.equal('truncated');
    expect((endpoints.subsets as Json[])[0].addresses).to.have.length(1000);
    expect(desiredEndpoints(svc(), many, endpoints).changed).to.equal(false);
    const fewer = desiredEndpoints(svc(), many.slice(0, 10), endpoints);
    expect(fewer.changed).to.equal(true);
    expect(fewer.endpoints.metadata?.annotations?.[OVER_CAPACITY_ANNOTATION]).to.equal(undefined);
  });
});

describe('endpoints: trigger times and the stale-cache guard', () => {
  it('formats times as RFC 3339 with only the fractional digits needed', () => {
    expect(formatTriggerTime(Date.parse('2024-01-01T00:00:10Z'))).to.equal('2024-01-01T00:00:10Z');
    expect(formatTriggerTime(Date.parse('2024-01-01T00:00:10.500Z'))).to.equal('2024-01-01T00:00:10.5Z');
  });

  it('reports the Service creation first, then the earliest pod readiness change since the last sync', () => {
    const t = new TriggerTimeTracker();
    const a = pod('a', { readySince: '2024-02-01T00:00:00Z' });
    expect(t.compute(svc(), [a])).to.equal('2024-01-01T00:00:00Z');
    expect(t.compute(svc(), [a])).to.equal(undefined);
    const b = pod('b', { readySince: '2024-03-01T00:00:00Z' });
    const a2 = pod('a', { readySince: '2024-02-15T00:00:00Z' });
    expect(t.compute(svc(), [a2, b])).to.equal('2024-02-15T00:00:00Z');
    t.forget('ns', 'web');
    expect(t.compute(svc(), [a2, b])).to.equal('2024-01-01T00:00:00Z');
  });

  it('is stale until the cache shows a write: created, updated past a version, deleted', () => {
    const w = new WriteTracker();
    const cache = new Map<string, KubeObject>();
    const lookup = (k: string): KubeObject | undefined => cache.get(k);
    w.record('ns/a', 'ns/web', { present: true });
    expect(w.stale('ns/web', lookup)).to.equal(true);
    expect(w.stale('ns/other', lookup)).to.equal(false);
    cache.set('ns/a', { metadata: { name: 'a', namespace: 'ns', resourceVersion: '5', uid: 'u' } });
    expect(w.stale('ns/web', lookup)).to.equal(false);
    expect(w.size).to.equal(0);
    w.record('ns/a', 'ns/web', { present: true, replacedVersion: '5' });
    expect(w.stale('ns/web', lookup)).to.equal(true);
    w.observe({ metadata: { name: 'a', namespace: 'ns', resourceVersion: '6' } }, false);
    expect(w.size).to.equal(0);
    w.record('ns/a', 'ns/web', { present: false, uid: 'u' });
    expect(w.stale('ns/web', lookup)).to.equal(true);
    cache.delete('ns/a');
    expect(w.stale('ns/web', lookup)).to.equal(false);
    const expiring = new WriteTracker(-1);
    expiring.record('ns/b', 'ns/web', { present: true });
    expect(expiring.stale('ns/web', lookup)).to.equal(false);
  });
});

describe('endpoint slices: desired state', () => {
  const names = (endpoints: SliceEndpoint[] | undefined): string[] => (endpoints ?? []).map((e) => String(e.targetRef?.name)).sort();
  /** Gives planned creations names and versions, as the API server would. */
  let serial = 0;
  const stored = (slices: KubeObject[]): KubeObject[] =>
    slices.map((s) => {
      const o = structuredClone(s) as Json;
      if (!o.metadata.name) o.metadata.name = `${o.metadata.generateName}${(++serial).toString(36).padStart(5, 'x')}`;
      delete o.metadata.generateName;
      o.metadata.resourceVersion = String(++serial);
      o.metadata.uid = `slice-${o.metadata.name}`;
      return o;
    });
  /** Applies a plan to a store of slices. */
  const apply = (current: KubeObject[], plan: ReturnType<typeof planEndpointSlices>): KubeObject[] => {
    const gone = new Set([...plan.delete, ...plan.update].map((s) => s.metadata?.name));
    return [...current.filter((s) => !gone.has(s.metadata?.name)), ...stored(plan.update), ...stored(plan.create)];
  };

  it('derives address types from ipFamilies, else the cluster IP, else both', () => {
    expect(addressTypesForService(svc())).to.deep.equal(['IPv4']);
    expect(addressTypesForService(svc({ ipFamilies: ['IPv6', 'IPv4'] }))).to.deep.equal(['IPv4', 'IPv6']);
    expect(addressTypesForService(svc({ ipFamilies: [], clusterIP: 'fd00::1' }))).to.deep.equal(['IPv6']);
    expect(addressTypesForService(svc({ ipFamilies: [], clusterIP: 'None' }))).to.deep.equal(['IPv4', 'IPv6']);
  });

  it('gives a Service without endpoints one empty slice, labelled and owned by the Service', () => {
    const plan = planEndpointSlices(svc(), [], [], { triggerTime: '2024-01-01T00:00:00Z' });
    expect(plan.update).to.deep.equal([]);
    expect(plan.delete).to.deep.equal([]);
    expect(plan.create).to.deep.equal([
      {
        apiVersion: 'discovery.k8s.io/v1',
        kind: 'EndpointSlice',
        metadata: {
          generateName: 'web-',
          namespace: 'ns',
          labels: { tier: 'front', [SERVICE_NAME_LABEL]: 'web', [SLICE_MANAGED_BY_LABEL]: SLICE_CONTROLLER_NAME },
          ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: 'web', uid: 'svc-uid', controller: true, blockOwnerDeletion: true }],
          annotations: { [LAST_CHANGE_TRIGGER_TIME_ANNOTATION]: '2024-01-01T00:00:00Z' },
        },
        addressType: 'IPv4',
        endpoints: [],
      },
    ]);
    // Kept as it is on the next sync.
    const again = planEndpointSlices(svc(), [], stored(plan.create));
    expect([again.create, again.update, again.delete]).to.deep.equal([[], [], []]);
  });

  it('writes endpoints with conditions, node, zone, hostname, pod reference; ports with names', () => {
    const nodes: Record<string, KubeObject> = { n1: { metadata: { name: 'n1', labels: { [ZONE_LABEL]: 'z1' } } } };
    const p = pod('a', { ip: ['10.0.0.1', 'fd00::1'], node: 'n1', hostname: 'a0', subdomain: 'web' });
    expect(podToSliceEndpoint(p, svc(), 'IPv4', nodes.n1)).to.deep.equal({
      addresses: ['10.0.0.1'],
      conditions: { ready: true, serving: true, terminating: false },
      hostname: 'a0',
      targetRef: { kind: 'Pod', namespace: 'ns', name: 'a', uid: 'uid-a' },
      nodeName: 'n1',
      zone: 'z1',
    });
    expect(podToSliceEndpoint(p, svc(), 'IPv6').addresses).to.deep.equal(['fd00::1']);
    expect(endpointSlicePorts(svc({ ports: [{ port: 80, protocol: 'TCP', targetPort: 8080 }] }), p)).to.deep.equal([{ name: '', port: 8080, protocol: 'TCP' }]);
    const plan = planEndpointSlices(svc(), [p], [], { node: (n) => nodes[n] });
    expect(plan.create).to.have.length(1);
    expect(plan.create[0]!.ports).to.deep.equal([{ name: 'http', port: 8080, protocol: 'TCP' }]);
    expect((plan.create[0]!.endpoints as SliceEndpoint[])[0]!.zone).to.equal('z1');
  });

  it('lists terminating pods as not ready, terminating, and serving by their Ready condition', () => {
    const endpoints = (planEndpointSlices(svc(), [pod('t', { deleting: true }), pod('u', { deleting: true, ready: false }), pod('r')], []).create[0]!.endpoints as SliceEndpoint[]).sort((a, b) => String(a.targetRef?.name).localeCompare(String(b.targetRef?.name)));
    expect(endpoints.map((e) => [e.targetRef?.name, e.conditions])).to.deep.equal([
      ['r', { ready: true, serving: true, terminating: false }],
      ['t', { ready: false, serving: true, terminating: true }],
      ['u', { ready: false, serving: false, terminating: true }],
    ]);
    const published = planEndpointSlices(svc({ publishNotReadyAddresses: true }), [pod('t', { deleting: true, ready: false })], []).create[0]!.endpoints as SliceEndpoint[];
    expect(published[0]!.conditions).to.deep.equal({ ready: true, serving: false, terminating: true });
    expect(planEndpointSlices(svc(), [pod('done', { phase: 'Succeeded' })], []).create[0]!.endpoints).to.deep.equal([]);
  });

  it('puts at most maxEndpointsPerSlice endpoints in a slice (100 by default)', () => {
    const pods = Array.from({ length: 250 }, (_, i) => pod(`p${i}`, { ip: `10.1.${Math.floor(i / 200)}.${i % 200}` }));
    const plan = planEndpointSlices(svc(), pods, []);
    expect(plan.create.map((s) => (s.endpoints as unknown[]).length).sort((a, b) => b - a)).to.deep.equal([100, 100, 50]);
    expect(planEndpointSlices(svc(), pods.slice(0, 10), [], { maxEndpointsPerSlice: 4 }).create.map((s) => (s.endpoints as unknown[]).length)).to.deep.equal([4, 4, 2]);
    // Converged: nothing to do.
    const again = planEndpointSlices(svc(), pods, stored(plan.create));
    expect([again.create, again.update, again.delete]).to.deep.equal([[], [], []]);
  });

  it('separates pods by the ports they resolve: a pod lacking a named port lands in another slice', () => {
    const service = svc({
      ports: [
        { name: 'http', port: 80, protocol: 'TCP', targetPort: 'web' },
        { name: 'metrics', port: 9100, protocol: 'TCP', targetPort: 'metrics' },
      ],
    });
    const plan = planEndpointSlices(service, [pod('full', { ports: [{ name: 'web', containerPort: 8080 }, { name: 'metrics', containerPort: 9100 }] }), pod('webonly', { ports: [{ name: 'web', containerPort: 8080 }] })], []);
    const byPorts = Object.fromEntries(plan.create.map((s) => [((s.ports ?? []) as Json[]).map((p) => `${p.name}:${p.port}`).join(','), names(s.endpoints as SliceEndpoint[])]));
    expect(byPorts).to.deep.equal({ 'http:8080,metrics:9100': ['full'], 'http:8080': ['webonly'] });
  });

  it('updates existing slices in place: readiness changes, pods removed, new pods filling slices', () => {
    const a = pod('a');
    const b = pod('b');
    let slices = stored(planEndpointSlices(svc(), [a, b], []).create);
    const name = slices[0]!.metadata?.name;
    const notReady = planEndpointSlices(svc(), [pod('a', { ip: (a.status as Json).podIP, ready: false }), b], slices);
    expect(notReady.create).to.deep.equal([]);
    expect(notReady.update.map((s) => s.metadata?.name)).to.deep.equal([name]);
    expect(notReady.update[0]!.metadata?.resourceVersion).to.equal(slices[0]!.metadata?.resourceVersion);
    slices = apply(slices, notReady);
    const c = pod('c');
    const swap = planEndpointSlices(svc(), [b, c], slices);
    expect(swap.create).to.deep.equal([]);
    expect(swap.update).to.have.length(1);
    expect(names(swap.update[0]!.endpoints as SliceEndpoint[])).to.deep.equal(['b', 'c']);
    slices = apply(slices, swap);
    // Everything gone: the slice is reused as the empty placeholder (an update, not delete and create).
    const empty = planEndpointSlices(svc(), [], slices);
    expect(empty.create).to.deep.equal([]);
    expect(empty.delete).to.deep.equal([]);
    expect(empty.update).to.have.length(1);
    expect(empty.update[0]!.metadata?.name).to.equal(name);
    expect(empty.update[0]!.endpoints).to.deep.equal([]);
  });

  it('follows the Service labels and repairs edited labels', () => {
    const slices = stored(planEndpointSlices(svc(), [pod('a')], []).create);
    const relabel = planEndpointSlices(svc({}, { labels: { tier: 'back' } }), [pod('a', { ip: ((slices[0]!.endpoints as SliceEndpoint[])[0]!.addresses[0]) })], slices);
    expect(relabel.update).to.have.length(1);
    expect(relabel.update[0]!.metadata?.labels).to.deep.equal({ tier: 'back', [SERVICE_NAME_LABEL]: 'web', [SLICE_MANAGED_BY_LABEL]: SLICE_CONTROLLER_NAME });
  });

  it('deletes slices of another Service object of the same name and of address types no longer served', () => {
    const foreign = stored(planEndpointSlices(svc({}, { uid: 'older' }), [pod('a')], []).create);
    const v6 = stored(planEndpointSlices(svc({ ipFamilies: ['IPv6'] }), [], []).create);
    const plan = planEndpointSlices(svc(), [pod('b')], [...foreign, ...v6]);
    expect(plan.delete.map((s) => s.metadata?.name).sort()).to.deep.equal([foreign[0]!.metadata?.name, v6[0]!.metadata?.name].sort());
    expect(plan.create).to.have.length(1);
    expect(plan.create[0]!.addressType).to.equal('IPv4');
  });

  it('skips pods on unknown nodes (reporting them) unless not-ready addresses are published', () => {
    const p = pod('lost', { node: 'gone' });
    const plan = planEndpointSlices(svc(), [p, pod('free')], [], { node: () => undefined });
    expect(plan.missingNodes).to.deep.equal(['ns/lost']);
    expect(names(plan.create[0]!.endpoints as SliceEndpoint[])).to.deep.equal(['free']);
    const published = planEndpointSlices(svc({ publishNotReadyAddresses: true }), [p], [], { node: () => undefined });
    expect(published.missingNodes).to.deep.equal([]);
    expect(names(published.create[0]!.endpoints as SliceEndpoint[])).to.deep.equal(['lost']);
  });

  it('creates nothing for a Service being deleted', () => {
    expect(planEndpointSlices(svc({}, { deletionTimestamp: '2024-01-01T00:00:00Z' }), [pod('a')], []).create).to.deep.equal([]);
  });
});

describe('endpoint controller plugins: configuration', () => {
  it('default workers (and slice size), refuse unknown fields', () => {
    const ep = compileConfigSchema(endpointsControllerPlugin.configSchema);
    const ok = ep({});
    expect(ok.ok && ok.config).to.deep.include({ workers: 5 });
    expect(ep({ bogus: 1 }).ok).to.equal(false);
    const slices = compileConfigSchema(endpointSliceControllerPlugin.configSchema);
    const sok = slices({});
    expect(sok.ok && sok.config).to.deep.include({ workers: 5, maxEndpointsPerSlice: 100 });
    expect(slices({ maxEndpointsPerSlice: 0 }).ok).to.equal(false);
    expect(slices({ workers: 'many' }).ok).to.equal(false);
  });
});
