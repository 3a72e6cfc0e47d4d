/**
 * A table that draws only the rows in view and pages them from the host on demand, so 100,000 rows
 * cost what 40 do. Pages are cached (LRU) and tagged with a generation: `reset()` (new filter,
 * file reloaded) bumps it, and pages arriving for an older generation are dropped.
 *
 * Widths: each row is its own grid, so tracks cannot size to content by themselves. After a paint
 * the rows in view are measured at their natural width; columns get what their content needs
 * within their bounds, the flexible ones (names) take the slack, and when the row is too narrow the
 * other columns give way first, so a name is cut only when nothing else can shrink. A column the
 * user resized (dragging the border at a header's end, or focusing it and pressing ←/→) keeps that
 * width; double-click or Home gives it back to the fit.
 *
 * Height: rows sit in a spacer of total × rowHeight pixels. Chromium caps an element near 33.5M px,
 * so past MAX_SCROLL_PX the spacer is capped and scroll position maps proportionally to rows.
 */
import { el } from './dom';
import { t } from './l10n';

export interface Column<R> {
  readonly title: string;
  /** The narrowest the fit makes it, in em. */
  readonly min: number;
  /** The widest its content makes it, in em (none: as wide as its longest text). */
  readonly max?: number;
  /** Its share of the row's slack (names have one); without it the column is as wide as its content. */
  readonly flex?: number;
  readonly align?: 'start' | 'end';
  readonly text: (row: R) => string;
  /** The key the host sorts by when the header is clicked; no key, no sorting. */
  readonly sortKey?: string;
  /** Dresses the cell after its text is set (indent, twistie); called for placeholders with undefined. */
  readonly decorate?: (cell: HTMLElement, row: R | undefined) => void;
}

export interface SortState {
  readonly key: string;
  readonly descending: boolean;
}

export interface PageSource<R> {
  /** Rows [start, start + count) and the current total. */
  fetch(start: number, count: number): Promise<{ total: number; rows: readonly R[] }>;
}

const MAX_SCROLL_PX = 15_000_000;
const MAX_CACHED_PAGES = 64;
/** A resized column's narrowest, and one arrow key's step (Shift: four), in px. */
const MIN_RESIZED_PX = 24;
const RESIZE_STEP_PX = 16;
/** Keys whose default on a focused resize border would scroll the table under it. */
const SCROLL_KEYS: ReadonlySet<string> = new Set(['ArrowUp', 'ArrowDown', 'PageUp', 'PageDown', 'End', ' ', 'Enter']);

/** Column widths the user set, by column title (what a page keeps in its state). */
export type ColumnWidths = Readonly<Record<string, number>>;

export class VirtualTable<R> {
  readonly element: HTMLElement;
  private readonly viewport: HTMLElement;
  private readonly spacer: HTMLElement;
  private readonly body: HTMLElement;
  private readonly rowEls: HTMLElement[] = [];
  private readonly cache = new Map<number, readonly R[]>();
  private readonly inflight = new Set<number>();
  private generation = 0;
  private total = 0;
  private selected = -1;
  private rafPending = false;
  private resetting = false;
  /** Fired after rows are painted with real data (not placeholders); tests and benchmarks listen. */
  onPainted: (first: number, count: number) => void = () => undefined;
  onSelect: (index: number, row: R | undefined) => void = () => undefined;
  onError: (e: unknown) => void = () => undefined;
  /** A row was clicked (after it is selected). */
  onClick: (index: number, row: R | undefined) => void = () => undefined;
  /** Keys the table does not move on (Enter, ←, →…); return true when handled. */
  onRowKey: (e: KeyboardEvent, index: number, row: R | undefined) => boolean = () => false;
  /** A sortable header was clicked (or activated with Enter/Space): the page re-fetches in that order. */
  onSort: (sort: SortState | undefined) => void = () => undefined;
  /** A column was resized by the user (or given back to the fit): the page may keep the widths. */
  onResize: (widths: ColumnWidths) => void = () => undefined;
  private sort: SortState | undefined;
  private readonly headCells: HTMLElement[];
  private readonly resizers: HTMLElement[];
  /** Widths the user set, px, by column index. */
  private readonly userPx = new Map<number, number>();
  /** The widest natural width seen in each column since the last reset, px. */
  private seen: number[];
  /** The rows (by their cells' text and class) measured since the last reset: a row seen again cannot widen a column. */
  private measured = new Set<string>();
  private fittedFor = -1;

