import { defineConfig } from 'vitest/config';
import { LongestFirstSequencer } from './test/helpers/longest-first-sequencer.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
    // Longest files first (test/file-durations.json on a fresh clone): the workers end together.
    sequence: { sequencer: LongestFirstSequencer },
    // The GCS SDK's known retry race (src/common/sdk-races.ts; pgark's processes ignore it the
    // same way): not an error of the code under test. Everything else still fails the run.
    onUnhandledError: (err) => {
      const e = err as { code?: unknown; stack?: unknown; stacks?: unknown };
      const where = `${String(e.stack ?? '')} ${JSON.stringify(e.stacks ?? [])}`;
      return !(e.code === 'ERR_STREAM_UNABLE_TO_PIPE' && where.includes('teeny-request'));
    },
  },
});
