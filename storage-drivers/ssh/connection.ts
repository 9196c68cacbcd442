/**
 * One SSH connection and one SFTP session per driver, opened lazily on first use and reused by
 * every operation; when it drops, the next operation opens a new one.
 *
 * Timeouts: every SFTP request goes through Session.run, which keeps track of outstanding
 * requests. When requests are outstanding and none has completed for `storage-timeout`, the
 * connection is considered stalled and destroyed: the outstanding requests fail with a
 * transient error, and the next operation reconnects. Establishing the connection (TCP, SSH
 * handshake, authentication, SFTP subsystem) has the same limit as a whole.
 *
 * Keepalives: TCP keepalive on the socket, and while the connection is idle an SFTP request
 * (realpath) every 15 s, which keeps NAT/firewall state fresh and finds a dead server before the
 * next operation does. The connection keeps the process alive until close(): pgark closes
 * every repository it opens (worker threads are terminated). An earlier version unref'd the
 * socket between requests, and a process whose only pending work was an SSH operation waiting
 * for local data exited silently in the middle of it.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { readFile } from 'node:fs/promises';
import ssh2, { type AnyAuthMethod, type ConnectConfig, type SFTPWrapper } from 'ssh2';
import { StorageError } from '../../src/common/errors.js';
import { countRequest, type RequestKind } from '../request-stats.js';
import { loadAuth, type AuthPlan } from './auth.js';
import { ConnectionLostError, connectFailure, UnsupportedExtensionError } from './errors.js';
import { checkHostKey, hostKeyRefusal, parseKnownHosts, preferredHostKeyAlgorithms, type HostKeyVerdict, type KnownHostEntry } from './known-hosts.js';
import type { SshTarget } from './url.js';

export const KEEPALIVE_MS = 15_000;

export interface ConnectionOptions {
  target: SshTarget;
  /** Display form, for messages. */
  location: string;
  timeoutMs: number;
  knownHostsFile: string;
  /** Pinned `SHA256:` fingerprint: when set, known_hosts is not consulted. */
  pinnedFingerprint?: string;
  identity?: string;
  env: NodeJS.ProcessEnv;
  home: string;
  keepaliveMs?: number;
}

type Callback<T> = (err: Error | null | undefined, value?: T) => void;

interface Pending {
  fail(err: Error): void;
}

/** One live SSH connection with its SFTP session. Handles are valid only within it. */
export class Session {
  alive = true;
  /** SFTP extensions found missing on this server. */
  readonly unsupported = new Set<string>();
  private readonly pending = new Set<Pending>();
  private lastProgress = Date.now();
  private death: Error | undefined;
  private lastClientError: Error | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly deathListeners = new Set<(err: Error) => void>();

  constructor(
    private readonly client: ssh2.Client,
    private readonly sftp: SFTPWrapper,
    private readonly sock: Socket,
    private readonly timeoutMs: number,
    keepaliveMs: number,
  ) {
    client.on('error', (err: Error) => (this.lastClientError = err));
    client.on('close', () => {
      const why = this.lastClientError ? `: ${this.lastClientError.message}` : '';
      this.kill(new ConnectionLostError(`the SSH connection was closed${why}`));
    });
    for (const ev of ['end', 'close']) sftp.on(ev, () => this.kill(new ConnectionLostError('the server closed the SFTP session')));
    const tick = Math.max(100, Math.min(1000, Math.floor(timeoutMs / 4)));
    this.timers.push(
      setInterval(() => {
        if (this.pending.size > 0 && Date.now() - this.lastProgress > this.timeoutMs) {
          this.kill(new ConnectionLostError(`no response from the server for ${this.timeoutMs / 1000} s (storage-timeout)`));
        }
      }, tick).unref(),
      setInterval(() => {
        if (this.pending.size === 0 && Date.now() - this.lastProgress >= keepaliveMs) {
          this.run<string>(null, (s, cb) => s.realpath('.', cb)).catch(() => undefined);
        }
      }, keepaliveMs).unref(),
    );
  }

