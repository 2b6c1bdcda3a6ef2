/** The adversarial suite: tenant 1 never reads or changes tenant 2's rows, on any path, on every database. */
import assert from "node:assert/strict";
import { type ExpressionBuilder, type Kysely, sql } from "kysely";
import {
  addIdColumn,
  assertSql,
  dbSuite,
  inTransactionAndSavepoint,
  plainRows,
  rejection,
} from "../../_test/harness.ts";
import { allowRawSql, createExecutorSync, getRawDb, isRawSqlRefusedError } from "../../executor/mod.ts";
import { createORM } from "../../repository/mod.ts";
import { sqlOf } from "../soft_delete/_test_helpers.ts";
import { allReads, attackEnv, reads, shape } from "./_attacks.ts";
import { defineRLSSchema, filter, isRLSContextError, isRLSPolicyViolation, rlsContext, rlsPlugin } from "./mod.ts";
import { isUniqueConstraintError, parseDatabaseError } from "../../core/mod.ts";
import { assertNoLeak, type DB, MARK, normal, T1, T2, tables, tenant2Snapshot, tenantSchema } from "./_test_helpers.ts";

const suite = dbSuite<DB>(import.meta, { tables });

// deno-lint-ignore no-explicit-any
type AnyEB = ExpressionBuilder<any, any>;

function executor(db: Kysely<DB>, options: { allowRawSql?: boolean; bypassRoles?: string[] } = {}): Kysely<DB> {
  return createExecutorSync(db, [rlsPlugin({ schema: tenantSchema, ...options })]);
}

const asT1 = <R>(fn: () => Promise<R>): Promise<R> => rlsContext.runAsync(T1, fn);

for (const c of reads) {
  suite.test(`leak suite: ${c.name}`, async ({ db, database }) => {
    const before = await tenant2Snapshot(db);
    const env = await attackEnv(db, database);
    const rows = await asT1(() => c.query(executor(db), env).execute());
    assertNoLeak(rows);
    assert.deepEqual(shape(c, rows), c.rows);
    assert.equal(await tenant2Snapshot(db), before);
  }, c.databases === undefined ? {} : { databases: c.databases });
}

suite.test("leak suite: the filter is keyed on the table, not the alias (SQL)", async (ctx) => {
  await asT1(async () => {
    const q = executor(ctx.db).selectFrom("posts as p").select("p.title");
    assertSql(ctx, q, sqlOf(`select "p"."title" from "posts" as "p" where "p"."tenant_id" = ?`, [1]));
    assert.deepEqual(plainRows(await q.execute()), [{ title: "a1" }, { title: "a2" }]);
  });
});

suite.test("leak suite: every read inside transaction()", async ({ db, database }) => {
  await asT1(() => executor(db).transaction().execute((trx) => allReads(trx, database)));
});

suite.test("leak suite: every read in a controlled transaction and its savepoint", async ({ db, database }) => {
  await asT1(() => inTransactionAndSavepoint(executor(db), (trx) => allReads(trx, database)));
});

suite.test("leak suite: every read on connection() and withoutPlugins()", async ({ db, database }) => {
  await asT1(async () => {
    await executor(db).connection().execute((conn) => allReads(conn, database));
    await allReads(executor(db).withoutPlugins(), database);
  });
});

suite.test("leak suite: a transaction opened outside the context still filters inside it", async ({ db, database }) => {
  await executor(db).transaction().execute((trx) => asT1(() => allReads(trx, database)));
});

suite.test("leak suite: update by tenant 2's id changes nothing", async ({ db }) => {
  const before = await tenant2Snapshot(db);
  const result = await asT1(() =>
    executor(db).updateTable("posts").set({ title: "pwned" }).where("id", "=", 3).executeTakeFirst()
  );
  assert.equal(result.numUpdatedRows, 0n);
  assert.equal(await tenant2Snapshot(db), before);
});

