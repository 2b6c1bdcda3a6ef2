import assert from "node:assert/strict";
import { sql } from "kysely";
import { dbSuite, plainRows, rejection, rollbackOpen } from "../_test/harness.ts";
import { isPluginError, type KyseraPlugin, type QueryExecution, type WriteExecution } from "./mod.ts";
import { createExecutor } from "./create_executor.ts";
import { type DB, tables } from "./_test_helpers.ts";
import { isUniqueConstraintError, parseDatabaseError } from "../core/mod.ts";

const suite = dbSuite<DB>(import.meta, { tables });

interface Seen {
  readonly operation: string | undefined;
  readonly mode: string;
  readonly inTransaction: boolean;
  readonly transaction: object | undefined;
}

/** A plugin that records what `aroundQuery` and `aroundWrite` were told. */
function recorder(): { plugin: KyseraPlugin; queries: Seen[]; writes: Seen[] } {
  const queries: Seen[] = [];
  const writes: Seen[] = [];
  const seen = (e: QueryExecution | WriteExecution, mode: string): Seen => ({
    operation: e.operation,
    mode,
    inTransaction: e.inTransaction,
    transaction: e.transaction,
  });
  return {
    queries,
    writes,
    plugin: {
      name: "recorder",
      aroundQuery: (e, next) => {
        queries.push(seen(e, e.mode));
        return next();
      },
      aroundWrite: (e, next) => {
        writes.push(seen(e, "execute"));
        return next();
      },
    },
  };
}

suite.test("aroundQuery sees every statement and whether a transaction is open", async (ctx) => {
  const { plugin, queries, writes } = recorder();
  const db = await createExecutor(ctx.db, [plugin]);
  await db.selectFrom("users").select("id").execute();
  await db.insertInto("audit").values({ note: "lone" }).execute();
  await sql`select 1 as one`.execute(db);
  assert.deepEqual(queries.map((q) => [q.operation, q.inTransaction]), [
    ["select", false],
    ["insert", false],
    [undefined, false],
  ]);
  assert.deepEqual(writes.map((w) => [w.operation, w.inTransaction]), [["insert", false]]);

  queries.length = 0;
  writes.length = 0;
  await db.transaction().execute(async (trx) => {
    await trx.selectFrom("users").select("id").execute();
    await trx.updateTable("audit").set({ note: "in trx" }).execute();
  });
  await db.transaction().setIsolationLevel("serializable").execute(async (trx) => {
    await trx.selectFrom("users").select("id").execute();
  });
  assert.deepEqual(queries.map((q) => [q.operation, q.inTransaction]), [
    ["select", true],
    ["update", true],
    ["select", true],
  ]);
  assert.deepEqual(writes.map((w) => [w.operation, w.inTransaction]), [["update", true]]);
  // One identity per transaction: the same within, another in the next.
  assert.ok(queries[0]!.transaction !== undefined);
  assert.equal(queries[0]!.transaction, queries[1]!.transaction);
  assert.equal(queries[1]!.transaction, writes[0]!.transaction);
  assert.notEqual(queries[1]!.transaction, queries[2]!.transaction);

  // After commit the connection is out of the transaction again.
  queries.length = 0;
  await db.selectFrom("users").select("id").execute();
  assert.deepEqual(queries.map((q) => q.inTransaction), [false]);
});

suite.test("controlled transactions, savepoints and a begin sent through connection() are seen", async (ctx) => {
  const { plugin, queries } = recorder();
  const db = await createExecutor(ctx.db, [plugin]);
  const trx = await db.startTransaction().execute();
  try {
    await trx.selectFrom("users").select("id").execute();
    const sp = await trx.savepoint("sp1").execute();
    await sp.updateTable("audit").set({ note: "x" }).execute();
    await sp.rollbackToSavepoint("sp1").execute();
    // `rollback to savepoint` keeps the transaction open.
    await trx.selectFrom("users").select("id").execute();
    await trx.rollback().execute();
  } finally {
    await rollbackOpen(trx);
  }
  await db.selectFrom("users").select("id").execute();
  assert.deepEqual(
    queries.filter((q) => q.operation !== undefined).map((q) => [q.operation, q.inTransaction]),
    [["select", true], ["update", true], ["select", true], ["select", false]],
  );

  queries.length = 0;
  await db.connection().execute(async (conn) => {
    await conn.selectFrom("users").select("id").execute();
    await sql`begin`.execute(conn);
    await conn.selectFrom("users").select("id").execute();
    await sql`commit`.execute(conn);
    await conn.selectFrom("users").select("id").execute();
  });
  assert.deepEqual(
    queries.filter((q) => q.operation === "select").map((q) => q.inTransaction),
    [false, true, false],
  );
});

