// CPU of one archive_command call of bin/pgark-wal-push answering from a push record (issue 17
// item 5: in an agent drain every segment costs one such call, and the archiver waits in it
// while the agent is still storing the segment). No PostgreSQL: segment files and v3 records
// are written here as pgark writes them (src/wal/fast-path.ts formatPushRecord), and each call
// runs as the archiver runs it, `/bin/sh -c '<client> <path> --repo R --stanza main'`.
// CPU = user + sys of the reaped children (/proc/self/stat cutime + cstime), summed over the calls.
//
//   node bench/push-call-cpu.mjs [--calls 200] [--rounds 3] [--wait-ms 0,100,300,1000]
//                                [--client FILE[,FILE...]]  (default bin/pgark-wal-push; e.g. an
//                                 older copy from `git show main:bin/pgark-wal-push > /tmp/old`,
//                                 placed in bin/ so that its fallback finds pgark.js)
//
// Rows: `sh -c /bin/true` (what any archive_command costs), each client answering from a ready
// record (rounds alternate the clients), and each client waiting W ms for a record while a live
// process holds the segment's lock (the drain case).
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';

const ROOT = join(import.meta.dirname, '..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const CALLS = Number(arg('--calls', '200'));
const ROUNDS = Number(arg('--rounds', '3'));
const WAITS = arg('--wait-ms', '0,100,300,1000').split(',').map(Number).filter((w) => w > 0);
const CLIENTS = arg('--client', join(ROOT, 'bin', 'pgark-wal-push')).split(',');
const REPO = '/var/lib/pgark-bench-repo';
const STANZA = 'main';
const target = createHash('sha256').update(`${REPO}\n${STANZA}`).digest('hex').slice(0, 16);

const dir = mkdtempSync(join(tmpdir(), 'pgark-push-calls-'));
const wal = join(dir, 'pg_wal');
const pushed = join(wal, '.pgark', 'pushed');
mkdirSync(pushed, { recursive: true, mode: 0o700 });
const name = (i) => `00000001000000AB${i.toString(16).toUpperCase().padStart(8, '0')}`;
for (let i = 1; i <= CALLS; i++) writeFileSync(join(wal, name(i)), Buffer.alloc(4096, i & 0xff));
const writeRecord = (i) => {
  const st = statSync(join(wal, name(i)), { bigint: true });
  writeFileSync(join(pushed, name(i)), `v3 ${st.ino} ${st.size} ${st.mtimeNs} ${st.ctimeNs} ${'0'.repeat(64)} ${target}\n`);
};
const childTicks = () => {
  const f = readFileSync('/proc/self/stat', 'utf8');
  const w = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return Number(w[13]) + Number(w[14]);
};
const q = (s) => `'${s.replaceAll("'", "'\\''")}'`;
const env = { PATH: process.env.PATH, PGARK_NODE: '/bin/false' }; // a fallback to Node fails the call
const cmd = (client, i) => `${q(client)} ${q(join(wal, name(i)))} --repo ${q(REPO)} --stanza ${STANZA}`;

/** ms of CPU per call for `calls` runs of cmdOf(i). */
function cpuPerCall(cmdOf, calls, before = () => {}) {
  let ticks = 0;
  for (let i = 1; i <= calls; i++) {
    before(i);
    const t0 = childTicks();
    const r = spawnSync('/bin/sh', ['-c', cmdOf(i)], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    ticks += childTicks() - t0;
    if (r.status !== 0) throw new Error(`call ${i} failed (${r.status}): ${cmdOf(i)}\n${r.stderr}`);
  }
  return (ticks * 10) / calls;
}

const short = (c) => c.replace(`${ROOT}/`, '');
const rows = new Map();
const add = (k, v) => rows.set(k, [...(rows.get(k) ?? []), v]);
for (let r = 0; r < ROUNDS; r++) {
  add('sh -c /bin/true', cpuPerCall(() => '/bin/true', CALLS));
  for (const c of CLIENTS) add(`${short(c)}, record ready`, cpuPerCall((i) => cmd(c, i), CALLS, writeRecord));
}
// Waiting: a live holder of the lock; the record appears and the lock goes after W ms.
const WAIT_CALLS = Math.min(10, CALLS);
for (const w of WAITS) {
  for (const c of CLIENTS) {
    const holder = spawn('sleep', ['600'], { stdio: 'ignore' });
    try {
      let ticks = 0;
      let wall = 0;
      for (let i = 1; i <= WAIT_CALLS; i++) {
        const lock = join(pushed, `${name(i)}.lock`);
        writeFileSync(lock, String(holder.pid));
        const t0 = childTicks();
        const started = performance.now();
        const done = new Promise((res) => spawn('/bin/sh', ['-c', cmd(c, i)], { env, stdio: 'ignore' }).on('exit', res));
        await new Promise((res) => setTimeout(res, w));
        writeRecord(i);
        rmSync(lock);
        const code = await done;
        wall += performance.now() - started - w;
        ticks += childTicks() - t0;
        if (code !== 0) throw new Error(`waiting call ${i} failed (${code})`);
      }
      add(`${short(c)}, waits ${w} ms (CPU ms; answered ms after the record)`, `${((ticks * 10) / WAIT_CALLS).toFixed(1)}; +${(wall / WAIT_CALLS).toFixed(0)}`);
    } finally {
      holder.kill();
    }
  }
}
rmSync(dir, { recursive: true, force: true });
console.log(`| call (${CALLS} calls per round, ${ROUNDS} rounds; waits: ${WAIT_CALLS} calls) | CPU ms per call (user+sys), per round |`);
console.log('|---|---|');
for (const [k, v] of rows) console.log(`| ${k} | ${v.map((x) => (typeof x === 'number' ? x.toFixed(1) : x)).join(', ')} |`);
