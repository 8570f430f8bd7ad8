/** docs/frameworks.md, koa: the snippet runs as shown, serves, and shuts down clean on SIGTERM. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runSnippet } from './snippet.js';

describe('koa with kubegrace attached (docs/frameworks.md)', () => {
  it('serves under keep-alive load across SIGTERM and exits 0 with a clean summary', async () => {
    const { outcome } = await runSnippet('koa.mjs');
    assert.equal(outcome, 'clean');
  });
});
