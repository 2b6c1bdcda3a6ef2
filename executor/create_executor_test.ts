import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { CompiledQuery, type Kysely, Kysely as KyselyClass, type KyselyPlugin, sql, SqliteDialect } from "kysely";
import { assertSql, dbSuite, plainRows, rejection, rollbackOpen } from "../_test/harness.ts";
import type { Executor } from "../core/mod.ts";
import { wrapSyncSqlite } from "../dialects/mod.ts";
import {
  allowRawSql,
  createExecutor,
  createExecutorSync,
  destroyExecutor,
  getPlugins,
  getRawDb,
  isKyseraExecutor,
  isPluginError,
  isPluginValidationError,
  isRawSqlRefusedError,
  type KyseraPlugin,
  orderPlugins,
  PluginContext,
  PluginLifecycleError,
  type PluginValidationReason,
} from "./mod.ts";
import { type DB, sqlOf, tables, tenantScope } from "./_test_helpers.ts";

const suite = dbSuite<DB>(import.meta, { tables });

function memoryDb(): Kysely<DB> {
  return new KyselyClass<DB>({
    dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }),
  });
}

const SCOPED = sqlOf('select "name" from "users" where "users"."tenant_id" = ? order by "name"', [1]);

async function names(db: Executor<DB>): Promise<string[]> {
  return (await db.selectFrom("users").select("name").orderBy("name").execute()).map((r) => r.name);
}

suite.test("the scope applies on every entry point", async (ctx) => {
  const executor = createExecutorSync(ctx.db, [tenantScope]);
  assertSql(ctx, executor.selectFrom("users").select("name").orderBy("name"), SCOPED);
  assert.deepEqual(await names(executor), ["ada", "cy"]);
  assert.deepEqual(await executor.transaction().execute((trx) => names(trx)), ["ada", "cy"]);
  assert.deepEqual(
    await executor.transaction().setIsolationLevel("serializable").execute(async (trx) => {
      assertSql(ctx, trx.selectFrom("users").select("name").orderBy("name"), SCOPED);
      return await names(trx);
    }),
    ["ada", "cy"],
  );
  const trx = await executor.startTransaction().setIsolationLevel("read committed").execute();
  try {
    const sp = await trx.savepoint("sp1").execute();
    assert.deepEqual(await names(sp), ["ada", "cy"]);
    await sp.updateTable("users").set({ name: "zed" }).execute();
    assert.deepEqual(await names(sp), ["zed", "zed"]);
    await sp.rollbackToSavepoint("sp1").execute();
    assert.deepEqual(await names(trx), ["ada", "cy"]);
    await trx.commit().execute();
  } finally {
    await rollbackOpen(trx);
  }
  assert.deepEqual(await executor.connection().execute((conn) => names(conn)), ["ada", "cy"]);
  const seen: string[] = [];
  const recorder: KyselyPlugin = {
    transformQuery: (args) => (seen.push(args.node.kind), args.node),
    transformResult: (args) => Promise.resolve(args.result),
  };
  assert.deepEqual(await names(executor.withPlugin(recorder)), ["ada", "cy"]);
  assert.deepEqual(seen, ["SelectQueryNode"]);
  assert.deepEqual(await names(executor.withoutPlugins()), ["ada", "cy"]);
  assert.deepEqual(await names(executor.withTables<{ extra: { id: number } }>() as unknown as Kysely<DB>), [
    "ada",
    "cy",
  ]);
  // a DAL-style function receiving the transaction
  assert.deepEqual(await executor.transaction().execute((t) => names(t.withPlugin(recorder))), ["ada", "cy"]);
  assert.deepEqual(await names(getRawDb(executor)), ["ada", "bob", "cy"]);
  assert.ok(isKyseraExecutor(executor));
  assert.ok(!isKyseraExecutor(ctx.db), "the wrapped Kysely stays plain");
  await executor.transaction().execute((t) => Promise.resolve(assert.ok(isKyseraExecutor(t))));
  assert.ok(!isKyseraExecutor(ctx.db), "the wrapped Kysely stays plain");
});

