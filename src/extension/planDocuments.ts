/**
 * Read-only documents (`jax-serve-plan:` scheme) that show a conversion plan or a verify report in
 * the editor, as Markdown, and the plan's problems in the Problems panel on the source. Presentation
 * only: the plan and report come from core through the CLI.
 */
import * as vscode from 'vscode';
import { stripControls, type Plan } from '../core/index';
import { type VerifyReport } from '../core/node/index';

export const PLAN_SCHEME = 'jax-serve-plan';

export class PlanDocuments implements vscode.Disposable, vscode.TextDocumentContentProvider {
  private readonly contents = new Map<string, string>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private readonly diagnostics = vscode.languages.createDiagnosticCollection('jax-serve-plan');
  private readonly registration = vscode.workspace.registerTextDocumentContentProvider(PLAN_SCHEME, this);

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.contents.get(uri.path) ?? '';
  }

  /** The document for `name` with this text (updated in place when already open). */
  show(name: string, markdown: string): vscode.Uri {
    const uri = vscode.Uri.from({ scheme: PLAN_SCHEME, path: `/${name.replace(/[^\w.-]+/g, '_')}.md` });
    this.contents.set(uri.path, markdown);
    this.changed.fire(uri);
    return uri;
  }

  /** The plan's errors and warnings on the source checkpoint, in the Problems panel. */
  problems(source: string, plan: Plan): void {
    const severity = { error: vscode.DiagnosticSeverity.Error, warning: vscode.DiagnosticSeverity.Warning, info: vscode.DiagnosticSeverity.Information };
    const ds = plan.problems.map((p) => {
      const d = new vscode.Diagnostic(new vscode.Range(0, 0, 0, 0), stripControls(p.message), severity[p.severity]);
      d.source = 'jax-serve plan';
      d.code = p.code;
      return d;
    });
    this.diagnostics.set(vscode.Uri.file(source), ds);
  }

  dispose(): void {
    this.registration.dispose();
    this.diagnostics.dispose();
    this.changed.dispose();
  }
}

/** Text for a Markdown table cell: pipes and newlines would break the row. */
function cell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/[\r\n]+/g, ' ').replace(/</g, '&lt;');
}

function describe(t: Plan['tensors'][number]['transforms'][number]): string {
  const { op, ...rest } = t as { op: string } & Record<string, unknown>;
  const args = Object.values(rest).map((v) => (Array.isArray(v) ? v.join(', ') : String(v)));
  return `${op}(${args.join('; ')})`;
}

export function planMarkdown(plan: Plan, rules?: string): string {
  const lines = [
    `# Conversion plan`,
    '',
    `- **Source**: \`${cell(plan.source)}\``,
    `- **Preset**: \`${plan.preset.id}\` (${cell(plan.preset.title)}) → **${plan.architecture}**`,
    `- **Layout from**: ${cell(plan.preset.source)}`,
  ];
  if (rules) lines.push(`- **User rules** (tried first): \`${cell(rules)}\``);
  if (plan.prefix) lines.push(`- **Wrapper prefix left out of matching**: \`${cell(plan.prefix)}\``);
  const c = plan.config;
  if (c) lines.push(`- **Model**: ${c.num_hidden_layers} layers, hidden ${c.hidden_size}, ${c.num_attention_heads} heads × ${c.head_dim} (${c.num_key_value_heads} kv), vocab ${c.vocab_size}, ${c.torch_dtype}${c.tie_word_embeddings ? ', tied lm_head' : ''}`);
  if (plan.problems.length) {
    lines.push('', '## Problems', '');
    for (const p of plan.problems) lines.push(`- **${p.severity}** (${p.code}): ${cell(p.message)}`);
  }
  lines.push('', `## Tensors (${plan.tensors.length})`, '', '| source | target | transforms | shape | dtype |', '|---|---|---|---|---|');
  for (const t of plan.tensors) lines.push(`| \`${cell(t.from)}\` | \`${cell(t.to)}\` | ${cell(t.transforms.map(describe).join(' · ') || '—')} | [${t.target.shape.join(', ')}] | ${t.target.dtype} |`);
  if (plan.unmapped.length) lines.push('', `## Unmapped (${plan.unmapped.length})`, '', ...plan.unmapped.map((n) => `- \`${cell(n)}\``));
  if (c) lines.push('', '## config.json', '', '```json', JSON.stringify(c, null, 2), '```');
  return lines.join('\n') + '\n';
}

export function verifyMarkdown(r: VerifyReport, maxKl = 1e-3): string {
  const lines = [`# Verify`, '', `- **Export**: \`${cell(r.exportDir)}\``, `- **JAX checkpoint**: \`${cell(r.checkpoint)}\``, '', '| prompt | tokens | max abs Δlogit | KL | top-1 | top-5 | |', '|---|---|---|---|---|---|---|'];
  for (const p of r.prompts) {
    lines.push(`| ${cell(JSON.stringify(p.prompt))} | ${p.tokens} | ${p.maxAbsDiff.toExponential(2)} | ${p.kl.toExponential(2)} | ${(p.top1 * 100).toFixed(1)}% | ${(p.top5 * 100).toFixed(1)}% | ${p.kl <= maxKl ? 'ok' : '**differs**'} |`);
  }
  return lines.join('\n') + '\n';
}
