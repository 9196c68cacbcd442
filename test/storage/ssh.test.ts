/**
 * The ssh driver against a real OpenSSH server (test/helpers/sshd-server.ts) on loopback: the
 * conformance suite, then what is specific to SSH (host keys, authentication, modes, layout
 * shared with the fs driver, connection reuse, reconnects and stalls).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, copyFile, mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { AlreadyExistsError, ConfigError, NotFoundError, StorageError } from '../../src/common/errors.js';
import { FsDriver } from '../../storage-drivers/fs/fs-driver.js';
import { openDriver } from '../../storage-drivers/registry.js';
import type { SshConnection } from '../../storage-drivers/ssh/connection.js';
import { createDriver, SshDriver } from '../../storage-drivers/ssh/ssh-driver.js';
import { parseSshUrl } from '../../storage-drivers/ssh/url.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { startSshd } from '../helpers/sshd-server.js';
import { listAll, readAll, storageConformance } from './conformance.js';
import { waitFor } from '../helpers/wait.js';

const PASSPHRASE = 'correct horse battery staple 7f3a';

// sshd (and the SFTP server it forks) inherits this umask: modes must not depend on it.
const savedUmask = process.umask(0o022);
const sshd = await startSshd();
const parent = await mkdtemp(join(tmpdir(), 'pgark-ssh-test-'));
const opened: SshDriver[] = [];
const proxies: FaultProxy[] = [];

afterAll(async () => {
  for (const d of opened) await d.close().catch(() => undefined);
  for (const p of proxies) await p.stop().catch(() => undefined);
  await sshd.stop();
  await rm(parent, { recursive: true, force: true });
  process.umask(savedUmask);
});

const baseSettings = { 'ssh-identity': sshd.identityFile, 'ssh-known-hosts': sshd.knownHostsFile };

async function open(root: string, settings: Record<string, string> = {}, port = sshd.port): Promise<SshDriver> {
  const d = (await createDriver(new URL(`ssh://${sshd.user}@127.0.0.1:${port}${root}`), { settings: { ...baseSettings, ...settings } })) as SshDriver;
  opened.push(d);
  return d;
}

let seq = 0;
const freshRoot = (label: string): string => join(parent, `${label}-${++seq}`, 'repo');

/** The operation must fail with a non-transient StorageError that leaks no secret; returns it. */
async function refused(p: Promise<unknown>): Promise<StorageError> {
  const err = await p.then(
    () => {
      throw new Error('expected a failure');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  const e = err as StorageError;
  expect(e.transient).toBe(false);
  for (const secret of [sshd.identitySecret, PASSPHRASE, sshd.hostPublicKey.split(' ')[1] as string]) {
    expect(e.message).not.toContain(secret);
    expect(String(e.stack)).not.toContain(secret);
  }
  return e;
}

async function startProxy(): Promise<FaultProxy> {
  const p = await FaultProxy.start({ host: sshd.host, port: sshd.port });
  proxies.push(p);
  return p;
}

async function tempFilesIn(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => n.includes('.pgark-tmp-'));
  } catch {
    return [];
  }
}

let confRoot = '';
storageConformance(
  'ssh',
  async () => {
    // Neither the root nor its parent exist yet: the driver creates them on first write.
    confRoot = join(parent, 'conformance', 'repo');
    const driver = await open(confRoot);
    return { driver, cleanup: async () => undefined };
  },
  {
    upstream: { host: sshd.host, port: sshd.port },
    // Through the proxy the address differs from known_hosts' [127.0.0.1]:port, so pin the key.
    openVia: (port, settings) => open(confRoot, { 'ssh-host-key-fingerprint': sshd.fingerprint, ...settings }, port),
    protocol: 'ssh',
    secrets: [sshd.identitySecret, PASSPHRASE],
  },
);

