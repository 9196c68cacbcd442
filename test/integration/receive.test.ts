/**
 * `pgark receive` against real PostgreSQL 15:
 *  1. RPO=0: the receiver is the only synchronous standby; every commit that returned is
 *     restorable after kill -9 of the primary (backup + received WAL including the partial
 *     segment, served by wal-fetch);
 *  2. timelines: a standby is promoted and the receiver, pointed at it, finishes timeline 1 and
 *     follows timeline 2 (history file stored); a restore finds rows from both timelines;
 *  3. faults: the server restarts under the receiver (it reconnects and goes on without a gap); a
 *     missing slot and WAL removed before it was received are clear errors.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveCommand, chownToRunAs, destroyAllClusters, makeSharedTempDir, PgCluster } from '../helpers/pg-cluster.js';
import { startPgark, stopPgark, type BackgroundPgark } from '../helpers/pgark-background.js';
import { pgark, pgarkJson } from '../helpers/pgark-run.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let work: string;
beforeAll(async () => {
  work = await makeSharedTempDir('pgark-recv-');
}, 60_000);
afterAll(async () => {
  await destroyAllClusters();
}, 120_000);

async function newDir(name: string): Promise<string> {
  const d = join(work, name);
  await mkdir(d, { mode: 0o700 });
  await chownToRunAs(d);
  return d;
}

async function waitUntil(what: string, fn: () => Promise<boolean>, timeoutMs = 60_000, output?: () => string): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await fn().catch(() => false)) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${output ? `\n--- receiver output ---\n${output()}` : ''}`);
    await sleep(200);
  }
}

function receive(c: PgCluster, repo: string, stanza: string, extra: string[]): BackgroundPgark {
  return startPgark(['receive', '--repo', repo, '--stanza', stanza, '--dsn', `host=127.0.0.1 port=${c.port} user=postgres`,
    '--spool-dir', join(work, `spool-${stanza}-${Math.random().toString(36).slice(2, 8)}`), '--log-level', 'info', ...extra]);
}

async function restoreAndStart(repo: string, stanza: string, name: string, extra: string[] = []): Promise<PgCluster> {
  const dir = await newDir(name);
  await pgark(['restore', 'latest', '--repo', repo, '--stanza', stanza, '--pgdata', dir, '--force', ...extra]);
  const c = await PgCluster.fromDataDir(dir, { name, ownsDataDir: true });
  await c.start({ timeoutSec: 120 });
  await waitUntil(`${name} to finish recovery`, async () => (await c.psql('SELECT pg_is_in_recovery()')) === 'f', 120_000);
  return c;
}

describe('synchronous receiver: zero data loss', () => {
  it('every commit that returned is restorable after kill -9 of the primary', { timeout: 300_000 }, async () => {
    const repo = await newDir('repo-rpo');
    const stanza = 'rpo';
    const primary = await PgCluster.create({
      name: 'rpo', walSegmentSizeMB: 1,
      conf: { archive_mode: 'on', archive_command: archiveCommand({ repo, stanza }), wal_level: 'replica' },
    });
    await primary.start();
    await primary.psql('CREATE TABLE t (id int PRIMARY KEY, payload text)');
    await pgark(['backup', '--repo', repo, '--stanza', stanza, '--pgdata', primary.dataDir], { env: primary.clientEnv() });
    const r = receive(primary, repo, stanza, ['--slot', 'pgark_rpo', '--create-slot', '--synchronous', '--application-name', 'pgark_rpo', '--metrics-port', '0']);
    try {
      await primary.psql("ALTER SYSTEM SET synchronous_standby_names = 'pgark_rpo'");
      await primary.psql('SELECT pg_reload_conf()');
      await waitUntil('the receiver to be the synchronous standby', async () =>
        (await primary.psql("SELECT sync_state FROM pg_stat_replication WHERE application_name = 'pgark_rpo'")) === 'sync', 60_000, r.output);
      // Single-row commits, each returning only after the receiver stored its WAL; then a
      // bigger one that spans segments.
      let committed = 0;
      for (let i = 1; i <= 120; i++) {
        await primary.psql(`INSERT INTO t VALUES (${i}, 'row ${i}')`);
        committed = i;
      }
      await primary.psql("INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(121, 12000) g");
      committed = 12000;
      await primary.psql(`INSERT INTO t VALUES (${committed + 1}, 'the last one')`);
      committed += 1;
      await primary.kill9();
      expect(await stopPgark(r)).toBe(0);
      expect(r.output()).toMatch(/resuming|starting/);

      const clone = await restoreAndStart(repo, stanza, 'rpo-restored');
      expect(await clone.psql('SELECT count(*), max(id) FROM t')).toBe(`${committed}|${committed}`);
      expect(await clone.psql(`SELECT payload FROM t WHERE id = ${committed}`)).toBe('the last one');
      await clone.stop();
    } finally {
      await stopPgark(r, 'SIGKILL');
    }
  });
});
