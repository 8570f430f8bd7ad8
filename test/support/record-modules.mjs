// `node --import ./test/support/record-modules.mjs …`: appends the URL of every module the process
// resolves to the file named by KUBEGRACE_RECORD_MODULES, one a line, and at exit every CommonJS module
// in the require cache (a package loaded through require() inside a CommonJS dependency is seen there).
// Used by test/imports.test.ts to prove which packages an entry point loads.
import { appendFileSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { pathToFileURL } from 'node:url';

const log = process.env.KUBEGRACE_RECORD_MODULES;
if (!log) throw new Error('record-modules.mjs: set KUBEGRACE_RECORD_MODULES to a file path');
const record = (url) => appendFileSync(log, `${url}\n`);

if (typeof nodeModule.registerHooks === 'function') {
  // Node ≥ 22.15: in-thread hooks, which see require() as well as import.
  nodeModule.registerHooks({
    resolve(specifier, context, next) {
      const result = next(specifier, context);
      record(result.url);
      return result;
    },
  });
} else {
  // Node 20: the off-thread loader hooks (import only; the require cache below covers the rest).
  nodeModule.register(new URL('./record-modules-hooks.mjs', import.meta.url), { data: { log } });
}

process.on('exit', () => {
  const cache = nodeModule.createRequire(import.meta.url).cache;
  for (const path of Object.keys(cache)) record(pathToFileURL(path).href);
});
