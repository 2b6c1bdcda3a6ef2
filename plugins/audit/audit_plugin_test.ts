import assert from "node:assert/strict";
import type { CompiledQuery, DatabaseConnection, QueryResult } from "kysely";
import { Kysely, MysqlDialect, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { createPool } from "mysql2";
import {
  addIdColumn,
  dbSuite,
  MARIADB_URL,
  plainRows,
  POSTGRES_URL,
  rejection,
  type TestDatabase,
} from "../../_test/harness.ts";
import { allowRawSql, createExecutorSync } from "../../executor/mod.ts";
import {
  auditPlugin,
  auditReader,
  createAuditTable,
  isUnauditableWriteError,
  type UnauditableWriteError,
} from "./mod.ts";

// deno-lint-ignore no-explicit-any
type DB = any;

async function tables(db: Kysely<DB>, database: TestDatabase): Promise<void> {
  await createAuditTable(db);
  await addIdColumn(db.schema.createTable("posts"), database)
    .addColumn("title", "varchar(50)", (c) => c.notNull().unique())
    .addColumn("n", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("secret", "varchar(50)")
    .execute();
  await db.schema.createTable("pairs")
    .addColumn("a", "integer", (c) => c.notNull())
    .addColumn("b", "integer", (c) => c.notNull())
    .addColumn("v", "varchar(20)")
    .addPrimaryKeyConstraint("pairs_pk", ["a", "b"])
    .execute();
  await db.schema.createTable("events")
    .addColumn("id", "integer", (c) => c.primaryKey())
    .addColumn("title", "varchar(50)")
    .addColumn("at", database === "postgres" ? "timestamptz" : database === "mariadb" ? "datetime(3)" : "text")
    .addColumn("label", "varchar(40)")
    .execute();
}

const suite = dbSuite<DB>(import.meta, { tables });

/**
 * Records the SQL of every statement sent on `db`'s connections, the
 * plugin's own included (begin, savepoint, the locking read, the audit
 * insert), by wrapping the driver connection class's `executeQuery` until
 * `stop()`.
 */
async function recordStatements(db: Kysely<DB>): Promise<{ sql: string[]; stop(): void }> {
  const proto = await db.getExecutor().provideConnection((c) => Promise.resolve(Object.getPrototypeOf(c)));
  const original = proto.executeQuery as DatabaseConnection["executeQuery"];
  const sent: string[] = [];
  proto.executeQuery = function (this: DatabaseConnection, query: CompiledQuery): Promise<QueryResult<unknown>> {
    sent.push(query.sql.replace(/\s+/g, " ").trim());
    return original.call(this, query);
  };
  return { sql: sent, stop: () => void (proto.executeQuery = original) };
}

/** The first words of each statement, enough to tell them apart. */
const kinds = (statements: readonly string[]): string[] =>
  statements.map((s) =>
    s.split(" ").slice(0, s.startsWith("release") || s.startsWith("rollback to") ? 3 : 2).join(" ")
  );

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

const BEGIN: Record<TestDatabase, string> = {
  sqlite: "begin immediate",
  postgres: "begin",
  mariadb: "start transaction",
};
const q = (ctx: { database: TestDatabase }, name: string) => ctx.database === "mariadb" ? `\`${name}\`` : `"${name}"`;

suite.test("a bulk update of 1,000 rows costs the statements of a one-row update", async (ctx) => {
  const x = createExecutorSync(ctx.db, [auditPlugin()]);
  const rows = Array.from({ length: 1000 }, (_, i) => ({ title: `t${i}` }));
  await ctx.db.insertInto("posts").values(rows).execute();
  const posts = q(ctx, "posts");
  // MariaDB has no UPDATE ... RETURNING: the new rows are read by key after the write.
  const expected = [
    BEGIN[ctx.database],
    `select ${posts}.*`,
    `update ${posts}`,
    ...(ctx.database === "mariadb" ? ["select *"] : []),
    "insert into",
    "commit",
  ];
  const rec = await recordStatements(ctx.db);
  try {
    await x.updateTable("posts").set({ n: 1 }).execute();
    assert.deepEqual(kinds(rec.sql), expected);
    const bulk = rec.sql.length;
    rec.sql.length = 0;
    await x.updateTable("posts").set({ n: 2 }).where("title", "=", "t1").execute();
    assert.deepEqual(kinds(rec.sql), expected);
    console.log(`${ctx.database}: ${bulk} statements for 1,000 rows, ${rec.sql.length} for one`);
  } finally {
    rec.stop();
  }
  assert.equal((await logs(ctx.db)).length, 1001);
});

suite.test("a write inside a transaction is audited under a savepoint, a lone write in its own transaction", async (ctx) => {
  const x = createExecutorSync(ctx.db, [auditPlugin()]);
  await ctx.db.insertInto("posts").values({ title: "a" }).execute();
  const posts = q(ctx, "posts");
  const rec = await recordStatements(ctx.db);
  try {
    await x.transaction().execute(async (trx) => {
      await trx.updateTable("posts").set({ n: 1 }).execute();
    });
    const inner = ["savepoint kysera_audit", `select ${posts}.*`, `update ${posts}`];
    if (ctx.database === "mariadb") inner.push("select *");
    inner.push("insert into", "release savepoint kysera_audit");
    // Kysely's own begin/commit around the write; the plugin opens no transaction of its own.
    assert.deepEqual(kinds(rec.sql).slice(1, -1), kinds(inner));
    assert.deepEqual([rec.sql[0], rec.sql.at(-1)], ["begin", "commit"]);
    rec.sql.length = 0;
    await x.updateTable("posts").set({ n: 2 }).execute();
    assert.equal(rec.sql[0], BEGIN[ctx.database]);
    assert.equal(rec.sql.at(-1), "commit");
  } finally {
    rec.stop();
  }
  // A rollback of the outer transaction takes the audited write and its audit row with it.
  await rejection(
    x.transaction().execute(async (trx) => {
      await trx.updateTable("posts").set({ n: 3 }).execute();
      throw new Error("roll back");
    }),
  );
  assert.deepEqual(plainRows(await ctx.db.selectFrom("posts").select("n").execute()), [{ n: 2 }]);
  assert.deepEqual((await logs(ctx.db)).map((e) => e.newValues?.n), [1, 2]);
});

suite.test("a failed write leaves neither data nor an audit row, alone or inside a transaction", async (ctx) => {
  const x = createExecutorSync(ctx.db, [auditPlugin()]);
  await ctx.db.insertInto("posts").values([{ title: "a" }, { title: "b" }]).execute();
  const before = plainRows(await ctx.db.selectFrom("posts").selectAll().orderBy("id").execute());
  // A unique violation: the UPDATE itself fails after the locking read.
  await rejection(x.updateTable("posts").set({ title: "a" }).where("title", "=", "b").execute());
  await rejection(x.insertInto("posts").values([{ title: "c" }, { title: "a" }]).execute());
  await rejection(x.deleteFrom("missing_table").execute());
  assert.deepEqual(plainRows(await ctx.db.selectFrom("posts").selectAll().orderBy("id").execute()), before);
  assert.equal((await logs(ctx.db)).length, 0);
  // Inside a transaction the savepoint is rolled back and the transaction goes on (PostgreSQL would refuse
  // every later statement of an aborted transaction).
  await x.transaction().execute(async (trx) => {
    await rejection(trx.updateTable("posts").set({ title: "a" }).where("title", "=", "b").execute());
    await trx.updateTable("posts").set({ n: 7 }).where("title", "=", "b").execute();
  });
  const after = plainRows(await ctx.db.selectFrom("posts").select(["title", "n"]).orderBy("id").execute());
  assert.deepEqual(after, [{ title: "a", n: 0 }, { title: "b", n: 7 }]);
  assert.deepEqual((await logs(ctx.db)).map((e) => [e.operation, e.oldValues?.title, e.newValues?.n]), [[
    "update",
    "b",
    7,
  ]]);
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
  // Inside the caller's transaction, the restore runs in it (and rolls back with it).
  const rolledBack = await rejection(
    x.transaction().execute(async (trx) => {
      await auditReader(trx, { primaryKey: { pairs: ["a", "b"] } }).restoreFromAudit(history[0]!.id, { force: true });
      assert.equal(
        (await trx.selectFrom("pairs").select("v").where("a", "=", 1).where("b", "=", 1).executeTakeFirst())?.v,
        undefined,
      );
      throw new Error("roll back");
    }),
  );
  assert.equal((rolledBack as Error).message, "roll back");
  assert.equal(await value(), "one");
  await reader.restoreFromAudit(history[1]!.id, { force: true });
  assert.equal(await value(), "one");
  await x.deleteFrom("pairs").where("b", "=", 2).execute();
  const deleted = (await reader.getAuditHistory("pairs", { a: 1, b: 2 })).at(-1)!;
  await reader.restoreFromAudit(deleted.id);
  assert.equal((await ctx.db.selectFrom("pairs").select("v").where("b", "=", 2).executeTakeFirst())?.v, "x");
});

suite.test("redacted columns never reach the audit table, changed_fields names them, restore keeps the real value", async (ctx) => {
  const x = createExecutorSync(ctx.db, [auditPlugin({ redact: { posts: ["secret"] } })]);
  const reader = auditReader(x);
  await x.insertInto("posts").values({ title: "a", secret: "S1-hunter2" }).execute();
  await x.updateTable("posts").set({ secret: "S2-hunter3", n: 1 }).where("title", "=", "a").execute();
  await x.updateTable("posts").set({ title: "b" }).where("title", "=", "a").execute();
  const id = (await ctx.db.selectFrom("posts").select("id").executeTakeFirstOrThrow()).id;
  let history = await reader.getAuditHistory("posts", id);
  assert.deepEqual(history.map((e) => [e.operation, [...e.changedFields].sort()]), [
    ["insert", ["id", "n", "secret", "title"]],
    ["update", ["n", "secret"]],
    ["update", ["title"]],
  ]);
  assert.ok(
    history.every((e) => !Object.hasOwn(e.oldValues ?? {}, "secret") && !Object.hasOwn(e.newValues ?? {}, "secret")),
  );
  assert.deepEqual(history[1]!.newValues, { id, title: "a", n: 1 });

  // Restore of the title change: the secret is not in the entry, so it keeps its real value.
  await reader.restoreFromAudit(history[2]!.id);
  const row = async () =>
    await ctx.db.selectFrom("posts").select(["title", "n", "secret"]).where("id", "=", id).executeTakeFirst();
  assert.deepEqual({ ...await row() }, { title: "a", n: 1, secret: "S2-hunter3" });
  // Restore of a deleted row re-inserts it with the redacted column at its default.
  await x.deleteFrom("posts").where("id", "=", id).execute();
  history = await reader.getAuditHistory("posts", id);
  assert.deepEqual(history.map((e) => e.operation), ["insert", "update", "update", "update", "delete"]);
  await reader.restoreFromAudit(history.at(-1)!.id);
  assert.deepEqual({ ...await row() }, { title: "a", n: 1, secret: null });

  // One list for every table.
  const everywhere = createExecutorSync(ctx.db, [
    auditPlugin({ redact: ["secret", "v"], primaryKey: { pairs: ["a", "b"] } }),
  ]);
  await everywhere.insertInto("posts").values({ title: "c", secret: "S3-hunter4" }).execute();
  await everywhere.insertInto("pairs").values({ a: 1, b: 1, v: "S4-hunter5" }).execute();

  const all = await ctx.db.selectFrom("audit_logs").selectAll().execute();
  assert.equal(all.length, 8); // 3 writes, 2 restores, 1 delete on posts; one insert each in posts and pairs
  const stored = JSON.stringify(all);
  for (const secret of ["S1-hunter2", "S2-hunter3", "S3-hunter4", "S4-hunter5"]) {
    assert.ok(!stored.includes(secret), `${secret} is in the audit table`);
  }
  assert.ok(stored.includes("secret"), "changed_fields names the redacted column");

  assert.throws(() => auditPlugin({ redact: ["id"] }), TypeError);
  assert.throws(() => auditPlugin({ redact: { pairs: ["b"] }, primaryKey: { pairs: ["a", "b"] } }), TypeError);
});

suite.test("REPLACE and MERGE into an audited table are refused before any SQL is sent", async (ctx) => {
  // `pairs` is not audited: the same statements run there, on the databases that have them.
  const x = createExecutorSync(ctx.db, [auditPlugin({ tables: ["posts"] })]);
  await ctx.db.insertInto("posts").values({ id: 1, title: "a" }).execute();
  await ctx.db.insertInto("pairs").values({ a: 1, b: 1, v: "old" }).execute();
  const before = plainRows(await ctx.db.selectFrom("posts").selectAll().execute());
  const rec = await recordStatements(ctx.db);
  let replaced: unknown;
  let merged: unknown;
  try {
    replaced = await rejection(x.replaceInto("posts").values({ id: 1, title: "b" }).execute());
    merged = await rejection(
      x.mergeInto("posts as p").using("pairs as s", "s.a", "p.id")
        .whenMatched().thenUpdateSet({ title: "merged" })
        .whenNotMatched().thenInsertValues({ title: "new" }).execute(),
    );
    assert.deepEqual(rec.sql, []);
  } finally {
    rec.stop();
  }
  assert.ok(isUnauditableWriteError(replaced));
  assert.ok(isUnauditableWriteError(merged));
  assert.deepEqual(
    [(replaced as UnauditableWriteError).operation, (merged as UnauditableWriteError).operation],
    ["replace", "merge"],
  );
  assert.equal((merged as UnauditableWriteError).table, "posts");
  assert.deepEqual(plainRows(await ctx.db.selectFrom("posts").selectAll().execute()), before);
  assert.equal((await logs(ctx.db)).length, 0);

  if (ctx.database === "postgres") {
    await x.mergeInto("pairs as p").using("posts as s", "s.id", "p.a")
      .whenMatched().thenUpdateSet({ v: "merged" }).execute();
  } else {
    await x.replaceInto("pairs").values({ a: 1, b: 1, v: "merged" }).execute();
  }
  assert.equal((await ctx.db.selectFrom("pairs").select("v").executeTakeFirst())?.v, "merged");
});

suite.test("an UPDATE that sets the primary key by an expression is audited with its new rows (refused on MariaDB)", async (ctx) => {
  const x = createExecutorSync(ctx.db, [auditPlugin()]);
  await x.insertInto("posts").values([{ id: 1, title: "a" }, { id: 2, title: "b" }, { id: 3, title: "c" }]).execute();
  const moved = x.updateTable("posts").set((eb) => ({ id: eb("id", "+", 100), n: 5 })).where("id", "in", [1, 2]);
  const updates = async () => (await logs(ctx.db)).filter((e) => e.operation === "update");
  if (ctx.database === "mariadb") {
    const rec = await recordStatements(ctx.db);
    let error: unknown;
    try {
      error = await rejection(moved.execute());
      assert.deepEqual(rec.sql, []);
    } finally {
      rec.stop();
    }
    assert.ok(isUnauditableWriteError(error));
    assert.deepEqual((await ctx.db.selectFrom("posts").select("id").orderBy("id").execute()).map((r) => r.id), [
      1,
      2,
      3,
    ]);
    assert.equal((await updates()).length, 0);
  } else {
    const [result] = await moved.execute();
    assert.equal(result?.numUpdatedRows, 2n);
    assert.deepEqual(
      (await updates()).map((e) => [e.entityId, e.oldValues?.id, e.newValues?.id, e.newValues?.title, e.newValues?.n]),
      [["101", 1, 101, "a", 5], ["102", 2, 102, "b", 5]],
    );
    // The caller's own RETURNING is untouched, even where its names collide with the table's columns.
    const returned = await x.updateTable("posts").set({ n: 6 }).where("id", "=", 3)
      .returning((eb) => [eb("n", "+", 10).as("n"), eb.val("x").as("title")]).execute();
    assert.deepEqual(plainRows(returned), [{ n: 16, title: "x" }]);
    const last = (await updates()).at(-1)!;
    assert.deepEqual([last.newValues?.n, last.newValues?.title], [6, "c"]);
  }
  // A key set to a value moves the row on every database.
  await x.updateTable("posts").set({ id: 500 }).where("id", "=", 3).execute();
  const last = (await updates()).at(-1)!;
  assert.deepEqual([last.entityId, last.oldValues?.id, last.newValues?.id, last.newValues?.title], [
    "500",
    3,
    500,
    "c",
  ]);
});

suite.test("restore and as-of round-trip a date/time column exactly", async (ctx) => {
  let now = new Date("2024-01-01T00:00:00.000Z");
  const x = createExecutorSync(ctx.db, [auditPlugin({ clock: () => now })]);
  const reader = auditReader(x);
  // SQLite keeps dates as text; the others take a Date.
  const at = (iso: string) => ctx.database === "sqlite" ? iso : new Date(iso);
  const label = "2024-03-01T10:20:30.123Z"; // an ISO string in a text column stays a string
  await x.insertInto("events").values({ id: 1, title: "v1", at: at("2024-03-01T10:20:30.123Z"), label }).execute();
  const read = async () => plainRows(await ctx.db.selectFrom("events").selectAll().execute());
  const first = await read();
  now = new Date("2024-02-01T00:00:00.000Z");
  await x.updateTable("events").set({ title: "v2", at: at("2025-07-04T23:59:58.999Z") }).where("id", "=", 1).execute();
  const second = await read();
  assert.notDeepEqual(first, second);

  assert.deepEqual(await reader.asOf("events", 1, new Date("2024-01-15T00:00:00.000Z")), first[0]);
  assert.deepEqual(await reader.asOf("events", 1, new Date("2024-03-01T00:00:00.000Z")), second[0]);
  if (ctx.database !== "sqlite") assert.ok(first[0]!.at instanceof Date);

  const [, updated] = await reader.getAuditHistory("events", 1);
  await reader.restoreFromAudit(updated!.id);
  assert.deepEqual(await read(), first);
  now = new Date("2024-04-01T00:00:00.000Z");
  await x.deleteFrom("events").execute();
  assert.deepEqual(await read(), []);
  await reader.restoreFromAudit((await reader.getAuditHistory("events", 1)).at(-1)!.id);
  assert.deepEqual(await read(), first);
});

// SQLite resolves table names without regard to case; the MariaDB server here
// runs lower_case_table_names=0 and PostgreSQL quotes identifiers, so there
// `POSTS` is another (missing) table.
suite.test("a listed table written under another case is audited under its listed name", async ({ db }) => {
  const audited = createExecutorSync(db, [auditPlugin({ tables: ["posts"] })]);
  await audited.insertInto("POSTS").values({ title: "t" }).execute();
  await audited.updateTable("Posts").set({ n: 1 }).execute();
  const history = await auditReader(db).getTableAuditLogs("posts");
  assert.deepEqual(history.map((e) => [e.table, e.operation]), [["posts", "insert"], ["posts", "update"]]);
}, { databases: ["sqlite"] });

suite.test("an INSERT whose RETURNING names outputs like columns returns them, and audits the real row", async ({ db, database }) => {
  const audited = createExecutorSync(db, [auditPlugin({ tables: ["posts"] })]);
  const returned = await audited.insertInto("posts").values({ title: "t", secret: "s" })
    .returning(["id", sql<string>`upper(title)`.as("title"), "title as secret"])
    .executeTakeFirstOrThrow();
  const [entry] = await auditReader(db).getTableAuditLogs("posts");
  assert.equal(entry?.newValues?.["title"], "t");
  assert.equal(entry?.newValues?.["secret"], "s");
  if (database === "mariadb") {
    // Kysely's MySQL adapter gives an InsertResult, never RETURNING rows.
    assert.equal(entry?.entityId, String((returned as unknown as { insertId: bigint }).insertId));
    return;
  }
  assert.deepEqual({ ...returned, id: typeof returned.id }, { id: "number", title: "T", secret: "t" });
  assert.equal(entry?.entityId, String(returned.id));
});

/**
 * A second Kysely on the test's schema/database whose pool survives the
 * server killing its connections (the dead connection is reported to the
 * pool; an application logs it there). The caller destroys it.
 */
async function killable(ctx: { db: Kysely<DB>; database: TestDatabase }): Promise<Kysely<DB>> {
  if (ctx.database === "postgres") {
    const schema = (await sql<{ s: string }>`select current_schema() as s`.execute(ctx.db)).rows[0]!.s;
    const pool = new pg.Pool({ connectionString: POSTGRES_URL, options: `-c search_path=${schema}`, max: 2 });
    pool.on("error", () => {});
    pool.on("connect", (client) => client.on("error", () => {}));
    return new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  }
  const name = (await sql<{ d: string }>`select database() as d`.execute(ctx.db)).rows[0]!.d;
  const url = new URL(MARIADB_URL);
  const pool = createPool({
    host: url.hostname,
    port: Number(url.port || 3306),
    user: decodeURIComponent(url.username || "root"),
    password: decodeURIComponent(url.password),
    database: name,
    connectionLimit: 2,
  });
  pool.on("error" as "connection", () => {});
  return new Kysely<DB>({ dialect: new MysqlDialect({ pool }) });
}

// AU-02: the writer's connection is killed by the server at random points
// of audited updates (before BEGIN, during the locking read, the UPDATE, the
// audit insert, COMMIT, or after it). SQLite runs in-process: no connection
// to kill.
suite.test(
  "AU-02: a connection killed at any point leaves an audit row exactly for each committed update",
  async (ctx) => {
    const { db, database } = ctx;
    await db.insertInto("posts").values({ title: "k" }).execute();
    const { id } = await db.selectFrom("posts").select("id").where("title", "=", "k").executeTakeFirstOrThrow();
    const writer = createExecutorSync(await killable(ctx), [auditPlugin({ tables: ["posts"] })]);
    const selfId = database === "postgres"
      ? sql<{ id: number }>`select pg_backend_pid() as id`
      : sql<{ id: number }>`select connection_id() as id`;
    const kill = (victim: number) =>
      (database === "postgres" ? sql`select pg_terminate_backend(${victim})` : sql.raw(`kill ${Number(victim)}`))
        .execute(db).catch(() => undefined);
    let attempts = 0;
    let failed = 0;
    let kills = 0;
    while (attempts < 150) {
      await writer.connection().execute(async (conn) => {
        // Raw SQL on an audited executor is an explicit opt-in.
        const victim = Number((await allowRawSql(() => selfId.execute(conn))).rows[0]!.id);
        // Spread over a few writes' time, so that some commit before the kill.
        const timer = setTimeout(() => void kill(victim).then(() => kills++), (attempts * 7) % 23);
        try {
          while (attempts < 150) {
            attempts++;
            await conn.updateTable("posts").set((eb) => ({ n: eb("n", "+", 1) })).where("id", "=", id).execute();
          }
        } catch {
          failed++;
        } finally {
          clearTimeout(timer);
        }
      }).catch(() => undefined); // releasing the dead connection may fail too
    }
    await writer.destroy();
    const final = Number((await db.selectFrom("posts").select("n").where("id", "=", id).executeTakeFirstOrThrow()).n);
    const updates = (await auditReader(db).getAuditHistory("posts", id)).filter((e) => e.operation === "update");
    console.log(`AU-02 ${database}: ${attempts} audited updates, ${kills} kills, ${failed} failed, ${final} committed`);
    assert.ok(kills >= 5 && failed >= 5, `kills ${kills}, failed writes ${failed}`);
    assert.ok(final > 0, `no update committed in ${attempts} attempts`);
    // One audit row per committed update, none for a rolled-back one, and an unbroken chain.
    assert.deepEqual(updates.map((e) => Number(e.newValues?.["n"])), Array.from({ length: final }, (_, i) => i + 1));
    assert.deepEqual(updates.map((e) => Number(e.oldValues?.["n"])), Array.from({ length: final }, (_, i) => i));
  },
  { databases: ["postgres", "mariadb"] },
);

// AU-03 at scale: 32 workers, 800 updates spread over 4 rows, on 8 pooled
// connections. SQLite has one connection in this thread, so writes cannot
// interleave there; the 20-update test above covers it.
suite.test("AU-03: 32 workers × 25 updates over 4 rows keep every row's chain unbroken", async (ctx) => {
  const titles = ["r0", "r1", "r2", "r3"];
  await ctx.db.insertInto("posts").values(titles.map((title) => ({ title, n: 0 }))).execute();
  const pools = [ctx.connect(), ctx.connect()].map((k) => createExecutorSync(k, [auditPlugin()]));
  await Promise.all(Array.from({ length: 32 }, async (_, w) => {
    for (let k = 0; k < 25; k++) {
      const title = titles[(w * 7 + k * 3) % titles.length]!;
      await pools[w % 2]!.updateTable("posts").set((eb) => ({ n: eb("n", "+", 1) })).where("title", "=", title)
        .execute();
    }
  }));
  const rows = await ctx.db.selectFrom("posts").select(["id", "n"]).where("title", "in", titles).execute();
  assert.equal(rows.reduce((sum, r) => sum + Number(r.n), 0), 800);
  const reader = auditReader(ctx.db);
  let breaks = 0;
  for (const row of rows) {
    const chain = (await reader.getAuditHistory("posts", row.id)).filter((e) => e.operation === "update");
    if (chain.length !== Number(row.n)) breaks++;
    chain.sort((p, q) => Number(p.oldValues!.n) - Number(q.oldValues!.n));
    chain.forEach((e, i) => {
      if (Number(e.oldValues!.n) !== i || Number(e.newValues!.n) !== i + 1) breaks++;
    });
  }
  assert.equal(breaks, 0);
}, { databases: ["postgres", "mariadb"] });

// PostgreSQL writes audit rows through unnest() with jsonb/timestamptz casts:
// an audit table of the user's own with json and text columns takes them too.
suite.test("an audit table with json and text columns of the user's own receives the rows", async ({ db }) => {
  await sql`create table audit_own (id serial primary key, table_name text not null, entity_id text not null,
    operation text not null, old_values json, new_values text, changed_fields text, actor text, tenant_id text,
    metadata json, changed_at timestamp not null)`.execute(db);
  const ex = createExecutorSync(db, [auditPlugin({ table: "audit_own", tables: ["posts"], actor: () => "ada" })]);
  await ex.insertInto("posts").values([{ title: "p" }, { title: "q" }]).execute();
  await ex.updateTable("posts").set({ n: 5 }).where("title", "=", "p").execute();
  const trail = await auditReader(db, { table: "audit_own" }).getTableAuditLogs("posts");
  assert.deepEqual(trail.map((e) => [e.operation, e.actor, e.newValues?.["n"]]), [
    ["insert", "ada", 0],
    ["insert", "ada", 0],
    ["update", "ada", 5],
  ]);
  assert.deepEqual(trail[2]!.changedFields, ["n"]);
}, { databases: ["postgres"] });

// PostgreSQL's data-modifying CTEs (MariaDB and SQLite have none).
suite.test("a write inside a WITH clause into an audited table is refused before any SQL", async ({ db }) => {
  const ex = createExecutorSync(db, [auditPlugin({ tables: ["posts"] })]);
  await ex.insertInto("posts").values({ title: "w" }).execute();
  const attempts = [
    ex.with("x", (qc) => qc.insertInto("posts").values({ title: "cte" }).returning("id")).selectFrom("x").selectAll(),
    ex.with("x", (qc) => qc.updateTable("posts").set({ n: 9 }).returning("id")).selectFrom("x").selectAll(),
    ex.with("x", (qc) => qc.deleteFrom("posts").returning("id")).selectFrom("x").selectAll(),
  ];
  for (const attempt of attempts) {
    const error = await rejection(attempt.execute());
    assert.ok(isUnauditableWriteError(error), String(error));
  }
  assert.deepEqual(plainRows(await db.selectFrom("posts").select(["title", "n"]).execute()), [{ title: "w", n: 0 }]);
  assert.equal((await logs(db)).length, 1);
  // A WITH clause writing a table that is not audited runs.
  const pairs = await ex.with("x", (qc) => qc.insertInto("pairs").values({ a: 1, b: 1 }).returning("a"))
    .selectFrom("x").selectAll().execute();
  assert.deepEqual(plainRows(pairs), [{ a: 1 }]);
}, { databases: ["postgres"] });
