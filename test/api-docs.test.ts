/**
 * docs/api.md documents the public surface exactly: for every entry point in package.json `exports`,
 * one row per export, runtime and type-only alike, and no row for anything the entry point does not
 * export. The export lists come from the build as users get it: runtime names by importing dist/,
 * type names from the emitted .d.ts through the TypeScript compiler. Members of the exported
 * interfaces are described in the doc too but not compared here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { ENTRY_POINTS, ROOT } from './support/entry-points.js';

const apiDoc = readFileSync(join(ROOT, 'docs/api.md'), 'utf8');

/** The doc's word for each kind of export; the first three exist at runtime. */
const RUNTIME_KINDS = new Set(['function', 'class', 'object']);
const TYPE_KINDS = new Set(['interface', 'type']);

/** Every name an entry point's .d.ts exports, with its kind as the doc spells it. */
function declaredExports(): Map<string, Map<string, string>> {
  const program = ts.createProgram(
    ENTRY_POINTS.map((e) => e.types),
    {
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      noEmit: true,
      skipLibCheck: true,
      types: ['node'],
    },
  );
  const checker = program.getTypeChecker();
  const result = new Map<string, Map<string, string>>();
  for (const entry of ENTRY_POINTS) {
    const source = program.getSourceFile(entry.types);
    assert.ok(source, `${entry.types} was emitted (npm run build)`);
    const moduleSymbol = checker.getSymbolAtLocation(source);
    assert.ok(moduleSymbol, `${entry.types} is a module`);
    const names = new Map<string, string>();
    for (const exported of checker.getExportsOfModule(moduleSymbol)) {
      const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      const flags = symbol.flags;
      const kind =
        flags & ts.SymbolFlags.Class
          ? 'class'
          : flags & ts.SymbolFlags.Function
            ? 'function'
            : flags & ts.SymbolFlags.Variable
              ? 'object'
              : flags & ts.SymbolFlags.Interface
                ? 'interface'
                : flags & ts.SymbolFlags.TypeAlias
                  ? 'type'
                  : `unknown (flags ${flags})`;
      names.set(exported.getName(), kind);
    }
    result.set(entry.specifier, names);
  }
  return result;
}

/** The rows of the export table under `<!-- exports: <specifier> -->`: name → kind. */
function documentedExports(): Map<string, Map<string, string>> {
  const result = new Map<string, Map<string, string>>();
  const marker = /^<!-- exports: (\S+) -->$/gm;
  for (const match of apiDoc.matchAll(marker)) {
    const specifier = match[1] as string;
    assert.ok(!result.has(specifier), `docs/api.md has two export tables for ${specifier}`);
    const after = apiDoc.slice((match.index ?? 0) + match[0].length).split('\n');
    const rows = new Map<string, string>();
    let inTable = false;
    for (const line of after) {
      if (line.trim() === '' && !inTable) continue;
      if (!line.startsWith('|')) break;
      inTable = true;
      const cells = line.split('|').map((cell) => cell.trim());
      const name = /^`([A-Za-z_$][\w$]*)`$/.exec(cells[1] ?? '')?.[1];
      if (name === undefined) continue; // the header and the separator
      assert.ok(!rows.has(name), `docs/api.md lists ${specifier} ${name} twice`);
      assert.ok((cells[3] ?? '').length > 0, `docs/api.md: ${specifier} ${name} has no description`);
      rows.set(name, cells[2] ?? '');
    }
    result.set(specifier, rows);
  }
  return result;
}

describe('docs/api.md documents every export of every entry point, and nothing else', () => {
  const declared = declaredExports();
  const documented = documentedExports();

  it('has one export table per entry point in package.json', () => {
    assert.deepEqual(
      [...documented.keys()].sort(),
      ENTRY_POINTS.map((e) => e.specifier).sort(),
      'the `<!-- exports: … -->` tables of docs/api.md and the entry points of package.json',
    );
  });

  for (const entry of ENTRY_POINTS) {
    it(`${entry.specifier}: every export has a row with its kind, every row is an export`, async () => {
      const runtime = Object.keys((await import(pathToFileURL(entry.code).href)) as object).sort();
      const types = declared.get(entry.specifier) ?? new Map<string, string>();
      const rows = documented.get(entry.specifier) ?? new Map<string, string>();
      // What loads at runtime is declared, as a value.
      for (const name of runtime) {
        assert.ok(
          RUNTIME_KINDS.has(types.get(name) ?? ''),
          `${entry.specifier} exports ${name} at runtime, but its .d.ts declares it as ${types.get(name) ?? 'nothing'}`,
        );
      }
      for (const [name, kind] of types) {
        if (RUNTIME_KINDS.has(kind)) {
          assert.ok(
            runtime.includes(name),
            `${entry.specifier}: ${name} is declared but not exported at runtime`,
          );
        }
      }
      const undocumented = [...types.keys()].filter((name) => !rows.has(name)).sort();
      const notExported = [...rows.keys()].filter((name) => !types.has(name)).sort();
      assert.deepEqual(
        undocumented,
        [],
        `${entry.specifier} exports these, docs/api.md does not describe them`,
      );
      assert.deepEqual(
        notExported,
        [],
        `docs/api.md describes these, ${entry.specifier} does not export them`,
      );
      for (const [name, kind] of rows) {
        assert.ok(
          RUNTIME_KINDS.has(kind) || TYPE_KINDS.has(kind),
          `docs/api.md: ${entry.specifier} ${name} has kind "${kind}"; use function, class, object, interface or type`,
        );
        assert.equal(kind, types.get(name), `docs/api.md: the kind of ${entry.specifier} ${name}`);
      }
    });
  }

  it('the README links to docs/api.md', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    assert.match(readme, /\]\([^)]*docs\/api\.md\)/);
  });
});
