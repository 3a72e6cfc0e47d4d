/**
 * What JSON.parse hides, read back from the text. JSON.parse keeps the last of two equal keys
 * without a word, turns `8.0` and `8e0` into 8, `1e400` into Infinity, and accepts a lone UTF-16
 * surrogate escape; the reference readers (serde_json behind safetensors) refuse several of these,
 * and a duplicate can hide a tensor. `walkJson` walks text that JSON.parse has already accepted
 * (so its grammar is known good) and tells a visitor where each value and key lies, by path.
 *
 * It is one linear pass with no recursion: depth costs a path entry, not a stack frame.
 */

/** A value's place: object keys and array indices from the top-level value down. */
export type JsonPath = readonly (string | number)[];

export type JsonKind = 'string' | 'number' | 'literal' | 'object' | 'array';

export interface JsonVisitor {
  /**
   * Objects at these paths have their keys tracked, and a key seen twice is passed to `duplicate`.
   * Only tracked objects pay for a key set.
   */
  trackKeys?(path: JsonPath): boolean;
  /** A key seen twice in a tracked object at `path`; return a reason to stop the walk. */
  duplicate?(path: JsonPath, key: string): string | undefined;
  /**
   * Every value, with its text span [start, end) (containers when they close); return a reason to
   * stop the walk.
   */
  value?(path: JsonPath, kind: JsonKind, start: number, end: number): string | undefined;
}

export interface WalkOptions {
  /**
   * Also refuse what serde_json refuses and JSON.parse takes: a number whose value overflows a
   * double (`1e400`, a 400-digit integer) and a string with a lone surrogate escape (`"\ud800"`).
   */
  serde?: boolean;
}

interface Frame {
  readonly array: boolean;
  readonly start: number;
  /** Keys seen, for tracked objects. */
  readonly keys: Set<string> | undefined;
  /** Next array index. */
  index: number;
  /** The key just read, waiting for its value (objects). */
  key: string | undefined;
}

/** Index just past the closing quote of the string starting at s[i] (a quote). */
function stringEnd(s: string, i: number): number {
  for (let j = i + 1; ; j++) {
    const c = s.charCodeAt(j);
    if (c === 0x22) return j + 1;
    if (c === 0x5c) j++;
    if (j >= s.length) return s.length;
  }
}

/** The first lone surrogate escape in the string literal s[a..b), as its text; undefined if none. */
function loneSurrogate(s: string, a: number, b: number): string | undefined {
  for (let i = a; i < b; i++) {
    if (s.charCodeAt(i) !== 0x5c) continue;
    if (s.charCodeAt(i + 1) !== 0x75 /* u */) {
      i++;
      continue;
    }
    const u = parseInt(s.slice(i + 2, i + 6), 16);
    if (u >= 0xdc00 && u <= 0xdfff) return s.slice(i, i + 6);
    if (u >= 0xd800 && u <= 0xdbff) {
      const next = s.charCodeAt(i + 6) === 0x5c && s.charCodeAt(i + 7) === 0x75 ? parseInt(s.slice(i + 8, i + 12), 16) : -1;
      if (!(next >= 0xdc00 && next <= 0xdfff)) return s.slice(i, i + 6);
      i += 6;
    }
    i += 5;
  }
  return undefined;
}

/**
 * Walks `text` (already accepted by JSON.parse) and returns the first reason the visitor or the
 * options give to refuse it, or undefined.
 */
export function walkJson(text: string, visitor: JsonVisitor, opts: WalkOptions = {}): string | undefined {
  const frames: Frame[] = [];
  const path: (string | number)[] = [];
  const s = text;
  // The path of the value about to start: the enclosing containers' keys/indices plus this one's.
  const enter = (): void => {
    const f = frames[frames.length - 1];
    if (f) path.push(f.array ? f.index++ : f.key!);
  };
  const leave = (): void => {
    if (frames.length > 0) path.pop();
  };
  const scalar = (kind: JsonKind, start: number, end: number): string | undefined => {
    enter();
    const why = visitor.value?.(path, kind, start, end);
    leave();
    return why;
  };
  let i = 0;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0x2c /* , */ || c === 0x3a /* : */) {
      i++;
      continue;
    }
    const top = frames[frames.length - 1];
    if (c === 0x22) {
      const end = stringEnd(s, i);
      if (opts.serde) {
        const lone = loneSurrogate(s, i + 1, end - 1);
        if (lone !== undefined) return `a string holds the lone surrogate escape ${lone}, which is not a character`;
      }
      if (top && !top.array && top.key === undefined) {
        // A key: decode it only when it has escapes.
        const raw = s.slice(i + 1, end - 1);
        const key = raw.includes('\\') ? (JSON.parse(s.slice(i, end)) as string) : raw;
        if (top.keys) {
          if (top.keys.has(key)) {
            const why = visitor.duplicate?.(path, key);
            if (why !== undefined) return why;
          } else top.keys.add(key);
        }
        top.key = key;
      } else {
        const why = scalar('string', i, end);
        if (why !== undefined) return why;
        if (top && !top.array) top.key = undefined;
      }
      i = end;
      continue;
    }
    if (c === 0x7b || c === 0x5b) {
      enter();
      const array = c === 0x5b;
      frames.push({ array, start: i, keys: !array && visitor.trackKeys?.(path) ? new Set() : undefined, index: 0, key: undefined });
      i++;
      continue;
    }
    if (c === 0x7d || c === 0x5d) {
      const f = frames.pop()!;
      const why = visitor.value?.(path, f.array ? 'array' : 'object', f.start, i + 1);
      if (why !== undefined) return why;
      leave();
      const parent = frames[frames.length - 1];
      if (parent && !parent.array) parent.key = undefined;
      i++;
      continue;
    }
    // A number or a literal (true, false, null).
    let j = i + 1;
    for (; j < s.length; j++) {
      const d = s.charCodeAt(j);
      if (d === 0x2c || d === 0x7d || d === 0x5d || d === 0x20 || d === 0x0a || d === 0x0d || d === 0x09) break;
    }
    const isNumber = c === 0x2d || (c >= 0x30 && c <= 0x39);
    if (isNumber && opts.serde && !Number.isFinite(Number(s.slice(i, j)))) {
      return `the number ${clip(s.slice(i, j))} is out of range (it overflows a 64-bit float)`;
    }
    const why = scalar(isNumber ? 'number' : 'literal', i, j);
    if (why !== undefined) return why;
    if (top && !top.array) top.key = undefined;
    i = j;
  }
  return undefined;
}

/** A long token cut for a message. */
export function clip(s: string, max = 40): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

const U64_MAX = 2n ** 64n - 1n;

/**
 * Why the text of a JSON number is not what serde reads as a u64 (digits only: no sign, fraction
 * or exponent, not past 2^64 - 1), or undefined when it is one.
 */
export function notU64(numberText: string): string | undefined {
  if (!/^(0|[1-9][0-9]*)$/.test(numberText)) return 'not an unsigned integer (no sign, fraction or exponent)';
  if (numberText.length > 20 || BigInt(numberText) > U64_MAX) return 'past 2^64 - 1, the largest unsigned 64-bit integer';
  return undefined;
}
