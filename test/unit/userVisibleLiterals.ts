/**
 * Finds English shown to the user outside `l10n.t` in extension code: a string or template literal
 * (or an expression built from one) in a place VS Code shows, such as a notification, its buttons, a
 * quick pick's items and title, an input box's prompt, a dialog's labels, a progress title, a status
 * bar item or tree item, a webview panel's title, a task's name, or an error's message. l10n.test.ts
 * runs it over src/extension; it reads the syntax tree, so a literal anywhere else (an id, a CLI
 * argument, a log line) does not count.
 */
import ts from 'typescript';
import { isL10nCall } from '../../scripts/l10n.mjs';

export interface Offender {
  readonly file: string;
  readonly line: number;
  /** The literal (or the expression holding it) as written, on one line. */
  readonly text: string;
}

// Strings that are not prose, so not translated.
const NOT_PROSE: readonly RegExp[] = [
  /^JAX Serve$/, // the product name: the output channel, the activity bar
  /^\w+(\.\w+)+( \/ \w+(\.\w+)*)*$/, // code: dotted names (command ids, Python APIs such as flax.serialization.from_bytes), alternatives joined by ' / '
  /^(bf16|f16|f32)$/, // element types, written as the CLI takes them
];
// A codicon ($(sync~spin)) is an icon, not a word; only what is left of the text must be prose to count.
const CODICON = /\$\([\w~-]+\)/g;
const isProse = (text: string): boolean => /\p{L}/u.test(text.replace(CODICON, '')) && !NOT_PROSE.some((r) => r.test(text));

/** Calls whose every argument is shown (a message and its buttons). */
const MESSAGE_CALLS = new Set(['showInformationMessage', 'showWarningMessage', 'showErrorMessage', 'setStatusBarMessage']);
/** Object properties VS Code shows: quick pick items and options, input boxes, dialogs, progress, message items. */
const SHOWN_PROPERTIES = new Set(['title', 'placeHolder', 'placeholder', 'prompt', 'tooltip', 'label', 'description', 'detail', 'message', 'openLabel', 'saveLabel', 'validationMessage']);
/** Properties assigned on an object VS Code shows (a status bar item, a tree item, a quick pick, a webview panel). */
const SHOWN_ASSIGNMENTS = new Set([...SHOWN_PROPERTIES, 'text', 'name']);
/** `new X(...)` / `x.f(...)` arguments shown, by position. */
const SHOWN_ARGUMENTS: Readonly<Record<string, number>> = {
  TreeItem: 0, // the label
  Diagnostic: 1, // the message in Problems
  Task: 2, // the name in the task list
  createWebviewPanel: 1, // the tab title
  Error: 0, // messages reach a notification through the command that threw
  JaxServeError: 1,
};

const nameOf = (e: ts.Expression): string | undefined => (ts.isIdentifier(e) ? e.text : ts.isPropertyAccessExpression(e) ? e.name.text : undefined);

/** The literal `e` holds or is built from (concatenation, template, either branch of a choice), if any. */
function literalIn(e: ts.Expression): ts.Node | undefined {
  if (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isNonNullExpression(e) || ts.isSatisfiesExpression(e)) return literalIn(e.expression);
  if (ts.isStringLiteralLike(e)) return isProse(e.text) ? e : undefined;
  if (ts.isTemplateExpression(e)) return isProse([e.head.text, ...e.templateSpans.map((s) => s.literal.text)].join(' ')) ? e : undefined;
  if (ts.isConditionalExpression(e)) return literalIn(e.whenTrue) ?? literalIn(e.whenFalse);
  if (ts.isBinaryExpression(e) && [ts.SyntaxKind.PlusToken, ts.SyntaxKind.QuestionQuestionToken, ts.SyntaxKind.BarBarToken].includes(e.operatorToken.kind)) return literalIn(e.left) ?? literalIn(e.right);
  return undefined;
}

/** What a function returns: `validateInput`'s message. Nested functions are theirs, not its. */
function returned(fn: ts.Expression): ts.Expression[] {
  if (!ts.isArrowFunction(fn) && !ts.isFunctionExpression(fn)) return [];
  if (!ts.isBlock(fn.body)) return [fn.body];
  const out: ts.Expression[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isReturnStatement(n) && n.expression) out.push(n.expression);
    if (!ts.isFunctionLike(n)) ts.forEachChild(n, visit);
  };
  ts.forEachChild(fn.body, visit);
  return out;
}

export function userVisibleLiterals(file: string, text: string): Offender[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found = new Map<number, Offender>();
  const record = (lit: ts.Node): void => {
    const start = lit.getStart(source);
    found.set(start, { file, line: source.getLineAndCharacterOfPosition(start).line + 1, text: lit.getText(source).replace(/\s+/g, ' ').slice(0, 120) });
  };
  const flag = (e: ts.Expression | undefined): void => {
    const lit = e && literalIn(e);
    if (lit) record(lit);
  };
  const visit = (n: ts.Node): void => {
    // Inside l10n.t everything is the message and its arguments.
    if (isL10nCall(n)) return;
    if (ts.isCallExpression(n) || ts.isNewExpression(n)) {
      const name = nameOf(n.expression);
      const args = n.arguments ?? [];
      if (name && MESSAGE_CALLS.has(name)) args.forEach(flag);
      if (name === 'showQuickPick' && args[0] && ts.isArrayLiteralExpression(args[0])) args[0].elements.forEach(flag);
      const at = name === undefined ? undefined : SHOWN_ARGUMENTS[name];
      if (at !== undefined && (ts.isNewExpression(n) || name === 'createWebviewPanel')) flag(args[at]);
    }
    if (ts.isPropertyAssignment(n) && (ts.isIdentifier(n.name) || ts.isStringLiteral(n.name))) {
      const prop = n.name.text;
      if (SHOWN_PROPERTIES.has(prop)) flag(n.initializer);
      if (prop === 'validateInput') returned(n.initializer).forEach(flag);
      // A dialog filter's name ("Python") is shown; its extensions are not.
      if (prop === 'filters' && ts.isObjectLiteralExpression(n.initializer)) {
        for (const f of n.initializer.properties) if (f.name && (ts.isIdentifier(f.name) || ts.isStringLiteral(f.name)) && isProse(f.name.text)) record(f.name);
      }
    }
    if (ts.isBinaryExpression(n) && n.operatorToken.kind === ts.SyntaxKind.EqualsToken && ts.isPropertyAccessExpression(n.left) && SHOWN_ASSIGNMENTS.has(n.left.name.text)) flag(n.right);
    ts.forEachChild(n, visit);
  };
  visit(source);
  return [...found.values()].sort((a, b) => a.line - b.line);
}
