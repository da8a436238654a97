import { expect } from 'chai';
import type { KeyValue } from '@kubernel/sdk';
import type { V1PodContainer, V1PodObject, V1Service } from './core-v1.js';
import { expand, expandCommandAndArgs, expandSubPathExpr, isEnvVarName, mappingFor, resolveEnv, serviceEnvVars } from './env.js';
import { goQuote } from './fieldpath.js';
import { FakeSources, b64 } from './fake-sources.spec-helper.js';
import { ContainerConfigError } from './pod-sources.js';

const pod = (containers: V1PodContainer[], extra: Partial<V1PodObject['spec']> = {}): V1PodObject => ({
  metadata: { name: 'web-0', namespace: 'shop', uid: 'uid-1', labels: { app: 'web', tier: 'front' }, annotations: { note: 'say "hi"\n' } },
  spec: { containers, nodeName: 'node-a', serviceAccountName: 'builder', ...extra },
  status: { podIP: '10.1.0.5', podIPs: [{ ip: '10.1.0.5' }, { ip: 'fd00::5' }], hostIP: '192.168.1.2', hostIPs: [{ ip: '192.168.1.2' }] },
});

const asRecord = (kvs: readonly KeyValue[]): Record<string, string> => Object.fromEntries(kvs.map((kv) => [kv.key, kv.value]));

describe('agent env: expand', () => {
  const vars = mappingFor(new Map([['VAR', 'x'], ['EMPTY', '']]), new Map([['SVC', 's'], ['VAR', 'shadowed']]));
  const cases: [string, string][] = [
    ['$(VAR)', 'x'],
    ['a-$(VAR)-b', 'a-x-b'],
    ['$(VAR)$(VAR)', 'xx'],
    ['$(SVC)', 's'],
    ['$(EMPTY)|', '|'],
    ['$$(VAR)', '$(VAR)'],
    ['$$$(VAR)', '$x'],
    ['$$$$', '$$'],
    ['a$$b', 'a$b'],
    ['$(UNKNOWN)', '$(UNKNOWN)'],
    ['$(VAR', '$(VAR'],
    ['$VAR', '$VAR'],
    ['trailing$', 'trailing$'],
    ['$()', '$()'],
    ['$(a b)', '$(a b)'],
    ['no refs', 'no refs'],
    ['', ''],
  ];
  for (const [input, want] of cases) {
    it(`${JSON.stringify(input)} → ${JSON.stringify(want)}`, () => {
      expect(expand(input, vars)).to.equal(want);
    });
  }

  it('expands command and args against the final environment, leaving absent lists absent', () => {
    const envs = [{ key: 'GREETING', value: 'hello' }, { key: 'WHO', value: 'world' }];
    expect(expandCommandAndArgs({ command: ['sh', '-c', 'echo $(GREETING) $$(WHO) $(NOPE)'], args: ['$(WHO)'] }, envs)).to.deep.equal({
      command: ['sh', '-c', 'echo hello $(WHO) $(NOPE)'],
      args: ['world'],
    });
    expect(expandCommandAndArgs({ args: ['$(WHO)'] }, envs)).to.deep.equal({ args: ['world'] });
  });

  it('expands subPathExpr and names every missing or empty variable', () => {
    expect(expandSubPathExpr('logs/$(POD)', [{ key: 'POD', value: 'web-0' }])).to.equal('logs/web-0');
    expect(() => expandSubPathExpr('$(B)/$(A)/$(E)', [{ key: 'E', value: '' }])).to.throw(ContainerConfigError, 'missing value for A, B, E');
  });

  it('validates variable names as Kubernetes 1.30 does', () => {
    for (const ok of ['A', '_a', 'my.env-name', 'MY_ENV.NAME', 'a1', '.a', '-x']) expect(isEnvVarName(ok), ok).to.equal(true);
    for (const bad of ['', '1A', 'A=B', 'a b', '.', '..', '..a', 'ü']) expect(isEnvVarName(bad), bad).to.equal(false);
  });

  it('quotes like Go %q', () => {
    expect(goQuote('a"b\\c\n\t\x01\x7fé')).to.equal('"a\\"b\\\\c\\n\\t\\x01\\x7fé"');
  });
});

