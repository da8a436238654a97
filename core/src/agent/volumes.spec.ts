import { expect } from 'chai';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient, type ApiTransport, type TransportRequest } from '@kubernel/sdk';
import { atomicWrite, DATA_DIR_NAME, payloadPathError, type FileProjection } from './atomic-writer.js';
import type { V1PodContainer, V1PodObject, V1Volume } from './core-v1.js';
import { b64, FakeClock, FakeMounter, FakeSources } from './fake-sources.spec-helper.js';
import { mountsUnder, parseMountInfo, SystemMounter } from './mounter.js';
import { checkHostPathType } from './volume-plugins/host-path.js';
import {
  apiVolumeSources,
  ContainerConfigError,
  memoryVolumeSize,
  ObjectNotFoundError,
  VolumeError,
  VolumeManager,
  type VolumeContext,
  type VolumePlugin,
} from './volumes.js';

const isRoot = process.getuid?.() === 0;
const mode = async (p: string): Promise<number> => (await stat(p)).mode & 0o7777;
const T0 = Date.parse('2026-11-26T10:00:00Z');

/** Unmounts anything left under `dir` (deepest first) and removes it: tests clean up even when they fail. */
async function scrub(dir: string): Promise<void> {
  if (isRoot) {
    const m = new SystemMounter();
    for (const mp of await mountsUnder(m, dir)) await m.unmount(mp.mountPoint).catch(() => undefined);
  }
  await rm(dir, { recursive: true, force: true });
}

describe('agent volumes: atomic writer', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubernel-aw-'));
  });
  afterEach(() => scrub(dir));

  const payload = (entries: Record<string, string | [string, number]>): Map<string, FileProjection> =>
    new Map(Object.entries(entries).map(([k, v]) => [k, typeof v === 'string' ? { data: v, mode: 0o644 } : { data: v[0], mode: v[1] }]));

  it('writes a timestamped directory, the ..data link and user-visible links through it', async () => {
    expect(await atomicWrite(dir, payload({ a: 'one', 'sub/b': ['two', 0o600] }), { now: new Date(T0) })).to.equal(true);
    const ts = await readlink(join(dir, DATA_DIR_NAME));
    expect(ts).to.match(/^\.\.2026_11_26_10_00_00\.\w+$/);
    expect(await readlink(join(dir, 'a'))).to.equal('..data/a');
    expect(await readlink(join(dir, 'sub'))).to.equal('..data/sub');
    expect(await readFile(join(dir, 'a'), 'utf8')).to.equal('one');
    expect(await readFile(join(dir, 'sub/b'), 'utf8')).to.equal('two');
    expect(await mode(join(dir, ts, 'a'))).to.equal(0o644);
    expect(await mode(join(dir, ts, 'sub/b'))).to.equal(0o600);
    expect(await mode(join(dir, ts))).to.equal(0o755);
    expect((await readdir(dir)).sort()).to.deep.equal([DATA_DIR_NAME, ts, 'a', 'sub'].sort());
  });

  it('does nothing when the content is unchanged, and swaps atomically when it changed', async () => {
    await atomicWrite(dir, payload({ a: 'one', gone: 'x' }));
    const first = await readlink(join(dir, DATA_DIR_NAME));
    expect(await atomicWrite(dir, payload({ a: 'one', gone: 'x' }))).to.equal(false);
    expect(await readlink(join(dir, DATA_DIR_NAME))).to.equal(first);

    const visible = join(dir, 'a'); // a path a container already holds
    expect(await atomicWrite(dir, payload({ a: 'two' }))).to.equal(true);
    const second = await readlink(join(dir, DATA_DIR_NAME));
    expect(second).to.not.equal(first);
    expect(await readFile(visible, 'utf8')).to.equal('two');
    expect((await readdir(dir)).sort()).to.deep.equal([DATA_DIR_NAME, second, 'a'].sort());
  });

  it('rewrites on a mode change alone', async () => {
    await atomicWrite(dir, payload({ a: ['x', 0o644] }));
    expect(await atomicWrite(dir, payload({ a: ['x', 0o400] }))).to.equal(true);
    expect(await mode(join(dir, 'a'))).to.equal(0o400);
  });

  const invalid: [string, string][] = [
    ['', 'invalid path: must not be empty: ""'],
    ['/abs', 'invalid path: must be relative path: /abs'],
    ['a/../b', "invalid path: must not contain '..': a/../b"],
    ['..hidden', "invalid path: must not start with '..': ..hidden"],
    ['x'.repeat(256), 'invalid path: filenames must be less than or equal to 255 characters'],
  ];
  for (const [path, message] of invalid) {
    it(`refuses the payload path ${JSON.stringify(path.slice(0, 20))}`, async () => {
      expect(payloadPathError(path)).to.equal(message);
      const err = await atomicWrite(dir, payload({ ok: 'x', [path]: 'y' })).then(() => undefined, (e: unknown) => e);
      expect((err as Error).message).to.equal(message);
      expect(await readdir(dir)).to.deep.equal([]);
    });
  }
});

