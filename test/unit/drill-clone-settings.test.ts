import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/common/errors.js';
import { cloneSettings, formatApplyDelay, MAX_APPLY_DELAY_MS, parseApplyDelay, parsePort } from '../../src/drill/clone-settings.js';
import { mergeAutoConf } from '../../src/restore/recovery-conf.js';

describe('parseApplyDelay', () => {
  it.each([
    ['0', 0],
    ['1h', 3_600_000],
    ['30min', 1_800_000],
    ['30 min', 1_800_000],
    ['30m', 1_800_000],
    ['90s', 90_000],
    ['500ms', 500],
    ['1500us', 2],
    ['2d', 172_800_000],
    ['1d12h', 129_600_000],
    ['1h30m', 5_400_000],
    ['1w', 604_800_000],
    ['24d', 2_073_600_000],
  ])('%j = %d ms', (text, ms) => {
    expect(parseApplyDelay(text)).toBe(ms);
  });

  it.each([
    ['3600', /give a unit/],
    ['', /expected a number with a unit/],
    ['1 hour', /expected a number with a unit/],
    ['-1h', /expected a number with a unit/],
    ['1.5h', /expected a number with a unit/],
    ['1H', /expected a number with a unit/],
    ['25d', /at most 2147483647 ms/],
    ['4w', /at most/],
  ])('refuses %j', (text, re) => {
    expect(() => parseApplyDelay(text)).toThrow(InvalidInputError);
    expect(() => parseApplyDelay(text)).toThrow(re);
  });

  it.each([
    [0, '0'],
    [500, '500ms'],
    [1000, '1s'],
    [90_000, '90s'],
    [1_800_000, '30min'],
    [3_600_000, '1h'],
    [5_400_000, '90min'],
    [172_800_000, '2d'],
    [129_600_000, '36h'],
    [MAX_APPLY_DELAY_MS, '2147483647ms'],
  ])('formatApplyDelay(%d) = %s', (ms, text) => {
    expect(formatApplyDelay(ms)).toBe(text);
  });

  it('round-trips through the PostgreSQL form', () => {
    for (const t of ['1h', '30m', '1d12h', '1500us', '2w']) {
      const ms = parseApplyDelay(t);
      expect(parseApplyDelay(formatApplyDelay(ms))).toBe(ms);
    }
  });
});

describe('parsePort', () => {
  it.each([['5432', 5432], ['1', 1], ['65535', 65535], [' 6000 ', 6000]])('%j', (t, n) => {
    expect(parsePort(t)).toBe(n);
  });
  it.each(['0', '65536', 'abc', '54.3', '-1', '', '123456'])('refuses %j', (t) => {
    expect(() => parsePort(t)).toThrow(/invalid --port .*between 1 and 65535/);
  });
});

describe('cloneSettings', () => {
  it.each([
    [{}, []],
    [{ delayMs: 3_600_000 }, [['recovery_min_apply_delay', '1h']]],
    [{ port: 5433 }, [['port', '5433']]],
    [{ delayMs: 8000, port: 5433 }, [['recovery_min_apply_delay', '8s'], ['port', '5433']]],
    [{ delayMs: 0 }, [['recovery_min_apply_delay', '0']]],
  ])('%j', (o, want) => {
    expect(cloneSettings(o)).toEqual(want);
  });

  it('are appended after the recovery settings without touching them', () => {
    const restored = "primary_conninfo = 'host=db1'\nrestore_command = 'x'\nport = '5432'\n";
    const text = mergeAutoConf(restored, cloneSettings({ delayMs: 3_600_000, port: 5433 }), 'clone x');
    expect(text).toContain("primary_conninfo = 'host=db1'\nrestore_command = 'x'\n");
    expect(text).toContain("# pgark restore clone x: port = '5432'\n");
    expect(text.endsWith("recovery_min_apply_delay = '1h'\nport = '5433'\n")).toBe(true);
  });
});
