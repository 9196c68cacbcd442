/**
 * An incremental backup does not read files whose size and mtime are unchanged since its parent
 * (backup/unchanged.ts), against real PostgreSQL 15 (data checksums on):
 *
 * - after a full backup, table `u` and two files of our own in the data directory are left
 *   alone, table `c` is updated, a third file is rewritten with the same size, and a fourth is
 *   rewritten with the same size and its mtime set back to what it was (as `cp -p`, `touch -d`
 *   or a restore do: only its ctime tells);
 * - the incremental runs under strace (when installed): it never opens the files left alone,
 *   takes them from the full backup (manifest), and its bytes read leave them out; the changed
 *   files and table are opened, read and stored;
 * - --delta reads every file;
 * - the incremental restores to exactly the source's rows and file bytes.
 *
 * Files' mtimes are set an hour back before the full backup, so that "unchanged since well
 * before the parent's copy start" holds without waiting (a cluster that was not just created).
 */
import { createHash } from 'node:crypto';
import { chown, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { archiveCommand, destroyAllClusters, lookupUser, makeSharedTempDir, PgCluster, PGARK_BIN, connEnv, pgRunAsUser, runAsUser } from '../helpers/pg-cluster.js';
import { pgark } from '../helpers/pgark-run.js';
import { waitPromoted } from '../helpers/pg-cluster.js';
import { pseudoRandom } from '../helpers/bytes.js';
import { MTIME_MARGIN_MS } from '../../src/backup/unchanged.js';
import { createRepo } from '../helpers/repo.js';

const STANZA = 'main';
const MiB = 1024 * 1024;

interface BackupJson {
  id: string;
  type: 'full' | 'incr';
  size: { original: number; stored: number; files: number; unchangedFiles?: number; unchangedBytes?: number; changedBlocks?: number };
  notes: string[];
}
const STRACE = '/usr/bin/strace';
interface ManifestFile {
  path: string;
  size: number;
  mode: number;
  sha256: string;
  object?: { backup: string; n: number; offset: number };
  delta?: { n: number; offset: number; blocks: Array<[number, number]> };
}

afterAll(async () => {
  await destroyAllClusters();
}, 120_000);

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return pgark(args, { env, timeoutMs: 240_000, allowFail: true });
}

async function jsonOk<T>(args: string[], env: Record<string, string> = {}): Promise<T> {
  const r = await run([...args, '--json'], env);
  if (r.code !== 0) throw new Error(`pgark ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr.slice(-6000)}`);
  return JSON.parse(r.stdout) as T;
}

