'use strict';
// Tests run on the compiled output (tsc emits the decorator metadata inversify needs).
// Unit specs sit beside the code (`*.spec.ts`); end-to-end suites live in tests/ (`*.test.ts`).
module.exports = {
  spec: [
    'sdk/dist/**/*.spec.js',
    'core/dist/**/*.spec.js',
    'plugins/*/dist/**/*.spec.js',
    'tests/dist/**/*.test.js',
  ],
  reporter: './tools/mocha-reporter.cjs',
  require: ['./tools/mocha-exit-watchdog.cjs'],
  timeout: 20000,
  'enable-source-maps': true,
};
