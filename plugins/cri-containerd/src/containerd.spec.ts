/**
 * cri-containerd against a REAL containerd in managed mode, in a throwaway root: the published
 * container-runtime contract suite, then focused checks (pod network reachable from the host, CRI
 * log files, exec, OOM kill, cleanup of netns and IPs, local image import and removal, supervision
 * restarting a killed containerd, UpdateRuntimeConfig turning NetworkReady on).
 *
 * Needs root and containerd, runc, ctr, the CNI plugins and busybox-static (CI has them); without
 * them the whole file is skipped with a message saying what is missing.
 *
 * Everything is cleaned up in the root `after` hook even when tests fail: sandboxes removed through
 * containerd (so CNI DEL releases IPs, netns and iptables rules), containerd stopped, leftover shims
 * killed, mounts under the temp dir unmounted, the bridge deleted, the temp dir removed.
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { isRuntimeError, NETWORK_READY, RUNTIME_READY, type ContainerConfig, type ContainerRuntime, type PodSandboxConfig, type StatusResponse } from '@kubernel/sdk';
import { describeContainerRuntimeContract, startPlugin, type RunningPlugin } from '@kubernel/sdk/testing';
import {
  BUSYBOX_IMAGE,
  buildBusyboxImage,
  containerdLayout,
  CONTAINERD_CNI_CONF_NAME,
  ContainerdRuntime,
  criContainerdPlugin,
  importImageArchive,
  ManagedContainerd,
  PAUSE_IMAGE,
  type CriContainerdConfig,
} from './index.js';

const run = promisify(execFile);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Why this machine cannot run containerd for the tests, or undefined when it can. */
function missingRequirement(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root';
  for (const [cmd, args] of [['containerd', ['--version']], ['ctr', ['--version']], ['runc', ['--version']], ['ip', ['-V']], ['iptables-save', ['--version']]] as const) {
    if (spawnSync(cmd, [...args], { stdio: 'ignore' }).status !== 0) return `${cmd} is not installed`;
  }
  if (!existsSync('/usr/lib/cni/bridge') || !existsSync('/usr/lib/cni/host-local') || !existsSync('/usr/lib/cni/portmap')) return 'the CNI plugins are not in /usr/lib/cni';
  if (!existsSync('/bin/busybox')) return 'busybox-static is not installed';
  return undefined;
}

/** A /24 under 10.88.0.0/16 that no host route covers yet. */
function freePodCidr(): string {
  const routes = spawnSync('ip', ['-4', 'route', 'show'], { encoding: 'utf8' }).stdout ?? '';
  for (let i = 0; i < 50; i++) {
    const octet = 64 + Math.floor(Math.random() * 160);
    if (!routes.includes(`10.88.${octet}.`)) return `10.88.${octet}.0/24`;
  }
  throw new Error('no free 10.88.x.0/24 for the test pod network');
}

const missing = missingRequirement();

