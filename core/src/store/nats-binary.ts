import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/** The nats-server that `scripts/ensure-deps.sh` fetches (Debian trixie's 2.10, for fsync per write). */
export const BUNDLED_NATS_SERVER = fileURLToPath(new URL('../../../tools/bin/nats-server', import.meta.url));

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds a nats-server binary: the given path, then `$KUBERNEL_NATS_SERVER`, then the one
 * ensure-deps fetched into tools/bin, then `nats-server` on PATH (and /usr/sbin, where Debian puts it).
 * @throws {Error} naming every place looked at, when there is none
 */
export function findNatsServer(explicit?: string): string {
  const candidates = [
    explicit,
    process.env.KUBERNEL_NATS_SERVER,
    BUNDLED_NATS_SERVER,
    ...(process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, 'nats-server')),
    '/usr/sbin/nats-server',
  ].filter((c): c is string => typeof c === 'string' && c !== '');
  const found = candidates.find(executable);
  if (!found) {
    throw new Error(`no nats-server binary found (looked at ${candidates.join(', ')}); run scripts/ensure-deps.sh or pass its path`);
  }
  return found;
}

/** A nats-server version, parsed from `nats-server --version`. */
export interface NatsServerVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  readonly text: string;
}

/** Runs `binary --version`. @throws when the binary does not run or prints no version */
export async function natsServerVersion(binary: string): Promise<NatsServerVersion> {
  const { stdout } = await promisify(execFile)(binary, ['--version'], { timeout: 10_000 });
  const m = /v(\d+)\.(\d+)\.(\d+)/.exec(stdout);
  if (!m) throw new Error(`${binary} --version printed no version: ${stdout.trim()}`);
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), text: `${m[1]}.${m[2]}.${m[3]}` };
}

/** True when `version` accepts `jetstream { sync_interval: always }` (nats-server >= 2.10). */
export function supportsSyncAlways(version: NatsServerVersion): boolean {
  return version.major > 2 || (version.major === 2 && version.minor >= 10);
}
