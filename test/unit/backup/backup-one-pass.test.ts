/**
 * Backup's data objects encoded in one pass (runBackupTask through Repository.putPlainEncoded and
 * repo/one-pass-encoder.ts) are byte for byte the objects of the stream path (putObject:
 * encodeObject's pipeline), which an encrypted stanza and the other codecs still take: the same
 * stored bytes and the same manifest entries (sha256, sizes, block deltas, page checksum
 * failures) for own files, parts, bundles and an incremental's block delta, lz4 and none.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addTaskResult, emptyCopy } from '../../../src/backup/backup.js';
import { finishParts } from '../../../src/backup/backup-rules.js';
import { runBackupTask, type BackupTaskResult, type BackupWorkerInit } from '../../../src/backup/backup-worker.js';
import { planTasks } from '../../../src/backup/tasks.js';
import { walkDataDirectory } from '../../../src/backup/walk.js';
import type { FileEntry } from '../../../src/catalog/manifest.js';
import type { CodecName } from '../../../src/io/codec.js';
import { dataObjectKey } from '../../../src/repo/layout.js';
import { readAll } from '../../../src/repo/object-stream.js';
import type { Repository } from '../../../src/repo/repository.js';
import { memoryRepo, type MemoryRepo } from '../../helpers/memory-repo.js';
import { BLOCK, pages, setPageLsn, writeFiles } from '../../helpers/synthetic-pgdata.js';

const LOW = 0x1000000n;
const F_START = '0/2000028';
const I_START = '0/4000028';
const NEW = 0x3000000n; // a page changed after the full backup started

/** `count` initialised pages of repeating bytes (lz4 compresses them) with valid checksums. */
function compressiblePages(count: number, lsn: bigint): Buffer {
  const buf = Buffer.alloc(count * BLOCK);
  for (let i = 0; i < buf.length; i++) buf[i] = (i * 7 + (i >> 11)) & 0x1f;
  for (let i = 0; i < count; i++) setPageLsn(buf, i, lsn);
  return buf;
}

let dir: string;
let pgdata: string;
const repos: MemoryRepo[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgark-unit-backup-one-pass-'));
  pgdata = join(dir, 'data');
  const bad = compressiblePages(40, LOW);
  bad[5 * BLOCK + 100] = bad[5 * BLOCK + 100]! ^ 0xff; // block 5 fails its page checksum
  await writeFiles(pgdata, {
    'PG_VERSION': '15\n',
    'global/pg_control': randomBytes(BLOCK),
    'base/1/16384': compressiblePages(700, LOW), // 5.5 MiB: an object of its own, not a whole MiB
    'base/1/16385': pages(520, LOW), // 4.06 MiB of random pages: frames stored uncompressed
    'base/1/16386': bad,
    'base/1/16387': Buffer.alloc(0),
    'base/1/16388_fsm': randomBytes(3 * BLOCK),
    'postgresql.conf': 'shared_buffers = 128MB\n',
  });
});

afterAll(async () => {
  for (const m of repos) m.drop();
  await rm(dir, { recursive: true, force: true });
});

function init(m: MemoryRepo, codec: CodecName, id: string, startLsn: string, parentStartLsn?: string): BackupWorkerInit {
  return {
    settings: m.settings(), backupId: id, codec, level: undefined, checksums: true, blockSize: BLOCK, relsegBlocks: 131072, startLsn,
    ...(parentStartLsn ? { parentStartLsn, blockDelta: true } : {}),
  };
}

/** The stream path: a repository whose putPlainEncoded declines, as it does for an encrypted stanza. */
function streamOnly(repo: Repository): Repository {
  return Object.assign(Object.create(repo) as Repository, { putPlainEncoded: async () => undefined });
}

/** `repo`, counting the objects putPlainEncoded stored (the one-pass path taken). */
function counting(repo: Repository): { repo: Repository; stored: () => number } {
  let n = 0;
  const put = repo.putPlainEncoded.bind(repo);
  const wrapped = Object.assign(Object.create(repo) as Repository, {
    putPlainEncoded: async (...args: Parameters<Repository['putPlainEncoded']>) => {
      const r = await put(...args);
      if (r) n++;
      return r;
    },
  });
  return { repo: wrapped, stored: () => n };
}

