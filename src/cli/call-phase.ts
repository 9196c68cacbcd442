/**
 * The two phases of a one-file call (wal-push, wal-fetch). bin/pgark.js starts them with V8's
 * `--optimize-for-size`: while the call loads its modules and opens the repository (a cloud SDK
 * allocates much that survives), V8 then keeps its young generation small instead of growing it
 * to 16 MiB (−8 to −12 MiB of peak RSS on S3 and Azure, bench/results/memory.md). For the transfer
 * itself the flag is switched off again: kept on, it costs 10-15% more CPU per call.
 */
import { setFlagsFromString } from 'node:v8';

/** The repository is open: the transfer runs with V8's usual heap sizing. */
export function transferPhase(): void {
  setFlagsFromString('--no-optimize-for-size');
}
