/**
 * Extracts the TypeScript code blocks of README.md and docs/*.md into files,
 * type-checks them and runs them, so that every snippet works as written.
 *
 * Blocks, by their fence:
 *
 * - ```` ```ts ```` a complete program, written as an npm user writes it
 *   (`import ... from "kysera/executor"`). It asserts its results
 *   (`node:assert/strict`) and may import `./db.ts`.
 * - ```` ```ts db.ts node ```` (`deno`, `bun`): the `./db.ts` module of that
 *   runtime (`openDb()`, an in-memory SQLite database through the runtime's
 *   driver), shown once in docs/getting_started.md.
 * - any other fence (`sh`, `json`, `text`, ...) is not code to run.
 *
 * Modes:
 *
 * - `deno run -A scripts/check_docs.ts`: writes the programs into
 *   `.doc_snippets/deno/` with `kysera` specifiers mapped to this checkout,
 *   `deno check`s them all (and the Node variant of db.ts), then runs each
 *   under Deno. Part of `deno task ci`.
 * - `deno run -A scripts/check_docs.ts --emit <dir>`: writes the programs
 *   unchanged (npm specifiers) into `<dir>/node/` and `<dir>/bun/`, each with
 *   its runtime's db.ts; smoke/run.sh compiles and runs them against the
 *   packed npm package under Node 20 and Bun.
 */
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../", import.meta.url));
const runtimes = ["node", "deno", "bun"] as const;
type Runtime = typeof runtimes[number];

interface Program {
  name: string;
  source: string;
  where: string;
}

async function markdownFiles(): Promise<string[]> {
  const files = ["README.md"];
  for await (const entry of Deno.readDir(`${root}docs`)) {
    if (entry.isFile && entry.name.endsWith(".md")) files.push(`docs/${entry.name}`);
  }
  return files.sort();
}

const programs: Program[] = [];
const dbModules = new Map<Runtime, string>();
for (const file of await markdownFiles()) {
  const lines = (await Deno.readTextFile(`${root}${file}`)).split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*(.*)$/.exec(lines[i]!);
    if (open === null) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    if (i >= lines.length) throw new Error(`${file}:${start + 1}: unclosed code block`);
    if (open[1] !== "ts") continue;
    const where = `${file}:${start + 1}`;
    const tags = open[2]!.trim().split(/\s+/).filter((tag) => tag !== "");
    if (tags[0] === "db.ts") {
      const runtime = tags[1] as Runtime;
      if (!runtimes.includes(runtime)) throw new Error(`${where}: db.ts block for an unknown runtime '${tags[1]}'`);
      if (dbModules.has(runtime)) throw new Error(`${where}: a second db.ts block for ${runtime}`);
      dbModules.set(runtime, body.join("\n") + "\n");
    } else if (tags.length > 0) {
      throw new Error(`${where}: unknown code block tags '${tags.join(" ")}'`);
    } else {
      const name = `${file.replace(/\.md$/, "").replace(/[^A-Za-z0-9]+/g, "_").toLowerCase()}_l${start + 1}.ts`;
      programs.push({ name, source: body.join("\n") + "\n", where });
    }
  }
}
for (const runtime of runtimes) {
  if (!dbModules.has(runtime)) throw new Error(`no db.ts block for ${runtime} in README.md or docs/`);
}
if (programs.length === 0) throw new Error("no ts code block found");

async function fresh(dir: string): Promise<void> {
  await Deno.remove(dir, { recursive: true }).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
  await Deno.mkdir(dir, { recursive: true });
}

async function deno(args: string[]): Promise<boolean> {
  const { success } = await new Deno.Command(Deno.execPath(), { args, cwd: root, stdout: "inherit", stderr: "inherit" })
    .output();
  return success;
}

const emitAt = Deno.args.indexOf("--emit");
if (emitAt >= 0) {
  const out = Deno.args[emitAt + 1];
  if (out === undefined) throw new Error("--emit needs a directory");
  for (const runtime of ["node", "bun"] as const) {
    const dir = `${out}/${runtime}`;
    await fresh(dir);
    await Deno.writeTextFile(`${dir}/db.ts`, dbModules.get(runtime)!);
    for (const program of programs) await Deno.writeTextFile(`${dir}/${program.name}`, program.source);
  }
  console.log(`docs: ${programs.length} programs written to ${out}/node and ${out}/bun`);
  Deno.exit(0);
}

// Deno: map the npm specifiers onto this checkout.
const denoJson = JSON.parse(await Deno.readTextFile(`${root}deno.json`)) as { exports: Record<string, string> };
const dir = `${root}.doc_snippets/deno`;
const relative = "../../";
function toCheckout(source: string): string {
  return source.replace(
    /(from\s+|import\s*\(\s*)"kysera(\/[a-z-]+)?"/g,
    (all, prefix: string, sub: string | undefined) => {
      const target = denoJson.exports[sub === undefined ? "." : `.${sub}`];
      if (target === undefined) throw new Error(`no export kysera${sub ?? ""} in deno.json: ${all}`);
      return `${prefix}"${relative}${target.replace(/^\.\//, "")}"`;
    },
  );
}
await fresh(dir);
await Deno.writeTextFile(`${dir}/db.ts`, toCheckout(dbModules.get("deno")!));
await Deno.writeTextFile(`${dir}/db_node.ts`, toCheckout(dbModules.get("node")!));
const names = new Map<string, string>();
for (const program of programs) {
  await Deno.writeTextFile(`${dir}/${program.name}`, `// ${program.where}\n` + toCheckout(program.source));
  names.set(program.name, program.where);
}
// (.doc_snippets/ is excluded from fmt and lint only: a project-wide exclude would make `deno check` skip it.)
if (!await deno(["check", `${dir}/db_node.ts`, ...programs.map((program) => `${dir}/${program.name}`)])) {
  throw new Error("docs: a code block does not type-check (files in .doc_snippets/deno, first line names the block)");
}
const failed: string[] = [];
for (const program of programs) {
  if (!await deno(["run", "-A", `${dir}/${program.name}`])) failed.push(program.where);
}
if (failed.length > 0) throw new Error(`docs: ${failed.length} code block(s) failed under Deno: ${failed.join(", ")}`);
console.log(`docs: ${programs.length} code blocks type-checked and run under Deno`);
