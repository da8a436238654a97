// Kubernel's own ESLint rules. `import-boundary` keeps the microkernel's arrows pointing one way:
//   plugins -> @kubernel/sdk only; core -> sdk, never a plugin; sdk -> nothing of Kubernel's.
// A file's package is found from its nearest package.json, so the rule needs no path
// configuration and works the same on fixtures.
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, resolve } from 'node:path';

const packageCache = new Map();

/** The name of the package that owns `file` (nearest package.json), and its directory. */
function owningPackage(file) {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    if (packageCache.has(dir)) return packageCache.get(dir);
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      const info = { name: JSON.parse(readFileSync(manifest, 'utf8')).name ?? '', dir };
      packageCache.set(dir, info);
      return info;
    }
    if (dirname(dir) === dir) return { name: '', dir };
  }
}

/** What kind of Kubernel package a name is: 'sdk', 'core', 'plugin', 'other-kubernel' or 'external'. */
function classify(name) {
  if (name === '@kubernel/sdk') return 'sdk';
  if (name === '@kubernel/core') return 'core';
  if (name.startsWith('@kubernel/plugin-')) return 'plugin';
  if (name.startsWith('@kubernel/')) return 'other-kubernel';
  return 'external';
}

function packageNameOf(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

const builtins = new Set(builtinModules);

/** Why `from` (a classified package) may not import `target`, or undefined when it may. */
function violation(fromKind, fromName, targetKind, targetName) {
  if (fromName === targetName) return undefined;
  switch (fromKind) {
    case 'plugin':
      if (targetKind === 'sdk' || targetKind === 'external') return undefined;
      return `plugin ${fromName} may import only @kubernel/sdk of Kubernel's packages, not ${targetName}`;
    case 'core':
      if (targetKind === 'plugin') return `core must not import plugin ${targetName}: load plugins by name from a distribution`;
      return undefined;
    case 'sdk':
      if (targetKind === 'core' || targetKind === 'plugin' || targetKind === 'other-kubernel') return `the SDK must not import ${targetName}: it is the bottom of the dependency graph`;
      return undefined;
    default:
      return undefined;
  }
}

const importBoundary = {
  meta: {
    type: 'problem',
    docs: { description: 'Plugins import only @kubernel/sdk; core never imports a plugin; the SDK imports neither.' },
    schema: [],
    messages: { boundary: '{{reason}} (import boundary)' },
  },
  create(context) {
    const file = context.filename ?? context.getFilename();
    const own = owningPackage(resolve(file));
    const ownKind = classify(own.name);
    if (ownKind === 'external' || ownKind === 'other-kubernel') return {};

    function check(node, source) {
      if (!source || typeof source.value !== 'string') return;
      const spec = source.value;
      let targetName;
      if (spec.startsWith('.') || spec.startsWith('/')) {
        const target = owningPackage(join(resolve(dirname(resolve(file)), spec), 'x'));
        if (target.dir === own.dir) return;
        const reason = `${own.name} must not reach outside its package with the relative import "${spec}"` +
          (target.name ? ` (into ${target.name}); import it by package name, if the boundary allows it at all` : '');
        context.report({ node, messageId: 'boundary', data: { reason } });
        return;
      } else if (spec.startsWith('node:') || builtins.has(spec)) {
        return;
      } else {
        targetName = packageNameOf(spec);
      }
      const reason = violation(ownKind, own.name, classify(targetName), targetName);
      if (reason) context.report({ node, messageId: 'boundary', data: { reason } });
    }

    return {
      ImportDeclaration: (node) => check(node, node.source),
      ExportNamedDeclaration: (node) => check(node, node.source),
      ExportAllDeclaration: (node) => check(node, node.source),
      ImportExpression: (node) => check(node, node.source),
      TSImportEqualsDeclaration: (node) => check(node, node.moduleReference?.expression),
    };
  },
};

export default { meta: { name: 'eslint-plugin-kubernel' }, rules: { 'import-boundary': importBoundary } };
