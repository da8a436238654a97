import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { Container, ContainerState, EventType, Image, ImageFsInfoResponse, ImageSpec } from '@kubernel/sdk';
import { ImageGarbageCollector, type FilesystemCapacity, type ImageGarbageCollectorOptions, type ImageGCRuntime } from './image-gc.js';

const logger = pino({ level: 'silent' });
const MIN = 60_000;
/** The fake clock's start: far from 0, so that "first detected at 0" is visibly old. */
const T0 = 1_700_000_000_000;
const CAPACITY = 1000;
const MOUNTPOINT = '/var/lib/fake/images';

const idOf = (name: string): string => `sha256:${createHash('sha256').update(name).digest('hex')}`;

/** An image named `name` (tag `docker.io/library/<name>:latest`, one digest) of `size` bytes. */
function image(name: string, size: number, extra: Partial<Image> = {}): Image {
  const repo = name.includes('/') ? name : `docker.io/library/${name}`;
  return { id: idOf(name), repoTags: [`${repo}:latest`], repoDigests: [`${repo}@${idOf(`${name}-manifest`)}`], size, ...extra };
}

/** A container of `ref` (what the pod spec said) running image `imageRef`. */
function container(ref: string, imageRef: string, state: ContainerState = 'CONTAINER_RUNNING'): Container {
  return { id: `c-${ref}-${state}`, podSandboxId: 's-1', metadata: { name: 'app' }, image: { image: ref }, imageRef, state, createdAt: 0, labels: {}, annotations: {} };
}

/** An in-memory runtime; the image filesystem's usage is `otherBytes` plus the images' sizes. */
class FakeRuntime implements ImageGCRuntime {
  images: Image[] = [];
  containers: Container[] = [];
  /** Image ids whose removal fails. */
  readonly failRemoval = new Set<string>();
  readonly removeCalls: string[] = [];
  mountpoint = MOUNTPOINT;
  listFails = false;

  async listImages(): Promise<Image[]> {
    if (this.listFails) throw new Error('runtime unavailable');
    return this.images.map((i) => ({ ...i }));
  }

  async listContainers(): Promise<Container[]> {
    return [...this.containers];
  }

  async removeImage(spec: ImageSpec): Promise<void> {
    this.removeCalls.push(spec.image);
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (this.failRemoval.has(spec.image)) throw new Error('image is locked');
    this.images = this.images.filter((i) => i.id !== spec.image);
  }

  async imageFsInfo(): Promise<ImageFsInfoResponse> {
    const used = this.images.reduce((n, i) => n + i.size, 0);
    return { imageFilesystems: [{ timestamp: 0, fsId: { mountpoint: this.mountpoint }, usedBytes: used, inodesUsed: this.images.length }], containerFilesystems: [] };
  }
}

interface RecordedEvent {
  readonly type: EventType;
  readonly reason: string;
  readonly message: string;
}

/** A collector over a fresh fake runtime, with a fake clock and filesystem. */
function setup(options: Partial<ImageGarbageCollectorOptions> = {}, otherBytes = 0): {
  rt: FakeRuntime;
  gc: ImageGarbageCollector;
  events: RecordedEvent[];
  clock: { now: number };
  statfsPaths: string[];
} {
  const rt = new FakeRuntime();
  const events: RecordedEvent[] = [];
  const clock = { now: T0 };
  const statfsPaths: string[] = [];
  const statfs = async (path: string): Promise<FilesystemCapacity> => {
    statfsPaths.push(path);
    const used = otherBytes + rt.images.reduce((n, i) => n + i.size, 0);
    return { capacityBytes: CAPACITY, availableBytes: CAPACITY - used };
  };
  const gc = new ImageGarbageCollector({
    runtime: rt,
    logger,
    statfs,
    now: () => clock.now,
    onEvent: (type, reason, message) => events.push({ type, reason, message }),
    ...options,
  });
  return { rt, gc, events, clock, statfsPaths };
}

interface Case {
  readonly name: string;
  readonly options?: Partial<ImageGarbageCollectorOptions>;
  /** Bytes used on the image filesystem by other things than images. */
  readonly otherBytes?: number;
  /** Images present at the first detection (age unknown). */
  readonly images: readonly Image[];
  /** Detections after the first: at `atMs` after T0, with these containers, after adding these images. */
  readonly history?: readonly { readonly atMs: number; readonly containers?: readonly Container[]; readonly add?: readonly Image[] }[];
  /** Containers present at the collection. */
  readonly containers?: readonly Container[];
  /** When the collection runs, ms after T0. */
  readonly gcAtMs: number;
  readonly failRemoval?: readonly string[];
  readonly expected: {
    readonly usagePercent: number;
    readonly requiredBytes: number;
    readonly removed: readonly string[];
    readonly events: readonly RecordedEvent[];
  };
}

