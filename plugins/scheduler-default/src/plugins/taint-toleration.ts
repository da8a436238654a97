/**
 * TaintToleration (Kubernetes `pkg/scheduler/framework/plugins/tainttoleration`):
 * - Filter: rejects a node with a `NoSchedule` or `NoExecute` taint the pod does not tolerate
 *   (`node(s) had untolerated taint {key: value}`, UnschedulableAndUnresolvable);
 * - PreScore/Score: counts the node's `PreferNoSchedule` taints the pod does not tolerate;
 * - NormalizeScore: Kubernetes' default normalization, reversed (fewer such taints, higher score).
 *
 * @module
 */
import {
  defaultNormalizeScore,
  defineSchedulerPlugin,
  MAX_NODE_SCORE,
  Status,
  toleratesTaint,
  type ClusterEventWithHint,
  type CycleState,
  type FrameworkPlugin,
  type KubeObject,
  type SchedulerPluginFactory,
  type Taint,
  type Toleration,
} from '@kubernel/sdk';

/** The plugin's name in profiles. */
const NAME = 'TaintToleration';
/** CycleState key of the PreScore state. */
const PRE_SCORE_KEY = 'PreScore' + NAME;

type Obj = Record<string, unknown>;
const NONE: readonly never[] = [];

function taintsOf(node: KubeObject | undefined): readonly Taint[] {
  return ((node?.spec as Obj | undefined)?.taints as readonly Taint[] | undefined) ?? NONE;
}

function tolerationsOf(pod: KubeObject): readonly Toleration[] {
  return ((pod.spec as Obj | undefined)?.tolerations as readonly Toleration[] | undefined) ?? NONE;
}

/** Kubernetes' `TolerationsTolerateTaint`: whether any of `tolerations` tolerates `taint`. */
function tolerated(tolerations: readonly Toleration[], taint: Taint): boolean {
  for (let i = 0; i < tolerations.length; i++) if (toleratesTaint(tolerations[i]!, taint)) return true;
  return false;
}

/**
 * The first `NoSchedule`/`NoExecute` taint of `taints` that no toleration tolerates (Kubernetes'
 * `FindMatchingUntoleratedTaint` with `DoNotScheduleTaintsFilterFunc`), or undefined.
 */
export function findUntoleratedDoNotScheduleTaint(taints: readonly Taint[], tolerations: readonly Toleration[]): Taint | undefined {
  for (let i = 0; i < taints.length; i++) {
    const taint = taints[i]!;
    if (taint.effect !== 'NoSchedule' && taint.effect !== 'NoExecute') continue;
    if (!tolerated(tolerations, taint)) return taint;
  }
  return undefined;
}

/** Kubernetes' `countIntolerableTaintsPreferNoSchedule`. */
export function countIntolerableTaintsPreferNoSchedule(taints: readonly Taint[], tolerations: readonly Toleration[]): number {
  let n = 0;
  for (let i = 0; i < taints.length; i++) {
    const taint = taints[i]!;
    if (taint.effect !== 'PreferNoSchedule') continue;
    if (!tolerated(tolerations, taint)) n++;
  }
  return n;
}

/** The tolerations that can tolerate a `PreferNoSchedule` taint (effect empty or `PreferNoSchedule`). */
export function tolerationsPreferNoSchedule(tolerations: readonly Toleration[]): Toleration[] {
  return tolerations.filter((t) => !t.effect || t.effect === 'PreferNoSchedule');
}

interface PreScoreState {
  readonly tolerations: readonly Toleration[];
}

/** The Filter reason for an untolerated taint, as Kubernetes words it. */
export function untoleratedTaintReason(taint: Taint): string {
  return `node(s) had untolerated taint {${taint.key}: ${taint.value ?? ''}}`;
}

/** A node added, or updated so that the pod now tolerates all its NoSchedule/NoExecute taints, may make it schedulable. */
const EVENTS: readonly ClusterEventWithHint[] = [
  {
    event: { resource: 'Node', actions: ['Add', 'UpdateNodeTaint', 'UpdateNodeLabel'] },
    hint: (pod, old, updated) => {
      if (!updated) return 'Queue';
      const tolerations = tolerationsOf(pod);
      const wasUntolerated = old ? findUntoleratedDoNotScheduleTaint(taintsOf(old), tolerations) !== undefined : true;
      const isUntolerated = findUntoleratedDoNotScheduleTaint(taintsOf(updated), tolerations) !== undefined;
      return wasUntolerated && !isUntolerated ? 'Queue' : 'QueueSkip';
    },
  },
];

function createTaintToleration(): FrameworkPlugin {
  return {
    name: NAME,
    filter(_state, pod, _podInfo, nodeInfo) {
      const taint = findUntoleratedDoNotScheduleTaint(taintsOf(nodeInfo.node), tolerationsOf(pod));
      return taint ? new Status('UnschedulableAndUnresolvable', [untoleratedTaintReason(taint)], NAME) : undefined;
    },
    preScore(state, pod) {
      state.write(PRE_SCORE_KEY, { tolerations: tolerationsPreferNoSchedule(tolerationsOf(pod)) } satisfies PreScoreState);
      return undefined;
    },
    score(state: CycleState, pod, _podInfo, nodeInfo) {
      const s = state.read<PreScoreState>(PRE_SCORE_KEY);
      const tolerations = s ? s.tolerations : tolerationsPreferNoSchedule(tolerationsOf(pod));
      return countIntolerableTaintsPreferNoSchedule(taintsOf(nodeInfo.node), tolerations);
    },
    normalizeScore(_state, _pod, scores) {
      defaultNormalizeScore(MAX_NODE_SCORE, true, scores);
      return undefined;
    },
    eventsToRegister: () => EVENTS,
  };
}

/** The TaintToleration factory (Filter, PreScore, Score; takes no args). */
export const taintTolerationFactory: SchedulerPluginFactory = {
  name: NAME,
  create: createTaintToleration,
};

/** The TaintToleration plugin (id `scheduler-taint-toleration`). */
export const taintTolerationPlugin = defineSchedulerPlugin({
  id: 'scheduler-taint-toleration',
  version: '0.1.0',
  description: 'TaintToleration: filters nodes by NoSchedule/NoExecute taints and prefers nodes with fewer untolerated PreferNoSchedule taints.',
  factory: taintTolerationFactory,
});
