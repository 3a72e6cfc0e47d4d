/**
 * The canonical tiny Llama every later suite builds on: its HF folder and its JAX-layout files
 * (flax msgpack, flax-style safetensors, Orbax; f32 and bf16) open with our readers and hold,
 * byte for byte, what transformers, flax and orbax wrote.
 */
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { filterTensors, openCheckpoint, readSideFiles, readTensorBytes, sortTensors, valueOpener, type Checkpoint } from '../../src/core/index';
import { NodeFileOpener, PythonSidecar, sidecarScript } from '../../src/core/node/index';
import { canonicalFixtures, type Canonical } from '../fixtures/canonical';
import { tempDir, venvPython } from './helpers';

async function sha256(ck: Checkpoint, name: string): Promise<string> {
  const h = createHash('sha256');
  for await (const b of readTensorBytes(valueOpener(ck, new NodeFileOpener()), ck.tensors.find((t) => t.name === name)!)) h.update(b);
  return h.digest('hex');
}

describe('the canonical tiny Llama (transformers, tokenizers, flax, orbax)', function () {
  let fx: Canonical;
  let sidecar: PythonSidecar;
  before(function () {
    const python = venvPython(this);
    this.timeout(300_000);
    fx = canonicalFixtures(python);
    sidecar = new PythonSidecar({ python, script: sidecarScript(resolve(__dirname, '../../..')) });
  });
  after(() => sidecar?.dispose());

  it('is a Llama vLLM CPU kernels accept, whose JAX layout reproduces transformers logits', () => {
    const c = fx.manifest.config;
    assert.equal(c.hidden_size / c.num_attention_heads, c.head_dim);
    assert.ok([32, 64].includes(c.head_dim));
    assert.ok(c.num_key_value_heads < c.num_attention_heads, 'grouped-query attention');
    assert.ok(fx.manifest.jaxMatchesTorch < 1e-5, String(fx.manifest.jaxMatchesTorch));
    const config = JSON.parse(readFileSync(join(fx.dir, 'hf', 'config.json'), 'utf8'));
    assert.deepEqual(config.architectures, ['LlamaForCausalLM']);
  });

  it('has a trained ASCII tokenizer with its special tokens and a chat template', () => {
    const tok = JSON.parse(readFileSync(join(fx.dir, 'hf', 'tokenizer.json'), 'utf8'));
    assert.equal(tok.model.type, 'BPE');
    const specials = Object.fromEntries((tok.added_tokens as { content: string; id: number }[]).map((t) => [t.content, t.id]));
    assert.deepEqual(specials, fx.manifest.tokenizer.specials);
    assert.equal(fx.manifest.tokenizer.vocab, fx.manifest.config.vocab_size);
    assert.match(fx.manifest.tokenizer.chat, /^<s><\|start\|>user\nhi<\|end\|>\n<\|start\|>assistant\n$/);
    assert.equal(fx.manifest.tokenizer.prompt_ids[0], specials['<s>']);
  });

  it('opens the HF folder: every weight transformers expects, and the reference logits', async () => {
    const ck = await openCheckpoint(new NodeFileOpener(), join(fx.dir, 'hf'));
    assert.equal(ck.format, 'safetensors');
    const L = fx.manifest.config.num_hidden_layers;
    assert.equal(ck.tensors.length, 3 + 9 * L);
    assert.deepEqual(ck.tensors.find((t) => t.name === 'model.layers.0.self_attn.k_proj.weight')!.shape, [128, 256]);
    const logits = await openCheckpoint(new NodeFileOpener(), join(fx.dir, 'logits.npy'));
    assert.deepEqual(logits.tensors[0]!.shape, [1, fx.manifest.tokenizer.prompt_ids.length, fx.manifest.config.vocab_size]);
  });

  it('headers written by transformers and safetensors.flax take the fast scan (no JSON.parse)', async () => {
    const { fastHeaderEntries } = await import('../../src/core/formats/safetensors/fastJson');
    for (const rel of ['hf/model.safetensors', 'jax/flax.safetensors', 'jax/flax_bf16.safetensors']) {
      const b = readFileSync(join(fx.dir, rel));
      const n = Number(b.readBigUInt64LE(0));
      const header = b.subarray(8, 8 + n);
      assert.ok(fastHeaderEntries(header, new TextDecoder().decode(header), 64), rel);
    }
  });

  it('reads every JAX-layout file (every preset layout; msgpack, flax safetensors, Orbax; f32 and bf16) bit for bit', async function () {
    this.timeout(60_000);
    assert.equal(Object.keys(fx.manifest.files).length, 18, 'the talk layout six ways, and one file or more per other preset (MaxText MoE four ways)');
    for (const [rel, want] of Object.entries(fx.manifest.files)) {
      const ck = await openCheckpoint(new NodeFileOpener(), join(fx.dir, rel), { orbax: sidecar });
      const got: typeof want = {};
      for (const t of ck.tensors) got[t.name] = { dtype: t.dtype, shape: [...t.shape], sha256: await sha256(ck, t.name) };
      assert.deepEqual(got, want, rel);
      if (rel === 'jax/orbax') assert.match(ck.metadata['orbax.nnx'] ?? '', /value/, 'nnx.state saved: value keys hidden');
      if (rel === 'jax/flax_bf16.safetensors') assert.equal(ck.metadata.format, 'flax');
    }
  });
});

