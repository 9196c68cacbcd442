/**
 * Every setting of src/config/schema.ts is documented where schema.ts says: README.md's
 * "Configuration reference" table (flag, environment variable) for the general ones, and the
 * store's page docs/storage/<driver>.md for the ssh-, s3-, azure- and gcs- ones.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../../src/config/schema.js';

const root = new URL('../../', import.meta.url);
const read = (p: string) => readFileSync(new URL(p, root), 'utf8');
const readme = read('README.md');
const reference = readme.slice(readme.indexOf('### Configuration reference'), readme.indexOf('### Exit codes'));
const DRIVER_PAGE: Record<string, string> = { ssh: 'ssh', s3: 's3', azure: 'azure', gcs: 'gcs' };

describe('settings reference', () => {
  it('the README section exists', () => {
    expect(reference.length).toBeGreaterThan(500);
  });

  it.each(SETTINGS.map((s) => [s.key, s.env] as const))('%s (%s) is documented', (key, env) => {
    const driver = DRIVER_PAGE[key.split('-')[0]!];
    if (driver !== undefined) {
      const page = read(`docs/storage/${driver}.md`);
      expect(page, `docs/storage/${driver}.md`).toContain(key);
      expect(page, `docs/storage/${driver}.md`).toContain(env);
      return;
    }
    // A row names the flag (`--key`) or, for file-only settings, the key; `--retain-daily`,
    // `-weekly`, `-monthly` share one row (environment `PGARK_RETAIN_DAILY`, ...).
    const tier = /^retain-(weekly|monthly)$/.exec(key);
    const names = tier ? [`\`-${tier[1]}\``] : [`\`--${key}\``, `\`${key}\``];
    expect(names.some((n) => reference.includes(n)), `${names.join(' or ')} in README.md's Configuration reference`).toBe(true);
    expect(reference).toContain(tier ? '`PGARK_RETAIN_DAILY`, ...' : `\`${env}\``);
  });
});
