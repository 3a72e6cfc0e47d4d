/**
 * The Compare Checkpoints page: both locations, how tensors were paired, a chip per status (press
 * to show only those), and a virtual table of pairs paged from the host. "Compare values" runs on
 * the host's worker with progress and cancel; results fill the Values column as they come.
 * Everything from the files is set as text.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import { DIFF_STATUSES, isDiffHostToWebview, VALUES_DIFFER, type DiffHostToWebview, type DiffRow, type DiffWebviewToHost, type SideView, type ValuesProgress } from '../../src/shared/diffProtocol';
import type { DiffStatus } from '../../src/core/types';
import { custom, el, formatCount } from '../shared/dom';
import { connect, loadState, saveState } from '../shared/host';
import { t } from '../shared/l10n';
import { rowHeight, VirtualTable, type Column, type ColumnWidths } from '../shared/virtualTable';

const STATE_VERSION = 1;
interface ViewState {
  stateVersion: number;
  filter: string;
  statuses: string[];
  /** Column widths the user set, by title. */
  widths?: ColumnWidths;
}

const app = document.getElementById('app')!;
let state: ViewState = { stateVersion: STATE_VERSION, filter: '', statuses: [], ...loadState<ViewState>(STATE_VERSION) };
let table: VirtualTable<DiffRow> | undefined;
let onValues: (m: ValuesProgress) => void = () => undefined;

const rpc = connect<DiffWebviewToHost, DiffHostToWebview>((msg) => {
  if (msg.type === 'valuesProgress') onValues(msg);
  return undefined;
}, isDiffHostToWebview);

/** Each status in words, in the user's language (the keys and class names stay the English ids). */
const STATUS: Readonly<Record<DiffStatus, string>> = { removed: t('removed'), added: t('added'), reshaped: t('reshaped'), retyped: t('retyped'), same: t('same') };
const VALUES_DIFFER_TEXT = t('values differ');

const layout = (l: { dtype: string; shape: readonly number[] }) => `${l.dtype} [${l.shape.join(', ')}]`;
/** A side's layout; a converted JAX side also shows what the plan makes of it. */
function sideText(s: SideView | undefined): string {
  if (!s) return '—';
  const c = s.converted;
  return c && layout(c) !== layout(s) ? `${layout(s)} → ${layout(c)}` : layout(s);
}
const fmt = (v: number) => (v === 0 ? '0' : v.toPrecision(3));
const tolerance = (v: number) => (v !== 0 && v < 1e-3 ? v.toExponential(0) : String(v));

function valueText(r: DiffRow): string {
  const v = r.value;
  if (!v) return '';
  if ('error' in v) return t('not compared: {0}', v.error);
  if (v.allclose) return v.maxAbsDiff === 0 ? t('equal') : t('allclose, max |Δ| {0}', fmt(v.maxAbsDiff));
  return t('{0} of {1} differ, max |Δ| {2}', formatCount(v.mismatched), formatCount(v.elements), fmt(v.maxAbsDiff));
}

const columns: Column<DiffRow>[] = [
  { title: t('Status'), min: 5, max: 8, text: (r) => STATUS[r.status], decorate: (cell, r) => (cell.className = `vt-cell vt-start${r ? ` st-${r.status}` : ''}`) },
  {
    title: t('Name'),
    min: 12,
    flex: 1,
    text: (r) => r.name,
    // The full names on both sides and the plan's transforms, on hover (an attribute value, never markup).
    decorate: (cell, r) => {
      if (r) cell.title = [r.name, r.left && t('left: {0}', r.left.name), r.right && t('right: {0}', r.right.name), r.via].filter(Boolean).join('\n');
    },
  },
  { title: t('Left'), min: 6, max: 22, text: (r) => sideText(r.left), decorate: (cell, r) => r && (cell.title = r.left ? `${r.left.name}\n${sideText(r.left)}` : '') },
  { title: t('Right'), min: 6, max: 22, text: (r) => sideText(r.right), decorate: (cell, r) => r && (cell.title = r.right ? `${r.right.name}\n${sideText(r.right)}` : '') },
  {
    title: t('Values'),
    min: 6,
    max: 28,
    text: valueText,
    decorate: (cell, r) => {
      const v = r?.value;
      cell.classList.toggle('val-bad', v !== undefined && ('error' in v || !v.allclose));
      if (r?.value) cell.title = valueText(r);
    },
  },
];


function renderError(message: string): void {
  app.replaceChildren(el('div', { class: 'error-panel', role: 'alert' }, el('h2', {}, t('These checkpoints could not be compared')), el('p', { class: 'error-message' }, message)));
}

