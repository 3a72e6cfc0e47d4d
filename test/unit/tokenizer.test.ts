/**
 * Tokenizer files: a SentencePiece tokenizer.model written by sentencepiece read piece for piece,
 * the checks against config.json (padded vocabularies, special ids, a broken model), and the
 * tokenizer_config.json rewrite that lets transformers 4.x and 5.x both load an export's tokenizer
 * (run in both: the 5.x test venv and the 4.47 hfflax venv, same ids, same chat template).
 */
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { checkTokenizerFolder, sentencePieceVocab } from '../../src/core/index';
import { NodeFileOpener } from '../../src/core/node/index';
import { canonicalFixtures, type Canonical } from '../fixtures/canonical';
import { hfFlaxPython, tempDir, venvPython, writeFixtures } from './helpers';

const ROOT = resolve(__dirname, '../../..');
const CLI = join(ROOT, 'dist/cli.js');
const files = new NodeFileOpener();

describe('tokenizer files', function () {
  let python: string;
  let dir: ReturnType<typeof tempDir>;
  let sp: { pieces: string[]; specials: Record<string, number> };
  const spDir = () => join(dir.path, 'sp');

  before(function () {
    python = venvPython(this);
    this.timeout(120_000);
    dir = tempDir();
    sp = writeFixtures(python, 'sentencepiece_model.py', spDir());
  });
  after(() => dir?.remove());

  it('reads a SentencePiece tokenizer.model as sentencepiece does: every piece by id, and the special ids', () => {
    const v = sentencePieceVocab(readFileSync(join(spDir(), 'tokenizer.model')));
    assert.deepEqual([...v.pieces.values()], sp.pieces);
    assert.deepEqual(v.specials, sp.specials);
    assert.throws(() => sentencePieceVocab(new TextEncoder().encode('{"not": "a model"}')), /wire type|past the end|no pieces/);
  });

  it('checks a tokenizer.model against config.json: padded vocabularies are fine, ids past it or missing specials are not', async () => {
    const n = sp.pieces.length;
    const codes = async (config: Record<string, unknown>) => (await checkTokenizerFolder(files, spDir(), config)).map((f) => `${f.severity}:${f.code}`);
    assert.deepEqual(await codes({ vocab_size: n + 4, bos_token_id: 1, eos_token_id: 2 }), ['warning:no-chat-template', 'info:vocab-padded']);
    assert.deepEqual(await codes({ vocab_size: n, bos_token_id: 1, eos_token_id: 2 }), ['warning:no-chat-template']);
    assert.ok((await codes({ vocab_size: n - 1 })).includes('error:vocab-size'));
    assert.ok((await codes({ vocab_size: n, eos_token_id: 7 })).includes('warning:special-token'), "config's eos is not the model's");
    assert.ok((await codes({ vocab_size: n, eos_token_id: n + 2 })).includes('error:special-token'));
    const broken = join(dir.path, 'broken');
    cpSync(spDir(), broken, { recursive: true });
    writeFileSync(join(broken, 'tokenizer.model'), Buffer.from([0x0a, 0xff, 0xff, 0xff]));
    const found = await checkTokenizerFolder(files, broken, { vocab_size: n });
    assert.match(found.find((f) => f.code === 'bad-tokenizer-model')?.message ?? '', /not a SentencePiece model/);
  });
});

describe('tokenizer files across transformers generations', function () {
  let fx: Canonical;
  let python: string;
  let flaxPython: string;
  let dir: ReturnType<typeof tempDir>;

  before(function () {
    python = venvPython(this);
    flaxPython = hfFlaxPython(this);
    this.timeout(300_000);
    fx = canonicalFixtures(python);
    dir = tempDir();
  });
  after(() => dir?.remove());

  it('an export loads its tokenizer in transformers 4.47 and 5.x alike (same ids, same chat template); the source would not', function () {
    this.timeout(120_000);
    const out = join(dir.path, 'export');
    const r = spawnSync(process.execPath, [CLI, 'convert', join(fx.dir, 'jax', 'nnx.msgpack'), '-o', out, '--config-from', join(fx.dir, 'hf'), '--tokenizer-from', join(fx.dir, 'hf')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /note: tokenizer_config\.json rewritten so transformers 4\.x and 5\.x both load it: tokenizer_class TokenizersBackend → PreTrainedTokenizerFast/);
    const script = `
import json, sys
from transformers import AutoTokenizer
try:
    t = AutoTokenizer.from_pretrained(sys.argv[1])
    print(json.dumps({"ids": t("The quick brown fox <|end|>")["input_ids"], "chat": t.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)}))
except Exception as e:
    print(json.dumps({"error": type(e).__name__ + ": " + str(e)}))`;
    const load = (py: string, folder: string) => JSON.parse(execFileSync(py, ['-c', script, folder], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as { ids?: number[]; chat?: string; error?: string };
    const v5 = load(python, out);
    const v4 = load(flaxPython, out);
    assert.equal(v5.error, undefined);
    assert.deepEqual(v4, v5);
    assert.match(load(flaxPython, join(fx.dir, 'hf')).error ?? '', /TokenizersBackend does not exist/, 'the transformers 5 folder itself fails on 4.x');
    const pre = spawnSync(process.execPath, [CLI, 'preflight', join(fx.dir, 'hf')], { encoding: 'utf8' });
    assert.match(pre.stdout, /warning: tokenizer_class "TokenizersBackend" is transformers 5's name/);
  });
});
