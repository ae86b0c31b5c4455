// The real API as the benchmark runs it: embedded PostgreSQL under BENCH_DATA_DIR, a random
// loopback port, production settings (no schema file written), warnings-only logging.
import { loadConfig } from '../../src/config';
import { startServer } from '../../src/server';
import { serveFromChild } from '../lib/server-process';

serveFromChild(async () => {
  const dataDir = process.env.BENCH_DATA_DIR;
  if (!dataDir) throw new Error('BENCH_DATA_DIR is unset');
  const server = await startServer(
    loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      CUSTODIA_DATA_DIR: dataDir,
      NODE_ENV: 'production',
    }),
  );
  return { url: server.url, stop: () => server.stop() };
});
