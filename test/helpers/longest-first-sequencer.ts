/**
 * Test files start longest first, so the two workers end together instead of one running the
 * longest file alone at the end (vitest hands each free worker the next file).
 *
 * vitest's own order uses the durations it caches in node_modules/.vite/vitest/, which a fresh
 * clone (CI) does not have: it then starts the largest files (bytes) first, which is not the
 * same. Here a file's weight is its cached duration when vitest has one, else its seconds in
 * test/file-durations.json (a previous run), else an estimate from its size for a new file.
 */
import { readFileSync, statSync } from 'node:fs';
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const known = (JSON.parse(readFileSync(new URL('../file-durations.json', import.meta.url), 'utf8')) as { seconds: Record<string, number> }).seconds;

/** A file not measured yet: ~1 s per KiB of test code, integration files weigh more. */
function estimate(file: string): number {
  let size = 0;
  try {
    size = statSync(file).size;
  } catch {
    // weight 0
  }
  return (size / 1024) * (file.includes('/integration/') ? 2 : 0.5);
}

export class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = this.ctx.config.root;
    const weight = new Map<TestSpecification, number>();
    for (const f of files) {
      const rel = relative(root, f.moduleId).split('\\').join('/');
      const cached = this.ctx.cache.getFileTestResults(`${f.project.name}:${rel}`);
      weight.set(f, cached && cached.duration > 0 ? cached.duration / 1000 : (known[rel] ?? estimate(f.moduleId)));
    }
    return [...files].sort((a, b) => weight.get(b)! - weight.get(a)!);
  }
}
