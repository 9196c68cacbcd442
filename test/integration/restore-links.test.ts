/**
 * `restore --delta` never writes through a link it did not create (issue 14 item 6), against
 * real PostgreSQL 15: in a restored data directory, postgresql.conf and a relation file are
 * replaced by symbolic links to one file outside, postgresql.auto.conf by a hard link to
 * another, and pg_xact and pg_wal by links to directories outside. After `restore --delta`:
 * every outside file is byte-for-byte unchanged, the targets are regular files (or
 * directories) with the manifest's content, the notes name each link removed, and the cluster
 * starts with the backup's data.
 */
import { createHash } from 'node:crypto';
import { link, lstat, mkdir, readdir, readFile, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveCommand, chownToRunAs, destroyAllClusters, makeSharedTempDir, PgCluster } from '../helpers/pg-cluster.js';
import { pgark } from '../helpers/pgark-run.js';
import { createRepo } from '../helpers/repo.js';

const STANZA = 'main';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface RestoreJson {
  filesWritten: number;
  filesUnchanged: number;
  filesRemoved: number;
  notes: string[];
}
interface ManifestFile {
  path: string;
  size: number;
  sha256: string;
}

let repo: string;
let work: string;
let src: PgCluster;
let backupId: string;
let fingerprint: string;
let relPath: string;
/** A table in tablespace ts (at tsDir in the source), its relation file and fingerprint. */
let tsDir: string;
let tsRelPath: string;
let tsFingerprint: string;

async function run<T>(args: string[], env: Record<string, string> = {}): Promise<T> {
  const r = await pgark([...args, '--json'], { env, allowFail: true, timeoutMs: 180_000 });
  if (r.code !== 0) throw new Error(`pgark ${args.join(' ')} exited ${r.code}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr.slice(-6000)}`);
  return JSON.parse(r.stdout) as T;
}

const restoreArgs = (dir: string, extra: string[]) => ['restore', backupId, '--repo', repo, '--stanza', STANZA, '--pgdata', dir, '--jobs', '2', '--no-progress', '--target-immediate', '--target-action', 'promote', '--tablespace-map', `ts=${dir}-ts`, ...extra];

/** Every file under `root` with its sha256 (links listed as links). */
async function snapshot(root: string, rel = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(join(root, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) Object.assign(out, await snapshot(root, p));
    else if (e.isSymbolicLink()) out[p] = 'link';
    else out[p] = sha256(await readFile(join(root, p)));
  }
  return out;
}

afterAll(async () => {
  await destroyAllClusters();
}, 120_000);

beforeAll(async () => {
  repo = await createRepo(await makeSharedTempDir('pgark-rl-repo-'));
  work = await makeSharedTempDir('pgark-rl-work-');
  src = await PgCluster.create({
    name: 'rl-src',
    dataChecksums: true,
    conf: { archive_mode: 'on', archive_command: archiveCommand({ repo, stanza: STANZA }) },
  });
  await src.start();
  tsDir = join(work, 'src-ts');
  await mkdir(tsDir, { mode: 0o700 });
  await chownToRunAs(tsDir);
  await src.psql(`CREATE TABLESPACE ts LOCATION '${tsDir}'`);
  await src.psql("CREATE TABLE u TABLESPACE ts AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 5000) g");
  tsRelPath = await src.psql("SELECT pg_relation_filepath('u')");
  tsFingerprint = await src.psql("SELECT count(*) || ':' || md5(string_agg(id || v, ',' ORDER BY id)) FROM u");
  await src.psql("CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 20000) g");
  await src.psql('CHECKPOINT');
  relPath = await src.psql("SELECT pg_relation_filepath('t')");
  fingerprint = await src.psql("SELECT count(*) || ':' || md5(string_agg(id || v, ',' ORDER BY id)) FROM t");
  const b = await run<{ id: string }>(['backup', '--repo', repo, '--stanza', STANZA, '--pgdata', src.dataDir, '--jobs', '2', '--no-progress', '--type', 'full'],
    { PGHOST: src.socketDir, PGPORT: String(src.port), PGUSER: 'postgres', PGDATABASE: 'postgres' });
  backupId = b.id;
  await src.psql('SELECT pg_switch_wal()');
}, 180_000);

