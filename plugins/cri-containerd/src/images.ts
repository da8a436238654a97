/**
 * Local OCI images built from the host's static busybox (Debian's `busybox-static`), for nodes with
 * no image registry: an OCI image layout archive (`oci-layout`, `index.json`, `blobs/sha256/...`)
 * with one uncompressed layer, which `ctr images import` loads into containerd.
 *
 * The archives are deterministic (fixed owners and times, sorted entries), so the same busybox
 * binary always gives the same layer, config and manifest digests.
 *
 * @module
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { writeTar, type TarEntry } from './tar.js';

const run = promisify(execFile);

/** Where Debian's `busybox-static` installs the static busybox. */
export const DEFAULT_BUSYBOX_PATH = '/bin/busybox';
/** The general-purpose busybox image (shell, coreutils, `httpd`, `nc`, `wget`) Kubernel imports on every node. */
export const BUSYBOX_IMAGE = 'docker.io/kubernel/busybox:1.35';
/**
 * The pause image Kubernel imports on every node and gives containerd as its `sandbox_image`: the
 * same busybox layer, running `sleep infinity` as the sandbox's (pod's) first process.
 */
export const PAUSE_IMAGE = 'docker.io/kubernel/pause:1.35';
/** The annotation of an OCI index entry that names the image for containerd's importer. */
export const CONTAINERD_IMAGE_NAME_ANNOTATION = 'io.containerd.image.name';
/** The standard OCI annotation for the image's reference (its tag). */
export const OCI_REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

const MEDIA_TYPE_INDEX = 'application/vnd.oci.image.index.v1+json';
const MEDIA_TYPE_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const MEDIA_TYPE_CONFIG = 'application/vnd.oci.image.config.v1+json';
const MEDIA_TYPE_LAYER = 'application/vnd.oci.image.layer.v1.tar';
const DEFAULT_PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Options of {@link buildBusyboxImage}. */
export interface BusyboxImageOptions {
  /** The full image name the archive carries (`docker.io/kubernel/busybox:1.35`). */
  readonly name: string;
  /** The image's `Cmd`; `['sh']` by default (none when an entrypoint is given without it). */
  readonly cmd?: readonly string[];
  /** The image's `Entrypoint`; none by default. */
  readonly entrypoint?: readonly string[];
  /** Extra environment (`KEY=value`), after `PATH`. */
  readonly env?: readonly string[];
  /** Image config labels. */
  readonly labels?: Readonly<Record<string, string>>;
  /** The static busybox to put in the image; {@link DEFAULT_BUSYBOX_PATH} by default. */
  readonly busyboxPath?: string;
}

/** What {@link buildBusyboxImage} wrote. */
export interface BuiltImage {
  /** The archive's path. */
  readonly file: string;
  /** The image name. */
  readonly name: string;
  /** The image id as CRI reports it: the config's digest (`sha256:...`). */
  readonly id: string;
  /** The manifest's digest (`sha256:...`). */
  readonly manifestDigest: string;
  /** The layer's digest, which is also its diff id (the layer is uncompressed). */
  readonly layerDigest: string;
  /** The layer's size in bytes. */
  readonly layerSize: number;
}

const sha256 = (data: Uint8Array): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;
const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value), 'utf8');

/** The applets of `busybox` as paths relative to `/` (`bin/sh`, `usr/bin/env`, ...), from `--list-full`. */
export async function busyboxApplets(busyboxPath = DEFAULT_BUSYBOX_PATH): Promise<string[]> {
  const { stdout } = await run(busyboxPath, ['--list-full'], { maxBuffer: 1 << 20 });
  return stdout
    .split('\n')
    .map((line) => line.trim().replace(/^\/+/, ''))
    .filter((line) => line.length > 0 && !line.endsWith('/busybox'));
}

/** The files of the busybox root filesystem besides the binary and its applet links. */
const ROOT_FILES: ReadonlyArray<{ path: string; text: string; mode?: number }> = [
  { path: 'etc/passwd', text: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' },
  { path: 'etc/group', text: 'root:x:0:\nnobody:x:65534:\n' },
  { path: 'etc/hostname', text: 'localhost\n' },
  {
    path: 'var/www/index.html',
    text: '<!DOCTYPE html>\n<html><head><title>Kubernel</title></head><body><h1>Hello from Kubernel</h1></body></html>\n',
  },
];

const ROOT_DIRS: ReadonlyArray<{ path: string; mode?: number }> = [
  { path: 'bin' },
  { path: 'dev' },
  { path: 'etc' },
  { path: 'home' },
  { path: 'proc' },
  { path: 'root', mode: 0o700 },
  { path: 'sbin' },
  { path: 'sys' },
  { path: 'tmp', mode: 0o1777 },
  { path: 'usr' },
  { path: 'usr/bin' },
  { path: 'usr/sbin' },
  { path: 'var' },
  { path: 'var/www' },
];

/**
 * The uncompressed root filesystem layer: the directories, `/bin/busybox`, a symlink to it for
 * every applet, `/etc/passwd` and `/etc/group` (root, nobody), `/tmp` and `/var/www/index.html`.
 */
export async function buildBusyboxLayer(busyboxPath = DEFAULT_BUSYBOX_PATH): Promise<Buffer> {
  const [binary, applets] = await Promise.all([readFile(busyboxPath), busyboxApplets(busyboxPath)]);
  const dirs = new Set(ROOT_DIRS.map((d) => d.path));
  const entries: TarEntry[] = ROOT_DIRS.map((d) => ({ type: 'dir', path: d.path, ...(d.mode !== undefined ? { mode: d.mode } : {}) }));
  for (const applet of applets) {
    // An applet in a directory the base layout lacks gets that directory first.
    const parts = applet.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!dirs.has(dir)) {
        dirs.add(dir);
        entries.push({ type: 'dir', path: dir });
      }
    }
  }
  entries.push({ type: 'file', path: 'bin/busybox', data: binary, mode: 0o755 });
  for (const applet of [...new Set(applets)].sort()) entries.push({ type: 'symlink', path: applet, target: '/bin/busybox' });
  for (const f of ROOT_FILES) entries.push({ type: 'file', path: f.path, data: Buffer.from(f.text, 'utf8'), mode: f.mode ?? 0o644 });
  return writeTar(entries);
}