suite.test("leak suite: bulk update without where touches only tenant 1", async ({ db }) => {
  const before = await tenant2Snapshot(db);
  const result = await asT1(() => executor(db).updateTable("posts").set({ title: "z" }).executeTakeFirst());
  assert.equal(result.numUpdatedRows, 2n);
  assert.equal(await tenant2Snapshot(db), before);
  const t1 = await db.selectFrom("posts").select("title").where("tenant_id", "=", 1).execute();
  assert.deepEqual(plainRows(t1), [{ title: "z" }, { title: "z" }]);
});

suite.test("leak suite: update with a subquery over tenant 2's rows", async ({ db }) => {
  const before = await tenant2Snapshot(db);
  const result = await asT1(() =>
    executor(db).updateTable("posts").set({ title: "z" })
      .where("user_id", "in", (eb: AnyEB) => eb.selectFrom("users").select("id").where("tenant_id", "=", 2))
      .executeTakeFirst()
  );
  assert.equal(result.numUpdatedRows, 0n);
  assert.equal(await tenant2Snapshot(db), before);
});

suite.test("leak suite: delete by tenant 2's id and bulk delete", async ({ db }) => {
  const before = await tenant2Snapshot(db);
  await asT1(async () => {
    assert.equal((await executor(db).deleteFrom("posts").where("id", "=", 3).executeTakeFirst()).numDeletedRows, 0n);
    assert.equal((await executor(db).deleteFrom("posts").executeTakeFirst()).numDeletedRows, 2n);
  });
  assert.equal(await tenant2Snapshot(db), before);
  assert.equal((await db.selectFrom("posts").select("id").execute()).length, 1);
});

suite.test("leak suite: moving a row to tenant 2 is refused before anything is written", async ({ db }) => {
  const before = JSON.stringify(plainRows(await db.selectFrom("posts").selectAll().orderBy("id").execute()));
  for (
    const attempt of [
      () => executor(db).updateTable("posts").set({ tenant_id: 2 }).where("id", "=", 1).execute(),
      () => executor(db).updateTable("posts").set({ tenant_id: 2 }).execute(),
      () => executor(db).updateTable("posts").set({ tenant_id: sql<number>`tenant_id + 1` }).execute(),
      // set(column, value) builds a column reference, not a column: the same check.
      () => executor(db).updateTable("posts").set("tenant_id", 2).where("id", "=", 1).execute(),
      () => executor(db).updateTable("posts as p").set("tenant_id", 2).execute(),
      () => executor(db).transaction().execute((trx) => trx.updateTable("posts").set({ tenant_id: 2 }).execute()),
    ]
  ) {
    const error = await asT1(() => rejection(attempt()));
    assert.ok(isRLSPolicyViolation(error), String(error));
    assertNoLeak(error, "error");
  }
  const posts = createORM(executor(db)).createRepository({ tableName: "posts", primaryKey: "id" });
  assert.ok(isRLSPolicyViolation(await asT1(() => rejection(posts.update(1, { tenant_id: 2 })))));
  // A raw SQL SET target names no column a check could read: raw SQL, refused.
  for (
    const attempt of [
      () => executor(db).updateTable("posts").set(sql`tenant_id`, 2).execute(),
      () => executor(db).updateTable("posts").set(sql.ref("tenant_id"), 2).execute(),
    ]
  ) {
    const error = await asT1(() => rejection(attempt()));
    assert.ok(isRawSqlRefusedError(error), String(error));
  }
  assert.equal(JSON.stringify(plainRows(await db.selectFrom("posts").selectAll().orderBy("id").execute())), before);
});