describe('agent volumes: mount table', () => {
  it('parses mountinfo, unescaping mount points', () => {
    const text = '36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n22 1 0:21 / /tmp/x rw,relatime shared:5 - tmpfs tmpfs rw,size=65536k\n';
    expect(parseMountInfo(text)).to.deep.equal([
      { mountPoint: '/mnt/with space', options: 'rw,noatime', fsType: 'ext3', source: '/dev/root', superOptions: 'rw,errors=continue' },
      { mountPoint: '/tmp/x', options: 'rw,relatime', fsType: 'tmpfs', source: 'tmpfs', superOptions: 'rw,size=65536k' },
    ]);
  });
});

describe('agent volumes: hostPath type checks', () => {
  let dir: string;
  let server: Server | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubernel-hp-'));
    await writeFile(join(dir, 'file'), 'x');
    await mkdir(join(dir, 'dir'));
  });
  afterEach(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
    await scrub(dir);
  });

  const cases: [string, string, string | undefined][] = [
    ['', 'missing', undefined],
    ['Directory', 'dir', undefined],
    ['Directory', 'file', 'hostPath type check failed: <d>/file is not a directory'],
    ['Directory', 'missing', 'hostPath type check failed: <d>/missing is not a directory'],
    ['DirectoryOrCreate', 'file', 'hostPath type check failed: <d>/file is not a directory'],
    ['File', 'file', undefined],
    ['File', 'dir', 'hostPath type check failed: <d>/dir is not a file'],
    ['FileOrCreate', 'dir', 'hostPath type check failed: <d>/dir is not a file'],
    ['Socket', 'file', 'hostPath type check failed: <d>/file is not a socket file'],
    ['CharDevice', 'file', 'hostPath type check failed: <d>/file is not a character device'],
    ['BlockDevice', 'file', 'hostPath type check failed: <d>/file is not a block device'],
    ['Weird', 'file', 'Weird is an invalid volume type'],
  ];
  for (const [type, name, message] of cases) {
    it(`${type || '""'} on ${name}: ${message ? 'fails' : 'passes'}`, async () => {
      const err = await checkHostPathType(join(dir, name), type).then(() => undefined, (e: unknown) => e);
      if (message === undefined) expect(err).to.equal(undefined);
      else expect((err as Error).message).to.equal(message.replace('<d>', dir));
    });
  }

  it('creates directories (0755, with parents) and files (0644, not their parents)', async () => {
    await checkHostPathType(join(dir, 'new/deep'), 'DirectoryOrCreate');
    expect(await mode(join(dir, 'new/deep'))).to.equal(0o755);
    await checkHostPathType(join(dir, 'new-file'), 'FileOrCreate');
    expect((await stat(join(dir, 'new-file'))).isFile()).to.equal(true);
    expect(await mode(join(dir, 'new-file'))).to.equal(0o644);
    const err = await checkHostPathType(join(dir, 'no-parent/f'), 'FileOrCreate').then(() => undefined, (e: unknown) => e);
    expect((err as NodeJS.ErrnoException).code).to.equal('ENOENT');
  });

  it('recognises sockets and character devices', async () => {
    const sock = join(dir, 'sock');
    server = createServer();
    await new Promise<void>((resolve) => server!.listen(sock, resolve));
    await checkHostPathType(sock, 'Socket');
    await checkHostPathType('/dev/null', 'CharDevice');
    const err = await checkHostPathType('/dev/null', 'BlockDevice').then(() => undefined, (e: unknown) => e);
    expect((err as Error).message).to.equal('hostPath type check failed: /dev/null is not a block device');
  });
});

const basePod = (volumes: V1Volume[], containers: V1PodContainer[] = [{ name: 'app' }], uid = 'pod-uid-1'): V1PodObject => ({
  metadata: { name: 'web-0', namespace: 'shop', uid, labels: { tier: 'front', app: 'web' }, annotations: { 'example.com/owner': 'team-a' } },
  spec: { containers, volumes, serviceAccountName: 'builder', nodeName: 'node-a' },
});

