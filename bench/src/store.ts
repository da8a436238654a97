/**
 * bench/store: Kubernel's store (NATS JetStream KV + watch cache) side by side with etcd 3.4, in
 * one run on one machine, with 1 KiB objects. Prints ops/s and latency quantiles per phase, the
 * ratio to etcd, and the servers' memory. Reproduce with `npm run bench:store` (options:
 * `--seq N --parallel N --concurrency N --list N --watch N`).
 *
 * Like is compared with like: etcd fsyncs every commit, so the NATS column that is compared runs
 * nats-server 2.10 with `sync_interval: always` (fsync before every acknowledgement); the
 * no-fsync NATS figures (the server's default 2-minute sync) are shown beside them, labelled.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { NatsServer, Store, type SyncMode } from '@kubernel/core';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Etcd } from './etcd.js';
import { rssOf, runPhase, Samples, type PhaseResult } from './stats.js';

const { values: args } = parseArgs({
  options: {
    seq: { type: 'string', default: '1000' },
    parallel: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '64' },
    list: { type: 'string', default: '20000' },
    watch: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '3' },
  },
});
const N = {
  seq: Number(args.seq),
  parallel: Number(args.parallel),
  concurrency: Number(args.concurrency),
  list: Number(args.list),
  watch: Number(args.watch),
  rounds: Number(args.rounds),
};

/** A 1 KiB object, shaped like a ConfigMap. */
function object(i: number): { apiVersion: string; kind: string; metadata: { name: string; namespace: string }; data: { payload: string } } {
  const base = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `cm-${i}`, namespace: 'bench' }, data: { payload: '' } };
  base.data.payload = 'x'.repeat(1024 - JSON.stringify(base).length);
  return base;
}

/** What the benchmark drives: the same operations on both systems. */
interface Subject {
  readonly label: string;
  readonly pid: number | undefined;
  create(key: string, i: number): Promise<number>;
  cas(key: string, i: number, revision: number): Promise<number>;
  list(prefix: string): Promise<number>;
  watch(prefix: string, onEvent: (revision: number) => void): Promise<() => void>;
  close(): Promise<void>;
}

interface Results {
  label: string;
  seqCreate: PhaseResult;
  parCreate: PhaseResult;
  parCas: PhaseResult;
  listP50: number;
  listP99: number;
  watchAckP50: number;
  watchAckP99: number;
  watchStartP50: number;
  watchStartP99: number;
  rss: number;
  peak: number;
}

async function measure(subject: Subject): Promise<Results> {
  const key = (phase: string, i: number): string => `/registry/configmaps/${phase}/cm-${i}`;
  process.stderr.write(`  ${subject.label}: sequential create (${N.seq})...\n`);
  const seqCreate = await runPhase(N.seq, 1, (i) => subject.create(key('seq', i), i));
  process.stderr.write(`  ${subject.label}: ${N.concurrency}-in-flight create (${N.parallel})...\n`);
  const revisions: number[] = new Array(N.parallel);
  const parCreate = await runPhase(N.parallel, N.concurrency, async (i) => (revisions[i] = await subject.create(key('list', i), i)));
  process.stderr.write(`  ${subject.label}: ${N.concurrency}-in-flight compare-and-swap (${N.parallel})...\n`);
  const parCas = await runPhase(N.parallel, N.concurrency, async (i) => (revisions[i] = await subject.cas(key('list', i), i + 1, revisions[i]!)));
  if (N.list > N.parallel) {
    process.stderr.write(`  ${subject.label}: filling to ${N.list} objects...\n`);
    await runPhase(N.list - N.parallel, N.concurrency, (i) => subject.create(key('list', N.parallel + i), i));
  }
  process.stderr.write(`  ${subject.label}: list of ${N.list} objects (x10)...\n`);
  const lists = new Samples();
  for (let r = 0; r < 10; r++) {
    const t0 = process.hrtime.bigint();
    const count = await subject.list('/registry/configmaps/list/');
    lists.add(Number(process.hrtime.bigint() - t0) / 1e6);
    if (count !== N.list) throw new Error(`${subject.label} listed ${count} objects, expected ${N.list}`);
  }
  process.stderr.write(`  ${subject.label}: watch delivery (${N.watch} sequential writes)...\n`);
  const received = new Map<number, bigint>();
  let wake: (() => void) | undefined;
  const stop = await subject.watch('/registry/configmaps/watch/', (revision) => {
    received.set(revision, process.hrtime.bigint());
    wake?.();
  });
  const fromAck = new Samples();
  const fromStart = new Samples();
  for (let i = 0; i < N.watch; i++) {
    const t0 = process.hrtime.bigint();
    const revision = await subject.create(key('watch', i), i);
    const acked = process.hrtime.bigint();
    while (!received.has(revision)) await new Promise<void>((r) => (wake = r));
    const at = received.get(revision)!;
    fromAck.add(Math.max(0, Number(at - acked) / 1e6));
    fromStart.add(Number(at - t0) / 1e6);
  }
  stop();
  const { rss, peak } = rssOf(subject.pid);
  return {
    label: subject.label,
    seqCreate,
    parCreate,
    parCas,
    listP50: lists.quantile(0.5),
    listP99: lists.quantile(0.99),
    watchAckP50: fromAck.quantile(0.5),
    watchAckP99: fromAck.quantile(0.99),
    watchStartP50: fromStart.quantile(0.5),
    watchStartP99: fromStart.quantile(0.99),
    rss,
    peak,
  };
}

