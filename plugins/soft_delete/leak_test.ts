/** The leak suite: no soft-deleted row appears on any query path, on every database. */
import assert from "node:assert/strict";
import type { ExpressionBuilder, Kysely } from "kysely";
import { assertSql, dbSuite, inTransactionAndSavepoint, plainRows, type TestDatabase } from "../../_test/harness.ts";
import { createExecutorSync, getRawDb } from "../../executor/mod.ts";
import { createORM } from "../../repository/mod.ts";
import { softDeletePlugin } from "./mod.ts";
import { clock, type DB, sqlOf, tables } from "./_test_helpers.ts";

const suite = dbSuite<DB>(import.meta, { tables });

// deno-lint-ignore no-explicit-any
type AnyDb = Kysely<any>;
// deno-lint-ignore no-explicit-any
type AnyEB = ExpressionBuilder<any, any>;
// deno-lint-ignore no-explicit-any
type Query = { compile(): any; execute(): Promise<any[]> };

interface ReadCase {
  name: string;
  query: (db: AnyDb) => Query;
  sql: string;
  rows: readonly Record<string, unknown>[];
  databases?: readonly TestDatabase[];
}

const IS_NULL = (t: string) => `"${t}"."deleted_at" is null`;

// Canaries: user bob and post a2 are soft-deleted; post b1 belongs to bob.
const reads: ReadCase[] = [
  {
    name: "plain select",
    query: (db) => db.selectFrom("users").select("name").orderBy("name"),
    sql: `select "name" from "users" where ${IS_NULL("users")} order by "name"`,
    rows: [{ name: "ada" }, { name: "cy" }],
  },
  {
    name: "aliased table",
    query: (db) => db.selectFrom("users as u").select("u.name").orderBy("u.name"),
    sql: `select "u"."name" from "users" as "u" where ${IS_NULL("u")} order by "u"."name"`,
    rows: [{ name: "ada" }, { name: "cy" }],
  },
  {
    name: "inner join drops rows of a deleted parent",
    query: (db) =>
      db.selectFrom("posts as p").innerJoin("users as u", "u.id", "p.user_id").select(["p.title", "u.name"])
        .orderBy("p.title"),
    sql: `select "p"."title", "u"."name" from "posts" as "p" inner join "users" as "u" on "u"."id" = "p"."user_id" ` +
      `and ${IS_NULL("u")} where ${IS_NULL("p")} order by "p"."title"`,
    rows: [{ title: "a1", name: "ada" }, { title: "c1", name: "cy" }],
  },
  {
    name: "left join keeps the outer rows, the deleted parent is null",
    query: (db) =>
      db.selectFrom("posts as p").leftJoin("users as u", "u.id", "p.user_id").select(["p.title", "u.name"])
        .orderBy("p.title"),
    sql: `select "p"."title", "u"."name" from "posts" as "p" left join "users" as "u" on "u"."id" = "p"."user_id" ` +
      `and ${IS_NULL("u")} where ${IS_NULL("p")} order by "p"."title"`,
    rows: [{ title: "a1", name: "ada" }, { title: "b1", name: null }, { title: "c1", name: "cy" }],
  },
  {
    name: "left join from the parent: deleted children are null",
    query: (db) =>
      db.selectFrom("users as u").leftJoin("posts as p", "p.user_id", "u.id").select(["u.name", "p.title"])
        .orderBy("u.name").orderBy("p.title"),
    sql: `select "u"."name", "p"."title" from "users" as "u" left join "posts" as "p" on "p"."user_id" = "u"."id" ` +
      `and ${IS_NULL("p")} where ${IS_NULL("u")} order by "u"."name", "p"."title"`,
    rows: [{ name: "ada", title: "a1" }, { name: "cy", title: "c1" }],
  },
  {
    name: "right join keeps the outer rows",
    query: (db) =>
      db.selectFrom("users as u").rightJoin("posts as p", "p.user_id", "u.id").select(["p.title", "u.name"])
        .orderBy("p.title"),
    sql: `select "p"."title", "u"."name" from (select * from "users" as "u" where ${IS_NULL("u")}) as "u" ` +
      `right join (select * from "posts" as "p" where ${IS_NULL("p")}) as "p" on "p"."user_id" = "u"."id" ` +
      `order by "p"."title"`,
    rows: [{ title: "a1", name: "ada" }, { title: "b1", name: null }, { title: "c1", name: "cy" }],
  },
  {
    name: "full join keeps both sides' live rows",
    query: (db) =>
      db.selectFrom("users as u").fullJoin("posts as p", "p.user_id", "u.id").select(["p.title", "u.name"])
        .orderBy("p.title"),
    sql: `select "p"."title", "u"."name" from (select * from "users" as "u" where ${IS_NULL("u")}) as "u" ` +
      `full join (select * from "posts" as "p" where ${IS_NULL("p")}) as "p" on "p"."user_id" = "u"."id" ` +
      `order by "p"."title"`,
    rows: [{ title: "a1", name: "ada" }, { title: "b1", name: null }, { title: "c1", name: "cy" }],
    // MariaDB has no FULL JOIN.
    databases: ["sqlite", "postgres"],
  },
  {
    name: "cross join",
    query: (db) => db.selectFrom("users as u").crossJoin("posts as p").select((eb) => eb.fn.countAll().as("n")),
    sql: `select count(*) as "n" from "users" as "u" cross join "posts" as "p" where ${IS_NULL("u")} and ${
      IS_NULL("p")
    }`,
    rows: [{ n: 6 }],
  },
  {
    name: "self join under two aliases",
    query: (db) =>
      db.selectFrom("users as a").innerJoin("users as b", "b.tenant_id", "a.tenant_id").select([
        "a.name as a",
        "b.name as b",
      ])
        .orderBy("a.name").orderBy("b.name"),
    sql: `select "a"."name" as "a", "b"."name" as "b" from "users" as "a" inner join "users" as "b" on ` +
      `"b"."tenant_id" = "a"."tenant_id" and ${IS_NULL("b")} where ${IS_NULL("a")} order by "a"."name", "b"."name"`,
    rows: [{ a: "ada", b: "ada" }, { a: "cy", b: "cy" }],
  },
  {
    name: "subquery in WHERE (in)",
    query: (db) =>
      db.selectFrom("posts").where("user_id", "in", (eb: AnyEB) => eb.selectFrom("users").select("users.id")).select(
        "title",
      )
        .orderBy("title"),
    sql: `select "title" from "posts" where "user_id" in (select "users"."id" from "users" where ${
      IS_NULL("users")
    }) and ${IS_NULL("posts")} order by "title"`,
    rows: [{ title: "a1" }, { title: "c1" }],
  },
  {
    name: "subquery in WHERE (exists)",
    query: (db) =>
      db.selectFrom("users as u").where((eb) =>
        eb.exists(
          eb.selectFrom("posts as p").whereRef("p.user_id", "=", "u.id").where("p.title", "=", "a2").select("p.id"),
        )
      ).select("u.name"),
    sql: `select "u"."name" from "users" as "u" where exists (select "p"."id" from "posts" as "p" where ` +
      `"p"."user_id" = "u"."id" and "p"."title" = ? and ${IS_NULL("p")}) and ${IS_NULL("u")}`,
    rows: [],
  },
  {
    name: "scalar subquery in SELECT",
    query: (db) =>
      db.selectFrom("users as u").select((eb) => [
        "u.name",
        eb.selectFrom("posts as p").whereRef("p.user_id", "=", "u.id").select((e) => e.fn.countAll().as("n")).as("n"),
      ]).orderBy("u.name"),
    sql: `select "u"."name", (select count(*) as "n" from "posts" as "p" where "p"."user_id" = "u"."id" and ${
      IS_NULL("p")
    }) as "n" from "users" as "u" where ${IS_NULL("u")} order by "u"."name"`,
    rows: [{ name: "ada", n: 1 }, { name: "cy", n: 1 }],
  },
  {
    name: "derived table in FROM",
    query: (db) =>
      db.selectFrom((eb) => eb.selectFrom("posts").select("title").as("d")).select("d.title").orderBy("d.title"),
    sql: `select "d"."title" from (select "title" from "posts" where ${IS_NULL("posts")}) as "d" order by "d"."title"`,
    rows: [{ title: "a1" }, { title: "b1" }, { title: "c1" }],
  },
  {
    name: "CTE",
    query: (db) =>
      db.with("p", (qb) => qb.selectFrom("posts").select(["id", "title"])).selectFrom("p").select("p.title")
        .orderBy("p.title"),
    sql: `with "p" as (select "id", "title" from "posts" where ${IS_NULL("posts")}) select "p"."title" from "p" ` +
      `order by "p"."title"`,
    rows: [{ title: "a1" }, { title: "b1" }, { title: "c1" }],
  },
  {
    name: "union",
    query: (db) =>
      db.selectFrom("users").select("name as v").union((eb: AnyEB) => eb.selectFrom("posts").select("title as v"))
        .orderBy("v"),
    sql: `select "name" as "v" from "users" where ${IS_NULL("users")} union select "title" as "v" from "posts" ` +
      `where ${IS_NULL("posts")} order by "v"`,
    rows: [{ v: "a1" }, { v: "ada" }, { v: "b1" }, { v: "c1" }, { v: "cy" }],
  },
  {
    name: "count",
    query: (db) => db.selectFrom("posts").select((eb) => eb.fn.countAll().as("n")),
    sql: `select count(*) as "n" from "posts" where ${IS_NULL("posts")}`,
    rows: [{ n: 3 }],
  },
  {
    name: "group by with a joined count",
    query: (db) =>
      db.selectFrom("users as u").leftJoin("posts as p", "p.user_id", "u.id").groupBy("u.name")
        .select((eb) => ["u.name", eb.fn.count("p.id").as("n")]).orderBy("u.name"),
    sql: `select "u"."name", count("p"."id") as "n" from "users" as "u" left join "posts" as "p" on ` +
      `"p"."user_id" = "u"."id" and ${IS_NULL("p")} where ${IS_NULL("u")} group by "u"."name" order by "u"."name"`,
    rows: [{ name: "ada", n: 1 }, { name: "cy", n: 1 }],
  },
];

