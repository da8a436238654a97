import { expect } from 'chai';
import { AdmissionDenied, compileConfigSchema, type ApiObject } from '@kubernel/sdk';
import { admissionRequest } from '@kubernel/sdk/testing';
import {
  checksAt,
  evaluatePod,
  isSignificantPodUpdate,
  namespacePolicy,
  podSecurity,
  podSecurityPlugin,
  podSpecOf,
  type PodSecurityConfig,
  type PodSecurityLevel,
  type PodSecurityOptions,
} from './pod-security.js';

type Json = Record<string, unknown>;

/** A container that passes restricted. */
const RESTRICTED_SC = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } };
const container = (securityContext?: Json, extra: Json = {}, name = 'c'): Json => ({ name, image: 'nginx', ...(securityContext ? { securityContext } : {}), ...extra });
/** A baseline pod spec: one plain container, plus `extra`. */
const baseline = (extra: Json = {}, c: Json = container()): Json => ({ containers: [c], ...extra });
/** A restricted-compliant pod spec, with container security context `sc` merged over the compliant one. */
const restricted = (sc: Json = {}, extra: Json = {}): Json => ({ containers: [container({ ...RESTRICTED_SC, ...sc })], ...extra });

interface Case {
  readonly name: string;
  readonly level: PodSecurityLevel;
  readonly spec: Json;
  readonly metadata?: Json;
  /** The single expected violation, or undefined when the pod must pass. */
  readonly expect?: { check: string; message: string; fields: string[] };
}

