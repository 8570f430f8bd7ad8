import Koa from 'koa';
import { createKubegrace } from '../../../src/index.js';

const kg = createKubegrace();
const app = new Koa();
app.use((ctx) => {
  ctx.body = 'hello';
});

await kg.start();
const server = app.listen(Number(process.env.PORT ?? 8080), () => kg.ready());
kg.attach(server); // app.listen() returns the node:http server
