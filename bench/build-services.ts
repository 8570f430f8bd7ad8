/**
 * Compiles the benchmark services (and the parts of src they import) to JavaScript under
 * bench/out/build. A pod started through tsx costs ~0.5 s of CPU and ~85 MB; compiled, ~0.08 s and
 * ~45 MB. The side-by-side runs start dozens of pods on two cores, and their start-up must not
 * compete with the shutdowns being measured.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = new URL('./', import.meta.url);

/** Returns the path of a compiled service module, e.g. `servicePath('kubegrace')`. */
export function servicePath(tool: string): string {
  return fileURLToPath(new URL(`out/build/bench/services/${tool}.js`, here));
}

/** Incremental: a rerun with no change takes about a second. Throws with tsc's output on failure. */
export function buildServices(): void {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const result = spawnSync(
    process.execPath,
    [tsc, '-p', fileURLToPath(new URL('tsconfig.services.json', here))],
    {
      encoding: 'utf8',
    },
  );
  if (result.status !== 0) {
    throw new Error(`compiling bench/services failed:\n${result.stdout}${result.stderr}`);
  }
}
