/**
 * Messages between the Serve panel and its webview: the launch form (a profile), the server's
 * state as it starts, the gauges from /metrics, and generations with their measurements. The view
 * types are core's own (through its type-only entry), so the page and the host cannot drift apart.
 */
import type { EngineFacts, FitView, LaunchProfile, Phase, ServerGauges, ServerStatus } from '../core/types';
import { isObj } from './guards';

/** The launch form: a profile as core checks and launches it. */
export type ProfileView = LaunchProfile;

/** What the form needs of an engine: its options (memory flag, devices, LoRA adapters) come from its spec. */
export type EngineView = Pick<EngineFacts, 'id' | 'title' | 'memoryFlag' | 'devices'> & {
  /** It serves LoRA adapters beside the model (its spec has `lora`). */
  readonly takesAdapters: boolean;
};

export interface ServerView {
  readonly status: ServerStatus;
  /** The engine's title, and its short name for tight places (the status bar). */
  readonly engine: string;
  readonly shortName: string;
  readonly url: string;
  readonly port: number;
  readonly model: string;
  /** The names of the LoRA adapters it was started with (a run may select one). */
  readonly adapters?: readonly string[];
  /** The phase it is in now (an engine may go back to one: the last of `phases` need not be it). */
  readonly phase: Phase;
  /** Each phase once with when it began (ms after start), in the order first seen. */
  readonly phases: readonly { readonly phase: Phase; readonly at: number; readonly detail?: string }[];
  readonly progress?: { readonly done: number; readonly total: number };
  /** Date.now() at start; the page ticks the elapsed time itself. */
  readonly startedAt: number;
  /** ms from start to ready. */
  readonly readyAfter?: number;
  readonly message?: string;
  /** The failure is one the export's preflight can show. */
  readonly preflight?: boolean;
}

export type GaugesView = ServerGauges;

export type { FitView };

/** An accelerator the form offers to size the launch for. */
export interface AcceleratorView {
  readonly name: string;
  readonly title: string;
  /** Memory per device, in bytes, and where that figure comes from. */
  readonly memoryBytes: number;
  readonly source: string;
}

export interface SamplingView {
  readonly temperature: number;
  readonly topP: number;
  readonly maxTokens: number;
  /** One stop string per line. */
  readonly stop: string;
  /** Empty: none. */
  readonly seed?: number;
}

/** The stop strings a sampling sends: one per non-empty line (the live run and the offline script alike). */
export function stopSequences(s: SamplingView): string[] {
  return s.stop.split('\n').filter((line) => line !== '');
}

export type RunMode = 'completions' | 'chat';

export interface RunView {
  readonly id: number;
  readonly mode: RunMode;
  readonly prompt: string;
  readonly text: string;
  readonly model?: string;
  /** The LoRA adapter it generated with; none: the base model. */
  readonly adapter?: string;
  readonly status: 'running' | 'done' | 'stopped' | 'error';
  readonly error?: string;
  readonly ttftMs?: number;
  readonly tokensPerSecond?: number;
  readonly promptTokens?: number;
  readonly completionTokens?: number;
  readonly finishReason?: string;
  readonly at: number;
}

/** Check Against Source: one prompt's verdict, as the panel shows it (from core's PromptCheck). */
export interface CheckPromptView {
  readonly prompt: string;
  readonly ok: boolean;
  /** The server's text; the first divergence is [start, end) of it. */
  readonly text: string;
  readonly span?: readonly [number, number];
  /** Every generated token equal to the reference's (near-ties aside, `ok` may still hold without). */
  readonly tokensEqual: boolean;
  /** 0-based index among the generated tokens of the first that differs, or null (as check-served --json says). */
  readonly firstDivergence: number | null;
  /** One line: tokens compared, the divergence with both tokens and the margin, near-ties, warnings. */
  readonly summary: string;
}

export interface CheckView {
  readonly ok: boolean;
  readonly headline: string;
  /** The API asked (`/generate`, `completions`, `chat`) and the model sent (none for /generate). */
  readonly api: string;
  readonly model?: string;
  readonly prompts: readonly CheckPromptView[];
}

export interface ServeInit {
  readonly type: 'init';
  readonly engines: readonly EngineView[];
  readonly accelerators: readonly AcceleratorView[];
  readonly profiles: readonly ProfileView[];
  readonly form: ProfileView;
  /** The form above wins over the page's saved one (a folder was chosen in the explorer). */
  readonly formWins?: boolean;
  readonly server?: ServerView;
  readonly attached?: { readonly url: string; readonly model?: string };
  readonly sampling: SamplingView;
  readonly history: readonly RunView[];
  readonly trusted: boolean;
  /** The last Check Against Source verdict of this session (a check run while the page was closed or loading). */
  readonly check?: CheckView;
  /** The gauges as last read, or why there are none. */
  readonly gauges?: GaugesView;
  readonly gaugesAbsent?: string;
}