const a = image('alpha', 100);
const b = image('bravo', 100);
const c = image('charlie', 100);
const d = image('delta', 100);
const busybox = image('busybox', 150);
const pause = image('kubernel/pause', 200, { repoTags: ['docker.io/kubernel/pause:1.35'], repoDigests: [] });

const cases: Case[] = [
  {
    name: 'does nothing below the high threshold',
    images: [a, b, c],
    otherBytes: 540, // 840 used: 84 %
    gcAtMs: 10 * MIN,
    expected: { usagePercent: 84, requiredBytes: 0, removed: [], events: [] },
  },
  {
    name: 'collects at exactly the high threshold, down to the low threshold',
    images: [a, b, c],
    otherBytes: 550, // 850 used: 85 %; must free 850 - 800 = 50
    history: [{ atMs: 1 * MIN, containers: [container('bravo', b.id)] }, { atMs: 2 * MIN, containers: [container('alpha', a.id)] }],
    gcAtMs: 10 * MIN,
    // charlie was never used: it goes first; one image is enough.
    expected: { usagePercent: 85, requiredBytes: 50, removed: [c.id], events: [] },
  },
  {
    name: 'removes the least recently used images first until under the low threshold',
    images: [a, b, c, d],
    otherBytes: 550, // 950 used: 95 %; 50 free, 200 free at the low threshold: must free 150
    history: [
      { atMs: 1 * MIN, containers: [container('delta', d.id)] },
      { atMs: 2 * MIN, containers: [container('bravo', b.id)] },
      { atMs: 3 * MIN, containers: [container('charlie', c.id), container('alpha', a.id)] },
      { atMs: 4 * MIN, containers: [container('alpha', a.id)] },
    ],
    gcAtMs: 10 * MIN,
    expected: { usagePercent: 95, requiredBytes: 150, removed: [d.id, b.id], events: [] },
  },
  {
    name: 'orders by last used, then by first detected, and stops once enough is freed',
    images: [a],
    otherBytes: 650, // with 3 images: 950 used, 95 %; must free 150
    history: [
      { atMs: 1 * MIN, add: [c] },
      { atMs: 2 * MIN, add: [b] },
      { atMs: 3 * MIN, containers: [container('alpha', a.id)] },
    ],
    gcAtMs: 10 * MIN,
    // Never used: charlie (detected at 1 min) then bravo (2 min); alpha, last used at 3 min, stays.
    expected: { usagePercent: 95, requiredBytes: 150, removed: [c.id, b.id], events: [] },
  },
  {
    name: 'never removes images in use by running or exited containers, matched by id, tag or digest',
    images: [a, b, c, busybox, d],
    otherBytes: 400, // 950 used: 95 %; must free 150
    containers: [
      container('alpha', a.id, 'CONTAINER_EXITED'),
      container('busybox', 'docker.io/library/busybox@' + idOf('busybox-manifest'), 'CONTAINER_CREATED'),
      container('docker.io/library/bravo:latest', 'unknown-ref'),
      container('charlie@' + idOf('charlie-manifest'), ''),
    ],
    gcAtMs: 10 * MIN,
    expected: {
      usagePercent: 95,
      requiredBytes: 150,
      removed: [d.id],
      events: [{ type: 'Warning', reason: 'FreeDiskSpaceFailed', message: 'Failed to garbage collect required amount of images. Attempted to free 150 bytes, but only found 100 bytes eligible to free.' }],
    },
  },
  {
    name: 'never removes pinned images (by the runtime, or configured as the sandbox image)',
    options: { pinnedImages: ['docker.io/kubernel/pause:1.35'] },
    images: [pause, image('cri-pinned', 100, { pinned: true }), a],
    otherBytes: 500, // 900 used: 90 %; must free 100
    gcAtMs: 10 * MIN,
    expected: { usagePercent: 90, requiredBytes: 100, removed: [a.id], events: [] },
  },
  {
    name: 'skips images younger than the minimum age',
    images: [a],
    otherBytes: 700, // with 2 images: 900 used, 90 %; must free 100
    history: [
      { atMs: 1 * MIN, containers: [container('alpha', a.id)] },
      { atMs: 9 * MIN, add: [b] },
    ],
    gcAtMs: 10 * MIN, // bravo, never used, comes first but is 1 minute old: alpha goes instead
    expected: { usagePercent: 90, requiredBytes: 100, removed: [a.id], events: [] },
  },
  {
    name: 'records FreeDiskSpaceFailed with the exact message when not enough images are eligible',
    images: [a, b],
    otherBytes: 680, // with 3 images: 980 used, 98 %; must free 180
    history: [{ atMs: 9 * MIN, add: [c] }],
    containers: [container('bravo', b.id)],
    gcAtMs: 10 * MIN,
    expected: {
      usagePercent: 98,
      requiredBytes: 180,
      removed: [a.id],
      events: [{ type: 'Warning', reason: 'FreeDiskSpaceFailed', message: 'Failed to garbage collect required amount of images. Attempted to free 180 bytes, but only found 100 bytes eligible to free.' }],
    },
  },
  {
    name: 'records ImageGCFailed when a removal fails and goes on with the next candidate',
    images: [a, c],
    otherBytes: 600, // with 3 images: 900 used, 90 %; must free 100
    history: [{ atMs: 1 * MIN, add: [b], containers: [container('charlie', c.id)] }],
    failRemoval: [a.id],
    gcAtMs: 10 * MIN,
    expected: {
      usagePercent: 90,
      requiredBytes: 100,
      removed: [b.id],
      events: [{ type: 'Warning', reason: 'ImageGCFailed', message: `wanted to free 100 bytes, but freed 100 bytes space with errors in image deletion: [image ${a.id}: image is locked]` }],
    },
  },
  {
    name: 'a high threshold of 100 disables size-based collection',
    options: { highThresholdPercent: 100, lowThresholdPercent: 90 },
    images: [a, b],
    otherBytes: 800, // 100 % used
    gcAtMs: 10 * MIN,
    expected: { usagePercent: 100, requiredBytes: 0, removed: [], events: [] },
  },
];

