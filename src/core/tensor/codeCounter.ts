/**
 * Counts how often each 8- or 16-bit code occurs, in a tiny hand-assembled WebAssembly kernel:
 * a JavaScript loop pays a bounds check on every table update and runs about 2.5x slower, and this
 * count is what bf16/f16/f8 statistics cost (see codeCounts.ts). The module is a few hundred bytes,
 * built below with each instruction named; `countCodesJs` is the plain loop it must agree with (tested).
 */
import { BLOCK, BR, BR_IF, compiler, END, I32, I32_ADD, I32_AND, I32_CONST, I32_GE_U, I32_LOAD, I32_LOAD16_U, I32_LOAD8_U, I32_SHL, I32_STORE, i32Const, KernelMemory, leb, LOCAL_GET, LOCAL_SET, LOCAL_TEE, LOOP, moduleBytes, VOID } from './wasm';
import type { ReuseBuffers } from './read';

/** Bytes of one count table: a u32 per code. */
const tableBytesOf = (bits: 8 | 16) => 4 << bits;
/** Count tables, and codes per turn of the kernel's loop (a power of two): code k of a turn goes to table k. */
const TABLES = 4;
/**
 * Table k starts k cache lines past a multiple of 4 KiB: one code's counters in tables a whole
 * number of pages apart alias in the CPU's store-to-load check and serialise again (a run of zeros
 * counted at half the speed, measured).
 */
const tableStride = (tableBytes: number) => tableBytes + 64;

/**
 * count(src, n): for each of n codes at src (1 or 2 bytes each), tables[k][code] += 1 (u32), the
 * tables `tableStride` apart from address 0. Four codes per turn, each into its own table: a run of
 * one code (zeros, a constant) then updates four counters in turn instead of waiting on one store
 * before the next load of the same word. The last n % 4 codes go through a one-code loop.
 */
function countCode(load: number, codeBytesLog2: 0 | 1, tableBytes: number): number[] {
  const [src, n, end, slot] = [0, 1, 2, 3];
  const step = 1 << codeBytesLog2;
  // *(table + (code << 2)) += 1 for the code at src + at; the table base rides in the memarg offset.
  const bump = (at: number, table: number) => [
    LOCAL_GET, src, load, codeBytesLog2, ...leb(at), I32_CONST, 2, I32_SHL, LOCAL_TEE, slot,
    LOCAL_GET, slot, I32_LOAD, 2, ...leb(table), I32_CONST, 1, I32_ADD, I32_STORE, 2, ...leb(table),
  ];
  const advance = (codes: number) => [LOCAL_GET, src, ...i32Const(codes * step), I32_ADD, LOCAL_SET, src];
  const loop = (body: number[]) => [
    BLOCK, VOID, LOOP, VOID,
    LOCAL_GET, src, LOCAL_GET, end, I32_GE_U, BR_IF, 1, // while (src < end)
    ...body,
    BR, 0, END, END,
  ];
  const code = [
    // end = src + ((n & ~3) << log2): the unrolled part, a code per table each turn
    LOCAL_GET, src, LOCAL_GET, n, ...i32Const(-TABLES), I32_AND, ...(codeBytesLog2 ? [I32_CONST, 1, I32_SHL] : []), I32_ADD, LOCAL_SET, end,
    ...loop([...Array.from({ length: TABLES }, (_, k) => bump(k * step, k * tableStride(tableBytes))).flat(), ...advance(TABLES)]),
    // end = src + ((n & 3) << log2): the rest, one code at a time
    LOCAL_GET, src, LOCAL_GET, n, ...i32Const(TABLES - 1), I32_AND, ...(codeBytesLog2 ? [I32_CONST, 1, I32_SHL] : []), I32_ADD, LOCAL_SET, end,
    ...loop([...bump(0, 0), ...advance(1)]),
    END,
  ];
  return code;
}

const counterModule = compiler(() => {
  // count(src, n), locals end and slot.
  const kernel = (name: string, code: number[]) => ({ name, params: [I32, I32], results: [], locals: [[2, I32]] as const, code });
  return moduleBytes([kernel('count16', countCode(I32_LOAD16_U, 1, tableBytesOf(16))), kernel('count8', countCode(I32_LOAD8_U, 0, tableBytesOf(8)))]);
});

type Kernel = (src: number, n: number) => void;

/** Per-code u32 counts are moved to float64 totals before they could overflow (no counter exceeds the codes counted since). */
const FLUSH_EVERY = 2 ** 31;

export class CodeCounter {
  private readonly memory: KernelMemory<{ count16: Kernel; count8: Kernel }>;
  private readonly run: Kernel;
  private readonly tableCodes: number;
  private readonly totals: Float64Array;
  private sinceFlush = 0;

  /** `readBytes`: the size of each of the two read areas, whose chunks are counted with no copy. */
  constructor(readonly bits: 8 | 16, readBytes = 0) {
    // The two count tables are the memory's header.
    this.memory = new KernelMemory(counterModule(), TABLES * tableStride(tableBytesOf(bits)), readBytes);
    this.run = bits === 16 ? this.memory.exports.count16 : this.memory.exports.count8;
    this.tableCodes = 1 << bits;
    this.totals = new Float64Array(this.tableCodes);
  }

  /** Two areas of the counter's memory to read chunks into. */
  get readBuffers(): ReuseBuffers | undefined {
    return this.memory.readBuffers;
  }

  /** Counts the codes in `bytes` (whole codes, little-endian): in place when they lie in a read area. */
  add(bytes: Uint8Array): void {
    this.memory.each(bytes, this.bits / 8, (offset, n) => this.count(offset, n));
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
    const codes = this.tableCodes;
    for (let t = 0; t < TABLES; t++) {
      const table = new Uint32Array(this.memory.buffer, t * tableStride(4 * codes), codes);
      for (let k = 0; k < codes; k++) this.totals[k]! += table[k]!;
      table.fill(0);
    }
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
