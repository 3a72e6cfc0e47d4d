/**
 * Localisation: the English runtime bundle matches the source's l10n.t calls, package.json shows
 * nothing but %keys% from package.nls.json, and no English reaches the user from src/extension
 * outside l10n.t.
 */
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BUNDLE_FILE, bundleText, extractBundle, extractFrom, sourceFiles } from '../../scripts/l10n.mjs';
import { userVisibleLiterals, type Offender } from './userVisibleLiterals';

const root = resolve(__dirname, '../../..');
const readJson = (file: string): unknown => JSON.parse(readFileSync(join(root, file), 'utf8'));

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const obj = (v: Json | undefined): { [k: string]: Json } => (v && typeof v === 'object' && !Array.isArray(v) ? v : {});
const arr = (v: Json | undefined): Json[] => (Array.isArray(v) ? v : []);

/** Every field of the manifest VS Code shows a person, as [where, value]. */
function manifestTexts(pkg: { [k: string]: Json }): [string, Json][] {
  const out: [string, Json][] = [];
  const take = (where: string, o: { [k: string]: Json }, ...fields: string[]) => {
    for (const f of fields) {
      const v = o[f];
      if (Array.isArray(v)) v.forEach((x, i) => out.push([`${where}.${f}[${i}]`, x]));
      else if (v !== undefined) out.push([`${where}.${f}`, v]);
    }
  };
  const c = obj(pkg.contributes);
  take('', pkg, 'displayName', 'description');
  for (const [k, v] of Object.entries(obj(pkg.capabilities))) take(`capabilities.${k}`, obj(v), 'description');
  arr(c.commands).forEach((v, i) => take(`commands[${i}]`, obj(v), 'title', 'shortTitle', 'category'));
  for (const [i, conf] of (Array.isArray(c.configuration) ? c.configuration : [c.configuration]).entries()) {
    take(`configuration[${i}]`, obj(conf), 'title');
    for (const [k, v] of Object.entries(obj(obj(conf).properties)))
      take(`configuration.${k}`, obj(v), 'description', 'markdownDescription', 'enumDescriptions', 'markdownEnumDescriptions', 'deprecationMessage', 'markdownDeprecationMessage');
  }
  arr(c.customEditors).forEach((v, i) => take(`customEditors[${i}]`, obj(v), 'displayName'));
  for (const [k, vs] of Object.entries(obj(c.viewsContainers))) arr(vs).forEach((v, i) => take(`viewsContainers.${k}[${i}]`, obj(v), 'title'));
  for (const [k, vs] of Object.entries(obj(c.views))) arr(vs).forEach((v, i) => take(`views.${k}[${i}]`, obj(v), 'name', 'contextualTitle'));
  arr(c.viewsWelcome).forEach((v, i) => take(`viewsWelcome[${i}]`, obj(v), 'contents'));
  arr(c.submenus).forEach((v, i) => take(`submenus[${i}]`, obj(v), 'label'));
  arr(c.taskDefinitions).forEach((t, i) => {
    for (const [k, v] of Object.entries(obj(obj(t).properties))) take(`taskDefinitions[${i}].${k}`, obj(v), 'description', 'markdownDescription');
  });
  arr(c.walkthroughs).forEach((w, i) => {
    take(`walkthroughs[${i}]`, obj(w), 'title', 'description');
    arr(obj(w).steps).forEach((s, j) => {
      take(`walkthroughs[${i}].steps[${j}]`, obj(s), 'title', 'description');
      take(`walkthroughs[${i}].steps[${j}].media`, obj(obj(s).media), 'altText');
    });
  });
  return out;
}

/** Every `%key%` used anywhere in the manifest (VS Code replaces any string that is one). */
function usedKeys(v: Json, into = new Set<string>()): Set<string> {
  if (typeof v === 'string') {
    const m = /^%(.+)%$/.exec(v);
    if (m) into.add(m[1]!);
  } else if (Array.isArray(v)) v.forEach((x) => usedKeys(x, into));
  else if (v && typeof v === 'object') Object.values(v).forEach((x) => usedKeys(x, into));
  return into;
}

