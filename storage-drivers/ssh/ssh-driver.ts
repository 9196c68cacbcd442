/**
 * SSH/SFTP driver: `ssh://user@host[:port]/absolute/path` (docs/storage/ssh.md).
 *
 * The repository on the server has exactly the layout of a local fs repository (one file per
 * key under the root, same temp names), so it can be copied with rsync and read with the fs
 * driver. Writes go to a temp file next to the final name (0600, directories 0700), are fsynced
 * (fsync@openssh.com), then committed:
 * - plain put: posix-rename@openssh.com, which replaces atomically (without the extension: the
 *   standard SFTP rename, which refuses an existing target, after removing the old object);
 * - ifAbsent: hardlink@openssh.com, which fails when the target exists, then the temp is
 *   removed (without the extension: the standard SFTP rename, which OpenSSH implements as
 *   link + unlink and which fails when the target exists).
 * The directory is then fsynced (fsync@openssh.com on a directory handle) so the rename is
 * durable when put() resolves.
 */
import { homedir, userInfo } from 'node:os';
import { posix } from 'node:path';
import { addAbortSignal, Readable } from 'node:stream';
import { AlreadyExistsError, ConfigError, NotFoundError } from '../../src/common/errors.js';
import { checkKey, checkRange, listStart } from '../keys.js';
import { forEachLimit } from '../limit.js';
import type { DriverOptions, GetOptions, ObjectInfo, Op, PutOptions, StorageDriver, StorageFeature } from '../types.js';
import { SshConnection, type Session } from './connection.js';
import { isFailure, isNoSuchFile, sshError, UnsupportedExtensionError } from './errors.js';
import { normalizeFingerprint } from './known-hosts.js';
import { SftpReadStream } from './read-stream.js';
import { isTempName, sshTempPathFor, sweepMinAgeMs } from './temp.js';
import { displayLocation, parseSshUrl, timeoutMsFrom, type SshTarget } from './url.js';
import { writeBody } from './write-body.js';

/** Transfer sizes: READ/WRITE requests of 64 KiB, 16 in flight (1 MiB per transfer). */
const IO_CHUNK = 64 * 1024;
const IO_DEPTH = 16;
/** Requests of a delete or a list sent at once (pipelined on the one SFTP session). */
const DELETE_CONCURRENCY = 16;
const LIST_CONCURRENCY = 8;
/** A concurrent delete may remove the directory between our mkdir and open; retry that race. */
const OPEN_TEMP_ATTEMPTS = 5;

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

interface Attrs {
  mode?: number;
  size?: number;
  mtime?: number;
}

export async function createDriver(url: URL, options: DriverOptions): Promise<StorageDriver> {
  const settings = options.settings ?? {};
  const target = parseSshUrl(url, userInfo().username);
  const timeoutMs = timeoutMsFrom(settings);
  const pinned = settings['ssh-host-key-fingerprint'] || undefined;
  if (pinned !== undefined && normalizeFingerprint(pinned) === undefined) {
    throw new ConfigError(`invalid ssh-host-key-fingerprint '${pinned}': expected SHA256:<base64> as ssh-keygen -l prints it`);
  }
  const home = homedir();
  const identity = settings['ssh-identity'] ? expandHome(settings['ssh-identity'], home) : undefined;
  return new SshDriver(target, {
    timeoutMs,
    knownHostsFile: settings['ssh-known-hosts'] ? expandHome(settings['ssh-known-hosts'], home) : posix.join(home, '.ssh', 'known_hosts'),
    ...(pinned !== undefined ? { pinnedFingerprint: pinned } : {}),
    ...(identity !== undefined ? { identity } : {}),
    env: process.env,
    home,
  });
}

export interface SshDriverOptions {
  timeoutMs: number;
  knownHostsFile: string;
  pinnedFingerprint?: string;
  identity?: string;
  env: NodeJS.ProcessEnv;
  home: string;
  keepaliveMs?: number;
}

