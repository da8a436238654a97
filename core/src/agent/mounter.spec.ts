import { expect } from 'chai';
import { ShellRunner } from './mounter.js';

describe('the mounter\'s long-lived shell', () => {
  const shell = new ShellRunner();
  it('runs commands one at a time, passing arguments verbatim (spaces, quotes, $)', async () => {
    await shell.run('true', []);
    await shell.run('test', ["a 'b' $HOME \"c\"", '=', "a 'b' $HOME \"c\""]);
    await Promise.all([shell.run('sleep', ['0.05']), shell.run('true', []), shell.run('test', ['1', '=', '1'])]);
  });
  it('rejects with the command\'s output when it fails, and goes on afterwards', async () => {
    const err = await shell.run('ls', ['/no/such/dir']).then(() => undefined, (e: Error) => e);
    expect(err?.message).to.match(/^ls \/no\/such\/dir failed: .*No such file or directory/);
    await shell.run('true', []);
  });
});