suite.test("leak suite: a forged tenant on insert is refused, single and bulk", async ({ db }) => {
  await asT1(async () => {
    const single = await rejection(
      executor(db).insertInto("posts").values({ tenant_id: 2, user_id: 1, title: "f", body: "f" }).execute(),
    );
    assert.ok(isRLSPolicyViolation(single), String(single));
    const bulk = await rejection(
      executor(db).insertInto("posts").values([
        { tenant_id: 1, user_id: 1, title: "ok", body: "ok" },
        { tenant_id: 2, user_id: 1, title: "f", body: "f" },
      ]).execute(),
    );
    assert.ok(isRLSPolicyViolation(bulk), String(bulk));
    const posts = createORM(executor(db)).createRepository({ tableName: "posts", primaryKey: "id" });
    assert.ok(isRLSPolicyViolation(await rejection(posts.create({ tenant_id: 2, user_id: 1, title: "f", body: "f" }))));
  });
  assert.equal((await db.selectFrom("posts").select("id").execute()).length, 3);
});

suite.test("leak suite: an insert without the tenant gets the caller's", async ({ db }) => {
  await asT1(() => executor(db).insertInto("posts").values({ user_id: 1, title: "n", body: "n" }).execute());
  const row = await db.selectFrom("posts").select("tenant_id").where("title", "=", "n").executeTakeFirstOrThrow();
  assert.equal(Number(row.tenant_id), 1);
});

suite.test("leak suite: insert ... select copies tenant 1's rows only, under tenant 1", async ({ db }) => {
  const before = await tenant2Snapshot(db);
  await asT1(async () => {
    await executor(db).insertInto("posts").columns(["user_id", "title", "body"])
      .expression((eb) => eb.selectFrom("posts").select(["user_id", "title", "body"])).execute();
    const forged = await rejection(
      executor(db).insertInto("posts").columns(["tenant_id", "user_id", "title", "body"])
        .expression((eb) => eb.selectFrom("posts").select([sql.lit(2).as("t"), "user_id", "title", "body"]))
        .execute(),
    );
    assert.ok(isRLSPolicyViolation(forged), String(forged));
  });
  assert.equal(await tenant2Snapshot(db), before);
  const counts = await db.selectFrom("posts").select(["tenant_id", (eb) => eb.fn.countAll().as("n")])
    .groupBy("tenant_id").orderBy("tenant_id").execute();
  assert.deepEqual(normal(plainRows(counts)), [{ tenant_id: 1, n: 4 }, { tenant_id: 2, n: 1 }]);
});

suite.test("leak suite: an upsert colliding with tenant 2's key leaves it unchanged", async ({ db, database }) => {
  const before = await tenant2Snapshot(db);
  await asT1(async () => {
    const insert = executor(db).insertInto("posts").values({ id: 3, user_id: 1, title: "pwn", body: "pwn" });
    const upsert = database === "mariadb"
      ? insert.onDuplicateKeyUpdate({ title: "pwn", body: "pwn" })
      : insert.onConflict((oc) => oc.column("id").doUpdateSet({ title: "pwn", body: "pwn" }));
    const error = await upsert.execute().then(() => undefined, (e: unknown) => e);
    if (error !== undefined) assertNoLeak(error, "error");
  });
  assert.equal(await tenant2Snapshot(db), before);
});

// UPDATE ... FROM: PostgreSQL and SQLite (3.33+); MariaDB has no FROM in
// UPDATE and spells it as a multi-table UPDATE (below).
suite.test("leak suite: update ... from filters every table", async ({ db }) => {
  const before = await tenant2Snapshot(db);
  await asT1(async () => {
    const updated = await executor(db).updateTable("posts").from("users").set((eb) => ({ title: eb.ref("users.name") }))
      .whereRef("users.id", "=", "posts.user_id").executeTakeFirst();
    assert.equal(updated.numUpdatedRows, 1n);
    const moved = await rejection(
      executor(db).updateTable("posts").from("users").set("tenant_id", 2).whereRef("users.id", "=", "posts.user_id")
        .execute(),
    );
    assert.ok(isRLSPolicyViolation(moved), String(moved));
  });
  assert.equal(await tenant2Snapshot(db), before);
  const titles = await db.selectFrom("posts").select("title").where("tenant_id", "=", 1).orderBy("id").execute();
  assert.deepEqual(plainRows(titles), [{ title: "ada" }, { title: "a2" }]);
}, { databases: ["postgres", "sqlite"] });