  constructor(
    private readonly columns: readonly Column<R>[],
    private readonly source: PageSource<R>,
    private readonly pageSize: number,
    private readonly rowHeight: number,
    label: string,
  ) {
    this.seen = columns.map(() => 0);
    this.headCells = columns.map((c) => {
      const cell = el('div', { class: `vt-cell vt-${c.align ?? 'start'}${c.sortKey ? ' vt-sortable' : ''}`, role: 'columnheader' }, c.title);
      if (c.sortKey) {
        cell.tabIndex = 0;
        cell.setAttribute('aria-sort', 'none');
        const toggle = () => this.toggleSort(c.sortKey!);
        cell.addEventListener('click', toggle);
        cell.addEventListener('keydown', (e) => {
          // Keys pressed on the header's resize border are the border's, not a request to sort.
          if (e.target !== cell) return;
          if (e.key === 'Enter' || e.key === ' ') {
            e.preventDefault();
            e.stopPropagation();
            toggle();
          }
        });
      }
      return cell;
    });
    this.resizers = this.headCells.map((cell, k) => this.resizer(cell, k));
    const head = el('div', { class: 'vt-head', role: 'row' }, ...this.headCells);
    this.spacer = el('div', { class: 'vt-spacer' });
    this.body = el('div', { class: 'vt-body', role: 'rowgroup' });
    // The header lives inside the scrolling viewport (sticky) so it shares the rows' width, scrollbar included.
    this.viewport = el('div', { class: 'vt-viewport' }, head, this.spacer, this.body);
    this.element = el('div', { class: 'vt', role: 'grid', tabindex: '0', 'aria-label': label }, this.viewport);
    this.element.style.setProperty('--vt-row-height', `${rowHeight}px`);
    this.element.style.setProperty('--vt-count', String(columns.length));
    // Until the first rows are measured: each column at its narrowest, the flexible ones sharing the rest.
    this.element.style.setProperty('--vt-columns', columns.map((c) => (c.flex ? `minmax(${c.min}em, ${c.flex}fr)` : `${c.min}em`)).join(' '));
    this.viewport.addEventListener('scroll', () => this.schedule(), { passive: true });
    new ResizeObserver(() => this.schedule()).observe(this.viewport);
    this.element.addEventListener('keydown', (e) => this.onKey(e));
    this.body.addEventListener('click', (e) => {
      const row = (e.target as HTMLElement).closest<HTMLElement>('.vt-row');
      if (!row?.dataset.index) return;
      const index = Number(row.dataset.index);
      this.select(index);
      this.onClick(index, this.peek(index));
    });
  }

  /**
   * The border at the end of header `k`: drag it, or focus it and press ←/→ (Shift: four steps);
   * double-click or Home gives the column back to the fit.
   */
  private resizer(cell: HTMLElement, k: number): HTMLElement {
    const title = this.columns[k]!.title;
    const handle = el('div', { class: 'vt-resizer', role: 'separator', 'aria-orientation': 'vertical', tabindex: '0', 'aria-label': t('Resize column {0}', title), title: t('Resize {0}: drag, or ←/→; double-click or Home to fit', title) });
    cell.append(handle);
    const set = (px: number | undefined) => {
      if (px === undefined) this.userPx.delete(k);
      else this.userPx.set(k, Math.max(MIN_RESIZED_PX, Math.round(px)));
      this.fit();
    };
    let drag: { x: number; width: number } | undefined;
    handle.addEventListener('pointerdown', (e) => {
      if (e.button !== 0) return;
      e.preventDefault();
      e.stopPropagation();
      handle.setPointerCapture(e.pointerId);
      drag = { x: e.clientX, width: cell.getBoundingClientRect().width };
      handle.classList.add('active');
    });
    handle.addEventListener('pointermove', (e) => {
      if (drag) set(drag.width + e.clientX - drag.x);
    });
    const end = () => {
      if (!drag) return;
      drag = undefined;
      handle.classList.remove('active');
      this.onResize(this.widths);
    };
    handle.addEventListener('pointerup', end);
    handle.addEventListener('pointercancel', end);
    // The header under the border sorts on click; a resize is not a click on it.
    handle.addEventListener('click', (e) => e.stopPropagation());
    handle.addEventListener('dblclick', (e) => {
      e.stopPropagation();
      set(undefined);
      this.onResize(this.widths);
    });
    handle.addEventListener('keydown', (e) => {
      const step = (e.shiftKey ? 4 : 1) * RESIZE_STEP_PX;
      const now = cell.getBoundingClientRect().width;
      const to = e.key === 'ArrowLeft' ? now - step : e.key === 'ArrowRight' ? now + step : e.key === 'Home' ? undefined : null;
      if (to === null) {
        // The header (sorts on Enter/Space) and the grid (moves the selection) ignore keys from here
        // (see onKey), but the event still bubbles: VS Code's webview forwards keydowns from the
        // window to its keybindings (Ctrl+P, F1…), so stopping every key here would dead them.
        // What would only scroll the table is kept from doing so; Tab moves on.
        if (SCROLL_KEYS.has(e.key)) e.preventDefault();
        return;
      }
      e.preventDefault();
      e.stopPropagation();
      set(to);
      this.onResize(this.widths);
    });
    return handle;
  }

