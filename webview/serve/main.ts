/**
 * The Serve panel page: launch form and saved profiles, the server's phases with their times, the
 * gauges, and generation with its measurements and history. Plain form controls styled with VS Code's
 * theme variables (labelled, keyboard-reachable); every text from the host goes in as textContent.
 * Ctrl/Cmd+Enter in the prompt generates, Escape stops the run.
 */
import {
  isServeHostToWebview,
  type AcceleratorView,
  type EngineView,
  type FitView,
  type GaugesView,
  type ProfileView,
  type RunMode,
  type RunView,
  type SamplingView,
  type ServeHostToWebview,
  type CheckView,
  type ServeInit,
  type ServerView,
  type ServeWebviewToHost,
} from '../../src/shared/serveProtocol';
import type { AdapterRef, Phase } from '../../src/core/types';
import { el } from '../shared/dom';
import { connect, loadState, saveState } from '../shared/host';
import { t } from '../shared/l10n';

interface PageState {
  readonly stateVersion: 1;
  readonly form?: ProfileView;
  readonly prompt?: string;
  readonly mode?: RunMode;
  readonly sampling?: SamplingView;
}
const STATE_VERSION = 1;

const PHASE_LABEL: Record<Phase, string> = {
  starting: t('Process started'),
  weights: t('Loading weights'),
  compile: t('Compiling'),
  graphs: t('Capturing graphs'),
  'kv-cache': t('Allocating KV cache'),
  precompile: t('Precompiling'),
  http: t('Starting HTTP server'),
  warmup: t('Warm-up request'),
  ready: t('Ready'),
};

/** A run's status in words (the data-status attributes keep the ids). */
const RUN_STATUS: Record<RunView['status'], string> = { running: t('running'), done: t('done'), stopped: t('stopped'), error: t('error') };

let init: ServeInit | undefined;
let server: ServerView | undefined;
let current: { id: number; text: string } | undefined;
const runOutput = new Map<number, string>();

const rpc = connect<ServeWebviewToHost, ServeHostToWebview>((m) => {
  switch (m.type) {
    case 'server':
      server = m.server;
      renderServer();
      return undefined;
    case 'gauges':
      renderGauges(m.gauges, m.absent);
      return undefined;
    case 'profiles':
      renderProfiles(m.profiles);
      return undefined;
    case 'attached':
      renderAttached(m.attached);
      renderGauges(undefined);
      return undefined;
    case 'runText':
      if (current?.id === m.id) {
        current.text += m.text;
        ui.output.textContent = current.text;
        ui.output.scrollTop = ui.output.scrollHeight;
      }
      return undefined;
    case 'run':
      endRun(m.run);
      return undefined;
    case 'model':
      ui.model.value = m.path;
      persist();
      return undefined;
    case 'sampling':
      // The session's sampling changed (a jaxServe.generate setting): the fields show what runs will use.
      setSampling(m.sampling);
      persist();
      return undefined;
    case 'fit':
      renderFit(m.fit);
      return undefined;
    case 'checked':
      // A check the command ran (the button's own verdict comes as its reply).
      renderCheck(m.check, m.error);
      return undefined;
    default:
      return undefined;
  }
}, isServeHostToWebview);

const saved = loadState<PageState>(STATE_VERSION);

// ---- building the page -------------------------------------------------------------------------

function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  const id = control.id;
  const kids: (Node | string)[] = [el('label', { for: id }, label), control];
  if (hint !== undefined) {
    const h = el('span', { class: 'hint', id: `${id}-hint` }, hint);
    control.setAttribute('aria-describedby', h.id);
    kids.push(h);
  }
  return el('div', { class: 'field' }, ...kids);
}
const input = (id: string, attrs: Record<string, string> = {}) => el('input', { id, type: 'text', spellcheck: 'false', ...attrs });
const num = (id: string, attrs: Record<string, string> = {}) => el('input', { id, type: 'number', ...attrs });
const button = (id: string, text: string, cls = '') => el('button', { id, type: 'button', class: cls }, text);