async function natsSubject(sync: SyncMode, dir: string): Promise<Subject> {
  const logger = pino({ level: 'warn' });
  const server = new NatsServer({ dataDir: dir, sync, logger });
  await server.start();
  const store = await Store.open({ servers: [server.url], logger, registry: new Registry(), cache: { windowSize: 100_000 } });
  return {
    label: `NATS ${server.version!.text} ${sync === 'always' ? 'fsync' : 'no-fsync'}`,
    pid: server.pid,
    create: async (key, i) => (await store.create(key, object(i))).revision,
    cas: async (key, i, revision) => (await store.update(key, object(i), revision)).revision,
    list: async (prefix) => (await store.list(prefix)).items.length,
    watch: async (prefix, onEvent) => {
      const watch = await store.watch(prefix);
      void (async () => {
        for await (const e of watch) onEvent(e.revision);
      })();
      return () => watch.stop();
    },
    close: async () => {
      await store.close();
      await server.stop();
    },
  };
}

async function etcdSubject(dir: string): Promise<Subject> {
  const etcd = await Etcd.start(dir);
  const bytes = (i: number): Buffer => Buffer.from(JSON.stringify(object(i)));
  return {
    label: `etcd ${etcd.version} fsync`,
    pid: etcd.pid,
    create: (key, i) => etcd.create(key, bytes(i)),
    cas: (key, i, revision) => etcd.cas(key, bytes(i), revision),
    list: (prefix) => etcd.range(prefix),
    watch: (prefix, onEvent) => etcd.watch(prefix, onEvent),
    close: () => etcd.stop(),
  };
}

