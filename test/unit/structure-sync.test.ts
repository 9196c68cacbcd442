/** Structure sync (pure parts): pg_dump output parsing and filtering, DSN -> libpq environment, default names. */
import { describe, expect, it } from 'vitest';
import { ConfigError, InvalidInputError } from '../../src/common/errors.js';
import {
  conninfoKeywords, defaultSubscriberName, filterDump, libpqEnvOf, parseDump, referencedTable, sourceConninfoForTarget,
} from '../../src/logical/structure-sync.js';

// Real `pg_dump --schema-only --no-owner --no-privileges --strict-names` output (PostgreSQL 15.18) for
// "Odd"."T*x" (serial, default, index, trigger, comment), pgbench_accounts (FK to pgbench_branches),
// child (FKs to pgbench_accounts and "Odd"."T*x", a rule, a policy, row security, a constraint
// comment) and part1 (a partition); the \restrict key shortened.
const SAMPLE = String.raw`
--
-- PostgreSQL database dump
--

\restrict KEY123

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: T*x; Type: TABLE; Schema: Odd; Owner: -
--

CREATE TABLE "Odd"."T*x" (
    id integer NOT NULL,
    v text DEFAULT 'a'::text
);


--
-- Name: TABLE "T*x"; Type: COMMENT; Schema: Odd; Owner: -
--

COMMENT ON TABLE "Odd"."T*x" IS 'hi';


--
-- Name: T*x_id_seq; Type: SEQUENCE; Schema: Odd; Owner: -
--

CREATE SEQUENCE "Odd"."T*x_id_seq"
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: T*x_id_seq; Type: SEQUENCE OWNED BY; Schema: Odd; Owner: -
--

ALTER SEQUENCE "Odd"."T*x_id_seq" OWNED BY "Odd"."T*x".id;


--
-- Name: child; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.child (
    id integer NOT NULL,
    aid integer,
    oid integer
);


--
-- Name: part1; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.part1 (
    id integer,
    k integer
);


--
-- Name: pgbench_accounts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.pgbench_accounts (
    aid integer NOT NULL,
    bid integer,
    abalance integer,
    filler character(84)
)
WITH (fillfactor='100');


--
-- Name: part1; Type: TABLE ATTACH; Schema: public; Owner: -
--

ALTER TABLE ONLY public.parted ATTACH PARTITION public.part1 FOR VALUES FROM (0) TO (10);


--
-- Name: T*x id; Type: DEFAULT; Schema: Odd; Owner: -
--

ALTER TABLE ONLY "Odd"."T*x" ALTER COLUMN id SET DEFAULT nextval('"Odd"."T*x_id_seq"'::regclass);


--
-- Name: T*x T*x_pkey; Type: CONSTRAINT; Schema: Odd; Owner: -
--

ALTER TABLE ONLY "Odd"."T*x"
    ADD CONSTRAINT "T*x_pkey" PRIMARY KEY (id);


--
-- Name: child child_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.child
    ADD CONSTRAINT child_pkey PRIMARY KEY (id);


--
-- Name: pgbench_accounts pgbench_accounts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.pgbench_accounts
    ADD CONSTRAINT pgbench_accounts_pkey PRIMARY KEY (aid);


--
-- Name: T*x_v_idx; Type: INDEX; Schema: Odd; Owner: -
--

CREATE INDEX "T*x_v_idx" ON "Odd"."T*x" USING btree (v);


--
-- Name: child r; Type: RULE; Schema: public; Owner: -
--

CREATE RULE r AS
    ON UPDATE TO public.child DO INSTEAD NOTHING;


--
-- Name: T*x tr; Type: TRIGGER; Schema: Odd; Owner: -
--

CREATE TRIGGER tr BEFORE INSERT ON "Odd"."T*x" FOR EACH ROW EXECUTE FUNCTION public.f();


--
-- Name: child child_aid_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.child
    ADD CONSTRAINT child_aid_fkey FOREIGN KEY (aid) REFERENCES public.pgbench_accounts(aid);


--
-- Name: CONSTRAINT child_aid_fkey ON child; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON CONSTRAINT child_aid_fkey ON public.child IS 'c';


--
-- Name: child child_oid_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.child
    ADD CONSTRAINT child_oid_fkey FOREIGN KEY (oid) REFERENCES "Odd"."T*x"(id);


--
-- Name: pgbench_accounts pgbench_accounts_bid_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.pgbench_accounts
    ADD CONSTRAINT pgbench_accounts_bid_fkey FOREIGN KEY (bid) REFERENCES public.pgbench_branches(bid);


--
-- Name: child; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.child ENABLE ROW LEVEL SECURITY;

--
-- Name: child p; Type: POLICY; Schema: public; Owner: -
--

CREATE POLICY p ON public.child USING (true);


--
-- PostgreSQL database dump complete
--

\unrestrict KEY123

`;

