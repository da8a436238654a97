// Generates core/generated/k8s-schemas.json: OpenAPI (v2-style) definitions of the Kubernetes
// API types, derived at build time from the `kubernetes-types` declarations with the TypeScript
// compiler API. Interfaces become object schemas (descriptions from their doc comments, required
// fields from non-optional properties), `number | string` becomes int-or-string, and the types'
// apiVersion/kind literals give `x-kubernetes-group-version-kind`. The API server validates with
// these schemas (ajv) and serves them at /openapi/v2 and /openapi/v3.
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const pkgDir = dirname(require.resolve('kubernetes-types/package.json'));
const out = join(root, 'core/generated/k8s-schemas.json');
const version = JSON.parse(await import('node:fs').then((fs) => fs.readFileSync(join(pkgDir, 'package.json'), 'utf8'))).version;

if (existsSync(out) && statSync(out).mtimeMs > statSync(fileURLToPath(import.meta.url)).mtimeMs && statSync(out).mtimeMs > statSync(join(pkgDir, 'package.json')).mtimeMs) {
  process.exit(0);
}

/** Definition-name prefix of a kubernetes-types module path (without .d.ts). */
function prefixOf(module) {
  if (module === 'meta/v1') return 'io.k8s.apimachinery.pkg.apis.meta.v1';
  if (module === 'api/resource') return 'io.k8s.apimachinery.pkg.api.resource';
  if (module === 'runtime') return 'io.k8s.apimachinery.pkg.runtime';
  if (module === 'version') return 'io.k8s.apimachinery.pkg.version';
  if (module.startsWith('apiextensions/')) return `io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.${module.split('/')[1]}`;
  return `io.k8s.api.${module.replace('/', '.')}`;
}

function files(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return files(p);
    return p.endsWith('.d.ts') ? [p] : [];
  });
}

const sources = files(pkgDir);
const program = ts.createProgram(sources, { noEmit: true, skipLibCheck: true });
const checker = program.getTypeChecker();
const definitions = {};

function moduleOf(node) {
  return relative(pkgDir, node.getSourceFile().fileName).replace(/\.d\.ts$/, '');
}

function docOf(node) {
  const docs = ts.getJSDocCommentsAndTags(node).filter(ts.isJSDoc);
  return docs.map((d) => (typeof d.comment === 'string' ? d.comment : ts.getTextOfJSDocComment(d.comment) ?? '')).join('\n').trim();
}

function refName(decl) {
  return `${prefixOf(moduleOf(decl))}.${decl.name.text}`;
}

