/**
 * The conversion plan page: the plan's facts, its problems (worst first, each saying its severity
 * in words), and a virtual table of every tensor paged from the host, the rows with problems
 * marked. "Open as Markdown" and "Copy Markdown" give the same plan as text. Everything from the
 * checkpoint is set as text.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import type { PlanRow, Problem, Severity } from '../../src/core/types';
import { isPlanHostToWebview, type PlanHostToWebview, type PlanWebviewToHost } from '../../src/shared/planProtocol';
import { custom, el, formatCount } from '../shared/dom';
import { connect, loadState, saveState } from '../shared/host';
import { t } from '../shared/l10n';
import { rowHeight, VirtualTable, type Column, type ColumnWidths } from '../shared/virtualTable';

const STATE_VERSION = 1;
interface ViewState {
  stateVersion: number;
  filter: string;
  problemsOnly: boolean;
  /** Column widths the user set, by title. */
  widths?: ColumnWidths;
}

const app = document.getElementById('app')!;
let state: ViewState = { stateVersion: STATE_VERSION, filter: '', problemsOnly: false, ...loadState<ViewState>(STATE_VERSION) };
let table: VirtualTable<PlanRow> | undefined;

const rpc = connect<PlanWebviewToHost, PlanHostToWebview>((msg) => {
  if (msg.type === 'reload') void start().catch(renderError);
  return undefined;
}, isPlanHostToWebview);

/** The severity in words, in the user's language (the class names keep the English id). */
const SEVERITY: Readonly<Record<Severity, string>> = { error: t('error'), warning: t('warning'), info: t('info') };
const problemText = (p: Problem) => t('{0}: {1}', SEVERITY[p.severity], p.message);

const columns: Column<PlanRow>[] = [
  {
    title: t('Source'),
    min: 10,
    flex: 1,
    text: (r) => r.from || '—',
    // The row says its worst problem by class (colour from the theme); the Problem column says it in words.
    decorate: (cell, r) => {
      const row = cell.parentElement!;
      for (const s of ['error', 'warning', 'info']) row.classList.toggle(`sev-${s}`, r?.severity === s);
      if (r) cell.title = r.from || t('no source tensor provides this target');
    },
  },
  { title: t('Target'), min: 10, flex: 1, text: (r) => r.to || '—', decorate: (cell, r) => r && (cell.title = r.to || t('no rule maps this source')) },
  { title: t('Transforms'), min: 5, max: 20, text: (r) => r.transforms || '—', decorate: (cell, r) => r && (cell.title = r.transforms) },
  { title: t('Shape'), min: 5, max: 12, text: (r) => r.shape || '—' },
  { title: t('DType'), min: 5, max: 6, text: (r) => r.dtype || '—' },
  {
    title: t('Problem'),
    min: 6,
    max: 36,
    text: (r) => (r.problems.length === 0 ? '' : r.problems.length > 1 ? t('{0} (+{1} more)', problemText(r.problems[0]!), r.problems.length - 1) : problemText(r.problems[0]!)),
    decorate: (cell, r) => {
      cell.className = `vt-cell vt-start${r?.severity ? ` problem-cell sev-${r.severity}` : ''}`;
      if (r) cell.title = r.problems.map(problemText).join('\n');
    },
  },
];


function renderError(e: unknown): void {
  app.replaceChildren(el('div', { class: 'error-panel', role: 'alert' }, el('h2', {}, t('The plan could not be shown')), el('p', { class: 'error-message' }, e instanceof Error ? e.message : String(e))));
}

function renderProblems(problems: readonly Problem[], counts: Readonly<Record<string, number>>, show: (tensor: string) => void): HTMLElement {
  const parts = [
    !counts.error ? '' : counts.error === 1 ? t('1 error') : t('{0} errors', formatCount(counts.error)),
    !counts.warning ? '' : counts.warning === 1 ? t('1 warning') : t('{0} warnings', formatCount(counts.warning)),
    !counts.info ? '' : counts.info === 1 ? t('1 note') : t('{0} notes', formatCount(counts.info)),
  ].filter(Boolean);
  const list = el('ul', { class: 'problems' });
  for (const p of problems) {
    const li = el('li', { class: `problem sev-${p.severity}` }, el('span', { class: 'sev' }, SEVERITY[p.severity]), ' ', el('code', {}, p.code), ' ', p.message);
    if (p.tensor) {
      const tensor = p.tensor;
      const b = el('button', { class: 'link', type: 'button', title: t('Show the row of {0}', tensor) }, t('show row'));
      b.addEventListener('click', () => show(tensor));
      li.append(' ', b);
    }
    list.append(li);
  }
  return el('section', { class: 'problems-section', 'aria-label': t('Problems') }, el('h2', {}, t('Problems: {0}', parts.join(', '))), list);
}

