import { AdmissionDenied, definePlugin, delay, isAlreadyExists, untilAborted, type Admission, type AdmissionRequest, type ApiClient, type ApiObject, type Informer, type KubeObject, type Logger } from '@kubernel/sdk';
import { cachedOrLive, objectRef, type Fields } from './common.js';

/** Where PriorityClasses live (scheduling.k8s.io/v1, cluster-scoped). */
export const PRIORITY_CLASSES_PATH = '/apis/scheduling.k8s.io/v1/priorityclasses';

/** The highest value a PriorityClass not named `system-…` may have (`scheduling.HighestUserDefinablePriority`). */
export const HIGHEST_USER_DEFINABLE_PRIORITY = 1_000_000_000;
/** The value of `system-cluster-critical` (`scheduling.SystemCriticalPriority`). */
export const SYSTEM_CRITICAL_PRIORITY = 2 * HIGHEST_USER_DEFINABLE_PRIORITY;
/** The priority of a pod without a class when no class is the global default (`DefaultPriorityWhenNoDefaultClassExists`). */
export const DEFAULT_PRIORITY = 0;
/** The prefix reserved for the built-in classes. */
export const SYSTEM_PRIORITY_CLASS_PREFIX = 'system-';
export const SYSTEM_CLUSTER_CRITICAL = 'system-cluster-critical';
export const SYSTEM_NODE_CRITICAL = 'system-node-critical';

/** The preemption policy Kubernetes defaults a PriorityClass (and a class-less pod) to. */
const PREEMPT_LOWER_PRIORITY = 'PreemptLowerPriority';

const SYSTEM_CLASSES: ReadonlyArray<{ name: string; value: number; description: string }> = [
  { name: SYSTEM_NODE_CRITICAL, value: SYSTEM_CRITICAL_PRIORITY + 1000, description: 'Used for system critical pods that must not be moved from their current node.' },
  { name: SYSTEM_CLUSTER_CRITICAL, value: SYSTEM_CRITICAL_PRIORITY, description: 'Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.' },
];

/** The built-in PriorityClasses the API server bootstraps (fresh copies, with the API's defaults filled in). */
export function systemPriorityClasses(): KubeObject[] {
  return SYSTEM_CLASSES.map((c) => ({
    apiVersion: 'scheduling.k8s.io/v1',
    kind: 'PriorityClass',
    metadata: { name: c.name },
    value: c.value,
    description: c.description,
    preemptionPolicy: PREEMPT_LOWER_PRIORITY,
  }));
}

/**
 * Why a class named with the `system-` prefix is not one of the built-in ones (its name is
 * unknown, or its value or globalDefault differ), or undefined when it is one of them
 * (`IsKnownSystemPriorityClass`).
 */
export function systemClassProblem(name: string, value: unknown, globalDefault: boolean): string | undefined {
  const known = SYSTEM_CLASSES.find((c) => c.name === name);
  if (!known) return `${name} is not a known system priority class`;
  if (value !== known.value) return `value of ${name} PriorityClass must be ${known.value}`;
  if (globalDefault) return `globalDefault of ${name} PriorityClass must be false`;
  return undefined;
}

const isObject = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v);
const nameOf = (o: KubeObject | ApiObject | undefined): string => (isObject(o?.metadata) && typeof o.metadata.name === 'string' ? o.metadata.name : '');
const valueOf = (pc: KubeObject): number => (typeof pc.value === 'number' ? pc.value : 0);

/**
 * The global default PriorityClass: of several marked `globalDefault` (a race can leave more than
 * one), the one with the lowest value, as Kubernetes picks.
 */
export function defaultPriorityClass(classes: readonly KubeObject[]): KubeObject | undefined {
  let found: KubeObject | undefined;
  for (const pc of classes) {
    if (pc.globalDefault !== true) continue;
    if (!found || valueOf(found) > valueOf(pc)) found = pc;
  }
  return found;
}

