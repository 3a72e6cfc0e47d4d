/**
 * The page's strings in the user's language. The host puts `vscode.l10n.bundle` into the page's
 * HTML as a JSON block (src/extension/webviewHtml.ts), so every string is there before the first
 * message. `t` takes the English message as its key, as `vscode.l10n.t` does, so one bundle
 * (l10n/bundle.l10n.json, which `npm run l10n` extracts from the extension and the pages) serves both.
 */
import { L10N_ELEMENT_ID, parseBundle, translator } from '../../src/shared/pageL10n';

/** `message` in the user's language (English when untranslated), `{0}`, `{1}`… replaced by `args`. */
export const t = translator(parseBundle(document.getElementById(L10N_ELEMENT_ID)?.textContent));