const cases: Case[] = [
  // --- baseline -------------------------------------------------------------------------------
  { name: 'hostProcess unset', level: 'baseline', spec: baseline({ securityContext: { windowsOptions: { hostProcess: false } } }) },
  {
    name: 'hostProcess on pod and container',
    level: 'baseline',
    spec: baseline({ securityContext: { windowsOptions: { hostProcess: true } } }, container({ windowsOptions: { hostProcess: true } })),
    expect: {
      check: 'windowsHostProcess',
      message: 'hostProcess (pod and container "c" must not set securityContext.windowsOptions.hostProcess=true)',
      fields: ['spec.securityContext.windowsOptions.hostProcess', 'spec.containers[0].securityContext.windowsOptions.hostProcess'],
    },
  },
  { name: 'host namespaces false', level: 'baseline', spec: baseline({ hostNetwork: false, hostPID: false, hostIPC: false }) },
  {
    name: 'host namespaces',
    level: 'baseline',
    spec: baseline({ hostIPC: true, hostPID: true, hostNetwork: true }),
    expect: { check: 'hostNamespaces', message: 'host namespaces (hostNetwork=true, hostPID=true, hostIPC=true)', fields: ['spec.hostNetwork', 'spec.hostPID', 'spec.hostIPC'] },
  },
  { name: 'privileged false', level: 'baseline', spec: baseline({}, container({ privileged: false })) },
  {
    name: 'privileged',
    level: 'baseline',
    spec: baseline({}, container({ privileged: true })),
    expect: { check: 'privileged', message: 'privileged (container "c" must not set securityContext.privileged=true)', fields: ['spec.containers[0].securityContext.privileged'] },
  },
  { name: 'default capabilities added', level: 'baseline', spec: baseline({}, container({ capabilities: { add: ['CHOWN', 'NET_BIND_SERVICE', 'SYS_CHROOT'] } })) },
  {
    name: 'non-default capabilities added',
    level: 'baseline',
    spec: baseline({}, container({ capabilities: { add: ['SYS_ADMIN', 'CHOWN', 'NET_RAW'] } })),
    expect: {
      check: 'capabilities_baseline',
      message: 'non-default capabilities (container "c" must not include "NET_RAW", "SYS_ADMIN" in securityContext.capabilities.add)',
      fields: ['spec.containers[0].securityContext.capabilities.add[0]', 'spec.containers[0].securityContext.capabilities.add[2]'],
    },
  },
  { name: 'emptyDir volume', level: 'baseline', spec: baseline({ volumes: [{ name: 'v', emptyDir: {} }] }) },
  {
    name: 'hostPath volume',
    level: 'baseline',
    spec: baseline({ volumes: [{ name: 'ok', emptyDir: {} }, { name: 'v', hostPath: { path: '/' } }] }),
    expect: { check: 'hostPathVolumes', message: 'hostPath volumes (volume "v")', fields: ['spec.volumes[1].hostPath'] },
  },
  { name: 'container port without hostPort', level: 'baseline', spec: baseline({}, container(undefined, { ports: [{ containerPort: 80 }, { containerPort: 81, hostPort: 0 }] })) },
  {
    name: 'hostPorts',
    level: 'baseline',
    spec: { containers: [container(undefined, { ports: [{ containerPort: 80, hostPort: 8080 }, { containerPort: 81, hostPort: 0 }] }), container(undefined, { ports: [{ containerPort: 90, hostPort: 9 }] }, 'd')] },
    expect: { check: 'hostPorts', message: 'hostPort (containers "c", "d" use hostPorts 8080, 9)', fields: ['spec.containers[0].ports[0].hostPort', 'spec.containers[1].ports[0].hostPort'] },
  },
  {
    name: 'AppArmor annotations runtime/default and localhost/*',
    level: 'baseline',
    spec: baseline(),
    metadata: { annotations: { 'container.apparmor.security.beta.kubernetes.io/c': 'runtime/default', 'container.apparmor.security.beta.kubernetes.io/d': 'localhost/custom' } },
  },
  {
    name: 'AppArmor annotation unconfined',
    level: 'baseline',
    spec: baseline(),
    metadata: { annotations: { 'container.apparmor.security.beta.kubernetes.io/c': 'unconfined' } },
    expect: {
      check: 'appArmorProfile',
      message: 'forbidden AppArmor profile (annotation must not set AppArmor profile type to "container.apparmor.security.beta.kubernetes.io/c="unconfined"")',
      fields: ['metadata.annotations[container.apparmor.security.beta.kubernetes.io/c]'],
    },
  },
  {
    name: 'appArmorProfile RuntimeDefault and Localhost',
    level: 'baseline',
    spec: baseline({ securityContext: { appArmorProfile: { type: 'RuntimeDefault' } } }, container({ appArmorProfile: { type: 'Localhost', localhostProfile: 'p' } })),
  },
  {
    name: 'appArmorProfile Unconfined',
    level: 'baseline',
    spec: baseline({ securityContext: { appArmorProfile: { type: 'Unconfined' } } }, container({ appArmorProfile: { type: 'Unconfined' } })),
    expect: {
      check: 'appArmorProfile',
      message: 'forbidden AppArmor profile (pod and container "c" must not set AppArmor profile type to "Unconfined")',
      fields: ['spec.securityContext.appArmorProfile.type', 'spec.containers[0].securityContext.appArmorProfile.type'],
    },
  },
  { name: 'SELinux allowed type and level', level: 'baseline', spec: baseline({ securityContext: { seLinuxOptions: { level: 's0:c123,c456' } } }, container({ seLinuxOptions: { type: 'container_engine_t' } })) },
  {
    name: 'SELinux type, user and role',
    level: 'baseline',
    spec: baseline({ securityContext: { seLinuxOptions: { user: 'system_u', role: 'r' } } }, container({ seLinuxOptions: { type: 'spc_t' } })),
    expect: {
      check: 'seLinuxOptions',
      message: 'seLinuxOptions (pod and container "c" set forbidden securityContext.seLinuxOptions: type "spc_t"; user may not be set; role may not be set)',
      fields: ['spec.securityContext.seLinuxOptions.user', 'spec.securityContext.seLinuxOptions.role', 'spec.containers[0].securityContext.seLinuxOptions.type'],
    },
  },
  { name: 'procMount Default', level: 'baseline', spec: baseline({}, container({ procMount: 'Default' })) },
  {
    name: 'procMount Unmasked',
    level: 'baseline',
    spec: baseline({}, container({ procMount: 'Unmasked' })),
    expect: { check: 'procMount', message: 'procMount (container "c" must not set securityContext.procMount to "Unmasked")', fields: ['spec.containers[0].securityContext.procMount'] },
  },
  { name: 'procMount Unmasked in a user namespace', level: 'baseline', spec: baseline({ hostUsers: false }, container({ procMount: 'Unmasked' })) },
  { name: 'seccomp unset or Localhost', level: 'baseline', spec: baseline({}, container({ seccompProfile: { type: 'Localhost', localhostProfile: 'p.json' } })) },
  {
    name: 'seccomp Unconfined',
    level: 'baseline',
    spec: baseline({ securityContext: { seccompProfile: { type: 'Unconfined' } } }),
    expect: { check: 'seccompProfile_baseline', message: 'seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")', fields: ['spec.securityContext.seccompProfile.type'] },
  },
  {
    name: 'safe sysctls',
    level: 'baseline',
    spec: baseline({ securityContext: { sysctls: ['kernel.shm_rmid_forced', 'net.ipv4.ip_local_reserved_ports', 'net.ipv4.tcp_keepalive_time', 'net.ipv4.tcp_rmem', 'net.ipv4.tcp_wmem'].map((name) => ({ name, value: '1' })) } }),
  },
  {
    name: 'unsafe sysctls',
    level: 'baseline',
    spec: baseline({ securityContext: { sysctls: [{ name: 'kernel.msgmax', value: '1' }, { name: 'net.ipv4.tcp_syncookies', value: '1' }, { name: 'net.core.somaxconn', value: '1' }] } }),
    expect: { check: 'sysctls', message: 'forbidden sysctls (kernel.msgmax, net.core.somaxconn)', fields: ['spec.securityContext.sysctls[0].name', 'spec.securityContext.sysctls[2].name'] },
  },
  { name: 'probe without host', level: 'baseline', spec: baseline({}, container(undefined, { livenessProbe: { httpGet: { port: 80, path: '/' } }, lifecycle: { preStop: { httpGet: { port: 80, host: '' } } } })) },
  {
    name: 'probe and lifecycle hosts',
    level: 'baseline',
    spec: baseline({}, container(undefined, { livenessProbe: { httpGet: { port: 80, host: '10.0.0.1' } }, lifecycle: { postStart: { tcpSocket: { port: 22, host: 'db' } } } })),
    expect: {
      check: 'hostProbesAndHostLifecycle',
      message: 'probe or lifecycle host (container "c" uses probe or lifecycle hosts "10.0.0.1", "db")',
      fields: ['spec.containers[0].livenessProbe.httpGet.host', 'spec.containers[0].lifecycle.postStart.tcpSocket.host'],
    },
  },
  // --- restricted -----------------------------------------------------------------------------
  { name: 'restricted-compliant pod', level: 'restricted', spec: restricted() },
  {
    name: 'allowed volume types',
    level: 'restricted',
    spec: restricted({}, { volumes: ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'image', 'persistentVolumeClaim', 'projected', 'secret'].map((t, i) => ({ name: `v${i}`, [t]: {} })) }),
  },
  {
    name: 'restricted volume types (hostPath reported once)',
    level: 'restricted',
    spec: restricted({}, { volumes: [{ name: 'a', nfs: { server: 's', path: '/' } }, { name: 'b', configMap: { name: 'x' } }, { name: 'c', hostPath: { path: '/' } }] }),
    expect: {
      check: 'restrictedVolumes',
      message: 'restricted volume types (volumes "a", "c" use restricted volume types "hostPath", "nfs")',
      fields: ['spec.volumes[0].nfs', 'spec.volumes[2].hostPath'],
    },
  },
  {
    name: 'allowPrivilegeEscalation unset',
    level: 'restricted',
    spec: restricted({ allowPrivilegeEscalation: undefined }),
    expect: {
      check: 'allowPrivilegeEscalation',
      message: 'allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false)',
      fields: ['spec.containers[0].securityContext.allowPrivilegeEscalation'],
    },
  },
  { name: 'runAsNonRoot at pod level', level: 'restricted', spec: restricted({ runAsNonRoot: undefined }, { securityContext: { runAsNonRoot: true } }) },
  {
    name: 'runAsNonRoot unset',
    level: 'restricted',
    spec: restricted({ runAsNonRoot: undefined }),
    expect: { check: 'runAsNonRoot', message: 'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true)', fields: ['spec.containers[0].securityContext.runAsNonRoot'] },
  },
  {
    name: 'runAsNonRoot false overrides a pod-level true',
    level: 'restricted',
    spec: restricted({ runAsNonRoot: false }, { securityContext: { runAsNonRoot: true } }),
    expect: { check: 'runAsNonRoot', message: 'runAsNonRoot != true (container "c" must not set securityContext.runAsNonRoot=false)', fields: ['spec.containers[0].securityContext.runAsNonRoot'] },
  },
  { name: 'runAsUser non-zero', level: 'restricted', spec: restricted({ runAsUser: 1000 }, { securityContext: { runAsUser: 1000 } }) },
  {
    name: 'runAsUser 0',
    level: 'restricted',
    spec: restricted({}, { securityContext: { runAsUser: 0 } }),
    expect: { check: 'runAsUser', message: 'runAsUser=0 (pod must not set runAsUser=0)', fields: ['spec.securityContext.runAsUser'] },
  },
  { name: 'seccomp at pod level', level: 'restricted', spec: restricted({ seccompProfile: undefined }, { securityContext: { seccompProfile: { type: 'RuntimeDefault' } } }) },
  {
    name: 'seccomp unset',
    level: 'restricted',
    spec: restricted({ seccompProfile: undefined }),
    expect: {
      check: 'seccompProfile_restricted',
      message: 'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")',
      fields: ['spec.containers[0].securityContext.seccompProfile.type'],
    },
  },
  {
    name: 'seccomp Unconfined (reported once)',
    level: 'restricted',
    spec: restricted({ seccompProfile: { type: 'Unconfined' } }),
    expect: { check: 'seccompProfile_restricted', message: 'seccompProfile (container "c" must not set securityContext.seccompProfile.type to "Unconfined")', fields: ['spec.containers[0].securityContext.seccompProfile.type'] },
  },
  { name: 'drop ALL, add NET_BIND_SERVICE', level: 'restricted', spec: restricted({ capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] } }) },
  {
    name: 'capabilities not dropped',
    level: 'restricted',
    spec: restricted({ capabilities: undefined }),
    expect: { check: 'capabilities_restricted', message: 'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"])', fields: ['spec.containers[0].securityContext.capabilities.drop'] },
  },
  {
    name: 'capabilities added beyond NET_BIND_SERVICE (reported once)',
    level: 'restricted',
    spec: restricted({ capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE', 'SYS_TIME'] } }),
    expect: {
      check: 'capabilities_restricted',
      message: 'unrestricted capabilities (container "c" must not include "SYS_TIME" in securityContext.capabilities.add)',
      fields: ['spec.containers[0].securityContext.capabilities.add[1]'],
    },
  },
  {
    name: 'procMount Unmasked in a user namespace',
    level: 'restricted',
    spec: restricted({ procMount: 'Unmasked' }, { hostUsers: false }),
    expect: { check: 'procMount_restricted', message: 'procMount (container "c" must not set securityContext.procMount to "Unmasked")', fields: ['spec.containers[0].securityContext.procMount'] },
  },
];

describe('PodSecurity evaluatePod', () => {
  for (const c of cases) {
    it(`${c.level}: ${c.name} ${c.expect ? 'is forbidden' : 'passes'}`, () => {
      const violations = evaluatePod(c.level, c.metadata ?? {}, c.spec);
      expect(violations).to.deep.equal(c.expect ? [c.expect] : []);
      expect(evaluatePod('privileged', c.metadata ?? {}, c.spec)).to.deep.equal([]);
    });
  }

  it('applies baseline checks at restricted too', () => {
    const spec = restricted({ privileged: true }, { hostNetwork: true });
    expect(evaluatePod('restricted', {}, spec).map((v) => v.check)).to.deep.equal(['hostNamespaces', 'privileged']);
  });

  it('lists checks per level, restricted replacing the baseline checks it tightens', () => {
    expect(checksAt('privileged')).to.deep.equal([]);
    expect(checksAt('baseline')).to.have.length(12);
    const r = checksAt('restricted');
    expect(r).to.include.members(['privileged', 'sysctls', 'runAsNonRoot', 'restrictedVolumes']);
    expect(r).to.not.include.members(['capabilities_baseline', 'hostPathVolumes', 'seccompProfile_baseline', 'procMount']);
  });

  it('aggregates in upstream order: baseline checks first, then restricted ones', () => {
    const spec = { securityContext: { sysctls: [{ name: 'net.core.somaxconn', value: '1' }] }, containers: [container({ seLinuxOptions: { user: 'u' } }, {}, 'my-pod')] };
    expect(evaluatePod('restricted', {}, spec).map((v) => v.message)).to.deep.equal([
      'seLinuxOptions (container "my-pod" set forbidden securityContext.seLinuxOptions: user may not be set)',
      'forbidden sysctls (net.core.somaxconn)',
      'allowPrivilegeEscalation != false (container "my-pod" must set securityContext.allowPrivilegeEscalation=false)',
      'unrestricted capabilities (container "my-pod" must set securityContext.capabilities.drop=["ALL"])',
      'runAsNonRoot != true (pod or container "my-pod" must set securityContext.runAsNonRoot=true)',
      'seccompProfile (pod or container "my-pod" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")',
    ]);
  });

  it('visits init, regular and ephemeral containers, in that order, with their paths', () => {
    const spec = {
      containers: [container({ privileged: true }, {}, 'app')],
      initContainers: [container({ privileged: true }, {}, 'init')],
      ephemeralContainers: [container({ privileged: true }, {}, 'debug')],
    };
    expect(evaluatePod('baseline', {}, spec)).to.deep.equal([
      {
        check: 'privileged',
        message: 'privileged (containers "init", "app", "debug" must not set securityContext.privileged=true)',
        fields: ['spec.initContainers[0].securityContext.privileged', 'spec.containers[0].securityContext.privileged', 'spec.ephemeralContainers[0].securityContext.privileged'],
      },
    ]);
  });

  it('requires every container to be covered when the pod level does not set runAsNonRoot/seccomp', () => {
    const spec = { containers: [container(RESTRICTED_SC, {}, 'a'), container({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } }, {}, 'b')] };
    expect(evaluatePod('restricted', {}, spec).map((v) => v.message)).to.deep.equal([
      'runAsNonRoot != true (pod or container "b" must set securityContext.runAsNonRoot=true)',
      'seccompProfile (pod or container "b" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")',
    ]);
  });

  it('exempts Windows pods from the Linux-only restricted checks', () => {
    const spec = { os: { name: 'windows' }, containers: [container({ runAsNonRoot: true })] };
    expect(evaluatePod('restricted', {}, spec)).to.deep.equal([]);
    expect(evaluatePod('restricted', {}, { os: { name: 'windows' }, containers: [container()] }).map((v) => v.check)).to.deep.equal(['runAsNonRoot']);
  });

  it('relaxes runAsNonRoot and runAsUser for pods in a user namespace', () => {
    const spec = restricted({ runAsNonRoot: undefined, runAsUser: 0 }, { hostUsers: false });
    expect(evaluatePod('restricted', {}, spec)).to.deep.equal([]);
    expect(evaluatePod('restricted', {}, { ...spec, hostUsers: true }).map((v) => v.check)).to.deep.equal(['runAsNonRoot', 'runAsUser']);
  });

  it('writes field paths under specPath, and template annotations under its metadata', () => {
    const violations = evaluatePod('baseline', { annotations: { 'container.apparmor.security.beta.kubernetes.io/c': 'unconfined' } }, baseline({}, container({ privileged: true })), 'spec.template.spec');
    expect(violations.flatMap((v) => v.fields)).to.deep.equal(['spec.template.metadata.annotations[container.apparmor.security.beta.kubernetes.io/c]', 'spec.template.spec.containers[0].securityContext.privileged']);
  });

  it('never throws on malformed input', () => {
    for (const level of ['baseline', 'restricted'] as const) {
      expect(() => evaluatePod(level, null, null)).to.not.throw();
      expect(() => evaluatePod(level, { annotations: 5 }, { containers: 'x', volumes: [null, 3], securityContext: { sysctls: [null] }, initContainers: [null] })).to.not.throw();
    }
    // a non-boolean runAsNonRoot is not `true`
    expect(evaluatePod('restricted', {}, restricted({ runAsNonRoot: 'yes' })).map((v) => v.check)).to.deep.equal(['runAsNonRoot']);
  });
});