/** What the admission step reads PriorityClasses from. */
export interface PriorityClassSource {
  /** Every known class (the informer's cache). */
  list(): KubeObject[];
  /** The class named `name`, from the cache or, on a miss, from the API server; undefined when it does not exist. */
  get(name: string): Promise<KubeObject | undefined>;
}

/** A {@link PriorityClassSource} over a shared informer, with a live GET when the cache misses. */
export function informerSource(classes: Informer, api?: ApiClient): PriorityClassSource {
  return {
    list: () => classes.list(),
    get: (name) => cachedOrLive(classes, api, name, `${PRIORITY_CLASSES_PATH}/${encodeURIComponent(name)}`),
  };
}

/** What a pod's priority resolves to. */
interface Resolution {
  /** The class name to record ('' when no class applies). */
  readonly className: string;
  readonly priority: number;
  /** Undefined when the class does not say (Kubernetes then leaves the pod's own). */
  readonly preemptionPolicy: string | undefined;
}

/** `pods "web" is forbidden: …` / `priorityclasses.scheduling.k8s.io "x" is forbidden: …` (admission.NewForbidden). */
function forbidden(r: AdmissionRequest, message: string): AdmissionDenied {
  const resource = r.resource.group ? `${r.resource.resource}.${r.resource.group}` : r.resource.resource;
  const name = r.name || nameOf(r.object);
  return new AdmissionDenied(`${name ? objectRef(resource, name) : resource} is forbidden: ${message}`, 403);
}

/** A 422 naming one field, as the API's validation answers (`Pod "web" is invalid: spec: Forbidden: …`). */
function invalid(r: AdmissionRequest, field: string, reason: 'FieldValueForbidden' | 'FieldValueInvalid', message: string): AdmissionDenied {
  const kind = r.kind.group ? `${r.kind.kind}.${r.kind.group}` : r.kind.kind;
  return new AdmissionDenied(`${kind} "${r.name || nameOf(r.object)}" is invalid: ${field}: ${message}`, 422, [{ field, message, reason }]);
}

const POD_UPDATE_FORBIDDEN =
  'Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)';

const isPods = (r: AdmissionRequest): boolean => r.resource.group === '' && r.resource.resource === 'pods';
const isPriorityClasses = (r: AdmissionRequest): boolean => r.resource.group === 'scheduling.k8s.io' && r.resource.resource === 'priorityclasses';

/** Absent and `""` both mean "no class" (Go's empty string, omitted in JSON). */
const classNameOf = (spec: Fields): unknown => (spec.priorityClassName === undefined || spec.priorityClassName === null ? '' : spec.priorityClassName);

/**
 * Priority (Kubernetes' `Priority` admission plugin, plugin/pkg/admission/priority):
 *
 * - Pod CREATE (mutating): resolves `spec.priorityClassName` to a PriorityClass (the built-in
 *   `system-cluster-critical` and `system-node-critical` resolve even when not stored) and sets
 *   `spec.priority` to its value and `spec.preemptionPolicy` to its policy; an unknown class is
 *   refused (403 `no PriorityClass with name <x> was found`). Without a class name the global
 *   default class applies (the lowest-valued one if several) and its name is recorded; with no
 *   default class the priority is 0 and the policy PreemptLowerPriority.
 * - Pod UPDATE: priority and preemption policy the request dropped are carried over from the stored
 *   pod (mutating); a change of `spec.priority`, `spec.priorityClassName` or
 *   `spec.preemptionPolicy` is refused with 422, as Kubernetes' pod update validation does.
 * - PriorityClass CREATE/UPDATE (validating): only one class may be the global default (403 `PriorityClass
 *   <x> is already marked as default. Only one default can exist`); names with the `system-` prefix are
 *   reserved for the built-in classes with their exact value (422, Kubernetes' PriorityClass validation).
 *
 * Kubernel's API server defaults a pod's `spec.priority` to 0 and `spec.preemptionPolicy` to
 * PreemptLowerPriority before mutating admission runs (Kubernetes leaves both unset for this
 * plugin to fill). A pod carrying exactly those values may therefore not have asked for them, so
 * they are overwritten by what the class computes instead of refused; only a pod that explicitly
 * asks for another priority (non-zero) or preemption policy (Never) different from its class's is
 * refused. Likewise, on UPDATE a priority of 0 (policy PreemptLowerPriority) where the stored pod
 * has another value is taken as unset and the stored value carried over.
 */
