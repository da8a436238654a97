import type { Role } from '@kubernel/sdk';
import { ROLES } from '@kubernel/sdk';
import { loadDistribution, DistributionError, type Distribution } from '../kernel/distribution.js';
import { loadPlugin, type LoadResult } from '../kernel/plugin-loader.js';
import { formatTable } from '../util/table.js';

/** One row of `kubernel plugins list`. */
interface Row {
  role: Role;
  id: string;
  kind: string;
  version: string;
  package: string;
  status: 'ok' | 'disabled' | 'error';
  errors: string[];
}

async function inspect(distribution: Distribution, roles: readonly Role[]): Promise<Row[]> {
  const rows: Row[] = [];
  for (const role of roles) {
    for (const entry of distribution.roles[role]) {
      const result: LoadResult = await loadPlugin(role, entry, distribution.path);
      const base = { role, id: entry.id, package: entry.package };
      if (result.ok) {
        const d = result.plugin.definition;
        rows.push({ ...base, kind: d.kind, version: d.version, status: entry.enabled ? 'ok' : 'disabled', errors: [] });
      } else {
        rows.push({ ...base, kind: '?', version: '?', status: 'error', errors: result.errors.map((e) => e.message) });
      }
    }
  }
  return rows;
}

/** Reads a distribution, printing its problems; undefined when it is invalid. */
async function read(path: string, err: (line: string) => void): Promise<Distribution | undefined> {
  try {
    return await loadDistribution(path);
  } catch (e) {
    if (!(e instanceof DistributionError)) throw e;
    err(`error: distribution ${e.path} is invalid:`);
    for (const p of e.problems) err(`  ${p.path || '/'}: ${p.message}`);
    return undefined;
  }
}

/** `kubernel plugins list`: prints every entry with its kind, version and status; exit code 1 on any error. */
export async function pluginsList(path: string, opts: { role?: Role; output: string }, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const distribution = await read(path, err);
  if (!distribution) return 1;
  const rows = await inspect(distribution, opts.role ? [opts.role] : ROLES);
  if (opts.output === 'json') {
    out(JSON.stringify({ distribution: distribution.name, path: distribution.path, plugins: rows }, null, 2) + '\n');
  } else {
    out(formatTable(['role', 'id', 'kind', 'version', 'package', 'status'], rows.map((r) => [r.role, r.id, r.kind, r.version, r.package, r.status])));
    for (const r of rows) for (const e of r.errors) err(`error: ${e}`);
  }
  return rows.some((r) => r.status === 'error') ? 1 : 0;
}

/** `kubernel plugins validate`: checks the file and every plugin's package, brand, SDK range and config. */
export async function pluginsValidate(path: string, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const distribution = await read(path, err);
  if (!distribution) return 1;
  const rows = await inspect(distribution, ROLES);
  const bad = rows.filter((r) => r.status === 'error');
  for (const r of bad) for (const e of r.errors) err(`error: [${r.role}] ${e}`);
  if (bad.length > 0) {
    err(`distribution ${distribution.name} (${distribution.path}) is invalid: ${bad.length} of ${rows.length} plugin(s) have errors`);
    return 1;
  }
  const summary = ROLES.map((role) => `${role}: ${rows.filter((r) => r.role === role).map((r) => r.id).join(', ') || 'none'}`).join('; ');
  out(`distribution ${distribution.name} (${distribution.path}) is valid: ${rows.length} plugin(s) (${summary})\n`);
  return 0;
}
