import { expect } from 'chai';
import { ApiError } from './status.js';
import { jsonPatch, mergePatch, strategicMergePatch } from './patch.js';
import { Schemas } from './schemas.js';

const schemas = new Schemas();
const POD = 'io.k8s.api.core.v1.Pod';

const pod = {
  metadata: { name: 'p', labels: { a: '1', b: '2' }, finalizers: ['x'] },
  spec: {
    containers: [
      { name: 'web', image: 'nginx:1', env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }], ports: [{ containerPort: 80 }] },
      { name: 'log', image: 'busybox' },
    ],
    tolerations: [{ key: 'a' }],
    volumes: [{ name: 'data', emptyDir: {} }],
  },
};

describe('patches', () => {
  it('merge patch (RFC 7386): objects merge, null deletes, lists replace', () => {
    expect(mergePatch({ a: { b: 1, c: 2 }, l: [1, 2] }, { a: { b: null, d: 3 }, l: [3] })).to.deep.equal({ a: { c: 2, d: 3 }, l: [3] });
    expect(mergePatch({ a: 1 }, 'x')).to.equal('x');
  });

  it('JSON patch (RFC 6902), with failed tests and bad paths as 422', () => {
    expect(jsonPatch({ a: [1] }, [{ op: 'add', path: '/a/-', value: 2 }, { op: 'replace', path: '/b', value: 1 }].slice(0, 1))).to.deep.equal({ a: [1, 2] });
    expect(() => jsonPatch({ a: 1 }, [{ op: 'test', path: '/a', value: 2 }])).to.throw(ApiError).with.property('code', 422);
    expect(() => jsonPatch({ a: 1 }, [{ op: 'replace', path: '/nope', value: 2 }])).to.throw(ApiError).with.property('code', 422);
    expect(() => jsonPatch({ a: 1 }, { op: 'add' })).to.throw(ApiError).with.property('code', 400);
  });

  it('strategic merge patch merges containers by name, env by name, ports by containerPort; other lists replace', () => {
    const out = strategicMergePatch(pod, {
      metadata: { labels: { b: null, c: '3' }, finalizers: ['y'] },
      spec: {
        containers: [{ name: 'web', image: 'nginx:2', env: [{ name: 'B', value: 'two' }, { name: 'C', value: '3' }], ports: [{ containerPort: 443 }] }, { name: 'new', image: 'x' }],
        tolerations: [{ key: 'b' }],
      },
    }, POD, schemas) as typeof pod;
    expect(out.metadata.labels).to.deep.equal({ a: '1', c: '3' });
    expect(out.metadata.finalizers).to.deep.equal(['x', 'y']);
    expect(out.spec.containers.map((c) => c.name)).to.deep.equal(['web', 'log', 'new']);
    expect(out.spec.containers[0]!.image).to.equal('nginx:2');
    expect(out.spec.containers[0]!.env).to.deep.equal([{ name: 'A', value: '1' }, { name: 'B', value: 'two' }, { name: 'C', value: '3' }]);
    expect(out.spec.containers[0]!.ports).to.deep.equal([{ containerPort: 80 }, { containerPort: 443 }]);
    expect(out.spec.tolerations).to.deep.equal([{ key: 'b' }]);
    expect(pod.spec.containers[0]!.image, 'the original is untouched').to.equal('nginx:1');
  });

  it('strategic merge patch honours $patch delete and replace, $retainKeys and $deleteFromPrimitiveList', () => {
    const deleted = strategicMergePatch(pod, { spec: { containers: [{ name: 'log', $patch: 'delete' }] } }, POD, schemas) as typeof pod;
    expect(deleted.spec.containers.map((c) => c.name)).to.deep.equal(['web']);
    const replaced = strategicMergePatch(pod, { spec: { containers: [{ name: 'only', image: 'i' }, { $patch: 'replace' }] } }, POD, schemas) as typeof pod;
    expect(replaced.spec.containers).to.deep.equal([{ name: 'only', image: 'i' }]);
    const mapReplaced = strategicMergePatch(pod, { metadata: { labels: { $patch: 'replace', z: '9' } } }, POD, schemas) as typeof pod;
    expect(mapReplaced.metadata.labels).to.deep.equal({ z: '9' });
    const retained = strategicMergePatch(pod, { spec: { volumes: [{ name: 'data', hostPath: { path: '/x' }, $retainKeys: ['name', 'hostPath'] }] } }, POD, schemas) as { spec: { volumes: unknown[] } };
    expect(retained.spec.volumes).to.deep.equal([{ name: 'data', hostPath: { path: '/x' } }]);
    const removed = strategicMergePatch(pod, { metadata: { '$deleteFromPrimitiveList/finalizers': ['x'] } }, POD, schemas) as typeof pod;
    expect(removed.metadata.finalizers).to.deep.equal([]);
    const ordered = strategicMergePatch(pod, { spec: { '$setElementOrder/containers': [{ name: 'log' }, { name: 'web' }] } }, POD, schemas) as typeof pod;
    expect(ordered.spec.containers.map((c) => c.name)).to.deep.equal(['log', 'web']);
    const env = strategicMergePatch(pod, { spec: { containers: [{ name: 'web', '$setElementOrder/env': [{ name: 'B' }, { name: 'A' }] }] } }, POD, schemas) as typeof pod;
    expect(env.spec.containers[0]!.env!.map((e) => e.name)).to.deep.equal(['B', 'A']);
    expect(() => strategicMergePatch(pod, { $patch: 'explode' }, POD, schemas)).to.throw(ApiError).with.property('code', 400);
  });

  it('strategic merge patch keeps the Deployment strategy\'s retainKeys semantics', () => {
    const d = { spec: { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1 } } } };
    const out = strategicMergePatch(d, { spec: { strategy: { type: 'Recreate', $retainKeys: ['type'] } } }, 'io.k8s.api.apps.v1.Deployment', schemas);
    expect(out).to.deep.equal({ spec: { strategy: { type: 'Recreate' } } });
  });
});
