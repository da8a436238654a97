import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { httpsCall, type Credentials, type HttpResult } from './cluster.js';
import { KUBERNEL_BIN, ROOT } from './paths.js';
import { run, start, type Finished, type Started } from './processes.js';
import { sleep, until } from './wait.js';

/**
 * A real single-node cluster for one test file: `kubernel up` (embedded nats-server, API server,
 * controllers, scheduler, node agent) with the default distribution's managed containerd, on its
 * own bridge, pod CIDR and cgroup root so it collides with nothing else on the machine.
 */
export interface NodeCluster {
  readonly dataDir: string;
  readonly kubeconfig: string;
  readonly url: string;
  readonly nodeName: string;
  readonly bridge: string;
  readonly podCidr: string;
  readonly cgroupRoot: string;
  /** The managed containerd's CRI socket. */
  readonly criSocket: string;
  readonly tls: Credentials;
  process(): Started;
  kubectl(args: readonly string[], input?: string): Promise<Finished>;
  ok(args: readonly string[], input?: string): Promise<string>;
  request(method: string, path: string, body?: string, headers?: Record<string, string>): Promise<HttpResult>;
  /** kill -9 of the `kubernel up` process (containerd and the pods go on). */
  kill9(): Promise<void>;
  /** Starts `kubernel up` again on the same data dir. */
  restart(): Promise<void>;
  /** Deletes every pod, stops the cluster and removes everything it left: processes, mounts, bridge, iptables rules, cgroups, files. */
  destroy(): Promise<void>;
}

/** Whether this machine can run the real node path (root, containerd, runc, CNI plugins, busybox-static). */
export function realNodeSupport(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  for (const bin of ['/usr/bin/containerd', '/usr/sbin/runc', '/usr/lib/cni/bridge', '/usr/lib/cni/host-local', '/bin/busybox']) {
    if (!existsSync(bin)) return `${bin} is missing (scripts/ensure-deps.sh installs it)`;
  }
  return undefined;
}

