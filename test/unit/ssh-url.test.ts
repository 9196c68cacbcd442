import { describe, expect, it } from 'vitest';
import { ConfigError, NotFoundError, StorageError } from '../../src/common/errors.js';
import { isStaleTempName, isTempName } from '../../storage-drivers/fs/temp.js';
import { connectFailure, ConnectionLostError, isTransientFailure, sftpStatus, sshError } from '../../storage-drivers/ssh/errors.js';
import { sshTempPathFor, sweepMinAgeMs } from '../../storage-drivers/ssh/temp.js';
import { displayLocation, parseSshUrl, timeoutMsFrom } from '../../storage-drivers/ssh/url.js';

describe('parseSshUrl', () => {
  it.each([
    ['ssh://backup@host.example.com/srv/pgark', { user: 'backup', host: 'host.example.com', port: 22, root: '/srv/pgark' }, 'ssh://backup@host.example.com/srv/pgark'],
    ['ssh://backup@host:2222/srv/pgark/', { user: 'backup', host: 'host', port: 2222, root: '/srv/pgark' }, 'ssh://backup@host:2222/srv/pgark'],
    ['ssh://Host.Example.COM/var/lib/pgark', { user: 'me', host: 'host.example.com', port: 22, root: '/var/lib/pgark' }, 'ssh://me@host.example.com/var/lib/pgark'],
    ['ssh://u@127.0.0.1:40022/tmp/x', { user: 'u', host: '127.0.0.1', port: 40022, root: '/tmp/x' }, 'ssh://u@127.0.0.1:40022/tmp/x'],
    ['ssh://u@[::1]:2200/r', { user: 'u', host: '::1', port: 2200, root: '/r' }, 'ssh://u@[::1]:2200/r'],
    ['ssh://u@h/with%20space/x', { user: 'u', host: 'h', port: 22, root: '/with space/x' }, 'ssh://u@h/with space/x'],
    ['ssh://first.last%40corp@h/r', { user: 'first.last@corp', host: 'h', port: 22, root: '/r' }, null],
  ])('parses %s', (input, expected, display) => {
    const t = parseSshUrl(new URL(input), 'me');
    expect(t).toEqual(expected);
    if (display) expect(displayLocation(t)).toBe(display);
  });

  it.each([
    ['ssh://u:secret@h/r', 'password'],
    ['ssh://u@h', 'absolute'],
    ['ssh://u@h/', 'absolute'],
    ['ssh://u@h/a//b', "'.' or '..'"],
    ['ssh://u@h/r?x=1', 'query'],
    ['ssh://u@h/r#frag', 'query'],
    ['ssh:///r', 'no host'],
    ['s3://bucket/r', 'unsupported'],
  ])('rejects %s with ConfigError', (input, text) => {
    let err: unknown;
    try {
      parseSshUrl(new URL(input), 'me');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(text);
    expect((err as Error).message).not.toContain('secret');
  });

  it.each([
    [undefined, 60_000],
    [{}, 60_000],
    [{ 'storage-timeout': '2' }, 2000],
    [{ 'storage-timeout': '3600' }, 3_600_000],
  ])('storage-timeout %j -> %d ms', (settings, ms) => {
    expect(timeoutMsFrom(settings)).toBe(ms);
  });
  it('rejects a bad storage-timeout', () => {
    expect(() => timeoutMsFrom({ 'storage-timeout': 'soon' })).toThrow(ConfigError);
  });
});

describe('ssh temp names', () => {
  it('look like the fs driver temp names with pid 0, which the fs driver never sweeps', () => {
    const p = sshTempPathFor('/srv/repo/main/wal/000000010000000000000001');
    expect(p).toMatch(/^\/srv\/repo\/main\/wal\/000000010000000000000001\.pgark-tmp-0-[0-9a-f]{16}$/);
    const name = p.slice(p.lastIndexOf('/') + 1);
    expect(isTempName(name)).toBe(true);
    expect(isStaleTempName(name)).toBe(false);
    expect(sshTempPathFor('/r/k')).not.toBe(sshTempPathFor('/r/k'));
  });
  it('stay within NAME_MAX for long key names', () => {
    const p = sshTempPathFor(`/r/${'x'.repeat(255)}`);
    expect(p.slice(3).length).toBeLessThanOrEqual(255);
  });
  it('are swept after an hour, or twice storage-timeout', () => {
    expect(sweepMinAgeMs(60_000)).toBe(3_600_000);
    expect(sweepMinAgeMs(3_600_000)).toBe(7_200_000);
  });
});

describe('ssh error mapping', () => {
  const sftpErr = (code: number, msg = 'Failure'): Error => Object.assign(new Error(msg), { code });

  it.each([
    [sftpErr(2, 'No such file'), 2, false],
    [sftpErr(3, 'Permission denied'), 3, false],
    [sftpErr(4), 4, false],
    [sftpErr(7, 'Connection lost'), 7, true],
    [sftpErr(6, 'No connection'), 6, true],
    [new Error('No response from server'), undefined, true],
    [new ConnectionLostError('no response from the server for 1 s (storage-timeout)'), undefined, true],
  ])('classifies %s', (err, status, transient) => {
    expect(sftpStatus(err)).toBe(status);
    expect(isTransientFailure(err)).toBe(transient);
  });

  it('wraps failures with the verb, key and location, and passes pgark errors through', () => {
    const e = sshError('write', 'main/wal/x', 'ssh://u@h/r', sftpErr(3, 'Permission denied'));
    expect(e).toBeInstanceOf(StorageError);
    expect(e.message).toBe("unable to write 'main/wal/x' on ssh://u@h/r: permission denied");
    expect((e as StorageError).transient).toBe(false);
    const lost = sshError('read', 'k', 'ssh://u@h/r', new ConnectionLostError('the SSH connection was closed'));
    expect((lost as StorageError).transient).toBe(true);
    const nf = new NotFoundError('k');
    expect(sshError('read', 'k', 'ssh://u@h/r', nf)).toBe(nf);
    const abort = new DOMException('aborted', 'AbortError');
    expect(sshError('read', 'k', 'ssh://u@h/r', abort)).toBe(abort);
  });

  it.each([
    [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED', level: 'client-socket' }), true],
    [Object.assign(new Error('getaddrinfo ENOTFOUND nope'), { code: 'ENOTFOUND', level: 'client-socket' }), false],
    [Object.assign(new Error('Timed out while waiting for handshake'), { level: 'client-timeout' }), true],
    [Object.assign(new Error('Connection lost before handshake'), { level: 'protocol' }), true],
    [Object.assign(new Error('Handshake failed: no matching host key format'), { level: 'handshake' }), false],
  ])('classifies connection failure %#', (err, transient) => {
    expect(connectFailure(err).transient).toBe(transient);
  });
});