// DELETE ... USING: PostgreSQL `delete from posts using users`, MariaDB
// `delete from posts using posts join users`; SQLite has neither.
suite.test("leak suite: delete ... using filters every table", async ({ db, dialect }) => {
  const before = await tenant2Snapshot(db);
  await asT1(async () => {
    const ex = executor(db);
    const byMark = dialect === "postgres"
      ? ex.deleteFrom("posts").using("users").whereRef("users.id", "=", "posts.user_id").where("users.name", "=", MARK)
      : ex.deleteFrom("posts").using("posts").innerJoin("users", "users.id", "posts.user_id")
        .where("users.name", "=", MARK);
    assert.equal((await byMark.executeTakeFirst()).numDeletedRows, 0n);
    const all = dialect === "postgres"
      ? ex.deleteFrom("posts").using("users").whereRef("users.id", "=", "posts.user_id")
      : ex.deleteFrom("posts").using("posts").innerJoin("users", "users.id", "posts.user_id");
    // Only post 1 joins a tenant 1 user (post 2's user is tenant 2's).
    assert.equal((await all.executeTakeFirst()).numDeletedRows, 1n);
  });
  assert.equal(await tenant2Snapshot(db), before);
  assert.deepEqual(plainRows(await db.selectFrom("posts").select("id").orderBy("id").execute()), [{ id: 2 }, {
    id: 3,
  }]);
}, { databases: ["postgres", "mariadb"] });

// `update a, b set ...` and table-qualified SET columns are MySQL/MariaDB
// syntax (PostgreSQL and SQLite name one target and refuse a qualified SET
// column). Kysely 0.28 cannot build MySQL's `update a join b` (its compiler
// refuses joins without FROM), so the comma form is the multi-table UPDATE.
suite.test("leak suite: a multi-table UPDATE filters and checks every target", async (ctx) => {
  const { db } = ctx;
  const before = await tenant2Snapshot(db);
  // deno-lint-ignore no-explicit-any
  const ex = executor(db) as Kysely<any>;
  await asT1(async () => {
    const query = ex.updateTable(["posts as p", "users as u"]).set("p.title", (eb: AnyEB) => eb.ref("u.name"))
      .whereRef("u.id", "=", "p.user_id");
    assertSql(ctx, query, {
      mysql: {
        sql: "update `posts` as `p`, `users` as `u` set `p`.`title` = `u`.`name` where `u`.`id` = `p`.`user_id` " +
          "and `p`.`tenant_id` = ? and `u`.`tenant_id` = ?",
        parameters: [1, 1],
      },
    });
    assert.equal((await query.executeTakeFirst()).numUpdatedRows, 1n);
    for (
      const attempt of [
        () => ex.updateTable(["posts as p", "users as u"]).set("u.tenant_id", 2).whereRef("u.id", "=", "p.user_id"),
        () => ex.updateTable(["posts as p", "users as u"]).set("p.tenant_id", 2).whereRef("u.id", "=", "p.user_id"),
        () => ex.updateTable(["posts", "users"]).set("tenant_id", 2).whereRef("users.id", "=", "posts.user_id"),
        () => ex.updateTable("posts").set("posts.tenant_id", 2),
        () => ex.updateTable("posts as p").set("p.tenant_id", 2),
      ]
    ) {
      const error = await rejection(attempt().execute());
      assert.ok(isRLSPolicyViolation(error), String(error));
    }
  });
  assert.equal(await tenant2Snapshot(db), before);
  const rows = await db.selectFrom("posts").select(["tenant_id", "title"]).orderBy("id").execute();
  assert.deepEqual(plainRows(rows), [
    { tenant_id: 1, title: "ada" },
    { tenant_id: 1, title: "a2" },
    { tenant_id: 2, title: MARK },
  ]);
  const users = await db.selectFrom("users").select("tenant_id").orderBy("id").execute();
  assert.deepEqual(plainRows(users).map((u) => u.tenant_id), [1, 1, 2]);
}, { databases: ["mariadb"] });

