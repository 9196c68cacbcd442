/** `--json` of sets list and slots list (pure). Formats: docs/JSON.md. */
import type { SetMeta } from '../logical/set-meta.js';
import type { SlotInfo } from '../logical/slots.js';
import { withFormat } from './format.js';

export function setsListJson(sets: readonly SetMeta[]) {
  return withFormat('sets-list', { sets: [...sets] });
}

export function slotsListJson(slots: readonly SlotInfo[]) {
  return withFormat('slots-list', { slots: [...slots] });
}
