import assert from "node:assert/strict";
import type { Generated, KyselyPlugin, QueryId, RootOperationNode } from "kysely";
import { paginate } from "./mod.ts";
import { addIdColumn, assertSql, dbSuite, plainRows } from "../_test/harness.ts";

interface DB {
  users: { id: Generated<number>; name: string; city: string };
  posts: { id: Generated<number>; user_id: number; title: string };
}

const suite = dbSuite<DB>(import.meta, {
  async tables(db, database) {
    await addIdColumn(db.schema.createTable("users"), database)
      .addColumn("name", "varchar(20)", (c) => c.notNull())
      .addColumn("city", "varchar(20)", (c) => c.notNull())
      .execute();
    await addIdColumn(db.schema.createTable("posts"), database)
      .addColumn("user_id", "integer", (c) => c.notNull())
      .addColumn("title", "varchar(20)", (c) => c.notNull())
      .execute();
    await db.insertInto("users").values([
      { name: "ada", city: "london" },
      { name: "bob", city: "paris" },
      { name: "cy", city: "london" },
      { name: "dee", city: "rome" },
      { name: "eve", city: "paris" },
    ]).execute();
    await db.insertInto("posts").values([
      { user_id: 1, title: "a1" },
      { user_id: 1, title: "a2" },
      { user_id: 1, title: "a3" },
      { user_id: 2, title: "b1" },
      { user_id: 4, title: "d1" },
      { user_id: 4, title: "d2" },
    ]).execute();
  },
});

/**
 * Records every query compiled through the executor. (Kysely keeps one queryId
 * per builder chain, so the page query and the count query share theirs.)
 */
function recorder(): KyselyPlugin & { compiled: { node: RootOperationNode; queryId: QueryId }[] } {
  const compiled: { node: RootOperationNode; queryId: QueryId }[] = [];
  return {
    compiled,
    transformQuery({ node, queryId }) {
      compiled.push({ node, queryId });
      return node;
    },
    transformResult({ result }) {
      return Promise.resolve(result);
    },
  };
}

suite.test("paginate() returns a page, its neighbours and the total", async (ctx) => {
  const { db } = ctx;
  const rec = recorder();
  const query = db.withPlugin(rec).selectFrom("users").select(["id", "name"]).orderBy("id");
  const page = await paginate(query, { page: 2, limit: 2, withTotal: true });
  assert.deepEqual(plainRows(page.data), [{ id: 3, name: "cy" }, { id: 4, name: "dee" }]);
  assert.deepEqual(
    { ...page, data: undefined },
    { data: undefined, page: 2, limit: 2, hasNext: true, hasPrev: true, total: 5, totalPages: 3 },
  );
  const rows = rec.compiled.find((e) => e.node.kind === "SelectQueryNode" && e.node.limit !== undefined)!;
  // The recorder runs before paginate()'s own wrapping plugin: it sees the inner query of the count.
  const count = rec.compiled.findLast((e) => e.node.kind === "SelectQueryNode" && e.node.limit === undefined)!;
  const compile = (e: { node: RootOperationNode; queryId: QueryId }) => ({
    compile: () => db.getExecutor().compileQuery(e.node, e.queryId),
  });
  assertSql(ctx, compile(rows), {
    postgres: { sql: 'select "id", "name" from "users" order by "id" limit $1 offset $2', parameters: [3, 2] },
    sqlite: { sql: 'select "id", "name" from "users" order by "id" limit ? offset ?', parameters: [3, 2] },
    mysql: { sql: "select `id`, `name` from `users` order by `id` limit ? offset ?", parameters: [3, 2] },
  });
  assertSql(ctx, compile(count), {
    postgres: { sql: 'select 1 as "one" from "users"', parameters: [] },
    sqlite: { sql: 'select 1 as "one" from "users"', parameters: [] },
    mysql: { sql: "select 1 as `one` from `users`", parameters: [] },
  });
});

