/**
 * What the hand-assembled WebAssembly kernels (codeCounter.ts, f32Moments.ts) share: the opcodes
 * they use (core spec, binary format; SIMD ones take the 0xfd prefix), the module layout, and the
 * memory they count in: a kernel's own header, a copy area, and two areas reads land in directly.
 */
import type { ReuseBuffers } from './read';

export const LOCAL_GET = 0x20, LOCAL_SET = 0x21, LOCAL_TEE = 0x22, I32_CONST = 0x41, I32_ADD = 0x6a, I32_SHL = 0x74, I32_AND = 0x71;
export const I32_GE_U = 0x4f, BLOCK = 0x02, LOOP = 0x03, BR = 0x0c, BR_IF = 0x0d, END = 0x0b, VOID = 0x40;
export const I32_LOAD = 0x28, I32_STORE = 0x36, I32_LOAD8_U = 0x2d, I32_LOAD16_U = 0x2f;
export const I32 = 0x7f, F64 = 0x7c, V128 = 0x7b;

/** SIMD instructions: 0xfd, then the opcode as unsigned LEB128. */
const simd = (opcode: number) => [0xfd, ...leb(opcode)];
export const V128_LOAD = simd(0x00), V128_STORE = simd(0x0b), V128_LOAD64_ZERO = simd(0x5d), F64X2_PROMOTE_LOW_F32X4 = simd(0x5f), F64X2_SPLAT = simd(0x14);
export const F32X4_EQ = simd(0x41), I32X4_SUB = simd(0xb1), F32X4_PMIN = simd(0xea), F32X4_PMAX = simd(0xeb);
export const F64X2_ADD = simd(0xf0), F64X2_SUB = simd(0xf1), F64X2_MUL = simd(0xf2);

/** Unsigned LEB128, as sizes, indices and memarg offsets are encoded. */
export function leb(n: number): number[] {
  const out: number[] = [];
  do {
    const b = n & 0x7f;
    n >>>= 7;
    out.push(n ? b | 0x80 : b);
  } while (n);
  return out;
}

/** i32.const n: its operand is signed LEB128 (64 already needs two bytes). */
export function i32Const(n: number): number[] {
  const out = [I32_CONST];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) return [...out, b];
    out.push(b | 0x80);
  }
}

export interface KernelFunction {
  readonly name: string;
  readonly params: readonly number[];
  readonly results: readonly number[];
  /** Locals after the parameters, as [count, type] runs. */
  readonly locals: readonly (readonly [number, number])[];
  /** The instructions, ending with END. */
  readonly code: readonly number[];
}

/** A module of `functions` (each exported by name) and one memory exported as `mem`, of one page until grown. */
export function moduleBytes(functions: readonly KernelFunction[]): Uint8Array {
  const section = (id: number, bytes: number[]) => [id, ...leb(bytes.length), ...bytes];
  const name = (s: string) => [s.length, ...[...s].map((c) => c.charCodeAt(0))];
  const vec = (items: number[][]) => [...leb(items.length), ...items.flat()];
  const bodies = functions.map((f) => {
    const body = [...vec(f.locals.map(([count, type]) => [...leb(count), type])), ...f.code];
    return [...leb(body.length), ...body];
  });
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    ...section(1, vec(functions.map((f) => [0x60, ...vec(f.params.map((p) => [p])), ...vec(f.results.map((r) => [r]))]))), // a type per function
    ...section(3, vec(functions.map((_, i) => leb(i)))),
    ...section(5, [1, 0, 1]), // one memory, at least one page
    ...section(7, vec([[...name('mem'), 2, 0], ...functions.map((f, i) => [...name(f.name), 0, ...leb(i)])])),
    ...section(10, vec(bodies)),
  ]);
}

// The few WebAssembly types used here: core's type-check target has no DOM lib, which declares them.
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> & { mem: WasmMemory } };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** Bytes copied into a kernel's memory per call, for bytes that were not read into it. */
const COPY_BYTES = 1 << 20;

/**
 * One instance of a compiled kernel module and its memory: [header | copy area | read area | read area].
 * The layout is fixed at construction: growing the memory would detach the read areas' views.
 */
export class KernelMemory<E> {
  readonly exports: E;
  readonly buffer: ArrayBuffer;
  private readonly copyOffset: number;
  /** Two areas to read chunks into, worked on in place (none when built with readBytes 0). */
  readonly readBuffers: ReuseBuffers | undefined;

  constructor(module: object, headerBytes: number, readBytes: number) {
    const instance = new wasm.Instance(module);
    const mem = instance.exports.mem;
    this.exports = instance.exports as unknown as E;
    this.copyOffset = headerBytes;
    const readOffset = headerBytes + COPY_BYTES;
    mem.grow(Math.ceil((readOffset + 2 * readBytes) / 65536));
    this.buffer = mem.buffer;
    this.readBuffers = readBytes > 0 ? [new Uint8Array(this.buffer, readOffset, readBytes), new Uint8Array(this.buffer, readOffset + readBytes, readBytes)] : undefined;
  }

  /**
   * Calls `run(offset, n)` over the `unit`-byte elements of `bytes`: in place when they lie in this
   * memory (a read area), else copied into the copy area a piece at a time. `bytes` holds whole elements.
   */
  each(bytes: Uint8Array, unit: number, run: (offset: number, n: number) => void): void {
    if (bytes.buffer === this.buffer) {
      run(bytes.byteOffset, Math.floor(bytes.length / unit));
      return;
    }
    const piece = Math.floor(COPY_BYTES / unit) * unit;
    for (let at = 0; at < bytes.length; at += piece) {
      const part = bytes.subarray(at, Math.min(bytes.length, at + piece));
      new Uint8Array(this.buffer, this.copyOffset, part.length).set(part);
      run(this.copyOffset, Math.floor(part.length / unit));
    }
  }
}

/** Compiles once per process (module bytes are fixed). */
export function compiler(bytes: () => Uint8Array): () => object {
  let compiled: object | undefined;
  return () => (compiled ??= new wasm.Module(bytes()));
}
