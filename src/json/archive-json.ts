/** `--json` of wal-log (pure). Formats: docs/JSON.md. */
import type { AuditEvent } from '../wal/audit.js';
import { withFormat } from './format.js';

export function walLogJson(since: Date, events: readonly AuditEvent[]) {
  return withFormat('wal-log', { since: since.toISOString(), events: [...events] });
}