async function backUp(m: MemoryRepo, repo: Repository, codec: CodecName, id: string, startLsn: string, parent?: { files: Map<string, FileEntry>; startLsn: string }) {
  const walk = await walkDataDirectory(pgdata, 15);
  const tasks = planTasks(walk.files, parent?.files, { partSize: 2 * 1024 * 1024 + 3 * BLOCK });
  const results: BackupTaskResult[] = [];
  for (const t of tasks) results.push(await runBackupTask(init(m, codec, id, startLsn, parent?.startLsn), t, () => undefined, repo));
  const objects = new Map<number, Buffer>();
  for (const t of tasks) objects.set(t.n, await readAll(await m.driver.get(dataObjectKey('main', id, t.n)), 256 * 1024 * 1024));
  return { tasks, results, objects };
}

/** The manifest's files of a backup (parts joined), as runBackup folds the task results. */
function entriesOf(results: BackupTaskResult[], id: string): Map<string, FileEntry> {
  const copied = emptyCopy();
  for (const r of results) addTaskResult(copied, r, id);
  finishParts(copied.files.values());
  return copied.files;
}

describe('backup data objects encoded in one pass', () => {
  for (const codec of ['lz4', 'none'] as const) {
    it(`${codec}: a full and a block-delta incremental store the stream path's bytes and entries`, async () => {
      const a = memoryRepo();
      const b = memoryRepo();
      repos.push(a, b);
      const F = '20261201-010000F';
      const I = '20261201-020000I';
      const onePass = counting(b.repo);
      const fullStream = await backUp(a, streamOnly(a.repo), codec, F, F_START);
      const fullOnePass = await backUp(b, onePass.repo, codec, F, F_START);
      expect(onePass.stored()).toBe(fullOnePass.tasks.length);
      expect(fullOnePass.results).toEqual(fullStream.results);
      expect([...fullOnePass.objects.keys()]).toEqual([...fullStream.objects.keys()]);
      for (const [n, bytes] of fullStream.objects) expect(fullOnePass.objects.get(n)!.equals(bytes)).toBe(true);
      // What the full backup covered: parts, a bundle, a checksum failure, an empty file.
      expect(fullOnePass.tasks.some((t) => t.files[0]?.part)).toBe(true);
      expect(fullOnePass.tasks.some((t) => !t.own && t.files.length > 3)).toBe(true);
      expect(fullOnePass.results.flatMap((r) => r.entries).find((e) => e.path === 'base/1/16386')?.checksumFailures).toEqual([5]);

      // Change some pages (newer LSN) of the own file and of the bundled relation file.
      const big = compressiblePages(700, LOW);
      for (const p of [0, 1, 2, 150, 699]) setPageLsn(big, p, NEW);
      await writeFile(join(pgdata, 'base/1/16384'), big);
      await writeFile(join(pgdata, 'postgresql.conf'), 'shared_buffers = 256MB\n');
      const parent = { files: entriesOf(fullStream.results, F), startLsn: F_START };
      const incrStream = await backUp(a, streamOnly(a.repo), codec, I, I_START, parent);
      const incrOnePass = await backUp(b, onePass.repo, codec, I, I_START, parent);
      expect(onePass.stored()).toBe(fullOnePass.tasks.length + incrOnePass.tasks.length);
      expect(incrOnePass.results).toEqual(incrStream.results);
      for (const [n, bytes] of incrStream.objects) expect(incrOnePass.objects.get(n)!.equals(bytes)).toBe(true);
      const parts = incrOnePass.results.flatMap((r) => r.entries).filter((e) => e.path === 'base/1/16384').flatMap((e) => e.parts ?? []);
      expect(parts.length).toBe(3);
      expect(parts.flatMap((p) => p.delta?.blocks ?? [])).toEqual([[0, 3], [150, 1], [699, 1]]);
    });
  }
});
