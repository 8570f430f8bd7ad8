/**
 * examples/Dockerfile cannot be built here (no container engine), so: a light lint of what matters
 * for a pod (multi-stage, numeric non-root user, exec-form CMD running node directly, only files
 * that exist are copied), agreement with the chart's default command, and the image's layout
 * rebuilt on disk — the same `tsc -p examples/tsconfig.build.json` into dist/ with package.json
 * next to it — started the way the image starts it, and terminated.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { repoRoot, startLoad, within } from './harness.js';

const run = promisify(execFile);
const dockerfile = readFileSync(join(repoRoot, 'examples', 'Dockerfile'), 'utf8');

interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly line: number;
}

/** Instructions with continuation lines joined and comments dropped. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) return;
    if (pending === '') start = index + 1;
    pending += `${line.replace(/\\$/, '')} `;
    if (!line.endsWith('\\')) {
      const match = /^(\S+)\s+(.*)$/.exec(pending.trim());
      if (match?.[1] && match[2] !== undefined)
        out.push({ keyword: match[1].toUpperCase(), args: match[2], line: start });
      pending = '';
    }
  });
  return out;
}

const all = instructions(dockerfile);
const stages = all.reduce<Instruction[][]>((acc, ins) => {
  if (ins.keyword === 'FROM') acc.push([ins]);
  else acc.at(-1)?.push(ins);
  return acc;
}, []);
const final = stages.at(-1) ?? [];

describe('examples/Dockerfile', () => {
  it('is multi-stage, with named build stages and a pinned Node major', () => {
    assert.ok(stages.length >= 2, 'at least a build and a runtime stage');
    for (const stage of stages.slice(0, -1)) {
      assert.match(stage[0]?.args ?? '', / AS [a-z-]+$/i, `line ${stage[0]?.line}: name the stage`);
    }
    for (const stage of stages) {
      assert.match(stage[0]?.args ?? '', /^node:\$\{NODE_VERSION\}-bookworm-slim/);
    }
    assert.match(dockerfile, /^ARG NODE_VERSION=\d+$/m);
  });

  it('runs as a numeric non-root user, so runAsNonRoot can verify it', () => {
    const users = final.filter((i) => i.keyword === 'USER');
    assert.equal(users.length, 1);
    const [uid] = (users[0]?.args ?? '').split(':');
    assert.match(uid ?? '', /^\d+$/);
    assert.notEqual(Number(uid), 0);
    // The chart's podSecurityContext uses the same uid.
    const values = parse(readFileSync(join(repoRoot, 'charts/kubegrace/values.yaml'), 'utf8')) as {
      podSecurityContext: { runAsUser: number };
      command: string[];
    };
    assert.equal(values.podSecurityContext.runAsUser, Number(uid));
  });

  it('starts node directly (PID 1 gets SIGTERM) with the command the chart uses', () => {
    const cmd = final.filter((i) => i.keyword === 'CMD');
    assert.equal(cmd.length, 1);
    const argv = JSON.parse(cmd[0]?.args ?? '') as string[];
    assert.equal(argv[0], 'node', 'exec form, node itself: no shell, no npm start');
    assert.equal(argv[1], 'dist/examples/http/server.js');
    assert.ok(!final.some((i) => i.keyword === 'ENTRYPOINT'), 'no ENTRYPOINT wrapper');
    const values = parse(readFileSync(join(repoRoot, 'charts/kubegrace/values.yaml'), 'utf8')) as {
      command: string[];
    };
    assert.deepEqual(values.command, argv);
    assert.ok(!/npm (start|run)/.test(cmd[0]?.args ?? ''));
  });

  it('copies only files that exist and fetches nothing with ADD', () => {
    assert.ok(!all.some((i) => i.keyword === 'ADD'), 'COPY, not ADD');
    for (const copy of all.filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from'))) {
      const sources = copy.args.split(/\s+/).slice(0, -1);
      for (const source of sources) {
        assert.ok(existsSync(join(repoRoot, source)), `line ${copy.line}: ${source} does not exist`);
      }
    }
    assert.match(dockerfile, /npx tsc -p examples\/tsconfig\.build\.json --outDir \/out/);
    assert.match(dockerfile, /ln -s \/app\/dist\/src\/cli\/main\.js \/usr\/local\/bin\/kubegrace/);
  });

  describe('the image layout, rebuilt on disk', () => {
    const work = mkdtempSync(join(tmpdir(), 'kubegrace-image-'));
    after(() => rmSync(work, { recursive: true, force: true }));

    it('compiles, starts as `node dist/examples/http/server.js`, serves and exits 0 on SIGTERM', async () => {
      const app = join(work, 'app');
      // As the build stage: tsc into /out, package.json next to it; the runtime copies /out to dist.
      await run(
        process.execPath,
        [
          join(repoRoot, 'node_modules/typescript/bin/tsc'),
          '-p',
          'examples/tsconfig.build.json',
          '--outDir',
          join(app, 'dist'),
        ],
        { cwd: repoRoot, timeout: 90_000 },
      );
      cpSync(join(repoRoot, 'package.json'), join(app, 'dist', 'package.json'));
      symlinkSync(join(repoRoot, 'node_modules'), join(app, 'node_modules'));

      const version = await run(process.execPath, ['dist/src/cli/main.js', '--version'], { cwd: app });
      assert.match(version.stdout, /\d+\.\d+\.\d+/);
      const prestop = await run(process.execPath, ['dist/src/cli/main.js', 'prestop', '--help'], {
        cwd: app,
      });
      assert.match(prestop.stdout, /kubegrace prestop/);

      const child = spawn(process.execPath, ['dist/examples/http/server.js'], {
        cwd: app,
        env: { PATH: process.env.PATH, PORT: '0', KUBEGRACE_PROBES_PORT: '0', NODE_ENV: 'production' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const exited = once(child, 'exit');
      try {
        const lines: string[] = [];
        createInterface({ input: child.stdout }).on('line', (l) => lines.push(l));
        child.stderr.resume(); // kubegrace's log lines; never let the pipe fill
        let ports: RegExpExecArray | undefined;
        for (let i = 0; i < 200 && !ports; i++) {
          ports =
            lines.map((l) => /listening on :(\d+), management on :(\d+)/.exec(l)).find((m) => m) ?? undefined;
          if (!ports) await delay(25);
        }
        assert.ok(ports, 'the compiled example did not start');
        const load = startLoad(Number(ports[1]), { path: '/work?ms=20', concurrency: 4 });
        await delay(300);
        child.kill('SIGTERM');
        await delay(200);
        const result = await within(load.stop(), 10_000, 'requests in flight');
        const [code] = (await within(exited, 20_000, 'exit')) as [number | null];
        assert.deepEqual(result.failures, []);
        assert.ok(result.ok > 10);
        assert.equal(code, 0);
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    });
  });
});