  /**
   * Send one SFTP request. `kind` is what it counts as in the request statistics (null: not
   * counted, e.g. data packets of a transfer and keepalives). Fails with ConnectionLostError when
   * the connection drops or stalls.
   */
  run<T>(kind: RequestKind | null, start: (sftp: SFTPWrapper, cb: Callback<T>) => void): Promise<T> {
    if (!this.alive) return Promise.reject(this.death ?? new ConnectionLostError('the SSH connection was closed'));
    if (kind) countRequest(kind);
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const entry: Pending = { fail: (err) => settle(err) };
      const settle = (err: Error | null | undefined, value?: T): void => {
        if (done) return;
        done = true;
        this.pending.delete(entry);
        this.lastProgress = Date.now();
        if (err) reject(err);
        else resolve(value as T);
      };
      if (this.pending.size === 0) this.lastProgress = Date.now();
      this.pending.add(entry);
      try {
        start(this.sftp, settle);
      } catch (err) {
        settle(err as Error);
      }
    });
  }

  /**
   * Send an OpenSSH extension request; fails with UnsupportedExtensionError (without a request)
   * when the server does not offer it.
   */
  runExt<T>(kind: RequestKind, extension: string, start: (sftp: SFTPWrapper, cb: Callback<T>) => void): Promise<T> {
    if (this.unsupported.has(extension)) return Promise.reject(new UnsupportedExtensionError(extension));
    return this.run<T>(kind, (sftp, cb) => {
      try {
        start(sftp, cb);
      } catch (err) {
        // ssh2 throws synchronously when the server did not announce the extension.
        if (!/does not support this extended request/.test((err as Error).message)) throw err;
        this.unsupported.add(extension);
        cb(new UnsupportedExtensionError(extension));
      }
    });
  }

  /** Call `fn` when this session dies (not when it is ended politely); returns an unsubscriber. */
  onDeath(fn: (err: Error) => void): () => void {
    this.deathListeners.add(fn);
    return () => this.deathListeners.delete(fn);
  }

  kill(err: Error): void {
    if (!this.alive) return;
    this.alive = false;
    this.death = err;
    for (const t of this.timers) clearInterval(t);
    for (const p of [...this.pending]) p.fail(err);
    for (const fn of [...this.deathListeners]) fn(err);
    this.deathListeners.clear();
    this.client.destroy();
    this.sock.destroy();
  }

  /** Disconnect politely; outstanding requests fail. */
  async end(): Promise<void> {
    if (!this.alive) return;
    const closed = new Promise<void>((resolve) => {
      if (this.sock.destroyed) resolve();
      else this.sock.once('close', () => resolve());
    });
    this.alive = false;
    this.death = new ConnectionLostError('the driver was closed');
    for (const t of this.timers) clearInterval(t);
    for (const p of [...this.pending]) p.fail(this.death);
    this.client.end();
    const timer = setTimeout(() => this.sock.destroy(), 1000).unref();
    await closed;
    clearTimeout(timer);
  }
}

export class SshConnection {
  /** SSH connections opened so far (tests check that operations share one). */
  connects = 0;
  private current: Session | undefined;
  private connecting: Promise<Session> | undefined;
  private auth: AuthPlan | undefined;
  private readonly keepaliveMs: number;

  constructor(private readonly o: ConnectionOptions) {
    this.keepaliveMs = o.keepaliveMs ?? KEEPALIVE_MS;
  }