async function run(make: (dir: string) => Promise<Subject>): Promise<Results> {
  const dir = mkdtempSync(join(tmpdir(), 'kubernel-bench-'));
  const subject = await make(dir);
  try {
    return await measure(subject);
  } finally {
    await subject.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (n: number, digits = 0): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

/** The median of each numeric figure over several rounds of one subject. */
function median(rounds: Results[]): Results {
  const mid = (pick: (r: Results) => number): number => {
    const v = rounds.map(pick).sort((a, b) => a - b);
    return v[Math.floor((v.length - 1) / 2)]!;
  };
  const phase = (pick: (r: Results) => PhaseResult): PhaseResult => ({
    opsPerSecond: mid((r) => pick(r).opsPerSecond),
    p50: mid((r) => pick(r).p50),
    p99: mid((r) => pick(r).p99),
  });
  return {
    label: rounds[0]!.label,
    seqCreate: phase((r) => r.seqCreate),
    parCreate: phase((r) => r.parCreate),
    parCas: phase((r) => r.parCas),
    listP50: mid((r) => r.listP50),
    listP99: mid((r) => r.listP99),
    watchAckP50: mid((r) => r.watchAckP50),
    watchAckP99: mid((r) => r.watchAckP99),
    watchStartP50: mid((r) => r.watchStartP50),
    watchStartP99: mid((r) => r.watchStartP99),
    rss: mid((r) => r.rss),
    peak: mid((r) => r.peak),
  };
}

async function main(): Promise<void> {
  process.stderr.write(`bench/store: 1 KiB objects; ${JSON.stringify(N)}\n`);
  const all: Record<'etcd' | 'fsync' | 'nofsync', Results[]> = { etcd: [], fsync: [], nofsync: [] };
  for (let round = 1; round <= N.rounds; round++) {
    process.stderr.write(`round ${round} of ${N.rounds}\n`);
    all.etcd.push(await run(etcdSubject));
    all.fsync.push(await run((dir) => natsSubject('always', dir)));
    all.nofsync.push(await run((dir) => natsSubject('interval', dir)));
  }
  const etcd = median(all.etcd);
  const fsync = median(all.fsync);
  const nofsync = median(all.nofsync);
  type Row = [label: string, show: (r: Results) => string, ratio?: (r: Results) => number];
  const rows: Row[] = [
    ['sequential create, ops/s (higher is better)', (r) => fmt(r.seqCreate.opsPerSecond), (r) => r.seqCreate.opsPerSecond],
    ['  latency p50 / p99, ms', (r) => `${fmt(r.seqCreate.p50, 2)} / ${fmt(r.seqCreate.p99, 2)}`],
    [`${N.concurrency}-in-flight create, ops/s (higher is better)`, (r) => fmt(r.parCreate.opsPerSecond), (r) => r.parCreate.opsPerSecond],
    ['  latency p50 / p99, ms', (r) => `${fmt(r.parCreate.p50, 2)} / ${fmt(r.parCreate.p99, 2)}`],
    [`${N.concurrency}-in-flight CAS update, ops/s (higher is better)`, (r) => fmt(r.parCas.opsPerSecond), (r) => r.parCas.opsPerSecond],
    ['  latency p50 / p99, ms', (r) => `${fmt(r.parCas.p50, 2)} / ${fmt(r.parCas.p99, 2)}`],
    [`list ${N.list} objects p50 / p99, ms (lower is better)`, (r) => `${fmt(r.listP50, 1)} / ${fmt(r.listP99, 1)}`, (r) => r.listP50],
    ['watch ack->receipt p50 / p99, ms (lower is better)', (r) => `${fmt(r.watchAckP50, 2)} / ${fmt(r.watchAckP99, 2)}`, (r) => r.watchAckP99],
    ['watch write start->receipt p50 / p99, ms', (r) => `${fmt(r.watchStartP50, 2)} / ${fmt(r.watchStartP99, 2)}`, (r) => r.watchStartP99],
    ['server RSS / peak, MiB', (r) => `${fmt(r.rss)} / ${fmt(r.peak)}`],
  ];
  const table: string[][] = [['', etcd.label, fsync.label, 'NATS/etcd', `${nofsync.label} (no fsync: not comparable)`]];
  for (const [label, show, ratio] of rows) table.push([label, show(etcd), show(fsync), ratio ? `${fmt(ratio(fsync) / ratio(etcd), 2)}x` : '', show(nofsync)]);
  const widths = table[0]!.map((_, c) => Math.max(...table.map((row) => row[c]!.length)) + 3);
  const lines = [
    '',
    `bench/store on ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, Node.js ${process.version}, ${new Date().toISOString()}`,
    `1 KiB objects; ${N.seq} sequential creates, ${N.parallel} creates and CAS updates at ${N.concurrency} in flight, lists of ${N.list}, ${N.watch} watched writes;`,
    `median of ${N.rounds} round(s), the systems interleaved in each round`,
    '',
    ...table.map((row) => row.map((cell, c) => cell.padEnd(widths[c]!)).join('').trimEnd()),
    '',
    'Ratios compare the two fsync-per-write columns (latency ratios: p99, or p50 for lists).',
    'Kubernel lists and watches are served from its watch cache after a consistent revision check; etcd lists are linearizable Range calls.',
    'Reproduce: npm run bench:store   (scripts/ensure-deps.sh --bench installs etcd-server)',
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

await main();
