import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const built = join(dirname(fileURLToPath(import.meta.url)), '../../dist/storage-drivers/request-stats.js');

/** Count in the main thread and in a worker thread, in a fresh process; return its stderr. */
function run(env: Record<string, string>): string {
  if (!existsSync(built)) throw new Error(`${built} is missing: run 'npm run build' first`);
  const url = JSON.stringify(pathToFileURL(built).href);
  const script = `
    import { Worker } from 'node:worker_threads';
    const { countRequest } = await import(${url});
    countRequest('get');
    countRequest('head', 2);
    const w = new Worker("import(${url.replace(/"/g, '\\"')}).then((m) => { m.countRequest('put', 3); m.countRequest('list'); })", { eval: true });
    await new Promise((r) => w.once('exit', r));
    await new Promise((r) => setTimeout(r, 50));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, ...env }, encoding: 'utf8' });
  expect(r.status).toBe(0);
  return r.stderr;
}

describe('request statistics (PGARK_STORAGE_STATS=1)', () => {
  it('prints one line at exit that includes what worker threads counted', () => {
    const lines = run({ PGARK_STORAGE_STATS: '1' }).trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] as string)).toEqual({ pgarkStorageRequests: { list: 1, head: 2, get: 1, put: 3, delete: 0, other: 0 } });
  });
  it('prints nothing without it', () => {
    expect(run({ PGARK_STORAGE_STATS: '' })).toBe('');
  });
});
