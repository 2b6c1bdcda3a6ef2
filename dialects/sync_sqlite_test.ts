import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { type Generated, Kysely, SqliteDialect } from "kysely";
import { wrapSyncSqlite } from "./mod.ts";

interface DB {
  person: { id: Generated<number>; name: string };
}

function open(): Kysely<DB> {
  return new Kysely<DB>({ dialect: new SqliteDialect({ database: wrapSyncSqlite(new DatabaseSync(":memory:")) }) });
}

Deno.test("wrapSyncSqlite() runs Kysely's inserts, returning, updates, streams and transactions on node:sqlite", async () => {
  const db = open();
  try {
    await db.schema.createTable("person")
      .addColumn("id", "integer", (c) => c.primaryKey().autoIncrement())
      .addColumn("name", "text", (c) => c.notNull()).execute();
    const inserted = await db.insertInto("person").values({ name: "Ada" }).executeTakeFirstOrThrow();
    assert.equal(inserted.insertId, 1n);
    const returned = await db.insertInto("person").values({ name: "Bob" }).returning(["id", "name"])
      .executeTakeFirstOrThrow();
    assert.deepEqual({ ...returned }, { id: 2, name: "Bob" });
    const updated = await db.updateTable("person").set({ name: "Bo" }).where("id", "=", 2).executeTakeFirstOrThrow();
    assert.equal(updated.numUpdatedRows, 1n);
    const streamed: string[] = [];
    for await (const row of db.selectFrom("person").select("name").orderBy("id").stream()) streamed.push(row.name);
    assert.deepEqual(streamed, ["Ada", "Bo"]);
    await assert.rejects(
      db.transaction().execute(async (trx) => {
        await trx.insertInto("person").values({ name: "Cy" }).execute();
        throw new Error("roll back");
      }),
      /roll back/,
    );
    const names = await db.selectFrom("person").select("name").orderBy("id").execute();
    assert.deepEqual(names.map((r) => r.name), ["Ada", "Bo"], "the rolled back insert is gone");
  } finally {
    await db.destroy();
  }
});

Deno.test("wrapSyncSqlite() marks statements that return rows as readers", () => {
  const database = wrapSyncSqlite(new DatabaseSync(":memory:"));
  try {
    database.prepare("CREATE TABLE t (x INTEGER)").run([]);
    assert.equal(database.prepare("SELECT x FROM t").reader, true);
    assert.equal(database.prepare("INSERT INTO t VALUES (?)").reader, false);
    assert.equal(database.prepare("INSERT INTO t VALUES (?) RETURNING x").reader, true);
  } finally {
    database.close();
  }
});
