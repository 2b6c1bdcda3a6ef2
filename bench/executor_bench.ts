/**
 * The executor's cost: raw Kysely (baseline) against an executor with 0, 1
 * and 3 row-scope plugins, and against hand-written Kysely producing the
 * same SQL as the scoped executor. Compile-only and execute on SQLite.
 *
 * Soft delete: an executor with `softDeletePlugin()` against hand-written
 * Kysely with the identical `deleted_at is null` predicates (baseline), on
 * a query with a FROM and a left join of a covered table.
 *
 * RLS: an executor with `rlsPlugin()` (a `tenant_id` column-map filter)
 * against hand-written Kysely with the identical `tenant_id = ?` SQL
 * (baseline); the RLS context (AsyncLocalStorage) is entered per call, or
 * once around a loop of 100 queries. Every RLS bench enters and leaves its
 * own context, so none is left behind for the other groups. On a noisy
 * machine, `bench/rls_ratio.ts` gives the same comparison interleaved
 * (medians of per-round ratios).
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { type Expression, Kysely, type SqlBool, SqliteDialect } from "kysely";
import { wrapSyncSqlite } from "../dialects/mod.ts";
import { createExecutorSync, type KyseraPlugin } from "../executor/mod.ts";
import { softDeletePlugin } from "../plugins/soft_delete/mod.ts";
import { defineRLSSchema, filter, type RLSContext, rlsContext, rlsPlugin } from "../plugins/rls/mod.ts";

interface DB {
  posts: { id: number; tenant_id: number; org_id: number; region: number; status: string; created_at: number };
  docs: { id: number; parent_id: number | null; status: string; created_at: number; deleted_at: number | null };
}

const handle = new DatabaseSync(":memory:");
handle.exec(
  "create table posts (id integer primary key, tenant_id integer, org_id integer, region integer, status text, created_at integer)",
);
for (let i = 0; i < 1000; i++) {
  handle.exec(`insert into posts values (${i}, ${i % 3}, ${i % 2}, ${i % 5}, '${i % 4 ? "live" : "draft"}', ${i})`);
}
handle.exec(
  "create table docs (id integer primary key, parent_id integer, status text, created_at integer, deleted_at integer)",
);
for (let i = 0; i < 1000; i++) {
  handle.exec(
    `insert into docs values (${i}, ${i % 10 ? i - 1 : "null"}, '${i % 4 ? "live" : "draft"}', ${i}, ${
      i % 7 ? "null" : i
    })`,
  );
}
const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: wrapSyncSqlite(handle) }) });

const scope = (name: string, column: "tenant_id" | "org_id" | "region", value: number): KyseraPlugin => ({
  name,
  scopeRows: (ref, eb) => ref.table === "posts" ? eb(ref.column(column), "=", value) as Expression<SqlBool> : undefined,
});
const none = createExecutorSync(db, []);
const one = createExecutorSync(db, [scope("a", "tenant_id", 1)]);
const three = createExecutorSync(db, [scope("a", "tenant_id", 1), scope("b", "org_id", 1), scope("c", "region", 2)]);

const query = (k: Kysely<DB>) =>
  k.selectFrom("posts").select(["id", "status"]).where("status", "=", "live").where("created_at", ">", 100)
    .orderBy("created_at", "desc").limit(20);
const handOne = (k: Kysely<DB>) =>
  k.selectFrom("posts").select(["id", "status"]).where("status", "=", "live").where("created_at", ">", 100)
    .where("posts.tenant_id", "=", 1).orderBy("created_at", "desc").limit(20);
const handThree = (k: Kysely<DB>) => handOne(k).where("posts.org_id", "=", 1).where("posts.region", "=", 2);

// The scoped executor and the hand-written query compile to the same SQL.
assert.equal(query(one).compile().sql, handOne(db).compile().sql);
assert.deepEqual(query(three).compile().parameters, handThree(db).compile().parameters);
assert.equal(query(three).compile().sql, handThree(db).compile().sql);

for (
  const [group, run] of [
    ["compile-only", (q: { compile(): unknown }) => q.compile()],
    ["execute-on-SQLite", (q: { execute(): Promise<unknown> }) => q.execute()],
  ] as const
) {
  const go = run as (q: ReturnType<typeof query>) => unknown;
  Deno.bench({ group, name: "raw Kysely", baseline: true, fn: async () => void await go(query(db)) });
  Deno.bench({ group, name: "executor, 0 plugins", fn: async () => void await go(query(none)) });
  Deno.bench({ group, name: "executor, 1 scope plugin", fn: async () => void await go(query(one)) });
  Deno.bench({ group, name: "hand-written, 1 scope", fn: async () => void await go(handOne(db)) });
  Deno.bench({ group, name: "executor, 3 scope plugins", fn: async () => void await go(query(three)) });
  Deno.bench({ group, name: "hand-written, 3 scopes", fn: async () => void await go(handThree(db)) });
}

// Soft delete: the plugin against the hand-written `deleted_at is null` SQL.
const softDeleting = createExecutorSync(db, [softDeletePlugin({ tables: ["docs"] })]);
const docsQuery = (k: Kysely<DB>) =>
  k.selectFrom("docs as d").leftJoin("docs as p", "p.id", "d.parent_id").select(["d.id", "p.status"])
    .where("d.status", "=", "live").where("d.created_at", ">", 100).orderBy("d.created_at", "desc").limit(20);
const handDocs = (k: Kysely<DB>) =>
  k.selectFrom("docs as d").leftJoin(
    "docs as p",
    (j) => j.onRef("p.id", "=", "d.parent_id").on("p.deleted_at", "is", null),
  )
    .select(["d.id", "p.status"]).where("d.status", "=", "live").where("d.created_at", ">", 100)
    .where("d.deleted_at", "is", null).orderBy("d.created_at", "desc").limit(20);

assert.equal(docsQuery(softDeleting).compile().sql, handDocs(db).compile().sql);
assert.deepEqual(docsQuery(softDeleting).compile().parameters, handDocs(db).compile().parameters);
assert.deepEqual(await docsQuery(softDeleting).execute(), await handDocs(db).execute());

Deno.bench({
  group: "soft-delete compile-only",
  name: "hand-written soft delete (deleted_at is null)",
  baseline: true,
  fn: () => void handDocs(db).compile(),
});
Deno.bench({
  group: "soft-delete compile-only",
  name: "executor + softDeletePlugin",
  fn: () => void docsQuery(softDeleting).compile(),
});
Deno.bench({
  group: "soft-delete execute-on-SQLite",
  name: "hand-written soft delete (deleted_at is null)",
  baseline: true,
  fn: async () => void await handDocs(db).execute(),
});
Deno.bench({
  group: "soft-delete execute-on-SQLite",
  name: "executor + softDeletePlugin",
  fn: async () => void await docsQuery(softDeleting).execute(),
});

// RLS: the plugin against the hand-written `"posts"."tenant_id" = ?` SQL.
const rlsExecutor = createExecutorSync(db, [
  rlsPlugin({
    schema: defineRLSSchema<DB>({ posts: { policies: [filter("all", (c) => ({ tenant_id: c.auth.tenantId }))] } }),
  }),
]);
// Frozen all the way down, as a request handler would build it once per request.
const TENANT: RLSContext = Object.freeze({ auth: Object.freeze({ userId: 1, tenantId: 1, roles: Object.freeze([]) }) });
const rlsQuery = (k: Kysely<DB>) =>
  k.selectFrom("posts").select(["id", "status"]).where("status", "=", "live").where("created_at", ">", 100)
    .orderBy("created_at", "desc").limit(20);
const handRls = handOne;

await rlsContext.runAsync(TENANT, async () => {
  assert.equal(rlsQuery(rlsExecutor).compile().sql, handRls(db).compile().sql);
  assert.deepEqual(rlsQuery(rlsExecutor).compile().parameters, handRls(db).compile().parameters);
  assert.deepEqual(await rlsQuery(rlsExecutor).execute(), await handRls(db).execute());
});
assert.equal(rlsContext.hasContext(), false);

const LOOP = 100;
Deno.bench({
  group: "rls compile-only",
  name: "hand-written tenant filter (tenant_id = ?)",
  baseline: true,
  fn: () => void handRls(db).compile(),
});
Deno.bench({
  group: "rls compile-only",
  name: "executor + rlsPlugin, context per call",
  fn: () => void rlsContext.run(TENANT, () => rlsQuery(rlsExecutor).compile()),
});
Deno.bench({
  group: "rls compile-only, 100 queries",
  name: "hand-written tenant filter (tenant_id = ?)",
  baseline: true,
  fn: () => {
    for (let i = 0; i < LOOP; i++) handRls(db).compile();
  },
});
Deno.bench({
  group: "rls compile-only, 100 queries",
  name: "executor + rlsPlugin, context once per loop",
  fn: () =>
    rlsContext.run(TENANT, () => {
      for (let i = 0; i < LOOP; i++) rlsQuery(rlsExecutor).compile();
    }),
});
Deno.bench({
  group: "rls execute-on-SQLite",
  name: "hand-written tenant filter (tenant_id = ?)",
  baseline: true,
  fn: async () => void await handRls(db).execute(),
});
Deno.bench({
  group: "rls execute-on-SQLite",
  name: "executor + rlsPlugin, context per call",
  fn: async () => void await rlsContext.runAsync(TENANT, () => rlsQuery(rlsExecutor).execute()),
});
Deno.bench({
  group: "rls context cost",
  name: "no context",
  baseline: true,
  fn: () => void rlsContext.hasContext(),
});
Deno.bench({
  group: "rls context cost",
  name: "rlsContext.run + get",
  fn: () => void rlsContext.run(TENANT, () => rlsContext.hasContext()),
});
