import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { inflateSync } from 'node:zlib';
import { renderShutdownReport, type ShutdownReportData } from '../../src/cli/demo/report-html.js';
import { CHROMIUM, run, skipUnlessInstalled } from '../support/prometheus.js';

/** A demo-like shutdown: load before SIGTERM, a 4 s propagation wait, a drain, three failures. */
function demoData(): ShutdownReportData {
  const samples = [];
  for (let t = -2000; t <= 9000; t += 250) {
    samples.push({
      tMs: t,
      inflight: t < 4000 ? 18 : Math.max(0, 18 - (t - 4000) / 200),
      rps: t < 3500 ? 400 : Math.max(0, 400 - (t - 3500) / 5),
      failed: t === 6000 ? 3 : 0,
    });
  }
  return {
    phases: [
      { name: 'unready', startMs: 0, endMs: 12 },
      { name: 'propagate', startMs: 12, endMs: 4012 },
      { name: 'drain', startMs: 4012, endMs: 7500 },
      { name: 'cleanup', startMs: 7500, endMs: 7800 },
      { name: 'exit', startMs: 7800, endMs: 8600 },
    ],
    markers: [
      { name: 'exit', label: 'exit 0', tMs: 8600 },
      { name: 'removed', label: 'endpoint removed', tMs: 2000 },
      { name: 'ideal', label: 'ideal exit', tMs: 2600 },
    ],
    note: 'The charts show web-1; the summary counts every pod.',
    pods: [
      {
        pod: 'web-1',
        requests: 1200,
        failed: 3,
        shutdownMs: 8600,
        idealMs: 2600,
        removedMs: 2000,
        exitCode: 0,
        killed: false,
      },
      {
        pod: 'web-2',
        requests: 900,
        failed: 0,
        shutdownMs: 31000,
        idealMs: 2400,
        removedMs: 2000,
        exitCode: 137,
        killed: true,
      },
    ],
    samples,
    summary: {
      trigger: 'SIGTERM',
      outcome: 'clean',
      exitCode: 0,
      durationMs: 7800,
      phases: { drain: 3488 },
      failures: [],
    },
  };
}

interface Image {
  readonly width: number;
  readonly height: number;
  pixel(x: number, y: number): [number, number, number];
}

/** Enough of PNG for Chromium's screenshots: 8-bit RGB or RGBA, not interlaced. */
function decodePng(buffer: Buffer): Image {
  assert.equal(buffer.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', 'a PNG');
  let offset = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (offset < buffer.length) {
    const length = buffer.readUInt32BE(offset);
    const type = buffer.toString('latin1', offset + 4, offset + 8);
    const data = buffer.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      assert.equal(data[8], 8, 'bit depth 8');
      assert.equal(data[12], 0, 'not interlaced');
      channels = data[9] === 6 ? 4 : data[9] === 2 ? 3 : 0;
      assert.ok(channels > 0, `color type ${data[9]}`);
    } else if (type === 'IDAT') {
      idat.push(data);
    }
    offset += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const out = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    for (let i = 0; i < stride; i++) {
      const x = raw[y * (stride + 1) + 1 + i] ?? 0;
      const a = i >= channels ? (out[y * stride + i - channels] ?? 0) : 0;
      const b = y > 0 ? (out[(y - 1) * stride + i] ?? 0) : 0;
      const c = y > 0 && i >= channels ? (out[(y - 1) * stride + i - channels] ?? 0) : 0;
      let value: number;
      switch (filter) {
        case 0:
          value = x;
          break;
        case 1:
          value = x + a;
          break;
        case 2:
          value = x + b;
          break;
        case 3:
          value = x + ((a + b) >> 1);
          break;
        case 4: {
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          value = x + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
          break;
        }
        default:
          throw new Error(`PNG filter ${filter}`);
      }
      out[y * stride + i] = value & 0xff;
    }
  }
  return {
    width,
    height,
    pixel: (x, y) => {
      const i = y * stride + x * channels;
      return [out[i] ?? 0, out[i + 1] ?? 0, out[i + 2] ?? 0];
    },
  };
}