describe('agent volumes: VolumeManager', () => {
  let root: string;
  let sources: FakeSources;
  let mounter: FakeMounter;
  let clock: FakeClock;
  let vm: VolumeManager;
  let refreshErrors: VolumeError[];

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'kubernel-vm-'));
    sources = new FakeSources();
    mounter = new FakeMounter();
    clock = new FakeClock(T0);
    refreshErrors = [];
    vm = new VolumeManager({ root, sources, mounter, clock, remountIntervalMs: 10_000, tokenJitterMs: () => 0, nodeAllocatable: { cpu: '4', memory: '8Gi' }, onRefreshError: (_p, e) => refreshErrors.push(e) });
    sources.configMaps.set('shop/cfg', { data: { 'app.conf': 'port=80\n', other: 'o' }, binaryData: { blob: b64('\u0000\u0001') } });
    sources.secrets.set('shop/creds', { data: { user: b64('admin'), pass: b64('s3cret') } });
  });
  afterEach(() => scrub(root));

  const dirOf = (plugin: string, name: string, uid = 'pod-uid-1'): string => join(root, uid, 'volumes', plugin, name);

  it('lays volumes out as the kubelet does and sets up emptyDir (0777) and configMap (0644, read-only)', async () => {
    const pod = basePod([{ name: 'scratch', emptyDir: {} }, { name: 'config', configMap: { name: 'cfg' } }]);
    await vm.setUp(pod);
    expect(await mode(dirOf('kubernetes.io~empty-dir', 'scratch'))).to.equal(0o777);
    const cfg = dirOf('kubernetes.io~configmap', 'config');
    expect(await readFile(join(cfg, 'app.conf'), 'utf8')).to.equal('port=80\n');
    expect(await readFile(join(cfg, 'other'), 'utf8')).to.equal('o');
    expect([...(await readFile(join(cfg, 'blob')))]).to.deep.equal([0, 1]);
    expect(await mode(join(cfg, 'app.conf'))).to.equal(0o644);
    expect(await readlink(join(cfg, 'app.conf'))).to.equal('..data/app.conf');
    expect(mounter.calls).to.deep.equal([]); // neither is memory-backed
  });

  it('projects configMap items with their paths and modes', async () => {
    const pod = basePod([{ name: 'config', configMap: { name: 'cfg', defaultMode: 0o440, items: [{ key: 'app.conf', path: 'etc/app.conf', mode: 0o400 }, { key: 'other', path: 'o.txt' }] } }]);
    await vm.setUp(pod);
    const cfg = dirOf('kubernetes.io~configmap', 'config');
    expect((await readdir(cfg)).filter((n) => !n.startsWith('..')).sort()).to.deep.equal(['etc', 'o.txt']);
    expect(await readFile(join(cfg, 'etc/app.conf'), 'utf8')).to.equal('port=80\n');
    expect(await mode(join(cfg, 'etc/app.conf'))).to.equal(0o400);
    expect(await mode(join(cfg, 'o.txt'))).to.equal(0o440);
  });

  it('propagates a configMap change through the same path once the remount interval passed', async () => {
    const pod = basePod([{ name: 'config', configMap: { name: 'cfg' } }]);
    await vm.setUp(pod);
    const file = join(dirOf('kubernetes.io~configmap', 'config'), 'app.conf');
    sources.configMaps.set('shop/cfg', { data: { 'app.conf': 'port=8080\n' } });
    clock.t += 5_000;
    await vm.setUp(pod);
    expect(await readFile(file, 'utf8')).to.equal('port=80\n');
    const reads = sources.calls.length;
    clock.t += 5_000;
    await vm.setUp(pod);
    expect(sources.calls.length).to.equal(reads + 1);
    expect(await readFile(file, 'utf8')).to.equal('port=8080\n');
    expect((await readdir(dirOf('kubernetes.io~configmap', 'config'))).filter((n) => !n.startsWith('..'))).to.deep.equal(['app.conf']);
    sources.configMaps.set('shop/cfg', { data: { 'app.conf': 'port=9090\n' } });
    await vm.setUp(pod, { force: true });
    expect(await readFile(file, 'utf8')).to.equal('port=9090\n');
  });

  it('keeps the old content and reports when a refresh fails', async () => {
    const pod = basePod([{ name: 'config', configMap: { name: 'cfg' } }]);
    await vm.setUp(pod);
    sources.configMaps.delete('shop/cfg');
    await vm.setUp(pod, { force: true });
    expect(refreshErrors.map((e) => e.message)).to.deep.equal(['configmap "cfg" not found']);
    expect(await readFile(join(dirOf('kubernetes.io~configmap', 'config'), 'app.conf'), 'utf8')).to.equal('port=80\n');
  });

  const failures: [string, V1Volume, string, string][] = [
    ['a missing configMap', { name: 'c', configMap: { name: 'gone' } }, 'CreateContainerConfigError', 'configmap "gone" not found'],
    ['a missing secret', { name: 'c', secret: { secretName: 'gone' } }, 'CreateContainerConfigError', 'secret "gone" not found'],
    ['a missing configMap key', { name: 'c', configMap: { name: 'cfg', items: [{ key: 'nope', path: 'x' }] } }, 'CreateContainerConfigError', 'configmap references non-existent config key: nope'],
    ['a missing secret key', { name: 'c', secret: { secretName: 'creds', items: [{ key: 'nope', path: 'x' }] } }, 'CreateContainerConfigError', 'references non-existent secret key: nope'],
    ['an escaping item path', { name: 'c', configMap: { name: 'cfg', items: [{ key: 'other', path: '../x' }] } }, 'CreateContainerConfigError', "invalid path: must not contain '..': ../x"],
    ['a failed hostPath check', { name: 'c', hostPath: { path: '/proc/version', type: 'Directory' } }, 'CreateContainerConfigError', 'hostPath type check failed: /proc/version is not a directory'],
    ['a volume no plugin supports', { name: 'c', persistentVolumeClaim: { claimName: 'data' } }, 'FailedMount', 'no volume plugin matched for volume "c"'],
  ];
  for (const [what, volume, reason, message] of failures) {
    it(`fails setUp on ${what} (${reason})`, async () => {
      const pod = basePod([{ name: 'ok', emptyDir: {} }, volume]);
      const err = await vm.setUp(pod).then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(VolumeError);
      const v = err as VolumeError;
      expect([v.volumeName, v.reason, v.message]).to.deep.equal(['c', reason, message]);
      expect(v.eventMessage).to.equal(`MountVolume.SetUp failed for volume "c" : ${message}`);
      // The other volumes are set up all the same.
      expect((await stat(dirOf('kubernetes.io~empty-dir', 'ok'))).isDirectory()).to.equal(true);
    });
  }

  it('sets optional missing configMaps and secrets up empty', async () => {
    await vm.setUp(basePod([{ name: 'c', configMap: { name: 'gone', optional: true } }, { name: 's', secret: { secretName: 'gone', optional: true, items: [{ key: 'k', path: 'k' }] } }]));
    expect((await readdir(dirOf('kubernetes.io~configmap', 'c'))).filter((n) => !n.startsWith('..'))).to.deep.equal([]);
    expect((await readdir(dirOf('kubernetes.io~secret', 's'))).filter((n) => !n.startsWith('..'))).to.deep.equal([]);
  });

  it('puts secrets on a tmpfs, decoded, with their modes', async () => {
    await vm.setUp(basePod([{ name: 's', secret: { secretName: 'creds', defaultMode: 0o400 } }], [{ name: 'app', resources: { limits: { memory: '256Mi' } } }]));
    const dir = dirOf('kubernetes.io~secret', 's');
    expect(mounter.calls).to.deep.equal([`mount tmpfs size=${256 * 1024 * 1024} ${dir}`]);
    expect(await readFile(join(dir, 'user'), 'utf8')).to.equal('admin');
    expect(await readFile(join(dir, 'pass'), 'utf8')).to.equal('s3cret');
    expect(await mode(join(dir, 'pass'))).to.equal(0o400);
    // Idempotent: the tmpfs is not mounted twice.
    await vm.setUp(basePod([{ name: 's', secret: { secretName: 'creds' } }]), { force: true });
    expect(mounter.calls.length).to.equal(1);
  });

  it('writes downward API files and refreshes them when labels change', async () => {
    const volume: V1Volume = {
      name: 'info',
      downwardAPI: {
        items: [
          { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
          { path: 'name', fieldRef: { fieldPath: 'metadata.name' } },
          { path: 'owner', fieldRef: { fieldPath: "metadata.annotations['example.com/owner']" }, mode: 0o600 },
          { path: 'cpu_limit', resourceFieldRef: { containerName: 'app', resource: 'limits.cpu', divisor: '1m' } },
          { path: 'mem_request', resourceFieldRef: { containerName: 'app', resource: 'requests.memory', divisor: '1Mi' } },
        ],
      },
    };
    const containers = [{ name: 'app', resources: { requests: { memory: '32Mi' } } }];
    await vm.setUp(basePod([volume], containers));
    const dir = dirOf('kubernetes.io~downward-api', 'info');
    const read = (f: string): Promise<string> => readFile(join(dir, f), 'utf8');
    expect(await read('labels')).to.equal('app="web"\ntier="front"');
    expect(await read('name')).to.equal('web-0');
    expect(await read('owner')).to.equal('team-a');
    expect(await mode(join(dir, 'owner'))).to.equal(0o600);
    expect(await mode(join(dir, 'name'))).to.equal(0o644);
    expect(await read('cpu_limit')).to.equal('4000'); // node allocatable
    expect(await read('mem_request')).to.equal('32');
    expect(mounter.calls).to.deep.equal([`mount tmpfs size=${8 * 1024 ** 3} ${dir}`]);
    const relabeled = basePod([volume], containers);
    await vm.setUp({ ...relabeled, metadata: { ...relabeled.metadata, labels: { app: 'web', tier: 'back', z: 'last' } } }, { force: true });
    expect(await read('labels')).to.equal('app="web"\ntier="back"\nz="last"');
  });

  it('projects a bound service-account token with configMap, secret and downward API sources', async () => {
    let n = 0;
    sources.tokenAnswer = () => ({ token: `token-${++n}`, expirationTimestamp: new Date(clock.t + 3600_000).toISOString() });
    const volume: V1Volume = {
      name: 'kube-api-access',
      projected: {
        defaultMode: 0o444,
        sources: [
          { serviceAccountToken: { path: 'token', audience: 'vault' } },
          { configMap: { name: 'cfg', items: [{ key: 'other', path: 'ca.crt' }] } },
          { secret: { name: 'creds', items: [{ key: 'user', path: 'user' }] } },
          { downwardAPI: { items: [{ path: 'namespace', fieldRef: { fieldPath: 'metadata.namespace' } }] } },
        ],
      },
    };
    await vm.setUp(basePod([volume]));
    const dir = dirOf('kubernetes.io~projected', 'kube-api-access');
    const read = (f: string): Promise<string> => readFile(join(dir, f), 'utf8');
    expect([await read('token'), await read('ca.crt'), await read('user'), await read('namespace')]).to.deep.equal(['token-1', 'o', 'admin', 'shop']);
    expect(await mode(join(dir, 'token'))).to.equal(0o444);
    expect(sources.calls.filter((c) => c.startsWith('token'))).to.deep.equal(['token shop/builder vault 3600 web-0/pod-uid-1']);
  });

  it('rotates the token past 80% of its lifetime, not before', async () => {
    let n = 0;
    sources.tokenAnswer = (req) => ({ token: `token-${++n}`, expirationTimestamp: new Date(clock.t + req.expirationSeconds * 1000).toISOString() });
    const pod = basePod([{ name: 't', projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3600 } }] } }]);
    await vm.setUp(pod);
    // force: refresh now, whatever the remount interval (rotation happens at the first refresh past the deadline)
    const file = join(dirOf('kubernetes.io~projected', 't'), 'token');
    clock.t = T0 + 2879_000; // 79.97% of an hour
    await vm.setUp(pod, { force: true });
    expect(await readFile(file, 'utf8')).to.equal('token-1');
    clock.t = T0 + 2881_000;
    await vm.setUp(pod, { force: true });
    expect(await readFile(file, 'utf8')).to.equal('token-2');
    // Unforced: the next rotation (due at 80% of the new token's hour) waits for the remount interval.
    clock.t = T0 + 2881_000 + 2880_000 + 5_000;
    await vm.setUp(pod);
    expect(await readFile(file, 'utf8')).to.equal('token-3');
    clock.t += 5_000;
    await vm.setUp(pod);
    expect(await readFile(file, 'utf8')).to.equal('token-3');
    expect(n).to.equal(3);
  });

  it('rotates a long-lived token after 24 hours', async () => {
    let n = 0;
    sources.tokenAnswer = (req) => ({ token: `token-${++n}`, expirationTimestamp: new Date(clock.t + req.expirationSeconds * 1000).toISOString() });
    const pod = basePod([{ name: 't', projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 7 * 86400 } }] } }]);
    await vm.setUp(pod);
    clock.t = T0 + 86400_000 - 1000;
    await vm.setUp(pod, { force: true });
    expect(n).to.equal(1);
    clock.t = T0 + 86400_000 + 1000;
    await vm.setUp(pod, { force: true });
    expect(n).to.equal(2);
  });

  it('serves the cached token while a refresh fails, until it expires', async () => {
    sources.tokenAnswer = () => ({ token: 'first', expirationTimestamp: new Date(clock.t + 3600_000).toISOString() });
    const pod = basePod([{ name: 't', projected: { sources: [{ serviceAccountToken: { path: 'token' } }] } }]);
    await vm.setUp(pod);
    sources.tokenAnswer = () => {
      throw new Error('apiserver down');
    };
    clock.t = T0 + 3000_000;
    await vm.setUp(pod);
    expect(refreshErrors).to.deep.equal([]);
    clock.t = T0 + 3600_000;
    await vm.setUp(pod);
    expect(refreshErrors.map((e) => e.reason)).to.deep.equal(['FailedMount']);
    expect(refreshErrors[0]!.message).to.match(/^token shop\/builder expired and refresh failed: apiserver down$/);
    expect(await readFile(join(dirOf('kubernetes.io~projected', 't'), 'token'), 'utf8')).to.equal('first');
  });

  it('fails a first projected setUp when no token can be had', async () => {
    const err = await vm.setUp(basePod([{ name: 't', projected: { sources: [{ serviceAccountToken: { path: 'token' } }, { configMap: { name: 'gone' } }] } }])).then(() => undefined, (e: unknown) => e);
    expect((err as VolumeError).reason).to.equal('FailedMount');
    expect((err as VolumeError).message).to.equal('[failed to fetch token: no tokens here, configmap "gone" not found]');
  });

  describe('mountsFor', () => {
    const volumes: V1Volume[] = [
      { name: 'data', emptyDir: {} },
      { name: 'config', configMap: { name: 'cfg' } },
    ];

    it('maps volumeMounts, forcing content volumes read-only, and translates propagation', async () => {
      const c: V1PodContainer = {
        name: 'app',
        volumeMounts: [
          { name: 'data', mountPath: '/data' },
          { name: 'data', mountPath: '/ro', readOnly: true, mountPropagation: 'HostToContainer' },
          { name: 'config', mountPath: '/etc/app', mountPropagation: 'None' },
          { name: 'data', mountPath: '/shared', mountPropagation: 'Bidirectional' },
        ],
      };
      const pod = basePod(volumes, [c]);
      await vm.setUp(pod);
      const mounts = await vm.mountsFor(pod, c, { attempt: 3 });
      const data = dirOf('kubernetes.io~empty-dir', 'data');
      const tlog = join(root, 'pod-uid-1', 'containers', 'app', '3');
      expect(mounts).to.deep.equal([
        { containerPath: '/data', hostPath: data, readonly: false, selinuxRelabel: false, propagation: 'PROPAGATION_PRIVATE' },
        { containerPath: '/ro', hostPath: data, readonly: true, selinuxRelabel: false, propagation: 'PROPAGATION_HOST_TO_CONTAINER' },
        { containerPath: '/etc/app', hostPath: dirOf('kubernetes.io~configmap', 'config'), readonly: true, selinuxRelabel: false, propagation: 'PROPAGATION_PRIVATE' },
        { containerPath: '/shared', hostPath: data, readonly: false, selinuxRelabel: false, propagation: 'PROPAGATION_BIDIRECTIONAL' },
        { containerPath: '/dev/termination-log', hostPath: tlog, selinuxRelabel: false },
      ]);
      expect(await mode(tlog)).to.equal(0o666);
      expect(vm.terminationMessageFile('pod-uid-1', 'app', 3)).to.equal(tlog);
    });

    it('resolves subPath and subPathExpr inside the volume, creating missing directories', async () => {
      const c: V1PodContainer = {
        name: 'app',
        terminationMessagePath: '',
        volumeMounts: [
          { name: 'data', mountPath: '/a', subPath: 'x/y' },
          { name: 'data', mountPath: '/b', subPathExpr: 'logs/$(POD_NAME)' },
          { name: 'config', mountPath: '/etc/app.conf', subPath: 'app.conf' },
        ],
      };
      const pod = basePod(volumes, [c]);
      await vm.setUp(pod);
      const mounts = await vm.mountsFor(pod, c, { envs: [{ key: 'POD_NAME', value: 'web-0' }] });
      const data = await realpath(dirOf('kubernetes.io~empty-dir', 'data'));
      expect(mounts.map((m) => m.hostPath).slice(0, 2)).to.deep.equal([join(data, 'x/y'), join(data, 'logs/web-0')]);
      expect(await mode(join(data, 'x/y'))).to.equal(0o777);
      expect(await readFile(mounts[2]!.hostPath, 'utf8')).to.equal('port=80\n');
      expect(mounts).to.have.length(3);
    });

    const bad: [string, Partial<V1PodContainer['volumeMounts'] extends readonly (infer M)[] | undefined ? M : never>, string][] = [
      ['a .. subPath', { subPath: 'x/../../etc' }, "unable to provision SubPath `x/../../etc`: must not contain '..'"],
      ['an absolute subPath', { subPath: '/etc' }, 'error SubPath `/etc` must not be an absolute path'],
      ['a symlink out of the volume', { subPath: 'escape/passwd' }, 'failed to prepare subPath for volumeMount "data" of container "app"'],
      ['an unset subPathExpr variable', { subPathExpr: '$(NOPE)' }, 'missing value for NOPE'],
      ['an unknown propagation', { mountPropagation: 'Sideways' }, 'invalid MountPropagation mode: "Sideways"'],
      ['a volume that is not set up', { name: 'nope' }, 'cannot find volume "nope" to mount into container "app"'],
    ];
    for (const [what, extra, message] of bad) {
      it(`refuses ${what}`, async () => {
        const c: V1PodContainer = { name: 'app', volumeMounts: [{ name: 'data', mountPath: '/m', ...extra }] };
        const pod = basePod(volumes, [c]);
        await vm.setUp(pod);
        await symlink('/etc', join(dirOf('kubernetes.io~empty-dir', 'data'), 'escape'));
        const err = await vm.mountsFor(pod, c).then(() => undefined, (e: unknown) => e);
        expect(err).to.be.instanceOf(ContainerConfigError);
        expect((err as Error).message).to.equal(message);
      });
    }

    it('mounts the managed /etc/hosts once written, unless the container mounts its own', async () => {
      const pod: V1PodObject = {
        ...basePod(volumes),
        spec: { ...basePod(volumes).spec, hostname: 'web', subdomain: 'db', hostAliases: [{ ip: '10.9.0.1', hostnames: ['foo.local', 'bar.local'] }] },
      };
      await vm.setUp(pod);
      const c: V1PodContainer = { name: 'app', terminationMessagePath: '' };
      expect(await vm.mountsFor(pod, c)).to.deep.equal([]);
      const file = await vm.writeEtcHosts(pod, ['10.1.0.5', 'fd00::5']);
      expect(file).to.equal(join(root, 'pod-uid-1', 'etc-hosts'));
      expect(await readFile(file, 'utf8')).to.equal(
        '# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n' +
          '10.1.0.5\tweb.db.shop.svc.cluster.local\tweb\nfd00::5\tweb.db.shop.svc.cluster.local\tweb\n\n# Entries added by HostAliases.\n10.9.0.1\tfoo.local\tbar.local\n',
      );
      expect(await mode(file)).to.equal(0o644);
      expect(await vm.mountsFor(pod, c)).to.deep.equal([{ containerPath: '/etc/hosts', hostPath: file, readonly: false, selinuxRelabel: true }]);
      const own: V1PodContainer = { name: 'app', terminationMessagePath: '', volumeMounts: [{ name: 'data', mountPath: '/etc/hosts', subPath: 'hosts' }] };
      expect((await vm.mountsFor(pod, own)).map((m) => m.containerPath)).to.deep.equal(['/etc/hosts']);
    });

    it('writes the hosts file of a pod without subdomain, and copies the node file for hostNetwork', async () => {
      const plain = basePod([]);
      expect((await readFile(await vm.writeEtcHosts(plain, ['10.1.0.7']), 'utf8')).split('\n').slice(-2)).to.deep.equal(['10.1.0.7\tweb-0', '']);
      const nodeHosts = join(root, 'node-hosts');
      await writeFile(nodeHosts, '127.0.0.1 localhost\n192.168.1.2 node-a\n');
      const vm2 = new VolumeManager({ root: join(root, 'pods2'), sources, mounter, nodeHostsFile: nodeHosts });
      const hostNet: V1PodObject = { ...plain, spec: { ...plain.spec, hostNetwork: true, hostAliases: [{ ip: '1.2.3.4', hostnames: ['x'] }] } };
      expect(await readFile(await vm2.writeEtcHosts(hostNet, []), 'utf8')).to.equal(
        '# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n192.168.1.2 node-a\n\n# Entries added by HostAliases.\n1.2.3.4\tx\n',
      );
    });
  });

  it('tears a pod down (unmounting its tmpfs volumes) and is idempotent', async () => {
    const pod = basePod([{ name: 's', secret: { secretName: 'creds' } }, { name: 'd', emptyDir: {} }]);
    await vm.setUp(pod);
    await vm.writeEtcHosts(pod, ['10.1.0.5']);
    expect(mounter.table).to.have.length(1);
    await vm.tearDown('pod-uid-1');
    expect(mounter.table).to.deep.equal([]);
    expect(await readdir(root)).to.deep.equal([]);
    await vm.tearDown('pod-uid-1');
    const err = await vm.mountsFor(pod, { name: 'app', volumeMounts: [{ name: 'd', mountPath: '/d' }] }).then(() => undefined, (e: unknown) => e);
    expect((err as Error).message).to.equal('cannot find volume "d" to mount into container "app"');
  });

  it('refuses to delete a pod directory through a mount it cannot remove', async () => {
    const pod = basePod([{ name: 'd', emptyDir: {} }]);
    await vm.setUp(pod);
    const stuck = join(dirOf('kubernetes.io~empty-dir', 'd'), 'bind');
    await mkdir(stuck);
    await writeFile(join(stuck, 'precious'), 'x');
    mounter.table.push({ mountPoint: stuck, fsType: 'none', source: '/host', options: 'rw', superOptions: '' });
    mounter.unmount = async () => {
      throw new Error('target is busy');
    };
    const err = await vm.tearDown('pod-uid-1').then(() => undefined, (e: unknown) => e);
    expect((err as Error).message).to.contain('target is busy');
    expect(await readFile(join(stuck, 'precious'), 'utf8')).to.equal('x');
  });

  it('cleans up orphaned pod directories, also after a restart', async () => {
    await vm.setUp(basePod([{ name: 's', secret: { secretName: 'creds' } }], undefined, 'gone-1'));
    await vm.setUp(basePod([{ name: 'd', emptyDir: {} }], undefined, 'kept-1'));
    await mkdir(join(root, 'gone-2', 'volumes'), { recursive: true });
    const restarted = new VolumeManager({ root, sources, mounter, clock });
    expect((await restarted.cleanupOrphans(['kept-1'])).sort()).to.deep.equal(['gone-1', 'gone-2']);
    expect(await readdir(root)).to.deep.equal(['kept-1']);
    expect(mounter.table).to.deep.equal([]);
    expect(await restarted.cleanupOrphans(['kept-1'])).to.deep.equal([]);
  });

  it('uses a registered plugin (the shape a CSI plugin takes)', async () => {
    const published: string[] = [];
    const csi: VolumePlugin = {
      name: 'kubernetes.io/csi',
      requiresRemount: false,
      canSupport: (v) => v.persistentVolumeClaim !== undefined,
      readOnly: (v) => v.persistentVolumeClaim?.readOnly === true,
      async setUp(_ctx: VolumeContext, _v: V1Volume, dir: string) {
        await mkdir(dir, { recursive: true });
        published.push(dir);
        return { path: dir };
      },
      async tearDown(_ctx, dir) {
        published.splice(published.indexOf(dir), 1);
        await rm(dir, { recursive: true, force: true });
      },
    };
    vm.registerPlugin(csi);
    expect(() => vm.registerPlugin(csi)).to.throw('already registered');
    const c: V1PodContainer = { name: 'app', terminationMessagePath: '', volumeMounts: [{ name: 'pv', mountPath: '/pv' }] };
    const pod = basePod([{ name: 'pv', persistentVolumeClaim: { claimName: 'data', readOnly: true } }], [c]);
    await vm.setUp(pod);
    const dir = dirOf('kubernetes.io~csi', 'pv');
    expect(published).to.deep.equal([dir]);
    expect(await vm.mountsFor(pod, c)).to.deep.equal([{ containerPath: '/pv', hostPath: dir, readonly: true, selinuxRelabel: false, propagation: 'PROPAGATION_PRIVATE' }]);
    await vm.tearDown('pod-uid-1');
    expect(published).to.deep.equal([]);
  });

  it('sizes memory volumes as the kubelet does', () => {
    const pod = (limits: (string | undefined)[], init: (string | undefined)[] = []): V1PodObject => ({
      metadata: {},
      spec: {
        containers: limits.map((l, i) => ({ name: `c${i}`, ...(l ? { resources: { limits: { memory: l } } } : {}) })),
        initContainers: init.map((l, i) => ({ name: `i${i}`, ...(l ? { resources: { limits: { memory: l } } } : {}) })),
      },
    });
    const Mi = 1024 * 1024;
    expect(memoryVolumeSize(pod(['64Mi', '32Mi']), undefined, { memory: '1Gi' })).to.equal(96 * Mi);
    expect(memoryVolumeSize(pod(['64Mi', undefined]), undefined, { memory: '1Gi' })).to.equal(1024 * Mi);
    expect(memoryVolumeSize(pod(['64Mi'], ['128Mi']), undefined, { memory: '1Gi' })).to.equal(128 * Mi);
    expect(memoryVolumeSize(pod(['64Mi']), '16Mi', { memory: '1Gi' })).to.equal(16 * Mi);
    expect(memoryVolumeSize(pod(['64Mi']), '2Gi', { memory: '1Gi' })).to.equal(64 * Mi);
    expect(memoryVolumeSize(pod([undefined]), '10Mi', undefined)).to.equal(10 * Mi);
    expect(memoryVolumeSize(pod([undefined]), undefined, undefined)).to.equal(undefined);
  });
});

