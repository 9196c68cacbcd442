/**
 * Test harness: Azurite's blob service (npm `azurite`, a devDependency) on 127.0.0.1 and a free
 * port, as a child process.
 *
 * - `azurite-blob --blobHost 127.0.0.1 --blobPort 0`: the kernel picks the port, read back from
 *   Azurite's "successfully listens on http://127.0.0.1:<port>" line.
 * - Persistence on disk under a mkdtemp dir (`--location`): Azurite refuses
 *   `--inMemoryPersistence` together with `--location`, and the 160 MiB conformance object is
 *   better on disk than in the memory of a 2-core, shared test machine.
 * - `--silent` (no access log), `--skipApiVersionCheck` (the SDK may be newer than Azurite),
 *   `--disableTelemetry` (no network calls from the test run), `--loose` (ignore headers
 *   Azurite does not know).
 * - The account is the usual `devstoreaccount1`, but its key is generated for this run
 *   (AZURITE_ACCOUNTS), so that it is a real secret the tests can check never leaks.
 * - A missing Azurite FAILS with how to install it (never a skip).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ContainerClient, StorageSharedKeyCredential } from '@azure/storage-blob';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const AZURITE_BLOB = join(root, 'node_modules/.bin/azurite-blob');
const INSTALL_HINT = "run 'npm ci' in the repository (azurite 3.35.0 is a devDependency)";

export const AZURITE_ACCOUNT = 'devstoreaccount1';

export interface AzuriteServer {
  host: string;
  port: number;
  account: string;
  /** The account key generated for this run (base64). */
  accountKey: string;
  /** Path-style blob service URL: http://127.0.0.1:<port>/devstoreaccount1. */
  endpoint: string;
  /** A connection string for the account (AccountName, AccountKey, BlobEndpoint). */
  connectionString: string;
  /** Create a container (ignores one that exists). */
  createContainer(name: string): Promise<void>;
  /** What Azurite printed so far (stdout and stderr). */
  log(): string;
  stop(): Promise<void>;
}

export async function startAzurite(): Promise<AzuriteServer> {
  if (!existsSync(AZURITE_BLOB)) throw new Error(`${AZURITE_BLOB} is missing: ${INSTALL_HINT}`);
  const dir = await mkdtemp(join(tmpdir(), 'pgark-azurite-'));
  const accountKey = randomBytes(64).toString('base64');
  const args = ['--blobHost', '127.0.0.1', '--blobPort', '0', '--location', dir, '--silent', '--skipApiVersionCheck', '--disableTelemetry', '--loose'];
  const child: ChildProcess = spawn(AZURITE_BLOB, args, {
    cwd: dir,
    env: { ...process.env, AZURITE_ACCOUNTS: `${AZURITE_ACCOUNT}:${accountKey}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const stop = async (): Promise<void> => {
    process.removeListener('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`azurite did not start within 30 s: ${output}`)), 30_000);
      const onData = (): void => {
        const m = /successfully listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(output);
        if (m?.[1]) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`unable to start ${AZURITE_BLOB}: ${err.message}; ${INSTALL_HINT}`));
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`azurite exited early (${code ?? signal}): ${output}`));
      });
    });
  } catch (err) {
    await stop();
    throw err;
  }

  const host = '127.0.0.1';
  const endpoint = `http://${host}:${port}/${AZURITE_ACCOUNT}`;
  const credential = new StorageSharedKeyCredential(AZURITE_ACCOUNT, accountKey);
  return {
    host,
    port,
    account: AZURITE_ACCOUNT,
    accountKey,
    endpoint,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${accountKey};BlobEndpoint=${endpoint};`,
    createContainer: async (name) => {
      await new ContainerClient(`${endpoint}/${name}`, credential).createIfNotExists();
    },
    log: () => output,
    stop,
  };
}
