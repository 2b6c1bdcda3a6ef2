import assert from "node:assert/strict";
import { type ExpressionBuilder, type Kysely, sql } from "kysely";
import { assertSql, dbSuite, plainRows, rejection, type TestDatabase } from "../_test/harness.ts";
import { createExecutorSync, isRawSqlRefusedError, type KyseraPlugin, PluginContext } from "./mod.ts";
import { type DB, sqlOf, tables, tenantScope } from "./_test_helpers.ts";

const suite = dbSuite<DB>(import.meta, { tables });

// deno-lint-ignore no-explicit-any
type AnyEB = ExpressionBuilder<any, any>;
// deno-lint-ignore no-explicit-any
type Query = { compile(): any; execute(): Promise<unknown[]> };

interface ReadCase {
  name: string;
  // deno-lint-ignore no-explicit-any
  query: (db: Kysely<any>) => Query;
  sql: string;
  parameters: readonly unknown[];
  rows: readonly Record<string, unknown>[];
  databases?: readonly TestDatabase[];
}

const reads: ReadCase[] = [
  {
    name: "plain select",
    query: (db) => db.selectFrom("users").select("name").orderBy("name"),
    sql: 'select "name" from "users" where "users"."tenant_id" = ? order by "name"',
    parameters: [1],
    rows: [{ name: "ada" }, { name: "cy" }],
  },
  {
    name: "aliased table",
    query: (db) => db.selectFrom("users as u").select("u.name").orderBy("u.name"),
    sql: 'select "u"."name" from "users" as "u" where "u"."tenant_id" = ? order by "u"."name"',
    parameters: [1],
    rows: [{ name: "ada" }, { name: "cy" }],
  },
  {
    name: "comma FROM",
    query: (db) =>
      db.selectFrom(["users as u", "posts as p"]).whereRef("p.user_id", "=", "u.id").select(["u.name", "p.title"])
        .orderBy("p.title"),
    sql: 'select "u"."name", "p"."title" from "users" as "u", "posts" as "p" where "p"."user_id" = "u"."id" and ' +
      '"u"."tenant_id" = ? and "p"."tenant_id" = ? order by "p"."title"',
    parameters: [1, 1],
    rows: [{ name: "ada", title: "a1" }],
  },
  {
    name: "inner join",
    query: (db) =>
      db.selectFrom("posts as p").innerJoin("users as u", "u.id", "p.user_id").select(["p.title", "u.name"])
        .orderBy("p.title"),
    sql: 'select "p"."title", "u"."name" from "posts" as "p" inner join "users" as "u" on "u"."id" = "p"."user_id" ' +
      'and "u"."tenant_id" = ? where "p"."tenant_id" = ? order by "p"."title"',
    parameters: [1, 1],
    rows: [{ title: "a1", name: "ada" }],
  },
  {
    name: "left join keeps the outer rows",
    query: (db) =>
      db.selectFrom("posts as p").leftJoin("users as u", "u.id", "p.user_id").select(["p.title", "u.name"])
        .orderBy("p.title"),
    sql: 'select "p"."title", "u"."name" from "posts" as "p" left join "users" as "u" on "u"."id" = "p"."user_id" ' +
      'and "u"."tenant_id" = ? where "p"."tenant_id" = ? order by "p"."title"',
    parameters: [1, 1],
    rows: [{ title: "a1", name: "ada" }, { title: "x", name: null }],
  },
  {
    name: "right join keeps the outer rows",
    query: (db) =>
      db.selectFrom("users as u").rightJoin("posts as p", "p.user_id", "u.id").select(["p.title", "u.name"])
        .orderBy("p.title"),
    sql: 'select "p"."title", "u"."name" from (select * from "users" as "u" where "u"."tenant_id" = ?) as "u" ' +
      'right join (select * from "posts" as "p" where "p"."tenant_id" = ?) as "p" on "p"."user_id" = "u"."id" ' +
      'order by "p"."title"',
    parameters: [1, 1],
    rows: [{ title: "a1", name: "ada" }, { title: "x", name: null }],
  },
  {
    name: "join to a subquery",
    query: (db) =>
      db.selectFrom("users as u")
        .innerJoin((eb) => eb.selectFrom("posts").select(["user_id", "title"]).as("p"), "p.user_id", "u.id")
        .select(["u.name", "p.title"]).orderBy("p.title"),
    sql: 'select "u"."name", "p"."title" from "users" as "u" inner join (select "user_id", "title" from "posts" ' +
      'where "posts"."tenant_id" = ?) as "p" on "p"."user_id" = "u"."id" where "u"."tenant_id" = ? order by "p"."title"',
    parameters: [1, 1],
    rows: [{ name: "ada", title: "a1" }],
  },
  {
    name: "subquery in WHERE (in)",
    query: (db) =>
      db.selectFrom("users").where("id", "in", (eb: AnyEB) => eb.selectFrom("posts").select("user_id")).select("name")
        .orderBy("name"),
    sql: 'select "name" from "users" where "id" in (select "user_id" from "posts" where "posts"."tenant_id" = ?) ' +
      'and "users"."tenant_id" = ? order by "name"',
    parameters: [1, 1],
    rows: [{ name: "ada" }],
  },
  {
    name: "subquery in WHERE (exists)",
    query: (db) =>
      db.selectFrom("users as u").where((eb) =>
        eb.exists(eb.selectFrom("posts as p").whereRef("p.user_id", "=", "u.id").select("p.id"))
      ).select("u.name").orderBy("u.name"),
    sql: 'select "u"."name" from "users" as "u" where exists (select "p"."id" from "posts" as "p" where ' +
      '"p"."user_id" = "u"."id" and "p"."tenant_id" = ?) and "u"."tenant_id" = ? order by "u"."name"',
    parameters: [1, 1],
    rows: [{ name: "ada" }],
  },
  {
    name: "scalar subquery in SELECT",
    query: (db) =>
      db.selectFrom("users as u").select((eb) => [
        "u.name",
        eb.selectFrom("posts as p").whereRef("p.user_id", "=", "u.id").select((e) => e.fn.countAll().as("n"))
          .as("n"),
      ]).orderBy("u.name"),
    sql: 'select "u"."name", (select count(*) as "n" from "posts" as "p" where "p"."user_id" = "u"."id" and ' +
      '"p"."tenant_id" = ?) as "n" from "users" as "u" where "u"."tenant_id" = ? order by "u"."name"',
    parameters: [1, 1],
    rows: [{ name: "ada", n: 1 }, { name: "cy", n: 0 }],
  },
  {
    name: "CTE",
    query: (db) =>
      db.with("p", (qb) => qb.selectFrom("posts").select(["id", "title"])).selectFrom("p").select("p.title")
        .orderBy("p.title"),
    sql: 'with "p" as (select "id", "title" from "posts" where "posts"."tenant_id" = ?) select "p"."title" ' +
      'from "p" order by "p"."title"',
    parameters: [1],
    rows: [{ title: "a1" }, { title: "x" }],
  },
  {
    name: "recursive CTE",
    query: (db) =>
      db.withRecursive(
        "chain(id, name)",
        (qb) =>
          qb.selectFrom("users").where("users.id", "=", 1).select(["users.id", "users.name"])
            .unionAll((q) =>
              q.selectFrom("users").innerJoin("chain", "chain.id", "users.manager_id").select([
                "users.id",
                "users.name",
              ])
            ),
      ).selectFrom("chain").select("chain.name").orderBy("chain.name"),
    sql: 'with recursive "chain"("id", "name") as (select "users"."id", "users"."name" from "users" where ' +
      '"users"."id" = ? and "users"."tenant_id" = ? union all select "users"."id", "users"."name" from "users" ' +
      'inner join "chain" on "chain"."id" = "users"."manager_id" where "users"."tenant_id" = ?) select "chain"."name" ' +
      'from "chain" order by "chain"."name"',
    parameters: [1, 1, 1],
    rows: [{ name: "ada" }, { name: "cy" }],
  },
  {
    name: "union",
    query: (db) =>
      db.selectFrom("users").select("name as label").union((qb) => qb.selectFrom("posts").select("title as label"))
        .orderBy("label"),
    sql: 'select "name" as "label" from "users" where "users"."tenant_id" = ? union select "title" as "label" ' +
      'from "posts" where "posts"."tenant_id" = ? order by "label"',
    parameters: [1, 1],
    rows: [{ label: "a1" }, { label: "ada" }, { label: "cy" }, { label: "x" }],
  },
];

