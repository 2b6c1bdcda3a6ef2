/**
 * Interleaved timing of the RLS plugin's cost, beside `executor_bench.ts`'s
 * "rls" groups: the same filtered select compiled (and run on SQLite)
 * through an executor with `rlsPlugin()`, against hand-written Kysely with
 * the identical `"posts"."tenant_id" = ?` SQL. The RLS context is entered
 * once around each batch, or once per query. Every round runs one batch of
 * each variant, in rotating order, so all see the same machine load; the
 * report gives each variant's median time per query and the median of the
 * per-round ratios against the hand-written query. Also: what the context
 * costs on this runtime (`rlsContext.run` + a read, and a read alone).
 *
 * Run: `deno run -A bench/rls_ratio.ts`
 *
 * Environment: `ROUNDS` (default 300), `BATCH` (queries per variant per
 * round; default 200).
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { Kysely, SqliteDialect } from "kysely";
import { wrapSyncSqlite } from "../dialects/mod.ts";
import { createExecutorSync } from "../executor/mod.ts";
import { defineRLSSchema, filter, type RLSContext, rlsContext, rlsPlugin } from "../plugins/rls/mod.ts";

const ROUNDS = Number(Deno.env.get("ROUNDS") ?? 300);
const BATCH = Number(Deno.env.get("BATCH") ?? 200);

interface DB {
  posts: { id: number; tenant_id: number; status: string; created_at: number };
}

const handle = new DatabaseSync(":memory:");
handle.exec("create table posts (id integer primary key, tenant_id integer, status text, created_at integer)");
for (let i = 0; i < 1000; i++) {
  handle.exec(`insert into posts values (${i}, ${i % 3}, '${i % 4 ? "live" : "draft"}', ${i})`);
}
const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: wrapSyncSqlite(handle) }) });
const executor = createExecutorSync(db, [
  rlsPlugin({
    schema: defineRLSSchema<DB>({ posts: { policies: [filter("all", (c) => ({ tenant_id: c.auth.tenantId }))] } }),
  }),
]);
const TENANT: RLSContext = Object.freeze({ auth: Object.freeze({ userId: 1, tenantId: 1, roles: Object.freeze([]) }) });

const query = (k: Kysely<DB>) =>
  k.selectFrom("posts").select(["id", "status"]).where("status", "=", "live").where("created_at", ">", 100)
    .orderBy("created_at", "desc").limit(20);
const hand = (k: Kysely<DB>) =>
  k.selectFrom("posts").select(["id", "status"]).where("status", "=", "live").where("created_at", ">", 100)
    .where("posts.tenant_id", "=", 1).orderBy("created_at", "desc").limit(20);

rlsContext.run(TENANT, () => {
  assert.equal(query(executor).compile().sql, hand(db).compile().sql);
  assert.deepEqual(query(executor).compile().parameters, hand(db).compile().parameters);
});

type Variants = Record<string, () => void | Promise<void>>;

const compileOnly: Variants = {
  "hand-written": () => {
    for (let i = 0; i < BATCH; i++) hand(db).compile();
  },
  "rls, context once per batch": () =>
    rlsContext.run(TENANT, () => {
      for (let i = 0; i < BATCH; i++) query(executor).compile();
    }),
  "rls, context per query": () => {
    for (let i = 0; i < BATCH; i++) rlsContext.run(TENANT, () => query(executor).compile());
  },
};
const execute: Variants = {
  "hand-written": async () => {
    for (let i = 0; i < BATCH; i++) await hand(db).execute();
  },
  "rls, context once per batch": () =>
    rlsContext.runAsync(TENANT, async () => {
      for (let i = 0; i < BATCH; i++) await query(executor).execute();
    }),
  "rls, context per query": async () => {
    for (let i = 0; i < BATCH; i++) await rlsContext.runAsync(TENANT, () => query(executor).execute());
  },
};
const context: Variants = {
  "no context (hasContext)": () => {
    for (let i = 0; i < BATCH; i++) rlsContext.hasContext();
  },
  "rlsContext.run + get": () => {
    for (let i = 0; i < BATCH; i++) rlsContext.run(TENANT, () => rlsContext.hasContext());
  },
  "get inside a context": () =>
    rlsContext.run(TENANT, () => {
      for (let i = 0; i < BATCH; i++) rlsContext.hasContext();
    }),
};

function median(values: readonly number[]): number {
  const sorted = values.slice().sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Median ns per call of each variant, and the median per-round ratio to the first. */
async function measure(group: string, variants: Variants): Promise<void> {
  const names = Object.keys(variants);
  for (let warm = 0; warm < 20; warm++) for (const name of names) await variants[name]!();
  const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(round + k) % names.length]!;
      const start = performance.now();
      await variants[name]!();
      times[name]!.push((performance.now() - start) * 1e6 / BATCH);
    }
  }
  console.log(`\n${group} (${ROUNDS} rounds of ${BATCH})`);
  const base = times[names[0]!]!;
  for (const name of names) {
    const ratio = median(times[name]!.map((t, i) => t / base[i]!));
    console.log(`  ${name.padEnd(30)} ${median(times[name]!).toFixed(0).padStart(6)} ns   ×${ratio.toFixed(3)}`);
  }
}

await measure("rls compile-only", compileOnly);
await measure("rls execute-on-SQLite", execute);
await measure("rls context cost", context);
assert.equal(rlsContext.hasContext(), false);
await db.destroy();
