/**
 * The pages' strings in the user's language. src/extension/webviewHtml.ts writes VS Code's loaded
 * bundle (`vscode.l10n.bundle`: English message → translation; none in English) into a JSON block
 * with this id; webview/shared/l10n.ts reads it and translates with `translator`.
 */
export const L10N_ELEMENT_ID = 'jax-serve-l10n';

/**
 * A `t` over `bundle`, as `vscode.l10n.t` behaves: the English message is the key, the message
 * itself when it has no translation, and `{0}`, `{1}`… are replaced by the arguments (a
 * placeholder without one stays as written).
 */
export function translator(bundle: Readonly<Record<string, string>>): (message: string, ...args: (string | number)[]) => string {
  return (message, ...args) => {
    const text = Object.hasOwn(bundle, message) ? bundle[message]! : message;
    return text.replace(/\{(\d+)\}/g, (m, i: string) => (Number(i) < args.length ? String(args[Number(i)]) : m));
  };
}

/** The translations in a bundle block's text: its string values; nothing when it is not an object. */
export function parseBundle(text: string | null | undefined): Record<string, string> {
  if (!text) return {};
  try {
    const v: unknown = JSON.parse(text);
    if (!v || typeof v !== 'object' || Array.isArray(v)) return {};
    return Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string'));
  } catch {
    return {};
  }
}
