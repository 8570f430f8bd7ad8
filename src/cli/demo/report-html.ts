/**
 * The demo's `--report` page: one self-contained HTML file (no scripts, no network) with an inline
 * SVG timeline of a shutdown — phases as bands, moments (endpoint removed, ideal exit, exit) as
 * marker lines, requests in flight and request rate over time, failed requests marked — then each
 * pod's figures and the run's summary as tables. Pure: data in, string out.
 */

export interface ReportPhase {
  readonly name: string;
  /** Milliseconds relative to SIGTERM. */
  readonly startMs: number;
  readonly endMs: number;
}

export interface ReportSample {
  /** Milliseconds relative to SIGTERM. */
  readonly tMs: number;
  /** Requests in flight at `tMs`. */
  readonly inflight: number;
  /** Requests per second around `tMs`. */
  readonly rps: number;
  /** Requests that failed in the interval ending at `tMs`. */
  readonly failed: number;
}

/** A moment drawn as a vertical line across the charts, such as the endpoint removal or the exit. */
export interface ReportMarker {
  /** Identifies the marker (`removed`, `ideal`, `exit`); sets its colour. */
  readonly name: string;
  readonly label: string;
  /** Milliseconds relative to SIGTERM. */
  readonly tMs: number;
}

/** One pod's figures, for the table next to the whole run's summary. */
export interface ReportPod {
  readonly pod: string;
  readonly requests: number;
  readonly failed: number;
  readonly shutdownMs: number;
  readonly idealMs: number;
  readonly removedMs: number;
  readonly exitCode: number;
  readonly killed: boolean;
}

export interface ShutdownReportData {
  readonly title?: string;
  readonly phases: readonly ReportPhase[];
  readonly markers?: readonly ReportMarker[];
  readonly samples: readonly ReportSample[];
  /** One more sentence under the title (what the charts show, what "ideal" means). */
  readonly note?: string;
  readonly pods?: readonly ReportPod[];
  readonly summary: Readonly<Record<string, unknown>>;
}

const WIDTH = 1100;
const MARGIN = { left: 64, right: 24 };
const BAND_Y = 28;
const BAND_H = 26;
const CHART_H = 150;
const INFLIGHT_Y = BAND_Y + BAND_H + 28;
const RPS_Y = INFLIGHT_Y + CHART_H + 40;
const AXIS_Y = RPS_Y + CHART_H;
const HEIGHT = AXIS_Y + 44;
const PLOT_W = WIDTH - MARGIN.left - MARGIN.right;

const PHASE_COLORS: Readonly<Record<string, string>> = {
  unready: '#f4a261',
  propagate: '#e9c46a',
  drain: '#2a9d8f',
  cleanup: '#8ab17d',
  exit: '#8d99ae',
};
const SPARE_COLORS = ['#b5838d', '#6d6875', '#457b9d', '#a8dadc'];
/** Marker colour and dash pattern by name; others get the last entry. */
const MARKER_STYLES: Readonly<Record<string, { readonly color: string; readonly dash: string }>> = {
  removed: { color: '#7b2cbf', dash: '6 3' },
  ideal: { color: '#2b9348', dash: '2 3' },
  exit: { color: '#e76f51', dash: '' },
  other: { color: '#555555', dash: '4 4' },
};

