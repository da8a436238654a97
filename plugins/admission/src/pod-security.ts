/**
 * PodSecurity admission: the Pod Security Standards (privileged, baseline, restricted) enforced per
 * namespace through the `pod-security.kubernetes.io/*` labels, with Kubernetes' semantics and
 * messages (`k8s.io/pod-security-admission`), so users see the reasons they know from kubectl.
 *
 * - {@link evaluatePod} is the pure policy: every check of the newest standards (Kubernetes 1.36
 *   policy), table-testable, no I/O.
 * - {@link podSecurity} is the admission step (enforce refuses pods; warn and audit only report;
 *   workload templates are only warned about; namespace labels are validated).
 * - {@link podSecurityPlugin} wires it to a namespace informer.
 *
 * Versions: a namespace may pin `*-version: v1.N`; every version is evaluated with the newest
 * checks (older policy revisions are not kept), while messages still name the requested version.
 *
 * @module
 */
import { AdmissionDenied, definePlugin, isNotFound, untilAborted, type Admission, type AdmissionCause, type AdmissionRequest, type ApiObject } from '@kubernel/sdk';

// ---------------------------------------------------------------------------------------------
// Levels, findings and small helpers
// ---------------------------------------------------------------------------------------------

/** A Pod Security Standards level, from least to most strict. */
export type PodSecurityLevel = 'privileged' | 'baseline' | 'restricted';

/** The three levels, least strict first. */
export const POD_SECURITY_LEVELS: readonly PodSecurityLevel[] = ['privileged', 'baseline', 'restricted'];

/**
 * One failed check: `check` is the upstream check id (`privileged`, `runAsNonRoot`, ...), `message`
 * the upstream forbidden reason with its detail in parentheses (`privileged (container "c" must not
 * set securityContext.privileged=true)`), `fields` the offending field paths (never empty).
 */
export interface Violation {
  check: string;
  message: string;
  fields: string[];
}

type Json = Record<string, unknown>;

/** A check's verdict when it forbids: the upstream reason, its detail and the offending fields. */
interface Finding {
  readonly check: string;
  readonly reason: string;
  readonly detail: string;
  readonly fields: string[];
}

const asObject = (v: unknown): Json | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined);
const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const asString = (v: unknown): string => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));
const present = (v: unknown): boolean => v !== undefined && v !== null;
const plural = (one: string, many: string, n: number): string => (n === 1 ? one : many);
/** Go's `%q` for the strings that occur here. */
const quote = (s: string): string => JSON.stringify(s);
/** Upstream's joinQuote: `"a", "b"`. */
const joinQuote = (items: readonly string[]): string => (items.length === 0 ? '' : `"${items.join('", "')}"`);
const sorted = (items: Iterable<string>): string[] => [...new Set(items)].sort();
const containersPhrase = (names: readonly string[]): string => `${plural('container', 'containers', names.length)} ${joinQuote(names)}`;

/** A container of the pod being checked, with its field path. */
interface ContainerRef {
  readonly name: string;
  readonly path: string;
  readonly container: Json;
  readonly securityContext: Json | undefined;
}

/** Everything a check looks at. */
interface PodContext {
  readonly metadata: Json;
  readonly metadataPath: string;
  readonly spec: Json;
  readonly specPath: string;
  readonly podSecurityContext: Json | undefined;
  /** Init containers, containers, then ephemeral containers (upstream's visiting order). */
  readonly containers: readonly ContainerRef[];
  /** `spec.os.name == "windows"`: the Linux-only restricted checks do not apply. */
  readonly windows: boolean;
  /** `spec.hostUsers == false`: the pod runs in a user namespace (relaxes runAsNonRoot, runAsUser, baseline procMount). */
  readonly userNamespace: boolean;
}

function podContext(metadata: unknown, podSpec: unknown, specPath: string): PodContext {
  const spec = asObject(podSpec) ?? {};
  const containers: ContainerRef[] = [];
  for (const key of ['initContainers', 'containers', 'ephemeralContainers']) {
    asArray(spec[key]).forEach((c, i) => {
      const container = asObject(c) ?? {};
      containers.push({ name: asString(container.name), path: `${specPath}.${key}[${i}]`, container, securityContext: asObject(container.securityContext) });
    });
  }
  return {
    metadata: asObject(metadata) ?? {},
    metadataPath: specPath.endsWith('.spec') ? `${specPath.slice(0, -'.spec'.length)}.metadata` : 'metadata',
    spec,
    specPath,
    podSecurityContext: asObject(spec.securityContext),
    containers,
    windows: asObject(spec.os)?.name === 'windows',
    userNamespace: spec.hostUsers === false,
  };
}

// ---------------------------------------------------------------------------------------------
// The checks (upstream ids, reasons and detail formats; newest policy version)
// ---------------------------------------------------------------------------------------------

type CheckFn = (pod: PodContext) => Finding | undefined;

interface CheckDefinition {
  readonly id: string;
  readonly level: 'baseline' | 'restricted';
  /** Baseline checks this restricted check replaces at the restricted level. */
  readonly overrides?: readonly string[];
  readonly run: CheckFn;
}

const forbid = (check: string, reason: string, detail: string, fields: string[]): Finding => ({ check, reason, detail, fields });

const APPARMOR_ANNOTATION_PREFIX = 'container.apparmor.security.beta.kubernetes.io/';
const ALLOWED_APPARMOR_TYPES = new Set(['RuntimeDefault', 'Localhost']);
const allowedAppArmorAnnotation = (v: string): boolean => v === '' || v === 'runtime/default' || v.startsWith('localhost/');

const appArmorProfile: CheckFn = (pod) => {
  const setters: string[] = [];
  const fields: string[] = [];
  const badTypes = new Set<string>();
  const podProfile = asObject(pod.podSecurityContext?.appArmorProfile);
  if (podProfile && !ALLOWED_APPARMOR_TYPES.has(asString(podProfile.type))) {
    setters.push('pod');
    badTypes.add(asString(podProfile.type));
    fields.push(`${pod.specPath}.securityContext.appArmorProfile.type`);
  }
  const badContainers: string[] = [];
  for (const c of pod.containers) {
    const profile = asObject(c.securityContext?.appArmorProfile);
    if (profile && !ALLOWED_APPARMOR_TYPES.has(asString(profile.type))) {
      badContainers.push(c.name);
      badTypes.add(asString(profile.type));
      fields.push(`${c.path}.securityContext.appArmorProfile.type`);
    }
  }
  if (badContainers.length > 0) setters.push(containersPhrase(badContainers));
  const badAnnotations: string[] = [];
  for (const [key, value] of Object.entries(asObject(pod.metadata.annotations) ?? {})) {
    if (key.startsWith(APPARMOR_ANNOTATION_PREFIX) && !allowedAppArmorAnnotation(asString(value))) {
      badAnnotations.push(`${key}=${quote(asString(value))}`);
      fields.push(`${pod.metadataPath}.annotations[${key}]`);
    }
  }
  badAnnotations.sort();
  if (badAnnotations.length > 0) setters.push(plural('annotation', 'annotations', badAnnotations.length));
  if (setters.length === 0) return undefined;
  const values = [...sorted(badTypes), ...badAnnotations];
  return forbid(
    'appArmorProfile',
    plural('forbidden AppArmor profile', 'forbidden AppArmor profiles', values.length),
    `${setters.join(' and ')} must not set AppArmor profile type to ${joinQuote(values)}`,
    fields,
  );
};

