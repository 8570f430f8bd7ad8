/** The package's entry points as package.json `exports` lists them, with their built files. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  readonly name: string;
  readonly exports: Readonly<Record<string, string | { readonly types: string; readonly default: string }>>;
  readonly peerDependencies: Readonly<Record<string, string>>;
};

export interface EntryPoint {
  /** As a user imports it: `kubegrace`, `kubegrace/metrics`. */
  readonly specifier: string;
  /** Absolute paths of the emitted declarations and code. */
  readonly types: string;
  readonly code: string;
}

export const ENTRY_POINTS: readonly EntryPoint[] = Object.entries(PACKAGE.exports).flatMap(([key, target]) =>
  typeof target === 'string'
    ? [] // ./package.json
    : [
        {
          specifier: key === '.' ? PACKAGE.name : `${PACKAGE.name}/${key.slice(2)}`,
          types: join(ROOT, target.types),
          code: join(ROOT, target.default),
        },
      ],
);
