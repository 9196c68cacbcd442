/** `--json` of clone and drills (pure). Formats: docs/JSON.md. */
import type { CloneOutcome } from '../drill/clone.js';
import type { DrillReport } from '../drill/drill-report.js';
import { withFormat } from './format.js';

export function cloneJson(out: CloneOutcome) {
  const r = out.restore;
  return withFormat('clone', {
    backup: r.backup.id, pgdata: r.pgdata, filesWritten: r.filesWritten, bytesWritten: r.bytesWritten, durationMs: r.durationMs,
    settings: Object.fromEntries([...r.settings.filter(([k]) => k !== 'restore_command'), ...out.extra]), signal: r.signal,
    started: out.started, logFile: out.logFile, startCommand: out.startCommand, notes: [...r.notes, ...out.notes],
  });
}

/** Stored drill reports, newest first, without their storage format number. */
export function drillsJson(stanza: string, reports: readonly DrillReport[]) {
  return withFormat('drills', { stanza, drills: reports.map(({ format: _stored, ...r }) => r) });
}
