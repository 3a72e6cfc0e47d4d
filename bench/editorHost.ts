/**
 * Runs inside the extension host for the editor-insertion benchmark (bench/editor.ts): attaches to
 * the local stream server, runs "Generate at Cursor" into a fresh document several times, and
 * writes what it measured (time, whether every token landed, the longest stall of the extension
 * host's event loop) to $JAX_SERVE_BENCH_OUT; once more from the paced server; then the client
 * alone on the fast stream.
 */
import { writeFileSync } from 'node:fs';
import * as vscode from 'vscode';
import { generate } from '../src/core/index';

export interface EditorRun {
  readonly ms: number;
  readonly startedAt: number;
  readonly endedAt: number;
  readonly complete: boolean;
  readonly maxStallMs: number;
}

export async function run(): Promise<void> {
  const url = process.env.JAX_SERVE_BENCH_URL!;
  const expected = process.env.JAX_SERVE_BENCH_TEXT!;
  const runs = Number(process.env.JAX_SERVE_BENCH_RUNS ?? '3');
  await vscode.extensions.getExtension('jax-serve.jax-serve')!.activate();
  // Ask for the whole stream: a server that sends more than max_tokens is cut off (as it should be).
  await vscode.workspace.getConfiguration('jaxServe.generate').update('maxTokens', Number(process.env.JAX_SERVE_BENCH_TOKENS), vscode.ConfigurationTarget.Global);
  await vscode.commands.executeCommand('jaxServe.attach', url, 'm');
  const editor: EditorRun[] = [];
  // The first run warms up (the notification, the document model) and is not counted; the paced one
  // (the server at a steady decode rate) comes last.
  for (let i = 0; i <= runs + 1; i++) {
    if (i === runs + 1) await vscode.commands.executeCommand('jaxServe.attach', process.env.JAX_SERVE_BENCH_PACED_URL!, 'm');
    const doc = await vscode.workspace.openTextDocument({ content: 'Once' });
    const ed = await vscode.window.showTextDocument(doc);
    ed.selection = new vscode.Selection(0, 4, 0, 4);
    // The event loop's longest stall: a 5 ms timer that notes how late it fires.
    let maxStallMs = 0;
    let last = performance.now();
    const probe = setInterval(() => {
      const now = performance.now();
      maxStallMs = Math.max(maxStallMs, now - last - 5);
      last = now;
    }, 5);
    const startedAt = Date.now();
    const t0 = performance.now();
    await vscode.commands.executeCommand('jaxServe.generateAtCursor');
    const ms = performance.now() - t0;
    clearInterval(probe);
    if (i > 0) editor.push({ ms, startedAt, endedAt: Date.now(), complete: doc.getText() === 'Once' + expected, maxStallMs });
    await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
  }
  const client: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await generate({ baseUrl: url, api: 'completions', model: 'm', prompt: 'Once' });
    client.push(performance.now() - t0);
  }
  writeFileSync(process.env.JAX_SERVE_BENCH_OUT!, JSON.stringify({ editor: editor.slice(0, runs), paced: editor[runs], client }));
}
