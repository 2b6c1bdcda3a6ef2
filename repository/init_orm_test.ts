import assert from "node:assert/strict";
import type { Generated } from "kysely";
import { addIdColumn, dbSuite, rejection } from "../_test/harness.ts";
import { createExecutorSync, isOutsideTransactionError, type KyseraPlugin } from "../executor/mod.ts";
import { initORM } from "./mod.ts";

interface DB {
  notes: { id: Generated<number>; body: string };
}

const suite = dbSuite<DB>(import.meta, {
  async tables(db, database) {
    await addIdColumn(db.schema.createTable("notes"), database)
      .addColumn("body", "varchar(50)", (c) => c.notNull())
      .execute();
  },
});

suite.test("initORM() takes the plugins once: onInit runs, extension methods are there and typed", async ({ db }) => {
  const calls: string[] = [];
  const shout = {
    name: "shout",
    onInit: () => void calls.push("init"),
    extendRepository: (repository: object) => ({
      shout: (): string => (repository as { tableName: string }).tableName.toUpperCase(),
    }),
  } satisfies KyseraPlugin;
  const orm = await initORM(db, [shout]);
  assert.deepEqual(calls, ["init"]);
  const notes = orm.createRepository({ tableName: "notes" });
  const shouted: string = notes.shout();
  assert.equal(shouted, "NOTES");
  await notes.create({ body: "a" });
  assert.equal((await orm.transaction((tx) => tx.createRepository({ tableName: "notes" }).findAll())).length, 1);
  // The executor's options apply: the default refuses a query around the transaction.
  await orm.transaction(async () => {
    assert.ok(isOutsideTransactionError(await rejection(notes.findAll())));
  });
});

suite.test("initORM() refuses an executor, naming createORM()", async ({ db }) => {
  const error = await rejection(initORM(createExecutorSync(db, [])));
  assert.ok(error instanceof TypeError);
  assert.equal(
    error.message,
    "Cannot init the ORM over an executor: pass the Kysely instance, or use createORM(executor)",
  );
});
