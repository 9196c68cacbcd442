/**
 * Only whole WAL is stored, and anything else stored is damage (issue 14, findings 4 and 5), on a
 * real fs repository:
 *  - pushWalFile refuses bytes that are not the whole file (a short read, a file that grew, a
 *    hole) before the put-if-absent can commit: nothing is stored and the real file then pushes;
 *  - a received piece whose bytes are not its range is refused the same way;
 *  - a segment object of the wrong size, written through the repository's own encoder (so its
 *    checksum is valid), is damage to wal-fetch (IntegrityError, nothing at the destination) and
 *    to wal-verify --read; so is a piece whose size differs from its name.
 */
import { mkdir, mkdtemp, open, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDriver } from '../../storage-drivers/registry.js';
import { IntegrityError, InvalidInputError } from '../../src/common/errors.js';
import { receivedPieceKey, walKey } from '../../src/repo/layout.js';
import { readAll } from '../../src/repo/object-stream.js';
import { Repository } from '../../src/repo/repository.js';
import { chainStream, readReceivedSegment, storePiece } from '../../src/wal/received-wal.js';
import { fetchWalFile } from '../../src/wal/fetch-file.js';
import { pushWalFile } from '../../src/wal/push-file.js';
import { walVerify } from '../../src/wal/wal-verify.js';
import { fakeSegment } from '../helpers/wal-bytes.js';

const SEG = 1024 * 1024;
const NAME = '000000010000000000000003';
const SYSID = 7000000000000000001n;
let dir: string;
let repo: Repository;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgark-whole-'));
  repo = new Repository(await openDriver(join(dir, 'repo')), 'main', { attempts: 1, budgetMs: 0 });
  await repo.ensureStanza({ systemIdentifier: SYSID.toString(), pgVersion: 15, walSegmentSize: SEG }, 'lz4', 'test');
});
afterEach(async () => {
  await repo.close();
  await rm(dir, { recursive: true, force: true });
});

/** Every object the repository lists under wal/ and received/ (an aborted upload's temp file is not one). */
async function walFiles(): Promise<string[]> {
  const out: string[] = [];
  for (const prefix of ['main/wal/', 'main/received/']) for await (const o of repo.driver.list(prefix)) out.push(o.path);
  return out;
}

describe('pushWalFile stores only whole files', () => {
  it('refuses a short read before anything is stored; the real segment then pushes', async () => {
    const real = fakeSegment(3n, { walSegmentSize: SEG, systemIdentifier: SYSID });
    const path = join(dir, NAME);
    await writeFile(path, real.subarray(0, 8192));
    // The caller saw a whole segment (stat, header); the read ends early.
    const short = pushWalFile(repo, { path, name: NAME, size: SEG }, { codec: 'lz4' });
    await expect(short).rejects.toBeInstanceOf(InvalidInputError);
    await expect(short).rejects.toThrow(/8192 bytes, expected exactly 1048576; nothing was stored/);
    expect(await repo.stat(walKey('main', NAME))).toBeNull();
    expect(await walFiles()).toEqual([]);

    await writeFile(path, real);
    const r = await pushWalFile(repo, { path, name: NAME, size: SEG }, { codec: 'lz4' });
    expect(r.status).toBe('stored');
    expect((await readAll(await repo.getObject(walKey('main', NAME)), 2 * SEG)).equals(real)).toBe(true);
  });

  it('refuses a file that grew, a truncated one with a hole, and a history file of another size', async () => {
    const real = fakeSegment(3n, { walSegmentSize: SEG });
    const path = join(dir, NAME);
    await writeFile(path, Buffer.concat([real, Buffer.alloc(100)]));
    await expect(pushWalFile(repo, { path, name: NAME, size: SEG }, { codec: 'zstd' })).rejects.toThrow(/more than the expected 1048576 bytes/);
    // Another process truncated the file and the writer went on at its offset: zeros, then WAL.
    await writeFile(path, real);
    await truncate(path, 8192);
    const fh = await open(path, 'r+');
    await fh.write(real.subarray(SEG - 100), 0, 100, SEG - 100);
    await fh.close();
    await expect(pushWalFile(repo, { path, name: NAME, size: SEG }, { codec: 'none' })).rejects.toThrow(/not zero, after the zeroed pages/);
    const hist = join(dir, '00000002.history');
    await writeFile(hist, '1\t0/3000000\tno recovery target specified\n');
    await expect(pushWalFile(repo, { path: hist, name: '00000002.history', size: 100 }, { codec: 'lz4' })).rejects.toThrow(/bytes, expected exactly 100/);
    expect(await walFiles()).toEqual([]);
  });
});

