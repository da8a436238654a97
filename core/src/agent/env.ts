/**
 * A container's environment, as the kubelet makes it (`makeEnvironmentVariables`,
 * `pkg/kubelet/envvars`, `third_party/forked/golang/expansion`, Kubernetes 1.30):
 *
 * 1. the service variables of the pod's namespace (docker-links style) unless
 *    `enableServiceLinks: false`, plus those of the `kubernetes` service of `default` always;
 * 2. `envFrom` sources in order (configMap/secret, with `prefix`; keys that are not valid
 *    variable names are skipped and reported as an `InvalidEnvironmentVariableNames` warning);
 * 3. `env` in order, overriding: a `value` has its `$(VAR)` references expanded against the
 *    variables defined so far and the service variables (`$$` escapes `$`; an unknown reference
 *    stays literal); a `valueFrom` is resolved (`fieldRef`, `resourceFieldRef`, `configMapKeyRef`,
 *    `secretKeyRef`, each `optional`-aware);
 * 4. the service variables not already defined.
 *
 * The kubelet returns the variables in Go map order (random); here the order is defined: the
 * container's variables in first-definition order, then the service variables (services by name,
 * each in the kubelet's generation order).
 *
 * Errors are {@link ContainerConfigError}s with the kubelet's messages, which the pod worker shows
 * as the container's waiting reason `CreateContainerConfigError`.
 *
 * @module
 */
import type { KeyValue } from '@kubernel/sdk';
import type { V1PodContainer, V1PodObject, V1Service } from './core-v1.js';
import { containerResourceValue, convertFieldLabel, extractFieldPathAsString, podResourceValue, withDefaultLimits, type ResourceList } from './fieldpath.js';
import { ContainerConfigError, isObjectNotFound, type VolumeSources } from './pod-sources.js';

// ---------------------------------------------------------------------------------------------
// Expansion
// ---------------------------------------------------------------------------------------------

/** Resolves a variable name to its value (or to the text that stands for it). */
export type Mapping = (name: string) => string;

/**
 * `MappingFuncFor`: looks a name up in each map in turn; an unknown name maps to its own
 * reference `$(name)`, so it stays literal.
 */
export function mappingFor(...contexts: readonly ReadonlyMap<string, string>[]): Mapping {
  return (name) => {
    for (const vars of contexts) {
      const v = vars.get(name);
      if (v !== undefined) return v;
    }
    return `$(${name})`;
  };
}

/**
 * `expansion.Expand`: replaces `$(VAR)` references in `input` through `mapping`. `$$` is an
 * escaped `$`; a `$` not followed by `(` or `$` stays as it is, as does an unclosed `$(`.
 */
export function expand(input: string, mapping: Mapping): string {
  let out = '';
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] !== '$' || cursor + 1 >= input.length) continue;
    out += input.slice(checkpoint, cursor);
    const next = input[cursor + 1];
    let advance = 1;
    if (next === '$') out += '$';
    else if (next === '(') {
      const close = input.indexOf(')', cursor + 2);
      if (close >= 0) {
        out += mapping(input.slice(cursor + 2, close));
        advance = close - cursor;
      } else out += '$(';
    } else out += `$${next}`;
    cursor += advance;
    checkpoint = cursor + 1;
  }
  return out + input.slice(checkpoint);
}

/**
 * `ExpandContainerCommandAndArgs`: the container's command and args with `$(VAR)` references to
 * its final environment expanded (absent lists stay absent).
 */
export function expandCommandAndArgs(container: Pick<V1PodContainer, 'command' | 'args'>, envs: readonly KeyValue[]): { command?: string[]; args?: string[] } {
  const mapping = mappingFor(new Map(envs.map((e) => [e.key, e.value])));
  return {
    ...(container.command && container.command.length > 0 ? { command: container.command.map((c) => expand(c, mapping)) } : {}),
    ...(container.args && container.args.length > 0 ? { args: container.args.map((a) => expand(a, mapping)) } : {}),
  };
}

