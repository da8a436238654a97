/**
 * Atomic projection of a set of files into a directory, as the kubelet's `AtomicWriter` does for
 * configMap, secret, downward API and projected volumes, so that a container sees either the old or
 * the new content, never a mix, and sees updates through paths it already holds:
 *
 * ```
 * <dir>/..2026_11_26_10_00_00.Ab12Cd/   the real files (a new timestamped directory per change)
 * <dir>/..data -> ..2026_11_26_10_00_00.Ab12Cd   swapped by renaming ..data_tmp over it
 * <dir>/key  -> ..data/key               user-visible names (first path element) go through ..data
 * ```
 *
 * Paths starting with `..` are reserved. The writer offers no concurrency guarantee: callers
 * serialize writes per directory.
 *
 * @module
 */
import { lstat, mkdir, mkdtemp, readFile, readlink, readdir, rename, rm, symlink, writeFile, chmod } from 'node:fs/promises';
import { join, posix } from 'node:path';

/** One file of a payload. */
export interface FileProjection {
  /** The content (a string is written as UTF-8). */
  readonly data: Uint8Array | string;
  /** Permission bits (0-0777). */
  readonly mode: number;
}

/** A payload: relative path → file. */
export type Payload = ReadonlyMap<string, FileProjection>;

/** The `..data` symlink's name. */
export const DATA_DIR_NAME = '..data';
const NEW_DATA_DIR_NAME = '..data_tmp';
const MAX_FILE_NAME_LENGTH = 255;
const MAX_PATH_LENGTH = 4096;

/** Thrown for a payload path the writer refuses (absolute, with `..`, too long, empty). */
export class InvalidPathError extends Error {
  override readonly name = 'InvalidPathError';
}

/**
 * The problem with a payload path, as the kubelet words it, or undefined when it is valid: not
 * empty, relative, at most 4096 characters, no `..` element, elements of at most 255 characters,
 * not starting with `..`.
 */
export function payloadPathError(path: string): string | undefined {
  if (path === '') return `invalid path: must not be empty: ${JSON.stringify(path)}`;
  if (posix.isAbsolute(path)) return `invalid path: must be relative path: ${path}`;
  if (path.length > MAX_PATH_LENGTH) return `invalid path: must be less than or equal to ${MAX_PATH_LENGTH} characters`;
  const items = path.split('/');
  for (const item of items) {
    if (item === '..') return `invalid path: must not contain '..': ${path}`;
    if (item.length > MAX_FILE_NAME_LENGTH) return `invalid path: filenames must be less than or equal to ${MAX_FILE_NAME_LENGTH} characters`;
  }
  if (items[0]!.startsWith('..') && items[0]!.length > 2) return `invalid path: must not start with '..': ${path}`;
  return undefined;
}

/** `time.Now().UTC().Format("..2006_01_02_15_04_05.")`. */
export function timestampDirPrefix(now: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `..${now.getUTCFullYear()}_${p(now.getUTCMonth() + 1)}_${p(now.getUTCDate())}_${p(now.getUTCHours())}_${p(now.getUTCMinutes())}_${p(now.getUTCSeconds())}.`;
}

const code = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;
const bytes = (d: Uint8Array | string): Buffer => (typeof d === 'string' ? Buffer.from(d, 'utf8') : Buffer.from(d.buffer, d.byteOffset, d.byteLength));

/** Every path (files and directories) under `dir`, relative, or undefined when `dir` is gone. */
async function walk(dir: string, rel = ''): Promise<string[] | undefined> {
  let entries;
  try {
    entries = await readdir(join(dir, rel), { withFileTypes: true });
  } catch (err) {
    if (code(err) === 'ENOENT' || code(err) === 'ENOTDIR') return undefined;
    throw err;
  }
  const out: string[] = [];
  for (const e of entries) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    out.push(p);
    if (e.isDirectory()) out.push(...((await walk(dir, p)) ?? []));
  }
  return out;
}