suite.test("paginate() leaves the total out unless asked, and is empty past the end", async ({ db }) => {
  const query = db.selectFrom("users").select("id").orderBy("id");
  const last = await paginate(query, { page: 3, limit: 2 });
  assert.deepEqual(plainRows(last.data), [{ id: 5 }]);
  assert.equal(last.hasNext, false);
  assert.ok(!("total" in last) && !("totalPages" in last));
  const past = await paginate(query, { page: 9, limit: 2, withTotal: true });
  assert.deepEqual(
    { ...past, data: plainRows(past.data) },
    { data: [], page: 9, limit: 2, hasNext: false, hasPrev: true, total: 5, totalPages: 3 },
  );
  const first = await paginate(query, { page: 1, limit: 10 });
  assert.deepEqual([first.data.length, first.hasNext, first.hasPrev], [5, false, false]);
});

suite.test("paginate() counts joins, DISTINCT and GROUP BY correctly", async ({ db }) => {
  const joined = db.selectFrom("users").innerJoin("posts", "posts.user_id", "users.id")
    .select(["users.id", "posts.id as post_id", "posts.title"]).orderBy("posts.id");
  const j = await paginate(joined, { page: 1, limit: 4, withTotal: true });
  assert.deepEqual([j.total, j.totalPages, j.data.length, j.hasNext], [6, 2, 4, true]);

  // Two `id` columns in the derived table: MySQL rejects that unless the selection is replaced.
  const twoIds = db.selectFrom("users").innerJoin("posts", "posts.user_id", "users.id")
    .select(["users.id", "posts.id"]).orderBy("posts.id");
  assert.equal((await paginate(twoIds, { page: 1, limit: 1, withTotal: true })).total, 6);

  const distinct = db.selectFrom("users").innerJoin("posts", "posts.user_id", "users.id")
    .select("users.id").distinct().orderBy("users.id");
  const d = await paginate(distinct, { page: 1, limit: 2, withTotal: true });
  assert.deepEqual([plainRows(d.data), d.total, d.totalPages], [[{ id: 1 }, { id: 2 }], 3, 2]);

  const grouped = db.selectFrom("users").select(["city", (eb) => eb.fn.countAll<number>().as("n")])
    .groupBy("city").orderBy("city");
  const g = await paginate(grouped, { page: 2, limit: 2, withTotal: true });
  assert.deepEqual([g.data.map((r) => r.city), g.total, g.hasNext], [["rome"], 3, false]);

  const having = db.selectFrom("posts").select(["user_id", (eb) => eb.fn.countAll<number>().as("n")])
    .groupBy("user_id").having((eb) => eb.fn.countAll(), ">", 1).orderBy("user_id");
  const h = await paginate(having, { page: 1, limit: 5, withTotal: true });
  assert.deepEqual([h.data.map((r) => r.user_id), h.total], [[1, 4], 2]);

  const filtered = db.selectFrom("users").select("id").where("city", "=", "paris").orderBy("id");
  assert.equal((await paginate(filtered, { page: 1, limit: 1, withTotal: true })).total, 2);
});

suite.test("paginate() validates page and limit", async ({ db }) => {
  const query = db.selectFrom("users").select("id");
  await assert.rejects(
    paginate(query, { page: 1, limit: 0 }),
    new RangeError("Cannot paginate: 'limit' must be a positive integer: current value is 0"),
  );
  await assert.rejects(
    paginate(query, { page: 0, limit: 10 }),
    new RangeError("Cannot paginate: 'page' must be a positive integer: current value is 0"),
  );
  await assert.rejects(paginate(query, { page: 1.5, limit: 10 }), RangeError);
  await assert.rejects(paginate(query, { page: 1, limit: Number.NaN }), RangeError);
  await assert.rejects(paginate(query, { page: 2 ** 40, limit: 2 ** 20 }), RangeError);
});