describe('agent env: service variables', () => {
  it('writes the docker-links variables of a service with an unnamed first port and a named one', () => {
    const svc: V1Service = {
      metadata: { name: 'redis-master', namespace: 'shop' },
      spec: { clusterIP: '10.0.0.11', ports: [{ port: 6379 }, { name: 'metrics-port', port: 9121, protocol: 'UDP' }] },
    };
    expect(serviceEnvVars([svc])).to.deep.equal([
      { key: 'REDIS_MASTER_SERVICE_HOST', value: '10.0.0.11' },
      { key: 'REDIS_MASTER_SERVICE_PORT', value: '6379' },
      { key: 'REDIS_MASTER_SERVICE_PORT_METRICS_PORT', value: '9121' },
      { key: 'REDIS_MASTER_PORT', value: 'tcp://10.0.0.11:6379' },
      { key: 'REDIS_MASTER_PORT_6379_TCP', value: 'tcp://10.0.0.11:6379' },
      { key: 'REDIS_MASTER_PORT_6379_TCP_PROTO', value: 'tcp' },
      { key: 'REDIS_MASTER_PORT_6379_TCP_PORT', value: '6379' },
      { key: 'REDIS_MASTER_PORT_6379_TCP_ADDR', value: '10.0.0.11' },
      { key: 'REDIS_MASTER_PORT_9121_UDP', value: 'udp://10.0.0.11:9121' },
      { key: 'REDIS_MASTER_PORT_9121_UDP_PROTO', value: 'udp' },
      { key: 'REDIS_MASTER_PORT_9121_UDP_PORT', value: '9121' },
      { key: 'REDIS_MASTER_PORT_9121_UDP_ADDR', value: '10.0.0.11' },
    ]);
  });

  it('brackets IPv6 cluster IPs and skips headless and ExternalName services', () => {
    const out = serviceEnvVars([
      { metadata: { name: 'v6' }, spec: { clusterIP: 'fd00::10', ports: [{ name: 'http', port: 80 }] } },
      { metadata: { name: 'headless' }, spec: { clusterIP: 'None', ports: [{ port: 80 }] } },
      { metadata: { name: 'external' }, spec: { ports: [{ port: 80 }] } },
    ]);
    expect(asRecord(out)).to.deep.equal({
      V6_SERVICE_HOST: 'fd00::10',
      V6_SERVICE_PORT: '80',
      V6_SERVICE_PORT_HTTP: '80',
      V6_PORT: 'tcp://[fd00::10]:80',
      V6_PORT_80_TCP: 'tcp://[fd00::10]:80',
      V6_PORT_80_TCP_PROTO: 'tcp',
      V6_PORT_80_TCP_PORT: '80',
      V6_PORT_80_TCP_ADDR: 'fd00::10',
    });
  });
});