export function renderShutdownReport(data: ShutdownReportData): string {
  const phases = (data.phases ?? [])
    .filter((p) => Number.isFinite(p.startMs) && Number.isFinite(p.endMs))
    .map((p) => ({ name: String(p.name), startMs: p.startMs, endMs: Math.max(p.startMs, p.endMs) }));
  const samples = (data.samples ?? [])
    .filter((s) => Number.isFinite(s.tMs))
    .map((s) => ({ tMs: s.tMs, inflight: finite(s.inflight), rps: finite(s.rps), failed: finite(s.failed) }))
    .sort((a, b) => a.tMs - b.tMs);
  const markers = (data.markers ?? [])
    .filter((m) => Number.isFinite(m.tMs))
    .map((m) => ({ name: String(m.name), label: String(m.label), tMs: m.tMs }))
    .sort((a, b) => a.tMs - b.tMs);
  const title = data.title ?? 'kubegrace shutdown report';

  // The window always shows SIGTERM (t = 0) and everything that was recorded.
  const times = [
    0,
    ...phases.flatMap((p) => [p.startMs, p.endMs]),
    ...markers.map((m) => m.tMs),
    ...samples.map((s) => s.tMs),
  ];
  let t0 = Math.min(...times);
  let t1 = Math.max(...times);
  if (t1 - t0 < 1000) t1 = t0 + 1000;
  const pad = (t1 - t0) * 0.02;
  t0 -= pad;
  t1 += pad;
  const x = (t: number): number => MARGIN.left + ((t - t0) / (t1 - t0)) * PLOT_W;

  const svg = [
    `<svg id="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" role="img" aria-labelledby="timeline-title">`,
    `<title id="timeline-title">${escape(title)}: phases, requests in flight, request rate and failures over time</title>`,
    `<rect x="0" y="0" width="${WIDTH}" height="${HEIGHT}" fill="#ffffff"/>`,
    phaseBands(phases, x),
    timeAxis(t0, t1, x),
    chart(
      'inflight',
      'in flight',
      INFLIGHT_Y,
      samples.map((s) => [s.tMs, s.inflight] as const),
      x,
      '#1d3557',
    ),
    chart(
      'rps',
      'requests/s',
      RPS_Y,
      samples.map((s) => [s.tMs, s.rps] as const),
      x,
      '#457b9d',
    ),
    failures(samples, x),
    markerLines(markers, x),
    sigterm(x(0)),
    '</svg>',
  ].join('\n');

  const failedTotal = samples.reduce((sum, s) => sum + s.failed, 0);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)}</title>
<style>
  body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; color: #1b1b1b; margin: 24px; background: #fafafa; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  p.lead { margin: 0 0 4px; color: #555; }
  p.note { margin: 0 0 16px; color: #555; }
  figure { margin: 0 0 24px; background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 8px; overflow-x: auto; }
  svg text { font: 12px system-ui, sans-serif; fill: #333; }
  svg .band-label { font-weight: 600; fill: #1b1b1b; }
  table { border-collapse: collapse; background: #fff; min-width: 480px; }
  th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: left; vertical-align: top; }
  th { background: #f0f0f0; font-weight: 600; }
  td code { font-size: 12px; white-space: pre-wrap; }
</style>
</head>
<body>
<h1>${escape(title)}</h1>
<p class="lead">Times are relative to SIGTERM. ${samples.length} samples, ${phases.length} phases, ${failedTotal} failed requests on the charted pod.</p>
${data.note === undefined ? '' : `<p class="note">${escape(data.note)}</p>\n`}<figure>
${svg}
</figure>
${podTable(data.pods ?? [])}<h2>Summary</h2>
${summaryTable(data.summary ?? {})}
</body>
</html>
`;
}

function phaseBands(phases: readonly ReportPhase[], x: (t: number) => number): string {
  let spare = 0;
  const colors = new Map<string, string>();
  const colorOf = (name: string): string => {
    let color = colors.get(name) ?? PHASE_COLORS[name];
    if (color === undefined) color = SPARE_COLORS[spare++ % SPARE_COLORS.length] ?? '#999999';
    colors.set(name, color);
    return color;
  };
  return phases
    .map((p) => {
      const left = x(p.startMs);
      // A phase of a few ms still gets a visible sliver.
      const width = Math.max(2, x(p.endMs) - left);
      const color = colorOf(p.name);
      const label =
        width > 48
          ? `<text class="band-label" x="${num(left + 6)}" y="${BAND_Y + 17}">${escape(p.name)}</text>`
          : '';
      return [
        `<g class="phase" data-phase="${escape(p.name)}">`,
        // The same band, faint, behind both charts, so a spike reads against its phase.
        `<rect x="${num(left)}" y="${BAND_Y}" width="${num(width)}" height="${AXIS_Y - BAND_Y}" fill="${color}" fill-opacity="0.13"/>`,
        `<rect x="${num(left)}" y="${BAND_Y}" width="${num(width)}" height="${BAND_H}" fill="${color}" rx="3"/>`,
        label,
        `<title>${escape(p.name)}: ${seconds(p.startMs)} to ${seconds(p.endMs)} (${Math.round(p.endMs - p.startMs)} ms)</title>`,
        '</g>',
      ].join('');
    })
    .join('\n');
}

function chart(
  name: string,
  label: string,
  top: number,
  points: readonly (readonly [number, number])[],
  x: (t: number) => number,
  color: string,
): string {
  const max = niceMax(Math.max(0, ...points.map(([, v]) => v)));
  const y = (v: number): number => top + CHART_H - (v / max) * CHART_H;
  const grid = [0, 0.25, 0.5, 0.75, 1]
    .map((f) => {
      const v = max * f;
      return (
        `<line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${num(y(v))}" y2="${num(y(v))}" stroke="#e6e6e6"/>` +
        `<text x="${MARGIN.left - 6}" y="${num(y(v) + 4)}" text-anchor="end">${formatCount(v)}</text>`
      );
    })
    .join('');
  const line =
    points.length === 0
      ? `<text x="${MARGIN.left + PLOT_W / 2}" y="${top + CHART_H / 2}" text-anchor="middle" fill="#888">no samples</text>`
      : `<polyline class="${name}" fill="none" stroke="${color}" stroke-width="2" stroke-linejoin="round" points="${points
          .map(([t, v]) => `${num(x(t))},${num(y(v))}`)
          .join(' ')}"/>`;
  const area =
    points.length < 2
      ? ''
      : `<polygon fill="${color}" fill-opacity="0.12" points="${num(x(points[0]?.[0] ?? 0))},${num(y(0))} ${points
          .map(([t, v]) => `${num(x(t))},${num(y(v))}`)
          .join(' ')} ${num(x(points[points.length - 1]?.[0] ?? 0))},${num(y(0))}"/>`;
  return [
    `<g class="chart" data-chart="${name}">`,
    `<text x="${MARGIN.left}" y="${top - 8}" font-weight="600">${escape(label)}</text>`,
    grid,
    area,
    line,
    `<rect x="${MARGIN.left}" y="${top}" width="${PLOT_W}" height="${CHART_H}" fill="none" stroke="#cccccc"/>`,
    '</g>',
  ].join('\n');
}

