/**
 * The downward API's value extraction, shared by environment variables (`valueFrom`) and
 * `downwardAPI` volume files, with the kubelet's semantics (`pkg/fieldpath`,
 * `pkg/apis/core/pods.ConvertDownwardAPIFieldLabel`, `pkg/api/v1/resource` helpers):
 *
 * - pod fields: `metadata.name|namespace|uid`, `metadata.labels`/`metadata.annotations` (all of
 *   them as sorted `key="value"` lines, Go-quoted) or one of them by subscript
 *   (`metadata.labels['app']`);
 * - container resources: `requests.*`/`limits.*` of `cpu` (milli-units, rounded up),
 *   `memory`, `ephemeral-storage` and `hugepages-*` (bytes, rounded up), divided by the divisor
 *   (1 when absent or zero) and rounded up; unset limits default to the node's allocatable.
 *
 * @module
 */
import { parseQuantity } from '@kubernel/sdk';
import type { V1ObjectFieldSelector, V1PodContainer, V1PodObject, V1ResourceFieldSelector } from './core-v1.js';

/** Go's `%q` of a string: double-quoted with Go's escapes (printable non-ASCII stays as is). */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    switch (ch) {
      case '"': out += '\\"'; continue;
      case '\\': out += '\\\\'; continue;
      case '\x07': out += '\\a'; continue;
      case '\b': out += '\\b'; continue;
      case '\f': out += '\\f'; continue;
      case '\n': out += '\\n'; continue;
      case '\r': out += '\\r'; continue;
      case '\t': out += '\\t'; continue;
      case '\v': out += '\\v'; continue;
    }
    if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else if ((c >= 0x80 && c < 0xa0) || c === 0xad || c === 0xfeff || (c >= 0xd800 && c < 0xe000)) out += c > 0xff ? `\\u${c.toString(16).padStart(4, '0')}` : `\\u00${c.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/** `FormatMap`: `key="value"` lines sorted by key, without a final newline. */
export function formatMap(m: Readonly<Record<string, string>> | undefined): string {
  return Object.keys(m ?? {})
    .sort()
    .map((k) => `${k}=${goQuote(m![k]!)}`)
    .join('\n');
}

/** `SplitMaybeSubscriptedPath`: `metadata.labels['k']` → `['metadata.labels', 'k']`. */
export function splitSubscriptedPath(fieldPath: string): [string, string] | undefined {
  if (!fieldPath.endsWith("']")) return undefined;
  const s = fieldPath.slice(0, -2);
  const at = s.indexOf("['");
  if (at <= 0) return undefined;
  return [s.slice(0, at), s.slice(at + 2)];
}

const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** `IsQualifiedName`: the problems of a label or annotation key (none when valid). */
export function qualifiedNameErrors(value: string): string[] {
  const parts = value.split('/');
  let name = value;
  const errs: string[] = [];
  if (parts.length === 2) {
    const [prefix, n] = parts as [string, string];
    name = n;
    if (prefix.length === 0) errs.push('prefix part must be non-empty');
    else if (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix)) errs.push('prefix part must be a lowercase RFC 1123 subdomain');
  } else if (parts.length > 2) {
    return ["a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character with an optional DNS subdomain prefix and '/'"];
  }
  if (name.length === 0) errs.push('name part must be non-empty');
  else if (name.length > 63) errs.push('name part must be no more than 63 characters');
  else if (!QUALIFIED_NAME.test(name)) errs.push("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character");
  return errs;
}

/** The pod fields the downward API accepts (`ConvertDownwardAPIFieldLabel`). */
const SUPPORTED_FIELDS = new Set([
  'metadata.annotations',
  'metadata.labels',
  'metadata.name',
  'metadata.namespace',
  'metadata.uid',
  'spec.nodeName',
  'spec.restartPolicy',
  'spec.serviceAccountName',
  'spec.schedulerName',
  'status.phase',
  'status.hostIP',
  'status.hostIPs',
  'status.podIP',
  'status.podIPs',
]);

/**
 * `ConvertDownwardAPIFieldLabel`: the internal field path of a selector (`spec.host` becomes
 * `spec.nodeName`).
 *
 * @throws {Error} `unsupported pod version: ...`, `field label does not support subscript: ...`,
 *   `field label not supported: ...`.
 */
export function convertFieldLabel(selector: V1ObjectFieldSelector): string {
  const version = selector.apiVersion ?? 'v1';
  if (version !== 'v1') throw new Error(`unsupported pod version: ${version}`);
  const label = selector.fieldPath;
  const sub = splitSubscriptedPath(label);
  if (sub) {
    if (sub[0] === 'metadata.annotations' || sub[0] === 'metadata.labels') return label;
    throw new Error(`field label does not support subscript: ${label}`);
  }
  if (label === 'spec.host') return 'spec.nodeName';
  if (SUPPORTED_FIELDS.has(label)) return label;
  throw new Error(`field label not supported: ${label}`);
}

/**
 * `ExtractFieldPathAsString`: a metadata field of the pod as text.
 *
 * @throws {Error} for a path other than `metadata.{name,namespace,uid,labels,annotations}`
 *   (`unsupported fieldPath: ...`) or an invalid subscript.
 */
export function extractFieldPathAsString(pod: V1PodObject, fieldPath: string): string {
  const meta = pod.metadata;
  const sub = splitSubscriptedPath(fieldPath);
  if (sub) {
    const [path, key] = sub;
    if (path === 'metadata.annotations' || path === 'metadata.labels') {
      const errs = qualifiedNameErrors(path === 'metadata.annotations' ? key.toLowerCase() : key);
      if (errs.length > 0) throw new Error(`invalid key subscript in ${fieldPath}: ${errs.join(';')}`);
      return (path === 'metadata.annotations' ? meta.annotations : meta.labels)?.[key] ?? '';
    }
    throw new Error(`fieldPath ${JSON.stringify(fieldPath)} does not support subscript`);
  }
  switch (fieldPath) {
    case 'metadata.annotations':
      return formatMap(meta.annotations);
    case 'metadata.labels':
      return formatMap(meta.labels);
    case 'metadata.name':
      return meta.name ?? '';
    case 'metadata.namespace':
      return meta.namespace ?? '';
    case 'metadata.uid':
      return meta.uid ?? '';
  }
  throw new Error(`unsupported fieldPath: ${fieldPath}`);
}

// ---------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------

/** Resource quantities by name (`cpu`, `memory`, `ephemeral-storage`, `hugepages-2Mi`). */
export type ResourceList = Readonly<Record<string, string | number>>;

const ceilDiv = (a: bigint, b: bigint): bigint => (a % b === 0n ? a / b : a / b + (a > 0n === b > 0n ? 1n : 0n));
const NANO_PER_MILLI = 1_000_000n;
const NANO_PER_UNIT = 1_000_000_000n;

/** `Quantity.MilliValue()`: milli-units, rounded up. */
const milliValue = (q: string | number | undefined): bigint => (q === undefined ? 0n : ceilDiv(parseQuantity(q).nanos, NANO_PER_MILLI));
/** `Quantity.Value()`: units, rounded up. */
const unitValue = (q: string | number | undefined): bigint => (q === undefined ? 0n : ceilDiv(parseQuantity(q).nanos, NANO_PER_UNIT));

/** The resources whose limits default to the node's allocatable when unset. */
const isDefaultedResource = (name: string): boolean => name === 'cpu' || name === 'memory' || name === 'ephemeral-storage' || name.startsWith('hugepages-');

/**
 * `MergeContainerResourceLimits`: the container with its unset cpu, memory, ephemeral-storage and
 * hugepages limits set to the node's allocatable (as the kubelet does for the downward API).
 */
export function withDefaultLimits<C extends V1PodContainer>(container: C, allocatable: ResourceList | undefined): C {
  if (!allocatable) return container;
  const limits: Record<string, string | number> = { ...(container.resources?.limits ?? {}) };
  let changed = false;
  for (const [name, value] of Object.entries(allocatable)) {
    if (isDefaultedResource(name) && limits[name] === undefined) {
      limits[name] = value;
      changed = true;
    }
  }
  return changed ? { ...container, resources: { ...(container.resources ?? {}), limits } } : container;
}

/**
 * `ExtractContainerResourceValue`: a container's request or limit as the downward API writes it.
 *
 * @throws {Error} `unsupported container resource : ...` for another resource.
 */
export function containerResourceValue(selector: V1ResourceFieldSelector, container: V1PodContainer): string {
  const divisorText = selector.divisor;
  const divisorNanos = divisorText === undefined ? 0n : parseQuantity(divisorText).nanos;
  const divisor = divisorNanos === 0n ? '1' : divisorText!;
  const dot = selector.resource.indexOf('.');
  const kind = selector.resource.slice(0, dot);
  const name = selector.resource.slice(dot + 1);
  if (dot > 0 && (kind === 'limits' || kind === 'requests')) {
    const list = (kind === 'limits' ? container.resources?.limits : container.resources?.requests) ?? {};
    if (name === 'cpu') {
      const d = milliValue(divisor);
      return String(d === 0n ? 0n : ceilDiv(milliValue(list.cpu), d));
    }
    if (name === 'memory' || name === 'ephemeral-storage' || name.startsWith('hugepages-')) {
      const d = unitValue(divisor);
      return String(d === 0n ? 0n : ceilDiv(unitValue(list[name]), d));
    }
  }
  throw new Error(`unsupported container resource : ${selector.resource}`);
}

/**
 * `ExtractResourceValueByContainerNameAndNodeAllocatable`: the value for the named container of
 * the pod (regular or init), its unset limits defaulted to `allocatable`.
 *
 * @throws {Error} when the pod has no such container, or for an unsupported resource.
 */
export function podResourceValue(selector: V1ResourceFieldSelector, pod: V1PodObject, containerName: string, allocatable: ResourceList | undefined): string {
  const container = [...pod.spec.containers, ...(pod.spec.initContainers ?? [])].find((c) => c.name === containerName);
  if (!container) throw new Error(`container ${containerName} not found`);
  return containerResourceValue(selector, withDefaultLimits(container, allocatable));
}
