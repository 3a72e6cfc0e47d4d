/**
 * Counts how often each 8- or 16-bit code occurs, in a tiny hand-assembled WebAssembly kernel:
 * a JavaScript loop pays a bounds check on every table update and runs about 2.5x slower, and this
 * count is what bf16/f16/f8 statistics cost (see codeCounts.ts). The module is a few hundred bytes,
 * built below with each instruction named; `countCodesJs` is the plain loop it must agree with (tested).
 */
import type { ReuseBuffers } from './read';

// Opcodes (WebAssembly core spec, binary format).
const LOCAL_GET = 0x20, LOCAL_SET = 0x21, LOCAL_TEE = 0x22, I32_CONST = 0x41, I32_ADD = 0x6a, I32_SHL = 0x74, I32_AND = 0x71;
const I32_GE_U = 0x4f, BLOCK = 0x02, LOOP = 0x03, BR = 0x0c, BR_IF = 0x0d, END = 0x0b, VOID = 0x40, I32 = 0x7f;
const I32_LOAD = 0x28, I32_STORE = 0x36, I32_LOAD8_U = 0x2d, I32_LOAD16_U = 0x2f;

/** Unsigned LEB128, as memarg offsets are encoded. */
function leb(n: number): number[] {
  const out: number[] = [];
  do {
    const b = n & 0x7f;
    n >>>= 7;
    out.push(n ? b | 0x80 : b);
  } while (n);
  return out;
}

/**
 * count(src, n): for each of n codes at src (1 or 2 bytes each), tables[k][code] += 1 (u32), the
 * tables at address 0 and `tableBytes`. Four codes per turn, alternate codes in alternate tables: a
 * run of one code (zeros, a constant) then updates two counters in turn instead of waiting on one
 * store before the next load of the same word. The last n % 4 codes go through a one-code loop.
 */
function countBody(load: number, codeBytesLog2: 0 | 1, tableBytes: number): number[] {
  const [src, n, end, slot] = [0, 1, 2, 3];
  const step = 1 << codeBytesLog2;
  // *(table + (code << 2)) += 1 for the code at src + at; the table base rides in the memarg offset.
  const bump = (at: number, table: number) => [
    LOCAL_GET, src, load, codeBytesLog2, ...leb(at), I32_CONST, 2, I32_SHL, LOCAL_TEE, slot,
    LOCAL_GET, slot, I32_LOAD, 2, ...leb(table), I32_CONST, 1, I32_ADD, I32_STORE, 2, ...leb(table),
  ];
  // i32.const takes signed LEB128; the step (at most 8) is one byte either way.
  const advance = (codes: number) => [LOCAL_GET, src, I32_CONST, codes * step, I32_ADD, LOCAL_SET, src];
  const loop = (body: number[]) => [
    BLOCK, VOID, LOOP, VOID,
    LOCAL_GET, src, LOCAL_GET, end, I32_GE_U, BR_IF, 1, // while (src < end)
    ...body,
    BR, 0, END, END,
  ];
  const code = [
    // end = src + ((n & ~3) << log2): the unrolled part
    LOCAL_GET, src, LOCAL_GET, n, I32_CONST, 0x7c /* -4 */, I32_AND, ...(codeBytesLog2 ? [I32_CONST, 1, I32_SHL] : []), I32_ADD, LOCAL_SET, end,
    ...loop([...bump(0, 0), ...bump(step, tableBytes), ...bump(2 * step, 0), ...bump(3 * step, tableBytes), ...advance(4)]),
    // end = src + ((n & 3) << log2): the rest, one code at a time
    LOCAL_GET, src, LOCAL_GET, n, I32_CONST, 3, I32_AND, ...(codeBytesLog2 ? [I32_CONST, 1, I32_SHL] : []), I32_ADD, LOCAL_SET, end,
    ...loop([...bump(0, 0), ...advance(1)]),
    END,
  ];
  const withLocals = [1, 2, I32, ...code]; // two i32 locals: end, slot
  return [...leb(withLocals.length), ...withLocals];
}

/** Bytes of one count table: a u32 per code. */
const tableBytesOf = (bits: 8 | 16) => 4 << bits;