suite.test("the scope applies under withSchema", async (ctx) => {
  const schema = `kysera_ex_${Deno.pid}`;
  await sql`create schema if not exists ${sql.id(schema)}`.execute(ctx.db);
  try {
    await ctx.db.withSchema(schema).schema.createTable("users").addColumn("tenant_id", "integer")
      .addColumn("name", "text").execute();
    await ctx.db.withSchema(schema).insertInto("users").values([{ tenant_id: 1, name: "s1" }, {
      tenant_id: 2,
      name: "s2",
    }]).execute();
    const executor = createExecutorSync(ctx.db, [tenantScope]).withSchema(schema);
    const query = executor.selectFrom("users").select("name");
    assertSql(ctx, query, {
      postgres: {
        sql: `select "name" from "${schema}"."users" where "${schema}"."users"."tenant_id" = $1`,
        parameters: [1],
      },
    });
    assert.deepEqual(plainRows(await query.execute()), [{ name: "s1" }]);
    // Under a RIGHT join a scoped table becomes a derived table, which an
    // unaliased schema-qualified table cannot be: refused, not mangled.
    const unaliased = executor.selectFrom("users").rightJoin("users as other", "other.name", "users.name")
      .select("other.name");
    const refused = await rejection(unaliased.execute());
    assert.ok(isPluginError(refused), String(refused));
    assert.match(String((refused as Error).cause), /needs an alias/);
    const aliased = await executor.selectFrom("users as u").rightJoin("users as other", "other.name", "u.name")
      .select("other.name").execute();
    assert.deepEqual(plainRows(aliased), [{ name: "s1" }]);
  } finally {
    await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(ctx.db);
  }
}, { databases: ["postgres"] }); // a schema other than the search path is a PostgreSQL test

suite.test("fn, dynamic and schema work on the executor", async (ctx) => {
  const executor = createExecutorSync(ctx.db, [tenantScope]);
  const row = await executor.selectFrom("posts").select((eb) => eb.fn.countAll<number>().as("n"))
    .executeTakeFirstOrThrow();
  assert.equal(Number(row.n), 2);
  const dyn = await executor.selectFrom("posts").select(executor.dynamic.ref<"title">("title")).orderBy("title")
    .execute();
  assert.deepEqual(plainRows(dyn), [{ title: "a1" }, { title: "x" }]);
  await executor.schema.createTable("extra").addColumn("id", "integer").execute();
  await executor.schema.dropTable("extra").execute();
});

suite.test("interceptQuery sees each statement and a throwing one sends no SQL", async (ctx) => {
  const seen: string[] = [];
  const executor = createExecutorSync(ctx.db, [{
    name: "probe",
    interceptQuery(qb, context) {
      seen.push(`${context.operation}:${context.table}:${context.alias}`);
      if (context.operation === "insert") throw new Error("no inserts");
      return qb;
    },
  }]);
  await executor.selectFrom("users as u").select("u.id").execute();
  await executor.transaction().execute((trx) => trx.deleteFrom("audit").execute());
  const error = await rejection(executor.insertInto("audit").values({ note: "n" }).execute());
  assert.ok(isPluginError(error));
  assert.equal(error.plugin, "probe");
  assert.equal(error.operation, "insert");
  assert.equal(error.table, "audit");
  assert.equal((error.cause as Error).message, "no inserts");
  assert.equal(error.message, "Plugin 'probe' failed in interceptQuery on insert of 'audit': no inserts");
  assert.deepEqual(seen, ["select:users:u", "delete:audit:undefined", "insert:audit:undefined"]);
  assert.equal((await ctx.db.selectFrom("audit").selectAll().execute()).length, 0);
});

suite.test("raw SQL is refused by a refusing plugin unless opted in", async (ctx) => {
  const executor = createExecutorSync(ctx.db, [{ ...tenantScope, rawSql: "refuse" }]);
  const raw = sql<{ n: number }>`select count(*) as n from users`;
  assert.ok(isRawSqlRefusedError(await rejection(raw.execute(executor))));
  assert.ok(isRawSqlRefusedError(await rejection(executor.executeQuery(CompiledQuery.raw("select 1")))));
  assert.ok(
    isRawSqlRefusedError(
      await rejection(executor.selectFrom(sql<{ id: number }>`(select id from users)`.as("t")).selectAll().execute()),
    ),
  );
  const rows = await allowRawSql(() => raw.execute(executor));
  assert.equal(Number(rows.rows[0]?.n), 3);
  // queries compiled by the executor are not "precompiled elsewhere"
  const compiled = executor.selectFrom("users").select("name").orderBy("name").compile();
  assert.deepEqual(plainRows((await executor.executeQuery(compiled)).rows), [{ name: "ada" }, { name: "cy" }]);
});

