import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../../src/common/errors.js';
import { splitSql } from '../../src/drill/sql-split.js';

describe('splitSql', () => {
  it.each<[string, string, Array<[string, number]>]>([
    ['one statement', 'SELECT true', [['SELECT true', 1]]],
    ['two with semicolons', 'SELECT true;\nSELECT 1 = 1;\n', [['SELECT true', 1], ['SELECT 1 = 1', 2]]],
    ['empty statements dropped', ';;\n  ;\nSELECT true;;', [['SELECT true', 3]]],
    ['line comments', '-- header; not a statement\nSELECT true; -- trailing; comment\n-- only a comment;\n', [['SELECT true', 2]]],
    ['block comments, nested', '/* a; /* b; */ c; */ SELECT true;\n/* x */', [['SELECT true', 1]]],
    ['comment inside a statement kept', 'SELECT /* ; */ true', [['SELECT /* ; */ true', 1]]],
    ['strings', "SELECT 'a;b' = 'a;b';\nSELECT 'it''s;' <> '';", [["SELECT 'a;b' = 'a;b'", 1], ["SELECT 'it''s;' <> ''", 2]]],
    ['escape strings', "SELECT E'a\\';b' IS NOT NULL; SELECT true", [["SELECT E'a\\';b' IS NOT NULL", 1], ['SELECT true', 1]]],
    ['a backslash in a standard string', "SELECT 'a\\'; SELECT true", [["SELECT 'a\\'", 1], ['SELECT true', 1]]],
    ['quoted identifiers', 'SELECT count(*) = 0 FROM "odd;name""x";', [['SELECT count(*) = 0 FROM "odd;name""x"', 1]]],
    ['dollar quotes', 'SELECT $$a;b$$ = $$a;b$$;\nSELECT $fn$ ; $$ ; $fn$ <> \'\';', [['SELECT $$a;b$$ = $$a;b$$', 1], ["SELECT $fn$ ; $$ ; $fn$ <> ''", 2]]],
    ['positional parameters are not dollar quotes', 'SELECT $1; SELECT true', [['SELECT $1', 1], ['SELECT true', 1]]],
    ['multi-line statement line number', '\n\nSELECT\n  count(*) = 100000\nFROM pgbench_accounts;\n\nSELECT true', [['SELECT\n  count(*) = 100000\nFROM pgbench_accounts', 3], ['SELECT true', 7]]],
    ['line numbers after multi-line strings', "SELECT 'a\nb' IS NOT NULL;\nSELECT true;", [["SELECT 'a\nb' IS NOT NULL", 1], ['SELECT true', 3]]],
  ])('%s', (_name, sql, want) => {
    expect(splitSql(sql, 'f.sql').map((s) => [s.text, s.line])).toEqual(want);
  });

  it('returns nothing for comments only', () => {
    expect(splitSql('-- nothing\n/* here */\n', 'f.sql')).toEqual([]);
  });

  it.each([
    ["SELECT 'open", /line 1: unterminated string/],
    ['SELECT true;\nSELECT "open', /line 2: unterminated quoted identifier/],
    ['SELECT $x$ open', /unterminated dollar-quoted string \$x\$/],
    ['/* open /* nested */', /unterminated \/\* comment/],
    ['SELECT true;\n\\c otherdb\nSELECT true;', /line 2: psql meta-commands/],
    ['  \\set x 1', /psql meta-commands/],
  ])('refuses %j naming the file', (sql, re) => {
    expect(() => splitSql(sql, 'checks.sql')).toThrow(InvalidInputError);
    expect(() => splitSql(sql, 'checks.sql')).toThrow(/'checks\.sql'/);
    expect(() => splitSql(sql, 'checks.sql')).toThrow(re);
  });
});
