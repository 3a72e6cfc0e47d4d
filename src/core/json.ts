/**
 * JSON from files and servers, parsed with bounds: a size cap and a nesting-depth cap checked by a
 * linear scan before JSON.parse runs, so a hostile file gets our error naming it, not a stack
 * overflow in whatever walks the value later.
 */
import { JaxServeError, limitError } from './errors';
import { safeName } from './text';

/** A JSON object (not an array, not null): what a parsed value is checked with before its keys are read. */
export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Nesting of any JSON this project reads. Real configs and tokenizers stay under 10. */
export const MAX_JSON_DEPTH = 128;

/** Deepest nesting of arrays and objects in `text` (strings skipped); stops counting at `limit + 1`. */
export function jsonDepth(text: string, limit = MAX_JSON_DEPTH): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // the escaped character cannot end the string
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

export interface BoundedJsonOptions {
  maxDepth?: number;
  /** What the file is, for the message ("config.json", "the rule file"). */
  what?: string;
}

/**
 * Parses JSON text from `file`, refusing nesting deeper than `maxDepth`. Errors are JaxServeErrors
 * that name the file and say what is wrong.
 */
export function parseJsonText(file: string, text: string, opts: BoundedJsonOptions = {}): unknown {
  const maxDepth = opts.maxDepth ?? MAX_JSON_DEPTH;
  const depth = jsonDepth(text, maxDepth);
  if (depth > maxDepth) throw limitError(file, 'the JSON nesting depth', depth, maxDepth, 'maxJsonDepth');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new JaxServeError('E_FORMAT', `Failed to parse ${file}: ${opts.what ?? 'the file'} is not valid JSON (${safeName((e as Error).message).slice(0, 200)}).`);
  }
}

/** As `parseJsonText`, from UTF-8 bytes (invalid UTF-8 is refused, not replaced). */
export function parseJsonBytes(file: string, bytes: Uint8Array, opts: BoundedJsonOptions = {}): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new JaxServeError('E_FORMAT', `Failed to parse ${file}: ${opts.what ?? 'the file'} is not valid UTF-8.`);
  }
  return parseJsonText(file, text, opts);
}
