/**
 * Localisation of the webview pages: their t() messages are in the English bundle, t() reads the
 * bundle the host writes into the page, and no English reaches a page outside t().
 */
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { extractBundle, extractFrom, sourceFiles, WEBVIEW_DIR } from '../../scripts/l10n.mjs';
import { parseBundle, translator } from '../../src/shared/pageL10n';
import { webviewLiterals } from './webviewLiterals';

const root = resolve(__dirname, '../../..');
const pages = sourceFiles(root, WEBVIEW_DIR);
const found = (src: string) => webviewLiterals('x.ts', src).map((o) => `${o.line}: ${o.text}`);

describe('localisation of the webview pages', () => {
  it("t() translates from the host's bundle as vscode.l10n.t does: English when absent, {n} filled", () => {
    const t = translator(parseBundle(JSON.stringify({ 'Rows {0}–{1}': 'Zeilen {0} bis {1}', Cancel: 'Abbrechen', Bad: 3 })));
    assert.equal(t('Rows {0}–{1}', 1, '40'), 'Zeilen 1 bis 40');
    assert.equal(t('Cancel'), 'Abbrechen');
    assert.equal(t('Bad'), 'Bad', 'a value that is not a string is no translation');
    assert.equal(t('{0} of {1}', 3), '3 of {1}', 'a placeholder without an argument stays');
    assert.equal(t('constructor'), 'constructor', 'only the bundle\'s own keys are translations');
    assert.equal(translator(parseBundle(undefined))('Ready'), 'Ready');
    assert.deepEqual([parseBundle('[1]'), parseBundle('{not json'), parseBundle('null')], [{}, {}, {}]);
  });

  it('the extractor takes t() imported from the pages\' l10n module (under any name), and nothing else called t', () => {
    const src = [
      "import { t } from '../shared/l10n';",
      "import { t as tr } from './l10n';",
      "el('p', {}, t('Rows {0}', n));",
      "tr('Cancel');",
      'other.t(`Not this`);',
      't(message);',
    ].join('\n');
    const r = extractFrom('webview/x.ts', src);
    assert.deepEqual(r.messages.map((m) => [m.key, m.at]), [['Rows {0}', 'webview/x.ts:3'], ['Cancel', 'webview/x.ts:4']]);
    assert.deepEqual(r.errors.map((e) => e.split(': ')[0]), ['webview/x.ts:6']);
    // Without the import, a function named t is someone else's.
    assert.deepEqual(extractFrom('webview/y.ts', "t('Cancel');").messages, []);
  });

  it('every page message is in the bundle (npm run l10n extracts webview/ too)', () => {
    const { bundle } = extractBundle(root);
    const messages = pages.flatMap((f) => extractFrom(f, readFileSync(join(root, f), 'utf8')).messages);
    assert.ok(messages.length > 100, `only ${messages.length} t() messages in webview/: the pages are not localised`);
    assert.deepEqual(messages.filter((m) => !(m.key in bundle)).map((m) => `${m.at}: ${m.key}`), []);
  });

  it('no page shows a string literal outside t()', () => {
    assert.ok(pages.length >= 8, `only ${pages.length} webview sources found`);
    const offenders = pages.flatMap((f) => webviewLiterals(f, readFileSync(join(root, f), 'utf8')));
    assert.equal(offenders.length, 0, `${offenders.length} string(s) shown on a page outside t() (wrap each in t() from webview/shared/l10n.ts, then \`npm run l10n\`):\n${offenders.map((o) => `${o.file}:${o.line}: ${o.text}`).join('\n')}`);
  });

  // The scanner must find what it is for, or the test above could never fail.
  describe('the scanner', () => {
    it('finds one bare literal among translated ones', () => {
      const src = ["import { t } from '../shared/l10n';", "status.textContent = t('Ready');", "button.textContent = 'Start';"].join('\n');
      assert.deepEqual(found(src), ["3: 'Start'"]);
    });

    it('finds text in every place a page shows it', () => {
      const src = [
        "import { t } from '../shared/l10n';",
        "a.textContent = ok ? t('Yes') : 'no';", // 2
        "a.title = `Resize ${name}`; a.placeholder = 'Filter'; a.ariaLabel = 'Rows';", // 3: three
        "a.setAttribute('aria-label', 'Summary'); a.setAttribute('aria-sort', 'none');", // 4: the label only
        "el('h2', { class: 'big head', title: 'Heading' }, 'Could not open', name);", // 5: the title and the child
        "custom('vscode-button', { 'aria-label': `Close ${n}` }, t('Close'));", // 6
        "const columns = [{ title: 'Name', min: 10, text: (r) => r.name }];", // 7
        "list.append(' ', 'show row'); box.replaceChildren(el('p', {}, t('x')), 'done');", // 8: two
        "throw new Error('unexpected reply');", // 9
        "const button = (id, text, cls = '') => el('button', { id, type: 'button', class: cls }, text);", // helper: none
        "const field = (label, control) => el('div', {}, button('x', label), control);", // helper of a helper: none
        "button('start', 'Start Server', 'secondary'); field('Port', input);", // 12: two
        "const LABEL = { starting: 'Process started', ready: 'Ready' };", // 13: two (they read as words)
        "const facts = [['Elements', n], ['NaN', nan]];", // 14: Elements (NaN is not a word)
      ].join('\n');
      assert.deepEqual(found(src), [
        "2: 'no'",
        '3: `Resize ${name}`',
        "3: 'Filter'",
        "3: 'Rows'",
        "4: 'Summary'",
        "5: 'Heading'",
        "5: 'Could not open'",
        '6: `Close ${n}`',
        "7: 'Name'",
        "8: 'show row'",
        "8: 'done'",
        "9: 'unexpected reply'",
        "12: 'Start Server'",
        "12: 'Port'",
        "13: 'Process started'",
        "13: 'Ready'",
        "14: 'Elements'",
      ]);
    });

    it('passes what is not language: ids, classes, selectors, events, keys, comparisons, symbols, numbers, code names', () => {
      const src = [
        "import { t } from '../shared/l10n';",
        "import '@vscode-elements/elements/dist/vscode-button/index.js';",
        "const row = el('div', { class: 'vt-row selected', role: 'row', id: 'filter' }, '…', '▸', '×', '—');",
        "a.addEventListener('click', f); document.querySelector('.stats-area'); a.classList.toggle('val-bad', on);",
        "if (e.key === 'Enter' || e.key === ' ' || m.type === 'Ready now') go();",
        "a.style.setProperty('--vt-row-height', `${h}px`); a.className = 'vt-cell vt-start';",
        "el('dd', {}, ['NaN', '+Inf', '−Inf'].join(', '), 'API', 'top_p', 'dtype', String(n), `${n} %`);",
        "const keys = new Set(['ArrowUp', 'End', 'Enter']); void rpc.request({ type: 'show Log' });",
        "el('p', {}, t('Generating with {0} at {1}', a.model ?? t('(no model name)'), 'Extra words'));",
      ].join('\n');
      assert.deepEqual(found(src), []);
    });
  });
});