for (const c of reads) {
  suite.test(`scopeRows applies on a ${c.name}`, async (ctx) => {
    const executor = createExecutorSync(ctx.db, [tenantScope]);
    const query = c.query(executor);
    assertSql(ctx, query, sqlOf(c.sql, c.parameters));
    const rows = plainRows(await query.execute() as Record<string, unknown>[]).map((r) =>
      "n" in r ? { ...r, n: Number(r.n) } : r
    );
    assert.deepEqual(rows, c.rows);
  }, c.databases === undefined ? {} : { databases: c.databases });
}

async function titles(db: Kysely<DB>): Promise<string[]> {
  const rows = await db.selectFrom("posts").select("title").orderBy("title").execute();
  return rows.map((r) => r.title);
}

suite.test("scopeRows applies on the target of UPDATE", async (ctx) => {
  const executor = createExecutorSync(ctx.db, [tenantScope]);
  const query = executor.updateTable("posts").set({ title: sql`concat(title, '!')` });
  assertSql(ctx, query, sqlOf(`update "posts" set "title" = concat(title, '!') where "posts"."tenant_id" = ?`, [1]));
  const result = await query.executeTakeFirstOrThrow();
  assert.equal(Number(result.numUpdatedRows), 2);
  assert.deepEqual(await titles(ctx.db), ["a1!", "b1", "x!", "y"]);
});