const ui = {
  profile: el('select', { id: 'profile', 'aria-label': t('Saved profiles') }),
  profileName: input('profile-name', { placeholder: t('Profile name') }),
  saveProfile: button('save-profile', t('Save Profile'), 'secondary'),
  deleteProfile: button('delete-profile', t('Delete'), 'secondary'),
  engine: el('select', { id: 'engine' }),
  model: input('model', { placeholder: t('An export folder ({0}, {1}, tokenizer)', 'config.json', '*.safetensors') }),
  browse: button('browse', t('Browse…'), 'secondary'),
  host: input('host'),
  port: num('port', { min: '1', max: '65535', placeholder: t('a free one') }),
  dtype: input('dtype', { list: 'dtypes', placeholder: 'auto' }),
  maxLen: num('max-model-len', { min: '1', placeholder: t('from {0}', 'config.json') }),
  tp: num('tp', { min: '1', placeholder: '1' }),
  accelerator: el('select', { id: 'accelerator' }),
  devices: num('devices', { min: '1', placeholder: t('the TP size') }),
  memory: num('memory', { min: '0.05', max: '1', step: '0.05', placeholder: t('engine default') }),
  served: input('served-name', { placeholder: t('the folder path') }),
  device: el('select', { id: 'device' }),
  extra: input('extra-args', { placeholder: t('e.g. {0}', '--enforce-eager --device cpu') }),
  env: el('textarea', { id: 'env', rows: '2', spellcheck: 'false', placeholder: t('KEY=VALUE, one per line') }),
  python: input('python', { placeholder: t("VS Code's Python (or {0})", 'jaxServe.pythonPath') }),
  command: input('command', { placeholder: t('e.g. {0}', 'docker run --rm --gpus all -p 8000:8000 vllm/vllm-openai') }),
  // LoRA adapters: one row each (name, folder, Browse…, Remove), see adapterRow.
  adapters: el('div', { id: 'adapters', class: 'adapters', role: 'list', 'aria-labelledby': 'adapters-label' }),
  addAdapter: button('add-adapter', t('Add Adapter…'), 'secondary'),
  // The Fit section: the launch sized for the accelerator, red/amber/green with the reason.
  fit: el('div', { id: 'fit', class: 'fit', role: 'status', 'aria-live': 'polite' }),
  start: button('start', t('Start Server')),
  stop: button('stop', t('Stop Server'), 'secondary'),
  log: button('show-log', t('Show Log'), 'secondary'),
  script: button('offline-script', t('Offline Script…'), 'secondary'),
  serverLine: el('div', { id: 'server-line', class: 'status', role: 'status', 'aria-live': 'polite' }),
  phases: el('ol', { id: 'phases', class: 'phases' }),
  failure: el('div', { id: 'failure', class: 'failure', hidden: '' }),
  gauges: el('div', { id: 'gauges', class: 'gauges', 'aria-label': t('Server gauges from {0}', '/metrics') }),
  attached: el('div', { id: 'attached', class: 'status' }),
  attach: button('attach', t('Attach…'), 'secondary'),
  modeCompletion: el('input', { id: 'mode-completions', type: 'radio', name: 'mode', value: 'completions' }),
  modeChat: el('input', { id: 'mode-chat', type: 'radio', name: 'mode', value: 'chat' }),
  // The base model or one of the server's LoRA adapters (renderRunModels).
  runModel: el('select', { id: 'run-model' }),
  prompt: el('textarea', { id: 'prompt', rows: '5', placeholder: t('Prompt (Ctrl+Enter generates)') }),
  temperature: num('temperature', { min: '0', max: '2', step: '0.1' }),
  topP: num('top-p', { min: '0', max: '1', step: '0.05' }),
  maxTokens: num('max-tokens', { min: '1', step: '1' }),
  seed: num('seed', { step: '1', placeholder: t('none') }),
  stopStrings: el('textarea', { id: 'stop-strings', rows: '1', spellcheck: 'false', placeholder: t('one per line') }),
  generate: button('generate', t('Generate')),
  cancel: button('cancel-run', t('Stop'), 'secondary'),
  output: el('pre', { id: 'output', class: 'output', tabindex: '0', 'aria-label': t('Generated text'), 'aria-live': 'off' }),
  stats: el('div', { id: 'run-stats', class: 'status', role: 'status' }),
  history: el('ol', { id: 'history', class: 'history', 'aria-label': t('Earlier runs') }),
  // Check Against Source (jax-serve check-served): its own block, see renderCheck.
  checkSource: button('check-source', t('Check Against Source'), 'secondary'),
  check: el('div', { id: 'check', class: 'check', role: 'status', 'aria-live': 'polite' }),
};

