/**
 * Finds English shown to the user outside `t()` in the webview pages (webview/**): a string or
 * template literal (or an expression built from one) that reaches the page as text — textContent,
 * title, placeholder, aria-label and alt (assigned, set as an attribute, or in an attributes object),
 * the text children of the DOM helpers `el()`/`custom()` and of append/replaceChildren, column
 * titles, Error messages (they end up in status lines), and the arguments of the page's own helpers
 * that pass a parameter on to one of those (`button(id, 'Start')`). Beyond those places, any
 * literal that reads as words (two words, or one capitalised word, as in a table of labels) counts
 * unless it sits where text never goes: a comparison, a key, a class name, a selector, an event
 * name, an import. l10nWebview.test.ts runs it over webview/.
 */
import ts from 'typescript';
import { isPageTCall, pageTNames } from '../../scripts/l10n.mjs';
import { literalIn, nameOf, templateText } from './literals';
import type { Offender } from './userVisibleLiterals';

// What a page shows that is not language, so not translated.
const NOT_PROSE: readonly RegExp[] = [
  /^(NaN|[+−-]Inf|NaN\/Inf)$/, // IEEE names of non-finite values
  /^[A-Z]{2,}$/, // acronyms (API)
  /^[a-z]+(_[a-z]+)+$/, // parameter names as the server takes them (top_p)
  /^dtype$/, // NumPy's name, as the CLI and config.json write it
  /^(auto|float32|bfloat16|float16)$/, // dtype values, written as the engines take them
  /^[\w*-]+(\.[\w-]+)+$/, // file names (config.json, *.safetensors)
];
const isProse = (text: string): boolean => /\p{L}/u.test(text) && !NOT_PROSE.some((r) => r.test(text.trim()));
/** Reads as words: two words of letters in a row, or one capitalised word ('Ready', 'Elements'). */
const readsAsWords = (text: string): boolean => /(^|\s)\p{L}{2,}[,.:;!?…]?\s+\p{L}{2,}/u.test(text) || /^\p{Lu}\p{Ll}+[.…:]?$/u.test(text.trim());

/** Properties whose value the page shows (assigned on an element, or in an attributes object). */
const TEXT_PROPERTIES = new Set(['textContent', 'innerText', 'innerHTML', 'title', 'placeholder', 'ariaLabel', 'alt', 'label', 'ariaValueText', 'ariaDescription']);
/** Attributes whose value is shown or read out. */
const TEXT_ATTRIBUTES = new Set(['title', 'placeholder', 'aria-label', 'alt', 'label', 'aria-valuetext', 'aria-description', 'aria-placeholder', 'aria-roledescription']);
/** Calls whose arguments become text nodes. */
const TEXT_CALLS = new Set(['append', 'prepend', 'replaceChildren', 'before', 'after', 'replaceWith', 'createTextNode']);
/** The DOM helpers of webview/shared/dom.ts: (tag, attributes, ...text children). */
const DOM_HELPERS = new Set(['el', 'custom']);
/** Calls whose string arguments are names, selectors or CSS, never text. */
const NAME_CALLS = new Set(['addEventListener', 'removeEventListener', 'querySelector', 'querySelectorAll', 'getElementById', 'closest', 'matches', 'setProperty', 'getPropertyValue', 'removeAttribute', 'toggleAttribute', 'hasAttribute', 'createElement', 'add', 'remove', 'toggle', 'contains', 'postMessage', 'request']);
/** Object keys whose values are ids, classes and protocol words, never text. */
const NAME_KEYS = new Set(['type', 'id', 'class', 'className', 'role', 'for', 'name', 'value', 'key', 'list', 'rel', 'variant', 'align', 'sortKey', 'open', 'mode', 'status', 'kind']);
/** KeyboardEvent.key values the pages listen for. */
const KEY_NAMES = /^(Enter|Escape|Tab|Home|End|Space|Backspace|Delete|Arrow(Up|Down|Left|Right)|Page(Up|Down))$/;

const keyOf = (n: ts.PropertyName): string | undefined => (ts.isIdentifier(n) || ts.isStringLiteral(n) ? n.text : undefined);
/** Whether `e` is (or is built from) one of `names`: a parameter passed on to a place that shows it. */
function mentions(e: ts.Expression, names: ReadonlySet<string>): boolean {
  let found = false;
  const visit = (n: ts.Node): void => {
    if (found) return;
    if (ts.isIdentifier(n) && names.has(n.text)) found = true;
    else if (!ts.isFunctionLike(n)) ts.forEachChild(n, visit);
  };
  visit(e);
  return found;
}

/** A local function: its name and parameter names (for the helpers that pass text on). */
interface LocalFunction {
  readonly name: string;
  readonly params: readonly string[];
  readonly body: ts.Node;
}

function localFunctions(source: ts.SourceFile): LocalFunction[] {
  const out: LocalFunction[] = [];
  const params = (f: ts.SignatureDeclarationBase) => f.parameters.map((p) => (ts.isIdentifier(p.name) ? p.name.text : ''));
  const visit = (n: ts.Node): void => {
    if (ts.isFunctionDeclaration(n) && n.name && n.body) out.push({ name: n.name.text, params: params(n), body: n.body });
    if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && n.initializer && (ts.isArrowFunction(n.initializer) || ts.isFunctionExpression(n.initializer)))
      out.push({ name: n.name.text, params: params(n.initializer), body: n.initializer.body });
    ts.forEachChild(n, visit);
  };
  visit(source);
  return out;
}