describe('received pieces', () => {
  it('refuses bytes that are not the piece\'s range before storing them', async () => {
    await expect(storePiece(repo, NAME, 0, 100, () => Readable.from([Buffer.alloc(50, 1)]), 'lz4')).rejects.toThrow(/50 bytes to store, expected 100; nothing was stored/);
    await expect(storePiece(repo, NAME, 0, 100, Buffer.alloc(101, 1), 'lz4')).rejects.toBeInstanceOf(InvalidInputError);
    expect(await walFiles()).toEqual([]);
    await storePiece(repo, NAME, 0, 100, () => Readable.from([Buffer.alloc(100, 1)]), 'lz4');
    expect((await walFiles()).length).toBe(1);
  });
});

describe('a stored segment object of the wrong size is damage', () => {
  const plant = async (bytes: Buffer, name = NAME) => repo.putObject(walKey('main', name), () => Readable.from([bytes]), { codec: 'lz4' });

  it('wal-fetch fails with IntegrityError and leaves nothing at the destination', async () => {
    const real = fakeSegment(3n, { walSegmentSize: SEG, systemIdentifier: SYSID });
    await plant(real.subarray(0, 8192));
    const dest = join(dir, 'pg_wal', 'RECOVERYXLOG');
    await mkdir(join(dir, 'pg_wal'));
    const f = fetchWalFile(repo, NAME, dest);
    await expect(f).rejects.toBeInstanceOf(IntegrityError);
    await expect(f).rejects.toThrow(/damaged: .*8192 bytes, expected exactly 1048576/);
    expect(await readdir(join(dir, 'pg_wal'))).toEqual([]);
    // An empty object and another cluster's segment are damage too; a whole one is served.
    await plant(Buffer.alloc(0), '000000010000000000000004');
    await expect(fetchWalFile(repo, '000000010000000000000004', dest)).rejects.toThrow(/0 bytes, expected exactly/);
    await plant(fakeSegment(5n, { walSegmentSize: SEG, systemIdentifier: 42n }), '000000010000000000000005');
    await expect(fetchWalFile(repo, '000000010000000000000005', dest)).rejects.toThrow(/system identifier/);
    expect(await readdir(join(dir, 'pg_wal'))).toEqual([]);
    const good = fakeSegment(6n, { walSegmentSize: SEG, systemIdentifier: SYSID });
    await plant(good, '000000010000000000000006');
    expect(await fetchWalFile(repo, '000000010000000000000006', dest)).toBe(SEG);
    expect((await readFile(dest)).equals(good)).toBe(true);
  });

  it('wal-verify --read reports it (and a piece whose size is not its range) as damaged', async () => {
    await plant(fakeSegment(3n, { walSegmentSize: SEG, systemIdentifier: SYSID }).subarray(0, 8192));
    await plant(fakeSegment(4n, { walSegmentSize: SEG, systemIdentifier: SYSID }), '000000010000000000000004');
    await repo.putObject(receivedPieceKey('main', '000000010000000000000005', 0, 100), () => Readable.from([Buffer.alloc(60, 1)]), { codec: 'lz4' });
    const v = await walVerify(repo, { read: true, jobs: 2 });
    expect(v.ok).toBe(false);
    expect(v.damaged.map((d) => d.name)).toEqual([NAME, expect.stringMatching(/received\/.*00000000-00000064$/)]);
    expect(v.damaged[0]!.error).toMatch(/damaged: .*8192 bytes, expected exactly 1048576/);
    expect(v.damaged[1]!.error).toMatch(/60 bytes, its name says 100/);
    // The piece is refused when served too.
    const r = await readReceivedSegment(repo, '000000010000000000000005');
    await expect(readAll(chainStream(repo, r.chain, r.end, SEG), 2 * SEG)).rejects.toThrow(/60 bytes, its name says 100/);
  });
});
