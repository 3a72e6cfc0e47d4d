import type { Frame } from 'playwright-core';

/**
 * For each check, the colour an element of the webview `frame` computes (`selector` 'body' included)
 * and the colour the theme variable resolves to there, read through a probe element: a page that
 * follows the theme has them equal.
 */
export async function colourAgainstTheme(frame: Frame, checks: readonly { selector: string; property: 'color' | 'backgroundColor' | 'borderLeftColor'; variable: string }[]): Promise<{ actual: string[]; theme: string[] }> {
  return frame.evaluate((cs) => {
    const actual = cs.map((c) => getComputedStyle(document.querySelector(c.selector)!)[c.property]);
    const theme = cs.map((c) => {
      const probe = document.createElement('div');
      probe.style[c.property] = `var(${c.variable})`;
      document.body.append(probe);
      const v = getComputedStyle(probe)[c.property];
      probe.remove();
      return v;
    });
    return { actual, theme };
  }, checks);
}
