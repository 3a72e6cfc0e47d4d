// Lint enforces the boundaries design.md draws: core never sees vscode or the DOM, and only
// core/node touches Node's fs; the extension holds no format logic (it imports core's index);
// the webview talks to the host only through the shared protocol.
import { builtinModules } from 'node:module';
import tseslint from 'typescript-eslint';

const noVscode = { name: 'vscode', message: 'src/core must not import vscode (design.md: the boundary that matters).' };
// Other runtimes (webviews, the protocols they share) see no Node built-in and only core's types.
const otherRuntime = (extra) => ({
  'no-restricted-imports': 'off',
  '@typescript-eslint/no-restricted-imports': ['error', {
    paths: [noVscode],
    patterns: [
      { group: [...builtinModules, ...builtinModules.map((m) => `node:${m}`)], message: 'Webviews and src/shared run without Node.' },
      { group: ['**/core/**', '!**/core/types'], message: 'Outside core, take core\'s types from src/core/types.ts (type-only).' },
      { group: ['**/core/types'], allowTypeImports: true, message: 'src/core/types.ts is type-only: use `import type`.' },
      ...extra,
    ],
  }],
});
const nodeIo = ['fs', 'fs/promises', 'node:fs', 'node:fs/promises', 'child_process', 'node:child_process'].map((name) => ({
  name,
  message: 'Only src/core/node/ adapters touch the file system or processes.',
}));

export default tseslint.config(
  { ignores: ['dist/**', 'out/**', 'node_modules/**', '.vscode-test/**', '*.vsix'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      eqeqeq: ['error', 'always'],
    },
  },
  {
    files: ['src/core/**/*.ts'],
    ignores: ['src/core/node/**'],
    rules: { 'no-restricted-imports': ['error', { paths: [noVscode, ...nodeIo], patterns: ['**/extension/**', '**/cli/**', '**/webview/**'] }] },
  },
  {
    files: ['src/core/node/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: [noVscode], patterns: ['**/extension/**', '**/cli/**', '**/webview/**'] }] },
  },
  {
    files: ['src/shared/**/*.ts'],
    rules: otherRuntime([{ group: ['**/extension/**'], message: 'src/shared is imported by the extension, not the other way.' }]),
  },
  {
    files: ['src/extension/**/*.ts', 'src/cli/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['**/core/*/**', '!**/core/node/index'], message: 'Import core through src/core/index.ts (its pure surface) or src/core/node/index.ts (its Node adapters).' },
          { group: ['**/webview/**'], message: 'The webview is another runtime; share types through src/shared.' },
        ],
      }],
    },
  },
  {
    files: ['webview/**/*.ts'],
    rules: otherRuntime([{ group: ['**/extension/**'], message: 'The webview talks to the host only through src/shared.' }]),
  },
);
