/** Data integrity of repository writes (issue 14): nothing lost, overwritten, half-written or falsely refused. */
import assert from "node:assert/strict";
import { type CompiledQuery, type Generated, type Kysely, type QueryId, sql } from "kysely";
import { z } from "zod";
import { addIdColumn, dbSuite, rejection, type TestDatabase } from "../_test/harness.ts";
import { isConnectionError, isDatabaseError, isUniqueConstraintError, parseDatabaseError } from "../core/mod.ts";
import { timestampsPlugin } from "../plugins/timestamps/mod.ts";
import type { KyseraPlugin } from "../executor/mod.ts";
import { createORM, isUnfilteredWriteError, isValidationError } from "./mod.ts";

interface DB {
  users: { id: Generated<number>; email: string; name: string | null; age: number | null; status: Generated<string> };
  days: { day: string | Date; note: string };
  many: { id: number; v: number | null };
  stamped: {
    id: Generated<number>;
    a: number;
    b: number;
    c: number;
    created_at: Date | string | null;
    updated_at: Date | string | null;
  };
  wide: Record<`c${number}`, number> & { id: number };
}

const WIDE = 20;
const STAMP_TYPE: Record<TestDatabase, string> = { sqlite: "text", postgres: "timestamptz", mariadb: "datetime(6)" };

const suite = dbSuite<DB>(import.meta, {
  tables: async (db, database) => {
    await addIdColumn(db.schema.createTable("users"), database)
      .addColumn("email", "varchar(255)", (c) => c.notNull().unique())
      .addColumn("name", "varchar(255)")
      .addColumn("age", "integer")
      .addColumn("status", "varchar(20)", (c) => c.notNull().defaultTo("new"))
      .execute();
    await db.schema.createTable("days")
      .addColumn("day", "date", (c) => c.primaryKey())
      .addColumn("note", "varchar(50)", (c) => c.notNull())
      .execute();
    await db.schema.createTable("many")
      .addColumn("id", "integer", (c) => c.primaryKey())
      .addColumn("v", "integer")
      .execute();
    await addIdColumn(db.schema.createTable("stamped"), database)
      .addColumn("a", "integer", (c) => c.notNull())
      .addColumn("b", "integer", (c) => c.notNull())
      .addColumn("c", "integer", (c) => c.notNull())
      // deno-lint-ignore no-explicit-any
      .addColumn("created_at", STAMP_TYPE[database] as any)
      // deno-lint-ignore no-explicit-any
      .addColumn("updated_at", STAMP_TYPE[database] as any)
      .execute();
    let wide = db.schema.createTable("wide").addColumn("id", "integer", (c) => c.primaryKey());
    for (let i = 0; i < WIDE; i++) wide = wide.addColumn(`c${i}`, "integer", (c) => c.notNull());
    await wide.execute();
  },
});

/** Records the SQL of every query `db` sends (not those only compiled). */
function sent<T>(db: Kysely<T>): { db: Kysely<T>; sql: string[] } {
  const out: string[] = [];
  const compiled = new WeakMap<QueryId, CompiledQuery>();
  return {
    db: db.withPlugin({
      transformQuery: ({ node, queryId }) => {
        compiled.set(queryId, db.getExecutor().compileQuery(node, queryId));
        return node;
      },
      transformResult: ({ queryId, result }) => {
        const query = compiled.get(queryId);
        if (query !== undefined) out.push(query.sql);
        return Promise.resolve(result);
      },
    }),
    sql: out,
  };
}

const users = (db: Kysely<DB>) => createORM(db).createRepository({ tableName: "users" });
const partial = z.object({ name: z.string().nullable().optional(), age: z.number().optional() });

suite.test("update() and updateMany() leave out undefined values (a zod partial's absent fields)", async (ctx) => {
  const { db, sql: log } = sent(ctx.db);
  const repo = createORM(db).createRepository({ tableName: "users", schemas: { update: partial } });
  const ada = await repo.create({ email: "ada@x.com", name: "Ada", age: 30 });
  log.length = 0;
  // Nothing left to set: no UPDATE is sent, the current row comes back.
  assert.deepEqual({ ...await repo.update(ada.id, { name: undefined }) }, { ...ada });
  assert.ok(log.every((q) => !/^update/i.test(q)), log.join("\n"));
  const updated = await repo.update(ada.id, { name: undefined, age: 31 });
  assert.equal(updated.name, "Ada");
  assert.equal(updated.age, 31);
  assert.match(log.find((q) => /^update/i.test(q))!, /^update .users. set .age. = (\?|\$1) where/);
  assert.equal(await repo.updateMany({ email: "ada@x.com" }, { name: undefined }), 1);
  assert.equal(await repo.updateMany({ email: "ada@x.com" }, { name: undefined, age: 32 }), 1);
  assert.deepEqual(
    { ...await repo.findById(ada.id) },
    { id: ada.id, email: "ada@x.com", name: "Ada", age: 32, status: "new" },
  );
});