/** Docker's default capability set: what baseline lets a container add. */
const BASELINE_CAPABILITIES = new Set(['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT']);

const capabilitiesBaseline: CheckFn = (pod) => {
  const badContainers: string[] = [];
  const badCapabilities: string[] = [];
  const fields: string[] = [];
  for (const c of pod.containers) {
    const capabilities = asObject(c.securityContext?.capabilities);
    if (!capabilities) continue;
    let valid = true;
    asArray(capabilities.add).forEach((cap, j) => {
      if (!BASELINE_CAPABILITIES.has(asString(cap))) {
        valid = false;
        badCapabilities.push(asString(cap));
        fields.push(`${c.path}.securityContext.capabilities.add[${j}]`);
      }
    });
    if (!valid) badContainers.push(c.name);
  }
  if (badContainers.length === 0) return undefined;
  return forbid('capabilities_baseline', 'non-default capabilities', `${containersPhrase(badContainers)} must not include ${joinQuote(sorted(badCapabilities))} in securityContext.capabilities.add`, fields);
};

const hostNamespaces: CheckFn = (pod) => {
  const set = (['hostNetwork', 'hostPID', 'hostIPC'] as const).filter((k) => pod.spec[k] === true);
  if (set.length === 0) return undefined;
  return forbid(
    'hostNamespaces',
    'host namespaces',
    set.map((k) => `${k}=true`).join(', '),
    set.map((k) => `${pod.specPath}.${k}`),
  );
};

const hostPathVolumes: CheckFn = (pod) => {
  const names: string[] = [];
  const fields: string[] = [];
  asArray(pod.spec.volumes).forEach((v, i) => {
    const volume = asObject(v) ?? {};
    if (present(volume.hostPath)) {
      names.push(asString(volume.name));
      fields.push(`${pod.specPath}.volumes[${i}].hostPath`);
    }
  });
  if (names.length === 0) return undefined;
  return forbid('hostPathVolumes', 'hostPath volumes', `${plural('volume', 'volumes', names.length)} ${joinQuote(names)}`, fields);
};

const hostPorts: CheckFn = (pod) => {
  const badContainers: string[] = [];
  const ports: string[] = [];
  const fields: string[] = [];
  for (const c of pod.containers) {
    let valid = true;
    asArray(c.container.ports).forEach((p, j) => {
      const hostPort = asObject(p)?.hostPort;
      if (present(hostPort) && hostPort !== 0) {
        valid = false;
        ports.push(asString(hostPort));
        fields.push(`${c.path}.ports[${j}].hostPort`);
      }
    });
    if (!valid) badContainers.push(c.name);
  }
  if (badContainers.length === 0) return undefined;
  const uniquePorts = sorted(ports);
  return forbid(
    'hostPorts',
    'hostPort',
    `${containersPhrase(badContainers)} ${plural('uses', 'use', badContainers.length)} ${plural('hostPort', 'hostPorts', uniquePorts.length)} ${uniquePorts.join(', ')}`,
    fields,
  );
};

const hostProbesAndHostLifecycle: CheckFn = (pod) => {
  const badContainers = new Set<string>();
  const hosts = new Set<string>();
  const fields: string[] = [];
  for (const c of pod.containers) {
    const handlers: Array<[string, unknown]> = [
      ['livenessProbe', c.container.livenessProbe],
      ['readinessProbe', c.container.readinessProbe],
      ['startupProbe', c.container.startupProbe],
      ['lifecycle.postStart', asObject(c.container.lifecycle)?.postStart],
      ['lifecycle.preStop', asObject(c.container.lifecycle)?.preStop],
    ];
    for (const [name, handler] of handlers) {
      for (const action of ['httpGet', 'tcpSocket']) {
        const host = asString(asObject(asObject(handler)?.[action])?.host);
        if (host !== '') {
          badContainers.add(c.name);
          hosts.add(host);
          fields.push(`${c.path}.${name}.${action}.host`);
        }
      }
    }
  }
  if (badContainers.size === 0) return undefined;
  return forbid(
    'hostProbesAndHostLifecycle',
    'probe or lifecycle host',
    `${containersPhrase(sorted(badContainers))} ${plural('uses', 'use', badContainers.size)} ${plural('probe or lifecycle host', 'probe or lifecycle hosts', hosts.size)} ${joinQuote(sorted(hosts))}`,
    fields,
  );
};

const privileged: CheckFn = (pod) => {
  const bad = pod.containers.filter((c) => c.securityContext?.privileged === true);
  if (bad.length === 0) return undefined;
  return forbid(
    'privileged',
    'privileged',
    `${containersPhrase(bad.map((c) => c.name))} must not set securityContext.privileged=true`,
    bad.map((c) => `${c.path}.securityContext.privileged`),
  );
};

const procMountCheck = (id: string): CheckFn => (pod) => {
  const bad = pod.containers.filter((c) => present(c.securityContext?.procMount) && c.securityContext?.procMount !== 'Default');
  if (bad.length === 0) return undefined;
  return forbid(
    id,
    'procMount',
    `${containersPhrase(bad.map((c) => c.name))} must not set securityContext.procMount to ${joinQuote(sorted(bad.map((c) => asString(c.securityContext?.procMount))))}`,
    bad.map((c) => `${c.path}.securityContext.procMount`),
  );
};
const procMountRestricted = procMountCheck('procMount_restricted');
const procMountUnrelaxed = procMountCheck('procMount');
/** Baseline tolerates a non-default /proc for pods in a user namespace (policy 1.35). */
const procMountBaseline: CheckFn = (pod) => (pod.userNamespace ? undefined : procMountUnrelaxed(pod));

const ALLOWED_SELINUX_TYPES = new Set(['', 'container_t', 'container_init_t', 'container_kvm_t', 'container_engine_t']);