// UPDATE ... FROM: PostgreSQL and SQLite (>= 3.33) have it; MariaDB spells a
// multi-table update as UPDATE ... JOIN (next test).
suite.test("scopeRows applies on UPDATE ... FROM", async (ctx) => {
  const executor = createExecutorSync(ctx.db, [tenantScope]);
  const query = executor.updateTable("posts").from("users").set({ title: "z" })
    .whereRef("users.id", "=", "posts.user_id").where("users.name", "in", ["ada", "bob"]);
  assertSql(
    ctx,
    query,
    sqlOf(
      'update "posts" set "title" = ? from "users" where "users"."id" = "posts"."user_id" and "users"."name" in ' +
        '(?, ?) and "posts"."tenant_id" = ? and "users"."tenant_id" = ?',
      ["z", "ada", "bob", 1, 1],
    ),
  );
  await query.execute();
  assert.deepEqual(await titles(ctx.db), ["b1", "x", "y", "z"]);
}, { databases: ["postgres", "sqlite"] });

// A multi-table UPDATE (`update a, b set ...`) is MySQL/MariaDB syntax.
suite.test("scopeRows applies on a multi-table UPDATE", async (ctx) => {
  const executor = createExecutorSync(ctx.db, [tenantScope]);
  const query = executor.updateTable(["posts", "users"]).set("posts.title", "z")
    .whereRef("users.id", "=", "posts.user_id").where("users.name", "in", ["ada", "bob"]);
  assertSql(ctx, query, {
    mysql: {
      sql: "update `posts`, `users` set `posts`.`title` = ? where `users`.`id` = `posts`.`user_id` and " +
        "`users`.`name` in (?, ?) and `posts`.`tenant_id` = ? and `users`.`tenant_id` = ?",
      parameters: ["z", "ada", "bob", 1, 1],
    },
  });
  await query.execute();
  assert.deepEqual(await titles(ctx.db), ["b1", "x", "y", "z"]);
}, { databases: ["mariadb"] });

