/**
 * `pgark verify`: re-read what backups need and check it.
 * - the catalog entry and manifest (sha256 recorded in the catalog);
 * - every data object the backup (and its chain) references: the object's own sha256 trailer,
 *   and the sha256 of every file stored whole in it;
 * - every file (or part) stored as a block delta: rebuilt from the chain as restore does and
 *   compared with the manifest's size and sha256 (delta-check.ts);
 * - the WAL from each backup's start to its stop, and for the newest backup on to the newest
 *   archived segment of its timeline: present, without gaps, and intact when read.
 * Incremental: objects are immutable, so an object verified before (same key, size and mtime,
 * recorded under `<stanza>/verify/`) is not read again unless --full; nor is a block-delta file
 * rebuilt before from the same objects (same keys, sizes and mtimes).
 */
import { createHash } from 'node:crypto';
import { IntegrityError, NotFoundError } from '../common/errors.js';
import { mapPool } from '../common/pool.js';
import { dataObjectKey, verifyStateKey, walKey } from '../repo/layout.js';
import type { Repository } from '../repo/repository.js';
import { parseSegmentName, segmentName } from '../wal/segment-name.js';
import { chainOf, findBackup, listBackups, readManifest } from './catalog.js';
import { log, PhaseTimer } from '../common/log.js';
import type { BackupInfo } from './backup-info.js';
import { piecesOf, type Manifest } from './manifest.js';
import { deltaProblem, layerObjectKeys, planDeltaChecks, rebuildDelta, type RebuildResult } from './delta-check.js';
import type { ObjectInfo } from '../../storage-drivers/types.js';
import { scanArchive } from '../wal/wal-verify.js';

export interface VerifyProblem {
  backup: string;
  what: string;
}

export interface VerifyOutcome {
  backups: Array<{ id: string; ok: boolean; problems: string[]; objectsRead: number; objectsSkipped: number; deltaFilesRebuilt: number; deltaFilesSkipped: number; walChecked: number }>;
  objectsRead: number;
  objectsSkipped: number;
  bytesRead: number;
  walRead: number;
  walSkipped: number;
  ok: boolean;
}

interface VerifyState {
  objects: Record<string, { size: number; mtimeMs: number; at: string }>;
  /** Block-delta pieces (`<path>@<start>`) rebuilt and matching: from which objects (key, size, mtime). */
  rebuilt?: Record<string, { sig: string; at: string }>;
}

async function loadState(repo: Repository, name: string): Promise<VerifyState> {
  try {
    const s = JSON.parse(await repo.getJson(verifyStateKey(repo.stanza, name))) as VerifyState;
    return s && typeof s.objects === 'object' ? s : { objects: {} };
  } catch {
    return { objects: {} }; // missing or unreadable state only means re-reading
  }
}

async function saveState(repo: Repository, name: string, s: VerifyState): Promise<void> {
  await repo.putJson(verifyStateKey(repo.stanza, name), s);
}

/** Read an object through its checksums; check the whole files stored in it. */
async function verifyObject(repo: Repository, key: string, files: Array<{ path: string; offset: number; size: number; sha256: string }>): Promise<number> {
  const sorted = [...files].sort((a, b) => a.offset - b.offset);
  const stream = await repo.getObject(key);
  let pos = 0;
  let i = 0;
  let hash: ReturnType<typeof createHash> | undefined;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let off = 0;
    while (off < chunk.length && i < sorted.length) {
      const f = sorted[i]!;
      if (pos + off < f.offset) {
        off = Math.min(chunk.length, f.offset - pos);
        continue;
      }
      hash ??= createHash('sha256');
      const end = Math.min(chunk.length, f.offset + f.size - pos);
      hash.update(chunk.subarray(off, end));
      off = end;
      if (pos + off === f.offset + f.size) {
        if (hash.digest('hex') !== f.sha256) throw new IntegrityError(`'${f.path}' in '${key}' does not match the sha256 of the manifest`);
        hash = undefined;
        i++;
      }
    }
    pos += chunk.length;
  }
  if (i < sorted.length) throw new IntegrityError(`'${key}' ends before '${sorted[i]!.path}' (${pos} bytes)`);
  return pos;
}

