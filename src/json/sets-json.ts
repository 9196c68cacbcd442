/** `--json` of sets list and slots list (pure). Formats: docs/JSON.md. */
import type { SetMeta } from '../logical/set-meta.js';
import type { SlotInfo } from '../logical/slots.js';
import { withFormat } from './format.js';

/** The sets, without the storage format number of their metadata. */
export function setsListJson(sets: readonly SetMeta[]) {
  return withFormat('sets-list', { sets: sets.map(({ format: _stored, ...s }) => s) });
}

export function slotsListJson(slots: readonly SlotInfo[]) {
  return withFormat('slots-list', { slots: [...slots] });
}