function build(): void {
  const app = document.getElementById('app')!;
  app.classList.add('serve');
  const datalist = el('datalist', { id: 'dtypes' }, ...['auto', 'float32', 'bfloat16', 'float16'].map((d) => el('option', { value: d })));
  const launch = el(
    'section',
    { 'aria-labelledby': 'h-server' },
    el('h2', { id: 'h-server' }, t('Server')),
    el('div', { class: 'row' }, ui.profile, ui.profileName, ui.saveProfile, ui.deleteProfile),
    el(
      'div',
      { class: 'form' },
      Object.assign(field(t('Engine'), ui.engine), { className: 'field span2' }),
      el('div', { class: 'field wide' }, el('label', { for: 'model' }, t('Model folder')), el('div', { class: 'row' }, ui.model, ui.browse)),
      field(t('Host'), ui.host, t('{0} serves this machine only', '127.0.0.1')),
      field(t('Port'), ui.port),
      field('dtype', ui.dtype),
      field(t('Max model length'), ui.maxLen),
      field(t('Tensor-parallel size'), ui.tp),
      field(t('Memory fraction'), ui.memory, ''),
      field(t('Served model name'), ui.served),
      field(t('Device'), ui.device, ''),
      field(t('Extra arguments'), ui.extra),
      field(t('Interpreter'), ui.python, t('where the engine is installed')),
      field(t('Launch command'), ui.command, t('replaces the engine executable (a container)')),
      el('div', { class: 'field wide' }, el('label', { for: 'env' }, t('Environment')), ui.env),
      el(
        'div',
        { class: 'field wide', role: 'group', 'aria-labelledby': 'adapters-label', 'aria-describedby': 'adapters-hint' },
        el('span', { id: 'adapters-label', class: 'label' }, t('LoRA adapters')),
        ui.adapters,
        el('div', { class: 'row' }, ui.addAdapter, el('span', { class: 'hint', id: 'adapters-hint' })),
      ),
      field(t('Accelerator'), ui.accelerator, t('to size the launch for')),
      field(t('Devices'), ui.devices),
      datalist,
    ),
    el('h3', { id: 'h-fit' }, t('Fit')),
    ui.fit,
    el('div', { class: 'row' }, ui.start, ui.stop, ui.log, ui.script),
    ui.serverLine,
    ui.phases,
    ui.failure,
    ui.gauges,
  );
  const gen = el(
    'section',
    { 'aria-labelledby': 'h-generate' },
    el('h2', { id: 'h-generate' }, t('Generate')),
    el('div', { class: 'row' }, ui.attached, ui.attach),
    el('div', { class: 'row', role: 'radiogroup', 'aria-label': 'API' }, ui.modeCompletion, el('label', { for: 'mode-completions' }, t('Completion ({0})', '/v1/completions')), ui.modeChat, el('label', { for: 'mode-chat' }, t('Chat ({0}, chat template)', '/v1/chat/completions'))),
    el('div', { class: 'form' }, field(t('Generate with'), ui.runModel, '')),
    ui.prompt,
    el('div', { class: 'form sampling' }, field(t('Temperature'), ui.temperature), field('top_p', ui.topP), field(t('Max tokens'), ui.maxTokens), field(t('Seed'), ui.seed), field(t('Stop'), ui.stopStrings)),
    el('div', { class: 'row' }, ui.generate, ui.cancel),
    ui.output,
    ui.stats,
    el('h3', {}, t('History')),
    ui.history,
  );
  gen.append(el('h3', {}, t('Check Against Source')), el('div', { class: 'row' }, ui.checkSource), ui.check);
  app.append(launch, gen);
  ui.cancel.disabled = true;

  ui.engine.addEventListener('change', () => {
    memoryHint();
    deviceChoices(ui.device.value);
    adapterState();
    persist();
  });
  ui.addAdapter.addEventListener('click', () =>
    void rpc.request({ type: 'pickAdapter' }, 10 * 60_000).then((r) => {
      if (r.type !== 'picked' || !r.path) return;
      const row = adapterRow({ name: adapterName(r.path), path: r.path });
      ui.adapters.append(row);
      adapterState();
      persist();
      row.querySelector<HTMLInputElement>('.adapter-name')?.focus();
    }, showError),
  );
  ui.device.addEventListener('change', persist);
  ui.accelerator.addEventListener('change', persist);
  for (const c of [ui.model, ui.devices, ui.host, ui.port, ui.dtype, ui.maxLen, ui.tp, ui.memory, ui.served, ui.extra, ui.env, ui.python, ui.command, ui.prompt, ui.temperature, ui.topP, ui.maxTokens, ui.seed, ui.stopStrings, ui.modeChat, ui.modeCompletion]) c.addEventListener('input', persist);
  ui.profile.addEventListener('change', () => {
    const p = init?.profiles.find((x) => x.name === ui.profile.value);
    if (p) setForm(p);
    persist();
  });
  ui.saveProfile.addEventListener('click', () => void withForm((profile) => rpc.request({ type: 'saveProfile', profile: { ...profile, name: ui.profileName.value.trim() } })).then((r) => r?.type === 'profiles' && renderProfiles(r.profiles, ui.profileName.value.trim()), showError));
  ui.deleteProfile.addEventListener('click', () => ui.profile.value && void rpc.request({ type: 'deleteProfile', name: ui.profile.value }).then((r) => r.type === 'profiles' && renderProfiles(r.profiles), showError));
  ui.browse.addEventListener('click', () =>
    void rpc.request({ type: 'pickModel' }, 10 * 60_000).then((r) => {
      if (r.type === 'picked' && r.path) {
        ui.model.value = r.path;
        persist();
      }
    }, showError),
  );
  ui.start.addEventListener('click', () => void withForm((profile) => rpc.request({ type: 'start', profile }, 10 * 60_000)).catch(showError));
  ui.stop.addEventListener('click', () => void rpc.request({ type: 'stop' }, 60_000).catch(showError));
  ui.log.addEventListener('click', () => void rpc.request({ type: 'showLog' }));
  ui.script.addEventListener('click', () => void withForm((profile) => rpc.request({ type: 'offlineScript', profile, mode: mode(), prompt: ui.prompt.value, sampling: sampling() })).catch(showError));
  ui.attach.addEventListener('click', () => void rpc.request({ type: 'attach' }, 10 * 60_000).catch(showError));
  ui.generate.addEventListener('click', generate);
  ui.checkSource.addEventListener('click', checkSource);
  ui.cancel.addEventListener('click', cancel);
  ui.prompt.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      generate();
    }
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && current) cancel();
  });
}

