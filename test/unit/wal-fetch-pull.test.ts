/**
 * wal-fetch's pull path (src/wal/fetch-file.ts: Repository.readObject + checkedReaderChunks, lz4
 * decoded in JavaScript): a damaged lz4 object stops the fetch with an IntegrityError naming the
 * object and leaves nothing at the destination; the reader is closed however the iteration ends;
 * a whole segment arrives byte for byte.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDriver } from '../../storage-drivers/registry.js';
import { IntegrityError } from '../../src/common/errors.js';
import { walKey } from '../../src/repo/layout.js';
import type { ObjectReader } from '../../src/repo/object-reader.js';
import { Repository } from '../../src/repo/repository.js';
import { checkedReaderChunks, fetchWalFile } from '../../src/wal/fetch-file.js';
import { SegmentShapeError } from '../../src/wal/segment-check.js';
import { fakeSegment } from '../helpers/wal-bytes.js';

const SEG = 4 * 1024 * 1024;
const NAME = '000000010000000000000003';
const SYSID = 7000000000000000001n;
let dir: string;
let repo: Repository;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgark-fetch-pull-'));
  repo = new Repository(await openDriver(join(dir, 'repo')), 'main', { attempts: 1, budgetMs: 0 });
  await repo.ensureStanza({ systemIdentifier: SYSID.toString(), pgVersion: 15, walSegmentSize: SEG }, 'lz4', 'test');
  await mkdir(join(dir, 'pg_wal'));
});
afterEach(async () => {
  await repo.close();
  await rm(dir, { recursive: true, force: true });
});

/** A reader over fixed chunks that records whether it was closed. */
function fakeReader(chunks: Buffer[]): ObjectReader & { closed: boolean } {
  let i = 0;
  return {
    closed: false,
    trailer: undefined,
    async next() {
      return i < chunks.length ? chunks[i++]! : null;
    },
    async close() {
      this.closed = true;
    },
  };
}

describe('wal-fetch pulls, checks and writes a segment', () => {
  it('a whole lz4 segment (four 1 MiB frames) arrives byte for byte', async () => {
    const seg = fakeSegment(3n, { walSegmentSize: SEG, systemIdentifier: SYSID });
    await repo.putObject(walKey('main', NAME), () => Readable.from([seg]), { codec: 'lz4' });
    const dest = join(dir, 'pg_wal', 'RECOVERYXLOG');
    expect(await fetchWalFile(repo, NAME, dest)).toBe(SEG);
    expect((await readFile(dest)).equals(seg)).toBe(true);
  });

  it('a flipped byte inside the compressed payload: IntegrityError naming the object, nothing written', async () => {
    const seg = fakeSegment(3n, { walSegmentSize: SEG, systemIdentifier: SYSID });
    const key = walKey('main', NAME);
    await repo.putObject(key, () => Readable.from([seg]), { codec: 'lz4' });
    const file = join(dir, 'repo', key);
    const stored = await readFile(file);
    stored[Math.floor(stored.length / 2)]! ^= 0x55; // inside the second or third frame's blocks
    await writeFile(file, stored);
    const dest = join(dir, 'pg_wal', 'RECOVERYXLOG');
    const f = fetchWalFile(repo, NAME, dest);
    await expect(f).rejects.toBeInstanceOf(IntegrityError);
    await expect(f).rejects.toThrow(key);
    expect(await readdir(join(dir, 'pg_wal'))).toEqual([]);
  });

  it('checkedReaderChunks closes the reader when the checker refuses, when it ends and when the consumer stops', async () => {
    const seg = fakeSegment(3n, { walSegmentSize: SEG, systemIdentifier: SYSID });
    const target = { name: NAME, size: SEG, systemIdentifier: SYSID };
    // Another cluster's bytes: refused at the first page header.
    const other = fakeReader([fakeSegment(3n, { walSegmentSize: SEG, systemIdentifier: 42n }).subarray(0, 8192)]);
    await expect(async () => {
      for await (const _ of checkedReaderChunks(other, target));
    }).rejects.toBeInstanceOf(SegmentShapeError);
    expect(other.closed).toBe(true);
    // Short: refused at the end, after every chunk was handed on.
    const short = fakeReader([seg.subarray(0, 8192)]);
    await expect(async () => {
      for await (const _ of checkedReaderChunks(short, target));
    }).rejects.toThrow(/8192 bytes, expected exactly/);
    expect(short.closed).toBe(true);
    // Whole, in uneven chunks.
    const whole = fakeReader([seg.subarray(0, 100), seg.subarray(100, SEG - 5), seg.subarray(SEG - 5)]);
    let n = 0;
    for await (const c of checkedReaderChunks(whole, target)) n += c.length;
    expect(n).toBe(SEG);
    expect(whole.closed).toBe(true);
    // The consumer stops (a failed write): the reader is closed too.
    const stopped = fakeReader([seg.subarray(0, 100), seg.subarray(100)]);
    for await (const _ of checkedReaderChunks(stopped, target)) break;
    expect(stopped.closed).toBe(true);
  });
});
