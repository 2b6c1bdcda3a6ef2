/**
 * Issue 14, audit: writes that were recorded wrongly, or not at all, and
 * restores that lost data. Each test fails without its fix.
 */
import assert from "node:assert/strict";
import type { CompiledQuery, DatabaseConnection, QueryResult } from "kysely";
import { type Kysely, sql } from "kysely";
import {
  addIdColumn,
  dbSuite,
  plainRows,
  recordStatements,
  rejection,
  type TestDatabase,
} from "../../_test/harness.ts";
import { allowRawSql, createExecutorSync, isRawSqlRefusedError } from "../../executor/mod.ts";
import { createORM } from "../../repository/mod.ts";
import { auditPlugin, auditReader, createAuditTable, isAuditRestoreError, isUnauditableWriteError } from "./mod.ts";

// deno-lint-ignore no-explicit-any
type DB = any;

async function tables(db: Kysely<DB>, database: TestDatabase): Promise<void> {
  await createAuditTable(db);
  await addIdColumn(db.schema.createTable("posts"), database)
    .addColumn("title", "varchar(50)", (c) => c.notNull().unique())
    .addColumn("n", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("secret", "varchar(50)")
    .execute();
  await db.schema.createTable("big_pairs")
    .addColumn("a", "bigint", (c) => c.notNull())
    .addColumn("b", "bigint", (c) => c.notNull())
    .addColumn("v", "varchar(20)")
    .addPrimaryKeyConstraint("big_pairs_pk", ["a", "b"])
    .execute();
  await db.schema.createTable("keyless").addColumn("code", "varchar(20)").addColumn("v", "integer").execute();
}

const suite = dbSuite<DB>(import.meta, { tables });
const history = async (db: Kysely<DB>, table = "posts") => await auditReader(db).getTableAuditLogs(table);

/** Upserts `{ title, n: 0 }`, adding 1 to `n` when the title exists (a unique column, not the key). */
function upsert(x: Kysely<DB>, database: TestDatabase, title: string) {
  const q = x.insertInto("posts").values({ title, n: 0 });
  return database === "mariadb"
    ? q.onDuplicateKeyUpdate((eb) => ({ n: eb("n", "+", 1) }))
    : q.onConflict((oc) => oc.column("title").doUpdateSet((eb) => ({ n: eb("posts.n", "+", 1) })));
}

suite.test("an upsert that conflicts on a unique column other than the key is recorded as the update of that row", async ({ db, database }) => {
  const x = createExecutorSync(db, [auditPlugin({ tables: ["posts"] })]);
  await db.insertInto("posts").values({ title: "a", n: 4 }).execute();
  const before = plainRows(await db.selectFrom("posts").selectAll().execute())[0]!;
  await upsert(x, database, "a").execute();
  await upsert(x, database, "b").execute();
  const after = plainRows(await db.selectFrom("posts").selectAll().orderBy("id").execute());
  const entries = await history(db);
  assert.deepEqual(entries.map((e) => [e.operation, e.entityId]), [["update", String(before.id)], [
    "insert",
    String(after[1]!.id),
  ]]);
  assert.deepEqual(entries[0]!.oldValues, before);
  assert.deepEqual(entries[0]!.newValues, after[0]);
  assert.deepEqual(entries[0]!.changedFields, ["n"]);
  // Restoring the update puts the row back; it does not delete it.
  await auditReader(x).restoreFromAudit(entries[0]!.id);
  assert.deepEqual(plainRows(await db.selectFrom("posts").selectAll().where("title", "=", "a").execute()), [before]);
});

suite.test("20 concurrent upserts of one new key give one insert and an unbroken old → new chain", async (ctx) => {
  const x = createExecutorSync(ctx.db, [auditPlugin()]);
  // SQLite (synchronous driver, one writer): one connection; the others run on 20 pooled connections in two pools.
  const pools = ctx.database === "sqlite"
    ? [x]
    : [ctx.connect(), ctx.connect()].map((k) => createExecutorSync(k, [auditPlugin()]));
  await Promise.all(
    Array.from({ length: 20 }, (_, i) => upsert(pools[i % pools.length]!, ctx.database, "hot").execute()),
  );
  const row = await ctx.db.selectFrom("posts").selectAll().where("title", "=", "hot").executeTakeFirstOrThrow();
  assert.equal(Number(row.n), 19);
  const entries = await auditReader(ctx.db).getAuditHistory("posts", row.id);
  assert.deepEqual(entries.map((e) => e.operation), ["insert", ...Array(19).fill("update")]);
  const updates = entries.slice(1).sort((p, q) => Number(p.oldValues!.n) - Number(q.oldValues!.n));
  updates.forEach((e, i) => {
    assert.equal(Number(e.oldValues!.n), i);
    assert.equal(Number(e.newValues!.n), i + 1);
  });
});

/**
 * Runs `change` on another connection (committed) right after the writer's
 * locking read of the old rows returns, before its write: a row that starts
 * matching in between, as under READ COMMITTED.
 */
async function afterLockingRead(db: Kysely<DB>, change: () => Promise<unknown>): Promise<{ stop(): void }> {
  const proto = await db.getExecutor().provideConnection((c) => Promise.resolve(Object.getPrototypeOf(c)));
  const original = proto.executeQuery as DatabaseConnection["executeQuery"];
  let done = false;
  proto.executeQuery = async function (this: DatabaseConnection, query: CompiledQuery): Promise<QueryResult<unknown>> {
    const result = await original.call(this, query);
    if (!done && /for update$/i.test(query.sql.trim()) && /^select/i.test(query.sql.trim())) {
      done = true;
      await change();
    }
    return result;
  };
  return { stop: () => void (proto.executeQuery = original) };
}

// PostgreSQL and MariaDB under READ COMMITTED (SQLite has one writer at a time: nothing can start matching).
for (const operation of ["update", "delete"] as const) {
  suite.test(
    `READ COMMITTED: a row that starts matching between the locking read and the ${operation} is never changed unaudited`,
    async (ctx) => {
      const writer = ctx.connect();
      const x = createExecutorSync(writer, [auditPlugin()]);
      await ctx.db.insertInto("posts").values([{ title: "a", n: 1 }, { title: "b", n: 0 }]).execute();
      const before = plainRows(await ctx.db.selectFrom("posts").selectAll().orderBy("id").execute());
      const hook = await afterLockingRead(
        writer,
        () => ctx.db.updateTable("posts").set({ n: 1 }).where("title", "=", "b").execute(),
      );
      try {
        await x.transaction().setIsolationLevel("read committed").execute(async (trx) => {
          if (operation === "update") await trx.updateTable("posts").set({ secret: "x" }).where("n", "=", 1).execute();
          else await trx.deleteFrom("posts").where("n", "=", 1).execute();
        });
      } finally {
        hook.stop();
      }
      const after = plainRows(await ctx.db.selectFrom("posts").selectAll().orderBy("id").execute());
      const entries = await history(ctx.db);
      // Every row that differs from its state before (b aside, changed by the other writer) has its audit row.
      const a = before[0]!;
      assert.deepEqual(entries.map((e) => [e.operation, e.entityId]), [[operation, String(a.id)]]);
      assert.deepEqual(entries[0]!.oldValues, a);
      if (operation === "update") {
        assert.deepEqual(entries[0]!.newValues, after[0]);
        assert.deepEqual(after.map((r) => r.secret), ["x", null]);
      } else {
        assert.deepEqual(after.map((r) => r.title), ["b"]);
      }
      assert.equal(after.at(-1)!.n, 1);
    },
    { databases: ["postgres", "mariadb"] },
  );
}

suite.test("restoring an update recorded without old values is refused and leaves the row", async ({ db }) => {
  const x = createExecutorSync(db, [auditPlugin({ captureOldValues: false })]);
  await x.insertInto("posts").values({ title: "a" }).execute();
  await x.updateTable("posts").set({ n: 5 }).execute();
  const [, update] = await history(db);
  const error = await rejection(auditReader(x).restoreFromAudit(update!.id));
  assert.ok(isAuditRestoreError(error), String(error));
  assert.match((error as Error).message, /^Cannot restore from audit entry \d+: .*captureOldValues/);
  assert.deepEqual(plainRows(await db.selectFrom("posts").select(["title", "n"]).execute()), [{ title: "a", n: 5 }]);
  assert.equal((await history(db)).length, 2);
});

suite.test("restore puts back a JSON column holding an array, and leaves identity and generated columns to the database", async ({ db, database }) => {
  const json = database === "postgres" ? "jsonb" : database === "mariadb" ? "json" : "text";
  if (database === "postgres") {
    await sql`create table docs (id integer generated always as identity primary key, tags jsonb,
      n integer not null, twice integer generated always as (n * 2) stored)`.execute(db);
  } else if (database === "mariadb") {
    await sql`create table docs (id integer auto_increment primary key, tags json,
      n integer not null, twice integer as (n * 2) stored)`.execute(db);
  } else {
    await sql`create table docs (id integer primary key autoincrement, tags ${sql.raw(json)},
      n integer not null, twice integer generated always as (n * 2) stored)`.execute(db);
  }
  const x = createExecutorSync(db, [auditPlugin({ tables: ["docs"] })]);
  const reader = auditReader(x);
  const tags = (value: unknown[]) => JSON.stringify(value);
  await x.insertInto("docs").values({ tags: tags(["a", "b"]), n: 1 }).execute();
  const read = async () =>
    plainRows(await db.selectFrom("docs").selectAll().execute()).map((r) => ({
      ...r,
      tags: typeof r.tags === "string" ? JSON.parse(r.tags) : r.tags,
    }));
  const first = await read();
  assert.deepEqual(first, [{ id: 1, tags: ["a", "b"], n: 1, twice: 2 }]);
  await x.updateTable("docs").set({ tags: tags(["c"]), n: 2 }).execute();
  const [, update] = await reader.getAuditHistory("docs", 1);
  await reader.restoreFromAudit(update!.id);
  assert.deepEqual(await read(), first);
  await x.deleteFrom("docs").execute();
  await reader.restoreFromAudit((await reader.getAuditHistory("docs", 1)).at(-1)!.id);
  assert.deepEqual(await read(), first);
});

suite.test("raw SQL through an audited executor is refused unless the call opts in with allowRawSql()", async ({ db }) => {
  const x = createExecutorSync(db, [auditPlugin({ tables: ["posts"] })]);
  const error = await rejection(sql`insert into posts (title) values ('raw')`.execute(x));
  assert.ok(isRawSqlRefusedError(error), String(error));
  assert.match((error as Error).message, /plugin 'audit'.*allowRawSql/);
  assert.deepEqual(await db.selectFrom("posts").selectAll().execute(), []);
  const rows = await allowRawSql(() => sql<{ one: number }>`select 1 as one`.execute(x));
  assert.equal(Number(rows.rows[0]!.one), 1);
});

suite.test("a write whose target is sql.table(...) is refused before any SQL", async ({ db, database }) => {
  const x = createExecutorSync(db, [auditPlugin({ tables: ["posts"] })]);
  await db.insertInto("posts").values({ title: "a" }).execute();
  const attempts = [
    () => x.updateTable(sql.table("posts").as("p")).set({ n: 1 }).execute(),
    () => x.deleteFrom(sql.table("posts").as("p")).execute(),
    () => x.updateTable(sql.table("posts") as never).set({ n: 2 } as never).execute(),
  ];
  for (const attempt of attempts) {
    const error = await rejection(attempt());
    assert.ok(isUnauditableWriteError(error), String(error));
  }
  if (database === "sqlite") {
    // INSERT OR REPLACE deletes conflicting rows unseen, like REPLACE.
    const error = await rejection(x.insertInto("posts").orReplace().values({ title: "a", n: 9 }).execute());
    assert.ok(isUnauditableWriteError(error), String(error));
  }
  assert.deepEqual(plainRows(await db.selectFrom("posts").select(["title", "n"]).execute()), [{ title: "a", n: 0 }]);
  assert.equal((await history(db)).length, 0);
});

// The refusal comes before any SQL, so it holds on every database; only MariaDB/MySQL run such statements.
suite.test("a multi-table UPDATE or DELETE listing an audited table anywhere is refused with UnauditableWriteError", async ({ db }) => {
  const x = createExecutorSync(db, [auditPlugin({ tables: ["posts"] })]);
  await db.insertInto("posts").values({ title: "a" }).execute();
  await db.insertInto("keyless").values({ code: "a", v: 1 }).execute();
  const attempts = [
    () =>
      x.updateTable(["keyless", "posts"]).set({ "posts.n": 5, "keyless.v": 2 } as never)
        .whereRef("keyless.code", "=", "posts.title").execute(),
    () =>
      x.updateTable(["posts", "keyless"]).set({ "posts.n": 5 } as never)
        .whereRef("keyless.code", "=", "posts.title").execute(),
    () =>
      x.deleteFrom(["keyless", "posts"]).using(["keyless", "posts"]).whereRef("keyless.code", "=", "posts.title")
        .execute(),
    () =>
      x.deleteFrom(["posts", "keyless"]).using(["posts", "keyless"]).whereRef("keyless.code", "=", "posts.title")
        .execute(),
    // MySQL's `delete p from posts as p`: the target named by alias (it went unaudited).
    () => x.deleteFrom("p").using("posts as p").where("p.id", ">", 0).execute(),
    () =>
      x.deleteFrom("p").using("keyless as k").innerJoin("posts as p", "p.title", "k.code").where("p.id", ">", 0)
        .execute(),
  ];
  for (const attempt of attempts) {
    const error = await rejection(attempt());
    assert.ok(isUnauditableWriteError(error), String(error));
  }
  assert.deepEqual(plainRows(await db.selectFrom("posts").select(["title", "n"]).execute()), [{ title: "a", n: 0 }]);
  assert.equal((await db.selectFrom("keyless").selectAll().execute()).length, 1);
});

// SQLite reads POSTS as posts; on PostgreSQL and this MariaDB (lower_case_table_names=0) it is another table.
suite.test(
  "a table named in another case is redacted and recorded under one spelling (default: every table)",
  async ({ db }) => {
    const x = createExecutorSync(db, [auditPlugin({ redact: { posts: ["secret"] } })]);
    await x.insertInto("POSTS").values({ title: "a", secret: "S1-hunter2" }).execute();
    await x.updateTable("Posts").set({ secret: "S2-hunter3" }).execute();
    await x.insertInto("KEYLESS" as never).values({ code: "k" } as never).execute().catch(() => {});
    const stored = plainRows(await db.selectFrom("audit_logs").selectAll().execute());
    assert.deepEqual(stored.map((r) => r.table_name), ["posts", "posts"]);
    assert.ok(!JSON.stringify(stored).includes("hunter"));
    const id = (await db.selectFrom("posts").select("id").executeTakeFirstOrThrow()).id;
    assert.equal((await auditReader(db).getAuditHistory("Posts", id)).length, 2);
  },
  { databases: ["sqlite"] },
);

suite.test("a composite key with bigint parts is found by numbers", async ({ db }) => {
  const x = createExecutorSync(db, [auditPlugin({ primaryKey: { big_pairs: ["a", "b"] } })]);
  await x.insertInto("big_pairs").values({ a: 1, b: 2, v: "x" }).execute();
  await x.updateTable("big_pairs").set({ v: "y" }).execute();
  const reader = auditReader(db, { primaryKey: { big_pairs: ["a", "b"] } });
  for (const id of [{ a: 1, b: 2 }, { a: 1n, b: 2n }, { a: "1", b: "2" }]) {
    assert.deepEqual((await reader.getAuditHistory("big_pairs", id)).map((e) => e.operation), ["insert", "update"]);
  }
  assert.equal((await history(db, "big_pairs"))[0]!.entityId, '{"a":"1","b":"2"}');
});

suite.test("a table with no id column and no primaryKey option is refused, and nothing is written", async ({ db }) => {
  const x = createExecutorSync(db, [auditPlugin()]);
  await db.insertInto("keyless").values({ code: "a", v: 1 }).execute();
  for (
    const attempt of [
      () => x.insertInto("keyless").values([{ code: "b", v: 2 }, { code: "c", v: 3 }]).execute(),
      () => x.updateTable("keyless").set({ v: 9 }).execute(),
      () => x.deleteFrom("keyless").execute(),
    ]
  ) {
    const error = await rejection(attempt());
    assert.ok(isUnauditableWriteError(error), String(error));
    assert.match((error as Error).message, /no column 'id'.*'primaryKey'/);
  }
  assert.deepEqual(plainRows(await db.selectFrom("keyless").selectAll().execute()), [{ code: "a", v: 1 }]);
  assert.equal((await history(db, "keyless")).length, 0);
});

suite.test("auditPlugin does not break orm.createRepository((executor) => ...)", async ({ db }) => {
  const orm = createORM(db, [auditPlugin()]);
  const repo = orm.createRepository((executor) => ({
    add: (title: string) => executor.insertInto("posts").values({ title }).execute(),
  }));
  await repo.add("a");
  assert.equal((await history(db)).length, 1);
  const error = await rejection(repo.getAuditHistory(1));
  assert.ok(error instanceof TypeError, String(error));
  const named = orm.createRepository((executor) => ({ tableName: "posts", executor }));
  assert.equal((await named.getAuditHistory(1)).length, 1);
});

suite.test("an audited upsert locks its keys and reads the rows it may update: its statements", async ({ db, database }) => {
  const x = createExecutorSync(db, [auditPlugin({ tables: ["posts"] })]);
  await db.insertInto("posts").values({ title: "a" }).execute();
  const rec = await recordStatements(db);
  try {
    await upsert(x, database, "a").execute();
  } finally {
    rec.stop();
  }
  const first = rec.sql.map((s) => s.split(" ").slice(0, 2).join(" "));
  const expected = {
    // The conflict columns are named: no catalog read; one writer at a time: no key lock.
    sqlite: ["begin immediate", "select *", "insert into", "insert into", "commit"],
    // Advisory key lock (held to the end of the transaction), the locking read, the upsert, the audit rows.
    postgres: ["begin", "select pg_advisory_xact_lock(k)", "select *", "insert into", "insert into", "commit"],
    // ON DUPLICATE KEY UPDATE may conflict on any unique key: read from the catalog; GET_LOCK until written.
    mariadb: [
      "start transaction",
      "select index_name",
      "select get_lock(?,",
      "select *",
      "insert into",
      "insert into",
      "select release_lock(?)",
      "commit",
    ],
  }[database];
  assert.deepEqual(first, expected);
  const [entry] = await history(db);
  assert.equal(entry?.operation, "update");
});
