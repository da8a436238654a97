import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { join } from 'node:path';
import { buildBusyboxImage } from '@kubernel/plugin-cri-containerd';
import { KUBERNEL_BIN } from './helpers/paths.js';
import { run, start } from './helpers/processes.js';
import { containerdIds, realNodeSupport, startNodeCluster, type NodeCluster } from './helpers/node-cluster.js';
import { until } from './helpers/wait.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const IMAGE = 'docker.io/kubernel/busybox:1.35';

/** GET http://ip:port/path from the host; the body. */
function fetchText(ip: string, port = 80, path = '/'): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpGet({ host: ip, port, path, timeout: 3_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error(`GET http://${ip}:${port}/ timed out`)));
    req.on('error', reject);
  });
}

const ipInCidr = (ip: string, cidr: string): boolean => {
  const [base, bits] = cidr.split('/');
  const n = (s: string): number => s.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const mask = Number(bits) === 0 ? 0 : (0xffffffff << (32 - Number(bits))) >>> 0;
  return ((n(ip) & mask) >>> 0) === ((n(base!) & mask) >>> 0);
};

/**
 * The real node path, end to end: `kubernel up` (NATS, API server, controllers, scheduler, agent,
 * managed containerd, CNI bridge) and the real kubectl. One cluster for the file.
 */