  /** The widths the user set, by column title. */
  get widths(): ColumnWidths {
    return Object.fromEntries([...this.userPx].map(([k, px]) => [this.columns[k]!.title, px]));
  }

  /** What every page wires the same way: the widths from its saved state (kept there on resize), load errors in its status line. */
  keep(widths: ColumnWidths | undefined, save: (widths: ColumnWidths) => void, status: HTMLElement): void {
    this.setWidths(widths);
    this.onResize = save;
    this.onError = (e) => (status.textContent = t('Could not load rows: {0}', e instanceof Error ? e.message : String(e)));
  }

  /** Restores widths the user set (from the page's saved state); unknown titles are ignored. */
  setWidths(widths: ColumnWidths | undefined): void {
    this.userPx.clear();
    this.columns.forEach((c, k) => {
      const px = widths?.[c.title];
      if (typeof px === 'number' && Number.isFinite(px)) this.userPx.set(k, Math.max(MIN_RESIZED_PX, px));
    });
    this.fit();
  }

  /**
   * Widens `seen` to the natural width of the header and of the rows in view: the rows are laid out
   * once with max-content tracks (the `vt-measuring` class), read, and put back.
   */
  private measure(painted: readonly HTMLElement[]): boolean {
    // Only rows not measured before pay for the second layout (a scroll back, a selection, a page
    // arriving for rows already seen measure nothing).
    const rows = painted.filter((row) => {
      const key = Array.from(row.children, (c) => `${c.className}\u0001${c.textContent}`).join('\u0002');
      if (this.measured.has(key)) return false;
      this.measured.add(key);
      return true;
    });
    // Until a row is measured (an empty view) the header alone sets the widths, as it always did.
    if (rows.length === 0 && this.measured.size > 0) return false;
    this.element.classList.add('vt-measuring');
    let grew = false;
    for (const r of [this.headCells, ...rows.map((row) => Array.from(row.children) as HTMLElement[])]) {
      r.forEach((cell, k) => {
        const w = Math.ceil(cell.getBoundingClientRect().width);
        if (w > this.seen[k]!) {
          this.seen[k] = w;
          grew = true;
        }
      });
    }
    this.element.classList.remove('vt-measuring');
    return grew;
  }

  /**
   * Sets the tracks: user widths as set; other columns as wide as their content within [min, max];
   * the flexible columns take the slack. Too wide for the row: the inflexible auto columns give way
   * first, the widest first (a short column such as a status keeps its word while a long one has
   * room to lose), then the flexible ones; past their minimums the table scrolls sideways.
   */
  private fit(): void {
    const em = parseFloat(getComputedStyle(this.headCells[0]!).fontSize) || 13;
    const avail = this.viewport.clientWidth;
    this.fittedFor = avail;
    const min = this.columns.map((c) => c.min * em);
    const want = this.columns.map((c, k) => this.userPx.get(k) ?? Math.min(Math.max(this.seen[k]!, min[k]!), (c.max ?? Infinity) * em));
    const auto = (flex: boolean) => this.columns.map((_, k) => k).filter((k) => !this.userPx.has(k) && !!this.columns[k]!.flex === flex);
    for (const group of [auto(false), auto(true)]) {
      const over = want.reduce((a, b) => a + b, 0) - avail;
      if (over > 0) capAt(group, want, min, over);
    }
    const tracks = this.columns.map((c, k) => (c.flex && !this.userPx.has(k) ? `minmax(${Math.floor(want[k]!)}px, ${c.flex}fr)` : `${Math.floor(want[k]!)}px`));
    this.element.style.setProperty('--vt-columns', tracks.join(' '));
    this.element.style.setProperty('--vt-width', `${Math.floor(want.reduce((a, b) => a + b, 0))}px`);
    // The separator's range: a resized column's narrowest to the row's width (or the column's, if wider).
    this.resizers.forEach((h, k) => {
      h.setAttribute('aria-valuemin', String(MIN_RESIZED_PX));
      h.setAttribute('aria-valuemax', String(Math.floor(Math.max(avail, want[k]!))));
      h.setAttribute('aria-valuenow', String(Math.floor(want[k]!)));
    });
  }

