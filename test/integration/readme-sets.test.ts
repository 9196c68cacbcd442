/**
 * The README's `pgark sets` walk-through, run as written (issue 19 item 7): the commands are
 * taken from the fenced block under "Logical replication sets" in README.md, so the README and
 * this test cannot drift. The only change is the mapping of the walk-through's two host names to
 * the test server: `host=src` and `host=reports` become `host=127.0.0.1` (one PostgreSQL 15
 * cluster with wal_level = logical holds both databases, shop and shop_copy; PGPORT, also in the
 * server's environment for the subscription's connection, picks its port). Each command must exit
 * 0; between commands the test only looks (and waits for the added table's copy).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destroyAllClusters, findPgBin, makeSharedTempDir, PGARK_BIN, PgCluster, PROJECT_ROOT, runAsUser, shellQuote } from '../helpers/pg-cluster.js';
import { waitUntil } from '../helpers/wait.js';

/** The shell commands of the first ```sh block after `heading`: continuation lines joined, comment-only and blank lines dropped. */
function readmeCommands(readme: string, heading: string): string[] {
  const at = readme.indexOf(heading);
  if (at < 0) throw new Error(`README has no heading '${heading}'`);
  const m = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  if (!m) throw new Error(`no sh block after '${heading}'`);
  const out: string[] = [];
  let cur = '';
  for (const line of m[1]!.split('\n')) {
    if (cur === '' && (/^\s*#/.test(line) || line.trim() === '')) continue;
    if (/\\\s*$/.test(line)) cur += line.replace(/\\\s*$/, ' ');
    else {
      out.push(cur + line);
      cur = '';
    }
  }
  return out;
}

const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');
const commands = readmeCommands(readme, '### Logical replication sets: `pgark sets`');

let pg: PgCluster;
let bin: string;

beforeAll(async () => {
  pg = await PgCluster.create({ name: 'readme-sets', walSegmentSizeMB: 1, conf: { wal_level: 'logical', max_wal_size: '64MB', wal_retrieve_retry_interval: '500ms' } });
  pg.serverEnv = { PGPORT: String(pg.port) };
  await pg.start();
  await pg.psql('CREATE DATABASE shop');
  await pg.psql('CREATE DATABASE shop_copy');
  await pg.pgbench(['-i', '-s', '1', '-q'], { db: 'shop' });
  // A little workload, so that pgbench_history has rows for the walk-through's DELETE.
  await pg.pgbench(['-t', '40', '-c', '1'], { db: 'shop' });
  // `pgark` and `psql` on PATH, as the README assumes.
  bin = await makeSharedTempDir('pgark-readme-bin-');
  writeFileSync(join(bin, 'pgark'), `#!/bin/sh\nexec ${shellQuote(process.execPath)} ${shellQuote(PGARK_BIN)} "$@"\n`, { mode: 0o755 });
}, 180_000);

afterAll(async () => {
  await destroyAllClusters();
}, 120_000);

describe("README: the pgark sets walk-through", () => {
  it('is the block the test expects (host names the test maps)', () => {
    expect(commands.length).toBeGreaterThanOrEqual(8);
    const hosts = new Set(commands.join('\n').match(/host=[A-Za-z0-9_.-]+/g));
    expect([...hosts].sort()).toEqual(['host=reports', 'host=src']);
  });

  it('runs as written: every command exits 0, and the reports get what the README says', async () => {
    const env = { PATH: `${bin}:${findPgBin()}:/usr/bin:/bin`, PGPORT: String(pg.port), PGUSER: 'postgres' };
    const historyRows = await pg.psql('SELECT count(*) FROM pgbench_history', 'shop');
    expect(Number(historyRows)).toBeGreaterThan(0);
    for (const written of commands) {
      const cmd = written.replace(/host=(src|reports)\b/g, 'host=127.0.0.1');
      const r = await runAsUser('/bin/sh', ['-c', cmd], { env, allowFail: true, timeoutMs: 400_000 });
      expect(r.code, `README command failed:\n  ${written}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`).toBe(0);
      if (/sets add-table/.test(written)) {
        // "arrives with its data": the target got the table and the subscription copies its rows.
        await waitUntil('pgbench_tellers copied to the reports', async () => (await pg.psql('SELECT count(*) FROM pgbench_tellers', 'shop_copy').catch(() => '')) === '10', 120_000);
      }
    }
    // The row filter and column list: accounts 1..50000, only the listed columns filled.
    expect(await pg.psql('SELECT count(*), min(aid), max(aid), count(filler) FROM pgbench_accounts', 'shop_copy')).toBe('50000|1|50000|0');
    // The DELETE on the source was not replicated (operations insert,update).
    expect(await pg.psql('SELECT count(*) FROM pgbench_history', 'shop')).toBe('0');
    expect(await pg.psql('SELECT count(*) FROM pgbench_history', 'shop_copy')).toBe(historyRows);
    // sets drop --subscriber removed that subscriber's subscription and then its slot; the set stays.
    expect(await pg.psql('SELECT count(*) FROM pg_subscription')).toBe('0');
    expect(await pg.psql("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE 'pgark%'")).toBe('0');
    expect(await pg.psql("SELECT count(*) FROM pg_publication WHERE pubname = 'pgark_reports'", 'shop')).toBe('1');
  }, 900_000);
});
