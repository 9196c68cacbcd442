/** The read side of drill reports: defensive parsing and the `pgark info` line. */
import { describe, expect, it } from 'vitest';
import { drillIdOfKey, drillIdTimeMs, formatAgo, formatDrillLine, summariseDrillReport, type DrillSummary } from '../../src/ops/metrics-drill.js';

const ID = '20261123-101500D';
const NOW = Date.parse('2026-11-23T12:16:00.000Z');

const report = {
  id: ID, stanza: 'main', host: 'db1', startedAt: '2026-11-23T10:15:00.000Z', finishedAt: '2026-11-23T10:15:30.000Z',
  backup: { id: '20261123-010000F', type: 'full', stopTime: '2026-11-23T01:10:00.000Z' },
  target: { kind: 'latest' }, result: 'passed',
  phases: { restoreSec: 4.1, replaySec: 6.0, promoteSec: 2.2, checksSec: 3 }, rtoSec: 12.3,
  rpo: { lastReplayedCommit: '2026-11-23T10:14:00.000Z', newestArchivedCommit: '2026-11-23T10:14:00.000Z', seconds: 0 },
  checks: [{ name: 'pg_amcheck', ok: true, detail: '' }, { name: 'tables', ok: true, detail: '' }, { name: 'x', ok: false, skipped: true, detail: 'not found' }],
};

describe('summariseDrillReport', () => {
  it('a complete report', () => {
    expect(summariseDrillReport(ID, JSON.stringify(report))).toEqual({
      id: ID, result: 'passed', startedAt: report.startedAt, finishedAt: report.finishedAt, target: { kind: 'latest' },
      backup: { id: '20261123-010000F', type: 'full' }, phases: { restoreSec: 4.1, replaySec: 6, promoteSec: 2.2, checksSec: 3 }, rtoSec: 12.3,
      rpo: { seconds: 0, lastReplayedCommit: report.rpo.lastReplayedCommit, newestArchivedCommit: report.rpo.newestArchivedCommit },
      checks: { total: 3, failed: 0, skipped: 1 },
    });
  });
  it.each<[string, unknown, Partial<DrillSummary>]>([
    ['an empty object: everything unknown', {}, { id: ID, phases: {}, rpo: {} }],
    ['wrong types are dropped, not trusted', { result: 'PASSED', rtoSec: '12', phases: { restoreSec: -1, replaySec: 'x' }, rpo: { seconds: null }, finishedAt: 'yesterday', checks: 'all' },
      { id: ID, phases: {}, rpo: {} }],
    ['a failed drill keeps its reason', { result: 'failed', failure: 'recovery ended before the target', phases: { restoreSec: 2 }, checks: [{ ok: false }] },
      { id: ID, result: 'failed', failure: 'recovery ended before the target', phases: { restoreSec: 2 }, rpo: {}, checks: { total: 1, failed: 1, skipped: 0 } }],
    ['a target with a value', { target: { kind: 'time', value: '2026-11-23 10:00:00+00' } }, { id: ID, target: { kind: 'time', value: '2026-11-23 10:00:00+00' }, phases: {}, rpo: {} }],
  ])('%s', (_what, json, expected) => {
    expect(summariseDrillReport(ID, JSON.stringify(json))).toEqual(expected);
  });
  it.each([['not JSON', '{"result": "pass'], ['an array', '[1,2]'], ['null', 'null']])('%s is unreadable, never a throw', (_w, text) => {
    const s = summariseDrillReport(ID, text);
    expect(s.unreadable).toBeTruthy();
    expect(s.result).toBeUndefined();
  });
});

describe('formatDrillLine', () => {
  const passed = summariseDrillReport(ID, JSON.stringify(report));
  it.each<[string, DrillSummary, string]>([
    ['passed', passed, `${ID}: passed, RTO 12.3 s (restore 4.1, replay 6.0, promote 2.2), RPO 0 s, 2 h ago`],
    ['failed', summariseDrillReport(ID, JSON.stringify({ ...report, result: 'failed', failure: 'check failed: SELECT false', rtoSec: undefined, phases: { restoreSec: 4 }, rpo: {} })),
      `${ID}: FAILED: check failed: SELECT false, RTO unknown (restore 4.0), 2 h ago`],
    ['failed before anything ran', summariseDrillReport(ID, JSON.stringify({ result: 'failed', finishedAt: '2026-11-20T12:15:00.000Z' })), `${ID}: FAILED: no reason recorded, 3 d ago`],
    ['RPO unknown with its note', summariseDrillReport(ID, JSON.stringify({ ...report, rpo: { note: 'pg_waldump not found' } })),
      `${ID}: passed, RTO 12.3 s (restore 4.1, replay 6.0, promote 2.2), RPO unknown (pg_waldump not found), 2 h ago`],
    ['fractional RPO', summariseDrillReport(ID, JSON.stringify({ ...report, rpo: { seconds: 2.345 } })), `${ID}: passed, RTO 12.3 s (restore 4.1, replay 6.0, promote 2.2), RPO 2.3 s, 2 h ago`],
    ['no times: the id tells when', { id: ID, result: 'passed', phases: {}, rpo: {} }, `${ID}: passed, RTO unknown, RPO unknown, 2 h ago`],
    ['unreadable', { id: ID, phases: {}, rpo: {}, unreadable: 'invalid JSON' }, `${ID}: report unreadable (invalid JSON), 2 h ago`],
    ['unknown result', { id: 'bad', phases: {}, rpo: {} }, 'bad: result unknown, RTO unknown, RPO unknown, time unknown'],
  ])('%s', (_what, s, line) => {
    expect(formatDrillLine(s, NOW)).toBe(line);
  });
});

describe('ids and ages', () => {
  it('drillIdOfKey', () => {
    expect(drillIdOfKey(`main/drill/${ID}.json`)).toBe(ID);
    expect(drillIdOfKey('main/drill/20261123-101500F.json')).toBeUndefined();
    expect(drillIdOfKey(`main/drill/${ID}.json.tmp`)).toBeUndefined();
    expect(drillIdOfKey('main/catalog/x.json')).toBeUndefined();
  });
  it('drillIdTimeMs', () => {
    expect(drillIdTimeMs(ID)).toBe(Date.parse('2026-11-23T10:15:00.000Z'));
    expect(drillIdTimeMs('nope')).toBeNaN();
  });
  it.each([[0, '0 s'], [-5, '0 s'], [119.9, '119 s'], [120, '2 min'], [7199, '119 min'], [7200, '2 h'], [172_799, '47 h'], [172_800, '2 d']])('formatAgo(%d)', (s, text) => {
    expect(formatAgo(s)).toBe(text);
  });
});
