/**
 * The serving state every surface shares (the status bar, the Serve panel, the editor commands,
 * Attach, tasks and profiles): the server this window started or the endpoint it attached to, with
 * one root and one API key; the sampling; the run history; one generation at a time, with cancel;
 * the gauges; the saved profiles; the last Check Against Source. Surfaces read it and listen to its
 * events; none holds serving state of its own. It imports no vscode (storage, the clock and the
 * process are handed in), so it runs in plain Node under test, against a real HTTP server.
 */
import { describeError, engineById, fetchGauges, generate, isJaxServeError, JaxServeError, launchOptions, listModels, profilesWith, metricsAbsentNote, serverRoot, ServedModels, stripControls, type CheckReport, type EngineSpec, type GenerateApi, type LaunchOptions, type ServerTextLog } from '../core/index';
import { checkServed, readAdapters, type CheckServedOptions, type ServerProcess, type ServerProcessOptions, type ServerState } from '../core/node/index';
import { stopSequences, type GaugesView, type ProfileView, type RunMode, type RunView, type SamplingView, type ServerView } from '../shared/serveProtocol';
import { Emitter } from './emitter';

/** A server generation goes to: the one started here once ready, or one attached to. */
export interface Endpoint {
  /** As the user gave it; requests go to serverRoot(). */
  readonly url: string;
  /** The served name; none: the first the server lists (core's modelToSend). */
  readonly model: string | undefined;
}

export interface SessionTexts {
  /** How the user gives a model name, and a key, for the messages that need one. */
  readonly modelHint: string;
  readonly apiKeyHint: string;
  /** A run or a check with nothing attached. */
  readonly noServer: string;
  /** A run refused while run `id` goes on. */
  busy(id: number): string;
  /** What precedes a server's whole error text in the output: "URL said:". */
  serverSaid(url: string): string;
  /** A profile saved without a name. */
  readonly unnamedProfile: string;
  /** A run asked for a LoRA adapter the attached server was not started with here. */
  noAdapter(name: string): string;
}

/** Where state is kept across reloads (VS Code's workspaceState fits). */
export interface KeyValueStore {
  get<T>(key: string): T | undefined;
  update(key: string, value: unknown): PromiseLike<void>;
}

/** Where API keys are kept (VS Code's SecretStorage fits). */
export interface SecretStore {
  get(key: string): PromiseLike<string | undefined>;
  store(key: string, value: string): PromiseLike<void>;
  delete(key: string): PromiseLike<void>;
}

