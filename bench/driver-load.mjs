#!/usr/bin/env node
/**
 * Start-up cost per storage scheme: archive_command starts one process per WAL segment, so the
 * time to load a driver is paid for every segment. For each scheme this measures, in fresh
 * processes (median of N runs, interleaved so machine noise hits every scheme alike):
 *
 *   - `node -e 0`                                   the floor: a Node.js process
 *   - `node bin/pgark.js version`                   the CLI without any driver
 *   - `node -e "import('<dist>/storage-drivers/registry.js').then(r => r.openDriver(URL))"`
 *                                                   registry + driver module + SDK load and driver construction
 *
 * Driver construction opens no connection (drivers connect on first use), so this is load time
 * only. Writes bench/results/driver-load.md (or --out FILE; --no-write prints only).
 *
 *   node bench/driver-load.mjs [--runs 15] [--out FILE] [--no-write]
 */
import { spawnSync } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const runs = Number(opt('--runs', '15'));
const out = opt('--out', join(root, 'bench/results/driver-load.md'));
const write = !args.includes('--no-write');

const registry = pathToFileURL(join(root, 'dist/storage-drivers/registry.js')).href;
const work = mkdtempSync(join(tmpdir(), 'pgark-driverload-'));
// Settings and environment that let each driver construct without a reachable server.
const env = {
  ...process.env,
  AWS_ACCESS_KEY_ID: 'bench',
  AWS_SECRET_ACCESS_KEY: 'bench-secret',
  AWS_REGION: 'us-east-1',
  AZURE_STORAGE_KEY: Buffer.from('bench-key').toString('base64'),
  STORAGE_EMULATOR_HOST: 'http://127.0.0.1:9',
};
const schemes = [
  ['fs', `file://${work}/repo`, {}],
  ['ssh', 'ssh://bench@127.0.0.1:9/srv/pgark', { 'ssh-host-key-fingerprint': 'SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU' }],
  ['s3', 's3://bench-bucket/pgark', { 's3-endpoint': 'http://127.0.0.1:9', 's3-path-style': 'true' }],
  ['azure', 'azure://devstoreaccount1/bench/pgark', { 'azure-endpoint': 'http://127.0.0.1:9/devstoreaccount1' }],
  ['gcs', 'gs://bench-bucket/pgark', { 'gcs-endpoint': 'http://127.0.0.1:9' }],
];

function timeOnce(argv) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, argv, { env, cwd: root, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status}): ${r.stderr.slice(0, 2000)}`);
  return ms;
}

const cases = [
  ['node -e 0', ['-e', '0']],
  ['pgark version (no driver)', [join(root, 'bin/pgark.js'), 'version']],
  ...schemes.map(([name, url, settings]) => [
    `load + construct ${name} driver`,
    ['--input-type=module', '-e', `const r = await import(${JSON.stringify(registry)}); const d = await r.openDriver(${JSON.stringify(url)}, { settings: ${JSON.stringify(settings)} }); await d.close();`],
  ]),
];

const samples = new Map(cases.map(([label]) => [label, []]));
const load = loadavg();
for (const [, argv] of cases) timeOnce(argv); // warm the page cache
for (let i = 0; i < runs; i++) for (const [label, argv] of cases) samples.get(label).push(timeOnce(argv));
rmSync(work, { recursive: true, force: true });

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p90 = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)];
const floor = median(samples.get('node -e 0'));
const rows = cases.map(([label]) => {
  const xs = samples.get(label);
  return `| ${label} | ${median(xs).toFixed(0)} | ${p90(xs).toFixed(0)} | ${(median(xs) - floor).toFixed(0)} |`;
});
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const git = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).stdout.trim();
const report = `<!-- GENERATED: everything below is rewritten by bench/driver-load.mjs -->

# Storage driver start-up cost

- date: ${new Date().toISOString()}; machine: ${cpus()[0]?.model ?? '?'}, nproc ${cpus().length}, RAM ${(totalmem() / 2 ** 30).toFixed(1)} GiB, load average at start ${load.map((x) => x.toFixed(2)).join(' ')}
- node ${process.version}; pgark ${pkg.version}, git ${git}; ssh2 ${pkg.dependencies.ssh2}, @aws-sdk/client-s3 ${pkg.dependencies['@aws-sdk/client-s3']}, @azure/storage-blob ${pkg.dependencies['@azure/storage-blob']}, @google-cloud/storage ${pkg.dependencies['@google-cloud/storage']}
- command: \`node bench/driver-load.mjs --runs ${runs}\`; ${runs} runs per case, interleaved, wall time of a fresh process

| case | median ms | p90 ms | over \`node -e 0\`, ms |
|---|---|---|---|
${rows.join('\n')}

"load + construct" imports the registry, the driver module and its SDK, and constructs the driver
(no connection is opened until the first operation). A \`wal-push\` on that scheme pays this on top
of the CLI's own start-up.
`;
process.stdout.write(report);
if (write) {
  let head = '';
  try {
    const old = readFileSync(out, 'utf8');
    const i = old.indexOf('<!-- GENERATED');
    if (i > 0) head = old.slice(0, i);
  } catch {}
  writeFileSync(out, head + report);
  process.stdout.write(`wrote ${out}\n`);
}
