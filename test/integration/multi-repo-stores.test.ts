/**
 * Each repository with its own store settings (issue 18 item 2): `repo` and `repo2` on two
 * s3rver instances with different endpoints, buckets and credentials, from one config file:
 * repo2's endpoint is `repo2-s3-endpoint`, its credentials the profile `repo2-s3-profile` names
 * in an AWS credentials file (repo's come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; each
 * server verifies SigV4 signatures against its own secret, so either set used for the other
 * server fails).
 *
 * PostgreSQL archives to both with `pgark wal-push`; a backup is taken once into repo and
 * `pgark copy --all --to repo2` copies it; then repo's server is stopped and a restore from repo2
 * alone (`--repo <repo2's location>`: that call takes repo2's store settings from the config
 * file, and so does the restore_command it writes) reaches a restore point with exact rows.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { archiveCommand, chownToRunAs, connEnv, destroyAllClusters, makeSharedTempDir, PgCluster, removeSharedTempDir, waitPromoted } from '../helpers/pg-cluster.js';
import { pgark, pgarkOk } from '../helpers/pgark-run.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { expectJsonFormat } from '../helpers/json-schema.js';
import { privateFile } from '../helpers/encryption.js';

let one: S3TestServer;
let two: S3TestServer;
let work: string;
let config: string;
let env: Record<string, string>;
let src: PgCluster;
const repo1 = 's3://pgark-one/first';
const repo2 = 's3://pgark-two/second';

const fingerprint = (c: PgCluster): Promise<string> => c.psql("SELECT count(*) || ':' || md5(string_agg(id || '=' || v, ',' ORDER BY id)) FROM t");

interface Info { wal: { segments: number; timelines: Array<{ last?: string }> } }
const lastWal = async (repo: string): Promise<string | undefined> =>
  expectJsonFormat<Info>((await pgarkOk(['info', '--config', config, '--repo', repo, '--json'], env)).stdout, 'info').wal.timelines[0]?.last;

beforeAll(async () => {
  [one, two] = await Promise.all([startS3Server({ bucket: 'pgark-one' }), startS3Server({ bucket: 'pgark-two' })]);
  work = await makeSharedTempDir('pgark-multi-stores-');
  const secrets = join(work, 'aws');
  await mkdir(secrets, { mode: 0o700 });
  await chownToRunAs(secrets);
  await privateFile(join(secrets, 'credentials'), `[dr-site]\naws_access_key_id = ${two.accessKeyId}\naws_secret_access_key = ${two.secretAccessKey}\n`);
  await privateFile(join(secrets, 'config'), '');
  await writeFile(join(work, 'empty.conf'), '', { mode: 0o644 });
  config = join(work, 'pgark.conf');
  await writeFile(config, [
    '[global]',
    `repo = ${repo1}`,
    `s3-endpoint = ${one.endpoint}`,
    's3-path-style = true',
    's3-region = us-east-1',
    'storage-timeout = 5',
    'retries = 2',
    'retry-budget = 10',
    '[main]',
    `repo2 = ${repo2}`,
    `repo2-s3-endpoint = ${two.endpoint}`,
    'repo2-s3-profile = dr-site',
    '',
  ].join('\n'), { mode: 0o644 });
  // No secret in the config file or on a command line: repo's keys in the environment, repo2's in the credentials file.
  env = {
    AWS_ACCESS_KEY_ID: one.accessKeyId, AWS_SECRET_ACCESS_KEY: one.secretAccessKey,
    AWS_SHARED_CREDENTIALS_FILE: join(secrets, 'credentials'), AWS_CONFIG_FILE: join(secrets, 'config'),
  };
  // `--repo <repo2's location>` with the config file: repo create reaches repo2's own server.
  await pgarkOk(['repo', 'create', '--config', config], env);
  await pgarkOk(['repo', 'create', '--config', config, '--repo', repo2], env);
  src = await PgCluster.create({ name: 'multi-stores', conf: { archive_mode: 'on', archive_command: archiveCommand({ extraArgs: ['--config', config] }), archive_timeout: '0', wal_keep_size: '1GB' } });
  src.serverEnv = { ...env, PGARK_PUSH_AHEAD: '0' };
  await src.start();
  await src.psql('CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 5000) g');
}, 180_000);

afterAll(async () => {
  await destroyAllClusters();
  await Promise.all([one?.stop().catch(() => undefined), two?.stop().catch(() => undefined)]);
  if (work) await removeSharedTempDir(work).catch(() => undefined);
});

describe('two repositories on two S3 servers, each with its own endpoint and credentials', () => {
  it('wal-push stores to both; a backup copied to repo2 restores from repo2 alone', { timeout: 600_000 }, async () => {
    const seg = await src.switchWal();
    await src.waitForArchived(seg, 90_000).catch(async (err: Error) => {
      throw new Error(`${err.message}\n--- server log tail ---\n${await src.readLog(6000)}`);
    });
    expect(await lastWal(repo1)).toBe(seg);
    expect(await lastWal(repo2)).toBe(seg);
    // Each on its own server: repo's objects on one, repo2's on the other.
    const puts = async (s: S3TestServer) => (await s.requests()).filter((r) => r.method === 'PUT').map((r) => decodeURIComponent(r.path));
    expect((await puts(one)).some((p) => p.startsWith('/pgark-one/first/main/wal/') && p.endsWith(seg))).toBe(true);
    expect((await puts(two)).some((p) => p.startsWith('/pgark-two/second/main/wal/') && p.endsWith(seg))).toBe(true);
    expect((await puts(one)).some((p) => p.includes('pgark-two'))).toBe(false);
    // repo2's credentials are the profile's: without it, its server refuses repo's keys.
    const noProfile = await pgark(['info', '--repo', repo2, '--s3-endpoint', two.endpoint, '--s3-path-style', 'true', '--s3-region', 'us-east-1', '--retries', '1', '--config', join(work, 'empty.conf')], { env, allowFail: true });
    expect(noProfile.code, noProfile.stderr).not.toBe(0);

    await pgarkOk(['backup', '--config', config, '--pgdata', src.dataDir, '--type', 'full', '--no-progress'], { ...env, ...connEnv(src) });
    await src.psql("UPDATE t SET v = v || '+' WHERE id % 10 = 0; INSERT INTO t SELECT g, 'after the backup' FROM generate_series(20001, 21000) g");
    const expected = await fingerprint(src);
    await src.psql("SELECT pg_create_restore_point('copied')");
    await src.psql("INSERT INTO t SELECT g, 'after the restore point' FROM generate_series(21001, 22000) g");
    await src.waitForArchived(await src.switchWal(), 120_000);

    const copied = expectJsonFormat<{ backups: string[]; objects: { copied: number; asStored: number } }>((await pgarkOk(['copy', '--all', '--to', 'repo2', '--config', config, '--json'], env)).stdout, 'copy');
    expect(copied.backups).toHaveLength(1);
    expect(copied.objects.copied).toBeGreaterThan(0);
    expect(copied.objects.asStored).toBe(copied.objects.copied);
    // The SDK's notice about a profile next to AWS_ACCESS_KEY_ID stays out of PostgreSQL's log.
    expect(await src.readLog(1_000_000)).not.toContain('Multiple credential sources');
    await src.stop('fast');

    // repo's server is gone: repo2 alone, through its own settings from the config file.
    await one.stop();
    const target = join(work, 'restored');
    await mkdir(target, { mode: 0o700 });
    await chownToRunAs(target);
    await pgarkOk(['restore', 'latest', '--config', config, '--repo', repo2, '--pgdata', target, '--target-name', 'copied', '--target-action', 'promote', '--no-progress'], env);
    const copy = await PgCluster.fromDataDir(target, { name: 'multi-stores-copy', conf: { archive_mode: 'off' } });
    copy.serverEnv = { ...env };
    await copy.start({ timeoutSec: 180 });
    await waitPromoted(copy);
    expect(await fingerprint(copy)).toBe(expected);
    await copy.stop('fast');
  });
});
