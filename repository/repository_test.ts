import assert from "node:assert/strict";
import {
  type CompiledQuery,
  DummyDriver,
  type Generated,
  Kysely,
  type KyselyPlugin,
  MssqlAdapter,
  MssqlIntrospector,
  MssqlQueryCompiler,
  type QueryId,
  type RootOperationNode,
} from "kysely";
import { z } from "zod";
import * as v from "valibot";
import { addIdColumn, assertSql, dbSuite, plainRows, rejection } from "../_test/harness.ts";
import { isNotFoundError, isUniqueConstraintError } from "../core/mod.ts";
import type { KyseraPlugin } from "../executor/mod.ts";
import { createORM, isInvalidWhereError, isValidationError } from "./mod.ts";

interface DB {
  users: { id: Generated<number>; email: string; name: string | null; age: number | null };
  memberships: { org_id: number; user_id: number; role: string };
}

const suite = dbSuite<DB>(import.meta, {
  tables: async (db, database) => {
    await addIdColumn(db.schema.createTable("users"), database)
      .addColumn("email", "varchar(255)", (c) => c.notNull().unique())
      .addColumn("name", "varchar(255)")
      .addColumn("age", "integer")
      .execute();
    await db.schema.createTable("memberships")
      .addColumn("org_id", "integer", (c) => c.notNull())
      .addColumn("user_id", "integer", (c) => c.notNull())
      .addColumn("role", "varchar(50)", (c) => c.notNull())
      .addPrimaryKeyConstraint("memberships_pk", ["org_id", "user_id"])
      .execute();
  },
});

/**
 * Records every query a Kysely instance sends, for SQL assertions (a query
 * only compiled, as the repository does to measure a statement, is not sent).
 */
function capture<T>(db: Kysely<T>): { db: Kysely<T>; queries: CompiledQuery[] } {
  const queries: CompiledQuery[] = [];
  const compiled = new WeakMap<QueryId, CompiledQuery>();
  const plugin: KyselyPlugin = {
    transformQuery({ node, queryId }: { node: RootOperationNode; queryId: QueryId }) {
      compiled.set(queryId, db.getExecutor().compileQuery(node, queryId));
      return node;
    },
    transformResult: ({ queryId, result }) => {
      const query = compiled.get(queryId);
      if (query !== undefined) queries.push(query);
      return Promise.resolve(result);
    },
  };
  return { db: db.withPlugin(plugin), queries };
}

const asCompilable = (q: CompiledQuery | undefined) => ({ compile: () => q! });

const users = (db: Kysely<DB>) => createORM(db).createRepository({ tableName: "users", primaryKey: "id" });

suite.test("create() returns the stored row and findById() reads it", async (ctx) => {
  const { db, queries } = capture(ctx.db);
  const repo = users(db);
  const ada = await repo.create({ email: "ada@example.com", name: "Ada" });
  assert.deepEqual({ ...ada }, { id: 1, email: "ada@example.com", name: "Ada", age: null });
  assertSql(ctx, asCompilable(queries[0]), {
    postgres: {
      sql: `insert into "users" ("email", "name") values ($1, $2) returning *`,
      parameters: ["ada@example.com", "Ada"],
    },
    sqlite: {
      sql: `insert into "users" ("email", "name") values (?, ?) returning *`,
      parameters: ["ada@example.com", "Ada"],
    },
    mysql: { sql: "select @@auto_increment_increment as inc, @@innodb_autoinc_lock_mode as mode", parameters: [] },
  });
  assert.deepEqual({ ...(await repo.findById(1))! }, { ...ada });
  assert.equal(await repo.findById(99), undefined);
});

suite.test("create() of a duplicate email is a UniqueConstraintError naming the column", async ({ db }) => {
  const repo = users(db);
  await repo.create({ email: "ada@example.com" });
  const error = await rejection(repo.create({ email: "ada@example.com" }));
  assert.ok(isUniqueConstraintError(error), String(error));
  assert.deepEqual(error.columns, ["email"]);
});

