/**
 * Positioned reads of one file's bytes. Readers and statistics go through this so the CLI, the
 * extension host, workers and tests share one parser, and nothing needs a whole file in memory.
 */
import { JaxServeError } from '../errors';

export interface ByteSource {
  /** What to call the file in messages (its path). */
  readonly name: string;
  /** Total bytes. */
  readonly size: number;
  /** Reads up to target.length bytes at offset into target; returns the number of bytes read. */
  read(offset: number, target: Uint8Array): Promise<number>;
  /**
   * As read, on the calling thread, for a read of at most `syncBytes`: present only where blocking
   * the thread is allowed (a worker's files). Many small reads (a tile's rows) then cost a system
   * call each, not a round of promises.
   */
  readonly readSync?: (offset: number, target: Uint8Array) => number;
  readonly syncBytes?: number;
  /** Releases any handle. Idempotent. */
  close(): Promise<void>;
}

/** Reads exactly target.length bytes or throws, naming the file. */
export async function readExactly(src: ByteSource, offset: number, target: Uint8Array): Promise<void> {
  let done = 0;
  while (done < target.length) {
    const n = await src.read(offset + done, target.subarray(done));
    if (n <= 0) throw endedEarly(src, offset + done);
    done += n;
  }
}

/** As readExactly, with the source's readSync. */
export function readExactlySync(src: ByteSource, readSync: NonNullable<ByteSource['readSync']>, offset: number, target: Uint8Array): void {
  let done = 0;
  while (done < target.length) {
    const n = readSync(offset + done, target.subarray(done));
    if (n <= 0) throw endedEarly(src, offset + done);
    done += n;
  }
}

function endedEarly(src: ByteSource, at: number): JaxServeError {
  return new JaxServeError('E_IO', `${src.name}: unexpected end of file at byte ${at} (file is ${src.size} bytes); it may have been truncated or changed while reading.`);
}

/** An in-memory source: tests, and small files already read. */
export class MemoryByteSource implements ByteSource {
  constructor(readonly name: string, private readonly bytes: Uint8Array) {}
  get size(): number {
    return this.bytes.length;
  }
  async read(offset: number, target: Uint8Array): Promise<number> {
    if (offset >= this.bytes.length) return 0;
    const n = Math.min(target.length, this.bytes.length - offset);
    target.set(this.bytes.subarray(offset, offset + n));
    return n;
  }
  async close(): Promise<void> {}
}

/** Opens files by path. core/node provides the real one; tests may provide a map of buffers. */
export interface FileOpener {
  open(path: string): Promise<ByteSource>;
  /** Whole small file (index JSON, config); must refuse files larger than maxBytes. */
  readSmall(path: string, maxBytes: number): Promise<Uint8Array>;
  /** What is at a path, or undefined when nothing is. */
  kind(path: string): Promise<'file' | 'directory' | undefined>;
  /** Names inside a folder (openers over files only may leave it out). */
  list?(dir: string): Promise<string[]>;
  /**
   * An opener that refuses every path whose real path leaves `location` (a folder the user named,
   * or a file and the folder it is in). Openers over memory may leave it out.
   */
  within?(location: string): Promise<FileOpener>;
}

/** `opener` confined to `location` where it can be (FileOpener.within), else `opener` itself. */
export async function openerWithin(opener: FileOpener, location: string): Promise<FileOpener> {
  return opener.within ? opener.within(location) : opener;
}

/** Where bytes go, one chunk after another; `commit` makes the result visible, `abort` removes it. */
export interface ByteSink {
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Random access inside what is being written (files only): writes at an absolute position without
   * moving the sequential cursor; `skip` then moves the cursor past a region filled this way.
   */
  writeAt?(position: number, chunk: Uint8Array): Promise<void>;
  skip?(bytes: number): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}