export interface Clock {
  now(): number;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

/** The servers a window started, listed so the next activation stops those a crash left (core's ServerRegistry fits). */
export interface ServerList {
  add(pid: number, title: string, url: string): void;
  remove(pid: number): void;
}

export interface ServeSessionOptions {
  readonly store: KeyValueStore;
  readonly secrets: SecretStore;
  /** Starts a server process (core's ServerProcess.start). */
  readonly startProcess: (o: ServerProcessOptions) => Promise<ServerProcess>;
  /** Where the server's output lines and the whole text of its errors go. */
  readonly output: { appendLine(line: string): void };
  /** How messages name that place: "(N more lines in …)". */
  readonly outputName: string;
  /** What the session says, in the user's language (this file cannot call vscode.l10n). */
  readonly texts: SessionTexts;
  /** The sampling until one is set (the jaxServe.generate settings). */
  readonly defaultSampling: () => SamplingView;
  /** The model folder of a new form (the last export). */
  readonly lastExport?: () => string | undefined;
  readonly registry?: ServerList;
  /** The watchdog script beside every server. */
  readonly watchdog?: string;
  /** Times the flushes of a run and the gauge reads (a fake one under test). */
  readonly clock?: Clock;
}

/**
 * Where a generation's text goes: the panel's page or an editor. Text arrives batched, at most
 * every FLUSH_MS; `write` is awaited before the next, and a rejection ends the run (the editor closed).
 */
export interface RunSink {
  write(text: string, chunks: number): void | PromiseLike<void>;
  /** Kept in the history the panel shows (the panel's runs are; an editor's text is in the editor). */
  readonly remember: boolean;
}

export interface RunRequest {
  readonly mode: RunMode;
  readonly prompt: string;
  /** A LoRA adapter of the server started here (by name); none: the base model. */
  readonly adapter?: string;
}

/** A run started: its first view (running) and its end (done, stopped or error; never rejects: what fails after the run is logged). */
export interface RunHandle {
  readonly run: RunView;
  readonly done: Promise<RunView>;
}

export interface StartedServer {
  readonly view: ServerView;
  /** Resolves when ready (the session has attached to it); rejects with why it did not get there. */
  readonly ready: Promise<void>;
}

const ATTACHED_KEY = 'jaxServe.attached';
/** Keys were kept under the URL as typed before they were kept under its root: read once, then moved. */
const oldKeyName = (url: string) => `jaxServe.apiKey:${url}`;
const HISTORY_KEY = 'jaxServe.runHistory';
const SAMPLING_KEY = 'jaxServe.sampling';
const PROFILES_KEY = 'jaxServe.serveProfiles';
const FORM_KEY = 'jaxServe.serveForm';
const MAX_HISTORY = 30;
/** Characters of a run's text kept in the history (the panel shows the whole text while it is open). */
const MAX_HISTORY_TEXT = 20_000;
/** Streamed text goes to a sink at most this often: one policy for the editor and the panel. */
export const FLUSH_MS = 50;
const GAUGES_MS = 2000;

const DEFAULT_PROFILE: ProfileView = { name: '', engine: 'vllm', model: '', host: '127.0.0.1' };

const realClock: Clock = { now: () => Date.now(), setInterval: (fn, ms) => setInterval(fn, ms), clearInterval: (h) => clearInterval(h as ReturnType<typeof setInterval>) };

interface Managed {
  readonly server: ServerProcess;
  readonly spec: EngineSpec;
  readonly launch: LaunchOptions;
  readonly startedAt: number;
  readyAfter?: number;
}

export class ServeSession {
  private readonly clock: Clock;
  private managed: Managed | undefined;
  /** The attached server's key as last read, by its root (see apiKey). */
  private key: { readonly root: string; readonly value: string | undefined } | undefined;
  private current: { readonly run: RunView; readonly ac: AbortController } | undefined;
  private nextRun = 1;
  private readonly servedModels = new ServedModels();
  private gaugeWatchers = 0;
  private gaugeTimer: unknown;
  private gaugeRead = 0;
  private _gauges: GaugesView | undefined;
  private _gaugesAbsent: string | undefined;
  private _lastCheck: CheckReport | undefined;

  private readonly serverChanged = new Emitter<ServerView | undefined>();
  private readonly endpointChanged = new Emitter<Endpoint | undefined>();
  private readonly runChanged = new Emitter<RunView>();
  private readonly gaugesChanged = new Emitter<{ readonly gauges?: GaugesView; readonly absent?: string }>();
  private readonly profilesChanged = new Emitter<readonly ProfileView[]>();
  private readonly samplingChanged = new Emitter<SamplingView>();
  /** The managed server's state changed (undefined: none started). */
  readonly onDidChangeServer = this.serverChanged.event;
  /** Attached to another server, or the same again. */
  readonly onDidChangeEndpoint = this.endpointChanged.event;
  /** A run started or ended. */
  readonly onDidChangeRun = this.runChanged.event;
  readonly onDidChangeGauges = this.gaugesChanged.event;
  readonly onDidChangeProfiles = this.profilesChanged.event;
  /** The sampling was set (by the panel, or from the settings). */
  readonly onDidChangeSampling = this.samplingChanged.event;

  /** A server's whole error text for the output; messages carry its first line. */
  readonly serverLog: ServerTextLog;

  constructor(private readonly o: ServeSessionOptions) {
    this.clock = o.clock ?? realClock;
    this.serverLog = { where: o.outputName, append: (url, text) => o.output.appendLine(`\n${o.texts.serverSaid(url)}\n${text.trimEnd()}`) };
  }

  // ---- The endpoint: one root, one key ------------------------------------------------------

  get endpoint(): Endpoint | undefined {
    return this.o.store.get<Endpoint>(ATTACHED_KEY);
  }

