import assert from "node:assert/strict";
import { type Generated, sql } from "kysely";
import { addIdColumn, assertSql, dbSuite, plainRows } from "./harness.ts";

interface DB {
  notes: { id: Generated<number>; body: string };
}

const suite = dbSuite<DB>(import.meta, {
  async tables(db, database) {
    await addIdColumn(db.schema.createTable("notes"), database)
      .addColumn("body", "varchar(100)", (c) => c.notNull()).execute();
  },
});

for (const round of [1, 2]) {
  suite.test(`harness gives each test fresh declared tables (round ${round})`, async (ctx) => {
    const before = await ctx.db.selectFrom("notes").select("body").execute();
    assert.deepEqual(before, [], "no rows left by an earlier test");
    await ctx.db.insertInto("notes").values({ body: `round ${round}` }).execute();
    const after = await ctx.db.selectFrom("notes").select(["id", "body"]).execute();
    assert.deepEqual(plainRows(after), [{ id: 1, body: `round ${round}` }], "auto-increment ids start at 1");
  });
}

suite.test("harness isolates each test file in its own schema or database", async (ctx) => {
  const where = {
    postgres: sql<{ name: string }>`SELECT current_schema() AS name`,
    mariadb: sql<{ name: string }>`SELECT DATABASE() AS name`,
    sqlite: sql<{ name: string }>`SELECT file AS name FROM pragma_database_list WHERE name = 'main'`,
  }[ctx.database];
  const { rows } = await where.execute(ctx.db);
  assert.match(rows[0]?.name ?? "", /k__test_harness_test_\d+/);
  // A second connection sees the same isolated tables.
  const other = ctx.connect();
  await ctx.db.insertInto("notes").values({ body: "shared" }).execute();
  const seen = await other.selectFrom("notes").select("body").execute();
  assert.deepEqual(plainRows(seen), [{ body: "shared" }]);
});

suite.test("assertSql() checks the SQL and parameters of the test's dialect", (ctx) => {
  const query = ctx.db.selectFrom("notes").select("body").where("id", "=", 7);
  assertSql(ctx, query, {
    postgres: { sql: `select "body" from "notes" where "id" = $1`, parameters: [7] },
    mysql: { sql: "select `body` from `notes` where `id` = ?", parameters: [7] },
    sqlite: { sql: `select "body" from "notes" where "id" = ?`, parameters: [7] },
  });
  assert.throws(() =>
    assertSql(ctx, query, {
      postgres: { sql: `select "body" from "notes"`, parameters: [] },
      mysql: { sql: "select `body` from `notes`", parameters: [] },
      sqlite: { sql: `select "body" from "notes"`, parameters: [] },
    }), assert.AssertionError);
  return Promise.resolve();
});