async function start(): Promise<void> {
  const init = await rpc.request({ type: 'ready' });
  if (init.type !== 'init') return;
  if (init.content.kind === 'error') {
    renderError(init.content.message);
    return;
  }
  const c = init.content;
  const status = el('span', { class: 'status', 'aria-live': 'polite' });
  const chips = el('div', { class: 'chips', role: 'group', 'aria-label': t('Show only') });
  const chip = (key: string, label: string) => {
    const b = el('button', { class: 'chip', type: 'button', 'aria-pressed': String(state.statuses.includes(key)), 'data-status': key }, label);
    b.addEventListener('click', () => {
      const on = !state.statuses.includes(key);
      state = { ...state, statuses: on ? [...state.statuses, key] : state.statuses.filter((s) => s !== key) };
      b.setAttribute('aria-pressed', String(on));
      saveState(state);
      void table!.reset();
    });
    return b;
  };
  for (const s of DIFF_STATUSES) chips.append(chip(s, `${STATUS[s]} ${formatCount(c.counts[s])}`));
  const differChip = chip(VALUES_DIFFER, VALUES_DIFFER_TEXT);
  differChip.hidden = true;
  chips.append(differChip);

  const filter = custom('vscode-textfield', { id: 'filter', placeholder: t('Filter by name, or /regex/'), 'aria-label': t('Filter pairs by name or /regular expression/') }) as HTMLElement & { value: string };
  filter.value = state.filter;
  let timer: ReturnType<typeof setTimeout> | undefined;
  filter.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      state = { ...state, filter: filter.value };
      saveState(state);
      void table!.reset();
    }, 120);
  });

  // Values: one button, a progress bar and Cancel while it runs, a line of what it found.
  const compare = custom('vscode-button', { id: 'compare-values' }, t('Compare values of {0} pairs', formatCount(c.comparable)));
  const progress = custom('vscode-progress-bar', { class: 'values-progress', value: '0', max: '100', hidden: '' }) as HTMLElement & { value: number };
  const cancel = custom('vscode-button', { id: 'cancel-values', secondary: '', hidden: '' }, t('Cancel'));
  const found = el('span', { class: 'values-status', role: 'status' });
  if (c.comparable === 0) compare.setAttribute('disabled', '');
  compare.addEventListener('click', () => {
    compare.hidden = true;
    progress.hidden = cancel.hidden = false;
    found.textContent = t('Comparing…');
    void rpc.request({ type: 'compareValues' });
  });
  cancel.addEventListener('click', () => void rpc.request({ type: 'cancelValues' }));
  let repaint: ReturnType<typeof setTimeout> | undefined;
  onValues = (m) => {
    progress.value = m.total === 0 ? 100 : Math.round((m.done / m.total) * 100);
    const tol = `rtol ${tolerance(c.rtol)}, atol ${tolerance(c.atol)}`;
    const verdict = m.differing === 0 ? t('all allclose') : t('{0} differ', formatCount(m.differing));
    const [done, total] = [formatCount(m.done), formatCount(m.total)];
    found.textContent = m.finished
      ? m.finished === 'cancelled'
        ? t('Stopped after {0} of {1} pairs: {2} ({3}).', done, total, verdict, tol)
        : t('Compared {0} of {1} pairs: {2} ({3}).', done, total, verdict, tol)
      : t('Compared {0} of {1}; {2} differ so far.', done, total, formatCount(m.differing));
    if (m.finished) {
      progress.hidden = cancel.hidden = true;
      compare.hidden = false;
      compare.textContent = t('Compare values again');
      differChip.hidden = false;
      differChip.textContent = `${VALUES_DIFFER_TEXT} ${formatCount(m.differing)}`;
    }
    // Rows show results as they arrive, a few times a second at most.
    if (!repaint || m.finished) {
      clearTimeout(repaint);
      repaint = setTimeout(() => {
        repaint = undefined;
        void table!.reset(table!.scrollTop, table!.selectedIndex);
      }, m.finished ? 0 : 250);
    }
  };

  table = new VirtualTable(
    columns,
    {
      fetch: async (start, count) => {
        const r = await rpc.request({ type: 'listRows', start, count, filter: state.filter, statuses: state.statuses });
        if (r.type !== 'rows') throw new Error(t('unexpected reply'));
        return r;
      },
    },
    init.pageSize,
    rowHeight(),
    t('Tensor pairs'),
  );
  table.keep(state.widths, (widths) => {
    state = { ...state, widths };
    saveState(state);
  }, status);
  table.onPainted = (first, count) => {
    status.textContent = t('{0} pairs shown · rows {1}–{2}', formatCount(table!.rowCount), formatCount(first + 1), formatCount(first + count));
    document.body.dataset.painted = String(Date.now());
  };
  const head = el(
    'section',
    { class: 'diff-head', 'aria-label': t('Compared checkpoints') },
    el('h1', {}, t('Left: {0}', c.left)),
    el('h1', {}, t('Right: {0}', c.right)),
    el('p', { class: 'pairing' }, c.pairing),
  );
  app.replaceChildren(head, chips, el('div', { class: 'toolbar' }, filter, status), el('div', { class: 'values-bar toolbar' }, compare, progress, cancel, found), table.element);
  await table.reset();
}

start().catch((e) => renderError(e instanceof Error ? e.message : String(e)));
