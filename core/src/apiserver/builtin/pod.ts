import type { StatusCause } from '../status.js';
import type { Obj } from '../resource.js';
import { duplicate, forbiddenField, invalidValue, nameProblem, notSupported, portProblem, required, validateLabels } from './rules.js';

const RESTART_POLICIES = ['Always', 'OnFailure', 'Never'];
const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'];
const PROTOCOLS = ['TCP', 'UDP', 'SCTP'];

/** Whether an image reference names the `latest` tag (or none): Kubernetes then pulls Always. */
function pullsLatest(image: string): boolean {
  if (image.includes('@')) return false;
  const lastSlash = image.lastIndexOf('/');
  const colon = image.indexOf(':', lastSlash + 1);
  return colon < 0 || image.slice(colon + 1) === 'latest';
}

function defaultContainer(c: Obj): void {
  if (typeof c.image === 'string' && c.imagePullPolicy === undefined) c.imagePullPolicy = pullsLatest(c.image) ? 'Always' : 'IfNotPresent';
  c.terminationMessagePath ??= '/dev/termination-log';
  c.terminationMessagePolicy ??= 'File';
  c.resources ??= {};
  for (const p of (c.ports ?? []) as Obj[]) p.protocol ??= 'TCP';
  for (const e of (c.env ?? []) as Obj[]) {
    if (e.valueFrom?.fieldRef) e.valueFrom.fieldRef.apiVersion ??= 'v1';
  }
  for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe] as Array<Obj | undefined>) {
    if (!probe) continue;
    probe.timeoutSeconds ??= 1;
    probe.periodSeconds ??= 10;
    probe.successThreshold ??= 1;
    probe.failureThreshold ??= 3;
    if (probe.httpGet) probe.httpGet.scheme ??= 'HTTP';
  }
}

/** Kubernetes' defaults for a PodSpec, in place. */
export function defaultPodSpec(spec: Obj | undefined): void {
  if (!spec) return;
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.schedulerName ??= 'default-scheduler';
  spec.securityContext ??= {};
  spec.enableServiceLinks ??= true;
  spec.preemptionPolicy ??= 'PreemptLowerPriority';
  spec.priority ??= 0;
  for (const c of [...((spec.containers ?? []) as Obj[]), ...((spec.initContainers ?? []) as Obj[])]) defaultContainer(c);
  for (const v of (spec.volumes ?? []) as Obj[]) {
    if (v.configMap) v.configMap.defaultMode ??= 420;
    if (v.secret) v.secret.defaultMode ??= 420;
    if (v.downwardAPI) v.downwardAPI.defaultMode ??= 420;
    if (v.projected) v.projected.defaultMode ??= 420;
    if (v.hostPath) v.hostPath.type ??= '';
    if (!v.hostPath && !v.configMap && !v.secret && !v.persistentVolumeClaim && !v.projected && !v.downwardAPI && !v.csi && !v.ephemeral && !v.nfs && v.emptyDir === undefined) {
      const keys = Object.keys(v).filter((k) => k !== 'name');
      if (keys.length === 0) v.emptyDir = {};
    }
  }
}

function validateContainers(list: unknown, field: string, names: Set<string>, requiredList: boolean): StatusCause[] {
  const out: StatusCause[] = [];
  const containers = (list ?? []) as Obj[];
  if (requiredList && containers.length === 0) out.push(required(field));
  containers.forEach((c, i) => {
    const f = `${field}[${i}]`;
    if (typeof c.name !== 'string' || c.name === '') out.push(required(`${f}.name`));
    else {
      const p = nameProblem(c.name, 'label');
      if (p) out.push(invalidValue(`${f}.name`, c.name, p));
      if (names.has(c.name)) out.push(duplicate(`${f}.name`, c.name));
      names.add(c.name);
    }
    if (typeof c.image !== 'string' || c.image.trim() === '') out.push(required(`${f}.image`));
    if (c.imagePullPolicy !== undefined && !PULL_POLICIES.includes(c.imagePullPolicy)) out.push(notSupported(`${f}.imagePullPolicy`, c.imagePullPolicy, PULL_POLICIES));
    const portNames = new Set<string>();
    ((c.ports ?? []) as Obj[]).forEach((p, j) => {
      const pf = `${f}.ports[${j}]`;
      const bad = portProblem(`${pf}.containerPort`, p.containerPort);
      if (bad) out.push(bad);
      if (p.hostPort !== undefined && p.hostPort !== 0) {
        const hp = portProblem(`${pf}.hostPort`, p.hostPort);
        if (hp) out.push(hp);
      }
      if (p.protocol !== undefined && !PROTOCOLS.includes(p.protocol)) out.push(notSupported(`${pf}.protocol`, p.protocol, PROTOCOLS));
      if (p.name !== undefined) {
        if (portNames.has(p.name)) out.push(duplicate(`${pf}.name`, p.name));
        portNames.add(p.name);
      }
    });
    ((c.env ?? []) as Obj[]).forEach((e, j) => {
      if (typeof e.name !== 'string' || e.name === '') out.push(required(`${f}.env[${j}].name`));
    });
    const mounts = new Set<string>();
    ((c.volumeMounts ?? []) as Obj[]).forEach((m, j) => {
      if (typeof m.mountPath !== 'string' || m.mountPath === '') out.push(required(`${f}.volumeMounts[${j}].mountPath`));
      else if (mounts.has(m.mountPath)) out.push(invalidValue(`${f}.volumeMounts[${j}].mountPath`, m.mountPath, 'must be unique'));
      mounts.add(m.mountPath);
    });
  });
  return out;
}