describe('restore --delta with links in the target', () => {
  it('replaces the links, leaves what they point to untouched, and the cluster starts', async () => {
    const dir = join(work, 'copy');
    await run(restoreArgs(dir, []));
    const manifest = await run<{ files: ManifestFile[] }>(['show', backupId, '--files', '--repo', repo, '--stanza', STANZA]);
    const entry = (p: string) => manifest.files.find((f) => f.path === p)!;
    expect(entry('postgresql.conf')).toBeDefined();
    expect(entry(relPath)).toBeDefined();

    // Outside the data directory: one file both links point to, one hard-linked, two directories.
    const outside = join(work, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'victim'), 'precious: must not be overwritten\n');
    await writeFile(join(outside, 'victim-hard'), 'also precious\n');
    await rename(join(dir, 'pg_xact'), join(outside, 'xact'));
    await writeFile(join(outside, 'xact', 'keep-me'), 'not part of any backup\n');
    await rename(join(dir, 'pg_wal'), join(outside, 'wal'));
    await writeFile(join(outside, 'wal', 'keep-me-too'), 'not part of any backup\n');
    await chownToRunAs(outside);
    for (const p of ['postgresql.conf', relPath]) {
      await rename(join(dir, p), join(work, `${p.replace(/\//g, '_')}.moved`));
      await symlink(join(outside, 'victim'), join(dir, p));
    }
    await rename(join(dir, 'postgresql.auto.conf'), join(work, 'auto.moved'));
    await link(join(outside, 'victim-hard'), join(dir, 'postgresql.auto.conf'));
    await symlink(join(outside, 'xact'), join(dir, 'pg_xact'));
    await symlink(join(outside, 'wal'), join(dir, 'pg_wal'));
    // In the tablespace (reached through restore's own pg_tblspc/<oid> link): a relation file.
    expect(tsRelPath).toMatch(/^pg_tblspc\/\d+\//);
    const tsFile = join(dir, tsRelPath);
    await rename(tsFile, join(work, 'ts-rel.moved'));
    await symlink(join(outside, 'victim'), tsFile);
    await chownToRunAs(dir);
    await chownToRunAs(`${dir}-ts`);
    const before = await snapshot(outside);

    const r = await run<RestoreJson>(restoreArgs(dir, ['--delta']));

    expect(await snapshot(outside)).toEqual(before);
    for (const p of ['postgresql.conf', relPath, tsRelPath]) {
      const st = await lstat(join(dir, p));
      expect(st.isFile(), `${p} is a regular file`).toBe(true);
      expect(st.nlink).toBe(1);
      expect(sha256(await readFile(join(dir, p))), `${p} has the manifest's content`).toBe(entry(p).sha256);
    }
    const auto = await lstat(join(dir, 'postgresql.auto.conf'));
    expect(auto.isFile() && auto.nlink === 1).toBe(true);
    expect(await readFile(join(dir, 'postgresql.auto.conf'), 'utf8')).toMatch(/restore_command/);
    for (const d of ['pg_xact', 'pg_wal']) expect((await lstat(join(dir, d))).isDirectory(), `${d} is a directory`).toBe(true);
    for (const f of manifest.files.filter((f) => f.path.startsWith('pg_xact/'))) {
      expect(sha256(await readFile(join(dir, f.path)))).toBe(f.sha256);
    }
    const notes = r.notes.join('\n');
    for (const p of ['postgresql.conf', relPath, 'pg_xact', 'pg_wal']) expect(notes).toContain(`'${join(dir, p)}' -> `);
    expect(notes).toMatch(/move pg_wal there and link it again/);
    // The tablespace link is restore's own: re-created, not reported; the planted one is.
    const oid = tsRelPath.split('/')[1]!;
    expect(notes).not.toContain(`'${join(dir, 'pg_tblspc', oid)}' -> `);
    expect(notes).toContain(' -> ');
    expect((await lstat(join(dir, 'pg_tblspc', oid))).isSymbolicLink()).toBe(true);
    expect((await lstat(join(`${dir}-ts`, tsRelPath.split('/').slice(2).join('/')))).isFile()).toBe(true);

    // The copy starts and holds the backup's data.
    const copy = await PgCluster.fromDataDir(dir, { name: 'rl-copy' });
    await copy.start({ timeoutSec: 120 });
    const deadline = Date.now() + 90_000;
    while ((await copy.psql('SELECT pg_is_in_recovery()')) !== 'f') {
      if (Date.now() > deadline) throw new Error(`recovery did not end\n${await copy.readLog(8000)}`);
      await sleep(200);
    }
    expect(await copy.psql("SELECT count(*) || ':' || md5(string_agg(id || v, ',' ORDER BY id)) FROM t")).toBe(fingerprint);
    expect(await copy.psql("SELECT count(*) || ':' || md5(string_agg(id || v, ',' ORDER BY id)) FROM u")).toBe(tsFingerprint);
    expect(await copy.psql("SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'ts'")).toBe(`${dir}-ts`);
    await copy.destroy();
  }, 240_000);
});
