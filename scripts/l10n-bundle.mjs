// `npm run l10n`: writes l10n/bundle.l10n.json from the l10n.t calls in src/extension and the t calls of webview/ (see
// scripts/l10n.mjs). A computed message is reported with its file:line and nothing is written.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUNDLE_FILE, bundleText, extractBundle } from './l10n.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { bundle, errors } = extractBundle(root);
if (errors.length) {
  for (const e of errors) console.error(e);
  console.error(`${errors.length} l10n.t call(s) with a computed message; ${BUNDLE_FILE} not written.`);
  process.exit(1);
}
mkdirSync(join(root, dirname(BUNDLE_FILE)), { recursive: true });
writeFileSync(join(root, BUNDLE_FILE), bundleText(bundle));
console.log(`${BUNDLE_FILE}: ${Object.keys(bundle).length} messages`);
