// ESLint flat config. `kubernel/import-boundary` enforces the microkernel's dependency arrows
// (see tools/eslint-plugin-kubernel.js); tests/src/lint-boundary.test.ts proves it on fixtures.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';
import kubernel from './tools/eslint-plugin-kubernel.js';

export default tseslint.config(
  {
    ignores: ['**/node_modules/**', '**/dist/**', 'coverage/**', 'tests/fixtures/lint/**'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node, ...globals.mocha } },
    plugins: { kubernel },
    rules: {
      'kubernel/import-boundary': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      'no-console': 'error',
    },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['tools/**', 'scripts/**', 'bench/**', 'tests/fixtures/**'],
    rules: { 'no-console': 'off' },
  },
);
