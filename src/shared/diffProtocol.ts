/**
 * Messages between the Compare Checkpoints panel and its webview. Core's types (DiffStatus,
 * ValueDiff) come from core's type-only entry rather than being restated here.
 */
import type { DiffStatus, ValueDiff } from '../core/types';
import { isObj, isCount } from './guards';

/** Every status, in the order the panel's chips show them (listed at run time to check what the page sends). */
export const DIFF_STATUSES = ['removed', 'added', 'reshaped', 'retyped', 'same'] as const satisfies readonly DiffStatus[];
/** Rows one `listRows` may ask for; the host clamps to this. */
export const MAX_DIFF_ROWS = 2000;
/** The value filter: rows whose values were compared and differ. */
export const VALUES_DIFFER = 'values differ';

export interface SideView {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Plan pairs, the JAX side: its layout after the plan's transforms (what is compared). */
  readonly converted?: { readonly dtype: string; readonly shape: readonly number[] };
}

/** What a row shows of a pair's value comparison. */
export type ValueView = Pick<ValueDiff, 'elements' | 'maxAbsDiff' | 'maxRelDiff' | 'mismatched' | 'allclose'>;

export interface DiffRow {
  readonly status: DiffStatus;
  /** The export's name for plan pairs, else the tensor's. */
  readonly name: string;
  readonly left?: SideView;
  readonly right?: SideView;
  /** Plan pairs: which side is converted, and the transforms. */
  readonly via?: string;
  /** After "Compare values": the result, or why this pair was not compared. */
  readonly value?: ValueView | { readonly error: string };
}

export interface DiffInit {
  readonly type: 'init';
  readonly pageSize: number;
  readonly content:
    | {
        readonly kind: 'diff';
        readonly left: string;
        readonly right: string;
        /** How tensors were paired, in words. */
        readonly pairing: string;
        readonly counts: Readonly<Record<DiffStatus, number>>;
        /** Pairs whose values can be compared (same shape). */
        readonly comparable: number;
        readonly rtol: number;
        readonly atol: number;
      }
    | { readonly kind: 'error'; readonly message: string };
}
export interface DiffRowsMessage {
  readonly type: 'rows';
  readonly start: number;
  readonly total: number;
  readonly rows: readonly DiffRow[];
}
/** Sent while values are compared (not a reply): pairs done, and how many differ so far. */
export interface ValuesProgress {
  readonly type: 'valuesProgress';
  readonly done: number;
  readonly total: number;
  readonly differing: number;
  /** Set on the last one: finished, or stopped. */
  readonly finished?: 'done' | 'cancelled';
}
export interface DiffAck {
  readonly type: 'ack';
}
export type DiffHostToWebview = DiffInit | DiffRowsMessage | ValuesProgress | DiffAck;

export interface DiffReady {
  readonly type: 'ready';
}
/** Rows whose name contains `filter` (or matches `/regex/`), with one of `statuses` (all when empty). */
export interface DiffListRows {
  readonly type: 'listRows';
  readonly start: number;
  readonly count: number;
  readonly filter: string;
  readonly statuses: readonly string[];
}
/** Compare the values of every comparable pair (on the worker, with progress); replies at once. */
export interface CompareValuesMessage {
  readonly type: 'compareValues';
}
export interface CancelValuesMessage {
  readonly type: 'cancelValues';
}
export type DiffWebviewToHost = DiffReady | DiffListRows | CompareValuesMessage | CancelValuesMessage;


export function isDiffWebviewToHost(v: unknown): v is DiffWebviewToHost {
  if (!isObj(v)) return false;
  switch (v.type) {
    case 'ready':
    case 'compareValues':
    case 'cancelValues':
      return true;
    case 'listRows':
      return (
        isCount(v.start) &&
        isCount(v.count) &&
        typeof v.filter === 'string' &&
        v.filter.length <= 1000 &&
        Array.isArray(v.statuses) &&
        v.statuses.every((s) => s === VALUES_DIFFER || (DIFF_STATUSES as readonly unknown[]).includes(s))
      );
    default:
      return false;
  }
}

export function isDiffHostToWebview(v: unknown): v is DiffHostToWebview {
  return isObj(v) && ['init', 'rows', 'valuesProgress', 'ack'].includes(v.type as string);
}