/** Every regular file under `dir`, relative paths. */
async function filesUnder(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await filesUnder(dir, p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

describe('incremental backup: unchanged files are not read', () => {
  let repo: string;
  let work: string;
  let src: PgCluster;
  let full: BackupJson;
  let incr: BackupJson;
  let files: Map<string, ManifestFile>;
  let uPath: string;
  let cPath: string;
  let rowsU: string;
  let rowsC: string;
  const probe = { big: 'pgark_probe_unchanged', small: 'pgark_probe_small', rewritten: 'pgark_probe_rewritten', touched: 'pgark_probe_touched_back' };
  /** Files the incremental opened (strace), or undefined without strace. */
  let opened: Set<string> | undefined;
  const content: Record<string, Buffer> = {};

  const backup = (extra: string[]) => ['backup', '--repo', repo, '--stanza', STANZA, '--pgdata', src.dataDir, '--jobs', '2', '--no-progress', ...extra];

  async function writeOwned(name: string, body: Buffer): Promise<void> {
    const p = join(src.dataDir, name);
    await writeFile(p, body, { mode: 0o600 });
    const owner = pgRunAsUser();
    if (owner) {
      const u = lookupUser(owner);
      await chown(p, u.uid, u.gid);
    }
  }

  beforeAll(async () => {
    repo = await createRepo(await makeSharedTempDir('pgark-unch-repo-'));
    work = await makeSharedTempDir('pgark-unch-work-');
    src = await PgCluster.create({
      name: 'unchanged', dataChecksums: true,
      conf: { archive_mode: 'on', archive_command: archiveCommand({ repo, stanza: STANZA }), max_wal_size: '1GB', checkpoint_timeout: '30min' },
    });
    await src.start();
    await src.psql(`CREATE TABLE u(id int PRIMARY KEY, v text); INSERT INTO u SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 60000) g;
                    CREATE TABLE c(id int PRIMARY KEY, v text) WITH (fillfactor = 50); INSERT INTO c SELECT g, md5(g::text) FROM generate_series(1, 20000) g;
                    VACUUM ANALYZE; CHECKPOINT;`);
    uPath = await src.psql("SELECT pg_relation_filepath('u')");
    cPath = await src.psql("SELECT pg_relation_filepath('c')");
    content[probe.big] = pseudoRandom(6 * MiB, 1);
    content[probe.small] = pseudoRandom(100_000, 2);
    content[probe.rewritten] = pseudoRandom(6 * MiB, 3);
    content[probe.touched] = pseudoRandom(6 * MiB, 5);
    for (const [name, body] of Object.entries(content)) await writeOwned(name, body);
    // An hour back: as in a cluster whose files were last written long before the backup.
    const past = new Date(Date.now() - 3600_000);
    for (const p of await filesUnder(join(src.dataDir, 'base'))) await utimes(join(src.dataDir, 'base', p), past, past);
    for (const name of Object.keys(content)) await utimes(join(src.dataDir, name), past, past);
    // utimes set their ctime to now: let it age past the margin (MTIME_MARGIN_MS) before the full backup.
    await new Promise((r) => setTimeout(r, MTIME_MARGIN_MS + 1000));

    full = await jsonOk<BackupJson>(backup(['--type', 'full']), connEnv(src));

    // Changes: table c (HOT updates into its free space: same file size), a file rewritten with the
    // same size (truncated, then written: a new mtime).
    await src.psql('UPDATE c SET v = upper(v) WHERE id % 7 = 0; CHECKPOINT;');
    content[probe.rewritten] = pseudoRandom(6 * MiB, 4);
    await writeFile(join(src.dataDir, probe.rewritten), content[probe.rewritten]!);
    rowsU = await src.psql("SELECT count(*) || ':' || md5(string_agg(id || v, ',' ORDER BY id)) FROM u");
    rowsC = await src.psql("SELECT count(*) || ':' || md5(string_agg(id || v, ',' ORDER BY id)) FROM c");
    content[probe.touched] = pseudoRandom(6 * MiB, 6);
    await writeFile(join(src.dataDir, probe.touched), content[probe.touched]!);
    await utimes(join(src.dataDir, probe.touched), past, past);

    if (existsSync(STRACE)) {
      const trace = join(work, 'incr.strace');
      const r = await runAsUser(STRACE, ['-f', '-qq', '-e', 'trace=open,openat', '-o', trace, process.execPath, PGARK_BIN, ...backup(['--type', 'incr']), '--json'], { env: connEnv(src), timeoutMs: 240_000, allowFail: true });
      if (r.code !== 0) throw new Error(`pgark backup under strace exited ${r.code}\n${r.stderr.slice(-4000)}`);
      incr = JSON.parse(r.stdout) as BackupJson;
      opened = new Set([...(await readFile(trace, 'utf8')).matchAll(/open(?:at)?\([^"]*"([^"]+)"/g)].map((m) => m[1]!));
    } else {
      incr = await jsonOk<BackupJson>(backup(['--type', 'incr']), connEnv(src));
    }
    const shown = await jsonOk<{ files: ManifestFile[] }>(['show', incr.id, '--files', '--repo', repo, '--stanza', STANZA]);
    files = new Map(shown.files.map((f) => [f.path, f]));
  }, 300_000);

  it('the incremental took the untouched files from the full backup without opening them', () => {
    expect(incr.type).toBe('incr');
    for (const p of [probe.big, probe.small, uPath]) {
      expect(files.get(p)?.object?.backup, p).toBe(full.id);
      if (opened) expect(opened.has(join(src.dataDir, p)), `${p} opened`).toBe(false);
    }
    expect(incr.size.unchangedFiles).toBeGreaterThanOrEqual(3);
  });

  it('strace saw the incremental open the changed files (when strace is installed)', () => {
    if (!opened) return; // the byte counts and manifest checks of the other tests still apply
    for (const p of [probe.rewritten, probe.touched, cPath]) expect(opened.has(join(src.dataDir, p)), `${p} opened`).toBe(true);
  });

  it('a file rewritten with its mtime set back (cp -p, touch -d) is read: its ctime changed', () => {
    expect(files.get(probe.touched)?.object?.backup).toBe(incr.id);
    expect(files.get(probe.touched)?.sha256).toBe(sha256(content[probe.touched]!));
  });

  it('its bytes read leave out every file it took unread, and include the changed ones', async () => {
    const uSize = (await stat(join(src.dataDir, uPath))).size;
    expect(uSize).toBeGreaterThan(4 * MiB);
    expect(incr.size.unchangedBytes).toBeGreaterThanOrEqual(6 * MiB + 100_000 + uSize);
    // Bytes read + bytes not read = what the walk listed; the full backup read all of it.
    expect(incr.size.original).toBeLessThan(full.size.original - 6 * MiB - uSize);
    expect(incr.size.original).toBeGreaterThanOrEqual(6 * MiB); // the rewritten file at least
  });

  it('the changed file (same size, new mtime) and the changed table were read and stored by the incremental', () => {
    expect(files.get(probe.rewritten)?.object?.backup).toBe(incr.id);
    expect(files.get(probe.rewritten)?.sha256).toBe(sha256(content[probe.rewritten]!));
    const c = files.get(cPath)!;
    expect(c.object?.backup === incr.id || (c.delta !== undefined && c.delta.blocks.length > 0)).toBe(true);
  });

  it('restores the incremental to exactly the source rows and file bytes', async () => {
    const dir = join(work, 'restored');
    const r = await run(['restore', incr.id, '--repo', repo, '--stanza', STANZA, '--pgdata', dir, '--jobs', '2', '--no-progress', '--target-immediate', '--target-action', 'promote']);
    expect(r.code, r.stderr).toBe(0);
    for (const name of Object.values(probe)) expect(sha256(await readFile(join(dir, name))), name).toBe(sha256(content[name]!));
    const copy = await PgCluster.fromDataDir(dir, { name: 'unchanged-restored' });
    await copy.start({ timeoutSec: 120 });
    await waitPromoted(copy);
    expect(await copy.psql("SELECT count(*) || ':' || md5(string_agg(id || v, ',' ORDER BY id)) FROM u")).toBe(rowsU);
    expect(await copy.psql("SELECT count(*) || ':' || md5(string_agg(id || v, ',' ORDER BY id)) FROM c")).toBe(rowsC);
    await copy.destroy();
    await rm(dir, { recursive: true, force: true });
  }, 240_000);

  it('--delta reads every file and takes none unread', async () => {
    const d = await jsonOk<BackupJson>(backup(['--type', 'incr', '--delta']), connEnv(src));
    expect(d.size.unchangedFiles ?? 0).toBe(0);
    expect(d.notes.join('\n')).toMatch(/every file is read: --delta/);
    expect(d.size.original).toBeGreaterThanOrEqual(full.size.original - MiB);
  }, 240_000);
});
