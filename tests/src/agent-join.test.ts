import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { KUBERNEL_BIN, ROOT } from './helpers/paths.js';
import { start, type Started } from './helpers/processes.js';
import { until } from './helpers/wait.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

/**
 * `kubernel agent --server URL --token T` as a separate process: TLS bootstrap with a bootstrap
 * token (CSR approved and signed by the controllers), then the node registers and runs pods. The
 * agent's distribution uses the in-memory cri-fake runtime, so no containerd is needed here (the
 * real runtime is exercised by node-containerd.test.ts).
 */
describe('kubernel agent joins a cluster with a bootstrap token', function () {
  this.timeout(90_000);
  const NODE = 'joined-1';
  const TOKEN_ID = 'abcdef';
  const TOKEN = `${TOKEN_ID}.0123456789abcdef`;
  /** The agent's own cgroup root (it makes the QoS cgroups even for the fake runtime's pods). */
  const CGROUP_ROOT = `kubernel-test-join-${process.pid}`;
  let c: TestCluster;
  let dir: string;
  let agent: Started | undefined;

  const startAgent = (): Started =>
    start(process.execPath, [
      KUBERNEL_BIN, 'agent', '--data-dir', join(dir, 'node'), '--distribution', join(dir, 'agent.yaml'), '--healthz-bind-address', '127.0.0.1:0',
      '--server', c.url, '--token', TOKEN, '--certificate-authority', join(c.dataDir, 'pki', 'ca.crt'), '--hostname-override', NODE, '--node-ip', '127.0.0.1',
      '--cgroup-root', CGROUP_ROOT, '--kubelet-port', '0',
    ]);

  before(async () => {
    c = await startCluster();
    dir = mkdtempSync(join(tmpdir(), 'kubernel-join-'));
    writeFileSync(join(dir, 'agent.yaml'), [
      'apiVersion: kubernel.io/v1alpha1', 'kind: Distribution', 'metadata: { name: join-test }', 'spec:', '  roles:', '    server: { plugins: [] }', '    agent:', '      plugins:',
      `        - { id: cri-fake, package: "${join(ROOT, 'plugins', 'cri-fake')}" }`, '',
    ].join('\n'));
    const expiration = new Date(Date.now() + 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z');
    await c.ok(['apply', '-f', '-'], `
apiVersion: v1
kind: Secret
metadata: { name: bootstrap-token-${TOKEN_ID}, namespace: kube-system }
type: bootstrap.kubernetes.io/token
stringData:
  token-id: ${TOKEN_ID}
  token-secret: 0123456789abcdef
  expiration: ${expiration}
  usage-bootstrap-authentication: "true"
`);
  });

  after(async () => {
    // The pods go first, so the agent tears their volumes down (secret volumes are tmpfs mounts).
    if (agent && agent.child.exitCode === null) {
      await c.kubectl(['delete', 'deployment', 'joined', '--wait=false']);
      await until(async () => (await c.kubectl(['get', 'pods', '-l', 'app=joined', '-o', 'name'])).stdout.trim() === '', 30_000, 'joined pods gone').catch(() => undefined);
    }
    if (agent && agent.child.exitCode === null) {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
    await c?.stop();
    if (dir) {
      // Whatever a failed run left mounted under the node's data dir.
      try {
        execFileSync('sh', ['-c', `grep -o ' ${dir}[^ ]*' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`]);
      } catch {
        // nothing mounted
      }
      rmSync(dir, { recursive: true, force: true });
    }
    try {
      execFileSync('sh', ['-c', `find /sys/fs/cgroup/*/${CGROUP_ROOT} -depth -type d -exec rmdir {} + 2>/dev/null; true`]);
    } catch {
      // no cgroups (not root)
    }
  });

  it('gets node credentials through an approved CSR, registers Ready and runs pods', async () => {
    agent = startAgent();
    await agent.waitFor(/node credentials for system:node:joined-1 \(issued through CSR (node-csr-\S+);/, 30_000);
    await agent.waitFor(/ready; health at/, 30_000);
    const csrs = (JSON.parse(await c.ok(['get', 'csr', '-o', 'json'])) as Json).items as Json[];
    const csr = csrs.find((x) => x.spec.username === `system:bootstrap:${TOKEN_ID}`);
    expect(csr, 'the node CSR').to.not.equal(undefined);
    expect(csr!.spec.signerName).to.equal('kubernetes.io/kube-apiserver-client-kubelet');
    expect((csr!.status.conditions as Json[]).map((x) => x.type)).to.include('Approved');
    expect(csr!.status.certificate).to.be.a('string').and.not.equal('');
    await until(async () => {
      const r = await c.kubectl(['get', 'node', NODE, '-o', 'json']);
      return r.code === 0 && ((JSON.parse(r.stdout) as Json).status?.conditions ?? []).some((x: Json) => x.type === 'Ready' && x.status === 'True');
    }, 30_000, 'joined node Ready');
    await c.ok(['create', 'deployment', 'joined', '--image=busybox:1.36', '--replicas=2']);
    await until(async () => {
      const pods = (JSON.parse(await c.ok(['get', 'pods', '-l', 'app=joined', '-o', 'json'])) as Json).items as Json[];
      return pods.length === 2 && pods.every((p) => p.spec.nodeName === NODE && p.status?.phase === 'Running');
    }, 30_000, '2 pods Running on the joined node');
  });

  it('reuses its credentials when started again (no new CSR)', async () => {
    agent!.child.kill('SIGTERM');
    await agent!.exited;
    const before = ((JSON.parse(await c.ok(['get', 'csr', '-o', 'json'])) as Json).items as Json[]).length;
    agent = startAgent();
    await agent.waitFor(/node credentials for system:node:joined-1 \(reused;/, 30_000);
    await agent.waitFor(/ready; health at/, 30_000);
    const afterCount = ((JSON.parse(await c.ok(['get', 'csr', '-o', 'json'])) as Json).items as Json[]).length;
    expect(afterCount).to.equal(before);
  });

  it('refuses to start without credentials, naming the flags', async () => {
    const p = start(process.execPath, [KUBERNEL_BIN, 'agent', '--data-dir', join(dir, 'none'), '--distribution', join(dir, 'agent.yaml'), '--healthz-bind-address', '127.0.0.1:0']);
    const done = await p.exited;
    expect(done.code).to.equal(1);
    expect(done.stderr).to.contain('--kubeconfig FILE, or --server URL with a bootstrap --token');
  });
});