  /** The attached server's root (no trailing `/`, no `/v1`): what generate, models, metrics and the check ask. */
  serverRoot(): string | undefined {
    const e = this.endpoint;
    return e && serverRoot(e.url);
  }

  private keyName(url: string): string {
    return `jaxServe.apiKey:${serverRoot(url)}`;
  }

  /**
   * The key sent to the attached server (as `Authorization: Bearer`), if one was given. Read from
   * the secret store once per server root (the gauges ask every 2 s); attach() sets or clears it.
   */
  private async apiKey(): Promise<string | undefined> {
    const e = this.endpoint;
    if (!e) return undefined;
    const root = serverRoot(e.url);
    if (this.key?.root !== root) this.key = { root, value: await this.readApiKey(e.url) };
    return this.key.value;
  }

  /** The kept key for `url`'s root; one kept under the old name (the URL as typed) moves to the root's name. */
  private async readApiKey(url: string): Promise<string | undefined> {
    const key = await this.o.secrets.get(this.keyName(url));
    if (key) return key;
    const old = oldKeyName(url);
    if (old === this.keyName(url)) return undefined;
    const kept = await this.o.secrets.get(old);
    if (!kept) return undefined;
    await this.o.secrets.store(this.keyName(url), kept);
    await this.o.secrets.delete(old);
    return kept;
  }

  /** What the server at `url` lists at /v1/models (for choosing one before attaching). */
  listModels(url: string, apiKey: string | undefined): Promise<string[]> {
    return listModels(serverRoot(url), apiKey, undefined, undefined, this.serverLog);
  }

  /**
   * Attaches generation to a server. `apiKey`: a string is kept for it, '' forgets its key,
   * undefined leaves the kept one as it is.
   */
  async attach(url: string, model: string | undefined, apiKey?: string): Promise<Endpoint> {
    if (apiKey) await this.o.secrets.store(this.keyName(url), apiKey);
    // A key kept under the old name would come back (see apiKey): it goes too.
    else if (apiKey === '') for (const name of new Set([this.keyName(url), oldKeyName(url)])) await this.o.secrets.delete(name);
    this.key = undefined;
    const endpoint: Endpoint = { url, model: model || undefined };
    // A server attached again may serve another model (a restart at the same port): list it again.
    this.servedModels.forget();
    await this.o.store.update(ATTACHED_KEY, endpoint);
    this.setGauges(undefined, undefined);
    this.endpointChanged.fire(endpoint);
    this.restartGauges();
    return endpoint;
  }

  // ---- Sampling and runs ----------------------------------------------------------------------

  /** The sampling of every run, the panel's and the editor's: the settings' until set (the panel's fields, or a settings change). */
  get sampling(): SamplingView {
    return this.o.store.get<SamplingView>(SAMPLING_KEY) ?? this.o.defaultSampling();
  }

  async setSampling(s: SamplingView): Promise<void> {
    await this.o.store.update(SAMPLING_KEY, s);
    this.samplingChanged.fire(s);
  }

  /** Why a run started now would be refused (nothing attached, or a run going on); undefined: it would start. */
  refusal(): string | undefined {
    if (!this.endpoint) return this.o.texts.noServer;
    if (this.current) return this.o.texts.busy(this.current.run.id);
    return undefined;
  }

  /** The panel's runs of this session and before, newest first. */
  get history(): readonly RunView[] {
    return this.o.store.get<RunView[]>(HISTORY_KEY) ?? [];
  }