suite.test("a hook may wrap a lone statement in its own transaction on the same connection", async (ctx) => {
  const inner: boolean[] = [];
  // Opens a transaction around every lone write and rolls it back: proves
  // that `rawDb` is the statement's own connection, and that later hooks
  // are told about the transaction the hook opened.
  const undo: KyseraPlugin = {
    name: "undo",
    aroundQuery: async (e, next) => {
      if (e.inTransaction || e.operation === "select") return await next();
      await sql`begin`.execute(e.rawDb);
      assert.equal(e.inTransaction, true);
      try {
        return await next();
      } finally {
        await sql`rollback`.execute(e.rawDb);
      }
    },
  };
  const probe: KyseraPlugin = {
    name: "probe",
    aroundWrite: (e, next) => {
      inner.push(e.inTransaction);
      return next();
    },
  };
  const db = await createExecutor(ctx.db, [undo, probe]);
  const result = await db.insertInto("audit").values({ note: "gone" }).executeTakeFirstOrThrow();
  assert.equal(result.numInsertedOrUpdatedRows, 1n);
  await db.updateTable("users").set({ name: "zed" }).execute();
  assert.deepEqual(inner, [true, true]);
  assert.deepEqual(plainRows(await ctx.db.selectFrom("audit").selectAll().execute()), []);
  assert.deepEqual(
    (await ctx.db.selectFrom("users").select("name").orderBy("id").execute()).map((r) => r.name),
    ["ada", "bob", "cy"],
  );
  // Inside a caller's transaction the hook leaves the statement alone.
  await db.transaction().execute((trx) => trx.insertInto("audit").values({ note: "kept" }).execute());
  assert.deepEqual(
    (await ctx.db.selectFrom("audit").select("note").execute()).map((r) => r.note),
    ["kept"],
  );
});

suite.test("a stream passes aroundQuery, which finishes after the stream is read", async (ctx) => {
  const events: string[] = [];
  const plugin: KyseraPlugin = {
    name: "stream-watch",
    aroundQuery: async (e, next) => {
      events.push(`before ${e.mode}`);
      const result = await next();
      events.push(`after ${e.mode}`);
      return result;
    },
  };
  const db = await createExecutor(ctx.db, [plugin]);
  const names: string[] = [];
  for await (const row of db.selectFrom("users").select("name").orderBy("id").stream(1)) {
    events.push(`row ${row.name}`);
    names.push(row.name);
  }
  assert.deepEqual(names, ["ada", "bob", "cy"]);
  assert.deepEqual(events, ["before stream", "row ada", "row bob", "row cy", "after stream"]);

  // Leaving the loop early still ends the hook.
  events.length = 0;
  for await (const row of db.selectFrom("users").select("name").orderBy("id").stream(1)) {
    events.push(`row ${row.name}`);
    break;
  }
  assert.deepEqual(events, ["before stream", "row ada", "after stream"]);
});

suite.test("a failing hook is a PluginError; the statement's own error passes unwrapped", async (ctx) => {
  let fail = true;
  const plugin: KyseraPlugin = {
    name: "gate",
    aroundQuery: (_e, next) => {
      if (fail) throw new Error("closed");
      return next();
    },
  };
  const db = await createExecutor(ctx.db, [plugin]);
  const error = await rejection(db.insertInto("audit").values({ note: "no" }).execute());
  assert.ok(isPluginError(error));
  assert.equal(error.hook, "aroundQuery");
  assert.equal(error.operation, "insert");
  assert.match(error.message, /closed/);
  const streamError = await rejection((async () => {
    for await (const _ of db.selectFrom("users").select("id").stream()) break;
  })());
  assert.ok(isPluginError(streamError));
  assert.deepEqual(plainRows(await ctx.db.selectFrom("audit").selectAll().execute()), []);

  fail = false;
  const duplicate = await rejection(
    db.insertInto("posts").values({ tenant_id: 1, user_id: 1, title: "a1" }).execute(),
  );
  assert.ok(!isPluginError(duplicate), String(duplicate));
  assert.ok(isUniqueConstraintError(parseDatabaseError(duplicate, ctx.dialect)), String(duplicate));
});