suite.test("leak suite: a CTE named after the covered table is refused by SQLite as circular", async ({ db }) => {
  // PostgreSQL and MariaDB read the inner `posts` as the table (the read
  // case "CTE named after the covered table" runs there); SQLite refuses it.
  const before = await tenant2Snapshot(db);
  const error = await asT1(() =>
    rejection(
      executor(db).with("posts", (qb) => qb.selectFrom("posts").select(["id", "body"])).selectFrom("posts")
        .selectAll().execute(),
    )
  );
  assert.match(String(error), /circular reference: posts/);
  assertNoLeak(error, "error");
  assert.equal(await tenant2Snapshot(db), before);
}, { databases: ["sqlite"] });

suite.test("leak suite: a covered table named in another case is covered", async (ctx) => {
  // SQLite reads `"POSTS"` as `posts` (identifiers are case-insensitive), as
  // does MySQL with lower_case_table_names (this MariaDB runs with 0, so the
  // table is unknown there, and on PostgreSQL a quoted name is exact): the
  // filter applies whatever the spelling, and writes are checked.
  const { db, database } = ctx;
  const before = await tenant2Snapshot(db);
  // deno-lint-ignore no-explicit-any
  const ex = executor(db) as Kysely<any>;
  await asT1(async () => {
    const query = ex.selectFrom("POSTS").select("title").orderBy("id");
    assertSql(ctx, query, sqlOf(`select "title" from "POSTS" where "POSTS"."tenant_id" = ? order by "id"`, [1]));
    const aliased = ex.selectFrom("Posts as p").innerJoin("USERS as u", "u.id", "p.user_id").select("p.title");
    assertSql(
      ctx,
      aliased,
      sqlOf(
        `select "p"."title" from "Posts" as "p" inner join "USERS" as "u" on "u"."id" = "p"."user_id" and ` +
          `"u"."tenant_id" = ? where "p"."tenant_id" = ?`,
        [1, 1],
      ),
    );
    const forged = await rejection(
      ex.insertInto("POSTS").values({ tenant_id: 2, user_id: 1, title: "f", body: "f" })
        .execute(),
    );
    assert.ok(isRLSPolicyViolation(forged), String(forged));
    const moved = await rejection(ex.updateTable("Posts").set({ tenant_id: 2 }).execute());
    assert.ok(isRLSPolicyViolation(moved), String(moved));
    if (database === "sqlite") {
      assert.deepEqual(plainRows(await query.execute()), [{ title: "a1" }, { title: "a2" }]);
      assert.deepEqual(plainRows(await aliased.execute()), [{ title: "a1" }]);
      assert.equal((await ex.deleteFrom("POSTS").executeTakeFirst()).numDeletedRows, 2n);
    } else {
      assert.match(String(await rejection(query.execute())), /POSTS/);
    }
  });
  assert.equal(await tenant2Snapshot(db), before);
});

suite.test("leak suite: MERGE into a covered table is refused; a covered source is filtered", async ({ db }) => {
  const before = await tenant2Snapshot(db);
  await asT1(async () => {
    const error = await rejection(
      executor(db).mergeInto("posts as p").using("users as u", "u.id", "p.user_id").whenMatched()
        .thenUpdateSet({ tenant_id: 2 }).execute(),
    );
    assert.ok(isRLSPolicyViolation(error), String(error));
    const merged = await executor(db).mergeInto("tags as t").using("posts as p", "p.id", "t.post_id").whenMatched()
      .thenUpdateSet((eb) => ({ label: eb.ref("p.body") })).executeTakeFirst();
    assert.equal(merged.numChangedRows, 1n);
  });
  assert.equal(await tenant2Snapshot(db), before);
  const labels = await db.selectFrom("tags").select("label").orderBy("id").execute();
  assert.deepEqual(plainRows(labels), [{ label: "one" }, { label: "y" }]);
}, { databases: ["postgres"] });