suite.test("update() and delete() of a missing id are NotFoundError; update() returns the row", async ({ db }) => {
  const repo = users(db);
  const ada = await repo.create({ email: "ada@example.com", age: 30 });
  assert.equal((await repo.update(ada.id, { age: 31 })).age, 31);
  assert.equal((await repo.update(ada.id, { age: 31 })).age, 31); // unchanged values still match
  assert.ok(isNotFoundError(await rejection(repo.update(99, { age: 1 }))));
  assert.ok(isNotFoundError(await rejection(repo.delete(99))));
  await repo.delete(ada.id);
  assert.equal(await repo.count(), 0);
});

suite.test("where-DSL operators each match and exclude", async (ctx) => {
  const repo = users(ctx.db);
  await repo.createMany([
    { email: "a%b@x.com", name: "Ann", age: 20 },
    { email: "a_b@x.com", name: "bob", age: 30 },
    { email: "a\\b@x.com", name: null, age: null },
    { email: "axb@y.org", name: "ANNA", age: 40 },
  ]);
  const emails = async (where: Parameters<typeof repo.find>[0]) =>
    (await repo.find({ ...where, orderBy: "id" })).map((u) => u.email);
  assert.deepEqual(await emails({ where: { age: 20 } }), ["a%b@x.com"]);
  assert.deepEqual(await emails({ where: { age: { $eq: 99 } } }), []);
  assert.deepEqual(await emails({ where: { age: { $ne: 20 } } }), ["a_b@x.com", "axb@y.org"]);
  assert.deepEqual(await emails({ where: { age: { $gt: 30 } } }), ["axb@y.org"]);
  assert.deepEqual(await emails({ where: { age: { $gte: 30, $lt: 40 } } }), ["a_b@x.com"]);
  assert.deepEqual(await emails({ where: { age: { $lte: 10 } } }), []);
  assert.deepEqual(await emails({ where: { age: { $in: [20, 40] } } }), ["a%b@x.com", "axb@y.org"]);
  assert.deepEqual(await emails({ where: { age: { $in: [] } } }), []);
  assert.deepEqual(await emails({ where: { age: { $nin: [20, 40] } } }), ["a_b@x.com"]);
  assert.deepEqual(await emails({ where: { age: null } }), ["a\\b@x.com"]);
  assert.deepEqual(await emails({ where: { age: { $isNull: true } } }), ["a\\b@x.com"]);
  assert.equal((await emails({ where: { age: { $isNotNull: true } } })).length, 3);
  assert.deepEqual(await emails({ where: { age: { $between: [25, 40] } } }), ["a_b@x.com", "axb@y.org"]);
  assert.deepEqual(await emails({ where: { age: { $between: [50, 60] } } }), []);
  // LIKE metacharacters in user input match themselves.
  assert.deepEqual(await emails({ where: { email: { $startsWith: "a%b" } } }), ["a%b@x.com"]);
  assert.deepEqual(await emails({ where: { email: { $startsWith: "a_b" } } }), ["a_b@x.com"]);
  assert.deepEqual(await emails({ where: { email: { $contains: "\\" } } }), ["a\\b@x.com"]);
  assert.deepEqual(await emails({ where: { email: { $endsWith: "%" } } }), []);
  assert.deepEqual(await emails({ where: { email: { $endsWith: ".org" } } }), ["axb@y.org"]);
  assert.deepEqual(await emails({ where: { email: { $like: "a_b@%" } } }), [
    "a%b@x.com",
    "a_b@x.com",
    "a\\b@x.com",
    "axb@y.org",
  ]);
  assert.deepEqual(await emails({ where: { email: { $like: "b%" } } }), []);
  assert.deepEqual(await emails({ where: { email: { $like: "a\\_b%" } } }), ["a_b@x.com"]);
  assert.deepEqual(await emails({ where: { name: { $ilike: "ann%" } } }), ["a%b@x.com", "axb@y.org"]);
  assert.deepEqual(await emails({ where: { name: { $ilike: "zed%" } } }), []);
  assert.deepEqual(await emails({ where: { $or: [{ age: 20 }, { name: "bob" }] } }), ["a%b@x.com", "a_b@x.com"]);
  assert.deepEqual(await emails({ where: { $or: [] } }), []);
  assert.deepEqual(await emails({ where: { $and: [{ age: { $gt: 10 } }, { age: { $lt: 25 } }] } }), ["a%b@x.com"]);
  assert.deepEqual(await emails({ where: { $not: { age: { $gte: 30 } }, age: { $isNotNull: true } } }), ["a%b@x.com"]);
  assert.equal(await repo.count({ age: { $gte: 30 } }), 2);
  assert.equal(await repo.exists({ email: "axb@y.org" }), true);
  assert.equal(await repo.exists({ email: "nobody" }), false);
  assert.equal((await repo.findOne({ where: { name: "bob" } }))?.age, 30);

  const { db, queries } = capture(ctx.db);
  await users(db).find({ where: { name: { $ilike: "a%" } } });
  await users(db).exists({ name: "x" });
  const ilike = {
    postgres: { sql: `select * from "users" where "name" ilike $1`, parameters: ["a%"] },
    sqlite: { sql: `select * from "users" where lower("name") like lower(?)`, parameters: ["a%"] },
    mysql: { sql: "select * from `users` where lower(`name`) like lower(?)", parameters: ["a%"] },
  };
  assertSql(ctx, asCompilable(queries[0]), ilike);
  const p = ctx.dialect === "postgres" ? ["$1", "$2"] : ["?", "?"];
  const q = ctx.dialect === "mysql" ? "`" : '"';
  assertSql(ctx, asCompilable(queries[1]), {
    [ctx.dialect]: {
      sql: `select 1 as ${q}one${q} from ${q}users${q} where ${q}name${q} = ${p[0]} limit ${p[1]}`,
      parameters: ["x", 1],
    },
  });
});

