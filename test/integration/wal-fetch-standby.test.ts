/**
 * Issue 14 item 2 against real PostgreSQL 15: a standby whose restore_command is pgark wal-fetch
 * and whose primary has not archived anything yet (the stanza does not exist) keeps running
 * (exit 1 "not archived yet", said once at info), and replays from the archive once the primary
 * archives. In archive recovery (recovery.signal) the same missing stanza stays an exit above
 * 125, through bin/pgark.js and through the shell client bin/pgark-wal-fetch alike.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  archiveCommand, chownToRunAs, destroyAllClusters, makeSharedTempDir, PgCluster, PGARK_BIN, PROJECT_ROOT, restoreCommand, runAsUser,
} from '../helpers/pg-cluster.js';
import { newUserDir, waitUntil } from '../helpers/wait.js';
import { createRepo } from '../helpers/repo.js';

const STANZA = 'main';
const SHELL_FETCH = join(PROJECT_ROOT, 'bin', 'pgark-wal-fetch');

afterAll(async () => {
  await destroyAllClusters();
}, 120_000);

describe('a standby started before its primary archived anything', () => {
  it('keeps waiting, then replays from the archive', { timeout: 300_000 }, async () => {
    const repo = await createRepo(await makeSharedTempDir('pgark-sb-repo-'));
    const work = await makeSharedTempDir('pgark-sb-work-');
    // archive_mode on with an empty archive_command: PostgreSQL keeps WAL and archives nothing yet.
    const primary = await PgCluster.create({ name: 'sb-primary', walSegmentSizeMB: 1, conf: { archive_mode: 'on', archive_command: '' } });
    await primary.start();
    const dir = join(work, 'standby');
    await primary.basebackup(dir, { walMethod: 'stream' });
    const standby = await PgCluster.fromDataDir(dir, {
      name: 'sb-standby', signal: 'standby',
      conf: {
        archive_mode: 'off',
        restore_command: restoreCommand({ repo, stanza: STANZA, extraArgs: ['--log-level', 'info'] }),
        wal_retrieve_retry_interval: '200ms',
      },
    });
    // Before the fix: "could not restore file "00000002.history" from archive: child process
    // exited with exit code 202", FATAL, and pg_ctl start fails.
    await standby.start({ timeoutSec: 60 });
    expect(await standby.psql('SELECT pg_is_in_recovery()')).toBe('t');
    // Several rounds of restore_command calls later it still runs.
    await new Promise((r) => setTimeout(r, 3000));
    expect(await standby.psql('SELECT pg_is_in_recovery()')).toBe('t');
    const waiting = await standby.readLog(200_000);
    expect(waiting).not.toMatch(/FATAL/);
    const said = waiting.match(/stanza 'main' not found in repository .*: on this standby \(standby\.signal\) that means nothing is archived yet/g) ?? [];
    expect(said, waiting.slice(-4000)).toHaveLength(1);

    // The primary starts archiving with pgark.
    await primary.psql("CREATE TABLE t (id int PRIMARY KEY, tag text); INSERT INTO t VALUES (1, 'archived')");
    const cmd = archiveCommand({ repo, stanza: STANZA }).replace(/'/g, "''");
    await primary.psql(`ALTER SYSTEM SET archive_command = '${cmd}'`);
    await primary.psql('SELECT pg_reload_conf()');
    const seg = await primary.switchWal();
    await primary.waitForArchived(seg, 120_000);

    await waitUntil('the standby to replay the archived row', async () => (await standby.psql("SELECT coalesce((SELECT tag FROM t WHERE id = 1), '')")) === 'archived', 120_000,
      undefined, 250).catch(async (err: Error) => {
      throw new Error(`${err.message}\n--- standby log ---\n${await standby.readLog(8000)}`);
    });
    expect(await standby.psql('SELECT pg_is_in_recovery()')).toBe('t');
    expect(await standby.readLog(200_000)).toMatch(/restored log file "[0-9A-F]{24}" from archive/);
    await standby.stop();
    await primary.stop();
  });
});

describe('wal-fetch without the stanza, as restore_command is run (working directory = data directory)', () => {
  it.each([
    ['bin/pgark.js', 'standby', 1],
    ['bin/pgark-wal-fetch', 'standby', 1],
    ['bin/pgark.js', 'recovery', 202],
    ['bin/pgark-wal-fetch', 'recovery', 202],
    ['bin/pgark.js', 'none', 202],
    ['bin/pgark-wal-fetch', 'none', 202],
  ] as const)('%s, signal file: %s, exits %d', { timeout: 60_000 }, async (client, signal, code) => {
    const repo = await createRepo(await makeSharedTempDir('pgark-sb-exit-repo-'));
    const work = await makeSharedTempDir('pgark-sb-exit-');
    const dataDir = await newUserDir(work, 'data');
    await newUserDir(dataDir, 'pg_wal');
    if (signal !== 'none') {
      await writeFile(join(dataDir, `${signal}.signal`), '');
      await chownToRunAs(join(dataDir, `${signal}.signal`));
    }
    const argv = ['000000010000000000000002', 'pg_wal/RECOVERYXLOG', '--repo', repo, '--stanza', STANZA];
    const r = client === 'bin/pgark.js'
      ? await runAsUser(process.execPath, [PGARK_BIN, 'wal-fetch', ...argv], { cwd: dataDir, allowFail: true, env: {} })
      : await runAsUser('/bin/sh', [SHELL_FETCH, ...argv], { cwd: dataDir, allowFail: true, env: { PGARK_NODE: process.execPath } });
    expect(r.code, r.stderr).toBe(code);
    if (code !== 1) expect(r.stderr).toMatch(/stanza 'main' not found .*not reporting the file as missing/);
  });
});