describe('agent volumes: tmpfs (root)', function () {
  let root: string;
  const mounter = new SystemMounter();
  before(function () {
    if (!isRoot) {
      // tmpfs mounts need CAP_SYS_ADMIN; CI runs as root, so these run there.
      this.skip();
    }
  });
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'kubernel-tmpfs-'));
  });
  afterEach(() => scrub(root));

  const tmpfsAt = async (dir: string): Promise<string | undefined> => {
    const mi = parseMountInfo(await readFile('/proc/self/mountinfo', 'utf8'));
    return mi.find((m) => m.mountPoint === dir && m.fsType === 'tmpfs')?.superOptions;
  };

  it('mounts emptyDir Memory with its sizeLimit and a secret volume on tmpfs, and unmounts them at teardown', async () => {
    const sources = new FakeSources();
    sources.secrets.set('shop/creds', { data: { pass: b64('s3cret') } });
    const vm = new VolumeManager({ root, sources, mounter });
    const pod = basePod([{ name: 'mem', emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } }, { name: 's', secret: { secretName: 'creds' } }]);
    await vm.setUp(pod);
    await vm.setUp(pod, { force: true });
    const mem = join(root, 'pod-uid-1/volumes/kubernetes.io~empty-dir/mem');
    const sec = join(root, 'pod-uid-1/volumes/kubernetes.io~secret/s');
    expect(await tmpfsAt(mem)).to.match(/(^|,)size=65536k(,|$)/);
    expect(await tmpfsAt(sec)).to.be.a('string');
    expect((await mountsUnder(mounter, root)).length).to.equal(2); // not mounted twice
    expect(await readFile(join(sec, 'pass'), 'utf8')).to.equal('s3cret');
    await writeFile(join(mem, 'f'), 'x');
    await vm.tearDown('pod-uid-1');
    expect(await tmpfsAt(mem)).to.equal(undefined);
    expect(await tmpfsAt(sec)).to.equal(undefined);
    expect(await readdir(root)).to.deep.equal([]);
  });

  it('unmounts the tmpfs volumes of orphaned pods after a restart', async () => {
    const sources = new FakeSources();
    await new VolumeManager({ root, sources, mounter }).setUp(basePod([{ name: 'mem', emptyDir: { medium: 'Memory' } }], undefined, 'orphan'));
    const mem = join(root, 'orphan/volumes/kubernetes.io~empty-dir/mem');
    expect(await tmpfsAt(mem)).to.be.a('string');
    expect(await new VolumeManager({ root, sources, mounter }).cleanupOrphans([])).to.deep.equal(['orphan']);
    expect(await tmpfsAt(mem)).to.equal(undefined);
    await lstat(root);
    expect(await readdir(root)).to.deep.equal([]);
  });
});

