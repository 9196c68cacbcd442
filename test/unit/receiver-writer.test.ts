/**
 * SegmentWriter and received-wal on a real fs repository: bytes appended across segment
 * boundaries come back identical, as pieces and as whole segments stored the way wal-push
 * stores them; merges keep the chain short; a timeline switch carries the segment's start over;
 * a resume from stored pieces goes on where they end; different bytes under a stored piece are
 * refused.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDriver } from '../../storage-drivers/registry.js';
import { ArchiveMismatchError, ProtocolError } from '../../src/common/errors.js';
import { Repository } from '../../src/repo/repository.js';
import { readAll } from '../../src/repo/object-stream.js';
import { walKey } from '../../src/repo/layout.js';
import { chainStream, listReceived, readReceivedSegment, storePiece } from '../../src/wal/received-wal.js';
import { SegmentWriter } from '../../src/receiver/segment-writer.js';
import { storedEnds, storedPrefix } from '../../src/receiver/stored-position.js';
import { fakeWal } from '../helpers/wal-bytes.js';

const SEG = 1024 * 1024;
let dir: string;
let repo: Repository;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgark-writer-'));
  repo = new Repository(await openDriver(join(dir, 'repo')), 'main', { attempts: 1, budgetMs: 0 });
});
afterEach(async () => {
  await repo.close();
  await rm(dir, { recursive: true, force: true });
});

// journal: false where a test is about piece objects (merges); receiver-journal.test.ts covers the journal.
// Every test runs twice: the segment spooled in a file, and in memory (a synchronous receiver's).
let spoolInMemory = false;
const cfg = (maxPieces = 16, journal = true) => ({ repo, codec: 'lz4' as const, walSegmentSize: SEG, spoolDir: join(dir, 'spool'), maxPieces, journal, spoolInMemory });
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const seg = (n: number, tli = 1) => `${tli.toString(16).toUpperCase().padStart(8, '0')}00000000${n.toString(16).toUpperCase().padStart(8, '0')}`;

async function readWhole(name: string): Promise<Buffer> {
  return readAll(await repo.getObject(walKey('main', name)), 2 * SEG);
}

async function readReceived(name: string, padTo?: number): Promise<Buffer> {
  const r = await readReceivedSegment(repo, name);
  return readAll(chainStream(repo, r.chain, r.end, padTo ?? r.end), 2 * SEG);
}

describe.each([false, true])('SegmentWriter (segment spooled in memory: %s)', (inMemory) => {
  beforeEach(() => {
    spoolInMemory = inMemory;
  });

  it('stores appended WAL as pieces, then whole segments, across segment boundaries', async () => {
    const wal = fakeWal(BigInt(SEG) * 4n, 2 * SEG + 300_000, { walSegmentSize: SEG });
    const w = await SegmentWriter.open(cfg(), 1, BigInt(SEG) * 4n);
    let pos = 0;
    // Uneven message sizes, a flush after some of them.
    const sizes = [1, 8191, 100_000, 700_000, 3, 500_000, 1_000_000, 65_536];
    for (let i = 0; pos < wal.length; i++) {
      const n = Math.min(sizes[i % sizes.length]!, wal.length - pos);
      await w.append(BigInt(SEG) * 4n + BigInt(pos), wal.subarray(pos, pos + n));
      pos += n;
      if (i % 3 === 0) await w.flush();
    }
    await w.flush();
    expect(w.flushLsn).toBe(BigInt(SEG) * 4n + BigInt(wal.length));
    await w.close();
    expect(sha(await readWhole(seg(4)))).toBe(sha(wal.subarray(0, SEG)));
    expect(sha(await readWhole(seg(5)))).toBe(sha(wal.subarray(SEG, 2 * SEG)));
    // Whole segments have no pieces left; the third is only received, and reads back zero-padded.
    const left = await listReceived(repo);
    expect([...left.keys()]).toEqual([seg(6)]);
    const padded = await readReceived(seg(6), SEG);
    expect(padded.length).toBe(SEG);
    expect(sha(padded.subarray(0, 300_000))).toBe(sha(wal.subarray(2 * SEG)));
    expect(padded.subarray(300_000).every((b) => b === 0)).toBe(true);
    expect(w.counters.segmentsStored).toBe(2);
  });

  it('refuses WAL that does not continue exactly where the last message ended', async () => {
    const w = await SegmentWriter.open(cfg(), 1, 0n);
    await w.append(0n, Buffer.alloc(100, 1));
    // Thrown at once (append returns a promise only when it completes a segment).
    expect(() => w.append(200n, Buffer.alloc(10))).toThrow(ProtocolError);
    expect(() => w.append(50n, Buffer.alloc(10))).toThrow(ProtocolError);
    await w.close();
  });

  it('merges many small flushes into few pieces with the same bytes', async () => {
    const w = await SegmentWriter.open(cfg(8, false), 1, 0n);
    const wal = randomBytes(400 * 1000);
    for (let i = 0; i < 400; i++) {
      await w.append(BigInt(i * 1000), wal.subarray(i * 1000, (i + 1) * 1000));
      await w.flush();
      await w.mergeBehind();
    }
    await w.close();
    const r = await readReceivedSegment(repo, seg(0));
    expect(r.end).toBe(wal.length);
    expect(r.chain.length).toBeLessThanOrEqual(9);
    expect(r.stray).toEqual([]);
    expect(sha(await readReceived(seg(0)))).toBe(sha(wal));
  });

  it('reports a flush without waiting for a merge of the pieces, which is stored behind', async () => {
    const w = await SegmentWriter.open(cfg(4, false), 1, 0n);
    const wal = randomBytes(8 * 1000);
    // Hold the store of a merged piece (more than one flush's 1000 bytes) until released.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let held = 0;
    const put = repo.putSmallObject.bind(repo);
    repo.putSmallObject = async (key, raw, o) => {
      if (raw.length > 1000) {
        held += 1;
        await gate;
      }
      return put(key, raw, o);
    };
    const soon = (p: Promise<unknown>) => Promise.race([p.then(() => 'done'), new Promise((r) => setTimeout(() => r('waiting'), 2000))]);
    const flushOne = async (i: number) => {
      await w.append(BigInt(i * 1000), wal.subarray(i * 1000, (i + 1) * 1000));
      expect(await soon(w.flush())).toBe('done');
      expect(w.flushLsn).toBe(BigInt((i + 1) * 1000));
    };
    // Five pieces, more than 4: a merge is due; then a flush while it is held.
    for (let i = 0; i < 5; i++) await flushOne(i);
    const merging = w.mergeBehind();
    expect(merging).toBeDefined();
    await flushOne(5);
    expect(held).toBe(1);
    expect(w.mergeBehind()).toBe(merging); // one merge at a time
    release();
    await merging;
    for (let i = 6; i < 8; i++) await flushOne(i);
    await w.mergeBehind();
    await w.close();
    const r = await readReceivedSegment(repo, seg(0));
    expect(r.end).toBe(wal.length);
    expect(r.chain.length).toBeLessThan(8);
    expect(r.stray).toEqual([]);
    expect(sha(await readReceived(seg(0)))).toBe(sha(wal));
  });

  it('resumes from stored pieces and carries the start of a segment over a timeline switch', async () => {
    const wal = randomBytes(600_000);
    const w1 = await SegmentWriter.open(cfg(), 1, BigInt(SEG) * 2n);
    await w1.append(BigInt(SEG) * 2n, wal.subarray(0, 250_000));
    await w1.flush();
    await w1.close();
    // A new writer resumes where the repository ends, from the stored pieces.
    const { ends } = await storedEnds(repo, [1], SEG);
    expect(ends.get(1)).toBe(BigInt(SEG) * 2n + 250_000n);
    const prefix = await storedPrefix(repo, [1], 2n, 250_000, SEG);
    expect(prefix?.pieces).toHaveLength(1);
    const w2 = await SegmentWriter.open(cfg(), 1, BigInt(SEG) * 2n + 250_000n, prefix);
    await w2.append(BigInt(SEG) * 2n + 250_000n, wal.subarray(250_000, 400_000));
    // Timeline 1 ends at 400000 into the segment; timeline 2 starts there.
    await w2.switchTimeline(2, BigInt(SEG) * 2n + 400_000n);
    await w2.append(BigInt(SEG) * 2n + 400_000n, wal.subarray(400_000));
    await w2.flush();
    await w2.close();
    expect(sha(await readReceived(seg(2, 1)))).toBe(sha(wal.subarray(0, 400_000)));
    expect(sha(await readReceived(seg(2, 2)))).toBe(sha(wal));
    // Resuming on timeline 2 with nothing of its own would take the start from timeline 1.
    const fromParent = await storedPrefix(repo, [3, 1], 2n, 400_000, SEG);
    expect(fromParent?.pieces).toEqual([]);
    expect(sha(await readAll(fromParent!.stream, SEG))).toBe(sha(wal.subarray(0, 400_000)));
  });

  it('never overwrites a stored piece with different bytes', async () => {
    await storePiece(repo, seg(1), 0, 4, () => Readable.from([Buffer.from('abcd')]), 'lz4');
    await storePiece(repo, seg(1), 0, 4, () => Readable.from([Buffer.from('abcd')]), 'lz4');
    await expect(storePiece(repo, seg(1), 0, 4, () => Readable.from([Buffer.from('abce')]), 'lz4')).rejects.toBeInstanceOf(ArchiveMismatchError);
    expect((await readReceived(seg(1))).toString()).toBe('abcd');
  });

  it('fails a resume whose segment start is not stored', async () => {
    await expect(SegmentWriter.open(cfg(), 1, 1000n)).rejects.toThrow(/start of segment .* is not available/);
  });

  it('stores a segment already archived with the same bytes as identical, and refuses different bytes', async () => {
    const wal = fakeWal(0n, SEG, { walSegmentSize: SEG });
    const w1 = await SegmentWriter.open(cfg(), 1, 0n);
    await w1.append(0n, wal);
    await w1.close();
    const w2 = await SegmentWriter.open(cfg(), 1, 0n);
    await w2.append(0n, wal);
    await w2.close();
    expect(w2.counters.segmentsStored).toBe(1);
    const other = Buffer.from(wal);
    other[SEG - 1] = other[SEG - 1]! ^ 1;
    const w3 = await SegmentWriter.open(cfg(), 1, 0n);
    await expect(w3.append(0n, other)).rejects.toBeInstanceOf(ArchiveMismatchError);
    await w3.close();
    await readFile(join(dir, 'repo', 'main', 'wal', '00000001', '0000000100000000', seg(0)));
    expect(sha(await readWhole(seg(0)))).toBe(sha(wal));
  });
});