  /**
   * Streams one generation from the attached server into `sink`, with the session's sampling. One
   * run at a time: while one runs, another is refused (it ends at once as an error saying so), so
   * two sinks never interleave and cancel always means the one run. What arrived before an error
   * or a cancel stays in the sink and in the run's text.
   */
  runGeneration(request: RunRequest, sink: RunSink): RunHandle {
    const endpoint = this.endpoint;
    const base: RunView = { id: this.nextRun++, mode: request.mode, prompt: request.prompt, text: '', model: endpoint?.model, ...(request.adapter ? { adapter: request.adapter } : {}), status: 'running', at: this.clock.now() };
    // An adapter is one the server started here was started with, and that server is the one attached.
    const engine = request.adapter === undefined ? undefined : this.adapterHere(request.adapter);
    const refused = this.refusal() ?? (request.adapter !== undefined && !engine ? this.o.texts.noAdapter(request.adapter) : undefined);
    if (refused || !endpoint) {
      const run: RunView = { ...base, status: 'error', error: refused };
      return { run, done: Promise.resolve(run) };
    }
    const ac = new AbortController();
    this.current = { run: base, ac };
    this.runChanged.fire(base);
    const adapter = request.adapter !== undefined && engine ? { name: request.adapter, engine: engine.id } : undefined;
    return { run: base, done: this.stream(endpoint, base, request, adapter, sink, ac) };
  }

  /** The engine of the server started here, when it is the attached one and was started with adapter `name`. */
  private adapterHere(name: string): EngineSpec | undefined {
    const m = this.managed;
    const at = this.managedAt(this.endpoint?.url);
    return at && m?.launch.adapters?.some((a) => a.name === name) ? at.spec : undefined;
  }

  /** Stops the run going on (by id, when given: a page's stale button stops nothing else). */
  cancelRun(id?: number): void {
    if (this.current && (id === undefined || this.current.run.id === id)) this.current.ac.abort();
  }

  private async stream(endpoint: Endpoint, base: RunView, request: RunRequest, adapter: { name: string; engine: string } | undefined, sink: RunSink, ac: AbortController): Promise<RunView> {
    const sampling = this.sampling;
    let pending = '';
    let text = '';
    let chunks = 0;
    let writing: Promise<void> = Promise.resolve();
    let sinkFailed: unknown;
    const flush = () =>
      (writing = writing.then(async () => {
        if (!pending || sinkFailed) return;
        const t = pending;
        pending = '';
        try {
          await sink.write(t, chunks);
          text += t;
        } catch (e) {
          sinkFailed = e;
          ac.abort();
        }
      }));
    const timer = this.clock.setInterval(() => void flush(), FLUSH_MS);
    let run: RunView;
    try {
      const r = await generate(
        {
          baseUrl: serverRoot(endpoint.url),
          model: endpoint.model,
          // The engine's rule names the adapter in the request (core's resolveRequest).
          adapter,
          servedModels: this.servedModels,
          modelHint: this.o.texts.modelHint,
          apiKeyHint: this.o.texts.apiKeyHint,
          apiKey: await this.apiKey(),
          log: this.serverLog,
          api: request.mode satisfies GenerateApi,
          prompt: request.prompt,
          maxTokens: sampling.maxTokens,
          temperature: sampling.temperature,
          topP: sampling.topP,
          stop: stopSequences(sampling),
          seed: sampling.seed,
          signal: ac.signal,
        },
        (e) => {
          if (e.kind !== 'text') return;
          pending += e.text;
          chunks++;
        },
      );
      this.clock.clearInterval(timer);
      await flush();
      if (sinkFailed) throw sinkFailed;
      // The model sent: the attached name, or the one the server listed.
      run = { ...base, model: r.model, text, status: 'done', ttftMs: r.ttftMs, tokensPerSecond: r.tokensPerSecond, promptTokens: r.usage?.promptTokens, completionTokens: r.tokens, finishReason: r.finishReason };
    } catch (e) {
      this.clock.clearInterval(timer);
      await flush();
      const failure = sinkFailed ?? e;
      const stopped = !sinkFailed && isJaxServeError(e) && e.code === 'E_CANCELLED';
      run = { ...base, text, status: stopped ? 'stopped' : 'error', error: stopped ? undefined : describeError(failure) };
    }
    this.current = undefined;
    try {
      if (sink.remember) await this.o.store.update(HISTORY_KEY, [{ ...run, text: run.text.slice(0, MAX_HISTORY_TEXT) }, ...this.history].slice(0, MAX_HISTORY));
    } catch (e) {
      // The run happened whether or not its record was kept: done resolves, the failure is logged.
      this.o.output.appendLine(`\n${describeError(e)}`);
    }
    this.runChanged.fire(run);
    return run;
  }

  // ---- The managed server ---------------------------------------------------------------------

