/**
 * The checkpoint editor page: a summary of the checkpoint and a virtual table of its tensors, paged
 * from the host. Everything from the file is set as text (see ../shared/dom.ts).
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import {
  isHostToWebview,
  PROTOCOL_VERSION,
  SORT_KEYS,
  STATE_VERSION,
  type CheckpointSummaryView,
  type HostToWebview,
  type ListRowsMessage,
  type RevealMessage,
  type RowsView,
  type TensorRow,
  type WebviewToHost,
} from '../../src/shared/checkpointProtocol';
import type { Expansion, SideFiles } from '../../src/core/types';
import { custom, el, formatBytes, formatCount } from '../shared/dom';
import { connect, loadState, saveState } from '../shared/host';
import { t } from '../shared/l10n';
import { rowHeight, VirtualTable, type Column, type ColumnWidths } from '../shared/virtualTable';
import { TensorDetail } from './detail';

interface ViewState {
  stateVersion: number;
  filter: string;
  sort?: ListRowsMessage['sort'];
  scrollTop: number;
  selected: number;
  /** Column widths the user set, by title. */
  widths?: ColumnWidths;
  /** Tree view or list; undefined until the first init says which a new tab starts in. */
  tree?: boolean;
  /** The tree view's open groups; undefined until the host proposes the first ones. */
  expansion?: Expansion;
}

const app = document.getElementById('app')!;
let state: ViewState = { stateVersion: STATE_VERSION, filter: '', scrollTop: 0, selected: -1, ...loadState<ViewState>(STATE_VERSION) };
let table: VirtualTable<TensorRow> | undefined;
let filterField: (HTMLElement & { value: string }) | undefined;

let detail: TensorDetail | undefined;
const rpc = connect<WebviewToHost, HostToWebview>((msg) => {
  if (msg.type === 'reload') void start();
  if (msg.type === 'progress') detail?.progress(msg.name, msg.fraction);
  if (msg.type === 'reveal') void reveal(msg);
  if (msg.type === 'histogram' || msg.type === 'jobError') detail?.histogram(msg);
  return undefined;
}, isHostToWebview);

/** What the table shows now, as the host pages it. */
const view = (): RowsView => ({ filter: state.filter, sort: state.sort, tree: state.tree ? state.expansion : undefined });

const tensorCount = (n: number) => (n === 1 ? t('{0} tensor', formatCount(n)) : t('{0} tensors', formatCount(n)));

const columns: Column<TensorRow>[] = [
  {
    title: t('Name'),
    min: 10,
    flex: 1,
    text: (r) => (state.tree ? (r.label ?? r.name) : r.name),
    sortKey: 'name',
    // The tree: indent by depth, a twistie on groups; the full name stays on hover.
    decorate: (cell, r) => {
      const tree = state.tree && r !== undefined;
      cell.classList.toggle('tree-cell', tree);
      cell.style.setProperty('--depth', String(r?.depth ?? 0));
      cell.dataset.twistie = tree ? (r.group ? (r.group.expanded ? '▾' : '▸') : '') : '';
      if (r) cell.title = r.name;
      const rowEl = cell.parentElement!;
      if (tree) rowEl.setAttribute('aria-level', String((r.depth ?? 0) + 1));
      else rowEl.removeAttribute('aria-level');
      if (r?.group && state.tree) rowEl.setAttribute('aria-expanded', String(r.group.expanded));
      else rowEl.removeAttribute('aria-expanded');
    },
  },
  { title: t('DType'), min: 4, max: 8, text: (r) => r.dtype, sortKey: 'dtype' },
  { title: t('Shape'), min: 5, max: 14, text: (r) => (r.group ? tensorCount(r.group.tensors) : `[${r.shape.join(', ')}]`), sortKey: 'rank' },
  { title: t('Parameters'), min: 6, max: 10, align: 'end', text: (r) => formatCount(r.parameters), sortKey: 'parameters' },
  { title: t('Bytes'), min: 5, max: 8, align: 'end', text: (r) => formatBytes(r.bytes), sortKey: 'bytes' },
];


function persist(): void {
  if (table) state = { ...state, scrollTop: table.scrollTop, selected: table.selectedIndex };
  saveState(state);
}

function renderError(message: string): void {
  const button = custom('vscode-button', { id: 'reopen' }, t('Reopen with Text Editor'));
  button.addEventListener('click', () => void rpc.request({ type: 'reopenAsText' }));
  app.replaceChildren(
    el('div', { class: 'error-panel', role: 'alert' },
      el('h2', {}, t('This file could not be opened as a checkpoint')),
      el('p', { class: 'error-message' }, message),
      button,
    ),
  );
}

