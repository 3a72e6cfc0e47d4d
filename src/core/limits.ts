/**
 * Limits on untrusted input, each with its unit and reason. Every one can be overridden through the
 * options of the function that applies it (CLI flags, extension settings).
 */

/** Bytes in a safetensors JSON header. The reference reader refuses more (MAX_HEADER_SIZE = 100_000_000). */
export const MAX_HEADER_BYTES = 100_000_000;

/** Bytes of a `*.safetensors.index.json`. A 100k-tensor index is ~7 MB and a 1M-tensor one ~72 MB; 128 MiB opens the latter with room and still bounds memory. */
export const MAX_INDEX_BYTES = 128 * 1024 * 1024;

/** Distinct shard files one index may name. The largest public models use a few hundred. */
export const MAX_SHARD_COUNT = 10_000;

/** Dimensions of one tensor. Real models stay under 8; a hostile header could claim thousands. */
export const MAX_TENSOR_RANK = 64;

/** Shard headers read at once when opening an index: enough to hide latency, few enough for file handles. */
export const SHARD_OPEN_CONCURRENCY = 16;

/** Bytes read per request when streaming tensor values (stats, conversion). */
export const READ_CHUNK_BYTES = 4 * 1024 * 1024;

/** Default maximum shard size for written safetensors (transformers and MaxText default to a few GB). */
export const DEFAULT_MAX_SHARD_BYTES = 5 * 1024 ** 3;

/** safetensors file conventions (HF). */
export const SAFETENSORS_SINGLE_NAME = 'model.safetensors';
export const SAFETENSORS_INDEX_NAME = 'model.safetensors.index.json';
export const SAFETENSORS_INDEX_SUFFIX = '.safetensors.index.json';
export const SAFETENSORS_SUFFIX = '.safetensors';

/** Flax msgpack conventions (HF `modeling_flax_utils`, flax.serialization). */
export const FLAX_SINGLE_NAME = 'flax_model.msgpack';
export const FLAX_INDEX_NAME = 'flax_model.msgpack.index.json';
export const MSGPACK_SUFFIX = '.msgpack';
export const MSGPACK_INDEX_SUFFIX = '.msgpack.index.json';

/** Nesting of msgpack maps/arrays. A Flax tree is rarely 10 deep; a hostile file could recurse to blow the stack. */
export const MAX_MSGPACK_DEPTH = 64;

/** msgpack values (keys, leaves, containers) in one file. A 100k-tensor model has ~10 per tensor. */
export const MAX_MSGPACK_NODES = 5_000_000;

/** Bytes of one msgpack string (keys, dtype names). Real keys are short; this bounds memory. */
export const MAX_MSGPACK_STRING_BYTES = 1024 * 1024;

/**
 * Bytes of one line of a server's event stream. A chunk of one token is under 1 KB (a few KB with
 * logprobs); 16 MiB bounds the memory one line holds and ends a stream whose server never ends a line.
 */
export const MAX_SSE_LINE_BYTES = 16 * 1024 * 1024;

/**
 * Bytes a server's event stream may carry without completing an event (its data, comments and
 * blank lines included). The same 16 MiB: a server that sends without ever finishing an event is cut off.
 */
export const MAX_SSE_EVENT_BYTES = 16 * 1024 * 1024;

/**
 * Bytes of one streamed reply. Our requests ask for no logprobs, so a chunk is ~250 bytes and
 * 64 MiB is ~250k tokens, twice the longest output any model offers; past it the server is
 * sending without end (and the joined text stays far below V8's longest string).
 */
export const MAX_SSE_STREAM_BYTES = 64 * 1024 * 1024;

/**
 * Chunks in a row that carry no text. Engines send a few (the role, the finish reason, usage); a
 * server that sends only empty chunks is cut off here rather than after 64 MiB of them.
 */
export const MAX_SSE_EMPTY_CHUNKS = 10_000;

/**
 * Bytes of a server reply read whole: a generation that does not stream, /v1/models, /metrics.
 * A 32k-token reply with top-20 logprobs is ~32 MB; past 64 MiB the server is sending without end.
 */
export const MAX_SERVER_REPLY_BYTES = 64 * 1024 * 1024;

/** Bytes of an error body read for its message. The message is at the start; the rest is not read. */
export const MAX_SERVER_ERROR_BYTES = 64 * 1024;

/**
 * Milliseconds a reply may go without a complete event (or, not streamed, without its whole body)
 * before it is cut off. A healthy server sends one per token once prefill ends (a minute at most for
 * a 128k-token prompt on one GPU); Node's fetch already gives up after 300 s without a byte, and
 * this bounds a server that trickles bytes without finishing anything the same way.
 */
export const SERVER_IDLE_TIMEOUT_MS = 300_000;

/**
 * Text chunks a stream may carry beyond its max_tokens before it is cut off: engines send at most one
 * chunk a token (vLLM holds back incomplete UTF-8, SGLang detokenizes incrementally), plus a few
 * that only carry a finish reason or a stop string's tail.
 */
export const MAX_TOKENS_SLACK = 8;

/**
 * LoRA adapters one server is started with. vLLM keeps one GPU slot per adapter (--max-loras) and
 * SGLang-JAX pins each one in a batch slot; 64 is far past what a form or a command line holds.
 */
export const MAX_SERVED_ADAPTERS = 64;

/** Bytes of an adapter_config.json. PEFT writes under 2 KB; a rank_pattern over every module of a large model stays under 1 MiB. */
export const MAX_ADAPTER_CONFIG_BYTES = 1024 * 1024;

/**
 * An adapter's name, as requests and command lines carry it: a letter, then letters, digits, `.`,
 * `_` or `-`. No `=` (vLLM's and SGLang's `name=path`), no `:` (SGLang's `base:name` model), no
 * space or quote, and not SGLang-JAX's reserved "0" (sgl_jax/srt/server_args.py: "server-reserved").
 */
export const RE_ADAPTER_NAME = /^[A-Za-z][A-Za-z0-9._-]{0,63}$/;
