/**
 * The test reader of monitoring-plugin output (test/helpers/nagios-output.ts) against the
 * Monitoring Plugins guidelines' examples and what they forbid: the integration test of
 * `pgark check` relies on it rejecting output a monitoring system would misread.
 */
import { describe, expect, it } from 'vitest';
import { parsePerfData, parsePluginOutput } from '../helpers/nagios-output.js';

describe('perfdata grammar', () => {
  it.each([
    ['time=0.897ms;20;40;; ok=1', [{ label: 'time', value: 0.897, uom: 'ms', warn: '20', crit: '40' }, { label: 'ok', value: 1, uom: '' }]],
    ["'load 1'=4.7", [{ label: 'load 1', value: 4.7, uom: '' }]],
    ["'it''s'=1c", [{ label: "it's", value: 1, uom: 'c' }]],
    ['/=382MB;15264;15269;; /var=218MB;9443;9448', [{ label: '/', value: 382, uom: 'MB', warn: '15264', crit: '15269' }, { label: '/var', value: 218, uom: 'MB', warn: '9443', crit: '9448' }]],
    ['age=10s;@5:20;~:30;0;100', [{ label: 'age', value: 10, uom: 's', warn: '@5:20', crit: '~:30', min: 0, max: 100 }]],
    ['x=U', [{ label: 'x', value: undefined, uom: '' }]],
    ['  a=-1.5%  ', [{ label: 'a', value: -1.5, uom: '%' }]],
  ] as const)('%s', (s, parsed) => {
    expect(parsePerfData(s)).toEqual(parsed);
  });

  it.each([
    ['with space=1', /must be quoted/],
    ["'open=1", /'=' inside label|unterminated/],
    ['a=1,5', /no valid value/],
    ['a=1 hours', /label with a space|no '='/],
    ['a=1xs', /unknown UOM 'xs'/],
    ['a=1;2;3;4;5;6', /at most 5/],
    ['a=1;warn', /not a threshold range/],
    ['a=1;;;zero', /not in the class/],
    ['=1', /empty label/],
  ])('rejects %j', (s, err) => {
    expect(() => parsePerfData(s)).toThrow(err);
  });
});

describe('plugin output', () => {
  it('splits the first line at the first | and reads long output and later perfdata lines', () => {
    expect(parsePluginOutput('DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n/ 15272 MB (77%);\n/boot 68 MB (69%); | /boot=68MB;88;93;0;98\n/home=69357MB;253404;253409;0;253414\n')).toEqual({
      text: 'DISK OK - free space: / 3326 MB (56%);',
      perfdata: [
        { label: '/', value: 2643, uom: 'MB', warn: '5948', crit: '5958', min: 0, max: 5968 },
        { label: '/boot', value: 68, uom: 'MB', warn: '88', crit: '93', min: 0, max: 98 },
        { label: '/home', value: 69357, uom: 'MB', warn: '253404', crit: '253409', min: 0, max: 253414 },
      ],
      longOutput: ['/ 15272 MB (77%);', '/boot 68 MB (69%);'],
    });
  });

  it('a first line without | has no perfdata', () => {
    expect(parsePluginOutput('PGARK UNKNOWN - usage: x\n')).toEqual({ text: 'PGARK UNKNOWN - usage: x', perfdata: [], longOutput: [] });
  });
});
