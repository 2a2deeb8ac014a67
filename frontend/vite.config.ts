import { defineConfig } from "vitest/config";

// Django serves the build with whitenoise under STATIC_URL, so every asset URL starts with
// /static/; frontend/views.py serves dist/index.html itself at / and on client routes.
export default defineConfig({
  base: "/static/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    reportCompressedSize: false,
  },
  test: {
    include: ["src/**/*.test.ts", "src/**/*.test.tsx"],
    environment: "node",
  },
});
