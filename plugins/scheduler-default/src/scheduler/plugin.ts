/**
 * The `default-scheduler` plugin (kind `scheduler`): builds one framework per profile from the
 * `scheduler-plugin` providers of its process, and runs the scheduler while this process holds
 * the `kube-system/kube-scheduler` Lease.
 *
 * @module
 */
import {
  definePlugin,
  EventRecorder,
  LEADER_ELECTION_SCHEMA,
  runWhileLeading,
  type LeaderElectionConfig,
  type SchedulerPluginFactory,
  type SchedulerProfile,
} from '@kubernel/sdk';
import { ProfileFramework } from './runtime.js';
import { Scheduler, type SchedulerMetrics } from './scheduler.js';

/** The plugin id. */
export const SCHEDULER_ID = 'default-scheduler';

/** The scheduler's configuration (KubeSchedulerConfiguration's fields that apply). */
export interface SchedulerConfig {
  readonly profiles: readonly SchedulerProfile[];
  /** 0 (adaptive, the default) to 100. */
  readonly percentageOfNodesToScore: number;
  readonly podInitialBackoffSeconds: number;
  readonly podMaxBackoffSeconds: number;
  readonly leaderElection: LeaderElectionConfig;
}

const PLUGIN_REF = { type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string', minLength: 1 }, weight: { type: 'integer', minimum: 1, maximum: 100 } } };
const PLUGIN_SET = {
  type: 'object',
  additionalProperties: false,
  properties: {
    enabled: { type: 'array', items: PLUGIN_REF },
    disabled: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string', minLength: 1 } } } },
  },
};
const POINTS = ['multiPoint', 'preEnqueue', 'queueSort', 'preFilter', 'filter', 'postFilter', 'preScore', 'score', 'reserve', 'permit', 'preBind', 'bind', 'postBind'];

/** The JSON Schema of {@link SchedulerConfig}. */
export const SCHEDULER_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    profiles: {
      type: 'array',
      minItems: 1,
      default: [{ schedulerName: 'default-scheduler' }],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['schedulerName'],
        properties: {
          schedulerName: { type: 'string', minLength: 1 },
          percentageOfNodesToScore: { type: 'integer', minimum: 0, maximum: 100 },
          plugins: { type: 'object', additionalProperties: false, properties: Object.fromEntries(POINTS.map((p) => [p, PLUGIN_SET])) },
          pluginConfig: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string', minLength: 1 }, args: { type: 'object' } } } },
        },
      },
    },
    percentageOfNodesToScore: { type: 'integer', minimum: 0, maximum: 100, default: 0, description: '0: adaptive (50% minus 1% per 125 nodes, at least 5%).' },
    podInitialBackoffSeconds: { type: 'number', exclusiveMinimum: 0, default: 1 },
    podMaxBackoffSeconds: { type: 'number', exclusiveMinimum: 0, default: 10 },
    leaderElection: { ...LEADER_ELECTION_SCHEMA, default: { leaseName: 'kube-scheduler' }, properties: { ...LEADER_ELECTION_SCHEMA.properties, leaseName: { type: 'string', default: 'kube-scheduler' } } },
  },
} as const;

/** The default scheduler plugin. */
export const schedulerPlugin = definePlugin({
  id: SCHEDULER_ID,
  kind: 'scheduler',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'The default scheduler: a queue with back-off and event-driven requeueing, a cache with assumed pods, profiles of scheduling framework plugins, binding in the background, leader election.',
  configSchema: SCHEDULER_CONFIG_SCHEMA,
  async start(handle, config: SchedulerConfig, signal) {
    const names = new Set<string>();
    for (const p of config.profiles) {
      if (names.has(p.schedulerName)) throw new Error(`config/profiles: schedulerName ${p.schedulerName} appears twice`);
      names.add(p.schedulerName);
    }
    // Every scheduler-plugin of this process, by framework name.
    const factories = new Map<string, SchedulerPluginFactory>();
    for (const [id, f] of handle.extensions('scheduler-plugin')) {
      if (factories.has(f.name)) throw new Error(`two scheduler-plugins provide ${f.name} (the second is ${id})`);
      factories.set(f.name, f);
    }
    const pods = handle.api.informer('/api/v1/pods');
    const nodes = handle.api.informer('/api/v1/nodes');
    const namespaces = handle.api.informer('/api/v1/namespaces');
    for (const i of [pods, nodes, namespaces]) i.run();
    await Promise.all([pods.waitForSync(signal), nodes.waitForSync(signal), namespaces.waitForSync(signal)]);
    const m = handle.metrics;
    const metrics: SchedulerMetrics = {
      attempts: m.counter({ name: 'scheduler_schedule_attempts_total', help: 'Number of attempts to schedule pods, by the result. \'unschedulable\' means a pod could not be scheduled, while \'error\' means an internal scheduler problem.', labelNames: ['result', 'profile'] }),
      attemptDuration: m.histogram({ name: 'scheduler_scheduling_attempt_duration_seconds', help: 'Scheduling attempt latency in seconds (scheduling algorithm + binding)', labelNames: ['result', 'profile'], buckets: [0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5] }),
      pending: m.gauge({ name: 'scheduler_pending_pods', help: 'Number of pending pods, by the queue type.', labelNames: ['queue'] }),
      bindings: m.histogram({ name: 'scheduler_binding_duration_seconds', help: 'Binding latency in seconds.', labelNames: ['result'], buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5] }),
    };
    // Fail fast on a bad profile (before waiting for leadership).
    const recorder = new EventRecorder({ api: handle.api, component: 'default-scheduler', logger: handle.logger, signal });
    const build = async (scheduler: { current?: Scheduler }): Promise<Map<string, ProfileFramework>> => {
      const frameworks = new Map<string, ProfileFramework>();
      for (const profile of config.profiles) {
        frameworks.set(
          profile.schedulerName,
          await ProfileFramework.create(profile, factories, {
            api: handle.api,
            logger: handle.logger.child({ profile: profile.schedulerName }),
            snapshot: () => scheduler.current!.currentSnapshot(),
            nominator: { nominatedPodsForNode: (n) => scheduler.current?.nominatedPodsForNode(n) ?? [] },
            namespaceLabels: (ns) => namespaces.get(ns)?.metadata?.labels ?? (namespaces.get(ns) ? {} : undefined),
            event: (o, t, r, msg) => recorder.event(o, t, r, msg),
            percentageOfNodesToScore: config.percentageOfNodesToScore,
          }),
        );
      }
      return frameworks;
    };
    await build({});
    handle.ready();
    await runWhileLeading(handle.api, config.leaderElection, handle.logger, signal, async (leading) => {
      const holder: { current?: Scheduler } = {};
      const frameworks = await build(holder);
      holder.current = new Scheduler({ api: handle.api, logger: handle.logger, frameworks, pods, nodes, namespaces, metrics, recorder, initialBackoffMs: config.podInitialBackoffSeconds * 1000, maxBackoffMs: config.podMaxBackoffSeconds * 1000 });
      handle.logger.info({ profiles: [...frameworks.keys()], plugins: [...factories.keys()] }, 'scheduler started');
      await holder.current.run(leading);
    });
  },
});
