/**
 * Tensor parallelism as SGLang-JAX ran it, replayed from every TP recording (tpRuns.ts): a real run of
 * scripts/gpu/sglang-jax-run.sh with COUNT=2 (on two XLA host devices where no two-GPU machine was
 * lent: `-cpu` in the folder's name), and a hand-written GPU recording, marked as such, that holds
 * what only two GPUs show (memory per GPU). For each:
 *  - the start: tp_size=N in the engine's ServerArgs, its KV heads per device, phases and ready
 *    through `jax-serve serve` on the replayed log;
 *  - `jax-serve fit --engine sglang-jax --count N --tp N` on the served config.json: the per-device
 *    cell size the engine logged exactly, and on a GPU its KV tokens within 5 %;
 *  - memory per GPU: what nvidia-smi showed while serving, less a bare JAX process's, against fit's
 *    weights per device plus the pool the engine logged, within 5 %;
 *  - the refusals (attention heads that do not divide; fewer devices than the TP size): each maps to
 *    a cause line naming the heads or devices and the TP size, and preflight and fit said so before;
 *  - the CLI's --tp and the Serve panel's TP field build the engine's recorded argv;
 *  - check-served over the TP replies: the tokens equal the export's own greedy tokens;
 *  - no engine process left after the stop.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ENGINES, kvHeadsPerDevice, launchOptions, type FitReport, type LaunchProfile } from '../../src/core/index';
import { CLI, GPU_RUN_PROMPTS as PROMPTS, rebuiltExport, replay } from './gpuRunReplay';
import { cliAsync, tempDir, venvPython } from './helpers';
import { freePort } from '../../src/core/node/index';
import { readServerLog, REPLAY_LOG, serveReplayed } from './recordedRuns';
import { gpuMemory, logged, recordedServe, tpRuns, type TpRun } from './tpRuns';

const SPEC = ENGINES['sglang-jax'];

/** The log of a run's start on fewer devices than its TP size (tp<N>-on<G>.engine.log), if it has one. */
function fewer(run: TpRun): { file: string; seen: number } | undefined {
  const file = readdirSync(run.dir).find((f) => new RegExp(`^tp${run.tp}-on\\d+\\.engine\\.log$`).test(f));
  return file ? { file, seen: Number(/-on(\d+)\./.exec(file)![1]) } : undefined;
}

/** The TP size of a run's memory probe (mem-tp<T>.engine.log: T is min(GPUs, N)), if it has one. */
function memoryRun(run: TpRun): number | undefined {
  for (let t = run.tp; t >= 1; t--) if (run.text(`mem-tp${t}.engine.log`) !== undefined) return t;
  return undefined;
}
const MiB = 2 ** 20;
const runs = tpRuns();

/** The recorded argv with the run's paths and port as words to compare (`<W>` for the run's work folder). */
function words(text: string, work: string, port: string): string[] {
  return text.trimEnd().split('\n').map((w) => w.split(work).join('<W>').replace(new RegExp(`^${port}$`), '<PORT>'));
}

const temps: { remove: () => void }[] = [];
after(() => temps.forEach((t) => t.remove()));
function temp(prefix: string): string {
  const d = tempDir(prefix);
  temps.push(d);
  return d.path;
}

/** A folder holding only a recorded config.json, as fit and preflight read an export's. */
function configFolder(run: TpRun, file: string): string {
  const d = temp('jax-serve-tp-');
  copyFileSync(join(run.dir, file), join(d, 'config.json'));
  return d;
}

