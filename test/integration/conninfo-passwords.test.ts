/**
 * Issue 14, item 7: a connection string with a password is refused by every command that takes
 * one, with exit 2, before connecting or writing anything, and the password is never printed.
 * `restore --standby --primary-conninfo` used to write it into postgresql.auto.conf (which the
 * next backup copies) and `receive --dsn` retried forever with it visible in `ps`.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveCommand, destroyAllClusters, makeSharedTempDir, PgCluster } from '../helpers/pg-cluster.js';
import { pgark } from '../helpers/pgark-run.js';
import { createRepo } from '../helpers/repo.js';
import { newUserDir } from '../helpers/wait.js';

const SECRET = 's3cret-pw';
let work: string;
let repo: string;
let c: PgCluster;

beforeAll(async () => {
  work = await makeSharedTempDir('pgark-pw-');
  repo = await createRepo(await newUserDir(work, 'repo'));
  c = await PgCluster.create({
    name: 'pw', walSegmentSizeMB: 1,
    conf: { archive_mode: 'on', archive_command: archiveCommand({ repo, stanza: 'main' }), wal_level: 'replica' },
  });
  await c.start();
  await pgark(['backup', '--repo', repo, '--pgdata', c.dataDir, '--no-progress'], { env: c.clientEnv(), timeoutMs: 180_000 });
}, 240_000);
afterAll(async () => {
  await destroyAllClusters();
}, 120_000);

function expectRefused(r: { code: number | null; stdout: string; stderr: string }, flag: string, what: string): void {
  // `check` is a monitoring plugin: its usage errors are UNKNOWN (3), never CRITICAL (2).
  expect(r.code, `${what}: ${r.stderr}`).toBe(what.startsWith('check') ? 3 : 2);
  expect(r.stderr).toMatch(new RegExp(`${flag} must not contain a password .*\\.pgpass.*PGPASSFILE`));
  expect(r.stdout + r.stderr).not.toContain(SECRET);
}

describe('restore --standby --primary-conninfo', () => {
  it('with a password: exit 2, nothing written, the password not printed', { timeout: 180_000 }, async () => {
    const forms = [
      `host=127.0.0.1 port=${c.port} user=postgres password=${SECRET}`,
      `postgresql://postgres:${SECRET}@127.0.0.1:${c.port}/postgres`,
    ];
    for (const [i, conninfo] of forms.entries()) {
      const target = await newUserDir(work, `standby-${i}`);
      const r = await pgark(['restore', 'latest', '--repo', repo, '--pgdata', target, '--standby', '--primary-conninfo', conninfo, '--no-progress'], { allowFail: true });
      expectRefused(r, '--primary-conninfo', conninfo);
      expect(await readdir(target)).toEqual([]);
    }
    // The same restore without the password works and writes primary_conninfo.
    const target = await newUserDir(work, 'standby-ok');
    const ok = await pgark(['restore', 'latest', '--repo', repo, '--pgdata', target, '--standby', '--primary-conninfo', `host=127.0.0.1 port=${c.port} user=postgres`, '--no-progress'], { allowFail: true, timeoutMs: 180_000 });
    expect(ok.code, ok.stderr).toBe(0);
    expect(await readFile(join(target, 'postgresql.auto.conf'), 'utf8')).toMatch(/^primary_conninfo = 'host=127\.0\.0\.1 port=\d+ user=postgres'$/m);
  });
});

describe('every other connection string', () => {
  it('is refused with exit 2 before connecting; receive exits at once instead of retrying', { timeout: 300_000 }, async () => {
    const dsn = `host=127.0.0.1 port=${c.port} user=postgres password=${SECRET}`;
    const uri = `postgresql://postgres:${SECRET}@127.0.0.1:${c.port}/postgres`;
    const spool = join(work, 'spool');
    const cases: Array<[string, string[]]> = [
      ['--dsn', ['receive', '--repo', repo, '--dsn', dsn, '--slot', 'pw_slot', '--create-slot', '--spool-dir', spool]],
      ['--dsn', ['receive', '--repo', repo, '--dsn', uri, '--spool-dir', spool]],
      ['--dsn', ['backup', '--repo', repo, '--pgdata', c.dataDir, '--dsn', dsn, '--no-progress']],
      ['--dsn', ['setup', '--repo', repo, '--dsn', uri, '--dry-run']],
      ['--dsn', ['check', '--repo', repo, '--dsn', dsn, '--no-switch']],
      ['--dsn', ['metrics', '--repo', repo, '--port', '0', '--dsn', dsn]],
      ['--primary-conninfo', ['clone', '--repo', repo, '--pgdata', join(work, 'clone'), '--primary-conninfo', dsn]],
      ['--source', ['sets', 'list', '--source', dsn]],
      ['--target', ['sets', 'subscribe', 'pwset', '--source', `host=127.0.0.1 port=${c.port} user=postgres`, '--target', uri]],
      ['--source', ['slots', 'list', '--source', uri]],
    ];
    for (const [flag, args] of cases) {
      // No retry loop: receive used to log the refusal and reconnect forever (this would time out).
      const r = await pgark(args, { allowFail: true, timeoutMs: 60_000 });
      expectRefused(r, flag, args.slice(0, 2).join(' '));
    }
    expect(existsSync(spool)).toBe(false);
    expect(existsSync(join(work, 'clone'))).toBe(false);
    expect(await c.psql('SELECT count(*) FROM pg_replication_slots')).toBe('0');
    expect(await c.psql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'")).toBe('0');
  });
});