function moduleBytes(): Uint8Array {
  const section = (id: number, bytes: number[]) => [id, ...leb(bytes.length), ...bytes];
  const name = (s: string) => [s.length, ...[...s].map((c) => c.charCodeAt(0))];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    ...section(1, [1, 0x60, 2, I32, I32, 0]), // one type: (i32, i32) -> ()
    ...section(3, [2, 0, 0]), // two functions of that type
    ...section(5, [1, 0, 1]), // one memory, at least one page (grown from JS)
    ...section(7, [3, ...name('mem'), 2, 0, ...name('count16'), 0, 0, ...name('count8'), 0, 1]),
    ...section(10, [2, ...countBody(I32_LOAD16_U, 1, tableBytesOf(16)), ...countBody(I32_LOAD8_U, 0, tableBytesOf(8))]),
  ]);
}

// The few WebAssembly types used here: core's type-check target has no DOM lib, which declares them.
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
type Kernel = (src: number, n: number) => void;
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: { mem: WasmMemory; count16: Kernel; count8: Kernel } };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

let compiled: object | undefined;

/** Bytes copied into wasm memory per kernel call, for bytes that were not read into it. */
const COPY_BYTES = 1 << 20;
/** Per-code u32 counts are moved to float64 totals before they could overflow (no counter exceeds the codes counted since). */
const FLUSH_EVERY = 2 ** 31;

export class CodeCounter {
  private readonly memory: WasmMemory;
  private readonly run: Kernel;
  private readonly tableCodes: number;
  private readonly copyOffset: number;
  private readonly totals: Float64Array;
  private sinceFlush = 0;
  /** Two areas of the counter's memory to read chunks into (none when built with readBytes 0). */
  readonly readBuffers: ReuseBuffers | undefined;

  /**
   * `readBytes`: the size of each of the two read areas. Chunks read there are counted in place,
   * with no copy; the memory is laid out once (growing it would detach those views).
   */
  constructor(readonly bits: 8 | 16, readBytes = 0) {
    compiled ??= new wasm.Module(moduleBytes());
    const exports = new wasm.Instance(compiled).exports;
    this.memory = exports.mem;
    this.run = bits === 16 ? exports.count16 : exports.count8;
    this.tableCodes = 1 << bits;
    // [table | table | copy area | read area | read area]
    this.copyOffset = 2 * tableBytesOf(bits);
    const readOffset = this.copyOffset + COPY_BYTES;
    this.memory.grow(Math.ceil((readOffset + 2 * readBytes) / 65536));
    this.readBuffers = readBytes > 0 ? [new Uint8Array(this.memory.buffer, readOffset, readBytes), new Uint8Array(this.memory.buffer, readOffset + readBytes, readBytes)] : undefined;
    this.totals = new Float64Array(this.tableCodes);
  }

  /** Counts the codes in `bytes` (whole codes, little-endian): in place when they lie in a read area. */
  add(bytes: Uint8Array): void {
    const codeBytes = this.bits / 8;
    if (bytes.buffer === this.memory.buffer) {
      this.count(bytes.byteOffset, Math.floor(bytes.length / codeBytes));
      return;
    }
    for (let at = 0; at < bytes.length; at += COPY_BYTES) {
      const piece = bytes.subarray(at, Math.min(bytes.length, at + COPY_BYTES));
      new Uint8Array(this.memory.buffer, this.copyOffset, piece.length).set(piece);
      this.count(this.copyOffset, Math.floor(piece.length / codeBytes));
    }
  }

  private count(offset: number, n: number): void {
    if (this.sinceFlush + n >= FLUSH_EVERY) this.flush();
    this.run(offset, n);
    this.sinceFlush += n;
  }

  /** How many times each code occurred so far. */
  counts(): Float64Array {
    this.flush();
    return this.totals.slice();
  }

  private flush(): void {
    const tables = new Uint32Array(this.memory.buffer, 0, 2 * this.tableCodes);
    const codes = this.tableCodes;
    for (let k = 0; k < codes; k++) this.totals[k]! += tables[k]! + tables[codes + k]!;
    tables.fill(0);
    this.sinceFlush = 0;
  }
}

/** The plain-JavaScript count the kernel must agree with. */
export function countCodesJs(bytes: Uint8Array, bits: 8 | 16): Float64Array {
  const counts = new Float64Array(1 << bits);
  if (bits === 8) for (let i = 0; i < bytes.length; i++) counts[bytes[i]!]!++;
  else for (let i = 0; i + 1 < bytes.length; i += 2) counts[bytes[i]! | (bytes[i + 1]! << 8)]!++;
  return counts;
}