/**
 * Writes an OCI image layout archive of a busybox image to `outFile` (atomically: a temporary
 * file renamed into place): one uncompressed layer ({@link buildBusyboxLayer}), an image config
 * (linux/amd64, `PATH` set, `Cmd`/`Entrypoint` from `options`), a manifest, and an `index.json`
 * whose entry names the image with {@link CONTAINERD_IMAGE_NAME_ANNOTATION} (what
 * `ctr images import` tags it as) and {@link OCI_REF_NAME_ANNOTATION}.
 *
 * @throws when busybox cannot be read or run, or the file cannot be written.
 */
export async function buildBusyboxImage(outFile: string, options: BusyboxImageOptions): Promise<BuiltImage> {
  const layer = await buildBusyboxLayer(options.busyboxPath ?? DEFAULT_BUSYBOX_PATH);
  const layerDigest = sha256(layer);
  const cmd = options.cmd ?? (options.entrypoint ? undefined : ['sh']);
  const config = json({
    architecture: 'amd64',
    os: 'linux',
    config: {
      Env: [DEFAULT_PATH_ENV, ...(options.env ?? [])],
      ...(options.entrypoint ? { Entrypoint: [...options.entrypoint] } : {}),
      ...(cmd ? { Cmd: [...cmd] } : {}),
      WorkingDir: '/',
      ...(options.labels ? { Labels: { ...options.labels } } : {}),
    },
    rootfs: { type: 'layers', diff_ids: [layerDigest] },
    history: [{ created_by: `kubernel: busybox-static root filesystem (${options.name})` }],
  });
  const configDigest = sha256(config);
  const manifest = json({
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_MANIFEST,
    config: { mediaType: MEDIA_TYPE_CONFIG, digest: configDigest, size: config.length },
    layers: [{ mediaType: MEDIA_TYPE_LAYER, digest: layerDigest, size: layer.length }],
  });
  const manifestDigest = sha256(manifest);
  const index = json({
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_INDEX,
    manifests: [
      {
        mediaType: MEDIA_TYPE_MANIFEST,
        digest: manifestDigest,
        size: manifest.length,
        platform: { architecture: 'amd64', os: 'linux' },
        annotations: { [CONTAINERD_IMAGE_NAME_ANNOTATION]: options.name, [OCI_REF_NAME_ANNOTATION]: refName(options.name) },
      },
    ],
  });
  const blob = (digest: string): string => `blobs/sha256/${digest.slice('sha256:'.length)}`;
  const archive = writeTar([
    { type: 'file', path: 'oci-layout', data: json({ imageLayoutVersion: '1.0.0' }) },
    { type: 'file', path: 'index.json', data: index },
    { type: 'dir', path: 'blobs' },
    { type: 'dir', path: 'blobs/sha256' },
    { type: 'file', path: blob(layerDigest), data: layer },
    { type: 'file', path: blob(configDigest), data: config },
    { type: 'file', path: blob(manifestDigest), data: manifest },
  ]);
  const tmp = `${outFile}.${process.pid}.tmp`;
  await writeFile(tmp, archive);
  await rename(tmp, outFile);
  return { file: outFile, name: options.name, id: configDigest, manifestDigest, layerDigest, layerSize: layer.length };
}

/** The tag part of an image name (`1.35` of `docker.io/kubernel/busybox:1.35`), `latest` when untagged. */
function refName(name: string): string {
  const lastSlash = name.lastIndexOf('/');
  const colon = name.indexOf(':', lastSlash + 1);
  return colon >= 0 ? name.slice(colon + 1) : 'latest';
}

/** Builds the pause image archive ({@link PAUSE_IMAGE} by default): busybox running `sleep infinity`. */
export function buildPauseImage(outFile: string, name = PAUSE_IMAGE, busyboxPath?: string): Promise<BuiltImage> {
  return buildBusyboxImage(outFile, { name, entrypoint: ['/bin/sleep', 'infinity'], ...(busyboxPath ? { busyboxPath } : {}) });
}