  /** The live session, connecting first when there is none. */
  session(): Promise<Session> {
    if (this.current?.alive) return Promise.resolve(this.current);
    this.connecting ??= this.open().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  async close(): Promise<void> {
    const pending = this.connecting;
    if (pending) await pending.catch(() => undefined);
    const s = this.current;
    this.current = undefined;
    await s?.end();
  }

  private fail(text: string, transient: boolean, cause?: unknown): StorageError {
    return new StorageError('ssh', `unable to connect to ${this.o.location}: ${text}`, { transient, ...(cause !== undefined ? { cause } : {}) });
  }

  private async readKnownHosts(): Promise<{ entries: KnownHostEntry[]; missing: boolean }> {
    try {
      return { entries: parseKnownHosts(await readFile(this.o.knownHostsFile, 'utf8')), missing: false };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return { entries: [], missing: true };
      throw this.fail(`unable to read ssh-known-hosts file ${this.o.knownHostsFile}: ${code ?? (err as Error).message}`, false);
    }
  }

  private async open(): Promise<Session> {
    const { target, timeoutMs } = this.o;
    this.auth ??= await loadAuth({ ...(this.o.identity ? { identity: this.o.identity } : {}), env: this.o.env, home: this.o.home, location: this.o.location });
    const auth = this.auth;
    const pinned = this.o.pinnedFingerprint;
    const known = pinned === undefined ? await this.readKnownHosts() : { entries: [], missing: false };
    const algorithms = preferredHostKeyAlgorithms(known.entries, target.host, target.port);

    const session = await new Promise<Session>((resolve, reject) => {
      let verdict: HostKeyVerdict | undefined;
      let settled = false;
      const sock = netConnect({ host: target.host, port: target.port });
      sock.setNoDelay(true);
      sock.setKeepAlive(true, this.keepaliveMs);
      const client = new ssh2.Client();
      const finish = (err: Error | undefined, s?: Session): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (err) {
          client.destroy();
          sock.destroy();
          reject(err);
        } else {
          resolve(s as Session);
        }
      };
      const classify = (err: unknown): StorageError => {
        if (verdict && !verdict.ok) {
          const text = hostKeyRefusal(verdict, {
            host: target.host,
            port: target.port,
            knownHostsFile: this.o.knownHostsFile,
            knownHostsMissing: known.missing,
            ...(pinned !== undefined ? { pinned } : {}),
          });
          return this.fail(text, false);
        }
        const level = err instanceof Error ? (err as { level?: unknown }).level : undefined;
        if (level === 'client-authentication') {
          return this.fail(
            `authentication as '${target.user}' failed: the server accepted none of ${auth.describe} ` +
              `(put the public key in ~${target.user}/.ssh/authorized_keys on the server, or set ssh-identity to a key it accepts)`,
            false,
          );
        }
        const f = connectFailure(err);
        return this.fail(f.text, f.transient, err);
      };
      const timer = setTimeout(() => finish(this.fail(`no answer within ${timeoutMs / 1000} s (storage-timeout)`, true)), timeoutMs);
      client.on('error', (err: Error) => {
        // The agent failing is not fatal: the keys that follow are still tried.
        if ((err as { level?: unknown }).level === 'agent') return;
        finish(classify(err));
      });
      client.on('close', () => finish(classify(new Error('connection closed during setup'))));
      client.on('ready', () => {
        client.sftp((err, sftp) => {
          if (err) return finish(this.fail(`unable to start the SFTP subsystem: ${err.message}`, false));
          finish(undefined, new Session(client, sftp, sock, timeoutMs, this.keepaliveMs));
        });
      });

      const methods: AnyAuthMethod[] = [];
      if (auth.agent) methods.push({ type: 'agent', username: target.user, agent: auth.agent });
      for (const k of auth.keys) methods.push({ type: 'publickey', username: target.user, key: k.key });
      const config: ConnectConfig = {
        sock,
        username: target.user,
        readyTimeout: timeoutMs,
        keepaliveInterval: 0,
        tryKeyboard: false,
        authHandler: methods,
        algorithms: { serverHostKey: algorithms as NonNullable<NonNullable<ConnectConfig['algorithms']>['serverHostKey']> },
        hostVerifier: (key: Buffer): boolean => {
          verdict = checkHostKey({ offered: key, host: target.host, port: target.port, entries: known.entries, ...(pinned !== undefined ? { pinned } : {}) });
          return verdict.ok;
        },
      };
      try {
        client.connect(config);
      } catch (err) {
        finish(classify(err));
      }
    });
    this.connects++;
    this.current = session;
    return session;
  }
}
