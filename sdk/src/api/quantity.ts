/**
 * Kubernetes resource quantities (`resource.Quantity`): parse `500m`, `1.5Gi`, `2e3`, compare,
 * add and format them exactly. Values are held as bigint nano-units, so sums of memory sizes and
 * milli-CPU never lose precision.
 *
 * @module
 */

/** How a quantity prints: binary suffixes (Ki, Mi, ...) or decimal ones (m, k, M, ...). */
export type QuantityFormat = 'BinarySI' | 'DecimalSI' | 'DecimalExponent';

/** A parsed quantity: `nanos` is the value times 10^9. */
export interface Quantity {
  readonly nanos: bigint;
  readonly format: QuantityFormat;
}

const NANO = 1_000_000_000n;
const BINARY: Record<string, bigint> = { Ki: 1n << 10n, Mi: 1n << 20n, Gi: 1n << 30n, Ti: 1n << 40n, Pi: 1n << 50n, Ei: 1n << 60n };
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const PATTERN = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$/;

/** Thrown by {@link parseQuantity} for text that is not a quantity. */
export class QuantityError extends Error {
  override readonly name = 'QuantityError';
}

/**
 * Parses a quantity (a string as the API carries it, or a number). Fractions finer than a nano-unit
 * round up, as Kubernetes rounds.
 *
 * @throws {QuantityError} for anything else, with Kubernetes' wording.
 */
export function parseQuantity(text: string | number): Quantity {
  const s = typeof text === 'number' ? String(text) : text;
  const m = typeof s === 'string' ? PATTERN.exec(s.trim()) : null;
  if (!m || s.length > 100) throw new QuantityError('quantities must match the regular expression \'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$\'');
  const [, sign, number, suffix = ''] = m;
  const [whole, frac = ''] = number!.split('.');
  const digits = BigInt(`${whole || '0'}${frac}`);
  let exponent = -frac.length;
  let factor = 1n;
  let format: QuantityFormat = 'DecimalSI';
  if (suffix in BINARY) {
    factor = BINARY[suffix]!;
    format = 'BinarySI';
  } else if (suffix in DECIMAL) {
    exponent += DECIMAL[suffix]!;
  } else {
    exponent += Number(suffix.slice(1));
    format = 'DecimalExponent';
  }
  // nanos = digits * factor * 10^(exponent + 9), rounding up below one nano-unit.
  const e = exponent + 9;
  let nanos: bigint;
  if (e >= 0) nanos = digits * factor * 10n ** BigInt(Math.min(e, 60));
  else {
    const d = 10n ** BigInt(-e);
    const n = digits * factor;
    nanos = n / d + (n % d === 0n ? 0n : 1n);
  }
  return { nanos: sign === '-' ? -nanos : nanos, format };
}

/** True when `text` parses as a quantity. */
export function isQuantity(text: unknown): boolean {
  if (typeof text !== 'string' && typeof text !== 'number') return false;
  try {
    parseQuantity(text);
    return true;
  } catch {
    return false;
  }
}

/** The canonical text of a quantity, as the API server would print it (`100m`, `1Gi`, `1500`, `2k`). */
export function formatQuantity(q: Quantity): string {
  const { nanos } = q;
  if (nanos === 0n) return '0';
  const negative = nanos < 0n;
  const abs = negative ? -nanos : nanos;
  const sign = negative ? '-' : '';
  if (abs % NANO === 0n) {
    const whole = abs / NANO;
    if (q.format === 'BinarySI') {
      for (const [suffix, f] of Object.entries(BINARY).reverse()) if (whole % f === 0n && whole >= f) return `${sign}${whole / f}${suffix}`;
      if (whole < 1024n || whole % 1000n !== 0n) return `${sign}${whole}`;
    }
    for (const [suffix, e] of [['E', 18], ['P', 15], ['T', 12], ['G', 9], ['M', 6], ['k', 3]] as const) {
      const f = 10n ** BigInt(e);
      if (whole % f === 0n) return `${sign}${whole / f}${suffix}`;
    }
    return `${sign}${whole}`;
  }
  for (const [suffix, e] of [['m', 6], ['u', 3], ['n', 0]] as const) {
    const f = 10n ** BigInt(e);
    if (abs % f === 0n) return `${sign}${abs / f}${suffix}`;
  }
  return `${sign}${abs}n`;
}

/** Sum of quantities (the format of the first). */
export function addQuantities(...qs: Quantity[]): Quantity {
  return { nanos: qs.reduce((s, q) => s + q.nanos, 0n), format: qs[0]?.format ?? 'DecimalSI' };
}

/** Negative, zero or positive as `a` is below, equal to or above `b`. */
export function compareQuantities(a: Quantity, b: Quantity): number {
  return a.nanos < b.nanos ? -1 : a.nanos > b.nanos ? 1 : 0;
}

/** The zero quantity. */
export const ZERO_QUANTITY: Quantity = Object.freeze({ nanos: 0n, format: 'DecimalSI' });