const seLinuxOptions: CheckFn = (pod) => {
  const setters: string[] = [];
  const badTypes = new Set<string>();
  const fields: string[] = [];
  let setUser = false;
  let setRole = false;
  const valid = (options: Json, path: string): boolean => {
    let ok = true;
    const type = asString(options.type);
    if (!ALLOWED_SELINUX_TYPES.has(type)) {
      ok = false;
      badTypes.add(type);
      fields.push(`${path}.seLinuxOptions.type`);
    }
    if (asString(options.user) !== '') {
      ok = false;
      setUser = true;
      fields.push(`${path}.seLinuxOptions.user`);
    }
    if (asString(options.role) !== '') {
      ok = false;
      setRole = true;
      fields.push(`${path}.seLinuxOptions.role`);
    }
    return ok;
  };
  const podOptions = asObject(pod.podSecurityContext?.seLinuxOptions);
  if (podOptions && !valid(podOptions, `${pod.specPath}.securityContext`)) setters.push('pod');
  const badContainers: string[] = [];
  for (const c of pod.containers) {
    const options = asObject(c.securityContext?.seLinuxOptions);
    if (options && !valid(options, `${c.path}.securityContext`)) badContainers.push(c.name);
  }
  if (badContainers.length > 0) setters.push(containersPhrase(badContainers));
  if (setters.length === 0) return undefined;
  const data: string[] = [];
  if (badTypes.size > 0) data.push(`${plural('type', 'types', badTypes.size)} ${joinQuote(sorted(badTypes))}`);
  if (setUser) data.push('user may not be set');
  if (setRole) data.push('role may not be set');
  return forbid('seLinuxOptions', 'seLinuxOptions', `${setters.join(' and ')} set forbidden securityContext.seLinuxOptions: ${data.join('; ')}`, fields);
};

const VALID_SECCOMP_TYPES = new Set(['RuntimeDefault', 'Localhost']);

/** The seccomp check of both levels: `required` makes an unset profile (at both pod and container level) a violation. */
const seccompCheck = (id: string, required: boolean): CheckFn => (pod) => {
  const setters: string[] = [];
  const badValues = new Set<string>();
  const fields: string[] = [];
  let podSet = false;
  const podProfile = asObject(pod.podSecurityContext?.seccompProfile);
  if (podProfile) {
    if (!VALID_SECCOMP_TYPES.has(asString(podProfile.type))) {
      setters.push('pod');
      badValues.add(asString(podProfile.type));
      fields.push(`${pod.specPath}.securityContext.seccompProfile.type`);
    } else {
      podSet = true;
    }
  }
  const explicit: string[] = [];
  const implicit: ContainerRef[] = [];
  for (const c of pod.containers) {
    const profile = asObject(c.securityContext?.seccompProfile);
    if (profile) {
      if (!VALID_SECCOMP_TYPES.has(asString(profile.type))) {
        explicit.push(c.name);
        badValues.add(asString(profile.type));
        fields.push(`${c.path}.securityContext.seccompProfile.type`);
      }
    } else if (!podSet) {
      implicit.push(c);
    }
  }
  if (explicit.length > 0) setters.push(containersPhrase(explicit));
  if (setters.length > 0) {
    return forbid(id, 'seccompProfile', `${setters.join(' and ')} must not set securityContext.seccompProfile.type to ${joinQuote(sorted(badValues))}`, fields);
  }
  if (required && implicit.length > 0) {
    return forbid(
      id,
      'seccompProfile',
      `pod or ${containersPhrase(implicit.map((c) => c.name))} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"`,
      implicit.map((c) => `${c.path}.securityContext.seccompProfile.type`),
    );
  }
  return undefined;
};
const seccompProfileBaseline = seccompCheck('seccompProfile_baseline', false);
const seccompProfileRestrictedLinux = seccompCheck('seccompProfile_restricted', true);
const seccompProfileRestricted: CheckFn = (pod) => (pod.windows ? undefined : seccompProfileRestrictedLinux(pod));

/** The sysctls namespaced and isolated enough for baseline (policy 1.32, unchanged through 1.36). */
const SAFE_SYSCTLS = new Set([
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
  'net.ipv4.tcp_rmem',
  'net.ipv4.tcp_wmem',
]);

const sysctls: CheckFn = (pod) => {
  const names: string[] = [];
  const fields: string[] = [];
  asArray(pod.podSecurityContext?.sysctls).forEach((s, i) => {
    const name = asString(asObject(s)?.name);
    if (!SAFE_SYSCTLS.has(name)) {
      names.push(name);
      fields.push(`${pod.specPath}.securityContext.sysctls[${i}].name`);
    }
  });
  if (names.length === 0) return undefined;
  return forbid('sysctls', 'forbidden sysctls', names.join(', '), fields);
};

const windowsHostProcess: CheckFn = (pod) => {
  const setters: string[] = [];
  const fields: string[] = [];
  if (asObject(pod.podSecurityContext?.windowsOptions)?.hostProcess === true) {
    setters.push('pod');
    fields.push(`${pod.specPath}.securityContext.windowsOptions.hostProcess`);
  }
  const bad = pod.containers.filter((c) => asObject(c.securityContext?.windowsOptions)?.hostProcess === true);
  if (bad.length > 0) {
    setters.push(containersPhrase(bad.map((c) => c.name)));
    fields.push(...bad.map((c) => `${c.path}.securityContext.windowsOptions.hostProcess`));
  }
  if (setters.length === 0) return undefined;
  return forbid('windowsHostProcess', 'hostProcess', `${setters.join(' and ')} must not set securityContext.windowsOptions.hostProcess=true`, fields);
};

const allowPrivilegeEscalation: CheckFn = (pod) => {
  if (pod.windows) return undefined;
  const bad = pod.containers.filter((c) => c.securityContext?.allowPrivilegeEscalation !== false);
  if (bad.length === 0) return undefined;
  return forbid(
    'allowPrivilegeEscalation',
    'allowPrivilegeEscalation != false',
    `${containersPhrase(bad.map((c) => c.name))} must set securityContext.allowPrivilegeEscalation=false`,
    bad.map((c) => `${c.path}.securityContext.allowPrivilegeEscalation`),
  );
};

const capabilitiesRestricted: CheckFn = (pod) => {
  if (pod.windows) return undefined;
  const missingDropAll: string[] = [];
  const addingForbidden: string[] = [];
  const forbiddenCapabilities: string[] = [];
  const dropFields: string[] = [];
  const addFields: string[] = [];
  for (const c of pod.containers) {
    const capabilities = asObject(c.securityContext?.capabilities);
    if (!capabilities) {
      missingDropAll.push(c.name);
      dropFields.push(`${c.path}.securityContext.capabilities.drop`);
      continue;
    }
    if (!asArray(capabilities.drop).some((cap) => cap === 'ALL')) {
      missingDropAll.push(c.name);
      dropFields.push(`${c.path}.securityContext.capabilities.drop`);
    }
    let adds = false;
    asArray(capabilities.add).forEach((cap, j) => {
      if (cap !== 'NET_BIND_SERVICE') {
        adds = true;
        forbiddenCapabilities.push(asString(cap));
        addFields.push(`${c.path}.securityContext.capabilities.add[${j}]`);
      }
    });
    if (adds) addingForbidden.push(c.name);
  }
  const details: string[] = [];
  if (missingDropAll.length > 0) details.push(`${containersPhrase(missingDropAll)} must set securityContext.capabilities.drop=["ALL"]`);
  if (addingForbidden.length > 0) details.push(`${containersPhrase(addingForbidden)} must not include ${joinQuote(sorted(forbiddenCapabilities))} in securityContext.capabilities.add`);
  if (details.length === 0) return undefined;
  return forbid('capabilities_restricted', 'unrestricted capabilities', details.join('; '), [...dropFields, ...addFields]);
};

