import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

const root = fileURLToPath(new URL('../..', import.meta.url));
const run = (...args: string[]) =>
  promisify(execFile)(process.execPath, ['--import', 'tsx', 'bench/propagation.ts', ...args], { cwd: root });

describe('npm run bench:propagation', () => {
  it('--silences: the silence asked for falls with the rate, never below the quiet period', async () => {
    const { stdout } = await run('--silences', '--runs', '60');
    const rows = stdout
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/));
    assert.equal(rows.length, 20, stdout);
    for (const history of ['5', '60']) {
      const medians = rows.filter((r) => r[1] === history).map((r) => Number(r[3]));
      assert.equal(medians.length, 10, stdout);
      for (const m of medians) assert.ok(m >= 1, `a silence under the 1 s quiet period:\n${stdout}`);
      for (let i = 1; i < medians.length; i++) {
        assert.ok((medians[i] ?? 0) <= (medians[i - 1] ?? 0), `not falling with the rate:\n${stdout}`);
      }
    }
    // A minute of history asks for no more than 5 s at the same rate (a short history asks for more).
    const at = (rate: string, history: string) =>
      Number(rows.find((r) => r[0] === rate && r[1] === history)?.[3]);
    assert.ok(at('5', '5') > at('5', '60'), stdout);
  });

  it('names the flag and what it expected on bad input', async () => {
    await assert.rejects(run('--runs', '0'), (error: { code?: number; stderr?: string }) => {
      assert.equal(error.code, 2);
      assert.match(error.stderr ?? '', /--runs: expected a whole number of runs, 1 or more; got "0"/);
      return true;
    });
    for (const name of ['nope', 'constructor', '__proto__']) {
      await assert.rejects(run('--only', name), (error: { code?: number; stderr?: string }) => {
        assert.equal(error.code, 2);
        assert.match(
          error.stderr ?? '',
          new RegExp(`--only: no shape "${name}"; the shapes are poisson-20, `),
        );
        return true;
      });
    }
    for (const bad of ['abc', '', '1e3', '2.5', '-1', '4294967296']) {
      await assert.rejects(run(`--seed=${bad}`), (error: { code?: number; stderr?: string }) => {
        assert.equal(error.code, 2);
        const expected = `--seed: expected a whole number from 0 to 4294967295; got ${JSON.stringify(bad)}`;
        assert.ok(error.stderr?.includes(expected), `${expected}\n${error.stderr}`);
        return true;
      });
    }
    await assert.rejects(run('--runs='), (error: { code?: number; stderr?: string }) => {
      assert.equal(error.code, 2);
      assert.match(error.stderr ?? '', /--runs: expected a whole number of runs, 1 or more; got ""/);
      return true;
    });
    await assert.rejects(run('--silences', '--only', 'cron'), (error: { code?: number; stderr?: string }) => {
      assert.equal(error.code, 2);
      assert.match(error.stderr ?? '', /--only: picks traffic shapes, which --silences does not simulate/);
      return true;
    });
    await assert.rejects(run('--bogus'), (error: { code?: number; stderr?: string }) => {
      assert.equal(error.code, 2);
      assert.match(error.stderr ?? '', /Unknown option '--bogus'\nusage: npm run bench:propagation/);
      return true;
    });
  });

  it('per shape: the lost share, the exit after the last router, and the share within R + 1.2 s', async () => {
    const { stdout } = await run('--only', 'poisson-20,bench-steady', '--runs', '200');
    const [header, ...rows] = stdout.trim().split('\n');
    assert.match(header ?? '', /lost in .* exit after R: median +p90 +≤ R \+ 1\.2 s$/, stdout);
    assert.equal(rows.length, 2, stdout);
    const within = new Map(
      rows.map((line) => {
        const cells = line.trim().split(/\s+/);
        return [cells[0], Number(cells.at(-2))] as const;
      }),
    );
    for (const share of within.values()) assert.ok(share >= 0 && share <= 100, stdout);
    // At 20/s the rule asks for about the quiet period, so some rollouts end within R + 1.2 s; the
    // bench's steady pods (a new client every 150 ms, one second of history) ask for ~2.6 s.
    assert.ok((within.get('poisson-20') ?? 0) > (within.get('bench-steady') ?? 100), stdout);
  });

  it('--fixed-silence: per silence and shape, the lost share and the share within R + 1.2 s', async () => {
    const { stdout } = await run('--fixed-silence', '--runs', '300');
    const [title, header, ...rows] = stdout.trim().split('\n');
    assert.match(title ?? '', /fixed silence \(not the rule\)/, stdout);
    assert.deepEqual(header?.trim().split(/\s+/), [
      'silence',
      'bench-steady',
      'young-steady',
      'bench-steady-twin',
      'clock-random-surge',
      'poisson-10',
    ]);
    assert.equal(rows.length, 17, stdout);
    const cell = (row: string | undefined, i: number) => {
      const m = [...(row ?? '').matchAll(/([\d.]+) % \/ ([\d.]+) %/g)][i];
      return { lost: Number(m?.[1]), within: Number(m?.[2]) };
    };
    // The shortest silence: every bench-steady pod within the bar, the twin losing often.
    assert.match(rows[0] ?? '', /^0\.8 s /);
    assert.deepEqual(cell(rows[0], 0), { lost: 0, within: 100 });
    assert.ok(cell(rows[0], 2).lost > 10, stdout);
    // The longest: the twin (nearly) safe, no bench-steady pod within the bar.
    assert.match(rows.at(-1) ?? '', /^2\.4 s /);
    assert.equal(cell(rows.at(-1), 0).within, 0, stdout);
    assert.ok(cell(rows.at(-1), 2).lost < 1, stdout);

    // A shape named twice is one column.
    const only = await run('--fixed-silence', '--only', 'poisson-20, poisson-20', '--runs', '50');
    assert.deepEqual(only.stdout.trim().split('\n')[1]?.trim().split(/\s+/), ['silence', 'poisson-20']);
    await assert.rejects(run('--fixed-silence', '1.2'), (error: { code?: number; stderr?: string }) => {
      assert.equal(error.code, 2);
      assert.match(
        error.stderr ?? '',
        /^unexpected argument "1\.2": --fixed-silence takes no value \(it tries every fixed silence from 0\.8 s to 2\.4 s\)\nusage: /,
      );
      return true;
    });
    await assert.rejects(run('--runs', '50', 'extra'), (error: { code?: number; stderr?: string }) => {
      assert.equal(error.code, 2);
      assert.match(
        error.stderr ?? '',
        /^unexpected argument "extra": this command takes no positional arguments/,
      );
      return true;
    });
    await assert.rejects(
      run('--fixed-silence', '--silences'),
      (error: { code?: number; stderr?: string }) => {
        assert.equal(error.code, 2);
        assert.match(error.stderr ?? '', /--silences and --fixed-silence: pick one/);
        return true;
      },
    );
  });
});
