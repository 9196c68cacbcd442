/**
 * POSIX shell words of a command line (pure), enough to read archive_command and
 * restore_command the way /bin/sh will: quoting ('...', "...", backslash), comments, control
 * operators (; & && || | ( ) and newlines) that separate simple commands, and redirections
 * (whose targets are not arguments). Nothing is expanded: a word that the shell would expand
 * ($VAR, $(...), `...`, globs, a leading ~) is marked `dynamic`, since its value is only known
 * at run time.
 */

export interface ShellWord {
  /** The word after quote removal. */
  text: string;
  /** The shell would expand something in it (parameter, command substitution, glob, tilde). */
  dynamic: boolean;
  /** Index in `text` of the first character that came from quoting or an escape (text.length when none). */
  quotedFrom: number;
}

export interface SimpleCommand {
  words: ShellWord[];
  /** Redirection operators with their targets, e.g. `2>&1`, `> /dev/null`. */
  redirects: string[];
}

export interface ShellParse {
  commands: SimpleCommand[];
  /** Control operators between the commands, in order (`;`, `&&`, `||`, `|`, `&`, `(`, `)`). */
  operators: string[];
}

export class ShellSyntaxError extends Error {}

type Token = { kind: 'word'; word: ShellWord } | { kind: 'control'; op: string } | { kind: 'redirect'; op: string };

const CONTROL_OPS = ['&&', '||', ';;', ';', '&', '|', '(', ')'];
const REDIRECT_OPS = ['>>', '<<-', '<<', '>&', '<&', '>|', '<>', '>', '<'];

function tokenize(s: string): Token[] {
  const tokens: Token[] = [];
  let text: string | null = null;
  let dynamic = false;
  let quotedFrom = -1;
  const add = (chunk: string, quoted: boolean) => {
    if (text === null) text = '';
    if (quoted && quotedFrom < 0) quotedFrom = text.length;
    text += chunk;
  };
  const end = () => {
    if (text !== null) tokens.push({ kind: 'word', word: { text, dynamic, quotedFrom: quotedFrom < 0 ? text.length : quotedFrom } });
    text = null;
    dynamic = false;
    quotedFrom = -1;
  };
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === '#' && text === null) {
      while (i < s.length && s[i] !== '\n') i++;
      continue;
    }
    if (c === ' ' || c === '\t') {
      end();
      i++;
      continue;
    }
    if (c === '\n') {
      end();
      tokens.push({ kind: 'control', op: ';' });
      i++;
      continue;
    }
    if (c === '\\') {
      if (s[i + 1] === '\n') {
        i += 2; // line continuation
        continue;
      }
      if (i + 1 >= s.length) throw new ShellSyntaxError('a backslash ends the command');
      add(s[i + 1]!, true);
      i += 2;
      continue;
    }
    if (c === "'") {
      const close = s.indexOf("'", i + 1);
      if (close < 0) throw new ShellSyntaxError('unterminated single quote');
      add(s.slice(i + 1, close), true);
      i = close + 1;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      let chunk = '';
      for (;;) {
        if (j >= s.length) throw new ShellSyntaxError('unterminated double quote');
        const d = s[j]!;
        if (d === '"') break;
        if (d === '\\' && j + 1 < s.length && '$`"\\\n'.includes(s[j + 1]!)) {
          if (s[j + 1] !== '\n') chunk += s[j + 1];
          j += 2;
          continue;
        }
        if (d === '$' || d === '`') dynamic = true;
        chunk += d;
        j++;
      }
      add(chunk, true);
      i = j + 1;
      continue;
    }
    const control = CONTROL_OPS.find((op) => s.startsWith(op, i));
    if (control) {
      end();
      tokens.push({ kind: 'control', op: control });
      i += control.length;
      continue;
    }
    const redirect = REDIRECT_OPS.find((op) => s.startsWith(op, i));
    if (redirect) {
      // `2>` : a word of digits right before the operator is its file descriptor.
      const fd: string | null = text !== null && quotedFrom < 0 && /^\d+$/.test(text) ? text : null;
      if (fd !== null) text = null;
      end();
      tokens.push({ kind: 'redirect', op: (fd ?? '') + redirect });
      i += redirect.length;
      continue;
    }
    if (c === '$' || c === '`' || c === '*' || c === '?' || c === '[' || (c === '~' && text === null)) dynamic = true;
    add(c, false);
    i++;
  }
  end();
  return tokens;
}

/** Split a command line into simple commands. Throws ShellSyntaxError for unterminated quotes. */
export function parseShell(s: string): ShellParse {
  const commands: SimpleCommand[] = [];
  const operators: string[] = [];
  let cur: SimpleCommand = { words: [], redirects: [] };
  const tokens = tokenize(s);
  const close = () => {
    if (cur.words.length > 0 || cur.redirects.length > 0) commands.push(cur);
    cur = { words: [], redirects: [] };
  };
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind === 'word') cur.words.push(t.word);
    else if (t.kind === 'redirect') {
      const target = tokens[i + 1];
      if (target?.kind !== 'word') throw new ShellSyntaxError(`redirection '${t.op}' without a target`);
      cur.redirects.push(`${t.op}${target.word.text}`);
      i++;
    } else {
      close();
      // A trailing newline or `;` ends the last command; it does not combine two.
      const last = i === tokens.length - 1 || tokens.slice(i + 1).every((x) => x.kind === 'control' && x.op === ';');
      if (!(t.op === ';' && last)) operators.push(t.op);
    }
  }
  close();
  return { commands, operators };
}