describe('parseDump', () => {
  const d = parseDump(SAMPLE);
  it('finds every TOC entry in order, with its type and schema', () => {
    expect(d.entries.map((e) => `${e.type}:${e.schema}:${e.name}`)).toEqual([
      'TABLE:Odd:T*x', 'COMMENT:Odd:TABLE "T*x"', 'SEQUENCE:Odd:T*x_id_seq', 'SEQUENCE OWNED BY:Odd:T*x_id_seq',
      'TABLE:public:child', 'TABLE:public:part1', 'TABLE:public:pgbench_accounts', 'TABLE ATTACH:public:part1',
      'DEFAULT:Odd:T*x id', 'CONSTRAINT:Odd:T*x T*x_pkey', 'CONSTRAINT:public:child child_pkey',
      'CONSTRAINT:public:pgbench_accounts pgbench_accounts_pkey', 'INDEX:Odd:T*x_v_idx', 'RULE:public:child r',
      'TRIGGER:Odd:T*x tr', 'FK CONSTRAINT:public:child child_aid_fkey', 'COMMENT:public:CONSTRAINT child_aid_fkey ON child',
      'FK CONSTRAINT:public:child child_oid_fkey', 'FK CONSTRAINT:public:pgbench_accounts pgbench_accounts_bid_fkey',
      'ROW SECURITY:public:child', 'POLICY:public:child p',
    ]);
  });
  it('keeps the session settings in the preamble and drops the psql-only \\restrict lines', () => {
    expect(d.preamble).toContain("SELECT pg_catalog.set_config('search_path', '', false);");
    expect(d.preamble).not.toContain('--');
    expect(d.preamble).toContain("SET default_tablespace = '';"); // emitted just before the first entry's header
    expect(SAMPLE).toContain('\\restrict KEY123');
    expect(d.entries.some((e) => e.sql.includes('\\'))).toBe(false);
  });
  it('gives each entry only its SQL; SETs between entries become glue', () => {
    const table = d.entries[0]!;
    expect(table.sql.startsWith('CREATE TABLE "Odd"."T*x" (')).toBe(true);
    expect(table.sql.endsWith(');')).toBe(true);
    expect(table.glue).toBe('');
    const last = d.entries[d.entries.length - 1]!;
    expect(last.sql).toBe('CREATE POLICY p ON public.child USING (true);');
  });
  it('treats pg_dump session SETs before a header as glue of the previous entry', () => {
    const p = parseDump("SET a = 0;\n\n--\n-- Name: t; Type: TABLE; Schema: s; Owner: -\n--\n\nCREATE TABLE s.t (i int);\n\n\nSET default_tablespace = 'fast';\n\n--\n-- Name: u; Type: TABLE; Schema: s; Owner: -\n--\n\nCREATE TABLE s.u (i int);\n");
    expect(p.preamble).toBe('SET a = 0;');
    expect(p.entries.map((e) => [e.sql, e.glue])).toEqual([
      ['CREATE TABLE s.t (i int);', "SET default_tablespace = 'fast';"],
      ['CREATE TABLE s.u (i int);', ''],
    ]);
  });
  it('does not take a comment string ending in SET-like text for glue', () => {
    const p = parseDump("--\n-- Name: TABLE t; Type: COMMENT; Schema: s; Owner: -\n--\n\nCOMMENT ON TABLE s.t IS 'x\n\nSET a = b;';\n");
    expect(p.entries[0]!.sql).toBe("COMMENT ON TABLE s.t IS 'x\n\nSET a = b;';");
  });
  it('refuses other psql meta-commands', () => {
    expect(() => parseDump('SET a = 0;\n\\connect other\n')).toThrow(/meta-command/);
  });
  it('handles an empty dump', () => {
    expect(parseDump('')).toEqual({ preamble: '', entries: [] });
  });
});

