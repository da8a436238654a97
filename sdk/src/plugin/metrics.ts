import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What every metric needs: a Prometheus name, help text and the label names it uses. */
export interface MetricOptions<L extends string> {
  /** Prometheus metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`), for example `scheduler_schedule_attempts_total`. */
  readonly name: string;
  /** One line saying what is measured, shown by `/metrics`. */
  readonly help: string;
  /** The label names observations carry. */
  readonly labelNames?: readonly L[];
  /**
   * A metric every plugin of the process may share (the SDK's own `workqueue_*` and
   * `controller_runtime_*`, labelled by controller): any owner asking for it with the same type
   * and label names gets the same metric. Plugin-specific metrics leave this unset.
   */
  readonly shared?: boolean;
}

/** Options of a histogram: {@link MetricOptions} plus its bucket upper bounds. */
export interface HistogramOptions<L extends string> extends MetricOptions<L> {
  /** Upper bounds of the buckets, ascending; prom-client's defaults when absent. */
  readonly buckets?: readonly number[];
}

/**
 * A plugin's view of the process's Prometheus registry (served at `/metrics`).
 *
 * Creating a metric is idempotent for its owner: a plugin that is restarted and asks again for the
 * same name and type gets the same metric back, with its values. A name owned by another plugin,
 * or asked for with another type, throws.
 */
export interface Metrics {
  /** A monotonically increasing counter; by convention its name ends in `_total`. */
  counter<L extends string = string>(options: MetricOptions<L>): Counter<L>;
  /** A value that goes up and down. */
  gauge<L extends string = string>(options: MetricOptions<L>): Gauge<L>;
  /** A distribution of observations in buckets; by convention seconds, with `_seconds` in the name. */
  histogram<L extends string = string>(options: HistogramOptions<L>): Histogram<L>;
}

type Kind = 'counter' | 'gauge' | 'histogram';
interface Owned {
  readonly owner: string;
  readonly kind: Kind;
  readonly metric: unknown;
}
const owners = new WeakMap<Registry, Map<string, Owned>>();

/**
 * Creates the {@link Metrics} view through which `owner` (a plugin id, or `kernel`) registers its
 * metrics in `registry`. Used by hosts (the kernel and the test kit); plugins receive it on their
 * handle.
 */
export function createMetrics(registry: Registry, owner: string): Metrics {
  let table = owners.get(registry);
  if (!table) {
    table = new Map();
    owners.set(registry, table);
  }
  const byName = table;
  function get<M>(kind: Kind, name: string, make: () => M, shared = false, labels: readonly string[] = []): M {
    const me = shared ? `shared:${labels.join(',')}` : owner;
    const existing = byName.get(name);
    if (existing) {
      if (existing.owner !== me) {
        throw new Error(`metric "${name}" is already registered by "${existing.owner}"`);
      }
      if (existing.kind !== kind) {
        throw new Error(`metric "${name}" is already registered as a ${existing.kind}, not a ${kind}`);
      }
      return existing.metric as M;
    }
    const metric = make();
    byName.set(name, { owner: me, kind, metric });
    return metric;
  }
  return {
    counter: (o) =>
      get('counter', o.name, () => new Counter({ name: o.name, help: o.help, labelNames: o.labelNames ?? [], registers: [registry] }), o.shared, o.labelNames),
    gauge: (o) =>
      get('gauge', o.name, () => new Gauge({ name: o.name, help: o.help, labelNames: o.labelNames ?? [], registers: [registry] }), o.shared, o.labelNames),
    histogram: (o) =>
      get('histogram', o.name, () =>
        new Histogram({
          name: o.name,
          help: o.help,
          labelNames: o.labelNames ?? [],
          registers: [registry],
          ...(o.buckets ? { buckets: [...o.buckets] } : {}),
        }),
        o.shared,
        o.labelNames,
      ),
  };
}