function memoryHint(): void {
  const e = init?.engines.find((x) => x.id === ui.engine.value);
  const hint = document.getElementById('memory-hint');
  if (hint) hint.textContent = e?.memoryFlag ? e.memoryFlag : t('not an option of this engine');
  ui.memory.disabled = !e?.memoryFlag;
}

/** The engine's devices, the current one kept when it has it; none: the field is off. */
function deviceChoices(current: string | undefined): void {
  const devices = init?.engines.find((x) => x.id === ui.engine.value)?.devices ?? [];
  ui.device.replaceChildren(el('option', { value: '' }, devices.length ? t('engine default') : '—'), ...devices.map((d) => el('option', { value: d }, d)));
  ui.device.value = current && devices.includes(current) ? current : '';
  ui.device.disabled = devices.length === 0;
  const hint = document.getElementById('device-hint');
  if (hint) hint.textContent = devices.length ? t('{0} (must equal {1} when set)', '--device', 'JAX_PLATFORMS') : t('not an option of this engine');
}

// ---- LoRA adapters -----------------------------------------------------------------------------

let adapterSeq = 0;

/** One adapter of the form: its name (what requests select), its folder, Browse… and Remove; labelled for screen readers. */
function adapterRow(a: AdapterRef): HTMLElement {
  const n = ++adapterSeq;
  const name = input(`adapter-name-${n}`, { class: 'adapter-name', 'aria-label': t('Adapter name'), placeholder: t('name') });
  const folder = input(`adapter-path-${n}`, { class: 'adapter-path', 'aria-label': t('Adapter folder'), placeholder: t('A PEFT adapter folder ({0})', 'adapter_config.json') });
  name.value = a.name;
  folder.value = a.path;
  const browse = button(`adapter-browse-${n}`, t('Browse…'));
  const remove = button(`adapter-remove-${n}`, t('Remove'));
  browse.className = 'secondary adapter-browse';
  remove.className = 'secondary adapter-remove';
  const label = () => remove.setAttribute('aria-label', t('Remove adapter {0}', name.value || t('(unnamed)')));
  label();
  const row = el('div', { class: 'row adapter', role: 'listitem' }, name, folder, browse, remove);
  name.addEventListener('input', () => {
    label();
    persist();
  });
  folder.addEventListener('input', persist);
  browse.addEventListener('click', () =>
    void rpc.request({ type: 'pickAdapter' }, 10 * 60_000).then((r) => {
      if (r.type !== 'picked' || !r.path) return;
      folder.value = r.path;
      if (!name.value.trim()) name.value = adapterName(r.path);
      label();
      persist();
    }, showError),
  );
  remove.addEventListener('click', () => {
    // Focus stays in the list: the next row's Remove, else Add Adapter.
    const next = (row.nextElementSibling ?? row.previousElementSibling)?.querySelector<HTMLButtonElement>('.adapter-remove') ?? ui.addAdapter;
    row.remove();
    adapterState();
    persist();
    next.focus();
  });
  return row;
}

/** The form's adapters; rows left wholly empty are not adapters. */
function adapters(): AdapterRef[] {
  return [...ui.adapters.querySelectorAll('.adapter')]
    .map((r) => ({ name: r.querySelector<HTMLInputElement>('.adapter-name')!.value.trim(), path: r.querySelector<HTMLInputElement>('.adapter-path')!.value.trim() }))
    .filter((a) => a.name !== '' || a.path !== '');
}

/**
 * A name for a picked folder: its own name as requests can carry it (a letter first; letters,
 * digits, `.`, `_`, `-`; core's RE_ADAPTER_NAME), not one the form already has.
 */
function adapterName(folder: string): string {
  const base = (folder.split(/[\\/]/).filter((x) => x !== '').at(-1) ?? 'adapter').replace(/[^A-Za-z0-9._-]+/g, '-').slice(0, 56);
  const stem = /^[A-Za-z]/.test(base) ? base : `lora-${base}`;
  const taken = new Set(adapters().map((a) => a.name));
  let name = stem;
  for (let i = 2; taken.has(name); i++) name = `${stem}-${i}`;
  return name;
}