if (missing) {
  describe('cri-containerd against a real containerd', () => {
    it(`is skipped: ${missing} (the containerd specs need root, containerd, runc, ctr, CNI plugins and busybox-static)`, function () {
      this.skip();
    });
  });
} else {
  const tmp = mkdtempSync('/tmp/kbcri-');
  const suffix = tmp.slice(-6).toLowerCase().replace(/[^a-z0-9]/g, 'x');
  const bridgeName = `kbt${suffix}`;
  const podCidr = freePodCidr();
  const cidrPrefix = podCidr.split('.').slice(0, 3).join('.');
  const config: Partial<CriContainerdConfig> = { root: join(tmp, 'root'), stateDir: join(tmp, 'state'), bridgeName, podCidr, logLevel: 'info' };
  const layout = containerdLayout(config.root!, config.stateDir!);

  after(async function () {
    this.timeout(120_000);
    await cleanupNode(tmp, bridgeName, config);
  });

  describeContainerRuntimeContract(criContainerdPlugin, {
    config,
    image: BUSYBOX_IMAGE,
    pull: false,
    // The suite pulls its removable image first, and containerd always pulls from a registry (there
    // is none here): the import-then-remove path is covered below instead.
    removableImage: null,
    startTimeoutMs: 60_000,
    stopTimeoutMs: 15_000,
    testTimeoutMs: 90_000,
    invalidConfigs: [
      { config: { ...config, bridgeName: 'much-too-long-bridge' }, path: '/bridgeName' },
      { config: { ...config, podCidr: '10.88.0.0/33' }, path: '/podCidr' },
      { config: { ...config, startTimeoutSeconds: 0 }, path: '/startTimeoutSeconds' },
    ],
  });

  describe('cri-containerd against a real containerd', function () {
    this.timeout(90_000);
    let running: RunningPlugin | undefined;
    let rt: ContainerRuntime;
    const sandboxes = new Set<string>();
    let n = 0;

    const sandboxConfig = (extra: Partial<PodSandboxConfig> = {}): PodSandboxConfig => {
      const name = `focus-${++n}`;
      return { metadata: { name, uid: `uid-${suffix}-${n}`, namespace: 'kubernel-test' }, hostname: name, logDirectory: join(tmp, 'logs', name), labels: { suite: 'focus' }, ...extra };
    };
    const runSandbox = async (extra: Partial<PodSandboxConfig> = {}): Promise<{ id: string; config: PodSandboxConfig }> => {
      const cfg = sandboxConfig(extra);
      const id = await rt.runPodSandbox(cfg);
      sandboxes.add(id);
      return { id, config: cfg };
    };
    const startContainer = async (sb: { id: string; config: PodSandboxConfig }, name: string, command: string[], extra: Partial<ContainerConfig> = {}): Promise<string> => {
      const id = await rt.createContainer(sb.id, { metadata: { name }, image: { image: BUSYBOX_IMAGE }, command, logPath: `${name}_0.log`, ...extra }, sb.config);
      await rt.startContainer(id);
      return id;
    };
    const waitExited = async (id: string, ms = 20_000) => {
      const deadline = Date.now() + ms;
      for (;;) {
        const { status } = await rt.containerStatus(id);
        if (status.state === 'CONTAINER_EXITED') return status;
        assert.ok(Date.now() < deadline, `container ${id} still ${status.state} after ${ms} ms`);
        await sleep(100);
      }
    };
    const removeSandbox = async (id: string): Promise<void> => {
      await rt.stopPodSandbox(id);
      await rt.removePodSandbox(id);
      sandboxes.delete(id);
    };

    before(async function () {
      this.timeout(120_000);
      running = startPlugin(criContainerdPlugin, { config });
      rt = (await running.ready) as ContainerRuntime;
    });

    after(async function () {
      this.timeout(120_000);
      for (const id of sandboxes) await removeSandbox(id).catch(() => undefined);
      if (running) {
        await running.stop(15_000);
        running.host.dispose();
      }
    });

    it('gives a sandbox an IP from the pod CIDR, reachable from the host (busybox httpd on port 80)', async () => {
      const sb = await runSandbox();
      const { status } = await rt.podSandboxStatus(sb.id);
      assert.equal(status.state, 'SANDBOX_READY');
      const ip = status.network?.ip ?? '';
      assert.ok(ip.startsWith(`${cidrPrefix}.`), `sandbox IP ${ip} is not in ${podCidr}`);
      await startContainer(sb, 'web', ['httpd', '-f', '-p', '80', '-h', '/var/www']);
      const deadline = Date.now() + 10_000;
      let body = '';
      while (!body.includes('Hello from Kubernel')) {
        body = await httpGet(`http://${ip}/`).catch((err: unknown) => {
          if (Date.now() > deadline) throw err;
          return '';
        });
        if (!body) await sleep(100);
      }
      assert.match(body, /Hello from Kubernel/);
      await removeSandbox(sb.id);
    });

    it('writes the container log in the CRI format under the sandbox log directory', async () => {
      const sb = await runSandbox();
      const id = await startContainer(sb, 'logger', ['sh', '-c', 'echo out-line; echo err-line >&2; printf partial']);
      const st = await waitExited(id);
      assert.equal(st.exitCode, 0);
      assert.equal(st.logPath, join(sb.config.logDirectory!, 'logger_0.log'));
      const lines = readFileSync(st.logPath, 'utf8').trimEnd().split('\n');
      const ts = '\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})';
      assert.ok(lines.some((l) => new RegExp(`^${ts} stdout F out-line$`).test(l)), `no stdout line in ${JSON.stringify(lines)}`);
      assert.ok(lines.some((l) => new RegExp(`^${ts} stderr F err-line$`).test(l)), `no stderr line in ${JSON.stringify(lines)}`);
      assert.ok(lines.some((l) => new RegExp(`^${ts} stdout P partial$`).test(l)), `no partial line in ${JSON.stringify(lines)}`);
      await removeSandbox(sb.id);
    });

    it('execSync returns stdout, stderr and the exit code; a command outliving its timeout is DeadlineExceeded', async () => {
      const sb = await runSandbox();
      const id = await startContainer(sb, 'sleeper', ['sleep', '3600']);
      const r = await rt.execSync(id, ['sh', '-c', 'echo to-out; echo to-err >&2; exit 4'], 10);
      assert.deepEqual([Buffer.from(r.stdout).toString(), Buffer.from(r.stderr).toString(), r.exitCode], ['to-out\n', 'to-err\n', 4]);
      const hostname = await rt.execSync(id, ['hostname'], 10);
      assert.equal(Buffer.from(hostname.stdout).toString().trim(), sb.config.hostname);
      const err = await rt.execSync(id, ['sleep', '30'], 1).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(isRuntimeError(err, 'DeadlineExceeded'), `expected DeadlineExceeded, got ${String(err)}`);
      await removeSandbox(sb.id);
    });

    it('OOM-kills a container that allocates more than its 32 MiB limit (exit 137, reason OOMKilled)', async () => {
      const sb = await runSandbox();
      // Command substitution keeps all 96 MiB in the shell's memory.
      const id = await startContainer(sb, 'hog', ['sh', '-c', 'x="$(head -c 100663296 /dev/zero | tr "\\0" a)"; echo survived ${#x}'], {
        linux: { resources: { memoryLimitInBytes: 32 * 1024 * 1024, memorySwapLimitInBytes: 32 * 1024 * 1024 } },
      });
      const st = await waitExited(id, 60_000);
      assert.equal(st.exitCode, 137, `exit code ${st.exitCode}, reason ${st.reason}`);
      assert.equal(st.reason, 'OOMKilled');
      assert.equal(st.resources?.linux?.memoryLimitInBytes, 32 * 1024 * 1024);
      await removeSandbox(sb.id);
    });

    it('stop and remove reclaim the network namespace, the IP and the containers', async () => {
      const sb = await runSandbox();
      const { status } = await rt.podSandboxStatus(sb.id);
      const ip = status.network!.ip;
      const ipFile = join(layout.ipamDataDir, bridgeName, ip);
      assert.ok(existsSync(ipFile), `host-local did not record ${ip}`);
      // containerd's verbose sandbox info names the network namespace's bind mount (under the state dir).
      const info = JSON.parse((await rt.podSandboxStatus(sb.id, true)).info?.info ?? '{}') as { runtimeSpec?: { linux?: { namespaces?: Array<{ type: string; path?: string }> } } };
      const netns = info.runtimeSpec?.linux?.namespaces?.find((ns) => ns.type === 'network')?.path ?? '';
      assert.ok(netns.startsWith(`${layout.stateDir}/`), `network namespace ${JSON.stringify(netns)} is not under the state dir`);
      assert.ok(existsSync(netns), `network namespace ${netns} does not exist`);
      const id = await startContainer(sb, 'victim', ['sleep', '3600']);
      await rt.stopPodSandbox(sb.id);
      assert.equal((await rt.podSandboxStatus(sb.id)).status.state, 'SANDBOX_NOTREADY');
      assert.equal((await rt.containerStatus(id)).status.state, 'CONTAINER_EXITED');
      assert.ok(!existsSync(ipFile), `the IP ${ip} was not released on stop`);
      await rt.removePodSandbox(sb.id);
      sandboxes.delete(sb.id);
      assert.ok(!existsSync(netns), `the network namespace ${netns} was not removed`);
      assert.deepEqual(await rt.listContainers({ podSandboxId: sb.id }), []);
      const err = await rt.containerStatus(id).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(isRuntimeError(err, 'NotFound'));
    });

    it('imports a second local image, lists it, and removes it idempotently', async () => {
      const name = `docker.io/kubernel/removable:${suffix}`;
      const built = await buildBusyboxImage(join(tmp, 'removable.tar'), { name, cmd: ['true'], labels: { 'io.kubernel.test': suffix } });
      await importImageArchive(built.file, { socketPath: layout.socketPath });
      let img = (await rt.imageStatus({ image: name })).image;
      for (let i = 0; !img && i < 100; i++) {
        await sleep(50);
        img = (await rt.imageStatus({ image: name })).image;
      }
      assert.ok(img, `${name} not present after import`);
      assert.equal(img.id, built.id);
      assert.ok(img.repoTags.includes(name));
      assert.ok((await rt.listImages()).some((i) => i.id === built.id));
      assert.equal((await rt.imageStatus({ image: BUSYBOX_IMAGE })).image?.id !== built.id, true);
      await rt.removeImage({ image: name });
      assert.equal((await rt.imageStatus({ image: name })).image, undefined);
      await rt.removeImage({ image: name });
      assert.ok((await rt.imageStatus({ image: PAUSE_IMAGE })).image, 'removing one image removed the pause image');
    });

    it('restarts containerd when it dies, reporting not ready meanwhile; running pods survive', async () => {
      const sb = await runSandbox();
      const id = await startContainer(sb, 'survivor', ['sleep', '3600']);
      const oldPid = Number(readFileSync(layout.pidPath, 'utf8'));
      process.kill(oldPid, 'SIGKILL');
      const conditions = (s: StatusResponse) => Object.fromEntries(s.status.conditions.map((c) => [c.type, c]));
      let sawDown = false;
      const deadline = Date.now() + 30_000;
      for (;;) {
        const s = await rt.status().catch(() => undefined);
        const ready = s ? conditions(s)[RUNTIME_READY] : undefined;
        if (ready && !ready.status) {
          sawDown = true;
          assert.equal(ready.reason, 'ContainerdRestarting');
        }
        if (sawDown && ready?.status) break;
        assert.ok(Date.now() < deadline, 'containerd was not back within 30 s');
        await sleep(20);
      }
      const newPid = Number(readFileSync(layout.pidPath, 'utf8'));
      assert.notEqual(newPid, oldPid);
      assert.equal((await rt.containerStatus(id)).status.state, 'CONTAINER_RUNNING');
      assert.equal((await rt.podSandboxStatus(sb.id)).status.state, 'SANDBOX_READY');
      const r = await rt.execSync(id, ['echo', 'still-here'], 10);
      assert.equal(Buffer.from(r.stdout).toString(), 'still-here\n');
      await removeSandbox(sb.id);
    });
  });

  describe('cri-containerd UpdateRuntimeConfig', function () {
    this.timeout(90_000);
    it('reports NetworkReady false until it is given a pod CIDR, then writes the CNI config', async () => {
      const noCidr = { ...config, root: join(tmp, 'nocidr-root'), stateDir: join(tmp, 'nocidr-state'), importImages: false };
      delete noCidr.podCidr;
      const running = startPlugin(criContainerdPlugin, { config: noCidr });
      try {
        const rt = (await running.ready) as ContainerdRuntime;
        const network = async () => (await rt.status()).status.conditions.find((c) => c.type === NETWORK_READY);
        assert.equal((await network())?.status, false);
        await rt.updateRuntimeConfig({ podCidr });
        const deadline = Date.now() + 10_000;
        while (!(await network())?.status) {
          assert.ok(Date.now() < deadline, `NetworkReady still false: ${JSON.stringify(await network())}`);
          await sleep(50);
        }
        const conf = readFileSync(join(noCidr.root, 'cni', 'net.d', CONTAINERD_CNI_CONF_NAME), 'utf8');
        assert.ok(conf.includes(`"subnet": "${podCidr}"`), conf);
        assert.ok(conf.includes(`"bridge": "${bridgeName}"`), conf);
      } finally {
        await running.stop(15_000);
        running.host.dispose();
      }
    });
  });
}

