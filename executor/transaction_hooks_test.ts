import assert from "node:assert/strict";
import { type Kysely, sql } from "kysely";
import { dbSuite, plainRows, rejection, type TestDatabase } from "../_test/harness.ts";
import { isPluginError, type KyseraPlugin, type TransactionEvent } from "./mod.ts";
import { createExecutor } from "./create_executor.ts";
import { type DB as BaseDB, tables as baseTables } from "./_test_helpers.ts";
import { transaction } from "../dal/mod.ts";
import { auditPlugin, createAuditTable } from "../plugins/audit/mod.ts";
import { Family } from "./_family.ts";

interface DB extends BaseDB {
  codes: { code: number };
  children: { id: number; parent_id: number };
}

const suite = dbSuite<DB>(import.meta, {
  // deno-lint-ignore no-explicit-any
  async tables(db: Kysely<any>, database: TestDatabase) {
    await baseTables(db, database);
    await createAuditTable(db);
    if (database === "postgres") {
      await sql`create table codes (code integer not null, constraint codes_code_key unique (code) deferrable initially deferred)`
        .execute(db);
      await sql`insert into codes (code) values (1)`.execute(db);
    } else if (database === "sqlite") {
      await sql`create table parents (id integer primary key)`.execute(db);
      await sql`create table children (id integer primary key, parent_id integer not null
        references parents (id) deferrable initially deferred)`.execute(db);
    }
  },
});

/** An event as asserted: `[kind, transaction (1 = first seen), depth, isolation?, savepoint?, "error"?]`. */
type Row = (string | number)[];

/** A plugin that records its `onTransaction` events. */
function recorder(name = "tx"): { plugin: KyseraPlugin; events: TransactionEvent[]; rows(): Row[] } {
  const events: TransactionEvent[] = [];
  return {
    events,
    plugin: { name, onTransaction: (event) => void events.push(event) },
    rows() {
      const ids = new Map<number, number>();
      const names = new Map<string, string>();
      return events.map((e) => {
        if (!ids.has(e.transactionId)) ids.set(e.transactionId, ids.size + 1);
        const row: Row = [e.kind, ids.get(e.transactionId)!, e.depth];
        if (e.isolationLevel !== undefined) row.push(e.isolationLevel);
        if (e.savepoint !== undefined) {
          // The DAL numbers its savepoints process-wide: named here by first appearance.
          const dal = /^kysera_sp_\d+$/.test(e.savepoint);
          if (dal && !names.has(e.savepoint)) names.set(e.savepoint, `sp${names.size + 1}`);
          row.push(dal ? names.get(e.savepoint)! : e.savepoint);
        }
        if (e.error !== undefined) row.push("error");
        return row;
      });
    },
  };
}

async function notes(db: Kysely<DB>): Promise<string[]> {
  const rows = await db.selectFrom("audit").select("note").orderBy("id").execute();
  return plainRows(rows).map((r) => r.note);
}

suite.test("onTransaction: transaction().execute() commits and rolls back, one id each", async (ctx) => {
  const { plugin, events, rows } = recorder();
  const db = await createExecutor(ctx.db, [plugin]);
  await db.transaction().execute((trx) => trx.insertInto("audit").values({ note: "kept" }).execute());
  const error = await rejection(
    db.transaction().execute(async (trx) => {
      await trx.insertInto("audit").values({ note: "lost" }).execute();
      throw new Error("boom");
    }),
  );
  assert.equal((error as Error).message, "boom");
  assert.deepEqual(rows(), [["begin", 1, 0], ["commit", 1, 0], ["begin", 2, 0], ["rollback", 2, 0]]);
  assert.ok(events.every((e) => typeof e.durationMs === "number" && e.durationMs >= 0));
  assert.ok(events[0]!.transactionId !== events[2]!.transactionId);
  assert.deepEqual(events.map((e) => e.sql), ["begin", "commit", "begin", "rollback"]);
  assert.deepEqual(await notes(db), ["kept"]);
});

suite.test("onTransaction: transaction().setIsolationLevel() reports the isolation level", async (ctx) => {
  const { plugin, events, rows } = recorder();
  const db = await createExecutor(ctx.db, [plugin]);
  await db.transaction().setIsolationLevel("serializable").execute((trx) =>
    trx.selectFrom("users").select("id").execute()
  );
  await db.transaction().execute((trx) => trx.selectFrom("users").select("id").execute());
  // SQLite has no isolation levels: Kysely's SQLite driver sends a plain `begin`.
  const level = ctx.database === "sqlite" ? [] : ["serializable"];
  assert.deepEqual(rows(), [["begin", 1, 0, ...level], ["commit", 1, 0, ...level], ["begin", 2, 0], ["commit", 2, 0]]);
  const expectedBegin = ctx.database === "postgres" ? "start transaction isolation level serializable" : "begin";
  assert.equal(events[0]!.sql, expectedBegin);
});

