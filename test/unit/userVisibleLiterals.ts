/**
 * Finds English shown to the user outside `l10n.t` in extension code: a string or template literal
 * (or an expression built from one, directly or through a same-file `const`) in a place VS Code
 * shows, such as a notification, its buttons, a quick pick's items and title, an input box's prompt,
 * a dialog's labels, a progress title, a status bar item or tree item, a webview panel's title, an
 * output channel's name, a Markdown hover, a task's name, an error's message, or an argument of
 * l10n.t (shown inside the translated message). l10n.test.ts runs it over src/extension; it reads
 * the syntax tree, so a literal anywhere else (an id, a CLI argument, a log line) does not count.
 */
import ts from 'typescript';
import { isL10nCall } from '../../scripts/l10n.mjs';
import { nameOf } from './literals';

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
/** `new X(...)` arguments shown, by position. */
const SHOWN_NEW_ARGUMENTS: Readonly<Record<string, number>> = {
  TreeItem: 0, // the label
  Diagnostic: 1, // the message in Problems
  Task: 2, // the name in the task list
  MarkdownString: 0, // a hover or tooltip
  Error: 0, // messages reach a notification through the command that threw
  JaxServeError: 1,
};
/** `x.f(...)` arguments shown, by position. */
const SHOWN_CALL_ARGUMENTS: Readonly<Record<string, number>> = {
  createWebviewPanel: 1, // the tab title
  createOutputChannel: 0, // the Output view's list ("JAX Serve" alone is a name, not prose)
  appendMarkdown: 0, // a MarkdownString's text
  appendText: 0,
};

/** The `const` declaration `id` refers to in its file (the nearest enclosing one), if any; a parameter of that name in between hides it. */
function constFor(id: ts.Identifier): ts.VariableDeclaration | undefined {
  const declares = (d: ts.VariableDeclaration): boolean => ts.isIdentifier(d.name) && d.name.text === id.text;
  for (let scope: ts.Node | undefined = id.parent; scope; scope = scope.parent) {
    if (ts.isFunctionLike(scope) && scope.parameters.some((p) => ts.isIdentifier(p.name) && p.name.text === id.text)) return undefined;
    const statements = ts.isBlock(scope) || ts.isSourceFile(scope) || ts.isModuleBlock(scope) ? scope.statements : ts.isCaseClause(scope) || ts.isDefaultClause(scope) ? scope.statements : undefined;
    for (const st of statements ?? []) {
      if (!ts.isVariableStatement(st)) continue;
      const list = st.declarationList;
      const d = list.declarations.find(declares);
      if (d) return list.flags & ts.NodeFlags.Const ? d : undefined;
    }
  }
  return undefined;
}

/**
 * The literals `e` holds or is built from: itself, a concatenation's or a template's parts, both
 * branches of a choice or a default (`phase ?? 'starting'`), an array's elements, the arguments of a
 * call that wraps text (`oneLine('…')`), and what a same-file `const` it names holds. l10n.t's
 * message is translated; its later arguments are looked at like any other value. A name inside a
 * call is not followed: `title(engines)` or `ids.join(', ')` computes what it shows from its inputs
 * (ids, engine names), where `oneLine('Failed')` and `phase ?? 'starting'` show their text as it is.
 */
function literalsIn(e: ts.Expression, seen = new Set<ts.Node>(), follow = true): ts.Node[] {
  if (seen.has(e)) return [];
  seen.add(e);
  const inner = (x: ts.Expression): ts.Node[] => literalsIn(x, seen, follow);
  const called = (x: ts.Expression): ts.Node[] => literalsIn(x, seen, false);
  if (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isNonNullExpression(e) || ts.isSatisfiesExpression(e) || ts.isSpreadElement(e) || ts.isAwaitExpression(e)) return inner(e.expression);
  if (ts.isStringLiteralLike(e)) return isProse(e.text) ? [e] : [];
  if (ts.isTemplateExpression(e)) {
    const own = isProse([e.head.text, ...e.templateSpans.map((s) => s.literal.text)].join(' ')) ? [e] : [];
    return [...own, ...e.templateSpans.flatMap((s) => inner(s.expression))];
  }
  if (ts.isConditionalExpression(e)) return [...inner(e.whenTrue), ...inner(e.whenFalse)];
  if (ts.isBinaryExpression(e) && [ts.SyntaxKind.PlusToken, ts.SyntaxKind.QuestionQuestionToken, ts.SyntaxKind.BarBarToken].includes(e.operatorToken.kind)) return [...inner(e.left), ...inner(e.right)];
  if (ts.isArrayLiteralExpression(e)) return e.elements.flatMap(inner);
  if (isL10nCall(e)) return e.arguments.slice(1).flatMap(inner);
  if (ts.isCallExpression(e)) {
    // `'text'.trim()` holds its receiver's text; `format('text')` its argument's.
    const receiver = ts.isPropertyAccessExpression(e.expression) ? called(e.expression.expression) : [];
    return [...receiver, ...e.arguments.flatMap(called)];
  }
  if (ts.isIdentifier(e) && follow) {
    const d = constFor(e);
    return d?.initializer ? inner(d.initializer) : [];
  }
  return [];
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
    if (e) literalsIn(e).forEach(record);
  };
  const visit = (n: ts.Node): void => {
    // l10n.t's message is translated; its arguments are shown inside it.
    if (isL10nCall(n)) n.arguments.slice(1).forEach(flag);
    else if (ts.isCallExpression(n) || ts.isNewExpression(n)) {
      const name = nameOf(n.expression);
      const args = n.arguments ?? [];
      if (name && MESSAGE_CALLS.has(name)) args.forEach(flag);
      if (name === 'showQuickPick') flag(args[0]);
      const at = name === undefined ? undefined : ts.isNewExpression(n) ? SHOWN_NEW_ARGUMENTS[name] : SHOWN_CALL_ARGUMENTS[name];
      if (at !== undefined) flag(args[at]);
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