function failures(samples: readonly ReportSample[], x: (t: number) => number): string {
  const failed = samples.filter((s) => s.failed > 0);
  // Labels only where they do not run into the previous one; every marker keeps its tooltip.
  let lastLabel = -Infinity;
  return failed
    .map((s) => {
      const cx = num(x(s.tMs));
      const labelled = x(s.tMs) - lastLabel > 70;
      if (labelled) lastLabel = x(s.tMs);
      return (
        `<g class="failure">` +
        `<line x1="${cx}" x2="${cx}" y1="${INFLIGHT_Y}" y2="${AXIS_Y}" stroke="#d62828" stroke-width="1.5" stroke-dasharray="3 3"/>` +
        `<circle cx="${cx}" cy="${RPS_Y + CHART_H - 6}" r="5" fill="#d62828"/>` +
        (labelled
          ? `<text x="${num(x(s.tMs) + 8)}" y="${RPS_Y + CHART_H - 12}" fill="#d62828">${s.failed} failed</text>`
          : '') +
        `<title>${s.failed} failed at ${seconds(s.tMs)}</title>` +
        `</g>`
      );
    })
    .join('\n');
}

function markerLines(
  markers: readonly { name: string; label: string; tMs: number }[],
  x: (t: number) => number,
): string {
  // Labels stack down the in-flight chart, one row each, so markers close in time stay readable.
  return markers
    .map((m, i) => {
      const style = MARKER_STYLES[m.name] ?? MARKER_STYLES.other ?? { color: '#555555', dash: '' };
      const at = num(x(m.tMs));
      const right = x(m.tMs) > WIDTH - MARGIN.right - 140;
      return (
        `<g class="marker" data-marker="${escape(m.name)}">` +
        `<line x1="${at}" x2="${at}" y1="${BAND_Y}" y2="${AXIS_Y}" stroke="${style.color}" stroke-width="2"${style.dash ? ` stroke-dasharray="${style.dash}"` : ''}/>` +
        `<text x="${num(x(m.tMs) + (right ? -5 : 5))}" y="${INFLIGHT_Y + 14 + i * 15}" style="fill: ${style.color}" font-weight="600" paint-order="stroke" stroke="#ffffff" stroke-width="4"${right ? ' text-anchor="end"' : ''}>${escape(m.label)} ${seconds(m.tMs)}</text>` +
        `<title>${escape(m.label)} at ${seconds(m.tMs)}</title>` +
        '</g>'
      );
    })
    .join('\n');
}

