/**
 * Restore and clone run as root (issue 19 item 6) against real PostgreSQL 15: the files go to
 * the data directory owner recorded in the backup, so the copy starts as that (unprivileged)
 * user without any chown by the test; an unknown or root --owner is refused before anything
 * is written (exit 2). Needs root; the decision logic itself is unit-tested in
 * test/unit/restore-owner.test.ts.
 */
import { execFile } from 'node:child_process';
import { lstat, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveCommand, chownToRunAs, destroyAllClusters, lookupUser, makeSharedTempDir, PGARK_BIN, PgCluster, pgRunAsUser } from '../helpers/pg-cluster.js';
import { pgark } from '../helpers/pgark-run.js';
import { createRepo } from '../helpers/repo.js';
import { expectJsonFormat } from '../helpers/json-schema.js';

const STANZA = 'main';
const isRoot = typeof process.geteuid === 'function' && process.geteuid() === 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** pgark as this process's user (root), not as the PostgreSQL user like helpers/pgark-run. */
function pgarkAsRoot(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [PGARK_BIN, ...args], { timeout: 180_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Every path under `root` whose owner is not uid:gid. */
async function notOwnedBy(root: string, uid: number, gid: number, rel = ''): Promise<string[]> {
  const out: string[] = [];
  const st = await lstat(join(root, rel));
  if (st.uid !== uid || st.gid !== gid) out.push(`${rel || '.'} (${st.uid}:${st.gid})`);
  if (st.isDirectory()) for (const e of await readdir(join(root, rel))) out.push(...(await notOwnedBy(root, uid, gid, rel ? `${rel}/${e}` : e)));
  return out;
}

describe.skipIf(!isRoot)('restore and clone as root (skipped: the tests do not run as root here)', () => {
  let repo: string;
  let work: string;
  let src: PgCluster;
  let backupId: string;
  let fingerprint: string;
  const pgUser = () => lookupUser(pgRunAsUser()!);

  beforeAll(async () => {
    repo = await createRepo(await makeSharedTempDir('pgark-own-repo-'));
    work = await makeSharedTempDir('pgark-own-work-');
    src = await PgCluster.create({ name: 'own-src', conf: { archive_mode: 'on', archive_command: archiveCommand({ repo, stanza: STANZA }) } });
    await src.start();
    const tsDir = join(work, 'src-ts');
    await mkdir(tsDir, { mode: 0o700 });
    await chownToRunAs(tsDir);
    await src.psql(`CREATE TABLESPACE ts LOCATION '${tsDir}'`);
    await src.psql('CREATE TABLE t TABLESPACE ts AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 3000) g');
    fingerprint = await src.psql("SELECT count(*) || ':' || md5(string_agg(id || v, ',' ORDER BY id)) FROM t");
    const r = await pgark(['backup', '--repo', repo, '--stanza', STANZA, '--pgdata', src.dataDir, '--no-progress', '--type', 'full', '--json'], { env: src.clientEnv(), timeoutMs: 180_000 });
    backupId = (JSON.parse(r.stdout) as { id: string }).id;
    await src.psql('SELECT pg_switch_wal()');
  }, 240_000);

  afterAll(async () => {
    await destroyAllClusters();
  }, 120_000);

  const restoreArgs = (dir: string, extra: string[] = []) => ['restore', backupId, '--repo', repo, '--stanza', STANZA, '--pgdata', dir, '--no-progress',
    '--target-immediate', '--target-action', 'promote', '--tablespace-map', `ts=${dir}-ts`, ...extra];

  it('restore as root gives every file to the recorded owner; PostgreSQL starts on it as that user', async () => {
    const dir = join(work, 'copy');
    const r = await pgarkAsRoot([...restoreArgs(dir), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = expectJsonFormat<{ owner: { user: string; uid: number }; notes: string[] }>(r.stdout, 'restore');
    const u = pgUser();
    expect(out.owner).toMatchObject({ user: u.name, uid: u.uid });
    expect(out.notes.join('\n')).toContain(`the owner recorded in backup ${backupId}`);
    expect(await notOwnedBy(dir, u.uid, u.gid)).toEqual([]);
    expect(await notOwnedBy(`${dir}-ts`, u.uid, u.gid)).toEqual([]);

    const copy = await PgCluster.fromDataDir(dir, { name: 'own-copy', fixOwnership: false });
    await copy.start({ timeoutSec: 120 });
    const deadline = Date.now() + 90_000;
    while ((await copy.psql('SELECT pg_is_in_recovery()')) !== 'f') {
      if (Date.now() > deadline) throw new Error(`recovery did not end\n${await copy.readLog(8000)}`);
      await sleep(200);
    }
    expect(await copy.psql("SELECT count(*) || ':' || md5(string_agg(id || v, ',' ORDER BY id)) FROM t")).toBe(fingerprint);
    await copy.destroy();
  }, 300_000);

  it.each([
    ['an unknown user', 'no-such-user-pgark', /not restoring: --owner: no user 'no-such-user-pgark' on this host/],
    ['root', 'root', /not restoring: --owner root: PostgreSQL refuses to run as root/],
    ['an unknown group', 'postgres:no-such-group-pgark', /no group 'no-such-group-pgark'/],
  ])('refuses --owner naming %s before writing anything (exit 2)', async (_label, owner, message) => {
    const dir = join(work, `refused-${owner.replace(/\W/g, '')}`);
    const r = await pgarkAsRoot(restoreArgs(dir, ['--owner', owner]));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    await expect(lstat(dir)).rejects.toThrow(/ENOENT/);
  }, 120_000);

  it('clone as root: the files clone writes after the restore belong to the owner too', async () => {
    const dir = join(work, 'clone');
    const r = await pgarkAsRoot(['clone', backupId, '--repo', repo, '--stanza', STANZA, '--pgdata', dir, '--no-progress', '--tablespace-map', `ts=${dir}-ts`,
      '--port', '5999', '--owner', pgRunAsUser()!, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const u = pgUser();
    expect(await notOwnedBy(dir, u.uid, u.gid)).toEqual([]);
    expect((JSON.parse(r.stdout) as { startCommand: string }).startCommand).toMatch(new RegExp(`^sudo -u ${u.name} `));
  }, 240_000);
});
