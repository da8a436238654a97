/**
 * The node agent's image garbage collector (the kubelet's `pkg/kubelet/images/image_gc_manager.go`).
 *
 * It keeps a record per image present on the node: when it was first detected and when a
 * container last used it. When the image filesystem's usage reaches the high threshold it removes
 * unused images, least recently used first, until usage is back down to the low threshold:
 *
 * - images used by any container the runtime knows (running or exited) are never removed;
 * - images the runtime reports `pinned`, and the configured pinned images (the sandbox image),
 *   are never removed;
 * - images detected less than `minimumAgeMs` ago are skipped (they may be about to be used);
 * - with `maximumAgeMs` set, images unused for longer than that are removed whatever the usage.
 *
 * Events go to the Node through `onEvent`: `FreeDiskSpaceFailed` when not enough images were
 * eligible, `ImageGCFailed` when removals failed (at once) or when a whole run failed twice in a
 * row (the kubelet stays quiet on the first failure: stats may not be ready yet),
 * `InvalidDiskCapacity` when the image filesystem reports no capacity.
 *
 * The collector owns no timer: the agent calls {@link ImageGarbageCollector.garbageCollect} every
 * {@link IMAGE_GC_PERIOD_MS} from its own loop, so stopping the agent stops it. Calls are
 * serialized: a call made while another runs waits for it.
 *
 * @module
 */
import { statfs as nodeStatfs } from 'node:fs/promises';
import type { EventType, ImageService, Logger, RuntimeService } from '@kubernel/sdk';

/** How often the kubelet runs image garbage collection (`ImageGCPeriod`). */
export const IMAGE_GC_PERIOD_MS = 5 * 60_000;
/** The kubelet's default `imageGCHighThresholdPercent`. */
export const DEFAULT_IMAGE_GC_HIGH_THRESHOLD_PERCENT = 85;
/** The kubelet's default `imageGCLowThresholdPercent`. */
export const DEFAULT_IMAGE_GC_LOW_THRESHOLD_PERCENT = 80;
/** The kubelet's default `imageMinimumGCAge` (2 minutes). */
export const DEFAULT_IMAGE_MINIMUM_GC_AGE_MS = 120_000;

/** The runtime calls the collector makes: images, the image filesystem, and containers (for their images). */
export type ImageGCRuntime = Pick<ImageService, 'listImages' | 'removeImage' | 'imageFsInfo'> & Pick<RuntimeService, 'listContainers'>;

/** A filesystem's size, as `statfs` reports it. */
export interface FilesystemCapacity {
  /** Total bytes. */
  readonly capacityBytes: number;
  /** Bytes available to unprivileged users. */
  readonly availableBytes: number;
}

/** Options of an {@link ImageGarbageCollector}. */
export interface ImageGarbageCollectorOptions {
  readonly runtime: ImageGCRuntime;
  readonly logger: Logger;
  /** Usage (percent of the image filesystem) at or above which images are removed. Default 85; 100 disables size-based collection. */
  readonly highThresholdPercent?: number;
  /** Usage (percent) that a collection frees down to. Default 80; at most `highThresholdPercent`. */
  readonly lowThresholdPercent?: number;
  /** Images detected less than this long ago are never removed. Default 120 000 ms. */
  readonly minimumAgeMs?: number;
  /** Images unused for longer than this are removed whatever the usage; 0 (the default) is off. Must exceed `minimumAgeMs`. */
  readonly maximumAgeMs?: number;
  /** Images never removed, by id, tag or digest (the sandbox image). */
  readonly pinnedImages?: readonly string[];
  /**
   * The size of the filesystem holding `path`. Default: `node:fs/promises` `statfs`
   * (`blocks`/`bavail` times `bsize`).
   */
  readonly statfs?: (path: string) => Promise<FilesystemCapacity>;
  /**
   * The image filesystem's path when the runtime's `imageFsInfo` names no mount point, fails, or
   * names one that does not exist on this host (an in-memory runtime).
   */
  readonly imageFsPath?: string;
  /** The clock, milliseconds since the epoch. Default `Date.now`. */
  readonly now?: () => number;
  /** Records an event on the Node. */
  readonly onEvent?: (type: EventType, reason: string, message: string) => void;
}

