import type { Server } from 'node:http';
import { NestFactory } from '@nestjs/core';
import { createKubegrace } from '../../../src/index.js';
import { AppModule } from './app.module.js';

const kg = createKubegrace();
const app = await NestFactory.create(AppModule); // the express platform
kg.attach(app.getHttpServer() as Server);
// Nest's own shutdown (onModuleDestroy, onApplicationShutdown) after the drain. Not
// app.enableShutdownHooks(): its SIGTERM handler would close the listener at once.
kg.onCleanup(() => app.close(), { name: 'nest' });

await kg.start();
await app.listen(Number(process.env.PORT ?? 8080));
kg.ready();