function near([r, g, b]: [number, number, number], hex: string, tolerance = 12): boolean {
  const n = Number.parseInt(hex.slice(1), 16);
  return (
    Math.abs(r - (n >> 16)) <= tolerance &&
    Math.abs(g - ((n >> 8) & 0xff)) <= tolerance &&
    Math.abs(b - (n & 0xff)) <= tolerance
  );
}

describe('renderShutdownReport', () => {
  it('draws phases as bands, both series, each failure, and the summary table', () => {
    const html = renderShutdownReport(demoData());
    assert.match(html, /^<!doctype html>/);
    assert.equal((html.match(/<g class="phase" data-phase="/g) ?? []).length, 5);
    for (const phase of ['unready', 'propagate', 'drain', 'cleanup', 'exit'])
      assert.ok(html.includes(`data-phase="${phase}"`));
    assert.equal((html.match(/<polyline class="inflight"/g) ?? []).length, 1);
    assert.equal((html.match(/<polyline class="rps"/g) ?? []).length, 1);
    assert.equal((html.match(/<g class="failure">/g) ?? []).length, 1);
    assert.ok(html.includes('3 failed'));
    assert.ok(html.includes('SIGTERM'));
    assert.match(html, /<th scope="row">outcome<\/th><td>clean<\/td>/);
    // Markers, in time order, each with its label and time.
    assert.deepEqual(
      [...html.matchAll(/<g class="marker" data-marker="(\w+)">.*?>([^<>]+)<\/text>/g)].map(
        (m) => `${m[1]}: ${m[2]}`,
      ),
      ['removed: endpoint removed +2.0s', 'ideal: ideal exit +2.6s', 'exit: exit 0 +8.6s'],
    );
    // Each pod's own figures next to the whole run's summary.
    assert.match(
      html,
      /<tr><th scope="row">web-1<\/th><td>1200<\/td><td>3<\/td><td>2\.00 s<\/td><td>2\.60 s<\/td><td>8\.60 s<\/td><td>0<\/td><\/tr>/,
    );
    assert.match(html, /<th scope="row">web-2<\/th><td>900<\/td>.*<td>SIGKILL \(137\)<\/td>/);
    assert.ok(html.includes('<p class="note">The charts show web-1; the summary counts every pod.</p>'));
    assert.match(html, /<th scope="row">phases<\/th><td><code>\{\n &#34;drain&#34;: 3488\n\}<\/code><\/td>/);
  });

  it('is self-contained and escapes what it is given', () => {
    const html = renderShutdownReport({
      title: 'pod <web-1>',
      phases: [{ name: '<script>alert(1)</script>', startMs: 0, endMs: 100 }],
      samples: [],
      summary: { '<b>key</b>': '"><img src=x onerror=alert(1)>' },
    });
    // Nothing that loads or runs: no such tags, no src/href attributes (escaped text is fine).
    assert.doesNotMatch(html, /<script|<img|<link|<iframe|\ssrc="|\shref="/i);
    assert.ok(html.includes('pod &#60;web-1&#62;'));
    assert.ok(html.includes('&#60;b&#62;key&#60;/b&#62;'));
  });

  it('copes with empty, unsorted and broken data', () => {
    const empty = renderShutdownReport({ phases: [], samples: [], summary: {} });
    assert.ok(empty.includes('no samples'));
    assert.ok(empty.includes('No summary.'));
    const messy = renderShutdownReport({
      phases: [{ name: 'drain', startMs: 500, endMs: 100 }],
      samples: [
        { tMs: 900, inflight: 1, rps: 2, failed: 0 },
        { tMs: Number.NaN, inflight: 5, rps: 5, failed: 5 },
        { tMs: 100, inflight: Number.POSITIVE_INFINITY, rps: -3, failed: 0 },
      ],
      summary: { nested: { deep: [1, { a: 2 }] }, list: ['a', 'b'], none: null },
    });
    assert.doesNotMatch(messy, /NaN|Infinity/);
    const points = /<polyline class="inflight"[^>]* points="([^"]+)"/.exec(messy)?.[1]?.split(' ') ?? [];
    assert.equal(points.length, 2, 'the NaN sample is dropped');
    const xs = points.map((p) => Number(p.split(',')[0]));
    assert.ok((xs[0] ?? 0) < (xs[1] ?? 0), 'samples sorted by time');
    assert.ok(messy.includes('<td>a, b</td>'));
  });
});

const skip = skipUnlessInstalled(CHROMIUM);

describe('the report in headless Chromium', { skip, timeout: 90_000 }, () => {
  it('renders the SVG timeline: elements in the DOM and the bands and markers on screen', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kubegrace-report-'));
    try {
      const page = join(dir, 'report.html');
      await writeFile(page, renderShutdownReport(demoData()));
      const flags = [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--hide-scrollbars',
        `--user-data-dir=${join(dir, 'profile')}`,
        '--window-size=1200,800',
      ];
      const url = pathToFileURL(page).href;

      const dom = await run(CHROMIUM, [...flags, '--dump-dom', url], { timeoutMs: 60_000 });
      assert.equal(dom.code, 0, dom.stderr.slice(-2000));
      assert.match(dom.stdout, /<svg id="timeline"/);
      assert.equal((dom.stdout.match(/<g class="phase"/g) ?? []).length, 5);
      assert.match(dom.stdout, /<polyline class="inflight"/);

      const shot = join(dir, 'shot.png');
      const result = await run(CHROMIUM, [...flags, `--screenshot=${shot}`, url], { timeoutMs: 60_000 });
      assert.equal(result.code, 0, result.stderr.slice(-2000));
      const image = decodePng(await readFile(shot));
      assert.ok(image.width >= 1100 && image.height >= 500, `${image.width}x${image.height}`);

      // Count the pixels of the drain band, the propagate band and the failure marker, and where they are.
      const found = {
        drain: [] as number[],
        propagate: [] as number[],
        failure: 0,
        line: 0,
        removed: [] as number[],
        exit: [] as number[],
      };
      for (let y = 0; y < image.height; y += 1) {
        for (let x = 0; x < image.width; x += 1) {
          const px = image.pixel(x, y);
          if (near(px, '#2a9d8f')) found.drain.push(x);
          else if (near(px, '#e9c46a')) found.propagate.push(x);
          else if (near(px, '#d62828', 30)) found.failure++;
          else if (near(px, '#1d3557', 30)) found.line++;
          else if (near(px, '#7b2cbf', 20)) found.removed.push(x);
          else if (near(px, '#e76f51', 20)) found.exit.push(x);
        }
      }
      assert.ok(found.drain.length > 2000, `drain band drawn (${found.drain.length} px)`);
      assert.ok(found.propagate.length > 2000, `propagate band drawn (${found.propagate.length} px)`);
      assert.ok(found.failure > 30, `failure marker drawn (${found.failure} px)`);
      assert.ok(found.line > 100, `in-flight line drawn (${found.line} px)`);
      const middle = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
      assert.ok(middle(found.propagate) < middle(found.drain), 'propagate is drawn left of drain');
      assert.ok(found.removed.length > 100, `endpoint-removal marker drawn (${found.removed.length} px)`);
      assert.ok(found.exit.length > 100, `exit marker drawn (${found.exit.length} px)`);
      assert.ok(middle(found.removed) < middle(found.exit), 'the removal is drawn left of the exit');
      if (process.env.KUBEGRACE_REPORT_SCREENSHOT)
        await writeFile(process.env.KUBEGRACE_REPORT_SCREENSHOT, await readFile(shot));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