suite.test("scopeRows applies on the target of DELETE", async (ctx) => {
  const executor = createExecutorSync(ctx.db, [tenantScope]);
  const query = executor.deleteFrom("posts").where("title", "!=", "nothing");
  assertSql(ctx, query, sqlOf('delete from "posts" where "title" != ? and "posts"."tenant_id" = ?', ["nothing", 1]));
  await query.execute();
  assert.deepEqual(await titles(ctx.db), ["b1", "y"]);
});

// DELETE ... USING: PostgreSQL syntax; MariaDB spells it DELETE FROM t USING
// t JOIN u; SQLite has neither.
suite.test("scopeRows applies on DELETE ... USING", async (ctx) => {
  const executor = createExecutorSync(ctx.db, [tenantScope]);
  const query = ctx.dialect === "postgres"
    ? executor.deleteFrom("posts").using("users").whereRef("users.id", "=", "posts.user_id")
    : executor.deleteFrom("posts").using("posts").innerJoin("users", "users.id", "posts.user_id");
  assertSql(ctx, query, {
    postgres: {
      sql: 'delete from "posts" using "users" where "users"."id" = "posts"."user_id" and "posts"."tenant_id" = $1 ' +
        'and "users"."tenant_id" = $2',
      parameters: [1, 1],
    },
    mysql: {
      sql: "delete from `posts` using `posts` inner join `users` on `users`.`id` = `posts`.`user_id` and " +
        "`users`.`tenant_id` = ? where `posts`.`tenant_id` = ?",
      parameters: [1, 1],
    },
  });
  await query.execute();
  assert.deepEqual(await titles(ctx.db), ["b1", "x", "y"]);
}, { databases: ["postgres", "mariadb"] });

suite.test("scopeRows applies on INSERT ... SELECT", async (ctx) => {
  const executor = createExecutorSync(ctx.db, [tenantScope]);
  const query = executor.insertInto("posts").columns(["tenant_id", "user_id", "title"]).expression((eb) =>
    eb.selectFrom("posts as p").select(["p.tenant_id", "p.user_id", sql<string>`concat(p.title, '-copy')`.as("t")])
  );
  assertSql(
    ctx,
    query,
    sqlOf(
      'insert into "posts" ("tenant_id", "user_id", "title") select "p"."tenant_id", "p"."user_id", ' +
        `concat(p.title, '-copy') as "t" from "posts" as "p" where "p"."tenant_id" = ?`,
      [1],
    ),
  );
  await query.execute();
  assert.deepEqual(await titles(ctx.db), ["a1", "a1-copy", "b1", "x", "x-copy", "y"]);
});

suite.test("row scope: an upsert never updates a conflicting row out of scope", async (ctx) => {
  const executor = createExecutorSync(ctx.db, [tenantScope]);
  const upsert = (title: string) => {
    const insert = executor.insertInto("posts").values({ tenant_id: 1, user_id: 3, title });
    return ctx.dialect === "mysql"
      ? insert.onDuplicateKeyUpdate({ user_id: 3 })
      : insert.onConflict((oc) => oc.column("title").doUpdateSet({ user_id: 3 }));
  };
  assertSql(ctx, upsert("b1"), {
    ...sqlOf(
      'insert into "posts" ("tenant_id", "user_id", "title") values (?, ?, ?) on conflict ("title") do update set ' +
        '"user_id" = ? where "posts"."tenant_id" = ?',
      [1, 3, "b1", 3, 1],
    ),
    mysql: {
      sql: "insert into `posts` (`tenant_id`, `user_id`, `title`) values (?, ?, ?) on duplicate key update " +
        "`user_id` = if(`posts`.`tenant_id` = ?, ?, `user_id`)",
      parameters: [1, 3, "b1", 1, 3],
    },
  });
  await upsert("b1").execute(); // b1 belongs to tenant 2: untouched
  await upsert("a1").execute(); // a1 belongs to tenant 1: updated
  await upsert("new").execute(); // no conflict: inserted
  const rows = await ctx.db.selectFrom("posts").select(["title", "tenant_id", "user_id"]).orderBy("title").execute();
  assert.deepEqual(plainRows(rows), [
    { title: "a1", tenant_id: 1, user_id: 3 },
    { title: "b1", tenant_id: 2, user_id: 2 },
    { title: "new", tenant_id: 1, user_id: 3 },
    { title: "x", tenant_id: 1, user_id: 2 },
    { title: "y", tenant_id: 2, user_id: 1 },
  ]);
});

