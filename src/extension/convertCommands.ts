/**
 * The guided commands: "Convert Checkpoint for vLLM/SGLang…", "Import HF Checkpoint into JAX
 * Layout…" and "Verify Export…". Each asks only what it cannot tell (source, base model folder,
 * preset, dtype, output), shows the plan in the editor before writing, and runs the CLI as a
 * process with progress and cancel; its output goes to the "JAX Serve" log. Every step can also be
 * given as an argument (a request object), which the tests and other extensions use.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { importablePresets, layerLayouts, PRESETS, type LayerLayout, type Plan } from '../core/index';
import { type VerifyReport } from '../core/node/index';
import { Cli, cliError } from './cli';
import { PlanDocuments, verifyMarkdown } from './planDocuments';
import type { PlanPanels } from './planPanel';
import { choosePython } from './python';
import { refuseUntrusted } from './trust';

export interface ConvertRequest {
  readonly source: string;
  /** The export folder; asked for when absent. */
  readonly output?: string;
  readonly preset?: string;
  readonly dtype?: 'keep' | 'bf16' | 'f16' | 'f32';
  /** A base model folder: its config.json is merged and its tokenizer copied. '' for none. */
  readonly base?: string;
  /** Skip the confirmation (the plan is still shown). */
  readonly yes?: boolean;
  /** What to do with LoRA leaves (asked for when the source has them). */
  readonly lora?: 'adapter' | 'merge';
  /** The PEFT adapter folder of --lora adapter; asked for when absent. */
  readonly adapterOutput?: string;
  /** LoRA alpha; asked for when the adapters are qwix's (they do not store it). */
  readonly loraAlpha?: number;
  /** An adapter-only checkpoint whose base is `source` (--lora-from). */
  readonly loraFrom?: string;
}

/** The convert options the dry run and the export share. */
interface PlanChoices {
  readonly preset?: string;
  readonly dtype?: string;
  readonly base?: string;
  readonly rules?: string;
  readonly lora?: 'adapter' | 'merge';
  readonly loraAlpha?: number;
  readonly loraFrom?: string;
}

/** The CLI options of those choices (the export adds -o, --adapter-out and the tokenizer). */
function choiceArgs(c: PlanChoices): string[] {
  return [
    ...(c.preset ? ['--preset', c.preset] : []),
    ...(c.dtype && c.dtype !== 'keep' ? ['--dtype', c.dtype] : []),
    ...(c.base ? ['--config-from', c.base] : []),
    ...(c.rules ? ['--rules', c.rules] : []),
    ...(c.lora ? ['--lora', c.lora] : []),
    ...(c.loraAlpha !== undefined ? ['--lora-alpha', String(c.loraAlpha)] : []),
    ...(c.loraFrom ? ['--lora-from', c.loraFrom] : []),
  ];
}

export interface ImportRequest {
  readonly source: string;
  readonly preset: string;
  /** A .msgpack or .safetensors file. */
  readonly output: string;
  /** For MaxText presets: the CLI's --layers (scanned when absent). */
  readonly layers?: LayerLayout;
}

export interface VerifyRequest {
  readonly exportDir: string;
  readonly checkpoint: string;
  readonly entry: string;
  readonly prompts?: readonly string[];
}

export interface ConvertResult {
  readonly ok: boolean;
  readonly plan?: Plan;
  readonly output?: string;
  /** The PEFT adapter folder written beside the export (--lora adapter). */
  readonly adapterOutput?: string;
  readonly message: string;
}

/** The user rule file the Convert command picks up (schema contributed in package.json). */
export const RULES_FILE = 'jax-serve.rules.json';

const isRequest = <T>(v: unknown, key: string): v is T => typeof v === 'object' && v !== null && !(v instanceof vscode.Uri) && key in v;

