/**
 * What SGLang-JAX, at the commit the project runs, needs of an export beyond what vLLM and SGLang
 * need: a model class for the architecture, a head_dim its kernels take, and (a note) bfloat16 on
 * TPU. Each rule cites the engine's source or a recorded run.
 */
import { SGLANG_JAX_ARCHITECTURES, SGLANG_JAX_COMMIT, SGLANG_JAX_MODELS_FOLDER, SGLANG_JAX_TRANSFORMERS_FALLBACK } from '../serve/sglangJaxArchitectures';

/** The recorded run of an export with head_dim 16 (hidden 64, 4 heads) on SGLang-JAX. */
export const SGLANG_JAX_HEAD_DIM_EVIDENCE = 'test/fixtures/sglang-jax-cddbf6f1-jax0.11.2-2026-12-04/sglang-jax-headdim16-fail.log';

/** The KV cache's and the attention kernels' unit: head_dim is padded to it, and asserted. */
export const SGLANG_JAX_HEAD_DIM_ALIGN = 128;

export interface SglangJaxFinding {
  readonly severity: 'error' | 'warning' | 'info';
  readonly code: string;
  readonly message: string;
}

const int = (v: unknown): number | undefined => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined);

/**
 * head_dim as SGLang-JAX's model config takes it (sgl_jax/srt/configs/model_config.py: getattr(…,
 * "head_dim", hidden_size // num_attention_heads)): the config's, else the floor of the quotient,
 * which it takes even where the heads do not divide the hidden size.
 */
function headDim(c: Record<string, unknown>): { value: number; how: string } | undefined {
  const given = int(c.head_dim);
  if (given) return { value: given, how: `head_dim ${given}` };
  const hidden = int(c.hidden_size);
  const heads = int(c.num_attention_heads);
  if (!hidden || !heads) return undefined;
  const value = Math.floor(hidden / heads);
  return { value, how: `head_dim ${value} (hidden_size ${hidden} ${hidden % heads === 0 ? '/' : '//'} num_attention_heads ${heads})` };
}

export function sglangJaxFindings(config: Record<string, unknown>): SglangJaxFinding[] {
  const out: SglangJaxFinding[] = [];
  const at = `SGLang-JAX ${SGLANG_JAX_COMMIT}`;

  // registry.py resolves the first listed architecture it has a class for (any of them will do).
  const archs = Array.isArray(config.architectures) ? config.architectures.filter((a): a is string => typeof a === 'string') : [];
  if (archs.length && !archs.some((a) => SGLANG_JAX_ARCHITECTURES.includes(a))) {
    // registry.py's _normalize_archs appends TransformersForCausalLM for an unknown name; whether a
    // class of that name exists at the commit is read from the source by the generator.
    const fallback = SGLANG_JAX_TRANSFORMERS_FALLBACK
      ? 'it falls back to TransformersForCausalLM, the transformers implementation, which may be slow or unsupported'
      : 'its registry falls back to "TransformersForCausalLM", but no file of that commit defines it, so the start fails with a ValueError ("Model architectures … are not supported for now")';
    out.push({
      severity: 'error',
      code: 'engine-architecture',
      message: `${at} has no model class for ${archs.join(', ')}: ${fallback}. Its ${SGLANG_JAX_MODELS_FOLDER}/*.py register (EntryClass): ${SGLANG_JAX_ARCHITECTURES.join(', ')}. Serve this export with vLLM or SGLang.`,
    });
  }

  // Multimodal configs keep the language model's sizes in text_config.
  const text = typeof config.text_config === 'object' && config.text_config !== null && config.hidden_size === undefined ? (config.text_config as Record<string, unknown>) : config;
  const hd = headDim(text);
  // MLA models (kv_lora_rank) cache a compressed latent, not heads: their kernels align those sizes themselves.
  if (hd && text.kv_lora_rank === undefined && hd.value % SGLANG_JAX_HEAD_DIM_ALIGN !== 0) {
    out.push({
      severity: 'error',
      code: 'sglang-jax-head-dim',
      message:
        `${hd.how} is not a multiple of ${SGLANG_JAX_HEAD_DIM_ALIGN}: ${at} pads the KV cache's head_dim to a multiple of 128 ` +
        `(sgl_jax/srt/mem_cache/memory_pool.py: head_dim_aligned = align_to(head_dim, 128)) and its attention kernels assert head_dim % 128 == 0; ` +
        `a real run with head_dim 16 started, then failed at its first request with "dot_general requires contracting dimensions to have the same shape, got (512,) and (64,)" ` +
        `(${SGLANG_JAX_HEAD_DIM_EVIDENCE}). Export a model whose head_dim is a multiple of 128, or serve this one with vLLM or SGLang.`,
    });
  }

  // model_config.py (_get_and_verify_dtype): --dtype auto serves the config's dtype, float32 when it names none.
  const dtype = typeof (config.dtype ?? config.torch_dtype) === 'string' ? String(config.dtype ?? config.torch_dtype) : 'float32';
  if (dtype !== 'bfloat16') {
    out.push({
      severity: 'info',
      code: 'sglang-jax-dtype',
      message: `config.json's dtype is ${dtype}${config.dtype ?? config.torch_dtype ? '' : ' (it names none)'}: ${at} serves the weights as ${dtype} (--dtype auto) and logs "Model dtype is ${dtype}. On TPU, using non-bfloat16 models may reduce performance." (sgl_jax/srt/configs/model_config.py). On TPU, export with --dtype bf16 or serve with --dtype bfloat16; for a check against transformers, float32 is the exact one.`,
    });
  }
  return out;
}
