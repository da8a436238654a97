import { expect } from 'chai';
import { appendFile, mkdtemp, rename, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { formatRfc3339Nano, LogFileNotFoundError, parseCriLogLine, parseRfc3339Nano, readContainerLogs, type ReadLogsOptions } from './logs.js';

/** Collects what a reader writes. */
function sink(): { out: PassThrough; text: () => string } {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  return { out, text: () => Buffer.concat(chunks).toString() };
}

const FIXTURE = [
  '2026-11-26T03:00:00.000000001Z stdout F first line',
  '2026-11-26T03:00:01.5Z stderr F an error',
  '2026-11-26T03:00:02.123456789Z stdout P long li',
  '2026-11-26T03:00:02.2Z stderr F interleaved',
  '2026-11-26T03:00:02.3Z stdout P ne that was ',
  '2026-11-26T03:00:02.4Z stdout F split',
  'garbage that is not a CRI line',
  '2026-11-26T03:00:03Z stdout F ',
  '2026-11-26T03:00:04.25Z stdout F last',
].join('\n') + '\n';

const until = async (cond: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('CRI container logs', () => {
  let dir: string;
  let path: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kubernel-logs-'));
    path = join(dir, '0.log');
    await writeFile(path, FIXTURE);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const read = async (options: Omit<ReadLogsOptions, 'path'>): Promise<string> => {
    const s = sink();
    await readContainerLogs({ path, ...options }, s.out);
    return s.text();
  };

  describe('parsing', () => {
    it('parses the time, stream, tag and content of a line', () => {
      const l = parseCriLogLine(Buffer.from('2026-11-26T03:00:02.123456789Z stderr P a b  c'))!;
      expect(l).to.include({ timestamp: '2026-11-26T03:00:02.123456789Z', stream: 'stderr', partial: true });
      expect(l.content.toString()).to.equal('a b  c');
      expect(l.nanos).to.equal(BigInt(Date.UTC(2026, 10, 26, 3, 0, 2)) * 1_000_000n + 123_456_789n);
      expect(parseCriLogLine(Buffer.from('not a line'))).to.equal(undefined);
      expect(parseCriLogLine(Buffer.from('2026-11-26T03:00:00Z stdin F x'))).to.equal(undefined);
    });

    it('reads RFC 3339 times with offsets and formats them as Go\'s RFC3339Nano in UTC', () => {
      expect(parseRfc3339Nano('2026-11-26T04:00:00.5+01:00')).to.equal(parseRfc3339Nano('2026-11-26T03:00:00.500Z'));
      expect(formatRfc3339Nano(parseRfc3339Nano('2026-11-26T03:00:00.120000000Z')!)).to.equal('2026-11-26T03:00:00.12Z');
      expect(formatRfc3339Nano(parseRfc3339Nano('2026-11-26T03:00:00Z')!)).to.equal('2026-11-26T03:00:00Z');
      expect(parseRfc3339Nano('yesterday')).to.equal(undefined);
    });
  });

  describe('reading', () => {
    it('gives both streams in order, the content only, partial lines joined', async () => {
      expect(await read({})).to.equal('first line\nan error\ninterleaved\nlong line that was split\n\nlast\n');
    });

    it('selects one stream', async () => {
      expect(await read({ stream: 'Stderr' })).to.equal('an error\ninterleaved\n');
      expect(await read({ stream: 'Stdout' })).to.equal('first line\nlong line that was split\n\nlast\n');
    });

    it('prefixes each line with its time (the first fragment\'s for a joined line)', async () => {
      const text = await read({ timestamps: true, tailLines: 3 });
      expect(text).to.equal('2026-11-26T03:00:02.123456789Z long line that was split\n2026-11-26T03:00:03Z \n2026-11-26T03:00:04.25Z last\n');
    });

    it('keeps the last N lines; 0 gives nothing', async () => {
      expect(await read({ tailLines: 2 })).to.equal('\nlast\n');
      expect(await read({ tailLines: 0 })).to.equal('');
      expect(await read({ tailLines: 100 })).to.equal('first line\nan error\ninterleaved\nlong line that was split\n\nlast\n');
    });

    it('keeps lines at or after sinceTime, or of the last sinceSeconds', async () => {
      expect(await read({ sinceTime: new Date('2026-11-26T03:00:02.2Z') })).to.equal('interleaved\n\nlast\n');
      const now = () => Date.parse('2026-11-26T03:00:05Z');
      expect(await read({ sinceSeconds: 2, now })).to.equal('\nlast\n');
      // The later of the two wins.
      expect(await read({ sinceSeconds: 60, sinceTime: new Date('2026-11-26T03:00:04Z'), now })).to.equal('last\n');
    });

    it('stops after limitBytes', async () => {
      expect(await read({ limitBytes: 14 })).to.equal('first line\nan ');
    });

    it('ends an unfinished partial line without a newline', async () => {
      await appendFile(path, '2026-11-26T03:00:05Z stdout P no end');
      expect((await read({})).endsWith('last\nno end')).to.equal(true);
    });

    it('throws LogFileNotFoundError for a missing file', async () => {
      let error: unknown;
      await readContainerLogs({ path: join(dir, 'nope.log') }, new PassThrough()).catch((e: unknown) => (error = e));
      expect(error).to.be.instanceOf(LogFileNotFoundError);
    });
  });

  describe('following', () => {
    // Every follow stops at the end of its test, passed or failed.
    let stop: AbortController;
    beforeEach(() => (stop = new AbortController()));
    afterEach(() => stop.abort());
    /** Lets the reader finish its first pass over what the file holds. */
    const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 100));
    it('streams appended lines and ends once the container stopped and the file is drained', async () => {
      let running = true;
      const s = sink();
      const done = readContainerLogs({ path, follow: true, tailLines: 1, pollIntervalMs: 10, isRunning: () => running, signal: stop.signal }, s.out);
      await until(() => s.text() === 'last\n');
      await appendFile(path, '2026-11-26T03:00:06Z stdout P more \n');
      await appendFile(path, '2026-11-26T03:00:06.1Z stdout F text\n');
      await until(() => s.text() === 'last\nmore text\n');
      await appendFile(path, '2026-11-26T03:00:07Z stderr F final\n');
      running = false;
      await done;
      expect(s.text()).to.equal('last\nmore text\nfinal\n');
    });

    it('follows a rotated file (renamed away, recreated) from the start of the new one', async () => {
      let running = true;
      const s = sink();
      const done = readContainerLogs({ path, follow: true, tailLines: 0, pollIntervalMs: 10, isRunning: () => running, signal: stop.signal }, s.out);
      await settle();
      await appendFile(path, '2026-11-26T03:00:08Z stdout F before rotation\n');
      await until(() => s.text() === 'before rotation\n');
      await rename(path, `${path}.20261126-030009`);
      await writeFile(path, '2026-11-26T03:00:09Z stdout F after rotation\n');
      await until(() => s.text() === 'before rotation\nafter rotation\n');
      running = false;
      await done;
    });

    it('starts over when the file is truncated in place', async () => {
      let running = true;
      const s = sink();
      const done = readContainerLogs({ path, follow: true, tailLines: 0, pollIntervalMs: 10, isRunning: () => running, signal: stop.signal }, s.out);
      await settle();
      await truncate(path, 0);
      await appendFile(path, '2026-11-26T03:00:10Z stdout F fresh\n');
      await until(() => s.text() === 'fresh\n');
      running = false;
      await done;
    });

    it('ends when the signal aborts', async () => {
      const abort = new AbortController();
      const s = sink();
      const done = readContainerLogs({ path, follow: true, pollIntervalMs: 10, signal: abort.signal }, s.out);
      await until(() => s.text().endsWith('last\n'));
      abort.abort();
      await done;
    });
  });
});
