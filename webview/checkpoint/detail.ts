/**
 * The tensor detail pane: for the selected row, exact statistics (NaN/±Inf/zero counts included)
 * and a histogram, computed by the host's worker thread with progress and cancel; and for tensors of
 * two or more dimensions a 2-D slice — any two axes, an index on the others — as a table coloured by
 * value. Every value from the file is set as text.
 */
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import { DETAIL_BINS, type HistogramMessage, type HostToWebview, type JobErrorMessage, type StatsMessage, type TensorRow, type WebviewToHost } from '../../src/shared/checkpointProtocol';
import type { Histogram } from '../../src/core/types';
import type { Rpc } from '../../src/shared/rpc';
import { custom, el, formatBytes, formatCount } from '../shared/dom';
import { t } from '../shared/l10n';

/** Rows × columns of the slice window (the host bounds it too). */
const WINDOW = 32;

const fmt = (v: number | null) => (v === null ? '—' : Number.isInteger(v) && Math.abs(v) < 1e15 ? String(v) : v.toPrecision(6));

export class TensorDetail {
  readonly element = el('section', { class: 'detail', 'aria-label': t('Tensor detail'), hidden: '' });
  private row: TensorRow | undefined;
  private sliceAxes = { row: 0, col: 1, index: [] as number[] };

  constructor(private readonly rpc: Rpc<WebviewToHost, HostToWebview>) {}

  /** Called for every progress message the host sends. */
  progress(name: string, fraction: number): void {
    if (name !== this.row?.name) return;
    const bar = this.element.querySelector<HTMLElement & { value: number }>('.stats-progress');
    if (bar) bar.value = Math.round(fraction * 100);
  }

  show(row: TensorRow | undefined): void {
    if (!row) {
      this.element.hidden = true;
      this.row = undefined;
      return;
    }
    if (row.name === this.row?.name && !row.group === !this.row.group && !row.pending === !this.row.pending && !this.element.hidden) return;
    void this.rpc.request({ type: 'cancelJob' });
    this.row = row;
    if (row.group) {
      // A group of the tree view: its totals; statistics are per tensor.
      const g = row.group;
      this.element.replaceChildren(
        el('h2', { class: 'detail-name' }, row.name),
        el('p', { class: 'detail-shape' }, t('{0} tensors · {1} parameters · {2} · {3}', formatCount(g.tensors), formatCount(row.parameters), formatBytes(row.bytes), row.dtype)),
      );
      this.element.hidden = false;
      return;
    }
    this.sliceAxes = { row: Math.max(0, row.shape.length - 2), col: Math.max(0, row.shape.length - 1), index: row.shape.map(() => 0) };
    const statsButton = custom('vscode-button', { class: 'compute-stats' }, t('Compute statistics'));
    statsButton.addEventListener('click', () => void this.stats());
    // A row listed from the index: its shape comes with its shard's header; statistics wait for the
    // shards to be validated (the host answers once they are, or says why they cannot be read).
    const parts: Node[] = [
      el('h2', { class: 'detail-name' }, row.name),
      el('p', { class: 'detail-shape' }, row.pending ? t('Listed from the index; dtype and shape come with its shard\'s header.') : t('{0} [{1}] · {2} parameters', row.dtype, row.shape.join(', '), formatCount(row.parameters))),
      el('div', { class: 'stats-area' }, statsButton),
    ];
    if (!row.pending && row.shape.length >= 1 && row.parameters > 0) parts.push(this.sliceControls(row));
    this.element.replaceChildren(...parts);
    this.element.hidden = false;
  }