export type ServeHostToWebview =
  | ServeInit
  | { readonly type: 'server'; readonly server?: ServerView }
  /** No gauges: `absent` says why (for the engine the server was started with, when known). */
  | { readonly type: 'gauges'; readonly gauges?: GaugesView; readonly absent?: string }
  | { readonly type: 'profiles'; readonly profiles: readonly ProfileView[] }
  | { readonly type: 'attached'; readonly attached?: { readonly url: string; readonly model?: string } }
  | { readonly type: 'runText'; readonly id: number; readonly text: string }
  | { readonly type: 'run'; readonly run: RunView }
  | { readonly type: 'picked'; readonly path?: string }
  /** The explorer's "Serve Folder…": the form takes this folder. */
  | { readonly type: 'model'; readonly path: string }
  /** The session's sampling, set elsewhere (a settings change): the page's fields take it. */
  | { readonly type: 'sampling'; readonly sampling: SamplingView }
  | { readonly type: 'ack' }
  /** The Fit section's verdict for the form last sent. */
  | { readonly type: 'fit'; readonly fit: FitView }
  /** The end of Check Against Source: a verdict, or why there is none (cancelled: neither). Also sent unasked for a check the command ran. */
  | { readonly type: 'checked'; readonly check?: CheckView; readonly error?: string };

export type ServeWebviewToHost =
  | { readonly type: 'ready' }
  | { readonly type: 'start'; readonly profile: ProfileView }
  /** Size the form's launch (the Fit section). */
  | { readonly type: 'fit'; readonly profile: ProfileView }
  | { readonly type: 'stop' }
  | { readonly type: 'saveProfile'; readonly profile: ProfileView }
  | { readonly type: 'deleteProfile'; readonly name: string }
  | { readonly type: 'pickModel' }
  /** A LoRA adapter folder for the form (the reply: `picked`). */
  | { readonly type: 'pickAdapter' }
  | { readonly type: 'showLog' }
  | { readonly type: 'preflight' }
  | { readonly type: 'attach' }
  | { readonly type: 'checkSource' }
  /** `adapter`: one of the server's adapters (ServerView.adapters); none: the base model. */
  | { readonly type: 'generate'; readonly mode: RunMode; readonly prompt: string; readonly sampling: SamplingView; readonly adapter?: string }
  | { readonly type: 'cancelRun'; readonly id: number }
  | { readonly type: 'offlineScript'; readonly profile: ProfileView; readonly mode: RunMode; readonly prompt: string; readonly sampling: SamplingView };

const str = (v: unknown, max = 100_000) => typeof v === 'string' && v.length <= max;
const optStr = (v: unknown, max = 10_000) => v === undefined || str(v, max);
const optNum = (v: unknown) => v === undefined || (typeof v === 'number' && Number.isFinite(v));

/** The adapters a profile names: at most 64 (core's MAX_SERVED_ADAPTERS; core checks the rest before a launch). */
const optAdapters = (v: unknown) => v === undefined || (Array.isArray(v) && v.length <= 64 && v.every((a) => isObj(a) && str(a.name, 200) && str(a.path, 10_000)));

/** A profile from the page; `engineIds` are the engines the host offered (core's, which this file cannot import). */
export function isProfileView(v: unknown, engineIds: readonly string[]): v is ProfileView {
  return (
    isObj(v) &&
    str(v.name, 200) &&
    typeof v.engine === 'string' &&
    engineIds.includes(v.engine) &&
    str(v.model, 10_000) &&
    str(v.host, 1000) &&
    [v.port, v.maxModelLen, v.tensorParallel, v.memoryFraction, v.deviceCount].every(optNum) &&
    [v.dtype, v.servedName, v.device, v.extraArgs, v.env, v.python, v.command, v.accelerator].every((s) => optStr(s)) &&
    optAdapters(v.adapters)
  );
}

function isSampling(v: unknown): v is SamplingView {
  return isObj(v) && [v.temperature, v.topP, v.maxTokens].every((n) => typeof n === 'number' && Number.isFinite(n)) && str(v.stop, 10_000) && optNum(v.seed);
}

const isMode = (v: unknown): v is RunMode => v === 'completions' || v === 'chat';

export function isServeWebviewToHost(v: unknown, engineIds: readonly string[]): v is ServeWebviewToHost {
  if (!isObj(v)) return false;
  switch (v.type) {
    case 'ready':
    case 'stop':
    case 'pickModel':
    case 'pickAdapter':
    case 'showLog':
    case 'preflight':
    case 'attach':
    case 'checkSource':
      return true;
    case 'start':
    case 'saveProfile':
    case 'fit':
      return isProfileView(v.profile, engineIds);
    case 'deleteProfile':
      return str(v.name, 200);
    case 'generate':
      return isMode(v.mode) && str(v.prompt) && isSampling(v.sampling) && optStr(v.adapter, 200);
    case 'cancelRun':
      return typeof v.id === 'number' && Number.isSafeInteger(v.id);
    case 'offlineScript':
      return isProfileView(v.profile, engineIds) && isMode(v.mode) && str(v.prompt) && isSampling(v.sampling);
    default:
      return false;
  }
}

export function isServeHostToWebview(v: unknown): v is ServeHostToWebview {
  return isObj(v) && ['init', 'server', 'gauges', 'profiles', 'attached', 'runText', 'run', 'picked', 'model', 'sampling', 'ack', 'fit', 'checked'].includes(v.type as string);
}
