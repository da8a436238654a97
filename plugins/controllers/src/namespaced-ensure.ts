import { isAlreadyExists, isNotFound, type ApiClient, type Informer, type KubeObject, type Logger } from '@kubernel/sdk';

/**
 * A small level-triggered loop shared by controllers that keep one object present in every active
 * namespace: a namespace added or changed, or the object deleted or changed, queues the namespace;
 * the sync creates or repairs the object. Failures retry with a doubling delay (200 ms to 30 s).
 * (The SDK's work queue, issue 6, will replace this loop.)
 */
export class PerNamespaceEnsurer {
  private readonly queued = new Set<string>();
  private readonly failures = new Map<string, number>();
  private running = false;
  private stopped = false;

  constructor(
    private readonly namespaces: Informer,
    private readonly log: Logger,
    private readonly ensure: (namespace: string) => Promise<void>,
  ) {}

  /** Queues `namespace` unless it is terminating. */
  enqueue(namespace: string): void {
    if (this.stopped) return;
    this.queued.add(namespace);
    void this.drain();
  }

  stop(): void {
    this.stopped = true;
  }

  /** True when the namespace exists and is not being deleted. */
  active(namespace: string): boolean {
    const ns = this.namespaces.get(namespace);
    return ns !== undefined && !ns.metadata?.deletionTimestamp && (ns.status as { phase?: string } | undefined)?.phase !== 'Terminating';
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queued.size > 0 && !this.stopped) {
        const [namespace] = this.queued;
        this.queued.delete(namespace!);
        if (!this.active(namespace!)) continue;
        try {
          await this.ensure(namespace!);
          this.failures.delete(namespace!);
        } catch (err) {
          const n = (this.failures.get(namespace!) ?? 0) + 1;
          this.failures.set(namespace!, n);
          this.log.warn({ namespace, err: String(err), attempt: n }, 'sync failed; retrying');
          setTimeout(() => this.enqueue(namespace!), Math.min(30_000, 200 * 2 ** (n - 1))).unref();
        }
      }
    } finally {
      this.running = false;
    }
  }
}

/** Creates `object` at `path`; an object that appeared meanwhile is fine. */
export async function createIfMissing(api: ApiClient, collection: string, object: KubeObject): Promise<void> {
  try {
    await api.create(collection, object);
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
}

/** GETs `path`, undefined when missing. */
export async function getOrUndefined(api: ApiClient, path: string): Promise<KubeObject | undefined> {
  try {
    return await api.get(path);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}
