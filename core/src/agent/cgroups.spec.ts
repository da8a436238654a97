import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CgroupManager, cgroupsAvailable, sharesToWeight } from './cgroups.js';

const isRoot = process.getuid?.() === 0;

/** Waits for a child to exit; its signal (or exit code). */
function exited(child: ChildProcess): Promise<string> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(String(child.signalCode ?? child.exitCode));
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(String(signal ?? code))));
}

describe('agent/cgroups: layout detection', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kubernel-cgroups-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('detects v1 (with a hybrid unified mount), v2 and missing controllers from the mount table', () => {
    const mounts = join(dir, 'mounts');
    writeFileSync(
      mounts,
      [
        'cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,cpu,cpuacct 0 0',
        'cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0',
        'cgroup /sys/fs/cgroup/cpuset cgroup rw,cpuset 0 0',
        'cgroup /sys/fs/cgroup/pids cgroup rw,pids 0 0',
        'cgroup /sys/fs/cgroup/systemd cgroup rw,xattr,name=systemd 0 0',
        'cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0',
        'cgroup /elsewhere/memory cgroup rw,memory 0 0',
      ].join('\n'),
    );
    const v1 = cgroupsAvailable('/sys/fs/cgroup', mounts);
    expect(v1.version).to.equal(1);
    expect(v1.controllers).to.deep.equal({
      cpu: '/sys/fs/cgroup/cpu,cpuacct',
      cpuacct: '/sys/fs/cgroup/cpu,cpuacct',
      memory: '/sys/fs/cgroup/memory',
      cpuset: '/sys/fs/cgroup/cpuset',
      pids: '/sys/fs/cgroup/pids',
      'name=systemd': '/sys/fs/cgroup/systemd',
    });

    writeFileSync(mounts, 'cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n');
    const partial = cgroupsAvailable('/sys/fs/cgroup', mounts);
    expect(partial.version).to.equal(undefined);
    expect(partial.reason).to.contain('cpu, cpuacct, cpuset, pids');

    const unified = join(dir, 'unified');
    mkdirSync(unified);
    writeFileSync(join(unified, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
    writeFileSync(mounts, `cgroup2 ${unified} cgroup2 rw 0 0\n`);
    expect(cgroupsAvailable(unified, mounts)).to.deep.equal({
      version: 2,
      controllers: { cpuset: unified, cpu: unified, io: unified, memory: unified, pids: unified },
    });
  });

  it('converts shares to cgroup v2 weights as runc does', () => {
    expect(sharesToWeight(2)).to.equal(1);
    expect(sharesToWeight(1024)).to.equal(39);
    expect(sharesToWeight(262_144)).to.equal(10_000);
  });

  it('refuses names outside its root', () => {
    const m = new CgroupManager({ root: 'kubepods', support: { version: 1, controllers: { memory: '/nonexistent' } } });
    return Promise.all([
      m.ensurePodCgroup('/other/podx', {}).then(
        () => expect.fail('accepted'),
        (err: Error) => expect(err.message).to.contain('not under /kubepods'),
      ),
      m.removePodCgroup('/kubepods/../etc').then(
        () => expect.fail('accepted'),
        (err: Error) => expect(err.message).to.match(/bad cgroup name|not under/),
      ),
      m.removePodCgroup('/kubepods').then(
        () => expect.fail('accepted'),
        (err: Error) => expect(err.message).to.contain('root'),
      ),
    ]);
  });
});

describe('agent/cgroups: cgroup v1 on this machine', function () {
  const support = cgroupsAvailable();
  const base = `kubernel-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const root = `${base}/kubepods`;
  let manager: CgroupManager;
  const children: ChildProcess[] = [];

  before(function () {
    if (!isRoot) this.skip(); // needs root to write cgroupfs
    if (support.version !== 1 || support.controllers['memory'] === undefined) this.skip(); // needs cgroup v1 with the memory controller
    manager = new CgroupManager({ root });
  });

  after(async function () {
    if (!manager) return;
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const pod of await manager.listPodCgroups()) await manager.removePodCgroup(pod.name);
    await manager.removeQosCgroups();
    for (const h of new Set(Object.values(support.controllers))) expect(existsSync(join(h, base)), `${h}/${base} left behind`).to.equal(false);
  });

  const file = (controller: string, rel: string, name: string): string => readFileSync(join(support.controllers[controller]!, rel, name), 'utf8').trim();

  it('creates the QoS parents and the pod cgroup in every hierarchy, with the pod limits', async () => {
    const name = `/${root}/podguaranteed-1`;
    await manager.ensurePodCgroup(name, { cpuShares: 870, cpuQuota: 85_000, cpuPeriod: 100_000, memoryLimitInBytes: 224 * 1024 * 1024, pidsLimit: 512 });
    for (const h of new Set(Object.values(support.controllers))) {
      for (const rel of [root, `${root}/burstable`, `${root}/besteffort`, name]) expect(existsSync(join(h, rel)), `${h}/${rel}`).to.equal(true);
    }
    expect(file('cpu', name, 'cpu.shares')).to.equal('870');
    expect(file('cpu', name, 'cpu.cfs_period_us')).to.equal('100000');
    expect(file('cpu', name, 'cpu.cfs_quota_us')).to.equal('85000');
    expect(file('memory', name, 'memory.limit_in_bytes')).to.equal(String(224 * 1024 * 1024));
    expect(file('pids', name, 'pids.max')).to.equal('512');
    expect(file('cpu', `${root}/besteffort`, 'cpu.shares')).to.equal('2');
    const cpusetRoot = support.controllers['cpuset']!;
    expect(file('cpuset', name, 'cpuset.cpus')).to.equal(readFileSync(join(cpusetRoot, 'cpuset.cpus'), 'utf8').trim());
    expect(file('cpuset', name, 'cpuset.mems')).to.equal(readFileSync(join(cpusetRoot, 'cpuset.mems'), 'utf8').trim());
    expect(await manager.podCgroupExists(name)).to.equal(true);

    // Idempotent, and limits are rewritten (an unlimited quota is -1).
    await manager.ensurePodCgroup(name, { cpuShares: 100, cpuQuota: -1, memoryLimitInBytes: 0 });
    expect(file('cpu', name, 'cpu.shares')).to.equal('100');
    expect(file('cpu', name, 'cpu.cfs_quota_us')).to.equal('-1');
    expect(Number(file('memory', name, 'memory.limit_in_bytes'))).to.be.greaterThan(2 ** 60);
  });

  it('lists pod cgroups by QoS class', async () => {
    await manager.ensurePodCgroup(`/${root}/burstable/podb-2`, { cpuShares: 256 });
    await manager.ensurePodCgroup(`/${root}/besteffort/pode-3`, { cpuShares: 2 });
    const pods = (await manager.listPodCgroups()).sort((a, b) => a.uid.localeCompare(b.uid));
    expect(pods).to.deep.equal([
      { uid: 'b-2', qosClass: 'Burstable', name: `/${root}/burstable/podb-2` },
      { uid: 'e-3', qosClass: 'BestEffort', name: `/${root}/besteffort/pode-3` },
      { uid: 'guaranteed-1', qosClass: 'Guaranteed', name: `/${root}/podguaranteed-1` },
    ]);
  });

  it('enforces the memory limit: a process allocating past it is OOM-killed', async () => {
    const name = `/${root}/burstable/podoom-4`;
    await manager.ensurePodCgroup(name, { cpuShares: 2, memoryLimitInBytes: 16 * 1024 * 1024 });
    const child = spawn('sh', ['-c', 'read go; exec dd if=/dev/zero of=/dev/null bs=64M count=1'], { stdio: ['pipe', 'ignore', 'ignore'] });
    children.push(child);
    writeFileSync(join(support.controllers['memory']!, name, 'cgroup.procs'), String(child.pid));
    child.stdin!.end('go\n');
    expect(await exited(child)).to.equal('SIGKILL');
    expect(Number(file('memory', name, 'memory.failcnt'))).to.be.greaterThan(0);
    await manager.removePodCgroup(name);
  });

  it('removes a pod cgroup: kills what runs in it and in container cgroups below, removes every level', async () => {
    const name = `/${root}/burstable/podkill-5`;
    await manager.ensurePodCgroup(name, { cpuShares: 2 });
    // What runc does for a container: a child cgroup in every hierarchy, a process in it.
    const containerCgroup = `${name}/0123abcd`;
    for (const h of new Set(Object.values(support.controllers))) {
      const d = join(h, containerCgroup);
      mkdirSync(d);
      if (h === support.controllers['cpuset']) {
        for (const f of ['cpuset.cpus', 'cpuset.mems']) writeFileSync(join(d, f), readFileSync(join(h, name, f), 'utf8').trim());
      }
    }
    const child = spawn('sleep', ['600'], { stdio: 'ignore' });
    children.push(child);
    for (const c of ['memory', 'cpu', 'pids']) writeFileSync(join(support.controllers[c]!, containerCgroup, 'cgroup.procs'), String(child.pid));
    const gone = exited(child);

    await manager.removePodCgroup(name);
    expect(await gone).to.equal('SIGKILL');
    for (const h of new Set(Object.values(support.controllers))) expect(existsSync(join(h, name)), `${h}${name}`).to.equal(false);
    expect(await manager.podCgroupExists(name)).to.equal(false);
    expect((await manager.listPodCgroups()).map((p) => p.uid)).to.not.include('kill-5');
    // Idempotent.
    await manager.removePodCgroup(name);
  });
});

describe('agent/cgroups: the unified (v2) tree', function () {
  const mountPoint = '/sys/fs/cgroup/unified';
  const support = cgroupsAvailable(mountPoint);
  const base = `kubernel-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  let manager: CgroupManager;
  const children: ChildProcess[] = [];

  before(function () {
    if (!isRoot || support.version !== 2) this.skip(); // needs root and a cgroup2 mount at /sys/fs/cgroup/unified
    manager = new CgroupManager({ root: `${base}/kubepods`, mountPoint });
  });

  after(async () => {
    if (!manager) return;
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const pod of await manager.listPodCgroups()) await manager.removePodCgroup(pod.name);
    await manager.removeQosCgroups();
    expect(existsSync(join(mountPoint, base))).to.equal(false);
  });

  it('creates, lists and removes (cgroup.kill) a pod cgroup; a limit on a missing controller fails clearly', async () => {
    const name = `/${base}/kubepods/burstable/podv2-1`;
    // This machine's unified tree offers no controllers: a CPU limit cannot be applied there.
    if (support.controllers['cpu'] === undefined) {
      const err = await manager.ensurePodCgroup(name, { cpuShares: 256 }).then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err?.message).to.contain('cgroup controller cpu is not available');
    }
    await manager.ensurePodCgroup(name, {});
    expect(existsSync(join(mountPoint, name))).to.equal(true);
    const child = spawn('sleep', ['600'], { stdio: 'ignore' });
    children.push(child);
    writeFileSync(join(mountPoint, name, 'cgroup.procs'), String(child.pid));
    expect((await manager.listPodCgroups()).map((p) => p.uid)).to.deep.equal(['v2-1']);
    const gone = exited(child);
    await manager.removePodCgroup(name);
    expect(await gone).to.equal('SIGKILL');
    expect(existsSync(join(mountPoint, name))).to.equal(false);
  });
});