describe('referencedTable', () => {
  it.each<[string, string, { schema: string; table: string } | undefined]>([
    ['plain', 'ADD CONSTRAINT f FOREIGN KEY (bid) REFERENCES public.pgbench_branches(bid);', { schema: 'public', table: 'pgbench_branches' }],
    ['quoted', 'ADD CONSTRAINT f FOREIGN KEY (oid) REFERENCES "Odd"."T*x"(id);', { schema: 'Odd', table: 'T*x' }],
    ['doubled quotes and dots', 'REFERENCES "a""b"."c.d"(id)', { schema: 'a"b', table: 'c.d' }],
    ['ONLY', 'REFERENCES ONLY s.t(id)', { schema: 's', table: 't' }],
    ['space before the column list', 'REFERENCES s.t (id)', { schema: 's', table: 't' }],
    ['no REFERENCES', 'ADD CONSTRAINT c CHECK (x > 0);', undefined],
  ])('%s', (_n, sql, want) => {
    expect(referencedTable(sql)).toEqual(want);
  });
});

describe('filterDump', () => {
  const d = parseDump(SAMPLE);
  const created = ['"Odd"."T*x"', '"public"."child"', '"public"."part1"', '"public"."pgbench_accounts"'];
  it('keeps tables, sequences, defaults, constraints, indexes, their comments and FKs inside the set', () => {
    const f = filterDump(d, new Set(created));
    expect(f.kept.map((k) => `${k.type}:${k.name}`)).toEqual([
      'TABLE:T*x', 'COMMENT:TABLE "T*x"', 'SEQUENCE:T*x_id_seq', 'SEQUENCE OWNED BY:T*x_id_seq', 'TABLE:child', 'TABLE:part1',
      'TABLE:pgbench_accounts', 'DEFAULT:T*x id', 'CONSTRAINT:T*x T*x_pkey', 'CONSTRAINT:child child_pkey',
      'CONSTRAINT:pgbench_accounts pgbench_accounts_pkey', 'INDEX:T*x_v_idx', 'FK CONSTRAINT:child child_aid_fkey',
      'COMMENT:CONSTRAINT child_aid_fkey ON child', 'FK CONSTRAINT:child child_oid_fkey',
    ]);
    expect(f.left.map((l) => `${l.type}:${l.name}`)).toEqual([
      'TABLE ATTACH:part1', 'RULE:child r', 'TRIGGER:T*x tr', 'FK CONSTRAINT:pgbench_accounts pgbench_accounts_bid_fkey', 'ROW SECURITY:child', 'POLICY:child p',
    ]);
    expect(f.left.find((l) => l.type === 'FK CONSTRAINT')!.reason).toMatch(/references public\.pgbench_branches, which is not on the target/);
    expect(f.sql).toContain("SELECT pg_catalog.set_config('search_path', '', false);");
    expect(f.sql).not.toContain('CREATE TRIGGER');
    expect(f.sql).not.toContain('\\');
    expect(f.sql.indexOf('CREATE TABLE "Odd"."T*x"')).toBeLessThan(f.sql.indexOf('ADD CONSTRAINT "T*x_pkey"'));
  });
  it('leaves out a FK (and its comment) whose referenced table is not on the target', () => {
    const f = filterDump(d, new Set(created.filter((t) => t !== '"public"."pgbench_accounts"')));
    const left = f.left.map((l) => l.name);
    expect(left).toContain('child child_aid_fkey');
    expect(left).toContain('CONSTRAINT child_aid_fkey ON child');
    expect(left).not.toContain('child child_oid_fkey');
  });
  it('keeps the glue SETs of entries it leaves out', () => {
    const p = parseDump("--\n-- Name: t tr; Type: TRIGGER; Schema: s; Owner: -\n--\n\nCREATE TRIGGER tr x;\n\nSET default_tablespace = '';\n\n--\n-- Name: u; Type: TABLE; Schema: s; Owner: -\n--\n\nCREATE TABLE s.u (i int);\n");
    expect(filterDump(p, new Set()).sql).toBe("SET default_tablespace = '';\n\nCREATE TABLE s.u (i int);\n");
  });
});