describe('PodSecurity podSpecOf', () => {
  const template = { metadata: { labels: { app: 'a' } }, spec: { containers: [container()] } };
  const cases: Array<[string, Json, string | undefined]> = [
    ['Pod', { kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [] } }, 'spec'],
    ['Deployment', { kind: 'Deployment', spec: { template } }, 'spec.template.spec'],
    ['ReplicaSet', { kind: 'ReplicaSet', spec: { template } }, 'spec.template.spec'],
    ['StatefulSet', { kind: 'StatefulSet', spec: { template } }, 'spec.template.spec'],
    ['DaemonSet', { kind: 'DaemonSet', spec: { template } }, 'spec.template.spec'],
    ['Job', { kind: 'Job', spec: { template } }, 'spec.template.spec'],
    ['ReplicationController', { kind: 'ReplicationController', spec: { template } }, 'spec.template.spec'],
    ['CronJob', { kind: 'CronJob', spec: { jobTemplate: { spec: { template } } } }, 'spec.jobTemplate.spec.template.spec'],
    ['PodTemplate', { kind: 'PodTemplate', template }, 'template.spec'],
    ['ReplicationController without a template', { kind: 'ReplicationController', spec: {} }, undefined],
    ['ConfigMap', { kind: 'ConfigMap', data: {} }, undefined],
  ];
  for (const [name, object, path] of cases) {
    it(`${name} -> ${path ?? 'none'}`, () => {
      const found = podSpecOf(object);
      expect(found?.path).to.equal(path);
      if (path && path !== 'spec') {
        expect(found?.metadata).to.deep.equal(template.metadata);
        expect(found?.spec).to.equal(template.spec);
      }
    });
  }

  it('takes the kind from the caller when the object has none', () => {
    expect(podSpecOf({ spec: { template } }, 'Deployment')?.path).to.equal('spec.template.spec');
    expect(podSpecOf(undefined)).to.equal(undefined);
    expect(podSpecOf({ kind: 'constructor', spec: {} })).to.equal(undefined);
  });
});

