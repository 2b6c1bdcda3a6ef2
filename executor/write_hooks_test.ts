/** onWrite sees every column an UPDATE's SET writes, in each form Kysely builds it. */
import assert from "node:assert/strict";
import type { Kysely } from "kysely";
import { assertSql, dbSuite, plainRows } from "../_test/harness.ts";
import { createExecutorSync, type KyseraPlugin, type WriteInfo } from "./mod.ts";
import { type DB, sqlOf, tables } from "./_test_helpers.ts";

const suite = dbSuite<DB>(import.meta, { tables });

/**
 * A plugin that records what onWrite saw and sets `fill` on updates of
 * `table` unless the SET writes it already (as timestamps does with
 * `updated_at`).
 */
function recorder(table: string, fill: Record<string, unknown>): { plugin: KyseraPlugin; seen: WriteInfo[] } {
  const seen: WriteInfo[] = [];
  const plugin: KyseraPlugin = {
    name: "recorder",
    onWrite(write) {
      seen.push(write);
      if (write.operation !== "update" || write.table !== table) return undefined;
      const set = Object.fromEntries(Object.entries(fill).filter(([c]) => !write.columns.includes(c)));
      return Object.keys(set).length === 0 ? undefined : { set };
    },
  };
  return { plugin, seen };
}

function saw(seen: readonly WriteInfo[]): { table: string; columns: readonly string[]; row: unknown }[] {
  return seen.map((w) => ({ table: w.table, columns: w.columns, row: w.rows[0] }));
}

suite.test("onWrite sees the columns of set(column, value), not only of set({ ... })", async (ctx) => {
  const { plugin, seen } = recorder("posts", { title: "filled" });
  const executor = createExecutorSync(ctx.db, [plugin]);
  // `set("title", v)` builds a column reference, `set({ title: v })` a column:
  // both write `title`, so the plugin leaves it alone.
  const twoArg = executor.updateTable("posts").set("title", "mine").where("id", "=", 1);
  assertSql(ctx, twoArg, sqlOf('update "posts" set "title" = ? where "id" = ?', ["mine", 1]));
  await twoArg.execute();
  await executor.updateTable("posts").set({ title: "ours" }).where("id", "=", 3).execute();
  assert.deepEqual(saw(seen).slice(-2), [
    { table: "posts", columns: ["title"], row: { title: "mine" } },
    { table: "posts", columns: ["title"], row: { title: "ours" } },
  ]);
  // A SET that leaves the column out gets it from the plugin.
  const other = executor.updateTable("posts").set("user_id", 3).where("id", "=", 2);
  assertSql(ctx, other, sqlOf('update "posts" set "user_id" = ?, "title" = ? where "id" = ?', [3, "filled", 2]));
  await other.execute();
  const rows = await ctx.db.selectFrom("posts").select(["id", "title"]).orderBy("id").execute();
  assert.deepEqual(plainRows(rows), [
    { id: 1, title: "mine" },
    { id: 2, title: "filled" },
    { id: 3, title: "ours" },
    { id: 4, title: "y" },
  ]);
});

// `update posts set posts.title = ?` (a table-qualified SET column) and
// `update a, b set ...` (a multi-table UPDATE) are MySQL/MariaDB syntax:
// PostgreSQL and SQLite refuse a qualified SET column and name one target.
suite.test("onWrite sees table-qualified SET columns, per target of a multi-table UPDATE", async (ctx) => {
  const { plugin, seen } = recorder("users", { manager_id: 9 });
  // deno-lint-ignore no-explicit-any
  const executor = createExecutorSync(ctx.db, [plugin]) as Kysely<any>;
  await executor.updateTable("posts").set("posts.title", "q").where("id", "=", 1).execute();
  assert.deepEqual(saw(seen), [{ table: "posts", columns: ["title"], row: { title: "q" } }]);
  seen.length = 0;

  const multi = executor.updateTable(["posts as p", "users as u"]).set("p.title", "t").set("u.name", "ann")
    .whereRef("u.id", "=", "p.user_id").where("p.id", "=", 1);
  assertSql(ctx, multi, {
    mysql: {
      sql: "update `posts` as `p`, `users` as `u` set `p`.`title` = ?, `u`.`name` = ?, `u`.`manager_id` = ? " +
        "where `u`.`id` = `p`.`user_id` and `p`.`id` = ?",
      parameters: ["t", "ann", 9, 1],
    },
  });
  assert.deepEqual(saw(seen), [
    { table: "posts", columns: ["title"], row: { title: "t" } },
    { table: "users", columns: ["name"], row: { name: "ann" } },
  ]);
  await multi.execute();
  const joined = await ctx.db.selectFrom("posts as p").innerJoin("users as u", "u.id", "p.user_id")
    .select(["p.title", "u.name", "u.manager_id"]).where("p.id", "=", 1).execute();
  assert.deepEqual(plainRows(joined), [{ title: "t", name: "ann", manager_id: 9 }]);

  // An unqualified column of a multi-table UPDATE may write either table:
  // every target is told about it.
  seen.length = 0;
  executor.updateTable(["posts as p", "users as u"]).set("name", "x").whereRef("u.id", "=", "p.user_id").compile();
  assert.deepEqual(saw(seen), [
    { table: "posts", columns: ["name"], row: { name: "x" } },
    { table: "users", columns: ["name"], row: { name: "x" } },
  ]);
}, { databases: ["mariadb"] });

// PostgreSQL's data-modifying CTEs (MariaDB and SQLite have none): onWrite
// sees the INSERTs and UPDATEs inside a WITH clause like top-level ones.
suite.test("onWrite sees the writes of a data-modifying WITH clause", async (ctx) => {
  const seen: string[] = [];
  const stamp: KyseraPlugin = {
    name: "stamp",
    onWrite: (w) => {
      seen.push(`${w.operation} ${w.table} ${w.kind}`);
      return w.table === "posts" ? { set: { title: "stamped" } } : undefined;
    },
  };
  const ex = createExecutorSync(ctx.db, [stamp]);
  const inserted = await ex.with(
    "x",
    (qc) => qc.insertInto("posts").values({ tenant_id: 1, user_id: 1, title: "raw" }).returning(["id", "title"]),
  ).selectFrom("x").selectAll().execute();
  assert.deepEqual(inserted.map((r) => r.title), ["stamped"]);
  await ex.with(
    "y",
    (qc) => qc.updateTable("posts").set({ user_id: 2 }).where("id", "=", inserted[0]!.id).returning("id"),
  )
    .selectFrom("y").selectAll().execute();
  assert.deepEqual(seen, ["insert posts values", "update posts set"]);
}, { databases: ["postgres"] });
