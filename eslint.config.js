// ESLint flat config: typescript-eslint's type-checked rules on TypeScript, plain recommended rules on
// the JavaScript scripts and configs. Formatting is Prettier's job (`prettier --check` in `npm run lint`).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    // scripts/consumers/: stand-alone services compiled against the packed tarball by pack:check.
    ignores: [
      'dist/',
      'node_modules/',
      'bench/out/',
      'coverage/',
      '.tmp/',
      'charts/**/templates/',
      'scripts/consumers/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: {
        // Type information from tsconfig.json (src, test, bench, scripts/*.ts, examples).
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // A dropped promise in shutdown code is a lost error or a drain that never waits: keep it an error.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // node:test's test()/describe()/it() return promises the runner itself awaits.
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['test', 'it', 'describe', 'suite', 'only', 'skip', 'todo'],
            },
          ],
        },
      ],
      // House style: factories return closures whose methods work detached (`const { shutdown } = kg`,
      // `keep(drainer, drainer.detach)`); this rule assumes class methods that need `this`.
      // A user-supplied object (a Logger, say pino) may still need `this`: call its methods on it.
      '@typescript-eslint/unbound-method': 'off',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' },
      ],
    },
  },
  {
    // Tests build async stand-ins that need no await (`async () => true` as an async check) and throw
    // non-Errors on purpose to prove the code copes with them.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/only-throw-error': 'off',
      '@typescript-eslint/prefer-promise-reject-errors': 'off',
    },
  },
  {
    // Plain JavaScript (scripts/*.mjs, this file) is outside tsconfig.json: lint it without types.
    files: ['**/*.{js,mjs,cjs}'],
    extends: [tseslint.configs.disableTypeChecked],
    rules: {
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
);
