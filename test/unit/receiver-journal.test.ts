/**
 * The received-WAL journal: its record format with bytes (valid prefix, torn tail, bad
 * checksum, gaps, another segment's records), and SegmentWriter storing flushes in it on a real
 * fs repository: one file, no piece objects, read back by the readers of received WAL, a crash's
 * torn tail ignored and the resume going on in a new journal; piece objects where a journal is
 * not allowed; the fs driver's preallocated in-place file.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDriver } from '../../storage-drivers/registry.js';
import { AlreadyExistsError } from '../../src/common/errors.js';
import { Repository } from '../../src/repo/repository.js';
import { readAll } from '../../src/repo/object-stream.js';
import { receivedJournalKey, receivedJournalOfKey, receivedPieceOfKey, receivedSegmentOfKey } from '../../src/repo/layout.js';
import { JOURNAL_MAGIC, JournalScanner, parseJournal, RECORD_HEADER, recordHeader } from '../../src/wal/received-journal.js';
import { chainStream, listReceived, readReceivedSegment, verifyJournal } from '../../src/wal/received-wal.js';
import { SegmentWriter } from '../../src/receiver/segment-writer.js';
import { storedEnds, storedPrefix } from '../../src/receiver/stored-position.js';
import { createMemoryStore } from '../../storage-drivers/memory/memory-driver.js';
import { fakeWal } from '../helpers/wal-bytes.js';

const S = '000000010000000000000003';
const rec = (start: number, data: Buffer, segment = S) => Buffer.concat([recordHeader(segment, start, data), data]);

describe('parseJournal', () => {
  const a = Buffer.from('first record');
  const b = randomBytes(3000);
  const c = Buffer.from('third');
  const good = Buffer.concat([rec(100, a), rec(100 + a.length, b), rec(100 + a.length + b.length, c)]);
  const end = 100 + a.length + b.length + c.length;
  const cases: Array<[string, Buffer, number, number, boolean]> = [
    // name, file, records, end, tailNonZero
    ['empty preallocation', Buffer.alloc(4096), 0, 100, false],
    ['three records then zeros', Buffer.concat([good, Buffer.alloc(4096)]), 3, end, false],
    ['three records, file ends right after', good, 3, end, false],
    ['torn tail: the last record cut short', good.subarray(0, good.length - 2), 2, 100 + a.length + b.length, true],
    ['torn tail: only part of a header', Buffer.concat([good.subarray(0, RECORD_HEADER + a.length + 20)]), 1, 100 + a.length, true],
    ['bad checksum in the second record: the first only', flip(good, RECORD_HEADER + a.length + RECORD_HEADER + 7), 1, 100 + a.length, true],
    ['bad checksum in the first record: nothing', flip(good, RECORD_HEADER + 1), 0, 100, true],
    ['a gap: the second record does not continue the first', Buffer.concat([rec(100, a), rec(100 + a.length + 1, b)]), 1, 100 + a.length, true],
    ['an overlap: the second record starts inside the first', Buffer.concat([rec(100, a), rec(101, b)]), 1, 100 + a.length, true],
    ['first record not at the start the key says', rec(99, a), 0, 100, true],
    ['a record of another segment', rec(100, a, '000000010000000000000004'), 0, 100, true],
    ['a torn new record over an old one: no valid record after it', Buffer.concat([rec(100, a), rec(100 + a.length, c).subarray(0, 30), rec(100 + a.length, b).subarray(30)]), 1, 100 + a.length, true],
  ];
  it.each(cases)('%s', (_name, file, n, e, tail) => {
    const r = parseJournal(S, 100, file);
    expect(r.records).toHaveLength(n);
    expect(r.end).toBe(e);
    expect(r.tailNonZero).toBe(tail);
    expect(r.validBytes).toBe(r.records.reduce((x, q) => x + RECORD_HEADER + q.length, 0));
  });

  it.each(cases)('%s, read 7 bytes at a time', (_name, file, n, e, tail) => {
    const sc = new JournalScanner(S, 100);
    const data: Buffer[] = [];
    for (let i = 0; i < file.length && !sc.done; i += 7) data.push(...sc.push(file.subarray(i, i + 7)));
    sc.finish();
    expect([sc.records, sc.end, sc.tailNonZero]).toEqual([n, e, tail]);
    expect(Buffer.concat(data)).toEqual(Buffer.concat(parseJournal(S, 100, file).records.map((r) => file.subarray(r.pos + RECORD_HEADER, r.pos + RECORD_HEADER + r.length))));
  });

  it('hashes small records in one call and large ones in parts to the same checksum the reader verifies', () => {
    for (const n of [1, 500, 16 * 1024, 16 * 1024 + 1, 200_000]) {
      const d = randomBytes(n);
      const h = recordHeader(S, 7, d);
      expect(h.subarray(16).equals(createHash('sha256').update(S, 'latin1').update(h.subarray(0, 16)).update(d).digest())).toBe(true);
      expect(recordHeader(S, 7, [d.subarray(0, 1), d.subarray(1)]).equals(h)).toBe(true);
      expect(parseJournal(S, 7, Buffer.concat([h, d])).end).toBe(7 + n);
    }
  });

  it('writes the header the format describes', () => {
    const h = recordHeader(S, 5, [Buffer.from('ab'), Buffer.from('c')]);
    expect(h.readUInt32BE(0)).toBe(JOURNAL_MAGIC);
    expect(h.readUInt32BE(4)).toBe(5);
    expect(h.readUInt32BE(8)).toBe(3);
    expect(h.readUInt32BE(12)).toBe(0);
    const want = createHash('sha256').update(S).update(h.subarray(0, 16)).update('abc').digest();
    expect(h.subarray(16)).toEqual(want);
    expect(() => recordHeader(S, 0, Buffer.alloc(0))).toThrow(RangeError);
  });

  it('names journals apart from pieces', () => {
    const key = receivedJournalKey('main', S, 0x2000, '0123456789abcdef');
    expect(key).toBe(`main/received/00000001/${S}/00002000.journal.0123456789abcdef`);
    expect(receivedJournalOfKey(key)).toEqual({ segment: S, timeline: 1, start: 0x2000 });
    expect(receivedPieceOfKey(key)).toBeUndefined();
    expect(receivedSegmentOfKey(key)).toBe(S);
    expect(receivedSegmentOfKey(`main/received/00000001/${S}/00000000-00000010`)).toBe(S);
    expect(receivedJournalOfKey(`main/received/00000002/${S}/00002000.journal.0123456789abcdef`)).toBeUndefined();
    expect(receivedSegmentOfKey(`main/received/00000001/${S}/00002000.journal.x`)).toBeUndefined();
  });
});

function flip(b: Buffer, at: number): Buffer {
  const c = Buffer.from(b);
  c[at] = c[at]! ^ 0x40;
  return c;
}

const SEG = 1024 * 1024;
const seg = (n: number) => `00000001000000000000000${n}`;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe.each([false, true])('SegmentWriter with a journal (fs repository; segment spooled in memory: %s)', (spoolInMemory) => {
  let dir: string;
  let repo: Repository;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgark-journal-'));
    repo = new Repository(await openDriver(join(dir, 'repo')), 'main', { attempts: 1, budgetMs: 0 });
  });
  afterEach(async () => {
    await repo.close();
    await rm(dir, { recursive: true, force: true });
  });
  const cfg = () => ({ repo, codec: 'lz4' as const, walSegmentSize: SEG, spoolDir: join(dir, 'spool'), spoolInMemory });
  const segDir = (n: number) => join(dir, 'repo', 'main', 'received', '00000001', seg(n));
  const readReceived = async (name: string) => {
    const r = await readReceivedSegment(repo, name);
    return readAll(chainStream(repo, r.chain, r.end), 2 * SEG);
  };

  it('stores many small flushes in one preallocated file, read back by the readers of received WAL', async () => {
    const wal = fakeWal(0n, SEG + 300_000, { walSegmentSize: SEG });
    const w = await SegmentWriter.open(cfg(), 1, 0n);
    // 200 small flushes (a synchronous standby's commits), then big ones (one above a record's 1 MiB).
    let pos = 0;
    for (let i = 0; i < 200; i++, pos += 500) {
      await w.append(BigInt(pos), wal.subarray(pos, pos + 500));
      await w.flush();
      expect(w.flushLsn).toBe(BigInt(pos + 500));
      expect(w.mergeBehind()).toBeUndefined();
    }
    expect(await readdir(segDir(0))).toEqual([expect.stringMatching(/^00000000\.journal\.[0-9a-f]{16}$/)]);
    // In memory, nothing of the segment is written to the spool before it is complete.
    expect(await readdir(join(dir, 'spool'))).toEqual(spoolInMemory ? [] : [`${seg(0)}.receiving`]);
    const mid = await readReceivedSegment(repo, seg(0));
    expect(mid.end).toBe(pos);
    expect(mid.chain).toHaveLength(1);
    expect(sha(await readReceived(seg(0)))).toBe(sha(wal.subarray(0, pos)));
    await w.append(BigInt(pos), wal.subarray(pos, SEG + 300_000));
    await w.flush();
    await w.close();
    // The first segment is stored whole (its journal removed); the second is in its own journal.
    expect(await readdir(segDir(0)).catch(() => [])).toEqual([]);
    expect(sha(await readReceived(seg(1)))).toBe(sha(wal.subarray(SEG)));
    expect(w.counters.piecesStored).toBe(201); // the last append completed segment 0 (stored whole), then one flush
    expect(w.counters.segmentsStored).toBe(1);
  });

  it('ignores a torn tail after a crash and resumes after the valid records in a new journal', async () => {
    const wal = randomBytes(50_000);
    const w1 = await SegmentWriter.open(cfg(), 1, 0n);
    for (let i = 0; i < 3; i++) {
      await w1.append(BigInt(i * 10_000), wal.subarray(i * 10_000, (i + 1) * 10_000));
      await w1.flush();
    }
    await w1.close();
    // A crash in the middle of the next record: part of its header and data reached the file.
    const [name] = await readdir(segDir(0));
    const fh = await open(join(segDir(0), name!), 'r+');
    const torn = rec(30_000, wal.subarray(30_000, 40_000)).subarray(0, 5000);
    await fh.write(torn, 0, torn.length, 3 * (RECORD_HEADER + 10_000));
    await fh.close();
    const listed = (await listReceived(repo)).get(seg(0))!;
    expect(listed.map((p) => [p.start, p.end, p.journal?.tailNonZero])).toEqual([[0, 30_000, true]]);
    const { ends } = await storedEnds(repo, [1], SEG);
    expect(ends.get(1)).toBe(30_000n);
    const prefix = await storedPrefix(repo, [1], 0n, 30_000, SEG);
    const w2 = await SegmentWriter.open(cfg(), 1, 30_000n, prefix);
    await w2.append(30_000n, wal.subarray(30_000));
    await w2.flush();
    await w2.close();
    expect((await readdir(segDir(0))).filter((n) => n.startsWith('00007530.journal.'))).toHaveLength(1);
    const r = await readReceivedSegment(repo, seg(0));
    expect(r.end).toBe(wal.length);
    expect(sha(await readReceived(seg(0)))).toBe(sha(wal));
  });

  it('without preallocation (an asynchronous receiver) the journal grows as it is written', async () => {
    const wal = randomBytes(40_000);
    const w = await SegmentWriter.open({ ...cfg(), preallocate: false }, 1, 0n);
    for (let i = 0; i < 4; i++) {
      await w.append(BigInt(i * 10_000), wal.subarray(i * 10_000, (i + 1) * 10_000));
      await w.flush();
    }
    await w.close();
    const [name] = await readdir(segDir(0));
    expect((await stat(join(segDir(0), name!))).size).toBe(4 * (RECORD_HEADER + 10_000));
    expect(sha(await readReceived(seg(0)))).toBe(sha(wal));
  });

  it('refuses to serve a journal whose records were damaged after it was listed', async () => {
    const w = await SegmentWriter.open(cfg(), 1, 0n);
    await w.append(0n, randomBytes(5000));
    await w.flush();
    await w.close();
    const r = await readReceivedSegment(repo, seg(0));
    const [name] = await readdir(segDir(0));
    const fh = await open(join(segDir(0), name!), 'r+');
    await fh.write(Buffer.from([0xff]), 0, 1, RECORD_HEADER + 10);
    await fh.close();
    await expect(readAll(chainStream(repo, r.chain, r.end), SEG)).rejects.toThrow(/valid records end at 0/);
    await expect(verifyJournal(repo, r.chain[0]!)).rejects.toThrow(/valid records end at 0, it was listed up to 5000/);
  });

  it('goes on in piece objects once the stanza may no longer hold a journal (encrypted meanwhile)', async () => {
    const wal = randomBytes(30_000);
    const w = await SegmentWriter.open(cfg(), 1, 0n);
    await w.append(0n, wal.subarray(0, 10_000));
    await w.flush();
    repo.journalAllowed = async () => false;
    for (let i = 1; i < 3; i++) {
      await w.append(BigInt(i * 10_000), wal.subarray(i * 10_000, (i + 1) * 10_000));
      await w.flush();
    }
    await w.close();
    const r = await readReceivedSegment(repo, seg(0));
    expect(r.chain.map((p) => [p.start, p.end, !!p.journal])).toEqual([[0, 10_000, true], [10_000, 20_000, false], [20_000, 30_000, false]]);
    expect(sha(await readReceived(seg(0)))).toBe(sha(wal));
  });

  it('stores piece objects where the repository cannot keep a journal (not a local filesystem)', async () => {
    const mem = new Repository(createMemoryStore(`journal-test-${process.pid}-${String(spoolInMemory)}`), 'main', { attempts: 1, budgetMs: 0 });
    const w = await SegmentWriter.open({ ...cfg(), repo: mem }, 1, 0n);
    const wal = randomBytes(3000);
    for (let i = 0; i < 3; i++) {
      await w.append(BigInt(i * 1000), wal.subarray(i * 1000, (i + 1) * 1000));
      await w.flush();
    }
    await w.close();
    const pieces = (await listReceived(mem)).get(seg(0))!;
    expect(pieces.map((p) => [p.start, p.end, p.journal])).toEqual([[0, 1000, undefined], [1000, 2000, undefined], [2000, 3000, undefined]]);
  });
});

describe('fs driver createInPlace (the journal file)', () => {
  it('creates a durable 0600 file of zeros, never over an existing one, written and grown in place', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pgark-inplace-'));
    try {
      const driver = await openDriver(join(dir, 'repo'));
      const key = 'main/received/00000001/000000010000000000000003/00000000.journal.0123456789abcdef';
      const f = await driver.createInPlace!(key, 1000);
      expect(f.size).toBe(1000);
      f.writeSync([Buffer.from('ab'), Buffer.from('cd')], 10);
      f.datasyncSync();
      await f.grow(3000);
      f.writeSync([Buffer.from('z')], 2999);
      await f.datasync();
      expect(() => f.writeSync([Buffer.from('!')], 3001)).toThrow(RangeError); // no hole
      f.writeSync([Buffer.from('!!')], 3000); // extends it
      expect(f.size).toBe(3002);
      f.datasyncSync();
      await f.close();
      const path = join(dir, 'repo', key);
      const body = await readFile(path);
      expect(body.length).toBe(3002);
      expect(body.subarray(10, 14).toString()).toBe('abcd');
      expect(body[2999]).toBe(0x7a);
      expect(body.subarray(0, 10).every((b) => b === 0) && body.subarray(14, 2999).every((b) => b === 0)).toBe(true);
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      expect((await stat(dirname(path))).mode & 0o777).toBe(0o700);
      await expect(driver.createInPlace!(key, 10)).rejects.toBeInstanceOf(AlreadyExistsError);
      expect((await readFile(path)).subarray(10, 14).toString()).toBe('abcd');
      // no temp file left beside it
      expect(await readdir(dirname(path))).toEqual(['00000000.journal.0123456789abcdef']);
      await driver.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