suite.test("onWrite sets columns on insert, multi-row insert, update and upsert, and can reject", async (ctx) => {
  const stamp: KyseraPlugin = {
    name: "stamp",
    onWrite(write) {
      if (write.table !== "posts") return undefined;
      if (write.rows.some((r) => r.tenant_id === 2)) throw new Error("tenant 2 is not yours");
      return write.kind === "set" || write.kind === "upsert-set"
        ? { set: { tenant_id: 1 } }
        : { set: { tenant_id: 1 } };
    },
  };
  const executor = createExecutorSync(ctx.db, [stamp]);
  // deno-lint-ignore no-explicit-any
  const loose = executor as Kysely<any>;
  await loose.insertInto("posts").values({ user_id: 1, title: "n1" }).execute();
  await loose.insertInto("posts").values([{ user_id: 1, title: "n2" }, { user_id: 3, title: "n3" }]).execute();
  const insertUpsert = ctx.dialect === "mysql"
    ? loose.insertInto("posts").values({ user_id: 1, title: "n1" }).onDuplicateKeyUpdate({ user_id: 3 })
    : loose.insertInto("posts").values({ user_id: 1, title: "n1" }).onConflict((oc) =>
      oc.column("title").doUpdateSet({ user_id: 3 })
    );
  await insertUpsert.execute();
  await executor.updateTable("posts").set({ user_id: 2 }).where("title", "=", "b1").execute();
  const error = await rejection(
    executor.insertInto("posts").values({ tenant_id: 2, user_id: 1, title: "bad" }).execute(),
  );
  assert.ok(isPluginError(error) && error.hook === "onWrite");
  const rows = await ctx.db.selectFrom("posts").select(["title", "tenant_id", "user_id"]).orderBy("title").execute();
  assert.deepEqual(plainRows(rows), [
    { title: "a1", tenant_id: 1, user_id: 1 },
    { title: "b1", tenant_id: 1, user_id: 2 },
    { title: "n1", tenant_id: 1, user_id: 3 },
    { title: "n2", tenant_id: 1, user_id: 1 },
    { title: "n3", tenant_id: 1, user_id: 3 },
    { title: "x", tenant_id: 1, user_id: 2 },
    { title: "y", tenant_id: 2, user_id: 1 },
  ]);
});

suite.test("aroundWrite runs on the write's transaction and a rollback leaves no audit row", async (ctx) => {
  const audit: KyseraPlugin = {
    name: "audit",
    async aroundWrite(execution, next) {
      const before = await execution.rawDb.selectFrom("posts").select("id").execute();
      const result = await next();
      await execution.rawDb.insertInto("audit").values({
        note: `${execution.operation} ${execution.table} ${before.length}->${result.numAffectedRows}`,
      }).execute();
      return result;
    },
  };
  const executor = createExecutorSync(ctx.db, [audit]);
  await executor.deleteFrom("posts").where("title", "=", "y").execute();
  await rejection(
    executor.transaction().execute(async (trx) => {
      await trx.deleteFrom("posts").where("title", "=", "x").execute();
      throw new Error("roll back");
    }),
  );
  const notes = await ctx.db.selectFrom("audit").select("note").execute();
  assert.deepEqual(plainRows(notes), [{ note: "delete posts 4->1" }]);
  assert.equal((await ctx.db.selectFrom("posts").selectAll().execute()).length, 3);
});

suite.test("aroundWrite next(query) runs the replacement query, seen by later plugins", async (ctx) => {
  const seen: string[] = [];
  const replacing: KyseraPlugin = {
    name: "replacing",
    priority: 1,
    aroundWrite(execution, next) {
      const node = execution.query.query;
      if (node.kind !== "DeleteQueryNode") return next();
      const narrowed = execution.rawDb.deleteFrom("posts").where("title", "=", "y").compile();
      return next(narrowed);
    },
  };
  const observer: KyseraPlugin = {
    name: "observer",
    aroundWrite(execution, next) {
      seen.push(execution.query.sql);
      return next();
    },
  };
  const executor = createExecutorSync(ctx.db, [observer, replacing]);
  const result = await executor.deleteFrom("posts").execute();
  assert.equal(result[0]?.numDeletedRows, 1n);
  assert.equal(seen.length, 1);
  assert.match(seen[0]!, /where .title. = /);
  assert.equal((await ctx.db.selectFrom("posts").selectAll().execute()).length, 3);
});

