/**
 * Counts how often each 8- or 16-bit code occurs, in a tiny hand-assembled WebAssembly kernel:
 * a JavaScript loop pays a bounds check on every table update and runs about 2.5x slower, and this
 * count is what bf16/f16/f8 statistics cost (see codeCounts.ts). The module is 120 bytes, built
 * below with each instruction named; `countCodesJs` is the plain loop it must agree with (tested).
 */

// Opcodes (WebAssembly core spec, binary format).
const LOCAL_GET = 0x20, LOCAL_SET = 0x21, LOCAL_TEE = 0x22, I32_CONST = 0x41, I32_ADD = 0x6a, I32_SHL = 0x74;
const I32_GE_U = 0x4f, BLOCK = 0x02, LOOP = 0x03, BR = 0x0c, BR_IF = 0x0d, END = 0x0b, VOID = 0x40, I32 = 0x7f;
const I32_LOAD = 0x28, I32_STORE = 0x36, I32_LOAD8_U = 0x2d, I32_LOAD16_U = 0x2f;

/** count(src, n, table): for each of n codes at src (1 or 2 bytes each), table[code] += 1 (u32). */
function countBody(load: number, codeBytesLog2: 0 | 1): number[] {
  const [src, n, table, end, slot] = [0, 1, 2, 3, 4];
  const code = [
    // end = src + (n << log2)
    LOCAL_GET, src, LOCAL_GET, n, ...(codeBytesLog2 ? [I32_CONST, 1, I32_SHL] : []), I32_ADD, LOCAL_SET, end,
    BLOCK, VOID, LOOP, VOID,
    LOCAL_GET, src, LOCAL_GET, end, I32_GE_U, BR_IF, 1, // while (src < end)
    // slot = table + (code << 2)
    LOCAL_GET, table, LOCAL_GET, src, load, codeBytesLog2, 0, I32_CONST, 2, I32_SHL, I32_ADD, LOCAL_TEE, slot,
    // *slot += 1
    LOCAL_GET, slot, I32_LOAD, 2, 0, I32_CONST, 1, I32_ADD, I32_STORE, 2, 0,
    // src += code bytes
    LOCAL_GET, src, I32_CONST, 1 << codeBytesLog2, I32_ADD, LOCAL_SET, src,
    BR, 0, END, END, END,
  ];
  const withLocals = [1, 2, I32, ...code]; // two i32 locals: end, slot
  return [withLocals.length, ...withLocals];
}

function moduleBytes(): Uint8Array {
  const section = (id: number, bytes: number[]) => [id, bytes.length, ...bytes];
  const name = (s: string) => [s.length, ...[...s].map((c) => c.charCodeAt(0))];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    ...section(1, [1, 0x60, 3, I32, I32, I32, 0]), // one type: (i32, i32, i32) -> ()
    ...section(3, [2, 0, 0]), // two functions of that type
    ...section(5, [1, 0, 1]), // one memory, at least one page (grown from JS)
    ...section(7, [3, ...name('mem'), 2, 0, ...name('count16'), 0, 0, ...name('count8'), 0, 1]),
    ...section(10, [2, ...countBody(I32_LOAD16_U, 1), ...countBody(I32_LOAD8_U, 0)]),
  ]);
}

// The few WebAssembly types used here: core's type-check target has no DOM lib, which declares them.
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
type Kernel = (src: number, n: number, table: number) => void;
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: { mem: WasmMemory; count16: Kernel; count8: Kernel } };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

let compiled: object | undefined;

/** Bytes copied into wasm memory per kernel call. */
const AREA_BYTES = 4 << 20;
/** Per-code u32 counts are moved to float64 totals before they could overflow. */
const FLUSH_EVERY = 2 ** 31;

export class CodeCounter {
  private readonly memory: WasmMemory;
  private readonly run: Kernel;
  private readonly tableCodes: number;
  private readonly areaOffset: number;
  private readonly totals: Float64Array;
  private sinceFlush = 0;

  constructor(readonly bits: 8 | 16) {
    compiled ??= new wasm.Module(moduleBytes());
    const exports = new wasm.Instance(compiled).exports;
    this.memory = exports.mem;
    this.run = bits === 16 ? exports.count16 : exports.count8;
    this.tableCodes = 1 << bits;
    this.areaOffset = this.tableCodes * 4;
    this.memory.grow(Math.ceil((this.areaOffset + AREA_BYTES) / 65536));
    this.totals = new Float64Array(this.tableCodes);
  }

  /** Counts the codes in `bytes` (whole codes, little-endian). */
  add(bytes: Uint8Array): void {
    const codeBytes = this.bits / 8;
    for (let at = 0; at < bytes.length; at += AREA_BYTES) {
      const piece = bytes.subarray(at, Math.min(bytes.length, at + AREA_BYTES));
      const n = Math.floor(piece.length / codeBytes);
      if (this.sinceFlush + n >= FLUSH_EVERY) this.flush();
      new Uint8Array(this.memory.buffer, this.areaOffset, piece.length).set(piece);
      this.run(this.areaOffset, n, 0);
      this.sinceFlush += n;
    }
  }

  /** How many times each code occurred so far. */
  counts(): Float64Array {
    this.flush();
    return this.totals.slice();
  }

  private flush(): void {
    const table = new Uint32Array(this.memory.buffer, 0, this.tableCodes);
    for (let k = 0; k < table.length; k++) this.totals[k]! += table[k]!;
    table.fill(0);
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
