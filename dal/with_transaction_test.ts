import assert from "node:assert/strict";
import { type Generated, Kysely, MysqlDialect, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { createPool } from "mysql2";
import { addIdColumn, dbSuite, MARIADB_URL, plainRows, POSTGRES_URL, rejection } from "../_test/harness.ts";
import { createExecutorSync, type KyseraPlugin } from "../executor/mod.ts";
import { type DbContext, withTransaction } from "./mod.ts";

interface DB {
  notes: { id: Generated<number>; tenant_id: number; body: string };
}

const suite = dbSuite<DB>(import.meta, {
  async tables(db, database) {
    await addIdColumn(db.schema.createTable("notes"), database)
      .addColumn("tenant_id", "integer", (c) => c.notNull())
      .addColumn("body", "varchar(50)", (c) => c.notNull())
      .execute();
    await db.insertInto("notes").values([{ tenant_id: 1, body: "t1" }, { tenant_id: 2, body: "t2" }]).execute();
  },
});

async function bodies(db: Kysely<DB>): Promise<string[]> {
  return (await db.selectFrom("notes").select("body").orderBy("id").execute()).map((r) => r.body);
}

const add = (ctx: DbContext<DB>, body: string) => ctx.db.insertInto("notes").values({ tenant_id: 1, body }).execute();

suite.test("withTransaction() commits what the callback did and returns its result", async ({ db }) => {
  const result = await withTransaction(db, async (ctx) => {
    assert.equal(ctx.isTransaction, true);
    await add(ctx, "a");
    return 42;
  });
  assert.equal(result, 42);
  assert.deepEqual(await bodies(db), ["t1", "t2", "a"]);
});

suite.test("withTransaction() rolls back and rethrows the very error", async ({ db }) => {
  const failure = new Error("boom");
  const thrown = await rejection(withTransaction(db, async (ctx) => {
    await add(ctx, "a");
    throw failure;
  }));
  assert.equal(thrown, failure);
  assert.deepEqual(await bodies(db), ["t1", "t2"]);
});

suite.test("withTransaction() nested uses a savepoint: the inner failure is undone alone", async ({ db }) => {
  await withTransaction(db, async (ctx) => {
    await add(ctx, "outer");
    const inner = await rejection(withTransaction(ctx, async (nested) => {
      await add(nested, "inner");
      await withTransaction(nested, (deeper) => add(deeper, "deeper"));
      throw new Error("inner failure");
    }));
    assert.match(String(inner), /inner failure/);
    await withTransaction(ctx, (nested) => add(nested, "second inner"));
    await add(ctx, "outer again");
  });
  assert.deepEqual(await bodies(db), ["t1", "t2", "outer", "second inner", "outer again"]);
});

suite.test("withTransaction() makes savepoints inside a transaction from transaction().execute()", async ({ db }) => {
  await db.transaction().execute(async (trx) => {
    await add({ db: trx, isTransaction: true }, "outer");
    await rejection(withTransaction(trx, async (nested) => {
      await add(nested, "inner");
      throw new Error("inner failure");
    }));
  });
  assert.deepEqual(await bodies(db), ["t1", "t2", "outer"]);
});

suite.test("withTransaction() on an executor applies its plugins exactly once", async ({ db }) => {
  const seen: string[] = [];
  const scope: KyseraPlugin = {
    name: "tenant",
    scopeRows: (ref, eb) => {
      seen.push(ref.table);
      return eb(ref.column("tenant_id"), "=", 1);
    },
  };
  const executor = createExecutorSync(db, [scope]);
  const rows = await withTransaction(executor, (ctx) =>
    withTransaction(ctx, async (nested) => {
      const query = nested.db.selectFrom("notes").select("body");
      assert.equal((query.compile().sql.match(/tenant_id/g) ?? []).length, 1, query.compile().sql);
      return await query.execute();
    }));
  assert.deepEqual(plainRows(rows), [{ body: "t1" }]);
  assert.ok(seen.length >= 1 && seen.every((t) => t === "notes"));
});

suite.test("withTransaction() sets the isolation level it is given", async (ctx) => {
  const level = await withTransaction(ctx.db, async ({ db }) => {
    await db.selectFrom("notes").select("id").execute();
    const query = ctx.database === "postgres"
      ? sql<{ level: string }>`SELECT current_setting('transaction_isolation') AS level`
      : sql<{ level: string }>`SELECT trx_isolation_level AS level FROM information_schema.innodb_trx
          WHERE trx_mysql_thread_id = CONNECTION_ID()`;
    return (await query.execute(db)).rows[0]?.level;
  }, { isolationLevel: "serializable" });
  assert.equal(level?.toLowerCase(), "serializable");
}, { databases: ["postgres", "mariadb"] }); // SQLite transactions are always serializable; it has no levels

suite.test("withTransaction() refuses an isolation level on a nested call", async ({ db }) => {
  await withTransaction(db, async (ctx) => {
    const error = await rejection(withTransaction(ctx, () => Promise.resolve(), { isolationLevel: "serializable" }));
    assert.ok(error instanceof TypeError);
  });
});

suite.test("withTransaction() throws the original error when the rollback fails too", async (ctx) => {
  // The callback kills its own connection: its error is the original one, and
  // the rollback that follows fails on the dead connection.
  const url = new URL(ctx.database === "postgres" ? POSTGRES_URL : MARIADB_URL);
  const pool = ctx.database === "postgres"
    ? new pg.Pool({ connectionString: url.href, max: 1 })
    : createPool({ host: url.hostname, port: Number(url.port || 3306), user: "root", connectionLimit: 1 });
  (pool as { on(event: "error", fn: () => void): void }).on("error", () => {});
  if (pool instanceof pg.Pool) pool.on("connect", (client) => client.on("error", () => {}));
  const killable = ctx.database === "postgres"
    ? new Kysely<DB>({ dialect: new PostgresDialect({ pool: pool as pg.Pool }) })
    : new Kysely<DB>({ dialect: new MysqlDialect({ pool: pool as ReturnType<typeof createPool> }) });
  try {
    let original: unknown;
    const thrown = await rejection(withTransaction(killable, async ({ db }) => {
      const kill = ctx.database === "postgres"
        ? sql`SELECT pg_terminate_backend(pg_backend_pid())`
        : sql`KILL CONNECTION_ID()`;
      original = await rejection(kill.execute(db));
      throw original;
    }));
    assert.equal(thrown, original, "the callback's error, not the rollback's");
    assert.ok(
      (thrown as { rollbackError?: unknown }).rollbackError instanceof Error,
      "the rollback failure is attached",
    );
  } finally {
    await killable.destroy();
  }
}, { databases: ["postgres", "mariadb"] }); // an embedded SQLite connection cannot be killed

suite.test("withTransaction() savepoints pass an executor that refuses raw SQL", async ({ db }) => {
  const noRaw: KyseraPlugin = { name: "no-raw", rawSql: "refuse" };
  const executor = createExecutorSync(db, [noRaw]);
  await executor.transaction().execute(async (trx) => {
    await rejection(withTransaction(trx, async (nested) => {
      await add(nested, "inner");
      throw new Error("inner failure");
    }));
    await add({ db: trx, isTransaction: true }, "outer");
  });
  assert.deepEqual(await bodies(db), ["t1", "t2", "outer"]);
  // while raw SQL of the application is still refused
  await assert.rejects(sql`select 1`.execute(executor), /raw SQL|refuse/i);
});
