import { parse } from 'pg-connection-string';
import { describe, expect, it } from 'vitest';
import { ConfigError, ExitCode, InvalidInputError } from '../../src/common/errors.js';
import { assertNoPassword, conninfoHasPassword, conninfoToUri, isConninfoUri, parseConninfo } from '../../src/pg/conninfo.js';

describe('parseConninfo', () => {
  it.each<[string, string, [string, string][]]>([
    ['empty', '', []],
    ['only spaces', '  \t\n ', []],
    ['one pair', 'host=localhost', [['host', 'localhost']]],
    ['several pairs', 'host=db1 port=5433 dbname=app user=alice', [['host', 'db1'], ['port', '5433'], ['dbname', 'app'], ['user', 'alice']]],
    ['spaces around =', 'host = db1   port= 5433 user =alice', [['host', 'db1'], ['port', '5433'], ['user', 'alice']]],
    ['tabs and newlines between pairs', '\thost=db1\n\nport=5433\t', [['host', 'db1'], ['port', '5433']]],
    ['quoted value with spaces', "dbname='my db' user=bob", [['dbname', 'my db'], ['user', 'bob']]],
    ['quoted value with an escaped quote', "application_name='it\\'s'", [['application_name', "it's"]]],
    ['quoted value with an escaped backslash', "options='a\\\\b'", [['options', 'a\\b']]],
    ['escaped backslash just before the closing quote', "options='a\\\\' port=1", [['options', 'a\\'], ['port', '1']]],
    ['quoted value with = and spaces', "options='-c search_path=a,b -c x=y'", [['options', '-c search_path=a,b -c x=y']]],
    ['empty quoted value', "application_name='' port=5432", [['application_name', ''], ['port', '5432']]],
    ['quoted value followed directly by the next key', "dbname='a'port=5", [['dbname', 'a'], ['port', '5']]],
    ['space around = before a quote', "dbname = 'x y'", [['dbname', 'x y']]],
    ['escaped space in an unquoted value', 'dbname=my\\ db', [['dbname', 'my db']]],
    ['escaped quote in an unquoted value', "user=o\\'neil", [['user', "o'neil"]]],
    ['unix socket directory', 'host=/var/run/postgresql port=5433', [['host', '/var/run/postgresql'], ['port', '5433']]],
    ['IPv6 address', 'hostaddr=::1', [['hostaddr', '::1']]],
    ['the last of a repeated keyword wins', 'port=1 port=2', [['port', '2']]],
    ['all the ssl keywords', 'sslmode=verify-full sslcert=/c sslkey=/k sslrootcert=/r sslcrl=/l',
      [['sslmode', 'verify-full'], ['sslcert', '/c'], ['sslkey', '/k'], ['sslrootcert', '/r'], ['sslcrl', '/l']]],
    ['replication and keepalives', 'replication=true keepalives=1 keepalives_idle=30 keepalives_interval=5 keepalives_count=3',
      [['replication', 'true'], ['keepalives', '1'], ['keepalives_idle', '30'], ['keepalives_interval', '5'], ['keepalives_count', '3']]],
    ['other accepted keywords', 'connect_timeout=10 target_session_attrs=read-write client_encoding=UTF8',
      [['connect_timeout', '10'], ['target_session_attrs', 'read-write'], ['client_encoding', 'UTF8']]],
  ])('%s', (_label, text, expected) => {
    expect([...parseConninfo(text)]).toEqual(expected);
  });

  it.each<[string, string, RegExp]>([
    ['unknown keyword', 'host=a colour=blue', /unknown keyword "colour"/],
    ['misspelt keyword', 'dbnmae=x', /unknown keyword "dbnmae"/],
    ['keyword in the wrong case', 'Host=a', /unknown keyword "Host"/],
    ['missing =', 'host', /missing "=" after "host"/],
    ['missing = before a value', 'host localhost', /missing "=" after "host"/],
    ['missing = in the second pair', 'host=a port', /missing "=" after "port"/],
    ['empty keyword', '=x', /unknown keyword ""/],
    ['unterminated quote', "dbname='my db", /unterminated quoted value/],
    ['unterminated quote after an escaped quote', "dbname='x\\'", /unterminated quoted value/],
    ['quote opened at the very end', "dbname='", /unterminated quoted value/],
    ['a URI is not keyword/value', 'postgres://h/db', /missing "=" after "postgres:\/\/h\/db"/],
  ])('rejects: %s', (_label, text, message) => {
    expect(() => parseConninfo(text)).toThrow(InvalidInputError);
    expect(() => parseConninfo(text)).toThrow(message);
  });

  it('shortens very long keywords in messages', () => {
    const key = 'x'.repeat(500);
    expect(() => parseConninfo(`${key}=1`)).toThrow(/unknown keyword "x{40}"$/);
  });
});

