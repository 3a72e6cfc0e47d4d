/**
 * config.json as written into an export. JSON has one number type, but transformers 5 checks config
 * fields against their declared types, and some are `float` only: a base config's
 * `"router_jitter_noise": 0.0` parsed and written back as `0` stops `from_pretrained` ("expected
 * float, got int"). Those keys keep a decimal point.
 */

/**
 * Fields declared `float` (not `float | int`) in the configs of the classes an export targets
 * (transformers 5.23: LlamaConfig, Qwen3Config, Gemma3TextConfig, MixtralConfig, Qwen3MoeConfig).
 */
const FLOAT_FIELDS = new Set(['initializer_range', 'rms_norm_eps', 'router_aux_loss_coef', 'router_jitter_noise', 'final_logit_softcapping', 'attn_logit_softcapping']);

/** The text of config.json: JSON.stringify's, two-space indented, with float fields written as floats. */
export function configJson(config: Readonly<Record<string, unknown>>): string {
  const lines = Object.entries(config).map(([key, v]) => {
    // Below 1e21 an integer prints without an exponent, so ".0" makes it a float literal.
    const value = FLOAT_FIELDS.has(key) && typeof v === 'number' && Number.isInteger(v) && Math.abs(v) < 1e21 ? `${v}.0` : JSON.stringify(v, null, 2).replace(/\n/g, '\n  ');
    return `  ${JSON.stringify(key)}: ${value}`;
  });
  return lines.length ? `{\n${lines.join(',\n')}\n}` : '{}';
}