suite.test("leak suite: REPLACE is refused", async ({ db }) => {
  const before = await tenant2Snapshot(db);
  const error = await asT1(() =>
    rejection(executor(db).replaceInto("posts").values({ id: 3, user_id: 1, title: "r", body: "r" }).execute())
  );
  assert.ok(isRLSPolicyViolation(error), String(error));
  assert.equal(await tenant2Snapshot(db), before);
}, { databases: ["sqlite", "mariadb"] });

suite.test("leak suite: raw SQL is refused in a tenant context, allowed when opted in", async ({ db }) => {
  await asT1(async () => {
    for (
      const attempt of [
        () => sql`select * from posts`.execute(executor(db)),
        () => executor(db).executeQuery(db.selectFrom("posts").selectAll().compile()),
        () => executor(db).selectFrom(sql`posts`.as("p")).selectAll().execute(),
        () => executor(db).transaction().execute((trx) => sql`select * from posts`.execute(trx)),
      ]
    ) {
      const error = await rejection(attempt());
      assert.ok(isRawSqlRefusedError(error), String(error));
    }
    // The explicit opt-ins.
    assert.equal((await sql`select * from posts`.execute(executor(db, { allowRawSql: true }))).rows.length, 3);
    assert.equal((await allowRawSql(() => sql`select * from posts`.execute(executor(db)))).rows.length, 3);
  });
  // Outside any context, raw SQL is refused too.
  assert.ok(isRawSqlRefusedError(await rejection(sql`select 1`.execute(executor(db)))));
});

suite.test("leak suite: no context fails closed with RLSContextError", async ({ db }) => {
  const before = await tenant2Snapshot(db);
  for (
    const attempt of [
      () => executor(db).selectFrom("posts").selectAll().execute(),
      () => executor(db).selectFrom("tags").innerJoin("posts", "posts.id", "tags.post_id").selectAll().execute(),
      () => executor(db).updateTable("posts").set({ title: "x" }).execute(),
      () => executor(db).deleteFrom("posts").execute(),
      () => executor(db).insertInto("posts").values({ tenant_id: 2, user_id: 1, title: "x", body: "x" }).execute(),
    ]
  ) {
    assert.ok(isRLSContextError(await rejection(attempt())));
  }
  // An uncovered table needs no context.
  assert.equal((await executor(db).selectFrom("tags").selectAll().execute()).length, 2);
  assert.equal(await tenant2Snapshot(db), before);
});

suite.test("leak suite: requireContext false fails closed quietly", async ({ db }) => {
  const quiet = createExecutorSync(db, [rlsPlugin({ schema: tenantSchema, requireContext: false })]);
  assert.deepEqual(await quiet.selectFrom("posts").selectAll().execute(), []);
  assert.equal((await quiet.deleteFrom("posts").executeTakeFirst()).numDeletedRows, 0n);
  assert.ok(isRLSPolicyViolation(await rejection(quiet.updateTable("posts").set({ title: "x" }).execute())));
  assert.ok(
    isRLSPolicyViolation(
      await rejection(quiet.insertInto("posts").values({ user_id: 1, title: "x", body: "x" }).execute()),
    ),
  );
});

suite.test("leak suite: a context without a tenant sees and writes nothing", async ({ db }) => {
  const before = await tenant2Snapshot(db);
  await rlsContext.runAsync({ auth: { userId: 9, roles: ["user"] } }, async () => {
    assert.deepEqual(await executor(db).selectFrom("posts").selectAll().execute(), []);
    assert.ok(isRLSPolicyViolation(await rejection(executor(db).updateTable("posts").set({ title: "x" }).execute())));
    assert.equal((await executor(db).deleteFrom("posts").executeTakeFirst()).numDeletedRows, 0n);
    assert.ok(
      isRLSPolicyViolation(
        await rejection(executor(db).insertInto("posts").values({ user_id: 1, title: "x", body: "x" }).execute()),
      ),
    );
  });
  assert.equal(await tenant2Snapshot(db), before);
  assert.equal((await db.selectFrom("posts").select("id").execute()).length, 3);
});

