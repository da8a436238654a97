import { expect } from 'chai';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIG_HASH_ANNOTATION, CONFIG_MIRROR_ANNOTATION, CONFIG_SOURCE_ANNOTATION, mirrorHash, mirrorPodOf, readManifestDir, readManifestUrl, staticPodDefaults } from './static-pods.js';

const POD = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'busybox:1.36' }] } };

describe('static pods', () => {
  it('get the kubelet\'s defaults: name-node, namespace default, a stable content hash as UID, annotations, nodeName, NoExecute toleration', () => {
    const p = staticPodDefaults(POD, 'n1', 'file', '/etc/m/web.yaml');
    expect(p.metadata.name).to.equal('web-n1');
    expect(p.metadata.namespace).to.equal('default');
    expect(p.metadata.uid).to.match(/^[0-9a-f]{32}$/);
    expect(p.metadata.annotations).to.include({ [CONFIG_HASH_ANNOTATION]: p.metadata.uid, [CONFIG_SOURCE_ANNOTATION]: 'file' });
    expect(p.spec.nodeName).to.equal('n1');
    expect(p.spec.tolerations).to.deep.equal([{ operator: 'Exists', effect: 'NoExecute' }]);
    // Stable for the same content, node and source; different when any changes.
    expect(staticPodDefaults(JSON.parse(JSON.stringify(POD)), 'n1', 'file', '/etc/m/web.yaml').metadata.uid).to.equal(p.metadata.uid);
    expect(staticPodDefaults(POD, 'n2', 'file', '/etc/m/web.yaml').metadata.uid).to.not.equal(p.metadata.uid);
    expect(staticPodDefaults({ ...POD, spec: { containers: [{ name: 'c', image: 'busybox:1.37' }] } }, 'n1', 'file', '/etc/m/web.yaml').metadata.uid).to.not.equal(p.metadata.uid);
    expect(staticPodDefaults(POD, 'n1', 'file', '/etc/m/other.yaml').metadata.uid).to.not.equal(p.metadata.uid);
  });

  it('refuse documents that are not usable pods, naming the field', () => {
    expect(() => staticPodDefaults({ kind: 'Service' }, 'n', 'file', 'x')).to.throw('kind is "Service", expected Pod');
    expect(() => staticPodDefaults({ kind: 'Pod', metadata: {} , spec: { containers: [{ name: 'c' }] } }, 'n', 'file', 'x')).to.throw('metadata.name: Required value');
    expect(() => staticPodDefaults({ kind: 'Pod', metadata: { name: 'a' }, spec: {} }, 'n', 'file', 'x')).to.throw('spec.containers: Required value');
    expect(() => staticPodDefaults({ kind: 'Pod', metadata: { name: 'a' }, spec: { containers: [{}] } }, 'n', 'file', 'x')).to.throw('spec.containers[0].name: Required value');
  });

  it('mirror pods carry the mirror annotation and a controller reference to the Node, without the static UID', () => {
    const p = staticPodDefaults(POD, 'n1', 'file', 'f');
    const m = mirrorPodOf(p, { name: 'n1', uid: 'node-uid' }) as { metadata: Record<string, unknown> };
    expect(m.metadata.uid).to.equal(undefined);
    expect(mirrorHash(m as never)).to.equal(p.metadata.uid);
    expect((m.metadata.annotations as Record<string, string>)[CONFIG_MIRROR_ANNOTATION]).to.equal(p.metadata.uid);
    expect(m.metadata.ownerReferences).to.deep.equal([{ apiVersion: 'v1', kind: 'Node', name: 'n1', uid: 'node-uid', controller: true }]);
  });

  describe('sources', () => {
    let dir: string;
    let server: Server | undefined;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'kubernel-static-'));
    });
    after(() => {
      rmSync(dir, { recursive: true, force: true });
      server?.close();
    });

    it('a manifest directory: YAML and JSON files, dotfiles and subdirectories ignored, bad files reported', async () => {
      writeFileSync(join(dir, 'a.yaml'), 'apiVersion: v1\nkind: Pod\nmetadata: { name: a, namespace: kube-system }\nspec:\n  containers: [{ name: c, image: busybox }]\n');
      writeFileSync(join(dir, 'b.json'), JSON.stringify({ ...POD, metadata: { name: 'b' } }));
      writeFileSync(join(dir, '.hidden.yaml'), 'not: [valid');
      writeFileSync(join(dir, 'bad.yaml'), 'kind: Pod\nmetadata: { name: bad }\nspec: {}\n');
      mkdirSync(join(dir, 'sub'));
      const r = await readManifestDir(dir, 'n1');
      expect(r.pods.map((p) => `${p.metadata.namespace}/${p.metadata.name}`)).to.deep.equal(['kube-system/a-n1', 'default/b-n1']);
      expect(r.errors).to.deep.equal([`${join(dir, 'bad.yaml')}: spec.containers: Required value`]);
      expect(await readManifestDir(join(dir, 'missing'), 'n1')).to.deep.equal({ pods: [], errors: [] });
    });

    it('a URL serving a List of pods', async () => {
      server = createServer((_, res) => res.end(JSON.stringify({ kind: 'List', items: [POD, { ...POD, metadata: { name: 'two' } }] })));
      await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/pods`;
      const r = await readManifestUrl(url, 'n1');
      expect(r.pods.map((p) => p.metadata.name)).to.deep.equal(['web-n1', 'two-n1']);
      expect(r.pods[0]!.metadata.annotations[CONFIG_SOURCE_ANNOTATION]).to.equal('http');
    });
  });
});