suite.test(
  "row scope: MERGE acts only on target rows in scope and joins only source rows in scope",
  async (ctx) => {
    const executor = createExecutorSync(ctx.db, [tenantScope]);
    const merge = executor.mergeInto("posts as p").using("users as u", "u.id", "p.user_id")
      .whenMatched().thenUpdateSet({ user_id: 3 });
    assertSql(ctx, merge, {
      postgres: {
        sql: 'merge into "posts" as "p" using "users" as "u" on "u"."id" = "p"."user_id" and "u"."tenant_id" = $1 ' +
          'when matched and "p"."tenant_id" = $2 then update set "user_id" = $3',
        parameters: [1, 1, 3],
      },
    });
    const result = await merge.executeTakeFirstOrThrow();
    assert.equal(result.numChangedRows, 1n);
    const rows = await ctx.db.selectFrom("posts").select(["title", "user_id"]).orderBy("title").execute();
    // Ada's posts match; of those only a1 (tenant 1) changes, y (tenant 2) does not.
    assert.deepEqual(plainRows(rows), [
      { title: "a1", user_id: 3 },
      { title: "b1", user_id: 2 },
      { title: "x", user_id: 2 },
      { title: "y", user_id: 1 },
    ]);
  },
  { databases: ["postgres"] }, // MERGE exists on PostgreSQL 15+ (and MSSQL); MariaDB and SQLite have none
);

// A CTE hides a table only where the database resolves the name to the CTE.
// PostgreSQL and MariaDB resolve `posts` inside a non-recursive CTE named
// `posts` (or inside an earlier CTE of the same WITH) to the real table, so
// it is scoped there; SQLite refuses such a self-reference as circular, so
// it runs there only to show the database refusing it.
for (
  const c of [
    {
      name: "a CTE named after a scoped table: the table its body reads is scoped",
      query: (db: Kysely<DB>) =>
        db.with("posts", (qb) => qb.selectFrom("posts").select(["id", "title"])).selectFrom("posts").select("title")
          .orderBy("title"),
      sql: 'with "posts" as (select "id", "title" from "posts" where "posts"."tenant_id" = ?) select "title" ' +
        'from "posts" order by "title"',
    },
    {
      name: "a CTE's body does not see the CTEs defined after it",
      query: (db: Kysely<DB>) =>
        // deno-lint-ignore no-explicit-any
        (db.with("x", (qb) => qb.selectFrom("posts").select("title")) as Kysely<any>)
          .with("posts", (qb) => qb.selectFrom("x").select("title")).selectFrom("posts").select("title")
          .orderBy("title"),
      sql: 'with "x" as (select "title" from "posts" where "posts"."tenant_id" = ?), "posts" as (select "title" ' +
        'from "x") select "title" from "posts" order by "title"',
    },
  ]
) {
  suite.test(`row scope: ${c.name}`, async (ctx) => {
    const query = c.query(createExecutorSync(ctx.db, [tenantScope]));
    assertSql(ctx, query, sqlOf(c.sql, [1]));
    if (ctx.database === "sqlite") {
      const error = await rejection(query.execute());
      assert.match(String(error), /circular reference: posts/);
      return;
    }
    assert.deepEqual(plainRows(await query.execute()), [{ title: "a1" }, { title: "x" }]);
  });
}