describe('isConninfoUri', () => {
  it.each<[string, boolean]>([
    ['postgres://h/db', true],
    ['postgresql://h/db', true],
    ['  PostgreSQL://h/db', true],
    ['host=h', false],
    ['postgres:/h', false],
    ['mysql://h/db', false],
    ['', false],
  ])('%j -> %s', (text, expected) => {
    expect(isConninfoUri(text)).toBe(expected);
  });
});

describe('conninfoToUri', () => {
  it.each<[string, string, string]>([
    ['a URI is returned unchanged', 'postgres://alice@db1:5433/app?sslmode=require', 'postgres://alice@db1:5433/app?sslmode=require'],
    ['a URI is only trimmed', '  postgresql://db1/app \n', 'postgresql://db1/app'],
    ['empty string: all defaults', '', 'postgresql:///'],
    ['host name', 'host=db1.example.com', 'postgresql://db1.example.com/'],
    ['host and port', 'host=db1 port=5433', 'postgresql://db1:5433/'],
    ['host, port, user, dbname', 'host=db1 port=5433 user=alice dbname=app', 'postgresql://alice@db1:5433/app'],
    ['IPv6 host', 'host=::1 port=5433', 'postgresql://[::1]:5433/'],
    ['IPv6 hostaddr', 'hostaddr=fd00::5 dbname=app', 'postgresql://[fd00::5]/app'],
    ['IPv4 hostaddr', 'hostaddr=10.0.0.5', 'postgresql://10.0.0.5/'],
    ['host wins over hostaddr', 'host=db1 hostaddr=10.0.0.5', 'postgresql://db1/'],
    ['unix socket directory', 'host=/var/run/postgresql dbname=app', 'postgresql:///app?host=%2Fvar%2Frun%2Fpostgresql'],
    ['unix socket directory and port', 'host=/tmp port=5433 user=alice', 'postgresql://alice@/?host=%2Ftmp&port=5433'],
    ['port alone', 'port=5433', 'postgresql:///?port=5433'],
    ['dbname with spaces', "host=db1 dbname='my db'", 'postgresql://db1/my%20db'],
    ['dbname with characters kept as they are in the path', "host=db1 dbname='a/b@c:d+e,f;g=h&i$j'", 'postgresql://db1/a/b@c:d+e,f;g=h&i$j'],
    ['dbname with ? # % and non-ASCII, encoded', "host=db1 dbname='a?b#c%d é'", 'postgresql://db1/a%3Fb%23c%25d%20%C3%A9'],
    ['user with @ and :', "host=db1 user='a@b:c'", 'postgresql://a%40b%3Ac@db1/'],
    ['sslmode and application_name', "host=db1 sslmode=verify-full application_name='pgark receive'", 'postgresql://db1/?sslmode=verify-full&application_name=pgark+receive'],
    ['options with = and spaces', "host=db1 options='-c a=b'", 'postgresql://db1/?options=-c+a%3Db'],
    ['replication parameter', 'host=db1 replication=true', 'postgresql://db1/?replication=true'],
  ])('%s', (_label, text, expected) => {
    expect(conninfoToUri(text)).toBe(expected);
  });

  it('passes parse errors on', () => {
    expect(() => conninfoToUri('host=db1 bogus=1')).toThrow(InvalidInputError);
    expect(() => conninfoToUri("dbname='x")).toThrow(InvalidInputError);
  });

  // What pg makes of the URIs (it parses them with pg-connection-string).
  it.each<[string, string, { host?: string | null; port?: string | null; user?: string; database?: string | null; sslmode?: string; application_name?: string; options?: string }]>([
    ['host name and port', 'host=db1.example.com port=5433', { host: 'db1.example.com', port: '5433', database: null }],
    ['everything', 'host=db1 port=6432 user=alice dbname=app', { host: 'db1', port: '6432', user: 'alice', database: 'app' }],
    ['spaces around = and quotes', "host = db1 port = 5433 user = 'alice' dbname = 'app'", { host: 'db1', port: '5433', user: 'alice', database: 'app' }],
    ['IPv6 host', 'host=::1 port=5433 dbname=app', { host: '::1', port: '5433', database: 'app' }],
    ['IPv6 hostaddr', 'hostaddr=fd00::5', { host: 'fd00::5' }],
    ['unix socket directory', 'host=/var/run/postgresql dbname=app', { host: '/var/run/postgresql', database: 'app' }],
    ['unix socket directory, port and user', 'host=/tmp port=5433 user=alice dbname=app', { host: '/tmp', port: '5433', user: 'alice', database: 'app' }],
    ['port and user without host', 'port=5433 user=alice', { port: '5433', user: 'alice' }],
    ['dbname with spaces', "host=db1 dbname='my db'", { host: 'db1', database: 'my db' }],
    ['dbname with a quote and a percent sign', "host=db1 dbname='it\\'s 100%'", { host: 'db1', database: "it's 100%" }],
    ['dbname with / @ : + , ; = & $', "host=db1 dbname='a/b@c:d+e,f;g=h&i$j'", { host: 'db1', database: 'a/b@c:d+e,f;g=h&i$j' }],
    ['dbname with @ and a user, no host', "user=alice dbname='x@y'", { user: 'alice', database: 'x@y' }],
    ['dbname with non-ASCII characters', "host=db1 dbname='base données'", { host: 'db1', database: 'base données' }],
    ['user with @ and :', "host=db1 user='a@b:c'", { host: 'db1', user: 'a@b:c' }],
    ['user with spaces', "host=db1 user='Alice Smith'", { host: 'db1', user: 'Alice Smith' }],
    ['sslmode', 'host=db1 sslmode=require', { host: 'db1', sslmode: 'require' }],
    ['application_name with spaces', "host=db1 application_name='pgark receive 1'", { host: 'db1', application_name: 'pgark receive 1' }],
    ['options with = and spaces', "host=db1 options='-c a=b -c c=d'", { host: 'db1', options: '-c a=b -c c=d' }],
  ])('pg-connection-string reads back: %s', (_label, text, expected) => {
    const parsed = parse(conninfoToUri(text));
    const picked: Record<string, unknown> = {};
    for (const k of Object.keys(expected)) picked[k] = (parsed as Record<string, unknown>)[k];
    expect(picked).toEqual(expected);
  });
});

