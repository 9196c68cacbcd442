import { describe, expect, it } from 'vitest';
import { backlogWarning, prometheusText, ratePerMinute, type AgentStatus } from '../../src/agent/agent-status.js';

const base: AgentStatus = {
  pid: 42, stanza: 'main', repo: '/r', startedAt: '2026-11-23T10:00:00.000Z', updatedAt: '2026-11-23T10:05:00.000Z',
  queue: 0, inFlight: 0, oldestReadyAgeSec: 0, pushed: 10, alreadyArchived: 1, bytes: 167772160, errors: 0, perMinute: 3,
};

describe('backlogWarning', () => {
  const t = { segments: 64, ageSec: 300 };
  it.each([
    [{ queue: 0, oldestReadyAgeSec: 0 }, undefined],
    [{ queue: 63, oldestReadyAgeSec: 299.9 }, undefined],
    [{ queue: 64, oldestReadyAgeSec: 10, oldestReady: '000000010000000000000010' }, /64 segments waiting \(threshold 64\)/],
    [{ queue: 1, oldestReadyAgeSec: 300, oldestReady: '000000010000000000000010' }, /oldest ready segment 000000010000000000000010 waiting 300 s/],
  ])('%j', (over, expected) => {
    const w = backlogWarning({ ...base, ...over }, t);
    if (expected === undefined) expect(w).toBeUndefined();
    else expect(w).toMatch(expected);
  });
  it('names both causes and the last error', () => {
    const w = backlogWarning({ ...base, queue: 100, oldestReadyAgeSec: 900, oldestReady: 'X', errors: 3, lastError: { at: 't', segment: 'S', message: 'unable to store: 503' } }, t);
    expect(w).toBe('archive backlog: 100 segments waiting (threshold 64), oldest ready segment X waiting 900 s (threshold 300 s); pg_wal keeps growing until it is archived; last error on S: unable to store: 503');
  });
});

describe('ratePerMinute', () => {
  it('counts completions within the last 60 s', () => {
    expect(ratePerMinute([0, 1000, 59_999, 60_000, 120_000], 120_000)).toBe(2);
    expect(ratePerMinute([], 5)).toBe(0);
  });
});

describe('prometheusText', () => {
  it('renders every metric with HELP, TYPE and the stanza label', () => {
    const text = prometheusText({ ...base, queue: 5, inFlight: 2, oldestReadyAgeSec: 12.5, lastPushAt: '2026-11-23T10:04:00.000Z' }, Date.parse('2026-11-23T10:05:02.000Z'));
    const samples = text.split('\n').filter((l) => l && !l.startsWith('#'));
    expect(samples).toEqual([
      'pgark_agent_up{stanza="main"} 1',
      'pgark_agent_queue_segments{stanza="main"} 5',
      'pgark_agent_in_flight_segments{stanza="main"} 2',
      'pgark_agent_oldest_ready_age_seconds{stanza="main"} 12.5',
      'pgark_agent_pushed_segments_total{stanza="main"} 10',
      'pgark_agent_already_archived_segments_total{stanza="main"} 1',
      'pgark_agent_pushed_bytes_total{stanza="main"} 167772160',
      'pgark_agent_errors_total{stanza="main"} 0',
      'pgark_agent_segments_per_minute{stanza="main"} 3',
      'pgark_agent_last_push_timestamp_seconds{stanza="main"} 1795428240',
      'pgark_agent_status_age_seconds{stanza="main"} 2',
    ]);
    expect(text).toMatch(/^# TYPE pgark_agent_pushed_segments_total counter$/m);
    expect(text).toMatch(/^# TYPE pgark_agent_queue_segments gauge$/m);
    expect(text.endsWith('\n')).toBe(true);
  });
  it('escapes label values', () => {
    expect(prometheusText({ ...base, stanza: 'a"b\\c' }, 0)).toContain('stanza="a\\"b\\\\c"');
  });
});
