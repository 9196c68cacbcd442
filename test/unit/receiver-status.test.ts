import { describe, expect, it } from 'vitest';
import { LagClock, receiverPrometheusText, type ReceiverStatus } from '../../src/receiver/receiver-status.js';

type Step = ['saw', bigint, number] | ['stored', bigint] | ['seconds', number, number];

/** Runs the steps; each 'seconds' step checks the lag at that time. */
function run(steps: Step[]): void {
  const clock = new LagClock();
  for (const [i, step] of steps.entries()) {
    if (step[0] === 'saw') clock.saw(step[1], step[2]);
    else if (step[0] === 'stored') clock.stored(step[1]);
    else expect(clock.seconds(step[1]), `step ${i}: seconds(${step[1]})`).toBeCloseTo(step[2], 9);
  }
}

describe('LagClock', () => {
  it.each<[string, Step[]]>([
    ['nothing seen: no lag', [['seconds', 5000, 0]]],
    ['seen, nothing stored: age of the first sample', [['saw', 100n, 1000], ['seconds', 1000, 0], ['seconds', 3500, 2.5]]],
    ['caught up: 0', [['saw', 100n, 1000], ['stored', 100n], ['seconds', 9000, 0]]],
    ['stored beyond what was seen: 0', [['saw', 100n, 1000], ['stored', 500n], ['seconds', 9000, 0]]],
    ['stored part of it: the oldest sample not yet stored counts', [
      ['saw', 100n, 1000], ['saw', 200n, 2000], ['saw', 300n, 3000],
      ['stored', 150n], ['seconds', 4000, 2],
      ['stored', 200n], ['seconds', 4000, 1],
      ['stored', 299n], ['seconds', 4000, 1],
      ['stored', 300n], ['seconds', 4000, 0],
    ]],
    ['stored exactly a sample position removes it', [['saw', 100n, 1000], ['saw', 200n, 2000], ['stored', 100n], ['seconds', 2500, 0.5]]],
    ['a sample not beyond the last one is ignored', [
      ['saw', 100n, 1000], ['saw', 100n, 5000], ['saw', 50n, 6000], ['stored', 100n], ['seconds', 7000, 0],
    ]],
    ['a sample after everything was stored starts a new wait', [
      ['saw', 100n, 1000], ['stored', 100n], ['saw', 200n, 5000], ['seconds', 5500, 0.5],
    ]],
    ['the clock never goes negative', [['saw', 100n, 1000], ['seconds', 500, 0]]],
    // Within 100 ms of the last sample, a new position moves that sample on instead of adding one
    // (but the very first sample is kept as it is).
    ['samples within 100 ms coalesce into the last one', [
      ['saw', 100n, 0], ['saw', 200n, 1000], ['saw', 300n, 1050],
      // Without coalescing, (300, 1050) would be the oldest left: 0.95 s.
      ['stored', 200n], ['seconds', 2000, 1],
      ['stored', 300n], ['seconds', 2000, 0],
    ]],
    ['samples 100 ms apart are kept apart', [
      ['saw', 100n, 0], ['saw', 200n, 1000], ['saw', 300n, 1100], ['stored', 200n], ['seconds', 2000, 0.9],
    ]],
    ['the first sample does not coalesce', [
      ['saw', 100n, 1000], ['saw', 200n, 1010], ['stored', 100n], ['seconds', 2010, 1],
    ]],
  ])('%s', (_label, steps) => {
    run(steps);
  });

  it('keeps at most 10000 samples, dropping the oldest', () => {
    const clock = new LagClock();
    for (let i = 1; i <= 25_000; i++) clock.saw(BigInt(i), i * 1000);
    // Samples 15001..25000 are left: the oldest was seen at 15001 s.
    expect(clock.seconds(25_001_000)).toBeCloseTo(10_000, 6);
    clock.stored(15_000n);
    expect(clock.seconds(25_001_000)).toBeCloseTo(10_000, 6);
    clock.stored(15_001n);
    expect(clock.seconds(25_001_000)).toBeCloseTo(9_999, 6);
    clock.stored(25_000n);
    expect(clock.seconds(25_001_000)).toBe(0);
  });

  it('coalesced samples do not grow the list', () => {
    const clock = new LagClock();
    clock.saw(1n, 0);
    clock.saw(2n, 1);
    for (let i = 3; i < 50_000; i++) clock.saw(BigInt(i), 1 + (i % 50));
    clock.stored(1n);
    // Everything after the first sample went into the second one (seen at 1 ms).
    expect(clock.seconds(1001)).toBeCloseTo(1, 9);
    clock.stored(49_998n);
    expect(clock.seconds(1001)).toBeCloseTo(1, 9);
    clock.stored(49_999n);
    expect(clock.seconds(1001)).toBe(0);
  });
});

