/**
 * Files written in parts by several lanes (planRestore's `multi`: files larger than a part, and
 * pieces rebuilt from layers): created empty before the tasks run, and finished (size, mode,
 * mtime, fsync) by the main thread.
 *
 * Each file is finished as soon as its last part is written, while the lanes go on with other
 * tasks, and every part written before the last one starts the file's writeback at once (an
 * fdatasync in the background, at most one per file at a time), so that the final fsync has
 * little left to write. Finishing every file at the end, one after another, left the whole of
 * each large file to be written back after the copy: ~0.7 s of a 2.8 s restore of pgbench -s 100
 * (1.3 GB in two files) waited for the disk with no lane working (bench/results/restore.md).
 *
 * A background fdatasync that fails fails the restore: it may be the only call to see the
 * writeback error (a descriptor opened later is not told of an error another one has seen).
 */
import { IntegrityError } from '../common/errors.js';
import type { MultiPieceFile, RestoreTask } from './plan.js';

/** The pieces each file of `multi` has in `tasks` (pure): a file is complete when all are written. */
export function piecesPerFile(tasks: readonly RestoreTask[], multi: readonly MultiPieceFile[]): Map<string, number> {
  const left = new Map<string, number>(multi.map((f) => [f.path, 0]));
  for (const path of multiPathsOf(tasks, left)) left.set(path, left.get(path)! + 1);
  return left;
}

/** The paths of `known` files that `tasks` write a piece of, once per piece. */
function* multiPathsOf(tasks: readonly RestoreTask[], known: ReadonlyMap<string, number>): Generator<string> {
  for (const t of tasks) {
    const pieces = t.kind === 'rebuild' ? [t.piece] : t.pieces;
    for (const p of pieces) if (!p.whole && known.has(p.path)) yield p.path;
  }
}

/** What PartFiles does to a file on the disk (restore.ts: openOwnFile and FileHandle calls). */
export interface PartFileOps {
  /** Start (and wait for) the writeback of what is written so far: an fdatasync. */
  writeback(f: MultiPieceFile): Promise<void>;
  /** Size, mode, mtime and fsync of the complete file. */
  finish(f: MultiPieceFile): Promise<void>;
}

export class PartFiles {
  private readonly left: Map<string, number>;
  private readonly byPath: Map<string, MultiPieceFile>;
  /** Per file, the operation running now (a writeback or the finish). */
  private readonly running = new Map<string, Promise<void>>();
  /** Files a part finished while a writeback ran: one more writeback when it ends. */
  private readonly again = new Set<string>();
  private readonly finished = new Set<string>();
  /** Files finishAll finishes whatever their count says. */
  private readonly forced = new Set<string>();
  private failure: unknown;

  constructor(tasks: readonly RestoreTask[], private readonly multi: readonly MultiPieceFile[], private readonly ops: PartFileOps) {
    this.left = piecesPerFile(tasks, multi);
    this.byPath = new Map(multi.map((f) => [f.path, f]));
  }

  /** A task ended successfully: its parts are written (not yet synced). */
  taskDone(task: RestoreTask): void {
    if (task.kind === 'empty') return;
    const touched = new Set<string>();
    for (const path of multiPathsOf([task], this.left)) {
      this.left.set(path, this.left.get(path)! - 1);
      touched.add(path);
    }
    for (const path of touched) this.kick(path);
  }

  /**
   * After every task: finishes the files not finished yet (a file with no piece to write, e.g.
   * all of it empty parts) and waits for every operation; rejects with the first failure.
   */
  async finishAll(): Promise<void> {
    for (const f of this.multi) {
      if (this.finished.has(f.path)) continue;
      if (this.left.get(f.path)! > 0) this.failure ??= new IntegrityError(`restore finished with parts of '${f.path}' not written`);
      this.forced.add(f.path);
      this.kick(f.path);
    }
    await this.settle();
    if (this.failure !== undefined) throw this.failure;
  }

  /** The restore failed: wait for what runs (its outcome no longer matters). */
  async abandon(): Promise<void> {
    await this.settle();
  }

  private async settle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running.values()]);
  }

  private kick(path: string): void {
    if (this.finished.has(path) || this.failure !== undefined) return;
    if (this.running.has(path)) {
      this.again.add(path);
      return;
    }
    const f = this.byPath.get(path)!;
    const complete = this.forced.has(path) || this.left.get(path) === 0;
    if (this.left.get(path)! < 0) {
      this.failure ??= new IntegrityError(`restore wrote more parts of '${path}' than its manifest has`);
      return;
    }
    if (complete) this.finished.add(path);
    const op = (complete ? this.ops.finish(f) : this.ops.writeback(f)).then(
      () => undefined,
      (err: unknown) => {
        this.failure ??= err;
      },
    );
    this.running.set(path, op.then(() => {
      this.running.delete(path);
      if (this.again.delete(path)) this.kick(path);
    }));
  }
}
