/** The public surface of core: the CLI and the extension import only from here. */
export * from './errors';
export * from './limits';
export * from './checkpoint';
export * from './tensor/dtype';
export { decodeChunk, f16ToNumber } from './tensor/decode';
export * from './tensor/stats';
export * from './io/byteSource';
export { parseHeaderJson, parseHeaderLength, type HeaderOptions, type ParsedHeader } from './formats/safetensors/header';
export * from './formats/safetensors/reader';
export * from './formats/safetensors/writer';
export * from './formats/open';
export { NodeFileOpener, openAtomicFileSink } from './node/fileOpener';
