import { expect } from 'chai';
import { delay, untilAborted } from './lifecycle.js';

describe('lifecycle helpers', () => {
  it('delay resolves true after the time, false on abort, and at once if already aborted', async () => {
    expect(await delay(1)).to.equal(true);
    const c = new AbortController();
    const p = delay(60_000, c.signal);
    c.abort();
    expect(await p).to.equal(false);
    expect(await delay(60_000, c.signal)).to.equal(false);
  });

  it('untilAborted resolves on abort', async () => {
    const c = new AbortController();
    let done = false;
    const p = untilAborted(c.signal).then(() => (done = true));
    await new Promise((r) => setImmediate(r));
    expect(done).to.equal(false);
    c.abort();
    await p;
    expect(done).to.equal(true);
    await untilAborted(c.signal);
  });
});
