'use strict';
// If the test process is still alive 15 s after the last test (something a test started was not
// closed), name what keeps it alive on stderr and exit with mocha's exit code, so a leaked handle
// is reported instead of hanging CI.
exports.mochaHooks = {
  afterAll() {
    setTimeout(() => {
      const handles = process._getActiveHandles().map((h) => {
        const name = h.constructor?.name ?? typeof h;
        if (typeof h.remotePort === 'number') return `${name} ${h.localPort ?? ''}->${h.remoteAddress ?? ''}:${h.remotePort}`;
        if (h._handle && h._handle.constructor) {
          const owner = h._kubernelOwner ? ` of ${h._kubernelOwner}` : '';
          return `${name} (${h._handle.constructor.name}${typeof h._handle.fd === 'number' ? ` fd ${h._handle.fd}` : ''})${owner}`;
        }
        if (typeof h.pid === 'number') return `${name} pid ${h.pid} ${h.spawnfile ?? ''}`;
        return name;
      });
      const own = (h) => /fd [12]\)/.test(h);
      const requests = process._getActiveRequests().map((r) => r.constructor?.name ?? typeof r);
      const open = [...handles.filter((h) => !own(h)), ...requests.map((r) => `request ${r}`)];
      process.stderr.write(`mocha-exit-watchdog: the process did not exit 15 s after the tests; still open: ${open.join(', ') || '(no handle or request visible besides stdout/stderr)'}\n`);
      process.exit(process.exitCode ?? 0);
    }, 15_000).unref();
  },
};