const sh = (script: string): string => {
  try {
    return execFileSync('sh', ['-c', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
};

/** Pids whose command line mentions `text`. */
function pidsMentioning(text: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text)) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** The ids of every container (sandboxes included) containerd has in the CRI namespace. */
export function containerdIds(socket: string): string[] {
  return sh(`ctr --address ${socket} -n k8s.io containers ls -q`).split('\n').filter(Boolean);
}

/** Starts the cluster; `id` (a few lowercase letters/digits) names its bridge, cgroup root and CIDR slot (1-250). */
export async function startNodeCluster(id: string, slot: number): Promise<NodeCluster> {
  const dataDir = mkdtempSync(join(tmpdir(), `kubernel-node-${id}-`));
  const bridge = `kbt${id}`.slice(0, 15);
  const podCidr = `10.251.${slot}.0/24`;
  const cgroupRoot = `kubernel-test-${id}`;
  const nodeName = `node-${id}`;
  const distribution = join(dataDir, 'distribution.yaml');
  const base = readFileSync(join(ROOT, 'distributions', 'default.yaml'), 'utf8');
  if (!base.includes('bridgeName: kubernel0')) throw new Error('distributions/default.yaml no longer sets bridgeName: kubernel0; update the test helper');
  // Package names resolve from the repository's node_modules: keep the file's directory there.
  writeFileSync(distribution, base.replace('bridgeName: kubernel0', `bridgeName: ${bridge}`));
  const kubeconfig = join(dataDir, 'kubeconfig');
  const criSocket = join(dataDir, 'plugins', 'cri-containerd', 'state', 'containerd.sock');
  const args = [KUBERNEL_BIN, 'up', '--data-dir', dataDir, '--distribution', distribution, '--api-port', '0', '--healthz-bind-address', '127.0.0.1:0', '--hostname-override', nodeName, '--pod-cidr', podCidr, '--cgroup-root', cgroupRoot, '--kubelet-port', '0', '--log-level', 'info'];
  let proc!: Started;
  let url = '';
  const launch = async (): Promise<void> => {
    proc = start(process.execPath, args);
    const [, u] = await proc.waitFor(/API server on (https:\/\/[\d.:]+);/, 60_000);
    url = u!;
    await proc.waitFor(/ready; health at/, 90_000);
  };
  const kubectl = (a: readonly string[], input?: string): Promise<Finished> => {
    if (input === undefined) return run('kubectl', a, { KUBECONFIG: kubeconfig });
    const file = join(dataDir, `input-${Date.now()}-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, input);
    return run('kubectl', a.map((x) => (x === '-' ? file : x)), { KUBECONFIG: kubeconfig });
  };
  const cleanupHost = (): void => {
    // Container processes first: every pod cgroup under our root (kills what is left in them).
    for (const ctrl of ['memory', 'cpu', 'pids', 'cpuset', 'freezer', 'blkio', 'devices', 'cpuacct', 'hugetlb', 'net_cls', 'perf_event']) {
      const top = `/sys/fs/cgroup/${ctrl}/${cgroupRoot}`;
      if (!existsSync(top)) continue;
      sh(`find ${top} -name cgroup.procs | xargs -r cat | xargs -r kill -9`);
    }
    for (const pid of pidsMentioning(dataDir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    sh(`grep -o ' ${dataDir}[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`);
    sh(`ip link del ${bridge}`);
    // CNI's bridge plugin (ipMasq) adds nat rules commented with the network name, jumping to CNI-* chains.
    const rules = sh(`iptables-save -t nat | grep -- 'name: \\"${bridge}\\"'`).split('\n').filter((l) => l.startsWith('-A '));
    for (const rule of rules) {
      sh(`iptables -t nat ${rule.replace(/^-A /, '-D ')}`);
      const chain = / -j (CNI-[0-9a-f]+)/.exec(rule)?.[1];
      if (chain) sh(`iptables -t nat -F ${chain} && iptables -t nat -X ${chain}`);
    }
    for (const ctrl of readdirSync('/sys/fs/cgroup')) {
      const top = `/sys/fs/cgroup/${ctrl}/${cgroupRoot}`;
      if (!existsSync(top)) continue;
      const dirs = sh(`find ${top} -depth -type d`).split('\n').filter(Boolean);
      for (const d of dirs) {
        try {
          rmdirSync(d);
        } catch {
          // busy or gone
        }
      }
    }
    rmSync(dataDir, { recursive: true, force: true });
  };

  try {
    await launch();
  } catch (err) {
    proc?.child.kill('SIGKILL');
    cleanupHost();
    throw err;
  }
  const pki = join(dataDir, 'pki');
  const tls: Credentials = { ca: readFileSync(join(pki, 'ca.crt'), 'utf8'), cert: readFileSync(join(pki, 'admin.crt'), 'utf8'), key: readFileSync(join(pki, 'admin.key'), 'utf8') };
  const cluster: NodeCluster = {
    dataDir,
    kubeconfig,
    get url() {
      return url;
    },
    nodeName,
    bridge,
    podCidr,
    cgroupRoot,
    criSocket,
    tls,
    process: () => proc,
    kubectl,
    async ok(a, input) {
      const r = await kubectl(a, input);
      if (r.code !== 0) throw new Error(`kubectl ${a.join(' ')} exited ${r.code}: ${r.stderr}`);
      return r.stdout;
    },
    request(method, path, body, headers = {}) {
      return httpsCall(`${url}${path}`, method, tls, body, headers);
    },
    async kill9() {
      proc.child.kill('SIGKILL');
      await proc.exited;
    },
    async restart() {
      await launch();
    },
    async destroy() {
      if (proc.child.exitCode === null && proc.child.signalCode === null) {
        // Pods first, through the agent (CNI DEL releases IPs and rules), then the cluster.
        await kubectl(['delete', 'pods', '--all', '--all-namespaces', '--grace-period=0', '--force', '--wait=false']);
        await until(async () => {
          const r = await kubectl(['get', 'pods', '--all-namespaces', '-o', 'name']);
          return r.code === 0 && r.stdout.trim() === '';
        }, 30_000, 'every pod gone').catch(() => undefined);
        // ...and gone from containerd (the agent stops and removes sandboxes after the API delete).
        await until(() => containerdIds(criSocket).length === 0, 30_000, 'containerd has no containers').catch(() => undefined);
        proc.child.kill('SIGTERM');
        await Promise.race([proc.exited, sleep(20_000)]);
      }
      proc.child.kill('SIGKILL');
      cleanupHost();
    },
  };
  return cluster;
}