/** Adapters are a field of the engines that serve them; for the others it is off and says why (its rows are kept, and Start refuses them). */
function adapterState(): void {
  const e = init?.engines.find((x) => x.id === ui.engine.value);
  const takes = e?.takesAdapters ?? false;
  ui.addAdapter.disabled = !takes;
  for (const c of ui.adapters.querySelectorAll<HTMLInputElement | HTMLButtonElement>('input, .adapter-browse')) c.disabled = !takes;
  const hint = document.getElementById('adapters-hint');
  if (hint) {
    hint.textContent = takes
      ? t('served beside the model; a run picks one under Generate with')
      : t('{0} takes no LoRA adapters: serve them with vLLM, SGLang or SGLang-JAX, or merge them into the export ({1})', e?.title ?? '', 'jax-serve convert --lora merge');
  }
}

/** Generate with: the base model, or one of the adapters the attached server (started here) was started with. */
function renderRunModels(): void {
  const s = server;
  const names = s && s.status === 'ready' && init?.attached?.url === s.url ? (s.adapters ?? []) : [];
  const keep = ui.runModel.value;
  ui.runModel.replaceChildren(el('option', { value: '' }, s && names.length ? t('the base model ({0})', s.model) : t('the served model')), ...names.map((n) => el('option', { value: n }, t('LoRA adapter {0}', n))));
  ui.runModel.value = names.includes(keep) ? keep : '';
  ui.runModel.disabled = names.length === 0;
  const hint = document.getElementById('run-model-hint');
  if (hint) hint.textContent = names.length ? t('{0} adapters on this server', names.length) : t('adapters: start a server here with LoRA adapters');
}

// ---- form values -------------------------------------------------------------------------------

const optNum = (i: HTMLInputElement) => (i.value.trim() === '' ? undefined : Number(i.value));
const optStr = (i: HTMLInputElement | HTMLTextAreaElement) => (i.value.trim() === '' ? undefined : i.value);

/** Sends the form once there is one (the buttons do nothing before the host's engines came). */
function withForm<T>(send: (profile: ProfileView) => Promise<T>): Promise<T | undefined> {
  const profile = form();
  return profile ? send(profile) : Promise.resolve(undefined);
}

/** The form as a profile; none until the host has offered its engines (the select holds only their ids). */
function form(): ProfileView | undefined {
  const engine = init?.engines.find((e) => e.id === ui.engine.value)?.id;
  if (engine === undefined) return undefined;
  return {
    name: ui.profileName.value.trim(),
    engine,
    model: ui.model.value.trim(),
    host: ui.host.value.trim(),
    port: optNum(ui.port),
    dtype: optStr(ui.dtype)?.trim(),
    maxModelLen: optNum(ui.maxLen),
    tensorParallel: optNum(ui.tp),
    memoryFraction: ui.memory.disabled ? undefined : optNum(ui.memory),
    servedName: optStr(ui.served)?.trim(),
    device: ui.device.disabled || ui.device.value === '' ? undefined : ui.device.value,
    extraArgs: optStr(ui.extra),
    env: optStr(ui.env),
    python: optStr(ui.python)?.trim(),
    command: optStr(ui.command),
    accelerator: ui.accelerator.value === '' ? undefined : ui.accelerator.value,
    deviceCount: optNum(ui.devices),
    // Kept whatever the engine: one that takes none refuses them at start, saying so, rather than drop them.
    ...(adapters().length ? { adapters: adapters() } : {}),
  };
}

function setForm(p: ProfileView): void {
  ui.profileName.value = p.name;
  ui.engine.value = p.engine;
  ui.model.value = p.model;
  ui.host.value = p.host;
  const set = (i: HTMLInputElement | HTMLTextAreaElement, v: string | number | undefined) => (i.value = v === undefined ? '' : String(v));
  set(ui.port, p.port);
  set(ui.dtype, p.dtype);
  set(ui.maxLen, p.maxModelLen);
  set(ui.tp, p.tensorParallel);
  set(ui.memory, p.memoryFraction);
  set(ui.served, p.servedName);
  set(ui.extra, p.extraArgs);
  set(ui.env, p.env);
  set(ui.python, p.python);
  set(ui.command, p.command);
  set(ui.devices, p.deviceCount);
  ui.accelerator.value = p.accelerator && init?.accelerators.some((a) => a.name === p.accelerator) ? p.accelerator : '';
  ui.adapters.replaceChildren(...(p.adapters ?? []).map(adapterRow));
  memoryHint();
  deviceChoices(p.device);
  adapterState();
  sizeSoon();
}

const mode = (): RunMode => (ui.modeChat.checked ? 'chat' : 'completions');

function sampling(): SamplingView {
  const n = (i: HTMLInputElement, d: number) => (i.value.trim() === '' || !Number.isFinite(Number(i.value)) ? d : Number(i.value));
  return { temperature: n(ui.temperature, 0.7), topP: n(ui.topP, 1), maxTokens: Math.max(1, Math.round(n(ui.maxTokens, 128))), stop: ui.stopStrings.value, seed: optNum(ui.seed) };
}

function setSampling(s: SamplingView): void {
  ui.temperature.value = String(s.temperature);
  ui.topP.value = String(s.topP);
  ui.maxTokens.value = String(s.maxTokens);
  ui.seed.value = s.seed === undefined ? '' : String(s.seed);
  ui.stopStrings.value = s.stop;
}

