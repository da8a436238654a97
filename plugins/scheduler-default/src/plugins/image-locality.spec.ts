import { expect } from 'chai';
import { Snapshot, type KubeObject } from '@kubernel/sdk';
import { describeSchedulerPluginContract, runPluginOnSnapshot, testFrameworkHandle, testNode, testPod } from '@kubernel/sdk/testing';
import { calculatePriority, imageLocalityFactory, imageLocalityPlugin, imageNameCandidates, normalizedImageName } from './image-locality.js';

const MB = 1024 * 1024;

const withImages = (name: string, images: string[], initImages: string[] = []): KubeObject =>
  testPod(name, {
    spec: {
      containers: images.map((image, i) => ({ name: `c${i}`, image })),
      ...(initImages.length ? { initContainers: initImages.map((image, i) => ({ name: `i${i}`, image })) } : {}),
    },
  });

async function scores(pod: KubeObject, nodes: KubeObject[]): Promise<Record<string, number>> {
  const snapshot = Snapshot.of(nodes);
  const plugin = await imageLocalityFactory.create(undefined, testFrameworkHandle(snapshot));
  return Object.fromEntries(runPluginOnSnapshot(plugin, pod, snapshot).scores);
}

// Four nodes: nginx:1.25 (800MB) on n1 and n2, busybox (100MB) on n1 only.
const nodes = [
  testNode('n1', { images: [{ names: ['docker.io/library/nginx:1.25'], sizeBytes: 800 * MB }, { names: ['docker.io/library/busybox:latest', 'docker.io/library/busybox@sha256:abc'], sizeBytes: 100 * MB }] }),
  testNode('n2', { images: [{ names: ['docker.io/library/nginx:1.25'], sizeBytes: 800 * MB }] }),
  testNode('n3'),
  testNode('n4'),
];

describe('ImageLocality', () => {
  it('scores the image size scaled by its spread, between the 23MB and 1000MB thresholds', async () => {
    // n1, n2: 800MB * 2/4 = 400MB -> 100 * (400MB - 23MB) / (1000MB - 23MB) = 38
    expect(await scores(withImages('p', ['nginx:1.25']), nodes)).to.deep.equal({ n1: 38, n2: 38, n3: 0, n4: 0 });
  });

  it('sums over the containers, with 1000MB per container as the top', async () => {
    // n1: 400MB + 100MB * 1/4 = 425MB -> 100 * (425MB - 23MB) / (2000MB - 23MB) = 20; n2: 400MB -> 19
    expect(await scores(withImages('p', ['nginx:1.25', 'busybox']), nodes)).to.deep.equal({ n1: 20, n2: 19, n3: 0, n4: 0 });
  });

  it('counts init containers too', async () => {
    expect(await scores(withImages('p', ['nginx:1.25'], ['busybox']), nodes)).to.deep.equal({ n1: 20, n2: 19, n3: 0, n4: 0 });
  });

  it('gives 0 below the minimum and 100 at the maximum', async () => {
    const small = [testNode('a', { images: [{ names: ['docker.io/library/tiny:latest'], sizeBytes: 10 * MB }] })];
    expect(await scores(withImages('p', ['tiny']), small)).to.deep.equal({ a: 0 });
    const huge = [testNode('a', { images: [{ names: ['docker.io/library/huge:latest'], sizeBytes: 5000 * MB }] })];
    expect(await scores(withImages('p', ['huge']), huge)).to.deep.equal({ a: 100 });
    expect(calculatePriority(0, 1)).to.equal(0);
    expect(calculatePriority(1000 * MB, 1)).to.equal(100);
    expect(calculatePriority(600 * MB, 2)).to.equal(29);
  });

  describe('image names', () => {
    const node = (names: string[]) => [testNode('a', { images: [{ names, sizeBytes: 2000 * MB }] })];
    const cases: Array<{ pod: string; node: string; match: boolean }> = [
      { pod: 'busybox', node: 'docker.io/library/busybox:latest', match: true },
      { pod: 'busybox:latest', node: 'docker.io/library/busybox:latest', match: true },
      { pod: 'library/busybox', node: 'docker.io/library/busybox:latest', match: true },
      { pod: 'docker.io/library/busybox', node: 'busybox:latest', match: true },
      { pod: 'index.docker.io/library/busybox:latest', node: 'docker.io/library/busybox:latest', match: true },
      { pod: 'busybox@sha256:abc', node: 'docker.io/library/busybox@sha256:abc', match: true },
      { pod: 'busybox:1.36', node: 'docker.io/library/busybox:latest', match: false },
      { pod: 'someone/app', node: 'docker.io/someone/app:latest', match: true },
      { pod: 'quay.io/someone/app', node: 'quay.io/someone/app:latest', match: true },
      { pod: 'someone/app', node: 'quay.io/someone/app:latest', match: false },
      { pod: 'localhost:5000/app', node: 'localhost:5000/app:latest', match: true },
    ];
    for (const c of cases) {
      it(`${c.pod} ${c.match ? 'matches' : 'does not match'} ${c.node}`, async () => {
        expect(await scores(withImages('p', [c.pod]), node([c.node]))).to.deep.equal({ a: c.match ? 100 : 0 });
      });
    }

    it('normalizes as Kubernetes (":latest" when untagged) and lists the other spellings', () => {
      expect(normalizedImageName('busybox')).to.equal('busybox:latest');
      expect(normalizedImageName('localhost:5000/app')).to.equal('localhost:5000/app:latest');
      expect(normalizedImageName('app:1')).to.equal('app:1');
      expect(imageNameCandidates('busybox')).to.deep.equal(['busybox:latest', 'docker.io/library/busybox:latest', 'library/busybox:latest']);
    });
  });

  it('is a Score plugin only', async () => {
    const plugin = await imageLocalityFactory.create(undefined, testFrameworkHandle(Snapshot.of([])));
    expect(plugin.name).to.equal('ImageLocality');
    expect(plugin.filter).to.equal(undefined);
    expect(plugin.score).to.be.a('function');
  });
});

describeSchedulerPluginContract(imageLocalityPlugin, {
  scenarios: [
    {
      name: 'prefers the node that has the image',
      nodes: [testNode('cold'), testNode('warm', { images: [{ names: ['docker.io/library/postgres:16'], sizeBytes: 400 * MB }] })],
      pod: withImages('db', ['postgres:16']),
      best: 'warm',
    },
  ],
});
