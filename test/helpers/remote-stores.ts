/**
 * The stores the end-to-end tests run on, each started on loopback for one test and stopped
 * after it. `env` is what pgark processes need to reach the store: storage settings (PGARK_*)
 * and credentials, given to pgark through the environment (and to PostgreSQL's archive and
 * restore commands through the server's environment), never through argv.
 */
import { join } from 'node:path';
import { startAzurite } from './azurite-server.js';

export interface StartedStore {
  repo: string;
  env: Record<string, string>;
  stop: () => Promise<void>;
}

export interface RemoteStore {
  name: string;
  /** Start the store; `work` is a temp dir the run-as user can read. */
  start: (work: string) => Promise<StartedStore>;
}

const fsStore: RemoteStore = {
  name: 'fs',
  start: async (work) => {
    const repo = join(work, 'repo');
    return { repo, env: {}, stop: async () => undefined };
  },
};

const azureStore: RemoteStore = {
  name: 'azure',
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

export const REMOTE_STORES: RemoteStore[] = [fsStore, azureStore];
