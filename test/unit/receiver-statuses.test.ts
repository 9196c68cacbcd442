/** The one staleness rule for stored receiver status objects (src/wal/receiver-statuses.ts). */
import { describe, expect, it } from 'vitest';
import { isLiveStreaming, isStaleReceiverStatus, RECEIVER_FRESH_MS } from '../../src/wal/receiver-statuses.js';

const now = Date.parse('2026-12-07T01:00:00.000Z');
const at = (agoMs: number) => new Date(now - agoMs).toISOString();

describe('receiver status staleness', () => {
  it.each<[string, string, boolean, boolean]>([
    // state, updatedAt, stale, live streaming
    ['streaming', at(0), false, true],
    ['streaming', at(RECEIVER_FRESH_MS), false, true],
    ['streaming', at(RECEIVER_FRESH_MS + 1), true, false],
    ['connecting', at(RECEIVER_FRESH_MS + 1), true, false],
    ['retrying', at(5_000), false, false],
    ['retrying', at(10 * 60_000), true, false],
    ['stopped', at(10 * 60_000), false, false],
    ['failed', at(10 * 60_000), false, false],
    ['streaming', 'not a time', true, false],
    ['stopped', 'not a time', false, false],
  ])('%s, stored %s: stale %s, live %s', (state, updatedAt, stale, live) => {
    const s = { name: 'r1', state, updatedAt };
    expect(isStaleReceiverStatus(s, now)).toBe(stale);
    expect(isLiveStreaming(s, now)).toBe(live);
  });
});
