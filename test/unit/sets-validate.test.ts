/** Set validation (pure): names, options, publication SQL, and the rules that refuse a set. */
import { describe, expect, it } from 'vitest';
import { planCreate } from '../../src/logical/sets-admin.js';
import { qualified, quoteIdent, quoteLiteral } from '../../src/logical/set-catalog.js';
import type { SetScope } from '../../src/logical/set-meta.js';
import {
  buildSetTables, coverageProblems, createPublicationSql, parseColumnList, parseSize, parseTableList, parseTableName,
  serverProblems, tableProblems, throwProblems, varAttnums, type ServerFacts,
} from '../../src/logical/set-validate.js';

describe('quoting', () => {
  it.each([
    ['t', '"t"'],
    ['a"b', '"a""b"'],
    ['Mixed Case', '"Mixed Case"'],
  ])('quoteIdent(%s)', (i, o) => expect(quoteIdent(i)).toBe(o));
  it('quoteLiteral doubles quotes and escapes backslashes', () => {
    expect(quoteLiteral("it's")).toBe("'it''s'");
    expect(quoteLiteral('a\\b')).toBe("E'a\\\\b'");
  });
  it('qualified', () => expect(qualified({ schema: 's', table: 'T' })).toBe('"s"."T"'));
});

describe('parseTableName', () => {
  it.each([
    ['pgbench_accounts', { schema: 'public', table: 'pgbench_accounts' }],
    ['Sales.Orders', { schema: 'sales', table: 'orders' }],
    ['"Sales"."Big Orders"', { schema: 'Sales', table: 'Big Orders' }],
    [' a.b ', { schema: 'a', table: 'b' }],
    ['"a""b"', { schema: 'public', table: 'a"b' }],
  ])('%s', (text, want) => expect(parseTableName(text)).toEqual(want));
  it.each(['', 'a.b.c', '1abc', '"open', 'a b', 'a;drop'])('refuses %j', (text) => expect(() => parseTableName(text)).toThrow(/invalid table name/));
});

describe('lists and options', () => {
  it('parses table lists and refuses duplicates', () => {
    expect(parseTableList('a, s.b')).toEqual([{ schema: 'public', table: 'a' }, { schema: 's', table: 'b' }]);
    expect(() => parseTableList('a,public.a')).toThrow(/listed twice/);
    expect(() => parseTableList(' , ')).toThrow(/at least one/);
  });
  it('parses column lists', () => {
    expect(parseColumnList('aid, Bid,"X y"')).toEqual(['aid', 'bid', 'X y']);
    expect(() => parseColumnList('a,a')).toThrow(/twice/);
  });
  it('merges row filters and column lists into the listed tables', () => {
    const t = buildSetTables(parseTableList('pgbench_accounts,pgbench_history'), ['pgbench_accounts:bid = 1 AND abalance::int > 0'], ['pgbench_history:tid,bid']);
    expect(t).toEqual([
      { schema: 'public', table: 'pgbench_accounts', rowFilter: 'bid = 1 AND abalance::int > 0' },
      { schema: 'public', table: 'pgbench_history', columns: ['tid', 'bid'] },
    ]);
  });
  it.each([
    [['other:x = 1'], [], /not in --tables/],
    [['a:x = 1', 'a:y = 2'], [], /two row filters/],
    [['a'], [], /expected 'table:expression'/],
    [[], ['a:'], /expected 'table:c1,c2'/],
  ])('refuses bad filters %j %j', (rf, cols, re) => expect(() => buildSetTables(parseTableList('a'), rf, cols)).toThrow(re));
  it.each([
    ['1GB', 1024 ** 3],
    ['512MB', 512 * 1024 ** 2],
    ['100kB', 102400],
    ['1048576', 1048576],
    ['1.5G', 1.5 * 1024 ** 3],
  ])('parseSize(%s)', (t, n) => expect(parseSize(t, '--retain-warn')).toBe(n));
  it('parseSize refuses junk', () => expect(() => parseSize('lots', '--retain-warn')).toThrow(/--retain-warn/));
});

describe('planCreate', () => {
  it('needs exactly one scope', () => {
    expect(() => planCreate({ set: 's' })).toThrow(/exactly one of/);
    expect(() => planCreate({ set: 's', tables: 'a', allTables: true })).toThrow(/exactly one of/);
  });
  it('refuses filters outside --tables', () => {
    expect(() => planCreate({ set: 's', schema: 'x', rowFilters: ['a:b=1'] })).toThrow(/--row-filter and --columns/);
  });
  it('scopes', () => {
    expect(planCreate({ set: 's', allTables: true }).scope).toEqual({ kind: 'all-tables' });
    expect(planCreate({ set: 's', schema: 'a, "B"' }).scope).toEqual({ kind: 'schema', schemas: ['a', 'B'] });
    expect(planCreate({ set: 's', tables: 'x' }).tables).toEqual([{ schema: 'public', table: 'x' }]);
  });
});