/** GET `url`, resolving with the body (rejecting on errors and non-200 answers). */
function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get(url, { timeout: 2_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/**
 * Leaves the host as it was: removes every sandbox of the test containerd (through a containerd
 * started again on the same root, so CNI DEL runs), stops it, kills shims still serving the temp
 * dir, unmounts what is mounted under it, deletes the bridge and leftover CNI iptables rules, and
 * removes the temp dir.
 */
async function cleanupNode(tmp: string, bridgeName: string, config: Partial<CriContainerdConfig>): Promise<void> {
  const quiet = { debug() {}, info() {}, warn() {}, error() {} } as unknown as ConstructorParameters<typeof ManagedContainerd>[0]['logger'];
  if (existsSync(join(config.root!, 'config.toml'))) {
    const managed = new ManagedContainerd({
      root: config.root!,
      stateDir: config.stateDir!,
      bridgeName,
      sandboxImage: PAUSE_IMAGE,
      cniBinDir: '/usr/lib/cni',
      logLevel: 'warn',
      startTimeoutMs: 30_000,
      logger: quiet,
    });
    try {
      await managed.start(config.podCidr);
      const rt = new ContainerdRuntime({ endpoint: managed.endpoint });
      try {
        for (const sb of await rt.listPodSandbox()) {
          await rt.stopPodSandbox(sb.id).catch(() => undefined);
          await rt.removePodSandbox(sb.id).catch(() => undefined);
        }
      } finally {
        await rt.close();
      }
    } catch {
      // best effort: the steps below still run
    } finally {
      await managed.stop();
    }
  }
  // Shims (and their containers) that still serve this temp dir's containerd.
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmdline.includes(tmp) && Number(pid) !== process.pid) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone already
    }
  }
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m.startsWith(`${tmp}/`))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) await run('umount', ['-l', m]).catch(() => undefined);
  await run('ip', ['link', 'del', bridgeName]).catch(() => undefined);
  // CNI rules of this network (bridge ipMasq chains are commented with the network name).
  const { stdout } = await run('iptables-save', ['-t', 'nat']).catch(() => ({ stdout: '' }));
  for (const line of stdout.split('\n').filter((l) => l.startsWith('-A ') && l.includes(`name: \\"${bridgeName}\\"`))) {
    await run('sh', ['-c', `iptables -t nat -D ${line.slice(3)}`]).catch(() => undefined);
    const chain = / -j (CNI-[0-9a-f]+)/.exec(line)?.[1];
    if (chain) {
      await run('iptables', ['-t', 'nat', '-F', chain]).catch(() => undefined);
      await run('iptables', ['-t', 'nat', '-X', chain]).catch(() => undefined);
    }
  }
  rmSync(tmp, { recursive: true, force: true });
}