/**
 * `ExpandContainerVolumeMounts`: a `subPathExpr` expanded with the container's environment.
 *
 * @throws {ContainerConfigError} `missing value for A, B` when a referenced variable is unset or empty.
 */
export function expandSubPathExpr(subPathExpr: string, envs: readonly KeyValue[]): string {
  const vars = new Map(envs.map((e) => [e.key, e.value]));
  const missing = new Set<string>();
  const expanded = expand(subPathExpr, (name) => {
    const v = vars.get(name);
    if (!v) missing.add(name);
    return v ?? '';
  });
  if (missing.size > 0) throw new ContainerConfigError(`missing value for ${[...missing].sort().join(', ')}`);
  return expanded;
}

// ---------------------------------------------------------------------------------------------
// Service variables
// ---------------------------------------------------------------------------------------------

/** `makeEnvVariableName`: upper case, `-` → `_`. */
const envName = (s: string): string => s.replace(/-/g, '_').toUpperCase();

/** `IsServiceIPSet`: a cluster IP that is neither empty nor `None`. */
export function isServiceIPSet(service: V1Service): boolean {
  const ip = service.spec?.clusterIP ?? '';
  return ip !== '' && ip !== 'None';
}

/** `net.JoinHostPort`. */
const joinHostPort = (host: string, port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

/**
 * `envvars.FromServices`: for each service with a cluster IP, `{SVC}_SERVICE_HOST`,
 * `{SVC}_SERVICE_PORT` (the first port), `{SVC}_SERVICE_PORT_{NAME}` per named port, and the
 * docker-links variables: `{SVC}_PORT` (first port, `tcp://ip:port`) and per port
 * `{SVC}_PORT_{port}_{PROTO}`, `..._PROTO`, `..._PORT`, `..._ADDR`.
 */
export function serviceEnvVars(services: readonly V1Service[]): KeyValue[] {
  const out: KeyValue[] = [];
  for (const svc of services) {
    if (!isServiceIPSet(svc)) continue;
    const ports = svc.spec?.ports ?? [];
    if (ports.length === 0) continue;
    const ip = svc.spec!.clusterIP!;
    const prefix = envName(svc.metadata.name ?? '');
    out.push({ key: `${prefix}_SERVICE_HOST`, value: ip });
    out.push({ key: `${prefix}_SERVICE_PORT`, value: String(ports[0]!.port) });
    for (const p of ports) if (p.name) out.push({ key: `${prefix}_SERVICE_PORT_${envName(p.name)}`, value: String(p.port) });
    ports.forEach((p, i) => {
      const proto = p.protocol || 'TCP';
      const url = `${proto.toLowerCase()}://${joinHostPort(ip, p.port)}`;
      if (i === 0) out.push({ key: `${prefix}_PORT`, value: url });
      const pp = `${prefix}_PORT_${p.port}_${proto.toUpperCase()}`;
      out.push({ key: pp, value: url }, { key: `${pp}_PROTO`, value: proto.toLowerCase() }, { key: `${pp}_PORT`, value: String(p.port) }, { key: `${pp}_ADDR`, value: ip });
    });
  }
  return out;
}

/** The services whose variables the kubelet always injects, from namespace `default`. */
const MASTER_SERVICES = new Set(['kubernetes']);

/**
 * `getServiceEnvVarMap`: the service variables a pod of namespace `ns` sees: the `kubernetes`
 * service of `default` always (in-cluster clients need `KUBERNETES_SERVICE_HOST` even with
 * `enableServiceLinks: false`, as in Kubernetes), plus every service of `ns` with a cluster IP
 * when `enableServiceLinks` (a same-named service of `ns` wins over the master one).
 *
 * @throws {ContainerConfigError} `failed to list services when setting up env vars`.
 */
export async function serviceEnvMap(sources: Pick<VolumeSources, 'listServices'>, ns: string, enableServiceLinks: boolean): Promise<Map<string, string>> {
  const byName = new Map<string, V1Service>();
  try {
    for (const svc of await sources.listServices('default')) {
      const name = svc.metadata.name ?? '';
      if (isServiceIPSet(svc) && MASTER_SERVICES.has(name)) byName.set(name, svc);
    }
    if (enableServiceLinks) {
      for (const svc of await sources.listServices(ns)) if (isServiceIPSet(svc)) byName.set(svc.metadata.name ?? '', svc);
    }
  } catch {
    throw new ContainerConfigError('failed to list services when setting up env vars');
  }
  const sorted = [...byName.keys()].sort().map((n) => byName.get(n)!);
  return new Map(serviceEnvVars(sorted).map((kv) => [kv.key, kv.value]));
}

// ---------------------------------------------------------------------------------------------
// The environment
// ---------------------------------------------------------------------------------------------

/** Options of {@link resolveEnv}. */
export interface ResolveEnvOptions {
  /** The pod's IPs (primary first); default from `pod.status`. */
  readonly podIPs?: readonly string[];
  /** The node's IPs (primary first), for `status.hostIP(s)`; default from `pod.status`. */
  readonly hostIPs?: readonly string[];
  /** The node's allocatable resources: the default of unset limits for `resourceFieldRef`. */
  readonly nodeAllocatable?: ResourceList;
  /**
   * Called with a Warning event the kubelet would record for the pod (reason
   * `InvalidEnvironmentVariableNames` when `envFrom` keys were skipped).
   */
  readonly onWarning?: (reason: string, message: string) => void;
}

const ENV_VAR_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

/** `IsEnvVarName` (as of Kubernetes 1.30): `[-._a-zA-Z][-._a-zA-Z0-9]*`, not `.`, `..` or `..*`. */
export function isEnvVarName(name: string): boolean {
  return ENV_VAR_NAME.test(name) && name !== '.' && !name.startsWith('..');
}

const decodeBase64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');
const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/**
 * The container's environment as CRI key/values (see the module comment for the rules and order).
 *
 * @throws {ContainerConfigError} with the kubelet's message: `configmap "x" not found`,
 *   `secret "x" not found`, `couldn't find key k in ConfigMap ns/x` (or `Secret`), an unsupported
 *   field or resource, or `failed to list services when setting up env vars`.
 */
export async function resolveEnv(pod: V1PodObject, container: V1PodContainer, sources: Omit<VolumeSources, 'requestServiceAccountToken'>, options: ResolveEnvOptions = {}): Promise<KeyValue[]> {
  const ns = pod.metadata.namespace ?? 'default';
  const serviceEnv = await serviceEnvMap(sources, ns, pod.spec.enableServiceLinks !== false);
  const configMaps = new Map<string, Readonly<Record<string, string>>>();
  const secrets = new Map<string, Readonly<Record<string, string>>>();

  /** The data of an object (cached per call); undefined when missing and optional. */
  const dataOf = async (kind: 'configmap' | 'secret', name: string, optional: boolean): Promise<Readonly<Record<string, string>> | undefined> => {
    const cache = kind === 'configmap' ? configMaps : secrets;
    const cached = cache.get(name);
    if (cached) return cached;
    let data: Readonly<Record<string, string>>;
    try {
      if (kind === 'configmap') data = (await sources.getConfigMap(ns, name)).data ?? {};
      else data = Object.fromEntries(Object.entries((await sources.getSecret(ns, name)).data ?? {}).map(([k, v]) => [k, decodeBase64(v)]));
    } catch (err) {
      if (!isObjectNotFound(err)) throw new ContainerConfigError(errorText(err));
      if (optional) return undefined;
      throw new ContainerConfigError(`${kind} "${name}" not found`);
    }
    cache.set(name, data);
    return data;
  };

  const env = new Map<string, string>();
  for (const from of container.envFrom ?? []) {
    const ref = from.configMapRef ?? from.secretRef;
    if (!ref) continue;
    const kind = from.configMapRef ? 'configmap' : 'secret';
    const name = ref.name ?? '';
    const data = await dataOf(kind, name, ref.optional === true);
    if (!data) continue;
    const invalid: string[] = [];
    for (const [k, v] of Object.entries(data)) {
      const key = `${from.prefix ?? ''}${k}`;
      if (!isEnvVarName(key)) {
        invalid.push(key);
        continue;
      }
      env.set(key, v);
    }
    if (invalid.length > 0) {
      options.onWarning?.(
        'InvalidEnvironmentVariableNames',
        `Keys [${invalid.sort().join(', ')}] from the EnvFrom ${kind === 'configmap' ? 'configMap' : 'secret'} ${ns}/${name} were skipped since they are considered invalid environment variable names.`,
      );
    }
  }

  const mapping = mappingFor(env, serviceEnv);
  for (const v of container.env ?? []) {
    let value = v.value ?? '';
    if (value !== '') value = expand(value, mapping);
    else if (v.valueFrom) {
      const from = v.valueFrom;
      if (from.fieldRef) value = fieldValue(pod, from.fieldRef, options);
      else if (from.resourceFieldRef) {
        try {
          const sel = from.resourceFieldRef;
          value = sel.containerName ? podResourceValue(sel, pod, sel.containerName, options.nodeAllocatable) : containerResourceValue(sel, withDefaultLimits(container, options.nodeAllocatable));
        } catch (err) {
          throw new ContainerConfigError(errorText(err));
        }
      } else if (from.configMapKeyRef || from.secretKeyRef) {
        const ref = (from.configMapKeyRef ?? from.secretKeyRef)!;
        const kind = from.configMapKeyRef ? 'configmap' : 'secret';
        const name = ref.name ?? '';
        const data = await dataOf(kind, name, ref.optional === true);
        if (!data) continue;
        const found = data[ref.key];
        if (found === undefined) {
          if (ref.optional === true) continue;
          throw new ContainerConfigError(`couldn't find key ${ref.key} in ${kind === 'configmap' ? 'ConfigMap' : 'Secret'} ${ns}/${name}`);
        }
        value = found;
      }
    }
    env.set(v.name, value);
  }

  const result: KeyValue[] = [...env].map(([key, value]) => ({ key, value }));
  for (const [key, value] of serviceEnv) if (!env.has(key)) result.push({ key, value });
  return result;
}

/** `podFieldSelectorRuntimeValue`. */
function fieldValue(pod: V1PodObject, selector: { apiVersion?: string; fieldPath: string }, options: ResolveEnvOptions): string {
  try {
    const path = convertFieldLabel(selector);
    const podIPs = options.podIPs ?? ipsOf(pod.status?.podIPs, pod.status?.podIP);
    const hostIPs = () => {
      const ips = options.hostIPs ?? ipsOf(pod.status?.hostIPs, pod.status?.hostIP);
      if (ips.length === 0) throw new Error('the node has no known IP address');
      return ips;
    };
    switch (path) {
      case 'spec.nodeName':
        return pod.spec.nodeName ?? '';
      case 'spec.serviceAccountName':
        return pod.spec.serviceAccountName ?? '';
      case 'status.hostIP':
        return hostIPs()[0]!;
      case 'status.hostIPs':
        return hostIPs().join(',');
      case 'status.podIP':
        return podIPs[0] ?? '';
      case 'status.podIPs':
        return podIPs.join(',');
    }
    return extractFieldPathAsString(pod, path);
  } catch (err) {
    throw new ContainerConfigError(errorText(err));
  }
}

const ipsOf = (list: readonly { readonly ip: string }[] | undefined, single: string | undefined): string[] =>
  list && list.length > 0 ? list.map((x) => x.ip) : single ? [single] : [];