/** preflight --engine sglang-jax --tp N's tensor-parallel errors on a folder (a config alone is enough for them). */
function tpErrors(folder: string, tp: number): string[] {
  const r = spawnSync(process.execPath, [CLI, 'preflight', folder, '--engine', 'sglang-jax', '--tp', String(tp), '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 1, r.stderr);
  return (JSON.parse(r.stdout) as { findings: { severity: string; code: string; message: string }[] }).findings.filter((f) => f.severity === 'error' && f.code === 'tensor-parallel').map((f) => f.message);
}

function fitJson(args: string[]): FitReport {
  const r = spawnSync(process.execPath, [CLI, 'fit', ...args, '--json'], { encoding: 'utf8' });
  assert.ok(r.status === 0 || r.status === 1, r.stderr);
  return JSON.parse(r.stdout) as FitReport;
}

describe('tensor parallelism, replayed from the TP recordings', () => {
  it('finds a real TP start, a real refusal on a GPU, and the hand-written two-GPU recording; each of the checks below runs on one at least', () => {
    assert.ok(runs.some((r) => !r.handwritten && r.text(`tp${r.tp}.engine.log`)), runs.map((r) => r.name).join(', '));
    assert.ok(runs.some((r) => !r.handwritten && r.device !== 'cpu' && fewer(r)));
    // Two GPUs: a real recording, or until one is lent the hand-written one (HANDWRITTEN.md).
    assert.ok(runs.some((r) => r.device !== 'cpu' && r.text(`tp${r.tp}.engine.log`) && memoryRun(r) === r.tp));
    assert.ok(runs.some((r) => !r.handwritten && memoryRun(r)), 'a real GPU measured memory');
    for (const r of runs.filter((x) => x.handwritten)) assert.match(r.text('HANDWRITTEN.md') ?? '', /not a recording/i, `${r.name} says it is hand-written`);
  });

  for (const run of runs) {
    const N = run.tp;
    const startLog = () => run.text(`tp${N}.engine.log`)!;
    const served = () => JSON.parse(run.text(`tp${N}-export128.config.json`)!) as { num_key_value_heads: number; num_attention_heads: number };

    // A hand-written folder's numbers come from the real runs and fit's own rules (HANDWRITTEN.md):
    // on it these checks test the replay, not the engine.
    describe(`${run.name}${run.handwritten ? ' (hand-written: checks the replay, not the engine)' : ''}`, function () {
      this.timeout(600_000);
      const started = run.text(`tp${N}.engine.log`) !== undefined;

      if (started) it(`the start: tp_size=${N} in the engine's arguments, its KV heads per device as fit counts them, ready`, () => {
        const text = startLog();
        assert.equal(logged(/server_args=ServerArgs\(.*$/m.exec(text)![0], 'tp_size'), String(N));
        const kv = served().num_key_value_heads;
        const line = /KV heads (?:distribution|replication enabled) for \w+ model: original_kv_heads=(\d+), tp_size=(\d+), each device gets (\d+) head/.exec(text);
        assert.ok(line, 'the engine logs its KV heads per device');
        assert.deepEqual([Number(line[1]), Number(line[2]), Number(line[3])], [kv, N, kvHeadsPerDevice('sglang-jax', kv, N)]);
        const log = readServerLog(text);
        assert.equal(log.state.readyLine, true);
        assert.deepEqual(log.explain(), []);
      });

      if (started) it(`fit --count ${N} --tp ${N} on the served config.json: the engine's cell size exactly${run.device === 'cpu' ? '' : ', its KV tokens within 5 %'}`, () => {
        const text = startLog();
        const [tokens, cell] = [Number(logged(text, 'max_tokens')), Number(logged(text, 'cell_size'))];
        const fraction = logged(text, 'mem_fraction_static')!;
        const gpus = run.text(`tp${N}-gpus-before.csv`);
        const gpu = run.device === 'cpu' ? 'h100' : `recorded=${gpuMemory(gpus!)[0]!.totalMiB}MiB`;
        const r = fitJson([configFolder(run, `tp${N}-export128.config.json`), '--engine', 'sglang-jax', '--gpu', gpu, '--count', String(N), '--tp', String(N), '--memory-fraction', fraction]);
        assert.equal(r.tp, N);
        assert.equal(r.kvBytesPerTokenPerDevice, cell, 'bytes a token on one device');
        assert.equal(r.fits, true, r.problems.join(' '));
        // On the CPU the engine sizes its pool from the host's free memory (psutil), not a device's: only the cell size is the TP arithmetic there.
        if (run.device !== 'cpu') {
          const off = r.kvTokens / tokens - 1;
          assert.ok(Math.abs(off) < 0.05, `${r.kvTokens} tokens against the log's ${tokens} (${(off * 100).toFixed(2)} %)`);
        }
      });

      const T = memoryRun(run);
      if (T !== undefined) {
        it(`memory per GPU while serving at TP ${T} (nvidia-smi, less a bare JAX process's): fit's weights per device plus the engine's logged pool agree with what the engine was given within 5 %, and nvidia-smi lies between them and XLA's limit`, () => {
          const text = run.text(`mem-tp${T}.engine.log`)!;
          const pool = Number(logged(text, 'max_tokens')) * Number(logged(text, 'cell_size'));
          const serving = gpuMemory(run.text(`mem-tp${T}-gpus-serving.csv`)!);
          const context = gpuMemory(run.text('mem-context-gpus.csv')!);
          assert.equal(serving.length, T, 'one line a GPU');
          const manifest = JSON.parse(run.text('fit128-manifest.json')!) as { config: Record<string, unknown> };
          const d = temp('jax-serve-tp-mem-');
          writeFileSync(join(d, 'config.json'), JSON.stringify({ ...manifest.config, architectures: ['LlamaForCausalLM'], model_type: 'llama', torch_dtype: 'bfloat16' }));
          const fraction = Number(logged(text, 'mem_fraction_static'));
          const r = fitJson([d, '--engine', 'sglang-jax', '--gpu', `recorded=${serving[0]!.totalMiB}MiB`, '--count', String(T), '--tp', String(T), '--memory-fraction', String(fraction)]);
          const floor = r.weightBytesPerDevice + pool;
          const off = floor / r.budgetBytesPerDevice - 1;
          assert.ok(Math.abs(off) < 0.05, `weights ${r.weightBytesPerDevice} + pool ${pool} against the ${r.budgetBytesPerDevice} bytes the engine was given (${(off * 100).toFixed(2)} %)`);
          // What nvidia-smi shows also holds the engine's working memory (outside its fraction, inside XLA's limit).
          const limit = r.budgetBytesPerDevice / fraction;
          for (const g of serving) {
            const held = (g.usedMiB - context.find((c) => c.index === g.index)!.usedMiB) * MiB;
            assert.ok(held >= floor && held <= limit, `GPU ${g.index}: ${(held / 2 ** 30).toFixed(2)} GiB held; weights + pool ${(floor / 2 ** 30).toFixed(2)} GiB, XLA's limit ${(limit / 2 ** 30).toFixed(2)} GiB`);
          }
        });
      }

      // The cause each refused export must map to: its attention heads when they do not divide (the
      // engine checks them first), else its KV heads (it gives each device ⌈kv / N⌉ of them).
      const headsCause = (heads: number, kv: number) =>
        heads % N !== 0
          ? new RegExp(`the model's ${heads} attention heads do not divide by the tensor-parallel size ${N}`)
          : new RegExp(`the model's ${kv} KV heads do not divide by the tensor-parallel size ${N}(\\. |$)`);
      const fewerLog = fewer(run);
      const refusals: [string, RegExp][] = [
        [`tp${N}-heads3`, headsCause(3, 3)],
        [`tp${N}-kv3`, headsCause(6, 3)],
        ...(fewerLog ? [[fewerLog.file.replace('.engine.log', ''), new RegExp(`TP ${N} needs ${N} devices; the engine sees ${fewerLog.seen}`)] as [string, RegExp]] : []),
      ];
      for (const [name, cause] of refusals.filter(([n]) => run.text(`${n}.engine.log`) !== undefined)) {
        it(`${name}: the engine's refusal maps to a cause line naming the ${/heads|kv/.test(name) ? 'heads' : 'devices'} and the TP size; jax-serve serve prints it first, exit non-zero`, async () => {
          const text = run.text(`${name}.engine.log`);
          assert.ok(text, `${name}.engine.log is recorded`);
          const causes = readServerLog(text).explain();
          assert.ok(causes.some((c) => cause.test(c.text)), causes.map((c) => c.text).join(' | '));
          const r = await serveReplayed([temp('jax-serve-tp-refused-'), '--engine', 'sglang-jax', '--device', run.device, '--tp', String(N), '--command', `${JSON.stringify(process.execPath)} ${JSON.stringify(REPLAY_LOG)} ${JSON.stringify(run.dir)}`], { REPLAY_MODE: 'fail', REPLAY_FILE: `${name}.engine.log` });
          assert.notEqual(r.code, 0);
          const first = r.err.split('\n').find((l) => l.startsWith('jax-serve:'));
          assert.ok(first && cause.test(first), r.err.slice(-1500));
          // The whole cause and what to do fit in the first line (it is cut at 500 characters).
          assert.ok(/jax-serve fit DIR --engine sglang-jax|CUDA_VISIBLE_DEVICES/.test(first), first);
        });
      }

      if (run.text(`tp${N}-exporth3.config.json`)) it(`predicted before launch: preflight --tp ${N} and fit --count ${N} --tp ${N} name the attention heads that do not divide; fit with fewer devices names the devices`, () => {
        const h3 = configFolder(run, `tp${N}-exporth3.config.json`);
        assert.ok(tpErrors(h3, N).some((m) => m.includes(`3 attention heads do not divide by ${N}`)));
        const fit = fitJson([h3, '--engine', 'sglang-jax', '--gpu', 'h100', '--count', String(N), '--tp', String(N)]);
        assert.equal(fit.fits, false);
        assert.ok(fit.problems.some((p) => p.includes(`TP ${N}: 3 attention heads do not divide by ${N}`)), fit.problems.join(' '));
        assert.ok(!fit.validTp.includes(N));
        const seen = fewerLog?.seen ?? N - 1;
        const few = fitJson([configFolder(run, `tp${N}-export128.config.json`), '--engine', 'sglang-jax', '--gpu', 'h100', '--count', String(seen), '--tp', String(N)]);
        assert.ok(few.problems.includes(`TP ${N} needs ${N} devices; --count is ${seen}.`), few.problems.join(' '));
        // The recording's own preflight and fit, run on the device before each launch, said the same.
        assert.match(run.text(`tp${N}-exporth3.fit.json`)!, new RegExp(`3 attention heads do not divide by ${N}`));
        assert.match(run.text(`tp${N}-exporth3.preflight.json`)!, new RegExp(`3 attention heads do not divide by ${N}`));
      });

      if (run.text(`tp${N}-exportkv3.config.json`)) it(`predicted before launch: preflight --tp ${N} and fit --tp ${N} name what of 6 heads and 3 KV heads does not divide`, () => {
        const kv3 = configFolder(run, `tp${N}-exportkv3.config.json`);
        const messages = tpErrors(kv3, N);
        const want = [...(6 % N !== 0 ? [`6 attention heads do not divide by ${N}`] : []), `3 KV heads and ${N} do not divide one another`];
        assert.deepEqual(messages, want.map((w) => `tensor-parallel size ${N}: ${w}.`));
        const fit = fitJson([kv3, '--engine', 'sglang-jax', '--gpu', 'h100', '--count', String(N), '--tp', String(N)]);
        assert.deepEqual(fit.problems, [`TP ${N}: ${want[0]}.`]);
        assert.ok(run.text(`tp${N}-exportkv3.fit.json`)!.includes(want[0]!));
        assert.ok(want.every((w) => run.text(`tp${N}-exportkv3.preflight.json`)!.includes(w)), 'the run\'s own preflight of the export');
      });

      if (started) it(`the CLI's --tp ${N} and the Serve panel's TP field build the engine's recorded argv`, async () => {
        const { args: cliArgs, value, extra } = recordedServe(run);
        const recorded = run.text(`tp${N}.argv`)!;
        const work = cliArgs[1]!.replace(/\/[^/]+$/, '');
        const port = cliArgs[cliArgs.indexOf('--port') + 1]!;
        const want = words(recorded, work, port);
        // The CLI: the recorded `jax-serve serve` arguments, the engine replaced by the replay stand-in.
        const model = temp('jax-serve-tp-argv-');
        mkdirSync(join(model, cliArgs[1]!.split('/').pop()!));
        const argvFile = join(model, 'argv.json');
        const args = cliArgs.slice(1).map((a) => a.split(work).join(model));
        args[args.indexOf('--port') + 1] = String(await freePort());
        const r = await serveReplayed([...args, '--command', `${JSON.stringify(process.execPath)} ${JSON.stringify(REPLAY_LOG)} ${JSON.stringify(run.dir)}`], { REPLAY_FILE: `tp${N}.engine.log`, STANDIN_ARGV: argvFile, REPLAY_SCALE: '0.001' }, async () => undefined);
        const got = JSON.parse(readFileSync(argvFile, 'utf8')) as string[];
        const gotPort = got[got.indexOf('--port') + 1]!;
        assert.deepEqual(words(got.join('\n'), model, gotPort), want, r.err.slice(-1500));
        // The panel: its form with the TP field and the same choices, through the profile checker into the engine's launch.
        const profile: LaunchProfile = {
          name: '',
          engine: 'sglang-jax',
          model: join(model, cliArgs[1]!.split('/').pop()!),
          host: '127.0.0.1',
          device: value('--device'),
          tensorParallel: Number(value('--tp')),
          memoryFraction: Number(value('--memory-fraction')),
          extraArgs: extra.join(' '),
        };
        const { launch } = launchOptions(profile, Number(port));
        const cmd = SPEC.launch(launch);
        assert.deepEqual(words([cmd.command, ...cmd.args].join('\n'), model, port), want);
      });

      if (run.text('replies-good.json') !== undefined) {
        it(`check-served over the TP ${N} replies of the three APIs: every prompt's tokens equal the export's greedy tokens`, async function () {
          const python = venvPython(this);
          const exp = rebuiltExport(python, run.dir, 'export128', { headDim: 128, heads: 4, kvHeads: 2 });
          for (const api of ['generate', 'completions', 'chat']) {
            const s = await replay(run.dir, 'replies-good.json');
            try {
              const r = await cliAsync(['check-served', '--url', s.url, '--source', exp, '--prompts', PROMPTS, '--api', api, '--python', python, '--json']);
              assert.equal(r.status, 0, r.stdout + r.stderr);
              const report = JSON.parse(r.stdout) as { prompts: { prompt: string; tokensEqual: boolean }[] };
              assert.ok(report.prompts.length >= 4 && report.prompts.every((p) => p.tokensEqual), `${api}: ${r.stdout}`);
            } finally {
              s.server.close();
            }
          }
        });
      }

      it('the environment the engine ran with is recorded as NAME=value lines: XLA\'s memory variables, and NVLink multicast off', () => {
        const lines = run.text(`tp${N}-env.txt`)!.trimEnd().split('\n');
        assert.ok(lines.every((l) => /^[A-Z_][A-Z0-9_]*=.*$|^# [A-Z_][A-Z0-9_]* unset$/.test(l)), lines.join('\n'));
        for (const v of ['XLA_PYTHON_CLIENT_MEM_FRACTION', 'XLA_CLIENT_MEM_FRACTION', 'XLA_PYTHON_CLIENT_PREALLOCATE']) assert.ok(lines.some((l) => l.startsWith(`${v}=`) || l === `# ${v} unset`), v);
        for (const on of ['NCCL_NVLS_ENABLE=0', 'TORCH_SYMM_MEM_DISABLE_MULTICAST=1', 'NVSHMEM_DISABLE_NVLS=1']) assert.ok(lines.includes(on), on);
      });

      it('nothing of the engine is left after each stop, nor on any GPU at the end', () => {
        const ps = readdirSync(run.dir).filter((f) => f.endsWith('.ps-after-stop.txt') || f === 'ps-at-end.txt');
        assert.ok(ps.length >= 1, 'a process listing after a stop');
        for (const f of ps) assert.match(run.text(f)!, /^none$/m, f);
        const apps = run.text(`tp${N}-gpu-apps-at-end.csv`);
        if (run.device !== 'cpu') assert.equal(apps!.trim().split('\n').length, 1, `only the header: ${apps}`);
      });
    });
  }
});
