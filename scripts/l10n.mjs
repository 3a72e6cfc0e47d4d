// The English runtime bundle (l10n/bundle.l10n.json) is extracted from the source, never edited by
// hand: every `l10n.t(...)` message in src/extension and every `t(...)` message of the webview pages
// (t imported from webview/shared/l10n.ts, which looks messages up in the same bundle, passed to the
// page by the host), English → English, sorted. `npm run l10n` writes it
// (scripts/l10n-bundle.mjs); test/unit/l10n.test.ts fails when the file on disk differs.
// The TypeScript compiler's parser reads the calls, so strings in comments or other code never count.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

export const BUNDLE_FILE = 'l10n/bundle.l10n.json';
export const SOURCE_DIR = 'src/extension';
/** The pages' source: their `t` calls go into the same bundle. */
export const WEBVIEW_DIR = 'webview';

/** `vscode.l10n.t(...)` or `l10n.t(...)` (a destructured `l10n`). */
export function isL10nCall(node) {
  if (!ts.isCallExpression(node) || !ts.isPropertyAccessExpression(node.expression)) return false;
  const { expression: owner, name } = node.expression;
  if (name.text !== 't') return false;
  if (ts.isIdentifier(owner)) return owner.text === 'l10n';
  return ts.isPropertyAccessExpression(owner) && owner.name.text === 'l10n';
}

/** The local names `t` is imported under from a page's l10n module (`import { t } from '../shared/l10n'`). */
export function pageTNames(source) {
  const names = new Set();
  for (const st of source.statements) {
    if (!ts.isImportDeclaration(st) || !ts.isStringLiteral(st.moduleSpecifier) || !/(^|\/)l10n$/.test(st.moduleSpecifier.text)) continue;
    const bindings = st.importClause?.namedBindings;
    if (bindings && ts.isNamedImports(bindings)) for (const b of bindings.elements) if ((b.propertyName ?? b.name).text === 't') names.add(b.name.text);
  }
  return names;
}

/** A page's `t(...)`, given the names `t` is imported under in that file. */
export const isPageTCall = (node, names) => ts.isCallExpression(node) && ts.isIdentifier(node.expression) && names.has(node.expression.text);

// What VS Code looks up (extHostLocalizationService): the message, or `message/comment` when the
// `{ message, comment }` form carries a comment, the comment's lines joined with ''.
function fromObject(arg) {
  let message;
  let comment;
  for (const p of arg.properties) {
    if (!ts.isPropertyAssignment(p) || !ts.isIdentifier(p.name)) continue;
    if (p.name.text === 'message') message = ts.isStringLiteralLike(p.initializer) ? p.initializer.text : null;
    if (p.name.text === 'comment') {
      const c = p.initializer;
      if (ts.isStringLiteralLike(c)) comment = [c.text];
      else if (ts.isArrayLiteralExpression(c) && c.elements.every(ts.isStringLiteralLike)) comment = c.elements.map((e) => e.text);
      else comment = null;
    }
  }
  if (typeof message !== 'string') return { error: 'its `message` is not a string literal' };
  if (comment === null) return { error: 'its `comment` is not a string literal or an array of them' };
  if (!comment?.length) return { key: message, value: message };
  return { key: `${message}/${comment.join('')}`, value: { message, comment } };
}

/**
 * The messages of one file's `l10n.t` calls, and an error (file:line) for each call whose message is
 * computed: a key that is not in the source cannot be in the bundle, so it would never be translated.
 */
export function extractFrom(fileName, text) {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const messages = [];
  const errors = [];
  const pageT = pageTNames(source);
  const visit = (node) => {
    if (isL10nCall(node) || isPageTCall(node, pageT)) {
      const arg = node.arguments[0];
      const at = `${fileName}:${source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1}`;
      let found;
      if (arg && ts.isStringLiteralLike(arg)) found = { key: arg.text, value: arg.text };
      else if (arg && ts.isObjectLiteralExpression(arg)) found = fromObject(arg);
      else found = { error: 'its message is not a string literal (a computed key cannot be bundled; pass the variable parts as {0}, {1} arguments)' };
      if ('error' in found) errors.push(`${at}: l10n.t: ${found.error}`);
      else messages.push({ ...found, at });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return { messages, errors };
}

/** Every .ts file under `dir`, sorted, as paths relative to `root`. */
export function sourceFiles(root, dir = SOURCE_DIR) {
  return readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(root, join(e.parentPath, e.name)).split('\\').join('/'))
    .sort();
}

/** The bundle the source calls for (keys sorted), and every computed-key error. */
export function extractBundle(root) {
  const bundle = {};
  const errors = [];
  for (const file of [...sourceFiles(root, SOURCE_DIR), ...sourceFiles(root, WEBVIEW_DIR)]) {
    const r = extractFrom(file, readFileSync(join(root, file), 'utf8'));
    errors.push(...r.errors);
    for (const m of r.messages) bundle[m.key] = m.value;
  }
  const sorted = Object.fromEntries(Object.keys(bundle).sort().map((k) => [k, bundle[k]]));
  return { bundle: sorted, errors };
}

/** The file's text as the script writes it: two-space JSON and a final newline. */
export const bundleText = (bundle) => JSON.stringify(bundle, null, 2) + '\n';
