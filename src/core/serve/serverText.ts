/**
 * What a server says when it fails, made fit for a person: the message out of whichever error shape
 * the server uses (serving-engines.md §1.5, §2.4, §3.5), the title of an HTML error page (a proxy's
 * 502), the exception line of a Python traceback; then controls stripped and cut to one line with
 * "(N more lines in …)". The full text, controls stripped, is kept for the log.
 */
import { isJaxServeError } from '../errors';
import { MAX_JSON_DEPTH, parseJsonText } from '../json';
import { oneLine, stripControls } from '../text';

/** One line for a message, and the whole message, controls stripped, for the log. */
export interface ServerText {
  readonly line: string;
  readonly full: string;
}

/** JSON from a server, depth-checked: the value, or why it cannot be read ("is not JSON", "nests …"). */
export function readServerJson(text: string): { ok: true; value: unknown } | { ok: false; why: string } {
  try {
    return { ok: true, value: parseJsonText('server reply', text) };
  } catch (e) {
    return { ok: false, why: isJaxServeError(e) && e.code === 'E_LIMIT' ? `nests deeper than ${MAX_JSON_DEPTH} levels` : 'is not JSON' };
  }
}

/** The message of an error body in any of the shapes servers use; the raw text when none fits. */
export function errorMessage(body: string): string {
  const j = readServerJson(body);
  const o = j.ok ? (j.value as Record<string, unknown> | null) : undefined;
  if (o && typeof o === 'object' && !Array.isArray(o)) {
    const e = o.error;
    if (typeof e === 'string') return e;
    if (e && typeof e === 'object' && typeof (e as Record<string, unknown>).message === 'string') return (e as Record<string, unknown>).message as string;
    if (typeof o.message === 'string') return o.message;
    const d = o.detail;
    if (typeof d === 'string') return d;
    // FastAPI's validation errors: [{loc, msg, type}, …].
    if (Array.isArray(d)) return d.map((x) => (x && typeof x === 'object' && 'msg' in x ? `${String((x as Record<string, unknown>).msg)}${'loc' in x ? ` (${JSON.stringify((x as Record<string, unknown>).loc)})` : ''}` : JSON.stringify(x))).join('; ');
  }
  return body.trim() || '(empty body)';
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]{1,6}|#[0-9]{1,7}|[a-z]{2,6});/gi, (m, e: string) => {
    if (e[0] !== '#') return ENTITIES[e.toLowerCase()] ?? m;
    const cp = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
    return cp > 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : '\ufffd';
  });
}

/**
 * The text of an HTML page, title first, one line per piece of text; script and style are left out.
 * One pass over the page with indexOf (a regular expression over an unclosed tag could backtrack).
 */
export function htmlText(html: string): string {
  let title = '';
  const texts: string[] = [];
  let skip: string | undefined;
  let inTitle = false;
  for (let i = 0; i < html.length; ) {
    const lt = html.indexOf('<', i);
    const text = html.slice(i, lt < 0 ? html.length : lt);
    if (!skip && text.trim() !== '') {
      const t = decodeEntities(text).replace(/\s+/g, ' ').trim();
      if (inTitle) title += (title ? ' ' : '') + t;
      else texts.push(t);
    }
    if (lt < 0) break;
    const gt = html.indexOf('>', lt + 1);
    if (gt < 0) break; // an unclosed tag: the rest is not text
    const name = /^(\/?)([a-z][a-z0-9]*)/i.exec(html.slice(lt + 1, Math.min(gt, lt + 16)));
    if (name) {
      const tag = name[2]!.toLowerCase();
      const closing = name[1] === '/';
      if (tag === 'title') inTitle = !closing;
      else if (tag === 'script' || tag === 'style') skip = closing ? undefined : tag;
    }
    i = gt + 1;
  }
  const rest = texts.filter((t) => t !== title);
  return [title || rest.shift() || '(an HTML page with no text)', ...rest].join('\n');
}

