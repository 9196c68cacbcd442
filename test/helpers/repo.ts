/**
 * The one place tests create a pgark repository: `pgark repo create`, as a DBA does before first
 * use (every other command refuses a location without the repository marker, exit 9). Call it
 * wherever a test starts a fresh repository; remote stores pass their settings in `env`/`args`.
 */
import { pgark } from './pgark-run.js';

export async function createRepo(repo: string, o: { env?: Record<string, string>; args?: string[] } = {}): Promise<string> {
  await pgark(['repo', 'create', '--repo', repo, ...(o.args ?? [])], { env: o.env ?? {} });
  return repo;
}
