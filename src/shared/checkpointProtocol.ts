/**
 * Messages between the checkpoint editor's host side and its webview. Both sides import this file
 * and ship in one build, but `init` still carries the version so restored webview state from an
 * older build is recognised and dropped. Core's own types (statistics, histogram, slice request,
 * side files, tree expansion, sort key) come from core's type-only entry, stated once there.
 */
import type { Expansion, Histogram, SideFiles, SliceRequest, TensorSortKey, TensorStats } from '../core/types';
import { isObj, isCount } from './guards';

export const PROTOCOL_VERSION = 4;
/** Version of what the webview persists with setState. */
export const STATE_VERSION = 3;
/** Rows one `listRows` may ask for; the host clamps to this. */
export const MAX_ROWS_PER_REQUEST = 2000;

export interface TensorRow {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly parameters: number;
  readonly bytes: number;
  /** Tree view: the row's depth and the key(s) it shows under its parent. */
  readonly depth?: number;
  readonly label?: string;
  /** Tree view, group rows: `name` is the key-path prefix, `dtype` the one all share or 'mixed'. */
  readonly group?: { readonly id: string; readonly tensors: number; readonly expanded: boolean };
  /**
   * A row listed from a sharded index whose shard headers are still being read (or failed to
   * validate): its name (and a group's tensor count) is known, its dtype, shape, parameters and
   * bytes are not, and are sent empty.
   */
  readonly pending?: boolean;
}

/** Group ids one request may list. */
export const MAX_TREE_IDS = 100_000;

export interface CheckpointSummaryView {
  readonly location: string;
  readonly format: string;
  readonly files: number;
  readonly tensorCount: number;
  /** Null while the shard headers are being read (the index lists names, not sizes). */
  readonly parameterCount: number | null;
  readonly bytes: number | null;
  readonly parametersByDtype: readonly (readonly [string, number])[];
  readonly metadata: readonly (readonly [string, string])[];
  /** Non-array leaves (Flax step counters, strings…), at most MAX_SUMMARY_VALUES of them. */
  readonly values: readonly (readonly [string, string])[];
  readonly valueCount: number;
  /** The files beside it that say what model it is (config.json facts, tokenizer, chat template, generation config). */
  readonly side?: SideFiles;
}

/** Non-array leaves sent in `init`; a state with more is summarised as a count. */
export const MAX_SUMMARY_VALUES = 200;

// #region host -> webview
/** A first page of rows, for the view the page said it shows. */
export interface RowsPage {
  readonly total: number;
  readonly tensors: number;
  readonly rows: readonly TensorRow[];
}
/**
 * What the page shows of the file: a checkpoint, or the error that stopped it from opening.
 * `validating`: the rows come from a sharded index alone while its shard headers are read and
 * validated; a `loaded` message follows. `error` with `listed`: the index listed its tensors, but a
 * shard failed validation.
 */
export type PageContent =
  | { readonly kind: 'checkpoint'; readonly summary: CheckpointSummaryView; readonly validating: boolean }
  | { readonly kind: 'error'; readonly message: string; readonly listed?: CheckpointSummaryView };
/**
 * Reply to `ready`: everything the page needs to draw its first screen, and no more: the summary
 * and the first page of rows of the view the page asked for (the rest is paged with `listRows`).
 */
export interface InitMessage {
  readonly type: 'init';
  readonly protocolVersion: number;
  readonly pageSize: number;
  /** Groups the tree view opens before the user opens any. */
  readonly expansion?: Expansion;
  /** The view a new tab starts in (the `jaxServe.viewer.view` setting). */
  readonly view: 'tree' | 'list';
  readonly content: PageContent;
  /** Rows [0, pageSize) of the page's view (the saved one, or `view` and `expansion` in a new tab). */
  readonly first?: RowsPage;
}
/**
 * Sent (not a reply) to a page told `validating`, once the shard headers are read: the checkpoint
 * with its full summary (the page fetches its rows again, now with their sizes), or the error a
 * shard gave (the page keeps the listed rows and shows the error; values cannot be read).
 */
export interface LoadedMessage {
  readonly type: 'loaded';
  readonly content: PageContent;
}
/** Reply to `listRows`. `total`: rows in the view; `tensors`: tensors matching the filter (the tree's groups are rows too). */
export interface RowsMessage extends RowsPage {
  readonly type: 'rows';
  readonly start: number;
}
/** The file changed on disk: drop cached rows and ask for `init` again. */
export interface ReloadMessage {
  readonly type: 'reload';
}
/** Reply to an event that needs no data. */
export interface AckMessage {
  readonly type: 'ack';
}
/**
 * Reply to `tensorStats`: the statistics (exact, over every element, computed off the host's main
 * thread) and a histogram over [min, max] (null when nothing is finite). When the histogram needs a second pass over the tensor (float dtypes), the statistics
 * come first with `histogramPending`, and a `histogram` message (or `jobError`) follows.
 */
export interface StatsMessage {
  readonly type: 'stats';
  readonly name: string;
  readonly stats: TensorStats;
  readonly histogram: Histogram | null;
  readonly histogramPending?: boolean;
}
/** The histogram a `stats` reply said was pending (sent, not a reply). */
export interface HistogramMessage {
  readonly type: 'histogram';
  readonly name: string;
  readonly histogram: Histogram | null;
}
/** Reply to `tensorSlice`: a row-major window of values (NaN and ±Inf as null: JSON has neither). */
export interface SliceMessage {
  readonly type: 'slice';
  readonly name: string;
  readonly rows: number;
  readonly cols: number;
  readonly values: readonly (number | null)[];
}
/** A job (or a pending histogram) failed or was cancelled (`cancelled`: by the page, not an error to show). */
export interface JobErrorMessage {
  readonly type: 'jobError';
  readonly name: string;
  readonly message: string;
  readonly cancelled: boolean;
}
/** Sent while a job runs (not a reply): how much of the tensor is done, 0..1. */
export interface ProgressMessage {
  readonly type: 'progress';
  readonly name: string;
  readonly fraction: number;
}
/**
 * Sent (not a reply) when the pytree explorer selects a tensor: open its groups, find its row and
 * select it; `stats` also computes its statistics.
 */
