import { expect } from 'chai';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURES, KUBERNEL_BIN, ROOT } from './helpers/paths.js';
import { startTestNats } from './helpers/nats.js';
import { run, start, type Started } from './helpers/processes.js';

const kubernel = (...args: string[]) => run(process.execPath, [KUBERNEL_BIN, ...args]);
const fixture = (name: string): string => join(FIXTURES, 'distributions', `${name}.yaml`);

describe('kubernel command', () => {
  describe('version, usage and exit codes', () => {
    it('prints versions as text and JSON', async () => {
      const text = await kubernel('version');
      expect(text.code).to.equal(0);
      expect(text.stdout).to.match(/^Kubernel v\d+\.\d+\.\d+ \(SDK 1\.0\.0, Node\.js v\d+/);
      const json = JSON.parse((await kubernel('version', '-o', 'json')).stdout) as Record<string, string>;
      expect(json).to.include({ sdk: '1.0.0' });
    });

    it('exits 2 on usage errors, 0 on --help', async () => {
      expect((await kubernel('no-such-command')).code).to.equal(2);
      expect((await kubernel('up', '--no-such-flag')).code).to.equal(2);
      expect((await kubernel('plugins', 'validate')).code).to.equal(2);
      expect((await kubernel('version', '-o', 'yaml')).code).to.equal(2);
      const help = await kubernel('up', '--help');
      expect(help.code).to.equal(0);
      expect(help.stdout).to.contain('--data-dir <dir>').and.contain('--distribution <file>');
    });
  });

  describe('plugins validate | list', () => {
    it('validates the shipped distribution', async () => {
      const r = await kubernel('plugins', 'validate', join(ROOT, 'distributions/default.yaml'));
      expect(r.stderr).to.equal('');
      expect(r.code).to.equal(0);
      expect(r.stdout).to.match(/^distribution default \(.*default\.yaml\) is valid/);
    });

    it('exits 1 naming each bad config field by path', async () => {
      const r = await kubernel('plugins', 'validate', fixture('bad-config'));
      expect(r.code).to.equal(1);
      expect(r.stderr).to.contain('error: [agent] plugin "configurable": config/port: must be <= 65535');
      expect(r.stderr).to.contain('config/weights/1/name: is required');
    });

    it('exits 1 on a distribution file that is not valid, naming the field', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'kubernel-cli-'));
      try {
        const r = await kubernel('plugins', 'validate', join(dir, 'missing.yaml'));
        expect(r.code).to.equal(1);
        expect(r.stderr).to.match(/cannot read the file/);
        const bad = await kubernel('plugins', 'validate', join(FIXTURES, 'plugins/family/package.json'));
        expect(bad.code).to.equal(1);
        expect(bad.stderr).to.contain('/apiVersion: is required');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('lists plugins with kind, version and status, as a table and as JSON', async () => {
      const table = await kubernel('plugins', 'list', fixture('good'));
      expect(table.code).to.equal(0);
      const lines = table.stdout.trim().split('\n');
      expect(lines[0]).to.match(/^ROLE\s+ID\s+KIND\s+VERSION\s+PACKAGE\s+STATUS$/);
      expect(lines).to.have.length(5);
      expect(lines[3]).to.match(/^agent\s+configurable\s+scheduler-plugin\s+2\.1\.0\s+\.\.\/plugins\/family\s+ok$/);
      expect(lines[4]).to.match(/^agent\s+crashy\s+controller\s+1\.0\.0\s+\S+\s+disabled$/);
      const json = JSON.parse((await kubernel('plugins', 'list', fixture('bad-packages'), '-o', 'json', '--role', 'server')).stdout) as {
        plugins: Array<{ id: string; status: string; errors: string[] }>;
      };
      expect(json.plugins.map((p) => p.status)).to.deep.equal(Array(7).fill('error'));
      expect(json.plugins[2]!.errors).to.deep.equal(['plugin "future": sdk: requires @kubernel/sdk ^2.0.0, but this kernel provides 1.0.0']);
    });
  });

  describe('up / server / agent', function () {
    this.timeout(30_000);
    let dataDir: string;
    let proc: Started | undefined;
    const up = (distribution: string, ...extra: string[]): Started =>
      (proc = start(process.execPath, [KUBERNEL_BIN, 'up', '--data-dir', dataDir, '--distribution', distribution, '--healthz-bind-address', '127.0.0.1:0', '--api-port', '0', ...extra]));
    const get = async (url: string): Promise<{ status: number; body: string }> => {
      const res = await fetch(url);
      return { status: res.status, body: await res.text() };
    };

    beforeEach(() => {
      dataDir = mkdtempSync(join(tmpdir(), 'kubernel-up-'));
    });
    afterEach(async () => {
      if (proc && proc.child.exitCode === null) {
        proc.child.kill('SIGKILL');
        await proc.exited;
      }
      proc = undefined;
      rmSync(dataDir, { recursive: true, force: true });
    });

    it('runs both roles, shows progress, serves health and metrics, and stops cleanly on SIGTERM', async () => {
      const p = up(fixture('good'));
      const [, address] = await p.waitFor(/ready; health at http:\/\/([\d.:]+)\/readyz/);
      expect(p.stdout()).to.contain('starting admission plugin echo').and.contain('✓ configurable running');
      expect(p.stdout()).to.match(/✓ store ready \(embedded nats-server 2\.10\.\d+ on nats:\/\/127\.0\.0\.1:\d+, fsync per write; revision 0, 0 object\(s\)\)/);
      const ready = await get(`http://${address}/readyz?verbose`);
      expect(ready.status).to.equal(200);
      expect(ready.body).to.contain('[+]store ok').and.contain('[+]plugin/ticker ok').and.contain('[+]plugin/configurable ok');
      const metrics = await get(`http://${address}/metrics`);
      expect(metrics.body).to.match(/fixture_ticks_total \d+/);
      expect(metrics.body).to.contain('kubernel_plugin_state{plugin="ticker",kind="controller",state="running"} 1');
      expect(metrics.body).to.contain('process_resident_memory_bytes');
      p.child.kill('SIGTERM');
      const done = await p.exited;
      expect(done.code).to.equal(0);
      expect(done.stdout).to.contain('received SIGTERM').and.contain('stopped');
      const logs = done.stderr.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; plugin?: string });
      expect(logs.some((l) => l.plugin === 'echo' && l.msg === 'echo closed')).to.equal(true);
    });

    it('restarts a crashing plugin with back-off while the other keeps running', async () => {
      const p = up(fixture('crash'), '--log-level', 'info');
      const [, address] = await p.waitFor(/ready; health at http:\/\/([\d.:]+)\/readyz/);
      const ticks = async (): Promise<number> => Number(/fixture_ticks_total (\d+)/.exec((await get(`http://${address}/metrics`)).body)![1]);
      const restarts = async (): Promise<number> =>
        Number(/kubernel_plugin_restarts_total\{plugin="crashy",kind="controller"\} (\d+)/.exec((await get(`http://${address}/metrics`)).body)?.[1] ?? 0);
      const before = await ticks();
      for (let i = 0; i < 100 && (await restarts()) < 3; i++) await new Promise((r) => setTimeout(r, 50));
      expect(await restarts()).to.be.greaterThanOrEqual(3);
      expect(await ticks()).to.be.greaterThan(before);
      const backoffs = p
        .stderr()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { plugin?: string; backoffMs?: number })
        .filter((l) => l.plugin === 'crashy' && l.backoffMs !== undefined)
        .map((l) => l.backoffMs);
      expect(backoffs.slice(0, 3)).to.deep.equal([50, 100, 200]);
      p.child.kill('SIGINT');
      expect((await p.exited).code).to.equal(0);
    });

    it('finishes shutdown within the stop timeout when a plugin ignores abort, naming it', async () => {
      const p = up(fixture('stubborn'));
      await p.waitFor(/ready; health at/);
      p.child.kill('SIGTERM');
      const done = await p.exited;
      expect(done.code).to.equal(1);
      expect(done.stderr).to.contain('plugin \\"stubborn\\" did not stop within the 1s stop timeout after abort; abandoned');
      expect(done.stderr).to.contain('abandoned plugin(s) that ignored abort: stubborn');
    });

    it('fails fast with a clear message when a plugin fails at start', async () => {
      const done = await up(fixture('broken')).exited;
      expect(done.code).to.equal(1);
      expect(done.stderr).to.contain('error: start-up failed: plugin "broken" start() failed: cannot reach the API server at https://127.0.0.1:1');
    });

    it('refuses to start a distribution with invalid plugins, listing them', async () => {
      const done = await up(fixture('bad-config')).exited;
      expect(done.code).to.equal(1);
      expect(done.stderr).to.contain('cannot load the distribution\'s plugins').and.contain('config/port: must be <= 65535');
    });

    it('runs the control plane on an external NATS server with `kubernel server --nats`', async () => {
      const nats = await startTestNats({ token: 'sesame' });
      try {
        writeFileSync(join(dataDir, 'token'), 'sesame\n');
        proc = start(process.execPath, [
          KUBERNEL_BIN, 'server', '--data-dir', dataDir, '--distribution', fixture('good'), '--healthz-bind-address', '127.0.0.1:0', '--api-port', '0',
          '--nats', nats.server.url, '--nats-token-file', join(dataDir, 'token'),
        ]);
        await proc.waitFor(/ready; health at/);
        expect(proc.stdout()).to.contain(`connecting to NATS at ${nats.server.url}`).and.contain('✓ store ready (external NATS');
        expect(existsSync(join(dataDir, 'nats'))).to.equal(false);
        proc.child.kill('SIGTERM');
        expect((await proc.exited).code).to.equal(0);
      } finally {
        await nats.dispose();
      }
    });

    it('runs only the agent role with `kubernel agent`', async () => {
      proc = start(process.execPath, [KUBERNEL_BIN, 'agent', '--data-dir', dataDir, '--distribution', fixture('good'), '--healthz-bind-address', '127.0.0.1:0']);
      await proc.waitFor(/ready; health at/);
      expect(proc.stdout()).to.contain('roles agent;').and.contain('1 plugin(s)').and.contain('configurable').and.not.contain('store');
      proc.child.kill('SIGTERM');
      expect((await proc.exited).code).to.equal(0);
    });
  });
});