  /** The managed server's view (undefined: none started in this window). */
  get server(): ServerView | undefined {
    const m = this.managed;
    return m && this.viewOf(m, m.server.state);
  }

  /** Starting, ready or stopping: a second start would have to stop it first. */
  get busy(): boolean {
    const s = this.managed?.server.state.status;
    return s === 'starting' || s === 'ready' || s === 'stopping';
  }

  /** The engine and folder of the managed server, when it is the one at the endpoint's root (another URL serves another model). */
  managedAt(url: string | undefined): { readonly spec: EngineSpec; readonly folder: string } | undefined {
    const m = this.managed;
    return m && url !== undefined && serverRoot(m.server.url) === serverRoot(url) ? { spec: m.spec, folder: m.launch.model } : undefined;
  }

  /** The managed server's engine id and folder (whose preflight its failures concern). */
  get managedLaunch(): { readonly engine: string; readonly folder: string } | undefined {
    const m = this.managed && this.managedAt(this.managed.server.url);
    return m && { engine: m.spec.id, folder: m.folder };
  }

  /**
   * Starts a server on a profile (relative folders already made absolute, a port chosen), stopping
   * none: the caller asks first (see busy). Throws E_USAGE for a bad profile, and one line naming
   * the file for an adapter folder that cannot be served. Once ready, generation attaches to it.
   */
  async startServer(profile: ProfileView, port: number, python: string | undefined): Promise<StartedServer> {
    await this.o.store.update(FORM_KEY, profile);
    // Checked by core: an unknown engine or a bad field is an E_USAGE naming it.
    const checked = launchOptions(profile, port, python);
    const spec = engineById(profile.engine)!;
    const { env } = checked;
    // The adapters' folders are read before anything is spawned (their ranks size the engine's flags).
    const launch: LaunchOptions = { ...checked.launch, adapters: await readAdapters(spec, checked.adapters) };
    const server = await this.o.startProcess({ spec, launch, env, watchdog: this.o.watchdog, onLine: (l) => this.o.output.appendLine(stripControls(l)), onState: (s) => this.onState(s) });
    const m: Managed = { server, spec, launch, startedAt: this.clock.now() };
    this.managed = m;
    const { command, args } = server.command;
    this.o.output.appendLine(`\n$ ${[command, ...args].map((a) => (/[\s"'$]/.test(a) ? JSON.stringify(a) : a)).join(' ')}`);
    if (server.state.pid) this.o.registry?.add(server.state.pid, spec.title, server.url);
    this.onState(server.state);
    const ready = server.ready().then(async () => {
      m.readyAfter = this.clock.now() - m.startedAt;
      this.serverChanged.fire(this.viewOf(m, server.state));
      await this.attach(server.url, spec.modelName(launch));
    });
    return { view: this.viewOf(m, server.state), ready };
  }

  private onState(s: ServerState): void {
    const m = this.managed;
    if (!m) return;
    if ((s.status === 'stopped' || s.status === 'failed') && s.pid) this.o.registry?.remove(s.pid);
    if (s.status === 'failed' && s.message) this.o.output.appendLine(`\n${stripControls(s.message)}`);
    this.serverChanged.fire(this.viewOf(m, s));
  }

  private viewOf(m: Managed, s: ServerState): ServerView {
    return {
      status: s.status,
      engine: m.spec.title,
      shortName: m.spec.shortName,
      url: s.url,
      port: m.launch.port,
      model: m.spec.modelName(m.launch),
      ...(m.launch.adapters?.length ? { adapters: m.launch.adapters.map((a) => a.name) } : {}),
      phase: s.startup.phase,
      phases: s.startup.phases,
      progress: s.startup.progress,
      startedAt: m.startedAt,
      readyAfter: m.readyAfter,
      message: s.message,
      preflight: s.status === 'failed' && m.server.log.explain().some((c) => c.cause.preflight),
    };
  }

  /** Stops the managed server's whole group (SIGINT, SIGTERM, SIGKILL) and resolves when it is gone. */
  async stopServer(graceMs?: number): Promise<void> {
    if (!this.managed || !this.busy) return;
    await this.managed.server.stop(graceMs);
  }

