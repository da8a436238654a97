// Generates core/generated/k8s-go-facts.json from the Kubernetes 1.32 Go API types (fetched by
// scripts/fetch-k8s-protos.sh into core/generated/go): for every struct field, keyed by the
// protobuf message name (`k8s.io.api.apps.v1.DeploymentSpec`) and JSON field name, whether it is a
// pointer, whether it is omitempty, and its strategic-merge-patch strategy and merge key. The API
// server uses them to read protobuf bodies as Go would (zero values of non-pointer omitempty
// fields are absent) and to apply strategic merge patches with the types' own merge keys.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'core/generated/go');
const out = join(root, 'core/generated/k8s-go-facts.json');
if (!existsSync(src)) {
  console.error('gen-k8s-go-facts: core/generated/go is missing; run scripts/fetch-k8s-protos.sh');
  process.exit(1);
}
if (existsSync(out) && statSync(out).mtimeMs > statSync(fileURLToPath(import.meta.url)).mtimeMs && statSync(out).mtimeMs > statSync(join(root, 'core/generated/proto/SOURCES')).mtimeMs) process.exit(0);

function files(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.go') ? [p] : [];
  });
}

const FIELD = /^\s*(\w+)\s+(\*?)(\[\]|map\[[^\]]+\])?\*?([\w.]+)\s+`([^`]*)`/;
const tag = (tags, name) => new RegExp(`${name}:"([^"]*)"`).exec(tags)?.[1];
const facts = {};
let count = 0;
for (const file of files(src)) {
  if (file.includes('/testing/')) continue;
  const pkg = relative(src, dirname(file)).replaceAll('/', '.');
  let struct;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const start = /^type (\w+) struct \{/.exec(line);
    if (start) {
      struct = `${pkg}.${start[1]}`;
      continue;
    }
    if (struct && /^\}/.test(line)) {
      struct = undefined;
      continue;
    }
    if (!struct) continue;
    const m = FIELD.exec(line);
    if (!m) continue;
    const tags = m[5];
    const json = tag(tags, 'json');
    if (json === undefined) continue;
    const [name, ...opts] = json.split(',');
    if (!name || name === '-') continue;
    const f = {};
    if (m[2] === '*') f.pointer = true;
    if (opts.includes('omitempty')) f.omitempty = true;
    if (m[3]) f.collection = m[3].startsWith('map') ? 'map' : 'list';
    else if (/^u?int(32|64)?$/.test(m[4])) f.int = m[4].endsWith('32') ? 32 : 64;
    const strategy = tag(tags, 'patchStrategy');
    if (strategy) f.patchStrategy = strategy;
    const key = tag(tags, 'patchMergeKey');
    if (key) f.patchMergeKey = key;
    (facts[struct] ??= {})[name] = f;
    count++;
  }
}
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(facts));
console.error(`gen-k8s-go-facts: ${count} fields of ${Object.keys(facts).length} types -> ${relative(root, out)}`);
