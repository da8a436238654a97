/**
 * ImageLocality (Kubernetes `pkg/scheduler/framework/plugins/imagelocality`): a Score plugin
 * that favours nodes that already have the pod's container images. Each image present on the
 * node counts for its size scaled by its spread (the share of the cluster's nodes that have it,
 * which keeps pods from piling onto the few nodes that have an image); the sum over the init and
 * regular containers is clamped to [23MB, 1000MB x containers] and mapped linearly onto 0-100.
 *
 * Image names are matched in every spelling of the same reference: `busybox`,
 * `busybox:latest`, `library/busybox:latest` and `docker.io/library/busybox:latest` are one image.
 *
 * @module
 */
import { defineSchedulerPlugin, MAX_NODE_SCORE, type FrameworkHandle, type FrameworkPlugin, type KubeObject, type NodeInfo, type SchedulerPluginFactory } from '@kubernel/sdk';

/** The plugin's name in profiles. */
const NAME = 'ImageLocality';
const PRE_SCORE_KEY = 'PreScore' + NAME;

const MB = 1024 * 1024;
/** Below this sum of (scaled) image sizes a node scores 0. */
export const MIN_THRESHOLD = 23 * MB;
/** Per container, the sum of (scaled) image sizes at which a node scores 100. */
export const MAX_CONTAINER_THRESHOLD = 1000 * MB;

const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';

/** Kubernetes' normalizedImageName: appends `:latest` when the name has no tag (nor digest). */
export function normalizedImageName(name: string): string {
  return name.lastIndexOf(':') <= name.lastIndexOf('/') ? `${name}:latest` : name;
}

/**
 * The names under which a node may report the image `image` refers to, the most likely first:
 * Kubernetes' normalized name, the fully qualified reference (`docker.io/library/busybox:latest`)
 * and, for Docker Hub, its familiar forms (`busybox:latest`, `library/busybox:latest`); with a
 * digest, also the repository digest form (`docker.io/library/busybox@sha256:...`).
 */
export function imageNameCandidates(image: string): string[] {
  const out: string[] = [];
  const add = (n: string): void => {
    if (!out.includes(n)) out.push(n);
  };
  add(normalizedImageName(image));
  let rest = image;
  let digest = '';
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at);
    rest = rest.slice(0, at);
  }
  let tag = '';
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon);
    rest = rest.slice(0, colon);
  }
  if (rest === '') return out;
  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      domain = first === LEGACY_DEFAULT_DOMAIN ? DEFAULT_DOMAIN : first;
      path = rest.slice(slash + 1);
    }
  }
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_REPO_PREFIX + path;
  if (tag === '' && digest === '') tag = ':latest';
  const suffixes = digest !== '' && tag !== '' ? [tag + digest, digest, tag] : [tag + digest];
  for (const suffix of suffixes) {
    add(`${domain}/${path}${suffix}`);
    if (domain === DEFAULT_DOMAIN) {
      const familiar = path.startsWith(OFFICIAL_REPO_PREFIX) ? path.slice(OFFICIAL_REPO_PREFIX.length) : path;
      add(`${familiar}${suffix}`);
      add(`${path}${suffix}`);
    }
  }
  return out;
}

/** Kubernetes' scaledImageScore: the image's size times the share of nodes that have it. */
export function scaledImageScore(size: number, numNodes: number, totalNumNodes: number): number {
  return Math.trunc(size * (numNodes / totalNumNodes));
}

/** Kubernetes' calculatePriority: the summed image score mapped onto 0-100 for `numContainers` containers. */
export function calculatePriority(sumScores: number, numContainers: number): number {
  const maxThreshold = MAX_CONTAINER_THRESHOLD * numContainers;
  if (maxThreshold <= MIN_THRESHOLD) return 0;
  if (sumScores < MIN_THRESHOLD) sumScores = MIN_THRESHOLD;
  else if (sumScores > maxThreshold) sumScores = maxThreshold;
  return Math.trunc((MAX_NODE_SCORE * (sumScores - MIN_THRESHOLD)) / (maxThreshold - MIN_THRESHOLD));
}

/** What PreScore computes: each container's candidate image names, and the counts. */
interface PreScoreState {
  readonly images: readonly (readonly string[])[];
  readonly numContainers: number;
  readonly totalNumNodes: number;
}

type Container = { image?: unknown };

function preScoreState(pod: KubeObject, totalNumNodes: number): PreScoreState {
  const spec = (pod.spec ?? {}) as { containers?: Container[]; initContainers?: Container[] };
  const containers = [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
  return {
    images: containers.map((c) => (typeof c.image === 'string' && c.image !== '' ? imageNameCandidates(c.image) : [])),
    numContainers: containers.length,
    totalNumNodes,
  };
}

/** Kubernetes' sumImageScores over the containers' images present on the node. */
function sumImageScores(s: PreScoreState, nodeInfo: NodeInfo): number {
  const states = nodeInfo.imageStates;
  if (states.size === 0) return 0;
  let sum = 0;
  for (let i = 0; i < s.images.length; i++) {
    const names = s.images[i]!;
    for (let j = 0; j < names.length; j++) {
      const st = states.get(names[j]!);
      if (st) {
        sum += scaledImageScore(st.size, st.numNodes, s.totalNumNodes);
        break;
      }
    }
  }
  return sum;
}

/** Makes an ImageLocality plugin; the cluster's node count comes from `handle`'s snapshot. */
export function createImageLocality(handle: FrameworkHandle): FrameworkPlugin {
  const totalNodes = (nodes: readonly NodeInfo[]): number => {
    const total = handle.snapshot().list().length;
    return total > 0 ? total : nodes.length;
  };
  return {
    name: NAME,
    preScore(state, pod, _podInfo, nodes) {
      state.write(PRE_SCORE_KEY, preScoreState(pod, totalNodes(nodes)));
      return undefined;
    },
    score(state, pod, _podInfo, nodeInfo) {
      const s = state.read<PreScoreState>(PRE_SCORE_KEY) ?? preScoreState(pod, totalNodes([nodeInfo]));
      return calculatePriority(sumImageScores(s, nodeInfo), s.numContainers);
    },
  };
}

/** The ImageLocality factory (PreScore, Score; takes no args). */
export const imageLocalityFactory: SchedulerPluginFactory = {
  name: NAME,
  create: (_args, handle) => createImageLocality(handle),
};

/** The ImageLocality plugin (id `scheduler-image-locality`). */
export const imageLocalityPlugin = defineSchedulerPlugin({
  id: 'scheduler-image-locality',
  version: '0.1.0',
  description: "ImageLocality: prefers nodes that already have the pod's container images, weighted by image size and spread.",
  factory: imageLocalityFactory,
});