const parametersOf = (c: ReadCase): unknown[] => c.name.includes("exists") ? ["a2"] : [];

/** Counts come back as strings or bigints on some drivers. */
function normal(rows: readonly Record<string, unknown>[]): Record<string, unknown>[] {
  return plainRows(rows).map((row) =>
    Object.fromEntries(
      Object.entries(row).map(([k, v]) => [k, k === "n" && v !== null ? Number(v) : v]),
    )
  );
}

function executor(db: Kysely<DB>): Kysely<DB> {
  return createExecutorSync(db, [softDeletePlugin({ tables: "all", clock, excludeTables: ["notes"] })]);
}

for (const c of reads) {
  suite.test(`leak suite: ${c.name}`, async (ctx) => {
    const query = c.query(executor(ctx.db));
    assertSql(ctx, query, sqlOf(c.sql, parametersOf(c)));
    assert.deepEqual(normal(await query.execute()), c.rows);
  }, c.databases === undefined ? {} : { databases: c.databases });
}

/** Runs every read case on `db` and checks its rows. */
async function allReads(db: AnyDb, database: TestDatabase): Promise<void> {
  for (const c of reads) {
    if (c.databases !== undefined && !c.databases.includes(database)) continue;
    assert.deepEqual(normal(await c.query(db).execute()), c.rows, c.name);
  }
}

