/** Plain-text rendering for the CLI: aligned tables; sizes come from the shared formatter. */
export { formatBytes, formatCount } from '../shared/format';

/**
 * Columns padded to their widest cell. Control characters in names are shown escaped so a hostile
 * tensor name cannot move the cursor or recolour the terminal.
 */
export function renderTable(head: string[], rows: string[][]): string {
  const clean = (s: string) => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const all = [head, ...rows].map((r) => r.map(clean));
  const widths = head.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

/** One line per bin: its range, count and a bar scaled to the largest bin. */
export function renderHistogram(h: { edges: readonly number[]; counts: readonly number[] }, width = 40): string {
  const max = Math.max(1, ...h.counts);
  const fmt = (v: number) => v.toPrecision(4);
  return h.counts
    .map((c, i) => `[${fmt(h.edges[i]!)}, ${fmt(h.edges[i + 1]!)}${i === h.counts.length - 1 ? ']' : ')'}`.padEnd(24) + String(c).padStart(10) + '  ' + '█'.repeat(Math.round((c / max) * width)))
    .join('\n');
}