const BASE: ReceiverStatus = {
  name: 'rx1',
  host: 'backup1',
  pid: 4242,
  state: 'streaming',
  synchronous: true,
  startedAt: '2026-01-02T03:04:05.000Z',
  updatedAt: '2026-01-02T03:05:05.000Z',
  server: { where: 'db1:5432', systemIdentifier: '7300000000000000001', timeline: 3, version: 170002 },
  slot: { name: 'pgark', restartLsn: '0/3000000', restartTimeline: 3, active: true },
  timeline: 3,
  segment: '000000030000000100000000',
  writeLsn: '1/0',
  flushLsn: '0/FFFFFFFF',
  serverWalEnd: '1/10',
  lagBytes: 17,
  lagSeconds: 0.25,
  lastFlushAt: '2026-01-02T03:05:04.500Z',
  lastMessageAt: '2026-01-02T03:05:05.000Z',
  bytesReceived: 123456,
  piecesStored: 10,
  segmentsStored: 2,
  reconnects: 1,
};

interface Sample {
  name: string;
  labels: string;
  value: string;
}

/** Parses exposition text strictly: HELP, TYPE, then the samples of each metric; returns them. */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  expect(text.endsWith('\n')).toBe(true);
  const lines = text.slice(0, -1).split('\n');
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const helped = new Set<string>();
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const help = /^# HELP (\S+) (.+)$/.exec(line);
    if (help) {
      expect(helped.has(help[1]!), `HELP of ${help[1]} twice`).toBe(false);
      helped.add(help[1]!);
      const type = /^# TYPE (\S+) (gauge|counter)$/.exec(lines[i + 1] ?? '');
      expect(type?.[1], `TYPE after HELP of ${help[1]}`).toBe(help[1]);
      types.set(type![1]!, type![2]!);
      i += 1;
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    expect(m, `sample line ${JSON.stringify(line)}`).not.toBeNull();
    expect(helped.has(m![1]!), `HELP and TYPE before ${m![1]}`).toBe(true);
    expect(Number.isFinite(Number(m![3]))).toBe(true);
    samples.push({ name: m![1]!, labels: m![2] ?? '', value: m![3]! });
  }
  for (const name of helped) expect(samples.some((s) => s.name === name), `a sample of ${name}`).toBe(true);
  return { samples, types };
}

const value = (samples: Sample[], name: string) => samples.find((s) => s.name === name)?.value;