export class SshDriver implements StorageDriver {
  readonly name = 'ssh';
  readonly features: ReadonlySet<StorageFeature> = new Set<StorageFeature>(['atomicRename', 'fsync', 'rangeRead', 'conditionalPut']);
  readonly location: string;
  private readonly conn: SshConnection;
  private readonly root: string;
  private readonly timeoutMs: number;

  constructor(target: SshTarget, o: SshDriverOptions) {
    this.location = displayLocation(target);
    this.root = target.root;
    this.timeoutMs = o.timeoutMs;
    this.conn = new SshConnection({ target, location: this.location, ...o });
  }

  /** SSH connections opened so far (one unless a connection dropped). */
  get connectionsOpened(): number {
    return this.conn.connects;
  }

  async stat(path: string, o: Op = {}): Promise<ObjectInfo | null> {
    checkKey(path);
    o.signal?.throwIfAborted();
    try {
      const s = await this.conn.session();
      return await this.statFile(s, path);
    } catch (err) {
      throw sshError('stat', path, this.location, err);
    }
  }

  async *list(prefix: string, o: Op = {}): AsyncGenerator<ObjectInfo> {
    const { dirKey, namePrefix } = listStart(prefix);
    yield* this.walk(dirKey, namePrefix, o.signal);
  }

  async get(path: string, o: GetOptions = {}): Promise<Readable> {
    checkKey(path);
    const { offset, length } = checkRange(path, o);
    o.signal?.throwIfAborted();
    const full = this.fullPath(path);
    let s: Session;
    let handle: Buffer;
    try {
      s = await this.conn.session();
      // Open first so a missing key rejects here; the stat sent with it tells a directory apart.
      const [opened, st] = await Promise.allSettled([
        s.run<Buffer>('get', (sftp, cb) => sftp.open(full, 'r', cb)),
        s.run<Attrs>('head', (sftp, cb) => sftp.stat(full, cb)),
      ]);
      if (opened.status === 'rejected') {
        if (isNoSuchFile(opened.reason)) throw new NotFoundError(path);
        throw opened.reason;
      }
      handle = opened.value;
      if (st.status === 'rejected' || !isRegular(st.value)) {
        void s.run<void>('other', (sftp, cb) => sftp.close(handle, cb)).catch(() => undefined);
        if (st.status === 'rejected' && !isNoSuchFile(st.reason)) throw st.reason;
        throw new NotFoundError(path);
      }
    } catch (err) {
      throw sshError('read', path, this.location, err);
    }
    const stream = new SftpReadStream({
      session: s,
      handle,
      start: offset,
      end: length === undefined ? Infinity : offset + length,
      chunk: IO_CHUNK,
      depth: IO_DEPTH,
      wrapError: (err) => sshError('read', path, this.location, err),
    });
    return o.signal ? addAbortSignal(o.signal, stream) : stream;
  }