/** Every expression in `root` that the page shows as text, given which helper parameters are shown. */
function textSinks(root: ts.Node, shownParams: ReadonlyMap<string, ReadonlySet<number>>, pageT: ReadonlySet<string>): ts.Expression[] {
  const out: ts.Expression[] = [];
  const visit = (n: ts.Node): void => {
    // Inside t() everything is the message and its arguments.
    if (isPageTCall(n, pageT)) return;
    if (ts.isCallExpression(n) || ts.isNewExpression(n)) {
      const name = nameOf(n.expression);
      const args = n.arguments ?? [];
      if (name && DOM_HELPERS.has(name)) out.push(...args.slice(2));
      if (name && TEXT_CALLS.has(name)) out.push(...args);
      if (name === 'setAttribute' && args[0] && ts.isStringLiteralLike(args[0]) && TEXT_ATTRIBUTES.has(args[0].text) && args[1]) out.push(args[1]);
      if (name === 'insertAdjacentText' && args[1]) out.push(args[1]);
      if (ts.isNewExpression(n) && name === 'Error' && args[0]) out.push(args[0]);
      const shown = name === undefined ? undefined : shownParams.get(name);
      if (shown && ts.isCallExpression(n)) args.forEach((a, i) => shown.has(i) && out.push(a));
    }
    // Column titles, attributes objects, helper options: { title: …, placeholder: …, 'aria-label': … }.
    if (ts.isPropertyAssignment(n)) {
      const key = keyOf(n.name);
      if (key && (TEXT_PROPERTIES.has(key) || TEXT_ATTRIBUTES.has(key))) out.push(n.initializer);
    }
    if (ts.isBinaryExpression(n) && n.operatorToken.kind === ts.SyntaxKind.EqualsToken && ts.isPropertyAccessExpression(n.left) && TEXT_PROPERTIES.has(n.left.name.text)) out.push(n.right);
    ts.forEachChild(n, visit);
  };
  visit(root);
  return out;
}

/** Which parameters of the file's own helpers reach a place that shows text (to a fixed point: helpers call helpers). */
function shownParameters(functions: readonly LocalFunction[], pageT: ReadonlySet<string>): Map<string, Set<number>> {
  const shown = new Map<string, Set<number>>();
  for (let changed = true, round = 0; changed && round < 10; round++) {
    changed = false;
    for (const f of functions) {
      const sinks = textSinks(f.body, shown, pageT);
      f.params.forEach((p, i) => {
        if (!p || shown.get(f.name)?.has(i) || !sinks.some((s) => mentions(s, new Set([p])))) return;
        shown.set(f.name, (shown.get(f.name) ?? new Set()).add(i));
        changed = true;
      });
    }
  }
  return shown;
}

/** Where a literal never becomes text: keys, comparisons, class names, selectors, event names, imports. */
function inNameContext(lit: ts.Node): boolean {
  const p = lit.parent;
  if (ts.isImportDeclaration(p) || ts.isExportDeclaration(p) || ts.isExternalModuleReference(p) || ts.isImportTypeNode(p) || ts.isLiteralTypeNode(p)) return true;
  if (ts.isCaseClause(p) || ts.isElementAccessExpression(p)) return true;
  if (ts.isBinaryExpression(p) && [ts.SyntaxKind.EqualsEqualsEqualsToken, ts.SyntaxKind.ExclamationEqualsEqualsToken, ts.SyntaxKind.EqualsEqualsToken, ts.SyntaxKind.ExclamationEqualsToken].includes(p.operatorToken.kind)) return true;
  if (ts.isBinaryExpression(p) && p.operatorToken.kind === ts.SyntaxKind.EqualsToken && ts.isPropertyAccessExpression(p.left) && ['className', 'key'].includes(p.left.name.text)) return true;
  if ((ts.isPropertyAssignment(p) && p.name === lit) || (ts.isPropertyAssignment(p) && NAME_KEYS.has(keyOf(p.name) ?? ''))) return true;
  if (ts.isCallExpression(p)) {
    const name = nameOf(p.expression);
    if (name && NAME_CALLS.has(name)) return true;
    if (name && (DOM_HELPERS.has(name) || name === 'setAttribute') && p.arguments[0] === lit) return true;
  }
  return KEY_NAMES.test(ts.isStringLiteralLike(lit) ? lit.text : '');
}

export function webviewLiterals(file: string, text: string): Offender[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const pageT = pageTNames(source);
  const found = new Map<number, Offender>();
  const record = (lit: ts.Node): void => {
    const start = lit.getStart(source);
    found.set(start, { file, line: source.getLineAndCharacterOfPosition(start).line + 1, text: lit.getText(source).replace(/\s+/g, ' ').slice(0, 120) });
  };
  // Places that show text.
  for (const e of textSinks(source, shownParameters(localFunctions(source), pageT), pageT)) {
    const lit = literalIn(e, isProse);
    if (lit) record(lit);
  }
  // Anything else that reads as words, outside t() and the places text never goes.
  const visit = (n: ts.Node): void => {
    if (isPageTCall(n, pageT)) return;
    const words = ts.isStringLiteralLike(n) ? readsAsWords(n.text) && isProse(n.text) : ts.isTemplateExpression(n) && readsAsWords(templateText(n));
    if (words && !inNameContext(n)) record(n);
    ts.forEachChild(n, visit);
  };
  visit(source);
  return [...found].sort(([a], [b]) => a - b).map(([, o]) => o);
}