describe('a real single-node cluster: kubernel up with containerd (kubectl)', function () {
  const unsupported = realNodeSupport();
  this.timeout(120_000);
  let c: NodeCluster;

  const pod = async (name: string): Promise<Json> => JSON.parse(await c.ok(['get', 'pod', name, '-o', 'json'])) as Json;
  const webPods = async (): Promise<Json[]> => (JSON.parse(await c.ok(['get', 'pods', '-l', 'app=web', '-o', 'json'])) as Json).items as Json[];
  const podCgroups = (): string[] => {
    const top = `/sys/fs/cgroup/memory/${c.cgroupRoot}`;
    const out: string[] = [];
    for (const qos of ['', 'burstable', 'besteffort']) {
      const dir = qos ? join(top, qos) : top;
      if (existsSync(dir)) out.push(...readdirSync(dir).filter((d) => d.startsWith('pod')));
    }
    return out;
  };
  const allocatedIps = (): string[] => {
    const dir = join(c.dataDir, 'plugins', 'cri-containerd', 'cni', 'networks', c.bridge);
    return existsSync(dir) ? readdirSync(dir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)) : [];
  };

  before(async function () {
    if (unsupported) {
      // A precondition of the machine, not a passing test: CI runs as root with containerd installed.
      this.skip();
    }
    c = await startNodeCluster('e2e', 31);
  });

  after(async () => {
    await c?.destroy();
  });

  it('registers the node Ready with containerd as its runtime and its pod CIDR', async () => {
    await until(async () => {
      const r = await c.kubectl(['get', 'node', c.nodeName, '-o', 'json']);
      return r.code === 0 && ((JSON.parse(r.stdout) as Json).status?.conditions ?? []).some((x: Json) => x.type === 'Ready' && x.status === 'True');
    }, 60_000, 'node Ready');
    const node = JSON.parse(await c.ok(['get', 'node', c.nodeName, '-o', 'json'])) as Json;
    expect(node.status.nodeInfo.containerRuntimeVersion).to.match(/^containerd:\/\/1\./);
    expect(node.spec.podCIDR).to.equal(c.podCidr);
    expect(node.status.images.flatMap((i: Json) => i.names)).to.include(IMAGE);
  });

  it('runs a 3-replica deployment: pods Running with IPs from the pod CIDR, serving HTTP to the host', async () => {
    await c.ok(['create', 'deployment', 'web', `--image=${IMAGE}`, '--replicas=3', '--', 'httpd', '-f', '-p', '80', '-h', '/var/www']);
    let pods: Json[] = [];
    await until(async () => {
      pods = await webPods();
      return pods.length === 3 && pods.every((p) => p.status?.phase === 'Running' && (p.status.conditions ?? []).some((x: Json) => x.type === 'Ready' && x.status === 'True'));
    }, 60_000, '3 web pods Running and Ready');
    const ips = pods.map((p) => p.status.podIP as string);
    expect(new Set(ips).size).to.equal(3);
    for (const ip of ips) {
      expect(ipInCidr(ip, c.podCidr), `${ip} in ${c.podCidr}`).to.equal(true);
      expect(await fetchText(ip)).to.contain('Hello from Kubernel');
    }
    expect(pods.every((p) => String(p.status.containerStatuses[0].containerID).startsWith('containerd://'))).to.equal(true);
    expect(podCgroups().length, 'pod cgroups').to.be.greaterThanOrEqual(3);
  });

  it('kubectl logs, exec (exit codes, stdin) and port-forward reach the pods through the API server and the agent', async () => {
    const name = (await webPods())[0]!.metadata.name as string;
    expect((await c.ok(['exec', name, '--', 'cat', '/etc/hostname'])).trim()).to.equal(name);
    const failing = await c.kubectl(['exec', name, '--', 'sh', '-c', 'exit 3']);
    expect(failing.code).to.equal(3);
    const echoed = execFileSync('kubectl', ['exec', '-i', name, '--', 'sh', '-c', 'cat; echo done'], { input: 'from stdin\n', env: { ...process.env, KUBECONFIG: c.kubeconfig }, encoding: 'utf8', timeout: 30_000 });
    expect(echoed).to.equal('from stdin\ndone\n');
    await c.ok(['run', 'talker', `--image=${IMAGE}`, '--restart=Never', '--command', '--', 'sh', '-c', 'echo one; sleep 0.3; echo two >&2; sleep 0.3; echo three']);
    await until(async () => (await pod('talker')).status?.phase === 'Succeeded', 60_000, 'talker Succeeded');
    expect(await c.ok(['logs', 'talker'])).to.equal('one\ntwo\nthree\n');
    expect(await c.ok(['logs', 'talker', '--tail=1'])).to.equal('three\n');
    const stamped = (await c.ok(['logs', 'talker', '--timestamps'])).trim().split('\n');
    expect(stamped).to.have.length(3);
    for (const line of stamped) expect(line).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z (one|two|three)$/);
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    const forward = start('kubectl', ['port-forward', `pod/${name}`, `${port}:80`], { KUBECONFIG: c.kubeconfig });
    try {
      await forward.waitFor(/Forwarding from 127\.0\.0\.1:\d+/, 20_000);
      expect(await fetchText('127.0.0.1', port)).to.contain('Hello from Kubernel');
    } finally {
      forward.child.kill('SIGTERM');
      await forward.exited;
    }
    await c.ok(['delete', 'pod', 'talker', '--grace-period=0', '--force']);
  });

  it('restarts a container whose liveness probe fails, with Unhealthy and Killing events', async () => {
    await c.ok(['apply', '-f', '-'], `
apiVersion: v1
kind: Pod
metadata: { name: liveness }
spec:
  containers:
  - name: c
    image: ${IMAGE}
    command: [sh, -c, "touch /tmp/healthy; sleep 4; rm /tmp/healthy; sleep 3600"]
    livenessProbe:
      exec: { command: [cat, /tmp/healthy] }
      periodSeconds: 1
      failureThreshold: 2
`);
    await until(async () => ((await pod('liveness')).status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1, 60_000, 'a restart after the liveness probe failed');
    const events = (JSON.parse(await c.ok(['get', 'events', '--field-selector', 'involvedObject.name=liveness', '-o', 'json'])) as Json).items as Json[];
    const reasons = events.map((e) => `${e.reason}: ${e.message}`);
    expect(reasons.some((r) => r.startsWith('Unhealthy: Liveness probe failed:'))).to.equal(true, reasons.join('\n'));
    expect(reasons).to.include('Killing: Container c failed liveness probe, will be restarted');
    const lastState = (await pod('liveness')).status.containerStatuses[0].lastState;
    expect(lastState.terminated, 'lastState.terminated').to.be.an('object');
  });

  it('readiness probes feed the pods\' Ready condition and so the Service endpoints', async () => {
    const podYaml = (name: string, port: number): string => `
apiVersion: v1
kind: Pod
metadata: { name: ${name}, labels: { app: ready-test } }
spec:
  containers:
  - name: c
    image: ${IMAGE}
    command: [httpd, -f, -p, "80", -h, /var/www]
    readinessProbe:
      httpGet: { port: ${port}, path: / }
      periodSeconds: 1
`;
    await c.ok(['apply', '-f', '-'], podYaml('ready', 80) + '---' + podYaml('unready', 81));
    await c.ok(['create', 'service', 'clusterip', 'ready-test', '--tcp=80:80']);
    // kubectl create service selects app=<name>: point it at the pods' label.
    await c.ok(['patch', 'service', 'ready-test', '-p', '{"spec":{"selector":{"app":"ready-test"}}}']);
    let ep: Json = {};
    await until(async () => {
      ep = JSON.parse(await c.ok(['get', 'endpoints', 'ready-test', '-o', 'json'])) as Json;
      const subset = (ep.subsets ?? [])[0] ?? {};
      return (subset.addresses ?? []).length === 1 && (subset.notReadyAddresses ?? []).length === 1;
    }, 60_000, 'one ready and one not-ready endpoint address');
    const ready = await pod('ready');
    const unready = await pod('unready');
    expect(ep.subsets[0].addresses[0].ip).to.equal(ready.status.podIP);
    expect(ep.subsets[0].notReadyAddresses[0].ip).to.equal(unready.status.podIP);
    const cond = (p: Json, type: string): string => (p.status.conditions as Json[]).find((x) => x.type === type)?.status as string;
    expect([cond(ready, 'Ready'), cond(unready, 'Ready'), cond(unready, 'ContainersReady')]).to.deep.equal(['True', 'False', 'False']);
    expect(unready.status.containerStatuses[0]).to.include({ ready: false, started: true });
    await c.ok(['delete', 'service', 'ready-test']);
    await c.ok(['delete', 'pod', 'ready', 'unready', '--grace-period=0', '--force']);
  });

  it('terminates gracefully: preStop runs first, SIGTERM ends a cooperative container, SIGKILL one that ignores it after the grace period', async () => {
    await c.ok(['apply', '-f', '-'], `
apiVersion: v1
kind: Pod
metadata: { name: polite }
spec:
  terminationGracePeriodSeconds: 20
  containers:
  - name: c
    image: ${IMAGE}
    command: [sh, -c, "trap 'exit 0' TERM; while true; do sleep 0.2; done"]
    lifecycle:
      preStop: { exec: { command: [sh, -c, "sleep 2"] } }
---
apiVersion: v1
kind: Pod
metadata: { name: stubborn }
spec:
  terminationGracePeriodSeconds: 3
  containers:
  - name: c
    image: ${IMAGE}
    command: [sh, -c, "trap '' TERM; while true; do sleep 0.2; done"]
`);
    await until(async () => (await pod('polite')).status?.phase === 'Running' && (await pod('stubborn')).status?.phase === 'Running', 60_000, 'both Running');
    const timed = async (name: string): Promise<number> => {
      const t0 = Date.now();
      await c.ok(['delete', 'pod', name, '--wait=true']);
      return (Date.now() - t0) / 1000;
    };
    const [polite, stubborn] = await Promise.all([timed('polite'), timed('stubborn')]);
    // polite: the 2 s preStop, then SIGTERM ends it at once (well before its 20 s grace period).
    expect(polite).to.be.within(2, 10);
    // stubborn: it ignores SIGTERM, so it is killed (SIGKILL) when its 3 s grace period ends.
    expect(stubborn).to.be.within(3, 10);
    const events = (JSON.parse(await c.ok(['get', 'events', '--field-selector', 'involvedObject.name=polite', '-o', 'json'])) as Json).items as Json[];
    expect(events.map((e) => e.reason)).to.include('Started');
  });

  it('a crashing container goes into CrashLoopBackOff with a growing back-off', async () => {
    await c.ok(['run', 'crash', `--image=${IMAGE}`, '--restart=Always', '--command', '--', 'sh', '-c', 'exit 3']);
    const messages = new Set<string>();
    await until(async () => {
      const st = (await pod('crash')).status?.containerStatuses?.[0];
      if (st?.state?.waiting?.reason === 'CrashLoopBackOff') messages.add(/back-off (\S+)/.exec(st.state.waiting.message as string)?.[1] ?? '');
      return messages.has('20s');
    }, 90_000, 'back-off 10s then 20s');
    expect([...messages]).to.include.members(['10s', '20s']);
    const st = (await pod('crash')).status.containerStatuses[0];
    expect(st.lastState.terminated).to.include({ exitCode: 3, reason: 'Error' });
    expect(st.restartCount).to.be.greaterThanOrEqual(2);
    await c.ok(['delete', 'pod', 'crash', '--grace-period=0', '--force']);
  });

  it('a container over its memory limit is OOMKilled, with the reason shown', async () => {
    await c.ok(['apply', '-f', '-'], `
apiVersion: v1
kind: Pod
metadata: { name: oom }
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: ${IMAGE}
    command: [dd, if=/dev/zero, of=/dev/null, bs=64M, count=1]
    resources: { limits: { memory: 32Mi } }
`);
    await until(async () => (await pod('oom')).status?.phase === 'Failed', 60_000, 'oom pod Failed');
    const st = (await pod('oom')).status.containerStatuses[0];
    expect(st.state.terminated).to.include({ reason: 'OOMKilled', exitCode: 137 });
    const table = await c.ok(['get', 'pod', 'oom']);
    expect(table).to.contain('OOMKilled');
  });

  it('mounts a configMap (a change appears in the file), an emptyDir and a projected token; env from references and service links', async () => {
    await c.ok(['create', 'configmap', 'site', '--from-literal=index.html=version one', '--from-literal=greeting=hello']);
    await c.ok(['apply', '-f', '-'], `
apiVersion: v1
kind: Pod
metadata: { name: volumes, labels: { tier: demo } }
spec:
  containers:
  - name: c
    image: ${IMAGE}
    command: [sh, -c, 'echo "$(GREETING) $KUBERNETES_SERVICE_HOST $MY_POD_NAME $TIER" > /www/env.txt; cp /var/run/secrets/kubernetes.io/serviceaccount/namespace /www/ns.txt; exec httpd -f -p 80 -h /']
    env:
    - { name: GREETING, valueFrom: { configMapKeyRef: { name: site, key: greeting } } }
    - { name: MY_POD_NAME, valueFrom: { fieldRef: { fieldPath: metadata.name } } }
    - { name: TIER, valueFrom: { fieldRef: { fieldPath: "metadata.labels['tier']" } } }
    volumeMounts:
    - { name: site, mountPath: /cfg }
    - { name: scratch, mountPath: /www }
  volumes:
  - { name: site, configMap: { name: site } }
  - { name: scratch, emptyDir: {} }
`);
    await until(async () => (await pod('volumes')).status?.phase === 'Running', 60_000, 'volumes pod Running');
    const ip = (await pod('volumes')).status.podIP as string;
    await until(async () => (await fetchText(ip, 80, '/www/env.txt').catch(() => '')) !== '', 15_000, 'env.txt served');
    const kubernetesIp = (JSON.parse(await c.ok(['get', 'service', 'kubernetes', '-o', 'json'])) as Json).spec.clusterIP as string;
    expect((await fetchText(ip, 80, '/www/env.txt')).trim()).to.equal(`$(GREETING) ${kubernetesIp} volumes demo`.replace('$(GREETING)', 'hello'));
    expect((await fetchText(ip, 80, '/www/ns.txt')).trim()).to.equal('default');
    expect(await fetchText(ip, 80, '/cfg/index.html')).to.equal('version one');
    await c.ok(['create', 'configmap', 'site', '--from-literal=index.html=version two', '--from-literal=greeting=hello', '--dry-run=client', '-o', 'yaml'])
      .then((y) => c.ok(['replace', '-f', '-'], y));
    await until(async () => (await fetchText(ip, 80, '/cfg/index.html')) === 'version two', 45_000, 'the configMap change in the mounted file');
    const podsDir = join(c.dataDir, 'agent', 'pods', (await pod('volumes')).metadata.uid as string, 'volumes');
    expect(readdirSync(podsDir).sort()).to.include.members(['kubernetes.io~configmap', 'kubernetes.io~empty-dir']);
  });

  it('adopts running pods after kill -9 of kubernel up and a restart: nothing restarts', async () => {
    const before = new Map((await webPods()).map((p) => [p.metadata.name as string, p.status.containerStatuses[0]]));
    expect(before.size).to.equal(3);
    const ids = containerdIds(c.criSocket);
    await c.kill9();
    // The pods keep running without the agent (containerd and the shims outlive it).
    for (const s of before.values()) expect(ids.some((id) => `containerd://${id}` === s.containerID)).to.equal(true);
    await c.restart();
    await until(async () => {
      const r = await c.kubectl(['get', 'node', c.nodeName, '-o', 'json']);
      return r.code === 0 && ((JSON.parse(r.stdout) as Json).status?.conditions ?? []).some((x: Json) => x.type === 'Ready' && x.status === 'True');
    }, 60_000, 'node Ready again');
    // A few sync rounds.
    await new Promise((r) => setTimeout(r, 4_000));
    const after = await webPods();
    expect(after.length).to.equal(3);
    for (const p of after) {
      const was = before.get(p.metadata.name as string);
      expect(was, `${p.metadata.name as string} existed before`).to.not.equal(undefined);
      const now = p.status.containerStatuses[0];
      expect(now.containerID).to.equal(was.containerID);
      expect(now.restartCount).to.equal(was.restartCount);
      expect(now.state.running.startedAt).to.equal(was.state.running.startedAt);
      expect(await fetchText(p.status.podIP as string)).to.contain('Hello from Kubernel');
    }
  });

  it('kubernel images import loads an OCI archive that pods then run with imagePullPolicy Never; an absent image is ErrImageNeverPull', async () => {
    const archive = join(c.dataDir, 'hello.tar');
    await buildBusyboxImage(archive, { name: 'docker.io/example/hello:1', cmd: ['sh', '-c', 'echo hello from an imported image; sleep 3600'] });
    const imported = await run(process.execPath, [KUBERNEL_BIN, 'images', 'import', '--data-dir', c.dataDir, archive]);
    expect(imported.code, imported.stderr).to.equal(0);
    expect(imported.stdout).to.contain('docker.io/example/hello:1');
    await c.ok(['run', 'hello', '--image=docker.io/example/hello:1', '--image-pull-policy=Never', '--restart=Never']);
    await until(async () => (await pod('hello')).status?.phase === 'Running', 60_000, 'hello Running');
    await c.ok(['run', 'absent', '--image=docker.io/example/absent:1', '--image-pull-policy=Never', '--restart=Never']);
    await until(async () => (await pod('absent')).status?.containerStatuses?.[0]?.state?.waiting?.reason === 'ErrImageNeverPull', 60_000, 'ErrImageNeverPull');
    expect((await pod('absent')).status.containerStatuses[0].state.waiting.message).to.equal('Container image "docker.io/example/absent:1" is not present with pull policy of Never');
    const bad = await run(process.execPath, [KUBERNEL_BIN, 'images', 'import', '--data-dir', c.dataDir, join(c.dataDir, 'missing.tar')]);
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.contain('missing.tar: no such file');
    for (const name of ['hello', 'absent']) await c.ok(['delete', 'pod', name, '--grace-period=0', '--force']);
  });

  it('deleting the deployment removes every container, sandbox, pod cgroup and IP allocation', async () => {
    const volumesPod = await c.kubectl(['get', 'pod', 'volumes', '-o', 'json']);
    const volumesUid = volumesPod.code === 0 ? ((JSON.parse(volumesPod.stdout) as Json).metadata.uid as string) : undefined;
    // Every pod left by the earlier cases (also those a failed case did not delete).
    const others = (JSON.parse(await c.ok(['get', 'pods', '-o', 'json'])) as Json).items.filter((p: Json) => p.metadata.labels?.app !== 'web').map((p: Json) => p.metadata.name as string);
    if (others.length > 0) await c.ok(['delete', 'pod', ...others, '--grace-period=0', '--force']);
    await c.ok(['delete', 'deployment', 'web']);
    await until(async () => (await webPods()).length === 0, 60_000, 'web pods gone');
    await until(() => containerdIds(c.criSocket).length === 0, 30_000, 'no container or sandbox left in containerd');
    await until(() => podCgroups().length === 0, 30_000, 'no pod cgroup left');
    expect(allocatedIps()).to.deep.equal([]);
    if (volumesUid) await until(() => !existsSync(join(c.dataDir, 'agent', 'pods', volumesUid)), 15_000, 'the volumes pod\'s directory removed');
    await until(() => readdirSync(join(c.dataDir, 'agent', 'pods')).length === 0, 15_000, 'no pod directory left');
    const netns = join(c.dataDir, 'plugins', 'cri-containerd', 'state');
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(`${netns}/`) && l.includes('netns'));
    expect(mounts, 'network namespace mounts left').to.deep.equal([]);
  });
});
