/**
 * Messages between the checkpoint editor's host side and its webview. Both sides import this file
 * and ship in one build, but `init` still carries the version so restored webview state from an
 * older build is recognised and dropped.
 */
export const PROTOCOL_VERSION = 1;
/** Version of what the webview persists with setState. */
export const STATE_VERSION = 1;
/** Rows one `listRows` may ask for; the host clamps to this. */
export const MAX_ROWS_PER_REQUEST = 2000;

export interface TensorRow {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly parameters: number;
  readonly bytes: number;
}

export interface CheckpointSummaryView {
  readonly location: string;
  readonly format: string;
  readonly files: number;
  readonly tensorCount: number;
  readonly parameterCount: number;
  readonly bytes: number;
  readonly parametersByDtype: readonly (readonly [string, number])[];
  readonly metadata: readonly (readonly [string, string])[];
  /** Non-array leaves (Flax step counters, strings…), at most MAX_SUMMARY_VALUES of them. */
  readonly values: readonly (readonly [string, string])[];
  readonly valueCount: number;
}

/** Non-array leaves sent in `init`; a state with more is summarised as a count. */
export const MAX_SUMMARY_VALUES = 200;

// #region host -> webview
/** Reply to `ready`: everything the page needs to draw, but never the rows themselves. */
export interface InitMessage {
  readonly type: 'init';
  readonly protocolVersion: number;
  readonly pageSize: number;
  /** Either a checkpoint or the error that stopped it from opening. */
  readonly content: { readonly kind: 'checkpoint'; readonly summary: CheckpointSummaryView } | { readonly kind: 'error'; readonly message: string };
}
/** Reply to `listRows`. `total` is the number of rows matching the filter. */
export interface RowsMessage {
  readonly type: 'rows';
  readonly start: number;
  readonly total: number;
  readonly rows: readonly TensorRow[];
}
/** The file changed on disk: drop cached rows and ask for `init` again. */
export interface ReloadMessage {
  readonly type: 'reload';
}
/** Reply to an event that needs no data. */
export interface AckMessage {
  readonly type: 'ack';
}
export type HostToWebview = InitMessage | RowsMessage | ReloadMessage | AckMessage;
// #endregion

// #region webview -> host
/** The page is loaded and asks for its initial state. */
export interface ReadyMessage {
  readonly type: 'ready';
}
/** A page of rows, in file order, matching `filter` (case-insensitive substring of the name). */
export interface ListRowsMessage {
  readonly type: 'listRows';
  readonly start: number;
  readonly count: number;
  readonly filter: string;
}
/** The error panel's "Reopen with Text Editor". */
export interface ReopenAsTextMessage {
  readonly type: 'reopenAsText';
}
export type WebviewToHost = ReadyMessage | ListRowsMessage | ReopenAsTextMessage;
// #endregion

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** The host checks every inbound message's shape before acting on it. */
export function isWebviewToHost(v: unknown): v is WebviewToHost {
  if (!isObj(v)) return false;
  switch (v.type) {
    case 'ready':
    case 'reopenAsText':
      return true;
    case 'listRows':
      return isCount(v.start) && isCount(v.count) && typeof v.filter === 'string' && v.filter.length <= 1000;
    default:
      return false;
  }
}

export function isHostToWebview(v: unknown): v is HostToWebview {
  return isObj(v) && (v.type === 'init' || v.type === 'rows' || v.type === 'reload' || v.type === 'ack');
}
