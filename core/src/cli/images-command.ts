/**
 * `kubernel images import FILE`: loads an OCI image archive (an OCI image layout as a tar, or a
 * `docker save` archive) into the node's containerd, in the CRI namespace `k8s.io`, so pods can run
 * it with `imagePullPolicy: IfNotPresent` or `Never` where no registry is reachable. By default the
 * node is the managed containerd of `kubernel up`/`agent` under `--data-dir`; `--address` names
 * any containerd socket.
 *
 * @module
 */
import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import { join, resolve } from 'node:path';

/** Options of {@link imagesImport}. */
export interface ImagesImportOptions {
  readonly dataDir: string;
  /** containerd's socket; default the managed one under the data dir. */
  readonly address?: string;
}

/** The managed containerd's socket of a data dir (the cri-containerd plugin's default layout). */
export function managedContainerdSocket(dataDir: string): string {
  return join(resolve(dataDir), 'plugins', 'cri-containerd', 'state', 'containerd.sock');
}

/** Imports `files` in order, reporting each; resolves to the exit code. */
export async function imagesImport(files: readonly string[], opts: ImagesImportOptions, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const socket = opts.address ?? managedContainerdSocket(opts.dataDir);
  try {
    await access(socket);
  } catch {
    err(`error: no containerd socket at ${socket}: is the node running (kubernel up / kubernel agent with --data-dir ${opts.dataDir})? Or pass --address SOCKET\n`);
    return 1;
  }
  for (const file of files) {
    try {
      await access(file);
    } catch {
      err(`error: ${file}: no such file\n`);
      return 1;
    }
    out(`importing ${file} into containerd (${socket}, namespace k8s.io)...\n`);
    const started = Date.now();
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
      execFile('ctr', ['--address', socket, '-n', 'k8s.io', 'images', 'import', '--all-platforms', file], { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 }, (e, stdout, stderr) => {
        done({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr });
      });
    });
    if (result.code !== 0) {
      err(`error: importing ${file} failed: ${result.stderr.trim() || result.stdout.trim() || `ctr exited ${result.code}`}\n`);
      return 1;
    }
    const names = result.stdout.split('\n').map((l) => /^unpacking (\S+)/.exec(l)?.[1]).filter((n): n is string => Boolean(n));
    out(`  ✓ ${names.length > 0 ? names.join(', ') : 'imported'} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
  }
  return 0;
}
