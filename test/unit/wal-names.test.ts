import { describe, expect, it } from 'vitest';
import { isArchivedWalName, isHistoryName, isSegmentName, isSegmentOrPartialName, segmentOfArchivedName, segmentOfReadyFile } from '../../src/pg/wal-names.js';

const SEG = '000000010000000A000000FF';

describe('WAL file name shapes', () => {
  it.each<[string, boolean, boolean, boolean, string | undefined, boolean, string | undefined]>([
    // name, segment, segment|partial, history, segmentOfArchived, archived, segmentOfReady
    [SEG, true, true, false, SEG, true, undefined],
    [`${SEG}.partial`, false, true, false, SEG, true, undefined],
    [`${SEG}.00000028.backup`, false, false, false, SEG, true, undefined],
    ['00000002.history', false, false, true, undefined, true, undefined],
    [`${SEG}.ready`, false, false, false, undefined, false, SEG],
    [`${SEG}.partial.ready`, false, false, false, undefined, false, undefined],
    [`${SEG}.done`, false, false, false, undefined, false, undefined],
    [SEG.toLowerCase(), false, false, false, undefined, false, undefined],
    [SEG.slice(1), false, false, false, undefined, false, undefined],
    [`${SEG}0`, false, false, false, undefined, false, undefined],
    [`x${SEG}`, false, false, false, undefined, false, undefined],
    [`${SEG}\n`, false, false, false, undefined, false, undefined],
    [`${SEG}.0000028.backup`, false, false, false, undefined, false, undefined],
    ['0000002.history', false, false, false, undefined, false, undefined],
    ['', false, false, false, undefined, false, undefined],
  ])('%j', (name, seg, segOrPartial, history, ofArchived, archived, ofReady) => {
    expect(isSegmentName(name)).toBe(seg);
    expect(isSegmentOrPartialName(name)).toBe(segOrPartial);
    expect(isHistoryName(name)).toBe(history);
    expect(segmentOfArchivedName(name)).toBe(ofArchived);
    expect(isArchivedWalName(name)).toBe(archived);
    expect(segmentOfReadyFile(name)).toBe(ofReady);
  });
});