  /** Ascending, then descending, then file order. */
  private toggleSort(key: string): void {
    const cur = this.sort;
    this.setSort(cur?.key !== key ? { key, descending: false } : cur.descending ? undefined : { key, descending: true });
    this.onSort(this.sort);
  }

  /** Shows `sort` on the headers (the page restores it from saved state too). */
  setSort(sort: SortState | undefined): void {
    this.sort = sort;
    this.columns.forEach((c, i) => {
      if (!c.sortKey) return;
      const on = sort?.key === c.sortKey;
      this.headCells[i]!.setAttribute('aria-sort', on ? (sort!.descending ? 'descending' : 'ascending') : 'none');
      this.headCells[i]!.dataset.sort = on ? (sort!.descending ? '▼' : '▲') : '';
    });
  }

  get rowCount(): number {
    return this.total;
  }

  get scrollTop(): number {
    return this.viewport.scrollTop;
  }

  get selectedIndex(): number {
    return this.selected;
  }

  /** Forget every page (new filter or reloaded file) and fetch from the top, or from `scrollTop`. */
  async reset(scrollTop = 0, selected = -1): Promise<void> {
    const gen = ++this.generation;
    this.inflight.clear();
    // The old rows stay (and answer keys) until the new first page is in; no other page of the new
    // view is fetched before then, so the two never mix.
    this.resetting = true;
    const first = await this.source.fetch(0, this.pageSize).finally(() => {
      if (gen === this.generation) this.resetting = false;
    });
    if (gen !== this.generation) return;
    this.cache.clear();
    // Widths follow what this view holds: a filter that drops the long names lets the others widen.
    this.seen = this.columns.map(() => 0);
    this.measured.clear();
    this.selected = selected;
    this.total = first.total;
    this.cache.set(0, first.rows);
    this.spacer.style.height = `${Math.min(this.total * this.rowHeight, MAX_SCROLL_PX)}px`;
    this.element.setAttribute('aria-rowcount', String(this.total));
    this.viewport.scrollTop = scrollTop;
    this.paint();
  }

  private get scale(): number {
    const full = this.total * this.rowHeight;
    return full > MAX_SCROLL_PX ? (full - this.rowsHeight) / (MAX_SCROLL_PX - this.rowsHeight) : 1;
  }

  /** Viewport height available to rows (the sticky header takes one row). */
  private get rowsHeight(): number {
    return Math.max(0, this.viewport.clientHeight - this.rowHeight);
  }

  private firstVisible(): number {
    return Math.min(Math.max(0, this.total - 1), Math.floor((this.viewport.scrollTop * this.scale) / this.rowHeight));
  }

  private schedule(): void {
    if (this.rafPending) return;
    this.rafPending = true;
    requestAnimationFrame(() => {
      this.rafPending = false;
      this.paint();
    });
  }

  private paint(): void {
    const first = this.firstVisible();
    const count = Math.min(this.total - first, Math.ceil(this.rowsHeight / this.rowHeight) + 1);
    while (this.rowEls.length < count) {
      const row = el('div', { class: 'vt-row', role: 'row' }, ...this.columns.map((c) => el('div', { class: `vt-cell vt-${c.align ?? 'start'}`, role: 'gridcell' })));
      this.rowEls.push(row);
      this.body.append(row);
    }
    // Rows are placed at their true offset within the viewport, whatever the scroll scale.
    const offset = this.viewport.scrollTop - ((this.viewport.scrollTop * this.scale) % this.rowHeight);
    this.body.style.transform = `translateY(${offset}px)`;
    let missing = false;
    for (let i = 0; i < this.rowEls.length; i++) {
      const rowEl = this.rowEls[i]!;
      const index = first + i;
      if (i >= count) {
        rowEl.hidden = true;
        continue;
      }
      rowEl.hidden = false;
      rowEl.dataset.index = String(index);
      rowEl.setAttribute('aria-rowindex', String(index + 1));
      rowEl.classList.toggle('selected', index === this.selected);
      rowEl.setAttribute('aria-selected', String(index === this.selected));
      const row = this.rowAt(index);
      rowEl.classList.toggle('placeholder', row === undefined);
      if (row === undefined) missing = true;
      this.columns.forEach((c, k) => {
        const cell = rowEl.children[k] as HTMLElement;
        cell.textContent = row === undefined ? (k === 0 ? '…' : '') : c.text(row);
        // A name cut for want of room shows whole on hover (as an attribute value, never markup).
        if (k === 0) cell.title = cell.textContent;
        c.decorate?.(cell, row);
      });
    }
    // Rows in view decide the widths: refit when one is wider than any before, or the view resized.
    const painted = this.rowEls.slice(0, count).filter((r) => !r.classList.contains('placeholder'));
    if (this.measure(painted) || this.viewport.clientWidth !== this.fittedFor) this.fit();
    if (!missing && count > 0) this.onPainted(first, count);
  }