/** What the collector knows of one image. */
export interface ImageRecord {
  /** The image id. */
  readonly id: string;
  readonly repoTags: readonly string[];
  readonly repoDigests: readonly string[];
  /** Size in bytes, as the runtime last reported it. */
  readonly size: number;
  /** Whether the runtime reports it pinned. */
  readonly pinned: boolean;
  /** When it was first detected, ms since the epoch; 0 for images present at the first detection (age unknown). */
  readonly firstDetected: number;
  /** When a container was last seen using it, ms since the epoch; 0 when never seen in use. */
  readonly lastUsed: number;
}

/** The outcome of one {@link ImageGarbageCollector.garbageCollect} or {@link ImageGarbageCollector.deleteUnusedImages}. */
export interface ImageGCResult {
  /** Usage of the image filesystem, whole percent, measured before the size-based removals (0 when not measured). */
  readonly usagePercent: number;
  /** Bytes the collection had to free to reach the low threshold (0 below the high threshold). */
  readonly requiredBytes: number;
  /** Bytes freed (the sizes of the images removed). */
  readonly freedBytes: number;
  /** Ids of the images removed, in removal order. */
  readonly removed: readonly string[];
  /** One message per image that could not be removed. */
  readonly errors: readonly string[];
}

/** The Node event reasons the collector records (the kubelet's `events` constants). */
export const IMAGE_GC_EVENT_REASONS = {
  freeDiskSpaceFailed: 'FreeDiskSpaceFailed',
  imageGCFailed: 'ImageGCFailed',
  invalidDiskCapacity: 'InvalidDiskCapacity',
} as const;

interface MutableRecord {
  id: string;
  repoTags: readonly string[];
  repoDigests: readonly string[];
  size: number;
  pinned: boolean;
  firstDetected: number;
  lastUsed: number;
}

interface Freed {
  freedBytes: number;
  removed: string[];
  errors: string[];
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

const DIGEST_ID = /^(?:sha256:)?([0-9a-f]{64})$/;

/**
 * The forms under which `ref` can name an image: itself, and its canonical form (`busybox` is
 * `docker.io/library/busybox:latest`; a bare 64-hex id is `sha256:<hex>`).
 */
function referenceKeys(ref: string): string[] {
  if (ref === '') return [];
  const id = DIGEST_ID.exec(ref);
  if (id) return [ref, `sha256:${id[1]!}`];
  const at = ref.indexOf('@');
  const name = at >= 0 ? ref.slice(0, at) : ref;
  const digest = at >= 0 ? ref.slice(at) : '';
  const parts = name.split('/');
  const first = parts[0]!;
  const hasDomain = parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost');
  const domain = hasDomain ? first : 'docker.io';
  let path = hasDomain ? parts.slice(1).join('/') : name;
  if (domain === 'docker.io' && !path.includes('/')) path = `library/${path}`;
  const last = path.slice(path.lastIndexOf('/') + 1);
  const tag = digest === '' && !last.includes(':') ? ':latest' : '';
  const canonical = `${domain}/${path}${tag}${digest}`;
  return canonical === ref ? [ref] : [ref, canonical];
}

/** Every key an image answers to: its id, tags and digests, in their canonical forms too. */
function imageKeys(image: { readonly id: string; readonly repoTags: readonly string[]; readonly repoDigests: readonly string[] }): string[] {
  return [image.id, ...image.repoTags, ...image.repoDigests].flatMap(referenceKeys);
}

const ENOENT = (err: unknown): boolean => (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';

/** `statfs` of `path` as capacity and available bytes. */
async function defaultStatfs(path: string): Promise<FilesystemCapacity> {
  const s = await nodeStatfs(path);
  return { capacityBytes: s.blocks * s.bsize, availableBytes: s.bavail * s.bsize };
}

function percentOption(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 100) throw new RangeError(`image gc: ${name} must be a whole number in [0, 100], got ${String(value)}`);
  return value;
}

/**
 * The node agent's image garbage collector. See the module documentation for the policy.
 *
 * @throws {RangeError} from the constructor when a threshold is not a whole percent, the low
 * threshold exceeds the high one, an age is negative, or `maximumAgeMs` is set but not above
 * `minimumAgeMs`.
 */
export class ImageGarbageCollector {
  private readonly runtime: ImageGCRuntime;
  private readonly log: Logger;
  private readonly high: number;
  private readonly low: number;
  private readonly minimumAgeMs: number;
  private readonly maximumAgeMs: number;
  private readonly pinned: ReadonlySet<string>;
  private readonly statfs: (path: string) => Promise<FilesystemCapacity>;
  private readonly now: () => number;
  private readonly startedAt: number;
  private readonly records = new Map<string, MutableRecord>();
  private initialized = false;
  private previousRunFailed = false;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: ImageGarbageCollectorOptions) {
    this.runtime = options.runtime;
    this.log = options.logger;
    this.high = percentOption('highThresholdPercent', options.highThresholdPercent ?? DEFAULT_IMAGE_GC_HIGH_THRESHOLD_PERCENT);
    this.low = percentOption('lowThresholdPercent', options.lowThresholdPercent ?? DEFAULT_IMAGE_GC_LOW_THRESHOLD_PERCENT);
    if (this.low > this.high) throw new RangeError(`image gc: lowThresholdPercent ${this.low} can not be higher than highThresholdPercent ${this.high}`);
    this.minimumAgeMs = options.minimumAgeMs ?? DEFAULT_IMAGE_MINIMUM_GC_AGE_MS;
    this.maximumAgeMs = options.maximumAgeMs ?? 0;
    if (!(this.minimumAgeMs >= 0)) throw new RangeError(`image gc: minimumAgeMs must be >= 0, got ${String(this.minimumAgeMs)}`);
    if (!(this.maximumAgeMs >= 0)) throw new RangeError(`image gc: maximumAgeMs must be >= 0, got ${String(this.maximumAgeMs)}`);
    if (this.maximumAgeMs > 0 && this.maximumAgeMs <= this.minimumAgeMs) {
      throw new RangeError(`image gc: maximumAgeMs ${this.maximumAgeMs} must be greater than minimumAgeMs ${this.minimumAgeMs}`);
    }
    this.pinned = new Set((options.pinnedImages ?? []).flatMap(referenceKeys));
    this.statfs = options.statfs ?? defaultStatfs;
    this.now = options.now ?? Date.now;
    this.startedAt = this.now();
  }