function renderSummary(s: CheckpointSummaryView): HTMLElement {
  const facts: [string, string][] = [
    [t('Format'), s.files > 1 ? t('{0} ({1} files)', s.format, s.files) : s.format],
    [t('Tensors'), formatCount(s.tensorCount)],
    [t('Parameters'), formatCount(s.parameterCount)],
    [t('Size'), formatBytes(s.bytes)],
  ];
  const dl = el('dl', { class: 'facts' });
  for (const [k, v] of facts) dl.append(el('dt', {}, k), el('dd', {}, v));
  const dtypes = el('div', { class: 'dtypes' }, ...s.parametersByDtype.map(([d, n]) => custom('vscode-badge', { variant: 'counter', title: t('{0} parameters', formatCount(n)) }, `${d} ${formatCount(n)}`)));
  dl.append(el('dt', {}, t('By dtype')), el('dd', {}, dtypes));
  const section = el('section', { class: 'summary', 'aria-label': t('Summary') }, el('h1', { class: 'location' }, s.location), dl);
  if (s.metadata.length > 0) {
    const md = el('dl', { class: 'metadata' });
    for (const [k, v] of s.metadata) md.append(el('dt', {}, k), el('dd', {}, v));
    section.append(el('details', { open: '' }, el('summary', {}, t('Metadata ({0})', s.metadata.length)), md));
  }
  if (s.side) section.append(renderSide(s.side));
  if (s.valueCount > 0) {
    const vl = el('dl', { class: 'metadata values' });
    for (const [k, v] of s.values) vl.append(el('dt', {}, k), el('dd', {}, v));
    const heading = s.valueCount > s.values.length ? t('Values ({0} — first {1})', formatCount(s.valueCount), s.values.length) : t('Values ({0})', formatCount(s.valueCount));
    section.append(el('details', { open: '' }, el('summary', {}, heading), vl));
  }
  return section;
}

/** config.json facts, tokenizer files, chat template and generation config beside the weights. */
function renderSide(side: SideFiles): HTMLElement {
  const dl = el('dl', { class: 'metadata model' });
  const facts = (label: string, f: SideFiles['config']) => {
    if (f === undefined) return;
    if ('error' in f) dl.append(el('dt', {}, label), el('dd', { class: 'bad' }, f.error));
    else for (const [k, v] of f) dl.append(el('dt', {}, k), el('dd', {}, v));
  };
  facts('config.json', side.config);
  dl.append(el('dt', {}, t('Tokenizer')), el('dd', {}, side.tokenizer.length ? side.tokenizer.join(', ') : t('none')));
  dl.append(el('dt', {}, t('Chat template')), el('dd', {}, side.chatTemplate ? t('yes') : t('no')));
  facts('generation_config.json', side.generation);
  const found = (side.config ? 1 : 0) + side.tokenizer.length + (side.generation ? 1 : 0);
  return el('details', found > 0 ? { open: '' } : {}, el('summary', {}, found > 0 ? t('Model files') : t('Model files (none beside the weights)')), dl);
}

