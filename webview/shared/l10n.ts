/**
 * The page's strings in the user's language. The host puts `vscode.l10n.bundle` (English message →
 * translation; none when VS Code runs in English) into the page's HTML as a JSON block (see
 * src/extension/webviewHtml.ts), so every string is there before the first message. `t` takes the
 * English message as its key, as `vscode.l10n.t` does, so one bundle (l10n/bundle.l10n.json, which
 * `npm run l10n` extracts from both sides) serves the extension and its pages.
 */
import { L10N_ELEMENT_ID } from '../../src/shared/pageL10n';

function loadBundle(): Readonly<Record<string, string>> {
  const text = document.getElementById(L10N_ELEMENT_ID)?.textContent;
  if (!text) return {};
  try {
    const v: unknown = JSON.parse(text);
    if (!v || typeof v !== 'object' || Array.isArray(v)) return {};
    // Only string translations: anything else in the block is not one, and English stands in.
    return Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string'));
  } catch {
    return {};
  }
}

const bundle = loadBundle();

/** `message` in the user's language (English when untranslated), `{0}`, `{1}`… replaced by `args`. */
export function t(message: string, ...args: (string | number)[]): string {
  const text = bundle[message] ?? message;
  return text.replace(/\{(\d+)\}/g, (m, i: string) => (Number(i) < args.length ? String(args[Number(i)]) : m));
}
