// The one log line format (src/common/log-format.ts), the same in src/wal/fast-path.cjs (bin/pgark.js
// prints its errors with it), and the destinations of src/common/log.ts (stderr levels, the log
// file: appended, 0600, directories 0700).
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { formatLogLines, levelEnabled, maskSecrets, parseLogLine, type LineLevel } from '../../src/common/log-format.js';
import { log, PhaseTimer, reportFailure, setLogCommand, setLogDestinations, setLogLevel } from '../../src/common/log.js';

const root = join(import.meta.dirname, '..', '..');
const fastPath = createRequire(import.meta.url)(join(root, 'src', 'wal', 'fast-path.cjs')) as {
  logLine(level: string, argv: string[], message: string, time?: Date, pid?: number): string;
};
const T = new Date('2026-12-07T00:30:00.123Z');
const dir = mkdtempSync(join(tmpdir(), 'pgark-log-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('line format: time, level, command, pid, message', () => {
  it.each<[LineLevel, string | undefined, string, string]>([
    ['error', 'backup', '[2] unable to parse x', '2026-12-07T00:30:00.123Z ERROR pgark-backup[4711]: [2] unable to parse x\n'],
    ['warn', 'wal-push', 'w', '2026-12-07T00:30:00.123Z WARN  pgark-wal-push[4711]: w\n'],
    ['info', 'repo-create', 'i', '2026-12-07T00:30:00.123Z INFO  pgark-repo-create[4711]: i\n'],
    ['debug', 'restore', 'restore: copy files took 1.234s', '2026-12-07T00:30:00.123Z DEBUG pgark-restore[4711]: restore: copy files took 1.234s\n'],
    ['trace', 'backup', 'backup: base/1/1: 8192 bytes', '2026-12-07T00:30:00.123Z TRACE pgark-backup[4711]: backup: base/1/1: 8192 bytes\n'],
    ['error', undefined, '[2] unknown command', '2026-12-07T00:30:00.123Z ERROR pgark[4711]: [2] unknown command\n'],
    // several lines (a stack trace): every line carries the prefix
    ['error', 'verify', 'a\nb\r\nc\n', '2026-12-07T00:30:00.123Z ERROR pgark-verify[4711]: a\n2026-12-07T00:30:00.123Z ERROR pgark-verify[4711]: b\n2026-12-07T00:30:00.123Z ERROR pgark-verify[4711]: c\n'],
  ])('%s %s %j', (level, command, message, want) => {
    const got = formatLogLines(T, level, command, 4711, message);
    expect(got).toBe(want);
    for (const line of got.split('\n').filter((l) => l !== '')) {
      expect(parseLogLine(line)).toMatchObject({ time: '2026-12-07T00:30:00.123Z', level, command, pid: 4711 });
    }
  });

  it('src/wal/fast-path.cjs writes the same lines (bin/pgark.js errors)', () => {
    for (const [argv, command] of [[['node', 'pgark', '--repo', '/r', 'wal-push', 'x'], 'wal-push'], [['node', 'pgark', 'wal-fetch', 'a', 'b'], 'wal-fetch'], [['node', 'pgark', '--help'], undefined]] as const) {
      for (const level of ['error', 'warn'] as const) {
        expect(fastPath.logLine(level, [...argv], '[13] internal error: boom\n  at x', T, 4711)).toBe(formatLogLines(T, level, command, 4711, '[13] internal error: boom\n  at x'));
      }
    }
  });

  it.each([
    ['host=db password=hunter2 user=x', 'host=db password=*** user=x'],
    ["password='a b c'", 'password=***'],
    ['https://acct.blob.core.windows.net/c?sv=2021&sig=abc%2Fdef&se=1', 'https://acct.blob.core.windows.net/c?sv=2021&sig=***&se=1'],
    ['ssh://backup:s3cret@host/path', 'ssh://backup:***@host/path'],
    ['postgres://u:pw@h/db', 'postgres://u:***@h/db'],
    ['repo /var/lib/pgark, stanza main', 'repo /var/lib/pgark, stanza main'],
  ])('masks secrets: %j', (message, want) => {
    expect(maskSecrets(message)).toBe(want);
    expect(formatLogLines(T, 'info', 'x', 1, message)).toContain(want);
  });

  it('levels', () => {
    expect(levelEnabled('warn', 'warn')).toBe(true);
    expect(levelEnabled('info', 'warn')).toBe(false);
    expect(levelEnabled('trace', 'debug')).toBe(false);
    expect(levelEnabled('trace', 'trace')).toBe(true);
    expect(levelEnabled('error', 'off')).toBe(false);
  });
});

