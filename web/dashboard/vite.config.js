import { defineConfig } from 'vite';

// Built assets are served by parley-index under /dashboard/ (see
// docs/internals/DASHBOARD.md); the API is same-origin under /v1/.
export default defineConfig({
  base: '/dashboard/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2020',
    modulePreload: { polyfill: false },
    sourcemap: false,
    chunkSizeWarningLimit: 200,
  },
  // `npm run dev`: live-reloading dev server at http://127.0.0.1:5173/dashboard/
  // that forwards /v1 to an index (or to dev/fixture-server.mjs, the default).
  server: {
    host: '127.0.0.1',
    proxy: { '/v1': { target: process.env.PARLEY_INDEX_URL || 'http://127.0.0.1:8099', changeOrigin: false } },
  },
  test: {
    environment: 'jsdom',
    include: ['test/**/*.test.js'],
    testTimeout: 5000,
  },
});
