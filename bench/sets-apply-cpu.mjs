// CPU of the agent apply worker's JavaScript per row change, without servers: a TPC-B-like
// pgoutput stream (pgbench's four tables; per transaction 3 updates + 1 insert into
// pgbench_history with REPLICA IDENTITY FULL) is built as XLogData bytes, parsed by
// the worker's parser (logical/pgoutput-rows.ts over pg-logical-replication's PgoutputPlugin) and handed,
// through the library's flow-control queue as the stream does, to logical/apply-groups.ts
// GroupApplier over a target that only counts the SQL it is sent. What it measures is the
// worker's own cost per row (decoding, SQL building, batching, bookkeeping), which on a loaded
// host is steadier than the drain time of bench/sets-apply.mjs (CPU, not wall, is the figure).
//
//   node bench/sets-apply-cpu.mjs [--txs 20000] [--rounds 5] [--pgark-root DIR]
//     --pgark-root DIR: the dist/ of another built checkout (e.g. main), for before/after
import { join } from 'node:path';
import { ROOT, parseBenchArgs } from './lib-proc.mjs';

const args = parseBenchArgs([], ['--txs', '--rounds', '--pgark-root']);
const TXS = Number(args.value('--txs', '20000'));
const ROUNDS = Number(args.value('--rounds', '5'));
const root = args.value('--pgark-root', ROOT);
const { GroupApplier } = await import(join(root, 'dist/src/logical/apply-groups.js'));
const lib = await import('pg-logical-replication');
// the worker's parse wrapper (logical/pgoutput-rows.ts) where the checkout has it
const wrapParse = await import(join(root, 'dist/src/logical/pgoutput-rows.js')).then((m) => m.wrapPgoutputParse, () => undefined);

// --- pgoutput bytes (protocol version 1) ---
const int8 = (v) => Buffer.from([v]);
const int16 = (v) => { const b = Buffer.alloc(2); b.writeInt16BE(v); return b; };
const int32 = (v) => { const b = Buffer.alloc(4); b.writeInt32BE(v); return b; };
const int64 = (v) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(v)); return b; };
const str = (s) => Buffer.concat([Buffer.from(s), int8(0)]);
const tuple = (vals) => Buffer.concat([int16(vals.length), ...vals.map((v) => (v === null ? int8(0x6e) : Buffer.concat([int8(0x74), int32(Buffer.byteLength(v)), Buffer.from(v)])))]);
const xlog = (lsn, msg) => Buffer.concat([int8(0x77), int64(lsn), int64(lsn), int64(0), msg]);
const relation = (oid, name, ident, cols) => Buffer.concat([int8(0x52), int32(oid), str('public'), str(name), int8(ident.charCodeAt(0)), int16(cols.length),
  ...cols.map(([n, type, key]) => Buffer.concat([int8(key ? 1 : 0), str(n), int32(type), int32(-1)]))]);
const INT4 = 23, BPCHAR = 1042, TS = 1114;
const RELS = [
  relation(1, 'pgbench_accounts', 'd', [['aid', INT4, true], ['bid', INT4], ['abalance', INT4], ['filler', BPCHAR]]),
  relation(2, 'pgbench_tellers', 'd', [['tid', INT4, true], ['bid', INT4], ['tbalance', INT4], ['filler', BPCHAR]]),
  relation(3, 'pgbench_branches', 'd', [['bid', INT4, true], ['bbalance', INT4], ['filler', BPCHAR]]),
  relation(4, 'pgbench_history', 'f', [['tid', INT4], ['bid', INT4], ['aid', INT4], ['delta', INT4], ['mtime', TS], ['filler', BPCHAR]]),
];
const EPOCH_2000_US = 946684800000000n;
/** The stream of `n` TPC-B-like transactions (scale 10), as the walsender sends it. */
function stream(n) {
  const out = [];
  let lsn = 0x1000000;
  const commitUs = BigInt(Date.now() - 3_600_000) * 1000n - EPOCH_2000_US; // an hour old: a backlog
  for (const r of RELS) out.push(xlog(lsn, r));
  let seed = 1;
  const rnd = (m) => ((seed = (seed * 1103515245 + 12345) % 2147483648) % m) + 1;
  for (let i = 0; i < n; i++) {
    const aid = rnd(1_000_000), tid = rnd(100), bid = rnd(10), delta = String(rnd(10000) - 5000);
    const commit = lsn + 600;
    out.push(xlog(lsn, Buffer.concat([int8(0x42), int64(commit), int64(commitUs), int32(1000 + i)])));
    out.push(xlog(lsn + 100, Buffer.concat([int8(0x55), int32(1), int8(0x4e), tuple([String(aid), String(bid), delta, ' '.repeat(84)])])));
    out.push(xlog(lsn + 200, Buffer.concat([int8(0x55), int32(2), int8(0x4e), tuple([String(tid), String(bid), delta, null])])));
    out.push(xlog(lsn + 300, Buffer.concat([int8(0x55), int32(3), int8(0x4e), tuple([String(bid), delta, null])])));
    out.push(xlog(lsn + 400, Buffer.concat([int8(0x49), int32(4), int8(0x4e), tuple([String(tid), String(bid), String(aid), delta, '2026-12-07 06:40:00.123456', null])])));
    out.push(xlog(commit, Buffer.concat([int8(0x43), int8(0), int64(commit), int64(commit + 48), int64(commitUs)])));
    lsn += 1000;
  }
  return out;
}

