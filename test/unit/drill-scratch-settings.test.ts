import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/common/errors.js';
import { checkSocketDir, lastLines, recoveryLogFacts, SCRATCH_HBA, scratchSettings, socketPath } from '../../src/drill/scratch-settings.js';
import { notTrue } from '../../src/drill/drill-checks.js';
import { parsePostmasterPid } from '../../src/pg/pg-ctl.js';
import { connectHost } from '../../src/drill/promote.js';
import { mergeAutoConf } from '../../src/restore/recovery-conf.js';

describe('scratch server settings', () => {
  const base = { port: 40001, socketDir: '/tmp/pgark-drill-x', hbaFile: '/tmp/pgark-drill-x/pg_hba.conf', identFile: '/tmp/pgark-drill-x/pg_ident.conf', name: 'pgark-drill-20261123-162000D' };

  it('isolate the copy from production', () => {
    const s = new Map(scratchSettings({ ...base, pgVersion: 15 }));
    expect(s.get('listen_addresses')).toBe('');
    expect(s.get('unix_socket_directories')).toBe('/tmp/pgark-drill-x');
    expect(s.get('port')).toBe('40001');
    expect(s.get('hba_file')).toBe(base.hbaFile);
    expect(s.get('external_pid_file')).toBe('');
    expect(s.get('synchronous_standby_names')).toBe('');
    expect(s.get('ssl')).toBe('off');
    expect(s.get('hot_standby')).toBe('on');
    expect(s.get('shared_buffers')).toBe('32MB');
    expect(s.get('lc_messages')).toBe('C');
    expect(s.get('logging_collector')).toBe('off');
    expect(s.has('stats_temp_directory')).toBe(false); // gone in 15: an unknown setting stops the server
    // Recovery settings belong to restore: naming one here would comment out restore_command.
    expect([...s.keys()].some((k) => k.startsWith('recovery_target') || k === 'restore_command' || k.startsWith('archive_'))).toBe(false);
    expect(s.get('recovery_min_apply_delay')).toBe('0');
    expect(s.get('default_transaction_read_only')).toBe('off');
  });

  it('13 and 14 keep their statistics temp directory inside the copy', () => {
    expect(new Map(scratchSettings({ ...base, pgVersion: 13 })).get('stats_temp_directory')).toBe('pg_stat_tmp');
  });

  it('override the source\'s values in postgresql.auto.conf and keep the recovery settings', () => {
    const restored = "listen_addresses = '*'\nport = '5432'\nrecovery_min_apply_delay = '1h'\nrestore_command = 'pgark wal-fetch %f %p'\nrecovery_target_action = 'promote'\n";
    const text = mergeAutoConf(restored, scratchSettings({ ...base, pgVersion: 15 }), 'drill x');
    expect(text).toContain("# pgark restore drill x: listen_addresses = '*'\n# pgark restore drill x: port = '5432'\n# pgark restore drill x: recovery_min_apply_delay = '1h'\nrestore_command = 'pgark wal-fetch %f %p'\nrecovery_target_action = 'promote'\n");
    expect(text).toContain("listen_addresses = ''\n");
    expect(text).toContain("unix_socket_permissions = '0700'\n");
  });

  it('trust only on the local socket', () => {
    expect(SCRATCH_HBA.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual(['local all all trust']);
  });

  it.each([
    ['/tmp/pgark-drill-20261123-162000D-abcdef', 40001, undefined],
    [`/${'x'.repeat(92)}`, 40001, /too long for a unix socket path \(108 bytes, at most 107\)/],
    [`/${'x'.repeat(91)}`, 40001, undefined],
    ['/tmp/a,b', 1, /must not contain a comma/],
    ['/tmp/a"b', 1, /double quote/],
  ])('socket directory %j', (dir, port, err) => {
    if (err) {
      expect(() => checkSocketDir(dir, port)).toThrow(InvalidInputError);
      expect(() => checkSocketDir(dir, port)).toThrow(err);
    } else expect(() => checkSocketDir(dir, port)).not.toThrow();
    expect(socketPath('/d', 5)).toBe('/d/.s.PGSQL.5');
  });
});

describe('recovery facts from the server log', () => {
  const log = (lines: string[]) => lines.map((l) => `2026-11-23 21:12:52.902 UTC [21345] ${l}`).join('\n') + '\n';

  it.each([
    ['a target reached', log([
      'LOG:  starting point-in-time recovery to "before_upgrade"',
      'LOG:  recovery stopping at restore point "before_upgrade", time 2026-11-23 21:00:00.1+00',
      'LOG:  redo done at 0/3000148 system usage: CPU: user: 0.00 s, system: 0.00 s, elapsed: 0.05 s',
      'LOG:  selected new timeline ID: 2',
    ]), { end: 'recovery stopping at restore point "before_upgrade", time 2026-11-23 21:00:00.1+00', targetNotReached: false, fatal: [] }],
    ['the end of the archive', log([
      'LOG:  redo done at 0/1400398 system usage: CPU: user: 0.00 s, system: 0.00 s, elapsed: 0.31 s',
      'LOG:  last completed transaction was at log time 2026-11-23 21:12:42.147469+00',
    ]), { end: 'redo done at 0/1400398', targetNotReached: false, fatal: [] }],
    ['a target beyond the archive', log([
      'LOG:  redo done at 0/1400398 system usage: CPU: user: 0.00 s, system: 0.00 s, elapsed: 0.29 s',
      'FATAL:  recovery ended before configured recovery target was reached',
      'LOG:  startup process (PID 21345) exited with exit code 1',
    ]), { end: 'redo done at 0/1400398', targetNotReached: true, fatal: ['recovery ended before configured recovery target was reached'] }],
    ['a configuration error', log([
      'LOG:  invalid value for parameter "shared_buffers": "lots"',
      'FATAL:  configuration file "/x/postgresql.auto.conf" contains errors',
    ]), { targetNotReached: false, fatal: ['configuration file "/x/postgresql.auto.conf" contains errors'] }],
  ])('%s', (_n, text, want) => {
    expect(recoveryLogFacts(text)).toEqual(want);
  });

  it('last lines without blanks', () => {
    expect(lastLines('a\n\nb\nc\n\n', 2)).toEqual(['b', 'c']);
    expect(lastLines('', 3)).toEqual([]);
  });
});

describe('postmaster.pid', () => {
  const pid = (lines: string[]) => lines.join('\n') + '\n';

  it.each([
    ['a standby on a socket and TCP', pid(['4711', '/srv/clone', '1795450800', '5433', '/var/run/postgresql', '*', '  5433001   32769', 'standby']),
      { pid: 4711, dataDir: '/srv/clone', startTime: 1795450800, port: 5433, socketDir: '/var/run/postgresql', listenAddress: '*', status: 'standby' }],
    ['a scratch server on its socket only', pid(['9', '/tmp/s/data', '1', '40001', '/tmp/s', '', '  0   0', 'ready']),
      { pid: 9, dataDir: '/tmp/s/data', startTime: 1, port: 40001, socketDir: '/tmp/s', listenAddress: '', status: 'ready' }],
    ['being written', '4711\n/srv/clone\n', undefined],
    ['empty', '', undefined],
    ['garbage', 'x\ny\nz\nw\nv\nu\n', undefined],
  ])('%s', (_n, text, want) => {
    expect(parsePostmasterPid(text)).toEqual(want);
  });

  it.each([
    [{ socketDir: '/var/run/postgresql', listenAddress: '*' }, '/var/run/postgresql'],
    [{ socketDir: '', listenAddress: '*' }, '127.0.0.1'],
    [{ socketDir: '', listenAddress: '0.0.0.0' }, '127.0.0.1'],
    [{ socketDir: '', listenAddress: '::' }, '::1'],
    [{ socketDir: '', listenAddress: '10.0.0.5,127.0.0.1' }, '10.0.0.5'],
  ])('promote connects to %j via %s', (p, host) => {
    expect(connectHost({ pid: 1, dataDir: '/d', startTime: 0, port: 5432, status: 'standby', ...p })).toBe(host);
  });

  it('promote refuses a server without socket or address', () => {
    expect(() => connectHost({ pid: 1, dataDir: '/d', startTime: 0, port: 5432, status: 'ready', socketDir: '', listenAddress: '' })).toThrow(/neither a unix socket nor a TCP address/);
  });
});

describe('a --checks statement must return one row with one boolean true', () => {
  const BOOL = { dataTypeID: 16 };
  const INT8 = { dataTypeID: 20 };
  it.each<[string, Array<{ dataTypeID: number }>, unknown[][], string | undefined]>([
    ['true', [BOOL], [[true]], undefined],
    ['false', [BOOL], [[false]], 'returned false'],
    ['NULL', [BOOL], [[null]], 'returned NULL'],
    ['no rows', [BOOL], [], 'returned 0 rows, expected exactly one'],
    ['two rows', [BOOL], [[true], [true]], 'returned 2 rows, expected exactly one'],
    ['two columns', [BOOL, BOOL], [[true, true]], 'returned 2 columns, expected exactly one'],
    ['a number', [INT8], [['1']], 'returned a non-boolean (type oid 20) value, expected a boolean'],
    ['the text "t"', [{ dataTypeID: 25 }], [['t']], 'returned a non-boolean (type oid 25) value, expected a boolean'],
    ['no result set (a command)', [], [], 'returned 0 rows, expected exactly one'],
  ])('%s', (_n, fields, rows, want) => {
    expect(notTrue(fields, rows)).toBe(want);
  });
});