/** The volume sources restricted allows (core types, or those backed by PersistentVolumes). */
const ALLOWED_VOLUME_SOURCES = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'image', 'persistentVolumeClaim', 'projected', 'secret'];
/** The other volume sources, in upstream's reporting order. */
const RESTRICTED_VOLUME_SOURCES = [
  'hostPath', 'gcePersistentDisk', 'awsElasticBlockStore', 'gitRepo', 'nfs', 'iscsi', 'glusterfs', 'rbd', 'flexVolume', 'cinder', 'cephfs',
  'flocker', 'fc', 'azureFile', 'vsphereVolume', 'quobyte', 'azureDisk', 'photonPersistentDisk', 'portworxVolume', 'scaleIO', 'storageos',
];

const restrictedVolumes: CheckFn = (pod) => {
  const names: string[] = [];
  const types = new Set<string>();
  const fields: string[] = [];
  asArray(pod.spec.volumes).forEach((v, i) => {
    const volume = asObject(v) ?? {};
    if (ALLOWED_VOLUME_SOURCES.some((source) => present(volume[source]))) return;
    const type = RESTRICTED_VOLUME_SOURCES.find((source) => present(volume[source]));
    names.push(asString(volume.name));
    types.add(type ?? 'unknown');
    fields.push(type ? `${pod.specPath}.volumes[${i}].${type}` : `${pod.specPath}.volumes[${i}]`);
  });
  if (names.length === 0) return undefined;
  return forbid(
    'restrictedVolumes',
    'restricted volume types',
    `${plural('volume', 'volumes', names.length)} ${joinQuote(names)} ${plural('uses', 'use', names.length)} ${plural('restricted volume type', 'restricted volume types', types.size)} ${joinQuote(sorted(types))}`,
    fields,
  );
};

const runAsNonRoot: CheckFn = (pod) => {
  if (pod.userNamespace) return undefined;
  const setters: string[] = [];
  const fields: string[] = [];
  let podNonRoot = false;
  const podValue = pod.podSecurityContext?.runAsNonRoot;
  if (present(podValue)) {
    if (podValue === true) {
      podNonRoot = true;
    } else {
      setters.push('pod');
      fields.push(`${pod.specPath}.securityContext.runAsNonRoot`);
    }
  }
  const explicit: string[] = [];
  const implicit: ContainerRef[] = [];
  for (const c of pod.containers) {
    const value = c.securityContext?.runAsNonRoot;
    if (present(value)) {
      if (value !== true) {
        explicit.push(c.name);
        fields.push(`${c.path}.securityContext.runAsNonRoot`);
      }
    } else if (!podNonRoot) {
      implicit.push(c);
    }
  }
  if (explicit.length > 0) setters.push(containersPhrase(explicit));
  if (setters.length > 0) return forbid('runAsNonRoot', 'runAsNonRoot != true', `${setters.join(' and ')} must not set securityContext.runAsNonRoot=false`, fields);
  if (implicit.length > 0) {
    return forbid(
      'runAsNonRoot',
      'runAsNonRoot != true',
      `pod or ${containersPhrase(implicit.map((c) => c.name))} must set securityContext.runAsNonRoot=true`,
      implicit.map((c) => `${c.path}.securityContext.runAsNonRoot`),
    );
  }
  return undefined;
};

const runAsUser: CheckFn = (pod) => {
  if (pod.userNamespace) return undefined;
  const setters: string[] = [];
  const fields: string[] = [];
  if (pod.podSecurityContext?.runAsUser === 0) {
    setters.push('pod');
    fields.push(`${pod.specPath}.securityContext.runAsUser`);
  }
  const bad = pod.containers.filter((c) => c.securityContext?.runAsUser === 0);
  if (bad.length > 0) {
    setters.push(containersPhrase(bad.map((c) => c.name)));
    fields.push(...bad.map((c) => `${c.path}.securityContext.runAsUser`));
  }
  if (setters.length === 0) return undefined;
  return forbid('runAsUser', 'runAsUser=0', `${setters.join(' and ')} must not set runAsUser=0`, fields);
};

/**
 * The checks in upstream's evaluation order (baseline checks, then restricted checks, each in the
 * order of upstream's check files, so aggregated messages read the same as kube-apiserver's).
 */
const CHECKS: readonly CheckDefinition[] = [
  { id: 'appArmorProfile', level: 'baseline', run: appArmorProfile },
  { id: 'capabilities_baseline', level: 'baseline', run: capabilitiesBaseline },
  { id: 'hostNamespaces', level: 'baseline', run: hostNamespaces },
  { id: 'hostPathVolumes', level: 'baseline', run: hostPathVolumes },
  { id: 'hostPorts', level: 'baseline', run: hostPorts },
  { id: 'hostProbesAndHostLifecycle', level: 'baseline', run: hostProbesAndHostLifecycle },
  { id: 'privileged', level: 'baseline', run: privileged },
  { id: 'procMount', level: 'baseline', run: procMountBaseline },
  { id: 'seLinuxOptions', level: 'baseline', run: seLinuxOptions },
  { id: 'seccompProfile_baseline', level: 'baseline', run: seccompProfileBaseline },
  { id: 'sysctls', level: 'baseline', run: sysctls },
  { id: 'windowsHostProcess', level: 'baseline', run: windowsHostProcess },
  { id: 'allowPrivilegeEscalation', level: 'restricted', run: allowPrivilegeEscalation },
  { id: 'capabilities_restricted', level: 'restricted', overrides: ['capabilities_baseline'], run: capabilitiesRestricted },
  { id: 'procMount_restricted', level: 'restricted', overrides: ['procMount'], run: procMountRestricted },
  { id: 'restrictedVolumes', level: 'restricted', overrides: ['hostPathVolumes'], run: restrictedVolumes },
  { id: 'runAsNonRoot', level: 'restricted', run: runAsNonRoot },
  { id: 'runAsUser', level: 'restricted', run: runAsUser },
  { id: 'seccompProfile_restricted', level: 'restricted', overrides: ['seccompProfile_baseline'], run: seccompProfileRestricted },
];