describe('destinations', () => {
  const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  afterEach(() => {
    stderr.mockClear();
    setLogDestinations({ level: 'warn' });
    setLogLevel('warn');
  });
  const stderrText = () => stderr.mock.calls.map((c) => String(c[0])).join('');

  it('a log file gets log-level; stderr at most warn unless log-level-stderr says otherwise; created 0600 in 0700 directories', () => {
    const file = join(dir, 'a', 'b', 'pgark.log');
    setLogCommand('backup');
    setLogDestinations({ level: 'debug', file });
    log.debug('phase x took 0.001s');
    log.trace('not written');
    log.warn('a warning');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'a')).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'a', 'b')).mode & 0o777).toBe(0o700);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines.map((l) => parseLogLine(l)?.message)).toEqual(['phase x took 0.001s', 'a warning']);
    expect(lines.every((l) => parseLogLine(l)?.command === 'backup' && parseLogLine(l)?.pid === process.pid)).toBe(true);
    expect(stderrText()).not.toContain('phase x');
    expect(stderrText()).toContain('a warning');

    // appended, and stderr's own level
    stderr.mockClear();
    setLogDestinations({ level: 'info', stderrLevel: 'debug', file });
    log.debug('to stderr only');
    log.info('to both');
    expect(readFileSync(file, 'utf8')).toMatch(/a warning\n.*to both\n$/);
    expect(readFileSync(file, 'utf8')).not.toContain('to stderr only');
    expect(stderrText()).toMatch(/to stderr only[\s\S]*to both/);
  });

  it('an existing file keeps its mode and is appended to', () => {
    const file = join(dir, 'existing.log');
    writeFileSync(file, 'before\n', { mode: 0o640 });
    setLogDestinations({ level: 'info', file });
    log.info('after');
    expect(readFileSync(file, 'utf8')).toMatch(/^before\n.*INFO .*: after\n$/);
    expect(statSync(file).mode & 0o777).toBe(0o640);
  });

  it('without a log file stderr gets log-level, as before', () => {
    setLogDestinations({ level: 'info' });
    log.info('shown');
    log.debug('hidden');
    expect(stderrText()).toContain('shown');
    expect(stderrText()).not.toContain('hidden');
  });

  it('the error that ends a command is written whatever the levels, to stderr and the file', () => {
    const file = join(dir, 'fail.log');
    setLogDestinations({ level: 'off', stderrLevel: 'off', file });
    reportFailure(2, "invalid value 'x' for 'jobs' (from f:3): expected an integer");
    expect(parseLogLine(stderrText().trimEnd())).toMatchObject({ level: 'error', message: "[2] invalid value 'x' for 'jobs' (from f:3): expected an integer" });
    expect(readFileSync(file, 'utf8')).toBe(stderrText());
  });

  it('a log file that cannot be opened: one warning on stderr, the command goes on', () => {
    const blocker = join(dir, 'not-a-dir');
    writeFileSync(blocker, '');
    setLogDestinations({ level: 'debug', file: join(blocker, 'pgark.log') });
    expect(stderrText()).toMatch(/WARN .*unable to open log file '.*not-a-dir\/pgark.log'.*logging to stderr only/);
    log.debug('still logged');
    expect(stderrText()).toContain('still logged');
  });

  it('PhaseTimer logs each phase and the total with durations at debug level', () => {
    setLogDestinations({ level: 'debug' });
    const t = new PhaseTimer('backup');
    t.lap('copy files', '3 files');
    t.lap('manifest');
    t.done('backup X');
    const messages = stderrText().trimEnd().split('\n').map((l) => parseLogLine(l)!.message);
    expect(messages[0]).toMatch(/^backup: copy files took \d+\.\d{3}s \(3 files\)$/);
    expect(messages[1]).toMatch(/^backup: manifest took \d+\.\d{3}s$/);
    expect(messages[2]).toMatch(/^backup: done in \d+\.\d{3}s \(backup X\): copy files \d+\.\d{3}s, manifest \d+\.\d{3}s$/);
    stderr.mockClear();
    setLogDestinations({ level: 'info' });
    new PhaseTimer('quiet').lap('x');
    expect(stderrText()).toBe('');
  });
});
