/**
 * Test harness: a real OpenSSH server (Debian's openssh-server) on 127.0.0.1 and a free port.
 *
 * - Runs /usr/sbin/sshd in the foreground (`-D -e -f <config>`) with a host key generated for
 *   this run (ssh-keygen -t ed25519 in a temp dir), key-only authentication (password and
 *   keyboard-interactive off, no PAM) and an AuthorizedKeysFile in the temp dir holding a
 *   client key generated for this run. StrictModes is off so the temp dir's modes do not matter.
 * - The login users allowed are `allowUsers` (default: the current user and 'postgres'); root may
 *   log in with a key (PermitRootLogin prohibit-password).
 * - UsePAM is off, except when one of those accounts is locked in /etc/shadow (Debian's postgres
 *   account has password '!'): sshd without PAM refuses locked accounts even for key logins
 *   ("User postgres not allowed because account is locked"), with PAM it leaves the account
 *   check to pam_unix, which accepts them.
 * - SFTP is `internal-sftp`, so no external sftp-server binary is involved.
 * - Missing binaries FAIL with the apt-get command that installs them (never a skip).
 *
 * The returned object also holds what a test needs to point the ssh driver at the server: a
 * known_hosts file with the host key (for `[127.0.0.1]:port`) and the host key's fingerprint.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { appendFile, chmod, chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

const SSHD = '/usr/sbin/sshd';
const SSH_KEYGEN = '/usr/bin/ssh-keygen';
const INSTALL_HINT = 'apt-get install -y openssh-server openssh-client (or run scripts/install-deps.sh)';

export interface SshdServer {
  host: string;
  port: number;
  /** The user the tests log in as by default. */
  user: string;
  /** Private key (OpenSSH format, no passphrase) that is in authorized_keys. */
  identityFile: string;
  /** The base64 body of the private key file (to check it never leaks). */
  identitySecret: string;
  /** known_hosts with the server's host key for `[host]:port`. */
  knownHostsFile: string;
  /** `SHA256:...` fingerprint of the host key, as ssh-keygen -l prints it. */
  fingerprint: string;
  /** The host key's known_hosts line payload: `ssh-ed25519 AAAA...`. */
  hostPublicKey: string;
  /** A scratch directory that is removed by stop(). */
  dir: string;
  /** Generate a key pair in the scratch dir (optionally with a passphrase); returns its paths. */
  generateKey(name: string, opts?: { passphrase?: string; type?: 'ed25519' | 'ecdsa' | 'rsa'; authorize?: boolean }): Promise<{ privateFile: string; publicKey: string }>;
  /**
   * Give the client files (identity, known_hosts) to another OS user, for clients that run as
   * that user (archive_command runs as postgres).
   */
  chownClientFiles(uid: number, gid: number): Promise<void>;
  /** Everything sshd has logged so far. */
  log(): string;
  /** Number of successful logins so far (from sshd's log). */
  acceptedLogins(): number;
  stop(): Promise<void>;
}

export interface SshdOptions {
  /** Login user for `user` (default: the current user). */
  user?: string;
  /** Users allowed to log in (default: the current user and 'postgres'). */
  allowUsers?: string[];
}

/** Whether any of `users` has a locked password ('!' or '*LK*') in /etc/shadow (readable as root). */
async function anyLockedAccount(users: string[]): Promise<boolean> {
  let shadow: string;
  try {
    shadow = await readFile('/etc/shadow', 'utf8');
  } catch {
    return false;
  }
  return shadow.split('\n').some((line) => {
    const [name, pw] = line.split(':');
    return name !== undefined && users.includes(name) && pw !== undefined && (pw.startsWith('!') || pw.startsWith('*LK*'));
  });
}

function requireBinary(path: string): void {
  if (!existsSync(path)) throw new Error(`${path} is missing: ${INSTALL_HINT}`);
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = srv.address();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  if (addr === null || typeof addr === 'string') throw new Error('no TCP address');
  return addr.port;
}

function keygen(args: string[]): string {
  const r = spawnSync(SSH_KEYGEN, args, { encoding: 'utf8', timeout: 30_000 });
  if (r.status !== 0) throw new Error(`ssh-keygen ${args.join(' ')} failed: ${r.stderr || r.error?.message || `exit ${r.status}`}`);
  return r.stdout;
}

/** The base64 body of a PEM-like private key file (between the BEGIN and END lines). */
export function privateKeyBody(text: string): string {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('-----'))
    .join('');
}

async function makeKey(dir: string, name: string, type: string, passphrase: string): Promise<{ privateFile: string; publicKey: string }> {
  const privateFile = join(dir, name);
  keygen(['-q', '-t', type, ...(type === 'rsa' ? ['-b', '2048'] : []), '-N', passphrase, '-C', `pgark-test-${name}`, '-f', privateFile]);
  await chmod(privateFile, 0o600);
  const publicKey = (await readFile(`${privateFile}.pub`, 'utf8')).trim();
  return { privateFile, publicKey };
}