suite.test("upsert() and upsertMany() never overwrite a column the input left out", async ({ db }) => {
  const repo = users(db);
  await repo.createMany([{ email: "ada@x.com", name: "Ada", age: 30 }, { email: "bob@x.com", name: "Bob", age: 40 }]);
  const up = await repo.upsert({ email: "ada@x.com", name: undefined, age: 31 } as never, { conflict: ["email"] });
  assert.equal(up.name, "Ada");
  assert.equal(up.age, 31);
  // Rows giving different columns: each conflict updates only its own row's columns.
  const many = await repo.upsertMany([
    { email: "ada@x.com", age: 32 },
    { email: "bob@x.com", name: "Robert" },
    { email: "cy@x.com", name: "Cy" },
  ], { conflict: ["email"] });
  assert.deepEqual(many.map((r) => [r.email, r.name, r.age]), [
    ["ada@x.com", "Ada", 32],
    ["bob@x.com", "Robert", 40],
    ["cy@x.com", "Cy", null],
  ]);
  // An explicit `update` list does not write a column the row did not give either.
  await repo.upsert({ email: "bob@x.com", age: 41 }, { conflict: ["email"], update: ["name", "age"] });
  assert.deepEqual(
    (await repo.find({ orderBy: "email" })).map((r) => [r.email, r.name, r.age]),
    [["ada@x.com", "Ada", 32], ["bob@x.com", "Robert", 41], ["cy@x.com", "Cy", null]],
  );
});

suite.test("findByIds() and upsertMany() match a key the database returns in another form", async ({ db, dialect }) => {
  const days = createORM(db).createRepository({ tableName: "days", primaryKey: "day" });
  await days.createMany([{ day: "2024-01-01", note: "a" }, { day: "2024-01-02", note: "b" }]);
  // PostgreSQL and MariaDB return a `date` as a Date; the keys are given as text.
  const found = await days.findByIds(["2024-01-02", "2024-01-03", "2024-01-01"]);
  assert.deepEqual(found.map((r) => r.note), ["b", "a"]);
  const stored = await days.upsertMany([{ day: "2024-01-02", note: "B" }, { day: "2024-01-04", note: "d" }]);
  assert.deepEqual(stored.map((r) => r.note), ["B", "d"]);
  assert.equal(await days.count(), 3);
  // A text key in another case: MariaDB's `_ci` collation takes it for the
  // stored row (and updates it); the others store a second row.
  const repo = users(db);
  await repo.create({ email: "ada@x.com", name: "Ada" });
  const rows = await repo.upsertMany([{ email: "ADA@x.com", name: "A2" }, { email: "new@x.com", name: "New" }], {
    conflict: ["email"],
  });
  assert.deepEqual(rows.map((r) => r.name), ["A2", "New"]);
  assert.equal(await repo.count(), dialect === "mysql" ? 2 : 3);
});

suite.test("70,000 ids: findByIds, $in, count, upsertMany, updateMany, deleteMany stay under the parameter limit", async ({ db }) => {
  const repo = createORM(db).createRepository({ tableName: "many" });
  const N = 70_000;
  const ids = Array.from({ length: N }, (_, i) => i + 1);
  const created = await repo.createMany(ids.map((id) => ({ id, v: id })));
  assert.equal(created.length, N);
  assert.equal(await repo.count(), N);
  const found = await repo.findByIds([...ids].reverse());
  assert.equal(found.length, N);
  assert.equal(found[0]!.id, N);
  assert.equal(found[N - 1]!.id, 1);
  assert.equal(await repo.count({ id: { $in: ids } }), N);
  assert.equal(await repo.count({ id: { $nin: ids } }), 0);
  assert.equal((await repo.find({ where: { id: { $in: ids } } })).length, N);
  const upserted = await repo.upsertMany(ids.map((id) => ({ id, v: -id })));
  assert.equal(upserted.length, N);
  assert.deepEqual(upserted.slice(0, 2).map((r) => r.v), [-1, -2]);
  assert.equal(await repo.updateMany({ id: { $in: ids } }, { v: 0 }), N);
  assert.equal(await repo.deleteMany({ id: { $in: ids.slice(0, N - 1) } }), N - 1);
  assert.equal(await repo.count(), 1);
});

