/**
 * Split a `--checks` SQL file into statements (pure), the way psql would: `;` ends a statement
 * outside quotes ('...', E'...', "..."), dollar quotes ($$...$$, $tag$...$tag$) and comments
 * (-- and nested block comments). Statements holding only comments are dropped. psql meta-commands
 * (a line starting with a backslash) are refused: the drill runs plain SQL.
 */
import { InvalidInputError } from '../common/errors.js';

export interface SqlStatement {
  /** The statement without its `;`, trimmed. */
  text: string;
  /** 1-based line where it starts. */
  line: number;
}

export function splitSql(sql: string, where: string): SqlStatement[] {
  const out: SqlStatement[] = [];
  let i = 0;
  let line = 1;
  let start = 0;
  let startLine = 1;
  let hasCode = false;
  const n = sql.length;
  const bad = (why: string, at: number) => new InvalidInputError(`unable to read '${where}' line ${at}: ${why}`);
  const push = (end: number) => {
    const text = sql.slice(start, end).trim();
    if (hasCode && text !== '') out.push({ text, line: startLine });
    hasCode = false;
  };
  let atLineStart = true;
  while (i < n) {
    const c = sql[i]!;
    if (c === '\n') {
      line++;
      i++;
      atLineStart = true;
      continue;
    }
    if (atLineStart && c === '\\') throw bad('psql meta-commands (\\c, \\set, ...) are not supported: write plain SQL statements', line);
    if (c !== ' ' && c !== '\t' && c !== '\r') atLineStart = false;
    if (c === '-' && sql[i + 1] === '-') {
      while (i < n && sql[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && sql[i + 1] === '*') {
      const from = line;
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql[i] === '\n') line++;
        if (sql[i] === '/' && sql[i + 1] === '*') {
          depth++;
          i += 2;
        } else if (sql[i] === '*' && sql[i + 1] === '/') {
          depth--;
          i += 2;
        } else i++;
      }
      if (depth > 0) throw bad('unterminated /* comment', from);
      continue;
    }
    if (!hasCode && !/\s/.test(c)) {
      hasCode = true;
      startLine = line;
      start = i;
    }
    if (c === ';') {
      push(i);
      i++;
      start = i;
      continue;
    }
    if (c === "'" || c === '"') {
      const from = line;
      const escapes = c === "'" && i > 0 && /[eE]/.test(sql[i - 1]!) && (i < 2 || !/[A-Za-z0-9_]/.test(sql[i - 2]!));
      i++;
      for (;;) {
        if (i >= n) throw bad(`unterminated ${c === "'" ? 'string' : 'quoted identifier'}`, from);
        const d = sql[i]!;
        if (d === '\n') line++;
        if (escapes && d === '\\') {
          if (sql[i + 1] === '\n') line++;
          i += 2;
          continue;
        }
        if (d === c) {
          if (sql[i + 1] === c) {
            i += 2;
            continue;
          }
          i++;
          break;
        }
        i++;
      }
      continue;
    }
    if (c === '$') {
      const m = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(sql.slice(i, i + 130));
      const prev = i > 0 ? sql[i - 1]! : ' ';
      if (m && !/[A-Za-z0-9_]/.test(prev)) {
        const tag = m[0];
        const from = line;
        const close = sql.indexOf(tag, i + tag.length);
        if (close < 0) throw bad(`unterminated dollar-quoted string ${tag}`, from);
        for (let k = i; k < close; k++) if (sql[k] === '\n') line++;
        i = close + tag.length;
        continue;
      }
    }
    i++;
  }
  push(n);
  return out;
}
