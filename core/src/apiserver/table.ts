import type { Column, Obj, ResourceDef } from './resource.js';
import { age, col } from './builtin/columns.js';

const NAME: Column = { name: 'Name', type: 'string', format: 'name', description: 'Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names', priority: 0 };
const DEFAULT_COLUMNS: Column[] = [col('Age', 'CreationTimestamp is a timestamp representing the server time when this object was created.')];

/** True when the Accept header asks for a meta.k8s.io Table. */
export function wantsTable(accept: string | undefined): boolean {
  if (!accept) return false;
  return accept.split(',').some((part) => /as=Table/.test(part) && /g=meta\.k8s\.io/.test(part));
}

/** The columns of a resource's table (NAME first). */
export function columnsOf(def: ResourceDef): Column[] {
  return [NAME, ...(def.columns ?? DEFAULT_COLUMNS)];
}

function partialMetadata(o: Obj): Obj {
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata };
}

/** One table row for `o`. */
export function tableRow(def: ResourceDef, o: Obj, include: string): Obj {
  const cells = [o.metadata?.name ?? '', ...(def.row ? def.row(o) : [age(o)])];
  const row: Obj = { cells };
  if (include === 'Object') row.object = o;
  else if (include !== 'None') row.object = partialMetadata(o);
  return row;
}

/** A meta.k8s.io/v1 Table of `items`. */
export function toTable(def: ResourceDef, items: readonly Obj[], listMeta: Obj, include: string, withColumns = true): Obj {
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: listMeta,
    ...(withColumns ? { columnDefinitions: columnsOf(def) } : { columnDefinitions: null }),
    rows: items.map((o) => tableRow(def, o, include)),
  };
}
