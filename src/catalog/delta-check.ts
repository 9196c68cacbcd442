/**
 * `pgark verify` of files stored as block deltas: restore rebuilds such a file from the layers of
 * its chain and refuses the backup when the rebuilt bytes are not the size and sha256 the
 * manifest records, so verify rebuilds it the same way (chain-layers.ts, layer-merge.ts) and
 * compares, streaming (memory is what the layers' readers hold, not the file).
 *
 * Every object's own checksum can hold while such a file is wrong: a delta taken by a pgark
 * build that took stale parent blocks (hint bits set without data checksums do not move
 * pd_lsn), or an object rewritten with other, validly checksummed content.
 */
import { createHash } from 'node:crypto';
import { NotFoundError } from '../common/errors.js';
import { ExactReader } from '../repo/exact-reader.js';
import { dataObjectKey } from '../repo/layout.js';
import type { Repository } from '../repo/repository.js';
import { layersOf, type Layer } from './chain-layers.js';
import { LayerMerge } from './layer-merge.js';
import { piecesOf, type Manifest } from './manifest.js';

/** One block-delta piece of the last backup of a chain, to rebuild and compare. */
export interface DeltaCheck {
  /** The backup whose manifest records the piece. */
  backup: string;
  path: string;
  start: number;
  size: number;
  sha256: string;
  /** The file is stored in parts: this is one of them. */
  part: boolean;
  layers: Layer[];
  blockSize: number;
  /** Equal for checks that rebuild the same bytes from the same layers against the same digest (shared within a run). */
  key: string;
}

/**
 * A piece taken unchanged from one ancestor's object that already records it with this size and
 * sha256: the object check of that ancestor (verifyObject) reads the same bytes against the
 * same digest, so no rebuild is needed; its result is this piece's.
 */
export interface CoveredPiece {
  backup: string;
  path: string;
  /** The ancestor that stored the bytes, and its object. */
  owner: string;
  n: number;
}

/**
 * The block-delta pieces of `chain[chain.length - 1]` (full backup first) and what checks them
 * (pure). `problems`: pieces whose layers cannot be found in the chain (restore refuses those
 * too).
 */
export function planDeltaChecks(chain: readonly Manifest[]): { checks: DeltaCheck[]; covered: CoveredPiece[]; problems: string[] } {
  const target = chain[chain.length - 1]!;
  const id = target.header.id;
  const bs = target.header.blockSize;
  const out = { checks: [] as DeltaCheck[], covered: [] as CoveredPiece[], problems: [] as string[] };
  for (const f of target.files.values()) {
    for (const p of piecesOf(f)) {
      if (!p.delta) continue;
      let layers: Layer[];
      try {
        layers = layersOf(chain, chain.length - 1, f.path, p.start, p.start + p.size, bs);
      } catch (err) {
        out.problems.push(`unable to rebuild '${f.path}' of backup ${id}: ${(err as Error).message}`);
        continue;
      }
      const only = layers.length === 1 ? layers[0]! : undefined;
      if (only && only.kind === 'whole' && only.start === p.start && only.size === p.size && recordsSlice(chain, only, f.path, p.sha256)) {
        out.covered.push({ backup: id, path: f.path, owner: only.backup, n: only.n });
        continue;
      }
      out.checks.push({
        backup: id, path: f.path, start: p.start, size: p.size, sha256: p.sha256, part: !!f.parts, layers, blockSize: bs,
        key: JSON.stringify([f.path, p.start, p.size, p.sha256, layers]),
      });
    }
  }
  return out;
}

/** Whether the manifest of the backup owning `l`'s object records that slice as `path` with `sha256`. */
function recordsSlice(chain: readonly Manifest[], l: Layer, path: string, sha256: string): boolean {
  const f = chain.find((m) => m.header.id === l.backup)?.files.get(path);
  if (!f) return false;
  return piecesOf(f).some((q) => q.object?.backup === l.backup && q.object.n === l.n && q.object.offset === l.offset && q.start === l.start && q.size === l.size && q.sha256 === sha256);
}

/** The objects a check reads. */
export function layerObjectKeys(stanza: string, c: DeltaCheck): string[] {
  return [...new Set(c.layers.filter((l) => l.n >= 0).map((l) => dataObjectKey(stanza, l.backup, l.n)))];
}

function describe(c: DeltaCheck): string {
  const what = c.part ? `'${c.path}' bytes ${c.start}..${c.start + c.size}` : `'${c.path}'`;
  return `${what} of backup ${c.backup}, rebuilt from backups ${[...new Set(c.layers.map((l) => l.backup))].join(', ')}`;
}

/** What a rebuild gave: the bytes and their sha256, or why it could not be done. */
export type RebuildResult = { bytes: number; sha256: string } | { bytes: number; error: string };

/**
 * Rebuild the piece as restore does: its size and sha256. The layers' objects are read without
 * their own content hash (the rebuilt bytes are hashed instead; each object's trailer is checked
 * by its own backup's verification).
 */
export async function rebuildDelta(repo: Repository, c: DeltaCheck): Promise<RebuildResult> {
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    const merge = await LayerMerge.open(c.layers, c, c.blockSize, async (l) => {
      const key = dataObjectKey(repo.stanza, l.backup, l.n);
      const r = new ExactReader(await repo.readObject(key, { contentHash: false }), key);
      try {
        if (l.offset > 0) await r.skip(l.offset);
      } catch (err) {
        await r.close();
        throw err;
      }
      return r;
    });
    try {
      await merge.copy((chunk) => {
        hash.update(chunk);
        bytes += chunk.length;
      });
    } finally {
      await merge.close();
    }
  } catch (err) {
    return { bytes, error: err instanceof NotFoundError ? `an object of the chain is missing (${err.message})` : (err as Error).message };
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** The problem verify reports for a check and its rebuild (undefined: the manifest's size and sha256). */
export function deltaProblem(c: DeltaCheck, r: RebuildResult): string | undefined {
  if ('error' in r) return `unable to rebuild ${describe(c)}: ${r.error}`;
  if (r.bytes === c.size && r.sha256 === c.sha256) return undefined;
  return `${describe(c)}, does not match the manifest (${r.bytes} bytes, sha256 ${r.sha256.slice(0, 16)}…; expected ${c.size} bytes, ${c.sha256.slice(0, 16)}…): restore would refuse this backup`;
}