const OVERRIDDEN_AT_RESTRICTED = new Set(CHECKS.flatMap((c) => c.overrides ?? []));
const CHECKS_BY_LEVEL: Record<PodSecurityLevel, readonly CheckDefinition[]> = {
  privileged: [],
  baseline: CHECKS.filter((c) => c.level === 'baseline'),
  restricted: CHECKS.filter((c) => !OVERRIDDEN_AT_RESTRICTED.has(c.id)),
};

/** The upstream ids of every check at `level` (restricted: baseline minus overridden checks, plus its own). */
export function checksAt(level: PodSecurityLevel): string[] {
  return CHECKS_BY_LEVEL[level].map((c) => c.id);
}

function findings(level: PodSecurityLevel, metadata: unknown, podSpec: unknown, specPath: string): Finding[] {
  const checks = CHECKS_BY_LEVEL[level];
  if (checks.length === 0) return [];
  const pod = podContext(metadata, podSpec, specPath);
  const out: Finding[] = [];
  for (const check of checks) {
    const finding = check.run(pod);
    if (finding) out.push(finding);
  }
  return out;
}

const messageOf = (f: Finding): string => (f.detail ? `${f.reason} (${f.detail})` : f.reason);

/**
 * Evaluates a pod spec (and its metadata, for AppArmor annotations) against a Pod Security
 * Standards level, with the newest policy. Pure: no I/O, never throws, tolerates malformed input
 * (a field of the wrong type counts as unset, or as forbidden where upstream would refuse it).
 *
 * @param level `privileged` (always empty), `baseline` or `restricted`.
 * @param metadata the pod's (or template's) `metadata`.
 * @param podSpec the pod's (or template's) `spec`.
 * @param specPath where `podSpec` sits in its object, for field paths: `spec` for a Pod,
 *   `spec.template.spec` for a Deployment; the metadata path is derived (`metadata`,
 *   `spec.template.metadata`).
 * @returns one {@link Violation} per failed check, in upstream's order; empty when the pod complies.
 */
export function evaluatePod(level: PodSecurityLevel, metadata: unknown, podSpec: unknown, specPath = 'spec'): Violation[] {
  return findings(level, metadata, podSpec, specPath).map((f) => ({ check: f.check, message: messageOf(f), fields: [...f.fields] }));
}

// ---------------------------------------------------------------------------------------------
// Pod specs inside objects
// ---------------------------------------------------------------------------------------------

/** Where a pod spec sits in an object: the spec, the metadata next to it, and the spec's field path. */
export interface PodSpecLocation {
  readonly spec: Record<string, unknown>;
  readonly metadata: Record<string, unknown>;
  readonly path: string;
}