  /** The row at `index` if its page is loaded; never fetches. */
  peek(index: number): R | undefined {
    const page = Math.floor(index / this.pageSize);
    return this.cache.get(page)?.[index - page * this.pageSize];
  }

  private rowAt(index: number): R | undefined {
    const page = Math.floor(index / this.pageSize);
    const rows = this.cache.get(page);
    if (rows) {
      // Refresh LRU order.
      this.cache.delete(page);
      this.cache.set(page, rows);
      return rows[index - page * this.pageSize];
    }
    this.load(page);
    return undefined;
  }

  private load(page: number): void {
    if (this.inflight.has(page) || this.resetting) return;
    this.inflight.add(page);
    const gen = this.generation;
    this.source.fetch(page * this.pageSize, this.pageSize).then(
      ({ rows }) => {
        if (gen !== this.generation) return;
        this.inflight.delete(page);
        this.cache.set(page, rows);
        while (this.cache.size > MAX_CACHED_PAGES) this.cache.delete(this.cache.keys().next().value!);
        this.schedule();
      },
      (e) => {
        this.inflight.delete(page);
        this.onError(e);
      },
    );
  }

  /** Selects `index` once its page is loaded, so the selection handler gets the row. */
  async reveal(index: number): Promise<void> {
    const page = Math.floor(index / this.pageSize);
    if (!this.cache.has(page)) {
      const gen = this.generation;
      const { rows } = await this.source.fetch(page * this.pageSize, this.pageSize);
      if (gen !== this.generation) return;
      this.cache.set(page, rows);
    }
    this.select(index);
  }

  select(index: number): void {
    if (this.total === 0) return;
    this.selected = Math.max(0, Math.min(this.total - 1, index));
    this.scrollIntoView(this.selected);
    this.paint();
    this.onSelect(this.selected, this.rowAt(this.selected));
  }

  private scrollIntoView(index: number): void {
    const visible = Math.floor(this.rowsHeight / this.rowHeight);
    const first = this.firstVisible();
    if (index < first) this.viewport.scrollTop = (index * this.rowHeight) / this.scale;
    else if (index >= first + visible) this.viewport.scrollTop = ((index - visible + 1) * this.rowHeight) / this.scale;
  }

  private onKey(e: KeyboardEvent): void {
    // A resize border's keys resize (or do nothing); they never move or open rows.
    if ((e.target as HTMLElement).closest('.vt-resizer')) return;
    if (this.selected >= 0 && this.onRowKey(e, this.selected, this.peek(this.selected))) {
      e.preventDefault();
      return;
    }
    const page = Math.max(1, Math.floor(this.rowsHeight / this.rowHeight) - 1);
    const at = this.selected < 0 ? this.firstVisible() - 1 : this.selected;
    const moves: Record<string, number> = { ArrowDown: at + 1, ArrowUp: at - 1, PageDown: at + page, PageUp: at - page, Home: 0, End: this.total - 1 };
    const to = moves[e.key];
    if (to === undefined) return;
    e.preventDefault();
    this.select(to);
  }
}

/**
 * Takes up to `over` px from the columns of `group`, widest first: every one is cut to a common
 * level (never below its minimum), the level found by bisection.
 */
function capAt(group: readonly number[], want: number[], min: readonly number[], over: number): void {
  const total = (level: number) => group.reduce((a, k) => a + Math.max(min[k]!, Math.min(want[k]!, level)), 0);
  const now = total(Infinity);
  const target = now - over;
  let lo = 0;
  let hi = Math.max(0, ...group.map((k) => want[k]!));
  for (let i = 0; i < 30 && hi - lo > 0.5; i++) {
    const mid = (lo + hi) / 2;
    if (total(mid) > target) hi = mid;
    else lo = mid;
  }
  for (const k of group) want[k] = Math.max(min[k]!, Math.min(want[k]!, lo));
}

/** Row height follows the editor font size, as the hex editor does, so density matches the editor. */
export function rowHeight(): number {
  const px = parseFloat(getComputedStyle(document.documentElement).getPropertyValue('--vscode-editor-font-size')) || 13;
  return Math.round(px * 1.7);
}
