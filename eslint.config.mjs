// @ts-check
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';
import requireRoles from './eslint-rules/require-roles.cjs';

export default tseslint.config(
  {
    ignores: [
      '**/dist/**',
      'node_modules/**',
      '.data/**',
      'coverage/**',
      'bench/results/**',
      'bench/.venv/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-console': ['error', { allow: ['warn', 'error'] }],
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { custodia: { rules: { 'require-roles': requireRoles } } },
    rules: { 'custodia/require-roles': 'error' },
  },
  {
    files: ['console/**/*.ts', 'console/**/*.tsx'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    files: ['src/cli.ts', 'bench/**', 'test/**', 'bin/**', '*.js', '*.mjs'],
    rules: { 'no-console': 'off' },
  },
  {
    files: ['bin/**/*.js', 'jest.config.js', 'eslint-rules/**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