export class ConvertCommands implements vscode.Disposable {
  private readonly disposables: vscode.Disposable[] = [];
  /** The last result of each command (a new Serve form starts on the last export; the API shows them to other extensions). */
  readonly last: { convert?: ConvertResult; import?: ConvertResult; verify?: VerifyReport } = {};
  private readonly exported = new vscode.EventEmitter<string>();
  /** Fires with each export folder written (the Serve panel offers the last one). */
  readonly onDidExport = this.exported.event;

  constructor(
    private readonly cli: Cli,
    private readonly docs: PlanDocuments,
    private readonly plans: PlanPanels,
  ) {
    this.disposables.push(
      this.exported,
      vscode.commands.registerCommand('jaxServe.convert', (arg?: vscode.Uri | ConvertRequest) => this.convert(arg)),
      vscode.commands.registerCommand('jaxServe.import', (arg?: vscode.Uri | ImportRequest) => this.importInto(arg)),
      vscode.commands.registerCommand('jaxServe.verify', (arg?: vscode.Uri | VerifyRequest) => this.verify(arg)),
    );
  }

  /**
   * Restricted Mode runs no process. Checked here rather than by `enablement`: with workspace trust
   * turned off VS Code leaves `isWorkspaceTrusted` unset, which would hide the commands.
   */
  private trusted(): boolean {
    return !refuseUntrusted(vscode.l10n.t('JAX Serve runs the converter as a process, which Restricted Mode does not allow. Trust this workspace to convert, import or verify.'));
  }

  private async python(resource: string): Promise<string> {
    const chosen = await choosePython(vscode.Uri.file(resource));
    this.cli.log.info(`Python: ${chosen.python} (${chosen.source})`);
    return chosen.python;
  }

  private fail(what: keyof ConvertCommands['last'], message: string): ConvertResult {
    const r = { ok: false, message };
    if (what !== 'verify') this.last[what] = r;
    void vscode.window.showErrorMessage(message, vscode.l10n.t('Show Log')).then((p) => p && this.cli.log.show());
    return r;
  }

