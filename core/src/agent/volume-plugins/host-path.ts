/**
 * `hostPath` volumes (`kubernetes.io/host-path`): a path of the node, checked against the
 * volume's `type` with the kubelet's rules and messages (`DirectoryOrCreate` makes a 0755
 * directory, `FileOrCreate` an empty 0644 file without creating its parent).
 *
 * @module
 */
import { constants } from 'node:fs';
import { mkdir, open, stat } from 'node:fs/promises';
import type { V1Volume } from '../core-v1.js';
import { CREATE_CONTAINER_CONFIG_ERROR } from '../pod-sources.js';
import { VolumeError, type VolumeContext, type VolumePlugin, type VolumeSetUpResult } from './volume-plugin.js';

const code = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;

type Kind = 'dir' | 'file' | 'socket' | 'char' | 'block' | 'other';

async function kindOf(path: string): Promise<Kind | undefined> {
  try {
    const st = await stat(path);
    if (st.isDirectory()) return 'dir';
    if (st.isFile()) return 'file';
    if (st.isSocket()) return 'socket';
    if (st.isCharacterDevice()) return 'char';
    if (st.isBlockDevice()) return 'block';
    return 'other';
  } catch (err) {
    if (code(err) === 'ENOENT' || code(err) === 'ENOTDIR') return undefined;
    throw err;
  }
}

/**
 * `checkType`: verifies (or creates) `path` per the hostPath `type`.
 *
 * @throws {Error} `hostPath type check failed: <path> is not a directory` (a file, a socket file,
 *   a character device, a block device), `<type> is an invalid volume type`, or the creation's error.
 */
export async function checkHostPathType(path: string, type: string): Promise<void> {
  let kind = await kindOf(path);
  const fail = (what: string): never => {
    throw new Error(`hostPath type check failed: ${path} is not ${what}`);
  };
  switch (type) {
    case '':
      return;
    case 'DirectoryOrCreate':
    case 'Directory':
      if (kind === undefined && type === 'DirectoryOrCreate') {
        await mkdir(path, { recursive: true, mode: 0o755 });
        return;
      }
      if (kind !== 'dir') fail('a directory');
      return;
    case 'FileOrCreate':
    case 'File':
      if (kind === undefined && type === 'FileOrCreate') {
        try {
          const fh = await open(path, constants.O_CREAT | constants.O_EXCL | constants.O_RDONLY, 0o644);
          await fh.close();
          return;
        } catch (err) {
          if (code(err) !== 'EEXIST') throw err;
          kind = await kindOf(path);
        }
      }
      if (kind !== 'file') fail('a file');
      return;
    case 'Socket':
      if (kind !== 'socket') fail('a socket file');
      return;
    case 'CharDevice':
      if (kind !== 'char') fail('a character device');
      return;
    case 'BlockDevice':
      if (kind !== 'block') fail('a block device');
      return;
    default:
      throw new Error(`${type} is an invalid volume type`);
  }
}

/** The `hostPath` plugin. */
export class HostPathPlugin implements VolumePlugin {
  readonly name = 'kubernetes.io/host-path';
  readonly requiresRemount = false;

  canSupport(volume: V1Volume): boolean {
    return volume.hostPath !== undefined;
  }

  readOnly(): boolean {
    return false;
  }

  async setUp(_ctx: VolumeContext, volume: V1Volume, _dir: string): Promise<VolumeSetUpResult> {
    const { path, type = '' } = volume.hostPath!;
    try {
      await checkHostPathType(path, type);
    } catch (err) {
      throw new VolumeError(volume.name, CREATE_CONTAINER_CONFIG_ERROR, err instanceof Error ? err.message : String(err), { cause: err });
    }
    return { path };
  }

  async tearDown(): Promise<void> {
    // Nothing was mounted or created under the pod directory.
  }
}