suite.test("createMany() counts the columns plugins add when it sizes its statements", async ({ db }) => {
  // 3 given columns fit 21,845 rows in 65,535 parameters (10,922 in SQLite's
  // 32,766); timestamps add two more per row.
  const orm = createORM(db, [timestampsPlugin({ tables: "all", clock: () => new Date("2024-05-01T12:00:00.000Z") })]);
  const repo = orm.createRepository({ tableName: "stamped" });
  const N = 21_000;
  const rows = await repo.createMany(Array.from({ length: N }, (_, i) => ({ a: i, b: i, c: i })));
  assert.equal(rows.length, N);
  assert.equal(await repo.count({ created_at: { $isNotNull: true } }), N);
  assert.deepEqual(rows.slice(-1).map((r) => r.a), [N - 1]);
});

suite.test("createMany(): a column a row leaves out gets its DEFAULT, never NULL", async ({ db }) => {
  const repo = users(db);
  const rows = await repo.createMany([
    { email: "a@x.com", status: "active" },
    { email: "b@x.com" },
    { email: "c@x.com", name: "C" },
  ]);
  assert.deepEqual(rows.map((r) => [r.email, r.status, r.name]), [
    ["a@x.com", "active", null],
    ["b@x.com", "new", null],
    ["c@x.com", "new", "C"],
  ]);
  assert.deepEqual((await repo.find({ orderBy: "email" })).map((r) => r.status), ["active", "new", "new"]);
});

suite.test("a chunked createMany() in the caller's transaction is all or nothing", async ({ db }) => {
  const orm = createORM(db);
  // 21 parameters a row: several statements on every dialect.
  const N = 4_000;
  const row = (id: number) => {
    const r: Record<string, number> = { id };
    for (let i = 0; i < WIDE; i++) r[`c${i}`] = i;
    return r as DB["wide"];
  };
  await orm.transaction(async (trx) => {
    const wide = trx.createRepository({ tableName: "wide" });
    // The last row repeats the first key: the last statement fails.
    const error = await rejection(wide.createMany([...Array.from({ length: N }, (_, i) => row(i + 1)), row(1)]));
    assert.ok(isUniqueConstraintError(error), String(error));
    // The transaction goes on (the failed part was rolled back to its savepoint).
    await wide.create(row(N + 1));
  });
  const wide = orm.createRepository({ tableName: "wide" });
  assert.deepEqual((await wide.findAll()).map((r) => r.id), [N + 1]);
});

suite.test("create() whose stored row fails the output schema writes nothing", async ({ db }) => {
  const orm = createORM(db);
  const strict = orm.createRepository({
    tableName: "users",
    schemas: { output: z.object({ id: z.number(), email: z.string(), name: z.string() }) },
  });
  const error = await rejection(strict.create({ email: "ada@x.com" }));
  assert.ok(isValidationError(error), String(error));
  assert.equal(error.target, "output");
  assert.equal(await users(db).count(), 0);
  // Inside the caller's transaction: rolled back to a savepoint; the caller's work stays.
  await orm.transaction(async (trx) => {
    await trx.createRepository({ tableName: "users" }).create({ email: "kept@x.com" });
    assert.ok(isValidationError(await rejection(strict.withTransaction(trx.executor).create({ email: "b@x.com" }))));
    assert.ok(
      isValidationError(await rejection(strict.withTransaction(trx.executor).createMany([{ email: "c@x.com" }]))),
    );
    assert.ok(
      isValidationError(
        await rejection(strict.withTransaction(trx.executor).upsert({ email: "d@x.com" }, { conflict: ["email"] })),
      ),
    );
  });
  assert.deepEqual((await users(db).findAll()).map((r) => r.email), ["kept@x.com"]);
});