  async put(path: string, body: Readable | Buffer, o: PutOptions = {}): Promise<{ size: number }> {
    checkKey(path);
    const { signal } = o;
    // Errors raised by the caller's body stream are theirs: pass them through unwrapped.
    let bodyError: unknown;
    if (!Buffer.isBuffer(body)) body.on('error', (err) => (bodyError ??= err));
    const finalPath = this.fullPath(path);
    const dir = posix.dirname(finalPath);
    const tmp = sshTempPathFor(finalPath);
    let s: Session | undefined;
    let handle: Buffer | undefined;
    let dirHandle: Promise<Buffer | undefined> | undefined;
    let tmpExists = false;
    let lost: Error | undefined;
    let unsubscribe: (() => void) | undefined;
    try {
      signal?.throwIfAborted();
      s = await this.conn.session();
      const session = s;

      // A dropped connection fails the put at once, even while it waits for body data.
      unsubscribe = session.onDeath((err) => {
        lost = err;
        if (!Buffer.isBuffer(body)) body.destroy(err);
      });
      handle = await this.openTemp(session, tmp);
      tmpExists = true;
      // Opened now so that syncing the directory after the rename costs no extra round trip.
      if (!session.unsupported.has('fsync@openssh.com')) {
        dirHandle = session.run<Buffer>('other', (sftp, cb) => sftp.open(dir, 'r', cb)).catch(() => undefined);
      }
      const size = await writeBody(body, { session, handle, chunk: IO_CHUNK, depth: IO_DEPTH, ...(signal ? { signal } : {}) });
      signal?.throwIfAborted();
      const h = handle;
      handle = undefined;
      // fsync and close are sent together; both answers are awaited.
      const [synced, closed] = await Promise.allSettled([fsyncHandle(session, h), session.run<void>('other', (sftp, cb) => sftp.close(h, cb))]);
      if (synced.status === 'rejected') throw synced.reason;
      if (closed.status === 'rejected') throw closed.reason;
      signal?.throwIfAborted();

      if (o.ifAbsent) await this.commitIfAbsent(session, tmp, finalPath, path);
      else await this.commitReplace(session, tmp, finalPath);
      tmpExists = false;

      const dh = await dirHandle;
      dirHandle = undefined;
      if (dh) {
        const [dsync] = await Promise.allSettled([fsyncHandle(session, dh), session.run<void>('other', (sftp, cb) => sftp.close(dh, cb))]);
        if (dsync.status === 'rejected') throw dsync.reason;
      }
      return { size };
    } catch (err) {
      if (s?.alive) {
        const session = s;
        const cleanup: Promise<unknown>[] = [];
        const h = handle;
        if (h) cleanup.push(session.run<void>('other', (sftp, cb) => sftp.close(h, cb)));
        if (tmpExists) cleanup.push(session.run<void>('delete', (sftp, cb) => sftp.unlink(tmp, cb)));
        const dh = dirHandle;
        if (dh) cleanup.push(dh.then((d) => d && session.run<void>('other', (sftp, cb) => sftp.close(d, cb))));
        await Promise.allSettled(cleanup);
      }
      // A failed put never consumes the rest of the body; release whatever feeds it.
      if (!Buffer.isBuffer(body) && !body.destroyed) body.destroy();
      if (err === bodyError && err !== lost) throw err;
      throw sshError('write', path, this.location, err);
    } finally {
      unsubscribe?.();
    }
  }

  async delete(paths: string[], o: Op = {}): Promise<void> {
    for (const p of paths) checkKey(p);
    if (paths.length === 0) return;
    const parents = new Set<string>();
    let s: Session;
    try {
      s = await this.conn.session();
    } catch (err) {
      throw sshError('delete', paths[0] as string, this.location, err);
    }
    await forEachLimit(paths, DELETE_CONCURRENCY, async (p) => {
      o.signal?.throwIfAborted();
      const full = this.fullPath(p);
      try {
        await s.run<void>('delete', (sftp, cb) => sftp.unlink(full, cb));
      } catch (err) {
        if (!isNoSuchFile(err)) {
          // A directory is not an object, so the key is "missing"; anything else is an error.
          const st = isFailure(err) ? await s.run<Attrs>('head', (sftp, cb) => sftp.stat(full, cb)).catch(() => undefined) : undefined;
          if (!st || !isDirectory(st)) throw sshError('delete', p, this.location, err);
        }
      }
      parents.add(posix.dirname(full));
    });
    // Deepest first, so a parent is tried only after its emptied children are gone. Best
    // effort: a concurrent put re-creates what it needs (see openTemp).
    const ordered = [...parents].sort((a, b) => b.split('/').length - a.split('/').length);
    const done = new Set<string>();
    for (const dir of ordered) await this.removeEmptyDirs(s, dir, done);
  }