suite.test("unknown columns and operators are compile errors and InvalidWhereError", async ({ db }) => {
  const repo = createORM(db).createRepository({ tableName: "users", columns: ["id", "email", "name", "age"] });
  // @ts-expect-error: no such column
  assert.ok(isInvalidWhereError(await rejection(repo.find({ where: { emial: "x" } }))));
  // @ts-expect-error: no such operator
  assert.ok(isInvalidWhereError(await rejection(repo.find({ where: { email: { $regex: "x" } } }))));
  // @ts-expect-error: text operator on a number column
  assert.ok(isInvalidWhereError(await rejection(repo.count({ age: { $like: 1 } }))));
});

suite.test("createMany() inserts 1,000 rows in one statement", async (ctx) => {
  const { db, queries } = capture(ctx.db);
  const repo = users(db);
  const rows = await repo.createMany(Array.from({ length: 1000 }, (_, i) => ({ email: `u${i}@x.com`, age: i })));
  assert.equal(rows.length, 1000);
  assert.deepEqual(rows.map((r) => r.age), Array.from({ length: 1000 }, (_, i) => i));
  assert.equal(queries.filter((q) => /^insert/i.test(q.sql)).length, 1);
  assert.equal(await repo.count(), 1000);
  assert.equal(await repo.updateMany({ age: { $lt: 10 } }, { name: "young" }), 10);
  assert.equal(await repo.deleteMany({ name: "young" }), 10);
  assert.deepEqual((await repo.findByIds([rows[20]!.id, rows[15]!.id, 5])).map((r) => r.age), [20, 15]);
});

suite.test("upsert() inserts then updates; SQL per dialect", async (ctx) => {
  const { db, queries } = capture(ctx.db);
  const repo = users(db);
  const first = await repo.upsert({ email: "ada@example.com", name: "Ada" }, { conflict: ["email"] });
  const second = await repo.upsert({ email: "ada@example.com", name: "Ada L." }, { conflict: ["email"] });
  assert.equal(second.id, first.id);
  assert.equal(second.name, "Ada L.");
  assert.equal(await repo.count(), 1);
  const insert = queries.find((q) => /^insert/i.test(q.sql));
  assertSql(ctx, asCompilable(insert), {
    postgres: {
      sql:
        `insert into "users" ("email", "name") values ($1, $2) on conflict ("email") do update set "name" = "excluded"."name" returning *`,
      parameters: ["ada@example.com", "Ada"],
    },
    sqlite: {
      sql:
        `insert into "users" ("email", "name") values (?, ?) on conflict ("email") do update set "name" = "excluded"."name" returning *`,
      parameters: ["ada@example.com", "Ada"],
    },
    mysql: {
      sql: "insert into `users` (`email`, `name`) values (?, ?) on duplicate key update `name` = values(`name`)",
      parameters: ["ada@example.com", "Ada"],
    },
  });
  const many = await repo.upsertMany([{ email: "b@x.com", name: "B" }, { email: "ada@example.com", name: "A" }], {
    conflict: ["email"],
  });
  assert.deepEqual(many.map((r) => [r.email, r.name]), [["b@x.com", "B"], ["ada@example.com", "A"]]);
});

