import { expect } from 'chai';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { createServer as createHttpServer, get as httpGet, type Server as HttpServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { WebSocketServer } from 'ws';
import { ApiClient, type Authenticator, type ContainerRuntime, type ExecRequest, type KubeObject } from '@kubernel/sdk';
import { createTestHost, startPlugin, type RunningPlugin, type TestHost } from '@kubernel/sdk/testing';
import { FakeContainerRuntime } from '@kubernel/plugin-cri-fake';
import { BUSYBOX_IMAGE, criContainerdPlugin, type CriContainerdConfig } from '@kubernel/plugin-cri-containerd';
// The agent's server is not in @kubernel/core's exports yet (the integrator adds it to agent/index.ts).
import { Agent, AgentServer, ApiServer, apiCodec, Channel, createLogger, dialTcp, encodeChannelFrame, exitCodeStatus, fixedChain, issueCertificate, MASTERS_AUTHORIZER, Store, SUCCESS_STATUS, type AgentServerOptions, type KeyPair } from '@kubernel/core';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { run, start, type Started } from './helpers/processes.js';
import { until } from './helpers/wait.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

/**
 * `kubectl logs`, `exec` and `port-forward` (the real kubectl 1.32) through an API server with
 * the node proxy, to an in-process agent serving the kubelet's HTTPS API (AgentServer) on a
 * hollow node (the cri-fake runtime). cri-fake runs no processes, so the test stands in for the
 * rest: a streaming server that answers exec sessions by running the command through the fake's
 * own interpreter (ExecSync), CRI log files the test writes where the fake's containers would log,
 * and a local HTTP server the agent dials for the pod's port.
 *
 * The API server kubectl talks to runs in this process, on the cluster's store (the `kubernel
 * server` process's NATS), with the kubelet-client certificate: until the CLI wires
 * `kubelet: { cert, key }` into its ApiServer, the process's own API server answers 503 for these.
 */
describe('kubectl logs, exec and port-forward through the node agent\'s server', function () {
  this.timeout(90_000);
  const NODE = 'stream-node-1';
  let c: TestCluster;
  let host: TestHost;
  let store: Store | undefined;
  let api: ApiServer | undefined;
  let agentServer: AgentServer | undefined;
  let clusterClient: ApiClient;
  let fake: FakeContainerRuntime;
  let streaming: WebSocketServer | undefined;
  let podHttp: HttpServer | undefined;
  const podSockets = new Set<Socket>();
  const stop = new AbortController();
  let running: Promise<void> | undefined;
  let work: string;
  let kubeconfig: string;
  const forwards: Started[] = [];
  /** Where each node's agent server listens (the API server's kubelet `resolve`). */
  const agentPorts = new Map<string, number>();
  /** Authorization by SubjectAccessReview against the cluster, as the integrator wires it. */
  const subjectAccessReview: AgentServerOptions['authorize'] = async (a) => {
    const review = await clusterClient.create<KubeObject>('/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: { user: a.user.username, groups: [...a.user.groups], resourceAttributes: { verb: a.verb, resource: a.resource, subresource: a.subresource, name: a.name } },
    });
    return { allowed: (review.status as { allowed?: boolean } | undefined)?.allowed === true };
  };

  const kubectl = (args: readonly string[]): ReturnType<typeof run> => run('kubectl', args, { KUBECONFIG: kubeconfig });
  const ok = async (args: readonly string[]): Promise<string> => {
    const r = await kubectl(args);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'kubernel-pod-streams-'));
    c = await startCluster();
    const pki = join(c.dataDir, 'pki');
    const ca: KeyPair = { cert: readFileSync(join(pki, 'ca.crt'), 'utf8'), key: readFileSync(join(pki, 'ca.key'), 'utf8') };
    const kubeletClient: KeyPair = { cert: readFileSync(join(pki, 'apiserver-kubelet-client.crt'), 'utf8'), key: readFileSync(join(pki, 'apiserver-kubelet-client.key'), 'utf8') };
    const serving = await issueCertificate(ca, { commonName: 'kube-apiserver', usage: 'server', sans: ['127.0.0.1', 'localhost'], validityDays: 1 });

    // The runtime: cri-fake, its exec sessions served by a stand-in streaming server, its logs in `work`.
    streaming = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: (p) => (p.has('v4.channel.k8s.io') ? 'v4.channel.k8s.io' : false) });
    await new Promise((r) => streaming!.once('listening', r));
    const streamingBase = `http://127.0.0.1:${(streaming.address() as AddressInfo).port}`;
    fake = new FakeContainerRuntime({ images: ['registry.k8s.io/pause:3.9', 'docker.io/library/busybox:1.36'], streamingBaseUrl: streamingBase });
    const sessions = new Map<string, ExecRequest>();
    streaming.on('connection', (ws, req) => {
      const session = sessions.get(`${streamingBase}${req.url ?? ''}`);
      if (!session) {
        ws.close(1011);
        return;
      }
      void fake.execSync(session.containerId, session.cmd).then(
        (r) => {
          if (r.stdout.length) ws.send(encodeChannelFrame(Channel.Stdout, Buffer.from(r.stdout)));
          if (r.stderr.length) ws.send(encodeChannelFrame(Channel.Stderr, Buffer.from(r.stderr)));
          ws.send(encodeChannelFrame(Channel.Error, JSON.stringify(r.exitCode === 0 ? SUCCESS_STATUS : exitCodeStatus(r.exitCode, session.cmd))));
          ws.close(1000);
        },
        () => ws.close(1011),
      );
    });
    const logRoot = join(work, 'logs');
    const runtime = new Proxy(fake, {
      get(target, prop) {
        if (prop === 'exec') {
          return async (request: ExecRequest) => {
            const answer = await target.exec(request);
            sessions.set(answer.url, request);
            return answer;
          };
        }
        if (prop === 'containerStatus') {
          return async (id: string, verbose?: boolean) => {
            const answer = await target.containerStatus(id, verbose);
            // `<pod log dir>/<container>/<n>.log` under the test's directory, wherever the agent puts pod logs.
            const logPath = answer.status.logPath ? join(logRoot, ...answer.status.logPath.split('/').slice(-3)) : '';
            return { ...answer, status: { ...answer.status, logPath } };
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as ContainerRuntime;

    // The pod's port: a local HTTP server stands in for the pod (the fake's pod IPs lead nowhere).
    podHttp = createHttpServer((req, res) => res.end(`hello from the pod: ${req.url}\n`));
    podHttp.on('connection', (s) => {
      podSockets.add(s);
      s.once('close', () => podSockets.delete(s));
    });
    await new Promise<void>((r) => podHttp!.listen(0, '127.0.0.1', r));
    const podPort = (podHttp.address() as AddressInfo).port;

    // The agent: its loop against the cluster, and its server (authorization by SubjectAccessReview).
    clusterClient = new ApiClient({ server: c.url, ca: c.tls.ca, cert: c.tls.cert, key: c.tls.key });
    agentServer = new AgentServer({
      runtime,
      nodeName: NODE,
      logger: createLogger({ level: 'silent' }),
      clientCa: ca.cert,
      host: '127.0.0.1',
      port: 0,
      certDir: join(work, 'agent-pki'),
      authorize: subjectAccessReview,
      dialPod: (_pod, port) => (port === 8080 ? dialTcp('127.0.0.1', podPort) : Promise.reject(new Error(`connect: connection refused (port ${port})`))),
    });
    await agentServer.start();
    agentPorts.set(NODE, agentServer.port);
    const agent = new Agent({ api: clusterClient, runtime, nodeName: NODE, logger: createLogger({ level: 'silent' }), capacity: { cpu: 4, memory: '8Gi', pods: 110 }, syncIntervalMs: 200, heartbeatIntervalMs: 2_000 });
    running = agent.run(stop.signal);

    // The API server kubectl uses: on the cluster's store, with the kubelet-client certificate.
    host = createTestHost({ logLevel: 'silent' });
    store = await Store.open({ servers: [c.natsUrl], token: readFileSync(join(c.dataDir, 'nats', 'token'), 'utf8').trim(), logger: host.logger, registry: host.registry, codec: apiCodec });
    const x509: Authenticator = { authenticate: async (r) => (r.clientCertificate ? { user: { username: r.clientCertificate.commonName, groups: [...r.clientCertificate.organizations] } } : undefined) };
    api = new ApiServer({
      store,
      logger: host.logger,
      registry: host.registry,
      port: 0,
      tls: { cert: serving.cert, key: serving.key, clientCa: ca.cert },
      chain: fixedChain({ authenticators: [x509], authorizers: [MASTERS_AUTHORIZER] }),
      // The test's nodes report no InternalIP: their agents are reached on loopback.
      kubelet: { cert: kubeletClient.cert, key: kubeletClient.key, resolve: (node) => (agentPorts.has(node.metadata.name as string) ? { host: '127.0.0.1', port: agentPorts.get(node.metadata.name as string)! } : undefined) },
    });
    await api.start();
    kubeconfig = join(work, 'kubeconfig');
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    writeFileSync(kubeconfig, JSON.stringify({
      apiVersion: 'v1', kind: 'Config', 'current-context': 'test',
      clusters: [{ name: 'test', cluster: { server: api.url, 'certificate-authority-data': b64(ca.cert) } }],
      users: [{ name: 'admin', user: { 'client-certificate-data': b64(c.tls.cert!), 'client-key-data': b64(c.tls.key!) } }],
      contexts: [{ name: 'test', context: { cluster: 'test', user: 'admin', namespace: 'default' } }],
    }));
    await until(async () => (await c.request('GET', '/api/v1/namespaces/default/serviceaccounts/default')).status === 200, 15_000, 'default service account');
  });

  after(async () => {
    for (const f of forwards) f.child.kill('SIGKILL');
    await Promise.all(forwards.map((f) => f.exited));
    stop.abort();
    await running;
    await api?.stop();
    await store?.close();
    host?.dispose();
    await agentServer?.stop();
    clusterClient?.close();
    for (const ws of streaming?.clients ?? []) ws.terminate();
    await new Promise<void>((r) => (streaming ? streaming.close(() => r()) : r()));
    for (const s of podSockets) s.destroy();
    await new Promise<void>((r) => (podHttp ? podHttp.close(() => r()) : r()));
    await fake?.close();
    await c?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  /** Creates a pod on the hollow node and waits for it to run; returns it. */
  const runningPod = async (name: string, containers: Json[], restartPolicy = 'Always'): Promise<Json> => {
    await ok(['apply', '-f', writeManifest(name, { apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { nodeName: NODE, restartPolicy, containers } })]);
    let pod: Json = {};
    await until(async () => {
      pod = JSON.parse(await ok(['get', 'pod', name, '-o', 'json'])) as Json;
      return pod.status?.phase === 'Running' && (pod.status.containerStatuses ?? []).every((s: Json) => s.state?.running);
    }, 30_000, `pod ${name} running`);
    return pod;
  };
  const writeManifest = (name: string, o: Json): string => {
    const file = join(work, `${name}.json`);
    writeFileSync(file, JSON.stringify(o));
    return file;
  };
  /** The log file the agent reads for the pod's container (instance `n`). */
  const logFile = (pod: Json, container: string, n = 0): string => {
    const file = join(work, 'logs', `${pod.metadata.namespace}_${pod.metadata.name}_${pod.metadata.uid}`, container, `${n}.log`);
    mkdirSync(dirname(file), { recursive: true });
    return file;
  };

  it('kubectl logs: the content, --tail, --timestamps; --previous when there is none; several containers need -c', async () => {
    const pod = await runningPod('logger', [{ name: 'app', image: 'busybox:1.36', command: ['sleep', '3600'] }]);
    writeFileSync(logFile(pod, 'app'), [
      '2026-11-26T03:00:00.5Z stdout F hello',
      '2026-11-26T03:00:01Z stderr F warning: something',
      '2026-11-26T03:00:02.000000123Z stdout P a long ',
      '2026-11-26T03:00:02.1Z stdout F line',
      '',
    ].join('\n'));
    expect(await ok(['logs', 'logger'])).to.equal('hello\nwarning: something\na long line\n');
    expect(await ok(['logs', 'logger', '--tail=1'])).to.equal('a long line\n');
    expect(await ok(['logs', 'logger', '--tail=2', '--timestamps'])).to.equal('2026-11-26T03:00:01Z warning: something\n2026-11-26T03:00:02.000000123Z a long line\n');
    const previous = await kubectl(['logs', 'logger', '--previous']);
    expect(previous.code).to.equal(1);
    expect(previous.stderr).to.include('previous terminated container "app" in pod "logger" not found');

    await runningPod('two', [{ name: 'a', image: 'busybox:1.36', command: ['sleep', '3600'] }, { name: 'b', image: 'busybox:1.36', command: ['sleep', '3600'] }]);
    // kubectl itself picks the first container when none is named (with a notice); the API names the choices.
    const direct = await fetchJson(api!.url, '/api/v1/namespaces/default/pods/two/log', c.tls);
    expect(direct.status).to.equal(400);
    expect(direct.body.message).to.equal('a container name must be specified for pod two, choose one of: [a b]');
    const missing = await fetchJson(api!.url, '/api/v1/namespaces/default/pods/nope/log', c.tls);
    expect([missing.status, missing.body.reason]).to.deep.equal([404, 'NotFound']);
  });

  it('kubectl logs -f streams until the container ends', async () => {
    const pod = await runningPod('follower', [{ name: 'job', image: 'busybox:1.36', command: ['sh', '-c', 'sleep 4'] }], 'Never');
    const file = logFile(pod, 'job');
    writeFileSync(file, '2026-11-26T03:00:00Z stdout F started\n');
    const follow = start('kubectl', ['logs', '-f', 'follower'], { KUBECONFIG: kubeconfig });
    forwards.push(follow);
    await follow.waitFor(/started\n/, 15_000);
    appendFileSync(file, '2026-11-26T03:00:01Z stdout F working\n');
    await follow.waitFor(/working\n/, 15_000);
    const done = await follow.exited;
    expect(done.code, done.stderr).to.equal(0);
    expect(done.stdout).to.equal('started\nworking\n');
  });

  it('kubectl exec runs the command and propagates its exit code', async () => {
    await runningPod('shell', [{ name: 'sh', image: 'busybox:1.36', command: ['sleep', '3600'] }]);
    const hi = await kubectl(['exec', 'shell', '--', 'echo', 'hi']);
    expect([hi.code, hi.stdout], hi.stderr).to.deep.equal([0, 'hi\n']);
    const three = await kubectl(['exec', 'shell', '--', 'sh', '-c', 'exit 3']);
    expect(three.code, three.stderr).to.equal(3);
    const gone = await kubectl(['exec', 'nope', '--', 'true']);
    expect(gone.code).to.equal(1);
    expect(gone.stderr).to.include('pods "nope" not found');
  });

  it('kubectl port-forward carries an HTTP request to the pod\'s port', async () => {
    await runningPod('web', [{ name: 'web', image: 'busybox:1.36', command: ['sleep', '3600'], ports: [{ containerPort: 8080 }] }]);
    const pf = start('kubectl', ['port-forward', 'pod/web', ':8080'], { KUBECONFIG: kubeconfig });
    forwards.push(pf);
    const [, localPort] = await pf.waitFor(/Forwarding from 127\.0\.0\.1:(\d+) -> 8080/, 20_000);
    const body = await new Promise<string>((resolve, reject) => {
      httpGet(`http://127.0.0.1:${localPort}/through-the-tunnel`, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => resolve(Buffer.concat(chunks).toString()));
      }).on('error', reject);
    });
    expect(body).to.equal('hello from the pod: /through-the-tunnel\n');
    // A second connection over the same session.
    const again = await new Promise<number>((resolve, reject) => httpGet(`http://127.0.0.1:${localPort}/`, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject));
    expect(again).to.equal(200);
    pf.child.kill('SIGINT');
    await pf.exited;
  });

  /*
   * The same against a real containerd (the cri-containerd plugin in managed mode): real log files,
   * containerd's own streaming server for exec (SPDY for a session with stdin, so its end reaches
   * the command; WebSocket otherwise), and port-forward dialling the pod's IP on the CNI bridge.
   * The sandbox and container are made through CRI directly, labelled as the pod workers label
   * them; the Pod and Node exist in the API (no agent loop runs them here).
   */
  const missing = containerdMissing();
  describe(missing ? `against a real containerd (not run here: ${missing})` : 'against a real containerd', function () {
    const CTR_NODE = 'stream-node-ctr';
    let tmp: string;
    let bridgeName: string;
    let config: Partial<CriContainerdConfig>;
    let plugin: RunningPlugin | undefined;
    let rt: ContainerRuntime;
    let ctrServer: AgentServer | undefined;
    const sandboxes: string[] = [];

    before(async function () {
      if (missing) this.skip();
      this.timeout(120_000);
      tmp = mkdtempSync('/tmp/kbps-');
      bridgeName = `kbs${tmp.slice(-6).toLowerCase().replace(/[^a-z0-9]/g, 'x')}`;
      config = { root: join(tmp, 'root'), stateDir: join(tmp, 'state'), bridgeName, podCidr: freePodCidr(), logLevel: 'warn' };
      plugin = startPlugin(criContainerdPlugin, { config });
      rt = (await plugin.ready) as ContainerRuntime;
      await ok(['create', '-f', writeManifest('ctr-node', { apiVersion: 'v1', kind: 'Node', metadata: { name: CTR_NODE } })]);
      await ok(['create', '-f', writeManifest('ctr-web', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'ctr-web' }, spec: { nodeName: CTR_NODE, containers: [{ name: 'app', image: BUSYBOX_IMAGE }] } })]);
      const pod = JSON.parse(await ok(['get', 'pod', 'ctr-web', '-o', 'json'])) as Json;
      const labels = { 'io.kubernetes.pod.namespace': 'default', 'io.kubernetes.pod.name': 'ctr-web', 'io.kubernetes.pod.uid': pod.metadata.uid as string };
      const sandboxConfig = { metadata: { name: 'ctr-web', uid: pod.metadata.uid as string, namespace: 'default' }, hostname: 'ctr-web', logDirectory: join(tmp, 'logs', 'ctr-web'), labels };
      const sandbox = await rt.runPodSandbox(sandboxConfig);
      sandboxes.push(sandbox);
      const container = await rt.createContainer(sandbox, {
        metadata: { name: 'app' },
        image: { image: BUSYBOX_IMAGE },
        command: ['sh', '-c', 'echo hello from containerd; sleep 0.2; echo to stderr >&2; exec httpd -f -p 8080 -h /etc'],
        logPath: 'app/0.log',
        labels: { ...labels, 'io.kubernetes.container.name': 'app' },
      }, sandboxConfig);
      await rt.startContainer(container);
      // kubectl port-forward wants a Running pod (no agent loop reports it here).
      await ok(['patch', 'pod', 'ctr-web', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { phase: 'Running' } })]);
      ctrServer = new AgentServer({ runtime: rt, nodeName: CTR_NODE, logger: createLogger({ level: 'silent' }), clientCa: readFileSync(join(c.dataDir, 'pki', 'ca.crt'), 'utf8'), host: '127.0.0.1', port: 0, certDir: join(tmp, 'agent-pki'), authorize: subjectAccessReview });
      await ctrServer.start();
      agentPorts.set(CTR_NODE, ctrServer.port);
      await until(async () => (await kubectl(['logs', 'ctr-web'])).stdout.includes('to stderr'), 15_000, 'the container\'s first log lines');
    });

    after(async function () {
      this.timeout(120_000);
      if (missing) return;
      await ctrServer?.stop();
      for (const id of sandboxes) {
        await rt.stopPodSandbox(id).catch(() => undefined);
        await rt.removePodSandbox(id).catch(() => undefined);
      }
      if (plugin) {
        await plugin.stop(15_000);
        plugin.host.dispose();
      }
      await cleanupContainerdNode(tmp, bridgeName);
    });

    it('kubectl logs reads containerd\'s CRI log file', async () => {
      expect(await ok(['logs', 'ctr-web'])).to.equal('hello from containerd\nto stderr\n');
      expect(await ok(['logs', 'ctr-web', '--tail=1'])).to.equal('to stderr\n');
    });

    it('kubectl exec runs in the container, with its exit code, and stdin to its end', async () => {
      expect(await ok(['exec', 'ctr-web', '--', 'cat', '/etc/hostname'])).to.equal('ctr-web\n');
      expect((await kubectl(['exec', 'ctr-web', '--', 'sh', '-c', 'exit 3'])).code).to.equal(3);
      const piped = await run('sh', ['-c', 'printf "line one\\nline two\\n" | kubectl exec -i ctr-web -- sh -c "cat; echo done"'], { KUBECONFIG: kubeconfig });
      expect([piped.code, piped.stdout], piped.stderr).to.deep.equal([0, 'line one\nline two\ndone\n']);
    });

    it('kubectl port-forward reaches the container\'s port through the pod IP', async () => {
      const pf = start('kubectl', ['port-forward', 'pod/ctr-web', ':8080'], { KUBECONFIG: kubeconfig });
      forwards.push(pf);
      const [, localPort] = await pf.waitFor(/Forwarding from 127\.0\.0\.1:(\d+) -> 8080/, 20_000);
      const body = await new Promise<string>((resolve, reject) => {
        httpGet(`http://127.0.0.1:${localPort}/hostname`, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('end', () => resolve(Buffer.concat(chunks).toString()));
        }).on('error', reject);
      });
      expect(body).to.equal('ctr-web\n');
      pf.child.kill('SIGINT');
      await pf.exited;
    });
  });
});