  /**
   * Remove temp files under `prefix` left by writers that died: since a client pid means nothing
   * on the server, a temp file counts as dead when it has not been modified for an hour (or twice
   * storage-timeout, if longer), by the server's clock. A live writer that made no progress that
   * long has given up (its requests time out after storage-timeout). Then directories left
   * empty are removed.
   */
  async sweep(prefix: string, o: Op = {}): Promise<number> {
    const start = prefix.replace(/\/$/, '');
    if (start !== '') checkKey(start);
    const minAge = sweepMinAgeMs(this.timeoutMs);
    let removed = 0;
    const dirs: string[] = [];
    try {
      const s = await this.conn.session();
      const temps: Array<{ key: string; mtimeMs: number }> = [];
      const visit = async (dirKey: string): Promise<void> => {
        o.signal?.throwIfAborted();
        const entries = await this.readDir(s, this.fullPath(dirKey));
        if (entries === null) return;
        dirs.push(this.fullPath(dirKey));
        for (const e of entries) {
          const key = dirKey === '' ? e.filename : `${dirKey}/${e.filename}`;
          if (isDirectory(e.attrs)) await visit(key);
          else if (isTempName(e.filename)) temps.push({ key, mtimeMs: (e.attrs.mtime ?? 0) * 1000 });
        }
      };
      await visit(start);
      if (temps.length > 0) {
        // Ages are measured on the server's clock, which may differ from ours.
        const now = await this.serverNow(s);
        for (const t of temps) {
          if (now - t.mtimeMs < minAge) continue;
          o.signal?.throwIfAborted();
          await s.run<void>('delete', (sftp, cb) => sftp.unlink(this.fullPath(t.key), cb)).then(
            () => removed++,
            () => undefined,
          );
        }
      }
      // Deepest first; a directory that is not empty simply stays.
      for (const dir of dirs.sort((a, b) => b.split('/').length - a.split('/').length)) {
        if (dir !== this.root) await s.run<void>('delete', (sftp, cb) => sftp.rmdir(dir, cb)).catch(() => undefined);
      }
    } catch (err) {
      throw sshError('sweep', start, this.location, err);
    }
    return removed;
  }

  /** The server's current time: the mtime of a probe file created (and removed) in the root. */
  private async serverNow(s: Session): Promise<number> {
    const probe = sshTempPathFor(`${this.root}/clock-probe`);
    const handle = await s.run<Buffer>('put', (sftp, cb) => sftp.open(probe, 'wx', { mode: 0o600 }, cb));
    const [st] = await Promise.allSettled([
      s.run<Attrs>('head', (sftp, cb) => sftp.fstat(handle, cb)),
      s.run<void>('other', (sftp, cb) => sftp.close(handle, cb)),
      s.run<void>('delete', (sftp, cb) => sftp.unlink(probe, cb)),
    ]);
    if (st.status === 'rejected') throw st.reason;
    return (st.value.mtime ?? 0) * 1000;
  }

  async close(): Promise<void> {
    await this.conn.close();
  }

  private fullPath(key: string): string {
    return key === '' ? this.root : `${this.root}/${key}`;
  }

  private async statFile(s: Session, key: string): Promise<ObjectInfo | null> {
    try {
      const st = await s.run<Attrs>('head', (sftp, cb) => sftp.stat(this.fullPath(key), cb));
      return isRegular(st) ? { path: key, size: st.size ?? 0, mtimeMs: (st.mtime ?? 0) * 1000 } : null;
    } catch (err) {
      if (isNoSuchFile(err)) return null;
      throw err;
    }
  }

