import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The distribution shipped with the repository, used when `--distribution` is not given. */
export const DEFAULT_DISTRIBUTION = fileURLToPath(new URL('../../../distributions/default.yaml', import.meta.url));

/** `/var/lib/kubernel` for root (like k3s's /var/lib/rancher), `~/.kubernel` otherwise. */
export function defaultDataDir(): string {
  return process.getuid?.() === 0 ? '/var/lib/kubernel' : join(homedir(), '.kubernel');
}
