import { readFileSync } from 'node:fs';

/** Version from package.json; works from src/ (tests) and dist/src/ (the installed CLI). */
function readVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'pgark' && pkg.version) return pkg.version;
    } catch {
      // try the next location
    }
  }
  return 'unknown';
}

export const PGARK_VERSION: string = readVersion();
