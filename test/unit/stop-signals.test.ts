import { spawn, execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtemp, mkdir, open, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PGARK_BIN } from '../helpers/pg-cluster.js';

interface FakeProcess extends EventEmitter {
  pid: number;
  killed: Array<[number, string]>;
  kill(pid: number, sig: string): boolean;
}
interface StopSignals {
  STOP_SIGNALS: string[];
  stopsOnSignals(argv: string[]): boolean;
  holdStopSignals(proc: FakeProcess): unknown;
  onStopSignal(proc: FakeProcess, stop: (sig: string) => void, defer?: (fn: () => void) => void): void;
}
const s = createRequire(import.meta.url)('../../src/cli/stop-signals.cjs') as StopSignals;

function fakeProcess(): FakeProcess {
  const p = new EventEmitter() as FakeProcess;
  p.pid = 4242;
  p.killed = [];
  p.kill = (pid, sig) => {
    p.killed.push([pid, sig]);
    return true;
  };
  return p;
}
const listeners = (p: FakeProcess): number => s.STOP_SIGNALS.reduce((n, sig) => n + p.listenerCount(sig), 0);

describe('stop signals of the long-running commands (src/cli/stop-signals.cjs)', () => {
  it.each([
    [['node', 'pgark.js', 'agent', '--pgdata', 'x'], true],
    [['node', 'pgark.js', 'receive'], true],
    [['node', 'pgark.js', 'metrics', '--port', '0'], true],
    [['node', 'pgark.js', 'sets', 'apply', 'main'], true],
    [['node', 'pgark.js', 'sets', 'list'], false],
    [['node', 'pgark.js', 'backup'], false],
    [['node', 'pgark.js', 'restore'], false],
    [['node', 'pgark.js', 'wal-push', 'pg_wal/x'], false],
    [['node', 'pgark.js'], false],
  ])('%j stops on signals: %s', (argv, expected) => {
    expect(s.stopsOnSignals(argv)).toBe(expected);
  });

  it('a signal with nothing held: stop once, then no listener is left (a second signal is fatal)', () => {
    const p = fakeProcess();
    const got: string[] = [];
    s.onStopSignal(p, (sig) => got.push(sig));
    expect(listeners(p)).toBe(2);
    p.emit('SIGINT');
    expect(got).toEqual(['SIGINT']);
    expect(listeners(p)).toBe(0);
  });

  it('a signal held while the command loaded is delivered once the command takes over, on the next turn', () => {
    const p = fakeProcess();
    s.holdStopSignals(p);
    p.emit('SIGTERM');
    expect(p.killed).toEqual([]);
    const got: string[] = [];
    const deferred: Array<() => void> = [];
    s.onStopSignal(p, (sig) => got.push(sig), (fn) => deferred.push(fn));
    expect(got).toEqual([]);
    expect(deferred).toHaveLength(1);
    deferred[0]!();
    expect(got).toEqual(['SIGTERM']);
    expect(listeners(p)).toBe(0);
  });

  it('a real signal before the held one is delivered stops once', () => {
    const p = fakeProcess();
    s.holdStopSignals(p);
    p.emit('SIGTERM');
    const got: string[] = [];
    const deferred: Array<() => void> = [];
    s.onStopSignal(p, (sig) => got.push(sig), (fn) => deferred.push(fn));
    p.emit('SIGINT');
    deferred[0]!();
    expect(got).toEqual(['SIGINT']);
  });

  it('a second signal while loading ends the process by that signal', () => {
    const p = fakeProcess();
    s.holdStopSignals(p);
    p.emit('SIGTERM');
    p.emit('SIGINT');
    expect(p.killed).toEqual([[4242, 'SIGINT']]);
    expect(listeners(p)).toBe(0);
  });

  it('a hold without a signal: the command takes over its listeners and nothing is delivered', () => {
    const p = fakeProcess();
    s.holdStopSignals(p);
    const got: string[] = [];
    const deferred: Array<() => void> = [];
    s.onStopSignal(p, (sig) => got.push(sig), (fn) => deferred.push(fn));
    expect(deferred).toEqual([]);
    expect(listeners(p)).toBe(2);
    p.emit('SIGTERM');
    expect(got).toEqual(['SIGTERM']);
  });
});

describe('pgark agent stopped while it loads', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pgark-stop-signals-'));
    await mkdir(join(dir, 'pg', 'pg_wal', 'archive_status'), { recursive: true });
    execFileSync(process.execPath, [PGARK_BIN, 'repo', 'create', '--repo', join(dir, 'repo')], { stdio: 'ignore' });
    execFileSync('mkfifo', [join(dir, 'config')]);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a SIGTERM before the command is ready stops it cleanly (exit 0), not by the signal', { timeout: 60_000 }, async () => {
    // The config file is a FIFO: pgark blocks reading it, after bin/pgark.js's first lines ran
    // and before the agent installed its own handler; the open below returns once it is reading.
    const child = spawn(process.execPath, [PGARK_BIN, 'agent', '--config', join(dir, 'config'), '--pgdata', join(dir, 'pg'), '--repo', join(dir, 'repo'), '--stanza', 's', '--poll-ms', '200', '--log-level', 'info'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((r) => child.once('exit', (code, sig) => r([code, sig])));
    const fifo = await open(join(dir, 'config'), 'w');
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    await fifo.write('# nothing set here\n').catch(() => undefined);
    await fifo.close();
    const [code, sig] = await exited;
    expect({ code, sig }, out).toEqual({ code: 0, sig: null });
    expect(out).toMatch(/agent: SIGTERM: finishing the segments in flight/);
  });
});
