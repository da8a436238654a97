import { readFileSync } from 'node:fs';

/** What the Kubernetes Go types say of one field (tools/gen-k8s-go-facts.mjs). */
export interface FieldFacts {
  /** A pointer: present means set, even when zero. */
  readonly pointer?: boolean;
  /** `omitempty`: a non-pointer zero value means absent. */
  readonly omitempty?: boolean;
  readonly collection?: 'list' | 'map';
  /** `merge`, `retainKeys` or both, comma-separated. */
  readonly patchStrategy?: string;
  readonly patchMergeKey?: string;
  /** An integer field (not a list or map of them): its width in bits. */
  readonly int?: 32 | 64;
}

type Facts = Readonly<Record<string, Readonly<Record<string, FieldFacts>>>>;

let facts: Facts | undefined;

/** The facts of every field, keyed by Go type (`k8s.io.api.apps.v1.DeploymentSpec`) and JSON name. */
export function goFacts(): Facts {
  facts ??= JSON.parse(readFileSync(new URL('../../generated/k8s-go-facts.json', import.meta.url), 'utf8')) as Facts;
  return facts;
}

/** The Go type name of an OpenAPI definition name (`io.k8s.api.core.v1.Pod` -> `k8s.io.api.core.v1.Pod`). */
export function goTypeOf(definition: string): string {
  return definition.replace(/^io\.k8s\./, 'k8s.io.');
}
