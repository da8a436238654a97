import { expect } from 'chai';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { inflateSync, deflateSync, constants } from 'node:zlib';
import {
  decodeFrame,
  decodeHeaderBlock,
  encodeFrame,
  encodeHeaderBlock,
  FLAG_FIN,
  FrameReader,
  HeaderCompressor,
  HeaderDecompressor,
  RstStatus,
  SPDY_DICTIONARY,
  SpdyConnection,
  SpdyProtocolError,
  type SpdyFrame,
  type SpdyStream,
} from './spdy.js';

/** Adler-32 (zlib's dictionary id). */
function adler32(data: Buffer): number {
  let a = 1;
  let b = 0;
  for (const byte of data) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/** A connected pair of TCP sockets on loopback. */
async function socketPair(): Promise<{ a: Socket; b: Socket; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const a = connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => a.once('connect', resolve));
  return { a, b: await accepted, server };
}

const next = <T>(emitter: { once(event: string, l: (v: T) => void): unknown }, event: string): Promise<T> => new Promise((resolve) => emitter.once(event, resolve));

describe('spdy', () => {
  describe('the SPDY/3 header dictionary', () => {
    it('is the 1423 bytes of the protocol, starting with the length-prefixed "options" and ending with "enq=0."', () => {
      expect(SPDY_DICTIONARY.length).to.equal(1423);
      expect(SPDY_DICTIONARY.subarray(0, 11)).to.deep.equal(Buffer.from('\x00\x00\x00\x07options', 'latin1'));
      expect(SPDY_DICTIONARY.subarray(-6).toString('latin1')).to.equal('enq=0.');
    });

    it('is the preset dictionary of compressed header blocks (FDICT set, the dictionary id its Adler-32)', async () => {
      const c = new HeaderCompressor();
      try {
        const block = await c.compress({ streamtype: ['data'], port: ['8080'] });
        expect(block[1]! & 0x20, 'FDICT').to.equal(0x20);
        expect(block.readUInt32BE(2)).to.equal(adler32(SPDY_DICTIONARY));
        // A plain zlib inflate with the dictionary reads the first block.
        const raw = inflateSync(block, { dictionary: SPDY_DICTIONARY, finishFlush: constants.Z_SYNC_FLUSH });
        expect(decodeHeaderBlock(raw)).to.deep.equal({ streamtype: ['data'], port: ['8080'] });
      } finally {
        c.close();
      }
    });
  });

  describe('frames', () => {
    const cases: Array<Exclude<SpdyFrame, { type: 'unknown' }>> = [
      { type: 'data', streamId: 5, flags: FLAG_FIN, data: Buffer.from('hello') },
      { type: 'data', streamId: 0x7fffffff, flags: 0, data: Buffer.alloc(0) },
      { type: 'syn_stream', flags: FLAG_FIN, streamId: 3, associatedId: 0, priority: 0, headerBlock: Buffer.from([1, 2, 3]) },
      { type: 'syn_reply', flags: 0, streamId: 3, headerBlock: Buffer.from([9]) },
      { type: 'headers', flags: FLAG_FIN, streamId: 7, headerBlock: Buffer.from([4, 5]) },
      { type: 'rst_stream', streamId: 9, status: RstStatus.Cancel },
      { type: 'settings', flags: 0, entries: [{ flags: 0, id: 4, value: 1000 }, { flags: 1, id: 7, value: 65536 }] },
      { type: 'ping', id: 0xfffffffe },
      { type: 'goaway', lastGoodStreamId: 11, status: 0 },
      { type: 'window_update', streamId: 1, delta: 4096 },
    ];
    for (const frame of cases) {
      it(`round-trips ${frame.type}`, () => {
        expect(decodeFrame(encodeFrame(frame))).to.deep.equal(frame);
      });
    }

    it('lays out a control frame as SPDY/3 does: control bit, version 3, type, flags, 24-bit length', () => {
      const b = encodeFrame({ type: 'ping', id: 1 });
      expect([...b]).to.deep.equal([0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1]);
      const d = encodeFrame({ type: 'data', streamId: 1, flags: FLAG_FIN, data: Buffer.from('x') });
      expect([...d]).to.deep.equal([0, 0, 0, 1, 0x01, 0, 0, 1, 0x78]);
    });

    it('reassembles frames split at any byte boundary', () => {
      const bytes = Buffer.concat(cases.map((f) => encodeFrame(f)));
      const reader = new FrameReader();
      const got: SpdyFrame[] = [];
      for (let i = 0; i < bytes.length; i += 3) got.push(...reader.push(bytes.subarray(i, i + 3)));
      expect(got).to.deep.equal(cases);
    });

    it('refuses a control frame of another version', () => {
      const b = encodeFrame({ type: 'ping', id: 1 });
      b.writeUInt16BE(0x8002, 0);
      expect(() => decodeFrame(b)).to.throw(SpdyProtocolError, /version 2/);
    });

    it('encodes header blocks with 32-bit lengths and NUL-joined values, names lower-cased', () => {
      const block = encodeHeaderBlock({ StreamType: ['error'], multi: ['a', 'b'] });
      expect(block.readUInt32BE(0)).to.equal(2);
      expect(decodeHeaderBlock(block)).to.deep.equal({ streamtype: ['error'], multi: ['a', 'b'] });
      expect(() => decodeHeaderBlock(block.subarray(0, block.length - 1))).to.throw(SpdyProtocolError);
    });
  });

  describe('header compression', () => {
    it('keeps one zlib context per direction: later blocks only decompress after the earlier ones', async () => {
      const c = new HeaderCompressor();
      const d = new HeaderDecompressor();
      try {
        const blocks = [];
        for (let i = 0; i < 5; i++) blocks.push(await c.compress({ requestid: [String(i)], port: ['80'], streamtype: [i % 2 ? 'data' : 'error'] }));
        // The second block refers back to the first (same headers): it is smaller.
        expect(blocks[2]!.length).to.be.lessThan(blocks[0]!.length);
        for (let i = 0; i < 5; i++) expect(await d.decompress(blocks[i]!)).to.deep.equal({ requestid: [String(i)], port: ['80'], streamtype: [i % 2 ? 'data' : 'error'] });
      } finally {
        c.close();
        d.close();
      }
    });

    it('rejects a block compressed without the dictionary', async () => {
      const d = new HeaderDecompressor();
      try {
        const bad = deflateSync(encodeHeaderBlock({ a: ['b'] }), { dictionary: Buffer.from('another dictionary') });
        let error: unknown;
        await d.decompress(bad).catch((e: unknown) => (error = e));
        expect(error).to.be.instanceOf(SpdyProtocolError);
      } finally {
        d.close();
      }
    });
  });

  describe('SpdyConnection', () => {
    let pair: Awaited<ReturnType<typeof socketPair>>;
    let client: SpdyConnection;
    let server: SpdyConnection;
    const accepted: SpdyStream[] = [];

    beforeEach(async () => {
      pair = await socketPair();
      accepted.length = 0;
      server = new SpdyConnection(pair.b, {
        role: 'server',
        onStream: (s) => {
          accepted.push(s);
          if (s.header('refuse')) {
            s.reset(RstStatus.RefusedStream);
            return;
          }
          // An echo server: what comes in goes back, FIN answers FIN.
          s.on('data', (d: Buffer) => s.write(Buffer.concat([Buffer.from('echo:'), d])));
          s.on('end', () => s.end());
          void s.reply({ accepted: ['yes'] });
        },
      });
      client = new SpdyConnection(pair.a, { role: 'client' });
    });

    afterEach(async () => {
      client.close();
      server.close();
      pair.a.destroy();
      pair.b.destroy();
      await new Promise<void>((resolve) => pair.server.close(() => resolve()));
    });

    it('opens streams with odd ids, gets the reply headers, echoes data, and closes on FIN both ways', async () => {
      const s1 = await client.openStream({ streamtype: ['data'], requestid: ['0'] });
      const s2 = await client.openStream({ streamtype: ['data'], requestid: ['1'] });
      expect([s1.id, s2.id]).to.deep.equal([1, 3]);
      expect(s1.replyHeaders).to.deep.equal({ accepted: ['yes'] });
      expect(accepted.map((s) => s.header('requestid'))).to.deep.equal(['0', '1']);
      const got: Buffer[] = [];
      s1.on('data', (d: Buffer) => got.push(d));
      s1.write(Buffer.from('ping'));
      const closed = next(s1, 'close');
      s1.end();
      await closed;
      expect(Buffer.concat(got).toString()).to.equal('echo:ping');
      expect(s1.remoteClosed && s1.localClosed).to.equal(true);
      expect(client.openStreams).to.equal(1);
    });

    it('carries large writes split into several frames', async () => {
      const s = await client.openStream({ big: ['1'] });
      const payload = Buffer.alloc(200_000, 7);
      const got: Buffer[] = [];
      s.on('data', (d: Buffer) => got.push(d));
      const closed = next(s, 'close');
      s.write(payload);
      s.end();
      await closed;
      const all = Buffer.concat(got);
      // Each frame was echoed with its own prefix.
      expect(all.length).to.equal(payload.length + Math.ceil(payload.length / 65_536) * 'echo:'.length);
    });

    it('reports a refused stream as a rejected open', async () => {
      let error: unknown;
      await client.openStream({ refuse: ['1'] }).catch((e: unknown) => (error = e));
      expect(String(error)).to.match(/reset \(status 3\)/);
      expect(client.openStreams).to.equal(0);
    });

    it('answers pings from the peer and reports its own', async () => {
      const pong = next<number>(client, 'pong');
      client.ping(1);
      expect(await pong).to.equal(1);
    });

    it('destroys its streams when the transport closes', async () => {
      const s = await client.openStream({ a: ['1'] });
      const closed = next(s, 'close');
      const connClosed = next(client, 'close');
      pair.b.destroy();
      await Promise.all([closed, connClosed]);
      expect(s.destroyed).to.equal(true);
    });
  });
});
