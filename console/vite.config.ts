import { defineConfig } from "vite";
import { svelte } from "@sveltejs/vite-plugin-svelte";

// base './': every URL in the built page is relative, so the console works wherever the admin
// API's function root is (functions/console.py). No inlined assets and no module-preload
// polyfill: the Content-Security-Policy admits scripts and styles from 'self' only.
export default defineConfig({
  base: "./",
  plugins: [svelte()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    cssCodeSplit: false,
    sourcemap: false,
  },
});
