import { createMetrics, type Counter, type Gauge, type Histogram, type Registry } from '@kubernel/sdk';

/** The store's Prometheus metrics. */
export class StoreMetrics {
  /** Latency of store operations by operation and result. */
  readonly requests: Histogram<'operation' | 'result'>;
  /** Time from NATS storing an entry to the watch cache applying it (watch lag). */
  readonly watchDelivery: Histogram;
  readonly cacheRevision: Gauge;
  readonly cacheObjects: Gauge;
  readonly watchers: Gauge;
  readonly relists: Counter;
  readonly resumes: Counter;
  readonly connected: Gauge;

  constructor(registry: Registry) {
    const m = createMetrics(registry, 'store');
    this.requests = m.histogram({
      name: 'kubernel_store_request_duration_seconds',
      help: 'Latency of store operations.',
      labelNames: ['operation', 'result'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    });
    this.watchDelivery = m.histogram({
      name: 'kubernel_store_watch_delivery_seconds',
      help: 'Time from NATS storing an entry to the watch cache applying it.',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 1],
    });
    this.cacheRevision = m.gauge({ name: 'kubernel_store_watch_cache_revision', help: 'Revision the watch cache has applied.' });
    this.cacheObjects = m.gauge({ name: 'kubernel_store_watch_cache_objects', help: 'Keys held by the watch cache.' });
    this.watchers = m.gauge({ name: 'kubernel_store_watchers', help: 'Open watches served by the watch cache.' });
    this.relists = m.counter({ name: 'kubernel_store_watch_cache_relists_total', help: 'Times the watch cache re-read the bucket after a gap or consumer failure.' });
    this.resumes = m.counter({ name: 'kubernel_store_watch_cache_resumes_total', help: 'Times the watch cache restarted its stalled NATS consumer from its next revision.' });
    this.connected = m.gauge({ name: 'kubernel_store_nats_connected', help: '1 while connected to NATS.' });
  }
}
