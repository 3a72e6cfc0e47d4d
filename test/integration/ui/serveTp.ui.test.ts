/**
 * The Serve panel's TP field in the real VS Code (code-server, chromium): the launch of a recorded
 * tensor-parallel run (tpRuns.ts: the real SGLang-JAX run at TP 2) is typed into the form — engine,
 * device, TP size, memory fraction, extra arguments — and started; the engine's argv must be the one
 * the recording shows. The engine is the stand-in that replays the recorded log
 * (test/fixtures/standin/replay-log.mjs, through the form's launch command), which writes the argv
 * it got (STANDIN_ARGV, set in the form's Environment).
 */
import * as assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rebuiltExport } from '../../unit/gpuRunReplay';
import { REPLAY_LOG } from '../../unit/recordedRuns';
import { recordedServe, tpRuns } from '../../unit/tpRuns';
import { repoRoot, startCodeServer, type CodeServer } from '../harness/codeServer';
import { closeAll, openWorkbench, recordFailure, type Workbench } from '../harness/workbench';
import { until } from '../waits';

const root = repoRoot();
const shots = join(root, 'test-results', 'screenshots');
const run = tpRuns().find((r) => !r.handwritten && r.text(`tp${r.tp}.engine.log`) !== undefined && r.text('exports.sha256') !== undefined);

describe('the Serve panel\'s TP field builds the recorded tensor-parallel launch (chromium; the replayed engine)', function () {
  this.timeout(300_000);
  let server: CodeServer;
  let wb: Workbench;
  let ws: string;
  let exportDir: string;

  before(async function () {
    const python = process.env.JAX_SERVE_PYTHON;
    if (!python || !run) this.skip();
    ws = mkdtempSync(join(tmpdir(), 'jax-serve-ui-tp-'));
    exportDir = rebuiltExport(python, run.dir, 'export128', { headDim: 128, heads: 4, kvHeads: 2 });
    server = await startCodeServer({ settings: {} });
    wb = await openWorkbench(server, { folder: ws, extensionDevelopmentPath: root });
  });
  after(() => closeAll(wb, server, ws, ws && REPLAY_LOG));
  afterEach(async function () {
    await recordFailure(this.currentTest, wb, server, root);
  });

  it('engine, device, TP, memory and extra arguments typed into the form start the engine with the recorded argv; Stop stops it', async () => {
    const N = run!.tp;
    const { args: cliArgs, value, extra } = recordedServe(run!);
    const argvFile = join(ws, 'engine-argv.json');
    await wb.runCommand('JAX Serve: Open Serve Panel');
    const panel = await wb.webviewFrame('body[data-ready="true"] #start', 60_000);
    await panel.selectOption('#engine', 'sglang-jax');
    await panel.fill('#model', exportDir);
    await panel.selectOption('#device', value('--device'));
    await panel.fill('#tp', value('--tp'));
    await panel.fill('#memory', value('--memory-fraction'));
    await panel.fill('#extra-args', extra.join(' '));
    await panel.fill('#command', `${JSON.stringify(process.execPath)} ${JSON.stringify(REPLAY_LOG)} ${JSON.stringify(run!.dir)}`);
    await panel.fill('#env', [`REPLAY_FILE=tp${N}.engine.log`, `STANDIN_ARGV=${argvFile}`, 'REPLAY_SCALE=0.001'].join('\n'));
    await panel.click('#start');
    await panel.waitForSelector('#server-line[data-status="ready"]', { timeout: 120_000 });
    await until('the engine argv file', () => (existsSync(argvFile) ? true : undefined), 10_000);
    const got = JSON.parse(readFileSync(argvFile, 'utf8')) as string[];
    // The recorded argv, with the run's model folder and port put as this launch's.
    const recorded = run!.text(`tp${N}.argv`)!.trimEnd().split('\n');
    const port = got[got.indexOf('--port') + 1]!;
    const want = recorded.map((w) => (w === value('--port') ? port : w.split(cliArgs[1]!).join(exportDir)));
    assert.deepEqual(got, want);
    assert.equal(got[got.indexOf('--tp-size') + 1], String(N));
    await wb.screenshot(join(shots, 'serve-panel-tp2.png'));
    await panel.click('#stop');
    await panel.waitForSelector('#server-line[data-status="stopped"]', { timeout: 60_000 });
  });
});
