// Lint rules: typescript-eslint's recommended set, plus the project's standing rules
// that keep workflows deterministic and product code away from test fixtures.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test/fixtures/host/python/**', '.cache/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.mjs', '**/*.cjs'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        require: 'readonly',
        module: 'writable',
        __dirname: 'readonly',
        __filename: 'readonly',
        URL: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
      },
    },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:*', 'fs', 'path', 'os', 'child_process', 'http', 'https', 'net'],
              message: 'workflows/ must stay deterministic: no Node APIs.',
            },
            { group: ['undici', 'execa', 'tar'], message: 'workflows/ must not do I/O; call an activity.' },
            {
              group: ['../activities/*', '../worker/*', '../client/*'],
              allowTypeImports: true,
              message: 'workflows/ may import only types from other layers.',
            },
            { group: ['../test/*'], message: 'Product code reaches fixtures through configuration only.' },
          ],
        },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: 'Use Temporal deterministic APIs.' },
        { object: 'Date', property: 'now', message: 'Use workflowTime() from workflows/clock.ts.' },
      ],
    },
  },
  {
    files: ['activities/**/*.ts', 'worker/**/*.ts', 'client/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['../test/*', '../../test/*'],
              message: 'Product code reaches fixtures through configuration only.',
            },
          ],
        },
      ],
    },
  },
);