suite.test("row scope: under WITH RECURSIVE, a CTE named later is read as a table inside an earlier body", async (ctx) => {
  // `posts` inside `a` names a CTE defined after it. PostgreSQL, MariaDB
  // 10.11 and SQLite resolve it to that CTE; MySQL 8 lets a CTE see only
  // itself and earlier ones, so there it would be the real table. The walk
  // takes the cautious reading and scopes it as the table: where the
  // database reads the CTE, the scope names a column the CTE lacks and the
  // query fails; nowhere does it read the table unscoped.
  const executor = createExecutorSync(ctx.db, [tenantScope]);
  // deno-lint-ignore no-explicit-any
  const query = (executor.withRecursive("a", (qb) => qb.selectFrom("posts").select("title")) as Kysely<any>)
    .with("posts", (qb) => qb.selectFrom("users").select("name as title")).selectFrom("a").select("title");
  assertSql(
    ctx,
    query,
    sqlOf(
      'with recursive "a" as (select "title" from "posts" where "posts"."tenant_id" = ?), "posts" as ' +
        '(select "name" as "title" from "users" where "users"."tenant_id" = ?) select "title" from "a"',
      [1, 1],
    ),
  );
  const error = await rejection(query.execute());
  assert.match(String(error), /tenant_id/);
});

suite.test("row scope: a raw SQL SET target is raw SQL, refused by a plugin that refuses raw SQL", async (ctx) => {
  const strict = createExecutorSync(ctx.db, [{ ...tenantScope, name: "strict", rawSql: "refuse" }]);
  const before = await titles(ctx.db);
  for (
    const attempt of [
      () => strict.updateTable("posts").set(sql`tenant_id`, 2).execute(),
      () => strict.updateTable("posts").set(sql.ref("tenant_id"), 2).execute(),
      () => strict.transaction().execute((trx) => trx.updateTable("posts").set(sql`title`, "z").execute()),
    ]
  ) {
    const error = await rejection(attempt());
    assert.ok(isRawSqlRefusedError(error), String(error));
  }
  assert.deepEqual(await titles(ctx.db), before);
  // Named columns, in either form, are not raw.
  const named = strict.updateTable("posts").set("title", "z").where("title", "=", "a1");
  assertSql(
    ctx,
    named,
    sqlOf('update "posts" set "title" = ? where "title" = ? and "posts"."tenant_id" = ?', ["z", "a1", 1]),
  );
  await named.execute();
  assert.deepEqual(await titles(ctx.db), ["b1", "x", "y", "z"]);
});

/** A scope on posts by the tenant in its context; no context, no rows. */
function contextScope(): { tenant: PluginContext<number>; plugin: KyseraPlugin<number> } {
  const tenant = new PluginContext<number>("tenant");
  return {
    tenant,
    plugin: {
      name: "context-tenant",
      context: tenant,
      scopeRows: (ref, eb) => ref.table === "posts" ? eb(ref.column("tenant_id"), "=", ref.context ?? -1) : undefined,
    },
  };
}

suite.test("scopes take the context of execution, once, however the query was built", async (ctx) => {
  const { tenant, plugin } = contextScope();
  const db = createExecutorSync(ctx.db, [plugin]);
  // Built outside any context (and in tenant 2's), with a subquery, a union
  // branch and a CTE made from the executor; run as tenant 1.
  const built = () =>
    db.with("mine", (qc) => qc.selectFrom("posts").select("title"))
      .selectFrom("mine")
      .select("title as name")
      .union(db.selectFrom("users").select("name").where("id", "in", db.selectFrom("posts").select("user_id")))
      .orderBy("name");
  const outside = built();
  const inTenant2 = tenant.run(2, built);
  for (const query of [outside, inTenant2]) {
    const rows = await tenant.run(1, () => query.execute());
    assert.deepEqual(rows.map((r) => r.name), ["a1", "ada", "bob", "x"]);
  }
  // The predicate appears once per reference, with tenant 1's value.
  const compiled = tenant.run(1, () => outside.compile());
  assert.equal(compiled.sql.match(/tenant_id/g)?.length, 2, compiled.sql);
  assert.deepEqual(compiled.parameters, [1, 1]);
  // A builder embedded in raw SQL run on the executor is scoped too.
  const raw = await tenant.run(
    1,
    () =>
      sql<{ title: string }>`select title from (${db.selectFrom("posts").select("title")}) as t order by title`
        .execute(db),
  );
  assert.deepEqual(raw.rows.map((r) => r.title), ["a1", "x"]);
});
