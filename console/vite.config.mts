// Builds the console into console/dist, served by the API at /console (src/console).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig(({ command }) => ({
  root,
  base: '/console/',
  // React's automatic JSX runtime, compiled by Vite's own transformer (Oxc): no plugin needed.
  oxc: { jsx: { runtime: 'automatic', development: command !== 'build' } },
  // A build is React's production build whatever NODE_ENV the caller has (Jest sets `test`,
  // which Vite would otherwise pass on, bundling React's development build).
  define:
    command === 'build' ? { 'process.env.NODE_ENV': JSON.stringify('production') } : undefined,
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // The CSP forbids inline code: no module-preload polyfill, no assets inlined as data: URLs.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1024,
  },
  // `npm run console:dev`: the API on :3000 answers /graphql and the dev-token route.
  server: { proxy: { '/graphql': 'http://localhost:3000', '/auth': 'http://localhost:3000' } },
}));
