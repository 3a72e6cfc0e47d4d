/**
 * Text from files and servers on its way to a person: a terminal, the log, a notification. Names
 * inside checkpoints and server error bodies are untrusted; an ANSI or OSC sequence in them could
 * recolour a terminal, set its title or hide the rest of a message, so every such text passes here.
 */

/** Longest text one message line carries; the rest stays in the log. */
export const MAX_MESSAGE_CHARS = 500;

// CSI (ESC [ … final), OSC (ESC ] … BEL or ESC \), other two-byte ESC sequences, and the C1 forms
// (0x9B CSI, 0x9D OSC). Each is removed whole so no parameter text is left behind.
// An OSC that is never terminated ends at the line's end, so it cannot swallow the lines after it.
const ESCAPE_SEQUENCES = /\x1b\[[0-?]*[ -/]*[@-~]?|\x1b\][^\x07\x1b\n\r]*(?:\x07|\x1b\\)?|\x9b[0-?]*[ -/]*[@-~]?|\x9d[^\x07\x1b\n\r]*(?:\x07|\x1b\\)?|\x1b[@-_]?/g;
// Every other C0 and C1 control, DEL, and the bidirectional overrides that reorder what a terminal shows.
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;

/**
 * The text with escape sequences and control characters removed. Line breaks and tabs are kept
 * (use `oneLine` to fold them).
 */
export function stripControls(s: string): string {
  return s.replace(ESCAPE_SEQUENCES, '').replace(CONTROLS, '');
}

// Carriage return too: alone it moves the cursor back over what was printed.
const VISIBLE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;

/**
 * The text with every control character (but line feed and tab) shown as a `\uXXXX` escape. Used
 * for what the CLI prints: names that differ only in a control character stay distinguishable, and
 * JSON text stays valid JSON with the same value (inside strings the escape means the character).
 */
export function escapeControls(s: string): string {
  return s.replace(VISIBLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A name from a file (a tensor, a shard, a key) as a terminal may show it: no controls, no line breaks. */
export function safeName(s: string): string {
  return stripControls(s).replace(/\r\n|\r|\n|\t/g, ' ');
}

/**
 * One line for a message: controls stripped, the first non-empty line kept (cut at `maxChars`), and
 * "(N more lines in the log)" when there were more. `logHint` replaces "the log" (e.g. the channel).
 */
export function oneLine(s: string, opts: { maxChars?: number; logHint?: string } = {}): string {
  const lines = stripControls(s)
    .split(/\r\n|\r|\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const max = opts.maxChars ?? MAX_MESSAGE_CHARS;
  let first = lines[0] ?? '';
  if (first.length > max) first = `${first.slice(0, max)}…`;
  const more = lines.length - 1;
  return more > 0 ? `${first} (${more} more line${more === 1 ? '' : 's'} in ${opts.logHint ?? 'the log'})` : first;
}
