import { badRequest } from './status.js';

/** One requirement of a label selector, as Kubernetes parses them. */
export interface Requirement {
  readonly key: string;
  readonly op: 'in' | 'notin' | 'exists' | '!' | '=' | '!=';
  readonly values: readonly string[];
}

/** A parsed selector: every requirement must hold. */
export type Selector = readonly Requirement[];

const VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const KEY = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** Splits on commas that are not inside parentheses. */
function terms(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  if (current.trim() !== '' || out.length > 0) out.push(current);
  return out.map((t) => t.trim());
}

/**
 * Parses a label selector: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, joined
 * by commas. @throws {ApiError} 400 naming the bad term
 */
export function parseLabelSelector(text: string | null | undefined): Selector {
  if (!text || text.trim() === '') return [];
  const out: Requirement[] = [];
  for (const term of terms(text)) {
    let m: RegExpExecArray | null;
    if ((m = /^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(term))) {
      out.push({ key: m[1]!, op: m[2] as 'in' | 'notin', values: m[3]!.split(',').map((v) => v.trim()).filter((v) => v !== '') });
    } else if ((m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(term))) {
      out.push({ key: m[1]!, op: m[2] === '!=' ? '!=' : '=', values: [m[3]!] });
    } else if ((m = /^!\s*(\S+)$/.exec(term))) {
      out.push({ key: m[1]!, op: '!', values: [] });
    } else if ((m = /^(\S+)$/.exec(term))) {
      out.push({ key: m[1]!, op: 'exists', values: [] });
    } else {
      throw badRequest(`unable to parse requirement: ${JSON.stringify(term)}: found '${term}', expected: in, notin, =, ==, !=, gt, lt`);
    }
    const last = out[out.length - 1]!;
    if (!KEY.test(last.key) || last.key.length > 316) throw badRequest(`unable to parse requirement: invalid label key "${last.key}"`);
    for (const v of last.values) {
      if (v.length > 63 || !VALUE.test(v)) throw badRequest(`unable to parse requirement: invalid label value: "${v}": at key: "${last.key}"`);
    }
  }
  return out;
}

/** True when `labels` satisfy every requirement of `selector`. */
export function matchesLabels(selector: Selector, labels: Readonly<Record<string, string>> | undefined): boolean {
  for (const r of selector) {
    const has = labels !== undefined && Object.prototype.hasOwnProperty.call(labels, r.key);
    const value = has ? labels![r.key] : undefined;
    switch (r.op) {
      case 'exists':
        if (!has) return false;
        break;
      case '!':
        if (has) return false;
        break;
      case '=':
      case 'in':
        if (!has || !r.values.includes(value!)) return false;
        break;
      case '!=':
      case 'notin':
        if (has && r.values.includes(value!)) return false;
        break;
    }
  }
  return true;
}

/** A field selector requirement: `field=value`, `field==value` or `field!=value`. */
export interface FieldRequirement {
  readonly field: string;
  readonly op: '=' | '!=';
  readonly value: string;
}

/**
 * Parses a field selector against the fields a resource supports.
 * @throws {ApiError} 400 for bad syntax or an unsupported field (Kubernetes' message)
 */
export function parseFieldSelector(text: string | null | undefined, supported: ReadonlySet<string>): FieldRequirement[] {
  if (!text || text.trim() === '') return [];
  return text.split(',').map((term) => {
    const m = /^\s*([^=!\s]+)\s*(==|=|!=)\s*(.*?)\s*$/.exec(term);
    if (!m) throw badRequest(`invalid selector: '${text}'; can't understand '${term}'`);
    if (!supported.has(m[1]!)) throw badRequest(`field label not supported: ${m[1]}`);
    return { field: m[1]!, op: m[2] === '!=' ? '!=' : '=', value: m[3]! };
  });
}

/** True when the object's field values (from `fields`) satisfy every requirement. */
export function matchesFields(requirements: readonly FieldRequirement[], fields: (field: string) => string): boolean {
  for (const r of requirements) {
    const v = fields(r.field);
    if (r.op === '=' ? v !== r.value : v === r.value) return false;
  }
  return true;
}