function looksLikeHtml(body: string, contentType: string | undefined): boolean {
  return /\bhtml\b/i.test(contentType ?? '') || /^\s*<(?:!doctype|html|head|body|title)\b/i.test(body.slice(0, 512));
}

const TRACEBACK = 'Traceback (most recent call last)';
/** Lines of a traceback that are not its exception line. */
const TRACEBACK_FRAMING = /^(?:Traceback \(most recent call last\)|During handling of the above exception|The above exception was the direct cause)/;

/**
 * A Python traceback reordered so that its exception line ("ValueError: bad input": the first line
 * not indented after the frames of the last traceback) comes first: that is the line a person
 * needs, not "Traceback (…)". A message over several lines keeps its other lines after it.
 */
function tracebackFirst(text: string): string {
  if (!text.includes(TRACEBACK)) return text;
  const lines = text.split(/\r\n|\r|\n/);
  let last = -1;
  // A traceback's own header line; one folded into a single line is left to exceptionNamesLast.
  for (let i = 0; i < lines.length; i++) if (/^Traceback \(most recent call last\):?\s*$/.test(lines[i]!)) last = i;
  if (last < 0) return text;
  for (let i = last + 1; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.trim() === '' || /^\s/.test(l) || TRACEBACK_FRAMING.test(l)) continue;
    return [l, ...lines.slice(0, i), ...lines.slice(i + 1)].join('\n');
  }
  return text;
}

/** Characters of a first line looked at for exception names (the message shows 500). */
const MAX_FIRST_LINE = 2000;

/** An exception name and its colon: "ValueError: ", "torch.OutOfMemoryError: ". */
const EXCEPTION_NAME = /\b(?:[A-Za-z_]\w*\.)*([A-Z]\w*(?:Error|Exception|Warning|Exit|Interrupt))\s*:\s*/g;

/**
 * A raw exception name leading a message ("torch.OutOfMemoryError: CUDA out of memory") moved after
 * it ("CUDA out of memory (OutOfMemoryError)"): the message says what happened, and a line that
 * starts with an exception name reads as a crash of ours. A traceback folded into one line keeps
 * only the exception of its last traceback.
 */
function exceptionNamesLast(line: string): string {
  let text = line.slice(0, MAX_FIRST_LINE);
  const tb = text.lastIndexOf(TRACEBACK);
  if (tb >= 0) {
    // Its exception is the first name after the last traceback's frames.
    const after = text.slice(tb + TRACEBACK.length);
    const first = new RegExp(EXCEPTION_NAME.source).exec(after);
    if (first) text = after.slice(first.index);
  }
  const names: string[] = [];
  const rest = text
    .replace(EXCEPTION_NAME, (_m, name: string) => {
      names.push(name);
      return '';
    })
    .replace(TRACEBACK, 'Traceback')
    .trim();
  return names.length === 0 ? rest : `${rest}${rest ? ' ' : ''}(${names.join(', ')})`;
}

/**
 * A server's text for a person: `body` is an error body, or a message from a stream (`json:
 * false`: taken as it is). `logHint` names where the rest of a multi-line text can be read.
 */
export function serverText(body: string, opts: { contentType?: string; logHint?: string; json?: boolean } = {}): ServerText {
  const message = looksLikeHtml(body, opts.contentType) ? htmlText(body) : opts.json === false ? body : errorMessage(body);
  // The log gets the message whole (a JSON error's text with its line breaks, an HTML page's text).
  const full = stripControls(message);
  // The line shown first, with exception names moved after the message; the others are counted.
  const lines = stripControls(tracebackFirst(message))
    .split(/\r\n|\r|\n/)
    .filter((l) => l.trim() !== '');
  if (lines.length > 0) lines[0] = exceptionNamesLast(lines[0]!);
  return { line: oneLine(lines.join('\n'), { logHint: opts.logHint }) || '(empty)', full };
}
