// Build the dashboard's static files into the Python package (the wheel ships them; nothing
// is fetched at run time): our own src/ as is, plus uPlot's browser build from node_modules.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "src", "faceswap_oci", "dashboard", "static");
mkdirSync(out, { recursive: true });
for (const name of readdirSync(join(here, "src"))) {
  copyFileSync(join(here, "src", name), join(out, name));
}
const uplot = join(here, "node_modules", "uplot");
const version = JSON.parse(readFileSync(join(uplot, "package.json"), "utf8")).version;
copyFileSync(join(uplot, "dist", "uPlot.iife.min.js"), join(out, "uPlot.iife.min.js"));
copyFileSync(join(uplot, "dist", "uPlot.min.css"), join(out, "uPlot.min.css"));
copyFileSync(join(uplot, "LICENSE"), join(out, "uPlot.LICENSE"));
writeFileSync(join(out, "vendor.json"), JSON.stringify({ uplot: version }, null, 2) + "\n");
console.log(`built ${out} (uPlot ${version})`);
