/**
 * Where a page's translations travel: src/extension/webviewHtml.ts writes VS Code's loaded bundle
 * into a JSON block with this id, and webview/shared/l10n.ts reads it.
 */
export const L10N_ELEMENT_ID = 'jax-serve-l10n';
