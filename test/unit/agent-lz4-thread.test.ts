// `pgark agent` compresses lz4 on its own (main) thread and frees each output once written
// (src/io/codecs/lz4-thread.ts): on libuv's threadpool, lz4-napi's allocator kept what the main
// thread freed of its outputs (peak RSS 125-140 MiB storing a backlog; bench/results/memory.md).
// The switch is process-wide and happens before the agent stores anything.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { lz4OnCallingThread } from '../../src/io/codecs/lz4-thread.js';
import { runAgent } from '../../src/agent/agent.js';

const walDir = mkdtempSync(join(tmpdir(), 'pgark-agent-lz4-thread-'));
afterAll(() => rmSync(walDir, { recursive: true, force: true }));

describe('agent: lz4 on the calling thread', () => {
  it('switches lz4 to the calling thread before it stores anything', async () => {
    expect(lz4OnCallingThread()).toBe(false);
    // No repository in the settings: the agent stops right after its process-wide settings.
    const set = { first: { stanza: 'main', location: '/nonexistent' } } as unknown as Parameters<typeof runAgent>[0];
    const settings = { stanza: 'main', moreRepos: [], jobs: 1 } as unknown as Parameters<typeof runAgent>[1];
    await expect(runAgent(set, settings, { walDir, pollMs: 100, thresholds: {} as Parameters<typeof runAgent>[2]['thresholds'], signal: AbortSignal.abort() })).rejects.toThrow();
    expect(lz4OnCallingThread()).toBe(true);
  });
});