  /** All entries of a directory (one OPENDIR, READDIR until EOF, CLOSE), or null if it is missing. */
  private async readDir(s: Session, dir: string): Promise<Array<{ filename: string; attrs: Attrs }> | null> {
    let handle: Buffer;
    try {
      handle = await s.run<Buffer>('list', (sftp, cb) => sftp.opendir(dir, cb));
    } catch (err) {
      if (isNoSuchFile(err)) return null;
      throw err;
    }
    const out: Array<{ filename: string; attrs: Attrs }> = [];
    try {
      for (;;) {
        const page = await s
          .run<Array<{ filename: string; attrs: Attrs }> | false>('list', (sftp, cb) =>
            sftp.readdir(handle, (err, list) => {
              // ssh2 reports the end of the directory as an EOF status.
              if (err && (err as { code?: unknown }).code === 1) cb(undefined, false);
              else cb(err, list);
            }),
          );
        if (page === false) break;
        for (const e of page) if (e.filename !== '.' && e.filename !== '..') out.push(e);
      }
    } finally {
      s.run<void>('other', (sftp, cb) => sftp.close(handle, cb)).catch(() => undefined);
    }
    return out;
  }

  private async *walk(dirKey: string, namePrefix: string, signal: AbortSignal | undefined): AsyncGenerator<ObjectInfo> {
    let s: Session;
    try {
      s = await this.conn.session();
    } catch (err) {
      throw sshError('list', dirKey, this.location, err);
    }
    // Directories are read LIST_CONCURRENCY at a time; results are yielded as they arrive.
    const dirs: Array<{ key: string; filter: string }> = [{ key: dirKey, filter: namePrefix }];
    const ready: ObjectInfo[] = [];
    const running = new Set<Promise<void>>();
    let failure: { err: unknown } | undefined;

    const readOne = async (d: { key: string; filter: string }): Promise<void> => {
      const entries = await this.readDir(s, this.fullPath(d.key));
      if (entries === null) return;
      const links: string[] = [];
      for (const e of entries) {
        if (!e.filename.startsWith(d.filter) || isTempName(e.filename)) continue;
        const key = d.key === '' ? e.filename : `${d.key}/${e.filename}`;
        const type = fileType(e.attrs);
        if (type === S_IFDIR) dirs.push({ key, filter: '' });
        else if (type === S_IFREG) ready.push({ path: key, size: e.attrs.size ?? 0, mtimeMs: (e.attrs.mtime ?? 0) * 1000 });
        // Symlinks (and servers that send no type) are resolved with a stat; links to
        // directories are not followed (loops), as in the fs driver.
        else if (type === S_IFLNK || type === undefined) links.push(key);
      }
      for (const key of links) {
        const info = await this.statFile(s, key);
        if (info) ready.push(info);
      }
    };
    const launch = (): void => {
      while (!failure && running.size < LIST_CONCURRENCY && dirs.length > 0) {
        const d = dirs.shift() as { key: string; filter: string };
        const p: Promise<void> = readOne(d)
          .catch((err: unknown) => {
            failure ??= { err };
          })
          .finally(() => running.delete(p));
        running.add(p);
      }
    };

    for (;;) {
      launch();
      if (ready.length > 0) {
        for (const info of ready.splice(0)) {
          signal?.throwIfAborted();
          yield info;
        }
        continue;
      }
      if (failure) throw sshError('list', dirKey === '' ? namePrefix : `${dirKey}/${namePrefix}`, this.location, failure.err);
      if (running.size === 0) return;
      await Promise.race(running);
    }
  }

