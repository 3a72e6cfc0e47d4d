/**
 * Preflight for SGLang-JAX on real exports: the canonical tiny Llama (head_dim 64) is refused with the
 * evidence, a head_dim-128 Llama written by transformers' save_pretrained passes; architectures come
 * from the list generated from SGLang-JAX's models folder (the generator is tested on a tarball it
 * has not seen, and its output on the kit's tarball is the committed module); the CLI prints one line
 * per finding with the exit code.
 */
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { compatTokenizerConfig, preflight, SGLANG_JAX_ARCHITECTURES, SGLANG_JAX_COMMIT, SGLANG_JAX_HEAD_DIM_EVIDENCE, sglangJaxFindings, type Finding } from '../../src/core/index';
import { canonicalSuite } from './canonicalSuite';

const ROOT = resolve(__dirname, '../../..');
const GENERATOR = join(ROOT, 'scripts/gpu/sglang-jax-architectures.py');
const KIT_TARBALL = resolve(ROOT, '../shared/gpu-kit/sglang-jax-cddbf6f1.tar.gz');

const notInfo = (fs: readonly Finding[]) => fs.filter((f) => f.severity !== 'info').map((f) => `${f.severity}:${f.code}`).sort();

describe('preflight --engine sglang-jax', function () {
  this.timeout(120_000);
  const suite = canonicalSuite();
  /** A Llama with head_dim 128 (2 heads over hidden 256), written by transformers, with the canonical tokenizer. */
  let head128: string;

  before(function () {
    head128 = join(suite.dir, 'head128');
    execFileSync(
      suite.python,
      [
        '-c',
        `import sys, torch
from transformers import LlamaConfig, LlamaForCausalLM
torch.manual_seed(0)
c = LlamaConfig(vocab_size=384, hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2, head_dim=128, max_position_embeddings=256, bos_token_id=0, eos_token_id=1, pad_token_id=2, dtype="bfloat16")
LlamaForCausalLM(c).to(torch.bfloat16).save_pretrained(sys.argv[1], safe_serialization=True)`,
        head128,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    for (const f of ['tokenizer.json', 'chat_template.jinja', 'generation_config.json']) copyFileSync(join(suite.fx.dir, 'hf', f), join(head128, f));
    // As an export has it: tokenizer_config.json in the form both transformers generations load.
    writeFileSync(join(head128, 'tokenizer_config.json'), compatTokenizerConfig(readFileSync(join(suite.fx.dir, 'hf', 'tokenizer_config.json'), 'utf8')).text);
  });

  /** A copy of the head_dim-128 export with config.json changed by `edit`. */
  function variant(name: string, edit: (c: Record<string, unknown>) => Record<string, unknown>): string {
    const d = join(suite.dir, name);
    mkdirSync(d);
    for (const f of ['model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja', 'generation_config.json']) copyFileSync(join(head128, f), join(d, f));
    writeFileSync(join(d, 'config.json'), JSON.stringify(edit(JSON.parse(readFileSync(join(head128, 'config.json'), 'utf8')))));
    return d;
  }

  it('refuses the canonical tiny Llama (head_dim 64), citing memory_pool.py, the kernels\' assert and the recorded failure; notes float32', async () => {
    const hf = join(suite.fx.dir, 'hf');
    const r = await preflight(suite.files, hf, { engines: ['sglang-jax'] });
    assert.deepEqual(r.engines, ['sglang-jax']);
    const f = r.findings.find((x) => x.code === 'sglang-jax-head-dim');
    assert.ok(f, JSON.stringify(r.findings));
    assert.equal(f.severity, 'error');
    assert.equal(f.file, join(hf, 'config.json'));
    assert.match(f.message, /^head_dim 64 is not a multiple of 128: SGLang-JAX cddbf6f1 pads/);
    assert.match(f.message, /sgl_jax\/srt\/mem_cache\/memory_pool\.py: head_dim_aligned = align_to\(head_dim, 128\)/);
    assert.match(f.message, /assert head_dim % 128 == 0/);
    assert.match(f.message, /got \(512,\) and \(64,\)/);
    assert.ok(f.message.includes(SGLANG_JAX_HEAD_DIM_EVIDENCE));
    assert.match(f.message, /Export a model whose head_dim is a multiple of 128, or serve this one with vLLM or SGLang\.$/);
    // The recorded log says what the message quotes (the fixture another part of issue 15 adds).
    const evidence = join(ROOT, SGLANG_JAX_HEAD_DIM_EVIDENCE);
    if (existsSync(evidence)) assert.match(readFileSync(evidence, 'utf8'), /dot_general requires contracting dimensions to have the same shape, got \(512,\) and \(64,\)/);
    const dtype = r.findings.find((x) => x.code === 'sglang-jax-dtype');
    assert.equal(dtype?.severity, 'info');
    assert.match(dtype!.message, /dtype is float32: .* logs "Model dtype is float32\. On TPU, using non-bfloat16 models may reduce performance\."/);
    // vLLM's and SGLang's rules (the default) know nothing of head_dim 128.
    assert.equal((await preflight(suite.files, hf)).findings.find((x) => x.code.startsWith('sglang-jax')), undefined);
  });

  it('passes a head_dim-128 bfloat16 Llama that transformers saved, with no dtype note', async () => {
    const r = await preflight(suite.files, head128, { engines: ['sglang-jax'] });
    assert.deepEqual(
      r.findings.filter((f) => f.severity !== 'info' || f.code.startsWith('sglang-jax')),
      [],
    );
    assert.equal(r.architecture, 'LlamaForCausalLM');
  });

  it('derives head_dim from hidden_size / num_attention_heads when config.json has none', async () => {
    const d = variant('derived', (c) => ({ ...c, head_dim: undefined, num_attention_heads: 4, num_key_value_heads: 4 }));
    const f = (await preflight(suite.files, d, { engines: ['sglang-jax'] })).findings.find((x) => x.code === 'sglang-jax-head-dim');
    assert.match(f?.message ?? '', /^head_dim 64 \(hidden_size 256 \/ num_attention_heads 4\) is not a multiple of 128/);
  });

  it('head_dim missing and the heads not dividing hidden_size: SGLang-JAX floors the quotient (model_config.py), so the rule does too; a text_config holds the sizes of a multimodal config', () => {
    const code = (c: Record<string, unknown>) => sglangJaxFindings(c).filter((f) => f.code === 'sglang-jax-head-dim').map((f) => f.message.split(' is not')[0]);
    assert.deepEqual(code({ architectures: ['LlamaForCausalLM'], hidden_size: 256, num_attention_heads: 3, dtype: 'bfloat16' }), ['head_dim 85 (hidden_size 256 // num_attention_heads 3)']);
    assert.deepEqual(code({ architectures: ['LlamaForCausalLM'], hidden_size: 385, num_attention_heads: 3, dtype: 'bfloat16' }), [], '385 // 3 = 128');
    assert.deepEqual(code({ architectures: ['LlamaForCausalLM'], hidden_size: 256, num_attention_heads: 4, head_dim: null, dtype: 'bfloat16' }), ['head_dim 64 (hidden_size 256 / num_attention_heads 4)'], 'a null head_dim (as Mistral configs write it) falls back');
    assert.deepEqual(code({ architectures: ['Gemma3ForConditionalGeneration'], text_config: { hidden_size: 300, num_attention_heads: 7 } }), ['head_dim 42 (hidden_size 300 // num_attention_heads 7)']);
    assert.deepEqual(code({ architectures: ['LlamaForCausalLM'], hidden_size: '256', num_attention_heads: 4 }), [], 'sizes that are not numbers: no head_dim to judge (the config checks name them)');
  });

  it('an architecture SGLang-JAX does not register is an error naming the list\'s source and the missing fallback; one it registers passes', async () => {
    const mistral = variant('mistral', (c) => ({ ...c, architectures: ['MistralForCausalLM'], model_type: 'mistral' }));
    const fs = (await preflight(suite.files, mistral, { engines: ['sglang-jax'] })).findings;
    assert.deepEqual(notInfo(fs), ['error:engine-architecture', 'warning:unchecked-architecture']);
    const m = fs.find((x) => x.code === 'engine-architecture')!.message;
    assert.match(m, /^SGLang-JAX cddbf6f1 has no model class for MistralForCausalLM: its registry falls back to "TransformersForCausalLM", but no file of that commit defines it/);
    assert.match(m, /sgl_jax\/srt\/models\/\*\.py register \(EntryClass\): .*LlamaForCausalLM.*Qwen3ForCausalLM/);
    // Registered by SGLang-JAX though jax-serve does not know its tensors: only that warning.
    const qwen2 = variant('qwen2', (c) => ({ ...c, architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2' }));
    assert.deepEqual(notInfo((await preflight(suite.files, qwen2, { engines: ['sglang-jax'] })).findings), ['warning:unchecked-architecture']);
    // Gemma 3 is vLLM's and SGLang's, not SGLang-JAX's at this commit (it has Gemma2 and Gemma4).
    assert.ok(!SGLANG_JAX_ARCHITECTURES.includes('Gemma3ForCausalLM') && SGLANG_JAX_ARCHITECTURES.includes('Gemma2ForCausalLM'));
  });

  it('the generator reads EntryClass (one class, a list, an alias) from the models folder only, with the commit from the tarball name', function () {
    const d = join(suite.dir, 'gen');
    mkdirSync(d);
    const tarball = join(d, 'sglang-jax-0123abc.tar.gz');
    execFileSync(suite.python, [
      '-c',
      `import io, sys, tarfile
files = {
  "sgl_jax/_version.py": "__version__ = version = '9.9.9'\\n",
  "sgl_jax/srt/models/one.py": "class OneForCausalLM: pass\\nEntryClass = OneForCausalLM\\n",
  "sgl_jax/srt/models/many.py": "from x import Real as Alias\\nclass A: pass\\nclass B(A): pass\\nC = B\\nEntryClass = [A, C, Alias]\\n",
  "sgl_jax/srt/models/none.py": "class Helper: pass\\n",
  "sgl_jax/srt/models/sub/deep.py": "class Deep: pass\\nEntryClass = Deep\\n",
  "sgl_jax/srt/layers/other.py": "class Layer: pass\\nEntryClass = Layer\\n",
}
with tarfile.open(sys.argv[1], "w:gz") as t:
  for name, text in files.items():
    b = text.encode(); i = tarfile.TarInfo(name); i.size = len(b); t.addfile(i, io.BytesIO(b))`,
      tarball,
    ]);
    const out = execFileSync(suite.python, [GENERATOR, tarball], { encoding: 'utf8' });
    assert.match(out, /export const SGLANG_JAX_COMMIT = "0123abc";/);
    assert.match(out, /export const SGLANG_JAX_VERSION = "9\.9\.9";/);
    assert.match(out, /export const SGLANG_JAX_TRANSFORMERS_FALLBACK = false;/);
    const list = JSON.parse(out.slice(out.indexOf('= [', out.indexOf('SGLANG_JAX_ARCHITECTURES')) + 2).replace(/,\s*\];\s*$/, ']')) as string[];
    assert.deepEqual(list, ['A', 'B', 'OneForCausalLM', 'Real']);
    // A tarball that is not named for its commit is refused in one line, exit 1.
    const bad = spawnSync(suite.python, [GENERATOR, join(d, 'nocommit.tar.gz')], { encoding: 'utf8' });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /must be sglang-jax-<commit>\.tar\.gz/);
  });

  it('the committed list is the generator\'s output on the GPU kit\'s tarball (where the kit is present)', function () {
    if (!existsSync(KIT_TARBALL)) this.skip();
    const out = execFileSync(suite.python, [GENERATOR, KIT_TARBALL], { encoding: 'utf8' });
    assert.equal(out, readFileSync(join(ROOT, 'src/core/serve/sglangJaxArchitectures.ts'), 'utf8'));
    assert.equal(SGLANG_JAX_COMMIT, 'cddbf6f1');
  });

  it('CLI: jax-serve preflight DIR --engine sglang-jax prints one "FILE: severity: message" line per finding and exits 1 on the head_dim error, 0 on the 128 export, 2 on an unknown engine', () => {
    const hf = join(suite.fx.dir, 'hf');
    const r = spawnSync(process.execPath, [join(ROOT, 'dist/cli.js'), 'preflight', hf, '--engine', 'sglang-jax'], { encoding: 'utf8' });
    assert.equal(r.status, 1, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    const findings = lines.slice(0, -1);
    assert.ok(findings.every((l) => /^\/.+?: (error|warning|info): \S/.test(l)), r.stdout);
    assert.ok(findings.includes(`${join(hf, 'config.json')}: error: ${readFindings(hf).find((f) => f.code === 'sglang-jax-head-dim')!.message}`));
    assert.equal(lines.at(-1), `${hf}: 1 error(s) for SGLang-JAX (LlamaForCausalLM)`);
    const ok = spawnSync(process.execPath, [join(ROOT, 'dist/cli.js'), 'preflight', head128, '--engine', 'sglang-jax'], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /: ready for SGLang-JAX \(LlamaForCausalLM\)\n$/);
    const bad = spawnSync(process.execPath, [join(ROOT, 'dist/cli.js'), 'preflight', hf, '--engine', 'tgi'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.equal(bad.stdout, '');
    assert.match(bad.stderr, /^jax-serve: --engine tgi: choose one of vllm, sglang, sglang-jax, transformers-serve\. \(jax-serve --help\)\n$/);
  });

  /** The findings the CLI's --json gives for a folder. */
  function readFindings(dir: string): Finding[] {
    const r = spawnSync(process.execPath, [join(ROOT, 'dist/cli.js'), 'preflight', dir, '--engine', 'sglang-jax', '--json'], { encoding: 'utf8' });
    return (JSON.parse(r.stdout) as { findings: Finding[] }).findings;
  }
});
