// Types of scripts/l10n.mjs for the unit test that imports it.
import type * as ts from 'typescript';

export const BUNDLE_FILE: string;
export const SOURCE_DIR: string;
export const WEBVIEW_DIR: string;
export type BundleValue = string | { message: string; comment: string[] };
export interface Extracted {
  readonly key: string;
  readonly value: BundleValue;
  /** file:line */
  readonly at: string;
}
export function isL10nCall(node: ts.Node): node is ts.CallExpression;
/** The local names `t` is imported under from a page's l10n module. */
export function pageTNames(source: ts.SourceFile): Set<string>;
export function isPageTCall(node: ts.Node, names: ReadonlySet<string>): node is ts.CallExpression;
export function extractFrom(fileName: string, text: string): { messages: Extracted[]; errors: string[] };
export function sourceFiles(root: string, dir?: string): string[];
export function extractBundle(root: string): { bundle: Record<string, BundleValue>; errors: string[] };
export function bundleText(bundle: Record<string, BundleValue>): string;