/** One pass: parse + apply every message as apply-worker.ts wires them; returns CPU µs and SQL bytes. */
async function pass(bufs, txs = TXS) {
  const plugin = new lib.PgoutputPlugin({ protoVersion: 1, publicationNames: ['b'] });
  const parse = plugin.parse.bind(plugin);
  plugin.parse = wrapParse ? wrapParse(parse) : (buf) => {
    // before pgoutput-rows.ts: the library's parser with identity value parsers
    const m = parse(buf);
    if (m.tag === 'relation') for (const c of m.columns) c.parser = (raw) => raw;
    return m;
  };
  const svc = new lib.LogicalReplicationService({}, { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } });
  svc._stop = false;
  let sqlBytes = 0, statements = 0;
  const target = {
    query: async (sql) => {
      if (sql.startsWith('SELECT c.relkind')) return { rows: [{ independent: true, unique_indexes: [] }] };
      sqlBytes += sql.length;
      statements++;
      return { rows: [] };
    },
  };
  const status = { transactions: 0, rows: 0, skippedTransactions: 0, lastError: null, appliedLsn: null, lagSeconds: null };
  let failed;
  const applier = new GroupApplier({
    target, subscription: 'bench.agt', operations: ['insert', 'update', 'delete', 'truncate'],
    tables: { known: new Set(RELS.map((_r, i) => `public.${['pgbench_accounts', 'pgbench_tellers', 'pgbench_branches', 'pgbench_history'][i]}`)), acceptUnknown: false, pendingRels: new Set(), syncs: new Map() },
    startLsn: 1n, status, ack: async () => undefined,
    moreQueued: () => svc._messageQueue.length > 0, onFail: (e) => (failed = e),
  });
  svc.on('data', (_lsn, m) => applier.onData(m));
  const idle = () => new Promise((r) => { const t = () => (svc._processing ? setImmediate(t) : r()); t(); });
  const c0 = process.cpuUsage();
  const CHUNK = 64; // messages per socket read
  for (let i = 0; i < bufs.length; i += CHUNK) {
    for (const buffer of bufs.slice(i, i + CHUNK)) {
      // as the library's copyData handler
      const lsn = buffer.readUInt32BE(1).toString(16).toUpperCase() + '/' + buffer.readUInt32BE(5).toString(16).toUpperCase();
      svc._messageQueue.push({ lsn, data: plugin.parse(buffer.subarray(25)) });
      svc._processQueue();
    }
    await idle();
  }
  await applier.finish();
  const c = process.cpuUsage(c0);
  if (failed) throw failed;
  if (status.rows !== txs * 4) throw new Error(`applied ${status.rows} rows, expected ${txs * 4}`);
  return { us: c.user + c.system, sqlBytes, statements };
}

const bufs = stream(TXS);
const results = [];
await pass(stream(2000), 2000); // warm-up
for (let r = 0; r < ROUNDS; r++) results.push(await pass(bufs));
const per = results.map((x) => x.us / (TXS * 4)).sort((a, b) => a - b);
const median = per[Math.floor(per.length / 2)];
console.log(`${root}: ${TXS} transactions (${TXS * 4} row changes) x ${ROUNDS}: CPU per row change median ${median.toFixed(2)} us (min ${per[0].toFixed(2)}, max ${per[per.length - 1].toFixed(2)}); ` +
  `${results[0].statements} target statements, ${(results[0].sqlBytes / 2 ** 20).toFixed(1)} MiB of SQL per pass`);
