// The agent re-looks at a segment once it holds its lock (src/agent/agent.ts stillToPush): a
// segment a look-ahead worker stored meanwhile (its record) or PostgreSQL archived meanwhile (no
// .ready) is not pushed again, which would only re-hash the local file to find it stored.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stillToPush } from '../../src/agent/agent.js';

const dir = mkdtempSync(join(tmpdir(), 'pgark-still-to-push-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('stillToPush', () => {
  const cases: Array<[string, boolean, boolean, boolean]> = [
    ['ready, no record: push it', true, false, true],
    ['ready, a record written since the listing: skip', true, true, false],
    ['archived since the listing (no .ready), no record: skip', false, false, false],
    ['archived and recorded: skip', false, true, false],
  ];
  for (const [what, ready, record, want] of cases) {
    it(what, async () => {
      const walDir = mkdtempSync(join(dir, 'pg_wal-'));
      const records = join(walDir, '.pgark', 'pushed');
      mkdirSync(join(walDir, 'archive_status'));
      mkdirSync(records, { recursive: true });
      const name = '000000010000000000000007';
      if (ready) writeFileSync(join(walDir, 'archive_status', `${name}.ready`), '');
      if (record) writeFileSync(join(records, name), 'record');
      expect(await stillToPush(walDir, records, name)).toBe(want);
    });
  }
});