const TEMPLATE_PATHS: Record<string, readonly string[]> = {
  PodTemplate: ['template'],
  ReplicationController: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

/**
 * The pod spec of a Pod (`spec`) or of a workload's pod template (`spec.template.spec` for
 * Deployment, ReplicaSet, StatefulSet, DaemonSet, Job and ReplicationController;
 * `spec.jobTemplate.spec.template.spec` for CronJob; `template.spec` for PodTemplate).
 *
 * @param kind the object's kind; defaults to `object.kind` (pass it when the object may lack one).
 * @returns undefined for other kinds, and when the object has no (object-valued) pod spec there.
 */
export function podSpecOf(object: ApiObject | Record<string, unknown> | undefined, kind: string | undefined = asString(object?.kind)): PodSpecLocation | undefined {
  if (!object) return undefined;
  if (kind === 'Pod') {
    const spec = asObject(object.spec);
    return spec ? { spec, metadata: asObject(object.metadata) ?? {}, path: 'spec' } : undefined;
  }
  const steps = kind && Object.hasOwn(TEMPLATE_PATHS, kind) ? TEMPLATE_PATHS[kind] : undefined;
  if (!steps) return undefined;
  let template: Json | undefined = object;
  for (const step of steps) template = asObject(template?.[step]);
  const spec = asObject(template?.spec);
  if (!spec) return undefined;
  const path = [...steps, 'spec'].join('.');
  return { spec, metadata: asObject(template?.metadata) ?? {}, path };
}

// ---------------------------------------------------------------------------------------------
// Namespace policy
// ---------------------------------------------------------------------------------------------

/** The namespace labels PodSecurity reads. */
export const POD_SECURITY_LABELS = {
  enforce: 'pod-security.kubernetes.io/enforce',
  enforceVersion: 'pod-security.kubernetes.io/enforce-version',
  audit: 'pod-security.kubernetes.io/audit',
  auditVersion: 'pod-security.kubernetes.io/audit-version',
  warn: 'pod-security.kubernetes.io/warn',
  warnVersion: 'pod-security.kubernetes.io/warn-version',
} as const;

/** A level at a policy version (`latest` or `v1.N`), written `level:version` in messages. */
export interface LevelVersion {
  readonly level: PodSecurityLevel;
  readonly version: string;
}

/** A namespace's effective policy, per mode. */
export interface NamespacePolicy {
  readonly enforce: LevelVersion;
  readonly audit: LevelVersion;
  readonly warn: LevelVersion;
}

/** An invalid PodSecurity label value. */
export interface LabelError {
  /** The label key. */
  readonly label: string;
  readonly value: string;
  /** What it must be (`must be one of privileged, baseline, restricted`). */
  readonly message: string;
}

/** The defaults a cluster gives namespaces without labels (the plugin config's `defaults`). */
export interface PodSecurityDefaults {
  enforce: PodSecurityLevel;
  enforceVersion: string;
  audit: PodSecurityLevel;
  auditVersion: string;
  warn: PodSecurityLevel;
  warnVersion: string;
}

/** Requests PodSecurity never evaluates (the plugin config's `exemptions`). */
export interface PodSecurityExemptions {
  /** Authenticated user names (exact match; a controller creating pods for a user is not exempted by the user's name). */
  usernames: string[];
  namespaces: string[];
  /** Pods and templates with one of these `runtimeClassName`s. */
  runtimeClasses: string[];
}

/** The plugin's configuration, as validated (defaults filled). */
export interface PodSecurityConfig {
  defaults: PodSecurityDefaults;
  exemptions: PodSecurityExemptions;
}

const DEFAULTS: PodSecurityDefaults = {
  enforce: 'privileged',
  enforceVersion: 'latest',
  audit: 'privileged',
  auditVersion: 'latest',
  warn: 'privileged',
  warnVersion: 'latest',
};

const VERSION_PATTERN = /^v1\.(0|[1-9][0-9]*)$/;
const LEVEL_MESSAGE = `must be one of ${POD_SECURITY_LEVELS.join(', ')}`;
const VERSION_MESSAGE = 'must be "latest" or "v1.x"';
const isLevel = (v: unknown): v is PodSecurityLevel => typeof v === 'string' && (POD_SECURITY_LEVELS as readonly string[]).includes(v);
const isVersion = (v: unknown): v is string => v === 'latest' || (typeof v === 'string' && VERSION_PATTERN.test(v));
const strictness = (l: PodSecurityLevel): number => POD_SECURITY_LEVELS.indexOf(l);
const formatLevelVersion = (lv: LevelVersion): string => `${lv.level}:${lv.version}`;

/**
 * A namespace's policy from its labels, falling back to `defaults` for absent labels, as upstream:
 * an invalid enforce level fails closed (`restricted`), an invalid audit or warn level fails open
 * (`privileged`), an invalid version becomes `latest`. Every invalid value is also reported.
 */
export function namespacePolicy(labels: Readonly<Record<string, string>> | undefined, defaults: PodSecurityDefaults = DEFAULTS): { policy: NamespacePolicy; errors: LabelError[] } {
  const errors: LabelError[] = [];
  const l = labels ?? {};
  const mode = (levelLabel: string, versionLabel: string, defaultLevel: PodSecurityLevel, defaultVersion: string, invalidLevel: PodSecurityLevel): LevelVersion => {
    let level = defaultLevel;
    let version = defaultVersion;
    if (Object.hasOwn(l, levelLabel)) {
      const v = l[levelLabel];
      if (isLevel(v)) level = v;
      else {
        level = invalidLevel;
        errors.push({ label: levelLabel, value: asString(v), message: LEVEL_MESSAGE });
      }
    }
    if (Object.hasOwn(l, versionLabel)) {
      const v = l[versionLabel];
      if (isVersion(v)) version = v;
      else {
        version = 'latest';
        errors.push({ label: versionLabel, value: asString(v), message: VERSION_MESSAGE });
      }
    }
    return { level, version };
  };
  const L = POD_SECURITY_LABELS;
  const enforce = mode(L.enforce, L.enforceVersion, defaults.enforce, defaults.enforceVersion, 'restricted');
  const audit = mode(L.audit, L.auditVersion, defaults.audit, defaults.auditVersion, 'privileged');
  const warn = mode(L.warn, L.warnVersion, defaults.warn, defaults.warnVersion, 'privileged');
  return { policy: { enforce, audit, warn }, errors };
}

const labelErrorText = (e: LabelError): string => `metadata.labels[${e.label}]: Invalid value: ${quote(e.value)}: ${e.message}`;

// ---------------------------------------------------------------------------------------------
// The admission step
// ---------------------------------------------------------------------------------------------

/** What {@link podSecurity} needs from its surroundings. */
export interface PodSecurityOptions {
  /** Cluster defaults for unlabelled namespaces (each field defaults to `privileged` / `latest`). */
  readonly defaults?: Partial<PodSecurityDefaults>;
  readonly exemptions?: Partial<PodSecurityExemptions>;
  /**
   * The labels of a namespace, or undefined when it does not exist (the defaults then apply). May
   * reject: the request then fails with an internal error (PodSecurity fails closed).
   */
  namespaceLabels(namespace: string): Readonly<Record<string, string>> | undefined | Promise<Readonly<Record<string, string>> | undefined>;
  /** The pods of a namespace, to warn when its enforce level is tightened; absent, no such warning. */
  listPods?(namespace: string): Promise<readonly ApiObject[]>;
  /** Receives audit-mode violations (`would violate PodSecurity "...": ...`); absent, they are dropped. */
  audit?(request: AdmissionRequest, message: string): void;
  /** At most this many existing pods are checked when a namespace's enforce level is tightened (3000). */
  readonly maxPodsToCheck?: number;
  /** Time budget in ms for listing and checking existing pods on such a change (2000). */
  readonly podCheckTimeoutMs?: number;
}

/** Pod subresources that cannot change what PodSecurity checks (upstream's list); any other is evaluated. */
const IGNORED_POD_SUBRESOURCES = new Set(['exec', 'attach', 'binding', 'eviction', 'log', 'portforward', 'proxy', 'status']);

/** The resources with a pod template PodSecurity warns about, and the kind of their objects. */
const WORKLOAD_KINDS: Record<string, Record<string, string>> = {
  '': { replicationcontrollers: 'ReplicationController', podtemplates: 'PodTemplate' },
  apps: { replicasets: 'ReplicaSet', deployments: 'Deployment', statefulsets: 'StatefulSet', daemonsets: 'DaemonSet' },
  batch: { jobs: 'Job', cronjobs: 'CronJob' },
};

/** The kind of the objects of a workload resource, or undefined when it has no pod template. */
const workloadKind = (group: string, resource: string): string | undefined => {
  const kinds = Object.hasOwn(WORKLOAD_KINDS, group) ? WORKLOAD_KINDS[group] : undefined;
  return kinds && Object.hasOwn(kinds, resource) ? kinds[resource] : undefined;
};

const SECURITY_ANNOTATION_PREFIXES = ['seccomp.security.alpha.kubernetes.io/', 'container.seccomp.security.alpha.kubernetes.io/', APPARMOR_ANNOTATION_PREFIX];
const CONTAINER_SECURITY_FIELDS = ['name', 'image', 'securityContext', 'ports', 'livenessProbe', 'readinessProbe', 'startupProbe', 'lifecycle'];
const POD_SECURITY_FIELDS = ['hostNetwork', 'hostPID', 'hostIPC', 'hostUsers', 'os', 'runtimeClassName', 'securityContext', 'volumes'];

/** JSON with object keys sorted, so equal values compare equal whatever their key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const o = asObject(value);
  if (o) return `{${Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  return JSON.stringify(value) ?? 'null';
}

/** The part of a pod PodSecurity's verdict (or upstream's "significant update" test) depends on. */
function securityView(pod: ApiObject | undefined): string {
  const spec = asObject(pod?.spec) ?? {};
  const annotations = Object.entries(asObject(asObject(pod?.metadata)?.annotations) ?? {}).filter(([k]) => SECURITY_ANNOTATION_PREFIXES.some((p) => k.startsWith(p)));
  const pick = (o: Json, keys: readonly string[]): Json => Object.fromEntries(keys.map((k) => [k, o[k]]));
  const view: Json = { annotations: Object.fromEntries(annotations), ...pick(spec, POD_SECURITY_FIELDS) };
  for (const key of ['initContainers', 'containers', 'ephemeralContainers']) view[key] = asArray(spec[key]).map((c) => pick(asObject(c) ?? {}, CONTAINER_SECURITY_FIELDS));
  return canonical(view);
}

/**
 * Whether a pod update can change PodSecurity's verdict. Upstream re-evaluates only when an image,
 * a seccomp annotation or the set of (ephemeral) containers changes, relying on the rest of the
 * spec being immutable; this compares every field any check reads, which is a superset and stays
 * correct should a spec field become mutable. Label, annotation, toleration or status changes
 * never are.
 */
export function isSignificantPodUpdate(pod: ApiObject | undefined, oldPod: ApiObject | undefined): boolean {
  return securityView(pod) !== securityView(oldPod);
}

/** The result of checking a namespace's existing pods against a new enforce level. */
interface PodCount {
  podName: string;
  count: number;
}

/**
 * The PodSecurity admission step (`k8s.io/pod-security-admission` semantics):
 *
 * - Pods (CREATE, significant UPDATE, and the `ephemeralcontainers` subresource; never `status`
 *   or the other read/connect subresources): refused with 403 when the namespace's enforce level is
 *   violated (`pods "p" is forbidden: violates PodSecurity "restricted:latest": ...`, one
 *   `FieldValueForbidden` cause per offending field); otherwise warned about at the warn level and
 *   reported to `audit` at the audit level.
 * - Workloads with a pod template (Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob,
 *   ReplicationController, PodTemplate): only warned about and audited, never refused.
 * - Namespaces: invalid PodSecurity labels are refused with 422 on create, and on update when they
 *   changed; tightening the enforce level warns about existing pods that would violate it.
 *
 * Exempt user names and namespaces skip evaluation; exempt runtime classes skip it per pod.
 *
 * @throws {Error} at construction when `options.defaults` holds an invalid level or version.
 */
export function podSecurity(options: PodSecurityOptions): Admission {
  const defaults: PodSecurityDefaults = { ...DEFAULTS, ...options.defaults };
  for (const mode of ['enforce', 'audit', 'warn'] as const) {
    if (!isLevel(defaults[mode])) throw new Error(`pod-security: defaults.${mode} ${LEVEL_MESSAGE}, got ${JSON.stringify(defaults[mode])}`);
    if (!isVersion(defaults[`${mode}Version`])) throw new Error(`pod-security: defaults.${mode}Version ${VERSION_MESSAGE}, got ${JSON.stringify(defaults[`${mode}Version`])}`);
  }
  const exemptUsers = new Set(options.exemptions?.usernames ?? []);
  const exemptNamespaces = new Set(options.exemptions?.namespaces ?? []);
  const exemptRuntimeClasses = new Set(options.exemptions?.runtimeClasses ?? []);
  const maxPods = options.maxPodsToCheck ?? 3000;
  const timeoutMs = options.podCheckTimeoutMs ?? 2000;

  const exemptNamespace = (ns: string): boolean => ns !== '' && exemptNamespaces.has(ns);
  const exemptUser = (name: string): boolean => name !== '' && exemptUsers.has(name);
  const exemptRuntimeClass = (spec: Json): boolean => {
    const rc = asString(spec.runtimeClassName);
    return rc !== '' && exemptRuntimeClasses.has(rc);
  };
  const policyOf = async (ns: string): Promise<{ policy: NamespacePolicy; errors: LabelError[] }> => namespacePolicy(await options.namespaceLabels(ns), defaults);

  /** Evaluates one pod(-like) object in every mode; throws on an enforce violation when `enforce`. */
  const evaluate = (req: AdmissionRequest, policy: NamespacePolicy, location: PodSpecLocation, enforce: boolean): void => {
    if (exemptRuntimeClass(location.spec)) return;
    const cache = new Map<PodSecurityLevel, Finding[]>();
    const at = (level: PodSecurityLevel): Finding[] => {
      let result = cache.get(level);
      if (!result) cache.set(level, (result = findings(level, location.metadata, location.spec, location.path)));
      return result;
    };
    const enforced = enforce ? at(policy.enforce.level) : [];
    const audited = at(policy.audit.level);
    if (audited.length > 0 && options.audit) options.audit(req, `would violate PodSecurity ${quote(formatLevelVersion(policy.audit))}: ${audited.map(messageOf).join(', ')}`);
    if (enforced.length > 0) {
      const name = req.name || asString(asObject(req.object?.metadata)?.name);
      const resource = req.resource.group ? `${req.resource.resource}.${req.resource.group}` : req.resource.resource;
      const causes: AdmissionCause[] = enforced.flatMap((f) => f.fields.map((field) => ({ field, message: messageOf(f), reason: 'FieldValueForbidden' })));
      throw new AdmissionDenied(
        `${resource}${name ? ` ${quote(name)}` : ''} is forbidden: violates PodSecurity ${quote(formatLevelVersion(policy.enforce))}: ${enforced.map(messageOf).join(', ')}`,
        403,
        causes,
      );
    }
    const warned = at(policy.warn.level);
    if (warned.length > 0) req.warning(`would violate PodSecurity ${quote(formatLevelVersion(policy.warn))}: ${warned.map(messageOf).join(', ')}`);
  };

  const validatePod = async (req: AdmissionRequest): Promise<void> => {
    if (IGNORED_POD_SUBRESOURCES.has(req.subresource)) return;
    if (exemptNamespace(req.namespace) || exemptUser(req.user.username)) return;
    const { policy, errors } = await policyOf(req.namespace);
    if (errors.length === 0 && policy.enforce.level === 'privileged' && policy.warn.level === 'privileged' && policy.audit.level === 'privileged') return;
    const location = podSpecOf(req.object, 'Pod');
    if (!location) return; // not a pod (validation refuses a pod without a spec)
    if (req.operation === 'UPDATE' && req.oldObject && !isSignificantPodUpdate(req.object, req.oldObject)) return;
    evaluate(req, policy, location, true);
  };

  const validateWorkload = async (req: AdmissionRequest, kind: string): Promise<void> => {
    if (req.subresource !== '') return;
    if (exemptNamespace(req.namespace) || exemptUser(req.user.username)) return;
    const { policy, errors } = await policyOf(req.namespace);
    if (errors.length === 0 && policy.warn.level === 'privileged' && policy.audit.level === 'privileged') return;
    const location = podSpecOf(req.object, kind);
    if (!location) return;
    evaluate(req, policy, location, false);
  };

  const podsViolating = async (namespace: string, enforce: LevelVersion): Promise<string[]> => {
    if (!options.listPods) return [];
    const deadline = Date.now() + timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    let pods: readonly ApiObject[];
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timed out')), timeoutMs);
      });
      pods = await Promise.race([options.listPods(namespace), timeout]);
    } catch {
      return ['failed to list pods while checking new PodSecurity enforce level'];
    } finally {
      clearTimeout(timer);
    }
    const total = pods.length;
    const toCheck = pods.slice(0, maxPods);
    let checked = toCheck.length;
    const byReasons = new Map<string, PodCount>();
    for (let i = 0; i < toCheck.length; i++) {
      const location = podSpecOf(toCheck[i], 'Pod');
      if (location && !exemptRuntimeClass(location.spec)) {
        const failed = findings(enforce.level, location.metadata, location.spec, location.path);
        if (failed.length > 0) {
          const reasons = failed.map((f) => f.reason).join(', ');
          const podName = asString(asObject(toCheck[i]?.metadata)?.name);
          const seen = byReasons.get(reasons);
          if (!seen) byReasons.set(reasons, { podName, count: 1 });
          else {
            seen.count++;
            if (podName < seen.podName) seen.podName = podName;
          }
        }
      }
      if (Date.now() > deadline) {
        checked = i + 1;
        break;
      }
    }
    const warnings: string[] = [];
    if (checked < total) warnings.push(`new PodSecurity enforce level only checked against the first ${checked} of ${total} existing pods`);
    if (byReasons.size > 0) warnings.push(`existing pods in namespace ${quote(namespace)} violate the new PodSecurity enforce level ${quote(formatLevelVersion(enforce))}`);
    const podWarnings = [...byReasons].map(([reasons, { podName, count }]) => {
      if (count === 1) return `${podName}: ${reasons}`;
      if (count === 2) return `${podName} (and 1 other pod): ${reasons}`;
      return `${podName} (and ${count - 1} other pods): ${reasons}`;
    });
    return [...warnings, ...podWarnings.sort()];
  };

  const validateNamespace = async (req: AdmissionRequest): Promise<void> => {
    if (req.subresource !== '' || !req.object) return;
    const name = req.name || asString(asObject(req.object.metadata)?.name);
    const labelsOf = (o: ApiObject | undefined): Record<string, string> | undefined => asObject(asObject(o?.metadata)?.labels) as Record<string, string> | undefined;
    const next = namespacePolicy(labelsOf(req.object), defaults);
    const refuse = (): never => {
      const texts = next.errors.map(labelErrorText);
      throw new AdmissionDenied(
        `Namespace ${quote(name)} is invalid: ${texts.length === 1 ? texts[0] : `[${texts.join(', ')}]`}`,
        422,
        next.errors.map((e) => ({ field: `metadata.labels[${e.label}]`, message: `Invalid value: ${quote(e.value)}: ${e.message}`, reason: 'FieldValueInvalid' })),
      );
    };
    if (req.operation === 'CREATE') {
      if (next.errors.length > 0) refuse();
      return;
    }
    const previous = namespacePolicy(labelsOf(req.oldObject), defaults);
    // Invalid labels that were already there (and are unchanged) do not block other updates.
    if (next.errors.length > 0 && (previous.errors.length === 0 || next.errors.map(labelErrorText).join('\n') !== previous.errors.map(labelErrorText).join('\n'))) refuse();
    const now = next.policy.enforce;
    const before = previous.policy.enforce;
    if (now.level === before.level && now.version === before.version) return;
    if (now.level === 'privileged') return;
    if (now.version === before.version && strictness(now.level) <= strictness(before.level)) return;
    if (exemptNamespace(name)) return;
    for (const warning of await podsViolating(name, now)) req.warning(warning);
  };

  return {
    handles: (req) => {
      if (req.operation !== 'CREATE' && req.operation !== 'UPDATE') return false;
      const { group, resource } = req.resource;
      return (group === '' && (resource === 'pods' || resource === 'namespaces')) || workloadKind(group, resource) !== undefined;
    },
    async validate(req) {
      if (req.operation !== 'CREATE' && req.operation !== 'UPDATE') return;
      const { group, resource } = req.resource;
      if (group === '' && resource === 'namespaces') return validateNamespace(req);
      if (group === '' && resource === 'pods') return validatePod(req);
      const kind = workloadKind(group, resource);
      if (kind) return validateWorkload(req, kind);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The plugin
// ---------------------------------------------------------------------------------------------

const LEVEL_SCHEMA = { type: 'string', enum: [...POD_SECURITY_LEVELS], default: 'privileged' };
const VERSION_SCHEMA = { type: 'string', pattern: '^(latest|v1\\.(0|[1-9][0-9]*))$', default: 'latest' };
const NAMES_SCHEMA = { type: 'array', items: { type: 'string', minLength: 1 }, default: [] };

/**
 * The PodSecurity admission plugin. Config: `defaults` (the policy of unlabelled namespaces: every
 * mode `privileged`, every version `latest` unless set) and `exemptions` (`usernames`,
 * `namespaces`, `runtimeClasses`). It keeps a namespace informer (synced before it provides its
 * step), reads a namespace it has not seen yet from the API, and lists a namespace's pods only when
 * that namespace's enforce level is tightened. Audit-mode violations are logged at info level.
 */
export const podSecurityPlugin = definePlugin<'admission', PodSecurityConfig>({
  id: 'pod-security',
  kind: 'admission',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'PodSecurity: enforces the Pod Security Standards (privileged, baseline, restricted) per namespace through pod-security.kubernetes.io labels.',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: {
      defaults: {
        type: 'object',
        additionalProperties: false,
        default: {},
        properties: { enforce: LEVEL_SCHEMA, enforceVersion: VERSION_SCHEMA, audit: LEVEL_SCHEMA, auditVersion: VERSION_SCHEMA, warn: LEVEL_SCHEMA, warnVersion: VERSION_SCHEMA },
      },
      exemptions: {
        type: 'object',
        additionalProperties: false,
        default: {},
        properties: { usernames: NAMES_SCHEMA, namespaces: NAMES_SCHEMA, runtimeClasses: NAMES_SCHEMA },
      },
    },
  },
  async start(handle, config, signal) {
    const api = handle.api;
    const namespaces = api.informer('/api/v1/namespaces');
    namespaces.run();
    await namespaces.waitForSync(signal);
    const log = handle.logger;
    handle.provide(
      podSecurity({
        defaults: config.defaults,
        exemptions: config.exemptions,
        async namespaceLabels(name) {
          const cached = namespaces.get(name);
          if (cached) return cached.metadata?.labels ?? {};
          // Not seen yet (created a moment ago): read it, so a fresh restricted namespace is never treated as unlabelled.
          try {
            const ns = await api.get(`/api/v1/namespaces/${encodeURIComponent(name)}`);
            return ns.metadata?.labels ?? {};
          } catch (err) {
            if (isNotFound(err)) return undefined;
            throw err;
          }
        },
        listPods: async (name) => (await api.list(`/api/v1/namespaces/${encodeURIComponent(name)}/pods`)).items,
        audit: (req, message) => log.info({ namespace: req.namespace, name: req.name, resource: req.resource.resource, user: req.user.username, audit: message }, 'PodSecurity audit violation'),
      }),
    );
    await untilAborted(signal);
  },
});