function persist(): void {
  saveState<PageState>({ stateVersion: STATE_VERSION, form: form(), prompt: ui.prompt.value, mode: mode(), sampling: sampling() });
  sizeSoon();
}

// ---- Fit ---------------------------------------------------------------------------------------

let sizing: ReturnType<typeof setTimeout> | undefined;
let lastSized = '';
/** The latest sizing asked for: an older reply that arrives later is dropped. */
let sizingSeq = 0;

/** Sizes the form's launch a moment after it stops changing (once per distinct form). */
function sizeSoon(): void {
  if (sizing) clearTimeout(sizing);
  sizing = setTimeout(() => {
    const profile = form();
    if (!profile) return;
    const key = JSON.stringify({ ...profile, name: '', servedName: '', host: '', port: 0, extraArgs: '', python: '', command: '' });
    if (key === lastSized) return;
    lastSized = key;
    const seq = ++sizingSeq;
    void rpc.request({ type: 'fit', profile }, 60_000).then((r) => seq === sizingSeq && r.type === 'fit' && renderFit(r.fit), () => undefined);
  }, 250);
}

const FIT_LEVEL: Record<FitView['level'], string> = { green: t('fits'), amber: t('fits, with a warning'), red: t('does not fit'), none: t('not sized') };

/** The verdict, its numbers, and a button for each change that would fit (it sets the form's field). */
function renderFit(f: FitView): void {
  const use = (id: string, text: string, apply: () => void) => {
    const b = button(id, text, 'secondary');
    b.addEventListener('click', () => {
      apply();
      persist();
    });
    return b;
  };
  const actions: HTMLElement[] = [];
  if (f.suggestTp !== undefined) {
    const tp = f.suggestTp;
    actions.push(use('fit-use-tp', t('Use TP = {0}', tp), () => {
      ui.tp.value = String(tp);
      if (ui.devices.value !== '' && Number(ui.devices.value) < tp) ui.devices.value = String(tp);
    }));
  }
  if (f.suggestMaxModelLen !== undefined) {
    const len = f.suggestMaxModelLen;
    actions.push(use('fit-use-len', t('Use max length = {0}', len), () => (ui.maxLen.value = String(len))));
  }
  ui.fit.dataset.level = f.level;
  ui.fit.replaceChildren(
    el('div', { class: 'fit-headline' }, el('span', { class: 'fit-level', 'aria-hidden': 'true' }, f.level === 'none' ? '' : '●'), el('span', { class: 'visually-hidden' }, FIT_LEVEL[f.level] + ': '), f.headline),
    ...(f.lines.length ? [el('ul', { class: 'fit-lines' }, ...f.lines.map((l) => el('li', {}, l)))] : []),
    ...(actions.length ? [el('div', { class: 'row' }, ...actions)] : []),
  );
}

// ---- rendering host state ----------------------------------------------------------------------

function renderProfiles(profiles: readonly ProfileView[], select?: string): void {
  if (init) init = { ...init, profiles };
  ui.profile.replaceChildren(el('option', { value: '' }, profiles.length ? t('Saved profiles…') : t('No saved profiles')), ...profiles.map((p) => el('option', { value: p.name }, p.name)));
  ui.profile.value = select && profiles.some((p) => p.name === select) ? select : '';
  ui.deleteProfile.disabled = profiles.length === 0;
}

const secs = (ms: number) => t('{0} s', (ms / 1000).toFixed(1));

function renderServer(): void {
  renderRunModels();
  const s = server;
  const busy = s?.status === 'starting' || s?.status === 'ready' || s?.status === 'stopping';
  ui.start.disabled = !init?.trusted || s?.status === 'stopping';
  // The check runs Python: nothing runs in Restricted Mode.
  ui.checkSource.disabled ||= !init?.trusted;
  ui.stop.disabled = !busy;
  ui.failure.hidden = true;
  if (!s) {
    ui.serverLine.textContent = init?.trusted ? t('No server started from this window.') : t('Restricted Mode: trust this workspace to start servers.');
    ui.phases.replaceChildren();
    return;
  }
  const elapsed = Date.now() - s.startedAt;
  ui.serverLine.textContent =
    s.status === 'ready'
      ? t('{0}: ready at {1} after {2} — model "{3}"', s.engine, s.url, secs(s.readyAfter ?? elapsed), s.model)
      : s.status === 'starting'
        ? t('{0}: starting ({1})', s.engine, secs(elapsed))
        : s.status === 'stopping'
          ? t('{0}: stopping…', s.engine)
          : s.status === 'failed'
            ? t('{0}: failed', s.engine)
            : t('{0}: stopped', s.engine);
  ui.serverLine.dataset.status = s.status;
  const end = s.status === 'ready' ? (s.readyAfter ?? elapsed) : elapsed;
  ui.phases.replaceChildren(
    ...s.phases.map((p, i) => {
      const next = s.phases[i + 1]?.at ?? (s.status === 'starting' || s.status === 'ready' ? end : undefined);
      const took = p.phase === 'ready' ? '' : next === undefined ? '' : ` — ${secs(Math.max(0, next - p.at))}`;
      const progress = (p.phase === 'weights' && s.progress ? ` ${s.progress.done}/${s.progress.total}` : '') + (p.detail ? ` (${p.detail})` : '');
      const live = p.phase === s.phase && s.status === 'starting';
      return el('li', { class: live ? 'live' : '', 'data-phase': p.phase }, el('span', { class: 'phase' }, `${PHASE_LABEL[p.phase]}${progress}`), el('span', { class: 'at' }, t('at {0}', secs(p.at)) + took));
    }),
  );
  if (s.status === 'failed' && s.message) {
    const buttons = [button('failure-log', t('Show Log'), 'secondary')];
    if (s.preflight) buttons.unshift(button('failure-preflight', t('Preflight Export')));
    ui.failure.replaceChildren(el('pre', { class: 'error-message' }, s.message), el('div', { class: 'row' }, ...buttons));
    ui.failure.hidden = false;
    document.getElementById('failure-log')?.addEventListener('click', () => void rpc.request({ type: 'showLog' }));
    document.getElementById('failure-preflight')?.addEventListener('click', () => void rpc.request({ type: 'preflight' }, 10 * 60_000));
  }
}

