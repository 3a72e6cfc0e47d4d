/**
 * What the literal scanners share: the literal an expression shows, found through the ways code
 * builds a string (concatenation, a template, either branch of a choice, a fallback).
 */
import ts from 'typescript';

/** A template's text with `{}` where its values go (so `minmax(${a}em, ${b}fr)` reads as CSS, not as words). */
export const templateText = (e: ts.TemplateExpression): string => [e.head.text, ...e.templateSpans.map((s) => s.literal.text)].join('{}');

/** The literal `e` holds or is built from (concatenation, template, either branch of a choice), if any. */
export function literalIn(e: ts.Expression, test: (text: string) => boolean): ts.Node | undefined {
  if (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isNonNullExpression(e) || ts.isSatisfiesExpression(e)) return literalIn(e.expression, test);
  if (ts.isStringLiteralLike(e)) return test(e.text) ? e : undefined;
  if (ts.isTemplateExpression(e)) return test(templateText(e)) ? e : undefined;
  if (ts.isConditionalExpression(e)) return literalIn(e.whenTrue, test) ?? literalIn(e.whenFalse, test);
  if (ts.isBinaryExpression(e) && [ts.SyntaxKind.PlusToken, ts.SyntaxKind.QuestionQuestionToken, ts.SyntaxKind.BarBarToken].includes(e.operatorToken.kind)) return literalIn(e.left, test) ?? literalIn(e.right, test);
  return undefined;
}

/** The name a call or `new` is made through: `f(…)` or `x.f(…)`. */
export const nameOf = (e: ts.Expression): string | undefined => (ts.isIdentifier(e) ? e.text : ts.isPropertyAccessExpression(e) ? e.name.text : undefined);
