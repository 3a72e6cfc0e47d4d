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
  type LoadedMessage,
  type PageContent,
  type RevealMessage,
  type RowsPage,
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
/**
 * Rows listed from a sharded index before its shards are validated: 'validating' until the host
 * says how that ended, 'failed' when a shard did not validate (the rows stay, their sizes never come).
 */
let validation: 'validating' | 'failed' | undefined;
/** The parts of the page a `loaded` message changes; undefined until start() has drawn them. */
let page: { summary: HTMLElement; toolbar: HTMLElement } | undefined;
/** A `loaded` that came while start() was still drawing (the host may send it before its init reply arrives). */
let early: LoadedMessage | undefined;
const rpc = connect<WebviewToHost, HostToWebview>((msg) => {
  if (msg.type === 'reload') void start();
  if (msg.type === 'loaded') {
    if (page) void loaded(msg);
    else early = msg;
  }
  if (msg.type === 'progress') detail?.progress(msg.name, msg.fraction);
  if (msg.type === 'reveal') void reveal(msg);
  if (msg.type === 'histogram' || msg.type === 'jobError') detail?.histogram(msg);
  return undefined;
}, isHostToWebview);

/** What the table shows now, as the host pages it. */
const view = (): RowsView => ({ filter: state.filter, sort: state.sort, tree: state.tree ? state.expansion : undefined });

const tensorCount = (n: number) => (n === 1 ? t('{0} tensor', formatCount(n)) : t('{0} tensors', formatCount(n)));
/** A fact the headers give, while they are read (or after they failed). */
const unknown = () => (validation === 'failed' ? '—' : '…');

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
  { title: t('DType'), min: 4, max: 8, text: (r) => (r.pending ? unknown() : r.dtype), sortKey: 'dtype' },
  { title: t('Shape'), min: 5, max: 14, text: (r) => (r.group ? tensorCount(r.group.tensors) : r.pending ? unknown() : `[${r.shape.join(', ')}]`), sortKey: 'rank' },
  { title: t('Parameters'), min: 6, max: 10, align: 'end', text: (r) => (r.pending ? unknown() : formatCount(r.parameters)), sortKey: 'parameters' },
  { title: t('Bytes'), min: 5, max: 8, align: 'end', text: (r) => (r.pending ? unknown() : formatBytes(r.bytes)), sortKey: 'bytes' },
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

/** Says that a shard of the index failed validation; the rows listed from the index stay below it. */
function renderInvalid(message: string): HTMLElement {
  return el('div', { class: 'invalid-banner', role: 'alert' }, el('strong', {}, t('A shard failed validation: the tensors below are listed from the index, and no values can be read.')), el('p', { class: 'error-message' }, message));
}

function renderSummary(s: CheckpointSummaryView): HTMLElement {
  const facts: [string, string][] = [
    [t('Format'), s.files > 1 ? t('{0} ({1} files)', s.format, s.files) : s.format],
    [t('Tensors'), formatCount(s.tensorCount)],
    [t('Parameters'), s.parameterCount === null ? unknown() : formatCount(s.parameterCount)],
    [t('Size'), s.bytes === null ? unknown() : formatBytes(s.bytes)],
  ];
  const dl = el('dl', { class: 'facts' });
  for (const [k, v] of facts) dl.append(el('dt', {}, k), el('dd', {}, v));
  const dtypes = el('div', { class: 'dtypes' }, ...s.parametersByDtype.map(([d, n]) => custom('vscode-badge', { variant: 'counter', title: t('{0} parameters', formatCount(n)) }, `${d} ${formatCount(n)}`)));
  dl.append(el('dt', {}, t('By dtype')), el('dd', {}, validation === undefined ? dtypes : unknown()));
  const section = el('section', { class: 'summary', 'aria-label': t('Summary') }, el('h1', { class: 'location' }, s.location), dl);
  if (validation === 'validating') section.append(el('p', { class: 'validating', role: 'status' }, t('Listed from the index; reading the headers of its {0} shards…', formatCount(s.files))));
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

/** What the page's summary shows for `content` and how its rows' sizes stand, or the error that leaves no rows to show. */
function shown(content: PageContent): { summary: CheckpointSummaryView; validation: typeof validation } | { error: string } {
  if (content.kind === 'checkpoint') return { summary: content.summary, validation: content.validating ? 'validating' : undefined };
  return content.listed ? { summary: content.listed, validation: 'failed' } : { error: content.message };
}

async function start(): Promise<void> {
  page = undefined;
  early = undefined;
  // The saved view goes with `ready`, so the reply brings the first rows of it.
  const init = await rpc.request({ type: 'ready', filter: state.filter, sort: state.sort, tree: state.tree, expansion: state.expansion });
  if (init.type !== 'init') return;
  if (init.protocolVersion !== PROTOCOL_VERSION) {
    renderError(t('This view (protocol {0}) does not match the extension (protocol {1}). Reload the window.', PROTOCOL_VERSION, init.protocolVersion));
    return;
  }
  const content = shown(init.content);
  if ('error' in content) {
    renderError(content.error);
    return;
  }
  validation = content.validation;
  state.tree ??= init.view === 'tree';
  let matching = content.summary.tensorCount;
  state.expansion ??= init.expansion ?? { open: 'listed', ids: [] };
  // The first page came with init; it stands for the view it was made for, once.
  let first: { key: string; rows: RowsPage } | undefined = init.first && { key: JSON.stringify(view()), rows: init.first };
  const status = el('span', { class: 'status', 'aria-live': 'polite' });
  const filter = custom('vscode-textfield', { id: 'filter', placeholder: t('Filter by name, or /regex/'), 'aria-label': t('Filter tensors by name or /regular expression/') }) as HTMLElement & { value: string };
  filter.value = state.filter;
  filterField = filter;
  const source = {
    fetch: async (start: number, count: number) => {
      const primed = first;
      first = undefined;
      if (primed && start === 0 && count === init.pageSize && primed.key === JSON.stringify(view())) {
        matching = primed.rows.tensors;
        return primed.rows;
      }
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
    // When the first rows reached the screen, on this machine's clock (benchmarks read it): a frame
    // starts after the one before it was painted.
    if (document.body.dataset.firstPaint === undefined) {
      document.body.dataset.firstPaint = '';
      requestAnimationFrame(() => (document.body.dataset.firstPaint = String(Date.now())));
    }
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
  const summary = renderSummary(content.summary);
  const toolbar = el('div', { class: 'toolbar' }, filter, viewToggle, expandAll, collapseAll, status);
  app.replaceChildren(summary, ...(init.content.kind === 'error' ? [renderInvalid(init.content.message)] : []), toolbar, table.element, detail.element);
  await table.reset(state.scrollTop, state.selected);
  page = { summary, toolbar };
  const pending = early;
  early = undefined;
  if (pending && validation === 'validating') await loaded(pending);
}

/** The shards were validated (the rows are fetched again, with their sizes), or one failed (said above the rows). */
async function loaded(m: LoadedMessage): Promise<void> {
  if (!page || !table || validation !== 'validating') return;
  const content = shown(m.content);
  if ('error' in content) {
    renderError(content.error);
    return;
  }
  validation = content.validation;
  const summary = renderSummary(content.summary);
  page.summary.replaceWith(summary);
  page.summary = summary;
  if (m.content.kind === 'error') page.toolbar.before(renderInvalid(m.content.message));
  const selected = table.selectedIndex;
  await table.reset(table.scrollTop, selected);
  // The detail pane shows the selected row as it is now (its shape, once validated).
  if (selected >= 0) await table.reveal(selected);
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
