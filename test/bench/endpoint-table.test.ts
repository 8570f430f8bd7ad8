import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  connectionDraws,
  createEndpointTable,
  type Endpoint,
  type EndpointTableEvents,
} from '../../src/cli/demo/endpoint-table.js';
import { arrivalOffsets } from '../../src/cli/demo/load.js';

/** Two real listeners that accept and drop connections: the table opens real sockets to them. */
const servers: Server[] = [];
const endpoints: Endpoint[] = [];

before(async () => {
  for (const name of ['a', 'b']) {
    const server = createServer((socket) => socket.destroy());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    assert.ok(address !== null && typeof address === 'object');
    servers.push(server);
    endpoints.push({ name, host: '127.0.0.1', port: address.port });
  }
});

after(() => {
  for (const server of servers) server.close();
});

function connectMany(
  table: ReturnType<typeof createEndpointTable>,
  n: number,
  kind: 'pooled' | 'new-client',
) {
  const names: (string | undefined)[] = [];
  for (let i = 0; i < n; i++) {
    const connection = table.connect(kind);
    names.push(connection?.endpoint.name);
    connection?.socket.on('error', () => {}).destroy();
  }
  return names;
}

describe('the endpoint table', () => {
  it('round robin alternates; random choice follows its seeded draws, whatever the pooled clients do', () => {
    const [a, b] = endpoints as [Endpoint, Endpoint];
    const roundRobin = createEndpointTable();
    roundRobin.add(a);
    roundRobin.add(b);
    assert.deepEqual(connectMany(roundRobin, 4, 'new-client'), ['a', 'b', 'a', 'b']);
    roundRobin.destroy();

    const options = { choice: 'random', seed: 7 } as const;
    const random = createEndpointTable(options);
    random.add(a);
    random.add(b);
    const predict = connectionDraws(options, 'new-client');
    const expected = Array.from({ length: 40 }, () =>
      Math.floor((predict().draw ?? 0) * 2) === 0 ? 'a' : 'b',
    );
    // Pooled reconnects in between draw from their own sequence: the new clients' routes stay as predicted.
    const seen: (string | undefined)[] = [];
    for (let i = 0; i < 40; i++) {
      connectMany(random, i % 3, 'pooled');
      seen.push(...connectMany(random, 1, 'new-client'));
    }
    assert.deepEqual(seen, expected);
    assert.ok(seen.includes('a') && seen.includes('b'), seen.join(','));
    assert.equal(random.connectionsOpened(a) + random.connectionsOpened(b), 40 + 39);
    random.destroy();
  });

  it('with several nodes each drops a removed endpoint after its share of the lag, the slowest last', async () => {
    const [a, b] = endpoints as [Endpoint, Endpoint];
    const table = createEndpointTable({ nodes: 3, choice: 'random', seed: 3 });
    const events: EndpointTableEvents[] = [];
    table.on((event) => events.push(event));
    table.add(a);
    table.add(b);
    const removal = table.remove(a, 300);
    assert.deepEqual(
      table.endpoints.map((e) => e.name),
      ['a', 'b'],
    );
    await removal;
    const drops = events.filter((e) => e.type === 'node-removed');
    assert.deepEqual(
      drops.map((e) => e.node),
      [0, 1, 2],
    );
    assert.equal(events.at(-1)?.type, 'removed');
    assert.deepEqual(
      table.endpoints.map((e) => e.name),
      ['b'],
    );
    assert.ok(connectMany(table, 30, 'new-client').every((name) => name === 'b'));
    table.destroy();
  });

  it('arrival offsets: a clock is evenly spaced, Poisson gaps come from the seed and vary', () => {
    const take = (it: Iterator<number>, n: number): number[] =>
      Array.from({ length: n }, () => it.next().value as number);
    assert.deepEqual(take(arrivalOffsets(4), 3), [250, 500, 750]);
    const poisson = take(arrivalOffsets(1, 'poisson', 5), 200);
    assert.deepEqual(poisson, take(arrivalOffsets(1, 'poisson', 5), 200));
    const gaps = poisson.map((t, i) => t - (poisson[i - 1] ?? 0));
    assert.ok(
      gaps.some((g) => g > 2000),
      'some gap is twice the mean',
    );
    assert.ok(
      gaps.some((g) => g < 500),
      'some gap is half the mean',
    );
    assert.deepEqual(take(arrivalOffsets(0), 1), [undefined]);
  });
});