describe('PodSecurity namespace policy', () => {
  it('uses the defaults for absent labels', () => {
    expect(namespacePolicy(undefined)).to.deep.equal({
      policy: { enforce: { level: 'privileged', version: 'latest' }, audit: { level: 'privileged', version: 'latest' }, warn: { level: 'privileged', version: 'latest' } },
      errors: [],
    });
  });

  it('reads levels and versions', () => {
    const { policy, errors } = namespacePolicy({ 'pod-security.kubernetes.io/enforce': 'baseline', 'pod-security.kubernetes.io/enforce-version': 'v1.29', 'pod-security.kubernetes.io/warn': 'restricted' });
    expect(errors).to.deep.equal([]);
    expect(policy.enforce).to.deep.equal({ level: 'baseline', version: 'v1.29' });
    expect(policy.warn).to.deep.equal({ level: 'restricted', version: 'latest' });
  });

  it('fails closed for enforce and open for warn and audit on invalid values', () => {
    const { policy, errors } = namespacePolicy({
      'pod-security.kubernetes.io/enforce': 'strict',
      'pod-security.kubernetes.io/warn': 'loud',
      'pod-security.kubernetes.io/audit-version': '1.25',
    });
    expect(policy.enforce.level).to.equal('restricted');
    expect(policy.warn.level).to.equal('privileged');
    expect(policy.audit.version).to.equal('latest');
    expect(errors.map((e) => [e.label, e.message])).to.deep.equal([
      ['pod-security.kubernetes.io/enforce', 'must be one of privileged, baseline, restricted'],
      ['pod-security.kubernetes.io/audit-version', 'must be "latest" or "v1.x"'],
      ['pod-security.kubernetes.io/warn', 'must be one of privileged, baseline, restricted'],
    ]);
  });

  it('accepts v1.0 and v1.NN but not v1.01 or v2.0', () => {
    for (const [v, ok] of [['v1.0', true], ['v1.35', true], ['latest', true], ['v1.01', false], ['v2.0', false], ['', false]] as const) {
      expect(namespacePolicy({ 'pod-security.kubernetes.io/warn-version': v }).errors, v).to.have.length(ok ? 0 : 1);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The admission step
// ---------------------------------------------------------------------------------------------

const NS_LABELS: Record<string, Record<string, string>> = {
  open: {},
  strict: { 'pod-security.kubernetes.io/enforce': 'restricted' },
  base: { 'pod-security.kubernetes.io/enforce': 'baseline', 'pod-security.kubernetes.io/warn': 'restricted', 'pod-security.kubernetes.io/warn-version': 'v1.30' },
  watched: { 'pod-security.kubernetes.io/warn': 'restricted', 'pod-security.kubernetes.io/audit': 'baseline' },
  broken: { 'pod-security.kubernetes.io/enforce': 'nope' },
  'kube-system': { 'pod-security.kubernetes.io/enforce': 'restricted' },
};

const step = (over: Partial<PodSecurityOptions> = {}) =>
  podSecurity({ namespaceLabels: (ns) => NS_LABELS[ns], exemptions: { namespaces: ['kube-system'], usernames: ['system:serviceaccount:kube-system:daemon-set-controller'], runtimeClasses: ['kata'] }, ...over });

const podObject = (namespace: string, spec: Json, name = 'p', metadata: Json = {}): ApiObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, ...metadata }, spec });
const privilegedPod = (namespace: string, name = 'p'): ApiObject => podObject(namespace, baseline({}, container({ privileged: true })), name);

async function denial(p: Promise<void>): Promise<AdmissionDenied> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(AdmissionDenied);
    return err as AdmissionDenied;
  }
  throw new Error('expected the request to be refused');
}

