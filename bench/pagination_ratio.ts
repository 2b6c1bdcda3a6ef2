/**
 * Interleaved timing of keyset pages: for each page of the pagination bench
 * (`_pagination_fixture.ts`), `paginateCursor()` against the same page
 * written by hand with Kysely's builder and against a prebuilt raw `sql`
 * template. Every round runs a batch of each variant, in rotating order, so
 * the three see the same machine load; the report gives each variant's
 * median time per page and the median of the per-round ratios.
 *
 * Run: `deno run -A bench/pagination_ratio.ts`
 *
 * Environment: `ROUNDS` (default 40), `BATCH` (pages per variant per round;
 * default 200 on SQLite, 50 on PostgreSQL), `DATABASES` (default
 * `sqlite,postgres`).
 */
import type { Kysely } from "kysely";
import { type DB, type PageCase, pageCases, postgresDb, sqliteDb } from "./_pagination_fixture.ts";

const ROUNDS = Number(Deno.env.get("ROUNDS") ?? 40);
const DATABASES = (Deno.env.get("DATABASES") ?? "sqlite,postgres").split(",").map((s) => s.trim());

const VARIANTS = ["raw", "handWritten", "paginateCursor"] as const;
type Variant = typeof VARIANTS[number];

function median(values: readonly number[]): number {
  const sorted = values.slice().sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Microseconds per call of `fn`, over `batch` sequential calls. */
async function timeBatch(fn: () => Promise<unknown>, batch: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < batch; i++) await fn();
  return (performance.now() - start) * 1000 / batch;
}

interface Result {
  readonly name: string;
  readonly median: Record<Variant, number>;
  readonly vsHand: number;
  readonly vsRaw: number;
}

async function measure(c: PageCase, batch: number): Promise<Result> {
  for (const v of VARIANTS) await timeBatch(c[v], batch * 2); // warm-up
  const times: Record<Variant, number[]> = { raw: [], handWritten: [], paginateCursor: [] };
  const vsHand: number[] = [];
  const vsRaw: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const now: Partial<Record<Variant, number>> = {};
    for (let k = 0; k < VARIANTS.length; k++) {
      const v = VARIANTS[(round + k) % VARIANTS.length]!;
      now[v] = await timeBatch(c[v], batch);
      times[v].push(now[v]);
    }
    vsHand.push(now.paginateCursor! / now.handWritten!);
    vsRaw.push(now.paginateCursor! / now.raw!);
  }
  return {
    name: c.name,
    median: {
      raw: median(times.raw),
      handWritten: median(times.handWritten),
      paginateCursor: median(times.paginateCursor),
    },
    vsHand: median(vsHand),
    vsRaw: median(vsRaw),
  };
}

function report(database: string, results: readonly Result[], batch: number): void {
  console.log(`\n${database}: median µs/page over ${ROUNDS} interleaved rounds of ${batch} pages per variant`);
  console.log(
    "page".padEnd(14) + "raw sql".padStart(10) + "hand Kysely".padStart(13) + "paginateCursor".padStart(16) +
      "vs hand".padStart(10) + "vs raw".padStart(9),
  );
  for (const r of results) {
    console.log(
      r.name.padEnd(14) + r.median.raw.toFixed(1).padStart(10) + r.median.handWritten.toFixed(1).padStart(13) +
        r.median.paginateCursor.toFixed(1).padStart(16) + `${r.vsHand.toFixed(3)}×`.padStart(10) +
        `${r.vsRaw.toFixed(3)}×`.padStart(9),
    );
  }
}

async function run(database: string, db: Kysely<DB>, batch: number): Promise<void> {
  const cases = await pageCases(db);
  const results: Result[] = [];
  for (const c of cases) results.push(await measure(c, batch));
  report(database, results, batch);
}

if (DATABASES.includes("sqlite")) {
  const db = sqliteDb();
  await run("sqlite", db, Number(Deno.env.get("BATCH") ?? 200));
  await db.destroy();
}
if (DATABASES.includes("postgres")) {
  const db = await postgresDb();
  if (db !== undefined) {
    await run("postgres", db, Number(Deno.env.get("BATCH") ?? 50));
    await db.destroy();
  }
}
