/**
 * Builds the npm package `kysera` into `npm/` from the Deno sources:
 * TypeScript's `tsc` with `rewriteRelativeImportExtensions` emits ESM and
 * declarations with the same file layout as the source, and `package.json`
 * gets one subpath export per entry of deno.json's `exports`.
 *
 * Run: `deno task build:npm`.
 */
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../", import.meta.url));
const outDir = `${root}npm`;

interface DenoJson {
  version: string;
  exports: Record<string, string>;
  imports: Record<string, string>;
}
interface PackageJson {
  devDependencies: Record<string, string>;
}

const denoJson = JSON.parse(await Deno.readTextFile(`${root}deno.json`)) as DenoJson;
const rootPackage = JSON.parse(await Deno.readTextFile(`${root}package.json`)) as PackageJson;

await Deno.remove(outDir, { recursive: true }).catch((error) => {
  if (!(error instanceof Deno.errors.NotFound)) throw error;
});

// 1. Compile with tsc.
const tsconfig = {
  compilerOptions: {
    target: "ES2022",
    module: "NodeNext",
    moduleResolution: "NodeNext",
    // Web APIs (TextEncoder, crypto.subtle) exist on Node 20+, Bun and Deno;
    // node:async_hooks is the one Node module the library imports.
    lib: ["ES2022", "DOM"],
    types: ["node"],
    declaration: true,
    // No source maps: tsc's unbundled ES2022 output reads like the source, and
    // maps pointing at sources the package does not ship (or inlining them, 55 %
    // of the package before) only add weight.
    sourceMap: false,
    strict: true,
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: true,
    noImplicitOverride: true,
    skipLibCheck: true,
    isolatedModules: true,
    verbatimModuleSyntax: true,
    rewriteRelativeImportExtensions: true,
    rootDir: ".",
    outDir: "npm/esm",
  },
  files: Object.values(denoJson.exports),
};
const tsconfigPath = `${root}tsconfig.build.json`;
await Deno.writeTextFile(tsconfigPath, JSON.stringify(tsconfig, null, 2));
try {
  const tsc = await new Deno.Command("node", {
    args: [`${root}node_modules/typescript/bin/tsc`, "-p", tsconfigPath],
    cwd: root,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!tsc.success) throw new Error(`tsc failed with exit code ${tsc.code}`);
} finally {
  await Deno.remove(tsconfigPath);
}

// 2. tsc leaves "./x.ts" in declarations; rewrite relative specifiers to ".js"
// (line-anchored, so JSDoc examples stay as they are).
let declarations = 0;
for await (const file of walk(`${outDir}/esm`)) {
  if (!file.endsWith(".d.ts")) continue;
  const text = await Deno.readTextFile(file);
  const rewritten = text
    .replace(/^((?:import|export)\b[^\n]*?\bfrom\s+["'])(\.{1,2}\/[^"']+)\.ts(["'])/gm, "$1$2.js$3")
    .replace(/(\bimport\(["'])(\.{1,2}\/[^"']+)\.ts(["']\))/g, "$1$2.js$3");
  if (rewritten !== text) await Deno.writeTextFile(file, rewritten);
  declarations++;
}

// 3. package.json, with the same subpaths as deno.json.
const exportsMap: Record<string, { types: string; import: string }> = {};
for (const [subpath, source] of Object.entries(denoJson.exports)) {
  const base = source.replace(/^\.\//, "./esm/").replace(/\.ts$/, "");
  exportsMap[subpath] = { types: `${base}.d.ts`, import: `${base}.js` };
}
const kysely = rootPackage.devDependencies["kysely"];
if (kysely === undefined) throw new Error("package.json has no kysely devDependency");
const packageJson = {
  name: "kysera",
  version: denoJson.version,
  description:
    "Typed errors, keyset pagination, a plugin-aware executor, DAL and repositories on top of Kysely (Deno, Node, Bun). ESM only: import it, do not require it",
  license: "MIT",
  type: "module",
  sideEffects: false,
  engines: { node: ">=20" },
  exports: exportsMap,
  files: ["esm/"],
  keywords: ["kysely", "sql", "postgres", "mysql", "mariadb", "sqlite", "deno", "bun"],
  peerDependencies: { kysely: `^${kysely}` },
};
await Deno.writeTextFile(`${outDir}/package.json`, JSON.stringify(packageJson, null, 2) + "\n");

// 4. README and LICENSE.
await Deno.copyFile(`${root}README.md`, `${outDir}/README.md`);
await Deno.copyFile(`${root}LICENSE`, `${outDir}/LICENSE`);

console.log(
  `npm/: kysera@${denoJson.version}, ${Object.keys(exportsMap).length} subpaths, ${declarations} declaration files`,
);

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* walk(path);
    else yield path;
  }
}