// SQLite resolves table names without regard to case; the MariaDB server here
// runs lower_case_table_names=0 and PostgreSQL quotes identifiers, so there
// `USERS` is another (missing) table.
suite.test("leak suite: a covered table named in another case is covered", async ({ db }) => {
  const listed = createExecutorSync(db, [softDeletePlugin({ clock, tables: ["users", "posts"] })]);
  const rows = await (listed as AnyDb).selectFrom("USERS").select("name").orderBy("name").execute();
  assert.deepEqual(normal(rows), [{ name: "ada" }, { name: "cy" }]);
}, { databases: ["sqlite"] });

suite.test("leak suite: every read inside transaction()", async ({ db, database }) => {
  await executor(db).transaction().execute((trx) => allReads(trx, database));
});

suite.test("leak suite: every read in a controlled transaction and its savepoint", async ({ db, database }) => {
  await inTransactionAndSavepoint(executor(db), (trx) => allReads(trx, database));
});

suite.test("leak suite: every read on connection()", async ({ db, database }) => {
  await executor(db).connection().execute((conn) => allReads(conn, database));
});

suite.test("leak suite: every read in a repository transaction", async ({ db, database }) => {
  const users = createORM(executor(db)).createRepository({ tableName: "users", primaryKey: "id" });
  await users.transaction(async (trx) => {
    await allReads(trx.executor, database);
    assert.deepEqual((await trx.findAll({ orderBy: "id" })).map((u) => u.name), ["ada", "cy"]);
  });
});