suite.test("a plugin context switches a scope off for one call", async (ctx) => {
  const withDeleted = new PluginContext<boolean>("withDeleted");
  const executor = createExecutorSync(ctx.db, [{
    name: "tenant",
    context: withDeleted,
    scopeRows: (ref, eb) =>
      ref.table === "users" && ref.context !== true ? eb(ref.column("tenant_id"), "=", 1) : undefined,
  }]);
  const [scoped, all] = await Promise.all([names(executor), withDeleted.run(true, () => names(executor))]);
  assert.deepEqual(scoped, ["ada", "cy"]);
  assert.deepEqual(all, ["ada", "bob", "cy"]);
});

Deno.test("orderPlugins() rejects each invalid plugin list with a typed reason", () => {
  const cases: [KyseraPlugin[], PluginValidationReason, string][] = [
    [[{ name: "a" }, { name: "a" }], "duplicate-name", "Cannot register plugins: two plugins are named 'a'"],
    [
      [{ name: "a", dependencies: ["b"] }],
      "missing-dependency",
      "Cannot register plugin 'a': it depends on 'b', which is not registered",
    ],
    [
      [{ name: "a", conflictsWith: ["b"] }, { name: "b" }],
      "conflict",
      "Cannot register plugin 'a': it conflicts with 'b'",
    ],
    [
      [{ name: "a", dependencies: ["b"] }, { name: "b", dependencies: ["c"] }, { name: "c", dependencies: ["a"] }],
      "dependency-cycle",
      "Cannot register plugins: dependencies form a cycle: a -> b -> c -> a",
    ],
  ];
  for (const [plugins, reason, message] of cases) {
    const error = (() => {
      try {
        orderPlugins(plugins);
      } catch (e) {
        return e;
      }
    })();
    assert.ok(isPluginValidationError(error));
    assert.equal(error.reason, reason);
    assert.equal(error.message, message);
  }
});

Deno.test("orderPlugins() puts dependencies first, then higher priority, then name", () => {
  const order = orderPlugins([
    { name: "d" },
    { name: "c", priority: 5, dependencies: ["e"] },
    { name: "b" },
    { name: "e", priority: -1 },
    { name: "a", priority: 5 },
  ]).map((p) => p.name);
  assert.deepEqual(order, ["a", "b", "d", "e", "c"]);
});

Deno.test("createExecutor() runs onInit in order; destroyExecutor() runs onDestroy in reverse and aggregates errors", async () => {
  const log: string[] = [];
  const plugin = (name: string, fail = false): KyseraPlugin => ({
    name,
    onInit: () => void log.push(`init ${name}`),
    onDestroy: () => {
      log.push(`destroy ${name}`);
      if (fail) throw new Error(`${name} broke`);
    },
  });
  const executor = await createExecutor(memoryDb(), [plugin("b", true), plugin("a", true), plugin("c")]);
  assert.deepEqual(getPlugins(executor).map((p) => p.name), ["a", "b", "c"]);
  const error = await rejection(destroyExecutor(executor));
  assert.ok(error instanceof PluginLifecycleError);
  assert.equal(error.errors.length, 2);
  assert.deepEqual(log, ["init a", "init b", "init c", "destroy c", "destroy b", "destroy a"]);
  assert.throws(() => createExecutorSync(memoryDb(), [plugin("x")]), TypeError);
});

Deno.test("createExecutor() undoes the plugins already initialised when an onInit fails", async () => {
  const log: string[] = [];
  const db = memoryDb();
  const error = await rejection(createExecutor(db, [
    { name: "a", onInit: () => void log.push("init a"), onDestroy: () => void log.push("destroy a") },
    { name: "b", onInit: () => Promise.reject(new Error("no")) },
  ]));
  assert.ok(isPluginError(error) && error.hook === "onInit" && error.plugin === "b");
  assert.deepEqual(log, ["init a", "destroy a"]);
  await db.destroy();
});

suite.test("plugin context stays with its call across 200 concurrent transactions (EX-09)", async (ctx) => {
  const tenant = new PluginContext<number>("tenant");
  const seen: number[] = [];
  const byContext: KyseraPlugin<number> = {
    name: "tenant-by-context",
    context: tenant,
    scopeRows: (ref, eb) => {
      if (ref.table !== "users") return undefined;
      seen.push(ref.context ?? -1);
      // No context: fail closed.
      return eb(ref.column("tenant_id"), "=", ref.context ?? -1);
    },
  };
  const executor = createExecutorSync(ctx.db, [byContext as KyseraPlugin]);
  let crossed = 0;
  let queries = 0;
  await Promise.all(Array.from({ length: 200 }, (_, i) => {
    const mine = (i % 2) + 1;
    return tenant.run(mine, () =>
      executor.transaction().execute(async (trx) => {
        for (let q = 0; q < 5; q++) {
          const rows = await trx.selectFrom("users").select("tenant_id").execute();
          queries++;
          if (rows.length === 0 || rows.some((r) => r.tenant_id !== mine)) crossed++;
          // Interleave with the other calls between queries.
          await new Promise<void>((resolve) => queueMicrotask(resolve));
        }
      }));
  }));
  assert.equal(queries, 1000);
  assert.equal(crossed, 0, "a call saw another call's tenant");
  assert.equal(seen.length, 1000);
  assert.deepEqual(await executor.selectFrom("users").select("name").execute(), [], "no context sees nothing");
});

