/**
 * Text from files and servers on its way to a person: a terminal, the log, a notification. Names
 * inside checkpoints and server error bodies are untrusted; an ANSI or OSC sequence in them could
 * recolour a terminal, set its title or hide the rest of a message, so every such text passes here.
 */

/** Longest text one message line carries; the rest stays in the log. */
export const MAX_MESSAGE_CHARS = 500;

// CSI (ESC [ … final), OSC (ESC ] … BEL or ESC \), other two-byte ESC sequences, and the C1 forms
// (0x9B CSI, 0x9D OSC). Each is removed whole so no parameter text is left behind. An OSC that is
// never terminated ends at the line's end, so it cannot swallow the lines after it.
const ESCAPE_SEQUENCES = /\x1b\[[0-?]*[ -/]*[@-~]?|\x1b\][^\x07\x1b\n\r]*(?:\x07|\x1b\\)?|\x9b[0-?]*[ -/]*[@-~]?|\x9d[^\x07\x1b\n\r]*(?:\x07|\x1b\\)?|\x1b[@-_]?/g;

// What may not reach a terminal in free text (server errors, generated text, logs): C0 and C1
// controls but line feed and tab (a carriage return alone moves the cursor back over what was
// printed), line/paragraph separators, and the bidirectional marks that reorder what is shown.
// Other format characters stay: a zero-width joiner inside an emoji is text.
const CONTROLS = /(?![\n\t])[\p{Cc}\p{Zl}\p{Zp}\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

// What a name may not hide: every control above plus all format characters (zero-width, soft
// hyphen, tags), private use and the invisible fillers. Two names that differ only in one of these
// would look the same.
const INVISIBLE = /(?![\n\t])[\p{Cc}\p{Cf}\p{Co}\p{Zl}\p{Zp}\u034f\u115f\u1160\u3164\uffa0]/gu;

/**
 * The text with escape sequences and control characters removed. Line breaks and tabs are kept
 * (use `oneLine` to fold them).
 */
export function stripControls(s: string): string {
  return s.replace(ESCAPE_SEQUENCES, '').replace(CONTROLS, '');
}

const NOT_PLAIN_ASCII = /[^\x20-\x7e\n\t]/;

/**
 * The text with every control or invisible character (but line feed and tab) shown as a `\uXXXX`
 * escape. Used for what the CLI prints: names that differ only in such a character stay
 * distinguishable, and JSON text stays valid JSON with the same value (inside strings the escape
 * means the character).
 */
export function escapeControls(s: string): string {
  // Printable ASCII (with line feeds and tabs) has nothing to escape; this simple class scans far
  // faster than INVISIBLE's Unicode properties, which a 100 MB listing would otherwise pay for.
  if (!NOT_PLAIN_ASCII.test(s)) return s;
  // One escape per UTF-16 unit: a character past U+FFFF becomes its surrogate pair, as JSON writes it.
  return s.replace(INVISIBLE, (c) => Array.from({ length: c.length }, (_, i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`).join(''));
}

/**
 * A name from a file (a tensor, a shard, a key) as a message shows it: every control or invisible
 * character, line breaks and tabs included, as a `\uXXXX` escape, so the name stays on one line and
 * two names that differ only there stay different.
 */
export function safeName(s: string): string {
  return escapeControls(s).replace(/[\n\t]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
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
