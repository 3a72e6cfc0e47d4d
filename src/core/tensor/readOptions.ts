/** How a tensor's bytes are read; its own file, free of Node imports, so the statistics types that extend it are too. */
export interface ReadOptions {
  chunkBytes?: number;
  signal?: AbortSignal;
}
