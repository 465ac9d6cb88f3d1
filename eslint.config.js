// Flat config. The boundary rules below keep the data plane independent of the
// control plane (a proxy must run without control-plane code loaded) and keep the
// CLI a leaf that nothing else depends on.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

const noCli = { group: ['**/cli/**', '**/cli/*'], message: 'Nothing imports cli/: it is the leaf of the dependency graph.' };
const noControl = { group: ['**/control/**', '**/control/*'], message: 'proxy/ must not import control/ (see docs/architecture.md).' };
const noProxy = { group: ['**/proxy/**', '**/proxy/*'], message: 'control/ must not import proxy/.' };

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.weft/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-restricted-imports': ['error', { patterns: [noCli] }],
    },
  },
  {
    files: ['src/proxy/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [noCli, noControl] }] },
  },
  {
    files: ['src/control/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [noCli, noProxy] }] },
  },
  {
    // The CLI is the composition root: it may import everything.
    files: ['src/cli/**/*.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    // Tests and benchmarks drive the built CLI as a process and may import anything.
    files: ['test/**/*.ts', 'bench/**/*.ts', '**/*.test.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
);