  /** A snapshot of the image records, by id order. */
  imageRecords(): ImageRecord[] {
    return [...this.records.values()].map((r) => ({ ...r })).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /**
   * Refreshes the image records from the runtime: new images get `firstDetected` (0 at the very
   * first detection: their age is unknown), images used by any container get `lastUsed` = now,
   * images gone are forgotten. Resolves to the ids of the images in use (used or pinned).
   *
   * @throws whatever `listImages` or `listContainers` rejects with (the records are unchanged).
   */
  detect(): Promise<ReadonlySet<string>> {
    return this.serialized(() => this.detectImages(this.now()));
  }

  /**
   * One collection: detects images, removes those unused for longer than `maximumAgeMs` (when
   * set), then, when the image filesystem's usage is at or above the high threshold, removes
   * eligible images least recently used first until `usage - low% * capacity` bytes are freed.
   * Records `FreeDiskSpaceFailed` when the eligible images were not enough, and `ImageGCFailed`
   * when some removals failed (the other candidates are still tried).
   *
   * @throws when the collection could not run at all: the runtime's lists or the filesystem's size
   * could not be read, or its capacity is 0 (`ImageGCFailed` is recorded when this happens twice
   * in a row).
   */
  garbageCollect(): Promise<ImageGCResult> {
    return this.serialized(async () => {
      try {
        const result = await this.collect();
        this.previousRunFailed = false;
        return result;
      } catch (err) {
        if (this.previousRunFailed) {
          this.log.error({ err: errorText(err) }, 'image garbage collection failed multiple times in a row');
          this.event('Warning', IMAGE_GC_EVENT_REASONS.imageGCFailed, errorText(err));
        } else {
          this.log.error({ err: errorText(err) }, 'image garbage collection failed once; stats initialization may not have completed yet');
        }
        this.previousRunFailed = true;
        throw err;
      }
    });
  }

  /**
   * Removes every image that is not in use, not pinned and older than `minimumAgeMs`, whatever the
   * usage (the kubelet's `DeleteUnusedImages`). Removal failures are reported in the result and
   * logged, not thrown; no event is recorded.
   *
   * @throws whatever `listImages` or `listContainers` rejects with.
   */
  deleteUnusedImages(): Promise<ImageGCResult> {
    return this.serialized(async () => {
      this.log.info('attempting to delete unused images');
      const freeTime = this.now();
      const candidates = await this.evictionOrder(freeTime);
      const freed = await this.freeSpace(Number.POSITIVE_INFINITY, freeTime, candidates);
      if (freed.errors.length > 0) this.log.warn({ errors: freed.errors }, 'some unused images could not be removed');
      return { usagePercent: 0, requiredBytes: 0, ...freed };
    });
  }

  // -------------------------------------------------------------------------------------------

  private async collect(): Promise<ImageGCResult> {
    const freeTime = this.now();
    let candidates = await this.evictionOrder(freeTime);
    const total: Freed = { freedBytes: 0, removed: [], errors: [] };
    if (this.maximumAgeMs > 0) {
      const old = await this.freeOldImages(freeTime, candidates);
      this.add(total, old);
      candidates = candidates.filter((c) => !old.removed.includes(c.id));
      if (old.errors.length > 0) {
        this.event('Warning', IMAGE_GC_EVENT_REASONS.imageGCFailed, `failed to remove images unused for longer than ${this.maximumAgeMs} ms: [${old.errors.join(', ')}]`);
      }
    }

    const fs = await this.imageFsCapacity();
    const capacity = fs.capacityBytes;
    const available = Math.min(fs.availableBytes, capacity);
    if (fs.availableBytes > capacity) this.log.info({ available: fs.availableBytes, capacity }, 'image filesystem reports more available bytes than capacity');
    if (!(capacity > 0)) {
      const message = `invalid capacity ${capacity} on image filesystem`;
      this.event('Warning', IMAGE_GC_EVENT_REASONS.invalidDiskCapacity, message);
      throw new Error(message);
    }
    const usagePercent = 100 - Math.floor((available * 100) / capacity);
    let requiredBytes = 0;
    // A high threshold of 100 disables size-based collection (as the kubelet's configuration does).
    if (this.high < 100 && usagePercent >= this.high) {
      requiredBytes = Math.floor((capacity * (100 - this.low)) / 100) - available;
      this.log.info({ usage: usagePercent, highThreshold: this.high, lowThreshold: this.low, amountToFree: requiredBytes }, 'disk usage on image filesystem is over the high threshold, trying to free bytes down to the low threshold');
      const freed = await this.freeSpace(requiredBytes, freeTime, candidates);
      this.add(total, freed);
      if (freed.errors.length > 0) {
        this.event('Warning', IMAGE_GC_EVENT_REASONS.imageGCFailed, `wanted to free ${requiredBytes} bytes, but freed ${freed.freedBytes} bytes space with errors in image deletion: [${freed.errors.join(', ')}]`);
      } else if (freed.freedBytes < requiredBytes) {
        const message = `Failed to garbage collect required amount of images. Attempted to free ${requiredBytes} bytes, but only found ${freed.freedBytes} bytes eligible to free.`;
        this.log.warn({ requiredBytes, freedBytes: freed.freedBytes }, message);
        this.event('Warning', IMAGE_GC_EVENT_REASONS.freeDiskSpaceFailed, message);
      }
    }
    return { usagePercent, requiredBytes, ...total };
  }

  private add(total: Freed, part: Freed): void {
    total.freedBytes += part.freedBytes;
    total.removed.push(...part.removed);
    total.errors.push(...part.errors);
  }

  /** Refreshes the records at `detectTime`; resolves to the ids of images in use or pinned. */
  private async detectImages(detectTime: number): Promise<Set<string>> {
    const [images, containers] = await Promise.all([this.runtime.listImages(), this.runtime.listContainers()]);
    const used = new Set<string>();
    for (const c of containers) {
      for (const ref of [c.imageRef, c.image.image, c.image.userSpecifiedImage ?? '']) for (const k of referenceKeys(ref)) used.add(k);
    }
    // Images present at the very first detection are of unknown age: treat them as old.
    const firstDetected = this.initialized ? detectTime : 0;
    const now = this.now();
    const current = new Set<string>();
    const inUse = new Set<string>();
    for (const image of images) {
      current.add(image.id);
      const keys = imageKeys(image);
      let record = this.records.get(image.id);
      if (!record) {
        record = { id: image.id, repoTags: [], repoDigests: [], size: 0, pinned: false, firstDetected, lastUsed: 0 };
        this.records.set(image.id, record);
      }
      record.repoTags = [...image.repoTags];
      record.repoDigests = [...image.repoDigests];
      record.size = image.size;
      record.pinned = image.pinned === true;
      if (keys.some((k) => used.has(k))) {
        record.lastUsed = now;
        inUse.add(image.id);
      }
      if (record.pinned || keys.some((k) => this.pinned.has(k))) inUse.add(image.id);
    }
    for (const id of [...this.records.keys()]) if (!current.has(id)) this.records.delete(id);
    this.initialized = true;
    return inUse;
  }

  /** Detects at `freeTime`; resolves to the removable records, least recently used (then first detected) first. */
  private async evictionOrder(freeTime: number): Promise<MutableRecord[]> {
    const inUse = await this.detectImages(freeTime);
    const candidates: MutableRecord[] = [];
    for (const r of this.records.values()) {
      if (inUse.has(r.id)) continue;
      if (r.pinned) {
        this.log.debug({ image: r.id }, 'image is pinned, skipping garbage collection');
        continue;
      }
      candidates.push(r);
    }
    return candidates.sort((a, b) => a.lastUsed - b.lastUsed || a.firstDetected - b.firstDetected || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Removes candidates (old enough) until `bytesToFree` are freed; failures are collected, not thrown. */
  private async freeSpace(bytesToFree: number, freeTime: number, candidates: readonly MutableRecord[]): Promise<Freed> {
    const freed: Freed = { freedBytes: 0, removed: [], errors: [] };
    for (const image of candidates) {
      if (freed.freedBytes >= bytesToFree) break;
      // Used during this run (a newer lastUsed), or just pulled and maybe about to be used.
      if (image.lastUsed >= freeTime) continue;
      if (freeTime - image.firstDetected < this.minimumAgeMs) {
        this.log.debug({ image: image.id, age: freeTime - image.firstDetected, minAge: this.minimumAgeMs }, 'image is too young for garbage collection');
        continue;
      }
      if (await this.remove(image, freed, 'removing image to free bytes')) freed.freedBytes += image.size;
    }
    return freed;
  }

  /** Removes candidates unused for longer than `maximumAgeMs` (counted from when the collector could first see them). */
  private async freeOldImages(freeTime: number, candidates: readonly MutableRecord[]): Promise<Freed> {
    const freed: Freed = { freedBytes: 0, removed: [], errors: [] };
    for (const image of candidates) {
      const unusedSince = Math.max(image.lastUsed, image.firstDetected, this.startedAt);
      if (freeTime - unusedSince <= this.maximumAgeMs) continue;
      if (await this.remove(image, freed, 'removing image that has been unused for longer than the maximum age')) freed.freedBytes += image.size;
    }
    return freed;
  }

  /** Removes one image; true when removed, else its error is added to `freed.errors`. */
  private async remove(image: MutableRecord, freed: Freed, why: string): Promise<boolean> {
    this.log.info({ imageID: image.id, repoTags: image.repoTags, size: image.size, lastUsed: image.lastUsed }, why);
    try {
      await this.runtime.removeImage({ image: image.id });
    } catch (err) {
      const text = `image ${image.id}: ${errorText(err)}`;
      this.log.warn({ imageID: image.id, err: errorText(err) }, 'failed to remove image');
      freed.errors.push(text);
      return false;
    }
    this.records.delete(image.id);
    freed.removed.push(image.id);
    return true;
  }

  /** The image filesystem's size: `statfs` of the runtime's image mount point, else of `imageFsPath`. */
  private async imageFsCapacity(): Promise<FilesystemCapacity> {
    const fallback = this.options.imageFsPath;
    let mountpoint = '';
    try {
      const info = await this.runtime.imageFsInfo();
      mountpoint = info.imageFilesystems.find((f) => f.fsId.mountpoint !== '')?.fsId.mountpoint ?? '';
    } catch (err) {
      if (!fallback) throw err;
      this.log.debug({ err: errorText(err) }, 'image fs info failed; using the configured image filesystem path');
    }
    if (mountpoint === '') {
      if (!fallback) throw new Error('image gc: the runtime reports no image filesystem mount point and no imageFsPath is configured');
      return this.statfs(fallback);
    }
    try {
      return await this.statfs(mountpoint);
    } catch (err) {
      if (!fallback || !ENOENT(err)) throw err;
      return this.statfs(fallback);
    }
  }

  private event(type: EventType, reason: string, message: string): void {
    this.options.onEvent?.(type, reason, message);
  }

  /** Runs `fn` after every earlier call finished. */
  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }
}