/** Semantic validation of a PodSpec at `field` (`spec` or `spec.template.spec`). */
export function validatePodSpec(spec: Obj | undefined, field: string): StatusCause[] {
  if (!spec) return [required(field)];
  const out: StatusCause[] = [];
  const names = new Set<string>();
  out.push(...validateContainers(spec.containers, `${field}.containers`, names, true));
  out.push(...validateContainers(spec.initContainers, `${field}.initContainers`, names, false));
  if (spec.restartPolicy !== undefined && !RESTART_POLICIES.includes(spec.restartPolicy)) out.push(notSupported(`${field}.restartPolicy`, spec.restartPolicy, RESTART_POLICIES));
  const volumes = new Set<string>();
  ((spec.volumes ?? []) as Obj[]).forEach((v, i) => {
    if (typeof v.name !== 'string' || v.name === '') out.push(required(`${field}.volumes[${i}].name`));
    else {
      const p = nameProblem(v.name, 'label');
      if (p) out.push(invalidValue(`${field}.volumes[${i}].name`, v.name, p));
      if (volumes.has(v.name)) out.push(duplicate(`${field}.volumes[${i}].name`, v.name));
      volumes.add(v.name);
    }
  });
  for (const [i, c] of [...((spec.containers ?? []) as Obj[]), ...((spec.initContainers ?? []) as Obj[])].entries()) {
    for (const [j, m] of ((c.volumeMounts ?? []) as Obj[]).entries()) {
      if (typeof m.name === 'string' && !volumes.has(m.name)) out.push(cause404(`${field}.containers[${i}].volumeMounts[${j}].name`, m.name));
    }
  }
  if (spec.terminationGracePeriodSeconds !== undefined && (typeof spec.terminationGracePeriodSeconds !== 'number' || spec.terminationGracePeriodSeconds < 0)) {
    out.push(invalidValue(`${field}.terminationGracePeriodSeconds`, spec.terminationGracePeriodSeconds, 'must be greater than or equal to 0'));
  }
  return out;
}

function cause404(field: string, name: unknown): StatusCause {
  return { reason: 'FieldValueNotFound', field, message: `Not found: ${JSON.stringify(name)}` };
}

/** Validation of a pod template (`spec.template`) whose labels must match `selector`. */
export function validatePodTemplate(template: Obj | undefined, field: string): StatusCause[] {
  if (!template) return [required(field)];
  return [...validateLabels(template.metadata?.labels, `${field}.metadata.labels`), ...validatePodSpec(template.spec, `${field}.spec`)];
}

/** Pod spec fields an update may change (Kubernetes: images, deadlines, tolerations additions, grace period). */
export function validatePodSpecUpdate(spec: Obj, old: Obj): StatusCause[] {
  const strip = (s: Obj): Obj => {
    const copy = structuredClone(s) as Obj;
    for (const c of [...((copy.containers ?? []) as Obj[]), ...((copy.initContainers ?? []) as Obj[])]) delete c.image;
    delete copy.activeDeadlineSeconds;
    delete copy.tolerations;
    delete copy.terminationGracePeriodSeconds;
    return copy;
  };
  if (JSON.stringify(strip(spec)) !== JSON.stringify(strip(old))) {
    return [
      forbiddenField(
        'spec',
        'pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)',
      ),
    ];
  }
  return [];
}

/** The STATUS column of `kubectl get pods`, following the kubectl printer's rules (simplified). */
export function podStatusReason(pod: Obj): string {
  let reason: string = pod.status?.reason ?? pod.status?.phase ?? 'Pending';
  const init = (pod.status?.initContainerStatuses ?? []) as Obj[];
  const total = ((pod.spec?.initContainers ?? []) as Obj[]).length;
  let initializing = false;
  init.forEach((s, i) => {
    if (initializing) return;
    if (s.state?.terminated?.exitCode === 0) return;
    if (s.state?.terminated) reason = s.state.terminated.reason ? `Init:${s.state.terminated.reason}` : `Init:ExitCode:${s.state.terminated.exitCode}`;
    else if (s.state?.waiting?.reason && s.state.waiting.reason !== 'PodInitializing') reason = `Init:${s.state.waiting.reason}`;
    else reason = `Init:${i}/${total}`;
    initializing = true;
  });
  if (!initializing) {
    let running = false;
    for (const s of [...((pod.status?.containerStatuses ?? []) as Obj[])].reverse()) {
      if (s.state?.waiting?.reason) reason = s.state.waiting.reason;
      else if (s.state?.terminated?.reason) reason = s.state.terminated.reason;
      else if (s.state?.terminated) reason = s.state.terminated.signal ? `Signal:${s.state.terminated.signal}` : `ExitCode:${s.state.terminated.exitCode}`;
      else if (s.ready && s.state?.running) running = true;
    }
    if (reason === 'Completed' && running) reason = 'Running';
  }
  if (pod.metadata?.deletionTimestamp) reason = pod.status?.reason === 'NodeLost' ? 'Unknown' : 'Terminating';
  return reason;
}