suite.test("concurrent upsert of one key from 20 connections leaves one row", async ({ db, connect }) => {
  await users(db).create({ email: "seed@x.com" });
  const results = await Promise.all(
    Array.from(
      { length: 20 },
      (_, i) => users(connect()).upsert({ email: "same@x.com", age: i }, { conflict: ["email"] }),
    ),
  );
  assert.equal(new Set(results.map((r) => r.id)).size, 1);
  assert.equal(await users(db).count({ email: "same@x.com" }), 1);
});

suite.test("composite primary keys", async ({ db }) => {
  const repo = createORM(db).createRepository({ tableName: "memberships", primaryKey: ["org_id", "user_id"] });
  await repo.createMany([{ org_id: 1, user_id: 1, role: "admin" }, { org_id: 1, user_id: 2, role: "member" }]);
  assert.equal((await repo.findById({ org_id: 1, user_id: 2 }))?.role, "member");
  assert.equal((await repo.update({ org_id: 1, user_id: 2 }, { role: "owner" })).role, "owner");
  const up = await repo.upsert({ org_id: 1, user_id: 1, role: "guest" });
  assert.equal(up.role, "guest");
  assert.deepEqual((await repo.findByIds([{ org_id: 1, user_id: 2 }, { org_id: 1, user_id: 1 }])).map((r) => r.role), [
    "owner",
    "guest",
  ]);
  await repo.delete({ org_id: 1, user_id: 1 });
  assert.ok(isNotFoundError(await rejection(repo.delete({ org_id: 1, user_id: 1 }))));
  const page = await repo.paginateCursor({ limit: 1 });
  assert.deepEqual(plainRows(page.data), [{ org_id: 1, user_id: 2, role: "owner" }]);
});

suite.test("validation with zod and valibot; output schema and mapRow", async ({ db }) => {
  const orm = createORM(db);
  const zodUsers = orm.createRepository({
    tableName: "users",
    schemas: { create: z.object({ email: z.email(), age: z.number().int().optional() }) },
  });
  const error = await rejection(zodUsers.create({ email: "nope" }));
  assert.ok(isValidationError(error));
  assert.deepEqual(error.issues.map((i) => i.path), [["email"]]);
  const valibotUsers = orm.createRepository({
    tableName: "users",
    schemas: { update: v.object({ age: v.pipe(v.number(), v.minValue(0)) }) },
    mapRow: (row) => ({ id: row.id, label: row.email.toUpperCase() }),
  });
  const ada = await zodUsers.create({ email: "ada@x.com" });
  assert.ok(isValidationError(await rejection(valibotUsers.update(ada.id, { age: -1 }))));
  const mapped: { id: number; label: string } = await valibotUsers.update(ada.id, { age: 3 });
  assert.deepEqual(mapped, { id: ada.id, label: "ADA@X.COM" });
  assert.equal(await zodUsers.count(), 1);
});

