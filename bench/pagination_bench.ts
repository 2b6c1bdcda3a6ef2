/**
 * Pagination benches: a keyset page of `paginateCursor()` against the same
 * page written by hand with Kysely's builder (the baseline: decode the
 * client's cursor, build the query, run it with LIMIT + 1, encode the next
 * cursor), against a prebuilt raw `sql` template (the floor: no cursor, no
 * builder), and against OFFSET at the same depth, on a 100k-row table:
 * SQLite (node:sqlite) and PostgreSQL when reachable
 * (`KYSERA_TEST_POSTGRES_URL`). One column and two columns of mixed
 * directions, page 1 and a page at 90% depth; the pages are defined in
 * `_pagination_fixture.ts`, which checks that `paginateCursor()` sends exactly
 * the hand-written SQL. Also the cursor codec: encode and decode, 1 and 3
 * columns, unsigned and signed.
 *
 * `CODEC_ONLY=1` runs the codec groups alone. For ratios measured with the
 * variants interleaved (steadier on a busy machine), run
 * `deno run -A bench/pagination_ratio.ts`.
 *
 * Run: `deno bench -A bench/pagination_bench.ts`
 */
import type { Kysely } from "kysely";
import { createCursorCodec } from "../core/mod.ts";
import { type DB, pageCases, postgresDb, sqliteDb } from "./_pagination_fixture.ts";

async function register(name: string, db: Kysely<DB>) {
  for (const page of await pageCases(db)) {
    const group = `${name} ${page.name}`;
    const variants = [
      ["hand-written Kysely", page.handWritten],
      ["paginateCursor", page.paginateCursor],
      ["raw sql template (prebuilt)", page.raw],
      ...(page.offset === undefined ? [] : [["OFFSET", page.offset] as const]),
    ] as const;
    for (const [label, run] of variants) {
      Deno.bench({
        name: `${group}: ${label}`,
        group,
        baseline: run === page.handWritten,
        fn: async () => {
          await run();
        },
      });
    }
  }
}

if (!Deno.env.get("CODEC_ONLY")) await register("sqlite", sqliteDb());
const postgres = Deno.env.get("CODEC_ONLY") ? undefined : await postgresDb();
if (postgres !== undefined) await register("postgres", postgres);

// Codec.
const SECRET = "bench-secret-of-at-least-thirty-two-bytes";
const one = [{ name: "id", type: "number" as const, nullable: false }];
const three = [
  { name: "created_at", type: "date" as const, nullable: false },
  { name: "title", type: "string" as const, nullable: true },
  { name: "id", type: "number" as const, nullable: false },
];
const threeValues = [new Date("2024-01-02T03:04:05.678Z"), "hello world", 123456];
for (const [label, columns, values] of [["1-col", one, [123456]], ["3-col", three, threeValues]] as const) {
  const unsigned = createCursorCodec({ columns, context: "bench" });
  const signed = createCursorCodec({ columns, context: "bench", secret: SECRET });
  const token = unsigned.encodeSync(values);
  const signedToken = await signed.encode(values);
  const json = JSON.stringify(values);
  Deno.bench({
    name: `decode ${label}: JSON.parse baseline`,
    group: `decode ${label}`,
    baseline: true,
    fn: () => {
      JSON.parse(json);
    },
  });
  Deno.bench({
    name: `decode ${label}: unsigned`,
    group: `decode ${label}`,
    fn: () => {
      unsigned.decodeSync(token);
    },
  });
  Deno.bench({
    name: `decode ${label}: signed`,
    group: `decode ${label}`,
    fn: async () => {
      await signed.decode(signedToken);
    },
  });
  Deno.bench({
    name: `encode ${label}: JSON.stringify baseline`,
    group: `encode ${label}`,
    baseline: true,
    fn: () => {
      JSON.stringify(values);
    },
  });
  Deno.bench({
    name: `encode ${label}: unsigned`,
    group: `encode ${label}`,
    fn: () => {
      unsigned.encodeSync(values);
    },
  });
  Deno.bench({
    name: `encode ${label}: signed`,
    group: `encode ${label}`,
    fn: async () => {
      await signed.encode(values);
    },
  });
}