  /**
   * A `jax-serve.rules.json` beside the source (in its folder, or the folder itself), else at the
   * root of its workspace folder: the user's rules, tried before the preset's.
   */
  private async rulesFor(source: string): Promise<string | undefined> {
    const here = (await vscode.workspace.fs.stat(vscode.Uri.file(source)).then((s) => s.type === vscode.FileType.Directory, () => false)) ? source : path.dirname(source);
    const root = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(source))?.uri.fsPath;
    for (const dir of [here, root]) {
      if (!dir) continue;
      const file = path.join(dir, RULES_FILE);
      if (await vscode.workspace.fs.stat(vscode.Uri.file(file)).then(() => true, () => false)) return file;
    }
    return undefined;
  }

  /** The dry run: the CLI's plan for these options (exit 0, or 1 with errors in it). */
  private async plan(source: string, opts: PlanChoices, python: string): Promise<Plan | string> {
    const args = ['convert', source, '--dry-run', '--json', '--python', python, ...choiceArgs(opts)];
    const r = await this.cli.run({ args });
    if (r.code !== 0 && r.code !== 1) return cliError(r);
    try {
      return JSON.parse(r.stdout) as Plan;
    } catch {
      return cliError(r);
    }
  }

  async convert(arg?: vscode.Uri | ConvertRequest): Promise<ConvertResult | undefined> {
    if (!this.trusted()) return undefined;
    const req = isRequest<ConvertRequest>(arg, 'source') ? arg : undefined;
    const source = req?.source ?? (arg instanceof vscode.Uri ? arg.fsPath : (await pick({ title: vscode.l10n.t('Convert: the JAX checkpoint (a file or an Orbax folder)'), folders: true }))?.fsPath);
    if (!source) return undefined;
    const python = await this.python(source);
    let base = req?.base;
    if (base === undefined) {
      const choice = await vscode.window.showQuickPick(
        [
          { label: vscode.l10n.t('$(folder) Choose the base model folder…'), detail: vscode.l10n.t('Its config.json settles heads, RoPE and token ids; its tokenizer and chat template are copied. Recommended.'), base: true },
          { label: vscode.l10n.t('$(dash) No base model'), detail: vscode.l10n.t('config.json from the shapes and the preset defaults (the plan says what it had to assume).'), base: false },
        ],
        { title: vscode.l10n.t('Convert: base model (config.json and tokenizer)'), ignoreFocusOut: true },
      );
      if (!choice) return undefined;
      base = choice.base ? ((await pick({ title: vscode.l10n.t('The base model folder (config.json, tokenizer.json)'), folders: true, only: 'folders' }))?.fsPath ?? '') : '';
    }
    const rules = await this.rulesFor(source);
    if (rules) this.cli.log.info(`user rules: ${rules}`);
    let preset = req?.preset;
    const loraFrom = req?.loraFrom;
    let plan = await this.plan(source, { preset, base, rules, loraFrom }, python);
    if (typeof plan === 'string') return this.fail('convert', vscode.l10n.t('Convert {0}: {1}', path.basename(source), plan));
    if (preset === undefined) {
      const detected = plan.preset.id;
      const choice = await vscode.window.showQuickPick(
        [detected, ...PRESETS.map((p) => p.id).filter((id) => id !== detected)].map((id) => {
          const p = PRESETS.find((x) => x.id === id)!;
          return { label: id, description: id === detected ? vscode.l10n.t('detected') : p.architecture, detail: p.title, id };
        }),
        { title: vscode.l10n.t('Convert: the layout of {0}', path.basename(source)), ignoreFocusOut: true },
      );
      if (!choice) return undefined;
      preset = choice.id;
    }
    let dtype = req?.dtype;
    if (dtype === undefined) {
      const from = [...new Set(plan.tensors.map((t) => t.source.dtype))].join('/') || vscode.l10n.t('as stored');
      const choice = await vscode.window.showQuickPick(
        [
          { label: vscode.l10n.t('keep'), description: from, detail: vscode.l10n.t('Write each tensor in the type it has.'), dtype: 'keep' as const },
          { label: 'bf16', detail: vscode.l10n.t('Round to nearest even; what most servers run.'), dtype: 'bf16' as const },
          { label: 'f16', detail: vscode.l10n.t('Gemma 3 overflows in float16; prefer bf16 there.'), dtype: 'f16' as const },
          { label: 'f32', dtype: 'f32' as const },
        ],
        { title: vscode.l10n.t('Convert: element type of the export'), ignoreFocusOut: true },
      );
      if (!choice) return undefined;
      dtype = choice.dtype;
    }
    // LoRA leaves are never dropped: the plan refuses them until the user says what to do.
    let lora = req?.lora;
    let loraAlpha = req?.loraAlpha;
    if (plan.adapters.length > 0 && lora === undefined) {
      const ranks = [...new Set(plan.adapters.map((a) => a.rank))].join('/');
      const choice = await vscode.window.showQuickPick(
        [
          { label: vscode.l10n.t('$(extensions) Write a PEFT adapter beside the base'), detail: vscode.l10n.t('vLLM loads it with --lora-modules, SGLang with --lora-paths; the base export stays the base model.'), lora: 'adapter' as const },
          { label: vscode.l10n.t('$(merge) Merge into the weights'), detail: vscode.l10n.t('W + (alpha / r) · B · A, computed in f32: one model, no adapter to load.'), lora: 'merge' as const },
        ],
        { title: vscode.l10n.t('Convert: {0} modules carry LoRA adapters (rank {1})', plan.adapters.length, ranks), ignoreFocusOut: true },
      );
      if (!choice) return undefined;
      lora = choice.lora;
    }
    if (plan.adapters.some((a) => a.layout === 'qwix') && loraAlpha === undefined) {
      const text = await vscode.window.showInputBox({
        title: vscode.l10n.t('Convert: LoRA alpha'),
        prompt: vscode.l10n.t('qwix scales each adapter by alpha / rank and does not store alpha: the alpha of your LoraProvider.'),
        ignoreFocusOut: true,
        validateInput: (v) => (Number.isFinite(Number(v)) && Number(v) > 0 ? undefined : vscode.l10n.t('A positive number.')),
      });
      if (text === undefined) return undefined;
      loraAlpha = Number(text);
    }
    plan = await this.plan(source, { preset, dtype, base, rules, lora, loraAlpha, loraFrom }, python);
    if (typeof plan === 'string') return this.fail('convert', vscode.l10n.t('Convert {0}: {1}', path.basename(source), plan));
    this.plans.show(source, plan, rules);
    this.docs.problems(source, plan);
    const errors = plan.problems.filter((p) => p.severity === 'error');
    if (errors.length) {
      const r = this.fail('convert', vscode.l10n.t('The plan for {0} has {1} error(s), so nothing was written: {2}', path.basename(source), errors.length, errors[0]!.message));
      return { ...r, plan };
    }
    const output = req?.output ?? (await vscode.window.showSaveDialog({ title: vscode.l10n.t('Convert: the export folder to create'), defaultUri: vscode.Uri.file(`${source.replace(/[/\\]+$/, '').replace(/\.(msgpack|safetensors)$/, '')}-hf`), saveLabel: vscode.l10n.t('Export Here') }))?.fsPath;
    if (!output) return undefined;
    const adapterOutput = lora !== 'adapter' ? undefined : (req?.adapterOutput ?? (await vscode.window.showSaveDialog({ title: vscode.l10n.t('Convert: the PEFT adapter folder to create'), defaultUri: vscode.Uri.file(`${output.replace(/[/\\]+$/, '')}-lora`), saveLabel: vscode.l10n.t('Write the Adapter Here') }))?.fsPath);
    if (lora === 'adapter' && !adapterOutput) return undefined;
    const bytes = plan.tensors.reduce((a, t) => a + t.bytes, 0);
    if (!req?.yes) {
      const go = vscode.l10n.t('Convert');
      const ok = await vscode.window.showInformationMessage(
        vscode.l10n.t('Convert {0} tensors ({1} MiB) with {2} into {3}?', plan.tensors.length, (bytes / 2 ** 20).toFixed(1), plan.preset.id, output),
        { modal: true, detail: vscode.l10n.t('The plan is open in the editor. The source is only read; the folder appears when complete.') },
        go,
      );
      if (ok !== go) return undefined;
    }
    const args = ['convert', source, '-o', output, '--python', python, '--progress-json', ...choiceArgs({ preset, dtype, base, rules, lora, loraAlpha, loraFrom }), ...(base ? ['--tokenizer-from', base] : []), ...(adapterOutput ? ['--adapter-out', adapterOutput] : [])];
    const r = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: vscode.l10n.t('Converting {0}', path.basename(source)), cancellable: true }, (progress, token) => {
      let last = 0;
      return this.cli.run({
        args,
        token,
        onProgress: (done, total) => {
          progress.report({ increment: ((done - last) / Math.max(1, total)) * 100, message: vscode.l10n.t('{0} of {1} MiB', (done / 2 ** 20).toFixed(0), (total / 2 ** 20).toFixed(0)) });
          last = done;
        },
      });
    });
    if (r.code !== 0) return { ...this.fail('convert', vscode.l10n.t('Convert {0}: {1}', path.basename(source), cliError(r))), plan };
    const result: ConvertResult = { ok: true, plan, output, ...(adapterOutput ? { adapterOutput } : {}), message: r.stdout.trim() };
    this.last.convert = result;
    this.exported.fire(output);
    const preflight = vscode.l10n.t('Preflight');
    const reveal = vscode.l10n.t('Reveal in Explorer');
    void vscode.window.showInformationMessage(vscode.l10n.t('Exported {0} ({1}).', path.basename(output), plan.architecture), preflight, reveal).then((p) => {
      if (p === preflight) void vscode.commands.executeCommand('jaxServe.preflight', vscode.Uri.file(output));
      if (p === reveal) void vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(output));
    });
    return result;
  }

  async importInto(arg?: vscode.Uri | ImportRequest): Promise<ConvertResult | undefined> {
    if (!this.trusted()) return undefined;
    const req = isRequest<ImportRequest>(arg, 'source') ? arg : undefined;
    const source = req?.source ?? (arg instanceof vscode.Uri ? arg.fsPath : (await pick({ title: vscode.l10n.t('Import: the HF checkpoint (model folder or *.safetensors)'), folders: true }))?.fsPath);
    if (!source) return undefined;
    const preset =
      req?.preset ??
      (await vscode.window.showQuickPick(importablePresets().map((p) => ({ label: p.id, description: p.architecture, detail: p.title })), { title: vscode.l10n.t('Import: the JAX layout to write'), ignoreFocusOut: true }))?.label;
    if (!preset) return undefined;
    // MaxText layouts come scanned (its default) or one array per layer: asked only when there is a choice.
    let layers = req?.layers;
    if (!req && layerLayouts(preset).length > 0) {
      const choices = [
        { label: vscode.l10n.t('Scanned layers'), detail: vscode.l10n.t("One array per tensor, the layer on axis 1 (scan_layers: true, MaxText's default)"), layers: 'scanned' as const },
        { label: vscode.l10n.t('One array per layer'), detail: vscode.l10n.t('decoder.layers_N (scan_layers: false)'), layers: 'unscanned' as const },
      ];
      layers = (await vscode.window.showQuickPick(choices, { title: vscode.l10n.t('Import: the layer layout'), ignoreFocusOut: true }))?.layers;
      if (!layers) return undefined;
    }
    let output = req?.output;
    if (!output) {
      const format = await vscode.window.showQuickPick(
        [
          { label: vscode.l10n.t('Flax msgpack'), detail: 'flax.serialization.from_bytes / msgpack_restore', ext: 'msgpack' },
          { label: vscode.l10n.t('safetensors (flax format)'), detail: 'safetensors.flax.load_file', ext: 'safetensors' },
        ],
        { title: vscode.l10n.t('Import: file format'), ignoreFocusOut: true },
      );
      if (!format) return undefined;
      output = (await vscode.window.showSaveDialog({ title: vscode.l10n.t('Import: the file to write'), defaultUri: vscode.Uri.file(`${source.replace(/[/\\]+$/, '')}-${preset}.${format.ext}`), filters: { [format.label]: [format.ext] } }))?.fsPath;
      if (!output) return undefined;
    }
    const r = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: vscode.l10n.t('Importing {0} as {1}', path.basename(source), preset), cancellable: true }, (_p, token) =>
      this.cli.run({ args: ['import', source, '-o', output!, '--preset', preset, ...(layers ? ['--layers', layers] : [])], token }),
    );
    if (r.code !== 0) return this.fail('import', vscode.l10n.t('Import {0}: {1}', path.basename(source), cliError(r)));
    const result: ConvertResult = { ok: true, output, message: r.stdout.trim() };
    this.last.import = result;
    void vscode.window.showInformationMessage(vscode.l10n.t('Wrote {0} in the {1} layout.', path.basename(output), preset), vscode.l10n.t('Open as Checkpoint')).then((p) => p && vscode.commands.executeCommand('jaxServe.openCheckpoint', vscode.Uri.file(output!)));
    return result;
  }

  async verify(arg?: vscode.Uri | VerifyRequest): Promise<VerifyReport | undefined> {
    if (!this.trusted()) return undefined;
    const req = isRequest<VerifyRequest>(arg, 'exportDir') ? arg : undefined;
    const exportDir = req?.exportDir ?? (arg instanceof vscode.Uri ? arg.fsPath : (await pick({ title: vscode.l10n.t('Verify: the export folder'), folders: true, only: 'folders' }))?.fsPath);
    if (!exportDir) return undefined;
    const checkpoint = req?.checkpoint ?? (await pick({ title: vscode.l10n.t('Verify: the JAX checkpoint it was converted from'), folders: true }))?.fsPath;
    if (!checkpoint) return undefined;
    const entry = req?.entry ?? (await this.chooseEntry(exportDir));
    if (!entry) return undefined;
    const python = await this.python(exportDir);
    const prompts = (req?.prompts ?? []).flatMap((p) => ['--prompt', p]);
    const r = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: vscode.l10n.t('Verifying {0} against {1}', path.basename(exportDir), path.basename(checkpoint)), cancellable: true }, (_p, token) =>
      this.cli.run({ args: ['verify', exportDir, '--source', checkpoint, '--entry', entry, '--python', python, '--json', ...prompts], token }),
    );
    if (r.code !== 0 && r.code !== 1) {
      this.fail('verify', vscode.l10n.t('Verify {0}: {1}', path.basename(exportDir), cliError(r)));
      return undefined;
    }
    const report = JSON.parse(r.stdout) as VerifyReport;
    this.last.verify = report;
    await vscode.window.showTextDocument(this.docs.show(`verify-${path.basename(exportDir)}`, verifyMarkdown(report)), { preview: true });
    const bad = report.prompts.filter((p) => !(p.kl <= 1e-3)).length;
    if (bad === 0) void vscode.window.showInformationMessage(vscode.l10n.t('{0} matches the JAX model on {1} prompt(s).', path.basename(exportDir), report.prompts.length));
    else void vscode.window.showWarningMessage(vscode.l10n.t('{0} differs from the JAX model on {1} of {2} prompt(s): check the preset (RoPE pairing, query scale) and config.json.', path.basename(exportDir), bad, report.prompts.length));
    return report;
  }

  /** An existing entry point, or one generated for a preset (opened for editing). */
  private async chooseEntry(exportDir: string): Promise<string | undefined> {
    const choice = await vscode.window.showQuickPick(
      [
        { label: vscode.l10n.t('$(new-file) Generate an entry point from a preset…'), detail: vscode.l10n.t("A plain JAX forward of the preset's layout; edit it to call your model."), generate: true },
        { label: vscode.l10n.t('$(file-code) Use an existing Python file…'), detail: vscode.l10n.t('It defines load(checkpoint, config) and forward(state, input_ids).'), generate: false },
      ],
      { title: vscode.l10n.t('Verify: the JAX side'), ignoreFocusOut: true },
    );
    if (!choice) return undefined;
    if (!choice.generate) return (await vscode.window.showOpenDialog({ title: vscode.l10n.t('The entry point (.py)'), filters: pythonFilter(), canSelectMany: false }))?.[0]?.fsPath;
    const llms = PRESETS.filter((p) => p.architecture !== 'state-dict');
    const preset = (await vscode.window.showQuickPick(llms.map((p) => ({ label: p.id, detail: p.title })), { title: vscode.l10n.t('Verify: the layout of the JAX checkpoint') }))?.label;
    if (!preset) return undefined;
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? path.dirname(exportDir);
    const file = (await vscode.window.showSaveDialog({ title: vscode.l10n.t('Where to write the entry point'), defaultUri: vscode.Uri.file(path.join(folder, 'jax_forward.py')), filters: pythonFilter() }))?.fsPath;
    if (!file) return undefined;
    const r = await this.cli.run({ args: ['verify', '--template', preset, '-o', file] });
    if (r.code !== 0) {
      this.fail('verify', vscode.l10n.t('Entry point: {0}', cliError(r)));
      return undefined;
    }
    await vscode.window.showTextDocument(vscode.Uri.file(file), { preview: false, preserveFocus: true });
    return file;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

/** A dialog's filter for Python files, under its translated name. */
const pythonFilter = () => ({ [vscode.l10n.t('Python')]: ['py'] });

async function pick(o: { title: string; folders: boolean; only?: 'folders' }): Promise<vscode.Uri | undefined> {
  const r = await vscode.window.showOpenDialog({ title: o.title, canSelectFiles: o.only !== 'folders', canSelectFolders: o.folders, canSelectMany: false });
  return r?.[0];
}
