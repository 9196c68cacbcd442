/** Untrusted text in messages (pure). */

const ECHO_LIMIT = 64;

/**
 * Make untrusted text safe to echo: printable ASCII only (others escaped as
 * \xNN / \uNNNN), backslash and quote escaped, at most 64 characters.
 */
export function escapeForMessage(text: string): string {
  const pieces: string[] = [];
  let total = 0;
  for (const ch of String(text)) {
    const cp = ch.codePointAt(0) ?? 0;
    let piece: string;
    if (ch === '\\' || ch === "'") piece = `\\${ch}`;
    else if (cp >= 0x20 && cp < 0x7f) piece = ch;
    else if (cp <= 0xff) piece = `\\x${cp.toString(16).padStart(2, '0')}`;
    else if (cp <= 0xffff) piece = `\\u${cp.toString(16).padStart(4, '0')}`;
    else piece = `\\u{${cp.toString(16)}}`;
    pieces.push(piece);
    total += piece.length;
    if (total > ECHO_LIMIT) break;
  }
  if (total <= ECHO_LIMIT) return pieces.join('');
  let out = '';
  for (const piece of pieces) {
    if (out.length + piece.length > ECHO_LIMIT - 3) break;
    out += piece;
  }
  return `${out}...`;
}
