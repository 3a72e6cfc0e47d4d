/**
 * The order in which names are shown: `layers.2` before `layers.10`, as a person counts, where
 * code-unit order (what a safetensors writer stores) gives `0, 1, 10, 100, 1000, 1001, …, 2`.
 * One comparator for the tree, the list's name sort and the Pytree view.
 */
// checkpoint.ts sorts with this module, so the key type is spelled out rather than imported (no cycle).
type PathKey = string | number;

const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

const isDigits = (s: string): boolean => {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (!isDigit(s.charCodeAt(i))) return false;
  return true;
};

const codeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Two all-digit strings by value, exactly at any length (no float rounding): leading zeros
 * stripped, then the shorter is smaller, then digit by digit.
 */
function byValue(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length - 1 && a.charCodeAt(i) === 0x30) i++;
  while (j < b.length - 1 && b.charCodeAt(j) === 0x30) j++;
  return a.length - i - (b.length - j) || codeUnits(a.slice(i), b.slice(j));
}

/** Where the run of digits or of non-digits starting at `from` ends. */
function runEnd(s: string, from: number): number {
  const digits = isDigit(s.charCodeAt(from));
  let i = from + 1;
  while (i < s.length && isDigit(s.charCodeAt(i)) === digits) i++;
  return i;
}

/**
 * One key or name segment, run by run (`Dense_10` is `Dense_` then `10`), so a number inside a
 * segment counts too: `Dense_2` before `Dense_10`, `block2` before `block10`. A digit run comes
 * before a text run, digit runs by value, text runs by code unit; a segment whose runs are a prefix
 * of the other's comes first. Ranking the two kinds of run (rather than comparing `10a` with `9` as
 * text) keeps the order transitive: it is the lexicographic order of run sequences under one total
 * preorder of runs. Equal values with different leading zeros (`7`, `007`) tie here; naturalCompare
 * breaks the tie.
 */
function compareSegment(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const da = isDigit(a.charCodeAt(i));
    if (da !== isDigit(b.charCodeAt(j))) return da ? -1 : 1;
    const ie = runEnd(a, i);
    const je = runEnd(b, j);
    const x = a.slice(i, ie);
    const y = b.slice(j, je);
    const c = da ? byValue(x, y) : codeUnits(x, y);
    if (c !== 0) return c;
    i = ie;
    j = je;
  }
  return Number(i < a.length) - Number(j < b.length);
}

const SEPARATOR = /[./]/;

/**
 * Names split at `.` and `/`, compared segment by segment (compareSegment); a name that is a prefix
 * of another comes first. Names that still tie (`007` and `7`, `a.b` and `a/b`) are ordered by code
 * unit, so the order is total: 0 only for equal strings (`007` before `7`, `a.b` before `a/b`).
 */
export function naturalCompare(a: string, b: string): number {
  if (a === b) return 0;
  const x = a.split(SEPARATOR);
  const y = b.split(SEPARATOR);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const c = compareSegment(x[i]!, y[i]!);
    if (c !== 0) return c;
  }
  return x.length - y.length || codeUnits(a, b);
}

/**
 * Key paths, key by key in naturalCompare's order; a number key before the string of the same
 * digits (they are distinct pytree keys: a list index and a dict key), then the shorter path first.
 */
export function compareKeyPaths(a: readonly PathKey[], b: readonly PathKey[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    const c = naturalCompare(String(x), String(y)) || (typeof x === 'number' ? -1 : 1);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

/** A key that counts: a list index, or a dict key of digits only (`007`, or past pathKey's 9 digits). */
export const isIndexKey = (k: PathKey): boolean => typeof k === 'number' || isDigits(k);