describe('PodSecurity admission: pods', () => {
  it('handles pods, namespaces and workloads on CREATE and UPDATE only', () => {
    const s = step();
    expect(s.handles!(admissionRequest({ object: privilegedPod('strict') }))).to.equal(true);
    expect(s.handles!(admissionRequest({ object: { kind: 'Namespace', metadata: { name: 'x' } } }))).to.equal(true);
    expect(s.handles!(admissionRequest({ object: { kind: 'Deployment', metadata: { name: 'd', namespace: 'strict' } } }))).to.equal(true);
    expect(s.handles!(admissionRequest({ object: { kind: 'ConfigMap', metadata: { name: 'c', namespace: 'strict' } } }))).to.equal(false);
    expect(s.handles!(admissionRequest({ operation: 'DELETE', oldObject: privilegedPod('strict') }))).to.equal(false);
    expect(s.handles!(admissionRequest({ object: { kind: 'X' }, resource: { group: '', version: 'v1', resource: 'constructor' } }))).to.equal(false);
  });

  it('refuses a pod violating the enforce level, with upstream message and one cause per field', async () => {
    const req = admissionRequest({ object: podObject('strict', { containers: [container({ privileged: true })] }, 'web') });
    const err = await denial(step().validate!(req));
    expect(err.code).to.equal(403);
    expect(err.message).to.equal(
      'pods "web" is forbidden: violates PodSecurity "restricted:latest": privileged (container "c" must not set securityContext.privileged=true), ' +
        'allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), ' +
        'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), ' +
        'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), ' +
        'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")',
    );
    expect(err.causes.map((c) => c.field)).to.deep.equal([
      'spec.containers[0].securityContext.privileged',
      'spec.containers[0].securityContext.allowPrivilegeEscalation',
      'spec.containers[0].securityContext.capabilities.drop',
      'spec.containers[0].securityContext.runAsNonRoot',
      'spec.containers[0].securityContext.seccompProfile.type',
    ]);
    expect(err.causes[0]).to.deep.equal({ field: 'spec.containers[0].securityContext.privileged', reason: 'FieldValueForbidden', message: 'privileged (container "c" must not set securityContext.privileged=true)' });
    expect(req.warnings).to.deep.equal([]);
  });

  it('admits a compliant pod silently', async () => {
    const req = admissionRequest({ object: podObject('strict', restricted()) });
    await step().validate!(req);
    expect(req.warnings).to.deep.equal([]);
  });

  it('warns (with the requested version) when only the warn level is violated', async () => {
    const req = admissionRequest({ object: podObject('base', baseline()) });
    await step().validate!(req);
    expect(req.warnings).to.have.length(1);
    expect(req.warnings[0]).to.match(/^would violate PodSecurity "restricted:v1\.30": allowPrivilegeEscalation != false \(container "c" must set/);
  });

  it('does not warn on a request it refuses', async () => {
    const req = admissionRequest({ object: privilegedPod('base') });
    const err = await denial(step().validate!(req));
    expect(err.message).to.equal('pods "p" is forbidden: violates PodSecurity "baseline:latest": privileged (container "c" must not set securityContext.privileged=true)');
    expect(req.warnings).to.deep.equal([]);
  });

  it('lets anything through an unlabelled namespace, and uses configured defaults', async () => {
    await step().validate!(admissionRequest({ object: privilegedPod('open') }));
    await step().validate!(admissionRequest({ object: privilegedPod('unknown') }));
    const strictByDefault = step({ defaults: { enforce: 'baseline', enforceVersion: 'v1.31' } });
    const err = await denial(strictByDefault.validate!(admissionRequest({ object: privilegedPod('open') })));
    expect(err.message).to.contain('violates PodSecurity "baseline:v1.31"');
  });

  it('fails closed (restricted) when the enforce label is invalid', async () => {
    const err = await denial(step().validate!(admissionRequest({ object: podObject('broken', baseline()) })));
    expect(err.message).to.contain('violates PodSecurity "restricted:latest"');
  });

  it('refuses when the namespace cannot be read', async () => {
    const s = step({ namespaceLabels: () => Promise.reject(new Error('api down')) });
    let thrown: unknown;
    await s.validate!(admissionRequest({ object: privilegedPod('strict') })).catch((e: unknown) => (thrown = e));
    expect(thrown).to.be.instanceOf(Error).and.not.instanceOf(AdmissionDenied);
  });

  it('skips exempt namespaces, users and runtime classes', async () => {
    const s = step();
    await s.validate!(admissionRequest({ object: privilegedPod('kube-system') }));
    await s.validate!(admissionRequest({ object: privilegedPod('strict'), user: { username: 'system:serviceaccount:kube-system:daemon-set-controller', groups: [] } }));
    await s.validate!(admissionRequest({ object: podObject('strict', baseline({ runtimeClassName: 'kata' }, container({ privileged: true }))) }));
    await denial(s.validate!(admissionRequest({ object: podObject('strict', baseline({ runtimeClassName: 'runc' }, container({ privileged: true }))) })));
  });

  it('re-evaluates updates only when something it checks changed', async () => {
    const s = step();
    const old = privilegedPod('strict');
    const relabelled = { ...old, metadata: { ...old.metadata, labels: { tier: 'web' } } };
    await s.validate!(admissionRequest({ operation: 'UPDATE', object: relabelled, oldObject: old }));
    const newImage = podObject('strict', baseline({}, container({ privileged: true }, { image: 'nginx:2' })));
    await denial(s.validate!(admissionRequest({ operation: 'UPDATE', object: newImage, oldObject: old })));
  });

  it('treats key order, labels and tolerations as insignificant, images and ephemeral containers as significant', () => {
    const a = podObject('ns', { containers: [{ name: 'c', image: 'x', securityContext: { privileged: true, runAsUser: 1 } }] });
    const reordered = podObject('ns', { tolerations: [{ key: 'k' }], containers: [{ securityContext: { runAsUser: 1, privileged: true }, image: 'x', name: 'c' }] }, 'p', { labels: { a: 'b' } });
    expect(isSignificantPodUpdate(reordered, a)).to.equal(false);
    expect(isSignificantPodUpdate(podObject('ns', { containers: [{ name: 'c', image: 'y' }] }), podObject('ns', { containers: [{ name: 'c', image: 'x' }] }))).to.equal(true);
    const withDebug = podObject('ns', { containers: [{ name: 'c', image: 'x' }], ephemeralContainers: [{ name: 'd', image: 'busybox' }] });
    expect(isSignificantPodUpdate(withDebug, podObject('ns', { containers: [{ name: 'c', image: 'x' }] }))).to.equal(true);
  });

  it('skips status and other non-spec subresources, but checks ephemeralcontainers', async () => {
    const s = step();
    const old = podObject('strict', restricted());
    await s.validate!(admissionRequest({ operation: 'UPDATE', subresource: 'status', object: privilegedPod('strict'), oldObject: old }));
    await s.validate!(admissionRequest({ operation: 'CREATE', subresource: 'binding', object: { kind: 'Binding', metadata: { name: 'p', namespace: 'strict' } } }));
    const debug = podObject('strict', { ...restricted(), ephemeralContainers: [container({ privileged: true }, {}, 'debugger')] });
    const err = await denial(s.validate!(admissionRequest({ operation: 'UPDATE', subresource: 'ephemeralcontainers', object: debug, oldObject: old })));
    expect(err.message).to.contain('privileged (container "debugger" must not set securityContext.privileged=true)');
    expect(err.causes[0]?.field).to.equal('spec.ephemeralContainers[0].securityContext.privileged');
  });

  it('reports audit-level violations to the audit sink without refusing or warning', async () => {
    const audits: string[] = [];
    const req = admissionRequest({ object: podObject('watched', restricted({ privileged: true })) });
    await step({ audit: (_r, m) => audits.push(m) }).validate!(req);
    expect(audits).to.deep.equal(['would violate PodSecurity "baseline:latest": privileged (container "c" must not set securityContext.privileged=true)']);
    expect(req.warnings).to.deep.equal(['would violate PodSecurity "restricted:latest": privileged (container "c" must not set securityContext.privileged=true)']);
  });

  it('refuses a construction with invalid defaults', () => {
    expect(() => podSecurity({ namespaceLabels: () => undefined, defaults: { enforce: 'strict' as PodSecurityLevel } })).to.throw(/defaults\.enforce must be one of/);
    expect(() => podSecurity({ namespaceLabels: () => undefined, defaults: { warnVersion: '1.2' } })).to.throw(/defaults\.warnVersion/);
  });
});

describe('PodSecurity admission: workloads', () => {
  const deployment = (namespace: string, spec: Json): ApiObject => ({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd', namespace }, spec: { template: { metadata: {}, spec } } });

  it('never refuses a workload, even in a restricted enforce namespace', async () => {
    const req = admissionRequest({ object: deployment('strict', baseline({}, container({ privileged: true }))) });
    await step().validate!(req);
    expect(req.warnings).to.deep.equal([]);
  });

  it('warns about a workload template violating the warn level', async () => {
    const req = admissionRequest({ object: deployment('base', baseline({}, container({ privileged: true }))) });
    await step().validate!(req);
    expect(req.warnings).to.have.length(1);
    expect(req.warnings[0]).to.match(/^would violate PodSecurity "restricted:v1\.30": privileged \(container "c" must not set securityContext\.privileged=true\), allowPrivilegeEscalation != false/);
  });

  it('finds the template of a CronJob by its resource', async () => {
    const cronJob: ApiObject = { kind: 'CronJob', metadata: { name: 'cj', namespace: 'base' }, spec: { jobTemplate: { spec: { template: { spec: baseline({ hostPID: true }) } } } } };
    const req = admissionRequest({ object: cronJob, resource: { group: 'batch', version: 'v1', resource: 'cronjobs' }, kind: { group: 'batch', version: 'v1', kind: 'CronJob' } });
    await step().validate!(req);
    expect(req.warnings[0]).to.contain('host namespaces (hostPID=true)');
  });

  it('ignores workload subresources and exempt runtime classes', async () => {
    const s = step();
    const scaled = admissionRequest({ operation: 'UPDATE', subresource: 'scale', object: deployment('base', baseline()) });
    await s.validate!(scaled);
    expect(scaled.warnings).to.deep.equal([]);
    const kata = admissionRequest({ object: deployment('base', baseline({ runtimeClassName: 'kata' })) });
    await s.validate!(kata);
    expect(kata.warnings).to.deep.equal([]);
  });
});

describe('PodSecurity admission: namespaces', () => {
  const ns = (name: string, labels: Record<string, string> = {}): ApiObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } });

  it('refuses a namespace created with an invalid label, naming it (422)', async () => {
    const err = await denial(step().validate!(admissionRequest({ object: ns('team', { 'pod-security.kubernetes.io/enforce': 'strict' }) })));
    expect(err.code).to.equal(422);
    expect(err.message).to.equal('Namespace "team" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted');
    expect(err.causes).to.deep.equal([{ field: 'metadata.labels[pod-security.kubernetes.io/enforce]', reason: 'FieldValueInvalid', message: 'Invalid value: "strict": must be one of privileged, baseline, restricted' }]);
  });

  it('lists every invalid label', async () => {
    const err = await denial(step().validate!(admissionRequest({ object: ns('team', { 'pod-security.kubernetes.io/warn': 'x', 'pod-security.kubernetes.io/enforce-version': 'v2' }) })));
    expect(err.message).to.equal(
      'Namespace "team" is invalid: [metadata.labels[pod-security.kubernetes.io/enforce-version]: Invalid value: "v2": must be "latest" or "v1.x", ' +
        'metadata.labels[pod-security.kubernetes.io/warn]: Invalid value: "x": must be one of privileged, baseline, restricted]',
    );
  });

  it('accepts valid labels, and keeps accepting an unchanged invalid label on update', async () => {
    const s = step();
    await s.validate!(admissionRequest({ object: ns('team', { 'pod-security.kubernetes.io/enforce': 'baseline', 'pod-security.kubernetes.io/enforce-version': 'v1.33' }) }));
    const bad = ns('team', { 'pod-security.kubernetes.io/audit': 'x' });
    await s.validate!(admissionRequest({ operation: 'UPDATE', object: { ...bad, metadata: { ...bad.metadata, annotations: { a: 'b' } } }, oldObject: bad }));
    await denial(s.validate!(admissionRequest({ operation: 'UPDATE', object: ns('team', { 'pod-security.kubernetes.io/audit': 'y' }), oldObject: bad })));
  });

  it('warns about existing pods when the enforce level is tightened', async () => {
    const listed: string[] = [];
    const pods = [privilegedPod('team', 'p-b'), podObject('team', restricted(), 'ok'), privilegedPod('team', 'p-a'), podObject('team', baseline({ hostNetwork: true }), 'net')];
    const s = step({ listPods: async (namespace) => (listed.push(namespace), pods) });
    const req = admissionRequest({ operation: 'UPDATE', object: ns('team', { 'pod-security.kubernetes.io/enforce': 'baseline' }), oldObject: ns('team') });
    await s.validate!(req);
    expect(listed).to.deep.equal(['team']);
    expect(req.warnings).to.deep.equal([
      'existing pods in namespace "team" violate the new PodSecurity enforce level "baseline:latest"',
      'net: host namespaces',
      'p-a (and 1 other pod): privileged',
    ]);
  });

  it('does not list pods when the level is relaxed, unchanged, privileged or the namespace exempt', async () => {
    let calls = 0;
    const s = step({ listPods: async () => (calls++, []) });
    const label = (level: string): Record<string, string> => ({ 'pod-security.kubernetes.io/enforce': level });
    await s.validate!(admissionRequest({ operation: 'UPDATE', object: ns('team', label('baseline')), oldObject: ns('team', label('restricted')) }));
    await s.validate!(admissionRequest({ operation: 'UPDATE', object: ns('team', label('baseline')), oldObject: ns('team', label('baseline')) }));
    await s.validate!(admissionRequest({ operation: 'UPDATE', object: ns('team', label('privileged')), oldObject: ns('team') }));
    await s.validate!(admissionRequest({ operation: 'UPDATE', object: ns('kube-system', label('restricted')), oldObject: ns('kube-system') }));
    await s.validate!(admissionRequest({ object: ns('fresh', label('restricted')) }));
    expect(calls).to.equal(0);
  });

  it('says so when the pods cannot be listed, or only some were checked', async () => {
    const failing = step({ listPods: () => Promise.reject(new Error('boom')) });
    const req = admissionRequest({ operation: 'UPDATE', object: ns('team', { 'pod-security.kubernetes.io/enforce': 'restricted' }), oldObject: ns('team') });
    await failing.validate!(req);
    expect(req.warnings).to.deep.equal(['failed to list pods while checking new PodSecurity enforce level']);

    const capped = step({ maxPodsToCheck: 2, listPods: async () => [privilegedPod('team', 'a'), privilegedPod('team', 'b'), privilegedPod('team', 'c')] });
    const req2 = admissionRequest({ operation: 'UPDATE', object: ns('team', { 'pod-security.kubernetes.io/enforce': 'baseline' }), oldObject: ns('team') });
    await capped.validate!(req2);
    expect(req2.warnings).to.deep.equal([
      'new PodSecurity enforce level only checked against the first 2 of 3 existing pods',
      'existing pods in namespace "team" violate the new PodSecurity enforce level "baseline:latest"',
      'a (and 1 other pod): privileged',
    ]);
  });
});

