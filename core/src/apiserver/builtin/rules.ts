import { cause, type StatusCause } from '../status.js';
import type { Obj } from '../resource.js';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;

/** How a resource's names are checked. */
export type NameRule = 'subdomain' | 'label' | 'dns1035' | 'path';

/** Kubernetes' message for a name that breaks `rule`, or undefined when it is fine. */
export function nameProblem(name: string, rule: NameRule): string | undefined {
  switch (rule) {
    case 'subdomain':
      if (name.length > 253) return 'must be no more than 253 characters';
      if (!DNS1123_SUBDOMAIN.test(name)) {
        return "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
      }
      return undefined;
    case 'label':
      if (name.length > 63) return 'must be no more than 63 characters';
      if (!DNS1123_LABEL.test(name)) {
        return "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
      }
      return undefined;
    case 'dns1035':
      if (name.length > 63) return 'must be no more than 63 characters';
      if (!DNS1035_LABEL.test(name)) {
        return "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
      }
      return undefined;
    case 'path':
      if (name === '.' || name === '..') return `may not be '${name}'`;
      if (/[/%]/.test(name)) return "may not contain '/' or '%'";
      return undefined;
  }
}

export const invalidValue = (field: string, value: unknown, message: string): StatusCause =>
  cause('FieldValueInvalid', field, `Invalid value: ${JSON.stringify(value)}: ${message}`);
export const required = (field: string, message = ''): StatusCause => cause('FieldValueRequired', field, `Required value${message ? `: ${message}` : ''}`);
export const duplicate = (field: string, value: unknown): StatusCause => cause('FieldValueDuplicate', field, `Duplicate value: ${JSON.stringify(value)}`);
export const notSupported = (field: string, value: unknown, allowed: readonly string[]): StatusCause =>
  cause('FieldValueNotSupported', field, `Unsupported value: ${JSON.stringify(value)}: supported values: ${allowed.map((a) => `"${a}"`).join(', ')}`);
export const forbiddenField = (field: string, message: string): StatusCause => cause('FieldValueForbidden', field, `Forbidden: ${message}`);
export const immutable = (field: string, value: unknown): StatusCause => invalidValue(field, value, 'field is immutable');

/** Checks a label or annotation key (a qualified name with an optional DNS-subdomain prefix). */
export function qualifiedNameProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const [prefix, name] = slash >= 0 ? [key.slice(0, slash), key.slice(slash + 1)] : [undefined, key];
  if (prefix !== undefined && (prefix === '' || nameProblem(prefix, 'subdomain'))) return 'prefix part must be a lowercase RFC 1123 subdomain';
  if (!name || name.length > 63 || !QUALIFIED_NAME.test(name)) {
    return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";
  }
  return undefined;
}

/** Validates a labels map at `field`. */
export function validateLabels(labels: unknown, field: string): StatusCause[] {
  if (labels === undefined || labels === null) return [];
  const out: StatusCause[] = [];
  for (const [k, v] of Object.entries(labels as Record<string, unknown>)) {
    const kp = qualifiedNameProblem(k);
    if (kp) out.push(invalidValue(field, k, kp));
    if (typeof v !== 'string' || v.length > 63 || !LABEL_VALUE.test(v)) {
      out.push(invalidValue(`${field}`, v, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"));
    }
  }
  return out;
}

/** Validates ObjectMeta fields every resource shares (name, labels, annotations). */
export function validateMeta(o: Obj, rule: NameRule): StatusCause[] {
  const meta = (o.metadata ?? {}) as Obj;
  const out: StatusCause[] = [];
  if (typeof meta.name === 'string') {
    const p = nameProblem(meta.name, rule);
    if (p) out.push(invalidValue('metadata.name', meta.name, p));
  }
  out.push(...validateLabels(meta.labels, 'metadata.labels'));
  if (meta.annotations) {
    let size = 0;
    for (const [k, v] of Object.entries(meta.annotations as Record<string, unknown>)) {
      const kp = qualifiedNameProblem(k);
      if (kp) out.push(invalidValue('metadata.annotations', k, kp));
      size += k.length + String(v).length;
    }
    if (size > 256 * 1024) out.push(cause('FieldValueTooLong', 'metadata.annotations', 'Too long: must have at most 262144 bytes'));
  }
  return out;
}

/** Validates the keys of a ConfigMap's or Secret's data maps. */
export function validateDataKeys(maps: Array<[string, unknown]>): StatusCause[] {
  const out: StatusCause[] = [];
  const seen = new Set<string>();
  for (const [field, map] of maps) {
    for (const key of Object.keys((map as Record<string, unknown>) ?? {})) {
      if (key.length > 253 || !CONFIG_KEY.test(key)) {
        out.push(invalidValue(`${field}`, key, "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"));
      }
      if (seen.has(key)) out.push(invalidValue(field, key, 'duplicate of key present in another data map'));
      seen.add(key);
    }
  }
  return out;
}

/** A port number check: 1..65535. */
export function portProblem(field: string, port: unknown): StatusCause | undefined {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    return invalidValue(field, port, 'must be between 1 and 65535, inclusive');
  }
  return undefined;
}

/** True when every label of `selector.matchLabels` (and its expressions) matches `labels`. */
export function selectorMatches(selector: Obj | undefined, labels: Record<string, string> | undefined): boolean {
  if (!selector) return false;
  const l = labels ?? {};
  for (const [k, v] of Object.entries((selector.matchLabels ?? {}) as Record<string, string>)) if (l[k] !== v) return false;
  for (const e of (selector.matchExpressions ?? []) as Array<{ key: string; operator: string; values?: string[] }>) {
    const has = Object.prototype.hasOwnProperty.call(l, e.key);
    if (e.operator === 'In' && !(has && e.values?.includes(l[e.key]!))) return false;
    if (e.operator === 'NotIn' && has && e.values?.includes(l[e.key]!)) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

/** `a=b,c in (d)` from a LabelSelector, as the scale subresource reports it. */
export function selectorString(selector: Obj | undefined): string {
  if (!selector) return '';
  const parts = Object.entries((selector.matchLabels ?? {}) as Record<string, string>).map(([k, v]) => `${k}=${v}`);
  for (const e of (selector.matchExpressions ?? []) as Array<{ key: string; operator: string; values?: string[] }>) {
    if (e.operator === 'In') parts.push(`${e.key} in (${(e.values ?? []).join(',')})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${(e.values ?? []).join(',')})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
  }
  return parts.join(',');
}