describe('ImageGarbageCollector', () => {
  describe('garbageCollect', () => {
    for (const tc of cases) {
      it(tc.name, async () => {
        const { rt, gc, events, clock } = setup(tc.options, tc.otherBytes ?? 0);
        rt.images = [...tc.images];
        await gc.detect();
        for (const step of tc.history ?? []) {
          clock.now = T0 + step.atMs;
          rt.images.push(...(step.add ?? []));
          rt.containers = [...(step.containers ?? [])];
          await gc.detect();
        }
        rt.containers = [...(tc.containers ?? [])];
        for (const id of tc.failRemoval ?? []) rt.failRemoval.add(id);
        clock.now = T0 + tc.gcAtMs;
        const before = rt.images.map((i) => i.id);

        const result = await gc.garbageCollect();

        expect(result.usagePercent, 'usagePercent').to.equal(tc.expected.usagePercent);
        expect(result.requiredBytes, 'requiredBytes').to.equal(tc.expected.requiredBytes);
        expect(result.removed, 'removed').to.deep.equal(tc.expected.removed);
        expect(result.freedBytes, 'freedBytes').to.equal(tc.expected.removed.reduce((n, id) => n + tc.images.concat(...(tc.history ?? []).map((s) => s.add ?? [])).find((i) => i.id === id)!.size, 0));
        expect(events, 'events').to.deep.equal(tc.expected.events);
        expect(rt.images.map((i) => i.id), 'images left').to.deep.equal(before.filter((id) => !tc.expected.removed.includes(id)));
        expect(result.errors).to.have.length(tc.failRemoval?.length ?? 0);
        // The records follow the runtime.
        expect(gc.imageRecords().map((r) => r.id)).to.have.members(rt.images.map((i) => i.id));
      });
    }

    it('asks statfs about the runtime image filesystem mount point', async () => {
      const { rt, gc, statfsPaths } = setup();
      rt.images = [a];
      await gc.garbageCollect();
      expect(statfsPaths).to.deep.equal([MOUNTPOINT]);
    });

    it('uses imageFsPath when the runtime names no mount point, and fails without one', async () => {
      const withPath = setup({ imageFsPath: '/var/lib/kubernel' });
      withPath.rt.mountpoint = '';
      await withPath.gc.garbageCollect();
      expect(withPath.statfsPaths).to.deep.equal(['/var/lib/kubernel']);

      const without = setup();
      without.rt.mountpoint = '';
      const err = await without.gc.garbageCollect().then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(Error).with.property('message').that.matches(/no image filesystem mount point/);
    });

    it('records InvalidDiskCapacity and rejects when the filesystem has no capacity', async () => {
      const events: RecordedEvent[] = [];
      const gc = new ImageGarbageCollector({
        runtime: new FakeRuntime(),
        logger,
        statfs: async () => ({ capacityBytes: 0, availableBytes: 0 }),
        onEvent: (type, reason, message) => events.push({ type, reason, message }),
      });
      const err = await gc.garbageCollect().then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(Error).with.property('message', 'invalid capacity 0 on image filesystem');
      expect(events).to.deep.equal([{ type: 'Warning', reason: 'InvalidDiskCapacity', message: 'invalid capacity 0 on image filesystem' }]);
    });

    it('records ImageGCFailed only when a run fails twice in a row, and recovers', async () => {
      const { rt, gc, events } = setup();
      rt.images = [a];
      rt.listFails = true;
      const first = await gc.garbageCollect().then(() => undefined, (e: unknown) => e);
      expect(first).to.be.instanceOf(Error).with.property('message', 'runtime unavailable');
      expect(events).to.deep.equal([]);
      const second = await gc.garbageCollect().then(() => undefined, (e: unknown) => e);
      expect(second).to.be.instanceOf(Error);
      expect(events).to.deep.equal([{ type: 'Warning', reason: 'ImageGCFailed', message: 'runtime unavailable' }]);
      rt.listFails = false;
      await gc.garbageCollect();
      rt.listFails = true;
      await gc.garbageCollect().catch(() => undefined);
      expect(events, 'a failure after a success is quiet again').to.have.length(1);
    });

    it('removes images unused for longer than maximumAgeMs whatever the usage', async () => {
      const { rt, gc, clock } = setup({ maximumAgeMs: 30 * MIN });
      rt.images = [a, b, c];
      await gc.detect();
      clock.now = T0 + 20 * MIN;
      rt.containers = [container('alpha', a.id)];
      await gc.detect();
      rt.containers = [container('charlie', c.id)];
      clock.now = T0 + 29 * MIN;
      expect((await gc.garbageCollect()).removed, 'nothing is unused for 30 minutes yet').to.deep.equal([]);
      clock.now = T0 + 31 * MIN;
      const result = await gc.garbageCollect();
      // bravo was never used since the collector started; alpha was used 11 minutes ago; charlie is in use.
      expect(result.removed).to.deep.equal([b.id]);
      expect(result.requiredBytes).to.equal(0);
      expect(result.freedBytes).to.equal(100);
      expect(rt.images.map((i) => i.id)).to.deep.equal([a.id, c.id]);
    });

    it('serializes concurrent collections (each image is removed once)', async () => {
      const { rt, gc } = setup({}, 600);
      rt.images = [a, b, c];
      await gc.detect();
      const [r1, r2] = await Promise.all([gc.garbageCollect(), gc.garbageCollect()]);
      expect(r1.removed).to.have.length(1);
      expect(r2.removed, 'the second run finds usage under the high threshold').to.deep.equal([]);
      expect(rt.removeCalls).to.have.length(1);
    });
  });

  describe('detect', () => {
    it('records first detection (0 for images present at the start) and last use, and forgets removed images', async () => {
      const { rt, gc, clock } = setup();
      rt.images = [a, b];
      const inUse0 = await gc.detect();
      expect([...inUse0]).to.deep.equal([]);
      clock.now = T0 + MIN;
      rt.images.push(c);
      rt.containers = [container('docker.io/library/bravo:latest', b.id, 'CONTAINER_EXITED')];
      const inUse1 = await gc.detect();
      expect([...inUse1]).to.deep.equal([b.id]);
      clock.now = T0 + 2 * MIN;
      rt.images = rt.images.filter((i) => i.id !== a.id);
      rt.containers = [];
      await gc.detect();
      const byId = new Map(gc.imageRecords().map((r) => [r.id, r]));
      expect([...byId.keys()]).to.have.members([b.id, c.id]);
      expect(byId.get(b.id)).to.include({ firstDetected: 0, lastUsed: T0 + MIN, size: 100, pinned: false });
      expect(byId.get(c.id)).to.include({ firstDetected: T0 + MIN, lastUsed: 0 });
      expect(byId.get(c.id)!.repoTags).to.deep.equal(['docker.io/library/charlie:latest']);
    });

    it('reports pinned images as in use', async () => {
      const { rt, gc } = setup({ pinnedImages: ['kubernel/pause:1.35'] });
      rt.images = [pause, image('cri-pinned', 1, { pinned: true }), a];
      const inUse = await gc.detect();
      expect([...inUse]).to.have.members([pause.id, idOf('cri-pinned')]);
    });

    it('leaves the records unchanged when the runtime fails', async () => {
      const { rt, gc } = setup();
      rt.images = [a];
      await gc.detect();
      rt.listFails = true;
      const err = await gc.detect().then(() => undefined, (e: unknown) => e);
      expect(err).to.be.instanceOf(Error);
      expect(gc.imageRecords().map((r) => r.id)).to.deep.equal([a.id]);
    });
  });

  describe('deleteUnusedImages', () => {
    it('removes every unused, unpinned, old enough image whatever the usage', async () => {
      const { rt, gc, clock, events } = setup({ pinnedImages: ['docker.io/kubernel/pause:1.35'] });
      rt.images = [a, b, pause];
      await gc.detect();
      clock.now = T0 + 10 * MIN;
      rt.images.push(c);
      rt.containers = [container('bravo', b.id)];
      await gc.detect();
      clock.now = T0 + 11 * MIN;
      const result = await gc.deleteUnusedImages();
      expect(result.removed, 'charlie is one minute old, bravo in use, pause pinned').to.deep.equal([a.id]);
      expect(result.freedBytes).to.equal(100);
      expect(rt.images.map((i) => i.id)).to.deep.equal([b.id, pause.id, c.id]);
      expect(events).to.deep.equal([]);
    });

    it('reports removal failures in the result', async () => {
      const { rt, gc } = setup();
      rt.images = [a, b];
      rt.failRemoval.add(a.id);
      const result = await gc.deleteUnusedImages();
      expect(result.removed).to.deep.equal([b.id]);
      expect(result.errors).to.deep.equal([`image ${a.id}: image is locked`]);
    });
  });

  describe('the default statfs', () => {
    let dir = '';
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'image-gc-'));
    });
    afterEach(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('measures the real filesystem of the mount point, falling back to imageFsPath when it does not exist', async () => {
      const rt = new FakeRuntime();
      rt.mountpoint = join(dir, 'missing');
      const gc = new ImageGarbageCollector({ runtime: rt, logger, imageFsPath: dir, highThresholdPercent: 100, lowThresholdPercent: 100 });
      const result = await gc.garbageCollect();
      expect(result.usagePercent).to.be.within(0, 100);
      expect(result.requiredBytes).to.equal(0);

      const strict = new ImageGarbageCollector({ runtime: rt, logger });
      const err = await strict.garbageCollect().then(() => undefined, (e: unknown) => e);
      expect(err).to.have.property('code', 'ENOENT');
    });
  });

  describe('options', () => {
    const rt = new FakeRuntime();
    const bad: [string, Partial<ImageGarbageCollectorOptions>, RegExp][] = [
      ['high threshold above 100', { highThresholdPercent: 101 }, /highThresholdPercent/],
      ['fractional low threshold', { lowThresholdPercent: 79.5 }, /lowThresholdPercent/],
      ['low above high', { highThresholdPercent: 70, lowThresholdPercent: 80 }, /can not be higher/],
      ['negative minimum age', { minimumAgeMs: -1 }, /minimumAgeMs/],
      ['maximum age not above minimum age', { minimumAgeMs: 120_000, maximumAgeMs: 60_000 }, /must be greater than minimumAgeMs/],
    ];
    for (const [name, options, message] of bad) {
      it(`rejects a ${name}`, () => {
        expect(() => new ImageGarbageCollector({ runtime: rt, logger, ...options })).to.throw(RangeError, message);
      });
    }
  });

  it('leaves no timer behind', async () => {
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    // Mocha arms this test's own timeout once the test function returned its promise.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const before = timers();
    const { rt, gc } = setup({}, 700);
    rt.images = [a, b];
    await gc.detect();
    await gc.garbageCollect();
    await gc.deleteUnusedImages();
    expect(timers()).to.equal(before);
  });
});