suite.test("stream() and transformResult pass through the executor", async (ctx) => {
  const calls: string[] = [];
  const upper: KyseraPlugin = {
    name: "upper",
    transformResult: ({ result }) => {
      calls.push("transformResult");
      return Promise.resolve({
        ...result,
        rows: result.rows.map((row) => ({ ...row, name: String(row.name).toUpperCase() })),
      });
    },
  };
  const executor = createExecutorSync(ctx.db, [tenantScope, upper]);
  const streamed: string[] = [];
  for await (const row of executor.selectFrom("users").select("name").orderBy("name").stream(1)) {
    streamed.push(row.name);
  }
  assert.deepEqual(streamed, ["ADA", "CY"], "scoped and transformed rows, one chunk at a time");
  assert.ok(calls.length >= 2, "transformResult ran per streamed chunk");
  assert.deepEqual(await names(executor), ["ADA", "CY"]);
});

Deno.test("types: an executor is a typed Kysely, and plugins are type-checked", async () => {
  const db = memoryDb();
  const executor = createExecutorSync(db, [tenantScope]);
  const asKysely: Kysely<DB> = executor;
  assert.equal(asKysely, executor);
  // @ts-expect-error: the executor is not `any`
  const notANumber: number = executor;
  void notANumber;
  // @ts-expect-error: an unknown table is a compile error
  executor.selectFrom("nope");
  // @ts-expect-error: an unknown column is a compile error
  executor.selectFrom("users").select("nope");
  const badScope: KyseraPlugin = {
    name: "bad",
    // @ts-expect-error: a scope returns a boolean expression, never SQL text
    scopeRows: () => "tenant_id = 1",
  };
  const typedContext: KyseraPlugin<number> = {
    name: "typed",
    context: new PluginContext<number>("tenant"),
    scopeRows: (ref, eb) => eb(ref.column("tenant_id"), "=", ref.context ?? -1),
  };
  const wrongContext: KyseraPlugin<number> = {
    name: "wrong",
    // @ts-expect-error: the context holds the plugin's context type
    context: new PluginContext<string>("tenant"),
  };
  assert.deepEqual([badScope.name, typedContext.name, wrongContext.name], ["bad", "typed", "wrong"]);
  await db.destroy();
});

suite.test("onWrite sees the dialect and can set columns per row of a multi-row insert", async (ctx) => {
  const seen: unknown[] = [];
  const perRow: KyseraPlugin = {
    name: "per-row",
    onWrite(write) {
      seen.push(write.dialect);
      if (write.table !== "posts" || write.kind !== "values") return undefined;
      // fill tenant_id only where the caller left it out
      return { rows: write.rows.map((r) => Object.hasOwn(r, "tenant_id") ? undefined : { tenant_id: 1 }) };
    },
  };
  const executor = createExecutorSync(ctx.db, [perRow]);
  // deno-lint-ignore no-explicit-any
  const loose = executor as Kysely<any>;
  const query = loose.insertInto("posts").values([
    { user_id: 1, title: "n1" },
    { user_id: 1, title: "n2", tenant_id: 2 },
  ]);
  assertSql(
    ctx,
    query,
    sqlOf('insert into "posts" ("user_id", "title", "tenant_id") values (?, ?, ?), (?, ?, ?)', [
      1,
      "n1",
      1,
      1,
      "n2",
      2,
    ]),
  );
  await query.execute();
  await executor.updateTable("posts").set({ user_id: 3 }).where("title", "=", "n1").execute();
  assert.deepEqual(seen, [ctx.dialect, ctx.dialect, ctx.dialect]);
  const rows = await ctx.db.selectFrom("posts").select(["title", "tenant_id"]).where("title", "like", "n%")
    .orderBy("title").execute();
  assert.deepEqual(plainRows(rows), [{ title: "n1", tenant_id: 1 }, { title: "n2", tenant_id: 2 }]);
});
