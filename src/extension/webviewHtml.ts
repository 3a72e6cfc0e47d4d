import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import { L10N_ELEMENT_ID } from '../shared/pageL10n';

/** Webview options every panel of ours uses: scripts on, forms off, files only from dist/webview. */
export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
  return { enableScripts: true, enableForms: false, localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist', 'webview')] };
}

const escapeAttr = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
/** JSON safe inside a script element: no `</script>` or `<!--` can close or change it. */
const scriptJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');

/**
 * The page shell: a strict CSP (nothing by default; our script by nonce; styles from the webview's
 * own origin), one stylesheet, one script. No icon font: no page draws a codicon, and the font's
 * 90 KB stylesheet was a tenth of a small model's first paint. Data never goes into this HTML; the
 * page asks for it with `ready`. The page's strings in the user's language come with it: VS Code's
 * loaded bundle for this extension (none in English) as an inert JSON block that
 * webview/shared/l10n.ts reads before anything is drawn.
 */
export function webviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, bundle: string, title: string): string {
  const nonce = randomBytes(18).toString('base64');
  const asset = (f: string) => webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview', f)).toString();
  const csp = [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src ${webview.cspSource} 'nonce-${nonce}'`,
    `img-src ${webview.cspSource} data:`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="${escapeAttr(vscode.env.language)}">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeAttr(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${escapeAttr(asset(`${bundle}.css`))}">
<title>${escapeAttr(title)}</title>
</head>
<body>
<div id="app" role="application"></div>
<script type="application/json" id="${L10N_ELEMENT_ID}" nonce="${nonce}">${scriptJson(vscode.l10n.bundle ?? {})}</script>
<script nonce="${nonce}" src="${escapeAttr(asset(`${bundle}.js`))}"></script>
</body>
</html>`;
}
