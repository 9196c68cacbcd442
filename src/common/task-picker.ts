/**
 * The order in which a pool's lanes take tasks (worker-pool.ts runPool): the tasks' own order,
 * except that a task whose key is held by a running task is passed over for the next one that
 * is free, and a lane with only such tasks left waits until a running task ends.
 *
 * Keys serve work that must not run side by side. Restore keyed the parts of a large file by its
 * path for a while: two threads writing 256 KiB at a time into one file spun on its inode lock
 * (~0.3 s of CPU on 1.55 GB of random data, r-user). With 64 KiB writes the lock is held briefly,
 * and two lanes in one 1 GiB file restored pgbench -s 100 faster than one lane at a time, so
 * restore passes no key now (bench/results/restore.md, 2026-12-07 integrator); without keys the
 * picker hands tasks out in their order.
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
