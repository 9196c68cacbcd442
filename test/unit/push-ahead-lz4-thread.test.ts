// The wal-push look-ahead worker (`pgark wal-push-ahead`, a process of its own) compresses lz4 on
// its own thread and frees each output once written (src/io/codecs/lz4-thread.ts), as the agent:
// on libuv's threadpool lz4-napi's allocator kept what the main thread freed of its outputs
// (peak RSS 155-178 MiB storing 15 segments of bulk-insert WAL, ~86 this way; bench/results/memory.md).
import { describe, expect, it } from 'vitest';
import { lz4OnCallingThread } from '../../src/io/codecs/lz4-thread.js';
import { runPushAhead } from '../../src/wal/push-ahead.js';

describe('look-ahead worker: lz4 on the calling thread', () => {
  it('switches lz4 to the calling thread before it stores anything', async () => {
    expect(lz4OnCallingThread()).toBe(false);
    const repo = { requireStanza: () => Promise.reject(new Error('stanza: stop here')) } as unknown as Parameters<typeof runPushAhead>[0];
    await expect(runPushAhead(repo, {} as Parameters<typeof runPushAhead>[1], '/nonexistent', [])).rejects.toThrow('stanza: stop here');
    expect(lz4OnCallingThread()).toBe(true);
  });
});
