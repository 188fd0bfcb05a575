import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { defineConfig, type Plugin } from "vite";

const OUT = resolve(import.meta.dirname, "../dist/web");

/**
 * Writes a `.gz` and a `.br` beside each text asset, which the agent's @fastify/static serves to
 * browsers that accept them (`preCompressed`): compressed once at build time, never per request.
 */
function precompress(): Plugin {
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? walk(path) : [path];
    });
  return {
    name: "batu-precompress",
    apply: "build",
    closeBundle() {
      for (const file of walk(OUT)) {
        if (!/\.(js|css|html|svg|wasm|json)$/.test(file)) continue;
        const bytes = readFileSync(file);
        writeFileSync(`${file}.gz`, gzipSync(bytes, { level: 9 }));
        writeFileSync(`${file}.br`, brotliCompressSync(bytes));
      }
    },
  };
}

export default defineConfig({
  root: import.meta.dirname,
  base: "/",
  logLevel: "warn",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: OUT,
    emptyOutDir: true,
    target: "es2022",
    // The renter's signing code (@polkadot/util-crypto and its WASM) is its own chunk, loaded by a
    // dynamic import when a renter signs in: the operator never downloads it.
    chunkSizeWarningLimit: 1500,
    rollupOptions: {
      // @polkadot's builds carry /*#__PURE__*/ comments where Rollup cannot use them: harmless, and not ours.
      onwarn(warning, warn) {
        if (warning.code !== "INVALID_ANNOTATION") warn(warning);
      },
    },
  },
  plugins: [precompress()],
});