/** True when the file at `path` lacks, or differs from, `file` (content or mode). */
async function differs(path: string, file: FileProjection): Promise<boolean> {
  try {
    const st = await lstat(path);
    if (!st.isFile() || (st.mode & 0o777) !== (file.mode & 0o777)) return true;
    return !(await readFile(path)).equals(bytes(file.data));
  } catch (err) {
    if (code(err) === 'ENOENT' || code(err) === 'ENOTDIR') return true;
    throw err;
  }
}

/** Options of {@link atomicWrite}. */
export interface AtomicWriteOptions {
  /** The time the new timestamped directory is named after (default now). */
  readonly now?: Date;
}

/**
 * Projects `payload` into `targetDir` (which must exist) atomically; a no-op when the current
 * content already matches (same files, bytes and modes). Resolves true when it wrote.
 *
 * @throws {InvalidPathError} for an invalid payload path (nothing is written).
 */
export async function atomicWrite(targetDir: string, payload: Payload, options: AtomicWriteOptions = {}): Promise<boolean> {
  // (1) Validate and clean the paths.
  const clean = new Map<string, FileProjection>();
  for (const [path, file] of payload) {
    const problem = payloadPathError(path);
    if (problem) throw new InvalidPathError(problem);
    clean.set(posix.normalize(path).replace(/\/+$/, ''), file);
  }

  // (2) The current timestamped directory.
  const dataDirPath = join(targetDir, DATA_DIR_NAME);
  let oldTsDir = '';
  try {
    oldTsDir = await readlink(dataDirPath);
  } catch (err) {
    if (code(err) !== 'ENOENT' && code(err) !== 'EINVAL') throw err;
  }
  const oldTsPath = oldTsDir ? join(targetDir, oldTsDir) : '';

  // (3) Paths of the old version that the new one drops; (4) whether anything changed.
  let toRemove: string[] = [];
  if (oldTsDir) {
    const old = await walk(oldTsPath);
    const keep = new Set<string>();
    for (const p of clean.keys()) for (let sub = p; sub !== '.' && sub !== ''; sub = posix.dirname(sub)) keep.add(sub);
    toRemove = (old ?? []).filter((p) => !keep.has(p));
    let write = old === undefined;
    for (const [p, file] of clean) {
      if (write) break;
      write = await differs(join(oldTsPath, p), file);
    }
    if (!write && toRemove.length === 0) return false;
  }

  // (5) A new timestamped directory, (6) the payload in it.
  const tsDir = await mkdtemp(join(targetDir, timestampDirPrefix(options.now ?? new Date())));
  const tsDirName = posix.basename(tsDir);
  try {
    await chmod(tsDir, 0o755);
    for (const [p, file] of clean) {
      const full = join(tsDir, p);
      await mkdir(posix.dirname(full), { recursive: true, mode: 0o755 });
      await writeFile(full, bytes(file.data), { mode: file.mode & 0o777 });
      await chmod(full, file.mode & 0o777);
    }

    // (7) User-visible symlinks through ..data for new top-level names.
    for (const p of clean.keys()) {
      const top = p.split('/')[0]!;
      try {
        await lstat(join(targetDir, top));
      } catch (err) {
        if (code(err) !== 'ENOENT') throw err;
        await symlink(`${DATA_DIR_NAME}/${top}`, join(targetDir, top));
      }
    }

    // (8) ..data_tmp → the new directory, (9) renamed over ..data (atomic).
    const newDataDirPath = join(targetDir, NEW_DATA_DIR_NAME);
    await rm(newDataDirPath, { force: true });
    await symlink(tsDirName, newDataDirPath);
    await rename(newDataDirPath, dataDirPath);
  } catch (err) {
    await rm(tsDir, { recursive: true, force: true });
    await rm(join(targetDir, NEW_DATA_DIR_NAME), { force: true });
    throw err;
  }

  // (10) Drop user-visible names the payload no longer has; (11) the old directory.
  for (const p of toRemove) if (!p.includes('/')) await rm(join(targetDir, p), { force: true });
  if (oldTsPath) await rm(oldTsPath, { recursive: true, force: true });
  return true;
}