async function start(): Promise<void> {
  const init = await rpc.request({ type: 'ready' });
  if (init.type !== 'init') return;
  if (init.protocolVersion !== PROTOCOL_VERSION) {
    renderError(t('This view (protocol {0}) does not match the extension (protocol {1}). Reload the window.', PROTOCOL_VERSION, init.protocolVersion));
    return;
  }
  if (init.content.kind === 'error') {
    renderError(init.content.message);
    return;
  }
  state.tree ??= init.view === 'tree';
  let matching = init.content.summary.tensorCount;
  state.expansion ??= init.expansion ?? { open: 'listed', ids: [] };
  const status = el('span', { class: 'status', 'aria-live': 'polite' });
  const filter = custom('vscode-textfield', { id: 'filter', placeholder: t('Filter by name, or /regex/'), 'aria-label': t('Filter tensors by name or /regular expression/') }) as HTMLElement & { value: string };
  filter.value = state.filter;
  filterField = filter;
  const source = {
    fetch: async (start: number, count: number) => {
      const r = await rpc.request({ type: 'listRows', start, count, ...view() });
      if (r.type !== 'rows') throw new Error(t('unexpected reply'));
      matching = r.tensors;
      return r;
    },
  };
  table = new VirtualTable(columns, source, init.pageSize, rowHeight(), t('Tensors'));
  table.keep(state.widths, (widths) => {
    state = { ...state, widths };
    persist();
  }, status);
  detail = new TensorDetail(rpc);
  table.setSort(state.sort);
  table.onSort = (sort) => {
    // The table's keys are the columns' sortKey strings; the host takes only its own.
    const key = sort && SORT_KEYS.find((k) => k === sort.key);
    state = { ...state, sort: sort && key ? { key, descending: sort.descending } : undefined, scrollTop: 0, selected: -1 };
    persist();
    void table!.reset();
  };
  table.onSelect = (_index, row) => {
    persist();
    detail!.show(row);
  };
  table.onClick = (_index, row) => {
    if (row?.group) toggle(row);
  };
  table.onRowKey = (e, index, row) => treeKey(e, index, row);
  table.onPainted = (first, count) => {
    const tensors = state.filter ? t('{0} tensors match', formatCount(matching)) : t('{0} tensors', formatCount(matching));
    const parts = [tensors, ...(state.tree ? [t('{0} rows in the tree', formatCount(table!.rowCount))] : []), t('rows {0}–{1}', formatCount(first + 1), formatCount(first + count))];
    status.textContent = parts.join(' · ');
    document.body.dataset.painted = String(Date.now());
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  filter.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      state = { ...state, filter: filter.value, scrollTop: 0, selected: -1 };
      persist();
      void table!.reset();
    }, 120);
  });
  let scrollTimer: ReturnType<typeof setTimeout> | undefined;
  table.element.addEventListener('scroll', () => {
    clearTimeout(scrollTimer);
    scrollTimer = setTimeout(persist, 250);
  }, { capture: true, passive: true });
  const viewToggle = custom('vscode-button', { id: 'view-toggle', secondary: '' });
  const expandAll = custom('vscode-button', { id: 'expand-all', secondary: '' }, t('Expand all'));
  const collapseAll = custom('vscode-button', { id: 'collapse-all', secondary: '' }, t('Collapse all'));
  const showView = () => {
    viewToggle.textContent = state.tree ? t('Show as list') : t('Show as tree');
    expandAll.hidden = collapseAll.hidden = !state.tree;
  };
  showView();
  const relist = () => {
    state = { ...state, scrollTop: 0, selected: -1 };
    persist();
    showView();
    detail!.show(undefined);
    void table!.reset();
  };
  viewToggle.addEventListener('click', () => ((state = { ...state, tree: !state.tree }), relist()));
  expandAll.addEventListener('click', () => ((state = { ...state, expansion: { open: 'all', ids: [] } }), relist()));
  collapseAll.addEventListener('click', () => ((state = { ...state, expansion: { open: 'listed', ids: [] } }), relist()));
  app.replaceChildren(renderSummary(init.content.summary), el('div', { class: 'toolbar' }, filter, viewToggle, expandAll, collapseAll, status), table.element, detail.element);
  await table.reset(state.scrollTop, state.selected);
}

/** Opens or closes a group of the tree view (a filter shows every group open, so then it does nothing). */
function toggle(row: TensorRow, open = !row.group?.expanded): void {
  if (!row.group || !state.tree || state.filter.trim() !== '' || open === row.group.expanded) return;
  const e = state.expansion!;
  const ids = new Set(e.ids);
  // Under 'all' the ids are the closed groups; under 'listed', the open ones.
  if ((e.open === 'all') === open) ids.delete(row.group.id);
  else ids.add(row.group.id);
  state = { ...state, expansion: { open: e.open, ids: [...ids] } };
  persist();
  void table!.reset(table!.scrollTop, table!.selectedIndex);
}

/** Tree keys, as in VS Code's trees: Enter/Space toggle, → opens or steps in, ← closes or steps out. */
function treeKey(e: KeyboardEvent, index: number, row: TensorRow | undefined): boolean {
  if (!state.tree || !row) return false;
  if ((e.key === 'Enter' || e.key === ' ') && row.group) {
    toggle(row);
    return true;
  }
  if (e.key === 'ArrowRight' && row.group) {
    if (!row.group.expanded) toggle(row, true);
    else table!.select(index + 1);
    return true;
  }
  if (e.key === 'ArrowLeft') {
    if (row.group?.expanded && state.filter.trim() === '') {
      toggle(row, false);
      return true;
    }
    const depth = row.depth ?? 0;
    for (let i = index - 1; i >= 0; i--) {
      const up = table!.peek(i);
      if (up === undefined) break;
      if ((up.depth ?? 0) < depth) {
        table!.select(i);
        break;
      }
    }
    return true;
  }
  return false;
}

/** The pytree explorer chose a tensor: open its groups, clear a filter that hides it, select it. */
async function reveal(m: RevealMessage): Promise<void> {
  if (!table) return;
  if (state.tree) {
    const e = state.expansion!;
    const ids = new Set(e.ids);
    for (const id of m.ancestors) {
      if (e.open === 'all') ids.delete(id);
      else ids.add(id);
    }
    state = { ...state, expansion: { open: e.open, ids: [...ids] } };
  }
  const locate = async () => {
    const r = await rpc.request({ type: 'locate', name: m.name, ...view() });
    return r.type === 'located' ? r.index : -1;
  };
  let index = await locate();
  if (index < 0 && state.filter !== '') {
    state = { ...state, filter: '' };
    if (filterField) filterField.value = '';
    index = await locate();
  }
  persist();
  await table.reset(table.scrollTop, -1);
  if (index < 0) return;
  await table.reveal(index);
  if (m.stats) await detail?.stats();
}

start().catch((e) => renderError(e instanceof Error ? e.message : String(e)));