export function priorityAdmission(classes: PriorityClassSource): Admission {
  const resolve = async (r: AdmissionRequest, name: string): Promise<Resolution> => {
    if (name === '') {
      const dpc = defaultPriorityClass(classes.list());
      if (!dpc) return { className: '', priority: DEFAULT_PRIORITY, preemptionPolicy: PREEMPT_LOWER_PRIORITY };
      return { className: nameOf(dpc), priority: valueOf(dpc), preemptionPolicy: typeof dpc.preemptionPolicy === 'string' ? dpc.preemptionPolicy : undefined };
    }
    const pc = (await classes.get(name)) ?? systemPriorityClasses().find((c) => nameOf(c) === name);
    if (!pc) throw forbidden(r, `no PriorityClass with name ${name} was found`);
    return { className: name, priority: valueOf(pc), preemptionPolicy: typeof pc.preemptionPolicy === 'string' ? pc.preemptionPolicy : undefined };
  };

  const admitCreate = async (r: AdmissionRequest, spec: Fields): Promise<void> => {
    const name = classNameOf(spec);
    if (typeof name !== 'string') throw invalid(r, 'spec.priorityClassName', 'FieldValueInvalid', `Invalid value: ${JSON.stringify(name)}: must be a string`);
    const { className, priority, preemptionPolicy } = await resolve(r, name);
    if (className !== '') spec.priorityClassName = className;
    const given: unknown = spec.priority;
    // 0 may be the API server's default rather than the client's (see above): overwritten, not refused.
    if (given !== undefined && given !== null && given !== priority && given !== 0) {
      throw forbidden(r, `the integer value of priority (${String(given)}) must not be provided in pod spec; priority admission controller computed ${priority} from the given PriorityClass name`);
    }
    const givenPolicy: unknown = spec.preemptionPolicy;
    if (preemptionPolicy !== undefined && givenPolicy !== undefined && givenPolicy !== null && givenPolicy !== preemptionPolicy && givenPolicy !== PREEMPT_LOWER_PRIORITY) {
      throw forbidden(r, `the string value of PreemptionPolicy (${String(givenPolicy)}) must not be provided in pod spec; priority admission controller computed ${preemptionPolicy} from the given PriorityClass name`);
    }
    spec.priority = priority;
    if (preemptionPolicy !== undefined) spec.preemptionPolicy = preemptionPolicy;
  };

  /** Carries over what the update dropped (or what the API server's defaults stand in for). */
  const admitUpdate = (spec: Fields, old: Fields): void => {
    if (typeof old.priority === 'number' && (spec.priority === undefined || spec.priority === null || (spec.priority === 0 && old.priority !== 0))) spec.priority = old.priority;
    if (typeof old.preemptionPolicy === 'string' && (spec.preemptionPolicy === undefined || spec.preemptionPolicy === null || (spec.preemptionPolicy === PREEMPT_LOWER_PRIORITY && old.preemptionPolicy !== PREEMPT_LOWER_PRIORITY))) {
      spec.preemptionPolicy = old.preemptionPolicy;
    }
  };

  const validatePodUpdate = (r: AdmissionRequest, spec: Fields, old: Fields): void => {
    // Unset and the API server's default compare equal (a pod stored before defaulting, say).
    const priority = (s: Fields): unknown => s.priority ?? DEFAULT_PRIORITY;
    const policy = (s: Fields): unknown => s.preemptionPolicy ?? PREEMPT_LOWER_PRIORITY;
    if (classNameOf(spec) !== classNameOf(old) || priority(spec) !== priority(old) || policy(spec) !== policy(old)) {
      throw invalid(r, 'spec', 'FieldValueForbidden', POD_UPDATE_FORBIDDEN);
    }
  };

  const validateClass = (r: AdmissionRequest, pc: Fields): void => {
    const name = r.name || nameOf(pc);
    if (name.startsWith(SYSTEM_PRIORITY_CLASS_PREFIX)) {
      const problem = systemClassProblem(name, pc.value, pc.globalDefault === true);
      if (problem) throw invalid(r, 'metadata.name', 'FieldValueForbidden', `Forbidden: priority class names with '${SYSTEM_PRIORITY_CLASS_PREFIX}' prefix are reserved for system use only. error: ${problem}`);
    }
    if (pc.globalDefault !== true) return;
    const dpc = defaultPriorityClass(classes.list());
    if (dpc && (r.operation === 'CREATE' || nameOf(dpc) !== name)) {
      throw forbidden(r, `PriorityClass ${nameOf(dpc)} is already marked as default. Only one default can exist`);
    }
  };

  const specs = (r: AdmissionRequest): { spec?: Fields; old?: Fields } => {
    const spec = isObject(r.object) && isObject(r.object.spec) ? r.object.spec : undefined;
    const old = isObject(r.oldObject) && isObject(r.oldObject.spec) ? r.oldObject.spec : undefined;
    return { ...(spec ? { spec } : {}), ...(old ? { old } : {}) };
  };

  return {
    handles: (r) => r.subresource === '' && (r.operation === 'CREATE' || r.operation === 'UPDATE') && (isPods(r) || isPriorityClasses(r)),
    async admit(r) {
      if (!isPods(r)) return;
      const { spec, old } = specs(r);
      if (!spec) return;
      if (r.operation === 'CREATE') await admitCreate(r, spec);
      else if (old) admitUpdate(spec, old);
    },
    async validate(r) {
      if (isPriorityClasses(r)) {
        if (isObject(r.object)) validateClass(r, r.object);
        return;
      }
      if (r.operation !== 'UPDATE') return;
      const { spec, old } = specs(r);
      if (spec && old) validatePodUpdate(r, spec, old);
    },
  };
}