  /** Statistics of the tensor shown (the explorer's "Show Statistics" asks through here). */
  async stats(): Promise<void> {
    const row = this.row;
    if (!row || row.group) return;
    const area = this.element.querySelector('.stats-area')!;
    const cancel = custom('vscode-button', { class: 'cancel-stats', secondary: '' }, t('Cancel'));
    cancel.addEventListener('click', () => void this.rpc.request({ type: 'cancelJob' }));
    area.replaceChildren(el('div', { class: 'stats-running', role: 'status' }, custom('vscode-progress-bar', { class: 'stats-progress', value: '0', max: '100' }), el('span', {}, t('Reading every element…')), cancel));
    const t0 = performance.now();
    const r = await this.rpc.request({ type: 'tensorStats', name: row.name, bins: DETAIL_BINS });
    if (this.row?.name !== row.name) return;
    // Request to numbers, as the page saw it (the benchmark reads it).
    this.element.dataset.statsMs = (performance.now() - t0).toFixed(1);
    const again = custom('vscode-button', { class: 'compute-stats', secondary: '' }, t('Compute again'));
    again.addEventListener('click', () => void this.stats());
    if (r.type === 'jobError') {
      area.replaceChildren(el('p', { class: r.cancelled ? 'stats-cancelled' : 'stats-error', role: 'alert' }, r.cancelled ? t('Cancelled.') : r.message), again);
    } else if (r.type === 'stats') {
      const figure = r.histogramPending ? this.pendingHistogram() : r.histogram ? renderHistogram(r.histogram) : undefined;
      area.replaceChildren(renderStats(r), ...(figure ? [figure] : []), again);
    }
  }

  /** Where the histogram goes while its pass runs: progress and Cancel. */
  private pendingHistogram(): HTMLElement {
    const cancel = custom('vscode-button', { class: 'cancel-stats', secondary: '' }, t('Cancel'));
    cancel.addEventListener('click', () => void this.rpc.request({ type: 'cancelJob' }));
    return el('div', { class: 'stats-running histogram-pending', role: 'status' }, custom('vscode-progress-bar', { class: 'stats-progress', value: '0', max: '100' }), el('span', {}, t('Histogram: reading every element again…')), cancel);
  }

  /** The histogram a stats reply said would follow, or why it did not. */
  histogram(m: HistogramMessage | JobErrorMessage): void {
    const pending = this.element.querySelector('.histogram-pending');
    if (m.name !== this.row?.name || !pending) return;
    if (m.type === 'histogram') {
      if (m.histogram) pending.replaceWith(renderHistogram(m.histogram));
      else pending.remove();
    } else pending.replaceWith(el('p', { class: m.cancelled ? 'stats-cancelled' : 'stats-error', role: 'alert' }, m.cancelled ? t('Histogram cancelled.') : m.message));
  }

  private sliceControls(row: TensorRow): HTMLElement {
    const box = el('div', { class: 'slice' });
    const nd = row.shape.length;
    const controls = el('div', { class: 'slice-controls' });
    const axisSelect = (label: string, value: number, set: (v: number) => void) => {
      const s = el('select', { 'aria-label': label }) as HTMLSelectElement;
      for (let a = 0; a < nd; a++) s.append(el('option', { value: String(a) }, t('axis {0} ({1})', a, row.shape[a]!)));
      s.value = String(value);
      s.addEventListener('change', () => set(Number(s.value)));
      return el('label', {}, label, ' ', s);
    };
    const redraw = () => box.replaceChildren(...this.sliceControls(row).childNodes);
    if (nd >= 2) {
      controls.append(
        axisSelect(t('Rows'), this.sliceAxes.row, (v) => ((this.sliceAxes.row = v), redraw())),
        axisSelect(t('Columns'), this.sliceAxes.col, (v) => ((this.sliceAxes.col = v), redraw())),
      );
      for (let a = 0; a < nd; a++) {
        if (a === this.sliceAxes.row || a === this.sliceAxes.col) continue;
        const input = el('input', { type: 'number', min: '0', max: String(row.shape[a]! - 1), value: String(this.sliceAxes.index[a] ?? 0), 'aria-label': t('Index on axis {0}', a) }) as HTMLInputElement;
        input.addEventListener('change', () => (this.sliceAxes.index[a] = Math.min(row.shape[a]! - 1, Math.max(0, Math.floor(Number(input.value) || 0)))));
        controls.append(el('label', {}, t('axis {0} index', a), ' ', input));
      }
    }
    const show = custom('vscode-button', { class: 'show-slice', secondary: '' }, nd >= 2 ? t('Show slice') : t('Show values'));
    const out = el('div', { class: 'slice-out' });
    show.addEventListener('click', () => void this.slice(row, out));
    controls.append(show);
    box.append(controls, out);
    return box;
  }