describe('agent env: resolveEnv', () => {
  let sources: FakeSources;
  const kubernetesSvc: V1Service = { metadata: { name: 'kubernetes', namespace: 'default' }, spec: { clusterIP: '10.0.0.1', ports: [{ name: 'https', port: 443 }] } };
  const dbSvc: V1Service = { metadata: { name: 'db', namespace: 'shop' }, spec: { clusterIP: '10.0.0.20', ports: [{ port: 5432 }] } };

  beforeEach(() => {
    sources = new FakeSources();
    sources.services.set('default', [kubernetesSvc, { metadata: { name: 'other', namespace: 'default' }, spec: { clusterIP: '10.0.0.9', ports: [{ port: 1 }] } }]);
    sources.services.set('shop', [dbSvc]);
    sources.configMaps.set('shop/cfg', { data: { A: '1', B: '2', 'bad key': 'x', '1NUM': 'y' } });
    sources.secrets.set('shop/creds', { data: { user: b64('admin'), pass: b64('s3cret') } });
  });

  it('orders envFrom, env overrides and service variables, expanding against earlier variables only', async () => {
    const c: V1PodContainer = {
      name: 'app',
      envFrom: [{ configMapRef: { name: 'cfg' } }, { prefix: 'S_', secretRef: { name: 'creds' } }],
      env: [
        { name: 'B', value: 'override' },
        { name: 'C', value: '$(A)-$(B)-$(LATER)-$(DB_SERVICE_HOST)' },
        { name: 'LATER', value: 'late' },
        { name: 'ESC', value: '$$(A)' },
        { name: 'EMPTY', value: '' },
        { name: 'KUBERNETES_SERVICE_HOST', value: 'my-own' },
      ],
    };
    const warnings: string[] = [];
    const envs = await resolveEnv(pod([c]), c, sources, { onWarning: (reason, message) => warnings.push(`${reason}: ${message}`) });
    expect(envs.map((e) => e.key)).to.deep.equal([
      'A', 'B', 'S_user', 'S_pass', 'C', 'LATER', 'ESC', 'EMPTY', 'KUBERNETES_SERVICE_HOST',
      'DB_SERVICE_HOST', 'DB_SERVICE_PORT', 'DB_PORT', 'DB_PORT_5432_TCP', 'DB_PORT_5432_TCP_PROTO', 'DB_PORT_5432_TCP_PORT', 'DB_PORT_5432_TCP_ADDR',
      'KUBERNETES_SERVICE_PORT', 'KUBERNETES_SERVICE_PORT_HTTPS', 'KUBERNETES_PORT', 'KUBERNETES_PORT_443_TCP', 'KUBERNETES_PORT_443_TCP_PROTO', 'KUBERNETES_PORT_443_TCP_PORT', 'KUBERNETES_PORT_443_TCP_ADDR',
    ]);
    const r = asRecord(envs);
    expect(r).to.include({ A: '1', B: 'override', S_user: 'admin', S_pass: 's3cret', C: '1-override-$(LATER)-10.0.0.20', LATER: 'late', ESC: '$(A)', EMPTY: '', KUBERNETES_SERVICE_HOST: 'my-own' });
    expect(r).to.not.have.property('OTHER_SERVICE_HOST');
    expect(warnings).to.deep.equal(['InvalidEnvironmentVariableNames: Keys [1NUM, bad key] from the EnvFrom configMap shop/cfg were skipped since they are considered invalid environment variable names.']);
    // Each object is read once per call.
    expect(sources.calls.filter((c) => c.startsWith('configmap') || c.startsWith('secret'))).to.deep.equal(['configmap shop/cfg', 'secret shop/creds']);
  });

  it('injects only the kubernetes service variables when enableServiceLinks is false', async () => {
    const c: V1PodContainer = { name: 'app' };
    const envs = await resolveEnv(pod([c], { enableServiceLinks: false }), c, sources);
    expect(envs.map((e) => e.key).every((k) => k.startsWith('KUBERNETES_'))).to.equal(true);
    expect(asRecord(envs).KUBERNETES_SERVICE_HOST).to.equal('10.0.0.1');
    expect(sources.calls).to.deep.equal(['services default']);
  });

  it('lets a same-named service of the pod namespace win over the master one', async () => {
    sources.services.set('shop', [{ metadata: { name: 'kubernetes', namespace: 'shop' }, spec: { clusterIP: '10.0.0.77', ports: [{ port: 8443 }] } }]);
    const c: V1PodContainer = { name: 'app' };
    expect(asRecord(await resolveEnv(pod([c]), c, sources)).KUBERNETES_SERVICE_HOST).to.equal('10.0.0.77');
  });

  const fieldCases: [string, string][] = [
    ['metadata.name', 'web-0'],
    ['metadata.namespace', 'shop'],
    ['metadata.uid', 'uid-1'],
    ["metadata.labels['app']", 'web'],
    ["metadata.labels['missing']", ''],
    ["metadata.annotations['note']", 'say "hi"\n'],
    ['metadata.labels', 'app="web"\ntier="front"'],
    ['metadata.annotations', 'note="say \\"hi\\"\\n"'],
    ['spec.nodeName', 'node-a'],
    ['spec.host', 'node-a'],
    ['spec.serviceAccountName', 'builder'],
    ['status.podIP', '10.1.0.5'],
    ['status.podIPs', '10.1.0.5,fd00::5'],
    ['status.hostIP', '192.168.1.2'],
    ['status.hostIPs', '192.168.1.2'],
  ];
  for (const [fieldPath, want] of fieldCases) {
    it(`fieldRef ${fieldPath}`, async () => {
      const c: V1PodContainer = { name: 'app', env: [{ name: 'V', valueFrom: { fieldRef: { fieldPath } } }] };
      expect(asRecord(await resolveEnv(pod([c], { enableServiceLinks: false }), c, sources)).V).to.equal(want);
    });
  }

  it('takes pod and host IPs from options over the pod status', async () => {
    const c: V1PodContainer = { name: 'app', env: [{ name: 'P', valueFrom: { fieldRef: { fieldPath: 'status.podIPs' } } }, { name: 'H', valueFrom: { fieldRef: { fieldPath: 'status.hostIPs' } } }] };
    const r = asRecord(await resolveEnv(pod([c]), c, sources, { podIPs: ['10.9.9.9'], hostIPs: ['1.1.1.1', 'fd00::1'] }));
    expect([r.P, r.H]).to.deep.equal(['10.9.9.9', '1.1.1.1,fd00::1']);
  });

  const badFields: [string, string][] = [
    ['spec.restartPolicy', 'unsupported fieldPath: spec.restartPolicy'],
    ['status.nope', 'field label not supported: status.nope'],
    ["spec.nodeName['x']", "field label does not support subscript: spec.nodeName['x']"],
    ["metadata.labels['-bad-']", "invalid key subscript in metadata.labels['-bad-']"],
  ];
  for (const [fieldPath, message] of badFields) {
    it(`fieldRef ${fieldPath} fails with CreateContainerConfigError`, async () => {
      const c: V1PodContainer = { name: 'app', env: [{ name: 'V', valueFrom: { fieldRef: { fieldPath } } }] };
      const err = await resolveEnv(pod([c]), c, sources).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(ContainerConfigError);
      expect((err as ContainerConfigError).reason).to.equal('CreateContainerConfigError');
      expect((err as Error).message).to.contain(message);
    });
  }

  it('resolves resourceFieldRef with divisors, rounding up, limits defaulting to node allocatable', async () => {
    const other: V1PodContainer = { name: 'side', resources: { limits: { memory: '64Mi' } } };
    const c: V1PodContainer = {
      name: 'app',
      resources: { requests: { cpu: '250m', memory: '100Mi' }, limits: { cpu: '1500m' } },
      env: [
        { name: 'LIM_CPU', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } },
        { name: 'LIM_CPU_M', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '1m' } } },
        { name: 'REQ_CPU', valueFrom: { resourceFieldRef: { resource: 'requests.cpu' } } },
        { name: 'REQ_MEM_MI', valueFrom: { resourceFieldRef: { resource: 'requests.memory', divisor: '1Mi' } } },
        { name: 'REQ_MEM_ZERO_DIV', valueFrom: { resourceFieldRef: { resource: 'requests.memory', divisor: '0' } } },
        { name: 'LIM_MEM', valueFrom: { resourceFieldRef: { resource: 'limits.memory' } } },
        { name: 'LIM_EPH_GI', valueFrom: { resourceFieldRef: { resource: 'limits.ephemeral-storage', divisor: '1Gi' } } },
        { name: 'REQ_EPH', valueFrom: { resourceFieldRef: { resource: 'requests.ephemeral-storage' } } },
        { name: 'SIDE_MEM_KI', valueFrom: { resourceFieldRef: { containerName: 'side', resource: 'limits.memory', divisor: '1Ki' } } },
      ],
    };
    const r = asRecord(await resolveEnv(pod([c, other]), c, sources, { nodeAllocatable: { cpu: '4', memory: '8Gi', 'ephemeral-storage': '10Gi' } }));
    expect(r).to.include({
      LIM_CPU: '2',
      LIM_CPU_M: '1500',
      REQ_CPU: '1',
      REQ_MEM_MI: '100',
      REQ_MEM_ZERO_DIV: String(100 * 1024 * 1024),
      LIM_MEM: String(8 * 1024 ** 3),
      LIM_EPH_GI: '10',
      REQ_EPH: '0',
      SIDE_MEM_KI: '65536',
    });
  });

  it('rejects an unsupported resource', async () => {
    const c: V1PodContainer = { name: 'app', env: [{ name: 'X', valueFrom: { resourceFieldRef: { resource: 'limits.gpu' } } }] };
    await expectConfigError(resolveEnv(pod([c]), c, sources), 'unsupported container resource : limits.gpu');
  });

  it('resolves configMapKeyRef and secretKeyRef, skipping optional misses', async () => {
    const c: V1PodContainer = {
      name: 'app',
      env: [
        { name: 'FROM_CM', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'A' } } },
        { name: 'FROM_SECRET', valueFrom: { secretKeyRef: { name: 'creds', key: 'pass' } } },
        { name: 'OPT_KEY', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'nope', optional: true } } },
        { name: 'OPT_CM', valueFrom: { configMapKeyRef: { name: 'gone', key: 'k', optional: true } } },
        { name: 'OPT_SECRET', valueFrom: { secretKeyRef: { name: 'gone', key: 'k', optional: true } } },
      ],
      envFrom: [{ configMapRef: { name: 'gone', optional: true } }],
    };
    const r = asRecord(await resolveEnv(pod([c], { enableServiceLinks: false }), c, sources));
    expect(r).to.include({ FROM_CM: '1', FROM_SECRET: 's3cret' });
    expect(r).to.not.have.any.keys('OPT_KEY', 'OPT_CM', 'OPT_SECRET');
  });

  const errorCases: [string, V1PodContainer, string][] = [
    ['a missing configMap', { name: 'app', env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'gone', key: 'k' } } }] }, 'configmap "gone" not found'],
    ['a missing secret', { name: 'app', env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'gone', key: 'k' } } }] }, 'secret "gone" not found'],
    ['a missing configMap key', { name: 'app', env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'k' } } }] }, "couldn't find key k in ConfigMap shop/cfg"],
    ['a missing secret key', { name: 'app', env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'creds', key: 'k' } } }] }, "couldn't find key k in Secret shop/creds"],
    ['a missing envFrom configMap', { name: 'app', envFrom: [{ configMapRef: { name: 'gone' } }] }, 'configmap "gone" not found'],
    ['a missing envFrom secret', { name: 'app', envFrom: [{ secretRef: { name: 'gone' } }] }, 'secret "gone" not found'],
  ];
  for (const [what, c, message] of errorCases) {
    it(`fails on ${what}: ${message}`, async () => {
      await expectConfigError(resolveEnv(pod([c]), c, sources), message);
    });
  }

  it('fails when the services cannot be listed', async () => {
    sources.failServices = true;
    const c: V1PodContainer = { name: 'app' };
    await expectConfigError(resolveEnv(pod([c]), c, sources), 'failed to list services when setting up env vars');
  });
});

async function expectConfigError(p: Promise<unknown>, message: string): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err, 'expected a ContainerConfigError').to.be.instanceOf(ContainerConfigError);
  expect((err as Error).message).to.equal(message);
  expect((err as ContainerConfigError).reason).to.equal('CreateContainerConfigError');
}
