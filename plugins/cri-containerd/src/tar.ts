/**
 * A minimal, deterministic POSIX ustar writer: regular files, directories and symbolic links, with
 * fixed owners and modification times, so the same entries always give the same bytes (and the
 * same image digests).
 *
 * @module
 */

/** One entry of a tar archive. */
export type TarEntry =
  | { readonly type: 'file'; readonly path: string; readonly data: Uint8Array; readonly mode?: number }
  | { readonly type: 'dir'; readonly path: string; readonly mode?: number }
  | { readonly type: 'symlink'; readonly path: string; readonly target: string };

const BLOCK = 512;

/** Writes `value` as a NUL-terminated octal number filling `width` bytes at `offset`. */
function writeOctal(header: Buffer, offset: number, width: number, value: number): void {
  const digits = value.toString(8).padStart(width - 1, '0');
  if (digits.length > width - 1) throw new RangeError(`tar: ${value} does not fit in ${width - 1} octal digits`);
  header.write(digits, offset, width - 1, 'ascii');
  header[offset + width - 1] = 0;
}

/** Writes `text` (ASCII/UTF-8) into the field at `offset`, refusing what does not fit. */
function writeString(header: Buffer, offset: number, width: number, text: string, what: string): void {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length > width) throw new RangeError(`tar: ${what} ${JSON.stringify(text)} is longer than ${width} bytes`);
  bytes.copy(header, offset);
}

/** Splits a long path into ustar's `prefix` (up to 155 bytes) and `name` (up to 100 bytes). */
function splitPath(path: string): { prefix: string; name: string } {
  if (Buffer.byteLength(path) <= 100) return { prefix: '', name: path };
  for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1)) {
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100 && name.length > 0) return { prefix, name };
  }
  throw new RangeError(`tar: path ${JSON.stringify(path)} is too long for ustar`);
}

/** The 512-byte ustar header of `entry`, whose content is `size` bytes long. */
function header(entry: TarEntry, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK, 0);
  const path = entry.type === 'dir' && !entry.path.endsWith('/') ? `${entry.path}/` : entry.path;
  const { prefix, name } = splitPath(path);
  writeString(h, 0, 100, name, 'name');
  const mode = entry.type === 'symlink' ? 0o777 : (entry.mode ?? (entry.type === 'dir' ? 0o755 : 0o644));
  writeOctal(h, 100, 8, mode);
  writeOctal(h, 108, 8, 0); // uid
  writeOctal(h, 116, 8, 0); // gid
  writeOctal(h, 124, 12, size);
  writeOctal(h, 136, 12, mtime);
  h.fill(0x20, 148, 156); // checksum field counts as spaces while summing
  h.write(entry.type === 'file' ? '0' : entry.type === 'dir' ? '5' : '2', 156, 1, 'ascii');
  if (entry.type === 'symlink') writeString(h, 157, 100, entry.target, 'link target');
  h.write('ustar\u000000', 257, 8, 'ascii');
  writeString(h, 265, 32, 'root', 'uname');
  writeString(h, 297, 32, 'root', 'gname');
  writeString(h, 345, 155, prefix, 'prefix');
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, 148, 8, 'ascii');
  return h;
}

/**
 * Builds a ustar archive of `entries`, in the given order, owned by root (0:0), all with
 * modification time `mtime` (seconds since the epoch; 0 by default), ending with the two zero
 * blocks tar readers expect.
 *
 * @throws {RangeError} when a path or link target does not fit ustar's fields.
 */
export function writeTar(entries: readonly TarEntry[], mtime = 0): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const data = entry.type === 'file' ? entry.data : undefined;
    const size = data?.byteLength ?? 0;
    parts.push(header(entry, size, mtime));
    if (data && size > 0) {
      parts.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
      const pad = (BLOCK - (size % BLOCK)) % BLOCK;
      if (pad > 0) parts.push(Buffer.alloc(pad, 0));
    }
  }
  parts.push(Buffer.alloc(2 * BLOCK, 0));
  return Buffer.concat(parts);
}
