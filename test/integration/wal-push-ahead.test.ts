/**
 * wal-push look-ahead and stanza creation against real PostgreSQL 15 segments: one call pushes
 * the segments PostgreSQL marked ready, later calls for them return from the local record
 * without touching storage, a bad ready segment never fails the requested one, and a promoted
 * standby's first .history file can create the stanza.
 */
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chownToRunAs, destroyAllClusters, makeSharedTempDir, PgCluster, pgarkProcessesMentioning } from '../helpers/pg-cluster.js';
import { pgark, pgarkJson } from '../helpers/pgark-run.js';
import { createRepo } from '../helpers/repo.js';
import { walCopy as walCopyOf } from '../helpers/wal-copy.js';

let work: string;
let src: PgCluster;
let segs: string[];
let sysid: string;

afterAll(async () => {
  await destroyAllClusters();
});

beforeAll(async () => {
  work = await makeSharedTempDir('pgark-ahead-');
  src = await PgCluster.create({ name: 'ahead', conf: { wal_keep_size: '1GB' } });
  await src.start();
  segs = [];
  for (let i = 0; i < 5; i++) {
    await src.psql(`CREATE TABLE t${i} AS SELECT g FROM generate_series(1, 20000) g`);
    segs.push(await src.switchWal());
  }
  sysid = await src.psql('SELECT system_identifier FROM pg_control_system()');
  await src.stop();
}, 120_000);

/** A pg_wal copy with the given segments, each marked `.ready`, plus global/pg_control. */
const walCopy = (sub: string, names: string[], ready: string[] = names): Promise<string> => walCopyOf(src.dataDir, join(work, sub), names, ready);

/** Wait until no look-ahead worker for this pg_wal runs any more (bounded). */
async function workerDone(wal: string): Promise<void> {
  const until = Date.now() + 60_000;
  while (pgarkProcessesMentioning(`wal-push-ahead ${wal}`).length > 0) {
    if (Date.now() > until) throw new Error('look-ahead worker did not finish within 60 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  expect((await readdir(join(wal, '.pgark', 'pushed'))).filter((n) => n.endsWith('.lock'))).toEqual([]);
}

describe('wal-push look-ahead', () => {
  it('pushes ready segments ahead and answers later calls from the record', async () => {
    const repo = await createRepo(join(work, 'repo1'));
    const wal = await walCopy('c1', segs);
    const first = await pgarkJson<{ status: string; queuedAhead: string[] }>(['wal-push', join(wal, segs[0]!), '--repo', repo, '--push-ahead', '3', '--jobs', '2']);
    expect(first.status).toBe('stored');
    expect(first.queuedAhead).toEqual(segs.slice(1, 4));
    await workerDone(wal);
    // After its window of 3 the worker went on with the next ready segment by itself.
    expect((await readdir(join(wal, '.pgark', 'pushed'))).sort()).toEqual(segs.slice(1));
    const info = await pgarkJson<{ wal: { segments: number } }>(['info', '--repo', repo]);
    expect(info.wal.segments).toBe(5);

    // The next call to the same repository is answered from the record.
    const second = await pgarkJson<{ status: string }>(['wal-push', join(wal, segs[1]!), '--repo', repo, '--push-ahead', '0']);
    expect(second.status).toBe('pushed-ahead');
    expect(await readdir(join(wal, '.pgark', 'pushed'))).not.toContain(segs[1]);
    // Without --json the entry point answers from the record before loading the CLI.
    const third = await pgark(['wal-push', join(wal, segs[2]!), '--repo', repo]);
    expect(third.code).toBe(0);
    expect((await readdir(join(wal, '.pgark', 'pushed'))).sort()).toEqual(segs.slice(3));
    // A call archiving to another repository never takes a record for its own: it pushes there.
    const other = await createRepo(join(work, 'repo1-elsewhere'));
    const fourth = await pgarkJson<{ status: string }>(['wal-push', join(wal, segs[3]!), '--repo', other, '--push-ahead', '0']);
    expect(fourth.status).toBe('stored');
    expect((await pgarkJson<{ wal: { segments: number } }>(['info', '--repo', other])).wal.segments).toBe(1);
    // pgark never writes .done files: renaming .ready is PostgreSQL's job.
    expect((await readdir(join(wal, 'archive_status'))).filter((n) => n.endsWith('.done'))).toEqual([]);
  });

  it('does not trust a record when the file changed since', async () => {
    const repo = await createRepo(join(work, 'repo2'));
    const wal = await walCopy('c2', segs.slice(0, 2));
    await pgark(['wal-push', join(wal, segs[0]!), '--repo', repo]);
    await workerDone(wal);
    // Replace segment 2 by a different copy (new inode): the record no longer matches.
    const path = join(wal, segs[1]!);
    const bytes = await readFile(path);
    bytes[8192 + 100]! ^= 0xff;
    await rm(path);
    await writeFile(path, bytes);
    await chownToRunAs(path);
    const r = await pgark(['wal-push', path, '--repo', repo], { allowFail: true });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/archive mismatch/);
  });

  it('a bad ready segment fails only itself, never the requested one', async () => {
    const repo = await createRepo(join(work, 'repo3'));
    const wal = await walCopy('c3', segs.slice(0, 3));
    await writeFile(join(wal, segs[1]!), Buffer.alloc(100, 1)); // truncated garbage marked ready
    const r = await pgarkJson<{ status: string; queuedAhead: string[] }>(['wal-push', join(wal, segs[0]!), '--repo', repo]);
    expect(r.status).toBe('stored');
    expect(r.queuedAhead).toEqual(segs.slice(1, 3));
    await workerDone(wal);
    expect(await readdir(join(wal, '.pgark', 'pushed'))).toEqual([segs[2]]);
    const bad = await pgark(['wal-push', join(wal, segs[1]!), '--repo', repo], { allowFail: true });
    expect(bad.code).toBe(5);
  });
});

describe('stanza creation', () => {
  it('a .history file first (promoted standby) creates the stanza from pg_wal and pg_control', async () => {
    const repo = await createRepo(join(work, 'repo4'));
    const wal = await walCopy('c4', segs.slice(0, 2), []);
    const hist = join(wal, '00000002.history');
    await writeFile(hist, '1\t0/5000000\tno recovery target specified\n');
    await chownToRunAs(hist);
    await pgark(['wal-push', hist, '--repo', repo]);
    const info = await pgarkJson<{ systemIdentifier: string; walSegmentSize: number; pgVersion: number }>(['info', '--repo', repo]);
    expect(info.systemIdentifier).toBe(sysid);
    expect(info.walSegmentSize).toBe(16 * 1024 * 1024);
    expect(info.pgVersion).toBe(15);
    expect((await stat(join(repo, 'main', 'wal', '00000002', '00000002.history'))).mode & 0o777).toBe(0o600);
  });
});