function podTable(pods: readonly ReportPod[]): string {
  if (pods.length === 0) return '';
  const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
  const rows = pods.map(
    (p) =>
      `<tr><th scope="row">${escape(p.pod)}</th><td>${p.requests}</td><td>${p.failed}</td><td>${s(p.removedMs)}</td>` +
      `<td>${s(p.idealMs)}</td><td>${s(p.shutdownMs)}</td><td>${p.killed ? `SIGKILL (${p.exitCode})` : p.exitCode}</td></tr>`,
  );
  return (
    '<h2>Pods</h2>\n<table class="pods">\n<thead><tr><th>pod</th><th>requests</th><th>failed</th>' +
    '<th>endpoint removed</th><th>ideal exit</th><th>exit</th><th>exit code</th></tr></thead>\n' +
    `<tbody>\n${rows.join('\n')}\n</tbody>\n</table>\n`
  );
}

function sigterm(at: number): string {
  return (
    `<g class="sigterm"><line x1="${num(at)}" x2="${num(at)}" y1="${BAND_Y - 6}" y2="${AXIS_Y}" stroke="#111" stroke-width="1.5"/>` +
    `<text x="${num(at)}" y="${BAND_Y - 10}" text-anchor="middle" font-weight="600">SIGTERM</text></g>`
  );
}

function timeAxis(t0: number, t1: number, x: (t: number) => number): string {
  const step = niceStep((t1 - t0) / 10);
  const decimals = step >= 1000 ? 0 : step >= 100 ? 1 : 2;
  const ticks: string[] = [];
  // Whole multiples of the step: adding the step up would drift (0.30000000000000004 s).
  for (let i = Math.ceil(t0 / step); i * step <= t1; i++) {
    const t = i * step;
    const label = t === 0 ? '0s' : `${t > 0 ? '+' : '−'}${(Math.abs(t) / 1000).toFixed(decimals)}s`;
    ticks.push(
      `<line x1="${num(x(t))}" x2="${num(x(t))}" y1="${AXIS_Y}" y2="${AXIS_Y + 5}" stroke="#666"/>` +
        `<text x="${num(x(t))}" y="${AXIS_Y + 18}" text-anchor="middle">${label}</text>`,
    );
  }
  return (
    `<g class="axis"><line x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${AXIS_Y}" y2="${AXIS_Y}" stroke="#666"/>` +
    `${ticks.join('')}<text x="${WIDTH - MARGIN.right}" y="${AXIS_Y + 36}" text-anchor="end">time since SIGTERM</text></g>`
  );
}

function summaryTable(summary: Readonly<Record<string, unknown>>): string {
  const rows = Object.entries(summary).map(
    ([key, value]) => `<tr><th scope="row">${escape(key)}</th><td>${cell(value)}</td></tr>`,
  );
  if (rows.length === 0) return '<p>No summary.</p>';
  return `<table class="summary">\n<tbody>\n${rows.join('\n')}\n</tbody>\n</table>`;
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'string') return escape(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return escape(String(value));
  if (Array.isArray(value) && value.every((v) => typeof v !== 'object' || v === null)) {
    return value.length === 0 ? '—' : escape(value.map(String).join(', '));
  }
  let text: string | undefined;
  try {
    text = JSON.stringify(value, null, 1);
  } catch {
    text = undefined; // a cycle or a bigint inside
  }
  return `<code>${escape(text ?? `[${typeof value}]`)}</code>`;
}

function niceStep(raw: number): number {
  const power = 10 ** Math.floor(Math.log10(Math.max(raw, 1e-9)));
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

function niceMax(value: number): number {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * power >= value) return m * power;
  return 10 * power;
}

function formatCount(value: number): string {
  return String(Number(value.toPrecision(3)));
}

function seconds(ms: number): string {
  const s = ms / 1000;
  const text = Math.abs(s) >= 10 ? s.toFixed(0) : Math.abs(s) >= 1 ? s.toFixed(1) : s.toFixed(2);
  return `${s > 0 ? '+' : ''}${text === '-0.00' ? '0.00' : text}s`;
}

function finite(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? Math.max(0, value) : 0;
}

function num(value: number): string {
  return (Math.round(value * 10) / 10).toString();
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
