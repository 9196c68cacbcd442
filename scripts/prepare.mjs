// npm's `prepare` (npm ci / npm install in a checkout, npm pack): compile with tsc.
// `npm install -g .` from a fresh clone runs this before any dependency is installed, so tsc is
// not there: say what works instead of failing with `tsc: not found`.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
if (!existsSync(tsc)) {
  process.stderr.write(
    'pgark: cannot build here: the dev dependencies (typescript) are not installed.\n' +
    'pgark: install from source with:  npm ci && npm pack && npm install -g ./pgark-<version>.tgz\n' +
    'pgark: or use the release packages: npm run package (README: Install)\n',
  );
  process.exit(1);
}
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
process.exit(r.status ?? 1);
