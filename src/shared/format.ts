/** Number formatting shared by the CLI and the webviews, so both show the same figures. */

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** Binary units, three significant digits: "24 B", "1.50 KiB", "12.3 MiB", "512 GiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[u]}`;
}
