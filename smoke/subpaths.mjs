// Imports every subpath the packed package exports (read from its own
// package.json), under Node and Bun (smoke/run.sh): each must load and export
// something.
import { readFileSync } from "node:fs";

const runtime = typeof globalThis.Bun !== "undefined" ? `bun ${globalThis.Bun.version}` : `node ${process.version}`;
const manifest = JSON.parse(readFileSync(new URL("./node_modules/kysera/package.json", import.meta.url), "utf8"));
const subpaths = Object.keys(manifest.exports).filter((subpath) => subpath !== "./package.json");
for (const subpath of subpaths) {
  const specifier = subpath === "." ? "kysera" : `kysera/${subpath.slice(2)}`;
  const module = await import(specifier);
  if (Object.keys(module).length === 0) throw new Error(`${runtime}: ${specifier} exports nothing`);
}
console.log(`${runtime}: all ${subpaths.length} subpaths import`);
