// The baseline: the same Nest + Apollo (express) stack answering from memory.
import { NestFactory } from '@nestjs/core';
import { AddressInfo } from 'node:net';
import { BaselineModule } from '../baseline/baseline.module';
import { serveFromChild } from '../lib/server-process';

serveFromChild(async () => {
  const app = await NestFactory.create(BaselineModule, { logger: ['fatal', 'error', 'warn'] });
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, stop: () => app.close() };
});