export async function runVerify(repo: Repository, o: { ref?: string | undefined; full: boolean; jobs: number }): Promise<VerifyOutcome> {
  const phases = new PhaseTimer('verify');
  const meta = await repo.requireStanza();
  const backups = await listBackups(repo);
  const targets = o.ref ? [findBackup(backups, o.ref)] : backups;
  const out: VerifyOutcome = { backups: [], objectsRead: 0, objectsSkipped: 0, bytesRead: 0, walRead: 0, walSkipped: 0, ok: true };
  const manifests = new Map<string, Manifest>();
  const verifiedThisRun = new Map<string, string | null>(); // key -> error or null
  const rebuiltThisRun = new Map<string, Promise<RebuildResult>>(); // DeltaCheck.key -> result
  const stats = new Map<string, Promise<ObjectInfo | null>>();
  const statOnce = (key: string) => {
    let st = stats.get(key);
    if (!st) stats.set(key, (st = repo.stat(key).catch(() => null)));
    return st;
  };
  const newest = backups[backups.length - 1];
  const archive = backups.length > 0 ? await scanArchive(repo, meta) : undefined;
  const walState = await loadState(repo, 'wal');
  const walPresent = new Map<string, { path: string; size: number; mtimeMs: number }>();
  for (const obj of archive?.objects ?? []) walPresent.set(obj.path, obj);
  phases.lap('catalog and WAL listing', `${targets.length} backup(s) to verify, ${walPresent.size} WAL objects`);

  for (const b of targets) {
    const problems: string[] = [];
    let read = 0;
    let skipped = 0;
    let walChecked = 0;
    let deltaRebuilt = 0;
    let deltaSkipped = 0;
    const state = await loadState(repo, b.id);
    let chain: BackupInfo[] = [];
    try {
      chain = chainOf(backups, b);
      for (const c of chain) if (!manifests.has(c.id)) manifests.set(c.id, await readManifest(repo, c));
    } catch (err) {
      problems.push((err as Error).message);
    }
    const m = manifests.get(b.id);
    if (m) {
      // Objects this backup itself stored; ancestors are checked as part of their own verification.
      const objects = new Map<number, Array<{ path: string; offset: number; size: number; sha256: string }>>();
      for (const f of m.files.values()) {
        for (const p of piecesOf(f)) {
          if (p.object?.backup === b.id) {
            const l = objects.get(p.object.n) ?? [];
            l.push({ path: f.path, offset: p.object.offset, size: p.size, sha256: p.sha256 });
            objects.set(p.object.n, l);
          } else if (p.delta && !objects.has(p.delta.n)) objects.set(p.delta.n, []);
          if (p.object && p.object.backup !== b.id && !b.chain.includes(p.object.backup)) problems.push(`'${f.path}' refers to backup ${p.object.backup}, outside the chain`);
        }
      }
      // Verifying one backup also reads what its ancestors stored (it cannot be restored without them).
      const ancestorsToCheck = o.ref ? chain.slice(0, -1) : [];
      const work: Array<{ key: string; files: Array<{ path: string; offset: number; size: number; sha256: string }>; owner: string }> = [];
      for (const [n, files] of objects) if (n >= 0) work.push({ key: dataObjectKey(repo.stanza, b.id, n), files, owner: b.id });
      for (const anc of ancestorsToCheck) {
        const am = manifests.get(anc.id)!;
        const byN = new Map<number, Array<{ path: string; offset: number; size: number; sha256: string }>>();
        for (const f of am.files.values()) {
          for (const p of piecesOf(f)) {
            if (p.object?.backup === anc.id) byN.set(p.object.n, [...(byN.get(p.object.n) ?? []), { path: f.path, offset: p.object.offset, size: p.size, sha256: p.sha256 }]);
            else if (p.delta && !byN.has(p.delta.n)) byN.set(p.delta.n, []);
          }
        }
        for (const [n, files] of byN) work.push({ key: dataObjectKey(repo.stanza, anc.id, n), files, owner: anc.id });
      }
      await mapPool(work, o.jobs, async (w) => {
        if (verifiedThisRun.has(w.key)) {
          const e = verifiedThisRun.get(w.key);
          if (e) problems.push(e);
          return;
        }
        const st = await repo.stat(w.key);
        if (!st) {
          const e = `object '${w.key}' is missing`;
          verifiedThisRun.set(w.key, e);
          problems.push(e);
          return;
        }
        const known = state.objects[w.key];
        if (!o.full && w.owner === b.id && known && known.size === st.size && known.mtimeMs === st.mtimeMs) {
          log.trace(() => `verify: ${w.key}: skipped, unchanged since verified at ${known.at} (same size and mtime; --full reads it)`);
          skipped++;
          verifiedThisRun.set(w.key, null);
          return;
        }
        try {
          out.bytesRead += await verifyObject(repo, w.key, w.files);
          log.trace(() => `verify: ${w.key}: read and verified (${w.files.length} file piece(s))`);
          read++;
          verifiedThisRun.set(w.key, null);
          if (w.owner === b.id) state.objects[w.key] = { size: st.size, mtimeMs: st.mtimeMs, at: new Date().toISOString() };
        } catch (err) {
          const e = err instanceof NotFoundError ? `object '${w.key}' is missing` : (err as Error).message;
          verifiedThisRun.set(w.key, e);
          log.trace(() => `verify: ${w.key}: ${e}`);
          problems.push(e);
        }
      });

      // Files stored as block deltas: rebuilt from the chain as restore does, compared with the manifest.
      const chainManifests = chain.map((c) => manifests.get(c.id));
      if (chainManifests.length > 0 && chainManifests.every((x): x is Manifest => x !== undefined)) {
        const plan = planDeltaChecks(chainManifests);
        problems.push(...plan.problems);
        for (const c of plan.covered) {
          // Taken unchanged from an ancestor's object: that object's check is this file's.
          const e = verifiedThisRun.get(dataObjectKey(repo.stanza, c.owner, c.n));
          if (e && !problems.includes(e)) problems.push(`'${c.path}' is taken unchanged from backup ${c.owner}: ${e}`);
        }
        const rebuiltState = (state.rebuilt ??= {});
        await mapPool(plan.checks, o.jobs, async (c) => {
          const where = `${c.path}@${c.start}`;
          const keys = layerObjectKeys(repo.stanza, c);
          const infos = await Promise.all(keys.map(statOnce));
          const sig = JSON.stringify([c.key, keys.map((k, i) => [k, infos[i]?.size ?? null, infos[i]?.mtimeMs ?? null])]);
          if (!o.full && infos.every((x) => x) && rebuiltState[where]?.sig === sig) {
            log.trace(() => `verify: ${b.id}: '${c.path}' (block delta) skipped, rebuilt from the same objects at ${rebuiltState[where]!.at} (--full rebuilds it)`);
            deltaSkipped++;
            return;
          }
          let shared = rebuiltThisRun.get(c.key);
          if (!shared) {
            shared = rebuildDelta(repo, c).then((r) => {
              out.bytesRead += r.bytes;
              return r;
            });
            rebuiltThisRun.set(c.key, shared);
          }
          const problem = deltaProblem(c, await shared);
          deltaRebuilt++;
          log.trace(() => `verify: ${b.id}: '${c.path}' (block delta) rebuilt from backups ${[...new Set(c.layers.map((l) => l.backup))].join(', ')}: ${problem ?? 'matches the manifest'}`);
          if (problem) {
            problems.push(problem);
            delete rebuiltState[where];
          } else rebuiltState[where] = { sig, at: new Date().toISOString() };
        });
      }
    }
    phases.lap(`backup ${b.id} objects`, `${read} read, ${skipped} skipped; ${deltaRebuilt} block-delta file(s) rebuilt, ${deltaSkipped} skipped`);

    // WAL: start..stop, and for the newest backup on to the newest segment of its timeline.
    const size = meta.walSegmentSize;
    const first = parseSegmentName(b.walRange.first, size);
    let last = parseSegmentName(b.walRange.last, size);
    if (b === newest && archive && !b.walStored) {
      const tl = archive.report.timelines.find((t) => t.timeline === last.timeline);
      const newestName = tl?.ranges[tl.ranges.length - 1]?.last;
      if (newestName) {
        const n = parseSegmentName(newestName, size);
        if (n.segno > last.segno) last = n;
      }
    }
    const walNames: string[] = [];
    for (let s = first.segno; s <= last.segno; s++) walNames.push(segmentName({ timeline: last.timeline, segno: s }, size));
    if (!b.walStored) {
      const missing = walNames.filter((n) => !walPresent.has(walKey(repo.stanza, n)));
      if (missing.length > 0) problems.push(`WAL missing: ${missing.length} segment(s), first ${missing[0]}${missing.length > 1 ? `, last ${missing[missing.length - 1]}` : ''}`);
      await mapPool(walNames.filter((n) => walPresent.has(walKey(repo.stanza, n))), o.jobs, async (name) => {
        const key = walKey(repo.stanza, name);
        const obj = walPresent.get(key)!;
        const known = walState.objects[key];
        walChecked++;
        if (!o.full && known && known.size === obj.size && known.mtimeMs === obj.mtimeMs) {
          out.walSkipped++;
          return;
        }
        try {
          for await (const _ of (await repo.getObject(key)) as AsyncIterable<Buffer>) void _;
          out.walRead++;
          walState.objects[key] = { size: obj.size, mtimeMs: obj.mtimeMs, at: new Date().toISOString() };
        } catch (err) {
          problems.push(`WAL ${name}: ${(err as Error).message}`);
        }
      });
    }
    if (!b.walStored) phases.lap(`backup ${b.id} WAL`, `${walChecked} segment(s) checked`);
    if (problems.length === 0 || Object.keys(state.objects).length > 0) await saveState(repo, b.id, state).catch(() => undefined);
    out.objectsRead += read;
    out.objectsSkipped += skipped;
    out.backups.push({ id: b.id, ok: problems.length === 0, problems, objectsRead: read, objectsSkipped: skipped, deltaFilesRebuilt: deltaRebuilt, deltaFilesSkipped: deltaSkipped, walChecked });
    if (problems.length > 0) out.ok = false;
  }
  await saveState(repo, 'wal', walState).catch(() => undefined);
  phases.done(`${out.objectsRead} objects read (${out.bytesRead} bytes), ${out.objectsSkipped} skipped; WAL ${out.walRead} read, ${out.walSkipped} skipped`);
  return out;
}
