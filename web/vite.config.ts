import { fileURLToPath, URL } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The built app ships inside the Python package (served by vesalius.web.ui at "/").
export default defineConfig({
  plugins: [react()],
  base: "/",
  resolve: {
    // vtk.js (under Cornerstone3D) extends Node's EventEmitter: use the npm "events" package,
    // not Vite's empty browser stub for the Node built-in.
    alias: [{ find: /^events$/, replacement: fileURLToPath(new URL("./node_modules/events/events.js", import.meta.url)) }],
  },
  optimizeDeps: {
    // The image loader starts its codec workers with new URL(..., import.meta.url): pre-bundling breaks those paths.
    exclude: ["@cornerstonejs/dicom-image-loader"],
    include: ["dicom-parser"],
  },
  worker: { format: "es" },
  build: {
    outDir: "../src/vesalius/web/ui/dist",
    emptyOutDir: true,
    target: "es2022",
    assetsDir: "assets",
    chunkSizeWarningLimit: 8000,
  },
});