function bar(fraction: number): HTMLElement {
  const fill = el('span', { class: 'fill' });
  // Through the CSSOM: the CSP refuses style attributes.
  fill.style.width = `${Math.round(Math.min(1, Math.max(0, fraction)) * 100)}%`;
  return el('span', { class: 'bar' }, fill);
}

function renderGauges(g: GaugesView | undefined, absent?: string): void {
  if (!g) {
    ui.gauges.replaceChildren(el('span', { class: 'status', id: 'gauges-absent' }, init?.attached && absent ? absent : ''));
    return;
  }
  const gauge = (label: string, value: string, fraction?: number) =>
    el('div', { class: 'gauge', role: 'meter', 'aria-label': label, 'aria-valuenow': String(fraction ?? 0), 'aria-valuemin': '0', 'aria-valuemax': '1' }, el('span', { class: 'gauge-label' }, label), el('span', { class: 'gauge-value' }, value), ...(fraction === undefined ? [] : [bar(fraction)]));
  ui.gauges.replaceChildren(
    gauge(t('Running'), g.running === undefined ? '—' : String(g.running)),
    gauge(t('Waiting'), g.waiting === undefined ? '—' : String(g.waiting)),
    gauge(t('KV cache'), g.kvCacheUse === undefined ? '—' : `${(g.kvCacheUse * 100).toFixed(1)} %`, g.kvCacheUse),
  );
}

function renderAttached(a: ServeInit['attached']): void {
  if (init) init = { ...init, attached: a };
  renderRunModels();
  ui.attached.textContent = a ? t('Generating with {0} at {1}', a.model ?? t('(no model name)'), a.url) : t('Not attached: start a server above (it attaches when ready), or attach to a running one.');
}

// ---- runs --------------------------------------------------------------------------------------

function generate(): void {
  if (current) return;
  const prompt = ui.prompt.value;
  if (!prompt.trim()) {
    ui.stats.textContent = t('Type a prompt first.');
    ui.prompt.focus();
    return;
  }
  ui.output.textContent = '';
  ui.stats.textContent = t('Waiting for the first token…');
  ui.stats.dataset.status = 'running';
  ui.generate.disabled = true;
  ui.cancel.disabled = false;
  const adapter = ui.runModel.disabled || ui.runModel.value === '' ? undefined : ui.runModel.value;
  void rpc.request({ type: 'generate', mode: mode(), prompt, sampling: sampling(), ...(adapter ? { adapter } : {}) }).then((r) => {
    if (r.type !== 'run') return;
    if (r.run.status === 'running') current = { id: r.run.id, text: '' };
    else endRun(r.run);
  }, showError);
}

function cancel(): void {
  if (current) void rpc.request({ type: 'cancelRun', id: current.id });
}

function statsText(r: RunView): string {
  const parts: string[] = [];
  if (r.ttftMs !== undefined) parts.push(t('TTFT {0} ms', r.ttftMs.toFixed(0)));
  if (r.tokensPerSecond !== undefined) parts.push(t('{0} tokens/s', r.tokensPerSecond.toFixed(1)));
  if (r.promptTokens !== undefined) parts.push(t('{0} prompt tokens', r.promptTokens));
  if (r.completionTokens !== undefined) parts.push(t('{0} completion tokens', r.completionTokens));
  if (r.finishReason) parts.push(t('finish: {0}', r.finishReason));
  return parts.join(' · ');
}

