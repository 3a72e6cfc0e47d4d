/**
 * Messages between the conversion plan panel and its webview. The row and problem types are
 * core's (through the type-only entry); the rows are paged, so a plan of thousands of tensors costs
 * the page what a screenful does.
 */
import type { PlanRow, PlanView, Problem } from '../core/types';
import { isObj, isCount } from './guards';

/** Rows one `listRows` may ask for; the host clamps to this. */
export const MAX_PLAN_ROWS = 2000;

export interface PlanInit {
  readonly type: 'init';
  readonly pageSize: number;
  readonly facts: PlanView['facts'];
  readonly problems: readonly Problem[];
  readonly counts: PlanView['counts'];
  readonly config: string | undefined;
  /** Rows in the whole plan (a filter shows fewer). */
  readonly total: number;
}
export interface PlanRowsMessage {
  readonly type: 'rows';
  readonly start: number;
  readonly total: number;
  readonly rows: readonly PlanRow[];
}
/** The panel now shows another plan (Convert ran again for the same source): ask for it anew. */
export interface PlanReload {
  readonly type: 'reload';
}
export interface PlanAck {
  readonly type: 'ack';
}
export type PlanHostToWebview = PlanInit | PlanRowsMessage | PlanReload | PlanAck;

export interface PlanReady {
  readonly type: 'ready';
}
/** Rows whose source or target contains `filter` (or matches `/regex/`); only those with a problem when `problemsOnly`. */
export interface PlanListRows {
  readonly type: 'listRows';
  readonly start: number;
  readonly count: number;
  readonly filter: string;
  readonly problemsOnly: boolean;
}
/** Open the plan as a Markdown document beside the panel. */
export interface PlanOpenMarkdown {
  readonly type: 'openMarkdown';
}
/** Put the plan's Markdown on the clipboard. */
export interface PlanCopyMarkdown {
  readonly type: 'copyMarkdown';
}
export type PlanWebviewToHost = PlanReady | PlanListRows | PlanOpenMarkdown | PlanCopyMarkdown;


export function isPlanWebviewToHost(v: unknown): v is PlanWebviewToHost {
  if (!isObj(v)) return false;
  switch (v.type) {
    case 'ready':
    case 'openMarkdown':
    case 'copyMarkdown':
      return true;
    case 'listRows':
      return isCount(v.start) && isCount(v.count) && typeof v.filter === 'string' && v.filter.length <= 1000 && typeof v.problemsOnly === 'boolean';
    default:
      return false;
  }
}

export function isPlanHostToWebview(v: unknown): v is PlanHostToWebview {
  return isObj(v) && ['init', 'rows', 'reload', 'ack'].includes(v.type as string);
}
