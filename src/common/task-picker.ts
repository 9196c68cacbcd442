/**
 * The order in which a pool's lanes take tasks (worker-pool.ts runPool): the tasks' own order,
 * except that a task whose key is held by a running task is passed over for the next one that
 * is free, and a lane with only such tasks left waits until a running task ends.
 *
 * Restore keys the parts of a large file by its path: two threads writing into one file at once
 * serialize on its inode lock (ext4's buffered writes), and the waiting one spins on it while
 * the other copies into the page cache. A restore of 1.55 GB of random data (a 1 GiB and a
 * 0.5 GiB file in 128 MiB parts) spent ~0.3 s of CPU in rwsem_spin_on_owner and rwsem_down_write
 * before, none with this (perf; bench/results/restore.md, 2026-12-07 r-user). The kernel runs
 * such writes one at a time anyway, so a lane that waits loses no write throughput.
 */
export class TaskPicker<T> {
  private readonly left: T[];
  /** Keys of the running tasks. */
  private readonly held = new Set<string>();

  constructor(tasks: readonly T[], private readonly keyOf: (task: T) => string | undefined = () => undefined) {
    this.left = [...tasks];
  }

  /** Tasks not taken yet. */
  get remaining(): number {
    return this.left.length;
  }

  /**
   * The first task not taken whose key is free (or that has none), now running; 'wait' when every
   * task left has a key a running task holds; undefined when none is left.
   */
  take(): T | 'wait' | undefined {
    if (this.left.length === 0) return undefined;
    for (let i = 0; i < this.left.length; i++) {
      const t = this.left[i]!;
      const key = this.keyOf(t);
      if (key !== undefined && this.held.has(key)) continue;
      this.left.splice(i, 1);
      if (key !== undefined) this.held.add(key);
      return t;
    }
    return 'wait';
  }

  /** A task take() gave has ended (done or failed): its key is free again. */
  done(task: T): void {
    const key = this.keyOf(task);
    if (key !== undefined) this.held.delete(key);
  }
}