describe('ssh driver specifics', () => {
  it('exposes name, features and location, and opens through the registry', async () => {
    const root = freshRoot('registry');
    const d = await openDriver(`ssh://${sshd.user}@127.0.0.1:${sshd.port}${root}`, { settings: baseSettings });
    try {
      expect(d.name).toBe('ssh');
      expect([...d.features].sort()).toEqual(['atomicRename', 'conditionalPut', 'fsync', 'rangeRead']);
      expect(d.location).toBe(`ssh://${sshd.user}@127.0.0.1:${sshd.port}${root}`);
      await d.put('k', Buffer.from('registry'));
      expect((await readAll(await d.get('k'))).toString()).toBe('registry');
    } finally {
      await d.close();
    }
  });

  it('logs in as the current user when the URL names none', async () => {
    const root = freshRoot('nouser');
    const d = (await createDriver(new URL(`ssh://127.0.0.1:${sshd.port}${root}`), { settings: baseSettings })) as SshDriver;
    opened.push(d);
    expect(d.location).toBe(`ssh://${userInfo().username}@127.0.0.1:${sshd.port}${root}`);
    await d.put('k', Buffer.from('me'));
    expect((await d.stat('k'))?.size).toBe(2);
  });

  it.each([
    ['a password in the URL', `ssh://root:hunter2@127.0.0.1:22/r`, {}],
    ['no path', `ssh://root@127.0.0.1:22`, {}],
    ['a malformed pinned fingerprint', `ssh://root@127.0.0.1:22/r`, { 'ssh-host-key-fingerprint': 'ab:cd:ef' }],
  ])('rejects %s with ConfigError', async (_label, url, settings) => {
    const err = await createDriver(new URL(url), { settings }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).not.toContain('hunter2');
  });

  it('creates the root and directories 0700 and files 0600 on the server', async () => {
    const root = freshRoot('modes');
    const d = await open(root);
    await d.put('modes/a/b/obj', Buffer.from('x'));
    await d.put('modes/a/b/obj2', Readable.from([Buffer.from('y')]), { ifAbsent: true });
    for (const dir of [root, join(root, 'modes'), join(root, 'modes/a'), join(root, 'modes/a/b')]) {
      expect(((await stat(dir)).mode & 0o777).toString(8)).toBe('700');
    }
    for (const f of ['obj', 'obj2']) expect(((await stat(join(root, 'modes/a/b', f))).mode & 0o777).toString(8)).toBe('600');
  });

  it('keeps the layout of an fs repository: written over ssh, read by the fs driver, and back', async () => {
    const root = freshRoot('layout');
    const ssh = await open(root);
    const fs = new FsDriver(root);
    const viaSsh = { 'main/wal/000000010000000000000001': 'seg1', 'main/backup/20240101T000000F/manifest': 'm', top: 't' };
    for (const [k, v] of Object.entries(viaSsh)) await ssh.put(k, Buffer.from(v), { ifAbsent: true });
    expect((await listAll(fs, '')).map((i) => i.path).sort()).toEqual(Object.keys(viaSsh).sort());
    for (const [k, v] of Object.entries(viaSsh)) expect((await readAll(await fs.get(k))).toString()).toBe(v);

    const viaFs = { 'main/wal/000000010000000000000002': 'seg2', 'other/deep/er/obj': 'o' };
    for (const [k, v] of Object.entries(viaFs)) await fs.put(k, Buffer.from(v));
    const all = { ...viaSsh, ...viaFs };
    expect((await listAll(ssh, '')).map((i) => i.path).sort()).toEqual(Object.keys(all).sort());
    for (const [k, v] of Object.entries(all)) {
      expect((await readAll(await ssh.get(k))).toString()).toBe(v);
      const [a, b] = [await ssh.stat(k), await fs.stat(k)];
      expect(a?.size).toBe(b?.size);
      expect(Math.abs((a?.mtimeMs ?? 0) - (b?.mtimeMs ?? 0))).toBeLessThan(1000);
    }
    await expect(ssh.put('main/wal/000000010000000000000002', Buffer.from('dup'), { ifAbsent: true })).rejects.toBeInstanceOf(AlreadyExistsError);
    await expect(fs.put('main/wal/000000010000000000000001', Buffer.from('dup'), { ifAbsent: true })).rejects.toBeInstanceOf(AlreadyExistsError);

    // Deletes through either driver prune empty directories the same way.
    await ssh.delete(['other/deep/er/obj']);
    expect(existsSync(join(root, 'other'))).toBe(false);
    expect(existsSync(root)).toBe(true);
  });

  it('writes through a temp file named like the fs driver, which neither driver lists', async () => {
    const root = freshRoot('temp');
    const d = await open(root);
    const body = new PassThrough();
    const put = d.put('pending/dir/obj', body);
    body.write(Buffer.alloc(100_000, 1));
    const temps = await waitFor(async () => {
      const t = await tempFilesIn(join(root, 'pending/dir'));
      return t.length > 0 ? t : undefined;
    }, 'the temp file');
    expect(temps[0]).toMatch(/^obj\.pgark-tmp-0-[0-9a-f]{16}$/);
    expect(await listAll(d, 'pending/')).toEqual([]);
    expect(await listAll(new FsDriver(root), 'pending/')).toEqual([]);
    expect(await d.stat('pending/dir/obj')).toBeNull();
    body.end(Buffer.alloc(5, 2));
    expect(await put).toEqual({ size: 100_005 });
    expect(await tempFilesIn(join(root, 'pending/dir'))).toEqual([]);
    // ifAbsent (hard link, then the temp is removed) leaves none either.
    await d.put('pending/dir/obj2', Buffer.from('x'), { ifAbsent: true });
    expect(await tempFilesIn(join(root, 'pending/dir'))).toEqual([]);
  });

  it('reads ranges across READ request boundaries in order', async () => {
    const d = await open(freshRoot('ranges'));
    const data = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i + 4 <= data.length; i += 4) data.writeUInt32LE(i, i);
    await d.put('big', data);
    for (const [offset, length] of [
      [0, undefined],
      [65_530, 200_000],
      [1_000_000, 2_500_000],
      [data.length - 3, 10],
      [data.length, 1],
    ] as const) {
      const got = await readAll(await d.get('big', { offset, ...(length !== undefined ? { length } : {}) }));
      expect(got.equals(data.subarray(offset, length === undefined ? undefined : offset + length))).toBe(true);
    }
  });

  describe('host key verification', () => {
    it('refuses a host key that differs from known_hosts, showing the offered fingerprint', async () => {
      const other = await sshd.generateKey('impostor_host_key');
      const kh = join(sshd.dir, 'known_hosts_changed');
      await writeFile(kh, `[127.0.0.1]:${sshd.port} ${other.publicKey.split(' ').slice(0, 2).join(' ')}\n`);
      const d = await open(freshRoot('mismatch'), { 'ssh-known-hosts': kh });
      const err = await refused(d.stat('k'));
      expect(err.message).toContain(sshd.fingerprint);
      expect(err.message).toContain('different ssh-ed25519 key');
      expect(err.message).toContain(kh);
      expect(d.connectionsOpened).toBe(0);
    });

    it('refuses an unknown host and says how to add or pin it', async () => {
      const empty = join(sshd.dir, 'known_hosts_empty');
      await writeFile(empty, `# nothing here\nother.example.com ${sshd.hostPublicKey}\n`);
      for (const kh of [empty, join(sshd.dir, 'no-such-known_hosts')]) {
        const d = await open(freshRoot('unknown'), { 'ssh-known-hosts': kh });
        const err = await refused(d.put('k', Buffer.from('x')));
        expect(err.message).toContain(sshd.fingerprint);
        expect(err.message).toContain(`ssh-keyscan -p ${sshd.port} -t ed25519 127.0.0.1 >> ${kh}`);
        expect(err.message).toContain('ssh-host-key-fingerprint');
      }
    });

    it('accepts a pinned fingerprint instead of known_hosts, and refuses a wrong pin', async () => {
      const noFile = join(sshd.dir, 'no-such-known_hosts');
      const ok = await open(freshRoot('pinned'), { 'ssh-known-hosts': noFile, 'ssh-host-key-fingerprint': sshd.fingerprint });
      await ok.put('k', Buffer.from('pinned'));
      expect((await ok.stat('k'))?.size).toBe(6);
      const wrongPin = `SHA256:${Buffer.alloc(32, 1).toString('base64').replace(/=+$/, '')}`;
      // A pin replaces known_hosts: the (correct) known_hosts entry does not rescue a wrong pin.
      const bad = await open(freshRoot('pinned'), { 'ssh-host-key-fingerprint': wrongPin });
      const err = await refused(bad.stat('k'));
      expect(err.message).toContain(sshd.fingerprint);
      expect(err.message).toContain(wrongPin);
    });

    it('accepts hashed and wildcard known_hosts entries', async () => {
      const hashed = join(sshd.dir, 'known_hosts_hashed');
      await copyFile(sshd.knownHostsFile, hashed);
      const r = spawnSync('/usr/bin/ssh-keygen', ['-H', '-f', hashed], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      const wildcard = join(sshd.dir, 'known_hosts_wildcard');
      await writeFile(wildcard, `[127.0.0.*]:*,!other ${sshd.hostPublicKey}\n`);
      for (const kh of [hashed, wildcard]) {
        const d = await open(freshRoot('hashed'), { 'ssh-known-hosts': kh });
        await d.put('k', Buffer.from('ok'));
        expect((await d.stat('k'))?.size).toBe(2);
      }
    });
  });

  describe('authentication', () => {
    it('fails clearly with a key the server does not accept', async () => {
      const stranger = await sshd.generateKey('stranger');
      const d = await open(freshRoot('auth'), { 'ssh-identity': stranger.privateFile });
      const err = await refused(d.stat('k'));
      expect(err.message).toContain(`authentication as '${sshd.user}' failed`);
      expect(err.message).toContain(stranger.privateFile);
    });

    it('fails clearly when the identity file is missing or not a private key', async () => {
      for (const file of [join(sshd.dir, 'no-such-key'), `${sshd.identityFile}.pub`]) {
        const d = await open(freshRoot('auth'), { 'ssh-identity': file });
        const err = await refused(d.stat('k'));
        expect(err.message).toContain(file);
      }
    });

    it('decrypts an encrypted key with PGARK_SSH_PASSPHRASE, and says so when it is missing or wrong', async () => {
      const locked = await sshd.generateKey('locked', { passphrase: PASSPHRASE, authorize: true });
      const saved = process.env.PGARK_SSH_PASSPHRASE;
      try {
        delete process.env.PGARK_SSH_PASSPHRASE;
        const without = await open(freshRoot('passphrase'), { 'ssh-identity': locked.privateFile });
        expect((await refused(without.stat('k'))).message).toContain('is encrypted: put its passphrase in the environment variable PGARK_SSH_PASSPHRASE');

        process.env.PGARK_SSH_PASSPHRASE = 'not the passphrase';
        const wrong = await open(freshRoot('passphrase'), { 'ssh-identity': locked.privateFile });
        expect((await refused(wrong.stat('k'))).message).toContain('wrong passphrase?');

        process.env.PGARK_SSH_PASSPHRASE = PASSPHRASE;
        const d = await open(freshRoot('passphrase'), { 'ssh-identity': locked.privateFile });
        await d.put('k', Buffer.from('unlocked'));
        expect((await readAll(await d.get('k'))).toString()).toBe('unlocked');
      } finally {
        if (saved === undefined) delete process.env.PGARK_SSH_PASSPHRASE;
        else process.env.PGARK_SSH_PASSPHRASE = saved;
      }
    });
  });

  describe('connections', () => {
    it('opens the connection lazily and reuses it for every operation', async () => {
      const before = sshd.acceptedLogins();
      const d = await open(freshRoot('reuse'));
      expect(d.connectionsOpened).toBe(0);
      const keys = Array.from({ length: 20 }, (_, i) => `r/${i % 4}/k${i}`);
      await Promise.all(keys.map((k) => d.put(k, Buffer.from(k))));
      for (const k of keys) {
        expect(await d.stat(k)).not.toBeNull();
        expect((await readAll(await d.get(k, { offset: 1 }))).toString()).toBe(k.slice(1));
      }
      expect(await listAll(d, 'r/')).toHaveLength(20);
      await d.delete(keys.slice(0, 10));
      await Promise.all(keys.slice(10).map((k) => d.put(k, Buffer.from('again'))));
      expect(d.connectionsOpened).toBe(1);
      await waitFor(() => (sshd.acceptedLogins() > before ? true : undefined), 'the login in the sshd log');
      await new Promise((r) => setTimeout(r, 200));
      expect(sshd.acceptedLogins() - before).toBe(1);
    });

    it('reconnects after the connection drops; only the interrupted operation fails, as transient', async () => {
      const proxy = await startProxy();
      const root = freshRoot('drop');
      const d = await open(root, { 'ssh-host-key-fingerprint': sshd.fingerprint }, proxy.port);
      await d.put('a', Buffer.from('a'));
      expect(proxy.connections).toBe(1);

      // Dropped while idle: the next operation just reconnects.
      proxy.dropAll();
      await new Promise((r) => setTimeout(r, 100));
      expect((await readAll(await d.get('a'))).toString()).toBe('a');
      expect(d.connectionsOpened).toBe(2);

      // Dropped mid-put: that put fails as transient and leaves no object; the next one works.
      const body = new PassThrough();
      const put = d.put('b', body);
      body.write(Buffer.alloc(200_000, 7));
      await waitFor(async () => ((await tempFilesIn(root)).length > 0 ? true : undefined), 'the temp file');
      proxy.dropAll();
      const err = await put.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).transient).toBe(true);
      expect(await d.stat('b')).toBeNull();
      await d.put('b', Buffer.from('retried'));
      expect((await readAll(await d.get('b'))).toString()).toBe('retried');
      expect(d.connectionsOpened).toBe(3);
      expect(proxy.connections).toBe(3);
      // The dropped put's temp file stays (the connection was gone); sweep removes such files by age.
      expect((await listAll(d, '')).map((i) => i.path).sort()).toEqual(['a', 'b']);
    });

    it('abandons a stalled connection after storage-timeout, as transient, and recovers', async () => {
      const proxy = await startProxy();
      const d = await open(freshRoot('stall'), { 'ssh-host-key-fingerprint': sshd.fingerprint, 'storage-timeout': '1' }, proxy.port);
      await d.put('k', Buffer.from('v'));
      proxy.stall();
      for (const op of [() => d.stat('k'), () => d.get('k'), () => d.put('k2', Buffer.from('v'))]) {
        const t0 = Date.now();
        const err = await op().catch((e: unknown) => e);
        expect(err).toBeInstanceOf(StorageError);
        expect((err as StorageError).transient).toBe(true);
        expect(Date.now() - t0).toBeLessThan(5000);
      }
      proxy.release();
      expect((await readAll(await d.get('k'))).toString()).toBe('v');
    });

    it('fails a get stream whose reads stall, instead of hanging', async () => {
      const proxy = await startProxy();
      const d = await open(freshRoot('stall-read'), { 'ssh-host-key-fingerprint': sshd.fingerprint, 'storage-timeout': '1' }, proxy.port);
      await d.put('big', Buffer.alloc(4 * 1024 * 1024, 3));
      const stream = await d.get('big');
      proxy.stall();
      const err = await readAll(stream).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).transient).toBe(true);
      proxy.release();
    });

    it('finds a dead connection while idle with keepalives, and the next operation reconnects', async () => {
      const proxy = await startProxy();
      const target = parseSshUrl(new URL(`ssh://${sshd.user}@127.0.0.1:${proxy.port}${freshRoot('keepalive')}`), 'unused');
      const d = new SshDriver(target, {
        // 2 s, not less: the reconnect's SSH handshake (JavaScript ciphers) must fit in it on a
        // loaded 2-core machine (0.5 s failed in a full-suite run).
        timeoutMs: 2000,
        keepaliveMs: 100,
        knownHostsFile: sshd.knownHostsFile,
        pinnedFingerprint: sshd.fingerprint,
        identity: sshd.identityFile,
        env: {},
        home: '/nonexistent',
      });
      opened.push(d);
      await d.put('k', Buffer.from('v'));
      proxy.stall();
      // A keepalive goes unanswered: storage-timeout later the connection is given up, unused.
      await new Promise((r) => setTimeout(r, 4000));
      proxy.release();
      expect((await d.stat('k'))?.size).toBe(1);
      expect(d.connectionsOpened).toBe(2);
    });

    it('reports an unreachable server as transient', async () => {
      const proxy = await startProxy();
      const port = proxy.port;
      await proxy.stop();
      const d = await open(freshRoot('down'), { 'ssh-host-key-fingerprint': sshd.fingerprint }, port);
      const err = await d.stat('k').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StorageError);
      expect((err as StorageError).transient).toBe(true);
      expect((err as Error).message).toContain('ECONNREFUSED');
    });
  });

  it('logs in as another user (postgres, as archive_command runs) whose files it creates', async () => {
    const id = (flag: string): number => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
    const [uid, gid] = [id('-u'), id('-g')];
    expect(Number.isInteger(uid) && uid > 0).toBe(true);
    const pgParent = await mkdtemp(join(tmpdir(), 'pgark-ssh-pg-'));
    try {
      await chown(pgParent, uid, gid);
      const d = (await createDriver(new URL(`ssh://postgres@127.0.0.1:${sshd.port}${pgParent}/repo`), { settings: baseSettings })) as SshDriver;
      opened.push(d);
      await d.put('main/wal/k', Buffer.from('pg'), { ifAbsent: true });
      const st = await stat(join(pgParent, 'repo/main/wal/k'));
      expect([st.uid, (st.mode & 0o777).toString(8)]).toEqual([uid, '600']);
      expect((await readAll(await d.get('main/wal/k'))).toString()).toBe('pg');
    } finally {
      await rm(pgParent, { recursive: true, force: true });
    }
  });

  it('works without the OpenSSH extensions (standard rename for both put kinds)', async () => {
    const root = freshRoot('noext');
    const d = await open(root);
    await d.put('warm', Buffer.from('w'));
    const session = await (d as unknown as { conn: SshConnection }).conn.session();
    for (const ext of ['posix-rename@openssh.com', 'hardlink@openssh.com', 'fsync@openssh.com']) session.unsupported.add(ext);
    await d.put('obj', Buffer.from('first'));
    await d.put('obj', Buffer.from('second'));
    expect((await readAll(await d.get('obj'))).toString()).toBe('second');
    await expect(d.put('obj', Buffer.from('third'), { ifAbsent: true })).rejects.toBeInstanceOf(AlreadyExistsError);
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => d.put('race', Buffer.from(`w${i}`), { ifAbsent: true })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(AlreadyExistsError);
    expect(await tempFilesIn(root)).toEqual([]);
    expect(d.connectionsOpened).toBe(1);
  });

  it('sweep removes temp files untouched for an hour, then empty directories, never the root', async () => {
    const root = freshRoot('sweep');
    const d = await open(root);
    await d.put('sw/a/keep', Buffer.from('k'));
    const old = new Date(Date.now() - 2 * 3600_000);
    await mkdir(join(root, 'sw/empty/deeper'), { recursive: true });
    const files = {
      deadSsh: join(root, 'sw/a/x.pgark-tmp-0-deadbeef'),
      live: join(root, 'sw/a/y.pgark-tmp-0-feedface'),
      deadFs: join(root, 'sw/empty/deeper/z.pgark-tmp-4242-cafe'),
    };
    for (const f of Object.values(files)) await writeFile(f, 'partial');
    await utimes(files.deadSsh, old, old);
    await utimes(files.deadFs, old, old);
    expect(await d.sweep('sw/')).toBe(2);
    expect(existsSync(files.live)).toBe(true);
    expect(existsSync(files.deadSsh)).toBe(false);
    expect(existsSync(join(root, 'sw/empty'))).toBe(false);
    expect((await listAll(d, '')).map((i) => i.path)).toEqual(['sw/a/keep']);
    expect(await d.sweep('')).toBe(0);
    expect(existsSync(root)).toBe(true);
    expect(await d.sweep('missing/')).toBe(0);
  });

  it('get of a directory or a missing key is NotFoundError; delete ignores both', async () => {
    const d = await open(freshRoot('shapes'));
    await d.put('dir/child', Buffer.from('c'));
    await expect(d.get('dir')).rejects.toBeInstanceOf(NotFoundError);
    await expect(d.get('nope', { offset: 3, length: 2 })).rejects.toBeInstanceOf(NotFoundError);
    await d.delete(['dir', 'nope', 'dir/child/under-a-file']);
    expect((await d.stat('dir/child'))?.size).toBe(1);
  });
});
