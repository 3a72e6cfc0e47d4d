/** `jax-serve fit DIR --gpu NAME`: will the model fit, and at which TP and max length? Exit 1 when it does not. */
import { acceleratorNamed, ACCELERATORS, DEFAULT_MEMORY_FRACTION, FIT_ENGINES, fitFolder, gib, JaxServeError, MAX_DEVICES, xlaFraction, type FitEngine, type FitReport } from '../core/index';
import type { NodeFileOpener } from '../core/node/index';
import { JSON_OPTION, wholeOption, type Args, type CommandSpec } from './args';
import { print } from './output';

export const FIT_COMMAND: CommandSpec = {
  name: 'fit',
  synopsis: 'DIR',
  summary:
    "Work out whether a model fits the accelerators before launching it: weights per device under tensor parallelism, KV cache bytes per token, the tokens and sequences the KV cache holds, the valid TP sizes and the smallest that fits. DIR is an export (parameters counted from its tensors) or a folder holding only config.json (counted from the architecture). Every number says how it was computed (--json: `reasons`). Exit 0 when it fits, 1 when it does not, 2 on bad input.",
  options: [
    { name: '--gpu', value: 'NAME', required: true, description: `The accelerator: ${ACCELERATORS.map((a) => a.name).join(', ')}; or NAME=SIZE for another (e.g. rtx4090=24564MiB, memory as nvidia-smi reports it).` },
    { name: '--count', value: 'N', default: '1', description: 'Devices (at most 1024).' },
    { name: '--tp', value: 'T', default: 'the count', description: 'Tensor-parallel size.' },
    { name: '--engine', value: FIT_ENGINES.join('|'), default: 'vllm', description: 'The engine whose memory rules apply.' },
    { name: '--max-model-len', value: 'L', default: "config.json's max_position_embeddings", description: 'Tokens one sequence may hold.' },
    { name: '--memory-fraction', value: 'F', default: "the engine's own", description: `vLLM --gpu-memory-utilization (${DEFAULT_MEMORY_FRACTION.vllm}), SGLang and SGLang-JAX --mem-fraction-static (${DEFAULT_MEMORY_FRACTION.sglang}). SGLang-JAX on a GPU applies it inside XLA's limit (75 %, or XLA_PYTHON_CLIENT_MEM_FRACTION when set).` },
    { name: '--dtype', value: 'bf16|f16|f32|keep', default: 'keep', description: "The serving dtype; keep: the tensors' (or config.json's). Also auto: the engine's own choice (vLLM and SGLang serve an f32 model as bf16), as the Serve panel sizes a launch with no dtype." },
    { name: '--kv-dtype', value: 'auto|fp8', default: 'auto', description: 'KV cache dtype; auto: the serving dtype.' },
    JSON_OPTION,
  ],
};

const one = (args: Args, name: string) => args.values.get(name)?.at(-1);

export async function fitCommand(args: Args, opener: NodeFileOpener): Promise<void> {
  if (args.positional.length !== 1) throw new JaxServeError('E_USAGE', 'fit takes one DIR.');
  const gpu = one(args, '--gpu');
  if (!gpu) throw new JaxServeError('E_USAGE', `fit needs --gpu NAME: ${ACCELERATORS.map((a) => a.name).join(', ')}, or NAME=SIZE.`);
  const accelerator = acceleratorNamed(gpu);
  const engine = (one(args, '--engine') ?? 'vllm') as FitEngine;
  if (!FIT_ENGINES.includes(engine)) throw new JaxServeError('E_USAGE', `--engine ${JSON.stringify(engine).slice(0, 40)}: choose ${FIT_ENGINES.join(', ')}.`);
  const count = wholeOption(args, '--count', MAX_DEVICES) ?? 1;
  const tp = wholeOption(args, '--tp', MAX_DEVICES);
  const fractionText = one(args, '--memory-fraction');
  const memoryFraction = fractionText === undefined ? undefined : Number(fractionText);
  if (memoryFraction !== undefined && !(memoryFraction > 0 && memoryFraction <= 1)) throw new JaxServeError('E_USAGE', `--memory-fraction ${JSON.stringify(fractionText).slice(0, 40)}: give a number above 0 and at most 1.`);
  const dtype = one(args, '--dtype') ?? 'keep';
  if (!['bf16', 'f16', 'f32', 'keep', 'auto'].includes(dtype)) throw new JaxServeError('E_USAGE', `--dtype ${JSON.stringify(dtype).slice(0, 40)}: choose bf16, f16, f32, keep or auto.`);
  const kvDType = one(args, '--kv-dtype') ?? 'auto';
  if (kvDType !== 'auto' && kvDType !== 'fp8') throw new JaxServeError('E_USAGE', `--kv-dtype ${JSON.stringify(kvDType).slice(0, 40)}: choose auto or fp8.`);
  const report = await fitFolder(opener, args.positional[0]!, {
    engine,
    accelerator,
    count,
    tp,
    memoryFraction,
    maxModelLen: wholeOption(args, '--max-model-len'),
    dtype: dtype as 'bf16' | 'f16' | 'f32' | 'keep' | 'auto',
    kvDType,
    xlaMemFraction: engine === 'sglang-jax' ? xlaFraction(process.env) : undefined,
  });
  print(args.json ? JSON.stringify(report) + '\n' : fitText(report));
  if (!report.fits) process.exitCode = 1;
}


export function fitText(r: FitReport): string {
  const lines = [
    `${r.fits ? 'fits' : 'does not fit'}: ${r.count} × ${r.accelerator}, ${r.engine}, TP ${r.tp}, ${r.dtype}, max length ${r.maxModelLen}`,
    `  parameters      ${r.paramCount.toLocaleString('en-US')} (${r.reasons.paramCount})`,
    `  weights         ${gib(r.weightBytes)}; ${gib(r.weightBytesPerDevice)} a device (${r.reasons.weightBytesPerDevice})`,
    `  usable          ${gib(r.budgetBytesPerDevice)} a device (${r.reasons.budgetBytesPerDevice})`,
    `  reserve         ${gib(r.reserveBytes)} (${r.reasons.reserveBytes})`,
    `  KV cache pool   ${gib(r.poolBytesPerDevice)} a device (${r.reasons.poolBytesPerDevice})`,
    `  KV a token      ${r.kvBytesPerToken.toLocaleString('en-US')} bytes; ${r.kvBytesPerTokenPerDevice.toLocaleString('en-US')} a device (${r.reasons.kvBytesPerToken})`,
    `  KV tokens       ${r.kvTokens.toLocaleString('en-US')} a device`,
    `  sequences       ${r.maxConcurrency.toFixed(2)} of ${r.maxModelLen} tokens at once (${r.reasons.kvBytesPerSequence} for the model)`,
    `  valid TP        ${r.validTp.join(', ') || 'none'}; smallest that fits: ${r.minTp ?? 'none'}`,
  ];
  for (const p of r.problems) lines.push(`  problem         ${p}`);
  return lines.join('\n') + '\n';
}
