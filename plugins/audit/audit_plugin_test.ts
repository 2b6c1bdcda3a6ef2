import assert from "node:assert/strict";
import { type Kysely, type KyselyPlugin, type PluginTransformQueryArgs, type RootOperationNode, sql } from "kysely";
import { addIdColumn, dbSuite, rejection, type TestDatabase } from "../../_test/harness.ts";
import { createExecutorSync } from "../../executor/mod.ts";
import { auditPlugin, auditReader, createAuditTable } from "./mod.ts";

// deno-lint-ignore no-explicit-any
type DB = any;

async function tables(db: Kysely<DB>, database: TestDatabase): Promise<void> {
  await createAuditTable(db);
  await addIdColumn(db.schema.createTable("posts"), database)
    .addColumn("title", "varchar(50)", (c) => c.notNull().unique())
    .addColumn("n", "integer", (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createTable("pairs")
    .addColumn("a", "integer", (c) => c.notNull())
    .addColumn("b", "integer", (c) => c.notNull())
    .addColumn("v", "varchar(20)")
    .addPrimaryKeyConstraint("pairs_pk", ["a", "b"])
    .execute();
}

const suite = dbSuite<DB>(import.meta, { tables });

/** A Kysely plugin that records the SQL of every statement. */
function recorder(): KyselyPlugin & { sql: string[] } {
  const sql: string[] = [];
  return {
    sql,
    transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
      sql.push(args.node.kind);
      return args.node;
    },
    transformResult: (args) => Promise.resolve(args.result),
  };
}

const logs = async (db: Kysely<DB>) => await auditReader(db).getTableAuditLogs("posts");

suite.test("every write path writes one audit row per affected row", async (ctx) => {
  const x = createExecutorSync(ctx.db, [
    auditPlugin({ actor: () => "ada", tenant: () => 7, metadata: () => ({ ip: "1" }) }),
  ]);
  const created = await x.insertInto("posts").values([{ title: "a" }, { title: "b" }, { title: "c" }]).execute();
  assert.equal(created[0]?.numInsertedOrUpdatedRows, 3n);
  await x.updateTable("posts").set({ n: 5 }).where("title", "in", ["a", "b"]).execute();
  await x.deleteFrom("posts").where("title", "=", "c").execute();
  await x.insertInto("posts").columns(["title", "n"]).expression((eb) =>
    eb.selectFrom("posts").select([eb.fn<string>("concat", ["title", sql.lit("2")]).as("title"), "n"]).where(
      "title",
      "=",
      "a",
    )
  ).execute();
  let all = await logs(ctx.db);
  assert.deepEqual(all.map((e) => e.operation), ["insert", "insert", "insert", "update", "update", "delete", "insert"]);
  assert.deepEqual(all[3]!.changedFields, ["n"]);
  assert.equal(all[3]!.oldValues!.n, 0);
  assert.equal(all[3]!.newValues!.n, 5);
  assert.equal(all[5]!.oldValues!.title, "c");
  assert.equal(all[5]!.newValues, null);
  assert.equal(all[6]!.newValues!.title, "a2");
  assert.deepEqual([all[0]!.actor, all[0]!.tenantId, all[0]!.metadata], ["ada", "7", { ip: "1" }]);
  const returned = await x.insertInto("posts").values({ title: "d" }).returning("title").execute();
  // Kysely's MySQL adapter reports an InsertResult even when MariaDB returns rows.
  if (ctx.database !== "mariadb") assert.deepEqual(returned.map((r) => ({ ...r })), [{ title: "d" }]);
  // upsert: one insert, one update
  const id = (await ctx.db.selectFrom("posts").select("id").where("title", "=", "a").executeTakeFirstOrThrow()).id;
  const upsert = x.insertInto("posts").values([{ id, title: "a", n: 9 }, { id: 1000, title: "z", n: 1 }]);
  await (ctx.database === "mariadb"
    ? upsert.onDuplicateKeyUpdate((eb) => ({ n: eb.fn("values", ["n"]) }))
    : upsert.onConflict((oc) => oc.column("id").doUpdateSet((eb) => ({ n: eb.ref("excluded.n") })))).execute();
  all = await logs(ctx.db);
  const tail = all.slice(-2);
  assert.deepEqual(tail.map((e) => [e.operation, e.oldValues?.n ?? null, e.newValues?.n]), [["update", 5, 9], [
    "insert",
    null,
    1,
  ]]);
});

suite.test("a rollback leaves no audit row, and a failing audit insert fails the write", async (ctx) => {
  const x = createExecutorSync(ctx.db, [auditPlugin()]);
  await rejection(
    x.transaction().execute(async (trx) => {
      await trx.insertInto("posts").values({ title: "a" }).execute();
      throw new Error("roll back");
    }),
  );
  assert.equal((await logs(ctx.db)).length, 0);
  const broken = createExecutorSync(ctx.db, [auditPlugin({ table: "missing_audit" })]);
  await rejection(broken.insertInto("posts").values({ title: "b" }).execute());
  await rejection(
    broken.transaction().execute(async (trx) => {
      await trx.insertInto("posts").values({ title: "kept" }).execute();
      await trx.insertInto("posts").values({ title: "c" }).execute().catch(() => {});
    }).then(() => {
      throw new Error("committed");
    }).catch((e) => {
      if ((e as Error).message === "committed") return Promise.reject(e);
    }).then(() => Promise.reject(new Error("done"))),
  );
  const titles = (await ctx.db.selectFrom("posts").select("title").execute()).map((r) => r.title);
  assert.ok(!titles.includes("b"));
  assert.ok(!titles.includes("c"));
});

suite.test("20 concurrent updates of one row give an unbroken chain", async (ctx) => {
  const x = createExecutorSync(ctx.db, [auditPlugin()]);
  await x.insertInto("posts").values({ title: "hot", n: 0 }).execute();
  // SQLite (synchronous driver) cannot wait for a lock held by another connection in this thread: one connection.
  const executors = Array.from(
    { length: 20 },
    () => ctx.database === "sqlite" ? x : createExecutorSync(ctx.connect(), [auditPlugin()]),
  );
  await Promise.all(
    executors.map((e) =>
      e.updateTable("posts").set((eb) => ({ n: eb("n", "+", 1) })).where("title", "=", "hot").execute()
    ),
  );
  const chain = (await logs(ctx.db)).filter((e) => e.operation === "update");
  assert.equal(chain.length, 20);
  chain.sort((p, q) => Number(p.oldValues!.n) - Number(q.oldValues!.n));
  chain.forEach((e, i) => {
    assert.equal(Number(e.oldValues!.n), i);
    assert.equal(Number(e.newValues!.n), i + 1);
  });
});

suite.test("a bulk update of 1,000 rows costs a constant number of statements", async (ctx) => {
  const rec = recorder();
  const x = createExecutorSync(ctx.db.withPlugin(rec), [auditPlugin()]);
  const rows = Array.from({ length: 1000 }, (_, i) => ({ title: `t${i}` }));
  await ctx.db.insertInto("posts").values(rows).execute();
  rec.sql.length = 0;
  await x.updateTable("posts").set({ n: 1 }).execute();
  const statements = rec.sql.length;
  assert.ok(statements <= 7, `${statements} statements`);
  assert.equal((await logs(ctx.db)).length, 1000);
  rec.sql.length = 0;
  await x.updateTable("posts").set({ n: 2 }).where("title", "=", "t1").execute();
  assert.equal(rec.sql.length, statements);
  console.log(`${ctx.database}: ${statements} statements per update (lone write, implicit transaction)`);
});

suite.test("restore and as-of round-trip, composite keys, and restore refuses a changed row", async (ctx) => {
  let now = new Date("2024-01-01T00:00:00.000Z");
  const x = createExecutorSync(ctx.db, [auditPlugin({ clock: () => now, primaryKey: { pairs: ["a", "b"] } })]);
  const reader = auditReader(x, { primaryKey: { pairs: ["a", "b"] } });
  await x.insertInto("pairs").values([{ a: 1, b: 1, v: "one" }, { a: 1, b: 2, v: "x" }]).execute();
  now = new Date("2024-02-01T00:00:00.000Z");
  await x.updateTable("pairs").set({ v: "two" }).where("a", "=", 1).where("b", "=", 1).execute();
  const history = await reader.getAuditHistory("pairs", { a: 1, b: 1 });
  assert.deepEqual(history.map((e) => e.operation), ["insert", "update"]);
  assert.equal((await reader.asOf("pairs", { a: 1, b: 1 }, new Date("2024-01-15T00:00:00.000Z")))?.v, "one");
  await reader.restoreFromAudit(history[1]!.id);
  const value = async () =>
    (await ctx.db.selectFrom("pairs").select("v").where("a", "=", 1).where("b", "=", 1).executeTakeFirst())?.v;
  assert.equal(await value(), "one");
  const after = await reader.getAuditHistory("pairs", { a: 1, b: 1 });
  assert.equal(after.length, 3);
  // The row changed since entry 2 (the restore): refused unless forced.
  await rejection(reader.restoreFromAudit(history[1]!.id));
  await reader.restoreFromAudit(history[1]!.id, { force: true });
  assert.equal(await value(), "one");
  await x.deleteFrom("pairs").where("b", "=", 2).execute();
  const deleted = (await reader.getAuditHistory("pairs", { a: 1, b: 2 })).at(-1)!;
  await reader.restoreFromAudit(deleted.id);
  assert.equal((await ctx.db.selectFrom("pairs").select("v").where("b", "=", 2).executeTakeFirst())?.v, "x");
});