function endRun(r: RunView): void {
  if (current && current.id !== r.id) return;
  current = undefined;
  runOutput.set(r.id, r.text);
  ui.output.textContent = r.text;
  ui.generate.disabled = false;
  ui.cancel.disabled = true;
  ui.stats.dataset.status = r.status;
  ui.stats.textContent = r.status === 'done' ? statsText(r) : r.status === 'stopped' ? t('Stopped after {0} characters (kept above).', r.text.length) : t('Error: {0}', r.error ?? t('unknown'));
  if (r.status !== 'running') addHistory(r, true);
}

function addHistory(r: RunView, first: boolean): void {
  const when = new Date(r.at).toLocaleTimeString();
  const item = el(
    'li',
    { tabindex: '0', role: 'button', 'data-status': r.status },
    el('span', { class: 'when' }, when),
    el('span', { class: 'mode' }, r.mode === 'chat' ? t('chat') : t('completion'), ...(r.adapter ? [el('span', { class: 'adapter-tag' }, ` · ${r.adapter}`)] : [])),
    el('span', { class: 'prompt' }, r.prompt.replace(/\s+/g, ' ').slice(0, 80)),
    el('span', { class: 'stats' }, r.status === 'done' ? statsText(r) : RUN_STATUS[r.status]),
  );
  const restore = () => {
    ui.prompt.value = r.prompt;
    (r.mode === 'chat' ? ui.modeChat : ui.modeCompletion).checked = true;
    ui.output.textContent = r.text;
    ui.stats.textContent = r.status === 'done' ? statsText(r) : r.status === 'error' ? t('Error: {0}', r.error ?? '') : RUN_STATUS[r.status];
    persist();
  };
  item.addEventListener('click', restore);
  item.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      restore();
    }
  });
  if (first) ui.history.prepend(item);
  else ui.history.append(item);
  while (ui.history.children.length > 30) ui.history.lastElementChild!.remove();
}

function showError(e: unknown): void {
  ui.stats.textContent = t('Error: {0}', e instanceof Error ? e.message : String(e));
}

// ---- start -------------------------------------------------------------------------------------

build();
void rpc.request({ type: 'ready' }).then((m) => {
  if (m.type !== 'init') return;
  init = m;
  ui.engine.replaceChildren(...m.engines.map((e: EngineView) => el('option', { value: e.id }, e.title)));
  ui.accelerator.replaceChildren(el('option', { value: '' }, t('none (not sized)')), ...m.accelerators.map((a: AcceleratorView) => el('option', { value: a.name, title: a.source }, a.title === a.name ? t('{0}, {1} GiB', a.name, (a.memoryBytes / 2 ** 30).toFixed(1)) : t('{0} — {1}, {2} GiB', a.name, a.title, (a.memoryBytes / 2 ** 30).toFixed(1)))));
  renderProfiles(m.profiles);
  setForm(m.formWins ? m.form : (saved.form ?? m.form));
  setSampling(saved.sampling ?? m.sampling);
  ui.prompt.value = saved.prompt ?? '';
  ((saved.mode ?? 'completions') === 'chat' ? ui.modeChat : ui.modeCompletion).checked = true;
  server = m.server;
  renderServer();
  renderAttached(m.attached);
  renderGauges(m.gauges, m.gaugesAbsent);
  for (const r of m.history) addHistory(r, false);
  if (m.check) renderCheck(m.check, undefined);
  document.body.dataset.ready = 'true';
});
// The elapsed time of a starting server moves on between messages.
setInterval(() => {
  if (server?.status === 'starting') renderServer();
}, 1000);

// ---- Check Against Source ----------------------------------------------------------------------

/** Asks the host to check the attached server against its export; the verdict replaces the last. */
function checkSource(): void {
  ui.checkSource.disabled = true;
  ui.check.replaceChildren(el('div', { class: 'status' }, t('Checking… (progress and Cancel in the notification)')));
  void rpc
    .request({ type: 'checkSource' }, 60 * 60_000)
    .then((r) => r.type === 'checked' && renderCheck(r.check, r.error), showError)
    .finally(() => (ui.checkSource.disabled = !init?.trusted));
}

/** Green or red, one line per prompt, and the server's text with the first divergence marked (text nodes only: nothing is parsed as HTML). */
function renderCheck(check: CheckView | undefined, error: string | undefined): void {
  if (!check) {
    ui.check.replaceChildren(...(error ? [el('pre', { class: 'error-message' }, error)] : []));
    return;
  }
  const items = check.prompts.map((p) => {
    const text = p.span ? [p.text.slice(0, p.span[0]), el('mark', { class: 'divergence' }, p.text.slice(p.span[0], p.span[1]) || '⏹'), p.text.slice(p.span[1])] : [p.text];
    return el('li', { 'data-ok': String(p.ok) }, el('div', {}, `${p.ok ? '✓' : '✗'} ${p.summary}`), el('pre', { class: 'output' }, ...text));
  });
  ui.check.replaceChildren(el('div', { class: check.ok ? 'check-ok' : 'check-bad', 'data-ok': String(check.ok) }, check.headline), el('ol', { class: 'check-prompts' }, ...items));
}
