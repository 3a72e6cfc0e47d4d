/**
 * JSON.parse keeps the last of two equal keys without a word; safetensors forbids duplicates, and a
 * duplicate could hide a tensor. This walks already-valid JSON text and reports the first top-level
 * key seen twice. It only tracks strings and nesting, so it is linear and allocation-light.
 */
export function findDuplicateTopLevelKey(text: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      i++;
      let escaped = false;
      while (i < text.length && text.charCodeAt(i) !== 0x22) {
        if (text.charCodeAt(i) === 0x5c /* \ */) {
          escaped = true;
          i++;
        }
        i++;
      }
      if (depth === 1 && expectKey) {
        // Only keys with escapes need decoding to compare equal to their plain spelling.
        const key = escaped ? (JSON.parse(text.slice(start, i + 1)) as string) : text.slice(start + 1, i);
        if (seen.has(key)) return key;
        seen.add(key);
        expectKey = false;
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      depth++;
      if (depth === 1) expectKey = true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    } else if (c === 0x2c /* , */ && depth === 1) {
      expectKey = true;
    }
  }
  return undefined;
}