export async function startSshd(options: SshdOptions = {}): Promise<SshdServer> {
  requireBinary(SSHD);
  requireBinary(SSH_KEYGEN);
  const me = userInfo().username;
  const user = options.user ?? me;
  const allowUsers = [...new Set(options.allowUsers ?? [me, 'postgres', user])];
  // Privilege separation directory: sshd refuses to start without it.
  if (!existsSync('/run/sshd')) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

  const usePam = await anyLockedAccount(allowUsers);
  const dir = await mkdtemp(join(tmpdir(), 'pgark-sshd-'));
  await chmod(dir, 0o755);
  let child: ChildProcess | undefined;
  try {
    const hostKey = await makeKey(dir, 'ssh_host_ed25519_key', 'ed25519', '');
    const client = await makeKey(dir, 'id_client', 'ed25519', '');
    const authorizedKeys = join(dir, 'authorized_keys');
    await writeFile(authorizedKeys, `${client.publicKey}\n`, { mode: 0o644 });
    const fingerprint = keygen(['-l', '-E', 'sha256', '-f', `${hostKey.privateFile}.pub`]).split(' ')[1] ?? '';
    if (!fingerprint.startsWith('SHA256:')) throw new Error(`unexpected ssh-keygen -l output for the host key`);
    const hostPublicKey = hostKey.publicKey.split(' ').slice(0, 2).join(' ');

    let log = '';
    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      const config = join(dir, 'sshd_config');
      await writeFile(
        config,
        [
          `Port ${port}`,
          'ListenAddress 127.0.0.1',
          `HostKey ${hostKey.privateFile}`,
          `PidFile ${join(dir, 'sshd.pid')}`,
          `AuthorizedKeysFile ${authorizedKeys}`,
          'PubkeyAuthentication yes',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'ChallengeResponseAuthentication no',
          'HostbasedAuthentication no',
          'PermitRootLogin prohibit-password',
          `AllowUsers ${allowUsers.join(' ')}`,
          'StrictModes no',
          `UsePAM ${usePam ? 'yes' : 'no'}`,
          'UseDNS no',
          'PrintMotd no',
          'X11Forwarding no',
          'AllowTcpForwarding no',
          'MaxStartups 100:30:200',
          'MaxSessions 50',
          'LogLevel VERBOSE',
          'Subsystem sftp internal-sftp',
          '',
        ].join('\n'),
      );
      log = '';
      const proc = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
      child = proc;
      proc.stderr?.setEncoding('utf8');
      proc.stderr?.on('data', (d: string) => (log += d));
      const ready = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 15_000);
        const check = (): void => {
          if (/Server listening on 127\.0\.0\.1 port/.test(log)) {
            clearTimeout(timer);
            resolve(true);
          }
        };
        proc.stderr?.on('data', check);
        proc.once('exit', () => {
          clearTimeout(timer);
          resolve(false);
        });
        check();
      });
      if (ready) break;
      proc.kill('SIGKILL');
      child = undefined;
      if (attempt >= 3 || !/Address already in use|Bind to port/i.test(log)) {
        throw new Error(`sshd did not start: ${log.trim() || 'no output'}`);
      }
    }

    const knownHostsFile = join(dir, 'known_hosts');
    await writeFile(knownHostsFile, `[127.0.0.1]:${port} ${hostPublicKey}\n`);
    const identitySecret = privateKeyBody(await readFile(client.privateFile, 'utf8'));
    const proc = child as ChildProcess;
    const exited = new Promise<void>((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) resolve();
      else proc.once('exit', () => resolve());
    });
    // A last attempt if the test process exits without stop() (crash, timeout).
    const onExit = (): void => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    };
    process.once('exit', onExit);

    return {
      host: '127.0.0.1',
      port,
      user,
      identityFile: client.privateFile,
      identitySecret,
      knownHostsFile,
      fingerprint,
      hostPublicKey,
      dir,
      async generateKey(name, opts = {}) {
        const key = await makeKey(dir, name, opts.type ?? 'ed25519', opts.passphrase ?? '');
        if (opts.authorize) await appendFile(authorizedKeys, `${key.publicKey}\n`);
        return key;
      },
      async chownClientFiles(uid, gid) {
        for (const f of [client.privateFile, knownHostsFile]) await chown(f, uid, gid);
      },
      log: () => log,
      acceptedLogins: () => (log.match(/Accepted publickey for /g) ?? []).length,
      async stop() {
        // SIGTERM to the listener; its per-connection children exit when their sockets close.
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
        process.removeListener('exit', onExit);
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    child?.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