  private async slice(row: TensorRow, out: HTMLElement): Promise<void> {
    const nd = row.shape.length;
    const rowAxis = nd >= 2 ? this.sliceAxes.row : 0;
    const colAxis = nd >= 2 ? this.sliceAxes.col : 0;
    if (nd >= 2 && rowAxis === colAxis) {
      out.replaceChildren(el('p', { class: 'stats-error', role: 'alert' }, t('Choose two different axes.')));
      return;
    }
    const rowCount = nd >= 2 ? Math.min(WINDOW, row.shape[rowAxis]!) : 1;
    const colCount = Math.min(nd >= 2 ? WINDOW : WINDOW * WINDOW, row.shape[colAxis]!);
    out.replaceChildren(el('p', { role: 'status' }, t('Reading…')));
    const r = await this.rpc.request({ type: 'tensorSlice', name: row.name, rowAxis, colAxis, index: this.sliceAxes.index, rowStart: 0, rowCount: nd >= 2 ? rowCount : 1, colStart: 0, colCount });
    if (r.type === 'jobError') out.replaceChildren(el('p', { class: 'stats-error', role: 'alert' }, r.cancelled ? t('Cancelled.') : r.message));
    if (r.type !== 'slice') return;
    out.replaceChildren(renderSlice(r.rows, r.cols, r.values, nd >= 2 ? t('axis {0} × axis {1}', rowAxis, colAxis) : t('values')));
  }
}

function renderStats(r: StatsMessage): HTMLElement {
  const s = r.stats;
  const facts: [string, string, boolean][] = [
    [t('Elements'), formatCount(s.count), false],
    [t('Min'), fmt(s.min), false],
    [t('Max'), fmt(s.max), false],
    [t('Mean'), fmt(s.mean), false],
    [t('Std'), fmt(s.std), false],
    [t('Zeros'), formatCount(s.zeros), false],
    ['NaN', formatCount(s.nan), true],
    ['+Inf', formatCount(s.posInf), true],
    ['−Inf', formatCount(s.negInf), true],
  ];
  const dl = el('dl', { class: 'facts stats' });
  // Non-finite counts other than zero are marked.
  for (const [k, v, nonFinite] of facts) dl.append(el('dt', {}, k), el('dd', { class: nonFinite && v !== '0' ? 'bad' : '' }, v));
  return dl;
}

function renderHistogram(h: Histogram): HTMLElement {
  const max = Math.max(1, ...h.counts);
  const bars = el('div', { class: 'histogram', role: 'img', 'aria-label': t('Histogram, {0} bins from {1} to {2}', h.counts.length, fmt(h.edges[0]!), fmt(h.edges[h.edges.length - 1]!)) });
  h.counts.forEach((c, i) => {
    const bar = el('div', { class: 'bar', title: `[${fmt(h.edges[i]!)}, ${fmt(h.edges[i + 1]!)}${i === h.counts.length - 1 ? ']' : ')'}: ${formatCount(c)}` });
    // CSSOM, not a style attribute: the page's CSP allows no inline styles.
    bar.style.height = `${(c / max) * 100}%`;
    bars.append(bar);
  });
  return el('figure', { class: 'histogram-figure' }, bars, el('figcaption', {}, `${fmt(h.edges[0]!)} … ${fmt(h.edges[h.edges.length - 1]!)}`));
}

function renderSlice(rows: number, cols: number, values: readonly (number | null)[], caption: string): HTMLElement {
  const finite = values.filter((v): v is number => v !== null);
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  const table = el('table', { class: 'slice-table', 'aria-label': t('Slice, {0}', caption) });
  const head = el('tr', {}, el('th', {}, ''));
  for (let c = 0; c < cols; c++) head.append(el('th', { scope: 'col' }, String(c)));
  table.append(head);
  for (let r = 0; r < rows; r++) {
    const tr = el('tr', {}, el('th', { scope: 'row' }, String(r)));
    for (let c = 0; c < cols; c++) {
      const v = values[r * cols + c] ?? null;
      const td = el('td', { class: v === null ? 'nonfinite' : '' }, v === null ? 'NaN/Inf' : fmt(v));
      // Heat: the value's place between the window's min and max, as the opacity of the theme's chart colour.
      if (v !== null && hi > lo) td.style.setProperty('--heat', String((v - lo) / (hi - lo)));
      tr.append(td);
    }
    table.append(tr);
  }
  return el('div', { class: 'slice-scroll' }, table);
}
