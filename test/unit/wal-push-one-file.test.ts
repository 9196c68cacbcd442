// `pgark wal-push` moves one file per process: it compresses lz4 on its own thread and frees each
// output once written (src/io/codecs/lz4-thread.ts), from before it resolves its settings on.
import { describe, expect, it } from 'vitest';
import { lz4OnCallingThread } from '../../src/io/codecs/lz4-thread.js';
import { runWalPush } from '../../src/cli/wal-push-command.js';

describe('wal-push: one file per process', () => {
  it('switches lz4 to the calling thread before anything is pushed', async () => {
    expect(lz4OnCallingThread()).toBe(false);
    await expect(runWalPush('/nonexistent/000000010000000000000001', {}, () => {
      throw new Error('settings: stop here');
    })).rejects.toThrow('settings: stop here');
    expect(lz4OnCallingThread()).toBe(true);
  });
});
