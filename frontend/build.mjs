// Vendor uPlot's browser build from node_modules into the dashboard's static folder, which the
// wheel ships (nothing is fetched at run time). The dashboard's own HTML, JS and CSS are plain
// files that need no build; they live in that folder (src/faceswap_oci/dashboard/static/).
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "src", "faceswap_oci", "dashboard", "static");
mkdirSync(out, { recursive: true });
const uplot = join(here, "node_modules", "uplot");
const version = JSON.parse(readFileSync(join(uplot, "package.json"), "utf8")).version;
copyFileSync(join(uplot, "dist", "uPlot.iife.min.js"), join(out, "uPlot.iife.min.js"));
copyFileSync(join(uplot, "dist", "uPlot.min.css"), join(out, "uPlot.min.css"));
copyFileSync(join(uplot, "LICENSE"), join(out, "uPlot.LICENSE"));
writeFileSync(join(out, "vendor.json"), JSON.stringify({ uplot: version }, null, 2) + "\n");
console.log(`built ${out} (uPlot ${version})`);
