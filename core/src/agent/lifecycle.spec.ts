import { expect } from 'chai';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { RuntimeError, type ExecSyncResponse } from '@kubernel/sdk';
import { MINIMUM_GRACE_PERIOD_SECONDS, formatPod, goQuote, runHandler, runPostStartHook, runPreStopHook, type HandlerContext } from './lifecycle.js';
import type { ExecSyncFn } from './probe-actions.js';

const SCALE = 0.02;
const enc = new TextEncoder();
const reply = (exitCode: number, stdout = '', stderr = ''): ExecSyncResponse => ({ stdout: enc.encode(stdout), stderr: enc.encode(stderr), exitCode });
const POD = { metadata: { name: 'web-0', namespace: 'default', uid: 'uid-1' } };
const WHERE = 'for Container "web" in Pod "web-0_default(uid-1)" failed - error:';

describe('agent/lifecycle', () => {
  let calls: { cmd: readonly string[]; timeout: number }[];
  let answer: (cmd: readonly string[]) => ExecSyncResponse | Error;
  const execSync: ExecSyncFn = async (_id, cmd, timeout) => {
    calls.push({ cmd, timeout });
    const a = answer(cmd);
    if (a instanceof Error) throw a;
    return a;
  };
  const ctx = (extra: Partial<HandlerContext> = {}): HandlerContext => ({ pod: POD, container: { name: 'web' }, containerId: 'c1', execSync, timeScale: SCALE, ...extra });

  beforeEach(() => {
    calls = [];
    answer = () => reply(0);
  });

  it('formats pods and quotes like Go', () => {
    expect(formatPod(POD)).to.equal('web-0_default(uid-1)');
    expect(goQuote('a"b\\c\nd\te\u0001')).to.equal('"a\\"b\\\\c\\nd\\te\\x01"');
  });

  describe('exec', () => {
    it('succeeds on exit 0 and passes the timeout on', async () => {
      expect(await runHandler({ exec: { command: ['touch', '/ready'] } }, ctx({ timeoutSeconds: 5 }))).to.deep.equal({ ok: true });
      expect(calls).to.deep.equal([{ cmd: ['touch', '/ready'], timeout: 5 * SCALE }]);
    });

    it('fails on a non-zero exit code or a timeout with the kubelet messages', async () => {
      answer = (cmd) => (cmd[0] === 'sh' ? reply(1, 'o', 'e') : new RuntimeError('DeadlineExceeded', 'deadline'));
      expect(await runHandler({ exec: { command: ['sh', '-c', 'exit 1'] } }, ctx())).to.deep.equal({
        ok: false,
        message: `Exec lifecycle hook ([sh -c exit 1]) ${WHERE} command 'sh -c exit 1' exited with 1: e, message: "oe"`,
      });
      expect(await runHandler({ exec: { command: ['sleep', '9'] } }, ctx())).to.deep.equal({
        ok: false,
        message: `Exec lifecycle hook ([sleep 9]) ${WHERE} command 'sleep 9' timed out, message: ""`,
      });
    });
  });

  describe('httpGet', () => {
    let server: http.Server;
    let port: number;
    let seen: { url?: string; agent?: string }[];
    before(async () => {
      server = http.createServer((req, res) => {
        seen.push({ url: req.url, agent: req.headers['user-agent'] });
        res.writeHead(500).end('the status is not checked');
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as AddressInfo).port;
    });
    beforeEach(() => {
      seen = [];
    });
    after(async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    });

    it('GETs the pod IP on a named port; only transport errors fail it', async () => {
      const c = ctx({ podIP: '127.0.0.1', container: { name: 'web', ports: [{ name: 'admin', containerPort: port }] } });
      expect(await runHandler({ httpGet: { path: '/hook', port: 'admin' } }, c)).to.deep.equal({ ok: true });
      expect(seen).to.deep.equal([{ url: '/hook', agent: 'kube-lifecycle/1.32' }]);

      const s = net.createServer();
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      const dead = (s.address() as AddressInfo).port;
      await new Promise<void>((r) => s.close(() => r()));
      expect(await runHandler({ httpGet: { path: '/hook', port: dead } }, c)).to.deep.equal({
        ok: false,
        message: `HTTP lifecycle hook (/hook) ${WHERE} Get "http://127.0.0.1:${dead}/hook": dial tcp 127.0.0.1:${dead}: connect: connection refused`,
      });
      const noIp = await runHandler({ httpGet: { path: '/hook', port: 80 } }, ctx());
      expect(noIp.ok).to.equal(false);
      expect(!noIp.ok && noIp.message).to.contain('failed to find networking container');
    });

    it('retries an HTTPS hook answered in plain HTTP over HTTP', async () => {
      const res = await runHandler({ httpGet: { path: '/tls', port, scheme: 'HTTPS', host: '127.0.0.1', httpHeaders: [{ name: 'Authorization', value: 'Bearer x' }] } }, ctx());
      expect(res).to.deep.equal({ ok: true });
      expect(seen.map((s) => s.url)).to.deep.equal(['/tls']);
    });
  });

  describe('sleep and invalid handlers', () => {
    it('sleeps, and fails when the container is stopped first', async () => {
      const t0 = Date.now();
      expect(await runHandler({ sleep: { seconds: 3 } }, ctx())).to.deep.equal({ ok: true });
      expect(Date.now() - t0).to.be.at.least(3 * 1000 * SCALE - 2);
      const abort = new AbortController();
      setTimeout(() => abort.abort(), 20);
      expect(await runHandler({ sleep: { seconds: 100 } }, ctx({ signal: abort.signal }))).to.deep.equal({
        ok: false,
        message: `Sleep lifecycle hook (100) ${WHERE} container terminated before sleep hook finished`,
      });
    });

    it('refuses a handler without a supported action', async () => {
      const res = await runHandler({ tcpSocket: { port: 80 } }, ctx());
      expect(res.ok).to.equal(false);
      expect(!res.ok && res.message).to.match(/^Cannot run handler: invalid handler: /);
    });
  });

  describe('postStart and preStop', () => {
    it('postStart: a failure yields the FailedPostStartHook event and the PostStartHookError reason', async () => {
      expect(await runPostStartHook({ exec: { command: ['true'] } }, ctx())).to.deep.equal({ ok: true });
      answer = () => reply(2);
      const res = await runPostStartHook({ exec: { command: ['false'] } }, ctx());
      expect(res).to.deep.equal({
        ok: false,
        reason: 'PostStartHookError',
        message: `Exec lifecycle hook ([false]) ${WHERE} command 'false' exited with 2: , message: ""`,
        event: { type: 'Warning', reason: 'FailedPostStartHook', message: 'PostStartHook failed' },
      });
    });

    it('preStop: the grace left after the hook goes to StopContainer', async () => {
      const done = await runPreStopHook({ sleep: { seconds: 1 } }, ctx(), 10);
      expect(done).to.deep.equal({ gracePeriodSeconds: 9, completed: true });
      answer = () => reply(1, '', 'nope');
      const failed = await runPreStopHook({ exec: { command: ['drain'] } }, ctx(), 10);
      expect(failed).to.deep.equal({
        gracePeriodSeconds: 10,
        completed: true,
        failure: { message: `Exec lifecycle hook ([drain]) ${WHERE} command 'drain' exited with 1: nope, message: "nope"`, event: { type: 'Warning', reason: 'FailedPreStopHook', message: 'PreStopHook failed' } },
      });
      expect(calls.at(-1)!.timeout).to.be.closeTo(10 * SCALE, 1e-9);
    });

    it('preStop: a hook outliving the grace period is cut off and the minimum grace remains; no grace skips it', async () => {
      const t0 = Date.now();
      const slow = await runPreStopHook({ sleep: { seconds: 50 } }, ctx(), 3);
      expect(Date.now() - t0).to.be.below(50 * 1000 * SCALE);
      expect(slow).to.deep.equal({ gracePeriodSeconds: MINIMUM_GRACE_PERIOD_SECONDS, completed: false });
      const skipped = await runPreStopHook({ exec: { command: ['drain'] } }, ctx(), 0);
      expect(skipped).to.deep.equal({ gracePeriodSeconds: 2, completed: false });
      expect(calls).to.deep.equal([]);
      // Few seconds left: the floor applies.
      expect((await runPreStopHook({ sleep: { seconds: 1 } }, ctx(), 2)).gracePeriodSeconds).to.equal(2);
    });
  });
});