describe('agent volumes: apiVolumeSources', () => {
  const requests: TransportRequest[] = [];
  const transport: ApiTransport = {
    async request(req) {
      requests.push(req);
      const json = (status: number, body: unknown) => ({ status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (req.path === '/api/v1/namespaces/shop/configmaps/cfg') return json(200, { metadata: { name: 'cfg' }, data: { a: '1' } });
      if (req.path === '/api/v1/namespaces/shop/services') return json(200, { items: [{ metadata: { name: 'db' } }], metadata: {} });
      if (req.path === '/api/v1/namespaces/shop/serviceaccounts/builder/token') {
        return json(201, { spec: { expirationSeconds: 3607 }, status: { token: 'jwt', expirationTimestamp: '2026-11-26T11:00:07Z' } });
      }
      return json(404, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404, message: 'configmaps "x" not found' });
    },
    watch() {
      throw new Error('no watches');
    },
  };
  const api = new ApiClient({ server: 'https://test.invalid', transport });
  after(() => api.close());

  it('reads objects, maps 404s to the kubelet wording, and requests bound tokens', async () => {
    const src = apiVolumeSources(api);
    expect((await src.getConfigMap('shop', 'cfg')).data).to.deep.equal({ a: '1' });
    const err = await src.getSecret('shop', 'nope').then(() => undefined, (e: unknown) => e);
    expect(err).to.be.instanceOf(ObjectNotFoundError);
    expect((err as Error).message).to.equal('secret "nope" not found');
    expect((await src.listServices('shop')).map((s) => s.metadata.name)).to.deep.equal(['db']);
    expect(await src.requestServiceAccountToken('shop', 'builder', { audiences: ['vault'], expirationSeconds: 3600, podName: 'web-0', podUid: 'u1' })).to.deep.equal({
      token: 'jwt',
      expirationTimestamp: '2026-11-26T11:00:07Z',
      expirationSeconds: 3607,
    });
    const tr = requests.find((r) => r.path.endsWith('/token'))!;
    expect(tr.method).to.equal('POST');
    expect(JSON.parse(tr.body!)).to.deep.equal({
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { audiences: ['vault'], expirationSeconds: 3600, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: 'web-0', uid: 'u1' } },
    });
  });
});
