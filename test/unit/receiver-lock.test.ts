/**
 * One receiver per stanza and name (issue 14, finding 4):
 *  - acquirePidLock: one holder; a live holder is named; a dead holder's file (or junk) is taken
 *    over; many processes racing over one stale lock end with exactly one holder; owns() turns
 *    false when the file is removed or replaced;
 *  - acquireReceiverLocks: the spool lock and the repository lock `receive-<name>`; a second
 *    receiver with the same spool directory, or with another spool directory but the same
 *    stanza and name, gets a LockedError (exit 6); after release, or when the holder died, the
 *    next one gets them;
 *  - SegmentWriter never creates, truncates or removes a spool file once its lock is gone.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDriver } from '../../storage-drivers/registry.js';
import { ExitCode, LockedError } from '../../src/common/errors.js';
import { acquirePidLock } from '../../src/common/pid-lock.js';
import { lockKey } from '../../src/repo/layout.js';
import { Repository } from '../../src/repo/repository.js';
import { acquireReceiverLocks, SPOOL_LOCK_FILE } from '../../src/receiver/receiver.js';
import { SegmentWriter } from '../../src/receiver/segment-writer.js';

let dir: string;
let repo: Repository;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pgark-rlock-'));
  repo = new Repository(await openDriver(join(dir, 'repo')), 'main', { attempts: 1, budgetMs: 0 });
});
afterEach(async () => {
  await repo.close();
  await rm(dir, { recursive: true, force: true });
});

async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((r) => child.once('exit', r));
  return child.pid!;
}

describe('acquirePidLock', () => {
  it('has one holder, names it, and takes over a dead holder\'s file', async () => {
    const path = join(dir, 'x.pid');
    const a = await acquirePidLock(path);
    if (!('lock' in a)) throw new Error('not acquired');
    expect(await readFile(path, 'utf8')).toBe(`${process.pid}\n${hostname()}\n`);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const b = await acquirePidLock(path);
    expect(b).toEqual({ owner: process.pid });
    expect(a.lock.owns()).toBe(true);
    await a.lock.release();
    expect(a.lock.owns()).toBe(false);

    await writeFile(path, String(await deadPid()));
    const c = await acquirePidLock(path);
    expect('lock' in c).toBe(true);
    await writeFile(join(dir, 'y.pid'), 'not a pid');
    expect('lock' in (await acquirePidLock(join(dir, 'y.pid')))).toBe(true);
    // A holder on another host (a shared home directory) is never judged dead from here.
    await writeFile(join(dir, 'z.pid'), `${await deadPid()}\nother-host\n`);
    expect(await acquirePidLock(join(dir, 'z.pid'))).toEqual({ owner: expect.any(Number), host: 'other-host' });
    await writeFile(join(dir, 'w.pid'), `${await deadPid()}\n${hostname()}\n`);
    expect('lock' in (await acquirePidLock(join(dir, 'w.pid')))).toBe(true);
  });

  it('notices when its file was removed or replaced', async () => {
    const path = join(dir, 'x.pid');
    const a = await acquirePidLock(path);
    if (!('lock' in a)) throw new Error('not acquired');
    await rm(path);
    expect(a.lock.owns()).toBe(false);
    await writeFile(path, String(process.pid));
    expect(a.lock.owns()).toBe(false);
    await a.lock.release();
    expect(await readFile(path, 'utf8')).toBe(String(process.pid)); // not ours: left alone
  });

  it('lets exactly one of many processes racing over a stale lock take it', { timeout: 60_000 }, async () => {
    const path = join(dir, 'race.pid');
    const built = join(dirname(fileURLToPath(import.meta.url)), '../../dist/src/common/pid-lock.js');
    if (!existsSync(built)) throw new Error(`${built} is missing: run 'npm run build' first`);
    const mod = pathToFileURL(built).href;
    for (let round = 0; round < 5; round++) {
      await writeFile(path, String(await deadPid()));
      const go = join(dir, `go${round}`);
      // Each child takes the lock when `go` appears, reports, and keeps it until killed.
      const script = `import { existsSync } from 'node:fs';
        const { acquirePidLock } = await import(${JSON.stringify(mod)});
        while (!existsSync(${JSON.stringify(go)})) await new Promise((r) => setTimeout(r, 2));
        const r = await acquirePidLock(${JSON.stringify(path)});
        console.log('lock' in r ? 'got' : 'refused');
        setTimeout(() => undefined, 60000);`;
      const children = Array.from({ length: 6 }, () => spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] }));
      const answers = children.map((c) => new Promise<string>((resolve) => {
        let out = '';
        c.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('\n')) resolve(out.trim());
        });
        c.once('exit', () => resolve(out.trim() || 'exited'));
      }));
      await new Promise((r) => setTimeout(r, 1500));
      await writeFile(go, '');
      const got = await Promise.all(answers);
      for (const c of children) c.kill('SIGKILL');
      expect(got.filter((x) => x === 'got')).toHaveLength(1);
      expect(got.filter((x) => x === 'refused')).toHaveLength(5);
    }
  });
});

describe('acquireReceiverLocks', () => {
  it('refuses a second receiver for the same stanza and name, with the same or another spool directory', async () => {
    const spool = join(dir, 'spool');
    const first = await acquireReceiverLocks(repo, 'recv', spool);
    expect(await readFile(join(spool, SPOOL_LOCK_FILE), 'utf8')).toBe(`${process.pid}\n${hostname()}\n`);
    expect(await repo.stat(lockKey('main', 'receive-recv'))).not.toBeNull();

    const same = acquireReceiverLocks(repo, 'recv', spool);
    await expect(same).rejects.toBeInstanceOf(LockedError);
    await expect(same).rejects.toThrow(new RegExp(`another pgark receive \\(pid ${process.pid}\\) is using the spool directory`));
    const other = acquireReceiverLocks(repo, 'recv', join(dir, 'spool2'));
    await expect(other).rejects.toThrow(/another pgark receive for stanza 'main' and name 'recv' is running: .*held by receive 'recv'/);
    expect(new LockedError('x').exitCode).toBe(ExitCode.LOCKED);
    // The refused one left the first one's locks alone.
    first.check();
    // Another name is another receiver.
    const third = await acquireReceiverLocks(repo, 'other', join(dir, 'spool3'));
    await third.release();

    await first.release();
    expect(await repo.stat(lockKey('main', 'receive-recv'))).toBeNull();
    const again = await acquireReceiverLocks(repo, 'recv', spool);
    await again.release();
  });

  it('takes over the locks of a receiver that died', async () => {
    const spool = join(dir, 'spool');
    const first = await acquireReceiverLocks(repo, 'recv', spool);
    // Make both locks look like those of a dead process on this host.
    const dead = await deadPid();
    await writeFile(join(spool, SPOOL_LOCK_FILE), String(dead));
    const key = lockKey('main', 'receive-recv');
    const info = JSON.parse(await repo.getJson(key)) as Record<string, unknown>;
    await repo.putJson(key, { ...info, pid: dead });
    const second = await acquireReceiverLocks(repo, 'recv', spool);
    expect(() => first.check()).toThrow(LockedError);
    second.check();
    await second.release();
  });
});

describe('SegmentWriter without the spool lock', () => {
  it('neither truncates nor removes a spool file', async () => {
    let owns = true;
    const cfg = { repo, codec: 'lz4' as const, walSegmentSize: 1024 * 1024, spoolDir: join(dir, 'spool'), ownsSpool: () => owns };
    const w = await SegmentWriter.open(cfg, 1, 0n);
    await w.append(0n, Buffer.alloc(1000, 7));
    const file = join(dir, 'spool', '000000010000000000000000.receiving');
    owns = false;
    await expect(w.close()).rejects.toBeInstanceOf(LockedError);
    expect((await readFile(file)).length).toBe(1000);
    await expect(SegmentWriter.open(cfg, 1, 0n)).rejects.toThrow(/no longer held by this receiver/);
    expect((await readFile(file)).length).toBe(1000);
  });
});
