// Lint enforces the boundaries design.md draws: core never sees vscode or the DOM, and only
// core/node touches Node's fs; the extension holds no format logic (it imports core's index);
// the webview talks to the host only through the shared protocol.
import tseslint from 'typescript-eslint';

const noVscode = { name: 'vscode', message: 'src/core must not import vscode (design.md: the boundary that matters).' };
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
    rules: { 'no-restricted-imports': ['error', { paths: [noVscode, ...nodeIo], patterns: ['**/core/node/**', '**/extension/**'] }] },
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
    rules: { 'no-restricted-imports': ['error', { paths: [noVscode, ...nodeIo], patterns: ['**/core/**', '**/extension/**'] }] },
  },
);