describe('createPublicationSql', () => {
  it.each<[SetScope, string]>([
    [{ kind: 'all-tables' }, `CREATE PUBLICATION "pgark_s" FOR ALL TABLES WITH (publish = 'insert, update')`],
    [{ kind: 'schema', schemas: ['a', 'b'] }, `CREATE PUBLICATION "pgark_s" FOR TABLES IN SCHEMA "a", "b" WITH (publish = 'insert, update')`],
    [{ kind: 'tables' }, `CREATE PUBLICATION "pgark_s" FOR TABLE "public"."t" ("id", "v") WHERE (id > 5), "x"."y" WITH (publish = 'insert, update')`],
  ])('%j', (scope, sql) => {
    const tables = [{ schema: 'public', table: 't', columns: ['id', 'v'], rowFilter: 'id > 5' }, { schema: 'x', table: 'y' }];
    expect(createPublicationSql('pgark_s', scope, tables, ['insert', 'update'])).toBe(sql);
  });
});

const server: ServerFacts = { versionNum: 150004, walLevel: 'logical', maxReplicationSlots: 10, usedSlots: 1, maxWalSenders: 10, usedWalSenders: 0 };

describe('serverProblems', () => {
  it('accepts a logical server with room', () => expect(serverProblems(server, { needSlot: true, filtersOrColumns: true })).toEqual([]));
  it('explains wal_level and the restart', () => {
    const p = serverProblems({ ...server, walLevel: 'replica' }, { needSlot: false, filtersOrColumns: false });
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/wal_level is 'replica'.*ALTER SYSTEM SET wal_level = logical.*restart/);
  });
  it('no free slot or sender', () => {
    const p = serverProblems({ ...server, usedSlots: 10, usedWalSenders: 10 }, { needSlot: true, filtersOrColumns: false });
    expect(p.join('\n')).toMatch(/max_replication_slots = 10, 10 in use/);
    expect(p.join('\n')).toMatch(/max_wal_senders = 10/);
    expect(serverProblems({ ...server, usedSlots: 10 }, { needSlot: false, filtersOrColumns: false })).toEqual([]);
  });
  it('filters need 15', () => expect(serverProblems({ ...server, versionNum: 140010 }, { needSlot: false, filtersOrColumns: true })[0]).toMatch(/PostgreSQL 15.*runs 14/));
});

describe('tableProblems', () => {
  const tables = [
    { schema: 'public', table: 'pk', exists: true, replident: 'd' as const, hasIdentityIndex: true },
    { schema: 'public', table: 'nopk', exists: true, replident: 'd' as const, hasIdentityIndex: false },
    { schema: 'public', table: 'full', exists: true, replident: 'f' as const, hasIdentityIndex: false },
    { schema: 'public', table: 'nothing', exists: true, replident: 'n' as const, hasIdentityIndex: false },
    { schema: 'x', table: 'gone', exists: false },
  ];
  it('names missing tables and tables without identity', () => {
    const p = tableProblems(tables, ['insert', 'update', 'delete']);
    expect(p[0]).toBe('table not found on the source: x.gone');
    expect(p[1]).toMatch(/without a primary key or replica identity: public.nopk, public.nothing; replicating update and delete/);
    expect(p[1]).toMatch(/ALTER TABLE "public"."nopk" REPLICA IDENTITY/);
  });
  it('inserts only need no identity', () => expect(tableProblems(tables.slice(0, 4), ['insert', 'truncate'])).toEqual([]));
});

describe('coverageProblems', () => {
  const base = { schema: 'public', table: 'a', full: false, identityColumns: ['aid'] };
  it.each([
    [{ ...base, filterColumns: ['aid'] }, 0],
    [{ ...base, filterColumns: ['bid'] }, 1],
    [{ ...base, full: true, identityColumns: ['aid', 'bid'], filterColumns: ['bid'] }, 0],
    [{ ...base, listColumns: ['aid', 'bid'] }, 0],
    [{ ...base, listColumns: ['bid'] }, 1],
  ])('%j -> %i problems', (item, n) => expect(coverageProblems([item], ['insert', 'update'])).toHaveLength(n));
  it('inserts only: anything goes', () => expect(coverageProblems([{ ...base, filterColumns: ['bid'] }], ['insert'])).toEqual([]));
  it('reads Var attnums from a node tree', () => {
    const tree = '{OPEXPR :opno 96 :args ({VAR :varno 1 :varattno 2 :vartype 23} {CONST :consttype 23}) } {VAR :varno 1 :varattno 5 :vartype 23}';
    expect(varAttnums(tree)).toEqual([2, 5]);
  });
});

describe('throwProblems', () => {
  it('one problem inline, several as a list', () => {
    expect(() => throwProblems('create set', [])).not.toThrow();
    expect(() => throwProblems('create set', ['x'])).toThrow('unable to create set: x');
    expect(() => throwProblems('create set', ['x', 'y'])).toThrow('unable to create set:\n  - x\n  - y');
  });
});