suite.test("onTransaction: startTransaction() with nested savepoints reports their depths", async (ctx) => {
  const { plugin, rows } = recorder();
  const db = await createExecutor(ctx.db, [plugin]);
  const trx = await db.startTransaction().execute();
  const one = await trx.savepoint("one").execute();
  await one.insertInto("audit").values({ note: "one" }).execute();
  const two = await one.savepoint("two").execute();
  await two.insertInto("audit").values({ note: "two" }).execute();
  const back = await two.rollbackToSavepoint("two").execute();
  const released = await back.releaseSavepoint("one").execute();
  await released.commit().execute();
  assert.deepEqual(rows(), [
    ["begin", 1, 0],
    ["savepoint", 1, 1, "one"],
    ["savepoint", 1, 2, "two"],
    ["rollback-to", 1, 2, "two"],
    ["release", 1, 1, "one"],
    ["commit", 1, 0],
  ]);
  assert.deepEqual(await notes(db), ["one"]);

  const again = await db.startTransaction().setIsolationLevel("repeatable read").execute();
  await again.rollback().execute();
  const level = ctx.database === "sqlite" ? [] : ["repeatable read"];
  assert.deepEqual(rows().slice(6), [["begin", 2, 0, ...level], ["rollback", 2, 0, ...level]]);
});

suite.test("onTransaction: the DAL's transaction() nested in a controlled transaction (Kysely's savepoints)", async (ctx) => {
  const { plugin, rows } = recorder();
  const db = await createExecutor(ctx.db, [plugin]);
  await transaction(db, async (outer) => {
    await transaction(outer, async (inner) => {
      await inner.db.insertInto("audit").values({ note: "a" }).execute();
      const error = await rejection(transaction(inner, () => Promise.reject(new Error("inner"))));
      assert.equal((error as Error).message, "inner");
    });
  }, { isolationLevel: "read committed" });
  const level = ctx.database === "sqlite" ? [] : ["read committed"];
  assert.deepEqual(rows(), [
    ["begin", 1, 0, ...level],
    ["savepoint", 1, 1, ...level, "sp1"],
    ["savepoint", 1, 2, ...level, "sp2"],
    ["rollback-to", 1, 2, ...level, "sp2"],
    ["release", 1, 1, ...level, "sp1"],
    ["commit", 1, 0, ...level],
  ]);
  assert.deepEqual(await notes(db), ["a"]);
});

