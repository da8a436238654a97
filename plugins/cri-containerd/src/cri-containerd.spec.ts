/**
 * Unit specs of cri-containerd: the tar writer, the local images, the generated containerd and CNI
 * config, the SDK ↔ wire mapping and the error mapping. No containerd needed (the real one is
 * exercised in containerd.spec.ts).
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { compileConfigSchema, isContainerRuntime, isRuntimeError, RuntimeError } from '@kubernel/sdk';
import plugins, {
  archiveName,
  BUSYBOX_IMAGE,
  buildBusyboxImage,
  buildPauseImage,
  busyboxApplets,
  CONTAINERD_IMAGE_NAME_ANNOTATION,
  containerdLayout,
  ContainerdRuntime,
  criContainerdPlugin,
  grpcTarget,
  PAUSE_IMAGE,
  renderCniTemplate,
  renderContainerdConfig,
  toRuntimeError,
  writeTar,
} from './index.js';
import { wireContainerConfig, wirePodSandboxConfig } from './client.js';
import { criMethod, IMAGE_SERVICE, RUNTIME_SERVICE } from './proto.js';

const run = promisify(execFile);
const hasBusybox = existsSync('/bin/busybox');

describe('cri-containerd (unit)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kubernel-cri-containerd-unit-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is the package default export, with a frozen definition', () => {
    expect(plugins.map((p) => p.id)).to.deep.equal(['cri-containerd']);
    expect(Object.isFrozen(criContainerdPlugin)).to.equal(true);
  });

  it('fills config defaults and refuses bad values', () => {
    const validate = compileConfigSchema(criContainerdPlugin.configSchema, 'cri-containerd');
    const ok = validate({});
    expect(ok.ok).to.equal(true);
    if (ok.ok) {
      expect(ok.config).to.not.have.any.keys('root', 'stateDir');
      expect(ok.config).to.include({ bridgeName: 'kubernel0', sandboxImage: PAUSE_IMAGE, importImages: true, cniBinDir: '/usr/lib/cni' });
    }
    const bad = (config: unknown, path: string): void => {
      const r = validate(config);
      expect(r.ok, JSON.stringify(config)).to.equal(false);
      if (!r.ok) expect(r.problems.map((p) => p.path)).to.include(path);
    };
    bad({ bridgeName: 'a-bridge-name-longer-than-15' }, '/bridgeName');
    bad({ root: 'relative/dir' }, '/root');
    bad({ podCidr: '10.0.0.0' }, '/podCidr');
    bad({ endpoint: 'tcp://1.2.3.4:1' }, '/endpoint');
    bad({ logLevel: 'loud' }, '/logLevel');
  });

  describe('tar writer', () => {
    it('writes archives that tar lists with modes, links and long paths, byte-identical each time', async function () {
      const long = `${'d'.repeat(90)}/${'f'.repeat(60)}`;
      const entries = [
        { type: 'dir', path: 'bin' },
        { type: 'file', path: 'bin/tool', data: Buffer.from('#!/bin/sh\necho hi\n'), mode: 0o755 },
        { type: 'symlink', path: 'bin/alias', target: '/bin/tool' },
        { type: 'dir', path: 'tmp', mode: 0o1777 },
        { type: 'file', path: long, data: Buffer.alloc(1000, 7) },
      ] as const;
      const a = writeTar(entries);
      expect(a.equals(writeTar(entries))).to.equal(true);
      expect(a.length % 512).to.equal(0);
      const file = join(dir, 'x.tar');
      writeFileSync(file, a);
      const { stdout } = await run('tar', ['-tvf', file]);
      const lines = stdout.trim().split('\n');
      expect(lines[0]).to.match(/^drwxr-xr-x root\/root\s+0 1970-01-01 00:00 bin\/$/);
      expect(lines[1]).to.match(/^-rwxr-xr-x root\/root\s+18 .* bin\/tool$/);
      expect(lines[2]).to.match(/^lrwxrwxrwx .* bin\/alias -> \/bin\/tool$/);
      expect(lines[3]).to.match(/^drwxrwxrwt .* tmp\/$/);
      expect(lines[4]).to.match(new RegExp(`^-rw-r--r-- root/root\\s+1000 .* ${long}$`));
      await run('tar', ['-xf', file, '-C', dir]);
      expect(readFileSync(join(dir, 'bin/tool'), 'utf8')).to.equal('#!/bin/sh\necho hi\n');
      expect(readFileSync(join(dir, long)).equals(Buffer.alloc(1000, 7))).to.equal(true);
    });

    it('refuses a link target that does not fit ustar', () => {
      expect(() => writeTar([{ type: 'symlink', path: 'x', target: 'y'.repeat(101) }])).to.throw(RangeError);
    });
  });

  describe('local images', function () {
    before(function () {
      if (!hasBusybox) this.skip(); // busybox-static is not installed: nothing to build from
    });

    it('lists the busybox applets, with sh', async () => {
      const applets = await busyboxApplets();
      expect(applets).to.include('bin/sh');
      expect(applets).to.not.include('bin/busybox');
      expect(applets.length).to.be.greaterThan(100);
    });

    it('builds a deterministic OCI archive named by the containerd annotation', async () => {
      const a = await buildBusyboxImage(join(dir, 'a.tar'), { name: BUSYBOX_IMAGE });
      const b = await buildBusyboxImage(join(dir, 'b.tar'), { name: BUSYBOX_IMAGE });
      expect(readFileSync(a.file).equals(readFileSync(b.file))).to.equal(true);
      expect(a.id).to.match(/^sha256:[0-9a-f]{64}$/);
      const pause = await buildPauseImage(join(dir, 'p.tar'));
      expect(pause.layerDigest).to.equal(a.layerDigest); // same root filesystem
      expect(pause.id).to.not.equal(a.id); // another config
      const out = join(dir, 'unpacked');
      mkdirSync(out);
      await run('tar', ['-xf', a.file, '-C', out]);
      const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations: Record<string, string> }> };
      expect(index.manifests).to.have.length(1);
      expect(index.manifests[0]!.digest).to.equal(a.manifestDigest);
      expect(index.manifests[0]!.annotations[CONTAINERD_IMAGE_NAME_ANNOTATION]).to.equal(BUSYBOX_IMAGE);
      expect(JSON.parse(readFileSync(join(out, 'oci-layout'), 'utf8'))).to.deep.equal({ imageLayoutVersion: '1.0.0' });
      const blob = (d: string): Buffer => readFileSync(join(out, 'blobs/sha256', d.slice(7)));
      const config = JSON.parse(blob(a.id).toString('utf8')) as { architecture: string; os: string; config: { Cmd: string[] }; rootfs: { diff_ids: string[] } };
      expect(config).to.deep.include({ architecture: 'amd64', os: 'linux' });
      expect(config.config.Cmd).to.deep.equal(['sh']);
      expect(config.rootfs.diff_ids).to.deep.equal([a.layerDigest]);
      const pauseOut = join(dir, 'pause-unpacked');
      mkdirSync(pauseOut);
      await run('tar', ['-xf', pause.file, '-C', pauseOut]);
      const pauseConfig = JSON.parse(readFileSync(join(pauseOut, 'blobs/sha256', pause.id.slice(7)), 'utf8')) as { config: { Entrypoint: string[]; Cmd?: string[] } };
      expect(pauseConfig.config.Entrypoint).to.deep.equal(['/bin/sleep', 'infinity']);
      expect(pauseConfig.config.Cmd).to.equal(undefined);
      const layer = join(dir, 'layer.tar');
      writeFileSync(layer, blob(a.layerDigest));
      const { stdout } = await run('tar', ['-tvf', layer], { maxBuffer: 4 << 20 });
      expect(stdout).to.match(/^-rwxr-xr-x root\/root\s+\d+ .* bin\/busybox$/m);
      expect(stdout).to.match(/ bin\/sh -> \/bin\/busybox$/m);
      expect(stdout).to.match(/ usr\/sbin\/httpd -> \/bin\/busybox$/m);
      expect(stdout).to.match(/ etc\/passwd$/m);
      expect(stdout).to.match(/^drwxrwxrwt .* tmp\/$/m);
      expect(stdout).to.match(/ var\/www\/index\.html$/m);
    });

    it('names archive files after the image', () => {
      expect(archiveName('docker.io/kubernel/busybox:1.35')).to.equal('docker.io_kubernel_busybox_1.35.tar');
    });
  });

  describe('generated config', () => {
    const layout = containerdLayout('/r', '/s');

    it('gives containerd its own root, state, sockets, runc root and CNI dirs', () => {
      const toml = renderContainerdConfig(layout, { sandboxImage: PAUSE_IMAGE, cniBinDir: '/usr/lib/cni', streamServerPort: 12345, logLevel: 'info' });
      for (const line of [
        'version = 2',
        'root = "/r/containerd"',
        'state = "/s"',
        '  address = "/s/containerd.sock"',
        '  address = "/s/containerd.sock.ttrpc"',
        `  sandbox_image = "${PAUSE_IMAGE}"`,
        '  restrict_oom_score_adj = true',
        '  stream_server_address = "127.0.0.1"',
        '  stream_server_port = "12345"',
        '        Root = "/s/runc"',
        '        SystemdCgroup = false',
        '    bin_dir = "/usr/lib/cni"',
        '    conf_dir = "/r/cni/net.d"',
        '    conf_template = "/r/cni/template.conflist"',
      ]) {
        expect(toml.split('\n'), line).to.include(line);
      }
      expect(toml).to.match(/disabled_plugins = \[.*"io\.containerd\.snapshotter\.v1\.btrfs".*\]/);
    });

    it('renders a bridge + portmap conflist template with the pod CIDR placeholder', () => {
      const t = JSON.parse(renderCniTemplate('kbtest0', '/r/cni/networks')) as { cniVersion: string; name: string; plugins: Array<Record<string, unknown>> };
      expect(t.cniVersion).to.equal('1.0.0');
      expect(t.name).to.equal('kbtest0');
      expect(t.plugins.map((p) => p.type)).to.deep.equal(['bridge', 'portmap']);
      expect(t.plugins[0]).to.deep.include({ bridge: 'kbtest0', isGateway: true, ipMasq: true, hairpinMode: true });
      expect(t.plugins[0]!.ipam).to.deep.equal({ type: 'host-local', dataDir: '/r/cni/networks', ranges: [[{ subnet: '{{.PodCIDR}}' }]], routes: [{ dst: '0.0.0.0/0' }] });
      expect(t.plugins[1]).to.deep.include({ capabilities: { portMappings: true } });
    });
  });

  describe('wire mapping', () => {
    it('loads every CRI method the client calls from the proto', () => {
      for (const m of ['Version', 'Status', 'UpdateRuntimeConfig', 'RunPodSandbox', 'StopPodSandbox', 'RemovePodSandbox', 'PodSandboxStatus', 'ListPodSandbox', 'CreateContainer', 'StartContainer', 'StopContainer', 'RemoveContainer', 'ListContainers', 'ContainerStatus', 'UpdateContainerResources', 'ReopenContainerLog', 'ExecSync', 'Exec', 'Attach', 'PortForward', 'ContainerStats', 'ListContainerStats']) {
        expect(criMethod(RUNTIME_SERVICE, m).path).to.equal(`/runtime.v1.RuntimeService/${m}`);
      }
      for (const m of ['ListImages', 'ImageStatus', 'PullImage', 'RemoveImage', 'ImageFsInfo']) {
        expect(criMethod(IMAGE_SERVICE, m).path).to.equal(`/runtime.v1.ImageService/${m}`);
      }
    });

    it('encodes a sandbox config with CRI field numbers (wrappers, enums, maps) and decodes it back', () => {
      const wire = wirePodSandboxConfig({
        metadata: { name: 'p', uid: 'u', namespace: 'ns' },
        portMappings: [{ containerPort: 80, hostPort: 8080 }],
        labels: { a: 'b' },
        linux: { cgroupParent: '/kubepods/podu', securityContext: { runAsUser: 1000, namespaceOptions: { network: 'NODE' } } },
      });
      // Round-trip through protobuf bytes with the request type's own deserializer.
      const m = criMethod(RUNTIME_SERVICE, 'RunPodSandbox') as unknown as { requestSerialize(v: object): Buffer; requestDeserialize(b: Buffer): { config: Record<string, unknown>; runtimeHandler: string } };
      const back = m.requestDeserialize(m.requestSerialize({ config: wire, runtimeHandler: 'runc' }));
      expect(back.runtimeHandler).to.equal('runc');
      expect(back.config).to.deep.include({ hostname: '', labels: { a: 'b' } });
      expect(back.config.metadata).to.deep.equal({ name: 'p', uid: 'u', namespace: 'ns', attempt: 0 });
      expect(back.config.portMappings).to.deep.equal([{ protocol: 'TCP', containerPort: 80, hostPort: 8080, hostIp: '' }]);
      const linux = back.config.linux as { cgroupParent: string; securityContext: { runAsUser: { value: number }; namespaceOptions: { network: string; pid: string } } };
      expect(linux.cgroupParent).to.equal('/kubepods/podu');
      expect(linux.securityContext.runAsUser).to.deep.equal({ value: 1000 });
      expect(linux.securityContext.namespaceOptions).to.deep.include({ network: 'NODE', pid: 'POD' });
    });

    it('encodes container resources as int64 fields', () => {
      const wire = wireContainerConfig({ metadata: { name: 'c' }, image: { image: 'busybox' }, linux: { resources: { memoryLimitInBytes: 32 * 1024 * 1024, cpuShares: 512 } } });
      const m = criMethod(RUNTIME_SERVICE, 'CreateContainer') as unknown as { requestSerialize(v: object): Buffer; requestDeserialize(b: Buffer): { config: { linux: { resources: Record<string, unknown> } } } };
      const back = m.requestDeserialize(m.requestSerialize({ podSandboxId: 'x', config: wire }));
      expect(back.config.linux.resources).to.deep.include({ memoryLimitInBytes: 33554432, cpuShares: 512, cpuQuota: 0 });
    });

    it('maps gRPC codes to RuntimeError codes', () => {
      const e = (code: number): string => toRuntimeError('X', Object.assign(new Error('boom'), { code, details: 'boom' })).code;
      expect([5, 6, 3, 9, 14, 4, 12, 2, 13, 1].map(e)).to.deep.equal(['NotFound', 'AlreadyExists', 'InvalidArgument', 'FailedPrecondition', 'Unavailable', 'DeadlineExceeded', 'Unimplemented', 'Unknown', 'Unknown', 'Unknown']);
      expect(toRuntimeError('Version', { code: 5, details: 'gone' }).message).to.equal('Version: gone');
    });

    it('normalizes endpoints to unix targets and refuses others', () => {
      expect(grpcTarget('/run/x.sock')).to.equal('unix:///run/x.sock');
      expect(grpcTarget('unix:///run/x.sock')).to.equal('unix:///run/x.sock');
      expect(() => grpcTarget('tcp://1.2.3.4')).to.throw(RuntimeError);
    });

    it('answers Unavailable when nothing listens, and after close', async () => {
      const rt = new ContainerdRuntime({ endpoint: join(dir, 'nothing.sock'), timeouts: { short: 2_000 } });
      expect(isContainerRuntime(rt)).to.equal(true);
      try {
        const err = await rt.version().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(isRuntimeError(err, 'Unavailable') || isRuntimeError(err, 'DeadlineExceeded'), String(err)).to.equal(true);
      } finally {
        await rt.close();
      }
      const after = await rt.status().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isRuntimeError(after, 'Unavailable')).to.equal(true);
    });

    it('reports RuntimeReady and NetworkReady false while its availability hook says so', async () => {
      const rt = new ContainerdRuntime({ endpoint: join(dir, 'nothing.sock'), availability: () => ({ reason: 'ContainerdRestarting', message: 'down' }) });
      try {
        const { status } = await rt.status();
        expect(status.conditions).to.deep.equal([
          { type: 'RuntimeReady', status: false, reason: 'ContainerdRestarting', message: 'down' },
          { type: 'NetworkReady', status: false, reason: 'ContainerdRestarting', message: 'down' },
        ]);
      } finally {
        await rt.close();
      }
    });
  });
});