/**
 * Creates the built-in PriorityClasses that are missing, as Kubernetes' API server does after it
 * starts (retrying until each exists; one created meanwhile by someone else counts as done).
 * Returns once they all exist or `signal` aborts.
 */
export async function ensureSystemPriorityClasses(api: ApiClient, classes: PriorityClassSource, signal: AbortSignal, log?: Pick<Logger, 'info' | 'warn'>): Promise<void> {
  let backoff = 1000;
  for (;;) {
    let pending = 0;
    for (const pc of systemPriorityClasses()) {
      if (signal.aborted) return;
      const name = nameOf(pc);
      try {
        if (await classes.get(name)) continue;
        await api.create(PRIORITY_CLASSES_PATH, pc);
        log?.info({ priorityClass: name, value: pc.value }, 'created system PriorityClass');
      } catch (err) {
        if (isAlreadyExists(err)) continue;
        if (signal.aborted) return;
        pending++;
        log?.warn({ priorityClass: name, err: String(err) }, 'cannot create system PriorityClass yet; retrying');
      }
    }
    if (pending === 0) return;
    if (!(await delay(backoff, signal))) return;
    backoff = Math.min(backoff * 2, 30_000);
  }
}

/** The `priority` admission plugin. */
export const priorityPlugin = definePlugin({
  id: 'priority',
  kind: 'admission',
  version: '0.1.0',
  sdk: '^1.0.0',
  description: 'Priority: pods get spec.priority and spec.preemptionPolicy from their PriorityClass (or the global default); one default class at most; creates the system classes.',
  configSchema: { type: 'object', additionalProperties: false, properties: {} },
  async start(handle, _config, signal) {
    const informer = handle.api.informer<KubeObject>(PRIORITY_CLASSES_PATH);
    informer.run();
    await informer.waitForSync(signal);
    const classes = informerSource(informer, handle.api);
    handle.provide(priorityAdmission(classes));
    await ensureSystemPriorityClasses(handle.api, classes, signal, handle.logger);
    await untilAborted(signal);
  },
});