suite.test("onTransaction: the DAL's transaction() inside transaction().execute() (raw savepoint SQL)", async (ctx) => {
  const { plugin, events, rows } = recorder();
  const db = await createExecutor(ctx.db, [plugin]);
  await db.transaction().execute(async (trx) => {
    await transaction(trx, async (inner) => {
      await inner.db.insertInto("audit").values({ note: "kept" }).execute();
      await transaction(inner, async (deeper) => {
        await deeper.db.insertInto("audit").values({ note: "undone" }).execute();
        throw new Error("deeper");
      }).catch(() => {});
    });
  });
  assert.deepEqual(rows(), [
    ["begin", 1, 0],
    ["savepoint", 1, 1, "sp1"],
    ["savepoint", 1, 2, "sp2"],
    ["rollback-to", 1, 2, "sp2"],
    ["release", 1, 1, "sp1"],
    ["commit", 1, 0],
  ]);
  assert.match(events[1]!.sql, /^savepoint ["`]kysera_sp_\d+["`]$/);
  assert.deepEqual(await notes(db), ["kept"]);
});

suite.test("onTransaction: a begin sent through connection(), and the plugin context", async (ctx) => {
  const { plugin: base, rows } = recorder();
  let value = "outside";
  const contexts: unknown[] = [];
  const plugin: KyseraPlugin<string> = {
    name: base.name,
    context: { get: () => value } as never,
    onTransaction: (event) => {
      contexts.push(event.context);
      base.onTransaction!(event as TransactionEvent);
    },
  };
  const db = await createExecutor(ctx.db, [plugin as KyseraPlugin]);
  await db.connection().execute(async (conn) => {
    await sql`begin`.execute(conn);
    await conn.insertInto("audit").values({ note: "hand" }).execute();
    await sql`savepoint manual`.execute(conn);
    value = "inside";
    await sql`rollback to savepoint manual`.execute(conn);
    await sql`commit`.execute(conn);
  });
  assert.deepEqual(rows(), [
    ["begin", 1, 0],
    ["savepoint", 1, 1, "manual"],
    ["rollback-to", 1, 1, "manual"],
    ["commit", 1, 0],
  ]);
  assert.deepEqual(contexts, ["outside", "outside", "inside", "inside"]);
  assert.deepEqual(await notes(db), ["hand"]);
});

suite.test("onTransaction: the audit plugin's own savepoint inside a transaction", async (ctx) => {
  const { plugin, rows } = recorder();
  const db = await createExecutor(ctx.db, [plugin, auditPlugin()]);
  await db.transaction().execute((trx) => trx.updateTable("posts").set({ title: "a2" }).where("id", "=", 1).execute());
  assert.deepEqual(rows(), [
    ["begin", 1, 0],
    ["savepoint", 1, 1, "kysera_audit"],
    ["release", 1, 1, "kysera_audit"],
    ["commit", 1, 0],
  ]);
  // A lone write: the plugin opens its own transaction (`begin immediate` on SQLite, `start transaction` on MySQL).
  await db.updateTable("posts").set({ title: "a3" }).where("id", "=", 1).execute();
  assert.deepEqual(rows().slice(4), [["begin", 2, 0], ["commit", 2, 0]]);
  const logged = await ctx.db.selectFrom("audit_logs" as never).select(sql<number>`count(*)`.as("n"))
    .executeTakeFirstOrThrow();
  assert.equal(Number((logged as { n: number }).n), 2);
});

suite.test("onTransaction: a COMMIT refused by a deferred unique constraint reports its error", async (ctx) => {
  const { plugin, events, rows } = recorder();
  const db = await createExecutor(ctx.db, [plugin]);
  const error = await rejection(
    db.transaction().execute((trx) => trx.insertInto("codes").values({ code: 1 }).execute()),
  );
  assert.deepEqual(rows(), [["begin", 1, 0], ["commit", 1, 0, "error"], ["rollback", 1, 0]]);
  assert.equal(events[1]!.error, error);
  assert.match(String((events[1]!.error as Error).message), /codes_code_key/);
  const count = await db.selectFrom("codes").select(sql<number>`count(*)`.as("n")).executeTakeFirstOrThrow();
  assert.equal(Number(count.n), 1);
}, { databases: ["postgres"] }); // Only PostgreSQL has deferrable unique constraints.

suite.test(
  "onTransaction: a COMMIT refused by a deferred foreign key (SQLite keeps the transaction open)",
  async (ctx) => {
    const { plugin, events, rows } = recorder();
    const db = await createExecutor(ctx.db, [plugin]);
    const error = await rejection(
      transaction(db, (t) => t.db.insertInto("children").values({ id: 1, parent_id: 9 }).execute()),
    );
    // The DAL rolls back after the failed COMMIT: reported with the same transaction.
    assert.deepEqual(rows(), [["begin", 1, 0], ["commit", 1, 0, "error"], ["rollback", 1, 0]]);
    assert.equal(events[1]!.error, error);
    await db.transaction().execute((trx) => trx.selectFrom("children").selectAll().execute());
    assert.deepEqual(rows().slice(3), [["begin", 2, 0], ["commit", 2, 0]]);
  },
  { databases: ["sqlite"] },
); // Deferred foreign keys: SQLite (PostgreSQL's deferred case is above; MariaDB has none).

suite.test("onTransaction: a hook that throws after begin rolls the transaction back", async (ctx) => {
  const { plugin: watcher, rows } = recorder();
  const thrower: KyseraPlugin = {
    name: "thrower",
    onTransaction: (event) => {
      if (event.kind === "begin") throw new Error("no transactions");
    },
  };
  const db = await createExecutor(ctx.db, [watcher, thrower]);
  let ran = false;
  const error = await rejection(
    db.transaction().execute(() => {
      ran = true;
      return Promise.resolve();
    }),
  );
  assert.ok(isPluginError(error));
  assert.equal(error.hook, "onTransaction");
  assert.equal(error.plugin, "thrower");
  assert.equal(ran, false);
  assert.deepEqual(rows(), [["begin", 1, 0], ["rollback", 1, 0]]);
  // The connection is back in the pool, outside a transaction.
  await db.insertInto("audit").values({ note: "after" }).execute();
  assert.deepEqual(await notes(ctx.db as unknown as Kysely<DB>), ["after"]);
});

suite.test("onTransaction: a hook that throws after commit: committed, reported, no rollback sent", async (ctx) => {
  const { plugin: watcher, rows } = recorder();
  const thrower: KyseraPlugin = {
    name: "thrower",
    onTransaction: (event) => {
      if (event.kind === "commit") throw new Error("late");
    },
  };
  const db = await createExecutor(ctx.db, [thrower, watcher]);
  const error = await rejection(
    db.transaction().execute((trx) => trx.insertInto("audit").values({ note: "committed" }).execute()),
  );
  assert.ok(isPluginError(error));
  assert.equal(error.message, "Plugin 'thrower' failed in onTransaction on commit: late");
  assert.deepEqual(rows(), [["begin", 1, 0], ["commit", 1, 0]]);
  assert.deepEqual(await notes(db), ["committed"]);
});

suite.test("onTransaction: no hook, no tracking (nothing added on the query path)", (ctx) => {
  assert.equal(
    new Family(ctx.db, [{ name: "plain", transformResult: (a) => Promise.resolve(a.result) }]).tracking,
    false,
  );
  assert.equal(new Family(ctx.db, [{ name: "tx", onTransaction: () => {} }]).tracking, true);
  return Promise.resolve();
});