describe('connection strings', () => {
  it.each<[string, string, Record<string, string>]>([
    ['keyword/value', "host=db1 port=5433 dbname='my db' user=alice sslmode=require", { PGHOST: 'db1', PGPORT: '5433', PGDATABASE: 'my db', PGUSER: 'alice', PGSSLMODE: 'require' }],
    ['socket directory', 'host=/var/run/postgresql', { PGHOST: '/var/run/postgresql' }],
    ['keepalives have no variable', 'host=h keepalives=1', { PGHOST: 'h' }],
    ['URI', 'postgresql://bob@db2:6543/app%20db?sslmode=verify-full&application_name=x', { PGHOST: 'db2', PGPORT: '6543', PGUSER: 'bob', PGDATABASE: 'app db', PGSSLMODE: 'verify-full', PGAPPNAME: 'x' }],
    ['URI with a socket host parameter', 'postgres:///app?host=/tmp&port=5555', { PGHOST: '/tmp', PGPORT: '5555', PGDATABASE: 'app' }],
    ['URI with IPv6', 'postgresql://[::1]:5432/x', { PGHOST: '::1', PGPORT: '5432', PGDATABASE: 'x' }],
    ['empty', '', {}],
  ])('%s -> libpq environment', (_n, dsn, env) => {
    expect(libpqEnvOf(dsn)).toEqual(env);
  });
  it.each(['host=h password=secret', 'postgresql://u:secret@h/db', 'postgresql://h/db?password=secret'])('refuses a password: %s', (dsn) => {
    expect(() => libpqEnvOf(dsn)).toThrow(ConfigError);
    try {
      libpqEnvOf(dsn);
    } catch (e) {
      expect((e as Error).message).not.toContain('secret');
    }
  });
  it('refuses unknown keywords', () => {
    expect(() => conninfoKeywords('postgresql://h/db?bogus=1')).toThrow(/unknown parameter "bogus"/);
    expect(() => conninfoKeywords('host=h bogus=1')).toThrow(/unknown keyword/);
  });
  it('uses the source DSN as given for the target server', () => {
    expect(sourceConninfoForTarget(' host=src dbname=app ', {})).toBe('host=src dbname=app');
    expect(() => sourceConninfoForTarget('host=src password=x', {})).toThrow(/password/);
  });
  it('builds the source connection string from the libpq environment, without a password', () => {
    expect(sourceConninfoForTarget(undefined, { PGHOST: '10.0.0.1', PGPORT: '5432', PGUSER: "o'neil", PGDATABASE: 'a b', PGPASSWORD: 'pw', PGAPPNAME: 'x' }))
      .toBe("host='10.0.0.1' port='5432' dbname='a b' user='o\\'neil'");
    expect(() => sourceConninfoForTarget(undefined, { PGUSER: 'u' })).toThrow(/--source/);
  });
});

describe('defaultSubscriberName', () => {
  it.each<[string, string, string]>([
    ['plain', 'reporting', 'reporting'],
    ['upper case and dashes', 'Sales-EU', 'sales_eu'],
    ['leading digit', '2024data', 'db_2024data'],
    ['only symbols', '---', 'db'],
    ['long names fit the slot name', 'x'.repeat(80), 'x'.repeat(40)],
  ])('%s', (_n, db, want) => {
    expect(defaultSubscriberName(db, 'cookbook')).toBe(want);
  });
  it('leaves room for a long set name in the 63-character slot name', () => {
    const set = 's'.repeat(40);
    const name = defaultSubscriberName('y'.repeat(60), set);
    expect(`pgark_${set}_${name}`.length).toBeLessThanOrEqual(63);
    expect(name).toBe('y'.repeat(16));
  });
});