  // ---- Profiles -------------------------------------------------------------------------------

  get profiles(): readonly ProfileView[] {
    return this.o.store.get<ProfileView[]>(PROFILES_KEY) ?? [];
  }

  async saveProfile(p: ProfileView): Promise<readonly ProfileView[]> {
    const list = profilesWith(this.profiles, p, this.o.texts.unnamedProfile);
    await this.o.store.update(PROFILES_KEY, list);
    this.profilesChanged.fire(list);
    return list;
  }

  async deleteProfile(name: string): Promise<readonly ProfileView[]> {
    const list = this.profiles.filter((x) => x.name !== name);
    await this.o.store.update(PROFILES_KEY, list);
    this.profilesChanged.fire(list);
    return list;
  }

  /** The form as last started, else a new one on the last export. */
  get form(): ProfileView {
    const saved = this.o.store.get<ProfileView>(FORM_KEY) ?? DEFAULT_PROFILE;
    return saved.model ? saved : { ...saved, model: this.o.lastExport?.() ?? '' };
  }

  // ---- Gauges ---------------------------------------------------------------------------------

  get gauges(): GaugesView | undefined {
    return this._gauges;
  }

  /** Why there are no gauges, when the last read found none. */
  get gaugesAbsent(): string | undefined {
    return this._gaugesAbsent;
  }

  /** Reads /metrics of the attached server every few seconds while someone watches (the visible panel). */
  watchGauges(): { dispose(): void } {
    this.gaugeWatchers++;
    this.restartGauges();
    let disposed = false;
    return {
      dispose: () => {
        if (disposed) return;
        disposed = true;
        this.gaugeWatchers--;
        this.restartGauges();
      },
    };
  }

  private restartGauges(): void {
    this.clock.clearInterval(this.gaugeTimer);
    this.gaugeTimer = undefined;
    if (this.gaugeWatchers === 0 || !this.endpoint) return;
    void this.readGauges();
    this.gaugeTimer = this.clock.setInterval(() => void this.readGauges(), GAUGES_MS);
  }

  private async readGauges(): Promise<void> {
    const root = this.serverRoot();
    if (!root) return;
    // Reads overlap when a server is slow: only the latest one's answer counts.
    const read = ++this.gaugeRead;
    let g: GaugesView | undefined;
    try {
      g = await fetchGauges(root, await this.apiKey());
    } catch {
      g = undefined; // not up (yet), or gone
    }
    if (read !== this.gaugeRead) return;
    // Said for the engine this window started there; an attached server's engine is not known.
    this.setGauges(g, g ? undefined : metricsAbsentNote(this.managedAt(root)?.spec));
  }

  private setGauges(g: GaugesView | undefined, absent: string | undefined): void {
    if (JSON.stringify(g) === JSON.stringify(this._gauges) && absent === this._gaugesAbsent) return;
    this._gauges = g;
    this._gaugesAbsent = absent;
    this.gaugesChanged.fire({ gauges: g, absent });
  }

  // ---- Check Against Source -------------------------------------------------------------------

  /** The last verdict of Check Against Source in this session. */
  get lastCheck(): CheckReport | undefined {
    return this._lastCheck;
  }

  /** Runs core's served-vs-source check against the attached server (its root, key and model). */
  async checkAgainstSource(o: Pick<CheckServedOptions, 'source' | 'api' | 'python' | 'packageRoot' | 'signal' | 'onStep'>): Promise<CheckReport> {
    const endpoint = this.endpoint;
    const root = this.serverRoot();
    if (!endpoint || !root) throw new JaxServeError('E_USAGE', this.o.texts.noServer);
    const report = await checkServed({ ...o, url: root, model: endpoint.model, apiKey: await this.apiKey(), apiKeyHint: this.o.texts.apiKeyHint, log: this.serverLog });
    this._lastCheck = report;
    return report;
  }

  dispose(): void {
    this.clock.clearInterval(this.gaugeTimer);
    this.current?.ac.abort();
    for (const e of [this.serverChanged, this.endpointChanged, this.runChanged, this.gaugesChanged, this.profilesChanged, this.samplingChanged]) e.dispose();
  }
}