suite.test("leak suite: update skips deleted rows", async (ctx) => {
  const q = executor(ctx.db).updateTable("users").set({ name: "x" });
  assertSql(ctx, q, sqlOf(`update "users" set "name" = ? where ${IS_NULL("users")}`, ["x"]));
  assert.equal((await q.executeTakeFirst()).numUpdatedRows, 2n);
  const bob = await ctx.db.selectFrom("users").select("name").where("id", "=", 2).executeTakeFirstOrThrow();
  assert.equal(bob.name, "bob");
});

suite.test("leak suite: delete skips deleted rows", async (ctx) => {
  const q = executor(ctx.db).deleteFrom("posts").where("title", "in", ["a1", "a2"]);
  assertSql(ctx, q, sqlOf(`delete from "posts" where "title" in (?, ?) and ${IS_NULL("posts")}`, ["a1", "a2"]));
  assert.equal((await q.executeTakeFirst()).numDeletedRows, 1n);
  const left = await ctx.db.selectFrom("posts").select("title").orderBy("title").execute();
  assert.deepEqual(plainRows(left), [{ title: "a2" }, { title: "b1" }, { title: "c1" }]);
});

suite.test("leak suite: insert ... select copies live rows only", async (ctx) => {
  const q = executor(ctx.db).insertInto("notes").columns(["body"]).expression((eb) =>
    eb.selectFrom("users").select("name").orderBy("name")
  );
  assertSql(
    ctx,
    q,
    sqlOf(`insert into "notes" ("body") select "name" from "users" where ${IS_NULL("users")} order by "name"`),
  );
  await q.execute();
  const notes = await ctx.db.selectFrom("notes").select("body").orderBy("body").execute();
  assert.deepEqual(plainRows(notes), [{ body: "ada" }, { body: "cy" }]);
});

suite.test("leak suite: writes inside a transaction skip deleted rows", async ({ db }) => {
  await executor(db).transaction().execute(async (trx) => {
    assert.equal(
      (await trx.updateTable("posts").set({ title: "z" }).where("user_id", "=", 1).executeTakeFirst())
        .numUpdatedRows,
      1n,
    );
    assert.equal((await trx.deleteFrom("users").where("id", "=", 2).executeTakeFirst()).numDeletedRows, 0n);
  });
  const raw = getRawDb(executor(db));
  const titles = await raw.selectFrom("posts").select("title").where("user_id", "=", 1).orderBy("title").execute();
  assert.deepEqual(plainRows(titles), [{ title: "a2" }, { title: "z" }]);
  assert.equal((await raw.selectFrom("users").select("id").where("id", "=", 2).execute()).length, 1);
});
