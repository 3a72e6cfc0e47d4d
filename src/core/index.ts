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
export { checkShardName, mapBounded, openShardedIndex, parseIndexJson, type IndexOptions } from './formats/shardedIndex';
export * from './formats/safetensors/writer';
export { openFlaxMsgpackFile, openFlaxMsgpackIndex, type MsgpackOptions } from './formats/msgpack/reader';
export { scanMsgpack, type MsgNode, type ScanOptions } from './formats/msgpack/scanner';
export { numpyDtype } from './formats/msgpack/flax';
export * from './formats/open';
export { NodeFileOpener, openAtomicFileSink } from './node/fileOpener';
