/**
 * A plugin's own statement (an `aroundWrite` hook reading rows first, as
 * audit does) that hits a lock held by another connection: the caller gets
 * the database's error, classified as the statement's own would be (a
 * transient lock timeout or busy error, which a retry of the transaction may
 * cure), not a `PluginError` hiding it. Any other failure of a hook is still
 * a `PluginError` naming the plugin.
 */
import assert from "node:assert/strict";
import { type Kysely, sql } from "kysely";
import { dbSuite, rejection } from "../_test/harness.ts";
import { createExecutorSync, isPluginError, type KyseraPlugin } from "./mod.ts";
import { isKyseraError, parseDatabaseError } from "../core/mod.ts";

// deno-lint-ignore no-explicit-any
type AnyDb = Kysely<any>;

interface DB {
  items: { id: number; v: number };
}

const suite = dbSuite<DB>(import.meta, {
  tables: async (db) => {
    await db.schema.createTable("items").addColumn("id", "integer", (c) => c.primaryKey())
      .addColumn("v", "integer", (c) => c.notNull()).execute();
    await db.insertInto("items").values([{ id: 1, v: 0 }, { id: 2, v: 0 }]).execute();
  },
});

/** Reads (and locks) row 1 before every write, on the write's own connection. */
const locker: KyseraPlugin = {
  name: "locker",
  async aroundWrite(execution, next) {
    const db = execution.rawDb;
    const dialect = db.getExecutor().adapter.constructor.name;
    if (dialect.startsWith("Sqlite")) {
      // A write, so SQLite asks for the lock another connection holds.
      await db.updateTable("items").set({ v: sql`v` }).where("id", "=", 1).execute();
    } else {
      await db.selectFrom("items").selectAll().where("id", "=", 1).forUpdate().execute();
    }
    return await next();
  },
};

const failing: KyseraPlugin = {
  name: "failing",
  aroundWrite: () => Promise.reject(new Error("boom")),
};

suite.test("a plugin's own statement that times out on a lock reaches the caller as a transient database error", async (ctx) => {
  const { db, dialect } = ctx;
  const holder = ctx.connect();
  const trx = await holder.startTransaction().execute();
  try {
    // Another connection holds row 1.
    await trx.updateTable("items").set({ v: 1 }).where("id", "=", 1).execute();
    const ex = createExecutorSync(db, [locker]);
    const write = ex.connection().execute(async (conn) => {
      // Short lock waits on this connection.
      if (dialect === "postgres") await sql`set lock_timeout = '100ms'`.execute(conn);
      if (dialect === "mysql") await sql`set session innodb_lock_wait_timeout = 1`.execute(conn);
      return await conn.updateTable("items").set({ v: 2 }).where("id", "=", 2).execute();
    });
    const error = await rejection(write);
    assert.ok(!isPluginError(error), `the lock timeout was hidden: ${String(error)}`);
    assert.ok(!isKyseraError(error), "the driver's error itself");
    const typed = parseDatabaseError(error, dialect);
    assert.equal((typed as { transient?: boolean }).transient, true, `${typed.name}: ${typed.message}`);
  } finally {
    await trx.rollback().execute();
  }
  // The write did not happen.
  assert.deepEqual((await db.selectFrom("items").select("v").where("id", "=", 2).execute()).map((r) => Number(r.v)), [
    0,
  ]);
});

suite.test("any other failure of a hook is still a PluginError naming the plugin", async ({ db }) => {
  const ex = createExecutorSync(db, [failing]);
  const error = await rejection(ex.updateTable("items").set({ v: 3 }).where("id", "=", 2).execute());
  assert.ok(isPluginError(error), String(error));
  assert.match(String(error), /failing/);
});
