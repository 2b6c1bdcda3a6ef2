/**
 * Runs `deno doc --lint` over every entry point of deno.json's `exports` and
 * fails on any diagnostic, with one exception: a `private-type-ref` to a type
 * that Kysely itself exports (`Kysely`, `Transaction`, `Expression`,
 * `OperationNode`, ...). Kysely is a peer dependency whose types users import
 * from `"kysely"`; re-exporting them from Kysera would make `deno doc` lint
 * Kysely's own declarations (1,700+ diagnostics of Kysely's, none of Kysera's).
 * A reference to a Kysera type that is not exported is never allowed.
 *
 * Run: `deno task doc:lint` (part of `deno task ci`).
 */
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../", import.meta.url));
const denoJson = JSON.parse(await Deno.readTextFile(`${root}deno.json`)) as { exports: Record<string, string> };
const entries = Object.values(denoJson.exports);

/** Names exported by the `kysely` package, read with `deno doc --json`. */
async function kyselyExports(): Promise<Set<string>> {
  const probe = `${root}.doc_lint_kysely_probe.ts`;
  await Deno.writeTextFile(probe, 'export type * from "kysely";\n');
  try {
    const out = await run(["doc", "--json", probe]);
    if (!out.success) throw new Error(`deno doc --json failed:\n${out.stderr}`);
    const doc = JSON.parse(out.stdout) as { nodes: Record<string, { symbols: { name: string }[] }> };
    return new Set(Object.values(doc.nodes).flatMap((node) => node.symbols.map((symbol) => symbol.name)));
  } finally {
    await Deno.remove(probe);
  }
}

async function run(args: string[]): Promise<{ success: boolean; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: root,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { success: output.success, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}

const kysely = await kyselyExports();
if (!kysely.has("Kysely") || !kysely.has("OperationNode")) throw new Error("could not read Kysely's exported names");

/** Names of types declared anywhere in Kysera's sources: never excused as Kysely's. */
async function ownNames(): Promise<Set<string>> {
  const names = new Set<string>();
  const dirs = new Set(entries.map((entry) => entry.replace(/^\.\//, "").split("/")[0]!));
  const declaration =
    /^\s*(?:export\s+)?(?:declare\s+)?(?:abstract\s+)?(?:type|interface|class|enum)\s+([A-Za-z_$][\w$]*)\s*(?:[<={]|extends\b|implements\b)/gm;
  for (const dir of dirs) {
    for await (const file of walk(`${root}${dir}`)) {
      if (!file.endsWith(".ts")) continue;
      for (const match of (await Deno.readTextFile(file)).matchAll(declaration)) names.add(match[1]!);
    }
  }
  return names;
}

async function* walk(path: string): AsyncGenerator<string> {
  if ((await Deno.stat(path)).isFile) {
    yield path;
    return;
  }
  for await (const entry of Deno.readDir(path)) yield* walk(`${path}/${entry.name}`);
}

const own = await ownNames();
const lint = await run(["doc", "--lint", ...entries]);
// NO_COLOR is set; strip any colour code that slips through anyway.
const text = (lint.stdout + lint.stderr).replaceAll(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, "g"), "");
// Each diagnostic starts with "error[rule]: message" and runs to the next one.
const diagnostics = text.split(/\n(?=error\[)/).map((block) => block.trim()).filter((block) =>
  block.startsWith("error[")
);
const kept: string[] = [];
let allowed = 0;
for (const block of diagnostics) {
  const ref = /^error\[private-type-ref\]: public type '[^']+' references private type '([^']+)'/.exec(block);
  if (ref !== null && kysely.has(ref[1]!) && !own.has(ref[1]!)) {
    allowed++;
    continue;
  }
  kept.push(block);
}
if (diagnostics.length === 0 && !lint.success) {
  console.error(text);
  throw new Error("deno doc --lint failed without a diagnostic");
}
for (const block of kept) console.error(block + "\n");
console.log(
  `deno doc --lint over ${entries.length} entry points: ${kept.length} problem(s); ` +
    `${allowed} reference(s) to Kysely's own exported types allowed`,
);
if (kept.length > 0) Deno.exit(1);
