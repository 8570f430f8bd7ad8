import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { createKubegrace } from '../../../src/index.js';

const kg = createKubegrace();
const app = new Hono();
app.get('/', (c) => c.text('hello'));

await kg.start();
const server = serve({ fetch: app.fetch, port: Number(process.env.PORT ?? 8080) }, () => kg.ready());
kg.attach(server); // serve() returns the node:http server
