// `pgark backup` compresses lz4 on its own (main) thread and frees each output once written
// (src/io/codecs/lz4-thread.ts): on libuv's threadpool, lz4-napi's allocator kept what the main
// thread freed of its outputs (peak RSS 110-250 MiB growing with the data; bench/results/memory.md).
// The switch is process-wide and happens before anything is read or stored.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { lz4OnCallingThread } from '../../../src/io/codecs/lz4-thread.js';
import { runBackup } from '../../../src/backup/backup.js';
import type { Repository } from '../../../src/repo/repository.js';

describe('backup: lz4 on the calling thread', () => {
  it('switches lz4 to the calling thread before it connects', async () => {
    expect(lz4OnCallingThread()).toBe(false);
    const settings = { jobsExplicit: true, jobs: 1 } as unknown as Parameters<typeof runBackup>[1];
    await expect(runBackup({} as Repository, settings, { type: 'full', keep: false, dsn: 'postgresql://pgark@127.0.0.1:1/none?connect_timeout=2', checkpoint: 'fast', storeWal: false, progress: false, delta: false, fromStandby: false } as Parameters<typeof runBackup>[2])).rejects.toThrow();
    expect(lz4OnCallingThread()).toBe(true);
  });

  it('a backup worker thread (--jobs beyond 2) compresses on itself too (built dist/, as runPool starts it)', async () => {
    const worker = pathToFileURL(resolve('dist/src/backup/backup-worker.js')).href;
    const thread = pathToFileURL(resolve('dist/src/io/codecs/lz4-thread.js')).href;
    const w = new Worker(
      `const { parentPort } = require('node:worker_threads');
       (async () => { await import(${JSON.stringify(worker)}); const m = await import(${JSON.stringify(thread)}); parentPort.postMessage({ onCallingThread: m.lz4OnCallingThread() }); })()
         .catch((e) => parentPort.postMessage({ error: String(e) }));`,
      { eval: true, workerData: { init: {}, log: { command: 'backup', destinations: { level: 'error', stderrLevel: 'error' } } } },
    );
    try {
      const answer = await new Promise<unknown>((res, rej) => {
        w.once('message', res);
        w.once('error', rej);
      });
      expect(answer).toEqual({ onCallingThread: true });
    } finally {
      await w.terminate();
    }
  });
});
