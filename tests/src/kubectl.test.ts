import { expect } from 'chai';
import { startCluster, type TestCluster } from './helpers/cluster.js';
import { start } from './helpers/processes.js';
import { until } from './helpers/wait.js';

const MANIFEST = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: busybox:1.36
        command: ["sleep", "3600"]
        ports:
        - containerPort: 8080
        env:
        - {name: MODE, value: blue}
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
`;

describe('kubectl against kubernel server (real kubectl 1.32, real nats-server)', function () {
  this.timeout(60_000);
  let c: TestCluster;

  before(async function () {
    this.timeout(60_000);
    c = await startCluster();
  });
  after(async () => {
    await c?.stop();
  });

  it('serves discovery: api-resources lists the built-in types with short names and scope', async () => {
    const out = await c.ok(['api-resources']);
    expect(out).to.match(/^pods\s+po\s+v1\s+true\s+Pod$/m);
    expect(out).to.match(/^deployments\s+deploy\s+apps\/v1\s+true\s+Deployment$/m);
    expect(out).to.match(/^nodes\s+no\s+v1\s+false\s+Node$/m);
    expect(out).to.match(/^leases\s+coordination\.k8s\.io\/v1\s+true\s+Lease$/m);
    expect(out).to.match(/^clusterrolebindings\s+rbac\.authorization\.k8s\.io\/v1\s+false\s+ClusterRoleBinding$/m);
    expect(await c.ok(['get', 'ns', '-o', 'name'])).to.equal('namespace/default\nnamespace/kube-node-lease\nnamespace/kube-public\nnamespace/kube-system\n');
  });

  it('applies a multi-document manifest, and a re-apply with a change is a patch', async () => {
    expect(await c.ok(['apply', '-f', '-'], MANIFEST)).to.equal('namespace/shop created\nconfigmap/settings created\ndeployment.apps/web created\nservice/web created\n');
    const before = JSON.parse(await c.ok(['get', 'deploy', 'web', '-n', 'shop', '-o', 'json'])) as { metadata: { generation: number; resourceVersion: string; uid: string } };
    const patchesBefore = await patchCount(c);
    const changed = MANIFEST.replace('replicas: 2', 'replicas: 3').replace('value: blue', 'value: green');
    expect(await c.ok(['apply', '-f', '-'], changed)).to.equal('namespace/shop unchanged\nconfigmap/settings unchanged\ndeployment.apps/web configured\nservice/web unchanged\n');
    expect(await patchCount(c)).to.be.greaterThan(patchesBefore);
    const after = JSON.parse(await c.ok(['get', 'deploy', 'web', '-n', 'shop', '-o', 'json'])) as { metadata: { generation: number; resourceVersion: string; uid: string }; spec: { replicas: number; template: { spec: { containers: Array<{ env: unknown; command: unknown }> } } } };
    expect(after.metadata.uid).to.equal(before.metadata.uid);
    expect(after.metadata.generation).to.equal(before.metadata.generation + 1);
    expect(Number(after.metadata.resourceVersion)).to.be.greaterThan(Number(before.metadata.resourceVersion));
    expect(after.spec.replicas).to.equal(3);
    expect(after.spec.template.spec.containers[0]!.env).to.deep.equal([{ name: 'MODE', value: 'green' }]);
    expect(after.spec.template.spec.containers[0]!.command).to.deep.equal(['sleep', '3600']);
  });

  it('gets with -o wide, yaml, json, jsonpath and name, and as tables', async () => {
    const wide = await c.ok(['get', 'deploy', '-n', 'shop', '-o', 'wide']);
    expect(wide).to.match(/^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\s+CONTAINERS\s+IMAGES\s+SELECTOR$/m);
    // The Deployment controller has made its ReplicaSet and pods; no node runs them, so none is ready.
    expect(wide).to.match(/^web\s+0\/3\s+\d\s+0\s+\S+\s+web\s+busybox:1\.36\s+app=web$/m);
    const svc = await c.ok(['get', 'svc', 'web', '-n', 'shop']);
    expect(svc).to.match(/^web\s+ClusterIP\s+10\.\d+\.\d+\.\d+\s+<none>\s+80\/TCP\s+\S+$/m);
    expect(await c.ok(['get', 'cm', 'settings', '-n', 'shop', '-o', 'yaml'])).to.match(/^data:\n {2}greeting: hello$/m);
    expect(JSON.parse(await c.ok(['get', 'cm', 'settings', '-n', 'shop', '-o', 'json'])).data).to.deep.equal({ greeting: 'hello' });
    expect(await c.ok(['get', 'cm', 'settings', '-n', 'shop', '-o', 'jsonpath={.data.greeting}'])).to.equal('hello');
    // Every namespace also gets the cluster CA in kube-root-ca.crt (root-ca-cert-publisher), as in Kubernetes.
    const names = (await c.ok(['get', 'cm', '-n', 'shop', '-o', 'name'])).split('\n').filter((n) => n && n !== 'configmap/kube-root-ca.crt');
    expect(names).to.deep.equal(['configmap/settings']);
    // Only the Deployment's pods exist, all Pending (no scheduler or node agent yet).
    await until(async () => (await c.ok(['get', 'pods', '-n', 'shop', '-l', 'app=web', '-o', 'name'])).trim() !== '', 10_000, 'the deployment\'s pods');
    const pods = await c.ok(['get', 'pods', '-A', '--no-headers']);
    expect(pods.trim().split('\n').map((l) => l.split(/\s+/).slice(0, 4).join(' ')).every((l) => /^shop web-[a-z0-9]+-[a-z0-9]{5} 0\/1 Pending$/.test(l)), pods).to.equal(true);
  });

  it('describes, labels and annotates', async () => {
    const described = await c.ok(['describe', 'deploy', 'web', '-n', 'shop']);
    expect(described).to.match(/^Replicas:\s+3 desired/m);
    expect(described).to.match(/^Selector:\s+app=web$/m);
    await c.ok(['label', 'deploy', 'web', '-n', 'shop', 'tier=frontend']);
    await c.ok(['annotate', 'deploy', 'web', '-n', 'shop', 'owner=team-a']);
    const o = JSON.parse(await c.ok(['get', 'deploy', 'web', '-n', 'shop', '-o', 'json'])) as { metadata: { labels: Record<string, string>; annotations: Record<string, string> } };
    expect(o.metadata.labels).to.deep.equal({ app: 'web', tier: 'frontend' });
    expect(o.metadata.annotations.owner).to.equal('team-a');
    expect(await c.ok(['get', 'deploy', '-n', 'shop', '-l', 'tier=frontend,app in (web,api)', '-o', 'name'])).to.equal('deployment.apps/web\n');
    expect(await c.ok(['get', 'deploy', '-n', 'shop', '-l', 'tier!=frontend', '-o', 'name'])).to.equal('');
  });

  it('patches with all three patch types, merging containers by name in a strategic merge patch', async () => {
    await c.ok(['patch', 'deploy', 'web', '-n', 'shop', '--type=merge', '-p', '{"spec":{"replicas":4}}']);
    await c.ok(['patch', 'deploy', 'web', '-n', 'shop', '--type=json', '-p', '[{"op":"add","path":"/spec/minReadySeconds","value":5}]']);
    await c.ok(['patch', 'deploy', 'web', '-n', 'shop', '-p', '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1.36"},{"name":"web","image":"busybox:1.37"}]}}}}']);
    const o = JSON.parse(await c.ok(['get', 'deploy', 'web', '-n', 'shop', '-o', 'json'])) as { spec: { replicas: number; minReadySeconds: number; template: { spec: { containers: Array<{ name: string; image: string; command?: string[] }> } } } };
    expect(o.spec.replicas).to.equal(4);
    expect(o.spec.minReadySeconds).to.equal(5);
    expect(o.spec.template.spec.containers.map((x) => `${x.name}=${x.image}`)).to.deep.equal(['web=busybox:1.37', 'sidecar=busybox:1.36']);
    expect(o.spec.template.spec.containers[0]!.command).to.deep.equal(['sleep', '3600']);
    const failed = await c.kubectl(['patch', 'deploy', 'web', '-n', 'shop', '--type=json', '-p', '[{"op":"test","path":"/spec/replicas","value":99}]']);
    expect(failed.code).to.not.equal(0);
  });

  it('scales through the scale subresource', async () => {
    expect(await c.ok(['scale', 'deploy', 'web', '-n', 'shop', '--replicas=1'])).to.equal('deployment.apps/web scaled\n');
    expect(await c.ok(['get', 'deploy', 'web', '-n', 'shop', '-o', 'jsonpath={.spec.replicas}'])).to.equal('1');
    const scale = await c.request('GET', '/apis/apps/v1/namespaces/shop/deployments/web/scale');
    expect(scale.json()).to.deep.include({ kind: 'Scale', apiVersion: 'autoscaling/v1' });
    expect((scale.json().status as { selector: string }).selector).to.equal('app=web');
  });

  it('creates configmaps, secrets and namespaces (protobuf bodies from the typed client)', async () => {
    await c.ok(['create', 'namespace', 'scratch']);
    await c.ok(['create', 'configmap', 'flags', '-n', 'scratch', '--from-literal=a=1', '--from-literal=b=two']);
    await c.ok(['create', 'secret', 'generic', 'creds', '-n', 'scratch', '--from-literal=password=s3cret']);
    expect(JSON.parse(await c.ok(['get', 'cm', 'flags', '-n', 'scratch', '-o', 'json'])).data).to.deep.equal({ a: '1', b: 'two' });
    const secret = JSON.parse(await c.ok(['get', 'secret', 'creds', '-n', 'scratch', '-o', 'json'])) as { type: string; data: Record<string, string>; metadata: Record<string, unknown> };
    expect(secret.type).to.equal('Opaque');
    expect(Buffer.from(secret.data.password!, 'base64').toString()).to.equal('s3cret');
    expect(secret.metadata).to.not.have.property('generation');
  });

  it('runs a server-side dry run without storing anything', async () => {
    const out = await c.ok(['create', 'configmap', 'ghost', '-n', 'shop', '--from-literal=x=y', '--dry-run=server', '-o', 'jsonpath={.metadata.uid}']);
    expect(out).to.match(/^[0-9a-f-]{36}$/);
    const get = await c.kubectl(['get', 'cm', 'ghost', '-n', 'shop']);
    expect(get.code).to.equal(1);
    expect(get.stderr).to.contain('configmaps "ghost" not found');
  });

  it('waits for a jsonpath condition', async () => {
    const wait = c.kubectl(['wait', 'cm/settings', '-n', 'shop', '--for=jsonpath={.data.state}=ready', '--timeout=20s']);
    await new Promise((r) => setTimeout(r, 300));
    await c.ok(['patch', 'cm', 'settings', '-n', 'shop', '--type=merge', '-p', '{"data":{"state":"ready"}}']);
    const done = await wait;
    expect(done.stdout).to.equal('configmap/settings condition met\n');
  });

  it('watches with get -w', async () => {
    const watcher = start('kubectl', ['get', 'cm', '-n', 'shop', '-w', '--output-watch-events'], { KUBECONFIG: c.kubeconfig });
    try {
      await watcher.waitFor(/settings/);
      await c.ok(['create', 'configmap', 'watched', '-n', 'shop', '--from-literal=k=v']);
      await watcher.waitFor(/ADDED\s+watched\s+1\s+/);
      await c.ok(['delete', 'cm', 'watched', '-n', 'shop']);
      await watcher.waitFor(/DELETED\s+watched/);
    } finally {
      watcher.child.kill();
      await watcher.exited;
    }
  });

  it('explains fields from the served OpenAPI', async () => {
    const out = await c.ok(['explain', 'pod.spec.containers']);
    expect(out).to.match(/^KIND:\s+Pod$/m);
    expect(out).to.match(/^FIELD:\s+containers <\[\]Container>$/m);
    expect(out).to.contain('List of containers belonging to the pod.');
  });

  it('deletes, with every --cascade policy accepted', async () => {
    for (const [name, cascade] of [['a', 'background'], ['b', 'orphan'], ['c', 'foreground']] as const) {
      await c.ok(['create', 'configmap', `del-${name}`, '-n', 'shop']);
      // --wait=false: orphan and foreground deletion leave a finalizer that the garbage collector
      // (a controller) removes once it has dealt with the dependents (none here).
      expect(await c.ok(['delete', 'cm', `del-${name}`, '-n', 'shop', `--cascade=${cascade}`, '--wait=false'])).to.equal(`configmap "del-${name}" deleted\n`);
    }
    for (const name of ['a', 'b', 'c']) await until(async () => (await c.kubectl(['get', 'cm', `del-${name}`, '-n', 'shop'])).code === 1, 15_000, `del-${name} to go`);
    await c.ok(['delete', 'ns', 'scratch']);
    await until(async () => (await c.kubectl(['get', 'ns', 'scratch'])).code === 1, 20_000, 'the namespace to be finalized');
    expect((await c.kubectl(['get', 'cm', 'flags', '-n', 'scratch'])).code).to.equal(1);
  });

  it('refuses bad input with the right 4xx Status and stores nothing', async () => {
    const path = '/api/v1/namespaces/shop/configmaps';
    const cases: Array<[string, string | Buffer, Record<string, string>, number, RegExp]> = [
      ['malformed JSON', '{"apiVersion":', {}, 400, /not valid JSON/],
      ['malformed YAML', 'a: [b', { 'content-type': 'application/yaml' }, 400, /not valid YAML/],
      ['the wrong kind', JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'x1' } }), {}, 400, /does not match the expected kind \(ConfigMap\)/],
      ['an unknown field under Strict', JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x2' }, colour: 'red' }), {}, 400, /strict decoding error: unknown field "colour"/],
      ['an oversized body', JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x3' }, data: { big: 'x'.repeat(4 * 1024 * 1024) } }), {}, 413, /larger than the limit/],
      ['an invalid name', JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'Not_Valid' } }), {}, 422, /metadata\.name: Invalid value: "Not_Valid": a lowercase RFC 1123 subdomain/],
      ['a missing name', JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: {} }), {}, 422, /metadata\.name: Required value: name or generateName is required/],
      ['a wrong type', JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x4' }, data: 'nope' }), {}, 400, /data: expected object, got string/],
      ['a deep nesting', `${'['.repeat(200)}${']'.repeat(200)}`, {}, 400, /nests deeper than 100 levels/],
      ['an unknown media type', 'x', { 'content-type': 'text/plain' }, 415, /unknown format/],
    ];
    for (const [what, body, headers, code, message] of cases) {
      const res = await c.request('POST', `${path}?fieldValidation=Strict`, body, headers);
      expect(res.status, what).to.equal(code);
      const status = res.json();
      expect(status, what).to.include({ kind: 'Status', status: 'Failure', code });
      expect(String(status.message), what).to.match(message);
    }
    const invalid = (await c.request('POST', path, JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'Not_Valid' } }))).json() as { details: { causes: Array<{ field: string; reason: string }> } };
    expect(invalid.details.causes.map((x) => `${x.reason} ${x.field}`)).to.deep.equal(['FieldValueInvalid metadata.name']);
    expect(await c.ok(['get', 'cm', '-n', 'shop', '-o', 'name'])).to.not.match(/x[1-4]/);
    const warn = await c.request('POST', `${path}?fieldValidation=Warn`, JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'warned' }, colour: 'red' }));
    expect(warn.status).to.equal(201);
    expect(warn.headers.get('warning')).to.equal('299 - "unknown field \\"colour\\""');
    expect(warn.json()).to.not.have.property('colour');
    const conflict = await c.request('POST', path, JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'warned' } }));
    expect(conflict.status).to.equal(409);
    expect(conflict.json()).to.include({ reason: 'AlreadyExists', message: 'configmaps "warned" already exists' });
    const missingNs = await c.request('POST', '/api/v1/namespaces/nowhere/configmaps', JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } }));
    expect(missingNs.status).to.equal(404);
    expect(missingNs.json()).to.include({ message: 'namespaces "nowhere" not found' });
  });

  it('answers a stale update with 409 Conflict', async () => {
    const cm = JSON.parse(await c.ok(['get', 'cm', 'settings', '-n', 'shop', '-o', 'json'])) as { metadata: { resourceVersion: string } };
    await c.ok(['patch', 'cm', 'settings', '-n', 'shop', '--type=merge', '-p', '{"data":{"v":"2"}}']);
    const res = await c.request('PUT', '/api/v1/namespaces/shop/configmaps/settings', JSON.stringify({ ...cm, data: { v: 'stale' } }));
    expect(res.status).to.equal(409);
    expect(res.json()).to.include({ reason: 'Conflict', message: 'Operation cannot be fulfilled on configmaps "settings": the object has been modified; please apply your changes to the latest version and try again' });
  });
});

/** PATCH requests the API server has served so far (from its metrics). */
async function patchCount(c: TestCluster): Promise<number> {
  const text = (await c.request('GET', '/metrics')).body;
  return [...text.matchAll(/^apiserver_request_total\{verb="PATCH"[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
}