  private async openTemp(s: Session, tmp: string): Promise<Buffer> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await s.run<Buffer>('put', (sftp, cb) => sftp.open(tmp, 'wx', { mode: 0o600 }, cb));
      } catch (err) {
        if (!isNoSuchFile(err) || attempt >= OPEN_TEMP_ATTEMPTS) throw err;
      }
      await this.ensureDir(s, posix.dirname(tmp));
    }
  }

  /** mkdir -p with 0700; a directory that exists already (or appears meanwhile) is fine. */
  private async ensureDir(s: Session, dir: string): Promise<void> {
    if (dir === '/' || dir === '.') return;
    try {
      await s.run<void>('other', (sftp, cb) => sftp.mkdir(dir, { mode: 0o700 }, cb));
    } catch (err) {
      if (isFailure(err)) return; // exists (SFTP v3 has no EEXIST); the open that follows tells
      if (!isNoSuchFile(err)) throw err;
      await this.ensureDir(s, posix.dirname(dir));
      await s.run<void>('other', (sftp, cb) => sftp.mkdir(dir, { mode: 0o700 }, cb)).catch((e: unknown) => {
        if (!isFailure(e)) throw e;
      });
    }
  }

  private async commitReplace(s: Session, tmp: string, finalPath: string): Promise<void> {
    try {
      await s.runExt<void>('other', 'posix-rename@openssh.com', (sftp, cb) => sftp.ext_openssh_rename(tmp, finalPath, cb));
      return;
    } catch (err) {
      if (!(err instanceof UnsupportedExtensionError)) throw err;
    }
    // Standard rename refuses an existing target: remove it first (not atomic: documented).
    try {
      await s.run<void>('other', (sftp, cb) => sftp.rename(tmp, finalPath, cb));
    } catch (err) {
      if (!isFailure(err)) throw err;
      await s.run<void>('delete', (sftp, cb) => sftp.unlink(finalPath, cb)).catch(() => undefined);
      await s.run<void>('other', (sftp, cb) => sftp.rename(tmp, finalPath, cb));
    }
  }

  private async commitIfAbsent(s: Session, tmp: string, finalPath: string, key: string): Promise<void> {
    let linked = true;
    try {
      await s.runExt<void>('other', 'hardlink@openssh.com', (sftp, cb) => sftp.ext_openssh_hardlink(tmp, finalPath, cb));
    } catch (err) {
      if (err instanceof UnsupportedExtensionError) linked = false;
      else if (isFailure(err) && (await this.statFile(s, key).catch(() => null)) !== null) throw new AlreadyExistsError(key);
      else throw err;
    }
    if (linked) {
      // Committed: if removing the temp fails, sweep removes it later.
      await s.run<void>('delete', (sftp, cb) => sftp.unlink(tmp, cb)).catch(() => undefined);
      return;
    }
    // SSH_FXP_RENAME fails when the target exists (OpenSSH does it with link + unlink).
    try {
      await s.run<void>('other', (sftp, cb) => sftp.rename(tmp, finalPath, cb));
    } catch (err) {
      if (isFailure(err) && (await this.statFile(s, key).catch(() => null)) !== null) throw new AlreadyExistsError(key);
      throw err;
    }
  }

  private async removeEmptyDirs(s: Session, dir: string, done: Set<string>): Promise<void> {
    for (let p = dir; p !== this.root && p.startsWith(`${this.root}/`) && !done.has(p); p = posix.dirname(p)) {
      done.add(p);
      try {
        await s.run<void>('delete', (sftp, cb) => sftp.rmdir(p, cb));
      } catch {
        return;
      }
    }
  }
}

/** `~/x` -> `<home>/x`, as ssh does for its file options. */
function expandHome(file: string, home: string): string {
  return file === '~' || file.startsWith('~/') ? posix.join(home, file.slice(1)) : file;
}

function fsyncHandle(s: Session, handle: Buffer): Promise<void> {
  return s.runExt<void>('other', 'fsync@openssh.com', (sftp, cb) => sftp.ext_openssh_fsync(handle, (err) => cb(err))).catch((err: unknown) => {
    // Servers without the extension: nothing more can be done over SFTP.
    if (!(err instanceof UnsupportedExtensionError)) throw err;
  });
}

function fileType(a: Attrs): number | undefined {
  return a.mode === undefined ? undefined : a.mode & S_IFMT;
}
function isRegular(a: Attrs): boolean {
  return fileType(a) === S_IFREG;
}
function isDirectory(a: Attrs): boolean {
  return fileType(a) === S_IFDIR;
}
