/**
 * The --json formats: every command with --json has a format name (src/json/format.ts), a JSON
 * Schema (docs/json-schema), a section in docs/JSON.md (the rendering of the schemas) and an
 * integration test validating its real output; the pure builders on tables.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.js';
import { formatId, JSON_FORMATS, withFormat } from '../../src/json/format.js';
import { expireJson, listJson, showJson } from '../../src/json/catalog-json.js';
import { drillsJson } from '../../src/json/drill-json.js';
import { walLogJson } from '../../src/json/archive-json.js';
import type { BackupInfo } from '../../src/catalog/backup-info.js';
import type { ExpireOutcome } from '../../src/catalog/expire.js';
import { loadSchemas, SCHEMA_DIR } from '../helpers/json-schema.js';

const ROOT = join(import.meta.dirname, '..', '..');
const THINGS = [...new Set(Object.values(JSON_FORMATS))].sort();

function jsonCommands(c: Command, path: string[] = []): string[] {
  const out: string[] = [];
  for (const sub of c.commands) {
    const p = [...path, sub.name()];
    if (sub.options.some((o) => o.long === '--json')) out.push(p.join(' '));
    out.push(...jsonCommands(sub, p));
  }
  return out;
}

describe('every --json output is named, documented and tested', () => {
  it('the commands with --json are exactly those of JSON_FORMATS', async () => {
    expect(jsonCommands(await buildProgram()).sort()).toEqual(Object.keys(JSON_FORMATS).sort());
  });

  it('each format has its schema, and each schema is a format', () => {
    const files = readdirSync(SCHEMA_DIR).filter((f) => f.startsWith('pgark.')).sort();
    expect(files).toEqual(THINGS.map((t) => `pgark.${t}.1.json`).sort());
    for (const t of THINGS) {
      const s = JSON.parse(readFileSync(join(SCHEMA_DIR, `pgark.${t}.1.json`), 'utf8')) as { properties: { format: { const: string } }; required: string[] };
      expect(s.properties.format.const).toBe(formatId(t));
      expect(s.required).toContain('format');
    }
  });

  it('the schemas compile (as published, and strict as the tests use them)', () => {
    for (const strict of [false, true]) {
      const ajv = loadSchemas(strict);
      for (const t of THINGS) expect(ajv.getSchema(`pgark.${t}.1.json`), t).toBeDefined();
    }
  });

  it('docs/JSON.md is the rendering of the schemas (node scripts/json-docs.mjs)', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'json-docs.mjs'), '--check'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const md = readFileSync(join(ROOT, 'docs', 'JSON.md'), 'utf8');
    for (const t of THINGS) expect(md).toContain(`## ${formatId(t)}\n`);
  });

  it('each format is validated against its schema by an integration test running the command', () => {
    const dir = join(ROOT, 'test', 'integration');
    const texts = readdirSync(dir).filter((f) => f.endsWith('.test.ts')).map((f) => readFileSync(join(dir, f), 'utf8'))
      .filter((t) => t.includes("from '../helpers/json-schema.js'"));
    const untested = THINGS.filter((t) => !texts.some((x) => new RegExp(`\\b(expectJsonFormat|json|runJson)\\b[\\s\\S]{0,300}?'${t}'`).test(x)));
    expect(untested).toEqual([]);
  });
});

const point = { time: '2026-12-01T00:00:00.000Z', lsn: '0/2000028', timeline: 1, walFile: '000000010000000000000002' };
const backup: BackupInfo = {
  format: 1, id: '20261201-000000F', type: 'full', chain: ['20261201-000000F'], start: point, stop: point, walRange: { first: point.walFile, last: point.walFile },
  walStored: false, pgVersion: 15, systemIdentifier: '7', dataChecksums: true, fromStandby: false, size: { original: 1, stored: 1, files: 1, objects: 1 },
  durationMs: 1, checksumFailures: 0, codec: 'lz4', manifest: { key: 'k', sha256: 'x', size: 1 }, pgarkVersion: '0.1.0', host: 'h',
};

describe('builders', () => {
  it('withFormat puts the format first and drops a stored format number', () => {
    const o = withFormat('drill', { format: 1, id: 'd' });
    expect(Object.keys(o)).toEqual(['format', 'id']);
    expect(o.format).toBe('pgark.drill/1');
  });

  it('list, show and drills wrap or reshape what has no format of its own', () => {
    const l = listJson('main', [backup], new Set([backup.id]));
    expect(l).toEqual({ format: 'pgark.list/1', stanza: 'main', backups: [{ ...withoutFormat(backup), kept: true }] });
    expect(showJson(backup, false, undefined, false)).toEqual({ format: 'pgark.show/1', ...withoutFormat(backup), kept: false, checksumFailureList: [] });
    expect(drillsJson('main', [{ format: 1, id: 'd1' } as never])).toEqual({ format: 'pgark.drills/1', stanza: 'main', drills: [{ id: 'd1' }] });
    expect(walLogJson(new Date('2026-12-01T00:00:00Z'), [])).toEqual({ format: 'pgark.wal-log/1', since: '2026-12-01T00:00:00.000Z', events: [] });
  });

  it.each<[string, ExpireOutcome, Record<string, unknown>]>([
    ['a dry run removes nothing and lists what would go',
      { dryRun: true, plan: { keep: [], expire: [{ id: 'B1', reason: 'r' }], walKeepFrom: { segment: 'S2', backup: 'B2' }, warnings: [] }, removedBackups: [], removedUncommitted: [],
        wal: { removed: 0, removedBytes: 0, keptFrom: 'S2' }, wouldRemove: { backups: ['B1'], uncommitted: [], wal: { files: 2, bytes: 30, objects: [{ name: 'S0', key: 'k0', size: 10 }, { name: 'S1', key: 'k1', size: 20 }] } } },
      { removed: { backups: [], uncommitted: [], wal: { files: 0, bytes: 0 } }, wouldRemove: { backups: ['B1'], uncommitted: [], wal: { files: 2, bytes: 30, objects: [{ name: 'S0', key: 'k0', size: 10 }, { name: 'S1', key: 'k1', size: 20 }] } } }],
    ['a run reports what it removed and has no wouldRemove',
      { dryRun: false, plan: { keep: [], expire: [{ id: 'B1', reason: 'r' }], walKeepFrom: null, warnings: [] }, removedBackups: ['B1'], removedUncommitted: ['U'],
        wal: { removed: 3, removedBytes: 7, keptFrom: null } },
      { removed: { backups: ['B1'], uncommitted: ['U'], wal: { files: 3, bytes: 7 } } }],
  ])('expire: %s', (_what, out, want) => {
    const j = expireJson(out);
    expect(j).toMatchObject({ format: 'pgark.expire/1', dryRun: out.dryRun, walKeptFrom: out.wal.keptFrom, ...want });
    if (!out.dryRun) expect('wouldRemove' in j).toBe(false);
  });
});

function withoutFormat(b: BackupInfo): Omit<BackupInfo, 'format'> {
  const { format: _f, ...rest } = b;
  return rest;
}
