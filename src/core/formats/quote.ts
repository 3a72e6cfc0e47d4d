/**
 * Names and values from a file, as a format error quotes them: control characters and line breaks
 * removed (safeName), cut to a length a one-line message can carry, then JSON-quoted so the quote
 * marks show where the name starts and ends. The name itself is kept as given everywhere else.
 */
import { safeName } from '../text';

/** Longest name a message quotes; a hostile header can hold megabyte names. */
const MAX_QUOTED_CHARS = 200;

export function quoted(name: string): string {
  const s = safeName(name);
  return JSON.stringify(s.length > MAX_QUOTED_CHARS ? `${s.slice(0, MAX_QUOTED_CHARS)}…` : s);
}

/** A parsed JSON value as a message shows it: its JSON text, cut short, without control characters. */
export function shownJson(v: unknown): string {
  if (v === undefined) return 'missing';
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  s = safeName(s);
  return s.length > MAX_QUOTED_CHARS ? `${s.slice(0, MAX_QUOTED_CHARS)}…` : s;
}