function schemaOf(typeNode) {
  if (!typeNode) return {};
  switch (typeNode.kind) {
    case ts.SyntaxKind.StringKeyword:
      return { type: 'string' };
    case ts.SyntaxKind.NumberKeyword:
      return { type: 'number' };
    case ts.SyntaxKind.BooleanKeyword:
      return { type: 'boolean' };
    case ts.SyntaxKind.AnyKeyword:
    case ts.SyntaxKind.UnknownKeyword:
    case ts.SyntaxKind.ObjectKeyword:
      return { 'x-kubernetes-preserve-unknown-fields': true };
    case ts.SyntaxKind.LiteralType:
      return ts.isStringLiteral(typeNode.literal) ? { type: 'string' } : {};
    case ts.SyntaxKind.ArrayType:
      return { type: 'array', items: schemaOf(typeNode.elementType) };
    case ts.SyntaxKind.ParenthesizedType:
      return schemaOf(typeNode.type);
    case ts.SyntaxKind.UnionType: {
      const kinds = typeNode.types.map((t) => t.kind).sort();
      if (kinds.length === 2 && kinds.includes(ts.SyntaxKind.NumberKeyword) && kinds.includes(ts.SyntaxKind.StringKeyword)) {
        return { type: 'string', format: 'int-or-string', 'x-kubernetes-int-or-string': true };
      }
      return { 'x-kubernetes-preserve-unknown-fields': true };
    }
    case ts.SyntaxKind.TypeLiteral: {
      const index = typeNode.members.find(ts.isIndexSignatureDeclaration);
      if (index) return { type: 'object', additionalProperties: schemaOf(index.type) };
      return { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
    }
    case ts.SyntaxKind.TypeReference: {
      const name = typeNode.typeName.getText();
      if (name === 'Array' && typeNode.typeArguments?.length === 1) return { type: 'array', items: schemaOf(typeNode.typeArguments[0]) };
      let symbol = checker.getSymbolAtLocation(typeNode.typeName);
      if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
      const decl = symbol?.declarations?.[0];
      if (decl && (ts.isInterfaceDeclaration(decl) || ts.isTypeAliasDeclaration(decl))) return { $ref: `#/definitions/${refName(decl)}` };
      return {};
    }
    default:
      return {};
  }
}

for (const sf of program.getSourceFiles()) {
  if (!sf.fileName.startsWith(pkgDir)) continue;
  const module = relative(pkgDir, sf.fileName).replace(/\.d\.ts$/, '');
  for (const stmt of sf.statements) {
    if (ts.isInterfaceDeclaration(stmt)) {
      const properties = {};
      const required = [];
      let apiVersion;
      let kind;
      for (const m of stmt.members) {
        if (!ts.isPropertySignature(m) || !m.name) continue;
        const name = m.name.getText().replace(/^"|"$/g, '');
        const schema = schemaOf(m.type);
        const description = docOf(m);
        if (schema.$ref) properties[name] = description ? { allOf: [schema], description } : schema;
        else properties[name] = description ? { ...schema, description } : schema;
        if (!m.questionToken) required.push(name);
        if (name === 'apiVersion' && m.type && ts.isLiteralTypeNode(m.type)) apiVersion = m.type.literal.text;
        if (name === 'kind' && m.type && ts.isLiteralTypeNode(m.type)) kind = m.type.literal.text;
      }
      const def = { type: 'object', properties };
      const description = docOf(stmt);
      if (description) def.description = description;
      if (required.length > 0) def.required = required;
      if (apiVersion && kind) {
        const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
        def['x-kubernetes-group-version-kind'] = [{ group, kind, version }];
      }
      definitions[`${prefixOf(module)}.${stmt.name.text}`] = def;
    } else if (ts.isTypeAliasDeclaration(stmt)) {
      const schema = schemaOf(stmt.type);
      const description = docOf(stmt);
      if (stmt.name.text === 'Time' || stmt.name.text === 'MicroTime') schema.format = 'date-time';
      if (stmt.name.text === 'Quantity') Object.assign(schema, { type: 'string', format: 'quantity' });
      definitions[`${prefixOf(module)}.${stmt.name.text}`] = description ? { ...schema, description } : schema;
    }
  }
}

// kubernetes-types drops fields of structs embedded inline in Go: admissionregistration's Rule
// (resources, scope) is inline in RuleWithOperations and NamedRuleWithOperations.
const RULE_FIELDS = {
  resources: { type: 'array', items: { type: 'string' }, description: "Resources is a list of resources this rule applies to. '*' means all resources; 'pods/*' all subresources of pods; '*/scale' scale of all resources." },
  scope: { type: 'string', description: 'Scope specifies the scope of this rule: "Cluster", "Namespaced" or "*" (the default).' },
};
for (const [name, def] of Object.entries(definitions)) {
  if (/^io\.k8s\.api\.admissionregistration\.v[^.]+\.(Named)?RuleWithOperations$/.test(name)) Object.assign(def.properties, RULE_FIELDS);
}

// A RawExtension holds any JSON (ControllerRevision.data, ...): keep what it carries.
const raw = definitions['io.k8s.apimachinery.pkg.runtime.RawExtension'];
if (raw) raw['x-kubernetes-preserve-unknown-fields'] = true;

mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify({ source: `kubernetes-types@${version}`, definitions }));
console.error(`gen-k8s-schemas: ${Object.keys(definitions).length} definitions from kubernetes-types@${version} -> ${relative(root, out)}`);