describe('receiverPrometheusText', () => {
  it('without a status: only pgark_receiver_up 0', () => {
    const text = receiverPrometheusText(undefined);
    const { samples, types } = parseExposition(text);
    expect(samples).toEqual([{ name: 'pgark_receiver_up', labels: '', value: '0' }]);
    expect(types.get('pgark_receiver_up')).toBe('gauge');
  });

  it('a full status is well-formed exposition text with the expected values', () => {
    const { samples, types } = parseExposition(receiverPrometheusText(BASE));
    for (const s of samples) expect(s.name).toMatch(/^pgark_receiver_[a-z_]+$/);
    for (const [name, type] of types) {
      if (type === 'counter') expect(name).toMatch(/_total$/);
      else expect(name).not.toMatch(/_total$/);
    }
    expect(Object.fromEntries(samples.map((s) => [s.name + s.labels, s.value]))).toEqual({
      pgark_receiver_up: '1',
      pgark_receiver_synchronous: '1',
      pgark_receiver_timeline: '3',
      pgark_receiver_write_lsn_bytes: '4294967296',
      pgark_receiver_flush_lsn_bytes: '4294967295',
      pgark_receiver_server_wal_end_bytes: '4294967312',
      pgark_receiver_lag_bytes: '17',
      pgark_receiver_lag_seconds: '0.25',
      pgark_receiver_last_flush_timestamp_seconds: String(Date.parse('2026-01-02T03:05:04.500Z') / 1000),
      pgark_receiver_last_message_timestamp_seconds: String(Date.parse('2026-01-02T03:05:05.000Z') / 1000),
      'pgark_receiver_slot_active{slot="pgark"}': '1',
      'pgark_receiver_slot_restart_lsn_bytes{slot="pgark"}': String(0x3000000),
      pgark_receiver_received_bytes_total: '123456',
      pgark_receiver_pieces_stored_total: '10',
      pgark_receiver_segments_stored_total: '2',
      pgark_receiver_reconnects_total: '1',
    });
  });

  it.each<[string, string | undefined, string | undefined]>([
    ['0/0', '0/0', '0'],
    ['1/0', '1/0', '4294967296'],
    ['0/FFFFFFFF', '0/FFFFFFFF', '4294967295'],
    ['lower case hex', '1a/b0c', String(0x1a * 2 ** 32 + 0xb0c)],
    ['16/B374D848', '16/B374D848', String(0x16b374d848)],
    ['large high part', 'FFFF/FFFFFFFF', String(0xffff * 2 ** 32 + 0xffffffff)],
    ['not an LSN: left out', '12345', undefined],
    ['empty: left out', '', undefined],
    ['absent: left out', undefined, undefined],
  ])('LSN %s as a number', (_label, lsn, expected) => {
    const { samples } = parseExposition(receiverPrometheusText({ ...BASE, writeLsn: lsn }));
    expect(value(samples, 'pgark_receiver_write_lsn_bytes')).toBe(expected);
  });

  it.each<[string, ReceiverStatus['state'], string]>([
    ['streaming', 'streaming', '1'],
    ['connecting', 'connecting', '0'],
    ['retrying', 'retrying', '0'],
    ['stopped', 'stopped', '0'],
    ['failed', 'failed', '0'],
  ])('up when %s', (_label, state, up) => {
    const { samples } = parseExposition(receiverPrometheusText({ ...BASE, state }));
    expect(value(samples, 'pgark_receiver_up')).toBe(up);
  });

  it.each<[string, string, string]>([
    ['plain', 'pgark_1', '{slot="pgark_1"}'],
    ['quote', 'a"b', '{slot="a_b"}'],
    ['backslash', 'a\\b', '{slot="a_b"}'],
    ['newline', 'a\nb', '{slot="a_b"}'],
    ['all of them', '"\\\n', '{slot="___"}'],
  ])('slot label escaping: %s', (_label, slotName, labels) => {
    const text = receiverPrometheusText({ ...BASE, slot: { name: slotName, active: false } });
    const { samples } = parseExposition(text);
    const slot = samples.filter((s) => s.name.startsWith('pgark_receiver_slot_'));
    // No restart LSN: only slot_active, with the label.
    expect(slot).toEqual([{ name: 'pgark_receiver_slot_active', labels, value: '0' }]);
  });

  it('leaves out what is not known', () => {
    const minimal: ReceiverStatus = {
      name: 'rx1', host: 'h', pid: 1, state: 'connecting', synchronous: false, startedAt: 'x', updatedAt: 'x',
      lagBytes: 0, lagSeconds: 0, bytesReceived: 0, piecesStored: 0, segmentsStored: 0, reconnects: 0,
      lastFlushAt: 'not a date',
    };
    const { samples } = parseExposition(receiverPrometheusText(minimal));
    expect(samples.map((s) => s.name).sort()).toEqual([
      'pgark_receiver_lag_bytes',
      'pgark_receiver_lag_seconds',
      'pgark_receiver_pieces_stored_total',
      'pgark_receiver_received_bytes_total',
      'pgark_receiver_reconnects_total',
      'pgark_receiver_segments_stored_total',
      'pgark_receiver_synchronous',
      'pgark_receiver_up',
    ]);
    expect(samples.every((s) => s.labels === '')).toBe(true);
    expect(value(samples, 'pgark_receiver_synchronous')).toBe('0');
  });

  it('leaves out non-finite numbers', () => {
    const { samples } = parseExposition(receiverPrometheusText({ ...BASE, lagSeconds: Number.NaN, lagBytes: Number.POSITIVE_INFINITY }));
    expect(value(samples, 'pgark_receiver_lag_seconds')).toBeUndefined();
    expect(value(samples, 'pgark_receiver_lag_bytes')).toBeUndefined();
    expect(value(samples, 'pgark_receiver_up')).toBe('1');
  });
});
