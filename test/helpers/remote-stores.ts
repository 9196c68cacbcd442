/**
 * The stores the end-to-end tests run on, each started on loopback for one test and stopped
 * after it. `env` is what pgark processes need to reach the store: storage settings (PGARK_*)
 * and credentials, given to pgark through the environment (and to PostgreSQL's archive and
 * restore commands through the server's environment), never through argv.
 */
import { chmod, chown, copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startAzurite } from './azurite-server.js';
import { GcsFakeServer } from './gcs-fake-server.js';
import { startS3Server } from './s3-server.js';
import { lookupUser, pgRunAsUser } from './pg-cluster.js';
import { startSshd } from './sshd-server.js';
import { createRepo } from './repo.js';

export interface StartedStore {
  repo: string;
  env: Record<string, string>;
  stop: () => Promise<void>;
}

export interface RemoteStore {
  name: string;
  /**
   * Whether requests are billed units (object stores, and fs for comparison), so the end-to-end
   * test bounds them. SFTP counts every protocol round trip (open, write, fsync, close, rename,
   * mkdir...), which is latency, not money: recorded but not bounded.
   */
  boundRequests: boolean;
  /** Start the store; `work` is a temp dir the run-as user can read. */
  start: (work: string) => Promise<StartedStore>;
}

const fsStore: RemoteStore = {
  name: 'fs',
  boundRequests: true,
  start: async (work) => {
    const repo = join(work, 'repo');
    return { repo, env: {}, stop: async () => undefined };
  },
};

const azureStore: RemoteStore = {
  name: 'azure',
  boundRequests: true,
  start: async () => {
    const server = await startAzurite();
    await server.createContainer('e2e');
    return {
      repo: `azure://${server.account}/e2e/pgark`,
      env: { AZURE_STORAGE_KEY: server.accountKey, PGARK_AZURE_ENDPOINT: server.endpoint },
      stop: () => server.stop(),
    };
  },
};

/** pgark runs as the PostgreSQL OS user; it logs in to sshd as that user too. */
const sshStore: RemoteStore = {
  name: 'ssh',
  boundRequests: false,
  start: async (work) => {
    const runAs = pgRunAsUser();
    const user = runAs ? lookupUser(runAs) : null;
    const server = await startSshd(user ? { user: user.name } : {});
    // The client files go where the run-as user can read them, owned by it, 0600.
    const clientDir = join(work, 'ssh-client');
    await mkdir(clientDir, { mode: 0o700 });
    const identity = join(clientDir, 'id_ed25519');
    const knownHosts = join(clientDir, 'known_hosts');
    await copyFile(server.identityFile, identity);
    await copyFile(server.knownHostsFile, knownHosts);
    const repoDir = join(work, 'ssh-repo');
    await mkdir(repoDir, { mode: 0o700 });
    for (const p of [clientDir, identity, knownHosts, repoDir]) {
      await chmod(p, p === clientDir || p === repoDir ? 0o700 : 0o600);
      if (user) await chown(p, user.uid, user.gid);
    }
    return {
      repo: `ssh://${server.user}@${server.host}:${server.port}${repoDir}`,
      env: { PGARK_SSH_IDENTITY: identity, PGARK_SSH_KNOWN_HOSTS: knownHosts },
      stop: () => server.stop(),
    };
  },
};

const s3Store: RemoteStore = {
  name: 's3',
  boundRequests: true,
  start: async () => {
    const s = await startS3Server();
    return {
      repo: `s3://${s.bucket}/pgark`,
      env: {
        AWS_ACCESS_KEY_ID: s.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s.secretAccessKey,
        PGARK_S3_ENDPOINT: s.endpoint,
        PGARK_S3_PATH_STYLE: 'true',
        PGARK_S3_REGION: 'us-east-1',
      },
      stop: () => s.stop(),
    };
  },
};

/** The GCS JSON API fake (no emulator is installable here), in this process. */
const gcsStore: RemoteStore = {
  name: 'gcs',
  boundRequests: true,
  start: async () => {
    const fake = await GcsFakeServer.start({ buckets: ['e2e'] });
    return { repo: 'gs://e2e/pgark', env: { PGARK_GCS_ENDPOINT: fake.endpoint }, stop: () => fake.stop() };
  },
};

/** Every store starts with its repository created (pgark repo create), as an administrator would. */
function withRepository(store: RemoteStore): RemoteStore {
  return {
    ...store,
    start: async (work) => {
      const started = await store.start(work);
      try {
        await createRepo(started.repo, { env: started.env });
      } catch (err) {
        await started.stop();
        throw err;
      }
      return started;
    },
  };
}

export const REMOTE_STORES: RemoteStore[] = [fsStore, sshStore, s3Store, azureStore, gcsStore].map(withRepository);
