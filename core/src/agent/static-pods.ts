/**
 * Static pods: pods the agent runs from local sources rather than the API server, as the kubelet's
 * `staticPodPath` (a manifest directory) and `staticPodURL` (an HTTP URL) sources do. Each one is
 * given the kubelet's defaults (name suffixed with the node name, namespace `default`, a UID
 * hashed from its content, node and source, the `kubernetes.io/config.*` annotations, a toleration
 * of every NoExecute taint) and is reflected in the API as a *mirror pod* (annotation
 * `kubernetes.io/config.mirror`, owned by the Node), which carries its status.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const CONFIG_SOURCE_ANNOTATION = 'kubernetes.io/config.source';
export const CONFIG_HASH_ANNOTATION = 'kubernetes.io/config.hash';
export const CONFIG_SEEN_ANNOTATION = 'kubernetes.io/config.seen';
export const CONFIG_MIRROR_ANNOTATION = 'kubernetes.io/config.mirror';

/** A pod as the sources read it (loosely typed: the worker reads the fields it needs). */
export interface StaticPod {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly uid: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly annotations: Readonly<Record<string, string>>;
    readonly ownerReferences?: readonly Record<string, unknown>[];
  };
  readonly spec: Record<string, unknown> & { readonly nodeName: string; readonly containers: readonly { readonly name: string }[] };
  readonly status?: Record<string, unknown>;
}

/** What one read of the sources found: the pods, and a message per manifest that could not be used. */
export interface StaticPodRead {
  readonly pods: StaticPod[];
  readonly errors: string[];
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** JSON with sorted keys: the same pod always hashes the same. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isObject(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

/**
 * Applies the kubelet's defaults to a manifest's pod (`applyDefaults`): the name gets `-<node>`,
 * the namespace defaults to `default`, the UID is an MD5 of the pod, node and source (stable
 * while the manifest is unchanged), the config annotations are set, `spec.nodeName` is the node,
 * and the pod tolerates every NoExecute taint.
 *
 * @throws {Error} naming the problem when the document is not a usable Pod.
 */
export function staticPodDefaults(raw: unknown, nodeName: string, source: 'file' | 'http', origin: string, seen: Date = new Date()): StaticPod {
  if (!isObject(raw)) throw new Error('not an object');
  if (raw.kind !== undefined && raw.kind !== 'Pod') throw new Error(`kind is ${JSON.stringify(raw.kind)}, expected Pod`);
  if (raw.apiVersion !== undefined && raw.apiVersion !== 'v1') throw new Error(`apiVersion is ${JSON.stringify(raw.apiVersion)}, expected v1`);
  const meta = isObject(raw.metadata) ? raw.metadata : {};
  const spec = isObject(raw.spec) ? raw.spec : undefined;
  if (typeof meta.name !== 'string' || meta.name === '') throw new Error('metadata.name: Required value');
  if (!spec || !Array.isArray(spec.containers) || spec.containers.length === 0) throw new Error('spec.containers: Required value');
  for (const [i, c] of (spec.containers as unknown[]).entries()) {
    if (!isObject(c) || typeof c.name !== 'string' || c.name === '') throw new Error(`spec.containers[${i}].name: Required value`);
  }
  const hash = createHash('md5').update(canonical(raw)).update(`host:${nodeName}`).update(`${source}:${origin}`).digest('hex');
  const uid = typeof meta.uid === 'string' && meta.uid !== '' ? meta.uid : hash;
  const tolerations = Array.isArray(spec.tolerations) ? [...(spec.tolerations as unknown[])] : [];
  if (!tolerations.some((t) => isObject(t) && t.operator === 'Exists' && t.key === undefined && t.effect === 'NoExecute')) tolerations.push({ operator: 'Exists', effect: 'NoExecute' });
  const annotations = isObject(meta.annotations) ? (meta.annotations as Record<string, string>) : {};
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      ...(meta as Json),
      name: `${meta.name}-${nodeName}`,
      namespace: typeof meta.namespace === 'string' && meta.namespace !== '' ? meta.namespace : 'default',
      uid,
      annotations: { ...annotations, [CONFIG_HASH_ANNOTATION]: uid, [CONFIG_SOURCE_ANNOTATION]: source, [CONFIG_SEEN_ANNOTATION]: seen.toISOString() },
    },
    spec: { ...(spec as Json), nodeName, tolerations } as unknown as StaticPod['spec'],
  };
}

/** The documents of a manifest (YAML or JSON; a Pod, or a List/PodList of pods). */
function documents(text: string): unknown[] {
  const docs = parseAllDocuments(text);
  const out: unknown[] = [];
  for (const d of docs) {
    if (d.errors.length > 0) throw new Error(d.errors[0]!.message);
    const v: unknown = d.toJS();
    if (v === null || v === undefined) continue;
    if (isObject(v) && (v.kind === 'List' || v.kind === 'PodList') && Array.isArray(v.items)) out.push(...(v.items as unknown[]));
    else out.push(v);
  }
  return out;
}

/** Reads every manifest of a directory (dotfiles ignored, as the kubelet); a missing directory has none. */
export async function readManifestDir(dir: string, nodeName: string): Promise<StaticPodRead> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => !n.startsWith('.')).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { pods: [], errors: [] };
    throw err;
  }
  const pods: StaticPod[] = [];
  const errors: string[] = [];
  for (const name of names) {
    const path = join(dir, name);
    try {
      const docs = documents(await readFile(path, 'utf8'));
      if (docs.length !== 1) throw new Error(`a manifest file holds one pod, found ${docs.length}`);
      pods.push(staticPodDefaults(docs[0], nodeName, 'file', path));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EISDIR') continue;
      errors.push(`${path}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { pods, errors };
}

/** Reads the pods served at `url` (a Pod, or a List/PodList), as the kubelet's HTTP source. */
export async function readManifestUrl(url: string, nodeName: string, headers: Readonly<Record<string, string>> = {}, signal?: AbortSignal): Promise<StaticPodRead> {
  const res = await fetch(url, { headers, ...(signal ? { signal } : {}) });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  const docs = documents(await res.text());
  const pods: StaticPod[] = [];
  const errors: string[] = [];
  for (const [i, d] of docs.entries()) {
    try {
      pods.push(staticPodDefaults(d, nodeName, 'http', `${url}#${i}`));
    } catch (err) {
      errors.push(`${url} (item ${i}): ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return { pods, errors };
}

/** The mirror pod of a static pod: the same pod with the mirror annotation, owned by the Node. */
export function mirrorPodOf(pod: StaticPod, node: { readonly name: string; readonly uid?: string }): Record<string, unknown> {
  const { uid: _uid, ...meta } = pod.metadata;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      ...meta,
      annotations: { ...pod.metadata.annotations, [CONFIG_MIRROR_ANNOTATION]: pod.metadata.annotations[CONFIG_HASH_ANNOTATION] ?? pod.metadata.uid },
      ...(node.uid ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: node.name, uid: node.uid, controller: true }] } : {}),
    },
    spec: pod.spec,
  };
}

/** Whether an API pod is a mirror pod, and of which static pod (its config hash). */
export function mirrorHash(pod: { readonly metadata?: { readonly annotations?: Readonly<Record<string, string>> } }): string | undefined {
  return pod.metadata?.annotations?.[CONFIG_MIRROR_ANNOTATION];
}
