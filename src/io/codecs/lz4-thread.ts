/**
 * Where this process compresses lz4 (io/codecs/lz4.ts, repo/one-pass-encoder.ts): on libuv's
 * threadpool (the default: the agent and the look-ahead worker compress while their thread reads
 * and hashes), or on the calling thread, synchronously: a full-path wal-push
 * (cli/wal-push-command.ts) and backup (backup/backup.ts, and each worker thread in
 * backup-worker.ts). lz4-napi allocates each output in the mimalloc heap of the thread that
 * compressed it, and memory freed from another thread (the main thread, when the output is
 * dropped) stayed resident: the pages of the last ~70-140 outputs per pool thread, so backup's
 * peak RSS grew with the data (110-260 MiB), the agent's to 125-143 MiB. With the outputs made
 * and freed on one thread, and freed as soon as they are written (io/free-once-written.ts), a
 * wal-push of a 16 MiB pgbench segment peaks ~6-7 MiB lower and backup ~90 MiB whatever the
 * data, for the same or less CPU (bench/results/memory.md). The agent did too (~82 MiB), but on
 * one thread its drain no longer used the second core: on an idle 2-core host 10-40 % longer
 * wall time per backlog (bench/results/memory.md, "The agent back on the threadpool"), and
 * falling behind is worse for a DBA than memory, so it stays on the threadpool. Its own module,
 * without dependencies, so that the CLI can set it without loading lz4-napi.
 */

let onCallingThread = false;

/** From now on this process compresses lz4 on the calling thread, and frees each output once written. */
export function compressLz4OnCallingThread(): void {
  onCallingThread = true;
}

/** True once compressLz4OnCallingThread was called. */
export function lz4OnCallingThread(): boolean {
  return onCallingThread;
}