suite.test("leak suite: positive control: the system context and bypass roles see tenant 2", async ({ db }) => {
  const all = await rlsContext.asSystemAsync(() =>
    executor(db).selectFrom("posts").select("body").orderBy("id").execute()
  );
  assert.deepEqual(plainRows(all).map((r) => r.body), ["one", "two", MARK]);
  const admin = await rlsContext.runAsync(
    { auth: { userId: 7, tenantId: 1, roles: ["admin"] } },
    () => executor(db, { bypassRoles: ["admin"] }).selectFrom("users").select("name").orderBy("id").execute(),
  );
  assert.deepEqual(plainRows(admin).map((r) => r.name), ["ada", "bo", MARK]);
  // A role that is not listed bypasses nothing.
  const user = await rlsContext.runAsync(
    { auth: { userId: 7, tenantId: 1, roles: ["admin"] } },
    () => executor(db).selectFrom("users").select("name").orderBy("id").execute(),
  );
  assert.deepEqual(plainRows(user).map((r) => r.name), ["ada", "bo"]);
});

suite.test("leak suite: repository paths as tenant 1", async ({ db }) => {
  const before = await tenant2Snapshot(db);
  const posts = createORM(executor(db)).createRepository({ tableName: "posts", primaryKey: "id" });
  await asT1(async () => {
    assert.equal(await posts.findById(3), undefined);
    assert.deepEqual((await posts.findAll({ orderBy: "id" })).map((p) => p.id), [1, 2]);
    assert.equal(await posts.count(), 2);
    const error = await rejection(posts.update(3, { title: "pwn" }));
    assertNoLeak(error, "error");
    await rejection(posts.delete(3)).catch(() => undefined);
    await posts.transaction(async (trx) => {
      assert.equal(await trx.count(), 2);
      assert.equal(await trx.findById(3), undefined);
    });
  });
  assert.equal(await tenant2Snapshot(db), before);
});

// RLS-15: 1,000 concurrent requests alternating tenants, five queries each
// with await points between them, lone, in transactions and on connection().
suite.test("leak suite: 1,000 concurrent requests never see another tenant (RLS-15)", async ({ db }) => {
  const ex = executor(db);
  let queries = 0;
  let crossTenant = 0;
  const check = (rows: readonly { tenant_id: unknown }[], want: unknown): void => {
    queries++;
    if (rows.length === 0 || rows.some((r) => Number(r.tenant_id) !== want)) crossTenant++;
  };
  const pause = (n: number) => n % 3 === 0 ? Promise.resolve() : new Promise((r) => setTimeout(r, n % 3));
  type Reader = Pick<typeof ex, "selectFrom">;
  const five = async (q: Reader, want: number, i: number) => {
    for (let k = 0; k < 5; k++) {
      await pause(i + k);
      const rows = k % 2 === 0
        ? await q.selectFrom("posts").select("tenant_id").execute()
        : await q.selectFrom("users").select("tenant_id").where("id", "in", q.selectFrom("posts").select("user_id"))
          .execute();
      check(rows, want);
    }
  };
  await Promise.all(Array.from({ length: 1000 }, (_, i) => {
    const ctx = i % 2 === 0 ? T1 : T2;
    const want = ctx.auth.tenantId as number;
    return rlsContext.runAsync(ctx, async () => {
      await pause(i);
      if (i % 3 === 0) await five(ex, want, i);
      else if (i % 3 === 1) await ex.transaction().execute((trx) => five(trx, want, i));
      else await ex.connection().execute((conn) => five(conn, want, i));
    });
  }));
  assert.equal(queries, 5000);
  assert.equal(crossTenant, 0);
});

