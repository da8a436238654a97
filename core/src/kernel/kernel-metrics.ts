import { createMetrics, type Counter, type Gauge, type Histogram, type Registry } from '@kubernel/sdk';
import type { PluginState } from './plugin-status.js';
import { PLUGIN_STATES } from './plugin-status.js';

/** The kernel's own Prometheus metrics, about the plugins it supervises. */
export class KernelMetrics {
  /** 1 for the state each plugin is in, 0 for the others. */
  readonly state: Gauge<'plugin' | 'kind' | 'state'>;
  /** Restarts after crashes, per plugin. */
  readonly restarts: Counter<'plugin' | 'kind'>;
  /** Time from an attempt's start to the plugin being ready. */
  readonly startDuration: Histogram<'plugin' | 'kind'>;

  constructor(registry: Registry) {
    const m = createMetrics(registry, 'kernel');
    this.state = m.gauge({ name: 'kubernel_plugin_state', help: 'Current supervision state of each plugin (1 = in this state).', labelNames: ['plugin', 'kind', 'state'] });
    this.restarts = m.counter({ name: 'kubernel_plugin_restarts_total', help: 'Restarts of a plugin after it crashed.', labelNames: ['plugin', 'kind'] });
    this.startDuration = m.histogram({
      name: 'kubernel_plugin_start_duration_seconds',
      help: 'Seconds from calling a plugin\'s start to it being ready.',
      labelNames: ['plugin', 'kind'],
      buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60],
    });
  }

  /** Records that `plugin` is now in `state`. */
  setState(plugin: string, kind: string, state: PluginState): void {
    for (const s of PLUGIN_STATES) this.state.set({ plugin, kind, state: s }, s === state ? 1 : 0);
  }
}