async function start(): Promise<void> {
  const init = await rpc.request({ type: 'ready' });
  if (init.type !== 'init') return;
  const facts = el('dl', { class: 'facts' });
  for (const [k, v] of init.facts) facts.append(el('dt', {}, k), el('dd', {}, v));
  const status = el('span', { class: 'status', 'aria-live': 'polite' });

  const filter = custom('vscode-textfield', { id: 'filter', placeholder: t('Filter by name, or /regex/'), 'aria-label': t('Filter rows by source or target name, or /regular expression/') }) as HTMLElement & { value: string };
  filter.value = state.filter;
  const refilter = (to: Partial<ViewState>) => {
    state = { ...state, ...to };
    saveState(state);
    void table!.reset();
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  filter.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => refilter({ filter: filter.value }), 120);
  });
  const problemRows = init.problems.filter((p) => p.tensor).length;
  const only = el('button', { class: 'chip', id: 'problems-only', type: 'button', 'aria-pressed': String(state.problemsOnly) }, t('Only rows with problems'));
  if (problemRows === 0) only.setAttribute('disabled', '');
  only.addEventListener('click', () => {
    only.setAttribute('aria-pressed', String(!state.problemsOnly));
    refilter({ problemsOnly: !state.problemsOnly });
  });
  const openMd = custom('vscode-button', { id: 'open-markdown', secondary: '', title: t('Open the plan as a Markdown document beside this one') }, t('Open as Markdown'));
  openMd.addEventListener('click', () => void rpc.request({ type: 'openMarkdown' }));
  const copyMd = custom('vscode-button', { id: 'copy-markdown', secondary: '', title: t('Copy the plan as Markdown') }, t('Copy Markdown'));
  copyMd.addEventListener('click', () => void rpc.request({ type: 'copyMarkdown' }));

  table = new VirtualTable(
    // A plan whose rows are all clean gives the names the Problem column's room.
    problemRows === 0 ? columns.slice(0, -1) : columns,
    {
      fetch: async (start, count) => {
        const r = await rpc.request({ type: 'listRows', start, count, filter: state.filter, problemsOnly: state.problemsOnly });
        if (r.type !== 'rows') throw new Error(t('unexpected reply'));
        return r;
      },
    },
    init.pageSize,
    rowHeight(),
    t('Planned tensors'),
  );
  table.keep(state.widths, (widths) => {
    state = { ...state, widths };
    saveState(state);
  }, status);
  table.onPainted = (first, count) => {
    const of = init.total === 1 ? t('{0} of 1 row', formatCount(table!.rowCount)) : t('{0} of {1} rows', formatCount(table!.rowCount), formatCount(init.total));
    status.textContent = t('{0} · rows {1}–{2}', of, formatCount(first + 1), formatCount(first + count));
    document.body.dataset.painted = String(Date.now());
  };
  const show = (tensor: string) => {
    filter.value = tensor;
    refilter({ filter: tensor, problemsOnly: false });
    only.setAttribute('aria-pressed', 'false');
  };
  const head = el('section', { class: 'plan-head', 'aria-label': t('Plan') }, el('h1', {}, t('Conversion plan')), facts);
  const parts: HTMLElement[] = [head];
  if (init.problems.length) parts.push(renderProblems(init.problems, init.counts, show));
  else parts.push(el('p', { class: 'no-problems' }, t('No problems: every tensor is mapped and every target is provided.')));
  parts.push(el('div', { class: 'toolbar' }, filter, only, openMd, copyMd, status), table.element);
  if (init.config) parts.push(el('details', { class: 'config' }, el('summary', {}, t('{0} to write', 'config.json')), el('pre', {}, init.config)));
  app.replaceChildren(...parts);
  await table.reset();
}

start().catch(renderError);