suite.test("deleteMany() and updateMany() refuse a where with no condition; deleteAll() and updateAll() say all", async ({ db }) => {
  const repo = users(db);
  await repo.createMany([{ email: "a@x.com", age: 1 }, { email: "b@x.com", age: 2 }]);
  for (
    const where of [undefined, {}, { id: undefined }, { age: { $eq: undefined } }, { $and: [{ id: undefined }] }, {
      $or: [{ id: undefined }, { age: 1 }],
    }]
  ) {
    const del = await rejection(repo.deleteMany(where as never));
    assert.ok(isUnfilteredWriteError(del), `${JSON.stringify(where)}: ${del}`);
    assert.equal(del.operation, "delete");
    const upd = await rejection(repo.updateMany(where as never, { name: "x" }));
    assert.ok(isUnfilteredWriteError(upd), `${JSON.stringify(where)}: ${upd}`);
  }
  assert.equal(await repo.count({ name: "x" }), 0);
  assert.equal(await repo.count(), 2);
  assert.equal(await repo.deleteMany({ id: undefined, age: 1 }), 1);
  assert.equal(await repo.updateAll({ name: "all" }), 1);
  assert.equal(await repo.deleteAll(), 1);
  assert.equal(await repo.count(), 0);
  // Reads keep their meaning: an $or with an empty branch matches every row.
  await repo.createMany([{ email: "c@x.com", age: 3 }, { email: "d@x.com", age: 4 }]);
  assert.equal(await repo.count({ $or: [{}, { age: 3 }] }), 2);
  assert.equal(await repo.count({ $not: {} }), 0);
  assert.equal(await repo.count({ $and: [{}, { age: 3 }] }), 1);
  // Raw SQL is not involved anywhere above.
  assert.equal(Number((await sql<{ n: number }>`select count(*) as n from users`.execute(db)).rows[0]!.n), 2);
});

suite.test(
  "PostgreSQL: a statement over 65,535 parameters is a DatabaseError, not a retryable ConnectionError",
  async ({ db }) => {
    const ids = Array.from({ length: 70_000 }, (_, i) => i);
    // A builder query the repository does not shape: pg sends the parameter count in 16 bits, the server answers 08P01.
    const error = parseDatabaseError(
      await rejection(db.selectFrom("many").selectAll().where("id", "in", ids).execute()),
      "postgres",
    );
    assert.ok(isDatabaseError(error), String(error));
    assert.equal(error.driverCode, "08P01");
    assert.ok(!isConnectionError(error), String(error));
  },
  { databases: ["postgres"] },
); // the 16-bit parameter count is pg's wire protocol

suite.test("every repository method runs under a plugin that refuses raw SQL", async ({ db }) => {
  const strict: KyseraPlugin = { name: "strict", rawSql: "refuse" };
  const repo = createORM(db, [strict]).createRepository({ tableName: "users" });
  const ada = await repo.create({ email: "ada@x.com", name: "Ada" });
  await repo.createMany([{ email: "b%@x.com" }, { email: "c\\@x.com", name: "C" }]);
  assert.equal((await repo.upsert({ email: "ada@x.com", age: 3 }, { conflict: ["email"] })).age, 3);
  assert.equal(
    (await repo.upsertMany([{ email: "ada@x.com", age: 4 }, { email: "d@x.com" }], { conflict: ["email"] })).length,
    2,
  );
  assert.equal((await repo.find({ where: { email: { $like: "a%" } } })).length, 1);
  assert.equal((await repo.find({ where: { name: { $ilike: "ADA" } } })).length, 1);
  assert.equal(await repo.count({ email: { $contains: "%" } }), 1);
  assert.equal(await repo.count({ email: { $startsWith: "c\\" } }), 1);
  assert.equal(await repo.count({ email: { $endsWith: "@x.com" } }), 4);
  const many = Array.from({ length: 2_000 }, (_, i) => i);
  assert.equal(await repo.count({ id: { $in: many } }), 4);
  assert.equal(await repo.count({ id: { $nin: many } }), 0);
  assert.equal((await repo.update(ada.id, { name: "A" })).name, "A");
  assert.equal(await repo.updateMany({ age: 4 }, { age: 5 }), 1);
  assert.equal((await repo.findByIds([ada.id])).length, 1);
  assert.equal(await repo.exists({ age: 5 }), true);
  assert.equal((await repo.paginate({ page: 1, limit: 2 })).data.length, 2);
  assert.equal((await repo.paginateCursor({ limit: 2 })).data.length, 2);
  assert.equal(await repo.deleteMany({ age: 5 }), 1);
  assert.equal(await repo.deleteAll(), 3);
});