suite.test("paginate() and paginateCursor() return core's shapes", async ({ db }) => {
  const repo = users(db);
  await repo.createMany([1, 2, 3, 4, 5].map((i) => ({ email: `${i}@x.com`, age: i })));
  const page = await repo.paginate({ page: 2, limit: 2, withTotal: true, where: { age: { $gte: 1 } } });
  assert.deepEqual(page.data.map((r) => r.age), [3, 4]);
  assert.deepEqual({ ...page, data: [] }, {
    data: [],
    page: 2,
    limit: 2,
    hasNext: true,
    hasPrev: true,
    total: 5,
    totalPages: 3,
  });
  const first = await repo.paginateCursor({ limit: 2, orderBy: [{ column: "age", direction: "desc" }] });
  assert.deepEqual(first.data.map((r) => r.age), [5, 4]);
  const second = await repo.paginateCursor({
    limit: 2,
    orderBy: [{ column: "age", direction: "desc" }],
    after: first.nextCursor!,
  });
  assert.deepEqual(second.data.map((r) => r.age), [3, 2]);
  assert.deepEqual(Object.keys(second).sort(), ["data", "hasNext", "hasPrev", "nextCursor", "prevCursor"]);
});

const stamp = {
  name: "stamp",
  extendRepository: (repository: object) => ({
    tableOf: () => (repository as { tableName?: string }).tableName ?? "factory",
    countRaw: (): Promise<number> =>
      (repository as { executor: Kysely<DB> }).executor.selectFrom("users").selectAll().execute().then((r) => r.length),
  }),
  scopeRows: (ref, eb) => ref.table === "users" ? eb(ref.column("age"), "is not", null) : undefined,
} satisfies KyseraPlugin;

suite.test("transactions keep plugins and extension methods; nested rollback keeps outer work", async ({ db }) => {
  const orm = createORM(db, [stamp]);
  const repo = orm.createRepository({ tableName: "users" });
  assert.equal(repo.tableOf(), "users");
  await db.insertInto("users").values({ email: "hidden@x.com" }).execute(); // age null: scoped out
  await repo.transaction(async (trx) => {
    assert.equal(trx.tableOf(), "users");
    await trx.create({ email: "outer@x.com", age: 1 });
    await rejection(trx.transaction(async (inner) => {
      await inner.create({ email: "inner@x.com", age: 2 });
      throw new Error("roll back the savepoint");
    }));
    assert.equal(await trx.countRaw(), 1); // plugin scope applies inside the transaction
  });
  assert.deepEqual((await repo.findAll()).map((r) => r.email), ["outer@x.com"]);
  await orm.executor.transaction().execute(async (trx) => {
    const bound = repo.withTransaction(trx);
    assert.equal(bound.tableOf(), "users");
    assert.equal(await bound.count(), 1);
  });
  await orm.transaction(async (trxOrm) => {
    const r = trxOrm.createRepository({ tableName: "users" });
    assert.equal(await r.countRaw(), 1);
    const f = trxOrm.createRepository((executor) => ({
      one: () => executor.selectFrom("users").selectAll().execute(),
    }));
    assert.equal(f.tableOf(), "factory");
    assert.equal((await f.one()).length, 1);
  });
  assert.throws(() => repo.withTransaction(db), TypeError);
});

Deno.test("upsert() on MSSQL compiles to MERGE", async () => {
  const queries: CompiledQuery[] = [];
  const base = new Kysely<DB>({
    dialect: {
      createAdapter: () => new MssqlAdapter(),
      createDriver: () => new DummyDriver(),
      createIntrospector: (k) => new MssqlIntrospector(k),
      createQueryCompiler: () => new MssqlQueryCompiler(),
    },
  });
  const db = base.withPlugin({
    transformQuery({ node, queryId }) {
      queries.push(base.getExecutor().compileQuery(node, queryId));
      return node;
    },
    transformResult: () => Promise.resolve({ rows: [{ id: 1, email: "a@x.com", name: "A", age: null }] }),
  });
  const row = await users(db).upsert({ email: "a@x.com", name: "A" }, { conflict: ["email"] });
  assert.equal(row.id, 1);
  assert.equal(
    queries[0]?.sql,
    `merge into "users" as "target" using (values (@1, @2)) as source("email", "name") on "target"."email" = "source"."email" when matched then update set "name" = "source"."name" when not matched then insert ("email", "name") values ("source"."email", "source"."name") output "inserted".*;`,
  );
  assert.deepEqual(queries[0]?.parameters, ["a@x.com", "A"]);
});