describe('side files of a checkpoint', function () {
  let fx: Canonical;
  before(function () {
    const python = venvPython(this);
    this.timeout(300_000);
    fx = canonicalFixtures(python);
  });

  it('reads config.json facts, tokenizer files, the chat template and generation_config.json beside the weights', async () => {
    const files = new NodeFileOpener();
    const side = await readSideFiles(files, await openCheckpoint(files, join(fx.dir, 'hf', 'model.safetensors')));
    const config = Object.fromEntries(side.config as [string, string][]);
    assert.equal(config.Architecture, '["LlamaForCausalLM"]');
    assert.equal(config.Layers, '2');
    assert.equal(config['KV heads'], '2');
    assert.deepEqual(side.tokenizer, ['tokenizer.json', 'tokenizer_config.json']);
    assert.equal(side.chatTemplate, true);
    assert.equal(Object.fromEntries(side.generation as [string, string][]).EOS, JSON.stringify(JSON.parse(readFileSync(join(fx.dir, 'hf', 'generation_config.json'), 'utf8')).eos_token_id));
    const bare = await readSideFiles(files, await openCheckpoint(files, join(fx.dir, 'jax', 'nnx.msgpack')));
    assert.deepEqual([bare.config, bare.tokenizer, bare.chatTemplate, bare.generation], [undefined, [], false, undefined]);
  });

  it('says when config.json does not parse instead of failing', async () => {
    const dir = tempDir();
    try {
      cpSync(join(fx.dir, 'hf'), dir.path, { recursive: true });
      writeFileSync(join(dir.path, 'config.json'), '{"architectures": [');
      const files = new NodeFileOpener();
      const side = await readSideFiles(files, await openCheckpoint(files, dir.path));
      assert.match((side.config as { error: string }).error, /config\.json: the file is not valid JSON/);
    } finally {
      dir.remove();
    }
  });
});

describe('tensor filter and order', () => {
  const t = (name: string, shape: number[], dtype = 'F32') => ({ name, shape, dtype, bytes: shape.reduce((a, b) => a * b, 4), path: [], source: { file: 'x', offset: 0, length: 0 } });
  const ck = { tensors: [t('b.kernel', [4, 4]), t('a.bias', [4]), t('c.kernel', [8, 2], 'BF16'), t('a.kernel', [2, 2])] } as unknown as Checkpoint;

  it('filters by substring (any case) or by /regex/, and takes an invalid expression as text', () => {
    assert.deepEqual(filterTensors(ck, 'KERNEL').map((x) => x.name), ['b.kernel', 'c.kernel', 'a.kernel']);
    assert.deepEqual(filterTensors(ck, '/^a\\./').map((x) => x.name), ['a.bias', 'a.kernel']);
    assert.deepEqual(filterTensors(ck, '/(/').map((x) => x.name), []);
    assert.equal(filterTensors(ck, '  ').length, 4);
  });

  it('sorts by name, dtype, rank, parameters and bytes, either way, ties in file order', () => {
    assert.deepEqual(sortTensors(ck.tensors, 'name', false).map((x) => x.name), ['a.bias', 'a.kernel', 'b.kernel', 'c.kernel']);
    assert.deepEqual(sortTensors(ck.tensors, 'parameters', true).map((x) => x.name), ['b.kernel', 'c.kernel', 'a.bias', 'a.kernel']);
    assert.deepEqual(sortTensors(ck.tensors, 'rank', false).map((x) => x.name), ['a.bias', 'b.kernel', 'c.kernel', 'a.kernel']);
    assert.deepEqual(sortTensors(ck.tensors, 'dtype', false).map((x) => x.dtype), ['BF16', 'F32', 'F32', 'F32']);
  });
});