/** What is wrong with a manifest's localisation: literal fields, missing keys, unused keys. */
function manifestProblems(pkg: { [k: string]: Json }, nls: Record<string, string>): string[] {
  const literal = manifestTexts(pkg)
    .filter(([, v]) => typeof v !== 'string' || !/^%.+%$/.test(v))
    .map(([where, v]) => `${where}: ${JSON.stringify(v)} is not a %key% (move the English to package.nls.json)`);
  const used = usedKeys(pkg);
  const missing = [...used].filter((k) => typeof nls[k] !== 'string').map((k) => `%${k}% is not in package.nls.json`);
  const unused = Object.keys(nls).filter((k) => !used.has(k)).map((k) => `${k} in package.nls.json is not used by package.json`);
  return [...literal, ...missing, ...unused];
}

const listed = (offenders: readonly Offender[]) => offenders.map((o) => `${o.file}:${o.line}: ${o.text}`).join('\n');

describe('localisation', () => {
  describe('the English bundle', () => {
    it(`${BUNDLE_FILE} holds exactly the messages of the l10n.t calls in src/extension`, () => {
      const { bundle, errors } = extractBundle(root);
      assert.deepEqual(errors, [], 'l10n.t with a computed message (not a string literal):\n' + errors.join('\n'));
      const onDisk = readFileSync(join(root, BUNDLE_FILE), 'utf8');
      assert.ok(onDisk === bundleText(bundle), `${BUNDLE_FILE} is out of date with the source: run \`npm run l10n\`.`);
    });

    it('the extractor takes literal messages and the { message, comment } form, and reports a computed message with its line', () => {
      const src = [
        "vscode.l10n.t('Open {0}', name);",
        'l10n.t(`Close`);',
        "vscode.l10n.t({ message: 'Stop', comment: ['the', ' server'] });",
        "vscode.l10n.t(`Serve ${name}`);",
        'vscode.l10n.t(key);',
      ].join('\n');
      const r = extractFrom('x.ts', src);
      assert.deepEqual(r.messages.map((m) => [m.key, m.value, m.at]), [
        ['Open {0}', 'Open {0}', 'x.ts:1'],
        ['Close', 'Close', 'x.ts:2'],
        ['Stop/the server', { message: 'Stop', comment: ['the', ' server'] }, 'x.ts:3'],
      ]);
      assert.deepEqual(r.errors.map((e) => e.split(': ')[0]), ['x.ts:4', 'x.ts:5']);
    });
  });

  describe('package.json', () => {
    const pkg = readJson('package.json') as { [k: string]: Json };
    const nls = readJson('package.nls.json') as Record<string, string>;

    it('points VS Code at the l10n folder', () => assert.equal(pkg.l10n, './l10n'));

    it('every title, description, category and view name is a %key% of package.nls.json, and every key there is used', () => {
      const texts = manifestTexts(pkg);
      assert.ok(texts.length > 40, `only ${texts.length} user-visible fields found: the walk missed the contributions`);
      assert.deepEqual(manifestProblems(pkg, nls), []);
    });

    it('the check finds a literal title, a missing key and an unused one, walkthroughs included', () => {
      const bad = { contributes: { commands: [{ command: 'a', title: 'Open', category: '%c%' }], walkthroughs: [{ title: '%w%', steps: [{ title: 'Step', description: '%d%' }] }] } };
      assert.deepEqual(manifestProblems(bad, { c: 'JAX Serve', w: 'Serve', d: 'Do', spare: 'x' }), [
        'commands[0].title: "Open" is not a %key% (move the English to package.nls.json)',
        'walkthroughs[0].steps[0].title: "Step" is not a %key% (move the English to package.nls.json)',
        'spare in package.nls.json is not used by package.json',
      ]);
      assert.deepEqual(manifestProblems({ displayName: '%gone%' }, {}), ['%gone% is not in package.nls.json']);
    });
  });

  describe('src/extension shows no English outside l10n.t', () => {
    it('no string literal in a user-visible place', () => {
      const offenders = sourceFiles(root).flatMap((f) => userVisibleLiterals(f, readFileSync(join(root, f), 'utf8')));
      const perFile = new Map<string, number>();
      for (const o of offenders) perFile.set(o.file, (perFile.get(o.file) ?? 0) + 1);
      const summary = [...perFile].map(([f, n]) => `  ${f}: ${n}`).join('\n');
      assert.equal(offenders.length, 0, `${offenders.length} string(s) shown to the user outside vscode.l10n.t (wrap each in l10n.t, then \`npm run l10n\`):\n${summary}\n${listed(offenders)}`);
    });

    // The scanner itself must find what it is for, or the test above could never fail.
    it('finds a bare message, its buttons, and literals in pick items, dialogs, progress, status bar, errors', () => {
      const found = (src: string) => userVisibleLiterals('x.ts', src).map((o) => `${o.line}: ${o.text}`);
      assert.deepEqual(found("vscode.window.showErrorMessage('x');"), ["1: 'x'"]);
      assert.deepEqual(
        found(
          [
            "void vscode.window.showInformationMessage(vscode.l10n.t('Saved {0}.', name), 'Open');", // 1: the button
            "vscode.window.showQuickPick([{ label: vscode.l10n.t('One'), detail: 'more' }], { title: `Pick ${n}` });", // 2: two
            "vscode.window.showSaveDialog({ title: vscode.l10n.t('Save'), saveLabel: 'Here', filters: { Python: ['py'] } });", // 3: two
            "vscode.window.withProgress({ title: 'Converting ' + name }, (p) => p.report({ message: ok ? vscode.l10n.t('a') : 'b' }));", // 4: two
            "item.text = '$(sync~spin) Starting';", // 5
            "item.text = '$(sync~spin)';", // codicon alone: none
            "throw new Error(`${name} failed`);", // 7
            "vscode.window.showInputBox({ validateInput: (v) => (v ? undefined : 'Required') });", // 8
            "const log = vscode.window.createOutputChannel('JAX Serve');", // not shown as prose
            "vscode.commands.executeCommand('jaxServe.preflight', `${a}: ${b}`);", // an id and punctuation: none
            "new vscode.TreeItem('Weights'); vscode.window.createWebviewPanel('jaxServe.diff', 'Compare');", // 11: two
            "new vscode.Task(def, scope, 'serve', 'jax-serve'); new vscode.Task(def, scope, `Serve ${p}`, 'jax-serve');", // 12: the second name
          ].join('\n'),
        ),
        [
          ...["1: 'Open'", "2: 'more'", '2: `Pick ${n}`', "3: 'Here'", '3: Python', "4: 'Converting '", "4: 'b'", "5: '$(sync~spin) Starting'", '7: `${name} failed`', "8: 'Required'"],
          ...["11: 'Weights'", "11: 'Compare'", "12: 'serve'", '12: `Serve ${p}`'],
        ],
      );
    });

    it('finds English reached through a same-file const, in l10n.t arguments, wrapped in a call, in a template or a default, in output channel names and Markdown', () => {
      const found = (src: string) => userVisibleLiterals('x.ts', src).map((o) => `${o.line}: ${o.text}`);
      assert.deepEqual(
        found(
          [
            "const SAVED = 'Saved'; vscode.window.showInformationMessage(SAVED);", // 1: through a const
            "function f(SAVED: string) { vscode.window.showInformationMessage(SAVED); }", // a parameter hides the const: none
            "vscode.window.showWarningMessage(vscode.l10n.t('{0}', 'English'));", // 3: an l10n.t argument
            "const items = ['One', 'Two']; void vscode.window.showQuickPick(items);", // 4: two, a string array through a variable
            "vscode.window.createOutputChannel('JAX Serve: Server'); vscode.window.createOutputChannel('JAX Serve');", // 5: the first
            "item.tooltip = new vscode.MarkdownString('Hover **text**');", // 6
            "vscode.window.showErrorMessage(oneLine('Server failed', { logHint }));", // 7: wrapped in a call
            "const phase = s.phases.at(-1)?.phase ?? 'starting';", // 8: reported where it is written, once
            "item.text = vscode.l10n.t('{0}: {1}', name, phase); item.tooltip = `$(sync~spin) ${phase}`;", // through the const above
            "item.text = `$(sync~spin) ${s.phase ?? 'waiting'}`;", // 10: a default in a template
            "const ids = ['chat', 'completions']; throw new Error(vscode.l10n.t('One of {0}.', ids.join(', ')));", // computed from ids: none
            "{ const title = 'Inner'; } vscode.window.showInformationMessage(title);", // another block's const: none
          ].join('\n'),
        ),
        ["1: 'Saved'", "3: 'English'", "4: 'One'", "4: 'Two'", "5: 'JAX Serve: Server'", "6: 'Hover **text**'", "7: 'Server failed'", "8: 'starting'", "10: 'waiting'"],
      );
    });
  });
});