const execFileAsync = promisify(execFile);

/** Why this machine cannot run containerd, or undefined when it can. */
function containerdMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root';
  for (const cmd of ['containerd', 'runc', 'ctr']) if (spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status !== 0) return `${cmd} is not installed`;
  if (!existsSync('/usr/lib/cni/bridge') || !existsSync('/usr/lib/cni/host-local')) return 'the CNI plugins are not in /usr/lib/cni';
  if (!existsSync('/bin/busybox')) return 'busybox-static is not installed';
  return undefined;
}

/** A /24 under 10.88.0.0/16 no host route covers yet. */
function freePodCidr(): string {
  const routes = spawnSync('ip', ['-4', 'route', 'show'], { encoding: 'utf8' }).stdout ?? '';
  for (let i = 0; i < 50; i++) {
    const octet = 64 + Math.floor(Math.random() * 160);
    if (!routes.includes(`10.88.${octet}.`)) return `10.88.${octet}.0/24`;
  }
  throw new Error('no free 10.88.x.0/24 for the test pod network');
}

/** Removes what a managed containerd under `tmp` may have left: shims, mounts, the bridge, CNI NAT rules, the directory. */
async function cleanupContainerdNode(tmp: string, bridgeName: string): Promise<void> {
  if (!tmp) return;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (Number(pid) !== process.pid && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(tmp)) process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone already
    }
  }
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(`${tmp}/`)).sort((a, b) => b.length - a.length);
  for (const m of mounts) await execFileAsync('umount', ['-l', m]).catch(() => undefined);
  await execFileAsync('ip', ['link', 'del', bridgeName]).catch(() => undefined);
  const { stdout } = await execFileAsync('iptables-save', ['-t', 'nat']).catch(() => ({ stdout: '' }));
  for (const line of stdout.split('\n').filter((l) => l.startsWith('-A ') && l.includes(`name: \\"${bridgeName}\\"`))) {
    await execFileAsync('sh', ['-c', `iptables -t nat -D ${line.slice(3)}`]).catch(() => undefined);
    const chain = / -j (CNI-[0-9a-f]+)/.exec(line)?.[1];
    if (chain) {
      await execFileAsync('iptables', ['-t', 'nat', '-F', chain]).catch(() => undefined);
      await execFileAsync('iptables', ['-t', 'nat', '-X', chain]).catch(() => undefined);
    }
  }
  rmSync(tmp, { recursive: true, force: true });
}

/** A GET against `base` with the admin's certificate; the JSON answer. */
async function fetchJson(base: string, path: string, creds: { ca: string; cert?: string; key?: string }): Promise<{ status: number; body: Json }> {
  const { request } = await import('node:https');
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { ca: creds.ca, cert: creds.cert, key: creds.key, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let body: Json = {};
        try {
          body = JSON.parse(text) as Json;
        } catch {
          body = { text };
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}
