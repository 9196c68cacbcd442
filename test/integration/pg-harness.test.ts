import { existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  PgCluster,
  archiveCommand,
  destroyAllClusters,
  findPgBin,
  makeSharedTempDir,
  PGARK_BIN,
  pgConfQuote,
  pgRunAsUser,
  runAsUser,
} from '../helpers/pg-cluster.js';

afterAll(async () => {
  await destroyAllClusters();
});

describe('pg-cluster harness', () => {
  it('finds the server binaries', () => {
    const bin = findPgBin();
    expect(existsSync(path.join(bin, 'initdb'))).toBe(true);
  });

  it('runs commands as the run-as user', async () => {
    const r = await runAsUser('id', ['-un']);
    const expected = pgRunAsUser();
    if (expected !== null) expect(r.stdout.trim()).toBe(expected);
    await expect(runAsUser('sh', ['-c', 'echo oops >&2; exit 3'])).rejects.toThrow(/exit code 3[\s\S]*oops/);
    await expect(runAsUser('sleep', ['5'], { timeoutMs: 200 })).rejects.toThrow(/timed out/);
  });

  it('quotes archive_command for postgresql.conf', () => {
    const cmd = archiveCommand({ repo: "/tmp/it's repo", stanza: 'main' });
    expect(cmd).toMatch(/bin\/pgark\.js wal-push %p --repo '\/tmp\/it'\\''s repo' --stanza main$/);
    expect(pgConfQuote(cmd)).toContain("it''\\''''s");
  });

  it('lets the run-as user run node and read bin/pgark.js (archive_command runs as it)', async () => {
    archiveCommand(); // makes the checkout's ancestors traversable, verifies access
    const r = await runAsUser(process.execPath, [
      '-e',
      'process.stdout.write(String(require("fs").readFileSync(process.argv[1], "utf8").length > 0))',
      PGARK_BIN,
    ]);
    expect(r.stdout).toBe('true');
    const dir = await makeSharedTempDir();
    await runAsUser('sh', ['-c', 'echo hi > "$1/f"', 'sh', dir]);
    expect(await fsp.readFile(path.join(dir, 'f'), 'utf8')).toBe('hi\n');
  });

  it('creates, archives, stops and destroys a cluster', async () => {
    const pg = await PgCluster.create({
      name: 'smoke',
      conf: { archive_mode: 'on', archive_command: '/bin/true' },
    });
    const base = pg.baseDir;
    expect(existsSync(path.join(pg.dataDir, 'PG_VERSION'))).toBe(true);
    await pg.start();
    expect(await pg.psql('SHOW port')).toBe(String(pg.port));
    expect(await pg.psql('SHOW archive_command')).toBe('/bin/true');
    await pg.pgbench(['-i', '-s', '1']);
    expect(Number(await pg.psql('SELECT count(*) FROM pgbench_accounts'))).toBe(100_000);
    const seg = await pg.switchWal();
    expect(seg).toMatch(/^[0-9A-F]{24}$/);
    await pg.waitForArchived(seg, 30_000);
    const stats = await pg.archiverStats();
    expect(stats.archived_count).toBeGreaterThan(0);
    expect(Number(await pg.psql('SELECT archived_count FROM pg_stat_archiver'))).toBeGreaterThan(0);
    await pg.stop();
    expect(pg.postmasterPid()).toBeNull();
    await pg.destroy();
    expect(existsSync(base)).toBe(false);
  });

  it('runs two clusters concurrently, survives kill9, and starts a base backup copy', async () => {
    const [a, b] = await Promise.all([
      PgCluster.create({ name: 'a', dataChecksums: true }),
      PgCluster.create({ name: 'b', walSegmentSizeMB: 1 }),
    ]);
    await Promise.all([a.start(), b.start()]);
    expect(a.port).not.toBe(b.port);
    expect(await a.psql('SHOW data_checksums')).toBe('on');
    expect(await b.psql("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'")).toBe(
      String(1024 * 1024),
    );
    expect(await a.psql('SELECT 1; SELECT 2')).toBe('1\n2');
    await expect(a.psql('SELECT nope')).rejects.toThrow(/column "nope" does not exist/);

    await a.psql('CREATE TABLE t AS SELECT generate_series(1, 1000) AS i');
    const backupRoot = await makeSharedTempDir('pgark-bb-');
    const target = path.join(backupRoot, 'copy');
    await a.basebackup(target, { walMethod: 'fetch' });
    expect(existsSync(path.join(target, 'PG_VERSION'))).toBe(true);

    await a.kill9();
    expect(a.postmasterPid()).toBeNull();
    await a.start(); // crash recovery
    expect(await a.psql('SELECT count(*) FROM t')).toBe('1000');

    const copy = await PgCluster.fromDataDir(target, { name: 'copy' });
    expect(copy.port).not.toBe(a.port);
    await copy.start();
    expect(await copy.psql('SELECT count(*) FROM t')).toBe('1000');
    await copy.destroy();
    expect(existsSync(copy.baseDir)).toBe(false);

    await Promise.all([a.destroy(), b.destroy()]);
    await destroyAllClusters();
    expect(existsSync(backupRoot)).toBe(false);
    await expect(fsp.stat(a.baseDir)).rejects.toThrow();
  });
});
