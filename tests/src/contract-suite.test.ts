import { expect } from 'chai';
import { join } from 'node:path';
import { FIXTURES, ROOT } from './helpers/paths.js';
import { run } from './helpers/processes.js';

interface MochaJson {
  stats: { passes: number; failures: number };
  passes: Array<{ fullTitle: string }>;
  failures: Array<{ fullTitle: string; err: { message: string } }>;
}

/** Runs one fixture spec file under mocha (JSON reporter) in a child process. */
async function runSpec(file: string): Promise<MochaJson> {
  const r = await run(process.execPath, [join(ROOT, 'node_modules/mocha/bin/mocha.js'), '--no-config', '--reporter', 'json', join(FIXTURES, 'contract', file)]);
  return JSON.parse(r.stdout) as MochaJson;
}

describe('published plugin contract suite (run as a third party would)', function () {
  this.timeout(60_000);

  it('passes well-behaved plugins of both shapes', async () => {
    const result = await runSpec('family.spec.js');
    expect(result.failures.map((f) => `${f.fullTitle}: ${f.err.message}`)).to.deep.equal([]);
    expect(result.stats.passes).to.equal(15);
  });

  it('fails each defective plugin on exactly the check it breaks', async () => {
    const result = await runSpec('defective.spec.js');
    const failed = result.failures.map((f) => f.fullTitle);
    expect(failed).to.have.members([
      'plugin contract: leaky (controller) leaves no timers, sockets or other handles behind after it stops',
      'plugin contract: lax-config (controller) validates its config, naming the bad field',
      'plugin contract: never-ready (controller) starts, becomes ready, runs until aborted and stops in time',
      'plugin contract: never-ready (controller) leaves no timers, sockets or other handles behind after it stops',
      'plugin contract: never-ready (controller) starts again on the same data dir and metrics, as supervision restarts it',
      'plugin contract: early-exit (scheduler-plugin) starts, becomes ready, runs until aborted and stops in time',
    ]);
    const message = (title: string): string => result.failures.find((f) => f.fullTitle.includes(title))!.err.message;
    expect(message('leaky (controller) leaves')).to.contain('still active after stop: Timeout x1');
    expect(message('lax-config')).to.contain('accepted an unknown top-level config field');
    expect(message('early-exit')).to.contain('start() resolved before its signal aborted');
  });
});
