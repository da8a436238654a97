import type { Column, Obj } from '../resource.js';

/** Kubernetes' short human duration (`duration.HumanDuration`): 45s, 5m10s, 3h, 2d5h, 45d, 2y. */
export function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 0) return '0s';
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (h < 24 * 8) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  if (d < 365 * 2) return `${d}d`;
  const y = Math.floor(d / 365);
  if (y < 8) return d % 365 === 0 ? `${y}y` : `${y}y${d % 365}d`;
  return `${y}y`;
}

/** The AGE cell of an object. */
export function age(o: Obj): string {
  const t = o.metadata?.creationTimestamp;
  return t ? humanDuration(Date.now() - Date.parse(t)) : '<unknown>';
}

export const col = (name: string, description: string, type: Column['type'] = 'string', priority: 0 | 1 = 0): Column => ({ name, type, description, priority });
export const AGE = col('Age', 'CreationTimestamp is a timestamp representing the server time when this object was created.');

/** `<none>` for empty cells, as kubectl prints them. */
export const orNone = (v: unknown): string => (v === undefined || v === null || v === '' ? '<none>' : String(v));

/** `a=b,c=d` of a map, `<none>` when empty. */
export const mapString = (m: Record<string, string> | undefined): string =>
  m && Object.keys(m).length > 0 ? Object.entries(m).map(([k, v]) => `${k}=${v}`).join(',') : '<none>';

/** Container names and images of a pod template, for the wide columns of workloads. */
export function containersAndImages(spec: Obj | undefined): [string, string] {
  const containers = (spec?.containers ?? []) as Obj[];
  return [containers.map((c) => c.name).join(','), containers.map((c) => c.image).join(',')];
}