export interface RevealMessage {
  readonly type: 'reveal';
  readonly name: string;
  readonly ancestors: readonly string[];
  readonly stats: boolean;
}
/** Reply to `locate`: the row of the tensor in that view, or -1. */
export interface LocatedMessage {
  readonly type: 'located';
  readonly index: number;
}
export type HostToWebview = InitMessage | LoadedMessage | RowsMessage | ReloadMessage | AckMessage | StatsMessage | HistogramMessage | SliceMessage | JobErrorMessage | ProgressMessage | RevealMessage | LocatedMessage;
// #endregion

// #region webview -> host
/**
 * The page is loaded and asks for its initial state. It says what its table shows (its saved
 * view), so the reply can carry the first rows; a new tab leaves `tree` and `expansion` out and
 * takes the host's.
 */
export interface ReadyMessage {
  readonly type: 'ready';
  readonly filter: string;
  readonly sort?: RowsView['sort'];
  readonly tree?: boolean;
  readonly expansion?: Expansion;
}
/** Keys the host sorts rows by: every one of core's, listed at run time to check what the page sends. */
export const SORT_KEYS = ['name', 'dtype', 'rank', 'parameters', 'bytes'] as const satisfies readonly TensorSortKey[];

/** What the table shows: the tensors matching `filter`, flat or as a tree, in file order or sorted. */
export interface RowsView {
  /** A case-insensitive substring of the name, or `/regex/`. */
  readonly filter: string;
  readonly sort?: { readonly key: TensorSortKey; readonly descending: boolean };
  /** Present for the tree view. */
  readonly tree?: Expansion;
}
/** A page of rows of a view. */
export interface ListRowsMessage extends RowsView {
  readonly type: 'listRows';
  readonly start: number;
  readonly count: number;
}
/** Where a tensor's row is in a view (after `reveal`). */
export interface LocateMessage extends RowsView {
  readonly type: 'locate';
  readonly name: string;
}
/** The error panel's "Reopen with Text Editor". */
export interface ReopenAsTextMessage {
  readonly type: 'reopenAsText';
}
/** Statistics and a `bins`-bin histogram of one tensor; a new job replaces the running one. */
export interface TensorStatsMessage {
  readonly type: 'tensorStats';
  readonly name: string;
  readonly bins: number;
}
/** A 2-D window of a tensor: `rowAxis` × `colAxis` at `index` on the other axes. */
export interface TensorSliceMessage extends SliceRequest {
  readonly type: 'tensorSlice';
  readonly name: string;
}
/** Stops the running statistics or slice job. */
export interface CancelJobMessage {
  readonly type: 'cancelJob';
}
export type WebviewToHost = ReadyMessage | ListRowsMessage | LocateMessage | ReopenAsTextMessage | TensorStatsMessage | TensorSliceMessage | CancelJobMessage;

/** Bins of the histogram in the detail pane; a window of at most this many values per slice. */
export const DETAIL_BINS = 40;
export const MAX_SLICE_VALUES = 64 * 64;
// #endregion


/** The host checks every inbound message's shape before acting on it. */
export function isWebviewToHost(v: unknown): v is WebviewToHost {
  if (!isObj(v)) return false;
  switch (v.type) {
    case 'ready':
      return isFilter(v.filter) && isSort(v.sort) && (v.tree === undefined || typeof v.tree === 'boolean') && (v.expansion === undefined || isExpansion(v.expansion));
    case 'reopenAsText':
    case 'cancelJob':
      return true;
    case 'tensorStats':
      return typeof v.name === 'string' && isCount(v.bins) && v.bins >= 1 && v.bins <= 1000;
    case 'tensorSlice':
      return (
        typeof v.name === 'string' &&
        [v.rowAxis, v.colAxis, v.rowStart, v.rowCount, v.colStart, v.colCount].every(isCount) &&
        Array.isArray(v.index) &&
        v.index.length <= 64 &&
        v.index.every(isCount) &&
        (v.rowCount as number) * (v.colCount as number) <= MAX_SLICE_VALUES
      );
    case 'listRows':
      return isCount(v.start) && isCount(v.count) && isRowsView(v);
    case 'locate':
      return typeof v.name === 'string' && isRowsView(v);
    default:
      return false;
  }
}

function isRowsView(v: Record<string, unknown>): boolean {
  return isFilter(v.filter) && isSort(v.sort) && (v.tree === undefined || isExpansion(v.tree));
}

const isFilter = (v: unknown): boolean => typeof v === 'string' && v.length <= 1000;
const isSort = (v: unknown): boolean => v === undefined || (isObj(v) && (SORT_KEYS as readonly unknown[]).includes(v.key) && typeof v.descending === 'boolean');
const isExpansion = (v: unknown): boolean =>
  isObj(v) && (v.open === 'all' || v.open === 'listed') && Array.isArray(v.ids) && v.ids.length <= MAX_TREE_IDS && v.ids.every((id) => typeof id === 'string' && id.length <= 10_000);

export function isHostToWebview(v: unknown): v is HostToWebview {
  return isObj(v) && ['init', 'loaded', 'rows', 'reload', 'ack', 'stats', 'histogram', 'slice', 'jobError', 'progress', 'reveal', 'located'].includes(v.type as string);
}