suite.test("leak suite: raw db is the visible way out (getRawDb)", async ({ db }) => {
  const rows = await getRawDb(executor(db)).selectFrom("posts").selectAll().execute();
  assert.equal(rows.length, 3);
});

// RLS-20: a unique key is a covert channel no row filter can close (the
// database refuses the duplicate whoever owns the other row). What must hold:
// the error tells the caller nothing of the other row beyond its own values.
suite.test("leak suite: a unique-key clash with tenant 2's row reveals none of its data (RLS-20)", async (ctx) => {
  const { db, dialect } = ctx;
  await addIdColumn(db.schema.createTable("codes"), ctx.database)
    .addColumn("tenant_id", "integer", (c) => c.notNull())
    .addColumn("code", "varchar(100)", (c) => c.notNull().unique())
    .addColumn("note", "varchar(100)", (c) => c.notNull())
    .execute();
  // deno-lint-ignore no-explicit-any
  const raw = db as Kysely<any>;
  await raw.insertInto("codes").values({ tenant_id: 2, code: "B-CODE", note: MARK }).execute();
  const schema = defineRLSSchema<DB & { codes: { id: number; tenant_id: number; code: string; note: string } }>({
    ...tenantSchema,
    codes: { policies: [filter("all", (c) => ({ tenant_id: c.auth.tenantId }))] },
  });
  // deno-lint-ignore no-explicit-any
  const ex = createExecutorSync(raw, [rlsPlugin({ schema })]) as Kysely<any>;
  const error = await rlsContext.runAsync(
    T1,
    () => rejection(ex.insertInto("codes").values({ tenant_id: 1, code: "B-CODE", note: "mine" }).execute()),
  );
  const typed = parseDatabaseError(error, dialect);
  assert.ok(isUniqueConstraintError(typed), String(error));
  assertNoLeak({ message: typed.message, fields: { ...typed }, text: String(error) }, "the error");
  // The other tenant's row is untouched and still invisible.
  assert.deepEqual(
    await rlsContext.runAsync(T1, () => ex.selectFrom("codes").selectAll().execute()),
    [],
  );
  assert.equal((await raw.selectFrom("codes").select("note").executeTakeFirstOrThrow()).note, MARK);
});

// Data-modifying CTEs (PostgreSQL; MariaDB and SQLite have none): the write
// inside the WITH is checked and scoped like a top-level one.
suite.test("leak suite: writes inside a CTE are checked and scoped", async ({ db }) => {
  const ex = executor(db);
  const before = await tenant2Snapshot(db);
  await rlsContext.runAsync(T1, async () => {
    const forged = await rejection(
      ex.with(
        "ins",
        (qc) => qc.insertInto("posts").values({ tenant_id: 2, user_id: 1, title: "f", body: "f" }).returning("id"),
      )
        .selectFrom("ins").selectAll().execute(),
    );
    assert.ok(isRLSPolicyViolation(forged), String(forged));
    const moved = await rejection(
      ex.with("upd", (qc) => qc.updateTable("posts").set({ tenant_id: 2 }).where("id", "=", 1).returning("id"))
        .selectFrom("upd").selectAll().execute(),
    );
    assert.ok(isRLSPolicyViolation(moved), String(moved));
    const touched = await ex.with("upd", (qc) => qc.updateTable("posts").set({ title: "z" }).returning("id"))
      .selectFrom("upd").selectAll().execute();
    assert.deepEqual(touched.map((r) => r.id).sort(), [1, 2]);
    const deleted = await ex.with("del", (qc) => qc.deleteFrom("posts").where("id", "=", 3).returning("id"))
      .selectFrom("del").selectAll().execute();
    assert.deepEqual(deleted, []);
  });
  assert.equal(await tenant2Snapshot(db), before);
}, { databases: ["postgres"] });
