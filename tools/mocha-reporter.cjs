'use strict';
// The project's mocha reporter: mocha's Spec output, then a closing line `N passed, N failed`
// (CI reads it). Pending (skipped) tests are counted on a line of their own before it.
const Mocha = require('mocha/lib/mocha.cjs');

const { Spec } = Mocha.reporters;
const { EVENT_RUN_END } = Mocha.Runner.constants;

class KubernelReporter extends Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(EVENT_RUN_END, () => {
      const { passes = 0, failures = 0, pending = 0 } = this.stats;
      if (pending > 0) process.stdout.write(`${pending} pending\n`);
      process.stdout.write(`${passes} passed, ${failures} failed\n`);
    });
  }
}

module.exports = KubernelReporter;