// The one check every command runs on --dsn, --source, --target and --primary-conninfo.
describe('assertNoPassword', () => {
  it.each([
    'host=db1 user=replicator',
    'host=db1 user=replicator passfile=/var/lib/postgresql/.pgpass',
    'postgresql://replicator@db1:5432/postgres',
    'postgresql://db1:5432/postgres?application_name=a',
    'postgres://[::1]:5432/db',
    'host=db1 application_name=clone1 sslmode=require',
    "host=db1 dbname='password'",
    'host=db1 application_name=nopassword',
    '',
  ])('accepts %j', (c) => {
    expect(conninfoHasPassword(c)).toBe(false);
    expect(() => assertNoPassword(c, '--primary-conninfo')).not.toThrow();
  });

  it.each([
    'host=db1 user=r password=secret',
    'host=db1 user=r PASSWORD = secret',
    "host=db1 password='s e c'",
    'password=secret',
    'host=db1 password=',
    'host=db1 sslpassword=secret',
    'host=db1 unknownkeyword=1 password=secret',
    'postgresql://r:secret@db1/postgres',
    'POSTGRES://r:secret@db1:5432/postgres',
    'postgresql://r:sec/ret@db1/postgres',
    'postgresql://r@db1/postgres?password=secret',
    'postgresql://r@db1/postgres?sslmode=require&PassWord=secret',
    'postgresql://r@db1/postgres?sslpassword=secret',
    'postgresql://r:secret@db1,db2/postgres',
  ])('refuses %j with exit 2, naming .pgpass and PGPASSFILE, without echoing it', (c) => {
    expect(conninfoHasPassword(c)).toBe(true);
    let caught: unknown;
    try {
      assertNoPassword(c, '--dsn');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).exitCode).toBe(ExitCode.USAGE);
    expect((caught as Error).message).toMatch(/^--dsn must not contain a password .*\.pgpass.*PGPASSFILE/);
    expect((caught as Error).message).not.toMatch(/secret|s e c/);
  });

  it('an absent connection string is fine', () => {
    expect(() => assertNoPassword(undefined)).not.toThrow();
  });
});