describe('PodSecurity plugin definition', () => {
  const validate = compileConfigSchema<PodSecurityConfig>(podSecurityPlugin.configSchema);

  it('is an admission plugin with id pod-security', () => {
    expect(podSecurityPlugin.id).to.equal('pod-security');
    expect(podSecurityPlugin.kind).to.equal('admission');
  });

  it('fills every default', () => {
    expect(validate(undefined)).to.deep.equal({
      ok: true,
      config: {
        defaults: { enforce: 'privileged', enforceVersion: 'latest', audit: 'privileged', auditVersion: 'latest', warn: 'privileged', warnVersion: 'latest' },
        exemptions: { usernames: [], namespaces: [], runtimeClasses: [] },
      },
    });
  });

  it('refuses unknown fields, levels and versions', () => {
    expect(validate({ defaults: { enforce: 'strict' } }).ok).to.equal(false);
    expect(validate({ defaults: { enforceVersion: '1.30' } }).ok).to.equal(false);
    expect(validate({ exemptions: { users: ['a'] } }).ok).to.equal(false);
    expect(validate({ mode: 'x' }).ok).to.equal(false);
    expect(validate({ defaults: { enforce: 'baseline', warnVersion: 'v1.30' }, exemptions: { namespaces: ['kube-system'] } }).ok).to.equal(true);
  });
});
